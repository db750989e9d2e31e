//! # tessera-server
//!
//! The online license service: connected PBXs renew themselves over HTTPS
//! instead of a person carrying two files. Thin over the issuer library:
//! every rule is [`tessera_issuer`]'s (the same [`issuance::renew_online`]
//! as the CLI's `renew`, plus the online checks), every license is signed
//! by the same [`tessera_keys::Signer`] and recorded in the same ledger,
//! through its public API only (so any ledger backend serves).
//!
//! | module | what |
//! |---|---|
//! | [`routes`] | `POST /v1/renew`, `POST /v1/activate`, `GET /healthz`, `/readyz`; `GET /metrics` on its own listener |
//! | [`problem`] | refusals as RFC 9457 `application/problem+json` |
//! | `commit` | group commit: one ledger thread, one commit per batch |
//! | `floor` | the refusals' floor: one timer thread wakes each refusal at its instant |
//! | [`limits`] | body size, rate limits per address and serial, timeouts |
//! | [`metrics`] | Prometheus text, served only on [`Settings::metrics_listen`] (plain HTTP, loopback or an admin network), never on the devices' listener |
//! | [`tls`] | rustls from PEM certificate and key files |
//! | [`serve`] | the accept loop, TLS handshakes, graceful shutdown |
//!
//! [`issuance::renew_online`]: tessera_issuer::issuance::renew_online
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::net::SocketAddr;
use core::sync::atomic::{AtomicI64, Ordering};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tessera_issuer::cli::KeyArgs;
use tessera_issuer::commands::{pkcs11_options, Ctx};
use tessera_issuer::error::Error;
use tessera_keys::Keyring;
use tessera_signer::PassphraseSource;

mod commit;
mod floor;
pub mod limits;
pub mod metrics;
pub mod problem;
pub mod routes;
pub mod serve;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use limits::{Limits, Rate};
pub use serve::{start, Running};

/// Default freshness window: how far a request's creation time may be
/// from the server's clock (either way).
pub const DEFAULT_FRESHNESS: u32 = 300;

/// The server's clock: the system's, or one a test sets.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock the caller sets (Unix seconds): tests and drills.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock at `t` (Unix seconds).
    #[must_use]
    pub fn manual(t: i64) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(t)))
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, t: i64) {
        if let Self::Manual(c) = self {
            c.store(t, Ordering::SeqCst);
        }
    }

    /// Now, to the second.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now().trunc_subsecs(0),
            Self::Manual(c) => DateTime::from_timestamp(c.load(Ordering::SeqCst), 0)
                .unwrap_or(DateTime::UNIX_EPOCH),
        }
    }
}

/// The TLS certificate chain and key, PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Everything a server is started with.
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS; `None` serves plain HTTP (only on loopback, or with
    /// `insecure_http` behind a TLS-terminating proxy).
    pub tls: Option<TlsFiles>,
    /// Allow plain HTTP on a non-loopback address.
    pub insecure_http: bool,
    /// Where to serve the metrics (`GET /metrics`, Prometheus text, plain
    /// HTTP, no authentication): a loopback address or one on an admin
    /// network. `None` serves them nowhere; the devices' listener never
    /// does (the outcome counters are the operator's, not the public's).
    pub metrics_listen: Option<SocketAddr>,
    /// The issuer's settings: configuration, ledger, catalog, operator.
    pub ctx: Ctx,
    /// The signing key (passphrase from a file or `TESSERA_PASSPHRASE`,
    /// never a prompt) and the keyring it must be active in.
    pub key: KeyArgs,
    /// Freshness window of a request's creation time (seconds).
    pub freshness: u32,
    /// Limits.
    pub limits: Limits,
    /// The clock.
    pub clock: Clock,
}

impl Settings {
    /// Checks what can be checked before anything is opened.
    ///
    /// # Errors
    /// [`Error::Usage`] for plain HTTP on a non-loopback address without
    /// `insecure_http`.
    pub fn check(&self) -> Result<(), Error> {
        if self.tls.is_none() && !self.insecure_http && !self.listen.ip().is_loopback() {
            return Err(Error::Usage(format!(
                "refusing plain HTTP on {}: give --tls-cert FILE and --tls-key FILE, listen on loopback (127.0.0.1), or pass --insecure-http behind a TLS-terminating proxy",
                self.listen
            )));
        }
        if self
            .metrics_listen
            .is_some_and(|m| m == self.listen && m.port() != 0)
        {
            return Err(Error::Usage(format!(
                "--metrics-listen {} is the address of --listen: give the metrics an address of their own (e.g. 127.0.0.1:9464)",
                self.listen
            )));
        }
        if self.freshness == 0 {
            return Err(Error::Usage(
                "the freshness window must be at least 1 second".into(),
            ));
        }
        Ok(())
    }

    /// Builds the ledger thread's parts: catalog, operator, signing key
    /// (active now in the keyring, when one is named), ledger (which must
    /// exist).
    fn open_parts(ctx: &Ctx, key: &KeyArgs) -> Result<commit::Parts, Error> {
        let catalog = ctx.catalog()?;
        let operator = ctx.operator()?;
        let keys = tessera_issuer::signing::KeySet {
            locations: tessera_issuer::signing::locations(&ctx.key_paths(&key.key)),
            // A service has no terminal to prompt on.
            passphrase: key
                .passphrase_file
                .clone()
                .map_or(PassphraseSource::Env, PassphraseSource::File),
            pkcs11: pkcs11_options(&key.token),
        };
        let keyring = ctx
            .keyring_path(key.keyring.as_deref())
            .map(|k| Keyring::load(&k))
            .transpose()?;
        let signer = keys
            .signer_at(keyring.as_ref(), ctx.now)
            .map_err(|e| match e {
                // The keys crate's advice offers a prompt, which a service
                // never shows.
                Error::Key(tessera_keys::KeyError::NoPassphrase) => Error::Usage(
                    "no passphrase for the signing key: pass --passphrase-file FILE (a systemd credential, mode 0600) or set TESSERA_PASSPHRASE; the service never prompts".into(),
                ),
                other => other,
            })?;
        let mut ledger = ctx.ledger()?;
        // Each group commit verifies the ledger's last checkpoint with it.
        ledger.set_keyring(&keyring.map(|k| k.to_entries()).unwrap_or_default());
        Ok(commit::Parts {
            ledger,
            signer,
            catalog,
            operator,
        })
    }
}

/// Logs `message` at error level on standard error: with the syslog
/// priority prefix (`<3>`) journald reads when standard error is the
/// journal (systemd sets `JOURNAL_STREAM`), else as `error:`.
pub(crate) fn log_error(message: &str) {
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        eprintln!("<3>tessera-server: error: {message}");
    } else {
        eprintln!("tessera-server: error: {message}");
    }
}

#[cfg(test)]
mod tests;
