//! Armor decoding of arbitrary text, then the full license and request path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_verifier::{armor, decode_license, decode_request, samples, KeyEntry, MAX_OBJECT_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let keyring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0)];
    let mut buf = [0u8; MAX_OBJECT_LEN];
    if let Ok(bytes) = armor::decode(text, armor::LABEL_LICENSE, &mut buf) {
        let _ = decode_license(bytes, &keyring);
    }
    if let Ok(bytes) = armor::decode(text, armor::LABEL_REQUEST, &mut buf) {
        let _ = decode_request(bytes);
    }
});
