//! The runbooks of `docs/operations.md` and `README.md`, run verbatim.
//!
//! A runbook is marked in the document by a line
//!
//! ```text
//! <!-- runbook: NAME -->
//! <!-- runbook: NAME after SETUP, OTHER -->
//! ```
//!
//! and is every fenced ` ```sh ` block that follows the line, up to the next
//! such line or the next heading (of any level). Its blocks run in order
//! as one `bash` script (`set -euo pipefail`), after the blocks of the
//! runbooks it names with `after` (in that order, in the same shell; a
//! runbook named there has no `after` of its own: name every one), in a
//! fresh temporary folder. A command that fails fails the test, naming the
//! runbook and the line of its marker.
//!
//! What the harness provides, and the runbooks' text says:
//! - the built `tessera` and `tessera-agent` first on `PATH`;
//! - `TESSERA_PASSPHRASE` (the vendor key's passphrase; the real ones come
//!   from a prompt, a file or the environment, never from a document);
//! - `TESSERA_STATE_DIR`: the state folder of a simulated appliance (HW
//!   serial `HW-7F3A-0042`, DMI, NIC, disk and machine id under a fake
//!   root), whose `agent.toml` points `sysroot` at that root;
//! - `SPARE_STATE_DIR`: a second appliance of the same model (HW serial
//!   `HW-7F3A-0043`), for an RMA; `VM_STATE_DIR`: a virtual machine (QEMU,
//!   no SW serial set yet), for a migration; each used as
//!   `TESSERA_STATE_DIR="$SPARE_STATE_DIR" tessera-agent ...`;
//! - `HOME` and `XDG_CONFIG_HOME` in the temporary folder, and none of the
//!   other `TESSERA_*` variables of the machine running the tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{bins, Site};

/// The documents whose runbooks run, the operations manual first.
const DOCUMENTS: [(&str, &str); 2] = [
    (
        "docs/operations.md",
        include_str!("../../docs/operations.md"),
    ),
    ("README.md", include_str!("../../README.md")),
];

/// The passphrase of the vendor keys the runbooks make.
const PASSPHRASE: &str = "runbook passphrase, for tests only";

/// One runbook of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Runbook {
    /// Its name.
    name: String,
    /// The runbooks whose blocks run first.
    after: Vec<String>,
    /// Its `sh` blocks, in order.
    blocks: Vec<String>,
    /// The line of its marker (1-based).
    line: usize,
    /// The document it is in.
    document: &'static str,
}

/// The marker's name and `after` list, if `line` is a marker.
fn marker(line: &str) -> Option<(String, Vec<String>)> {
    let inner = line
        .trim()
        .strip_prefix("<!-- runbook:")?
        .strip_suffix("-->")?
        .trim();
    let (name, after) = match inner.split_once(" after ") {
        Some((name, after)) => (
            name.trim(),
            after
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
        ),
        None => (inner, Vec::new()),
    };
    Some((name.to_owned(), after))
}

/// Every runbook of `markdown`, in document order.
fn runbooks(document: &'static str, markdown: &str) -> Vec<Runbook> {
    let mut found: Vec<Runbook> = Vec::new();
    // Whether `sh` blocks now belong to the last runbook found.
    let mut open = false;
    // The fenced block being read, and whether it is kept.
    let mut block: Option<(String, bool)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if let Some((text, keep)) = block.as_mut() {
            if fence {
                if *keep {
                    if let Some(r) = found.last_mut() {
                        r.blocks.push(core::mem::take(text));
                    }
                }
                block = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if let Some((name, after)) = marker(line) {
            found.push(Runbook {
                name,
                after,
                blocks: Vec::new(),
                line: i + 1,
                document,
            });
            open = true;
        } else if line.starts_with('#') {
            open = false;
        } else if fence {
            let lang = line.trim_start().trim_start_matches('`').trim();
            block = Some((String::new(), open && lang == "sh"));
        }
    }
    found
}

/// The script of `runbook`: the runbooks it comes after, then its own
/// blocks.
fn script(all: &[Runbook], runbook: &Runbook) -> String {
    let mut text = String::from("set -euo pipefail\n");
    for name in &runbook.after {
        let first = all.iter().find(|r| &r.name == name).unwrap_or_else(|| {
            panic!(
                "runbook {} comes after {name}, which does not exist",
                runbook.name
            )
        });
        assert!(
            first.after.is_empty(),
            "runbook {} comes after {name}, which comes after others itself: name them all",
            runbook.name
        );
        text.push_str(&format!("# --- runbook {name}\n"));
        for b in &first.blocks {
            text.push_str(b);
        }
    }
    text.push_str(&format!("# --- runbook {}\n", runbook.name));
    for b in &runbook.blocks {
        text.push_str(b);
    }
    text
}

/// Runs `runbook` in a fresh folder; panics with its output when a
/// command fails.
fn run(all: &[Runbook], runbook: &Runbook) {
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(home.join(".config")).unwrap();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let spare = Site::appliance("HW-7F3A-0043", 2);
    let vm = Site::vm("SW-2026-000001", 3);
    for s in [&site, &spare, &vm] {
        s.config(&format!("sysroot = {:?}\n", s.root().to_str().unwrap()));
    }
    let bin_dir = bins().tessera.parent().unwrap().to_path_buf();
    let path = std::env::join_paths(core::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script(all, runbook))
        .current_dir(work.path())
        .env("PATH", path)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("TESSERA_PASSPHRASE", PASSPHRASE)
        .env("TESSERA_STATE_DIR", site.state())
        .env("SPARE_STATE_DIR", spare.state())
        .env("VM_STATE_DIR", vm.state());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let provided = matches!(
            name.as_str(),
            "TESSERA_PASSPHRASE" | "TESSERA_STATE_DIR" | "TESSERA_E2E_BIN_DIR"
        );
        if name.starts_with("TESSERA_") && !provided {
            cmd.env_remove(&name);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "runbook {} ({} line {}) failed with {}\n--- script\n{}\n--- stdout\n{}\n--- stderr\n{}",
        runbook.name,
        runbook.document,
        runbook.line,
        out.status,
        script(all, runbook),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Every runbook of the documents.
fn all_runbooks() -> Vec<Runbook> {
    DOCUMENTS
        .iter()
        .flat_map(|(name, text)| runbooks(name, text))
        .collect()
}

/// The runbook `name`, run.
fn run_named(name: &str) {
    let all = all_runbooks();
    let r = all
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no runbook {name} in {DOCUMENTS:?}"));
    assert!(!r.blocks.is_empty(), "runbook {name} has no sh block");
    run(&all, r);
}

#[test]
fn setup_runbook_runs_verbatim() {
    run_named("setup");
}

#[test]
fn activation_runbook_runs_verbatim() {
    run_named("activation");
}

#[test]
fn activation_by_qr_code_runbook_runs_verbatim() {
    run_named("activation-qr");
}

#[test]
fn readme_first_license_runs_verbatim() {
    run_named("readme-first-license");
}

/// Every runbook in the documents runs (those other sections add too),
/// each once.
#[test]
fn every_marked_runbook_runs() {
    let all = all_runbooks();
    let mut names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a runbook name is used twice");
    for r in &all {
        assert!(
            !r.blocks.is_empty(),
            "runbook {} (line {}) has no sh block",
            r.name,
            r.line
        );
        if !matches!(
            r.name.as_str(),
            "setup" | "activation" | "activation-qr" | "readme-first-license"
        ) {
            run(&all, r);
        }
    }
}

/// The machines the harness simulates are distinct devices: an RMA or a
/// migration runbook gets its request from another box.
#[test]
fn the_spare_appliance_and_the_vm_are_other_devices() {
    let machines = Runbook {
        name: "machines".into(),
        after: Vec::new(),
        blocks: vec!["tessera-agent request -o a.txt\n\
             TESSERA_STATE_DIR=\"$SPARE_STATE_DIR\" tessera-agent request -o b.txt\n\
             echo 'sw_serial = \"SW-2026-000001\"' >> \"$VM_STATE_DIR/agent.toml\"\n\
             TESSERA_STATE_DIR=\"$VM_STATE_DIR\" tessera-agent request -o c.txt\n\
             ! cmp -s a.txt b.txt\n\
             ! cmp -s a.txt c.txt\n"
            .into()],
        line: 0,
        document: "this test",
    };
    run(core::slice::from_ref(&machines), &machines);
}

#[test]
fn the_marker_rules() {
    let doc = "\
# Title
<!-- runbook: one -->
```sh
echo a
```
text
```toml
not = \"run\"
```
```sh
echo b
```
## Next
```sh
echo never
```
<!-- runbook: two after one -->
```sh
echo c
```
";
    let all = runbooks("test", doc);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].name, "one");
    assert_eq!(all[0].blocks, ["echo a\n", "echo b\n"]);
    assert_eq!(all[0].line, 2);
    assert_eq!(all[1].after, ["one"]);
    assert_eq!(
        script(&all, &all[1]),
        "set -euo pipefail\n# --- runbook one\necho a\necho b\n# --- runbook two\necho c\n"
    );
    assert_eq!(
        marker("<!-- runbook: rma after setup, activation -->")
            .unwrap()
            .1,
        ["setup", "activation"]
    );
    assert!(marker("<!-- a comment -->").is_none());
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/operations.md")
        .is_file());
}
