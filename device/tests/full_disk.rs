//! A full file system under the state folder. Anybody who can fill it
//! (any user, on a shared partition) must not lock the PBX: when `check`
//! cannot save the state record, its verdict stands (exit code of the
//! mode), the JSON report says `"state_saved": false`, and a warning says
//! why. It grants no more than the last saved state allows: the clock is
//! judged against the last time saved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` without root outside CI (a developer machine); in CI
    /// (`CI=true`) the test needs root and fails without it.
    fn mount() -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "this test mounts a tmpfs and needs root in CI"
            );
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        rustix::mount::mount(
            "tmpfs",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            Some(c"size=1m,mode=0755"),
        )
        .unwrap();
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with one file; returns it.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_full_disk_keeps_the_verdict_and_says_the_state_was_not_saved() {
    let Some(fs_) = Tmpfs::mount() else { return };
    let d = Device::appliance();
    let state = fs_.path().join("tessera");
    fs::create_dir(&state).unwrap();
    fs::copy(d.state_file("keyring.toml"), state.join("keyring.toml")).unwrap();
    let license = d.licensed_in(&state, 1, T0, |_| {});
    d.cmd_at(&state)
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(0);
    d.cmd_at(&state)
        .args(["check", "--now", &at(T0 + 10 * DAY)])
        .assert()
        .code(0);
    let saved = fs::read(state.join("state")).unwrap();

    let filler = fs_.fill();
    for (args, when) in [
        (&["check", "--json"][..], T0 + 20 * DAY),
        (&["check"], T0 + 21 * DAY),
    ] {
        let out = d
            .cmd_at(&state)
            .args(args)
            .args(["--now", &at(when)])
            .assert()
            .code(0)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr.clone()).unwrap();
        assert!(err.contains("could not be saved"), "{args:?}: {err}");
        if args.contains(&"--json") {
            let report = json(&out);
            assert_eq!(report["state_saved"], false, "{report}");
            assert_eq!(report["verdict"], "valid");
        } else {
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("could not be saved"), "{text}");
        }
        assert_eq!(fs::read(state.join("state")).unwrap(), saved);
    }
    // The clock is judged against the last time saved (day 10): back to
    // day 9.5 is within the tolerance, back to day 5 is not.
    d.cmd_at(&state)
        .args(["check", "--now", &at(T0 + 9 * DAY + DAY / 2)])
        .assert()
        .code(0);
    d.cmd_at(&state)
        .args(["check", "--json", "--now", &at(T0 + 5 * DAY)])
        .assert()
        .code(2)
        .stdout(predicates::str::contains("clock_rollback"));
    // Room again: saved.
    fs::remove_file(filler).unwrap();
    let out = d
        .cmd_at(&state)
        .args(["check", "--json", "--now", &at(T0 + 22 * DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert_eq!(json(&out)["state_saved"], true);
    assert_ne!(fs::read(state.join("state")).unwrap(), saved);
}

/// Every name below `dir`, for comparing a tree before and after.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(here) = todo.pop() {
        for e in fs::read_dir(&here).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn a_first_install_or_request_on_a_full_disk_leaves_nothing_behind() {
    let Some(fs_) = Tmpfs::mount() else { return };
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    let keyring = d.state_file("keyring.toml");
    fs_.fill();
    let before = tree(fs_.path());
    // A folder never set up, its parent missing too.
    let state = fs_.path().join("site/tessera");
    let install = [
        "install".as_ref(),
        license.as_os_str(),
        "--keyring".as_ref(),
        keyring.as_os_str(),
    ];
    for args in [&install[..], &["request".as_ref()]] {
        let out = d
            .cmd_at(&state)
            .args(args)
            .args(["--now", &at(T0)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("No space left"), "{args:?}: {err}");
        assert_eq!(tree(fs_.path()), before, "{args:?}: {err}");
    }
    // The state folder elsewhere (made, with its parent), the request
    // file on the full disk: the request is refused when its file cannot
    // be written, and takes back the device key and the folders it made.
    let elsewhere = tempfile::tempdir().unwrap();
    let state = elsewhere.path().join("site/tessera");
    let out = d
        .cmd_at(&state)
        .args(["request", "--now", &at(T0), "-o"])
        .arg(fs_.path().join("request.txt"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(tree(fs_.path()), before, "{err}");
    assert_eq!(tree(elsewhere.path()), Vec::<PathBuf>::new(), "{err}");
}
