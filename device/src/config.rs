//! The agent configuration file (`agent.toml`, by default in the state
//! directory).
//!
//! It holds what the probe cannot or must not find by itself: the HW
//! serial printed on an appliance, the bound IP address (an administrative
//! setting: the agent never takes it from DHCP), the SW serial the vendor
//! assigned to a fresh VM, and where the keyring and catalog are.
//!
//! ```toml
//! platform = "hw"              # hw | vm | cloud; default: vm under a hypervisor, else hw
//! hw_serial = "HW-7F3A-0042"   # printed on the appliance; default: DMI product serial (hw only)
//! sw_serial = "SW-2026-000123" # only for a fresh VM whose serial the vendor assigned
//! ip = "192.0.2.10"            # the bound IP address
//! keyring = "keyring.toml"     # relative paths are relative to this file's folder
//! catalog = "catalog.toml"
//! server_license = "server-license.txt" # sharing client: the server's license, for seats
//! sysroot = "/"
//! min_components = 2           # fewer hardware components found: refuse to make a request
//! server = "https://licenses.vendor.example"  # online renewal (`check --online`, `renew`)
//! server_ca = "vendor-ca.pem"  # the vendor's CA (or a self-signed server certificate), pinned
//! server_retries = 4           # retries with backoff when the server cannot be reached
//! activation_code = "7K3QD-9XW2M-TR4FZ-B8N6P" # the vendor's one-time code for `activate`
//! ```
//!
//! Every value is checked when the file is read, with the same
//! normalization the verifier applies, so a typo is reported at once and
//! not as a license that does not bind weeks later.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_verifier::binding::{normalize, DeviceIdentity, MAX_COMPONENTS, MAX_VALUE_LEN};
use tessera_verifier::claims::{ComponentKind, Platform};
use tessera_verifier::text::escaped;

use crate::store::{read_file, shown, Access, FileError, Folder};

/// File name of the configuration in the state directory.
pub const CONFIG_FILE: &str = "agent.toml";

/// Largest configuration file read, in bytes.
pub const MAX_CONFIG_LEN: u64 = 64 * 1024;

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file was refused (owner, mode, a link, not a regular file,
    /// larger than [`MAX_CONFIG_LEN`]) or cannot be read.
    #[error("the agent configuration: {0}")]
    File(#[from] FileError),
    /// A file named with `--config` does not exist.
    #[error("the agent configuration {} does not exist; create it or leave out --config", shown(.0))]
    Missing(PathBuf),
    /// The file is not valid TOML or has an unknown key or a wrong type.
    #[error("the agent configuration {} is not valid: {message}", shown(.path))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line.
        message: String,
    },
    /// The sysroot, the folder the device identity is read below, is
    /// missing (or no folder): every component would be skipped as "not
    /// present", which says nothing about the typo.
    #[error(
        "the sysroot {} does not exist or is not a folder ({reason}); it was set by {set_by}, and the device identity is read below it: correct {set_by} to the root of the device's file system, or leave it out to read `/`",
        shown(.path)
    )]
    NoSysroot {
        /// The folder.
        path: PathBuf,
        /// What set it: `--sysroot`, or `sysroot` in the configuration file.
        set_by: String,
        /// What the system said.
        reason: String,
    },
    /// A value is present but unusable.
    #[error("the agent configuration {}: `{field}` {reason}", shown(.path))]
    Invalid {
        /// The file (or `--ip` for the command-line override).
        path: PathBuf,
        /// The key.
        field: &'static str,
        /// What is wrong and what to write instead.
        reason: String,
    },
}

/// The platform as written in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    /// Vendor appliance.
    Hw,
    /// Virtual machine.
    Vm,
    /// Vendor-hosted cloud.
    Cloud,
}

impl From<PlatformName> for Platform {
    fn from(p: PlatformName) -> Self {
        match p {
            PlatformName::Hw => Self::Hw,
            PlatformName::Vm => Self::Vm,
            PlatformName::Cloud => Self::Cloud,
        }
    }
}

/// The contents of `agent.toml`; every key is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Platform override; by default detected (VM under a hypervisor).
    pub platform: Option<PlatformName>,
    /// HW serial printed on the appliance.
    pub hw_serial: Option<String>,
    /// SW serial assigned by the vendor, for a device that has no license
    /// yet and no HW serial (a fresh VM). Afterwards the serial of the
    /// installed license is used.
    pub sw_serial: Option<String>,
    /// The bound IP address.
    pub ip: Option<String>,
    /// Keyring TOML (`tessera-keys` format).
    pub keyring: Option<PathBuf>,
    /// Catalog TOML for entitlement names in `status`.
    pub catalog: Option<PathBuf>,
    /// Root of the file system to probe (tests, containers).
    pub sysroot: Option<PathBuf>,
    /// For a sharing client: a copy of the sharing server's license file,
    /// whose counts the client's seats use (`tessera-agent seats`).
    pub server_license: Option<PathBuf>,
    /// Fewest hardware/OS identity components (the device key not counted)
    /// a request needs; default [`crate::probe::DEFAULT_MIN_COMPONENTS`].
    pub min_components: Option<usize>,
    /// The vendor's license service, for online renewal
    /// ([`crate::online`]).
    pub server: Option<String>,
    /// The pinned certificate(s) of the license service (PEM): the
    /// vendor's CA, or the server's own certificate when it is self-signed.
    pub server_ca: Option<PathBuf>,
    /// Retries after a first attempt that could not reach the server;
    /// default [`crate::online::DEFAULT_RETRIES`].
    pub server_retries: Option<u32>,
    /// The one-time activation code the vendor gave for this PBX (`tessera
    /// pbx activation`), sent by `tessera-agent activate`; never shown.
    pub activation_code: Option<String>,
}

impl AgentConfig {
    /// Reads the configuration at `path`; `Ok(None)` when there is no
    /// such file. The file must be a regular file of at most
    /// [`MAX_CONFIG_LEN`] bytes, owned by root or the agent's user and not
    /// writable by others (it names the keyring).
    ///
    /// # Errors
    /// [`ConfigError::File`] and the errors of [`AgentConfig::parse`].
    pub fn load(path: &Path) -> Result<Option<Self>, ConfigError> {
        let bytes = read_file(
            path,
            MAX_CONFIG_LEN,
            Some(Access::Shared),
            "agent configuration",
        )?;
        bytes.map(|b| Self::from_bytes(b, path)).transpose()
    }

    /// Reads the configuration `name` in the state folder (never through
    /// a link), with the checks of [`AgentConfig::load`].
    ///
    /// # Errors
    /// As [`AgentConfig::load`].
    pub fn load_in(folder: &Folder, name: &str) -> Result<Option<Self>, ConfigError> {
        let bytes = folder.read(name, MAX_CONFIG_LEN, Access::Shared, "agent configuration")?;
        bytes
            .map(|b| Self::from_bytes(b, &folder.join(name)))
            .transpose()
    }

    fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, ConfigError> {
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
            path: path.to_owned(),
            message: "the file is not UTF-8 text".into(),
        })?;
        let mut config = Self::parse(&text, path)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    /// Parses and checks configuration text; `origin` names the file in
    /// messages.
    ///
    /// ```
    /// use tessera_device::config::AgentConfig;
    /// let c = AgentConfig::parse("ip = \"192.0.2.10\"\nmin_components = 3\n", "agent.toml".as_ref()).unwrap();
    /// assert_eq!(c.ip.as_deref(), Some("192.0.2.10"));
    /// assert!(AgentConfig::parse("ip = \"192.0.2.300\"", "agent.toml".as_ref()).is_err());
    /// assert!(AgentConfig::parse("ipaddr = \"192.0.2.1\"", "agent.toml".as_ref()).is_err());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for bad TOML, unknown keys or wrong types,
    /// [`ConfigError::Invalid`] for values the verifier would refuse.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
            path: origin.to_owned(),
            field,
            reason,
        };
        if let Some(ip) = &self.ip {
            check_ip(ip).map_err(|reason| invalid("ip", reason))?;
        }
        if let Some(hw) = &self.hw_serial {
            let mut buf = [0u8; MAX_VALUE_LEN];
            normalize(ComponentKind::HW_SERIAL, hw.as_bytes(), &mut buf).map_err(|e| {
                invalid(
                    "hw_serial",
                    format!("is not a usable serial ({e}): write it as printed on the appliance"),
                )
            })?;
        }
        if let Some(sw) = &self.sw_serial {
            DeviceIdentity::new().set_sw_serial(sw).map_err(|e| {
                invalid(
                    "sw_serial",
                    format!("is not a usable serial ({e}): write it as the vendor sent it"),
                )
            })?;
        }
        if let Some(url) = &self.server {
            crate::online::check_url(url).map_err(|reason| invalid("server", reason))?;
        }
        if let Some(code) = &self.activation_code {
            tessera_verifier::activation::ActivationCode::parse(code)
                .map_err(|e| invalid("activation_code", e.to_string()))?;
        }
        if let Some(n) = self.server_retries {
            if n > 20 {
                return Err(invalid(
                    "server_retries",
                    format!("must be at most 20, not {n}"),
                ));
            }
        }
        if let Some(n) = self.min_components {
            if n == 0 || n > MAX_COMPONENTS {
                return Err(invalid(
                    "min_components",
                    format!("must be between 1 and {MAX_COMPONENTS}, not {n}"),
                ));
            }
        }
        Ok(())
    }

    /// Makes relative `keyring`, `catalog`, `sysroot` and `server_license`
    /// paths relative to `base` (the configuration's folder), as a reader
    /// of the file expects.
    fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.keyring,
            &mut self.catalog,
            &mut self.sysroot,
            &mut self.server_license,
            &mut self.server_ca,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A parser's message about text from a file, for a one-line error: lines
/// joined, control and format characters escaped, at most 300 characters
/// (the file's text is not repeated at length).
#[must_use]
pub fn one_line(message: &str) -> String {
    const MAX: usize = 300;
    let joined = message
        .split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let shown = escaped(&joined).to_string();
    match shown.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{} ...", shown.get(..cut).unwrap_or_default()),
        None => shown,
    }
}

/// Checks an IP address with the verifier's normalization; the reason is
/// a message for people.
///
/// # Errors
/// What is wrong with the address.
pub fn check_ip(ip: &str) -> Result<(), String> {
    let mut buf = [0u8; MAX_VALUE_LEN];
    normalize(ComponentKind::IP_ADDR, ip.as_bytes(), &mut buf)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "`{}` is not a usable address ({e}): write the PBX's fixed IPv4 or IPv6 address, not loopback or 0.0.0.0",
                escaped(ip)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(text, Path::new("agent.toml"))
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"
            platform = "hw"
            hw_serial = "HW-7F3A-0042"
            sw_serial = "SW-2026-000123"
            ip = "2001:db8::1"
            keyring = "keyring.toml"
            catalog = "/etc/tessera/catalog.toml"
            sysroot = "/"
            min_components = 3
            "#,
        )
        .unwrap();
        assert_eq!(c.platform, Some(PlatformName::Hw));
        assert_eq!(c.min_components, Some(3));
        assert_eq!(Platform::from(PlatformName::Vm), Platform::Vm);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), AgentConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_key() {
        let e = parse("hw-serial = \"X\"").unwrap_err().to_string();
        assert!(e.contains("hw-serial"), "{e}");
        let e = parse("platform = \"mainframe\"").unwrap_err().to_string();
        assert!(e.contains("platform"), "{e}");
        for (text, field) in [
            ("ip = \"127.0.0.1\"", "ip"),
            ("ip = \"dhcp\"", "ip"),
            ("hw_serial = \"  \"", "hw_serial"),
            ("sw_serial = \"a\\u0001b\"", "sw_serial"),
            ("min_components = 0", "min_components"),
            ("min_components = 17", "min_components"),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("min_components = -1"),
            Err(ConfigError::Syntax { .. })
        ));
    }

    #[test]
    fn an_activation_code_is_checked_and_never_repeated() {
        let c = parse("activation_code = \"7k3qd 9xw2m tr4fz b8n6p\"").unwrap();
        assert_eq!(
            c.activation_code.as_deref(),
            Some("7k3qd 9xw2m tr4fz b8n6p")
        );
        for bad in [
            "7K3QD-9XW2M-TR4FZ",
            "7K3QD-9XW2M-TR4FZ-B8N6U",
            "SECRET\\u001b[2J-9XW2M-TR4FZ",
        ] {
            let text = format!("activation_code = \"{bad}\"");
            match parse(&text) {
                Err(e @ ConfigError::Invalid { .. }) => {
                    let shown = e.to_string();
                    assert!(shown.contains("activation_code"), "{shown}");
                    assert!(
                        !shown.contains("TR4FZ") && !shown.contains("SECRET"),
                        "{shown}"
                    );
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn load_resolves_relative_paths_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        assert!(AgentConfig::load(&path).unwrap().is_none());
        std::fs::write(
            &path,
            "keyring = \"keys/ring.toml\"\ncatalog = \"/abs.toml\"\n",
        )
        .unwrap();
        let c = AgentConfig::load(&path).unwrap().unwrap();
        assert_eq!(c.keyring, Some(dir.path().join("keys/ring.toml")));
        assert_eq!(c.catalog, Some(PathBuf::from("/abs.toml")));
        std::fs::write(&path, vec![b'#'; 70 * 1024]).unwrap();
        assert!(matches!(
            AgentConfig::load(&path),
            Err(ConfigError::File(FileError::TooLarge { .. }))
        ));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            AgentConfig::load(&path),
            Err(ConfigError::Syntax { .. })
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// No text makes the parser panic; whatever it accepts passed
            /// every check.
            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
                if let Ok(c) = parse(&text) {
                    if let Some(ip) = &c.ip {
                        prop_assert!(check_ip(ip).is_ok());
                    }
                }
            }

            /// Near-valid files: known keys with arbitrary values.
            #[test]
            fn known_keys_with_arbitrary_values_never_panic(
                key in prop::sample::select(vec!["platform", "hw_serial", "sw_serial", "ip", "keyring", "min_components"]),
                value in "[ -~]{0,40}",
                number in any::<i64>(),
            ) {
                let _ = parse(&format!("{key} = {value:?}"));
                let _ = parse(&format!("{key} = {number}"));
            }
        }
    }
}
