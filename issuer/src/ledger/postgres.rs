//! The PostgreSQL backend: for vendors who run several issuers or server
//! instances on one ledger. The same journal, the same hash chain, the
//! same views and the same fold ([`super::views::apply`]) as SQLite; only
//! the storage differs.
//!
//! - **Named by a URL** wherever a ledger file is accepted (`--ledger`,
//!   `TESSERA_LEDGER`, `ledger` in tessera.toml): `postgres://USER@HOST/DB`.
//!   The password never comes from the URL ([`connect`]).
//! - **One ledger per database** (in the connection's schema, `public`
//!   unless `?options=-csearch_path%3D...` says otherwise). The table
//!   `tessera_ledger` marks it and holds one row, the write lock.
//! - **Writers** take that row with `SELECT ... FOR UPDATE` as the first
//!   statement of their transaction (READ COMMITTED): the chain head, a
//!   serial's last sequence and a year's counter are read after the
//!   previous writer committed, and appended to before the next one reads
//!   them. Two processes (or two servers) never fork the chain nor share a
//!   sequence. The lock waits up to the busy timeout (`lock_timeout`);
//!   the wait is announced once.
//! - **Readers** run in one `REPEATABLE READ, READ ONLY` transaction: one
//!   snapshot for everything they read, without a lock a writer waits for.
//! - **Durable on commit**: PostgreSQL's own write-ahead log; the commit
//!   returns once the server has flushed it (`synchronous_commit`, on by
//!   default: leave it on for a ledger).
//! - **Created only by `tessera ledger init`** (or `ledger migrate`), in a
//!   database that holds no tessera ledger: schema, marks and genesis entry
//!   in one transaction, so an interrupted init leaves nothing.
//! - No PostgreSQL message reaches the user: [`classify`] says what an
//!   error means and what to do.

use core::cell::RefCell;
use core::time::Duration;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use super::journal::Action;
use super::sqlite::{APPLICATION_ID, UNREGISTERED_VERSION};

/// The schema of a PostgreSQL ledger: 4, the journal and the PBX registry,
/// its charges view one row a charge line (a ledger file's schema 5 moved
/// them to one row an entry, for SQLite's sake: bench/REPORT.md).
pub(crate) const SCHEMA_VERSION: i32 = 4;
use super::views::{
    ChargeRow, CounterRow, EventRow, HwRow, Identity, LicenseRow, PbxChangeRow, PbxRow,
    ReplacedRow, ScheduleRow, ViewRow, ViewStore,
};
use super::{Event, LedgerError, RawRecord, Record, ReplacedBinding, SerialSummary};
use crate::policy::ZeroSchedule;

pub mod connect;

/// The query of a license record followed by a clause, as one constant (statements are
/// cached by their `'static` text).
macro_rules! concat_record {
    ($tail:literal) => {
        concat!(
            "SELECT l.serial, l.sequence, l.license_id, l.action, l.entry, l.operator, \
             l.issued_at, l.customer, l.pbx_name, l.platform, l.lease_end, l.term_end, l.idem_key, \
             j.body, j.hash FROM licenses l LEFT JOIN journal j ON j.position = l.entry",
            $tail
        )
    };
}

pub use connect::is_url;

/// Every table of a ledger, the mark first.
const TABLES: [&str; 13] = [
    "tessera_ledger",
    "journal",
    "checkpoints",
    "identity",
    "licenses",
    "hw_serials",
    "serial_counter",
    "schedules",
    "events",
    "replaced_bindings",
    "pbxs",
    "pbx_changes",
    "charges",
];

/// The tables schema 4 added (the PBX registry and billing): a schema 3
/// ledger lacks them until its first writer adds them.
const REGISTRY_TABLES: [&str; 3] = ["pbxs", "pbx_changes", "charges"];

/// The indexes [`SCHEMA`] makes (PostgreSQL names those of primary keys
/// and unique columns itself).
const INDEXES: [&str; 20] = [
    "tessera_ledger_pkey",
    "journal_pkey",
    "checkpoints_pkey",
    "identity_pkey",
    "licenses_pkey",
    "licenses_license_id_key",
    "licenses_idem_key_key",
    "licenses_entry",
    "hw_serials_pkey",
    "hw_serials_serial",
    "serial_counter_pkey",
    "schedules_pkey",
    "events_pkey",
    "events_serial",
    "replaced_bindings_pkey",
    "pbxs_pkey",
    "pbx_changes_pkey",
    "pbx_changes_serial",
    "charges_pkey",
    "charges_at",
];

/// The schema: SQLite's, in PostgreSQL's types (every number BIGINT).
const SCHEMA: &str = "
CREATE TABLE tessera_ledger (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    application_id  INTEGER NOT NULL,
    schema_version  INTEGER NOT NULL
);
CREATE TABLE journal (
    position  BIGINT PRIMARY KEY,
    body      BYTEA  NOT NULL,
    hash      BYTEA  NOT NULL
);
CREATE TABLE checkpoints (
    entries  BIGINT PRIMARY KEY,
    bytes    BYTEA  NOT NULL
);
CREATE TABLE identity (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    ledger_id       BYTEA   NOT NULL,
    vendor          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    journal_format  BIGINT  NOT NULL
);
CREATE TABLE licenses (
    serial      TEXT    NOT NULL,
    sequence    BIGINT  NOT NULL,
    license_id  BYTEA   NOT NULL UNIQUE,
    action      TEXT    NOT NULL,
    entry       BIGINT  NOT NULL,
    operator    TEXT    NOT NULL,
    issued_at   BIGINT  NOT NULL,
    customer    TEXT    NOT NULL,
    pbx_name    TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    lease_end   BIGINT  NOT NULL,
    term_end    BIGINT,
    idem_key    TEXT    UNIQUE,
    request_key BYTEA,
    PRIMARY KEY (serial, sequence)
);
CREATE INDEX licenses_entry ON licenses (entry);
CREATE TABLE hw_serials (
    hw_serial  TEXT    PRIMARY KEY,
    serial     TEXT    NOT NULL,
    at         BIGINT  NOT NULL,
    entry      BIGINT  NOT NULL
);
CREATE INDEX hw_serials_serial ON hw_serials (serial);
CREATE TABLE serial_counter (
    year   BIGINT PRIMARY KEY,
    last   BIGINT NOT NULL,
    entry  BIGINT NOT NULL
);
CREATE TABLE schedules (
    serial        TEXT    PRIMARY KEY,
    stop_at       BIGINT  NOT NULL,
    delete_at     BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    cancelled_at  BIGINT,
    entry         BIGINT  NOT NULL
);
CREATE TABLE events (
    entry     BIGINT  PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  BIGINT  NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        BIGINT  NOT NULL
);
CREATE INDEX events_serial ON events (serial, sequence);
CREATE TABLE replaced_bindings (
    serial       TEXT    NOT NULL,
    sequence     BIGINT  NOT NULL,
    replaced_by  BIGINT  NOT NULL,
    device_keys  TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    entry        BIGINT  NOT NULL,
    PRIMARY KEY (serial, sequence)
);
";

/// The tables schema 4 added to schema 3, as SQLite's `REGISTRY_SCHEMA`.
const REGISTRY_SCHEMA: &str = "
CREATE TABLE pbxs (
    serial         TEXT    PRIMARY KEY,
    customer       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    cycle          TEXT    NOT NULL,
    profiles       TEXT    NOT NULL,
    storage        BIGINT  NOT NULL,
    policy         TEXT    NOT NULL,
    policy_values  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    entry          BIGINT  NOT NULL
);
CREATE TABLE pbx_changes (
    entry     BIGINT  PRIMARY KEY,
    serial    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        BIGINT  NOT NULL
);
CREATE INDEX pbx_changes_serial ON pbx_changes (serial);
CREATE TABLE charges (
    entry         BIGINT  NOT NULL,
    line          BIGINT  NOT NULL,
    serial        TEXT    NOT NULL,
    sequence      BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,
    item          TEXT    NOT NULL,
    quantity      BIGINT  NOT NULL,
    cycle         TEXT    NOT NULL,
    period_start  BIGINT  NOT NULL,
    period_end    BIGINT,
    days          BIGINT  NOT NULL,
    period_days   BIGINT  NOT NULL,
    at            BIGINT  NOT NULL,
    PRIMARY KEY (entry, line)
);
CREATE INDEX charges_at ON charges (at);
";

/// The advisory lock two `ledger init`s of one database take, so that
/// only one lays out the schema (`TSLG`).
const INIT_LOCK: i64 = 0x5453_4C47;

/// The advisory lock a `report overdue --notify` run holds while it
/// claims, sends and withdraws (`TSNO`): see [`PgBackend::hold_lock`].
pub const NOTICE_LOCK: i64 = 0x5453_4E4F;

/// What a PostgreSQL error means for the user (never the server's own
/// words).
pub(crate) fn classify(path: &Path, e: &postgres::Error) -> LedgerError {
    let path = path.to_owned();
    let io = |what: String| LedgerError::Io {
        path: path.clone(),
        what,
    };
    let damaged = |what: &str| LedgerError::Damaged {
        path: path.clone(),
        what: what.to_owned(),
    };
    let Some(code) = e.code() else {
        if e.is_closed() {
            return io("the connection to PostgreSQL was lost: check the server and run the command again (`tessera ledger verify` shows what was recorded)".into());
        }
        let cause = core::error::Error::source(e).map(ToString::to_string);
        return match cause {
            // A value that does not convert: a column of the wrong type.
            Some(c) if c.contains("cannot convert") || c.contains("unexpected NULL") => {
                damaged("a column holds a value of the wrong type")
            }
            Some(c) if c.contains("TLS") || c.contains("certificate") => io(format!(
                "the TLS handshake with PostgreSQL failed ({c}): check that sslrootcert names the CA that signed the server's certificate, and that the URL's host is a name (or address) the certificate is for"
            )),
            Some(c) => io(format!(
                "PostgreSQL cannot be reached ({c}): check that the server runs and that the URL's host, port and user are right"
            )),
            None => io("PostgreSQL cannot be reached: check that the server runs and that the URL's host, port and user are right".into()),
        };
    };
    match code {
        c if *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            LedgerError::Busy { path, waited: 0 }
        }
        c if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            io("PostgreSQL refused the login: check the user in the URL and give its password in PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass, ?passfile=FILE)".into())
        }
        c if *c == SqlState::INVALID_CATALOG_NAME => io(
            "the database in the URL does not exist: create it (`createdb NAME`), then run `tessera ledger init`"
                .into(),
        ),
        c if *c == SqlState::INSUFFICIENT_PRIVILEGE => io(
            "the PostgreSQL user may not read (or, to issue, write) the ledger's tables: grant it the rights, or use the ledger's owner"
                .into(),
        ),
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => io(
            "the PostgreSQL server is read-only (a standby): issue on the primary (reading commands work here)"
                .into(),
        ),
        c if *c == SqlState::DISK_FULL || *c == SqlState::OUT_OF_MEMORY => io(
            "the PostgreSQL server is out of space: free space and run the command again (nothing was recorded)"
                .into(),
        ),
        c if *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            io("the PostgreSQL server is shutting down, starting or full: run the command again in a moment (nothing was recorded)".into())
        }
        c if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::NOT_NULL_VIOLATION => damaged(
            "a view holds a row that conflicts with a new entry (the views were edited outside tessera)",
        ),
        c if *c == SqlState::UNDEFINED_TABLE => damaged("one of its tables is missing"),
        c if *c == SqlState::UNDEFINED_COLUMN || *c == SqlState::DATATYPE_MISMATCH => {
            damaged("its tables do not have the shape of a tessera ledger")
        }
        _ => damaged("it could not be read as a tessera ledger"),
    }
}

/// How the backend's connection is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Write,
    Read,
}

/// An open PostgreSQL ledger: one connection.
pub struct PgBackend {
    client: RefCell<Client>,
    statements: RefCell<HashMap<&'static str, Statement>>,
    /// The URL as given (it holds no password).
    path: PathBuf,
    mode: Mode,
    /// A ledger being created: its schema waits, uncommitted, for the
    /// genesis entry's transaction.
    creating: bool,
}

impl core::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgBackend")
            .field("url", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl PgBackend {
    fn connect(url: &Path, mode: Mode) -> Result<Self, LedgerError> {
        let (config, tls) = connect::config(url, &connect::process_env)?;
        let client = match tls {
            connect::Tls::Plain => config.connect(NoTls),
            connect::Tls::Verified(c) => {
                config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(*c))
            }
        }
        .map_err(|e| classify(url, &e))?;
        Ok(Self {
            client: RefCell::new(client),
            statements: RefCell::default(),
            path: url.to_owned(),
            mode,
            creating: false,
        })
    }

    /// Opens the ledger in the database a URL names, to issue.
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] for a database without a ledger,
    /// [`LedgerError::Foreign`] for one with other tables, the schema
    /// errors, [`LedgerError::Io`] when the server cannot be reached.
    pub fn open(url: &Path) -> Result<Self, LedgerError> {
        let backend = Self::connect(url, Mode::Write)?;
        if backend.check_schema()? == UNREGISTERED_VERSION {
            backend.add_registry()?;
        }
        Ok(backend)
    }

    /// Schema 3 → 4: the registry and billing views, empty (a schema 3
    /// journal has none of their facts), under the ledger's lock row so
    /// that two writers do not both add them.
    fn add_registry(&self) -> Result<(), LedgerError> {
        self.batch("BEGIN; SELECT 1 FROM tessera_ledger WHERE id = 1 FOR UPDATE")?;
        let result = (|| {
            if !self.table_exists("charges")? {
                self.batch(REGISTRY_SCHEMA)?;
            }
            self.pg().execute(
                "UPDATE tessera_ledger SET schema_version = $1 WHERE id = 1",
                &[&SCHEMA_VERSION],
            )?;
            self.batch("COMMIT")
        })();
        if result.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        result
    }

    /// A connection of its own to the ledger's database that holds the
    /// session-level advisory lock `key` for as long as it lives; waits
    /// for another session that holds it (`on_wait` is called once when
    /// the wait starts). The lock ends with the session: a process that
    /// ends or dies releases it. Writers never take it.
    ///
    /// # Errors
    /// As [`PgBackend::open_read_only`], [`LedgerError::Io`] when the
    /// connection is lost while waiting.
    pub fn hold_lock(url: &Path, key: i64, on_wait: &dyn Fn(&Path)) -> Result<Self, LedgerError> {
        let backend = Self::connect(url, Mode::Read)?;
        let got = backend
            .pg()
            .one("SELECT pg_try_advisory_lock($1)", &[&key])?;
        if !backend.pg().get::<bool>(&got, 0)? {
            on_wait(url);
            backend
                .pg()
                .execute("SELECT pg_advisory_lock($1)", &[&key])?;
        }
        Ok(backend)
    }

    /// Opens the ledger to read: one snapshot, no lock a writer waits for.
    ///
    /// # Errors
    /// As [`PgBackend::open`].
    pub fn open_read_only(url: &Path) -> Result<Self, LedgerError> {
        let backend = Self::connect(url, Mode::Read)?;
        backend.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        backend.check_schema()?;
        Ok(backend)
    }

    /// Lays out a new ledger in the database a URL names, in a
    /// transaction that the genesis entry's writer commits: an init that
    /// fails leaves the database as it was.
    ///
    /// # Errors
    /// [`LedgerError::Exists`] when the database holds a ledger,
    /// [`LedgerError::Foreign`] when it holds tables of another program.
    pub fn create(url: &Path) -> Result<Self, LedgerError> {
        let mut backend = Self::connect(url, Mode::Write)?;
        backend.batch("BEGIN")?;
        backend
            .pg()
            .execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK])?;
        if backend.table_exists("tessera_ledger")? {
            return Err(LedgerError::Exists(url.to_owned()));
        }
        for table in TABLES {
            if backend.table_exists(table)? {
                return Err(LedgerError::Foreign {
                    path: url.to_owned(),
                    what: format!(
                        "the database holds a table `{table}` of another program; create the ledger in a database of its own (`createdb NAME`)"
                    ),
                });
            }
        }
        backend.batch(SCHEMA)?;
        backend.batch(REGISTRY_SCHEMA)?;
        backend.pg().execute(
            "INSERT INTO tessera_ledger (id, application_id, schema_version) VALUES (1, $1, $2)",
            &[&APPLICATION_ID, &SCHEMA_VERSION],
        )?;
        backend.creating = true;
        Ok(backend)
    }

    /// Removes a ledger's tables (`ledger migrate` of a copy that did not
    /// verify): only a ledger this process just created.
    pub(crate) fn drop_tables(url: &Path) -> Result<(), LedgerError> {
        let backend = Self::connect(url, Mode::Write)?;
        let mut script = String::from("BEGIN;");
        for table in TABLES.iter().rev() {
            script.push_str(&format!("DROP TABLE IF EXISTS {table};"));
        }
        script.push_str("COMMIT;");
        backend.batch(&script)
    }

    fn batch(&self, script: &str) -> Result<(), LedgerError> {
        self.client
            .try_borrow_mut()
            .map_err(|_| busy_connection(&self.path))?
            .batch_execute(script)
            .map_err(|e| classify(&self.path, &e))
    }

    fn table_exists(&self, table: &str) -> Result<bool, LedgerError> {
        let row = self
            .pg()
            .one("SELECT to_regclass($1) IS NOT NULL", &[&table])?;
        self.pg().get(&row, 0)
    }

    /// Checks the mark, tables and objects; returns the schema (3 or 4).
    fn check_schema(&self) -> Result<i32, LedgerError> {
        let path = &self.path;
        if !self.table_exists("tessera_ledger")? {
            let any: bool = {
                let row = self.pg().one(
                    "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = ANY (current_schemas(false)))",
                    &[],
                )?;
                self.pg().get(&row, 0)?
            };
            return Err(if any {
                LedgerError::Foreign {
                    path: path.clone(),
                    what: "the database holds tables of another program, not a tessera ledger"
                        .into(),
                }
            } else {
                LedgerError::NotFound {
                    path: path.clone(),
                    named_by: None,
                }
            });
        }
        let mark = self.pg().opt(
            "SELECT application_id, schema_version FROM tessera_ledger WHERE id = 1",
            &[],
        )?;
        let Some(mark) = mark else {
            return Err(LedgerError::Damaged {
                path: path.clone(),
                what: "its mark (table tessera_ledger) is empty".into(),
            });
        };
        let app: i32 = self.pg().get(&mark, 0)?;
        let version: i32 = self.pg().get(&mark, 1)?;
        if app != APPLICATION_ID {
            return Err(LedgerError::Foreign {
                path: path.clone(),
                what: "its table tessera_ledger is not a tessera ledger's mark".into(),
            });
        }
        super::sqlite::check_version(path, version, SCHEMA_VERSION)?;
        for table in TABLES {
            if version == UNREGISTERED_VERSION && REGISTRY_TABLES.contains(&table) {
                continue;
            }
            if !self.table_exists(table)? {
                return Err(LedgerError::Damaged {
                    path: path.clone(),
                    what: format!("its table `{table}` is missing"),
                });
            }
        }
        self.check_objects()?;
        Ok(version)
    }

    /// Nothing tessera did not create in the ledger's schema: a trigger, a
    /// rule or a row security policy would change what the fold reads or
    /// writes; a view, table or index is refused as in a file.
    fn check_objects(&self) -> Result<(), LedgerError> {
        let pg = self.pg();
        let ours: Vec<(&str, String)> = TABLES
            .iter()
            .map(|t| ("table", (*t).to_owned()))
            .chain(INDEXES.iter().map(|i| ("index", (*i).to_owned())))
            .collect();
        let found = pg.query(
            "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'i' THEN 'index' \
               WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'relation' END, \
               c.relname, c.relrowsecurity \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind <> 'c' \
             UNION ALL SELECT 'trigger', t.tgname, false FROM pg_trigger t \
               JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE n.nspname = current_schema() AND NOT t.tgisinternal \
             UNION ALL SELECT 'rule', r.rulename, false FROM pg_rules r \
               WHERE r.schemaname = current_schema() \
             UNION ALL SELECT 'row security policy', p.policyname, false FROM pg_policies p \
               WHERE p.schemaname = current_schema()",
            &[],
        )?;
        for row in &found {
            let kind: String = pg.get(row, 0)?;
            let name: String = pg.get(row, 1)?;
            let row_security: bool = pg.get(row, 2)?;
            let what = if !ours.contains(&(kind.as_str(), name.clone())) {
                format!(
                    "it holds a {} `{}` that tessera did not create",
                    crate::validate::shown(&kind),
                    crate::validate::shown(&name)
                )
            } else if row_security {
                format!(
                    "row security was enabled on its table `{}`, which tessera never does",
                    crate::validate::shown(&name)
                )
            } else {
                continue;
            };
            return Err(LedgerError::Damaged {
                path: self.path.clone(),
                what,
            });
        }
        Ok(())
    }

    /// The URL.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn pg(&self) -> Pg<'_> {
        Pg {
            client: &self.client,
            statements: &self.statements,
            path: &self.path,
        }
    }

    /// Starts a write transaction: takes the ledger's lock row, waiting up
    /// to `timeout` for another writer; `on_wait` is called once when the
    /// wait starts.
    pub(crate) fn begin(
        &mut self,
        timeout: Duration,
        on_wait: &dyn Fn(&Path),
    ) -> Result<PgTx<'_>, LedgerError> {
        if self.mode != Mode::Write {
            return Err(LedgerError::Conflict {
                path: self.path.clone(),
                reason: "opened for reading only".into(),
            });
        }
        if self.creating {
            // The schema's transaction is this one: nobody else sees the
            // ledger yet.
            self.creating = false;
            return Ok(PgTx::new(self));
        }
        let start = Instant::now();
        let mut waited = false;
        loop {
            let elapsed = start.elapsed();
            let wait = if waited {
                timeout.saturating_sub(elapsed)
            } else {
                timeout.min(Duration::from_millis(500))
            };
            // lock_timeout 0 would mean "forever".
            let ms = wait.as_millis().clamp(1, u128::from(u32::MAX));
            self.batch(&format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = {ms}"
            ))?;
            let locked = self
                .pg()
                .opt("SELECT 1 FROM tessera_ledger WHERE id = 1 FOR UPDATE", &[]);
            match locked {
                Ok(Some(_)) => {
                    self.batch("SET LOCAL lock_timeout = 0")?;
                    return Ok(PgTx::new(self));
                }
                Ok(None) => {
                    let _ = self.batch("ROLLBACK");
                    return Err(LedgerError::Damaged {
                        path: self.path.clone(),
                        what: "its mark (table tessera_ledger) is empty".into(),
                    });
                }
                Err(LedgerError::Busy { .. }) => {
                    let _ = self.batch("ROLLBACK");
                    let elapsed = start.elapsed();
                    if elapsed >= timeout {
                        return Err(LedgerError::Busy {
                            path: self.path.clone(),
                            waited: elapsed.as_secs(),
                        });
                    }
                    if !waited {
                        on_wait(&self.path);
                        waited = true;
                    }
                }
                Err(e) => {
                    let _ = self.batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
    }
}

fn busy_connection(path: &Path) -> LedgerError {
    LedgerError::Conflict {
        path: path.to_owned(),
        reason: "the ledger's connection is in use by another query of this process".into(),
    }
}

/// A write transaction on a PostgreSQL ledger; dropped without
/// [`PgTx::commit`], it rolls back.
pub struct PgTx<'c> {
    backend: &'c PgBackend,
    done: bool,
    /// The identity view, once read (it changes only with the genesis).
    identity: RefCell<Option<Option<Identity>>>,
    /// The serial counters read or written in this transaction.
    counters: RefCell<HashMap<i32, Option<u32>>>,
    /// The last sequences read or written in this transaction.
    sequences: RefCell<HashMap<String, Option<u32>>>,
}

impl core::fmt::Debug for PgTx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PgTx")
            .field("url", &self.backend.path)
            .finish_non_exhaustive()
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.backend.batch("ROLLBACK");
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl<'c> PgTx<'c> {
    fn new(backend: &'c PgBackend) -> Self {
        Self {
            backend,
            done: false,
            identity: RefCell::default(),
            counters: RefCell::default(),
            sequences: RefCell::default(),
        }
    }

    pub(crate) fn pg(&self) -> Pg<'_> {
        self.backend.pg()
    }

    pub(crate) fn append_entry(
        &mut self,
        position: u64,
        body: &[u8],
        hash: &[u8; 32],
    ) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO journal (position, body, hash) VALUES ($1, $2, $3)",
            &[&to_i64(position), &body, &hash.as_slice()],
        )
    }

    pub(crate) fn add_checkpoint(&mut self, entries: u64, bytes: &[u8]) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO checkpoints (entries, bytes) VALUES ($1, $2)",
            &[&to_i64(entries), &bytes],
        )
    }

    pub(crate) fn savepoint(&mut self) -> Result<(), LedgerError> {
        self.backend.batch("SAVEPOINT row")
    }

    pub(crate) fn release(&mut self) -> Result<(), LedgerError> {
        self.backend.batch("RELEASE SAVEPOINT row")
    }

    pub(crate) fn rollback_to(&mut self) -> Result<(), LedgerError> {
        *self.identity.borrow_mut() = None;
        self.counters.borrow_mut().clear();
        self.sequences.borrow_mut().clear();
        self.backend
            .batch("ROLLBACK TO SAVEPOINT row; RELEASE SAVEPOINT row")
    }

    pub(crate) fn commit(mut self) -> Result<(), LedgerError> {
        self.done = true;
        self.backend.batch("COMMIT")
    }

    fn load_identity(&self) -> Result<Option<Identity>, LedgerError> {
        let pg = self.pg();
        let Some(r) = pg.opt(
            "SELECT ledger_id, vendor, created_at, journal_format FROM identity WHERE id = 1",
            &[],
        )?
        else {
            return Ok(None);
        };
        pg.identity_row(&r).map(Some)
    }

    fn unique_taken(&self, row: &LicenseRow) -> Result<bool, LedgerError> {
        let pg = self.pg();
        let r = pg.one(
            "SELECT EXISTS (SELECT 1 FROM licenses WHERE license_id = $1 OR idem_key = $2)",
            &[&row.license_id.as_slice(), &row.idem_key],
        )?;
        pg.get(&r, 0)
    }
}

/// The queries, on the backend's connection (a reader's snapshot, a
/// writer's transaction, or autocommit).
#[derive(Clone, Copy)]
pub(crate) struct Pg<'a> {
    client: &'a RefCell<Client>,
    statements: &'a RefCell<HashMap<&'static str, Statement>>,
    path: &'a Path,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Pg<'_> {
    /// Whether the notice of `day` for `recipient` is in effect, read from
    /// the journal as the SQLite backend does.
    pub(crate) fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
        let needle = super::views::notice_needle(recipient);
        let rows = self.query(
            "SELECT body FROM journal WHERE position($1::bytea IN body) > 0 ORDER BY position",
            &[&needle],
        )?;
        let mut bodies = Vec::with_capacity(rows.len());
        for r in &rows {
            bodies.push(self.get::<Vec<u8>>(r, 0)?);
        }
        super::views::notice_state(bodies.iter().map(Vec::as_slice), recipient, day, |w| {
            self.damaged(w)
        })
    }

    fn err(&self) -> impl Fn(postgres::Error) -> LedgerError + '_ {
        |e| classify(self.path, &e)
    }

    fn damaged(&self, what: String) -> LedgerError {
        LedgerError::Damaged {
            path: self.path.to_owned(),
            what,
        }
    }

    /// The prepared statement of `query` (prepared once per connection).
    fn statement(
        &self,
        client: &mut Client,
        query: &'static str,
    ) -> Result<Statement, LedgerError> {
        if let Some(s) = self.statements.borrow().get(query) {
            return Ok(s.clone());
        }
        let s = client.prepare(query).map_err(self.err())?;
        self.statements.borrow_mut().insert(query, s.clone());
        Ok(s)
    }

    fn client(&self) -> Result<core::cell::RefMut<'_, Client>, LedgerError> {
        self.client
            .try_borrow_mut()
            .map_err(|_| busy_connection(self.path))
    }

    fn query(&self, query: &'static str, p: &Params<'_>) -> Result<Vec<Row>, LedgerError> {
        let mut client = self.client()?;
        let s = self.statement(&mut client, query)?;
        client.query(&s, p).map_err(self.err())
    }

    /// A query built at run time (not cached).
    fn query_text(&self, query: &str, p: &Params<'_>) -> Result<Vec<Row>, LedgerError> {
        self.client()?.query(query, p).map_err(self.err())
    }

    fn opt(&self, query: &'static str, p: &Params<'_>) -> Result<Option<Row>, LedgerError> {
        Ok(self.query(query, p)?.into_iter().next())
    }

    fn one(&self, query: &'static str, p: &Params<'_>) -> Result<Row, LedgerError> {
        self.opt(query, p)?
            .ok_or_else(|| self.damaged("a row that must exist is missing".into()))
    }

    fn execute(&self, query: &'static str, p: &Params<'_>) -> Result<(), LedgerError> {
        let mut client = self.client()?;
        let s = self.statement(&mut client, query)?;
        client.execute(&s, p).map(|_| ()).map_err(self.err())
    }

    fn get<'r, T: postgres::types::FromSql<'r>>(
        &self,
        row: &'r Row,
        i: usize,
    ) -> Result<T, LedgerError> {
        row.try_get(i).map_err(|_| {
            let name = row.columns().get(i).map_or("?", |c| c.name());
            self.damaged(format!("column `{name}` holds a value of the wrong type"))
        })
    }

    fn u32_at(&self, row: &Row, i: usize, what: &str) -> Result<u32, LedgerError> {
        let v: i64 = self.get(row, i)?;
        u32::try_from(v).map_err(|_| self.damaged(format!("{what} {v} is out of range")))
    }

    fn u64_at(&self, row: &Row, i: usize) -> Result<u64, LedgerError> {
        let v: i64 = self.get(row, i)?;
        Ok(u64::try_from(v).unwrap_or(u64::MAX))
    }

    fn bytes_at<const N: usize>(
        &self,
        row: &Row,
        i: usize,
        what: &str,
    ) -> Result<[u8; N], LedgerError> {
        let v: Vec<u8> = self.get(row, i)?;
        v.as_slice()
            .try_into()
            .map_err(|_| self.damaged(format!("{what} is {} bytes, not {N}", v.len())))
    }

    fn record(&self, r: &Row) -> Result<Record, LedgerError> {
        RawRecord {
            serial: self.get(r, 0)?,
            sequence: self.get(r, 1)?,
            license_id: self.get(r, 2)?,
            action: self.get(r, 3)?,
            entry: self.get(r, 4)?,
            operator: self.get(r, 5)?,
            issued_at: self.get(r, 6)?,
            customer: self.get(r, 7)?,
            pbx_name: self.get(r, 8)?,
            platform: self.get(r, 9)?,
            lease_end: self.get(r, 10)?,
            term_end: self.get(r, 11)?,
            idem_key: self.get(r, 12)?,
            body: self.get(r, 13)?,
            hash: self.get(r, 14)?,
        }
        .into_record(self.path)
    }

    fn records(&self, query: &'static str, p: &Params<'_>) -> Result<Vec<Record>, LedgerError> {
        self.query(query, p)?
            .iter()
            .map(|r| self.record(r))
            .collect()
    }

    fn identity_row(&self, r: &Row) -> Result<Identity, LedgerError> {
        Ok(Identity {
            ledger_id: self.bytes_at(r, 0, "view identity: ledger id")?,
            vendor: self.get(r, 1)?,
            created_at: self.get(r, 2)?,
            journal_format: self.u32_at(r, 3, "journal format")?,
        })
    }

    pub(crate) fn latest(&self, serial: &str) -> Result<Option<Record>, LedgerError> {
        const Q: &str = concat_record!(" WHERE l.serial = $1 ORDER BY l.sequence DESC LIMIT 1");
        Ok(self.records(Q, &[&serial])?.into_iter().next())
    }

    pub(crate) fn history(&self, serial: &str) -> Result<Vec<Record>, LedgerError> {
        const Q: &str = concat_record!(" WHERE l.serial = $1 ORDER BY l.sequence");
        self.records(Q, &[&serial])
    }

    pub(crate) fn by_idem_key(&self, key: &str) -> Result<Option<Record>, LedgerError> {
        const Q: &str = concat_record!(" WHERE l.idem_key = $1");
        Ok(self.records(Q, &[&key])?.into_iter().next())
    }

    pub(crate) fn by_license_id(&self, id: &[u8; 16]) -> Result<Option<Record>, LedgerError> {
        const Q: &str = concat_record!(" WHERE l.license_id = $1");
        Ok(self.records(Q, &[&id.as_slice()])?.into_iter().next())
    }

    pub(crate) fn all(&self) -> Result<Vec<Record>, LedgerError> {
        const Q: &str = concat_record!(" ORDER BY l.entry");
        self.records(Q, &[])
    }

    pub(crate) fn serials(&self) -> Result<Vec<SerialSummary>, LedgerError> {
        const Q: &str = concat_record!(
            " WHERE l.sequence = (SELECT MAX(m.sequence) FROM licenses m WHERE m.serial = l.serial) ORDER BY l.serial"
        );
        let latest = self.records(Q, &[])?;
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
        self.opt("SELECT serial FROM hw_serials WHERE hw_serial = $1", &[&hw])?
            .map(|r| self.get(&r, 0))
            .transpose()
    }

    pub(crate) fn hw_serials_of(&self, serial: &str) -> Result<Vec<String>, LedgerError> {
        self.query(
            "SELECT hw_serial FROM hw_serials WHERE serial = $1 ORDER BY entry",
            &[&serial],
        )?
        .iter()
        .map(|r| self.get(r, 0))
        .collect()
    }

    pub(crate) fn pending_schedule(
        &self,
        serial: &str,
    ) -> Result<Option<ZeroSchedule>, LedgerError> {
        self.opt(
            "SELECT stop_at, delete_at FROM schedules WHERE serial = $1 AND cancelled_at IS NULL",
            &[&serial],
        )?
        .map(|r| {
            Ok(ZeroSchedule {
                stop_at: self.get(&r, 0)?,
                delete_at: self.get(&r, 1)?,
            })
        })
        .transpose()
    }

    pub(crate) fn events(&self, serial: &str) -> Result<Vec<Event>, LedgerError> {
        self.query(
            "SELECT serial, sequence, kind, detail, operator, at FROM events WHERE serial = $1 ORDER BY sequence, entry",
            &[&serial],
        )?
        .iter()
        .map(|r| {
            let detail: String = self.get(r, 3)?;
            Ok(Event {
                serial: self.get(r, 0)?,
                sequence: self.u32_at(r, 1, "sequence")?,
                kind: self.get(r, 2)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                operator: self.get(r, 4)?,
                at: self.get(r, 5)?,
            })
        })
        .collect()
    }

    pub(crate) fn request_keys_since(
        &self,
        serial: &str,
        from: u32,
    ) -> Result<Vec<String>, LedgerError> {
        self.query(
            "SELECT DISTINCT request_key FROM licenses WHERE serial = $1 AND sequence >= $2 AND request_key IS NOT NULL ORDER BY request_key",
            &[&serial, &i64::from(from)],
        )?
        .iter()
        .map(|r| self.get::<Vec<u8>>(r, 0).map(hex::encode))
        .collect()
    }

    pub(crate) fn request_key_rows(
        &self,
        serial: &str,
        from: u32,
    ) -> Result<Vec<(u32, String)>, LedgerError> {
        self.query(
            "SELECT sequence, request_key FROM licenses WHERE serial = $1 AND sequence >= $2 AND request_key IS NOT NULL ORDER BY sequence",
            &[&serial, &i64::from(from)],
        )?
        .iter()
        .map(|r| {
            Ok((
                self.u32_at(r, 0, "sequence")?,
                hex::encode(self.get::<Vec<u8>>(r, 1)?),
            ))
        })
        .collect()
    }

    pub(crate) fn serials_with_request_key(
        &self,
        key: &str,
        serial: &str,
    ) -> Result<Vec<String>, LedgerError> {
        let Ok(key) = hex::decode(key) else {
            return Ok(Vec::new());
        };
        self.query(
            "SELECT DISTINCT serial FROM licenses WHERE request_key = $1 AND serial <> $2 ORDER BY serial",
            &[&key, &serial],
        )?
        .iter()
        .map(|r| self.get::<String>(r, 0))
        .collect()
    }

    pub(crate) fn replaced_bindings(
        &self,
        serial: &str,
    ) -> Result<Vec<ReplacedBinding>, LedgerError> {
        self.query(
            "SELECT sequence, replaced_by, device_keys, reason, at FROM replaced_bindings WHERE serial = $1 ORDER BY sequence",
            &[&serial],
        )?
        .iter()
        .map(|r| {
            let keys: String = self.get(r, 2)?;
            Ok(ReplacedBinding {
                sequence: self.u32_at(r, 0, "sequence")?,
                replaced_by: self.u32_at(r, 1, "sequence")?,
                device_keys: serde_json::from_str(&keys).unwrap_or_default(),
                reason: self.get(r, 3)?,
                at: self.get(r, 4)?,
            })
        })
        .collect()
    }

    /// Whether the registry's tables exist (a reader of a schema 3 ledger
    /// sees none: the registry is empty).
    fn has_registry(&self) -> Result<bool, LedgerError> {
        let r = self.one("SELECT to_regclass('charges') IS NOT NULL", &[])?;
        self.get(&r, 0)
    }

    fn pbx_row(&self, r: &Row) -> Result<PbxRow, LedgerError> {
        Ok(PbxRow {
            serial: self.get(r, 0)?,
            customer: self.get(r, 1)?,
            name: self.get(r, 2)?,
            model: self.get(r, 3)?,
            platform: self.get(r, 4)?,
            cycle: self.get(r, 5)?,
            profiles: self.get(r, 6)?,
            storage: self.u32_at(r, 7, "view pbxs: storage")?,
            policy: self.get(r, 8)?,
            policy_values: self.get(r, 9)?,
            created_at: self.get(r, 10)?,
            entry: self.u64_at(r, 11)?,
        })
    }

    fn pbx_change_row(&self, r: &Row) -> Result<PbxChangeRow, LedgerError> {
        Ok(PbxChangeRow {
            entry: self.u64_at(r, 0)?,
            serial: self.get(r, 1)?,
            kind: self.get(r, 2)?,
            detail: self.get(r, 3)?,
            operator: self.get(r, 4)?,
            at: self.get(r, 5)?,
        })
    }

    fn charge_row(&self, r: &Row) -> Result<ChargeRow, LedgerError> {
        Ok(ChargeRow {
            entry: self.u64_at(r, 0)?,
            line: self.u32_at(r, 1, "view charges: line")?,
            serial: self.get(r, 2)?,
            sequence: self.u32_at(r, 3, "view charges: sequence")?,
            kind: self.get(r, 4)?,
            item: self.get(r, 5)?,
            quantity: self.u32_at(r, 6, "view charges: quantity")?,
            cycle: self.get(r, 7)?,
            period_start: self.get(r, 8)?,
            period_end: self.get(r, 9)?,
            days: self.u32_at(r, 10, "view charges: days")?,
            period_days: self.u32_at(r, 11, "view charges: period days")?,
            at: self.get(r, 12)?,
        })
    }

    pub(crate) fn pbx(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(None);
        }
        self.opt(
            "SELECT serial, customer, name, model, platform, cycle, profiles, storage, \
             policy, policy_values, created_at, entry FROM pbxs WHERE serial = $1",
            &[&serial],
        )?
        .map(|r| self.pbx_row(&r))
        .transpose()
    }

    pub(crate) fn pbxs(&self) -> Result<Vec<PbxRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT serial, customer, name, model, platform, cycle, profiles, storage, \
             policy, policy_values, created_at, entry FROM pbxs ORDER BY serial",
            &[],
        )?
        .iter()
        .map(|r| self.pbx_row(r))
        .collect()
    }

    pub(crate) fn pbx_changes(&self, serial: &str) -> Result<Vec<PbxChangeRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT entry, serial, kind, detail, operator, at FROM pbx_changes WHERE serial = $1 ORDER BY entry",
            &[&serial],
        )?
        .iter()
        .map(|r| self.pbx_change_row(r))
        .collect()
    }

    pub(crate) fn charges(&self, from: i64, to: i64) -> Result<Vec<ChargeRow>, LedgerError> {
        if !self.has_registry()? {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT entry, line, serial, sequence, kind, item, quantity, cycle, period_start, \
             period_end, days, period_days, at FROM charges WHERE at >= $1 AND at < $2 \
             ORDER BY serial, entry, line",
            &[&from, &to],
        )?
        .iter()
        .map(|r| self.charge_row(r))
        .collect()
    }

    pub(crate) fn serial_in_use(&self, serial: &str) -> Result<bool, LedgerError> {
        let r = self.one(
            "SELECT EXISTS (SELECT 1 FROM licenses WHERE serial = $1) \
             OR EXISTS (SELECT 1 FROM hw_serials WHERE serial = $1)",
            &[&serial],
        )?;
        self.get(&r, 0)
    }

    pub(crate) fn head(&self) -> Result<Option<(u64, [u8; 32])>, LedgerError> {
        self.opt(
            "SELECT position, hash FROM journal ORDER BY position DESC LIMIT 1",
            &[],
        )?
        .map(|r| Ok((self.u64_at(&r, 0)?, self.bytes_at(&r, 1, "entry hash")?)))
        .transpose()
    }

    pub(crate) fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, LedgerError> {
        self.opt(
            "SELECT entries, bytes FROM checkpoints ORDER BY entries DESC LIMIT 1",
            &[],
        )?
        .map(|r| Ok((self.u64_at(&r, 0)?, self.get(&r, 1)?)))
        .transpose()
    }

    /// The entries the oldest checkpoint covers.
    pub(crate) fn first_checkpoint(&self) -> Result<Option<u64>, LedgerError> {
        let r = self.one("SELECT MIN(entries) FROM checkpoints", &[])?;
        let n: Option<i64> = self.get(&r, 0)?;
        Ok(n.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    /// The body of the journal entry at `position`.
    pub(crate) fn entry_body(&self, position: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.opt("SELECT body FROM journal WHERE position = $1", &[&position])?
            .map(|r| self.get(&r, 0))
            .transpose()
    }

    /// PostgreSQL offers no cheap sign that another session wrote since
    /// this one's last transaction, and several servers share one
    /// database: the views are checked once per open ledger
    /// ([`super::SESSION_STAMP`]).
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    pub(crate) fn change_stamp(&self) -> Result<Option<i64>, LedgerError> {
        Ok(Some(super::SESSION_STAMP))
    }

    pub(crate) fn checkpoints(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        self.query(
            "SELECT entries, bytes FROM checkpoints ORDER BY entries",
            &[],
        )?
        .iter()
        .map(|r| Ok((self.u64_at(r, 0)?, self.get(r, 1)?)))
        .collect()
    }

    /// Calls `f` with every journal row in position order, streamed.
    pub(crate) fn journal(&self, f: &mut super::JournalVisitor<'_>) -> Result<(), LedgerError> {
        use postgres::fallible_iterator::FallibleIterator as _;
        let mut client = self.client()?;
        let s = self.statement(
            &mut client,
            "SELECT position, body, hash FROM journal ORDER BY position",
        )?;
        let mut rows = client
            .query_raw(&s, core::iter::empty::<i64>())
            .map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let position: i64 = self.get(&r, 0)?;
            let body: Vec<u8> = self.get(&r, 1)?;
            let hash: Vec<u8> = self.get(&r, 2)?;
            f(position, &body, &hash)?;
        }
        Ok(())
    }

    /// Calls `f` with every row of every view.
    pub(crate) fn view_rows(
        &self,
        f: &mut dyn FnMut(ViewRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        for r in self.query_text(
            "SELECT ledger_id, vendor, created_at, journal_format FROM identity",
            &[],
        )? {
            f(ViewRow::Identity(self.identity_row(&r)?))?;
        }
        for r in self.query_text(
            "SELECT serial, sequence, license_id, action, entry, operator, issued_at, customer, pbx_name, platform, lease_end, term_end, idem_key, request_key FROM licenses",
            &[],
        )? {
            f(ViewRow::License(self.license_row(&r)?))?;
        }
        for r in self.query_text("SELECT hw_serial, serial, at, entry FROM hw_serials", &[])? {
            f(ViewRow::Hw(HwRow {
                hw_serial: self.get(&r, 0)?,
                serial: self.get(&r, 1)?,
                at: self.get(&r, 2)?,
                entry: self.u64_at(&r, 3)?,
            }))?;
        }
        for r in self.query_text("SELECT year, last, entry FROM serial_counter", &[])? {
            let year: i64 = self.get(&r, 0)?;
            f(ViewRow::Counter(CounterRow {
                year: i32::try_from(year)
                    .map_err(|_| self.damaged(format!("view serial_counter: year {year}")))?,
                last: self.u32_at(&r, 1, "counter")?,
                entry: self.u64_at(&r, 2)?,
            }))?;
        }
        for r in self.query_text(
            "SELECT serial, stop_at, delete_at, created_at, cancelled_at, entry FROM schedules",
            &[],
        )? {
            f(ViewRow::Schedule(self.schedule_row(&r)?))?;
        }
        for r in self.query_text(
            "SELECT entry, serial, sequence, kind, detail, operator, at FROM events",
            &[],
        )? {
            f(ViewRow::Event(EventRow {
                entry: self.u64_at(&r, 0)?,
                serial: self.get(&r, 1)?,
                sequence: self.u32_at(&r, 2, "sequence")?,
                kind: self.get(&r, 3)?,
                detail: self.get(&r, 4)?,
                operator: self.get(&r, 5)?,
                at: self.get(&r, 6)?,
            }))?;
        }
        for r in self.query_text(
            "SELECT serial, sequence, replaced_by, device_keys, reason, at, entry FROM replaced_bindings",
            &[],
        )? {
            f(ViewRow::Replaced(ReplacedRow {
                serial: self.get(&r, 0)?,
                sequence: self.u32_at(&r, 1, "sequence")?,
                replaced_by: self.u32_at(&r, 2, "sequence")?,
                device_keys: self.get(&r, 3)?,
                reason: self.get(&r, 4)?,
                at: self.get(&r, 5)?,
                entry: self.u64_at(&r, 6)?,
            }))?;
        }
        if !self.has_registry()? {
            return Ok(());
        }
        for r in self.query_text(
            "SELECT serial, customer, name, model, platform, cycle, profiles, storage, \
             policy, policy_values, created_at, entry FROM pbxs",
            &[],
        )? {
            f(ViewRow::Pbx(self.pbx_row(&r)?))?;
        }
        for r in self.query_text(
            "SELECT entry, serial, kind, detail, operator, at FROM pbx_changes",
            &[],
        )? {
            f(ViewRow::PbxChange(self.pbx_change_row(&r)?))?;
        }
        for r in self.query_text(
            "SELECT entry, line, serial, sequence, kind, item, quantity, cycle, period_start, \
             period_end, days, period_days, at FROM charges",
            &[],
        )? {
            f(ViewRow::Charge(self.charge_row(&r)?))?;
        }
        Ok(())
    }

    fn license_row(&self, r: &Row) -> Result<LicenseRow, LedgerError> {
        let serial: String = self.get(r, 0)?;
        let action: String = self.get(r, 3)?;
        let request_key: Option<Vec<u8>> = self.get(r, 13)?;
        let bad = |w: String| self.damaged(format!("view licenses, row {serial}: {w}"));
        Ok(LicenseRow {
            sequence: self.u32_at(r, 1, "sequence")?,
            license_id: self.bytes_at(r, 2, "license id")?,
            action: Action::parse(&action).ok_or_else(|| bad("unknown action".into()))?,
            entry: self.u64_at(r, 4)?,
            operator: self.get(r, 5)?,
            issued_at: self.get(r, 6)?,
            customer: self.get(r, 7)?,
            pbx_name: self.get(r, 8)?,
            platform: self.get(r, 9)?,
            lease_end: self.get(r, 10)?,
            term_end: self.get(r, 11)?,
            idem_key: self.get(r, 12)?,
            request_key: request_key
                .map(|k| {
                    <[u8; 32]>::try_from(k.as_slice())
                        .map_err(|_| bad(format!("request key is {} bytes, not 32", k.len())))
                })
                .transpose()?,
            serial: serial.clone(),
        })
    }

    fn schedule_row(&self, r: &Row) -> Result<ScheduleRow, LedgerError> {
        Ok(ScheduleRow {
            serial: self.get(r, 0)?,
            stop_at: self.get(r, 1)?,
            delete_at: self.get(r, 2)?,
            created_at: self.get(r, 3)?,
            cancelled_at: self.get(r, 4)?,
            entry: self.u64_at(r, 5)?,
        })
    }
}

impl ViewStore for PgTx<'_> {
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
        let pg = self.pg();
        let r = pg.one(
            "SELECT MAX(sequence) FROM licenses WHERE serial = $1",
            &[&serial],
        )?;
        let max: Option<i64> = pg.get(&r, 0)?;
        let last = max
            .map(|m| {
                u32::try_from(m).map_err(|_| {
                    pg.damaged(format!(
                        "view licenses, row {serial}: sequence {m} is out of range"
                    ))
                })
            })
            .transpose()?;
        self.sequences.borrow_mut().insert(serial.to_owned(), last);
        Ok(last)
    }

    fn license_action(&self, serial: &str, sequence: u32) -> Result<Option<Action>, LedgerError> {
        let pg = self.pg();
        let Some(r) = pg.opt(
            "SELECT action FROM licenses WHERE serial = $1 AND sequence = $2",
            &[&serial, &i64::from(sequence)],
        )?
        else {
            return Ok(None);
        };
        let a: String = pg.get(&r, 0)?;
        Ok(Action::parse(&a))
    }

    fn hw_owner(&self, hw: &str) -> Result<Option<String>, LedgerError> {
        self.pg().sw_serial_of(hw)
    }

    fn serial_mapped(&self, serial: &str) -> Result<bool, LedgerError> {
        let pg = self.pg();
        let r = pg.one(
            "SELECT EXISTS (SELECT 1 FROM hw_serials WHERE serial = $1)",
            &[&serial],
        )?;
        pg.get(&r, 0)
    }

    fn counter(&self, year: i32) -> Result<Option<u32>, LedgerError> {
        if let Some(known) = self.counters.borrow().get(&year) {
            return Ok(*known);
        }
        let pg = self.pg();
        let last = pg
            .opt(
                "SELECT last FROM serial_counter WHERE year = $1",
                &[&i64::from(year)],
            )?
            .map(|r| pg.u32_at(&r, 0, "view serial_counter: counter"))
            .transpose()?;
        self.counters.borrow_mut().insert(year, last);
        Ok(last)
    }

    fn schedule_row(&self, serial: &str) -> Result<Option<ScheduleRow>, LedgerError> {
        let pg = self.pg();
        pg.opt(
            "SELECT serial, stop_at, delete_at, created_at, cancelled_at, entry FROM schedules WHERE serial = $1",
            &[&serial],
        )?
        .map(|r| pg.schedule_row(&r))
        .transpose()
    }

    fn pbx_row(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        self.pg().pbx(serial)
    }

    fn carry_over(&self, position: u64) -> Result<bool, LedgerError> {
        let pg = self.pg();
        super::carries_over(position, pg.first_checkpoint()?, pg.entry_body(2)?)
    }

    fn binding_replaced(&self, serial: &str, sequence: u32) -> Result<bool, LedgerError> {
        let pg = self.pg();
        let r = pg.one(
            "SELECT EXISTS (SELECT 1 FROM replaced_bindings WHERE serial = $1 AND sequence = $2)",
            &[&serial, &i64::from(sequence)],
        )?;
        pg.get(&r, 0)
    }

    fn put_identity(&mut self, row: &Identity) -> Result<(), LedgerError> {
        *self.identity.borrow_mut() = None;
        self.pg().execute(
            "INSERT INTO identity (id, ledger_id, vendor, created_at, journal_format) VALUES (1, $1, $2, $3, $4)",
            &[
                &row.ledger_id.as_slice(),
                &row.vendor,
                &row.created_at,
                &i64::from(row.journal_format),
            ],
        )
    }

    fn put_license(&mut self, row: &LicenseRow) -> Result<(), LedgerError> {
        // A failed statement spoils a PostgreSQL transaction: test the
        // unique columns first instead of catching the violation.
        if self.unique_taken(row)? {
            return Err(LedgerError::Conflict {
                path: self.backend.path.clone(),
                reason: format!(
                    "the license id or bulk key of {}:{} is recorded already",
                    row.serial, row.sequence
                ),
            });
        }
        self.pg().execute(
            "INSERT INTO licenses (serial, sequence, license_id, action, entry, operator, issued_at, \
             customer, pbx_name, platform, lease_end, term_end, idem_key, request_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &row.serial,
                &i64::from(row.sequence),
                &row.license_id.as_slice(),
                &row.action.as_str(),
                &to_i64(row.entry),
                &row.operator,
                &row.issued_at,
                &row.customer,
                &row.pbx_name,
                &row.platform,
                &row.lease_end,
                &row.term_end,
                &row.idem_key,
                &row.request_key.as_ref().map(<[u8; 32]>::as_slice),
            ],
        )?;
        self.sequences
            .borrow_mut()
            .insert(row.serial.clone(), Some(row.sequence));
        Ok(())
    }

    fn put_hw(&mut self, row: &HwRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO hw_serials (hw_serial, serial, at, entry) VALUES ($1, $2, $3, $4)",
            &[&row.hw_serial, &row.serial, &row.at, &to_i64(row.entry)],
        )
    }

    fn put_counter(&mut self, row: &CounterRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO serial_counter (year, last, entry) VALUES ($1, $2, $3) \
             ON CONFLICT (year) DO UPDATE SET last = $2, entry = $3",
            &[
                &i64::from(row.year),
                &i64::from(row.last),
                &to_i64(row.entry),
            ],
        )?;
        self.counters.borrow_mut().insert(row.year, Some(row.last));
        Ok(())
    }

    fn put_schedule(&mut self, row: &ScheduleRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO schedules (serial, stop_at, delete_at, created_at, cancelled_at, entry) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (serial) DO UPDATE SET \
             stop_at = $2, delete_at = $3, created_at = $4, cancelled_at = $5, entry = $6",
            &[
                &row.serial,
                &row.stop_at,
                &row.delete_at,
                &row.created_at,
                &row.cancelled_at,
                &to_i64(row.entry),
            ],
        )
    }

    fn put_event(&mut self, row: &EventRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO events (entry, serial, sequence, kind, detail, operator, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &to_i64(row.entry),
                &row.serial,
                &i64::from(row.sequence),
                &row.kind,
                &row.detail,
                &row.operator,
                &row.at,
            ],
        )
    }

    fn put_replaced(&mut self, row: &ReplacedRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO replaced_bindings (serial, sequence, replaced_by, device_keys, reason, at, entry) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &row.serial,
                &i64::from(row.sequence),
                &i64::from(row.replaced_by),
                &row.device_keys,
                &row.reason,
                &row.at,
                &to_i64(row.entry),
            ],
        )
    }

    fn put_pbx(&mut self, row: &PbxRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO pbxs (serial, customer, name, model, platform, cycle, profiles, storage, \
             policy, policy_values, created_at, entry) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (serial) DO UPDATE SET customer = $2, name = $3, model = $4, platform = $5, \
             cycle = $6, profiles = $7, storage = $8, policy = $9, policy_values = $10, \
             created_at = $11, entry = $12",
            &[
                &row.serial,
                &row.customer,
                &row.name,
                &row.model,
                &row.platform,
                &row.cycle,
                &row.profiles,
                &i64::from(row.storage),
                &row.policy,
                &row.policy_values,
                &row.created_at,
                &to_i64(row.entry),
            ],
        )
    }

    fn put_pbx_change(&mut self, row: &PbxChangeRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO pbx_changes (entry, serial, kind, detail, operator, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &to_i64(row.entry),
                &row.serial,
                &row.kind,
                &row.detail,
                &row.operator,
                &row.at,
            ],
        )
    }

    fn put_charge(&mut self, row: &ChargeRow) -> Result<(), LedgerError> {
        self.pg().execute(
            "INSERT INTO charges (entry, line, serial, sequence, kind, item, quantity, cycle, \
             period_start, period_end, days, period_days, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &to_i64(row.entry),
                &i64::from(row.line),
                &row.serial,
                &i64::from(row.sequence),
                &row.kind,
                &row.item,
                &i64::from(row.quantity),
                &row.cycle,
                &row.period_start,
                &row.period_end,
                &i64::from(row.days),
                &i64::from(row.period_days),
                &row.at,
            ],
        )
    }
}
