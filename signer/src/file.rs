//! The file-key signer: an Ed25519 key held in memory, loaded from or
//! saved to an encrypted key file.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::{OsRng, RngCore};
use tessera_keys::storage::{write_new_file, PRIVATE_MODE};
use tessera_keys::{KeyError, PublicKeyInfo, Signer};
use tessera_verifier::keyring::key_id;
use tessera_verifier::KeyId;
use zeroize::Zeroizing;

use crate::pem::{encrypt_private_key, EncryptionParams};
use crate::Passphrase;

/// An Ed25519 signing key held in memory, loaded from or saved to an
/// encrypted key file. The secret is wiped when dropped and never printed.
pub struct FileSigner {
    // ed25519-dalek's `SigningKey` zeroizes its secret on drop (feature
    // `zeroize`).
    key: SigningKey,
    kid: KeyId,
}

impl FileSigner {
    /// Generates a new key from the operating system's random number
    /// generator.
    ///
    /// # Errors
    /// [`KeyError::Rng`] when the generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.try_fill_bytes(seed.as_mut()).map_err(KeyError::Rng)?;
        Ok(Self::from_signing_key(SigningKey::from_bytes(&seed)))
    }

    pub(crate) fn from_signing_key(key: SigningKey) -> Self {
        let kid = key_id(key.verifying_key().as_bytes());
        Self { key, kid }
    }

    /// Writes the key to a new file, encrypted under `passphrase` with the
    /// default (strong) [`EncryptionParams`], mode 0600. Use it to re-encrypt
    /// a key imported with [`crate::load_unencrypted_signer`].
    ///
    /// # Errors
    /// [`KeyError::AlreadyExists`] when `path` exists (it is never
    /// overwritten), [`KeyError::Io`], [`KeyError::Rng`].
    pub fn write_encrypted(
        &self,
        path: &Path,
        passphrase: &Passphrase,
    ) -> Result<PublicKeyInfo, KeyError> {
        self.write_encrypted_with(path, passphrase, EncryptionParams::default())
    }

    /// [`FileSigner::write_encrypted`] with chosen encryption parameters
    /// (tests use cheap ones).
    ///
    /// # Errors
    /// As [`FileSigner::write_encrypted`].
    #[doc(hidden)]
    pub fn write_encrypted_with(
        &self,
        path: &Path,
        passphrase: &Passphrase,
        params: EncryptionParams,
    ) -> Result<PublicKeyInfo, KeyError> {
        let pem = encrypt_private_key(&self.key, passphrase, params)?;
        write_new_file(path, pem.as_bytes(), PRIVATE_MODE)?;
        Ok(self.public_key_info())
    }
}

impl Signer for FileSigner {
    fn kid(&self) -> KeyId {
        self.kid
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError> {
        Ok(self.key.sign(msg).to_bytes())
    }
}

// The only secret field, `key`, zeroizes itself on drop.
impl zeroize::ZeroizeOnDrop for FileSigner {}

impl fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSigner")
            .field("kid", &hex::encode(self.kid))
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::VerifyingKey;

    use super::*;

    #[test]
    fn generated_keys_differ_and_sign() {
        let a = FileSigner::generate().unwrap();
        let b = FileSigner::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        assert_eq!(a.kid(), key_id(&a.public_key()));
        let sig = a.sign(b"hello").unwrap();
        let vk = VerifyingKey::from_bytes(&a.public_key()).unwrap();
        vk.verify_strict(b"hello", &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
        assert!(vk
            .verify_strict(b"hellO", &ed25519_dalek::Signature::from_bytes(&sig))
            .is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let signer = FileSigner::generate().unwrap();
        let seed_hex = hex::encode(signer.key.to_bytes());
        let shown = format!("{signer:?} {signer:#?}");
        assert!(!shown.contains(&seed_hex), "{shown}");
        assert!(!shown.to_uppercase().contains(&seed_hex.to_uppercase()));
        assert!(shown.contains(&hex::encode(signer.kid())));
    }
}
