//! Voiding a license issued in error (`tessera void`): it is superseded by
//! the next sequence within 1 business day, and the ledger keeps both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_error, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

// A Friday.
const T0: &str = "2026-01-02T09:00:00Z";

fn licensed() -> (Vendor, Site) {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    (vendor, site)
}

/// An increase typed with one zero too many, installed by the site.
fn mistaken_change(vendor: &Vendor, site: &Site) -> String {
    OrderSpec {
        profiles: &[("PBX-BASIC", 200), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(vendor, "typo.toml");
    let summary = vendor
        .at(
            "2026-01-02T10:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2026-000001",
                "--order",
                "typo.toml",
                "-o",
                "typo.lic",
                "--json",
            ],
        )
        .ok()
        .json();
    let status = site
        .install(&vendor.path("typo.lic"), "2026-01-02T10:00:00Z")
        .ok()
        .json();
    assert_eq!(status["entitlements"]["total_users"], 215);
    summary["license_id"].as_str().unwrap().to_owned()
}

fn void(vendor: &Vendor, now: &str, id: &str, out: &str) -> common::Run {
    void_with(vendor, &[], now, id, out)
}

/// `void`, after the global options `before` (`--catalog FILE`).
fn void_with(vendor: &Vendor, before: &[&str], now: &str, id: &str, out: &str) -> common::Run {
    let mut args = before.to_vec();
    args.extend([
        "void",
        "--license",
        id,
        "--reason",
        "PBX-BASIC 200 typed for 20",
        "-o",
        out,
        "--json",
    ]);
    vendor.at(now, &args)
}

#[test]
fn voiding_a_change_issued_in_error_restores_the_license_before_it() {
    let (vendor, site) = licensed();
    let typo = mistaken_change(&vendor, &site);
    let summary = void(&vendor, "2026-01-02T11:00:00Z", &typo, "void.lic")
        .ok()
        .json();
    assert_eq!(summary["action"], "void");
    assert_eq!(summary["sequence"], 3);
    let status = site
        .install(&vendor.path("void.lic"), "2026-01-02T11:00:00Z")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["license"]["sequence"], 3);
    assert_eq!(status["entitlements"]["total_users"], 35);
    // The voided file cannot come back.
    let run = site
        .install(&vendor.path("typo.lic"), "2026-01-02T12:00:00Z")
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "superseded");

    // The ledger keeps both, with the reason.
    let show = vendor.ledger_show("SW-2026-000001");
    let licenses = show["licenses"].as_array().unwrap();
    assert_eq!(licenses.len(), 3);
    assert_eq!(licenses[1]["action"], "change");
    assert_eq!(licenses[1]["license_id"], typo.as_str());
    assert_eq!(licenses[2]["action"], "void");
    let text = vendor
        .tessera(&["ledger", "show", "SW-2026-000001"])
        .ok()
        .stdout;
    assert!(text.contains("PBX-BASIC 200 typed for 20"), "{text}");
    assert!(text.contains(&typo), "{text}");
    vendor.tessera(&["ledger", "verify"]).ok();
}

#[test]
fn a_void_after_one_business_day_is_refused() {
    let (vendor, site) = licensed();
    let typo = mistaken_change(&vendor, &site);
    // Issued on a Friday: the next business day is Monday.
    void(&vendor, "2026-01-06T09:00:00Z", &typo, "late.lic")
        .code(vendor_exit::POLICY)
        .says("1 business day");
    void(&vendor, "2026-01-05T17:00:00Z", &typo, "monday.lic").ok();
}

#[test]
fn the_catalogs_holidays_are_not_business_days() {
    let (vendor, site) = licensed();
    let typo = mistaken_change(&vendor, &site);
    // Monday 2026-01-05 is a holiday at this vendor: Tuesday counts.
    let catalog = vendor.catalog_with(
        "holidays.toml",
        &[("holidays = []", "holidays = [\"2026-01-05\"]")],
    );
    let catalog = ["--catalog", catalog.to_str().unwrap()];
    void_with(&vendor, &catalog, "2026-01-07T00:00:00Z", &typo, "late.lic")
        .code(vendor_exit::POLICY)
        .says("2026-01-07T00:00:00Z");
    void_with(
        &vendor,
        &catalog,
        "2026-01-06T17:00:00Z",
        &typo,
        "tuesday.lic",
    )
    .ok();
}

#[test]
fn only_the_license_in_force_can_be_voided() {
    let (vendor, site) = licensed();
    let typo = mistaken_change(&vendor, &site);
    let first = vendor.ledger_show("SW-2026-000001")["licenses"][0]["license_id"]
        .as_str()
        .unwrap()
        .to_owned();
    void(&vendor, "2026-01-02T11:00:00Z", &first, "old.lic")
        .code(vendor_exit::POLICY)
        .says("superseded");
    void(&vendor, "2026-01-02T11:00:00Z", &typo, "void.lic").ok();
    // Voiding a void is refused too: it restores, it is not a mistake.
    let again = vendor.ledger_show("SW-2026-000001")["licenses"][2]["license_id"]
        .as_str()
        .unwrap()
        .to_owned();
    void(&vendor, "2026-01-02T12:00:00Z", &again, "again.lic").code(vendor_exit::POLICY);
    void(
        &vendor,
        "2026-01-02T12:00:00Z",
        "00112233445566778899aabbccddeeff",
        "none.lic",
    )
    .code(vendor_exit::USAGE)
    .says("no license");
}

#[test]
fn voiding_a_first_activation_in_error_then_issuing_the_right_one() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let wrong = OrderSpec {
        customer: "Wrong Customer GmbH",
        ..OrderSpec::default()
    }
    .write(&vendor, "wrong.toml");
    let (summary, _) = activate(&vendor, &site, &wrong, T0, "wrong.lic");
    let id = summary["license_id"].as_str().unwrap().to_owned();
    let voided = void(&vendor, "2026-01-02T09:30:00Z", &id, "void.lic")
        .ok()
        .json();
    assert_eq!(voided["sequence"], 2);
    // The void grants nothing: the PBX is locked until the right license.
    let status = site
        .install(&vendor.path("void.lic"), "2026-01-02T09:30:00Z")
        .code(agent_exit::LOCKED)
        .json();
    assert_eq!(status["entitlements"]["total_users"], 0);

    // The right order is issued as a first license again.
    OrderSpec::default().write(&vendor, "right.toml");
    let req = site.request("2026-01-02T10:00:00Z");
    let (run, lic) = vendor.answer(
        "2026-01-02T10:00:00Z",
        &["issue", "--order", "right.toml"],
        &req,
        "right.lic",
    );
    let right = run.ok().json();
    assert_eq!(right["sequence"], 3);
    assert_eq!(right["customer"], "Example Dental Clinic");
    let status = site
        .install(&lic, "2026-01-02T10:00:00Z")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["license"]["previous_serial"], "HW-7F3A-0042");
    assert_eq!(status["license"]["customer"], "Example Dental Clinic");
}
