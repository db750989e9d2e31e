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
//! # Opening
//!
//! The folder and every file in it are opened as [`folder`] describes:
//! owner and mode checked (like OpenSSH's `StrictModes`), never through a
//! symbolic link, only regular files, every read size-capped.
//!
//! # Writing
//!
//! Every file is replaced the same way: write a new temporary file
//! `NAME.new-` + 16 random hex digits (created with `O_EXCL`, never
//! through a link; "`NAME.new`" below), fsync it, rename it over `NAME`,
//! fsync the folder. An install replaces the license first, then the
//! state:
//!
//! 0. (once, on a device with neither file: the fresh state is stored, as
//!    provisioning does, so that a license never lands without a state;
//!    an install refused after that takes it back, with the device key,
//!    the lock file and the folders it made, so a folder never set up
//!    stays so);
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
//! removed; a leftover `device.key.new` or `state.corrupt.new` is removed.
//! Leftovers with the fixed names older agents used (`license.new`, ...)
//! are treated the same way.
//!
//! # Fail points
//!
//! [`FailHook`] stops a write at a [`FailPoint`] as a crash would, for the
//! crash-safety tests: with [`FailAction::Fail`] the library returns
//! [`StoreError::FailPoint`]; with [`FailAction::Pause`] the agent prints
//! `tessera-agent: fail point NAME reached` to stderr and waits to be
//! killed. The binary enables a hook only from
//! [`FAIL_POINT_ENV`]; it can stop the agent, never make it grant more.

pub mod folder;

use core::time::Duration;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::fs::FlockOperation;
use tessera_verifier::{armor, State, StateKey, MAX_OBJECT_LEN};

use crate::agent::KEYRING_FILE;
use crate::config::CONFIG_FILE;
use crate::device_key::{DeviceKey, DeviceKeyError, DEVICE_KEY_FILE};
use crate::seats::SEATS_FILE;
pub use folder::{is_temp_of, read_file, shown, Access, FileError, Folder, Step, TEMP_SUFFIX};

/// The installed license.
pub const LICENSE_FILE: &str = "license";
/// The verifier's state record.
pub const STATE_FILE: &str = "state";
/// The lock file.
pub const LOCK_FILE: &str = "lock";
/// A corrupt state record kept for support.
pub const CORRUPT_STATE_FILE: &str = "state.corrupt";
/// Most bytes of a corrupt state record kept as `state.corrupt`.
pub const MAX_CORRUPT_KEPT: u64 = 4096;
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
    /// A file or the folder was refused or could not be used
    /// ([`folder`]: owner, mode, links, FIFOs, size caps, I/O).
    #[error(transparent)]
    File(#[from] FileError),
    /// The state directory does not exist (and was not to be created).
    #[error("there is no state directory {}: this device has no license yet", shown(.0))]
    NoStateDir(PathBuf),
    /// The folder holds none of the agent's state (no license, state
    /// record, device key, lock or seat store): nothing is created in it
    /// unless the command provisions a device.
    #[error("{}", not_state_message(.path, *.foreign))]
    NotStateFolder {
        /// The folder.
        path: PathBuf,
        /// Whether it holds other files (it is no state folder at all);
        /// else it is empty or holds only configuration (a device not
        /// provisioned yet).
        foreign: bool,
    },
    /// Another agent holds the lock.
    #[error(
        "another tessera-agent is working on {} (its lock was held for more than 30 s); wait for it to finish and try again", shown(.0)
    )]
    Locked(PathBuf),
    /// The installed license file cannot be read back.
    #[error("the installed license {} is damaged ({reason}); install the license file from the vendor again", shown(.path))]
    LicenseDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The device key, which binds the state record, cannot be made or
    /// read.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// A test fail point was reached.
    #[error("stopped at fail point `{}` (test hook)", .0.name())]
    FailPoint(FailPoint),
}

fn not_state_message(path: &Path, foreign: bool) -> String {
    if foreign {
        format!(
            "{} is not a tessera state folder: it holds other files and no license, state record or device key, so nothing is written there; pass --state-dir (or set TESSERA_STATE_DIR) to the agent's folder (default /var/lib/tessera), or provision a new device in a new or empty folder with `tessera-agent --state-dir DIR request -o request.txt`",
            shown(path)
        )
    } else {
        format!(
            "no license is installed in {}: it holds no tessera state yet (no license, state record or device key); provision this device with `tessera-agent request -o request.txt`, send the file to the vendor and install the answer with `tessera-agent install FILE`; if its state lives elsewhere, pass --state-dir DIR (or set TESSERA_STATE_DIR)",
            shown(path)
        )
    }
}

/// The state record as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredState {
    /// No `state` file.
    Missing,
    /// An intact record sealed under this device's key.
    Intact(State),
    /// A file that is not an intact record (tag, length, version, any
    /// changed bit, a record sealed under another key).
    Corrupt,
    /// A record that cannot be trusted because it is not bound to this
    /// device: see [`Unbound`]. Treated as corrupt, with its own message.
    Unbound(Unbound),
}

/// Why a state record is not bound to this device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unbound {
    /// An intact unkeyed record (version 1), as agents before the keyed
    /// record wrote it: anybody can compute one, so it is never trusted
    /// (`spec/RUNTIME.md` §6.6, "Moving to keyed records").
    OlderAgent,
    /// The device key that binds the record is missing or damaged.
    NoDeviceKey(String),
}

/// The context the state key is derived with from the device key's seed
/// (`spec/RUNTIME.md` §6.6; `spec/vectors/state.json`).
pub const STATE_KEY_CONTEXT: &[u8] = b"tessera-agent state record";

/// An open, locked state directory.
#[derive(Debug)]
pub struct Store {
    folder: Folder,
    _lock: File,
    hook: Option<FailHook>,
    recovered: Vec<String>,
    device_key: Result<Option<DeviceKey>, String>,
    key_created: bool,
    state_key: Option<StateKey>,
}

impl Store {
    /// Opens (with `create`, creating it mode 0700) and locks the state
    /// directory, then recovers from an interrupted write (module
    /// documentation). Waits up to [`LOCK_TIMEOUT`] for another agent.
    ///
    /// # Errors
    /// [`StoreError::NoStateDir`], [`StoreError::Locked`],
    /// [`StoreError::File`] (a folder or file refused, I/O).
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
        let folder =
            Folder::open(dir, create)?.ok_or_else(|| StoreError::NoStateDir(dir.to_owned()))?;
        Self::open_in(folder, create, hook, timeout)
    }

    /// [`Store::open_with_timeout`] on a folder already open (a command
    /// opens its state folder once and reaches everything through it).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_in(
        folder: Folder,
        create: bool,
        hook: Option<FailHook>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let dir = folder.path().to_owned();
        Self::check_holds_state(&folder, create)?;
        let new_lock = !folder.exists(LOCK_FILE)?;
        let mut lock = match folder.open_lock(LOCK_FILE) {
            Ok(lock) => lock,
            Err(e) => {
                let _ = folder.remove_made();
                return Err(e.into());
            }
        };
        let deadline = Instant::now() + timeout;
        loop {
            match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
                // The lock file may have been removed while this agent
                // waited (a failed first request takes back what it made,
                // its lock file too): a lock on a file no longer in the
                // folder excludes nobody who comes later. Lock the file
                // that is there now.
                Ok(()) if !folder.is_open_as(LOCK_FILE, &lock)? => {
                    lock = folder.open_lock(LOCK_FILE)?;
                }
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::WOULDBLOCK || e == rustix::io::Errno::INTR => {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Locked(dir));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(FileError::Io {
                        action: "lock",
                        path: folder.join(LOCK_FILE),
                        source: e.into(),
                    }
                    .into())
                }
            }
        }
        let mut store = Self {
            folder,
            _lock: lock,
            hook,
            recovered: Vec::new(),
            device_key: Ok(None),
            key_created: false,
            state_key: None,
        };
        let opened = store
            .scan()
            .and_then(|()| store.load_key(create))
            .and_then(|()| store.recover())
            .and_then(|()| if create { store.provision() } else { Ok(()) });
        if let Err(e) = opened {
            // A folder refused (a planted link, a file of the wrong kind)
            // or a device key or state that cannot be written (a full
            // disk) keeps nothing this open made: the device key it made,
            // the lock file too, still held (an agent waiting on it locks
            // the one there afterwards), and the folder with the parents
            // opening it created, if empty.
            if store.key_created {
                let _ = store.folder.remove(DEVICE_KEY_FILE);
            }
            if new_lock {
                let _ = store.folder.remove(LOCK_FILE);
            }
            let _ = store.folder.remove_made();
            return Err(e);
        }
        Ok(store)
    }

    /// Refuses, before anything is created, a folder that holds none of
    /// the agent's state: without `create` any such folder (a device not
    /// provisioned, or a path that is no state folder: `/`), with `create`
    /// one that holds other files (only a new or empty folder, or one with
    /// the agent's configuration, is provisioned).
    fn check_holds_state(folder: &Folder, create: bool) -> Result<(), StoreError> {
        let names = folder.names()?;
        let state = names.iter().any(|n| {
            n == LOCK_FILE
                || known_name(n).is_some() && !matches!(n.as_str(), CONFIG_FILE | KEYRING_FILE)
        });
        // A file system's own `lost+found` (the state on its own partition)
        // and hidden files (`.keep`) are not someone else's files.
        let foreign = names.iter().any(|n| {
            n != LOCK_FILE && n != "lost+found" && !n.starts_with('.') && known_name(n).is_none()
        });
        if state || (create && !foreign) {
            return Ok(());
        }
        Err(StoreError::NotStateFolder {
            path: folder.path().to_owned(),
            foreign,
        })
    }

    /// Loads the device key (with `create`, making one if there is none:
    /// provisioning) and derives the key that seals the state record from
    /// it. Without `create` a missing or damaged device key is not an
    /// error here: the state then cannot be verified ([`Unbound`]).
    fn load_key(&mut self, create: bool) -> Result<(), StoreError> {
        let loaded = if create {
            let (key, created) = DeviceKey::load_or_generate(&self.folder)?;
            self.key_created = created;
            Ok(Some(key))
        } else {
            DeviceKey::load(&self.folder).map_err(|e| e.to_string())
        };
        self.state_key = match &loaded {
            Ok(Some(key)) => Some(key.state_key(STATE_KEY_CONTEXT)),
            _ => None,
        };
        self.device_key = loaded;
        Ok(())
    }

    /// The device key, if there is one (made by [`Store::open`] with
    /// `create`).
    #[must_use]
    pub fn device_key(&self) -> Option<&DeviceKey> {
        self.device_key.as_ref().ok().and_then(Option::as_ref)
    }

    /// Whether [`Store::open`] made the device key just now.
    #[must_use]
    pub fn key_created(&self) -> bool {
        self.key_created
    }

    /// The state record as it is written: sealed under this device's key.
    fn seal(&self, state: &State) -> Result<[u8; State::LEN], StoreError> {
        match &self.state_key {
            Some(key) => Ok(state.to_bytes_with(Some(key))),
            None => Err(StoreError::DeviceKey(DeviceKeyError::Missing(
                self.folder.join(DEVICE_KEY_FILE),
            ))),
        }
    }

    /// Stores the fresh state once, on a device with neither a license
    /// nor a state (`spec/RUNTIME.md` §6.1: provisioning). From then on a
    /// missing record is a lost one, and a first install interrupted after
    /// its license was renamed finds the fresh state it needs.
    fn provision(&self) -> Result<(), StoreError> {
        if self.has_license()? || self.folder.exists(STATE_FILE)? {
            return Ok(());
        }
        self.write_atomic(STATE_FILE, &self.seal(&State::new())?, 0o600, None)
    }

    /// The folder's path.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.folder.path()
    }

    /// The open folder, for reading and writing other files in it.
    #[must_use]
    pub fn folder(&self) -> &Folder {
        &self.folder
    }

    /// What [`Store::open`] cleaned up after an interrupted write, for
    /// people.
    #[must_use]
    pub fn recovered(&self) -> &[String] {
        &self.recovered
    }

    /// Refuses the folder when anything at one of the agent's names (or
    /// their temporary names) is not a regular file, or is owned by
    /// someone else or writable by others: a link, a FIFO or a foreign
    /// file there means someone else had a hand in the folder.
    fn scan(&self) -> Result<(), StoreError> {
        for name in self.folder.names()? {
            let Some(access) = known_name(&name) else {
                continue;
            };
            self.folder.check(&name, access)?;
        }
        Ok(())
    }

    fn recover(&mut self) -> Result<(), StoreError> {
        let mut changed = false;
        let names = self.folder.names()?;
        let temps =
            |base: &str| -> Vec<&String> { names.iter().filter(|n| is_temp_of(n, base)).collect() };
        let license_temps = temps(LICENSE_FILE);
        for tmp in &license_temps {
            self.folder.remove(tmp)?;
        }
        if !license_temps.is_empty() {
            self.recovered.push(
                "an interrupted install was rolled back (license.new removed): the license in force is unchanged; install the new license again".into(),
            );
            changed = true;
        }
        // `state.new` is only written once the license it belongs to is in
        // place, so an intact one is the newest state, unless the current
        // record is already further on. (Links and FIFOs at these names were
        // refused by `scan`.)
        let current = match self.read_state()? {
            StoredState::Intact(s) => Some(s),
            _ => None,
        };
        let key = self.state_key.as_ref();
        let mut winner: Option<(State, String)> = None;
        let state_temps = temps(STATE_FILE);
        for tmp in &state_temps {
            // A torn, oversized or foreign leftover is no candidate.
            let candidate =
                match self
                    .folder
                    .read(tmp, State::LEN as u64, Access::Shared, "state record")
                {
                    Ok(Some(bytes)) => {
                        key.and_then(|k| State::from_bytes_with(&bytes, Some(k)).ok())
                    }
                    _ => None,
                };
            if let Some(c) = candidate {
                let better = |than: Option<State>| match than {
                    Some(t) => {
                        State::from_redundant(&t.to_bytes(), &c.to_bytes()) == Ok(c) && c != t
                    }
                    None => true,
                };
                let beats_winner = better(winner.as_ref().map(|w| w.0));
                if beats_winner && (current.is_none() || better(current)) {
                    winner = Some((c, (*tmp).clone()));
                }
            }
        }
        if let Some((_, tmp)) = &winner {
            self.folder.rename(tmp, STATE_FILE)?;
            self.recovered
                .push("an interrupted state update was completed (state.new)".into());
        }
        let completed = winner.map(|w| w.1);
        let mut discarded = false;
        for tmp in &state_temps {
            if completed.as_deref() != Some(tmp.as_str()) {
                self.folder.remove(tmp)?;
                discarded = true;
            }
        }
        if discarded && completed.is_none() {
            self.recovered.push(
                "an interrupted state update was discarded (state.new was incomplete or older)"
                    .into(),
            );
        }
        changed |= !state_temps.is_empty();
        for base in [DEVICE_KEY_FILE, CORRUPT_STATE_FILE] {
            for tmp in temps(base) {
                self.folder.remove(tmp)?;
                changed = true;
            }
        }
        if changed {
            self.folder.sync()?;
        }
        Ok(())
    }

    /// Whether anything is at the license's name (readable or not).
    ///
    /// # Errors
    /// [`StoreError::File`].
    pub fn has_license(&self) -> Result<bool, StoreError> {
        Ok(self.folder.exists(LICENSE_FILE)?)
    }

    /// The installed license's bytes (the armor removed), if any.
    ///
    /// # Errors
    /// [`StoreError::LicenseDamaged`], [`StoreError::File`].
    pub fn read_license(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.folder.join(LICENSE_FILE);
        let damaged = |reason: String| StoreError::LicenseDamaged {
            path: path.clone(),
            reason,
        };
        let bytes = match self.folder.read(
            LICENSE_FILE,
            armor::MAX_ARMOR_LEN as u64,
            Access::Shared,
            "license file",
        ) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(FileError::TooLarge { .. }) => {
                return Err(damaged("larger than any license".into()))
            }
            Err(e) => return Err(e.into()),
        };
        let text = String::from_utf8(bytes).map_err(|_| damaged("not text".into()))?;
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let license = armor::decode(&text, armor::LABEL_LICENSE, &mut buf)
            .map_err(|e| damaged(e.to_string()))?;
        Ok(Some(license.to_vec()))
    }

    /// The state record.
    ///
    /// # Errors
    /// [`StoreError::File`] when the file exists but is refused or cannot
    /// be read; a damaged record is [`StoredState::Corrupt`], not an error.
    pub fn read_state(&self) -> Result<StoredState, StoreError> {
        match self.folder.read_prefix(
            STATE_FILE,
            State::LEN as u64,
            Access::Shared,
            "state record",
        )? {
            None => Ok(StoredState::Missing),
            Some((_, true)) => Ok(StoredState::Corrupt),
            Some((bytes, false)) => Ok(match (&self.state_key, &self.device_key) {
                (Some(key), _) => parse_state(&bytes, key),
                (None, Err(problem)) => StoredState::Unbound(Unbound::NoDeviceKey(problem.clone())),
                (None, Ok(_)) => StoredState::Unbound(Unbound::NoDeviceKey(format!(
                    "there is no device key {}",
                    shown(&self.folder.join(DEVICE_KEY_FILE))
                ))),
            }),
        }
    }

    /// Installs a license and its state: the license first, then the state
    /// (module documentation).
    ///
    /// # Errors
    /// [`StoreError::File`], [`StoreError::FailPoint`].
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
    /// [`StoreError::File`], [`StoreError::FailPoint`].
    pub fn save_state(&self, state: &State) -> Result<(), StoreError> {
        self.write_atomic(
            STATE_FILE,
            &self.seal(state)?,
            0o600,
            Some([
                FailPoint::StateTempTorn,
                FailPoint::StateTempWritten,
                FailPoint::StateRenamed,
            ]),
        )
    }

    /// Keeps a copy of the current (corrupt) state record as
    /// `state.corrupt` for support, before `install --recover` replaces it:
    /// written like every other file (temporary file, fsync, rename, mode
    /// 0600), at most [`MAX_CORRUPT_KEPT`] bytes of it. Returns whether it
    /// was cut.
    ///
    /// # Errors
    /// [`StoreError::File`].
    pub fn keep_corrupt_state(&self) -> Result<bool, StoreError> {
        let Some((bytes, cut)) = self.folder.read_prefix(
            STATE_FILE,
            MAX_CORRUPT_KEPT,
            Access::Shared,
            "state record",
        )?
        else {
            return Ok(false);
        };
        self.write_atomic(CORRUPT_STATE_FILE, &bytes, 0o600, None)?;
        Ok(cut)
    }

    fn write_atomic(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        points: Option<[FailPoint; 3]>,
    ) -> Result<(), StoreError> {
        let [torn, written, renamed] = points.map_or([None; 3], |p| p.map(Some));
        let wants = |p: Option<FailPoint>| p.is_some() && self.hook.map(|h| h.point) == p;
        self.folder
            .write_atomic(name, bytes, mode, wants(torn), |step| {
                self.reach(match step {
                    Step::Torn => torn,
                    Step::Written => written,
                    Step::Renamed => renamed,
                })
            })
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

/// Every name the agent keeps in the state folder, with who may read it.
const KNOWN_NAMES: [(&str, Access); 10] = [
    (LICENSE_FILE, Access::Shared),
    (STATE_FILE, Access::Shared),
    (CORRUPT_STATE_FILE, Access::Shared),
    (DEVICE_KEY_FILE, Access::Private),
    (KEYRING_FILE, Access::Shared),
    (CONFIG_FILE, Access::Shared),
    (SEATS_FILE, Access::Shared),
    ("seats.db-wal", Access::Shared),
    ("seats.db-shm", Access::Shared),
    ("seats.db-journal", Access::Shared),
];

/// How a name of the state folder (or a temporary file of one) may be
/// read; `None` for a name that is not the agent's.
fn known_name(name: &str) -> Option<Access> {
    KNOWN_NAMES
        .iter()
        .find(|(known, _)| name == *known || is_temp_of(name, known))
        .map(|(_, access)| *access)
}

/// Decodes state file contents sealed under `key`: any bytes that are not
/// an intact record are [`StoredState::Corrupt`] (or, an intact unkeyed
/// record of an older agent, [`Unbound::OlderAgent`]), never a fresh
/// state.
#[must_use]
pub fn parse_state(bytes: &[u8], key: &StateKey) -> StoredState {
    match State::from_bytes_with(bytes, Some(key)) {
        Ok(s) => StoredState::Intact(s),
        Err(_) if State::from_bytes(bytes).is_ok() => StoredState::Unbound(Unbound::OlderAgent),
        Err(_) => StoredState::Corrupt,
    }
}

#[cfg(test)]
mod tests;
