//! The vendor's keyring: the public keys firmware trusts, with validity
//! windows, retirement, and which key currently signs.
//!
//! Kept as a TOML file in version control (format in `keys/README.md`):
//!
//! ```toml
//! format = 1
//! active_kid = "6a3803d5f059902a"
//!
//! [[key]]
//! kid = "6a3803d5f059902a"
//! label = "2025 signing key"
//! public_key = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
//! valid_from = 2025-01-01T00:00:00Z
//! retired = false
//! ```
//!
//! Rules, each checked on [`Keyring::load`] and by the operation that could
//! break it: a kid matches its public key; no kid appears twice; at most one
//! key is the active signing key (`active_kid`), and it is not retired; the
//! active key cannot be retired (switch first with [`Keyring::set_active`]);
//! a window does not end before it starts. Windows of different keys may
//! overlap: that is how a rotation works.
//!
//! A switch may be scheduled (`[[activation]]`, [`Keyring::schedule`]): from
//! its time on, [`Keyring::active_at`] is the scheduled key, so issuing
//! moves to the new key by itself and never halts. A key is made active
//! only at a time its window covers ([`Keyring::activate`]), and a switch is
//! scheduled only if the key active until then is valid up to it.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use tessera_verifier::keyring::{key_id, KEY_ID_LEN};
use tessera_verifier::text::shown;
use tessera_verifier::{KeyEntry, KeyId};

use crate::{storage, KeyError, Signer};

/// The version of the keyring file format this crate reads and writes.
pub const KEYRING_FORMAT: u32 = 1;

/// One public key of the keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key id: `tessera_verifier::keyring::key_id(&public_key)`.
    pub kid: KeyId,
    /// A name for people ("2025 signing key, HSM slot 1").
    pub label: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: [u8; 32],
    /// First instant at which licenses issued (`iat`) under this key are
    /// accepted; stored to the second.
    pub valid_from: DateTime<Utc>,
    /// Last instant of that window; `None` is open-ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// A retired key verifies nothing (firmware answers `RetiredKey`).
    pub retired: bool,
}

impl KeyRecord {
    /// A record for `public_key` with its derived kid, valid from
    /// `valid_from` with no end, not retired.
    #[must_use]
    pub fn new(public_key: [u8; 32], label: impl Into<String>, valid_from: DateTime<Utc>) -> Self {
        Self {
            kid: key_id(&public_key),
            label: label.into(),
            public_key,
            valid_from: whole_seconds(valid_from),
            valid_until: None,
            retired: false,
        }
    }

    /// The same record with its window ending at `valid_until`.
    #[must_use]
    pub fn with_valid_until(mut self, valid_until: DateTime<Utc>) -> Self {
        self.valid_until = Some(whole_seconds(valid_until));
        self
    }

    /// The kid as 16 lowercase hex digits.
    #[must_use]
    pub fn kid_hex(&self) -> String {
        hex::encode(self.kid)
    }

    /// Whether the validity window contains `at` (retirement aside).
    #[must_use]
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        at >= self.valid_from && self.valid_until.is_none_or(|until| at <= until)
    }

    /// The firmware keyring entry (times as Unix seconds).
    #[must_use]
    pub fn to_entry(&self) -> KeyEntry {
        KeyEntry {
            kid: self.kid,
            public_key: self.public_key,
            valid_from: self.valid_from.timestamp(),
            valid_until: self.valid_until.map(|t| t.timestamp()),
            retired: self.retired,
        }
    }

    fn validate(&self) -> Result<(), KeyError> {
        let expected = key_id(&self.public_key);
        if self.kid != expected {
            return Err(KeyError::KidMismatch {
                kid: self.kid,
                expected,
            });
        }
        match VerifyingKey::from_bytes(&self.public_key) {
            Ok(key) if !key.is_weak() => {}
            _ => return Err(KeyError::WeakPublicKey { kid: self.kid }),
        }
        if let Some(until) = self.valid_until {
            if until < self.valid_from {
                return Err(KeyError::InvalidWindow {
                    kid: self.kid,
                    valid_from: rfc3339(self.valid_from),
                    valid_until: rfc3339(until),
                });
            }
        }
        Ok(())
    }
}

/// A scheduled switch of the active signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activation {
    /// The key that becomes active.
    pub kid: KeyId,
    /// When (stored to the second).
    pub at: DateTime<Utc>,
}

/// The set of public keys firmware trusts, and which one signs.
///
/// A keyring belongs to one issuer (the vendor's signing service) and names
/// at most one active signing key at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<KeyRecord>,
    active: Option<KeyId>,
    /// Scheduled switches, in time order.
    scheduled: Vec<Activation>,
}

/// The largest keyring file read (a keyring of thousands of keys is far
/// smaller).
pub const MAX_KEYRING: u64 = 1024 * 1024;

impl Keyring {
    /// An empty keyring.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and checks a keyring file.
    ///
    /// # Errors
    /// [`KeyError::NotFound`], [`KeyError::Io`], [`KeyError::KeyringSyntax`]
    /// (TOML, field types, format version), and every rule's error:
    /// [`KeyError::KidMismatch`], [`KeyError::DuplicateKid`],
    /// [`KeyError::WeakPublicKey`], [`KeyError::InvalidWindow`],
    /// [`KeyError::UnknownKid`] / [`KeyError::ActivateRetired`] for
    /// `active_kid`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        // `-` is standard input (a keyring only read: verify, inspect).
        let bytes = storage::read_regular(path, MAX_KEYRING)
            .map_err(|e| storage::open_error_of(path, crate::FileKind::Keyring, e))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_KEYRING {
            return Err(KeyError::KeyringSyntax {
                file: path.to_owned(),
                reason: format!(
                    "larger than {MAX_KEYRING} bytes, so not a keyring; check the path"
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| KeyError::KeyringSyntax {
            file: path.to_owned(),
            reason: "not UTF-8 text, so not a keyring (a keyring is TOML: `tessera keyring list` reads one; a firmware export such as keyring.cbor is not)".into(),
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses and checks keyring TOML; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Keyring::load`].
    pub fn from_toml(file: &Path, text: &str) -> Result<Self, KeyError> {
        let syntax = |reason: String| KeyError::KeyringSyntax {
            file: file.to_owned(),
            reason,
        };
        // The line and TOML's own words, never the line itself: a file
        // given as a keyring by mistake may hold secrets.
        let parsed: KeyringFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| {
                text.get(..s.start)
                    .map_or(1, |before| before.matches('\n').count() + 1)
            });
            syntax(format!("line {line}: {}", parser_message(e.message())))
        })?;
        if parsed.format != KEYRING_FORMAT {
            return Err(syntax(format!(
                "format {} is not {KEYRING_FORMAT}, the only one this version understands (a newer tessera wrote it?)",
                parsed.format
            )));
        }
        let mut ring = Self::new();
        for key in parsed.key {
            let record = key.into_record(file)?;
            // Two entries of one key in the file: not an addition refused.
            if ring.get(&record.kid).is_some() {
                return Err(KeyError::DuplicateKid { kid: record.kid });
            }
            ring.add(record)?;
        }
        if let Some(active) = parsed.active_kid {
            ring.set_active(&file_kid(file, "active_kid", &active)?)?;
        }
        for a in parsed.activation {
            let kid = file_kid(file, "[[activation]] kid", &a.kid)?;
            if ring.get_mut(&kid)?.retired {
                return Err(KeyError::ActivateRetired { kid });
            }
            let at = toml_datetime(&a.at).ok_or_else(|| {
                syntax(format!(
                    "activation of {}: at = {} must be a date and time with an offset, e.g. 2027-01-01T00:00:00Z",
                    hex::encode(kid), a.at
                ))
            })?;
            ring.insert_scheduled(Activation { kid, at });
        }
        Ok(ring)
    }

    /// The keyring as TOML, in the form [`Keyring::from_toml`] reads.
    ///
    /// # Errors
    /// [`KeyError::Encoding`], which does not happen in practice.
    pub fn to_toml(&self) -> Result<String, KeyError> {
        let encoding = |reason: String| KeyError::Encoding {
            what: "keyring TOML",
            reason,
        };
        let file = KeyringFile {
            format: KEYRING_FORMAT,
            active_kid: self.active.map(hex::encode),
            activation: self
                .scheduled
                .iter()
                .map(|a| {
                    Ok(ActivationToml {
                        kid: hex::encode(a.kid),
                        at: toml_time(a.at).map_err(encoding)?,
                    })
                })
                .collect::<Result<_, KeyError>>()?,
            key: self
                .keys
                .iter()
                .map(|k| {
                    Ok(KeyToml {
                        kid: k.kid_hex(),
                        label: k.label.clone(),
                        public_key: hex::encode(k.public_key),
                        valid_from: toml_time(k.valid_from).map_err(encoding)?,
                        valid_until: k.valid_until.map(toml_time).transpose().map_err(encoding)?,
                        retired: k.retired,
                    })
                })
                .collect::<Result<_, KeyError>>()?,
        };
        let body = toml::to_string(&file).map_err(|e| encoding(e.to_string()))?;
        Ok(format!(
            "# tessera keyring: the public keys firmware trusts (see keys/README.md).\n\
             # Change it with `tessera keyring ...`; export it for firmware with `tessera keyring export`.\n\n{body}"
        ))
    }

    /// Saves the keyring atomically (temporary file in the same folder,
    /// fsync, rename): a crash leaves the old or the new keyring, never a
    /// mix.
    ///
    /// # Errors
    /// [`KeyError::Io`], [`KeyError::Encoding`].
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        storage::write_atomic(path, self.to_toml()?.as_bytes(), storage::PUBLIC_MODE)
    }

    /// Adds a key (times are stored to the second).
    ///
    /// # Errors
    /// [`KeyError::KidMismatch`], [`KeyError::AlreadyInKeyring`] (naming
    /// how to change the entry already there),
    /// [`KeyError::WeakPublicKey`], [`KeyError::InvalidWindow`].
    pub fn add(&mut self, mut record: KeyRecord) -> Result<&KeyRecord, KeyError> {
        record.valid_from = whole_seconds(record.valid_from);
        record.valid_until = record.valid_until.map(whole_seconds);
        record.validate()?;
        if let Some(there) = self.get(&record.kid) {
            return Err(KeyError::AlreadyInKeyring {
                kid: record.kid,
                valid_from: rfc3339(there.valid_from),
            });
        }
        let index = self.keys.len();
        self.keys.push(record);
        Ok(&self.keys[index])
    }

    /// Retires a key: from the next firmware export on it verifies nothing.
    /// Retiring is final; retiring a retired key changes nothing.
    ///
    /// # Errors
    /// [`KeyError::UnknownKid`], [`KeyError::RetireActive`] when it is the
    /// active signing key (switch with [`Keyring::set_active`] first).
    pub fn retire(&mut self, kid: &KeyId) -> Result<(), KeyError> {
        if self.active.as_ref() == Some(kid) {
            return Err(KeyError::RetireActive { kid: *kid });
        }
        if let Some(a) = self.scheduled.iter().find(|a| &a.kid == kid) {
            return Err(KeyError::RetireScheduled {
                kid: *kid,
                at: rfc3339(a.at),
            });
        }
        let record = self.get_mut(kid)?;
        record.retired = true;
        Ok(())
    }

    /// Makes `kid` the active signing key, replacing the previous one: the
    /// keyring has one active signing key at a time.
    ///
    /// # Errors
    /// [`KeyError::UnknownKid`], [`KeyError::ActivateRetired`].
    pub fn set_active(&mut self, kid: &KeyId) -> Result<(), KeyError> {
        if self.get_mut(kid)?.retired {
            return Err(KeyError::ActivateRetired { kid: *kid });
        }
        self.active = Some(*kid);
        Ok(())
    }

    /// All keys, in the order they were added.
    #[must_use]
    pub fn list(&self) -> &[KeyRecord] {
        &self.keys
    }

    /// The key with this kid.
    #[must_use]
    pub fn get(&self, kid: &KeyId) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| &k.kid == kid)
    }

    fn get_mut(&mut self, kid: &KeyId) -> Result<&mut KeyRecord, KeyError> {
        self.keys
            .iter_mut()
            .find(|k| &k.kid == kid)
            .ok_or(KeyError::UnknownKid { kid: *kid })
    }

    /// The active signing key, if one is set (scheduled switches aside:
    /// [`Keyring::active_at`] is the key that signs at a given time).
    #[must_use]
    pub fn active(&self) -> Option<&KeyRecord> {
        self.active.as_ref().and_then(|kid| self.get(kid))
    }

    /// The key that signs at `at`: the last switch scheduled at or before
    /// `at`, else the active key.
    #[must_use]
    pub fn active_at(&self, at: DateTime<Utc>) -> Option<&KeyRecord> {
        self.scheduled
            .iter()
            .rev()
            .find(|a| a.at <= at)
            .map(|a| a.kid)
            .or(self.active)
            .and_then(|kid| self.get(&kid))
    }

    /// The switches still to come after `now`, in time order.
    #[must_use]
    pub fn scheduled(&self) -> &[Activation] {
        &self.scheduled
    }

    /// Folds the switches scheduled at or before `now` into the active key
    /// (they have happened): the file then says which key is active now.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        if let Some(kid) = self.active_at(now).map(|r| r.kid) {
            self.active = Some(kid);
        }
        self.scheduled.retain(|a| a.at > now);
    }

    /// Makes `kid` the active signing key now, replacing the previous one:
    /// refused when its window does not cover `now` (a key not yet valid is
    /// scheduled instead, [`Keyring::schedule`], so issuing never halts).
    ///
    /// # Errors
    /// [`KeyError::UnknownKid`], [`KeyError::ActivateRetired`],
    /// [`KeyError::KeyNotYetValid`], [`KeyError::KeyNotValidAt`] (its
    /// window has ended).
    pub fn activate(&mut self, kid: &KeyId, now: DateTime<Utc>) -> Result<(), KeyError> {
        let record = self.get(kid).ok_or(KeyError::UnknownKid { kid: *kid })?;
        if record.retired {
            return Err(KeyError::ActivateRetired { kid: *kid });
        }
        if now < record.valid_from {
            return Err(KeyError::KeyNotYetValid {
                kid: *kid,
                valid_from: rfc3339(record.valid_from),
            });
        }
        if !record.covers(now) {
            return Err(KeyError::KeyNotValidAt {
                kid: *kid,
                at: rfc3339(now),
            });
        }
        self.settle(now);
        self.active = Some(*kid);
        Ok(())
    }

    /// Schedules `kid` to become the active signing key at `at` (after
    /// `now`), replacing a switch scheduled at the same time. Refused when
    /// its window does not cover `at`, or when the key active until then
    /// is not valid up to `at` (issuing would halt in between).
    ///
    /// # Errors
    /// [`KeyError::UnknownKid`], [`KeyError::ActivateRetired`],
    /// [`KeyError::KeyNotValidAt`], [`KeyError::ScheduleInPast`],
    /// [`KeyError::RotationGap`].
    pub fn schedule(
        &mut self,
        kid: &KeyId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let at = whole_seconds(at);
        let record = self.get(kid).ok_or(KeyError::UnknownKid { kid: *kid })?;
        if record.retired {
            return Err(KeyError::ActivateRetired { kid: *kid });
        }
        if at <= now {
            return Err(KeyError::ScheduleInPast {
                kid: *kid,
                at: rfc3339(at),
            });
        }
        if !record.covers(at) {
            return Err(KeyError::KeyNotValidAt {
                kid: *kid,
                at: rfc3339(at),
            });
        }
        let before = at - chrono::Duration::seconds(1);
        if let Some(current) = self.active_at(before) {
            if let Some(until) = current.valid_until.filter(|until| *until < before) {
                return Err(KeyError::RotationGap {
                    active: current.kid,
                    until: rfc3339(until),
                    kid: *kid,
                    at: rfc3339(at),
                });
            }
        }
        self.settle(now);
        self.scheduled.retain(|a| a.at != at);
        self.insert_scheduled(Activation { kid: *kid, at });
        Ok(())
    }

    fn insert_scheduled(&mut self, a: Activation) {
        let index = self.scheduled.partition_point(|b| b.at <= a.at);
        self.scheduled.insert(index, a);
    }

    /// Checks that `signer` may sign at `at`: it is the key active then
    /// ([`Keyring::active_at`]) and its window covers `at`. The issuer
    /// calls this before signing.
    ///
    /// # Errors
    /// [`KeyError::NoActiveKey`], [`KeyError::NotActiveSigner`],
    /// [`KeyError::KidMismatch`] (a signer whose kid does not match its
    /// public key), [`KeyError::KeyNotValidAt`].
    pub fn check_signer<S: Signer + ?Sized>(
        &self,
        signer: &S,
        at: DateTime<Utc>,
    ) -> Result<&KeyRecord, KeyError> {
        let active = self.active_at(at).ok_or(KeyError::NoActiveKey)?;
        let kid = signer.kid();
        if kid != active.kid {
            return Err(KeyError::NotActiveSigner {
                kid,
                active: active.kid,
            });
        }
        if signer.public_key() != active.public_key {
            return Err(KeyError::KidMismatch {
                kid,
                expected: key_id(&signer.public_key()),
            });
        }
        if !active.covers(at) {
            return Err(KeyError::KeyNotValidAt {
                kid,
                at: rfc3339(at),
            });
        }
        Ok(active)
    }

    /// The keyring as the verifier's entries, retired keys included (marked
    /// `retired`, so firmware reports `RetiredKey` rather than
    /// `UnknownKey`).
    #[must_use]
    pub fn to_entries(&self) -> Vec<KeyEntry> {
        self.keys.iter().map(KeyRecord::to_entry).collect()
    }
}

/// Parses a kid written as 16 hex digits (either case).
///
/// # Errors
/// [`KeyError::BadKid`].
pub fn parse_kid(text: &str) -> Result<KeyId, KeyError> {
    let mut kid = [0u8; KEY_ID_LEN];
    hex::decode_to_slice(text.trim(), &mut kid).map_err(|_| KeyError::BadKid {
        input: text.to_owned(),
    })?;
    Ok(kid)
}

/// TOML's message, with the value it may quote (`invalid type: string
/// "..."`, a whole key field) shown bounded and escaped; any other long
/// message is cut whole. TOML's own words are far shorter than the bound.
fn parser_message(message: &str) -> String {
    for head in ["invalid type: string ", "invalid value: string "] {
        if let Some((literal, expected)) = message
            .strip_prefix(head)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            // The literal as Rust's Debug writes it: its escapes are kept.
            let inner = literal
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .unwrap_or(literal);
            return format!("{head}\"{}\", expected {}", shown(inner), shown(expected));
        }
    }
    if message.len() > 400 {
        return shown(message);
    }
    message.to_owned()
}

/// Parses a kid read from the keyring `file` (`field` names where in it):
/// the error names the file and quotes the value bounded, as every value
/// read from a hand-edited file is.
fn file_kid(file: &Path, field: &str, text: &str) -> Result<KeyId, KeyError> {
    parse_kid(text).map_err(|_| KeyError::KeyringSyntax {
        file: file.to_owned(),
        reason: format!(
            "{field} = '{}' is not a key id (16 hex digits, as `tessera keyring list` shows)",
            shown(text)
        ),
    })
}

/// RFC 3339 in UTC, `Z`, whole seconds unless there are fractions.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// A TOML offset date-time as UTC (a local date or time is ambiguous).
fn toml_datetime(value: &toml::value::Datetime) -> Option<DateTime<Utc>> {
    match (value.date, value.time, value.offset) {
        (Some(_), Some(_), Some(_)) => DateTime::parse_from_rfc3339(&value.to_string())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

fn toml_time(t: DateTime<Utc>) -> Result<toml::value::Datetime, String> {
    rfc3339(t)
        .parse()
        .map_err(|e: toml::value::DatetimeParseError| e.to_string())
}

/// The file's shape; the rules are checked on conversion to [`Keyring`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_kid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    activation: Vec<ActivationToml>,
    #[serde(default)]
    key: Vec<KeyToml>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivationToml {
    kid: String,
    at: toml::value::Datetime,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    kid: String,
    label: String,
    public_key: String,
    valid_from: toml::value::Datetime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<toml::value::Datetime>,
    #[serde(default)]
    retired: bool,
}

impl KeyToml {
    fn into_record(self, file: &Path) -> Result<KeyRecord, KeyError> {
        let bad = |reason: String| KeyError::KeyringSyntax {
            file: file.to_owned(),
            reason,
        };
        let kid = file_kid(file, "[[key]] kid", &self.kid)?;
        let kid_hex = hex::encode(kid);
        let mut public_key = [0u8; 32];
        hex::decode_to_slice(&self.public_key, &mut public_key).map_err(|_| {
            bad(format!(
                "key {kid_hex}: public_key = '{}' must be 64 hex digits (the raw Ed25519 key)",
                shown(&self.public_key)
            ))
        })?;
        let time = |field: &str,
                    value: &toml::value::Datetime|
         -> Result<DateTime<Utc>, KeyError> {
            toml_datetime(value).ok_or_else(|| {
                bad(format!(
                    "key {kid_hex}: {field} = {value} must be a date and time with an offset, e.g. 2025-01-01T00:00:00Z"
                ))
            })
        };
        Ok(KeyRecord {
            kid,
            label: self.label.clone(),
            public_key,
            valid_from: time("valid_from", &self.valid_from)?,
            valid_until: self
                .valid_until
                .as_ref()
                .map(|v| time("valid_until", v))
                .transpose()?,
            retired: self.retired,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ed25519_dalek::SigningKey;

    use super::*;

    fn pk(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    fn t(year: i32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap()
    }

    fn ring() -> Keyring {
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(pk(1), "old", t(2024)).with_valid_until(t(2027)))
            .unwrap();
        ring.add(KeyRecord::new(pk(2), "new", t(2025))).unwrap();
        ring.set_active(&key_id(&pk(1))).unwrap();
        ring
    }

    fn file() -> &'static Path {
        Path::new("ring.toml")
    }

    #[test]
    fn kid_must_match_public_key() {
        let mut record = KeyRecord::new(pk(1), "x", t(2025));
        record.kid = key_id(&pk(2));
        let e = Keyring::new().add(record).unwrap_err();
        assert!(matches!(e, KeyError::KidMismatch { .. }), "{e:?}");
        // And in a file.
        let text =
            ring()
                .to_toml()
                .unwrap()
                .replacen(&hex::encode(key_id(&pk(2))), "0011223344556677", 1);
        let e = Keyring::from_toml(file(), &text).unwrap_err();
        assert!(matches!(e, KeyError::KidMismatch { .. }), "{e:?}");
    }

    #[test]
    fn no_duplicate_kid() {
        let mut ring = ring();
        let e = ring
            .add(KeyRecord::new(pk(2), "again", t(2026)))
            .unwrap_err();
        assert!(matches!(e, KeyError::AlreadyInKeyring { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("edit its `valid_from`"), "{text}");
        assert!(text.contains("valid from 2025-"), "{text}");
        assert_eq!(ring.list().len(), 2);
        let text = ring.to_toml().unwrap();
        let body = &text[text.find("[[key]]").unwrap()..];
        let e = Keyring::from_toml(file(), &format!("{text}\n{body}")).unwrap_err();
        assert!(matches!(e, KeyError::DuplicateKid { .. }), "{e:?}");
    }

    #[test]
    fn one_active_signing_key() {
        let mut ring = ring();
        assert_eq!(ring.active().unwrap().kid, key_id(&pk(1)));
        ring.set_active(&key_id(&pk(2))).unwrap();
        assert_eq!(ring.active().unwrap().kid, key_id(&pk(2)));
        // The file has one `active_kid`; a second one is a TOML error.
        let text = ring.to_toml().unwrap();
        let twice = text.replacen(
            "active_kid",
            &format!(
                "active_kid = \"{}\"\nactive_kid",
                hex::encode(key_id(&pk(1)))
            ),
            1,
        );
        let e = Keyring::from_toml(file(), &twice).unwrap_err();
        assert!(matches!(e, KeyError::KeyringSyntax { .. }), "{e:?}");
        // An active kid that names no key.
        let unknown = text.replace(
            &format!("active_kid = \"{}\"", hex::encode(key_id(&pk(2)))),
            "active_kid = \"0000000000000000\"",
        );
        let e = Keyring::from_toml(file(), &unknown).unwrap_err();
        assert!(matches!(e, KeyError::UnknownKid { .. }), "{e:?}");
        let e = ring.set_active(&[9; 8]).unwrap_err();
        assert!(matches!(e, KeyError::UnknownKid { .. }), "{e:?}");
    }

    #[test]
    fn active_key_cannot_be_retired_nor_retired_activated() {
        let mut ring = ring();
        let old = key_id(&pk(1));
        let new = key_id(&pk(2));
        let e = ring.retire(&old).unwrap_err();
        assert!(matches!(e, KeyError::RetireActive { .. }), "{e:?}");
        ring.set_active(&new).unwrap();
        ring.retire(&old).unwrap();
        ring.retire(&old).unwrap();
        assert!(ring.get(&old).unwrap().retired);
        let e = ring.set_active(&old).unwrap_err();
        assert!(matches!(e, KeyError::ActivateRetired { .. }), "{e:?}");
        // A file whose active key is retired is refused.
        let text = ring.to_toml().unwrap().replace(
            &format!("active_kid = \"{}\"", hex::encode(new)),
            &format!("active_kid = \"{}\"", hex::encode(old)),
        );
        let e = Keyring::from_toml(file(), &text).unwrap_err();
        assert!(matches!(e, KeyError::ActivateRetired { .. }), "{e:?}");
        assert!(matches!(
            ring.retire(&[3; 8]),
            Err(KeyError::UnknownKid { .. })
        ));
    }

    #[test]
    fn retired_keys_are_exported_as_retired() {
        let mut ring = ring();
        ring.set_active(&key_id(&pk(2))).unwrap();
        ring.retire(&key_id(&pk(1))).unwrap();
        let entries = ring.to_entries();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].retired);
        assert_eq!(
            tessera_verifier::keyring::find(&entries, &key_id(&pk(1)), t(2025).timestamp()),
            Err(tessera_verifier::Error::RetiredKey)
        );
    }

    #[test]
    fn overlapping_windows_are_allowed() {
        let ring = ring();
        let at = t(2026).timestamp();
        let entries = ring.to_entries();
        for seed in [1, 2] {
            assert!(tessera_verifier::keyring::find(&entries, &key_id(&pk(seed)), at).is_ok());
        }
    }

    #[test]
    fn window_must_not_end_before_start() {
        let record = KeyRecord::new(pk(3), "x", t(2026)).with_valid_until(t(2025));
        let e = Keyring::new().add(record).unwrap_err();
        assert!(matches!(e, KeyError::InvalidWindow { .. }), "{e:?}");
    }

    #[test]
    fn weak_public_key_is_refused() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let e = Keyring::new()
            .add(KeyRecord::new(identity, "weak", t(2025)))
            .unwrap_err();
        assert!(matches!(e, KeyError::WeakPublicKey { .. }), "{e:?}");
    }

    #[test]
    fn entries_use_unix_seconds() {
        let entries = ring().to_entries();
        assert_eq!(entries[0].valid_from, 1_704_067_200);
        assert_eq!(entries[0].valid_until, Some(1_798_761_600));
        assert_eq!(entries[1].valid_until, None);
        assert_eq!(entries[1].kid, key_id(&pk(2)));
        assert_eq!(entries[1].public_key, pk(2));
    }

    #[test]
    fn toml_round_trip_and_save() {
        let ring = ring();
        let text = ring.to_toml().unwrap();
        assert!(text.contains("valid_from = 2024-01-01T00:00:00Z"), "{text}");
        assert_eq!(Keyring::from_toml(file(), &text).unwrap(), ring);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.toml");
        ring.save(&path).unwrap();
        let mut changed = Keyring::load(&path).unwrap();
        assert_eq!(changed, ring);
        changed.set_active(&key_id(&pk(2))).unwrap();
        changed.save(&path).unwrap();
        assert_eq!(Keyring::load(&path).unwrap(), changed);
        // A missing keyring is named as one, with no advice to make a key.
        let e = Keyring::load(&dir.path().join("x.toml")).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::NotFound {
                    what: crate::FileKind::Keyring,
                    ..
                }
            ),
            "{e:?}"
        );
        let m = e.to_string();
        assert!(
            m.contains("no such keyring file") && !m.contains("signing key is created"),
            "{m}"
        );
        // A firmware export is not a keyring file.
        let cbor = dir.path().join("keyring.cbor");
        std::fs::write(&cbor, [0xa2, 0x01, 0xff, 0x00]).unwrap();
        let m = Keyring::load(&cbor).unwrap_err().to_string();
        assert!(m.contains("not UTF-8 text, so not a keyring"), "{m}");
    }

    /// The example in keys/README.md is a keyring this code reads and writes
    /// the same way.
    #[test]
    fn readme_example() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let ring = Keyring::from_toml(Path::new("README.md"), example).unwrap();
        assert_eq!(ring.list().len(), 2);
        assert!(ring.to_toml().unwrap().ends_with(example));
    }

    /// Every message bounded to about a line, whatever the size of the
    /// value it quotes.
    fn assert_bounded(e: &KeyError, huge: usize) {
        let msg = e.to_string();
        assert!(msg.len() < 600, "{} bytes: {}", msg.len(), &msg[..600]);
        let length = format!("... ({} bytes)", tessera_verifier::text::grouped(huge));
        assert!(msg.contains(&length), "{msg}");
    }

    #[test]
    fn a_huge_kid_is_quoted_bounded_with_the_file() {
        let huge = "Z".repeat(1024 * 1024);
        // On the command line: bounded, escaped.
        let e = parse_kid(&huge).unwrap_err();
        assert_bounded(&e, huge.len());
        assert!(
            e.to_string()
                .starts_with(&format!("'{}... (", "Z".repeat(80))),
            "{e}"
        );
        let e = parse_kid("a\u{1b}[2J").unwrap_err().to_string();
        assert!(e.starts_with("'a\\u{1b}[2J' is not a key id"), "{e}");
        // In a keyring: the file is named.
        let base = ring().to_toml().unwrap();
        let active = hex::encode(key_id(&pk(1)));
        let texts = [
            base.replace(
                &format!("active_kid = \"{active}\""),
                &format!("active_kid = \"{huge}\""),
            ),
            base.replacen(
                &format!("kid = \"{active}\""),
                &format!("kid = \"{huge}\""),
                1,
            ),
            format!("{base}\n[[activation]]\nkid = \"{huge}\"\nat = 2030-01-01T00:00:00Z\n"),
        ];
        for text in texts {
            assert_ne!(text, base);
            let e = Keyring::from_toml(file(), &text).unwrap_err();
            assert!(matches!(e, KeyError::KeyringSyntax { .. }), "{e:?}");
            assert_bounded(&e, huge.len());
            assert!(
                e.to_string()
                    .starts_with(&format!("{}: ", file().display())),
                "{e}"
            );
            assert!(e.to_string().contains("is not a key id"), "{e}");
        }
    }

    #[test]
    fn a_huge_key_field_is_quoted_bounded() {
        let huge = "Q".repeat(1024 * 1024);
        let base = ring().to_toml().unwrap();
        let text = base.replace(&hex::encode(pk(1)), &huge);
        let e = Keyring::from_toml(file(), &text).unwrap_err();
        assert!(matches!(e, KeyError::KeyringSyntax { .. }), "{e:?}");
        assert_bounded(&e, huge.len());
        assert!(e.to_string().contains("public_key = 'QQQ"), "{e}");
        // A string where a date is expected, and a huge PEM label.
        let text = base.replace(
            "valid_from = 2024-01-01T00:00:00Z",
            &format!("valid_from = \"{huge}\""),
        );
        assert_ne!(text, base);
        let e = Keyring::from_toml(file(), &text).unwrap_err();
        assert_bounded(&e, huge.len());
        assert!(
            e.to_string().contains("line 11: invalid type: string"),
            "{e}"
        );
        let e = KeyError::NotAKeyFile {
            file: file().to_owned(),
            found: huge.clone(),
        };
        assert_bounded(&e, huge.len());
    }

    #[test]
    fn syntax_errors() {
        let bad = |text: &str| Keyring::from_toml(file(), text).unwrap_err();
        assert!(matches!(
            bad("format = 2\n"),
            KeyError::KeyringSyntax { .. }
        ));
        assert!(matches!(
            bad("[[key]]\nkid = 1\n"),
            KeyError::KeyringSyntax { .. }
        ));
        assert!(matches!(
            bad("format = 1\nsurprise = true\n"),
            KeyError::KeyringSyntax { .. }
        ));
        let base = ring().to_toml().unwrap();
        // A local date-time (no offset) is ambiguous.
        let local = base.replace(
            "valid_from = 2024-01-01T00:00:00Z",
            "valid_from = 2024-01-01T00:00:00",
        );
        let e = bad(&local);
        assert!(e.to_string().contains("offset"), "{e}");
        // Offsets other than Z are converted to UTC.
        let offset = base.replace(
            "valid_from = 2024-01-01T00:00:00Z",
            "valid_from = 2024-01-01T01:00:00+01:00",
        );
        assert_eq!(Keyring::from_toml(file(), &offset).unwrap(), ring());
        let short = base.replace(&hex::encode(pk(1)), "abcd");
        assert!(matches!(bad(&short), KeyError::KeyringSyntax { .. }));
        assert!(matches!(parse_kid("xyz"), Err(KeyError::BadKid { .. })));
        assert_eq!(
            parse_kid("0011223344556677").unwrap(),
            [0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
        );
        assert_eq!(
            Keyring::from_toml(file(), "format = 1\n").unwrap(),
            Keyring::new()
        );
    }

    #[test]
    fn a_key_not_yet_valid_is_scheduled_not_activated() {
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(pk(1), "old", t(2024))).unwrap();
        ring.add(KeyRecord::new(pk(2), "new", t(2027))).unwrap();
        let (old, new) = (key_id(&pk(1)), key_id(&pk(2)));
        ring.set_active(&old).unwrap();
        // Activated now, nothing could sign until 2027: refused, naming --at.
        let e = ring.activate(&new, t(2026)).unwrap_err();
        assert!(matches!(e, KeyError::KeyNotYetValid { .. }), "{e:?}");
        assert!(e.to_string().contains("--at 2027-01-01T00:00:00Z"), "{e}");
        assert_eq!(ring.active().unwrap().kid, old);
        // Scheduled: the switch happens by itself.
        ring.schedule(&new, t(2027), t(2026)).unwrap();
        let second = chrono::Duration::seconds(1);
        assert_eq!(ring.active_at(t(2027) - second).unwrap().kid, old);
        assert_eq!(ring.active_at(t(2027)).unwrap().kid, new);
        assert_eq!(
            ring.scheduled(),
            [Activation {
                kid: new,
                at: t(2027)
            }]
        );
        // The file keeps the schedule.
        let text = ring.to_toml().unwrap();
        assert!(text.contains("[[activation]]"), "{text}");
        assert!(text.contains("at = 2027-01-01T00:00:00Z"), "{text}");
        assert_eq!(Keyring::from_toml(file(), &text).unwrap(), ring);
        // A scheduled key is not retired; the old one only once it is past.
        let e = ring.retire(&new).unwrap_err();
        assert!(matches!(e, KeyError::RetireScheduled { .. }), "{e:?}");
        assert!(matches!(
            ring.retire(&old),
            Err(KeyError::RetireActive { .. })
        ));
        ring.settle(t(2028));
        assert_eq!(ring.active().unwrap().kid, new);
        assert!(ring.scheduled().is_empty());
        ring.retire(&old).unwrap();
        // Once valid, activating now works.
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(pk(2), "new", t(2027))).unwrap();
        ring.activate(&new, t(2027)).unwrap();
        assert_eq!(ring.active_at(t(2027)).unwrap().kid, new);
    }

    #[test]
    fn a_schedule_never_leaves_a_gap() {
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(pk(1), "old", t(2024)).with_valid_until(t(2026)))
            .unwrap();
        ring.add(KeyRecord::new(pk(2), "new", t(2025)).with_valid_until(t(2030)))
            .unwrap();
        let (old, new) = (key_id(&pk(1)), key_id(&pk(2)));
        ring.set_active(&old).unwrap();
        let now = t(2025);
        // The old key ends in 2026: a switch in 2027 would leave a year.
        let e = ring.schedule(&new, t(2027), now).unwrap_err();
        assert!(matches!(e, KeyError::RotationGap { .. }), "{e:?}");
        assert!(
            e.to_string().contains("at or before 2026-01-01T00:00:00Z"),
            "{e}"
        );
        // Outside the new key's window, in the past, a retired key.
        assert!(matches!(
            ring.schedule(&new, t(2031), now),
            Err(KeyError::KeyNotValidAt { .. })
        ));
        assert!(matches!(
            ring.schedule(&new, t(2024), now),
            Err(KeyError::ScheduleInPast { .. })
        ));
        assert!(matches!(
            ring.schedule(&[9; 8], t(2026), now),
            Err(KeyError::UnknownKid { .. })
        ));
        ring.schedule(&new, t(2026), now).unwrap();
        // A second switch at the same time replaces the first.
        ring.schedule(&old, t(2026), now).unwrap();
        assert_eq!(ring.scheduled().len(), 1);
        assert_eq!(ring.active_at(t(2026)).unwrap().kid, old);
        // An expired key is not activated.
        let e = ring.activate(&old, t(2027)).unwrap_err();
        assert!(matches!(e, KeyError::KeyNotValidAt { .. }), "{e:?}");
        // A file naming an unknown or a retired key in a schedule.
        let text = ring.to_toml().unwrap();
        let unknown = text.replacen(
            &format!("kid = \"{}\"\nat", hex::encode(old)),
            "kid = \"0000000000000000\"\nat",
            1,
        );
        assert!(matches!(
            Keyring::from_toml(file(), &unknown),
            Err(KeyError::UnknownKid { .. })
        ));
        let local = text.replace("at = 2026-01-01T00:00:00Z", "at = 2026-01-01T00:00:00");
        assert!(matches!(
            Keyring::from_toml(file(), &local),
            Err(KeyError::KeyringSyntax { .. })
        ));
    }

    #[test]
    fn check_signer() {
        struct Fake([u8; 32]);
        impl Signer for Fake {
            fn kid(&self) -> KeyId {
                key_id(&self.0)
            }
            fn public_key(&self) -> [u8; 32] {
                self.0
            }
            fn sign(&self, _: &[u8]) -> Result<[u8; 64], KeyError> {
                Err(KeyError::Signing("fake".into()))
            }
        }
        let mut ring = ring();
        assert!(ring.check_signer(&Fake(pk(1)), t(2026)).is_ok());
        let e = ring.check_signer(&Fake(pk(2)), t(2026)).unwrap_err();
        assert!(matches!(e, KeyError::NotActiveSigner { .. }), "{e:?}");
        let e = ring.check_signer(&Fake(pk(1)), t(2028)).unwrap_err();
        assert!(matches!(e, KeyError::KeyNotValidAt { .. }), "{e:?}");
        ring.active = None;
        assert!(matches!(
            ring.check_signer(&Fake(pk(1)), t(2026)),
            Err(KeyError::NoActiveKey)
        ));
        // From a scheduled switch on, the scheduled key signs.
        ring.set_active(&key_id(&pk(1))).unwrap();
        ring.schedule(&key_id(&pk(2)), t(2026), t(2025)).unwrap();
        assert!(ring.check_signer(&Fake(pk(1)), t(2025)).is_ok());
        assert!(ring.check_signer(&Fake(pk(2)), t(2026)).is_ok());
        let e = ring.check_signer(&Fake(pk(1)), t(2026)).unwrap_err();
        assert!(matches!(e, KeyError::NotActiveSigner { .. }), "{e:?}");
    }
}
