//! How long the service takes to refuse a device that is not the PBX's
//! own, by what the ledger holds of the serial it names. `POST
//! /v1/activate`: a licensed PBX (one license, and one of 14), a
//! registered one waiting for its activation, a serial never allocated,
//! all refused with the same 403 `activation-refused`. `POST /v1/renew`,
//! signed by a key none of the PBX's requests was: a PBX that renewed a
//! moment ago, one of 14 licenses, a voided one (403 `unknown-device-key`
//! each), a serial never allocated (404 `unknown`). Their time should not
//! tell them apart: every refusal is answered at the floor
//! (`tessera_server::limits::REFUSAL_FLOOR`) after its request arrived.
//!
//! One server in this process over loopback TLS on a SQLite ledger, one
//! keep-alive client; the cases of a route take turns, each request signed
//! by a throwaway key with a nonce of its own and no activation code.
//! Bounded: `--rounds` requests per case (default 120) after 20 of
//! warm-up; it stops by itself and prints the median and quartiles per
//! case and, among the cases of one status (another status tells itself
//! apart), the largest difference of medians and the noise:
//! the same difference when the requests are dealt to the cases at random
//! (a permutation test: 1000 deals, the 95th percentile), which is what
//! the medians differ by when the case makes no difference. The cases'
//! difference is within noise when it is no larger than that. Nothing
//! asserts on time.
//!
//! ```sh
//! cargo bench -p tessera-server --bench activation_timing
//! cargo bench -p tessera-server --bench activation_timing -- --rounds 300
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use core::time::Duration;
use std::time::Instant;

use tessera_issuer::registry::{self, NewPbx};
use tessera_server::testing::{client, renewal, TestVendor};
use tessera_verifier::claims::{Cycle, Platform};
use tessera_verifier::encode::sign_request;
use tessera_verifier::samples::{self, seed_signer};

const T: i64 = 1_767_258_000; // 2026-01-01T09:00:00Z
const WARM_UP: usize = 20;

fn rounds() -> usize {
    let mut rounds = 120;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header"),
        }
    }
    rounds
}

/// An activation request for `serial` at `now`, signed by a throwaway
/// key, with nonce `n`.
fn rogue(serial: &str, now: i64, n: u64) -> Vec<u8> {
    let seed = [0x9a; 32];
    let mut r = samples::request();
    r.serial = Some(serial.to_owned());
    r.hw_serial = None;
    r.platform = Platform::Vm;
    r.created_at = now;
    r.nonce = [0x5c; 16];
    r.nonce[..8].copy_from_slice(&n.to_be_bytes());
    r.device_key = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    sign_request(&r, seed_signer(seed)).unwrap()
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn median(times: &[Duration]) -> f64 {
    let mut t = times.to_vec();
    t.sort_unstable();
    quantile(&t, 0.5)
}

/// The largest difference of medians between groups of the sizes of
/// `times` when all their samples are dealt to the groups at random: its
/// `q` quantile over `deals` deals (a fixed seed: the same samples give
/// the same figure).
fn permuted_spread(times: &[Vec<Duration>], deals: usize, q: f64) -> f64 {
    let mut pool: Vec<Duration> = times.iter().flatten().copied().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut spreads = Vec::with_capacity(deals);
    for _ in 0..deals {
        // Fisher-Yates with xorshift64.
        for i in (1..pool.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            pool.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut rest = &pool[..];
        let mut medians = Vec::new();
        for t in times {
            let (group, more) = rest.split_at(t.len());
            medians.push(median(group));
            rest = more;
        }
        spreads.push(
            medians.iter().copied().fold(f64::MIN, f64::max)
                - medians.iter().copied().fold(f64::MAX, f64::min),
        );
    }
    spreads.sort_by(f64::total_cmp);
    spreads[((spreads.len() - 1) as f64 * q).round() as usize]
}

/// A forged renewal of `serial` at `now`: signed by a throwaway key, with
/// nonce `n`.
fn forged(serial: &str, now: i64, n: u64) -> Vec<u8> {
    let seed = [0x9b; 32];
    let mut r = samples::request();
    r.serial = Some(serial.to_owned());
    r.created_at = now;
    r.nonce = [0x6d; 16];
    r.nonce[..8].copy_from_slice(&n.to_be_bytes());
    r.device_key = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    sign_request(&r, seed_signer(seed)).unwrap()
}

/// One case: its name, the serial, the request maker, the status.
type Case<'a> = (&'a str, String, fn(&str, i64, u64) -> Vec<u8>, u16);

/// Times the `cases` of `route` in turns; prints the table.
fn run(
    agent: &ureq::Agent,
    url: &str,
    route: &str,
    cases: &[Case<'_>],
    rounds: usize,
    n: &mut u64,
    now: i64,
) {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..WARM_UP + rounds {
        // The cases take turns, starting with another one each round.
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let (name, serial, make, status) = &cases[i];
            *n += 1;
            let body = make(serial, now, *n);
            let started = Instant::now();
            let mut r = agent
                .post(url)
                .header("content-type", "application/cose")
                .send(&body[..])
                .unwrap();
            let _ = r.body_mut().read_to_vec().unwrap();
            let took = started.elapsed();
            assert_eq!(r.status().as_u16(), *status, "{route} {name}");
            if round >= WARM_UP {
                times[i].push(took);
            }
        }
    }

    println!("\n{route}\n");
    println!("| case | status | requests | p25 ms | median ms | p75 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for ((name, _, _, status), t) in cases.iter().zip(&mut times) {
        t.sort_unstable();
        medians.push(quantile(t, 0.5));
        println!(
            "| {name} | {status} | {} | {:.3} | {:.3} | {:.3} |",
            t.len(),
            quantile(t, 0.25),
            quantile(t, 0.5),
            quantile(t, 0.75)
        );
    }
    // Cases of another status are told apart by it: their time is
    // compared with the cases of their own status.
    let mut statuses: Vec<u16> = cases.iter().map(|c| c.3).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let of: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].3 == status).collect();
        if of.len() < 2 {
            continue;
        }
        let group: Vec<Vec<Duration>> = of.iter().map(|&i| times[i].clone()).collect();
        let m: Vec<f64> = of.iter().map(|&i| medians[i]).collect();
        let spread =
            m.iter().copied().fold(f64::MIN, f64::max) - m.iter().copied().fold(f64::MAX, f64::min);
        let noise = permuted_spread(&group, 1000, 0.95);
        println!(
            "\n{status}, {} cases: largest difference of medians: {spread:.3} ms",
            of.len()
        );
        println!("noise (the same, requests dealt to the cases at random, 95th percentile of 1000 deals): {noise:.3} ms");
        println!(
            "{}",
            if spread <= noise {
                "the cases' difference is within noise"
            } else {
                "the cases' difference is over the noise (1 run in 20 is, by chance): compare a few runs"
            }
        );
    }
}

fn main() {
    let rounds = rounds();
    let dir = tempfile::tempdir().unwrap();
    let v = TestVendor::new(dir.path(), T).unwrap();
    let mut serials = v.activate(3, 1, T).unwrap();
    let (licensed, many, voided) = (serials.remove(0), serials.remove(0), serials.remove(0));
    let registered = v
        .with_writer(|w, issuer| {
            let new = NewPbx {
                customer: "Timing GmbH".into(),
                name: "HQ".into(),
                model: "VM-500".into(),
                platform: Platform::Vm,
                cycle: Cycle::Yearly,
                profiles: [("PBX-BASIC".to_owned(), 10)].into(),
                storage: 0,
                policy: None,
            };
            registry::add(w, issuer.catalog, &new, None, T)
        })
        .unwrap();
    let voided_at = chrono::DateTime::from_timestamp(T, 0).unwrap();
    v.with_writer(|w, issuer| {
        let id = w.latest(&voided)?.map(|r| r.row.license_id).unwrap();
        tessera_issuer::lifecycle::void(w, issuer, &id, "wrong customer", voided_at)
    })
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = T + 3600;
    let server = rt
        .block_on(tessera_server::start(v.unlimited_settings(now).unwrap()))
        .unwrap();
    let agent = client(&v.pki).unwrap();
    let renew_url = format!("{}/v1/renew", server.url());
    // The PBX of 14 licenses renews 13 times, the licensed one once: a
    // moment ago.
    let serials = core::iter::repeat_n(&many, 13).chain([&licensed]);
    for (k, serial) in (1_000_000..).zip(serials) {
        let body = renewal(serial, now, k).unwrap();
        let r = agent
            .post(&renew_url)
            .header("content-type", "application/cose")
            .send(&body[..])
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{serial}");
    }
    let mut n = 0u64;
    let activations: [Case<'_>; 4] = [
        ("licensed", licensed.clone(), rogue, 403),
        ("licensed, 14 licenses", many.clone(), rogue, 403),
        ("registered", registered, rogue, 403),
        ("unregistered", "SW-2026-000777".to_owned(), rogue, 403),
    ];
    let activate_url = format!("{}/v1/activate", server.url());
    run(
        &agent,
        &activate_url,
        "POST /v1/activate",
        &activations,
        rounds,
        &mut n,
        now,
    );
    let renewals: [Case<'_>; 4] = [
        ("renewed a moment ago", licensed, forged, 403),
        ("14 licenses", many, forged, 403),
        ("voided", voided, forged, 403),
        ("unregistered", "SW-2026-000777".to_owned(), forged, 404),
    ];
    run(
        &agent,
        &renew_url,
        "POST /v1/renew (forged)",
        &renewals,
        rounds,
        &mut n,
        now,
    );
    server.shutdown();
    rt.block_on(server.wait());
}
