//! The site's own files as the people with root on the PBX might change
//! them: a voided license put back with a state record written to accept
//! it, and the recovery the vendor answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use common::{activate, agent_error, agent_exit, OrderSpec, Site, Vendor};

// A Friday.
const T0: &str = "2026-01-02T09:00:00Z";

/// The fresh state record as agents before the keyed record wrote it
/// (version 1): its checksum is public, so anybody can write it
/// (`spec/vectors/state.json`, record `keyed-fresh`, field `unkeyed`).
const FORGED_FRESH: &str =
    "0100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000af9dd72d7723fd55";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Activated with 35 users, then a change typed with one zero too many
/// (215 users) installed and voided (35 users again, sequence 3). Returns
/// the voided license file.
fn voided_change() -> (Vendor, Site, std::path::PathBuf) {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    OrderSpec {
        profiles: &[("PBX-BASIC", 200), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "typo.toml");
    let typo = vendor
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
    let id = typo["license_id"].as_str().unwrap().to_owned();
    let status = site
        .install(&vendor.path("typo.lic"), "2026-01-02T10:00:00Z")
        .ok()
        .json();
    assert_eq!(status["entitlements"]["total_users"], 215);
    vendor
        .at(
            "2026-01-02T11:00:00Z",
            &[
                "void",
                "--license",
                &id,
                "--reason",
                "typo",
                "-o",
                "void.lic",
                "--json",
            ],
        )
        .ok();
    let status = site
        .install(&vendor.path("void.lic"), "2026-01-02T11:00:00Z")
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["entitlements"]["total_users"], 35);
    let typo = vendor.path("typo.lic");
    (vendor, site, typo)
}

/// The finding: the voided 215-user license put back with a fresh state
/// record whose checksum was recomputed gave "valid" again. The state is
/// now sealed under a key from the device key, so such a record is
/// `state_corrupt`: no service until the vendor's fresh license is
/// installed with `--recover`.
#[test]
fn a_voided_license_put_back_with_a_forged_state_record_gives_no_service() {
    let (vendor, site, typo) = voided_change();
    fs::copy(&typo, site.state().join("license")).unwrap();
    fs::write(site.state().join("state"), unhex(FORGED_FRESH)).unwrap();
    for run in [
        site.check("2026-01-03T09:00:00Z"),
        site.status("2026-01-03T09:00:00Z"),
    ] {
        let run = run.code(agent_exit::REFUSED);
        assert_eq!(agent_error(&run), "state_corrupt");
        let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("older tessera-agent"), "{message}");
        assert!(message.contains("install --recover"), "{message}");
    }
    // An install of the voided file, recovering or not, is refused too.
    let run = site
        .install(&typo, "2026-01-03T09:00:00Z")
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "state_corrupt");

    // Recovery: a request naming no current license, the vendor's renewal,
    // `install --recover`: the license in force again, 35 users.
    let req = site.request("2026-01-03T09:00:00Z");
    let (run, fresh) = vendor.answer("2026-01-03T09:05:00Z", &["renew"], &req, "fresh.lic");
    run.ok();
    let here = common::carry(&fresh, &site.outbox());
    let status = site
        .agent(&[
            "install",
            "--recover",
            here.to_str().unwrap(),
            "--json",
            "--now",
            "2026-01-03T09:10:00Z",
        ])
        .code(agent_exit::FULL)
        .json();
    assert_eq!(status["entitlements"]["total_users"], 35);
    let kept = fs::read(site.state().join("state.corrupt")).unwrap();
    assert_eq!(kept, unhex(FORGED_FRESH));
    site.check("2026-01-04T09:00:00Z").code(agent_exit::FULL);
    // The voided file still cannot come back.
    let run = site
        .install(&typo, "2026-01-04T10:00:00Z")
        .code(agent_exit::REFUSED);
    assert_eq!(agent_error(&run), "superseded");
}
