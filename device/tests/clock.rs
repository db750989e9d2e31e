//! A clock set ahead once: every later check at the right time is a clock
//! rollback, since the time the device last saw only moves forward. The
//! way out needs what moving the clock cannot give: a license the vendor
//! signed after the one in force (higher sequence), installed with
//! `install --recover`, which resets the recorded time to that license's
//! issue time (`spec/RUNTIME.md` §6.3). A plain clock change still revives
//! no expired or superseded license.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{locked_after, Device, T0};
use tessera_verifier::samples::DAY;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

/// 2031-01-01, a clock set five years ahead.
const AHEAD: i64 = 1_924_992_000;

#[test]
fn a_clock_set_ahead_is_recovered_with_a_newer_license_only() {
    let d = Device::appliance();
    let first = d.licensed(1, T0, |_| {});
    d.run(&["install", first.to_str().unwrap()], T0, 0);
    d.run(&["check"], T0 + DAY, 0);
    // One forward step: the license looks expired (emergency only).
    d.run(&["check"], AHEAD, 12);
    // Back at the right time: refused, and the message says what was
    // recorded and how to recover.
    let now = T0 + 3 * DAY;
    let out = d.run(&["check", "--json"], now, 2);
    assert_eq!(json(&out)["error"]["code"], "clock_rollback");
    let err = stderr(&out);
    for word in [
        "2031-01-01T00:00:00Z",
        "2026-01-04T00:00:00Z",
        "install --recover",
        "newer",
    ] {
        assert!(err.contains(word), "{word} not in {err}");
    }
    // The same license again, with or without --recover: refused.
    d.run(&["install", first.to_str().unwrap()], now, 2);
    let out = d.run(
        &["install", "--recover", "--json", first.to_str().unwrap()],
        now,
        2,
    );
    assert_eq!(json(&out)["error"]["code"], "recovery_needs_newer_license");
    assert!(stderr(&out).contains("sequence 1"), "{}", stderr(&out));
    // A renewal issued now: a plain install is still a clock rollback ...
    let renewal = d.licensed(2, now, |_| {});
    let out = d.run(&["install", renewal.to_str().unwrap()], now, 2);
    assert!(
        stderr(&out).contains("install --recover"),
        "{}",
        stderr(&out)
    );
    // ... and with --recover it is installed, the recorded time reset.
    let out = d.run(
        &["install", "--recover", "--json", renewal.to_str().unwrap()],
        now,
        0,
    );
    let report = json(&out);
    assert_eq!(report["license"]["sequence"], 2);
    assert!(
        report["notes"].to_string().contains("2031-01-01T00:00:00Z"),
        "{report}"
    );
    d.run(&["check"], now, 0);
    d.run(&["check"], now + DAY, 0);
    // The clock still cannot go back before the renewal's issue time ...
    d.run(&["check"], now - 3 * DAY, 2);
    // ... and the older license stays superseded.
    let out = d.run(
        &["install", "--json", first.to_str().unwrap()],
        now + DAY,
        2,
    );
    assert_eq!(json(&out)["error"]["code"], "superseded");
}

#[test]
fn a_clock_change_alone_revives_no_expired_license() {
    let d = Device::appliance();
    let short = d.licensed(1, T0, |l| locked_after(l, 10));
    d.run(&["install", short.to_str().unwrap()], T0, 0);
    // Lease 10 days, grace 72 hours: locked on day 20.
    d.run(&["check"], T0 + 20 * DAY, 13);
    for back in [T0 + 5 * DAY, T0 + 15 * DAY, T0] {
        let out = d.run(&["check", "--json"], back, 2);
        assert_eq!(json(&out)["error"]["code"], "clock_rollback");
        // The license in force is no way out.
        let out = d.run(
            &["install", "--recover", "--json", short.to_str().unwrap()],
            back,
            2,
        );
        assert_eq!(json(&out)["error"]["code"], "recovery_needs_newer_license");
    }
    d.run(&["check"], T0 + 21 * DAY, 13);
    // A newer license issued before the clock was set back cannot
    // be used to wind it back before its own issue time.
    let renewal = d.licensed(2, T0 + 21 * DAY, |l| locked_after(l, 10));
    d.run(
        &["install", "--recover", renewal.to_str().unwrap()],
        T0 + 5 * DAY,
        2,
    );
    d.run(&["install", renewal.to_str().unwrap()], T0 + 21 * DAY, 0);
}

#[test]
fn a_simulated_time_is_announced_with_what_it_does_to_the_state() {
    let d = Device::appliance();
    let first = d.licensed(1, T0, |_| {});
    let out = d.run(&["install", first.to_str().unwrap()], T0, 0);
    let err = stderr(&out);
    assert_eq!(err.matches("simulated time").count(), 1, "{err}");
    for word in [
        "warning: simulated time 2026-",
        "--now",
        "highest time seen",
        "clock_rollback",
        "copy of the state folder",
    ] {
        assert!(err.contains(word), "{word} missing from:\n{err}");
    }
    // The vendor CLI's variable is not the agent's: it changes nothing.
    let out = d
        .cmd()
        .arg("status")
        .env("TESSERA_NOW", "2031-01-01")
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("simulated time"), "{}", stderr(&out));
}
