//! Files of the keyring and of key material.
//!
//! New files are created with `create_new` (an existing file is an error,
//! never overwritten) and their mode, written fully and fsynced, and so is
//! their folder, so a file reported as written survives a power cut. The
//! keyring is saved atomically: a temporary file in the same folder, fsync,
//! rename over the old file, fsync of the folder.
//!
//! The signing crate (`tessera-signer`) stores private key files through
//! these helpers too, so every key file tessera writes follows one rule.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::KeyError;

/// Whether `path` names standard input or output (`-`).
#[must_use]
pub fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Mode of private key files: owner read/write only.
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of public files (public keys, keyrings).
pub const PUBLIC_MODE: u32 = 0o644;

/// Maps an error opening `path` for reading.
pub fn open_error(path: &Path, source: io::Error) -> KeyError {
    open_error_of(path, crate::FileKind::Other, source)
}

/// Maps an error opening `path`, a `what`, for reading.
pub fn open_error_of(path: &Path, what: crate::FileKind, source: io::Error) -> KeyError {
    if source.kind() == io::ErrorKind::NotFound {
        KeyError::NotFound {
            file: path.to_owned(),
            what,
        }
    } else {
        KeyError::Io {
            file: path.to_owned(),
            action: "open",
            source,
        }
    }
}

/// Reads at most `limit + 1` bytes of the regular file `path` (one more
/// than a caller accepts, so it can tell a file that is too large); `-` is
/// standard input. A FIFO,
/// a device or a folder is refused before anything is read: opened without
/// blocking, so a FIFO cannot hang the caller, and never read, so
/// `/dev/zero` cannot fill its memory.
///
/// # Errors
/// The error of opening, [`io::ErrorKind::InvalidInput`] for something
/// that is not a regular file.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    if is_stdio(path) {
        // `-`: standard input, read to its end (at most `limit` + 1).
        let mut buf = Vec::new();
        io::stdin()
            .lock()
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)?;
        return Ok(buf);
    }
    let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nonblock)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a folder, FIFO or device); give the path of the file itself",
        ));
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads the regular file `path` as UTF-8 text of at most `limit` bytes
/// ([`read_regular`]).
///
/// # Errors
/// As [`read_regular`]; [`io::ErrorKind::InvalidData`] for a larger file or
/// one that is not UTF-8.
pub fn read_regular_text(path: &Path, limit: u64) -> io::Result<String> {
    let buf = read_regular(path, limit)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, which no file of this kind is; check the path"),
        ));
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text; check the path"))
}

/// Creates `path` (never overwriting), writes `contents`, fsyncs the file and
/// its folder. A partly written file is removed.
///
/// # Errors
/// [`KeyError::AlreadyExists`] when `path` exists, [`KeyError::Io`].
pub fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists {
                    file: path.to_owned(),
                }
            } else {
                KeyError::Io {
                    file: path.to_owned(),
                    action: "create",
                    source,
                }
            }
        })?;
    // The umask may have removed bits, never added any; set the mode
    // explicitly so a public file is readable whatever the umask.
    let written = file
        .set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        // Best effort: the write error is the one to report.
        let _ = fs::remove_file(path);
        return Err(KeyError::Io {
            file: path.to_owned(),
            action: "write",
            source,
        });
    }
    sync_parent(path)
}

/// Replaces `path` atomically with `contents`: a temporary file in the same
/// folder, fsync, rename, fsync of the folder.
///
/// # Errors
/// [`KeyError::Io`].
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let dir = parent(path);
    let io_err = |action, source| KeyError::Io {
        file: path.to_owned(),
        action,
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tessera-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| io_err("create a temporary file beside", e))?;
    // Explicit, since the umask applies at creation.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| io_err("write", e))?;
    temp.write_all(contents).map_err(|e| io_err("write", e))?;
    temp.as_file().sync_all().map_err(|e| io_err("write", e))?;
    temp.persist(path).map_err(|e| io_err("replace", e.error))?;
    sync_parent(path)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_parent(path: &Path) -> Result<(), KeyError> {
    let dir = parent(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| KeyError::Io {
            file: dir.to_owned(),
            action: "sync the folder of",
            source,
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn new_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        write_new_file(&path, b"one", PRIVATE_MODE).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let e = write_new_file(&path, b"two", PRIVATE_MODE).unwrap_err();
        assert!(
            matches!(e, KeyError::AlreadyExists { ref file } if file == &path),
            "{e:?}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let e = write_new_file(&dir.path().join("no/dir/k"), b"x", PUBLIC_MODE).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::Io {
                    action: "create",
                    ..
                }
            ),
            "{e:?}"
        );
        let missing = dir.path().join("missing");
        let e = open_error(&missing, io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(e, KeyError::NotFound { .. }), "{e:?}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.toml");
        write_atomic(&path, b"one", PUBLIC_MODE).unwrap();
        write_atomic(&path, b"two", PUBLIC_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ring.toml")]);
    }
}
