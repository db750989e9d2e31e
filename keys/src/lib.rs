//! # tessera-keys
//!
//! The only tessera crate that touches private keys.
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
//! - **Sign** through the [`Signer`] trait, so a hardware security module can
//!   replace the key file without changes to the issuer.
//! - **Keyring**: the public keys firmware trusts, with validity windows,
//!   retirement and the one active signing key ([`Keyring`]), exported for
//!   firmware as Rust source, a C header or CBOR.
//!
//! ```no_run
//! # fn main() -> Result<(), tessera_keys::KeyError> {
//! use tessera_keys::{load_signer, PassphrasePurpose, PassphraseSource, Signer};
//!
//! let passphrase = PassphraseSource::from_cli(None).obtain(PassphrasePurpose::Unlock)?;
//! let signer = load_signer("signing.pem".as_ref(), &passphrase)?;
//! let signature = signer.sign(b"message")?;
//! # let _ = signature;
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
mod passphrase;
mod pem;
mod signer;
mod storage;

pub use error::KeyError;
pub use keyring::{parse_kid, KeyRecord, Keyring};
pub use passphrase::{Passphrase, PassphrasePurpose, PassphraseSource, PASSPHRASE_ENV};
pub use pem::{public_key_pem, EncryptionParams};
pub use signer::{FileSigner, PublicKeyInfo, Signer};
#[doc(hidden)]
pub use storage::generate_to_file_with;
pub use storage::{
    generate_to_file, load_signer, load_unencrypted_signer, read_public_key_file,
    write_public_key_file,
};
pub use tessera_verifier::{KeyEntry, KeyId};
