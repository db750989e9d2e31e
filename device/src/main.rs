//! `tessera-agent`: the reference device agent. A thin command line over
//! [`tessera_device::Agent`].
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, IsTerminal as _, Read, Write};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::fs::{FileType, Mode, OFlags};
use serde::Serialize;
use tessera_device::agent::{DEFAULT_STATE_DIR, STATE_DIR_ENV};
use tessera_device::clock::{parse_time, system_now};
use tessera_device::mode::{EXIT_OUTPUT, EXIT_REFUSED, EXIT_UNREACHABLE};
use tessera_device::online::Online;
use tessera_device::online::Route;
use tessera_device::probe::kind_name;
use tessera_device::seats::mass::{Stage, MAX_CSV_LEN};
use tessera_device::seats::session::render_list;
use tessera_device::seats::{Filter, NewSeat, SeatHook, SeatOptions, SeatView, Seats};
use tessera_device::store::FAIL_POINT_ENV;
use tessera_device::{Agent, AgentError, AgentOptions, FailHook, Report};
use tessera_qr::{Ink, MAX_IMAGE_BYTES};
use tessera_verifier::armor::MAX_ARMOR_LEN;
use tessera_verifier::text::escaped;

/// Text for a terminal or a log, line by line: every control or format
/// character but the line breaks escaped, so text that came from a file,
/// a license or a request can neither move the cursor nor forge a line.
fn shown_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| escaped(line).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Standard output and error that never panic ([`tessera_cli::stdout`],
/// the same as `tessera`'s): a pipe whose reader is gone ends the output
/// quietly, any other failure is remembered for [`out::finish`].
mod out {
    /// Writes `text` to standard output, unless an earlier write failed.
    pub fn stdout(text: impl AsRef<[u8]>) {
        // A failure is remembered and reported by `finish`.
        let _ = tessera_cli::stdout(text);
    }

    /// Writes `text` to standard error, as far as it goes.
    pub fn stderr(text: &str) {
        tessera_cli::stderr(text);
    }

    /// The exit code after the command decided `code`: a failed write to
    /// standard output is reported, and turns success into
    /// [`super::EXIT_OUTPUT`], except for `decision` commands (`check`,
    /// `status`, `install`), whose exit code is the PBX mode and stands.
    pub fn finish(code: u8, decision: bool) -> u8 {
        let Some(e) = tessera_cli::stdout_failure() else {
            return code;
        };
        stderr(&format!(
            "tessera-agent: cannot write to standard output ({}); the command's work is done, its output is lost: write it to a disk with free space, or to a file with -o where the command has it\n",
            tessera_verifier::text::escaped(&e)
        ));
        if decision || code != 0 {
            code
        } else {
            super::EXIT_OUTPUT
        }
    }
}

/// A line to standard output through [`shown_lines`].
macro_rules! say {
    ($($arg:tt)*) => { out::stdout(format!("{}\n", shown_lines(&format!($($arg)*)))) };
}
/// A line to standard error through [`shown_lines`].
macro_rules! say_err {
    ($($arg:tt)*) => { out::stderr(&format!("{}\n", shown_lines(&format!($($arg)*)))) };
}
/// Text to standard output through [`shown_lines`].
macro_rules! say_raw {
    ($($arg:tt)*) => { out::stdout(shown_lines(&format!($($arg)*))) };
}

/// The exit codes of `check`, `status` and `install` (device/README.md,
/// "Exit codes"), for their help.
macro_rules! decision_exit_codes {
    () => {
        "Exit codes (the PBX mode):
  0   full service
  10  full service, renewal due: notify the administrator
  11  full service in grace: show a banner with the days left
  12  grace over: emergency numbers only, one call at a time
  13  grace over: locked (phones registered, calls and web to the activation page)
  2   refused or error: no license can be trusted; give no full service,
      behave as locked
Standard output that cannot be written (a full disk) does not change the
exit code: the decision stands."
    };
}

const AFTER_HELP: &str = "\
Exit codes of check, status and install (and renew, see `renew --help`):
  0   full service
  10  full service, renewal due: notify the administrator
  11  full service in grace: show a banner with the days left
  12  grace over: emergency numbers only, one call at a time
  13  grace over: locked (phones registered, calls and web to the activation page)
  2   refused or error (not activated, state corrupt, wrong device, clock
      set back, a state folder or file others may write, a link or FIFO
      in the state folder, bad input ...): give no full service; behave
      as locked
Other commands exit 0, or 2 when refused. Standard output that cannot be
written (a full disk) is reported on standard error: check, status and
install keep the exit code of the mode, the others exit 3 (their work is
done). A pipe whose reader is gone (`| head -1`) just ends the output.

Examples:
  tessera-agent probe                                   what identifies this device
  tessera-agent request -o /tmp/request.txt             file to send to the vendor
  tessera-agent install /tmp/license.txt                install the vendor's answer
  tessera-agent check                                   the daily (or 3-hourly) check
  tessera-agent check --online                          the same, renewing with the vendor's server when due
  tessera-agent renew                                   renew with the vendor's server now
  tessera-agent activate                                first license from the vendor's server
  tessera-agent status --json --catalog catalog.toml    everything, for the web UI
  tessera-agent seats summary                           licensed, assigned, available seats";

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
    /// Root of the file system to probe (for tests and containers); it
    /// must exist [default: `sysroot` in agent.toml, else /].
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
    /// Show the identity components this device has, what was skipped, and the serial a request carries.
    #[command(
        after_help = "The `request serial` line names the serial a request made now would carry\n(sw_serial in agent.toml, else the installed license's, else the HW serial) and\nwhere it comes from. On platform vm or cloud (detected, or `platform` in\nagent.toml) no HW serial is read: a VM needs `sw_serial`, an appliance detected\nas a VM `platform = \"hw\"`.\n\nExit codes:\n  0  a request can be made\n  2  a request would be refused (too few components, no serial): the reasons\n     are on standard error, and in `request_problems` with --json\n\nExamples:\n  tessera-agent probe\n  tessera-agent probe --sysroot /mnt/image --json"
    )]
    Probe {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write a signed request file for the vendor (first activation or renewal).
    #[command(
        after_help = "Examples:\n  tessera-agent request -o /tmp/request.txt\n  tessera-agent request | mail -s 'license request' licensing@vendor.example\n  tessera-agent request --qr              (scan the code on the screen with a phone)\n  tessera-agent request -o req.txt --qr-png req.png"
    )]
    Request {
        /// Output file, `-` for standard output.
        #[arg(short, long, default_value = "-", value_name = "FILE")]
        output: PathBuf,
        /// Overwrite existing output files (never the agent's own files
        /// in the state folder). Every output is written in full before
        /// any is put in place; if one cannot be, none is left and the
        /// files they were to replace are put back.
        #[arg(long)]
        force: bool,
        /// Print the request as a QR code on standard output (Unicode half
        /// blocks) instead of the armored text; `-o FILE` still writes the
        /// file.
        #[arg(long)]
        qr: bool,
        /// Also write the request as a QR code PNG image to FILE.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
        /// Also write the request as a QR code SVG image to FILE.
        #[arg(long, value_name = "FILE")]
        qr_svg: Option<PathBuf>,
        /// Print what was written as JSON on standard output (serial,
        /// identity components, files; the armored request itself when it
        /// goes to standard output).
        #[arg(long, conflicts_with = "qr")]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Verify a license for this device and install it.
    #[command(
        after_help = concat!(decision_exit_codes!(), "\n\nRefused (2): an older license, another device or serial, a bad signature,\nnot in force yet, a clock set back, a request instead of a license ...;\nthe installed files stay as they were.\n\nExamples:\n  tessera-agent install /tmp/license.txt\n  tessera-agent install - < license.txt\n  tessera-agent install license.png         a photo or screenshot of the license's QR code\n  tessera-agent install --recover license.txt   after `check` reported a corrupt state")
    )]
    Install {
        /// The license file from the vendor (armored, binary, a PNG/JPEG
        /// image of its QR code, or the SVG image `tessera issue --qr-svg`
        /// writes), `-` for standard input.
        file: PathBuf,
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// After a corrupt state record: accept only a license issued now.
        /// After a clock set back: accept a license newer than the one in
        /// force, and reset the recorded time to its issue time.
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
    #[command(
        after_help = concat!("Without --online the check never touches the network. With --online the\nexit code is still the mode of the license decision, whatever the renewal\ncame to.\n\n", decision_exit_codes!(), "\n\nExamples:\n  tessera-agent check\n  tessera-agent check --json\n  tessera-agent check --online     renew with the server in agent.toml when due")
    )]
    Check {
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// When the license is due (renewal window, grace or after), renew
        /// it with the license server of agent.toml (`server`, `server_ca`);
        /// when the server cannot be reached, the offline grace rules apply.
        #[arg(long)]
        online: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Renew the license now with the vendor's license server (HTTPS), and install it.
    #[command(after_help = RENEW_HELP)]
    Renew {
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// First activation with the vendor's license server (HTTPS), and install the license.
    #[command(after_help = ACTIVATE_HELP)]
    Activate {
        #[command(flatten)]
        online: OnlineArgs,
        /// The activation code the vendor gave for this PBX
        /// [default: `activation_code` in agent.toml, the better place:
        /// a code on the command line is visible to other local users in
        /// the process list while the command runs].
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
    },
    /// Show the verdict, days left, last renewal, entitlements and sharing role.
    #[command(
        after_help = concat!("The same evaluation as check, without storing anything.\n\n", decision_exit_codes!(), "\n\nExamples:\n  tessera-agent status\n  tessera-agent status --json --catalog /etc/tessera/catalog.toml")
    )]
    Status {
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// Catalog TOML, to show entitlement names next to their codes
        /// [default: `catalog` in agent.toml, else the default catalog].
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  tessera-agent completions bash > /etc/bash_completion.d/tessera-agent\n  tessera-agent completions zsh > ~/.zfunc/_tessera-agent"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (or write one per command into a folder).
    #[command(
        after_help = "Examples:\n  tessera-agent man | man -l -\n  tessera-agent man -o /usr/local/share/man/man1"
    )]
    Man {
        /// Write tessera-agent.1 and one page per command into DIR (created
        /// if missing) instead of printing tessera-agent.1.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Hand the license's profiles, base licenses and add-ons out to users and extensions.
    #[command(after_help = SEATS_HELP)]
    Seats {
        /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
        #[arg(long, value_name = "FILE", global = true)]
        keyring: Option<PathBuf>,
        /// Catalog TOML for names [default: `catalog` in agent.toml, else the default catalog].
        #[arg(long, value_name = "FILE", global = true)]
        catalog: Option<PathBuf>,
        /// Sharing client: the server's license file, whose counts apply
        /// [default: `server_license` in agent.toml].
        #[arg(long, value_name = "FILE", global = true)]
        server_license: Option<PathBuf>,
        /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
        #[arg(long, hide = true, global = true)]
        now: Option<String>,
        #[command(subcommand)]
        command: SeatsCommand,
    },
}

/// The options of the commands that ask the license server now.
#[derive(clap::Args, Debug)]
struct OnlineArgs {
    /// The license server's base URL [default: `server` in agent.toml].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The vendor's CA (or the server's self-signed certificate), PEM, pinned
    /// [default: `server_ca` in agent.toml].
    #[arg(long, value_name = "FILE")]
    server_ca: Option<PathBuf>,
    /// Keyring TOML [default: `keyring` in agent.toml, else STATE_DIR/keyring.toml].
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    json: bool,
    /// Pretend the time is TIME (RFC 3339, YYYY-MM-DD or @SECONDS); for tests.
    #[arg(long, hide = true)]
    now: Option<String>,
}

const RENEW_HELP: &str = "\
The request is made and signed here (as `request` makes it), sent to
POST URL/v1/renew, and the answer installed as `install` installs a file.
The server is trusted only through the pinned certificate (`server_ca`);
plain http:// only to a loopback address. When the server cannot be
reached, each retry (`server_retries`, default 4) waits twice as long as
the one before, with jitter, and makes a new request.

Exit codes:
  0, 10..13  renewed and installed: the mode of the new license (as check)
  2          refused (the server's reason is printed: replaced, unknown,
             voided, stopped, deleted ...) or an error; the license in
             force stays. Also a server whose certificate the pin does not
             trust (server_untrusted: another CA than `server_ca`, a name
             mismatch, expired), at once, without retries
  4          try again later; the license in force stays, its grace state
             is printed: the server could not be reached
             (server_unreachable), or it is up but rate-limited the PBX
             (rate_limited: HTTP 429, the message says when to ask again)

Examples:
  tessera-agent renew                                   the server in agent.toml
  tessera-agent renew --server https://licenses.vendor.example --server-ca vendor-ca.pem";

const ACTIVATE_HELP: &str = "\
The first license of a PBX the vendor entered in its registry, without
carrying files: a VM or Cloud PBX with the serial `tessera pbx add`
allocated (`sw_serial` in agent.toml), an appliance by its HW serial once
the vendor entered it. The vendor gives the site a one-time activation code
with the serial (`tessera pbx activation`): `activation_code` in agent.toml,
or --code (which wins); it is sent in the Tessera-Activation-Code header
over the pinned connection and never printed. The request is made and
signed here (as `request` makes it), sent to POST URL/v1/activate, and the
answer installed as `install` installs a file; retries as `renew` makes
them. Without the right code, or for a PBX that cannot be activated, the
service answers activation-refused and says no more: ask the vendor for a
(new) code, or send `request`'s file to the vendor instead. A PBX with a
license renews (`renew`).

Exit codes:
  0, 10..13  activated and installed: the mode of the new license (as check)
  2          refused (the server's reason is printed: activation-refused;
             to the PBX's own device already-activated, stopped ...) or an
             error
  4          try again later: the server could not be reached
             (server_unreachable), or it rate-limited the request
             (rate_limited: HTTP 429, the message says when to ask again)

Examples:
  tessera-agent activate                                the server and code in agent.toml
  tessera-agent activate --code 7K3QD-9XW2M-TR4FZ-B8N6P
  tessera-agent activate --server https://licenses.vendor.example --server-ca vendor-ca.pem";

const SEATS_HELP: &str = "\
Profiles, base licenses and add-ons are named as in the catalog (default:
profiles PBX-BASIC .. PBX-SERVICE, base licenses Auto Attendant, Call Group,
Developer, Phone System, add-ons call_recording ..) or by numeric code.
A UUID can be shortened to a unique prefix of 4 or more hex digits.

Examples:
  tessera-agent seats assign --user alice --extension 1001 --base 'Phone System' --addon call_recording
  tessera-agent seats assign --user bob --profile UC-BUSINESS
  tessera-agent seats list --extension 1001
  tessera-agent seats reassign 3f2a --user carol
  tessera-agent seats summary
  tessera-agent seats export -o seats.csv && tessera-agent seats import seats.csv";

#[derive(Subcommand, Debug)]
enum SeatsCommand {
    /// Give a user a seat of a profile or base license (with add-ons).
    #[command(
        after_help = "Examples:\n  tessera-agent seats assign --user alice --extension 1001 --base 'Phone System' --addon call_recording\n  tessera-agent seats assign --user bob --profile UC-BUSINESS\n  tessera-agent seats assign --user sales@example.com --base 'Call Group' --addon device_desktop_app --json"
    )]
    #[command(group(clap::ArgGroup::new("license").required(true).args(["base", "profile"])))]
    Assign {
        /// The user (login or e-mail address).
        #[arg(long)]
        user: String,
        /// The extension number.
        #[arg(long, value_name = "N")]
        extension: Option<String>,
        /// A base license, by name or code.
        #[arg(long, value_name = "X")]
        base: Option<String>,
        /// A user profile, by name or code.
        #[arg(long, value_name = "X")]
        profile: Option<String>,
        /// An add-on for the base license (repeat for more).
        #[arg(long = "addon", value_name = "A")]
        addons: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Take a seat (or every seat of a user) back; the seat is kept for the next user.
    #[command(
        after_help = "Examples:\n  tessera-agent seats unassign 3f2a          the seat whose UUID starts with 3f2a\n  tessera-agent seats unassign --user bob    every seat of bob"
    )]
    #[command(group(clap::ArgGroup::new("which").required(true).args(["uuid", "user"])))]
    Unassign {
        /// The seat.
        uuid: Option<String>,
        /// Every seat of this user.
        #[arg(long)]
        user: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Give a seat to another user, keeping its UUID, extension and add-ons.
    #[command(
        after_help = "Examples:\n  tessera-agent seats reassign 3f2a --user carol   the seat whose UUID starts with 3f2a\n  tessera-agent seats reassign 3f2a --user dave --json"
    )]
    Reassign {
        /// The seat.
        uuid: String,
        /// The new user.
        #[arg(long)]
        user: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Add or remove add-ons of a base license seat.
    #[command(
        after_help = "Examples:\n  tessera-agent seats addons 3f2a --add device_ip_phone --add device_mobile_app\n  tessera-agent seats addons 3f2a --remove call_recording\n  tessera-agent seats addons 3f2a --add call_recording --remove device_mobile_app --json"
    )]
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["add", "remove"])))]
    Addons {
        /// The seat.
        uuid: String,
        /// Add-on to add (repeat for more).
        #[arg(long, value_name = "A")]
        add: Vec<String>,
        /// Add-on to remove (repeat for more).
        #[arg(long, value_name = "B")]
        remove: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// End a seat by its UUID: it is removed, assigned or not.
    #[command(
        after_help = "Examples:\n  tessera-agent seats terminate 3f2a   the seat whose UUID starts with 3f2a\n  tessera-agent seats terminate 9c41d07e-5b2a-4c8f-a1e3-7d2b6f0e9a14 --json"
    )]
    Terminate {
        /// The seat.
        uuid: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List seats, by user, extension (Phone System only), license or add-on.
    #[command(
        after_help = "Examples:\n  tessera-agent seats list\n  tessera-agent seats list --user alice\n  tessera-agent seats list --extension 1001\n  tessera-agent seats list --base 'Phone System' --addon call_recording\n  tessera-agent seats list --profile UC-BUSINESS --json\n  tessera-agent seats list --unassigned\n  tessera-agent seats list --over        assignments beyond the licensed count"
    )]
    List {
        /// Seats of this user.
        #[arg(long)]
        user: Option<String>,
        /// The Phone System seat with this extension number.
        #[arg(long, value_name = "N")]
        extension: Option<String>,
        /// Seats of this base license.
        #[arg(long, value_name = "X", conflicts_with = "profile")]
        base: Option<String>,
        /// Seats of this profile.
        #[arg(long, value_name = "X")]
        profile: Option<String>,
        /// Seats with this add-on.
        #[arg(long, value_name = "A")]
        addon: Option<String>,
        /// Only seats without a user.
        #[arg(long)]
        unassigned: bool,
        /// Only assignments over the licensed count.
        #[arg(long)]
        over: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// For each profile, base license and add-on: licensed, assigned, available.
    #[command(
        after_help = "Examples:\n  tessera-agent seats summary\n  tessera-agent seats summary --json"
    )]
    Summary {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Import a mass-configuration CSV (all rows or none).
    #[command(
        after_help = "Header: extension_key,number,user,addon_1,...,addon_N\n  extension_key: base license (Phone System, 4, base:4) or profile:NAME|CODE\n  number: extension number or empty; user: required; addon_K: name, code or empty\n\nEvery row is checked first; one bad row (reported with its line) and nothing is changed.\nImporting the same file again changes nothing.\n\nExamples:\n  tessera-agent seats import --dry-run seats.csv   check every row, change nothing\n  tessera-agent seats import seats.csv\n  tessera-agent seats import --json - < seats.csv"
    )]
    Import {
        /// The CSV file, `-` for standard input.
        file: PathBuf,
        /// Check every row without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write the assigned seats as a mass-configuration CSV.
    #[command(
        after_help = "Examples:\n  tessera-agent seats export -o seats.csv\n  tessera-agent seats export -o seats.csv --force   replace an older export\n  tessera-agent seats export                        to standard output"
    )]
    Export {
        /// Output file, `-` for standard output.
        #[arg(short, long, default_value = "-", value_name = "FILE")]
        output: PathBuf,
        /// Overwrite an existing output file (never the agent's own files
        /// in the state folder).
        #[arg(long)]
        force: bool,
    },
}

impl SeatsCommand {
    fn json(&self) -> bool {
        match self {
            Self::Assign { json, .. }
            | Self::Unassign { json, .. }
            | Self::Reassign { json, .. }
            | Self::Addons { json, .. }
            | Self::Terminate { json, .. }
            | Self::List { json, .. }
            | Self::Summary { json }
            | Self::Import { json, .. } => *json,
            Self::Export { .. } => false,
        }
    }
}

/// The options every command accepts (before or after its name).
const SHARED: [&str; 4] = ["state_dir", "config", "sysroot", "ip"];

/// The command line as the binary, its man pages and completions see it:
/// `man` and `completions` touch no device, so their help lists none of
/// the shared options.
fn command() -> clap::Command {
    tessera_cli::scope_globals(Cli::command(), &SHARED, None, &|path, _| {
        !matches!(path, "man" | "completions")
    })
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = tessera_cli::parse(&command(), &args).and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(EXIT_REFUSED);
            if e.use_stderr() {
                let message = shown_lines(&e.render().to_string());
                if tessera_cli::wants_json(&args) {
                    let summary = tessera_cli::usage_summary(&message);
                    out::stdout(tessera_cli::json_error("usage", &summary, code));
                }
                out::stderr(&message);
            } else if io::stdout().is_terminal() {
                // Help and version on a terminal, in clap's colours.
                let _ = e.print();
            } else {
                let mut text = e.render().to_string();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                out::stdout(text);
            }
            return ExitCode::from(out::finish(code, false));
        }
    };
    let decision = matches!(
        cli.command,
        Command::Check { .. }
            | Command::Status { .. }
            | Command::Install { .. }
            | Command::Renew { .. }
            | Command::Activate { .. }
    );
    let json = matches!(
        cli.command,
        Command::Probe { json: true }
            | Command::Request { json: true, .. }
            | Command::Install { json: true, .. }
            | Command::Check { json: true, .. }
            | Command::Renew {
                online: OnlineArgs { json: true, .. }
            }
            | Command::Activate {
                online: OnlineArgs { json: true, .. },
                ..
            }
            | Command::Status { json: true, .. }
    ) || matches!(&cli.command, Command::Seats { command, .. } if command.json());
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A server out of reach or rate-limiting is "try again later"
            // also when no license is installed to fall back on (a first
            // `activate`), not a refusal.
            let code = match &e {
                AgentError::Online(o) if o.try_later() => EXIT_UNREACHABLE,
                _ => EXIT_REFUSED,
            };
            if json {
                out::stdout(tessera_cli::json_error(e.code(), &e.to_string(), code));
            }
            say_err!("tessera-agent: {e}");
            code
        }
    };
    ExitCode::from(out::finish(code, decision))
}

/// The time a command runs at: `--now TIME` (tests, drills) or the clock.
/// A simulated time is not harmless on a live device: whatever the command
/// saves records it as the highest time seen, so it says so, once.
fn now_or_clock(now: Option<&str>) -> Result<i64, AgentError> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    match now {
        Some(t) => {
            let t = parse_time(t)?;
            WARNED.call_once(|| say_err!("tessera-agent: {}", simulated_time_warning(t)));
            Ok(t)
        }
        None => Ok(system_now()?),
    }
}

/// The warning for a simulated time `t` (`--now`).
fn simulated_time_warning(t: i64) -> String {
    format!(
        "warning: simulated time {} (--now), not the clock: the state records it as the highest time seen, and later commands at an earlier real time report clock_rollback; simulate on a copy of the state folder (--state-dir)",
        tessera_device::clock::format_time(t)
    )
}

fn print_report(report: &Report, json: bool, full: bool) -> Result<u8, AgentError> {
    if !report.state_saved {
        // For the log too, whatever standard output is.
        say_err!(
            "tessera-agent: warning: {}",
            tessera_device::report::STATE_NOT_SAVED
        );
    }
    if json {
        out::stdout(format!("{}\n", json_text(report)?));
    } else if full {
        say_raw!("{}", report.render());
    } else {
        say!("{}", report.summary());
    }
    Ok(report.exit_code)
}

/// Prints an online renewal: the attempt on standard error (or in the
/// JSON), then the decision as `check` prints it. `renew` exits 2 when
/// refused and 4 when the server was out of reach or rate-limited the PBX
/// (try again later); `check --online` always with the mode.
fn print_online(outcome: &Online, json: bool, renew: bool) -> Result<u8, AgentError> {
    let r = &outcome.renewal;
    match r.outcome {
        "renewed" => say_err!(
            "tessera-agent: renewed with {}: installed sequence {} ({} attempt(s))",
            r.server,
            r.sequence.unwrap_or(0),
            r.attempts
        ),
        "activated" => say_err!(
            "tessera-agent: activated with {}: installed sequence {} ({} attempt(s))",
            r.server,
            r.sequence.unwrap_or(0),
            r.attempts
        ),
        "not_due" => {}
        // Its message says that the license in force stays, and when to
        // ask again.
        "rate_limited" => say_err!("tessera-agent: {}", r.error.as_deref().unwrap_or("")),
        _ => say_err!(
            "tessera-agent: could not get a license from the server: {}; the license in force stays",
            r.error.as_deref().unwrap_or("")
        ),
    }
    let code = if json {
        let mut value = serde_json::to_value(&outcome.report).map_err(|e| AgentError::Output {
            path: "-".into(),
            reason: e.to_string(),
        })?;
        value["renewal"] = serde_json::to_value(r).map_err(|e| AgentError::Output {
            path: "-".into(),
            reason: e.to_string(),
        })?;
        out::stdout(format!("{}\n", json_text(&value)?));
        outcome.report.exit_code
    } else {
        print_report(&outcome.report, false, false)?
    };
    Ok(match (&outcome.error, renew) {
        (Some(e), true) if e.try_later() => EXIT_UNREACHABLE,
        (Some(_), true) => EXIT_REFUSED,
        _ => code,
    })
}

fn run(cli: Cli) -> Result<u8, AgentError> {
    let (fail_hook, seat_hook) = match std::env::var(FAIL_POINT_ENV) {
        Ok(spec) => match (FailHook::parse(&spec), SeatHook::parse(&spec)) {
            (None, None) => {
                return Err(AgentError::Input {
                    path: FAIL_POINT_ENV.into(),
                    reason: format!("`{spec}` names no fail point"),
                })
            }
            hooks => hooks,
        },
        Err(_) => (None, None),
    };
    let mut options = AgentOptions::new(cli.state_dir);
    options.config = cli.config;
    options.sysroot = cli.sysroot;
    options.ip = cli.ip;
    options.fail_hook = fail_hook;
    match cli.command {
        Command::Completions { shell } => {
            out::stdout(tessera_cli::completions(command(), shell));
            Ok(0)
        }
        Command::Man { output } => match output.as_deref().filter(|d| d.as_os_str() != "-") {
            Some(dir) => {
                tessera_cli::write_man_pages(command(), dir).map_err(|e| AgentError::Output {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                say_err!("tessera-agent: wrote man pages to {}", dir.display());
                Ok(0)
            }
            None => {
                let page = tessera_cli::man_page(command()).map_err(|e| AgentError::Output {
                    path: "-".into(),
                    reason: e.to_string(),
                })?;
                out::stdout(page);
                Ok(0)
            }
        },
        Command::Probe { json } => {
            let agent = Agent::new(options)?;
            let probe = agent.probe();
            let enough = probe.require(agent.min_components());
            // What would refuse a request made now, in the order it would.
            let mut problems: Vec<AgentError> = Vec::new();
            if let Err(e) = &enough {
                problems.push(e.clone().into());
            }
            let serial = match agent.request_serial(&probe) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(e);
                    None
                }
            };
            if json {
                let mut value = serde_json::to_value(&probe).map_err(|e| AgentError::Output {
                    path: "-".into(),
                    reason: e.to_string(),
                })?;
                value["min_components"] = agent.min_components().into();
                value["enough"] = enough.is_ok().into();
                value["serial"] =
                    serde_json::to_value(&serial).map_err(|e| AgentError::Output {
                        path: "-".into(),
                        reason: e.to_string(),
                    })?;
                value["request_ready"] = problems.is_empty().into();
                value["request_problems"] = problems
                    .iter()
                    .map(|e| serde_json::json!({"code": e.code(), "message": e.to_string()}))
                    .collect::<Vec<_>>()
                    .into();
                out::stdout(format!("{value:#}\n"));
            } else {
                say_raw!("{}", probe.render());
                match &serial {
                    Some(s) => say!(
                        "request serial: {} ({} serial, from {})",
                        s.value,
                        s.kind.to_uppercase(),
                        s.source
                    ),
                    None => say!("request serial: none (a request would be refused: see below)"),
                }
            }
            // Reported here, not through `main`: the JSON above is the output.
            for e in &problems {
                say_err!("tessera-agent: a request would be refused: {e}");
            }
            Ok(if problems.is_empty() { 0 } else { EXIT_REFUSED })
        }
        Command::Request {
            output,
            force,
            qr,
            qr_png,
            qr_svg,
            json,
            now,
        } => {
            let mut own = OwnFiles::of(&options);
            let agent = Agent::new(options)?;
            own.others.extend(agent.config().keyring.clone());
            let now = now_or_clock(now.as_deref())?;
            // Every file is checked, and its temporary file made, before
            // the request is: a refused request leaves nothing behind, in
            // the state folder (`Agent::request_then`) or beside it.
            let to_stdout = is_stdio(&output);
            let named: Vec<&Path> = [Some(output.as_path()), qr_png.as_deref(), qr_svg.as_deref()]
                .into_iter()
                .flatten()
                .filter(|p| !is_stdio(p))
                .collect();
            // Compared as the files they name, not as text: `dir/../f`
            // or a link to the folder is the same file as `f`.
            let files: Vec<PathBuf> = named.iter().map(|p| same_file_key(p)).collect();
            if let Some(twice) = named
                .iter()
                .enumerate()
                .find_map(|(i, p)| files[..i].contains(&files[i]).then_some(p))
            {
                return Err(AgentError::Output {
                    path: twice.display().to_string(),
                    reason:
                        "named for two outputs (-o, --qr-png, --qr-svg); give each its own file"
                            .into(),
                });
            }
            let file = if (qr || json) && to_stdout {
                None
            } else {
                prepare_output(&output, force, &own)?
            };
            let png = qr_png
                .as_deref()
                .map(|p| prepare_output(p, force, &own))
                .transpose()?;
            let svg = qr_svg
                .as_deref()
                .map(|p| prepare_output(p, force, &own))
                .transpose()?;
            let (outcome, code) = agent.request_then(now, |outcome| {
                let code = if qr || png.is_some() || svg.is_some() {
                    Some(tessera_qr::encode(&outcome.bytes)?)
                } else {
                    None
                };
                // Every file written in full first, then each put in place.
                let mut files = Vec::new();
                if let Some(mut pending) = file {
                    pending.write(outcome.armored.as_bytes())?;
                    files.push(pending);
                }
                if let (Some(Some(mut pending)), Some(code)) = (png, &code) {
                    pending.write(&code.to_png()?)?;
                    files.push(pending);
                }
                if let (Some(Some(mut pending)), Some(code)) = (svg, &code) {
                    pending.write(code.to_svg().as_bytes())?;
                    files.push(pending);
                }
                // All in place, or none: a request signed by a key the
                // refusal removes must not stay behind.
                put_in_place(files)?;
                Ok((outcome.clone(), code))
            })?;
            if to_stdout && !qr && !json {
                out::stdout(outcome.armored.as_bytes());
            }
            if let Some(code) = &code {
                // An image to `-` goes to standard output.
                if qr_png.as_deref().is_some_and(is_stdio) {
                    out::stdout(code.to_png()?);
                }
                if qr_svg.as_deref().is_some_and(is_stdio) {
                    out::stdout(code.to_svg());
                }
                if qr {
                    let ink = if io::stdout().is_terminal() {
                        Ink::LightOnDark
                    } else {
                        Ink::DarkOnLight
                    };
                    out::stdout(code.to_terminal(ink).as_bytes());
                }
                say_err!("tessera-agent: QR code: {}", code.describe());
            }
            for note in &outcome.notes {
                say_err!("tessera-agent: note: {note}");
            }
            let d = &outcome.data;
            let serial = match (&d.serial, &d.hw_serial) {
                (Some(sw), _) => format!("SW serial {sw}"),
                (None, Some(hw)) => format!("HW serial {hw} (first activation)"),
                (None, None) => "no serial".into(),
            };
            let mut kinds: Vec<&str> = d.identity.iter().map(|i| kind_name(i.kind)).collect();
            kinds.dedup();
            if json {
                let value = serde_json::json!({
                    "output": output.display().to_string(),
                    "request": is_stdio(&output).then_some(&outcome.armored),
                    "serial": d.serial,
                    "hw_serial": d.hw_serial,
                    "first_activation": d.serial.is_none() && d.hw_serial.is_some(),
                    "identity_components": d.identity.len(),
                    "component_kinds": kinds,
                    "device_key_created": outcome.key_created,
                    "qr_png": qr_png.as_ref().map(|p| p.display().to_string()),
                    "qr_svg": qr_svg.as_ref().map(|p| p.display().to_string()),
                    "qr": code.as_ref().map(|c| c.describe()),
                    "notes": outcome.notes,
                });
                out::stdout(format!("{}\n", json_text(&value)?));
                return Ok(0);
            }
            if is_stdio(&output) && tessera_cli::stdout_failure().is_some() {
                // Not written: `out::finish` says so, and what to do.
                return Ok(0);
            }
            let target = match (is_stdio(&output), qr) {
                (true, true) => "standard output as a QR code".to_owned(),
                (true, false) => "standard output".to_owned(),
                (false, _) => escaped(&output.display().to_string()).to_string(),
            };
            say_err!(
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
            let input = read_license_input(&file)?;
            let report = agent.install(&input, now_or_clock(now.as_deref())?, recover)?;
            if !json {
                say!(
                    "installed license {} (sequence {})",
                    escaped(&report.license.serial),
                    report.license.sequence
                );
            }
            print_report(&report, json, false)
        }
        Command::Check {
            keyring,
            online,
            json,
            now,
        } => {
            options.keyring = keyring;
            let agent = Agent::new(options)?;
            if online {
                let spec = agent.server_spec(None, None)?;
                let outcome = agent.renew_online(
                    spec,
                    false,
                    &|| now_or_clock(now.as_deref()),
                    std::thread::sleep,
                )?;
                return print_online(&outcome, json, false);
            }
            let report = agent.check(now_or_clock(now.as_deref())?)?;
            print_report(&report, json, false)
        }
        Command::Renew { online } => ask_server(options, online, Route::Renew),
        Command::Activate { online, code } => activate(options, online, code.as_deref()),
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
        Command::Seats {
            keyring,
            catalog,
            server_license,
            now,
            command,
        } => {
            options.keyring = keyring;
            options.catalog = catalog;
            let mut own = OwnFiles::of(&options);
            let agent = Agent::new(options)?;
            own.others.extend(agent.config().keyring.clone());
            let options = SeatOptions {
                server_license,
                hook: seat_hook,
            };
            run_seats(
                &agent,
                now_or_clock(now.as_deref())?,
                options,
                command,
                &own,
            )
        }
    }
}

/// `activate`: the code from `--code`, else from agent.toml; then as
/// [`ask_server`].
fn activate(
    mut options: AgentOptions,
    a: OnlineArgs,
    code: Option<&str>,
) -> Result<u8, AgentError> {
    options.keyring = a.keyring.clone();
    let agent = Agent::new(options)?;
    let text = code
        .map(str::to_owned)
        .or_else(|| agent.config().activation_code.clone());
    let code = text
        .map(|t| {
            tessera_verifier::activation::ActivationCode::parse(&t).map_err(|e| AgentError::Input {
                path: "the activation code (--code or activation_code in agent.toml)".into(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    let spec = agent.server_spec(a.server.as_deref(), a.server_ca.as_deref())?;
    let now = || now_or_clock(a.now.as_deref());
    let outcome = agent.activate_online(spec, code, &now, std::thread::sleep)?;
    print_online(&outcome, a.json, true)
}

/// `renew` and `activate`: ask the server now, install its answer.
fn ask_server(mut options: AgentOptions, a: OnlineArgs, route: Route) -> Result<u8, AgentError> {
    options.keyring = a.keyring;
    let agent = Agent::new(options)?;
    let spec = agent.server_spec(a.server.as_deref(), a.server_ca.as_deref())?;
    let now = || now_or_clock(a.now.as_deref());
    let outcome = match route {
        Route::Activate => agent.activate_online(spec, None, &now, std::thread::sleep)?,
        _ => agent.renew_online(spec, true, &now, std::thread::sleep)?,
    };
    print_online(&outcome, a.json, true)
}

fn json_text(value: &impl Serialize) -> Result<String, AgentError> {
    serde_json::to_string_pretty(value).map_err(|e| AgentError::Output {
        path: "-".into(),
        reason: e.to_string(),
    })
}

/// The availability line of a license after a change.
fn availability(seats: &mut Seats<'_>, view: &SeatView) -> Result<String, AgentError> {
    let summary = seats.summary()?;
    Ok(summary
        .entries
        .iter()
        .find(|e| e.base.is_none() && e.kind == view.license.kind && e.code == view.license.code)
        .map(|e| {
            format!(
                "{}: {} licensed, {} assigned, {} available",
                e.name, e.licensed, e.assigned, e.available
            )
        })
        .unwrap_or_default())
}

/// What a seats command prints: made while the state folder is locked,
/// printed once the lock is released, so a reader that is slow or never
/// reads (a pager, a full pipe) holds up no other command.
enum Printed {
    /// JSON on standard output.
    Json(String),
    /// Lines for people on standard output.
    Lines(String),
    /// Text for people on standard output, as it is (ends in a newline).
    Raw(String),
    /// A mass-configuration file for `-o` (or standard output).
    Export {
        output: PathBuf,
        force: bool,
        csv: Vec<u8>,
        rows: u64,
    },
}

/// A seats command: its input read whole first (a CSV from a file or
/// standard input, before the folder is locked), the work done under the
/// lock, the output printed after it.
fn run_seats(
    agent: &Agent,
    now: i64,
    options: SeatOptions,
    command: SeatsCommand,
    own: &OwnFiles,
) -> Result<u8, AgentError> {
    let input = match &command {
        SeatsCommand::Import { file, .. } => Some(read_input(
            file,
            MAX_CSV_LEN,
            "mass-configuration CSV file",
        )?),
        _ => None,
    };
    let seats = agent.seats(now, options)?;
    let printed = seats_work(seats, command, input.as_deref().unwrap_or_default())?;
    match printed {
        Printed::Json(text) => out::stdout(format!("{text}\n")),
        Printed::Lines(text) => say!("{text}"),
        Printed::Raw(text) => say_raw!("{text}"),
        Printed::Export {
            output,
            force,
            csv,
            rows,
        } => {
            write_output(&output, &csv, force, own)?;
            if !is_stdio(&output) {
                say_err!(
                    "tessera-agent: {rows} seat(s) written to {}",
                    escaped(&output.display().to_string())
                );
            }
        }
    }
    Ok(0)
}

/// The work of a seats command on the open (locked) session; `input` is
/// the CSV of `import`. Nothing is printed here but the progress bar.
fn seats_work(
    mut seats: Seats<'_>,
    command: SeatsCommand,
    input: &[u8],
) -> Result<Printed, AgentError> {
    Ok(match command {
        SeatsCommand::Assign {
            user,
            extension,
            base,
            profile,
            addons,
            json,
        } => {
            let license = match (base, profile) {
                (Some(b), _) => seats.names().base(&b)?,
                (None, Some(p)) => seats.names().profile(&p)?,
                (None, None) => {
                    return Err(AgentError::Input {
                        path: "seats assign".into(),
                        reason: "name the license with --base X or --profile X".into(),
                    })
                }
            };
            let addons = seats.addon_codes(&addons)?;
            let view = seats.assign(NewSeat {
                user,
                extension,
                license,
                addons,
            })?;
            if json {
                Printed::Json(json_text(&view)?)
            } else {
                Printed::Lines(format!(
                    "assigned {}\n{}",
                    view.line(),
                    availability(&mut seats, &view)?
                ))
            }
        }
        SeatsCommand::Unassign { uuid, user, json } => {
            let views = match (uuid, user) {
                (Some(u), _) => vec![seats.unassign(&u)?],
                (None, Some(user)) => seats.unassign_user(&user)?,
                (None, None) => Vec::new(),
            };
            if json {
                Printed::Json(json_text(&views)?)
            } else {
                let mut lines: Vec<String> = views
                    .iter()
                    .map(|v| {
                        format!(
                            "unassigned {} from {}: {} ({} {}), extension {}",
                            v.seat.uuid,
                            v.previous_user,
                            v.seat.license.name,
                            v.seat.license.kind,
                            v.seat.license.code,
                            v.seat.extension.as_deref().unwrap_or("none")
                        )
                    })
                    .collect();
                lines.push("kept without a user: `seats reassign UUID --user V` gives a seat to someone, `seats terminate UUID` removes it".into());
                Printed::Lines(lines.join("\n"))
            }
        }
        SeatsCommand::Reassign { uuid, user, json } => {
            let view = seats.reassign(&uuid, &user)?;
            if json {
                Printed::Json(json_text(&view)?)
            } else {
                Printed::Lines(format!("reassigned {}", view.line()))
            }
        }
        SeatsCommand::Addons {
            uuid,
            add,
            remove,
            json,
        } => {
            let view = seats.addons(&uuid, &add, &remove)?;
            if json {
                Printed::Json(json_text(&view)?)
            } else {
                Printed::Lines(format!("changed {}", view.line()))
            }
        }
        SeatsCommand::Terminate { uuid, json } => {
            let view = seats.terminate(&uuid)?;
            if json {
                Printed::Json(json_text(&view)?)
            } else {
                Printed::Lines(format!("terminated {}", view.line()))
            }
        }
        SeatsCommand::List {
            user,
            extension,
            base,
            profile,
            addon,
            unassigned,
            over,
            json,
        } => {
            let license = match (base, profile) {
                (Some(b), _) => Some(seats.names().base(&b)?),
                (None, Some(p)) => Some(seats.names().profile(&p)?),
                (None, None) => None,
            };
            let addon = addon.map(|a| seats.names().addon(&a)).transpose()?;
            let list = seats.list(&Filter {
                user,
                extension,
                license,
                addon,
                unassigned,
                over,
            })?;
            if json {
                Printed::Json(json_text(&list)?)
            } else {
                Printed::Raw(render_list(&list))
            }
        }
        SeatsCommand::Summary { json } => {
            let summary = seats.summary()?;
            if json {
                Printed::Json(json_text(&summary)?)
            } else {
                Printed::Raw(summary.render())
            }
        }
        SeatsCommand::Import {
            file,
            dry_run,
            json,
        } => {
            let bar = progress_bar();
            let mut progress = |stage: Stage, done: u64, total: u64| {
                bar.set_length(total);
                bar.set_message(match stage {
                    Stage::Checking => "checking",
                    Stage::Writing => "writing",
                });
                bar.set_position(done);
            };
            let outcome = seats.import(input, dry_run, &mut progress);
            bar.finish_and_clear();
            let outcome = outcome?;
            if json {
                let mut value = serde_json::to_value(&outcome).map_err(|e| AgentError::Output {
                    path: "-".into(),
                    reason: e.to_string(),
                })?;
                value["dry_run"] = dry_run.into();
                Printed::Json(json_text(&value)?)
            } else {
                let verb = if dry_run {
                    "checked (nothing changed)"
                } else {
                    "imported"
                };
                Printed::Lines(format!(
                    "{verb} {}: {} row(s): {} created, {} changed, {} unchanged",
                    escaped(&file.display().to_string()),
                    outcome.rows,
                    outcome.created,
                    outcome.changed,
                    outcome.unchanged
                ))
            }
        }
        SeatsCommand::Export { output, force } => {
            let mut csv = Vec::new();
            let rows = seats.export(&mut csv)?;
            Printed::Export {
                output,
                force,
                csv,
                rows,
            }
        }
    })
}

/// A progress bar on standard error, hidden when that is not a terminal.
fn progress_bar() -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} rows ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// An install input: a license file (armored or binary, at most 64 KiB)
/// or a photo or screenshot of its QR code (PNG or JPEG, at most 32 MiB).
fn read_license_input(path: &Path) -> Result<Vec<u8>, AgentError> {
    let bytes = read_input(
        path,
        MAX_IMAGE_BYTES,
        "license file or a photo of its QR code",
    )?;
    if bytes.len() > MAX_ARMOR_LEN && !tessera_qr::is_image(&bytes) && !tessera_qr::is_svg(&bytes) {
        return Err(AgentError::Input {
            path: path.display().to_string(),
            reason: "larger than 64 KiB, so not a license file; use the file exactly as the vendor sent it".into(),
        });
    }
    Ok(bytes)
}

/// Whether a file argument is `-` (standard input or output).
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads an input named on the command line, whole, before any work
/// starts: `-` is standard input (read to its end, at most `cap` bytes);
/// a path must be a regular file of at most `cap` bytes (checked before
/// it is read). A FIFO, a device or a socket is refused without waiting
/// for a writer: it could keep the command waiting for ever.
fn read_input(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, AgentError> {
    let fail = |reason: String| AgentError::Input {
        path: path.display().to_string(),
        reason,
    };
    let too_large = || {
        fail(format!(
            "larger than {} KiB, so not a {what}; check the file",
            cap / 1024
        ))
    };
    let mut bytes = Vec::new();
    if is_stdio(path) {
        io::stdin()
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
    } else {
        // Non-blocking: opening a FIFO must not wait for a writer.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| fail(format!("{}; check the path", io::Error::from(e))))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| fail(io::Error::from(e).to_string()))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(fail(format!("it is a folder; name the {what}"))),
            _ => {
                return Err(fail(format!(
                    "it is not a regular file (a FIFO, a device or a socket); name the {what}, or pass `-` to read standard input"
                )))
            }
        }
        if u64::try_from(st.st_size).unwrap_or(u64::MAX) > cap {
            return Err(too_large());
        }
        std::fs::File::from(fd)
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(e.to_string()))?;
    }
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Writes an output file named on the command line: `-` is standard
/// output; a path is written through a new temporary file in its folder
/// (created with `O_EXCL`, fsynced, renamed over the path), so a crash
/// leaves the old file or the new one. An existing file is replaced only
/// with `--force`, and never when it is anything but a regular file: a
/// link, a FIFO or a device is refused, not written through.
fn write_output(path: &Path, bytes: &[u8], force: bool, own: &OwnFiles) -> Result<(), AgentError> {
    match prepare_output(path, force, own)? {
        Some(mut pending) => {
            pending.write(bytes)?;
            put_in_place(vec![pending])
        }
        None => {
            // A failure shows in the exit code (`out::finish`).
            out::stdout(bytes);
            Ok(())
        }
    }
}

/// The device and inode of the file `p` names (links followed), or
/// `None` when there is none: two paths of one file give the same.
fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// The agent's own files, which no output may replace, not even with
/// `--force`: an output over the device key, the state record or the
/// license would leave a request signed by a key that no longer exists,
/// or a device that refuses every later command.
struct OwnFiles {
    /// The state folder, which is no output either.
    state_dir: PathBuf,
    /// Files named outside the state folder (`--config`, `--keyring`, the
    /// keyring agent.toml names).
    others: Vec<PathBuf>,
}

/// The names of the agent's files in its state folder.
const OWN_NAMES: [&str; 8] = [
    tessera_device::device_key::DEVICE_KEY_FILE,
    tessera_device::store::STATE_FILE,
    tessera_device::store::LICENSE_FILE,
    tessera_device::store::LOCK_FILE,
    tessera_device::store::CORRUPT_STATE_FILE,
    tessera_device::agent::KEYRING_FILE,
    tessera_device::config::CONFIG_FILE,
    tessera_device::seats::SEATS_FILE,
];

impl OwnFiles {
    fn of(options: &AgentOptions) -> Self {
        Self {
            state_dir: options.state_dir.clone(),
            others: [options.config.clone(), options.keyring.clone()]
                .into_iter()
                .flatten()
                .collect(),
        }
    }

    /// Whether `name` in the state folder is one of the agent's files, a
    /// temporary file of one, or a file SQLite keeps beside the seats.
    fn is_own_name(name: &std::ffi::OsStr) -> bool {
        let Some(name) = name.to_str() else {
            return false;
        };
        OWN_NAMES
            .iter()
            .any(|own| name == *own || tessera_device::store::is_temp_of(name, own))
            || ["seats.db", "seats.db.new"].iter().any(|db| {
                ["-wal", "-shm", "-journal"]
                    .iter()
                    .any(|side| name.strip_prefix(db) == Some(side))
            })
    }

    /// Refuses the output `path` when it is the state folder, or one of
    /// the agent's files, compared as files (device and inode of the
    /// folder, or of the file itself), not as text: `dir/../state`, a
    /// link to the folder or a hard link to a file are caught too.
    fn refuse(&self, path: &Path, folder: &Path) -> Result<(), AgentError> {
        let fail = |what: &str| {
            AgentError::Output {
            path: path.display().to_string(),
            reason: format!(
                "it is {what}, which no output may replace (not even with --force); write the output elsewhere, outside {}",
                escaped(&self.state_dir.display().to_string())
            ),
        }
        };
        let Some(state) = file_id(&self.state_dir) else {
            // No state folder yet: nothing of the agent's to replace.
            return self.refuse_others(path, &fail);
        };
        let target = file_id(path);
        if target == Some(state) {
            return Err(fail("the agent's state folder"));
        }
        if file_id(folder) == Some(state) && path.file_name().is_some_and(Self::is_own_name) {
            return Err(fail("one of the agent's own files in its state folder"));
        }
        if let Some(target) = target {
            for name in OWN_NAMES {
                if file_id(&self.state_dir.join(name)) == Some(target) {
                    return Err(fail("one of the agent's own files in its state folder"));
                }
            }
        }
        self.refuse_others(path, &fail)
    }

    fn refuse_others(
        &self,
        path: &Path,
        fail: &dyn Fn(&str) -> AgentError,
    ) -> Result<(), AgentError> {
        match file_id(path) {
            Some(target) if self.others.iter().any(|o| file_id(o) == Some(target)) => {
                Err(fail("the agent's configuration or keyring file"))
            }
            _ => Ok(()),
        }
    }
}

/// An output file of [`write_output`] whose checks passed and whose
/// temporary file exists: written with [`Pending::write`], put in place
/// with [`put_in_place`]; dropped before that, it removes its temporary
/// file (and the copy it kept of a file it was to replace) and leaves the
/// path as it was.
struct Pending {
    target: PathBuf,
    folder: PathBuf,
    tmp: PathBuf,
    /// Where the file the output replaces (under `--force`) is kept
    /// until every output is in place, to be put back if one fails.
    kept: PathBuf,
    file: std::fs::File,
    force: bool,
    /// Whether `kept` holds the replaced file.
    keeping: bool,
    /// Whether the temporary file was renamed over the path.
    placed: bool,
}

/// Checks the output file `path` as [`write_output`] does and makes its
/// temporary file, before anything is written: `None` for `-`.
fn prepare_output(path: &Path, force: bool, own: &OwnFiles) -> Result<Option<Pending>, AgentError> {
    let fail = |reason: String| AgentError::Output {
        path: path.display().to_string(),
        reason,
    };
    if is_stdio(path) {
        return Ok(None);
    }
    let name = path
        .file_name()
        .ok_or_else(|| fail("name a file, not a folder".into()))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    own.refuse(path, folder)?;
    // Named, with what to do, rather than the bare "No such file or
    // directory" of creating the file.
    match std::fs::metadata(folder) {
        Ok(meta) if !meta.is_dir() => {
            return Err(fail(format!(
                "{} is not a folder; name a file in an existing folder",
                escaped(&folder.display().to_string())
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "the folder {} does not exist; create it first (mkdir -p {}) or name a file in an existing folder",
                escaped(&folder.display().to_string()),
                tessera_device::store::folder::shell_word(folder)
            )))
        }
        Err(e) => return Err(fail(format!("{}: {e}", escaped(&folder.display().to_string())))),
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(fail(
                "it is not a regular file (a link, a folder, a FIFO or a device); choose a new file name or `-` for standard output".into(),
            ))
        }
        Ok(_) if !force => {
            return Err(fail(
                "the file exists; choose another name or pass --force".into(),
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let mut random = [0u8; 8];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut random)
        .map_err(|e| fail(e.to_string()))?;
    let sibling = |suffix: &str| {
        let mut sibling = std::ffi::OsString::from(".");
        sibling.push(name);
        sibling.push(format!(".{}.{suffix}", hex::encode(random)));
        folder.join(sibling)
    };
    let tmp = sibling("tmp");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Some(Pending {
        target: path.to_owned(),
        folder: folder.to_owned(),
        tmp,
        kept: sibling("old.tmp"),
        file,
        force,
        keeping: false,
        placed: false,
    }))
}

/// Puts every output in place, or none: the files replaced under
/// `--force` are kept aside first (a hard link beside them, else a
/// copy), then each temporary file is renamed over its path and the
/// folders synced. When a step fails, the outputs already renamed are
/// taken back (the file each replaced put back, a new file removed), so
/// a refused command leaves no output that the rest of it contradicts,
/// such as a request signed by a device key the refusal removes.
fn put_in_place(mut files: Vec<Pending>) -> Result<(), AgentError> {
    let placed = files.iter_mut().try_for_each(Pending::keep).and_then(|()| {
        files.iter_mut().try_for_each(Pending::place)?;
        files.iter().try_for_each(Pending::sync)
    });
    if let Err(e) = placed {
        for pending in files.iter_mut().rev() {
            pending.take_back();
        }
        return Err(e);
    }
    for pending in &mut files {
        pending.drop_kept();
    }
    Ok(())
}

impl Pending {
    fn fail(&self, e: &io::Error) -> AgentError {
        AgentError::Output {
            path: self.target.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Writes `bytes` to the temporary file and syncs it.
    fn write(&mut self, bytes: &[u8]) -> Result<(), AgentError> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| self.fail(&e))
    }

    /// Keeps the file this output replaces (`--force`) aside, as a hard
    /// link or, where the file system has none, as a synced copy.
    fn keep(&mut self) -> Result<(), AgentError> {
        if !self.force {
            return Ok(());
        }
        let meta = match std::fs::symlink_metadata(&self.target) {
            Ok(meta) if meta.file_type().is_file() => meta,
            // Refused when the file is put in place.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.fail(&e)),
        };
        if std::fs::hard_link(&self.target, &self.kept).is_err() {
            let copied = std::fs::File::open(&self.target).and_then(|mut old| {
                let mut copy = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&self.kept)?;
                // Marked before the copy: a half copy is removed too.
                self.keeping = true;
                io::copy(&mut old, &mut copy)?;
                copy.set_permissions(meta.permissions())?;
                copy.sync_all()
            });
            copied.map_err(|e| AgentError::Output {
                path: self.target.display().to_string(),
                reason: format!(
                    "cannot keep a copy of the file it replaces, to put it back if the command fails ({e}); choose a new file name"
                ),
            })?;
        }
        self.keeping = true;
        Ok(())
    }

    /// Renames the temporary file over the path (unless, without
    /// `--force`, a file appeared there meanwhile).
    fn place(&mut self) -> Result<(), AgentError> {
        if !self.force && self.target.exists() {
            return Err(self.fail(&io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the file appeared meanwhile; choose another name or pass --force",
            )));
        }
        std::fs::rename(&self.tmp, &self.target).map_err(|e| self.fail(&e))?;
        self.placed = true;
        Ok(())
    }

    /// Syncs the folder, so that the rename lasts.
    fn sync(&self) -> Result<(), AgentError> {
        std::fs::File::open(&self.folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| self.fail(&e))
    }

    /// Undoes [`Pending::place`]: the kept file renamed back over the
    /// path, or the new file removed. As far as it goes: the error that
    /// refused the command is the one reported.
    fn take_back(&mut self) {
        if !self.placed {
            return;
        }
        let undone = if self.keeping {
            std::fs::rename(&self.kept, &self.target).map(|()| self.keeping = false)
        } else {
            std::fs::remove_file(&self.target)
        };
        if undone.is_ok() {
            self.placed = false;
            let _ = self.sync();
        }
    }

    /// Removes the kept file once every output is in place.
    fn drop_kept(&mut self) {
        if self.keeping && std::fs::remove_file(&self.kept).is_ok() {
            self.keeping = false;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Nothing more can be done about a file that cannot be removed;
        // its name says what it is.
        if !self.placed {
            let _ = std::fs::remove_file(&self.tmp);
        }
        if self.keeping && !self.placed {
            let _ = std::fs::remove_file(&self.kept);
        }
    }
}

/// What an output path names, for telling two outputs apart: its folder
/// resolved (links and `..` followed, as opening the file will) joined
/// with its file name; the path as given when the folder cannot be
/// resolved (a missing folder, refused when the output is prepared).
fn same_file_key(path: &Path) -> PathBuf {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(folder), path.file_name()) {
        (Ok(folder), Some(name)) => folder.join(name),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn pending(path: &Path, bytes: &[u8], force: bool) -> Pending {
        let mut pending = prepare_output(
            path,
            force,
            &OwnFiles {
                state_dir: PathBuf::from("/nonexistent-state"),
                others: Vec::new(),
            },
        )
        .unwrap()
        .unwrap();
        pending.write(bytes).unwrap();
        pending
    }

    #[test]
    fn a_failed_second_rename_takes_the_first_output_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("request.txt");
        let second = dir.path().join("request.png");
        let files = vec![
            pending(&first, b"new", false),
            pending(&second, b"png", false),
        ];
        // A folder where the second output goes, made after its checks:
        // its rename fails, also for root.
        std::fs::create_dir(&second).unwrap();
        let e = put_in_place(files).unwrap_err();
        assert!(e.to_string().contains("request.png"), "{e}");
        assert!(!first.exists(), "the first output stayed in place");
        assert_eq!(names(dir.path()), ["request.png"]);
    }

    #[test]
    fn a_failed_rename_under_force_puts_the_replaced_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("request.txt");
        let second = dir.path().join("request.svg");
        let third = dir.path().join("request.png");
        std::fs::write(&first, "old request").unwrap();
        std::fs::write(&second, "old svg").unwrap();
        std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o640)).unwrap();
        let files = vec![
            pending(&first, b"new request", true),
            pending(&second, b"new svg", true),
            pending(&third, b"png", true),
        ];
        std::fs::create_dir(&third).unwrap();
        put_in_place(files).unwrap_err();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "old request");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "old svg");
        let mode = std::fs::metadata(&second).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            names(dir.path()),
            ["request.png", "request.svg", "request.txt"]
        );
    }

    #[test]
    fn all_outputs_in_place_keep_no_copy_of_what_they_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("request.txt");
        let second = dir.path().join("request.png");
        std::fs::write(&first, "old request").unwrap();
        let files = vec![
            pending(&first, b"new request", true),
            pending(&second, b"png", true),
        ];
        put_in_place(files).unwrap();
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "new request");
        assert_eq!(std::fs::read(&second).unwrap(), b"png");
        assert_eq!(names(dir.path()), ["request.png", "request.txt"]);
    }
}
