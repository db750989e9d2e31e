//! The state folder as an attacker leaves it for root: writable by others,
//! a symbolic link or a FIFO planted at every name the agent uses (files
//! and temporary files), files owned by someone else, files far too large.
//! `tessera-agent` refuses (exit 2, naming the path, owner and mode) and
//! writes nothing outside the folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::time::Duration;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::Path;

use common::{at, mkfifo, Device, T0};
use tessera_verifier::samples::DAY;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs `cmd`, which must refuse (exit 2) within 20 seconds; its standard
/// error.
fn refused(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd
        .timeout(Duration::from_secs(20))
        .assert()
        .code(2)
        .get_output()
        .clone();
    stderr(&out)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every entry below `dir`: name → (kind, contents of regular files).
fn snapshot(dir: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let kind = format!("{t:?}");
        let bytes = if t.is_file() {
            fs::read(e.path()).unwrap()
        } else {
            Vec::new()
        };
        out.insert(e.file_name().into_string().unwrap(), (kind, bytes));
    }
    out
}

/// An activated appliance with a seat store, checked once.
fn activated() -> Device {
    let d = Device::activated();
    d.run(
        &["seats", "assign", "--user", "alice", "--profile", "1"],
        T0,
        0,
    );
    d.run(&["check"], T0 + DAY, 0);
    d
}

/// Every name the agent keeps in the state folder, and the temporary
/// names it writes (the fixed ones of older agents and the random form).
const NAMES: [&str; 16] = [
    "license",
    "state",
    "device.key",
    "keyring.toml",
    "agent.toml",
    "lock",
    "seats.db",
    "seats.db-wal",
    "seats.db-shm",
    "seats.db-journal",
    "state.corrupt",
    "license.new",
    "state.new",
    "device.key.new",
    "state.corrupt.new",
    "state.new-0123456789abcdef",
];

/// Runs the periodic check, an install of a renewal, a request and
/// `install --recover` on `d`; every one must refuse with `expect` in its
/// message, within `timeout`.
fn every_command_refuses(d: &Device, renewal: &Path, expect: &str, what: &str) {
    let runs: [&[&str]; 4] = [
        &["check"],
        &["install"],
        &["request", "-o", "-"],
        &["install", "--recover"],
    ];
    for args in runs {
        let mut cmd = d.cmd();
        cmd.args(args).args(["--now", &at(T0 + 2 * DAY)]);
        if args[0] == "install" {
            cmd.arg(renewal);
        }
        let err = refused(&mut cmd);
        assert!(err.contains(expect), "{what}, {args:?}: {err}");
        assert!(err.contains("remove it"), "{what}, {args:?}: {err}");
    }
}

#[test]
fn a_state_folder_others_may_write_is_refused_and_nothing_is_written() {
    let d = activated();
    let renewal = d.licensed(2, T0 + DAY, |_| {});
    for mode in [0o777, 0o770, 0o1777] {
        let before = snapshot(d.state.path());
        chmod(d.state.path(), mode);
        for args in [
            &["check"][..],
            &["status"],
            &["request"],
            &["seats", "summary"],
        ] {
            let err = refused(d.cmd().args(args).args(["--now", &at(T0 + 2 * DAY)]));
            let path = d.state.path().display().to_string();
            assert!(err.contains(&path), "{args:?}: {err}");
            assert!(err.contains(&format!("mode {mode:04o}")), "{args:?}: {err}");
            assert!(err.contains("owned by uid"), "{args:?}: {err}");
            assert!(err.contains("chmod go-w"), "{args:?}: {err}");
        }
        let out = d
            .cmd()
            .args(["check", "--json", "--now", &at(T0 + 2 * DAY)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["error"]["code"], "unsafe_permissions");
        d.cmd()
            .args(["install", "--now", &at(T0 + 2 * DAY)])
            .arg(&renewal)
            .assert()
            .code(2);
        chmod(d.state.path(), 0o700);
        assert_eq!(snapshot(d.state.path()), before, "mode {mode:o}");
    }
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(0);
}

#[test]
fn trusted_files_others_may_write_are_refused() {
    let d = activated();
    for name in ["license", "state", "keyring.toml", "lock", "seats.db"] {
        let path = d.state_file(name);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        chmod(&path, mode | 0o022);
        let err = refused(d.cmd().args(["check", "--now", &at(T0 + 2 * DAY)]));
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(err.contains("writable by group or others"), "{name}: {err}");
        chmod(&path, mode);
    }
    // A device key others may read.
    chmod(&d.state_file("device.key"), 0o640);
    let err = refused(d.cmd().args(["check", "--now", &at(T0 + 2 * DAY)]));
    assert!(err.contains("chmod 600"), "{}", err);
    chmod(&d.state_file("device.key"), 0o600);
    // A keyring named outside the folder, writable by others.
    let elsewhere = tempfile::tempdir().unwrap();
    let ring = elsewhere.path().join("keyring.toml");
    fs::copy(d.state_file("keyring.toml"), &ring).unwrap();
    chmod(&ring, 0o666);
    let err = refused(
        d.cmd()
            .args(["check", "--now", &at(T0 + 2 * DAY), "--keyring"])
            .arg(&ring),
    );
    assert!(err.contains("mode 0666"), "{}", err);
    chmod(&ring, 0o644);
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY), "--keyring"])
        .arg(&ring)
        .assert()
        .code(0);
}

#[test]
fn files_owned_by_another_user_are_refused() {
    if !rustix::process::geteuid().is_root() {
        // Only root can give a file away (and the agent runs as root);
        // the mode checks above run for everyone.
        return;
    }
    let d = activated();
    for name in ["keyring.toml", "license", "state", "agent.toml"] {
        let path = d.state_file(name);
        if !path.exists() {
            fs::write(&path, "").unwrap();
        }
        let uid = rustix::process::Uid::from_raw(4242);
        rustix::fs::chown(&path, Some(uid), None).unwrap();
        let err = refused(d.cmd().args(["check", "--now", &at(T0 + 2 * DAY)]));
        assert!(err.contains("owned by uid 4242"), "{name}: {err}");
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        rustix::fs::chown(&path, Some(rustix::process::Uid::ROOT), None).unwrap();
    }
    rustix::fs::chown(
        d.state.path(),
        Some(rustix::process::Uid::from_raw(4242)),
        None,
    )
    .unwrap();
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(2);
}

/// A link at any name of the folder, to a file of root's or to a path
/// that does not exist yet: every command refuses, the file is unchanged
/// and nothing is created.
#[test]
fn a_symlink_planted_at_any_name_is_refused_and_never_followed() {
    for name in NAMES {
        let d = activated();
        let renewal = d.licensed(2, T0 + DAY, |_| {});
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"root's file").unwrap();
        for target in [victim.clone(), outside.path().join("created-by-root")] {
            let planted = d.state_file(name);
            let _ = fs::remove_file(&planted);
            symlink(&target, &planted).unwrap();
            every_command_refuses(&d, &renewal, "a symbolic link", name);
            assert_eq!(fs::read(&victim).unwrap(), b"root's file", "{name}");
            let names: Vec<_> = fs::read_dir(outside.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["victim"], "{name}");
            assert!(fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink());
        }
    }
}

/// A FIFO at any name: opening it for reading would hang a naive agent
/// until someone writes to it. Every command refuses at once.
#[test]
fn a_fifo_at_any_name_is_refused_without_hanging() {
    for name in NAMES {
        let d = activated();
        let renewal = d.licensed(2, T0 + DAY, |_| {});
        let planted = d.state_file(name);
        let _ = fs::remove_file(&planted);
        mkfifo(&planted);
        every_command_refuses(&d, &renewal, "a FIFO", name);
    }
}

/// A keyring, configuration, license or seat CSV far larger than any real
/// one: refused before it is read (a 200 MB keyring once used 619 MB of
/// memory), with a short message.
#[test]
fn oversized_files_are_refused_before_they_are_read() {
    let d = activated();
    let big = |path: &Path, len: u64| {
        let f = fs::File::create(path).unwrap();
        f.set_len(len).unwrap();
    };
    for (name, expect) in [
        ("keyring.toml", "keyring"),
        ("agent.toml", "agent configuration"),
        ("license", "larger than any license"),
    ] {
        let path = d.state_file(name);
        let keep = fs::read(&path).ok();
        big(&path, 200 * 1024 * 1024);
        let err = refused(d.cmd().args(["check", "--now", &at(T0 + 2 * DAY)]));
        assert!(err.contains(expect), "{name}: {err}");
        assert!(
            err.len() < 600,
            "{name}: the message repeats the file: {err}"
        );
        match keep {
            Some(bytes) => fs::write(&path, bytes).unwrap(),
            None => fs::remove_file(&path).unwrap(),
        }
    }
    let csv = d.root.path().join("seats.csv");
    big(&csv, 65 * 1024 * 1024);
    let err = refused(
        d.cmd()
            .args(["seats", "import", "--now", &at(T0 + DAY)])
            .arg(&csv),
    );
    assert!(err.contains("larger than"), "{}", err);
    // A license file to install, and a catalog, far too large.
    let license = d.root.path().join("huge.lic");
    big(&license, 1024 * 1024);
    let err = refused(
        d.cmd()
            .args(["install", "--now", &at(T0 + DAY)])
            .arg(&license),
    );
    assert!(err.contains("larger than"), "{}", err);
    let catalog = d.root.path().join("catalog.toml");
    big(&catalog, 2 * 1024 * 1024);
    let err = refused(
        d.cmd()
            .args(["status", "--now", &at(T0 + DAY), "--catalog"])
            .arg(&catalog),
    );
    assert!(err.contains("catalog"), "{}", err);
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(0);
}

/// A keyring whose parser error would quote the file: the message is
/// escaped and short.
#[test]
fn a_bad_keyring_is_reported_escaped_and_short() {
    let d = activated();
    let line = format!("label = \"\u{1b}[2J{}\"\nformat = ", "A".repeat(5000));
    fs::write(d.state_file("keyring.toml"), line).unwrap();
    let err = refused(d.cmd().args(["check", "--now", &at(T0 + 2 * DAY)]));
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.len() < 800, "{err}");
    assert!(err.contains("keyring"), "{err}");
}

/// `seats export` writes a user name a spreadsheet would run as a formula
/// as text, and `-o` never writes through a link or into a FIFO.
#[test]
fn seats_export_neutralizes_formulas_and_writes_only_regular_files() {
    let d = activated();
    let evil = "=cmd|' /C calc'!A0";
    d.cmd()
        .args(["seats", "assign", "--user", evil, "--profile", "3"])
        .args(["--now", &at(T0 + DAY)])
        .assert()
        .code(0);
    let out = d
        .cmd()
        .args(["seats", "export", "--now", &at(T0 + DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains(",'=cmd|' /C calc'!A0"), "{csv}");
    assert!(!csv.contains(",=cmd"), "{csv}");
    // Imported back, nothing changes.
    let file = d.root.path().join("seats.csv");
    fs::write(&file, &csv).unwrap();
    let out = d
        .cmd()
        .args(["seats", "import", "--json", "--now", &at(T0 + DAY)])
        .arg(&file)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["unchanged"], 2, "{json}");
    // Outputs: a link or a FIFO at the name is refused, even with --force.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"root's file").unwrap();
    let link = d.root.path().join("link.csv");
    symlink(&victim, &link).unwrap();
    let fifo = d.root.path().join("fifo.csv");
    mkfifo(&fifo);
    for target in [&link, &fifo] {
        let err = refused(
            d.cmd()
                .args(["seats", "export", "--force", "--now", &at(T0 + DAY), "-o"])
                .arg(target),
        );
        assert!(err.contains("not a regular file"), "{}", err);
    }
    assert_eq!(fs::read(&victim).unwrap(), b"root's file");
    // A regular file is replaced only with --force.
    d.cmd()
        .args(["seats", "export", "--now", &at(T0 + DAY), "-o"])
        .arg(&file)
        .assert()
        .code(2);
    d.cmd()
        .args(["seats", "export", "--force", "--now", &at(T0 + DAY), "-o"])
        .arg(&file)
        .assert()
        .code(0);
    assert_eq!(fs::read_to_string(&file).unwrap(), csv);
}

fn copy_folder(from: &Path, to: &Path) {
    fs::create_dir(to).unwrap();
    chmod(to, 0o700);
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        fs::copy(e.path(), &target).unwrap();
    }
}

/// The state folder reached through a link of root's, as
/// `/var/lib/tessera -> /data/tessera`: every command works, the seats
/// too, and `check` counts them.
#[test]
fn a_state_folder_behind_a_link_of_roots_works_for_every_command() {
    let d = Device::appliance();
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("data");
    fs::create_dir(&data).unwrap();
    let real = data.join("tessera");
    copy_folder(d.state.path(), &real);
    let lib = top.path().join("var/lib");
    fs::create_dir_all(&lib).unwrap();
    symlink("../../data/tessera", lib.join("tessera")).unwrap();
    let state = lib.join("tessera");
    let license = |sequence: u32, users: u32| {
        d.licensed_in(&state, sequence, T0, |l| {
            l.entitlements.profiles[0].count = users;
        })
    };
    d.cmd_at(&state)
        .args(["install", "--now", &at(T0)])
        .arg(license(1, 20))
        .assert()
        .code(0);
    for user in ["alice", "bob"] {
        d.cmd_at(&state)
            .args(["seats", "assign", "--user", user, "--profile", "1"])
            .args(["--now", &at(T0)])
            .assert()
            .code(0);
    }
    d.cmd_at(&state)
        .args(["seats", "list", "--now", &at(T0)])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("alice"));
    assert!(real.join("seats.db").exists());
    // The vendor lowers the count to 1: check sees the seats, and reports
    // one over the limit, instead of "seats not checked".
    d.cmd_at(&state)
        .args(["install", "--now", &at(T0 + DAY)])
        .arg(license(2, 1))
        .assert()
        .code(0);
    let out = d
        .cmd_at(&state)
        .args(["check", "--json", "--now", &at(T0 + DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !json["notes"].to_string().contains("seats not checked"),
        "{json}"
    );
    assert_eq!(json["over_assigned"][0]["over"], 1, "{json}");
}

/// The swap attack: the state folder is named through a folder another
/// user controls (`/opt/pbx/tessera -> the state`). That user swaps the
/// link to a root-owned copy of an older state (an older license with its
/// own intact sealed record). Every command refuses the path, naming the
/// folder; the keyring and configuration named through it too.
#[test]
fn a_state_folder_named_through_a_folder_another_user_controls_is_refused() {
    let d = activated();
    let top = tempfile::tempdir().unwrap();
    let backup = top.path().join("backup");
    copy_folder(d.state.path(), &backup);
    let renewal = d.licensed(3, T0 + DAY, |_| {});
    let pbx = top.path().join("opt/pbx");
    fs::create_dir_all(&pbx).unwrap();
    let link = pbx.join("tessera");
    symlink(d.state.path(), &link).unwrap();
    d.cmd_at(&link)
        .args(["install", "--now", &at(T0 + DAY)])
        .arg(&renewal)
        .assert()
        .code(0);
    // Another user gets the folder (root's tests), or it is left writable
    // by everybody (any user's tests): the same exposure.
    let root = rustix::process::geteuid().is_root();
    if root {
        rustix::fs::chown(&pbx, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
    } else {
        chmod(&pbx, 0o777);
    }
    let expect = if root {
        "owned by uid 65534".to_owned()
    } else {
        "mode 0777".to_owned()
    };
    // The swap, as that user would make it.
    let swap = pbx.join("t");
    symlink(&backup, &swap).unwrap();
    fs::rename(&swap, &link).unwrap();
    for args in [
        &["check"][..],
        &["status"],
        &["seats", "list"],
        &["request", "-o", "-"],
    ] {
        let err = refused(
            d.cmd_at(&link)
                .args(args)
                .args(["--now", &at(T0 + 2 * DAY)]),
        );
        assert!(err.contains(&pbx.display().to_string()), "{args:?}: {err}");
        assert!(err.contains(&expect), "{args:?}: {err}");
    }
    // A keyring or configuration named through that folder.
    let keyring = pbx.join("keyring.toml");
    fs::write(&keyring, common::keyring_toml()).unwrap();
    chmod(&keyring, 0o644);
    let err = refused(
        d.cmd()
            .args(["check", "--now", &at(T0 + 2 * DAY), "--keyring"])
            .arg(&keyring),
    );
    assert!(err.contains(&pbx.display().to_string()), "{err}");
    let config = pbx.join("agent.toml");
    fs::write(&config, "").unwrap();
    chmod(&config, 0o644);
    let err =
        refused(
            d.cmd()
                .arg("--config")
                .arg(&config)
                .args(["check", "--now", &at(T0 + 2 * DAY)]),
        );
    assert!(err.contains(&pbx.display().to_string()), "{err}");
    // Named directly, the state folder holds the license in force.
    d.cmd()
        .args(["check", "--json", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("\"sequence\": 3"));
}

/// `check`, `status` and `seats` pointed at a folder that holds no agent
/// state create nothing in it (no `lock`): an empty folder is a device
/// not provisioned yet, a folder of other files (`/`, say) is no state
/// folder at all; `request` provisions only an empty or new folder.
#[test]
fn a_folder_without_agent_state_is_left_as_it_is() {
    let d = Device::appliance();
    let empty = tempfile::tempdir().unwrap();
    let foreign = tempfile::tempdir().unwrap();
    fs::write(foreign.path().join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    for (dir, code, words) in [
        (
            empty.path(),
            "not_activated",
            &[
                "holds no tessera state",
                "tessera-agent request",
                "--state-dir",
            ][..],
        ),
        (
            foreign.path(),
            "not_state_folder",
            &["not a tessera state folder", "--state-dir"],
        ),
    ] {
        let before = snapshot(dir);
        for args in [
            &["check", "--json"][..],
            &["status", "--json"],
            &["seats", "list", "--json"],
        ] {
            let out = d
                .cmd_at(dir)
                .args(args)
                .args(["--now", &at(T0)])
                .assert()
                .code(2)
                .get_output()
                .clone();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["error"]["code"], code, "{args:?}");
            let err = stderr(&out);
            for w in words {
                assert!(err.contains(w), "{args:?}: {w} not in {err}");
            }
            assert_eq!(snapshot(dir), before, "{args:?} wrote into {dir:?}");
        }
    }
    // Provisioning: never into a folder of other files.
    let err = refused(d.cmd_at(foreign.path()).args(["request", "--now", &at(T0)]));
    assert!(err.contains("not a tessera state folder"), "{err}");
    assert_eq!(fs::read_dir(foreign.path()).unwrap().count(), 1);
    // A file system's lost+found (the state on its own partition) and
    // hidden files are no one else's files.
    fs::create_dir(empty.path().join("lost+found")).unwrap();
    fs::write(empty.path().join(".keep"), "").unwrap();
    d.cmd_at(empty.path())
        .args(["request", "--now", &at(T0)])
        .assert()
        .code(0);
    assert!(empty.path().join("device.key").exists());
}
