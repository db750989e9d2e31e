//! The real `tessera-server` binary over loopback TLS, under load.
//!
//! **SIGKILL** ([`sigkill_under_load_loses_and_duplicates_nothing`]): on a
//! SQLite ledger, killed at random moments while client threads renew, and
//! started again, [`KILLS`] times. After each restart:
//!
//! - the ledger verifies (`Ledger::verify`, what `tessera ledger verify`
//!   runs: hash chain, checkpoints, every license's signature);
//! - every license a client received before the kill is in the ledger,
//!   byte for byte;
//! - no sequence of a serial is in the ledger twice;
//! - no client received two different licenses for one serial and
//!   sequence.
//!
//! The moments are random (the seed is printed; `TESSERA_KILL_SEED`
//! repeats a run).
//!
//! **Two instances on one PostgreSQL**
//! ([`two_instances_on_one_postgres_never_collide`]): [`RENEWALS`]
//! renewals from concurrent clients through two server processes on one
//! database (a real PostgreSQL the test starts): every one answered, no
//! sequence of a serial given twice, the ledger verifies.
//!
//! Loopback only; the server processes are killed and the client threads
//! stopped when a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera_issuer::ledger::Ledger;
use tessera_server::testing::{client, listening_url, renewal, TestVendor};
use tessera_signer::Signer as _;

/// SIGKILLs in one run.
const KILLS: u32 = 20;
/// Client threads renewing at once.
const CLIENTS: usize = 4;
/// Appliances they renew.
const SERIALS: u32 = 16;
/// Renewals through the two instances on one PostgreSQL.
const RENEWALS: u32 = 10_000;
/// The server's (and the requests') time: 2026-01-01T10:00:00Z.
const NOW: i64 = 1_767_261_600;
const NOW_TEXT: &str = "2026-01-01T10:00:00Z";

/// The server process: SIGKILLed and reaped when dropped (a failed
/// assertion included).
struct Server(Child);

impl Server {
    /// Starts the binary in the vendor's folder `dir` on `ledger` (a file
    /// or a URL); returns it with the URL it serves.
    fn start(dir: &std::path::Path, ledger: &std::path::Path) -> (Self, String) {
        let mut child = Command::new(&common::bins().server)
            .current_dir(dir)
            .env_clear()
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .args(["--listen", "127.0.0.1:0", "--operator", "tessera-server"])
            .arg("--ledger")
            .arg(ledger)
            .args(["--key", "signing.pem"])
            .args(["--passphrase-file", "passphrase"])
            .args(["--tls-cert", "server.pem", "--tls-key", "server.key"])
            .args(["--rate-per-serial", "off", "--rate-per-address", "off"])
            .args(["--now", NOW_TEXT])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let server = Self(child);
        let url = listening_url(&mut stderr).unwrap();
        // The rest of its standard error is drained, so it never blocks.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        (server, url)
    }

    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets the stop flag of the client threads when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the clients received: (serial, sequence) → license bytes, and
/// the number of answers. A second, different license for one key is
/// recorded as a conflict.
#[derive(Default)]
struct Received {
    licenses: BTreeMap<(String, u32), Vec<u8>>,
    conflicts: Vec<String>,
    answers: u64,
}

impl Received {
    /// Records a license `serial` received (a 200 answer's body).
    fn record(&mut self, serial: &str, license: Vec<u8>) {
        let data = tessera_verifier::decode_license_unverified(&license)
            .unwrap()
            .to_data();
        assert_eq!(data.serial, serial);
        self.answers += 1;
        let key = (data.serial, data.sequence);
        match self.licenses.get(&key) {
            Some(earlier) if *earlier != license => self.conflicts.push(format!(
                "{} sequence {}: two different licenses",
                key.0, key.1
            )),
            Some(_) => {}
            None => {
                self.licenses.insert(key, license);
            }
        }
    }
}

/// One renewal of `serial` (the sample appliance's request made at
/// [`NOW`] with nonce `n`) at the server `base`: its status and body.
fn renew(
    http: &ureq::Agent,
    base: &str,
    serial: &str,
    n: u64,
) -> Result<(u16, Vec<u8>), ureq::Error> {
    let body = renewal(serial, NOW, n).unwrap();
    let mut r = http
        .post(format!("{base}/v1/renew"))
        .header("content-type", "application/cose")
        .send(&body[..])?;
    let status = r.status().as_u16();
    Ok((status, r.body_mut().read_to_vec()?))
}

/// A small random generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

#[test]
fn sigkill_under_load_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = std::env::var("TESSERA_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (d.as_secs() ^ (u64::from(d.subsec_nanos()) << 32)) | 1
        });
    println!("TESSERA_KILL_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let v = TestVendor::new(dir.path(), NOW - 3600).unwrap();
    let serials = v.activate(SERIALS, 1, NOW - 3600).unwrap();
    let http = client(&v.pki).unwrap();

    let url: Arc<Mutex<Option<String>>> = Arc::default();
    let received: Arc<Mutex<Received>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(Arc::clone(&stop));
    let nonce = Arc::new(AtomicU64::new(1));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (http, url, received, stop, nonce) = (
                http.clone(),
                Arc::clone(&url),
                Arc::clone(&received),
                Arc::clone(&stop),
                Arc::clone(&nonce),
            );
            let mine: Vec<String> = serials.iter().skip(t).step_by(CLIENTS).cloned().collect();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Some(base) = url.lock().unwrap().clone() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let serial = &mine[i % mine.len()];
                    i += 1;
                    let n = nonce.fetch_add(1, Ordering::SeqCst);
                    // A killed server: the connection fails; try again.
                    let Ok((200, license)) = renew(&http, &base, serial, n) else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    received.lock().unwrap().record(serial, license);
                }
            })
        })
        .collect();

    let mut kills = 0;
    let (mut server, first) = Server::start(dir.path(), &v.ledger_path());
    *url.lock().unwrap() = Some(first);
    while kills < KILLS {
        // Let the clients renew for a random while, then kill the server
        // wherever it is (accepting, signing, committing).
        std::thread::sleep(Duration::from_millis(rng.between(20, 250)));
        *url.lock().unwrap() = None;
        server.kill();
        kills += 1;
        // What the clients had received before the kill.
        let before = received.lock().unwrap().licenses.clone();

        let (again, next) = Server::start(dir.path(), &v.ledger_path());
        server = again;
        check(&v, &serials, &before, &format!("after kill {kills}"));
        let conflicts = received.lock().unwrap().conflicts.clone();
        assert!(conflicts.is_empty(), "after kill {kills}: {conflicts:?}");
        *url.lock().unwrap() = Some(next);
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{kills} kills took {:?}",
            started.elapsed()
        );
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let r = received.lock().unwrap();
    check(&v, &serials, &r.licenses, "at the end");
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    server.kill();
    println!(
        "{kills} SIGKILLs in {:?}: {} licenses received ({} answers), all in the ledger",
        started.elapsed(),
        r.licenses.len(),
        r.answers
    );
    // The clients did renew between the kills.
    assert!(
        r.licenses.len() >= usize::try_from(KILLS).unwrap(),
        "{}",
        r.licenses.len()
    );
}

/// The ledger verifies, holds every license of `received` byte for byte,
/// and no sequence of a serial twice.
fn check(
    v: &TestVendor,
    serials: &[String],
    received: &BTreeMap<(String, u32), Vec<u8>>,
    when: &str,
) {
    let keys = [tessera_verifier::KeyEntry::new(v.signer.public_key(), 0)];
    let ledger = Ledger::open_read_only(&v.ledger_path()).unwrap();
    ledger
        .verify(&keys, None)
        .unwrap_or_else(|e| panic!("{when}: ledger verify: {e}"));
    for serial in serials {
        let history = ledger.history(serial).unwrap();
        let mut sequences = BTreeSet::new();
        for r in &history {
            assert!(
                sequences.insert(r.row.sequence),
                "{when}: {serial} sequence {} is in the ledger twice",
                r.row.sequence
            );
        }
        let mine = received.range((serial.clone(), 0)..=(serial.clone(), u32::MAX));
        for ((_, sequence), bytes) in mine {
            let recorded = history.iter().find(|r| r.row.sequence == *sequence);
            assert!(
                recorded.is_some_and(|r| r.row.bytes == *bytes),
                "{when}: the license {serial} #{sequence} a client received is not in the ledger as received"
            );
        }
    }
}

#[test]
fn two_instances_on_one_postgres_never_collide() {
    let Some(pg) = tessera_tests::postgres::PgServer::start() else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = std::path::PathBuf::from(pg.create_database());
    let v = TestVendor::with_ledger(dir.path(), NOW - 3600, url.clone()).unwrap();
    // Few serials, so both instances keep renewing the same ones at once.
    let serials = v.activate(64, 1, NOW - 3600).unwrap();
    let (a, url_a) = Server::start(dir.path(), &url);
    let (b, url_b) = Server::start(dir.path(), &url);
    let http = client(&v.pki).unwrap();
    let received: Arc<Mutex<Received>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    const THREADS: u64 = 32;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (http, received, next, retried, serials) = (
                http.clone(),
                Arc::clone(&received),
                Arc::clone(&next),
                Arc::clone(&retried),
                serials.clone(),
            );
            let base = if t % 2 == 0 {
                url_a.clone()
            } else {
                url_b.clone()
            };
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= u64::from(RENEWALS) {
                    break;
                }
                let serial = &serials[usize::try_from(n).unwrap() % serials.len()];
                // A new request (a new nonce) until one is answered: the
                // ledger may say it is busy (503), never anything else.
                for attempt in 0u64.. {
                    let (status, body) = renew(&http, &base, serial, (n << 8) | attempt).unwrap();
                    if status == 200 {
                        received.lock().unwrap().record(serial, body);
                        break;
                    }
                    assert!(
                        status == 503 && attempt < 20,
                        "{status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    retried.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = started.elapsed();
    a.kill();
    b.kill();
    let r = received.lock().unwrap();
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(r.answers, u64::from(RENEWALS));
    // Every answer a distinct (serial, sequence): 0 collisions.
    assert_eq!(r.licenses.len(), usize::try_from(RENEWALS).unwrap());
    check(&v, &serials, &r.licenses, "two instances");
    // And the ledger holds exactly those: 1 activation and the renewals
    // of each serial, sequences 1, 2, 3 ... without a gap.
    let ledger = Ledger::open_read_only(&url).unwrap();
    let mut total = 0;
    for serial in &serials {
        let sequences: Vec<u32> = ledger
            .history(serial)
            .unwrap()
            .iter()
            .map(|r| r.row.sequence)
            .collect();
        let n = u32::try_from(sequences.len()).unwrap();
        assert_eq!(sequences, (1..=n).collect::<Vec<_>>(), "{serial}");
        total += n - 1;
    }
    assert_eq!(total, RENEWALS);
    println!(
        "{RENEWALS} renewals through two instances on one PostgreSQL in {elapsed:?} ({} retried after 503)",
        retried.load(Ordering::SeqCst)
    );
}
