//! What the writers' check of the views costs on a large ledger: every
//! writer folds the journal again and compares the views before it
//! decides anything (docs/operations.md, "Edited views stop the
//! writers"). Builds a ledger of `TESSERA_BENCH_ACTIVATIONS` first
//! activations (default 33 334; each is 4 journal entries: allocation
//! with conversion, registry entry, license, charges: 133 337 entries)
//! outside the timing, then times, each `ROUNDS` times:
//!
//! - `Ledger::open` and the first writer: the full check;
//! - a second writer of the same open ledger after a commit: no check
//!   (nobody else has written since);
//! - `Ledger::verify` (the check plus every signature) for comparison.
//!
//! ```sh
//! cargo bench -p tessera-issuer --bench views
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tessera_issuer::catalog::Catalog;
use tessera_issuer::issuance::{issue, IssueOptions, Issuer};
use tessera_issuer::ledger::Ledger;
use tessera_issuer::order::Order;
use tessera_keys::Signer as _;
use tessera_signer::FileSigner;
use tessera_verifier::samples;
use tessera_verifier::KeyEntry;

/// The allocator of the `tessera` binary (issuer/src/main.rs), so the
/// bench measures what the command does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORDER: &str = include_str!("../examples/order.toml");
const ROUNDS: usize = 5;
/// Activations per transaction while the ledger is built.
const PER_TX: u32 = 2_000;

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn main() {
    let activations: u32 = std::env::var("TESSERA_BENCH_ACTIVATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(33_334);
    let now: DateTime<Utc> = "2026-01-02T09:00:00Z".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let catalog = Catalog::default_catalog().unwrap();
    let signer = FileSigner::generate().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "bench",
    };
    let order = Order::parse("order.toml", ORDER, false).unwrap();
    let opts = IssueOptions {
        now,
        ..IssueOptions::default()
    };
    let mut ledger =
        Ledger::create(&path, &catalog.vendor, &signer, "bench", now.timestamp()).unwrap();
    let built = Instant::now();
    let mut n = 0u32;
    while n < activations {
        let mut w = ledger.writer(&signer, "bench").unwrap();
        for _ in 0..PER_TX.min(activations - n) {
            let mut r = samples::request();
            r.hw_serial = Some(format!("HW-B{n:07}"));
            r.device_key[..4].copy_from_slice(&n.to_be_bytes());
            r.nonce[..4].copy_from_slice(&n.to_be_bytes());
            issue(&mut w, &issuer, &order, &r, &opts).unwrap();
            n += 1;
        }
        w.commit().unwrap();
    }
    let entries = ledger.head().unwrap().0;
    drop(ledger);
    println!(
        "ledger of {activations} first activations, {entries} journal entries, built in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let keyring = vec![KeyEntry::new(signer.public_key(), 0)];
    let (mut first, mut again, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut ledger = Ledger::open(&path).unwrap();
        let w = ledger.writer(&signer, "bench").unwrap();
        first.push(start.elapsed());
        w.commit().unwrap();
        let start = Instant::now();
        let w = ledger.writer(&signer, "bench").unwrap();
        again.push(start.elapsed());
        drop(w);
        let start = Instant::now();
        Ledger::open_read_only(&path)
            .unwrap()
            .verify(&keyring, None)
            .unwrap();
        verify.push(start.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "open + first writer (views checked): {:>9.1} ms  ({:.2} µs per entry; median of {ROUNDS})",
        ms(median(first.clone())),
        ms(median(first)) * 1e3 / entries as f64
    );
    println!(
        "second writer, nobody wrote between:  {:>9.3} ms",
        ms(median(again))
    );
    println!(
        "ledger verify (check + signatures):   {:>9.1} ms",
        ms(median(verify))
    );
}
