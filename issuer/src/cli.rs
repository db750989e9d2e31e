//! The command line of `tessera` (clap derive). Kept in the library so
//! man pages, completions and tests see the same definition as the binary.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::error::{
    Error, EXIT_BULK_PARTIAL, EXIT_CODES, EXIT_LEDGER, EXIT_MAIL, EXIT_NOT_IN_FORCE, EXIT_OK,
    EXIT_OUTPUT, EXIT_POLICY, EXIT_USAGE, EXIT_VERIFY,
};

const MAIN_HELP: &str = "\
Examples:
  tessera keygen -o signing.pem --keyring keyring.toml
  tessera issue --order order.toml --request device.req --key signing.pem -o device.lic
  tessera renew --request renewal.req --key signing.pem -o renewed.lic
  tessera modify --serial SW-2026-000001 --order more-users.toml -o changed.lic
  tessera replace --serial SW-2026-000001 --request new-box.req --reason rma -o new-box.lic
  tessera issue --bulk rollout.csv -o licenses/ --key signing.pem
  tessera inspect device.lic
  tessera verify device.lic --keyring keyring.toml --device-identity device.toml
  tessera ledger verify
  tessera report overdue
  tessera demo

Settings: an option, else the environment, else the configuration file
(--config FILE or TESSERA_CONFIG, else ./tessera.toml, else
$XDG_CONFIG_HOME/tessera/config.toml): `tessera config` shows them.
  TESSERA_LEDGER      ledger file or postgres:// URL (`ledger`; created only by
                      `tessera ledger init`; the password from PGPASSWORD or ~/.pgpass)
  TESSERA_CATALOG     catalog file (`catalog`; default: the embedded catalog)
  TESSERA_OPERATOR    operator recorded in the ledger (`operator`; default $USER)
  TESSERA_KEY         signing key file or pkcs11: URI (`key`: one, or a list)
  TESSERA_KEYRING     keyring file (`keyring`)
  TESSERA_REQUEST_WINDOW  how far a request's creation time may lie from now
                      (`request_window`; default 30d)
  TESSERA_PASSPHRASE  passphrase of the signing key (or --passphrase-file; never argv)
  TESSERA_PKCS11_MODULE  PKCS#11 library of an HSM key (--key pkcs11:URI)
  TESSERA_PKCS11_PIN     user PIN of that token (or --pin-file; never argv)
  TESSERA_NOW         run as if it were this time (--now; rehearsals and
                      tests: what is written is dated then, with a warning)

";

/// tessera: offline, signed, hardware-bound licenses for PBX appliances.
///
/// Turns an order plus a device request into a signed license file,
/// records everything in a tamper-evident ledger and refuses orders that
/// break a licensing rule.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, after_help = MAIN_HELP)]
pub struct Cli {
    /// Options every command understands.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// A command's examples and notes; [`command`] adds the exit codes that
/// command can end with.
fn after_help(examples: &str) -> String {
    examples.trim_end().to_owned()
}

/// The options every command accepts (before or after its name), by id.
const CONFIG: &str = "config";
const LEDGER: &str = "ledger";
const CATALOG: &str = "catalog";
const OPERATOR: &str = "operator";
const NOW: &str = "now";
const SHARED: [&str; 5] = [CONFIG, LEDGER, CATALOG, OPERATOR, NOW];

/// Where a command's help lists the shared options it uses.
const SHARED_HEADING: &str = "Settings (also from the environment or tessera.toml)";

/// Which of the shared options a command uses and which exit codes it can
/// end with (besides 0 and 1, which every command can): its help shows
/// only these, and a shared option it does not use is refused on its
/// command line instead of being ignored.
struct Scope {
    /// The command's path below `tessera` (`ledger verify`).
    path: &'static str,
    /// The shared options it reads.
    options: &'static [&'static str],
    /// Its exit codes beyond 0, 1 and the output failure.
    exits: &'static [u8],
}

/// Everything an issuing command reads.
const ISSUING: &[&str] = &[CONFIG, LEDGER, CATALOG, OPERATOR, NOW];
/// The exit codes of an issuing command.
const ISSUING_EXITS: &[u8] = &[EXIT_POLICY, EXIT_LEDGER];

/// The scope of every command. A command missing here (a new one) shows
/// and accepts every shared option and the whole table of exit codes.
const SCOPES: &[Scope] = &[
    Scope {
        path: "keygen",
        options: &[CONFIG, NOW],
        exits: &[],
    },
    Scope {
        path: "key public",
        options: &[CONFIG],
        exits: &[],
    },
    Scope {
        path: "keyring add",
        options: &[CONFIG, NOW],
        exits: &[],
    },
    Scope {
        path: "keyring retire",
        options: &[CONFIG, NOW],
        exits: &[],
    },
    Scope {
        path: "keyring activate",
        options: &[CONFIG, NOW],
        exits: &[],
    },
    Scope {
        path: "keyring list",
        options: &[CONFIG, NOW],
        exits: &[],
    },
    Scope {
        path: "keyring export",
        options: &[CONFIG],
        exits: &[],
    },
    Scope {
        path: "config",
        options: &[CONFIG, LEDGER, CATALOG, OPERATOR],
        exits: &[],
    },
    Scope {
        path: "catalog show",
        options: &[CONFIG, CATALOG],
        exits: &[],
    },
    Scope {
        path: "catalog example-order",
        options: &[],
        exits: &[],
    },
    Scope {
        path: "issue",
        options: ISSUING,
        exits: &[EXIT_POLICY, EXIT_LEDGER, EXIT_BULK_PARTIAL],
    },
    Scope {
        path: "renew",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "modify",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "replace",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "share",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "void",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "decommission",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "inspect",
        options: &[CONFIG, CATALOG],
        exits: &[EXIT_VERIFY],
    },
    Scope {
        path: "verify",
        options: &[CONFIG, CATALOG, NOW],
        exits: &[EXIT_VERIFY, EXIT_NOT_IN_FORCE],
    },
    Scope {
        path: "ledger init",
        options: ISSUING,
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger upgrade",
        options: ISSUING,
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger head",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger list",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger show",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger verify",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger migrate",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "ledger export",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "pbx add",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "pbx activation",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "pbx edit",
        options: ISSUING,
        exits: ISSUING_EXITS,
    },
    Scope {
        path: "pbx list",
        options: &[CONFIG, LEDGER, NOW],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "pbx show",
        options: &[CONFIG, LEDGER, CATALOG, NOW],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "report billing",
        options: &[CONFIG, LEDGER],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "report overdue",
        options: &[CONFIG, LEDGER, OPERATOR, NOW],
        exits: &[EXIT_LEDGER, EXIT_MAIL],
    },
    Scope {
        path: "report expiring",
        options: &[CONFIG, LEDGER, NOW],
        exits: &[EXIT_LEDGER],
    },
    Scope {
        path: "completions",
        options: &[],
        exits: &[],
    },
    Scope {
        path: "man",
        options: &[],
        exits: &[],
    },
    Scope {
        path: "demo",
        options: &[],
        exits: &[],
    },
];

/// The scope of the command at `path`: its own, or for a group of
/// commands (`ledger`) the union of its members'; `None` for a command
/// [`SCOPES`] does not know.
fn scope_of(path: &str) -> Option<(Vec<&'static str>, Vec<u8>)> {
    let prefix = format!("{path} ");
    let members: Vec<&Scope> = SCOPES
        .iter()
        .filter(|s| s.path == path || s.path.starts_with(&prefix))
        .collect();
    if members.is_empty() {
        return None;
    }
    let options = SHARED
        .into_iter()
        .filter(|o| members.iter().any(|s| s.options.contains(o)))
        .collect();
    let mut exits: Vec<u8> = members
        .iter()
        .flat_map(|s| s.exits.iter().copied())
        .collect();
    exits.sort_unstable();
    exits.dedup();
    Some((options, exits))
}

/// The exit code table: every code, or 0, 1, `exits` and the output
/// failure.
fn exit_codes_help(exits: Option<&[u8]>) -> String {
    let mut text = String::from("Exit codes:");
    for (code, meaning) in EXIT_CODES {
        let shown = match exits {
            None => true,
            Some(e) => [EXIT_OK, EXIT_USAGE, EXIT_OUTPUT].contains(code) || e.contains(code),
        };
        if shown {
            text.push_str(&format!("\n  {code}  {meaning}"));
        }
    }
    text
}

/// The command line of `tessera` as the binary, its man pages and its
/// completions see it: each command's help shows only the shared options
/// (`--ledger`, `--catalog`, `--operator`, `--now`, `--config`) and the
/// exit codes that command has.
#[must_use]
pub fn command() -> clap::Command {
    let shown =
        |path: &str, id: &str| scope_of(path).is_none_or(|(options, _)| options.contains(&id));
    let cmd = tessera_cli::scope_globals(Cli::command(), &SHARED, Some(SHARED_HEADING), &shown);
    tessera_cli::for_each_command(cmd, &|cmd, path| {
        let exits = if path.is_empty() {
            None
        } else {
            scope_of(path).map(|(_, e)| e)
        };
        let notes = cmd
            .get_after_help()
            .map(|h| format!("{}\n\n", h.to_string().trim_end()))
            .unwrap_or_default();
        let table = exit_codes_help(exits.as_deref());
        cmd.after_help(format!("{notes}{table}\n"))
    })
}

/// The innermost matches (those of the command run).
fn leaf(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    tessera_cli::chosen(matches).1
}

/// Whether the command `matches` chose was given `--json`.
#[must_use]
pub fn json_requested(matches: &clap::ArgMatches) -> bool {
    matches!(leaf(matches).try_get_one::<bool>("json"), Ok(Some(true)))
}

/// The options written to, never read (`-` is standard output there).
const OUTPUTS: &[&str] = &["output", "out", "server_output", "qr_png", "qr_svg"];

/// The inputs of the chosen command given as `-` (standard input), as
/// `--name` or `FILE`.
fn stdin_inputs(m: &clap::ArgMatches) -> Vec<String> {
    m.ids()
        .map(clap::Id::as_str)
        .filter(|id| !OUTPUTS.contains(id))
        .filter(|id| {
            m.get_raw(id)
                .is_some_and(|mut values| values.any(|v| v == "-"))
        })
        .map(|id| {
            if id == "file" {
                "FILE".to_owned()
            } else {
                format!("--{}", id.replace('_', "-"))
            }
        })
        .collect()
}

/// Parses `args` (the program name first) with [`command`]; a shared
/// option given on the command line of a command that does not use it is
/// refused (it would be ignored), but for `--now`.
///
/// # Errors
/// `Err(Ok(e))` for clap's own errors (and `--help`, `--version`),
/// `Err(Err(Error::Usage))` for a shared option the command does not use.
pub fn parse_from(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> Result<(Cli, bool), Result<clap::Error, Error>> {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let matches = tessera_cli::parse(&command(), &args).map_err(Ok)?;
    let (path, _) = tessera_cli::chosen(&matches);
    if let Some((options, _)) = scope_of(&path) {
        // `--now` is a drill setting for a whole script: accepted (and
        // without effect) where a command has no use for the time.
        for id in SHARED.into_iter().filter(|id| *id != NOW) {
            let given = matches!(
                matches.value_source(id),
                Some(clap::parser::ValueSource::CommandLine)
            );
            if given && !options.contains(&id) {
                return Err(Err(Error::Usage(format!(
                    "`tessera {path}` does not use --{id}; leave it out (`tessera {path} --help` lists its options)"
                ))));
            }
        }
    }
    let stdin_readers = stdin_inputs(leaf(&matches));
    if stdin_readers.len() > 1 {
        return Err(Err(Error::Usage(format!(
            "standard input (`-`) can be read only once, but {} name it; give all but one as files",
            stdin_readers.join(", ")
        ))));
    }
    let json = json_requested(&matches);
    let cli = Cli::from_arg_matches(&matches).map_err(Ok)?;
    Ok((cli, json))
}

/// Options every command understands.
#[derive(Debug, Args, Default)]
pub struct Global {
    /// The configuration file (else TESSERA_CONFIG, ./tessera.toml,
    /// $XDG_CONFIG_HOME/tessera/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The ledger file (else TESSERA_LEDGER, `ledger` in the
    /// configuration); `tessera ledger init` creates it.
    #[arg(long, global = true, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// A catalog file instead of the embedded default (else
    /// TESSERA_CATALOG, `catalog` in the configuration).
    #[arg(long, global = true, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Who issues, recorded in the ledger (else TESSERA_OPERATOR,
    /// `operator` in the configuration, $USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub operator: Option<String>,
    /// Run as if the time were TIME (RFC 3339 or YYYY-MM-DD, UTC; else
    /// TESSERA_NOW): for rehearsals, drills and tests. Where the time
    /// counts, a warning says what it changes: what a command writes is
    /// dated then (issue time and lease of a license, ledger entries),
    /// what it shows is as of then (states, leases, verdicts).
    #[arg(
        long,
        global = true,
        env = "TESSERA_NOW",
        hide_env_values = true,
        value_name = "TIME"
    )]
    pub now: Option<String>,
}

/// The signing key and the keyring it must be active in.
#[derive(Debug, Args, Clone, Default)]
pub struct KeyArgs {
    /// The signing key: an encrypted key file (PEM), or a key in a PKCS#11
    /// token as an RFC 7512 URI (`pkcs11:token=...;object=...`) (else
    /// TESSERA_KEY, `key` in the configuration). Twice during a key
    /// rotation: the keyring's key active now signs.
    #[arg(long, value_name = "FILE|URI")]
    pub key: Vec<PathBuf>,
    /// Read the key's passphrase from the first line of FILE (else
    /// TESSERA_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Refuse to sign unless the key is the keyring's active key and
    /// valid now (else TESSERA_KEYRING, `keyring` in the configuration).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The PKCS#11 module and PIN, for a key in a token.
    #[command(flatten)]
    pub token: Pkcs11Args,
}

/// The overdue notice's SMTP settings (`report overdue --notify`); each
/// wins over `[notify]` in the configuration. The password is never an
/// argument: `--smtp-password-file`, `TESSERA_SMTP_PASSWORD` or
/// `password_file`.
#[derive(Debug, Args, Clone, Default)]
#[group(requires = "notify")]
pub struct NotifyArgs {
    /// SMTP server (host name or IP address).
    #[arg(long, value_name = "HOST")]
    pub smtp: Option<String>,
    /// SMTP port (default: 587 for starttls, 465 for tls, 25 for none).
    #[arg(long, value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// How the connection is protected: starttls (default), tls, or none
    /// (only to a server on this machine, or with `insecure_plaintext =
    /// true` in [notify]).
    #[arg(long, value_name = "MODE", value_parser = ["starttls", "tls", "none"])]
    pub smtp_tls: Option<String>,
    /// A CA certificate (PEM) the server's certificate may chain to,
    /// besides the system's.
    #[arg(long, value_name = "FILE")]
    pub smtp_ca: Option<PathBuf>,
    /// SMTP login name.
    #[arg(long, value_name = "NAME")]
    pub smtp_user: Option<String>,
    /// Read the SMTP password from the first line of FILE (else
    /// TESSERA_SMTP_PASSWORD, else `password_file`).
    #[arg(long, value_name = "FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// The sender's address.
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// A recipient (repeat for several: one mail each).
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
}

/// How to reach a key in a PKCS#11 token (`--key pkcs11:...`).
#[derive(Debug, Args, Clone, Default)]
pub struct Pkcs11Args {
    /// The token's PKCS#11 library (else the URI's module-path).
    #[arg(
        long,
        env = "TESSERA_PKCS11_MODULE",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub pkcs11_module: Option<PathBuf>,
    /// Read the token's user PIN from the first line of FILE (else
    /// TESSERA_PKCS11_PIN, else a prompt; never on the command line).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

/// Where a license goes.
#[derive(Debug, Args, Clone)]
pub struct OutArgs {
    /// Write the license to FILE (`-`: standard output, the default).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print the summary as JSON on standard output (needs -o FILE).
    #[arg(long)]
    pub json: bool,
    /// Also write the license as a QR code PNG image to FILE (for a phone
    /// to carry to an air-gapped PBX; `tessera-agent install FILE` reads it).
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,
    /// Also write the license as a QR code SVG image to FILE.
    #[arg(long, value_name = "FILE")]
    pub qr_svg: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a signing key: encrypted private key, `.pub` SPKI PEM, and
    /// an entry in a keyring file (active if it is the first key).
    #[command(after_help = after_help("\
Examples:
  TESSERA_PASSPHRASE=... tessera keygen -o signing.pem --keyring keyring.toml
  tessera keygen -o 2027.pem --keyring keyring.toml --label '2027 key' \\
      --valid-from 2027-01-01 --passphrase-file pass.txt
  TESSERA_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so tessera keygen \\
      --pkcs11 'pkcs11:token=Vendor;object=tessera-2027' --pin-file pin.txt \\
      --keyring keyring.toml --label '2027 HSM key'

"))]
    Keygen(KeygenArgs),
    /// Show the public half of a key.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera key public --key signing.pem.pub

"))]
    Key(KeyCommand),
    /// Manage the keyring firmware trusts.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera keyring list --keyring keyring.toml
  tessera keyring export --keyring keyring.toml --format c -o tessera_keyring.h

"))]
    Keyring(KeyringCommand),
    /// Show the settings in effect (ledger, keyring, key, catalog,
    /// operator, request window) and where each one comes from.
    #[command(after_help = after_help("\
Examples:
  tessera config
  tessera --config /srv/tessera/tessera.toml config --json

A setting comes from its option, else its environment variable, else the
configuration file: --config FILE or TESSERA_CONFIG, else ./tessera.toml,
else $XDG_CONFIG_HOME/tessera/config.toml (~/.config/tessera/config.toml).
Paths in the file are relative to its folder:
  ledger = \"/srv/tessera/ledger.db\"
  keyring = \"/srv/tessera/keyring.toml\"
  key = \"/srv/tessera/signing.pem\"
  catalog = \"/srv/tessera/catalog.toml\"
  request_window = \"30d\"

"))]
    Config(ConfigArgs),
    /// Show the catalog.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera catalog show --summary

"))]
    Catalog(CatalogCommand),
    /// Issue a license for an order and a device request (or many, with
    /// --bulk).
    #[command(after_help = after_help("\
Examples:
  tessera issue --order order.toml --request device.req --key signing.pem -o device.lic
  tessera issue --order more-users.toml --request device-2.req --change -o device.lic --force
  tessera issue --order fewer.toml --request device-3.req --change --approval APP-17 -o device.lic
  tessera issue --bulk rollout.csv --order base-order.toml -o licenses/ --key signing.pem

A first activation of a HW appliance (request with a HW serial, no SW
serial) gets a new SW serial SW-YYYY-NNNNNN; the HW serial becomes the
license's previous serial. The summary goes to standard error.

A request is answered once (its nonce is recorded with the license): the
same request file again, with the same order, writes the license that
answered it again, byte for byte (exit 0), while it is the PBX's latest;
after a later license, or with another order, it is refused (exit 2) and
the device makes a new request. A change with --change therefore needs a
new request from the device (`tessera modify` changes without one).

--request also takes the binary request or a photo or screenshot (PNG,
JPEG) of the QR code the device shows.

--bulk CSV columns (one license per row): request (required, relative to
the CSV), order (else --order FILE), customer, pbx_name (override the
order's), extension, number, user (the user assignment), profile (its
count +1), base (its count +1; needed with add-ons), addon_1 .. addon_N
(each +1 on base), key (only to resume a run an earlier tessera started).
Example and details: issuer/examples/bulk.csv and issuer/README.md, \"Bulk
issuance\" (in the source tree).

"))]
    Issue(IssueArgs),
    /// Renew the license in force for a device's request: same content,
    /// sequence + 1, a new lease.
    #[command(after_help = after_help("\
Examples:
  tessera renew --request renewal.req --key signing.pem -o renewed.lic

A renewal on or after the last day of the term extends the term by one
cycle (auto-renewal). A request from a device whose binding was replaced is
refused.

The request must be signed by a device key that a request answered for the
PBX's current binding was signed with (a binding that recorded no key
trusts the first one); otherwise it is refused (exit 2): anyone who saw a
request file can copy it and sign the copy. A device whose storage was
wiped has a new key: confirm with the site, then accept the key with
--new-device-key (recorded in the ledger; `tessera ledger show SERIAL`).

A request is answered once (its nonce is recorded with the license, as
the online service records it): the same request file again writes the
license that answered it again, byte for byte (exit 0; the partner lost
the file), while it is the PBX's latest license; after a later license it
is refused as a replay (exit 2) and the device makes a new request
(`tessera-agent request`).

"))]
    Renew(RenewArgs),
    /// Change the license in force of a PBX: increases any time, decreases
    /// with an approval; same binding and term, sequence + 1.
    #[command(after_help = after_help("\
Examples:
  tessera modify --serial SW-2026-000001 --order more-users.toml -o changed.lic
  tessera modify --serial SW-2026-000001 --order fewer-users.toml --approval APP-2026-17 -o changed.lic
  tessera modify --serial SW-2026-000001 --order order.toml --request device.req -o changed.lic

The order is the whole PBX as it should be from now on. Decreases need
--approval REF, never on the last day of a month, never for lifetime
licenses; storage never decreases. A service added mid-term ends with the
term; the summary reports its prorated fraction. All user licenses removed:
the PBX stops after 5 days and is deleted after 14 (see `decommission`);
adding one back before the deletion cancels that. Refusals exit 2.
With --request the change answers that request, once: the same file again
(same order) writes the same license again while it is the latest; else
it is refused and the device makes a new request.

"))]
    Modify(ModifyArgs),
    /// Rebind a SW serial to a new device (RMA, HW <-> VM migration).
    #[command(after_help = after_help("\
Examples:
  tessera replace --serial SW-2026-000001 --request new-box.req --reason rma -o new-box.lic
  tessera replace --serial SW-2026-000001 --request vm.req --reason migrate -o vm.lic

The new device takes over name, entitlements, term and attached devices;
a new appliance's HW serial is converted to the SW serial. The old binding
is marked replaced and never renewed again: the old device stops at its
lease end plus grace, even when it is dead or unreachable. An RMA keeps the
platform; HW <-> VM is a migration. Refusals exit 2. The new device's
request is answered once: the same file again writes the same license
again while it is the PBX's latest; else it is refused (exit 2).

"))]
    Replace(ReplaceArgs),
    /// Share a server PBX's user licenses with a client PBX (failover).
    #[command(after_help = after_help("\
Examples:
  tessera share --server SW-2026-700001 --client SW-2026-500001 --request client.req \\
      -o client.lic --server-output server.lic
  tessera share --server SW-2026-700001 --client SW-2026-000007 -o client.lic

The client license carries no entitlements of its own, only the server's
serial; the server's license is re-issued once with the server role. Both
PBXs belong to one customer; the server has user licenses and is not a
client; a Cloud PBX can only be a server; the client has no licenses of
its own. A client without a license yet needs its --request. Refusals exit
2. The client's request is answered once: the same file again writes the
client's license again while it is its latest (the server's license:
`tessera ledger show SERVER --license`); else it is refused (exit 2).

"))]
    Share(ShareArgs),
    /// Void a license issued in error: supersede it with the next sequence
    /// (the ledger keeps both).
    #[command(after_help = after_help("\
Examples:
  tessera ledger show SW-2026-000001
  tessera void --license SW-2026-000001:3 --reason 'PBX-BASIC 200 typed for 20' -o void.lic
  tessera void --license 3f9a0c52d1e84b7a9c0e6f1d2b3a4c5e --reason 'wrong customer' -o void.lic

Only the license in force, within 1 business day of its issue (until the
end of the next business day, UTC: not a Saturday, a Sunday or one of the
catalog's [calendar] holidays). The void restores the license
before it; the void of a first activation grants nothing (the PBX locks)
until the right license is issued with `tessera issue`. Refusals exit 2.

"))]
    Void(VoidArgs),
    /// Decrease a PBX to zero user licenses: it stops after 5 days and is
    /// deleted after 14, unless a user license is added back before.
    #[command(after_help = after_help("\
Examples:
  tessera decommission --serial SW-2026-000001 --approval APP-2026-40 -o zero.lic
  tessera modify --serial SW-2026-000001 --order one-user.toml -o back.lic   # undo

A decrease: it needs --approval REF, never on the last day of a month,
never for lifetime licenses. The license ends at the stop, without grace
(locked). Refusals exit 2.

"))]
    Decommission(DecommissionArgs),
    /// Show what a license file says, with catalog names.
    #[command(after_help = after_help("\
Examples:
  tessera inspect device.lic
  tessera inspect device.lic --keyring keyring.toml --json
  cat mail.txt | tessera inspect -

"))]
    Inspect(InspectArgs),
    /// Verify a license as firmware would.
    #[command(after_help = after_help("\
Examples:
  tessera verify device.lic --keyring keyring.toml
  tessera verify device.lic --keyring keyring.toml --device-identity device.toml --at 2026-06-01

A device identity file (TOML) holds raw values as the device reads them:
  sw_serial = \"SW-2026-000001\"      # optional
  hw_serial = \"HW-7F3A-0042\"        # optional, also a component
  [[component]]
  kind = \"nic_mac\"    # hw_serial cpu_id nic_mac ip_addr system_uuid disk_serial device_key machine_id
  value = \"00:16:3E:5A:1B:2C\"

"))]
    Verify(VerifyArgs),
    /// The PBX registry: add a PBX (allocating its SW serial) before its
    /// first license, list, show and edit them.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera pbx add --customer 'Acme GmbH' --name 'Acme HQ' --model VM-500 --platform vm \\
      --cycle yearly --profile PBX-BASIC=20 --profile UC-BUSINESS=5 --key signing.pem
  tessera pbx list --state active --platform vm
  tessera pbx show SW-2026-000001
  tessera pbx edit SW-2026-000001 --policy appliance-72h-locked --approval CHG-1234 --key signing.pem

"))]
    Pbx(PbxCommand),
    /// Query and check the ledger.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera ledger list
  tessera ledger show SW-2026-000001
  tessera ledger verify

"))]
    Ledger(LedgerCommand),
    /// Reports for vendor operations.
    #[command(subcommand, after_help = after_help("\
Examples:
  tessera report overdue
  tessera report expiring --within 30

"))]
    Report(ReportCommand),
    /// Print shell completions.
    #[command(after_help = after_help("\
Examples:
  tessera completions bash > /etc/bash_completion.d/tessera
  tessera completions zsh > ~/.zfunc/_tessera

"))]
    Completions(CompletionsArgs),
    /// Print the man page (or write one per command into a folder).
    #[command(after_help = after_help("\
Examples:
  tessera man | man -l -
  tessera man -o share/man/man1

"))]
    Man(ManArgs),
    /// Run the whole flow on built-in samples: issue, verify as firmware,
    /// then 20 days offline past the lease end.
    #[command(after_help = after_help("\
Examples:
  cargo run --release -p tessera-issuer -- demo

Uses a temporary key, ledger and keyring in a temporary folder; needs no
passphrase and no network.

"))]
    Demo,
}

/// `tessera config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `tessera keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The encrypted private key file to create (the public key goes to
    /// FILE.pub; missing folders are created, mode 0700).
    #[arg(
        short = 'o',
        long,
        visible_alias = "output",
        value_name = "FILE",
        required_unless_present = "pkcs11",
        conflicts_with = "pkcs11"
    )]
    pub out: Option<PathBuf>,
    /// Create the key pair in a PKCS#11 token instead, named by an RFC 7512
    /// URI (`pkcs11:token=...;object=LABEL`), or adopt the Ed25519 key the
    /// URI already names; the private key never leaves the token.
    #[arg(long, value_name = "URI", conflicts_with = "passphrase_file")]
    pub pkcs11: Option<String>,
    /// The PKCS#11 module and PIN, with --pkcs11.
    #[command(flatten)]
    pub token: Pkcs11Args,
    /// Add the key to this keyring file (created if missing; the key
    /// becomes active when it is the first; else TESSERA_KEYRING,
    /// `keyring` in the configuration).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The keyring named is a copy to rehearse on: let a rehearsal time
    /// (--now, TESSERA_NOW) change it. Without it such a time is refused
    /// on any keyring, and on the configured one (TESSERA_KEYRING,
    /// `keyring` in tessera.toml) always.
    #[arg(long)]
    pub rehearsal_copy: bool,
    /// A label for people.
    #[arg(long, default_value = "tessera signing key")]
    pub label: String,
    /// Start of the key's validity window (default: now).
    #[arg(long, value_name = "TIME")]
    pub valid_from: Option<String>,
    /// Read the new passphrase from the first line of FILE (`-`:
    /// standard input; else TESSERA_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Print the new key (kid, files, keyring, public key) as JSON on
    /// standard output.
    #[arg(long)]
    pub json: bool,
}

/// `tessera key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the kid and SPKI PEM of a key (private key file: needs its
    /// passphrase; `.pub` file: none).
    #[command(after_help = after_help("\
Examples:
  tessera key public --key signing.pem.pub
  TESSERA_PASSPHRASE=... tessera key public --key signing.pem

"))]
    Public {
        /// The key file, or a key in a PKCS#11 token (RFC 7512 URI) (else
        /// TESSERA_KEY, `key` in the configuration).
        #[arg(long, value_name = "FILE|URI")]
        key: Option<PathBuf>,
        /// Read the passphrase from the first line of FILE.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// The PKCS#11 module and PIN, for a key in a token.
        #[command(flatten)]
        token: Pkcs11Args,
    },
}

/// Keyring export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Rust source defining `KEYRING`.
    Rust,
    /// A C99 header.
    C,
    /// CBOR.
    Cbor,
}

/// `tessera keyring`.
#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Add a public key (from a `.pub` file).
    #[command(after_help = after_help("\
Examples:
  tessera keyring add --keyring keyring.toml --public 2027.pem.pub --valid-from 2027-01-01
  tessera keyring add --keyring keyring.toml --public signing.pem.pub --activate

Without --valid-from the key is valid from now, or from the first license
or checkpoint it signed in the ledger the configuration names when that is
earlier (printed): a later start would make the licenses it signed before
invalid at the sites. A --valid-from after that time is kept, with a
warning. A key already in the keyring is refused; to change its window,
edit its valid_from or valid_until in the keyring file (TOML).

"))]
    Add {
        /// The keyring file, created if missing (else TESSERA_KEYRING,
        /// `keyring` in the configuration).
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// The keyring named is a copy to rehearse on: let a rehearsal time
        /// (--now, TESSERA_NOW) change it. Without it such a time is refused
        /// on any keyring, and on the configured one (TESSERA_KEYRING,
        /// `keyring` in tessera.toml) always.
        #[arg(long)]
        rehearsal_copy: bool,
        /// The public key (SPKI PEM).
        #[arg(long, value_name = "FILE")]
        public: PathBuf,
        /// A label for people.
        #[arg(long, default_value = "tessera signing key")]
        label: String,
        /// Start of the validity window (default: now, or the first
        /// license or checkpoint the key signed in the ledger, if earlier).
        #[arg(long, value_name = "TIME")]
        valid_from: Option<String>,
        /// End of the validity window (default: open-ended).
        #[arg(long, value_name = "TIME")]
        valid_until: Option<String>,
        /// Make it the active signing key.
        #[arg(long)]
        activate: bool,
    },
    /// Retire a key: from the next firmware export on it verifies nothing.
    #[command(after_help = after_help("\
Examples:
  tessera keyring retire --keyring keyring.toml 34750f98bd59fcfc

"))]
    Retire {
        /// The keyring file (else TESSERA_KEYRING, `keyring` in the
        /// configuration).
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// The keyring named is a copy to rehearse on: let a rehearsal time
        /// (--now, TESSERA_NOW) change it. Without it such a time is refused
        /// on any keyring, and on the configured one (TESSERA_KEYRING,
        /// `keyring` in tessera.toml) always.
        #[arg(long)]
        rehearsal_copy: bool,
        /// The key id (16 hex digits).
        kid: String,
    },
    /// Make a key the active signing key, now or at a scheduled time.
    #[command(after_help = after_help("\
Examples:
  tessera keyring activate --keyring keyring.toml 6a3803d5f059902a
  tessera keyring activate --keyring keyring.toml 6a3803d5f059902a --at 2027-01-01T00:00:00Z

A key whose validity window has not started is not made active now
(nothing could sign until then): schedule the switch with --at instead.
From that time on the key signs by itself, with no pause in issuing, as
long as tessera has both key files (`key = [\"old.pem\", \"new.pem\"]` in
tessera.toml, or --key twice). A switch is refused when the key active
until then expires before it.

"))]
    Activate {
        /// The keyring file (else TESSERA_KEYRING, `keyring` in the
        /// configuration).
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// The keyring named is a copy to rehearse on: let a rehearsal time
        /// (--now, TESSERA_NOW) change it. Without it such a time is refused
        /// on any keyring, and on the configured one (TESSERA_KEYRING,
        /// `keyring` in tessera.toml) always.
        #[arg(long)]
        rehearsal_copy: bool,
        /// The key id (16 hex digits).
        kid: String,
        /// Switch at TIME (RFC 3339 or YYYY-MM-DD, UTC) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// List the keys.
    #[command(after_help = after_help("\
Examples:
  tessera keyring list --keyring keyring.toml
  tessera keyring list --keyring keyring.toml --json

"))]
    List {
        /// The keyring file (else TESSERA_KEYRING, `keyring` in the
        /// configuration).
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export the keyring for firmware.
    #[command(after_help = after_help("\
Examples:
  tessera keyring export --keyring keyring.toml --format rust -o keyring.rs
  tessera keyring export --keyring keyring.toml --format c -o tessera_keyring.h
  tessera keyring export --keyring keyring.toml --format cbor -o keyring.cbor

The file holds public keys only and is readable by all (mode 0644 less the
umask); the files of other commands are owner-only (0600), the keyring
and the .pub file of `keygen` apart.

"))]
    Export {
        /// The keyring file (else TESSERA_KEYRING, `keyring` in the
        /// configuration).
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file (`-`: standard output, the default).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
    },
}

/// `tessera catalog`.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Print the catalog in use (checked first): the embedded default, or
    /// the file given with --catalog.
    #[command(after_help = after_help("\
Examples:
  tessera catalog show > my-catalog.toml
  tessera --catalog my-catalog.toml catalog show --summary

"))]
    Show {
        /// A short summary with codes instead of the TOML text.
        #[arg(long)]
        summary: bool,
    },
    /// Print an example order with every field, each explained in a
    /// comment: the format of `--order FILE` (issue, modify, replace,
    /// share, bulk runs).
    #[command(after_help = after_help("\
Examples:
  tessera catalog example-order > order.toml

The names in it (profiles, features, bases, add-ons, services) are the
embedded default catalog's: with another catalog, take its names from
`tessera catalog show --summary`. Only customer, platform, cycle and
term_start are required.

"))]
    ExampleOrder,
}

/// `tessera issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The order (TOML, or JSON for a `.json` file).
    #[arg(long, value_name = "FILE", required_unless_present = "bulk")]
    pub order: Option<PathBuf>,
    /// The device's request file: armored TESSERA REQUEST text, the
    /// binary request, or a photo or screenshot (PNG, JPEG) of its QR code.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "bulk",
        conflicts_with = "bulk"
    )]
    pub request: Option<PathBuf>,
    /// The order changes the license in force for this serial
    /// (increases any time; decreases need --approval).
    #[arg(long, conflicts_with = "bulk")]
    pub change: bool,
    /// Accept a device key this PBX never used (with --change): the request is signed by
    /// a new key (the device's storage was wiped or replaced). Confirm
    /// with the site first; the acceptance is recorded in the ledger.
    #[arg(long, requires = "change")]
    pub new_device_key: bool,
    /// With --new-device-key: withdraw every other device key of the
    /// binding in the same transaction (the old `device.key` was lost or
    /// stolen): requests signed by them are refused from then on, offline
    /// and online. Recorded in the ledger; voiding the license undoes it.
    #[arg(long, requires = "new_device_key")]
    pub retire_old_keys: bool,
    /// Vendor approval reference for a decrease.
    #[arg(long, value_name = "REF")]
    pub approval: Option<String>,
    /// Issue one license per row of a CSV file (its columns: below);
    /// -o names the output folder.
    #[arg(long, value_name = "CSV")]
    pub bulk: Option<PathBuf>,
    /// Rows per durable transaction in --bulk mode.
    #[arg(long, default_value_t = 256, value_name = "N", requires = "bulk")]
    pub batch_size: usize,
    /// Signing threads in --bulk mode, 1 to 64 (default: the number of
    /// CPUs, at most 8).
    #[arg(
        long,
        value_name = "N",
        requires = "bulk",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64)
    )]
    pub threads: Option<usize>,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The device's renewal request: armored TESSERA REQUEST text, the
    /// binary request, or a photo or screenshot (PNG, JPEG) of its QR code.
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    /// Accept a device key this PBX never used: the request is signed by
    /// a new key (the device's storage was wiped or replaced). Confirm
    /// with the site first; the acceptance is recorded in the ledger.
    #[arg(long)]
    pub new_device_key: bool,
    /// With --new-device-key: withdraw every other device key of the
    /// binding in the same transaction (the old `device.key` was lost or
    /// stolen): requests signed by them are refused from then on, offline
    /// and online. Recorded in the ledger; voiding the license undoes it.
    #[arg(long, requires = "new_device_key")]
    pub retire_old_keys: bool,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera modify`.
#[derive(Debug, Args)]
pub struct ModifyArgs {
    /// The SW serial (or the HW serial it was converted from).
    #[arg(long, value_name = "SERIAL")]
    pub serial: String,
    /// The order: the whole PBX as it should be from now on.
    #[arg(long, value_name = "FILE")]
    pub order: PathBuf,
    /// A request from the licensed device: rebind to its identity (else
    /// the binding in force is kept).
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Accept a device key this PBX never used: the request is signed by
    /// a new key (the device's storage was wiped or replaced). Confirm
    /// with the site first; the acceptance is recorded in the ledger.
    #[arg(long, requires = "request")]
    pub new_device_key: bool,
    /// With --new-device-key: withdraw every other device key of the
    /// binding in the same transaction (the old `device.key` was lost or
    /// stolen): requests signed by them are refused from then on, offline
    /// and online. Recorded in the ledger; voiding the license undoes it.
    #[arg(long, requires = "new_device_key")]
    pub retire_old_keys: bool,
    /// Vendor approval reference for a decrease.
    #[arg(long, value_name = "REF")]
    pub approval: Option<String>,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// Why a binding is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReasonArg {
    /// A new unit for a broken one (same platform).
    Rma,
    /// A move to another system (HW <-> VM, another host).
    Migrate,
}

/// `tessera replace`.
#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The SW serial to rebind.
    #[arg(long, value_name = "SERIAL")]
    pub serial: String,
    /// The new device's request.
    #[arg(long, value_name = "FILE")]
    pub request: PathBuf,
    /// Why: `rma` (a new unit of the same platform) or `migrate`.
    #[arg(long, value_enum)]
    pub reason: ReasonArg,
    /// The new device's model (recorded in the registry; default: the
    /// model recorded).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The server PBX (SW serial): its user licenses are shared.
    #[arg(long, value_name = "SERIAL")]
    pub server: String,
    /// The client PBX (SW serial, or the HW serial of an appliance not
    /// activated yet).
    #[arg(long, value_name = "SERIAL")]
    pub client: String,
    /// The client's request: needed when the client has no license yet;
    /// otherwise it rebinds the client to it.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Accept a device key this PBX never used: the request is signed by
    /// a new key (the device's storage was wiped or replaced). Confirm
    /// with the site first; the acceptance is recorded in the ledger.
    #[arg(long, requires = "request")]
    pub new_device_key: bool,
    /// With --new-device-key: withdraw every other device key of the
    /// binding in the same transaction (the old `device.key` was lost or
    /// stolen): requests signed by them are refused from then on, offline
    /// and online. Recorded in the ledger; voiding the license undoes it.
    #[arg(long, requires = "new_device_key")]
    pub retire_old_keys: bool,
    /// Name of a client that has no license yet (default: the name the
    /// PBX registry has for it, if `tessera pbx add` entered it).
    #[arg(long, value_name = "NAME")]
    pub pbx_name: Option<String>,
    /// Write the server's re-issued license (server role) to FILE.
    #[arg(long, value_name = "FILE")]
    pub server_output: Option<PathBuf>,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output of the client license.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera void`.
#[derive(Debug, Args)]
pub struct VoidArgs {
    /// The license: its id (32 hex digits) or SERIAL:SEQUENCE, as
    /// `tessera ledger show SERIAL` lists them.
    #[arg(long, value_name = "ID")]
    pub license: String,
    /// What was wrong (recorded in the ledger).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera decommission`.
#[derive(Debug, Args)]
pub struct DecommissionArgs {
    /// The SW serial (or the HW serial it was converted from).
    #[arg(long, value_name = "SERIAL")]
    pub serial: String,
    /// Vendor approval reference (a decrease needs one).
    #[arg(long, value_name = "REF")]
    pub approval: Option<String>,
    /// Signing key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output.
    #[command(flatten)]
    pub out: OutArgs,
}

/// `tessera inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The license file (armored or binary; `-`: standard input).
    pub file: PathBuf,
    /// Check the signature against this keyring (else TESSERA_KEYRING,
    /// `keyring` in the configuration).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `tessera verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The license file (armored or binary; `-`: standard input).
    pub file: PathBuf,
    /// The keyring firmware trusts (else TESSERA_KEYRING, `keyring` in
    /// the configuration).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// The device's identity (TOML, raw values); without it the binding
    /// is not checked.
    #[arg(long, value_name = "FILE")]
    pub device_identity: Option<PathBuf>,
    /// Verify at this time instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Ledger export formats.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ExportKind {
    /// CSV, one row per license.
    #[arg(long)]
    pub csv: bool,
    /// JSON, with orders and armored licenses.
    #[arg(long)]
    pub json: bool,
}

/// `tessera ledger`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Create the ledger: a new file holding its identity (ledger id,
    /// vendor id, creation time) and its first checkpoint.
    #[command(after_help = after_help("\
Examples:
  tessera --ledger /srv/tessera/ledger.db ledger init --key signing.pem --keyring keyring.toml
  tessera --ledger postgres://tessera@db.example/tessera ledger init --key signing.pem

The only command that creates a ledger: it refuses an existing file (or a
database that holds a ledger; a PostgreSQL ledger's password comes from
PGPASSWORD or a password file, never from the URL). The
vendor id comes from the catalog; the signing key signs the first
checkpoint (as it signs one after every later transaction). Name the
ledger in tessera.toml (`ledger = \"/srv/tessera/ledger.db\"`) so that
every command finds it.

"))]
    Init {
        /// Signing key.
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Carry a ledger of an earlier tessera (schema 1 or 2, before the
    /// journal) over into a new ledger; the old file is only read.
    #[command(after_help = after_help("\
Examples:
  tessera ledger upgrade --from /srv/tessera/ledger.db --ledger /srv/tessera/ledger-v3.db \\
      --key signing.pem --keyring keyring.toml
  tessera ledger verify --ledger /srv/tessera/ledger-v3.db

The old ledger's hash chain is checked first (exit 4 names its first bad
row) and every license against the keyring. Each of its licenses, HW → SW
conversions, serial counters, schedules, events, replaced bindings and
request keys becomes a journal entry of the new ledger, in the order of
its rows, after an entry naming the old chain's head; a row today's rules
refuse is named, and nothing is written. The new ledger appears complete
(verified, with its first checkpoint) or not at all. Point `ledger` in
tessera.toml at it and keep the old file as an archive.

"))]
    Upgrade {
        /// The ledger of the earlier tessera (only read).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Signing key (signs the new ledger's checkpoint) and the keyring
        /// every old license must verify under.
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Copy the ledger into a new PostgreSQL ledger and verify the copy.
    #[command(after_help = after_help("\
Examples:
  export PGPASSFILE=/etc/tessera/pgpass     # or PGPASSWORD; never in the URL
  tessera --ledger /srv/tessera/ledger.db ledger migrate \\
      --to postgres://tessera@db.example/tessera --keyring keyring.toml
  tessera --ledger postgres://tessera@db.example/tessera ledger verify

The source (--ledger) is verified first and read in one snapshot: stop
every writer of it before the copy. The target database must hold no
ledger. The copy is the same ledger moved: same ledger id, entries,
hashes and signed checkpoints (checkpoints kept elsewhere still apply).
It is verified with the same keyring and must end at the source's head;
a copy that does not is removed again. Then point `ledger` in
tessera.toml at the URL and keep the file as an archive.

"))]
    Migrate {
        /// The target: postgres://USER@HOST[:PORT]/DATABASE (the password
        /// from PGPASSWORD, PGPASSFILE or ~/.pgpass).
        #[arg(long, value_name = "URL")]
        to: PathBuf,
        /// The vendor's keyring (else TESSERA_KEYRING, `keyring` in the
        /// configuration): the source and the copy are verified with it.
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
    },
    /// Print the latest checkpoint: the vendor key's signature over the
    /// ledger id, the number of entries and the hash of the last one.
    #[command(after_help = after_help("\
Examples:
  tessera ledger head -o /mnt/offsite/ledger-2026-12-06.ckpt
  tessera ledger head | mail -s 'tessera ledger head' audit@example.com
  tessera ledger verify --expect-head /mnt/offsite/ledger-2026-12-06.ckpt

Keep checkpoints away from the ledger's machine (another host, a ticket,
a mail): `ledger verify --expect-head FILE` then proves that the ledger
still holds everything it held when FILE was made.

"))]
    Head {
        /// Write the checkpoint to FILE (`-`: standard output, the default).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// One line per SW serial: latest sequence, customer, platform, lease.
    #[command(after_help = after_help("\
Examples:
  tessera ledger list
  tessera --ledger /srv/tessera/ledger.db ledger list --json

"))]
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Every license of a serial (SW serial, or the HW serial it was
    /// converted from), its schedule and devices.
    #[command(after_help = after_help("\
Examples:
  tessera ledger show SW-2026-000001
  tessera ledger show HW-7F3A-0042 --license > resend.lic

"))]
    Show {
        /// SW or HW serial.
        serial: String,
        /// Print the latest license, armored, instead.
        #[arg(long)]
        license: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Check the whole ledger: hash chain, views, every license signature
    /// and every checkpoint; optionally against a checkpoint kept
    /// elsewhere.
    #[command(after_help = after_help("\
Examples:
  tessera ledger verify --keyring keyring.toml
  tessera ledger verify --expect-head /mnt/offsite/ledger-2026-12-06.ckpt

Exit code 4 names the first bad entry: an edited, deleted, inserted or
reordered entry, a view that differs from the journal, a license or
checkpoint that does not verify under the keyring, a journal cut off
before a checkpoint. A ledger cut off together with its own checkpoints
is found only against a checkpoint kept elsewhere (--expect-head).

"))]
    Verify {
        /// The vendor's keyring (else TESSERA_KEYRING, `keyring` in the
        /// configuration): every signature is checked against it.
        #[arg(long, value_name = "FILE")]
        keyring: Option<PathBuf>,
        /// A checkpoint kept elsewhere (`tessera ledger head`; `-`:
        /// standard input): the ledger must hold it.
        #[arg(long, value_name = "FILE")]
        expect_head: Option<PathBuf>,
        /// Print the result as JSON on standard output (a failure is the
        /// JSON error, exit 4).
        #[arg(long)]
        json: bool,
    },
    /// Export every license, one row each.
    ///
    /// A row: serial, sequence, license id, action, operator, times,
    /// customer, PBX name, platform, the order and the license itself.
    /// The PBX registry, events, charges and checkpoints are not in it
    /// (`tessera pbx list`, `tessera ledger show`, `tessera report
    /// billing`, `tessera ledger head`).
    #[command(after_help = after_help("\
Examples:
  tessera ledger export --csv -o ledger.csv
  tessera ledger export --json > ledger.json

"))]
    Export {
        /// Format.
        #[command(flatten)]
        kind: ExportKind,
        /// Output file (`-`: standard output, the default).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
    },
}

/// `--platform` of `pbx add|list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlatformArg {
    /// Vendor appliance.
    Hw,
    /// Virtual machine.
    Vm,
    /// Vendor-hosted.
    Cloud,
}

impl PlatformArg {
    /// The platform.
    #[must_use]
    pub fn platform(self) -> tessera_verifier::claims::Platform {
        use tessera_verifier::claims::Platform;
        match self {
            Self::Hw => Platform::Hw,
            Self::Vm => Platform::Vm,
            Self::Cloud => Platform::Cloud,
        }
    }
}

/// `--cycle` of `pbx add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CycleArg {
    /// One calendar month.
    Monthly,
    /// Twelve calendar months.
    Yearly,
    /// Sixty calendar months.
    #[value(name = "5y")]
    FiveYears,
    /// No term end (not for Cloud).
    Lifetime,
}

impl CycleArg {
    /// The cycle.
    #[must_use]
    pub fn cycle(self) -> tessera_verifier::claims::Cycle {
        use tessera_verifier::claims::Cycle;
        match self {
            Self::Monthly => Cycle::Monthly,
            Self::Yearly => Cycle::Yearly,
            Self::FiveYears => Cycle::FiveYears,
            Self::Lifetime => Cycle::Lifetime,
        }
    }
}

/// `--state` of `pbx list` (and the STATE column of reports and lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateArg {
    /// Added, no license yet.
    Registered,
    /// Licensed and in force (a scheduled stop still ahead).
    Active,
    /// Stopped after all its user licenses were removed.
    Stopped,
    /// Deleted after its stop.
    Deleted,
    /// A replacement (RMA, migration) superseded a binding of it: the PBX
    /// runs on the new device, in whichever state above.
    Replaced,
}

/// `tessera pbx`.
#[derive(Debug, Subcommand)]
pub enum PbxCommand {
    /// Add a PBX to the registry: allocates and prints its SW serial,
    /// which its agent presents at activation (VM and Cloud must).
    #[command(after_help = after_help("\
Examples:
  tessera pbx add --customer 'Acme GmbH' --name 'Acme HQ' --model VM-500 --platform vm \\
      --cycle yearly --profile PBX-BASIC=20 --profile UC-BUSINESS=5 --key signing.pem
  tessera pbx add --customer Acme --name 'Acme cloud' --model C-1 --platform cloud \\
      --cycle monthly --profile UC-PREMIUM=3 --storage 4 --json --key signing.pem
  tessera pbx add --customer Acme --name 'Acme branch' --model TA-7000 --platform hw \\
      --cycle yearly --profile PBX-BASIC=10 --hw-serial HW-7F3A-0042 --key signing.pem

The PBX records its policy (--policy NAME, else its platform's default in
the catalog) with every value; its licenses keep it whatever catalog later
commands run with. Storage (units of the catalog's unit_gb) is sold for
Cloud only; lifetime is not sold for Cloud. --hw-serial (hw only) records
the appliance's HW serial, normalized (trimmed, upper case), for this PBX:
its first activation converts it to the SW serial printed here; a HW serial
that is another PBX's already is refused. Refusals exit 2.

"))]
    Add(PbxAddArgs),
    /// List the registry: one line per PBX with its state.
    #[command(after_help = after_help("\
Examples:
  tessera pbx list
  tessera pbx list --customer 'Acme GmbH' --state stopped --state deleted
  tessera pbx list --platform cloud --csv > cloud.csv
  tessera pbx list --state replaced

STATE is the PBX's lifecycle state; `+replaced` follows it when an RMA or
a migration replaced a binding of the PBX (the PBX runs on the new device;
the old one is never renewed again). --state values add up: a PBX is listed
when any of them holds.

"))]
    List {
        /// Only this customer's PBXs (exact name).
        #[arg(long, value_name = "NAME")]
        customer: Option<String>,
        /// Only PBXs in these states (repeat for several).
        #[arg(long, value_enum)]
        state: Vec<StateArg>,
        /// Only PBXs of this platform.
        #[arg(long, value_enum)]
        platform: Option<PlatformArg>,
        /// JSON output.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV output.
        #[arg(long)]
        csv: bool,
    },
    /// Show a PBX: its registry entry, state, recorded policy (and how the
    /// catalog's policy of that name differs) and history.
    #[command(after_help = after_help("\
Examples:
  tessera pbx show SW-2026-000001
  tessera pbx show HW-7F3A-0042 --json

"))]
    Show {
        /// SW serial (or the HW serial converted to it).
        serial: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Change a PBX's recorded policy (with the approval that allows it),
    /// name or customer.
    #[command(after_help = after_help("\
Examples:
  tessera pbx edit SW-2026-000001 --policy appliance-72h-locked --approval CHG-1234 --key signing.pem
  tessera pbx edit SW-2026-000001 --name 'Acme HQ (new building)' --key signing.pem

The policy is the catalog's of that name, recorded with every value; the
next license of the PBX (renewal, change, replacement) carries it. The
change is a journal entry, shown by `tessera pbx show` and `tessera ledger
show`. Refusals exit 2.

"))]
    Edit(PbxEditArgs),
    /// Open online activation of a PBX: prints the one-time activation
    /// code its agent brings to `POST /v1/activate`.
    #[command(after_help = after_help("\
Examples:
  tessera pbx activation SW-2026-000123 --key signing.pem >> agent-toml-lines.txt
  tessera pbx activation HW-7F3A-0042 --valid-days 7 --json --key signing.pem

The online service activates a PBX the vendor entered (`tessera pbx add`)
only for a request that brings this code: a signed request proves only that
some device made it, and serials are easy to guess. Standard output is the
lines the site adds to its agent.toml:

  sw_serial = \"SW-2026-000123\"
  activation_code = \"7K3QD-9XW2M-TR4FZ-B8N6P\"

(for an appliance entered with --hw-serial, a comment naming its HW serial
instead of sw_serial: its agent presents the HW serial it reads). The code
is random (100 bits from the OS), shown once and never stored: the ledger
keeps its SHA-256 digest, and `tessera pbx show` / `ledger show` show only
until when it works. It works once: the PBX's first license uses it up
(after a void, open a new one). Running the command again replaces the
open code. A PBX with a license in force, a stopped or deleted PBX and a
serial the registry never allocated are refused (exit 2).

"))]
    Activation(PbxActivationArgs),
}

/// `tessera pbx activation`.
#[derive(Debug, Args)]
pub struct PbxActivationArgs {
    /// SW serial (or the HW serial of an appliance entered with
    /// --hw-serial).
    pub serial: String,
    /// Days the code works.
    #[arg(long, value_name = "DAYS", default_value_t = crate::activation::DEFAULT_VALID_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::activation::MAX_VALID_DAYS)))]
    pub valid_days: u32,
    /// Print `{serial, hw_serial, activation_code, valid_until}` as JSON.
    #[arg(long)]
    pub json: bool,
    /// Signing key (signs the ledger's checkpoint).
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `tessera pbx add`.
#[derive(Debug, Args)]
pub struct PbxAddArgs {
    /// Customer.
    #[arg(long, value_name = "NAME")]
    pub customer: String,
    /// PBX name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Model (appliance or image).
    #[arg(long, value_name = "MODEL")]
    pub model: String,
    /// Platform.
    #[arg(long, value_enum)]
    pub platform: PlatformArg,
    /// Payment cycle of every profile.
    #[arg(long, value_enum)]
    pub cycle: CycleArg,
    /// Users of a profile: CODE=COUNT (a catalog profile name; repeat).
    #[arg(long = "profile", value_name = "CODE=COUNT")]
    pub profiles: Vec<String>,
    /// A named policy of the catalog (default: the platform's).
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Storage units (Cloud only).
    #[arg(long, value_name = "UNITS", default_value_t = 0)]
    pub storage: u32,
    /// The HW serial printed on the appliance (hw only): its first
    /// activation gets this PBX's SW serial.
    #[arg(long, value_name = "HW")]
    pub hw_serial: Option<String>,
    /// Add a second PBX although one of the same customer, name and
    /// platform is registered and not licensed yet (without it, that is
    /// taken for a retry and refused, naming the serial it got).
    #[arg(long)]
    pub again: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Signing key (signs the ledger's checkpoint).
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `tessera pbx edit`.
#[derive(Debug, Args)]
pub struct PbxEditArgs {
    /// SW serial (or the HW serial converted to it).
    pub serial: String,
    /// A named policy of the catalog to record instead (needs --approval).
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// The vendor approval reference of a policy change.
    #[arg(long, value_name = "REF")]
    pub approval: Option<String>,
    /// New PBX name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// New customer.
    #[arg(long, value_name = "NAME")]
    pub customer: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Signing key (signs the ledger's checkpoint).
    #[command(flatten)]
    pub key: KeyArgs,
}

/// `tessera report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Every PBX whose lease ran out without a renewal: days since the
    /// last successful renewal, customer, serial, model and platform (the
    /// vendor's daily notice).
    #[command(after_help = after_help("\
Examples:
  tessera report overdue
  tessera report overdue --days 3 --json
  tessera report overdue --all
  tessera report overdue --notify --passphrase-file /etc/tessera/passphrase
  tessera report overdue --notify --smtp mail.example.com --from tessera@example.com \\
      --to ops@example.com --days 3

Only PBXs in force are listed: a PBX stopped or deleted after all its user
licenses were removed is left out unless --all is given (then with its
state).

--days N counts from the lease end, not from the last renewal: a PBX is
listed once N whole days have passed since its lease ended without a
renewal (the days of grace it has used). The DAYS column is the days
since its last successful renewal, which include the lease (30 days).

--notify e-mails the list (customer, serial, model, days since the last
renewal) to each recipient that has not had today's notice (UTC day), at
most once per recipient per day, also across reruns and runs at the same
time: each notice is recorded in the ledger (which is why it needs the
signing key) before it is sent. Nothing overdue: nothing is sent. The
SMTP settings come from [notify] in the configuration, the options above
overriding (`tessera config` shows them); the SMTP password from
--smtp-password-file, TESSERA_SMTP_PASSWORD or `password_file`. Exit 8
when a recipient did not get the notice (the output says which and why).

--notify always runs on the clock's time: it refuses --now (and
TESSERA_NOW), since a notice recorded for another day would silence or
fake that day's. A rehearsal is `tessera report overdue --now TIME`
without --notify, or --notify on a copy of the ledger.

"))]
    Overdue {
        /// Also PBXs not in force (stopped, deleted), with a STATE column.
        #[arg(long, conflicts_with = "notify")]
        all: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Only PBXs at least DAYS whole days past their lease end without
        /// a renewal, i.e. DAYS days of grace used (default 0: every lease
        /// that ran out; with --notify: else `days` in [notify], else 3).
        /// DAYS in the output stays the days since the last renewal.
        #[arg(long, value_name = "DAYS")]
        days: Option<u32>,
        /// Send the day's notice by e-mail to each recipient that has not
        /// had it today (at most one per recipient per day, recorded in
        /// the ledger).
        #[arg(long)]
        notify: bool,
        /// The notice's SMTP settings.
        #[command(flatten)]
        smtp: Box<NotifyArgs>,
        /// The key that signs the ledger's checkpoint (--notify records
        /// each notice in the ledger).
        #[command(flatten)]
        key: Box<KeyArgs>,
    },
    /// Every PBX whose term ends within DAYS days.
    #[command(after_help = after_help("\
Examples:
  tessera report expiring --within 30
  tessera report expiring --within 30 --all

Only PBXs in force are listed (--all adds stopped and deleted ones, with
their state).

"))]
    Expiring {
        /// Days ahead.
        #[arg(long, value_name = "DAYS")]
        within: u32,
        /// Also PBXs not in force (stopped, deleted), with a STATE column.
        #[arg(long)]
        all: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// One row per PBX per charge recorded in a period: the quantities
    /// a billing system imports (activations, increases, services added,
    /// term renewals, storage, and the credits of voids), with their
    /// proration.
    #[command(after_help = after_help("\
Examples:
  tessera report billing --from 2026-11-01 --to 2026-12-01
  tessera report billing --from 2026-11-01 --to 2026-12-01 --csv > 2026-11.csv

Rows are the charges recorded from --from (inclusive) to --to (exclusive:
the day after the last day of the period; a date is 00:00 UTC), by serial.
A void credits what the voided license charged: a `credit` row with a
negative quantity, so a sum over the rows is what stays billed. Columns
(docs/operations.md, \"Billing\"): recorded_at, customer, serial, model,
kind, item, quantity, cycle, period_start, period_end, days, period_days,
fraction, sequence, credits_sequence (on a credit row, the voided license
whose charge it reverses).

"))]
    Billing {
        /// First day (YYYY-MM-DD or RFC 3339), inclusive.
        #[arg(long, value_name = "DATE")]
        from: String,
        /// End of the period (YYYY-MM-DD or RFC 3339), exclusive: the day
        /// after the last day.
        #[arg(long, value_name = "DATE")]
        to: String,
        /// CSV output.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `tessera completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `tessera man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write tessera.1 and one page per command into this folder instead
    /// of printing tessera.1.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

#[cfg(test)]
mod scope_tests {
    use core::cell::RefCell;

    use clap::CommandFactory as _;

    use super::*;

    /// A command added without a line in [`SCOPES`] would show every
    /// shared option and the whole exit-code table: every command has one.
    #[test]
    fn every_command_has_a_scope() {
        let missing = RefCell::new(Vec::new());
        let _ = tessera_cli::for_each_command(Cli::command(), &|cmd, path| {
            let leaf = cmd.get_subcommands().next().is_none();
            if leaf && !path.is_empty() && path != "help" && scope_of(path).is_none() {
                missing.borrow_mut().push(path.to_owned());
            }
            cmd
        });
        assert!(
            missing.borrow().is_empty(),
            "no scope for {:?}",
            missing.borrow()
        );
    }
}
