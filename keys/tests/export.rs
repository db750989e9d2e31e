//! The firmware exports are real code: the Rust export is compiled into this
//! test (via `include!` of the checked-in `fixtures/generated_keyring.rs`),
//! the C header is compiled and run with `cc -std=c99 -Wall -Wextra -Werror`.
//!
//! The fixtures are regenerated from [`fixture_keyring`] and must match the
//! checked-in files; after an intended change of the export format, rewrite
//! them with `TESSERA_UPDATE_FIXTURES=1 cargo test -p tessera-keys --test export`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use ed25519_dalek::SigningKey;
use tessera_keys::{KeyRecord, Keyring};
use tessera_tests::tools::{require_tool, run_ok};

mod generated {
    include!("fixtures/generated_keyring.rs");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A fixed keyring in mid-rotation: a retired key with a closed window, the
/// active key, and the next key already shipped to firmware.
fn fixture_keyring() -> Keyring {
    let pk = |seed: u8| {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    };
    let t = |y, m, d, h, min, s| Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap();
    let mut ring = Keyring::new();
    let old = ring
        .add(
            KeyRecord::new(pk(1), "2024 signing key", t(2024, 1, 1, 0, 0, 0))
                .with_valid_until(t(2025, 6, 30, 23, 59, 59)),
        )
        .unwrap()
        .kid;
    let current = ring
        .add(KeyRecord::new(
            pk(2),
            "2025 signing key",
            t(2025, 1, 1, 0, 0, 0),
        ))
        .unwrap()
        .kid;
    ring.add(KeyRecord::new(
        pk(3),
        "2026 signing key (next)",
        t(2026, 1, 1, 0, 0, 0),
    ))
    .unwrap();
    ring.set_active(&current).unwrap();
    ring.retire(&old).unwrap();
    ring
}

#[test]
fn compiled_rust_export_equals_the_keyring() {
    assert_eq!(
        generated::KEYRING,
        fixture_keyring().to_entries().as_slice()
    );
    assert!(generated::KEYRING[0].retired);
}

/// Compares a generated file with the checked-in fixture (or rewrites it on
/// request, never under CI).
fn check_fixture(name: &str, generated: &[u8]) {
    let path = Path::new(FIXTURES).join(name);
    let update = std::env::var_os("TESSERA_UPDATE_FIXTURES").is_some()
        && std::env::var("CI").as_deref() != Ok("true");
    if update {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date; if the export format changed on purpose, run \
         `TESSERA_UPDATE_FIXTURES=1 cargo test -p tessera-keys --test export` and review the diff",
        path.display()
    );
}

#[test]
fn checked_in_exports_are_up_to_date() {
    let ring = fixture_keyring();
    check_fixture(
        "generated_keyring.rs",
        ring.export_rust().unwrap().as_bytes(),
    );
    check_fixture("generated_keyring.h", ring.export_c().unwrap().as_bytes());
    check_fixture("generated_keyring.cbor", &ring.export_cbor().unwrap());
}

#[test]
fn c_header_compiles_and_holds_the_keyring() {
    let Some(cc) = require_tool("cc", "gcc") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ring = fixture_keyring();
    std::fs::write(
        dir.path().join("tessera_keyring.h"),
        ring.export_c().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.c"),
        r#"#include <inttypes.h>
#include <stdio.h>
#include "tessera_keyring.h"
#include "tessera_keyring.h" /* the include guard must hold */

int main(void) {
    unsigned i, j;
    printf("%u\n", (unsigned)TESSERA_KEYRING_COUNT);
    for (i = 0; i < TESSERA_KEYRING_COUNT; i++) {
        const struct tessera_key_entry *e = &TESSERA_KEYRING[i];
        for (j = 0; j < sizeof e->kid; j++) printf("%02x", e->kid[j]);
        printf(" ");
        for (j = 0; j < sizeof e->public_key; j++) printf("%02x", e->public_key[j]);
        printf(" %" PRId64 " %" PRId64 " %u\n", e->valid_from, e->valid_until, (unsigned)e->retired);
    }
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("keyring");
    run_ok(
        Command::new(&cc)
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o"])
            .arg(&exe)
            .arg(dir.path().join("main.c")),
    );
    let out = run_ok(&mut Command::new(&exe));
    let mut expected = format!("{}\n", ring.list().len());
    for e in ring.to_entries() {
        expected.push_str(&format!(
            "{} {} {} {} {}\n",
            hex::encode(e.kid),
            hex::encode(e.public_key),
            e.valid_from,
            e.valid_until.unwrap_or(i64::MAX),
            u8::from(e.retired)
        ));
    }
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn cbor_export_decodes_to_the_keyring() {
    use ciborium::value::Value;
    let ring = fixture_keyring();
    let value: Value = ciborium::from_reader(ring.export_cbor().unwrap().as_slice()).unwrap();
    let Value::Array(items) = value else {
        panic!("not an array")
    };
    assert_eq!(items.len(), 3);
    for (item, entry) in items.iter().zip(ring.to_entries()) {
        let Value::Map(fields) = item else {
            panic!("not a map")
        };
        let keys: Vec<i128> = fields
            .iter()
            .map(|(k, _)| k.as_integer().unwrap().into())
            .collect();
        assert_eq!(keys, [1, 2, 3, 4, 5]);
        assert_eq!(fields[0].1.as_bytes().unwrap(), &entry.kid);
        assert_eq!(fields[1].1.as_bytes().unwrap(), &entry.public_key);
        assert_eq!(
            i128::from(fields[2].1.as_integer().unwrap()),
            i128::from(entry.valid_from)
        );
        match entry.valid_until {
            Some(t) => assert_eq!(i128::from(fields[3].1.as_integer().unwrap()), i128::from(t)),
            None => assert!(fields[3].1.is_null()),
        }
        assert_eq!(fields[4].1.as_bool().unwrap(), entry.retired);
    }
}
