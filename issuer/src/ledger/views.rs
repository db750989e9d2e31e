//! The query views and the one fold that derives them from the journal.
//!
//! Every backend keeps the same views (the identity, licenses, HW → SW
//! serials, the serial counters, schedules, events, replaced bindings,
//! request keys), updated in the transaction that appends the entry they
//! come from. [`apply`] is the only code that says what an entry does to
//! them, and it checks on the way what must hold for the entry to be
//! valid at its position: a license's sequence is the next of its serial,
//! a HW serial is converted once, an event names a license of its kind,
//! and so on. The writers apply it to the backend's views
//! ([`ViewStore`]); `ledger verify` applies it to [`MemoryViews`], built
//! from the journal alone, and compares the result with what the backend
//! holds ([`ViewRow`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::journal::{Action, Charge, Entry, Fact, JOURNAL_FORMAT};
use super::LedgerError;
use crate::calendar::PlatformName;
use crate::catalog::PolicyValues;
use crate::validate;

/// The ledger's identity (the genesis entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Identity {
    /// Random id named by every checkpoint.
    #[serde(with = "hex_bytes")]
    pub ledger_id: [u8; 16],
    /// Vendor id of every license.
    pub vendor: String,
    /// When the ledger was created.
    pub created_at: i64,
    /// Journal format.
    pub journal_format: u32,
}

/// A row of the licenses view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LicenseRow {
    /// SW serial.
    pub serial: String,
    /// Sequence.
    pub sequence: u32,
    /// License id.
    #[serde(with = "hex_bytes")]
    pub license_id: [u8; 16],
    /// What it was.
    pub action: Action,
    /// The journal entry holding it.
    pub entry: u64,
    /// Who issued it.
    pub operator: String,
    /// Issue time.
    pub issued_at: i64,
    /// Customer.
    pub customer: String,
    /// PBX name.
    pub pbx_name: String,
    /// Platform name.
    pub platform: String,
    /// Lease end.
    pub lease_end: i64,
    /// Term end (`None`: lifetime).
    pub term_end: Option<i64>,
    /// Bulk idempotency key.
    pub idem_key: Option<String>,
    /// Device key of the request it answered.
    #[serde(with = "opt_hex")]
    pub request_key: Option<[u8; 32]>,
}

/// A row of the HW → SW serials view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct HwRow {
    /// Normalized HW serial.
    pub hw_serial: String,
    /// SW serial.
    pub serial: String,
    /// When it was converted.
    pub at: i64,
    /// The entry that converted it.
    pub entry: u64,
}

/// A row of the serial counters view: the last number allocated in a year.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CounterRow {
    /// The year.
    pub year: i32,
    /// The last number allocated.
    pub last: u32,
    /// The entry that allocated it.
    pub entry: u64,
}

/// A row of the schedules view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ScheduleRow {
    /// SW serial.
    pub serial: String,
    /// Stop time.
    pub stop_at: i64,
    /// Deletion time.
    pub delete_at: i64,
    /// When it was scheduled.
    pub created_at: i64,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<i64>,
    /// The entry that last changed it.
    pub entry: u64,
}

/// A row of the events view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct EventRow {
    /// The entry (one event per entry).
    pub entry: u64,
    /// SW serial.
    pub serial: String,
    /// Sequence of the license it belongs to.
    pub sequence: u32,
    /// Kind.
    pub kind: String,
    /// Detail (JSON text).
    pub detail: String,
    /// Who.
    pub operator: String,
    /// When.
    pub at: i64,
}

/// A row of the replaced bindings view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ReplacedRow {
    /// SW serial.
    pub serial: String,
    /// Last license of the replaced binding.
    pub sequence: u32,
    /// The replacing license.
    pub replaced_by: u32,
    /// Device keys (hex, JSON array text).
    pub device_keys: String,
    /// `rma` or `migrate`.
    pub reason: String,
    /// When.
    pub at: i64,
    /// The entry.
    pub entry: u64,
}

/// A row of the PBX registry view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PbxRow {
    /// SW serial.
    pub serial: String,
    /// Customer.
    pub customer: String,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Platform name.
    pub platform: String,
    /// Payment cycle name.
    pub cycle: String,
    /// Users of each profile (JSON object text).
    pub profiles: String,
    /// Storage units.
    pub storage: u32,
    /// The recorded policy's name.
    pub policy: String,
    /// The recorded policy's values (JSON object text).
    pub policy_values: String,
    /// When it was added.
    pub created_at: i64,
    /// The entry that last changed it.
    pub entry: u64,
}

impl PbxRow {
    /// The row a [`Fact::PbxAdded`] recorded at `at` as entry `position`
    /// puts in the registry (`None` for other facts). [`apply`] gives it
    /// back ([`Applied::Pbx`]), so the writer need not read it again.
    fn added(fact: &Fact, at: i64, position: u64) -> Option<Self> {
        let Fact::PbxAdded {
            serial,
            customer,
            name,
            model,
            platform,
            cycle,
            profiles,
            storage,
            policy,
            values,
            ..
        } = fact
        else {
            return None;
        };
        Some(Self {
            serial: serial.clone(),
            customer: customer.clone(),
            name: name.clone(),
            model: model.clone(),
            platform: platform.clone(),
            cycle: cycle.clone(),
            profiles: serde_json::to_string(profiles).unwrap_or_default(),
            storage: *storage,
            policy: policy.clone(),
            policy_values: serde_json::to_string(values).unwrap_or_default(),
            created_at: at,
            entry: position,
        })
    }

    /// The recorded policy's values.
    #[must_use]
    pub fn values(&self) -> Option<PolicyValues> {
        serde_json::from_str(&self.policy_values).ok()
    }

    /// Users of each profile.
    #[must_use]
    pub fn profile_counts(&self) -> BTreeMap<String, u32> {
        serde_json::from_str(&self.profiles).unwrap_or_default()
    }
}

/// A row of the PBX history view: its addition and every change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PbxChangeRow {
    /// The entry.
    pub entry: u64,
    /// SW serial.
    pub serial: String,
    /// `added` or `edited`.
    pub kind: String,
    /// What (JSON object text).
    pub detail: String,
    /// Who.
    pub operator: String,
    /// When.
    pub at: i64,
}

/// A row of the charges view: one billed quantity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ChargeRow {
    /// The entry.
    pub entry: u64,
    /// Its line within the entry (from 0).
    pub line: u32,
    /// SW serial.
    pub serial: String,
    /// The license it belongs to.
    pub sequence: u32,
    /// `activation`, `increase`, `service`, `renewal`, `storage`.
    pub kind: String,
    /// The item.
    pub item: String,
    /// Quantity.
    pub quantity: u32,
    /// Payment cycle.
    pub cycle: String,
    /// Period start.
    pub period_start: i64,
    /// Period end (`None`: lifetime).
    pub period_end: Option<i64>,
    /// Days billed.
    pub days: u32,
    /// Days of the whole period.
    pub period_days: u32,
    /// When it was recorded.
    pub at: i64,
}

/// The views, by name (as in messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum View {
    /// The identity.
    Identity,
    /// Licenses.
    Licenses,
    /// HW → SW serials.
    HwSerials,
    /// Serial counters.
    SerialCounter,
    /// Schedules.
    Schedules,
    /// Events.
    Events,
    /// Replaced bindings.
    ReplacedBindings,
    /// The PBX registry.
    Pbxs,
    /// The PBX registry's history.
    PbxChanges,
    /// Billed quantities.
    Charges,
}

impl View {
    /// The view's table name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Licenses => "licenses",
            Self::HwSerials => "hw_serials",
            Self::SerialCounter => "serial_counter",
            Self::Schedules => "schedules",
            Self::Events => "events",
            Self::ReplacedBindings => "replaced_bindings",
            Self::Pbxs => "pbxs",
            Self::PbxChanges => "pbx_changes",
            Self::Charges => "charges",
        }
    }
}

/// Any view row, for the comparison of a backend's views with the fold.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ViewRow {
    Identity(Identity),
    License(LicenseRow),
    Hw(HwRow),
    Counter(CounterRow),
    Schedule(ScheduleRow),
    Event(EventRow),
    Replaced(ReplacedRow),
    Pbx(PbxRow),
    PbxChange(PbxChangeRow),
    Charge(ChargeRow),
}

/// SHA-256 fed by a row's derived [`Hash`]: that encoding is one-to-one
/// for a given row type (a string ends with a 0xff byte, which UTF-8 never
/// holds; integers have fixed widths; an `Option` starts with its
/// variant), so two rows of a view have one digest only when they are
/// equal. The digests never leave the process: they compare the rows the
/// fold made with a backend's, in one check.
struct DigestHasher(Sha256);

impl core::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        let d: [u8; 32] = self.0.clone().finalize().into();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn digest_of<T: core::hash::Hash>(row: &T) -> [u8; 32] {
    let mut h = DigestHasher(Sha256::new());
    row.hash(&mut h);
    h.0.finalize().into()
}

/// Which row of its view a row is: what [`ViewRow::key`] names, without
/// making a string of it (a check builds one per row of the ledger).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKey {
    /// The identity's one row.
    Identity,
    /// A serial, an HW serial or a year's counter (as text).
    Name(String),
    /// A serial and a sequence.
    License(String, u32),
    /// The entry that made the row.
    Entry(u64),
    /// The entry and the line of a charge.
    Line(u64, u32),
    /// A year.
    Year(i32),
}

impl core::fmt::Display for RowKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Identity => f.write_str("the identity"),
            Self::Name(n) => f.write_str(n),
            Self::License(s, q) => write!(f, "{s}:{q}"),
            Self::Entry(e) => write!(f, "entry {e}"),
            Self::Line(e, l) => write!(f, "entry {e} line {l}"),
            Self::Year(y) => write!(f, "{y}"),
        }
    }
}

impl ViewRow {
    /// Which view.
    #[must_use]
    pub fn view(&self) -> View {
        match self {
            Self::Identity(_) => View::Identity,
            Self::License(_) => View::Licenses,
            Self::Hw(_) => View::HwSerials,
            Self::Counter(_) => View::SerialCounter,
            Self::Schedule(_) => View::Schedules,
            Self::Event(_) => View::Events,
            Self::Replaced(_) => View::ReplacedBindings,
            Self::Pbx(_) => View::Pbxs,
            Self::PbxChange(_) => View::PbxChanges,
            Self::Charge(_) => View::Charges,
        }
    }

    /// The row's key within its view, for messages.
    #[must_use]
    pub fn key(&self) -> String {
        self.row_key().to_string()
    }

    /// The row's key within its view.
    #[must_use]
    pub fn row_key(&self) -> RowKey {
        match self {
            Self::Identity(_) => RowKey::Identity,
            Self::License(r) => RowKey::License(r.serial.clone(), r.sequence),
            Self::Hw(r) => RowKey::Name(r.hw_serial.clone()),
            Self::Counter(r) => RowKey::Year(r.year),
            Self::Schedule(r) => RowKey::Name(r.serial.clone()),
            Self::Event(r) => RowKey::Entry(r.entry),
            Self::Replaced(r) => RowKey::License(r.serial.clone(), r.sequence),
            Self::Pbx(r) => RowKey::Name(r.serial.clone()),
            Self::PbxChange(r) => RowKey::Entry(r.entry),
            Self::Charge(r) => RowKey::Line(r.entry, r.line),
        }
    }

    /// The entry the row says made it (`None` for the identity, which
    /// entry 1 makes).
    #[must_use]
    pub fn entry(&self) -> u64 {
        match self {
            Self::Identity(_) => 1,
            Self::License(r) => r.entry,
            Self::Hw(r) => r.entry,
            Self::Counter(r) => r.entry,
            Self::Schedule(r) => r.entry,
            Self::Event(r) => r.entry,
            Self::Replaced(r) => r.entry,
            Self::Pbx(r) => r.entry,
            Self::PbxChange(r) => r.entry,
            Self::Charge(r) => r.entry,
        }
    }

    /// A digest of every column.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        match self {
            Self::Identity(r) => digest_of(r),
            Self::License(r) => digest_of(r),
            Self::Hw(r) => digest_of(r),
            Self::Counter(r) => digest_of(r),
            Self::Schedule(r) => digest_of(r),
            Self::Event(r) => digest_of(r),
            Self::Replaced(r) => digest_of(r),
            Self::Pbx(r) => digest_of(r),
            Self::PbxChange(r) => digest_of(r),
            Self::Charge(r) => digest_of(r),
        }
    }
}

/// What the fold reads and writes: a backend's views inside a write
/// transaction, or [`MemoryViews`].
pub trait ViewStore {
    /// The identity, once the genesis entry is in.
    ///
    /// # Errors
    /// [`LedgerError`] from the backend.
    fn identity(&self) -> Result<Option<Identity>, LedgerError>;
    /// The highest sequence of a serial.
    ///
    /// # Errors
    /// As above.
    fn last_sequence(&self, serial: &str) -> Result<Option<u32>, LedgerError>;
    /// The action of license `sequence` of `serial`.
    ///
    /// # Errors
    /// As above.
    fn license_action(&self, serial: &str, sequence: u32) -> Result<Option<Action>, LedgerError>;
    /// The SW serial a HW serial was converted to.
    ///
    /// # Errors
    /// As above.
    fn hw_owner(&self, hw: &str) -> Result<Option<String>, LedgerError>;
    /// Whether any HW serial was converted to `serial`.
    ///
    /// # Errors
    /// As above.
    fn serial_mapped(&self, serial: &str) -> Result<bool, LedgerError>;
    /// The last number allocated in a year.
    ///
    /// # Errors
    /// As above.
    fn counter(&self, year: i32) -> Result<Option<u32>, LedgerError>;
    /// The schedule of a serial (pending or cancelled).
    ///
    /// # Errors
    /// As above.
    fn schedule_row(&self, serial: &str) -> Result<Option<ScheduleRow>, LedgerError>;
    /// Whether the binding of license `sequence` of `serial` was replaced.
    ///
    /// # Errors
    /// As above.
    fn binding_replaced(&self, serial: &str, sequence: u32) -> Result<bool, LedgerError>;
    /// The registry entry of a serial.
    ///
    /// # Errors
    /// As above.
    fn pbx_row(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError>;
    /// Whether the overdue notice of `day` for `recipient` is in effect
    /// (claimed and not withdrawn).
    ///
    /// # Errors
    /// As above.
    fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError>;
    /// Whether the entry at `position` carries over the serial counters of
    /// a ledger of an earlier tessera (`tessera ledger upgrade`): entry 2
    /// is [`Fact::Upgraded`] and `position` is in the ledger's first
    /// transaction (the entries its first checkpoint covers, or no
    /// checkpoint yet). Only such an allocation may skip numbers.
    ///
    /// # Errors
    /// As above.
    fn carry_over(&self, position: u64) -> Result<bool, LedgerError>;

    /// Records the identity.
    ///
    /// # Errors
    /// As above.
    fn put_identity(&mut self, row: &Identity) -> Result<(), LedgerError>;
    /// Records a license.
    ///
    /// # Errors
    /// [`LedgerError::Conflict`] when its license id or bulk key is
    /// recorded already; as above.
    fn put_license(&mut self, row: &LicenseRow) -> Result<(), LedgerError>;
    /// Records a HW → SW conversion.
    ///
    /// # Errors
    /// As above.
    fn put_hw(&mut self, row: &HwRow) -> Result<(), LedgerError>;
    /// Records a year's counter (insert or update).
    ///
    /// # Errors
    /// As above.
    fn put_counter(&mut self, row: &CounterRow) -> Result<(), LedgerError>;
    /// Records a schedule (insert or update).
    ///
    /// # Errors
    /// As above.
    fn put_schedule(&mut self, row: &ScheduleRow) -> Result<(), LedgerError>;
    /// Records an event.
    ///
    /// # Errors
    /// As above.
    fn put_event(&mut self, row: &EventRow) -> Result<(), LedgerError>;
    /// Records a replaced binding.
    ///
    /// # Errors
    /// As above.
    fn put_replaced(&mut self, row: &ReplacedRow) -> Result<(), LedgerError>;
    /// Records a registry entry (insert or update).
    ///
    /// # Errors
    /// As above.
    fn put_pbx(&mut self, row: &PbxRow) -> Result<(), LedgerError>;
    /// Records a registry change.
    ///
    /// # Errors
    /// As above.
    fn put_pbx_change(&mut self, row: &PbxChangeRow) -> Result<(), LedgerError>;
    /// Records a billed quantity.
    ///
    /// # Errors
    /// As above.
    fn put_charge(&mut self, row: &ChargeRow) -> Result<(), LedgerError>;
    /// Adds the charge lines of one entry, in order ([`Self::put_charge`]
    /// each, unless the store has a cheaper way).
    ///
    /// # Errors
    /// As [`Self::put_charge`].
    fn put_charges(&mut self, rows: &[ChargeRow]) -> Result<(), LedgerError> {
        rows.iter().try_for_each(|r| self.put_charge(r))
    }
    /// Adds the charge lines of the entry at `position`, in order: the
    /// rows [`charge_row`] makes of them ([`Self::put_charges`], unless the
    /// store can write them from the lines without making the rows).
    ///
    /// # Errors
    /// As [`Self::put_charge`].
    fn put_charge_lines(
        &mut self,
        position: u64,
        serial: &str,
        sequence: u32,
        at: i64,
        lines: &[Charge],
    ) -> Result<(), LedgerError> {
        let rows: Vec<ChargeRow> = lines
            .iter()
            .enumerate()
            .map(|(i, c)| charge_row(position, i, serial, sequence, at, c))
            .collect();
        self.put_charges(&rows)
    }
    /// Notes that a notice came into effect or was withdrawn. The
    /// backends read notices from the journal itself (they are few: one
    /// per recipient and day), so only the in-memory fold keeps them.
    fn note_notice(&mut self, recipient: &str, day: &str, in_effect: bool) {
        let _ = (recipient, day, in_effect);
    }
    /// Notes that entry 2 continues a ledger of an earlier tessera (a
    /// backend finds it in its journal instead).
    ///
    /// # Errors
    /// As above.
    fn put_upgraded(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// Why an entry cannot stand at its position.
#[derive(Debug)]
pub enum FoldError {
    /// What does not hold.
    Invalid(String),
    /// The backend failed.
    Store(LedgerError),
}

impl From<LedgerError> for FoldError {
    fn from(e: LedgerError) -> Self {
        Self::Store(e)
    }
}

fn invalid(reason: impl Into<String>) -> FoldError {
    FoldError::Invalid(reason.into())
}

/// The year and number of a serial in the ledger's grammar.
#[must_use]
pub fn serial_parts(serial: &str) -> Option<(i32, u32)> {
    if !validate::is_sw_serial(serial) {
        return None;
    }
    let year = serial.get(3..7)?.parse().ok()?;
    let number = serial.get(8..14)?.parse().ok()?;
    Some((year, number))
}

/// The view row an entry made that its writer goes on with
/// ([`apply`]'s answer).
#[derive(Debug)]
#[non_exhaustive]
pub enum Applied {
    /// A license entry's row in `licenses`.
    License(LicenseRow),
    /// A [`Fact::PbxAdded`]'s row in the registry.
    Pbx(PbxRow),
    /// Any other entry.
    Nothing,
}

/// Applies the entry at `position` to `views`, checking first that it may
/// stand there. The one definition of what each fact means for the views.
/// Returns the licenses view's row of a license entry.
///
/// # Errors
/// [`FoldError::Invalid`] naming what does not hold,
/// [`FoldError::Store`] from the backend.
#[allow(clippy::too_many_lines)]
pub fn apply(
    views: &mut dyn ViewStore,
    position: u64,
    entry: &Entry,
) -> Result<Applied, FoldError> {
    validate::text("operator", &entry.operator).map_err(|e| invalid(e.to_string()))?;
    let identity = views.identity()?;
    match (&entry.fact, &identity, position) {
        (Fact::Genesis { .. }, None, 1) => {}
        (Fact::Genesis { .. }, _, _) => {
            return Err(invalid(
                "a genesis entry after the first: a ledger has one identity",
            ))
        }
        (_, None, _) => {
            return Err(invalid(format!(
                "a {} entry before the ledger's genesis entry",
                entry.fact.kind()
            )))
        }
        _ => {}
    }
    match &entry.fact {
        Fact::Genesis {
            ledger_id,
            vendor,
            journal_format,
        } => {
            if *journal_format != JOURNAL_FORMAT {
                return Err(invalid(format!(
                    "journal format {journal_format}; this tessera reads format {JOURNAL_FORMAT}"
                )));
            }
            validate::text("vendor id", vendor).map_err(|e| invalid(e.to_string()))?;
            views.put_identity(&Identity {
                ledger_id: *ledger_id,
                vendor: vendor.clone(),
                created_at: entry.at,
                journal_format: *journal_format,
            })?;
        }
        Fact::SerialAllocated { serial } => allocate(views, position, serial)?,
        Fact::HwSerialConverted {
            hw_serial,
            serial,
            allocated,
        } => {
            if *allocated {
                allocate(views, position, serial)?;
            }
            let normalized =
                validate::hw_serial("HW serial", hw_serial).map_err(|e| invalid(e.to_string()))?;
            if normalized != *hw_serial {
                return Err(invalid(format!(
                    "HW serial `{}` is not in its normalized form",
                    validate::shown(hw_serial)
                )));
            }
            validate::sw_serial("SW serial", serial).map_err(|e| invalid(e.to_string()))?;
            if let Some(owner) = views.hw_owner(hw_serial)? {
                return Err(invalid(format!(
                    "HW serial {hw_serial} converted to {serial}, but it was converted to {owner} before"
                )));
            }
            views.put_hw(&HwRow {
                hw_serial: hw_serial.clone(),
                serial: serial.clone(),
                at: entry.at,
                entry: position,
            })?;
        }
        Fact::License {
            action,
            bytes,
            order: _,
            idem_key,
            request_key,
        } => {
            let l = tessera_verifier::decode_license_unverified(bytes)
                .map_err(|e| invalid(format!("the license does not decode ({e})")))?;
            validate::license_view(&l).map_err(|e| invalid(e.to_string()))?;
            let serial = l.serial();
            if let Some(id) = &identity {
                if l.issuer() != id.vendor {
                    return Err(invalid(format!(
                        "the license of {serial} names vendor `{}`, the ledger's vendor is `{}`",
                        validate::shown(l.issuer()),
                        id.vendor
                    )));
                }
            }
            if l.issued_at() != entry.at {
                return Err(invalid(format!(
                    "the license of {serial} was issued at {}, the entry says {}",
                    l.issued_at(),
                    entry.at
                )));
            }
            let expected = views
                .last_sequence(serial)?
                .map_or(Some(1), |s| s.checked_add(1));
            if Some(l.sequence()) != expected {
                return Err(invalid(format!(
                    "sequence {} of {serial} is not the serial's next ({})",
                    l.sequence(),
                    expected.map_or_else(|| "none is left".into(), |n| n.to_string())
                )));
            }
            if let Some(k) = idem_key {
                validate::text("idempotency key", k).map_err(|e| invalid(e.to_string()))?;
            }
            let row = LicenseRow {
                serial: serial.to_owned(),
                sequence: l.sequence(),
                license_id: l.id(),
                action: *action,
                entry: position,
                operator: entry.operator.clone(),
                issued_at: l.issued_at(),
                customer: l.customer().to_owned(),
                pbx_name: l.pbx_name().to_owned(),
                platform: PlatformName::of(l.platform()).as_str().to_owned(),
                lease_end: l.lease_end(),
                term_end: l.term().end,
                idem_key: idem_key.clone(),
                request_key: *request_key,
            };
            // A license id or bulk key recorded before is refused by the
            // store (a unique index, a set).
            views.put_license(&row).map_err(|e| match e {
                LedgerError::Conflict { reason, .. } => invalid(reason),
                other => FoldError::Store(other),
            })?;
            return Ok(Applied::License(row));
        }
        Fact::ScheduleSet {
            serial,
            stop_at,
            delete_at,
        } => {
            if views.last_sequence(serial)?.is_none() {
                return Err(invalid(format!(
                    "a schedule for {serial}, which has no license"
                )));
            }
            if !(entry.at <= *stop_at && stop_at <= delete_at) {
                return Err(invalid(format!(
                    "the schedule of {serial} does not run forward (set {}, stop {stop_at}, deletion {delete_at})",
                    entry.at
                )));
            }
            views.put_schedule(&ScheduleRow {
                serial: serial.clone(),
                stop_at: *stop_at,
                delete_at: *delete_at,
                created_at: entry.at,
                cancelled_at: None,
                entry: position,
            })?;
        }
        Fact::ScheduleCancelled { serial } => {
            let Some(mut row) = views
                .schedule_row(serial)?
                .filter(|r| r.cancelled_at.is_none())
            else {
                return Err(invalid(format!(
                    "the schedule of {serial} cancelled, but none is pending"
                )));
            };
            row.cancelled_at = Some(entry.at);
            row.entry = position;
            views.put_schedule(&row)?;
        }
        Fact::BindingReplaced {
            serial,
            sequence,
            replaced_by,
            device_keys,
            reason,
        } => {
            let old = views.license_action(serial, *sequence)?;
            let new = views.license_action(serial, *replaced_by)?;
            if old.is_none() || new != Some(Action::Replace) || replaced_by <= sequence {
                return Err(invalid(format!(
                    "the binding of license {sequence} of {serial} is marked replaced by license {replaced_by}, which is not a later replacement"
                )));
            }
            if views.binding_replaced(serial, *sequence)? {
                return Err(invalid(format!(
                    "the binding of license {sequence} of {serial} replaced twice"
                )));
            }
            for k in device_keys {
                let mut key = [0u8; 32];
                if hex::decode_to_slice(k, &mut key).is_err() {
                    return Err(invalid(
                        "a replaced binding's device key is not 64 hex digits",
                    ));
                }
            }
            validate::text("reason", reason).map_err(|e| invalid(e.to_string()))?;
            views.put_replaced(&ReplacedRow {
                serial: serial.clone(),
                sequence: *sequence,
                replaced_by: *replaced_by,
                device_keys: serde_json::to_string(device_keys).unwrap_or_default(),
                reason: reason.clone(),
                at: entry.at,
                entry: position,
            })?;
        }
        Fact::Event {
            serial,
            sequence,
            event,
            detail,
        } => {
            let expected: &[Action] = match event.as_str() {
                "void" => &[Action::Void],
                "replace" => &[Action::Replace],
                "share" => &[Action::Share],
                "change" | "decommission" => &[Action::Change],
                // A device key the operator accepted for the request a
                // renewal, change or client license answered.
                "device_key" => &[Action::Renew, Action::Change, Action::Share],
                // The binding's other device keys withdrawn with it
                // (`--retire-old-keys`).
                "retire_keys" => &[Action::Renew, Action::Change, Action::Share],
                other => {
                    return Err(invalid(format!(
                        "an event of unknown kind `{}`",
                        validate::shown(other)
                    )))
                }
            };
            match views.license_action(serial, *sequence)? {
                Some(a) if expected.contains(&a) => {}
                found => {
                    return Err(invalid(format!(
                        "a {event} event names license {sequence} of {serial}, which is {}",
                        found.map_or_else(
                            || "not in the ledger".to_owned(),
                            |a| format!("a {}", a.as_str())
                        )
                    )))
                }
            }
            if !serde_json::from_str::<serde_json::Value>(detail).is_ok_and(|v| v.is_object()) {
                return Err(invalid("an event's detail is not a JSON object"));
            }
            views.put_event(&EventRow {
                entry: position,
                serial: serial.clone(),
                sequence: *sequence,
                kind: event.clone(),
                detail: detail.clone(),
                operator: entry.operator.clone(),
                at: entry.at,
            })?;
        }
        Fact::PbxAdded {
            serial,
            allocated,
            customer,
            name,
            model,
            platform,
            cycle,
            profiles,
            storage,
            policy,
            values,
        } => {
            if *allocated {
                allocate(views, position, serial)?;
            } else {
                validate::sw_serial("SW serial", serial).map_err(|e| invalid(e.to_string()))?;
                if views.last_sequence(serial)?.is_none() && !views.serial_mapped(serial)? {
                    return Err(invalid(format!(
                        "{serial} entered in the registry as in use, but it has no license and no HW serial"
                    )));
                }
            }
            if views.pbx_row(serial)?.is_some() {
                return Err(invalid(format!("{serial} entered in the registry twice")));
            }
            pbx_fields(customer, name, model, platform, Some(cycle))?;
            policy_fields(policy, values)?;
            for (profile, _) in profiles.iter() {
                validate::text("profile", profile).map_err(|e| invalid(e.to_string()))?;
            }
            if *storage > 0 && platform != "cloud" {
                return Err(invalid(format!(
                    "{serial} has {storage} storage units on platform {platform}: storage is sold for Cloud only"
                )));
            }
            let row = PbxRow::added(&entry.fact, entry.at, position)
                .ok_or_else(|| invalid("a PBX entered without its fields"))?;
            views.put_pbx(&row)?;
            views.put_pbx_change(&PbxChangeRow {
                entry: position,
                serial: serial.clone(),
                kind: "added".into(),
                detail: added_detail(&entry.fact).unwrap_or_default(),
                operator: entry.operator.clone(),
                at: entry.at,
            })?;
            return Ok(Applied::Pbx(row));
        }
        Fact::PbxEdited { serial, change } => {
            let Some(mut row) = views.pbx_row(serial)? else {
                return Err(invalid(format!(
                    "{serial} edited, but it is not in the registry"
                )));
            };
            if change == &super::journal::PbxChange::default() {
                return Err(invalid(format!("an edit of {serial} that changes nothing")));
            }
            pbx_fields(
                change.customer.as_deref().unwrap_or(&row.customer),
                change.name.as_deref().unwrap_or(&row.name),
                change.model.as_deref().unwrap_or(&row.model),
                change.platform.as_deref().unwrap_or(&row.platform),
                None,
            )?;
            match (&change.policy, &change.values, &change.approval) {
                (None, None, None) => {}
                (Some(p), Some(v), Some(a)) => {
                    policy_fields(p, v)?;
                    validate::text("approval", a).map_err(|e| invalid(e.to_string()))?;
                    if a.trim().is_empty() {
                        return Err(invalid(format!(
                            "the policy of {serial} changed without an approval"
                        )));
                    }
                    row.policy.clone_from(p);
                    row.policy_values = serde_json::to_string(v).unwrap_or_default();
                }
                _ => {
                    return Err(invalid(format!(
                    "the policy of {serial} changed without its name, values and approval together"
                )))
                }
            }
            if let Some(v) = &change.customer {
                row.customer.clone_from(v);
            }
            if let Some(v) = &change.name {
                row.name.clone_from(v);
            }
            if let Some(v) = &change.model {
                row.model.clone_from(v);
            }
            if let Some(v) = &change.platform {
                row.platform.clone_from(v);
            }
            if row.storage > 0 && row.platform != "cloud" {
                return Err(invalid(format!(
                    "{serial} would have {} storage units on platform {}: storage is sold for Cloud only",
                    row.storage, row.platform
                )));
            }
            row.entry = position;
            views.put_pbx(&row)?;
            views.put_pbx_change(&PbxChangeRow {
                entry: position,
                serial: serial.clone(),
                kind: "edited".into(),
                detail: serde_json::to_string(change).unwrap_or_default(),
                operator: entry.operator.clone(),
                at: entry.at,
            })?;
        }
        Fact::Charges {
            serial,
            sequence,
            lines,
        } => {
            if views.license_action(serial, *sequence)?.is_none() {
                return Err(invalid(format!(
                    "charges for license {sequence} of {serial}, which is not in the ledger"
                )));
            }
            if lines.is_empty() || lines.len() > 4096 {
                return Err(invalid(format!(
                    "charges for {serial}:{sequence} with {} lines (1 to 4096)",
                    lines.len()
                )));
            }
            for (i, c) in lines.iter().enumerate() {
                for (what, v) in [
                    ("charge kind", &c.kind),
                    ("item", &c.item),
                    ("cycle", &c.cycle),
                ] {
                    validate::text(what, v).map_err(|e| invalid(e.to_string()))?;
                }
                if c.days > c.period_days || c.period_end.is_some_and(|e| e < c.period_start) {
                    return Err(invalid(format!(
                        "charge {i} of {serial}:{sequence} bills {} of {} days from {} to {:?}",
                        c.days, c.period_days, c.period_start, c.period_end
                    )));
                }
            }
            views.put_charge_lines(position, serial, *sequence, entry.at, lines)?;
        }
        Fact::NoticeSent {
            recipient,
            day,
            serials,
        } => {
            notice_fields(recipient, day)?;
            if serials.is_empty() || serials.len() > MAX_NOTICE_SERIALS {
                return Err(invalid(format!(
                    "a notice to {} listing {} PBXs (1 to {MAX_NOTICE_SERIALS})",
                    validate::shown(recipient),
                    serials.len()
                )));
            }
            if let Some(bad) = serials.iter().find(|s| !validate::is_sw_serial(s)) {
                return Err(invalid(format!(
                    "a notice listing `{}`, which is not a SW serial",
                    validate::shown(bad)
                )));
            }
            if views.notice_in_effect(recipient, day)? {
                return Err(invalid(format!(
                    "a second notice to {} for {day}: one mail per recipient per day",
                    validate::shown(recipient)
                )));
            }
            views.note_notice(recipient, day, true);
        }
        Fact::NoticeWithdrawn {
            recipient,
            day,
            reason,
        } => {
            notice_fields(recipient, day)?;
            validate::text("reason", reason).map_err(|e| invalid(e.to_string()))?;
            if !views.notice_in_effect(recipient, day)? {
                return Err(invalid(format!(
                    "the notice to {} for {day} withdrawn, but none is in effect",
                    validate::shown(recipient)
                )));
            }
            views.note_notice(recipient, day, false);
        }
        Fact::ActivationOpened {
            serial,
            code_digest,
            valid_until,
        } => {
            if views.pbx_row(serial)?.is_none() {
                return Err(invalid(format!(
                    "online activation opened for {}, which is not in the registry",
                    validate::shown(serial)
                )));
            }
            if *valid_until <= entry.at {
                return Err(invalid(format!(
                    "online activation of {serial} opened with a code that expired when it was made"
                )));
            }
            views.put_pbx_change(&PbxChangeRow {
                entry: position,
                serial: serial.clone(),
                kind: ACTIVATION.into(),
                detail: serde_json::json!({
                    "code_digest": hex::encode(code_digest),
                    "valid_until": valid_until,
                })
                .to_string(),
                operator: entry.operator.clone(),
                at: entry.at,
            })?;
        }
        Fact::Upgraded { schema, .. } => {
            if position != 2 {
                return Err(invalid(
                    "an upgrade entry after the second: a ledger continues an earlier one from its start only",
                ));
            }
            if !(1..=2).contains(schema) {
                return Err(invalid(format!(
                    "an upgrade from schema {schema}; ledgers before the journal had schema 1 or 2"
                )));
            }
            views.put_upgraded()?;
        }
    }
    Ok(Applied::Nothing)
}

/// The kind of a PBX's history row that a [`Fact::ActivationOpened`]
/// makes; its detail is `{"code_digest": HEX, "valid_until": SECONDS}`.
pub const ACTIVATION: &str = "activation";

/// The detail of a PBX's `added` history row, serialized straight to its
/// text. The text is the one a `serde_json::Value` object of the same
/// fields made before (its keys sorted, the policy's values too), byte for
/// byte: the views of existing ledgers are compared with it.
#[derive(Serialize)]
struct AddedDetail<'a> {
    allocated: bool,
    customer: &'a str,
    cycle: &'a str,
    model: &'a str,
    name: &'a str,
    platform: &'a str,
    policy: &'a str,
    profiles: &'a BTreeMap<String, u32>,
    storage: u32,
    values: SortedValues<'a>,
}

/// The detail text of a [`Fact::PbxAdded`] (`None` for other facts).
fn added_detail(fact: &Fact) -> Option<String> {
    let Fact::PbxAdded {
        allocated,
        customer,
        name,
        model,
        platform,
        cycle,
        profiles,
        storage,
        policy,
        values,
        ..
    } = fact
    else {
        return None;
    };
    serde_json::to_string(&AddedDetail {
        allocated: *allocated,
        customer,
        cycle,
        model,
        name,
        platform,
        policy,
        profiles,
        storage: *storage,
        values: SortedValues(values),
    })
    .ok()
}

/// Policy values with their keys in sorted order, as in a
/// `serde_json::Value` object.
struct SortedValues<'a>(&'a PolicyValues);

impl Serialize for SortedValues<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        // Every field named, so a new one cannot be left out unnoticed.
        let PolicyValues {
            lease,
            max_lease,
            renewal_window,
            check_interval,
            grace,
            after_grace,
            rollback_tolerance,
        } = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry("after_grace", after_grace)?;
        m.serialize_entry("check_interval", check_interval)?;
        m.serialize_entry("grace", grace)?;
        m.serialize_entry("lease", lease)?;
        m.serialize_entry("max_lease", max_lease)?;
        m.serialize_entry("renewal_window", renewal_window)?;
        m.serialize_entry("rollback_tolerance", rollback_tolerance)?;
        m.end()
    }
}

/// The charges view's row of line `line` of the [`Fact::Charges`] entry at
/// `position`.
#[must_use]
pub fn charge_row(
    position: u64,
    line: usize,
    serial: &str,
    sequence: u32,
    at: i64,
    c: &Charge,
) -> ChargeRow {
    ChargeRow {
        entry: position,
        line: u32::try_from(line).unwrap_or(u32::MAX),
        serial: serial.to_owned(),
        sequence,
        kind: c.kind.clone(),
        item: c.item.clone(),
        quantity: c.quantity,
        cycle: c.cycle.clone(),
        period_start: c.period_start,
        period_end: c.period_end,
        days: c.days,
        period_days: c.period_days,
        at,
    }
}

/// The text fields of a registry entry, and its platform and cycle names.
fn pbx_fields(
    customer: &str,
    name: &str,
    model: &str,
    platform: &str,
    cycle: Option<&str>,
) -> Result<(), FoldError> {
    for (what, v) in [("customer", customer), ("PBX name", name), ("model", model)] {
        validate::text(what, v).map_err(|e| invalid(e.to_string()))?;
    }
    if !matches!(platform, "hw" | "vm" | "cloud") {
        return Err(invalid(format!(
            "platform `{}` is not hw, vm or cloud",
            validate::shown(platform)
        )));
    }
    if let Some(c) = cycle {
        if !matches!(c, "monthly" | "yearly" | "5y" | "lifetime") {
            return Err(invalid(format!(
                "payment cycle `{}` is not monthly, yearly, 5y or lifetime",
                validate::shown(c)
            )));
        }
    }
    Ok(())
}

/// Most PBXs one notice lists (a bigger list is a vendor's whole base, not
/// a notice; the journal caps an entry's size anyway).
pub const MAX_NOTICE_SERIALS: usize = 10_000;

/// A notice's recipient (an address, `local@domain`) and day
/// (`YYYY-MM-DD`).
fn notice_fields(recipient: &str, day: &str) -> Result<(), FoldError> {
    validate::text("recipient", recipient).map_err(|e| invalid(e.to_string()))?;
    if !is_address(recipient) {
        return Err(invalid(format!(
            "notice recipient `{}` is not an e-mail address",
            validate::shown(recipient)
        )));
    }
    if !is_day(day) {
        return Err(invalid(format!(
            "notice day `{}` is not YYYY-MM-DD",
            validate::shown(day)
        )));
    }
    Ok(())
}

/// An e-mail address as tessera accepts one: `local@domain`, at most 254
/// bytes, no spaces, no control characters, no angle brackets or commas
/// (which would make one address several).
#[must_use]
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && s.len() <= 254
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>,;:\\\"()[]".contains(c))
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
}

/// A day as `YYYY-MM-DD` (a real date).
#[must_use]
pub fn is_day(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// Whether the notice of `day` for `recipient` is in effect after the
/// journal entries in `bodies` (in journal order; entries of other kinds
/// and other notices are passed over). How a backend answers
/// [`ViewStore::notice_in_effect`] from its journal.
///
/// # Errors
/// [`LedgerError::Damaged`] (through `damaged`) for a body that does not
/// decode.
pub(crate) fn notice_state<'b>(
    bodies: impl IntoIterator<Item = &'b [u8]>,
    recipient: &str,
    day: &str,
    damaged: impl Fn(String) -> LedgerError,
) -> Result<bool, LedgerError> {
    let mut in_effect = false;
    for body in bodies {
        let entry = Entry::decode(body).map_err(|e| damaged(format!("a journal entry: {e}")))?;
        match entry.fact {
            Fact::NoticeSent {
                recipient: r,
                day: d,
                ..
            } if r == recipient && d == day => in_effect = true,
            Fact::NoticeWithdrawn {
                recipient: r,
                day: d,
                ..
            } if r == recipient && d == day => in_effect = false,
            _ => {}
        }
    }
    Ok(in_effect)
}

/// What a backend searches its journal bodies for to find the notices of
/// `recipient`: the recipient as the CBOR text string the body holds
/// ([`notice_state`] then reads each body found).
#[must_use]
pub(crate) fn notice_needle(recipient: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(recipient.len() + 9);
    let _ = ciborium::into_writer(&recipient, &mut out);
    out
}

/// A recorded policy: a name and usable values.
fn policy_fields(name: &str, values: &PolicyValues) -> Result<(), FoldError> {
    validate::text("policy", name).map_err(|e| invalid(e.to_string()))?;
    if name.is_empty() {
        return Err(invalid("a policy without a name"));
    }
    if let Some(p) = values.problem() {
        return Err(invalid(format!("policy {name} is not usable: {p}")));
    }
    Ok(())
}

/// What allocating `serial` does: the year's counter moves to its number,
/// which must be higher than any allocated before, and the serial must be
/// unused.
fn allocate(views: &mut dyn ViewStore, position: u64, serial: &str) -> Result<(), FoldError> {
    let (year, number) = serial_parts(serial).ok_or_else(|| {
        invalid(format!(
            "allocated serial `{}` is not SW-YYYY-NNNNNN",
            validate::shown(serial)
        ))
    })?;
    let last = views.counter(year)?;
    if let Some(last) = last {
        if number <= last {
            return Err(invalid(format!(
                "{serial} allocated after number {last} of {year}: serials are never allocated twice"
            )));
        }
    }
    // The year's next free number, never a jump: every number skipped
    // must be in use already (a VM serial handed out by hand). Only the
    // counter carried over from a ledger of an earlier tessera may jump.
    let from = last.unwrap_or(0).saturating_add(1);
    for skipped in from..number {
        let s = format!("SW-{year:04}-{skipped:06}");
        if views.last_sequence(&s)?.is_none() && !views.serial_mapped(&s)? {
            if views.carry_over(position)? {
                break;
            }
            return Err(invalid(format!(
                "{serial} allocated after number {} of {year}, skipping {s}, which is not in use: an allocation takes the year's next free number (the serial counter was edited outside tessera?)",
                from - 1
            )));
        }
    }
    if views.last_sequence(serial)?.is_some() || views.serial_mapped(serial)? {
        return Err(invalid(format!("{serial} allocated although it is in use")));
    }
    views.put_counter(&CounterRow {
        year,
        last: number,
        entry: position,
    })?;
    Ok(())
}

/// The views built from the journal alone, in memory: what `ledger
/// verify` compares a backend's views with. Keeps the lookups the fold
/// needs and a digest of every row, not the rows.
#[derive(Debug, Default)]
pub struct MemoryViews {
    identity: Option<Identity>,
    last_sequence: HashMap<String, u32>,
    actions: HashMap<(String, u32), Action>,
    license_ids: HashSet<[u8; 16]>,
    idem_keys: HashSet<String>,
    hw: HashMap<String, String>,
    mapped: HashSet<String>,
    counters: HashMap<i32, u32>,
    schedules: HashMap<String, ScheduleRow>,
    replaced: HashSet<(String, u32)>,
    pbxs: HashMap<String, PbxRow>,
    /// The notices in effect: (recipient, day).
    notices: HashSet<(String, String)>,
    /// Entry 2 continues a ledger of an earlier tessera.
    upgraded: bool,
    /// The entries the first checkpoint covers (`None`: not known, the
    /// first transaction has not ended).
    first_checkpoint: Option<u64>,
    /// (view, key) → the row's place in `slots`.
    rows: HashMap<(View, RowKey), usize>,
    /// Per row: its digest and the entry that made it.
    slots: Vec<([u8; 32], u64)>,
}

impl MemoryViews {
    fn row(&mut self, row: ViewRow, entry: u64) {
        let value = (row.digest(), entry);
        match self.rows.entry((row.view(), row.row_key())) {
            std::collections::hash_map::Entry::Occupied(o) => {
                if let Some(slot) = self.slots.get_mut(*o.get()) {
                    *slot = value;
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(self.slots.len());
                self.slots.push(value);
            }
        }
    }

    /// Compares a backend's views, given row by row through `rows`, with
    /// these, built from a journal of `entries` entries. Returns the first
    /// difference, with the entry it points at: a row no entry made (the
    /// entry it claims, or the first entry after the journal's end when it
    /// claims one beyond: a cut-off end), a row that differs from what its
    /// entry made, or a row an entry made that is missing.
    ///
    /// # Errors
    /// Whatever `rows` returns.
    pub fn compare(
        &self,
        entries: u64,
        rows: impl FnOnce(&mut dyn FnMut(ViewRow) -> Result<(), LedgerError>) -> Result<(), LedgerError>,
    ) -> Result<Option<(u64, String)>, LedgerError> {
        let mut seen = vec![false; self.slots.len()];
        let mut first: Option<(u64, String)> = None;
        let mut note = |entry: u64, what: String| {
            if first.as_ref().is_none_or(|(e, _)| entry < *e) {
                first = Some((entry, what));
            }
        };
        rows(&mut |row: ViewRow| {
            let view = row.view();
            let key = (view, row.row_key());
            let shown = |k: &RowKey| validate::shown(&k.to_string());
            let place = self.rows.get(&key).copied();
            match place.and_then(|i| Some((i, *self.slots.get(i)?))) {
                None => {
                    let claimed = row.entry();
                    note(
                        claimed.min(entries.saturating_add(1)),
                        if claimed > entries {
                            format!(
                                "view {} holds {}, made by entry {claimed}, but the journal ends at entry {entries}: entries were cut off (or the row was added outside tessera)",
                                view.name(),
                                shown(&key.1)
                            )
                        } else {
                            format!(
                                "view {} holds {}, which no journal entry made (added outside tessera)",
                                view.name(),
                                shown(&key.1)
                            )
                        },
                    );
                }
                Some((i, (digest, entry))) => {
                    let was_seen = seen.get(i).copied().unwrap_or(false);
                    if was_seen {
                        note(
                            entry,
                            format!(
                                "view {} holds row {} twice (added outside tessera)",
                                view.name(),
                                shown(&key.1)
                            ),
                        );
                    } else if digest != row.digest() {
                        note(
                            entry,
                            format!(
                                "view {} row {} differs from what entry {entry} made (edited outside tessera)",
                                view.name(),
                                shown(&key.1)
                            ),
                        );
                    }
                    if let Some(s) = seen.get_mut(i) {
                        *s = true;
                    }
                }
            }
            Ok(())
        })?;
        if seen.iter().any(|s| !s) {
            // Rows an entry made that the backend lacks, in key order (the
            // first of several at one entry is named).
            let mut missing: Vec<(&(View, RowKey), u64)> = self
                .rows
                .iter()
                .filter(|(_, i)| !seen.get(**i).copied().unwrap_or(true))
                .filter_map(|(k, i)| Some((k, self.slots.get(*i)?.1)))
                .collect();
            missing.sort();
            for ((view, key), entry) in missing {
                note(
                    entry,
                    format!(
                        "view {} has no row {} although entry {entry} made it (deleted outside tessera)",
                        view.name(),
                        validate::shown(&key.to_string())
                    ),
                );
            }
        }
        Ok(first)
    }

    /// The identity folded so far.
    #[must_use]
    pub fn identity_row(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Where the ledger's first transaction ends: the entries its first
    /// checkpoint covers ([`ViewStore::carry_over`]).
    pub fn set_first_checkpoint(&mut self, entries: Option<u64>) {
        self.first_checkpoint = entries;
    }
}

impl ViewStore for MemoryViews {
    fn identity(&self) -> Result<Option<Identity>, LedgerError> {
        Ok(self.identity.clone())
    }
    fn last_sequence(&self, serial: &str) -> Result<Option<u32>, LedgerError> {
        Ok(self.last_sequence.get(serial).copied())
    }
    fn license_action(&self, serial: &str, sequence: u32) -> Result<Option<Action>, LedgerError> {
        Ok(self.actions.get(&(serial.to_owned(), sequence)).copied())
    }
    fn hw_owner(&self, hw: &str) -> Result<Option<String>, LedgerError> {
        Ok(self.hw.get(hw).cloned())
    }
    fn serial_mapped(&self, serial: &str) -> Result<bool, LedgerError> {
        Ok(self.mapped.contains(serial))
    }
    fn counter(&self, year: i32) -> Result<Option<u32>, LedgerError> {
        Ok(self.counters.get(&year).copied())
    }
    fn schedule_row(&self, serial: &str) -> Result<Option<ScheduleRow>, LedgerError> {
        Ok(self.schedules.get(serial).cloned())
    }
    fn binding_replaced(&self, serial: &str, sequence: u32) -> Result<bool, LedgerError> {
        Ok(self.replaced.contains(&(serial.to_owned(), sequence)))
    }
    fn pbx_row(&self, serial: &str) -> Result<Option<PbxRow>, LedgerError> {
        Ok(self.pbxs.get(serial).cloned())
    }
    fn notice_in_effect(&self, recipient: &str, day: &str) -> Result<bool, LedgerError> {
        Ok(self
            .notices
            .contains(&(recipient.to_owned(), day.to_owned())))
    }
    fn note_notice(&mut self, recipient: &str, day: &str, in_effect: bool) {
        let key = (recipient.to_owned(), day.to_owned());
        if in_effect {
            self.notices.insert(key);
        } else {
            self.notices.remove(&key);
        }
    }
    fn carry_over(&self, position: u64) -> Result<bool, LedgerError> {
        Ok(self.upgraded && self.first_checkpoint.is_none_or(|n| position <= n))
    }
    fn put_identity(&mut self, row: &Identity) -> Result<(), LedgerError> {
        self.identity = Some(row.clone());
        self.row(ViewRow::Identity(row.clone()), 1);
        Ok(())
    }
    fn put_license(&mut self, row: &LicenseRow) -> Result<(), LedgerError> {
        let taken = self.license_ids.contains(&row.license_id)
            || row
                .idem_key
                .as_ref()
                .is_some_and(|k| self.idem_keys.contains(k));
        if taken {
            return Err(LedgerError::Conflict {
                path: std::path::PathBuf::new(),
                reason: format!(
                    "the license id or bulk key of {}:{} is recorded already",
                    row.serial, row.sequence
                ),
            });
        }
        self.last_sequence.insert(row.serial.clone(), row.sequence);
        self.actions
            .insert((row.serial.clone(), row.sequence), row.action);
        self.license_ids.insert(row.license_id);
        if let Some(k) = &row.idem_key {
            self.idem_keys.insert(k.clone());
        }
        self.row(ViewRow::License(row.clone()), row.entry);
        Ok(())
    }
    fn put_hw(&mut self, row: &HwRow) -> Result<(), LedgerError> {
        self.hw.insert(row.hw_serial.clone(), row.serial.clone());
        self.mapped.insert(row.serial.clone());
        self.row(ViewRow::Hw(row.clone()), row.entry);
        Ok(())
    }
    fn put_counter(&mut self, row: &CounterRow) -> Result<(), LedgerError> {
        self.counters.insert(row.year, row.last);
        self.row(ViewRow::Counter(row.clone()), row.entry);
        Ok(())
    }
    fn put_schedule(&mut self, row: &ScheduleRow) -> Result<(), LedgerError> {
        self.schedules.insert(row.serial.clone(), row.clone());
        self.row(ViewRow::Schedule(row.clone()), row.entry);
        Ok(())
    }
    fn put_event(&mut self, row: &EventRow) -> Result<(), LedgerError> {
        self.row(ViewRow::Event(row.clone()), row.entry);
        Ok(())
    }
    fn put_replaced(&mut self, row: &ReplacedRow) -> Result<(), LedgerError> {
        self.replaced.insert((row.serial.clone(), row.sequence));
        self.row(ViewRow::Replaced(row.clone()), row.entry);
        Ok(())
    }
    fn put_pbx(&mut self, row: &PbxRow) -> Result<(), LedgerError> {
        self.pbxs.insert(row.serial.clone(), row.clone());
        self.row(ViewRow::Pbx(row.clone()), row.entry);
        Ok(())
    }
    fn put_pbx_change(&mut self, row: &PbxChangeRow) -> Result<(), LedgerError> {
        self.row(ViewRow::PbxChange(row.clone()), row.entry);
        Ok(())
    }
    fn put_charge(&mut self, row: &ChargeRow) -> Result<(), LedgerError> {
        self.row(ViewRow::Charge(row.clone()), row.entry);
        Ok(())
    }
    fn put_upgraded(&mut self) -> Result<(), LedgerError> {
        self.upgraded = true;
        Ok(())
    }
}

mod opt_hex {
    pub fn serialize<S: serde::Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => s.serialize_some(&hex::encode(k)),
            None => s.serialize_none(),
        }
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

#[cfg(test)]
mod tests;
