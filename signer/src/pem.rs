//! Key file formats, without file I/O.
//!
//! - Private keys: PKCS#8 `PrivateKeyInfo` for Ed25519 (RFC 8410),
//!   encrypted with PBES2 (PKCS#5 v2, RFC 8018): PBKDF2-HMAC-SHA256 +
//!   AES-256-CBC, as the PEM block `ENCRYPTED PRIVATE KEY` (RFC 7468).
//!   OpenSSL 3 reads and writes this format (`openssl pkey`,
//!   `openssl genpkey -aes-256-cbc`).
//!
//!   We write version 1 (seed only) and read versions 1 and 2 (RFC 5958
//!   `OneAsymmetricKey` with the public key, which must then match the
//!   seed). Writing version 2 would add nothing, since the public key is
//!   derived from the seed, and OpenSSL before 3.5 rejects it.
//! - Public keys: `SubjectPublicKeyInfo` as the PEM block `PUBLIC KEY`.
//!
//! PBKDF2 rather than scrypt: OpenSSL caps scrypt's memory at 32 MiB when
//! reading PKCS#8, which rules out scrypt's recommended parameters
//! (N = 2^15, r = 8 needs just over 32 MiB), and PBKDF2-HMAC-SHA256 with
//! 600 000 iterations is the OWASP recommendation. Files encrypted with
//! scrypt (`openssl pkcs8 -topk8 -scrypt`) are still read.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::pem::LineEnding;
use pkcs8::der::{Decode, Reader, SliceReader};
use pkcs8::pkcs5::{self, pbes2};
use pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use pkcs8::{EncryptedPrivateKeyInfo, ObjectIdentifier, PrivateKeyInfo, SecretDocument};
use rand_core::{OsRng, RngCore};
use tessera_keys::KeyError;
use zeroize::Zeroizing;

use crate::Passphrase;

/// PEM label of an encrypted PKCS#8 private key.
pub(crate) const ENCRYPTED_PRIVATE_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";
/// PEM label of an unencrypted PKCS#8 private key.
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// PEM label of a `SubjectPublicKeyInfo`.
pub(crate) const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// id-Ed25519 (RFC 8410).
const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Upper bounds on the cost parameters of a file being read: a damaged or
/// hostile file must not make us compute for hours or allocate gigabytes.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// scrypt N ≤ 2^20 with r ≤ 32 and p ≤ 16.
const MAX_SCRYPT_N: u64 = 1 << 20;
const MAX_SCRYPT_R: u16 = 32;
const MAX_SCRYPT_P: u16 = 16;

/// How a new private key file is encrypted: PBES2 with PBKDF2-HMAC-SHA256
/// and AES-256-CBC, a fresh random 16-byte salt and IV per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptionParams {
    pbkdf2_iterations: u32,
}

impl EncryptionParams {
    /// PBKDF2 iterations of [`EncryptionParams::default`] (OWASP's
    /// recommendation for PBKDF2-HMAC-SHA256).
    pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;

    /// Cheap parameters for tests only: 1 000 iterations, which an attacker
    /// tries a million passphrases against in seconds. Never use them for a
    /// real key.
    #[doc(hidden)]
    #[must_use]
    pub const fn insecure_for_tests() -> Self {
        Self {
            pbkdf2_iterations: 1_000,
        }
    }

    /// The PBKDF2 iteration count.
    #[must_use]
    pub const fn pbkdf2_iterations(&self) -> u32 {
        self.pbkdf2_iterations
    }
}

impl Default for EncryptionParams {
    fn default() -> Self {
        Self {
            pbkdf2_iterations: Self::DEFAULT_PBKDF2_ITERATIONS,
        }
    }
}

fn encoding(what: &'static str) -> impl Fn(pkcs8::Error) -> KeyError {
    move |e| KeyError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// Encodes `key` as an `ENCRYPTED PRIVATE KEY` PEM block.
pub(crate) fn encrypt_private_key(
    key: &SigningKey,
    passphrase: &Passphrase,
    params: EncryptionParams,
) -> Result<Zeroizing<String>, KeyError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.try_fill_bytes(&mut salt).map_err(KeyError::Rng)?;
    OsRng.try_fill_bytes(&mut iv).map_err(KeyError::Rng)?;
    let pbes2 = pbes2::Parameters::pbkdf2_sha256_aes256cbc(params.pbkdf2_iterations, &salt, &iv)
        .map_err(|e| KeyError::Encoding {
            what: "PBES2 parameters",
            reason: e.to_string(),
        })?;

    // CurvePrivateKey ::= OCTET STRING (RFC 8410 §7), DER-encoded inside
    // the PKCS#8 privateKey OCTET STRING.
    let mut curve_private_key = Zeroizing::new([0u8; 34]);
    let (header, seed) = curve_private_key.split_at_mut(2);
    header.copy_from_slice(&[0x04, 0x20]);
    seed.copy_from_slice(key.as_bytes());
    // Version 1, no public key: OpenSSL < 3.5 cannot parse version 2.
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid: ED25519_OID,
            parameters: None,
        },
        curve_private_key.as_slice(),
    );
    let encrypted = info
        .encrypt_with_params(pbes2, passphrase.as_bytes())
        .map_err(encoding("encrypted private key"))?;
    encrypted
        .to_pem(ENCRYPTED_PRIVATE_KEY_LABEL, LineEnding::LF)
        .map_err(|e| KeyError::Encoding {
            what: "PEM",
            reason: e.to_string(),
        })
}

/// Whether a plaintext (unencrypted) private key is acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plaintext {
    /// Refuse it with [`KeyError::Unencrypted`].
    Refuse,
    /// Accept it (explicit import of a key kept elsewhere).
    Accept,
}

/// Decodes a private key file's contents. `passphrase` is used only for an
/// encrypted key.
pub(crate) fn decode_private_key(
    file: &Path,
    text: &[u8],
    passphrase: Option<&Passphrase>,
    plaintext: Plaintext,
) -> Result<SigningKey, KeyError> {
    let label = pem_label(file, text)?;
    match label {
        ENCRYPTED_PRIVATE_KEY_LABEL => {
            let doc = secret_document(file, text)?;
            let passphrase = passphrase.ok_or(KeyError::NoPassphrase)?;
            decrypt(file, doc.as_bytes(), passphrase)
        }
        PRIVATE_KEY_LABEL => {
            let doc = secret_document(file, text)?;
            let info = PrivateKeyInfo::try_from(doc.as_bytes())
                .map_err(|e| corrupt(file, format!("PKCS#8 structure: {e}")))?;
            // An RSA or EC key is reported as such, encrypted or not: it
            // cannot be used at all.
            check_algorithm(file, &info.algorithm)?;
            match plaintext {
                Plaintext::Refuse => Err(KeyError::Unencrypted {
                    file: file.to_owned(),
                }),
                Plaintext::Accept => ed25519_from_info(file, &info),
            }
        }
        "RSA PRIVATE KEY" => unsupported(file, "an RSA"),
        "EC PRIVATE KEY" => unsupported(file, "an EC"),
        "DSA PRIVATE KEY" => unsupported(file, "a DSA"),
        _ if label.contains("PUBLIC KEY") => Err(KeyError::PublicKeyGiven {
            file: file.to_owned(),
        }),
        other => Err(KeyError::NotAKeyFile {
            file: file.to_owned(),
            found: other.to_owned(),
        }),
    }
}

/// Decodes a `PUBLIC KEY` PEM block into a raw Ed25519 public key.
pub(crate) fn decode_public_key(file: &Path, text: &[u8]) -> Result<[u8; 32], KeyError> {
    let label = pem_label(file, text)?;
    match label {
        PUBLIC_KEY_LABEL => {}
        "RSA PUBLIC KEY" => return unsupported(file, "an RSA"),
        _ if label.contains("PRIVATE KEY") => {
            return Err(KeyError::PrivateKeyGiven {
                file: file.to_owned(),
            })
        }
        other => {
            return Err(KeyError::NotAKeyFile {
                file: file.to_owned(),
                found: other.to_owned(),
            })
        }
    }
    let text = utf8(file, text)?;
    let (_, doc) =
        pkcs8::Document::from_pem(text).map_err(|e| corrupt(file, format!("PEM block: {e}")))?;
    let spki = SubjectPublicKeyInfoRef::try_from(doc.as_bytes())
        .map_err(|e| corrupt(file, format!("SubjectPublicKeyInfo structure: {e}")))?;
    check_algorithm(file, &spki.algorithm)?;
    let raw: [u8; 32] = spki
        .subject_public_key
        .as_bytes()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(file, "Ed25519 public key is not 32 bytes".into()))?;
    VerifyingKey::from_bytes(&raw)
        .map_err(|_| corrupt(file, "not a valid Ed25519 public key".into()))?;
    Ok(raw)
}

fn corrupt(file: &Path, reason: String) -> KeyError {
    KeyError::Corrupt {
        file: file.to_owned(),
        reason,
    }
}

fn unsupported<T>(file: &Path, algorithm: &str) -> Result<T, KeyError> {
    Err(KeyError::UnsupportedAlgorithm {
        file: file.to_owned(),
        algorithm: algorithm.to_owned(),
    })
}

fn utf8<'t>(file: &Path, text: &'t [u8]) -> Result<&'t str, KeyError> {
    core::str::from_utf8(text).map_err(|_| corrupt(file, "not a PEM text file".into()))
}

/// The PEM marker every key file starts its block with.
const PEM_BEGIN: &[u8] = b"-----BEGIN ";

fn pem_label<'t>(file: &Path, text: &'t [u8]) -> Result<&'t str, KeyError> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt(file, "the file is empty".into()));
    }
    // Without any BEGIN line this is another file, not a damaged key: say
    // what it looks like instead of "restore it from your backup".
    if !text.windows(PEM_BEGIN.len()).any(|w| w == PEM_BEGIN) {
        let binary = text
            .iter()
            .any(|b| *b == 0 || (b.is_ascii_control() && !b.is_ascii_whitespace()))
            || core::str::from_utf8(text).is_err();
        return Err(KeyError::NotPem {
            file: file.to_owned(),
            reason: if binary {
                "it holds binary data, not PEM text".into()
            } else {
                "it is text without a '-----BEGIN ...-----' line".into()
            },
        });
    }
    pkcs8::der::pem::decode_label(text).map_err(|e| {
        corrupt(
            file,
            format!("no complete '-----BEGIN ...-----' PEM header line: {e}"),
        )
    })
}

fn secret_document(file: &Path, text: &[u8]) -> Result<SecretDocument, KeyError> {
    let text = utf8(file, text)?;
    SecretDocument::from_pem(text)
        .map(|(_, doc)| doc)
        .map_err(|e| {
            corrupt(
                file,
                format!("the PEM block is incomplete or altered ({e}); it may be truncated"),
            )
        })
}

fn decrypt(file: &Path, der: &[u8], passphrase: &Passphrase) -> Result<SigningKey, KeyError> {
    let info = match EncryptedPrivateKeyInfo::try_from(der) {
        Ok(info) => info,
        Err(e) => {
            return Err(match unsupported_scheme(der) {
                Some(scheme) => KeyError::UnsupportedEncryption {
                    file: file.to_owned(),
                    scheme,
                },
                None => corrupt(file, format!("EncryptedPrivateKeyInfo structure: {e}")),
            })
        }
    };
    let scheme = &info.encryption_algorithm;
    let Some(params) = scheme.pbes2() else {
        return Err(KeyError::UnsupportedEncryption {
            file: file.to_owned(),
            scheme: format!("PBES1 ({})", oid_name(&scheme.oid())),
        });
    };
    check_kdf_cost(file, &params.kdf)?;

    let mut buffer = Zeroizing::new(info.encrypted_data.to_vec());
    let plain = scheme
        .decrypt_in_place(passphrase.as_bytes(), &mut buffer)
        .map_err(|e| match e {
            // A wrong key shows as bad padding; pkcs5 0.7 reports that as
            // EncryptFailed, so both count.
            pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed => {
                KeyError::WrongPassphrase {
                    file: file.to_owned(),
                    from: passphrase.source().to_owned(),
                }
            }
            pkcs5::Error::UnsupportedAlgorithm { oid } => KeyError::UnsupportedEncryption {
                file: file.to_owned(),
                scheme: oid_name(&oid),
            },
            other => corrupt(file, format!("encryption parameters: {other}")),
        })?;
    // The padding can come out right by chance (about 1 in 256) under a
    // wrong key; the plaintext is then no PKCS#8 structure.
    let key_info = PrivateKeyInfo::try_from(plain).map_err(|_| KeyError::WrongPassphrase {
        file: file.to_owned(),
        from: passphrase.source().to_owned(),
    })?;
    check_algorithm(file, &key_info.algorithm)?;
    ed25519_from_info(file, &key_info)
}

fn check_kdf_cost(file: &Path, kdf: &pbes2::Kdf<'_>) -> Result<(), KeyError> {
    match kdf {
        pbes2::Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(corrupt(
            file,
            format!(
                "PBKDF2 iteration count {} is above the limit of {MAX_PBKDF2_ITERATIONS}",
                p.iteration_count
            ),
        )),
        pbes2::Kdf::Scrypt(s)
            if s.cost_parameter > MAX_SCRYPT_N
                || s.block_size > MAX_SCRYPT_R
                || s.parallelization > MAX_SCRYPT_P =>
        {
            Err(corrupt(
                file,
                format!(
                    "scrypt parameters N={} r={} p={} are above the limits N={MAX_SCRYPT_N} r={MAX_SCRYPT_R} p={MAX_SCRYPT_P}",
                    s.cost_parameter, s.block_size, s.parallelization
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// For an `EncryptedPrivateKeyInfo` that pkcs8 cannot decode, names the
/// encryption scheme when it is a well-formed but unsupported one (3DES,
/// DES, RC2 ...).
fn unsupported_scheme(der: &[u8]) -> Option<String> {
    let mut reader = SliceReader::new(der).ok()?;
    let algorithm = reader
        .sequence(|r| {
            let algorithm = AlgorithmIdentifierRef::decode(r)?;
            OctetStringRef::decode(r)?;
            Ok(algorithm)
        })
        .ok()?;
    if algorithm.oid != pbes2::PBES2_OID {
        return Some(format!("PBES1 ({})", oid_name(&algorithm.oid)));
    }
    let params = algorithm.parameters?;
    let mut reader = SliceReader::new(params.value()).ok()?;
    let _kdf = AlgorithmIdentifierRef::decode(&mut reader).ok()?;
    let cipher = AlgorithmIdentifierRef::decode(&mut reader).ok()?;
    Some(format!("PBES2 with {}", oid_name(&cipher.oid)))
}

/// A readable name for the OIDs of encryption schemes one meets in key files.
fn oid_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.3.7" => "DES-EDE3-CBC (3DES)",
        "1.3.14.3.2.7" => "DES-CBC",
        "1.2.840.113549.3.2" => "RC2-CBC",
        "1.2.840.113549.2.7" => "PBKDF2 with HMAC-SHA1",
        "1.2.840.113549.1.5.3" => "pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.10" => "pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.12.1.3" => "pbeWithSHAAnd3-KeyTripleDES-CBC",
        other => return format!("the algorithm with OID {other}"),
    };
    name.to_owned()
}

/// Refuses every algorithm but Ed25519, naming the one found.
fn check_algorithm(file: &Path, algorithm: &AlgorithmIdentifierRef<'_>) -> Result<(), KeyError> {
    if algorithm.oid == ED25519_OID {
        if algorithm.parameters.is_some() {
            return Err(corrupt(
                file,
                "Ed25519 algorithm identifier with parameters".into(),
            ));
        }
        return Ok(());
    }
    let name = match algorithm.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => "an RSA".to_owned(),
        "1.2.840.10045.2.1" => {
            let curve = algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|c| match c.to_string().as_str() {
                    "1.2.840.10045.3.1.7" => "P-256".to_owned(),
                    "1.3.132.0.34" => "P-384".to_owned(),
                    "1.3.132.0.35" => "P-521".to_owned(),
                    "1.3.132.0.10" => "secp256k1".to_owned(),
                    other => format!("curve {other}"),
                });
            match curve {
                Some(curve) => format!("an EC ({curve})"),
                None => "an EC".to_owned(),
            }
        }
        "1.2.840.10040.4.1" => "a DSA".to_owned(),
        "1.3.101.113" => "an Ed448".to_owned(),
        "1.3.101.110" => "an X25519".to_owned(),
        "1.3.101.111" => "an X448".to_owned(),
        other => format!("an unknown (OID {other})"),
    };
    unsupported(file, &name)
}

fn ed25519_from_info(file: &Path, info: &PrivateKeyInfo<'_>) -> Result<SigningKey, KeyError> {
    let seed = match info.private_key {
        [0x04, 0x20, seed @ ..] if seed.len() == 32 => seed,
        _ => {
            return Err(corrupt(
                file,
                "the Ed25519 private key is not 32 bytes".into(),
            ))
        }
    };
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(seed);
    let key = SigningKey::from_bytes(&bytes);
    if let Some(public_key) = info.public_key {
        if public_key != key.verifying_key().as_bytes() {
            return Err(corrupt(
                file,
                "the public key does not match the private key".into(),
            ));
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use pkcs8::der::Encode;
    use tessera_keys::public_key_pem;

    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn pass(p: &str) -> Passphrase {
        Passphrase::new(p).unwrap()
    }

    fn file() -> &'static Path {
        Path::new("k.pem")
    }

    fn encrypted() -> Zeroizing<String> {
        encrypt_private_key(&key(), &pass("pw"), EncryptionParams::insecure_for_tests()).unwrap()
    }

    fn decode(text: &[u8], p: &str) -> Result<SigningKey, KeyError> {
        decode_private_key(file(), text, Some(&pass(p)), Plaintext::Refuse)
    }

    #[test]
    fn round_trip() {
        let pem = encrypted();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(pem.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
        assert_eq!(decode(pem.as_bytes(), "pw").unwrap().to_bytes(), [7; 32]);
        // Fresh salt and IV every time.
        assert_ne!(*pem, *encrypted());
    }

    #[test]
    fn default_params_are_strong() {
        assert_eq!(EncryptionParams::default().pbkdf2_iterations(), 600_000);
        assert!(EncryptionParams::insecure_for_tests().pbkdf2_iterations() < 600_000);
    }

    #[test]
    fn wrong_passphrase() {
        let pem = encrypted();
        // Many wrong passphrases: the 1-in-256 chance of valid padding must
        // also come out as a wrong passphrase, never as "corrupt".
        for i in 0..64 {
            let e = decode(pem.as_bytes(), &format!("wrong{i}")).unwrap_err();
            assert!(matches!(e, KeyError::WrongPassphrase { .. }), "{e:?}");
        }
    }

    #[test]
    fn truncated_and_corrupt() {
        let pem = encrypted();
        let half = &pem.as_bytes()[..pem.len() / 2];
        assert!(matches!(decode(half, "pw"), Err(KeyError::Corrupt { .. })));
        assert!(matches!(decode(b"", "pw"), Err(KeyError::Corrupt { .. })));
        // No PEM at all: the wrong file, not a damaged one.
        assert!(matches!(
            decode(b"garbage\n", "pw"),
            Err(KeyError::NotPem { .. })
        ));
        assert!(matches!(
            decode(&[0xff, 0xfe, 0x00], "pw"),
            Err(KeyError::NotPem { .. })
        ));
        // Drop a line from the middle: still framed, but the DER is cut.
        let lines: Vec<&str> = pem.lines().collect();
        let mut cut = lines.clone();
        cut.remove(2);
        let cut = cut.join("\n") + "\n";
        assert!(matches!(
            decode(cut.as_bytes(), "pw"),
            Err(KeyError::Corrupt { .. })
        ));
        // A changed base64 character.
        let altered = pem.replacen("MI", "**", 1);
        assert!(matches!(
            decode(altered.as_bytes(), "pw"),
            Err(KeyError::Corrupt { .. })
        ));
    }

    #[test]
    fn public_key_where_private_expected() {
        let pem = public_key_pem(&key().verifying_key().to_bytes()).unwrap();
        assert!(matches!(
            decode(pem.as_bytes(), "pw"),
            Err(KeyError::PublicKeyGiven { .. })
        ));
        let e = decode_public_key(file(), encrypted().as_bytes()).unwrap_err();
        assert!(matches!(e, KeyError::PrivateKeyGiven { .. }), "{e:?}");
    }

    #[test]
    fn plaintext_is_refused_unless_accepted() {
        let mut inner = vec![0x04, 0x20];
        inner.extend_from_slice(&[7; 32]);
        let info = PrivateKeyInfo {
            algorithm: AlgorithmIdentifierRef {
                oid: ED25519_OID,
                parameters: None,
            },
            private_key: &inner,
            public_key: None,
        };
        let der = info.to_der().unwrap();
        let pem = pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der).unwrap();
        let e = decode(pem.as_bytes(), "pw").unwrap_err();
        assert!(matches!(e, KeyError::Unencrypted { .. }), "{e:?}");
        let k = decode_private_key(file(), pem.as_bytes(), None, Plaintext::Accept).unwrap();
        assert_eq!(k.to_bytes(), [7; 32]);
    }

    #[test]
    fn writes_version_1_reads_version_2() {
        let pem = encrypted();
        let (_, doc) = SecretDocument::from_pem(&pem).unwrap();
        let info = EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
        let plain = info.decrypt("pw").unwrap();
        let key_info = PrivateKeyInfo::try_from(plain.as_bytes()).unwrap();
        assert_eq!(key_info.version(), pkcs8::Version::V1);
        assert!(key_info.public_key.is_none());

        // RFC 8410 §10.3's second example: v2 with attributes and the public key.
        let rfc = "-----BEGIN PRIVATE KEY-----\n\
            MHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
            oB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrB\n\
            Z9w7lshQhqowtrbLDFw4rXAxZuE=\n\
            -----END PRIVATE KEY-----\n";
        let k = decode_private_key(file(), rfc.as_bytes(), None, Plaintext::Accept).unwrap();
        assert_eq!(
            hex::encode(k.verifying_key().as_bytes()),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
    }

    #[test]
    fn mismatched_public_key_is_corrupt() {
        let mut inner = vec![0x04, 0x20];
        inner.extend_from_slice(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        let info = PrivateKeyInfo {
            algorithm: AlgorithmIdentifierRef {
                oid: ED25519_OID,
                parameters: None,
            },
            private_key: &inner,
            public_key: Some(&other),
        };
        let pem =
            pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &info.to_der().unwrap())
                .unwrap();
        let e = decode_private_key(file(), pem.as_bytes(), None, Plaintext::Accept).unwrap_err();
        assert!(matches!(e, KeyError::Corrupt { .. }), "{e:?}");
    }

    #[test]
    fn public_key_round_trip() {
        let pk = key().verifying_key().to_bytes();
        let pem = public_key_pem(&pk).unwrap();
        // tessera-keys writes the fixed SPKI by hand (it links no DER
        // library): it must equal what the DER encoder makes.
        let spki = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: ED25519_OID,
                parameters: None,
            },
            subject_public_key: pkcs8::der::asn1::BitStringRef::from_bytes(&pk).unwrap(),
        };
        let expected = pkcs8::der::pem::encode_string(
            PUBLIC_KEY_LABEL,
            LineEnding::LF,
            &spki.to_der().unwrap(),
        )
        .unwrap();
        assert_eq!(pem, expected);
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
            "{pem}"
        );
        assert_eq!(decode_public_key(file(), pem.as_bytes()).unwrap(), pk);
        let e = decode_public_key(
            file(),
            b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        );
        assert!(matches!(e, Err(KeyError::NotAKeyFile { .. })), "{e:?}");
    }

    #[test]
    fn excessive_kdf_cost_is_refused() {
        let salt = [0u8; 16];
        let iv = [0u8; 16];
        let params =
            pbes2::Parameters::pbkdf2_sha256_aes256cbc(MAX_PBKDF2_ITERATIONS + 1, &salt, &iv)
                .unwrap();
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: params.into(),
            encrypted_data: &[0; 64],
        };
        let pem = pkcs8::der::pem::encode_string(
            ENCRYPTED_PRIVATE_KEY_LABEL,
            LineEnding::LF,
            &info.to_der().unwrap(),
        )
        .unwrap();
        let e = decode(pem.as_bytes(), "pw").unwrap_err();
        assert!(
            matches!(e, KeyError::Corrupt { ref reason, .. } if reason.contains("iteration")),
            "{e:?}"
        );
    }
}
