//! The issuer's errors and the exit codes they map to.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | usage, input or I/O error: bad arguments, unreadable or invalid files (catalog, order, request, key, keyring), ledger unavailable |
//! | 2 | policy refusal: the order or request breaks a rule (docs/rules.md) |
//! | 3 | verification failure: the license is malformed, its signature or key does not check, or it does not bind to the device |
//! | 4 | ledger integrity failure: an entry, a view or a checkpoint does not hold, entries were cut off, or the file is damaged or not a tessera ledger |
//! | 5 | the license verifies but is not in force at the time given (expired after grace, or not yet valid) |
//! | 6 | bulk issuance finished, but some rows were refused (each is reported with its line) |
//! | 7 | standard output could not be written (a full disk, an I/O error): the command's work is done, its output is lost |
//!
//! A closed pipe (`tessera ledger list | head -1`) is no error: the output
//! ends quietly and the exit code is the command's.

use std::path::PathBuf;

use crate::catalog::CatalogError;
use crate::ledger::LedgerError;
use crate::order::OrderError;
use crate::policy::PolicyError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: usage, input or I/O error.
pub const EXIT_USAGE: u8 = 1;
/// Exit code: policy refusal.
pub const EXIT_POLICY: u8 = 2;
/// Exit code: verification failure.
pub const EXIT_VERIFY: u8 = 3;
/// Exit code: ledger integrity failure, damaged or foreign ledger file.
pub const EXIT_LEDGER: u8 = 4;
/// Exit code: license not in force.
pub const EXIT_NOT_IN_FORCE: u8 = 5;
/// Exit code: bulk issuance finished with refused rows.
pub const EXIT_BULK_PARTIAL: u8 = 6;
/// Exit code: standard output could not be written (its reader closing
/// the pipe is no error).
pub const EXIT_OUTPUT: u8 = 7;
/// Exit code: the overdue notice did not reach every recipient (SMTP).
pub const EXIT_MAIL: u8 = 8;

/// Every exit code and what it means, for `--help`.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (EXIT_OK, "success (also when the reader of standard output stops early: `| head`)"),
    (EXIT_USAGE, "usage, input or I/O error: arguments, catalog, order, request, key, keyring, ledger"),
    (EXIT_POLICY, "policy refusal: the order or request breaks a licensing rule"),
    (EXIT_VERIFY, "verification failure: malformed license, bad signature or key, wrong device"),
    (EXIT_LEDGER, "ledger integrity failure: an edited, deleted, reordered or cut-off entry,\n     a damaged or foreign ledger file"),
    (EXIT_NOT_IN_FORCE, "the license verifies but is not in force (expired after grace, not yet valid)"),
    (EXIT_BULK_PARTIAL, "bulk issuance finished with refused rows"),
    (EXIT_OUTPUT, "standard output could not be written (a full disk): the work is done,\n     its output lost; write to a file with -o FILE where the command has it"),
    (EXIT_MAIL, "the overdue notice did not reach every recipient: the SMTP server could not be\n     reached, refused the login or refused a mail"),
];

/// Anything that can go wrong in a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The catalog.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The order.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A rule of docs/rules.md.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Input that must not enter a license, the ledger, a file name or a
    /// terminal (a hostile request, a control character in a field ...).
    #[error(transparent)]
    Invalid(#[from] crate::validate::InvalidInput),
    /// Keys, passphrases and keyrings.
    #[error(transparent)]
    Key(#[from] tessera_keys::KeyError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An output file exists.
    #[error("{0} exists; pass --force to overwrite it")]
    Exists(PathBuf),
    /// An output path that is not a regular file.
    #[error("{path} is a {kind}: output goes to a new file, an existing regular file (with --force) or - for standard output")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A request file that cannot be used.
    #[error("request {path}: {source}; ask the device for a new request file")]
    Request {
        /// The file.
        path: String,
        /// What the verifier said.
        source: tessera_verifier::Error,
    },
    /// A QR code image that cannot be read or written.
    #[error("{path}: {source}")]
    Qr {
        /// The image file.
        path: String,
        /// What went wrong.
        source: tessera_qr::QrError,
    },
    /// A request whose content is refused before anything is looked up: a
    /// serial outside the grammar, a HW serial that does not normalize, a
    /// creation time outside the freshness window.
    #[error("request {path}: {reason}")]
    RequestRefused {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: crate::validate::InvalidInput,
    },
    /// A license file that does not decode or verify.
    #[error("license {path}: {source}")]
    Verification {
        /// The file.
        path: String,
        /// What the verifier said.
        source: tessera_verifier::Error,
    },
    /// A license that verifies but is not in force.
    #[error("license {path} is not in force at {at}: {verdict}")]
    NotInForce {
        /// The file.
        path: String,
        /// The time checked.
        at: String,
        /// The verdict.
        verdict: String,
    },
    /// A device identity file that cannot be used.
    #[error("device identity {path}: {reason}")]
    Identity {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The license content breaks a format rule (a bug or a catalog
    /// beyond the format's caps).
    #[error("the license content breaks a format rule: {0}; check the order against the caps in spec/FORMAT.md section 6.4")]
    Encode(tessera_verifier::Malformed),
    /// The system random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// The configuration file cannot be used.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Wrong or inconsistent arguments.
    #[error("{0}")]
    Usage(String),
    /// Standard output could not be written (not a closed pipe, which
    /// ends the output quietly).
    #[error("cannot write to standard output ({0}); the command's work is done and its output lost: write it to a file on a disk with free space (`-o FILE` where the command has it, else the shell's `> FILE`)")]
    Stdout(std::io::Error),
    /// The SMTP server could not be reached or refused (nothing recorded).
    #[error("SMTP server {server}: {reason}; nothing was sent or recorded")]
    Mail {
        /// `host:port`.
        server: String,
        /// What happened and what to do.
        reason: String,
    },
    /// The notice did not reach some recipients (see the report).
    #[error("the overdue notice did not reach {failed} of {total} recipient(s) (see above); a refused mail is sent again by the next run, an unconfirmed one is not (at most one per day)")]
    NoticeFailed {
        /// Recipients without the notice.
        failed: usize,
        /// Recipients.
        total: usize,
    },
    /// Some bulk rows were refused.
    #[error("{refused} of {total} rows were refused (see above); fix them and run the same command again: issued rows are skipped")]
    BulkPartial {
        /// Rows refused.
        refused: usize,
        /// Rows in the file.
        total: usize,
    },
}

impl Error {
    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Policy(_) => EXIT_POLICY,
            Self::Verification { .. } => EXIT_VERIFY,
            Self::Ledger(e) if e.is_integrity() => EXIT_LEDGER,
            Self::NotInForce { .. } => EXIT_NOT_IN_FORCE,
            Self::BulkPartial { .. } => EXIT_BULK_PARTIAL,
            Self::Stdout(_) => EXIT_OUTPUT,
            Self::Mail { .. } | Self::NoticeFailed { .. } => EXIT_MAIL,
            _ => EXIT_USAGE,
        }
    }

    /// A stable snake_case name of this kind of error, for scripts (the
    /// `error.code` of the JSON error under `--json`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Catalog(_) => "catalog",
            Self::Order(_) => "order",
            Self::Policy(_) => "policy",
            Self::Ledger(e) if e.is_integrity() => "ledger_integrity",
            Self::Ledger(_) => "ledger",
            Self::Invalid(_) => "invalid_input",
            Self::Key(_) => "key",
            Self::Io { .. } => "io",
            Self::Exists(_) => "exists",
            Self::NotAFile { .. } => "not_a_file",
            Self::Request { .. } => "request",
            Self::Qr { .. } => "qr",
            Self::RequestRefused { .. } => "request_refused",
            Self::Verification { .. } => "verification",
            Self::NotInForce { .. } => "not_in_force",
            Self::Identity { .. } => "identity",
            Self::Encode(_) => "encode",
            Self::Rng(_) => "random",
            Self::Config { .. } => "config",
            Self::Usage(_) => "usage",
            Self::Stdout(_) => "output",
            Self::BulkPartial { .. } => "bulk_partial",
            Self::Mail { .. } => "mail",
            Self::NoticeFailed { .. } => "notice_failed",
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
