//! Requests written without a heap, from arbitrary fields: what
//! `request::sign` refuses, the heap encoder refuses for the same reason;
//! what it writes decodes to the fields given, is the heap encoder's bytes,
//! and armors into a caller buffer and back.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_verifier::claims::{ComponentKind, Identity, Platform};
use tessera_verifier::encode::{encode_request_payload, sign_request, RequestData};
use tessera_verifier::request::{sign_with_seed, EncodeError, MAX_REQUEST_LEN};
use tessera_verifier::samples::{seed_signer, DEVICE_KEY_SEED};
use tessera_verifier::{armor, decode_request};

fn text(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    if !u.arbitrary::<bool>()? {
        return Ok(None);
    }
    let len = u.int_in_range(0..=80usize)?;
    let bytes = u.bytes(len)?;
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn fields(u: &mut Unstructured<'_>, device_key: [u8; 32]) -> Result<RequestData> {
    let count = u.int_in_range(0..=18usize)?;
    let mut identity = Vec::with_capacity(count);
    for _ in 0..count {
        identity.push(Identity {
            kind: ComponentKind(u.arbitrary()?),
            digest: u.arbitrary()?,
        });
    }
    Ok(RequestData {
        serial: text(u)?,
        hw_serial: text(u)?,
        created_at: u.arbitrary()?,
        nonce: u.arbitrary()?,
        platform: Platform::from_code(u.int_in_range(0..=3)?).unwrap_or(Platform::Hw),
        salt: u.arbitrary()?,
        identity,
        current: u.arbitrary()?,
        last_renewal: u.arbitrary()?,
        device_key,
    })
}

fuzz_target!(|data: &[u8]| {
    let device_key = ed25519_dalek::SigningKey::from_bytes(&DEVICE_KEY_SEED)
        .verifying_key()
        .to_bytes();
    let Ok(r) = fields(&mut Unstructured::new(data), device_key) else {
        return;
    };
    let mut buf = [0u8; MAX_REQUEST_LEN];
    match sign_with_seed(&r.fields(), &DEVICE_KEY_SEED, &mut buf) {
        Ok(request) => {
            let with_heap = sign_request(&r, seed_signer(DEVICE_KEY_SEED)).expect("heap encoder");
            assert_eq!(request, &with_heap[..], "bytes differ from the heap encoder");
            let decoded = decode_request(request).expect("a written request decodes");
            assert_eq!(decoded.to_data().sorted(), r.sorted());
            let mut text = [0u8; armor::encoded_len(MAX_REQUEST_LEN, armor::LABEL_REQUEST)];
            let text = armor::encode_into(request, armor::LABEL_REQUEST, &mut text).expect("armor");
            let mut back = [0u8; MAX_REQUEST_LEN];
            let back = armor::decode(text, armor::LABEL_REQUEST, &mut back).expect("armor back");
            assert_eq!(back, request);
        }
        Err(EncodeError::Invalid(reason)) => {
            assert_eq!(encode_request_payload(&r), Err(reason), "refused for another reason");
        }
        Err(e) => panic!("unexpected: {e}"),
    }
});
