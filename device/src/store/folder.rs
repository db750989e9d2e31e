//! Files the agent trusts, opened so that nobody else can steer it.
//!
//! `tessera-agent` runs as root, and what its state folder holds decides
//! what the PBX may do. Like OpenSSH's `StrictModes`, it refuses (exit 2,
//! naming the path, owner and mode):
//!
//! - a state folder that is not owned by root or the agent's user, or that
//!   others may write; on the path to it (and to a keyring or
//!   configuration named elsewhere), as given, a folder that is not owned
//!   by root or the agent's user or that others may write (world-writable
//!   only with the sticky bit, as `/tmp`), or a symbolic link that someone
//!   else owns. Links on the path are followed one component at a time
//!   ([`Folder::open`], [`read_file`]), and the folder a link leads to is
//!   checked like any other, so a path through a folder another user
//!   controls (who could point a link elsewhere) is refused;
//! - a file it trusts (license, state, device key, keyring, `agent.toml`,
//!   lock, seat store) owned by someone else or writable by others, and a
//!   device key others may read;
//! - anything but a regular file where it expects one: a symbolic link, a
//!   FIFO (which would hang a read), a device, a folder.
//!
//! The state folder is resolved and opened once per command and held as a
//! descriptor; inside it every file is opened relative to that descriptor
//! with `O_NOFOLLOW`, so a symbolic link planted at any name is
//! refused, never followed; files are replaced through a temporary file
//! created with `O_EXCL` under a random name (`NAME.new-` and 16 hex
//! digits), fsynced and renamed over the name, so no planted link or file
//! is ever written through. Every read has a size cap, checked before the
//! file is read and again while reading.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use tessera_verifier::text::escaped;

/// Suffix of a file being written; a random part follows it
/// (`license.new-0123456789abcdef`).
pub const TEMP_SUFFIX: &str = ".new";
/// How many random temporary names are tried before giving up.
const TEMP_TRIES: usize = 8;

/// Who may read a trusted file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anybody may read it; only its owner may write it.
    Shared,
    /// Only its owner may read it (the device key).
    Private,
}

/// Why a file or folder was refused or could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// An operating system call failed.
    #[error("cannot {action} {}: {source}; check that it is on a writable file system and belongs to the user running tessera-agent", shown(.path))]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Owner or mode let someone else change what the agent trusts.
    #[error("refusing {}: owned by uid {owner}, mode {mode:04o}: {problem}; {fix}", shown(.path))]
    Unsafe {
        /// The file or folder.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// What is wrong.
        problem: &'static str,
        /// What to run.
        fix: String,
    },
    /// Not a regular file (or not a folder, for the state folder).
    #[error("refusing {}: it is {kind}, not a {expected}; remove it (tessera-agent recreates its files)", shown(.path))]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is: "a symbolic link", "a FIFO", ...
        kind: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// Larger than any file of its kind.
    #[error("refusing {}: {len} bytes or more, larger than the {cap} bytes a {what} may have; it is not a {what}", shown(.path))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least).
        len: u64,
        /// The cap.
        cap: u64,
        /// What the file should be.
        what: &'static str,
    },
}

impl FileError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Unsafe { .. } => "unsafe_permissions",
            Self::NotRegular { .. } => "not_regular_file",
            Self::TooLarge { .. } => "too_large",
        }
    }
}

/// A path as it may be shown: control and format characters escaped.
#[must_use]
pub fn shown(path: &Path) -> String {
    escaped(&path.to_string_lossy()).to_string()
}

/// `path` as one word for a POSIX shell, then escaped for the terminal: in
/// single quotes, each `'` written as `'\''`, so a suggested command pasted
/// into a shell names exactly this path and runs nothing else, whatever
/// the path holds (`;`, `$(...)`, quotes). A control or format character
/// is shown escaped (`\u{1b}`), so the pasted word then names no file.
#[must_use]
pub fn shell_word(path: &Path) -> String {
    let quoted = format!("'{}'", path.to_string_lossy().replace('\'', "'\\''"));
    escaped(&quoted).to_string()
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuses `st` (of `path`) when someone but root and the agent's user
/// owns it, when others may write it (unless `sticky_ok` and the sticky bit
/// is set), or, for [`Access::Private`], when others may read it.
fn check_owner_mode(
    path: &Path,
    st: &Stat,
    access: Access,
    sticky_ok: bool,
) -> Result<(), FileError> {
    let mode = st.st_mode & 0o7777;
    let owner = st.st_uid;
    let me = euid();
    let unsafe_ = |problem, fix| FileError::Unsafe {
        path: path.to_owned(),
        owner,
        mode,
        problem,
        fix,
    };
    if owner != me && owner != 0 {
        return Err(unsafe_(
            "owned by neither root nor the user running tessera-agent, so that user could replace what the agent trusts",
            format!("run `chown {me} {}`", shell_word(path)),
        ));
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky_ok && sticky) {
        return Err(unsafe_(
            "writable by group or others, so another user could replace the license, the state or the keyring",
            format!("run `chmod go-w {}`", shell_word(path)),
        ));
    }
    if access == Access::Private && mode & 0o077 != 0 {
        return Err(unsafe_(
            "readable by group or others, and it holds a private key",
            format!("run `chmod 600 {}`", shell_word(path)),
        ));
    }
    Ok(())
}

/// Longest chain of symbolic links a path may lead through (the kernel's
/// limit too).
const MAX_LINKS: usize = 40;

/// What [`walk`] looks for at the end of the path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A folder (created, mode 0700, with its missing parents, when
    /// `create`).
    Folder { create: bool },
    /// A file: its folder and its name (a link at the name is followed).
    File,
}

/// Where [`walk`] ended.
struct Walked {
    /// The folder reached (for [`Want::File`], the file's folder), opened
    /// with `O_PATH`.
    fd: OwnedFd,
    /// Its path with every link resolved: the folders walked, from `/`.
    real: PathBuf,
    /// For [`Want::File`], the file's name in it.
    name: Option<std::ffi::OsString>,
    /// The folders the walk created ([`Want::Folder`] with `create`), as
    /// real paths, in the order made.
    made: Vec<PathBuf>,
}

/// `real` (a stack of names below `/`) as a path.
fn real_path(real: &[std::ffi::OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(real);
    p
}

/// Opens `/` and checks it as a folder above what is looked for.
fn open_root() -> Result<OwnedFd, FileError> {
    let root = Path::new("/");
    let fd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err("open", root)(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err("inspect", root)(e.into()))?;
    check_owner_mode(root, &st, Access::Shared, true)?;
    Ok(fd)
}

/// Walks `path` one component at a time from `/` (a relative path from the
/// current folder's real path), each step relative to the descriptor of
/// the folder before it, and checks everything the path leads through, as
/// given, like OpenSSH's `StrictModes` and more: every folder on the way
/// (and every folder a link leads to) is owned by root or the agent's user
/// and writable by nobody else (world-writable only with the sticky bit,
/// as `/tmp`), and every symbolic link on the way is owned by root or the
/// agent's user too. Links are resolved here, one component at a time
/// (at most [`MAX_LINKS`]), never by the kernel, so nothing is resolved
/// twice and nothing unchecked is passed through. `None` when a component
/// does not exist (and is not to be created).
fn walk(path: &Path, want: Want) -> Result<Option<Walked>, FileError> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;

    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map_err(io_err("find the current folder of", path))?
            .join(path)
    };
    let to_queue = |p: &Path| -> VecDeque<OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_owned()),
                Component::ParentDir => Some(OsString::from("..")),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            })
            .collect()
    };
    let mut queue = to_queue(&absolute);
    let mut fd = open_root()?;
    let mut real: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    let mut made = Vec::new();
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    while let Some(name) = queue.pop_front() {
        let here = real_path(&real).join(&name);
        if name == ".." {
            let parent = rustix::fs::openat(&fd, "..", dir_flags, Mode::empty())
                .map_err(|e| io_err("open", &here)(e.into()))?;
            real.pop();
            let st = rustix::fs::fstat(&parent).map_err(|e| io_err("inspect", &here)(e.into()))?;
            check_owner_mode(&real_path(&real), &st, Access::Shared, true)?;
            fd = parent;
            continue;
        }
        let last = queue.is_empty();
        let st = match rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => match want {
                Want::Folder { create: true } => {
                    match rustix::fs::mkdirat(&fd, name.as_os_str(), Mode::from_raw_mode(0o700)) {
                        Ok(()) => made.push(here.clone()),
                        Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err("create", &here)(e.into())),
                    }
                    rustix::fs::statat(&fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| io_err("inspect", &here)(e.into()))?
                }
                Want::File if last => {
                    return Ok(Some(Walked {
                        fd,
                        real: real_path(&real),
                        name: Some(name),
                        made,
                    }))
                }
                _ => return Ok(None),
            },
            Err(e) => return Err(io_err("inspect", &here)(e.into())),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                check_link_owner(&here, &st)?;
                links += 1;
                if links > MAX_LINKS {
                    return Err(io_err("resolve", path)(Errno::LOOP.into()));
                }
                let target = rustix::fs::readlinkat(&fd, name.as_os_str(), Vec::new())
                    .map_err(|e| io_err("read the link", &here)(e.into()))?;
                let target = PathBuf::from(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                        target.as_bytes(),
                    ),
                );
                if target.is_absolute() {
                    fd = open_root()?;
                    real.clear();
                }
                for c in to_queue(&target).into_iter().rev() {
                    queue.push_front(c);
                }
            }
            _ if last && want == Want::File => {
                return Ok(Some(Walked {
                    fd,
                    real: real_path(&real),
                    name: Some(name),
                    made,
                }))
            }
            FileType::Directory => {
                let next = rustix::fs::openat(&fd, name.as_os_str(), dir_flags, Mode::empty())
                    .map_err(|e| io_err("open", &here)(e.into()))?;
                // The folder looked for is checked by the caller, under
                // the name it was given and by the stricter rule.
                if !last {
                    let st =
                        rustix::fs::fstat(&next).map_err(|e| io_err("inspect", &here)(e.into()))?;
                    check_owner_mode(&here, &st, Access::Shared, true)?;
                }
                fd = next;
                real.push(name);
            }
            kind => {
                return Err(FileError::NotRegular {
                    path: here,
                    kind: kind_name(kind),
                    expected: "folder",
                })
            }
        }
    }
    match want {
        Want::Folder { .. } => Ok(Some(Walked {
            fd,
            real: real_path(&real),
            name: None,
            made,
        })),
        // The path named a folder (`/`, or ending in `..`).
        Want::File => Err(FileError::NotRegular {
            path: path.to_owned(),
            kind: "a folder",
            expected: "regular file",
        }),
    }
}

/// Refuses a symbolic link on the way to a trusted file or folder that
/// someone but root and the agent's user owns.
fn check_link_owner(path: &Path, st: &Stat) -> Result<(), FileError> {
    let me = euid();
    if st.st_uid == me || st.st_uid == 0 {
        return Ok(());
    }
    Err(FileError::Unsafe {
        path: path.to_owned(),
        owner: st.st_uid,
        mode: st.st_mode & 0o7777,
        problem: "a symbolic link owned by neither root nor the user running tessera-agent, on the way to a file the agent trusts",
        fix: format!("replace it with a link of root's, or run `chown -h {me} {}`", shell_word(path)),
    })
}

fn open_flags_read() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY
}

/// Turns the result of opening `name` without following links into the
/// file, `None` when it does not exist.
fn opened(path: &Path, r: rustix::io::Result<OwnedFd>) -> Result<Option<OwnedFd>, FileError> {
    match r {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(Errno::LOOP) => Err(FileError::NotRegular {
            path: path.to_owned(),
            kind: "a symbolic link",
            expected: "regular file",
        }),
        Err(Errno::NXIO) => Err(FileError::NotRegular {
            path: path.to_owned(),
            kind: "a socket or device",
            expected: "regular file",
        }),
        Err(e) => Err(io_err("open", path)(e.into())),
    }
}

/// Checks an opened file: regular, owner and mode as `access` asks (when
/// `trusted`), at most `cap` bytes; returns its size.
fn check_opened(
    path: &Path,
    fd: &OwnedFd,
    trusted: Option<Access>,
    cap: u64,
    what: &'static str,
) -> Result<u64, FileError> {
    let st = rustix::fs::fstat(fd).map_err(|e| io_err("inspect", path)(e.into()))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(FileError::NotRegular {
            path: path.to_owned(),
            kind: kind_name(kind),
            expected: "regular file",
        });
    }
    if let Some(access) = trusted {
        check_owner_mode(path, &st, access, false)?;
    }
    let len = u64::try_from(st.st_size).unwrap_or(0);
    if len > cap {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            len,
            cap,
            what,
        });
    }
    Ok(len)
}

/// Reads at most `cap` bytes of a file of `len` bytes; more is
/// [`FileError::TooLarge`] (a file that grew after it was checked),
/// unless `truncate`.
fn read_capped(
    path: &Path,
    fd: OwnedFd,
    (len, cap): (u64, u64),
    what: &'static str,
    truncate: bool,
) -> Result<Vec<u8>, FileError> {
    // Room for the whole file up front (its size was checked): a growing
    // buffer would leave copies of a key behind in freed memory.
    let room = usize::try_from(len.min(cap).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(room);
    File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() as u64 > cap {
        if truncate {
            bytes.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
        } else {
            return Err(FileError::TooLarge {
                path: path.to_owned(),
                len: bytes.len() as u64,
                cap,
                what,
            });
        }
    }
    Ok(bytes)
}

/// Reads a file outside the state folder that the agent reads by itself
/// (configuration, keyring, catalog, a sharing server's license): a regular
/// file of at most `cap` bytes, and when `trusted`, owned by root or the
/// agent's user and not writable by others, reached through folders and
/// links nobody else owns or may change: the path is walked as given, one
/// component at a time (links included, see [`walk`]), and the file is
/// opened relative to its folder's descriptor without following a link.
/// `None` when it does not exist.
///
/// # Errors
/// [`FileError`].
pub fn read_file(
    path: &Path,
    cap: u64,
    trusted: Option<Access>,
    what: &'static str,
) -> Result<Option<Vec<u8>>, FileError> {
    let fd = match trusted {
        Some(_) => {
            let Some(Walked {
                fd: dir,
                name: Some(name),
                ..
            }) = walk(path, Want::File)?
            else {
                return Ok(None);
            };
            let flags = open_flags_read() | OFlags::NOFOLLOW;
            match opened(
                path,
                rustix::fs::openat(&dir, name.as_os_str(), flags, Mode::empty()),
            )? {
                Some(fd) => fd,
                None => return Ok(None),
            }
        }
        None => match rustix::fs::open(path, open_flags_read(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("open", path)(e.into())),
        },
    };
    let len = check_opened(path, &fd, trusted, cap, what)?;
    read_capped(path, fd, (len, cap), what, false).map(Some)
}

/// The state folder, open: every file in it is reached through this
/// descriptor, never through a path that could be redirected.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    /// As given, for messages.
    path: PathBuf,
    /// Every link resolved, as walked (for SQLite, which opens by path).
    real: PathBuf,
    /// The folders [`Folder::open`] created to reach it (this one and
    /// missing parents), as real paths: what [`Folder::remove_made`] may
    /// take back.
    made: Vec<PathBuf>,
}

/// A step of [`Folder::write_atomic`] where a test can stop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Half of the temporary file written and synced (only when asked).
    Torn,
    /// The temporary file complete and synced, not renamed.
    Written,
    /// Renamed over the name, folder synced.
    Renamed,
}

impl Folder {
    /// Opens the folder `path` (creating it and missing folders above it,
    /// mode 0700, with `create`): the path is walked as given, one
    /// component at a time from `/`, every folder and link on the way
    /// checked (see [`walk`]), and the folder itself must be owned by root
    /// or the agent's user and writable by nobody else. `None` when it
    /// does not exist and `create` is false. Open it once per command and
    /// reach everything in it through it: it is never resolved again.
    ///
    /// # Errors
    /// [`FileError`]: not a folder, a folder or link on the way or the
    /// folder itself unsafe, I/O.
    pub fn open(path: &Path, create: bool) -> Result<Option<Self>, FileError> {
        let Some(walked) = walk(path, Want::Folder { create })? else {
            return Ok(None);
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(&walked.fd, ".", flags, Mode::empty())
            .map_err(|e| io_err("open", path)(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err("inspect", path)(e.into()))?;
        check_owner_mode(path, &st, Access::Shared, false)?;
        Ok(Some(Self {
            fd,
            path: path.to_owned(),
            real: walked.real,
            made: walked.made,
        }))
    }

    /// Another descriptor of the same open folder (`dup`): the folder is
    /// not looked up again.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn try_clone(&self) -> Result<Self, FileError> {
        Ok(Self {
            fd: self
                .fd
                .try_clone()
                .map_err(io_err("duplicate the descriptor of", &self.path))?,
            path: self.path.clone(),
            real: self.real.clone(),
            made: self.made.clone(),
        })
    }

    /// The folder's path as given (for messages).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's path with every link resolved, for a library that can
    /// only open files by path (SQLite): it leads through the folders the
    /// walk checked and no link. [`Folder::is_at`] tells whether it still
    /// names this folder.
    #[must_use]
    pub fn real_path(&self) -> &Path {
        &self.real
    }

    /// Whether [`Folder::real_path`] still names this open folder (same
    /// device and inode).
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn is_at(&self) -> Result<bool, FileError> {
        let open =
            rustix::fs::fstat(&self.fd).map_err(|e| io_err("inspect", &self.path)(e.into()))?;
        let named = match rustix::fs::stat(&self.real) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(io_err("inspect", &self.real)(e.into())),
        };
        Ok((open.st_dev, open.st_ino) == (named.st_dev, named.st_ino))
    }

    /// `NAME` in the folder, for messages.
    #[must_use]
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following a link; `None` when absent.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn kind(&self, name: &str) -> Result<Option<FileType>, FileError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err("inspect", &self.join(name))(e.into())),
        }
    }

    /// Whether anything (of any kind) is at `name`.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn exists(&self, name: &str) -> Result<bool, FileError> {
        self.kind(name).map(|k| k.is_some())
    }

    /// Refuses `name` unless it is absent or a regular file that passes
    /// the owner and mode checks (for files another library opens by
    /// path, such as the seat store).
    ///
    /// # Errors
    /// [`FileError::NotRegular`], [`FileError::Unsafe`], I/O.
    pub fn check(&self, name: &str, access: Access) -> Result<(), FileError> {
        let path = self.join(name);
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = FileType::from_raw_mode(st.st_mode);
                if kind != FileType::RegularFile {
                    return Err(FileError::NotRegular {
                        path,
                        kind: kind_name(kind),
                        expected: "regular file",
                    });
                }
                check_owner_mode(&path, &st, access, false)
            }
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("inspect", &path)(e.into())),
        }
    }

    fn open_read(&self, name: &str) -> Result<Option<OwnedFd>, FileError> {
        let flags = open_flags_read() | OFlags::NOFOLLOW;
        opened(
            &self.join(name),
            rustix::fs::openat(&self.fd, name, flags, Mode::empty()),
        )
    }

    /// Reads the trusted file `name`: a regular file (never through a
    /// link), owner and mode as `access` asks, at most `cap` bytes. `None`
    /// when absent.
    ///
    /// # Errors
    /// [`FileError`].
    pub fn read(
        &self,
        name: &str,
        cap: u64,
        access: Access,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, FileError> {
        let path = self.join(name);
        let Some(fd) = self.open_read(name)? else {
            return Ok(None);
        };
        let len = check_opened(&path, &fd, Some(access), cap, what)?;
        read_capped(&path, fd, (len, cap), what, false).map(Some)
    }

    /// As [`Folder::read`], but a larger file gives its first `cap` bytes
    /// and `true` instead of an error (a damaged record kept for support).
    ///
    /// # Errors
    /// [`FileError`] but [`FileError::TooLarge`].
    pub fn read_prefix(
        &self,
        name: &str,
        cap: u64,
        access: Access,
        what: &'static str,
    ) -> Result<Option<(Vec<u8>, bool)>, FileError> {
        let path = self.join(name);
        let Some(fd) = self.open_read(name)? else {
            return Ok(None);
        };
        let len = check_opened(&path, &fd, Some(access), u64::MAX, what)?;
        let bytes = read_capped(&path, fd, (len, cap), what, true)?;
        Ok(Some((bytes, len > cap)))
    }

    /// Opens (creating it, mode 0600) the lock file `name`, never through a
    /// link.
    ///
    /// # Errors
    /// [`FileError`].
    pub fn open_lock(&self, name: &str) -> Result<File, FileError> {
        let path = self.join(name);
        let flags = OFlags::RDWR
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NONBLOCK
            | OFlags::NOCTTY;
        let fd = opened(
            &path,
            rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600)),
        )?
        .ok_or_else(|| io_err("create", &path)(io::ErrorKind::NotFound.into()))?;
        check_opened(&path, &fd, Some(Access::Shared), u64::MAX, "lock file")?;
        Ok(File::from(fd))
    }

    /// Whether `name` is still the file `file` is open on (the same
    /// device and inode; never through a link): a lock file removed or
    /// replaced after it was opened is not.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn is_open_as(&self, name: &str, file: &File) -> Result<bool, FileError> {
        let path = self.join(name);
        let open = rustix::fs::fstat(file).map_err(|e| io_err("inspect", &path)(e.into()))?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(st.st_dev == open.st_dev && st.st_ino == open.st_ino),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err("inspect", &path)(e.into())),
        }
    }

    /// Removes `name` (a file or a link, never what a link points to).
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn remove(&self, name: &str) -> Result<(), FileError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("remove", &self.join(name))(e.into())),
        }
    }

    /// Removes this folder if [`Folder::open`] created it and it is
    /// empty (a state folder that a failed request or install made), then
    /// each parent folder the open created to reach it, nearest first,
    /// while empty: each through its parent, by the name it was walked to,
    /// and only while that name is still the same folder (never a link,
    /// never another folder put in its place). A folder that is not empty,
    /// or was there before, is left as it is, and so is everything above
    /// it.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn remove_made(&self) -> Result<(), FileError> {
        let err = |action: &'static str| {
            let path = self.path.clone();
            move |e: Errno| FileError::Io {
                action,
                path,
                source: e.into(),
            }
        };
        let mut real = self.real.clone();
        let mut here = self
            .fd
            .try_clone()
            .map_err(io_err("duplicate the descriptor of", &self.path))?;
        while self.made.contains(&real) {
            let Some(name) = real.file_name() else {
                return Ok(());
            };
            let parent = rustix::fs::openat(
                &here,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(err("open the parent of"))?;
            let st = rustix::fs::fstat(&here).map_err(err("inspect"))?;
            match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(named) if (named.st_dev, named.st_ino) == (st.st_dev, st.st_ino) => {}
                Ok(_) | Err(Errno::NOENT) => return Ok(()),
                Err(e) => return Err(err("inspect")(e)),
            }
            match rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR) {
                Ok(()) => {}
                Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => return Ok(()),
                Err(e) => return Err(err("remove")(e)),
            }
            here = parent;
            real.pop();
        }
        Ok(())
    }

    /// Renames `from` over `to` inside the folder.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FileError> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)
            .map_err(|e| io_err("rename", &self.join(from))(e.into()))
    }

    /// Fsyncs the folder, so renames and new files in it survive a power
    /// cut.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn sync(&self) -> Result<(), FileError> {
        rustix::fs::fsync(&self.fd).map_err(|e| io_err("sync", &self.path)(e.into()))
    }

    /// The names in the folder.
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn names(&self) -> Result<Vec<String>, FileError> {
        let err = |e: Errno| io_err("list", &self.path)(e.into());
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(err)?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(err)?;
            if let Ok(name) = entry.file_name().to_str() {
                if name != "." && name != ".." {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    /// The temporary files of `name` present (`NAME.new`, as older agents
    /// wrote them, and `NAME.new-` with 16 hex digits).
    ///
    /// # Errors
    /// [`FileError::Io`].
    pub fn temps_of(&self, name: &str) -> Result<Vec<String>, FileError> {
        Ok(self
            .names()?
            .into_iter()
            .filter(|n| is_temp_of(n, name))
            .collect())
    }

    /// Creates a new temporary file for `name` with `mode`: a random name,
    /// `O_EXCL` and `O_NOFOLLOW`, so nothing planted is written through.
    fn create_temp(&self, name: &str, mode: u32) -> Result<(String, File), FileError> {
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        for _ in 0..TEMP_TRIES {
            let mut random = [0u8; 8];
            OsRng.try_fill_bytes(&mut random).map_err(|e| {
                io_err("create a temporary file in", &self.path)(io::Error::other(e))
            })?;
            let tmp = format!("{name}{TEMP_SUFFIX}-{}", hex::encode(random));
            match rustix::fs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(mode)) {
                Ok(fd) => {
                    // The umask may have taken bits away; set exactly `mode`.
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                        .map_err(|e| io_err("create", &self.join(&tmp))(e.into()))?;
                    return Ok((tmp, File::from(fd)));
                }
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(io_err("create", &self.join(&tmp))(e.into())),
            }
        }
        Err(io_err("create a temporary file in", &self.path)(
            io::ErrorKind::AlreadyExists.into(),
        ))
    }

    /// Replaces `name` with `bytes` (mode `mode`): a new temporary file,
    /// fsync, rename over `name`, fsync of the folder. `at` is called at
    /// each [`Step`] (at [`Step::Torn`] only when `torn`) and stops the
    /// write when it fails, as a crash would, leaving the temporary file.
    ///
    /// # Errors
    /// [`FileError`] (the temporary file removed), or what `at` returned.
    pub fn write_atomic<E: From<FileError>>(
        &self,
        name: &str,
        bytes: &[u8],
        mode: u32,
        torn: bool,
        mut at: impl FnMut(Step) -> Result<(), E>,
    ) -> Result<(), E> {
        let (tmp, mut f) = self.create_temp(name, mode)?;
        let tmp_path = self.join(&tmp);
        let split = if torn { bytes.len() / 2 } else { bytes.len() };
        let (first, rest) = bytes.split_at_checked(split).unwrap_or((bytes, &[]));
        let mut write = |part: &[u8]| {
            let r = f
                .write_all(part)
                .and_then(|()| f.sync_all())
                .map_err(io_err("write", &tmp_path));
            if r.is_err() {
                let _ = self.remove(&tmp);
            }
            r
        };
        write(first)?;
        if torn {
            at(Step::Torn)?;
            write(rest)?;
        }
        drop(f);
        at(Step::Written)?;
        if let Err(e) = self.rename(&tmp, name) {
            let _ = self.remove(&tmp);
            return Err(e.into());
        }
        self.sync()?;
        at(Step::Renamed)
    }
}

impl AsFd for Folder {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `candidate` is a temporary file of `name`.
#[must_use]
pub fn is_temp_of(candidate: &str, name: &str) -> bool {
    let Some(rest) = candidate
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix(TEMP_SUFFIX))
    else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
