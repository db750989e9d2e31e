//! Golden tests of `tessera-agent seats`: every command's output, text
//! and JSON, refusals included, compared with the transcripts checked in
//! under `tests/golden/seats/`. Seat UUIDs (random) are shown as
//! `<seat-N>` in order of appearance, the fixture's folders as `<STATE>`
//! and `<ROOT>`.
//!
//! After a deliberate change of the output, rewrite the transcripts with
//! `TESSERA_GOLDEN=overwrite cargo test -p tessera-device --test seats_cli`
//! and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::fmt::Write as _;
use std::path::PathBuf;

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

/// 2026-01-02: the day after activation.
const NOW: i64 = T0 + DAY;

struct Transcript {
    d: Device,
    text: String,
    uuids: Vec<String>,
}

fn is_uuid(w: &[u8]) -> bool {
    w.len() == 36
        && w.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit() && !b.is_ascii_uppercase(),
        })
}

impl Transcript {
    fn new() -> Self {
        let d = Device::appliance();
        let lic = d.licensed(1, T0, |_| {});
        d.cmd()
            .args(["install", "--now", &at(T0)])
            .arg(&lic)
            .assert()
            .success();
        Self {
            d,
            text: String::new(),
            uuids: Vec::new(),
        }
    }

    /// Replaces seat UUIDs with `<seat-N>` and the fixture's folders.
    fn redact(&mut self, s: &str) -> String {
        let s = s
            .replace(&self.d.state.path().display().to_string(), "<STATE>")
            .replace(&self.d.root.path().display().to_string(), "<ROOT>");
        let b = s.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) {
                let u = s[i..i + 36].to_owned();
                let n = match self.uuids.iter().position(|x| *x == u) {
                    Some(n) => n,
                    None => {
                        self.uuids.push(u);
                        self.uuids.len() - 1
                    }
                };
                let _ = write!(out, "<seat-{}>", n + 1);
                i += 36;
            } else {
                let ch = s[i..].chars().next().unwrap();
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }

    /// The full UUID of `<seat-N>`.
    fn uuid(&self, n: usize) -> String {
        self.uuids[n - 1].clone()
    }

    /// Runs `tessera-agent ARGS --now NOW` and records it.
    fn run(&mut self, args: &[&str]) -> std::process::Output {
        self.run_at(NOW, args)
    }

    fn run_at(&mut self, now: i64, args: &[&str]) -> std::process::Output {
        let out = self
            .d
            .cmd()
            .args(args)
            .args(["--now", &at(now)])
            .output()
            .unwrap();
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                // A shortened UUID is shown as the seat it names.
                let prefix = self
                    .uuids
                    .iter()
                    .position(|u| a.len() >= 8 && a.len() < 36 && u.starts_with(a));
                if let Some(n) = prefix {
                    format!("<seat-{}>[..{}]", n + 1, a.len())
                } else if a.contains(' ') || a.is_empty() {
                    format!("'{a}'")
                } else {
                    (*a).to_owned()
                }
            })
            .collect();
        let cmd = self.redact(&format!("$ tessera-agent {}\n", shown.join(" ")));
        let stdout = self.redact(&String::from_utf8(out.stdout.clone()).unwrap());
        let stderr = self.redact(&String::from_utf8(out.stderr.clone()).unwrap());
        self.text.push_str(&cmd);
        self.text.push_str(&stdout);
        // `--now` is not shown, nor the warning it gives.
        for line in stderr
            .lines()
            .filter(|l| !l.starts_with("tessera-agent: warning: simulated time"))
        {
            let _ = writeln!(self.text, "[stderr] {line}");
        }
        let _ = writeln!(self.text, "[exit {}]\n", out.status.code().unwrap_or(-1));
        out
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.text, "# {text}");
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.d.root.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn check(self, name: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/seats")
            .join(format!("{name}.txt"));
        if std::env::var("TESSERA_GOLDEN").as_deref() == Ok("overwrite") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &self.text).unwrap();
            return;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with TESSERA_GOLDEN=overwrite\n--- actual ---\n{}",
                path.display(),
                self.text
            )
        });
        if want != self.text {
            let first = want
                .lines()
                .zip(self.text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| want.lines().count().min(self.text.lines().count()));
            panic!(
                "{} differs from the output, first at line {}:\n  want: {:?}\n  got:  {:?}\n--- actual ---\n{}",
                path.display(),
                first + 1,
                want.lines().nth(first),
                self.text.lines().nth(first),
                self.text
            );
        }
    }
}

#[test]
fn golden_assign_list_summary_and_refusals() {
    let mut t = Transcript::new();
    t.note("The license: UC-BUSINESS x10 (and other profiles), Phone System x52 with call_recording x52, device_ip_phone x40, device_mobile_app x30, device_web_rtc x10, Call Group x3 with device_desktop_app x3.");
    t.run(&[
        "seats",
        "assign",
        "--user",
        "alice@example.com",
        "--extension",
        "1001",
        "--base",
        "Phone System",
        "--addon",
        "call_recording",
        "--addon",
        "device_ip_phone",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "bob@example.com",
        "--profile",
        "UC-BUSINESS",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "bob@example.com",
        "--extension",
        "1002",
        "--base",
        "4",
        "--addon",
        "5",
        "--json",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "support",
        "--extension",
        "2001",
        "--base",
        "call group",
        "--addon",
        "device_desktop_app",
    ]);
    t.note("Refusals: an add-on the license does not list for the base, add-ons on a profile, a second seat of one license, a number in use, unknown names.");
    t.run(&[
        "seats",
        "assign",
        "--user",
        "carol",
        "--extension",
        "1003",
        "--base",
        "Phone System",
        "--addon",
        "device_desktop_app",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "carol",
        "--profile",
        "UC-PREMIUM",
        "--addon",
        "call_recording",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "bob@example.com",
        "--profile",
        "UC-BUSINESS",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "bob@example.com",
        "--profile",
        "PBX-BASIC",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "carol",
        "--extension",
        "1001",
        "--base",
        "Phone System",
    ]);
    t.run(&["seats", "assign", "--user", "carol", "--profile", "UC-GOLD"]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "carol",
        "--extension",
        "10O1",
        "--base",
        "Phone System",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "carol",
        "--base",
        "Phone System",
        "--addon",
        "recording",
        "--json",
    ]);
    t.note("Counts: Call Group has 3; the fourth is refused with the counts.");
    t.run(&[
        "seats",
        "assign",
        "--user",
        "sales",
        "--extension",
        "2002",
        "--base",
        "Call Group",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "billing",
        "--extension",
        "2003",
        "--base",
        "Call Group",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "legal",
        "--extension",
        "2004",
        "--base",
        "Call Group",
    ]);
    t.run(&[
        "seats",
        "assign",
        "--user",
        "legal",
        "--extension",
        "2004",
        "--base",
        "Call Group",
        "--json",
    ]);
    t.note("Search by license, by user, by extension (Phone System only), by add-on.");
    t.run(&["seats", "list"]);
    t.run(&["seats", "list", "--user", "bob@example.com"]);
    t.run(&["seats", "list", "--extension", "1001", "--json"]);
    t.run(&["seats", "list", "--extension", "2001"]);
    t.run(&[
        "seats",
        "list",
        "--extension",
        "2001",
        "--base",
        "Call Group",
    ]);
    t.run(&["seats", "list", "--base", "Call Group"]);
    t.run(&["seats", "list", "--addon", "call_recording"]);
    t.run(&["seats", "summary"]);
    t.note("Add-ons, reassign, unassign (the seat is kept), terminate (the seat is gone).");
    let alice = t.uuid(1);
    t.run(&[
        "seats",
        "addons",
        &alice,
        "--add",
        "device_web_rtc",
        "--remove",
        "device_ip_phone",
    ]);
    t.run(&["seats", "addons", &alice, "--add", "device_desktop_app"]);
    t.run(&["seats", "reassign", &alice[..8], "--user", "carol"]);
    t.run(&["seats", "unassign", &alice]);
    t.run(&["seats", "unassign", &alice]);
    t.run(&["seats", "list", "--unassigned"]);
    t.run(&["seats", "reassign", &alice, "--user", "dave", "--json"]);
    t.run(&["seats", "unassign", "--user", "bob@example.com"]);
    let bob_profile = t.uuid(2);
    t.run(&["seats", "terminate", &bob_profile]);
    t.run(&["seats", "terminate", &bob_profile]);
    t.run(&["seats", "summary", "--json"]);
    t.check("assign");
}

#[test]
fn golden_import_and_export() {
    let mut t = Transcript::new();
    let good = t.file(
        "mass.csv",
        "extension_key,number,user,addon_1,addon_2\n\
         Phone System,1001,alice@example.com,call_recording,device_ip_phone\n\
         Phone System,1002,\"Smith, Anna\",device_ip_phone,\n\
         Call Group,2001,support,device_desktop_app,\n\
         profile:UC-BUSINESS,,bob@example.com,,\n",
    );
    let good = good.display().to_string();
    t.run(&["seats", "import", &good]);
    t.note("The same file again changes nothing.");
    t.run(&["seats", "import", &good, "--json"]);
    t.run(&["seats", "export"]);
    let bad = t.file(
        "bad.csv",
        "extension_key,number,user,addon_1\n\
         Phone System,1003,carol,call_recording\n\
         Phone System,1001,dave,\n\
         Call Group,2002,sales,call_recording\n\
         Fax,3001,erin,\n\
         profile:UC-BUSINESS,,bob@example.com,\n\
         profile:PBX-SERVICE,,frank,\n\
         Phone System,1004,,\n",
    );
    let bad = bad.display().to_string();
    t.note("One bad row and nothing is imported: every bad row is named with its line.");
    t.run(&["seats", "import", &bad]);
    t.run(&["seats", "import", &bad, "--json"]);
    t.run(&["seats", "list"]);
    let header = t.file("header.csv", "user,number\nalice,1001\n");
    t.run(&["seats", "import", &header.display().to_string()]);
    let change = t.file(
        "change.csv",
        "Extension Key,Number,User,Add-on 1\n\
         Phone System,1005,alice@example.com,device_mobile_app\n\
         Phone System,1006,carol,\n",
    );
    let change = change.display().to_string();
    t.run(&["seats", "import", &change, "--dry-run"]);
    t.run(&["seats", "list", "--base", "Phone System"]);
    t.run(&["seats", "import", &change]);
    t.run(&["seats", "list", "--base", "Phone System"]);
    let out = t.d.root.path().join("export.csv").display().to_string();
    t.run(&["seats", "export", "-o", &out]);
    t.run(&["seats", "export", "-o", &out]);
    t.check("import");
}
