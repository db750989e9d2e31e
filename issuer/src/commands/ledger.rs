//! `tessera ledger init|upgrade|migrate|list|show|head|verify|export`.

use base64::Engine as _;
use serde_json::json;
use tessera_verifier::armor;

use super::session::Signing;
use super::{keyring_entries, print, print_json, Ctx};
use crate::calendar::rfc3339_unix;
use crate::cli::LedgerCommand;
use crate::error::Error;
use crate::ledger::{Ledger, Record};
use crate::order::Order;
use crate::output::{note, Target};

fn term_end(t: Option<i64>) -> String {
    t.map_or_else(|| "lifetime".to_owned(), rfc3339_unix)
}

/// A row as JSON, with its order and armored license.
#[must_use]
pub fn record_json(r: &Record) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("issued_at".into(), json!(rfc3339_unix(r.row.issued_at)));
        obj.insert("lease_end".into(), json!(rfc3339_unix(r.row.lease_end)));
        obj.insert("term_end".into(), json!(r.row.term_end.map(rfc3339_unix)));
        obj.insert(
            "order".into(),
            serde_json::from_str(&r.row.order_json).unwrap_or(serde_json::Value::Null),
        );
        obj.insert(
            "license".into(),
            json!(armor::encode(&r.row.bytes, armor::LABEL_LICENSE)),
        );
    }
    v
}

/// Resolves a serial argument: a SW serial, or a HW serial that was
/// converted.
fn resolve_serial(ledger: &Ledger, serial: &str) -> Result<String, Error> {
    let serial = crate::validate::serial_arg("serial", serial)?;
    if ledger.latest(&serial)?.is_some() {
        return Ok(serial);
    }
    if let Some(sw) = ledger.sw_serial_of(&serial)? {
        return Ok(sw);
    }
    // A PBX of the registry without a license yet.
    if ledger.queries().pbx(&serial)?.is_some() {
        return Ok(serial);
    }
    Err(Error::Usage(format!(
        "{serial} is not in the ledger {} (neither a SW serial nor a converted HW serial); `tessera ledger list` shows the serials",
        ledger.path().display()
    )))
}

/// `tessera ledger init`: the catalog (for the vendor id), the operator,
/// the key, then the new file.
fn init(ctx: &Ctx, key: &crate::cli::KeyArgs) -> Result<(), Error> {
    let setting = ctx.ledger_setting()?;
    let path = setting.value;
    // Refuse an existing file before asking for the passphrase; a folder
    // or a device is a wrong path, not a ledger there already.
    if let Ok(meta) = std::fs::metadata(&path) {
        if let Some(what) = crate::ledger::not_a_file(&meta) {
            return Err(crate::ledger::LedgerError::NotAFile {
                path,
                what,
                named_by: Some(setting.source.naming("ledger")),
            }
            .into());
        }
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(crate::ledger::LedgerError::Exists(path).into());
    }
    let (signing, ()) = Signing::load(ctx, key, || Ok(()))?;
    let issuer = signing.issuer();
    // A new ledger in a new folder: the folder is created (owner only).
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io(dir))?;
    }
    let checkpoint = Ledger::init(
        &path,
        &issuer.catalog.vendor,
        issuer.signer,
        issuer.operator,
        ctx.now.timestamp(),
    )?;
    let c = &checkpoint.data;
    print(&format!(
        "created ledger {} (id {}, vendor {})\ncheckpoint: {} entry, head {}, signed by kid {}\nkeep checkpoints away from this machine: `tessera ledger head -o FILE` after each working day, `tessera ledger verify --expect-head FILE` to check\n",
        path.display(),
        hex::encode(c.ledger_id),
        c.issuer,
        c.entries,
        hex::encode(c.head),
        hex::encode(checkpoint.kid),
    ))
}

/// `tessera ledger upgrade`.
fn upgrade(ctx: &Ctx, from: &std::path::Path, key: &crate::cli::KeyArgs) -> Result<(), Error> {
    let path = ctx.ledger_path()?;
    if tessera_keys::storage::is_stdio(from) {
        return Err(Error::Usage(
            "--from names the earlier ledger's database file; `-` (standard input) cannot be one"
                .into(),
        ));
    }
    // Refuse what cannot work before asking for the passphrase.
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(crate::ledger::LedgerError::Exists(path).into());
    }
    let keyring = ctx.required_keyring(key.keyring.as_deref()).map_err(|_| {
        Error::Usage(
            "ledger upgrade checks every old license against the vendor's keyring: pass --keyring FILE, set TESSERA_KEYRING or `keyring` in tessera.toml".into(),
        )
    })?;
    let keys = keyring_entries(&keyring)?;
    let (signing, ()) = Signing::load(ctx, key, || Ok(()))?;
    let issuer = signing.issuer();
    let r = crate::ledger::upgrade::upgrade(
        from,
        &path,
        &issuer.catalog.vendor,
        issuer.signer,
        issuer.operator,
        ctx.now.timestamp(),
        &keys,
    )?;
    let c = &r.checkpoint.data;
    print(&format!(
        "upgraded {} (schema {}, {} license row(s), chain head {}) into ledger {} (id {}, vendor {})\n\
         carried over: {} license(s), {} HW → SW conversion(s), {} serial allocation(s), {} event(s), {} replaced binding(s), {} schedule(s)\n\
         checkpoint: {} entries, head {}, signed by kid {}\n\
         the old file is unchanged: keep it as an archive, and point `ledger` in tessera.toml at {}\n",
        from.display(),
        r.schema,
        r.rows,
        hex::encode(r.old_head),
        path.display(),
        hex::encode(c.ledger_id),
        c.issuer,
        r.rows,
        r.conversions,
        r.allocations,
        r.events,
        r.replaced,
        r.schedules,
        c.entries,
        hex::encode(c.head),
        hex::encode(r.checkpoint.kid),
        path.display(),
    ))
}

/// `tessera ledger migrate`.
fn migrate(
    ctx: &Ctx,
    ledger: &Ledger,
    to: &std::path::Path,
    keyring: Option<&std::path::Path>,
) -> Result<(), Error> {
    let keyring = ctx.required_keyring(keyring).map_err(|_| {
        Error::Usage(
            "ledger migrate verifies the ledger and its copy against the vendor's keyring: pass --keyring FILE, set TESSERA_KEYRING or `keyring` in tessera.toml".into(),
        )
    })?;
    let keys = keyring_entries(&keyring)?;
    let r = crate::ledger::migrate::migrate(ledger, to, &keys)?;
    print(&format!(
        "copied ledger {} (id {}, vendor {}) to {}\n\
         the copy is intact: {} entries, {} license signature(s) and {} checkpoint(s) check; head {} {}, as in the source\n\
         point `ledger` in tessera.toml (or TESSERA_LEDGER) at {} and keep {} as an archive: entries written to it from now on are not in the copy\n",
        ledger.path().display(),
        hex::encode(r.copy.identity.ledger_id),
        r.copy.identity.vendor,
        to.display(),
        r.copy.entries,
        r.copy.licenses,
        r.copy.checkpoints,
        r.source.entries,
        hex::encode(r.source.head),
        to.display(),
        ledger.path().display(),
    ))
}

/// `tessera ledger head`.
fn head(ledger: &Ledger, output: Option<&std::path::Path>, force: bool) -> Result<(), Error> {
    let target = Target::from_arg(output);
    target.check(force)?;
    let c = ledger.latest_checkpoint()?;
    let text = armor::encode(&c.bytes, armor::LABEL_CHECKPOINT);
    target.write(text.as_bytes(), force)?;
    note(&format!(
        "checkpoint of ledger {} ({}): {} entries, head {}, signed by kid {} at {}",
        hex::encode(c.data.ledger_id),
        ledger.path().display(),
        c.data.entries,
        hex::encode(c.data.head),
        hex::encode(c.kid),
        rfc3339_unix(c.data.issued_at)
    ));
    if let Target::File(p) = &target {
        note(&format!("wrote {}", p.display()));
    }
    Ok(())
}

/// Reads a checkpoint file (armored or binary).
fn read_checkpoint(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let raw = crate::output::read_bytes(path)?;
    // A file that is not a checkpoint is a wrong argument (exit 1, as for
    // every unusable expected head), not a verification failure.
    super::read_signed(path, &raw, armor::LABEL_CHECKPOINT).map_err(|e| match e {
        Error::Verification { path, source } => {
            Error::Ledger(crate::ledger::LedgerError::ExpectedHead {
                reason: format!(
                "{path} is not a checkpoint ({source}); `tessera ledger head -o FILE` writes one"
            ),
            })
        }
        other => other,
    })
}

/// `tessera ledger ...`.
///
/// # Errors
/// [`Error::Ledger`] (integrity: exit 4), [`Error::Usage`], [`Error::Io`].
pub fn ledger(ctx: &Ctx, c: &LedgerCommand) -> Result<(), Error> {
    match c {
        LedgerCommand::Init { key } => return init(ctx, key),
        LedgerCommand::Upgrade { from, key } => return upgrade(ctx, from, key),
        _ => {}
    }
    // Everything else only reads: read-only, never waiting for a writer.
    let ledger = ctx.reader()?;
    match c {
        LedgerCommand::Init { .. } | LedgerCommand::Upgrade { .. } => Ok(()),
        LedgerCommand::Migrate { to, keyring } => migrate(ctx, &ledger, to, keyring.as_deref()),
        LedgerCommand::Head { output, force } => head(&ledger, output.as_deref(), *force),
        LedgerCommand::List { json } => {
            let serials = ledger.serials()?;
            let now = ctx.now.timestamp();
            let mut states = Vec::with_capacity(serials.len());
            for s in &serials {
                states.push(crate::registry::standing(
                    crate::registry::state_at(ledger.schedule(&s.serial)?, true, now),
                    ledger.queries().replaced_bindings(&s.serial)?,
                ));
            }
            if *json {
                return print_json(&serde_json::Value::Array(
                    serials
                        .iter()
                        .zip(&states)
                        .map(|(s, st)| {
                            let mut v = json!({
                                "serial": s.serial,
                                "hw_serial": s.hw_serial,
                                "licenses": s.licenses,
                                "sequence": s.latest.row.sequence,
                                "last_action": s.latest.row.action,
                                "customer": s.latest.row.customer,
                                "pbx_name": s.latest.row.pbx_name,
                                "platform": s.latest.row.platform,
                                "issued_at": rfc3339_unix(s.latest.row.issued_at),
                                "lease_end": rfc3339_unix(s.latest.row.lease_end),
                                "term_end": s.latest.row.term_end.map(rfc3339_unix),
                            });
                            st.put_json(&mut v);
                            v
                        })
                        .collect(),
                ));
            }
            let labels: Vec<String> = states
                .iter()
                .map(crate::registry::Standing::label)
                .collect();
            let sw = crate::registry::state_width(labels.iter().map(String::as_str));
            let mut text = format!(
                "{:<16} {:>4}  {:<8} {:<sw$} {:<5} {:<20}  {:<20}  {}\n",
                "SERIAL", "SEQ", "LAST", "STATE", "PLAT", "LEASE END", "TERM END", "CUSTOMER / PBX"
            );
            for (s, label) in serials.iter().zip(&labels) {
                let r = &s.latest.row;
                text.push_str(&format!(
                    "{:<16} {:>4}  {:<8} {:<sw$} {:<5} {:<20}  {:<20}  {} / {}\n",
                    s.serial,
                    r.sequence,
                    r.action.as_str(),
                    label,
                    r.platform,
                    rfc3339_unix(r.lease_end),
                    term_end(r.term_end),
                    r.customer,
                    r.pbx_name
                ));
            }
            text.push_str(&format!("{} serial(s)\n", serials.len()));
            print(&text)
        }
        LedgerCommand::Show {
            serial,
            license,
            json,
        } => {
            let serial = resolve_serial(&ledger, serial)?;
            let history = ledger.history(&serial)?;
            let Some(latest) = history.last() else {
                return unlicensed(&ledger, &serial, *license, *json);
            };
            if *license {
                return print(&armor::encode(&latest.row.bytes, armor::LABEL_LICENSE));
            }
            let hw_serials = ledger.hw_serials_of(&serial)?;
            let hw = hw_serials.first().cloned();
            let events = ledger.events(&serial)?;
            let schedule = ledger.schedule(&serial)?;
            let order = Order::parse("ledger", &latest.row.order_json, true).ok();
            let registry_changes = ledger.queries().pbx_changes(&serial)?;
            let pbx = ledger.queries().pbx(&serial)?;
            if *json {
                let licensed = match &pbx {
                    Some(_) => {
                        crate::registry::licensed(ledger.queries(), &ctx.catalog()?, &serial)?
                    }
                    None => None,
                };
                return print_json(&json!({
                    "serial": serial,
                    "pbx": pbx.as_ref().map(|p| crate::registry::PbxView::of(p, licensed.as_ref())),
                    "registry": super::pbx::changes_json(&registry_changes),
                    "hw_serial": hw,
                    "hw_serials": hw_serials,
                    "events": events.iter().map(|e| json!({
                        "sequence": e.sequence,
                        "kind": e.kind,
                        "detail": e.detail,
                        "operator": e.operator,
                        "at": rfc3339_unix(e.at),
                    })).collect::<Vec<_>>(),
                    "schedule": schedule.map(|z| json!({
                        "stop_at": rfc3339_unix(z.stop_at),
                        "delete_at": rfc3339_unix(z.delete_at),
                    })),
                    "licenses": history.iter().map(record_json).collect::<Vec<_>>(),
                }));
            }
            let r = &latest.row;
            let mut text = format!("{serial}\n");
            for (i, hw) in hw_serials.iter().enumerate() {
                text.push_str(&format!(
                    "  hw serial   {hw} ({})\n",
                    // The first one is converted when the PBX is
                    // entered (`pbx add --hw-serial`) or first activated.
                    if i == 0 {
                        "first appliance"
                    } else {
                        "replacement appliance"
                    }
                ));
            }
            text.push_str(&format!(
                "  customer    {}\n  pbx         {}\n",
                r.customer, r.pbx_name
            ));
            if let Some(model) = order.as_ref().and_then(|o| o.model.clone()) {
                text.push_str(&format!("  model       {model}\n"));
            }
            text.push_str(&format!(
                "  platform    {}\n  term end    {}\n  lease end   {}\n",
                r.platform,
                term_end(r.term_end),
                rfc3339_unix(r.lease_end)
            ));
            if let Some(p) = &pbx {
                text.push_str(&format!(
                    "  policy      {}{}\n",
                    p.policy,
                    p.values()
                        .map(|v| format!(" ({})", v.describe()))
                        .unwrap_or_default()
                ));
            }
            match schedule {
                Some(z) => text.push_str(&format!(
                    "  schedule    all user licenses removed: stop {}, deletion {}\n",
                    rfc3339_unix(z.stop_at),
                    rfc3339_unix(z.delete_at)
                )),
                None => text.push_str("  schedule    none\n"),
            }
            for d in order.iter().flat_map(|o| &o.devices) {
                text.push_str(&format!(
                    "  device      {} {}{}\n",
                    d.model,
                    d.id,
                    if d.label.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", d.label)
                    }
                ));
            }
            for a in order.iter().flat_map(|o| &o.assignments) {
                text.push_str(&format!(
                    "  user        {} ext {} number {}{}\n",
                    a.user,
                    a.extension,
                    a.number,
                    if a.addons.is_empty() {
                        String::new()
                    } else {
                        format!(" add-ons {}", a.addons.join(" "))
                    }
                ));
            }
            text.push_str(&format!(
                "  {:>4}  {:<8} {:<20}  {:<20}  {:<10}  {}\n",
                "SEQ", "ACTION", "ISSUED", "LEASE END", "OPERATOR", "LICENSE ID"
            ));
            for h in &history {
                text.push_str(&format!(
                    "  {:>4}  {:<8} {:<20}  {:<20}  {:<10}  {}\n",
                    h.row.sequence,
                    h.row.action.as_str(),
                    rfc3339_unix(h.row.issued_at),
                    rfc3339_unix(h.row.lease_end),
                    h.row.operator,
                    hex::encode(h.row.license_id)
                ));
            }
            if !events.is_empty() {
                text.push_str(&format!("  {:>4}  EVENT\n", "SEQ"));
            }
            for e in &events {
                text.push_str(&format!("  {:>4}  {}\n", e.sequence, e.describe()));
            }
            if !registry_changes.is_empty() {
                text.push_str("  REGISTRY\n");
            }
            registry_lines(&mut text, &registry_changes);
            print(&text)
        }
        LedgerCommand::Verify {
            keyring,
            expect_head,
            json,
        } => {
            let keyring = ctx.required_keyring(keyring.as_deref()).map_err(|_| {
                Error::Usage(
                    "ledger verify checks every signature against the vendor's keyring: pass --keyring FILE, set TESSERA_KEYRING or `keyring` in tessera.toml".into(),
                )
            })?;
            let keys = keyring_entries(&keyring)?;
            let expected = expect_head.as_deref().map(read_checkpoint).transpose()?;
            let r = ledger.verify(&keys, expected.as_deref())?;
            if *json {
                return print_json(&json!({
                    "intact": true,
                    "ledger": ledger.path().display().to_string(),
                    "ledger_id": hex::encode(r.identity.ledger_id),
                    "vendor": r.identity.vendor,
                    "entries": r.entries,
                    "licenses": r.licenses,
                    "checkpoints": r.checkpoints,
                    "head": hex::encode(r.head),
                    "expected_head": r.expected.as_ref().zip(expect_head.as_ref()).map(|(c, path)| json!({
                        "file": path.display().to_string(),
                        "entries": c.entries,
                        "issued_at": rfc3339_unix(c.issued_at),
                    })),
                }));
            }
            let mut text = format!(
                "ledger {} is intact: {} entries; hash chain, views, {} license signature(s) and {} checkpoint(s) check\nledger id {} (vendor {})\nhead {} {}\n",
                ledger.path().display(),
                r.entries,
                r.licenses,
                r.checkpoints,
                hex::encode(r.identity.ledger_id),
                r.identity.vendor,
                r.entries,
                hex::encode(r.head)
            );
            if let (Some(c), Some(path)) = (&r.expected, expect_head) {
                text.push_str(&format!(
                    "holds the checkpoint in {}: entry {} of {}, signed {}\n",
                    path.display(),
                    c.entries,
                    r.entries,
                    rfc3339_unix(c.issued_at)
                ));
            }
            print(&text)
        }
        LedgerCommand::Export {
            kind,
            output,
            force,
        } => {
            let target = Target::from_arg(output.as_deref());
            target.check(*force)?;
            let rows = ledger.all()?;
            let bytes = if kind.json {
                let mut s = serde_json::to_string_pretty(&serde_json::Value::Array(
                    rows.iter().map(record_json).collect(),
                ))
                .unwrap_or_default();
                s.push('\n');
                s.into_bytes()
            } else {
                export_csv(&rows)?
            };
            target.write(&bytes, *force)?;
            if let Target::File(p) = &target {
                note(&format!("wrote {} row(s) to {}", rows.len(), p.display()));
            }
            Ok(())
        }
    }
}

fn export_csv(rows: &[Record]) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Usage(format!("CSV export failed: {e}"));
    w.write_record([
        "entry",
        "serial",
        "sequence",
        "license_id",
        "action",
        "operator",
        "issued_at",
        "customer",
        "pbx_name",
        "platform",
        "lease_end",
        "term_end",
        "idem_key",
        "entry_hash",
        "order_json",
        "license_base64",
    ])
    .map_err(err)?;
    // Customer, PBX name, operator and key come from orders and partners'
    // files: a cell a spreadsheet would run as a formula is quoted.
    let cell = crate::output::csv_cell;
    for r in rows {
        let f = &r.row;
        w.write_record([
            r.id.to_string(),
            f.serial.clone(),
            f.sequence.to_string(),
            hex::encode(f.license_id),
            f.action.as_str().to_owned(),
            cell(&f.operator),
            rfc3339_unix(f.issued_at),
            cell(&f.customer),
            cell(&f.pbx_name),
            f.platform.clone(),
            rfc3339_unix(f.lease_end),
            f.term_end.map(rfc3339_unix).unwrap_or_default(),
            f.idem_key.as_deref().map(cell).unwrap_or_default(),
            hex::encode(r.hash),
            f.order_json.clone(),
            base64::engine::general_purpose::STANDARD.encode(&f.bytes),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Usage(format!("CSV export failed: {e}")))
}

/// `ledger show` of a PBX the registry holds without a license yet: its
/// registry entry and history (the activation codes opened for it, until
/// when each works).
fn unlicensed(ledger: &Ledger, serial: &str, license: bool, json: bool) -> Result<(), Error> {
    let q = ledger.queries();
    let pbx = match q.pbx(serial)? {
        Some(p) if !license => p,
        _ => return Err(Error::Usage(format!("{serial} has no license"))),
    };
    let changes = q.pbx_changes(serial)?;
    if json {
        return print_json(&json!({
            "serial": serial,
            "pbx": crate::registry::PbxView::of(&pbx, None),
            "registry": super::pbx::changes_json(&changes),
            "hw_serials": ledger.hw_serials_of(serial)?,
            "licenses": [],
        }));
    }
    let mut text = format!(
        "{serial}\n  customer    {}\n  pbx         {}\n  platform    {}\n  license     none yet\n  REGISTRY\n",
        pbx.customer, pbx.name, pbx.platform
    );
    registry_lines(&mut text, &changes);
    print(&text)
}

/// One line per registry change of a PBX (`ledger show`).
fn registry_lines(text: &mut String, changes: &[crate::ledger::PbxChangeRow]) {
    for c in changes {
        text.push_str(&format!(
            "  {}  {}  {}\n",
            rfc3339_unix(c.at),
            c.operator,
            super::pbx::describe_change(&c.kind, &c.detail)
        ));
    }
}
