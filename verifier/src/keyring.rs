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

/// A keyring checked once, when firmware builds it (at boot, or when it
/// installs a new keyring): at least one key, and every kid once, so no
/// order of the entries can change a verdict. Pass [`Keyring::keys`] where
/// a keyring slice goes.
///
/// ```
/// use tessera_verifier::keyring::{Keyring, KeyringError};
/// use tessera_verifier::KeyEntry;
/// let a = KeyEntry::new([1; 32], 0);
/// let mut retired = a;
/// retired.retired = true;
/// assert!(Keyring::new(&[a]).is_ok());
/// assert_eq!(
///     Keyring::new(&[a, retired]).unwrap_err(),
///     KeyringError::DuplicateKid { kid: a.kid }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyring<'k, K = KeyEntry> {
    keys: &'k [K],
}

impl<'k, K: TrustedKey> Keyring<'k, K> {
    /// Checks `keys`: not empty, no kid twice.
    ///
    /// # Errors
    /// [`KeyringError::Empty`], [`KeyringError::DuplicateKid`].
    pub fn new(keys: &'k [K]) -> Result<Self, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (i, key) in keys.iter().enumerate() {
            let kid = key.entry().kid;
            if keys.iter().skip(i + 1).any(|k| k.entry().kid == kid) {
                return Err(KeyringError::DuplicateKid { kid });
            }
        }
        Ok(Self { keys })
    }

    /// The checked entries.
    #[must_use]
    pub fn keys(&self) -> &'k [K] {
        self.keys
    }
}

impl<K> core::ops::Deref for Keyring<'_, K> {
    type Target = [K];

    fn deref(&self) -> &[K] {
        self.keys
    }
}

/// Why a keyring was refused when it was built ([`Keyring::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key at all: nothing would verify.
    Empty,
    /// Two entries have this kid: which one counts would depend on their
    /// order.
    DuplicateKid {
        /// The repeated kid.
        kid: KeyId,
    },
}

impl KeyringError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "keyring.empty",
            Self::DuplicateKid { .. } => "keyring.duplicate_kid",
        }
    }
}

impl core::fmt::Display for KeyringError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str(
                "the keyring holds no key, so no license would verify; export the vendor keyring with `tessera keyring export`",
            ),
            Self::DuplicateKid { kid } => {
                f.write_str("the keyring lists key id ")?;
                for b in kid {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(
                    " twice, so the order of its entries would decide the verdict; export the vendor keyring again with `tessera keyring export`",
                )
            }
        }
    }
}

impl core::error::Error for KeyringError {}

/// The one entry named `kid`, if any.
fn entry_for<'k, K: TrustedKey>(keyring: &'k [K], kid: &KeyId) -> Result<Option<&'k K>, Error> {
    let mut found = None;
    for key in keyring.iter().filter(|k| &k.entry().kid == kid) {
        if found.replace(key).is_some() {
            return Err(Error::DuplicateKid);
        }
    }
    Ok(found)
}

/// Finds the trusted key named `kid`, before the issue time is known
/// (`spec/FORMAT.md` §4.2).
///
/// # Errors
/// [`Error::UnknownKey`] when no entry has that kid, [`Error::RetiredKey`]
/// when its entry is retired, [`Error::DuplicateKid`] when two entries
/// have it (a keyring not built with [`Keyring::new`]).
pub fn lookup<'k, K: TrustedKey>(keyring: &'k [K], kid: &KeyId) -> Result<&'k K, Error> {
    match entry_for(keyring, kid)? {
        None => Err(Error::UnknownKey),
        Some(key) if key.entry().retired => Err(Error::RetiredKey),
        Some(key) => Ok(key),
    }
}

/// Finds the key for `kid` that may verify an object issued at `iat`
/// (`spec/FORMAT.md` §4.2).
///
/// # Errors
/// As [`lookup`], and [`Error::KeyNotValidAt`] when the key's window does
/// not cover `iat`.
pub fn find<'k, K: TrustedKey>(keyring: &'k [K], kid: &KeyId, iat: i64) -> Result<&'k K, Error> {
    let key = lookup(keyring, kid)?;
    if key.entry().covers(iat) {
        Ok(key)
    } else {
        Err(Error::KeyNotValidAt)
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

    /// The same kid twice: refused when the keyring is built, and by every
    /// lookup in either order, so the order never decides.
    #[test]
    fn duplicate_kids_are_refused_in_any_order() {
        let mut retired = entry(1);
        retired.retired = true;
        let mut later = entry(1);
        later.valid_from = 300;
        let kid = key_id(&[1; 32]);
        for pair in [
            [entry(1), retired],
            [retired, entry(1)],
            [entry(1), later],
            [later, entry(1)],
        ] {
            let ring = [entry(2), pair[0], entry(3), pair[1]];
            assert_eq!(Keyring::new(&ring), Err(KeyringError::DuplicateKid { kid }));
            assert_eq!(lookup(&ring, &kid), Err(Error::DuplicateKid));
            assert_eq!(find(&ring, &kid, 150), Err(Error::DuplicateKid));
            // Other kids are unaffected.
            assert_eq!(lookup(&ring, &key_id(&[2; 32])), Ok(&ring[0]));
        }
        let prepared = [PreparedKey::new(entry(1)), PreparedKey::new(entry(1))];
        assert_eq!(
            Keyring::new(&prepared),
            Err(KeyringError::DuplicateKid { kid })
        );
        assert_eq!(Keyring::<KeyEntry>::new(&[]), Err(KeyringError::Empty));
        let ring = [entry(1), entry(2)];
        assert_eq!(Keyring::new(&ring).map(|k| k.keys().len()), Ok(2));
    }
}
