//! One way to open the signing key a command names, whatever holds it: a
//! key file or a PKCS#11 token.

use std::fmt;
use std::path::{Path, PathBuf};

use tessera_keys::{KeyError, Signer};
use tessera_verifier::KeyId;

use crate::pkcs11::is_pkcs11_uri;
use crate::{
    check_key_file, load_signer, FileSigner, PassphrasePurpose, PassphraseSource, Pkcs11Options,
    Pkcs11Signer,
};

/// Where a signing key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLocation {
    /// An encrypted key file.
    File(PathBuf),
    /// A key in a PKCS#11 token, named by an RFC 7512 URI.
    Pkcs11(String),
}

impl KeyLocation {
    /// What a `--key` argument names: a URI when it starts with `pkcs11:`
    /// (any case), else a file (write `./pkcs11:...` for a file whose name
    /// starts so).
    #[must_use]
    pub fn from_arg(arg: &Path) -> Self {
        match arg.to_str() {
            Some(text) if is_pkcs11_uri(text) => Self::Pkcs11(text.to_owned()),
            _ => Self::File(arg.to_owned()),
        }
    }
}

/// The signer of either kind, behind [`Signer`].
pub enum AnySigner {
    /// A key file, decrypted in memory.
    File(FileSigner),
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Signer),
}

impl AnySigner {
    /// Opens the key at `location`: a key file with the passphrase from
    /// `passphrase`, a token key with `pkcs11`'s module and PIN. Only the
    /// secret the location needs is asked for.
    ///
    /// # Errors
    /// Those of [`load_signer`] and [`PassphraseSource::obtain`] for a
    /// file, of [`Pkcs11Signer::open`] for a token.
    pub fn open(
        location: &KeyLocation,
        passphrase: &PassphraseSource,
        pkcs11: &Pkcs11Options,
    ) -> Result<Self, KeyError> {
        match location {
            KeyLocation::File(path) => {
                // What the file is, before a passphrase is asked for.
                check_key_file(path)?;
                let passphrase = passphrase.obtain(PassphrasePurpose::Unlock)?;
                load_signer(path, &passphrase).map(Self::File)
            }
            KeyLocation::Pkcs11(uri) => Pkcs11Signer::open(uri, pkcs11).map(Self::Pkcs11),
        }
    }

    fn inner(&self) -> &dyn Signer {
        match self {
            Self::File(s) => s,
            Self::Pkcs11(s) => s,
        }
    }
}

impl Signer for AnySigner {
    fn kid(&self) -> KeyId {
        self.inner().kid()
    }

    fn public_key(&self) -> [u8; 32] {
        self.inner().public_key()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError> {
        self.inner().sign(msg)
    }
}

impl fmt::Debug for AnySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(s) => s.fmt(f),
            Self::Pkcs11(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{generate_to_file_with, EncryptionParams, Passphrase, PinSource};

    #[test]
    fn key_arguments_name_files_or_uris() {
        assert_eq!(
            KeyLocation::from_arg(Path::new("pkcs11:token=A;object=k")),
            KeyLocation::Pkcs11("pkcs11:token=A;object=k".into())
        );
        assert_eq!(
            KeyLocation::from_arg(Path::new("./pkcs11:token=A")),
            KeyLocation::File("./pkcs11:token=A".into())
        );
        assert_eq!(
            KeyLocation::from_arg(Path::new("signing.pem")),
            KeyLocation::File("signing.pem".into())
        );
    }

    #[test]
    fn a_file_key_opens_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let pass = Passphrase::new("pw").unwrap();
        let info =
            generate_to_file_with(&path, &pass, EncryptionParams::insecure_for_tests()).unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pw\n").unwrap();
        let no_token = Pkcs11Options {
            module: None,
            pin: PinSource::Auto,
        };
        let signer = AnySigner::open(
            &KeyLocation::File(path),
            &PassphraseSource::File(pw),
            &no_token,
        )
        .unwrap();
        assert_eq!(signer.public_key_info(), info);
        assert_eq!(signer.sign(b"m").unwrap().len(), 64);
        assert!(format!("{signer:?}").contains(&info.kid_hex()));
        // A URI never asks for the passphrase: here it fails for want of a
        // module, not of a passphrase.
        let e = AnySigner::open(
            &KeyLocation::Pkcs11("pkcs11:object=k".into()),
            &PassphraseSource::Env,
            &no_token,
        )
        .unwrap_err();
        assert!(matches!(e, KeyError::NoPkcs11Module { .. }), "{e:?}");
    }
}
