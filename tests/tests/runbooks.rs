//! The runbooks of `docs/operations.md`, run as written: every fenced
//! ```` ```sh ```` block that follows a line `<!-- runbook: NAME -->` runs
//! with `bash -euo pipefail` in a fresh temporary folder, with the built
//! `tessera` and `tessera-agent` first on `PATH` and none of the
//! developer's tessera settings, and must exit 0. So the documented
//! commands and the command line cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

/// The marked runbooks of a Markdown text: (name, the block's line, script).
fn runbooks(markdown: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- runbook:")
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        let (start, fence) = lines.next().expect("a block after the runbook mark");
        assert_eq!(
            fence.trim(),
            "```sh",
            "the runbook mark `{}` on the line before {} must be followed by a ```sh block",
            name.trim(),
            start + 1
        );
        let mut script = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            script.push_str(l);
            script.push('\n');
        }
        out.push((name.trim().to_owned(), start + 1, script));
    }
    out
}

#[test]
fn the_runbook_marks_are_read() {
    let md = "text\n<!-- runbook: one -->\n```sh\necho 1\necho 2\n```\n```sh\nnot marked\n```\n";
    assert_eq!(
        runbooks(md),
        vec![("one".to_owned(), 3, "echo 1\necho 2\n".to_owned())]
    );
}

#[test]
fn every_marked_runbook_runs_as_written() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = workspace.join("docs/operations.md");
    let markdown = std::fs::read_to_string(&doc).unwrap();
    let books = runbooks(&markdown);
    assert!(!books.is_empty(), "docs/operations.md marks no runbook");
    let bins = common::bins();
    let bin_dir = bins.tessera.parent().unwrap();
    assert_eq!(bins.agent.parent().unwrap(), bin_dir);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (name, line, script) in books {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join(".config"))
            .env_remove("TESSERA_NOW")
            .env_remove("TESSERA_LEDGER")
            .env_remove("TESSERA_CATALOG")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_KEY")
            .env_remove("TESSERA_KEYRING")
            .env_remove("TESSERA_OPERATOR")
            .env_remove("TESSERA_PASSPHRASE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "runbook `{name}` (docs/operations.md:{line}) failed ({}):\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
