//! Signing with a key in a hardware security module (PKCS#11; SoftHSM2
//! with its own token and `SOFTHSM2_CONF` per test): the vendor rotates
//! from its file key to a token key, and the site cannot tell the
//! difference except by the key id. Skipped with a printed reason when
//! SoftHSM2 is missing, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsString;

use common::{activate, agent_exit, carry, vendor_exit, OrderSpec, Site, Vendor};
use tessera_tests::softhsm::{SoftHsm, TOKEN, USER_PIN};

const T0: &str = "2026-01-02T09:00:00Z";
const SWITCH: &str = "2026-02-02T09:00:00Z";

fn key_uri() -> String {
    format!("pkcs11:token={TOKEN};object=vendor-2026b")
}

/// The token's environment, and optionally the PIN.
fn env(hsm: &SoftHsm, pin: Option<&str>) -> Vec<(&'static str, OsString)> {
    let mut env = hsm.env().to_vec();
    if let Some(pin) = pin {
        env.push(("TESSERA_PKCS11_PIN", pin.into()));
    }
    env
}

fn run(vendor: &Vendor, env: &[(&'static str, OsString)], args: &[&str]) -> common::Run {
    let env: Vec<_> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    vendor.tessera_env(&env, args)
}

#[test]
fn rotation_from_a_file_key_to_an_hsm_key() {
    let Some(hsm) = SoftHsm::new() else { return };
    let vendor = Vendor::new();
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let site = Site::appliance("HW-H5M0-0001", 1);
    let (_, first) = activate(&vendor, &site, &order, T0, "a.lic");
    let kid1 = vendor
        .tessera(&["inspect", first.to_str().unwrap(), "--json"])
        .ok()
        .json()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    // 1. The new key is made in the token (PIN from a file), added to the
    // keyring from the planned switch on, not active yet.
    vendor.write("pin", &format!("{USER_PIN}\n"));
    let made = run(
        &vendor,
        &env(&hsm, None),
        &[
            "keygen",
            "--pkcs11",
            &key_uri(),
            "--pin-file",
            "pin",
            "--keyring",
            "keyring.toml",
            "--label",
            "HSM key 2026b",
            "--valid-from",
            "2026-02-01",
        ],
    )
    .ok()
    .says("created Ed25519 key")
    .says("the private key never leaves the token")
    .says("(not active");
    let kid2 = made.stdout.lines().next().unwrap()["kid ".len()..].to_owned();
    assert_ne!(kid2, kid1);
    // `key public` names the same key, and OpenSSL-readable PEM.
    run(
        &vendor,
        &env(&hsm, Some(USER_PIN)),
        &["key", "public", "--key", &key_uri()],
    )
    .ok()
    .says(&format!("kid {kid2}"))
    .says("-----BEGIN PUBLIC KEY-----");

    // 2. The site gets firmware (keyring) with both keys.
    site.trust(&vendor);
    site.check("2026-01-16T09:00:00Z").code(agent_exit::FULL);

    // 3. Switch issuing to the token key: the file key may no longer sign.
    vendor
        .rehearse_keyring(
            "2026-02-01T00:00:00Z",
            &["keyring", "activate", "--keyring", "keyring.toml", &kid2],
        )
        .ok();
    let req = site.request(SWITCH);
    let (refused, _) = vendor.answer(SWITCH, &["renew"], &req, "refused.lic");
    refused
        .code(vendor_exit::USAGE)
        .says("is not the active signing key");

    // 4. Renew with the token key (PIN from TESSERA_PKCS11_PIN). The key
    // is named by its URI wherever a key file is accepted.
    let req = carry(&req, vendor.dir());
    let req = req.file_name().unwrap().to_str().unwrap().to_owned();
    let renew = |pin: &str, out: &str| {
        run(
            &vendor,
            &env(&hsm, Some(pin)),
            &[
                "renew",
                "--key",
                &key_uri(),
                "--request",
                &req,
                "-o",
                out,
                "--json",
                "--now",
                SWITCH,
            ],
        )
    };
    // A wrong PIN is told as such, with where it came from; nothing issued.
    renew("000000", "wrong-pin.lic")
        .code(vendor_exit::USAGE)
        .says("PIN from the environment variable TESSERA_PKCS11_PIN is incorrect");
    assert!(!vendor.path("wrong-pin.lic").exists());
    renew(USER_PIN, "a-2.lic").ok();
    let inspected = vendor
        .tessera(&["inspect", "a-2.lic", "--json"])
        .ok()
        .json();
    assert_eq!(inspected["kid"], kid2.as_str());
    vendor
        .at(SWITCH, &["verify", "a-2.lic", "--keyring", "keyring.toml"])
        .ok();
    site.install(&vendor.path("a-2.lic"), SWITCH)
        .code(agent_exit::FULL);

    // 5. Retire the file key: the token key's license keeps working.
    vendor
        .tessera(&["keyring", "retire", "--keyring", "keyring.toml", &kid1])
        .ok();
    site.trust(&vendor);
    site.check("2026-02-03T09:00:00Z").code(agent_exit::FULL);
}

#[test]
fn the_pin_never_comes_from_the_command_line() {
    let Some(hsm) = SoftHsm::new() else { return };
    let vendor = Vendor::new();
    // There is no option for a PIN value, and the URI's pin-value is
    // refused before anything touches the token.
    run(
        &vendor,
        &env(&hsm, None),
        &["keygen", "--pkcs11", &key_uri(), "--pin", USER_PIN],
    )
    .code(vendor_exit::USAGE)
    .says("unexpected argument '--pin'");
    let with_pin = format!("{}?pin-value={USER_PIN}", key_uri());
    run(
        &vendor,
        &env(&hsm, None),
        &["keygen", "--pkcs11", &with_pin],
    )
    .code(vendor_exit::USAGE)
    .says("TESSERA_PKCS11_PIN");
    // Without a PIN and without a terminal: a clear error, no hang.
    run(
        &vendor,
        &env(&hsm, None),
        &["keygen", "--pkcs11", &key_uri()],
    )
    .code(vendor_exit::USAGE)
    .says("no PIN for the PKCS#11 token");
    // Without a module: where to name one.
    vendor
        .tessera(&["keygen", "--pkcs11", &key_uri()])
        .code(vendor_exit::USAGE)
        .says("--pkcs11-module");
}
