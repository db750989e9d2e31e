//! The SQLite work of a first activation in the ledger's shape of today
//! and in leaner shapes, with the sizes of a real ledger's rows (a bulk run
//! of the bulk bench's 2,000 rows: journal bodies of 110, 409, 1,587 and
//! 943 bytes a first activation; see bench/REPORT.md, "What the ledger's
//! shape costs"). Every statement of a first activation's path is here
//! (the lookups, the journal inserts, every view row), none of the Rust
//! work around them (facts, fold, hashing): it measures what the shape
//! itself costs SQLite, and how much each change of shape takes off.
//!
//! Each round writes 8,000 rows in batches of 2,000 (one `BEGIN IMMEDIATE`
//! transaction each, `synchronous=FULL`, write-ahead log copied by a thread
//! of its own after each commit, as the ledger does) into a fresh file per
//! shape, the shapes one after the other, and prints the CPU time of the
//! writing thread a row; the median of the rounds per shape ends the run.
//!
//! ```sh
//! cargo run --release --manifest-path bench/ledger-shape/Cargo.toml -- /tmp/shape 5
//! ```
//!
//! With `ceiling` after the rounds, it runs the bulk path's shape of work
//! instead ([`pipeline`]: lookups, a signing thread, the entries hashed
//! onto the chain, the view rows, a commit a batch) for the first shape and
//! the last, against bare signing in paired rounds: the ratio the bulk
//! bench prints, with none of the product's Rust work but the signature
//! and the hash chain, so the most a shape allows on this machine.
//!
//! ```sh
//! cargo run --release --manifest-path bench/ledger-shape/Cargo.toml -- /tmp/shape 9 ceiling
//! ```

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use rusqlite::{params, Connection};
use sha2::{Digest as _, Sha256};
use std::hint::black_box;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The SQLite ledger's schema 4 (issuer/src/ledger/sqlite.rs at
/// `11133d7`, `SCHEMA` and `REGISTRY_SCHEMA`, copied): the shape of
/// "today" below.
const SCHEMA: &str = include_str!("schema.sql");
/// Charges as one row a license, its lines in one value.
const CHARGES_ONE_ROW: &str = include_str!("charges-one-row.sql");

const ROWS: u32 = 8_000;
const BATCH: u32 = 2_000;
const AT: i64 = 1_767_344_400;

/// A ledger shape: what a first activation writes.
struct Shape {
    name: &'static str,
    /// Journal bodies a first activation appends, in bytes.
    entries: &'static [usize],
    /// Bytes appended once per batch besides (an order stored once).
    per_batch: usize,
    /// A `pbx_changes` row for the PBX added.
    pbx_change: bool,
    /// Seven charge rows (today) or one row of `lines` bytes.
    charge_lines: Option<usize>,
    /// The serial counter updated per row (today) or per batch.
    counter_per_row: bool,
}

const SHAPES: [Shape; 6] = [
    Shape {
        name: "today: 4 entries (110+409+1587+943 B), pbx_changes, 7 charge rows",
        entries: &[110, 409, 1587, 943],
        per_batch: 0,
        pbx_change: true,
        charge_lines: None,
        counter_per_row: true,
    },
    Shape {
        name: "charges: one row a license (lines in 250 B)",
        entries: &[110, 409, 1587, 943],
        per_batch: 0,
        pbx_change: true,
        charge_lines: Some(250),
        counter_per_row: true,
    },
    Shape {
        name: "+ charges fact without repeated keys (943 -> 330 B)",
        entries: &[110, 409, 1587, 330],
        per_batch: 0,
        pbx_change: true,
        charge_lines: Some(250),
        counter_per_row: true,
    },
    Shape {
        name: "+ the order once a batch, its digest a row (1587 -> 780 B)",
        entries: &[110, 409, 780, 330],
        per_batch: 900,
        pbx_change: true,
        charge_lines: Some(250),
        counter_per_row: true,
    },
    Shape {
        name: "+ one entry a first activation (1490 B)",
        entries: &[1490],
        per_batch: 900,
        pbx_change: true,
        charge_lines: Some(250),
        counter_per_row: true,
    },
    Shape {
        name: "+ no pbx_changes row, the counter once a batch",
        entries: &[1490],
        per_batch: 900,
        pbx_change: false,
        charge_lines: Some(250),
        counter_per_row: false,
    },
];

/// CPU time of this thread (Linux `/proc/thread-self/schedstat`).
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    Duration::from_nanos(
        s.split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .expect("a number"),
    )
}

/// `n` bytes that differ from row to row (unique keys, no compression).
fn bytes(n: usize, seed: u32) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n)
        .map(|i| (u32::try_from(i).unwrap_or(0).wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect();
    let s = seed.to_be_bytes();
    v[..s.len().min(n)].copy_from_slice(&s[..s.len().min(n)]);
    v
}

const PROFILES: &str = r#"{"PBX-BASIC":20,"PBX-SERVICE":0,"UC-BUSINESS":10,"UC-ESSENTIAL":15,"UC-PREMIUM":5,"UC-WIZYCONF":2}"#;
const VALUES: &str = r#"{"lease":2592000,"max_lease":31622400,"renewal_window":604800,"check_interval":86400,"grace":1209600,"after_grace":"emergency_only","rollback_tolerance":86400}"#;
const ITEMS: [&str; 7] = [
    "profile:PBX-BASIC",
    "profile:UC-ESSENTIAL",
    "profile:UC-BUSINESS",
    "profile:UC-PREMIUM",
    "profile:UC-WIZYCONF",
    "service:hardware-as-a-service",
    "service:sound-pack",
];

/// Appends an entry of `n` bytes; with `chain`, hashes it onto the chain
/// as the journal does (tag, previous hash, position, length, body).
fn append(
    c: &Connection,
    pos: &mut i64,
    n: usize,
    seed: u32,
    chain: &mut Option<[u8; 32]>,
) -> rusqlite::Result<()> {
    *pos += 1;
    let body = bytes(n, seed);
    let hash = match chain {
        Some(prev) => {
            let mut h = Sha256::new();
            h.update(b"tessera-journal-v1\0");
            h.update(*prev);
            h.update(pos.to_be_bytes());
            h.update((n as u64).to_be_bytes());
            h.update(&body);
            let next: [u8; 32] = h.finalize().into();
            *prev = next;
            next.to_vec()
        }
        None => bytes(32, seed),
    };
    c.prepare_cached("INSERT INTO journal (position, body, hash) VALUES (?1, ?2, ?3)")?
        .execute(params![*pos, body, hash])?;
    Ok(())
}

fn counter(c: &Connection, last: u32, entry: i64) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO serial_counter (year, last, entry) VALUES (2026, ?1, ?2) \
         ON CONFLICT (year) DO UPDATE SET last = excluded.last, entry = excluded.entry",
    )?
    .execute(params![last, entry])?;
    Ok(())
}

/// Every statement of one first activation.
fn row(c: &Connection, s: &Shape, i: u32, pos: &mut i64) -> rusqlite::Result<()> {
    lookups(c, s, i)?;
    inserts(c, s, i, pos, &mut None)
}

fn names(i: u32) -> (String, String, String) {
    (
        format!("HW-B{i:07}"),
        format!("SW-2026-{:06}", i + 1),
        format!("request:{i:08x}652d30303030303030303031"),
    )
}

/// The lookups of a first activation: the HW serial, the request's
/// nonce, the serial's last license, the counter.
fn lookups(c: &Connection, s: &Shape, i: u32) -> rusqlite::Result<()> {
    let (hw, sw, idem) = names(i);
    let _: Option<String> = c
        .prepare_cached("SELECT serial FROM hw_serials WHERE hw_serial = ?1")?
        .query_row([&hw], |r| r.get(0))
        .ok();
    let _: Option<i64> = c
        .prepare_cached("SELECT sequence FROM licenses WHERE idem_key = ?1")?
        .query_row([&idem], |r| r.get(0))
        .ok();
    let _: Option<i64> = c
        .prepare_cached("SELECT max(sequence) FROM licenses WHERE serial = ?1")?
        .query_row([&sw], |r| r.get(0))?;
    if s.counter_per_row {
        let _: Option<i64> = c
            .prepare_cached("SELECT last FROM serial_counter WHERE year = 2026")?
            .query_row([], |r| r.get(0))
            .ok();
    }
    Ok(())
}

/// The journal entries and view rows of a first activation.
fn inserts(
    c: &Connection,
    s: &Shape,
    i: u32,
    pos: &mut i64,
    chain: &mut Option<[u8; 32]>,
) -> rusqlite::Result<()> {
    let (hw, sw, idem) = names(i);
    let first = *pos + 1;
    for (k, n) in s.entries.iter().enumerate() {
        append(c, pos, *n, i * 8 + u32::try_from(k).unwrap_or(0), chain)?;
    }
    let entry = |k: i64| (first + k).min(*pos);
    c.prepare_cached(
        "INSERT INTO hw_serials (hw_serial, serial, at, entry) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![hw, sw, AT, entry(0)])?;
    if s.counter_per_row {
        counter(c, i + 1, entry(0))?;
    }
    c.prepare_cached(
        "INSERT INTO pbxs VALUES (?1, 'Example Dental Clinic', 'Main office', 'TA-7000', 'hw', \
         'yearly', ?2, 0, 'hw-14d-emergency', ?3, ?4, ?5)",
    )?
    .execute(params![sw, PROFILES, VALUES, AT, entry(1)])?;
    if s.pbx_change {
        let detail = format!(
            "{{\"allocated\":false,\"customer\":\"Example Dental Clinic\",\"cycle\":\"yearly\",\
             \"model\":\"TA-7000\",\"name\":\"Main office\",\"platform\":\"hw\",\
             \"policy\":\"hw-14d-emergency\",\"profiles\":{PROFILES},\"storage\":0,\"values\":{VALUES}}}"
        );
        c.prepare_cached("INSERT INTO pbx_changes VALUES (?1, ?2, 'added', ?3, 'bench', ?4)")?
            .execute(params![entry(1), sw, detail, AT])?;
    }
    c.prepare_cached(
        "INSERT INTO licenses VALUES (?1, 1, ?2, 'issue', ?3, 'bench', ?4, \
         'Example Dental Clinic', 'Main office', 'hw', ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        sw,
        bytes(16, i),
        entry(2),
        AT,
        AT + 2_592_000,
        AT + 31_536_000,
        idem,
        bytes(32, !i)
    ])?;
    match s.charge_lines {
        None => {
            let mut sql = String::from("INSERT OR FAIL INTO charges VALUES ");
            for (l, _) in ITEMS.iter().enumerate() {
                if l > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(?1, {l}, ?2, 1, 'activation', ?{}, 20, 'yearly', 1767225600, 1798761600, 365, 365, ?3)",
                    l + 4
                ));
            }
            c.prepare_cached(&sql)?.execute(params![
                entry(3),
                sw,
                AT,
                ITEMS[0],
                ITEMS[1],
                ITEMS[2],
                ITEMS[3],
                ITEMS[4],
                ITEMS[5],
                ITEMS[6]
            ])?;
        }
        Some(n) => {
            c.prepare_cached("INSERT INTO charges VALUES (?1, ?2, 1, ?3, ?4)")?
                .execute(params![entry(3), sw, bytes(n, i), AT])?;
        }
    }
    Ok(())
}

/// A fresh ledger file of shape `s` in `dir`, set up as the ledger's.
fn fresh(dir: &Path, s: &Shape) -> rusqlite::Result<(Connection, std::path::PathBuf)> {
    let path = dir.join("shape.db");
    for p in [
        path.clone(),
        dir.join("shape.db-wal"),
        dir.join("shape.db-shm"),
    ] {
        let _ = std::fs::remove_file(p);
    }
    let c = Connection::open(&path)?;
    let _: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "cache_size", -65_536)?;
    c.pragma_update(None, "temp_store", "MEMORY")?;
    c.pragma_update(None, "wal_autocheckpoint", 0)?;
    c.execute_batch(SCHEMA)?;
    if s.charge_lines.is_some() {
        c.execute_batch(CHARGES_ONE_ROW)?;
    }
    Ok((c, path))
}

/// Commits the batch with its checkpoint and starts the copy of the log
/// into the file on a thread of its own, as the ledger does (after the
/// previous copy ended).
fn commit(
    c: &Connection,
    path: &Path,
    pos: i64,
    b: u32,
    copy: &mut Option<std::thread::JoinHandle<()>>,
) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO checkpoints (entries, bytes) VALUES (?1, ?2)")?
        .execute(params![pos, bytes(150, b)])?;
    c.execute_batch("COMMIT")?;
    if let Some(h) = copy.take() {
        let _ = h.join();
    }
    let p = path.to_owned();
    *copy = Some(std::thread::spawn(move || {
        if let Ok(c) = Connection::open(&p) {
            let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        }
    }));
    Ok(())
}

/// One round of a shape: CPU µs of this thread a row.
fn run(dir: &Path, s: &Shape) -> rusqlite::Result<f64> {
    let (c, path) = fresh(dir, s)?;
    let mut pos = 0i64;
    let mut copy: Option<std::thread::JoinHandle<()>> = None;
    let start = cpu();
    for b in 0..ROWS / BATCH {
        c.execute_batch("BEGIN IMMEDIATE")?;
        if s.per_batch > 0 {
            append(&c, &mut pos, s.per_batch, u32::MAX - b, &mut None)?;
        }
        for i in b * BATCH..(b + 1) * BATCH {
            row(&c, s, i, &mut pos)?;
        }
        if !s.counter_per_row {
            counter(&c, (b + 1) * BATCH, pos)?;
        }
        commit(&c, &path, pos, b, &mut copy)?;
    }
    let used = cpu() - start;
    drop(c);
    if let Some(h) = copy.take() {
        let _ = h.join();
    }
    Ok(used.as_secs_f64() * 1e6 / f64::from(ROWS))
}

/// Rows a message to the signing thread, as the bulk path sends them.
const CHUNK: usize = 32;

/// The message a row's signature covers: about a license's Sig_structure
/// (the bulk bench signs 520 bytes), different for every row.
fn message(i: u32) -> [u8; 520] {
    let mut m = [0x5a; 520];
    m[..4].copy_from_slice(&i.to_be_bytes());
    m
}

/// `ROWS` bare signatures on this thread: wall time.
fn bare(key: &SigningKey) -> Duration {
    let start = Instant::now();
    for i in 0..ROWS {
        black_box(key.sign(black_box(&message(i))));
    }
    start.elapsed()
}

/// The bulk path's shape of work on ledger shape `s`, with none of the
/// product's Rust work but the hash chain: this thread runs a row's
/// lookups, hands the row to one signing thread (`CHUNK` rows a message)
/// and, as signatures come back, appends the row's entries (hashed onto
/// the chain) and view rows; a batch commits once its rows are in. Wall
/// time of `ROWS` rows, the ledger's close included, as the bulk bench
/// times `issue_rows`.
fn pipeline(dir: &Path, s: &Shape, key: &SigningKey) -> rusqlite::Result<Duration> {
    let (c, path) = fresh(dir, s)?;
    let start = Instant::now();
    let mut pos = 0i64;
    let mut chain = Some([0u8; 32]);
    let mut copy = None;
    for b in 0..ROWS / BATCH {
        c.execute_batch("BEGIN IMMEDIATE")?;
        if s.per_batch > 0 {
            append(&c, &mut pos, s.per_batch, u32::MAX - b, &mut chain)?;
        }
        std::thread::scope(|scope| -> rusqlite::Result<()> {
            let (job_tx, job_rx) = mpsc::channel::<Vec<u32>>();
            let (done_tx, done_rx) = mpsc::channel::<Vec<(u32, Signature)>>();
            scope.spawn(move || {
                for job in job_rx {
                    let signed = job
                        .into_iter()
                        .map(|i| (i, key.sign(&message(i))))
                        .collect();
                    if done_tx.send(signed).is_err() {
                        return;
                    }
                }
            });
            let mut record = |signed: Vec<(u32, Signature)>| -> rusqlite::Result<()> {
                for (i, sig) in signed {
                    black_box(sig);
                    inserts(&c, s, i, &mut pos, &mut chain)?;
                }
                Ok(())
            };
            let mut pending = Vec::with_capacity(CHUNK);
            for i in b * BATCH..(b + 1) * BATCH {
                lookups(&c, s, i)?;
                pending.push(i);
                if pending.len() == CHUNK {
                    let _ = job_tx.send(std::mem::take(&mut pending));
                }
                while let Ok(signed) = done_rx.try_recv() {
                    record(signed)?;
                }
            }
            if !pending.is_empty() {
                let _ = job_tx.send(pending);
            }
            drop(job_tx);
            for signed in done_rx {
                record(signed)?;
            }
            Ok(())
        })?;
        if !s.counter_per_row {
            counter(&c, (b + 1) * BATCH, pos)?;
        }
        commit(&c, &path, pos, b, &mut copy)?;
    }
    drop(c);
    if let Some(h) = copy.take() {
        let _ = h.join();
    }
    Ok(start.elapsed())
}

/// `pipeline` against `bare` signing in paired rounds, for the first shape
/// ("today") and the last (the leanest): the ratio the bulk bench prints,
/// for the SQLite work and the hash chain alone.
fn ceiling(dir: &Path, rounds: usize) -> rusqlite::Result<()> {
    let key = SigningKey::from_bytes(&[42; 32]);
    let picked = [&SHAPES[0], &SHAPES[SHAPES.len() - 1]];
    let mut ratios = vec![Vec::new(); picked.len()];
    for round in 1..=rounds {
        let mut line = Vec::new();
        for (r, s) in ratios.iter_mut().zip(picked) {
            let sign = bare(&key);
            let bulk = pipeline(dir, s, &key)?;
            let ratio = sign.as_secs_f64() / bulk.as_secs_f64();
            line.push(format!(
                "{ratio:.3} ({:.1} µs a row against {:.2} µs a signature)",
                bulk.as_secs_f64() * 1e6 / f64::from(ROWS),
                sign.as_secs_f64() * 1e6 / f64::from(ROWS)
            ));
            r.push(ratio);
        }
        println!("round {round}: {}", line.join("  "));
    }
    println!("\nbulk / bare signing, two threads, median of {rounds} paired rounds (min-max):");
    for (s, mut v) in picked.iter().zip(ratios) {
        v.sort_by(f64::total_cmp);
        println!(
            "{:.3} ({:.3}-{:.3})  {}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            s.name
        );
    }
    Ok(())
}

fn main() -> rusqlite::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp/ledger-shape".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("the folder");
    if args.next().as_deref() == Some("ceiling") {
        return ceiling(dir, rounds);
    }
    let mut per_shape = vec![Vec::new(); SHAPES.len()];
    for round in 1..=rounds {
        let figures: Vec<f64> = SHAPES
            .iter()
            .map(|s| run(dir, s))
            .collect::<Result<_, _>>()?;
        println!(
            "round {round}: {}",
            figures
                .iter()
                .map(|f| format!("{f:.1}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        for (all, f) in per_shape.iter_mut().zip(figures) {
            all.push(f);
        }
    }
    println!(
        "\nCPU µs of the writing thread a first activation, median of {rounds} rounds (min-max):"
    );
    let today = {
        let mut v = per_shape[0].clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (s, mut v) in SHAPES.iter().zip(per_shape) {
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        println!(
            "{median:5.1} ({:.1}-{:.1})  {:.2}x  {}",
            v[0],
            v[v.len() - 1],
            median / today,
            s.name
        );
    }
    Ok(())
}
