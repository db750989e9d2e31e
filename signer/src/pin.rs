//! The user PIN of a PKCS#11 token.
//!
//! Like a passphrase, a PIN comes from the environment variable
//! [`PIN_ENV`], from a file (`--pin-file`), or from a prompt on the
//! terminal: never from the command line or from the URI (`pin-value` is
//! refused), where other users of the machine can read it.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use tessera_keys::KeyError;
use tessera_verifier::text::escaped;
use zeroize::Zeroizing;

use crate::passphrase::{read_secret_line, Environment, LineFault};

/// The environment variable a token PIN is read from.
pub const PIN_ENV: &str = "TESSERA_PKCS11_PIN";

/// A token PIN, wiped from memory when dropped and never printed.
pub struct Pin {
    bytes: Zeroizing<Vec<u8>>,
    from: String,
}

impl Pin {
    /// Wraps a PIN given by the program itself (tests, a secrets manager
    /// ...).
    ///
    /// # Errors
    /// [`KeyError::EmptyPin`] when it is empty.
    pub fn new(pin: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        Self::checked(Zeroizing::new(pin.into()), "the program".into())
    }

    fn checked(bytes: Zeroizing<Vec<u8>>, from: String) -> Result<Self, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::EmptyPin { from });
        }
        Ok(Self { bytes, from })
    }

    /// The PIN bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where the PIN came from, for messages ("the file /run/pin").
    #[must_use]
    pub fn source(&self) -> &str {
        &self.from
    }
}

// `Zeroizing` wipes the bytes on drop.
impl zeroize::ZeroizeOnDrop for Pin {}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin(<redacted>, from {})", self.from)
    }
}

/// Where a token PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// The first line of a file (a trailing `\n` or `\r\n` is removed).
    File(PathBuf),
    /// [`PIN_ENV`] when set, else a prompt when standard input is a
    /// terminal, else [`KeyError::NoPin`].
    Auto,
    /// The program's own PIN (a secrets manager, tests).
    Given(Zeroizing<Vec<u8>>),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Auto => f.write_str("Auto"),
            Self::Given(_) => f.write_str("Given(<redacted>)"),
        }
    }
}

impl PinSource {
    /// The source for a CLI's `--pin-file` option: that file when given,
    /// else [`PinSource::Auto`].
    #[must_use]
    pub fn from_cli(pin_file: Option<PathBuf>) -> Self {
        pin_file.map_or(Self::Auto, Self::File)
    }

    /// Obtains the PIN of the token labelled `token` (the label is shown at
    /// the prompt).
    ///
    /// # Errors
    /// [`KeyError::NoPin`] when no source is available (variable unset, no
    /// terminal), [`KeyError::EmptyPin`], [`KeyError::NotFound`] /
    /// [`KeyError::Io`] / [`KeyError::BadPinFile`] for a PIN file,
    /// [`KeyError::PinPrompt`] when the terminal cannot be read.
    pub fn obtain(&self, token: &str) -> Result<Pin, KeyError> {
        let mut prompt = |text: &str| rpassword::prompt_password(text).map(Zeroizing::new);
        let env = Environment {
            variable: std::env::var_os(PIN_ENV),
            interactive: io::stdin().is_terminal(),
            prompt: &mut prompt,
        };
        self.obtain_in(token, env)
    }

    pub(crate) fn obtain_in(&self, token: &str, env: Environment<'_>) -> Result<Pin, KeyError> {
        match self {
            Self::File(path) => read_pin_file(path),
            Self::Given(bytes) => Pin::checked(bytes.clone(), "the program".into()),
            Self::Auto => match env.variable {
                Some(value) => from_env(value),
                None => prompt(token, env),
            },
        }
    }
}

fn from_env(value: OsString) -> Result<Pin, KeyError> {
    Pin::checked(
        Zeroizing::new(value.into_vec()),
        format!("the environment variable {PIN_ENV}"),
    )
}

fn prompt(token: &str, env: Environment<'_>) -> Result<Pin, KeyError> {
    if !env.interactive {
        return Err(KeyError::NoPin);
    }
    let typed = (env.prompt)(&format!("PIN for token '{}': ", escaped(token)))
        .map_err(KeyError::PinPrompt)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(typed.len()));
    bytes.extend_from_slice(typed.as_bytes());
    Pin::checked(bytes, "the prompt".into())
}

fn read_pin_file(path: &Path) -> Result<Pin, KeyError> {
    let bytes =
        read_secret_line(path, tessera_keys::FileKind::PinFile).map_err(|fault| match fault {
            LineFault::Key(e) => e,
            LineFault::Bad(reason) => KeyError::BadPinFile {
                file: path.to_owned(),
                reason,
            },
        })?;
    Pin::checked(bytes, format!("the file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn run(
        source: &PinSource,
        variable: Option<&str>,
        interactive: bool,
        answers: &[&str],
    ) -> (Result<Pin, KeyError>, Vec<String>) {
        let mut answers = answers.iter();
        let mut asked = Vec::new();
        let mut prompt = |text: &str| {
            asked.push(text.to_owned());
            answers
                .next()
                .map(|a| Zeroizing::new((*a).to_owned()))
                .ok_or_else(|| io::Error::other("no more answers"))
        };
        let env = Environment {
            variable: variable.map(OsString::from),
            interactive,
            prompt: &mut prompt,
        };
        let pin = source.obtain_in("HSM \u{1b}[2J1", env);
        (pin, asked)
    }

    #[test]
    fn env_then_prompt_then_a_clear_error() {
        let (pin, asked) = run(&PinSource::Auto, Some("1234"), true, &["typed"]);
        let pin = pin.unwrap();
        assert_eq!(pin.as_bytes(), b"1234");
        assert!(pin.source().contains(PIN_ENV));
        assert!(asked.is_empty());

        let (pin, asked) = run(&PinSource::Auto, None, true, &["4321"]);
        assert_eq!(pin.unwrap().as_bytes(), b"4321");
        // The token label is shown escaped: a label cannot act on the
        // terminal.
        assert_eq!(asked, ["PIN for token 'HSM \\u{1b}[2J1': "]);

        let (e, _) = run(&PinSource::Auto, None, false, &["4321"]);
        let e = e.unwrap_err();
        assert!(matches!(e, KeyError::NoPin), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(PIN_ENV) && msg.contains("--pin-file"), "{msg}");

        let (e, _) = run(&PinSource::Auto, Some(""), false, &[]);
        assert!(matches!(e, Err(KeyError::EmptyPin { .. })));
        let (e, _) = run(&PinSource::Auto, None, true, &[""]);
        assert!(matches!(e, Err(KeyError::EmptyPin { .. })));
        let (e, _) = run(&PinSource::Auto, None, true, &[]);
        assert!(matches!(e, Err(KeyError::PinPrompt(_))));
    }

    #[test]
    fn file_source_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        let read = |content: &[u8]| {
            std::fs::File::create(&path)
                .unwrap()
                .write_all(content)
                .unwrap();
            run(&PinSource::File(path.clone()), Some("env"), true, &["x"]).0
        };
        let pin = read(b"987654\n").unwrap();
        assert_eq!(pin.as_bytes(), b"987654");
        assert!(pin.source().contains("pin"));
        assert_eq!(read(b"12\r\n").unwrap().as_bytes(), b"12");
        assert!(matches!(read(b"\n"), Err(KeyError::EmptyPin { .. })));
        let e = read(b"1\n2\n").unwrap_err();
        assert!(matches!(e, KeyError::BadPinFile { .. }), "{e:?}");
        assert!(e.to_string().contains("PIN alone"), "{e}");
        assert!(matches!(
            read(&[b'1'; 5000]),
            Err(KeyError::BadPinFile { .. })
        ));
        let missing = PinSource::File(dir.path().join("missing"));
        assert!(matches!(
            run(&missing, None, false, &[]).0,
            Err(KeyError::NotFound { .. })
        ));
        assert_eq!(
            PinSource::from_cli(Some(path.clone())),
            PinSource::File(path)
        );
        assert_eq!(PinSource::from_cli(None), PinSource::Auto);
    }

    #[test]
    fn debug_redacts() {
        let pin = Pin::new("246810").unwrap();
        let shown = format!(
            "{pin:?} {:?}",
            PinSource::Given(Zeroizing::new(b"13579".to_vec()))
        );
        assert!(!shown.contains("246810"), "{shown}");
        assert!(Pin::new("").is_err());
    }
}
