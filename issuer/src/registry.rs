//! The PBX registry: every PBX the vendor licenses, entered before its
//! first license (`tessera pbx add` allocates its SW serial; the first
//! activation of an appliance enters it with the serial its HW serial is
//! converted to), with the policy it was given.
//!
//! The policy a PBX records (its name and every value) is the one its
//! licenses get from then on: renewals, changes, replacements and sharing
//! read it here, never from the catalog the command runs with. Only
//! `tessera pbx edit SERIAL --policy NAME --approval REF` changes it, as a
//! journal entry; a catalog whose policy of that name says something else
//! is reported ([`policy_drift`]), never applied.

use std::collections::BTreeMap;

use serde::Serialize;
use tessera_verifier::claims::{Cycle, Platform, Policy};
use tessera_verifier::encode::LicenseData;

use crate::calendar::{CycleName, PlatformName};
use crate::catalog::{Catalog, NamedPolicy, PolicyValues};
use crate::error::Error;
use crate::ledger::{Fact, LedgerError, PbxChange, PbxRow, Writer};
use crate::order::Order;
use crate::policy::{PolicyError, ZeroSchedule};

/// The name given to the policy of a PBX of an earlier ledger whose
/// license in force does not match its platform's default policy: its
/// values are the license's.
pub const AS_ISSUED: &str = "as-issued";

/// What `tessera pbx add` enters.
#[derive(Clone, Debug)]
pub struct NewPbx {
    /// Customer.
    pub customer: String,
    /// PBX name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Platform.
    pub platform: Platform,
    /// Payment cycle.
    pub cycle: Cycle,
    /// Users of each profile (catalog names).
    pub profiles: BTreeMap<String, u32>,
    /// Storage units (Cloud only).
    pub storage: u32,
    /// The policy (`None`: the platform's default).
    pub policy: Option<String>,
}

/// The catalog policy a new PBX gets: the one named, or its platform's
/// default. A Cloud PBX has no offline grace.
///
/// # Errors
/// [`PolicyError::UnknownPolicy`], [`PolicyError::GraceOnCloud`].
pub fn policy_for(
    catalog: &Catalog,
    platform: Platform,
    name: Option<&str>,
) -> Result<NamedPolicy, Error> {
    let found = match name {
        Some(n) => catalog.policy(n),
        None => catalog.default_policy(platform),
    };
    let p = found.cloned().ok_or_else(|| PolicyError::UnknownPolicy {
        name: crate::validate::shown(name.unwrap_or("(the platform's default)")),
        known: catalog.policy_names(),
    })?;
    if platform == Platform::Cloud && p.values.grace != 0 {
        return Err(PolicyError::GraceOnCloud { policy: p.name }.into());
    }
    Ok(p)
}

/// Storage is sold for Cloud PBXs only.
///
/// # Errors
/// [`PolicyError::StorageNotCloud`].
pub fn storage_only_on_cloud(platform: Platform, units: u32) -> Result<(), PolicyError> {
    if units > 0 && platform != Platform::Cloud {
        return Err(PolicyError::StorageNotCloud {
            platform: PlatformName::of(platform).as_str().to_owned(),
            units,
        });
    }
    Ok(())
}

/// Enters a new PBX: allocates its SW serial (`serial` `None`), or enters
/// an existing one (the serial a HW serial was converted to). Returns the
/// serial.
///
/// # Errors
/// [`PolicyError`]s of the rules, [`Error::Ledger`].
pub fn add(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    new: &NewPbx,
    serial: Option<&str>,
    at: i64,
) -> Result<String, Error> {
    add_row(w, catalog, new, serial, at).map(|row| row.serial)
}

/// [`add`], giving back the registry row it wrote (a first activation
/// goes on with it without reading it again).
///
/// # Errors
/// As [`add`].
pub fn add_row(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    new: &NewPbx,
    serial: Option<&str>,
    at: i64,
) -> Result<PbxRow, Error> {
    for (what, v) in [
        ("--customer", &new.customer),
        ("--name", &new.name),
        ("--model", &new.model),
    ] {
        crate::validate::text(what, v)?;
    }
    for (profile, count) in &new.profiles {
        let item =
            catalog
                .profile(profile)
                .ok_or_else(|| crate::order::OrderError::UnknownName {
                    kind: "profile",
                    name: crate::validate::shown(profile),
                    known: Catalog::names(&catalog.profiles),
                })?;
        let max = catalog.max_count(item.max);
        if *count > max {
            return Err(Error::Usage(format!(
                "--profile {}={count}: at most {max} users of a profile on one PBX",
                item.name
            )));
        }
    }
    if new.cycle == Cycle::Lifetime && new.platform == Platform::Cloud {
        return Err(PolicyError::LifetimeOnCloud.into());
    }
    storage_only_on_cloud(new.platform, new.storage)?;
    if new.storage > catalog.max_storage_units {
        return Err(Error::Usage(format!(
            "--storage {}: at most {} units on one PBX",
            new.storage, catalog.max_storage_units
        )));
    }
    let policy = policy_for(catalog, new.platform, new.policy.as_deref())?;
    let (serial, allocated) = match serial {
        Some(s) => (s.to_owned(), false),
        None => {
            let year = chrono::Datelike::year(&crate::calendar::from_unix(at));
            (w.next_free_serial(year)?, true)
        }
    };
    let profiles = new
        .profiles
        .iter()
        .filter_map(|(n, c)| catalog.profile(n).map(|i| (i.name.clone(), *c)))
        .collect();
    w.add_pbx(
        at,
        Fact::PbxAdded {
            serial,
            allocated,
            customer: new.customer.clone(),
            name: new.name.clone(),
            model: new.model.clone(),
            platform: PlatformName::of(new.platform).as_str().to_owned(),
            cycle: CycleName::of(new.cycle).as_str().to_owned(),
            profiles,
            storage: new.storage,
            policy: policy.name,
            values: policy.values,
        },
    )
    .map_err(Error::from)
}

/// Refuses to enter `new` a second time: a PBX of the same customer, name
/// and platform that is registered, has no HW serial and no license yet is
/// taken to be it (a retry of `tessera pbx add` after a lost output).
/// `pbx add --again` skips this, and so does an appliance with its HW
/// serial (the same HW serial twice is [`PolicyError::HwSerialTaken`]).
///
/// # Errors
/// [`PolicyError::PbxAlreadyAdded`] naming the serial, [`Error::Ledger`].
pub fn refuse_retry(w: &Writer<'_>, new: &NewPbx) -> Result<(), Error> {
    let platform = PlatformName::of(new.platform).as_str();
    for row in w.pbxs()? {
        if row.customer == new.customer
            && row.name == new.name
            && row.platform == platform
            && w.hw_serial_of(&row.serial)?.is_none()
            && w.latest(&row.serial)?.is_none()
        {
            return Err(PolicyError::PbxAlreadyAdded {
                serial: row.serial,
                customer: row.customer,
                name: row.name,
                platform: row.platform,
            }
            .into());
        }
    }
    Ok(())
}

/// Enters a new HW PBX whose appliance is known before its activation
/// (`tessera pbx add --hw-serial`): allocates its SW serial as [`add`]
/// does and records that `hw_serial` (normalized as the verifier does)
/// converts to it, so that the appliance's first activation gets this
/// serial instead of a second one. Returns the serial.
///
/// # Errors
/// [`Error::Usage`] for a PBX that is not HW, [`Error::Invalid`] for a
/// HW serial that is not one, [`PolicyError::HwSerialTaken`] for one
/// converted to another PBX already, and the errors of [`add`].
pub fn add_appliance(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    new: &NewPbx,
    hw_serial: &str,
    at: i64,
) -> Result<String, Error> {
    if new.platform != Platform::Hw {
        return Err(Error::Usage(format!(
            "--hw-serial names the appliance of a hw PBX; a {} PBX has none: leave it out",
            PlatformName::of(new.platform).as_str()
        )));
    }
    let hw = crate::validate::hw_serial("--hw-serial", hw_serial)?;
    if let Some(owner) = w.sw_serial_of(&hw)? {
        let pbx = match w.pbx(&owner)? {
            Some(row) => format!("{} / {}", row.customer, row.name),
            None => w.latest(&owner)?.map_or_else(
                || "no license yet".to_owned(),
                |l| format!("{} / {}", l.row.customer, l.row.pbx_name),
            ),
        };
        return Err(PolicyError::HwSerialTaken {
            hw_serial: hw,
            serial: owner,
            pbx,
        }
        .into());
    }
    let serial = add(w, catalog, new, None, at)?;
    w.map_hw_serial(&hw, &serial, at)?;
    Ok(serial)
}

/// The order a PBX recorded when it was entered: its customer, name,
/// model, platform, cycle, user profiles and storage, with a term from
/// `term_start` (the activation). Features, packages, base licenses and
/// services are ordered by the vendor, with `tessera issue` or `modify`.
///
/// # Errors
/// [`Error::Order`] when the recorded values do not make an order (a
/// damaged view; `ledger verify` names it).
pub fn recorded_order(row: &PbxRow, term_start: i64) -> Result<Order, Error> {
    let json = serde_json::json!({
        "customer": row.customer,
        "pbx_name": row.name,
        "model": (!row.model.is_empty()).then_some(&row.model),
        "platform": row.platform,
        "cycle": row.cycle,
        "term_start": crate::calendar::rfc3339_unix(term_start),
        "profiles": row.profile_counts(),
        "storage_units": row.storage,
    });
    Ok(Order::parse(
        &format!("the registry entry of {}", row.serial),
        &json.to_string(),
        true,
    )?)
}

/// Checks the order of the first license of a registered PBX against its
/// registry entry: customer, PBX name, payment cycle and user profiles
/// must be the registry's (its platform is checked before, with its own
/// refusal, [`PolicyError::RegisteredPlatform`]) (a PBX entered with `tessera pbx add`
/// is licensed and billed as entered; another order is another
/// customer's, or a mistake).
///
/// # Errors
/// [`PolicyError::RegisteredOrderDiffers`] naming each field that differs
/// with both values.
pub fn check_first_order(
    catalog: &Catalog,
    row: &PbxRow,
    order: &Order,
    resolved: &crate::order::Resolved,
) -> Result<(), PolicyError> {
    let mut differences = Vec::new();
    let mut differ = |field: &str, ordered: &str, registered: &str| {
        if ordered != registered {
            differences.push(format!(
                "{field}: the order says '{ordered}', the registry '{registered}'"
            ));
        }
    };
    differ("customer", &order.customer, &row.customer);
    differ("pbx_name", &order.pbx_name, &row.name);
    differ("cycle", CycleName::of(resolved.cycle).as_str(), &row.cycle);
    // Profiles by the catalog's name (orders match names without regard to
    // case); a zero count is no profile.
    let ordered: BTreeMap<String, u32> = resolved
        .entitlements
        .profiles
        .iter()
        .filter(|p| p.count > 0)
        .map(|p| (catalog.profile_name(p.code).to_uppercase(), p.count))
        .collect();
    let registered: BTreeMap<String, u32> = row
        .profile_counts()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| (name.to_uppercase(), n))
        .collect();
    let show = |m: &BTreeMap<String, u32>| {
        if m.is_empty() {
            return "none".to_owned();
        }
        m.iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    differ("profiles", &show(&ordered), &show(&registered));
    if differences.is_empty() {
        return Ok(());
    }
    Err(PolicyError::RegisteredOrderDiffers {
        serial: row.serial.clone(),
        differences,
    })
}

/// The values of a license's policy with a lease from `lease`.
fn values_of_license(l: &LicenseData, lease: &PolicyValues) -> PolicyValues {
    PolicyValues {
        lease: lease.lease,
        max_lease: lease.max_lease,
        renewal_window: l.policy.renewal_window,
        check_interval: l.policy.check_interval,
        grace: l.policy.grace,
        after_grace: crate::catalog::after_grace_name(l.policy.after_grace).to_owned(),
        rollback_tolerance: l.policy.rollback_tolerance,
    }
}

/// The registry entry of `serial`, entering it when it has none: a PBX
/// licensed before the registry existed (an earlier ledger) is entered
/// from its license in force (`current`) and order, with the policy that
/// license carries (its platform's default policy when the values agree,
/// else [`AS_ISSUED`] with the license's values and the default's lease).
///
/// # Errors
/// [`Error::Ledger`]; [`PolicyError::NotRegistered`] for a serial with
/// neither a registry entry nor a license.
pub fn entry_for(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    serial: &str,
    current: Option<&LicenseData>,
    order_json: Option<&str>,
    at: i64,
) -> Result<PbxRow, Error> {
    if let Some(row) = w.pbx(serial)? {
        return Ok(row);
    }
    let Some(l) = current else {
        return Err(PolicyError::NotRegistered {
            serial: serial.to_owned(),
        }
        .into());
    };
    let default = policy_for(catalog, l.platform, None)?;
    let mut values = values_of_license(l, &default.values);
    let name = if values == default.values {
        default.name
    } else {
        if l.policy.grace == 0
            && l.policy.after_grace == tessera_verifier::claims::AfterGrace::Locked
            && crate::order::total_users(&l.entitlements) == 0
        {
            // A stopped PBX's license has no grace: the PBX's own policy
            // is its platform's.
            values = default.values.clone();
        }
        if values == default.values {
            default.name
        } else {
            AS_ISSUED.to_owned()
        }
    };
    let order = order_json.and_then(|j| Order::parse("ledger", j, true).ok());
    let profiles = l
        .entitlements
        .profiles
        .iter()
        .map(|p| (catalog.profile_name(p.code), p.count))
        .collect();
    let model = order
        .as_ref()
        .and_then(|o| o.model.clone())
        .unwrap_or_default();
    let fact = Fact::PbxAdded {
        serial: serial.to_owned(),
        allocated: false,
        customer: l.customer.clone(),
        name: l.pbx_name.clone(),
        model,
        platform: PlatformName::of(l.platform).as_str().to_owned(),
        cycle: CycleName::of(l.term.cycle).as_str().to_owned(),
        profiles,
        storage: l.entitlements.storage_units,
        policy: name,
        values,
    };
    Ok(w.add_pbx(at, fact)?)
}

/// The policy a PBX recorded: its name and values.
///
/// # Errors
/// [`Error::Ledger`] when the recorded values do not read (a damaged
/// view; `ledger verify` names it).
pub fn recorded(row: &PbxRow) -> Result<(String, PolicyValues), Error> {
    let values = row.values().ok_or_else(|| {
        Error::Ledger(LedgerError::Integrity {
            entry: row.entry,
            reason: format!("the recorded policy of {} does not read", row.serial),
        })
    })?;
    Ok((row.policy.clone(), values))
}

/// The policy a license carries, from recorded values.
#[must_use]
pub fn license_policy(v: &PolicyValues) -> Policy {
    Policy {
        grace: v.grace,
        after_grace: v.after_grace_mode(),
        renewal_window: v.renewal_window,
        check_interval: v.check_interval,
        rollback_tolerance: v.rollback_tolerance,
    }
}

/// How the catalog's policy of the name a PBX recorded differs from what
/// it recorded: `None` when they agree, else one line per field (or that
/// the catalog has no policy of that name).
#[must_use]
pub fn policy_drift(catalog: &Catalog, row: &PbxRow) -> Option<Vec<String>> {
    let values = row.values()?;
    match catalog.policy(&row.policy) {
        Some(p) => {
            let d = values.differences(&p.values);
            (!d.is_empty()).then_some(d)
        }
        None if row.policy == AS_ISSUED => None,
        None => Some(vec![format!(
            "the catalog ({}) has no policy {}",
            catalog.source(),
            row.policy
        )]),
    }
}

/// Changes the policy of a PBX to the catalog's `name`, with the approval
/// that allows it (`tessera pbx edit --policy --approval`).
///
/// # Errors
/// [`PolicyError::UnknownPolicy`], [`PolicyError::GraceOnCloud`],
/// [`PolicyError::PolicyNeedsApproval`], [`PolicyError::NotRegistered`],
/// [`Error::Ledger`].
pub fn change_policy(
    w: &mut Writer<'_>,
    catalog: &Catalog,
    row: &PbxRow,
    name: &str,
    approval: Option<&str>,
    at: i64,
) -> Result<NamedPolicy, Error> {
    let approval = approval
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PolicyError::PolicyNeedsApproval {
            serial: row.serial.clone(),
        })?;
    crate::validate::text("--approval", approval)?;
    let platform = match row.platform.as_str() {
        "hw" => Platform::Hw,
        "vm" => Platform::Vm,
        _ => Platform::Cloud,
    };
    let p = policy_for(catalog, platform, Some(name))?;
    w.edit_pbx(
        &row.serial,
        PbxChange {
            policy: Some(p.name.clone()),
            values: Some(p.values.clone()),
            approval: Some(approval.to_owned()),
            ..PbxChange::default()
        },
        at,
    )?;
    Ok(p)
}

/// The user counts of the license in force of a PBX: what it is licensed
/// for now, after any `modify`, decrease or decommission (the registry
/// entry keeps the counts it was entered or first licensed with).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Licensed {
    /// The sequence of the license in force.
    pub sequence: u32,
    /// Users of each profile, by the catalog's name.
    pub profiles: BTreeMap<String, u32>,
    /// Storage units.
    pub storage: u32,
}

/// The counts of the license in force of `serial` (`None`: none in
/// force: never licensed, or its first license was voided).
///
/// # Errors
/// [`Error::Ledger`], also when the license bytes do not decode.
pub fn licensed(
    q: &dyn crate::ledger::Queries,
    catalog: &Catalog,
    serial: &str,
) -> Result<Option<Licensed>, Error> {
    crate::issuance::in_force_in(q, serial)?
        .map(|record| Licensed::of(&record, catalog))
        .transpose()
}

impl Licensed {
    /// The counts of the license `record`.
    ///
    /// # Errors
    /// [`Error::Ledger`] when its bytes do not decode.
    pub fn of(record: &crate::ledger::Record, catalog: &Catalog) -> Result<Self, Error> {
        let l = crate::issuance::decode_data(record)?;
        Ok(Self {
            sequence: record.row.sequence,
            profiles: l
                .entitlements
                .profiles
                .iter()
                .map(|p| (catalog.profile_name(p.code), p.count))
                .collect(),
            storage: l.entitlements.storage_units,
        })
    }
}

/// A registry entry as shown by `pbx list|show --json`.
#[derive(Clone, Debug, Serialize)]
pub struct PbxView {
    /// SW serial.
    pub serial: String,
    /// Customer.
    pub customer: String,
    /// Name.
    pub name: String,
    /// Model.
    pub model: String,
    /// Platform.
    pub platform: String,
    /// Payment cycle.
    pub cycle: String,
    /// Users of each profile: the license in force's, else as entered.
    pub profiles: BTreeMap<String, u32>,
    /// Storage units: the license in force's, else as entered.
    pub storage: u32,
    /// The sequence of the license in force `profiles` and `storage`
    /// come from (`None`: no license in force, they are as entered).
    pub license_sequence: Option<u32>,
    /// Users of each profile as entered (`pbx add` or the first license).
    pub entered_profiles: BTreeMap<String, u32>,
    /// Storage units as entered.
    pub entered_storage: u32,
    /// The recorded policy.
    pub policy: String,
    /// Its values.
    pub policy_values: Option<PolicyValues>,
}

impl PbxView {
    /// The entry `r` with the counts of the license in force, if any.
    #[must_use]
    pub fn of(r: &PbxRow, licensed: Option<&Licensed>) -> Self {
        let entered = r.profile_counts();
        Self {
            serial: r.serial.clone(),
            customer: r.customer.clone(),
            name: r.name.clone(),
            model: r.model.clone(),
            platform: r.platform.clone(),
            cycle: r.cycle.clone(),
            profiles: licensed.map_or_else(|| entered.clone(), |l| l.profiles.clone()),
            storage: licensed.map_or(r.storage, |l| l.storage),
            license_sequence: licensed.map(|l| l.sequence),
            entered_profiles: entered,
            entered_storage: r.storage,
            policy: r.policy.clone(),
            policy_values: r.values(),
        }
    }
}

/// Where a PBX is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// In the registry, no license yet.
    Registered,
    /// Licensed (a stop scheduled after a decrease to zero may be ahead).
    Active,
    /// Stopped after all its user licenses were removed.
    Stopped,
    /// Deleted after its stop.
    Deleted,
}

impl State {
    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Active => "active",
            Self::Stopped => "stopped",
            Self::Deleted => "deleted",
        }
    }

    /// Whether the PBX is in force (reports list these by default).
    #[must_use]
    pub fn in_force(self) -> bool {
        self == Self::Active
    }
}

/// The state at `now` of a PBX with this pending schedule, licensed or
/// not.
#[must_use]
pub fn state_at(schedule: Option<ZeroSchedule>, licensed: bool, now: i64) -> State {
    match schedule {
        Some(z) if now >= z.delete_at => State::Deleted,
        Some(z) if now >= z.stop_at => State::Stopped,
        _ if !licensed => State::Registered,
        _ => State::Active,
    }
}

/// Where a PBX stands: its lifecycle [`State`] and, when a replacement
/// (RMA, migration) superseded a binding of it, the latest such.
///
/// `replaced` is not a stage of the PBX's life: the PBX (its SW serial)
/// lives on on the device that replaced the old one, in whatever state it
/// is; the old device's binding is what was replaced, and its renewals
/// are refused for good. Lists show it after the state (`active+replaced`)
/// and `pbx list --state replaced` selects these PBXs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The lifecycle state.
    pub state: State,
    /// The latest replaced binding (`None`: never replaced).
    pub replaced: Option<crate::ledger::ReplacedBinding>,
}

impl Standing {
    /// The STATE column: the state, `+replaced` when a binding was
    /// replaced.
    #[must_use]
    pub fn label(&self) -> String {
        if self.replaced.is_some() {
            format!("{}+replaced", self.state.as_str())
        } else {
            self.state.as_str().to_owned()
        }
    }

    /// When the latest replacement happened (RFC 3339), if any.
    #[must_use]
    pub fn replaced_at(&self) -> Option<String> {
        self.replaced
            .as_ref()
            .map(|r| crate::calendar::rfc3339_unix(r.at))
    }

    /// Why (`rma` or `migrate`), if any.
    #[must_use]
    pub fn replaced_reason(&self) -> Option<&str> {
        self.replaced.as_ref().map(|r| r.reason.as_str())
    }

    /// Sets `state`, `replaced_at` and `replaced_reason` on a JSON object
    /// (every `--json` list shows the same three).
    pub fn put_json(&self, v: &mut serde_json::Value) {
        v["state"] = serde_json::json!(self.state.as_str());
        v["replaced_at"] = serde_json::json!(self.replaced_at());
        v["replaced_reason"] = serde_json::json!(self.replaced_reason());
    }
}

/// The standing of a PBX with this lifecycle state and these replaced
/// bindings (in any order).
#[must_use]
pub fn standing(state: State, replaced: Vec<crate::ledger::ReplacedBinding>) -> Standing {
    Standing {
        state,
        replaced: replaced.into_iter().max_by_key(|r| (r.at, r.sequence)),
    }
}

/// The standing of `serial` at `now`, from the ledger.
///
/// # Errors
/// [`LedgerError`].
pub fn standing_of(
    q: &dyn crate::ledger::Queries,
    serial: &str,
    now: i64,
) -> Result<Standing, LedgerError> {
    Ok(standing(
        state_of(q, serial, now)?,
        q.replaced_bindings(serial)?,
    ))
}

/// The width of a STATE column holding these labels (at least 8, the
/// width lists had before `+replaced`).
#[must_use]
pub fn state_width<'a>(labels: impl Iterator<Item = &'a str>) -> usize {
    labels.map(str::len).fold(8, usize::max)
}

/// The state of `serial` at `now`, from the ledger.
///
/// # Errors
/// [`LedgerError`].
pub fn state_of(
    q: &dyn crate::ledger::Queries,
    serial: &str,
    now: i64,
) -> Result<State, LedgerError> {
    Ok(state_at(
        q.pending_schedule(serial)?,
        q.latest(serial)?.is_some(),
        now,
    ))
}

#[cfg(test)]
mod tests;
