//! Seats end to end with the real binary: the vendor's license, seats
//! handed out, the vendor lowering a count in a renewed license (signed
//! here with `tessera_verifier::encode::sign_license` and the samples test
//! key, higher sequence, lower count), and the site's over-assigned
//! report in `check`, `status` and `seats`; a license without service; a
//! sharing client counting against its server's license.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use common::{at, locked_after, sign, Device, T0};
use tessera_verifier::armor;
use tessera_verifier::encode::SharingData;
use tessera_verifier::samples::{self, DAY};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Standard error without the warning every `--now` gives.
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("tessera-agent: warning: simulated time"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tessera-agent seats ARGS --now T` on `d`, with the exit code wanted.
fn seats(d: &Device, now: i64, args: &[&str], code: i32) -> std::process::Output {
    d.run(&[&["seats"], args].concat(), now, code)
}

#[test]
fn the_vendor_decreases_a_license_and_the_site_sees_the_over_assignment() {
    let d = Device::appliance();
    let first = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&first)
        .assert()
        .success();

    // Ten UC-BUSINESS users, one a day, and two Phone System users with
    // call recording.
    for n in 0..10 {
        let user = format!("user{n}@example.com");
        seats(
            &d,
            T0 + (n + 1) * DAY,
            &["assign", "--user", &user, "--profile", "UC-BUSINESS"],
            0,
        );
    }
    for (n, user) in ["anna", "ben"].iter().enumerate() {
        seats(
            &d,
            T0 + (11 + i64::try_from(n).unwrap()) * DAY,
            &[
                "assign",
                "--user",
                user,
                "--extension",
                &format!("100{n}"),
                "--base",
                "Phone System",
                "--addon",
                "call_recording",
            ],
            0,
        );
    }
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(T0 + 12 * DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(json(&out)["over_assigned"], serde_json::json!([]));

    // The vendor's modification: sequence 2, UC-BUSINESS 10 → 8,
    // call_recording on Phone System 52 → 1.
    let lowered = d.licensed(2, T0 + 20 * DAY, |l| {
        assert_eq!(l.entitlements.profiles[2].code, 3);
        l.entitlements.profiles[2].count = 8;
        assert_eq!(l.entitlements.bases[0].addons[0].code, 1);
        l.entitlements.bases[0].addons[0].count = 1;
    });
    d.cmd()
        .args(["install", "--now", &at(T0 + 20 * DAY)])
        .arg(&lowered)
        .assert()
        .success();

    // check: still full service (exit 0), with the over-assigned section.
    let now = T0 + 21 * DAY;
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(now)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let report = json(&out);
    assert_eq!(report["license"]["sequence"], 2);
    let over = report["over_assigned"].as_array().unwrap();
    assert_eq!(over.len(), 2, "{report:#}");
    let uc = over.iter().find(|o| o["kind"] == "profile").unwrap();
    assert_eq!(uc["name"], "UC-BUSINESS");
    assert_eq!(
        (
            uc["licensed"].as_u64(),
            uc["assigned"].as_u64(),
            uc["over"].as_u64()
        ),
        (Some(8), Some(10), Some(2))
    );
    let late: Vec<&str> = uc["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        late,
        ["user8@example.com", "user9@example.com"],
        "the latest assignments are over"
    );
    let rec = over.iter().find(|o| o["kind"] == "addon").unwrap();
    assert_eq!(rec["name"], "call_recording on Phone System");
    assert_eq!(rec["assignments"][0]["user"], "ben");

    let out = d
        .cmd()
        .args(["check", "--now", &at(now)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(
        text.contains("over-assigned: UC-BUSINESS: 8 licensed, 10 assigned, 2 over the limit; new ones are refused until 2 are unassigned or more are ordered"),
        "{text}"
    );
    let out = d
        .cmd()
        .args(["status", "--now", &at(now)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(
        text.contains("over-assigned:\n  UC-BUSINESS: 8 licensed, 10 assigned, 2 over the limit"),
        "{text}"
    );
    assert!(
        text.contains("user9@example.com (assigned 2026-01-11T00:00:00Z)"),
        "{text}"
    );

    // Nothing was deleted; the summary says so; new ones are refused.
    let out = seats(&d, now, &["list", "--json"], 0);
    assert_eq!(json(&out).as_array().unwrap().len(), 12);
    let out = seats(&d, now, &["summary"], 0);
    let text = stdout(&out);
    assert!(
        text.contains("counts from license SW-2026-000123 (sequence 2)"),
        "{text}"
    );
    let line = text.lines().find(|l| l.contains("UC-BUSINESS")).unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [
            "profile",
            "UC-BUSINESS",
            "(3)",
            "8",
            "10",
            "0",
            "OVER",
            "BY",
            "2"
        ],
        "{text}"
    );
    let out = seats(
        &d,
        now,
        &["assign", "--user", "new", "--profile", "UC-BUSINESS"],
        2,
    );
    assert_eq!(
        stderr(&out).trim(),
        "tessera-agent: UC-BUSINESS: 8 licensed, 10 assigned (over the limit since the license changed); unassign 3 or order more"
    );
    let out = seats(
        &d,
        now,
        &[
            "assign",
            "--user",
            "new",
            "--profile",
            "UC-BUSINESS",
            "--json",
        ],
        2,
    );
    assert_eq!(json(&out)["error"]["code"], "seat_limit");
    // Other licenses still work.
    seats(
        &d,
        now,
        &["assign", "--user", "new", "--profile", "PBX-BASIC"],
        0,
    );

    // The listed over-limit assignments are the ones to unassign.
    let out = seats(
        &d,
        now,
        &["list", "--over", "--profile", "UC-BUSINESS", "--json"],
        0,
    );
    let over_ids: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(over_ids.len(), 2);
    for id in &over_ids {
        seats(&d, now, &["unassign", id], 0);
    }
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(now)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(json(&out)["over_assigned"].as_array().unwrap().len(), 1);
    // 8 of 8: still no room for a new one, until one more goes.
    let out = seats(
        &d,
        now,
        &["assign", "--user", "new2", "--profile", "UC-BUSINESS"],
        2,
    );
    assert!(
        stderr(&out).contains("UC-BUSINESS: 8 licensed, 8 assigned; unassign one or order more")
    );
    seats(&d, now, &["terminate", &over_ids[0]], 0);
    seats(&d, now, &["unassign", "--user", "user0@example.com"], 0);
    seats(
        &d,
        now,
        &["assign", "--user", "new2", "--profile", "UC-BUSINESS"],
        0,
    );
}

#[test]
fn without_full_service_nothing_new_is_assigned() {
    let d = Device::appliance();
    let lic = d.licensed(1, T0, |l| locked_after(l, 30));
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&lic)
        .assert()
        .success();
    let out = seats(
        &d,
        T0 + DAY,
        &[
            "assign",
            "--user",
            "a",
            "--extension",
            "1001",
            "--base",
            "4",
            "--addon",
            "1",
            "--json",
        ],
        0,
    );
    let uuid = json(&out)["uuid"].as_str().unwrap().to_owned();
    // 30 days of lease, 72 hours of grace, then locked.
    let locked = T0 + 40 * DAY;
    d.cmd()
        .args(["check", "--now", &at(locked)])
        .assert()
        .code(13);
    let out = seats(
        &d,
        locked,
        &["assign", "--user", "b", "--profile", "PBX-BASIC", "--json"],
        2,
    );
    let err = json(&out);
    assert_eq!(err["error"]["code"], "no_service");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("(locked:"),
        "{err}"
    );
    seats(
        &d,
        locked,
        &["addons", &uuid, "--add", "device_ip_phone"],
        2,
    );
    seats(
        &d,
        locked,
        &["addons", &uuid, "--remove", "call_recording"],
        0,
    );
    seats(&d, locked, &["unassign", &uuid[..8]], 0);
    seats(&d, locked, &["reassign", &uuid, "--user", "c"], 2);
    seats(&d, locked, &["terminate", &uuid], 0);
    let out = seats(&d, locked, &["summary", "--json"], 0);
    let s = json(&out);
    assert_eq!(s["may_assign"], false);
    assert!(s["reason"].as_str().unwrap().contains("locked"), "{s}");

    // A device not provisioned yet (its keyring only): nothing to list,
    // nothing to assign, and nothing is created in its folder.
    let fresh = Device::appliance();
    for args in [&["list"][..], &["assign", "--user", "a", "--profile", "1"]] {
        let out = seats(&fresh, T0, args, 2);
        assert!(
            stderr(&out).contains("no license is installed"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(fs::read_dir(fresh.state.path()).unwrap().count(), 1);
    // Provisioned (a request made), no license: list works, assign does not.
    fresh
        .cmd()
        .args(["request", "--now", &at(T0)])
        .assert()
        .code(0);
    seats(&fresh, T0, &["list"], 0);
    let out = seats(&fresh, T0, &["assign", "--user", "a", "--profile", "1"], 2);
    assert!(
        stderr(&out).contains("no license is installed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_sharing_client_uses_the_servers_counts_from_agent_toml() {
    let d = Device::appliance();
    let lic = d.licensed(1, T0, |l| {
        l.serial = "SW-2026-000124".into();
        l.entitlements = Default::default();
        l.services = Vec::new();
        l.sharing = SharingData::Client("SW-2026-000123".into());
    });
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&lic)
        .assert()
        .success();
    let out = seats(
        &d,
        T0 + DAY,
        &["assign", "--user", "a", "--profile", "UC-BUSINESS"],
        2,
    );
    assert!(
        stderr(&out).contains("sharing client of SW-2026-000123"),
        "{}",
        stderr(&out)
    );

    // The server's license (bound to the server, not to this client).
    let mut server = samples::typical();
    server.sharing = SharingData::Server;
    server.entitlements.profiles[2].count = 1;
    fs::write(
        d.state_file("server-license.txt"),
        armor::encode(&sign(&server), armor::LABEL_LICENSE),
    )
    .unwrap();
    fs::write(
        d.state_file("agent.toml"),
        "server_license = \"server-license.txt\"\n",
    )
    .unwrap();
    seats(
        &d,
        T0 + DAY,
        &["assign", "--user", "a", "--profile", "UC-BUSINESS"],
        0,
    );
    let out = seats(
        &d,
        T0 + DAY,
        &["assign", "--user", "b", "--profile", "UC-BUSINESS"],
        2,
    );
    assert!(
        stderr(&out).contains("UC-BUSINESS: 1 licensed, 1 assigned"),
        "{}",
        stderr(&out)
    );
    let out = seats(&d, T0 + DAY, &["summary", "--json"], 0);
    let s = json(&out);
    assert_eq!(s["source"]["kind"], "server");
    assert_eq!(s["source"]["serial"], "SW-2026-000123");
    // The client's check reports against the server's counts too.
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(T0 + DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(json(&out)["over_assigned"], serde_json::json!([]));
    // --server-license on the command line wins over agent.toml.
    let mut other = server.clone();
    other.serial = "SW-2026-000999".into();
    let other_path = d.root.path().join("other.txt");
    fs::write(
        &other_path,
        armor::encode(&sign(&other), armor::LABEL_LICENSE),
    )
    .unwrap();
    let out = d
        .cmd()
        .args(["seats", "--server-license"])
        .arg(&other_path)
        .args(["summary", "--now", &at(T0 + DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(
        stdout(&out).contains("is the license of SW-2026-000999"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_damaged_seat_store_never_fails_the_check() {
    let d = Device::appliance();
    let lic = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&lic)
        .assert()
        .success();
    fs::write(
        d.state_file("seats.db"),
        b"this is not a database, just bytes",
    )
    .unwrap();
    let out = d
        .cmd()
        .args(["check", "--now", &at(T0 + DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(
        stdout(&out).contains("note: seats not checked: the seat store"),
        "{}",
        stdout(&out)
    );
    let out = seats(&d, T0 + DAY, &["list", "--json"], 2);
    assert_eq!(json(&out)["error"]["code"], "seat_store");
}

/// A `seats.db` of 0 bytes (a full disk, a restore cut short) once read as
/// a new, empty store: 50,000 assignments silently gone. A new store is
/// made whole and then renamed into place, so an empty one is damage: it
/// is refused, kept as it is, and the periodic check still passes.
#[test]
fn an_empty_seat_store_is_refused_not_reset() {
    let d = Device::activated();
    seats(&d, T0, &["assign", "--user", "alice", "--profile", "1"], 0);
    assert!(!d.state_file("seats.db.new").exists());
    fs::write(d.state_file("seats.db"), b"").unwrap();
    for args in [
        &["list"][..],
        &["assign", "--user", "bob", "--profile", "1"],
    ] {
        let out = seats(&d, T0 + DAY, &[args, &["--json"]].concat(), 2);
        let v = json(&out);
        assert_eq!(v["error"]["code"], "seat_store", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("is empty (0 bytes)"), "{message}");
        assert!(
            message.contains("restore seats.db from a backup"),
            "{message}"
        );
    }
    assert_eq!(fs::metadata(d.state_file("seats.db")).unwrap().len(), 0);
    d.run(&["check"], T0 + DAY, 0);
    // Removing it starts again, with no seats.
    fs::remove_file(d.state_file("seats.db")).unwrap();
    let out = seats(&d, T0 + DAY, &["list", "--json"], 0);
    assert_eq!(json(&out).as_array().map(Vec::len), Some(0));
}

/// A catalog whose names read as other codes (base license 4 named "2",
/// 2 named "4") or as each other (`PBX-BASIC` and `pbx-basic`) would make
/// an export import as other licenses: it is refused when it is read,
/// naming both entries, and nothing is assigned.
#[test]
fn a_catalog_whose_names_collide_is_refused() {
    let d = Device::activated();
    let catalog = d.root.path().join("catalog.toml");
    for (text, expect) in [
        (
            "[[base]]\ncode = 4\nname = \"2\"\n[[base]]\ncode = 2\nname = \"4\"\n",
            "base license code 4 (`2`) is a number",
        ),
        (
            "[[profile]]\ncode = 1\nname = \"PBX-BASIC\"\n[[profile]]\ncode = 3\nname = \"pbx-basic\"\n",
            "`PBX-BASIC` (code 1) and `pbx-basic` (code 3) differ only in case",
        ),
    ] {
        fs::write(&catalog, text).unwrap();
        let out = seats(
            &d,
            T0 + DAY,
            &[
                "assign",
                "--user",
                "alice",
                "--base",
                "4",
                "--catalog",
                catalog.to_str().unwrap(),
            ],
            2,
        );
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    }
    let out = seats(&d, T0 + DAY, &["list", "--json"], 0);
    assert_eq!(json(&out), serde_json::json!([]));
}
