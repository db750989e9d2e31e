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
//! - `alloc`: deterministic encoders for licenses, requests and armor.
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
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod armor;
pub mod binding;
pub mod cbor;
pub mod claims;
pub mod cose;
#[cfg(feature = "alloc")]
pub mod encode;
pub mod error;
pub mod keyring;
#[cfg(feature = "alloc")]
pub mod samples;
pub mod signature;

pub use claims::{License, Request};
pub use cose::{ObjectType, MAX_OBJECT_LEN};
pub use error::{ArmorError, Error, Malformed};
pub use keyring::{key_id, KeyEntry, KeyId};

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
pub fn decode_license<'a>(bytes: &'a [u8], keyring: &[KeyEntry]) -> Result<License<'a>, Error> {
    let sign1 = cose::parse(bytes)?;
    if sign1.object_type != ObjectType::License {
        return Err(Error::WrongType);
    }
    let key = keyring::lookup(keyring, &sign1.kid)?;
    sign1.verify_with(&key.public_key)?;
    let license = claims::parse_license(sign1.payload, sign1.kid)?;
    if !key.covers(license.issued_at()) {
        return Err(Error::KeyNotValidAt);
    }
    Ok(license)
}

/// Decodes a license without checking its signature, for inspection
/// tools only: nothing read this way may be trusted.
///
/// # Errors
/// [`Error::Malformed`] and [`Error::WrongType`].
pub fn decode_license_unverified(bytes: &[u8]) -> Result<License<'_>, Error> {
    let sign1 = cose::parse(bytes)?;
    if sign1.object_type != ObjectType::License {
        return Err(Error::WrongType);
    }
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
    let sign1 = cose::parse(bytes)?;
    if sign1.object_type != ObjectType::Request {
        return Err(Error::WrongType);
    }
    let request = claims::parse_request(sign1.payload)?;
    let device_key = request.device_key();
    if key_id(&device_key) != sign1.kid {
        return Err(Error::BadSignature);
    }
    sign1.verify_with(&device_key)?;
    Ok(request)
}

#[cfg(all(test, feature = "std"))]
mod tests;
