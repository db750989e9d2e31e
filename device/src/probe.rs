//! Identity probe: what this Linux machine is, read from sysfs, procfs and
//! the agent configuration (`spec/FORMAT.md` §5.3.4 component kinds).
//!
//! | kind | source |
//! |---|---|
//! | HW serial | `hw_serial` in the configuration, else DMI `product_serial`, else `board_serial` (platform hw only) |
//! | device key | the agent's own Ed25519 key in the state directory |
//! | IP address | `ip` in the configuration (or `--ip`); never DHCP |
//! | system / VM UUID | `/sys/class/dmi/id/product_uuid` |
//! | machine id | `/etc/machine-id` |
//! | CPU id | the `Serial` line of `/proc/cpuinfo` (ARM boards) |
//! | NIC MAC | `/sys/class/net/*/address`, physical interfaces only |
//! | disk serial | `/sys/block/*/device/serial` (virtio: `/sys/block/*/serial`; else SCSI VPD page 0x80), not loop/ram/zram/dm |
//!
//! Every path is read below a *sysroot* (`/` on a device, a temporary tree
//! in tests). A missing, unreadable, malformed or placeholder value is
//! skipped and listed with the reason; the probe itself never fails and
//! never panics, whatever the tree holds. Whether enough was found is
//! decided by the caller ([`Probe::require`]).
//!
//! Values are validated with the verifier's [`normalize`]: the digests the
//! vendor binds to are computed by the verifier's code, never by a copy.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};
use tessera_verifier::binding::{normalize, DeviceIdentity, IdentityError, MAX_VALUE_LEN};
use tessera_verifier::claims::{ComponentKind, Platform};

/// Fewest hardware/OS components (the device key not counted) a request
/// needs unless the configuration says otherwise.
pub const DEFAULT_MIN_COMPONENTS: usize = 2;
/// Largest sysfs attribute or small file read, in bytes.
pub const MAX_ATTRIBUTE_LEN: u64 = 4096;
/// Largest `/proc/cpuinfo` read, in bytes.
pub const MAX_CPUINFO_LEN: u64 = 1 << 20;
/// Most entries of `/sys/class/net` or `/sys/block` looked at.
pub const MAX_DIR_ENTRIES: usize = 64;

/// The files the probe reads, relative to the sysroot.
pub mod paths {
    /// DMI system UUID (root-only readable on most systems).
    pub const PRODUCT_UUID: &str = "sys/class/dmi/id/product_uuid";
    /// DMI system serial number.
    pub const PRODUCT_SERIAL: &str = "sys/class/dmi/id/product_serial";
    /// DMI board serial number.
    pub const BOARD_SERIAL: &str = "sys/class/dmi/id/board_serial";
    /// DMI system vendor.
    pub const SYS_VENDOR: &str = "sys/class/dmi/id/sys_vendor";
    /// DMI product name.
    pub const PRODUCT_NAME: &str = "sys/class/dmi/id/product_name";
    /// Network interfaces.
    pub const NET: &str = "sys/class/net";
    /// Block devices.
    pub const BLOCK: &str = "sys/block";
    /// systemd machine id.
    pub const MACHINE_ID: &str = "etc/machine-id";
    /// CPU information.
    pub const CPUINFO: &str = "proc/cpuinfo";
}

/// The catalog name of a component kind, as the issuer writes it
/// ([`ComponentKind::name`]; `unknown` for kinds this version does not know).
#[must_use]
pub fn kind_name(kind: ComponentKind) -> &'static str {
    kind.name().unwrap_or("unknown")
}

/// The configuration name of a platform (`hw`, `vm`, `cloud`).
#[must_use]
pub fn platform_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Hw => "hw",
        Platform::Vm => "vm",
        Platform::Cloud => "cloud",
    }
}

fn ser_kind<S: Serializer>(kind: &ComponentKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind_name(*kind))
}

fn ser_platform<S: Serializer>(p: &Platform, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(platform_name(*p))
}

/// What the probe takes from outside the file system.
#[derive(Clone, Debug, Default)]
pub struct ProbeSettings {
    /// The bound IP address (configuration or `--ip`).
    pub ip: Option<String>,
    /// The HW serial printed on the appliance (configuration).
    pub hw_serial: Option<String>,
    /// Platform override (configuration); `None` detects it.
    pub platform: Option<Platform>,
    /// The agent's device public key, once it has one.
    pub device_key: Option<[u8; 32]>,
}

/// One identity component found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Component kind.
    #[serde(serialize_with = "ser_kind")]
    pub kind: ComponentKind,
    /// Where it was read (a path on the device, or `config: KEY`).
    pub source: String,
    /// The normalized value (hex for the device key).
    pub value: String,
    #[serde(skip)]
    raw: Vec<u8>,
}

/// Why a candidate component was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The file does not exist.
    Missing,
    /// The file exists but could not be read (the I/O error).
    Unreadable(String),
    /// Not a regular file (a directory, a FIFO, ...).
    NotAFile,
    /// Larger than any value of its kind.
    TooLarge,
    /// Not valid for its kind (the verifier's reason).
    Invalid(String),
    /// A firmware placeholder such as `To Be Filled By O.E.M.`: it would
    /// bind to every machine with the same firmware.
    Placeholder,
    /// The loopback interface.
    Loopback,
    /// A virtual interface (veth, tun, bond, VLAN ...).
    Virtual,
    /// A bridge.
    Bridge,
    /// An all-zero MAC address.
    ZeroMac,
    /// A random MAC address, new at every boot.
    RandomMac,
    /// A loop, RAM or device-mapper block device.
    Excluded,
    /// Hardware serials are bound on appliances only.
    NotAppliance,
    /// The bound IP address is not configured.
    NotConfigured,
    /// More directory entries than [`MAX_DIR_ENTRIES`].
    TooMany,
    /// The same value was already found elsewhere.
    Duplicate(String),
    /// The device identity already holds its maximum of components.
    IdentityFull,
}

impl SkipReason {
    /// A stable code, as in the JSON output.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Unreadable(_) => "unreadable",
            Self::NotAFile => "not_a_file",
            Self::TooLarge => "too_large",
            Self::Invalid(_) => "invalid",
            Self::Placeholder => "placeholder",
            Self::Loopback => "loopback",
            Self::Virtual => "virtual",
            Self::Bridge => "bridge",
            Self::ZeroMac => "zero_mac",
            Self::RandomMac => "random_mac",
            Self::Excluded => "excluded",
            Self::NotAppliance => "not_appliance",
            Self::NotConfigured => "not_configured",
            Self::TooMany => "too_many",
            Self::Duplicate(_) => "duplicate",
            Self::IdentityFull => "identity_full",
        }
    }
}

impl core::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing => f.write_str("not present on this system"),
            Self::Unreadable(e) => write!(f, "unreadable ({e}); run the agent as root"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::TooLarge => f.write_str("larger than any value of this kind"),
            Self::Invalid(e) => write!(f, "not a valid value: {e}"),
            Self::Placeholder => f.write_str("a firmware placeholder, not a real identifier"),
            Self::Loopback => f.write_str("loopback interface"),
            Self::Virtual => f.write_str("virtual interface"),
            Self::Bridge => f.write_str("bridge interface"),
            Self::ZeroMac => f.write_str("all-zero MAC address"),
            Self::RandomMac => f.write_str("random MAC address (changes at every boot)"),
            Self::Excluded => f.write_str("loop, RAM or device-mapper device"),
            Self::NotAppliance => {
                f.write_str("hardware serials are bound on appliances only (platform hw)")
            }
            Self::NotConfigured => f.write_str(
                "not configured: set `ip` in agent.toml (or --ip) to bind the PBX's fixed address",
            ),
            Self::TooMany => write!(
                f,
                "more than {MAX_DIR_ENTRIES} entries; the rest are ignored"
            ),
            Self::Duplicate(other) => write!(f, "same value as {other}"),
            Self::IdentityFull => f.write_str("the device identity already holds 16 components"),
        }
    }
}

/// A candidate component that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Where it was looked for.
    pub source: String,
    /// Why it was not used.
    pub reason: SkipReason,
}

impl Serialize for Skipped {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Skipped", 3)?;
        st.serialize_field("source", &self.source)?;
        st.serialize_field("reason", self.reason.code())?;
        st.serialize_field("detail", &self.reason.to_string())?;
        st.end()
    }
}

/// Whether the system runs under a hypervisor, and what says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Virtualization {
    /// A hypervisor was detected.
    pub is_virtual: bool,
    /// The evidence, e.g. `sys_vendor: QEMU`.
    pub evidence: Vec<String>,
}

/// Where the platform came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformSource {
    /// The configuration says so.
    Config,
    /// Detected: VM under a hypervisor, else HW.
    Detected,
}

/// Why the probe's result cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Fewer hardware/OS components than required.
    #[error(
        "only {found} identity component(s) found, {needed} needed; see `tessera-agent probe` for what was skipped and why (run as root, set `ip` or `hw_serial` in agent.toml)"
    )]
    TooFew {
        /// Components found (the device key not counted).
        found: usize,
        /// Components required.
        needed: usize,
    },
    /// The configured SW serial cannot be used.
    #[error("the SW serial `{serial}` cannot be used: {reason}")]
    SwSerial {
        /// The serial.
        serial: String,
        /// The verifier's reason.
        reason: IdentityError,
    },
}

/// The result of probing a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The platform used in requests.
    #[serde(serialize_with = "ser_platform")]
    pub platform: Platform,
    /// Whether the platform was configured or detected.
    pub platform_source: PlatformSource,
    /// Hypervisor detection.
    pub virtualization: Virtualization,
    /// The normalized HW serial, on an appliance.
    pub hw_serial: Option<String>,
    /// Components found, in the order they enter the identity.
    pub components: Vec<Found>,
    /// Candidates not used.
    pub skipped: Vec<Skipped>,
}

impl Probe {
    /// Probes the machine whose root is `sysroot`. Never fails: problems
    /// are listed in [`Probe::skipped`].
    #[must_use]
    pub fn run(sysroot: &Path, settings: &ProbeSettings) -> Self {
        let mut c = Collector {
            root: sysroot.to_owned(),
            found: Vec::new(),
            skipped: Vec::new(),
        };
        let sys_vendor = c.read_info(paths::SYS_VENDOR);
        let product_name = c.read_info(paths::PRODUCT_NAME);
        let cpuinfo = c
            .read(paths::CPUINFO, MAX_CPUINFO_LEN)
            .map(|bytes| parse_cpuinfo(&String::from_utf8_lossy(&bytes)));
        let cpu = cpuinfo.clone().unwrap_or_default();
        let virtualization = detect_virtualization(
            sys_vendor.as_deref(),
            product_name.as_deref(),
            cpu.hypervisor,
        );
        let (platform, platform_source) = match settings.platform {
            Some(p) => (p, PlatformSource::Config),
            None if virtualization.is_virtual => (Platform::Vm, PlatformSource::Detected),
            None => (Platform::Hw, PlatformSource::Detected),
        };

        let hw_serial = c.hw_serial(platform, settings.hw_serial.as_deref());
        if let Some(key) = settings.device_key {
            c.accept(
                ComponentKind::DEVICE_KEY,
                "state directory: device.key",
                &key,
            );
        }
        match &settings.ip {
            Some(ip) => c.accept(ComponentKind::IP_ADDR, "config: ip", ip.as_bytes()),
            None => c.skip("config: ip", SkipReason::NotConfigured),
        }
        if let Some(raw) = c.read_file(paths::PRODUCT_UUID, MAX_ATTRIBUTE_LEN) {
            if is_placeholder_uuid(&raw) {
                c.skip(&source(paths::PRODUCT_UUID), SkipReason::Placeholder);
            } else {
                c.accept(
                    ComponentKind::SYSTEM_UUID,
                    &source(paths::PRODUCT_UUID),
                    &raw,
                );
            }
        }
        if let Some(raw) = c.read_file(paths::MACHINE_ID, MAX_ATTRIBUTE_LEN) {
            if is_machine_id(&raw) {
                c.accept(ComponentKind::MACHINE_ID, &source(paths::MACHINE_ID), &raw);
            } else {
                c.skip(
                    &source(paths::MACHINE_ID),
                    SkipReason::Invalid("not 32 hex digits (uninitialized?)".into()),
                );
            }
        }
        let cpu_source = "/proc/cpuinfo: Serial";
        match (cpuinfo, cpu.serial) {
            (None, _) => {}
            (Some(_), None) => c.skip(cpu_source, SkipReason::Missing),
            (Some(_), Some(serial)) if is_placeholder(serial.as_bytes()) => {
                c.skip(cpu_source, SkipReason::Placeholder);
            }
            (Some(_), Some(serial)) => {
                c.accept(ComponentKind::CPU_ID, cpu_source, serial.as_bytes())
            }
        }
        c.nics();
        c.disks();

        Self {
            platform,
            platform_source,
            virtualization,
            hw_serial,
            components: c.found,
            skipped: c.skipped,
        }
    }

    /// Components that identify the hardware or OS installation: all but
    /// the device key, which is a file and moves with a disk image.
    #[must_use]
    pub fn hardware_components(&self) -> usize {
        self.components
            .iter()
            .filter(|f| f.kind != ComponentKind::DEVICE_KEY)
            .count()
    }

    /// Checks that at least `min` hardware/OS components were found.
    ///
    /// # Errors
    /// [`ProbeError::TooFew`].
    pub fn require(&self, min: usize) -> Result<(), ProbeError> {
        let found = self.hardware_components();
        if found < min {
            Err(ProbeError::TooFew { found, needed: min })
        } else {
            Ok(())
        }
    }

    /// The verifier's [`DeviceIdentity`] for these components, with the
    /// SW serial if the device has one. Components that do not fit
    /// (more than 16) are returned as skipped.
    ///
    /// # Errors
    /// [`ProbeError::SwSerial`] for an unusable SW serial.
    pub fn identity(
        &self,
        sw_serial: Option<&str>,
    ) -> Result<(DeviceIdentity, Vec<Skipped>), ProbeError> {
        let mut id = DeviceIdentity::new();
        if let Some(serial) = sw_serial {
            id.set_sw_serial(serial)
                .map_err(|reason| ProbeError::SwSerial {
                    serial: serial.to_owned(),
                    reason,
                })?;
        }
        let mut skipped = Vec::new();
        for f in &self.components {
            let added = if f.kind == ComponentKind::HW_SERIAL && self.hw_serial.is_some() {
                core::str::from_utf8(&f.raw)
                    .map_err(|_| IdentityError::Invalid)
                    .and_then(|s| id.set_hw_serial(s))
            } else {
                id.add(f.kind, &f.raw)
            };
            if let Err(e) = added {
                let reason = match e {
                    IdentityError::Full => SkipReason::IdentityFull,
                    other => SkipReason::Invalid(other.to_string()),
                };
                skipped.push(Skipped {
                    source: f.source.clone(),
                    reason,
                });
            }
        }
        Ok((id, skipped))
    }

    /// A report for people: one line per component and per skipped
    /// candidate.
    #[must_use]
    pub fn render(&self) -> String {
        use core::fmt::Write as _;
        let mut out = String::new();
        let source = match self.platform_source {
            PlatformSource::Config => "configured",
            PlatformSource::Detected => "detected",
        };
        let _ = writeln!(out, "platform: {} ({source})", platform_name(self.platform));
        if self.virtualization.is_virtual {
            let _ = writeln!(
                out,
                "hypervisor: yes ({})",
                self.virtualization.evidence.join(", ")
            );
        } else {
            let _ = writeln!(out, "hypervisor: none detected");
        }
        if let Some(hw) = &self.hw_serial {
            let _ = writeln!(out, "hw serial: {hw}");
        }
        let _ = writeln!(out, "components ({}):", self.components.len());
        for f in &self.components {
            let _ = writeln!(
                out,
                "  {:<12} {:<40} {}",
                kind_name(f.kind),
                f.value,
                f.source
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "skipped ({}):", self.skipped.len());
            for s in &self.skipped {
                let _ = writeln!(out, "  {:<40} {}", s.source, s.reason);
            }
        }
        out
    }
}

/// `/`-rooted display name of a sysroot-relative path.
fn source(rel: &str) -> String {
    format!("/{rel}")
}

struct Collector {
    root: PathBuf,
    found: Vec<Found>,
    skipped: Vec<Skipped>,
}

impl Collector {
    fn skip(&mut self, source: &str, reason: SkipReason) {
        self.skipped.push(Skipped {
            source: source.to_owned(),
            reason,
        });
    }

    /// Reads a file below the root without reporting problems (for files
    /// that are not components themselves).
    fn read(&self, rel: &str, cap: u64) -> Option<Vec<u8>> {
        read_capped(&self.root.join(rel), cap).ok()
    }

    /// A DMI string used only for detection: never reported.
    fn read_info(&self, rel: &str) -> Option<String> {
        self.read(rel, MAX_ATTRIBUTE_LEN)
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    }

    /// Reads a component file, reporting every problem under its source.
    fn read_file(&mut self, rel: &str, cap: u64) -> Option<Vec<u8>> {
        match read_capped(&self.root.join(rel), cap) {
            Ok(bytes) => Some(bytes),
            Err(reason) => {
                self.skip(&source(rel), reason);
                None
            }
        }
    }

    /// Validates `raw` as `kind` with the verifier's normalization and
    /// keeps it unless the same value was already found.
    fn accept(&mut self, kind: ComponentKind, source: &str, raw: &[u8]) {
        let mut buf = [0u8; MAX_VALUE_LEN];
        let value = match normalize(kind, raw, &mut buf) {
            Ok(v) if kind == ComponentKind::DEVICE_KEY => hex::encode(v),
            Ok(v) => String::from_utf8_lossy(v).into_owned(),
            Err(e) => {
                self.skip(source, SkipReason::Invalid(e.to_string()));
                return;
            }
        };
        if let Some(other) = self
            .found
            .iter()
            .find(|f| f.kind == kind && f.value == value)
        {
            let reason = SkipReason::Duplicate(other.source.clone());
            self.skip(source, reason);
            return;
        }
        self.found.push(Found {
            kind,
            source: source.to_owned(),
            value,
            raw: raw.to_vec(),
        });
    }

    /// The appliance's HW serial: configured, else DMI product serial,
    /// else board serial. Only on platform hw.
    fn hw_serial(&mut self, platform: Platform, configured: Option<&str>) -> Option<String> {
        if platform != Platform::Hw {
            if configured.is_some() {
                self.skip("config: hw_serial", SkipReason::NotAppliance);
            }
            for rel in [paths::PRODUCT_SERIAL, paths::BOARD_SERIAL] {
                if self.root.join(rel).exists() {
                    self.skip(&source(rel), SkipReason::NotAppliance);
                }
            }
            return None;
        }
        let before = self.found.len();
        if let Some(serial) = configured {
            self.accept(
                ComponentKind::HW_SERIAL,
                "config: hw_serial",
                serial.as_bytes(),
            );
        } else {
            for rel in [paths::PRODUCT_SERIAL, paths::BOARD_SERIAL] {
                let Some(raw) = self.read_file(rel, MAX_ATTRIBUTE_LEN) else {
                    continue;
                };
                if is_placeholder(&raw) {
                    self.skip(&source(rel), SkipReason::Placeholder);
                    continue;
                }
                self.accept(ComponentKind::HW_SERIAL, &source(rel), &raw);
                if self.found.len() > before {
                    break;
                }
            }
        }
        self.found.get(before).map(|f| f.value.clone())
    }

    fn nics(&mut self) {
        let dir = self.root.join(paths::NET);
        let Some(names) = self.list(paths::NET) else {
            return;
        };
        for name in names {
            let src = format!("/{}/{name}", paths::NET);
            let iface = dir.join(&name);
            if name == "lo" {
                self.skip(&src, SkipReason::Loopback);
                continue;
            }
            // In sysfs every interface is a symlink to its device; virtual
            // ones (veth, tun, bond, VLAN, dummy) live under devices/virtual.
            if let Ok(target) = fs::read_link(&iface) {
                if target.to_string_lossy().contains("devices/virtual/") {
                    self.skip(&src, SkipReason::Virtual);
                    continue;
                }
            }
            if iface.join("bridge").is_dir() {
                self.skip(&src, SkipReason::Bridge);
                continue;
            }
            let rel = format!("{}/{name}/address", paths::NET);
            // addr_assign_type 1: a random address, new at every boot.
            if let Some(t) = self.read(&format!("{}/{name}/addr_assign_type", paths::NET), 16) {
                if t.trim_ascii() == b"1" {
                    self.skip(&source(&rel), SkipReason::RandomMac);
                    continue;
                }
            }
            let Some(raw) = self.read_file(&rel, MAX_ATTRIBUTE_LEN) else {
                continue;
            };
            if is_zero_mac(&raw) {
                self.skip(&source(&rel), SkipReason::ZeroMac);
                continue;
            }
            self.accept(ComponentKind::NIC_MAC, &source(&rel), &raw);
        }
    }

    fn disks(&mut self) {
        let Some(names) = self.list(paths::BLOCK) else {
            return;
        };
        for name in names {
            if ["loop", "ram", "zram", "dm-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                self.skip(&format!("/{}/{name}", paths::BLOCK), SkipReason::Excluded);
                continue;
            }
            // SATA/SCSI/NVMe: device/serial; virtio: serial; SCSI disks
            // without it: the unit serial number VPD page.
            let serial = format!("{}/{name}/device/serial", paths::BLOCK);
            let virtio = format!("{}/{name}/serial", paths::BLOCK);
            let vpd = format!("{}/{name}/device/vpd_pg80", paths::BLOCK);
            let mut found = None;
            for rel in [&serial, &virtio, &vpd] {
                match read_capped(&self.root.join(rel), MAX_ATTRIBUTE_LEN) {
                    Err(SkipReason::Missing) => {}
                    Err(reason) => {
                        found = Some(Err((source(rel), reason)));
                        break;
                    }
                    Ok(raw) if rel == &vpd => {
                        found = Some(match parse_vpd_serial(&raw) {
                            Some(s) => Ok((source(rel), s.to_vec())),
                            None => Err((
                                source(rel),
                                SkipReason::Invalid("not a unit serial number page".into()),
                            )),
                        });
                        break;
                    }
                    Ok(raw) => {
                        found = Some(Ok((source(rel), raw)));
                        break;
                    }
                }
            }
            let (src, raw) = match found {
                Some(Ok(found)) => found,
                Some(Err((src, reason))) => {
                    self.skip(&src, reason);
                    continue;
                }
                None => {
                    self.skip(&source(&serial), SkipReason::Missing);
                    continue;
                }
            };
            if is_placeholder(&raw) {
                self.skip(&src, SkipReason::Placeholder);
                continue;
            }
            self.accept(ComponentKind::DISK_SERIAL, &src, &raw);
        }
    }

    /// Sorted UTF-8 entry names of a directory, at most
    /// [`MAX_DIR_ENTRIES`]; problems are reported.
    fn list(&mut self, rel: &str) -> Option<Vec<String>> {
        let entries = match fs::read_dir(self.root.join(rel)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.skip(&source(rel), SkipReason::Missing);
                return None;
            }
            Err(e) => {
                self.skip(&source(rel), SkipReason::Unreadable(e.to_string()));
                return None;
            }
        };
        let mut names = Vec::new();
        let mut more = false;
        for entry in entries {
            let Ok(entry) = entry else { continue };
            match entry.file_name().into_string() {
                Ok(name) if names.len() < MAX_DIR_ENTRIES * 4 => names.push(name),
                Ok(_) => more = true,
                Err(raw) => self.skip(
                    &format!("/{rel}/{}", raw.to_string_lossy()),
                    SkipReason::Invalid("the name is not UTF-8".into()),
                ),
            }
        }
        names.sort();
        if names.len() > MAX_DIR_ENTRIES {
            names.truncate(MAX_DIR_ENTRIES);
            more = true;
        }
        if more {
            self.skip(&source(rel), SkipReason::TooMany);
        }
        Some(names)
    }
}

/// Reads at most `cap` bytes of a regular file.
///
/// # Errors
/// [`SkipReason::Missing`], [`SkipReason::NotAFile`] (directories, FIFOs
/// and devices are never opened, so a strange tree cannot block the
/// probe), [`SkipReason::Unreadable`], [`SkipReason::TooLarge`].
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, SkipReason> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SkipReason::Missing),
        Err(e) => return Err(SkipReason::Unreadable(e.to_string())),
    };
    if !meta.is_file() {
        return Err(SkipReason::NotAFile);
    }
    let file = File::open(path).map_err(|e| SkipReason::Unreadable(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| SkipReason::Unreadable(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(SkipReason::TooLarge);
    }
    Ok(bytes)
}

/// What the probe takes from `/proc/cpuinfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// The first non-empty `Serial` value (ARM boards).
    pub serial: Option<String>,
    /// Whether a `flags` line lists `hypervisor`.
    pub hypervisor: bool,
}

/// Parses `/proc/cpuinfo` text (`key<TAB>: value` lines; anything else is
/// ignored).
///
/// ```
/// let info = tessera_device::probe::parse_cpuinfo("processor\t: 0\nflags\t\t: fpu hypervisor\nSerial\t\t: 10000000ab12cd34\n");
/// assert!(info.hypervisor);
/// assert_eq!(info.serial.as_deref(), Some("10000000ab12cd34"));
/// ```
#[must_use]
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("serial") && info.serial.is_none() && !value.is_empty() {
            info.serial = Some(value.to_owned());
        }
        if key == "flags" && value.split_ascii_whitespace().any(|f| f == "hypervisor") {
            info.hypervisor = true;
        }
    }
    info
}

/// The serial number of a SCSI unit serial number VPD page (0x80):
/// 4-byte header with the page length, then ASCII, often padded with
/// spaces (trimmed later by normalization) or NULs (removed here: the
/// verifier refuses control characters rather than guess).
///
/// ```
/// let page = b"\x00\x80\x00\x08 WD123\x00\x00";
/// assert_eq!(tessera_device::probe::parse_vpd_serial(page), Some(&b" WD123"[..]));
/// ```
#[must_use]
pub fn parse_vpd_serial(page: &[u8]) -> Option<&[u8]> {
    let [_, code, hi, lo, rest @ ..] = page else {
        return None;
    };
    if *code != 0x80 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
    let mut serial = rest.get(..len)?;
    while let [head @ .., 0] = serial {
        serial = head;
    }
    Some(serial)
}

/// Firmware placeholders that identify no machine (case and surrounding
/// whitespace ignored), and values of one repeated character
/// (`00000000`, `........`).
#[must_use]
pub fn is_placeholder(raw: &[u8]) -> bool {
    const PLACEHOLDERS: [&str; 20] = [
        "to be filled by o.e.m.",
        "to be filled by oem",
        "default string",
        "not specified",
        "not applicable",
        "not available",
        "system serial number",
        "chassis serial number",
        "base board serial number",
        "system product name",
        "serial",
        "none",
        "null",
        "n/a",
        "na",
        "unknown",
        "default",
        "empty",
        "invalid",
        "0123456789",
    ];
    let t = raw.trim_ascii();
    let Some(first) = t.first() else {
        return false;
    };
    if t.iter().all(|b| b == first) {
        return true;
    }
    let lower = String::from_utf8_lossy(t).to_ascii_lowercase();
    PLACEHOLDERS.contains(&lower.as_str()) || lower == "123456789"
}

/// DMI UUIDs that many boards ship unset (the verifier refuses all-zero
/// and all-`f` ones itself).
fn is_placeholder_uuid(raw: &[u8]) -> bool {
    let t = String::from_utf8_lossy(raw.trim_ascii()).to_ascii_lowercase();
    [
        "03000200-0400-0500-0006-000700080009",
        "00020003-0004-0005-0006-000700080009",
        "12345678-1234-5678-90ab-cddeefaabbcc",
    ]
    .contains(&t.as_str())
}

/// A systemd machine id: 32 hex digits (`uninitialized` on first boot).
fn is_machine_id(raw: &[u8]) -> bool {
    let t = raw.trim_ascii();
    t.len() == 32 && t.iter().all(u8::is_ascii_hexdigit)
}

/// A MAC address whose hex digits are all zero.
fn is_zero_mac(raw: &[u8]) -> bool {
    let mut digits = raw.iter().filter(|b| b.is_ascii_hexdigit()).peekable();
    digits.peek().is_some() && digits.all(|&b| b == b'0')
}

/// Detects a hypervisor from DMI strings and the CPU `hypervisor` flag.
#[must_use]
pub fn detect_virtualization(
    sys_vendor: Option<&str>,
    product_name: Option<&str>,
    hypervisor_flag: bool,
) -> Virtualization {
    const MARKERS: [(&str, &str); 12] = [
        ("qemu", "QEMU"),
        ("kvm", "KVM"),
        ("vmware", "VMware"),
        ("virtualbox", "VirtualBox"),
        ("innotek", "VirtualBox"),
        ("xen", "Xen"),
        ("bochs", "Bochs"),
        ("parallels", "Parallels"),
        ("bhyve", "bhyve"),
        ("openstack", "OpenStack"),
        ("amazon ec2", "Amazon EC2"),
        ("google compute engine", "Google Compute Engine"),
    ];
    let mut evidence = Vec::new();
    for (field, value) in [("sys_vendor", sys_vendor), ("product_name", product_name)] {
        let Some(value) = value else { continue };
        let lower = value.to_ascii_lowercase();
        if let Some((_, name)) = MARKERS.iter().find(|(m, _)| lower.contains(m)) {
            evidence.push(format!("{field}: {name}"));
        }
    }
    let vendor = sys_vendor.unwrap_or_default().to_ascii_lowercase();
    let product = product_name.unwrap_or_default().to_ascii_lowercase();
    if vendor.contains("microsoft") && product.contains("virtual machine") {
        evidence.push("sys_vendor/product_name: Microsoft Hyper-V".into());
    }
    if hypervisor_flag {
        evidence.push("cpuinfo flag: hypervisor".into());
    }
    Virtualization {
        is_virtual: !evidence.is_empty(),
        evidence,
    }
}

#[cfg(test)]
mod tests;
