//! The ledger: every license ever issued, in SQLite, chained by hash so
//! that an edited, deleted or reordered row is detected
//! ([`Ledger::verify`]).
//!
//! - WAL journal, `synchronous=FULL`: a committed license survives a crash
//!   or power loss.
//! - Writes happen in `BEGIN IMMEDIATE` transactions ([`Ledger::writer`]):
//!   the sequence of a serial is read and the row inserted under the same
//!   write lock, so two issuers at once never share a sequence; a second
//!   writer waits (`busy_timeout`).
//! - Row hash = SHA-256(`"tessera-ledger-v1\0"` ‖ prev_hash ‖ canonical
//!   fields), each field length-prefixed; the first row's prev_hash is 32
//!   zero bytes. The chain head (row count and last hash) is kept in its
//!   own table, so deleting the last rows is detected too; print it with
//!   `tessera ledger verify` and keep it elsewhere to detect a rewrite of
//!   the whole chain.
//! - The schema is versioned with `PRAGMA user_version`.

use core::time::Duration;
use std::path::{Path, PathBuf};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::calendar::rfc3339_unix;
use crate::policy::ZeroSchedule;

/// The schema version this tessera reads and writes.
pub const SCHEMA_VERSION: i64 = 2;
/// How long a writer waits for another one (milliseconds).
pub const BUSY_TIMEOUT_MS: u64 = 30_000;
/// Domain tag of row hashes.
pub const HASH_TAG: &[u8] = b"tessera-ledger-v1\0";

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// SQLite failed (locked past the busy timeout, disk full ...).
    #[error("ledger {path}: {source}")]
    Sqlite {
        /// The ledger file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// No ledger at the path given to a command that only reads it.
    #[error("no ledger at {0}; pass --ledger FILE (or TESSERA_LEDGER), or issue a license first")]
    NotFound(PathBuf),
    /// The ledger was written by a newer tessera.
    #[error("ledger {path} has schema {found}, newer than this tessera understands ({SCHEMA_VERSION}); upgrade tessera")]
    NewerSchema {
        /// The ledger file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// The hash chain or a row's content does not hold: the ledger was
    /// edited outside tessera. Exit code 4.
    #[error("ledger integrity failure at row {row}: {reason}; restore the ledger from a backup and investigate")]
    Integrity {
        /// The row id (chain position) where the chain breaks.
        row: i64,
        /// What does not hold.
        reason: String,
    },
    /// A row to insert does not fit the ledger (wrong sequence ...).
    #[error("ledger {path}: {reason}")]
    Conflict {
        /// The ledger file.
        path: PathBuf,
        /// What.
        reason: String,
    },
}

/// What an issued license was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// First license of a serial.
    Issue,
    /// A change of the license in force.
    Change,
    /// A renewal (same content, new lease).
    Renew,
    /// A replacement (new binding: RMA or migration).
    Replace,
    /// A void: supersedes a license issued in error.
    Void,
    /// Sharing: a client license, or a server's license with the server
    /// role.
    Share,
}

impl Action {
    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Change => "change",
            Self::Renew => "renew",
            Self::Replace => "replace",
            Self::Void => "void",
            Self::Share => "share",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "issue" => Self::Issue,
            "change" => Self::Change,
            "renew" => Self::Renew,
            "replace" => Self::Replace,
            "void" => Self::Void,
            "share" => Self::Share,
            _ => return None,
        })
    }
}

/// A row to append: one issued license.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// SW serial.
    pub serial: String,
    /// Sequence (must be the serial's next).
    pub sequence: u32,
    /// License id (`cti`).
    pub license_id: [u8; 16],
    /// What it was.
    pub action: Action,
    /// The signed license (COSE_Sign1).
    pub bytes: Vec<u8>,
    /// The order, as JSON.
    pub order_json: String,
    /// Who issued it.
    pub operator: String,
    /// When (the license's `iat`).
    pub issued_at: i64,
    /// Customer (from the license).
    pub customer: String,
    /// PBX name (from the license).
    pub pbx_name: String,
    /// Platform name (`hw`, `vm`, `cloud`).
    pub platform: String,
    /// Lease end.
    pub lease_end: i64,
    /// Term end (`None` for lifetime).
    pub term_end: Option<i64>,
    /// Idempotency key of a bulk row.
    pub idem_key: Option<String>,
}

/// A ledger row.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Chain position, from 1.
    pub id: i64,
    /// The content.
    #[serde(flatten)]
    pub row: RecordFields,
    /// Hash of the previous row (hex).
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    /// This row's hash (hex).
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

/// The fields of a row, as in [`NewRecord`] (serializable).
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

fn from_new(r: NewRecord) -> RecordFields {
    RecordFields {
        serial: r.serial,
        sequence: r.sequence,
        license_id: r.license_id,
        action: r.action,
        bytes: r.bytes,
        order_json: r.order_json,
        operator: r.operator,
        issued_at: r.issued_at,
        customer: r.customer,
        pbx_name: r.pbx_name,
        platform: r.platform,
        lease_end: r.lease_end,
        term_end: r.term_end,
        idem_key: r.idem_key,
    }
}

/// The hash of a row: SHA-256 over the tag, the previous hash and every
/// field, length-prefixed, in a fixed order.
#[must_use]
pub fn row_hash(prev_hash: &[u8; 32], id: i64, f: &RecordFields) -> [u8; 32] {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    h.update(HASH_TAG);
    h.update(prev_hash);
    h.update(id.to_be_bytes());
    field(&mut h, f.serial.as_bytes());
    h.update(f.sequence.to_be_bytes());
    h.update(f.license_id);
    field(&mut h, f.action.as_str().as_bytes());
    field(&mut h, &f.bytes);
    field(&mut h, f.order_json.as_bytes());
    field(&mut h, f.operator.as_bytes());
    h.update(f.issued_at.to_be_bytes());
    field(&mut h, f.customer.as_bytes());
    field(&mut h, f.pbx_name.as_bytes());
    field(&mut h, f.platform.as_bytes());
    h.update(f.lease_end.to_be_bytes());
    match f.term_end {
        Some(t) => {
            h.update([1]);
            h.update(t.to_be_bytes());
        }
        None => h.update([0]),
    }
    match &f.idem_key {
        Some(k) => {
            h.update([1]);
            field(&mut h, k.as_bytes());
        }
        None => h.update([0]),
    }
    h.finalize().into()
}

const SCHEMA: &str = "
CREATE TABLE licenses (
    id          INTEGER PRIMARY KEY,
    serial      TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    license_id  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    bytes       BLOB    NOT NULL,
    order_json  TEXT    NOT NULL,
    operator    TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    customer    TEXT    NOT NULL,
    pbx_name    TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    lease_end   INTEGER NOT NULL,
    term_end    INTEGER,
    idem_key    TEXT    UNIQUE,
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    UNIQUE (serial, sequence)
);
CREATE TABLE chain_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    rows  INTEGER NOT NULL,
    hash  BLOB    NOT NULL
);
INSERT INTO chain_head (id, rows, hash) VALUES (1, 0, zeroblob(32));
CREATE TABLE hw_serials (
    hw_serial   TEXT PRIMARY KEY,
    serial      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX hw_serials_serial ON hw_serials (serial);
CREATE TABLE serial_counter (
    year  INTEGER PRIMARY KEY,
    last  INTEGER NOT NULL
);
CREATE TABLE schedules (
    serial        TEXT PRIMARY KEY,
    stop_at       INTEGER NOT NULL,
    delete_at     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER
);
";

/// Schema 2: what the lifecycle commands record next to the license rows
/// (each row of these tables names the license row it belongs to, which
/// `verify` checks).
const SCHEMA_2: &str = "
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX events_serial ON events (serial, sequence);
CREATE TABLE replaced_bindings (
    serial       TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    replaced_by  INTEGER NOT NULL,
    device_keys  TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (serial, sequence)
);
CREATE TABLE request_keys (
    serial      TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    device_key  TEXT    NOT NULL,
    PRIMARY KEY (serial, sequence)
);
";

const COLUMNS: &str = "id, serial, sequence, license_id, action, bytes, order_json, operator, \
     issued_at, customer, pbx_name, platform, lease_end, term_end, idem_key, prev_hash, hash";

fn blob32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let license_hex: String = r.get(3)?;
    let mut license_id = [0u8; 16];
    // A malformed id is caught by `verify` (the hash no longer matches).
    let _ = hex::decode_to_slice(&license_hex, &mut license_id);
    let action: String = r.get(4)?;
    let sequence: i64 = r.get(2)?;
    Ok(Record {
        id: r.get(0)?,
        row: RecordFields {
            serial: r.get(1)?,
            sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
            license_id,
            action: Action::parse(&action).unwrap_or(Action::Issue),
            bytes: r.get(5)?,
            order_json: r.get(6)?,
            operator: r.get(7)?,
            issued_at: r.get(8)?,
            customer: r.get(9)?,
            pbx_name: r.get(10)?,
            platform: r.get(11)?,
            lease_end: r.get(12)?,
            term_end: r.get(13)?,
            idem_key: r.get(14)?,
        },
        prev_hash: blob32(r.get(15)?),
        hash: blob32(r.get(16)?),
    })
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
    /// `change`, `decommission`, `replace`, `void` or `share`.
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
        let field = |k: &str| self.detail.get(k).and_then(serde_json::Value::as_str);
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
                    parts.push(format!("{} {v}", key.replace('_', " ")))
                }
                Some(serde_json::Value::Number(n)) => {
                    parts.push(format!("{} {n}", key.replace('_', " ")))
                }
                _ => {}
            }
        }
        if let Some(d) = field("decreases") {
            parts.push(format!("decreases {d}"));
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
    /// The latest row.
    pub latest: Record,
}

/// An open ledger.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Opens the ledger at `path`, creating it (and its schema) when it does
    /// not exist.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`], [`LedgerError::NewerSchema`].
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = Connection::open(path).map_err(sql(path))?;
        Self::setup(conn, path)
    }

    /// Opens an existing ledger (commands that only read it).
    ///
    /// # Errors
    /// [`LedgerError::NotFound`], as [`Ledger::open`].
    pub fn open_existing(path: &Path) -> Result<Self, LedgerError> {
        if !path.exists() {
            return Err(LedgerError::NotFound(path.to_owned()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql(path))?;
        Self::setup(conn, path)
    }

    fn setup(mut conn: Connection, path: &Path) -> Result<Self, LedgerError> {
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(sql(path))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Sqlite {
                path: path.to_owned(),
                source: rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode is {mode}, WAL is required"
                )),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql(path))?;
        // A bulk batch touches a few MiB: keep it in memory until commit.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(sql(path))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Stable query plans: without this, SQLite (built with STAT4)
        // re-prepares a statement each time a bound value changes, which
        // costs more than the query.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(sql(path))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                path: path.to_owned(),
                found: version,
            });
        }
        if version == 0 {
            tx.execute_batch(SCHEMA).map_err(sql(path))?;
        }
        if version < 2 {
            // Schema 1 ledgers gain the lifecycle tables; their rows stay.
            tx.execute_batch(SCHEMA_2).map_err(sql(path))?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(sql(path))?;
        }
        tx.commit().map_err(sql(path))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// The ledger file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`): it waits for other
    /// writers and holds the write lock until [`Writer::commit`] (or drop,
    /// which rolls back).
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`] (for example busy past the timeout).
    pub fn writer(&mut self) -> Result<Writer<'_>, LedgerError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(&path))?;
        let (rows, hash): (i64, Vec<u8>) = tx
            .query_row("SELECT rows, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql(&path))?;
        Ok(Writer {
            tx,
            path,
            head: Head {
                rows,
                hash: blob32(hash),
            },
            next: None,
        })
    }

    /// The latest license of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        latest(&self.conn, serial).map_err(sql(&self.path))
    }

    /// Every license of a serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        history(&self.conn, serial).map_err(sql(&self.path))
    }

    /// The SW serial a HW serial was converted to.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn sw_serial_of(&self, hw_serial: &str) -> Result<Option<String>, LedgerError> {
        sw_serial_of(&self.conn, hw_serial).map_err(sql(&self.path))
    }

    /// The HW serial a SW serial was converted from.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn hw_serial_of(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT hw_serial FROM hw_serials WHERE serial = ?1 ORDER BY created_at LIMIT 1",
                [serial],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(&self.path))
    }

    /// Every HW serial converted to (or replaced into) a SW serial, oldest
    /// first: the first activation's, then each RMA's.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError> {
        hw_serials_of(&self.conn, serial).map_err(sql(&self.path))
    }

    /// The lifecycle events of a serial, in sequence order.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        events(&self.conn, serial).map_err(sql(&self.path))
    }

    /// The license with this id.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        by_license_id(&self.conn, id).map_err(sql(&self.path))
    }

    /// The pending (not cancelled) stop/delete schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError> {
        schedule(&self.conn, serial).map_err(sql(&self.path))
    }

    /// Every row, in chain order.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn all(&self) -> Result<Vec<Record>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM licenses ORDER BY id"))
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([], record_from_row)
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))?;
        Ok(rows)
    }

    /// One summary per serial (latest row), ordered by serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS}, (SELECT COUNT(*) FROM licenses c WHERE c.serial = l.serial), \
                 (SELECT hw_serial FROM hw_serials h WHERE h.serial = l.serial ORDER BY created_at LIMIT 1) \
                 FROM licenses l WHERE sequence = (SELECT MAX(sequence) FROM licenses m WHERE m.serial = l.serial) \
                 ORDER BY serial"
            ))
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([], |r| {
                let count: i64 = r.get(17)?;
                Ok(SerialSummary {
                    latest: record_from_row(r)?,
                    licenses: u32::try_from(count).unwrap_or(u32::MAX),
                    hw_serial: r.get(18)?,
                    serial: r.get(1)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))?;
        Ok(rows)
    }

    /// The row recorded for a bulk idempotency key.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        by_idem_key(&self.conn, key).map_err(sql(&self.path))
    }

    /// The chain head: row count and last hash.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn head(&self) -> Result<(i64, [u8; 32]), LedgerError> {
        self.conn
            .query_row("SELECT rows, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, blob32(r.get(1)?)))
            })
            .map_err(sql(&self.path))
    }

    /// Checks the whole ledger: row ids contiguous from 1, every prev_hash
    /// the hash of the row before, every hash recomputed from the fields,
    /// the chain head equal to the last row, the license bytes matching
    /// their row (serial, sequence, id, times, customer, platform),
    /// sequences increasing per serial, and each HW → SW mapping backed by
    /// a license naming the HW serial.
    ///
    /// Returns the row count and the head hash.
    ///
    /// # Errors
    /// [`LedgerError::Integrity`] at the first row that does not hold,
    /// [`LedgerError::Sqlite`].
    pub fn verify(&self) -> Result<(i64, [u8; 32]), LedgerError> {
        let broken = |row: i64, reason: String| LedgerError::Integrity { row, reason };
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM licenses ORDER BY id"))
            .map_err(sql(&self.path))?;
        let mut rows = stmt.query([]).map_err(sql(&self.path))?;
        let mut prev = [0u8; 32];
        let mut expected_id = 1i64;
        let mut last_seq: std::collections::HashMap<String, u32> = Default::default();
        while let Some(r) = rows.next().map_err(sql(&self.path))? {
            let rec = record_from_row(r).map_err(sql(&self.path))?;
            let raw_hex: String = r.get(3).map_err(sql(&self.path))?;
            if rec.id != expected_id {
                return Err(broken(
                    expected_id,
                    format!("row {expected_id} is missing (next row is {})", rec.id),
                ));
            }
            if rec.prev_hash != prev {
                return Err(broken(
                    rec.id,
                    "prev_hash is not the hash of the row before (a row was deleted, inserted or reordered)".into(),
                ));
            }
            if row_hash(&prev, rec.id, &rec.row) != rec.hash
                || hex::encode(rec.row.license_id) != raw_hex
            {
                return Err(broken(
                    rec.id,
                    "the row's content does not match its hash (the row was edited)".into(),
                ));
            }
            check_bytes(&rec).map_err(|reason| broken(rec.id, reason))?;
            if let Some(before) = last_seq.insert(rec.row.serial.clone(), rec.row.sequence) {
                if before >= rec.row.sequence {
                    return Err(broken(
                        rec.id,
                        format!(
                            "sequence {} of {} does not follow {before}",
                            rec.row.sequence, rec.row.serial
                        ),
                    ));
                }
            }
            prev = rec.hash;
            expected_id += 1;
        }
        let count = expected_id - 1;
        let (head_rows, head_hash) = self.head()?;
        if head_rows != count || head_hash != prev {
            return Err(broken(
                count.max(head_rows),
                format!(
                    "the chain head says {head_rows} rows, the table has {count} (rows were deleted or added outside tessera)"
                ),
            ));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT hw_serial, serial FROM hw_serials")
            .map_err(sql(&self.path))?;
        let maps: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))?;
        for (hw, sw) in maps {
            let backed = history(&self.conn, &sw)
                .map_err(sql(&self.path))?
                .iter()
                .any(|rec| {
                    tessera_verifier::decode_license_unverified(&rec.row.bytes)
                        .is_ok_and(|l| l.previous_serial() == Some(hw.as_str()))
                });
            if !backed {
                return Err(broken(
                    0,
                    format!("HW serial {hw} maps to {sw}, but no license of {sw} names it"),
                ));
            }
        }
        self.verify_lifecycle(&broken)?;
        Ok((count, prev))
    }

    /// Every event and replaced binding names a license row of the right
    /// kind: a void event its void, a replaced binding its replacement.
    fn verify_lifecycle(
        &self,
        broken: &dyn Fn(i64, String) -> LedgerError,
    ) -> Result<(), LedgerError> {
        let action_of = |serial: &str, sequence: i64| -> Result<Option<String>, LedgerError> {
            self.conn
                .query_row(
                    "SELECT action FROM licenses WHERE serial = ?1 AND sequence = ?2",
                    params![serial, sequence],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql(&self.path))
        };
        let mut stmt = self
            .conn
            .prepare("SELECT serial, sequence, kind FROM events ORDER BY id")
            .map_err(sql(&self.path))?;
        let rows: Vec<(String, i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))?;
        for (serial, sequence, kind) in rows {
            let expected: &[&str] = match kind.as_str() {
                "void" => &["void"],
                "replace" => &["replace"],
                "share" => &["share"],
                _ => &["issue", "change", "renew", "replace", "void", "share"],
            };
            match action_of(&serial, sequence)? {
                Some(a) if expected.contains(&a.as_str()) => {}
                found => {
                    return Err(broken(
                        0,
                        format!(
                            "a {kind} event names license {sequence} of {serial}, which is {}",
                            found.map_or_else(
                                || "not in the ledger".to_owned(),
                                |a| format!("a {a}")
                            )
                        ),
                    ))
                }
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT serial, sequence, replaced_by FROM replaced_bindings")
            .map_err(sql(&self.path))?;
        let rows: Vec<(String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))?;
        for (serial, sequence, replaced_by) in rows {
            let old = action_of(&serial, sequence)?;
            let new = action_of(&serial, replaced_by)?;
            if old.is_none() || new.as_deref() != Some("replace") || replaced_by <= sequence {
                return Err(broken(
                    0,
                    format!(
                        "the binding of license {sequence} of {serial} is marked replaced by license {replaced_by}, which is not a later replacement"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_bytes(rec: &Record) -> Result<(), String> {
    let l = tessera_verifier::decode_license_unverified(&rec.row.bytes)
        .map_err(|e| format!("the license bytes do not decode ({e})"))?;
    let f = &rec.row;
    let platform = crate::calendar::PlatformName::of(l.platform()).as_str();
    let same = l.serial() == f.serial
        && l.sequence() == f.sequence
        && l.id() == f.license_id
        && l.issued_at() == f.issued_at
        && l.lease_end() == f.lease_end
        && l.term().end == f.term_end
        && l.customer() == f.customer
        && l.pbx_name() == f.pbx_name
        && platform == f.platform;
    if same {
        Ok(())
    } else {
        Err("the row's columns differ from its license bytes".into())
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
    move |source| LedgerError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn latest(conn: &Connection, serial: &str) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM licenses WHERE serial = ?1 ORDER BY sequence DESC LIMIT 1"
    ))?
    .query_row([serial], record_from_row)
    .optional()
}

fn history(conn: &Connection, serial: &str) -> rusqlite::Result<Vec<Record>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM licenses WHERE serial = ?1 ORDER BY sequence"
    ))?
    .query_map([serial], record_from_row)?
    .collect()
}

fn sw_serial_of(conn: &Connection, hw: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT serial FROM hw_serials WHERE hw_serial = ?1")?
        .query_row([hw], |r| r.get(0))
        .optional()
}

fn by_idem_key(conn: &Connection, key: &str) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM licenses WHERE idem_key = ?1"
    ))?
    .query_row([key], record_from_row)
    .optional()
}

fn schedule(conn: &Connection, serial: &str) -> rusqlite::Result<Option<ZeroSchedule>> {
    conn.prepare_cached(
        "SELECT stop_at, delete_at FROM schedules WHERE serial = ?1 AND cancelled_at IS NULL",
    )?
    .query_row([serial], |r| {
        Ok(ZeroSchedule {
            stop_at: r.get(0)?,
            delete_at: r.get(1)?,
        })
    })
    .optional()
}

fn events(conn: &Connection, serial: &str) -> rusqlite::Result<Vec<Event>> {
    conn.prepare_cached(
        "SELECT serial, sequence, kind, detail, operator, at FROM events WHERE serial = ?1 ORDER BY sequence, id",
    )?
    .query_map([serial], event_from_row)?
    .collect()
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let detail: String = r.get(3)?;
    let sequence: i64 = r.get(1)?;
    Ok(Event {
        serial: r.get(0)?,
        sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
        kind: r.get(2)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        operator: r.get(4)?,
        at: r.get(5)?,
    })
}

fn hw_serials_of(conn: &Connection, serial: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT hw_serial FROM hw_serials WHERE serial = ?1 ORDER BY created_at, hw_serial",
    )?
    .query_map([serial], |r| r.get(0))?
    .collect()
}

fn by_license_id(conn: &Connection, id: &[u8; 16]) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM licenses WHERE license_id = ?1"
    ))?
    .query_row([hex::encode(id)], record_from_row)
    .optional()
}

#[derive(Clone, Copy, Debug)]
struct Head {
    rows: i64,
    hash: [u8; 32],
}

/// A write transaction on the ledger (`BEGIN IMMEDIATE`). Dropping it
/// without [`Writer::commit`] rolls everything back.
#[derive(Debug)]
pub struct Writer<'c> {
    tx: Transaction<'c>,
    path: PathBuf,
    head: Head,
    /// The last [`Writer::next_sequence`] answer, so [`Writer::append`]
    /// need not ask again.
    next: Option<(String, u32)>,
}

impl Writer<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        sql(&self.path)
    }

    /// The latest license of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        latest(&self.tx, serial).map_err(self.err())
    }

    /// Every license of a serial, oldest first.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        history(&self.tx, serial).map_err(self.err())
    }

    /// The SW serial a HW serial was converted to.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn sw_serial_of(&self, hw_serial: &str) -> Result<Option<String>, LedgerError> {
        sw_serial_of(&self.tx, hw_serial).map_err(self.err())
    }

    /// The row recorded for a bulk idempotency key.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        by_idem_key(&self.tx, key).map_err(self.err())
    }

    /// The pending stop/delete schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn schedule(&self, serial: &str) -> Result<Option<ZeroSchedule>, LedgerError> {
        schedule(&self.tx, serial).map_err(self.err())
    }

    /// The next sequence of a serial: one more than its highest, 1 for a
    /// new serial. Read under the write lock, so it is this transaction's
    /// to use.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`], [`LedgerError::Conflict`] past `u32::MAX`.
    pub fn next_sequence(&mut self, serial: &str) -> Result<u32, LedgerError> {
        if let Some((s, n)) = &self.next {
            if s == serial {
                return Ok(*n);
            }
        }
        let max: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(sequence) FROM licenses WHERE serial = ?1")
            .and_then(|mut s| s.query_row([serial], |r| r.get(0)))
            .map_err(self.err())?;
        let n = u32::try_from(max.unwrap_or(0) + 1).map_err(|_| LedgerError::Conflict {
            path: self.path.clone(),
            reason: format!("{serial} has used every sequence number"),
        })?;
        self.next = Some((serial.to_owned(), n));
        Ok(n)
    }

    /// Allocates a new SW serial `SW-YYYY-NNNNNN` (a counter per year,
    /// skipping serials already in use).
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn allocate_serial(&mut self, year: i32) -> Result<String, LedgerError> {
        loop {
            // No RETURNING: SQLite implements it with a temporary trigger,
            // which makes every execution re-prepare the statement.
            self.tx
                .prepare_cached(
                    "INSERT INTO serial_counter (year, last) VALUES (?1, 1) \
                     ON CONFLICT (year) DO UPDATE SET last = last + 1",
                )
                .and_then(|mut s| s.execute([year]))
                .map_err(self.err())?;
            let n: i64 = self
                .tx
                .prepare_cached("SELECT last FROM serial_counter WHERE year = ?1")
                .and_then(|mut s| s.query_row([year], |r| r.get(0)))
                .map_err(self.err())?;
            let serial = format!("SW-{year:04}-{n:06}");
            let used: bool = self
                .tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM licenses WHERE serial = ?1) \
                     OR EXISTS (SELECT 1 FROM hw_serials WHERE serial = ?1)",
                )
                .and_then(|mut s| s.query_row([&serial], |r| r.get(0)))
                .map_err(self.err())?;
            if !used {
                return Ok(serial);
            }
        }
    }

    /// Records that `hw_serial` was converted to `serial`.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`] (also when the HW serial is mapped already).
    pub fn map_hw_serial(
        &mut self,
        hw_serial: &str,
        serial: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT INTO hw_serials (hw_serial, serial, created_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![hw_serial, serial, at]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Schedules stop and deletion of a serial (decrease to zero users).
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn set_schedule(
        &mut self,
        serial: &str,
        z: ZeroSchedule,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT INTO schedules (serial, stop_at, delete_at, created_at, cancelled_at) \
                 VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT (serial) DO UPDATE SET \
                 stop_at = ?2, delete_at = ?3, created_at = ?4, cancelled_at = NULL",
            )
            .and_then(|mut s| s.execute(params![serial, z.stop_at, z.delete_at, at]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Cancels the pending schedule of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn cancel_schedule(&mut self, serial: &str, at: i64) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "UPDATE schedules SET cancelled_at = ?2 WHERE serial = ?1 AND cancelled_at IS NULL",
            )
            .and_then(|mut s| s.execute(params![serial, at]))
            .map_err(self.err())?;
        Ok(())
    }

    /// The HW serial a SW serial was first converted from.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn hw_serial_of(&self, serial: &str) -> Result<Option<String>, LedgerError> {
        Ok(hw_serials_of(&self.tx, serial)
            .map_err(self.err())?
            .into_iter()
            .next())
    }

    /// The license with this id.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        by_license_id(&self.tx, id).map_err(self.err())
    }

    /// The lifecycle events of a serial.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        events(&self.tx, serial).map_err(self.err())
    }

    /// Records a lifecycle event next to the license `sequence` of
    /// `serial` (appended in this transaction).
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn add_event(
        &mut self,
        serial: &str,
        sequence: u32,
        kind: &str,
        detail: &serde_json::Value,
        operator: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT INTO events (serial, sequence, kind, detail, operator, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![serial, sequence, kind, detail.to_string(), operator, at])
            })
            .map_err(self.err())?;
        Ok(())
    }

    /// Records the device key of the request a license answered.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn record_request_key(
        &mut self,
        serial: &str,
        sequence: u32,
        device_key: &[u8; 32],
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO request_keys (serial, sequence, device_key) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![serial, sequence, hex::encode(device_key)]))
            .map_err(self.err())?;
        Ok(())
    }

    /// The device keys of the requests answered by licenses of `serial`
    /// from sequence `from` on.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn request_keys_since(&self, serial: &str, from: u32) -> Result<Vec<String>, LedgerError> {
        self.tx
            .prepare_cached(
                "SELECT DISTINCT device_key FROM request_keys WHERE serial = ?1 AND sequence >= ?2 ORDER BY device_key",
            )
            .and_then(|mut s| {
                s.query_map(params![serial, from], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(self.err())
    }

    /// Marks the binding of license `sequence` of `serial` as replaced by
    /// license `replaced_by` (RMA, migration): [`Writer::replaced_bindings`]
    /// lists it from then on.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn mark_replaced(
        &mut self,
        serial: &str,
        sequence: u32,
        replaced_by: u32,
        device_keys: &[String],
        reason: &str,
        at: i64,
    ) -> Result<(), LedgerError> {
        let keys = serde_json::to_string(device_keys).unwrap_or_else(|_| "[]".into());
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO replaced_bindings (serial, sequence, replaced_by, device_keys, reason, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![serial, sequence, replaced_by, keys, reason, at]))
            .map_err(self.err())?;
        Ok(())
    }

    /// The bindings of `serial` that replacements superseded.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn replaced_bindings(&self, serial: &str) -> Result<Vec<ReplacedBinding>, LedgerError> {
        self.tx
            .prepare_cached(
                "SELECT sequence, replaced_by, device_keys FROM replaced_bindings WHERE serial = ?1 ORDER BY sequence",
            )
            .and_then(|mut s| {
                s.query_map([serial], |r| {
                    let sequence: i64 = r.get(0)?;
                    let replaced_by: i64 = r.get(1)?;
                    let keys: String = r.get(2)?;
                    Ok(ReplacedBinding {
                        sequence: u32::try_from(sequence).unwrap_or(u32::MAX),
                        replaced_by: u32::try_from(replaced_by).unwrap_or(u32::MAX),
                        device_keys: serde_json::from_str(&keys).unwrap_or_default(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.err())
    }

    /// Appends a license row to the chain.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] when the sequence is not the serial's
    /// next, [`LedgerError::Sqlite`] (for example a repeated idempotency
    /// key).
    pub fn append(&mut self, new: NewRecord) -> Result<Record, LedgerError> {
        let expected = self.next_sequence(&new.serial)?;
        if new.sequence != expected {
            return Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: format!(
                    "sequence {} of {} is not the next one ({expected})",
                    new.sequence, new.serial
                ),
            });
        }
        let id = self.head.rows + 1;
        self.next = Some((new.serial.clone(), new.sequence.saturating_add(1)));
        let fields = from_new(new);
        let hash = row_hash(&self.head.hash, id, &fields);
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO licenses ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    fields.serial,
                    fields.sequence,
                    hex::encode(fields.license_id),
                    fields.action.as_str(),
                    fields.bytes,
                    fields.order_json,
                    fields.operator,
                    fields.issued_at,
                    fields.customer,
                    fields.pbx_name,
                    fields.platform,
                    fields.lease_end,
                    fields.term_end,
                    fields.idem_key,
                    self.head.hash.as_slice(),
                    hash.as_slice(),
                ])
            })
            .map_err(self.err())?;
        let record = Record {
            id,
            row: fields,
            prev_hash: self.head.hash,
            hash,
        };
        self.head = Head { rows: id, hash };
        Ok(record)
    }

    /// Runs `f` inside a savepoint: when it fails, everything it wrote is
    /// undone and the rest of the transaction is kept (one bad bulk row
    /// does not spoil its batch).
    ///
    /// # Errors
    /// `f`'s error, or [`LedgerError::Sqlite`] converted into it.
    pub fn savepoint<T, E: From<LedgerError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.tx
            .prepare_cached("SAVEPOINT row")
            .and_then(|mut s| s.execute([]))
            .map_err(self.err())?;
        let head = self.head;
        let next = self.next.clone();
        match f(self) {
            Ok(v) => {
                self.tx
                    .prepare_cached("RELEASE row")
                    .and_then(|mut s| s.execute([]))
                    .map_err(self.err())?;
                Ok(v)
            }
            Err(e) => {
                self.head = head;
                self.next = next;
                self.tx
                    .execute_batch("ROLLBACK TO row; RELEASE row")
                    .map_err(self.err())?;
                Err(e)
            }
        }
    }

    /// Writes the chain head and commits: durable (`synchronous=FULL`)
    /// once this returns.
    ///
    /// # Errors
    /// [`LedgerError::Sqlite`].
    pub fn commit(self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        self.tx
            .execute(
                "UPDATE chain_head SET rows = ?1, hash = ?2 WHERE id = 1",
                params![self.head.rows, self.head.hash.as_slice()],
            )
            .map_err(sql(&path))?;
        self.tx.commit().map_err(sql(&path))
    }
}

#[cfg(test)]
mod tests;
