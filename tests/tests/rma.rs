//! Hardware replacement (RMA): a new appliance takes over the SW serial,
//! whether the old box is dead or still running. The old binding is never
//! renewed again, so a box that keeps running stops at its lease end plus
//! grace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_error, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";
const RMA: &str = "2026-01-10T09:00:00Z";

/// Activates the old box; returns vendor, old site and the new box.
fn setup() -> (Vendor, Site, Site) {
    let vendor = Vendor::new();
    let old = Site::appliance("HW-0LD0-0001", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &old, &order, T0, "old.lic");
    let new = Site::appliance("HW-NEW0-0002", 2);
    new.trust(&vendor);
    (vendor, old, new)
}

/// The new box asks (first activation, its own HW serial) and the vendor
/// replaces the binding of the SW serial.
fn replace(vendor: &Vendor, new: &Site) -> serde_json::Value {
    let req = new.request(RMA);
    let (run, lic) = vendor.answer(
        RMA,
        &["replace", "--serial", "SW-2026-000001", "--reason", "rma"],
        &req,
        "new.lic",
    );
    let summary = run.ok().json();
    new.install(&lic, RMA).code(agent_exit::FULL);
    summary
}

#[test]
fn rma_with_the_old_box_dead() {
    let (vendor, old, new) = setup();
    let before = old.status(T0).ok().json();
    // The old box is dead: it hands nothing back.
    drop(old);
    let summary = replace(&vendor, &new);
    assert_eq!(summary["action"], "replace");
    assert_eq!(summary["serial"], "SW-2026-000001");
    assert_eq!(summary["sequence"], 2);
    assert_eq!(summary["converted_from"], "HW-NEW0-0002");

    // Same name, entitlements and attached devices under the SW serial.
    let after = new.status(RMA).ok().json();
    assert_eq!(after["license"]["serial"], "SW-2026-000001");
    assert_eq!(after["license"]["previous_serial"], "HW-NEW0-0002");
    assert_eq!(after["license"]["pbx_name"], before["license"]["pbx_name"]);
    assert_eq!(after["license"]["customer"], before["license"]["customer"]);
    assert_eq!(after["entitlements"], before["entitlements"]);
    let show = vendor
        .tessera(&["ledger", "show", "SW-2026-000001"])
        .ok()
        .stdout;
    assert!(
        show.contains("device      Yealink T54W 80:5e:c0:11:22:33 (Reception)"),
        "{show}"
    );
    assert!(show.contains("replace"), "{show}");
    // Either HW serial finds the PBX.
    assert_eq!(
        vendor.ledger_show("HW-NEW0-0002")["serial"],
        "SW-2026-000001"
    );
    assert_eq!(
        vendor.ledger_show("HW-0LD0-0001")["serial"],
        "SW-2026-000001"
    );

    // The new box renews normally from now on.
    let req = new.request("2026-02-01T09:00:00Z");
    let (run, lic) = vendor.answer("2026-02-01T09:00:00Z", &["renew"], &req, "renewed.lic");
    assert_eq!(run.ok().json()["sequence"], 3);
    new.install(&lic, "2026-02-01T09:00:00Z")
        .code(agent_exit::FULL);
}

#[test]
fn rma_with_the_old_box_still_running_stops_it_after_lease_and_grace() {
    let (vendor, old, new) = setup();
    replace(&vendor, &new);

    // The old box keeps its license until the lease end ...
    old.check("2026-01-20T09:00:00Z").code(agent_exit::FULL);
    // ... but its renewal is refused from now on.
    let req = old.request("2026-01-25T09:00:00Z");
    let (run, _) = vendor.answer("2026-01-25T09:00:00Z", &["renew"], &req, "old-renewal.lic");
    run.code(vendor_exit::POLICY)
        .says("the binding of this request was replaced for SW-2026-000001");
    // Nor can it take the new box's license.
    let refused = old.install(&vendor.path("new.lic"), "2026-01-25T09:00:00Z");
    refused.code(agent_exit::REFUSED);
    // Lease end (2026-02-01T09:00) plus 14 days of grace, then emergency only.
    old.check("2026-02-01T09:00:00Z").code(agent_exit::GRACE);
    let stopped = old
        .check("2026-02-15T09:00:00Z")
        .code(agent_exit::EMERGENCY_ONLY)
        .json();
    assert_eq!(stopped["full_service"], false);
    // Meanwhile the new box is in full service.
    let req = new.request("2026-02-15T09:00:00Z");
    let (run, lic) = vendor.answer("2026-02-15T09:00:00Z", &["renew"], &req, "renewed.lic");
    run.ok();
    new.install(&lic, "2026-02-15T09:00:00Z")
        .code(agent_exit::FULL);
}

#[test]
fn the_new_box_cannot_take_the_old_license_file() {
    let (vendor, _old, new) = setup();
    // A partner carries the old license to the new box instead of asking:
    // it names another HW serial.
    let run = new
        .install(&vendor.path("old.lic"), RMA)
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "wrong_serial");
}

#[test]
fn replacing_needs_a_licensed_serial() {
    let (vendor, _old, new) = setup();
    let req = new.request(RMA);
    let (run, _) = vendor.answer(
        RMA,
        &["replace", "--serial", "SW-2026-999999", "--reason", "rma"],
        &req,
        "new.lic",
    );
    // A serial the ledger never saw is a typo, named as such.
    run.code(vendor_exit::USAGE)
        .says("SW-2026-999999 is not in the ledger");
}

#[test]
fn the_old_box_is_known_by_its_device_key_even_after_losing_its_license() {
    let (vendor, old, new) = setup();
    replace(&vendor, &new);
    // The old box loses its license and state (its device key stays) and
    // asks again as on its first day, under a fresh salt.
    std::fs::remove_file(old.state().join("license")).unwrap();
    std::fs::remove_file(old.state().join("state")).unwrap();
    let req = old.request("2026-01-26T09:00:00Z");
    let (run, _) = vendor.answer("2026-01-26T09:00:00Z", &["renew"], &req, "old-again.lic");
    run.code(vendor_exit::POLICY).says("was replaced");
    let (run, _) = vendor.answer(
        "2026-01-26T09:00:00Z",
        &["issue", "--order", "order.toml"],
        &req,
        "old-issue.lic",
    );
    run.code(vendor_exit::POLICY)
        .says("already has a license in force");
}
