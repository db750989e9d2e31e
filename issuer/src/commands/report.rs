//! `tessera report overdue|expiring`: the vendor's daily notices, from
//! the ledger's issue times and lease / term ends.

use serde_json::json;

use super::{print, print_json, Ctx};
use crate::calendar::{days_between, rfc3339_unix, DAY};
use crate::cli::ReportCommand;
use crate::error::Error;
use crate::ledger::SerialSummary;
use crate::order::Order;

fn model(s: &SerialSummary) -> String {
    Order::parse("ledger", &s.latest.row.order_json, true)
        .ok()
        .and_then(|o| o.model)
        .unwrap_or_else(|| "-".to_owned())
}

/// `tessera report ...`.
///
/// # Errors
/// [`Error::Ledger`], [`Error::Io`].
pub fn report(ctx: &Ctx, c: &ReportCommand) -> Result<(), Error> {
    let ledger = ctx.reader()?;
    let now = ctx.now.timestamp();
    let serials = ledger.serials()?;
    match c {
        ReportCommand::Overdue { json } => {
            // A PBX whose lease ran out has not renewed since its latest
            // license: that license's issue time is its last successful
            // renewal.
            let mut overdue: Vec<(i64, &SerialSummary)> = serials
                .iter()
                .filter(|s| s.latest.row.lease_end <= now)
                .map(|s| (days_between(s.latest.row.issued_at, now), s))
                .collect();
            overdue.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.serial.cmp(&b.1.serial)));
            if *json {
                return print_json(&json!({
                    "at": rfc3339_unix(now),
                    "overdue": overdue.iter().map(|(days, s)| json!({
                        "serial": s.serial,
                        "hw_serial": s.hw_serial,
                        "customer": s.latest.row.customer,
                        "pbx_name": s.latest.row.pbx_name,
                        "model": model(s),
                        "platform": s.latest.row.platform,
                        "days_since_renewal": days,
                        "last_renewal": rfc3339_unix(s.latest.row.issued_at),
                        "lease_end": rfc3339_unix(s.latest.row.lease_end),
                    })).collect::<Vec<_>>(),
                }));
            }
            let mut text = format!(
                "PBXs that failed to renew, as of {}\n{:>5}  {:<16} {:<14} {:<5} {:<20}  {}\n",
                rfc3339_unix(now),
                "DAYS",
                "SERIAL",
                "MODEL",
                "PLAT",
                "LEASE END",
                "CUSTOMER / PBX"
            );
            for (days, s) in &overdue {
                let r = &s.latest.row;
                text.push_str(&format!(
                    "{:>5}  {:<16} {:<14} {:<5} {:<20}  {} / {}\n",
                    days,
                    s.serial,
                    model(s),
                    r.platform,
                    rfc3339_unix(r.lease_end),
                    r.customer,
                    r.pbx_name
                ));
            }
            text.push_str(&format!(
                "{} of {} PBX(s) overdue (DAYS: days since the last successful renewal)\n",
                overdue.len(),
                serials.len()
            ));
            print(&text)
        }
        ReportCommand::Expiring { within, json } => {
            let until = now + i64::from(*within) * DAY;
            let mut expiring: Vec<(i64, &SerialSummary)> = serials
                .iter()
                .filter_map(|s| {
                    let end = s.latest.row.term_end?;
                    (end > now && end <= until).then_some((end, s))
                })
                .collect();
            expiring.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.serial.cmp(&b.1.serial)));
            if *json {
                return print_json(&json!({
                    "at": rfc3339_unix(now),
                    "within_days": within,
                    "expiring": expiring.iter().map(|(end, s)| json!({
                        "serial": s.serial,
                        "customer": s.latest.row.customer,
                        "pbx_name": s.latest.row.pbx_name,
                        "model": model(s),
                        "platform": s.latest.row.platform,
                        "term_end": rfc3339_unix(*end),
                        "days_left": days_between(now, *end),
                    })).collect::<Vec<_>>(),
                }));
            }
            let mut text = format!(
                "terms ending within {within} day(s) of {}\n{:>5}  {:<16} {:<14} {:<5} {:<20}  {}\n",
                rfc3339_unix(now),
                "DAYS",
                "SERIAL",
                "MODEL",
                "PLAT",
                "TERM END",
                "CUSTOMER / PBX"
            );
            for (end, s) in &expiring {
                let r = &s.latest.row;
                text.push_str(&format!(
                    "{:>5}  {:<16} {:<14} {:<5} {:<20}  {} / {}\n",
                    days_between(now, *end),
                    s.serial,
                    model(s),
                    r.platform,
                    rfc3339_unix(*end),
                    r.customer,
                    r.pbx_name
                ));
            }
            text.push_str(&format!("{} PBX(s)\n", expiring.len()));
            print(&text)
        }
    }
}
