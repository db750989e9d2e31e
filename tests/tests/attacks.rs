//! Binding and anti-rollback at the device: a swapped NIC still binds (k of
//! n), a license copied to another machine does not, an older license
//! replayed after a newer one is refused, and so is a clock set back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_error, agent_exit, vendor_exit, OrderSpec, Site, Vendor};
use tessera_verifier::claims::ComponentKind;
use tessera_verifier::{armor, decode_request, encode::sign_request};

const T0: &str = "2026-01-02T09:00:00Z";

fn licensed_appliance() -> (Vendor, Site) {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    (vendor, site)
}

#[test]
fn a_replaced_nic_still_binds_under_k_of_n() {
    let (vendor, site) = licensed_appliance();
    assert_eq!(site.status(T0).ok().json()["binding"]["matched"], 4);
    site.swap_nic("00:1b:21:aa:bb:cc");
    let status = site
        .check("2026-01-05T09:00:00Z")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["binding"]["matched"], 3);
    assert_eq!(status["binding"]["threshold"], 3);
    // The vendor still recognises the device and renews.
    let req = site.request("2026-01-06T09:00:00Z");
    let (run, lic) = vendor.answer("2026-01-06T09:00:00Z", &["renew"], &req, "renewal.lic");
    run.ok();
    site.install(&lic, "2026-01-06T09:00:00Z")
        .code(agent_exit::FULL);
}

#[test]
fn a_second_changed_component_is_one_too_many() {
    let (_vendor, site) = licensed_appliance();
    site.swap_nic("00:1b:21:aa:bb:cc");
    site.file("sys/block/sda/device/serial", "DISK-OTHER\n");
    let run = site.check("2026-01-05T09:00:00Z").code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "wrong_device");
}

#[test]
fn a_license_copied_to_another_machine_is_refused() {
    let (vendor, _site) = licensed_appliance();
    // Another appliance: its HW serial differs from the license's.
    let other = Site::appliance("HW-0THE-0099", 99);
    other.trust(&vendor);
    let run = other
        .install(&vendor.path("activation.lic"), T0)
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "wrong_serial");

    // A cloned VM configured with the same SW serial: its identity differs.
    let serial = vendor.add_pbx(T0, "vm", "yearly", "Example Dental Clinic");
    let vm = Site::vm(&serial, 1);
    let order = OrderSpec {
        platform: "vm",
        ..OrderSpec::default()
    }
    .write(&vendor, "vm.toml");
    activate(&vendor, &vm, &order, T0, "vm.lic");
    let clone = Site::vm(&serial, 2);
    clone.trust(&vendor);
    let run = clone
        .install(&vendor.path("vm.lic"), T0)
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "wrong_device");
    // Its state directory copied along does not help either: the state
    // record is sealed under the other machine's device key.
    std::fs::copy(vm.state().join("license"), clone.state().join("license")).unwrap();
    std::fs::copy(vm.state().join("state"), clone.state().join("state")).unwrap();
    let run = clone.check(T0).code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "state_corrupt");
}

#[test]
fn an_older_license_replayed_after_a_newer_one_is_refused() {
    let (vendor, site) = licensed_appliance();
    let req = site.request("2026-01-20T09:00:00Z");
    let (run, lic) = vendor.answer("2026-01-20T09:00:00Z", &["renew"], &req, "renewal.lic");
    run.ok();
    site.install(&lic, "2026-01-20T09:00:00Z")
        .code(agent_exit::FULL);
    // The first license (its lease still running) is offered again.
    let run = site
        .install(&vendor.path("activation.lic"), "2026-01-21T09:00:00Z")
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "superseded");
    // The newer one stays in force.
    let status = site.check("2026-01-21T09:00:00Z").ok().json();
    assert_eq!(status["license"]["sequence"], 2);
}

#[test]
fn a_clock_set_back_is_refused() {
    let (_vendor, site) = licensed_appliance();
    site.check("2026-01-20T09:00:00Z").code(agent_exit::FULL);
    // Within the rollback tolerance (1 day) a step back is absorbed ...
    site.check("2026-01-19T12:00:00Z").code(agent_exit::FULL);
    // ... further back is refused, and the state keeps the latest time.
    let run = site.check("2026-01-10T09:00:00Z").code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "clock_rollback");
    // Winding the clock back to before the lease end does not revive an
    // expired license either.
    site.check("2026-02-20T09:00:00Z")
        .code(agent_exit::EMERGENCY_ONLY);
    let run = site.check("2026-01-31T09:00:00Z").code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "clock_rollback");
}

#[test]
fn a_tampered_license_file_is_refused() {
    let (vendor, site) = licensed_appliance();
    // A partner edits the armored text (one base64 character).
    let text = std::fs::read_to_string(vendor.path("activation.lic")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[3];
    let c = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, c);
    let edited = vendor.write("edited.lic", &(lines.join("\n") + "\n"));
    let run = site.install(&edited, T0).code(agent_exit::REFUSED);
    let code = agent_error(&run);
    assert!(
        code == "bad_signature" || code.starts_with("malformed"),
        "{code}"
    );
    vendor
        .tessera(&["verify", "edited.lic"])
        .code(common::vendor_exit::VERIFY);
}

#[test]
fn changing_the_bound_ip_address_is_an_administrative_rebinding() {
    let vendor = Vendor::new();
    // A vendor that also binds the IP address: 4 of 5 must match.
    let catalog = vendor.catalog_with(
        "ip.toml",
        &[(
            "binding = [\"hw_serial\", \"nic_mac\", \"system_uuid\", \"disk_serial\"]\nrequired = [\"hw_serial\"]\nthreshold = 3",
            "binding = [\"hw_serial\", \"nic_mac\", \"system_uuid\", \"disk_serial\", \"ip_addr\"]\nrequired = [\"hw_serial\"]\nthreshold = 4",
        )],
    );
    let catalog = catalog.to_str().unwrap().to_owned();
    let site = Site::appliance("HW-1PAD-0001", 1);
    site.config("ip = \"192.0.2.10\"\n");
    site.trust(&vendor);
    OrderSpec::default().write(&vendor, "order.toml");
    let req = site.request(T0);
    let (run, lic) = vendor.answer(
        T0,
        &["--catalog", &catalog, "issue", "--order", "order.toml"],
        &req,
        "activation.lic",
    );
    run.ok();
    let status = site.install(&lic, T0).ok().json();
    assert_eq!(status["binding"]["matched"], 5);

    // The administrator changes the bound address in agent.toml (never
    // from DHCP): the license still binds on the other components ...
    site.config("ip = \"192.0.2.20\"\n");
    let status = site.check("2026-01-05T09:00:00Z").ok().json();
    assert_eq!(status["binding"]["matched"], 4);
    // ... and a request re-binds it to the new address.
    let req = site.request("2026-01-05T09:00:00Z");
    let (run, lic) = vendor.answer(
        "2026-01-05T09:00:00Z",
        &[
            "--catalog",
            &catalog,
            "modify",
            "--serial",
            "SW-2026-000001",
            "--order",
            "order.toml",
        ],
        &req,
        "rebound.lic",
    );
    run.ok();
    let status = site.install(&lic, "2026-01-05T09:00:00Z").ok().json();
    assert_eq!(status["binding"]["matched"], 5);
    // Without the re-binding, a second change (the NIC) would have been one
    // too many; with it, the box binds 4 of 5 again.
    site.swap_nic("00:1b:21:aa:bb:cc");
    site.check("2026-01-06T09:00:00Z").code(agent_exit::FULL);
    site.config("ip = \"192.0.2.30\"\n");
    let run = site.check("2026-01-07T09:00:00Z").code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "wrong_device");
}

/// A copy of the request file at `path` as anyone who read it can make
/// one: serials, salt and identity digests kept (the `device_key`
/// component too, unless `strip_key`), a new nonce, signed with a
/// throwaway key; written next to it as `name`.
fn forge(path: &std::path::Path, seed: u8, strip_key: bool, name: &str) -> std::path::PathBuf {
    use tessera_signer::Signer as _;
    let text = std::fs::read_to_string(path).unwrap();
    let mut buf = vec![0u8; 8192];
    let bytes = armor::decode(&text, armor::LABEL_REQUEST, &mut buf).unwrap();
    let mut r = decode_request(bytes).unwrap().to_data();
    r.nonce = [seed; 16];
    let key = tessera_signer::FileSigner::generate().unwrap();
    r.device_key = key.public_key();
    if strip_key {
        r.identity.retain(|i| i.kind != ComponentKind::DEVICE_KEY);
    }
    let signed = sign_request(&r, |m| key.sign(m)).unwrap();
    let out = path.with_file_name(name);
    std::fs::write(&out, armor::encode(&signed, armor::LABEL_REQUEST)).unwrap();
    out
}

#[test]
fn a_forged_copy_of_a_request_file_gets_nothing() {
    let (vendor, site) = licensed_appliance();
    let now = "2026-01-06T09:00:00Z";
    let request = site.request(now);
    let serial = "SW-2026-000001";
    // The copy keeps the device's `device_key` component: it names a key
    // that did not sign it.
    let kept = forge(&request, 0x51, false, "forged-kept.req");
    let (run, lic) = vendor.answer(now, &["renew"], &kept, "forged-1.lic");
    run.code(vendor_exit::USAGE).says("`device_key`");
    assert!(!lic.exists());
    // Without it: a key this PBX never used, for every command that answers
    // a request about it.
    let never_used =
        format!("the request for {serial} is signed by a device key this PBX never used");
    let forged = forge(&request, 0x52, true, "forged.req");
    let (run, lic) = vendor.answer(now, &["renew"], &forged, "forged-2.lic");
    run.code(vendor_exit::POLICY)
        .says(&never_used)
        .says("--new-device-key");
    assert!(!lic.exists());
    let order = OrderSpec {
        profiles: &[("PBX-BASIC", 30), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "more.toml");
    let forged = forge(&request, 0x53, true, "forged-3.req");
    let (run, lic) = vendor.answer(
        now,
        &[
            "modify",
            "--serial",
            serial,
            "--order",
            order.to_str().unwrap(),
        ],
        &forged,
        "forged-3.lic",
    );
    run.code(vendor_exit::POLICY).says(&never_used);
    assert!(!lic.exists());
    // Sharing: a second appliance as the server, the licensed one as the
    // client named by the forged copy.
    let server_site = Site::appliance("HW-7F3A-0043", 2);
    let server_order = OrderSpec::default().write(&vendor, "server.toml");
    activate(&vendor, &server_site, &server_order, T0, "server.lic");
    let forged = forge(&request, 0x55, true, "forged-5.req");
    let (run, lic) = vendor.answer(
        now,
        &["share", "--server", "SW-2026-000002", "--client", serial],
        &forged,
        "forged-5.lic",
    );
    run.code(vendor_exit::POLICY).says(&never_used);
    assert!(!lic.exists());
    // Nothing was issued for the PBX: its history is its first license.
    let shown = vendor.ledger_show(serial);
    assert_eq!(shown["licenses"].as_array().unwrap().len(), 1, "{shown}");
    // The device's own request still renews.
    let (run, lic) = vendor.answer(now, &["renew"], &request, "renewal.lic");
    run.ok();
    site.install(&lic, now).code(agent_exit::FULL);
}
