//! Billing quantities: what each charge-relevant event grants, in the
//! catalog's units, recorded in the ledger next to the license that
//! granted it ([`crate::ledger::Fact::Charges`]) and listed by `tessera
//! report billing`.
//!
//! | event | kind | item | quantity | period |
//! |---|---|---|---|---|
//! | first license of a PBX | `activation` | `profile:NAME` (count > 0), `service:NAME`, `storage` | users, 1, units | the term (a service: its start to the term end) |
//! | a change that adds users | `increase` | `profile:NAME` | users added | the change to the term end |
//! | a change that adds a service | `service` | `service:NAME` | 1 | its start to the term end |
//! | a change that adds storage | `storage` | `storage` | units added | the change to the term end |
//! | a renewal that starts the next term | `renewal` | every profile, service, `storage` | users, 1, units | the new term |
//! | a void | `credit` | each line the voided license charged | its quantity (credited: `report billing` shows it negative) | the voided line's |
//!
//! A void supersedes a license issued in error: every line that license
//! charged is credited in full, next to the void ([`credits`]); the
//! content the void restores was billed with its own license. When the
//! restored content enters a new term at the void (the void falls in the
//! renewal days), that term is charged as a renewal, next to the credit.
//!
//! Every line carries the days billed and the days of its whole term
//! (calendar days, UTC): the proration fraction is their quotient (a
//! service ordered in August 2020 on a May 2020 – May 2021 term: 273 of
//! 365 days). A lifetime PBX has no period end and 0 of 0 days (a
//! fraction of 1).

use tessera_verifier::encode::LicenseData;

use crate::calendar::{calendar_days, CycleName};
use crate::catalog::Catalog;
use crate::ledger::Charge;

/// The lines of one kind for a period: `start` (clamped to the term) to
/// the term end.
fn period(l: &LicenseData, start: i64) -> (i64, Option<i64>, u32, u32) {
    let term = &l.term;
    match term.end {
        Some(end) => {
            let start = start.max(term.start).min(end);
            let whole = u32::try_from(calendar_days(term.start, end).max(0)).unwrap_or(u32::MAX);
            let part = u32::try_from(calendar_days(start, end).max(0))
                .unwrap_or(u32::MAX)
                .min(whole);
            (start, Some(end), part, whole)
        }
        None => (start.max(term.start), None, 0, 0),
    }
}

fn line(l: &LicenseData, kind: &str, item: String, quantity: u32, start: i64) -> Charge {
    let (period_start, period_end, days, period_days) = period(l, start);
    Charge {
        kind: kind.to_owned(),
        item,
        quantity,
        cycle: CycleName::of(l.term.cycle).as_str().to_owned(),
        period_start,
        period_end,
        days,
        period_days,
    }
}

/// The charges of `new`, issued at `at`: against `previous` (the license
/// in force before a change), or as a first activation (`previous`
/// `None`), or as the start of a new term (`renewal`).
#[must_use]
pub fn charges(
    catalog: &Catalog,
    previous: Option<&LicenseData>,
    new: &LicenseData,
    at: i64,
    renewal: bool,
) -> Vec<Charge> {
    let mut out = Vec::new();
    let profile = |code| format!("profile:{}", catalog.profile_name(code));
    let service = |code| format!("service:{}", catalog.service_name(code));
    match (previous, renewal) {
        (_, true) | (None, false) => {
            let kind = if renewal { "renewal" } else { "activation" };
            for p in new.entitlements.profiles.iter().filter(|p| p.count > 0) {
                out.push(line(new, kind, profile(p.code), p.count, new.term.start));
            }
            for s in &new.services {
                let start = if renewal { new.term.start } else { s.start };
                out.push(line(new, kind, service(s.code), 1, start));
            }
            if new.entitlements.storage_units > 0 {
                out.push(line(
                    new,
                    kind,
                    "storage".into(),
                    new.entitlements.storage_units,
                    new.term.start,
                ));
            }
        }
        (Some(old), false) => {
            for p in &new.entitlements.profiles {
                let before = old
                    .entitlements
                    .profiles
                    .iter()
                    .find(|o| o.code == p.code)
                    .map_or(0, |o| o.count);
                if p.count > before {
                    out.push(line(new, "increase", profile(p.code), p.count - before, at));
                }
            }
            for s in &new.services {
                if !old.services.iter().any(|o| o.code == s.code) {
                    out.push(line(new, "service", service(s.code), 1, s.start));
                }
            }
            let (before, after) = (
                old.entitlements.storage_units,
                new.entitlements.storage_units,
            );
            if after > before {
                out.push(line(new, "storage", "storage".into(), after - before, at));
            }
        }
    }
    out
}

/// The credit lines of a void: one per line the voided license charged,
/// with its item, quantity and period (a `credit` reverses it).
#[must_use]
pub fn credits(voided: &[crate::ledger::ChargeRow]) -> Vec<Charge> {
    voided
        .iter()
        .map(|c| Charge {
            kind: CREDIT.to_owned(),
            item: c.item.clone(),
            quantity: c.quantity,
            cycle: c.cycle.clone(),
            period_start: c.period_start,
            period_end: c.period_end,
            days: c.days,
            period_days: c.period_days,
        })
        .collect()
}

/// The kind of a line that reverses a charge (a void's).
pub const CREDIT: &str = "credit";

/// The quantity a billing system books for a line: negative for a
/// [`CREDIT`].
#[must_use]
pub fn signed_quantity(kind: &str, quantity: u32) -> i64 {
    if kind == CREDIT {
        -i64::from(quantity)
    } else {
        i64::from(quantity)
    }
}

/// The proration fraction of a line: days billed over the days of its
/// whole term (1 for a lifetime line).
#[must_use]
pub fn fraction(days: u32, period_days: u32) -> f64 {
    if period_days == 0 {
        1.0
    } else {
        f64::from(days) / f64::from(period_days)
    }
}

#[cfg(test)]
mod tests;
