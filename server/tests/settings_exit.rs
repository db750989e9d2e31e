//! The `tessera-server` binary exits 2 for every setting that keeps it
//! from starting (as its `--help` and docs/operations.md say), with a
//! message that names what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use tessera_server::testing::{server_command, TestVendor};

const T: i64 = 1_767_258_000; // 2026-01-01T09:00:00Z

/// Runs the server of `dir` with `edit` applied and returns its exit code
/// and standard error; it must stop by itself.
fn start(dir: &std::path::Path, edit: impl FnOnce(&mut Command)) -> (i32, String) {
    let mut c = server_command(env!("CARGO_BIN_EXE_tessera-server"), dir);
    edit(&mut c);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

/// Rewrites `c`'s arguments with `edit` (same program, folder and
/// environment).
fn edit_args(c: &mut Command, edit: impl FnOnce(&mut Vec<String>)) {
    let mut args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    edit(&mut args);
    let mut fresh = Command::new(c.get_program());
    if let Some(dir) = c.get_current_dir() {
        fresh.current_dir(dir);
    }
    fresh.env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            fresh.env(k, v);
        }
    }
    fresh.args(args);
    *c = fresh;
}

/// Replaces the value of option `name` in `c`'s arguments.
fn with_arg(c: &mut Command, name: &str, value: &str) {
    edit_args(c, |args| {
        let i = args.iter().position(|a| a == name).unwrap();
        args[i + 1] = value.to_owned();
    });
}

#[test]
fn every_setting_that_stops_the_start_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let _v = TestVendor::new(dir.path(), T).unwrap();
    std::fs::write(dir.path().join("not-a-cert.pem"), "hello\n").unwrap();
    std::fs::write(dir.path().join("wrong-passphrase"), "not it\n").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();

    type Edit = Box<dyn FnOnce(&mut Command)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "port in use",
            Box::new(move |c| with_arg(c, "--listen", &busy)),
            "cannot listen",
        ),
        (
            "no passphrase",
            Box::new(|c| {
                edit_args(c, |args| {
                    let i = args.iter().position(|a| a == "--passphrase-file").unwrap();
                    args.drain(i..i + 2);
                });
            }),
            "--passphrase-file FILE (a systemd credential, mode 0600) or set TESSERA_PASSPHRASE; the service never prompts",
        ),
        (
            "wrong passphrase",
            Box::new(|c| with_arg(c, "--passphrase-file", "wrong-passphrase")),
            "passphrase",
        ),
        (
            "missing ledger",
            Box::new(|c| with_arg(c, "--ledger", "missing.db")),
            "missing.db",
        ),
        (
            "a TLS file without a certificate",
            Box::new(|c| with_arg(c, "--tls-cert", "not-a-cert.pem")),
            "not-a-cert.pem",
        ),
        (
            "no operator",
            Box::new(|c| with_arg(c, "--operator", "")),
            "operator",
        ),
    ];
    for (what, edit, needle) in cases {
        let (code, stderr) = start(dir.path(), edit);
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(stderr.contains(needle), "{what}: {stderr}");
    }
}

#[test]
fn plain_http_on_every_address_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let _v = TestVendor::new(dir.path(), T).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .current_dir(dir.path())
        .env_clear()
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .args(["--listen", "0.0.0.0:0", "--operator", "tessera-server"])
        .args(["--ledger", "ledger.db", "--key", "signing.pem"])
        .args(["--passphrase-file", "passphrase"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--insecure-http"), "{stderr}");
}

#[test]
fn help_and_warnings_say_the_passphrase_is_never_prompted_for() {
    let help = Command::new(env!("CARGO_BIN_EXE_tessera-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("the service never prompts"), "{help}");
    assert!(!help.contains("a prompt)"), "{help}");

    // A passphrase file others can read is named, with the fix.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let _v = TestVendor::new(dir.path(), T).unwrap();
    let file = dir.path().join("passphrase");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr) = start(dir.path(), |c| with_arg(c, "--ledger", "missing.db"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the passphrase file passphrase is readable by others than its owner (mode 0644): `chmod 600` it"),
        "{stderr}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, stderr) = start(dir.path(), |c| with_arg(c, "--ledger", "missing.db"));
    assert!(!stderr.contains("readable by others"), "{stderr}");
}
