use core::time::Duration;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::time::Instant;

use rustix::fs::CWD;

use super::*;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
}

fn folder(dir: &Path) -> Folder {
    Folder::open(dir, false).unwrap().unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_folder_others_may_write_is_refused_naming_path_owner_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o777, 0o770, 0o702, 0o1777] {
        chmod(dir.path(), mode);
        let e = Folder::open(dir.path(), false).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, FileError::Unsafe { .. }), "{text}");
        assert!(text.contains(&shown(dir.path())), "{text}");
        assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
        assert!(text.contains(&format!("owned by uid {}", euid())), "{text}");
        assert!(text.contains("chmod go-w"), "{text}");
        assert_eq!(e.code(), "unsafe_permissions");
    }
    chmod(dir.path(), 0o755);
    assert!(Folder::open(dir.path(), false).unwrap().is_some());
}

#[test]
fn a_folder_inside_a_folder_others_may_write_is_refused_unless_sticky() {
    let outer = tempfile::tempdir().unwrap();
    let inner = outer.path().join("state");
    fs::create_dir(&inner).unwrap();
    chmod(&inner, 0o700);
    chmod(outer.path(), 0o777);
    let e = Folder::open(&inner, false).unwrap_err();
    assert!(e.to_string().contains(&shown(outer.path())), "{e}");
    // Sticky, as /tmp: others cannot rename or replace the state folder.
    chmod(outer.path(), 0o1777);
    assert!(Folder::open(&inner, false).unwrap().is_some());
}

#[test]
fn files_owned_by_someone_else_are_refused() {
    if !is_root() {
        // Only root can give a file away; the mode checks run everywhere.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    let path = dir.path().join("license");
    fs::write(&path, b"x").unwrap();
    rustix::fs::chown(&path, Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
    let e = f
        .read("license", 100, Access::Shared, "license")
        .unwrap_err();
    assert!(e.to_string().contains("owned by uid 4242"), "{e}");
    assert!(e.to_string().contains("chown 0"), "{e}");
    rustix::fs::chown(dir.path(), Some(rustix::process::Uid::from_raw(4242)), None).unwrap();
    let e = Folder::open(dir.path(), false).unwrap_err();
    assert!(e.to_string().contains("owned by uid 4242"), "{e}");
}

#[test]
fn group_or_world_writable_files_and_readable_private_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    let path = dir.path().join("keyring.toml");
    fs::write(&path, b"format = 1").unwrap();
    for mode in [0o664, 0o646, 0o666] {
        chmod(&path, mode);
        let e = f
            .read("keyring.toml", 100, Access::Shared, "keyring")
            .unwrap_err();
        assert!(e.to_string().contains(&format!("mode {mode:04o}")), "{e}");
    }
    chmod(&path, 0o644);
    assert_eq!(
        f.read("keyring.toml", 100, Access::Shared, "keyring")
            .unwrap(),
        Some(b"format = 1".to_vec())
    );
    let e = f
        .read("keyring.toml", 100, Access::Private, "key")
        .unwrap_err();
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[test]
fn a_link_at_any_name_is_refused_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("secret");
    fs::write(&target, b"not for the agent").unwrap();
    let f = folder(dir.path());
    symlink(&target, dir.path().join("license")).unwrap();
    let e = f
        .read("license", 100, Access::Shared, "license")
        .unwrap_err();
    assert!(
        matches!(
            e,
            FileError::NotRegular {
                kind: "a symbolic link",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        f.read_prefix("license", 100, Access::Shared, "license"),
        Err(FileError::NotRegular { .. })
    ));
    assert!(matches!(
        f.check("license", Access::Shared),
        Err(FileError::NotRegular { .. })
    ));
    // A dangling link at the lock's name: refused, nothing created.
    symlink(outside.path().join("made-by-root"), dir.path().join("lock")).unwrap();
    assert!(matches!(
        f.open_lock("lock"),
        Err(FileError::NotRegular { .. })
    ));
    assert!(!outside.path().join("made-by-root").exists());
    // Writing replaces the link itself; the target is never touched.
    f.write_atomic("license", b"new", 0o644, false, |_| Ok::<_, FileError>(()))
        .unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"not for the agent");
    assert_eq!(fs::read(dir.path().join("license")).unwrap(), b"new");
}

#[test]
fn a_fifo_at_any_name_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    let start = Instant::now();
    for name in ["license", "state", "lock"] {
        mkfifo(&dir.path().join(name));
    }
    let e = f
        .read("license", 100, Access::Shared, "license")
        .unwrap_err();
    assert!(
        matches!(e, FileError::NotRegular { kind: "a FIFO", .. }),
        "{e}"
    );
    assert!(f.read_prefix("state", 64, Access::Shared, "state").is_err());
    assert!(f.open_lock("lock").is_err());
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    assert!(matches!(
        read_file(&fifo, 100, None, "catalog"),
        Err(FileError::NotRegular { kind: "a FIFO", .. })
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sizes_are_capped_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    fs::write(dir.path().join("keyring.toml"), vec![b'#'; 1000]).unwrap();
    let e = f
        .read("keyring.toml", 999, Access::Shared, "keyring")
        .unwrap_err();
    assert!(
        matches!(
            e,
            FileError::TooLarge {
                len: 1000,
                cap: 999,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), "too_large");
    let (head, cut) = f
        .read_prefix("keyring.toml", 10, Access::Shared, "state")
        .unwrap()
        .unwrap();
    assert_eq!((head.len(), cut), (10, true));
    let path = dir.path().join("keyring.toml");
    assert!(matches!(
        read_file(&path, 999, Some(Access::Shared), "keyring"),
        Err(FileError::TooLarge { .. })
    ));
    assert_eq!(
        read_file(&path, 1000, None, "x").unwrap().unwrap().len(),
        1000
    );
    assert_eq!(
        read_file(&dir.path().join("none"), 10, None, "x").unwrap(),
        None
    );
}

#[test]
fn read_file_follows_the_operators_path_but_checks_what_it_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.toml");
    fs::write(&real, b"x").unwrap();
    let link = dir.path().join("link.toml");
    symlink(&real, &link).unwrap();
    assert_eq!(
        read_file(&link, 10, Some(Access::Shared), "keyring").unwrap(),
        Some(b"x".to_vec())
    );
    chmod(&real, 0o666);
    assert!(matches!(
        read_file(&link, 10, Some(Access::Shared), "keyring"),
        Err(FileError::Unsafe { .. })
    ));
    // Not trusted (a catalog): mode does not matter, the kind does.
    assert!(read_file(&link, 10, None, "catalog").is_ok());
    chmod(&real, 0o644);
    chmod(dir.path(), 0o777);
    assert!(matches!(
        read_file(&real, 10, Some(Access::Shared), "keyring"),
        Err(FileError::Unsafe { .. })
    ));
    chmod(dir.path(), 0o700);
}

#[test]
fn temporary_files_are_new_random_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    // Links planted at the fixed names older agents used are never
    // written through.
    for name in ["license.new", "state.new", "device.key.new"] {
        symlink(outside.path().join(name), dir.path().join(name)).unwrap();
    }
    let mut seen = Vec::new();
    f.write_atomic("state", &[1; 64], 0o600, false, |step| {
        if step == Step::Written {
            seen = f.temps_of("state").unwrap();
        }
        Ok::<_, FileError>(())
    })
    .unwrap();
    let ours: Vec<_> = seen.iter().filter(|n| *n != "state.new").collect();
    assert_eq!(ours.len(), 1, "{seen:?}");
    assert!(is_temp_of(ours[0], "state"));
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    let mode = fs::metadata(dir.path().join("state"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_write_stopped_at_a_step_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = folder(dir.path());
    fs::write(dir.path().join("license"), b"old").unwrap();
    for (stop, torn) in [(Step::Torn, true), (Step::Written, false)] {
        let r = f.write_atomic("license", b"new license", 0o644, torn, |step| {
            if step == stop {
                Err(FileError::NotRegular {
                    path: PathBuf::new(),
                    kind: "stopped",
                    expected: "test",
                })
            } else {
                Ok(())
            }
        });
        assert!(r.is_err());
        assert_eq!(fs::read(dir.path().join("license")).unwrap(), b"old");
        let temps = f.temps_of("license").unwrap();
        assert_eq!(temps.len(), 1);
        let left = fs::read(dir.path().join(&temps[0])).unwrap();
        assert_eq!(
            left,
            if torn {
                &b"new l"[..]
            } else {
                &b"new license"[..]
            }
        );
        f.remove(&temps[0]).unwrap();
    }
}

#[test]
fn temporary_names_are_recognized_exactly() {
    assert!(is_temp_of("license.new", "license"));
    assert!(is_temp_of("license.new-0123456789abcdef", "license"));
    assert!(!is_temp_of("license.new-0123", "license"));
    assert!(!is_temp_of("license.new-0123456789abcdeg", "license"));
    assert!(!is_temp_of("state.corrupt.new-0123456789abcdef", "state"));
    assert!(is_temp_of(
        "state.corrupt.new-0123456789abcdef",
        "state.corrupt"
    ));
    assert!(!is_temp_of("license", "license"));
}

#[test]
fn control_characters_in_paths_are_escaped_in_messages() {
    let e = FileError::TooLarge {
        path: PathBuf::from("/tmp/x\u{1b}[2J\u{202e}y"),
        len: 2,
        cap: 1,
        what: "keyring",
    };
    let text = e.to_string();
    assert!(text.contains("/tmp/x\\u{1b}[2J\\u{202e}y"), "{text}");
}

/// The command a refusal suggests, pasted into a shell, fixes exactly the
/// refused folder and runs nothing else, whatever its name holds.
#[test]
fn the_suggested_fix_is_one_shell_word_whatever_the_name() {
    let outer = tempfile::tempdir().unwrap();
    let pwned = outer.path().join("PWNED");
    for name in [
        "q'; touch PWNED; echo '",
        "$(touch PWNED)",
        "a b`touch PWNED`'\"\\",
    ] {
        let dir = outer.path().join(name);
        fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o777);
        let Err(FileError::Unsafe { fix, .. }) = Folder::open(&dir, false) else {
            panic!("{name}: not refused");
        };
        let command = fix
            .strip_prefix("run `")
            .and_then(|c| c.strip_suffix('`'))
            .unwrap_or_else(|| panic!("{fix}"));
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(outer.path())
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
        assert!(!pwned.exists(), "{command} ran more than chmod");
        assert!(Folder::open(&dir, false).unwrap().is_some(), "{command}");
    }
    // A control character is shown escaped, never sent to the terminal.
    let word = shell_word(Path::new("/x/\u{1b}[2J'"));
    assert_eq!(word, "'/x/\\u{1b}[2J'\\'''");
}

/// `chown` by root, for the tests that give a file away.
fn give_to(path: &Path, uid: u32) {
    rustix::fs::chownat(
        CWD,
        path,
        Some(rustix::process::Uid::from_raw(uid)),
        None,
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// The state folder reached through links of root's (`/var/lib/tessera ->
/// /data/tessera`, relative and absolute, through `..`): opened, and its
/// real path has no link left.
#[test]
fn a_path_through_safe_links_is_followed_to_its_real_folder() {
    let top = tempfile::tempdir().unwrap();
    let data = top.path().join("data/tessera");
    fs::create_dir_all(&data).unwrap();
    chmod(&data, 0o700);
    let lib = top.path().join("var/lib");
    fs::create_dir_all(&lib).unwrap();
    symlink("../../data/tessera", lib.join("tessera")).unwrap();
    symlink(&data, lib.join("absolute")).unwrap();
    symlink("tessera", lib.join("chain")).unwrap();
    let real = fs::canonicalize(&data).unwrap();
    for path in [
        lib.join("tessera"),
        lib.join("absolute"),
        lib.join("chain"),
        lib.join("../lib/./chain"),
    ] {
        let f = folder(&path);
        assert_eq!(f.path(), path);
        assert_eq!(f.real_path(), real, "{path:?}");
        assert!(f.is_at().unwrap());
        fs::write(data.join("license"), b"x").unwrap();
        assert_eq!(
            f.read("license", 10, Access::Shared, "license").unwrap(),
            Some(b"x".to_vec())
        );
    }
    // A loop of links is an error, not a hang.
    symlink("loop-b", lib.join("loop-a")).unwrap();
    symlink("loop-a", lib.join("loop-b")).unwrap();
    let e = Folder::open(&lib.join("loop-a"), false).unwrap_err();
    assert!(e.to_string().contains("loop-a"), "{e}");
    // A file where a folder is expected.
    fs::write(lib.join("file"), b"").unwrap();
    assert!(matches!(
        Folder::open(&lib.join("file/tessera"), false),
        Err(FileError::NotRegular { .. })
    ));
}

/// A link on the path inside a folder others may write (no sticky bit):
/// they could point it elsewhere, so it is refused, naming that folder;
/// the same for a folder a link leads into, and for a keyring read
/// through such a path.
#[test]
fn a_path_through_a_folder_others_may_write_is_refused_at_that_folder() {
    let top = tempfile::tempdir().unwrap();
    let state = top.path().join("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    fs::write(state.join("keyring.toml"), b"format = 1").unwrap();
    let open = top.path().join("open");
    fs::create_dir(&open).unwrap();
    symlink(&state, open.join("tessera")).unwrap();
    chmod(&open, 0o777);
    let e = Folder::open(&open.join("tessera"), false).unwrap_err();
    assert!(matches!(e, FileError::Unsafe { .. }), "{e}");
    assert!(e.to_string().contains(&shown(&open)), "{e}");
    assert!(e.to_string().contains("mode 0777"), "{e}");
    let e = read_file(
        &open.join("tessera/keyring.toml"),
        100,
        Some(Access::Shared),
        "keyring",
    )
    .unwrap_err();
    assert!(e.to_string().contains(&shown(&open)), "{e}");
    // With the sticky bit (as /tmp) nobody else can replace the link.
    chmod(&open, 0o1777);
    assert!(Folder::open(&open.join("tessera"), false)
        .unwrap()
        .is_some());
    // A safe link that leads into a folder others may write.
    chmod(&open, 0o755);
    let behind = top.path().join("behind");
    fs::create_dir(&behind).unwrap();
    fs::create_dir(behind.join("tessera")).unwrap();
    chmod(&behind.join("tessera"), 0o700);
    chmod(&behind, 0o777);
    symlink(behind.join("tessera"), open.join("elsewhere")).unwrap();
    let e = Folder::open(&open.join("elsewhere"), false).unwrap_err();
    assert!(e.to_string().contains(&shown(&behind)), "{e}");
}

/// The attack as root sees it: a folder on the path owned by another user
/// (`/opt/pbx`, with `tessera -> /var/lib/tessera` in it) lets that user
/// swap the link to an older copy of the state; and a link owned by
/// another user. Both are refused, naming path and owner.
#[test]
fn a_path_through_a_folder_or_link_of_another_user_is_refused() {
    if !is_root() {
        // Only root can give files away; the mode case above runs for everyone.
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let state = top.path().join("state");
    fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    let pbx = top.path().join("opt/pbx");
    fs::create_dir_all(&pbx).unwrap();
    symlink(&state, pbx.join("tessera")).unwrap();
    assert!(Folder::open(&pbx.join("tessera"), false).unwrap().is_some());
    give_to(&pbx, 65534);
    let e = Folder::open(&pbx.join("tessera"), false).unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&shown(&pbx)), "{text}");
    assert!(text.contains("owned by uid 65534"), "{text}");
    assert!(text.contains("chown 0"), "{text}");
    give_to(&pbx, 0);
    // The link itself given away.
    give_to(&pbx.join("tessera"), 65534);
    let e = Folder::open(&pbx.join("tessera"), false).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("a symbolic link owned by"), "{text}");
    assert!(text.contains("owned by uid 65534"), "{text}");
    assert!(text.contains("chown -h 0"), "{text}");
}

#[test]
fn remove_made_takes_back_the_folders_the_open_made_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    // Made with two missing parents: all three go.
    let deep = dir.path().join("a/b/state");
    let made = Folder::open(&deep, true).unwrap().unwrap();
    made.remove_made().unwrap();
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    // A folder that was there before stays, and so does everything
    // above it.
    fs::create_dir_all(dir.path().join("a/b")).unwrap();
    let made = Folder::open(&deep, true).unwrap().unwrap();
    made.remove_made().unwrap();
    assert!(!deep.exists());
    assert!(dir.path().join("a/b").is_dir());
    fs::remove_dir_all(dir.path().join("a")).unwrap();
    // A folder that is not empty stays, and its parents with it.
    let made = Folder::open(&deep, true).unwrap().unwrap();
    fs::write(deep.join("license"), "kept").unwrap();
    made.remove_made().unwrap();
    assert!(deep.join("license").is_file());
    fs::remove_dir_all(dir.path().join("a")).unwrap();
    // Another folder put at the name is not this one: left alone.
    let made = Folder::open(&deep, true).unwrap().unwrap();
    fs::rename(&deep, dir.path().join("moved")).unwrap();
    fs::create_dir(&deep).unwrap();
    made.remove_made().unwrap();
    assert!(deep.is_dir());
    assert!(dir.path().join("moved").is_dir());
    // Opened without creating: nothing was made, nothing goes.
    let opened = folder(&deep);
    opened.remove_made().unwrap();
    assert!(deep.is_dir());
}
