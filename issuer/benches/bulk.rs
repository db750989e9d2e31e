//! Bulk issuance with the durable ledger against bare Ed25519 signing
//! (DESIGN.md bar: at least 50% of the signing rate), measured in one run:
//!
//! ```sh
//! cargo bench -p tessera-issuer --bench bulk
//! ```
//!
//! - `sign/bare`: `ed25519_dalek::SigningKey::sign` over a message the size
//!   of a typical license's Sig_structure, nothing else.
//! - `bulk/issue_rows`: [`tessera_issuer::bulk::issue_rows`] on rows whose
//!   CSV was parsed and whose device requests were verified beforehand:
//!   per row the order is resolved against the catalog, every policy rule
//!   checked, a SW serial allocated, the license built, encoded (and
//!   re-decoded by the verifier's encoder), signed, and appended to the
//!   hash-chained journal with its order and request key; the HW → SW
//!   conversion that allocates the serial is a journal entry of its own;
//!   the views are updated by the fold; one `BEGIN IMMEDIATE` transaction
//!   per batch of 2,000 rows, its checkpoint signed, committed with
//!   `synchronous=FULL` into a WAL ledger file on disk; 8,000 rows (four
//!   batches) per run, the ledger's closing included (the last copy of the
//!   write-ahead log into the file). No output files.
//! - `bulk/end_to_end`: the same plus parsing the CSV, reading and
//!   verifying every device request (an Ed25519 verification each) and
//!   writing one license file per row; reported for reference.
//!
//! With `TESSERA_BULK_PROFILE=N` in the environment it skips criterion and
//! issues `N` rows into a fresh ledger, one batch (or batches of
//! `TESSERA_BULK_BATCH`) on one thread (or `TESSERA_BULK_THREADS`), for
//! profilers and instruction counts (per row: divide by `N`):
//!
//! ```sh
//! TESSERA_BULK_PROFILE=200 valgrind --tool=callgrind \
//!     --toggle-collect='tessera_issuer::bulk::issue_rows*' \
//!     target/release/deps/bulk-HASH
//! ```
//!
//! The ratio printed at the end is (licenses per second of bulk issuance)
//! / (signatures per second of bare signing): the median over paired
//! rounds that time 8 000 bare signatures and then one 8 000-row run back
//! to back (robust to a shared machine's changing load), and the ratio of
//! the criterion means.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::cell::RefCell;
use core::hint::black_box;
use core::time::Duration;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{Criterion, Throughput};
use ed25519_dalek::{Signer as _, SigningKey};
use tessera_issuer::bulk::{issue_rows, prepare, Prepared};
use tessera_issuer::catalog::Catalog;
use tessera_issuer::issuance::Issuer;
use tessera_issuer::ledger::Ledger;
use tessera_issuer::validate::RequestCheck;
use tessera_signer::FileSigner;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity};
use tessera_verifier::encode::sign_request;
use tessera_verifier::{armor, samples};

/// The allocator of the `tessera` binary (issuer/src/main.rs), so the
/// bench measures what the command does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows per batch (one durable transaction each).
const BATCH: usize = 2_000;
/// Rows per measured run: several batches, so what a batch leaves to the
/// next (the copy of the write-ahead log into the ledger file) is paid
/// inside the run, as it is in a real bulk run.
const ROWS: usize = 4 * BATCH;
/// Paired rounds for the ratio.
const PAIRED_ROUNDS: usize = 9;

const ORDER: &str = include_str!("../examples/order.toml");

thread_local! {
    static SIGN: RefCell<(Duration, u64)> = const { RefCell::new((Duration::ZERO, 0)) };
    static BULK: RefCell<(Duration, u64)> = const { RefCell::new((Duration::ZERO, 0)) };
    static BULK_MT: RefCell<(Duration, u64)> = const { RefCell::new((Duration::ZERO, 0)) };
    static E2E: RefCell<(Duration, u64)> = const { RefCell::new((Duration::ZERO, 0)) };
}

fn request_text(n: u32) -> String {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    seed[4] = 0xbe;
    let hw = format!("HW-B{n:07}");
    let mut r = samples::request();
    r.hw_serial = Some(hw.clone());
    r.device_key = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    r.nonce[..4].copy_from_slice(&n.to_be_bytes());
    r.identity = [
        (ComponentKind::HW_SERIAL, hw),
        (ComponentKind::NIC_MAC, format!("02{n:010x}")),
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-{n:012x}"),
        ),
        (ComponentKind::DISK_SERIAL, format!("D{n:09}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    armor::encode(
        &sign_request(&r, samples::seed_signer(seed)).unwrap(),
        armor::LABEL_REQUEST,
    )
}

/// A bulk CSV of `rows` appliances with their request files.
fn write_inputs(dir: &Path, rows: usize) {
    std::fs::create_dir_all(dir.join("req")).unwrap();
    std::fs::write(dir.join("order.toml"), ORDER).unwrap();
    let mut csv = String::from("request,extension,number,user,base,addon_1,addon_2\n");
    for n in 0..u32::try_from(rows).unwrap() {
        std::fs::write(dir.join(format!("req/{n}.req")), request_text(n)).unwrap();
        csv.push_str(&format!(
            "req/{n}.req,{n},+4930{n:06},user{n}@example.com,Phone System,call_recording,device_ip_phone\n"
        ));
    }
    std::fs::write(dir.join("bulk.csv"), csv).unwrap();
}

/// A fresh ledger (`tessera ledger init`), made outside the timing.
fn new_ledger(path: &Path, signer: &FileSigner, now: DateTime<Utc>) -> Ledger {
    Ledger::create(path, "tessera-vendor", signer, "bench", now.timestamp()).unwrap()
}

fn record(cell: &'static std::thread::LocalKey<RefCell<(Duration, u64)>>, d: Duration, n: u64) {
    cell.with(|c| {
        let mut c = c.borrow_mut();
        c.0 += d;
        c.1 += n;
    });
}

fn rate(cell: &'static std::thread::LocalKey<RefCell<(Duration, u64)>>) -> f64 {
    cell.with(|c| {
        let c = c.borrow();
        #[allow(clippy::cast_precision_loss)]
        let n = c.1 as f64;
        n / c.0.as_secs_f64()
    })
}

/// `TESSERA_BULK_PROFILE=N`: one batch of `N` rows on one thread, for a
/// profiler; nothing is timed.
fn profile_rows() -> Option<usize> {
    let n = std::env::var("TESSERA_BULK_PROFILE").ok()?;
    Some(n.parse().expect("TESSERA_BULK_PROFILE is a number of rows"))
}

/// Time this thread spent on a CPU (Linux: `/proc/thread-self/schedstat`),
/// user and system: unlike wall-clock time, waiting for the disk or for
/// another process's turn does not count.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

fn main() {
    let profile = profile_rows();
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2))
        .configure_from_args();
    let now: DateTime<Utc> = "2026-01-02T09:00:00Z".parse().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    write_inputs(inputs.path(), profile.unwrap_or(ROWS));
    let csv = inputs.path().join("bulk.csv");
    let order = inputs.path().join("order.toml");
    let check = RequestCheck {
        now: now.timestamp(),
        window: tessera_issuer::validate::DEFAULT_REQUEST_WINDOW,
    };
    let (rows, errors): (Vec<Prepared>, _) = prepare(&csv, Some(&order), check).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows.len(), profile.unwrap_or(ROWS));
    let catalog = Catalog::default_catalog().unwrap();
    let signer = FileSigner::generate().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "bench",
    };
    let threads = tessera_issuer::bulk::default_threads();
    if let Some(n) = profile {
        let dir = tempfile::tempdir_in(inputs.path()).unwrap();
        let mut ledger = new_ledger(&dir.path().join("ledger.db"), &signer, now);
        let cpu0 = cpu_time();
        let start = Instant::now();
        let t: usize = std::env::var("TESSERA_BULK_THREADS")
            .ok()
            .map_or(1, |t| t.parse().expect("TESSERA_BULK_THREADS is a number"));
        let batch: usize = std::env::var("TESSERA_BULK_BATCH")
            .ok()
            .map_or(n, |t| t.parse().expect("TESSERA_BULK_BATCH is a number"));
        let summary = issue_rows(&mut ledger, &issuer, &rows, batch, t, now, None, |_| {}).unwrap();
        drop(ledger);
        let d = start.elapsed();
        let cpu = cpu_time().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
        assert_eq!(summary.issued, n);
        let per_row = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        println!(
            "issued {n} rows in batches of {batch} on {t} thread(s) in {:.1} ms (closing the ledger included): {:.1} µs a row, {} on the CPU of this thread",
            d.as_secs_f64() * 1e3,
            per_row(d),
            cpu.map_or_else(|| "?".into(), |c| format!("{:.1} µs", per_row(c)))
        );
        return;
    }

    // The message a license signature covers is its Sig_structure: about
    // the license's size (the sample typical license is 495 bytes).
    let key = SigningKey::from_bytes(&[42; 32]);
    let msg = vec![0x5au8; 520];
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bare", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(key.sign(black_box(&msg)));
            }
            let d = start.elapsed();
            record(&SIGN, d, iters);
            d
        });
    });
    g.finish();

    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Elements(ROWS as u64));
    for (name, threads, cell) in [
        ("issue_rows/1_thread", 1, &BULK),
        ("issue_rows/all_threads", threads, &BULK_MT),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh durable ledger on disk per iteration (created
                    // outside the timing), so every row is a first
                    // activation.
                    let dir = tempfile::tempdir_in(inputs.path()).unwrap();
                    let mut ledger = new_ledger(&dir.path().join("ledger.db"), &signer, now);
                    let start = Instant::now();
                    let summary = issue_rows(
                        &mut ledger,
                        &issuer,
                        &rows,
                        BATCH,
                        threads,
                        now,
                        None,
                        |_| {},
                    )
                    .unwrap();
                    drop(ledger);
                    let d = start.elapsed();
                    assert_eq!(summary.issued, ROWS);
                    total += d;
                }
                record(cell, total, iters * ROWS as u64);
                total
            });
        });
    }
    g.bench_function("end_to_end", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir_in(inputs.path()).unwrap();
                let mut ledger = new_ledger(&dir.path().join("ledger.db"), &signer, now);
                let out = dir.path().join("out");
                std::fs::create_dir(&out).unwrap();
                let start = Instant::now();
                let (rows, _) = prepare(&csv, Some(&order), check).unwrap();
                let summary = issue_rows(
                    &mut ledger,
                    &issuer,
                    &rows,
                    BATCH,
                    threads,
                    now,
                    Some(&out),
                    |_| {},
                )
                .unwrap();
                drop(ledger);
                let d = start.elapsed();
                assert_eq!(summary.files, ROWS);
                total += d;
            }
            record(&E2E, total, iters * ROWS as u64);
            total
        });
    });
    g.finish();
    c.final_summary();

    // The machine may be shared: measure both sides back to back, many
    // times, and take the median of the per-round ratios, so a change of
    // load hits both sides of a ratio alike.
    let paired = |threads: usize| {
        let mut ratios = Vec::new();
        for _ in 0..PAIRED_ROUNDS {
            let start = Instant::now();
            for _ in 0..ROWS {
                black_box(key.sign(black_box(&msg)));
            }
            let t_sign = start.elapsed();
            let dir = tempfile::tempdir_in(inputs.path()).unwrap();
            let mut ledger = new_ledger(&dir.path().join("ledger.db"), &signer, now);
            let start = Instant::now();
            let summary = issue_rows(
                &mut ledger,
                &issuer,
                &rows,
                BATCH,
                threads,
                now,
                None,
                |_| {},
            )
            .unwrap();
            drop(ledger);
            let t_bulk = start.elapsed();
            assert_eq!(summary.issued, ROWS);
            // Same number of signatures and licenses: rate ratio = time ratio.
            ratios.push(t_sign.as_secs_f64() / t_bulk.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        ratios
    };
    let single = paired(1);
    let multi = paired(threads);

    let sign = rate(&SIGN);
    let bulk = rate(&BULK);
    let bulk_mt = rate(&BULK_MT);
    let e2e = rate(&E2E);
    let median = |r: &[f64]| r[r.len() / 2];
    println!();
    println!("bare Ed25519 signing (1 thread):          {sign:>8.0} signatures/s");
    println!(
        "bulk issuance, durable ledger, 1 thread:  {bulk:>8.0} licenses/s ({ROWS} rows in batches of {BATCH})"
    );
    println!("bulk issuance, durable ledger, {threads} threads: {bulk_mt:>8.0} licenses/s");
    println!("bulk end to end ({threads} threads; CSV, requests, files): {e2e:>8.0} licenses/s");
    println!(
        "criterion means: 1 thread {:.3}, {threads} threads {:.3}, end to end {:.3}",
        bulk / sign,
        bulk_mt / sign,
        e2e / sign
    );
    for (label, r) in [
        ("1 thread", &single),
        (&*format!("{threads} threads"), &multi),
    ] {
        println!(
            "RATIO bulk / bare signing, {label}: {:.3} (median of {PAIRED_ROUNDS} paired rounds of {ROWS}; min {:.3}, max {:.3}; bar >= 0.50: {})",
            median(r),
            r[0],
            r[r.len() - 1],
            if median(r) >= 0.5 { "PASS" } else { "FAIL" }
        );
    }
}
