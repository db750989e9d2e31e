//! The commands behind `tessera`: each parses nothing itself (that is
//! [`crate::cli`]) and prints what the library returns.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};
use tessera_keys::Keyring;
use tessera_signer::{AnySigner, PassphraseSource, PinSource, Pkcs11Options};
use tessera_verifier::encode::RequestData;
use tessera_verifier::{armor, decode_request, MAX_OBJECT_LEN};

use crate::calendar::parse_time;
use crate::catalog::Catalog;
use crate::cli::{Cli, Command, Global, KeyArgs, Pkcs11Args};
use crate::config::Config;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::output::read_bytes_or_qr;
use crate::validate::RequestCheck;

pub mod demo;
pub mod docs;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod pbx;
pub mod report;
pub(crate) mod session;

/// What every command may need: the global options, the configuration
/// and the time.
#[derive(Debug)]
pub struct Ctx {
    /// Global options.
    pub global: Global,
    /// The configuration file and the environment ([`Config`]).
    pub config: Config,
    /// "Now" (the real time, or the hidden `--now` for tests), to the
    /// second.
    pub now: DateTime<Utc>,
    /// How far a request's creation time may be from `now` (seconds).
    pub request_window: u32,
}

impl Ctx {
    /// The context for these global options, with the configuration file
    /// they (or the environment, or the working folder) name.
    ///
    /// # Errors
    /// [`Error::Usage`] for a `--now` that is not a time,
    /// [`Error::Config`].
    pub fn new(global: Global) -> Result<Self, Error> {
        Self::announcing(global, Some(WRITES_LICENSES))
    }

    /// [`Ctx::new`] for a command on which a rehearsal time has `effect`
    /// ([`rehearsal_effect`]): a warning says so when one is in effect,
    /// nothing when it has none.
    ///
    /// # Errors
    /// As [`Ctx::new`].
    pub fn announcing(global: Global, effect: Option<&str>) -> Result<Self, Error> {
        let config = Config::find(global.config.as_deref())?;
        if let Some(warning) = config.hidden_warning() {
            crate::output::note(&format!("warning: {warning}"));
        }
        let ctx = Self::with_config(global, config)?;
        if let (Some(_), Some(effect)) = (&ctx.global.now, effect) {
            crate::output::note(&format!(
                "warning: rehearsal time {} is in effect (--now or TESSERA_NOW), not the clock: {effect}",
                crate::calendar::rfc3339(ctx.now)
            ));
        }
        Ok(ctx)
    }

    /// The context for these global options and this configuration.
    ///
    /// # Errors
    /// [`Error::Usage`] for a `--now` that is not a time, or a request
    /// window that is not a duration.
    pub fn with_config(global: Global, config: Config) -> Result<Self, Error> {
        let now = match &global.now {
            Some(t) => parse_time(t).map_err(|e| Error::Usage(e.to_string()))?,
            None => Utc::now().trunc_subsecs(0),
        };
        let request_window = config.request_window()?.value;
        Ok(Self {
            global,
            config,
            now,
            request_window,
        })
    }

    /// The catalog in use: `--catalog`, `TESSERA_CATALOG`, `catalog` in
    /// the configuration, else the embedded default.
    ///
    /// # Errors
    /// [`Error::Catalog`].
    pub fn catalog(&self) -> Result<Catalog, Error> {
        let path = self.config.catalog(self.global.catalog.as_deref());
        Ok(Catalog::load_or_default(
            path.as_ref().map(|s| s.value.as_path()),
        )?)
    }

    /// The operator: `--operator`, `TESSERA_OPERATOR`, `operator` in the
    /// configuration, or `$USER`.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is known, [`Error::Invalid`] for one
    /// with a control or format character.
    pub fn operator(&self) -> Result<String, Error> {
        let operator = self
            .config
            .operator(self.global.operator.as_deref())
            .map(|s| s.value)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                Error::Usage(
                    "no operator: pass --operator NAME, set TESSERA_OPERATOR or `operator` in tessera.toml (recorded in the ledger)"
                        .into(),
                )
            })?;
        crate::validate::text("operator", &operator)?;
        Ok(operator)
    }

    /// The ledger file: `--ledger`, `TESSERA_LEDGER` or `ledger` in the
    /// configuration. There is no default: a ledger is named, never
    /// guessed from the working folder.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is named.
    pub fn ledger_path(&self) -> Result<PathBuf, Error> {
        self.ledger_setting().map(|s| s.value)
    }

    /// [`Ctx::ledger_path`], and the setting that named it.
    ///
    /// # Errors
    /// As [`Ctx::ledger_path`].
    pub fn ledger_setting(&self) -> Result<crate::config::Setting<PathBuf>, Error> {
        let setting = self
            .config
            .ledger(self.global.ledger.as_deref())
            .ok_or_else(|| {
                Error::Usage(
                    "no ledger named: pass --ledger FILE, set TESSERA_LEDGER, or write `ledger = \"/srv/tessera/ledger.db\"` in tessera.toml (`tessera config` shows the settings in effect; `tessera ledger init` creates a ledger)"
                        .into(),
                )
            })?;
        if tessera_keys::storage::is_stdio(&setting.value) {
            return Err(Error::Usage(
                "a ledger is a database file, read and written in place: name its file, not `-`"
                    .into(),
            ));
        }
        Ok(setting)
    }

    /// The keyring: `flag`, `TESSERA_KEYRING` or `keyring` in the
    /// configuration, if any.
    #[must_use]
    pub fn keyring_path(&self, flag: Option<&Path>) -> Option<PathBuf> {
        self.config.keyring(flag).map(|s| s.value)
    }

    /// [`Ctx::keyring_path`] for a command that cannot do without one.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the three ways to give one.
    pub fn required_keyring(&self, flag: Option<&Path>) -> Result<PathBuf, Error> {
        self.keyring_path(flag).ok_or_else(|| {
            Error::Usage(
                "no keyring: pass --keyring FILE, set TESSERA_KEYRING or `keyring` in tessera.toml"
                    .into(),
            )
        })
    }

    /// Refuses a rehearsal time (`--now`, `TESSERA_NOW`) for a command
    /// that changes `keyring`, unless the operator says the keyring is a
    /// copy to rehearse on (`copy`: `--rehearsal-copy`), and always on the
    /// keyring the configuration names (`TESSERA_KEYRING`, `keyring` in
    /// tessera.toml), by that setting or by a `--keyring` naming the same
    /// file. A switch settled or a key retired at a rehearsal time happens
    /// for real, and nothing un-retires a key: issuing would halt until the
    /// rehearsed time. A keyring named only with `--keyring` is as live as
    /// a configured one (an operator without a configuration names the
    /// production keyring that way), so only the operator can tell a copy.
    ///
    /// # Errors
    /// [`Error::Usage`] saying why and what to do.
    pub fn refuse_rehearsal_on_keyring(&self, keyring: &Path, copy: bool) -> Result<(), Error> {
        if self.global.now.is_none() {
            return Ok(());
        }
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        let why = "a switch or a retirement settled at a rehearsal time happens for real, nothing un-retires a key, and no key could sign until that time";
        let now = crate::calendar::rfc3339(self.now);
        if let Some(live) = self
            .config
            .keyring(None)
            .filter(|live| same(keyring, &live.value))
        {
            return Err(Error::Usage(format!(
                "{}: this command changes the keyring, and --now {now} (or TESSERA_NOW) cannot be used on the live keyring (the one {} names): {why}; run it without --now, or rehearse on a copy (`cp {} rehearsal.toml`, then the same command with `--keyring rehearsal.toml --rehearsal-copy`)",
                keyring.display(),
                live.source,
                keyring.display(),
            )));
        }
        if copy {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{}: this command changes the keyring, and --now {now} (or TESSERA_NOW) would change it for real: {why}; run it without --now, or, if {} is a copy made to rehearse on, say so with --rehearsal-copy (`cp {} rehearsal.toml`, then the same command with `--keyring rehearsal.toml --rehearsal-copy`)",
            keyring.display(),
            keyring.display(),
            keyring.display(),
        )))
    }

    /// The signing keys: `flags` (`--key`, repeated), `TESSERA_KEY` or
    /// `key` in the configuration (a path or a list); none when none is
    /// given.
    #[must_use]
    pub fn key_paths(&self, flags: &[PathBuf]) -> Vec<PathBuf> {
        self.config.keys(flags).map(|s| s.value).unwrap_or_default()
    }

    /// The one key file a command reads (`key public`).
    ///
    /// # Errors
    /// [`Error::Usage`] without a key, or with several.
    pub fn key_path(&self, flag: Option<&Path>) -> Result<PathBuf, Error> {
        let flags: Vec<PathBuf> = flag.map(Path::to_path_buf).into_iter().collect();
        match self.key_paths(&flags).as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Usage(
                "no signing key: pass --key FILE (or --key pkcs11:URI), set TESSERA_KEY or `key` in tessera.toml".into(),
            )),
            many => Err(Error::Usage(format!(
                "`key` names {} keys; name the one meant with --key",
                many.len()
            ))),
        }
    }

    /// The existing ledger, to issue (only `tessera ledger init` creates
    /// one). A writer that has to wait for another says so.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is named, [`Error::Ledger`].
    pub fn ledger(&self) -> Result<Ledger, Error> {
        let path = self.ledger_setting()?;
        let mut ledger =
            Ledger::open(&path.value).map_err(|e| e.named_by(&path.source.naming("ledger")))?;
        ledger.set_wait_notice(Box::new(|path| {
            crate::output::note(&format!(
                "waiting for another issuance to finish: another tessera process is writing the ledger {} (up to {} s) ...",
                path.display(),
                crate::ledger::BUSY_TIMEOUT.as_secs()
            ));
        }));
        Ok(ledger)
    }

    /// The existing ledger, to read: read-only, one snapshot, never
    /// waiting for a writer.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is named, [`Error::Ledger`].
    pub fn reader(&self) -> Result<Ledger, Error> {
        let path = self.ledger_setting()?;
        Ok(Ledger::open_read_only(&path.value)
            .map_err(|e| e.named_by(&path.source.naming("ledger")))?)
    }

    /// What every request read by this command must meet: the clock and
    /// the freshness window.
    #[must_use]
    pub fn request_check(&self) -> RequestCheck {
        RequestCheck {
            now: self.now.timestamp(),
            window: self.request_window,
        }
    }

    /// A time argument, or now.
    ///
    /// # Errors
    /// [`Error::Usage`].
    pub fn time_or_now(&self, t: Option<&str>) -> Result<DateTime<Utc>, Error> {
        t.map_or(Ok(self.now), |t| {
            parse_time(t).map_err(|e| Error::Usage(e.to_string()))
        })
    }
}

/// Runs a parsed command line.
///
/// # Errors
/// Every command's errors; [`Error::exit_code`] says how to exit.
pub fn run(cli: Cli) -> Result<(), Error> {
    let ctx = Ctx::announcing(cli.global, rehearsal_effect(&cli.command))?;
    match cli.command {
        Command::Keygen(a) => keys::keygen(&ctx, &a),
        Command::Key(c) => keys::key(&ctx, &c),
        Command::Keyring(c) => keys::keyring(&ctx, &c),
        Command::Config(a) => docs::config(&ctx, &a),
        Command::Catalog(c) => docs::catalog(&ctx, &c),
        Command::Issue(a) => issue::issue(&ctx, &a),
        Command::Renew(a) => issue::renew(&ctx, &a),
        Command::Modify(a) => lifecycle::modify(&ctx, &a),
        Command::Replace(a) => issue::replace(&ctx, &a),
        Command::Share(a) => lifecycle::share(&ctx, &a),
        Command::Void(a) => lifecycle::void(&ctx, &a),
        Command::Decommission(a) => lifecycle::decommission(&ctx, &a),
        Command::Inspect(a) => inspect::inspect(&ctx, &a),
        Command::Verify(a) => inspect::verify(&ctx, &a),
        Command::Pbx(c) => pbx::pbx(&ctx, &c),
        Command::Ledger(c) => ledger::ledger(&ctx, &c),
        Command::Report(c) => report::report(&ctx, &c),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(a) => docs::man(&a),
        Command::Demo => demo::run(),
    }
}

/// What a rehearsal time does to a command that issues licenses
/// (`tessera-server`'s too).
const WRITES_LICENSES: &str = "the licenses issued are dated then (issue time, lease) and the ledger records them at that time; requests must be fresh at that time";

/// What a rehearsal time (`--now`, `TESSERA_NOW`) does to `command`, as
/// its warning says it; `None` where it does nothing (the command writes
/// nothing dated and shows nothing that depends on the time: `config`,
/// `catalog`, `inspect`, `ledger show|verify|export|head|migrate`,
/// `report billing`, ...), and where the command refuses it anyway
/// (`report overdue --notify`).
#[must_use]
pub fn rehearsal_effect(command: &Command) -> Option<&'static str> {
    use crate::cli::{KeyringCommand, LedgerCommand, PbxCommand, ReportCommand};
    const SHOWN: &str =
        "states and leases are shown as they stand at that time; nothing is written";
    match command {
        Command::Issue(_) | Command::Renew(_) | Command::Replace(_) => Some(WRITES_LICENSES),
        Command::Modify(a) if a.request.is_some() => Some(WRITES_LICENSES),
        Command::Modify(_) | Command::Share(_) | Command::Void(_) | Command::Decommission(_) => {
            Some("the license issued is dated then (issue time, lease) and the ledger records it at that time")
        }
        Command::Keygen(_) => Some(
            "the new key is valid from then unless --valid-from says otherwise, and a keyring it joins is settled as of then",
        ),
        Command::Keyring(KeyringCommand::Add { .. } | KeyringCommand::Activate { .. } | KeyringCommand::Retire { .. }) => {
            Some("the keyring's scheduled switches and retirements are settled as of then")
        }
        Command::Keyring(KeyringCommand::List { .. }) => Some(
            "which key is active and valid is shown as of then; nothing is written",
        ),
        Command::Verify(a) if a.at.is_none() => {
            Some("the license is checked as firmware would check it at that time")
        }
        Command::Pbx(PbxCommand::Add(_) | PbxCommand::Edit(_)) => {
            Some("the ledger records the change at that time")
        }
        Command::Pbx(PbxCommand::Activation(_)) => {
            Some("the code is valid from then and the ledger records it at that time")
        }
        Command::Pbx(PbxCommand::List { .. } | PbxCommand::Show { .. })
        | Command::Ledger(LedgerCommand::List { .. }) => Some(SHOWN),
        Command::Ledger(LedgerCommand::Init { .. } | LedgerCommand::Upgrade { .. }) => {
            Some("the ledger records its new entries at that time")
        }
        Command::Report(ReportCommand::Overdue { notify: false, .. } | ReportCommand::Expiring { .. }) => {
            Some("the report is as of that time (leases run out, days counted); nothing is written")
        }
        _ => None,
    }
}

/// Opens the signing key: of the keys given (`--key`, `TESSERA_KEY` or
/// `key` in the configuration, several during a rotation), with a keyring
/// (option, environment or configuration) the one it makes active at
/// `ctx.now`, checked ([`crate::signing::KeySet::signer_at`]). A key file's
/// passphrase comes from `--passphrase-file`, `TESSERA_PASSPHRASE` or a
/// prompt, a token key's PIN from `--pin-file`, `TESSERA_PKCS11_PIN` or a
/// prompt.
///
/// # Errors
/// [`Error::Usage`] without a key, [`Error::Key`].
pub fn load_signer(ctx: &Ctx, args: &KeyArgs) -> Result<AnySigner, Error> {
    load_keys(ctx, args).map(|(signer, _)| signer)
}

/// [`load_signer`], and the keyring the key was checked against (when
/// one is named), as the entries a writer verifies the ledger's last
/// checkpoint with ([`Ledger::set_keyring`]).
///
/// # Errors
/// As [`load_signer`].
pub fn load_keys(
    ctx: &Ctx,
    args: &KeyArgs,
) -> Result<(AnySigner, Vec<tessera_verifier::KeyEntry>), Error> {
    let keys = crate::signing::KeySet {
        locations: crate::signing::locations(&ctx.key_paths(&args.key)),
        passphrase: PassphraseSource::from_cli(args.passphrase_file.clone()),
        pkcs11: pkcs11_options(&args.token),
    };
    let keyring = ctx
        .keyring_path(args.keyring.as_deref())
        .map(|k| Keyring::load(&k))
        .transpose()?;
    let signer = keys.signer_at(keyring.as_ref(), ctx.now)?;
    Ok((signer, keyring.map(|k| k.to_entries()).unwrap_or_default()))
}

/// How to reach a token, from the command line.
#[must_use]
pub fn pkcs11_options(args: &Pkcs11Args) -> Pkcs11Options {
    Pkcs11Options {
        module: args.pkcs11_module.clone(),
        pin: PinSource::from_cli(args.pin_file.clone()),
    }
}

/// Reads a request, checks its signature and what it carries
/// ([`crate::validate::request`]): an armored `TESSERA REQUEST` file, the
/// binary request, or a screenshot or photo (PNG, JPEG) of its QR code.
///
/// # Errors
/// [`Error::Io`], [`Error::Qr`], [`Error::Request`],
/// [`Error::RequestRefused`].
pub fn read_request(path: &Path, check: RequestCheck) -> Result<(Vec<u8>, RequestData), Error> {
    let raw = read_bytes_or_qr(path)?;
    let name = path.display().to_string();
    if raw.first() == Some(&0xd2) {
        let data = decode_request(&raw)
            .map_err(|source| Error::Request {
                path: name.clone(),
                source,
            })?
            .to_data();
        let data = check.apply(data).map_err(|reason| Error::RequestRefused {
            path: name.clone(),
            reason,
        })?;
        return Ok((raw, data));
    }
    let text = String::from_utf8(raw).map_err(|_| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "neither an armored request, a binary one, nor a PNG/JPEG image of its QR code",
        ),
    })?;
    request_from_text(&name, &text, check)
}

/// Decodes an armored request and checks it as [`read_request`] does.
///
/// # Errors
/// [`Error::Request`], [`Error::Invalid`].
pub fn request_from_text(
    name: &str,
    text: &str,
    check: RequestCheck,
) -> Result<(Vec<u8>, RequestData), Error> {
    let bad = |source| Error::Request {
        path: name.to_owned(),
        source,
    };
    let mut buf = vec![0u8; MAX_OBJECT_LEN];
    let bytes = armor::decode(text, armor::LABEL_REQUEST, &mut buf)
        .map_err(|e| bad(tessera_verifier::Error::Armor(e)))?
        .to_vec();
    let data = decode_request(&bytes).map_err(bad)?.to_data();
    let data = check.apply(data).map_err(|reason| Error::RequestRefused {
        path: name.to_owned(),
        reason,
    })?;
    Ok((bytes, data))
}

/// Reads a license file: armored text, the binary COSE_Sign1
/// ([`armor::read_object`] tells them apart; binary input that is no
/// COSE_Sign1 is refused when decoded, saying what it is), or a PNG or
/// JPEG image of its QR code.
///
/// # Errors
/// [`Error::Io`], [`Error::Verification`] for broken armor.
pub fn read_license(path: &Path) -> Result<Vec<u8>, Error> {
    read_signed(path, &read_bytes_or_qr(path)?, armor::LABEL_LICENSE)
}

/// The signed object read from `path` as `raw`: armored with `label` or
/// binary ([`armor::read_object`]).
///
/// # Errors
/// [`Error::Verification`] for broken armor.
pub(crate) fn read_signed(path: &Path, raw: &[u8], label: &str) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; MAX_OBJECT_LEN];
    armor::read_object(raw, label, &mut buf)
        .map(<[u8]>::to_vec)
        .map_err(|source| Error::Verification {
            path: path.display().to_string(),
            source,
        })
}

/// A keyring file's entries for the verifier.
///
/// # Errors
/// [`Error::Key`].
pub fn keyring_entries(path: &Path) -> Result<Vec<tessera_verifier::KeyEntry>, Error> {
    Ok(Keyring::load(path)?.to_entries())
}

/// Prints a JSON value on standard output.
///
/// # Errors
/// [`Error::Io`].
pub fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    let text = crate::output::json_for_terminal(&text);
    crate::output::Target::Stdout.write(text.as_bytes(), false)
}

/// Prints text on standard output, escaped for a terminal
/// ([`crate::output::for_terminal`]).
///
/// # Errors
/// [`Error::Io`].
pub fn print(text: &str) -> Result<(), Error> {
    let text = crate::output::for_terminal(text);
    crate::output::Target::Stdout.write(text.as_bytes(), false)
}
