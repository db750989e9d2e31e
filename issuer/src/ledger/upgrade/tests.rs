//! The upgrade of a real ledger of the earlier tessera: `old.db` in
//! `tests/cmd/upgrade.in/` was written by tessera before the journal
//! (schema 2) replaying the lifecycle golden case (issue, changes,
//! approvals, voids, a replacement, sharing, a decommission and its
//! cancellation) and a bulk run by a second operator.

use std::path::PathBuf;

use rusqlite::{params, Connection};
use tessera_keys::{Keyring, Signer as _};
use tessera_signer::FileSigner;

use super::*;
use crate::ledger::journal::Entry;

const VENDOR: &str = "tessera-vendor";
const NOW: i64 = 1_778_058_000; // 2026-05-06T09:00:00Z

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/upgrade.in")
}

struct Fixture {
    dir: tempfile::TempDir,
    signer: FileSigner,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture_dir().join("old.db"), dir.path().join("old.db")).unwrap();
        Self {
            dir,
            signer: FileSigner::generate().unwrap(),
        }
    }

    fn old(&self) -> PathBuf {
        self.dir.path().join("old.db")
    }

    fn new_path(&self) -> PathBuf {
        self.dir.path().join("new.db")
    }

    /// The keyring of the old licenses and of the new checkpoints.
    fn keyring(&self) -> Vec<KeyEntry> {
        let mut keys = Keyring::load(&fixture_dir().join("keyring.toml"))
            .unwrap()
            .to_entries();
        keys.push(KeyEntry::new(self.signer.public_key(), 0));
        keys
    }

    fn raw(&self) -> Connection {
        Connection::open(self.old()).unwrap()
    }

    fn upgrade(&self) -> Result<UpgradeReport, LedgerError> {
        upgrade(
            &self.old(),
            &self.new_path(),
            VENDOR,
            &self.signer,
            "carol",
            NOW,
            &self.keyring(),
        )
    }

    /// Nothing but the old ledger (and its SQLite side files) is left.
    fn assert_nothing_written(&self) {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("old.db"))
            .collect();
        names.sort();
        assert!(names.is_empty(), "left behind: {names:?}");
    }

    /// Recomputes the old chain from row `from` on, as the earlier tessera
    /// would have after an edit (what a careful forger does).
    fn rehash_from(&self, from: i64) {
        let conn = self.raw();
        let mut prev: [u8; 32] = if from == 1 {
            [0; 32]
        } else {
            let h: Vec<u8> = conn
                .query_row("SELECT hash FROM licenses WHERE id = ?1", [from - 1], |r| {
                    r.get(0)
                })
                .unwrap();
            h.try_into().unwrap()
        };
        let rows: Vec<OldRow> = conn
            .prepare(&format!(
                "SELECT {OLD_COLUMNS} FROM licenses WHERE id >= ?1 ORDER BY id"
            ))
            .unwrap()
            .query_map([from], OldRow::read)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for row in rows {
            let mut id = [0u8; 16];
            hex::decode_to_slice(&row.license_hex, &mut id).unwrap();
            let hash = row.hash(&prev, &id);
            conn.execute(
                "UPDATE licenses SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
                params![prev.as_slice(), hash.as_slice(), row.id],
            )
            .unwrap();
            prev = hash;
        }
        conn.execute(
            "UPDATE chain_head SET hash = ?1, rows = (SELECT count(*) FROM licenses)",
            [prev.as_slice()],
        )
        .unwrap();
    }
}

fn digest(path: &Path) -> [u8; 32] {
    Sha256::digest(std::fs::read(path).unwrap()).into()
}

#[test]
fn every_fact_of_the_old_ledger_is_carried_over() {
    let f = Fixture::new();
    let before = digest(&f.old());
    let r = f.upgrade().unwrap();
    assert_eq!(digest(&f.old()), before, "the old ledger is only read");
    assert_eq!((r.schema, r.rows), (2, 16));
    assert_eq!(
        (
            r.conversions,
            r.allocations,
            r.events,
            r.replaced,
            r.schedules
        ),
        (5, 4, 7, 1, 1)
    );
    let old_head: Vec<u8> = f
        .raw()
        .query_row("SELECT hash FROM chain_head", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r.old_head.as_slice(), old_head.as_slice());

    let ledger = Ledger::open_read_only(&f.new_path()).unwrap();
    let v = ledger.verify(&f.keyring(), None).unwrap();
    assert_eq!((v.entries, v.licenses, v.checkpoints), (33, 16, 1));
    assert_eq!(v.entries, r.checkpoint.data.entries);
    // Entry 2 names the old chain.
    let entries = ledger.entries().unwrap();
    assert_eq!(
        entries[1].1.fact,
        Fact::Upgraded {
            schema: 2,
            rows: 16,
            head: r.old_head
        }
    );
    assert_eq!(entries[1].1.operator, "carol");

    // Every license, with its id, operator, order and bulk key.
    let conn = f.raw();
    let mut stmt = conn
        .prepare("SELECT serial, sequence, license_id, operator, order_json, idem_key, action FROM licenses ORDER BY id")
        .unwrap();
    type OldLicense = (String, u32, String, String, String, Option<String>, String);
    let old_rows: Vec<OldLicense> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (serial, sequence, id, operator, order, idem, action) in &old_rows {
        let history = ledger.history(serial).unwrap();
        let rec = history
            .iter()
            .find(|r| r.row.sequence == *sequence)
            .unwrap();
        assert_eq!(hex::encode(rec.row.license_id), *id);
        assert_eq!(rec.row.operator, *operator);
        assert_eq!(rec.row.order_json, *order);
        assert_eq!(rec.row.idem_key, *idem);
        assert_eq!(rec.row.action.as_str(), action);
        if let Some(k) = idem {
            assert_eq!(ledger.by_idem_key(k).unwrap().unwrap().row.serial, *serial);
        }
    }
    assert!(old_rows.iter().any(|r| r.3 == "bob" && r.5.is_some()));
    // Conversions, replaced bindings, request keys, events, schedules.
    assert_eq!(
        ledger.sw_serial_of("HW-9C1D-0007").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    assert_eq!(
        ledger.hw_serials_of("SW-2026-000001").unwrap(),
        ["HW-7F3A-0042", "HW-9C1D-0007"]
    );
    let replaced = ledger
        .queries()
        .replaced_bindings("SW-2026-000001")
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!((replaced[0].sequence, replaced[0].replaced_by), (8, 9));
    assert_eq!(
        ledger
            .queries()
            .request_keys_since("SW-2026-000001", 9)
            .unwrap(),
        ["d54207da194977dcf46adbfec2bc2e75b52d5a8a42184fedfdc00024f0e3e8da"]
    );
    assert_eq!(ledger.events("SW-2026-000001").unwrap().len(), 6);
    assert_eq!(ledger.events("SW-2026-500001").unwrap().len(), 1);
    // The decommission's schedule was cancelled by the later change.
    assert!(ledger.schedule("SW-2026-000001").unwrap().is_none());
    drop(ledger);

    // The new ledger issues on: the old counter stands.
    let mut ledger = Ledger::open(&f.new_path()).unwrap();
    let w = ledger.writer(&f.signer, "carol").unwrap();
    assert_eq!(w.next_free_serial(2026).unwrap(), "SW-2026-000005");
}

#[test]
fn a_schema_1_ledger_is_carried_over() {
    let f = Fixture::new();
    f.raw()
        .execute_batch(
            "DELETE FROM licenses WHERE id > 1;
             UPDATE chain_head SET rows = 1, hash = (SELECT hash FROM licenses WHERE id = 1);
             DELETE FROM hw_serials WHERE hw_serial != 'HW-7F3A-0042';
             DELETE FROM schedules;
             UPDATE serial_counter SET last = 7;
             DROP TABLE events; DROP TABLE replaced_bindings; DROP TABLE request_keys;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    let r = f.upgrade().unwrap();
    assert_eq!((r.schema, r.rows, r.conversions), (1, 1, 1));
    // The first serial with its conversion, then the counter's last number.
    assert_eq!(r.allocations, 2);
    let mut ledger = Ledger::open(&f.new_path()).unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
    let mut w = ledger.writer(&f.signer, "carol").unwrap();
    assert_eq!(w.next_free_serial(2026).unwrap(), "SW-2026-000008");
    // The carry-over jumped from 1 to 7 in the first transaction; after
    // it, allocations take the next free number and never jump.
    w.allocate_serial(2026, NOW).unwrap();
    let e = w
        .push(
            NOW,
            crate::ledger::Fact::SerialAllocated {
                serial: "SW-2026-000010".into(),
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("skipping SW-2026-000009"), "{e}");
    w.commit().unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
}

#[test]
fn an_edited_old_ledger_is_refused_naming_its_row() {
    let cases: &[(&str, &str, i64)] = &[
        ("a row edited", "UPDATE licenses SET customer = 'Mallory' WHERE id = 3", 3),
        ("an operator edited", "UPDATE licenses SET operator = 'mallory' WHERE id = 14", 14),
        ("a row deleted", "DELETE FROM licenses WHERE id = 5", 5),
        ("the last row deleted", "DELETE FROM licenses WHERE id = 16", 16),
        ("rows reordered", "UPDATE licenses SET id = 100 WHERE id = 2; UPDATE licenses SET id = 2 WHERE id = 3; UPDATE licenses SET id = 3 WHERE id = 100", 2),
        ("the chain head edited", "UPDATE chain_head SET rows = 15", 16),
    ];
    for (what, statement, row) in cases {
        let f = Fixture::new();
        f.raw().execute_batch(statement).unwrap();
        let e = f.upgrade().unwrap_err();
        assert!(
            matches!(&e, LedgerError::OldIntegrity { row: r, .. } if r == row),
            "{what}: {e}"
        );
        assert!(e.is_integrity(), "{what}: exit 4");
        assert!(e.to_string().contains("nothing was converted"), "{e}");
        f.assert_nothing_written();
    }
}

#[test]
fn rows_todays_rules_refuse_are_named() {
    // (what, SQL, rehash from, named row, reason)
    let cases: &[(&str, &str, Option<i64>, &str, &str)] = &[
        (
            "an operator with a control character",
            "UPDATE licenses SET operator = 'eve' || char(27) || '[2J' WHERE id = 2",
            Some(2),
            "licenses row 2 (SW-2026-000001:2)",
            "operator",
        ),
        (
            "a license signed with another key",
            "UPDATE licenses SET bytes = CAST(substr(bytes, 1, length(bytes) - 1) || CASE WHEN substr(bytes, -1) = x'00' THEN x'01' ELSE x'00' END AS BLOB) WHERE id = 4",
            Some(4),
            "licenses row 4 (SW-2026-000001:4)",
            "does not verify under the keyring",
        ),
        (
            "an event that is not JSON",
            "UPDATE events SET detail = 'approved' WHERE id = 1",
            None,
            "licenses row 4 (SW-2026-000001:4)",
            "not a JSON object",
        ),
        (
            "an event of a license of another kind",
            "UPDATE events SET sequence = 3 WHERE id = 2",
            None,
            "licenses row 3 (SW-2026-000001:3)",
            "a void event names license 3",
        ),
        (
            "a HW serial no license names",
            "INSERT INTO hw_serials VALUES ('HW-' || char(27) || '[2J', 'SW-2026-000002', 0)",
            None,
            "hw_serials row HW-\\u{1b}[2J",
            "no license of SW-2026-000002 names",
        ),
        (
            "a request key of no license",
            "INSERT INTO request_keys VALUES ('SW-2026-000002', 7, 'ab')",
            None,
            "request_keys row SW-2026-000002:7",
            "belongs to no license",
        ),
        (
            "a request key that is not hex",
            "UPDATE request_keys SET device_key = 'zz' WHERE sequence = 9",
            None,
            "licenses row 9 (SW-2026-000001:9)",
            "64 hex digits",
        ),
        (
            "a counter past what a serial holds",
            "UPDATE serial_counter SET last = 1000000",
            None,
            "serial_counter row 2026",
            "SW-YYYY-NNNNNN",
        ),
    ];
    for (what, statement, rehash, row, reason) in cases {
        let f = Fixture::new();
        f.raw().execute_batch(statement).unwrap();
        if let Some(from) = rehash {
            f.rehash_from(*from);
        }
        let e = f.upgrade().unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(&e, LedgerError::Unconvertible { .. }),
            "{what}: {text}"
        );
        assert!(!e.is_integrity(), "{what}: exit 1");
        assert!(text.contains(row), "{what}: {text}");
        assert!(text.contains(reason), "{what}: {text}");
        assert!(!text.contains('\u{1b}'), "{what}: printed raw: {text}");
        f.assert_nothing_written();
    }
}

#[test]
fn only_a_ledger_of_an_earlier_tessera_is_upgraded() {
    let f = Fixture::new();
    // A ledger of this tessera.
    let current = f.dir.path().join("current.db");
    Ledger::init(&current, VENDOR, &f.signer, "carol", NOW).unwrap();
    let e = upgrade(
        &current,
        &f.new_path(),
        VENDOR,
        &f.signer,
        "carol",
        NOW,
        &f.keyring(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("nothing to upgrade"), "{e}");
    // Another program's database, a missing file.
    let other = f.dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    for (from, says) in [
        (other, "not a ledger of an earlier tessera"),
        (f.dir.path().join("missing.db"), "no ledger at"),
    ] {
        let e = upgrade(
            &from,
            &f.new_path(),
            VENDOR,
            &f.signer,
            "carol",
            NOW,
            &f.keyring(),
        )
        .unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
    assert!(!f.new_path().exists());
    // Never over an existing file, the old one included.
    let e = upgrade(
        &f.old(),
        &f.old(),
        VENDOR,
        &f.signer,
        "carol",
        NOW,
        &f.keyring(),
    )
    .unwrap_err();
    assert!(matches!(e, LedgerError::Exists(_)), "{e}");
    // Another vendor's catalog.
    let e = upgrade(
        &f.old(),
        &f.new_path(),
        "other-vendor",
        &f.signer,
        "carol",
        NOW,
        &f.keyring(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("the ledger's vendor is `other-vendor`"),
        "{e}"
    );
    // A keyring without the old licenses' key.
    let e = upgrade(
        &f.old(),
        &f.new_path(),
        VENDOR,
        &f.signer,
        "carol",
        NOW,
        &[KeyEntry::new(f.signer.public_key(), 0)],
    )
    .unwrap_err();
    assert!(e.to_string().contains("licenses row 1 "), "{e}");
    assert!(e.to_string().contains("keyring"), "{e}");
    assert!(!f.new_path().exists());
}

#[test]
fn the_upgrade_entry_stands_only_second() {
    let f = Fixture::new();
    let mut ledger = Ledger::create(&f.new_path(), VENDOR, &f.signer, "carol", NOW).unwrap();
    let mut w = ledger.writer(&f.signer, "carol").unwrap();
    let e = w
        .push(
            NOW,
            Fact::Upgraded {
                schema: 3,
                rows: 0,
                head: [0; 32],
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("schema 1 or 2"), "{e}");
    w.push(
        NOW,
        Fact::Upgraded {
            schema: 2,
            rows: 0,
            head: [0; 32],
        },
    )
    .unwrap();
    let e = w
        .push(
            NOW,
            Fact::Upgraded {
                schema: 2,
                rows: 0,
                head: [0; 32],
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("after the second"), "{e}");
    // An entry body round-trips.
    let entry = Entry {
        at: NOW,
        operator: "carol".into(),
        fact: Fact::Upgraded {
            schema: 2,
            rows: 16,
            head: [7; 32],
        },
    };
    assert_eq!(Entry::decode(&entry.encode()).unwrap(), entry);
}
