//! Migration: a HW PBX replaced by a VM and a VM replaced by a HW
//! appliance, keeping the SW serial with its name, entitlements and
//! attached devices.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";
const MOVE: &str = "2026-03-01T09:00:00Z";

#[test]
fn hw_to_vm_migration() {
    let vendor = Vendor::new();
    let hw = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &hw, &order, T0, "hw.lic");
    let before = hw.status(T0).ok().json();

    // The VM is given the SW serial and asks from there.
    let vm = Site::vm("SW-2026-000001", 7);
    vm.trust(&vendor);
    let req = vm.request(MOVE);
    let (run, lic) = vendor.answer(
        MOVE,
        &[
            "replace",
            "--serial",
            "SW-2026-000001",
            "--reason",
            "migrate",
        ],
        &req,
        "vm.lic",
    );
    let summary = run.ok().json();
    assert_eq!(summary["platform"], "vm");
    assert!(summary["converted_from"].is_null());
    let after = vm.install(&lic, MOVE).code(agent_exit::FULL).json();
    assert_eq!(after["license"]["platform"], "vm");
    assert_eq!(after["license"]["serial"], "SW-2026-000001");
    assert_eq!(after["license"]["pbx_name"], before["license"]["pbx_name"]);
    assert_eq!(after["entitlements"], before["entitlements"]);
    // The VM binds to VM identifiers (3 of its components).
    assert_eq!(after["binding"]["threshold"], 3);
    let show = vendor.ledger_show("SW-2026-000001");
    assert_eq!(show["licenses"][1]["platform"], "vm");
    assert_eq!(
        show["licenses"][1]["order"]["devices"][0]["model"],
        "Yealink T54W"
    );

    // The appliance is never renewed again.
    let req = hw.request("2026-03-02T09:00:00Z");
    let (run, _) = vendor.answer("2026-03-02T09:00:00Z", &["renew"], &req, "hw-renewal.lic");
    run.code(vendor_exit::POLICY).says("was replaced");
}

#[test]
fn vm_to_hw_migration() {
    let vendor = Vendor::new();
    let serial = vendor.add_pbx(T0, "vm", "yearly", "Example Dental Clinic");
    let vm = Site::vm(&serial, 3);
    let order = OrderSpec {
        platform: "vm",
        ..OrderSpec::default()
    }
    .write(&vendor, "vm.toml");
    activate(&vendor, &vm, &order, T0, "vm.lic");
    let before = vm.status(T0).ok().json();

    // A new appliance asks with its HW serial (its first activation).
    let hw = Site::appliance("HW-9C1D-0007", 9);
    hw.trust(&vendor);
    let req = hw.request(MOVE);
    let (run, lic) = vendor.answer(
        MOVE,
        &["replace", "--serial", &serial, "--reason", "migrate"],
        &req,
        "hw.lic",
    );
    let summary = run.ok().json();
    assert_eq!(summary["platform"], "hw");
    assert_eq!(summary["converted_from"], "HW-9C1D-0007");
    let after = hw.install(&lic, MOVE).code(agent_exit::FULL).json();
    assert_eq!(after["license"]["serial"], serial.as_str());
    assert_eq!(after["license"]["previous_serial"], "HW-9C1D-0007");
    assert_eq!(after["license"]["platform"], "hw");
    assert_eq!(after["entitlements"], before["entitlements"]);
    assert_eq!(
        vendor.ledger_show("HW-9C1D-0007")["serial"],
        serial.as_str()
    );

    // From now on the appliance asks with the SW serial and renews.
    let req = hw.request("2026-03-20T09:00:00Z");
    let (run, lic) = vendor.answer("2026-03-20T09:00:00Z", &["renew"], &req, "hw-2.lic");
    run.ok();
    hw.install(&lic, "2026-03-20T09:00:00Z")
        .code(agent_exit::FULL);
    // The VM is not.
    let req = vm.request("2026-03-20T09:00:00Z");
    let (run, _) = vendor.answer("2026-03-20T09:00:00Z", &["renew"], &req, "vm-2.lic");
    run.code(vendor_exit::POLICY).says("was replaced");
}
