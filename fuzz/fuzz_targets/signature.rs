//! The verifier's Ed25519 check against ed25519-dalek's `verify_strict`, on
//! arbitrary keys, signatures and messages: the same answer, always. The
//! fuzz crate builds the verifier with `small-stack`, so this is the lean
//! arithmetic of `verifier/src/curve.rs` that firmware runs.
#![no_main]

use ed25519_dalek::{Signature, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use tessera_verifier::signature::{verify_parts, PublicKey};

fuzz_target!(|data: &[u8]| {
    let (Some(key), Some(rest)) = (data.first_chunk::<32>(), data.get(32..)) else {
        return;
    };
    let (Some(signature), Some(message)) = (rest.first_chunk::<64>(), rest.get(64..)) else {
        return;
    };
    let dalek = VerifyingKey::from_bytes(key)
        .and_then(|k| k.verify_strict(message, &Signature::from_bytes(signature)))
        .is_ok();
    let ours = PublicKey::from_bytes(key).and_then(|k| {
        // The message in two parts, as a Sig_structure is streamed.
        let (a, b) = message.split_at(message.len() / 2);
        verify_parts(&k, &[a, b], signature)
    });
    assert_eq!(ours.is_ok(), dalek, "key {key:02x?} signature {signature:02x?}");
});
