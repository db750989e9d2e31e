//! Trusted signing keys: key ids and the keyring firmware compiles in
//! (`spec/FORMAT.md` §4).

use sha2::{Digest, Sha256};

use crate::signature::PublicKey;
use crate::Error;

/// Length of a key id in bytes (`spec/FORMAT.md` §4.1).
pub const KEY_ID_LEN: usize = 8;

/// An 8-byte key id: the first 8 bytes of SHA-256 over the 32-byte Ed25519
/// public key (`spec/FORMAT.md` §4.1).
pub type KeyId = [u8; KEY_ID_LEN];

/// Derives the key id of an Ed25519 public key (`spec/FORMAT.md` §4.1).
///
/// ```
/// let kid = tessera_verifier::keyring::key_id(&[0u8; 32]);
/// assert_eq!(kid.len(), 8);
/// ```
#[must_use]
pub fn key_id(public_key: &[u8; 32]) -> KeyId {
    let digest = Sha256::digest(public_key);
    let mut kid = [0u8; KEY_ID_LEN];
    for (out, byte) in kid.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    kid
}

/// One trusted public key.
///
/// A key verifies licenses whose issue time (`iat`) lies inside
/// `[valid_from, valid_until]`; a retired key verifies nothing
/// (`spec/FORMAT.md` §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// Key id, as derived by [`key_id`].
    pub kid: KeyId,
    /// Raw Ed25519 public key.
    pub public_key: [u8; 32],
    /// First second (Unix time) at which licenses signed by this key are accepted.
    pub valid_from: i64,
    /// Last second (Unix time) of that window; `None` means open-ended.
    pub valid_until: Option<i64>,
    /// A retired key verifies nothing.
    pub retired: bool,
}

impl KeyEntry {
    /// A key entry for `public_key` with its derived kid, valid from
    /// `valid_from` with no end and not retired.
    #[must_use]
    pub fn new(public_key: [u8; 32], valid_from: i64) -> Self {
        Self {
            kid: key_id(&public_key),
            public_key,
            valid_from,
            valid_until: None,
            retired: false,
        }
    }

    /// Whether this key may vouch for a license issued at `iat`.
    #[must_use]
    pub fn covers(&self, iat: i64) -> bool {
        iat >= self.valid_from && self.valid_until.is_none_or(|until| iat <= until)
    }
}

/// A [`KeyEntry`] with its public key decompressed and checked once, for
/// callers that verify often: a verification with a prepared key skips
/// about a tenth of the work (`bench/REPORT.md`). Build the prepared
/// keyring once (at boot, or when the keyring changes) and pass it where a
/// `&[KeyEntry]` would go; the verdicts are the same.
///
/// ```
/// use tessera_verifier::keyring::PreparedKey;
/// use tessera_verifier::KeyEntry;
/// // The public key of RFC 8032 §7.1 TEST 1.
/// let public_key = [
///     0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
///     0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
/// ];
/// let ring = [KeyEntry::new(public_key, 0)];
/// let prepared = ring.map(PreparedKey::new);
/// assert_eq!(prepared[0].entry(), &ring[0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedKey {
    entry: KeyEntry,
    /// `None` for bytes that are no usable key: nothing verifies with it,
    /// exactly as with the raw entry.
    key: Option<PublicKey>,
}

impl PreparedKey {
    /// Decompresses and checks `entry`'s public key.
    #[must_use]
    pub fn new(entry: KeyEntry) -> Self {
        Self {
            entry,
            key: PublicKey::from_bytes(&entry.public_key).ok(),
        }
    }

    /// The entry this key was prepared from.
    #[must_use]
    pub fn entry(&self) -> &KeyEntry {
        &self.entry
    }
}

impl From<KeyEntry> for PreparedKey {
    fn from(entry: KeyEntry) -> Self {
        Self::new(entry)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::KeyEntry {}
    impl Sealed for super::PreparedKey {}
}

/// What a keyring slice may hold: [`KeyEntry`] (the key is decompressed at
/// each verification) or [`PreparedKey`] (decompressed once).
pub trait TrustedKey: sealed::Sealed {
    /// The key's id, window and retirement.
    fn entry(&self) -> &KeyEntry;

    /// The checked public key.
    ///
    /// # Errors
    /// [`Error::BadSignature`] when the entry's bytes are not a usable
    /// Ed25519 key.
    fn public_key(&self) -> Result<PublicKey, Error>;
}

impl TrustedKey for KeyEntry {
    fn entry(&self) -> &KeyEntry {
        self
    }

    fn public_key(&self) -> Result<PublicKey, Error> {
        PublicKey::from_bytes(&self.public_key)
    }
}

impl TrustedKey for PreparedKey {
    fn entry(&self) -> &KeyEntry {
        &self.entry
    }

    fn public_key(&self) -> Result<PublicKey, Error> {
        self.key.ok_or(Error::BadSignature)
    }
}

/// Finds the trusted key named `kid`, before the issue time is known
/// (`spec/FORMAT.md` §4.2).
///
/// # Errors
/// [`Error::UnknownKey`] when no entry has that kid, [`Error::RetiredKey`]
/// when every entry with that kid is retired.
pub fn lookup<'k, K: TrustedKey>(keyring: &'k [K], kid: &KeyId) -> Result<&'k K, Error> {
    let mut seen_retired = false;
    for key in keyring.iter().filter(|k| &k.entry().kid == kid) {
        if !key.entry().retired {
            return Ok(key);
        }
        seen_retired = true;
    }
    Err(if seen_retired {
        Error::RetiredKey
    } else {
        Error::UnknownKey
    })
}

/// Finds the key for `kid` that may verify an object issued at `iat`
/// (`spec/FORMAT.md` §4.2).
///
/// # Errors
/// [`Error::UnknownKey`] when no entry has that kid, [`Error::RetiredKey`]
/// when every entry with that kid is retired, [`Error::KeyNotValidAt`] when
/// the entries with that kid do not cover `iat`.
pub fn find<'k, K: TrustedKey>(keyring: &'k [K], kid: &KeyId, iat: i64) -> Result<&'k K, Error> {
    let mut seen_retired = false;
    let mut seen_window = false;
    for key in keyring.iter().filter(|k| &k.entry().kid == kid) {
        let entry = key.entry();
        if entry.retired {
            seen_retired = true;
        } else if entry.covers(iat) {
            return Ok(key);
        } else {
            seen_window = true;
        }
    }
    if seen_window {
        Err(Error::KeyNotValidAt)
    } else if seen_retired {
        Err(Error::RetiredKey)
    } else {
        Err(Error::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pk: u8) -> KeyEntry {
        KeyEntry::new([pk; 32], 100)
    }

    #[test]
    fn kid_is_sha256_prefix() {
        // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
        assert_eq!(
            key_id(&[0; 32]),
            [0x66, 0x68, 0x7a, 0xad, 0xf8, 0x62, 0xbd, 0x77]
        );
    }

    #[test]
    fn unknown_retired_and_window() {
        let mut retired = entry(2);
        retired.retired = true;
        let mut bounded = entry(3);
        bounded.valid_until = Some(200);
        let ring = [entry(1), retired, bounded];
        assert_eq!(find(&ring, &key_id(&[1; 32]), 150), Ok(&ring[0]));
        assert_eq!(find(&ring, &key_id(&[9; 32]), 150), Err(Error::UnknownKey));
        assert_eq!(find(&ring, &key_id(&[2; 32]), 150), Err(Error::RetiredKey));
        assert_eq!(
            find(&ring, &key_id(&[3; 32]), 201),
            Err(Error::KeyNotValidAt)
        );
        assert_eq!(
            find(&ring, &key_id(&[3; 32]), 99),
            Err(Error::KeyNotValidAt)
        );
        assert_eq!(find(&ring, &key_id(&[3; 32]), 200), Ok(&ring[2]));
    }
}
