//! The `tessera-server` binary on a ledger modified outside tessera while
//! it runs: refusals are 503 `ledger-modified`, `/readyz` says not ready,
//! and the finding is logged once, at error level (journald's priority
//! prefix when standard error is the journal), not once per request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::BufReader;
use std::process::Command;

use tessera_server::testing::{
    client, listening_url, renewal, server_command, ServerProcess, TestVendor,
};

const T: i64 = 1_767_258_000; // 2026-01-01T09:00:00Z

#[test]
fn a_modified_ledger_is_logged_once_at_error_level() {
    let dir = tempfile::tempdir().unwrap();
    let v = TestVendor::new(dir.path(), T).unwrap();
    let serial = v.activate(1, 1, T).unwrap().remove(0);
    let mut server = ServerProcess(
        server_command(env!("CARGO_BIN_EXE_tessera-server"), dir.path())
            // What systemd sets when standard error is the journal.
            .env("JOURNAL_STREAM", "8:12345")
            .spawn()
            .unwrap(),
    );
    let child = &mut server.0;
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let url = listening_url(&mut stderr).unwrap();
    let http = client(&v.pki).unwrap();
    let renew = |nonce: u64| {
        let mut r = http
            .post(format!("{url}/v1/renew"))
            .header("content-type", "application/cose")
            .send(&renewal(&serial, T + 3600, nonce).unwrap()[..])
            .unwrap();
        let body = r.body_mut().read_to_vec().unwrap();
        (
            r.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    };
    assert_eq!(renew(1).0, 200);

    rusqlite::Connection::open(v.ledger_path())
        .unwrap()
        .execute_batch("DELETE FROM hw_serials")
        .unwrap();
    for nonce in 2..5 {
        let (status, body) = renew(nonce);
        assert_eq!(status, 503, "{body}");
        assert!(
            body.contains("urn:tessera:problem:ledger-modified"),
            "{body}"
        );
    }
    for _ in 0..2 {
        let mut r = http.get(format!("{url}/readyz")).call().unwrap();
        assert_eq!(r.status().as_u16(), 503);
        let body = r.body_mut().read_to_string().unwrap();
        assert!(body.contains("ledger-modified"), "{body}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    let found: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("modified outside tessera"))
        .collect();
    assert_eq!(found.len(), 1, "{log}");
    assert!(
        found[0].starts_with("<3>tessera-server: error: the ledger was modified outside tessera"),
        "{log}"
    );
    assert!(found[0].contains("hw_serials"), "{log}");
    assert!(found[0].contains("tessera ledger verify"), "{log}");
}
