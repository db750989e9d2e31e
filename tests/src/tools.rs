//! External tools tests run (openssl, zbarimg, softhsm2-util ...).

use std::path::PathBuf;
use std::process::{Command, Output};

/// Finds an external tool on `PATH`. When it is missing the test is skipped
/// with a printed reason naming `package` (what to install), except under
/// `CI=true`, where `.ci/run` must have installed it and the test fails.
///
/// # Panics
/// Under `CI=true` when the tool is missing.
#[must_use]
pub fn require_tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        skip_or_fail(&format!("`{name}` (Debian package {package})"));
    }
    found
}

/// Says that `what` is missing: a skip on a developer machine, a failure
/// under `CI=true`.
///
/// # Panics
/// Under `CI=true`.
pub fn skip_or_fail(what: &str) {
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{what} is missing, but CI=true requires it: install it in .ci/run"
    );
    eprintln!("SKIPPED: {what} is not installed; install it to run this test");
}

/// Runs a command that must succeed; returns its output.
///
/// # Panics
/// When the command cannot run or fails (with its standard error).
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
