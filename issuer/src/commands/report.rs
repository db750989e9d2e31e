//! `tessera report overdue|expiring`: the vendor's daily notices, from
//! the ledger's issue times and lease / term ends.

use serde_json::json;

use super::{print, print_json, Ctx};
use crate::calendar::{days_between, rfc3339_unix, DAY};
use crate::cli::{KeyArgs, NotifyArgs, ReportCommand};
use crate::config::NotifyFlags;
use crate::error::Error;
use crate::ledger::SerialSummary;
use crate::notify::{self, Delivery};
use crate::registry::{standing, state_at, Standing, State};

fn model_of(models: &std::collections::HashMap<String, String>, s: &SerialSummary) -> String {
    crate::notify::model_of(models, s)
}

/// Why `--notify` refuses `--now` (or `TESSERA_NOW`), and what to do.
pub const NOTIFY_WITH_NOW: &str = "--notify cannot be combined with --now TIME (or TESSERA_NOW): the notice would be recorded in the ledger for that day and send real mail, and a later day's record would silence that day's real notice; to rehearse, run `tessera report overdue --now TIME` without --notify (it lists what the notice would say), or try --notify without --now on a copy of the ledger (`--ledger COPY`) against a test mail server";

/// `tessera report overdue --notify`: the library's [`notify::notify`],
/// printed.
fn notify_cmd(
    ctx: &Ctx,
    days: Option<u32>,
    json: bool,
    smtp: &NotifyArgs,
    key: &KeyArgs,
) -> Result<(), Error> {
    // A notice claims its day in the ledger for each recipient. Under a
    // rehearsal time that day is not today: a later day's claim would
    // silence that day's real notice, an earlier one records a notice
    // nobody sent that day. So the two never go together, whatever the
    // time given.
    if ctx.global.now.is_some() {
        return Err(Error::Usage(NOTIFY_WITH_NOW.into()));
    }
    let flags = NotifyFlags {
        smtp: smtp.smtp.clone(),
        port: smtp.smtp_port,
        tls: smtp.smtp_tls.clone(),
        from: smtp.from.clone(),
        to: smtp.to.clone(),
        username: smtp.smtp_user.clone(),
        password_file: smtp.smtp_password_file.clone(),
        ca: smtp.smtp_ca.clone(),
        days,
    };
    let settings = ctx.config.notify(&flags)?;
    let mail = settings.mail(ctx.config.env())?;
    mail.check()?;
    let operator = ctx.operator()?;
    let (signer, keyring) = super::load_keys(ctx, key)?;
    let mut ledger = ctx.ledger()?;
    ledger.set_keyring(&keyring);
    let report = notify::notify(
        &mut ledger,
        &signer,
        &operator,
        ctx.now.timestamp(),
        settings.days.value,
        &mail,
    )?;
    let failed = report.deliveries.iter().filter(|d| d.is_failure()).count();
    if json {
        print_json(&json!({
            "day": report.day,
            "days": report.min_days,
            "server": mail.server(),
            "overdue": report.overdue.iter().map(|r| json!({
                "serial": r.serial,
                "customer": r.customer,
                "pbx_name": r.pbx_name,
                "model": r.model,
                "days_since_renewal": r.days_since_renewal,
                "last_renewal": rfc3339_unix(r.last_renewal),
                "lease_end": rfc3339_unix(r.lease_end),
            })).collect::<Vec<_>>(),
            "sent": report.deliveries.iter().filter(|d| matches!(d, Delivery::Sent { .. })).map(Delivery::recipient).collect::<Vec<_>>(),
            "already_sent": report.deliveries.iter().filter(|d| matches!(d, Delivery::AlreadySent { .. })).map(Delivery::recipient).collect::<Vec<_>>(),
            "failed": report.deliveries.iter().filter_map(|d| match d {
                Delivery::Failed { recipient, error } => Some(json!({"recipient": recipient, "error": error, "retried_next_run": true})),
                Delivery::Unconfirmed { recipient, error } => Some(json!({"recipient": recipient, "error": error, "retried_next_run": false})),
                _ => None,
            }).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut text = format!(
            "overdue notice for {} ({} PBX(s) {} day(s) or more past their lease end without a renewal)\n",
            report.day,
            report.overdue.len(),
            report.min_days
        );
        if report.overdue.is_empty() {
            text.push_str("nothing overdue: no mail sent\n");
        }
        for d in &report.deliveries {
            let line = match d {
                Delivery::Sent { recipient } => format!("sent            {recipient} (via {})", mail.server()),
                Delivery::AlreadySent { recipient } => {
                    format!("already sent    {recipient} (today's notice went out before)")
                }
                Delivery::Failed { recipient, error } => {
                    format!("FAILED          {recipient}: {error} (the next run tries again)")
                }
                Delivery::Unconfirmed { recipient, error } => format!(
                    "UNCONFIRMED     {recipient}: {error} (it may have arrived; not sent again today)"
                ),
            };
            text.push_str(&line);
            text.push('\n');
        }
        print(&text)?;
    }
    if failed > 0 {
        return Err(Error::NoticeFailed {
            failed,
            total: report.deliveries.len(),
        });
    }
    Ok(())
}

/// The width of the STATE column of these serials.
fn registry_width(serials: &[SerialSummary], label: &dyn Fn(&SerialSummary) -> String) -> usize {
    let labels: Vec<String> = serials.iter().map(label).collect();
    crate::registry::state_width(labels.iter().map(String::as_str))
}

/// `tessera report ...`.
///
/// # Errors
/// [`Error::Ledger`], [`Error::Io`].
pub fn report(ctx: &Ctx, c: &ReportCommand) -> Result<(), Error> {
    if let ReportCommand::Overdue {
        notify: true,
        days,
        json,
        smtp,
        key,
        ..
    } = c
    {
        return notify_cmd(ctx, *days, *json, smtp, key);
    }
    let ledger = ctx.reader()?;
    if let ReportCommand::Billing {
        from,
        to,
        csv,
        json,
    } = c
    {
        return billing(&ledger, from, to, *csv, *json);
    }
    let now = ctx.now.timestamp();
    let all_serials = ledger.serials()?;
    let models: std::collections::HashMap<String, String> = ledger
        .queries()
        .pbxs()?
        .into_iter()
        .map(|p| (p.serial, p.model))
        .collect();
    let model = |s: &SerialSummary| model_of(&models, s);
    let state = |s: &SerialSummary| -> Result<Standing, Error> {
        Ok(standing(
            state_at(ledger.schedule(&s.serial)?, true, now),
            ledger.queries().replaced_bindings(&s.serial)?,
        ))
    };
    let mut states = std::collections::HashMap::new();
    for s in &all_serials {
        states.insert(s.serial.clone(), state(s)?);
    }
    let all = match c {
        ReportCommand::Overdue { all, .. } | ReportCommand::Expiring { all, .. } => *all,
        ReportCommand::Billing { .. } => false,
    };
    let serials: Vec<SerialSummary> = all_serials
        .iter()
        .filter(|s| all || states.get(&s.serial).is_some_and(|st| st.state.in_force()))
        .cloned()
        .collect();
    // The STATE column of --all: the state, `+replaced` after an RMA or a
    // migration (the same label as `ledger list` and `pbx list`).
    let label = |s: &SerialSummary| {
        states
            .get(&s.serial)
            .map_or_else(|| State::Active.as_str().to_owned(), Standing::label)
    };
    let with_standing = |s: &SerialSummary, mut v: serde_json::Value| {
        if let Some(st) = states.get(&s.serial) {
            st.put_json(&mut v);
        }
        v
    };
    let sw = registry_width(&serials, &label);
    let column = |s: &SerialSummary| {
        if all {
            format!("{:<sw$} ", label(s))
        } else {
            String::new()
        }
    };
    let header = if all {
        format!("{:<sw$} ", "STATE")
    } else {
        String::new()
    };
    match c {
        ReportCommand::Billing { .. } => Ok(()),
        ReportCommand::Overdue { json, days, .. } => {
            let min_days = days.unwrap_or(0);
            // A PBX whose lease ran out has not renewed since its latest
            // license: that license's issue time is its last successful
            // renewal. --days counts from the lease end (the days of grace
            // used), as the notice does.
            let mut overdue: Vec<(i64, &SerialSummary)> = serials
                .iter()
                .filter(|s| notify::is_overdue(s.latest.row.lease_end, now, min_days))
                .map(|s| (days_between(s.latest.row.issued_at, now), s))
                .collect();
            overdue.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.serial.cmp(&b.1.serial)));
            if *json {
                return print_json(&json!({
                    "at": rfc3339_unix(now),
                    "overdue": overdue.iter().map(|(days, s)| with_standing(s, json!({
                        "serial": s.serial,
                        "hw_serial": s.hw_serial,
                        "customer": s.latest.row.customer,
                        "pbx_name": s.latest.row.pbx_name,
                        "model": model(s),
                        "platform": s.latest.row.platform,
                        "days_since_renewal": days,
                        "last_renewal": rfc3339_unix(s.latest.row.issued_at),
                        "lease_end": rfc3339_unix(s.latest.row.lease_end),
                    }))).collect::<Vec<_>>(),
                }));
            }
            let mut text = format!(
                "PBXs that failed to renew, as of {}\n{:>5}  {header}{:<16} {:<14} {:<5} {:<20}  {}\n",
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
                    "{:>5}  {}{:<16} {:<14} {:<5} {:<20}  {} / {}\n",
                    days,
                    column(s),
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
        ReportCommand::Expiring { within, json, .. } => {
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
                    "expiring": expiring.iter().map(|(end, s)| with_standing(s, json!({
                        "serial": s.serial,
                        "customer": s.latest.row.customer,
                        "pbx_name": s.latest.row.pbx_name,
                        "model": model(s),
                        "platform": s.latest.row.platform,
                        "term_end": rfc3339_unix(*end),
                        "days_left": days_between(now, *end),
                    }))).collect::<Vec<_>>(),
                }));
            }
            let mut text = format!(
                "terms ending within {within} day(s) of {}\n{:>5}  {header}{:<16} {:<14} {:<5} {:<20}  {}\n",
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
                    "{:>5}  {}{:<16} {:<14} {:<5} {:<20}  {} / {}\n",
                    days_between(now, *end),
                    column(s),
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

/// The columns of `report billing` (documented in docs/operations.md).
pub const BILLING_COLUMNS: [&str; 15] = [
    "recorded_at",
    "customer",
    "serial",
    "model",
    "kind",
    "item",
    "quantity",
    "cycle",
    "period_start",
    "period_end",
    "days",
    "period_days",
    "fraction",
    "sequence",
    "credits_sequence",
];

/// `tessera report billing`.
fn billing(
    ledger: &crate::ledger::Ledger,
    from: &str,
    to: &str,
    csv: bool,
    json: bool,
) -> Result<(), Error> {
    let time = |flag: &str, v: &str| {
        crate::calendar::parse_time(v)
            .map(|t| t.timestamp())
            .map_err(|e| Error::Usage(format!("{flag}: {e}")))
    };
    let (start, end) = (time("--from", from)?, time("--to", to)?);
    if end <= start {
        return Err(Error::Usage(format!(
            "--to {to} is not after --from {from}: give the first day and the day after the last"
        )));
    }
    let q = ledger.queries();
    let mut rows: Vec<[String; 15]> = Vec::new();
    let mut names = std::collections::HashMap::new();
    for c in q.charges(start, end)? {
        if !names.contains_key(&c.serial) {
            let (customer, model) = match q.pbx(&c.serial)? {
                Some(p) => (p.customer, p.model),
                None => (
                    q.latest(&c.serial)?
                        .map(|l| l.row.customer)
                        .unwrap_or_default(),
                    String::new(),
                ),
            };
            names.insert(c.serial.clone(), (customer, model));
        }
        let (customer, model) = names.get(&c.serial).cloned().unwrap_or_default();
        // A credit reverses what the license its void names charged.
        let credits = if c.kind == crate::billing::CREDIT {
            q.events(&c.serial)?
                .iter()
                .find(|e| e.kind == "void" && e.sequence == c.sequence)
                .and_then(|e| e.detail.get("voided_sequence"))
                .and_then(serde_json::Value::as_u64)
                .map(|n| n.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        rows.push([
            rfc3339_unix(c.at),
            customer,
            c.serial.clone(),
            model,
            c.kind.clone(),
            c.item.clone(),
            crate::billing::signed_quantity(&c.kind, c.quantity).to_string(),
            c.cycle.clone(),
            rfc3339_unix(c.period_start),
            c.period_end.map(rfc3339_unix).unwrap_or_default(),
            c.days.to_string(),
            c.period_days.to_string(),
            format!("{:.6}", crate::billing::fraction(c.days, c.period_days)),
            c.sequence.to_string(),
            credits,
        ]);
    }
    if json {
        return print_json(&json!({
            "from": rfc3339_unix(start),
            "to": rfc3339_unix(end),
            "charges": rows.iter().map(|r| {
                let mut o = serde_json::Map::new();
                for (k, v) in BILLING_COLUMNS.iter().zip(r) {
                    let value = match *k {
                        "quantity" => json!(v.parse::<i64>().unwrap_or_default()),
                        "days" | "period_days" | "sequence" => {
                            json!(v.parse::<u64>().unwrap_or_default())
                        }
                        "credits_sequence" => json!(v.parse::<u64>().ok()),
                        "fraction" => json!(v.parse::<f64>().unwrap_or_default()),
                        "period_end" if v.is_empty() => serde_json::Value::Null,
                        _ => json!(v),
                    };
                    o.insert((*k).to_owned(), value);
                }
                serde_json::Value::Object(o)
            }).collect::<Vec<_>>(),
        }));
    }
    if csv {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let err = |e: ::csv::Error| Error::Usage(format!("CSV output failed: {e}"));
        w.write_record(BILLING_COLUMNS).map_err(err)?;
        for r in &rows {
            // Customer, model and item names come from orders and the
            // catalog: no cell runs as a spreadsheet formula.
            w.write_record(r.iter().enumerate().map(|(i, v)| {
                if matches!(
                    BILLING_COLUMNS.get(i),
                    Some(&("customer" | "model" | "item"))
                ) {
                    crate::output::csv_cell(v)
                } else {
                    v.clone()
                }
            }))
            .map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::Usage(format!("CSV output failed: {e}")))?;
        return print(&String::from_utf8_lossy(&bytes));
    }
    let mut text = format!(
        "charges recorded from {} to {}\n{:<16} {:<10} {:<26} {:>6} {:<8} {:<10} {:<10} {:>9}  {}\n",
        rfc3339_unix(start),
        rfc3339_unix(end),
        "SERIAL",
        "KIND",
        "ITEM",
        "QTY",
        "CYCLE",
        "FROM",
        "TO",
        "PRORATED",
        "CUSTOMER"
    );
    for r in &rows {
        let day = |s: &str| s.get(..10).unwrap_or("-").to_owned();
        text.push_str(&format!(
            "{:<16} {:<10} {:<26} {:>6} {:<8} {:<10} {:<10} {:>9}  {}\n",
            r[2],
            r[4],
            r[5],
            r[6],
            r[7],
            day(&r[8]),
            if r[9].is_empty() {
                "lifetime".to_owned()
            } else {
                day(&r[9])
            },
            format!("{}/{}", r[10], r[11]),
            r[1]
        ));
    }
    text.push_str(&format!("{} charge(s)\n", rows.len()));
    print(&text)
}
