//! The journal: the ledger's one append-only list of facts, chained by
//! hash. Everything that decides a future issuance is a fact here; the
//! query tables are views folded from it ([`super::views`]).
//!
//! This module is the journal's definition, independent of any database:
//! the entry and its kinds ([`Entry`], [`Fact`]), their encoding (CBOR,
//! [`Entry::encode`] / [`Entry::decode`]) and the chain hash
//! ([`entry_hash`]). A backend stores `(position, body, hash)` triples and
//! never looks inside a body.
//!
//! Entry hash = SHA-256(`"tessera-journal-v1\0"` ‖ previous hash ‖
//! position (u64 BE) ‖ body length (u64 BE) ‖ body); entry 1's previous
//! hash is 32 zero bytes. The body is the entry's CBOR exactly as stored,
//! so the hash never depends on how a decoder would re-encode it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain tag of entry hashes.
pub const HASH_TAG: &[u8] = b"tessera-journal-v1\0";
/// The journal format this tessera writes (in the genesis entry).
pub const JOURNAL_FORMAT: u32 = 1;
/// Largest entry body accepted (a license is at most 4 KiB, its order a
/// few KiB more).
pub const MAX_BODY: usize = 256 * 1024;

/// What an issued license was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// First license of a serial.
    Issue,
    /// A change of the license in force.
    Change,
    /// A renewal (same content, new lease).
    Renew,
    /// A replacement (new binding: RMA or migration).
    Replace,
    /// A void: supersedes a license issued in error.
    Void,
    /// Sharing: a client license, or a server's license with the server
    /// role.
    Share,
}

impl Action {
    /// The name stored in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Change => "change",
            Self::Renew => "renew",
            Self::Replace => "replace",
            Self::Void => "void",
            Self::Share => "share",
        }
    }

    /// The action of a stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "issue" => Self::Issue,
            "change" => Self::Change,
            "renew" => Self::Renew,
            "replace" => Self::Replace,
            "void" => Self::Void,
            "share" => Self::Share,
            _ => return None,
        })
    }
}

/// One journal entry: a fact, who recorded it and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When (Unix seconds): the issue time of a license, the time of the
    /// command for the other facts.
    pub at: i64,
    /// Who (the operator of the command).
    pub operator: String,
    /// What.
    pub fact: Fact,
}

/// The kinds of fact the journal holds. New kinds are added at the end;
/// a tessera that meets a kind it does not know refuses the ledger rather
/// than skip a fact that may decide an issuance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Fact {
    /// The ledger's identity; always entry 1, never again.
    Genesis {
        /// Random id, named by every checkpoint.
        #[serde(with = "bytes")]
        ledger_id: [u8; 16],
        /// The vendor id (`iss`) of every license in this ledger.
        vendor: String,
        /// The journal format ([`JOURNAL_FORMAT`]).
        journal_format: u32,
    },
    /// A SW serial allocated by the ledger (`SW-YYYY-NNNNNN`, the year's
    /// counter moves to NNNNNN).
    SerialAllocated {
        /// The serial.
        serial: String,
    },
    /// A HW serial (normalized) converted to a SW serial: on the first
    /// activation of an appliance (the SW serial allocated by this entry,
    /// as [`Fact::SerialAllocated`] does), or when a replacement brings a
    /// new one to an existing serial.
    HwSerialConverted {
        /// The HW serial.
        hw_serial: String,
        /// The SW serial.
        serial: String,
        /// The SW serial is allocated by this conversion (a first
        /// activation), not an existing one.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        allocated: bool,
    },
    /// A signed license (its serial, sequence, id, times, customer ... are
    /// read from the bytes).
    License {
        /// What it was.
        action: Action,
        /// The COSE_Sign1.
        #[serde(with = "bytes")]
        bytes: Vec<u8>,
        /// The order it was issued for (JSON).
        order: String,
        /// Idempotency key of a bulk row.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idem_key: Option<String>,
        /// Device key of the request it answered.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
        request_key: Option<[u8; 32]>,
    },
    /// Stop and deletion scheduled after a decrease to zero users.
    ScheduleSet {
        /// The serial.
        serial: String,
        /// Stop time.
        stop_at: i64,
        /// Deletion time.
        delete_at: i64,
    },
    /// The pending schedule cancelled (a user license added back).
    ScheduleCancelled {
        /// The serial.
        serial: String,
    },
    /// The binding of a license superseded by a replacement (RMA,
    /// migration): never renewed again.
    BindingReplaced {
        /// The serial.
        serial: String,
        /// The last license of the replaced binding.
        sequence: u32,
        /// The replacing license.
        replaced_by: u32,
        /// Device keys (hex) of the requests the replaced binding answered.
        device_keys: Vec<String>,
        /// `rma` or `migrate`.
        reason: String,
    },
    /// What a lifecycle command decided next to the license it issued: an
    /// approval, the reason of a replacement or void, the two sides of a
    /// sharing, a decommission.
    Event {
        /// The serial.
        serial: String,
        /// The sequence of the license it belongs to.
        sequence: u32,
        /// `change`, `decommission`, `replace`, `void` or `share`.
        event: String,
        /// What it was about (a JSON object, as text).
        detail: String,
    },
    /// The ledger continues one of an earlier tessera (before the journal;
    /// `tessera ledger upgrade`): always entry 2, followed by that
    /// ledger's facts. Names the old ledger's hash chain, so the old file,
    /// kept as an archive, can be matched with this ledger.
    Upgraded {
        /// The old ledger's schema (1 or 2).
        schema: u32,
        /// Its number of license rows.
        rows: u64,
        /// The hash of its last row (its chain head).
        #[serde(with = "bytes")]
        head: [u8; 32],
    },
    /// A PBX entered in the registry (`tessera pbx add`, the first
    /// activation of an appliance, or a PBX of an earlier ledger taken in
    /// by its next command), with the policy it was given.
    PbxAdded {
        /// Its SW serial.
        serial: String,
        /// The serial is allocated by this entry (`pbx add`), as
        /// [`Fact::SerialAllocated`] does; otherwise it is in use already.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        allocated: bool,
        /// The customer.
        customer: String,
        /// The PBX's name.
        name: String,
        /// Its model.
        model: String,
        /// `hw`, `vm` or `cloud`.
        platform: String,
        /// `monthly`, `yearly`, `5y` or `lifetime`.
        cycle: String,
        /// Users of each profile (catalog names).
        profiles: std::collections::BTreeMap<String, u32>,
        /// Storage units (Cloud only).
        #[serde(default)]
        storage: u32,
        /// The policy's name.
        policy: String,
        /// The policy's values.
        values: crate::catalog::PolicyValues,
    },
    /// A change of a PBX's registry entry: its policy (with the approval
    /// that allowed it), its model or platform (a replacement), its name.
    PbxEdited {
        /// The serial.
        serial: String,
        /// What changed.
        change: PbxChange,
    },
    /// The quantities a charge-relevant event bills, in the catalog's
    /// units, next to the license that granted them.
    Charges {
        /// The serial.
        serial: String,
        /// The license they belong to.
        sequence: u32,
        /// One line per item.
        lines: Vec<Charge>,
    },
    /// The overdue notice of a day claimed for one recipient, recorded
    /// before the mail is handed to the SMTP server: at most one notice
    /// per recipient and day is in effect (`crate::notify`).
    NoticeSent {
        /// The recipient's address.
        recipient: String,
        /// The day (UTC, `YYYY-MM-DD`).
        day: String,
        /// The overdue PBXs the notice lists.
        serials: Vec<String>,
    },
    /// A claimed notice that the SMTP server refused: the day's notice
    /// for that recipient is free again.
    NoticeWithdrawn {
        /// The recipient's address.
        recipient: String,
        /// The day (UTC, `YYYY-MM-DD`).
        day: String,
        /// What the SMTP server answered.
        reason: String,
    },
    /// Online activation opened for a PBX of the registry (`tessera pbx
    /// activation`): the one-time code it may be activated with, as its
    /// digest only ([`tessera_verifier::activation::ActivationCode::digest`]).
    /// A later one replaces it; the first license of the PBX after it uses
    /// it up.
    ActivationOpened {
        /// The serial.
        serial: String,
        /// The code's digest.
        #[serde(with = "bytes")]
        code_digest: [u8; 32],
        /// The code works until then (Unix seconds).
        valid_until: i64,
    },
}

/// What a [`Fact::PbxEdited`] changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbxChange {
    /// New customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// New platform (a migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// New policy name (with `values` and `approval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The new policy's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<crate::catalog::PolicyValues>,
    /// The approval reference of a policy change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// One billed quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// `activation`, `increase`, `service`, `renewal` or `storage`.
    pub kind: String,
    /// The item: `profile:NAME`, `base:NAME`, `service:NAME`, `storage`.
    pub item: String,
    /// How many (users, units).
    pub quantity: u32,
    /// The payment cycle the quantity is billed on.
    pub cycle: String,
    /// Start of the billed period (Unix seconds).
    pub period_start: i64,
    /// End of the billed period (`None`: lifetime).
    pub period_end: Option<i64>,
    /// Days billed (the proration's numerator).
    pub days: u32,
    /// Days of the full period (its denominator; equal to `days` for a
    /// whole period).
    pub period_days: u32,
}

impl Fact {
    /// The kind's name, as written in the journal.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Genesis { .. } => "genesis",
            Self::SerialAllocated { .. } => "serial_allocated",
            Self::HwSerialConverted { .. } => "hw_serial_converted",
            Self::License { .. } => "license",
            Self::ScheduleSet { .. } => "schedule_set",
            Self::ScheduleCancelled { .. } => "schedule_cancelled",
            Self::BindingReplaced { .. } => "binding_replaced",
            Self::Event { .. } => "event",
            Self::Upgraded { .. } => "upgraded",
            Self::PbxAdded { .. } => "pbx_added",
            Self::PbxEdited { .. } => "pbx_edited",
            Self::Charges { .. } => "charges",
            Self::NoticeSent { .. } => "notice_sent",
            Self::NoticeWithdrawn { .. } => "notice_withdrawn",
            Self::ActivationOpened { .. } => "activation_opened",
        }
    }
}

/// Why an entry body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadEntry(pub String);

impl Entry {
    /// The body stored in the journal (CBOR).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// [`Entry::encode`] appended to `out`, so that a writer can reuse one
    /// buffer for all its entries.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Plain data into a vector: serialization cannot fail.
        let _ = ciborium::into_writer(self, out);
    }

    /// Reads a stored body: exactly one entry, nothing after it, at most
    /// [`MAX_BODY`] bytes.
    ///
    /// # Errors
    /// [`BadEntry`] saying what is wrong.
    pub fn decode(body: &[u8]) -> Result<Self, BadEntry> {
        if body.len() > MAX_BODY {
            return Err(BadEntry(format!(
                "its body is {} bytes, more than an entry can be",
                body.len()
            )));
        }
        let mut rest = body;
        let entry: Self = ciborium::from_reader(&mut rest)
            .map_err(|e| BadEntry(format!("its body does not decode ({e})")))?;
        if !rest.is_empty() {
            return Err(BadEntry(format!(
                "its body has {} bytes after the entry",
                rest.len()
            )));
        }
        Ok(entry)
    }
}

/// The hash of the entry at `position` (from 1) with stored `body`, after
/// the entry whose hash is `prev` (32 zero bytes before entry 1).
#[must_use]
pub fn entry_hash(prev: &[u8; 32], position: u64, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_TAG);
    h.update(prev);
    h.update(position.to_be_bytes());
    h.update((body.len() as u64).to_be_bytes());
    h.update(body);
    h.finalize().into()
}

/// Byte strings as CBOR byte strings (not arrays of integers).
mod bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) trait FromBytes: Sized {
        fn from_bytes(v: &[u8]) -> Option<Self>;
    }

    impl FromBytes for Vec<u8> {
        fn from_bytes(v: &[u8]) -> Option<Self> {
            Some(v.to_vec())
        }
    }

    impl<const N: usize> FromBytes for [u8; N] {
        fn from_bytes(v: &[u8]) -> Option<Self> {
            v.try_into().ok()
        }
    }

    pub(super) fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref())
    }

    pub(super) struct BytesVisitor<T>(core::marker::PhantomData<T>);

    impl<T: FromBytes> Visitor<'_> for BytesVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a byte string of the right length")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<T, E> {
            T::from_bytes(v).ok_or_else(|| E::invalid_length(v.len(), &self))
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: FromBytes>(
        d: D,
    ) -> Result<T, D::Error> {
        d.deserialize_bytes(BytesVisitor(core::marker::PhantomData))
    }
}

/// An optional byte string of fixed length.
mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::bytes")] [u8; 32]);

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
