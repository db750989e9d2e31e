//! Files in and out: `-` is standard input / output; output files are
//! written atomically (a temporary file in the same folder, fsync, rename,
//! fsync of the folder) and never overwrite an existing file without
//! `--force`.
//!
//! - An output is `-`, a new path, or an existing **regular** file: a
//!   device node, a FIFO, a socket or a directory is refused, `--force` or
//!   not ([`Target::check`]), so `-o /dev/full --force` never replaces a
//!   device with a file.
//! - Temporary files are named `.tessera-<pid>-<random>.tmp` and locked
//!   (`flock`) while they are written. A run killed in the middle leaves
//!   them behind; the next run that writes into the same folder removes
//!   those whose process is gone and that nobody holds locked
//!   ([`remove_stale_temps`]).
//! - File names made from data (bulk licenses) are joined to their folder
//!   only as one plain name ([`join_inside`]), never as a path.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

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

    /// Fails early when the output cannot be written, so no work is done
    /// (and nothing recorded) for it: an existing file without `force`, or
    /// anything that is not a regular file (a device, a FIFO, a socket, a
    /// directory), with or without `force`.
    ///
    /// # Errors
    /// [`Error::Exists`], [`Error::NotAFile`], [`Error::Io`].
    pub fn check(&self, force: bool) -> Result<(), Error> {
        match self {
            Self::Stdout => Ok(()),
            Self::File(p) => check_output(p, force),
        }
    }

    /// Writes `bytes`.
    ///
    /// # Errors
    /// [`Error::Exists`], [`Error::Io`].
    pub fn write(&self, bytes: &[u8], force: bool) -> Result<(), Error> {
        match self {
            // A closed pipe ends the output quietly; another failure is
            // the documented output failure (exit 7).
            Self::Stdout => tessera_cli::stdout(bytes).map_err(Error::Stdout),
            Self::File(p) => write_atomic(p, bytes, force),
        }
    }

    /// Writes public `bytes` (public keys for firmware): a file is made
    /// readable by all, mode 0644 less the umask
    /// ([`write_atomic_public`]), where [`Target::write`] makes it
    /// owner-only.
    ///
    /// # Errors
    /// [`Error::Exists`], [`Error::Io`].
    pub fn write_public(&self, bytes: &[u8], force: bool) -> Result<(), Error> {
        match self {
            Self::Stdout => self.write(bytes, force),
            Self::File(p) => write_atomic_public(p, bytes, force),
        }
    }
}

/// What kind of file system object `t` is, for messages.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "directory"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// [`Target::check`] for a path: new, or an existing regular file (a
/// symbolic link is judged by what it points to) with `force`.
///
/// # Errors
/// [`Error::Exists`], [`Error::NotAFile`], [`Error::Io`].
pub fn check_output(path: &Path, force: bool) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            if force {
                Ok(())
            } else {
                Err(Error::Exists(path.to_owned()))
            }
        }
        Ok(m) => Err(Error::NotAFile {
            path: path.to_owned(),
            kind: kind_of(m.file_type()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symbolic link is an existing name.
            if !force && std::fs::symlink_metadata(path).is_ok() {
                return Err(Error::Exists(path.to_owned()));
            }
            create_folder_for(path)
        }
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Creates the folders a new output file goes into (as `issue --bulk`
/// creates its output folder), so that a command checks its output before
/// it records anything and never fails on a missing folder afterwards.
///
/// # Errors
/// [`Error::Io`] naming the output file (a folder on the way that is a
/// file, or one that cannot be created).
fn create_folder_for(path: &Path) -> Result<(), Error> {
    let dir = parent_dir(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(path)(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a folder", dir.display()),
        ))),
        Err(_) => std::fs::create_dir_all(&dir).map_err(Error::io(path)),
    }
}

/// The folder an output file goes into.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// The prefix and suffix of every temporary file tessera writes.
const TEMP_PREFIX: &str = ".tessera-";
const TEMP_SUFFIX: &str = ".tmp";
/// A temporary file whose process cannot be told (older tessera versions
/// did not name it) is stale after this long.
const UNNAMED_TEMP_AGE: core::time::Duration = core::time::Duration::from_secs(3_600);
/// A temporary file whose process id was reused by another process is
/// stale after this long: no tessera run keeps one open for a day.
const REUSED_PID_AGE: core::time::Duration = core::time::Duration::from_secs(86_400);

/// A new temporary file in `dir`, `.tessera-<pid>-<random>.tmp`, created
/// exclusively (mode 0600) and locked until it is dropped or renamed, so
/// that [`remove_stale_temps`] of another run leaves it alone.
///
/// # Errors
/// [`Error::Io`].
pub fn temp_file_in(dir: &Path) -> Result<tempfile::NamedTempFile, Error> {
    temp_file_with(dir, None)
}

/// [`temp_file_in`] created with `mode` (less the umask) instead of 0600.
fn temp_file_with(dir: &Path, mode: Option<u32>) -> Result<tempfile::NamedTempFile, Error> {
    use std::os::unix::fs::PermissionsExt as _;
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    if let Some(mode) = mode {
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let tmp = builder.tempfile_in(dir).map_err(Error::io(dir))?;
    rustix::fs::flock(tmp.as_file(), FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| Error::io(tmp.path())(e.into()))?;
    Ok(tmp)
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists, but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Removes the temporary files (`.tessera-<pid>-<random>.tmp`) that runs
/// killed in the middle left in `dir`: those whose process is gone (or
/// which are older than a day) and which no process holds locked. Files
/// of runs still going are kept. Returns how many were removed; a folder
/// that cannot be read removes nothing.
#[must_use]
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
        else {
            continue;
        };
        // Never follow a link, never touch anything but a regular file.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .unwrap_or_default();
        let pid = middle
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let stale = match pid {
            Some(p) if p == own => false,
            Some(p) => !process_alive(p) || age > REUSED_PID_AGE,
            None => age > UNNAMED_TEMP_AGE,
        };
        if !stale {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// `dir/name` for a file name made from data (a serial and a sequence):
/// `name` must be one plain file name, neither empty nor `.` or `..`,
/// without a path separator, NUL, control or format character.
///
/// # Errors
/// [`Error::Usage`] naming the refused name.
pub fn join_inside(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && tessera_verifier::text::check(name).is_ok();
    if !plain {
        return Err(Error::Usage(format!(
            "refusing to write `{}` into {}: a file name made from data must be one plain name",
            crate::validate::shown(name),
            dir.display()
        )));
    }
    Ok(dir.join(name))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, fsync, rename over (with `force`) or next to (without) the
/// target, fsync of the folder. A crash leaves the old file or the new
/// one, never a part; the temporary files an earlier, interrupted run
/// left in the folder are removed first ([`remove_stale_temps`]).
///
/// # Errors
/// [`Error::Exists`] when `path` exists and `force` is false,
/// [`Error::NotAFile`] for anything but a regular file, [`Error::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<(), Error> {
    write_atomic_mode(path, bytes, force, None)
}

/// [`write_atomic`] of a public file (public keys): mode 0644 less the
/// umask, as files a tool writes usually are, instead of owner-only 0600
/// (licenses, ledger exports and the rest hold customers' data).
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_public(path: &Path, bytes: &[u8], force: bool) -> Result<(), Error> {
    write_atomic_mode(path, bytes, force, Some(tessera_keys::storage::PUBLIC_MODE))
}

fn write_atomic_mode(
    path: &Path,
    bytes: &[u8],
    force: bool,
    mode: Option<u32>,
) -> Result<(), Error> {
    check_output(path, force)?;
    let dir = parent_dir(path);
    let _ = remove_stale_temps(&dir);
    // Errors name the user's path, never the temporary file's.
    let mut tmp = temp_file_with(&dir, mode).map_err(|e| match e {
        Error::Io { source, .. } => Error::io(path)(source),
        e => e,
    })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(Error::io(path))?;
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
    if path.as_os_str() != "-" {
        return tessera_keys::storage::read_regular(path, cap).map_err(Error::io(path));
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(cap + 1)
        .read_to_end(&mut buf)
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
/// `\u` escapes (four hex digits) here, which is the same JSON.
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

/// A CSV cell of text that came from an order, a request or a partner's
/// file: one a spreadsheet would run as a formula gets a `'` in front
/// ([`tessera_verifier::text::csv_needs_quote`]; OWASP CSV injection), as
/// `tessera-agent seats export` does.
#[must_use]
pub fn csv_cell(text: &str) -> String {
    if tessera_verifier::text::csv_needs_quote(text) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
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
    fn an_output_into_a_missing_folder_creates_it_at_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing/sub/r.lic");
        // The check (before anything is recorded) makes the folder, so the
        // write after it cannot fail on it.
        Target::File(p.clone()).check(false).unwrap();
        assert!(dir.path().join("missing/sub").is_dir());
        write_atomic(&p, b"one", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        // A file where a folder should be: the error names the user's path.
        let under_file = dir.path().join("missing/sub/r.lic/x.lic");
        let e = Target::File(under_file.clone()).check(false).unwrap_err();
        assert!(
            e.to_string().contains(&under_file.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn write_errors_name_the_output_never_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
        let p = ro.join("r.lic");
        let result = write_atomic(&p, b"one", false);
        std::fs::set_permissions(&ro, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // Root writes anyway; elsewhere the error names r.lic.
        if let Err(e) = result {
            let text = e.to_string();
            assert!(text.contains(&p.display().to_string()), "{text}");
            assert!(!text.contains(TEMP_PREFIX), "{text}");
        }
    }

    #[test]
    fn outputs_are_new_paths_or_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        for special in ["/dev/null", "/dev/full"] {
            let p = Path::new(special);
            if !p.exists() {
                continue;
            }
            for force in [false, true] {
                let e = write_atomic(p, b"x", force).unwrap_err();
                assert!(
                    matches!(
                        &e,
                        Error::NotAFile {
                            kind: "character device",
                            ..
                        }
                    ),
                    "{e}"
                );
            }
            assert!(Target::File(p.into()).check(true).is_err());
        }
        // A directory, and a link to one.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            write_atomic(&sub, b"x", true),
            Err(Error::NotAFile {
                kind: "directory",
                ..
            })
        ));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = Target::File(fifo.clone()).check(true).unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotAFile {
                    kind: "FIFO (named pipe)",
                    ..
                }
            ),
            "{e}"
        );
        // A dangling link is an existing name.
        let link = dir.path().join("link.lic");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(matches!(
            write_atomic(&link, b"x", false),
            Err(Error::Exists(_))
        ));
    }

    #[test]
    fn stale_temporary_files_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A dead process (pid far beyond pid_max) left two files.
        for n in 0..2 {
            std::fs::write(
                dir.path().join(format!(".tessera-999999999-x{n}.tmp")),
                b"lic",
            )
            .unwrap();
        }
        // Ours, in use: kept.
        let live = temp_file_in(dir.path()).unwrap();
        // A directory and a link with the pattern: never touched.
        std::fs::create_dir(dir.path().join(".tessera-999999999-dir.tmp")).unwrap();
        std::os::unix::fs::symlink(
            "/etc/hostname",
            dir.path().join(".tessera-999999999-ln.tmp"),
        )
        .unwrap();
        // Someone else's file of another name: untouched.
        std::fs::write(dir.path().join("keep.tmp"), b"x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 2);
        assert!(live.path().exists());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.contains(&"keep.tmp".to_owned()));
        // A locked file of a dead process (its lock handed on) stays too.
        let held = dir.path().join(".tessera-999999999-held.tmp");
        std::fs::write(&held, b"x").unwrap();
        let f = File::open(&held).unwrap();
        rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 0);
        drop(f);
        assert_eq!(remove_stale_temps(dir.path()), 1);
    }

    #[test]
    fn data_names_join_as_one_plain_name() {
        let dir = Path::new("/srv/out");
        assert_eq!(
            join_inside(dir, "SW-2026-000001-1.lic").unwrap(),
            Path::new("/srv/out/SW-2026-000001-1.lic")
        );
        for bad in [
            "",
            ".",
            "..",
            "../x.lic",
            "/etc/passwd",
            "a/b",
            "x\0",
            "x\n.lic",
            "a\\b",
        ] {
            assert!(join_inside(dir, bad).is_err(), "{bad:?}");
        }
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
