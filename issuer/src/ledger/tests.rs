use tessera_verifier::encode::sign_license;
use tessera_verifier::samples;

use super::*;

fn record(serial: &str, sequence: u32, n: u8) -> NewRecord {
    let mut l = samples::typical();
    l.serial = serial.into();
    l.sequence = sequence;
    l.id = [n; 16];
    let bytes = sign_license(&l, &[0; 8], samples::seed_signer(samples::TEST_KEY_1_SEED)).unwrap();
    NewRecord {
        serial: serial.into(),
        sequence,
        license_id: l.id,
        action: if sequence == 1 {
            Action::Issue
        } else {
            Action::Renew
        },
        bytes,
        order_json: "{}".into(),
        operator: "alice".into(),
        issued_at: l.issued_at,
        customer: l.customer.clone(),
        pbx_name: l.pbx_name.clone(),
        platform: "hw".into(),
        lease_end: l.lease_end,
        term_end: l.term.end,
        idem_key: None,
    }
}

fn ledger_with_rows(dir: &Path, n: u8) -> Ledger {
    let mut ledger = Ledger::open(&dir.join("l.db")).unwrap();
    let mut w = ledger.writer().unwrap();
    for i in 0..n {
        let serial = format!("SW-2026-{:06}", i % 2);
        let seq = w.next_sequence(&serial).unwrap();
        w.append(record(&serial, seq, i)).unwrap();
    }
    w.commit().unwrap();
    ledger
}

fn raw(dir: &Path) -> Connection {
    Connection::open(dir.join("l.db")).unwrap()
}

#[test]
fn chain_verifies_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 4);
    let (rows, head) = ledger.verify().unwrap();
    assert_eq!(rows, 4);
    assert_eq!(ledger.head().unwrap(), (4, head));
    drop(ledger);
    let ledger = Ledger::open_existing(&dir.path().join("l.db")).unwrap();
    assert_eq!(ledger.verify().unwrap().0, 4);
    let h = ledger.history("SW-2026-000000").unwrap();
    assert_eq!(h.iter().map(|r| r.row.sequence).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        ledger
            .latest("SW-2026-000001")
            .unwrap()
            .unwrap()
            .row
            .sequence,
        2
    );
    let mode: String = raw(dir.path())
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn edited_row_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 4);
    raw(dir.path())
        .execute("UPDATE licenses SET operator = 'mallory' WHERE id = 2", [])
        .unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(
        matches!(&e, LedgerError::Integrity { row: 2, reason } if reason.contains("edited")),
        "{e}"
    );
}

#[test]
fn edited_license_bytes_with_rehash_are_detected() {
    // An attacker who recomputes the row's hash still breaks the next
    // row's prev_hash.
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 3);
    let mut rec = ledger.all().unwrap().remove(0);
    rec.row.customer = "Other".into();
    let hash = row_hash(&rec.prev_hash, 1, &rec.row);
    raw(dir.path())
        .execute(
            "UPDATE licenses SET customer = 'Other', hash = ?1 WHERE id = 1",
            [hash.as_slice()],
        )
        .unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(matches!(e, LedgerError::Integrity { row: 1, .. }), "{e}");
}

#[test]
fn deleted_row_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 4);
    raw(dir.path())
        .execute("DELETE FROM licenses WHERE id = 2", [])
        .unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(
        matches!(&e, LedgerError::Integrity { row: 2, reason } if reason.contains("missing")),
        "{e}"
    );
}

#[test]
fn deleted_last_row_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 4);
    raw(dir.path())
        .execute("DELETE FROM licenses WHERE id = 4", [])
        .unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(
        matches!(&e, LedgerError::Integrity { reason, .. } if reason.contains("chain head")),
        "{e}"
    );
}

#[test]
fn reordered_rows_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with_rows(dir.path(), 4);
    let c = raw(dir.path());
    c.execute_batch(
        "UPDATE licenses SET id = 100 WHERE id = 2;
         UPDATE licenses SET id = 2 WHERE id = 3;
         UPDATE licenses SET id = 3 WHERE id = 100;",
    )
    .unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(
        matches!(&e, LedgerError::Integrity { row: 2, reason } if reason.contains("prev_hash")),
        "{e}"
    );
}

#[test]
fn column_differing_from_bytes_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let mut w = ledger.writer().unwrap();
    let mut r = record("SW-2026-000009", 1, 1);
    r.customer = "Not the license's".into();
    w.append(r).unwrap();
    w.commit().unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(
        e.to_string().contains("differ from its license bytes"),
        "{e}"
    );
}

#[test]
fn sequences_must_be_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let mut w = ledger.writer().unwrap();
    assert!(matches!(
        w.append(record("SW-2026-000001", 2, 1)),
        Err(LedgerError::Conflict { .. })
    ));
}

#[test]
fn uncommitted_writer_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger_with_rows(dir.path(), 2);
    {
        let mut w = ledger.writer().unwrap();
        w.append(record("SW-2026-000007", 1, 9)).unwrap();
    }
    assert_eq!(ledger.verify().unwrap().0, 2);
    assert!(ledger.latest("SW-2026-000007").unwrap().is_none());
}

#[test]
fn savepoint_undoes_a_failed_row_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let mut w = ledger.writer().unwrap();
    w.savepoint(|w| w.append(record("SW-2026-000001", 1, 1)).map(|_| ()))
        .unwrap();
    let failed: Result<(), LedgerError> = w.savepoint(|w| {
        w.append(record("SW-2026-000002", 1, 2))?;
        w.map_hw_serial("HW-1", "SW-2026-000002", 0)?;
        Err(LedgerError::NotFound("x".into()))
    });
    assert!(failed.is_err());
    w.savepoint(|w| w.append(record("SW-2026-000003", 1, 3)).map(|_| ()))
        .unwrap();
    w.commit().unwrap();
    assert_eq!(ledger.verify().unwrap().0, 2);
    assert!(ledger.sw_serial_of("HW-1").unwrap().is_none());
    assert!(ledger.latest("SW-2026-000002").unwrap().is_none());
}

#[test]
fn serials_are_allocated_per_year() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&dir.path().join("l.db")).unwrap();
    let mut w = ledger.writer().unwrap();
    assert_eq!(w.allocate_serial(2026).unwrap(), "SW-2026-000001");
    // A serial already in use is skipped.
    w.append(record("SW-2026-000002", 1, 1)).unwrap();
    assert_eq!(w.allocate_serial(2026).unwrap(), "SW-2026-000003");
    assert_eq!(w.allocate_serial(2027).unwrap(), "SW-2027-000001");
}

#[test]
fn hw_mapping_must_be_backed_by_a_license() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger_with_rows(dir.path(), 1);
    let mut w = ledger.writer().unwrap();
    // The sample license names HW-7F3A-0042 as its previous serial.
    w.map_hw_serial("HW-7F3A-0042", "SW-2026-000000", 0)
        .unwrap();
    w.commit().unwrap();
    ledger.verify().unwrap();
    raw(dir.path())
        .execute(
            "INSERT INTO hw_serials VALUES ('HW-OTHER', 'SW-2026-000000', 0)",
            [],
        )
        .unwrap();
    assert!(ledger.verify().is_err());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(ledger_with_rows(dir.path(), 1));
    raw(dir.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = Ledger::open(&dir.path().join("l.db")).unwrap_err();
    assert!(
        matches!(e, LedgerError::NewerSchema { found: 99, .. }),
        "{e}"
    );
}

#[test]
fn missing_ledger_is_not_created_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    assert!(matches!(
        Ledger::open_existing(&path),
        Err(LedgerError::NotFound(_))
    ));
    assert!(!path.exists());
}

#[test]
fn concurrent_writers_never_share_a_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    drop(Ledger::open(&path).unwrap());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut ledger = Ledger::open(&path).unwrap();
                let mut got = Vec::new();
                for i in 0..10u8 {
                    let mut w = ledger.writer().unwrap();
                    let seq = w.next_sequence("SW-2026-000042").unwrap();
                    // Give the other threads a chance to interleave.
                    std::thread::yield_now();
                    w.append(record("SW-2026-000042", seq, t * 16 + i)).unwrap();
                    w.commit().unwrap();
                    got.push(seq);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
    assert_eq!(Ledger::open(&path).unwrap().verify().unwrap().0, 40);
}

#[test]
fn schema_1_ledgers_gain_the_lifecycle_tables() {
    let dir = tempfile::tempdir().unwrap();
    drop(ledger_with_rows(dir.path(), 2));
    let conn = raw(dir.path());
    conn.execute_batch("DROP TABLE events; DROP TABLE replaced_bindings; DROP TABLE request_keys;")
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let mut ledger = Ledger::open_existing(&dir.path().join("l.db")).unwrap();
    let version: i64 = raw(dir.path())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(ledger.verify().unwrap().0, 2);
    let mut w = ledger.writer().unwrap();
    w.add_event(
        "SW-2026-000000",
        1,
        "change",
        &serde_json::json!({"approval": "APP-1"}),
        "alice",
        0,
    )
    .unwrap();
    w.commit().unwrap();
    assert_eq!(ledger.events("SW-2026-000000").unwrap().len(), 1);
}

#[test]
fn lifecycle_rows_must_name_their_license() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = ledger_with_rows(dir.path(), 2);
    let mut w = ledger.writer().unwrap();
    // A void event on a row that is not a void.
    w.add_event(
        "SW-2026-000000",
        1,
        "void",
        &serde_json::json!({"reason": "x"}),
        "alice",
        0,
    )
    .unwrap();
    w.commit().unwrap();
    let e = ledger.verify().unwrap_err();
    assert!(matches!(e, LedgerError::Integrity { .. }), "{e}");
    raw(dir.path()).execute("DELETE FROM events", []).unwrap();
    ledger.verify().unwrap();
    // A binding marked replaced by a license that is not a replacement.
    let mut w = ledger.writer().unwrap();
    w.mark_replaced("SW-2026-000000", 1, 2, &[], "rma", 0)
        .unwrap();
    w.commit().unwrap();
    assert!(ledger.verify().is_err());
    let w = ledger.writer().unwrap();
    assert_eq!(
        w.replaced_bindings("SW-2026-000000").unwrap()[0].replaced_by,
        2
    );
}
