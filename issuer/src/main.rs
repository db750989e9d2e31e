//! `tessera`: the vendor's license tool. Thin: parses the command line,
//! runs the library's command and maps its error to an exit code
//! (`tessera --help` lists them).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use tessera_issuer::cli::Cli;
use tessera_issuer::error::{EXIT_OK, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; every usage error exits
            // 1 (clap's own 2 is the policy-refusal code here).
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            if e.use_stderr() {
                // Usage errors quote the arguments given: escaped.
                let message = tessera_issuer::output::for_terminal(&e.render().to_string());
                let _ = write!(std::io::stderr().lock(), "{message}");
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match tessera_issuer::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = tessera_issuer::output::for_terminal(&e.to_string());
            let _ = writeln!(std::io::stderr().lock(), "error: {message}");
            ExitCode::from(e.exit_code())
        }
    }
}
