//! `tessera pbx add|list|show|edit|activation`: the PBX registry.

use std::collections::BTreeMap;

use serde_json::json;

use super::session::Session;
use super::{print, print_json, Ctx};
use crate::calendar::{format_duration, rfc3339_unix};
use crate::cli::{PbxActivationArgs, PbxAddArgs, PbxCommand, PbxEditArgs, StateArg};
use crate::error::Error;
use crate::ledger::{Ledger, PbxChange, PbxRow, Queries};
use crate::output::note;
use crate::registry::{self, NewPbx, Standing, State};

/// `tessera pbx ...`.
///
/// # Errors
/// [`Error::Usage`], [`Error::Policy`], [`Error::Ledger`], [`Error::Key`].
pub fn pbx(ctx: &Ctx, c: &PbxCommand) -> Result<(), Error> {
    match c {
        PbxCommand::Add(a) => add(ctx, a),
        PbxCommand::Edit(a) => edit(ctx, a),
        PbxCommand::Activation(a) => activation(ctx, a),
        PbxCommand::List {
            customer,
            state,
            platform,
            json,
            csv,
        } => {
            let ledger = ctx.reader()?;
            let catalog = ctx.catalog()?;
            let now = ctx.now.timestamp();
            let mut rows = Vec::new();
            for row in ledger.queries().pbxs()? {
                let st = registry::standing_of(ledger.queries(), &row.serial, now)?;
                let wanted = customer.as_ref().is_none_or(|c| *c == row.customer)
                    && platform.is_none_or(|p| {
                        crate::calendar::PlatformName::of(p.platform()).as_str() == row.platform
                    })
                    && (state.is_empty() || state.iter().any(|s| state_holds(*s, &st)));
                if wanted {
                    let licensed = registry::licensed(ledger.queries(), &catalog, &row.serial)?;
                    rows.push(Listed { row, st, licensed });
                }
            }
            list(&rows, *json, *csv)
        }
        PbxCommand::Show { serial, json } => {
            let ledger = ctx.reader()?;
            show(ctx, &ledger, serial, *json)
        }
    }
}

/// Whether a `--state` value holds for a PBX of this standing.
fn state_holds(s: StateArg, st: &Standing) -> bool {
    match s {
        StateArg::Registered => st.state == State::Registered,
        StateArg::Active => st.state == State::Active,
        StateArg::Stopped => st.state == State::Stopped,
        StateArg::Deleted => st.state == State::Deleted,
        StateArg::Replaced => st.replaced.is_some(),
    }
}

/// `--profile CODE=COUNT` values.
fn profiles(args: &[String]) -> Result<BTreeMap<String, u32>, Error> {
    let mut out = BTreeMap::new();
    for a in args {
        let (name, count) = a.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "--profile `{}`: write CODE=COUNT, e.g. --profile PBX-BASIC=20",
                crate::validate::shown(a)
            ))
        })?;
        let count: u32 = count.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "--profile {}: `{}` is not a count (0 to 4294967295)",
                crate::validate::shown(name),
                crate::validate::shown(count)
            ))
        })?;
        if out.insert(name.trim().to_owned(), count).is_some() {
            return Err(Error::Usage(format!(
                "--profile {} is given twice",
                crate::validate::shown(name)
            )));
        }
    }
    Ok(out)
}

fn add(ctx: &Ctx, a: &PbxAddArgs) -> Result<(), Error> {
    let (mut session, new) = Session::open(ctx, &a.key, || {
        Ok(NewPbx {
            customer: a.customer.clone(),
            name: a.name.clone(),
            model: a.model.clone(),
            platform: a.platform.platform(),
            cycle: a.cycle.cycle(),
            profiles: profiles(&a.profiles)?,
            storage: a.storage,
            policy: a.policy.clone(),
        })
    })?;
    let at = ctx.now.timestamp();
    let (row, hw) = session.commit(|w, issuer| {
        let (serial, hw) = match &a.hw_serial {
            Some(hw) => {
                let serial = registry::add_appliance(w, issuer.catalog, &new, hw, at)?;
                let hw = w.hw_serial_of(&serial)?;
                (serial, hw)
            }
            None => {
                if !a.again {
                    registry::refuse_retry(w, &new)?;
                }
                (registry::add(w, issuer.catalog, &new, None, at)?, None)
            }
        };
        let row = w
            .pbx(&serial)?
            .ok_or_else(|| Error::Usage(format!("{serial} was not recorded")))?;
        Ok((row, hw))
    })?;
    if a.json {
        return print_json(&json!({
            "serial": row.serial,
            "hw_serial": hw,
            "pbx": registry::PbxView::of(&row, None),
        }));
    }
    note(&format!(
        "added {} ({} / {}, {} {}), policy {}{}",
        row.serial,
        row.customer,
        row.name,
        row.platform,
        row.cycle,
        row.policy,
        hw.map(|h| format!("; HW serial {h} activates as this PBX"))
            .unwrap_or_default()
    ));
    print(&format!("{}\n", row.serial))
}

/// Why `pbx activation` refuses a rehearsal time ahead of the clock.
const ACTIVATION_AHEAD: &str = "the rehearsal time (--now TIME or TESSERA_NOW) is ahead of the clock: a code's validity counts from it, so the ledger would record a code that stays valid longer than --valid-days from today (up to years); open codes without --now";

fn activation(ctx: &Ctx, a: &PbxActivationArgs) -> Result<(), Error> {
    // A code lives at most --valid-days from the day it is handed out;
    // a rehearsal time in the past only shortens that.
    if ctx.global.now.is_some() && ctx.now > chrono::Utc::now() {
        return Err(Error::Usage(ACTIVATION_AHEAD.into()));
    }
    let (mut session, ()) = Session::open(ctx, &a.key, || Ok(()))?;
    let opened =
        session.commit(|w, _| crate::activation::open(w, &a.serial, a.valid_days, ctx.now))?;
    let until = rfc3339_unix(opened.valid_until);
    if a.json {
        return print_json(&json!({
            "serial": opened.serial,
            "hw_serial": opened.hw_serial,
            "activation_code": opened.code.to_string(),
            "valid_until": until,
        }));
    }
    note(&format!(
        "online activation of {} opened until {until}; give the site the lines below for its agent.toml (the code is shown only now: the ledger keeps its digest); running this again replaces the code",
        opened.serial
    ));
    print(&opened.agent_toml())
}

fn edit(ctx: &Ctx, a: &PbxEditArgs) -> Result<(), Error> {
    if a.policy.is_none() && a.name.is_none() && a.customer.is_none() {
        return Err(Error::Usage(
            "nothing to change: give --policy NAME --approval REF, --name or --customer".into(),
        ));
    }
    if a.approval.is_some() && a.policy.is_none() {
        return Err(Error::Usage(
            "--approval approves a policy change: give --policy NAME with it".into(),
        ));
    }
    for (what, v) in [("--name", &a.name), ("--customer", &a.customer)] {
        if let Some(v) = v {
            crate::validate::text(what, v)?;
        }
    }
    let (mut session, ()) = Session::open(ctx, &a.key, || Ok(()))?;
    let at = ctx.now.timestamp();
    let row = session.commit(|w, issuer| {
        let serial = crate::lifecycle::resolve_known_serial(w, &a.serial)?;
        let record = crate::issuance::in_force(w, &serial)?;
        let licensed = record
            .as_ref()
            .map(|r| registry::Licensed::of(r, issuer.catalog))
            .transpose()?;
        let current = record.map(|r| (crate::issuance::decode_data(&r), r.row.order_json.clone()));
        let current = match current {
            Some((d, o)) => Some((d?, o)),
            None => None,
        };
        let row = registry::entry_for(
            w,
            issuer.catalog,
            &serial,
            current.as_ref().map(|c| &c.0),
            current.as_ref().map(|c| c.1.as_str()),
            at,
        )?;
        if let Some(p) = &a.policy {
            registry::change_policy(w, issuer.catalog, &row, p, a.approval.as_deref(), at)?;
        }
        let change = PbxChange {
            name: a.name.clone().filter(|n| *n != row.name),
            customer: a.customer.clone().filter(|c| *c != row.customer),
            ..PbxChange::default()
        };
        if change != PbxChange::default() {
            w.edit_pbx(&serial, change, at)?;
        }
        let row = w
            .pbx(&serial)?
            .ok_or_else(|| Error::Usage(format!("{serial} is not in the registry")))?;
        Ok((row, licensed))
    })?;
    let (row, licensed) = row;
    if a.json {
        return print_json(&json!({ "pbx": registry::PbxView::of(&row, licensed.as_ref()) }));
    }
    note(&format!(
        "{}: policy {} ({}); the next license of the PBX carries it",
        row.serial,
        row.policy,
        row.values().map(|v| v.describe()).unwrap_or_default()
    ));
    Ok(())
}

/// A PBX `pbx list` lists: its entry, where it stands, and the counts of
/// its license in force.
struct Listed {
    row: PbxRow,
    st: Standing,
    licensed: Option<registry::Licensed>,
}

/// Profile counts as one cell: `NAME=COUNT NAME=COUNT`.
fn counts_cell(counts: &BTreeMap<String, u32>) -> String {
    counts
        .iter()
        .map(|(n, c)| format!("{n}={c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether two sets of profile counts sell the same users: names
/// compared without regard to case (`pbx add` keeps them as typed), an
/// absent profile the same as zero.
fn same_counts(a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>) -> bool {
    let norm = |m: &BTreeMap<String, u32>| -> BTreeMap<String, u32> {
        m.iter()
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| (n.to_uppercase(), *c))
            .collect()
    };
    norm(a) == norm(b)
}

fn list(rows: &[Listed], json: bool, csv: bool) -> Result<(), Error> {
    if json {
        return print_json(&serde_json::Value::Array(
            rows.iter()
                .map(
                    |Listed {
                         row: r,
                         st,
                         licensed,
                     }| {
                        let mut v =
                            serde_json::to_value(registry::PbxView::of(r, licensed.as_ref()))
                                .unwrap_or_default();
                        st.put_json(&mut v);
                        v["added_at"] = json!(rfc3339_unix(r.created_at));
                        v
                    },
                )
                .collect(),
        ));
    }
    if csv {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        let err = |e: ::csv::Error| Error::Usage(format!("CSV output failed: {e}"));
        w.write_record([
            "serial",
            "state",
            "customer",
            "name",
            "model",
            "platform",
            "cycle",
            "profiles",
            "storage",
            "policy",
            "added_at",
            "replaced_at",
            "replaced_reason",
            "license_sequence",
            "entered_profiles",
            "entered_storage",
        ])
        .map_err(err)?;
        // Customer, name, model and the catalog's names come from orders
        // and partners' files: no cell runs as a spreadsheet formula.
        let cell = crate::output::csv_cell;
        for Listed {
            row: r,
            st,
            licensed,
        } in rows
        {
            let entered = counts_cell(&r.profile_counts());
            let (profiles, storage) = match licensed {
                Some(l) => (counts_cell(&l.profiles), l.storage),
                None => (entered.clone(), r.storage),
            };
            w.write_record([
                cell(&r.serial),
                st.state.as_str().to_owned(),
                cell(&r.customer),
                cell(&r.name),
                cell(&r.model),
                cell(&r.platform),
                cell(&r.cycle),
                cell(&profiles),
                storage.to_string(),
                cell(&r.policy),
                rfc3339_unix(r.created_at),
                st.replaced_at().unwrap_or_default(),
                cell(st.replaced_reason().unwrap_or_default()),
                licensed
                    .as_ref()
                    .map(|l| l.sequence.to_string())
                    .unwrap_or_default(),
                cell(&entered),
                r.storage.to_string(),
            ])
            .map_err(err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::Usage(format!("CSV output failed: {e}")))?;
        return print(&String::from_utf8_lossy(&bytes));
    }
    let labels: Vec<String> = rows.iter().map(|l| l.st.label()).collect();
    let sw = registry::state_width(labels.iter().map(String::as_str)).max(10);
    let mut text = format!(
        "{:<16} {:<sw$} {:<5} {:<8} {:<14} {:<22} {}\n",
        "SERIAL", "STATE", "PLAT", "CYCLE", "MODEL", "POLICY", "CUSTOMER / PBX"
    );
    for (Listed { row: r, .. }, label) in rows.iter().zip(&labels) {
        text.push_str(&format!(
            "{:<16} {:<sw$} {:<5} {:<8} {:<14} {:<22} {} / {}\n",
            r.serial,
            label,
            r.platform,
            r.cycle,
            if r.model.is_empty() { "-" } else { &r.model },
            r.policy,
            r.customer,
            r.name
        ));
    }
    text.push_str(&format!("{} PBX(s)\n", rows.len()));
    print(&text)
}

fn show(ctx: &Ctx, ledger: &Ledger, serial: &str, json: bool) -> Result<(), Error> {
    let arg = crate::validate::serial_arg("serial", serial)?;
    let serial = if crate::validate::is_sw_serial(&arg) {
        arg
    } else {
        ledger.sw_serial_of(&arg)?.unwrap_or(arg)
    };
    let q: &dyn Queries = ledger.queries();
    let Some(row) = q.pbx(&serial)? else {
        let hint = if q.latest(&serial)?.is_some() {
            "it was licensed before the registry existed: its next command (renew, modify, replace, share, or `tessera pbx edit`) enters it"
        } else {
            "`tessera pbx list` shows the PBXs; `tessera pbx add` adds one"
        };
        return Err(Error::Usage(format!(
            "{serial} is not in the PBX registry of {}; {hint}",
            ledger.path().display()
        )));
    };
    let now = ctx.now.timestamp();
    let st = registry::state_of(q, &serial, now)?;
    let bindings = q.replaced_bindings(&serial)?;
    let standing = registry::standing(st, bindings.clone());
    let schedule = q.pending_schedule(&serial)?;
    let catalog = ctx.catalog()?;
    let drift = registry::policy_drift(&catalog, &row);
    let changes = q.pbx_changes(&serial)?;
    let latest = q.latest(&serial)?;
    let licensed = registry::licensed(q, &catalog, &serial)?;
    if json {
        let mut v = json!({
            "pbx": registry::PbxView::of(&row, licensed.as_ref()),
            "added_at": rfc3339_unix(row.created_at),
            "stop_at": schedule.map(|z| rfc3339_unix(z.stop_at)),
            "delete_at": schedule.map(|z| rfc3339_unix(z.delete_at)),
            "latest_sequence": latest.as_ref().map(|l| l.row.sequence),
            "catalog_policy_differs": drift,
            "history": changes_json(&changes),
            "replaced_bindings": bindings.iter().map(|b| json!({
                "sequence": b.sequence,
                "replaced_by": b.replaced_by,
                "reason": b.reason,
                "at": rfc3339_unix(b.at),
            })).collect::<Vec<_>>(),
        });
        standing.put_json(&mut v);
        return print_json(&v);
    }
    let mut text = format!("{}\n", row.serial);
    text.push_str(&format!("  state       {}", standing.label()));
    if let Some(z) = schedule {
        text.push_str(&format!(
            " (stop {}, deletion {} unless a user license is added back)",
            rfc3339_unix(z.stop_at),
            rfc3339_unix(z.delete_at)
        ));
    }
    text.push('\n');
    for b in &bindings {
        text.push_str(&format!(
            "  replaced    the binding of license {} on {} ({}), by license {}: that device is never renewed again\n",
            b.sequence,
            rfc3339_unix(b.at),
            b.reason,
            b.replaced_by
        ));
    }
    text.push_str(&format!(
        "  customer    {}\n  pbx         {}\n  model       {}\n  platform    {}\n  cycle       {}\n",
        row.customer,
        row.name,
        if row.model.is_empty() { "-" } else { &row.model },
        row.platform,
        row.cycle
    ));
    let entered = row.profile_counts();
    match &licensed {
        Some(l) => {
            for (n, c) in &l.profiles {
                text.push_str(&format!("  profile     {n} = {c}\n"));
            }
            if l.storage > 0 {
                text.push_str(&format!("  storage     {} unit(s)\n", l.storage));
            }
            if !same_counts(&l.profiles, &entered) || l.storage != row.storage {
                // What the registry kept from the entry, said as such.
                let mut was = entered
                    .iter()
                    .map(|(n, c)| format!("{n} = {c}"))
                    .collect::<Vec<_>>();
                if l.storage != row.storage {
                    was.push(format!("storage {} unit(s)", row.storage));
                }
                text.push_str(&format!(
                    "  entered     {} (as entered; license {} in force has the counts above)\n",
                    was.join(", "),
                    l.sequence
                ));
            }
        }
        None => {
            for (n, c) in &entered {
                text.push_str(&format!(
                    "  profile     {n} = {c} (as entered: no license in force)\n"
                ));
            }
            if row.storage > 0 {
                text.push_str(&format!(
                    "  storage     {} unit(s) (as entered: no license in force)\n",
                    row.storage
                ));
            }
        }
    }
    text.push_str(&format!("  policy      {}", row.policy));
    if let Some(v) = row.values() {
        text.push_str(&format!(": {}", v.describe()));
    }
    text.push('\n');
    match &drift {
        None => {}
        Some(lines) => {
            text.push_str(&format!(
                "  catalog     its policy {} differs from what this PBX recorded (the recorded values stay in force; `tessera pbx edit {} --policy {} --approval REF` records the catalog's):\n",
                row.policy, row.serial, row.policy
            ));
            for l in lines {
                text.push_str(&format!("                {l}\n"));
            }
        }
    }
    if let Some(l) = &latest {
        text.push_str(&format!(
            "  license     sequence {} ({}), lease end {}\n",
            l.row.sequence,
            l.row.action.as_str(),
            rfc3339_unix(l.row.lease_end)
        ));
    }
    text.push_str("  history\n");
    for c in &changes {
        text.push_str(&format!(
            "    {}  {}  {}\n",
            rfc3339_unix(c.at),
            c.operator,
            describe_change(c.kind.as_str(), &c.detail)
        ));
    }
    print(&text)
}

/// A PBX's registry history as JSON (`pbx show`, `ledger show`).
#[must_use]
pub fn changes_json(changes: &[crate::ledger::PbxChangeRow]) -> serde_json::Value {
    serde_json::Value::Array(
        changes
            .iter()
            .map(|c| {
                let mut detail =
                    serde_json::from_str::<serde_json::Value>(&c.detail).unwrap_or_default();
                if c.kind == crate::ledger::ACTIVATION {
                    // Until when the code works; nothing of the code.
                    if let Some(d) = detail.as_object_mut() {
                        d.remove("code_digest");
                        if let Some(t) = d.get("valid_until").and_then(serde_json::Value::as_i64) {
                            d.insert("valid_until".into(), json!(rfc3339_unix(t)));
                        }
                    }
                }
                json!({
                    "entry": c.entry,
                    "kind": c.kind,
                    "detail": detail,
                    "operator": c.operator,
                    "at": rfc3339_unix(c.at),
                })
            })
            .collect(),
    )
}

/// One line for a registry change.
#[must_use]
pub fn describe_change(kind: &str, detail: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(detail).unwrap_or_default();
    let s = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    if kind == crate::ledger::ACTIVATION {
        return crate::activation::describe(&v);
    }
    if kind == "added" {
        return format!(
            "added ({} {}), policy {}",
            s("platform").unwrap_or_default(),
            s("cycle").unwrap_or_default(),
            s("policy").unwrap_or_default()
        );
    }
    let mut parts = Vec::new();
    if let Some(p) = s("policy") {
        let values: Option<crate::catalog::PolicyValues> = v
            .get("values")
            .and_then(|x| serde_json::from_value(x.clone()).ok());
        parts.push(format!(
            "policy {p}{} (approval {})",
            values
                .map(|v| format!(
                    " (grace {} then {}, checks every {})",
                    format_duration(v.grace),
                    v.after_grace,
                    format_duration(v.check_interval)
                ))
                .unwrap_or_default(),
            s("approval").unwrap_or_default()
        ));
    }
    for k in ["platform", "model", "name", "customer"] {
        if let Some(x) = s(k) {
            parts.push(format!("{k} {x}"));
        }
    }
    format!("edited: {}", parts.join(", "))
}
