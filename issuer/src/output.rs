//! Files in and out: `-` is standard input / output; output files are
//! written atomically (a temporary file in the same folder, fsync, rename,
//! fsync of the folder) and never overwrite an existing file without
//! `--force`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Longest input file read (orders, requests, licenses, identities):
/// anything larger is not one of ours.
pub const MAX_INPUT: u64 = 4 * 1024 * 1024;

/// Where output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// A file, written atomically.
    File(PathBuf),
}

impl Target {
    /// `-` (or nothing) is standard output.
    #[must_use]
    pub fn from_arg(arg: Option<&Path>) -> Self {
        match arg {
            None => Self::Stdout,
            Some(p) if p.as_os_str() == "-" => Self::Stdout,
            Some(p) => Self::File(p.to_owned()),
        }
    }

    /// Fails early when the file exists and `force` is not given, so no
    /// work is done (and nothing recorded) for output that cannot be
    /// written.
    ///
    /// # Errors
    /// [`Error::Exists`].
    pub fn check(&self, force: bool) -> Result<(), Error> {
        match self {
            Self::File(p) if !force && p.exists() => Err(Error::Exists(p.clone())),
            _ => Ok(()),
        }
    }

    /// Writes `bytes`.
    ///
    /// # Errors
    /// [`Error::Exists`], [`Error::Io`].
    pub fn write(&self, bytes: &[u8], force: bool) -> Result<(), Error> {
        match self {
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(Error::io("<stdout>"))
            }
            Self::File(p) => write_atomic(p, bytes, force),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, fsync, rename over (with `force`) or next to (without) the
/// target, fsync of the folder. A crash leaves the old file or the new
/// one, never a part.
///
/// # Errors
/// [`Error::Exists`] when `path` exists and `force` is false,
/// [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tessera-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(Error::io(&dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(Error::io(tmp.path()))?;
    if force {
        tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists(path.to_owned())
            } else {
                Error::io(path)(e.error)
            }
        })?;
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(&dir))
}

/// Reads a text input file, or standard input for `-`.
///
/// # Errors
/// [`Error::Io`] (also for a file over [`MAX_INPUT`] bytes or not UTF-8).
pub fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|_| Error::Io {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// Reads an input file, or standard input for `-`, up to [`MAX_INPUT`]
/// bytes.
///
/// # Errors
/// [`Error::Io`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let buf = read_capped(path, MAX_INPUT)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > MAX_INPUT {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "larger than 4 MiB; this is not a tessera file",
            ),
        });
    }
    Ok(buf)
}

/// Reads a file that may also be a screenshot or photo of its QR code
/// (PNG or JPEG, up to [`tessera_qr::MAX_IMAGE_BYTES`]): an image is
/// replaced by the code's payload, anything else is read as by
/// [`read_bytes`].
///
/// # Errors
/// [`Error::Io`], [`Error::Qr`] for an image without one readable code.
pub fn read_bytes_or_qr(path: &Path) -> Result<Vec<u8>, Error> {
    let buf = read_capped(path, tessera_qr::MAX_IMAGE_BYTES)?;
    if tessera_qr::is_image(&buf) {
        return tessera_qr::decode_image(&buf).map_err(|source| Error::Qr {
            path: path.display().to_string(),
            source,
        });
    }
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > MAX_INPUT {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "larger than 4 MiB and not an image; this is not a tessera file",
            ),
        });
    }
    Ok(buf)
}

/// Reads `path` (or standard input for `-`): at most `cap` + 1 bytes, so
/// the caller can tell a file over the cap.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().lock().take(cap + 1).read_to_end(&mut buf)
    } else {
        File::open(path).and_then(|f| f.take(cap + 1).read_to_end(&mut buf))
    }
    .map_err(Error::io(path))?;
    Ok(buf)
}

/// Text as it may reach a terminal: every character the text rule
/// ([`tessera_verifier::text::check`]) refuses is shown escaped
/// (`\u{1b}`), except the line ends that separate the text's own lines.
/// Everything `tessera` prints to standard output or error as text goes
/// through here, so a customer name, a serial or a label from a request,
/// an order or a damaged ledger can never move the cursor, clear the
/// screen or reverse a line.
#[must_use]
pub fn for_terminal(text: &str) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = write!(out, "{}", tessera_verifier::text::escaped(line));
    }
    out
}

/// JSON text as it may reach a terminal: `serde_json` escapes the C0
/// control characters inside strings but writes DEL, the C1 controls and
/// format characters (U+202E ...) as they are; these are written as
/// `\uXXXX` escapes here, which is the same JSON.
#[must_use]
pub fn json_for_terminal(json: &str) -> String {
    use core::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        if ch == '\n' || tessera_verifier::text::is_allowed(ch) {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// Writes a line to standard error ([`for_terminal`]), ignoring a closed
/// stream.
pub fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", for_terminal(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.lic");
        write_atomic(&p, b"one", false).unwrap();
        assert!(matches!(
            write_atomic(&p, b"two", false),
            Err(Error::Exists(_))
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(Target::File(p.clone()).check(false).is_err());
        assert!(Target::File(p).check(true).is_ok());
        assert_eq!(Target::from_arg(Some(Path::new("-"))), Target::Stdout);
    }

    #[test]
    fn terminal_text_is_escaped_but_keeps_its_lines() {
        let shown = for_terminal("SW-1 \u{1b}[2J\ncustomer ACME\u{202e}gpj\u{7}\n");
        assert_eq!(shown, "SW-1 \\u{1b}[2J\ncustomer ACME\\u{202e}gpj\\u{7}\n");
        let json = serde_json::to_string_pretty(&serde_json::json!({
            "customer": "A\u{1b}B\u{7f}C\u{9b}D\u{202e}E\u{e0041}F",
        }))
        .unwrap();
        let safe = json_for_terminal(&json);
        for line in safe.lines() {
            assert_eq!(tessera_verifier::text::check(line), Ok(()), "{line}");
        }
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(
            back["customer"],
            "A\u{1b}B\u{7f}C\u{9b}D\u{202e}E\u{e0041}F"
        );
    }
}
