//! First activation of each platform: a HW appliance (its HW serial is
//! converted to a SW serial), a VM (the SW serial the vendor assigned) and
//! a Cloud PBX (no offline grace).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_error, agent_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";

#[test]
fn hw_first_activation_converts_the_hw_serial_to_a_sw_serial() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let (summary, _) = activate(&vendor, &site, &order, T0, "activation.lic");
    assert_eq!(summary["action"], "issue");
    assert_eq!(summary["serial"], "SW-2026-000001");
    assert_eq!(summary["converted_from"], "HW-7F3A-0042");

    // The device now knows itself by the SW serial only.
    let status = site.status(T0).code(agent_exit::FULL).json();
    assert_eq!(status["license"]["serial"], "SW-2026-000001");
    assert_eq!(status["license"]["previous_serial"], "HW-7F3A-0042");
    assert_eq!(status["license"]["platform"], "hw");
    let renewal = site.request("2026-01-20T09:00:00Z");
    let said = site
        .agent(&["request", "-o", "-", "--now", "2026-01-20T09:00:00Z"])
        .ok();
    assert!(
        said.stderr.contains("SW serial SW-2026-000001"),
        "{}",
        said.stderr
    );

    // The ledger lists both serials, under either.
    for serial in ["SW-2026-000001", "HW-7F3A-0042"] {
        let show = vendor.ledger_show(serial);
        assert_eq!(show["serial"], "SW-2026-000001");
        assert_eq!(show["hw_serial"], "HW-7F3A-0042");
    }
    let text = vendor
        .tessera(&["ledger", "show", "HW-7F3A-0042"])
        .ok()
        .stdout;
    assert!(
        text.contains("SW-2026-000001") && text.contains("hw serial   HW-7F3A-0042"),
        "{text}"
    );

    // A renewal comes from the SW serial and keeps the previous serial.
    let (run, lic) = vendor.answer("2026-01-20T09:00:00Z", &["renew"], &renewal, "renewal.lic");
    let renewed = run.ok().json();
    assert_eq!(renewed["serial"], "SW-2026-000001");
    assert_eq!(renewed["sequence"], 2);
    let status = site.install(&lic, "2026-01-20T09:00:00Z").ok().json();
    assert_eq!(status["license"]["sequence"], 2);
    assert_eq!(status["license"]["previous_serial"], "HW-7F3A-0042");
}

#[test]
fn a_second_activation_of_a_converted_appliance_is_refused() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    // A factory-reset appliance asks again with its HW serial: the ledger
    // knows the serial it was converted to and refuses a second license.
    let again = Site::appliance("HW-7F3A-0042", 1);
    let req = again.request(T0);
    let (run, _) = vendor.answer(T0, &["issue", "--order", "order.toml"], &req, "again.lic");
    run.code(common::vendor_exit::POLICY)
        .says("SW-2026-000001 already has a license in force");
}

#[test]
fn vm_first_activation_uses_the_assigned_sw_serial() {
    let vendor = Vendor::new();
    let spec = OrderSpec {
        platform: "vm",
        pbx_name: "Branch VM",
        ..OrderSpec::default()
    };
    let serial = vendor.add_pbx_as(T0, &spec);
    let site = Site::vm(&serial, 1);
    let order = spec.write(&vendor, "vm.toml");
    let (summary, _) = activate(&vendor, &site, &order, T0, "vm.lic");
    assert_eq!(summary["serial"], serial.as_str());
    assert_eq!(summary["platform"], "vm");
    assert!(summary["converted_from"].is_null());
    let status = site.check(T0).code(agent_exit::FULL).json();
    assert_eq!(status["license"]["platform"], "vm");
    assert_eq!(status["license"]["pbx_name"], "Branch VM");
    assert!(status["license"]["previous_serial"].is_null());
    assert_eq!(status["entitlements"]["total_users"], 35);
}

#[test]
fn a_vm_with_a_serial_the_registry_never_allocated_is_refused() {
    let vendor = Vendor::new();
    let order = OrderSpec {
        platform: "vm",
        ..OrderSpec::default()
    }
    .write(&vendor, "vm.toml");
    // A serial of the ledger's grammar that nobody allocated.
    let site = Site::vm("SW-2026-000042", 1);
    site.trust(&vendor);
    let req = site.request(T0);
    let (run, lic) = vendor.answer(T0, &["issue", "--order", "vm.toml"], &req, "vm.lic");
    run.code(common::vendor_exit::POLICY)
        .says("SW-2026-000042 is not in the PBX registry")
        .says("tessera pbx add");
    assert!(!lic.exists());
    // Whatever the agent is configured with.
    let site = Site::vm("anything-goes", 2);
    site.trust(&vendor);
    let made = site.agent(&["request", "--now", T0]);
    if made.code == 0 {
        let req = site.request(T0);
        let (run, lic) = vendor.answer(T0, &["issue", "--order", "vm.toml"], &req, "vm2.lic");
        assert_ne!(run.code, 0, "{}", run.stderr);
        assert!(!lic.exists());
    }
    // Allocated by the registry, it activates.
    let serial = vendor.add_pbx(T0, "vm", "yearly", "Example Dental Clinic");
    let site = Site::vm(&serial, 3);
    let (summary, _) = activate(&vendor, &site, &order, T0, "vm3.lic");
    assert_eq!(summary["serial"], serial.as_str());
}

#[test]
fn cloud_activation_has_short_leases_and_no_offline_grace() {
    let vendor = Vendor::new();
    let spec = OrderSpec {
        platform: "cloud",
        cycle: "monthly",
        pbx_name: "Cloud PBX",
        ..OrderSpec::default()
    };
    let serial = vendor.add_pbx_as(T0, &spec);
    let site = Site::cloud(&serial, 1);
    let order = spec.write(&vendor, "cloud.toml");
    let (summary, _) = activate(&vendor, &site, &order, T0, "cloud.lic");
    assert_eq!(summary["platform"], "cloud");
    // One day of lease, checks every 3 hours.
    assert_eq!(summary["lease_end"], "2026-01-03T09:00:00Z");
    let status = site.check(T0).ok().json();
    assert_eq!(status["next_check"], "2026-01-02T12:00:00Z");
    // Past the lease there is no grace: locked at once.
    site.check("2026-01-03T08:59:59Z")
        .code(agent_exit::RENEWAL_DUE);
    let locked = site
        .check("2026-01-03T09:00:00Z")
        .code(agent_exit::LOCKED)
        .json();
    assert_eq!(locked["verdict"], "expired_locked");
    assert_eq!(locked["full_service"], false);
}

#[test]
fn a_cloud_pbx_is_never_sold_for_a_lifetime() {
    let vendor = Vendor::new();
    let site = Site::cloud("SW-2026-700001", 1);
    OrderSpec {
        platform: "cloud",
        cycle: "lifetime",
        ..OrderSpec::default()
    }
    .write(&vendor, "cloud.toml");
    site.trust(&vendor);
    let req = site.request(T0);
    let (run, _) = vendor.answer(T0, &["issue", "--order", "cloud.toml"], &req, "cloud.lic");
    run.code(common::vendor_exit::POLICY)
        .says("a Cloud PBX cannot have a lifetime license");
}

#[test]
fn a_device_clock_behind_the_vendors_still_installs_a_fresh_license() {
    let vendor = Vendor::new();
    OrderSpec::default().write(&vendor, "order.toml");
    let issue = |site: &Site, site_now: &str, out: &str| {
        site.trust(&vendor);
        let req = site.request(site_now);
        let (run, lic) = vendor.answer(T0, &["issue", "--order", "order.toml"], &req, out);
        run.ok();
        site.install(&lic, site_now)
    };
    // Three hours behind: within the HW policy's rollback tolerance (1 day),
    // by which the license starts before its issue.
    let slow = Site::appliance("HW-7F3A-0042", 1);
    let status = issue(&slow, "2026-01-02T06:00:00Z", "slow.lic")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["mode"], "full");
    let shown = vendor
        .tessera(&["inspect", "slow.lic", "--json"])
        .ok()
        .json();
    assert_eq!(shown["issued_at"], T0);
    assert_eq!(shown["not_before"], "2026-01-01T09:00:00Z");
    // More than a day behind: the device is told to check its clock.
    let stopped = Site::appliance("HW-7F3A-0043", 1);
    let refused = issue(&stopped, "2026-01-01T08:59:59Z", "stopped.lic");
    assert_eq!(agent_error(&refused), "not_yet_valid");
}
