//! Tests of the C ABI: the exported functions called directly, as C calls
//! them, on every vector of `spec/vectors/` and on the argument checks.

extern crate std;

use core::ffi::c_void;
use std::boxed::Box;
use std::ffi::CStr;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::Value;

use super::*;

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors");

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{VECTORS}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn cstr(p: *const c_char) -> String {
    // SAFETY: (test) every pointer passed here comes from a function of
    // this crate returning a static NUL-terminated string.
    #[allow(unsafe_code)]
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().unwrap().to_string()
}

/// The keyring of `keys.json`, read once per test run (parsing JSON is
/// slow under Miri).
fn keyring() -> Vec<TesseraKeyEntry> {
    static RING: std::sync::OnceLock<Vec<TesseraKeyEntry>> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        json("keys.json")["keyring"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| TesseraKeyEntry {
                kid: hex_of(&k["kid"]).try_into().unwrap(),
                public_key: hex_of(&k["public_key"]).try_into().unwrap(),
                valid_from: k["valid_from"].as_i64().unwrap(),
                valid_until: k["valid_until"].as_i64().unwrap_or(i64::MAX),
                retired: u8::from(k["retired"].as_bool().unwrap()),
            })
            .collect()
    })
    .clone()
}

fn decision() -> Box<TesseraDecision> {
    Box::new(TesseraDecision::EMPTY)
}

/// Owns the buffers a `TesseraIdentity` points into.
struct Device {
    values: Vec<Vec<u8>>,
    kinds: Vec<u8>,
    components: Vec<TesseraComponent>,
    sw: Option<String>,
    hw: Option<String>,
}

impl Device {
    fn from_json(d: &Value) -> Self {
        let mut values = Vec::new();
        let mut kinds = Vec::new();
        for c in d["components"].as_array().unwrap() {
            kinds.push(u8::try_from(c["kind"].as_u64().unwrap()).unwrap());
            values.push(match c.get("raw_hex") {
                Some(h) => hex_of(h),
                None => c["raw"].as_str().unwrap().as_bytes().to_vec(),
            });
        }
        let text = |v: &Value| v.as_str().map(str::to_string);
        let mut dev = Self {
            values,
            kinds,
            components: Vec::new(),
            sw: text(&d["sw_serial"]),
            hw: text(&d["hw_serial"]),
        };
        dev.components = dev
            .kinds
            .iter()
            .zip(&dev.values)
            .map(|(k, v)| TesseraComponent {
                kind: *k,
                value: v.as_ptr(),
                value_len: v.len(),
            })
            .collect();
        dev
    }

    /// The sample appliance (`samples::SAMPLE_DEVICE_RAW`) after its first
    /// activation.
    fn sample() -> Self {
        Self::from_json(&serde_json::json!({
            "sw_serial": "SW-2026-000123",
            "hw_serial": " hw-7f3a-0042\n",
            "components": [
                {"kind": 3, "raw": "00:16:3E:5A:1B:2C"},
                {"kind": 5, "raw": "{4C4C4544-0042-3510-8056-B4C04F4E3232}"},
                {"kind": 6, "raw": "  S3Z9NB0K123456  "},
            ],
        }))
    }

    fn identity(&self) -> TesseraIdentity {
        let text = |s: &Option<String>| {
            s.as_ref().map_or((core::ptr::null(), 0), |s| {
                (s.as_ptr().cast::<c_char>(), s.len())
            })
        };
        let (sw_serial, sw_serial_len) = text(&self.sw);
        let (hw_serial, hw_serial_len) = text(&self.hw);
        TesseraIdentity {
            sw_serial,
            sw_serial_len,
            hw_serial,
            hw_serial_len,
            components: if self.components.is_empty() {
                core::ptr::null()
            } else {
                self.components.as_ptr()
            },
            components_len: self.components.len(),
        }
    }
}

/// The typical license of `licenses.json`, read once per test run.
fn typical() -> Vec<u8> {
    static TYPICAL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TYPICAL
        .get_or_init(|| {
            let v = json("licenses.json");
            let typical = v["vectors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == "typical")
                .unwrap();
            hex_of(&typical["cbor"])
        })
        .clone()
}

fn verify_c(
    license: &[u8],
    keys: &[TesseraKeyEntry],
    device: &Device,
    now: i64,
    state: &mut [u8],
    d: &mut TesseraDecision,
) -> i32 {
    let id = device.identity();
    tessera_verify(
        license.as_ptr(),
        license.len(),
        keys.as_ptr(),
        keys.len(),
        &id,
        now,
        state.as_mut_ptr(),
        state.len(),
        d,
    )
}

fn new_state() -> [u8; TESSERA_STATE_LEN] {
    let mut s = [0u8; TESSERA_STATE_LEN];
    assert_eq!(tessera_state_new(s.as_mut_ptr(), s.len()), TESSERA_OK);
    s
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the vector loops verify ~100 signatures, hours under Miri; the pointer layer they go through is covered by the other tests"
)]
fn every_license_vector_gives_its_expected_code() {
    let keys = keyring();
    let vectors = json("licenses.json");
    let vectors = vectors["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 50);
    for v in vectors {
        let bytes = hex_of(&v["cbor"]);
        let mut d = decision();
        let status = tessera_decode_license(
            bytes.as_ptr(),
            bytes.len(),
            keys.as_ptr(),
            keys.len(),
            &mut *d,
        );
        let name = v["name"].as_str().unwrap();
        assert_eq!(
            cstr(tessera_status_code(status)),
            v["expected"].as_str().unwrap(),
            "{name}"
        );
        if status == TESSERA_OK {
            let s = &v["decoded"];
            assert_eq!(d.issued_at, s["issued_at"].as_i64().unwrap(), "{name}");
            assert_eq!(d.lease_end, s["lease_end"].as_i64().unwrap(), "{name}");
            assert_eq!(
                i64::from(d.sequence),
                s["sequence"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                i64::from(d.platform),
                s["platform"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                cstr(d.serial.as_ptr()),
                s["serial"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(d.license_len as usize, bytes.len());
            assert_eq!(d.verdict, TESSERA_VERDICT_NONE);
            // Decoding alone grants nothing.
            let mut users = 0u64;
            assert_eq!(tessera_total_users(&*d, &mut users), TESSERA_E_NO_SERVICE);
        } else {
            assert_eq!(d.license_len, 0, "{name}");
        }
    }
}

/// Reads the grants summary of `spec/RUNTIME.md` §9 through the C
/// queries.
fn grants_summary(d: &TesseraDecision) -> Value {
    let mut users = 0u64;
    assert_eq!(tessera_total_users(d, &mut users), TESSERA_OK);
    let mut enabled = 0;
    for i in 0.. {
        let mut f = TesseraFeature::default();
        match tessera_feature_at(d, i, &mut f) {
            TESSERA_OK => enabled += u32::from(f.enabled),
            TESSERA_E_NOT_FOUND => break,
            other => panic!("feature_at: {other}"),
        }
    }
    let mut services = Vec::new();
    for i in 0.. {
        let mut s = TesseraService::default();
        match tessera_service_at(d, i, &mut s) {
            TESSERA_OK => services.push(serde_json::json!([s.code, s.start, s.end])),
            TESSERA_E_NOT_FOUND => break,
            other => panic!("service_at: {other}"),
        }
    }
    let mut units = 0u32;
    assert_eq!(tessera_storage_units(d, &mut units), TESSERA_OK);
    let mut role = -1;
    let mut server = [0 as c_char; TESSERA_SERIAL_CAP];
    assert_eq!(
        tessera_sharing(d, &mut role, server.as_mut_ptr(), server.len()),
        TESSERA_OK
    );
    let role = match role {
        TESSERA_ROLE_STANDALONE => Value::from("standalone"),
        TESSERA_ROLE_SERVER => Value::from("server"),
        TESSERA_ROLE_CLIENT => serde_json::json!({"client_of": cstr(server.as_ptr())}),
        other => panic!("role {other}"),
    };
    serde_json::json!({
        "features_enabled": enabled,
        "role": role,
        "services": services,
        "storage_gb": u64::from(units) * 10,
        "total_users": users,
    })
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the vector loops verify ~100 signatures, hours under Miri; the pointer layer they go through is covered by the other tests"
)]
fn every_runtime_vector_gives_its_expected_decision() {
    let keys = keyring();
    let vectors = json("runtime.json");
    let vectors = vectors["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let license = hex_of(&v["license"]);
        let device = Device::from_json(&v["device"]);
        let mut state = hex_of(&v["state_in"]);
        let mut d = decision();
        let now = v["now"].as_i64().unwrap();
        let status = verify_c(&license, &keys, &device, now, &mut state, &mut d);
        let e = &v["expected"];
        assert_eq!(
            cstr(tessera_status_code(status)),
            e["result"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(&state),
            e["state_out"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            d.state_changed == 1,
            v["state_in"] != e["state_out"],
            "{name}"
        );
        match status {
            TESSERA_OK => {
                let verdict = &e["verdict"];
                assert_eq!(
                    cstr(tessera_verdict_name(d.verdict)),
                    verdict["code"].as_str().unwrap(),
                    "{name}"
                );
                if let Some(days) = verdict.get("days_left") {
                    assert_eq!(i64::from(d.days_left), days.as_i64().unwrap(), "{name}");
                }
                if let Some(until) = verdict.get("until") {
                    assert_eq!(d.grace_until, until.as_i64().unwrap(), "{name}");
                }
                assert_eq!(d.next_check, e["next_check"].as_i64().unwrap(), "{name}");
                assert_eq!(
                    d.days_since_renewal,
                    e["days_since_renewal"].as_i64().unwrap_or(-1),
                    "{name}"
                );
                assert_eq!(
                    i64::from(d.matched_components),
                    e["matched_components"].as_i64().unwrap(),
                    "{name}"
                );
                if e["grants"].is_null() {
                    let mut users = 0u64;
                    assert_eq!(
                        tessera_total_users(&*d, &mut users),
                        TESSERA_E_NO_SERVICE,
                        "{name}"
                    );
                    assert_eq!(d.full_service, 0, "{name}");
                } else {
                    assert_eq!(grants_summary(&d), e["grants"], "{name}");
                    assert_eq!(d.full_service, 1, "{name}");
                }
            }
            TESSERA_E_WRONG_DEVICE => {
                assert_eq!(
                    i64::from(d.wrong_device_matched),
                    e["matched"].as_i64().unwrap(),
                    "{name}"
                );
                assert_eq!(
                    i64::from(d.wrong_device_needed),
                    e["needed"].as_i64().unwrap(),
                    "{name}"
                );
            }
            TESSERA_E_SUPERSEDED => {
                assert_eq!(
                    i64::from(d.superseded_sequence),
                    e["seq"].as_i64().unwrap(),
                    "{name}"
                );
            }
            _ => assert_eq!(d.verdict, TESSERA_VERDICT_NONE, "{name}"),
        }
    }
}

#[test]
fn entitlement_queries_on_the_typical_license() {
    let keys = keyring();
    let license = typical();
    let (mut d, mut state) = verified_with_state();
    let now = 1_767_225_600 + 3_600;
    assert_eq!(d.verdict, TESSERA_VERDICT_VALID);
    assert_eq!(d.state_changed, 1);
    assert_eq!(cstr(d.serial.as_ptr()), "SW-2026-000123");
    assert_eq!(d.term_cycle, 1);

    let mut n = 0u32;
    assert_eq!(tessera_profile_count(&*d, 1, &mut n), TESSERA_OK);
    assert_eq!(n, 20);
    assert_eq!(tessera_profile_count(&*d, 999, &mut n), TESSERA_OK);
    assert_eq!(n, 0);
    let (mut code, mut count) = (0u16, 0u32);
    assert_eq!(
        tessera_profile_at(&*d, 5, &mut code, &mut count),
        TESSERA_OK
    );
    assert_eq!((code, count), (6, 0));
    assert_eq!(
        tessera_profile_at(&*d, 6, &mut code, &mut count),
        TESSERA_E_NOT_FOUND
    );
    assert_eq!(tessera_base_count(&*d, 4, &mut n), TESSERA_OK);
    assert_eq!(n, 52);
    assert_eq!(tessera_addon_count(&*d, 4, 5, &mut n), TESSERA_OK);
    assert_eq!(n, 30);
    assert_eq!(tessera_addon_count(&*d, 2, 5, &mut n), TESSERA_OK);
    assert_eq!(n, 0);
    let mut f = TesseraFeature::default();
    assert_eq!(tessera_feature(&*d, 1, &mut f), TESSERA_OK);
    assert_eq!((f.licensed, f.enabled, f.hidden), (1, 1, 0));
    assert_eq!(tessera_feature(&*d, 9, &mut f), TESSERA_OK);
    assert_eq!(f.hidden, 1);
    assert_eq!(tessera_feature(&*d, 500, &mut f), TESSERA_OK);
    assert_eq!(
        f,
        TesseraFeature {
            code: 500,
            ..TesseraFeature::default()
        }
    );
    let mut s = TesseraService::default();
    assert_eq!(tessera_service(&*d, 2, &mut s), TESSERA_OK);
    assert_eq!(
        (s.licensed, s.start, s.end),
        (1, 1_785_542_400, 1_798_761_600)
    );

    // The same check again changes nothing but the last time seen (under
    // Miri, where a check takes half a minute, once is enough).
    if !cfg!(miri) {
        let before = state;
        assert_eq!(
            verify_c(&license, &keys, &Device::sample(), now, &mut state, &mut d),
            TESSERA_OK
        );
        assert_eq!((d.state_changed, state), (0, before));
    }
}

#[test]
fn errors_leave_the_state_and_report_details() {
    let keys = keyring();
    let license = typical();
    let mut state = new_state();
    let before = state;
    let mut other = Device::sample();
    other.hw = Some("HW-1111-2222".into());
    other.values = std::vec![b"00:16:3e:00:00:01".to_vec()];
    other.kinds = std::vec![TESSERA_KIND_NIC_MAC];
    other.components = std::vec![TesseraComponent {
        kind: TESSERA_KIND_NIC_MAC,
        value: other.values[0].as_ptr(),
        value_len: other.values[0].len(),
    }];
    let mut d = decision();
    assert_eq!(
        verify_c(&license, &keys, &other, 1_767_225_600, &mut state, &mut d),
        TESSERA_E_WRONG_DEVICE
    );
    assert_eq!((d.wrong_device_matched, d.wrong_device_needed), (0, 3));
    assert_eq!(
        (d.verdict, d.license_len, d.state_changed),
        (TESSERA_VERDICT_NONE, 0, 0)
    );
    assert_eq!(state, before);
    let mut n = 0u32;
    assert_eq!(tessera_storage_units(&*d, &mut n), TESSERA_E_NO_LICENSE);

    // A corrupt record is reported, never replaced by a fresh one.
    let mut corrupt = state;
    corrupt[10] ^= 1;
    assert_eq!(
        verify_c(
            &license,
            &keys,
            &Device::sample(),
            1_767_225_600,
            &mut corrupt,
            &mut d
        ),
        TESSERA_E_STATE_CORRUPT
    );
    let mut short = [0u8; 63];
    assert_eq!(
        verify_c(
            &license,
            &keys,
            &Device::sample(),
            1_767_225_600,
            &mut short,
            &mut d
        ),
        TESSERA_E_BUFFER
    );
}

#[test]
fn bad_identity_values_are_refused() {
    let keys = keyring();
    let license = typical();
    let mut state = new_state();
    let mut d = decision();
    let mut dev = Device::sample();
    dev.values[0] = b"not a mac".to_vec();
    dev.components[0].value = dev.values[0].as_ptr();
    dev.components[0].value_len = dev.values[0].len();
    assert_eq!(
        verify_c(&license, &keys, &dev, 1_767_225_600, &mut state, &mut d),
        TESSERA_E_IDENTITY_INVALID
    );
    let mut dev = Device::sample();
    dev.sw = Some(String::new());
    assert_eq!(
        verify_c(&license, &keys, &dev, 1_767_225_600, &mut state, &mut d),
        TESSERA_E_IDENTITY_EMPTY
    );
    let mut dev = Device::sample();
    dev.components[1].kind = 99;
    assert_eq!(
        verify_c(&license, &keys, &dev, 1_767_225_600, &mut state, &mut d),
        TESSERA_E_IDENTITY_UNKNOWN_KIND
    );
}

#[test]
fn null_pointers_are_refused() {
    let keys = keyring();
    let license = typical();
    let dev = Device::sample();
    let id = dev.identity();
    let mut state = new_state();
    let mut d = decision();
    let s = state.as_mut_ptr();
    let sl = state.len();
    let (lp, ll, kp, kl) = (license.as_ptr(), license.len(), keys.as_ptr(), keys.len());
    assert_eq!(
        tessera_verify(core::ptr::null(), ll, kp, kl, &id, 0, s, sl, &mut *d),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_verify(lp, ll, core::ptr::null(), kl, &id, 0, s, sl, &mut *d),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_verify(lp, ll, kp, kl, core::ptr::null(), 0, s, sl, &mut *d),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_verify(lp, ll, kp, kl, &id, 0, core::ptr::null_mut(), sl, &mut *d),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_verify(lp, ll, kp, kl, &id, 0, s, sl, core::ptr::null_mut()),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_decode_license(lp, ll, kp, kl, core::ptr::null_mut()),
        TESSERA_E_NULL
    );
    assert_eq!(tessera_state_new(core::ptr::null_mut(), 64), TESSERA_E_NULL);
    assert_eq!(
        tessera_total_users(core::ptr::null(), &mut 0),
        TESSERA_E_NULL
    );
    assert_eq!(
        tessera_total_users(&*d, core::ptr::null_mut()),
        TESSERA_E_NULL
    );
    let mut out_len = 0usize;
    let mut buf = [0u8; 16];
    assert_eq!(
        tessera_armor_decode(
            core::ptr::null(),
            3,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out_len
        ),
        TESSERA_E_NULL
    );
    // A component with a NULL value.
    let mut dev = Device::sample();
    dev.components[0].value = core::ptr::null();
    let id = dev.identity();
    assert_eq!(
        tessera_verify(lp, ll, kp, kl, &id, 0, s, sl, &mut *d),
        TESSERA_E_NULL
    );
    // An empty keyring, a keyring over the cap, a kid that is not the
    // key's.
    // The device outlives the identity that points into it.
    let sample = Device::sample();
    let id = sample.identity();
    assert_eq!(
        tessera_verify(lp, ll, kp, 0, &id, 0, s, sl, &mut *d),
        TESSERA_E_ARGUMENT
    );
    let many = std::vec![keys[0]; TESSERA_MAX_KEYS + 1];
    assert_eq!(
        tessera_verify(lp, ll, many.as_ptr(), many.len(), &id, 0, s, sl, &mut *d),
        TESSERA_E_ARGUMENT
    );
    let mut wrong = keys.clone();
    wrong[0].kid[0] ^= 1;
    assert_eq!(
        tessera_verify(lp, ll, wrong.as_ptr(), wrong.len(), &id, 0, s, sl, &mut *d),
        TESSERA_E_ARGUMENT
    );
}

#[test]
fn a_keyring_with_a_kid_twice_is_refused_in_any_order() {
    let keys = keyring();
    let license = typical();
    let dev = Device::sample();
    let mut retired = keys[0];
    retired.retired = 1;
    for ring in [
        std::vec![keys[0], retired],
        std::vec![retired, keys[0]],
        std::vec![keys[1], keys[0], keys[2], keys[0]],
    ] {
        let mut state = new_state();
        let before = state;
        let mut d = decision();
        assert_eq!(
            verify_c(&license, &ring, &dev, 1_767_225_600, &mut state, &mut d),
            TESSERA_E_DUPLICATE_KID
        );
        assert_eq!(state, before);
        assert_eq!(
            tessera_decode_license(
                license.as_ptr(),
                license.len(),
                ring.as_ptr(),
                ring.len(),
                &mut *d
            ),
            TESSERA_E_DUPLICATE_KID
        );
    }
}

#[test]
fn overlapping_buffers_are_refused() {
    let keys = keyring();
    let dev = Device::sample();
    let id = dev.identity();
    let mut d = decision();
    // The license given is the decision's own copy, which the call writes:
    // both pointers come from one raw pointer, as C would pass them.
    let license = typical();
    d.license[..license.len()].copy_from_slice(&license);
    let dp: *mut TesseraDecision = &raw mut *d;
    let lp = dp
        .cast::<u8>()
        .cast_const()
        .wrapping_add(core::mem::offset_of!(TesseraDecision, license));
    let mut state = new_state();
    assert_eq!(
        tessera_verify(
            lp,
            license.len(),
            keys.as_ptr(),
            keys.len(),
            &id,
            0,
            state.as_mut_ptr(),
            64,
            dp
        ),
        TESSERA_E_ARGUMENT
    );
    // The state buffer inside the license.
    let mut both = license.clone();
    let sp = both.as_mut_ptr();
    assert_eq!(
        tessera_verify(
            sp.cast_const(),
            both.len(),
            keys.as_ptr(),
            keys.len(),
            &id,
            0,
            sp,
            64,
            dp
        ),
        TESSERA_E_ARGUMENT
    );
    let mut out = [0u8; 64];
    let a = new_state();
    let op = out.as_mut_ptr();
    assert_eq!(
        tessera_state_select(op.cast_const(), 64, a.as_ptr(), 64, op, 64),
        TESSERA_E_ARGUMENT
    );
}

#[test]
fn armor_decode_of_the_sample_files() {
    let keys = keyring();
    // Under Miri one file: a signature check takes half a minute there.
    let files = [
        ("typical.lic", 495),
        ("minimal.lic", 250),
        ("maximal.lic", 3188),
    ];
    for (file, len) in files.into_iter().take(if cfg!(miri) { 1 } else { 3 }) {
        let text = std::fs::read_to_string(format!("{VECTORS}/{file}")).unwrap();
        let mut buf = [0u8; TESSERA_MAX_LICENSE_LEN];
        let mut n = 0usize;
        let status = tessera_armor_decode(
            text.as_ptr().cast::<c_char>(),
            text.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        );
        assert_eq!(status, TESSERA_OK, "{file}");
        assert_eq!(n, len, "{file}");
        if cfg!(miri) {
            // The signature checks are the other tests' (half a minute
            // each under Miri); the armor is this one's.
            continue;
        }
        let mut d = decision();
        assert_eq!(
            tessera_decode_license(buf.as_ptr(), n, keys.as_ptr(), keys.len(), &mut *d),
            TESSERA_OK,
            "{file}"
        );
    }
    let mut buf = [0u8; 8];
    let mut n = 0usize;
    let text = "no armor here";
    assert_eq!(
        tessera_armor_decode(
            text.as_ptr().cast(),
            text.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n
        ),
        TESSERA_E_ARMOR_MISSING_BEGIN
    );
}

#[test]
fn state_helpers() {
    let fresh = new_state();
    let mut rec = [0u8; 64];
    assert_eq!(
        tessera_state_recovery(1_767_225_600, rec.as_mut_ptr(), rec.len()),
        TESSERA_OK
    );
    assert_eq!(State::from_bytes(&rec), Ok(State::recovery(1_767_225_600)));
    assert_eq!(State::from_bytes(&fresh), Ok(State::new()));
    let mut out = [0u8; 64];
    let mut torn = rec;
    torn[3] ^= 0x10;
    assert_eq!(
        tessera_state_select(torn.as_ptr(), 64, rec.as_ptr(), 64, out.as_mut_ptr(), 64),
        TESSERA_OK
    );
    assert_eq!(out, rec);
    assert_eq!(
        tessera_state_select(torn.as_ptr(), 64, torn.as_ptr(), 64, out.as_mut_ptr(), 64),
        TESSERA_E_STATE_CORRUPT
    );
    // A wrong length is refused before the buffer is touched, for buffers
    // really that long.
    let mut long = [7u8; 65];
    assert_eq!(tessera_state_new(long.as_mut_ptr(), 65), TESSERA_E_BUFFER);
    assert_eq!(tessera_state_new(long.as_mut_ptr(), 63), TESSERA_E_BUFFER);
    assert_eq!(long, [7u8; 65]);
}

#[test]
fn names_and_version() {
    assert_eq!(cstr(tessera_verdict_name(TESSERA_VERDICT_GRACE)), "grace");
    assert_eq!(cstr(tessera_verdict_name(42)), "unknown");
    assert_eq!(cstr(tessera_version()), env!("CARGO_PKG_VERSION"));
    for v in [
        Verdict::NotYetValid,
        Verdict::Valid,
        Verdict::RenewalDue { days_left: 3 },
        Verdict::Grace { until: 0 },
        Verdict::Expired {
            mode: tessera_verifier::claims::AfterGrace::EmergencyOnly,
        },
        Verdict::Expired {
            mode: tessera_verifier::claims::AfterGrace::Locked,
        },
    ] {
        assert_eq!(cstr(tessera_verdict_name(verdict_code(v))), v.code());
    }
}

#[test]
fn key_entry_layout_matches_the_keyring_export() {
    use core::mem::{offset_of, size_of};
    // `struct tessera_key_entry` of keys/src/export.rs and tessera.h.
    assert_eq!(size_of::<TesseraKeyEntry>(), 64);
    assert_eq!(offset_of!(TesseraKeyEntry, kid), 0);
    assert_eq!(offset_of!(TesseraKeyEntry, public_key), 8);
    assert_eq!(offset_of!(TesseraKeyEntry, valid_from), 40);
    assert_eq!(offset_of!(TesseraKeyEntry, valid_until), 48);
    assert_eq!(offset_of!(TesseraKeyEntry, retired), 56);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a check of source text, without pointers: nothing for Miri"
)]
fn lints_mirror_the_workspace() {
    let read = |p: &str| -> toml::Table {
        let text = std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        text.parse().unwrap()
    };
    let root = read("../../Cargo.toml");
    let mut workspace = root["workspace"]["lints"].as_table().unwrap().clone();
    let ours = read("Cargo.toml")["lints"].as_table().unwrap().clone();
    // The one intended difference (see Cargo.toml).
    assert_eq!(workspace["rust"]["unsafe_code"].as_str(), Some("forbid"));
    assert_eq!(ours["rust"]["unsafe_code"].as_str(), Some("deny"));
    workspace["rust"]
        .as_table_mut()
        .unwrap()
        .insert("unsafe_code".into(), "deny".into());
    assert_eq!(ours, workspace);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a check of source text, without pointers: nothing for Miri"
)]
fn header_is_in_sync_with_the_exports() {
    // The full check regenerates the header with cbindgen (.ci/fw-capi.sh);
    // this catches a forgotten regeneration without cbindgen installed.
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/tessera.h")).unwrap();
    let source =
        include_str!("lib.rs").to_string() + include_str!("status.rs") + include_str!("request.rs");
    let exports: Vec<&str> = source
        .split("pub extern \"C\" fn ")
        .skip(1)
        .map(|s| s.split('(').next().unwrap())
        .collect();
    assert!(exports.len() >= 20);
    for f in exports {
        assert!(
            header.contains(&format!("{f}(")),
            "{f} missing from tessera.h"
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a check of source text, without pointers: nothing for Miri"
)]
fn unsafe_code_stays_in_the_pointer_module() {
    // Outside tests, `unsafe` blocks exist only in src/ptr.rs (two, each
    // with its SAFETY comment); elsewhere `unsafe` is only `no_mangle`.
    let block = concat!("unsafe", " {");
    for (file, text) in [
        ("lib.rs", include_str!("lib.rs")),
        ("status.rs", include_str!("status.rs")),
        ("request.rs", include_str!("request.rs")),
    ] {
        assert!(!text.contains(block), "unsafe block in {file}");
    }
    assert_eq!(include_str!("ptr.rs").matches(block).count(), 2);
    assert_eq!(include_str!("ptr.rs").matches("// SAFETY:").count(), 2);
}

/// A decision full of a byte pattern, to see what a call writes.
fn stamped() -> Box<TesseraDecision> {
    let mut d = decision();
    d.verdict = 0x5a5a_5a5a;
    d.license.fill(0x5a);
    d.serial.fill(0x5a);
    d.check = 0x5a5a_5a5a;
    d
}

fn same_decision(a: &TesseraDecision, b: &TesseraDecision) -> bool {
    // Every field; the struct has padding, so no byte comparison.
    let key = |d: &TesseraDecision| {
        (
            d.verdict,
            d.days_left,
            d.next_check,
            d.license_len,
            d.check,
            d.serial,
            d.license,
            d.state_changed,
        )
    };
    key(a) == key(b)
}

#[test]
fn lengths_and_pointers_are_checked_before_anything_is_written() {
    let keys = keyring();
    let license = typical();
    let dev = Device::sample();
    for state_len in [0, 63, 65, 128] {
        let mut state = [3u8; 128];
        let mut d = stamped();
        let before = stamped();
        let id = dev.identity();
        assert_eq!(
            tessera_verify(
                license.as_ptr(),
                license.len(),
                keys.as_ptr(),
                keys.len(),
                &id,
                0,
                state.as_mut_ptr(),
                state_len,
                &mut *d
            ),
            TESSERA_E_BUFFER,
            "{state_len}"
        );
        assert!(same_decision(&d, &before), "{state_len}");
        assert_eq!(state, [3u8; 128]);
    }
    // A NULL state: the decision is not written either.
    let mut d = stamped();
    let id = dev.identity();
    assert_eq!(
        tessera_verify(
            license.as_ptr(),
            license.len(),
            keys.as_ptr(),
            keys.len(),
            &id,
            0,
            core::ptr::null_mut(),
            TESSERA_STATE_LEN,
            &mut *d
        ),
        TESSERA_E_NULL
    );
    assert!(same_decision(&d, &stamped()));
    // A kid that is not its key's: nothing written.
    let mut wrong = keys.clone();
    wrong[0].kid[0] ^= 1;
    let mut state = new_state();
    assert_eq!(
        verify_c(&license, &wrong, &dev, 0, &mut state, &mut d),
        TESSERA_E_ARGUMENT
    );
    assert!(same_decision(&d, &stamped()));
    assert_eq!(state, new_state());
}

#[test]
fn armor_decode_into_a_short_buffer_is_the_buffer_status_and_leaves_zeros() {
    let text = std::fs::read_to_string(format!("{VECTORS}/typical.lic")).unwrap();
    for cap in [0usize, 1, 100, 494] {
        let mut buf = std::vec![0x5au8; cap.max(1)];
        let mut n = 77usize;
        let status = tessera_armor_decode(
            text.as_ptr().cast(),
            text.len(),
            buf.as_mut_ptr(),
            cap,
            &mut n,
        );
        assert_eq!(status, TESSERA_E_BUFFER, "{cap}");
        assert_eq!(n, 0);
        assert!(
            buf[..cap].iter().all(|&b| b == 0),
            "{cap}: partial data left"
        );
    }
    // Exactly enough: decoded, and nothing written past it.
    let mut buf = [0x5au8; 600];
    let mut n = 0usize;
    assert_eq!(
        tessera_armor_decode(
            text.as_ptr().cast(),
            text.len(),
            buf.as_mut_ptr(),
            495,
            &mut n
        ),
        TESSERA_OK
    );
    assert_eq!(n, 495);
    assert!(buf[495..].iter().all(|&b| b == 0x5a));
    // Broken armor: the buffer is cleared too.
    let broken = text.replace("-----END", "-----XND");
    let mut buf = [0x5au8; TESSERA_MAX_LICENSE_LEN];
    assert_eq!(
        tessera_armor_decode(
            broken.as_ptr().cast(),
            broken.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n
        ),
        TESSERA_E_ARMOR_MISSING_END
    );
    assert!(buf.iter().all(|&b| b == 0));
}

/// A verified decision of the typical license and the state after it,
/// made once per test run (a signature check takes half a minute under
/// Miri).
fn verified_with_state() -> (Box<TesseraDecision>, [u8; TESSERA_STATE_LEN]) {
    static ONCE: std::sync::OnceLock<(Box<TesseraDecision>, [u8; TESSERA_STATE_LEN])> =
        std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let keys = keyring();
        let mut state = new_state();
        let mut d = decision();
        let now = 1_767_225_600 + 3_600;
        let status = verify_c(
            &typical(),
            &keys,
            &Device::sample(),
            now,
            &mut state,
            &mut d,
        );
        assert_eq!(status, TESSERA_OK);
        (d, state)
    })
    .clone()
}

fn verified() -> Box<TesseraDecision> {
    verified_with_state().0
}

#[test]
fn queries_refuse_a_decision_verify_did_not_fill() {
    let d = verified();
    let mut users = 0u64;
    assert_eq!(tessera_total_users(&*d, &mut users), TESSERA_OK);
    assert_eq!(users, 52);
    // Made by hand from a verified one: the verdict changed.
    let mut forged = d.clone();
    forged.verdict = TESSERA_VERDICT_VALID;
    forged.license[40] ^= 1;
    let mut n = 9u64;
    assert_eq!(tessera_total_users(&*forged, &mut n), TESSERA_E_DECISION);
    assert_eq!(n, 9, "nothing written");
    let mut expired = d.clone();
    expired.verdict = TESSERA_VERDICT_EXPIRED_LOCKED;
    assert_eq!(tessera_total_users(&*expired, &mut n), TESSERA_E_DECISION);
    // Never filled: all zero, as a C static is.
    let zero = decision();
    assert_eq!(tessera_total_users(&*zero, &mut n), TESSERA_E_DECISION);
    // A decision made entirely by hand, license copied in, verdict VALID.
    let mut hand = decision();
    let license = typical();
    hand.license[..license.len()].copy_from_slice(&license);
    hand.license_len = u32::try_from(license.len()).unwrap();
    hand.verdict = TESSERA_VERDICT_VALID;
    assert_eq!(tessera_total_users(&*hand, &mut n), TESSERA_E_DECISION);
    assert_eq!(n, 9);
}

#[test]
fn queries_write_all_outputs_or_none() {
    let d = verified();
    let (mut code, mut count) = (7u16, 7u32);
    assert_eq!(
        tessera_profile_at(&*d, 6, &mut code, &mut count),
        TESSERA_E_NOT_FOUND
    );
    assert_eq!((code, count), (7, 7));
    assert_eq!(
        tessera_profile_at(&*d, 0, &mut code, core::ptr::null_mut()),
        TESSERA_E_NULL
    );
    assert_eq!(code, 7);
    let mut role = 9;
    let mut server = [0x5a as c_char; 4];
    // The typical license is standalone: an empty serial fits 4 bytes.
    assert_eq!(
        tessera_sharing(&*d, &mut role, server.as_mut_ptr(), 4),
        TESSERA_OK
    );
    assert_eq!((role, server), (TESSERA_ROLE_STANDALONE, [0; 4]));
    let mut role = 9;
    let mut none = [0x5a as c_char; 1];
    assert_eq!(
        tessera_sharing(&*d, &mut role, none.as_mut_ptr(), 0),
        TESSERA_E_BUFFER
    );
    assert_eq!((role, none), (9, [0x5a]));
}

/// Signs with the seed `ctx` points to, as firmware holding its key does.
extern "C" fn seed_signer(ctx: *mut c_void, message: *const u8, len: usize, sig: *mut u8) -> i32 {
    tessera_ed25519_sign(ctx.cast_const().cast(), message, len, sig)
}

extern "C" fn failing_signer(_: *mut c_void, _: *const u8, _: usize, _: *mut u8) -> i32 {
    -1
}

fn params(seed: &[u8; 32]) -> TesseraRequestParams {
    let mut device_key = [0u8; 32];
    assert_eq!(
        tessera_ed25519_public_key(seed.as_ptr(), device_key.as_mut_ptr()),
        TESSERA_OK
    );
    TesseraRequestParams {
        created_at: 1_767_225_600,
        nonce: [9; 16],
        salt: [5; 16],
        device_key,
        platform: 0,
    }
}

fn encode_request(
    dev: &Device,
    state: &[u8],
    in_force: Option<&TesseraDecision>,
    seed: &mut [u8; 32],
    sign: TesseraSignFn,
    out: &mut [u8],
    n: &mut usize,
) -> i32 {
    let id = dev.identity();
    let p = params(seed);
    tessera_request_encode(
        &id,
        state.as_ptr(),
        state.len(),
        in_force.map_or(core::ptr::null(), |d| d),
        &p,
        sign,
        seed.as_mut_ptr().cast(),
        out.as_mut_ptr(),
        out.len(),
        n,
    )
}

#[test]
fn requests_from_c_decode_for_the_vendor() {
    let mut seed = [7u8; 32];
    // First activation: no license, HW serial only, a fresh salt.
    let mut dev = Device::sample();
    dev.sw = None;
    let mut out = [0u8; TESSERA_MAX_REQUEST_LEN];
    let mut n = 0;
    let fresh = new_state();
    assert_eq!(
        encode_request(
            &dev,
            &fresh,
            None,
            &mut seed,
            Some(seed_signer),
            &mut out,
            &mut n
        ),
        TESSERA_OK
    );
    let r = tessera_verifier::decode_request(&out[..n]).unwrap();
    assert_eq!((r.serial(), r.hw_serial()), (None, Some("HW-7F3A-0042")));
    assert_eq!(
        (r.current(), r.last_renewal(), r.salt()),
        (None, None, [5; 16])
    );
    assert_eq!(r.identity().len(), 4);
    // Byte for byte what the Rust encoder writes from the same content
    // (its signature is a minute more under Miri).
    if !cfg!(miri) {
        let data = r.to_data();
        let again = tessera_verifier::encode::sign_request(&data, |m| {
            use ed25519_dalek::Signer as _;
            Ok::<_, core::convert::Infallible>(
                ed25519_dalek::SigningKey::from_bytes(&[7; 32])
                    .sign(m)
                    .to_bytes(),
            )
        })
        .unwrap();
        assert_eq!(again, &out[..n]);
    }

    // Renewal: the SW serial, the license in force from the state, its salt.
    let (d, state) = verified_with_state();
    let mut n = 0;
    assert_eq!(
        encode_request(
            &Device::sample(),
            &state,
            Some(&d),
            &mut seed,
            Some(seed_signer),
            &mut out,
            &mut n
        ),
        TESSERA_OK
    );
    let r = tessera_verifier::decode_request(&out[..n]).unwrap();
    assert_eq!((r.serial(), r.hw_serial()), (Some("SW-2026-000123"), None));
    assert_eq!(r.current(), Some((d.license_id, d.sequence)));
    assert_eq!(r.last_renewal(), Some(1_767_225_600 + 3_600));
    let salt = tessera_verifier::decode_license_unverified(&typical())
        .unwrap()
        .binding()
        .salt;
    assert_eq!(r.salt(), salt);
    // The armored request, NUL-terminated, reads back.
    let mut text = [0x5au8; TESSERA_MAX_REQUEST_ARMOR_LEN];
    let mut t = 0;
    assert_eq!(
        tessera_armor_encode(
            out.as_ptr(),
            n,
            TESSERA_ARMOR_REQUEST,
            text.as_mut_ptr().cast(),
            text.len(),
            &mut t
        ),
        TESSERA_OK
    );
    assert_eq!(text[t], 0);
    let s = core::str::from_utf8(&text[..t]).unwrap();
    let mut back = [0u8; TESSERA_MAX_REQUEST_LEN];
    assert_eq!(
        tessera_verifier::armor::decode(s, tessera_verifier::armor::LABEL_REQUEST, &mut back)
            .map(<[u8]>::to_vec),
        Ok(out[..n].to_vec())
    );
}

#[test]
fn request_errors_leave_no_partial_request() {
    let mut seed = [7u8; 32];
    let dev = Device::sample();
    let state = new_state();
    let mut n = 5usize;
    // The signer fails.
    let mut out = [0x5au8; TESSERA_MAX_REQUEST_LEN];
    assert_eq!(
        encode_request(
            &dev,
            &state,
            None,
            &mut seed,
            Some(failing_signer),
            &mut out,
            &mut n
        ),
        TESSERA_E_SIGNER
    );
    assert!(out.iter().all(|&b| b == 0) && n == 0);
    // The signer holds another key than params.device_key.
    let mut other = [8u8; 32];
    let id = dev.identity();
    let p = params(&seed);
    let mut out = [0x5au8; TESSERA_MAX_REQUEST_LEN];
    assert_eq!(
        tessera_request_encode(
            &id,
            state.as_ptr(),
            state.len(),
            core::ptr::null(),
            &p,
            Some(seed_signer),
            other.as_mut_ptr().cast(),
            out.as_mut_ptr(),
            out.len(),
            &mut n
        ),
        TESSERA_E_SIGNER
    );
    assert!(out.iter().all(|&b| b == 0) && n == 0);
    // Too small a buffer.
    let mut small = [0x5au8; 100];
    n = 5;
    assert_eq!(
        encode_request(
            &dev,
            &state,
            None,
            &mut seed,
            Some(seed_signer),
            &mut small,
            &mut n
        ),
        TESSERA_E_BUFFER
    );
    assert!(small.iter().all(|&b| b == 0) && n == 0);
    // No signer; a state of the wrong length: nothing written.
    let mut out = [0x5au8; TESSERA_MAX_REQUEST_LEN];
    n = 5;
    assert_eq!(
        encode_request(&dev, &state, None, &mut seed, None, &mut out, &mut n),
        TESSERA_E_NULL
    );
    assert_eq!(
        encode_request(
            &dev,
            &state[..63],
            None,
            &mut seed,
            Some(seed_signer),
            &mut out,
            &mut n
        ),
        TESSERA_E_BUFFER
    );
    assert!(out.iter().all(|&b| b == 0x5a) && n == 5);
    // A corrupt state, a hand-made decision in force: cleared output.
    let mut corrupt = state;
    corrupt[9] ^= 1;
    assert_eq!(
        encode_request(
            &dev,
            &corrupt,
            None,
            &mut seed,
            Some(seed_signer),
            &mut out,
            &mut n
        ),
        TESSERA_E_STATE_CORRUPT
    );
    let hand = decision();
    assert_eq!(
        encode_request(
            &dev,
            &state,
            Some(&hand),
            &mut seed,
            Some(seed_signer),
            &mut out,
            &mut n
        ),
        TESSERA_E_DECISION
    );
    assert!(out.iter().all(|&b| b == 0) && n == 0);
}

#[test]
fn armor_encode_of_a_license_reads_back_and_short_buffers_are_cleared() {
    let license = typical();
    let mut text = [0u8; 1024];
    let mut t = 0usize;
    assert_eq!(
        tessera_armor_encode(
            license.as_ptr(),
            license.len(),
            TESSERA_ARMOR_LICENSE,
            text.as_mut_ptr().cast(),
            text.len(),
            &mut t
        ),
        TESSERA_OK
    );
    let sample = std::fs::read_to_string(format!("{VECTORS}/typical.lic")).unwrap();
    assert_eq!(core::str::from_utf8(&text[..t]).unwrap(), sample);
    // Exactly the text without room for the NUL: refused, cleared.
    let mut short = std::vec![0x5au8; t];
    assert_eq!(
        tessera_armor_encode(
            license.as_ptr(),
            license.len(),
            TESSERA_ARMOR_LICENSE,
            short.as_mut_ptr().cast(),
            short.len(),
            &mut t
        ),
        TESSERA_E_BUFFER
    );
    assert!(short.iter().all(|&b| b == 0) && t == 0);
    assert_eq!(
        tessera_armor_encode(
            license.as_ptr(),
            license.len(),
            7,
            text.as_mut_ptr().cast(),
            text.len(),
            &mut t
        ),
        TESSERA_E_ARGUMENT
    );
}

#[test]
fn ed25519_helpers_are_ed25519_dalek() {
    use ed25519_dalek::Signer as _;
    let seed = [42u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut pk = [0u8; 32];
    assert_eq!(
        tessera_ed25519_public_key(seed.as_ptr(), pk.as_mut_ptr()),
        TESSERA_OK
    );
    assert_eq!(pk, key.verifying_key().to_bytes());
    let mut sig = [0u8; 64];
    assert_eq!(
        tessera_ed25519_sign(seed.as_ptr(), b"abc".as_ptr(), 3, sig.as_mut_ptr()),
        TESSERA_OK
    );
    assert_eq!(sig, key.sign(b"abc").to_bytes());
    assert_eq!(
        tessera_ed25519_sign(core::ptr::null(), b"abc".as_ptr(), 3, sig.as_mut_ptr()),
        TESSERA_E_NULL
    );
}
