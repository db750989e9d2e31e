//! Trusted signing keys: key ids and the keyring firmware compiles in
//! (`spec/FORMAT.md` §4).

use sha2::{Digest, Sha256};

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

/// Finds the trusted key named `kid`, before the issue time is known
/// (`spec/FORMAT.md` §4.2).
///
/// # Errors
/// [`Error::UnknownKey`] when no entry has that kid, [`Error::RetiredKey`]
/// when every entry with that kid is retired.
pub fn lookup<'k>(keyring: &'k [KeyEntry], kid: &KeyId) -> Result<&'k KeyEntry, Error> {
    let mut seen_retired = false;
    for entry in keyring.iter().filter(|e| &e.kid == kid) {
        if !entry.retired {
            return Ok(entry);
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
pub fn find<'k>(keyring: &'k [KeyEntry], kid: &KeyId, iat: i64) -> Result<&'k KeyEntry, Error> {
    let mut seen_retired = false;
    let mut seen_window = false;
    for entry in keyring.iter().filter(|e| &e.kid == kid) {
        if entry.retired {
            seen_retired = true;
        } else if entry.covers(iat) {
            return Ok(entry);
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
