//! Strict decoding of arbitrary bytes, without the signature: reaches every
//! claim parser. Whatever decodes must re-encode to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_verifier::{cose, decode_license_unverified, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(license) = decode_license_unverified(data) {
        // Touch every lazy collection.
        let e = license.entitlements();
        let _ = (e.profiles.count(), e.features.count(), license.services().count());
        for base in e.bases {
            let _ = base.addons.count();
        }
        let _ = license.binding().components.count();
        let payload = encode::encode_license_payload(&license.to_data()).expect("decoded content re-encodes");
        let sign1 = cose::parse(data).expect("parsed once already");
        assert_eq!(payload, sign1.payload, "decode then encode must give the same bytes");
    }
});
