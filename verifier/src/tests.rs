//! Cross-module tests of the decoder: round trips, sizes, hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use alloc::vec::Vec;

use crate::encode::{sign_license, sign_request, LicenseData};
use crate::samples::{self, seed_signer, T0, TEST_KEY_1_PUBLIC, TEST_KEY_1_SEED};
use crate::{armor, decode_license, decode_request, key_id, Error, KeyEntry, Malformed};

fn keyring() -> [KeyEntry; 1] {
    [KeyEntry::new(TEST_KEY_1_PUBLIC, T0 - 365 * samples::DAY)]
}

fn sign(l: &LicenseData) -> Vec<u8> {
    sign_license(l, &key_id(&TEST_KEY_1_PUBLIC), seed_signer(TEST_KEY_1_SEED)).unwrap()
}

fn all_samples() -> [LicenseData; 5] {
    [
        samples::minimal(),
        samples::typical(),
        samples::maximal(),
        samples::sharing_client(),
        samples::lifetime_vm(),
    ]
}

#[test]
fn encode_decode_round_trip() {
    for data in all_samples() {
        let bytes = sign(&data);
        let license = decode_license(&bytes, &keyring()).unwrap();
        assert_eq!(license.to_data().sorted(), data.sorted());
        // Decode then encode gives the same bytes.
        assert_eq!(sign(&license.to_data()), bytes);
    }
}

#[test]
fn typical_license_is_small() {
    let typical = sign(&samples::typical());
    assert!(
        typical.len() <= 512,
        "typical license is {} bytes",
        typical.len()
    );
    let maximal = sign(&samples::maximal());
    assert!(
        maximal.len() <= crate::MAX_OBJECT_LEN,
        "maximal is {} bytes",
        maximal.len()
    );
    std::println!(
        "typical {} bytes, maximal {} bytes",
        typical.len(),
        maximal.len()
    );
}

#[test]
fn armor_round_trip() {
    let bytes = sign(&samples::typical());
    let text = armor::encode(&bytes, armor::LABEL_LICENSE);
    let mut buf = [0u8; crate::MAX_OBJECT_LEN];
    assert_eq!(
        armor::decode(&text, armor::LABEL_LICENSE, &mut buf).unwrap(),
        &bytes[..]
    );
}

#[test]
fn request_round_trip_and_type_separation() {
    let data = samples::request();
    let bytes = sign_request(&data, seed_signer(samples::DEVICE_KEY_SEED)).unwrap();
    let request = decode_request(&bytes).unwrap();
    assert_eq!(request.to_data().sorted(), data.sorted());
    // A request is not a license, and a license is not a request.
    assert_eq!(
        decode_license(&bytes, &keyring()).unwrap_err(),
        Error::WrongType
    );
    let license = sign(&samples::typical());
    assert_eq!(decode_request(&license).unwrap_err(), Error::WrongType);
    // Signed by another key than the one it carries.
    let forged = sign_request(&data, seed_signer([8; 32])).unwrap();
    assert_eq!(decode_request(&forged).unwrap_err(), Error::BadSignature);
}

#[test]
fn checkpoint_round_trip_window_and_type_separation() {
    use crate::encode::{encode_checkpoint_payload, sign_checkpoint};
    use crate::{decode_checkpoint, decode_checkpoint_unverified};
    let data = samples::checkpoint();
    let kid = key_id(&TEST_KEY_1_PUBLIC);
    let bytes = sign_checkpoint(&data, &kid, seed_signer(TEST_KEY_1_SEED)).unwrap();
    // The size spec/FORMAT.md §10.2 states.
    assert_eq!(bytes.len(), 196);
    let checkpoint = decode_checkpoint(&bytes, &keyring()).unwrap();
    assert_eq!(checkpoint.to_data(), data);
    assert_eq!(checkpoint.kid(), kid);
    assert_eq!(decode_checkpoint_unverified(&bytes).unwrap(), checkpoint);
    // Decode then encode gives the same bytes.
    assert_eq!(
        sign_checkpoint(&checkpoint.to_data(), &kid, seed_signer(TEST_KEY_1_SEED)).unwrap(),
        bytes
    );
    // A checkpoint is neither a license nor a request, and neither of them
    // is a checkpoint, although all three are signed the same way.
    assert_eq!(
        decode_license(&bytes, &keyring()).unwrap_err(),
        Error::WrongType
    );
    assert_eq!(decode_request(&bytes).unwrap_err(), Error::WrongType);
    let license = sign(&samples::typical());
    assert_eq!(
        decode_checkpoint(&license, &keyring()).unwrap_err(),
        Error::WrongType
    );
    // Signed before the key's window opened.
    let mut early = data.clone();
    early.issued_at = T0 - 400 * samples::DAY;
    let early = sign_checkpoint(&early, &kid, seed_signer(TEST_KEY_1_SEED)).unwrap();
    assert_eq!(
        decode_checkpoint(&early, &keyring()).unwrap_err(),
        Error::KeyNotValidAt
    );
    // The encoder refuses what the decoder refuses.
    let mut empty = data.clone();
    empty.entries = 0;
    assert_eq!(
        encode_checkpoint_payload(&empty).unwrap_err(),
        Malformed::BadValue
    );
    // The checkpoint it follows covered at least one entry, and fewer.
    for previous in [0, data.entries, data.entries + 1] {
        let mut bad = data.clone();
        bad.previous = Some(previous);
        assert_eq!(
            encode_checkpoint_payload(&bad).unwrap_err(),
            Malformed::BadValue,
            "{previous}"
        );
    }
    // A ledger's first checkpoint follows none.
    let mut first = data.clone();
    first.previous = None;
    let first = sign_checkpoint(&first, &kid, seed_signer(TEST_KEY_1_SEED)).unwrap();
    assert_eq!(
        decode_checkpoint(&first, &keyring()).unwrap().previous(),
        None
    );
    assert_eq!(checkpoint.previous(), Some(40));
    // Every truncation and every single-bit flip is refused.
    for n in 0..bytes.len() {
        assert!(decode_checkpoint(&bytes[..n], &keyring()).is_err(), "{n}");
    }
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(decode_checkpoint(&b, &keyring()).is_err(), "bit {bit}");
    }
}

#[test]
fn encoder_refuses_what_decoder_refuses() {
    let mut l = samples::typical();
    l.binding.threshold = 5;
    assert_eq!(
        crate::encode::encode_license_payload(&l).unwrap_err(),
        Malformed::BadValue
    );
    let mut l = samples::typical();
    let dup = l.entitlements.profiles[0];
    l.entitlements.profiles.push(dup);
    assert_eq!(
        crate::encode::encode_license_payload(&l).unwrap_err(),
        Malformed::DuplicateKey
    );
}

/// Every single-bit flip, every truncation and appended trailing bytes of
/// every sample license are refused (exhaustive, not sampled).
#[test]
fn every_bit_flip_and_truncation_is_rejected() {
    let ring = keyring();
    for data in all_samples() {
        let bytes = sign(&data);
        let mut copy = bytes.clone();
        for i in 0..copy.len() {
            for bit in 0..8 {
                copy[i] ^= 1 << bit;
                assert!(
                    decode_license(&copy, &ring).is_err(),
                    "flip byte {i} bit {bit} accepted"
                );
                copy[i] ^= 1 << bit;
            }
        }
        for len in 0..bytes.len() {
            assert!(
                decode_license(&bytes[..len], &ring).is_err(),
                "truncation to {len} accepted"
            );
        }
        for extra in [&[0u8][..], &[0xff], &[0, 0, 0, 0], &[0xa0]] {
            let mut longer = bytes.clone();
            longer.extend_from_slice(extra);
            assert_eq!(
                decode_license(&longer, &ring).unwrap_err(),
                Error::Malformed(Malformed::TrailingBytes)
            );
        }
    }
}

mod properties {
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::string::String;
    use alloc::vec::Vec;

    use proptest::collection::{btree_map, btree_set, vec};
    use proptest::option;
    use proptest::prelude::*;

    use super::{keyring, sign};
    use crate::claims::{
        Addon, AfterGrace, Component, ComponentKind, Cycle, Feature, FeatureCategory, Platform,
        Policy, Profile, Service, Term,
    };
    use crate::encode::{BaseData, BindingData, EntitlementsData, LicenseData, SharingData};
    use crate::{cose, decode_license, decode_license_unverified};

    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&alloc::format!("[a-zA-Z0-9 äöü€-]{{0,{}}}", max / 3))
            .unwrap()
    }

    fn serial() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[A-Z0-9-]{1,64}").unwrap()
    }

    fn components() -> impl Strategy<Value = (u8, Vec<Component>)> {
        btree_set((any::<u8>(), any::<[u8; 16]>()), 1..=16)
            .prop_flat_map(|set: BTreeSet<(u8, [u8; 16])>| {
                let n = set.len();
                (1..=n as u8, vec(any::<bool>(), n), Just(set))
            })
            .prop_map(|(k, required, set)| {
                let comps = set
                    .into_iter()
                    .zip(required)
                    .map(|((kind, digest), required)| Component {
                        kind: ComponentKind(kind),
                        digest,
                        required,
                    })
                    .collect();
                (k, comps)
            })
    }

    fn entitlements() -> impl Strategy<Value = EntitlementsData> {
        (
            btree_map(any::<u16>(), any::<u32>(), 0..=32),
            btree_map(any::<u16>(), (0u8..3, any::<u32>(), any::<bool>()), 0..=64),
            btree_map(
                any::<u16>(),
                (any::<u32>(), btree_map(any::<u16>(), any::<u32>(), 0..=8)),
                0..=6,
            ),
            any::<u32>(),
        )
            .prop_map(|(p, f, b, storage_units)| EntitlementsData {
                profiles: p
                    .into_iter()
                    .map(|(code, count)| Profile { code, count })
                    .collect(),
                features: f
                    .into_iter()
                    .map(|(code, (cat, quantity, hidden))| Feature {
                        code,
                        category: FeatureCategory::from_code(cat).unwrap(),
                        quantity,
                        hidden,
                    })
                    .collect(),
                bases: b
                    .into_iter()
                    .map(
                        |(code, (count, addons)): (u16, (u32, BTreeMap<u16, u32>))| BaseData {
                            code,
                            count,
                            addons: addons
                                .into_iter()
                                .map(|(code, count)| Addon { code, count })
                                .collect(),
                        },
                    )
                    .collect(),
                storage_units,
            })
    }

    prop_compose! {
        fn license()(
            issuer in text(64), serial in serial(), t in 0i64..(1 << 33),
            nbf_back in 0i64..1_000_000, iat_back in 0i64..1_000_000, lease in 0i64..100_000_000,
            id in any::<[u8; 16]>(), platform in 0u8..3, sequence in any::<u32>(),
            (threshold, comps) in components(), salt in any::<[u8; 16]>(),
            previous in option::of(serial()), cycle in 0u8..4, term_len in 1i64..200_000_000,
            grace in any::<u32>(), after in 0u8..2, window in any::<u32>(), interval in 1u32..,
            tolerance in any::<u32>(), ents in entitlements(),
            svc in btree_map(any::<u16>(), (0i64..1000, 0i64..1000), 0..=16),
            sharing in 0u8..3, server in serial(), customer in text(128), pbx in text(64),
        ) -> LicenseData {
            let cycle = Cycle::from_code(cycle).unwrap();
            let end = (cycle != Cycle::Lifetime).then_some(t + term_len);
            let services = match end {
                Some(end) => svc.into_iter().map(|(code, (a, b))| {
                    let start = (t + a).min(end);
                    Service { code, start, end: (start + b).min(end) }
                }).collect(),
                None => Vec::new(),
            };
            let (sharing, entitlements) = match sharing {
                0 => (SharingData::None, ents),
                1 => (SharingData::Server, ents),
                _ => (SharingData::Client(server), EntitlementsData::default()),
            };
            LicenseData {
                issuer, serial, issued_at: t - iat_back, not_before: t - nbf_back, lease_end: t + lease, id,
                platform: Platform::from_code(platform).unwrap(), sequence,
                binding: BindingData { threshold, salt, components: comps },
                previous_serial: previous,
                term: Term { cycle, start: t, end },
                policy: Policy { grace, after_grace: AfterGrace::from_code(after).unwrap(), renewal_window: window, check_interval: interval, rollback_tolerance: tolerance },
                entitlements, services, sharing, customer, pbx_name: pbx,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Encoding then decoding gives the same value; decoding then
        /// encoding gives the same bytes.
        #[test]
        fn encode_decode_round_trip(data in license()) {
            let bytes = sign(&data);
            let decoded = decode_license_unverified(&bytes).unwrap();
            prop_assert_eq!(decoded.to_data().sorted(), data.sorted());
            let again = crate::encode::encode_license_payload(&decoded.to_data()).unwrap();
            prop_assert_eq!(again.as_slice(), cose::parse(&bytes).unwrap().payload);
            // With iat inside the key's window it also verifies.
            if data.issued_at >= super::T0 - 365 * crate::samples::DAY {
                prop_assert!(decode_license(&bytes, &keyring()).is_ok());
            }
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_are_refused_without_panic(bytes in vec(any::<u8>(), 0..600)) {
            let _ = decode_license(&bytes, &keyring());
            let _ = crate::decode_request(&bytes);
        }

        /// Random multi-byte corruption of a valid license is refused.
        #[test]
        fn corrupted_typical_is_refused(edits in btree_map(0usize..495, 1u8..=255, 1..8)) {
            let mut bytes = sign(&crate::samples::typical());
            // Distinct positions, non-zero masks: the bytes really change.
            for (at, x) in edits {
                bytes[at] ^= x;
            }
            prop_assert!(decode_license(&bytes, &keyring()).is_err());
        }
    }
}
