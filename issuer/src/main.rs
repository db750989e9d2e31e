//! `tessera`: the vendor's license tool. Thin: parses the command line,
//! runs the library's command and maps its error to an exit code
//! (`tessera --help` lists them).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use tessera_issuer::error::{Error, EXIT_OK, EXIT_USAGE};
use tessera_issuer::output::for_terminal;

/// The allocator: the ledger's fold and view writers make hundreds of
/// short-lived allocations per license, where glibc's malloc spent a
/// quarter of a bulk run (bench/REPORT.md, "allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, json) = match tessera_issuer::cli::parse_from(args.clone()) {
        Ok(parsed) => parsed,
        Err(Ok(e)) => {
            // --help and --version are not errors; every usage error exits
            // 1 (clap's own 2 is the policy-refusal code here).
            if !e.use_stderr() {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    let _ = e.print();
                } else {
                    let mut text = e.render().to_string();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    let _ = tessera_cli::stdout(text);
                }
                return ExitCode::from(finish(EXIT_OK));
            }
            // Usage errors quote the arguments given: escaped.
            let message = for_terminal(&e.render().to_string());
            if tessera_cli::wants_json(&args) {
                let summary = tessera_cli::usage_summary(&message);
                let _ = tessera_cli::stdout(tessera_cli::json_error("usage", &summary, EXIT_USAGE));
            }
            tessera_cli::stderr(&message);
            return ExitCode::from(finish(EXIT_USAGE));
        }
        Err(Err(e)) => {
            let json = tessera_cli::wants_json(&args);
            return ExitCode::from(report(&e, json));
        }
    };
    let code = match tessera_issuer::commands::run(cli) {
        Ok(()) => EXIT_OK,
        Err(e) => report(&e, json),
    };
    ExitCode::from(finish(code))
}

/// Reports a command's error on standard error (and as JSON on standard
/// output under `--json`); its exit code.
fn report(e: &Error, json: bool) -> u8 {
    let message = for_terminal(&e.to_string());
    // A bulk run's JSON report already names its refused rows, a
    // notice's its failed recipients.
    if json
        && !matches!(
            e,
            Error::Stdout(_) | Error::BulkPartial { .. } | Error::NoticeFailed { .. }
        )
    {
        let _ = tessera_cli::stdout(tessera_issuer::output::json_for_terminal(
            &tessera_cli::json_error(e.code(), &e.to_string(), e.exit_code()),
        ));
    }
    tessera_cli::stderr(&format!("error: {message}\n"));
    e.exit_code()
}

/// The exit code after `code`: a write to standard output that failed
/// where nothing could report it (help text) turns success into the
/// output failure.
fn finish(code: u8) -> u8 {
    match tessera_cli::stdout_failure() {
        Some(e) if code == EXIT_OK => report(&Error::Stdout(std::io::Error::other(e)), false),
        _ => code,
    }
}
