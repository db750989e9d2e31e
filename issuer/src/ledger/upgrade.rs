//! `tessera ledger upgrade`: a ledger of an earlier tessera (schema 1 or
//! 2, before the journal) carried over into a new journal ledger.
//!
//! The old file is only read, in one snapshot. First its own hash chain
//! is checked as the earlier tessera did (every row's hash from the row
//! before, ids without a gap, the chain head, each row's columns against
//! its license bytes) and every license signature against the vendor's
//! keyring; a failure names the old row and nothing is written. Then its
//! facts are replayed, in the order of its rows, as journal entries of a
//! new ledger built under a temporary name (`Ledger::build`):
//!
//! 1. the genesis entry, then an [`Fact::Upgraded`] entry naming the old
//!    schema, row count and chain head;
//! 2. per license row: the HW → SW conversion the license names as its
//!    previous serial (from `hw_serials`), the serial allocation when the
//!    old counter had allocated it, the license with its order, bulk key
//!    and request key (`request_keys`), then the row's events
//!    (`events`), the bindings it replaced (`replaced_bindings`) and,
//!    after a serial's last license, its schedule (`schedules`);
//! 3. each year's counter where it stood (`serial_counter`), so no serial
//!    the old ledger handed out is allocated again.
//!
//! Every entry goes through the one fold ([`super::views::apply`]), so a
//! row that today's rules refuse (a control character in a customer
//! name, a HW serial that does not normalize ...) is refused naming the
//! row; the new ledger is verified as a whole before it appears.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use tessera_keys::Signer;
use tessera_verifier::KeyEntry;

use super::journal::{Action, Fact};
use super::sqlite::{classify, SqliteBackend};
use super::views::serial_parts;
use super::{CheckpointInfo, Ledger, LedgerError, Writer};
use crate::validate;

/// Domain tag of the earlier tessera's row hashes.
const OLD_HASH_TAG: &[u8] = b"tessera-ledger-v1\0";

/// The license rows' columns, in the order [`OldRow::read`] reads them.
const OLD_COLUMNS: &str = "id, serial, sequence, license_id, action, bytes, order_json, operator, \
     issued_at, customer, pbx_name, platform, lease_end, term_end, idem_key, prev_hash, hash";

/// What an upgrade carried over.
#[derive(Clone, Debug)]
pub struct UpgradeReport {
    /// The old ledger's schema.
    pub schema: u32,
    /// Its license rows.
    pub rows: u64,
    /// Its chain head (the hash of its last row; zeros when empty).
    pub old_head: [u8; 32],
    /// HW → SW conversions.
    pub conversions: u64,
    /// Serial allocations (with a conversion or on their own).
    pub allocations: u64,
    /// Lifecycle events.
    pub events: u64,
    /// Replaced bindings.
    pub replaced: u64,
    /// Schedules (set, and cancelled).
    pub schedules: u64,
    /// The new ledger's checkpoint (its entry count and head).
    pub checkpoint: CheckpointInfo,
}

/// Converts the ledger at `from` (schema 1 or 2) into a new ledger at
/// `to`: `vendor` is the new ledger's vendor id (the catalog's), `signer`
/// signs its checkpoint, `operator` is recorded for the upgrade and for
/// facts the old ledger kept no operator of (schedules, counters), `now`
/// is the upgrade's time, `keyring` verifies every old license.
///
/// # Errors
/// [`LedgerError::Exists`] when `to` exists, [`LedgerError::OldIntegrity`]
/// when the old chain does not hold (exit 4), [`LedgerError::Unconvertible`]
/// naming a row today's rules refuse or a license the keyring does not
/// verify, the errors of opening `from` and of [`Ledger::init`].
pub fn upgrade(
    from: &Path,
    to: &Path,
    vendor: &str,
    signer: &dyn Signer,
    operator: &str,
    now: i64,
    keyring: &[KeyEntry],
) -> Result<UpgradeReport, LedgerError> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(LedgerError::Exists(to.to_owned()));
    }
    let (conn, schema) = SqliteBackend::open_old(from)?;
    let old = Old {
        conn,
        path: from.to_owned(),
        schema,
    };
    let keys = super::history_keys(keyring);
    let (rows, old_head) = old.check_chain(&keys)?;
    let side = old.side_tables()?;
    let schema = u32::try_from(schema).unwrap_or(0);
    let (checkpoint, counts) = Ledger::build(
        to,
        vendor,
        signer,
        operator,
        now,
        |w| {
            w.push(
                now,
                Fact::Upgraded {
                    schema,
                    rows,
                    head: old_head,
                },
            )?;
            Replay {
                old: &old,
                side,
                operator,
                now,
                counts: Counts::default(),
            }
            .run(w)
        },
        Some(&keys),
    )?;
    Ok(UpgradeReport {
        schema,
        rows,
        old_head,
        conversions: counts.conversions,
        allocations: counts.allocations,
        events: counts.events,
        replaced: counts.replaced,
        schedules: counts.schedules,
        checkpoint,
    })
}

/// The old ledger, open in one read snapshot.
struct Old {
    conn: Connection,
    path: PathBuf,
    schema: i32,
}

/// One row of the old `licenses` table.
struct OldRow {
    id: i64,
    serial: String,
    sequence: i64,
    license_hex: String,
    action: String,
    bytes: Vec<u8>,
    order_json: String,
    operator: String,
    issued_at: i64,
    customer: String,
    pbx_name: String,
    platform: String,
    lease_end: i64,
    term_end: Option<i64>,
    idem_key: Option<String>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl OldRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            serial: r.get(1)?,
            sequence: r.get(2)?,
            license_hex: r.get(3)?,
            action: r.get(4)?,
            bytes: r.get(5)?,
            order_json: r.get(6)?,
            operator: r.get(7)?,
            issued_at: r.get(8)?,
            customer: r.get(9)?,
            pbx_name: r.get(10)?,
            platform: r.get(11)?,
            lease_end: r.get(12)?,
            term_end: r.get(13)?,
            idem_key: r.get(14)?,
            prev_hash: r.get(15)?,
            hash: r.get(16)?,
        })
    }

    /// The earlier tessera's row hash: SHA-256 over the tag, the previous
    /// hash and every field, length-prefixed, in a fixed order.
    fn hash(&self, prev: &[u8; 32], license_id: &[u8; 16]) -> [u8; 32] {
        fn field(h: &mut Sha256, bytes: &[u8]) {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        let mut h = Sha256::new();
        h.update(OLD_HASH_TAG);
        h.update(prev);
        h.update(self.id.to_be_bytes());
        field(&mut h, self.serial.as_bytes());
        h.update(
            u32::try_from(self.sequence)
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        h.update(license_id);
        field(&mut h, self.action.as_bytes());
        field(&mut h, &self.bytes);
        field(&mut h, self.order_json.as_bytes());
        field(&mut h, self.operator.as_bytes());
        h.update(self.issued_at.to_be_bytes());
        field(&mut h, self.customer.as_bytes());
        field(&mut h, self.pbx_name.as_bytes());
        field(&mut h, self.platform.as_bytes());
        h.update(self.lease_end.to_be_bytes());
        match self.term_end {
            Some(t) => {
                h.update([1]);
                h.update(t.to_be_bytes());
            }
            None => h.update([0]),
        }
        match &self.idem_key {
            Some(k) => {
                h.update([1]);
                field(&mut h, k.as_bytes());
            }
            None => h.update([0]),
        }
        h.finalize().into()
    }

    /// Whether the columns say what the license bytes say.
    fn matches_bytes(&self) -> Result<(), String> {
        let l = tessera_verifier::decode_license_unverified(&self.bytes)
            .map_err(|e| format!("its license bytes do not decode ({e})"))?;
        let platform = crate::calendar::PlatformName::of(l.platform()).as_str();
        let same = l.serial() == self.serial
            && i64::from(l.sequence()) == self.sequence
            && hex::encode(l.id()) == self.license_hex
            && l.issued_at() == self.issued_at
            && l.lease_end() == self.lease_end
            && l.term().end == self.term_end
            && l.customer() == self.customer
            && l.pbx_name() == self.pbx_name
            && platform == self.platform;
        if same {
            Ok(())
        } else {
            Err("its columns differ from its license bytes".into())
        }
    }

    fn name(&self) -> String {
        format!(
            "licenses row {} ({}:{})",
            self.id,
            validate::shown(&self.serial),
            self.sequence
        )
    }
}

/// A row of the old `events` table.
struct OldEvent {
    id: i64,
    kind: String,
    detail: String,
    operator: String,
    at: i64,
}

/// A row of the old `replaced_bindings` table.
struct OldReplaced {
    sequence: i64,
    device_keys: String,
    reason: String,
    at: i64,
}

/// The old side tables, keyed for the replay; each fact is taken out when
/// it is replayed, so what is left at the end belongs to no license.
#[derive(Default)]
struct Side {
    /// (SW serial, raw HW serial) → conversion time.
    hw: BTreeMap<(String, String), i64>,
    /// Year → last number handed out.
    counters: BTreeMap<i32, i64>,
    /// Serial → (stop, delete, created, cancelled).
    schedules: HashMap<String, (i64, i64, i64, Option<i64>)>,
    /// (serial, sequence) → its events, in id order.
    events: BTreeMap<(String, i64), Vec<OldEvent>>,
    /// (serial, replacing sequence) → the bindings it replaced.
    replaced: BTreeMap<(String, i64), Vec<OldReplaced>>,
    /// (serial, sequence) → device key (hex).
    request_keys: HashMap<(String, i64), String>,
    /// Serial → the id of its last license row.
    last_row: HashMap<String, i64>,
}

impl Old {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        |e| classify(&self.path, &e)
    }

    fn broken(&self, row: i64, reason: impl Into<String>) -> LedgerError {
        LedgerError::OldIntegrity {
            path: self.path.clone(),
            row,
            reason: reason.into(),
        }
    }

    fn refused(&self, what: String, reason: impl Into<String>) -> LedgerError {
        LedgerError::Unconvertible {
            path: self.path.clone(),
            what,
            reason: reason.into(),
        }
    }

    /// Calls `f` with every license row, in id order.
    fn each_row(
        &self,
        f: &mut dyn FnMut(OldRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {OLD_COLUMNS} FROM licenses ORDER BY id"))
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        while let Some(r) = rows.next().map_err(self.sql())? {
            f(OldRow::read(r).map_err(self.sql())?)?;
        }
        Ok(())
    }

    /// The earlier tessera's `ledger verify`, and every license signature:
    /// returns the row count and the chain head.
    fn check_chain(&self, keys: &[KeyEntry]) -> Result<(u64, [u8; 32]), LedgerError> {
        let mut prev = [0u8; 32];
        let mut expected_id = 1i64;
        let mut last_sequence: HashMap<String, i64> = HashMap::new();
        self.each_row(&mut |row| {
            if row.id != expected_id {
                return Err(self.broken(
                    expected_id,
                    format!("row {expected_id} is missing (the next row is {})", row.id),
                ));
            }
            if row.prev_hash != prev {
                return Err(self.broken(
                    row.id,
                    "its previous hash is not the hash of the row before (a row was deleted, inserted or reordered)",
                ));
            }
            let mut license_id = [0u8; 16];
            let id_ok = hex::decode_to_slice(&row.license_hex, &mut license_id).is_ok();
            let hash = row.hash(&prev, &license_id);
            if !id_ok || row.hash != hash {
                return Err(self.broken(
                    row.id,
                    "its content does not match its hash (the row was edited)",
                ));
            }
            row.matches_bytes()
                .map_err(|reason| self.broken(row.id, reason))?;
            if let Some(before) = last_sequence.insert(row.serial.clone(), row.sequence) {
                if before >= row.sequence {
                    return Err(self.broken(
                        row.id,
                        format!("sequence {} of its serial does not follow {before}", row.sequence),
                    ));
                }
            }
            if let Err(e) = tessera_verifier::decode_license(&row.bytes, keys) {
                return Err(self.refused(
                    row.name(),
                    format!(
                        "its license does not verify under the keyring ({e}); pass the keyring that holds every key this ledger's licenses were signed with"
                    ),
                ));
            }
            prev = hash;
            expected_id += 1;
            Ok(())
        })?;
        let count = expected_id - 1;
        let (head_rows, head_hash): (i64, Vec<u8>) = self
            .conn
            .query_row("SELECT rows, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(self.sql())?;
        if head_rows != count || head_hash != prev {
            return Err(self.broken(
                count.max(head_rows),
                format!(
                    "the chain head says {head_rows} rows, the table has {count} (rows were deleted or added outside tessera)"
                ),
            ));
        }
        Ok((u64::try_from(count).unwrap_or(0), prev))
    }

    /// Reads the side tables (those of schema 2 only when it has them).
    fn side_tables(&self) -> Result<Side, LedgerError> {
        let mut side = Side::default();
        self.each(
            "SELECT hw_serial, serial, created_at FROM hw_serials",
            |r| {
                side.hw.insert((r.get(1)?, r.get(0)?), r.get(2)?);
                Ok(())
            },
        )?;
        self.each("SELECT year, last FROM serial_counter", |r| {
            side.counters.insert(r.get(0)?, r.get(1)?);
            Ok(())
        })?;
        self.each(
            "SELECT serial, stop_at, delete_at, created_at, cancelled_at FROM schedules",
            |r| {
                let row = (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                side.schedules.insert(r.get(0)?, row);
                Ok(())
            },
        )?;
        self.each(
            "SELECT serial, MAX(id) FROM licenses GROUP BY serial",
            |r| {
                side.last_row.insert(r.get(0)?, r.get(1)?);
                Ok(())
            },
        )?;
        if self.schema < 2 {
            return Ok(side);
        }
        self.each(
            "SELECT id, serial, sequence, kind, detail, operator, at FROM events ORDER BY id",
            |r| {
                let event = OldEvent {
                    id: r.get(0)?,
                    kind: r.get(3)?,
                    detail: r.get(4)?,
                    operator: r.get(5)?,
                    at: r.get(6)?,
                };
                let key = (r.get(1)?, r.get(2)?);
                side.events.entry(key).or_default().push(event);
                Ok(())
            },
        )?;
        self.each(
            "SELECT serial, sequence, replaced_by, device_keys, reason, at FROM replaced_bindings ORDER BY serial, sequence",
            |r| {
                let binding = OldReplaced {
                    sequence: r.get(1)?,
                    device_keys: r.get(3)?,
                    reason: r.get(4)?,
                    at: r.get(5)?,
                };
                let key = (r.get(0)?, r.get(2)?);
                side.replaced.entry(key).or_default().push(binding);
                Ok(())
            },
        )?;
        self.each(
            "SELECT serial, sequence, device_key FROM request_keys",
            |r| {
                side.request_keys.insert((r.get(0)?, r.get(1)?), r.get(2)?);
                Ok(())
            },
        )?;
        Ok(side)
    }

    /// Calls `f` with every row `query` returns.
    fn each(
        &self,
        query: &str,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), LedgerError> {
        let mut stmt = self.conn.prepare(query).map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        while let Some(r) = rows.next().map_err(self.sql())? {
            f(r).map_err(self.sql())?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    conversions: u64,
    allocations: u64,
    events: u64,
    replaced: u64,
    schedules: u64,
}

/// The replay of the old ledger into a writer.
struct Replay<'a> {
    old: &'a Old,
    side: Side,
    operator: &'a str,
    now: i64,
    counts: Counts,
}

impl Replay<'_> {
    fn run(mut self, w: &mut Writer<'_>) -> Result<Counts, LedgerError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut counters: HashMap<i32, u32> = HashMap::new();
        let old = self.old;
        old.each_row(&mut |row| {
            let name = row.name();
            self.row(w, &row, &mut seen, &mut counters)
                .map_err(|e| refusal(old, name, e))
        })?;
        self.leftovers()?;
        // Every number the old counters handed out stays handed out.
        let counters_left: Vec<(i32, i64)> =
            self.side.counters.iter().map(|(y, l)| (*y, *l)).collect();
        for (year, last) in counters_left {
            let reached = counters.get(&year).copied().map_or(0, i64::from);
            if last > reached {
                let serial = format!("SW-{year:04}-{last:06}");
                w.push_as(self.operator, self.now, Fact::SerialAllocated { serial })
                    .map_err(|e| refusal(old, format!("serial_counter row {year}"), e))?;
                self.counts.allocations += 1;
            }
        }
        Ok(self.counts)
    }

    fn row(
        &mut self,
        w: &mut Writer<'_>,
        row: &OldRow,
        seen: &mut HashSet<String>,
        counters: &mut HashMap<i32, u32>,
    ) -> Result<(), LedgerError> {
        let refused = |reason: String| LedgerError::Conflict {
            path: self.old.path.clone(),
            reason,
        };
        let action = Action::parse(&row.action).ok_or_else(|| {
            refused(format!(
                "its action `{}` is unknown",
                validate::shown(&row.action)
            ))
        })?;
        let l = tessera_verifier::decode_license_unverified(&row.bytes)
            .map_err(|e| refused(format!("its license does not decode ({e})")))?;
        let serial = row.serial.clone();
        // The old counter handed this serial out, and it was not counted
        // yet: it is allocated here (with its conversion when it has one).
        let mut allocate = None;
        if seen.insert(serial.clone()) {
            if let Some((year, number)) = serial_parts(&serial) {
                let handed_out = self
                    .side
                    .counters
                    .get(&year)
                    .is_some_and(|last| i64::from(number) <= *last);
                let reached = counters.get(&year).copied().unwrap_or(0);
                if handed_out && number > reached {
                    allocate = Some((year, number));
                }
            }
        }
        if let Some(previous) = l.previous_serial() {
            if let Some(at) = self.side.hw.remove(&(serial.clone(), previous.to_owned())) {
                let hw = validate::hw_serial("HW serial", previous)
                    .map_err(|e| refused(e.to_string()))?;
                w.push_as(
                    &row.operator,
                    at,
                    Fact::HwSerialConverted {
                        hw_serial: hw,
                        serial: serial.clone(),
                        allocated: allocate.is_some(),
                    },
                )?;
                self.counts.conversions += 1;
                if let Some((year, number)) = allocate.take() {
                    counters.insert(year, number);
                    self.counts.allocations += 1;
                }
            }
        }
        if let Some((year, number)) = allocate {
            w.push_as(
                &row.operator,
                row.issued_at,
                Fact::SerialAllocated {
                    serial: serial.clone(),
                },
            )?;
            counters.insert(year, number);
            self.counts.allocations += 1;
        }
        let request_key = self
            .side
            .request_keys
            .remove(&(serial.clone(), row.sequence))
            .map(|hex_key| {
                let mut key = [0u8; 32];
                hex::decode_to_slice(&hex_key, &mut key)
                    .map(|()| key)
                    .map_err(|_| refused("its request key is not 64 hex digits".into()))
            })
            .transpose()?;
        w.push_as(
            &row.operator,
            row.issued_at,
            Fact::License {
                action,
                bytes: row.bytes.clone(),
                order: row.order_json.clone(),
                idem_key: row.idem_key.clone(),
                request_key,
            },
        )?;
        let sequence = u32::try_from(row.sequence).unwrap_or(u32::MAX);
        for e in self
            .side
            .events
            .remove(&(serial.clone(), row.sequence))
            .unwrap_or_default()
        {
            w.push_as(
                &e.operator,
                e.at,
                Fact::Event {
                    serial: serial.clone(),
                    sequence,
                    event: e.kind,
                    detail: e.detail,
                },
            )?;
            self.counts.events += 1;
        }
        for b in self
            .side
            .replaced
            .remove(&(serial.clone(), row.sequence))
            .unwrap_or_default()
        {
            let device_keys: Vec<String> = serde_json::from_str(&b.device_keys).map_err(|_| {
                refused(format!(
                    "the device keys of the binding of license {} it replaced are not a JSON list of strings",
                    b.sequence
                ))
            })?;
            w.push_as(
                &row.operator,
                b.at,
                Fact::BindingReplaced {
                    serial: serial.clone(),
                    sequence: u32::try_from(b.sequence).unwrap_or(u32::MAX),
                    replaced_by: sequence,
                    device_keys,
                    reason: b.reason,
                },
            )?;
            self.counts.replaced += 1;
        }
        if self.side.last_row.get(&serial) == Some(&row.id) {
            if let Some((stop_at, delete_at, created_at, cancelled_at)) =
                self.side.schedules.remove(&serial)
            {
                w.push_as(
                    self.operator,
                    created_at,
                    Fact::ScheduleSet {
                        serial: serial.clone(),
                        stop_at,
                        delete_at,
                    },
                )?;
                self.counts.schedules += 1;
                if let Some(at) = cancelled_at {
                    w.push_as(self.operator, at, Fact::ScheduleCancelled { serial })?;
                }
            }
        }
        Ok(())
    }

    /// Refuses side-table rows that belong to no license row.
    fn leftovers(&self) -> Result<(), LedgerError> {
        let old = self.old;
        let none = "it belongs to no license of the old ledger (the earlier tessera never wrote such a row)";
        if let Some(((serial, hw), _)) = self.side.hw.iter().next() {
            return Err(old.refused(
                format!(
                    "hw_serials row {} → {}",
                    validate::shown(hw),
                    validate::shown(serial)
                ),
                format!(
                    "no license of {} names that HW serial",
                    validate::shown(serial)
                ),
            ));
        }
        if let Some(serial) = self.side.schedules.keys().next() {
            return Err(old.refused(format!("schedules row {}", validate::shown(serial)), none));
        }
        if let Some(((serial, sequence), events)) = self.side.events.iter().next() {
            let id = events.first().map_or(0, |e| e.id);
            return Err(old.refused(
                format!("events row {id} ({}:{sequence})", validate::shown(serial)),
                none,
            ));
        }
        if let Some(((serial, by), _)) = self.side.replaced.iter().next() {
            return Err(old.refused(
                format!(
                    "replaced_bindings row of {} replaced by {by}",
                    validate::shown(serial)
                ),
                none,
            ));
        }
        if let Some((serial, sequence)) = self.side.request_keys.keys().next() {
            return Err(old.refused(
                format!("request_keys row {}:{sequence}", validate::shown(serial)),
                none,
            ));
        }
        Ok(())
    }
}

/// A fact of the old ledger the new one refuses, named by its old row.
fn refusal(old: &Old, what: String, e: LedgerError) -> LedgerError {
    match e {
        LedgerError::Conflict { reason, .. } => old.refused(what, reason),
        other => other,
    }
}

#[cfg(test)]
mod tests;
