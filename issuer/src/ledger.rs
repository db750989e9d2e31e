//! The ledger: the vendor's system of record. One append-only journal of
//! facts chained by hash ([`journal`]), query views folded from it
//! ([`views`]), and a checkpoint signed by the vendor key after every
//! committed transaction (`spec/FORMAT.md` §10).
//!
//! - **Created once, explicitly** ([`Ledger::init`]): the file is made
//!   exclusively, holds the genesis entry (ledger id, vendor id, creation
//!   time) and its first checkpoint. Every other command opens an existing
//!   ledger and refuses a missing, empty, foreign or damaged file.
//! - **Everything in the chain**: licenses, serial allocations, HW → SW
//!   conversions, schedules, replaced bindings, request keys, voids and
//!   approvals are journal entries; the tables commands query are views of
//!   the journal, written in the same transaction by the one fold
//!   ([`views::apply`]).
//! - **Writers** ([`Ledger::writer`]) hold the write lock for the whole
//!   transaction, so what they read (a serial's last sequence, a year's
//!   counter, the chain head) is what they append after; many entries go
//!   into one transaction (a bulk batch, later a group commit), one
//!   checkpoint covers them.
//! - **Readers** ([`Ledger::open_read_only`]) read one snapshot without
//!   taking the write lock, also while a bulk run writes and on read-only
//!   media.
//! - **Verification** ([`Ledger::verify`]) re-reads the journal from the
//!   first entry: every hash, every entry folded again and the views
//!   compared, every license signature and every checkpoint against the
//!   vendor's keyring, each serial's sequence chain, and optionally a
//!   checkpoint kept elsewhere (a cut-off end). It names the first bad
//!   entry.
//! - **Earlier ledgers** (schema 1 or 2, before the journal) are refused
//!   with the command that converts them once ([`upgrade`]).
//!
//! Storage is behind one trait ([`Backend`], [`StoreTx`]); SQLite
//! ([`sqlite`]) is the implementation (WAL, `synchronous=FULL`, writers
//! `BEGIN IMMEDIATE`, readers read-only). A PostgreSQL backend implements
//! the same traits, serializing the chain head with a row lock.

use core::time::Duration;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tessera_keys::Signer;
use tessera_verifier::encode::{sign_checkpoint, CheckpointData, EncodeError};
use tessera_verifier::{decode_checkpoint, KeyEntry};

pub mod journal;
pub mod migrate;
pub mod postgres;
pub mod sqlite;
pub mod upgrade;
pub mod views;

pub use journal::{entry_hash, Action, Charge, Entry, Fact, PbxChange};
pub use views::{ChargeRow, Identity, PbxChangeRow, PbxRow, ACTIVATION};

use crate::calendar::rfc3339_unix;
use crate::policy::ZeroSchedule;
use postgres::{PgBackend, PgTx};
use sqlite::{Mode, SqliteBackend, SqliteTx};
use views::{FoldError, MemoryViews, ViewStore};

/// How long a writer waits for another one.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a ledger operation failed. No message repeats a database's own
/// words: each says what is wrong with the ledger and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// No file at the path given.
    #[error("no ledger at {}: create one there with `tessera ledger init`, or name the existing one with --ledger, TESSERA_LEDGER or `ledger` in tessera.toml (`tessera config` shows which is in effect)", named(path, named_by.as_deref()))]
    NotFound {
        /// The path.
        path: PathBuf,
        /// The setting that named it (`--ledger`, `$TESSERA_LEDGER`,
        /// `` `ledger` in FILE ``), when known ([`LedgerError::named_by`]).
        named_by: Option<String>,
    },
    /// A directory, a device or another file that is no regular file
    /// where the ledger's file should be: a wrong path, not a damaged
    /// ledger (exit code 1).
    #[error("{}", not_a_file_message(path, what, named_by.as_deref()))]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is: `a directory`, `a character device` ...
        what: &'static str,
        /// The setting that named it, when known.
        named_by: Option<String>,
    },
    /// `ledger init` of a path that exists.
    #[error("{}", exists_message(.0))]
    Exists(PathBuf),
    /// An empty file where the ledger should be. Exit code 4.
    #[error("not a tessera ledger or damaged: {0} is an empty file; restore the ledger from a backup (or, if there never was one here, remove the file and run `tessera ledger init`)")]
    Empty(PathBuf),
    /// A file that is not a tessera ledger. Exit code 4.
    #[error("not a tessera ledger or damaged: {path}: {what}; check the path (`tessera config` shows where it comes from)")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// A ledger whose file is damaged. Exit code 4.
    #[error("not a tessera ledger or damaged: {path}: {what}; restore the ledger from a backup and run `tessera ledger verify`")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A ledger in the format before the journal.
    #[error("{path} is a ledger of an earlier tessera (schema {version}, before the journal); convert it once with `tessera ledger upgrade --from {path} --ledger NEW.db`, then use NEW.db")]
    OldFormat {
        /// The file.
        path: PathBuf,
        /// Its schema.
        version: i32,
    },
    /// The hash chain of a ledger of an earlier tessera does not hold
    /// (`ledger upgrade`): it was edited. Exit code 4.
    #[error("{path} does not hold at its row {row}: {reason}; nothing was converted: restore the old ledger from a backup and run the upgrade again")]
    OldIntegrity {
        /// The old ledger.
        path: PathBuf,
        /// The first bad row (its id).
        row: i64,
        /// What does not hold.
        reason: String,
    },
    /// A row of a ledger of an earlier tessera that the new ledger
    /// refuses (`ledger upgrade`).
    #[error("{path}: {what} cannot be carried over: {reason}; nothing was converted (the old ledger is unchanged)")]
    Unconvertible {
        /// The old ledger.
        path: PathBuf,
        /// The row.
        what: String,
        /// Why.
        reason: String,
    },
    /// The ledger was written by a newer tessera.
    #[error("ledger {path} has schema {found}, newer than this tessera understands ({newest}); upgrade tessera")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i32,
        /// The newest schema this tessera reads in this backend.
        newest: i32,
    },
    /// The journal, a view or a checkpoint does not hold: the ledger was
    /// edited outside tessera. Exit code 4.
    #[error("ledger integrity failure at entry {entry}: {reason}; restore the ledger from a backup and investigate")]
    Integrity {
        /// The first bad entry (its position, from 1).
        entry: u64,
        /// What does not hold.
        reason: String,
    },
    /// A view does not hold what the journal says (a row edited, added
    /// or deleted outside tessera): a writer refuses to decide on it and
    /// writes nothing. Exit code 4.
    #[error("the ledger was modified outside tessera: entry {entry}: {reason}; nothing was written: run `tessera ledger verify` and restore the ledger from a backup")]
    Modified {
        /// The entry the first difference points at.
        entry: u64,
        /// What does not hold.
        reason: String,
    },
    /// Another writer held the ledger past the timeout.
    #[error("ledger {path}: another tessera process has been writing it for {waited} s (an issuance or a bulk run); let it finish and run the command again (reading commands such as `tessera ledger list` work meanwhile)")]
    Busy {
        /// The file.
        path: PathBuf,
        /// Seconds waited.
        waited: u64,
    },
    /// The file, its folder or the medium is read-only.
    #[error("ledger {path} cannot be written: the file, its folder or the medium is read-only; run the command as the ledger's owner, or give the owner write access to the file and its folder (the ledger needs both for its journal files), or move the medium to a writable mount; never issue into a copy of the ledger, which would fork it: two ledgers hand out the same serials and sequences (reading commands work as they are)")]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },
    /// The file system failed.
    #[error("ledger {path}: {what}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened and what to do.
        what: String,
    },
    /// An entry that cannot be appended (its sequence is not the next, its
    /// vendor is not the ledger's ...).
    #[error("ledger {path}: {reason}")]
    Conflict {
        /// The file.
        path: PathBuf,
        /// What.
        reason: String,
    },
    /// The ledger ends before the entry the checkpoint given to compare
    /// with (`--expect-head`) covers: it is older than the checkpoint, a
    /// backup taken before it or a ledger cut off. Exit code 4. Which one
    /// only the operator knows, so the message says what to do in each
    /// case ("restore from a backup" alone is circular for a backup).
    #[error("this ledger ends at entry {entries}, the expected head covers {covered} entries: the ledger is older than that checkpoint. If it is a backup taken before the checkpoint, it lacks entries {}..{covered} issued after it: verify it against the checkpoint kept on the day it was taken, and restore from a newer backup (one that passes with this checkpoint) before issuing. If it is the live ledger, entries {}..{covered} were cut off: stop issuing from it (it would hand out serials and sequences again) and restore it from a backup that passes with this checkpoint", entries + 1, entries + 1)]
    BehindExpectedHead {
        /// The entries this ledger holds.
        entries: u64,
        /// The entries the expected head covers.
        covered: u64,
    },
    /// The checkpoint given to compare with (`--expect-head`) is not a
    /// valid checkpoint of this vendor, or belongs to another ledger.
    #[error("the expected head is not usable: {reason}")]
    ExpectedHead {
        /// Why.
        reason: String,
    },
    /// The checkpoint of a transaction could not be signed: nothing was
    /// recorded.
    #[error("ledger {path}: the checkpoint could not be signed ({reason}); nothing was recorded")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A path, and the setting that named it when known.
fn named(path: &Path, by: Option<&str>) -> String {
    match by {
        Some(by) => format!("{} (named by {by})", path.display()),
        None => path.display().to_string(),
    }
}

fn not_a_file_message(path: &Path, what: &str, by: Option<&str>) -> String {
    let example = if what == "a directory" {
        format!(" (for example {})", path.join("ledger.db").display())
    } else {
        String::new()
    };
    format!(
        "{} is {what}, not a ledger file: name the ledger's file{example} with --ledger, TESSERA_LEDGER or `ledger` in tessera.toml (`tessera config` shows which is in effect), or create one with `tessera ledger init`",
        named(path, by)
    )
}

/// What a file that is no regular file is, for [`LedgerError::NotAFile`]
/// (`None`: a regular file).
#[must_use]
pub fn not_a_file(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    Some(if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    })
}

fn exists_message(path: &Path) -> String {
    if postgres::is_url(path) {
        format!("{} holds a tessera ledger already: tessera never creates a ledger over an existing one; name an empty database (`createdb NAME`), or use the ledger that is there", path.display())
    } else {
        format!("{} exists: tessera never creates a ledger over an existing file; name a new file, or use the ledger that is there", path.display())
    }
}

impl LedgerError {
    /// A missing ledger, or a path that is no file, with the setting that
    /// named its path (`--ledger`, `$TESSERA_LEDGER`, `` `ledger` in
    /// FILE ``): the message says where to look. Other errors unchanged.
    #[must_use]
    pub fn named_by(self, by: &str) -> Self {
        match self {
            Self::NotFound { path, .. } => Self::NotFound {
                path,
                named_by: Some(by.to_owned()),
            },
            Self::NotAFile { path, what, .. } => Self::NotAFile {
                path,
                what,
                named_by: Some(by.to_owned()),
            },
            other => other,
        }
    }

    /// Whether this is an integrity failure, a damaged or a foreign file
    /// (exit code 4).
    #[must_use]
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Self::Integrity { .. }
                | Self::BehindExpectedHead { .. }
                | Self::Modified { .. }
                | Self::OldIntegrity { .. }
                | Self::Empty(_)
                | Self::Foreign { .. }
                | Self::Damaged { .. }
        )
    }
}

/// A license to append ([`Writer::append`]); its serial, sequence, id and
/// the rest are read from the license itself.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// What it is.
    pub action: Action,
    /// The signed license (COSE_Sign1).
    pub bytes: Vec<u8>,
    /// The order, as JSON.
    pub order_json: String,
    /// When (the license's `iat`).
    pub issued_at: i64,
    /// Idempotency key of a bulk row.
    pub idem_key: Option<String>,
    /// Device key of the request it answers.
    pub request_key: Option<[u8; 32]>,
}

/// A license in the ledger.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// The journal entry holding it (its position, from 1).
    #[serde(rename = "entry")]
    pub id: i64,
    /// The content.
    #[serde(flatten)]
    pub row: RecordFields,
    /// The entry's hash (hex).
    #[serde(with = "hex_bytes", rename = "entry_hash")]
    pub hash: [u8; 32],
}

/// The fields of a license in the ledger (serializable).
#[derive(Clone, Debug, Serialize)]
pub struct RecordFields {
    /// SW serial.
    pub serial: String,
    /// Sequence.
    pub sequence: u32,
    /// License id.
    #[serde(with = "hex_bytes")]
    pub license_id: [u8; 16],
    /// What it was.
    pub action: Action,
    /// The signed license.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// The order JSON.
    #[serde(skip)]
    pub order_json: String,
    /// Operator.
    pub operator: String,
    /// Issue time.
    pub issued_at: i64,
    /// Customer.
    pub customer: String,
    /// PBX name.
    pub pbx_name: String,
    /// Platform.
    pub platform: String,
    /// Lease end.
    pub lease_end: i64,
    /// Term end.
    pub term_end: Option<i64>,
    /// Bulk idempotency key.
    pub idem_key: Option<String>,
}

impl Record {
    /// Issue time as RFC 3339.
    #[must_use]
    pub fn issued_at_text(&self) -> String {
        rfc3339_unix(self.row.issued_at)
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// What a lifecycle command recorded next to the license it issued:
/// the approval of a change, the reason of a replacement or a void, the
/// two sides of a sharing, a decommission.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// SW serial.
    pub serial: String,
    /// The sequence of the license this event issued.
    pub sequence: u32,
    /// `change`, `decommission`, `replace`, `void`, `share`,
    /// `device_key` (a new device key the operator accepted) or
    /// `retire_keys` (the binding's other device keys withdrawn).
    pub kind: String,
    /// What it was about (JSON object).
    pub detail: serde_json::Value,
    /// Who.
    pub operator: String,
    /// When (Unix seconds).
    pub at: i64,
}

impl Event {
    /// A one-line description for people.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for key in [
            "reason",
            "approval",
            "voided_license_id",
            "replaced_sequence",
            "server",
            "client",
        ] {
            match self.detail.get(key) {
                Some(serde_json::Value::String(v)) => {
                    parts.push(format!("{} {v}", key.replace('_', " ")));
                }
                Some(serde_json::Value::Number(n)) => {
                    parts.push(format!("{} {n}", key.replace('_', " ")));
                }
                _ => {}
            }
        }
        if let Some(d) = self
            .detail
            .get("decreases")
            .and_then(serde_json::Value::as_str)
        {
            parts.push(format!("decreases {d}"));
        }
        if let Some(keys) = self
            .detail
            .get("retired_keys")
            .and_then(serde_json::Value::as_array)
        {
            let keys: Vec<&str> = keys.iter().filter_map(serde_json::Value::as_str).collect();
            parts.push(format!(
                "keys withdrawn {}, by {}",
                keys.join(" "),
                self.operator
            ));
        }
        if let Some(k) = self
            .detail
            .get("device_key")
            .and_then(serde_json::Value::as_str)
        {
            parts.push(format!("new key {k}, accepted by {}", self.operator));
        }
        format!("{} {}", self.kind, parts.join(", "))
    }
}

/// A binding that a replacement superseded: renewals matching it, or
/// coming from one of its device keys, are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplacedBinding {
    /// The last license of the replaced binding.
    pub sequence: u32,
    /// The replacement's sequence.
    pub replaced_by: u32,
    /// Device keys (hex) of the requests the replaced binding answered.
    pub device_keys: Vec<String>,
    /// `rma` or `migrate`.
    pub reason: String,
    /// When it was replaced.
    pub at: i64,
}

/// A license row as a backend reads it (the licenses view joined with
/// its journal entry), before it is checked and turned into a
/// [`Record`]: the one place that does, for every backend.
#[derive(Debug)]
pub(crate) struct RawRecord {
    pub serial: String,
    pub sequence: i64,
    pub license_id: Vec<u8>,
    pub action: String,
    pub entry: i64,
    pub operator: String,
    pub issued_at: i64,
    pub customer: String,
    pub pbx_name: String,
    pub platform: String,
    pub lease_end: i64,
    pub term_end: Option<i64>,
    pub idem_key: Option<String>,
    /// The journal entry's body (`None`: the entry is missing).
    pub body: Option<Vec<u8>>,
    /// The journal entry's hash.
    pub hash: Option<Vec<u8>>,
}

impl RawRecord {
    /// The record, or [`LedgerError::Damaged`] naming what does not fit.
    pub(crate) fn into_record(self, path: &Path) -> Result<Record, LedgerError> {
        let named = format!("{}:{}", self.serial, self.sequence);
        let bad = |what: String| LedgerError::Damaged {
            path: path.to_owned(),
            what: format!("view licenses, row {named}: {what}"),
        };
        let entry = self.entry;
        let (Some(body), Some(hash)) = (self.body, self.hash) else {
            return Err(bad(format!("its journal entry {entry} is missing")));
        };
        let Ok(Entry {
            fact: Fact::License { bytes, order, .. },
            ..
        }) = Entry::decode(&body)
        else {
            return Err(bad(format!("journal entry {entry} is not its license")));
        };
        let action = self.action;
        Ok(Record {
            id: entry,
            row: RecordFields {
                sequence: u32::try_from(self.sequence)
                    .map_err(|_| bad(format!("sequence {} is out of range", self.sequence)))?,
                license_id: <[u8; 16]>::try_from(self.license_id.as_slice()).map_err(|_| {
                    bad(format!(
                        "license id is {} bytes, not 16",
                        self.license_id.len()
                    ))
                })?,
                action: Action::parse(&action)
                    .ok_or_else(|| bad(format!("unknown action `{action}`")))?,
                bytes,
                order_json: order,
                operator: self.operator,
                issued_at: self.issued_at,
                customer: self.customer,
                pbx_name: self.pbx_name,
                platform: self.platform,
                lease_end: self.lease_end,
                term_end: self.term_end,
                idem_key: self.idem_key,
                serial: self.serial,
            },
            hash: <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| bad(format!("entry hash is {} bytes, not 32", hash.len())))?,
        })
    }
}

/// A per-serial summary for `ledger list` and reports.
#[derive(Clone, Debug, Serialize)]
pub struct SerialSummary {
    /// SW serial.
    pub serial: String,
    /// HW serial it was converted from, if any.
    pub hw_serial: Option<String>,
    /// Licenses issued for it.
    pub licenses: u32,
    /// The latest license.
    pub latest: Record,
}

/// The queries commands and rules make, on a snapshot of the views.
pub trait Queries {
    /// The latest license of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError>;
    /// Every license of a serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError>;
    /// The license recorded for a bulk idempotency key.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError>;
    /// The license with this id.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError>;
    /// Every license, in journal order.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn all(&self) -> Result<Vec<Record>, LedgerError>;
    /// One summary per serial, by serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError>;
    /// The SW serial a (normalized) HW serial was converted to.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn sw_serial_of(&self, hw: &str) -> Result<Option<String>, LedgerError>;
    /// The HW serials converted to a SW serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError>;
    /// The pending stop/delete schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn pending_schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError>;
    /// The lifecycle events of a serial, in sequence order.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError>;
    /// Device keys (hex) of requests answered from sequence `from` on.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn request_keys_since(&self, serial: &str, from: u32) -> Result<Vec<String>, LedgerError>;
    /// The license rows of `serial` from sequence `from` on that answered
    /// a request, as (sequence, device key in hex), in sequence order:
    /// what decides which keys a binding still has (a voided license's
    /// key, or one withdrawn later, no longer counts).
    ///
    /// # Errors
    /// [`LedgerError`].
    fn request_key_rows(&self, serial: &str, from: u32) -> Result<Vec<(u32, String)>, LedgerError>;
    /// The serials other than `serial` with a license answering a request
    /// signed by device key `key` (hex), in serial order. Scans the
    /// licenses view: only the acceptance of a new key asks it.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn serials_with_request_key(&self, key: &str, serial: &str)
        -> Result<Vec<String>, LedgerError>;
    /// The replaced bindings of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn replaced_bindings(&self, serial: &str) -> Result<Vec<ReplacedBinding>, LedgerError>;
    /// Whether a serial has a license or a converted HW serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn serial_in_use(&self, serial: &str) -> Result<bool, LedgerError>;
    /// The registry entry of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn pbx(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError>;
    /// Every registry entry, by serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn pbxs(&self) -> Result<Vec<PbxRow>, LedgerError>;
    /// The registry history of a serial (its addition and changes).
    ///
    /// # Errors
    /// [`LedgerError`].
    fn pbx_changes(&self, serial: &str) -> Result<Vec<PbxChangeRow>, LedgerError>;
    /// The billed quantities recorded from `from` (inclusive) to `to`
    /// (exclusive), by serial and entry.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn charges(&self, from: i64, to: i64) -> Result<Vec<ChargeRow>, LedgerError>;
    /// The last journal entry: position and hash.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn head(&self) -> Result<Option<(u64, [u8; 32])>, LedgerError>;
    /// The newest checkpoint: entries covered and its bytes.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LedgerError>;
    /// Whether the overdue notice of `day` for `recipient` is in effect
    /// (claimed and not withdrawn; [`crate::notify`]).
    ///
    /// # Errors
    /// [`LedgerError`].
    fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError>;
}

/// What [`Backend::journal`] calls with each stored entry: (position as
/// stored, body, hash).
pub type JournalVisitor<'a> = dyn FnMut(i64, &[u8], &[u8]) -> Result<(), LedgerError> + 'a;

/// A backend's write transaction: what the journal logic of [`Writer`]
/// needs from a database. Dropping it without [`StoreTx::commit`] rolls
/// everything back.
pub trait StoreTx: ViewStore + Queries {
    /// Stores a journal entry.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn append_entry(
        &mut self,
        position: u64,
        body: &[u8],
        hash: &[u8; 32],
    ) -> Result<(), LedgerError>;
    /// Stores a signed checkpoint.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn add_checkpoint(&mut self, entries: u64, bytes: &[u8]) -> Result<(), LedgerError>;
    /// Opens a savepoint.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn savepoint(&mut self) -> Result<(), LedgerError>;
    /// Keeps what was written since the savepoint.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn release(&mut self) -> Result<(), LedgerError>;
    /// Undoes what was written since the savepoint.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn rollback_to(&mut self) -> Result<(), LedgerError>;
    /// Makes everything durable.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn commit(self: Box<Self>) -> Result<(), LedgerError>;
    /// Every journal row in order, as this transaction sees them.
    ///
    /// # Errors
    /// [`LedgerError`], or what `f` returns.
    fn journal(&self, f: &mut JournalVisitor<'_>) -> Result<(), LedgerError>;
    /// Every row of every view, as this transaction sees them.
    ///
    /// # Errors
    /// [`LedgerError`], or what `f` returns.
    fn view_rows(
        &self,
        f: &mut dyn FnMut(views::ViewRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
    /// The entries the oldest checkpoint covers.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn first_checkpoint(&self) -> Result<Option<u64>, LedgerError>;
    /// A number that changes whenever anyone else commits to the ledger
    /// (`None`: the backend cannot tell, so the views are checked every
    /// time; [`SESSION_STAMP`]: checked once per open ledger).
    ///
    /// # Errors
    /// [`LedgerError`].
    fn change_stamp(&self) -> Result<Option<i64>, LedgerError>;
}

/// A ledger backend: a snapshot to read and write transactions to start.
pub trait Backend: Queries + core::fmt::Debug {
    /// What names the ledger in messages (a file).
    fn path(&self) -> &Path;
    /// Starts a write transaction, waiting up to `timeout` for another
    /// writer (`on_wait` is called once if it has to).
    ///
    /// # Errors
    /// [`LedgerError::Busy`] after the timeout, [`LedgerError`].
    fn begin<'a>(
        &'a mut self,
        timeout: Duration,
        on_wait: &dyn Fn(&Path),
    ) -> Result<Box<dyn StoreTx + 'a>, LedgerError>;
    /// The identity view.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn identity(&self) -> Result<Option<Identity>, LedgerError>;
    /// Every journal row in order: (position as stored, body, hash).
    ///
    /// # Errors
    /// [`LedgerError`], or what `f` returns.
    fn journal(&self, f: &mut JournalVisitor<'_>) -> Result<(), LedgerError>;
    /// Every row of every view.
    ///
    /// # Errors
    /// [`LedgerError`], or what `f` returns.
    fn view_rows(
        &self,
        f: &mut dyn FnMut(views::ViewRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;
    /// Every checkpoint, oldest first.
    ///
    /// # Errors
    /// [`LedgerError`].
    fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError>;
}

macro_rules! queries_via_sql {
    ($t:ty) => {
        queries_via_sql!($t, sql);
    };
    ($t:ty, $via:ident) => {
        impl Queries for $t {
            fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
                self.$via().latest(serial)
            }
            fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
                self.$via().history(serial)
            }
            fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
                self.$via().by_idem_key(key)
            }
            fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
                self.$via().by_license_id(id)
            }
            fn all(&self) -> Result<Vec<Record>, LedgerError> {
                self.$via().all()
            }
            fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError> {
                self.$via().serials()
            }
            fn sw_serial_of(&self, hw: &str) -> Result<Option<String>, LedgerError> {
                self.$via().sw_serial_of(hw)
            }
            fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError> {
                self.$via().hw_serials_of(serial)
            }
            fn pending_schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError> {
                self.$via().pending_schedule(serial)
            }
            fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
                self.$via().events(serial)
            }
            fn request_keys_since(
                &self,
                serial: &str,
                from: u32,
            ) -> Result<Vec<String>, LedgerError> {
                self.$via().request_keys_since(serial, from)
            }
            fn request_key_rows(
                &self,
                serial: &str,
                from: u32,
            ) -> Result<Vec<(u32, String)>, LedgerError> {
                self.$via().request_key_rows(serial, from)
            }
            fn serials_with_request_key(
                &self,
                key: &str,
                serial: &str,
            ) -> Result<Vec<String>, LedgerError> {
                self.$via().serials_with_request_key(key, serial)
            }
            fn replaced_bindings(&self, serial: &str) -> Result<Vec<ReplacedBinding>, LedgerError> {
                self.$via().replaced_bindings(serial)
            }
            fn serial_in_use(&self, serial: &str) -> Result<bool, LedgerError> {
                self.$via().serial_in_use(serial)
            }
            fn pbx(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
                self.$via().pbx(serial)
            }
            fn pbxs(&self) -> Result<Vec<PbxRow>, LedgerError> {
                self.$via().pbxs()
            }
            fn pbx_changes(&self, serial: &str) -> Result<Vec<PbxChangeRow>, LedgerError> {
                self.$via().pbx_changes(serial)
            }
            fn charges(&self, from: i64, to: i64) -> Result<Vec<ChargeRow>, LedgerError> {
                self.$via().charges(from, to)
            }
            fn head(&self) -> Result<Option<(u64, [u8; 32])>, LedgerError> {
                self.$via().head()
            }
            fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
                self.$via().latest_checkpoint()
            }
            fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
                self.$via().notice_in_effect(recipient, day)
            }
        }
    };
}

queries_via_sql!(SqliteBackend);
queries_via_sql!(SqliteTx<'_>);
queries_via_sql!(PgBackend, pg);
queries_via_sql!(PgTx<'_>, pg);

/// [`StoreTx`] and [`Backend`] for a backend whose transaction type
/// `$tx` and backend type `$b` have the inherent methods of the traits,
/// and whose queries are reached through `$via()`.
macro_rules! backend_via {
    ($b:ident, $tx:ident, $via:ident) => {
        impl StoreTx for $tx<'_> {
            fn append_entry(
                &mut self,
                position: u64,
                body: &[u8],
                hash: &[u8; 32],
            ) -> Result<(), LedgerError> {
                $tx::append_entry(self, position, body, hash)
            }
            fn add_checkpoint(&mut self, entries: u64, bytes: &[u8]) -> Result<(), LedgerError> {
                $tx::add_checkpoint(self, entries, bytes)
            }
            fn savepoint(&mut self) -> Result<(), LedgerError> {
                $tx::savepoint(self)
            }
            fn release(&mut self) -> Result<(), LedgerError> {
                $tx::release(self)
            }
            fn rollback_to(&mut self) -> Result<(), LedgerError> {
                $tx::rollback_to(self)
            }
            fn commit(self: Box<Self>) -> Result<(), LedgerError> {
                $tx::commit(*self)
            }
            fn journal(&self, f: &mut JournalVisitor<'_>) -> Result<(), LedgerError> {
                self.$via().journal(f)
            }
            fn view_rows(
                &self,
                f: &mut dyn FnMut(views::ViewRow) -> Result<(), LedgerError>,
            ) -> Result<(), LedgerError> {
                self.$via().view_rows(f)
            }
            fn first_checkpoint(&self) -> Result<Option<u64>, LedgerError> {
                self.$via().first_checkpoint()
            }
            fn change_stamp(&self) -> Result<Option<i64>, LedgerError> {
                self.$via().change_stamp()
            }
        }

        impl Backend for $b {
            fn path(&self) -> &Path {
                $b::path(self)
            }
            fn begin<'a>(
                &'a mut self,
                timeout: Duration,
                on_wait: &dyn Fn(&Path),
            ) -> Result<Box<dyn StoreTx + 'a>, LedgerError> {
                Ok(Box::new($b::begin(self, timeout, on_wait)?))
            }
            fn identity(&self) -> Result<Option<Identity>, LedgerError> {
                let mut found = None;
                self.$via().view_rows(&mut |row| {
                    if let views::ViewRow::Identity(i) = row {
                        found = Some(i);
                    }
                    Ok(())
                })?;
                Ok(found)
            }
            fn journal(&self, f: &mut JournalVisitor<'_>) -> Result<(), LedgerError> {
                self.$via().journal(f)
            }
            fn view_rows(
                &self,
                f: &mut dyn FnMut(views::ViewRow) -> Result<(), LedgerError>,
            ) -> Result<(), LedgerError> {
                self.$via().view_rows(f)
            }
            fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
                self.$via().checkpoints()
            }
        }
    };
}

backend_via!(SqliteBackend, SqliteTx, sql);
backend_via!(PgBackend, PgTx, pg);

/// A checkpoint made by a commit, or found in a ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The checkpoint's content.
    pub data: CheckpointData,
    /// The key that signed it.
    pub kid: [u8; 8],
    /// The signed COSE_Sign1.
    pub bytes: Vec<u8>,
}

/// What [`Ledger::verify`] checked.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The ledger's identity.
    pub identity: Identity,
    /// Journal entries.
    pub entries: u64,
    /// Hash of the last entry.
    pub head: [u8; 32],
    /// Licenses (each signature checked).
    pub licenses: u64,
    /// Checkpoints (each signature checked).
    pub checkpoints: u64,
    /// The checkpoint given with `--expect-head`, which the journal holds.
    pub expected: Option<CheckpointData>,
}

/// What [`fold_journal`] calls with each entry once folded: (position,
/// entry, hash, the views so far).
type FoldVisitor<'a> =
    dyn FnMut(u64, &Entry, [u8; 32], &MemoryViews) -> Result<(), LedgerError> + 'a;

/// The journal folded from its first entry, as `ledger verify` and every
/// writer fold it: positions from 1 without a gap, every hash from the
/// one before it, every entry decoded and applied to `memory`
/// ([`views::apply`]); `each` is then called with the entry, its
/// position and hash, and `memory`. Returns the last position and hash.
///
/// # Errors
/// [`LedgerError::Integrity`] naming the first bad entry, what `journal`
/// or `each` returns.
fn fold_journal(
    journal: impl FnOnce(&mut JournalVisitor<'_>) -> Result<(), LedgerError>,
    memory: &mut MemoryViews,
    each: &mut FoldVisitor<'_>,
) -> Result<(u64, [u8; 32]), LedgerError> {
    let broken = |entry: u64, reason: String| LedgerError::Integrity { entry, reason };
    let mut prev = [0u8; 32];
    let mut position = 0u64;
    journal(&mut |stored, body, hash| {
        let want = position + 1;
        if u64::try_from(stored).ok() != Some(want) {
            return Err(broken(
                want,
                format!("entry {want} is missing (the next entry in the journal is {stored}): entries were deleted or reordered"),
            ));
        }
        let computed = entry_hash(&prev, want, body);
        if hash != computed {
            return Err(broken(
                want,
                "the entry does not match its hash (it was edited, or an entry before it was)"
                    .into(),
            ));
        }
        let entry = Entry::decode(body)
            .map_err(|e| broken(want, format!("the entry cannot be read: {}", e.0)))?;
        views::apply(memory, want, &entry).map_err(|e| match e {
            FoldError::Invalid(reason) => broken(want, reason),
            FoldError::Store(e) => e,
        })?;
        each(want, &entry, computed, memory)?;
        prev = computed;
        position = want;
        Ok(())
    })?;
    Ok((position, prev))
}

/// Whether an entry at `position` carries over the counters of a ledger
/// of an earlier tessera ([`views::ViewStore::carry_over`]), given where
/// the first checkpoint ends and the body of entry 2.
pub(crate) fn carries_over(
    position: u64,
    first_checkpoint: Option<u64>,
    second_entry: Option<Vec<u8>>,
) -> Result<bool, LedgerError> {
    if first_checkpoint.is_some_and(|n| position > n) {
        return Ok(false);
    }
    Ok(second_entry.is_some_and(|body| {
        matches!(
            Entry::decode(&body),
            Ok(Entry {
                fact: Fact::Upgraded { .. },
                ..
            })
        )
    }))
}

/// Checks, inside a write transaction, that every view holds exactly what
/// the journal makes of them ([`Ledger::verify`]'s fold and comparison,
/// without the signatures): a writer decides nothing on a view row the
/// journal does not back.
///
/// # Errors
/// [`LedgerError::Modified`] naming the entry of the first difference,
/// other [`LedgerError`]s.
fn check_views(store: &dyn StoreTx) -> Result<(), LedgerError> {
    let modified = |e: LedgerError| match e {
        LedgerError::Integrity { entry, reason } => LedgerError::Modified { entry, reason },
        other => other,
    };
    let mut memory = MemoryViews::default();
    memory.set_first_checkpoint(store.first_checkpoint()?);
    let (position, _) = fold_journal(|f| store.journal(f), &mut memory, &mut |_, _, _, _| Ok(()))
        .map_err(modified)?;
    match memory.compare(position, |f| store.view_rows(f))? {
        Some((entry, reason)) => Err(LedgerError::Modified { entry, reason }),
        None => Ok(()),
    }
}

/// A function called once when a writer has to wait for another.
pub type WaitNotice = Box<dyn Fn(&Path) + Send + Sync>;

/// An open ledger.
pub struct Ledger {
    backend: Box<dyn Backend + Send>,
    wait_notice: Option<WaitNotice>,
    busy_timeout: Duration,
    /// The views were checked against the journal, or written by this
    /// ledger's own writers since, up to this head; nobody else has
    /// committed since the change stamp (`None`: check again).
    views_checked: Option<ViewsChecked>,
    /// The keys a writer checks the last checkpoint with
    /// ([`Ledger::set_keyring`]), besides the key that signs.
    keyring: Vec<KeyEntry>,
    /// The last checkpoint this ledger verified or signed itself
    /// ([`check_signed_head`]).
    checkpoint_verified: Option<Vec<u8>>,
}

/// The change stamp of a backend that cannot tell whether another
/// session committed (PostgreSQL, where several servers share one
/// database): its views are checked by the first writer of each open
/// ledger, not before every transaction, so that a long-running service
/// does not fold the whole journal per commit. Edits made to view tables
/// alone after that are found by `tessera ledger verify` and by the next
/// process that opens the ledger.
pub(crate) const SESSION_STAMP: i64 = i64::MIN;

/// What [`Ledger::views_checked`] remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ViewsChecked {
    head: u64,
    stamp: i64,
}

impl core::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Why a file given as the expected head is not usable, in a checkpoint's
/// words (the verifier's own speak of licenses and devices).
fn checkpoint_refusal(e: &tessera_verifier::Error) -> String {
    use tessera_verifier::Error as E;
    let why = match e {
        E::UnknownKey | E::RetiredKey => {
            "it is signed by a key that is not in the vendor's keyring (a checkpoint of another vendor or ledger?)".to_owned()
        }
        E::KeyNotValidAt => {
            "it is signed by a key of the keyring outside that key's validity window".to_owned()
        }
        E::BadSignature => "its signature does not verify: the file was altered".to_owned(),
        E::WrongType => "it is a license or a request, not a checkpoint (`tessera ledger head -o FILE` writes one)".to_owned(),
        other => format!("it is not a checkpoint ({other})"),
    };
    format!("{why}; check the file and the keyring")
}

/// A writer's check of the journal's head against the last checkpoint
/// (which covers it), before anything is decided or written: a journal
/// rewritten with its hashes recomputed is consistent in itself, and only
/// the signed head tells it apart. The checkpoint must match the head and
/// verify under the key its kid names: one of `keys` (the vendor's
/// keyring, retired keys included: they signed the past) or the key that
/// signs now. A checkpoint of a key the writer does not know, or whose
/// signature does not verify, is refused as forged: a writer that accepted
/// it would sign a genuine checkpoint over the forged history.
///
/// `verified` holds the bytes of the last checkpoint this ledger verified
/// or signed itself: the same bytes again need no second verification.
fn check_signed_head(
    bytes: &[u8],
    position: u64,
    hash: &[u8; 32],
    keys: &[KeyEntry],
    signer: &dyn Signer,
    verified: &mut Option<Vec<u8>>,
) -> Result<(), LedgerError> {
    const WHAT_TO_DO: &str = "run `tessera ledger verify --expect-head FILE` with a checkpoint kept elsewhere and restore the ledger from a backup (nothing is issued into a ledger in this state)";
    let refused = |what: String| LedgerError::Integrity {
        entry: position,
        reason: format!("{what}; {WHAT_TO_DO}"),
    };
    let c = tessera_verifier::decode_checkpoint_unverified(bytes).map_err(|e| {
        refused(format!(
            "its last checkpoint does not decode ({e}): the journal was rewritten after it was signed"
        ))
    })?;
    if c.entries() != position || c.head() != *hash {
        return Err(refused(format!(
            "the head of entry {position} is not the one its last checkpoint signed: the journal was rewritten after it was signed"
        )));
    }
    if verified.as_deref() == Some(bytes) {
        return Ok(());
    }
    let kid = c.kid();
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .copied()
        .or_else(|| (signer.kid() == kid).then(|| signer.verifying_key_entry(i64::MIN)));
    let Some(key) = key else {
        let known = if keys.is_empty() {
            format!(
                "which is not the signing key ({}), and no keyring was given to know others by: if it is the key before a rotation, name the vendor's keyring (--keyring, TESSERA_KEYRING or `keyring` in tessera.toml); otherwise",
                hex::encode(signer.kid())
            )
        } else {
            "which is not in the vendor's keyring (nor the signing key):".to_owned()
        };
        return Err(refused(format!(
            "the last checkpoint (entry {position}) is signed by key {}, {known} the checkpoint was forged",
            hex::encode(kid)
        )));
    };
    decode_checkpoint(bytes, &[key]).map_err(|e| {
        let why = match e {
            tessera_verifier::Error::BadSignature => "its signature does not verify".to_owned(),
            tessera_verifier::Error::KeyNotValidAt => {
                "it was signed outside that key's validity window".to_owned()
            }
            other => other.to_string(),
        };
        refused(format!(
            "the last checkpoint (entry {position}) names key {} but does not verify under it ({why}): the checkpoint was forged or altered",
            hex::encode(kid),
        ))
    })?;
    *verified = Some(bytes.to_vec());
    Ok(())
}

/// `ledger verify`'s rule for the chain of checkpoints: the checkpoint of
/// entry `entries` names the one it follows (`previous`), which must be
/// the ledger's checkpoint before it (`last`, 0 for none). Every committed
/// transaction leaves a checkpoint in the same commit, so a checkpoint
/// missing from the chain was removed, as an attacker removes a forged
/// one once a genuine checkpoint was signed over the history it covered.
/// A chain may start late (checkpoints of a tessera before the field name
/// none), never stop once started: only a writer that does not chain (an
/// earlier tessera) signs a checkpoint without `previous`.
fn check_chain(
    entries: u64,
    previous: Option<u64>,
    last: u64,
    chained: &mut bool,
) -> Result<(), LedgerError> {
    match previous {
        Some(p) if p != last => {
            let before = if last == 0 {
                "the ledger has no checkpoint before it".to_owned()
            } else {
                format!("the ledger's checkpoint before it is the one of entry {last}")
            };
            Err(LedgerError::Integrity {
                entry: p.min(last) + 1,
                reason: format!(
                    "the checkpoint signed for entry {entries} follows one of entry {p}, but {before}: a checkpoint was removed (a forged one is removed so, once a genuine checkpoint was signed over the history it covered), so entries {}..{entries} may have been rewritten; compare them with a backup or run `tessera ledger verify --expect-head FILE` with a checkpoint kept elsewhere",
                    p.min(last) + 1
                ),
            })
        }
        Some(_) => {
            *chained = true;
            Ok(())
        }
        None if *chained => Err(LedgerError::Integrity {
            entry: last + 1,
            reason: format!(
                "the checkpoint signed for entry {entries} does not name the checkpoint it follows, although the one of entry {last} did: it was signed by a writer that does not check the ledger's checkpoints (an earlier tessera), so entries {}..{entries} may have been written into a rewritten journal; compare them with a backup, and update every tessera that writes this ledger",
                last + 1
            ),
        }),
        None => Ok(()),
    }
}

/// The keys that verify what a ledger holds: every key of the keyring,
/// retired or not (a retired key signed the past; each key's window must
/// still cover the issue time of what it signed).
pub(crate) fn history_keys(keyring: &[KeyEntry]) -> Vec<KeyEntry> {
    keyring
        .iter()
        .map(|k| KeyEntry {
            retired: false,
            ..*k
        })
        .collect()
}

/// The write-ahead log and index of a ledger being built under a
/// temporary name, removed with it when the build fails.
struct SideFiles {
    main: PathBuf,
    armed: bool,
}

impl SideFiles {
    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut name = self.main.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }

    fn wal(&self) -> PathBuf {
        self.with_suffix("-wal")
    }
}

impl Drop for SideFiles {
    fn drop(&mut self) {
        if self.armed {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(self.with_suffix(suffix));
            }
        }
    }
}

fn random_ledger_id() -> Result<[u8; 16], LedgerError> {
    use rand_core::{OsRng, RngCore};
    let mut id = [0u8; 16];
    OsRng.try_fill_bytes(&mut id).map_err(|e| LedgerError::Io {
        path: PathBuf::new(),
        what: format!("the system random number generator failed: {e}"),
    })?;
    Ok(id)
}

impl Ledger {
    fn new(backend: impl Backend + Send + 'static) -> Self {
        Self {
            backend: Box::new(backend),
            wait_notice: None,
            busy_timeout: BUSY_TIMEOUT,
            views_checked: None,
            keyring: Vec::new(),
            checkpoint_verified: None,
        }
    }

    /// Creates a ledger at `path`: a new file (never over an existing one,
    /// mode 0600) holding the genesis entry (a random ledger id, `vendor`,
    /// `at`) and its first checkpoint signed by `signer`. The file appears
    /// at `path` only complete: it is built under a temporary name in the
    /// same folder and renamed without replacing anything.
    ///
    /// # Errors
    /// [`LedgerError::Exists`], [`LedgerError::Io`],
    /// [`LedgerError::Checkpoint`].
    pub fn init(
        path: &Path,
        vendor: &str,
        signer: &dyn Signer,
        operator: &str,
        at: i64,
    ) -> Result<CheckpointInfo, LedgerError> {
        Self::build(path, vendor, signer, operator, at, |_| Ok(()), None).map(|(c, ())| c)
    }

    /// [`Ledger::init`] that also appends what `fill` appends after the
    /// genesis entry, in the same transaction under the same checkpoint,
    /// and, with a `keyring`, verifies the whole new ledger
    /// ([`Ledger::verify`]) before the file appears at `path`: on any
    /// error nothing is left behind.
    pub(crate) fn build<T>(
        path: &Path,
        vendor: &str,
        signer: &dyn Signer,
        operator: &str,
        at: i64,
        fill: impl FnOnce(&mut Writer<'_>) -> Result<T, LedgerError>,
        keyring: Option<&[KeyEntry]>,
    ) -> Result<(CheckpointInfo, T), LedgerError> {
        if postgres::is_url(path) {
            return Self::build_postgres(path, vendor, signer, operator, at, fill, keyring);
        }
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(LedgerError::Exists(path.to_owned()));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.to_owned(),
            what: format!(
                "it cannot be created ({e}): check that its folder exists and is writable"
            ),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tessera-{}-", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(io)?;
        // The temporary file's write-ahead log and index go with it.
        let mut side_files = SideFiles {
            main: tmp.path().to_owned(),
            armed: true,
        };
        let (checkpoint, filled) = {
            let mut ledger = Self::new(SqliteBackend::create(tmp.path())?);
            let (checkpoint, filled) = ledger.genesis(path, vendor, signer, operator, at, fill)?;
            if let Some(keyring) = keyring {
                drop(ledger);
                // Opened to write, so that closing it leaves no log behind.
                Self::open(tmp.path())?.verify(keyring, None)?;
            }
            (checkpoint, filled)
            // The connections close here: SQLite folds its write-ahead log
            // into the file and removes it.
        };
        if side_files.wal().exists() {
            return Err(LedgerError::Io {
                path: path.to_owned(),
                what: "the new ledger's write-ahead log was not folded into it; nothing was created: run the command again".into(),
            });
        }
        side_files.armed = false;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                LedgerError::Exists(path.to_owned())
            } else {
                io(e.error)
            }
        })?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok((checkpoint, filled))
    }

    /// The first transaction of a new, empty ledger: the genesis entry
    /// (a random ledger id, `vendor`, `at`), what `fill` appends, and the
    /// checkpoint that covers them, committed.
    fn genesis<T>(
        &mut self,
        path: &Path,
        vendor: &str,
        signer: &dyn Signer,
        operator: &str,
        at: i64,
        fill: impl FnOnce(&mut Writer<'_>) -> Result<T, LedgerError>,
    ) -> Result<(CheckpointInfo, T), LedgerError> {
        let mut w = self.writer(signer, operator)?;
        w.push(
            at,
            Fact::Genesis {
                ledger_id: random_ledger_id()?,
                vendor: vendor.to_owned(),
                journal_format: journal::JOURNAL_FORMAT,
            },
        )?;
        let filled = fill(&mut w)?;
        let checkpoint = w.commit()?.ok_or_else(|| LedgerError::Conflict {
            path: path.to_owned(),
            reason: "the genesis entry made no checkpoint".into(),
        })?;
        Ok((checkpoint, filled))
    }

    /// [`Ledger::build`] in a PostgreSQL database: schema, genesis entry,
    /// what `fill` appends and the checkpoint in one transaction (a
    /// failure before its commit leaves the database as it was); with a
    /// `keyring`, the new ledger is then verified, and its tables are
    /// removed again when it does not verify.
    fn build_postgres<T>(
        url: &Path,
        vendor: &str,
        signer: &dyn Signer,
        operator: &str,
        at: i64,
        fill: impl FnOnce(&mut Writer<'_>) -> Result<T, LedgerError>,
        keyring: Option<&[KeyEntry]>,
    ) -> Result<(CheckpointInfo, T), LedgerError> {
        let mut ledger = Self::new(PgBackend::create(url)?);
        let (checkpoint, filled) = ledger.genesis(url, vendor, signer, operator, at, fill)?;
        if let Some(keyring) = keyring {
            drop(ledger);
            if let Err(e) = Self::open_read_only(url).and_then(|l| l.verify(keyring, None)) {
                PgBackend::drop_tables(url)?;
                return Err(e);
            }
        }
        Ok((checkpoint, filled))
    }

    /// [`Ledger::init`], then [`Ledger::open`] (tests, tools).
    ///
    /// # Errors
    /// As both.
    pub fn create(
        path: &Path,
        vendor: &str,
        signer: &dyn Signer,
        operator: &str,
        at: i64,
    ) -> Result<Self, LedgerError> {
        Self::init(path, vendor, signer, operator, at)?;
        Self::open(path)
    }

    /// Opens an existing ledger to issue.
    ///
    /// # Errors
    /// [`LedgerError::NotFound`], [`LedgerError::Empty`],
    /// [`LedgerError::Foreign`], [`LedgerError::OldFormat`],
    /// [`LedgerError::NewerSchema`], [`LedgerError::Damaged`].
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if postgres::is_url(path) {
            return Ok(Self::new(PgBackend::open(path)?));
        }
        Ok(Self::new(SqliteBackend::open(path, Mode::Write)?))
    }

    /// Opens an existing ledger to read: read-only, one snapshot, never
    /// waiting for a writer; also on read-only media.
    ///
    /// # Errors
    /// As [`Ledger::open`].
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        if postgres::is_url(path) {
            return Ok(Self::new(PgBackend::open_read_only(path)?));
        }
        Ok(Self::new(SqliteBackend::open(path, Mode::Read)?))
    }

    /// Calls `notice` once whenever a writer starts to wait for another
    /// (the CLI prints "waiting for another issuance to finish").
    pub fn set_wait_notice(&mut self, notice: WaitNotice) {
        self.wait_notice = Some(notice);
    }

    /// The vendor's keyring: a writer ([`Ledger::writer`]) verifies the
    /// ledger's last checkpoint under the key of the keyring its kid names
    /// (retired keys included: they signed the past) before it writes.
    /// Without a keyring only the key that signs is known, so a ledger
    /// whose last checkpoint another key signed (the one before a
    /// rotation) is refused until the keyring is given.
    pub fn set_keyring(&mut self, keyring: &[KeyEntry]) {
        self.keyring = history_keys(keyring);
        self.checkpoint_verified = None;
    }

    /// How long a writer waits for another before it gives up.
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.busy_timeout = timeout;
    }

    /// The ledger file.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.backend.path()
    }

    /// The queries, on this ledger's snapshot.
    #[must_use]
    pub fn queries(&self) -> &dyn Queries {
        &*self.backend
    }

    /// The ledger's identity.
    ///
    /// # Errors
    /// [`LedgerError::Damaged`] when the genesis entry's view is missing.
    pub fn identity(&self) -> Result<Identity, LedgerError> {
        self.backend
            .identity()?
            .ok_or_else(|| LedgerError::Damaged {
                path: self.path().to_owned(),
                what: "its identity (the genesis entry's view) is missing".into(),
            })
    }

    /// Starts a write transaction: it waits for other writers and holds
    /// the write lock until [`Writer::commit`] (or drop, which rolls
    /// back). Entries are recorded as `operator`'s; the commit's
    /// checkpoint is signed by `signer`.
    ///
    /// # Errors
    /// [`LedgerError::Busy`], [`LedgerError::ReadOnly`],
    /// [`LedgerError::Integrity`] when the journal's end is not covered by
    /// a checkpoint (a damaged ledger is not written to), other
    /// [`LedgerError`]s.
    pub fn writer<'w>(
        &'w mut self,
        signer: &'w dyn Signer,
        operator: &'w str,
    ) -> Result<Writer<'w>, LedgerError> {
        self.open_writer(signer, operator, true)
    }

    /// [`Ledger::writer`]; `check_views: false` skips the check of the
    /// views against the journal (tests that play an earlier tessera).
    fn open_writer<'w>(
        &'w mut self,
        signer: &'w dyn Signer,
        operator: &'w str,
        check_views: bool,
    ) -> Result<Writer<'w>, LedgerError> {
        let path = self.backend.path().to_owned();
        let notice = self.wait_notice.as_deref();
        let on_wait = |p: &Path| {
            if let Some(n) = notice {
                n(p);
            }
        };
        let store = self.backend.begin(self.busy_timeout, &on_wait)?;
        let head = store.head()?;
        let identity = ViewStore::identity(&*store)?;
        if let Some((position, hash)) = head {
            let latest = store.latest_checkpoint()?;
            let covered = latest.as_ref().map_or(0, |(n, _)| *n);
            if covered != position {
                return Err(LedgerError::Integrity {
                    entry: covered.saturating_add(1).min(position),
                    reason: format!(
                        "the journal holds {position} entries, its last checkpoint covers {covered}; run `tessera ledger verify` (nothing is issued into a ledger in this state)"
                    ),
                });
            }
            if let Some((_, bytes)) = &latest {
                check_signed_head(
                    bytes,
                    position,
                    &hash,
                    &self.keyring,
                    signer,
                    &mut self.checkpoint_verified,
                )?;
            }
            if identity.is_none() {
                return Err(LedgerError::Damaged {
                    path,
                    what: "its identity (the genesis entry's view) is missing".into(),
                });
            }
        }
        // Nothing is decided on a view the journal does not back: the
        // views are folded again from the journal and compared, unless
        // they are the ones this ledger checked or wrote itself and nobody
        // else has committed since.
        let stamp = store.change_stamp()?;
        let known = match (stamp, self.views_checked) {
            (Some(stamp), Some(c)) => {
                c.stamp == stamp && (stamp == SESSION_STAMP || Some(c.head) == head.map(|h| h.0))
            }
            _ => false,
        };
        self.views_checked = None;
        if !known && check_views {
            self::check_views(&*store)?;
        }
        // The views at the start are checked: a writer that rolls back (a
        // refused request, an error) leaves them so, and the next writer
        // need not fold the journal again. A commit moves this to its head.
        if known || check_views {
            self.views_checked = stamp.map(|stamp| ViewsChecked {
                head: head.map_or(0, |h| h.0),
                stamp,
            });
        }
        let head = head.unwrap_or((0, [0; 32]));
        Ok(Writer {
            store,
            path,
            signer,
            operator,
            start: head.0,
            head,
            last_at: i64::MIN,
            identity,
            next: None,
            tried: 0,
            checked: &mut self.views_checked,
            checkpoint_verified: &mut self.checkpoint_verified,
            stamp,
            entry_operator: String::new(),
            body: Vec::new(),
            #[cfg(test)]
            reads: core::cell::RefCell::default(),
        })
    }

    /// Checks the whole ledger with the vendor's `keyring` and returns
    /// what it checked:
    ///
    /// 1. the journal: positions from 1 without a gap, every hash from the
    ///    one before it, every entry decoded and folded again
    ///    ([`views::apply`]: sequences per serial, conversions, schedules,
    ///    events ...);
    /// 2. every license's signature (a retired key verified the licenses
    ///    it signed while it was in use; its window must cover their
    ///    issue time);
    /// 3. every checkpoint: signature, ledger id, vendor, and that it
    ///    matches the journal at its position; each names the one before
    ///    it ([`check_chain`]: none was removed); the last one covers the
    ///    last entry;
    /// 4. the views, rebuilt from the journal alone and compared with the
    ///    stored ones;
    /// 5. with `expected` (a checkpoint kept elsewhere): it is this
    ///    ledger's, the journal reaches its entry count and holds its head
    ///    there: a cut-off end or a rewrite is detected.
    ///
    /// # Errors
    /// [`LedgerError::Integrity`] naming the first bad entry,
    /// [`LedgerError::Damaged`] for a file that cannot be read as a
    /// ledger.
    #[allow(clippy::too_many_lines)]
    pub fn verify(
        &self,
        keyring: &[KeyEntry],
        expected: Option<&[u8]>,
    ) -> Result<VerifyReport, LedgerError> {
        let broken = |entry: u64, reason: String| LedgerError::Integrity { entry, reason };
        let keys = history_keys(keyring);
        let expected = expected
            .map(|bytes| {
                decode_checkpoint(bytes, &keys)
                    .map(|c| c.to_data())
                    .map_err(|e| LedgerError::ExpectedHead {
                        reason: checkpoint_refusal(&e),
                    })
            })
            .transpose()?;
        let checkpoints = self.backend.checkpoints()?;
        let mut pending = checkpoints.iter().peekable();
        let mut memory = MemoryViews::default();
        memory.set_first_checkpoint(checkpoints.first().map(|(n, _)| *n));
        let mut licenses = 0u64;
        let mut verified_checkpoints = 0u64;
        let mut last_good_checkpoint = 0u64;
        // Whether a checkpoint so far named the one it follows.
        let mut chained = false;
        let mut expected_hash: Option<[u8; 32]> = None;
        let (position, prev) = fold_journal(
            |f| self.backend.journal(f),
            &mut memory,
            &mut |want, entry, computed, memory| {
                if let Fact::License { bytes, .. } = &entry.fact {
                    if let Err(e) = tessera_verifier::decode_license(bytes, &keys) {
                        let l = tessera_verifier::decode_license_unverified(bytes);
                        let what = l.map_or_else(
                            |_| "its license".to_owned(),
                            |l| format!("license {}:{}", l.serial(), l.sequence()),
                        );
                        return Err(broken(
                            want,
                            format!("{what} does not verify under the vendor's keyring: {e}"),
                        ));
                    }
                    licenses += 1;
                }
                if expected.as_ref().is_some_and(|c| c.entries == want) {
                    expected_hash = Some(computed);
                }
                while let Some((n, bytes)) = pending.peek() {
                    if *n > want {
                        break;
                    }
                    if *n < want {
                        return Err(broken(
                            *n,
                            format!("a checkpoint covers {n} entries, but its entry was not read"),
                        ));
                    }
                    let c = decode_checkpoint(bytes, &keys).map_err(|e| {
                    broken(want, format!("the checkpoint of entry {want} does not verify under the vendor's keyring: {e}"))
                })?;
                    let identity = memory.identity_row();
                    let mismatch = if identity.is_none_or(|i| i.ledger_id != c.ledger_id()) {
                        Some("names another ledger")
                    } else if identity.is_none_or(|i| i.vendor != c.issuer()) {
                        Some("names another vendor")
                    } else if c.entries() != want || c.head() != computed {
                        Some("does not match the journal")
                    } else {
                        None
                    };
                    if let Some(m) = mismatch {
                        return Err(broken(
                        want,
                        format!(
                            "the checkpoint signed for entry {want} {m}: entries {}..{want} were rewritten after it was signed (compare them with a backup)",
                            last_good_checkpoint + 1
                        ),
                    ));
                    }
                    check_chain(want, c.previous(), last_good_checkpoint, &mut chained)?;
                    last_good_checkpoint = want;
                    verified_checkpoints += 1;
                    pending.next();
                }
                Ok(())
            },
        )?;
        if position == 0 {
            return Err(broken(
                1,
                "the journal is empty: a ledger starts with its genesis entry (restore it from a backup)".into(),
            ));
        }
        if let Some((n, _)) = pending.next() {
            return Err(broken(
                position + 1,
                format!(
                    "a checkpoint covers {n} entries, the journal ends at entry {position}: entries {}..{n} were cut off",
                    position + 1
                ),
            ));
        }
        if last_good_checkpoint != position {
            return Err(broken(
                last_good_checkpoint + 1,
                format!(
                    "entries {}..{position} are not covered by a signed checkpoint (they were added outside tessera, or their checkpoint was removed)",
                    last_good_checkpoint + 1
                ),
            ));
        }
        let identity = memory
            .identity_row()
            .cloned()
            .ok_or_else(|| broken(1, "the ledger has no genesis entry".into()))?;
        if let Some(c) = &expected {
            if c.ledger_id != identity.ledger_id {
                return Err(LedgerError::ExpectedHead {
                    reason: format!(
                        "it is a checkpoint of ledger {}, this ledger is {}; name the checkpoint kept for this one",
                        hex::encode(c.ledger_id),
                        hex::encode(identity.ledger_id)
                    ),
                });
            }
            match expected_hash {
                None => {
                    return Err(LedgerError::BehindExpectedHead {
                        entries: position,
                        covered: c.entries,
                    })
                }
                Some(h) if h != c.head => {
                    return Err(broken(
                        c.entries,
                        format!(
                            "entry {} differs from the expected head: the journal up to it was rewritten",
                            c.entries
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some((entry, what)) = memory.compare(position, |f| self.backend.view_rows(f))? {
            return Err(broken(entry, what));
        }
        Ok(VerifyReport {
            identity,
            entries: position,
            head: prev,
            licenses,
            checkpoints: verified_checkpoints,
            expected,
        })
    }

    /// The newest checkpoint, decoded (not verified: `ledger verify` does
    /// that).
    ///
    /// # Errors
    /// [`LedgerError::Damaged`] when the ledger has none or it does not
    /// decode.
    pub fn latest_checkpoint(&self) -> Result<CheckpointInfo, LedgerError> {
        let damaged = |what: String| LedgerError::Damaged {
            path: self.path().to_owned(),
            what,
        };
        let (_, bytes) = self
            .backend
            .latest_checkpoint()?
            .ok_or_else(|| damaged("it has no checkpoint".into()))?;
        let c = tessera_verifier::decode_checkpoint_unverified(&bytes)
            .map_err(|e| damaged(format!("its latest checkpoint does not decode ({e})")))?;
        Ok(CheckpointInfo {
            data: c.to_data(),
            kid: c.kid(),
            bytes,
        })
    }

    /// The earliest time the key `kid` signed something this ledger holds
    /// (a license or a checkpoint: its `iat`), `None` when it signed
    /// nothing here. A keyring entry of that key must be valid from that
    /// time on, or the licenses it signed no longer verify at the sites and
    /// the ledger fails `ledger verify`: `tessera keyring add` starts the
    /// key's window there by default. Licenses and checkpoints that do not
    /// decode are left to `ledger verify`.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn first_signed_by(
        &self,
        kid: &tessera_verifier::KeyId,
    ) -> Result<Option<i64>, LedgerError> {
        let checkpoints = self.backend.checkpoints()?;
        let checkpoints = checkpoints.iter().filter_map(|(_, bytes)| {
            tessera_verifier::decode_checkpoint_unverified(bytes)
                .ok()
                .filter(|c| c.kid() == *kid)
                .map(|c| c.issued_at())
        });
        let records = self.backend.all()?;
        let licenses = records.iter().filter_map(|r| {
            tessera_verifier::decode_license_unverified(&r.row.bytes)
                .ok()
                .filter(|l| l.kid() == *kid)
                .map(|l| l.issued_at())
        });
        Ok(checkpoints.chain(licenses).min())
    }

    /// The latest license of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        self.backend.latest(serial)
    }

    /// Every license of a serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        self.backend.history(serial)
    }

    /// The SW serial a HW serial (normalized first) was converted to.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn sw_serial_of(&self, hw: &str) -> Result<Option<String>, LedgerError> {
        match crate::validate::hw_serial("HW serial", hw) {
            Ok(hw) => self.backend.sw_serial_of(&hw),
            Err(_) => Ok(None),
        }
    }

    /// The first HW serial converted to a SW serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn hw_serial_of(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.backend.hw_serials_of(serial)?.into_iter().next())
    }

    /// Every HW serial converted to (or replaced into) a SW serial, oldest
    /// first.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError> {
        self.backend.hw_serials_of(serial)
    }

    /// The lifecycle events of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        self.backend.events(serial)
    }

    /// The license with this id.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        self.backend.by_license_id(id)
    }

    /// The pending stop/delete schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError> {
        self.backend.pending_schedule(serial)
    }

    /// Every license, in journal order.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn all(&self) -> Result<Vec<Record>, LedgerError> {
        self.backend.all()
    }

    /// One summary per serial (latest license), by serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError> {
        self.backend.serials()
    }

    /// The license recorded for a bulk idempotency key.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        self.backend.by_idem_key(key)
    }

    /// The chain head: entry count and last hash.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn head(&self) -> Result<(u64, [u8; 32]), LedgerError> {
        Ok(self.backend.head()?.unwrap_or((0, [0; 32])))
    }

    /// Every decoded journal entry, in order (for export and tools; no
    /// check: `verify` does that).
    ///
    /// # Errors
    /// [`LedgerError::Damaged`] for an entry that does not decode.
    pub fn entries(&self) -> Result<Vec<(u64, Entry)>, LedgerError> {
        let mut out = Vec::new();
        let path = self.path().to_owned();
        self.backend.journal(&mut |position, body, _| {
            let entry = Entry::decode(body).map_err(|e| LedgerError::Damaged {
                path: path.clone(),
                what: format!("journal entry {position}: {}", e.0),
            })?;
            out.push((u64::try_from(position).unwrap_or(0), entry));
            Ok(())
        })?;
        Ok(out)
    }
}

/// A write transaction on the ledger. Dropping it without
/// [`Writer::commit`] rolls everything back.
pub struct Writer<'w> {
    store: Box<dyn StoreTx + 'w>,
    path: PathBuf,
    signer: &'w dyn Signer,
    operator: &'w str,
    start: u64,
    head: (u64, [u8; 32]),
    last_at: i64,
    identity: Option<Identity>,
    /// The last [`Writer::next_sequence`] answer, so [`Writer::append`]
    /// need not ask again.
    next: Option<(String, u32)>,
    /// Entries this writer set out to append: one the fold refuses may
    /// have written part of its views first ([`Writer::unguarded`]).
    tried: u64,
    /// The ledger's record of checked views, set again by a commit.
    checked: &'w mut Option<ViewsChecked>,
    /// The ledger's last verified checkpoint, this commit's once it
    /// commits.
    checkpoint_verified: &'w mut Option<Vec<u8>>,
    /// The change stamp when the transaction began.
    stamp: Option<i64>,
    /// The operator of the last entry, kept for the next (an entry owns
    /// its operator's name; a bulk run makes thousands of entries of one
    /// operator).
    entry_operator: String,
    /// The encoding of the last entry, its buffer reused by the next.
    body: Vec<u8>,
    /// The reads of this writer, in order ([`Writer::read`]): tests check
    /// that refusals which must not tell cases apart do the same work.
    #[cfg(test)]
    pub(crate) reads: core::cell::RefCell<Vec<&'static str>>,
}

impl core::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("head", &self.head.0)
            .finish_non_exhaustive()
    }
}

impl Writer<'_> {
    /// Appends one entry: folds it into the views (refused if it cannot
    /// stand at the end of the journal), then stores it chained to the
    /// head. Returns its position.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] naming what does not hold, other
    /// [`LedgerError`]s.
    pub fn push(&mut self, at: i64, fact: Fact) -> Result<u64, LedgerError> {
        self.push_entry(self.operator, at, fact)
            .map(|(position, ..)| position)
    }

    /// [`Writer::push`] of a fact another operator recorded (facts carried
    /// over from a ledger of an earlier tessera).
    ///
    /// # Errors
    /// As [`Writer::push`].
    pub(crate) fn push_as(
        &mut self,
        operator: &str,
        at: i64,
        fact: Fact,
    ) -> Result<u64, LedgerError> {
        self.push_entry(operator, at, fact)
            .map(|(position, ..)| position)
    }

    /// [`Writer::push`], which also returns the license row of a license
    /// entry and the fact itself (stored, so its caller can keep what it
    /// needs of it without a copy).
    fn push_entry(
        &mut self,
        operator: &str,
        at: i64,
        fact: Fact,
    ) -> Result<(u64, views::Applied, Fact), LedgerError> {
        self.tried += 1;
        let mut name = core::mem::take(&mut self.entry_operator);
        if name != operator {
            name.clear();
            name.push_str(operator);
        }
        let entry = Entry {
            at,
            operator: name,
            fact,
        };
        let position = self.head.0 + 1;
        let row = views::apply(&mut *self.store, position, &entry).map_err(|e| match e {
            FoldError::Invalid(reason) => LedgerError::Conflict {
                path: self.path.clone(),
                reason: format!("a {} entry cannot be recorded: {reason}", entry.fact.kind()),
            },
            FoldError::Store(e) => e,
        })?;
        if let Fact::Genesis { .. } = &entry.fact {
            self.identity = ViewStore::identity(&*self.store)?;
        }
        self.body.clear();
        entry.encode_into(&mut self.body);
        let hash = entry_hash(&self.head.1, position, &self.body);
        self.store.append_entry(position, &self.body, &hash)?;
        self.head = (position, hash);
        self.last_at = self.last_at.max(at);
        let Entry { operator, fact, .. } = entry;
        self.entry_operator = operator;
        Ok((position, row, fact))
    }

    /// The ledger's identity.
    #[must_use]
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether the overdue notice of `day` (`YYYY-MM-DD`) for `recipient`
    /// is in effect: claimed by a [`Fact::NoticeSent`] and not withdrawn.
    /// Read under this writer's lock, so a run that finds it free and
    /// records it cannot race another doing the same.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
        Queries::notice_in_effect(&*self.store, recipient, day)
    }

    /// Notes a read in the test build's read log ([`Writer::reads`]);
    /// nothing otherwise.
    #[inline]
    #[allow(clippy::unused_self)]
    fn read(&self, what: &'static str) {
        #[cfg(test)]
        self.reads.borrow_mut().push(what);
        #[cfg(not(test))]
        let _ = what;
    }

    /// The latest license of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        self.read("latest");
        self.store.latest(serial)
    }

    /// Every license of a serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        self.read("history");
        self.store.history(serial)
    }

    /// The SW serial a HW serial (normalized first) was converted to.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn sw_serial_of(&self, hw_serial: &str) -> Result<Option<String>, LedgerError> {
        self.read("sw_serial_of");
        match crate::validate::hw_serial("HW serial", hw_serial) {
            Ok(hw) => self.store.sw_serial_of(&hw),
            Err(_) => Ok(None),
        }
    }

    /// The license recorded for a bulk idempotency key.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        self.read("by_idem_key");
        self.store.by_idem_key(key)
    }

    /// The pending stop/delete schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError> {
        self.read("schedule");
        self.store.pending_schedule(serial)
    }

    /// The next sequence of a serial: one more than its highest, 1 for a
    /// new serial. Read under the write lock, so it is this transaction's
    /// to use.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] past `u32::MAX`, [`LedgerError`].
    pub fn next_sequence(&mut self, serial: &str) -> Result<u32, LedgerError> {
        if let Some((s, n)) = &self.next {
            if s == serial {
                return Ok(*n);
            }
        }
        let last = self.store.last_sequence(serial)?.unwrap_or(0);
        let n = last.checked_add(1).ok_or_else(|| LedgerError::Conflict {
            path: self.path.clone(),
            reason: format!("{serial} has used every sequence number"),
        })?;
        self.next = Some((serial.to_owned(), n));
        Ok(n)
    }

    /// The SW serial `SW-YYYY-NNNNNN` the next allocation of `year` gets:
    /// the year's next number, skipping serials already in use (a VM
    /// serial handed out by hand). Nothing is recorded: an allocation is
    /// ([`Writer::allocate_serial`], [`Writer::convert_hw_serial`]).
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] when the year's 999 999 serials are used,
    /// [`LedgerError`].
    pub fn next_free_serial(&self, year: i32) -> Result<String, LedgerError> {
        let mut n = self.store.counter(year)?.unwrap_or(0);
        loop {
            n = n.checked_add(1).filter(|n| *n <= 999_999).ok_or_else(|| {
                LedgerError::Conflict {
                    path: self.path.clone(),
                    reason: format!("every SW serial of {year} is allocated (SW-{year:04}-999999)"),
                }
            })?;
            let serial = format!("SW-{year:04}-{n:06}");
            if !self.store.serial_in_use(&serial)? {
                return Ok(serial);
            }
        }
    }

    /// Allocates a new SW serial ([`Writer::next_free_serial`]) on its own
    /// (a PBX known before its first license).
    ///
    /// # Errors
    /// As [`Writer::next_free_serial`].
    pub fn allocate_serial(&mut self, year: i32, at: i64) -> Result<String, LedgerError> {
        let serial = self.next_free_serial(year)?;
        self.push(
            at,
            Fact::SerialAllocated {
                serial: serial.clone(),
            },
        )?;
        Ok(serial)
    }

    /// Records that `hw_serial` (normalized) was converted to `serial`,
    /// which this conversion allocates (`allocated`, a first activation:
    /// `serial` from [`Writer::next_free_serial`]) or which exists.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] when the HW serial is converted already
    /// or the serial cannot be allocated, [`LedgerError`].
    pub fn convert_hw_serial(
        &mut self,
        hw_serial: &str,
        serial: &str,
        allocated: bool,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::HwSerialConverted {
                hw_serial: hw_serial.to_owned(),
                serial: serial.to_owned(),
                allocated,
            },
        )
        .map(|_| ())
    }

    /// Records that `hw_serial` (normalized) was converted to the existing
    /// `serial` ([`Writer::convert_hw_serial`] of an existing serial).
    ///
    /// # Errors
    /// As [`Writer::convert_hw_serial`].
    pub fn map_hw_serial(
        &mut self,
        hw_serial: &str,
        serial: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.convert_hw_serial(hw_serial, serial, false, at)
    }

    /// Schedules stop and deletion of a serial (decrease to zero users).
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn set_schedule(
        &mut self,
        serial: &str,
        z: ZeroSchedule,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::ScheduleSet {
                serial: serial.to_owned(),
                stop_at: z.stop_at,
                delete_at: z.delete_at,
            },
        )
        .map(|_| ())
    }

    /// Cancels the pending schedule of a serial (nothing when none is
    /// pending).
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn cancel_schedule(&mut self, serial: &str, at: i64) -> Result<(), LedgerError> {
        if self.store.pending_schedule(serial)?.is_none() {
            return Ok(());
        }
        self.push(
            at,
            Fact::ScheduleCancelled {
                serial: serial.to_owned(),
            },
        )
        .map(|_| ())
    }

    /// The HW serial a SW serial was first converted from.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn hw_serial_of(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        self.read("hw_serial_of");
        Ok(self.store.hw_serials_of(serial)?.into_iter().next())
    }

    /// The license with this id.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        self.read("by_license_id");
        self.store.by_license_id(id)
    }

    /// The lifecycle events of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        self.read("events");
        self.store.events(serial)
    }

    /// Records a lifecycle event next to the license `sequence` of
    /// `serial` (appended in this transaction).
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn add_event(
        &mut self,
        serial: &str,
        sequence: u32,
        kind: &str,
        detail: &serde_json::Value,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::Event {
                serial: serial.to_owned(),
                sequence,
                event: kind.to_owned(),
                detail: detail.to_string(),
            },
        )
        .map(|_| ())
    }

    /// The device keys of the requests answered by licenses of `serial`
    /// from sequence `from` on.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn request_keys_since(&self, serial: &str, from: u32) -> Result<Vec<String>, LedgerError> {
        self.read("request_keys_since");
        self.store.request_keys_since(serial, from)
    }

    /// [`Queries::request_key_rows`] inside this transaction.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn request_key_rows(
        &self,
        serial: &str,
        from: u32,
    ) -> Result<Vec<(u32, String)>, LedgerError> {
        self.read("request_key_rows");
        self.store.request_key_rows(serial, from)
    }

    /// [`Queries::serials_with_request_key`] inside this transaction.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn serials_with_request_key(
        &self,
        key: &str,
        serial: &str,
    ) -> Result<Vec<String>, LedgerError> {
        self.read("serials_with_request_key");
        self.store.serials_with_request_key(key, serial)
    }

    /// Marks the binding of license `sequence` of `serial` as replaced by
    /// license `replaced_by` (RMA, migration).
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn mark_replaced(
        &mut self,
        serial: &str,
        sequence: u32,
        replaced_by: u32,
        device_keys: &[String],
        reason: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::BindingReplaced {
                serial: serial.to_owned(),
                sequence,
                replaced_by,
                device_keys: device_keys.to_vec(),
                reason: reason.to_owned(),
            },
        )
        .map(|_| ())
    }

    /// The bindings of `serial` that replacements superseded.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn replaced_bindings(&self, serial: &str) -> Result<Vec<ReplacedBinding>, LedgerError> {
        self.read("replaced_bindings");
        self.store.replaced_bindings(serial)
    }

    /// The registry entry of a serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn pbx(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        self.read("pbx");
        self.store.pbx(serial)
    }

    /// Every registry entry, by serial.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn pbxs(&self) -> Result<Vec<PbxRow>, LedgerError> {
        self.store.pbxs()
    }

    /// Enters a PBX in the registry ([`Fact::PbxAdded`]) and gives back
    /// the registry row the fold wrote for it.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] naming what the fold refused (and for a
    /// fact that is not [`Fact::PbxAdded`]), [`LedgerError`].
    pub fn add_pbx(&mut self, at: i64, fact: Fact) -> Result<PbxRow, LedgerError> {
        if !matches!(fact, Fact::PbxAdded { .. }) {
            return Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: format!(
                    "a {} entry is not a PBX entered in the registry",
                    fact.kind()
                ),
            });
        }
        match self.push_entry(self.operator, at, fact)? {
            (_, views::Applied::Pbx(row), _) => Ok(row),
            _ => Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: "a PBX entry made no registry row".into(),
            }),
        }
    }

    /// Records a change of a PBX's registry entry.
    ///
    /// # Errors
    /// As [`Writer::add_pbx`].
    pub fn edit_pbx(
        &mut self,
        serial: &str,
        change: PbxChange,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::PbxEdited {
                serial: serial.to_owned(),
                change,
            },
        )
        .map(|_| ())
    }

    /// The registry history of a serial ([`Queries::pbx_changes`]) inside
    /// this transaction.
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn pbx_changes(&self, serial: &str) -> Result<Vec<PbxChangeRow>, LedgerError> {
        self.read("pbx_changes");
        self.store.pbx_changes(serial)
    }

    /// Opens online activation of `serial` with the code whose digest is
    /// `code_digest`, valid until `valid_until` ([`Fact::ActivationOpened`]):
    /// it replaces the PBX's open code, if any.
    ///
    /// # Errors
    /// As [`Writer::add_pbx`].
    pub fn open_activation(
        &mut self,
        serial: &str,
        code_digest: [u8; 32],
        valid_until: i64,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.push(
            at,
            Fact::ActivationOpened {
                serial: serial.to_owned(),
                code_digest,
                valid_until,
            },
        )
        .map(|_| ())
    }

    /// Records the billed quantities of license `sequence` of `serial`
    /// (nothing when `lines` is empty).
    ///
    /// # Errors
    /// As [`Writer::add_pbx`].
    pub fn add_charges(
        &mut self,
        serial: &str,
        sequence: u32,
        lines: Vec<Charge>,
        at: i64,
    ) -> Result<(), LedgerError> {
        if lines.is_empty() {
            return Ok(());
        }
        self.push(
            at,
            Fact::Charges {
                serial: serial.to_owned(),
                sequence,
                lines,
            },
        )
        .map(|_| ())
    }

    /// The billed quantities recorded next to license `sequence` of
    /// `serial`, issued at `issued_at` (its charges are recorded at its
    /// issue time, in the transaction that appended it).
    ///
    /// # Errors
    /// [`LedgerError`].
    pub fn charges_of(
        &self,
        serial: &str,
        sequence: u32,
        issued_at: i64,
    ) -> Result<Vec<ChargeRow>, LedgerError> {
        Ok(self
            .store
            .charges(issued_at, issued_at.saturating_add(1))?
            .into_iter()
            .filter(|c| c.serial == serial && c.sequence == sequence)
            .collect())
    }

    /// Appends a license.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] when its sequence is not the serial's
    /// next, its id or bulk key is in the ledger already, its vendor is
    /// not the ledger's; other [`LedgerError`]s.
    pub fn append(&mut self, new: NewRecord) -> Result<Record, LedgerError> {
        let (position, row, fact) = self.push_entry(
            self.operator,
            new.issued_at,
            Fact::License {
                action: new.action,
                bytes: new.bytes,
                order: new.order_json,
                idem_key: new.idem_key,
                request_key: new.request_key,
            },
        )?;
        let (views::Applied::License(row), Fact::License { bytes, order, .. }) = (row, fact) else {
            return Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: "a license entry made no license row".into(),
            });
        };
        self.next = Some((row.serial.clone(), row.sequence.saturating_add(1)));
        Ok(Record {
            id: i64::try_from(position).unwrap_or(i64::MAX),
            row: RecordFields {
                serial: row.serial,
                sequence: row.sequence,
                license_id: row.license_id,
                action: row.action,
                bytes,
                order_json: order,
                operator: row.operator,
                issued_at: row.issued_at,
                customer: row.customer,
                pbx_name: row.pbx_name,
                platform: row.platform,
                lease_end: row.lease_end,
                term_end: row.term_end,
                idem_key: row.idem_key,
            },
            hash: self.head.1,
        })
    }

    /// Runs `f` inside a savepoint: when it fails, everything it wrote is
    /// undone and the rest of the transaction is kept (one bad bulk row
    /// does not spoil its batch).
    ///
    /// # Errors
    /// `f`'s error, or [`LedgerError`] converted into it.
    pub fn savepoint<T, E: From<LedgerError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.store.savepoint()?;
        let head = self.head;
        let last_at = self.last_at;
        let next = self.next.clone();
        match f(self) {
            Ok(v) => {
                self.store.release()?;
                Ok(v)
            }
            Err(e) => {
                self.head = head;
                self.last_at = last_at;
                self.next = next;
                self.store.rollback_to()?;
                Err(e)
            }
        }
    }

    /// Runs `f` without a savepoint, for a caller that expects `f` to
    /// succeed and can redo its work otherwise (a savepoint costs every row
    /// a copy of each page it touches). `Ok` is `f`'s; an error of `f`
    /// before it set out to append anything is `Err(Some(e))`, the
    /// transaction as it was; an error after is `Err(None)`: part of it may
    /// be written, so the caller must drop the transaction (rolled back)
    /// and redo its work with [`Writer::savepoint`].
    ///
    /// # Errors
    /// As above.
    pub fn unguarded<T, E>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, Option<E>> {
        let tried = self.tried;
        f(self).map_err(|e| (self.tried == tried).then_some(e))
    }

    /// Signs a checkpoint of the new head (when anything was appended) and
    /// commits: durable (`synchronous=FULL`) once this returns. Returns
    /// the checkpoint.
    ///
    /// # Errors
    /// [`LedgerError::Checkpoint`] when the signer fails (nothing is
    /// recorded), other [`LedgerError`]s.
    pub fn commit(mut self) -> Result<Option<CheckpointInfo>, LedgerError> {
        let mut made = None;
        if self.head.0 > self.start {
            let identity = self.identity.clone().ok_or_else(|| LedgerError::Damaged {
                path: self.path.clone(),
                what: "its identity (the genesis entry's view) is missing".into(),
            })?;
            let data = CheckpointData {
                issuer: identity.vendor,
                issued_at: self.last_at,
                ledger_id: identity.ledger_id,
                entries: self.head.0,
                head: self.head.1,
                // The checkpoint this one follows: the writer started at
                // the head the ledger's last checkpoint covers.
                previous: (self.start > 0).then_some(self.start),
            };
            let kid = self.signer.kid();
            let signer = self.signer;
            let bytes = sign_checkpoint(&data, &kid, |m| signer.sign(m)).map_err(|e| {
                LedgerError::Checkpoint {
                    path: self.path.clone(),
                    reason: match e {
                        EncodeError::Invalid(m) => format!("its content breaks a format rule: {m}"),
                        EncodeError::Sign(k) => k.to_string(),
                        _ => "signing failed".into(),
                    },
                }
            })?;
            self.store.add_checkpoint(self.head.0, &bytes)?;
            made = Some(CheckpointInfo { data, kid, bytes });
        }
        self.store.commit()?;
        if let Some(c) = &made {
            *self.checkpoint_verified = Some(c.bytes.clone());
        }
        // The views are what the journal makes of them: they were at the
        // start, and every entry since went through the fold.
        *self.checked = self.stamp.map(|stamp| ViewsChecked {
            head: self.head.0,
            stamp,
        });
        Ok(made)
    }
}

#[cfg(test)]
mod tests;
