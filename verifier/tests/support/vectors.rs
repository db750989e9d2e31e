//! Builds every file of `spec/vectors/` from the published test keys and the
//! sample contents. Used by `examples/gen_vectors.rs` (writes the files) and
//! `tests/vectors.rs` (fails when the checked-in files differ).

use ciborium::value::Value;
use serde_json::{json, Value as Json};
use tessera_verifier::cbor::Writer;
use tessera_verifier::claims::{limits, Sharing};
use tessera_verifier::cose::{self, ObjectType};
use tessera_verifier::encode::{
    encode_license_payload, encode_request_payload, sign_request, LicenseData,
};
use tessera_verifier::samples::{self, seed_signer, DAY, T0};
use tessera_verifier::{armor, decode_license, key_id, KeyEntry, License};

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
        v("untagged", "COSE_Sign1 without its tag", typical_bytes[1..].to_vec(), "malformed.not_sign1"),
        v("array-of-3", "COSE array with 3 elements", { let mut b = typical_bytes.clone(); b[1] = 0x83; b }, "malformed.not_sign1"),
        v("indefinite-array", "indefinite-length COSE array", { let mut b = typical_bytes.clone(); b[1] = 0x9f; b.push(0xff); b }, "malformed.indefinite_length"),
        v("unprotected-not-empty", "a kid in the unprotected header", envelope(&good_protected, &[0xa1, 0x04, 0x48, 0, 0, 0, 0, 0, 0, 0, 0], &payload, 18), "malformed.bad_value"),
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
    ]
}
