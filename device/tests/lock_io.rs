//! Slow readers and writers never hold the state folder's lock: a seats
//! command reads its input whole before it locks the folder and prints
//! after it releases it, so the periodic `check` is never held up by an
//! operator's pager, a full pipe or input that never comes; inputs that
//! could block for ever (a FIFO) are refused at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::time::Duration;
use std::io::Read as _;
use std::process::{Child, Stdio};
use std::time::Instant;

use common::{at, mkfifo, Device, T0};
use tessera_verifier::samples::DAY;

const SEATS: usize = 3000;

/// An activated appliance with 3,000 seats (more output than a pipe
/// holds).
fn busy_site() -> Device {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |l| {
        l.entitlements.profiles[0].count = 5000;
    });
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(0);
    let mut csv = String::from("extension_key,number,user\n");
    for n in 0..SEATS {
        csv.push_str(&format!("profile:1,{},user{n}@example.com\n", 10_000 + n));
    }
    let file = d.root.path().join("seats.csv");
    std::fs::write(&file, csv).unwrap();
    d.cmd()
        .args(["seats", "import", "--now", &at(T0)])
        .arg(&file)
        .assert()
        .code(0);
    d
}

/// The periodic check, which must answer at once (exit 0), well within
/// the 30 s another agent's lock would make it wait.
fn check_answers_at_once(d: &Device, what: &str) {
    let start = Instant::now();
    d.cmd()
        .args(["check", "--now", &at(T0 + DAY)])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(0);
    assert!(start.elapsed() < Duration::from_secs(20), "{what}");
}

/// Lets `child` run into its blocked write or read.
fn settle(child: &mut Child) {
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "it did not block");
}

#[test]
fn a_reader_that_does_not_read_holds_up_no_check() {
    let d = busy_site();
    for args in [
        &["seats", "list"][..],
        &["seats", "list", "--json"],
        &["seats", "export"],
    ] {
        let mut child = d
            .std_cmd()
            .args(args)
            .args(["--now", &at(T0 + DAY)])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        settle(&mut child);
        check_answers_at_once(&d, &args.join(" "));
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        assert!(child.wait().unwrap().success(), "{args:?}");
        assert!(out.len() > 64 * 1024, "{args:?}: {} bytes", out.len());
    }
}

#[test]
fn input_that_never_comes_holds_up_no_check() {
    let d = busy_site();
    let mut child = d
        .std_cmd()
        .args(["seats", "import", "-", "--now", &at(T0 + DAY)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    settle(&mut child);
    check_answers_at_once(&d, "seats import -");
    // The input arrives after all and is imported.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(
        &mut stdin,
        b"extension_key,number,user\nprofile:2,,late@example.com\n",
    )
    .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap().contains("1 created"));
}

#[test]
fn a_fifo_as_input_is_refused_at_once() {
    let d = busy_site();
    let fifo = d.root.path().join("input.fifo");
    mkfifo(&fifo);
    for args in [
        &["seats", "import"][..],
        &["install"],
        &["install", "--recover"],
    ] {
        let start = Instant::now();
        d.cmd()
            .args(args)
            .arg(&fifo)
            .args(["--now", &at(T0 + DAY)])
            .timeout(Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicates::str::contains("not a regular file"))
            .stderr(predicates::str::contains("`-`"));
        assert!(start.elapsed() < Duration::from_secs(10), "{args:?}");
    }
    check_answers_at_once(&d, "after the FIFO");
}

#[test]
fn seats_list_into_head_ends_quietly() {
    let d = busy_site();
    // More than a pipe holds: `head -1` closes it while the agent writes.
    let full = d.run(&["seats", "list"], T0 + DAY, 0);
    assert!(full.stdout.len() > 64 * 1024, "{} bytes", full.stdout.len());
    for list in ["seats list", "seats list --json"] {
        let script = format!(
            "set -o pipefail; \"$AGENT\" --state-dir \"$STATE\" --sysroot \"$ROOT\" {list} --now {} | head -1",
            at(T0 + DAY)
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("AGENT", common::agent_bin())
            .env("STATE", d.state.path())
            .env("ROOT", d.root.path())
            .env_remove("TESSERA_STATE_DIR")
            .env_remove("TESSERA_AGENT_CONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{list}: {out:?}");
        // Only the warning every `--now` gives.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .all(|l| l.starts_with("tessera-agent: warning: simulated time")),
            "{list}: {stderr}"
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
}
