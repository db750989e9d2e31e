//! # tessera-cli
//!
//! What `tessera` and `tessera-agent` share at their edge, so both behave
//! alike (the conventions of rage, ripgrep and cargo):
//!
//! - [`stdout`]: standard output that never panics. A pipe whose reader is
//!   gone (`| head -1`) ends the output quietly; any other failure (a full
//!   disk) is returned once and remembered ([`stdout_failure`]), so the
//!   binary exits with its documented output-failure code, never 101.
//! - [`json_error`]: the one JSON shape of an error under `--json`.
//! - [`wants_json`]: whether a command line asked for JSON, for errors
//!   found before its options are parsed.
//! - [`man_page`], [`write_man_pages`], [`completions`]: the generated
//!   documentation of a `clap` command line.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;

/// How standard output has fared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// The reader went away: say no more.
    Closed,
    /// A write failed (a full disk, an I/O error); the error's text.
    Failed(String),
}

static STDOUT: Mutex<State> = Mutex::new(State::Open);

/// Writes `bytes` to standard output and flushes them.
///
/// A closed pipe (`EPIPE`) is no error: it and every later write are
/// dropped quietly, as a reader that stopped reading wants. After any
/// other failure nothing more is written either.
///
/// # Errors
/// The write's error, for any failure but a closed pipe, the first time
/// it happens (later calls return `Ok` and write nothing).
pub fn stdout(bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let mut state = STDOUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *state != State::Open {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            *state = State::Closed;
            Ok(())
        }
        Err(e) => {
            *state = State::Failed(e.to_string());
            Err(e)
        }
    }
}

/// Whether the reader of standard output went away (nothing more is
/// written).
#[must_use]
pub fn stdout_closed() -> bool {
    matches!(
        *STDOUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        State::Closed
    )
}

/// The error of a failed write to standard output, if one failed (a
/// closed pipe is no failure).
#[must_use]
pub fn stdout_failure() -> Option<String> {
    match &*STDOUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        State::Failed(e) => Some(e.clone()),
        State::Open | State::Closed => None,
    }
}

/// Writes `text` to standard error as far as it goes: there is nowhere
/// else to report a failure there.
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// The JSON text (pretty, one object, ending in a newline) of an error
/// under `--json`, the same in both binaries:
///
/// ```json
/// {
///   "error": { "code": "not_activated", "message": "..." },
///   "exit_code": 2
/// }
/// ```
///
/// `code` is a stable snake_case name for scripts; `message` is the text
/// printed on standard error, which says what to do.
#[must_use]
pub fn json_error(code: &str, message: &str, exit_code: u8) -> String {
    let value = serde_json::json!({
        "error": { "code": code, "message": message },
        "exit_code": exit_code,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Whether `args` (the program name first) ask for `--json` before the
/// end of options (`--`): for errors found while the command line itself
/// is parsed.
#[must_use]
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a.as_os_str() == "--json")
}

/// Gives every subcommand of `cmd` (recursively) its own copy of the
/// global options named `ids`, shown in its help (under `heading`) when
/// `shown(path, id)` says so and hidden otherwise; `path` is the
/// subcommand's path below `cmd` (`ledger verify`). Clap copies global
/// options down unchanged; copies made before it does are kept, so each
/// command's help lists only the global options that command uses, and
/// the values still reach the top level as for any global option.
#[must_use]
pub fn scope_globals(
    cmd: clap::Command,
    ids: &[&str],
    heading: Option<&'static str>,
    shown: &dyn Fn(&str, &str) -> bool,
) -> clap::Command {
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set() && ids.contains(&a.get_id().as_str()))
        .cloned()
        .collect();
    for_each_command(cmd, &|mut cmd, path| {
        if path.is_empty() {
            return cmd;
        }
        for arg in &globals {
            let mut copy = arg.clone().hide(!shown(path, arg.get_id().as_str()));
            if let Some(h) = heading {
                copy = copy.help_heading(h);
            }
            cmd = cmd.arg(copy);
        }
        cmd
    })
}

/// Applies `f` to `cmd` and every subcommand below it, with its path
/// (`""` for `cmd` itself, else `ledger verify`).
#[must_use]
pub fn for_each_command(
    cmd: clap::Command,
    f: &dyn Fn(clap::Command, &str) -> clap::Command,
) -> clap::Command {
    each_below(cmd, "", f)
}

fn each_below(
    cmd: clap::Command,
    path: &str,
    f: &dyn Fn(clap::Command, &str) -> clap::Command,
) -> clap::Command {
    let mut cmd = f(cmd, path);
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| each_below(s, &sub_path, f));
    }
    cmd
}

/// The path of the command `matches` chose below the top (`ledger
/// verify`), and its own matches.
#[must_use]
pub fn chosen(matches: &clap::ArgMatches) -> (String, &clap::ArgMatches) {
    let mut path = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_owned());
        m = sub;
    }
    (path.join(" "), m)
}

/// The man page of `cmd` (roff).
///
/// # Errors
/// An I/O error of the renderer.
pub fn man_page(cmd: clap::Command) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    Ok(buf)
}

/// Writes `NAME.1` and one page per subcommand (`NAME-SUB.1`) into `dir`,
/// creating it.
///
/// # Errors
/// An I/O error creating the folder or a page.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)
}

/// The completion script of `cmd` for `shell`.
#[must_use]
pub fn completions(mut cmd: clap::Command, shell: clap_complete::Shell) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    buf
}

#[cfg(test)]
mod tests;
