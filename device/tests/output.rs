//! Standard output that cannot be written, after the work is done: a pipe
//! whose reader is gone (`| head -0`, `| true`) ends the command quietly
//! with the exit code it decided; any other failure (`> /dev/full`) is
//! reported on standard error, with the mode's exit code for `check`,
//! `status` and `install` (the decision stands) and exit code 3 for the
//! other commands. Never a panic (exit 101).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::process::{Output, Stdio};

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

/// An activated appliance with a seat assigned.
fn activated() -> Device {
    let d = Device::activated();
    d.run(
        &["seats", "assign", "--user", "alice", "--profile", "1"],
        T0,
        0,
    );
    d
}

/// Runs the agent with `args`, standard output a pipe nobody reads any
/// more (its reader closed before the agent starts).
fn into_closed_pipe(d: &Device, args: &[&str]) -> Output {
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    d.std_cmd()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Runs the agent with `args`, standard output `/dev/full`.
fn into_full_disk(d: &Device, args: &[&str]) -> Output {
    d.std_cmd()
        .args(args)
        .stdout(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn now(t: i64) -> String {
    at(t)
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_exit_code() {
    let d = activated();
    let t = now(T0 + DAY);
    let cases: [(&[&str], i32); 9] = [
        (&["status", "--now", &t], 0),
        (&["status", "--json", "--now", &t], 0),
        (&["check", "--now", &t], 0),
        (&["seats", "list", "--now", &t], 0),
        (&["seats", "list", "--json", "--now", &t], 0),
        (&["seats", "export", "--now", &t], 0),
        (
            &[
                "seats",
                "assign",
                "--user",
                "bob",
                "--profile",
                "1",
                "--now",
                &t,
            ],
            0,
        ),
        (&["probe"], 0),
        (&["request", "--now", &t], 0),
    ];
    for (args, code) in cases {
        let out = into_closed_pipe(&d, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("Broken pipe"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // The work was done: bob has his seat.
    d.cmd()
        .args(["seats", "list", "--user", "bob", "--now", &t])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("bob"));
    // A check in grace keeps its exit code (11) with nobody reading.
    let grace = now(T0 + 366 * DAY);
    let out = into_closed_pipe(&d, &["check", "--now", &grace]);
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
}

#[test]
fn a_failed_write_to_standard_output_is_reported_never_a_panic() {
    let d = activated();
    let t = now(T0 + DAY);
    // The decision stands: the exit code is the mode.
    for args in [
        &["check", "--now", &t][..],
        &["status", "--json", "--now", &t],
    ] {
        let out = into_full_disk(&d, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot write to standard output"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Other commands: exit code 3, the work done.
    for args in [
        &["seats", "list", "--now", &t][..],
        &["seats", "export", "--now", &t],
        &[
            "seats",
            "assign",
            "--user",
            "carol",
            "--profile",
            "1",
            "--now",
            &t,
        ],
        &["probe", "--json"],
        &["request", "--now", &t],
    ] {
        let out = into_full_disk(&d, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("cannot write to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // Nothing claims it was written.
        assert!(
            !err.contains("written to standard output"),
            "{args:?}: {err}"
        );
    }
    d.cmd()
        .args(["seats", "list", "--user", "carol", "--now", &t])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("carol"));
    // An error with --json, its JSON lost: still exit 2, never 101.
    let out = into_full_disk(&d, &["check", "--json", "--now", &now(T0 - 30 * DAY)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Standard error failing too: the exit code is still right.
    let out = d
        .std_cmd()
        .args(["check", "--now", &now(T0 - 30 * DAY)])
        .stdout(Stdio::null())
        .stderr(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Help into a closed pipe or a full disk.
    let out = into_closed_pipe(&d, &["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = into_full_disk(&d, &["--help"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
