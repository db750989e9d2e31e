//! The signing abstraction the issuer uses, and its file-key implementation.
//!
//! The issuer only sees [`Signer`]: a hardware security module can be added
//! later as another implementation without touching the issuer.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::{OsRng, RngCore};
use tessera_verifier::keyring::key_id;
use tessera_verifier::{KeyEntry, KeyId};
use zeroize::Zeroizing;

use crate::pem::{encrypt_private_key, EncryptionParams};
use crate::{storage, KeyError, Passphrase};

/// Something that signs with an Ed25519 key: a key file, later a hardware
/// security module.
pub trait Signer {
    /// The key id (`tessera_verifier::keyring::key_id` of the public key).
    fn kid(&self) -> KeyId;

    /// The raw 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// Signs `msg` (pure Ed25519, RFC 8032) and returns the 64-byte
    /// signature.
    ///
    /// # Errors
    /// [`KeyError::Signing`] when the backend fails (never for a file key).
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError>;

    /// A firmware keyring entry for this key, valid from `valid_from` (Unix
    /// seconds) with no end.
    fn verifying_key_entry(&self, valid_from: i64) -> KeyEntry {
        KeyEntry::new(self.public_key(), valid_from)
    }

    /// The public half: kid and public key.
    fn public_key_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            kid: self.kid(),
            public_key: self.public_key(),
        }
    }
}

/// The public half of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// The key id.
    pub kid: KeyId,
    /// The raw 32-byte Ed25519 public key.
    pub public_key: [u8; 32],
}

impl PublicKeyInfo {
    /// The public key with its derived kid.
    #[must_use]
    pub fn new(public_key: [u8; 32]) -> Self {
        Self {
            kid: key_id(&public_key),
            public_key,
        }
    }

    /// The kid as 16 lowercase hex digits.
    #[must_use]
    pub fn kid_hex(&self) -> String {
        hex::encode(self.kid)
    }

    /// The public key as a `-----BEGIN PUBLIC KEY-----` PEM block (SPKI).
    ///
    /// # Errors
    /// [`KeyError::Encoding`], which does not happen in practice.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        crate::public_key_pem(&self.public_key)
    }
}

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
        storage::write_new_file(path, pem.as_bytes(), storage::PRIVATE_MODE)?;
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

    #[test]
    fn key_entry_helper() {
        let signer = FileSigner::generate().unwrap();
        let entry = signer.verifying_key_entry(1_700_000_000);
        assert_eq!(entry.kid, signer.kid());
        assert_eq!(entry.public_key, signer.public_key());
        assert_eq!(entry.valid_from, 1_700_000_000);
        assert_eq!(entry.valid_until, None);
        assert!(!entry.retired);
    }
}
