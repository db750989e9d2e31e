//! # tessera-verifier
//!
//! Offline verification of tessera licenses for PBX firmware: `#![no_std]`,
//! no heap, no panics on any input.
//!
//! A license is a COSE_Sign1 (RFC 9052) signed with Ed25519 whose payload is
//! a CWT claims set (RFC 8392) with one private claim carrying the binding,
//! term, grace policy and entitlements. The normative description is
//! `spec/FORMAT.md`; section numbers (§n) in this crate refer to it.
//!
//! This crate is the one definition of the wire format: the issuer and the
//! device agent use its encoders (feature `alloc`), never their own.
//!
//! Features:
//! - `alloc`: deterministic encoders for licenses, requests and armor into
//!   `Vec`s (without it, [`request`] and [`armor::encode_into`] write
//!   requests and armor into caller buffers).
//! - `std`: `std::error::Error` impls (implies `alloc`).
//!
//! ```
//! use tessera_verifier::{armor, decode_license, KeyEntry};
//! # fn run(text: &str, keyring: &[KeyEntry]) -> Result<(), tessera_verifier::Error> {
//! let mut buf = [0u8; tessera_verifier::MAX_OBJECT_LEN];
//! let bytes = armor::decode(text, armor::LABEL_LICENSE, &mut buf)?;
//! let license = decode_license(bytes, keyring)?;
//! let _serial = license.serial();
//! # Ok(()) }
//! ```
//!
//! ## Runtime: the one call firmware makes
//!
//! [`verify`] turns license bytes into a [`Decision`]: signature, serial,
//! binding to this device ([`DeviceIdentity`]), clock rollback and
//! anti-rollback against the persisted [`State`], then exactly one
//! [`Verdict`] (`Valid`, `RenewalDue`, `Grace`, `Expired`, `NotYetValid`),
//! the next check time, days since the last renewal and the entitlements
//! ([`Grants`]). Degraded states are verdicts; errors mean the file cannot
//! be used on this device. The normative text is `spec/RUNTIME.md`.
//!
//! ```
//! # #[cfg(feature = "alloc")]
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! use tessera_verifier::claims::{AfterGrace, ComponentKind};
//! use tessera_verifier::encode::sign_license;
//! use tessera_verifier::samples::{self, seed_signer, DAY, T0};
//! use tessera_verifier::{key_id, verify, DeviceIdentity, KeyEntry, State, Verdict};
//!
//! // Vendor side (feature `alloc`): the sample yearly license of a HW
//! // appliance, bound to 3 of its 4 identity components.
//! let kid = key_id(&samples::TEST_KEY_1_PUBLIC);
//! let bytes = sign_license(&samples::typical(), &kid, seed_signer(samples::TEST_KEY_1_SEED))?;
//!
//! // Firmware: the keyring it was built with ...
//! let keyring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, T0 - 365 * DAY)];
//! // ... its identity, raw as the probes read it (normalized on the way in) ...
//! let mut identity = DeviceIdentity::new();
//! identity.set_hw_serial(" hw-7f3a-0042\n")?;
//! identity.add(ComponentKind::NIC_MAC, "00:16:3E:5A:1B:2C")?;
//! identity.add(ComponentKind::SYSTEM_UUID, "{4C4C4544-0042-3510-8056-B4C04F4E3232}")?;
//! identity.add(ComponentKind::DISK_SERIAL, "S3Z9NB0K123456")?;
//! // ... and its state from flash (provisioning stored `State::new()`).
//! let flash = State::new().to_bytes();
//! let mut state = State::from_bytes(&flash)?;
//!
//! // First activation, ten days into the term.
//! let now = T0 + 10 * DAY;
//! let decision = verify(&bytes, &keyring, &identity, now, &mut state)?;
//! assert_eq!(decision.verdict(), Verdict::Valid);
//! assert_eq!(decision.next_check(), now + DAY); // daily checks
//! assert_eq!(decision.days_since_renewal(), Some(0));
//! if let Some(grants) = decision.grants() {
//!     assert_eq!(grants.profile_count(1), 20); // users of profile 1
//!     assert!(grants.feature_enabled(4));
//!     assert_eq!(grants.addon_count(4, 1), 52); // add-on 1 on base license 4
//!     assert_eq!(grants.storage_gb(), 100);
//! }
//! // Persist the state, and the SW serial the HW serial became.
//! let flash = state.to_bytes();
//! identity.set_sw_serial(decision.license().serial())?;
//!
//! // Three days after the term end with no renewal: grace, then one
//! // emergency call.
//! let mut state = State::from_bytes(&flash)?;
//! let end = T0 + 365 * DAY;
//! let decision = verify(&bytes, &keyring, &identity, end + 3 * DAY, &mut state)?;
//! assert_eq!(decision.verdict(), Verdict::Grace { until: end + 14 * DAY });
//! assert_eq!(decision.days_since_renewal(), Some(358));
//! let decision = verify(&bytes, &keyring, &identity, end + 14 * DAY, &mut state)?;
//! assert_eq!(decision.verdict(), Verdict::Expired { mode: AfterGrace::EmergencyOnly });
//! assert!(decision.grants().is_none());
//!
//! // Winding the clock back does not revive it.
//! let refused = verify(&bytes, &keyring, &identity, T0 + 100 * DAY, &mut state);
//! assert_eq!(refused.err(), Some(tessera_verifier::Error::ClockRollback));
//! # Ok(()) }
//! # #[cfg(not(feature = "alloc"))]
//! # fn main() {}
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod activation;
pub mod armor;
pub mod binding;
pub mod cbor;
pub mod checkpoint;
pub mod claims;
pub mod cose;
#[cfg(any(feature = "small-stack", test))]
mod curve;
#[cfg(feature = "alloc")]
pub mod encode;
pub mod entitlement;
pub mod error;
pub mod keyring;
pub mod request;
pub mod runtime;
#[cfg(feature = "alloc")]
pub mod samples;
pub mod signature;
pub mod state;
pub mod text;
pub mod time;

pub use checkpoint::Checkpoint;
pub use claims::{License, Request};
pub use cose::{ObjectType, MAX_OBJECT_LEN};
pub use error::{ArmorError, Error, Found, Malformed};
pub use keyring::{key_id, KeyEntry, KeyId, PreparedKey, TrustedKey};
pub use signature::PublicKey;

pub use binding::{normalize, DeviceIdentity, IdentityError};
pub use entitlement::{Grants, Role, ServiceGrant};
pub use runtime::{verify, Decision};
pub use state::{State, StateKey};
pub use time::{Schedule, Verdict};

/// Decodes a license and checks its signature against `keyring`
/// (`spec/FORMAT.md` §3–§6).
///
/// The checks run in this order: size cap, COSE structure and protected
/// header, object type, key lookup (unknown / retired), signature, claims,
/// key validity window against the issue time. Time, binding and state are
/// evaluated by the runtime on top of this.
///
/// # Errors
/// [`Error::Malformed`], [`Error::WrongType`], [`Error::UnknownKey`],
/// [`Error::RetiredKey`], [`Error::BadSignature`], [`Error::KeyNotValidAt`].
pub fn decode_license<'a, K: TrustedKey>(
    bytes: &'a [u8],
    keyring: &[K],
) -> Result<License<'a>, Error> {
    let (payload, kid, entry) = signed_license(bytes, keyring)?;
    let license = claims::parse_license(payload, kid)?;
    if !entry.covers(license.issued_at()) {
        return Err(Error::KeyNotValidAt);
    }
    Ok(license)
}

/// The envelope, key and signature steps of [`decode_license`]: the
/// payload, kid and key entry of a license whose signature verified.
///
/// Out of line, so that on a small MCU the stack of the signature check is
/// not added to the frame that decodes the claims (`bench/REPORT.md`).
#[inline(never)]
fn signed_license<'a, K: TrustedKey>(
    bytes: &'a [u8],
    keyring: &[K],
) -> Result<(&'a [u8], KeyId, KeyEntry), Error> {
    let (sign1, public_key, entry) = envelope_and_key(bytes, keyring)?;
    sign1.verify_with(&public_key)?;
    Ok((sign1.payload, sign1.kid, entry))
}

/// The envelope of a license and the trusted key its kid names, out of
/// line: its temporaries are gone before the signature check.
#[inline(never)]
fn envelope_and_key<'a, K: TrustedKey>(
    bytes: &'a [u8],
    keyring: &[K],
) -> Result<(cose::Sign1<'a>, PublicKey, KeyEntry), Error> {
    let sign1 = cose::parse_as(bytes, ObjectType::License)?;
    let key = keyring::lookup(keyring, &sign1.kid)?;
    Ok((sign1, key.public_key()?, *key.entry()))
}

/// Decodes a license without checking its signature, for inspection
/// tools only: nothing read this way may be trusted.
///
/// # Errors
/// [`Error::Malformed`] and [`Error::WrongType`].
pub fn decode_license_unverified(bytes: &[u8]) -> Result<License<'_>, Error> {
    let sign1 = cose::parse_as(bytes, ObjectType::License)?;
    Ok(claims::parse_license(sign1.payload, sign1.kid)?)
}

/// Decodes a device request and checks that it is signed by the device key
/// it carries (`spec/FORMAT.md` §7). This proves the request was not altered
/// on its way, not who the device is: the issuer decides that.
///
/// # Errors
/// [`Error::Malformed`], [`Error::WrongType`], [`Error::BadSignature`] (also
/// when the header kid is not the carried key's).
pub fn decode_request(bytes: &[u8]) -> Result<Request<'_>, Error> {
    let sign1 = cose::parse_as(bytes, ObjectType::Request)?;
    let request = claims::parse_request(sign1.payload)?;
    let device_key = request.device_key();
    if key_id(&device_key) != sign1.kid {
        return Err(Error::BadSignature);
    }
    sign1.verify_with(&PublicKey::from_bytes(&device_key)?)?;
    Ok(request)
}

/// Decodes a ledger checkpoint and checks its signature against the
/// vendor's `keyring` (`spec/FORMAT.md` §10), in the order of a license:
/// size cap, COSE structure and protected header, object type, key lookup,
/// signature, claims, key validity window against the signing time.
///
/// # Errors
/// [`Error::Malformed`], [`Error::WrongType`], [`Error::UnknownKey`],
/// [`Error::RetiredKey`], [`Error::BadSignature`], [`Error::KeyNotValidAt`].
pub fn decode_checkpoint<'a, K: TrustedKey>(
    bytes: &'a [u8],
    keyring: &[K],
) -> Result<Checkpoint<'a>, Error> {
    let sign1 = cose::parse(bytes)?;
    if sign1.object_type != ObjectType::Checkpoint {
        return Err(Error::WrongType);
    }
    let key = keyring::lookup(keyring, &sign1.kid)?;
    sign1.verify_with(&key.public_key()?)?;
    let checkpoint = checkpoint::parse_checkpoint(sign1.payload, sign1.kid)?;
    if !key.entry().covers(checkpoint.issued_at()) {
        return Err(Error::KeyNotValidAt);
    }
    Ok(checkpoint)
}

/// Decodes a checkpoint without checking its signature, for inspection
/// tools only: nothing read this way may be trusted.
///
/// # Errors
/// [`Error::Malformed`] and [`Error::WrongType`].
pub fn decode_checkpoint_unverified(bytes: &[u8]) -> Result<Checkpoint<'_>, Error> {
    let sign1 = cose::parse(bytes)?;
    if sign1.object_type != ObjectType::Checkpoint {
        return Err(Error::WrongType);
    }
    Ok(checkpoint::parse_checkpoint(sign1.payload, sign1.kid)?)
}

#[cfg(test)]
#[cfg(feature = "std")]
mod tests;
