//! Ed25519 verification with `verify_strict` semantics over a message given
//! in pieces, so the COSE Sig_structure never has to be copied into a buffer
//! (`spec/FORMAT.md` §3.4).
//!
//! `ed25519-dalek`'s `verify_stream` checks that S is canonical and that the
//! recomputed R equals the signature's R. `verify_strict` additionally
//! refuses a small-order (weak) public key and a small-order or
//! non-decompressible R; both checks are added here. The tests prove the
//! result equals `verify_strict` on RFC 8032 §7.1 and all Wycheproof
//! Ed25519 vectors.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::Error;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Verifies `signature` by `public_key` over the concatenation of `parts`,
/// with the criteria of `ed25519_dalek::VerifyingKey::verify_strict`.
///
/// # Errors
/// [`Error::BadSignature`] for an invalid key encoding, a weak key, a
/// non-canonical S, a small-order or invalid R, or a signature that does not
/// match.
pub fn verify_parts(
    public_key: &[u8; 32],
    parts: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), Error> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| Error::BadSignature)?;
    if key.is_weak() {
        return Err(Error::BadSignature);
    }
    let mut r_bytes = [0u8; 32];
    for (dst, src) in r_bytes.iter_mut().zip(signature.iter()) {
        *dst = *src;
    }
    let r = CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(Error::BadSignature)?;
    if r.is_small_order() {
        return Err(Error::BadSignature);
    }
    let signature = Signature::from_bytes(signature);
    let mut stream = key
        .verify_stream(&signature)
        .map_err(|_| Error::BadSignature)?;
    for part in parts {
        stream.update(part);
    }
    stream
        .finalize_and_verify()
        .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn strict(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(pk)
            .map(|k| k.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
            .unwrap_or(false)
    }

    fn arr<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
        <[u8; N]>::try_from(v).ok()
    }

    /// RFC 8032 §7.1 TEST 1, 2, 3 and 1024-byte TEST.
    #[test]
    fn rfc8032_section_7_1() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (sk, pk, msg, sig) in cases {
            let sk: [u8; 32] = arr(&hex::decode(sk).unwrap()).unwrap();
            let pk: [u8; 32] = arr(&hex::decode(pk).unwrap()).unwrap();
            let msg = hex::decode(msg).unwrap();
            let sig: [u8; 64] = arr(&hex::decode(sig).unwrap()).unwrap();
            let signing = SigningKey::from_bytes(&sk);
            assert_eq!(signing.verifying_key().to_bytes(), pk);
            assert_eq!(signing.sign(&msg).to_bytes(), sig);
            assert_eq!(verify_parts(&pk, &[&msg], &sig), Ok(()));
            // Split anywhere: the stream gives the same answer.
            for cut in 0..=msg.len() {
                let (a, b) = msg.split_at(cut);
                assert_eq!(verify_parts(&pk, &[a, b], &sig), Ok(()));
            }
            let mut bad = sig;
            bad[0] ^= 1;
            assert_eq!(verify_parts(&pk, &[&msg], &bad), Err(Error::BadSignature));
        }
    }

    /// Every Wycheproof Ed25519 vector gives the result `verify_strict`
    /// gives, and every "valid" vector verifies.
    #[test]
    fn wycheproof_matches_verify_strict() {
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
        let mut total = 0;
        for group in set.test_groups {
            let Some(pk) = arr::<32>(&group.key.pk) else {
                continue;
            };
            for test in group.tests {
                total += 1;
                let ours = match arr::<64>(&test.sig) {
                    Some(sig) => verify_parts(&pk, &[&test.msg], &sig).is_ok(),
                    None => false,
                };
                let theirs = match arr::<64>(&test.sig) {
                    Some(sig) => strict(&pk, &test.msg, &sig),
                    None => false,
                };
                assert_eq!(ours, theirs, "tc {}: {}", test.tc_id, test.comment);
                if test.result == wycheproof::TestResult::Valid {
                    assert!(ours, "tc {} must verify", test.tc_id);
                }
                if test.result == wycheproof::TestResult::Invalid {
                    assert!(!ours, "tc {} must fail", test.tc_id);
                }
            }
        }
        assert!(total > 100, "only {total} vectors ran");
    }

    #[test]
    fn weak_key_and_small_order_r_refused() {
        // The identity point (small order) as key, and as R.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let sig = [0u8; 64];
        assert_eq!(
            verify_parts(&identity, &[b"x"], &sig),
            Err(Error::BadSignature)
        );
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        assert_eq!(verify_parts(&key, &[b"x"], &sig), Err(Error::BadSignature));
    }
}
