//! Online activation codes: `tessera pbx activation` opens the online
//! activation of one PBX of the registry with a one-time code, and
//! [`crate::issuance::activate_online`] activates the PBX only for a
//! request that brings that code.
//!
//! A signed request proves only that *some* device made it, and serials
//! are sequential (a HW serial is printed on a label): without a code the
//! first device to name a PBX the vendor entered got its order. The code
//! goes from the vendor to the site with the serial (the lines
//! [`Opened::agent_toml`] prints for `agent.toml`), never through the
//! ledger: the journal keeps its digest ([`Fact::ActivationOpened`]), in
//! the PBX's registry history (kind [`ACTIVATION`]).
//!
//! A code works until its `valid_until`, once: the first license of the
//! PBX recorded after it uses it up, whoever issued it (the service, or
//! the vendor by `tessera issue`), and so does a later code, which
//! replaces it. After a void the vendor opens a new one.
//!
//! [`Fact::ActivationOpened`]: crate::ledger::Fact::ActivationOpened

use chrono::{DateTime, Utc};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use tessera_verifier::activation::{ActivationCode, RANDOM_BYTES};
use zeroize::Zeroize;

use crate::calendar::{rfc3339_unix, DAY};
use crate::error::Error;
use crate::ledger::{Writer, ACTIVATION};
use crate::policy::{self, PolicyError};

/// Days a code works by default.
pub const DEFAULT_VALID_DAYS: u32 = 30;
/// The most days a code may work.
pub const MAX_VALID_DAYS: u32 = 365;

/// What `tessera pbx activation` opened.
#[derive(Debug)]
pub struct Opened {
    /// The PBX's SW serial.
    pub serial: String,
    /// The appliance's HW serial (a PBX entered with `--hw-serial`).
    pub hw_serial: Option<String>,
    /// The code (shown once, never stored).
    pub code: ActivationCode,
    /// When the code stops working (Unix seconds).
    pub valid_until: i64,
}

impl Opened {
    /// The lines the site pastes into its `agent.toml`: the serial its
    /// agent presents (an appliance presents its HW serial, which its
    /// agent reads from the device: a comment names it) and the code.
    #[must_use]
    pub fn agent_toml(&self) -> String {
        let first = match &self.hw_serial {
            Some(hw) => format!(
                "# appliance {hw}: its agent presents this HW serial (activates as {})",
                self.serial
            ),
            None => format!("sw_serial = \"{}\"", self.serial),
        };
        format!("{first}\nactivation_code = \"{}\"\n", self.code)
    }
}

/// Opens online activation of the PBX `serial` names (its SW serial, or
/// the HW serial the registry maps to it) for `valid_days` days from
/// `now`: a new random code, replacing the PBX's open one.
///
/// # Errors
/// [`Error::Usage`] for `valid_days` outside 1..=[`MAX_VALID_DAYS`];
/// [`PolicyError::NotRegistered`] for a serial the registry never
/// allocated; [`PolicyError::PbxStopped`], [`PolicyError::PbxDeleted`];
/// [`PolicyError::ActivationNotNeeded`] for a PBX with a license in
/// force; [`Error::Rng`]; [`Error::Ledger`].
pub fn open(
    w: &mut Writer<'_>,
    serial: &str,
    valid_days: u32,
    now: DateTime<Utc>,
) -> Result<Opened, Error> {
    if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
        return Err(Error::Usage(format!(
            "--valid-days {valid_days}: a code works for 1 to {MAX_VALID_DAYS} days"
        )));
    }
    let serial = crate::lifecycle::resolve_known_serial(w, serial)?;
    if w.pbx(&serial)?.is_none() {
        return Err(PolicyError::NotRegistered { serial }.into());
    }
    policy::not_stopped(&serial, w.schedule(&serial)?, now)?;
    if let Some(current) = crate::issuance::in_force(w, &serial)? {
        return Err(PolicyError::ActivationNotNeeded {
            serial,
            sequence: current.row.sequence,
        }
        .into());
    }
    let mut random = [0u8; RANDOM_BYTES];
    OsRng
        .try_fill_bytes(&mut random)
        .map_err(|e| Error::Rng(e.to_string()))?;
    let code = ActivationCode::from_random(&random);
    random.zeroize();
    let at = now.timestamp();
    let valid_until = at.saturating_add(i64::from(valid_days).saturating_mul(DAY));
    w.open_activation(&serial, code.digest(), valid_until, at)?;
    let hw_serial = w.hw_serial_of(&serial)?;
    Ok(Opened {
        serial,
        hw_serial,
        code,
        valid_until,
    })
}

/// The open code of `serial`: its digest, until when it works, and the
/// entry that opened it (`None`: no code was ever opened).
///
/// # Errors
/// [`Error::Ledger`].
fn open_code(w: &Writer<'_>, serial: &str) -> Result<Option<([u8; 32], i64, i64)>, Error> {
    let Some(row) = w
        .pbx_changes(serial)?
        .into_iter()
        .rev()
        .find(|c| c.kind == ACTIVATION)
    else {
        return Ok(None);
    };
    let detail: serde_json::Value = serde_json::from_str(&row.detail).unwrap_or_default();
    let digest = detail
        .get("code_digest")
        .and_then(serde_json::Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    let until = detail
        .get("valid_until")
        .and_then(serde_json::Value::as_i64);
    let entry = i64::try_from(row.entry).unwrap_or(i64::MAX);
    Ok(digest
        .zip(until)
        .map(|(digest, until)| (digest, until, entry)))
}

/// Whether `code` opens the online activation of `serial` at `now`: it
/// matches the PBX's open code ([`open`]), which has not expired and which
/// no license of the PBX used since. The digests are compared in constant
/// time; nothing is changed.
///
/// # Errors
/// [`Error::Ledger`].
pub fn code_opens(
    w: &Writer<'_>,
    serial: &str,
    code: Option<&ActivationCode>,
    now: DateTime<Utc>,
) -> Result<bool, Error> {
    let latest = w.latest(serial)?;
    code_opens_after(w, serial, code, now, latest.as_ref())
}

/// [`code_opens`] for a serial whose latest license is `latest` (read by
/// the caller, so an activation reads it once).
///
/// # Errors
/// [`Error::Ledger`].
pub(crate) fn code_opens_after(
    w: &Writer<'_>,
    serial: &str,
    code: Option<&ActivationCode>,
    now: DateTime<Utc>,
    latest: Option<&crate::ledger::Record>,
) -> Result<bool, Error> {
    let open = open_code(w, serial)?;
    let (expected, until, entry) = open.unwrap_or(([0u8; 32], i64::MIN, i64::MAX));
    // A missing code is compared too, with a digest no code has, so that
    // the work done does not tell "no code" from "wrong code".
    let given = code.map_or([0xffu8; 32], ActivationCode::digest);
    let matches = bool::from(given.ct_eq(&expected));
    let used = latest.is_some_and(|r| r.id > entry);
    Ok(open.is_some() && code.is_some() && matches && !used && now.timestamp() < until)
}

/// A short description of an activation history row, for `pbx show` and
/// `ledger show`: when the code works until (never the code).
#[must_use]
pub fn describe(detail: &serde_json::Value) -> String {
    let until = detail
        .get("valid_until")
        .and_then(serde_json::Value::as_i64)
        .map_or_else(|| "?".to_owned(), rfc3339_unix);
    format!("online activation opened: an activation code valid until {until}")
}

#[cfg(test)]
mod tests;
