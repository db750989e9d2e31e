//! Which key signs: the keyring's key active at the time of signing
//! ([`Keyring::active_at`]), among the keys the issuer was given.
//!
//! During a rotation the issuer is given both keys (`key = ["2026.pem",
//! "2027.pem"]` in `tessera.toml`, or `--key` twice) and the keyring a
//! scheduled switch (`tessera keyring activate KID --at TIME`): before the
//! switch the old key signs, from its time on the new one, with no pause
//! and no operator at the keyboard. Only the key that signs is opened (one
//! passphrase or PIN): a key file's kid is read from its `.pub` file beside
//! it; a key whose kid is not known that way (a token key, a file without
//! `.pub`) is opened only when no known key is the active one.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tessera_keys::{KeyError, KeyId, Keyring, Signer as _};
use tessera_signer::{
    read_public_key_file, AnySigner, KeyLocation, PassphraseSource, Pkcs11Options,
};

use crate::commands::keys::public_path;
use crate::error::Error;

/// The keys an issuer may sign with, and how to open them.
#[derive(Debug)]
pub struct KeySet {
    /// Key files and token URIs, in the order given.
    pub locations: Vec<KeyLocation>,
    /// Where a key file's passphrase comes from.
    pub passphrase: PassphraseSource,
    /// How a token key is reached.
    pub pkcs11: Pkcs11Options,
}

impl KeySet {
    /// The kid of a key known without opening it: a key file's `.pub`
    /// file beside it.
    #[must_use]
    pub fn known_kid(location: &KeyLocation) -> Option<KeyId> {
        match location {
            KeyLocation::File(path) => read_public_key_file(&public_path(path))
                .ok()
                .map(|info| info.kid),
            KeyLocation::Pkcs11(_) => None,
        }
    }

    fn open(&self, location: &KeyLocation) -> Result<AnySigner, Error> {
        Ok(AnySigner::open(location, &self.passphrase, &self.pkcs11)?)
    }

    /// Opens the key that signs at `at`: with a keyring, its key active
    /// then ([`Keyring::active_at`]), checked ([`Keyring::check_signer`]);
    /// without one, the only key given.
    ///
    /// # Errors
    /// [`Error::Usage`] without a key, with several keys and no keyring,
    /// or when none of them is the active one (naming it); [`Error::Key`].
    pub fn signer_at(
        &self,
        keyring: Option<&Keyring>,
        at: DateTime<Utc>,
    ) -> Result<AnySigner, Error> {
        let [first, ..] = self.locations.as_slice() else {
            return Err(Error::Usage(
                "no signing key: pass --key FILE (or --key pkcs11:URI), set TESSERA_KEY or `key` in tessera.toml".into(),
            ));
        };
        let Some(ring) = keyring else {
            if self.locations.len() > 1 {
                return Err(Error::Usage(format!(
                    "{} signing keys and no keyring to say which one signs: name the keyring with --keyring, TESSERA_KEYRING or `keyring` in tessera.toml",
                    self.locations.len()
                )));
            }
            return self.open(first);
        };
        let active = ring.active_at(at).ok_or(KeyError::NoActiveKey)?;
        let known = self
            .locations
            .iter()
            .find(|l| Self::known_kid(l) == Some(active.kid));
        let signer = match known {
            Some(location) => self.open(location)?,
            // One key: the keyring's check below says what is wrong.
            None if self.locations.len() == 1 => self.open(first)?,
            None => {
                let mut found = None;
                for location in self
                    .locations
                    .iter()
                    .filter(|l| Self::known_kid(l).is_none())
                {
                    let signer = self.open(location)?;
                    if signer.kid() == active.kid {
                        found = Some(signer);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    Error::Usage(format!(
                        "none of the signing keys given ({}) is the keyring's key for {}, {} ({}); add its key file to `key` in tessera.toml (or --key)",
                        self.names().join(", "),
                        crate::calendar::rfc3339(at),
                        active.kid_hex(),
                        active.label
                    ))
                })?
            }
        };
        ring.check_signer(&signer, at)?;
        Ok(signer)
    }

    fn names(&self) -> Vec<String> {
        self.locations
            .iter()
            .map(|l| match l {
                KeyLocation::File(p) => p.display().to_string(),
                KeyLocation::Pkcs11(uri) => uri.clone(),
            })
            .collect()
    }
}

/// The locations of `paths` (`pkcs11:` URIs or files).
#[must_use]
pub fn locations(paths: &[PathBuf]) -> Vec<KeyLocation> {
    paths.iter().map(|p| KeyLocation::from_arg(p)).collect()
}

#[cfg(test)]
mod tests;
