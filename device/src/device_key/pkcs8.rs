//! The device key file's format: an unencrypted PKCS#8 `PRIVATE KEY` PEM
//! block holding an Ed25519 key (RFC 8410, RFC 5958), read and written
//! without a DER library.
//!
//! The site links no private-key formats beyond this one fixed structure
//! (the vendor's encrypted key files are `tessera-signer`'s business), so
//! the two layouts an Ed25519 key takes are matched byte for byte:
//!
//! - version 1, which this module writes and `openssl genpkey -algorithm
//!   ed25519` writes: 48 bytes, the 32-byte seed after a fixed prefix;
//! - version 2 (`OneAsymmetricKey` with the public key), which earlier
//!   agents wrote: 83 bytes, the seed, then `[1]` with the public key, which
//!   must match the seed. OpenSSL before 3.5 cannot read this one, hence
//!   version 1 for new files.

use ed25519_dalek::SigningKey;
use tessera_verifier::armor;
use zeroize::Zeroizing;

/// PEM label of an unencrypted PKCS#8 private key.
const LABEL: &str = "PRIVATE KEY";

/// Version 1: SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 },
/// OCTET STRING { OCTET STRING (32) } }; the seed follows.
const V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Version 2: as version 1 with INTEGER 1 and a longer outer SEQUENCE.
const V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Version 2, after the seed: `[1] IMPLICIT BIT STRING` (no unused bits);
/// the public key follows.
const V2_PUBLIC_KEY: [u8; 3] = [0x81, 0x21, 0x00];

const SEED_LEN: usize = 32;
const V1_LEN: usize = V1_PREFIX.len() + SEED_LEN;
const V2_LEN: usize = V2_PREFIX.len() + SEED_LEN + V2_PUBLIC_KEY.len() + 32;

/// The key as a version 1 `PRIVATE KEY` PEM block (LF line ends).
pub(super) fn encode(key: &SigningKey) -> Zeroizing<String> {
    let mut der = Zeroizing::new([0u8; V1_LEN]);
    let (prefix, seed) = der.split_at_mut(V1_PREFIX.len());
    prefix.copy_from_slice(&V1_PREFIX);
    seed.copy_from_slice(key.as_bytes());
    Zeroizing::new(armor::encode(der.as_slice(), LABEL))
}

/// The key in a `PRIVATE KEY` PEM block of either version; `None` when the
/// text is anything else (another label, damaged base64, another
/// algorithm, a public key that does not match the seed).
pub(super) fn decode(text: &str) -> Option<SigningKey> {
    // Room for one byte more than the longest layout, so a longer structure
    // decodes in full and is refused for its length.
    let mut buf = Zeroizing::new([0u8; V2_LEN + 1]);
    let der = armor::decode(text, LABEL, buf.as_mut_slice()).ok()?;
    let (prefix, rest) = der.split_at_checked(V1_PREFIX.len())?;
    let (seed, public_key) = match (der.len(), prefix) {
        (V1_LEN, p) if p == V1_PREFIX => (rest, None),
        (V2_LEN, p) if p == V2_PREFIX => {
            let (seed, tail) = rest.split_at_checked(SEED_LEN)?;
            let public_key = tail.strip_prefix(V2_PUBLIC_KEY.as_slice())?;
            (seed, Some(public_key))
        }
        _ => return None,
    };
    let mut seed_bytes = Zeroizing::new([0u8; SEED_LEN]);
    seed_bytes.copy_from_slice(seed);
    let key = SigningKey::from_bytes(&seed_bytes);
    match public_key {
        Some(pk) if pk != key.verifying_key().as_bytes().as_slice() => None,
        _ => Some(key),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// What earlier agents wrote (ed25519-dalek's `to_pkcs8_pem`, version 2)
    /// for the seed `[7; 32]`.
    const V2_SEED_7: &str = "-----BEGIN PRIVATE KEY-----
MFECAQEwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH
gSEA6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=
-----END PRIVATE KEY-----
";
    /// Its public key.
    const PUBLIC_SEED_7: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

    #[test]
    fn version_1_round_trip() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pem = encode(&key);
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"),
            "{}",
            pem.as_str()
        );
        assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
        let back = decode(&pem).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
    }

    #[test]
    fn files_of_earlier_agents_still_load() {
        let key = decode(V2_SEED_7).unwrap();
        assert_eq!(key.to_bytes(), [7; 32]);
        assert_eq!(hex::encode(key.verifying_key().as_bytes()), PUBLIC_SEED_7);
    }

    #[test]
    fn anything_else_is_refused() {
        let v1 = encode(&SigningKey::from_bytes(&[7; 32]));
        let mut der = [0u8; V2_LEN];
        let mut buf = [0u8; 128];
        der.copy_from_slice(armor::decode(V2_SEED_7, LABEL, &mut buf).unwrap());
        let pem = |bytes: &[u8], label: &str| armor::encode(bytes, label);
        let v1_der = {
            let mut b = [0u8; V1_LEN];
            b.copy_from_slice(armor::decode(&v1, LABEL, &mut buf).unwrap());
            b
        };
        // A public key that does not belong to the seed.
        let mut wrong_pk = der;
        wrong_pk[V2_LEN - 1] ^= 1;
        // Another algorithm (X25519, 1.3.101.110) in the same layout.
        let mut x25519 = v1_der;
        x25519[11] = 0x6e;
        // Version 1 claiming version 2, and the reverse.
        let mut v1_as_v2 = v1_der;
        v1_as_v2[4] = 1;
        let mut v2_as_v1 = der;
        v2_as_v1[4] = 0;
        let refused = [
            pem(&wrong_pk, LABEL),
            pem(&x25519, LABEL),
            pem(&v1_as_v2, LABEL),
            pem(&v2_as_v1, LABEL),
            pem(&v1_der[..V1_LEN - 1], LABEL),
            pem(&[v1_der.as_slice(), &[0]].concat(), LABEL),
            pem(&[der.as_slice(), &[0]].concat(), LABEL),
            pem(&v1_der, "ENCRYPTED PRIVATE KEY"),
            pem(&v1_der, "PUBLIC KEY"),
            pem(&[0u8; 4096], LABEL),
            String::new(),
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".into(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n".into(),
        ];
        for (i, text) in refused.iter().enumerate() {
            assert!(decode(text).is_none(), "case {i} accepted: {text}");
        }
    }

    /// OpenSSL reads the files this module writes (`docs/firmware.md` and
    /// the module docs promise `openssl pkey -in device.key -pubout`).
    #[test]
    fn openssl_reads_what_is_written() {
        let Ok(out) = Command::new("openssl").arg("version").output() else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "`openssl` is missing, but CI=true requires it: install it in .ci/run"
            );
            eprintln!("SKIPPED: `openssl` is not on PATH; install it to run this test");
            return;
        };
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let key = SigningKey::from_bytes(&[7; 32]);
        std::fs::write(&path, encode(&key).as_bytes()).unwrap();
        let out = Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-pubout", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(hex::encode(&out.stdout[12..]), PUBLIC_SEED_7);
    }
}
