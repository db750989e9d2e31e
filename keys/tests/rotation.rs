//! Walks the key rotation procedure of `keys/README.md` and checks, after
//! each step, which licenses firmware with the exported keyring accepts:
//! real licenses, signed through the `Signer` trait with the verifier's
//! encoder and checked with the verifier's `decode_license`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use tessera_keys::{KeyEntry, KeyError, KeyId, KeyRecord, Keyring, Signer};
use tessera_verifier::encode::sign_license;
use tessera_verifier::{decode_license, samples, Error};

/// An in-memory key: the signers themselves live in `tessera-signer`, which
/// this crate does not link.
struct TestSigner(SigningKey);

impl TestSigner {
    fn new(seed: u8) -> Self {
        Self(SigningKey::from_bytes(&[seed; 32]))
    }
}

impl Signer for TestSigner {
    fn kid(&self) -> KeyId {
        tessera_verifier::keyring::key_id(&self.public_key())
    }

    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError> {
        Ok(self.0.sign(msg).to_bytes())
    }
}

/// A signed license as firmware receives it.
struct Signed {
    bytes: Vec<u8>,
}

fn at(year: i32, month: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).unwrap()
}

fn sign(signer: &dyn Signer, when: DateTime<Utc>, customer: &str) -> Result<Signed, KeyError> {
    let mut content = samples::typical();
    content.issued_at = when.timestamp();
    content.not_before = when.timestamp();
    content.customer = customer.into();
    let bytes =
        sign_license(&content, &signer.kid(), |msg| signer.sign(msg)).map_err(|e| match e {
            tessera_verifier::encode::EncodeError::Sign(e) => e,
            other => panic!("sample license must encode: {other}"),
        })?;
    Ok(Signed { bytes })
}

/// Issues a license the way the issuer does: only with the active key.
fn issue(ring: &Keyring, signer: &dyn Signer, when: DateTime<Utc>) -> Result<Signed, KeyError> {
    ring.check_signer(signer, when)?;
    sign(signer, when, "issued")
}

/// Signs without the keyring's consent (an old issuer, a stolen key).
fn sign_anyway(signer: &dyn Signer, when: DateTime<Utc>) -> Signed {
    sign(signer, when, "rogue").unwrap()
}

/// What firmware with `keyring` says about `object`.
fn firmware(keyring: &[KeyEntry], object: &Signed) -> Result<(), Error> {
    decode_license(&object.bytes, keyring).map(|_| ())
}

#[test]
fn rotation_procedure() {
    let old = TestSigner::new(1);
    let new = TestSigner::new(2);

    // Before: the old key is the only and active key; firmware v1 ships it.
    let mut ring = Keyring::new();
    ring.add(KeyRecord::new(old.public_key(), "old", at(2024, 1)))
        .unwrap();
    ring.set_active(&old.kid()).unwrap();
    let firmware_v1 = ring.to_entries();
    let license_a = issue(&ring, &old, at(2025, 1)).unwrap();
    assert_eq!(firmware(&firmware_v1, &license_a), Ok(()));

    // Step 1: create the new key and add it (not active yet). Issuing with
    // it is refused; firmware v1 does not know it.
    ring.add(KeyRecord::new(new.public_key(), "new", at(2025, 3)))
        .unwrap();
    assert!(matches!(
        issue(&ring, &new, at(2025, 3)),
        Err(KeyError::NotActiveSigner { .. })
    ));
    assert_eq!(
        firmware(&firmware_v1, &sign_anyway(&new, at(2025, 3))),
        Err(Error::UnknownKey)
    );

    // Step 2: ship firmware v2 with both public keys. It accepts old
    // licenses and new-key signatures from the new key's valid_from on.
    let firmware_v2 = ring.to_entries();
    assert_eq!(firmware_v2.len(), 2);
    assert_eq!(firmware(&firmware_v2, &license_a), Ok(()));
    assert_eq!(
        firmware(&firmware_v2, &sign_anyway(&new, at(2025, 4))),
        Ok(())
    );
    assert_eq!(
        firmware(&firmware_v2, &sign_anyway(&new, at(2025, 2))),
        Err(Error::KeyNotValidAt)
    );

    // Step 3: switch issuing to the new key. The old key cannot be retired
    // before the switch, and stops being accepted for issuing after it.
    assert!(matches!(
        ring.retire(&old.kid()),
        Err(KeyError::RetireActive { .. })
    ));
    ring.set_active(&new.kid()).unwrap();
    assert_eq!(ring.active().unwrap().kid, new.kid());
    assert!(matches!(
        issue(&ring, &old, at(2025, 5)),
        Err(KeyError::NotActiveSigner { .. })
    ));

    // Step 4: re-issue the licenses signed by the old key, with the new key.
    // Both firmware v2 and (until retirement) the old license still work.
    let license_b = issue(&ring, &new, at(2025, 5)).unwrap();
    assert_eq!(firmware(&firmware_v2, &license_b), Ok(()));
    assert_eq!(firmware(&firmware_v2, &license_a), Ok(()));
    // Firmware v1 cannot read re-issued licenses: devices need v2 first.
    assert_eq!(firmware(&firmware_v1, &license_b), Err(Error::UnknownKey));

    // Step 5: retire the old key and ship firmware v3. The old key verifies
    // nothing, whatever issue time a holder of it claims; the new key works.
    ring.retire(&old.kid()).unwrap();
    assert!(matches!(
        ring.set_active(&old.kid()),
        Err(KeyError::ActivateRetired { .. })
    ));
    let firmware_v3 = ring.to_entries();
    assert_eq!(
        firmware_v3.len(),
        2,
        "the retired key is exported, marked retired"
    );
    assert_eq!(firmware(&firmware_v3, &license_a), Err(Error::RetiredKey));
    assert_eq!(
        firmware(&firmware_v3, &sign_anyway(&old, at(2024, 6))),
        Err(Error::RetiredKey)
    );
    assert_eq!(firmware(&firmware_v3, &license_b), Ok(()));

    // A signature by the new key over other bytes is still refused.
    let mut forged = issue(&ring, &new, at(2025, 6)).unwrap();
    let at = forged
        .bytes
        .windows(6)
        .position(|w| w == b"issued")
        .unwrap();
    forged.bytes[at] = b'I';
    assert_eq!(firmware(&firmware_v3, &forged), Err(Error::BadSignature));
}

#[test]
fn keyring_survives_save_and_load_between_steps() {
    // The CLI runs each step as a separate command on the keyring file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    let old = TestSigner::new(1);
    let new = TestSigner::new(2);

    let mut ring = Keyring::new();
    ring.add(KeyRecord::new(old.public_key(), "old", at(2024, 1)))
        .unwrap();
    ring.set_active(&old.kid()).unwrap();
    ring.save(&path).unwrap();

    let mut ring = Keyring::load(&path).unwrap();
    ring.add(KeyRecord::new(new.public_key(), "new", at(2025, 3)))
        .unwrap();
    ring.save(&path).unwrap();

    let mut ring = Keyring::load(&path).unwrap();
    ring.set_active(&new.kid()).unwrap();
    ring.save(&path).unwrap();

    let mut ring = Keyring::load(&path).unwrap();
    ring.retire(&old.kid()).unwrap();
    ring.save(&path).unwrap();

    let ring = Keyring::load(&path).unwrap();
    assert_eq!(ring.active().unwrap().kid, new.kid());
    assert!(ring.get(&old.kid()).unwrap().retired);
    let entries = ring.to_entries();
    let license = issue(&ring, &new, at(2025, 6)).unwrap();
    assert_eq!(firmware(&entries, &license), Ok(()));
    assert_eq!(
        firmware(&entries, &sign_anyway(&old, at(2025, 1))),
        Err(Error::RetiredKey)
    );
}
