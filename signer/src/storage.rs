//! Key files on disk: private keys (encrypted PKCS#8, mode 0600) and
//! public keys (SPKI, mode 0644).
//!
//! Files are written through `tessera_keys::storage`: created with
//! `create_new` (an existing file is an error, never overwritten), written
//! fully and fsynced together with their folder.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use tessera_keys::storage::{open_error_of, write_new_file, PUBLIC_MODE};
use tessera_keys::{KeyError, PublicKeyInfo};
use zeroize::Zeroizing;

use crate::file::FileSigner;
use crate::pem::{self, EncryptionParams, Plaintext};
use crate::Passphrase;

/// Key files are small; anything larger is not one.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Generates a new signing key and writes it to `path`, encrypted under
/// `passphrase` (PBKDF2-HMAC-SHA256, 600 000 iterations, AES-256-CBC) as an
/// `ENCRYPTED PRIVATE KEY` PEM file with mode 0600.
///
/// ```no_run
/// # fn main() -> Result<(), tessera_signer::KeyError> {
/// use tessera_signer::{PassphrasePurpose, PassphraseSource};
/// let passphrase = PassphraseSource::Auto.obtain(PassphrasePurpose::NewKey)?;
/// let info = tessera_signer::generate_to_file("signing.pem".as_ref(), &passphrase)?;
/// println!("kid {}\n{}", info.kid_hex(), info.to_pem()?);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`KeyError::AlreadyExists`] when `path` exists, [`KeyError::Io`],
/// [`KeyError::Rng`].
pub fn generate_to_file(path: &Path, passphrase: &Passphrase) -> Result<PublicKeyInfo, KeyError> {
    generate_to_file_with(path, passphrase, EncryptionParams::default())
}

/// [`generate_to_file`] with chosen encryption parameters (tests use cheap
/// ones).
///
/// # Errors
/// As [`generate_to_file`].
#[doc(hidden)]
pub fn generate_to_file_with(
    path: &Path,
    passphrase: &Passphrase,
    params: EncryptionParams,
) -> Result<PublicKeyInfo, KeyError> {
    FileSigner::generate()?.write_encrypted_with(path, passphrase, params)
}

/// Loads the encrypted signing key at `path`.
///
/// # Errors
/// [`KeyError::NotFound`], [`KeyError::WrongPassphrase`],
/// [`KeyError::Corrupt`] (damaged or truncated), [`KeyError::PublicKeyGiven`],
/// [`KeyError::UnsupportedAlgorithm`] (RSA, EC ...),
/// [`KeyError::Unencrypted`], [`KeyError::UnsupportedEncryption`],
/// [`KeyError::NotAKeyFile`], [`KeyError::Io`].
pub fn load_signer(path: &Path, passphrase: &Passphrase) -> Result<FileSigner, KeyError> {
    let text = read_key_file(path)?;
    pem::decode_private_key(path, &text, Some(passphrase), Plaintext::Refuse)
        .map(FileSigner::from_signing_key)
}

/// Checks what the key file at `path` is before its passphrase is asked
/// for: an encrypted PKCS#8 key passes; a plaintext, RSA, EC or public
/// key, another PEM file or no PEM at all is refused at once, saying what
/// it is (asking for a passphrase first would only mislead).
///
/// # Errors
/// As [`load_signer`] but [`KeyError::WrongPassphrase`].
pub fn check_key_file(path: &Path) -> Result<(), KeyError> {
    let text = read_key_file(path)?;
    match pem::decode_private_key(path, &text, None, Plaintext::Refuse) {
        // Encrypted and well-formed: it needs its passphrase.
        Err(KeyError::NoPassphrase) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Loads an **unencrypted** (`PRIVATE KEY`) signing key, e.g. one made
/// elsewhere, to re-encrypt it with [`FileSigner::write_encrypted`].
/// [`load_signer`] refuses such files.
///
/// # Errors
/// As [`load_signer`]; an encrypted file gives [`KeyError::NoPassphrase`].
pub fn load_unencrypted_signer(path: &Path) -> Result<FileSigner, KeyError> {
    let text = read_key_file(path)?;
    pem::decode_private_key(path, &text, None, Plaintext::Accept).map(FileSigner::from_signing_key)
}

/// Reads a `PUBLIC KEY` PEM file (SPKI) holding an Ed25519 key.
///
/// # Errors
/// [`KeyError::NotFound`], [`KeyError::PrivateKeyGiven`],
/// [`KeyError::UnsupportedAlgorithm`], [`KeyError::Corrupt`],
/// [`KeyError::NotAKeyFile`], [`KeyError::Io`].
pub fn read_public_key_file(path: &Path) -> Result<PublicKeyInfo, KeyError> {
    let text = read_key_file(path)?;
    pem::decode_public_key(path, &text).map(PublicKeyInfo::new)
}

/// Writes the public key to a new `PUBLIC KEY` PEM file (mode 0644); an
/// existing file is never overwritten.
///
/// # Errors
/// [`KeyError::AlreadyExists`], [`KeyError::Io`].
pub fn write_public_key_file(path: &Path, key: &PublicKeyInfo) -> Result<(), KeyError> {
    write_new_file(path, key.to_pem()?.as_bytes(), PUBLIC_MODE)
}

/// Reads a key file into memory that is wiped afterwards (it may hold a
/// plaintext key).
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io_err = |source| KeyError::Io {
        file: path.to_owned(),
        action: "read",
        source,
    };
    if tessera_keys::storage::is_stdio(path) {
        // Reserved first: a growing Vec would leave copies behind.
        let capacity = usize::try_from(MAX_KEY_FILE + 1).unwrap_or(usize::MAX);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        std::io::stdin()
            .lock()
            .take(MAX_KEY_FILE)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        return Ok(bytes);
    }
    let file = File::open(path).map_err(|e| open_error_of(path, tessera_keys::FileKind::Key, e))?;
    let len = file.metadata().map_err(io_err)?.len();
    if len > MAX_KEY_FILE {
        return Err(KeyError::Corrupt {
            file: path.to_owned(),
            reason: format!("{len} bytes, larger than any key file"),
        });
    }
    let capacity = usize::try_from(len + 1).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(MAX_KEY_FILE)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use std::fs;

    use tessera_keys::Signer;

    fn cheap() -> EncryptionParams {
        EncryptionParams::insecure_for_tests()
    }

    fn pass(p: &str) -> Passphrase {
        Passphrase::new(p).unwrap()
    }

    #[test]
    fn generate_load_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        let info = generate_to_file_with(&path, &pass("pw"), cheap()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let signer = load_signer(&path, &pass("pw")).unwrap();
        assert_eq!(signer.public_key_info(), info);
        assert_eq!(signer.sign(b"m").unwrap().len(), 64);
    }

    #[test]
    fn default_parameters_round_trip() {
        // The one test with the real 600 000 iterations (slow in debug).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strong.pem");
        let info = generate_to_file(&path, &pass("correct horse")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let (_, doc) = pkcs8::Document::from_pem(&text).unwrap();
        let epki = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
        let pbes2 = epki.encryption_algorithm.pbes2().unwrap();
        assert_eq!(pbes2.kdf.pbkdf2().unwrap().iteration_count, 600_000);
        assert_eq!(
            pbes2.kdf.pbkdf2().unwrap().prf,
            pkcs8::pkcs5::pbes2::Pbkdf2Prf::HmacWithSha256
        );
        assert_eq!(pbes2.encryption.oid(), pkcs8::pkcs5::pbes2::AES_256_CBC_OID);
        assert_eq!(
            load_signer(&path, &pass("correct horse"))
                .unwrap()
                .public_key_info(),
            info
        );
    }

    #[test]
    fn never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        fs::write(&path, b"precious").unwrap();
        let e = generate_to_file_with(&path, &pass("pw"), cheap()).unwrap_err();
        assert!(
            matches!(e, KeyError::AlreadyExists { ref file } if file == &path),
            "{e:?}"
        );
        assert!(e.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        let key = PublicKeyInfo::new([9; 32]);
        let e = write_public_key_file(&path, &key).unwrap_err();
        assert!(matches!(e, KeyError::AlreadyExists { .. }));
    }

    /// A file that is no PEM at all is the wrong file, not a damaged key:
    /// no "restore it from your backup"; a damaged key still says so.
    #[test]
    fn a_file_that_is_no_pem_is_named_so() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("photo.pem");
        fs::write(&binary, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        let text = dir.path().join("notes.pem");
        fs::write(&text, "my signing key is in the safe\n").unwrap();
        for (path, says) in [(&binary, "binary data"), (&text, "without a '-----BEGIN")] {
            for e in [
                load_signer(path, &pass("pw")).unwrap_err(),
                read_public_key_file(path).unwrap_err(),
                check_key_file(path).unwrap_err(),
            ] {
                assert!(matches!(e, KeyError::NotPem { .. }), "{e:?}");
                let m = e.to_string();
                assert!(m.contains(says) && !m.contains("backup"), "{m}");
            }
        }
        let cut = dir.path().join("cut.pem");
        fs::write(
            &cut,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEF\n",
        )
        .unwrap();
        let e = load_signer(&cut, &pass("pw")).unwrap_err();
        assert!(matches!(e, KeyError::Corrupt { .. }), "{e:?}");
    }

    /// What a key file is shows before any passphrase is asked for.
    #[test]
    fn check_key_file_says_what_the_file_is_without_a_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("signing.pem");
        let info = generate_to_file_with(&good, &pass("pw"), cheap()).unwrap();
        check_key_file(&good).unwrap();
        let rsa = dir.path().join("rsa.pem");
        fs::write(
            &rsa,
            "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = check_key_file(&rsa).unwrap_err();
        assert!(matches!(e, KeyError::UnsupportedAlgorithm { .. }), "{e:?}");
        let public = dir.path().join("signing.pem.pub");
        write_public_key_file(&public, &info).unwrap();
        assert!(matches!(
            check_key_file(&public),
            Err(KeyError::PublicKeyGiven { .. })
        ));
        // RFC 8410 section 10.3: an Ed25519 key in plaintext PKCS#8.
        let plain = dir.path().join("plain.pem");
        fs::write(
            &plain,
            "-----BEGIN PRIVATE KEY-----\n\
             MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
             -----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(
            check_key_file(&plain),
            Err(KeyError::Unencrypted { .. })
        ));
    }

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.pem");
        let e = load_signer(&path, &pass("pw")).unwrap_err();
        assert!(
            matches!(e, KeyError::NotFound { ref file, what: tessera_keys::FileKind::Key } if file == &path),
            "{e:?}"
        );
        assert!(e.to_string().contains("no such key file"), "{e}");
        assert!(matches!(
            read_public_key_file(&path),
            Err(KeyError::NotFound { .. })
        ));
        let e = generate_to_file_with(&dir.path().join("no/dir/k.pem"), &pass("pw"), cheap());
        assert!(
            matches!(
                e,
                Err(KeyError::Io {
                    action: "create",
                    ..
                })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_passphrase_truncated_public() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let info = generate_to_file_with(&path, &pass("right"), cheap()).unwrap();
        let e = load_signer(&path, &pass("wrong")).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassphrase { .. }), "{e:?}");

        let text = fs::read(&path).unwrap();
        let cut = dir.path().join("cut.pem");
        fs::write(&cut, &text[..text.len() - 40]).unwrap();
        let e = load_signer(&cut, &pass("right")).unwrap_err();
        assert!(matches!(e, KeyError::Corrupt { .. }), "{e:?}");

        let public = dir.path().join("k.pub");
        write_public_key_file(&public, &info).unwrap();
        assert_eq!(fs::metadata(&public).unwrap().mode() & 0o777, 0o644);
        let e = load_signer(&public, &pass("right")).unwrap_err();
        assert!(matches!(e, KeyError::PublicKeyGiven { .. }), "{e:?}");
        assert_eq!(read_public_key_file(&public).unwrap(), info);
        let e = read_public_key_file(&path).unwrap_err();
        assert!(matches!(e, KeyError::PrivateKeyGiven { .. }), "{e:?}");
    }

    #[test]
    fn unencrypted_import_and_reencrypt() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.pem");
        let mut body = vec![0x04, 0x20];
        body.extend_from_slice(&[5; 32]);
        let info = pkcs8::PrivateKeyInfo::new(
            pkcs8::spki::AlgorithmIdentifierRef {
                oid: pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112"),
                parameters: None,
            },
            &body,
        );
        let der = pkcs8::der::Encode::to_der(&info).unwrap();
        let text =
            pkcs8::der::pem::encode_string("PRIVATE KEY", pkcs8::LineEnding::LF, &der).unwrap();
        fs::write(&plain, text).unwrap();
        let e = load_signer(&plain, &pass("pw")).unwrap_err();
        assert!(matches!(e, KeyError::Unencrypted { .. }), "{e:?}");
        let signer = load_unencrypted_signer(&plain).unwrap();
        let encrypted = dir.path().join("enc.pem");
        signer
            .write_encrypted_with(&encrypted, &pass("pw"), cheap())
            .unwrap();
        assert_eq!(
            load_signer(&encrypted, &pass("pw")).unwrap().kid(),
            signer.kid()
        );
        let e = load_unencrypted_signer(&encrypted).unwrap_err();
        assert!(matches!(e, KeyError::NoPassphrase), "{e:?}");
    }

    #[test]
    fn debug_of_loaded_key_has_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let passphrase = "tr0ub4dor&3-unique-marker";
        generate_to_file_with(&path, &pass(passphrase), cheap()).unwrap();
        let p = pass(passphrase);
        let signer = load_signer(&path, &p).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let seed = pem::decode_private_key(&path, text.as_bytes(), Some(&p), Plaintext::Refuse)
            .unwrap()
            .to_bytes();
        let shown = format!("{signer:?} {signer:#?} {p:?}");
        assert!(!shown.contains(&hex::encode(seed)), "{shown}");
        assert!(!shown.contains(&format!("{seed:?}")), "{shown}");
        assert!(!shown.contains(passphrase), "{shown}");
    }

    #[test]
    fn oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        fs::write(&path, vec![b'A'; 100_000]).unwrap();
        assert!(matches!(
            load_signer(&path, &pass("pw")),
            Err(KeyError::Corrupt { .. })
        ));
    }
}
