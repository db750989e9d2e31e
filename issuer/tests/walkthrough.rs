//! An operator's walk-through of README.md and docs/operations.md, run
//! through the real `tessera` binary in a vendor folder set up as in
//! operations.md "Setup": a `tessera.toml` naming the ledger, the keyring
//! and the key. Each test is one finding: what the operator did, and what
//! must hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::Run;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/issue.in");

/// The time the fixture requests are fresh at.
const T0: &str = "2026-01-02T09:00:00Z";

/// An order for Acme's branch appliance, as `pbx add` below enters it.
const ACME_ORDER: &str = "customer = \"Acme GmbH\"\npbx_name = \"Acme branch\"\nplatform = \"hw\"\ncycle = \"yearly\"\nterm_start = \"2026-01-01\"\n[profiles]\npbx-basic = 10\n";

/// The fixture keyring's one key.
const OLD: &str = "9142e2a27cd1df9a";

struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let v = Self { dir };
        for f in [
            "signing.pem",
            "keyring.toml",
            "order.toml",
            "other.pem",
            "other.pem.pub",
            "order-vm.toml",
            "device.req",
            "vm.req",
        ] {
            std::fs::copy(Path::new(FIXTURES).join(f), v.path(f)).unwrap();
        }
        std::fs::write(
            v.path("tessera.toml"),
            "ledger = \"ledger.db\"\nkeyring = \"keyring.toml\"\nkey = \"signing.pem\"\n",
        )
        .unwrap();
        v.run(&["ledger", "init"]).ok();
        v
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.current_dir(self.dir.path())
            .env("TESSERA_OPERATOR", "alice")
            .env("TESSERA_PASSPHRASE", "correct horse battery staple")
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .env("TESSERA_REQUEST_WINDOW", "400d")
            .env_remove("TESSERA_NOW")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_LEDGER")
            .env_remove("TESSERA_KEY")
            .env_remove("TESSERA_KEYRING")
            .env_remove("TESSERA_CATALOG");
        c
    }

    /// `tessera ARGS` at the clock's time.
    fn run(&self, args: &[&str]) -> Run {
        Run::of(&self.command().args(args).output().unwrap())
    }

    /// `TESSERA_NOW=NOW tessera ARGS`.
    fn at(&self, now: &str, args: &[&str]) -> Run {
        Run::of(
            &self
                .command()
                .env("TESSERA_NOW", now)
                .args(args)
                .output()
                .unwrap(),
        )
    }

    /// The second key, added to the live keyring and scheduled to sign
    /// from 2027-01-01 (the rotation runbook); returns its kid.
    fn scheduled_rotation(&self) -> String {
        let added = self.run(&[
            "keyring",
            "add",
            "--public",
            "other.pem.pub",
            "--valid-from",
            "2027-01-01",
        ]);
        added.ok();
        let kid = added.stdout.split_whitespace().nth(1).unwrap().to_owned();
        self.run(&["keyring", "activate", &kid, "--at", "2027-01-01"])
            .ok();
        kid
    }
}

#[test]
fn a_rehearsal_time_never_changes_the_live_keyring() {
    let v = Vendor::new();
    let new = v.scheduled_rotation();
    let before = v.read("keyring.toml");
    let live = [
        "the live keyring",
        "--keyring rehearsal.toml --rehearsal-copy",
    ];
    v.at("2027-01-02", &["keyring", "retire", OLD])
        .refused(1, &live);
    v.run(&["keyring", "activate", &new, "--now", "2027-01-02"])
        .refused(1, &live);
    v.at(
        "2027-01-02",
        &["keyring", "add", "--public", "signing.pem.pub"],
    )
    .refused(1, &live);
    // Naming the live keyring by its path is the live keyring too, and
    // calling it a copy changes nothing.
    v.at(
        "2027-01-02",
        &["keyring", "retire", OLD, "--keyring", "keyring.toml"],
    )
    .refused(1, &live);
    v.at(
        "2027-01-02",
        &[
            "keyring",
            "retire",
            OLD,
            "--keyring",
            "keyring.toml",
            "--rehearsal-copy",
        ],
    )
    .refused(1, &live);
    assert!(!v.path("k2.pem").exists());
    v.at(
        "2027-01-02",
        &["keygen", "-o", "k2.pem", "--valid-from", "2027-01-01"],
    )
    .refused(1, &live);
    assert!(!v.path("k2.pem").exists() && !v.path("k2.pem.pub").exists());
    assert_eq!(v.read("keyring.toml"), before, "the live keyring changed");
    // The old key still signs today.
    v.run(&["keyring", "list"]).ok();

    // A copy is where rehearsals go, and what they show: said to be one.
    std::fs::copy(v.path("keyring.toml"), v.path("rehearsal.toml")).unwrap();
    v.at(
        "2027-01-02",
        &["keyring", "retire", OLD, "--keyring", "rehearsal.toml"],
    )
    .refused(1, &["--rehearsal-copy"]);
    let copy = ["--keyring", "rehearsal.toml", "--rehearsal-copy"];
    v.at(
        "2027-01-02",
        &[&["keyring", "retire", OLD][..], &copy].concat(),
    )
    .ok();
    assert_eq!(v.read("keyring.toml"), before);
}

#[test]
fn a_rehearsal_time_never_changes_a_keyring_named_only_by_its_flag() {
    // An operator without a `keyring` setting names the production
    // keyring with --keyring on every command, as the rotation runbook
    // does: that keyring is as live as a configured one.
    let v = Vendor::new();
    let new = v.scheduled_rotation();
    std::fs::write(
        v.path("tessera.toml"),
        "ledger = \"ledger.db\"\nkey = \"signing.pem\"\n",
    )
    .unwrap();
    let before = v.read("keyring.toml");
    let flag = ["--keyring", "keyring.toml"];
    let refused = [
        "keyring.toml: this command changes the keyring",
        "--rehearsal-copy",
    ];
    v.at(
        "2027-01-02",
        &[&["keyring", "retire", OLD][..], &flag].concat(),
    )
    .refused(1, &refused);
    v.at(
        "2027-01-02",
        &[&["keyring", "activate", &new][..], &flag].concat(),
    )
    .refused(1, &refused);
    v.at(
        "2027-01-02",
        &[
            &["keyring", "add", "--public", "signing.pem.pub"][..],
            &flag,
        ]
        .concat(),
    )
    .refused(1, &refused);
    v.at(
        "2027-01-02",
        &[&["keygen", "-o", "k2.pem"][..], &flag].concat(),
    )
    .refused(1, &refused);
    assert!(!v.path("k2.pem").exists() && !v.path("k2.pem.pub").exists());
    assert_eq!(v.read("keyring.toml"), before, "the live keyring changed");
    // Without a rehearsal time the same commands work.
    v.run(
        &[
            &["keyring", "activate", &new, "--at", "2027-01-01"][..],
            &flag,
        ]
        .concat(),
    )
    .ok();
}

#[test]
fn keyring_list_says_when_the_active_key_cannot_sign_now() {
    let v = Vendor::new();
    let new = v.scheduled_rotation();
    std::fs::copy(v.path("keyring.toml"), v.path("rehearsal.toml")).unwrap();
    let copy = ["--keyring", "rehearsal.toml"];
    let rehearse = ["--keyring", "rehearsal.toml", "--rehearsal-copy"];
    // Settled on the copy at a rehearsal time, the new key is active
    // there, but not valid yet at the clock's time.
    v.at(
        "2027-01-02",
        &[&["keyring", "retire", OLD][..], &rehearse].concat(),
    )
    .ok();
    let list = v.run(&[&["keyring", "list"][..], &copy].concat());
    list.ok();
    assert!(
        list.stdout
            .contains(&format!("warning: the active key {new} is not valid at")),
        "{}",
        list.stdout
    );
    let json = v.run(&[&["keyring", "list", "--json"][..], &copy].concat());
    let keys: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let active = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["active"] == true)
        .unwrap();
    assert_eq!(active["valid_now"], false);
    // The live keyring's active key signs now: no warning.
    let live = v.run(&["keyring", "list"]);
    assert!(!live.stdout.contains("warning"), "{}", live.stdout);
}

#[test]
fn keygen_with_a_broken_keyring_writes_no_key() {
    let v = Vendor::new();
    std::fs::write(v.path("bad.toml"), "garbage = [\n").unwrap();
    v.run(&["keygen", "-o", "k2.pem", "--keyring", "bad.toml"])
        .refused(1, &["bad.toml"]);
    assert!(!v.path("k2.pem").exists(), "k2.pem left behind");
    assert!(!v.path("k2.pem.pub").exists(), "k2.pem.pub left behind");
    // Once the keyring is fixed, the same command works.
    std::fs::remove_file(v.path("bad.toml")).unwrap();
    v.run(&["keygen", "-o", "k2.pem", "--keyring", "bad.toml"])
        .ok();
    assert!(v.path("k2.pem").exists());
}

/// `tessera pbx add` of Acme's appliance HW-7F3A-0042 (the fixture
/// request's), typed as an operator might.
fn add_acme_box(v: &Vendor) {
    v.at(
        T0,
        &[
            "pbx",
            "add",
            "--customer",
            "Acme GmbH",
            "--name",
            "Acme branch",
            "--model",
            "TA-7000",
            "--platform",
            "hw",
            "--cycle",
            "yearly",
            "--profile",
            "PBX-BASIC=10",
            "--hw-serial",
            " hw-7f3a-0042",
        ],
    )
    .ok();
}

#[test]
fn a_registered_pbx_is_licensed_with_its_registered_order_only() {
    let v = Vendor::new();
    add_acme_box(&v);
    // Another customer's order on Acme's box: refused, nothing recorded.
    let other = ["issue", "--order", "order.toml", "--request", "device.req"];
    v.at(T0, &[&other[..], &["-o", "box.lic"]].concat())
        .refused(
            2,
            &[
                "SW-2026-000001 is registered",
                "customer: the order says 'Example Dental Clinic', the registry 'Acme GmbH'",
                "pbx_name: the order says 'Main office', the registry 'Acme branch'",
                "the registry 'PBX-BASIC=10'",
                "tessera pbx edit SW-2026-000001",
            ],
        );
    assert!(!v.path("box.lic").exists());
    let list = v.run(&["ledger", "list", "--json"]);
    assert_eq!(list.stdout.trim(), "[]", "{}", list.stdout);

    // The registered order (names matched without regard to case): issued,
    // and the summary says the HW serial was converted.
    std::fs::write(v.path("acme.toml"), ACME_ORDER).unwrap();
    let issued = v.at(
        T0,
        &[
            "issue",
            "--order",
            "acme.toml",
            "--request",
            "device.req",
            "-o",
            "box.lic",
        ],
    );
    issued.ok();
    assert!(
        issued
            .stderr
            .contains("converted   HW serial HW-7F3A-0042 -> SW serial SW-2026-000001"),
        "{}",
        issued.stderr
    );
}

#[test]
fn a_registered_vm_is_licensed_with_its_registered_order_only() {
    let v = Vendor::new();
    add_acme_box(&v);
    // SW-2026-000002, the serial the fixture VM request presents.
    v.at(
        T0,
        &[
            "pbx",
            "add",
            "--customer",
            "Acme GmbH",
            "--name",
            "Failover",
            "--model",
            "TA-VM",
            "--platform",
            "vm",
            "--cycle",
            "monthly",
            "--profile",
            "PBX-BASIC=5",
        ],
    )
    .ok();
    v.at(
        T0,
        &[
            "issue",
            "--order",
            "order-vm.toml",
            "--request",
            "vm.req",
            "-o",
            "vm.lic",
        ],
    )
    .refused(
        2,
        &[
            "customer: the order says 'Example Dental Clinic', the registry 'Acme GmbH'",
            "cycle: the order says 'yearly', the registry 'monthly'",
        ],
    );
    assert!(!v.path("vm.lic").exists());
}

#[test]
fn an_output_into_a_missing_folder_is_written_there_and_never_after_recording() {
    let v = Vendor::new();
    let issue = [
        "issue",
        "--order",
        "order.toml",
        "--request",
        "device.req",
        "-o",
    ];
    // A file where the folder should be: refused before anything is
    // recorded, naming the path given.
    v.at(T0, &[&issue[..], &["order.toml/box.lic"]].concat())
        .refused(1, &["order.toml/box.lic"]);
    let list = v.run(&["ledger", "list", "--json"]);
    assert_eq!(list.stdout.trim(), "[]", "{}", list.stdout);
    // A folder that does not exist yet is created.
    v.at(T0, &[&issue[..], &["missing/box.lic"]].concat()).ok();
    assert!(v.path("missing/box.lic").is_file());
    let shown = v.run(&["ledger", "show", "SW-2026-000001", "--json"]);
    let id = shown
        .stdout
        .split("\"license_id\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    v.at(
        T0,
        &[
            "void",
            "--license",
            &id,
            "--reason",
            "wrong order",
            "-o",
            "nodir/void.lic",
        ],
    )
    .ok();
    assert!(v.path("nodir/void.lic").is_file());
    v.run(&["ledger", "head", "-o", "heads/head.txt"]).ok();
    assert!(v.path("heads/head.txt").is_file());
    v.run(&[
        "keyring",
        "export",
        "--format",
        "c",
        "-o",
        "fw/tessera_keyring.h",
    ])
    .ok();
    assert!(v.path("fw/tessera_keyring.h").is_file());
}

#[test]
fn pbx_add_run_twice_registers_one_pbx() {
    let v = Vendor::new();
    let add = [
        "pbx",
        "add",
        "--customer",
        "Acme GmbH",
        "--name",
        "Acme HQ",
        "--model",
        "VM-500",
        "--platform",
        "vm",
        "--cycle",
        "yearly",
        "--profile",
        "PBX-BASIC=10",
    ];
    let first = v.run(&add);
    first.ok();
    assert_eq!(first.stdout.trim(), "SW-2026-000001");
    // The retry after a lost output: refused, naming the serial it got.
    v.run(&add)
        .refused(2, &["registered already as SW-2026-000001", "--again"]);
    let list = v.run(&["pbx", "list", "--json"]);
    assert_eq!(
        list.stdout.matches("\"serial\"").count(),
        1,
        "{}",
        list.stdout
    );
    // A second PBX of that name is meant: --again says so.
    let second = v.run(&[&add[..], &["--again"]].concat());
    second.ok();
    assert_eq!(second.stdout.trim(), "SW-2026-000002");
    // Another platform is another PBX.
    let mut cloud = add;
    cloud[9] = "cloud";
    v.run(&cloud).ok();
}

#[test]
fn pbx_show_and_list_give_the_counts_of_the_license_in_force() {
    let v = Vendor::new();
    add_acme_box(&v);
    // Entered, not licensed yet: the counts are the entry's, said so.
    v.run(&["pbx", "show", "SW-2026-000001"]).ok();
    let shown = v.run(&["pbx", "show", "SW-2026-000001"]);
    assert!(
        shown
            .stdout
            .contains("profile     PBX-BASIC = 10 (as entered: no license in force)"),
        "{}",
        shown.stdout
    );
    std::fs::write(v.path("acme.toml"), ACME_ORDER).unwrap();
    v.at(
        T0,
        &[
            "issue",
            "--order",
            "acme.toml",
            "--request",
            "device.req",
            "-o",
            "box.lic",
        ],
    )
    .ok();
    // More users, then fewer (approved): the counts in force are 12.
    let more = ACME_ORDER.replace("pbx-basic = 10", "pbx-basic = 16");
    std::fs::write(v.path("more.toml"), more).unwrap();
    let fewer = ACME_ORDER.replace("pbx-basic = 10", "pbx-basic = 12");
    std::fs::write(v.path("fewer.toml"), fewer).unwrap();
    let modify = ["modify", "--serial", "SW-2026-000001", "--order"];
    v.at(
        "2026-01-03T09:00:00Z",
        &[&modify[..], &["more.toml", "-o", "more.lic"]].concat(),
    )
    .ok();
    v.at(
        "2026-01-04T09:00:00Z",
        &[
            &modify[..],
            &["fewer.toml", "--approval", "APP-1", "-o", "fewer.lic"],
        ]
        .concat(),
    )
    .ok();

    let shown = v.run(&["pbx", "show", "SW-2026-000001"]);
    shown.ok();
    assert!(
        shown.stdout.contains("  profile     PBX-BASIC = 12\n"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("  entered     PBX-BASIC = 10 (as entered; license 3 in force"),
        "{}",
        shown.stdout
    );
    let json: serde_json::Value =
        serde_json::from_str(&v.run(&["pbx", "show", "SW-2026-000001", "--json"]).stdout).unwrap();
    assert_eq!(json["pbx"]["profiles"]["PBX-BASIC"], 12, "{json}");
    assert_eq!(json["pbx"]["license_sequence"], 3, "{json}");
    assert_eq!(json["pbx"]["entered_profiles"]["PBX-BASIC"], 10, "{json}");

    let csv = v.run(&["pbx", "list", "--csv"]);
    csv.ok();
    let mut lines = csv.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("profiles"), "PBX-BASIC=12", "{}", csv.stdout);
    assert_eq!(col("license_sequence"), "3", "{}", csv.stdout);
    assert_eq!(col("entered_profiles"), "PBX-BASIC=10", "{}", csv.stdout);
    let listed: serde_json::Value =
        serde_json::from_str(&v.run(&["pbx", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["profiles"]["PBX-BASIC"], 12, "{listed}");
}

#[test]
fn the_rehearsal_warning_appears_only_where_the_time_counts() {
    let v = Vendor::new();
    let warning = "warning: rehearsal time 2026-01-02T09:00:00Z is in effect";
    // Nothing of these depends on the time: no warning.
    for args in [
        &["config"][..],
        &["catalog", "show", "--summary"],
        &["ledger", "verify"],
        &["ledger", "export", "--csv"],
        &["keyring", "export", "--format", "c"],
    ] {
        let r = v.at(T0, args);
        r.ok();
        assert!(!r.stderr.contains(warning), "{args:?}: {}", r.stderr);
    }
    // What is shown is as of the rehearsal time: said so.
    for args in [
        &["pbx", "list"][..],
        &["ledger", "list"],
        &["report", "overdue"],
    ] {
        let r = v.at(T0, args);
        r.ok();
        assert!(r.stderr.contains(warning), "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("nothing is written"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // What is written is dated then: said so.
    let issued = v.at(
        T0,
        &[
            "issue",
            "--order",
            "order.toml",
            "--request",
            "device.req",
            "-o",
            "box.lic",
        ],
    );
    issued.ok();
    assert!(
        issued.stderr.contains(&format!(
            "{warning} (--now or TESSERA_NOW), not the clock: the licenses issued are dated then"
        )),
        "{}",
        issued.stderr
    );
    let inspected = v.at(T0, &["inspect", "box.lic"]);
    inspected.ok();
    assert!(!inspected.stderr.contains(warning), "{}", inspected.stderr);
    let verified = v.at(T0, &["verify", "box.lic", "--keyring", "keyring.toml"]);
    assert!(
        verified
            .stderr
            .contains("the license is checked as firmware would check it at that time"),
        "{}",
        verified.stderr
    );
    // --at decides the time of a verification, not --now: no warning.
    let at = v.at(
        T0,
        &["verify", "box.lic", "--keyring", "keyring.toml", "--at", T0],
    );
    assert!(!at.stderr.contains(warning), "{}", at.stderr);
}

#[test]
fn a_ledger_path_that_is_no_file_is_a_usage_error_naming_its_setting() {
    let v = Vendor::new();
    std::fs::create_dir(v.path("ledgers")).unwrap();
    // A directory is a wrong path (exit 1), not a damaged ledger (exit 4).
    v.run(&["--ledger", "ledgers", "pbx", "list"]).refused(
        1,
        &[
            "ledgers (named by --ledger) is a directory, not a ledger file",
            "ledgers/ledger.db",
        ],
    );
    v.run(&["--ledger", "/dev/null", "ledger", "list"])
        .refused(1, &["/dev/null (named by --ledger) is a character device"]);
    // Writers and `ledger init` say the same.
    v.at(
        T0,
        &[
            "--ledger",
            "ledgers",
            "issue",
            "--order",
            "order.toml",
            "--request",
            "device.req",
        ],
    )
    .refused(1, &["is a directory, not a ledger file"]);
    v.run(&["--ledger", "ledgers", "ledger", "init"])
        .refused(1, &["ledgers (named by --ledger) is a directory"]);
    let r = Run::of(
        &v.command()
            .env("TESSERA_LEDGER", "ledgers")
            .args(["ledger", "verify"])
            .output()
            .unwrap(),
    );
    r.refused(1, &["ledgers (named by $TESSERA_LEDGER) is a directory"]);
}

#[test]
fn a_missing_ledger_names_the_setting_that_named_it() {
    let v = Vendor::new();
    v.run(&["--ledger", "other.db", "pbx", "list"]).refused(
        1,
        &[
            "no ledger at other.db (named by --ledger)",
            "tessera ledger init",
        ],
    );
    let env = Run::of(
        &v.command()
            .env("TESSERA_LEDGER", "env.db")
            .args(["ledger", "list"])
            .output()
            .unwrap(),
    );
    env.refused(1, &["no ledger at env.db (named by $TESSERA_LEDGER)"]);
    // The configuration file's key, with the path `tessera config` shows.
    std::fs::remove_file(v.path("ledger.db")).unwrap();
    let config = v.run(&["config", "--json"]);
    assert!(config.stdout.contains("tessera.toml"), "{}", config.stdout);
    v.run(&["pbx", "list"]).refused(
        1,
        &[
            "ledger.db (named by `ledger` in tessera.toml)",
            "create one there with `tessera ledger init`",
        ],
    );
}

/// README's online-service quick start made no keyring; the operator
/// added the signing key to a new one after licenses were issued. The
/// key's window starts at the first license or checkpoint it signed, so
/// those licenses stay valid at the sites and the ledger verifies; a
/// later --valid-from is warned about; adding it again is refused naming
/// how to change its window.
#[test]
fn keyring_add_starts_at_the_first_license_the_key_signed() {
    let v = Vendor::new();
    std::fs::copy(
        Path::new(FIXTURES).join("signing.pem.pub"),
        v.path("signing.pem.pub"),
    )
    .unwrap();
    std::fs::write(
        v.path("tessera.toml"),
        "ledger = \"ledger.db\"\nkey = \"signing.pem\"\n",
    )
    .unwrap();
    v.at(
        T0,
        &[
            "issue",
            "--order",
            "order.toml",
            "--request",
            "device.req",
            "-o",
            "device.lic",
        ],
    )
    .ok();
    let added = v.run(&[
        "keyring",
        "add",
        "--keyring",
        "new.toml",
        "--public",
        "signing.pem.pub",
        "--activate",
    ]);
    added.ok();
    assert!(
        added.stderr.contains(&format!("key {OLD} valid from {T0}")),
        "{}",
        added.stderr
    );
    assert!(v.read("new.toml").contains(&format!("valid_from = {T0}")));
    v.run(&["ledger", "verify", "--keyring", "new.toml"]).ok();

    // Again: refused, naming how to change the window.
    v.run(&[
        "keyring",
        "add",
        "--keyring",
        "new.toml",
        "--public",
        "signing.pem.pub",
        "--valid-from",
        "2026-01-01",
    ])
    .refused(
        1,
        &[
            "already in the keyring (valid from 2026-01-02T09:00:00Z)",
            "edit its `valid_from`",
        ],
    );

    // A --valid-from after the first signature is kept, with a warning
    // naming the time to use.
    let late = v.run(&[
        "keyring",
        "add",
        "--keyring",
        "late.toml",
        "--public",
        "signing.pem.pub",
        "--valid-from",
        "2026-06-01",
    ]);
    late.ok();
    assert!(
        late.stderr.contains("warning:") && late.stderr.contains(T0),
        "{}",
        late.stderr
    );
    assert!(v
        .read("late.toml")
        .contains("valid_from = 2026-06-01T00:00:00Z"));
    v.run(&["ledger", "verify", "--keyring", "late.toml"])
        .refused(4, &["not valid"]);
}

/// The process's umask, from /proc (reading it with umask(2) would
/// change it for the other tests' threads meanwhile).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).unwrap()
}

/// `keyring export -o tessera_keyring.h` (public keys for firmware) is
/// readable by all (0644 less the umask); a license, customers' data,
/// stays owner-only.
#[test]
fn a_keyring_export_is_public_a_license_is_not() {
    use std::os::unix::fs::PermissionsExt as _;
    let v = Vendor::new();
    let mode = |name: &str| {
        std::fs::metadata(v.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for (format, file) in [
        ("c", "tessera_keyring.h"),
        ("rust", "keyring.rs"),
        ("cbor", "keyring.cbor"),
    ] {
        v.run(&["keyring", "export", "--format", format, "-o", file])
            .ok();
        assert_eq!(mode(file), 0o644 & !umask(), "{file}");
    }
    v.at(
        T0,
        &[
            "issue",
            "--order",
            "order.toml",
            "--request",
            "device.req",
            "-o",
            "device.lic",
        ],
    )
    .ok();
    assert_eq!(mode("device.lic"), 0o600);
}
