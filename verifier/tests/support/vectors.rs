//! Builds every file of `spec/vectors/` from the published test keys and the
//! sample contents. Used by `examples/gen_vectors.rs` (writes the files) and
//! `tests/vectors.rs` (fails when the checked-in files differ).

use ciborium::value::Value;
use serde_json::{json, Value as Json};
use tessera_verifier::cbor::Writer;
use tessera_verifier::claims::{limits, Sharing};
use tessera_verifier::cose::{self, ObjectType};
use tessera_verifier::encode::{
    encode_checkpoint_payload, encode_license_payload, encode_request_payload, sign_checkpoint,
    sign_request, CheckpointData, LicenseData,
};
use tessera_verifier::samples::{self, seed_signer, DAY, T0};
use tessera_verifier::{
    armor, decode_checkpoint, decode_license, key_id, Checkpoint, KeyEntry, License,
};

/// RFC 8032 §7.1 TEST 3: a key whose validity window ended before T0.
pub const TEST_KEY_3_SEED: [u8; 32] =
    hex32("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");
/// A key that is in no keyring.
pub const UNTRUSTED_SEED: [u8; 32] = [0x42; 32];

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}

fn public(seed: [u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
}

/// The keyring every license vector is checked against.
pub fn keyring() -> Vec<KeyEntry> {
    let mut retired = KeyEntry::new(samples::TEST_KEY_2_PUBLIC, T0 - 730 * DAY);
    retired.retired = true;
    let mut ended = KeyEntry::new(public(TEST_KEY_3_SEED), T0 - 730 * DAY);
    ended.valid_until = Some(T0 - 365 * DAY);
    vec![
        KeyEntry::new(samples::TEST_KEY_1_PUBLIC, T0 - 365 * DAY),
        retired,
        ended,
    ]
}

fn sign_payload(payload: &[u8], seed: [u8; 32], typ: ObjectType) -> Vec<u8> {
    let kid = key_id(&public(seed));
    let Ok(bytes) = cose::encode::sign(&kid, typ, payload, seed_signer(seed));
    bytes
}

fn license(l: &LicenseData) -> Vec<u8> {
    sign_payload(
        &encode_license_payload(l).unwrap(),
        samples::TEST_KEY_1_SEED,
        ObjectType::License,
    )
}

fn to_value(bytes: &[u8]) -> Value {
    ciborium::from_reader(bytes).unwrap()
}

fn to_bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn entries(v: &mut Value) -> &mut Vec<(Value, Value)> {
    match v {
        Value::Map(m) => m,
        _ => panic!("not a map"),
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// The private claim map inside a payload value.
fn private(v: &mut Value) -> &mut Vec<(Value, Value)> {
    let entry = entries(v)
        .iter_mut()
        .find(|(k, _)| *k == int(-65537))
        .expect("private claim");
    entries(&mut entry.1)
}

fn set(map: &mut Vec<(Value, Value)>, key: i64, value: Value) {
    match map.iter_mut().find(|(k, _)| *k == int(key)) {
        Some(entry) => entry.1 = value,
        None => {
            map.push((int(key), value));
            map.sort_by_key(|a| to_bytes(&a.0));
        }
    }
}

fn remove(map: &mut Vec<(Value, Value)>, key: i64) {
    map.retain(|(k, _)| *k != int(key));
}

/// Replaces the encoding of the marker text `@N` by raw bytes, to write
/// what no well-behaved encoder would.
fn splice(bytes: Vec<u8>, marker: &str, raw: &[u8]) -> Vec<u8> {
    let enc = to_bytes(&Value::Text(marker.into()));
    let at = bytes
        .windows(enc.len())
        .position(|w| w == enc)
        .expect("marker");
    [&bytes[..at], raw, &bytes[at + enc.len()..]].concat()
}

/// A typical payload with `edit` applied, signed by test key 1.
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    edited_raw(edit, None)
}

fn edited_raw(edit: impl FnOnce(&mut Value), raw: Option<&[u8]>) -> Vec<u8> {
    let mut v = to_value(&encode_license_payload(&samples::typical()).unwrap());
    edit(&mut v);
    let mut payload = to_bytes(&v);
    if let Some(raw) = raw {
        payload = splice(payload, "@", raw);
    }
    sign_payload(&payload, samples::TEST_KEY_1_SEED, ObjectType::License)
}

/// A COSE_Sign1 assembled from explicit parts, signed over `protected` and
/// `payload` with test key 1 unless a signature is given.
fn envelope(protected: &[u8], unprotected: &[u8], payload: &[u8], tag: u64) -> Vec<u8> {
    let sig_structure = cose::encode::sig_structure(protected, payload);
    let Ok(sig) = seed_signer(samples::TEST_KEY_1_SEED)(&sig_structure);
    let mut w = Writer::new();
    w.tag(tag)
        .array(4)
        .bstr(protected)
        .raw(unprotected)
        .bstr(payload)
        .bstr(&sig);
    w.into_bytes()
}

fn protected_with(alg: i64, kid: Option<&[u8]>, typ: Option<&str>) -> Vec<u8> {
    let n = 1 + usize::from(kid.is_some()) + usize::from(typ.is_some());
    let mut w = Writer::new();
    w.map(n).int(1).int(alg);
    if let Some(kid) = kid {
        w.int(4).bstr(kid);
    }
    if let Some(typ) = typ {
        w.int(16).tstr(typ);
    }
    w.into_bytes()
}

struct Vector {
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    expected: &'static str,
}

fn v(
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    expected: &'static str,
) -> Vector {
    Vector {
        name,
        description,
        bytes,
        expected,
    }
}

fn license_vectors() -> Vec<Vector> {
    let typical = samples::typical();
    let typical_bytes = license(&typical);
    let payload = encode_license_payload(&typical).unwrap();
    let kid1 = key_id(&samples::TEST_KEY_1_PUBLIC);
    let good_protected = cose::encode::protected(&kid1, ObjectType::License);
    let empty_map = [0xa0];

    let mut out = vec![
        v("minimal", "smallest valid license: one component, no entitlements", license(&samples::minimal()), "ok"),
        v("typical", "typical PBX order: 6 profiles, 10 features, 2 base licenses with add-ons, 2 services, 4 binding components", typical_bytes.clone(), "ok"),
        v("maximal", "every string at its cap and collections well filled, under the 4 KiB cap", license(&samples::maximal()), "ok"),
        v("sharing-client", "sharing client: no entitlements, server serial only", license(&samples::sharing_client()), "ok"),
        v("lifetime-vm", "lifetime VM license, 72 h grace then locked, 3-hourly checks", license(&samples::lifetime_vm()), "ok"),
        v("alg-ed25519", "alg -19 (Ed25519) instead of -8 is accepted on input", envelope(&protected_with(-19, Some(&kid1), Some("tessera-license")), &empty_map, &payload, 18), "ok"),
        v("unknown-noncritical-key", "an unknown private key (40) not listed as critical is skipped", edited(|p| set(private(p), 40, Value::Array(vec![int(1), Value::Text("future".into())]))), "ok"),
        v("unknown-claim", "an unknown standard claim (aud, 3) is skipped", edited(|p| { entries(p).push((int(3), Value::Text("x".into()))); entries(p).sort_by_key(|a| to_bytes(&a.0)); }), "ok"),
        v("crit-known", "a critical-keys list naming only known keys", edited(|p| set(private(p), 1, Value::Array(vec![int(4), int(6)]))), "ok"),
        // Envelope.
        v("too-large", "4097 bytes: over the object cap", { let mut b = typical_bytes.clone(); b.resize(4097, 0); b }, "malformed.too_large"),
        v("truncated", "last byte missing", typical_bytes[..typical_bytes.len() - 1].to_vec(), "malformed.truncated"),
        v("trailing-bytes", "one byte after the COSE_Sign1", [&typical_bytes[..], &[0]].concat(), "malformed.trailing_bytes"),
        v("wrong-tag", "CWT tag 61 instead of COSE_Sign1 tag 18", envelope(&good_protected, &empty_map, &payload, 61), "malformed.not_sign1"),
        v("tag-cose-mac0", "COSE_Mac0 tag 17 instead of COSE_Sign1 tag 18", envelope(&good_protected, &empty_map, &payload, 17), "malformed.not_sign1"),
        v("tag-cose-sign", "COSE_Sign tag 98 (several signers) instead of COSE_Sign1 tag 18", envelope(&good_protected, &empty_map, &payload, 98), "malformed.not_sign1"),
        v("untagged", "COSE_Sign1 without its tag", typical_bytes[1..].to_vec(), "malformed.not_sign1"),
        v("array-of-3", "COSE array with 3 elements", { let mut b = typical_bytes.clone(); b[1] = 0x83; b }, "malformed.not_sign1"),
        v("indefinite-array", "indefinite-length COSE array", { let mut b = typical_bytes.clone(); b[1] = 0x9f; b.push(0xff); b }, "malformed.indefinite_length"),
        v("unprotected-not-empty", "a kid override in the unprotected header", envelope(&good_protected, &[0xa1, 0x04, 0x48, 0, 0, 0, 0, 0, 0, 0, 0], &payload, 18), "malformed.unprotected_header"),
        v("protected-crit", "the protected header marks label 300 critical (crit, label 2)", envelope(&{ let mut w = Writer::new(); w.map(5).int(1).int(-8).int(2).array(1).int(300).int(4).bstr(&kid1).int(16).tstr("tessera-license").int(300).int(1); w.into_bytes() }, &empty_map, &payload, 18), "malformed.unknown_critical_header"),
        v("alg-es256", "alg -7 (ES256)", envelope(&protected_with(-7, Some(&kid1), Some("tessera-license")), &empty_map, &payload, 18), "malformed.unsupported_algorithm"),
        v("typ-unknown", "typ names no tessera object", envelope(&protected_with(-8, Some(&kid1), Some("tessera-other")), &empty_map, &payload, 18), "malformed.bad_value"),
        v("typ-request", "a license payload presented with the request type", envelope(&protected_with(-8, Some(&kid1), Some("tessera-request")), &empty_map, &payload, 18), "wrong_type"),
        v("kid-missing", "protected header without kid", envelope(&protected_with(-8, None, Some("tessera-license")), &empty_map, &payload, 18), "malformed.missing_field"),
        v("kid-short", "7-byte kid", envelope(&protected_with(-8, Some(&kid1[..7]), Some("tessera-license")), &empty_map, &payload, 18), "malformed.bad_length"),
        v("signature-short", "63-byte signature", { let mut w = Writer::new(); w.tag(18).array(4).bstr(&good_protected).map(0).bstr(&payload).bstr(&[0; 63]); w.into_bytes() }, "malformed.bad_length"),
        // Payload: strict decoding rules.
        v("non-shortest-int", "exp written with 8 bytes", edited_raw(|p| set(entries(p), 4, Value::Text("@".into())), Some(&[0x1b, 0, 0, 0, 0, 0x6b, 0x37, 0x5e, 0x00])), "malformed.non_shortest"),
        v("non-shortest-length", "sub length written with an extra byte", edited_raw(|p| set(entries(p), 2, Value::Text("@".into())), Some(&[0x78, 0x01, b'S'])), "malformed.non_shortest"),
        v("indefinite-string", "customer as an indefinite-length text", edited_raw(|p| set(private(p), 11, Value::Text("@".into())), Some(&[0x7f, 0x61, b'a', 0xff])), "malformed.indefinite_length"),
        v("float", "sequence as a float", edited_raw(|p| set(private(p), 3, Value::Text("@".into())), Some(&[0xf9, 0x3c, 0x00])), "malformed.unexpected_type"),
        v("unsorted-keys", "private claim keys out of order", edited(|p| { private(p).swap(2, 3); }), "malformed.unsorted_keys"),
        v("duplicate-key", "the same claim key twice", edited(|p| { let first = entries(p)[0].clone(); entries(p).insert(0, first); }), "malformed.duplicate_key"),
        v("wrong-type", "sub as a byte string", edited(|p| set(entries(p), 2, Value::Bytes(b"SW".to_vec()))), "malformed.unexpected_type"),
        v("invalid-utf8", "customer name is not UTF-8", edited_raw(|p| set(private(p), 11, Value::Text("@".into())), Some(&[0x62, 0xc3, 0x28])), "malformed.invalid_utf8"),
        v("missing-exp", "no exp claim", edited(|p| remove(entries(p), 4)), "malformed.missing_field"),
        v("missing-binding", "no binding", edited(|p| remove(private(p), 4)), "malformed.missing_field"),
        v("version-2", "format version 2", edited(|p| set(private(p), 0, int(2))), "malformed.unsupported_version"),
        v("unknown-critical", "critical-keys list names key 40, unknown to this version", edited(|p| { set(private(p), 1, Value::Array(vec![int(40)])); set(private(p), 40, int(1)); }), "malformed.unknown_critical"),
        v("too-many-profiles", "33 profiles (cap 32)", edited(|p| { let ents = private(p).iter_mut().find(|(k, _)| *k == int(8)).unwrap(); if let Value::Array(a) = &mut ents.1 { a[0] = Value::Map((0..33).map(|c| (int(c), int(1))).collect()); } }), "malformed.too_many_items"),
        v("serial-too-long", "65-byte SW serial (cap 64)", edited(|p| set(entries(p), 2, Value::Text("S".repeat(limits::SERIAL_LEN + 1)))), "malformed.bad_length"),
        v("too-deep", "unknown key holding 9 nested arrays (cap 8)", edited(|p| { let mut deep = int(0); for _ in 0..9 { deep = Value::Array(vec![deep]); } set(private(p), 40, deep); }), "malformed.too_deep"),
        v("threshold-zero", "binding threshold 0", edited(|p| { let b = private(p).iter_mut().find(|(k, _)| *k == int(4)).unwrap(); if let Value::Array(a) = &mut b.1 { a[0] = int(0); } }), "malformed.bad_value"),
        v("threshold-above-n", "binding threshold 5 of 4 components", edited(|p| { let b = private(p).iter_mut().find(|(k, _)| *k == int(4)).unwrap(); if let Value::Array(a) = &mut b.1 { a[0] = int(5); } }), "malformed.bad_value"),
        v("platform-unknown", "platform 7", edited(|p| set(private(p), 2, int(7))), "malformed.bad_value"),
        v("lifetime-with-end", "lifetime cycle with a term end", edited(|p| { let t = private(p).iter_mut().find(|(k, _)| *k == int(6)).unwrap(); if let Value::Array(a) = &mut t.1 { a[0] = int(3); } }), "malformed.bad_value"),
        v("service-past-term", "a service ending after the term end", edited(|p| { let s = private(p).iter_mut().find(|(k, _)| *k == int(9)).unwrap(); if let Value::Map(m) = &mut s.1 { if let Value::Array(a) = &mut m[0].1 { a[1] = int(T0 + 400 * DAY); } } }), "malformed.bad_value"),
        v("client-with-entitlements", "a sharing client that carries its own profiles", edited(|p| set(private(p), 10, Value::Array(vec![int(2), Value::Text("SW-1".into())]))), "malformed.bad_value"),
        v("component-duplicate", "the same binding component twice", edited(|p| { let b = private(p).iter_mut().find(|(k, _)| *k == int(4)).unwrap(); if let Value::Array(a) = &mut b.1 { if let Value::Array(c) = &mut a[2] { let first = c[0].clone(); c.insert(0, first); } } }), "malformed.duplicate_key"),
        // Signature and keys.
        v("bad-signature", "one bit of the signature flipped", { let mut b = typical_bytes.clone(); let n = b.len(); b[n - 1] ^= 1; b }, "bad_signature"),
        v("altered-payload", "customer name changed after signing", { let mut b = typical_bytes.clone(); let at = b.windows(7).position(|w| w == b"Example").unwrap(); b[at] = b'e'; b }, "bad_signature"),
        v("signature-s-not-canonical", "S replaced by S + L (same point, non-canonical)", s_plus_l(&typical_bytes), "bad_signature"),
        v("signature-small-order-r", "R replaced by a small-order point", { let mut b = typical_bytes.clone(); let n = b.len(); b[n - 64..n - 32].copy_from_slice(&{ let mut r = [0u8; 32]; r[0] = 1; r }); b }, "bad_signature"),
        v("unknown-key", "signed by a key that is in no keyring", sign_payload(&payload, UNTRUSTED_SEED, ObjectType::License), "unknown_key"),
        v("retired-key", "signed by test key 2, retired in the keyring", sign_payload(&payload, samples::TEST_KEY_2_SEED, ObjectType::License), "retired_key"),
        v("key-not-valid-at", "signed by test key 3, whose window ended before the issue time", sign_payload(&payload, TEST_KEY_3_SEED, ObjectType::License), "key_not_valid_at"),
        v("request-as-license", "a signed request presented as a license", request_bytes(&samples::request()), "wrong_type"),
    ];
    // Sanity for the generator itself: names are unique.
    out.sort_by_key(|v| v.name);
    out.dedup_by_key(|v| v.name);
    out
}

/// Replaces S by S + L, the group order: the same point but a
/// non-canonical scalar that strict verification must refuse.
fn s_plus_l(bytes: &[u8]) -> Vec<u8> {
    const L: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut b = bytes.to_vec();
    let n = b.len();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(b[n - 32 + i]) + u16::from(L[i]) + carry;
        b[n - 32 + i] = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    b
}

fn request_bytes(r: &tessera_verifier::encode::RequestData) -> Vec<u8> {
    sign_request(r, seed_signer(samples::DEVICE_KEY_SEED)).unwrap()
}

fn request_vectors() -> Vec<Vector> {
    let first = samples::request();
    let renewal = samples::renewal_request();
    let payload = encode_request_payload(&first).unwrap();
    vec![
        v(
            "request-first-activation",
            "first activation of the sample appliance (HW serial, no SW serial)",
            request_bytes(&first),
            "ok",
        ),
        v(
            "request-renewal",
            "renewal: SW serial, current license id and sequence, last renewal",
            request_bytes(&renewal),
            "ok",
        ),
        v(
            "request-wrong-signer",
            "signed by another key than the device key it carries",
            sign_request(&first, seed_signer([8; 32])).unwrap(),
            "bad_signature",
        ),
        v(
            "request-kid-mismatch",
            "header kid is not the carried device key's",
            sign_payload(&payload, samples::TEST_KEY_1_SEED, ObjectType::Request),
            "bad_signature",
        ),
        v(
            "request-no-serial",
            "neither SW nor HW serial",
            {
                let mut p = to_value(&encode_request_payload(&renewal).unwrap());
                remove(entries(&mut p), 2);
                sign_payload(&to_bytes(&p), samples::DEVICE_KEY_SEED, ObjectType::Request)
            },
            "malformed.missing_field",
        ),
        v(
            "license-as-request",
            "a license presented as a request",
            license(&samples::typical()),
            "wrong_type",
        ),
    ]
}

fn checkpoint(c: &CheckpointData, seed: [u8; 32]) -> Vec<u8> {
    sign_checkpoint(c, &key_id(&public(seed)), seed_signer(seed)).unwrap()
}

/// A checkpoint payload with its private claim edited.
fn checkpoint_edited(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let mut p = to_value(&encode_checkpoint_payload(&samples::checkpoint()).unwrap());
    edit(private(&mut p));
    sign_payload(
        &to_bytes(&p),
        samples::TEST_KEY_1_SEED,
        ObjectType::Checkpoint,
    )
}

fn checkpoint_vectors() -> Vec<Vector> {
    let sample = samples::checkpoint();
    vec![
        v(
            "checkpoint",
            "the sample ledger's head: 42 entries, signed by test key 1",
            checkpoint(&sample, samples::TEST_KEY_1_SEED),
            "ok",
        ),
        v(
            "checkpoint-untrusted-key",
            "signed by a key in no keyring",
            checkpoint(&sample, UNTRUSTED_SEED),
            "unknown_key",
        ),
        v(
            "checkpoint-retired-key",
            "signed by the retired test key 2",
            checkpoint(&sample, samples::TEST_KEY_2_SEED),
            "retired_key",
        ),
        v(
            "checkpoint-tampered-head",
            "the head hash changed after signing",
            {
                let mut b = checkpoint(&sample, samples::TEST_KEY_1_SEED);
                let sig_start = b.len() - 64;
                let at = b[..sig_start]
                    .windows(32)
                    .rposition(|w| w == [0x5a; 32])
                    .unwrap();
                b[at] ^= 1;
                b
            },
            "bad_signature",
        ),
        v(
            "checkpoint-zero-entries",
            "a checkpoint of an empty ledger (no ledger is empty)",
            checkpoint_edited(|m| set(m, 3, int(0))),
            "malformed.bad_value",
        ),
        v(
            "checkpoint-previous-not-before",
            "the checkpoint it follows covers as many entries as it does",
            checkpoint_edited(|m| set(m, 5, int(42))),
            "malformed.bad_value",
        ),
        v(
            "checkpoint-previous-zero",
            "it follows a checkpoint of no entries",
            checkpoint_edited(|m| set(m, 5, int(0))),
            "malformed.bad_value",
        ),
        v(
            "checkpoint-no-head",
            "the head hash is missing",
            checkpoint_edited(|m| remove(m, 4)),
            "malformed.missing_field",
        ),
        v(
            "checkpoint-short-ledger-id",
            "a ledger id of 15 bytes",
            checkpoint_edited(|m| set(m, 2, Value::Bytes(vec![1; 15]))),
            "malformed.bad_length",
        ),
        v(
            "checkpoint-with-subject",
            "a `sub` claim: a checkpoint names no serial",
            {
                let mut p = to_value(&encode_checkpoint_payload(&sample).unwrap());
                set(entries(&mut p), 2, Value::Text("SW-2026-000001".into()));
                sign_payload(
                    &to_bytes(&p),
                    samples::TEST_KEY_1_SEED,
                    ObjectType::Checkpoint,
                )
            },
            "malformed.bad_value",
        ),
        v(
            "checkpoint-unknown-critical",
            "a critical private key this version does not know",
            checkpoint_edited(|m| {
                set(m, 1, Value::Array(vec![int(9)]));
                set(m, 9, int(1));
            }),
            "malformed.unknown_critical",
        ),
        v(
            "license-as-checkpoint",
            "a license presented as a checkpoint",
            license(&samples::typical()),
            "wrong_type",
        ),
    ]
}

fn checkpoint_summary(c: &Checkpoint<'_>) -> Json {
    json!({
        "issuer": c.issuer(),
        "issued_at": c.issued_at(),
        "ledger_id": hex::encode(c.ledger_id()),
        "entries": c.entries(),
        "head": hex::encode(c.head()),
        "previous": c.previous(),
    })
}

fn summary(l: &License<'_>) -> Json {
    let e = l.entitlements();
    json!({
        "issuer": l.issuer(),
        "serial": l.serial(),
        "sequence": l.sequence(),
        "platform": l.platform().code(),
        "issued_at": l.issued_at(),
        "lease_end": l.lease_end(),
        "term": { "cycle": l.term().cycle.code(), "start": l.term().start, "end": l.term().end },
        "threshold": l.binding().threshold,
        "components": l.binding().components.len(),
        "profiles": e.profiles.map(|p| json!([p.code, p.count])).collect::<Vec<_>>(),
        "features": e.features.len(),
        "bases": e.bases.map(|b| json!([b.code, b.count, b.addons.map(|a| json!([a.code, a.count])).collect::<Vec<_>>()])).collect::<Vec<_>>(),
        "storage_units": e.storage_units,
        "services": l.services().map(|s| json!([s.code, s.start, s.end])).collect::<Vec<_>>(),
        "sharing": match l.sharing() { Sharing::None => json!("none"), Sharing::Server => json!("server"), Sharing::Client(s) => json!({"client_of": s}) },
        "customer": l.customer(),
        "pbx_name": l.pbx_name(),
    })
}

fn key_json(k: &KeyEntry) -> Json {
    json!({
        "kid": hex::encode(k.kid),
        "public_key": hex::encode(k.public_key),
        "valid_from": k.valid_from,
        "valid_until": k.valid_until,
        "retired": k.retired,
    })
}

/// Every file of `spec/vectors/` that the generator owns: (file name, content).
pub fn files() -> Vec<(String, String)> {
    let ring = keyring();
    let licenses: Vec<Json> = license_vectors()
        .into_iter()
        .map(|v| {
            let mut j = json!({
                "name": v.name,
                "description": v.description,
                "cbor": hex::encode(&v.bytes),
                "expected": v.expected,
            });
            if v.expected == "ok" {
                j["decoded"] = summary(&decode_license(&v.bytes, &ring).unwrap());
            }
            j
        })
        .collect();
    let requests: Vec<Json> = request_vectors()
        .into_iter()
        .map(|v| json!({"name": v.name, "description": v.description, "cbor": hex::encode(&v.bytes), "expected": v.expected}))
        .collect();
    let checkpoints: Vec<Json> = checkpoint_vectors()
        .into_iter()
        .map(|v| {
            let mut j = json!({
                "name": v.name,
                "description": v.description,
                "cbor": hex::encode(&v.bytes),
                "expected": v.expected,
            });
            if v.expected == "ok" {
                j["decoded"] = checkpoint_summary(&decode_checkpoint(&v.bytes, &ring).unwrap());
            }
            j
        })
        .collect();
    let keys = json!({
        "note": "Test keys only. Their secret seeds are published (RFC 8032 section 7.1 TEST 1-3 and fixed bytes): never trust them in production firmware.",
        "keyring": ring.iter().map(key_json).collect::<Vec<_>>(),
        "seeds": {
            "test_key_1": hex::encode(samples::TEST_KEY_1_SEED),
            "test_key_2": hex::encode(samples::TEST_KEY_2_SEED),
            "test_key_3": hex::encode(TEST_KEY_3_SEED),
            "untrusted": hex::encode(UNTRUSTED_SEED),
            "device_key": hex::encode(samples::DEVICE_KEY_SEED),
        },
    });
    let pretty = |j: &Json| serde_json::to_string_pretty(j).unwrap() + "\n";
    vec![
        ("keys.json".into(), pretty(&keys)),
        (
            "licenses.json".into(),
            pretty(&json!({ "vectors": licenses })),
        ),
        (
            "requests.json".into(),
            pretty(&json!({ "vectors": requests })),
        ),
        (
            "checkpoints.json".into(),
            pretty(&json!({ "vectors": checkpoints })),
        ),
        (
            "checkpoint.ckpt".into(),
            armor::encode(
                &checkpoint(&samples::checkpoint(), samples::TEST_KEY_1_SEED),
                armor::LABEL_CHECKPOINT,
            ),
        ),
        (
            "minimal.lic".into(),
            armor::encode(&license(&samples::minimal()), armor::LABEL_LICENSE),
        ),
        (
            "typical.lic".into(),
            armor::encode(&license(&samples::typical()), armor::LABEL_LICENSE),
        ),
        (
            "maximal.lic".into(),
            armor::encode(&license(&samples::maximal()), armor::LABEL_LICENSE),
        ),
        (
            "request.req".into(),
            armor::encode(&request_bytes(&samples::request()), armor::LABEL_REQUEST),
        ),
        runtime_file(),
        state_file(),
    ]
}

// ---------------------------------------------------------------------------
// Runtime vectors (`spec/RUNTIME.md` §9): device identity raw values, clock
// and state in; decision or error and state out.

use tessera_verifier::binding::{normalize, DeviceIdentity, MAX_VALUE_LEN};
use tessera_verifier::claims::{Component, ComponentKind, Platform};
use tessera_verifier::{verify, Grants, Role, State, StateKey, Verdict};

const SW: &str = "SW-2026-000123";
const YEAR_END: i64 = T0 + 365 * DAY;
const HOUR: i64 = 3_600;

/// A raw identity value as firmware reads it.
#[derive(Clone)]
enum Raw {
    Text(&'static str),
    Bytes(Vec<u8>),
}

/// A device as firmware describes it to the verifier.
#[derive(Clone)]
struct Device {
    sw_serial: Option<&'static str>,
    hw_serial: Option<&'static str>,
    components: Vec<(ComponentKind, Raw)>,
}

impl Device {
    fn with_sw(mut self, sw: &'static str) -> Self {
        self.sw_serial = Some(sw);
        self
    }

    fn replace(mut self, kind: ComponentKind, raw: &'static str) -> Self {
        for c in &mut self.components {
            if c.0 == kind {
                c.1 = Raw::Text(raw);
            }
        }
        self
    }

    fn json(&self) -> Json {
        json!({
            "sw_serial": self.sw_serial,
            "hw_serial": self.hw_serial,
            "components": self.components.iter().map(|(kind, raw)| match raw {
                Raw::Text(t) => json!({"kind": kind.0, "raw": t}),
                Raw::Bytes(b) => json!({"kind": kind.0, "raw_hex": hex::encode(b)}),
            }).collect::<Vec<_>>(),
        })
    }

    fn identity(&self) -> DeviceIdentity {
        identity_from_json(&self.json()).unwrap()
    }
}

/// Builds the identity a vector describes: components first, then the HW
/// serial (which adds its component too), then the SW serial.
pub fn identity_from_json(
    d: &Json,
) -> Result<DeviceIdentity, tessera_verifier::binding::IdentityError> {
    let mut id = DeviceIdentity::new();
    for c in d["components"].as_array().unwrap() {
        let kind = ComponentKind(u8::try_from(c["kind"].as_u64().unwrap()).unwrap());
        match (c["raw"].as_str(), c["raw_hex"].as_str()) {
            (Some(text), _) => id.add(kind, text)?,
            (None, Some(h)) => id.add(kind, hex::decode(h).unwrap())?,
            _ => panic!("component without a raw value"),
        }
    }
    if let Some(hw) = d["hw_serial"].as_str() {
        id.set_hw_serial(hw)?;
    }
    if let Some(sw) = d["sw_serial"].as_str() {
        id.set_sw_serial(sw)?;
    }
    Ok(id)
}

/// The sample appliance before its first activation (raw probe output).
fn appliance() -> Device {
    Device {
        sw_serial: None,
        hw_serial: Some(" hw-7f3a-0042\n"),
        components: samples::SAMPLE_DEVICE_RAW
            .iter()
            .filter(|(k, _)| *k != ComponentKind::HW_SERIAL)
            .map(|(k, v)| (*k, Raw::Text(v)))
            .collect(),
    }
}

/// A fresh VM: no serials, CPU id, NIC, IP address, VM UUID, device key.
fn vm() -> Device {
    Device {
        sw_serial: None,
        hw_serial: None,
        components: vec![
            (ComponentKind::CPU_ID, Raw::Text("GenuineIntel-000906EA")),
            (ComponentKind::NIC_MAC, Raw::Text("52-54-00-12-34-56")),
            (ComponentKind::IP_ADDR, Raw::Text("2001:DB8:0:0:0:0:0:A")),
            (
                ComponentKind::SYSTEM_UUID,
                Raw::Text("564D5C3A0B9E7F21A3C41D2E3F405162"),
            ),
            (
                ComponentKind::DEVICE_KEY,
                Raw::Bytes(public(samples::DEVICE_KEY_SEED).to_vec()),
            ),
        ],
    }
}

/// Another box: nothing matches the sample appliance.
fn other_box() -> Device {
    Device {
        sw_serial: None,
        hw_serial: None,
        components: vec![
            (ComponentKind::HW_SERIAL, Raw::Text("HW-1111-2222")),
            (ComponentKind::NIC_MAC, Raw::Text("00:16:3e:00:00:01")),
            (ComponentKind::DISK_SERIAL, Raw::Text("WD-XYZ")),
        ],
    }
}

/// `typical` renewed: sequence `seq`, issued at `at`, lease `days` long.
fn renewed(seq: u32, at: i64, days: i64) -> LicenseData {
    let mut l = samples::typical();
    l.sequence = seq;
    l.id = [b'r'; 16];
    l.id[15] = u8::try_from(seq).unwrap();
    l.issued_at = at;
    l.not_before = at;
    l.lease_end = (at + days * DAY).min(YEAR_END);
    l
}

/// A license bound to all components of `d` with threshold `k`.
fn bound_to(mut l: LicenseData, d: &Device, k: u8, required: Option<ComponentKind>) -> LicenseData {
    l.binding.threshold = k;
    l.binding.components = d
        .identity()
        .digests(&l.binding.salt)
        .map(|i| Component {
            kind: i.kind,
            digest: i.digest,
            required: Some(i.kind) == required,
        })
        .collect();
    l
}

/// An online VM license: 3-hour lease, 72 h grace then locked.
fn vm_online() -> LicenseData {
    let mut l = bound_to(samples::typical(), &vm(), 3, None);
    l.platform = Platform::Vm;
    l.previous_serial = None;
    l.policy = samples::policy_72_hours_locked();
    l.lease_end = T0 + 3 * HOUR;
    l
}

/// The state after accepting each step in turn from a fresh state.
fn state_after(steps: &[(&LicenseData, &Device, i64)]) -> State {
    let ring = keyring();
    let mut st = State::new();
    for (l, d, now) in steps {
        let bytes = license(l);
        verify(&bytes, &ring, &d.identity(), *now, &mut st).unwrap();
    }
    st
}

struct RuntimeCase {
    name: &'static str,
    description: &'static str,
    license: Vec<u8>,
    device: Device,
    now: i64,
    state_in: Vec<u8>,
    /// The verdict or error code the case is meant to show; the generator
    /// refuses to write a case that does not.
    expect: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn rc(
    name: &'static str,
    description: &'static str,
    license: Vec<u8>,
    device: Device,
    now: i64,
    state_in: Vec<u8>,
    expect: &'static str,
) -> RuntimeCase {
    RuntimeCase {
        name,
        description,
        license,
        device,
        now,
        state_in,
        expect,
    }
}

fn runtime_cases() -> Vec<RuntimeCase> {
    let fresh = State::new().to_bytes().to_vec();
    let typical = samples::typical();
    let activated = appliance().with_sw(SW);
    let after_activation = state_after(&[(&typical, &appliance(), T0 + HOUR)])
        .to_bytes()
        .to_vec();
    let vm_lic = vm_online();
    let vm_sw = vm().with_sw(SW);
    let vm_state = state_after(&[(&vm_lic, &vm(), T0)]).to_bytes().to_vec();
    let r1 = renewed(1, T0, 30);
    let r2 = renewed(2, T0 + 20 * DAY, 30);
    let after_r1 = state_after(&[(&r1, &activated, T0)]).to_bytes().to_vec();
    let after_r2 = state_after(&[(&r1, &activated, T0), (&r2, &activated, T0 + 20 * DAY)])
        .to_bytes()
        .to_vec();
    let seen_day_22 = state_after(&[
        (&r1, &activated, T0),
        (&r2, &activated, T0 + 20 * DAY),
        (&r2, &activated, T0 + 22 * DAY),
    ])
    .to_bytes()
    .to_vec();
    let mut cloud = samples::typical();
    cloud.platform = Platform::Cloud;
    cloud.lease_end = T0 + DAY;
    let mut future = renewed(2, T0 + 30 * DAY, 60);
    future.issued_at = T0;
    let mut same_seq = renewed(2, T0 + 20 * DAY, 30);
    same_seq.id = *b"voided-in-error!";
    let mut other_serial = bound_to(samples::typical(), &vm(), 3, None);
    other_serial.serial = "SW-2026-000777".into();
    other_serial.previous_serial = None;
    other_serial.sequence = 9;
    let vm_plain = {
        let mut l = bound_to(samples::typical(), &vm(), 2, None);
        l.platform = Platform::Vm;
        l.previous_serial = None;
        l
    };
    let mut recovery_fresh = renewed(3, T0 + 40 * DAY, 30);
    recovery_fresh.issued_at = T0 + 40 * DAY;
    let mut corrupt = after_r2.clone();
    corrupt[20] ^= 0x10;
    let rma_box = Device {
        sw_serial: None,
        hw_serial: Some("HW-8A11-0007"),
        components: vec![
            (ComponentKind::NIC_MAC, Raw::Text("00:16:3e:77:88:99")),
            (ComponentKind::DISK_SERIAL, Raw::Text("S3Z9NB0K999999")),
        ],
    };
    let mut rma = bound_to(
        renewed(5, T0 + 10 * DAY, 90),
        &rma_box,
        2,
        Some(ComponentKind::HW_SERIAL),
    );
    rma.previous_serial = Some("HW-8A11-0007".into());
    let payload = encode_license_payload(&typical).unwrap();
    let typical_bytes = license(&typical);

    vec![
        // Activation, serials and binding.
        rc("first-activation-hw", "first activation of the sample appliance: no SW serial yet, the license's previous serial is its HW serial; raw values with separators, case and whitespace as probed", typical_bytes.clone(), appliance(), T0 + HOUR, fresh.clone(), "valid"),
        rc("check-after-activation", "daily check after activation: the device now knows its SW serial", typical_bytes.clone(), activated.clone(), T0 + 10 * DAY, after_activation.clone(), "valid"),
        rc("fresh-vm-binding-alone", "a fresh VM with neither SW nor HW serial: the binding (2 of 5) alone decides", license(&vm_plain), vm(), T0, fresh.clone(), "valid"),
        rc("nic-replaced-still-binds", "the NIC was swapped: 3 of 4 components still match, k = 3", typical_bytes.clone(), activated.clone().replace(ComponentKind::NIC_MAC, "00:16:3e:ff:ff:01"), T0 + 10 * DAY, after_activation.clone(), "valid"),
        rc("dhcp-address-renewed-still-binds", "the VM's IP address changed: 4 of 5 still match", license(&vm_plain), vm().replace(ComponentKind::IP_ADDR, "2001:db8::b"), T0, fresh.clone(), "valid"),
        rc("copied-to-other-machine", "the license copied to another box (no serials configured): 0 of 4 match, 3 needed", typical_bytes.clone(), other_box(), T0, fresh.clone(), "wrong_device"),
        rc("copied-to-other-machine-with-own-serial", "the license copied to a box that has its own SW serial", typical_bytes.clone(), other_box().with_sw("SW-2026-000999"), T0, fresh.clone(), "wrong_serial"),
        rc("required-component-missed", "3 of 4 match, enough for k = 3, but the required HW serial differs: needed = max(k, matched + 1) = 4", typical_bytes.clone(), Device { hw_serial: Some("HW-7F3A-0043"), ..activated.clone() }, T0, fresh.clone(), "wrong_device"),
        rc("first-activation-other-hw-serial", "no SW serial yet and the license's previous serial is another HW serial", typical_bytes.clone(), Device { hw_serial: Some("HW-7F3A-0099"), ..appliance() }, T0, fresh.clone(), "wrong_serial"),
        rc("state-belongs-to-other-serial", "the state belongs to one serial; a license for another serial bound to the same VM is refused", license(&other_serial), vm(), T0 + DAY, vm_state.clone(), "wrong_serial"),
        rc("rma-replacement-on-new-box", "after an RMA the replacement appliance gets the SW serial with the next sequence", license(&rma), rma_box.clone(), T0 + 10 * DAY, fresh.clone(), "valid"),
        rc("rma-replacement-on-old-box", "the replacement license does not bind to the old box", license(&rma), activated.clone(), T0 + 10 * DAY, after_r1.clone(), "wrong_device"),
        // Time and grace.
        rc("renewal-due", "10 days before the term end, inside the 30-day renewal window", typical_bytes.clone(), activated.clone(), YEAR_END - 10 * DAY, after_activation.clone(), "renewal_due"),
        rc("next-check-capped-at-boundary", "an hour before the renewal window opens: the next check is when it opens, not a day later", typical_bytes.clone(), activated.clone(), YEAR_END - 30 * DAY - HOUR, after_activation.clone(), "valid"),
        rc("grace-14-days", "3 days after the end: grace until end + 14 days", typical_bytes.clone(), activated.clone(), YEAR_END + 3 * DAY, after_activation.clone(), "grace"),
        rc("expired-emergency-only", "14 days after the end: only one emergency call", typical_bytes.clone(), activated.clone(), YEAR_END + 14 * DAY, after_activation.clone(), "expired_emergency_only"),
        rc("online-3-hour-lease", "online VM on 3-hour leases with 3-hourly checks, renewal always due", license(&vm_lic), vm_sw.clone(), T0 + HOUR, vm_state.clone(), "renewal_due"),
        rc("grace-72-hours", "the online VM could not renew: 72 hours of grace", license(&vm_lic), vm_sw.clone(), T0 + 5 * HOUR, vm_state.clone(), "grace"),
        rc("expired-locked", "72 hours after the lease end: locked", license(&vm_lic), vm_sw.clone(), T0 + 3 * HOUR + 72 * HOUR, vm_state.clone(), "expired_locked"),
        rc("cloud-no-offline-grace", "Cloud platform: straight from the lease end to expired", license(&cloud), activated.clone(), T0 + DAY, fresh.clone(), "expired_emergency_only"),
        rc("not-yet-valid", "a renewal that starts in 29 days arrives early: not recorded, only the clock moves", license(&future), activated.clone(), T0 + DAY, after_activation.clone(), "not_yet_valid"),
        rc("renewal-file-restores-full-service", "air-gapped box expired after its 30-day lease and grace; a renewal file with the next sequence restores full service at once", license(&renewed(2, T0 + 50 * DAY, 60)), activated.clone(), T0 + 50 * DAY, after_r1.clone(), "valid"),
        rc("sharing-client", "a sharing client: valid, with no entitlements of its own", license(&samples::sharing_client()), appliance().with_sw("SW-2026-000124"), T0, fresh.clone(), "valid"),
        // Anti-rollback and clock.
        rc("replayed-older-license", "sequence 1 replayed after sequence 2 was accepted", license(&r1), activated.clone(), T0 + 21 * DAY, after_r2.clone(), "superseded"),
        rc("same-sequence-other-id", "a license with the accepted sequence but another id (voided in error)", license(&same_seq), activated.clone(), T0 + 21 * DAY, after_r2.clone(), "superseded"),
        rc("reinstall-license-in-force", "the license in force checked again: accepted, last seen moves, last renewal does not", license(&r2), activated.clone(), T0 + 25 * DAY, after_r2.clone(), "renewal_due"),
        rc("clock-set-back", "the clock is 2 days before the last time seen (tolerance 24 h)", license(&r2), activated.clone(), T0 + 20 * DAY, seen_day_22.clone(), "clock_rollback"),
        rc("clock-back-within-tolerance", "the clock is 12 hours before the last time seen: accepted, last seen stays", license(&r2), activated.clone(), T0 + 22 * DAY - 12 * HOUR, seen_day_22, "renewal_due"),
        // State.
        rc("state-corrupt", "one bit of the stored state flipped", license(&r2), activated.clone(), T0 + 21 * DAY, corrupt, "state_corrupt"),
        rc("state-erased", "erased flash (all 0xff) is corrupt, not fresh", license(&r2), activated.clone(), T0 + 21 * DAY, vec![0xff; State::LEN], "state_corrupt"),
        rc("recovery-refuses-old-license", "after corruption the operator started a recovery state; the file the device had is refused", license(&r2), activated.clone(), T0 + 40 * DAY, State::recovery(T0 + 40 * DAY).to_bytes().to_vec(), "state_corrupt"),
        rc("recovery-accepts-fresh-license", "in recovery, a license issued after the recovery is accepted and the state is normal again", license(&recovery_fresh), activated.clone(), T0 + 40 * DAY + HOUR, State::recovery(T0 + 40 * DAY).to_bytes().to_vec(), "renewal_due"),
        // Decoding and signature errors reach firmware through the same call.
        rc("malformed-truncated", "the license file lost its last byte", typical_bytes[..typical_bytes.len() - 1].to_vec(), activated.clone(), T0, fresh.clone(), "malformed.truncated"),
        rc("bad-signature", "one bit of the signature flipped", { let mut b = typical_bytes.clone(); let n = b.len(); b[n - 1] ^= 1; b }, activated.clone(), T0, fresh.clone(), "bad_signature"),
        rc("unknown-key", "signed by a key that is in no keyring", sign_payload(&payload, UNTRUSTED_SEED, ObjectType::License), activated.clone(), T0, fresh.clone(), "unknown_key"),
        rc("retired-key", "signed by a retired key", sign_payload(&payload, samples::TEST_KEY_2_SEED, ObjectType::License), activated.clone(), T0, fresh.clone(), "retired_key"),
        rc("key-not-valid-at", "signed by a key whose window ended before the issue time", sign_payload(&payload, TEST_KEY_3_SEED, ObjectType::License), activated.clone(), T0, fresh.clone(), "key_not_valid_at"),
        rc("request-as-license", "a device request presented as a license", request_bytes(&samples::request()), activated, T0, fresh, "wrong_type"),
    ]
}

fn verdict_json(v: Verdict) -> Json {
    match v {
        Verdict::RenewalDue { days_left } => json!({"code": v.code(), "days_left": days_left}),
        Verdict::Grace { until } => json!({"code": v.code(), "until": until}),
        _ => json!({"code": v.code()}),
    }
}

fn grants_json(g: &Grants<'_>) -> Json {
    json!({
        "total_users": g.total_users(),
        "storage_gb": g.storage_gb(),
        "features_enabled": g.features().filter(|f| g.feature_enabled(f.code)).count(),
        "services": g.services().map(|s| json!([s.code, s.start, s.end])).collect::<Vec<_>>(),
        "role": match g.role() {
            Role::Standalone => json!("standalone"),
            Role::Server => json!("server"),
            Role::ClientOf(s) => json!({"client_of": s}),
        },
    })
}

/// Runs one runtime case (its JSON form) and returns the `expected` object
/// it must have. Used by the generator and by `tests/vectors.rs`.
pub fn run_runtime_case(case: &Json, ring: &[KeyEntry]) -> Json {
    let bytes = hex::decode(case["license"].as_str().unwrap()).unwrap();
    let state_in = hex::decode(case["state_in"].as_str().unwrap()).unwrap();
    let identity = identity_from_json(&case["device"]).unwrap();
    let now = case["now"].as_i64().unwrap();
    // Keyed records (`spec/RUNTIME.md` §6.6): decoded and re-sealed under
    // the case's key.
    let key = case["state_key"]
        .as_str()
        .map(|k| StateKey::from_bytes(hex::decode(k).unwrap().try_into().unwrap()));
    let key = key.as_ref();
    let mut state = match State::from_bytes_with(&state_in, key) {
        Ok(s) => s,
        Err(e) => {
            return json!({"result": e.code(), "state_out": hex::encode(&state_in)});
        }
    };
    match verify(&bytes, ring, &identity, now, &mut state) {
        Ok(d) => json!({
            "result": "ok",
            "verdict": verdict_json(d.verdict()),
            "next_check": d.next_check(),
            "days_since_renewal": d.days_since_renewal(),
            "matched_components": d.matched_components(),
            "grants": d.grants().as_ref().map(grants_json),
            "state_out": hex::encode(state.to_bytes_with(key)),
        }),
        Err(e) => {
            let mut j =
                json!({"result": e.code(), "state_out": hex::encode(state.to_bytes_with(key))});
            match e {
                tessera_verifier::Error::WrongDevice { matched, needed } => {
                    j["matched"] = json!(matched);
                    j["needed"] = json!(needed);
                }
                tessera_verifier::Error::Superseded { seq } => j["seq"] = json!(seq),
                _ => {}
            }
            j
        }
    }
}

/// Normalization cases: (kind, raw, expected normalized text or error code).
fn normalization_cases() -> Vec<(ComponentKind, Raw)> {
    use ComponentKind as K;
    let t = Raw::Text;
    vec![
        (K::HW_SERIAL, t(" hw-7f3a-0042\n")),
        (K::DISK_SERIAL, t("\tWd-123 abc ")),
        (K::CPU_ID, t("bfebfbff000906ea")),
        (K::NIC_MAC, t("00:16:3E:5A:1B:2C")),
        (K::NIC_MAC, t("00-16-3e-5a-1b-2c")),
        (K::NIC_MAC, t("0016.3e5a.1b2c")),
        (K::NIC_MAC, t("00:16:3e:5a:1b")),
        (K::NIC_MAC, t("00 16 3e 5a 1b 2c")),
        (K::NIC_MAC, t("00:00:00:00:00:00")),
        (K::IP_ADDR, t("192.0.2.10")),
        (K::IP_ADDR, t(" 2001:0DB8:0000:0000:0000:0000:0000:0001 ")),
        (K::IP_ADDR, t("2001:db8:0:1:1:1:1:1")),
        (K::IP_ADDR, t("::ffff:192.0.2.1")),
        (K::IP_ADDR, t("192.000.002.010")),
        (K::IP_ADDR, t("fe80::1%eth0")),
        (K::IP_ADDR, t("127.0.0.1")),
        (K::IP_ADDR, t("::")),
        (K::SYSTEM_UUID, t("4C4C4544-0042-3510-8056-B4C04F4E3232")),
        (K::SYSTEM_UUID, t("{4c4c4544-0042-3510-8056-b4c04f4e3232}")),
        (K::SYSTEM_UUID, t("4C4C4544004235108056B4C04F4E3232")),
        (K::SYSTEM_UUID, t("4c4c45440-042-3510-8056-b4c04f4e3232")),
        (K::SYSTEM_UUID, t("00000000-0000-0000-0000-000000000000")),
        (K::MACHINE_ID, t("  0F1E2D3C4B5A69788796A5B4C3D2E1F0\n")),
        (K::MACHINE_ID, t("   ")),
        (
            K::DEVICE_KEY,
            Raw::Bytes(public(samples::DEVICE_KEY_SEED).to_vec()),
        ),
        (K::DEVICE_KEY, Raw::Bytes(vec![7; 31])),
        // One byte over the 64-byte cap of a normalized value.
        (K::HW_SERIAL, t("X".repeat(65).leak())),
        (ComponentKind(9), t("x")),
    ]
}

fn normalization_json() -> Vec<Json> {
    normalization_cases()
        .into_iter()
        .map(|(kind, raw)| {
            let bytes = match &raw {
                Raw::Text(s) => s.as_bytes().to_vec(),
                Raw::Bytes(b) => b.clone(),
            };
            let mut buf = [0u8; MAX_VALUE_LEN];
            let mut j = match raw {
                Raw::Text(s) => json!({"kind": kind.0, "raw": s}),
                Raw::Bytes(b) => json!({"kind": kind.0, "raw_hex": hex::encode(b)}),
            };
            match normalize(kind, &bytes, &mut buf) {
                Ok(n) => {
                    j["expected"] = json!("ok");
                    j["normalized_hex"] = json!(hex::encode(n));
                    if let Ok(text) = core::str::from_utf8(n) {
                        if kind != ComponentKind::DEVICE_KEY {
                            j["normalized"] = json!(text);
                        }
                    }
                    j["digest_with_sample_salt"] = json!(hex::encode(
                        tessera_verifier::binding::component_digest(&samples::SAMPLE_SALT, kind, n)
                    ));
                }
                Err(e) => j["expected"] = json!(e.code()),
            }
            j
        })
        .collect()
}

fn runtime_json() -> Json {
    let ring = keyring();
    let vectors: Vec<Json> = runtime_cases()
        .into_iter()
        .map(|c| case_json(&c, None, &ring))
        .collect();
    json!({
        "note": "Runtime vectors (spec/RUNTIME.md section 9). Keyring: keys.json. Build the device identity from the raw values (components in order, then hw_serial, then sw_serial), decode state_in (64 bytes) and call verify(license, keyring, identity, now, state); compare with expected. Times are Unix seconds.",
        "normalization": normalization_json(),
        "vectors": vectors,
    })
}

/// A runtime case as JSON (with its `state_key` when the state is keyed)
/// and the `expected` object; refuses a case that does not show the
/// verdict or error it is meant to.
fn case_json(c: &RuntimeCase, state_key: Option<&[u8]>, ring: &[KeyEntry]) -> Json {
    let mut j = json!({
        "name": c.name,
        "description": c.description,
        "license": hex::encode(&c.license),
        "device": c.device.json(),
        "now": c.now,
        "state_in": hex::encode(&c.state_in),
    });
    if let Some(key) = state_key {
        j["state_key"] = json!(hex::encode(key));
    }
    let expected = run_runtime_case(&j, ring);
    let got = match expected["result"].as_str().unwrap() {
        "ok" => expected["verdict"]["code"].as_str().unwrap(),
        code => code,
    };
    assert_eq!(
        got, c.expect,
        "runtime vector {} shows {got}, meant {}",
        c.name, c.expect
    );
    j["expected"] = expected;
    j
}

/// The runtime vector file: (file name, content).
pub fn runtime_file() -> (String, String) {
    (
        "runtime.json".into(),
        serde_json::to_string_pretty(&runtime_json()).unwrap() + "\n",
    )
}

// ---------------------------------------------------------------------------
// Keyed state records (`spec/RUNTIME.md` §6.6, §9): key derivation, records
// sealed under a device key, and runtime cases with a keyed state.

/// The context the reference device agent derives its state key with, from
/// the seed of its device key.
pub const AGENT_STATE_CONTEXT: &[u8] = b"tessera-agent state record";

/// The context of a firmware key that mixes in a monotonic counter.
fn counter_context(counter: u32) -> Vec<u8> {
    let mut c = b"pbx state ".to_vec();
    c.extend_from_slice(&counter.to_be_bytes());
    c
}

fn derivation_cases() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (
            samples::DEVICE_KEY_SEED.to_vec(),
            AGENT_STATE_CONTEXT.to_vec(),
        ),
        (vec![0x5a; 32], counter_context(1)),
        (vec![0x5a; 32], counter_context(2)),
        (b"short".to_vec(), Vec::new()),
    ]
}

fn derivation_json() -> Vec<Json> {
    derivation_cases()
        .into_iter()
        .map(|(secret, context)| {
            json!({
                "secret_hex": hex::encode(&secret),
                "context_hex": hex::encode(&context),
                "key_hex": hex::encode(StateKey::derive(&secret, &context).as_bytes()),
            })
        })
        .collect()
}

fn record_json(name: &str, description: &str, key: Option<&StateKey>, record: &[u8]) -> Json {
    let decoded = State::from_bytes_with(record, key);
    let mut j = json!({
        "name": name,
        "description": description,
        "state_key": key.map(|k| hex::encode(k.as_bytes())),
        "record": hex::encode(record),
        "expected": match decoded { Ok(_) => "ok", Err(e) => e.code() },
    });
    if let Ok(s) = decoded {
        // The same state as an unkeyed record: every field, comparable.
        j["unkeyed"] = json!(hex::encode(s.to_bytes()));
    }
    j
}

fn records_json() -> Vec<Json> {
    let agent = StateKey::derive(&samples::DEVICE_KEY_SEED, AGENT_STATE_CONTEXT);
    let other = StateKey::derive(&[0x42; 32], AGENT_STATE_CONTEXT);
    let r1 = renewed(1, T0, 30);
    let r2 = renewed(2, T0 + 20 * DAY, 30);
    let activated = appliance().with_sw(SW);
    let licensed = state_after(&[(&r1, &activated, T0), (&r2, &activated, T0 + 20 * DAY)]);
    let recovery = State::recovery(T0 + 40 * DAY);
    let mut flipped = licensed.to_bytes_with(Some(&agent));
    flipped[63] ^= 1;
    let k = Some(&agent);
    vec![
        record_json(
            "keyed-fresh",
            "the fresh state sealed under the agent's key of the sample device key",
            k,
            &State::new().to_bytes_with(k),
        ),
        record_json(
            "keyed-licensed",
            "a licensed state (sequence 2): last renewal at bytes 40..48",
            k,
            &licensed.to_bytes_with(k),
        ),
        record_json(
            "keyed-recovery",
            "a recovery state: the recovery floor at bytes 40..48",
            k,
            &recovery.to_bytes_with(k),
        ),
        record_json(
            "unkeyed-licensed",
            "the same licensed state unkeyed (version 1), read without a key",
            None,
            &licensed.to_bytes(),
        ),
        record_json(
            "unkeyed-to-keyed-reader",
            "an unkeyed record (anybody can compute its checksum) given to a keyed reader",
            k,
            &licensed.to_bytes(),
        ),
        record_json(
            "keyed-to-unkeyed-reader",
            "a keyed record read without a key",
            None,
            &licensed.to_bytes_with(k),
        ),
        record_json(
            "other-device-key",
            "a record sealed under another device's key",
            k,
            &licensed.to_bytes_with(Some(&other)),
        ),
        record_json(
            "tag-bit-flipped",
            "the last bit of the tag flipped",
            k,
            &flipped,
        ),
    ]
}

fn keyed_runtime_cases() -> Vec<(RuntimeCase, Vec<u8>)> {
    let agent = StateKey::derive(&samples::DEVICE_KEY_SEED, AGENT_STATE_CONTEXT);
    let k = Some(&agent);
    let at = |n| StateKey::derive(&[0x5a; 32], &counter_context(n));
    let r1 = renewed(1, T0, 30);
    let r2 = renewed(2, T0 + 20 * DAY, 30);
    let activated = appliance().with_sw(SW);
    let after_r1 = state_after(&[(&r1, &activated, T0)]);
    let after_r2 = state_after(&[(&r1, &activated, T0), (&r2, &activated, T0 + 20 * DAY)]);
    let mut recovery_fresh = renewed(3, T0 + 40 * DAY, 30);
    recovery_fresh.issued_at = T0 + 40 * DAY;
    let key_bytes = |k: &StateKey| k.as_bytes().to_vec();
    vec![
        (rc("keyed-check", "the daily check with a keyed state: the record out is sealed under the same key", license(&r2), activated.clone(), T0 + 21 * DAY, after_r2.to_bytes_with(k).to_vec(), "renewal_due"), key_bytes(&agent)),
        (rc("keyed-renewal", "a renewal (sequence 2) accepted on a keyed state", license(&r2), activated.clone(), T0 + 20 * DAY, after_r1.to_bytes_with(k).to_vec(), "renewal_due"), key_bytes(&agent)),
        (rc("keyed-replayed-older-license", "sequence 1 (voided) replayed on a keyed state that accepted sequence 2", license(&r1), activated.clone(), T0 + 21 * DAY, after_r2.to_bytes_with(k).to_vec(), "superseded"), key_bytes(&agent)),
        (rc("swapped-unkeyed-record", "the voided sequence 1 put back with an unkeyed record of its time (recomputed checksum): corrupt to a keyed reader, never the older license's service", license(&r1), activated.clone(), T0 + 21 * DAY, after_r1.to_bytes().to_vec(), "state_corrupt"), key_bytes(&agent)),
        (rc("swapped-fresh-record", "the voided sequence 1 put back with a fresh unkeyed record (recomputed checksum)", license(&r1), activated.clone(), T0 + 21 * DAY, State::new().to_bytes().to_vec(), "state_corrupt"), key_bytes(&agent)),
        (rc("record-of-another-device", "a record sealed under another device's key", license(&r1), activated.clone(), T0 + 21 * DAY, after_r1.to_bytes_with(Some(&StateKey::derive(&[0x42; 32], AGENT_STATE_CONTEXT))).to_vec(), "state_corrupt"), key_bytes(&agent)),
        (rc("older-record-before-counter-moved", "firmware mixes a monotonic counter into its key and moved it from 1 to 2 when sequence 2 replaced sequence 1: the record sealed at counter 1, put back with the voided license, no longer verifies", license(&r1), activated.clone(), T0 + 21 * DAY, after_r1.to_bytes_with(Some(&at(1))).to_vec(), "state_corrupt"), key_bytes(&at(2))),
        (rc("keyed-recovery-accepts-fresh-license", "a keyed recovery state accepts a license issued after the recovery", license(&recovery_fresh), activated, T0 + 40 * DAY + HOUR, State::recovery(T0 + 40 * DAY).to_bytes_with(k).to_vec(), "renewal_due"), key_bytes(&agent)),
    ]
}

fn state_json() -> Json {
    let ring = keyring();
    let vectors: Vec<Json> = keyed_runtime_cases()
        .into_iter()
        .map(|(c, key)| case_json(&c, Some(&key), &ring))
        .collect();
    json!({
        "note": "Keyed state records (spec/RUNTIME.md sections 6.6 and 9). key_derivation: StateKey = HKDF-SHA256(salt \"tessera-state-key-v1\", IKM secret, info context), 32 bytes. records: decode record under state_key (null: an unkeyed reader); when expected is ok, unkeyed is the same state as a version-1 record. vectors: as in runtime.json, with state_in decoded and state_out sealed under state_key. Keyring: keys.json.",
        "key_derivation": derivation_json(),
        "records": records_json(),
        "vectors": vectors,
    })
}

/// The keyed state vector file: (file name, content).
pub fn state_file() -> (String, String) {
    (
        "state.json".into(),
        serde_json::to_string_pretty(&state_json()).unwrap() + "\n",
    )
}
