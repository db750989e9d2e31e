//! Passphrases that protect private key files.
//!
//! A passphrase comes from the environment variable [`PASSPHRASE_ENV`], from
//! a file, or from a prompt on the terminal: never from the command line,
//! where other users of the machine can read it (`ps`, shell history).

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use tessera_keys::KeyError;
use zeroize::Zeroizing;

/// The environment variable a passphrase is read from.
pub const PASSPHRASE_ENV: &str = "TESSERA_PASSPHRASE";

/// Passphrase files larger than this are refused: a passphrase is a line of
/// text, and a large file is almost certainly the wrong one.
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// The fewest characters a new key's passphrase may have.
pub const MIN_NEW_PASSPHRASE_CHARS: usize = 8;

/// A passphrase, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Passphrase {
    bytes: Zeroizing<Vec<u8>>,
    /// Where it came from, for a message about it (never the passphrase).
    from: String,
}

impl Passphrase {
    /// Wraps a passphrase given by the program itself (tests, a secrets
    /// manager ...).
    ///
    /// # Errors
    /// [`KeyError::EmptyPassphrase`] when it is empty.
    pub fn new(passphrase: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        Self::checked(Zeroizing::new(passphrase.into()), "the program")
    }

    fn checked(bytes: Zeroizing<Vec<u8>>, from: &str) -> Result<Self, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::EmptyPassphrase {
                from: from.to_owned(),
            });
        }
        Ok(Self {
            bytes,
            from: from.to_owned(),
        })
    }

    /// The passphrase bytes (UTF-8 unless it came from a file or the
    /// environment with other bytes).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Where it came from: "the prompt", "the environment variable
    /// TESSERA_PASSPHRASE", "the file pass.txt", "the program".
    #[must_use]
    pub fn source(&self) -> &str {
        &self.from
    }
}

// `Zeroizing` wipes the bytes on drop.
impl zeroize::ZeroizeOnDrop for Passphrase {}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// What the passphrase is for: a new key asks twice at the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphrasePurpose {
    /// Encrypting a new key: the prompt asks for confirmation.
    NewKey,
    /// Decrypting an existing key: the prompt asks once.
    Unlock,
}

/// Where a passphrase comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The environment variable [`PASSPHRASE_ENV`].
    Env,
    /// The first line of a file (a trailing `\n` or `\r\n` is removed).
    File(PathBuf),
    /// A prompt on the terminal; fails when standard input is not one.
    Prompt,
    /// [`PASSPHRASE_ENV`] when set, else a prompt when standard input is a
    /// terminal, else [`KeyError::NoPassphrase`]. The usual choice for a CLI
    /// without `--passphrase-file`.
    Auto,
}

impl PassphraseSource {
    /// The source for a CLI's `--passphrase-file` option: that file when
    /// given, else [`PassphraseSource::Auto`].
    #[must_use]
    pub fn from_cli(passphrase_file: Option<PathBuf>) -> Self {
        passphrase_file.map_or(Self::Auto, Self::File)
    }

    /// Obtains the passphrase.
    ///
    /// # Errors
    /// [`KeyError::NoPassphrase`] when the source is not available (variable
    /// unset, no terminal), [`KeyError::EmptyPassphrase`],
    /// [`KeyError::PassphraseMismatch`] when the confirmation differs,
    /// [`KeyError::NotFound`] / [`KeyError::Io`] /
    /// [`KeyError::BadPassphraseFile`] for a passphrase file,
    /// [`KeyError::Prompt`] when the terminal cannot be read.
    pub fn obtain(&self, purpose: PassphrasePurpose) -> Result<Passphrase, KeyError> {
        let mut prompt = |text: &str| rpassword::prompt_password(text).map(Zeroizing::new);
        let env = Environment {
            variable: std::env::var_os(PASSPHRASE_ENV),
            interactive: io::stdin().is_terminal(),
            prompt: &mut prompt,
        };
        self.obtain_in(purpose, env)
    }

    fn obtain_in(
        &self,
        purpose: PassphrasePurpose,
        env: Environment<'_>,
    ) -> Result<Passphrase, KeyError> {
        let passphrase = self.obtain_any(purpose, env)?;
        // A new key gets a passphrase worth the name; an existing key is
        // opened with whatever it has.
        if purpose == PassphrasePurpose::NewKey {
            let chars = String::from_utf8_lossy(passphrase.as_bytes())
                .chars()
                .count();
            if chars < MIN_NEW_PASSPHRASE_CHARS {
                return Err(KeyError::WeakPassphrase {
                    from: passphrase.from.clone(),
                    chars,
                    min: MIN_NEW_PASSPHRASE_CHARS,
                });
            }
        }
        Ok(passphrase)
    }

    fn obtain_any(
        &self,
        purpose: PassphrasePurpose,
        env: Environment<'_>,
    ) -> Result<Passphrase, KeyError> {
        match self {
            Self::Env => match env.variable {
                Some(value) => from_env(value),
                None => Err(KeyError::NoPassphrase),
            },
            Self::File(path) => read_passphrase_file(path),
            Self::Prompt => prompt(purpose, env),
            Self::Auto => match env.variable {
                Some(value) => from_env(value),
                None => prompt(purpose, env),
            },
        }
    }
}

/// What the process gives a passphrase or PIN source: injected so tests
/// need neither a terminal nor a mutated process environment.
pub(crate) struct Environment<'a> {
    pub(crate) variable: Option<OsString>,
    pub(crate) interactive: bool,
    pub(crate) prompt: &'a mut dyn FnMut(&str) -> io::Result<Zeroizing<String>>,
}

fn from_env(value: OsString) -> Result<Passphrase, KeyError> {
    let from = format!("the environment variable {PASSPHRASE_ENV}");
    Passphrase::checked(Zeroizing::new(value.into_vec()), &from)
}

fn prompt(purpose: PassphrasePurpose, env: Environment<'_>) -> Result<Passphrase, KeyError> {
    if !env.interactive {
        return Err(KeyError::NoPassphrase);
    }
    let first = (env.prompt)("Passphrase: ").map_err(KeyError::Prompt)?;
    if purpose == PassphrasePurpose::NewKey {
        let again = (env.prompt)("Repeat passphrase: ").map_err(KeyError::Prompt)?;
        if first.as_bytes() != again.as_bytes() {
            return Err(KeyError::PassphraseMismatch);
        }
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(first.len()));
    bytes.extend_from_slice(first.as_bytes());
    Passphrase::checked(bytes, "the prompt")
}

fn read_passphrase_file(path: &Path) -> Result<Passphrase, KeyError> {
    let bytes = read_secret_line(path, tessera_keys::FileKind::PassphraseFile).map_err(
        |fault| match fault {
            LineFault::Key(e) => e,
            LineFault::Bad(reason) => KeyError::BadPassphraseFile {
                file: path.to_owned(),
                reason,
            },
        },
    )?;
    Passphrase::checked(bytes, &format!("the file {}", path.display()))
}

/// Why a secret file (passphrase, PIN) could not be read.
pub(crate) enum LineFault {
    /// Missing or unreadable.
    Key(KeyError),
    /// Readable, but not one line of at most 4 KiB.
    Bad(&'static str),
}

/// Reads a secret file: its first line, one trailing `\n` / `\r\n`
/// removed, at most 4 KiB, into memory that is wiped afterwards.
pub(crate) fn read_secret_line(
    path: &Path,
    what: tessera_keys::FileKind,
) -> Result<Zeroizing<Vec<u8>>, LineFault> {
    let io_err = |source| {
        LineFault::Key(KeyError::Io {
            file: path.to_owned(),
            action: "read",
            source,
        })
    };
    // Reserve all capacity first (one byte more than can be read, so the
    // reader never grows the buffer): a growing Vec would leave copies of
    // the secret behind in freed memory.
    let limit = MAX_PASSPHRASE_FILE + 1;
    let capacity = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    if tessera_keys::storage::is_stdio(path) {
        // `-`: the first line of standard input (`pass show vendor | ...`).
        io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
    } else {
        let file = File::open(path)
            .map_err(|e| LineFault::Key(tessera_keys::storage::open_error_of(path, what, e)))?;
        let len = file.metadata().map_err(io_err)?.len();
        if len > MAX_PASSPHRASE_FILE {
            return Err(LineFault::Bad("larger than 4 KiB"));
        }
        file.take(limit).read_to_end(&mut bytes).map_err(io_err)?;
    }
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_PASSPHRASE_FILE {
        return Err(LineFault::Bad("larger than 4 KiB"));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.contains(&b'\n') {
        return Err(LineFault::Bad("more than one line"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn run(
        source: &PassphraseSource,
        purpose: PassphrasePurpose,
        variable: Option<&str>,
        interactive: bool,
        answers: &[&str],
    ) -> Result<Passphrase, KeyError> {
        let mut answers = answers.iter();
        let mut prompt = |_: &str| {
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
        source.obtain_in(purpose, env)
    }

    #[test]
    fn env_variable() {
        let p = run(
            &PassphraseSource::Env,
            PassphrasePurpose::NewKey,
            Some("s3cret phrase"),
            false,
            &[],
        );
        assert_eq!(p.unwrap().as_bytes(), b"s3cret phrase");
        let e = run(
            &PassphraseSource::Env,
            PassphrasePurpose::Unlock,
            None,
            true,
            &["x"],
        );
        assert!(matches!(e, Err(KeyError::NoPassphrase)));
        let e = run(
            &PassphraseSource::Env,
            PassphrasePurpose::Unlock,
            Some(""),
            false,
            &[],
        );
        assert!(matches!(e, Err(KeyError::EmptyPassphrase { .. })));
    }

    #[test]
    fn auto_prefers_env_then_prompt_then_fails() {
        let src = PassphraseSource::Auto;
        let p = run(
            &src,
            PassphrasePurpose::Unlock,
            Some("from-env"),
            true,
            &["typed"],
        );
        assert_eq!(p.unwrap().as_bytes(), b"from-env");
        let p = run(&src, PassphrasePurpose::Unlock, None, true, &["typed"]);
        assert_eq!(p.unwrap().as_bytes(), b"typed");
        // Non-interactive run without the variable: a clear error, no hang.
        let e = run(&src, PassphrasePurpose::Unlock, None, false, &["typed"]);
        let e = e.unwrap_err();
        assert!(matches!(e, KeyError::NoPassphrase));
        assert!(e.to_string().contains("--passphrase-file"));
    }

    /// A wrong passphrase is blamed on where it came from: typed at the
    /// prompt, it is not "TESSERA_PASSPHRASE or the passphrase file".
    #[test]
    fn a_wrong_passphrase_names_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("signing.pem");
        crate::generate_to_file_with(
            &key,
            &Passphrase::new("the right one").unwrap(),
            crate::EncryptionParams::insecure_for_tests(),
        )
        .unwrap();
        let typed = run(
            &PassphraseSource::Prompt,
            PassphrasePurpose::Unlock,
            None,
            true,
            &["a wrong one"],
        )
        .unwrap();
        let e = crate::load_signer(&key, &typed).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("the one from the prompt"), "{m}");
        assert!(!m.contains("TESSERA_PASSPHRASE"), "{m}");
        let from_env = run(
            &PassphraseSource::Env,
            PassphrasePurpose::Unlock,
            Some("a wrong one"),
            false,
            &[],
        )
        .unwrap();
        let m = crate::load_signer(&key, &from_env).unwrap_err().to_string();
        assert!(m.contains("environment variable TESSERA_PASSPHRASE"), "{m}");
    }

    #[test]
    fn prompt_confirms_new_keys() {
        let src = PassphraseSource::Prompt;
        let p = run(
            &src,
            PassphrasePurpose::NewKey,
            None,
            true,
            &["abc defg", "abc defg"],
        );
        assert_eq!(p.unwrap().as_bytes(), b"abc defg");
        let e = run(
            &src,
            PassphrasePurpose::NewKey,
            None,
            true,
            &["abc defg", "abc defh"],
        );
        assert!(matches!(e, Err(KeyError::PassphraseMismatch)));
        // A one-character passphrase for a new key is refused, saying so;
        // an existing key is opened with whatever it has.
        let e = run(&src, PassphrasePurpose::NewKey, None, true, &["x", "x"]).unwrap_err();
        assert!(
            matches!(e, KeyError::WeakPassphrase { chars: 1, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("at least 8"), "{e}");
        assert!(run(&src, PassphrasePurpose::Unlock, None, true, &["x"]).is_ok());
        // Unlocking asks once.
        let p = run(
            &src,
            PassphrasePurpose::Unlock,
            None,
            true,
            &["abc", "other"],
        );
        assert_eq!(p.unwrap().as_bytes(), b"abc");
        let e = run(&src, PassphrasePurpose::Unlock, None, true, &[""]);
        assert!(matches!(e, Err(KeyError::EmptyPassphrase { .. })));
        let e = run(&src, PassphrasePurpose::Unlock, None, false, &["abc"]);
        assert!(matches!(e, Err(KeyError::NoPassphrase)));
        let e = run(&src, PassphrasePurpose::Unlock, None, true, &[]);
        assert!(matches!(e, Err(KeyError::Prompt(_))));
    }

    #[test]
    fn file_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        let read = |content: &[u8]| {
            std::fs::File::create(&path)
                .unwrap()
                .write_all(content)
                .unwrap();
            run(
                &PassphraseSource::File(path.clone()),
                PassphrasePurpose::Unlock,
                None,
                false,
                &[],
            )
        };
        assert_eq!(
            read(b"correct horse\n").unwrap().as_bytes(),
            b"correct horse"
        );
        assert_eq!(read(b"crlf\r\n").unwrap().as_bytes(), b"crlf");
        assert_eq!(read(b"no newline").unwrap().as_bytes(), b"no newline");
        assert!(matches!(read(b"\n"), Err(KeyError::EmptyPassphrase { .. })));
        assert!(matches!(
            read(b"two\nlines\n"),
            Err(KeyError::BadPassphraseFile { .. })
        ));
        assert!(matches!(
            read(&[b'a'; 5000]),
            Err(KeyError::BadPassphraseFile { .. })
        ));
        assert_eq!(read(&[b'a'; 4096]).unwrap().as_bytes().len(), 4096);
        let missing = dir.path().join("missing");
        let e = run(
            &PassphraseSource::File(missing),
            PassphrasePurpose::Unlock,
            None,
            false,
            &[],
        );
        let e = e.unwrap_err();
        assert!(matches!(e, KeyError::NotFound { .. }), "{e:?}");
        // Named as a passphrase file, with no advice to make a key.
        let m = e.to_string();
        assert!(
            m.contains("no such passphrase file") && !m.contains("keygen"),
            "{m}"
        );
    }

    #[test]
    fn from_cli_prefers_the_file() {
        let p = PathBuf::from("/run/secrets/pass");
        assert_eq!(
            PassphraseSource::from_cli(Some(p.clone())),
            PassphraseSource::File(p)
        );
        assert_eq!(PassphraseSource::from_cli(None), PassphraseSource::Auto);
    }

    #[test]
    fn debug_redacts() {
        let p = Passphrase::new("hunter2").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(Passphrase::new("").is_err());
    }
}
