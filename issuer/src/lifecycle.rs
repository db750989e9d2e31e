//! The lifecycle of a licensed PBX after its activation: `modify`,
//! `decommission`, `share` and `void` (renewal and replacement are in
//! [`crate::issuance`]).
//!
//! Like issuance, every function works inside one ledger transaction (a
//! [`Writer`]) and leaves the commit to the caller; every rule it enforces
//! is a [`PolicyError`] of [`crate::policy`] (exit code 2). What each
//! command did beyond the license row (an approval, a reason, the two
//! sides of a sharing, the license a void supersedes) is recorded as a
//! ledger event next to it.

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_verifier::claims::{AfterGrace, FeatureCategory};
use tessera_verifier::encode::{EntitlementsData, LicenseData, RequestData, SharingData};

use crate::calendar::{rfc3339_unix, CycleName, PlatformName};
use crate::error::Error;
use crate::issuance::{
    self, binding_for, decode_data, defaults, in_force, random_id, record_for, request_serial,
    sign, stamp_issue, start_of_validity, IssueOptions, Issued, Issuer,
};
use crate::ledger::{Action, Record, Writer};
use crate::order::{Order, SharingOrder};
use crate::policy::{self, PolicyError, Warning};

/// The SW serial a command-line serial names: itself, or the SW serial a
/// HW serial (normalized first) was converted to.
///
/// # Errors
/// [`Error::Invalid`] for text that is neither a SW nor a HW serial.
pub(crate) fn resolve_serial(w: &Writer<'_>, serial: &str) -> Result<String, Error> {
    let serial = crate::validate::serial_arg("serial", serial)?;
    if crate::validate::is_sw_serial(&serial) {
        return Ok(serial);
    }
    Ok(w.sw_serial_of(&serial)?.unwrap_or(serial))
}

/// [`resolve_serial`] for a PBX the command acts on as an existing one
/// (`modify`, `replace`, `decommission`, a sharing server, `pbx edit`,
/// `pbx activation`): a SW serial neither licensed nor in the registry
/// is a typo, refused as such rather than by a licensing rule with hints
/// that do not fit.
///
/// # Errors
/// [`Error::Usage`] naming the serial, those of [`resolve_serial`].
pub(crate) fn resolve_known_serial(w: &Writer<'_>, serial: &str) -> Result<String, Error> {
    let serial = resolve_serial(w, serial)?;
    if crate::validate::is_sw_serial(&serial)
        && w.latest(&serial)?.is_none()
        && w.pbx(&serial)?.is_none()
    {
        return Err(Error::Usage(format!(
            "{serial} is not in the ledger: it has no license and no PBX registry entry; check the serial (`tessera ledger list`, `tessera pbx list`)"
        )));
    }
    Ok(serial)
}

/// The order kept with a ledger row.
fn stored_order(record: &Record) -> Result<Order, Error> {
    Ok(Order::parse(
        &format!("ledger entry {}", record.id),
        &record.row.order_json,
        true,
    )?)
}

/// Changes the license in force of `serial` to `order` (`tessera
/// modify`): increases any time, decreases with an approval, storage never
/// down, services co-terminating and prorated, the zero-users schedule.
/// Without `request` the binding in force is kept; with one, the request
/// must come from the licensed device and its identity becomes the
/// binding.
///
/// # Errors
/// [`PolicyError::NothingToChange`], [`PolicyError::RequestForOtherSerial`],
/// and every rule of [`policy::check`]; ledger, key and order errors.
pub fn modify(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    serial: &str,
    order: &Order,
    request: Option<&RequestData>,
    opts: &IssueOptions<'_>,
) -> Result<Issued, Error> {
    let planned = plan_modify(w, issuer, serial, order, request, opts)?;
    let bytes = issuance::sign_planned(issuer, &planned)?;
    issuance::record(w, issuer, planned, bytes)
}

fn plan_modify(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    serial: &str,
    order: &Order,
    request: Option<&RequestData>,
    opts: &IssueOptions<'_>,
) -> Result<issuance::Planned, Error> {
    let serial = resolve_known_serial(w, serial)?;
    if let Some(r) = request {
        let from = request_serial(w, r)?;
        if from.as_deref() != Some(serial.as_str()) {
            return Err(PolicyError::RequestForOtherSerial {
                serial,
                request: from
                    .or_else(|| r.hw_serial.clone())
                    .unwrap_or_else(|| "a device without a serial".into()),
            }
            .into());
        }
    }
    let resolved = order.resolve(issuer.catalog)?;
    if let Some(r) = request {
        if r.platform != resolved.platform {
            return Err(PolicyError::PlatformMismatch {
                request: PlatformName::of(r.platform).as_str().into(),
                order: PlatformName::of(resolved.platform).as_str().into(),
            }
            .into());
        }
    }
    let opts = IssueOptions {
        change: true,
        ..opts.clone()
    };
    let current = match request {
        // A request brings its device's binding: that is a change.
        Some(_) => None,
        None => issuance::in_force(w, &serial)?
            .map(|r| issuance::decode_data(&r))
            .transpose()?,
    };
    let planned = issuance::plan_serial(w, issuer, order, resolved, serial, None, request, &opts)?;
    if let Some(cur) = current {
        if grants_the_same(&cur, &planned.data) {
            return Err(PolicyError::NothingChanges {
                serial: cur.serial,
                sequence: cur.sequence,
            }
            .into());
        }
    }
    Ok(planned)
}

/// Whether `next` grants what `current` does: the same PBX, term,
/// entitlements, services and sharing (lease, sequence and id aside).
fn grants_the_same(current: &LicenseData, next: &LicenseData) -> bool {
    current.platform == next.platform
        && current.binding == next.binding
        && current.term == next.term
        && current.entitlements == next.entitlements
        && current.services == next.services
        && current.sharing == next.sharing
        && current.customer == next.customer
        && current.pbx_name == next.pbx_name
}

/// Decreases `serial` to zero user licenses (`tessera decommission`):
/// profiles, base licenses with their add-ons and per-user features go to
/// zero; instance and core features, storage and services stay. It is a
/// decrease (approval, not on the last day of a month, never lifetime); it
/// schedules the stop (+5 days: the license ends then, without grace,
/// locked) and the deletion (+14 days).
///
/// # Errors
/// [`PolicyError::NoLicense`], [`PolicyError::AlreadyDecommissioned`],
/// [`PolicyError::NoUsers`], and the errors of [`modify`].
pub fn decommission(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    serial: &str,
    opts: &IssueOptions<'_>,
) -> Result<Issued, Error> {
    let serial = resolve_known_serial(w, serial)?;
    let latest = in_force(w, &serial)?.ok_or_else(|| PolicyError::NoLicense {
        serial: serial.clone(),
    })?;
    let schedule = w.schedule(&serial)?;
    policy::not_deleted(&serial, schedule, opts.now)?;
    if let Some(z) = schedule {
        return Err(PolicyError::AlreadyDecommissioned {
            serial,
            stop_at: rfc3339_unix(z.stop_at),
            delete_at: rfc3339_unix(z.delete_at),
        }
        .into());
    }
    let current = decode_data(&latest)?;
    if crate::order::total_users(&current.entitlements) == 0 {
        return Err(PolicyError::NoUsers { serial }.into());
    }
    let mut order = stored_order(&latest)?;
    for count in order.profiles.values_mut() {
        *count = 0;
    }
    for base in order.bases.values_mut() {
        base.count = 0;
        for count in base.addons.values_mut() {
            *count = 0;
        }
    }
    for (name, line) in &mut order.features {
        let general = issuer
            .catalog
            .feature(name)
            .is_some_and(|f| f.category == FeatureCategory::General);
        if general {
            *line = match line {
                crate::order::FeatureOrder::Quantity(_) => crate::order::FeatureOrder::Quantity(0),
                crate::order::FeatureOrder::Detailed { hidden, .. } => {
                    crate::order::FeatureOrder::Detailed {
                        quantity: Some(0),
                        hidden: *hidden,
                    }
                }
            };
        }
    }
    // General features of packages default to the user count: zero too.
    let mut planned = plan_modify(w, issuer, &serial, &order, None, opts)?;
    planned.event = "decommission";
    let bytes = issuance::sign_planned(issuer, &planned)?;
    issuance::record(w, issuer, planned, bytes)
}

/// What `tessera share` issued.
#[derive(Clone, Debug)]
pub struct Shared {
    /// The client's license (`sharing = client of SERVER`, no
    /// entitlements).
    pub client: Issued,
    /// The server's license re-issued with the server role, when it did
    /// not have it yet.
    pub server: Option<Issued>,
}

/// Options of [`share`].
#[derive(Clone, Debug, Default)]
pub struct ShareOptions<'a> {
    /// The issue time.
    pub now: DateTime<Utc>,
    /// The client's request (required for a client without a license).
    pub request: Option<&'a RequestData>,
    /// Name of a client without a license yet.
    pub pbx_name: Option<&'a str>,
    /// `--new-device-key`: the request of a licensed client may be signed
    /// by a device key its binding never used
    /// ([`issuance::IssueOptions::new_device_key`]).
    pub new_device_key: bool,
    /// `--retire-old-keys` (with `new_device_key`): the client binding's
    /// other device keys are withdrawn
    /// ([`issuance::IssueOptions::retire_old_keys`]).
    pub retire_old_keys: bool,
}

/// Shares the user licenses of `server` with `client` (`tessera share`,
/// docs/rules.md: sharing licenses for failover): a client license with no
/// entitlements and the server's serial, and, when the server is not a
/// sharing server yet, its license re-issued with the server role.
///
/// # Errors
/// [`PolicyError::UnknownServer`], [`PolicyError::PbxDeleted`], the
/// rules of [`policy::share_allowed`], [`PolicyError::RequestForOtherSerial`],
/// [`PolicyError::BindingReplaced`] / [`PolicyError::WrongDevice`] (a
/// request from another device), [`Error::Usage`] for a client without a
/// license and without a request; ledger and key errors.
pub fn share(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    server: &str,
    client: &str,
    opts: &ShareOptions<'_>,
) -> Result<Shared, Error> {
    share_keyed(w, issuer, (server, client), opts, None)
}

/// [`share`] recording the client's request nonce under `key` with the
/// client's license ([`issuance::answer_once`]'s `answer`).
///
/// # Errors
/// As [`share`].
pub fn share_recorded(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    (server, client): (&str, &str),
    opts: &ShareOptions<'_>,
    key: &str,
) -> Result<Shared, Error> {
    share_keyed(w, issuer, (server, client), opts, Some(key))
}

/// [`share`], recording `idem_key` with the client's license.
fn share_keyed(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    (server, client): (&str, &str),
    opts: &ShareOptions<'_>,
    idem_key: Option<&str>,
) -> Result<Shared, Error> {
    let now = opts.now;
    let at = now.timestamp();
    if let Some(name) = opts.pbx_name {
        crate::validate::text("--pbx-name", name)?;
    }
    let server = resolve_known_serial(w, server)?;
    let server_rec = in_force(w, &server)?.ok_or_else(|| PolicyError::UnknownServer {
        server: server.clone(),
    })?;
    policy::not_deleted(&server, w.schedule(&server)?, now)?;
    let server_data = decode_data(&server_rec)?;

    // The client: licensed already, or a new PBX asking with a request.
    let mut client_serial = resolve_serial(w, client)?;
    let mut converted_from = None;
    if let Some(r) = opts.request {
        match request_serial(w, r)? {
            Some(s) if s == client_serial => {}
            Some(s) => {
                return Err(PolicyError::RequestForOtherSerial {
                    serial: client_serial,
                    request: s,
                }
                .into())
            }
            None => match &r.hw_serial {
                // A new appliance as client: its HW serial is converted.
                Some(hw) if *hw == client_serial => {
                    policy::share_allowed(&server, &server_data, hw, r.platform, None)?;
                    client_serial = w.next_free_serial(chrono::Datelike::year(&now))?;
                    w.convert_hw_serial(hw, &client_serial, true, at)?;
                    crate::registry::add(
                        w,
                        issuer.catalog,
                        &crate::registry::NewPbx {
                            customer: server_data.customer.clone(),
                            name: opts.pbx_name.unwrap_or_default().to_owned(),
                            model: String::new(),
                            platform: r.platform,
                            cycle: server_data.term.cycle,
                            profiles: Default::default(),
                            storage: 0,
                            policy: None,
                        },
                        Some(&client_serial),
                        at,
                    )?;
                    converted_from = Some(hw.clone());
                }
                _ => {
                    return Err(PolicyError::RequestForOtherSerial {
                        serial: client_serial,
                        request: r
                            .hw_serial
                            .clone()
                            .unwrap_or_else(|| "a device without a serial".into()),
                    }
                    .into())
                }
            },
        }
    }
    let current_rec = if converted_from.is_some() {
        None
    } else {
        in_force(w, &client_serial)?
    };
    let current = current_rec.as_ref().map(decode_data).transpose()?;
    let platform = match (opts.request, &current) {
        (Some(r), _) => r.platform,
        (None, Some(c)) => c.platform,
        (None, None) => {
            return Err(Error::Usage(format!(
                "{client_serial} has no license yet: pass the client's request with --request FILE"
            )))
        }
    };
    if current.is_some() {
        policy::not_deleted(&client_serial, w.schedule(&client_serial)?, now)?;
    }
    // The request of a licensed client is its device's (its key, then its
    // identity) before any rule about the sharing is looked at: a forged
    // copy learns nothing more.
    let mut key_standing = None;
    if let (Some(c), Some(r)) = (&current, opts.request) {
        if c.platform != r.platform {
            return Err(PolicyError::PlatformChange {
                serial: client_serial,
                from: PlatformName::of(c.platform).as_str().into(),
                to: PlatformName::of(r.platform).as_str().into(),
            }
            .into());
        }
        key_standing = Some(issuance::check_requester(
            w,
            &client_serial,
            &c.binding,
            r,
            opts.new_device_key,
        )?);
    }
    policy::share_allowed(
        &server,
        &server_data,
        &client_serial,
        platform,
        current.as_ref(),
    )?;

    let d = defaults(issuer.catalog, platform)?;
    let binding = match (opts.request, &current) {
        (Some(r), _) => binding_for(platform, d, r)?,
        (None, Some(c)) => c.binding.clone(),
        (None, None) => return Err(Error::Usage("a new client needs --request".into())),
    };
    let term = match &current {
        Some(c) => c.term,
        None => server_data.term,
    };
    // A new client's name: --pbx-name, else the name the registry has
    // for it (a VM or Cloud client entered with `tessera pbx add`).
    let new_client_name = match opts.pbx_name {
        Some(name) => name.to_owned(),
        None if current_rec.is_none() => w
            .pbx(&client_serial)?
            .map(|row| row.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut order = match &current_rec {
        Some(r) => stored_order(r)?,
        None => Order {
            customer: server_data.customer.clone(),
            pbx_name: new_client_name,
            model: None,
            policy: None,
            platform: PlatformName::of(platform),
            cycle: CycleName::of(term.cycle),
            term_start: rfc3339_unix(term.start),
            air_gapped: false,
            profiles: Default::default(),
            features: Default::default(),
            packages: Vec::new(),
            bases: Default::default(),
            storage_units: 0,
            services: Default::default(),
            sharing: SharingOrder::None,
            devices: Vec::new(),
            assignments: Vec::new(),
        },
    };
    order.sharing = SharingOrder::ClientOf(server.clone());
    order.profiles.clear();
    order.features.clear();
    order.packages.clear();
    order.bases.clear();
    order.services.clear();
    order.storage_units = 0;
    let mut warnings = Vec::new();
    let schedule = w.schedule(&client_serial)?;
    if schedule.is_some() {
        // The server's users serve the client from now on.
        w.cancel_schedule(&client_serial, at)?;
        warnings.push(Warning::ScheduleCancelled);
    }
    let previous_serial = converted_from
        .clone()
        .or_else(|| current.as_ref().and_then(|c| c.previous_serial.clone()));
    let values = issuance::pbx_policy(
        w,
        issuer.catalog,
        &client_serial,
        current.as_ref(),
        current_rec.as_ref().map(|r| r.row.order_json.as_str()),
        at,
    )?;
    let client_policy = crate::registry::license_policy(&values);
    let data = LicenseData {
        issuer: issuer.catalog.vendor.clone(),
        serial: client_serial.clone(),
        issued_at: at,
        not_before: start_of_validity(at, &client_policy),
        lease_end: policy::lease_end(
            now,
            &term,
            values.lease,
            values.max_lease,
            order.air_gapped,
            None,
        ),
        id: random_id()?,
        platform,
        sequence: w.next_sequence(&client_serial)?,
        binding,
        previous_serial,
        term,
        policy: client_policy,
        entitlements: EntitlementsData::default(),
        services: Vec::new(),
        sharing: SharingData::Client(server.clone()),
        customer: server_data.customer.clone(),
        pbx_name: match &current {
            Some(c) => c.pbx_name.clone(),
            None => order.pbx_name.clone(),
        },
    };
    let bytes = sign(issuer, &data)?;
    let record = w.append(record_for(
        &data,
        bytes,
        Action::Share,
        order.to_json(),
        idem_key,
        opts.request.map(|r| r.device_key),
    ))?;
    w.add_event(
        &client_serial,
        data.sequence,
        "share",
        &json!({ "role": "client", "server": server }),
        at,
    )?;
    let key_detail = match (key_standing, opts.request) {
        (Some(standing), Some(r)) => issuance::record_key_standing(
            w,
            standing,
            opts.retire_old_keys,
            (&client_serial, data.sequence),
            &r.device_key,
            at,
        )?,
        _ => Vec::new(),
    };
    let client_issued = Issued {
        record,
        license: data,
        converted_from,
        prorations: Vec::new(),
        decreases: Vec::new(),
        warnings,
        details: core::iter::once((
            "sharing",
            format!("client of {server}, no licenses of its own"),
        ))
        .chain(key_detail)
        .collect(),
    };

    // The server's role, once.
    let server_issued = if server_data.sharing == SharingData::Server {
        None
    } else {
        let mut data = server_data;
        let mut order = stored_order(&server_rec)?;
        order.sharing = SharingOrder::Server;
        data.sharing = SharingData::Server;
        let stop_at = w.schedule(&server)?.map(|z| z.stop_at);
        issuance::time_from_record(
            w,
            issuer.catalog,
            &mut data,
            &server_rec.row.order_json,
            stop_at,
            now,
        )?;
        stamp_issue(&mut data, at);
        data.id = random_id()?;
        data.sequence = w.next_sequence(&server)?;
        let bytes = sign(issuer, &data)?;
        let record = w.append(record_for(
            &data,
            bytes,
            Action::Share,
            order.to_json(),
            None,
            None,
        ))?;
        w.add_event(
            &server,
            data.sequence,
            "share",
            &json!({ "role": "server", "client": client_serial }),
            at,
        )?;
        Some(Issued {
            record,
            license: data,
            converted_from: None,
            prorations: Vec::new(),
            decreases: Vec::new(),
            warnings: Vec::new(),
            details: vec![("sharing", format!("server of {client_serial}"))],
        })
    };
    Ok(Shared {
        client: client_issued,
        server: server_issued,
    })
}

/// Voids the license `id`, issued in error (`tessera void`): within 1
/// business day of its issue, only the license in force, never a void. The
/// void is the next sequence of the serial, so devices refuse the voided
/// file from then on; it restores the license before the voided one (new
/// id, issue time and lease), or, for a first activation, grants nothing
/// and ends at once (locked, no grace) until the right license is issued.
/// The ledger keeps both rows and records the reason.
///
/// # Errors
/// [`Error::Usage`] for an id that is not in the ledger,
/// [`PolicyError::VoidSuperseded`], [`PolicyError::VoidOfVoid`],
/// [`PolicyError::VoidTooLate`], [`PolicyError::PbxDeleted`]; ledger and
/// key errors.
pub fn void(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    id: &[u8; 16],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Issued, Error> {
    let id_hex = hex::encode(id);
    let reason = reason.trim();
    crate::validate::text("--reason", reason)?;
    if reason.is_empty() {
        return Err(Error::Usage(
            "say what was wrong with --reason TEXT (it is recorded in the ledger)".into(),
        ));
    }
    let voided = w.by_license_id(id)?.ok_or_else(|| {
        Error::Usage(format!(
            "no license {id_hex} in the ledger; `tessera ledger show SERIAL` lists the license ids"
        ))
    })?;
    let serial = voided.row.serial.clone();
    let history = w.history(&serial)?;
    let latest = history.last().map_or(0, |r| r.row.sequence);
    if voided.row.sequence != latest {
        return Err(PolicyError::VoidSuperseded {
            id: id_hex,
            serial,
            sequence: voided.row.sequence,
            latest,
        }
        .into());
    }
    if voided.row.action == Action::Void {
        return Err(PolicyError::VoidOfVoid { id: id_hex }.into());
    }
    policy::void_in_time(&id_hex, voided.row.issued_at, now, &issuer.catalog.holidays)?;
    let schedule = w.schedule(&serial)?;
    policy::not_deleted(&serial, schedule, now)?;
    let at = now.timestamp();
    let previous = history
        .iter()
        .rev()
        .find(|r| r.row.sequence < voided.row.sequence);
    let (mut data, order_json, restored, term_renewed) = match previous {
        Some(prev) => {
            let mut data = decode_data(prev)?;
            let before = data.term.start;
            data.term = policy::auto_renew(&data.term, now);
            let term_renewed = data.term.start != before;
            let mut stop_at = schedule.map(|z| z.stop_at);
            if stop_at.is_some() && crate::order::total_users(&data.entitlements) > 0 {
                // The void of a decrease to zero: the users are back.
                w.cancel_schedule(&serial, at)?;
                stop_at = None;
            }
            issuance::time_from_record(
                w,
                issuer.catalog,
                &mut data,
                &prev.row.order_json,
                stop_at,
                now,
            )?;
            (
                data,
                prev.row.order_json.clone(),
                Some(prev.row.sequence),
                term_renewed,
            )
        }
        None => {
            // A first activation in error: nothing is licensed.
            let mut data = decode_data(&voided)?;
            data.entitlements = EntitlementsData::default();
            data.services = Vec::new();
            data.sharing = SharingData::None;
            data.lease_end = at;
            data.policy.grace = 0;
            data.policy.after_grace = AfterGrace::Locked;
            (data, voided.row.order_json.clone(), None, false)
        }
    };
    stamp_issue(&mut data, at);
    data.id = random_id()?;
    data.sequence = w.next_sequence(&serial)?;
    let bytes = sign(issuer, &data)?;
    let record = w.append(record_for(
        &data,
        bytes,
        Action::Void,
        order_json,
        None,
        None,
    ))?;
    w.add_event(
        &serial,
        data.sequence,
        "void",
        &json!({
            "reason": reason,
            "voided_license_id": id_hex,
            "voided_sequence": voided.row.sequence,
            "restored_sequence": restored,
        }),
        at,
    )?;
    // Billing: what the voided license charged is credited in full (it
    // was issued in error); the restored content was billed with its own
    // license, except a new term it enters now, which is charged as a
    // renewal would be.
    let mut lines = crate::billing::credits(&w.charges_of(
        &serial,
        voided.row.sequence,
        voided.row.issued_at,
    )?);
    if term_renewed {
        lines.extend(crate::billing::charges(
            issuer.catalog,
            None,
            &data,
            at,
            true,
        ));
    }
    w.add_charges(&serial, data.sequence, lines, at)?;
    let mut details = vec![
        (
            "voids",
            format!(
                "license {id_hex} (sequence {}, {} {})",
                voided.row.sequence,
                voided.row.action.as_str(),
                rfc3339_unix(voided.row.issued_at)
            ),
        ),
        ("reason", reason.to_owned()),
    ];
    details.push((
        "restores",
        match restored {
            Some(s) => format!("the content of sequence {s}"),
            None => "nothing: a first activation; issue the right license with `tessera issue`"
                .to_owned(),
        },
    ));
    Ok(Issued {
        record,
        license: data,
        converted_from: None,
        prorations: Vec::new(),
        decreases: Vec::new(),
        warnings: Vec::new(),
        details,
    })
}

#[cfg(test)]
mod tests;
