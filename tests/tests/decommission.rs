//! Decrease to zero users (`tessera decommission`): the PBX stops after 5
//! calendar days and is irrevocably deleted after 14; adding a user
//! license back before the deletion cancels both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";
const ZERO: &str = "2026-03-03T10:00:00Z";

fn licensed() -> (Vendor, Site) {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    (vendor, site)
}

fn decommission(vendor: &Vendor, now: &str, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "decommission",
        "--serial",
        "SW-2026-000001",
        "-o",
        "zero.lic",
        "--json",
    ];
    args.extend(extra);
    vendor.at(now, &args)
}

#[test]
fn decrease_to_zero_stops_after_5_days_and_deletes_after_14() {
    let (vendor, site) = licensed();
    let summary = decommission(&vendor, ZERO, &["--approval", "APP-2026-40"])
        .ok()
        .json();
    assert_eq!(summary["sequence"], 2);
    let warning = summary["warnings"][0].as_str().unwrap();
    assert!(warning.contains("stops 2026-03-08T10:00:00Z"), "{warning}");
    assert!(
        warning.contains("deleted 2026-03-17T10:00:00Z"),
        "{warning}"
    );
    // The license never runs past the stop.
    assert_eq!(summary["lease_end"], "2026-03-08T10:00:00Z");
    let show = vendor.ledger_show("SW-2026-000001");
    assert_eq!(show["schedule"]["stop_at"], "2026-03-08T10:00:00Z");
    assert_eq!(show["schedule"]["delete_at"], "2026-03-17T10:00:00Z");

    let status = site.install(&vendor.path("zero.lic"), ZERO).json();
    assert_eq!(status["entitlements"]["total_users"], 0);
    assert_eq!(status["decommissioned"]["stop"], "2026-03-08T10:00:00Z");
    assert_eq!(status["decommissioned"]["delete"], "2026-03-17T10:00:00Z");
    let due = site
        .check("2026-03-08T09:59:59Z")
        .code(agent_exit::RENEWAL_DUE);
    assert_eq!(due.json()["decommissioned"]["stopped"], false);
    // The site names the stop and the deletion, not a renewal or a grace.
    let text = site.agent(&["status", "--now", "2026-03-08T09:59:59Z"]);
    assert!(
        text.stdout.contains("decommissioned: stops on 2026-03-08T10:00:00Z; deleted on 2026-03-17T10:00:00Z unless a user license is added back"),
        "{} / {} / {}",
        text.code,
        text.stdout,
        text.stderr
    );
    assert!(!text.stdout.contains("grace end"), "{}", text.stdout);
    // Stopped at +5 days: no grace for a decommissioned PBX.
    let stopped = site
        .check("2026-03-08T10:00:00Z")
        .code(agent_exit::LOCKED)
        .json();
    assert_eq!(stopped["full_service"], false);
    assert_eq!(stopped["decommissioned"]["stopped"], true);
    let text = site.agent(&["check", "--now", "2026-03-10T10:00:00Z"]);
    let first = text.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with("stopped on 2026-03-08T10:00:00Z; deleted on 2026-03-17T10:00:00Z unless a user license is added back"),
        "{}{}",
        text.stdout,
        text.stderr
    );
    // After the deletion date the site is not offered a way back.
    let text = site.agent(&["check", "--now", "2026-03-18T10:00:00Z"]);
    let first = text.stdout.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with("stopped on 2026-03-08T10:00:00Z; irrevocably deleted on 2026-03-17T10:00:00Z: adding a user license no longer brings it back"),
        "{}{}",
        text.stdout,
        text.stderr
    );
    let status = site.agent(&["status", "--now", "2026-03-18T10:00:00Z"]);
    assert!(
        !status
            .stdout
            .contains("unless a user license is added back"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("2026-03-17T10:00:00Z (irrevocable: it has come)"),
        "{}",
        status.stdout
    );
    assert!(!text.stdout.contains("grace"), "{}", text.stdout);
    // A renewal before the stop ends at the stop; after it, the PBX is
    // not renewed (no license whose lease ends when it is issued, no new
    // "last renewal" at the site), and the refusal names both dates.
    let req = site.request("2026-03-05T10:00:00Z");
    let (run, _) = vendor.answer("2026-03-05T10:00:00Z", &["renew"], &req, "renew.lic");
    assert_eq!(run.ok().json()["lease_end"], "2026-03-08T10:00:00Z");
    let req = site.request("2026-03-09T10:00:00Z");
    let (run, lic) = vendor.answer("2026-03-09T10:00:00Z", &["renew"], &req, "stopped.lic");
    run.code(vendor_exit::POLICY)
        .says("was stopped on 2026-03-08T10:00:00Z")
        .says("deleted on 2026-03-17T10:00:00Z unless a user license is added back");
    assert!(!lic.exists());

    // Reports list PBXs in force: the stopped PBX only with --all.
    let overdue = vendor
        .at("2026-03-09T10:00:00Z", &["report", "overdue", "--json"])
        .ok()
        .json();
    assert_eq!(overdue["overdue"].as_array().unwrap().len(), 0, "{overdue}");
    let all = vendor
        .at(
            "2026-03-09T10:00:00Z",
            &["report", "overdue", "--all", "--json"],
        )
        .ok()
        .json();
    assert_eq!(all["overdue"][0]["serial"], "SW-2026-000001");
    assert_eq!(all["overdue"][0]["state"], "stopped");
    let list = vendor
        .at("2026-03-09T10:00:00Z", &["ledger", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[0]["state"], "stopped");

    // Deleted at +14 days: nothing is issued for it any more.
    let req = site.request("2026-03-17T10:00:00Z");
    let (run, _) = vendor.answer("2026-03-17T10:00:00Z", &["renew"], &req, "late.lic");
    run.code(vendor_exit::POLICY)
        .says("was deleted on 2026-03-17T10:00:00Z");
    // Deleted: left out of every report, shown as deleted in the lists.
    for report in [
        &["report", "overdue", "--json"][..],
        &["report", "expiring", "--within", "400", "--json"],
    ] {
        let out = vendor.at("2026-03-18T10:00:00Z", report).ok().json();
        assert!(!out.to_string().contains("SW-2026-000001"), "{out}");
    }
    let all = vendor
        .at(
            "2026-03-18T10:00:00Z",
            &["report", "expiring", "--within", "400", "--all", "--json"],
        )
        .ok()
        .json();
    assert_eq!(all["expiring"][0]["state"], "deleted");
    let pbxs = vendor
        .at(
            "2026-03-18T10:00:00Z",
            &["pbx", "list", "--state", "deleted", "--json"],
        )
        .ok()
        .json();
    assert_eq!(pbxs[0]["serial"], "SW-2026-000001");
    assert_eq!(pbxs[0]["state"], "deleted");
    vendor
        .at(
            "2026-03-18T10:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2026-000001",
                "--order",
                "order.toml",
                "-o",
                "back.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("cannot be licensed again");
}

#[test]
fn adding_a_user_back_before_the_deletion_cancels_it() {
    let (vendor, site) = licensed();
    decommission(&vendor, ZERO, &["--approval", "APP-2026-41"]).ok();
    site.install(&vendor.path("zero.lic"), ZERO);
    site.check("2026-03-09T10:00:00Z").code(agent_exit::LOCKED);
    // Undo after the stop, before the deletion: one user back.
    OrderSpec {
        profiles: &[("PBX-BASIC", 1)],
        ..OrderSpec::default()
    }
    .write(&vendor, "one.toml");
    let summary = vendor
        .at(
            "2026-03-10T10:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2026-000001",
                "--order",
                "one.toml",
                "-o",
                "one.lic",
                "--json",
            ],
        )
        .ok()
        .json();
    assert!(summary["warnings"][0]
        .as_str()
        .unwrap()
        .contains("scheduled stop and deletion are cancelled"));
    assert_eq!(summary["lease_end"], "2026-04-09T10:00:00Z");
    assert!(vendor.ledger_show("SW-2026-000001")["schedule"].is_null());
    let status = site
        .install(&vendor.path("one.lic"), "2026-03-10T10:00:00Z")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["entitlements"]["total_users"], 1);
    // Renewals are no longer cut at the old stop ...
    let req = site.request("2026-03-20T10:00:00Z");
    let (run, lic) = vendor.answer("2026-03-20T10:00:00Z", &["renew"], &req, "renewed.lic");
    assert_eq!(run.ok().json()["lease_end"], "2026-04-19T10:00:00Z");
    site.install(&lic, "2026-03-20T10:00:00Z")
        .code(agent_exit::FULL);
    // ... and the grace is back to the platform's 14 days.
    site.check("2026-04-20T10:00:00Z").code(agent_exit::GRACE);
}

#[test]
fn decommission_refusals() {
    let (vendor, _site) = licensed();
    // A decrease: approval needed, never on the last day of a month.
    decommission(&vendor, ZERO, &[])
        .code(vendor_exit::POLICY)
        .says("pass --approval REF");
    decommission(&vendor, "2026-03-31T10:00:00Z", &["--approval", "APP-1"])
        .code(vendor_exit::POLICY)
        .says("last day of a month");
    // Nothing to decommission twice.
    decommission(&vendor, ZERO, &["--approval", "APP-2"]).ok();
    vendor
        .at(
            "2026-03-04T10:00:00Z",
            &[
                "decommission",
                "--serial",
                "SW-2026-000001",
                "--approval",
                "APP-3",
                "-o",
                "again.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("already");
    // Lifetime licenses are never decreased.
    let serial = vendor.add_pbx(T0, "vm", "lifetime", "Example Dental Clinic");
    let vm = Site::vm(&serial, 2);
    let order = OrderSpec {
        platform: "vm",
        cycle: "lifetime",
        ..OrderSpec::default()
    }
    .write(&vendor, "lifetime.toml");
    activate(&vendor, &vm, &order, T0, "lifetime.lic");
    vendor
        .at(
            ZERO,
            &[
                "decommission",
                "--serial",
                &serial,
                "--approval",
                "APP-4",
                "-o",
                "lt.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("lifetime licenses can never be decreased");
}
