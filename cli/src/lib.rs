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
//! - [`parse`]: clap's parser, but a mistyped command is reported as such
//!   even after an option that belongs after it (`--json instal`).
//! - [`usage_summary`]: a usage error in one line (with clap's tip), for
//!   the JSON error.
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

/// Parses `args` (the program name first) with `cmd`, as
/// [`clap::Command::try_get_matches_from`] does, but names a mistyped
/// command rather than an option before it.
///
/// Clap stops at the first argument it does not know at its place: in
/// `tool --json instal` that is `--json`, an option of some commands that
/// belongs after the command's name, and its error says nothing about
/// `instal`, which is no command at all. When the unknown option is one
/// that some command of `cmd` has, it (and its value, if it takes one) is
/// set aside and the rest parsed again: if that finds a mistyped command,
/// its error (`unrecognized subcommand 'instal'`, with clap's suggestion
/// `install`) is returned instead. Any other error is clap's own.
///
/// # Errors
/// Clap's error (also for `--help` and `--version`).
pub fn parse(cmd: &clap::Command, args: &[OsString]) -> Result<clap::ArgMatches, clap::Error> {
    let first = cmd.clone().try_get_matches_from(args);
    let Err(original) = first else {
        return first;
    };
    let mut later: Option<clap::Error> = None;
    let mut rest = args.to_vec();
    // Each round sets one argument aside, so the loop ends.
    for _ in 0..args.len() {
        let error = later.as_ref().unwrap_or(&original);
        if error.kind() != clap::error::ErrorKind::UnknownArgument {
            break;
        }
        let Some(clap::error::ContextValue::String(unknown)) =
            error.get(clap::error::ContextKind::InvalidArg)
        else {
            break;
        };
        let Some(takes_value) = known_option(cmd, unknown) else {
            break;
        };
        let Some(at) = rest
            .iter()
            .enumerate()
            .skip(1)
            .take_while(|(_, a)| a.as_os_str() != "--")
            .find(|(_, a)| a.to_str().is_some_and(|a| a == unknown))
            .map(|(i, _)| i)
        else {
            break;
        };
        let end = if takes_value { at + 2 } else { at + 1 };
        rest.drain(at..end.min(rest.len()));
        match cmd.clone().try_get_matches_from(&rest) {
            Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => return Err(e),
            Err(e) => later = Some(e),
            Ok(_) => break,
        }
    }
    Err(original)
}

/// Whether `flag` (`--name` or `-n`) is an option of `cmd` or of any
/// command below it, and if so whether it takes a value there.
fn known_option(cmd: &clap::Command, flag: &str) -> Option<bool> {
    let matches = |arg: &clap::Arg| match (flag.strip_prefix("--"), flag.strip_prefix('-')) {
        (Some(long), _) => arg.get_long() == Some(long),
        (None, Some(short)) => {
            let mut chars = short.chars();
            chars.next().is_some_and(|c| arg.get_short() == Some(c)) && chars.next().is_none()
        }
        (None, None) => false,
    };
    cmd.get_arguments()
        .find(|a| matches(a))
        .map(|a| a.get_action().takes_values())
        .or_else(|| cmd.get_subcommands().find_map(|s| known_option(s, flag)))
}

/// The first line of a usage error rendered by clap, without `error: `,
/// followed by its tips (`; tip: a similar subcommand exists: 'install'`):
/// the message of the JSON error, which has one line.
#[must_use]
pub fn usage_summary(rendered: &str) -> String {
    let mut lines = rendered.lines();
    let first = lines.next().unwrap_or_default();
    let mut summary = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    for tip in lines.filter_map(|l| l.trim_start().strip_prefix("tip: ")) {
        summary.push_str("; tip: ");
        summary.push_str(tip);
    }
    summary
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
