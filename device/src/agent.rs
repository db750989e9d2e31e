//! The agent's commands as library calls: `tessera-agent` only parses
//! arguments, calls these and prints.
//!
//! Each command opens the state directory with [`Store::open`] (lock and
//! crash recovery), builds the device identity from a fresh [`Probe`] and
//! calls the verifier: the license is always judged by
//! [`tessera_verifier::verify`], never by code of its own.

use core::convert::Infallible;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use tessera_keys::Keyring;
use tessera_verifier::binding::DeviceIdentity;
use tessera_verifier::claims::{ComponentKind, Platform};
use tessera_verifier::encode::{sign_request, RequestData};
use tessera_verifier::{
    armor, decode_license_unverified, decode_request, verify, KeyEntry, State, Verdict,
    MAX_OBJECT_LEN,
};

use crate::catalog::Catalog;
use crate::clock::format_time;
use crate::config::{check_ip, AgentConfig, ConfigError, CONFIG_FILE};
use crate::device_key::{DeviceKey, DeviceKeyError, DEVICE_KEY_FILE};
use crate::error::AgentError;
use crate::probe::{
    platform_name, PlatformSource, Probe, ProbeSettings, SkipReason, Skipped,
    DEFAULT_MIN_COMPONENTS,
};
use crate::report::Report;
use crate::store::{
    read_file, shown, Access, FailHook, FileError, Folder, Store, StoreError, StoredState,
    LOCK_FILE, LOCK_TIMEOUT, STATE_FILE,
};

/// Where the state lives unless `--state-dir` or [`STATE_DIR_ENV`] says
/// otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tessera";
/// Environment variable naming the state directory.
pub const STATE_DIR_ENV: &str = "TESSERA_STATE_DIR";
/// Keyring file looked for in the state directory when none is configured.
pub const KEYRING_FILE: &str = "keyring.toml";
/// Largest keyring file read, in bytes (a keyring of a hundred keys is
/// about 25 KiB).
pub const MAX_KEYRING_LEN: u64 = 256 * 1024;

/// Where the agent finds its files, and overrides from the command line.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Configuration file; default `<state_dir>/agent.toml` (optional there).
    pub config: Option<PathBuf>,
    /// Sysroot override.
    pub sysroot: Option<PathBuf>,
    /// Bound IP address override (an administrative setting).
    pub ip: Option<String>,
    /// Keyring override.
    pub keyring: Option<PathBuf>,
    /// Catalog override.
    pub catalog: Option<PathBuf>,
    /// Crash-safety test hook.
    pub fail_hook: Option<FailHook>,
}

impl AgentOptions {
    /// Options with only the state directory set.
    #[must_use]
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            config: None,
            sysroot: None,
            ip: None,
            keyring: None,
            catalog: None,
            fail_hook: None,
        }
    }
}

/// A request file made by [`Agent::request`].
#[derive(Clone, Debug)]
pub struct RequestOutcome {
    /// The armored request (`TESSERA REQUEST`).
    pub armored: String,
    /// The request itself (the COSE object the armor carries), for a QR
    /// code.
    pub bytes: Vec<u8>,
    /// What it says.
    pub data: RequestData,
    /// The probe it was made from.
    pub probe: Probe,
    /// Whether the device key was created for it.
    pub key_created: bool,
    /// Warnings for people.
    pub notes: Vec<String>,
}

/// The serial a request would carry ([`Agent::request_serial`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RequestSerial {
    /// `sw` (a renewal, or a VM's first activation) or `hw` (first
    /// activation of an appliance).
    pub kind: &'static str,
    /// The serial.
    pub value: String,
    /// Where it comes from: `config: sw_serial`, `installed license`,
    /// `config: hw_serial` or the DMI file it was read from.
    pub source: String,
}

/// The device identity for one command.
struct Device {
    identity: DeviceIdentity,
    notes: Vec<String>,
}

/// The installed license with what verifying it needs ([`Agent::installed`]).
pub(crate) struct Installed {
    /// The license bytes.
    pub(crate) bytes: Vec<u8>,
    /// The stored state record.
    pub(crate) state: State,
    /// This device.
    pub(crate) identity: DeviceIdentity,
    /// The trusted keys.
    pub(crate) keyring: Vec<KeyEntry>,
}

/// The reference device agent.
#[derive(Debug)]
pub struct Agent {
    options: AgentOptions,
    config: AgentConfig,
    config_path: PathBuf,
    /// The state folder, opened (walked and checked) once per agent, when
    /// first needed.
    folder: std::sync::OnceLock<Folder>,
}

impl Agent {
    /// Loads the configuration.
    ///
    /// # Errors
    /// [`AgentError::Config`]: an unreadable or invalid file, a missing
    /// file named with `--config`, an invalid `--ip`.
    pub fn new(options: AgentOptions) -> Result<Self, AgentError> {
        let config_path = options
            .config
            .clone()
            .unwrap_or_else(|| options.state_dir.join(CONFIG_FILE));
        let folder = std::sync::OnceLock::new();
        let loaded = match in_folder(&options.state_dir, &config_path) {
            Some(name) => match open_folder(&folder, &options.state_dir, false)? {
                Some(folder) => AgentConfig::load_in(folder, name)?,
                None => None,
            },
            None => AgentConfig::load(&config_path)?,
        };
        let config = match loaded {
            Some(c) => c,
            None if options.config.is_some() => {
                return Err(ConfigError::Missing(config_path).into())
            }
            None => AgentConfig::default(),
        };
        if let Some(ip) = &options.ip {
            check_ip(ip).map_err(|reason| ConfigError::Invalid {
                path: "--ip".into(),
                field: "ip",
                reason,
            })?;
        }
        let agent = Self {
            options,
            config,
            config_path,
            folder,
        };
        agent.check_sysroot()?;
        Ok(agent)
    }

    /// Refuses a sysroot (`--sysroot`, else `sysroot` in the
    /// configuration) that is not a folder, naming it and what set it: the
    /// probe below it would find nothing and say only "not present".
    fn check_sysroot(&self) -> Result<(), ConfigError> {
        let (path, set_by) = match (&self.options.sysroot, &self.config.sysroot) {
            (Some(p), _) => (p, "--sysroot".to_owned()),
            (None, Some(p)) => (p, format!("`sysroot` in {}", shown(&self.config_path))),
            (None, None) => return Ok(()),
        };
        let reason = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => "it is a file".to_owned(),
            Err(e) => e.to_string(),
        };
        Err(ConfigError::NoSysroot {
            path: path.clone(),
            set_by,
            reason,
        })
    }

    /// The state folder, opened once (with `create`, made if missing);
    /// `None` when it does not exist.
    ///
    /// # Errors
    /// [`FileError`]: the folder, or a folder or link on its path, refused.
    pub fn folder(&self, create: bool) -> Result<Option<&Folder>, FileError> {
        open_folder(&self.folder, &self.options.state_dir, create)
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The state directory.
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.options.state_dir
    }

    /// Fewest hardware/OS components a request needs.
    #[must_use]
    pub fn min_components(&self) -> usize {
        self.config.min_components.unwrap_or(DEFAULT_MIN_COMPONENTS)
    }

    fn sysroot(&self) -> PathBuf {
        self.options
            .sysroot
            .clone()
            .or_else(|| self.config.sysroot.clone())
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn settings(&self, device_key: Option<[u8; 32]>) -> ProbeSettings {
        ProbeSettings {
            ip: self.options.ip.clone().or_else(|| self.config.ip.clone()),
            hw_serial: self.config.hw_serial.clone(),
            platform: self.config.platform.map(Into::into),
            device_key,
        }
    }

    /// Probes the machine, with the device key if one exists (it is not
    /// created here).
    #[must_use]
    pub fn probe(&self) -> Probe {
        let key = self
            .folder(false)
            .map_err(DeviceKeyError::from)
            .and_then(|f| f.map_or(Ok(None), DeviceKey::load));
        let (key, problem) = match key {
            Ok(Some(k)) => (Some(k.public_key()), None),
            Ok(None) => (None, Some(SkipReason::Missing)),
            Err(e) => (None, Some(SkipReason::Unreadable(e.to_string()))),
        };
        let mut probe = Probe::run(&self.sysroot(), &self.settings(key));
        if let Some(reason) = problem {
            probe.skipped.insert(
                0,
                Skipped {
                    source: "state directory: device.key (created by the first request)".into(),
                    reason,
                },
            );
        }
        probe
    }

    pub(crate) fn open_store(&self, create: bool) -> Result<Store, AgentError> {
        let dir = &self.options.state_dir;
        let folder = self
            .folder(create)?
            .ok_or_else(|| AgentError::NoStateDir(dir.clone()))?;
        Store::open_in(
            folder.try_clone()?,
            create,
            self.options.fail_hook,
            LOCK_TIMEOUT,
        )
        .map_err(|e| match e {
            StoreError::NoStateDir(p) => AgentError::NoStateDir(p),
            e => e.into(),
        })
    }

    /// The trusted keys: `--keyring`, else `keyring` of the configuration,
    /// else `keyring.toml` in the state directory.
    ///
    /// # Errors
    /// [`AgentError::NoKeyring`], [`AgentError::Keyring`].
    pub fn keyring(&self) -> Result<Vec<KeyEntry>, AgentError> {
        let named = self
            .options
            .keyring
            .clone()
            .or_else(|| self.config.keyring.clone());
        let path = match named {
            Some(p) => p,
            // Anything there, a dangling link too, is read (and refused).
            None => match self.folder(false)? {
                Some(f) if f.exists(KEYRING_FILE)? => self.options.state_dir.join(KEYRING_FILE),
                _ => {
                    return Err(AgentError::NoKeyring {
                        config: self.config_path.clone(),
                    })
                }
            },
        };
        let bytes = self
            .read_trusted(&path, MAX_KEYRING_LEN, "keyring")?
            .ok_or_else(|| AgentError::Input {
                path: path.display().to_string(),
                reason: "the keyring does not exist; pass --keyring FILE or set `keyring` in agent.toml to the vendor's keyring.toml".into(),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| AgentError::Input {
            path: path.display().to_string(),
            reason: "the keyring is not UTF-8 text; use the vendor's keyring.toml as it was sent"
                .into(),
        })?;
        Keyring::from_toml(&path, &text)
            .map(|k| k.to_entries())
            .map_err(|source| AgentError::Keyring { path, source })
    }

    /// Reads a file the agent trusts (keyring, configuration): through the
    /// state folder's descriptor (never a link) when it lies there, else
    /// by its path, owner and mode checked either way.
    fn read_trusted(
        &self,
        path: &Path,
        cap: u64,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, FileError> {
        if let Some(name) = in_folder(&self.options.state_dir, path) {
            if let Some(folder) = self.folder(false)? {
                return folder.read(name, cap, Access::Shared, what);
            }
        }
        read_file(path, cap, Some(Access::Shared), what)
    }

    pub(crate) fn catalog(&self) -> Result<Option<Catalog>, AgentError> {
        self.options
            .catalog
            .as_ref()
            .or(self.config.catalog.as_ref())
            .map(|p| Catalog::load(p))
            .transpose()
            .map_err(Into::into)
    }

    /// The SW serial: configured, else that of the installed license.
    fn sw_serial(&self, installed: Option<&[u8]>) -> Option<String> {
        self.config.sw_serial.clone().or_else(|| {
            installed
                .and_then(|bytes| decode_license_unverified(bytes).ok())
                .map(|l| l.serial().to_owned())
        })
    }

    fn device(&self, folder: &Folder, installed: Option<&[u8]>) -> Result<Device, AgentError> {
        let mut notes = Vec::new();
        // A broken device key costs one component, not the license.
        let key = match DeviceKey::load(folder) {
            Ok(k) => k.map(|k| k.public_key()),
            Err(e) => {
                notes.push(format!("device key not used: {e}"));
                None
            }
        };
        let probe = Probe::run(&self.sysroot(), &self.settings(key));
        let (identity, skipped) = probe.identity(self.sw_serial(installed).as_deref())?;
        notes.extend(
            skipped
                .iter()
                .map(|s| format!("{} not used: {}", s.source, s.reason)),
        );
        Ok(Device { identity, notes })
    }

    /// What a verification of the installed license needs, read without
    /// storing anything (for the seats): `None` when no license is
    /// installed.
    ///
    /// # Errors
    /// [`AgentError::StateCorrupt`], keyring, device and store errors.
    pub(crate) fn installed(&self, store: &Store) -> Result<Option<Installed>, AgentError> {
        let Some(bytes) = store.read_license()? else {
            return Ok(None);
        };
        let keyring = self.keyring()?;
        let state = stored_state(store)?;
        let device = self.device(store.folder(), Some(&bytes))?;
        Ok(Some(Installed {
            bytes,
            state,
            identity: device.identity,
            keyring,
        }))
    }

    fn read_installed(
        store: &Store,
        notes: &mut Vec<String>,
    ) -> Result<Option<Vec<u8>>, AgentError> {
        match store.read_license() {
            Ok(l) => Ok(l),
            Err(e @ StoreError::LicenseDamaged { .. }) => {
                notes.push(e.to_string());
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a signed request (`spec/FORMAT.md` §7): the SW serial if
    /// known, else the HW serial (first activation of an appliance); the
    /// identity digests under the salt of the installed license's binding
    /// (so the vendor can match it), else a fresh random salt; the license in force
    /// and last renewal from the state; a random nonce; the platform. The
    /// device key is created on first use.
    ///
    /// A refused request leaves nothing behind: too few components and a
    /// missing serial are found before anything is created, and whatever
    /// the request created (the state folder, `lock`, `device.key`, the
    /// fresh `state`) is removed again when it fails later.
    ///
    /// # Errors
    /// [`AgentError::Probe`] when too few components are found,
    /// [`AgentError::NoSerial`], store, device key and random errors.
    pub fn request(&self, now: i64) -> Result<RequestOutcome, AgentError> {
        self.request_then(now, |outcome| Ok(outcome.clone()))
    }

    /// [`Agent::request`], then `deliver` with the request while the state
    /// folder is still locked (writing the request's files): when either
    /// fails, what the request created in the state folder is removed
    /// again, so that no device key is kept for a request nobody received
    /// (the next request makes one, as the first would have).
    ///
    /// # Errors
    /// Those of [`Agent::request`], and `deliver`'s.
    pub fn request_then<T>(
        &self,
        now: i64,
        deliver: impl FnOnce(&RequestOutcome) -> Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        self.request_preflight()?;
        // What was there before, to take back what the request made.
        let before = match self.folder(false)? {
            Some(folder) => Some(folder.names()?),
            None => None,
        };
        let store = self.open_store(true)?;
        match self.make_request(&store, now).and_then(|o| deliver(&o)) {
            Ok(t) => Ok(t),
            Err(e) => {
                Self::take_back(store, before.as_deref());
                Err(e)
            }
        }
    }

    /// The refusals of a request that need no device key, checked before
    /// anything is created: too few components, no serial at all (neither
    /// configured nor probed, and no installed license to take it from).
    fn request_preflight(&self) -> Result<(), AgentError> {
        let probe = Probe::run(&self.sysroot(), &self.settings(None));
        probe.require(self.min_components())?;
        let (identity, _) = probe.identity(self.config.sw_serial.as_deref())?;
        if identity.sw_serial().is_some() || identity.hw_serial().is_some() {
            return Ok(());
        }
        let licensed = match self.folder(false)? {
            Some(folder) => folder.exists(crate::store::LICENSE_FILE)?,
            None => false,
        };
        if licensed {
            // The serial may be the installed license's: decided under the lock.
            return Ok(());
        }
        Err(self.no_serial(&probe))
    }

    /// The refusal of a request without a serial, saying why on this
    /// platform: on a VM or Cloud PBX (detected or configured) a
    /// configured `hw_serial` is ignored, and the fix is `platform = "hw"`
    /// on an appliance or `sw_serial` on a VM.
    fn no_serial(&self, probe: &Probe) -> AgentError {
        let config = self.config_path.clone();
        if probe.platform == Platform::Hw {
            return AgentError::NoSerial { config };
        }
        AgentError::NoSerialOffAppliance {
            config,
            platform: platform_name(probe.platform),
            configured: probe.platform_source == PlatformSource::Config,
            hw_serial_set: self.config.hw_serial.is_some(),
        }
    }

    /// The serial a request made now would carry, and where it comes
    /// from, as [`Agent::request`] chooses it: `sw_serial` of the
    /// configuration, else the installed license's SW serial, else the HW
    /// serial `probe` found (first activation of an appliance).
    ///
    /// # Errors
    /// [`AgentError::NoSerial`] or [`AgentError::NoSerialOffAppliance`]
    /// when there is none (the request would be refused with it);
    /// [`AgentError::Probe`] for an unusable `sw_serial`.
    pub fn request_serial(&self, probe: &Probe) -> Result<RequestSerial, AgentError> {
        if let Some(sw) = &self.config.sw_serial {
            let (identity, _) = probe.identity(Some(sw))?;
            return Ok(RequestSerial {
                kind: "sw",
                value: identity.sw_serial().unwrap_or(sw).to_owned(),
                source: "config: sw_serial".into(),
            });
        }
        // Read without the lock, only to show it: the request decides
        // under the lock, and reports an unreadable license itself.
        let installed = self
            .folder(false)
            .ok()
            .flatten()
            .and_then(|f| {
                f.read(
                    crate::store::LICENSE_FILE,
                    armor::MAX_ARMOR_LEN as u64,
                    Access::Shared,
                    "license file",
                )
                .ok()
                .flatten()
            })
            .and_then(|bytes| {
                let mut buf = [0u8; MAX_OBJECT_LEN];
                let object = armor::read_object(&bytes, armor::LABEL_LICENSE, &mut buf).ok()?;
                decode_license_unverified(object)
                    .ok()
                    .map(|l| l.serial().to_owned())
            });
        if let Some(serial) = installed {
            return Ok(RequestSerial {
                kind: "sw",
                value: serial,
                source: "installed license".into(),
            });
        }
        if let Some(hw) = &probe.hw_serial {
            let source = probe
                .components
                .iter()
                .find(|f| f.kind == ComponentKind::HW_SERIAL)
                .map_or_else(|| "probe".to_owned(), |f| f.source.clone());
            return Ok(RequestSerial {
                kind: "hw",
                value: hw.clone(),
                source,
            });
        }
        Err(self.no_serial(probe))
    }

    /// Removes what a failed request or install created in the state
    /// folder: the license, the device key and the fresh state if they
    /// were not there `before`, then the lock file (still held), then the
    /// folder itself and the parents opening it created, if empty. As far
    /// as it goes: the command's own error is the one reported.
    fn take_back(store: Store, before: Option<&[String]>) {
        let new = |name: &str| !before.is_some_and(|names| names.iter().any(|n| n == name));
        let folder = store.folder();
        for name in [
            crate::store::LICENSE_FILE,
            DEVICE_KEY_FILE,
            STATE_FILE,
            LOCK_FILE,
        ] {
            if new(name) {
                let _ = folder.remove(name);
            }
        }
        let _ = folder.sync();
        let _ = folder.remove_made();
        drop(store);
    }

    fn make_request(&self, store: &Store, now: i64) -> Result<RequestOutcome, AgentError> {
        let mut notes = store.recovered().to_vec();
        let (key, key_created) = match store.device_key() {
            Some(key) => (key, store.key_created()),
            None => return Err(DeviceKeyError::Missing(store.dir().join(DEVICE_KEY_FILE)).into()),
        };
        let installed = Self::read_installed(store, &mut notes)?;
        let probe = Probe::run(&self.sysroot(), &self.settings(Some(key.public_key())));
        probe.require(self.min_components())?;
        let (identity, skipped) =
            probe.identity(self.sw_serial(installed.as_deref()).as_deref())?;
        notes.extend(
            skipped
                .iter()
                .map(|s| format!("{} not in the request: {}", s.source, s.reason)),
        );
        let (current, last_renewal) = match store.read_state()? {
            StoredState::Intact(s) => (s.license_id().zip(s.sequence()), s.last_renewal()),
            StoredState::Missing if !store.has_license()? => (None, None),
            StoredState::Missing | StoredState::Corrupt | StoredState::Unbound(_) => {
                notes.push(
                    "the license state cannot be trusted (corrupt, missing, or not bound to this device): this request names no current license; install the vendor's answer with `tessera-agent install --recover FILE`".into(),
                );
                (None, None)
            }
        };
        let serial = identity.sw_serial().map(str::to_owned);
        let hw_serial = match serial {
            Some(_) => None,
            None => identity.hw_serial().map(str::to_owned),
        };
        if serial.is_none() && hw_serial.is_none() {
            return Err(self.no_serial(&probe));
        }
        // The vendor compares a renewal with the binding in force, which it
        // can only do under that binding's salt (it never sees raw values):
        // with a license installed, reuse its salt; else draw a fresh one.
        let salt = match installed
            .as_deref()
            .and_then(|b| decode_license_unverified(b).ok())
        {
            Some(l) => l.binding().salt,
            None => random16()?,
        };
        let data = RequestData {
            serial,
            hw_serial,
            created_at: now,
            nonce: random16()?,
            platform: probe.platform,
            salt,
            identity: identity.digests(&salt).collect(),
            current,
            last_renewal,
            device_key: key.public_key(),
        };
        let bytes = sign_request(&data, |m| Ok::<_, Infallible>(key.sign(m)))
            .map_err(|e| AgentError::Encode(e.to_string()))?;
        // What the vendor will decode, decoded here first.
        decode_request(&bytes)?;
        Ok(RequestOutcome {
            armored: armor::encode(&bytes, armor::LABEL_REQUEST),
            bytes,
            data,
            probe,
            key_created,
            notes,
        })
    }

    /// Verifies a license for this device and installs it with its state
    /// (license first, then state; see [`crate::store`]).
    ///
    /// `input` is an armored license or its binary form. An older license
    /// than the one installed is refused (`superseded`), as is one that is
    /// not in force yet; the installed license and state are then
    /// unchanged, and a state folder never set up keeps nothing the
    /// install made (no folder, lock file, device key or state). With a corrupt or missing state record, only
    /// `recover = true` proceeds, with the verifier's recovery state: it
    /// accepts only a license issued now, never one the device held
    /// before.
    ///
    /// # Errors
    /// [`AgentError::Refused`] with the verifier's reason,
    /// [`AgentError::StateCorrupt`], [`AgentError::RecoveryNeedsFreshLicense`],
    /// [`AgentError::NotYetValid`], keyring, store and input errors.
    pub fn install(&self, input: &[u8], now: i64, recover: bool) -> Result<Report, AgentError> {
        let bytes = license_bytes(input)?;
        let keyring = self.keyring()?;
        // Named as `status` and `seats` name codes: the configured
        // catalog, else the default one.
        let catalog = Some(self.catalog()?.unwrap_or_else(Catalog::builtin));
        // What was there before, to take back what a refused install
        // made: on a folder never set up, the folder (and the parents it
        // needed), `lock`, `device.key` and the fresh `state`.
        let before = match self.folder(false)? {
            Some(folder) => Some(folder.names()?),
            None => None,
        };
        let store = self.open_store(true)?;
        match self.install_in(&store, &bytes, &keyring, catalog, now, recover) {
            Ok(report) => Ok(report),
            Err(e) => {
                Self::take_back(store, before.as_deref());
                Err(e)
            }
        }
    }

    /// [`Agent::install`] in the opened state folder.
    fn install_in(
        &self,
        store: &Store,
        bytes: &[u8],
        keyring: &[KeyEntry],
        catalog: Option<Catalog>,
        now: i64,
        recover: bool,
    ) -> Result<Report, AgentError> {
        let mut notes = store.recovered().to_vec();
        let installed = Self::read_installed(store, &mut notes)?;
        let (mut state, recovering) = match store.read_state()? {
            StoredState::Intact(s) => (s, false),
            StoredState::Missing if !store.has_license()? => (State::new(), false),
            StoredState::Missing | StoredState::Corrupt | StoredState::Unbound(_) if recover => {
                (State::recovery(now), true)
            }
            other => return Err(state_error(store, other)),
        };
        let device = self.device(store.folder(), installed.as_deref())?;
        notes.extend(device.notes);
        let stored = state;
        let decision = match verify(bytes, keyring, &device.identity, now, &mut state) {
            Ok(d) => {
                if recover && !recovering {
                    notes.push("--recover ignored: the state record is intact and the clock is not behind it".into());
                }
                d
            }
            Err(tessera_verifier::Error::StateCorrupt) if recovering => {
                let issued = decode_license_unverified(bytes)
                    .map(|l| format_time(l.issued_at()))
                    .unwrap_or_default();
                return Err(AgentError::RecoveryNeedsFreshLicense { issued });
            }
            Err(tessera_verifier::Error::ClockRollback) if recover && !recovering => {
                state = clock_reset(&stored, bytes, keyring).map_err(|e| match e {
                    AgentError::Refused(tessera_verifier::Error::WrongSerial) => {
                        wrong_serial(bytes, &device.identity)
                    }
                    e => e,
                })?;
                let reset = state;
                let d =
                    verify(bytes, keyring, &device.identity, now, &mut state).map_err(
                        |e| match (e, reset.last_seen()) {
                            // Behind the new license's issue time: the clock is wrong now.
                            (tessera_verifier::Error::ClockRollback, Some(issued)) => {
                                AgentError::NotYetValid {
                                    starts: format_time(issued),
                                    now: format_time(now),
                                }
                            }
                            (e, _) => e.into(),
                        },
                    )?;
                notes.push(format!(
                    "the recorded time {} (the clock was once set ahead) was reset to the issue time of this newer license, {}",
                    stored.last_seen().map(format_time).unwrap_or_default(),
                    format_time(d.license().issued_at())
                ));
                d
            }
            Err(e) => return Err(refused_license(e, &stored, now, bytes, &device.identity)),
        };
        if decision.verdict() == Verdict::NotYetValid {
            return Err(AgentError::NotYetValid {
                starts: format_time(decision.license().not_before()),
                now: format_time(now),
            });
        }
        if recovering {
            store.keep_corrupt_state()?;
            notes.push("the corrupt state record was kept as state.corrupt for support".into());
        }
        store.save(bytes, &state)?;
        let mut report = Report::new(&decision, &state, now, catalog.as_ref());
        report.notes.extend(notes);
        Ok(report)
    }

    /// The periodic check: verifies the installed license at `now`,
    /// stores the updated state (last time seen) and reports the decision.
    ///
    /// # Errors
    /// [`AgentError::NotActivated`], [`AgentError::StateCorrupt`],
    /// [`AgentError::Refused`] (wrong device, clock rollback, ...), keyring
    /// and store errors. Every error means: no full service.
    pub fn check(&self, now: i64) -> Result<Report, AgentError> {
        self.evaluate(now, true)
    }

    /// As [`Agent::check`] without storing anything (beyond crash
    /// recovery); a configured catalog that cannot be read is refused
    /// (`check` leaves the codes unnamed instead).
    ///
    /// # Errors
    /// As [`Agent::check`], and catalog errors.
    pub fn status(&self, now: i64) -> Result<Report, AgentError> {
        self.evaluate(now, false)
    }

    fn evaluate(&self, now: i64, persist: bool) -> Result<Report, AgentError> {
        let store = self.open_store(false)?;
        let mut notes = store.recovered().to_vec();
        let bytes = store
            .read_license()?
            .ok_or_else(|| AgentError::NotActivated(store.dir().to_owned()))?;
        let keyring = self.keyring()?;
        // Codes are named as `seats` names them: the configured catalog,
        // else the default one. The periodic check must not fail over
        // display names: a configured catalog it cannot read leaves the
        // codes unnamed (a default name could be another vendor's), with
        // a note; `status` refuses it.
        let mut catalog_note = None;
        let catalog = match self.catalog() {
            Ok(c) => Some(c.unwrap_or_else(Catalog::builtin)),
            Err(e) if persist => {
                catalog_note = Some(format!("entitlements are shown by code only: {e}"));
                None
            }
            Err(e) => return Err(e),
        };
        let state = stored_state(&store)?;
        let device = self.device(store.folder(), Some(&bytes))?;
        notes.extend(device.notes);
        let mut next = state;
        let decision = verify(&bytes, &keyring, &device.identity, now, &mut next)
            .map_err(|e| refused_license(e, &state, now, &bytes, &device.identity))?;
        // A full or failing disk costs no service: the verdict was judged
        // against the state on disk, which stays as it was (so the clock
        // is judged against the last time saved); the report says so.
        let mut unsaved = None;
        if persist && next != state {
            match store.save_state(&next) {
                Ok(()) => {}
                Err(StoreError::File(e @ FileError::Io { .. })) => unsaved = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        let mut report = Report::new(&decision, &next, now, catalog.as_ref());
        if let Some(e) = unsaved {
            report.state_saved = false;
            report
                .notes
                .push(format!("{}: {e}", crate::report::STATE_NOT_SAVED));
        }
        report.notes.extend(notes);
        report.notes.extend(catalog_note);
        // The seats never make the check fail: problems become notes.
        let (over, seat_notes) = crate::seats::session::over_assigned_report(
            self,
            store.folder(),
            &decision,
            &keyring,
            now,
            catalog.as_ref(),
        );
        report.over_assigned = over;
        report.notes.extend(seat_notes);
        Ok(report)
    }
}

/// The license bytes of install input: armored text (`TESSERA LICENSE`),
/// the binary COSE_Sign1 ([`armor::read_object`] tells them apart), a
/// PNG or JPEG image (a photo, a screenshot) of the license's QR code, or
/// the SVG image of it that `tessera issue --qr-svg` writes.
///
/// # Errors
/// [`AgentError::Refused`] with the armor error, or for binary input that
/// is no license the decoder's reason (another COSE tag, no tag, ...);
/// [`AgentError::Qr`] for an image without one readable code.
pub fn license_bytes(input: &[u8]) -> Result<Vec<u8>, AgentError> {
    if tessera_qr::is_image(input) {
        // A photo or screenshot of the license's QR code: its payload is
        // the binary license (never read as an image again).
        let payload = tessera_qr::decode_image(input)?;
        return license_bytes_of(&payload, "this image's QR code holds");
    }
    if tessera_qr::is_svg(input) {
        // The SVG image `tessera issue --qr-svg` (or `request --qr-svg`)
        // writes.
        let payload = tessera_qr::decode_svg(input)?;
        return license_bytes_of(&payload, "this image's QR code holds");
    }
    license_bytes_of(input, "this file is")
}

/// The license in `input` (armored or binary); `holder` says, for a
/// tessera object of another kind, where it was found.
fn license_bytes_of(input: &[u8], holder: &'static str) -> Result<Vec<u8>, AgentError> {
    let mut buf = [0u8; MAX_OBJECT_LEN];
    let bytes = armor::read_object(input, armor::LABEL_LICENSE, &mut buf).map_err(|e| {
        match (&e, other_label(input)) {
            (
                tessera_verifier::Error::Armor(tessera_verifier::ArmorError::WrongLabel),
                Some(label),
            ) => not_a_license(label),
            _ => e.into(),
        }
    })?;
    tessera_verifier::cose::parse_as(bytes, tessera_verifier::ObjectType::License).map_err(
        |e| match (&e, tessera_verifier::cose::parse(bytes)) {
            (tessera_verifier::Error::WrongType, Ok(object)) => {
                let label = match object.object_type {
                    tessera_verifier::ObjectType::Request => armor::LABEL_REQUEST,
                    tessera_verifier::ObjectType::Checkpoint => armor::LABEL_CHECKPOINT,
                    // Not reached: a license parses as one.
                    tessera_verifier::ObjectType::License => return AgentError::from(e),
                };
                let (found, advice) = kind_and_advice(label);
                AgentError::WrongObject {
                    holder,
                    found,
                    advice,
                }
            }
            _ => e.into(),
        },
    )?;
    Ok(bytes.to_vec())
}

/// The label of the first armored block in `input` (at most 64
/// characters of it), if there is one.
fn other_label(input: &[u8]) -> Option<String> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let start = input.windows(BEGIN.len()).position(|w| w == BEGIN)? + BEGIN.len();
    let rest = input.get(start..)?;
    let end = rest.windows(5).position(|w| w == b"-----")?.min(64);
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

/// The error for an armored file labelled `label` given where a license
/// was expected: which kind it is, and what to do.
fn not_a_license(label: String) -> AgentError {
    let (found, advice) = kind_and_advice(&label);
    AgentError::NotALicense {
        found,
        label,
        advice,
    }
}

/// What a tessera object with the armor label `label` is, in words, and
/// what to do when it was given where a license was expected.
fn kind_and_advice(label: &str) -> (&'static str, &'static str) {
    match label {
        armor::LABEL_REQUEST => (
            "a tessera request",
            "a request goes to the vendor (`tessera issue` or `tessera renew` answers it); install the license file the vendor sends back",
        ),
        armor::LABEL_CHECKPOINT => (
            "a ledger checkpoint of the vendor",
            "install the license file the vendor sent for this PBX",
        ),
        _ => (
            "another kind of file",
            "install the license file the vendor sent for this PBX",
        ),
    }
}

/// The agent's error for a license the verifier refused at `now` with the
/// stored `state`: a clock rollback says what time was recorded and how to
/// recover.
pub(crate) fn refused(e: tessera_verifier::Error, state: &State, now: i64) -> AgentError {
    match (e, state.last_seen()) {
        (tessera_verifier::Error::ClockRollback, Some(seen)) => AgentError::ClockRollback {
            last_seen: format_time(seen),
            now: format_time(now),
        },
        (e, _) => e.into(),
    }
}

/// [`refused`] for the license `bytes` judged for the device `identity`:
/// a license for another serial names both serials.
pub(crate) fn refused_license(
    e: tessera_verifier::Error,
    state: &State,
    now: i64,
    bytes: &[u8],
    identity: &DeviceIdentity,
) -> AgentError {
    match e {
        tessera_verifier::Error::WrongSerial => wrong_serial(bytes, identity),
        e => refused(e, state, now),
    }
}

/// The refusal of the license `bytes` for another serial than the device
/// `identity`'s, naming both (`spec/RUNTIME.md` §3: the SW serial, else on
/// a first activation the HW serial the license converts; else the
/// serial the device's state belongs to).
fn wrong_serial(bytes: &[u8], identity: &DeviceIdentity) -> AgentError {
    let Ok(l) = decode_license_unverified(bytes) else {
        return tessera_verifier::Error::WrongSerial.into();
    };
    let license = match l.previous_serial() {
        Some(hw) => format!(
            "SW serial {} (first activation of HW serial {hw})",
            l.serial()
        ),
        None => format!("SW serial {}", l.serial()),
    };
    let device = match (identity.sw_serial(), identity.hw_serial()) {
        (Some(sw), _) if sw == l.serial() => {
            "the same serial, but its license state belongs to another serial (the state of another PBX's license)".to_owned()
        }
        (Some(sw), _) => format!("SW serial {sw}"),
        (None, Some(hw)) => format!("HW serial {hw}"),
        (None, None) => "another serial (the one its license state belongs to)".to_owned(),
    };
    AgentError::WrongSerial { license, device }
}

/// The state to verify `bytes` from after a clock set ahead
/// (`spec/RUNTIME.md` §6.3, "Recovery from a clock set ahead"): only for a
/// vendor-signed license of the state's serial with a higher sequence than
/// the license in force, the recovery state whose recorded time and floor
/// are that license's issue time (a time the vendor vouches has passed).
/// Binding and the clock against the new time are for `verify` to judge.
fn clock_reset(state: &State, bytes: &[u8], keyring: &[KeyEntry]) -> Result<State, AgentError> {
    let license = tessera_verifier::decode_license(bytes, keyring)?;
    let in_force = state.sequence().unwrap_or(0);
    if state.sequence().is_none() || license.sequence() <= in_force {
        return Err(AgentError::RecoveryNeedsNewerLicense {
            in_force,
            given: license.sequence(),
        });
    }
    if state.serial_digest() != Some(tessera_verifier::state::serial_digest(license.serial())) {
        return Err(tessera_verifier::Error::WrongSerial.into());
    }
    Ok(State::recovery(license.issued_at()))
}

/// The state record in force, or why there is none to trust.
fn stored_state(store: &Store) -> Result<State, AgentError> {
    match store.read_state()? {
        StoredState::Intact(s) => Ok(s),
        other => Err(state_error(store, other)),
    }
}

/// The error for a state record that cannot be used.
fn state_error(store: &Store, found: StoredState) -> AgentError {
    let path = store.dir().join(STATE_FILE);
    match found {
        StoredState::Unbound(why) => AgentError::StateUnbound { path, why },
        _ => AgentError::StateCorrupt(path),
    }
}

/// The name of `path` when it lies directly in the state folder `dir`, as
/// written (another spelling is walked and checked on its own).
fn in_folder<'a>(dir: &Path, path: &'a Path) -> Option<&'a str> {
    let name = path.file_name()?.to_str()?;
    (path.parent()? == dir).then_some(name)
}

/// The folder in `cell`, opened (walked and checked) the first time.
fn open_folder<'a>(
    cell: &'a std::sync::OnceLock<Folder>,
    dir: &Path,
    create: bool,
) -> Result<Option<&'a Folder>, FileError> {
    if let Some(folder) = cell.get() {
        return Ok(Some(folder));
    }
    match Folder::open(dir, create)? {
        Some(folder) => Ok(Some(cell.get_or_init(|| folder))),
        None => Ok(None),
    }
}

fn random16() -> Result<[u8; 16], AgentError> {
    let mut out = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| AgentError::Random(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
