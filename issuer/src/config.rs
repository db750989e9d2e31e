//! Where `tessera` finds its ledger, keyring, key and catalog: a command
//! line option, then an environment variable, then the configuration file,
//! then the default. `tessera config` prints every setting in effect and
//! where it came from.
//!
//! The configuration file is the first of:
//!
//! 1. `--config FILE` or `TESSERA_CONFIG` (an error if it does not exist);
//! 2. `tessera.toml` in the working folder;
//! 3. `$XDG_CONFIG_HOME/tessera/config.toml` (`~/.config/tessera/config.toml`
//!    when `XDG_CONFIG_HOME` is not set).
//!
//! A working folder's `tessera.toml` that hides a per-user file naming
//! another ledger is announced by every command (a copied vendor folder
//! must not send issuance to another ledger without a word).
//!
//! ```toml
//! ledger = "/srv/tessera/ledger.db"
//! keyring = "/srv/tessera/keyring.toml"
//! key = "/srv/tessera/signing.pem"
//! catalog = "/srv/tessera/catalog.toml"   # optional: the embedded one
//! request_window = "30d"                 # optional
//! operator = "alice"                     # optional: else $USER
//! ```
//!
//! Relative paths are taken from the configuration file's folder, so a
//! vendor folder with its `tessera.toml` works from anywhere it is named.
//! Passphrases never go into the file (nor on the command line): they come
//! from `TESSERA_PASSPHRASE`, `--passphrase-file` or a prompt.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::calendar::{format_duration, parse_duration};
use crate::error::Error;
use crate::validate::DEFAULT_REQUEST_WINDOW;

/// The file looked for in the working folder.
pub const LOCAL_FILE: &str = "tessera.toml";
/// Largest configuration file read.
const MAX_CONFIG: u64 = 64 * 1024;

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line option (`--ledger`).
    Flag(&'static str),
    /// An environment variable (`TESSERA_LEDGER`).
    Env(&'static str),
    /// The configuration file.
    File(PathBuf),
    /// The built-in default.
    Default,
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Flag(name) => write!(f, "{name}"),
            Self::Env(name) => write!(f, "${name}"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

impl Source {
    /// The setting of `key` this source is, as an error message names it:
    /// `--ledger`, `$TESSERA_LEDGER`, `` `ledger` in ./tessera.toml ``.
    #[must_use]
    pub fn naming(&self, key: &str) -> String {
        match self {
            Self::File(path) => format!("`{key}` in {}", path.display()),
            Self::Default => format!("the default {key}"),
            other => other.to_string(),
        }
    }
}

/// A value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its source.
    pub source: Source,
}

/// The configuration file's contents (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    ledger: Option<PathBuf>,
    keyring: Option<PathBuf>,
    key: Option<KeyFiles>,
    catalog: Option<PathBuf>,
    operator: Option<String>,
    request_window: Option<String>,
    notify: Option<NotifyFile>,
}

/// `[notify]`: where the overdue notice goes (`tessera report overdue
/// --notify`). The password is never here: `password_file` names a file
/// holding it (or `TESSERA_SMTP_PASSWORD`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyFile {
    smtp: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    insecure_plaintext: Option<bool>,
    from: Option<String>,
    to: Option<Vec<String>>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    ca: Option<PathBuf>,
    days: Option<u32>,
}

/// The notice settings given on the command line (each wins over the
/// environment and the file).
#[derive(Clone, Debug, Default)]
pub struct NotifyFlags {
    /// `--smtp HOST`.
    pub smtp: Option<String>,
    /// `--smtp-port`.
    pub port: Option<u16>,
    /// `--smtp-tls`.
    pub tls: Option<String>,
    /// `--from`.
    pub from: Option<String>,
    /// `--to` (repeated).
    pub to: Vec<String>,
    /// `--smtp-user`.
    pub username: Option<String>,
    /// `--smtp-password-file`.
    pub password_file: Option<PathBuf>,
    /// `--smtp-ca`.
    pub ca: Option<PathBuf>,
    /// `--days`.
    pub days: Option<u32>,
}

/// Where the SMTP password comes from (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordFrom {
    /// A file (its first line).
    File(PathBuf),
    /// `TESSERA_SMTP_PASSWORD`.
    Env,
}

/// The notice settings in effect and their sources.
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// SMTP server.
    pub smtp: Option<Setting<String>>,
    /// TLS mode.
    pub tls: Setting<crate::notify::TlsMode>,
    /// Port (the TLS mode's default when not set).
    pub port: Setting<u16>,
    /// Plain SMTP to another machine allowed (`insecure_plaintext` in the
    /// file only).
    pub insecure_plaintext: bool,
    /// Sender.
    pub from: Option<Setting<String>>,
    /// Recipients.
    pub to: Option<Setting<Vec<String>>>,
    /// Login name.
    pub username: Option<Setting<String>>,
    /// Where the password comes from.
    pub password: Option<Setting<PasswordFrom>>,
    /// Extra CA certificate (PEM).
    pub ca: Option<Setting<PathBuf>>,
    /// Days past the lease end without a renewal (see [`crate::notify::is_overdue`]).
    pub days: Setting<u32>,
}

impl NotifySettings {
    /// The settings a send uses: the password and the CA read from their
    /// files.
    ///
    /// # Errors
    /// [`Error::Usage`] for a missing server, sender or recipient,
    /// [`Error::Io`] for a password or CA file that cannot be read.
    pub fn mail(
        &self,
        env: fn(&str) -> Option<String>,
    ) -> Result<crate::notify::MailSettings, Error> {
        let need = |what: &str, how: &str| {
            Error::Usage(format!(
                "no {what} for the overdue notice: {how} (`tessera config` shows the settings in effect)"
            ))
        };
        let host = self
            .smtp
            .as_ref()
            .ok_or_else(|| need("SMTP server", "pass --smtp HOST or set `smtp` in [notify]"))?;
        let from = self
            .from
            .as_ref()
            .ok_or_else(|| need("sender", "pass --from ADDRESS or set `from` in [notify]"))?;
        let to = self.to.as_ref().ok_or_else(|| {
            need(
                "recipient",
                "pass --to ADDRESS (repeatable) or set `to = [\"ops@example.com\"]` in [notify]",
            )
        })?;
        let password = match self.password.as_ref().map(|s| &s.value) {
            Some(PasswordFrom::File(path)) => Some(crate::notify::read_password(path)?),
            Some(PasswordFrom::Env) => env("TESSERA_SMTP_PASSWORD").map(zeroize::Zeroizing::new),
            None => None,
        };
        let ca_pem = match &self.ca {
            Some(ca) => Some(
                tessera_keys::storage::read_regular(&ca.value, 256 * 1024)
                    .map_err(Error::io(&ca.value))?,
            ),
            None => None,
        };
        Ok(crate::notify::MailSettings {
            host: host.value.clone(),
            port: self.port.value,
            tls: self.tls.value,
            insecure_plaintext: self.insecure_plaintext,
            ca_pem,
            from: from.value.clone(),
            to: to.value.clone(),
            username: self.username.as_ref().map(|s| s.value.clone()),
            password,
            timeout: crate::notify::SMTP_TIMEOUT,
        })
    }
}

/// `key`: one key, or the keys of a rotation (the keyring says which one
/// signs when).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum KeyFiles {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// How environment variables are read (tests read a fixed table).
type EnvLookup = fn(&str) -> Option<String>;

/// The configuration file in effect and what it says.
#[derive(Debug)]
pub struct Config {
    path: Option<PathBuf>,
    file: FileSettings,
    env: EnvLookup,
    /// The per-user file this working folder's `tessera.toml` hides, when
    /// the two name different ledgers.
    hidden: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: None,
            file: FileSettings::default(),
            env: process_env,
            hidden: None,
        }
    }
}

/// The default location of the per-user configuration file.
#[must_use]
pub fn user_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tessera").join("config.toml"))
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Finds and reads the configuration file: `explicit` (from
    /// `--config`), else `TESSERA_CONFIG`, else `tessera.toml` in the
    /// working folder, else the per-user file; none at all is fine.
    ///
    /// # Errors
    /// [`Error::Config`] for a named file that does not exist, a file that
    /// cannot be read or does not parse.
    pub fn find(explicit: Option<&Path>) -> Result<Self, Error> {
        let named = explicit
            .map(Path::to_path_buf)
            .or_else(|| process_env("TESSERA_CONFIG").map(PathBuf::from));
        if let Some(path) = named {
            return Self::load(&path);
        }
        Self::find_in(Path::new(LOCAL_FILE), user_file().as_deref())
    }

    /// [`Config::find`] without `--config` or `TESSERA_CONFIG`: `local`,
    /// else `user`. When both exist and name different ledgers, the
    /// user's file is noted as hidden ([`Config::hidden_warning`]): a
    /// `tessera.toml` copied into a delivery folder would otherwise send
    /// issuance to another ledger without a word.
    ///
    /// # Errors
    /// As [`Config::find`].
    pub fn find_in(local: &Path, user: Option<&Path>) -> Result<Self, Error> {
        let user = user.filter(|u| u.exists());
        if local.exists() {
            let mut config = Self::load(local)?;
            if let Some(user) = user {
                let other = Self::load(user).ok();
                let theirs = other
                    .as_ref()
                    .and_then(|o| o.file_path(o.file.ledger.as_ref()));
                let ours = config.file_path(config.file.ledger.as_ref());
                if theirs.map(|s| s.value) != ours.map(|s| s.value) {
                    config.hidden = Some(user.to_owned());
                }
            }
            return Ok(config);
        }
        match user {
            Some(user) => Self::load(user),
            None => Ok(Self::default()),
        }
    }

    /// A warning when this working folder's `tessera.toml` hides a
    /// per-user configuration that names another ledger.
    #[must_use]
    pub fn hidden_warning(&self) -> Option<String> {
        let hidden = self.hidden.as_ref()?;
        let ours = self.file_path(self.file.ledger.as_ref()).map_or_else(
            || "no ledger".to_owned(),
            |s| format!("ledger {}", s.value.display()),
        );
        Some(format!(
            "{} in this folder names {ours} and hides {}, which names another ledger; \
             this folder's file is in effect (`tessera config` shows every setting)",
            LOCAL_FILE,
            hidden.display()
        ))
    }

    /// Reads one configuration file.
    ///
    /// # Errors
    /// [`Error::Config`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let bad = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            bad(format!(
                "{e}; name an existing file with --config or TESSERA_CONFIG, or remove the setting"
            ))
        })?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        if meta.len() > MAX_CONFIG {
            return Err(bad(format!(
                "{} bytes; a configuration file is at most {MAX_CONFIG}",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: FileSettings = toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text.get(..s.start)
                    .map_or(1, |before| before.matches('\n').count() + 1)
            });
            bad(format!(
                "line {line}: {}; the keys are ledger, keyring, key, catalog, operator, request_window and the table [notify] (smtp, port, tls, insecure_plaintext, from, to, username, password_file, ca, days)",
                crate::validate::parser_message(e.message().trim())
            ))
        })?;
        if let Some(w) = &file.request_window {
            if parse_duration(w).is_none() {
                return Err(bad(format!(
                    "request_window `{}` is not a duration: write <n>d, <n>h, <n>m or <n>s",
                    crate::validate::shown(w)
                )));
            }
        }
        if let Some(tls) = file.notify.as_ref().and_then(|n| n.tls.as_deref()) {
            if crate::notify::TlsMode::parse(tls).is_none() {
                return Err(bad(format!(
                    "[notify] tls `{}` is not none, starttls or tls",
                    crate::validate::shown(tls)
                )));
            }
        }
        if let Some(op) = &file.operator {
            crate::validate::text("operator", op).map_err(|e| bad(e.to_string()))?;
        }
        Ok(Self {
            path: Some(path.to_owned()),
            file,
            env: process_env,
            hidden: None,
        })
    }

    /// The same settings with environment variables read through `env`
    /// (for tests, which must not depend on the process environment).
    #[must_use]
    pub fn with_env(mut self, env: fn(&str) -> Option<String>) -> Self {
        self.env = env;
        self
    }

    /// The configuration file in effect, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A path from the file, relative to the file's folder (a key in a
    /// PKCS#11 token, `pkcs11:...`, and a PostgreSQL ledger,
    /// `postgres://...`, are URIs, not paths).
    fn file_path(&self, value: Option<&PathBuf>) -> Option<Setting<PathBuf>> {
        let value = value?;
        let file = self.path.clone()?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let uri = value
            .to_str()
            .is_some_and(tessera_signer::pkcs11::is_pkcs11_uri)
            || crate::ledger::postgres::is_url(value);
        Some(Setting {
            value: if uri || value.is_absolute() || base.as_os_str().is_empty() {
                value.clone()
            } else {
                base.join(value)
            },
            source: Source::File(file),
        })
    }

    fn path_setting(
        &self,
        flag: Option<&Path>,
        flag_name: &'static str,
        env_name: &'static str,
        file: Option<&PathBuf>,
    ) -> Option<Setting<PathBuf>> {
        if let Some(v) = flag {
            return Some(Setting {
                value: v.to_owned(),
                source: Source::Flag(flag_name),
            });
        }
        if let Some(v) = (self.env)(env_name) {
            return Some(Setting {
                value: PathBuf::from(v),
                source: Source::Env(env_name),
            });
        }
        self.file_path(file)
    }

    /// The ledger: `--ledger`, `TESSERA_LEDGER`, `ledger` in the file.
    #[must_use]
    pub fn ledger(&self, flag: Option<&Path>) -> Option<Setting<PathBuf>> {
        self.path_setting(
            flag,
            "--ledger",
            "TESSERA_LEDGER",
            self.file.ledger.as_ref(),
        )
    }

    /// The keyring: `--keyring`, `TESSERA_KEYRING`, `keyring` in the file.
    #[must_use]
    pub fn keyring(&self, flag: Option<&Path>) -> Option<Setting<PathBuf>> {
        self.path_setting(
            flag,
            "--keyring",
            "TESSERA_KEYRING",
            self.file.keyring.as_ref(),
        )
    }

    /// The signing keys: `--key` (repeated), `TESSERA_KEY` (one), `key` in
    /// the file (a path or a list); several during a rotation, the
    /// keyring choosing which one signs.
    #[must_use]
    pub fn keys(&self, flags: &[PathBuf]) -> Option<Setting<Vec<PathBuf>>> {
        if !flags.is_empty() {
            return Some(Setting {
                value: flags.to_vec(),
                source: Source::Flag("--key"),
            });
        }
        if let Some(v) = (self.env)("TESSERA_KEY") {
            return Some(Setting {
                value: vec![PathBuf::from(v)],
                source: Source::Env("TESSERA_KEY"),
            });
        }
        let listed = match self.file.key.as_ref()? {
            KeyFiles::One(p) => core::slice::from_ref(p),
            KeyFiles::Many(ps) => ps.as_slice(),
        };
        let resolved: Vec<Setting<PathBuf>> = listed
            .iter()
            .filter_map(|p| self.file_path(Some(p)))
            .collect();
        let source = resolved.first()?.source.clone();
        Some(Setting {
            value: resolved.into_iter().map(|s| s.value).collect(),
            source,
        })
    }

    /// The catalog: `--catalog`, `TESSERA_CATALOG`, `catalog` in the file;
    /// `None` is the embedded default.
    #[must_use]
    pub fn catalog(&self, flag: Option<&Path>) -> Option<Setting<PathBuf>> {
        self.path_setting(
            flag,
            "--catalog",
            "TESSERA_CATALOG",
            self.file.catalog.as_ref(),
        )
    }

    /// The operator: `--operator`, `TESSERA_OPERATOR`, `operator` in the
    /// file, `$USER`.
    #[must_use]
    pub fn operator(&self, flag: Option<&str>) -> Option<Setting<String>> {
        if let Some(v) = flag.filter(|v| !v.trim().is_empty()) {
            return Some(Setting {
                value: v.trim().to_owned(),
                source: Source::Flag("--operator"),
            });
        }
        if let Some(v) = (self.env)("TESSERA_OPERATOR") {
            return Some(Setting {
                value: v.trim().to_owned(),
                source: Source::Env("TESSERA_OPERATOR"),
            });
        }
        if let (Some(v), Some(file)) = (&self.file.operator, &self.path) {
            return Some(Setting {
                value: v.trim().to_owned(),
                source: Source::File(file.clone()),
            });
        }
        (self.env)("USER").map(|v| Setting {
            value: v.trim().to_owned(),
            source: Source::Env("USER"),
        })
    }

    /// The overdue notice's settings: each from its flag, else `[notify]`
    /// in the file (the password from `--smtp-password-file`, else
    /// `TESSERA_SMTP_PASSWORD`, else `password_file`; never a flag).
    ///
    /// # Errors
    /// [`Error::Usage`] for a TLS mode that is not none, starttls or tls.
    pub fn notify(&self, flags: &NotifyFlags) -> Result<NotifySettings, Error> {
        use crate::notify::TlsMode;
        let empty = NotifyFile::default();
        let n = self.file.notify.as_ref().unwrap_or(&empty);
        let file = self.path.clone();
        fn pick<T: Clone>(
            flag: Option<T>,
            flag_name: &'static str,
            file_value: Option<&T>,
            file: Option<&PathBuf>,
        ) -> Option<Setting<T>> {
            if let Some(v) = flag {
                return Some(Setting {
                    value: v,
                    source: Source::Flag(flag_name),
                });
            }
            Some(Setting {
                value: file_value?.clone(),
                source: Source::File(file?.clone()),
            })
        }
        let tls = match pick(
            flags.tls.clone(),
            "--smtp-tls",
            n.tls.as_ref(),
            file.as_ref(),
        ) {
            Some(s) => Setting {
                value: TlsMode::parse(&s.value).ok_or_else(|| {
                    Error::Usage(format!(
                        "--smtp-tls `{}` is not none, starttls or tls",
                        crate::validate::shown(&s.value)
                    ))
                })?,
                source: s.source,
            },
            None => Setting {
                value: TlsMode::Starttls,
                source: Source::Default,
            },
        };
        let port =
            pick(flags.port, "--smtp-port", n.port.as_ref(), file.as_ref()).unwrap_or(Setting {
                value: tls.value.default_port(),
                source: Source::Default,
            });
        let to = if flags.to.is_empty() {
            pick(None, "--to", n.to.as_ref(), file.as_ref())
        } else {
            pick(Some(flags.to.clone()), "--to", None, None)
        };
        let password = if let Some(p) = &flags.password_file {
            Some(Setting {
                value: PasswordFrom::File(p.clone()),
                source: Source::Flag("--smtp-password-file"),
            })
        } else if (self.env)("TESSERA_SMTP_PASSWORD").is_some() {
            Some(Setting {
                value: PasswordFrom::Env,
                source: Source::Env("TESSERA_SMTP_PASSWORD"),
            })
        } else {
            self.file_path(n.password_file.as_ref()).map(|s| Setting {
                value: PasswordFrom::File(s.value),
                source: s.source,
            })
        };
        let ca = match &flags.ca {
            Some(p) => Some(Setting {
                value: p.clone(),
                source: Source::Flag("--smtp-ca"),
            }),
            None => self.file_path(n.ca.as_ref()),
        };
        Ok(NotifySettings {
            smtp: pick(flags.smtp.clone(), "--smtp", n.smtp.as_ref(), file.as_ref()),
            tls,
            port,
            insecure_plaintext: n.insecure_plaintext.unwrap_or(false),
            from: pick(flags.from.clone(), "--from", n.from.as_ref(), file.as_ref()),
            to,
            username: pick(
                flags.username.clone(),
                "--smtp-user",
                n.username.as_ref(),
                file.as_ref(),
            ),
            password,
            ca,
            days: pick(flags.days, "--days", n.days.as_ref(), file.as_ref()).unwrap_or(Setting {
                value: crate::notify::DEFAULT_DAYS,
                source: Source::Default,
            }),
        })
    }

    /// How environment variables are read (the process's, or a test's
    /// table).
    #[must_use]
    pub fn env(&self) -> fn(&str) -> Option<String> {
        self.env
    }

    /// How far a request's creation time may lie from now:
    /// `TESSERA_REQUEST_WINDOW`, `request_window` in the file, 30 days.
    ///
    /// # Errors
    /// [`Error::Usage`] for an environment value that is not a duration.
    pub fn request_window(&self) -> Result<Setting<u32>, Error> {
        if let Some(v) = (self.env)("TESSERA_REQUEST_WINDOW") {
            let value = parse_duration(&v).ok_or_else(|| {
                Error::Usage(format!(
                    "TESSERA_REQUEST_WINDOW `{}` is not a duration: write <n>d, <n>h, <n>m or <n>s (default {})",
                    crate::validate::shown(&v),
                    format_duration(DEFAULT_REQUEST_WINDOW)
                ))
            })?;
            return Ok(Setting {
                value,
                source: Source::Env("TESSERA_REQUEST_WINDOW"),
            });
        }
        if let (Some(v), Some(file)) = (&self.file.request_window, &self.path) {
            if let Some(value) = parse_duration(v) {
                return Ok(Setting {
                    value,
                    source: Source::File(file.clone()),
                });
            }
        }
        Ok(Setting {
            value: DEFAULT_REQUEST_WINDOW,
            source: Source::Default,
        })
    }
}

#[cfg(test)]
mod tests;
