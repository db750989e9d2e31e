//! Cost of the verifier against the bare Ed25519 primitive, measured in
//! one process (`bench/compare.sh` runs this and OpenSSL in the same run):
//!
//! - full verify (armor + CBOR decode + signature + binding + time) vs
//!   bare `VerifyingKey::verify_strict` on the same Sig_structure bytes;
//! - decode alone (armor + CBOR/COSE + claims, no signature);
//! - license encode + sign vs bare sign of the same Sig_structure.
//!
//! Criterion measures each; then an interleaved timing loop measures them
//! again side by side and prints the ratios (criterion does not), as
//! `RATIO`/`RATE` lines that `bench/compare.sh` reads.
//!
//! `cargo bench -p tessera-verifier --features std --bench verify`

mod common;

use core::convert::Infallible;
use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use criterion::Criterion;
use ed25519_dalek::Signer as _;
use tessera_verifier::encode::sign_license;
use tessera_verifier::samples::{self, TEST_KEY_1_PUBLIC};
use tessera_verifier::{armor, decode_license_unverified, key_id, MAX_OBJECT_LEN};

use common::Fixture;

type Case<'a> = (&'static str, Box<dyn Fn() -> bool + 'a>);

fn cases(f: &Fixture) -> Vec<Case<'_>> {
    let data = samples::typical();
    let kid = key_id(&TEST_KEY_1_PUBLIC);
    let encode_sign = move || {
        sign_license(&data, &kid, |msg| {
            Ok::<_, Infallible>(f.signing_key.sign(msg).to_bytes())
        })
        .is_ok_and(|bytes| bytes.len() == f.cbor.len())
    };
    vec![
        ("full verify", Box::new(|| f.full_verify())),
        (
            "full verify, prepared key",
            Box::new(|| f.full_verify_prepared()),
        ),
        ("bare verify_strict", Box::new(|| f.bare_verify_strict())),
        (
            "bare from_bytes+verify_strict",
            Box::new(|| f.bare_from_bytes_verify_strict()),
        ),
        (
            "decode alone",
            Box::new(|| {
                let mut buf = [0u8; MAX_OBJECT_LEN];
                armor::decode(f.armored, armor::LABEL_LICENSE, &mut buf)
                    .is_ok_and(|b| decode_license_unverified(b).is_ok())
            }),
        ),
        ("encode+sign", Box::new(encode_sign)),
        (
            "bare sign",
            Box::new(|| {
                black_box(f.signing_key.sign(&f.sig_structure));
                true
            }),
        ),
    ]
}

/// Median ns per call of each case over interleaved rounds.
fn interleaved(cases: &[Case<'_>], rounds: usize, per_round: Duration) -> Vec<f64> {
    // Calibrate the iterations per round of each case.
    let iters: Vec<u32> = cases
        .iter()
        .map(|(_, f)| {
            let t = Instant::now();
            let mut n = 0u32;
            while t.elapsed() < per_round / 4 {
                black_box(f());
                n += 1;
            }
            (n * 4).max(10)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (((_, f), n), out) in cases.iter().zip(&iters).zip(samples.iter_mut()) {
            let t = Instant::now();
            for _ in 0..*n {
                black_box(f());
            }
            out.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(*n));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect()
}

fn main() {
    let fixture = Fixture::new();
    let cases = cases(&fixture);
    for (name, f) in &cases {
        if !f() {
            eprintln!("{name} fails on the fixture");
            std::process::exit(1);
        }
    }

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for (name, f) in &cases {
        c.bench_function(name, |b| b.iter(|| black_box(f())));
    }
    c.final_summary();

    let ns = interleaved(&cases, 21, Duration::from_millis(40));
    let get = |name: &str| {
        cases
            .iter()
            .zip(&ns)
            .find(|((n, _), _)| *n == name)
            .map_or(f64::NAN, |(_, t)| *t)
    };
    println!("\nInterleaved timing loop (median of 21 rounds, same process):");
    for ((name, _), t) in cases.iter().zip(&ns) {
        println!("TIME {name:<32} {:>10.2} us  {:>10.0} /s", t / 1e3, 1e9 / t);
    }
    let ratio = |label: &str, a: &str, b: &str| {
        println!("RATIO {label:<52} {:>6.3}x", get(a) / get(b));
    };
    ratio(
        "full verify, prepared key / bare verify_strict",
        "full verify, prepared key",
        "bare verify_strict",
    );
    ratio(
        "full verify / bare from_bytes+verify_strict",
        "full verify",
        "bare from_bytes+verify_strict",
    );
    ratio(
        "decode alone / bare verify_strict",
        "decode alone",
        "bare verify_strict",
    );
    ratio("encode+sign / bare sign", "encode+sign", "bare sign");
    println!("RATE full_verify_per_s {:.0}", 1e9 / get("full verify"));
    println!(
        "RATE full_verify_prepared_per_s {:.0}",
        1e9 / get("full verify, prepared key")
    );
    println!(
        "RATE bare_verify_strict_per_s {:.0}",
        1e9 / get("bare verify_strict")
    );
}
