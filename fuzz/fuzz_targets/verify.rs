//! Full signature-checked decoding of licenses and requests from raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_verifier::{decode_license, decode_request, samples, KeyEntry};

fuzz_target!(|data: &[u8]| {
    let mut retired = KeyEntry::new(samples::TEST_KEY_2_PUBLIC, 0);
    retired.retired = true;
    let keyring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0), retired];
    let _ = decode_license(data, &keyring);
    let _ = decode_request(data);
});
