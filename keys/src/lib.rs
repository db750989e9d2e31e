//! # tessera-keys
//!
//! The public side of tessera's signing keys: what a site may link. No
//! private-key code and no private-key file formats live here (those are in
//! `tessera-signer`, which only the vendor's side links).
//!
//! - **Keyring**: the public keys firmware trusts, with validity windows,
//!   retirement and the one active signing key ([`Keyring`]), kept as a
//!   TOML file and exported for firmware as Rust source, a C header or
//!   CBOR.
//! - **Signing interface**: the [`Signer`] trait the issuer signs through
//!   (implemented by `tessera-signer`'s file and PKCS#11 signers), and
//!   [`PublicKeyInfo`]; the key id is
//!   [`tessera_verifier::keyring::key_id`] of the public key.
//! - **Errors**: [`KeyError`], the one error type of keys, passphrases and
//!   keyrings, shared with `tessera-signer` so callers handle one type.
//! - **Files**: [`storage`], create-new files with a mode and atomic
//!   replacement, used for keyrings and key files alike.
//!
//! ```no_run
//! # fn main() -> Result<(), tessera_keys::KeyError> {
//! use tessera_keys::Keyring;
//!
//! let ring = Keyring::load("keyring.toml".as_ref())?;
//! let firmware_entries = ring.to_entries();
//! # let _ = firmware_entries;
//! # Ok(())
//! # }
//! ```
//!
//! The key rotation procedure is described in `keys/README.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod export;
pub mod keyring;
mod signer;
pub mod storage;

pub use error::{FileKind, KeyError};
pub use keyring::{parse_kid, Activation, KeyRecord, Keyring};
pub use signer::{public_key_pem, PublicKeyInfo, Signer};
pub use tessera_verifier::{KeyEntry, KeyId};
