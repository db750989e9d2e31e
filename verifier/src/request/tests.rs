#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use core::cell::Cell;

use ed25519_dalek::{Signer as _, SigningKey};

use super::*;
use crate::{decode_request, Error};

const SEED: [u8; 32] = [7; 32];
/// A serial at its cap, 64 bytes.
const SERIAL_64: &str = "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS";

fn device_key() -> [u8; 32] {
    SigningKey::from_bytes(&SEED).verifying_key().to_bytes()
}

fn identity(n: u8) -> Identity {
    Identity {
        kind: ComponentKind(n % 8 + 1),
        digest: [n; claims::DIGEST_LEN],
    }
}

fn fields(identity: &[Identity]) -> RequestFields<'_> {
    RequestFields {
        serial: Some("SW-2026-000123"),
        hw_serial: None,
        created_at: 1_767_225_600,
        nonce: [9; ID_LEN],
        platform: Platform::Vm,
        salt: [5; SALT_LEN],
        identity,
        current: Some(([3; ID_LEN], 4)),
        last_renewal: Some(1_767_000_000),
        device_key: device_key(),
    }
}

fn dalek(m: &[u8]) -> Result<[u8; SIGNATURE_LEN], Infallible> {
    Ok(SigningKey::from_bytes(&SEED).sign(m).to_bytes())
}

#[test]
fn signed_request_decodes_to_what_was_given() {
    // Given out of order: encoded sorted.
    let ids = [identity(5), identity(2), identity(3)];
    let f = fields(&ids);
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let bytes = sign(&f, &mut buf, dalek).unwrap();
    let r = decode_request(bytes).unwrap();
    assert_eq!(r.serial(), f.serial);
    assert_eq!(r.hw_serial(), None);
    assert_eq!(r.created_at(), f.created_at);
    assert_eq!(r.nonce(), f.nonce);
    assert_eq!(r.platform(), f.platform);
    assert_eq!(r.salt(), f.salt);
    let mut sorted = ids;
    sorted.sort();
    assert!(r.identity().eq(sorted));
    assert_eq!(r.current(), f.current);
    assert_eq!(r.last_renewal(), f.last_renewal);
    assert_eq!(r.device_key(), f.device_key);
    // The seed path signs the same bytes (Ed25519 is deterministic).
    let mut again = [0u8; MAX_REQUEST_LEN];
    assert_eq!(sign_with_seed(&f, &SEED, &mut again).unwrap(), bytes);
}

#[test]
fn the_signer_sees_the_sig_structure_once() {
    let ids = [identity(1)];
    let f = fields(&ids);
    let calls = Cell::new(0);
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let bytes = sign(&f, &mut buf, |m| {
        calls.set(calls.get() + 1);
        // ["Signature1", protected, h'', payload]
        assert_eq!(&m[..12], b"\x84\x6aSignature1");
        dalek(m)
    })
    .unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(bytes[0], 0xd2);
    assert!(decode_request(bytes).is_ok());
}

#[test]
fn a_buffer_too_small_is_refused_before_signing() {
    let ids = [identity(1), identity(2)];
    let f = fields(&ids);
    let mut big = [0u8; MAX_REQUEST_LEN];
    let signed = sign(&f, &mut big, dalek).unwrap().to_vec();
    // The Sig_structure's prefix is 10 bytes longer than the COSE_Sign1's,
    // and the request is written after those 10 bytes.
    let len = signed.len() + 10;
    for short in [0, 1, len / 2, len - 1] {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let signed = Cell::new(false);
        let err = sign(&f, &mut buf[..short], |m| {
            signed.set(true);
            dalek(m)
        })
        .unwrap_err();
        assert_eq!(err, EncodeError::Buffer { needed: len });
        assert!(!signed.get());
        assert!(buf.iter().all(|&b| b == 0), "nothing written");
    }
    let mut exact = [0u8; MAX_REQUEST_LEN];
    assert_eq!(sign(&f, &mut exact[..len], dalek).unwrap(), &signed[..]);
}

#[test]
fn a_request_at_every_cap_fits_the_buffer() {
    let ids: [Identity; limits::COMPONENTS] = core::array::from_fn(|i| identity(i as u8));
    let serial = SERIAL_64;
    let mut f = fields(&ids);
    f.serial = Some(serial);
    f.hw_serial = Some(serial);
    f.created_at = i64::MIN;
    f.last_renewal = Some(i64::MAX);
    f.current = Some(([0xff; ID_LEN], u32::MAX));
    let mut buf = [0u8; MAX_REQUEST_LEN];
    let bytes = sign(&f, &mut buf, dalek).unwrap();
    assert!(decode_request(bytes).is_ok());
    // The margin the constant promises (over the 10 bytes of room the
    // Sig_structure takes more).
    assert!(bytes.len() + 10 + 64 <= MAX_REQUEST_LEN, "{}", bytes.len());
}

#[test]
fn contents_that_break_a_rule_are_refused_before_signing() {
    let one = [identity(1)];
    let seventeen: [Identity; limits::COMPONENTS + 1] = core::array::from_fn(|i| identity(i as u8));
    let twice = [identity(1), identity(1)];
    let long = "SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS";
    assert_eq!((SERIAL_64.len(), long.len()), (64, 65));
    let cases: [(RequestFields<'_>, Malformed); 6] = [
        (fields(&[]), Malformed::MissingField),
        (fields(&seventeen), Malformed::TooManyItems),
        (fields(&twice), Malformed::DuplicateKey),
        (
            RequestFields {
                serial: Some(long),
                ..fields(&one)
            },
            Malformed::BadLength,
        ),
        (
            RequestFields {
                serial: None,
                ..fields(&one)
            },
            Malformed::MissingField,
        ),
        (
            RequestFields {
                serial: Some(""),
                ..fields(&one)
            },
            Malformed::BadValue,
        ),
    ];
    for (f, reason) in cases {
        let mut buf = [0u8; MAX_REQUEST_LEN];
        let err = sign(&f, &mut buf, |_| -> Result<_, Infallible> {
            panic!("must not sign")
        })
        .unwrap_err();
        assert_eq!(err, EncodeError::Invalid(reason), "{f:?}");
    }
}

#[test]
fn signer_errors_and_wrong_keys_are_reported() {
    let ids = [identity(1)];
    let f = fields(&ids);
    let mut buf = [0u8; MAX_REQUEST_LEN];
    assert_eq!(
        sign(&f, &mut buf, |_| Err("secure element busy")),
        Err(EncodeError::Sign("secure element busy"))
    );
    assert_eq!(
        sign_with_seed(&f, &[8; 32], &mut buf),
        Err(EncodeError::WrongKey)
    );
    // A signer holding another key: the request does not verify.
    let other = SigningKey::from_bytes(&[8; 32]);
    let bytes = sign(&f, &mut buf, |m| {
        Ok::<_, Infallible>(other.sign(m).to_bytes())
    })
    .unwrap();
    assert_eq!(decode_request(bytes).unwrap_err(), Error::BadSignature);
}

/// The field checks refuse exactly what decoding refuses, with its
/// reason: random fields, valid or not, through both.
#[cfg(feature = "alloc")]
#[test]
fn field_checks_are_the_decoders_rules() {
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use crate::encode::{encode_request_payload, RequestData};

    let text = || proptest::option::of("[a-z]{0,66}");
    let strategy = (
        text(),
        text(),
        proptest::collection::vec((1u8..4, 0u8..3), 0..=18),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(512));
    runner
        .run(&strategy, |(serial, hw, ids)| {
            let data = RequestData {
                serial,
                hw_serial: hw,
                created_at: 0,
                nonce: [0; 16],
                platform: Platform::Hw,
                salt: [0; 16],
                identity: ids
                    .into_iter()
                    .map(|(k, d)| Identity {
                        kind: ComponentKind(k),
                        digest: [d; claims::DIGEST_LEN],
                    })
                    .collect::<Vec<_>>(),
                current: None,
                last_renewal: None,
                device_key: device_key(),
            };
            let decoder = encode_request_payload(&data).map(|_| ());
            prop_assert_eq!(data.fields().check(), decoder, "{:?}", data);
            Ok(())
        })
        .unwrap();
}

/// The encoder without a heap writes the bytes of the one with a heap,
/// for any content: random serials, identities, optional fields.
#[cfg(feature = "alloc")]
#[test]
fn byte_identical_to_the_alloc_encoder() {
    extern crate std;
    use alloc::string::String;
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use crate::encode::{sign_request, RequestData};
    use crate::samples::seed_signer;

    let text = || proptest::option::of("[ -~]{1,64}");
    let strategy = (
        (text(), text(), any::<i64>(), any::<[u8; 16]>(), 0u8..3),
        (
            any::<[u8; 16]>(),
            proptest::collection::btree_set((1u8..10, any::<[u8; 16]>()), 1..=16),
            proptest::option::of((any::<[u8; 16]>(), any::<u32>())),
            proptest::option::of(any::<i64>()),
            any::<[u8; 32]>(),
        ),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(
            &strategy,
            |((serial, hw, created_at, nonce, platform), (salt, ids, current, last, seed))| {
                let serial: Option<String> = serial;
                let hw: Option<String> = hw;
                let data = RequestData {
                    serial: serial.clone(),
                    // At least one serial: else both refuse (tested above).
                    hw_serial: if serial.is_none() && hw.is_none() {
                        Some("HW-1".into())
                    } else {
                        hw
                    },
                    created_at,
                    nonce,
                    platform: Platform::from_code(platform).unwrap(),
                    salt,
                    identity: ids
                        .into_iter()
                        .map(|(k, d)| Identity {
                            kind: ComponentKind(k),
                            digest: d,
                        })
                        .rev()
                        .collect::<Vec<_>>(),
                    current,
                    last_renewal: last,
                    device_key: SigningKey::from_bytes(&seed).verifying_key().to_bytes(),
                };
                let with_heap = sign_request(&data, seed_signer(seed)).unwrap();
                let mut buf = [0u8; MAX_REQUEST_LEN];
                let without = sign(&data.fields(), &mut buf, seed_signer(seed)).unwrap();
                prop_assert_eq!(without, &with_heap[..]);
                let mut again = [0u8; MAX_REQUEST_LEN];
                let seeded = sign_with_seed(&data.fields(), &seed, &mut again).unwrap();
                prop_assert_eq!(seeded, &with_heap[..]);
                prop_assert_eq!(
                    decode_request(without).unwrap().to_data().sorted(),
                    data.sorted()
                );
                Ok(())
            },
        )
        .unwrap();
}
