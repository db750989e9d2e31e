//! Strict decoding of arbitrary bytes, without the signature: reaches every
//! claim parser (licenses and ledger checkpoints). Whatever decodes must
//! re-encode to a payload with the same content, and to the very same bytes
//! unless the input carried fields this version skips (forward
//! compatibility, FORMAT.md §5.4).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_verifier::{cose, decode_checkpoint_unverified, decode_license_unverified, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = decode_checkpoint_unverified(data) {
        let content = checkpoint.to_data();
        let again = encode::sign_checkpoint(&content, &checkpoint.kid(), |_| {
            Ok::<_, core::convert::Infallible>([0u8; 64])
        })
        .expect("decoded checkpoint re-encodes");
        let reread = decode_checkpoint_unverified(&again).expect("re-encoded checkpoint decodes");
        assert_eq!(reread.to_data(), content, "decode then encode keeps the content");
    }
    if let Ok(license) = decode_license_unverified(data) {
        // Touch every lazy collection.
        let e = license.entitlements();
        let _ = (e.profiles.count(), e.features.count(), license.services().count());
        for base in e.bases {
            let _ = base.addons.count();
        }
        let _ = license.binding().components.count();
        let content = license.to_data();
        let payload = encode::encode_license_payload(&content).expect("decoded content re-encodes");
        let sign1 = cose::parse(data).expect("parsed once already");
        if payload.len() == sign1.payload.len() {
            assert_eq!(payload, sign1.payload, "decode then encode must give the same bytes");
        }
        let again = tessera_verifier::encode::sign_license(&content, &sign1.kid, |_| {
            Ok::<_, core::convert::Infallible>([0u8; 64])
        })
        .expect("re-encodes");
        let reread = decode_license_unverified(&again).expect("re-encoded license decodes");
        assert_eq!(reread.to_data(), content, "decode then encode must keep the content");
    }
});
