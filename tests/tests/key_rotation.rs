//! Key rotation (keys/README.md): a second key in the keyring, firmware
//! with both keys, switching issuing, re-issuing, and retiring the old key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;

use common::{activate, agent_error, agent_exit, carry, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";

#[test]
fn rotation_with_two_keys_then_retirement_of_the_old_one() {
    let vendor = Vendor::new();
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let a = Site::appliance("HW-R0TA-0001", 1);
    let b = Site::appliance("HW-R0TA-0002", 2);
    activate(&vendor, &a, &order, T0, "a.lic");
    activate(&vendor, &b, &order, T0, "b.lic");
    let ring = vendor
        .tessera(&["keyring", "list", "--keyring", "keyring.toml", "--json"])
        .ok()
        .json();
    let kid1 = ring[0]["kid"].as_str().unwrap().to_owned();

    // 1. The new key, valid from the planned switch, not active yet.
    let kid2 = vendor.new_key("key2.pem");
    vendor
        .rehearse_keyring(
            "2026-01-15T00:00:00Z",
            &[
                "keyring",
                "add",
                "--keyring",
                "keyring.toml",
                "--public",
                "key2.pem.pub",
                "--label",
                "e2e key 2",
                "--valid-from",
                "2026-02-01",
            ],
        )
        .ok();
    // 2. Firmware ships with both keys; the old licenses still verify.
    vendor
        .tessera(&[
            "keyring",
            "export",
            "--keyring",
            "keyring.toml",
            "--format",
            "c",
            "-o",
            "tessera_keyring.h",
        ])
        .ok();
    let header = std::fs::read_to_string(vendor.path("tessera_keyring.h")).unwrap();
    assert!(
        header.contains("#define TESSERA_KEYRING_COUNT 2u"),
        "{header}"
    );
    assert!(
        header.contains(&format!(".kid = {{ 0x{}", &kid2[..2])),
        "{header}"
    );
    a.trust(&vendor);
    b.trust(&vendor);
    a.check("2026-01-16T09:00:00Z").code(agent_exit::FULL);
    b.check("2026-01-16T09:00:00Z").code(agent_exit::FULL);

    // 3. Switch issuing: the old key may no longer sign.
    vendor
        .rehearse_keyring(
            "2026-02-01T00:00:00Z",
            &["keyring", "activate", "--keyring", "keyring.toml", &kid2],
        )
        .ok();
    let req = a.request("2026-02-02T09:00:00Z");
    let (run, _) = vendor.answer("2026-02-02T09:00:00Z", &["renew"], &req, "refused.lic");
    run.code(vendor_exit::USAGE)
        .says("is not the active signing key");

    // 4. Re-issue with the new key.
    let (run, lic) = vendor.answer(
        "2026-02-02T09:00:00Z",
        &["renew", "--key", "key2.pem"],
        &req,
        "a-2.lic",
    );
    run.ok();
    let inspected = vendor.tessera(&["inspect", "a-2.lic"]).ok().stdout;
    assert!(
        inspected.contains(&format!("kid          {kid2}")),
        "{inspected}"
    );
    a.install(&lic, "2026-02-02T09:00:00Z")
        .code(agent_exit::FULL);

    // 5. Retire the old key and ship the keyring: licenses signed by it
    // verify nothing any more, the new ones keep working.
    vendor
        .tessera(&["keyring", "retire", "--keyring", "keyring.toml", &kid1])
        .ok();
    a.trust(&vendor);
    b.trust(&vendor);
    a.check("2026-02-03T09:00:00Z").code(agent_exit::FULL);
    let run = b.check("2026-02-03T09:00:00Z").code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "retired_key");
    vendor
        .at("2026-02-03T09:00:00Z", &["verify", "b.lic"])
        .code(vendor_exit::VERIFY);
    // B was missed in step 4: re-issued now, it recovers at once.
    let req = b.request("2026-02-03T09:00:00Z");
    let (run, lic) = vendor.answer(
        "2026-02-03T09:00:00Z",
        &["renew", "--key", "key2.pem"],
        &req,
        "b-2.lic",
    );
    run.ok();
    b.install(&lic, "2026-02-03T09:00:00Z")
        .code(agent_exit::FULL);
    // The retired key cannot be made active again.
    vendor
        .tessera(&["keyring", "activate", "--keyring", "keyring.toml", &kid1])
        .code(vendor_exit::USAGE);
}

/// The rotation that used to halt issuing: the new key activated before its
/// window started was refused, and so was the old one. Now the switch is
/// scheduled, and renewals every few minutes across it all succeed: the
/// old key signs before it, the new one from its second on.
#[test]
fn a_scheduled_switch_never_halts_issuing() {
    const SWITCH: &str = "2026-02-01T00:00:00Z";
    const BEFORE: &str = "2026-01-15T00:00:00Z";
    let vendor = Vendor::new();
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let a = Site::appliance("HW-R0TB-0001", 3);
    activate(&vendor, &a, &order, T0, "a.lic");
    let ring = vendor
        .tessera(&["keyring", "list", "--keyring", "keyring.toml", "--json"])
        .ok()
        .json();
    let kid1 = ring[0]["kid"].as_str().unwrap().to_owned();
    let kid2 = vendor.new_key("key2.pem");
    vendor
        .rehearse_keyring(
            BEFORE,
            &[
                "keyring",
                "add",
                "--keyring",
                "keyring.toml",
                "--public",
                "key2.pem.pub",
                "--valid-from",
                SWITCH,
            ],
        )
        .ok();
    // Activating it now would leave nothing able to sign until SWITCH.
    vendor
        .rehearse_keyring(
            BEFORE,
            &["keyring", "activate", "--keyring", "keyring.toml", &kid2],
        )
        .code(vendor_exit::USAGE)
        .says(&format!("--at {SWITCH}"));
    vendor
        .rehearse_keyring(
            BEFORE,
            &[
                "keyring",
                "activate",
                "--keyring",
                "keyring.toml",
                &kid2,
                "--at",
                SWITCH,
            ],
        )
        .ok()
        .says("switches by itself");
    vendor
        .at(BEFORE, &["keyring", "list", "--keyring", "keyring.toml"])
        .ok()
        .says(&format!("switch to {kid2} at {SWITCH}"));
    // Firmware ships with both keys.
    a.trust(&vendor);
    // Both key files during the rotation, as `key = [...]` in tessera.toml.
    vendor.write("tessera.toml", "key = [\"signing.pem\", \"key2.pem\"]\n");
    let times = [
        "2026-01-31T23:50:00Z",
        "2026-01-31T23:59:59Z",
        SWITCH,
        "2026-02-01T00:10:00Z",
    ];
    for (i, now) in times.iter().enumerate() {
        let req = carry(&a.request(now), vendor.dir());
        let out = format!("a-{i}.lic");
        // TESSERA_KEY empty: the keys come from tessera.toml.
        vendor
            .tessera_env(
                &[("TESSERA_KEY", OsStr::new(""))],
                &[
                    "renew",
                    "--request",
                    req.to_str().unwrap(),
                    "-o",
                    &out,
                    "--now",
                    now,
                ],
            )
            .ok();
        let lic = vendor.path(&out);
        let expected = if *now < SWITCH { &kid1 } else { &kid2 };
        vendor
            .tessera(&["inspect", &out])
            .ok()
            .says(&format!("kid          {expected}"));
        a.install(&lic, now).code(agent_exit::FULL);
    }
    // After the switch the old key is retired as it is: the switch has
    // happened, nothing else to do first.
    vendor
        .rehearse_keyring(
            "2026-02-02T00:00:00Z",
            &["keyring", "retire", "--keyring", "keyring.toml", &kid1],
        )
        .ok();
    // Checkpoints signed by both keys: the ledger verifies.
    vendor.tessera(&["ledger", "verify"]).ok();
}
