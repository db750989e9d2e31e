//! The command-line conventions of `tessera` (those of rage, ripgrep and
//! cargo): each command's help shows the options it uses, `-o` wherever
//! there is an output, `-` for standard input, `--json` with errors as one
//! JSON object, a failed write to standard output as exit code 7.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/issue.in");
const PASSPHRASE: &str = "correct horse battery staple";

fn tessera(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.current_dir(dir)
        .env("TESSERA_OPERATOR", "test")
        .env("TESSERA_PASSPHRASE", PASSPHRASE)
        .env("TESSERA_KEY", "signing.pem")
        .env("TESSERA_LEDGER", "tessera.db")
        .env_remove("TESSERA_CATALOG")
        .env_remove("TESSERA_KEYRING")
        .env_remove("TESSERA_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .env("TESSERA_NOW", "2026-01-02T09:00:00Z")
        .env("TESSERA_REQUEST_WINDOW", "400d");
    c
}

/// Runs `tessera ARGS` in `dir` with `stdin` on standard input.
fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tessera(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that never reads its input may have exited already.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    run_in(dir, args, b"")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn code(out: &Output, want: i32) {
    assert_eq!(
        out.status.code(),
        Some(want),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "signing.pem",
        "signing.pem.pub",
        "keyring.toml",
        "order.toml",
        "device.req",
    ] {
        std::fs::copy(Path::new(FIXTURES).join(f), dir.path().join(f)).unwrap();
    }
    code(&run(dir.path(), &["ledger", "init"]), 0);
    dir
}

fn help(dir: &Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let out = run(dir, &all);
    code(&out, 0);
    text(&out.stdout)
}

#[test]
fn each_command_shows_the_options_and_exit_codes_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list = help(d, &["ledger", "list"]);
    assert!(list.contains("--ledger"), "{list}");
    for absent in ["--operator", "--catalog", "policy refusal", "bulk issuance"] {
        assert!(!list.contains(absent), "{absent}: {list}");
    }
    assert!(list.contains("4  ledger integrity failure"), "{list}");
    let keygen = help(d, &["keygen"]);
    for absent in ["--ledger", "--operator", "--catalog", "ledger integrity"] {
        assert!(!keygen.contains(absent), "{absent}: {keygen}");
    }
    assert!(keygen.contains("-o, --out <FILE>"), "{keygen}");
    // --now is shown where it applies (the time is recorded or checked).
    assert!(keygen.contains("--now <TIME>"), "{keygen}");
    let issue = help(d, &["issue"]);
    for present in [
        "--ledger",
        "--operator",
        "--catalog",
        "--now <TIME>",
        "2  policy refusal",
        "6  bulk issuance",
        "7  standard output could not be written",
    ] {
        assert!(issue.contains(present), "{present}: {issue}");
    }
    assert!(!issue.contains("5  the license verifies"), "{issue}");
    let man = help(d, &["man"]);
    assert!(!man.contains("--config") && !man.contains("--now"), "{man}");
    // An option a command does not use is refused, not ignored.
    let out = run(d, &["keygen", "-o", "k.pem", "--ledger", "x.db"]);
    code(&out, 1);
    assert!(
        text(&out.stderr).contains("`tessera keygen` does not use --ledger"),
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("k.pem").exists());
}

#[test]
fn keygen_takes_o_creates_its_folders_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(
        d,
        &[
            "keygen",
            "-o",
            "vendor/keys/signing.pem",
            "--keyring",
            "vendor/keyring.toml",
            "--rehearsal-copy",
            "--json",
        ],
    );
    code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kid = v["kid"].as_str().unwrap();
    assert_eq!(kid.len(), 16);
    assert_eq!(v["active"], true);
    assert_eq!(v["private_key"], "vendor/keys/signing.pem");
    assert_eq!(v["public_key_file"], "vendor/keys/signing.pem.pub");
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("vendor/keys"), 0o700);
    assert_eq!(mode("vendor/keys/signing.pem"), 0o600);
    // The kid `keyring activate` needs is the one in the keyring.
    let ring = std::fs::read_to_string(d.join("vendor/keyring.toml")).unwrap();
    assert!(ring.contains(kid), "{ring}");
    // A key is a file written in place, never standard output.
    let out = run(d, &["keygen", "-o", "-"]);
    code(&out, 1);
    assert!(
        text(&out.stderr).contains("not `-`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn dash_is_standard_input_for_every_input() {
    let dir = workdir();
    let d = dir.path();
    let order = std::fs::read(d.join("order.toml")).unwrap();
    let out = run_in(
        d,
        &[
            "issue",
            "--order",
            "-",
            "--request",
            "device.req",
            "-o",
            "a.lic",
        ],
        &order,
    );
    code(&out, 0);
    let public = std::fs::read(d.join("signing.pem.pub")).unwrap();
    let out = run_in(d, &["key", "public", "--key", "-"], &public);
    code(&out, 0);
    assert!(
        text(&out.stdout).starts_with("kid "),
        "{}",
        text(&out.stdout)
    );
    let out = run_in(
        d,
        &[
            "keyring",
            "add",
            "--keyring",
            "other.toml",
            "--rehearsal-copy",
            "--public",
            "-",
        ],
        &public,
    );
    code(&out, 0);
    assert!(d.join("other.toml").is_file());
    // The passphrase from standard input, none in the environment.
    let mut c = tessera(d);
    c.env_remove("TESSERA_PASSPHRASE");
    let mut child = c
        .args([
            "key",
            "public",
            "--key",
            "signing.pem",
            "--passphrase-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSPHRASE}").unwrap();
    code(&child.wait_with_output().unwrap(), 0);
    let out = run_in(
        d,
        &["inspect", "-", "--keyring", "keyring.toml"],
        &std::fs::read(d.join("a.lic")).unwrap(),
    );
    code(&out, 0);
    // Standard input is read once: two inputs cannot both be `-`.
    let out = run(d, &["issue", "--order", "-", "--request", "-"]);
    code(&out, 1);
    assert!(
        text(&out.stderr).contains("--order and --request")
            || text(&out.stderr).contains("--order, --request"),
        "{}",
        text(&out.stderr)
    );
    // A ledger is a database, never standard input.
    let out = run(d, &["ledger", "list", "--ledger", "-"]);
    code(&out, 1);
    assert!(
        text(&out.stderr).contains("not `-`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_full_disk_on_standard_output_is_exit_7() {
    let dir = workdir();
    let d = dir.path();
    for args in [
        &["ledger", "list"][..],
        &["ledger", "verify", "--keyring", "keyring.toml"],
        &["--help"],
    ] {
        let out = tessera(d)
            .args(args)
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(7),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains("cannot write to standard output"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn json_output_and_json_errors() {
    let dir = workdir();
    let d = dir.path();
    let out = run(
        d,
        &["ledger", "verify", "--keyring", "keyring.toml", "--json"],
    );
    code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["entries"], 1);
    assert_eq!(v["head"].as_str().unwrap().len(), 64);
    // A refusal under --json: one JSON object on standard output, the
    // message on standard error as always.
    let out = run(d, &["ledger", "show", "SW-2099-000001", "--json"]);
    code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert!(v["error"]["code"].as_str().is_some());
    let message = v["error"]["message"].as_str().unwrap();
    assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    // A command line that does not parse.
    let out = run(d, &["ledger", "list", "--json", "--bogus"]);
    code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "usage");
    // A mistyped command after an option that belongs after the command
    // is named as the mistake, with the command meant.
    for args in [
        &["--json", "ledger", "lst"][..],
        &["ledger", "--json", "lst"],
        &["--ledger", "tessera.db", "--json", "ledger", "lst"],
    ] {
        let out = run(d, args);
        code(&out, 1);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("unrecognized subcommand 'lst'") && message.contains("'list'"),
            "{args:?}: {message}"
        );
        assert!(
            text(&out.stderr).contains("tip: a similar subcommand exists: 'list'"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Integrity failures keep their exit code in the JSON.
    let db = d.join("tessera.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&db, bytes).unwrap();
    let out = run(
        d,
        &["ledger", "verify", "--keyring", "keyring.toml", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        Some(i64::from(out.status.code().unwrap())),
        v["exit_code"].as_i64()
    );
}

/// A key file that cannot be used says what it is before any passphrase
/// is asked for (here none is available: a prompt would fail first).
#[test]
fn an_unusable_key_says_what_it_is_before_asking_a_passphrase() {
    let dir = workdir();
    let d = dir.path();
    std::fs::write(
        d.join("rsa.pem"),
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(d.join("photo.pem"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    for (key, says) in [
        ("rsa.pem", "this is an RSA key"),
        ("photo.pem", "not a key file (it holds binary data"),
    ] {
        for args in [
            &["key", "public", "--key", key][..],
            &[
                "renew",
                "--request",
                "device.req",
                "--key",
                key,
                "-o",
                "x.lic",
            ],
        ] {
            let out = tessera(d)
                .env_remove("TESSERA_PASSPHRASE")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            code(&out, 1);
            let err = text(&out.stderr);
            assert!(err.contains(says), "{args:?}: {err}");
            assert!(
                !err.contains("passphrase") && !err.contains("backup"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn a_keyring_changed_in_place_is_never_dash() {
    let dir = workdir();
    let d = dir.path();
    let ring = std::fs::read(d.join("keyring.toml")).unwrap();
    for args in [
        &["keyring", "retire", "--keyring", "-", "0000000000000000"][..],
        &["keyring", "activate", "--keyring", "-", "0000000000000000"],
        &[
            "keyring",
            "add",
            "--keyring",
            "-",
            "--public",
            "signing.pem.pub",
        ],
    ] {
        let out = run_in(d, args, &ring);
        code(&out, 1);
        assert!(
            text(&out.stderr).contains("not `-`"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!d.join("-").exists(), "{args:?}");
    }
    // Only read: standard input is fine.
    let out = run_in(d, &["keyring", "list", "--keyring", "-"], &ring);
    code(&out, 0);
}

/// `report billing --help` lists every column the report writes, as
/// docs/operations.md ("Billing") does, and says what `--to` is.
#[test]
fn billing_help_and_docs_list_every_column() {
    let dir = tempfile::tempdir().unwrap();
    let help = help(dir.path(), &["report", "billing"]);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operations.md"
    ))
    .unwrap();
    for column in tessera_issuer::commands::report::BILLING_COLUMNS {
        assert!(flat.contains(column), "--help lacks {column}: {help}");
        assert!(
            docs.contains(&format!("`{column}`")),
            "operations.md lacks {column}"
        );
    }
    assert!(flat.contains("credit"), "{help}");
    assert!(flat.contains("the day after the last day"), "{help}");
    assert!(!flat.contains("Last day"), "{help}");
}

/// `issue --help` carries the bulk CSV's columns itself (a `cargo install`
/// has no issuer/README.md), the same as the README's table; `issue` and
/// `renew` say a request may be a picture of its QR code.
#[test]
fn issue_help_lists_the_bulk_columns_and_takes_qr_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let issue = help(dir.path(), &["issue"]);
    let flat = issue.split_whitespace().collect::<Vec<_>>().join(" ");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for column in [
        "request",
        "order",
        "key",
        "customer",
        "pbx_name",
        "extension",
        "number",
        "user",
        "profile",
        "base",
        "addon_1",
    ] {
        assert!(flat.contains(column), "issue --help lacks {column}");
        assert!(
            readme.contains(&format!("`{column}`")),
            "README lacks {column}"
        );
    }
    assert!(flat.contains("--bulk CSV columns"), "{issue}");
    for args in [&["issue"][..], &["renew"][..]] {
        let text = help(dir.path(), args);
        assert!(
            text.contains("(PNG, JPEG) of its QR code"),
            "{args:?}: {text}"
        );
    }
}
