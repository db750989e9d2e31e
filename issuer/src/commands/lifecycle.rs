//! `tessera modify`, `share`, `void` and `decommission`: load inputs, run
//! [`crate::lifecycle`] in one ledger transaction, commit, then write the
//! license(s), so every written license is in the ledger.

use super::issue::{
    again_json, again_text, finish, finish_answer, summary_json, summary_text, target, CHANGE_HINT,
};
use super::session::Session;
use super::{print_json, read_request, Ctx};
use crate::cli::{DecommissionArgs, ModifyArgs, ShareArgs, VoidArgs};
use crate::error::Error;
use crate::issuance::{self, Also, Answer, Asked, IssueOptions, Issued};
use crate::ledger::Action;
use crate::lifecycle::{self, ShareOptions};
use crate::order::Order;
use crate::output::{note, Target};

/// The options of a change to the license in force (`modify`,
/// `decommission`).
fn change_options<'a>(ctx: &Ctx, approval: Option<&'a str>) -> IssueOptions<'a> {
    IssueOptions {
        now: ctx.now,
        approval,
        change: true,
        idem_key: None,
        order_json: None,
        new_device_key: false,
        retire_old_keys: false,
    }
}

/// `tessera modify`.
///
/// # Errors
/// Input, policy, ledger and key errors.
pub fn modify(ctx: &Ctx, a: &ModifyArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let (mut session, (order, request)) = Session::open(ctx, &a.key, || {
        Ok((
            Order::load(&a.order)?,
            a.request
                .as_deref()
                .map(|r| read_request(r, ctx.request_check()))
                .transpose()?,
        ))
    })?;
    let answer = session.commit(|w, issuer| {
        let opts = change_options(ctx, a.approval.as_deref());
        let Some((_, request)) = &request else {
            return lifecycle::modify(w, issuer, &a.serial, &order, None, &opts).map(Answer::New);
        };
        // With a request, the change answers it: once.
        let serial = lifecycle::resolve_known_serial(w, &a.serial)?;
        let order_json = order.to_json();
        let asked = Asked {
            action: Action::Change,
            serial: Some(&serial),
            order_json: Some(&order_json),
            command: "change",
            hint: CHANGE_HINT,
            also: Also::Nothing,
        };
        issuance::answer_once(w, request, &asked, ctx.now, |w, key| {
            let opts = IssueOptions {
                idem_key: Some(key),
                new_device_key: a.new_device_key,
                retire_old_keys: a.retire_old_keys,
                ..opts
            };
            lifecycle::modify(w, issuer, &serial, &order, Some(request), &opts)
        })
    })?;
    finish_answer(answer, &t, &a.out, a.approval.as_deref())
}

/// `tessera decommission`.
///
/// # Errors
/// Policy, ledger and key errors.
pub fn decommission(ctx: &Ctx, a: &DecommissionArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let (mut session, ()) = Session::open(ctx, &a.key, || Ok(()))?;
    let issued = session.commit(|w, issuer| {
        lifecycle::decommission(
            w,
            issuer,
            &a.serial,
            &change_options(ctx, a.approval.as_deref()),
        )
    })?;
    finish(&issued, &t, &a.out, a.approval.as_deref())
}

/// `tessera void`.
///
/// # Errors
/// [`Error::Usage`] for a malformed or unknown id; policy, ledger and key
/// errors.
pub fn void(ctx: &Ctx, a: &VoidArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let bad = || {
        Error::Usage(format!(
            "--license {}: name the license by its id (32 hex digits) or as SERIAL:SEQUENCE, as `tessera ledger show SERIAL` lists them",
            a.license
        ))
    };
    let text = a.license.trim();
    let ledger = ctx.ledger()?;
    let mut id = [0u8; 16];
    if hex::decode_to_slice(text, &mut id).is_err() {
        let (serial, sequence) = text.rsplit_once(':').ok_or_else(bad)?;
        let sequence: u32 = sequence.parse().map_err(|_| bad())?;
        let serial = match ledger.sw_serial_of(serial)? {
            Some(sw) if ledger.latest(serial)?.is_none() => sw,
            _ => serial.to_owned(),
        };
        id = ledger
            .history(&serial)?
            .iter()
            .find(|r| r.row.sequence == sequence)
            .map(|r| r.row.license_id)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{serial} has no license with sequence {sequence}; `tessera ledger show {serial}` lists them"
                ))
            })?;
    }
    let issued = Session::with_ledger(ctx, &a.key, ledger)?
        .commit(|w, issuer| lifecycle::void(w, issuer, &id, &a.reason, ctx.now))?;
    finish(&issued, &t, &a.out, None)
}

/// `tessera share`.
///
/// # Errors
/// Input, policy, ledger and key errors.
pub fn share(ctx: &Ctx, a: &ShareArgs) -> Result<(), Error> {
    let t = target(&a.out)?;
    let server_target = a
        .server_output
        .as_deref()
        .map(|p| Target::from_arg(Some(p)));
    if let Some(st) = &server_target {
        if *st == Target::Stdout || *st == t {
            return Err(Error::Usage(
                "--server-output needs a file of its own (not `-`, not the client's -o)".into(),
            ));
        }
        st.check(a.out.force)?;
    }
    let (mut session, request) = Session::open(ctx, &a.key, || {
        a.request
            .as_deref()
            .map(|r| read_request(r, ctx.request_check()))
            .transpose()
    })?;
    let answer = session.commit(|w, issuer| {
        let opts = ShareOptions {
            now: ctx.now,
            request: request.as_ref().map(|(_, r)| r),
            pbx_name: a.pbx_name.as_deref(),
            new_device_key: a.new_device_key,
            retire_old_keys: a.retire_old_keys,
        };
        let Some((_, request)) = &request else {
            return lifecycle::share(w, issuer, &a.server, &a.client, &opts).map(Answer::New);
        };
        // With a request, the client's license answers it: once.
        let client = lifecycle::resolve_serial(w, &a.client)?;
        let server = lifecycle::resolve_known_serial(w, &a.server)?;
        let asked = Asked {
            action: Action::Share,
            serial: Some(&client),
            order_json: None,
            command: "client license",
            hint: "",
            also: Also::Share {
                server: &server,
                pbx_name: a.pbx_name.as_deref(),
            },
        };
        issuance::answer_once(w, request, &asked, ctx.now, |w, key| {
            lifecycle::share_recorded(w, issuer, (&a.server, &client), &opts, key)
        })
    })?;
    let shared = match answer {
        Answer::New(shared) => shared,
        Answer::Again(record) => {
            // The client's license again; the server's is in the ledger.
            let client = Issued::recorded(*record)?;
            t.write(client.armored().as_bytes(), a.out.force)?;
            if a.out.json {
                let client = again_json(&client);
                return print_json(&serde_json::json!({ "client": client, "server": null }));
            }
            note(&again_text(&client, &t));
            note(&format!(
                "the license of the server is in the ledger: `tessera ledger show {} --license`",
                a.server
            ));
            return Ok(());
        }
    };
    let recorded = |serial: &str| {
        note(&format!(
            "the license is recorded in the ledger; print it again with `tessera ledger show {serial} --license`"
        ));
    };
    t.write(shared.client.armored().as_bytes(), a.out.force)
        .inspect_err(|_| recorded(&shared.client.record.row.serial))?;
    if let (Some(server), Some(st)) = (&shared.server, &server_target) {
        st.write(server.armored().as_bytes(), a.out.force)
            .inspect_err(|_| recorded(&server.record.row.serial))?;
    }
    if a.out.json {
        return print_json(&serde_json::json!({
            "client": summary_json(&shared.client, None),
            "server": shared.server.as_ref().map(|s| summary_json(s, None)),
        }));
    }
    note(&summary_text(&shared.client, None));
    if let Target::File(p) = &t {
        note(&format!("wrote {}", p.display()));
    }
    match (&shared.server, &server_target) {
        (Some(server), Some(Target::File(p))) => {
            note(&summary_text(server, None));
            note(&format!("wrote {} (carry it to the server)", p.display()));
        }
        (Some(server), _) => {
            note(&summary_text(server, None));
            note(&format!(
                "the server needs this license (server role): `tessera ledger show {} --license`",
                server.record.row.serial
            ));
        }
        (None, _) => note(&format!(
            "{} is a sharing server already: its license is unchanged",
            a.server
        )),
    }
    Ok(())
}
