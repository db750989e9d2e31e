//! The device's own Ed25519 key: it signs requests (`spec/FORMAT.md` §7.1)
//! and its public half is an identity component of kind `device_key`.
//!
//! Stored in the state directory as `device.key`, an unencrypted PKCS#8
//! PEM (`openssl pkey -in device.key -pubout` reads it; format in
//! `device_key/pkcs8.rs`), mode 0600, created on first use
//! (provisioning). The key proves that a request was not altered on its
//! way; it is not a secret shared with the vendor.
//!
//! Its secret also seals the state record ([`DeviceKey::state_key`],
//! `spec/RUNTIME.md` §6.6): a record the agent did not write under this
//! key — a fresh one with a recomputed checksum, an edited one, one of
//! another device or of an older agent — is corrupt. A device that loses
//! its key makes a new one with the next request; its license then binds
//! through the other components, and the state is recovered with a fresh
//! license (`install --recover`).

use std::path::PathBuf;

use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::{OsRng, RngCore};
use tessera_verifier::StateKey;
use zeroize::Zeroizing;

use crate::store::{shown, Access, FileError, Folder};

mod pkcs8;

/// File name of the device key in the state directory.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// Largest device key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Why the device key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceKeyError {
    /// The file was refused (a link, not a regular file, owner or mode:
    /// others may read or write it, too large) or cannot be read or written.
    #[error("the device key: {0}")]
    File(#[from] FileError),
    /// The file is not an Ed25519 PKCS#8 key.
    #[error(
        "the device key {} is damaged; move it away and run `tessera-agent request` to create a new one (the license still binds through the other identity components)", shown(.0)
    )]
    Damaged(PathBuf),
    /// There is no device key where one is needed.
    #[error(
        "there is no device key {}; run `tessera-agent request` to create one, then install a fresh license with `tessera-agent install --recover FILE`", shown(.0)
    )]
    Missing(PathBuf),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed ({0}); try again after boot has completed")]
    Random(String),
}

/// The device's signing key. Wiped from memory on drop; `Debug` shows the
/// public key only.
pub struct DeviceKey {
    signing: SigningKey,
}

impl core::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// The key stored in the state folder, if there is one: a regular file
    /// (never through a link) only its owner (root or the agent's user)
    /// may read or write, of at most 4 KiB.
    ///
    /// # Errors
    /// [`DeviceKeyError::File`], [`DeviceKeyError::Damaged`].
    pub fn load(folder: &Folder) -> Result<Option<Self>, DeviceKeyError> {
        let Some(bytes) =
            folder.read(DEVICE_KEY_FILE, MAX_KEY_FILE, Access::Private, "device key")?
        else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        let damaged = || DeviceKeyError::Damaged(folder.join(DEVICE_KEY_FILE));
        let text = core::str::from_utf8(&bytes).map_err(|_| damaged())?;
        let signing = pkcs8::decode(text).ok_or_else(damaged)?;
        Ok(Some(Self { signing }))
    }

    /// The key stored in the folder, or a new one written there (mode
    /// 0600, temporary file, fsync, rename, fsync of the folder). The
    /// caller holds the state directory lock. Returns whether it was
    /// created.
    ///
    /// # Errors
    /// As [`DeviceKey::load`], and [`DeviceKeyError::Random`].
    pub fn load_or_generate(folder: &Folder) -> Result<(Self, bool), DeviceKeyError> {
        if let Some(key) = Self::load(folder)? {
            return Ok((key, false));
        }
        let key = Self::generate()?;
        key.write(folder)?;
        Ok((key, true))
    }

    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`DeviceKeyError::Random`].
    pub fn generate() -> Result<Self, DeviceKeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| DeviceKeyError::Random(e.to_string()))?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    fn write(&self, folder: &Folder) -> Result<(), DeviceKeyError> {
        let pem = pkcs8::encode(&self.signing);
        folder.write_atomic(DEVICE_KEY_FILE, pem.as_bytes(), 0o600, false, |_| {
            Ok::<_, DeviceKeyError>(())
        })
    }

    /// The key that seals the state record (`spec/RUNTIME.md` §6.6):
    /// HKDF-SHA256 of this key's secret seed with `context`. Derived when
    /// needed, never stored; the seed copy is wiped.
    #[must_use]
    pub fn state_key(&self, context: &[u8]) -> StateKey {
        let seed = Zeroizing::new(self.signing.to_bytes());
        StateKey::derive(seed.as_ref(), context)
    }

    /// The raw 32-byte public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `message` (Ed25519, RFC 8032).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn folder(dir: &std::path::Path) -> Folder {
        Folder::open(dir, false).unwrap().unwrap()
    }

    #[test]
    fn generated_once_then_loaded_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let f = folder(dir.path());
        assert!(DeviceKey::load(&f).unwrap().is_none());
        let (a, created) = DeviceKey::load_or_generate(&f).unwrap();
        assert!(created);
        let (b, created) = DeviceKey::load_or_generate(&f).unwrap();
        assert!(!created);
        assert_eq!(a.public_key(), b.public_key());
        let mode = fs::metadata(dir.path().join(DEVICE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(f.names().unwrap(), [DEVICE_KEY_FILE]);
        assert!(!format!("{a:?}").contains("signing"));
    }

    #[test]
    fn signatures_verify_under_the_public_key() {
        use ed25519_dalek::{Signature, VerifyingKey};
        let key = DeviceKey::generate().unwrap();
        let sig = key.sign(b"request");
        let vk = VerifyingKey::from_bytes(&key.public_key()).unwrap();
        assert!(vk
            .verify_strict(b"request", &Signature::from_bytes(&sig))
            .is_ok());
    }

    #[test]
    fn readable_by_others_damaged_or_oversized_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let f = folder(dir.path());
        DeviceKey::load_or_generate(&f).unwrap();
        let path = dir.path().join(DEVICE_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = DeviceKey::load(&f).unwrap_err();
        assert!(
            matches!(
                e,
                DeviceKeyError::File(FileError::Unsafe { mode: 0o644, .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            DeviceKey::load(&f),
            Err(DeviceKeyError::Damaged(_))
        ));
        fs::write(&path, [0xff; 10]).unwrap();
        assert!(matches!(
            DeviceKey::load(&f),
            Err(DeviceKeyError::Damaged(_))
        ));
        fs::write(&path, vec![b'A'; 5000]).unwrap();
        assert!(matches!(
            DeviceKey::load(&f),
            Err(DeviceKeyError::File(FileError::TooLarge { .. }))
        ));
    }
}
