//! The commands behind `tessera`: each parses nothing itself (that is
//! [`crate::cli`]) and prints what the library returns.

use std::path::Path;

use chrono::{DateTime, SubsecRound, Utc};
use tessera_keys::Keyring;
use tessera_signer::{AnySigner, KeyLocation, PassphraseSource, PinSource, Pkcs11Options};
use tessera_verifier::encode::RequestData;
use tessera_verifier::{armor, decode_request, MAX_OBJECT_LEN};

use crate::calendar::parse_time;
use crate::catalog::Catalog;
use crate::cli::{Cli, Command, Global, KeyArgs, Pkcs11Args};
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
pub mod report;
pub(crate) mod session;

/// What every command may need: the global options and the time.
#[derive(Debug)]
pub struct Ctx {
    /// Global options.
    pub global: Global,
    /// "Now" (the real time, or the hidden `--now` for tests), to the
    /// second.
    pub now: DateTime<Utc>,
    /// How far a request's creation time may be from `now` (seconds).
    pub request_window: u32,
}

impl Ctx {
    /// The context for these global options.
    ///
    /// # Errors
    /// [`Error::Usage`] for a `--now` that is not a time.
    pub fn new(global: Global) -> Result<Self, Error> {
        let now = match &global.now {
            Some(t) => parse_time(t).map_err(|e| Error::Usage(e.to_string()))?,
            None => Utc::now().trunc_subsecs(0),
        };
        let request_window = match std::env::var("TESSERA_REQUEST_WINDOW") {
            Ok(w) => crate::calendar::parse_duration(&w).ok_or_else(|| {
                Error::Usage(format!(
                    "TESSERA_REQUEST_WINDOW `{w}` is not a duration: write <n>d, <n>h, <n>m or <n>s (default 30d)"
                ))
            })?,
            Err(_) => crate::validate::DEFAULT_REQUEST_WINDOW,
        };
        Ok(Self {
            global,
            now,
            request_window,
        })
    }

    /// The catalog in use.
    ///
    /// # Errors
    /// [`Error::Catalog`].
    pub fn catalog(&self) -> Result<Catalog, Error> {
        Ok(Catalog::load_or_default(self.global.catalog.as_deref())?)
    }

    /// The operator: `--operator`, `TESSERA_OPERATOR` or `$USER`.
    ///
    /// # Errors
    /// [`Error::Usage`] when none is known.
    pub fn operator(&self) -> Result<String, Error> {
        let operator = self
            .global
            .operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                Error::Usage(
                    "no operator: pass --operator NAME or set TESSERA_OPERATOR (recorded in the ledger)"
                        .into(),
                )
            })?;
        crate::validate::text("operator", &operator)?;
        Ok(operator)
    }

    /// The ledger, created if missing (commands that issue).
    ///
    /// # Errors
    /// [`Error::Ledger`].
    pub fn ledger(&self) -> Result<Ledger, Error> {
        Ok(Ledger::open(&self.global.ledger)?)
    }

    /// The existing ledger (commands that only read).
    ///
    /// # Errors
    /// [`Error::Ledger`].
    pub fn existing_ledger(&self) -> Result<Ledger, Error> {
        Ok(Ledger::open_existing(&self.global.ledger)?)
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
    let ctx = Ctx::new(cli.global)?;
    match cli.command {
        Command::Keygen(a) => keys::keygen(&ctx, &a),
        Command::Key(c) => keys::key(&c),
        Command::Keyring(c) => keys::keyring(&ctx, &c),
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
        Command::Ledger(c) => ledger::ledger(&ctx, &c),
        Command::Report(c) => report::report(&ctx, &c),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(a) => docs::man(&a),
        Command::Demo => demo::run(),
    }
}

/// Opens the signing key: a key file (passphrase from
/// `--passphrase-file`, `TESSERA_PASSPHRASE` or a prompt) or a key in a
/// PKCS#11 token (`--key pkcs11:...`; PIN from `--pin-file`,
/// `TESSERA_PKCS11_PIN` or a prompt) and, with `--keyring`, checks that it
/// is the active key and valid at `now`.
///
/// # Errors
/// [`Error::Usage`] without a key, [`Error::Key`].
pub fn load_signer(args: &KeyArgs, now: DateTime<Utc>) -> Result<AnySigner, Error> {
    let path = args.key.as_ref().ok_or_else(|| {
        Error::Usage(
            "no signing key: pass --key FILE (or --key pkcs11:URI) or set TESSERA_KEY".into(),
        )
    })?;
    let signer = AnySigner::open(
        &KeyLocation::from_arg(path),
        &PassphraseSource::from_cli(args.passphrase_file.clone()),
        &pkcs11_options(&args.token),
    )?;
    if let Some(k) = &args.keyring {
        Keyring::load(k)?.check_signer(&signer, now)?;
    }
    Ok(signer)
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
    let raw = read_bytes_or_qr(path)?;
    let mut buf = vec![0u8; MAX_OBJECT_LEN];
    armor::read_object(&raw, armor::LABEL_LICENSE, &mut buf)
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
