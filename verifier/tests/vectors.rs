//! The checked-in vectors of `spec/vectors/` are exactly what the generator
//! makes, and every vector gives its expected result through the verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

#[path = "support/vectors.rs"]
mod vectors;

use std::path::PathBuf;

use tessera_verifier::{armor, decode_checkpoint, decode_license, decode_request, KeyEntry};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

#[test]
fn checked_in_vectors_are_up_to_date() {
    let mut stale = Vec::new();
    for (name, content) in vectors::files() {
        let path = dir().join(&name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "spec/vectors is stale ({stale:?}): run `cargo run -p tessera-verifier --features std --example gen_vectors` and commit the result together with spec/FORMAT.md"
    );
}

fn load(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn keyring_from_file() -> Vec<KeyEntry> {
    let keys = load("keys.json");
    keys["keyring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| KeyEntry {
            kid: hex::decode(k["kid"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
            public_key: hex::decode(k["public_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
            valid_from: k["valid_from"].as_i64().unwrap(),
            valid_until: k["valid_until"].as_i64(),
            retired: k["retired"].as_bool().unwrap(),
        })
        .collect()
}

fn outcome<T>(r: Result<T, tessera_verifier::Error>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.code().into(),
    }
}

#[test]
fn every_license_vector_gives_its_expected_result() {
    let ring = keyring_from_file();
    let file = load("licenses.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() > 40);
    for v in vectors {
        let bytes = hex::decode(v["cbor"].as_str().unwrap()).unwrap();
        let got = outcome(decode_license(&bytes, &ring));
        assert_eq!(got, v["expected"].as_str().unwrap(), "vector {}", v["name"]);
    }
}

#[test]
fn every_request_vector_gives_its_expected_result() {
    let file = load("requests.json");
    for v in file["vectors"].as_array().unwrap() {
        let bytes = hex::decode(v["cbor"].as_str().unwrap()).unwrap();
        let got = outcome(decode_request(&bytes));
        assert_eq!(got, v["expected"].as_str().unwrap(), "vector {}", v["name"]);
    }
}

#[test]
fn every_checkpoint_vector_gives_its_expected_result() {
    let ring = keyring_from_file();
    let file = load("checkpoints.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 10);
    for v in vectors {
        let bytes = hex::decode(v["cbor"].as_str().unwrap()).unwrap();
        let got = outcome(decode_checkpoint(&bytes, &ring));
        assert_eq!(got, v["expected"].as_str().unwrap(), "vector {}", v["name"]);
        // Domain separation: no checkpoint is a license or a request.
        if v["name"] != "license-as-checkpoint" {
            assert!(
                decode_license(&bytes, &ring).is_err(),
                "vector {}",
                v["name"]
            );
            assert!(decode_request(&bytes).is_err(), "vector {}", v["name"]);
        }
    }
}

#[test]
fn armored_files_verify() {
    let ring = keyring_from_file();
    let mut buf = [0u8; tessera_verifier::MAX_OBJECT_LEN];
    for name in ["minimal.lic", "typical.lic", "maximal.lic"] {
        let text = std::fs::read_to_string(dir().join(name)).unwrap();
        let bytes = armor::decode(&text, armor::LABEL_LICENSE, &mut buf).unwrap();
        decode_license(bytes, &ring).unwrap();
    }
    let text = std::fs::read_to_string(dir().join("request.req")).unwrap();
    let bytes = armor::decode(&text, armor::LABEL_REQUEST, &mut buf).unwrap();
    decode_request(bytes).unwrap();
    let text = std::fs::read_to_string(dir().join("checkpoint.ckpt")).unwrap();
    let bytes = armor::decode(&text, armor::LABEL_CHECKPOINT, &mut buf).unwrap();
    assert_eq!(decode_checkpoint(bytes, &ring).unwrap().entries(), 42);
}

#[test]
fn every_runtime_vector_gives_its_expected_result() {
    let ring = keyring_from_file();
    let file = load("runtime.json");
    let vectors = file["vectors"].as_array().unwrap();
    for v in vectors {
        let got = vectors::run_runtime_case(v, &ring);
        assert_eq!(got, v["expected"], "runtime vector {}", v["name"]);
        // Errors leave the state exactly as it was.
        if got["result"] != "ok" {
            assert_eq!(
                got["state_out"], v["state_in"],
                "runtime vector {}",
                v["name"]
            );
        }
    }
}

#[test]
fn every_keyed_state_vector_gives_its_expected_result() {
    use tessera_verifier::{State, StateKey};
    let ring = keyring_from_file();
    let file = load("state.json");
    for d in file["key_derivation"].as_array().unwrap() {
        let secret = hex::decode(d["secret_hex"].as_str().unwrap()).unwrap();
        let context = hex::decode(d["context_hex"].as_str().unwrap()).unwrap();
        let key = StateKey::derive(&secret, &context);
        assert_eq!(hex::encode(key.as_bytes()), d["key_hex"], "{d}");
    }
    let key_of = |j: &serde_json::Value| {
        j.as_str()
            .map(|k| StateKey::from_bytes(hex::decode(k).unwrap().try_into().unwrap()))
    };
    let records = file["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["expected"] == "ok"));
    assert!(records.iter().any(|r| r["expected"] == "state_corrupt"));
    for r in records {
        let bytes = hex::decode(r["record"].as_str().unwrap()).unwrap();
        let key = key_of(&r["state_key"]);
        match State::from_bytes_with(&bytes, key.as_ref()) {
            Ok(s) => {
                assert_eq!(r["expected"], "ok", "{}", r["name"]);
                assert_eq!(r["unkeyed"], hex::encode(s.to_bytes()), "{}", r["name"]);
                assert_eq!(hex::encode(s.to_bytes_with(key.as_ref())), r["record"]);
            }
            Err(e) => assert_eq!(r["expected"], e.code(), "{}", r["name"]),
        }
    }
    for v in file["vectors"].as_array().unwrap() {
        let got = vectors::run_runtime_case(v, &ring);
        assert_eq!(got, v["expected"], "keyed state vector {}", v["name"]);
        if got["result"] != "ok" {
            assert_eq!(got["state_out"], v["state_in"], "{}", v["name"]);
        }
    }
}

#[test]
fn runtime_vectors_reach_every_verdict_and_error() {
    let file = load("runtime.json");
    let outcomes: std::collections::BTreeSet<String> = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let e = &v["expected"];
            match e["result"].as_str().unwrap() {
                "ok" => e["verdict"]["code"].as_str().unwrap().to_string(),
                code => code.split('.').next().unwrap().to_string(),
            }
        })
        .collect();
    for needed in [
        // Verdicts (DESIGN: verifier API).
        "not_yet_valid",
        "valid",
        "renewal_due",
        "grace",
        "expired_emergency_only",
        "expired_locked",
        // Errors (DESIGN: verifier API), and the runtime's own.
        "malformed",
        "unknown_key",
        "retired_key",
        "bad_signature",
        "wrong_device",
        "wrong_serial",
        "superseded",
        "clock_rollback",
        "state_corrupt",
    ] {
        assert!(
            outcomes.contains(needed),
            "no runtime vector reaches {needed}"
        );
    }
}

#[test]
fn every_normalization_vector_gives_its_expected_result() {
    use tessera_verifier::binding::{normalize, MAX_VALUE_LEN};
    use tessera_verifier::claims::ComponentKind;
    let file = load("runtime.json");
    for n in file["normalization"].as_array().unwrap() {
        let kind = ComponentKind(u8::try_from(n["kind"].as_u64().unwrap()).unwrap());
        let raw = match (n["raw"].as_str(), n["raw_hex"].as_str()) {
            (Some(t), _) => t.as_bytes().to_vec(),
            (None, Some(h)) => hex::decode(h).unwrap(),
            _ => panic!("no raw value"),
        };
        let mut buf = [0u8; MAX_VALUE_LEN];
        match normalize(kind, &raw, &mut buf) {
            Ok(v) => {
                assert_eq!(n["expected"], "ok", "{n}");
                assert_eq!(n["normalized_hex"], hex::encode(v), "{n}");
            }
            Err(e) => assert_eq!(n["expected"], e.code(), "{n}"),
        }
    }
}
