//! Crash safety of the state directory with the real binary: the agent is
//! killed with SIGKILL between the steps of an install (and of a check's
//! state update), then the next run must find the old or the new license
//! in force, never none, and give full service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

const POINTS: [&str; 6] = [
    "license-temp-torn",
    "license-temp-written",
    "license-renamed",
    "state-temp-torn",
    "state-temp-written",
    "state-renamed",
];

/// Runs the agent with a pausing fail point, waits until it reports the
/// point, and kills it with SIGKILL.
fn kill_at(d: &Device, point: &str, args: &[&str]) {
    let mut child = d
        .std_cmd()
        .env("TESSERA_AGENT_FAILPOINT", format!("{point}:pause"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let want = format!("tessera-agent: fail point {point} reached");
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line == want => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("{point}: the agent never reached the fail point ({e})");
            }
        }
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no unlock
    // other than the kernel's.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{point}");
}

fn sequence_in_force(d: &Device, now: i64) -> u64 {
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(now)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mode"], "full");
    json["license"]["sequence"].as_u64().unwrap()
}

#[test]
fn install_killed_between_every_step() {
    for point in POINTS {
        let d = Device::appliance();
        let first = d.licensed(1, T0, |_| {});
        d.cmd()
            .args(["install", "--now", &at(T0)])
            .arg(&first)
            .assert()
            .success();
        let renewal = d.licensed(2, T0 + 10 * DAY, |_| {});
        let now = at(T0 + 10 * DAY);
        kill_at(
            &d,
            point,
            &["install", "--now", &now, renewal.to_str().unwrap()],
        );

        let seq = sequence_in_force(&d, T0 + 11 * DAY);
        let want = if point.starts_with("license-temp") {
            1
        } else {
            2
        };
        assert_eq!(seq, want, "{point}");
        assert!(d.state_file("license").exists(), "{point}");
        // No temporary file (`NAME.new-...`) is left behind.
        let leftovers: Vec<String> = std::fs::read_dir(d.state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".new"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: {leftovers:?}");
        // The interrupted install can simply be repeated.
        d.cmd()
            .args(["install", "--now", &at(T0 + 11 * DAY)])
            .arg(&renewal)
            .assert()
            .code(0);
        assert_eq!(sequence_in_force(&d, T0 + 12 * DAY), 2, "{point}");
    }
}

#[test]
fn first_install_killed_leaves_nothing_or_the_license() {
    for point in POINTS {
        let d = Device::appliance();
        let first = d.licensed(1, T0, |_| {});
        let now = at(T0);
        kill_at(
            &d,
            point,
            &["install", "--now", &now, first.to_str().unwrap()],
        );
        let out = d
            .cmd()
            .args(["check", "--now", &at(T0 + DAY)])
            .assert()
            .get_output()
            .clone();
        let code = out.status.code().unwrap();
        match point {
            // Nothing was installed: still not activated.
            "license-temp-torn" | "license-temp-written" => {
                assert_eq!(code, 2, "{point}");
                assert!(String::from_utf8_lossy(&out.stderr).contains("no license is installed"));
            }
            // The license is in place: with the fresh state stored before
            // it (provisioning), the check accepts and records it.
            _ => assert_eq!(code, 0, "{point}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
}

#[test]
fn check_killed_while_storing_the_state() {
    for point in ["state-temp-torn", "state-temp-written", "state-renamed"] {
        let d = Device::appliance();
        let first = d.licensed(1, T0, |_| {});
        d.cmd()
            .args(["install", "--now", &at(T0)])
            .arg(&first)
            .assert()
            .success();
        let now = at(T0 + DAY);
        kill_at(&d, point, &["check", "--now", &now]);
        assert_eq!(sequence_in_force(&d, T0 + 2 * DAY), 1, "{point}");
    }
}

/// Kills at arbitrary moments, without fail points: whatever the timing,
/// the license in force afterwards is the old or the new one.
#[test]
fn install_killed_at_random_moments() {
    let d = Device::appliance();
    let first = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&first)
        .assert()
        .success();
    for (i, delay_us) in [0u64, 200, 500, 1_000, 2_000, 3_000, 5_000, 8_000]
        .into_iter()
        .enumerate()
    {
        let seq = u32::try_from(i).unwrap() + 2;
        let issued = T0 + i64::from(seq) * DAY;
        let next = d.licensed(seq, issued, |_| {});
        let before = sequence_in_force(&d, issued);
        let mut child = d
            .std_cmd()
            .args(["install", "--now", &at(issued)])
            .arg(&next)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(delay_us));
        let _ = child.kill();
        let _ = child.wait();
        let after = sequence_in_force(&d, issued);
        assert!(
            after == before || after == u64::from(seq),
            "{after} after kill at {delay_us} us"
        );
        // Make sure the next round starts from this license.
        d.cmd()
            .args(["install", "--now", &at(issued)])
            .arg(&next)
            .assert()
            .code(0);
    }
}
