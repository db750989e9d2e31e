//! Ledger checkpoints (`spec/FORMAT.md` §10): the vendor's signature over
//! the head of its issuance ledger.
//!
//! The issuer's ledger is an append-only journal chained by hash. After
//! every committed transaction the vendor key signs {ledger id, entry
//! count, head hash}; a checkpoint kept away from the ledger's machine
//! proves what the ledger held at that moment, so a ledger cut off at its
//! end, or rewritten after the checkpoint, is detected. A checkpoint is a
//! COSE_Sign1 of its own type (`tessera-checkpoint`), so it can never be
//! taken for a license or a request (§3.2).
//!
//! Decoding works without allocation, like every other object of the
//! format; the encoder is in [`crate::encode`] (feature `alloc`).

use crate::cbor::{Reader, MAX_DEPTH};
use crate::claims::{claims_map, private_head, Standard};
use crate::keyring::KeyId;
use crate::Malformed;

/// Length of a ledger id.
pub const LEDGER_ID_LEN: usize = 16;
/// Length of a head hash (SHA-256).
pub const HEAD_LEN: usize = 32;

/// Keys of the checkpoint private claim map (§10.2).
pub mod key {
    /// Format version.
    pub const VERSION: i64 = 0;
    /// Critical keys.
    pub const CRIT: i64 = 1;
    /// Ledger id.
    pub const LEDGER: i64 = 2;
    /// Number of journal entries covered.
    pub const ENTRIES: i64 = 3;
    /// Hash of the last covered entry.
    pub const HEAD: i64 = 4;
    /// Entries covered by the checkpoint this one follows.
    pub const PREVIOUS: i64 = 5;
    /// Highest key this version understands.
    pub const LAST: i64 = PREVIOUS;
}

/// A decoded checkpoint (§10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    pub(crate) kid: KeyId,
    pub(crate) issuer: &'a str,
    pub(crate) issued_at: i64,
    pub(crate) ledger_id: [u8; LEDGER_ID_LEN],
    pub(crate) entries: u64,
    pub(crate) head: [u8; HEAD_LEN],
    pub(crate) previous: Option<u64>,
}

impl<'a> Checkpoint<'a> {
    /// Key id of the vendor key that signed it.
    #[must_use]
    pub fn kid(&self) -> KeyId {
        self.kid
    }
    /// Vendor id (`iss`).
    #[must_use]
    pub fn issuer(&self) -> &'a str {
        self.issuer
    }
    /// When it was signed (`iat`).
    #[must_use]
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }
    /// The ledger it speaks for.
    #[must_use]
    pub fn ledger_id(&self) -> [u8; LEDGER_ID_LEN] {
        self.ledger_id
    }
    /// How many journal entries the ledger held (at least 1).
    #[must_use]
    pub fn entries(&self) -> u64 {
        self.entries
    }
    /// Hash of the last of those entries.
    #[must_use]
    pub fn head(&self) -> [u8; HEAD_LEN] {
        self.head
    }
    /// The entries the ledger's checkpoint before this one covered (the
    /// checkpoint this one follows, §10.2); `None` for a ledger's first
    /// checkpoint, and in checkpoints of issuers that did not chain them.
    #[must_use]
    pub fn previous(&self) -> Option<u64> {
        self.previous
    }
}

/// Decodes a checkpoint payload (§10.2). `kid` comes from the protected
/// header.
pub(crate) fn parse_checkpoint(payload: &[u8], kid: KeyId) -> Result<Checkpoint<'_>, Malformed> {
    let mut private = None;
    let std = claims_map(payload, |r| {
        private = Some(private_checkpoint(r)?);
        Ok(())
    })?;
    let (ledger_id, entries, head, previous) = private.ok_or(Malformed::MissingField)?;
    let Standard {
        iss,
        sub,
        exp,
        nbf,
        iat,
        cti,
    } = std;
    // A checkpoint names no device and expires never: claims that would
    // give it a meaning it does not have are refused, not skipped.
    if sub.is_some() || exp.is_some() || nbf.is_some() || cti.is_some() {
        return Err(Malformed::BadValue);
    }
    match (iss, iat) {
        (Some(issuer), Some(issued_at)) => Ok(Checkpoint {
            kid,
            issuer,
            issued_at,
            ledger_id,
            entries,
            head,
            previous,
        }),
        _ => Err(Malformed::MissingField),
    }
}

type Private = ([u8; LEDGER_ID_LEN], u64, [u8; HEAD_LEN], Option<u64>);

fn private_checkpoint(r: &mut Reader<'_>) -> Result<Private, Malformed> {
    let (left, mut keys, mut pending) = private_head(r, key::LAST)?;
    let (mut ledger, mut entries, mut head, mut previous) = (None, None, None, None);
    for _ in 0..left.saturating_add(usize::from(pending.is_some())) {
        let k = match pending.take() {
            Some(k) => k,
            None => r.key(&mut keys)?,
        };
        match k {
            key::LEDGER => ledger = Some(r.bstr_array()?),
            key::ENTRIES => entries = Some(r.uint()?),
            key::HEAD => head = Some(r.bstr_array()?),
            key::PREVIOUS => previous = Some(r.uint()?),
            k if k > key::LAST => r.skip(MAX_DEPTH)?,
            _ => return Err(Malformed::BadValue),
        }
    }
    match (ledger, entries, head) {
        // A ledger is created with its first entry: no checkpoint covers
        // an empty one.
        (Some(_), Some(0), Some(_)) => Err(Malformed::BadValue),
        // The checkpoint before this one covered fewer entries, and at
        // least the first.
        (Some(_), Some(n), Some(_)) if previous.is_some_and(|p| p == 0 || p >= n) => {
            Err(Malformed::BadValue)
        }
        (Some(l), Some(n), Some(h)) => Ok((l, n, h, previous)),
        _ => Err(Malformed::MissingField),
    }
}
