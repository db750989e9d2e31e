//! The seat store: `seats.db` in the state directory, SQLite.
//!
//! ```sql
//! seat(uuid TEXT PRIMARY KEY, kind INTEGER 0 profile | 1 base, code INTEGER,
//!      user TEXT NULL, extension TEXT NULL, created INTEGER, assigned INTEGER NULL)
//!   UNIQUE (user, kind, code)                  -- one seat per user and license
//!   UNIQUE (extension) WHERE extension NOT NULL
//!   UNIQUE (user) WHERE kind = 0               -- one profile per user
//! seat_addon(uuid → seat ON DELETE CASCADE, code INTEGER, PRIMARY KEY (uuid, code))
//! meta(key TEXT PRIMARY KEY, value TEXT)       -- highest sharing-server sequence seen
//! ```
//!
//! WAL journal, `synchronous = FULL`: a change is on disk when the
//! command returns, and a change is one transaction, so a crash (power
//! cut, SIGKILL) in the middle of a mass import leaves none of its rows.
//! The rules are checked on a [`Pool`] loaded inside the transaction
//! (`BEGIN IMMEDIATE`), so nothing else can change the seats between the
//! check and the write; the agent also holds the state directory's lock.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::limits::{Counts, Key};
use super::model::{Seat, SeatId, SeatLicense};
use super::pool::Pool;
use super::{SeatError, SeatFailPoint, SeatHook};
use crate::store::{shown, Access, Folder};

/// File name of the seat store in the state directory.
pub const SEATS_FILE: &str = "seats.db";
/// Schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS seat (
    uuid      TEXT PRIMARY KEY NOT NULL CHECK (length(uuid) = 36),
    kind      INTEGER NOT NULL CHECK (kind IN (0, 1)),
    code      INTEGER NOT NULL CHECK (code BETWEEN 0 AND 65535),
    user      TEXT CHECK (user IS NULL OR length(user) > 0),
    extension TEXT CHECK (extension IS NULL OR length(extension) > 0),
    created   INTEGER NOT NULL,
    assigned  INTEGER,
    UNIQUE (user, kind, code)
);
CREATE UNIQUE INDEX IF NOT EXISTS seat_extension ON seat(extension) WHERE extension IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS seat_one_profile ON seat(user) WHERE kind = 0 AND user IS NOT NULL;
CREATE INDEX IF NOT EXISTS seat_license ON seat(kind, code);
CREATE TABLE IF NOT EXISTS seat_addon (
    uuid TEXT NOT NULL REFERENCES seat(uuid) ON DELETE CASCADE,
    code INTEGER NOT NULL CHECK (code BETWEEN 0 AND 65535),
    PRIMARY KEY (uuid, code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Refuses the seat store's files in `folder` (`seats.db`, its `-wal`,
/// `-shm` and `-journal`) unless each is absent or a regular file owned by
/// root or the agent's user and not writable by others: SQLite opens them
/// by name, and a FIFO there would hang it, a link redirect it.
///
/// # Errors
/// [`SeatError::File`].
pub fn check_files(folder: &Folder) -> Result<(), SeatError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        folder.check(&format!("{SEATS_FILE}{suffix}"), Access::Shared)?;
    }
    Ok(())
}

/// SQLite opens files by path only: it is given the folder's path with
/// every link resolved (the folders the walk checked, no link, so
/// `SQLITE_OPEN_NOFOLLOW` holds), after checking that the path still
/// names the open folder.
fn connect(folder: &Folder, flags: OpenFlags) -> Result<Connection, SeatError> {
    connect_to(folder, SEATS_FILE, flags)
}

/// [`connect`] to the store file `name` (`seats.db`, or the new store
/// being made). An existing `seats.db` of 0 bytes is refused: a store is
/// made whole before it gets that name ([`create_store`]), so an empty one
/// was cut off and SQLite would silently start it again, empty.
fn connect_to(folder: &Folder, name: &str, flags: OpenFlags) -> Result<Connection, SeatError> {
    let shown = folder.join(name);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        folder.check(&format!("{name}{suffix}"), Access::Shared)?;
    }
    if !folder.is_at()? {
        return Err(SeatError::FolderMoved(folder.path().to_owned()));
    }
    let real = folder.real_path().join(name);
    if name == SEATS_FILE
        && std::fs::symlink_metadata(&real).is_ok_and(|m| m.is_file() && m.len() == 0)
    {
        return Err(SeatError::EmptyStore(shown));
    }
    Connection::open_with_flags(
        &real,
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| SeatError::db(&shown, e))
}

/// Where a new seat store is made before it is renamed to `seats.db`.
const NEW_SEATS_FILE: &str = "seats.db.new";

/// Makes a new, empty seat store: the schema is written into
/// `seats.db.new` (what an interrupted run left there is removed first),
/// which is then renamed to `seats.db`. So `seats.db` never exists
/// without its schema, and a `seats.db` of 0 bytes is damage, not a new
/// store.
fn create_store(folder: &Folder) -> Result<(), SeatError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let name = format!("{NEW_SEATS_FILE}{suffix}");
        folder.check(&name, Access::Shared)?;
        folder.remove(&name)?;
    }
    let conn = connect_to(
        folder,
        NEW_SEATS_FILE,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    let path = folder.join(NEW_SEATS_FILE);
    let db = SeatDb {
        conn,
        path: path.clone(),
        hook: None,
    };
    db.setup()?;
    // Closing checkpoints the write-ahead log into the file.
    db.conn.close().map_err(|(_, e)| SeatError::db(&path, e))?;
    folder.rename(NEW_SEATS_FILE, SEATS_FILE)?;
    folder.sync()?;
    Ok(())
}

/// The open seat store.
#[derive(Debug)]
pub struct SeatDb {
    conn: Connection,
    path: PathBuf,
    hook: Option<SeatHook>,
}

fn kind_of(l: SeatLicense) -> i64 {
    match l {
        SeatLicense::Profile(_) => 0,
        SeatLicense::Base(_) => 1,
    }
}

/// Progress of a write: `(done, total)` changes.
pub type WriteProgress<'a> = &'a mut dyn FnMut(u64, u64);

impl SeatDb {
    /// Opens (creating it) `seats.db` in the state folder.
    ///
    /// # Errors
    /// [`SeatError::Db`], [`SeatError::NewerSchema`], [`SeatError::File`].
    pub fn open(folder: &Folder, hook: Option<SeatHook>) -> Result<Self, SeatError> {
        if !folder.exists(SEATS_FILE)? {
            create_store(folder)?;
        }
        let conn = connect(folder, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let db = Self {
            conn,
            path: folder.join(SEATS_FILE),
            hook,
        };
        db.setup()?;
        Ok(db)
    }

    /// Opens `seats.db` in the state folder if it exists (for `check` and
    /// `status`).
    ///
    /// # Errors
    /// As [`SeatDb::open`].
    pub fn open_existing(folder: &Folder) -> Result<Option<Self>, SeatError> {
        if !folder.exists(SEATS_FILE)? {
            return Ok(None);
        }
        let conn = connect(folder, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let db = Self {
            conn,
            path: folder.join(SEATS_FILE),
            hook: None,
        };
        db.setup()?;
        Ok(Some(db))
    }

    /// An in-memory store (tests, benchmarks of the rules).
    ///
    /// # Errors
    /// [`SeatError::Db`].
    pub fn in_memory() -> Result<Self, SeatError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| SeatError::db(&path, e))?;
        let db = Self {
            conn,
            path,
            hook: None,
        };
        db.setup()?;
        Ok(db)
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> SeatError + '_ {
        move |e| SeatError::db(&self.path, e)
    }

    fn setup(&self) -> Result<(), SeatError> {
        let c = &self.conn;
        c.busy_timeout(core::time::Duration::from_secs(30))
            .map_err(self.err())?;
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())?;
        if version > SCHEMA_VERSION {
            return Err(SeatError::NewerSchema {
                path: self.path.clone(),
                found: version,
            });
        }
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(self.err())?;
        if version < SCHEMA_VERSION {
            c.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(self.err())?;
        }
        Ok(())
    }

    /// Every seat.
    ///
    /// # Errors
    /// [`SeatError::Db`], [`SeatError::StoreInconsistent`] for rows no
    /// agent writes.
    pub fn load(&self) -> Result<Vec<Seat>, SeatError> {
        load(&self.conn, &self.path)
    }

    /// The seats as a [`Pool`].
    ///
    /// # Errors
    /// As [`SeatDb::load`].
    pub fn pool(&self) -> Result<Pool, SeatError> {
        Pool::loaded(self.load()?)
    }

    /// Assigned counts, recounted by SQL (what `seats summary` shows).
    ///
    /// # Errors
    /// [`SeatError::Db`].
    pub fn counts(&self) -> Result<Counts, SeatError> {
        let mut counts = Counts::default();
        let mut st = self
            .conn
            .prepare(
                "SELECT kind, code, COUNT(*) FROM seat WHERE user IS NOT NULL GROUP BY kind, code",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })
            .map_err(self.err())?;
        for row in rows {
            let (kind, code, n) = row.map_err(self.err())?;
            counts.set(
                if kind == 0 {
                    Key::Profile(code)
                } else {
                    Key::Base(code)
                },
                n,
            );
        }
        let mut st = self
            .conn
            .prepare(
                "SELECT s.code, a.code, COUNT(*) FROM seat s JOIN seat_addon a ON a.uuid = s.uuid \
                 WHERE s.user IS NOT NULL AND s.kind = 1 GROUP BY s.code, a.code",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, u16>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            })
            .map_err(self.err())?;
        for row in rows {
            let (base, addon, n) = row.map_err(self.err())?;
            counts.set(Key::Addon { base, addon }, n);
        }
        Ok(counts)
    }

    /// Number of seats without a user.
    ///
    /// # Errors
    /// [`SeatError::Db`].
    pub fn unassigned(&self) -> Result<u64, SeatError> {
        let n = self
            .conn
            .query_row("SELECT COUNT(*) FROM seat WHERE user IS NULL", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(self.err())?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A `meta` value.
    ///
    /// # Errors
    /// [`SeatError::Db`].
    pub fn meta(&self, key: &str) -> Result<Option<String>, SeatError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Sets a `meta` value.
    ///
    /// # Errors
    /// [`SeatError::Db`].
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), SeatError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Loads the seats and lets `check` change them in memory only (a dry
    /// run): nothing is written.
    ///
    /// # Errors
    /// The error of `check`, [`SeatError::Db`].
    pub fn check<R>(
        &self,
        check: impl FnOnce(&mut Pool) -> Result<R, SeatError>,
    ) -> Result<R, SeatError> {
        let mut pool = self.pool()?;
        check(&mut pool)
    }

    /// Loads the seats inside one `BEGIN IMMEDIATE` transaction, lets
    /// `change` change them (checking the rules), and writes what changed
    /// before committing. When `change` fails, nothing is written.
    ///
    /// # Errors
    /// The error of `change`, [`SeatError::Db`],
    /// [`SeatError::FailPoint`].
    pub fn change<R>(
        &mut self,
        change: impl FnOnce(&mut Pool) -> Result<R, SeatError>,
        progress: Option<WriteProgress<'_>>,
    ) -> Result<R, SeatError> {
        let path = self.path.clone();
        let hook = self.hook;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| SeatError::db(&path, e))?;
        let mut pool = Pool::loaded(load(&tx, &path)?)?;
        let out = change(&mut pool)?;
        write(&tx, &path, &pool, hook, progress)?;
        reach(hook, SeatFailPoint::Written)?;
        tx.commit().map_err(|e| SeatError::db(&path, e))?;
        Ok(out)
    }
}

fn load(conn: &Connection, path: &Path) -> Result<Vec<Seat>, SeatError> {
    let err = |e| SeatError::db(path, e);
    let bad = |what: String| SeatError::StoreInconsistent(format!("{}: {what}", shown(path)));
    let mut st = conn
        .prepare(
            "SELECT uuid, kind, code, user, extension, created, assigned FROM seat ORDER BY uuid",
        )
        .map_err(err)?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })
        .map_err(err)?;
    let mut seats: Vec<Seat> = Vec::new();
    for row in rows {
        let (uuid, kind, code, user, extension, created, assigned) = row.map_err(err)?;
        let id: SeatId = uuid
            .parse()
            .map_err(|_| bad(format!("seat id {uuid:?} is not a UUID")))?;
        let code = u16::try_from(code).map_err(|_| bad(format!("seat {uuid}: code {code}")))?;
        let license = match kind {
            0 => SeatLicense::Profile(code),
            1 => SeatLicense::Base(code),
            k => return Err(bad(format!("seat {uuid}: kind {k}"))),
        };
        seats.push(Seat {
            id,
            license,
            user,
            extension,
            addons: Vec::new(),
            created,
            assigned,
        });
    }
    let mut st = conn
        .prepare("SELECT uuid, code FROM seat_addon ORDER BY uuid, code")
        .map_err(err)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(err)?;
    let index: std::collections::HashMap<SeatId, usize> =
        seats.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    for row in rows {
        let (uuid, code) = row.map_err(err)?;
        let id: SeatId = uuid
            .parse()
            .map_err(|_| bad(format!("add-on row names {uuid:?}")))?;
        let code = u16::try_from(code).map_err(|_| bad(format!("add-on code {code}")))?;
        match index.get(&id).and_then(|&i| seats.get_mut(i)) {
            Some(s) => s.addons.push(code),
            None => return Err(bad(format!("add-on of a missing seat {uuid}"))),
        }
    }
    for s in &mut seats {
        s.addons.sort_unstable();
    }
    Ok(seats)
}

fn reach(hook: Option<SeatHook>, point: SeatFailPoint) -> Result<(), SeatError> {
    match hook {
        Some(h) if h.point == point => h.reached(),
        _ => Ok(()),
    }
}

fn write(
    conn: &Connection,
    path: &Path,
    pool: &Pool,
    hook: Option<SeatHook>,
    mut progress: Option<WriteProgress<'_>>,
) -> Result<(), SeatError> {
    let err = |e| SeatError::db(path, e);
    let total = pool.pending() as u64;
    if total == 0 {
        return Ok(());
    }
    let mut delete = conn
        .prepare_cached("DELETE FROM seat WHERE uuid = ?1")
        .map_err(err)?;
    for id in pool.removed() {
        delete.execute([id.to_string()]).map_err(err)?;
    }
    // Free the unique user and extension of every stored seat that
    // changes first, so numbers and users can move between seats.
    let mut clear = conn
        .prepare_cached("UPDATE seat SET user = NULL, extension = NULL WHERE uuid = ?1")
        .map_err(err)?;
    for (s, stored) in pool.changed() {
        if stored {
            clear.execute([s.id.to_string()]).map_err(err)?;
        }
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO seat (uuid, kind, code, user, extension, created, assigned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(err)?;
    let mut update = conn
        .prepare_cached(
            "UPDATE seat SET kind = ?2, code = ?3, user = ?4, extension = ?5, created = ?6, assigned = ?7 WHERE uuid = ?1",
        )
        .map_err(err)?;
    let mut drop_addons = conn
        .prepare_cached("DELETE FROM seat_addon WHERE uuid = ?1")
        .map_err(err)?;
    let mut add_addon = conn
        .prepare_cached("INSERT INTO seat_addon (uuid, code) VALUES (?1, ?2)")
        .map_err(err)?;
    let half = total / 2;
    let mut done = pool.removed().count() as u64;
    for (s, stored) in pool.changed() {
        let uuid = s.id.to_string();
        let p = params![
            uuid,
            kind_of(s.license),
            s.license.code(),
            s.user,
            s.extension,
            s.created,
            s.assigned
        ];
        if stored {
            update.execute(p).map_err(err)?;
            drop_addons.execute([&uuid]).map_err(err)?;
        } else {
            insert.execute(p).map_err(err)?;
        }
        for a in &s.addons {
            add_addon.execute(params![uuid, a]).map_err(err)?;
        }
        done += 1;
        if done == half.max(1) {
            reach(hook, SeatFailPoint::HalfWritten)?;
        }
        if let Some(p) = progress.as_mut() {
            if done % 256 == 0 || done == total {
                p(done, total);
            }
        }
    }
    Ok(())
}
