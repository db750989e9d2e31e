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

use sha2::{Digest, Sha256};

use crate::claims::ID_LEN;
use crate::time::{days_between, Verdict};
use crate::{Error, License};

/// Length of the serial digest kept in the state.
pub const SERIAL_DIGEST_LEN: usize = 8;

/// Domain tag of the serial digest.
const SERIAL_TAG: &[u8] = b"tessera-state-serial-v1\0";
/// Domain tag of the record checksum.
const CHECKSUM_TAG: &[u8] = b"tessera-state-v1\0";

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
    /// Version of the encoding written by [`State::to_bytes`].
    pub const VERSION: u8 = 1;

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

    /// The encoded record (`spec/RUNTIME.md` §6.1): big-endian fields and
    /// an 8-byte checksum.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        put(&mut out, OFF_VERSION, &[Self::VERSION]);
        put(&mut out, OFF_FLAGS, &[self.flags]);
        put(&mut out, OFF_SEQUENCE, &self.sequence.to_be_bytes());
        put(&mut out, OFF_SERIAL, &self.serial);
        put(&mut out, OFF_ID, &self.license_id);
        put(&mut out, OFF_LAST_SEEN, &self.last_seen.to_be_bytes());
        put(&mut out, OFF_LAST_RENEWAL, &self.last_renewal.to_be_bytes());
        put(&mut out, OFF_FLOOR, &self.recovery_floor.to_be_bytes());
        let sum = checksum(out.get(..OFF_CHECKSUM).unwrap_or_default());
        put(&mut out, OFF_CHECKSUM, &sum);
        out
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
        if field::<1>(bytes, OFF_VERSION)? != [Self::VERSION]
            || field::<2>(bytes, OFF_RESERVED)? != [0, 0]
        {
            return Err(Error::StateCorrupt);
        }
        let [flags] = field::<1>(bytes, OFF_FLAGS)?;
        let s = Self {
            flags,
            sequence: u32::from_be_bytes(field(bytes, OFF_SEQUENCE)?),
            serial: field(bytes, OFF_SERIAL)?,
            license_id: field(bytes, OFF_ID)?,
            last_seen: i64::from_be_bytes(field(bytes, OFF_LAST_SEEN)?),
            last_renewal: i64::from_be_bytes(field(bytes, OFF_LAST_RENEWAL)?),
            recovery_floor: i64::from_be_bytes(field(bytes, OFF_FLOOR)?),
        };
        if s.is_canonical() {
            Ok(s)
        } else {
            Err(Error::StateCorrupt)
        }
    }

    /// Loads the newer intact one of two copies (A/B slots written
    /// alternately, `spec/RUNTIME.md` §6.5): a write torn by a power cut
    /// leaves the previous state, which is what the device last stored.
    ///
    /// # Errors
    /// [`Error::StateCorrupt`] when neither copy is intact.
    pub fn from_redundant(a: &[u8], b: &[u8]) -> Result<Self, Error> {
        match (Self::from_bytes(a), Self::from_bytes(b)) {
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
            }
        }
    }
}
