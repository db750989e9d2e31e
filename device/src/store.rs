//! The state directory: the installed license and the verifier's state
//! record, written so that a crash at any point leaves either the old or
//! the new license in force, never none.
//!
//! | file | contents |
//! |---|---|
//! | `license` | the license in force, armored (`spec/FORMAT.md` §8) |
//! | `state` | the verifier's [`State`] record, 64 bytes |
//! | `device.key` | the device key ([`crate::device_key`]) |
//! | `agent.toml`, `keyring.toml` | configuration, optional |
//! | `lock` | held (`flock`) by the one agent working on the folder |
//! | `state.corrupt` | a corrupt state record, kept for support after `install --recover` |
//!
//! # Writing
//!
//! Every file is replaced the same way: write `NAME.new`, fsync it, rename
//! it over `NAME`, fsync the folder. An install replaces the license
//! first, then the state:
//!
//! 0. (once, on a device with neither file: the fresh state is stored, as
//!    provisioning does, so that a license never lands without a state);
//! 1. `license.new` written and synced — a crash leaves the old license
//!    and old state: the old license stays in force;
//! 2. renamed over `license` — a crash leaves the new license with the old
//!    state: the next check accepts it (its sequence is higher) and
//!    records it;
//! 3. `state.new` written, synced and renamed — the new state.
//!
//! Replacing the state first would be wrong: a new state with the old
//! license refuses the old license (superseded) and leaves none in force.
//!
//! # Recovery
//!
//! Every command opens the folder with [`Store::open`], which takes the
//! lock and cleans up after a crash: a leftover `license.new` (step 1) is
//! removed, so the old license stays in force; a leftover `state.new`
//! (step 3) is renamed into place if it is intact and newer, otherwise
//! removed; a leftover `device.key.new` is removed.
//!
//! # Fail points
//!
//! [`FailHook`] stops a write at a [`FailPoint`] as a crash would, for the
//! crash-safety tests: with [`FailAction::Fail`] the library returns
//! [`StoreError::FailPoint`]; with [`FailAction::Pause`] the agent prints
//! `tessera-agent: fail point NAME reached` to stderr and waits to be
//! killed. The binary enables a hook only from
//! [`FAIL_POINT_ENV`]; it can stop the agent, never make it grant more.

use core::time::Duration;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::FlockOperation;
use tessera_verifier::{armor, State, MAX_OBJECT_LEN};

use crate::device_key::DEVICE_KEY_FILE;

/// The installed license.
pub const LICENSE_FILE: &str = "license";
/// The verifier's state record.
pub const STATE_FILE: &str = "state";
/// The lock file.
pub const LOCK_FILE: &str = "lock";
/// A corrupt state record kept for support.
pub const CORRUPT_STATE_FILE: &str = "state.corrupt";
/// Suffix of a file being written.
pub const TEMP_SUFFIX: &str = ".new";
/// How long [`Store::open`] waits for another agent to release the lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable that sets a [`FailHook`] in `tessera-agent`
/// (`NAME` or `NAME:pause`), for crash-safety tests.
pub const FAIL_POINT_ENV: &str = "TESSERA_AGENT_FAILPOINT";

/// A point between two steps of a write where a test can stop the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailPoint {
    /// Half of `license.new` written.
    LicenseTempTorn,
    /// `license.new` complete and synced, not renamed.
    LicenseTempWritten,
    /// `license` replaced; the state not yet written.
    LicenseRenamed,
    /// Half of `state.new` written.
    StateTempTorn,
    /// `state.new` complete and synced, not renamed.
    StateTempWritten,
    /// `state` replaced, before the command reports.
    StateRenamed,
}

impl FailPoint {
    /// Every fail point, in the order an install reaches them.
    pub const ALL: [Self; 6] = [
        Self::LicenseTempTorn,
        Self::LicenseTempWritten,
        Self::LicenseRenamed,
        Self::StateTempTorn,
        Self::StateTempWritten,
        Self::StateRenamed,
    ];

    /// The name used in [`FAIL_POINT_ENV`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::LicenseTempTorn => "license-temp-torn",
            Self::LicenseTempWritten => "license-temp-written",
            Self::LicenseRenamed => "license-renamed",
            Self::StateTempTorn => "state-temp-torn",
            Self::StateTempWritten => "state-temp-written",
            Self::StateRenamed => "state-renamed",
        }
    }

    /// The fail point with this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What happens at the fail point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailAction {
    /// Return [`StoreError::FailPoint`]: nothing after the point is done.
    Fail,
    /// Print a line to stderr and wait (up to a minute) to be killed, then
    /// fail as [`FailAction::Fail`].
    Pause,
}

impl FailAction {
    /// Splits a [`FAIL_POINT_ENV`] value, `NAME` or `NAME:pause`, into the
    /// point's name and the action; `None` for any other suffix.
    pub(crate) fn split(spec: &str) -> Option<(&str, Self)> {
        match spec.split_once(':') {
            Some((name, "pause")) => Some((name, Self::Pause)),
            Some(_) => None,
            None => Some((spec, Self::Fail)),
        }
    }

    /// Runs the action at the point `name`: for [`FailAction::Pause`],
    /// announces it on stderr and waits (up to a minute) to be killed. The
    /// caller then fails.
    pub(crate) fn perform(self, name: &str) {
        if self == Self::Pause {
            let mut err = io::stderr();
            let _ = writeln!(err, "tessera-agent: fail point {name} reached");
            let _ = err.flush();
            std::thread::sleep(Duration::from_secs(60));
        }
    }
}

/// A test hook that stops writes at one point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailHook {
    /// Where to stop.
    pub point: FailPoint,
    /// How.
    pub action: FailAction,
}

impl FailHook {
    /// Parses `NAME` or `NAME:pause` ([`FAIL_POINT_ENV`]).
    ///
    /// ```
    /// use tessera_device::store::{FailAction, FailHook, FailPoint};
    /// let hook = FailHook::parse("license-renamed:pause").unwrap();
    /// assert_eq!(hook, FailHook { point: FailPoint::LicenseRenamed, action: FailAction::Pause });
    /// assert!(FailHook::parse("nowhere").is_none());
    /// ```
    #[must_use]
    pub fn parse(spec: &str) -> Option<Self> {
        let (name, action) = FailAction::split(spec)?;
        FailPoint::from_name(name).map(|point| Self { point, action })
    }
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error(
        "cannot {action} {path}: {source}; check that the state directory is on a writable file system and belongs to the user running tessera-agent"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The state directory does not exist (and was not to be created).
    #[error("there is no state directory {0}: this device has no license yet")]
    NoStateDir(PathBuf),
    /// Another agent holds the lock.
    #[error(
        "another tessera-agent is working on {0} (its lock was held for more than 30 s); wait for it to finish and try again"
    )]
    Locked(PathBuf),
    /// The installed license file cannot be read back.
    #[error("the installed license {path} is damaged ({reason}); install the license file from the vendor again")]
    LicenseDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A test fail point was reached.
    #[error("stopped at fail point `{}` (test hook)", .0.name())]
    FailPoint(FailPoint),
}

/// The state record as found on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredState {
    /// No `state` file.
    Missing,
    /// An intact record.
    Intact(State),
    /// A file that is not an intact record (checksum, length, version).
    Corrupt,
}

/// An open, locked state directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
    hook: Option<FailHook>,
    recovered: Vec<String>,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Fsyncs a folder, so renames and new files in it survive a power cut.
///
/// # Errors
/// The I/O error.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store {
    /// Opens (with `create`, creating it mode 0700) and locks the state
    /// directory, then recovers from an interrupted write (module
    /// documentation). Waits up to [`LOCK_TIMEOUT`] for another agent.
    ///
    /// # Errors
    /// [`StoreError::NoStateDir`], [`StoreError::Locked`],
    /// [`StoreError::Io`].
    pub fn open(dir: &Path, create: bool, hook: Option<FailHook>) -> Result<Self, StoreError> {
        Self::open_with_timeout(dir, create, hook, LOCK_TIMEOUT)
    }

    /// [`Store::open`] with another lock timeout.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_timeout(
        dir: &Path,
        create: bool,
        hook: Option<FailHook>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        if create {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err("create", dir))?;
        } else if !dir.is_dir() {
            return Err(StoreError::NoStateDir(dir.to_owned()));
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        let deadline = Instant::now() + timeout;
        loop {
            match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Locked(dir.to_owned()));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(io_err("lock", &lock_path)(e.into())),
            }
        }
        let mut store = Self {
            dir: dir.to_owned(),
            _lock: lock,
            hook,
            recovered: Vec::new(),
        };
        store.recover()?;
        if create {
            store.provision()?;
        }
        Ok(store)
    }

    /// Stores the fresh state once, on a device with neither a license
    /// nor a state (`spec/RUNTIME.md` §6.1: provisioning). From then on a
    /// missing record is a lost one, and a first install interrupted after
    /// its license was renamed finds the fresh state it needs.
    fn provision(&self) -> Result<(), StoreError> {
        if self.has_license() || self.path(STATE_FILE).exists() {
            return Ok(());
        }
        self.write_atomic(STATE_FILE, &State::new().to_bytes(), 0o600, None)
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What [`Store::open`] cleaned up after an interrupted write, for
    /// people.
    #[must_use]
    pub fn recovered(&self) -> &[String] {
        &self.recovered
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn temp(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{TEMP_SUFFIX}"))
    }

    fn recover(&mut self) -> Result<(), StoreError> {
        let mut changed = false;
        let license_tmp = self.temp(LICENSE_FILE);
        if license_tmp.exists() {
            fs::remove_file(&license_tmp).map_err(io_err("remove", &license_tmp))?;
            self.recovered.push(
                "an interrupted install was rolled back (license.new removed): the license in force is unchanged; install the new license again".into(),
            );
            changed = true;
        }
        let state_tmp = self.temp(STATE_FILE);
        if state_tmp.exists() {
            let new = read_state_file(&state_tmp)?;
            let current = read_state_file(&self.path(STATE_FILE))?;
            // `state.new` is only written once the license it belongs to is
            // in place, so an intact one is the newest state, unless the
            // current record is already further on.
            let keep_new = match (new, current) {
                (StoredState::Intact(n), StoredState::Intact(c)) => {
                    State::from_redundant(&c.to_bytes(), &n.to_bytes()) == Ok(n)
                }
                (StoredState::Intact(_), _) => true,
                _ => false,
            };
            if keep_new {
                let target = self.path(STATE_FILE);
                fs::rename(&state_tmp, &target).map_err(io_err("rename", &state_tmp))?;
                self.recovered
                    .push("an interrupted state update was completed (state.new)".into());
            } else {
                fs::remove_file(&state_tmp).map_err(io_err("remove", &state_tmp))?;
                self.recovered.push(
                    "an interrupted state update was discarded (state.new was incomplete)".into(),
                );
            }
            changed = true;
        }
        let key_tmp = self.temp(DEVICE_KEY_FILE);
        if key_tmp.exists() {
            fs::remove_file(&key_tmp).map_err(io_err("remove", &key_tmp))?;
            changed = true;
        }
        if changed {
            sync_dir(&self.dir).map_err(io_err("sync", &self.dir))?;
        }
        Ok(())
    }

    /// Whether a license file is present (readable or not).
    #[must_use]
    pub fn has_license(&self) -> bool {
        self.path(LICENSE_FILE).exists()
    }

    /// The installed license's bytes (the armor removed), if any.
    ///
    /// # Errors
    /// [`StoreError::LicenseDamaged`], [`StoreError::Io`].
    pub fn read_license(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(LICENSE_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let mut bytes = Vec::new();
        file.take(armor::MAX_ARMOR_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read", &path))?;
        let damaged = |reason: String| StoreError::LicenseDamaged {
            path: path.clone(),
            reason,
        };
        if bytes.len() > armor::MAX_ARMOR_LEN {
            return Err(damaged("larger than any license".into()));
        }
        let text = String::from_utf8(bytes).map_err(|_| damaged("not text".into()))?;
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let license = armor::decode(&text, armor::LABEL_LICENSE, &mut buf)
            .map_err(|e| damaged(e.to_string()))?;
        Ok(Some(license.to_vec()))
    }

    /// The state record.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file exists but cannot be read; a
    /// damaged record is [`StoredState::Corrupt`], not an error.
    pub fn read_state(&self) -> Result<StoredState, StoreError> {
        read_state_file(&self.path(STATE_FILE))
    }

    /// Installs a license and its state: the license first, then the state
    /// (module documentation).
    ///
    /// # Errors
    /// [`StoreError::Io`], [`StoreError::FailPoint`].
    pub fn save(&self, license: &[u8], state: &State) -> Result<(), StoreError> {
        let text = armor::encode(license, armor::LABEL_LICENSE);
        self.write_atomic(
            LICENSE_FILE,
            text.as_bytes(),
            0o644,
            Some([
                FailPoint::LicenseTempTorn,
                FailPoint::LicenseTempWritten,
                FailPoint::LicenseRenamed,
            ]),
        )?;
        self.save_state(state)
    }

    /// Replaces the state record.
    ///
    /// # Errors
    /// [`StoreError::Io`], [`StoreError::FailPoint`].
    pub fn save_state(&self, state: &State) -> Result<(), StoreError> {
        self.write_atomic(
            STATE_FILE,
            &state.to_bytes(),
            0o600,
            Some([
                FailPoint::StateTempTorn,
                FailPoint::StateTempWritten,
                FailPoint::StateRenamed,
            ]),
        )
    }

    /// Keeps a copy of the current (corrupt) state record as
    /// `state.corrupt` for support, before `install --recover` replaces it.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn keep_corrupt_state(&self) -> Result<(), StoreError> {
        let path = self.path(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let target = self.path(CORRUPT_STATE_FILE);
        fs::write(&target, bytes).map_err(io_err("write", &target))
    }

    fn write_atomic(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        points: Option<[FailPoint; 3]>,
    ) -> Result<(), StoreError> {
        let [torn, written, renamed] = points.map_or([None; 3], |p| p.map(Some));
        let tmp = self.temp(name);
        let target = self.path(name);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        if torn.is_some() && self.hook.map(|h| h.point) == torn {
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            f.write_all(half).map_err(io_err("write", &tmp))?;
            f.sync_all().map_err(io_err("sync", &tmp))?;
            return self.reach(torn);
        }
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        drop(f);
        self.reach(written)?;
        fs::rename(&tmp, &target).map_err(io_err("rename", &tmp))?;
        sync_dir(&self.dir).map_err(io_err("sync", &self.dir))?;
        self.reach(renamed)
    }

    fn reach(&self, point: Option<FailPoint>) -> Result<(), StoreError> {
        match (self.hook, point) {
            (Some(hook), Some(point)) if hook.point == point => {
                hook.action.perform(point.name());
                Err(StoreError::FailPoint(point))
            }
            _ => Ok(()),
        }
    }
}

fn read_state_file(path: &Path) -> Result<StoredState, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoredState::Missing),
        Err(e) => return Err(io_err("read", path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(State::LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    Ok(parse_state(&bytes))
}

/// Decodes state file contents: any bytes that are not an intact record
/// are [`StoredState::Corrupt`], never a fresh state.
#[must_use]
pub fn parse_state(bytes: &[u8]) -> StoredState {
    State::from_bytes(bytes).map_or(StoredState::Corrupt, StoredState::Intact)
}

#[cfg(test)]
mod tests;
