use std::path::Path;

use tessera_keys::{KeyRecord, PublicKeyInfo};
use tessera_signer::{EncryptionParams, Passphrase};

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const SWITCH: &str = "2027-01-01T00:00:00Z";

/// Two key files with different passphrases (so opening the wrong one
/// fails), their `.pub` files, and a keyring switching from the first to
/// the second at [`SWITCH`].
struct Rotation {
    dir: tempfile::TempDir,
    old: PublicKeyInfo,
    new: PublicKeyInfo,
    ring: Keyring,
}

impl Rotation {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = |name: &str, pass: &str| {
            let path = dir.path().join(name);
            let info = tessera_signer::generate_to_file_with(
                &path,
                &Passphrase::new(pass).unwrap(),
                EncryptionParams::insecure_for_tests(),
            )
            .unwrap();
            tessera_signer::write_public_key_file(&public_path(&path), &info).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pass")), pass).unwrap();
            info
        };
        let old = key("old.pem", "old passphrase");
        let new = key("new.pem", "new passphrase");
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(
            old.public_key,
            "old",
            t("2026-01-01T00:00:00Z"),
        ))
        .unwrap();
        ring.add(KeyRecord::new(new.public_key, "new", t(SWITCH)))
            .unwrap();
        ring.set_active(&old.kid).unwrap();
        ring.schedule(&new.kid, t(SWITCH), t("2026-06-01T00:00:00Z"))
            .unwrap();
        Self {
            dir,
            old,
            new,
            ring,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Both keys, the passphrase of `pass_of`.
    fn keys(&self, names: &[&str], pass_of: &str) -> KeySet {
        KeySet {
            locations: names
                .iter()
                .map(|n| KeyLocation::File(self.path(n)))
                .collect(),
            passphrase: PassphraseSource::File(self.path(&format!("{pass_of}.pass"))),
            pkcs11: Pkcs11Options {
                module: None,
                pin: tessera_signer::PinSource::from_cli(None),
            },
        }
    }
}

fn kid_of(r: Result<AnySigner, Error>) -> KeyId {
    r.map(|s| s.kid()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_key_active_at_the_time_signs_and_only_it_is_opened() {
    let r = Rotation::new();
    let both = ["old.pem", "new.pem"];
    // Before the switch the old key signs; the new one is not opened (its
    // passphrase is not the one given).
    let before = t("2026-12-31T23:59:59Z");
    assert_eq!(
        kid_of(r.keys(&both, "old.pem").signer_at(Some(&r.ring), before)),
        r.old.kid
    );
    // From the switch on, the new key, whatever the order given.
    let at = t(SWITCH);
    assert_eq!(
        kid_of(r.keys(&both, "new.pem").signer_at(Some(&r.ring), at)),
        r.new.kid
    );
    assert_eq!(
        kid_of(
            r.keys(&["new.pem", "old.pem"], "new.pem")
                .signer_at(Some(&r.ring), at)
        ),
        r.new.kid
    );
}

#[test]
fn keys_without_a_pub_file_are_opened_until_the_active_one() {
    let r = Rotation::new();
    // One passphrase for both, no `.pub` beside them.
    let new_pem = std::fs::read(r.path("new.pem")).unwrap();
    std::fs::write(r.path("other.pem"), &new_pem).unwrap();
    let renamed = r.keys(&["old.pem", "other.pem"], "new.pem");
    // The old key (known, not active) is skipped, `other.pem` opened.
    assert_eq!(
        kid_of(renamed.signer_at(Some(&r.ring), t(SWITCH))),
        r.new.kid
    );
}

#[test]
fn a_missing_active_key_is_named() {
    let r = Rotation::new();
    let at = t(SWITCH);
    // Only the old key after the switch: the keyring's check refuses it.
    let e = r
        .keys(&["old.pem"], "old.pem")
        .signer_at(Some(&r.ring), at)
        .unwrap_err();
    assert!(
        e.to_string().contains("is not the active signing key"),
        "{e}"
    );
    // Two keys, neither active: the active one is named.
    let copy = std::fs::read(r.path("old.pem")).unwrap();
    std::fs::write(r.path("copy.pem"), copy).unwrap();
    let e = r
        .keys(&["old.pem", "copy.pem"], "old.pem")
        .signer_at(Some(&r.ring), at)
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&hex::encode(r.new.kid)), "{text}");
    assert!(text.contains("add its key file"), "{text}");
    // Several keys and no keyring to choose; no key at all.
    let e = r
        .keys(&["old.pem", "new.pem"], "old.pem")
        .signer_at(None, at)
        .unwrap_err();
    assert!(e.to_string().contains("no keyring"), "{e}");
    let e = r.keys(&[], "old.pem").signer_at(None, at).unwrap_err();
    assert!(e.to_string().contains("no signing key"), "{e}");
    // One key and no keyring: that key.
    assert_eq!(
        kid_of(r.keys(&["new.pem"], "new.pem").signer_at(None, at)),
        r.new.kid
    );
    assert!(Path::new(&r.path("new.pem.pub")).exists());
}
