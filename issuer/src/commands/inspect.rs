//! `tessera inspect` and `tessera verify`, and the description of a
//! license with catalog names (shared with the demo).

use std::path::Path;

use serde::Deserialize;
use serde_json::json;
use tessera_verifier::claims::{AfterGrace, ComponentKind};
use tessera_verifier::encode::{LicenseData, SharingData};
use tessera_verifier::time::Schedule;
use tessera_verifier::{
    decode_license, decode_license_unverified, verify as runtime_verify, DeviceIdentity, KeyEntry,
    State, Verdict,
};

use super::{keyring_entries, print, print_json, read_license, Ctx};
use crate::calendar::{format_duration, rfc3339_unix, PlatformName};
use crate::catalog::{after_grace_name, category_name, component_kind_name, Catalog};
use crate::cli::{InspectArgs, VerifyArgs};
use crate::error::Error;
use crate::issuance::describe_term;
use crate::output::read_text;

/// The lines describing a license's content, with catalog names.
#[must_use]
pub fn describe(l: &LicenseData, catalog: &Catalog) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<12} {v}\n"));
    line("serial", l.serial.clone());
    line("sequence", l.sequence.to_string());
    line("license id", hex::encode(l.id));
    line("issuer", l.issuer.clone());
    line("issued", rfc3339_unix(l.issued_at));
    line(
        "valid",
        format!(
            "{} .. {} (lease)",
            rfc3339_unix(l.not_before),
            rfc3339_unix(l.lease_end)
        ),
    );
    line("platform", PlatformName::of(l.platform).as_str().into());
    line("term", describe_term(&l.term));
    line(
        "policy",
        format!(
            "checks every {}, renewal window {}, grace {} then {}, rollback tolerance {}",
            format_duration(l.policy.check_interval),
            format_duration(l.policy.renewal_window),
            format_duration(l.policy.grace),
            after_grace_name(l.policy.after_grace),
            format_duration(l.policy.rollback_tolerance)
        ),
    );
    line(
        "binding",
        format!(
            "{} of {}: {}",
            l.binding.threshold,
            l.binding.components.len(),
            l.binding
                .components
                .iter()
                .map(|c| {
                    let n = component_kind_name(c.kind);
                    if c.required {
                        format!("{n} (required)")
                    } else {
                        n
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if let Some(p) = &l.previous_serial {
        line("previous", format!("{p} (HW serial)"));
    }
    line("customer", l.customer.clone());
    line("pbx", l.pbx_name.clone());
    line(
        "sharing",
        match &l.sharing {
            SharingData::None => "none".into(),
            SharingData::Server => "server".into(),
            SharingData::Client(s) => format!("client of {s}"),
        },
    );
    let e = &l.entitlements;
    if !e.profiles.is_empty() {
        line(
            "profiles",
            e.profiles
                .iter()
                .map(|p| format!("{} {}", catalog.profile_name(p.code), p.count))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    for f in &e.features {
        line(
            "feature",
            format!(
                "{} {} ({}{})",
                catalog.feature_name(f.code),
                f.quantity,
                category_name(f.category),
                if f.hidden { ", hidden" } else { "" }
            ),
        );
    }
    for b in &e.bases {
        let addons: Vec<String> = b
            .addons
            .iter()
            .map(|a| format!("{} {}", catalog.addon_name(a.code), a.count))
            .collect();
        line(
            "base",
            format!(
                "{} {}{}",
                catalog.base_name(b.code),
                b.count,
                if addons.is_empty() {
                    String::new()
                } else {
                    format!(": {}", addons.join(", "))
                }
            ),
        );
    }
    line(
        "storage",
        format!(
            "{} units ({} GB)",
            e.storage_units,
            u64::from(e.storage_units) * u64::from(catalog.storage_unit_gb)
        ),
    );
    for sv in &l.services {
        line(
            "service",
            format!(
                "{} {} .. {}",
                catalog.service_name(sv.code),
                rfc3339_unix(sv.start),
                rfc3339_unix(sv.end)
            ),
        );
    }
    s
}

/// A license's content as JSON, with catalog names.
#[must_use]
pub fn license_json(l: &LicenseData, catalog: &Catalog) -> serde_json::Value {
    let e = &l.entitlements;
    json!({
        "serial": l.serial,
        "sequence": l.sequence,
        "license_id": hex::encode(l.id),
        "issuer": l.issuer,
        "issued_at": rfc3339_unix(l.issued_at),
        "not_before": rfc3339_unix(l.not_before),
        "lease_end": rfc3339_unix(l.lease_end),
        "platform": PlatformName::of(l.platform).as_str(),
        "term": {
            "cycle": crate::calendar::CycleName::of(l.term.cycle).as_str(),
            "start": rfc3339_unix(l.term.start),
            "end": l.term.end.map(rfc3339_unix),
        },
        "policy": {
            "grace": l.policy.grace,
            "after_grace": after_grace_name(l.policy.after_grace),
            "renewal_window": l.policy.renewal_window,
            "check_interval": l.policy.check_interval,
            "rollback_tolerance": l.policy.rollback_tolerance,
        },
        "binding": {
            "threshold": l.binding.threshold,
            "salt": hex::encode(l.binding.salt),
            "components": l.binding.components.iter().map(|c| json!({
                "kind": component_kind_name(c.kind),
                "digest": hex::encode(c.digest),
                "required": c.required,
            })).collect::<Vec<_>>(),
        },
        "previous_serial": l.previous_serial,
        "customer": l.customer,
        "pbx_name": l.pbx_name,
        "sharing": match &l.sharing {
            SharingData::None => "none".to_owned(),
            SharingData::Server => "server".to_owned(),
            SharingData::Client(s) => format!("client-of {s}"),
        },
        "profiles": e.profiles.iter().map(|p| json!({
            "code": p.code, "name": catalog.profile_name(p.code), "count": p.count,
        })).collect::<Vec<_>>(),
        "features": e.features.iter().map(|f| json!({
            "code": f.code, "name": catalog.feature_name(f.code),
            "category": category_name(f.category), "quantity": f.quantity, "hidden": f.hidden,
        })).collect::<Vec<_>>(),
        "bases": e.bases.iter().map(|b| json!({
            "code": b.code, "name": catalog.base_name(b.code), "count": b.count,
            "addons": b.addons.iter().map(|a| json!({
                "code": a.code, "name": catalog.addon_name(a.code), "count": a.count,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "storage_units": e.storage_units,
        "storage_gb": u64::from(e.storage_units) * u64::from(catalog.storage_unit_gb),
        "services": l.services.iter().map(|s| json!({
            "code": s.code, "name": catalog.service_name(s.code),
            "start": rfc3339_unix(s.start), "end": rfc3339_unix(s.end),
        })).collect::<Vec<_>>(),
    })
}

/// `tessera inspect`.
///
/// # Errors
/// [`Error::Verification`] (exit 3) for a malformed license, or a
/// signature that does not check against `--keyring`.
pub fn inspect(ctx: &Ctx, a: &InspectArgs) -> Result<(), Error> {
    let catalog = ctx.catalog()?;
    let name = a.file.display().to_string();
    let bytes = read_license(&a.file)?;
    let bad = |source| Error::Verification {
        path: name.clone(),
        source,
    };
    let license = decode_license_unverified(&bytes).map_err(bad)?;
    let data = license.to_data();
    let keyring = ctx.keyring_path(a.keyring.as_deref());
    let signature = match &keyring {
        None => Ok("not checked (pass --keyring to check it)".to_owned()),
        Some(k) => {
            let entries = keyring_entries(k)?;
            decode_license(&bytes, &entries)
                .map(|_| format!("valid (kid {})", hex::encode(license.kid())))
        }
    };
    if a.json {
        let mut v = license_json(&data, &catalog);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kid".into(), json!(hex::encode(license.kid())));
            obj.insert(
                "signature".into(),
                match &signature {
                    Ok(_) if keyring.is_none() => json!("not_checked"),
                    Ok(_) => json!("valid"),
                    Err(e) => json!(e.code()),
                },
            );
        }
        print_json(&v)?;
    } else {
        let status = match &signature {
            Ok(s) => s.clone(),
            Err(e) => format!("INVALID: {e}"),
        };
        print(&format!(
            "license {} sequence {}\n  {:<12} {}\n  {:<12} {}\n{}",
            data.serial,
            data.sequence,
            "signature",
            status,
            "kid",
            hex::encode(license.kid()),
            describe(&data, &catalog)
        ))?;
    }
    signature.map(|_| ()).map_err(bad)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    #[serde(default)]
    sw_serial: Option<String>,
    #[serde(default)]
    hw_serial: Option<String>,
    #[serde(default)]
    component: Vec<IdentityComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityComponent {
    kind: String,
    value: String,
}

/// Reads a device identity file (TOML: `sw_serial`, `hw_serial`,
/// `[[component]] kind value`), normalizing every raw value as firmware
/// does.
///
/// # Errors
/// [`Error::Io`], [`Error::Identity`].
pub fn read_identity(path: &Path) -> Result<DeviceIdentity, Error> {
    let text = read_text(path)?;
    let bad = |reason: String| Error::Identity {
        path: path.display().to_string(),
        reason,
    };
    let file: IdentityFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
    let mut id = DeviceIdentity::new();
    if let Some(hw) = &file.hw_serial {
        id.set_hw_serial(hw)
            .map_err(|e| bad(format!("hw_serial: {e}")))?;
    }
    if let Some(sw) = &file.sw_serial {
        id.set_sw_serial(sw)
            .map_err(|e| bad(format!("sw_serial: {e}")))?;
    }
    for c in &file.component {
        let kind = ComponentKind::from_name(&c.kind)
            .ok_or_else(|| bad(format!("unknown component kind `{}`", c.kind)))?;
        let raw: Vec<u8> = if kind == ComponentKind::DEVICE_KEY {
            hex::decode(c.value.trim())
                .map_err(|_| bad("device_key must be 64 hex digits".into()))?
        } else {
            c.value.clone().into_bytes()
        };
        id.add(kind, raw)
            .map_err(|e| bad(format!("{} `{}`: {e}", c.kind, c.value)))?;
    }
    Ok(id)
}

/// What a verification found.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The license content.
    pub license: LicenseData,
    /// The verdict.
    pub verdict: Verdict,
    /// Binding components matched (`None`: not checked).
    pub matched: Option<u8>,
    /// Next check.
    pub next_check: i64,
    /// Days since the last renewal (runtime only).
    pub days_since_renewal: Option<u32>,
}

/// Verifies a license as firmware does: with a device identity through
/// the verifier's runtime `verify` (signature, serial, binding, clock,
/// anti-rollback against `state`, time); without one, signature and time
/// only.
///
/// # Errors
/// The verifier's errors.
pub fn check(
    bytes: &[u8],
    keyring: &[KeyEntry],
    identity: Option<&DeviceIdentity>,
    at: i64,
    state: &mut State,
) -> Result<Checked, tessera_verifier::Error> {
    match identity {
        Some(id) => {
            let d = runtime_verify(bytes, keyring, id, at, state)?;
            Ok(Checked {
                license: d.license().to_data(),
                verdict: d.verdict(),
                matched: Some(d.matched_components()),
                next_check: d.next_check(),
                days_since_renewal: d.days_since_renewal(),
            })
        }
        None => {
            let l = decode_license(bytes, keyring)?;
            let schedule = Schedule::of(&l);
            Ok(Checked {
                license: l.to_data(),
                verdict: schedule.verdict(at),
                matched: None,
                next_check: schedule.next_check(at),
                days_since_renewal: None,
            })
        }
    }
}

/// A verdict for people.
#[must_use]
pub fn verdict_text(v: Verdict) -> String {
    match v {
        Verdict::NotYetValid => "not yet valid".into(),
        Verdict::Valid => "valid: full service".into(),
        Verdict::RenewalDue { days_left } => {
            format!("renewal due: full service, {days_left} day(s) left")
        }
        Verdict::Grace { until } => format!(
            "grace: full service until {}, renew now",
            rfc3339_unix(until)
        ),
        Verdict::Expired {
            mode: AfterGrace::EmergencyOnly,
        } => "expired: emergency calls only".into(),
        Verdict::Expired {
            mode: AfterGrace::Locked,
        } => "expired: locked (calls and web go to the activation page)".into(),
    }
}

/// `tessera verify`.
///
/// # Errors
/// [`Error::Verification`] (exit 3), [`Error::NotInForce`] (exit 5).
pub fn verify(ctx: &Ctx, a: &VerifyArgs) -> Result<(), Error> {
    let catalog = ctx.catalog()?;
    let name = a.file.display().to_string();
    let bytes = read_license(&a.file)?;
    let keyring = keyring_entries(&ctx.required_keyring(a.keyring.as_deref())?)?;
    let identity = a
        .device_identity
        .as_deref()
        .map(read_identity)
        .transpose()?;
    let at = ctx.time_or_now(a.at.as_deref())?;
    let mut state = State::new();
    let checked = check(
        &bytes,
        &keyring,
        identity.as_ref(),
        at.timestamp(),
        &mut state,
    )
    .map_err(|source| Error::Verification {
        path: name.clone(),
        source,
    })?;
    let l = &checked.license;
    if a.json {
        print_json(&json!({
            "verdict": checked.verdict.code(),
            "full_service": checked.verdict.full_service(),
            "at": rfc3339_unix(at.timestamp()),
            "binding_checked": checked.matched.is_some(),
            "matched_components": checked.matched,
            "next_check": rfc3339_unix(checked.next_check),
            "days_since_renewal": checked.days_since_renewal,
            "license": license_json(l, &catalog),
        }))?;
    } else {
        let binding = match checked.matched {
            Some(m) => format!(
                "{m} of {} components match (threshold {})",
                l.binding.components.len(),
                l.binding.threshold
            ),
            None => "not checked (pass --device-identity FILE)".into(),
        };
        print(&format!(
            "signature valid, {} sequence {}\n  {:<12} {}\n  {:<12} {}\n  {:<12} {}\n  {:<12} {}\n{}",
            l.serial,
            l.sequence,
            "verdict",
            verdict_text(checked.verdict),
            "at",
            rfc3339_unix(at.timestamp()),
            "binding",
            binding,
            "next check",
            rfc3339_unix(checked.next_check),
            describe(l, &catalog)
        ))?;
    }
    if checked.verdict.full_service() {
        Ok(())
    } else {
        Err(Error::NotInForce {
            path: name,
            at: rfc3339_unix(at.timestamp()),
            verdict: verdict_text(checked.verdict),
        })
    }
}
