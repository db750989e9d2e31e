//! # tessera-signer
//!
//! The tessera crate that touches private keys; only the vendor's side (the
//! `tessera` CLI, the license service) links it. The public half (keyring,
//! exports, the [`Signer`] trait, [`KeyError`]) is `tessera-keys`, which a
//! site links without any private-key code.
//!
//! - **Generate** Ed25519 signing keys from the operating system's random
//!   number generator ([`generate_to_file`], [`FileSigner::generate`]); the
//!   key id is [`tessera_verifier::keyring::key_id`] of the public key.
//! - **Store** them encrypted: PKCS#8 `ENCRYPTED PRIVATE KEY` PEM
//!   (PBES2: PBKDF2-HMAC-SHA256 with 600 000 iterations, AES-256-CBC), mode
//!   0600, never overwritten; OpenSSL reads them with the same passphrase.
//!   Public keys are SPKI `PUBLIC KEY` PEM ([`public_key_pem`]).
//! - **Passphrases** come from `TESSERA_PASSPHRASE`, a file, or a terminal
//!   prompt ([`PassphraseSource`]), never from the command line; secrets are
//!   wiped from memory on drop and never appear in `Debug` output.
//! - **Sign** through the [`Signer`] trait, so the issuer does not care
//!   where the key is: a key file ([`FileSigner`]) or a PKCS#11 token
//!   ([`Pkcs11Signer`], RFC 7512 URIs, the PIN from `TESSERA_PKCS11_PIN`, a
//!   file or the terminal); [`AnySigner::open`] opens either from a
//!   command's `--key` ([`KeyLocation`]).
//!
//! ```no_run
//! # fn main() -> Result<(), tessera_signer::KeyError> {
//! use tessera_signer::{load_signer, PassphrasePurpose, PassphraseSource, Signer};
//!
//! let passphrase = PassphraseSource::from_cli(None).obtain(PassphrasePurpose::Unlock)?;
//! let signer = load_signer("signing.pem".as_ref(), &passphrase)?;
//! let signature = signer.sign(b"message")?;
//! # let _ = signature;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod file;
mod open;
mod passphrase;
mod pem;
mod pin;
pub mod pkcs11;
mod storage;

pub use file::FileSigner;
pub use open::{AnySigner, KeyLocation};
pub use passphrase::{Passphrase, PassphrasePurpose, PassphraseSource, PASSPHRASE_ENV};
pub use pem::EncryptionParams;
pub use pin::{Pin, PinSource, PIN_ENV};
pub use pkcs11::{KeyOrigin, Pkcs11Options, Pkcs11Signer};
#[doc(hidden)]
pub use storage::generate_to_file_with;
pub use storage::{
    check_key_file, generate_to_file, load_signer, load_unencrypted_signer, read_public_key_file,
    write_public_key_file,
};
/// The types of this crate's interface, defined in `tessera-keys`.
pub use tessera_keys::{public_key_pem, KeyError, PublicKeyInfo, Signer};
