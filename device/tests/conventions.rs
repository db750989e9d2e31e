//! The command-line conventions `tessera-agent` shares with `tessera`:
//! man pages and completions, `--json` on `request`, and errors as one
//! JSON object under `--json`, also for a command line that does not
//! parse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, Device, T0};

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn man_pages_and_completions() {
    let d = Device::appliance();
    let page = d.cmd().arg("man").assert().code(0).get_output().clone();
    let page = String::from_utf8(page.stdout).unwrap();
    assert!(page.contains(".TH tessera-agent 1"), "{page}");
    assert!(page.contains("seats"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man/man1");
    d.cmd().arg("man").arg("-o").arg(&man1).assert().code(0);
    for page in [
        "tessera-agent.1",
        "tessera-agent-install.1",
        "tessera-agent-seats.1",
    ] {
        assert!(man1.join(page).is_file(), "{page}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = d
            .cmd()
            .args(["completions", shell])
            .assert()
            .code(0)
            .get_output()
            .clone();
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("install") && script.contains("seats"),
            "{shell}"
        );
    }
    // Neither touches a device: their help names no state folder.
    let help = d
        .cmd()
        .args(["man", "--help"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(
        !help.contains("--state-dir") && !help.contains("--sysroot"),
        "{help}"
    );
}

#[test]
fn request_json_says_what_was_written() {
    let d = Device::appliance();
    let now = at(T0);
    // To standard output: the request is inside the JSON.
    let out = d.run(&["request", "--json"], T0, 0);
    let v = json(&out);
    assert_eq!(v["output"], "-");
    assert!(v["request"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN TESSERA REQUEST-----"));
    assert_eq!(v["first_activation"], true);
    assert!(v["hw_serial"].as_str().is_some());
    assert!(v["identity_components"].as_u64().unwrap() >= 2);
    // To a file: the JSON names it, and the file holds the request.
    let file = d.root.path().join("req.txt");
    let out = d
        .cmd()
        .args(["request", "--json", "--now", &now, "-o"])
        .arg(&file)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["output"], file.to_str().unwrap());
    assert!(v["request"].is_null());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("-----BEGIN TESSERA REQUEST-----"));
}

#[test]
fn errors_under_json_are_one_json_object() {
    let d = Device::appliance();
    // A command line that does not parse.
    let out = d
        .cmd()
        .args(["check", "--json", "--bogus"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["error"]["code"], "usage");
    assert!(v["error"]["message"].as_str().unwrap().contains("--bogus"));
    assert_eq!(v["exit_code"], 2);
    // A mistyped command after an option that belongs after the command
    // is named as the mistake, with the command meant.
    for args in [
        &["--json", "instal"][..],
        &["--json", "--state-dir", "/nowhere", "instal"],
        &["--sysroot", "/", "--json", "instal", "license.txt"],
    ] {
        let out = d.cmd().args(args).assert().code(2).get_output().clone();
        let v = json(&out);
        assert_eq!(v["error"]["code"], "usage");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("unrecognized subcommand 'instal'") && message.contains("'install'"),
            "{args:?}: {message}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("'instal'")
                && stderr.contains("tip: a similar subcommand exists: 'install'"),
            "{args:?}: {stderr}"
        );
    }
    let out = d
        .cmd()
        .args(["seats", "--json", "summry"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let message = json(&out)["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("'summry'") && message.contains("'summary'"),
        "{message}"
    );
    // A refusal: the same shape.
    let out = d.run(&["check", "--json"], T0, 2);
    let v = json(&out);
    assert_eq!(v["error"]["code"], "not_activated");
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn file_names_need_not_be_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    let odd = d.root.path().join(OsStr::from_bytes(b"license-\xff.txt"));
    std::fs::copy(&license, &odd).unwrap();
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&odd)
        .assert()
        .code(0);
    let csv = d.root.path().join(OsStr::from_bytes(b"seats-\xfe.csv"));
    d.cmd()
        .args(["seats", "export", "--now", &at(T0), "-o"])
        .arg(&csv)
        .assert()
        .code(0);
    assert!(csv.is_file());
    d.cmd()
        .args(["seats", "import", "--dry-run", "--now", &at(T0)])
        .arg(&csv)
        .assert()
        .code(0);
}

/// The firmware export of a keyring (`tessera keyring export --format
/// cbor`) given where the agent wants the keyring file: named as such,
/// never "check free disk space".
#[test]
fn a_cbor_keyring_is_named_as_the_wrong_file() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    let cbor = d.root.path().join("keyring.cbor");
    std::fs::write(&cbor, [0xa1, 0x01, 0x81, 0xa4, 0x01, 0x48, 0xff, 0x00]).unwrap();
    let out = d
        .cmd()
        .args(["install", "--json", "--now", &at(T0), "--keyring"])
        .arg(&cbor)
        .arg(&license)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let v = json(&out);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("keyring.toml as it was sent"), "{message}");
    assert!(!message.contains("disk space"), "{message}");
}
