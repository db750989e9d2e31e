//! Load generator: many distinct simulated PBXs renewing over loopback TLS
//! against one `tessera-server` in this process, on the SQLite ledger and
//! on PostgreSQL (a real server the run starts, `fsync` on), at 1, 16 and
//! 64 concurrent clients (one keep-alive TLS connection each). Every
//! renewal is durable before its answer (group commit). Bounded: at most
//! `--renewals` renewals and `--max-seconds` seconds per level; it stops
//! by itself. Prints renewals/s, p50 and p99 latency, the mean batch size
//! per backend, and the bare Ed25519 signing rate measured in the same run.
//!
//! ```sh
//! cargo bench -p tessera-server --bench load
//! cargo bench -p tessera-server --bench load -- --pbxs 2000 --renewals 6000 --max-seconds 20 --clients 1,16,64 --backends sqlite,postgres
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]

use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use tessera_server::testing::{client, renewal, TestVendor};
use tessera_signer::Signer as _;

const T: i64 = 1_767_258_000; // 2026-01-01T09:00:00Z

struct Args {
    pbxs: u32,
    renewals: usize,
    max_seconds: u64,
    clients: Vec<usize>,
    backends: Vec<String>,
}

fn args() -> Args {
    let mut a = Args {
        pbxs: 2000,
        renewals: 6000,
        max_seconds: 20,
        clients: vec![1, 16, 64],
        backends: vec!["sqlite".into(), "postgres".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--pbxs" => a.pbxs = v().parse().unwrap(),
            "--renewals" => a.renewals = v().parse().unwrap(),
            "--max-seconds" => a.max_seconds = v().parse().unwrap(),
            "--clients" => a.clients = v().split(',').map(|c| c.parse().unwrap()).collect(),
            "--backends" => a.backends = v().split(',').map(str::to_owned).collect(),
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown argument {other}; see the file's header"),
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let a = args();
    // The bare signing rate, same machine, same run.
    let signer = tessera_signer::FileSigner::generate().unwrap();
    let msg = [0x5a_u8; 300];
    let n_sign = 20_000;
    let t = Instant::now();
    for _ in 0..n_sign {
        core::hint::black_box(signer.sign(core::hint::black_box(&msg)).unwrap());
    }
    let sign_rate = f64::from(n_sign) / t.elapsed().as_secs_f64();

    println!(
        "| backend | clients | renewals | seconds | renewals/s | p50 ms | p99 ms | mean batch |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut summaries = Vec::new();
    for backend in &a.backends {
        let dir = tempfile::tempdir().unwrap();
        let (pg, ledger) = match backend.as_str() {
            "sqlite" => (None, dir.path().join("ledger.db")),
            "postgres" => {
                let Some(pg) = tessera_tests::postgres::PgServer::start_durable() else {
                    eprintln!("postgres: skipped (no PostgreSQL installed)");
                    continue;
                };
                let url = pg.create_database();
                (Some(pg), url.into())
            }
            other => panic!("unknown backend {other}: sqlite or postgres"),
        };
        let v = TestVendor::with_ledger(dir.path(), T, ledger).unwrap();
        summaries.push(run(&a, backend, &v));
        drop(pg);
    }
    println!("\nbare Ed25519 signing (same run): {sign_rate:.0} signatures/s");
    for s in summaries {
        println!("{s}");
    }
}

/// The levels of `a.clients` against one server for `v`; returns a line
/// on the ledger after the run.
fn run(a: &Args, backend: &str, v: &TestVendor) -> String {
    let started = Instant::now();
    let mut serials = Vec::new();
    let mut first = 1;
    while first <= a.pbxs {
        let n = 500.min(a.pbxs - first + 1);
        serials.extend(v.activate(n, first, T).unwrap());
        first += n;
    }
    eprintln!(
        "{backend}: activated {} PBXs in {:.1} s",
        serials.len(),
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = T + 3600;
    let server = rt
        .block_on(tessera_server::start(v.unlimited_settings(now).unwrap()))
        .unwrap();
    let url = format!("{}/v1/renew", server.url());
    let http = client(&v.pki).unwrap();
    let mut nonce = 0u64;
    let mut total_ok = 0usize;
    for &clients in &a.clients {
        // Requests made up front: the clients' signing is not measured.
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..a.renewals)
                .map(|i| {
                    nonce += 1;
                    renewal(&serials[i % serials.len()], now, nonce).unwrap()
                })
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
        let batches_before = batch_count(&server);
        let t = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (http, url, bodies, next) = (
                    http.clone(),
                    url.clone(),
                    Arc::clone(&bodies),
                    Arc::clone(&next),
                );
                std::thread::spawn(move || {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= bodies.len() || Instant::now() >= deadline {
                            return lat;
                        }
                        let s = Instant::now();
                        let mut r = http
                            .post(&url)
                            .header("content-type", "application/cose")
                            .send(&bodies[i][..])
                            .unwrap();
                        let body = r.body_mut().read_to_vec().unwrap();
                        assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(&body));
                        lat.push(s.elapsed());
                    }
                })
            })
            .collect();
        let mut lat: Vec<Duration> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let secs = t.elapsed().as_secs_f64();
        lat.sort_unstable();
        let batches = batch_count(&server) - batches_before;
        total_ok += lat.len();
        println!(
            "| {backend} | {clients} | {} | {secs:.2} | {:.0} | {:.2} | {:.2} | {:.1} |",
            lat.len(),
            lat.len() as f64 / secs,
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.len() as f64 / batches.max(1) as f64,
        );
    }
    server.shutdown();
    rt.block_on(server.wait());
    // Every renewal answered is in the ledger, and the ledger verifies.
    let ledger = tessera_issuer::ledger::Ledger::open_read_only(&v.ledger_path()).unwrap();
    let all = ledger.all().unwrap();
    assert_eq!(all.len(), serials.len() + total_ok);
    ledger
        .verify(
            &[tessera_verifier::KeyEntry::new(v.signer.public_key(), 0)],
            None,
        )
        .unwrap();
    format!(
        "{backend} ledger: {} licenses ({} renewals), `ledger verify` passed",
        all.len(),
        total_ok
    )
}

/// Ledger commits so far (from the metrics).
fn batch_count(server: &tessera_server::Running) -> u64 {
    server
        .metrics()
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("tessera_ledger_commit_seconds_count "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
