//! Issuing, renewing and replacing licenses inside a ledger transaction:
//! the one code path behind `tessera issue`, `issue --bulk`, `renew`,
//! `replace` and the demo.
//!
//! Every function takes a [`Writer`] (a `BEGIN IMMEDIATE` transaction), so
//! the sequence it reads is the one it inserts; the caller commits. The
//! license is built as [`LicenseData`] and signed with the verifier's
//! [`sign_license`], never encoded here.

use chrono::{DateTime, Datelike, Utc};
use rand_core::{OsRng, RngCore};
use tessera_keys::Signer;
use tessera_verifier::activation::ActivationCode;
use tessera_verifier::claims::{Component, Platform, Policy, Term};
use tessera_verifier::encode::{
    sign_license, BindingData, EncodeError, LicenseData, RequestData, SharingData,
};
use tessera_verifier::text::escaped;
use tessera_verifier::{armor, decode_license_unverified};

use crate::calendar::{CycleName, PlatformName};
use crate::catalog::{component_kind_name, Catalog, PlatformDefaults, PolicyValues};
use crate::error::Error;
use crate::ledger::{Action, LedgerError, NewRecord, Queries, Record, Writer};
use crate::order::Order;
use crate::policy::{self, PolicyError, Proration, ScheduleChange, ServerInfo, Warning};
use crate::registry;

/// Who issues, with what.
pub struct Issuer<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// The signing key (shared by the signing threads of bulk issuance).
    pub signer: &'a (dyn Signer + Sync),
    /// The operator recorded in the ledger.
    pub operator: &'a str,
}

/// Options of one issuance.
#[derive(Clone, Debug, Default)]
pub struct IssueOptions<'a> {
    /// The issue time.
    pub now: DateTime<Utc>,
    /// `--approval REF` for decreases.
    pub approval: Option<&'a str>,
    /// `--change`: change the license in force.
    pub change: bool,
    /// The key recorded with the license: the request's nonce
    /// ([`request_nonce_key`]) when the license answers a request
    /// ([`answer_once`], bulk rows).
    pub idem_key: Option<&'a str>,
    /// The order's JSON ([`Order::to_json`]) when the caller has it
    /// already (bulk rows, which compare it with what answered their
    /// request before).
    pub order_json: Option<&'a str>,
    /// `--new-device-key`: a request about a licensed PBX may be signed by
    /// a device key its binding never used ([`check_requester`]); the
    /// acceptance is recorded in the ledger.
    pub new_device_key: bool,
    /// `--retire-old-keys` (with `new_device_key`): the binding's other
    /// device keys are withdrawn in the same transaction
    /// ([`RETIRE_KEYS`]), so a copy of the old key renews nothing.
    pub retire_old_keys: bool,
}

/// A license that was issued (recorded, not yet committed).
#[derive(Clone, Debug)]
pub struct Issued {
    /// The ledger row (with the license bytes).
    pub record: Record,
    /// The license content.
    pub license: LicenseData,
    /// The HW serial converted to the SW serial by this issuance.
    pub converted_from: Option<String>,
    /// Prorated services.
    pub prorations: Vec<Proration>,
    /// What a change decreased.
    pub decreases: Vec<String>,
    /// Warnings for the operator.
    pub warnings: Vec<Warning>,
    /// What else the summary says (label, value): the reason of a
    /// replacement or void, the license a void supersedes ...
    pub details: Vec<(&'static str, String)>,
}

impl Issued {
    /// The license armored for transport (`spec/FORMAT.md` §8).
    #[must_use]
    pub fn armored(&self) -> String {
        armor::encode(&self.record.row.bytes, armor::LABEL_LICENSE)
    }

    /// A license the ledger recorded before ([`Answer::Again`]), as an
    /// issued one: the same bytes, nothing prorated, warned or converted.
    ///
    /// # Errors
    /// [`Error::Ledger`] when the recorded bytes do not decode.
    pub fn recorded(record: Record) -> Result<Self, Error> {
        Ok(Self {
            license: decode_data(&record)?,
            record,
            converted_from: None,
            prorations: Vec::new(),
            decreases: Vec::new(),
            warnings: Vec::new(),
            details: Vec::new(),
        })
    }
}

/// A fresh random 16-byte license id.
///
/// # Errors
/// [`Error::Rng`].
pub fn random_id() -> Result<[u8; 16], Error> {
    let mut id = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut id)
        .map_err(|e| Error::Rng(e.to_string()))?;
    Ok(id)
}

/// The binding of a new license: the request's identity digests of the
/// kinds the catalog binds for the platform, with its threshold and
/// required kinds, under the request's salt.
///
/// # Errors
/// [`PolicyError::NotEnoughIdentity`] when the request lacks a required
/// kind or has fewer bound components than the threshold.
pub fn binding_for(
    platform: Platform,
    defaults: &PlatformDefaults,
    request: &RequestData,
) -> Result<BindingData, PolicyError> {
    let mut components: Vec<Component> = request
        .identity
        .iter()
        .filter(|i| defaults.binding.contains(&i.kind))
        .map(|i| Component {
            kind: i.kind,
            digest: i.digest,
            required: defaults.required.contains(&i.kind),
        })
        .collect();
    components.sort_by_key(|c| (c.kind, c.digest));
    components.dedup_by_key(|c| (c.kind, c.digest));
    components.truncate(16);
    let missing: Vec<String> = defaults
        .required
        .iter()
        .filter(|k| !components.iter().any(|c| c.kind == **k))
        .map(|k| component_kind_name(*k))
        .collect();
    if components.len() < usize::from(defaults.threshold) || !missing.is_empty() {
        return Err(PolicyError::NotEnoughIdentity {
            platform: PlatformName::of(platform).as_str().into(),
            wanted: defaults
                .binding
                .iter()
                .map(|k| component_kind_name(*k))
                .collect::<Vec<_>>()
                .join(", "),
            have: components.len(),
            needed: defaults.threshold,
            required: if missing.is_empty() {
                String::new()
            } else {
                format!(", and {} is required", missing.join(", "))
            },
        });
    }
    Ok(BindingData {
        threshold: defaults.threshold,
        salt: request.salt,
        components,
    })
}

/// How many components of `binding` the request's identity matches, and
/// whether that binds (threshold met, every required one matched). A
/// request under another salt matches nothing.
#[must_use]
pub fn binding_match(binding: &BindingData, request: &RequestData) -> (u8, bool) {
    if binding.salt != request.salt {
        return (0, false);
    }
    let mut matched = 0u8;
    let mut required_ok = true;
    for c in &binding.components {
        let hit = request
            .identity
            .iter()
            .any(|i| i.kind == c.kind && i.digest == c.digest);
        if hit {
            matched = matched.saturating_add(1);
        } else if c.required {
            required_ok = false;
        }
    }
    (matched, required_ok && matched >= binding.threshold)
}

/// The policy a PBX recorded ([`crate::registry`]): entering the PBX in
/// the registry first when it predates it (`current`: its license in
/// force, `order_json`: that license's order).
///
/// # Errors
/// [`PolicyError::NotRegistered`] for a serial with neither a registry
/// entry nor a license, [`Error::Ledger`].
pub(crate) fn pbx_policy(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    serial: &str,
    current: Option<&LicenseData>,
    order_json: Option<&str>,
    at: i64,
) -> Result<PolicyValues, Error> {
    let row = registry::entry_for(w, catalog, serial, current, order_json, at)?;
    Ok(registry::recorded(&row)?.1)
}

/// Sets the policy and the lease of `data`, a license of its PBX
/// re-issued at `now` over `data.term`: the PBX's recorded policy
/// ([`pbx_policy`], `order_json` being the order of the license it comes
/// from), a stop scheduled at `stop_at` ([`effective_policy`]) and the
/// lease from `now` ([`policy::lease_end`]).
///
/// # Errors
/// As [`pbx_policy`].
pub(crate) fn time_from_record(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    data: &mut LicenseData,
    order_json: &str,
    stop_at: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let serial = data.serial.clone();
    let values = pbx_policy(
        w,
        catalog,
        &serial,
        Some(data),
        Some(order_json),
        now.timestamp(),
    )?;
    let air_gapped = Order::parse("ledger", order_json, true)
        .map(|o| o.air_gapped)
        .unwrap_or(false);
    data.policy = effective_policy(
        &values,
        stop_at,
        crate::order::total_users(&data.entitlements),
    );
    data.lease_end = policy::lease_end(
        now,
        &data.term,
        values.lease,
        values.max_lease,
        air_gapped,
        stop_at,
    );
    Ok(())
}

/// The policy a license gets from recorded values: a PBX without users
/// whose stop is scheduled stops then, with no grace, locked (docs/rules.md:
/// stopped after 5 calendar days).
pub(crate) fn effective_policy(v: &PolicyValues, stop_at: Option<i64>, users: u64) -> Policy {
    let mut p = registry::license_policy(v);
    if stop_at.is_some() && users == 0 {
        p.grace = 0;
        p.after_grace = tessera_verifier::claims::AfterGrace::Locked;
    }
    p
}

pub(crate) fn defaults(catalog: &Catalog, platform: Platform) -> Result<&PlatformDefaults, Error> {
    catalog.platform(platform).ok_or_else(|| {
        Error::Usage(format!(
            "the catalog has no defaults for platform {}",
            PlatformName::of(platform).as_str()
        ))
    })
}

pub(crate) fn decode_data(record: &Record) -> Result<LicenseData, Error> {
    decode_license_unverified(&record.row.bytes)
        .map(|l| l.to_data())
        .map_err(|e| {
            Error::Ledger(LedgerError::Integrity {
                entry: u64::try_from(record.id).unwrap_or(0),
                reason: format!("the license bytes do not decode ({e})"),
            })
        })
}

/// The start of a license's validity (`nbf`) issued at `issued_at`: earlier
/// by the policy's rollback tolerance, so that a device whose clock is up to
/// that much behind the vendor's still sees the fresh license in force
/// instead of `not_yet_valid` (`spec/RUNTIME.md` §5.2). The device's own
/// clock checks and the recovery rule use `iat`, not `nbf`.
#[must_use]
pub(crate) fn start_of_validity(issued_at: i64, policy: &Policy) -> i64 {
    issued_at.saturating_sub(i64::from(policy.rollback_tolerance))
}

/// Dates a license re-issued from an earlier one at `at`: its `iat`, and
/// its `nbf` from `data.policy` ([`start_of_validity`]), set together.
pub(crate) fn stamp_issue(data: &mut LicenseData, at: i64) {
    data.issued_at = at;
    data.not_before = start_of_validity(at, &data.policy);
}

pub(crate) fn sign(issuer: &Issuer<'_>, data: &LicenseData) -> Result<Vec<u8>, Error> {
    // Whatever path built the content: nothing that breaks the text or
    // serial rules is ever signed.
    crate::validate::license(data)?;
    sign_license(data, &issuer.signer.kid(), |m| issuer.signer.sign(m)).map_err(|e| match e {
        EncodeError::Invalid(m) => Error::Encode(m),
        EncodeError::Sign(k) => Error::Key(k),
        _ => Error::Usage("signing failed".into()),
    })
}

pub(crate) fn record_for(
    data: &LicenseData,
    bytes: Vec<u8>,
    action: Action,
    order_json: String,
    idem_key: Option<&str>,
    request_key: Option<[u8; 32]>,
) -> NewRecord {
    NewRecord {
        action,
        bytes,
        order_json,
        issued_at: data.issued_at,
        idem_key: idem_key.map(str::to_owned),
        request_key,
    }
}

/// A license decided and built but not yet signed nor recorded: the
/// first half of [`issue`]. Bulk issuance plans many rows, signs them in
/// parallel and records them in order.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The license content (sequence included).
    pub data: LicenseData,
    action: Action,
    order_json: String,
    converted_from: Option<String>,
    schedule: ScheduleChange,
    prorations: Vec<Proration>,
    decreases: Vec<String>,
    warnings: Vec<Warning>,
    idem_key: Option<String>,
    request_key: Option<[u8; 32]>,
    approval: Option<String>,
    /// The ledger event a change with an approval or decreases records
    /// (`change`, or `decommission`).
    pub(crate) event: &'static str,
    /// How the request's device key stood with the binding in force.
    key_standing: Option<KeyStanding>,
    /// `--retire-old-keys`: withdraw the binding's other keys.
    retire_old_keys: bool,
}

/// Issues a license for `order` and `request`: a first license, or with
/// `opts.change` a change of the license in force.
///
/// A first activation of a HW appliance (request with a HW serial and no
/// SW serial) gets a new SW serial `SW-YYYY-NNNNNN` from the ledger, the
/// HW → SW mapping is recorded and the HW serial goes into the license's
/// previous serial. The binding is the request's identity digests of the
/// kinds the catalog binds for the platform, under the request's salt.
///
/// # Errors
/// [`Error::Order`], [`Error::Policy`], [`Error::Ledger`], [`Error::Key`],
/// [`Error::Encode`], [`Error::Rng`].
pub fn issue(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    order: &Order,
    request: &RequestData,
    opts: &IssueOptions<'_>,
) -> Result<Issued, Error> {
    let planned = plan(w, issuer, order, request, opts)?;
    let bytes = sign_planned(issuer, &planned)?;
    record(w, issuer, planned, bytes)
}

/// The first half of [`issue`]: checks every rule and builds the license.
/// Writes the serial allocation and the HW → SW mapping (so later plans in
/// the same transaction see them), not the license.
///
/// # Errors
/// As [`issue`].
pub fn plan(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    order: &Order,
    request: &RequestData,
    opts: &IssueOptions<'_>,
) -> Result<Planned, Error> {
    let catalog = issuer.catalog;
    let resolved = order.resolve(catalog)?;
    if request.platform != resolved.platform {
        return Err(PolicyError::PlatformMismatch {
            request: PlatformName::of(request.platform).as_str().into(),
            order: PlatformName::of(resolved.platform).as_str().into(),
        }
        .into());
    }
    // A request answered once (its nonce recorded) is never answered
    // again. A caller that records the nonce with this license
    // (`answer_once`, `activate_online`, bulk rows) looked it up before:
    // once is enough (the ledger's unique key backs it).
    let nonce_key = request_nonce_key(request);
    if opts.idem_key != Some(nonce_key.as_str()) && w.by_idem_key(&nonce_key)?.is_some() {
        return Err(PolicyError::RequestReplayed.into());
    }
    let now = opts.now;
    let mut converted_from = None;
    let serial = match (&request.serial, &request.hw_serial) {
        (Some(sw), Some(hw)) => {
            check_hw_serial(w, sw, hw)?;
            sw.clone()
        }
        (Some(sw), None) => sw.clone(),
        (None, Some(hw)) => match w.sw_serial_of(hw)? {
            Some(sw) => sw,
            None => {
                converted_from = Some(hw.clone());
                // Allocated with the conversion below, in one entry.
                w.next_free_serial(now.year())?
            }
        },
        (None, None) => {
            return Err(Error::Usage(
                "the request names neither a SW nor a HW serial".into(),
            ))
        }
    };
    // The first license of a PBX entered with `tessera pbx add` (checked
    // after the licensing rules, whose refusals say more): it is licensed
    // (and billed) as the registry says. Another platform has its own
    // refusal, `RegisteredPlatform`.
    let registered = if converted_from.is_none() && w.latest(&serial)?.is_none() {
        w.pbx(&serial)?
            .filter(|row| row.platform == PlatformName::of(resolved.platform).as_str())
    } else {
        None
    };
    let checked =
        registered.map(|row| registry::check_first_order(issuer.catalog, &row, order, &resolved));
    let mut planned = plan_serial(
        w,
        issuer,
        order,
        resolved,
        serial,
        converted_from,
        Some(request),
        opts,
    )?;
    if let Some(checked) = checked {
        checked?;
    }
    // The first license of an appliance entered with `pbx add --hw-serial`
    // (its HW serial mapped then) converts it as much as a first
    // activation does: the summary says so.
    if planned.converted_from.is_none()
        && planned.action == Action::Issue
        && request.serial.is_none()
    {
        planned.converted_from.clone_from(&request.hw_serial);
    }
    Ok(planned)
}

/// A request that names the SW serial `sw` and comes from the appliance
/// `hw` is that PBX's: `hw` is no other PBX's HW serial, and a PBX the
/// registry entered for an appliance (`pbx add --hw-serial`) and never
/// licensed is activated by that appliance only. (A licensed PBX's binding
/// holds its HW serial; [`check_device`] checks it.)
///
/// # Errors
/// [`PolicyError::HwSerialOfAnother`], [`Error::Ledger`].
fn check_hw_serial(w: &Writer<'_>, sw: &str, hw: &str) -> Result<(), Error> {
    let refused = |why: String| {
        Err(PolicyError::HwSerialOfAnother {
            serial: sw.to_owned(),
            hw_serial: hw.to_owned(),
            why,
        }
        .into())
    };
    match w.sw_serial_of(hw)? {
        Some(owner) if owner == sw => return Ok(()),
        Some(_) => return refused("that HW serial is another PBX's".into()),
        None => {}
    }
    if w.latest(sw)?.is_none() {
        if let Some(registered) = w.hw_serial_of(sw)? {
            return refused(format!(
                "the registry entered {sw} for the appliance {registered}"
            ));
        }
    }
    Ok(())
}

/// The license in force for `serial`: its latest license, unless that is
/// the void of a first activation (the serial then counts as never
/// licensed).
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn in_force(w: &Writer<'_>, serial: &str) -> Result<Option<Record>, Error> {
    let Some(latest) = w.latest(serial)? else {
        return Ok(None);
    };
    if latest.row.action == Action::Void && clears(&latest, &w.events(serial)?) {
        return Ok(None);
    }
    Ok(Some(latest))
}

/// [`in_force`] on a reader's snapshot (`pbx show`, `pbx list`).
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn in_force_in(q: &dyn Queries, serial: &str) -> Result<Option<Record>, Error> {
    let Some(latest) = q.latest(serial)? else {
        return Ok(None);
    };
    if latest.row.action == Action::Void && clears(&latest, &q.events(serial)?) {
        return Ok(None);
    }
    Ok(Some(latest))
}

/// Whether the void `latest` voided a first activation, restoring no
/// earlier license: the serial then has no license in force.
fn clears(latest: &Record, events: &[crate::ledger::Event]) -> bool {
    events.iter().any(|e| {
        e.sequence == latest.row.sequence
            && e.kind == "void"
            && e.detail
                .get("restored_sequence")
                .is_none_or(serde_json::Value::is_null)
    })
}

/// The replaced binding `request` comes from (matched by its digests or by
/// the device key of a request it answered): `Some(Some(..))` when the
/// ledger recorded the replacement, `Some(None)` for a ledger from before
/// replaced bindings were recorded (any older binding it matches was
/// replaced), `None` when it comes from no replaced binding.
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn replaced_binding_of(
    w: &Writer<'_>,
    serial: &str,
    request: &RequestData,
) -> Result<Option<Option<crate::ledger::ReplacedBinding>>, Error> {
    let key = hex::encode(request.device_key);
    let history = w.history(serial)?;
    for old in w.replaced_bindings(serial)? {
        let by_key = old.device_keys.contains(&key);
        let by_binding = history
            .iter()
            .find(|r| r.row.sequence == old.sequence)
            .and_then(|r| decode_data(r).ok())
            .is_some_and(|l| binding_match(&l.binding, request).1);
        if by_key || by_binding {
            return Ok(Some(Some(old)));
        }
    }
    let replaced = history
        .iter()
        .rev()
        .skip(1)
        .filter(|r| r.row.action != Action::Void)
        .filter_map(|r| decode_data(r).ok())
        .any(|old| binding_match(&old.binding, request).1);
    if replaced {
        let current = history.last().and_then(|r| decode_data(r).ok());
        if !current.is_some_and(|c| binding_match(&c.binding, request).1) {
            return Ok(Some(None));
        }
    }
    Ok(None)
}

/// Whether `request` comes from the device `binding` binds; if not, why:
/// a binding a replacement superseded (matched by its digests or by the
/// device key of a request it answered) or simply another device.
///
/// # Errors
/// [`PolicyError::BindingReplaced`], [`PolicyError::WrongDevice`],
/// [`Error::Ledger`].
pub(crate) fn check_device(
    w: &Writer<'_>,
    serial: &str,
    binding: &BindingData,
    request: &RequestData,
) -> Result<(), Error> {
    let (matched, binds) = binding_match(binding, request);
    if binds {
        return Ok(());
    }
    if let Some(old) = replaced_binding_of(w, serial, request)? {
        return Err(binding_replaced(serial, old));
    }
    Err(PolicyError::WrongDevice {
        serial: serial.to_owned(),
        matched,
        needed: binding.threshold,
    }
    .into())
}

/// The refusal of a request from the replaced binding `old` of `serial`
/// ([`replaced_binding_of`]).
fn binding_replaced(serial: &str, old: Option<crate::ledger::ReplacedBinding>) -> Error {
    PolicyError::BindingReplaced {
        serial: serial.to_owned(),
        when: old.map_or_else(String::new, |o| {
            format!(
                " on {} by license {} ({})",
                crate::calendar::rfc3339_unix(o.at),
                o.replaced_by,
                o.reason
            )
        }),
    }
    .into()
}

/// Where the current binding of `serial` starts: the sequence of the
/// license that bound the PBX to the device it runs on now (its latest
/// replacement, or the first license after a voided first activation), 1
/// when neither happened. Read from the events and replaced bindings, a
/// few rows per PBX, never its whole history.
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn binding_start(w: &Writer<'_>, serial: &str) -> Result<u32, Error> {
    Ok(binding_start_of(
        &w.events(serial)?,
        &w.replaced_bindings(serial)?,
    ))
}

/// [`binding_start`] from the serial's events and replaced bindings.
fn binding_start_of(
    events: &[crate::ledger::Event],
    replaced: &[crate::ledger::ReplacedBinding],
) -> u32 {
    let by_events = events
        .iter()
        .filter_map(|e| match e.kind.as_str() {
            "replace" => Some(e.sequence),
            // The void of a first activation (nothing restored): the
            // next license binds anew.
            "void"
                if e.detail
                    .get("restored_sequence")
                    .is_some_and(serde_json::Value::is_null) =>
            {
                Some(e.sequence.saturating_add(1))
            }
            _ => None,
        })
        .max();
    let by_replaced = replaced.iter().map(|b| b.replaced_by).max();
    by_events.max(by_replaced).unwrap_or(1)
}

/// The journal event that withdraws a binding's device keys
/// (`--retire-old-keys`): its detail lists the keys (`retired_keys`); a
/// key of a license before the event's no longer counts for the binding.
pub(crate) const RETIRE_KEYS: &str = "retire_keys";

/// The device keys the binding of `serial` that starts at sequence `from`
/// ([`binding_start`]) holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BindingKeys {
    /// Whether any license of the binding answered a request (a binding
    /// that recorded no key trusts the first: [`KeyStanding::FirstUse`]).
    pub recorded: bool,
    /// The keys (hex) that still count: those of the binding's licenses
    /// that answered a request, less a voided license's and less those a
    /// later [`RETIRE_KEYS`] event withdrew.
    pub keys: Vec<String>,
}

/// The device keys the binding of `serial` from sequence `from` on holds
/// ([`BindingKeys`]). A voided license's key no longer counts (voiding the
/// license that accepted a wrong key withdraws the key), nor does a key
/// of a license before a [`RETIRE_KEYS`] event (unless that event's own
/// license was voided: the void undoes it).
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn binding_keys(w: &Writer<'_>, serial: &str, from: u32) -> Result<BindingKeys, Error> {
    let events = w.events(serial)?;
    let KeyFloor {
        voided,
        retired_before,
        floor,
    } = key_floor(&events, from);
    // Every renewal asks this: the distinct keys, unless a license from
    // the floor on was voided (rare), which needs each license's key.
    let (recorded, keys) = if voided.iter().any(|v| *v >= floor) {
        let rows = w.request_key_rows(serial, floor)?;
        let recorded = !rows.is_empty();
        let mut keys: Vec<String> = rows
            .into_iter()
            .filter(|(seq, _)| !voided.contains(seq))
            .map(|(_, key)| key)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        (recorded, keys)
    } else {
        let keys = w.request_keys_since(serial, floor)?;
        (!keys.is_empty(), keys)
    };
    // A retirement in this binding was recorded by a license of it that
    // answered a request.
    Ok(BindingKeys {
        recorded: recorded || retired_before.is_some_and(|r| r >= from),
        keys,
    })
}

/// Where the keys of a binding from sequence `from` on start to count
/// ([`binding_keys`]).
struct KeyFloor {
    /// The sequences of voided licenses.
    voided: Vec<u32>,
    /// The latest [`RETIRE_KEYS`] event whose license was not voided.
    retired_before: Option<u32>,
    /// The first sequence whose keys count: `from`, or the retirement's.
    floor: u32,
}

/// The [`KeyFloor`] of a binding from `from` on, from the serial's events.
fn key_floor(events: &[crate::ledger::Event], from: u32) -> KeyFloor {
    let voided: Vec<u32> = events
        .iter()
        .filter(|e| e.kind == "void")
        .filter_map(|e| e.detail.get("voided_sequence")?.as_u64())
        .filter_map(|s| u32::try_from(s).ok())
        .collect();
    let retired_before = events
        .iter()
        .filter(|e| e.kind == RETIRE_KEYS && !voided.contains(&e.sequence))
        .map(|e| e.sequence)
        .max();
    // Keys of licenses before a retirement no longer count.
    let floor = retired_before.map_or(from, |r| r.max(from));
    KeyFloor {
        voided,
        retired_before,
        floor,
    }
}

/// How the device key that signed a request stands with the binding it
/// asks about ([`check_requester`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyStanding {
    /// A key of a request answered for the current binding.
    Known,
    /// The binding recorded no key (licenses from before request keys
    /// were recorded, or issued without a request): the first key is
    /// trusted and recorded with the license.
    FirstUse,
    /// A key the binding never used, accepted by the operator
    /// (`--new-device-key`): recorded as a `device_key` event.
    Accepted,
}

/// The replaced binding of `serial` that recorded device key `key`
/// (hex), if any.
///
/// # Errors
/// [`Error::Ledger`].
fn replaced_binding_with_key(
    w: &Writer<'_>,
    serial: &str,
    key: &str,
) -> Result<Option<crate::ledger::ReplacedBinding>, Error> {
    Ok(w.replaced_bindings(serial)?
        .into_iter()
        .find(|b| b.device_keys.iter().any(|k| k == key)))
}

/// Whether `request`, about the licensed PBX `serial` whose license in
/// force binds `binding`, may be answered: it comes from the bound device
/// ([`check_device`]) and is signed by a device key the current binding
/// holds ([`binding_keys`]), or by a new key the operator accepts
/// (`accept_new_key`). A binding that recorded no key trusts the first
/// one.
///
/// A new key is never accepted when the ledger knows it as a key of a
/// binding a replacement superseded (the old box of an RMA) or of another
/// PBX: the flag accepts a wiped device's new key, not a key that is
/// somebody else's.
///
/// The key is checked before the identity, so a copy of a request file
/// re-signed with another key (digests, salt and serials kept) learns
/// nothing more than that its key is unknown; a key of a binding a
/// replacement superseded still gets [`PolicyError::BindingReplaced`].
///
/// # Errors
/// [`PolicyError::UnknownDeviceKey`], [`PolicyError::ReplacedDeviceKey`],
/// [`PolicyError::DeviceKeyOfOtherPbx`], and those of [`check_device`].
pub(crate) fn check_requester(
    w: &Writer<'_>,
    serial: &str,
    binding: &BindingData,
    request: &RequestData,
    accept_new_key: bool,
) -> Result<KeyStanding, Error> {
    let held = binding_keys(w, serial, binding_start(w, serial)?)?;
    check_requester_holding(w, serial, binding, request, accept_new_key, &held)
}

/// [`check_requester`] against the keys `held` (the current binding's,
/// or those of a voided first license: [`check_voided_requester`]).
fn check_requester_holding(
    w: &Writer<'_>,
    serial: &str,
    binding: &BindingData,
    request: &RequestData,
    accept_new_key: bool,
    held: &BindingKeys,
) -> Result<KeyStanding, Error> {
    let key = hex::encode(request.device_key);
    let short: String = key.chars().take(16).collect();
    let standing = if !held.recorded {
        KeyStanding::FirstUse
    } else if held.keys.contains(&key) {
        KeyStanding::Known
    } else {
        if let Some(old) = replaced_binding_with_key(w, serial, &key)? {
            if accept_new_key {
                return Err(PolicyError::ReplacedDeviceKey {
                    serial: serial.to_owned(),
                    key: short,
                    at: crate::calendar::rfc3339_unix(old.at),
                    by: old.replaced_by,
                    reason: old.reason,
                }
                .into());
            }
            return Err(PolicyError::BindingReplaced {
                serial: serial.to_owned(),
                when: format!(
                    " on {} by license {} ({}), and the request is signed by device key {short} of that binding",
                    crate::calendar::rfc3339_unix(old.at),
                    old.replaced_by,
                    old.reason
                ),
            }
            .into());
        }
        if !accept_new_key {
            // A request the binding in force binds is refused for its key
            // alone, without looking at the past bindings: what a copy of
            // the device's own request (a forger's) costs the ledger must
            // not grow with the PBX's history ([`replaced_binding_of`]
            // reads all of it).
            if !binding_match(binding, request).1 {
                if let Some(old) = replaced_binding_of(w, serial, request)? {
                    return Err(binding_replaced(serial, old));
                }
            }
            return Err(PolicyError::UnknownDeviceKey {
                serial: serial.to_owned(),
                key: short,
            }
            .into());
        }
        let others = w.serials_with_request_key(&key, serial)?;
        if !others.is_empty() {
            return Err(PolicyError::DeviceKeyOfOtherPbx {
                serial: serial.to_owned(),
                key: short,
                others: others.join(", "),
            }
            .into());
        }
        KeyStanding::Accepted
    };
    check_device(w, serial, binding, request)?;
    Ok(standing)
}

/// Records how the key of the request license `sequence` of `serial`
/// answered stands: a key the operator accepted
/// ([`KeyStanding::Accepted`]) as a `device_key` event (the operator is
/// the entry's); with `retire_others` (`--retire-old-keys`), a
/// [`RETIRE_KEYS`] event withdrawing every other key of the binding, in
/// the same transaction. Returns the lines the command's summary shows
/// then.
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn record_key_standing(
    w: &mut Writer<'_>,
    standing: KeyStanding,
    retire_others: bool,
    (serial, sequence): (&str, u32),
    device_key: &[u8; 32],
    at: i64,
) -> Result<Vec<(&'static str, String)>, Error> {
    let key = hex::encode(device_key);
    let mut lines = Vec::new();
    if standing == KeyStanding::Accepted {
        let detail = serde_json::json!({ "device_key": key });
        w.add_event(serial, sequence, "device_key", &detail, at)?;
        lines.push((
            "device key",
            format!("new key {key} accepted (recorded in the ledger); it renews from now on"),
        ));
    }
    if retire_others {
        let held = binding_keys(w, serial, binding_start(w, serial)?)?;
        let retired: Vec<String> = held.keys.into_iter().filter(|k| *k != key).collect();
        if retired.is_empty() {
            lines.push((
                "old keys",
                "none to withdraw: the binding holds no other key".to_owned(),
            ));
        } else {
            let detail = serde_json::json!({ "retired_keys": retired });
            w.add_event(serial, sequence, RETIRE_KEYS, &detail, at)?;
            lines.push((
                "old keys",
                format!(
                    "withdrawn (recorded in the ledger): {}; requests signed by them are refused from now on",
                    retired.join(", ")
                ),
            ));
        }
    }
    Ok(lines)
}

/// [`plan`] for a known serial: `request` is the device asking (its
/// identity becomes the binding), or `None` for a change of the license in
/// force that keeps its binding (`tessera modify` without a request).
///
/// # Errors
/// As [`issue`]; [`PolicyError::NothingToChange`] without a request for a
/// serial without a license.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_serial(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    order: &Order,
    mut resolved: crate::order::Resolved,
    serial: String,
    converted_from: Option<String>,
    request: Option<&RequestData>,
    opts: &IssueOptions<'_>,
) -> Result<Planned, Error> {
    let catalog = issuer.catalog;
    let now = opts.now;
    if let Some(approval) = opts.approval {
        crate::validate::text("--approval", approval)?;
    }
    // A serial allocated just now has no history to look up.
    let fresh = converted_from.is_some();
    let current = if fresh {
        None
    } else {
        in_force(w, &serial)?.map(|r| decode_data(&r)).transpose()?
    };
    let server = match &resolved.sharing {
        SharingData::Client(s) => w
            .latest(s)?
            .map(|r| decode_data(&r))
            .transpose()?
            .map(|license| ServerInfo { license }),
        _ => None,
    };
    let schedule = if fresh { None } else { w.schedule(&serial)? };
    let ctx = policy::Context {
        now,
        serial: &serial,
        approval: opts.approval,
        change: opts.change,
        current: current.as_ref(),
        server: server.as_ref(),
        schedule,
    };
    let mut a = policy::check(
        catalog,
        order.grants_anything(),
        &order.customer,
        &resolved,
        &ctx,
    )?;
    let key_standing = match (&current, request) {
        (Some(cur), Some(request)) => Some(check_requester(
            w,
            &serial,
            &cur.binding,
            request,
            opts.new_device_key,
        )?),
        _ => None,
    };
    let d = defaults(catalog, resolved.platform)?;
    let binding = match (request, &current) {
        (Some(request), _) => binding_for(resolved.platform, d, request)?,
        (None, Some(cur)) => cur.binding.clone(),
        (None, None) => return Err(PolicyError::NothingToChange { serial }.into()),
    };
    registry::storage_only_on_cloud(resolved.platform, resolved.entitlements.storage_units)?;
    let order_json = opts
        .order_json
        .map_or_else(|| order.to_json(), str::to_owned);
    let added = if let Some(hw) = &converted_from {
        // A first activation: the HW serial is converted and the PBX
        // entered in the registry with the order's policy.
        w.convert_hw_serial(hw, &serial, true, now.timestamp())?;
        Some(registry::add_row(
            w,
            catalog,
            &registry::NewPbx {
                customer: order.customer.clone(),
                name: order.pbx_name.clone(),
                model: order.model.clone().unwrap_or_default(),
                platform: resolved.platform,
                cycle: resolved.cycle,
                profiles: order.profiles.clone(),
                storage: resolved.entitlements.storage_units,
                policy: order.policy.clone(),
            },
            Some(&serial),
            now.timestamp(),
        )?)
    } else {
        None
    };
    let pbx = match added {
        Some(row) => row,
        None => registry::entry_for(
            w,
            catalog,
            &serial,
            current.as_ref(),
            Some(&order_json),
            now.timestamp(),
        )?,
    };
    if pbx.platform != PlatformName::of(resolved.platform).as_str() {
        return Err(PolicyError::RegisteredPlatform {
            serial,
            registered: pbx.platform,
            request: PlatformName::of(resolved.platform).as_str().into(),
        }
        .into());
    }
    let values = registry::recorded(&pbx)?.1;
    let stop_at = match a.schedule {
        ScheduleChange::Start(z) => Some(z.stop_at),
        ScheduleChange::Keep => schedule.map(|z| z.stop_at),
        ScheduleChange::Cancel => None,
    };
    let lease_end = policy::lease_end(
        now,
        &a.term,
        values.lease,
        values.max_lease,
        resolved.air_gapped,
        stop_at,
    );
    let previous_serial = match converted_from
        .clone()
        .or_else(|| current.as_ref().and_then(|c| c.previous_serial.clone()))
    {
        Some(hw) => Some(hw),
        // A first license again after a voided activation keeps the HW
        // serial the SW serial was converted from.
        None if current.is_none() && !fresh => w.hw_serial_of(&serial)?,
        None => None,
    };
    let license_policy = effective_policy(
        &values,
        stop_at,
        crate::order::total_users(&resolved.entitlements),
    );
    let sequence = w.next_sequence(&serial)?;
    let data = LicenseData {
        issuer: catalog.vendor.clone(),
        serial,
        issued_at: now.timestamp(),
        not_before: start_of_validity(now.timestamp(), &license_policy),
        lease_end,
        id: random_id()?,
        platform: resolved.platform,
        sequence,
        binding,
        previous_serial,
        term: a.term,
        policy: license_policy,
        entitlements: core::mem::take(&mut resolved.entitlements),
        services: core::mem::take(&mut a.services),
        sharing: core::mem::take(&mut resolved.sharing),
        customer: order.customer.clone(),
        pbx_name: order.pbx_name.clone(),
    };
    Ok(Planned {
        data,
        action: if current.is_some() {
            Action::Change
        } else {
            Action::Issue
        },
        order_json,
        converted_from,
        schedule: a.schedule,
        prorations: a.prorations,
        decreases: a.decreases,
        warnings: a.warnings,
        idem_key: opts.idem_key.map(str::to_owned),
        request_key: request.map(|r| r.device_key),
        approval: opts.approval.map(str::to_owned),
        event: "change",
        key_standing,
        retire_old_keys: opts.retire_old_keys && key_standing.is_some(),
    })
}

/// Signs a planned license (no ledger access: may run on any thread).
///
/// # Errors
/// [`Error::Encode`], [`Error::Key`].
pub fn sign_planned(issuer: &Issuer<'_>, planned: &Planned) -> Result<Vec<u8>, Error> {
    sign(issuer, &planned.data)
}

/// The second half of [`issue`]: appends the signed license to the chain
/// and records the schedule change.
///
/// # Errors
/// [`Error::Ledger`].
pub fn record(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    planned: Planned,
    bytes: Vec<u8>,
) -> Result<Issued, Error> {
    let Planned {
        data,
        action,
        order_json,
        converted_from,
        schedule,
        prorations,
        decreases,
        warnings,
        idem_key,
        request_key,
        approval,
        event,
        key_standing,
        retire_old_keys,
    } = planned;
    let previous = match action {
        Action::Change => in_force(w, &data.serial)?
            .map(|r| decode_data(&r))
            .transpose()?,
        _ => None,
    };
    let record = w.append(record_for(
        &data,
        bytes,
        action,
        order_json,
        idem_key.as_deref(),
        request_key,
    ))?;
    let at = data.issued_at;
    w.add_charges(
        &data.serial,
        data.sequence,
        crate::billing::charges(issuer.catalog, previous.as_ref(), &data, at, false),
        at,
    )?;
    match schedule {
        ScheduleChange::Start(z) => w.set_schedule(&data.serial, z, at)?,
        ScheduleChange::Cancel => w.cancel_schedule(&data.serial, at)?,
        ScheduleChange::Keep => {}
    }
    if action == Action::Change && (!decreases.is_empty() || approval.is_some()) {
        let mut detail = serde_json::json!({ "decreases": decreases.join(", ") });
        if let Some(a) = &approval {
            detail["approval"] = serde_json::json!(a);
        }
        w.add_event(&data.serial, data.sequence, event, &detail, at)?;
    }
    let details = match (key_standing, request_key) {
        (Some(standing), Some(key)) => record_key_standing(
            w,
            standing,
            retire_old_keys,
            (&data.serial, data.sequence),
            &key,
            at,
        )?,
        _ => Vec::new(),
    };
    Ok(Issued {
        record,
        license: data,
        converted_from,
        prorations,
        decreases,
        warnings,
        details,
    })
}

/// The serial a renewal or replacement request speaks for: its SW serial,
/// or the SW serial its HW serial was converted to.
pub(crate) fn request_serial(
    w: &Writer<'_>,
    request: &RequestData,
) -> Result<Option<String>, Error> {
    if let Some(s) = &request.serial {
        return Ok(Some(s.clone()));
    }
    match &request.hw_serial {
        Some(hw) => Ok(w.sw_serial_of(hw)?),
        None => Ok(None),
    }
}

/// Renews the license in force for the request's serial: same content,
/// sequence + 1, a new lease from `now`. A renewal on or after the last
/// day of the term extends the term (and its services) by one cycle.
///
/// The device key that signed the request is checked against the binding
/// ([`check_requester`]) before anything about the PBX is told: a key the
/// binding never used gets [`PolicyError::UnknownDeviceKey`] whether the
/// PBX is in force, stopped, deleted or its license voided; only the
/// PBX's own device hears which.
///
/// # Errors
/// [`PolicyError::NotActivated`] (a HW serial never converted),
/// [`PolicyError::NotRegistered`] (a serial the registry never allocated),
/// [`PolicyError::Voided`] (its only license was voided),
/// [`PolicyError::NoLicense`], [`PolicyError::PbxStopped`],
/// [`PolicyError::PbxDeleted`], [`PolicyError::BindingReplaced`] (the
/// request matches a binding that a replacement superseded),
/// [`PolicyError::WrongDevice`], [`PolicyError::UnknownDeviceKey`], and
/// the errors of [`issue`].
pub fn renew(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
) -> Result<Issued, Error> {
    renew_keyed(w, issuer, request, now, None, KeyFlags::default())
}

/// The ledger key that records a request's nonce: a request answered once
/// is never answered again ([`renew_online`]).
#[must_use]
pub fn request_nonce_key(request: &RequestData) -> String {
    format!("request:{}", hex::encode(request.nonce))
}

/// The ledger key of the request's nonce ([`request_nonce_key`]), unless
/// the ledger has it: a request answered once is never answered again.
///
/// # Errors
/// [`PolicyError::RequestReplayed`], [`Error::Ledger`].
fn unanswered_nonce(w: &Writer<'_>, request: &RequestData) -> Result<String, Error> {
    let key = request_nonce_key(request);
    if w.by_idem_key(&key)?.is_some() {
        return Err(PolicyError::RequestReplayed.into());
    }
    Ok(key)
}

/// What a command that answers a device request gave ([`answer_once`]).
#[derive(Debug)]
pub enum Answer<T> {
    /// A new answer, the request's nonce recorded with its license.
    New(T),
    /// The request was answered before with this license, which is still
    /// the latest of its serial: the same license, handed out again (the
    /// partner lost the file); nothing was issued.
    Again(Box<Record>),
}

/// What a command asks of a request, to tell a repeat of the same answer
/// from a second, different one ([`answer_once`]).
#[derive(Clone, Copy, Debug)]
pub struct Asked<'a> {
    /// What the command's license is (`renew`, `issue`, `change` ...).
    pub action: Action,
    /// The serial the command names (`replace --serial`, `share
    /// --client`, `modify --serial`), when it names one.
    pub serial: Option<&'a str>,
    /// The order the command issues (its ledger JSON), when it has one.
    pub order_json: Option<&'a str>,
    /// What the command is, for people (`renewal`, `change` ...).
    pub command: &'static str,
    /// What else the operator can do when the request was answered
    /// otherwise (appended to the message).
    pub hint: &'static str,
    /// What else the command asks that the ledger keeps with its answer
    /// (`share --server`, `replace --reason` and `--model`): a repeat that
    /// asks otherwise was answered otherwise.
    pub also: Also<'a>,
}

/// The rest of what a command asks ([`Asked::also`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Also<'a> {
    /// Nothing more than action, serial and order.
    #[default]
    Nothing,
    /// A client license of this server (`share --server`, its SW
    /// serial), with this PBX name when one is given (`--pbx-name`).
    Share {
        /// The server's SW serial.
        server: &'a str,
        /// The client's PBX name, when the command names one.
        pbx_name: Option<&'a str>,
    },
    /// A replacement for this reason, with this model when one is given
    /// (`replace --reason`, `--model`).
    Replace {
        /// Why.
        reason: ReplaceReason,
        /// The new device's model, when the command names one.
        model: Option<&'a str>,
    },
}

/// How the answer recorded for a request differs from what `also` asks
/// now (`None`: it does not). `data` is the recorded license's content.
fn also_differs(
    w: &Writer<'_>,
    row: &crate::ledger::RecordFields,
    data: &LicenseData,
    also: Also<'_>,
) -> Result<Option<String>, Error> {
    Ok(match also {
        Also::Nothing => None,
        Also::Share { server, pbx_name } => match &data.sharing {
            SharingData::Client(s) if s != server => Some(format!(" as a client of {s}")),
            SharingData::Client(_) => pbx_name
                .filter(|n| *n != data.pbx_name)
                .map(|_| format!(" with the PBX name {}", escaped(&data.pbx_name))),
            _ => Some(" as no client license".to_owned()),
        },
        Also::Replace { reason, model } => {
            let recorded = w
                .replaced_bindings(&row.serial)?
                .into_iter()
                .find(|b| b.replaced_by == row.sequence)
                .map(|b| b.reason);
            match recorded {
                Some(r) if r != reason.as_str() => Some(format!(" with --reason {r}")),
                Some(_) => match (model, w.pbx(&row.serial)?) {
                    (Some(m), Some(pbx)) if pbx.model != m => {
                        Some(format!(" with the model {}", escaped(&pbx.model)))
                    }
                    _ => None,
                },
                None => Some(" as no replacement".to_owned()),
            }
        }
    })
}

/// Answers `request` once: the rule of every CLI command that answers a
/// device request (`issue --request`, `renew`, `replace`, `modify
/// --request`, `share --request`), the service's rule
/// ([`renew_online`]) with one difference, for files carried by hand.
///
/// - A request whose nonce ([`request_nonce_key`]) the ledger does not
///   have is answered by `answer`, which records the license with the key
///   it is given (the nonce key), in the same transaction: the service
///   then refuses the request as a replay, and this function refuses a
///   request the service answered once its license is superseded.
/// - A request answered before, by the same command for the same serial
///   and order, whose license is still the latest of its serial, gets
///   [`Answer::Again`] with that license: the partner lost the file, and
///   the same license again grants nothing new. Not once the PBX is
///   stopped or deleted at `now` ([`PolicyError::PbxStopped`],
///   [`PolicyError::PbxDeleted`]), as a new answer would not be.
/// - A request whose nonce the ledger has but whose identity does not bind
///   the license recorded for it, or whose signing key is not the key of
///   the request that license answered (another device copied the nonce,
///   or someone re-signed a copy of the request), is a replay
///   ([`PolicyError::RequestReplayed`]), and learns nothing of that
///   license.
/// - A request answered before whose license a later one superseded is
///   refused ([`PolicyError::RequestSuperseded`]), and so is one answered
///   by another command, for another serial or with another order
///   ([`PolicyError::RequestAnsweredOtherwise`]): either would be a
///   second license for one request.
///
/// A bulk row (`tessera issue --bulk`) is answered by this function too,
/// as a first license with the row's order: its nonce is recorded like
/// any other, so a request a bulk row answered is answered once by every
/// command and the service, and a resumed bulk run finds its rows by
/// their requests' nonces ([`Answer::Again`]: skipped, their files
/// written). Rows recorded before that carry their row key
/// (`crate::bulk::row_key`), which a resumed run still looks up.
///
/// # Errors
/// [`PolicyError::RequestReplayed`], [`PolicyError::RequestSuperseded`],
/// [`PolicyError::RequestAnsweredOtherwise`], [`Error::Ledger`], those of
/// `answer`.
pub fn answer_once<T>(
    w: &mut Writer<'_>,
    request: &RequestData,
    asked: &Asked<'_>,
    now: DateTime<Utc>,
    answer: impl FnOnce(&mut Writer<'_>, &str) -> Result<T, Error>,
) -> Result<Answer<T>, Error> {
    let key = request_nonce_key(request);
    let Some(before) = w.by_idem_key(&key)? else {
        return answer(w, &key).map(Answer::New);
    };
    // Nonces travel in files anyone may read: a request of another device
    // that copies one is a replay, told nothing of the license it names.
    // The identity digests travel in the same files, so the request must
    // also be signed by the key the answered request was signed with: a
    // copy re-signed with another key (nonce, salt and digests kept) is a
    // replay too.
    let data = decode_data(&before)?;
    // Every key recorded from the answered license on counts here, a
    // withdrawn one too: this only tells the device's own repeat from a
    // copy. Nothing is given back to a withdrawn key: a void or a retired
    // key always comes with a later license, and a license a later one
    // superseded is never given back (below).
    if !binding_match(&data.binding, request).1
        || !w
            .request_keys_since(&before.row.serial, before.row.sequence)?
            .contains(&hex::encode(request.device_key))
    {
        return Err(PolicyError::RequestReplayed.into());
    }
    let row = &before.row;
    let answered_at = crate::calendar::rfc3339_unix(row.issued_at);
    let same = row.action == asked.action
        && asked.serial.is_none_or(|s| s == row.serial)
        && asked.order_json.is_none_or(|o| o == row.order_json);
    let differs = if same {
        also_differs(w, row, &data, asked.also)?
    } else {
        Some(String::new())
    };
    if let Some(differs) = differs {
        return Err(PolicyError::RequestAnsweredOtherwise {
            serial: row.serial.clone(),
            sequence: row.sequence,
            action: row.action,
            answered_at,
            differs,
            command: asked.command,
            hint: asked.hint,
        }
        .into());
    }
    let latest = w.latest(&row.serial)?.map_or(0, |r| r.row.sequence);
    if latest != row.sequence {
        return Err(PolicyError::RequestSuperseded {
            serial: row.serial.clone(),
            sequence: row.sequence,
            answered_at,
            latest,
        }
        .into());
    }
    // The same license again grants nothing new, but a stopped or deleted
    // PBX gets nothing from a renewal command, its own file included.
    policy::not_stopped(&row.serial, w.schedule(&row.serial)?, now)?;
    Ok(Answer::Again(Box::new(before)))
}

/// [`renew`] recording the request's nonce under `key`
/// ([`answer_once`]'s `answer`). With `new_device_key` (`tessera renew
/// --new-device-key`), a request signed by a device key the binding never
/// used is answered too, and the acceptance recorded as a `device_key`
/// event.
///
/// # Errors
/// As [`renew`].
pub fn renew_recorded(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    key: &str,
    new_device_key: bool,
) -> Result<Issued, Error> {
    let keys = KeyFlags {
        accept: new_device_key,
        retire_others: false,
    };
    renew_keyed(w, issuer, request, now, Some(key), keys)
}

/// [`renew_recorded`] with `--new-device-key --retire-old-keys`: the
/// request's key is accepted as [`renew_recorded`] accepts it, and every
/// other key of the binding is withdrawn in the same transaction (a
/// [`RETIRE_KEYS`] event), so whoever holds a copy of an old device key
/// renews nothing from then on, offline or online.
///
/// # Errors
/// As [`renew`].
pub fn renew_retiring_old_keys(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    key: &str,
) -> Result<Issued, Error> {
    let keys = KeyFlags {
        accept: true,
        retire_others: true,
    };
    renew_keyed(w, issuer, request, now, Some(key), keys)
}

/// What a renewal does with a device key its binding does not hold.
#[derive(Clone, Copy, Debug, Default)]
struct KeyFlags {
    /// `--new-device-key`.
    accept: bool,
    /// `--retire-old-keys`.
    retire_others: bool,
}

/// [`renew`] for a device that asks the online service itself: the same
/// rules (one implementation: recorded policy, term extension, lifecycle
/// refusals), and also a request whose nonce is in the ledger is a replay
/// ([`PolicyError::RequestReplayed`]). The nonce is recorded with the
/// license ([`request_nonce_key`]), in the same transaction, so a replay
/// is refused after a restart and by every server instance alike.
///
/// The freshness of the request's creation time is the caller's check
/// ([`crate::validate::request`]), made before the ledger is touched.
///
/// # Errors
/// Those of [`renew`], [`PolicyError::RequestReplayed`].
pub fn renew_online(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
) -> Result<Issued, Error> {
    renew_online_gated(w, issuer, request, now, |_| Ok::<(), Error>(()))
}

/// [`renew_online`] with a last check of the caller's: `before_signing`
/// is called with the PBX's SW serial once every rule allowed the renewal
/// (the request's device key first, so only the PBX's own device ever
/// reaches it) and before the license is signed. Its error is returned as
/// it is, with nothing signed or appended (a registry entry made for a
/// PBX that predates the registry is the caller's savepoint to undo): the
/// service refuses there a renewal whose PBX spent its renewal budget,
/// without telling anyone else that it did, and without a signature for
/// a chatty device.
///
/// # Errors
/// Those of [`renew_online`], and `before_signing`'s.
pub fn renew_online_gated<E: From<Error>>(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    before_signing: impl FnOnce(&str) -> Result<(), E>,
) -> Result<Issued, E> {
    let key = unanswered_nonce(w, request)?;
    let keys = KeyFlags::default();
    let planned = plan_renewal(w, issuer, request, now, keys)?;
    before_signing(&planned.data.serial)?;
    Ok(record_renewal(
        w,
        issuer,
        request,
        now,
        Some(&key),
        keys,
        planned,
    )?)
}

/// The first activation of a PBX the registry knows, asked by its device
/// over the network (`POST /v1/activate`): the license [`issue`] makes for
/// the PBX's recorded order ([`registry::recorded_order`]) and the
/// request, under every rule of `tessera issue`; the request's nonce is
/// recorded with it as [`renew_online`] records it, so a replay is refused.
///
/// A signed request proves only that *some* device made it, and serials
/// are sequential: a PBX is activated only for a request that brings its
/// one-time activation `code` ([`crate::activation`]), which matches the
/// code the vendor opened (`tessera pbx activation`), has not expired and
/// was not used. The license uses it up.
///
/// Every refusal is [`PolicyError::ActivationRefused`], whatever the
/// reason (an unknown serial or HW serial, a PBX activated, voided,
/// stopped or deleted, no code, a wrong, expired or used code), so that
/// naming a serial tells nothing of its PBX; and every such refusal reads
/// the ledger alike (the same lookups in the same order, whatever they
/// found), so its time differs only by what the rows found cost to read:
/// a fraction of a millisecond, which `tessera-server` hides by answering
/// every refusal at a fixed floor after the request arrived
/// (`tessera_server::limits::REFUSAL_FLOOR`; docs/operations.md measures
/// both). One exception: a request
/// that the code does not open, signed by a device key the PBX's current
/// binding recorded (the real device asking again; after the void of a
/// first activation, the device that asked then), gets the helpful answers
/// ([`PolicyError::AlreadyActivated`] with the sequence in force,
/// [`PolicyError::PbxStopped`], ...). A refusal changes nothing.
///
/// The freshness of the request's creation time is the caller's check.
///
/// # Errors
/// [`PolicyError::RequestReplayed`], [`PolicyError::ActivationRefused`];
/// to the bound device [`PolicyError::PbxStopped`],
/// [`PolicyError::PbxDeleted`], [`PolicyError::AlreadyActivated`],
/// [`PolicyError::Voided`]; once the code opened it, the errors of
/// [`issue`].
pub fn activate_online(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    code: Option<&ActivationCode>,
) -> Result<Issued, Error> {
    let key = unanswered_nonce(w, request)?;
    let refused = || Error::from(PolicyError::ActivationRefused);
    let serial = match (&request.serial, &request.hw_serial) {
        (Some(sw), _) => Some(sw.clone()),
        (None, Some(hw)) => w.sw_serial_of(hw)?,
        (None, None) => None,
    };
    // Everything the decision needs is read first, with the same lookups
    // in the same order whatever the ledger holds of the serial (nothing,
    // a registered PBX, a licensed one; a serial it does not know is
    // looked up as the empty serial, which none has): the time a refusal
    // takes must not tell those apart either.
    let looked_up = serial.as_deref().unwrap_or_default();
    let pbx = w.pbx(looked_up)?;
    let latest = w.latest(looked_up)?;
    let code_opens = crate::activation::code_opens_after(w, looked_up, code, now, latest.as_ref())?;
    let running = policy::not_stopped(looked_up, w.schedule(looked_up)?, now).is_ok();
    let standing = activation_standing(w, looked_up, latest.as_ref(), request)?;
    let (Some(serial), Some(pbx)) = (serial, pbx) else {
        return Err(refused());
    };
    let opens = code_opens && running && !standing.in_force;
    if !opens {
        if standing.bound {
            // The bound device itself: it learns its PBX's state.
            policy::not_stopped(&serial, w.schedule(&serial)?, now)?;
            if let Some(current) = in_force(w, &serial)? {
                return Err(PolicyError::AlreadyActivated {
                    serial,
                    sequence: current.row.sequence,
                }
                .into());
            }
            if w.latest(&serial)?.is_some() {
                return Err(PolicyError::Voided { serial }.into());
            }
        }
        return Err(refused());
    }
    let order = registry::recorded_order(&pbx, now.timestamp())?;
    issue(
        w,
        issuer,
        &order,
        request,
        &IssueOptions {
            now,
            idem_key: Some(&key),
            ..IssueOptions::default()
        },
    )
}

/// Whether a renewal request about `serial`, which has no license in
/// force, may hear why: when the serial's first license was voided (a
/// binding without a license in force), the request is checked as
/// [`check_requester`] checks one against the binding of that license,
/// with the key of the request it answered. That key renews nothing (a
/// voided license's key never counts, and nothing is in force), but it is
/// the key of the device that asked, so that device hears that its
/// license was voided, and a request signed by any other key gets
/// [`PolicyError::UnknownDeviceKey`], as about a PBX in force. A voided
/// license that answered no request trusts the bound device (its
/// identity), as a binding that recorded no key does. A serial never
/// licensed has no binding to check the request against.
///
/// # Errors
/// Those of [`check_requester`].
fn check_voided_requester(
    w: &Writer<'_>,
    serial: &str,
    request: &RequestData,
    accept_new_key: bool,
) -> Result<(), Error> {
    let Some(latest) = w.latest(serial)? else {
        return Ok(());
    };
    // No license in force although one was issued: the void of a first
    // activation ([`in_force`]), so the voided license is the serial's
    // first and its keys are those recorded from sequence 1 on.
    let keys = w.request_keys_since(serial, 1)?;
    let held = BindingKeys {
        recorded: !keys.is_empty(),
        keys,
    };
    let data = decode_data(&latest)?;
    check_requester_holding(w, serial, &data.binding, request, accept_new_key, &held)?;
    Ok(())
}

/// What an online activation needs to know of who asks
/// ([`activation_standing`]).
struct ActivationStanding {
    /// The serial has a license in force ([`in_force`]).
    in_force: bool,
    /// The request is signed by the PBX's own device
    /// ([`signed_by_binding`]).
    bound: bool,
}

/// [`in_force`] and [`signed_by_binding`] for an online activation, with
/// the same lookups in the same order whatever the ledger holds of
/// `serial` (whose latest license is `latest`): its events, replaced
/// bindings and the device keys from where they count. Only a request signed by a key the PBX's
/// device used may need one more (a license of its binding was voided).
///
/// # Errors
/// [`Error::Ledger`].
fn activation_standing(
    w: &Writer<'_>,
    serial: &str,
    latest: Option<&Record>,
    request: &RequestData,
) -> Result<ActivationStanding, Error> {
    let events = w.events(serial)?;
    let replaced = w.replaced_bindings(serial)?;
    let voided_first = latest.is_some_and(|l| l.row.action == Action::Void && clears(l, &events));
    let in_force = latest.is_some() && !voided_first;
    let floor = key_floor(&events, binding_start_of(&events, &replaced));
    // Not in force: the keys of the voided first license's requests.
    let from = if in_force { floor.floor } else { 1 };
    let keys = w.request_keys_since(serial, from)?;
    let key = hex::encode(request.device_key);
    let mut bound = latest.is_some() && keys.contains(&key);
    if bound && in_force && floor.voided.iter().any(|v| *v >= floor.floor) {
        // A key of the PBX's own device: the key of a voided license no
        // longer counts.
        bound = signed_by_binding(w, serial, request)?;
    }
    Ok(ActivationStanding { in_force, bound })
}

/// Whether `request` is signed by a device key that the current binding
/// of `serial` recorded (a licensed PBX's own device), or, for a serial
/// whose first license was voided (nothing in force), by the key of a
/// request that license answered ([`check_voided_requester`]'s rule: the
/// device that asked hears that its license was voided).
///
/// # Errors
/// [`Error::Ledger`].
fn signed_by_binding(w: &Writer<'_>, serial: &str, request: &RequestData) -> Result<bool, Error> {
    if w.latest(serial)?.is_none() {
        return Ok(false);
    }
    let key = hex::encode(request.device_key);
    if in_force(w, serial)?.is_none() {
        return Ok(w.request_keys_since(serial, 1)?.contains(&key));
    }
    let held = binding_keys(w, serial, binding_start(w, serial)?)?;
    Ok(held.recorded && held.keys.contains(&key))
}

/// Why `serial` has no license in force: its only license was voided, the
/// registry never allocated it, or it was never licensed.
fn nothing_in_force(w: &Writer<'_>, serial: String) -> Result<Error, Error> {
    if w.latest(&serial)?
        .is_some_and(|r| r.row.action == Action::Void)
    {
        return Ok(PolicyError::Voided { serial }.into());
    }
    if w.pbx(&serial)?.is_none() {
        return Ok(PolicyError::NotRegistered { serial }.into());
    }
    Ok(PolicyError::NoLicense { serial }.into())
}

/// [`renew`], recording `idem_key` with the license.
fn renew_keyed(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    idem_key: Option<&str>,
    keys: KeyFlags,
) -> Result<Issued, Error> {
    let planned = plan_renewal(w, issuer, request, now, keys)?;
    record_renewal(w, issuer, request, now, idem_key, keys, planned)
}

/// A renewal every rule allowed, not yet signed ([`plan_renewal`]).
struct PlannedRenewal {
    /// The license to sign.
    data: LicenseData,
    /// The order of the license it renews.
    order_json: String,
    /// How the request's device key stands with the binding.
    standing: KeyStanding,
    warnings: Vec<Warning>,
}

/// Everything of [`renew`] before the license is signed: who asks (the
/// device key first), the PBX's state, the new term and sequence.
/// Signs nothing and writes nothing but the registry entry of a PBX that
/// predates the registry ([`pbx_policy`]).
fn plan_renewal(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    keys: KeyFlags,
) -> Result<PlannedRenewal, Error> {
    let serial = request_serial(w, request)?.ok_or(PolicyError::NotActivated)?;
    // Who asks is checked before anything about the PBX is told: a
    // request signed by a key the binding never used hears that, and only
    // that, whatever the state of the PBX (voided, stopped, deleted), so a
    // forged request learns none of it; the PBX's own device hears why.
    let Some(latest) = in_force(w, &serial)? else {
        check_voided_requester(w, &serial, request, keys.accept)?;
        return Err(nothing_in_force(w, serial)?);
    };
    let latest = &latest;
    let mut data = decode_data(latest)?;
    let standing = check_requester(w, &serial, &data.binding, request, keys.accept)?;
    policy::not_stopped(&serial, w.schedule(&serial)?, now)?;
    let mut warnings = Vec::new();
    let term = policy::auto_renew(&data.term, now);
    if term != data.term {
        let old_end = data.term.end;
        for s in &mut data.services {
            if Some(s.end) == old_end {
                if let Some(end) = term.end {
                    s.end = end;
                }
            }
        }
        warnings.push(Warning::AutoRenewed { term_end: term.end });
    } else if let Some(end) = term.end {
        warnings.push(Warning::TermKept { term_end: end });
    }
    let stop_at = w.schedule(&serial)?.map(|z| z.stop_at);
    data.term = term;
    time_from_record(
        w,
        issuer.catalog,
        &mut data,
        &latest.row.order_json,
        stop_at,
        now,
    )?;
    stamp_issue(&mut data, now.timestamp());
    data.id = random_id()?;
    data.sequence = w.next_sequence(&serial)?;
    Ok(PlannedRenewal {
        data,
        order_json: latest.row.order_json.clone(),
        standing,
        warnings,
    })
}

/// Signs and records a [`plan_renewal`], recording `idem_key` with it.
fn record_renewal(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    request: &RequestData,
    now: DateTime<Utc>,
    idem_key: Option<&str>,
    keys: KeyFlags,
    planned: PlannedRenewal,
) -> Result<Issued, Error> {
    let PlannedRenewal {
        data,
        order_json,
        standing,
        warnings,
    } = planned;
    let bytes = sign(issuer, &data)?;
    let record = w.append(record_for(
        &data,
        bytes,
        Action::Renew,
        order_json,
        idem_key,
        Some(request.device_key),
    ))?;
    let details = record_key_standing(
        w,
        standing,
        keys.retire_others,
        (&data.serial, data.sequence),
        &request.device_key,
        now.timestamp(),
    )?;
    if warnings
        .iter()
        .any(|w| matches!(w, Warning::AutoRenewed { .. }))
    {
        w.add_charges(
            &data.serial,
            data.sequence,
            crate::billing::charges(issuer.catalog, None, &data, data.issued_at, true),
            data.issued_at,
        )?;
    }
    Ok(Issued {
        record,
        license: data,
        converted_from: None,
        prorations: Vec::new(),
        decreases: Vec::new(),
        warnings,
        details,
    })
}

/// Why a binding is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceReason {
    /// Return of a broken unit: a new box of the same platform.
    Rma,
    /// A move to another system: HW → VM, VM → HW, another host.
    Migrate,
}

impl ReplaceReason {
    /// The name recorded in the ledger.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rma => "rma",
            Self::Migrate => "migrate",
        }
    }
}

/// Replaces the binding of `serial` with the identity of a new device
/// (RMA, HW ↔ VM migration): same name, entitlements, term and attached
/// devices, sequence + 1, the new device's platform defaults. The old
/// binding is marked replaced in the ledger, with the device keys of the
/// requests it answered, and never renewed again ([`renew`] refuses a
/// request that matches it or comes from one of those keys), so an old box
/// stops at its lease end plus grace even when it is dead or unreachable.
///
/// A new appliance's HW serial is mapped to the SW serial and becomes the
/// previous serial.
///
/// # Errors
/// [`PolicyError::NoLicense`], [`PolicyError::PbxDeleted`],
/// [`PolicyError::ReplacementLicensed`] (the new device's request is
/// from another licensed PBX), [`PolicyError::LifetimeOnCloud`], [`PolicyError::CloudClient`],
/// [`PolicyError::RmaChangesPlatform`], and the errors of [`issue`].
pub fn replace(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    serial: &str,
    request: &RequestData,
    reason: ReplaceReason,
    model: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Issued, Error> {
    replace_recorded(w, issuer, serial, request, (reason, model), now, None)
}

/// [`replace`] recording `idem_key` with the license: the request's nonce
/// key when [`answer_once`] answers the request.
///
/// # Errors
/// As [`replace`].
pub fn replace_recorded(
    w: &mut Writer<'_>,
    issuer: &Issuer<'_>,
    serial: &str,
    request: &RequestData,
    (reason, model): (ReplaceReason, Option<&str>),
    now: DateTime<Utc>,
    idem_key: Option<&str>,
) -> Result<Issued, Error> {
    if let Some(m) = model {
        crate::validate::text("--model", m)?;
    }
    let serial = &crate::lifecycle::resolve_known_serial(w, serial)?;
    let latest = in_force(w, serial)?.ok_or_else(|| PolicyError::NoLicense {
        serial: serial.to_owned(),
    })?;
    policy::not_deleted(serial, w.schedule(serial)?, now)?;
    if let Some(other) = request_serial(w, request)?.filter(|s| s != serial) {
        if let Some(r) = w.latest(&other)? {
            return Err(PolicyError::ReplacementLicensed {
                serial: serial.to_owned(),
                other,
                sequence: r.row.sequence,
            }
            .into());
        }
    }
    if let Some(Some(old)) = replaced_binding_of(w, serial, request)? {
        return Err(PolicyError::ReplaceOntoReplaced {
            serial: serial.to_owned(),
            at: crate::calendar::rfc3339_unix(old.at),
            by: old.replaced_by,
            reason: old.reason,
        }
        .into());
    }
    let mut data = decode_data(&latest)?;
    same_device_refused(w, serial, &data.binding, request)?;
    let platform = request.platform;
    policy::rma_keeps_platform(reason == ReplaceReason::Rma, data.platform, platform)?;
    policy::lifetime_not_for_cloud(platform, data.term.cycle)?;
    let old_binding_since = w
        .history(serial)?
        .iter()
        .rev()
        .find(|r| matches!(r.row.action, Action::Replace | Action::Issue))
        .map_or(1, |r| r.row.sequence);
    if platform == Platform::Cloud && matches!(data.sharing, SharingData::Client(_)) {
        return Err(PolicyError::CloudClient.into());
    }
    // Enters a PBX of an earlier ledger (with its platform before the
    // move) in the registry.
    pbx_policy(
        w,
        issuer.catalog,
        serial,
        Some(&data),
        Some(&latest.row.order_json),
        now.timestamp(),
    )?;
    let d = defaults(issuer.catalog, platform)?;
    data.binding = binding_for(platform, d, request)?;
    data.platform = platform;
    let mut converted_from = None;
    if let Some(hw) = &request.hw_serial {
        if w.sw_serial_of(hw)?.is_none() {
            w.map_hw_serial(hw, serial, now.timestamp())?;
            converted_from = Some(hw.clone());
        }
        data.previous_serial = Some(hw.clone());
    } else {
        data.previous_serial = None;
    }
    let mut order_json = latest.row.order_json.clone();
    if let Ok(mut o) = Order::parse("ledger", &order_json, true) {
        o.platform = PlatformName::of(platform);
        order_json = o.to_json();
    }
    let stop_at = w.schedule(serial)?.map(|z| z.stop_at);
    time_from_record(w, issuer.catalog, &mut data, &order_json, stop_at, now)?;
    stamp_issue(&mut data, now.timestamp());
    data.id = random_id()?;
    data.sequence = w.next_sequence(serial)?;
    let bytes = sign(issuer, &data)?;
    let record = w.append(record_for(
        &data,
        bytes,
        Action::Replace,
        order_json,
        idem_key,
        Some(request.device_key),
    ))?;
    let at = now.timestamp();
    let new_key = hex::encode(request.device_key);
    let old_keys: Vec<String> = binding_keys(w, serial, old_binding_since)?
        .keys
        .into_iter()
        .filter(|k| *k != new_key)
        .collect();
    w.mark_replaced(
        serial,
        latest.row.sequence,
        data.sequence,
        &old_keys,
        reason.as_str(),
        at,
    )?;
    let detail = serde_json::json!({
        "reason": reason.as_str(),
        "replaced_sequence": latest.row.sequence,
        "from_platform": latest.row.platform,
        "to_platform": PlatformName::of(platform).as_str(),
    });
    w.add_event(serial, data.sequence, "replace", &detail, at)?;
    let pbx = w.pbx(serial)?;
    let to_platform = PlatformName::of(platform).as_str();
    let change = crate::ledger::PbxChange {
        platform: pbx
            .as_ref()
            .filter(|p| p.platform != to_platform)
            .map(|_| to_platform.to_owned()),
        model: model
            .filter(|m| pbx.as_ref().is_some_and(|p| p.model != *m))
            .map(str::to_owned),
        ..crate::ledger::PbxChange::default()
    };
    if change != crate::ledger::PbxChange::default() {
        w.edit_pbx(serial, change, at)?;
    }
    Ok(Issued {
        record,
        license: data,
        converted_from,
        prorations: Vec::new(),
        decreases: Vec::new(),
        warnings: Vec::new(),
        details: vec![
            ("reason", reason.as_str().to_owned()),
            (
                "replaces",
                format!(
                    "the binding of sequence {} ({}); it is never renewed again",
                    latest.row.sequence, latest.row.platform
                ),
            ),
        ],
    })
}

/// Refuses a replacement whose request comes from the device `binding`
/// (the license in force) binds: by its identity ([`binding_match`]) or
/// by a device key the binding holds ([`binding_keys`]). A copy of the
/// bound device's request re-signed by someone else would otherwise take
/// the binding's key away from the device that holds it.
///
/// # Errors
/// [`PolicyError::ReplaceBySameDevice`], [`Error::Ledger`].
fn same_device_refused(
    w: &Writer<'_>,
    serial: &str,
    binding: &BindingData,
    request: &RequestData,
) -> Result<(), Error> {
    let why = if binding_match(binding, request).1 {
        "its identity matches the binding"
    } else if binding_keys(w, serial, binding_start(w, serial)?)?
        .keys
        .contains(&hex::encode(request.device_key))
    {
        "it is signed by a device key of the binding"
    } else {
        return Ok(());
    };
    Err(PolicyError::ReplaceBySameDevice {
        serial: serial.to_owned(),
        why: why.to_owned(),
    }
    .into())
}

/// A one-line description of a term for people.
#[must_use]
pub fn describe_term(term: &Term) -> String {
    let cycle = CycleName::of(term.cycle).as_str();
    match term.end {
        Some(end) => format!(
            "{cycle}, {} .. {}",
            crate::calendar::rfc3339_unix(term.start),
            crate::calendar::rfc3339_unix(end)
        ),
        None => format!(
            "{cycle}, from {}",
            crate::calendar::rfc3339_unix(term.start)
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests;
