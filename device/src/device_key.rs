//! The device's own Ed25519 key: it signs requests (`spec/FORMAT.md` §7.1)
//! and its public half is an identity component of kind `device_key`.
//!
//! Stored in the state directory as `device.key`, an unencrypted PKCS#8
//! PEM (`openssl pkey -in device.key -pubout` reads it; format in
//! `device_key/pkcs8.rs`), mode 0600,
//! created on first use. The key proves that a request was not altered on
//! its way; it is not a secret shared with the vendor, and a device that
//! loses it makes a new one (its license then binds through the other
//! components).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::{OsRng, RngCore};

use crate::store::sync_dir;

mod pkcs8;

/// File name of the device key in the state directory.
pub const DEVICE_KEY_FILE: &str = "device.key";
/// Largest device key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Why the device key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceKeyError {
    /// The file cannot be read or written.
    #[error(
        "cannot {action} the device key {path}: {source}; check the state directory's permissions"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error(
        "the device key {0} is damaged; move it away and run `tessera-agent request` to create a new one (the license still binds through the other identity components)"
    )]
    Damaged(PathBuf),
    /// Others may read the file.
    #[error(
        "the device key {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
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
    /// The key stored in `dir`, if there is one.
    ///
    /// # Errors
    /// [`DeviceKeyError::Io`], [`DeviceKeyError::Damaged`],
    /// [`DeviceKeyError::Permissions`] (group or others may read it).
    pub fn load(dir: &Path) -> Result<Option<Self>, DeviceKeyError> {
        let path = dir.join(DEVICE_KEY_FILE);
        let io = |action, source| DeviceKeyError::Io {
            action,
            path: path.clone(),
            source,
        };
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", e)),
        };
        let mode = file
            .metadata()
            .map_err(|e| io("read", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(DeviceKeyError::Permissions {
                path,
                mode: mode & 0o777,
            });
        }
        // Room for the whole file up front: a growing buffer would leave
        // copies of the key behind in freed memory.
        let capacity = usize::try_from(MAX_KEY_FILE + 1).unwrap_or(usize::MAX);
        let mut text = zeroize::Zeroizing::new(String::with_capacity(capacity));
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|_| DeviceKeyError::Damaged(path.clone()))?;
        let signing = pkcs8::decode(&text).ok_or_else(|| DeviceKeyError::Damaged(path.clone()))?;
        Ok(Some(Self { signing }))
    }

    /// The key stored in `dir`, or a new one written there (mode 0600,
    /// temporary file, fsync, rename, fsync of the folder). The caller
    /// holds the state directory lock. Returns whether it was created.
    ///
    /// # Errors
    /// As [`DeviceKey::load`], and [`DeviceKeyError::Random`].
    pub fn load_or_generate(dir: &Path) -> Result<(Self, bool), DeviceKeyError> {
        if let Some(key) = Self::load(dir)? {
            return Ok((key, false));
        }
        let key = Self::generate()?;
        key.write(dir)?;
        Ok((key, true))
    }

    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`DeviceKeyError::Random`].
    pub fn generate() -> Result<Self, DeviceKeyError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| DeviceKeyError::Random(e.to_string()))?;
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    fn write(&self, dir: &Path) -> Result<(), DeviceKeyError> {
        let path = dir.join(DEVICE_KEY_FILE);
        let tmp = dir.join(format!("{DEVICE_KEY_FILE}.new"));
        let io = |action, source| DeviceKeyError::Io {
            action,
            path: path.clone(),
            source,
        };
        let pem = pkcs8::encode(&self.signing);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        // An older leftover keeps its old mode through `open`: set it.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| io("create", e))?;
        f.write_all(pem.as_bytes()).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("write", e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io("write", e))?;
        sync_dir(dir).map_err(|e| io("write", e))?;
        Ok(())
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
    use super::*;

    #[test]
    fn generated_once_then_loaded_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DeviceKey::load(dir.path()).unwrap().is_none());
        let (a, created) = DeviceKey::load_or_generate(dir.path()).unwrap();
        assert!(created);
        let (b, created) = DeviceKey::load_or_generate(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(a.public_key(), b.public_key());
        let mode = fs::metadata(dir.path().join(DEVICE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("device.key.new").exists());
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
    fn readable_by_others_or_damaged_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        DeviceKey::load_or_generate(dir.path()).unwrap();
        let path = dir.path().join(DEVICE_KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = DeviceKey::load(dir.path()).unwrap_err();
        assert!(matches!(e, DeviceKeyError::Permissions { mode: 0o644, .. }));
        assert!(e.to_string().contains("chmod 600"));
        fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            DeviceKey::load(dir.path()),
            Err(DeviceKeyError::Damaged(_))
        ));
        fs::write(&path, [0xff; 10]).unwrap();
        assert!(matches!(
            DeviceKey::load(dir.path()),
            Err(DeviceKeyError::Damaged(_))
        ));
    }
}
