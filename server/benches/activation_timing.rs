//! How long `POST /v1/activate` takes to refuse a device that is not the
//! PBX's own, by what the ledger holds of the serial it names: a licensed
//! PBX, a registered one waiting for its activation, a serial never
//! allocated. Every such refusal is the same 403 `activation-refused`;
//! its time should not tell the three apart either. One server in this
//! process over loopback TLS on a SQLite ledger, one keep-alive client;
//! the cases take turns, each request signed by a throwaway key with a
//! nonce of its own and no activation code. Bounded: `--rounds` requests
//! per case (default 120) after 20 of warm-up; it stops by itself and
//! prints the median and quartiles per case. Nothing asserts on time.
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
use tessera_server::testing::{client, TestVendor};
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

fn main() {
    let rounds = rounds();
    let dir = tempfile::tempdir().unwrap();
    let v = TestVendor::new(dir.path(), T).unwrap();
    let licensed = v.activate(1, 1, T).unwrap().remove(0);
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
    let cases = [
        ("licensed", licensed),
        ("registered", registered),
        ("unregistered", "SW-2026-000777".to_owned()),
    ];

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
    let url = format!("{}/v1/activate", server.url());
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut n = 0u64;
    for round in 0..WARM_UP + rounds {
        // The cases take turns, starting with another one each round.
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            n += 1;
            let body = rogue(&cases[i].1, now, n);
            let started = Instant::now();
            let mut r = agent
                .post(&url)
                .header("content-type", "application/cose")
                .send(&body[..])
                .unwrap();
            let _ = r.body_mut().read_to_vec().unwrap();
            let took = started.elapsed();
            assert_eq!(r.status().as_u16(), 403, "{}", cases[i].0);
            if round >= WARM_UP {
                times[i].push(took);
            }
        }
    }
    server.shutdown();
    rt.block_on(server.wait());

    println!("| case | requests | p25 ms | median ms | p75 ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut medians = Vec::new();
    for ((name, _), t) in cases.iter().zip(&mut times) {
        t.sort_unstable();
        medians.push(quantile(t, 0.5));
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            t.len(),
            quantile(t, 0.25),
            quantile(t, 0.5),
            quantile(t, 0.75)
        );
    }
    let spread = medians.iter().copied().fold(f64::MIN, f64::max)
        - medians.iter().copied().fold(f64::MAX, f64::min);
    println!("\nlargest difference of medians: {spread:.3} ms");
}
