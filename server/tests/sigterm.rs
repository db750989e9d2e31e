//! The `tessera-server` binary under SIGTERM with requests in flight:
//! it stops accepting, answers every request it had (each only once its
//! license is committed), and exits 0; the ledger verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Instant;

use tessera_server::testing::{
    client, listening_url, renewal, server_command, ServerProcess, TestVendor,
};
use tessera_signer::Signer as _;

const T: i64 = 1_767_258_000; // 2026-01-01T09:00:00Z

#[test]
fn sigterm_finishes_requests_in_flight_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let v = TestVendor::new(dir.path(), T).unwrap();
    let serial = v.activate(1, 1, T).unwrap().remove(0);
    let mut server = ServerProcess(
        server_command(env!("CARGO_BIN_EXE_tessera-server"), dir.path())
            .args(["--metrics-listen", "127.0.0.1:0"])
            .spawn()
            .unwrap(),
    );
    let child = &mut server.0;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let url = listening_url(&mut stderr).unwrap();
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let metrics = line
        .trim()
        .strip_prefix("tessera-server: metrics on ")
        .unwrap_or_else(|| panic!("no metrics URL: {line}"))
        .to_owned();
    assert!(metrics.starts_with("http://127.0.0.1:"), "{metrics}");
    let http = client(&v.pki).unwrap();
    // The devices' listener does not serve them.
    let r = http.get(format!("{url}/metrics")).call().unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Hold the ledger's write lock: renewals wait inside the server.
    let lock = rusqlite::Connection::open(v.ledger_path()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    const N: u32 = 6;
    let now = T + 3600;
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let http = http.clone();
            let url = format!("{url}/v1/renew");
            let body = renewal(&serial, now, u64::from(i) + 1).unwrap();
            std::thread::spawn(move || {
                let mut r = http
                    .post(&url)
                    .header("content-type", "application/cose")
                    .send(&body[..])
                    .unwrap();
                (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
            })
        })
        .collect();
    // All N inside (scrapes of the metrics listener are not counted).
    let want = format!("tessera_requests_in_flight {N}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = http
            .get(&metrics)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        if text.lines().any(|l| l == want) {
            break;
        }
        assert!(Instant::now() < deadline, "the requests never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("shutting down"), "{line}");
    // No new connections while it finishes.
    let addr = url.strip_prefix("https://").unwrap().to_owned();
    let refused = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::net::TcpStream::connect(&addr).is_err()
    });
    assert!(refused, "still accepting after SIGTERM");
    lock.execute_batch("ROLLBACK").unwrap();
    for t in clients {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest}");
    let ledger = tessera_issuer::ledger::Ledger::open_read_only(&v.ledger_path()).unwrap();
    assert_eq!(ledger.history(&serial).unwrap().len(), 1 + N as usize);
    ledger
        .verify(
            &[tessera_verifier::KeyEntry::new(v.signer.public_key(), 0)],
            None,
        )
        .unwrap();
}

/// Metrics on an address beyond loopback start with a warning that they
/// are plain HTTP without authentication; on loopback, without one.
#[test]
fn metrics_beyond_loopback_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let _v = TestVendor::new(dir.path(), T).unwrap();
    for (addr, warned) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let mut server = ServerProcess(
            server_command(env!("CARGO_BIN_EXE_tessera-server"), dir.path())
                .args(["--metrics-listen", addr])
                .spawn()
                .unwrap(),
        );
        let mut stderr = BufReader::new(server.0.stderr.take().unwrap());
        listening_url(&mut stderr).unwrap();
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("metrics on"), "{line}");
        // The warning comes next, before anything else is printed; on
        // loopback the next line is whatever the server prints on
        // SIGTERM.
        let status = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut next = String::new();
        stderr.read_line(&mut next).unwrap();
        assert_eq!(
            next.contains("warning: the metrics (plain HTTP, no authentication)"),
            warned,
            "{addr}: {next}"
        );
        server.0.wait().unwrap();
    }
}
