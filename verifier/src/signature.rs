//! Ed25519 verification with `verify_strict` semantics over a message given
//! in pieces, so the COSE Sig_structure never has to be copied into a buffer
//! (`spec/FORMAT.md` §3.4).
//!
//! The check is RFC 8032 §5.1.7 with the criteria of
//! `ed25519_dalek::VerifyingKey::verify_strict`: S must be canonical, the
//! public key and R must decompress and must not be of small order, and
//! `[S]B - [k]A` must equal R as a point, with
//! `k = SHA-512(R || A || M) mod l` over the encodings as given. The curve
//! arithmetic is curve25519-dalek's; only the order of the steps is ours, so
//! that a key is decompressed once ([`PublicKey`]) and the recomputed R is
//! compared without a second inversion. The tests prove the result equals
//! `verify_strict` on RFC 8032 §7.1, all Wycheproof Ed25519 vectors and
//! random forgeries, with either multiplication (see below).
//!
//! The multiplication `[k](-A) + [S]B` is curve25519-dalek's variable-time
//! double-base multiplication, or with the feature `small-stack` the one in
//! `src/straus.rs`, which needs about a third of its stack on 32-bit
//! targets (`bench/REPORT.md`).

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use crate::Error;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 public key, decompressed and checked once: it is a point on
/// the curve and not of small order (`verify_strict`'s "weak key").
///
/// Decompressing costs about as much as a tenth of a verification, so a
/// caller that verifies often keeps these (see
/// [`crate::keyring::PreparedKey`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The encoding as given, hashed into `k`.
    compressed: [u8; 32],
    /// `-A`, the form the multiplication uses.
    minus_a: EdwardsPoint,
}

impl PublicKey {
    /// Decompresses and checks a 32-byte Ed25519 public key.
    ///
    /// # Errors
    /// [`Error::BadSignature`] when the bytes are not a curve point or the
    /// point has small order: no signature by such a key is accepted.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(Error::BadSignature)?;
        if point.is_small_order() {
            return Err(Error::BadSignature);
        }
        Ok(Self {
            compressed: *bytes,
            minus_a: -point,
        })
    }

    /// The 32-byte encoding this key was made from.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.compressed
    }
}

/// `[a]P + [b]B` for the Ed25519 base point B, variable time.
type DoubleBase = fn(&Scalar, &EdwardsPoint, &Scalar) -> EdwardsPoint;

#[cfg(not(feature = "small-stack"))]
const DOUBLE_BASE: DoubleBase = EdwardsPoint::vartime_double_scalar_mul_basepoint;
#[cfg(feature = "small-stack")]
const DOUBLE_BASE: DoubleBase = crate::straus::double_base;

/// Verifies `signature` by `key` over the concatenation of `parts`, with
/// the criteria of `ed25519_dalek::VerifyingKey::verify_strict`.
///
/// # Errors
/// [`Error::BadSignature`] for a non-canonical S, a small-order or invalid
/// R, or a signature that does not match.
pub fn verify_parts(
    key: &PublicKey,
    parts: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), Error> {
    verify_parts_with(DOUBLE_BASE, key, parts, signature)
}

fn verify_parts_with(
    double_base: DoubleBase,
    key: &PublicKey,
    parts: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), Error> {
    let (Some(r_bytes), Some(s_bytes)) =
        (signature.first_chunk::<32>(), signature.last_chunk::<32>())
    else {
        return Err(Error::BadSignature);
    };
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*s_bytes))
        .ok_or(Error::BadSignature)?;
    let r = CompressedEdwardsY(*r_bytes)
        .decompress()
        .ok_or(Error::BadSignature)?;
    if r.is_small_order() {
        return Err(Error::BadSignature);
    }
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key.compressed);
    for part in parts {
        hash.update(part);
    }
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    // Projective comparison: no inversion to compress the recomputed R.
    if double_base(&k, &key.minus_a, &s) == r {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

    fn strict(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(pk)
            .map(|k| k.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
            .unwrap_or(false)
    }

    /// Both multiplications: curve25519-dalek's and the small-stack one.
    const MULTS: [(&str, DoubleBase); 2] = [
        ("dalek", EdwardsPoint::vartime_double_scalar_mul_basepoint),
        ("small-stack", crate::straus::double_base),
    ];

    fn ours(mul: DoubleBase, pk: &[u8; 32], parts: &[&[u8]], sig: &[u8; 64]) -> Result<(), Error> {
        PublicKey::from_bytes(pk).and_then(|key| verify_parts_with(mul, &key, parts, sig))
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
            let key = PublicKey::from_bytes(&pk).unwrap();
            assert_eq!(key.as_bytes(), &pk);
            assert_eq!(verify_parts(&key, &[&msg], &sig), Ok(()));
            for (name, mul) in MULTS {
                assert_eq!(ours(mul, &pk, &[&msg], &sig), Ok(()), "{name}");
                // Split anywhere: the stream gives the same answer.
                for cut in 0..=msg.len() {
                    let (a, b) = msg.split_at(cut);
                    assert_eq!(ours(mul, &pk, &[a, b], &sig), Ok(()), "{name}");
                }
                let mut bad = sig;
                bad[0] ^= 1;
                assert_eq!(ours(mul, &pk, &[&msg], &bad), Err(Error::BadSignature));
            }
        }
    }

    /// Every Wycheproof Ed25519 vector gives the result `verify_strict`
    /// gives, and every "valid" vector verifies.
    #[test]
    fn wycheproof_matches_verify_strict() {
        let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
        let mut total = 0;
        for group in &set.test_groups {
            let Some(pk) = arr::<32>(&group.key.pk) else {
                continue;
            };
            for test in &group.tests {
                total += 1;
                let ours = match arr::<64>(&test.sig) {
                    Some(sig) => {
                        let [a, b] = MULTS.map(|(_, mul)| ours(mul, &pk, &[&test.msg], &sig));
                        assert_eq!(a, b, "tc {}: multiplications disagree", test.tc_id);
                        a.is_ok()
                    }
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
        assert_eq!(PublicKey::from_bytes(&identity), Err(Error::BadSignature));
        let key = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        for (_, mul) in MULTS {
            assert_eq!(ours(mul, &key, &[b"x"], &sig), Err(Error::BadSignature));
        }
    }

    /// Random keys, messages and tampered signatures: the same answer as
    /// `verify_strict`, with both multiplications.
    #[test]
    fn random_forgeries_match_verify_strict() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
        let strategy = (
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..300),
            0usize..64,
            any::<u8>(),
        );
        runner
            .run(&strategy, |(seed, msg, at, flip)| {
                let signing = SigningKey::from_bytes(&seed);
                let pk = signing.verifying_key().to_bytes();
                let good = signing.sign(&msg).to_bytes();
                let mut bad = good;
                bad[at] ^= flip;
                for sig in [good, bad] {
                    let theirs = strict(&pk, &msg, &sig);
                    for (name, mul) in MULTS {
                        prop_assert_eq!(ours(mul, &pk, &[&msg], &sig).is_ok(), theirs, "{}", name);
                    }
                }
                prop_assert!(strict(&pk, &msg, &good));
                Ok(())
            })
            .unwrap();
    }
}
