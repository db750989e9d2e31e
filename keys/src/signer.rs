//! The signing abstraction the issuer uses.
//!
//! The issuer only sees [`Signer`]; its implementations (a key file, a
//! PKCS#11 token) live in the `tessera-signer` crate, which only the
//! vendor's side links: a site needs the public keyring, never signing code.

use tessera_verifier::keyring::key_id;
use tessera_verifier::{KeyEntry, KeyId};

use crate::KeyError;

/// Something that signs with an Ed25519 key: a key file or a hardware
/// security module (both in `tessera-signer`).
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
    /// None in practice; see [`public_key_pem`].
    pub fn to_pem(&self) -> Result<String, KeyError> {
        public_key_pem(&self.public_key)
    }
}

/// The DER of an Ed25519 `SubjectPublicKeyInfo` before the 32 key bytes
/// (RFC 8410 §4): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Encodes a raw Ed25519 public key as a `PUBLIC KEY` PEM block (SPKI,
/// RFC 8410; 64-column base64, LF line ends), as OpenSSL writes it.
///
/// # Errors
/// None: the `Result` is kept for callers written against the DER encoder
/// this replaced.
pub fn public_key_pem(public_key: &[u8; 32]) -> Result<String, KeyError> {
    // The structure is fixed for Ed25519, so no DER library is needed here.
    let mut der = [0u8; ED25519_SPKI_PREFIX.len() + 32];
    let (prefix, key) = der.split_at_mut(ED25519_SPKI_PREFIX.len());
    prefix.copy_from_slice(&ED25519_SPKI_PREFIX);
    key.copy_from_slice(public_key);
    Ok(tessera_verifier::armor::encode(&der, "PUBLIC KEY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed([u8; 32]);

    impl Signer for Fixed {
        fn kid(&self) -> KeyId {
            key_id(&self.0)
        }
        fn public_key(&self) -> [u8; 32] {
            self.0
        }
        fn sign(&self, _: &[u8]) -> Result<[u8; 64], KeyError> {
            Err(KeyError::Signing("no key".into()))
        }
    }

    #[test]
    fn key_entry_and_public_info_helpers() {
        let public_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        let signer = Fixed(public_key);
        let entry = signer.verifying_key_entry(1_700_000_000);
        assert_eq!(entry.kid, signer.kid());
        assert_eq!(entry.public_key, public_key);
        assert_eq!(entry.valid_from, 1_700_000_000);
        assert_eq!(entry.valid_until, None);
        assert!(!entry.retired);
        let info = signer.public_key_info();
        assert_eq!(info, PublicKeyInfo::new(public_key));
        assert_eq!(info.kid_hex(), hex::encode(key_id(&public_key)));
    }

    #[test]
    fn public_key_pem_is_rfc_8410() {
        // RFC 8410 §10.1's example public key, byte for byte.
        let mut pk = [0u8; 32];
        hex::decode_to_slice(
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1",
            &mut pk,
        )
        .unwrap();
        assert_eq!(
            public_key_pem(&pk).unwrap(),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
             -----END PUBLIC KEY-----\n"
        );
        assert_eq!(
            PublicKeyInfo::new(pk).to_pem().unwrap(),
            public_key_pem(&pk).unwrap()
        );
    }
}
