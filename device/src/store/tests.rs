use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use tessera_verifier::samples::{self, T0};
use tessera_verifier::StateKey;

use super::*;

/// Temporary files left in the folder.
fn temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(TEMP_SUFFIX))
        .collect()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, true, None).unwrap()
}

fn hooked(dir: &Path, point: FailPoint) -> Store {
    Store::open(
        dir,
        true,
        Some(FailHook {
            point,
            action: FailAction::Fail,
        }),
    )
    .unwrap()
}

/// Two distinct license byte strings and two states, the second newer.
fn old_new() -> (Vec<u8>, Vec<u8>, State, State) {
    (
        b"old license bytes".to_vec(),
        b"new license bytes, longer".to_vec(),
        State::recovery(T0),
        State::recovery(T0 + 86_400),
    )
}

#[test]
fn save_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_license().unwrap(), None);
    // A device with neither file is provisioned with the fresh state.
    assert_eq!(
        store.read_state().unwrap(),
        StoredState::Intact(State::new())
    );
    assert!(!store.has_license().unwrap());
    let (_, new, _, st) = old_new();
    store.save(&new, &st).unwrap();
    assert!(store.has_license().unwrap());
    assert_eq!(store.read_license().unwrap(), Some(new));
    assert_eq!(store.read_state().unwrap(), StoredState::Intact(st));
    let text = fs::read_to_string(dir.path().join(LICENSE_FILE)).unwrap();
    assert!(text.starts_with("-----BEGIN TESSERA LICENSE-----\n"));
    assert_eq!(temps(dir.path()), Vec::<String>::new());
    assert!(store.recovered().is_empty());
}

#[test]
fn state_dir_is_created_private_and_not_created_when_not_asked() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("a/b");
    assert!(matches!(
        Store::open(&sd, false, None),
        Err(StoreError::NoStateDir(_))
    ));
    open(&sd);
    let mode = fs::metadata(&sd).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn second_agent_waits_for_the_lock_then_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err =
        Store::open_with_timeout(dir.path(), true, None, Duration::from_millis(120)).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)));
    assert!(err.to_string().contains("wait for it to finish"));
    drop(first);
    Store::open_with_timeout(dir.path(), true, None, Duration::from_millis(120)).unwrap();
}

/// An agent that waited on a lock file which the holder then removed (a
/// failed first request takes back its lock file) locks the file that is
/// there afterwards, so a third agent still waits for it.
#[test]
fn a_lock_file_removed_while_waited_on_is_not_what_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let path = dir.path().join(LOCK_FILE);
    let held = fs::OpenOptions::new().write(true).open(&path).unwrap();
    rustix::fs::flock(&held, FlockOperation::LockExclusive).unwrap();
    let waiting = {
        let dir = dir.path().to_owned();
        std::thread::spawn(move || {
            Store::open_with_timeout(&dir, true, None, Duration::from_secs(10))
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    fs::remove_file(&path).unwrap();
    drop(held);
    let second = waiting.join().unwrap().unwrap();
    let third = Store::open_with_timeout(dir.path(), true, None, Duration::from_millis(300));
    assert!(
        matches!(third, Err(StoreError::Locked(_))),
        "{:?}",
        third.err()
    );
    drop(second);
    Store::open_with_timeout(dir.path(), true, None, Duration::from_millis(300)).unwrap();
}

/// A folder refused when it is opened (a link planted at the state's
/// name) keeps no lock file that the open made.
#[test]
fn a_refused_open_leaves_no_lock_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state-dir");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"untouched").unwrap();
    std::os::unix::fs::symlink(&victim, state.join(STATE_FILE)).unwrap();
    assert!(Store::open(&state, true, None).is_err());
    let names: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [STATE_FILE]);
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
}

/// A crash at any fail point of an install leaves the old or the new
/// license in force, with an intact state, never none; recovery on the
/// next open says what it did.
#[test]
fn crash_at_every_fail_point_leaves_old_or_new() {
    for point in FailPoint::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, old_state, new_state) = old_new();
        open(dir.path()).save(&old, &old_state).unwrap();
        let store = hooked(dir.path(), point);
        let err = store.save(&new, &new_state).unwrap_err();
        assert!(
            matches!(err, StoreError::FailPoint(p) if p == point),
            "{point:?}"
        );
        drop(store);

        let store = open(dir.path());
        let license = store.read_license().unwrap().unwrap();
        let state = store.read_state().unwrap();
        let (want_license, want_state) = match point {
            FailPoint::LicenseTempTorn | FailPoint::LicenseTempWritten => (&old, old_state),
            FailPoint::LicenseRenamed | FailPoint::StateTempTorn => (&new, old_state),
            FailPoint::StateTempWritten | FailPoint::StateRenamed => (&new, new_state),
        };
        assert_eq!(&license, want_license, "{point:?}");
        assert_eq!(state, StoredState::Intact(want_state), "{point:?}");
        let expect_note = matches!(
            point,
            FailPoint::LicenseTempTorn
                | FailPoint::LicenseTempWritten
                | FailPoint::StateTempTorn
                | FailPoint::StateTempWritten
        );
        assert_eq!(!store.recovered().is_empty(), expect_note, "{point:?}");
        assert_eq!(temps(dir.path()), Vec::<String>::new(), "{point:?}");
    }
}

#[test]
fn crash_during_first_install_leaves_no_license_or_the_new_one() {
    for point in FailPoint::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (_, new, _, new_state) = old_new();
        let _ = hooked(dir.path(), point).save(&new, &new_state);
        let store = open(dir.path());
        match store.read_license().unwrap() {
            None => assert!(matches!(
                point,
                FailPoint::LicenseTempTorn | FailPoint::LicenseTempWritten
            )),
            Some(l) => assert_eq!(l, new),
        }
        // The fresh state was stored before the license, so the new
        // license never lands without a state.
        if point == FailPoint::LicenseRenamed || point == FailPoint::StateTempTorn {
            assert_eq!(
                store.read_state().unwrap(),
                StoredState::Intact(State::new())
            );
        }
    }
}

/// The record is sealed under a key from the device key: a record with a
/// recomputed checksum (an older agent's, or a forged fresh one), one
/// sealed under another device's key, or any record once the device key is
/// gone, is never taken for the state.
#[test]
fn the_state_is_sealed_under_the_device_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, new, _, st) = old_new();
    let store = open(dir.path());
    assert!(store.key_created());
    store.save(&new, &st).unwrap();
    let on_disk = fs::read(dir.path().join(STATE_FILE)).unwrap();
    assert_eq!(on_disk[0], State::VERSION_KEYED);
    assert_eq!(on_disk, store.seal(&st).unwrap());
    let path = dir.path().join(STATE_FILE);
    for (name, bytes) in [
        ("older agent", st.to_bytes().to_vec()),
        ("forged fresh", State::new().to_bytes().to_vec()),
    ] {
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            store.read_state().unwrap(),
            StoredState::Unbound(Unbound::OlderAgent),
            "{name}"
        );
    }
    let other = StateKey::from_bytes([9; 32]);
    fs::write(&path, st.to_bytes_with(Some(&other))).unwrap();
    assert_eq!(store.read_state().unwrap(), StoredState::Corrupt);
    fs::write(&path, store.seal(&st).unwrap()).unwrap();
    drop(store);
    // Without the device key the record cannot be verified.
    fs::remove_file(dir.path().join("device.key")).unwrap();
    let store = Store::open(dir.path(), false, None).unwrap();
    assert!(matches!(
        store.read_state().unwrap(),
        StoredState::Unbound(Unbound::NoDeviceKey(_))
    ));
    assert!(store.save_state(&st).is_err());
}

#[test]
fn provisioning_only_on_an_empty_device_and_only_when_creating() {
    let dir = tempfile::tempdir().unwrap();
    // Without creating, an empty folder is left alone (not even a lock).
    assert!(matches!(
        Store::open(dir.path(), false, None),
        Err(StoreError::NotStateFolder { foreign: false, .. })
    ));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    // A license without a state is a lost state, not a fresh device.
    fs::write(dir.path().join(LICENSE_FILE), b"x").unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_state().unwrap(), StoredState::Missing);
}

#[test]
fn older_state_leftover_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (_, new, old_state, new_state) = old_new();
    let store = open(dir.path());
    store.save(&new, &new_state).unwrap();
    let older = store.seal(&old_state).unwrap();
    drop(store);
    fs::write(dir.path().join("state.new"), older).unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_state().unwrap(), StoredState::Intact(new_state));
    assert!(store.recovered()[0].contains("discarded"));
}

#[test]
fn the_newest_of_several_state_leftovers_wins_and_the_rest_go() {
    let dir = tempfile::tempdir().unwrap();
    let (_, new, old_state, new_state) = old_new();
    let store = open(dir.path());
    store.save(&new, &old_state).unwrap();
    let (newer, older) = (
        store.seal(&new_state).unwrap(),
        store.seal(&old_state).unwrap(),
    );
    drop(store);
    fs::write(dir.path().join("state.new-0000000000000001"), newer).unwrap();
    fs::write(dir.path().join("state.new-0000000000000002"), older).unwrap();
    fs::write(dir.path().join("state.new-0000000000000003"), b"torn").unwrap();
    // Not a temporary name of ours: left alone.
    fs::write(dir.path().join("state.new-notours"), b"x").unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_state().unwrap(), StoredState::Intact(new_state));
    assert_eq!(temps(dir.path()), ["state.new-notours"]);
}

#[test]
fn intact_state_leftover_repairs_a_corrupt_record() {
    let dir = tempfile::tempdir().unwrap();
    let (_, new, _, new_state) = old_new();
    let store = open(dir.path());
    store.save(&new, &new_state).unwrap();
    let sealed = store.seal(&new_state).unwrap();
    drop(store);
    fs::write(dir.path().join(STATE_FILE), b"garbage").unwrap();
    fs::write(dir.path().join("state.new"), sealed).unwrap();
    let store = open(dir.path());
    assert_eq!(store.read_state().unwrap(), StoredState::Intact(new_state));
}

#[test]
fn device_key_and_corrupt_copy_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["device.key.new", "device.key.new-00000000deadbeef"] {
        fs::write(dir.path().join(name), b"half a key").unwrap();
        fs::set_permissions(dir.path().join(name), fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::write(dir.path().join("state.corrupt.new-00000000deadbeef"), b"x").unwrap();
    open(dir.path());
    assert_eq!(temps(dir.path()), Vec::<String>::new());
}

#[test]
fn damaged_license_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for contents in [
        &b"not armored"[..],
        &[0xff, 0xfe][..],
        b"-----BEGIN TESSERA LICENSE-----\n!!!!\n-----END TESSERA LICENSE-----\n",
        b"-----BEGIN TESSERA REQUEST-----\nAAAA\n-----END TESSERA REQUEST-----\n",
    ] {
        fs::write(dir.path().join(LICENSE_FILE), contents).unwrap();
        let err = store.read_license().unwrap_err();
        assert!(matches!(err, StoreError::LicenseDamaged { .. }));
        assert!(err.to_string().contains("install the license file"));
    }
    fs::write(dir.path().join(LICENSE_FILE), vec![b'A'; 70 * 1024]).unwrap();
    assert!(matches!(
        store.read_license(),
        Err(StoreError::LicenseDamaged { .. })
    ));
}

#[test]
fn corrupt_state_is_kept_for_support_private_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let state = dir.path().join(STATE_FILE);
    fs::write(&state, [0u8; 64]).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(store.read_state().unwrap(), StoredState::Corrupt);
    assert!(!store.keep_corrupt_state().unwrap());
    let kept = dir.path().join(CORRUPT_STATE_FILE);
    assert_eq!(fs::read(&kept).unwrap(), [0u8; 64]);
    assert_eq!(
        fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A huge "state": the first 4 KiB kept, never the whole file.
    fs::write(&state, vec![7u8; 1 << 20]).unwrap();
    assert_eq!(store.read_state().unwrap(), StoredState::Corrupt);
    assert!(store.keep_corrupt_state().unwrap());
    assert_eq!(fs::read(&kept).unwrap().len() as u64, MAX_CORRUPT_KEPT);
    assert_eq!(temps(dir.path()), Vec::<String>::new());
}

/// A link planted at `state.corrupt` (the documented recovery once wrote
/// attacker content through it) is replaced, never written through.
#[test]
fn corrupt_state_copy_never_follows_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"root's file").unwrap();
    let store = open(dir.path());
    fs::write(dir.path().join(STATE_FILE), b"attacker content").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(CORRUPT_STATE_FILE)).unwrap();
    store.keep_corrupt_state().unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"root's file");
    let kept = dir.path().join(CORRUPT_STATE_FILE);
    assert!(fs::symlink_metadata(&kept).unwrap().file_type().is_file());
}

#[test]
fn fail_hooks_parse_by_name() {
    for p in FailPoint::ALL {
        assert_eq!(FailPoint::from_name(p.name()), Some(p));
        assert_eq!(
            FailHook::parse(&format!("{}:pause", p.name())).map(|h| h.action),
            Some(FailAction::Pause)
        );
    }
    assert_eq!(FailHook::parse("license-renamed:later"), None);
    assert_eq!(FailHook::parse(""), None);
}

#[test]
fn fail_point_specs_split_into_name_and_action() {
    assert_eq!(FailAction::split("x"), Some(("x", FailAction::Fail)));
    assert_eq!(FailAction::split("x:pause"), Some(("x", FailAction::Pause)));
    assert_eq!(FailAction::split(""), Some(("", FailAction::Fail)));
    assert_eq!(FailAction::split("x:later"), None);
    assert_eq!(FailAction::split("x:pause:pause"), None);
    assert_eq!(FailAction::split("x:"), None);
}

#[test]
fn state_of_a_real_activation_round_trips() {
    let id = samples::sample_identity();
    let l = samples::typical();
    let bytes = tessera_verifier::encode::sign_license(
        &l,
        &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
        samples::seed_signer(samples::TEST_KEY_1_SEED),
    )
    .unwrap();
    let ring = [tessera_verifier::KeyEntry::new(
        samples::TEST_KEY_1_PUBLIC,
        0,
    )];
    let mut st = State::new();
    tessera_verifier::verify(&bytes, &ring, &id, T0, &mut st).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.save(&bytes, &st).unwrap();
    assert_eq!(store.read_state().unwrap(), StoredState::Intact(st));
    assert_eq!(store.read_license().unwrap(), Some(bytes));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any file contents: never a panic, and never a state that was
        /// not written byte for byte (a damaged file is never "fresh").
        #[test]
        fn state_file_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let key = StateKey::from_bytes([3; 32]);
            match parse_state(&bytes, &key) {
                StoredState::Intact(s) => prop_assert_eq!(&s.to_bytes_with(Some(&key))[..], &bytes[..]),
                StoredState::Corrupt => {}
                StoredState::Unbound(_) => prop_assert!(State::from_bytes(&bytes).is_ok()),
                StoredState::Missing => prop_assert!(false, "bytes are never 'missing'"),
            }
        }

        /// Flipping any bit of a valid record makes it corrupt.
        #[test]
        fn flipped_state_is_corrupt(byte in 0usize..64, bit in 0u8..8, days in 0i64..1000) {
            let key = StateKey::from_bytes([3; 32]);
            let mut bytes = State::recovery(T0 + days * 86_400).to_bytes_with(Some(&key));
            bytes[byte] ^= 1 << bit;
            prop_assert_eq!(parse_state(&bytes, &key), StoredState::Corrupt);
        }
    }
}
