//! `tessera issue`, `renew` and `replace`: load inputs, run
//! [`crate::issuance`] in one ledger transaction, commit, then write the
//! license (so every written license is in the ledger).

use std::path::Path;

use serde_json::json;

use super::session::Session;
use super::{print_json, read_request, Ctx};
use crate::calendar::{format_duration, rfc3339_unix, CycleName, PlatformName};
use crate::catalog::{after_grace_name, component_kind_name};
use crate::cli::{IssueArgs, OutArgs, RenewArgs, ReplaceArgs};
use crate::error::Error;
use crate::issuance::{self, Also, Answer, Asked, IssueOptions, Issued};
use crate::ledger::Action;
use crate::order::Order;
use crate::output::{note, Target};

pub(crate) fn target(out: &OutArgs) -> Result<Target, Error> {
    let t = Target::from_arg(out.output.as_deref());
    if out.json && t == Target::Stdout {
        return Err(Error::Usage(
            "--json prints the summary on standard output: write the license to a file with -o FILE".into(),
        ));
    }
    t.check(out.force)?;
    for (_, image) in qr_targets(out) {
        if image == Target::Stdout {
            return Err(Error::Usage(
                "--qr-png and --qr-svg write image files: give a file name, not -".into(),
            ));
        }
        image.check(out.force)?;
    }
    Ok(t)
}

/// The QR code images asked for: `(is_png, target)`.
fn qr_targets(out: &OutArgs) -> impl Iterator<Item = (bool, Target)> + '_ {
    [(true, &out.qr_png), (false, &out.qr_svg)]
        .into_iter()
        .filter_map(|(png, path)| Some((png, Target::from_arg(Some(path.as_deref()?)))))
}

/// Writes the license's QR code images (`--qr-png`, `--qr-svg`); returns
/// what to tell the operator.
fn write_qr(issued: &Issued, out: &OutArgs) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let mut code = None;
    for (png, target) in qr_targets(out) {
        let Target::File(path) = &target else {
            continue;
        };
        let qr_error = |source| Error::Qr {
            path: path.display().to_string(),
            source,
        };
        let qr = match &code {
            Some(qr) => qr,
            None => code.insert(tessera_qr::encode(&issued.record.row.bytes).map_err(qr_error)?),
        };
        let bytes = if png {
            qr.to_png().map_err(qr_error)?
        } else {
            qr.to_svg().into_bytes()
        };
        target.write(&bytes, out.force)?;
        notes.push(format!(
            "wrote {} (QR code, {})",
            path.display(),
            qr.describe()
        ));
    }
    Ok(notes)
}

/// `tessera issue`: one license, or `--bulk`.
///
/// # Errors
/// Input, policy, ledger and key errors.
pub fn issue(ctx: &Ctx, a: &IssueArgs) -> Result<(), Error> {
    if let Some(csv) = &a.bulk {
        if a.out.qr_png.is_some() || a.out.qr_svg.is_some() {
            return Err(Error::Usage(
                "--qr-png and --qr-svg name one image: they do not go with --bulk".into(),
            ));
        }
        return crate::bulk::run_command(ctx, a, csv);
    }
    let (Some(order_path), Some(request_path)) = (&a.order, &a.request) else {
        return Err(Error::Usage(
            "pass --order FILE and --request FILE (or --bulk CSV)".into(),
        ));
    };
    let t = target(&a.out)?;
    let answer = issue_one(ctx, a, order_path, request_path)?;
    finish_answer(answer, &t, &a.out, a.approval.as_deref())
}

/// Issues one license and commits it to the ledger, or finds the license
/// that answered the same request before ([`issuance::answer_once`]); the
/// caller writes it.
///
/// # Errors
/// As [`issue`].
pub fn issue_one(
    ctx: &Ctx,
    a: &IssueArgs,
    order_path: &Path,
    request_path: &Path,
) -> Result<Answer<Issued>, Error> {
    let (mut session, (order, (_, request))) = Session::open(ctx, &a.key, || {
        Ok((
            Order::load(order_path)?,
            read_request(request_path, ctx.request_check())?,
        ))
    })?;
    let order_json = order.to_json();
    let asked = if a.change {
        Asked {
            action: Action::Change,
            serial: None,
            order_json: Some(&order_json),
            command: "change",
            hint: CHANGE_HINT,
            also: Also::Nothing,
        }
    } else {
        Asked {
            action: Action::Issue,
            serial: None,
            order_json: Some(&order_json),
            command: "first license",
            hint: "",
            also: Also::Nothing,
        }
    };
    session.commit(|w, issuer| {
        issuance::answer_once(w, &request, &asked, ctx.now, |w, key| {
            issuance::issue(
                w,
                issuer,
                &order,
                &request,
                &IssueOptions {
                    now: ctx.now,
                    approval: a.approval.as_deref(),
                    change: a.change,
                    idem_key: Some(key),
                    order_json: Some(&order_json),
                    new_device_key: a.new_device_key,
                    retire_old_keys: a.retire_old_keys,
                },
            )
        })
    })
}

/// What else a change with a request answered before can do.
pub(crate) const CHANGE_HINT: &str =
    "; or change the license without a request (`tessera modify --serial SERIAL --order FILE` keeps the binding in force)";

/// `tessera renew`.
///
/// # Errors
/// Input, policy, ledger and key errors.
pub fn renew(ctx: &Ctx, a: &RenewArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let answer = renew_one(ctx, a)?;
    finish_answer(answer, &t, &a.out, None)
}

/// Renews and commits, or finds the license that answered the same
/// request before ([`issuance::answer_once`]); the caller writes it.
///
/// # Errors
/// As [`renew`].
pub fn renew_one(ctx: &Ctx, a: &RenewArgs) -> Result<Answer<Issued>, Error> {
    let (mut session, (_, request)) = Session::open(ctx, &a.key, || {
        read_request(&a.request, ctx.request_check())
    })?;
    let asked = Asked {
        action: Action::Renew,
        serial: None,
        order_json: None,
        command: "renewal",
        hint: "",
        also: Also::Nothing,
    };
    session.commit(|w, issuer| {
        issuance::answer_once(w, &request, &asked, ctx.now, |w, key| {
            if a.retire_old_keys {
                issuance::renew_retiring_old_keys(w, issuer, &request, ctx.now, key)
            } else {
                issuance::renew_recorded(w, issuer, &request, ctx.now, key, a.new_device_key)
            }
        })
    })
}

/// `tessera replace`.
///
/// # Errors
/// Input, policy, ledger and key errors.
pub fn replace(ctx: &Ctx, a: &ReplaceArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let (mut session, (_, request)) = Session::open(ctx, &a.key, || {
        read_request(&a.request, ctx.request_check())
    })?;
    let reason = match a.reason {
        crate::cli::ReasonArg::Rma => issuance::ReplaceReason::Rma,
        crate::cli::ReasonArg::Migrate => issuance::ReplaceReason::Migrate,
    };
    let answer = session.commit(|w, issuer| {
        let serial = crate::lifecycle::resolve_known_serial(w, &a.serial)?;
        let asked = Asked {
            action: Action::Replace,
            serial: Some(&serial),
            order_json: None,
            command: "replacement",
            hint: "",
            also: Also::Replace {
                reason,
                model: a.model.as_deref(),
            },
        };
        issuance::answer_once(w, &request, &asked, ctx.now, |w, key| {
            issuance::replace_recorded(
                w,
                issuer,
                &serial,
                &request,
                (reason, a.model.as_deref()),
                ctx.now,
                Some(key),
            )
        })
    })?;
    finish_answer(answer, &t, &a.out, None)
}

/// Writes a new license ([`finish`]), or the license that answered the
/// same request before ([`finish_again`]).
pub(crate) fn finish_answer(
    answer: Answer<Issued>,
    t: &Target,
    out: &OutArgs,
    approval: Option<&str>,
) -> Result<(), Error> {
    match answer {
        Answer::New(issued) => finish(&issued, t, out, approval),
        Answer::Again(record) => finish_again(&Issued::recorded(*record)?, t, out),
    }
}

/// Writes the license that answered a request before, byte for byte the
/// same, and says so: the partner lost the file, nothing new is issued.
pub(crate) fn finish_again(issued: &Issued, t: &Target, out: &OutArgs) -> Result<(), Error> {
    t.write(issued.armored().as_bytes(), out.force)?;
    let qr_notes = write_qr(issued, out)?;
    if out.json {
        return print_json(&again_json(issued));
    }
    note(&again_text(issued, t));
    for qr in qr_notes {
        note(&qr);
    }
    Ok(())
}

/// The JSON summary of a license that answered a request before.
pub(crate) fn again_json(issued: &Issued) -> serde_json::Value {
    let mut json = summary_json(issued, None);
    json["answered_before"] = json!(true);
    json
}

/// The line that says a request was answered before.
pub(crate) fn again_text(issued: &Issued, t: &Target) -> String {
    let r = &issued.record.row;
    format!(
        "this request was answered before: {} sequence {}, issued {}; {} is that same license again, byte for byte (nothing new was issued, the ledger is unchanged)",
        r.serial,
        r.sequence,
        rfc3339_unix(r.issued_at),
        match t {
            Target::File(p) => format!("wrote {}: it", p.display()),
            Target::Stdout => "the license on standard output".to_owned(),
        }
    )
}

/// Writes the license and prints the summary (standard error, or JSON on
/// standard output).
pub(crate) fn finish(
    issued: &Issued,
    t: &Target,
    out: &OutArgs,
    approval: Option<&str>,
) -> Result<(), Error> {
    let armored = issued.armored();
    let recorded = |_: &Error| {
        note(&format!(
            "the license is recorded in the ledger; print it again with `tessera ledger show {} --license`",
            issued.record.row.serial
        ));
    };
    t.write(armored.as_bytes(), out.force)
        .inspect_err(recorded)?;
    let qr_notes = write_qr(issued, out).inspect_err(recorded)?;
    if out.json {
        return print_json(&summary_json(issued, approval));
    }
    note(&summary_text(issued, approval));
    if let Target::File(p) = t {
        note(&format!("wrote {}", p.display()));
    }
    for qr in qr_notes {
        note(&qr);
    }
    Ok(())
}

/// The human summary of an issued license.
#[must_use]
pub fn summary_text(issued: &Issued, approval: Option<&str>) -> String {
    let l = &issued.license;
    let r = &issued.record.row;
    let mut s = format!(
        "{} {} sequence {} (license id {})",
        match r.action {
            crate::ledger::Action::Issue => "issued",
            crate::ledger::Action::Change => "changed",
            crate::ledger::Action::Renew => "renewed",
            crate::ledger::Action::Replace => "replaced binding of",
            crate::ledger::Action::Void => "issued a void for",
            crate::ledger::Action::Share => "shared",
        },
        l.serial,
        l.sequence,
        hex::encode(l.id)
    );
    if let Some(hw) = &issued.converted_from {
        s.push_str(&format!(
            "\n  converted   HW serial {hw} -> SW serial {}",
            l.serial
        ));
    }
    for (label, value) in &issued.details {
        s.push_str(&format!("\n  {label:<11} {value}"));
    }
    s.push_str(&format!("\n  customer    {}", l.customer));
    if !l.pbx_name.is_empty() {
        s.push_str(&format!("\n  pbx         {}", l.pbx_name));
    }
    s.push_str(&format!(
        "\n  platform    {}, {}",
        PlatformName::of(l.platform).as_str(),
        issuance::describe_term(&l.term)
    ));
    s.push_str(&format!(
        "\n  lease       until {} (checks every {}, grace {} then {})",
        rfc3339_unix(l.lease_end),
        format_duration(l.policy.check_interval),
        format_duration(l.policy.grace),
        after_grace_name(l.policy.after_grace)
    ));
    let required: Vec<String> = l
        .binding
        .components
        .iter()
        .filter(|c| c.required)
        .map(|c| component_kind_name(c.kind))
        .collect();
    s.push_str(&format!(
        "\n  binding     {} of {} components{}",
        l.binding.threshold,
        l.binding.components.len(),
        if required.is_empty() {
            String::new()
        } else {
            format!(" ({} required)", required.join(", "))
        }
    ));
    s.push_str(&format!(
        "\n  users       {}",
        crate::order::total_users(&l.entitlements)
    ));
    for p in &issued.prorations {
        s.push_str(&format!(
            "\n  service     {} {} .. {}, prorated {:.4} of the term",
            p.service,
            rfc3339_unix(p.start),
            rfc3339_unix(p.end),
            p.fraction
        ));
    }
    if !issued.decreases.is_empty() {
        s.push_str(&format!(
            "\n  decreases   {} (approval {})",
            issued.decreases.join(", "),
            approval.unwrap_or("-")
        ));
    }
    for w in &issued.warnings {
        match w {
            crate::policy::Warning::TermKept { .. } => s.push_str(&format!("\n  term        {w}")),
            _ => s.push_str(&format!("\nwarning: {w}")),
        }
    }
    s
}

/// The JSON summary of an issued license.
#[must_use]
pub fn summary_json(issued: &Issued, approval: Option<&str>) -> serde_json::Value {
    let l = &issued.license;
    json!({
        "action": issued.record.row.action,
        "serial": l.serial,
        "sequence": l.sequence,
        "license_id": hex::encode(l.id),
        "converted_from": issued.converted_from,
        "customer": l.customer,
        "pbx_name": l.pbx_name,
        "platform": PlatformName::of(l.platform).as_str(),
        "cycle": CycleName::of(l.term.cycle).as_str(),
        "term_start": rfc3339_unix(l.term.start),
        "term_end": l.term.end.map(rfc3339_unix),
        "lease_end": rfc3339_unix(l.lease_end),
        "issued_at": rfc3339_unix(l.issued_at),
        "prorations": issued.prorations.iter().map(|p| json!({
            "service": p.service,
            "start": rfc3339_unix(p.start),
            "end": rfc3339_unix(p.end),
            "fraction": p.fraction,
        })).collect::<Vec<_>>(),
        "decreases": issued.decreases,
        "approval": approval,
        "warnings": issued.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ledger_entry": issued.record.id,
        "answered_before": false,
        "details": issued
            .details
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        "license": issued.armored(),
    })
}
