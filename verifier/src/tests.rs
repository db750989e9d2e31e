//! Cross-module tests of the decoder: round trips, sizes, hostile input.

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
