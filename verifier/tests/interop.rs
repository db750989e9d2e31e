//! A standard COSE library verifies our licenses (FORMAT.md §3.5): `coset`
//! parses every valid license vector as a tagged COSE_Sign1 and its payload
//! as a CWT claims set, and the signature checks over coset's own
//! Sig_structure. No custom framing is involved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use coset::cwt::{ClaimName, ClaimsSet, Timestamp};
use coset::{iana, CborSerializable, CoseSign1, TaggedCborSerializable};
use ed25519_dalek::{Signature, VerifyingKey};
use tessera_verifier::{decode_license, samples, KeyEntry};

fn vectors() -> Vec<(String, Vec<u8>, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("licenses.json")).unwrap()).unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                hex::decode(v["cbor"].as_str().unwrap()).unwrap(),
                v["expected"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn coset_verifies_every_valid_license() {
    let key = VerifyingKey::from_bytes(&samples::TEST_KEY_1_PUBLIC).unwrap();
    let ring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0)];
    let mut checked = 0;
    for (name, bytes, expected) in vectors() {
        if expected != "ok" {
            continue;
        }
        let sign1 =
            CoseSign1::from_tagged_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let alg = sign1.protected.header.alg.clone().unwrap();
        assert!(
            alg == coset::Algorithm::Assigned(iana::Algorithm::EdDSA)
                || alg == coset::Algorithm::Assigned(iana::Algorithm::Ed25519),
            "{name}: alg {alg:?}"
        );
        assert_eq!(sign1.protected.header.key_id.len(), 8, "{name}");
        assert!(sign1.unprotected.is_empty(), "{name}");
        sign1
            .verify_signature(b"", |sig, data| {
                key.verify_strict(data, &Signature::from_slice(sig).unwrap())
            })
            .unwrap_or_else(|e| panic!("{name}: coset's Sig_structure does not verify: {e}"));

        // The payload is a standard CWT claims set with our private claim.
        let claims = ClaimsSet::from_slice(sign1.payload.as_ref().unwrap()).unwrap();
        let ours = decode_license(&bytes, &ring).unwrap();
        assert_eq!(claims.subject.as_deref(), Some(ours.serial()), "{name}");
        assert_eq!(claims.issuer.as_deref(), Some(ours.issuer()), "{name}");
        assert_eq!(
            claims.expiration_time,
            Some(Timestamp::WholeSeconds(ours.lease_end())),
            "{name}"
        );
        assert_eq!(claims.cwt_id.as_deref(), Some(&ours.id()[..]), "{name}");
        assert!(
            claims
                .rest
                .iter()
                .any(|(k, _)| *k == ClaimName::PrivateUse(tessera_verifier::claims::PRIVATE_CLAIM)),
            "{name}: private claim"
        );
        checked += 1;
    }
    assert!(checked >= 5);
}

#[test]
fn coset_refuses_what_signature_checks_refuse() {
    let key = VerifyingKey::from_bytes(&samples::TEST_KEY_1_PUBLIC).unwrap();
    for (name, bytes, expected) in vectors() {
        if expected != "bad_signature" {
            continue;
        }
        let Ok(sign1) = CoseSign1::from_tagged_slice(&bytes) else {
            continue;
        };
        let ok = sign1.verify_signature(b"", |sig, data| {
            Signature::from_slice(sig).and_then(|s| key.verify_strict(data, &s))
        });
        assert!(ok.is_err(), "{name}: coset + verify_strict accepted it");
    }
}
