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

use tessera_verifier::{armor, decode_license, decode_request, KeyEntry};

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
}
