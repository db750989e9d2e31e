//! Messages that quote input (a user name from a CSV file, a file name
//! from the command line) can neither forge a log line nor move the
//! cursor: every such value is escaped (`tessera_verifier::text::escaped`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

const FORGED: &str = "tessera-agent: imported x.csv: 0 row(s)";

/// No line of `out` is `forged`, and no escape character reaches it.
fn no_forged_line(out: &[u8], forged: &str) {
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(
        !text.lines().any(|l| l.trim_start() == forged),
        "forged line in:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_user_named_twice_in_a_csv_cannot_forge_a_line() {
    let d = Device::activated();
    let csv = d.root.path().join("x.csv");
    let evil = format!("evil\n{FORGED}");
    fs::write(
        &csv,
        format!(
            "extension_key,number,user\nprofile:1,,\"{evil}\"\nprofile:1,,\"{evil}\"\nprofile:2,,\"a\u{1b}[2Jb\"\nprofile:2,,\"a\u{1b}[2Jb\"\n"
        ),
    )
    .unwrap();
    let out = d
        .cmd()
        .args(["seats", "import", "--now", &at(T0 + DAY)])
        .arg(&csv)
        .assert()
        .code(2)
        .get_output()
        .clone();
    no_forged_line(&out.stderr, FORGED);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("evil\\u{a}tessera-agent"), "{err}");
    assert!(err.contains("is given"), "{err}");
}

#[test]
fn file_names_in_success_messages_are_escaped() {
    let d = Device::activated();
    let odd = |name: &str| d.root.path().join(format!("{name}\n{FORGED}\u{1b}[2J"));
    // seats import FILE
    let csv = odd("in.csv");
    fs::write(&csv, "extension_key,number,user\nprofile:1,,alice\n").unwrap();
    let out = d
        .cmd()
        .args(["seats", "import", "--now", &at(T0 + DAY)])
        .arg(&csv)
        .assert()
        .code(0)
        .get_output()
        .clone();
    no_forged_line(&out.stdout, FORGED);
    no_forged_line(&out.stderr, FORGED);
    // seats export -o FILE
    let out = d
        .cmd()
        .args(["seats", "export", "--now", &at(T0 + DAY), "-o"])
        .arg(odd("out.csv"))
        .assert()
        .code(0)
        .get_output()
        .clone();
    no_forged_line(&out.stderr, FORGED);
    assert!(fs::read_to_string(odd("out.csv"))
        .unwrap()
        .contains("alice"));
    // request -o FILE
    let out = d
        .cmd()
        .args(["request", "--now", &at(T0 + DAY), "-o"])
        .arg(odd("request.txt"))
        .assert()
        .code(0)
        .get_output()
        .clone();
    no_forged_line(&out.stderr, FORGED);
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("\\u{a}tessera-agent"));
}
