//! The persistent state firmware keeps in flash between checks
//! (`spec/RUNTIME.md` §6): which serial it belongs to, the highest accepted
//! sequence and its license id, the last time seen and the last successful
//! renewal.
//!
//! The record is [`State::LEN`] bytes with a version and a checksum. It is
//! what makes replaying an older license file and setting the clock back
//! detectable offline, so a damaged record is reported
//! ([`Error::StateCorrupt`]) and never replaced by a fresh one behind the
//! caller's back: a fresh state would accept every older file again.
//!
//! A record kept where others can write it is bound to a device secret
//! with a [`StateKey`] (`spec/RUNTIME.md` §6.6): [`State::to_bytes_with`]
//! then writes a version-2 record sealed with a 16-byte HMAC-SHA256 tag,
//! and [`State::from_bytes_with`] accepts only such a record under the same
//! key. A record anyone can compute (the unkeyed version 1, or one sealed
//! under another device's key) is corrupt to a keyed reader.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::claims::ID_LEN;
use crate::time::{days_between, Verdict};
use crate::{Error, License};

/// Length of the serial digest kept in the state.
pub const SERIAL_DIGEST_LEN: usize = 8;

/// Domain tag of the serial digest.
const SERIAL_TAG: &[u8] = b"tessera-state-serial-v1\0";
/// Domain tag of the record checksum.
const CHECKSUM_TAG: &[u8] = b"tessera-state-v1\0";
/// Domain tag of the keyed record's MAC.
const MAC_TAG: &[u8] = b"tessera-state-v2\0";
/// HKDF salt of [`StateKey::derive`].
const KEY_SALT: &[u8] = b"tessera-state-key-v1";

const FLAG_LICENSED: u8 = 1;
const FLAG_RECOVERY: u8 = 2;
const FLAG_SEEN: u8 = 4;
const FLAGS_KNOWN: u8 = FLAG_LICENSED | FLAG_RECOVERY | FLAG_SEEN;

// Byte offsets of the record (`spec/RUNTIME.md` §6.1).
const OFF_VERSION: usize = 0;
const OFF_FLAGS: usize = 1;
const OFF_RESERVED: usize = 2;
const OFF_SEQUENCE: usize = 4;
const OFF_SERIAL: usize = 8;
const OFF_ID: usize = 16;
const OFF_LAST_SEEN: usize = 32;
const OFF_LAST_RENEWAL: usize = 40;
const OFF_FLOOR: usize = 48;
const OFF_CHECKSUM: usize = 56;
const CHECKSUM_LEN: usize = 8;
// The keyed record (version 2) keeps last renewal and recovery floor in one
// field (a state is never both licensed and in recovery) to make room for
// a 16-byte tag.
const OFF_RENEWAL_OR_FLOOR: usize = 40;
const OFF_MAC: usize = 48;
const MAC_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with `key`. HMAC takes keys of any length, so the
/// fallback to an all-zero key is never taken; it only spares a panic path.
fn hmac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

/// The key that binds a state record to one device (`spec/RUNTIME.md`
/// §6.6): 32 bytes, wiped from memory when dropped, never shown by
/// `Debug`.
///
/// Derive it from a secret only this device holds with
/// [`StateKey::derive`] (firmware: a key in OTP or a secure element, or a
/// key derived from one; the device agent: its device key), and mix a
/// hardware monotonic counter into `context` where the device has one, so
/// that an older record of the same device stops verifying too
/// (`docs/firmware.md`). The key itself is never stored.
///
/// ```
/// use tessera_verifier::{Error, State, StateKey};
///
/// let key = StateKey::derive(b"a 32-byte secret from OTP .......", b"pbx state");
/// let flash = State::new().to_bytes_with(Some(&key));
/// assert_eq!(State::from_bytes_with(&flash, Some(&key)), Ok(State::new()));
///
/// // Another key, no key, or the unkeyed record anyone can compute: corrupt.
/// let other = StateKey::derive(b"another device's secret .........", b"pbx state");
/// assert_eq!(State::from_bytes_with(&flash, Some(&other)), Err(Error::StateCorrupt));
/// assert_eq!(State::from_bytes(&flash), Err(Error::StateCorrupt));
/// let forged = State::new().to_bytes();
/// assert_eq!(State::from_bytes_with(&forged, Some(&key)), Err(Error::StateCorrupt));
/// ```
pub struct StateKey([u8; StateKey::LEN]);

impl StateKey {
    /// Length of the key.
    pub const LEN: usize = 32;

    /// A key the caller derived by other means (for example inside a
    /// secure element). Prefer [`StateKey::derive`].
    #[must_use]
    pub const fn from_bytes(key: [u8; Self::LEN]) -> Self {
        Self(key)
    }

    /// HKDF-SHA256 (RFC 5869) of `secret` with the salt
    /// `"tessera-state-key-v1"` and `context` as info, 32 bytes.
    ///
    /// `secret` should hold at least 32 bytes of entropy; `context` names
    /// the use (and may carry a monotonic counter, big-endian).
    #[must_use]
    pub fn derive(secret: &[u8], context: &[u8]) -> Self {
        Self(hkdf32(KEY_SALT, secret, context))
    }

    /// The key's bytes, to hand to a secure element or to print a test
    /// vector. Never store them beside the record they seal.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    fn tag(&self, body: &[u8]) -> HmacSha256 {
        hmac(&self.0).chain_update(MAC_TAG).chain_update(body)
    }
}

/// HKDF-SHA256 (RFC 5869) with an output of one block, 32 bytes.
fn hkdf32(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut prk = hmac(salt).chain_update(ikm).finalize().into_bytes();
    let mut okm = hmac(&prk)
        .chain_update(info)
        .chain_update([1u8])
        .finalize()
        .into_bytes();
    prk.zeroize();
    let mut out = [0u8; 32];
    for (o, k) in out.iter_mut().zip(okm.iter()) {
        *o = *k;
    }
    okm.zeroize();
    out
}

impl Drop for StateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

/// The short digest of a SW serial that a state record keeps
/// (`spec/RUNTIME.md` §6.1): first 8 bytes of SHA-256 over a domain tag
/// and the serial.
#[must_use]
pub fn serial_digest(serial: &str) -> [u8; SERIAL_DIGEST_LEN] {
    let digest = Sha256::new()
        .chain_update(SERIAL_TAG)
        .chain_update(serial.as_bytes())
        .finalize();
    let mut out = [0u8; SERIAL_DIGEST_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// The persistent license state of one device (`spec/RUNTIME.md` §6).
///
/// Load it with [`State::from_bytes`] (or [`State::from_redundant`]), pass
/// it to [`crate::verify`], and store [`State::to_bytes`] whenever it
/// changed (compare with the loaded value to spare flash writes). A
/// factory-new device stores [`State::new`] once during provisioning; an
/// erased or unreadable record is corrupt, not fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    flags: u8,
    sequence: u32,
    serial: [u8; SERIAL_DIGEST_LEN],
    license_id: [u8; ID_LEN],
    last_seen: i64,
    last_renewal: i64,
    recovery_floor: i64,
}

// No `Default`: `State::from_bytes(..).unwrap_or_default()` would be exactly
// the silent reset after corruption that must not happen.
#[allow(clippy::new_without_default)]
impl State {
    /// Length of the encoded record.
    pub const LEN: usize = 64;
    /// Version of the encoding written by [`State::to_bytes`]: unkeyed,
    /// with a checksum.
    pub const VERSION: u8 = 1;
    /// Version of the encoding written by [`State::to_bytes_with`] with a
    /// key: sealed with a MAC (`spec/RUNTIME.md` §6.6).
    pub const VERSION_KEYED: u8 = 2;

    /// The state of a device that has never accepted a license: it
    /// accepts the first valid license bound to it.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            flags: 0,
            sequence: 0,
            serial: [0; SERIAL_DIGEST_LEN],
            license_id: [0; ID_LEN],
            last_seen: 0,
            last_renewal: 0,
            recovery_floor: 0,
        }
    }

    /// The state to continue with after the record was found corrupt and
    /// no intact copy exists (`spec/RUNTIME.md` §6.5), created by an
    /// explicit operator action at time `now`.
    ///
    /// It grants less than the lost state, never more: it accepts only a
    /// license issued at or after `now` (within the license's rollback
    /// tolerance), that is a fresh file from the vendor, so no file the
    /// device held before can be replayed; and the clock may not go back
    /// before `now`.
    #[must_use]
    pub const fn recovery(now: i64) -> Self {
        let mut s = Self::new();
        s.flags = FLAG_RECOVERY | FLAG_SEEN;
        s.last_seen = now;
        s.recovery_floor = now;
        s
    }

    /// Whether no license has been accepted (and no recovery started).
    #[must_use]
    pub fn is_fresh(&self) -> bool {
        self.flags & (FLAG_LICENSED | FLAG_RECOVERY) == 0
    }

    /// Whether this is a recovery state waiting for a fresh license.
    #[must_use]
    pub fn in_recovery(&self) -> bool {
        self.flags & FLAG_RECOVERY != 0
    }

    fn licensed(&self) -> bool {
        self.flags & FLAG_LICENSED != 0
    }

    /// Highest accepted sequence, once a license was accepted.
    #[must_use]
    pub fn sequence(&self) -> Option<u32> {
        self.licensed().then_some(self.sequence)
    }

    /// Id of the license in force (the one with the highest sequence).
    #[must_use]
    pub fn license_id(&self) -> Option<[u8; ID_LEN]> {
        self.licensed().then_some(self.license_id)
    }

    /// Digest of the SW serial this state belongs to ([`serial_digest`]).
    #[must_use]
    pub fn serial_digest(&self) -> Option<[u8; SERIAL_DIGEST_LEN]> {
        self.licensed().then_some(self.serial)
    }

    /// Latest clock value seen at an accepted check; never decreases.
    #[must_use]
    pub fn last_seen(&self) -> Option<i64> {
        (self.flags & FLAG_SEEN != 0).then_some(self.last_seen)
    }

    /// Time of the last successful renewal: when a license with a higher
    /// sequence (or the first one) was accepted.
    #[must_use]
    pub fn last_renewal(&self) -> Option<i64> {
        self.licensed().then_some(self.last_renewal)
    }

    /// Whole days from the last successful renewal to `now`, what the
    /// vendor is told for systems that failed to renew.
    #[must_use]
    pub fn days_since_renewal(&self, now: i64) -> Option<u32> {
        self.last_renewal().map(|t| days_between(t, now))
    }

    /// Bytes 0..40, the same in both versions: version, flags, sequence,
    /// serial digest, license id, last seen.
    fn head(&self, version: u8) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        put(&mut out, OFF_VERSION, &[version]);
        put(&mut out, OFF_FLAGS, &[self.flags]);
        put(&mut out, OFF_SEQUENCE, &self.sequence.to_be_bytes());
        put(&mut out, OFF_SERIAL, &self.serial);
        put(&mut out, OFF_ID, &self.license_id);
        put(&mut out, OFF_LAST_SEEN, &self.last_seen.to_be_bytes());
        out
    }

    /// Decodes bytes 0..40 of a record of `version` (reserved bytes 0) and
    /// the two times that follow, and checks that the state is canonical.
    fn decode(
        bytes: &[u8; Self::LEN],
        version: u8,
        times: impl FnOnce(u8) -> Result<(i64, i64), Error>,
    ) -> Result<Self, Error> {
        if field::<1>(bytes, OFF_VERSION)? != [version]
            || field::<2>(bytes, OFF_RESERVED)? != [0, 0]
        {
            return Err(Error::StateCorrupt);
        }
        let [flags] = field::<1>(bytes, OFF_FLAGS)?;
        let (last_renewal, recovery_floor) = times(flags)?;
        let s = Self {
            flags,
            sequence: u32::from_be_bytes(field(bytes, OFF_SEQUENCE)?),
            serial: field(bytes, OFF_SERIAL)?,
            license_id: field(bytes, OFF_ID)?,
            last_seen: i64::from_be_bytes(field(bytes, OFF_LAST_SEEN)?),
            last_renewal,
            recovery_floor,
        };
        if s.is_canonical() {
            Ok(s)
        } else {
            Err(Error::StateCorrupt)
        }
    }

    /// The encoded record (`spec/RUNTIME.md` §6.1): big-endian fields and
    /// an 8-byte checksum.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = self.head(Self::VERSION);
        put(&mut out, OFF_LAST_RENEWAL, &self.last_renewal.to_be_bytes());
        put(&mut out, OFF_FLOOR, &self.recovery_floor.to_be_bytes());
        let sum = checksum(out.get(..OFF_CHECKSUM).unwrap_or_default());
        put(&mut out, OFF_CHECKSUM, &sum);
        out
    }

    /// The encoded record, sealed under `key` when one is given
    /// (version 2, `spec/RUNTIME.md` §6.6), else [`State::to_bytes`].
    #[must_use]
    pub fn to_bytes_with(&self, key: Option<&StateKey>) -> [u8; Self::LEN] {
        let Some(key) = key else {
            return self.to_bytes();
        };
        let mut out = self.head(Self::VERSION_KEYED);
        let merged = if self.in_recovery() {
            self.recovery_floor
        } else {
            self.last_renewal
        };
        put(&mut out, OFF_RENEWAL_OR_FLOOR, &merged.to_be_bytes());
        let tag = key
            .tag(out.get(..OFF_MAC).unwrap_or_default())
            .finalize()
            .into_bytes();
        put(&mut out, OFF_MAC, tag.get(..MAC_LEN).unwrap_or_default());
        out
    }

    /// Decodes a record sealed under `key` ([`State::to_bytes_with`]), or,
    /// without a key, an unkeyed one ([`State::from_bytes`]).
    ///
    /// # Errors
    /// [`Error::StateCorrupt`] as for [`State::from_bytes`], and with a
    /// key: a record that is not version 2 (an unkeyed record is one
    /// anybody can compute) or whose tag does not verify under `key`.
    pub fn from_bytes_with(bytes: &[u8], key: Option<&StateKey>) -> Result<Self, Error> {
        let Some(key) = key else {
            return Self::from_bytes(bytes);
        };
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| Error::StateCorrupt)?;
        let body = bytes.get(..OFF_MAC).ok_or(Error::StateCorrupt)?;
        let tag = bytes.get(OFF_MAC..).ok_or(Error::StateCorrupt)?;
        key.tag(body)
            .verify_truncated_left(tag)
            .map_err(|_| Error::StateCorrupt)?;
        Self::decode(bytes, Self::VERSION_KEYED, |flags| {
            let merged = i64::from_be_bytes(field(bytes, OFF_RENEWAL_OR_FLOOR)?);
            Ok(if flags & FLAG_RECOVERY != 0 {
                (0, merged)
            } else {
                (merged, 0)
            })
        })
    }

    /// Decodes a record written by [`State::to_bytes`].
    ///
    /// # Errors
    /// [`Error::StateCorrupt`] for a wrong length, version or checksum, an
    /// unknown flag, or fields that contradict each other. What firmware
    /// does then is in `spec/RUNTIME.md` §6.5: never continue with
    /// [`State::new`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().map_err(|_| Error::StateCorrupt)?;
        let body = bytes.get(..OFF_CHECKSUM).ok_or(Error::StateCorrupt)?;
        if field::<CHECKSUM_LEN>(bytes, OFF_CHECKSUM)? != checksum(body) {
            return Err(Error::StateCorrupt);
        }
        Self::decode(bytes, Self::VERSION, |_| {
            Ok((
                i64::from_be_bytes(field(bytes, OFF_LAST_RENEWAL)?),
                i64::from_be_bytes(field(bytes, OFF_FLOOR)?),
            ))
        })
    }

    /// Loads the newer intact one of two copies (A/B slots written
    /// alternately, `spec/RUNTIME.md` §6.5): a write torn by a power cut
    /// leaves the previous state, which is what the device last stored.
    ///
    /// # Errors
    /// [`Error::StateCorrupt`] when neither copy is intact.
    pub fn from_redundant(a: &[u8], b: &[u8]) -> Result<Self, Error> {
        Self::from_redundant_with(a, b, None)
    }

    /// [`State::from_redundant`] for records sealed under `key`
    /// ([`State::from_bytes_with`]).
    ///
    /// # Errors
    /// [`Error::StateCorrupt`] when neither copy is intact under `key`.
    pub fn from_redundant_with(a: &[u8], b: &[u8], key: Option<&StateKey>) -> Result<Self, Error> {
        match (Self::from_bytes_with(a, key), Self::from_bytes_with(b, key)) {
            (Ok(a), Ok(b)) => Ok(if b.progress() > a.progress() { b } else { a }),
            (Ok(s), Err(_)) | (Err(_), Ok(s)) => Ok(s),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Every accepted check moves these forward, so the later write of
    /// two intact copies has the larger key.
    fn progress(&self) -> (Option<i64>, Option<u32>, Option<i64>) {
        (self.last_seen(), self.sequence(), self.last_renewal())
    }

    /// Fields that are meaningless under the flags must be zero, and the
    /// meaningful ones consistent: an encoding has exactly one form.
    fn is_canonical(&self) -> bool {
        let licensed = self.licensed();
        let recovery = self.in_recovery();
        let seen = self.flags & FLAG_SEEN != 0;
        self.flags & !FLAGS_KNOWN == 0
            && !(licensed && recovery)
            && (seen || (!licensed && !recovery && self.last_seen == 0))
            && (licensed
                || (self.sequence == 0
                    && self.serial == [0; SERIAL_DIGEST_LEN]
                    && self.license_id == [0; ID_LEN]
                    && self.last_renewal == 0))
            && (!licensed || self.last_renewal <= self.last_seen)
            && (if recovery {
                self.recovery_floor <= self.last_seen
            } else {
                self.recovery_floor == 0
            })
    }

    /// Refuses a license for another serial than the one this state
    /// belongs to (`spec/RUNTIME.md` §4.2).
    pub(crate) fn check_serial(&self, serial: &str) -> Result<(), Error> {
        match self.serial_digest() {
            Some(d) if d != serial_digest(serial) => Err(Error::WrongSerial),
            _ => Ok(()),
        }
    }

    /// Refuses a clock earlier than the last time seen minus `tolerance`
    /// seconds (`spec/RUNTIME.md` §6.3).
    pub(crate) fn check_clock(&self, now: i64, tolerance: u32) -> Result<(), Error> {
        match self.last_seen() {
            Some(seen) if now < seen.saturating_sub(i64::from(tolerance)) => {
                Err(Error::ClockRollback)
            }
            _ => Ok(()),
        }
    }

    /// The state after accepting `license` at `now` with `verdict`
    /// (`spec/RUNTIME.md` §6.2–§6.4), or why it cannot be accepted. The
    /// serial and clock were checked before.
    pub(crate) fn accept(
        &self,
        license: &License<'_>,
        now: i64,
        verdict: Verdict,
    ) -> Result<Self, Error> {
        let mut next = *self;
        if self.in_recovery() {
            let issued = license
                .issued_at()
                .saturating_add(i64::from(license.policy().rollback_tolerance));
            if issued < self.recovery_floor {
                // Possibly a file the device held before it lost its state.
                return Err(Error::StateCorrupt);
            }
        }
        let replaces = match self.sequence() {
            None => true,
            Some(highest) if license.sequence() > highest => true,
            Some(highest) if license.sequence() == highest && license.id() == self.license_id => {
                false
            }
            Some(highest) => return Err(Error::Superseded { seq: highest }),
        };
        next.last_seen = match self.last_seen() {
            Some(seen) => seen.max(now),
            None => now,
        };
        next.flags |= FLAG_SEEN;
        // A license that is not in force yet is not recorded: recording its
        // sequence would supersede the license that is still in force.
        if replaces && verdict != Verdict::NotYetValid {
            next.flags = (next.flags | FLAG_LICENSED) & !FLAG_RECOVERY;
            next.recovery_floor = 0;
            next.sequence = license.sequence();
            next.license_id = license.id();
            next.serial = serial_digest(license.serial());
            next.last_renewal = now;
        }
        Ok(next)
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_TAG)
        .chain_update(body)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

fn put(out: &mut [u8; State::LEN], at: usize, bytes: &[u8]) {
    for (o, b) in out.iter_mut().skip(at).zip(bytes) {
        *o = *b;
    }
}

fn field<const N: usize>(bytes: &[u8; State::LEN], at: usize) -> Result<[u8; N], Error> {
    bytes
        .get(at..at.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(Error::StateCorrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn licensed(seq: u32, seen: i64, renewal: i64) -> State {
        State {
            flags: FLAG_LICENSED | FLAG_SEEN,
            sequence: seq,
            serial: serial_digest("SW-1"),
            license_id: [seq.to_be_bytes()[3]; ID_LEN],
            last_seen: seen,
            last_renewal: renewal,
            recovery_floor: 0,
        }
    }

    fn examples() -> [State; 5] {
        [
            State::new(),
            State::recovery(1_767_225_600),
            licensed(1, 1_767_225_600, 1_767_225_600),
            licensed(u32::MAX, i64::MAX, i64::MIN),
            State {
                flags: FLAG_SEEN,
                last_seen: -5,
                ..State::new()
            },
        ]
    }

    #[test]
    fn record_fits_64_bytes_and_round_trips() {
        const { assert!(State::LEN <= 64) };
        for s in examples() {
            assert_eq!(State::from_bytes(&s.to_bytes()), Ok(s));
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for s in examples() {
            let bytes = s.to_bytes();
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut b = bytes;
                    b[i] ^= 1 << bit;
                    assert_eq!(
                        State::from_bytes(&b),
                        Err(Error::StateCorrupt),
                        "byte {i} bit {bit}"
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_length_erased_flash_and_zeros_are_corrupt() {
        let bytes = State::new().to_bytes();
        assert_eq!(State::from_bytes(&bytes[..63]), Err(Error::StateCorrupt));
        assert_eq!(State::from_bytes(&[]), Err(Error::StateCorrupt));
        let mut longer = [0u8; 65];
        longer[..64].copy_from_slice(&bytes);
        assert_eq!(State::from_bytes(&longer), Err(Error::StateCorrupt));
        assert_eq!(State::from_bytes(&[0xff; 64]), Err(Error::StateCorrupt));
        assert_eq!(State::from_bytes(&[0; 64]), Err(Error::StateCorrupt));
    }

    #[test]
    fn non_canonical_records_with_a_valid_checksum_are_corrupt() {
        let reseal = |mut b: [u8; 64]| {
            let sum = checksum(&b[..OFF_CHECKSUM]);
            b[OFF_CHECKSUM..].copy_from_slice(&sum);
            b
        };
        let base = licensed(3, 100, 50).to_bytes();
        type Edit = fn(&mut [u8; 64]);
        let cases: [(&str, Edit); 7] = [
            ("version 2", |b| b[OFF_VERSION] = 2),
            ("unknown flag", |b| b[OFF_FLAGS] |= 0x80),
            ("licensed and recovery", |b| b[OFF_FLAGS] |= FLAG_RECOVERY),
            ("reserved byte", |b| b[OFF_RESERVED] = 1),
            ("renewal after last seen", |b| b[OFF_LAST_RENEWAL + 7] = 200),
            ("floor without recovery", |b| b[OFF_FLOOR + 7] = 1),
            ("sequence without license", |b| b[OFF_FLAGS] = FLAG_SEEN),
        ];
        assert!(State::from_bytes(&base).is_ok());
        for (name, edit) in cases {
            let mut b = base;
            edit(&mut b);
            assert_eq!(
                State::from_bytes(&reseal(b)),
                Err(Error::StateCorrupt),
                "{name}"
            );
        }
    }

    #[test]
    fn redundant_copies_give_the_newer_intact_one() {
        let old = licensed(1, 100, 100).to_bytes();
        let new = licensed(2, 200, 200).to_bytes();
        let mut torn = new;
        torn[20] ^= 4;
        assert_eq!(State::from_redundant(&old, &new), State::from_bytes(&new));
        assert_eq!(State::from_redundant(&new, &old), State::from_bytes(&new));
        assert_eq!(State::from_redundant(&old, &torn), State::from_bytes(&old));
        assert_eq!(
            State::from_redundant(&torn, &torn),
            Err(Error::StateCorrupt)
        );
    }

    fn key(n: u8) -> StateKey {
        StateKey::derive(&[n; 32], b"test")
    }

    #[test]
    fn hkdf_matches_rfc_5869_test_case_1() {
        let okm = hkdf32(
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            &[0x0b; 22],
            &[0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9],
        );
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf";
        let mut hex = [0u8; 64];
        for (i, b) in okm.iter().enumerate() {
            hex[2 * i] = b"0123456789abcdef"[usize::from(b >> 4)];
            hex[2 * i + 1] = b"0123456789abcdef"[usize::from(b & 15)];
        }
        assert_eq!(core::str::from_utf8(&hex).unwrap(), expected);
    }

    #[test]
    fn keyed_records_round_trip_only_under_their_key() {
        let (k, other) = (key(1), key(2));
        for s in examples() {
            let sealed = s.to_bytes_with(Some(&k));
            assert_eq!(sealed[0], State::VERSION_KEYED);
            assert_eq!(State::from_bytes_with(&sealed, Some(&k)), Ok(s));
            assert_eq!(
                State::from_redundant_with(&sealed, &[0; 64], Some(&k)),
                Ok(s)
            );
            for refused in [
                State::from_bytes_with(&sealed, Some(&other)),
                State::from_bytes_with(&sealed, None),
                State::from_bytes(&sealed),
                // The unkeyed record is one anybody can compute.
                State::from_bytes_with(&s.to_bytes(), Some(&k)),
            ] {
                assert_eq!(refused, Err(Error::StateCorrupt), "{s:?}");
            }
            assert_eq!(s.to_bytes_with(None), s.to_bytes());
        }
        extern crate std;
        assert_eq!(std::format!("{k:?}"), "StateKey(..)");
    }

    #[test]
    fn keyed_record_keeps_renewal_and_floor_in_one_field() {
        let k = key(1);
        let licensed = licensed(7, 500, 400).to_bytes_with(Some(&k));
        assert_eq!(licensed[40..48], 400i64.to_be_bytes());
        let recovery = State::recovery(900).to_bytes_with(Some(&k));
        assert_eq!(recovery[40..48], 900i64.to_be_bytes());
        assert_eq!(
            State::from_bytes_with(&recovery, Some(&k)),
            Ok(State::recovery(900))
        );
    }

    #[test]
    fn every_single_bit_flip_of_a_keyed_record_is_detected() {
        let k = key(3);
        for s in examples() {
            let bytes = s.to_bytes_with(Some(&k));
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut b = bytes;
                    b[i] ^= 1 << bit;
                    assert_eq!(
                        State::from_bytes_with(&b, Some(&k)),
                        Err(Error::StateCorrupt),
                        "byte {i} bit {bit}"
                    );
                }
            }
        }
    }

    #[test]
    fn non_canonical_keyed_records_with_a_valid_tag_are_corrupt() {
        let k = key(4);
        let reseal = |mut b: [u8; 64]| {
            let tag = k.tag(&b[..OFF_MAC]).finalize().into_bytes();
            b[OFF_MAC..].copy_from_slice(&tag[..MAC_LEN]);
            b
        };
        let base = licensed(3, 100, 50).to_bytes_with(Some(&k));
        type Edit = fn(&mut [u8; 64]);
        let cases: [(&str, Edit); 7] = [
            ("version 1", |b| b[OFF_VERSION] = 1),
            ("version 3", |b| b[OFF_VERSION] = 3),
            ("unknown flag", |b| b[OFF_FLAGS] |= 0x80),
            ("licensed and recovery", |b| b[OFF_FLAGS] |= FLAG_RECOVERY),
            ("reserved byte", |b| b[OFF_RESERVED + 1] = 1),
            ("renewal after last seen", |b| {
                b[OFF_RENEWAL_OR_FLOOR + 7] = 200;
            }),
            ("sequence without license", |b| b[OFF_FLAGS] = FLAG_SEEN),
        ];
        assert!(State::from_bytes_with(&reseal(base), Some(&k)).is_ok());
        for (name, edit) in cases {
            let mut b = base;
            edit(&mut b);
            assert_eq!(
                State::from_bytes_with(&reseal(b), Some(&k)),
                Err(Error::StateCorrupt),
                "{name}"
            );
        }
        // A recovery record whose floor is after its last seen time.
        let mut r = State::recovery(100).to_bytes_with(Some(&k));
        r[OFF_RENEWAL_OR_FLOOR + 7] = 101;
        assert_eq!(
            State::from_bytes_with(&reseal(r), Some(&k)),
            Err(Error::StateCorrupt)
        );
    }

    #[test]
    fn clock_check_uses_tolerance_and_ignores_a_fresh_state() {
        let s = licensed(1, 1000, 1000);
        assert_eq!(s.check_clock(1000 - 86_400, 86_400), Ok(()));
        assert_eq!(
            s.check_clock(1000 - 86_401, 86_400),
            Err(Error::ClockRollback)
        );
        assert_eq!(State::new().check_clock(i64::MIN, 0), Ok(()));
        assert_eq!(s.check_clock(i64::MIN, u32::MAX), Err(Error::ClockRollback));
    }

    #[test]
    fn a_state_belongs_to_one_serial() {
        let s = licensed(1, 0, 0);
        assert_eq!(s.check_serial("SW-1"), Ok(()));
        assert_eq!(s.check_serial("SW-2"), Err(Error::WrongSerial));
        assert_eq!(State::new().check_serial("SW-2"), Ok(()));
        assert_eq!(State::recovery(0).check_serial("SW-2"), Ok(()));
    }

    mod properties {
        extern crate std;

        use super::*;
        use proptest::prelude::*;

        fn state() -> impl Strategy<Value = State> {
            (
                0u8..4,
                any::<u32>(),
                any::<[u8; 8]>(),
                any::<[u8; 16]>(),
                any::<i64>(),
                any::<i64>(),
            )
                .prop_map(|(kind, seq, serial, id, t1, t2)| {
                    let (lo, hi) = (t1.min(t2), t1.max(t2));
                    match kind {
                        0 => State::new(),
                        1 => State::recovery(hi),
                        2 => State {
                            flags: FLAG_SEEN,
                            last_seen: hi,
                            ..State::new()
                        },
                        _ => State {
                            flags: FLAG_LICENSED | FLAG_SEEN,
                            sequence: seq,
                            serial,
                            license_id: id,
                            last_seen: hi,
                            last_renewal: lo,
                            recovery_floor: 0,
                        },
                    }
                })
        }

        proptest! {
            #[test]
            fn encode_decode_round_trips(s in state()) {
                prop_assert_eq!(State::from_bytes(&s.to_bytes()), Ok(s));
            }

            #[test]
            fn any_single_bit_corruption_is_detected(s in state(), bit in 0usize..State::LEN * 8) {
                let mut b = s.to_bytes();
                b[bit / 8] ^= 1 << (bit % 8);
                prop_assert_eq!(State::from_bytes(&b), Err(Error::StateCorrupt));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
                let _ = State::from_bytes(&bytes);
                let _ = State::from_bytes_with(&bytes, Some(&StateKey::from_bytes([7; 32])));
            }

            #[test]
            fn keyed_encode_decode_round_trips(s in state(), secret in any::<[u8; 32]>()) {
                let k = StateKey::derive(&secret, b"p");
                prop_assert_eq!(State::from_bytes_with(&s.to_bytes_with(Some(&k)), Some(&k)), Ok(s));
            }

            #[test]
            fn any_single_bit_corruption_of_a_keyed_record_is_detected(s in state(), bit in 0usize..State::LEN * 8) {
                let k = StateKey::from_bytes([9; 32]);
                let mut b = s.to_bytes_with(Some(&k));
                b[bit / 8] ^= 1 << (bit % 8);
                prop_assert_eq!(State::from_bytes_with(&b, Some(&k)), Err(Error::StateCorrupt));
            }
        }
    }
}
