//! Tests of the C ABI: the exported functions called directly, as C calls
//! them, on every vector of `spec/vectors/` and on the argument checks.

extern crate std;

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

fn keyring() -> Vec<TesseraKeyEntry> {
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

fn typical() -> Vec<u8> {
    let v = json("licenses.json");
    let typical = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "typical")
        .unwrap();
    hex_of(&typical["cbor"])
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
    let mut state = new_state();
    let mut d = decision();
    let now = 1_767_225_600 + 3_600;
    assert_eq!(
        verify_c(&license, &keys, &Device::sample(), now, &mut state, &mut d),
        TESSERA_OK
    );
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

    // The same check again changes nothing but the last time seen.
    let before = state;
    assert_eq!(
        verify_c(&license, &keys, &Device::sample(), now, &mut state, &mut d),
        TESSERA_OK
    );
    assert_eq!((d.state_changed, state), (0, before));
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
    let id = Device::sample().identity();
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
    // The license given is the decision's own copy, which the call writes.
    let license = typical();
    d.license[..license.len()].copy_from_slice(&license);
    let lp = d.license.as_ptr();
    let mut state = new_state();
    let dp: *mut TesseraDecision = &mut *d;
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
            &mut *d
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
    for (file, len) in [
        ("typical.lic", 495),
        ("minimal.lic", 250),
        ("maximal.lic", 3188),
    ] {
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
    assert_eq!(tessera_state_new(out.as_mut_ptr(), 65), TESSERA_E_BUFFER);
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
fn header_is_in_sync_with_the_exports() {
    // The full check regenerates the header with cbindgen (.ci/fw-capi.sh);
    // this catches a forgotten regeneration without cbindgen installed.
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/tessera.h")).unwrap();
    let source = include_str!("lib.rs").to_string() + include_str!("status.rs");
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
fn unsafe_code_stays_in_the_pointer_module() {
    // Outside tests, `unsafe` blocks exist only in src/ptr.rs (two, each
    // with its SAFETY comment); elsewhere `unsafe` is only `no_mangle`.
    let block = concat!("unsafe", " {");
    for (file, text) in [
        ("lib.rs", include_str!("lib.rs")),
        ("status.rs", include_str!("status.rs")),
    ] {
        assert!(!text.contains(block), "unsafe block in {file}");
    }
    assert_eq!(include_str!("ptr.rs").matches(block).count(), 2);
    assert_eq!(include_str!("ptr.rs").matches("// SAFETY:").count(), 2);
}
