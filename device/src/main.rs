//! `tessera-agent`: the reference device agent. A thin command line over
//! [`tessera_device::Agent`].
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use tessera_device::agent::{DEFAULT_STATE_DIR, STATE_DIR_ENV};
use tessera_device::clock::{parse_time, system_now};
use tessera_device::mode::EXIT_REFUSED;
use tessera_device::probe::kind_name;
use tessera_device::store::FAIL_POINT_ENV;
use tessera_device::{Agent, AgentError, AgentOptions, FailHook, Report};
use tessera_verifier::armor::MAX_ARMOR_LEN;

const AFTER_HELP: &str = "\
Exit codes of check, status and install:
  0   full service
  10  full service, renewal due: notify the administrator
  11  full service in grace: show a banner with the days left
  12  grace over: emergency numbers only, one call at a time
  13  grace over: locked (phones registered, calls and web to the activation page)
  2   refused or error (not activated, state corrupt, wrong device, clock
      set back, bad input ...): give no full service; behave as locked

Examples:
  tessera-agent probe                                   what identifies this device
  tessera-agent request -o /tmp/request.txt             file to send to the vendor
  tessera-agent install /tmp/license.txt                install the vendor's answer
  tessera-agent check                                   the daily (or 3-hourly) check
  tessera-agent status --json --catalog catalog.toml    everything, for the web UI";

/// Reference tessera device agent: identity probe, license requests,
/// install, periodic check and status for Linux-based PBXs.
#[derive(Parser, Debug)]
#[command(name = "tessera-agent", version, after_help = AFTER_HELP)]
struct Cli {
    /// State directory: license, state record, device key, agent.toml.
    #[arg(long, global = true, env = STATE_DIR_ENV, default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Agent configuration [default: STATE_DIR/agent.toml, optional there].
    #[arg(long, global = true, env = "TESSERA_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Root of the file system to probe (for tests and containers).
    #[arg(long, global = true, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// The bound IP address (overrides `ip` in agent.toml; never taken from DHCP).
    #[arg(long, global = true)]
    ip: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the identity components this device has, and what was skipped.
    #[command(
        after_help = "Examples:\n  tessera-agent probe\n  tessera-agent probe --sysroot /mnt/image --json"
    )]
    Probe {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed request file for the vendor (first activation or renewal).
    #[command(
        after_help = "Examples:\n  tessera-agent request -o /tmp/request.txt\n  tessera-agent request | mail -s 'license request' licensing@vendor.example"
    )]
    Request {
        /// Output file, `-` for standard output.
        #[arg(short, long, default_value = "-", value_name = "FILE")]
        output: String,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Verify a license for this device and install it.
    #[command(
        after_help = "Examples:\n  tessera-agent install /tmp/license.txt\n  tessera-agent install - < license.txt\n  tessera-agent install --recover license.txt   after `check` reported a corrupt state"
    )]
    Install {
        /// The license file from the vendor, `-` for standard input.
        file: String,
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// After a corrupt state record: accept only a license issued now.
        #[arg(long)]
        recover: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// The periodic check: evaluate the license, update the state, exit with the mode.
    #[command(after_help = "Examples:\n  tessera-agent check\n  tessera-agent check --json")]
    Check {
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Show the verdict, days left, last renewal, entitlements and sharing role.
    #[command(
        after_help = "Examples:\n  tessera-agent status\n  tessera-agent status --json --catalog /etc/tessera/catalog.toml"
    )]
    Status {
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// Catalog TOML, to show entitlement names next to their codes.
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
}

#[derive(Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
    exit_code: u8,
}

#[derive(Serialize)]
struct JsonErrorBody<'a> {
    code: &'a str,
    message: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(
        cli.command,
        Command::Probe { json: true }
            | Command::Install { json: true, .. }
            | Command::Check { json: true, .. }
            | Command::Status { json: true, .. }
    );
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                let body = JsonError {
                    error: JsonErrorBody {
                        code: e.code(),
                        message: e.to_string(),
                    },
                    exit_code: EXIT_REFUSED,
                };
                if let Ok(text) = serde_json::to_string_pretty(&body) {
                    println!("{text}");
                }
            }
            eprintln!("tessera-agent: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn now_or_clock(now: Option<&str>) -> Result<i64, AgentError> {
    match now {
        Some(t) => Ok(parse_time(t)?),
        None => Ok(system_now()?),
    }
}

fn print_report(report: &Report, json: bool, full: bool) -> Result<u8, AgentError> {
    if json {
        let text = serde_json::to_string_pretty(report).map_err(|e| AgentError::Output {
            path: "-".into(),
            reason: e.to_string(),
        })?;
        println!("{text}");
    } else if full {
        print!("{}", report.render());
    } else {
        println!("{}", report.summary());
    }
    Ok(report.exit_code)
}

fn run(cli: Cli) -> Result<u8, AgentError> {
    let fail_hook = match std::env::var(FAIL_POINT_ENV) {
        Ok(spec) => Some(FailHook::parse(&spec).ok_or_else(|| AgentError::Input {
            path: FAIL_POINT_ENV.into(),
            reason: format!("`{spec}` names no fail point"),
        })?),
        Err(_) => None,
    };
    let mut options = AgentOptions::new(cli.state_dir);
    options.config = cli.config;
    options.sysroot = cli.sysroot;
    options.ip = cli.ip;
    options.fail_hook = fail_hook;
    match cli.command {
        Command::Probe { json } => {
            let agent = Agent::new(options)?;
            let probe = agent.probe();
            let enough = probe.require(agent.min_components());
            if json {
                let mut value = serde_json::to_value(&probe).map_err(|e| AgentError::Output {
                    path: "-".into(),
                    reason: e.to_string(),
                })?;
                value["min_components"] = agent.min_components().into();
                value["enough"] = enough.is_ok().into();
                println!("{value:#}");
            } else {
                print!("{}", probe.render());
            }
            // Reported here, not through `main`: the JSON above is the output.
            match enough {
                Ok(()) => Ok(0),
                Err(e) => {
                    eprintln!("tessera-agent: {e}");
                    Ok(EXIT_REFUSED)
                }
            }
        }
        Command::Request { output, force, now } => {
            let agent = Agent::new(options)?;
            let outcome = agent.request(now_or_clock(now.as_deref())?)?;
            write_output(&output, outcome.armored.as_bytes(), force)?;
            for note in &outcome.notes {
                eprintln!("tessera-agent: note: {note}");
            }
            let d = &outcome.data;
            let serial = match (&d.serial, &d.hw_serial) {
                (Some(sw), _) => format!("SW serial {sw}"),
                (None, Some(hw)) => format!("HW serial {hw} (first activation)"),
                (None, None) => "no serial".into(),
            };
            let mut kinds: Vec<&str> = d.identity.iter().map(|i| kind_name(i.kind)).collect();
            kinds.dedup();
            let target = if output == "-" {
                "standard output"
            } else {
                &output
            };
            eprintln!(
                "tessera-agent: request written to {target}: {serial}, {} identity components ({}){}",
                d.identity.len(),
                kinds.join(", "),
                if outcome.key_created { "; a new device key was created" } else { "" }
            );
            Ok(0)
        }
        Command::Install {
            file,
            keyring,
            recover,
            json,
            now,
        } => {
            options.keyring = keyring;
            let agent = Agent::new(options)?;
            let input = read_input(&file)?;
            let report = agent.install(&input, now_or_clock(now.as_deref())?, recover)?;
            if !json {
                println!(
                    "installed license {} (sequence {})",
                    report.license.serial, report.license.sequence
                );
            }
            print_report(&report, json, false)
        }
        Command::Check { keyring, json, now } => {
            options.keyring = keyring;
            let agent = Agent::new(options)?;
            let report = agent.check(now_or_clock(now.as_deref())?)?;
            print_report(&report, json, false)
        }
        Command::Status {
            keyring,
            catalog,
            json,
            now,
        } => {
            options.keyring = keyring;
            options.catalog = catalog;
            let agent = Agent::new(options)?;
            let report = agent.status(now_or_clock(now.as_deref())?)?;
            print_report(&report, json, true)
        }
    }
}

fn read_input(path: &str) -> Result<Vec<u8>, AgentError> {
    let fail = |reason: String| AgentError::Input {
        path: path.to_owned(),
        reason,
    };
    let cap = MAX_ARMOR_LEN as u64 + 1;
    let mut bytes = Vec::new();
    if path == "-" {
        io::stdin()
            .take(cap)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(cap).read_to_end(&mut bytes))
            .map_err(|e| fail(format!("{e}; check the path")))?;
    }
    if bytes.len() > MAX_ARMOR_LEN {
        return Err(fail(
            "larger than 64 KiB, so not a license file; use the file exactly as the vendor sent it"
                .into(),
        ));
    }
    Ok(bytes)
}

fn write_output(path: &str, bytes: &[u8], force: bool) -> Result<(), AgentError> {
    let fail = |reason: String| AgentError::Output {
        path: path.to_owned(),
        reason,
    };
    if path == "-" {
        let mut out = io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| fail(e.to_string()));
    }
    let mut options = OpenOptions::new();
    options.write(true).mode(0o644);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            fail("the file exists; choose another name or pass --force".into())
        } else {
            fail(e.to_string())
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail(e.to_string()))
}
