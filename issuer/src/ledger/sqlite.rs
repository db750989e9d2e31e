//! The SQLite backend: the embedded default, for the CLI and one server.
//!
//! - WAL journal, `synchronous=FULL`: a committed transaction survives a
//!   crash or power loss.
//! - Writers take the write lock with `BEGIN IMMEDIATE`
//!   (`SqliteBackend::begin`): what a transaction reads (the chain head,
//!   a serial's last sequence, a year's counter) is what it appends after.
//!   A writer that has to wait says so once and gives up after the busy
//!   timeout with an error that says what to do.
//! - Readers open the file read-only (`SQLITE_OPEN_READ_ONLY`, `query_only`)
//!   and read one snapshot; in WAL mode they never wait for a writer nor
//!   make one wait. On read-only media (no `-shm` file can be made) they
//!   open it `immutable`.
//! - The file says what it is: `PRAGMA application_id` is `TSLG`,
//!   `user_version` the schema ([`SCHEMA_VERSION`]). Anything else is not a
//!   tessera ledger (the format before the journal is recognised and named).
//! - No SQLite message reaches the user: `classify` turns every error
//!   into a [`LedgerError`] that says what it means.
//! - A writer copies the write-ahead log into the ledger file (the WAL
//!   checkpoint) on a thread of its own ([`Checkpointer`]), after each
//!   commit: a commit waits for its own log write and fsync, not for the
//!   copy of the batch before it.

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{
    params, Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::journal::{Action, Charge};
use super::views::{
    ChargeRow, CounterRow, EventRow, HwRow, Identity, LicenseRow, PbxChangeRow, PbxRow,
    ReplacedRow, ScheduleRow, ViewRow, ViewStore,
};
use super::{Event, LedgerError, Record, ReplacedBinding, SerialSummary};
use crate::policy::ZeroSchedule;
use crate::validate;

/// `PRAGMA application_id` of a tessera ledger: "TSLG".
pub const APPLICATION_ID: i32 = 0x5453_4C47;
/// The schema this tessera writes into a ledger file: 5, the journal (3),
/// the PBX registry (4) and the charges view one row a charges entry.
/// Schemas 1 and 2 are the format before the journal (`tessera ledger
/// upgrade`).
pub const SCHEMA_VERSION: i32 = 5;
/// The schema with the charges view one row a charge line: readable, and
/// upgraded to [`SCHEMA_VERSION`] by the first writer (the PostgreSQL
/// backend's schema, whose charges stay one row a line).
pub(crate) const LINE_CHARGES_VERSION: i32 = 4;
/// The schema before the PBX registry: readable, and upgraded to
/// [`SCHEMA_VERSION`] by the first writer.
pub(crate) const UNREGISTERED_VERSION: i32 = 3;

/// The tables schema 4 added to schema 3 (the PBX registry and billing):
/// a writer adds them to a schema 3 ledger when it opens it; a reader of
/// a schema 3 ledger sees them empty.
///
/// `charges` holds one row a charges entry, keyed by the entry (SQLite's
/// rowid), its lines as one JSON array (schema 5): a first activation
/// bills about seven lines, and seven rows with an index entry each cost
/// the SQLite work of a first activation about a quarter more than one
/// row does (bench/REPORT.md, "What the ledger's shape costs"). Readers
/// get the same [`ChargeRow`]s from either shape.
///
/// `hw_serials` (in [`SCHEMA`]) is `WITHOUT ROWID`: each row is one B-tree
/// entry under its primary key instead of a table row plus an index
/// entry. Its rows are small (under a twentieth of a page, SQLite's rule
/// of thumb), and a bulk batch writes fewer bytes that way
/// (bench/REPORT.md). The other tables keyed by text stay rowid tables:
/// measured, `licenses` and `pbxs` cost more instructions that way and
/// save no log, and `schedules` and `replaced_bindings` are rare. Ledgers
/// made before keep their rowid tables: the statements that read and
/// write them are the same, and the schema check compares names, not
/// shapes.
const REGISTRY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pbxs (
    serial         TEXT    PRIMARY KEY,
    customer       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    cycle          TEXT    NOT NULL,
    profiles       TEXT    NOT NULL,
    storage        INTEGER NOT NULL,
    policy         TEXT    NOT NULL,
    policy_values  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    entry          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pbx_changes (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pbx_changes_serial ON pbx_changes (serial);
CREATE TABLE IF NOT EXISTS charges (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    lines     TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_at ON charges (at);
";

/// Schema 4 → 5: the charges view from one row a line to one row a
/// charges entry, its lines in order as a JSON array of
/// [`LineColumns`] arrays. Run in the writer's upgrade
/// transaction; the writers' check then compares the result with the fold
/// of the journal, as it does every view.
const CHARGES_TO_ONE_ROW: &str = "
CREATE TABLE charges_by_entry (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    lines     TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
INSERT INTO charges_by_entry (entry, serial, sequence, lines, at)
    SELECT entry, serial, sequence,
           json_group_array(json_array(kind, item, quantity, cycle, period_start,
                                       period_end, days, period_days) ORDER BY line),
           at
    FROM charges GROUP BY entry;
DROP INDEX charges_at;
DROP TABLE charges;
ALTER TABLE charges_by_entry RENAME TO charges;
CREATE INDEX charges_at ON charges (at);
";

/// Brings a ledger file of an earlier schema to [`SCHEMA_VERSION`] inside
/// the write transaction `tx`, before anything else in it: schema 3 → 5
/// adds the registry and billing views, empty (a schema 3 journal has none
/// of their facts); 4 → 5 moves the charges to one row an entry
/// ([`CHARGES_TO_ONE_ROW`]). In the transaction, so the writer's check of
/// the views, which comes next, sees the result, and a refusal or a crash
/// leaves the file as it was; the schema is read inside it, so a file
/// another writer upgraded meanwhile is left alone. Whether the file was
/// of [`SCHEMA_VERSION`] already.
fn upgrade(tx: &Transaction<'_>, path: &Path) -> Result<bool, LedgerError> {
    let version: i32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql(path))?;
    let script = match version {
        UNREGISTERED_VERSION => REGISTRY_SCHEMA,
        LINE_CHARGES_VERSION => CHARGES_TO_ONE_ROW,
        _ => return Ok(true),
    };
    tx.execute_batch(&format!("{script} PRAGMA user_version = {SCHEMA_VERSION};"))
        .map_err(|e| classify(path, &e))?;
    Ok(false)
}

/// The tables schema 4 added.
const REGISTRY_TABLES: [&str; 3] = ["pbxs", "pbx_changes", "charges"];

const SCHEMA: &str = "
CREATE TABLE journal (
    position  INTEGER PRIMARY KEY,
    body      BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);
CREATE TABLE checkpoints (
    entries  INTEGER PRIMARY KEY,
    bytes    BLOB    NOT NULL
);
CREATE TABLE identity (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    ledger_id       BLOB    NOT NULL,
    vendor          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    journal_format  INTEGER NOT NULL
);
CREATE TABLE licenses (
    serial      TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    license_id  BLOB    NOT NULL UNIQUE,
    action      TEXT    NOT NULL,
    entry       INTEGER NOT NULL,
    operator    TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    customer    TEXT    NOT NULL,
    pbx_name    TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    lease_end   INTEGER NOT NULL,
    term_end    INTEGER,
    idem_key    TEXT    UNIQUE,
    request_key BLOB,
    PRIMARY KEY (serial, sequence)
);
CREATE TABLE hw_serials (
    hw_serial  TEXT    PRIMARY KEY,
    serial     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    entry      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX hw_serials_serial ON hw_serials (serial);
CREATE TABLE serial_counter (
    year   INTEGER PRIMARY KEY,
    last   INTEGER NOT NULL,
    entry  INTEGER NOT NULL
);
CREATE TABLE schedules (
    serial        TEXT    PRIMARY KEY,
    stop_at       INTEGER NOT NULL,
    delete_at     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER,
    entry         INTEGER NOT NULL
);
CREATE TABLE events (
    entry     INTEGER PRIMARY KEY,
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
    entry        INTEGER NOT NULL,
    PRIMARY KEY (serial, sequence)
);
";

/// The tables every ledger of this schema has.
const TABLES: [&str; 9] = [
    "journal",
    "checkpoints",
    "identity",
    "licenses",
    "hw_serials",
    "serial_counter",
    "schedules",
    "events",
    "replaced_bindings",
];

/// The (type, name) of every object [`SCHEMA`] and [`REGISTRY_SCHEMA`]
/// create.
fn schema_objects() -> Vec<(&'static str, &'static str)> {
    SCHEMA
        .split(';')
        .chain(REGISTRY_SCHEMA.split(';'))
        .filter_map(|statement| {
            let mut words = statement.split_whitespace();
            if words.next() != Some("CREATE") {
                return None;
            }
            let kind = match words.next() {
                Some("TABLE") => "table",
                Some("INDEX") => "index",
                _ => return None,
            };
            let mut name = words.next();
            if name == Some("IF") {
                // IF NOT EXISTS
                name = words.nth(2);
            }
            name.map(|name| (kind, name))
        })
        .collect()
}

/// What an SQLite error means for the user (never SQLite's own words).
pub(crate) fn classify(path: &Path, e: &rusqlite::Error) -> LedgerError {
    let path = path.to_owned();
    let damaged = |what: &str| LedgerError::Damaged {
        path: path.clone(),
        what: what.to_owned(),
    };
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => LedgerError::Busy {
                path,
                waited: 0,
            },
            ErrorCode::ReadOnly => LedgerError::ReadOnly { path },
            ErrorCode::DiskFull => LedgerError::Io {
                path,
                what: "the disk is full: free space and run the command again (nothing was recorded)".into(),
            },
            ErrorCode::SystemIoFailure => LedgerError::Io {
                path,
                what: "the disk reported an I/O error: check the disk and run `tessera ledger verify`".into(),
            },
            ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied => {
                LedgerError::Io {
                    path,
                    what: "it cannot be opened: check that it exists and that you may read (and, to issue, write) it and its folder".into(),
                }
            }
            ErrorCode::NotADatabase => damaged("the file is not an SQLite database"),
            ErrorCode::DatabaseCorrupt => damaged("its pages are corrupt"),
            ErrorCode::ConstraintViolation => damaged(
                "a view holds a row that conflicts with a new entry (the views were edited outside tessera)",
            ),
            ErrorCode::SchemaChanged => damaged("its schema changed while it was read"),
            _ => damaged("its tables do not have the shape of a tessera ledger"),
        },
        rusqlite::Error::QueryReturnedNoRows => damaged("a row that must exist is missing"),
        rusqlite::Error::InvalidColumnType(_, name, _) => {
            damaged(&format!("column `{name}` holds a value of the wrong type"))
        }
        rusqlite::Error::IntegralValueOutOfRange(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            damaged("a column holds a value out of its range")
        }
        rusqlite::Error::Utf8Error(..) => damaged("a text column holds invalid UTF-8"),
        _ => damaged("it could not be read as a tessera ledger"),
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
    move |e| classify(path, &e)
}

/// How a ledger file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read and write (the commands that issue).
    Write,
    /// Read only, one snapshot (list, show, verify, export, report, head).
    Read,
}

/// An open SQLite ledger file.
#[derive(Debug)]
pub struct SqliteBackend {
    /// Declared first, so it is dropped (and its thread joined) before
    /// `conn` closes: the last connection to close then finds the log
    /// copied already.
    checkpointer: Option<Checkpointer>,
    conn: Connection,
    path: PathBuf,
    mode: Mode,
    /// The file is known to be of [`SCHEMA_VERSION`]; until then each
    /// write transaction first brings it there ([`SqliteBackend::begin`]).
    current: bool,
}

/// Copies the write-ahead log into the ledger file on a thread of its
/// own, after each commit (`PRAGMA wal_checkpoint(PASSIVE)` on a second
/// connection: it never waits for the writer nor makes it wait).
///
/// SQLite's default is to do that copy inside the commit that fills the
/// log past 1,000 pages: with a 2,000-row bulk batch (about 3,000 pages)
/// every commit then also copied the batch into the file and fsynced it,
/// on the thread every other row waits for.
///
/// The log starts over only when a writer begins after a copy caught up
/// with the last commit; a writer that begins right after its own commit
/// (the next bulk batch) is always ahead of the copy. So once the log
/// holds more than [`LOG_LIMIT`] bytes, the next writer waits for the copy
/// before it begins ([`Checkpointer::catch_up`]): one wait per that many
/// bytes written, instead of a copy inside every commit.
#[derive(Debug)]
struct Checkpointer {
    shared: std::sync::Arc<CheckpointShared>,
    thread: Option<std::thread::JoinHandle<()>>,
    log: PathBuf,
}

#[derive(Debug, Default)]
struct CheckpointShared {
    state: std::sync::Mutex<CheckpointState>,
    changed: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct CheckpointState {
    /// Commits made, and commits whose copy is finished (or given up
    /// while no writer waited for it).
    committed: u64,
    copied: u64,
    /// A writer waits for the copy ([`Checkpointer::catch_up`]).
    waiting: bool,
    stop: bool,
}

/// The size of the write-ahead log past which a writer waits for the
/// copy before it begins (and the size SQLite truncates the log file to
/// when it starts over).
const LOG_LIMIT: u64 = 32 << 20;

/// [`LOG_LIMIT`], lowered by tests to see the log start over without
/// writing 32 MiB.
static LOG_LIMIT_NOW: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(LOG_LIMIT);

#[cfg(test)]
pub(crate) fn set_log_limit(bytes: u64) {
    LOG_LIMIT_NOW.store(bytes, core::sync::atomic::Ordering::Relaxed);
}

impl CheckpointShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, CheckpointState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Checkpointer {
    /// Opens the second connection and starts the thread; `None` when
    /// either fails (the writer then keeps SQLite's own checkpoints).
    fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let shared = std::sync::Arc::new(CheckpointShared::default());
        let theirs = std::sync::Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || loop {
                let target = {
                    let mut s = theirs.lock();
                    while s.copied == s.committed && !s.stop {
                        s = theirs
                            .changed
                            .wait(s)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    if s.stop {
                        return;
                    }
                    s.committed
                };
                // (busy, frames in the log, frames copied): a reader of an
                // older snapshot keeps the copy from reaching the end.
                let whole = conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok(r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
                    })
                    .unwrap_or(false);
                let mut s = theirs.lock();
                if !whole && s.waiting && !s.stop {
                    // A writer waits for the log to start over: try again
                    // once the reader may be done.
                    drop(s);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                // Otherwise the next commit tries again; the log keeps
                // every committed page meanwhile.
                s.copied = target;
                drop(s);
                theirs.changed.notify_all();
            })
            .ok()?;
        // SQLite keeps the log next to the file a link points to.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut log = real.into_os_string();
        log.push("-wal");
        Some(Self {
            shared,
            thread: Some(thread),
            log: PathBuf::from(log),
        })
    }

    /// After a commit: the copy is due.
    fn committed(&self) {
        self.shared.lock().committed += 1;
        self.shared.changed.notify_all();
    }

    /// Before a writer begins: when the log is past [`LOG_LIMIT_NOW`],
    /// waits (at most [`CATCH_UP`]) for the copy of every commit so far,
    /// so this writer starts the log over. A reader that holds an older
    /// snapshot longer keeps the log from starting over: the limit is a
    /// target, not a bound.
    fn catch_up(&self) {
        let limit = LOG_LIMIT_NOW.load(core::sync::atomic::Ordering::Relaxed);
        if std::fs::metadata(&self.log).map_or(0, |m| m.len()) < limit {
            return;
        }
        let mut s = self.shared.lock();
        s.waiting = true;
        let (mut s, _) = self
            .shared
            .changed
            .wait_timeout_while(s, CATCH_UP, |s| s.copied < s.committed)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.waiting = false;
    }
}

/// How long a writer waits for the log copy before it begins anyway.
const CATCH_UP: Duration = Duration::from_secs(2);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The thread finishes the copy it is making (if any) and ends.
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the first bytes of a file say it is.
fn check_file(path: &Path) -> Result<(), LedgerError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LedgerError::NotFound {
                path: path.to_owned(),
                named_by: None,
            })
        }
        Err(_) => {
            return Err(LedgerError::Io {
                path: path.to_owned(),
                what: "it cannot be read: check its permissions and those of its folder".into(),
            })
        }
    };
    if let Some(what) = super::not_a_file(&meta) {
        return Err(LedgerError::NotAFile {
            path: path.to_owned(),
            what,
            named_by: None,
        });
    }
    if meta.len() == 0 {
        return Err(LedgerError::Empty(path.to_owned()));
    }
    let mut head = [0u8; 16];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    if read.is_err() || &head != b"SQLite format 3\0" {
        return Err(LedgerError::Foreign {
            path: path.to_owned(),
            what: "it is not an SQLite database".into(),
        });
    }
    Ok(())
}

/// Refuses a ledger of a schema other than the backend's `newest` or an
/// earlier one from 3 on (the schema before the registry) that a writer
/// upgrades when it opens it; every backend marks its ledgers with it.
pub(crate) fn check_version(path: &Path, version: i32, newest: i32) -> Result<(), LedgerError> {
    if version > newest {
        return Err(LedgerError::NewerSchema {
            path: path.to_owned(),
            found: version,
            newest,
        });
    }
    if version < UNREGISTERED_VERSION {
        return Err(LedgerError::Damaged {
            path: path.to_owned(),
            what: format!("it says schema {version}, which no tessera wrote"),
        });
    }
    Ok(())
}

/// A path as an SQLite `file:` URI (percent-encoding what a URI reserves).
fn uri(path: &Path, query: &str) -> String {
    let mut out = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(*b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

impl SqliteBackend {
    /// Opens an existing ledger file; refuses a missing, empty, foreign,
    /// older or newer one.
    pub(crate) fn open(path: &Path, mode: Mode) -> Result<Self, LedgerError> {
        check_file(path)?;
        let conn = match mode {
            Mode::Write => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sql(path))?,
            Mode::Read => Self::open_reader(path)?,
        };
        let mut backend = Self {
            checkpointer: None,
            conn,
            path: path.to_owned(),
            mode,
            current: false,
        };
        let version = backend.check_schema()?;
        backend.current = version == SCHEMA_VERSION;
        if mode == Mode::Write {
            backend.setup_writer()?;
            backend.checkpointer = Checkpointer::start(path);
            if backend.checkpointer.is_some() {
                backend
                    .conn
                    .pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(sql(path))?;
                backend
                    .conn
                    .pragma_update(None, "journal_size_limit", to_i64(LOG_LIMIT))
                    .map_err(sql(path))?;
            }
        } else {
            // One snapshot for everything this reader reads.
            backend.conn.execute_batch("BEGIN").map_err(sql(path))?;
        }
        Ok(backend)
    }

    fn open_reader(path: &Path) -> Result<Connection, LedgerError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql(path))?;
        let usable = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|_| ());
        match usable {
            Ok(()) => {}
            Err(e) => {
                // A WAL database needs its -shm file; on read-only media
                // none can be made: read the file as it is.
                let code = e.sqlite_error_code();
                if !matches!(
                    code,
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
                ) {
                    return Err(classify(path, &e));
                }
                drop(conn);
                // Read as it is, the file lacks what its -wal file holds:
                // a partial ledger would verify as "intact". Refuse.
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                    return Err(LedgerError::Io {
                        path: path.to_owned(),
                        what: "its -wal file holds recent entries, which can only be read with the ledger's -shm file or from a writable folder; copy the ledger with its -wal and -shm files, or read it where it can be written".into(),
                    });
                }
                return Connection::open_with_flags(
                    uri(path, "immutable=1"),
                    flags | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(sql(path));
            }
        }
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql(path))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(sql(path))?;
        Ok(conn)
    }

    /// Opens a ledger of an earlier tessera (schema 1 or 2, before the
    /// journal) to read it once, in one snapshot: `tessera ledger
    /// upgrade`. Returns the connection and the schema.
    pub(crate) fn open_old(path: &Path) -> Result<(Connection, i32), LedgerError> {
        check_file(path)?;
        let conn = Self::open_reader(path)?;
        let app: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(sql(path))?;
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if app == APPLICATION_ID {
            return Err(LedgerError::Conflict {
                path: path.to_owned(),
                reason: format!(
                    "it is a ledger of this tessera already (schema {version}): nothing to upgrade; use it as it is"
                ),
            });
        }
        let old: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain_head')",
                [],
                |r| r.get(0),
            )
            .map_err(sql(path))?;
        if app != 0 || !old || !(1..=2).contains(&version) {
            return Err(LedgerError::Foreign {
                path: path.to_owned(),
                what: "it is not a ledger of an earlier tessera (no schema 1 or 2 hash chain)"
                    .into(),
            });
        }
        conn.execute_batch("BEGIN").map_err(sql(path))?;
        Ok((conn, version))
    }

    /// Checks the marks and tables; returns the schema (3 or 4).
    fn check_schema(&self) -> Result<i32, LedgerError> {
        let path = &self.path;
        let app: i32 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(sql(path))?;
        let version: i32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(path))?;
        if app != APPLICATION_ID {
            let old: bool = self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chain_head')",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql(path))?;
            if app == 0 && old && (1..=2).contains(&version) {
                return Err(LedgerError::OldFormat {
                    path: path.clone(),
                    version,
                });
            }
            return Err(LedgerError::Foreign {
                path: path.clone(),
                what: "it is an SQLite database of another program".into(),
            });
        }
        check_version(path, version, SCHEMA_VERSION)?;
        let registry: &[&str] = if version >= 4 { &REGISTRY_TABLES } else { &[] };
        for table in TABLES.iter().chain(registry) {
            let present: bool = self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                    [table],
                    |r| r.get(0),
                )
                .map_err(sql(path))?;
            if !present {
                return Err(LedgerError::Damaged {
                    path: path.clone(),
                    what: format!("its table `{table}` is missing"),
                });
            }
        }
        // Nothing tessera did not create: a trigger or a view planted in
        // the file would change what the fold reads or writes.
        let mut stmt = self
            .conn
            .prepare("SELECT type, name FROM sqlite_master")
            .map_err(sql(path))?;
        let objects = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql(path))?;
        let ours = schema_objects();
        for object in objects {
            let (kind, name) = object.map_err(sql(path))?;
            // Names beginning with `sqlite_` are SQLite's own (automatic
            // indexes, statistics); nobody else can create them.
            if name.starts_with("sqlite_") || ours.contains(&(kind.as_str(), name.as_str())) {
                continue;
            }
            return Err(LedgerError::Damaged {
                path: path.clone(),
                what: format!(
                    "it holds a {} `{}` that tessera did not create",
                    validate::shown(&kind),
                    validate::shown(&name)
                ),
            });
        }
        Ok(version)
    }

    fn setup_writer(&self) -> Result<(), LedgerError> {
        let path = &self.path;
        let conn = &self.conn;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql(path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Io {
                path: path.clone(),
                what: format!(
                    "it cannot use a write-ahead log (journal mode {mode}): it must be on a local file system"
                ),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql(path))?;
        // A bulk batch touches a few MiB: keep it in memory until commit.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(sql(path))?;
        // Every bulk row runs in a savepoint, whose undo copies (the
        // statement journal, about a dozen pages a row) otherwise go
        // through a temporary file: tens of MB of writes per batch. They
        // only serve `ROLLBACK TO` inside the open transaction, never
        // crash recovery (the WAL does), so memory loses nothing.
        conn.pragma_update(None, "temp_store", "MEMORY")
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
        Ok(())
    }

    /// Lays out a new ledger in `path`, an empty file the caller created
    /// exclusively (mode 0600, under a temporary name): the schema and its
    /// marks, no entry yet. The caller appends the genesis entry, commits
    /// and renames the file into place.
    pub(crate) fn create(path: &Path) -> Result<Self, LedgerError> {
        let empty = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0);
        if !empty {
            return Err(LedgerError::Exists(path.to_owned()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql(path))?;
        // No checkpoint thread: the file is renamed into place once made,
        // and a second connection would keep the log's temporary name.
        let backend = Self {
            checkpointer: None,
            conn,
            path: path.to_owned(),
            mode: Mode::Write,
            current: true,
        };
        backend.setup_writer()?;
        backend
            .conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} {REGISTRY_SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(sql(path))?;
        Ok(backend)
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sql(&self) -> Sql<'_> {
        Sql {
            conn: &self.conn,
            path: &self.path,
            registry: false,
        }
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`), waiting up to
    /// `timeout` for another writer; `on_wait` is called once when the
    /// wait starts.
    pub(crate) fn begin(
        &mut self,
        timeout: Duration,
        on_wait: &dyn Fn(&Path),
    ) -> Result<SqliteTx<'_>, LedgerError> {
        if self.mode != Mode::Write {
            return Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: "opened for reading only".into(),
            });
        }
        let path = self.path.clone();
        if let Some(c) = &self.checkpointer {
            c.catch_up();
        }
        let start = Instant::now();
        // A short first wait, then the notice, then the rest.
        let first = timeout.min(Duration::from_millis(500));
        self.conn.busy_timeout(first).map_err(sql(&path))?;
        let mut waited = false;
        loop {
            // `transaction_with_behavior` borrows the connection: test for
            // the lock with a plain statement first.
            match self.conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK") {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) =>
                {
                    let elapsed = start.elapsed();
                    if elapsed >= timeout {
                        return Err(LedgerError::Busy {
                            path,
                            waited: elapsed.as_secs(),
                        });
                    }
                    if !waited {
                        on_wait(&path);
                        waited = true;
                    }
                    self.conn
                        .busy_timeout(timeout.saturating_sub(elapsed))
                        .map_err(sql(&path))?;
                }
                Err(e) => return Err(classify(&path, &e)),
            }
        }
        self.conn.busy_timeout(timeout).map_err(sql(&path))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| match classify(&path, &e) {
                LedgerError::Busy { .. } => LedgerError::Busy {
                    path: path.clone(),
                    waited: start.elapsed().as_secs(),
                },
                other => other,
            })?;
        if !self.current {
            self.current = upgrade(&tx, &path)?;
        }
        Ok(SqliteTx {
            tx,
            checkpoint: self.checkpointer.as_ref(),
            path,
            identity: core::cell::RefCell::new(None),
            counters: core::cell::RefCell::default(),
            sequences: core::cell::RefCell::default(),
        })
    }
}

/// A write transaction on an SQLite ledger.
#[derive(Debug)]
pub struct SqliteTx<'c> {
    tx: Transaction<'c>,
    /// Told of the commit.
    checkpoint: Option<&'c Checkpointer>,
    path: PathBuf,
    /// The identity view, once read (it changes only with the genesis).
    identity: core::cell::RefCell<Option<Option<Identity>>>,
    /// The serial counters read or written in this transaction (a bulk
    /// batch allocates many serials of one year).
    counters: core::cell::RefCell<std::collections::HashMap<i32, Option<u32>>>,
    /// The last sequences read or written in this transaction.
    sequences: core::cell::RefCell<std::collections::HashMap<String, Option<u32>>>,
}

impl SqliteTx<'_> {
    pub(crate) fn sql(&self) -> Sql<'_> {
        Sql {
            conn: &self.tx,
            path: &self.path,
            // A writer migrated the file to the current schema when it
            // opened it.
            registry: true,
        }
    }

    fn exec(&self, statement: &str, p: impl rusqlite::Params) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached(statement)
            .and_then(|mut s| s.execute(p))
            .map(|_| ())
            .map_err(sql(&self.path))
    }

    pub(crate) fn append_entry(
        &mut self,
        position: u64,
        body: &[u8],
        hash: &[u8; 32],
    ) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO journal (position, body, hash) VALUES (?1, ?2, ?3)",
            params![to_i64(position), body, hash.as_slice()],
        )
    }

    pub(crate) fn add_checkpoint(&mut self, entries: u64, bytes: &[u8]) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO checkpoints (entries, bytes) VALUES (?1, ?2)",
            params![to_i64(entries), bytes],
        )
    }

    pub(crate) fn savepoint(&mut self) -> Result<(), LedgerError> {
        self.exec("SAVEPOINT row", [])
    }

    pub(crate) fn release(&mut self) -> Result<(), LedgerError> {
        self.exec("RELEASE row", [])
    }

    pub(crate) fn rollback_to(&mut self) -> Result<(), LedgerError> {
        *self.identity.borrow_mut() = None;
        self.counters.borrow_mut().clear();
        self.sequences.borrow_mut().clear();
        self.tx
            .execute_batch("ROLLBACK TO row; RELEASE row")
            .map_err(sql(&self.path))
    }

    pub(crate) fn commit(self) -> Result<(), LedgerError> {
        let path = self.path;
        self.tx.commit().map_err(sql(&path))?;
        if let Some(c) = self.checkpoint {
            c.committed();
        }
        Ok(())
    }
}

/// Saturating conversions between SQLite's i64 and our unsigned numbers.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The queries, on a read connection or a write transaction.
#[derive(Clone, Copy)]
pub(crate) struct Sql<'a> {
    conn: &'a Connection,
    path: &'a Path,
    /// The registry's tables are known to exist (a writer's
    /// transaction): no need to ask `sqlite_master` on every query.
    registry: bool,
}

const RECORD: &str = "SELECT l.serial, l.sequence, l.license_id, l.action, l.entry, l.operator, \
    l.issued_at, l.customer, l.pbx_name, l.platform, l.lease_end, l.term_end, l.idem_key, \
    j.body, j.hash FROM licenses l LEFT JOIN journal j ON j.position = l.entry";

macro_rules! pbx_select {
    () => {
        "SELECT serial, customer, name, model, platform, cycle, profiles, storage, \
         policy, policy_values, created_at, entry FROM pbxs"
    };
}

/// The charges of a schema 4 ledger: one row a line.
const LINE_CHARGE: &str = "SELECT entry, line, serial, sequence, kind, item, quantity, cycle, \
    period_start, period_end, days, period_days, at FROM charges";

/// The charges of a schema 5 ledger: one row a charges entry.
const ENTRY_CHARGES: &str = "SELECT entry, serial, sequence, lines, at FROM charges";

/// A charge line in the `lines` column of schema 5's charges view: the
/// [`Charge`]'s fields in this order, as a JSON array (so `sqlite3` users
/// read it with `json_each`), the entry's lines an array of them.
type LineColumns<K, C> = (K, K, u32, C, i64, Option<i64>, u32, u32);

/// The `lines` text of an entry's charge lines.
fn lines_text(lines: &[Charge]) -> Result<String, serde_json::Error> {
    let columns: Vec<LineColumns<&str, &str>> = lines
        .iter()
        .map(|c| {
            (
                c.kind.as_str(),
                c.item.as_str(),
                c.quantity,
                c.cycle.as_str(),
                c.period_start,
                c.period_end,
                c.days,
                c.period_days,
            )
        })
        .collect();
    serde_json::to_string(&columns)
}

/// The charges view's rows of one schema 5 row (its `lines` in order).
///
/// # Errors
/// [`LedgerError::Damaged`] naming the entry when its lines do not read
/// as charge lines; a cell of the wrong type as every view's
/// ([`classify`]).
fn entry_charge_rows(r: &rusqlite::Row<'_>, path: &Path) -> Result<Vec<ChargeRow>, LedgerError> {
    let cell = |e: rusqlite::Error| classify(path, &e);
    let entry = u64::try_from(r.get::<_, i64>(0).map_err(cell)?).unwrap_or(u64::MAX);
    let serial: String = r.get(1).map_err(cell)?;
    let sequence: u32 = r.get(2).map_err(cell)?;
    let text: String = r.get(3).map_err(cell)?;
    let at: i64 = r.get(4).map_err(cell)?;
    let lines: Vec<LineColumns<String, String>> =
        serde_json::from_str(&text).map_err(|e| LedgerError::Damaged {
            path: path.to_owned(),
            what: format!("view charges: entry {entry}: its lines are not charge lines ({e})"),
        })?;
    Ok(lines
        .into_iter()
        .enumerate()
        .map(
            |(i, (kind, item, quantity, cycle, period_start, period_end, days, period_days))| {
                ChargeRow {
                    entry,
                    line: u32::try_from(i).unwrap_or(u32::MAX),
                    serial: serial.clone(),
                    sequence,
                    kind,
                    item,
                    quantity,
                    cycle,
                    period_start,
                    period_end,
                    days,
                    period_days,
                    at,
                }
            },
        )
        .collect())
}

fn charge_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChargeRow> {
    Ok(ChargeRow {
        entry: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
        line: r.get(1)?,
        serial: r.get(2)?,
        sequence: r.get(3)?,
        kind: r.get(4)?,
        item: r.get(5)?,
        quantity: r.get(6)?,
        cycle: r.get(7)?,
        period_start: r.get(8)?,
        period_end: r.get(9)?,
        days: r.get(10)?,
        period_days: r.get(11)?,
        at: r.get(12)?,
    })
}

fn u32_of(v: i64, what: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
}

fn blob<const N: usize>(v: &[u8], what: &str) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("{what} is {} bytes, not {N}", v.len()))
}

impl Sql<'_> {
    /// Whether the notice of `day` for `recipient` is in effect, read from
    /// the journal: the entries that name the recipient, folded in order
    /// ([`super::views::notice_state`]).
    pub(crate) fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
        let needle = super::views::notice_needle(recipient);
        let bodies: Vec<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT body FROM journal WHERE instr(body, ?1) > 0 ORDER BY position")
            .and_then(|mut s| {
                s.query_map([needle], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql(self.path))?;
        super::views::notice_state(bodies.iter().map(Vec::as_slice), recipient, day, |w| {
            self.damaged(w)
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        sql(self.path)
    }

    fn damaged(&self, what: String) -> LedgerError {
        LedgerError::Damaged {
            path: self.path.to_owned(),
            what,
        }
    }

    fn record(&self, r: &rusqlite::Row<'_>) -> Result<Record, LedgerError> {
        let e = self.err();
        super::RawRecord {
            serial: r.get(0).map_err(&e)?,
            sequence: r.get(1).map_err(&e)?,
            license_id: r.get(2).map_err(&e)?,
            action: r.get(3).map_err(&e)?,
            entry: r.get(4).map_err(&e)?,
            operator: r.get(5).map_err(&e)?,
            issued_at: r.get(6).map_err(&e)?,
            customer: r.get(7).map_err(&e)?,
            pbx_name: r.get(8).map_err(&e)?,
            platform: r.get(9).map_err(&e)?,
            lease_end: r.get(10).map_err(&e)?,
            term_end: r.get(11).map_err(&e)?,
            idem_key: r.get(12).map_err(&e)?,
            body: r.get(13).map_err(&e)?,
            hash: r.get(14).map_err(&e)?,
        }
        .into_record(self.path)
    }

    fn records(&self, query: &str, p: impl rusqlite::Params) -> Result<Vec<Record>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(query).map_err(self.err())?;
        let mut rows = stmt.query(p).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            out.push(self.record(r)?);
        }
        Ok(out)
    }

    fn one(&self, query: &str, p: impl rusqlite::Params) -> Result<Option<Record>, LedgerError> {
        Ok(self.records(query, p)?.into_iter().next())
    }

    pub(crate) fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        self.one(
            &format!("{RECORD} WHERE l.serial = ?1 ORDER BY l.sequence DESC LIMIT 1"),
            [serial],
        )
    }

    pub(crate) fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        self.records(
            &format!("{RECORD} WHERE l.serial = ?1 ORDER BY l.sequence"),
            [serial],
        )
    }

    pub(crate) fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        self.one(&format!("{RECORD} WHERE l.idem_key = ?1"), [key])
    }

    pub(crate) fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        self.one(
            &format!("{RECORD} WHERE l.license_id = ?1"),
            [id.as_slice()],
        )
    }

    pub(crate) fn all(&self) -> Result<Vec<Record>, LedgerError> {
        self.records(&format!("{RECORD} ORDER BY l.entry"), [])
    }

    pub(crate) fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError> {
        let latest = self.records(
            &format!(
                "{RECORD} WHERE l.sequence = (SELECT MAX(m.sequence) FROM licenses m WHERE m.serial = l.serial) ORDER BY l.serial"
            ),
            [],
        )?;
        let mut out = Vec::with_capacity(latest.len());
        for r in latest {
            let hw = self.hw_serials_of(&r.row.serial)?.into_iter().next();
            out.push(SerialSummary {
                serial: r.row.serial.clone(),
                hw_serial: hw,
                licenses: r.row.sequence,
                latest: r,
            });
        }
        Ok(out)
    }

    pub(crate) fn sw_serial_of(&self, hw: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .prepare_cached("SELECT serial FROM hw_serials WHERE hw_serial = ?1")
            .and_then(|mut s| s.query_row([hw], |r| r.get(0)).optional())
            .map_err(self.err())
    }

    pub(crate) fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError> {
        self.conn
            .prepare_cached("SELECT hw_serial FROM hw_serials WHERE serial = ?1 ORDER BY entry")
            .and_then(|mut s| {
                s.query_map([serial], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(self.err())
    }

    pub(crate) fn pending_schedule(
        &self,
        serial: &str,
    ) -> Result<Option<ZeroSchedule>, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT stop_at, delete_at FROM schedules WHERE serial = ?1 AND cancelled_at IS NULL",
            )
            .and_then(|mut s| {
                s.query_row([serial], |r| {
                    Ok(ZeroSchedule {
                        stop_at: r.get(0)?,
                        delete_at: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(self.err())
    }

    pub(crate) fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT serial, sequence, kind, detail, operator, at FROM events WHERE serial = ?1 ORDER BY sequence, entry",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([serial], |r| {
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
            })
            .and_then(Iterator::collect)
            .map_err(self.err())?;
        Ok(rows)
    }

    pub(crate) fn request_keys_since(
        &self,
        serial: &str,
        from: u32,
    ) -> Result<Vec<String>, LedgerError> {
        let keys: Vec<Vec<u8>> = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT request_key FROM licenses WHERE serial = ?1 AND sequence >= ?2 AND request_key IS NOT NULL ORDER BY request_key",
            )
            .and_then(|mut s| {
                s.query_map(params![serial, from], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
            })
            .map_err(self.err())?;
        Ok(keys.iter().map(hex::encode).collect())
    }

    pub(crate) fn request_key_rows(
        &self,
        serial: &str,
        from: u32,
    ) -> Result<Vec<(u32, String)>, LedgerError> {
        let rows: Vec<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT sequence, request_key FROM licenses WHERE serial = ?1 AND sequence >= ?2 AND request_key IS NOT NULL ORDER BY sequence",
            )
            .and_then(|mut s| {
                s.query_map(params![serial, from], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.err())?;
        Ok(rows
            .iter()
            .map(|(seq, key)| (u32::try_from(*seq).unwrap_or(u32::MAX), hex::encode(key)))
            .collect())
    }

    pub(crate) fn serials_with_request_key(
        &self,
        key: &str,
        serial: &str,
    ) -> Result<Vec<String>, LedgerError> {
        let Ok(key) = hex::decode(key) else {
            return Ok(Vec::new());
        };
        self.conn
            .prepare_cached(
                "SELECT DISTINCT serial FROM licenses WHERE request_key = ?1 AND serial <> ?2 ORDER BY serial",
            )
            .and_then(|mut s| {
                s.query_map(params![key, serial], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(self.err())
    }

    pub(crate) fn replaced_bindings(
        &self,
        serial: &str,
    ) -> Result<Vec<ReplacedBinding>, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT sequence, replaced_by, device_keys, reason, at FROM replaced_bindings WHERE serial = ?1 ORDER BY sequence",
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
                        reason: r.get(3)?,
                        at: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.err())
    }

    /// Whether the registry's tables exist (a reader of a schema 3 ledger
    /// sees none: the registry is empty).
    fn has_registry(&self) -> Result<bool, LedgerError> {
        if self.registry {
            return Ok(true);
        }
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'charges')",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(self.err())
    }

    fn pbx_rows(&self, query: &str, p: impl rusqlite::Params) -> Result<Vec<PbxRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        self.conn
            .prepare_cached(query)
            .and_then(|mut s| {
                s.query_map(p, |r| {
                    Ok(PbxRow {
                        serial: r.get(0)?,
                        customer: r.get(1)?,
                        name: r.get(2)?,
                        model: r.get(3)?,
                        platform: r.get(4)?,
                        cycle: r.get(5)?,
                        profiles: r.get(6)?,
                        storage: r.get(7)?,
                        policy: r.get(8)?,
                        policy_values: r.get(9)?,
                        created_at: r.get(10)?,
                        entry: u64::try_from(r.get::<_, i64>(11)?).unwrap_or(u64::MAX),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.err())
    }

    pub(crate) fn pbx(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        Ok(self
            .pbx_rows(concat!(pbx_select!(), " WHERE serial = ?1"), [serial])?
            .into_iter()
            .next())
    }

    pub(crate) fn pbxs(&self) -> Result<Vec<PbxRow>, LedgerError> {
        self.pbx_rows(concat!(pbx_select!(), " ORDER BY serial"), [])
    }

    pub(crate) fn pbx_changes(&self, serial: &str) -> Result<Vec<PbxChangeRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        self.conn
            .prepare_cached(
                "SELECT entry, serial, kind, detail, operator, at FROM pbx_changes WHERE serial = ?1 ORDER BY entry",
            )
            .and_then(|mut s| {
                s.query_map([serial], |r| {
                    Ok(PbxChangeRow {
                        entry: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
                        serial: r.get(1)?,
                        kind: r.get(2)?,
                        detail: r.get(3)?,
                        operator: r.get(4)?,
                        at: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(self.err())
    }

    /// Whether the charges view holds one row a charges entry (schema 5;
    /// a writer's transaction always does: its open upgraded the file), or
    /// one row a line (a reader of a schema 4 ledger).
    fn charges_by_entry(&self) -> Result<bool, LedgerError> {
        if self.registry {
            return Ok(true);
        }
        self.conn
            .prepare_cached("PRAGMA user_version")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i32>(0)))
            .map(|v| v >= SCHEMA_VERSION)
            .map_err(self.err())
    }

    pub(crate) fn charges(&self, from: i64, to: i64) -> Result<Vec<ChargeRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        if !self.charges_by_entry()? {
            return self
                .conn
                .prepare_cached(&format!(
                    "{LINE_CHARGE} WHERE at >= ?1 AND at < ?2 ORDER BY serial, entry, line"
                ))
                .and_then(|mut s| {
                    s.query_map(params![from, to], charge_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(self.err());
        }
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{ENTRY_CHARGES} WHERE at >= ?1 AND at < ?2 ORDER BY serial, entry"
            ))
            .map_err(self.err())?;
        let mut rows = stmt.query(params![from, to]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            out.extend(entry_charge_rows(r, self.path)?);
        }
        Ok(out)
    }

    pub(crate) fn serial_in_use(&self, serial: &str) -> Result<bool, LedgerError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM licenses WHERE serial = ?1) \
                 OR EXISTS (SELECT 1 FROM hw_serials WHERE serial = ?1)",
            )
            .and_then(|mut s| s.query_row([serial], |r| r.get(0)))
            .map_err(self.err())
    }

    /// The last entry: position and hash; `None` for an empty journal.
    pub(crate) fn head(&self) -> Result<Option<(u64, [u8; 32])>, LedgerError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT position, hash FROM journal ORDER BY position DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err())?;
        row.map(|(p, h)| {
            Ok((
                u64::try_from(p).map_err(|_| self.damaged(format!("journal position {p}")))?,
                blob(&h, "entry hash")
                    .map_err(|w| self.damaged(format!("journal entry {p}: {w}")))?,
            ))
        })
        .transpose()
    }

    /// The newest checkpoint: entries covered and its bytes.
    pub(crate) fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT entries, bytes FROM checkpoints ORDER BY entries DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(self.err())?;
        Ok(row.map(|(n, b)| (u64::try_from(n).unwrap_or(0), b)))
    }

    /// The entries the oldest checkpoint covers.
    pub(crate) fn first_checkpoint(&self) -> Result<Option<u64>, LedgerError> {
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(entries) FROM checkpoints")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(self.err())?;
        Ok(n.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    /// The body of the journal entry at `position`.
    pub(crate) fn entry_body(&self, position: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        self.conn
            .prepare_cached("SELECT body FROM journal WHERE position = ?1")
            .and_then(|mut s| s.query_row([to_i64(position)], |r| r.get(0)).optional())
            .map_err(self.err())
    }

    /// A number that changes whenever another connection commits to the
    /// file (`PRAGMA data_version`).
    pub(crate) fn change_stamp(&self) -> Result<Option<i64>, LedgerError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map(Some)
            .map_err(self.err())
    }

    /// Every checkpoint, oldest first.
    pub(crate) fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT entries, bytes FROM checkpoints ORDER BY entries")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let n: i64 = r.get(0).map_err(self.err())?;
            let n = u64::try_from(n).unwrap_or(0);
            match r.get_ref(1).map_err(self.err())? {
                rusqlite::types::ValueRef::Blob(b) => out.push((n, b.to_vec())),
                _ => {
                    return Err(LedgerError::Integrity {
                        entry: n,
                        reason: format!(
                            "the checkpoint of entry {n} is not a byte string (it was edited)"
                        ),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Calls `f` with every journal row in position order: (stored
    /// position, body, stored hash).
    pub(crate) fn journal(&self, f: &mut super::JournalVisitor<'_>) -> Result<(), LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT position, body, hash FROM journal ORDER BY position")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let position: i64 = r.get(0).map_err(self.err())?;
            let at = u64::try_from(position).unwrap_or(0);
            let bytes = |i: usize, what: &str| -> Result<Vec<u8>, LedgerError> {
                match r.get_ref(i).map_err(self.err())? {
                    rusqlite::types::ValueRef::Blob(b) => Ok(b.to_vec()),
                    _ => Err(LedgerError::Integrity {
                        entry: at,
                        reason: format!("the entry's {what} is not a byte string (it was edited)"),
                    }),
                }
            };
            let body = bytes(1, "body")?;
            let hash = bytes(2, "hash")?;
            f(position, &body, &hash)?;
        }
        Ok(())
    }

    /// Calls `f` with every row of every view.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn view_rows(
        &self,
        f: &mut dyn FnMut(ViewRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let e = self.err();
        let entry = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
        let seq = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let each = |query: &str,
                    f: &mut dyn FnMut(&rusqlite::Row<'_>) -> Result<(), LedgerError>|
         -> Result<(), LedgerError> {
            let mut stmt = self.conn.prepare(query).map_err(&e)?;
            let mut rows = stmt.query([]).map_err(&e)?;
            while let Some(r) = rows.next().map_err(&e)? {
                f(r)?;
            }
            Ok(())
        };
        each(
            "SELECT ledger_id, vendor, created_at, journal_format FROM identity",
            &mut |r| {
                let id: Vec<u8> = r.get(0).map_err(&e)?;
                let format: i64 = r.get(3).map_err(&e)?;
                f(ViewRow::Identity(Identity {
                    ledger_id: blob(&id, "ledger id")
                        .map_err(|w| self.damaged(format!("view identity: {w}")))?,
                    vendor: r.get(1).map_err(&e)?,
                    created_at: r.get(2).map_err(&e)?,
                    journal_format: seq(format),
                }))
            },
        )?;
        each(
            "SELECT serial, sequence, license_id, action, entry, operator, issued_at, customer, pbx_name, platform, lease_end, term_end, idem_key, request_key FROM licenses",
            &mut |r| {
                let serial: String = r.get(0).map_err(&e)?;
                let id: Vec<u8> = r.get(2).map_err(&e)?;
                let action: String = r.get(3).map_err(&e)?;
                let bad = |w: String| self.damaged(format!("view licenses, row {serial}: {w}"));
                f(ViewRow::License(LicenseRow {
                    sequence: seq(r.get(1).map_err(&e)?),
                    license_id: blob(&id, "license id").map_err(bad)?,
                    action: Action::parse(&action)
                        .ok_or_else(|| self.damaged(format!("view licenses, row {serial}: unknown action")))?,
                    entry: entry(r.get(4).map_err(&e)?),
                    operator: r.get(5).map_err(&e)?,
                    issued_at: r.get(6).map_err(&e)?,
                    customer: r.get(7).map_err(&e)?,
                    pbx_name: r.get(8).map_err(&e)?,
                    platform: r.get(9).map_err(&e)?,
                    lease_end: r.get(10).map_err(&e)?,
                    term_end: r.get(11).map_err(&e)?,
                    idem_key: r.get(12).map_err(&e)?,
                    request_key: {
                        let key: Option<Vec<u8>> = r.get(13).map_err(&e)?;
                        key.map(|k| blob(&k, "request key"))
                            .transpose()
                            .map_err(|w| self.damaged(format!("view licenses, row {serial}: {w}")))?
                    },
                    serial,
                }))
            },
        )?;
        each(
            "SELECT hw_serial, serial, at, entry FROM hw_serials",
            &mut |r| {
                f(ViewRow::Hw(HwRow {
                    hw_serial: r.get(0).map_err(&e)?,
                    serial: r.get(1).map_err(&e)?,
                    at: r.get(2).map_err(&e)?,
                    entry: entry(r.get(3).map_err(&e)?),
                }))
            },
        )?;
        each("SELECT year, last, entry FROM serial_counter", &mut |r| {
            f(ViewRow::Counter(CounterRow {
                year: r.get(0).map_err(&e)?,
                last: seq(r.get(1).map_err(&e)?),
                entry: entry(r.get(2).map_err(&e)?),
            }))
        })?;
        each(
            "SELECT serial, stop_at, delete_at, created_at, cancelled_at, entry FROM schedules",
            &mut |r| {
                f(ViewRow::Schedule(ScheduleRow {
                    serial: r.get(0).map_err(&e)?,
                    stop_at: r.get(1).map_err(&e)?,
                    delete_at: r.get(2).map_err(&e)?,
                    created_at: r.get(3).map_err(&e)?,
                    cancelled_at: r.get(4).map_err(&e)?,
                    entry: entry(r.get(5).map_err(&e)?),
                }))
            },
        )?;
        each(
            "SELECT entry, serial, sequence, kind, detail, operator, at FROM events",
            &mut |r| {
                f(ViewRow::Event(EventRow {
                    entry: entry(r.get(0).map_err(&e)?),
                    serial: r.get(1).map_err(&e)?,
                    sequence: seq(r.get(2).map_err(&e)?),
                    kind: r.get(3).map_err(&e)?,
                    detail: r.get(4).map_err(&e)?,
                    operator: r.get(5).map_err(&e)?,
                    at: r.get(6).map_err(&e)?,
                }))
            },
        )?;
        each(
            "SELECT serial, sequence, replaced_by, device_keys, reason, at, entry FROM replaced_bindings",
            &mut |r| {
                f(ViewRow::Replaced(ReplacedRow {
                    serial: r.get(0).map_err(&e)?,
                    sequence: seq(r.get(1).map_err(&e)?),
                    replaced_by: seq(r.get(2).map_err(&e)?),
                    device_keys: r.get(3).map_err(&e)?,
                    reason: r.get(4).map_err(&e)?,
                    at: r.get(5).map_err(&e)?,
                    entry: entry(r.get(6).map_err(&e)?),
                }))
            },
        )?;
        if !self.has_registry()? {
            return Ok(());
        }
        for row in self.pbx_rows(pbx_select!(), [])? {
            f(ViewRow::Pbx(row))?;
        }
        each(
            "SELECT entry, serial, kind, detail, operator, at FROM pbx_changes",
            &mut |r| {
                f(ViewRow::PbxChange(PbxChangeRow {
                    entry: entry(r.get(0).map_err(&e)?),
                    serial: r.get(1).map_err(&e)?,
                    kind: r.get(2).map_err(&e)?,
                    detail: r.get(3).map_err(&e)?,
                    operator: r.get(4).map_err(&e)?,
                    at: r.get(5).map_err(&e)?,
                }))
            },
        )?;
        if !self.charges_by_entry()? {
            return each(LINE_CHARGE, &mut |r| {
                f(ViewRow::Charge(charge_row(r).map_err(&e)?))
            });
        }
        each(ENTRY_CHARGES, &mut |r| {
            for row in entry_charge_rows(r, self.path)? {
                f(ViewRow::Charge(row))?;
            }
            Ok(())
        })
    }
}

impl SqliteTx<'_> {
    fn load_identity(&self) -> Result<Option<Identity>, LedgerError> {
        let mut found = None;
        let s = self.sql();
        let row: Option<(Vec<u8>, String, i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT ledger_id, vendor, created_at, journal_format FROM identity WHERE id = 1",
            )
            .and_then(|mut st| {
                st.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
            })
            .map_err(sql(&self.path))?;
        if let Some((id, vendor, created_at, format)) = row {
            found = Some(Identity {
                ledger_id: blob(&id, "ledger id")
                    .map_err(|w| s.damaged(format!("view identity: {w}")))?,
                vendor,
                created_at,
                journal_format: u32::try_from(format).unwrap_or(u32::MAX),
            });
        }
        Ok(found)
    }

    /// Whether a license id or bulk key of `row` is recorded already.
    fn unique_taken(&self, row: &LicenseRow) -> Result<bool, LedgerError> {
        self.tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM licenses WHERE license_id = ?1 OR idem_key = ?2)",
            )
            .and_then(|mut s| {
                s.query_row(params![row.license_id.as_slice(), row.idem_key], |r| {
                    r.get(0)
                })
            })
            .map_err(sql(&self.path))
    }
}

impl ViewStore for SqliteTx<'_> {
    fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
        super::Queries::notice_in_effect(self, recipient, day)
    }

    fn identity(&self) -> Result<Option<Identity>, LedgerError> {
        if let Some(cached) = self.identity.borrow().as_ref() {
            return Ok(cached.clone());
        }
        let found = self.load_identity()?;
        *self.identity.borrow_mut() = Some(found.clone());
        Ok(found)
    }

    fn last_sequence(&self, serial: &str) -> Result<Option<u32>, LedgerError> {
        if let Some(known) = self.sequences.borrow().get(serial) {
            return Ok(*known);
        }
        let max: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(sequence) FROM licenses WHERE serial = ?1")
            .and_then(|mut s| s.query_row([serial], |r| r.get(0)))
            .map_err(sql(&self.path))?;
        let last = max
            .map(|m| {
                u32_of(m, "sequence").map_err(|w| {
                    self.sql()
                        .damaged(format!("view licenses, row {serial}: {w}"))
                })
            })
            .transpose()?;
        self.sequences.borrow_mut().insert(serial.to_owned(), last);
        Ok(last)
    }

    fn license_action(&self, serial: &str, sequence: u32) -> Result<Option<Action>, LedgerError> {
        let a: Option<String> = self
            .tx
            .prepare_cached("SELECT action FROM licenses WHERE serial = ?1 AND sequence = ?2")
            .and_then(|mut s| {
                s.query_row(params![serial, sequence], |r| r.get(0))
                    .optional()
            })
            .map_err(sql(&self.path))?;
        Ok(a.and_then(|a| Action::parse(&a)))
    }

    fn hw_owner(&self, hw: &str) -> Result<Option<String>, LedgerError> {
        self.sql().sw_serial_of(hw)
    }

    fn serial_mapped(&self, serial: &str) -> Result<bool, LedgerError> {
        self.tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM hw_serials WHERE serial = ?1)")
            .and_then(|mut s| s.query_row([serial], |r| r.get(0)))
            .map_err(sql(&self.path))
    }

    fn counter(&self, year: i32) -> Result<Option<u32>, LedgerError> {
        if let Some(known) = self.counters.borrow().get(&year) {
            return Ok(*known);
        }
        let last: Option<i64> = self
            .tx
            .prepare_cached("SELECT last FROM serial_counter WHERE year = ?1")
            .and_then(|mut s| s.query_row([year], |r| r.get(0)).optional())
            .map_err(sql(&self.path))?;
        let last = last
            .map(|l| {
                u32_of(l, "counter")
                    .map_err(|w| self.sql().damaged(format!("view serial_counter: {w}")))
            })
            .transpose()?;
        self.counters.borrow_mut().insert(year, last);
        Ok(last)
    }

    fn schedule_row(&self, serial: &str) -> Result<Option<ScheduleRow>, LedgerError> {
        self.tx
            .prepare_cached(
                "SELECT serial, stop_at, delete_at, created_at, cancelled_at, entry FROM schedules WHERE serial = ?1",
            )
            .and_then(|mut s| {
                s.query_row([serial], |r| {
                    let entry: i64 = r.get(5)?;
                    Ok(ScheduleRow {
                        serial: r.get(0)?,
                        stop_at: r.get(1)?,
                        delete_at: r.get(2)?,
                        created_at: r.get(3)?,
                        cancelled_at: r.get(4)?,
                        entry: u64::try_from(entry).unwrap_or(u64::MAX),
                    })
                })
                .optional()
            })
            .map_err(sql(&self.path))
    }

    fn pbx_row(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        self.sql().pbx(serial)
    }

    fn carry_over(&self, position: u64) -> Result<bool, LedgerError> {
        let sql = self.sql();
        super::carries_over(position, sql.first_checkpoint()?, sql.entry_body(2)?)
    }

    fn binding_replaced(&self, serial: &str, sequence: u32) -> Result<bool, LedgerError> {
        self.tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM replaced_bindings WHERE serial = ?1 AND sequence = ?2)",
            )
            .and_then(|mut s| s.query_row(params![serial, sequence], |r| r.get(0)))
            .map_err(sql(&self.path))
    }

    fn put_identity(&mut self, row: &Identity) -> Result<(), LedgerError> {
        *self.identity.borrow_mut() = None;
        self.exec(
            "INSERT INTO identity (id, ledger_id, vendor, created_at, journal_format) VALUES (1, ?1, ?2, ?3, ?4)",
            params![row.ledger_id.as_slice(), row.vendor, row.created_at, row.journal_format],
        )
    }

    fn put_license(&mut self, row: &LicenseRow) -> Result<(), LedgerError> {
        let inserted = self.exec(
            "INSERT INTO licenses (serial, sequence, license_id, action, entry, operator, issued_at, \
             customer, pbx_name, platform, lease_end, term_end, idem_key, request_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                row.serial,
                row.sequence,
                row.license_id.as_slice(),
                row.action.as_str(),
                to_i64(row.entry),
                row.operator,
                row.issued_at,
                row.customer,
                row.pbx_name,
                row.platform,
                row.lease_end,
                row.term_end,
                row.idem_key,
                row.request_key.as_ref().map(<[u8; 32]>::as_slice),
            ],
        );
        match inserted {
            // The unique indexes of license_id, idem_key and (serial,
            // sequence): the fold checked the sequence, so this is one of
            // the others.
            Err(LedgerError::Damaged { .. }) if self.unique_taken(row)? => {
                Err(LedgerError::Conflict {
                    path: self.path.clone(),
                    reason: format!(
                        "the license id or bulk key of {}:{} is recorded already",
                        row.serial, row.sequence
                    ),
                })
            }
            Err(other) => Err(other),
            Ok(()) => {
                self.sequences
                    .borrow_mut()
                    .insert(row.serial.clone(), Some(row.sequence));
                Ok(())
            }
        }
    }

    fn put_hw(&mut self, row: &HwRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO hw_serials (hw_serial, serial, at, entry) VALUES (?1, ?2, ?3, ?4)",
            params![row.hw_serial, row.serial, row.at, to_i64(row.entry)],
        )
    }

    fn put_counter(&mut self, row: &CounterRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO serial_counter (year, last, entry) VALUES (?1, ?2, ?3) \
             ON CONFLICT (year) DO UPDATE SET last = ?2, entry = ?3",
            params![row.year, row.last, to_i64(row.entry)],
        )?;
        self.counters.borrow_mut().insert(row.year, Some(row.last));
        Ok(())
    }

    fn put_schedule(&mut self, row: &ScheduleRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO schedules (serial, stop_at, delete_at, created_at, cancelled_at, entry) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (serial) DO UPDATE SET \
             stop_at = ?2, delete_at = ?3, created_at = ?4, cancelled_at = ?5, entry = ?6",
            params![
                row.serial,
                row.stop_at,
                row.delete_at,
                row.created_at,
                row.cancelled_at,
                to_i64(row.entry)
            ],
        )
    }

    fn put_event(&mut self, row: &EventRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO events (entry, serial, sequence, kind, detail, operator, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                to_i64(row.entry),
                row.serial,
                row.sequence,
                row.kind,
                row.detail,
                row.operator,
                row.at
            ],
        )
    }

    fn put_replaced(&mut self, row: &ReplacedRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO replaced_bindings (serial, sequence, replaced_by, device_keys, reason, at, entry) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.serial,
                row.sequence,
                row.replaced_by,
                row.device_keys,
                row.reason,
                row.at,
                to_i64(row.entry)
            ],
        )
    }

    fn put_pbx(&mut self, row: &PbxRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO pbxs (serial, customer, name, model, platform, cycle, profiles, storage, \
             policy, policy_values, created_at, entry) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT (serial) DO UPDATE SET customer = ?2, name = ?3, model = ?4, platform = ?5, \
             cycle = ?6, profiles = ?7, storage = ?8, policy = ?9, policy_values = ?10, created_at = ?11, entry = ?12",
            params![
                row.serial,
                row.customer,
                row.name,
                row.model,
                row.platform,
                row.cycle,
                row.profiles,
                row.storage,
                row.policy,
                row.policy_values,
                row.created_at,
                to_i64(row.entry)
            ],
        )
    }

    fn put_pbx_change(&mut self, row: &PbxChangeRow) -> Result<(), LedgerError> {
        self.exec(
            "INSERT INTO pbx_changes (entry, serial, kind, detail, operator, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_i64(row.entry),
                row.serial,
                row.kind,
                row.detail,
                row.operator,
                row.at
            ],
        )
    }

    /// A single line is an entry of one line ([`Self::put_charges`]).
    fn put_charge(&mut self, row: &ChargeRow) -> Result<(), LedgerError> {
        self.put_charges(core::slice::from_ref(row))
    }

    /// The lines of one entry, in order, as its one row (a rebuild's rows
    /// of several entries: one row each).
    fn put_charges(&mut self, rows: &[ChargeRow]) -> Result<(), LedgerError> {
        for entry in rows.chunk_by(|a, b| a.entry == b.entry) {
            let Some(first) = entry.first() else {
                continue;
            };
            let lines: Vec<Charge> = entry
                .iter()
                .map(|r| Charge {
                    kind: r.kind.clone(),
                    item: r.item.clone(),
                    quantity: r.quantity,
                    cycle: r.cycle.clone(),
                    period_start: r.period_start,
                    period_end: r.period_end,
                    days: r.days,
                    period_days: r.period_days,
                })
                .collect();
            self.put_charge_lines(first.entry, &first.serial, first.sequence, first.at, &lines)?;
        }
        Ok(())
    }

    /// One row for the entry's lines: a first activation bills about
    /// seven, and a row with its index entry each cost SQLite about a
    /// quarter of a first activation's work more (bench/REPORT.md).
    fn put_charge_lines(
        &mut self,
        position: u64,
        serial: &str,
        sequence: u32,
        at: i64,
        lines: &[Charge],
    ) -> Result<(), LedgerError> {
        let text = lines_text(lines).map_err(|e| LedgerError::Damaged {
            path: self.path.clone(),
            what: format!("the charge lines of entry {position} do not encode: {e}"),
        })?;
        self.exec(
            "INSERT INTO charges (entry, serial, sequence, lines, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![to_i64(position), serial, sequence, text, at],
        )
    }
}
