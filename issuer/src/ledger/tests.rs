use rusqlite::Connection;
use tessera_keys::Signer as _;
use tessera_signer::FileSigner;
use tessera_verifier::encode::{sign_checkpoint, sign_license};
use tessera_verifier::samples;
use tessera_verifier::KeyId;

use super::*;

const VENDOR: &str = "tessera-vendor";

/// Where a test's ledger lives: a file, or a database of a PostgreSQL
/// server the test started.
enum Store {
    File,
    Postgres {
        server: std::rc::Rc<tessera_tests::postgres::PgServer>,
        url: String,
    },
}

struct Fixture {
    dir: tempfile::TempDir,
    signer: FileSigner,
    store: Store,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            signer: FileSigner::generate().unwrap(),
            store: Store::File,
        }
    }

    /// A ledger in a database of a fresh PostgreSQL server; `None` when
    /// PostgreSQL is not installed (outside CI).
    fn postgres() -> Option<Self> {
        let server = std::rc::Rc::new(tessera_tests::postgres::PgServer::start()?);
        let url = server.create_database();
        Some(Self {
            store: Store::Postgres { server, url },
            ..Self::new()
        })
    }

    /// Another ledger (not created yet) of the same kind: a file in its
    /// own folder, or a new database on the same server.
    fn fresh(&self) -> Self {
        match &self.store {
            Store::File => Self::new(),
            Store::Postgres { server, .. } => Self {
                store: Store::Postgres {
                    server: server.clone(),
                    url: server.create_database(),
                },
                ..Self::new()
            },
        }
    }

    fn is_file(&self) -> bool {
        matches!(self.store, Store::File)
    }

    fn path(&self) -> PathBuf {
        match &self.store {
            Store::File => self.dir.path().join("l.db"),
            Store::Postgres { url, .. } => PathBuf::from(url),
        }
    }

    fn keyring(&self) -> Vec<KeyEntry> {
        vec![
            KeyEntry::new(self.signer.public_key(), 0),
            KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0),
        ]
    }

    /// The ledger a writer runs on after someone edited the database: the
    /// same one on SQLite (it sees another connection's commit), a newly
    /// opened one on PostgreSQL (there the views are checked once per open
    /// ledger, [`super::super::SESSION_STAMP`]).
    fn after_edit(&self, ledger: Ledger) -> Ledger {
        match self.store {
            Store::File => ledger,
            Store::Postgres { .. } => {
                drop(ledger);
                Ledger::open(&self.path()).unwrap()
            }
        }
    }

    fn create(&self) -> Ledger {
        Ledger::create(&self.path(), VENDOR, &self.signer, "alice", samples::T0).unwrap()
    }

    /// A ledger with `n` licenses over two serials, one transaction each.
    fn with_rows(&self, n: u8) -> Ledger {
        let mut ledger = self.create();
        for i in 0..n {
            let serial = format!("SW-2026-{:06}", u32::from(i % 2) + 1);
            let mut w = ledger.writer(&self.signer, "alice").unwrap();
            let seq = w.next_sequence(&serial).unwrap();
            w.append(record(&serial, seq, i)).unwrap();
            w.commit().unwrap();
        }
        ledger
    }

    fn raw(&self) -> Connection {
        Connection::open(self.path()).unwrap()
    }

    /// Runs SQL on the ledger outside tessera: `sqlite` on a file,
    /// `postgres` on a database.
    fn exec(&self, sqlite: &str, postgres: &str) {
        match &self.store {
            Store::File => self.raw().execute_batch(sqlite).unwrap(),
            Store::Postgres { url, .. } => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.batch_execute(postgres).unwrap();
            }
        }
    }

    fn verify(&self) -> Result<VerifyReport, LedgerError> {
        Ledger::open_read_only(&self.path())?.verify(&self.keyring(), None)
    }
}

/// Each test named runs twice: `NAME::sqlite` on a file, `NAME::postgres`
/// on a PostgreSQL server it starts (skipped when PostgreSQL is not
/// installed, outside CI).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&super::Fixture::new());
                }
                #[test]
                fn postgres() {
                    if let Some(f) = super::Fixture::postgres() {
                        super::$name(&f);
                    }
                }
            }
        )*
    };
}

on_both_backends!(
    chain_verifies_and_reopens,
    readers_never_write,
    a_writer_waits_for_another_and_says_so,
    sequences_must_be_next_and_licenses_what_they_say,
    uncommitted_writer_rolls_back,
    savepoint_undoes_a_failed_row_only,
    unguarded_says_whether_a_failure_wrote,
    serials_are_allocated_per_year_never_twice,
    the_last_serial_of_a_year_is_the_last,
    hw_serials_are_normalized_and_converted_once,
    lifecycle_entries_must_name_their_license,
    concurrent_writers_never_share_a_sequence,
    tampering_is_found_at_the_first_bad_entry,
    a_cut_off_end_is_found_against_a_checkpoint_kept_elsewhere,
    a_license_that_does_not_verify_is_named,
    writers_refuse_a_ledger_whose_end_is_not_checkpointed,
    damaged_tables_are_named_not_quoted,
    an_allocation_never_skips_a_free_number,
    a_counter_set_high_stops_the_writer_and_its_allocation_is_named,
    a_writer_refuses_views_edited_outside_tessera,
    a_writer_sees_an_edit_made_between_its_transactions,
    a_writer_refuses_a_head_its_last_checkpoint_did_not_sign,
    a_writer_refuses_a_checkpoint_of_a_key_it_does_not_know,
    a_writer_refuses_a_checkpoint_a_keyring_key_did_not_sign,
    a_writer_knows_the_keys_of_its_keyring,
    verify_finds_a_checkpoint_removed_after_a_genuine_one_followed_it,
    verify_finds_a_chain_of_checkpoints_that_stops,
    request_keys_of_a_binding_and_of_other_serials,
    an_activation_code_is_a_fact_of_a_registered_pbx,
);

fn record(serial: &str, sequence: u32, n: u8) -> NewRecord {
    let mut l = samples::typical();
    l.serial = serial.into();
    l.sequence = sequence;
    l.id = [n; 16];
    let bytes = sign_license(
        &l,
        &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
        samples::seed_signer(samples::TEST_KEY_1_SEED),
    )
    .unwrap();
    NewRecord {
        action: if sequence == 1 {
            Action::Issue
        } else {
            Action::Renew
        },
        bytes,
        order_json: "{}".into(),
        issued_at: l.issued_at,
        idem_key: None,
        request_key: Some([n.wrapping_add(1); 32]),
    }
}

fn integrity(e: &LedgerError) -> (u64, &str) {
    match e {
        LedgerError::Integrity { entry, reason } => (*entry, reason),
        other => panic!("not an integrity failure: {other}"),
    }
}

#[test]
fn init_creates_once_and_opens_refuse_what_is_not_a_ledger() {
    let f = Fixture::new();
    let c = Ledger::init(&f.path(), VENDOR, &f.signer, "alice", samples::T0).unwrap();
    assert_eq!(c.data.entries, 1);
    assert_eq!(c.data.issuer, VENDOR);
    assert_eq!(c.kid, f.signer.kid());
    assert!(matches!(
        Ledger::init(&f.path(), VENDOR, &f.signer, "alice", samples::T0),
        Err(LedgerError::Exists(_))
    ));
    // Nothing else is left in the folder (the temporary name is gone).
    let names: Vec<_> = std::fs::read_dir(f.dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    let ledger = Ledger::open(&f.path()).unwrap();
    assert_eq!(ledger.identity().unwrap().vendor, VENDOR);
    assert_eq!(ledger.identity().unwrap().ledger_id, c.data.ledger_id);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(f.path()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let missing = f.dir.path().join("none.db");
    for open in [Ledger::open, Ledger::open_read_only] {
        assert!(matches!(open(&missing), Err(LedgerError::NotFound { .. })));
        assert!(!missing.exists());
    }
    let empty = f.dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Ledger::open(&empty), Err(LedgerError::Empty(_))));
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let text = f.dir.path().join("notes.txt");
    std::fs::write(&text, b"not a database at all").unwrap();
    let e = Ledger::open(&text).unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert!(
        e.to_string().contains("not a tessera ledger or damaged"),
        "{e}"
    );
    // Another program's SQLite file.
    let other = f.dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let e = Ledger::open_read_only(&other).unwrap_err();
    assert!(matches!(e, LedgerError::Foreign { .. }), "{e}");
    // The format before the journal is recognised and named.
    let old = f.dir.path().join("old.db");
    let c = Connection::open(&old).unwrap();
    c.execute_batch("CREATE TABLE licenses (id INTEGER); CREATE TABLE chain_head (id INTEGER); PRAGMA user_version = 2;")
        .unwrap();
    drop(c);
    let e = Ledger::open(&old).unwrap_err();
    assert!(
        matches!(e, LedgerError::OldFormat { version: 2, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("tessera ledger upgrade"), "{e}");
    // A newer schema.
    f.raw().pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(
        Ledger::open(&f.path()),
        Err(LedgerError::NewerSchema { found: 99, .. })
    ));
}

fn chain_verifies_and_reopens(f: &Fixture) {
    let ledger = f.with_rows(4);
    let r = ledger.verify(&f.keyring(), None).unwrap();
    // Genesis, then one license entry per transaction.
    assert_eq!(r.entries, 5);
    assert_eq!(r.licenses, 4);
    assert_eq!(r.checkpoints, 5);
    assert_eq!(ledger.head().unwrap(), (5, r.head));
    drop(ledger);
    let ledger = Ledger::open_read_only(&f.path()).unwrap();
    let h = ledger.history("SW-2026-000001").unwrap();
    assert_eq!(h.iter().map(|r| r.row.sequence).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(h[0].row.customer, samples::typical().customer);
    assert_eq!(
        h[0].row.bytes.len(),
        record("SW-2026-000001", 1, 0).bytes.len()
    );
    assert_eq!(
        ledger
            .latest("SW-2026-000002")
            .unwrap()
            .unwrap()
            .row
            .sequence,
        2
    );
    if f.is_file() {
        let mode: String = f
            .raw()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    let c = ledger.latest_checkpoint().unwrap();
    assert_eq!(c.data.entries, 5);
    assert_eq!(c.data.head, r.head);
    // The checkpoint is a valid signed object of the verifier's format.
    tessera_verifier::decode_checkpoint(&c.bytes, &f.keyring()).unwrap();
    // Its own checkpoint is an expected head it holds; an older one too.
    let r = ledger.verify(&f.keyring(), Some(&c.bytes)).unwrap();
    assert_eq!(r.expected.unwrap().entries, 5);
}

fn readers_never_write(f: &Fixture) {
    drop(f.with_rows(1));
    let mut reader = Ledger::open_read_only(&f.path()).unwrap();
    let e = reader.writer(&f.signer, "alice").unwrap_err();
    assert!(matches!(e, LedgerError::Conflict { .. }), "{e}");
    // A reader keeps its snapshot while a writer appends.
    let mut writer = Ledger::open(&f.path()).unwrap();
    let before = reader.head().unwrap();
    let mut w = writer.writer(&f.signer, "alice").unwrap();
    w.append(record("SW-2026-000009", 1, 9)).unwrap();
    w.commit().unwrap();
    assert_eq!(reader.head().unwrap(), before);
    reader.verify(&f.keyring(), None).unwrap();
    assert_eq!(
        Ledger::open_read_only(&f.path()).unwrap().head().unwrap().0,
        before.0 + 1
    );
}

fn a_writer_waits_for_another_and_says_so(f: &Fixture) {
    drop(f.with_rows(1));
    let mut first = Ledger::open(&f.path()).unwrap();
    let w = first.writer(&f.signer, "alice").unwrap();
    let mut second = Ledger::open(&f.path()).unwrap();
    let waited = std::sync::Arc::new(core::sync::atomic::AtomicUsize::new(0));
    let counter = waited.clone();
    second.set_wait_notice(Box::new(move |_| {
        counter.fetch_add(1, core::sync::atomic::Ordering::SeqCst);
    }));
    second.set_busy_timeout(Duration::from_millis(1_200));
    let e = second.writer(&f.signer, "alice").unwrap_err();
    assert!(matches!(e, LedgerError::Busy { .. }), "{e}");
    assert!(e.to_string().contains("let it finish"), "{e}");
    assert_eq!(waited.load(core::sync::atomic::Ordering::SeqCst), 1);
    drop(w);
    second.writer(&f.signer, "alice").unwrap();
}

fn sequences_must_be_next_and_licenses_what_they_say(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    assert!(matches!(
        w.append(record("SW-2026-000001", 2, 1)),
        Err(LedgerError::Conflict { .. })
    ));
    // The same license id twice.
    w.append(record("SW-2026-000001", 1, 7)).unwrap();
    let e = w.append(record("SW-2026-000003", 1, 7)).unwrap_err();
    assert!(e.to_string().contains("license id"), "{e}");
}

fn uncommitted_writer_rolls_back(f: &Fixture) {
    let mut ledger = f.with_rows(2);
    {
        let mut w = ledger.writer(&f.signer, "alice").unwrap();
        w.append(record("SW-2026-000007", 1, 9)).unwrap();
    }
    assert_eq!(ledger.verify(&f.keyring(), None).unwrap().entries, 3);
    assert!(ledger.latest("SW-2026-000007").unwrap().is_none());
}

fn savepoint_undoes_a_failed_row_only(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.savepoint(|w| w.append(record("SW-2026-000001", 1, 1)).map(|_| ()))
        .unwrap();
    let failed: Result<(), LedgerError> = w.savepoint(|w| {
        w.append(record("SW-2026-000002", 1, 2))?;
        w.map_hw_serial("HW-1", "SW-2026-000002", samples::T0)?;
        Err(LedgerError::NotFound {
            path: "x".into(),
            named_by: None,
        })
    });
    assert!(failed.is_err());
    w.savepoint(|w| w.append(record("SW-2026-000003", 1, 3)).map(|_| ()))
        .unwrap();
    w.commit().unwrap();
    let r = ledger.verify(&f.keyring(), None).unwrap();
    assert_eq!((r.entries, r.licenses), (3, 2));
    assert!(ledger.sw_serial_of("HW-1").unwrap().is_none());
    assert!(ledger.latest("SW-2026-000002").unwrap().is_none());
}

fn unguarded_says_whether_a_failure_wrote(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.unguarded(|w| w.append(record("SW-2026-000001", 1, 1)).map(|_| ()))
        .unwrap();
    // Refused before it set out to write: the transaction goes on.
    let before: Result<(), Option<LedgerError>> = w.unguarded(|_| {
        Err(LedgerError::NotFound {
            path: "x".into(),
            named_by: None,
        })
    });
    assert!(matches!(before, Err(Some(LedgerError::NotFound { .. }))));
    // Refused by the fold of a charge line after the lines before it
    // were written: spoiled.
    let lines = |days| {
        vec![
            crate::ledger::Charge {
                kind: "activation".into(),
                item: "base:Phone System".into(),
                quantity: 1,
                cycle: "monthly".into(),
                period_start: samples::T0,
                period_end: None,
                days: 1,
                period_days: 30,
            },
            crate::ledger::Charge {
                kind: "activation".into(),
                item: "service:call_recording".into(),
                quantity: 1,
                cycle: "monthly".into(),
                period_start: samples::T0,
                period_end: None,
                days,
                period_days: 30,
            },
        ]
    };
    let after: Result<(), Option<LedgerError>> =
        w.unguarded(|w| w.add_charges("SW-2026-000001", 1, lines(31), samples::T0));
    assert!(matches!(after, Err(None)), "{after:?}");
    drop(w);
    // The caller drops the spoiled transaction and redoes its work.
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.unguarded(|w| w.append(record("SW-2026-000001", 1, 1)).map(|_| ()))
        .unwrap();
    w.unguarded(|w| w.add_charges("SW-2026-000001", 1, lines(2), samples::T0))
        .unwrap();
    w.commit().unwrap();
    let r = ledger.verify(&f.keyring(), None).unwrap();
    assert_eq!((r.entries, r.licenses), (3, 1));
}

fn serials_are_allocated_per_year_never_twice(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    assert_eq!(
        w.allocate_serial(2026, samples::T0).unwrap(),
        "SW-2026-000001"
    );
    // A serial already in use is skipped.
    w.append(record("SW-2026-000002", 1, 1)).unwrap();
    assert_eq!(
        w.allocate_serial(2026, samples::T0).unwrap(),
        "SW-2026-000003"
    );
    assert_eq!(
        w.allocate_serial(2027, samples::T0).unwrap(),
        "SW-2027-000001"
    );
    // The fold refuses to allocate a number twice.
    let e = w
        .push(
            samples::T0,
            Fact::SerialAllocated {
                serial: "SW-2026-000003".into(),
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("never allocated twice"), "{e}");
    w.commit().unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
}

fn the_last_serial_of_a_year_is_the_last(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.allocate_serial(2026, samples::T0).unwrap();
    w.commit().unwrap();
    // The counter brought near the end (reaching it takes a million
    // allocations), by hand: the writer that does not check the views
    // plays a tessera before the check.
    let edit = "UPDATE serial_counter SET last = 999998";
    f.exec(edit, edit);
    let mut w = ledger.open_writer(&f.signer, "alice", false).unwrap();
    assert_eq!(
        w.allocate_serial(2026, samples::T0).unwrap(),
        "SW-2026-999999"
    );
    let e = w.allocate_serial(2026, samples::T0).unwrap_err();
    assert!(e.to_string().contains("every SW serial of 2026"), "{e}");
}

fn an_allocation_never_skips_a_free_number(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    let allocate = |w: &mut Writer<'_>, serial: &str| {
        w.push(
            samples::T0,
            Fact::SerialAllocated {
                serial: serial.into(),
            },
        )
    };
    // The first number of a year is 1.
    let e = allocate(&mut w, "SW-2026-000002").unwrap_err();
    assert!(
        e.to_string()
            .contains("skipping SW-2026-000001, which is not in use"),
        "{e}"
    );
    allocate(&mut w, "SW-2026-000001").unwrap();
    // A jump past a free number is refused ...
    let e = allocate(&mut w, "SW-2026-000999").unwrap_err();
    assert!(e.to_string().contains("skipping SW-2026-000002"), "{e}");
    // ... a jump past numbers in use (a serial handed out by hand) is not.
    w.append(record("SW-2026-000002", 1, 1)).unwrap();
    w.map_hw_serial("HW-7F3A-0042", "SW-2026-000003", samples::T0)
        .unwrap();
    allocate(&mut w, "SW-2026-000004").unwrap();
    w.commit().unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
}

fn a_counter_set_high_stops_the_writer_and_its_allocation_is_named(f: &Fixture) {
    let mut ledger = f.create();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.allocate_serial(2026, samples::T0).unwrap();
    w.commit().unwrap();
    let edit = "UPDATE serial_counter SET last = 999998";
    f.exec(edit, edit);
    let mut ledger = f.after_edit(ledger);
    // A writer refuses the edited view: nothing is allocated.
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    assert!(matches!(e, LedgerError::Modified { .. }), "{e}");
    assert!(e.is_integrity(), "{e}");
    assert!(e.to_string().contains("modified outside tessera"), "{e}");
    assert!(e.to_string().contains("serial_counter"), "{e}");
    assert_eq!(ledger.head().unwrap().0, 2);
    // A writer that acted on it (a tessera before the check) allocated
    // SW-2026-999999; the fold refuses that entry, so verify names it.
    let mut w = ledger.open_writer(&f.signer, "alice", false).unwrap();
    assert_eq!(
        w.allocate_serial(2026, samples::T0).unwrap(),
        "SW-2026-999999"
    );
    w.commit().unwrap();
    let e = f.verify().unwrap_err();
    let (entry, reason) = integrity(&e);
    assert_eq!(entry, 3, "{e}");
    assert!(reason.contains("skipping SW-2026-000002"), "{e}");
}

fn a_writer_refuses_views_edited_outside_tessera(f: &Fixture) {
    // (what, SQL on both backends): every view, each way.
    let cases: &[(&str, &str)] = &[
        ("HW serial deleted", "DELETE FROM hw_serials"),
        (
            "HW serial moved",
            "UPDATE hw_serials SET serial = 'SW-2026-000002'",
        ),
        ("license deleted", "DELETE FROM licenses WHERE sequence = 2"),
        (
            "license sequence raised",
            "UPDATE licenses SET sequence = 7 WHERE sequence = 2",
        ),
        (
            "request key removed",
            "UPDATE licenses SET request_key = NULL",
        ),
        ("counter set back", "UPDATE serial_counter SET last = 0"),
        ("counter deleted", "DELETE FROM serial_counter"),
        ("schedule deleted", "DELETE FROM schedules"),
        (
            "schedule cancelled",
            "UPDATE schedules SET cancelled_at = 0",
        ),
        ("identity edited", "UPDATE identity SET vendor = 'other'"),
    ];
    for (what, edit) in cases {
        let f = f.fresh();
        let mut ledger = f.with_rows(3);
        let mut w = ledger.writer(&f.signer, "alice").unwrap();
        w.map_hw_serial("HW-7F3A-0042", "SW-2026-000001", samples::T0)
            .unwrap();
        w.set_schedule(
            "SW-2026-000001",
            ZeroSchedule {
                stop_at: samples::T0 + 5,
                delete_at: samples::T0 + 14,
            },
            samples::T0,
        )
        .unwrap();
        w.push(
            samples::T0,
            Fact::SerialAllocated {
                serial: "SW-2026-000003".into(),
            },
        )
        .unwrap();
        w.commit().unwrap();
        let head = ledger.head().unwrap();
        f.exec(edit, edit);
        let mut ledger = f.after_edit(ledger);
        let e = ledger.writer(&f.signer, "alice").unwrap_err();
        assert!(
            matches!(e, LedgerError::Modified { .. }) || e.is_integrity(),
            "{what}: {e}"
        );
        assert!(e.is_integrity(), "{what}: {e}");
        drop(ledger);
        let ledger = Ledger::open_read_only(&f.path()).unwrap();
        assert_eq!(
            ledger.head().unwrap(),
            head,
            "{what}: something was written"
        );
    }
}

fn a_writer_sees_an_edit_made_between_its_transactions(f: &Fixture) {
    let mut ledger = f.with_rows(2);
    // Two transactions of one ledger: the second needs no new check.
    for _ in 0..2 {
        let mut w = ledger.writer(&f.signer, "alice").unwrap();
        let seq = w.next_sequence("SW-2026-000001").unwrap();
        w.append(record(
            "SW-2026-000001",
            seq,
            40 + u8::try_from(seq).unwrap(),
        ))
        .unwrap();
        w.commit().unwrap();
    }
    // An edit by someone else between two transactions is seen.
    let edit = "DELETE FROM licenses WHERE sequence = 3";
    f.exec(edit, edit);
    if matches!(f.store, Store::Postgres { .. }) {
        // PostgreSQL: not by the ledger that checked already (a server
        // would fold the journal per commit), but by the next one opened.
        drop(ledger.writer(&f.signer, "alice").unwrap());
        ledger = f.after_edit(ledger);
    }
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    assert!(matches!(e, LedgerError::Modified { .. }), "{e}");
    assert!(e.to_string().contains("run `tessera ledger verify`"), "{e}");
}

fn hw_serials_are_normalized_and_converted_once(f: &Fixture) {
    let mut ledger = f.with_rows(1);
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.map_hw_serial("HW-7F3A-0042", "SW-2026-000001", samples::T0)
        .unwrap();
    assert_eq!(
        w.sw_serial_of("  hw-7f3a-0042 ").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    let e = w
        .map_hw_serial("HW-7F3A-0042", "SW-2026-000002", samples::T0)
        .unwrap_err();
    assert!(
        e.to_string().contains("converted to SW-2026-000001 before"),
        "{e}"
    );
    let e = w
        .map_hw_serial("hw-7f3a-0043", "SW-2026-000002", samples::T0)
        .unwrap_err();
    assert!(e.to_string().contains("normalized"), "{e}");
    w.commit().unwrap();
}

fn lifecycle_entries_must_name_their_license(f: &Fixture) {
    let mut ledger = f.with_rows(2);
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    // A void event on a license that is not a void.
    let e = w
        .add_event(
            "SW-2026-000001",
            1,
            "void",
            &serde_json::json!({"reason": "x"}),
            samples::T0,
        )
        .unwrap_err();
    assert!(e.to_string().contains("which is a issue"), "{e}");
    // A binding marked replaced by a license that is not a replacement.
    let e = w
        .mark_replaced("SW-2026-000001", 1, 2, &[], "rma", samples::T0)
        .unwrap_err();
    assert!(e.to_string().contains("not a later replacement"), "{e}");
    // A schedule for a serial without a license, a cancel without one.
    let z = ZeroSchedule {
        stop_at: samples::T0 + 5,
        delete_at: samples::T0 + 14,
    };
    assert!(w.set_schedule("SW-2026-000099", z, samples::T0).is_err());
    w.set_schedule("SW-2026-000001", z, samples::T0).unwrap();
    w.cancel_schedule("SW-2026-000001", samples::T0).unwrap();
    // Nothing to cancel any more: no entry.
    let head = w.head.0;
    w.cancel_schedule("SW-2026-000001", samples::T0).unwrap();
    assert_eq!(w.head.0, head);
    w.commit().unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
}

fn concurrent_writers_never_share_a_sequence(f: &Fixture) {
    drop(f.create());
    let path = f.path();
    let signer = &f.signer;
    let mut all: Vec<u32> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let path = path.clone();
                scope.spawn(move || {
                    let mut ledger = Ledger::open(&path).unwrap();
                    let mut got = Vec::new();
                    for i in 0..10u8 {
                        let mut w = ledger.writer(signer, "alice").unwrap();
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
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
    let r = f.verify().unwrap();
    assert_eq!((r.entries, r.checkpoints), (41, 41));
}

#[test]
fn entries_decode_exactly() {
    let e = Entry {
        at: 5,
        operator: "alice".into(),
        fact: Fact::License {
            action: Action::Issue,
            bytes: vec![1, 2, 3],
            order: "{}".into(),
            idem_key: None,
            request_key: Some([7; 32]),
        },
    };
    let body = e.encode();
    assert_eq!(Entry::decode(&body).unwrap(), e);
    let mut longer = body.clone();
    longer.push(0);
    assert!(Entry::decode(&longer)
        .unwrap_err()
        .0
        .contains("after the entry"));
    assert!(Entry::decode(&body[..body.len() - 1]).is_err());
    assert!(Entry::decode(b"").is_err());
    // A hash covers the position and every byte.
    let h = entry_hash(&[0; 32], 1, &body);
    assert_ne!(h, entry_hash(&[0; 32], 2, &body));
    assert_ne!(h, entry_hash(&[1; 32], 1, &body));
    assert_ne!(h, entry_hash(&[0; 32], 1, &longer));
}

fn tampering_is_found_at_the_first_bad_entry(f: &Fixture) {
    // (what, SQLite, PostgreSQL, first bad entry)
    let cases: &[(&str, &str, &str, u64)] = &[
        ("edited body", "UPDATE journal SET body = CAST(body || x'00' AS BLOB) WHERE position = 3", "UPDATE journal SET body = body || '\\x00'::bytea WHERE position = 3", 3),
        ("body turned to text", "UPDATE journal SET body = 'x' WHERE position = 3", "UPDATE journal SET body = 'x' WHERE position = 3", 3),
        ("deleted entry", "DELETE FROM journal WHERE position = 2", "DELETE FROM journal WHERE position = 2", 2),
        ("swapped entries", "UPDATE journal SET position = -3 WHERE position = 3; UPDATE journal SET position = 3 WHERE position = 2; UPDATE journal SET position = 2 WHERE position = -3", "UPDATE journal SET position = -3 WHERE position = 3; UPDATE journal SET position = 3 WHERE position = 2; UPDATE journal SET position = 2 WHERE position = -3", 2),
        ("last entry and its checkpoint removed, views kept", "DELETE FROM journal WHERE position = 5; DELETE FROM checkpoints WHERE entries = 5", "DELETE FROM journal WHERE position = 5; DELETE FROM checkpoints WHERE entries = 5", 5),
        ("checkpoint removed", "DELETE FROM checkpoints WHERE entries = 5", "DELETE FROM checkpoints WHERE entries = 5", 5),
        ("checkpoint bytes flipped", "UPDATE checkpoints SET bytes = CAST(substr(bytes, 1, length(bytes) - 1) || CASE WHEN substr(bytes, -1) = x'00' THEN x'01' ELSE x'00' END AS BLOB) WHERE entries = 3", "UPDATE checkpoints SET bytes = set_byte(bytes, length(bytes) - 1, get_byte(bytes, length(bytes) - 1) # 1) WHERE entries = 3", 3),
        ("checkpoint turned to text", "UPDATE checkpoints SET bytes = 'x' WHERE entries = 3", "UPDATE checkpoints SET bytes = 'x' WHERE entries = 3", 3),
        ("edited operator in a view", "UPDATE licenses SET operator = 'mallory' WHERE serial = 'SW-2026-000001' AND sequence = 2", "UPDATE licenses SET operator = 'mallory' WHERE serial = 'SW-2026-000001' AND sequence = 2", 4),
        ("request key removed from a view row", "UPDATE licenses SET request_key = NULL WHERE sequence = 1 AND serial = 'SW-2026-000002'", "UPDATE licenses SET request_key = NULL WHERE sequence = 1 AND serial = 'SW-2026-000002'", 3),
        ("deleted view row", "DELETE FROM licenses WHERE sequence = 1 AND serial = 'SW-2026-000002'", "DELETE FROM licenses WHERE sequence = 1 AND serial = 'SW-2026-000002'", 3),
        ("added view row claiming a later entry", "INSERT INTO hw_serials VALUES ('HW-X', 'SW-2026-000001', 0, 99)", "INSERT INTO hw_serials VALUES ('HW-X', 'SW-2026-000001', 0, 99)", 6),
        ("added view row claiming an entry", "INSERT INTO hw_serials VALUES ('HW-X', 'SW-2026-000001', 0, 2)", "INSERT INTO hw_serials VALUES ('HW-X', 'SW-2026-000001', 0, 2)", 2),
        ("identity vendor", "UPDATE identity SET vendor = 'other'", "UPDATE identity SET vendor = 'other'", 1),
    ];
    for (what, sqlite, postgres, bad) in cases {
        let f = f.fresh();
        drop(f.with_rows(4));
        f.exec(sqlite, postgres);
        let e = match f.verify() {
            Ok(r) => panic!("{what}: not found ({r:?})"),
            Err(e) => e,
        };
        let (entry, _) = integrity(&e);
        assert_eq!(entry, *bad, "{what}: {e}");
    }
}

#[test]
fn a_rewritten_chain_does_not_match_its_signed_checkpoints() {
    // Re-hash every entry after an edit: the chain holds, the
    // checkpoints (signed by the vendor key) do not.
    let f = Fixture::new();
    drop(f.with_rows(3));
    let conn = f.raw();
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT position, body FROM journal ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = [0u8; 32];
    for (position, body) in rows {
        let mut entry = Entry::decode(&body).unwrap();
        if position == 3 {
            entry.operator = "mallory".into();
        }
        let body = entry.encode();
        let hash = entry_hash(&prev, u64::try_from(position).unwrap(), &body);
        conn.execute(
            "UPDATE journal SET body = ?1, hash = ?2 WHERE position = ?3",
            rusqlite::params![body, hash.as_slice(), position],
        )
        .unwrap();
        prev = hash;
    }
    conn.execute(
        "UPDATE licenses SET operator = 'mallory' WHERE entry = 3",
        [],
    )
    .unwrap();
    let e = f.verify().unwrap_err();
    let (entry, reason) = integrity(&e);
    assert_eq!(entry, 3, "{e}");
    assert!(reason.contains("entries 3..3 were rewritten"), "{e}");
}

fn a_cut_off_end_is_found_against_a_checkpoint_kept_elsewhere(f: &Fixture) {
    let ledger = f.with_rows(4);
    let kept = ledger.latest_checkpoint().unwrap();
    drop(ledger);
    // The last transaction removed whole: entry, views and checkpoint.
    let cut = "DELETE FROM journal WHERE position = 5;
             DELETE FROM checkpoints WHERE entries = 5;
             DELETE FROM licenses WHERE entry = 5;";
    f.exec(cut, cut);
    // Consistent in itself ...
    f.verify().unwrap();
    // ... but not against what was kept.
    let ledger = Ledger::open_read_only(&f.path()).unwrap();
    let e = ledger.verify(&f.keyring(), Some(&kept.bytes)).unwrap_err();
    assert!(
        matches!(
            e,
            LedgerError::BehindExpectedHead {
                entries: 4,
                covered: 5
            }
        ),
        "{e:?}"
    );
    assert!(e.is_integrity(), "exit 4");
    // Older than the checkpoint: a backup taken before it, or the end
    // cut off; the message says what to do in each case.
    let text = e.to_string();
    for says in [
        "ends at entry 4",
        "a backup taken before the checkpoint, it lacks entries 5..5",
        "entries 5..5 were cut off",
    ] {
        assert!(text.contains(says), "{says}: {text}");
    }
    // A checkpoint of another ledger is not this one's.
    let g = f.fresh();
    let other = g.with_rows(1).latest_checkpoint().unwrap();
    let mut keyring = f.keyring();
    keyring.push(KeyEntry::new(g.signer.public_key(), 0));
    let e = ledger.verify(&keyring, Some(&other.bytes)).unwrap_err();
    assert!(e.to_string().contains("of ledger"), "{e}");
}

fn a_license_that_does_not_verify_is_named(f: &Fixture) {
    drop(f.with_rows(2));
    // Without the key that signed the licenses.
    let keyring = vec![KeyEntry::new(f.signer.public_key(), 0)];
    let e = Ledger::open_read_only(&f.path())
        .unwrap()
        .verify(&keyring, None)
        .unwrap_err();
    let (entry, reason) = integrity(&e);
    assert_eq!(entry, 2, "{e}");
    assert!(reason.contains("license SW-2026-000001:1"), "{e}");
}

fn writers_refuse_a_ledger_whose_end_is_not_checkpointed(f: &Fixture) {
    drop(f.with_rows(2));
    let cut = "DELETE FROM checkpoints WHERE entries = 3";
    f.exec(cut, cut);
    let mut ledger = Ledger::open(&f.path()).unwrap();
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    assert!(e.is_integrity(), "{e}");
}

fn damaged_tables_are_named_not_quoted(f: &Fixture) {
    for (sqlite, postgres) in [
        ("DROP TABLE events", "DROP TABLE events"),
        (
            "ALTER TABLE licenses RENAME COLUMN customer TO client",
            "ALTER TABLE licenses RENAME COLUMN customer TO client",
        ),
        (
            "UPDATE licenses SET sequence = 'one'",
            "ALTER TABLE licenses ALTER COLUMN sequence TYPE TEXT; UPDATE licenses SET sequence = 'one'",
        ),
        ("DELETE FROM identity", "DELETE FROM identity"),
        ("PRAGMA user_version = 2", "UPDATE tessera_ledger SET schema_version = 2"),
    ] {
        let f = f.fresh();
        drop(f.with_rows(2));
        f.exec(sqlite, postgres);
        let e = match Ledger::open_read_only(&f.path()) {
            Err(e) => e,
            Ok(l) => match (l.verify(&f.keyring(), None), l.all()) {
                (Err(e), _) | (Ok(_), Err(e)) => e,
                (Ok(_), Ok(_)) => panic!("{sqlite}: not found"),
            },
        };
        assert!(e.is_integrity(), "{sqlite}: {e}");
        let m = e.to_string();
        for database_words in [
            "no such",
            "Invalid column type",
            "Query returned",
            "ERROR",
            "db error",
            "relation",
        ] {
            assert!(!m.contains(database_words), "{sqlite}: {m}");
        }
    }
}

#[test]
fn postgres_init_creates_once_and_opens_refuse_what_is_not_a_ledger() {
    let Some(f) = Fixture::postgres() else {
        return;
    };
    let Store::Postgres { server, url } = &f.store else {
        unreachable!()
    };
    // An empty database holds no ledger.
    for open in [Ledger::open, Ledger::open_read_only] {
        let e = open(&f.path()).unwrap_err();
        assert!(matches!(e, LedgerError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("tessera ledger init"), "{e}");
    }
    let c = Ledger::init(&f.path(), VENDOR, &f.signer, "alice", samples::T0).unwrap();
    assert_eq!(c.data.entries, 1);
    let e = Ledger::init(&f.path(), VENDOR, &f.signer, "alice", samples::T0).unwrap_err();
    assert!(matches!(e, LedgerError::Exists(_)), "{e}");
    assert!(
        e.to_string().contains("holds a tessera ledger already"),
        "{e}"
    );
    let ledger = Ledger::open(&f.path()).unwrap();
    assert_eq!(ledger.identity().unwrap().ledger_id, c.data.ledger_id);
    drop(ledger);
    // A newer schema.
    server.psql(url, "UPDATE tessera_ledger SET schema_version = 99");
    assert!(matches!(
        Ledger::open(&f.path()),
        Err(LedgerError::NewerSchema { found: 99, .. })
    ));
    // Another program's database: refused to open and to init into.
    let other = f.fresh();
    let Store::Postgres { url: other_url, .. } = &other.store else {
        unreachable!()
    };
    server.psql(
        other_url,
        "CREATE TABLE journal (x INT); CREATE TABLE t (y INT)",
    );
    let e = Ledger::open_read_only(&other.path()).unwrap_err();
    assert!(matches!(e, LedgerError::Foreign { .. }), "{e}");
    let e = Ledger::init(&other.path(), VENDOR, &f.signer, "alice", samples::T0).unwrap_err();
    assert!(matches!(e, LedgerError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("table `journal`"), "{e}");
    // A database that does not exist, a server that is not there.
    let missing = PathBuf::from(server.url("nowhere"));
    let e = Ledger::open(&missing).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = Ledger::open(Path::new("postgres://tessera@127.0.0.1:1/x")).unwrap_err();
    assert!(e.to_string().contains("cannot be reached"), "{e}");
}

#[test]
fn postgres_init_that_fails_leaves_nothing() {
    let Some(f) = Fixture::postgres() else {
        return;
    };
    // A signer that fails: the genesis entry's checkpoint cannot be made.
    struct Broken(FileSigner);
    impl tessera_keys::Signer for Broken {
        fn kid(&self) -> tessera_verifier::KeyId {
            self.0.kid()
        }
        fn public_key(&self) -> [u8; 32] {
            self.0.public_key()
        }
        fn sign(&self, _: &[u8]) -> Result<[u8; 64], tessera_keys::KeyError> {
            Err(tessera_keys::KeyError::Signing("unplugged".into()))
        }
    }
    let broken = Broken(FileSigner::generate().unwrap());
    let e = Ledger::init(&f.path(), VENDOR, &broken, "alice", samples::T0).unwrap_err();
    assert!(matches!(e, LedgerError::Checkpoint { .. }), "{e}");
    // Nothing was left: the database is still empty, and init works.
    assert!(matches!(
        Ledger::open(&f.path()),
        Err(LedgerError::NotFound { .. })
    ));
    Ledger::init(&f.path(), VENDOR, &f.signer, "alice", samples::T0).unwrap();
}

#[test]
fn postgres_readers_never_block_writers() {
    let Some(f) = Fixture::postgres() else {
        return;
    };
    drop(f.with_rows(2));
    // A reader in the middle of its snapshot, and a writer holding the
    // lock: a second reader still reads at once, the writer commits.
    let reader = Ledger::open_read_only(&f.path()).unwrap();
    assert_eq!(reader.all().unwrap().len(), 2);
    let mut writer = Ledger::open(&f.path()).unwrap();
    writer.set_busy_timeout(Duration::from_secs(2));
    let mut w = writer.writer(&f.signer, "alice").unwrap();
    w.append(record("SW-2026-000005", 1, 5)).unwrap();
    let started = std::time::Instant::now();
    let second = Ledger::open_read_only(&f.path()).unwrap();
    assert_eq!(second.all().unwrap().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(1));
    w.commit().unwrap();
    assert_eq!(reader.all().unwrap().len(), 2, "the snapshot stays");
    reader.verify(&f.keyring(), None).unwrap();
    assert_eq!(f.verify().unwrap().licenses, 3);
}

#[test]
fn migrate_copies_a_file_ledger_into_postgres_and_verifies_it() {
    let Some(target) = Fixture::postgres() else {
        return;
    };
    let source = Fixture::new();
    let mut ledger = source.with_rows(5);
    {
        let mut w = ledger.writer(&source.signer, "alice").unwrap();
        w.map_hw_serial("HW-7F3A-0042", "SW-2026-000001", samples::T0)
            .unwrap();
        w.allocate_serial(2027, samples::T0).unwrap();
        let z = ZeroSchedule {
            stop_at: samples::T0 + 5,
            delete_at: samples::T0 + 14,
        };
        w.set_schedule("SW-2026-000002", z, samples::T0).unwrap();
        w.commit().unwrap();
    }
    drop(ledger);
    let keyring = source.keyring();
    let from = Ledger::open_read_only(&source.path()).unwrap();
    let r = migrate::migrate(&from, &target.path(), &keyring).unwrap();
    assert_eq!(
        (r.copy.entries, r.copy.head),
        (r.source.entries, r.source.head)
    );
    assert_eq!(r.copy.identity, r.source.identity);
    assert_eq!(r.copy.checkpoints, r.source.checkpoints);
    // The copy answers the same queries and takes new entries.
    let mut copy = Ledger::open(&target.path()).unwrap();
    assert_eq!(
        copy.sw_serial_of("HW-7F3A-0042").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    assert!(copy.schedule("SW-2026-000002").unwrap().is_some());
    assert_eq!(
        copy.history("SW-2026-000001").unwrap().len(),
        from.history("SW-2026-000001").unwrap().len()
    );
    let mut w = copy.writer(&source.signer, "alice").unwrap();
    assert_eq!(w.next_sequence("SW-2026-000001").unwrap(), 4);
    assert_eq!(
        w.allocate_serial(2027, samples::T0).unwrap(),
        "SW-2027-000002"
    );
    w.commit().unwrap();
    copy.verify(&keyring, None).unwrap();
    // A checkpoint of the file is one of the copy: it is the same ledger.
    let kept = from.latest_checkpoint().unwrap();
    copy.verify(&keyring, Some(&kept.bytes)).unwrap();
    // Never over a ledger, never into a file.
    let e = migrate::migrate(&from, &target.path(), &keyring).unwrap_err();
    assert!(matches!(e, LedgerError::Exists(_)), "{e}");
    let e = migrate::migrate(&from, &source.dir.path().join("copy.db"), &keyring).unwrap_err();
    assert!(e.to_string().contains("postgres://"), "{e}");
}

#[test]
fn migrate_refuses_a_source_that_does_not_verify() {
    let Some(target) = Fixture::postgres() else {
        return;
    };
    let source = Fixture::new();
    drop(source.with_rows(3));
    source
        .raw()
        .execute_batch("UPDATE licenses SET operator = 'mallory' WHERE entry = 3")
        .unwrap();
    let from = Ledger::open_read_only(&source.path()).unwrap();
    let e = migrate::migrate(&from, &target.path(), &source.keyring()).unwrap_err();
    assert_eq!(integrity(&e).0, 3, "{e}");
    // Nothing was created.
    assert!(matches!(
        Ledger::open(&target.path()),
        Err(LedgerError::NotFound { .. })
    ));
}

#[test]
fn postgres_over_tls_verifies_the_server() {
    let Some(server) = tessera_tests::postgres::PgServer::start_tls() else {
        return;
    };
    let f = Fixture::new();
    let plain = server.create_database();
    let ca = server.ca_file();
    let tls = PathBuf::from(format!(
        "{plain}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    ));
    Ledger::init(&tls, VENDOR, &f.signer, "alice", samples::T0).unwrap();
    let ledger = Ledger::open_read_only(&tls).unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
    // The server's session is encrypted.
    let on: String = server.psql(
        &plain,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.application_name = 'tessera'",
    );
    assert_eq!(on.trim(), "1", "{on}");
    drop(ledger);
    // Another CA's certificate does not verify this server.
    let other = tessera_tests::postgres::PgServer::start_tls().unwrap();
    let wrong = PathBuf::from(format!(
        "{plain}?sslmode=require&sslrootcert={}",
        other.ca_file().display()
    ));
    let e = Ledger::open(&wrong).unwrap_err();
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    // A file that holds no certificate.
    let junk = f.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = Ledger::open(Path::new(&format!(
        "{plain}?sslmode=verify-full&sslrootcert={}",
        junk.display()
    )))
    .unwrap_err();
    assert!(e.to_string().contains("cannot be used"), "{e}");
}

fn a_writer_refuses_a_head_its_last_checkpoint_did_not_sign(f: &Fixture) {
    let ledger = f.with_rows(3);
    let head = ledger.head().unwrap();
    f.exec(
        "UPDATE journal SET hash = zeroblob(32) WHERE position = (SELECT MAX(position) FROM journal)",
        "UPDATE journal SET hash = decode(repeat('00', 32), 'hex') WHERE position = (SELECT MAX(position) FROM journal)",
    );
    refused_for_its_head(f, f.after_edit(ledger), head.0);
}

/// The writer refuses `ledger` for a head its last checkpoint did not
/// sign, and nothing is written.
fn refused_for_its_head(f: &Fixture, mut ledger: Ledger, head: u64) {
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert!(
        e.to_string()
            .contains("is not the one its last checkpoint signed"),
        "{e}"
    );
    drop(ledger);
    assert_eq!(
        Ledger::open_read_only(&f.path()).unwrap().head().unwrap().0,
        head
    );
}

/// A journal rewritten with every hash recomputed is consistent in
/// itself; the writer refuses it by the head its last checkpoint signed,
/// so it never signs a checkpoint over forged history.
#[test]
fn a_writer_refuses_a_journal_rewritten_with_its_hashes_recomputed() {
    let f = Fixture::new();
    let ledger = f.with_rows(3);
    let head = ledger.head().unwrap();
    drop(ledger);
    let c = f.raw();
    let rows: Vec<(i64, Vec<u8>)> = c
        .prepare("SELECT position, body FROM journal ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = [0u8; 32];
    for (position, mut body) in rows {
        if position == 2 {
            let last = body.len() - 1;
            body[last] ^= 1;
        }
        let hash = journal::entry_hash(&prev, u64::try_from(position).unwrap(), &body);
        c.execute(
            "UPDATE journal SET body = ?1, hash = ?2 WHERE position = ?3",
            rusqlite::params![body, hash.to_vec(), position],
        )
        .unwrap();
        prev = hash;
    }
    drop(c);
    refused_for_its_head(&f, Ledger::open(&f.path()).unwrap(), head.0);
}

/// What an attacker with write access to the ledger does: entry `from`
/// (a license) is rewritten (its operator becomes mallory), every hash
/// from it on is recomputed and its view row follows, the checkpoints that
/// no longer match are removed and one signed by `sign` under `kid`
/// covers the forged head. Returns the forged head's entry count.
fn forge(f: &Fixture, from: u64, kid: KeyId, sign: impl Fn(&[u8]) -> [u8; 64]) -> u64 {
    let ledger = Ledger::open_read_only(&f.path()).unwrap();
    let identity = ledger.identity().unwrap();
    let entries = ledger.entries().unwrap();
    drop(ledger);
    let (mut sqlite, mut postgres) = (String::new(), String::new());
    let mut prev = [0u8; 32];
    let mut last = 0;
    for (position, mut entry) in entries {
        if position == from {
            entry.operator = "mallory".into();
        }
        let body = entry.encode();
        let hash = entry_hash(&prev, position, &body);
        if position >= from {
            let (b, h) = (hex::encode(&body), hex::encode(hash));
            sqlite += &format!(
                "UPDATE journal SET body = X'{b}', hash = X'{h}' WHERE position = {position};"
            );
            postgres += &format!(
                "UPDATE journal SET body = '\\x{b}'::bytea, hash = '\\x{h}'::bytea WHERE position = {position};"
            );
        }
        prev = hash;
        last = position;
    }
    let data = CheckpointData {
        issuer: identity.vendor,
        issued_at: samples::T0,
        ledger_id: identity.ledger_id,
        entries: last,
        head: prev,
        previous: Some(from - 1),
    };
    let c = hex::encode(
        sign_checkpoint(&data, &kid, |m| Ok::<_, core::convert::Infallible>(sign(m))).unwrap(),
    );
    let rest = format!(
        "UPDATE licenses SET operator = 'mallory' WHERE entry = {from}; DELETE FROM checkpoints WHERE entries >= {from};"
    );
    f.exec(
        &format!("{sqlite}{rest}INSERT INTO checkpoints (entries, bytes) VALUES ({last}, X'{c}');"),
        &format!("{postgres}{rest}INSERT INTO checkpoints (entries, bytes) VALUES ({last}, '\\x{c}'::bytea);"),
    );
    last
}

/// The writer refuses `e`'s ledger at the forged checkpoint of entry
/// `last`, naming `kid`; nothing was written.
fn refused_at_forged_checkpoint(f: &Fixture, e: &LedgerError, last: u64, kid: KeyId) {
    let (entry, reason) = integrity(e);
    assert_eq!(entry, last, "{e}");
    assert!(
        reason.contains(&format!("last checkpoint (entry {last})")),
        "{e}"
    );
    assert!(reason.contains(&hex::encode(kid)), "{e}");
    assert!(reason.contains("restore the ledger from a backup"), "{e}");
    let ledger = Ledger::open_read_only(&f.path()).unwrap();
    assert_eq!(ledger.head().unwrap().0, last);
    assert_eq!(ledger.latest_checkpoint().unwrap().kid, kid);
}

/// Finding: a checkpoint signed by any key the attacker makes passed the
/// writer (only the signing key's own checkpoints were verified), which
/// then signed a genuine checkpoint over the forged history.
fn a_writer_refuses_a_checkpoint_of_a_key_it_does_not_know(f: &Fixture) {
    drop(f.with_rows(3));
    let mallory = FileSigner::generate().unwrap();
    let last = forge(f, 3, mallory.kid(), |m| mallory.sign(m).unwrap());
    let mut ledger = Ledger::open(&f.path()).unwrap();
    ledger.set_keyring(&f.keyring());
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    refused_at_forged_checkpoint(f, &e, last, mallory.kid());
    assert!(e.to_string().contains("not in the vendor's keyring"), "{e}");
    // Without a keyring the writer knows the signing key only: the same.
    let mut ledger = Ledger::open(&f.path()).unwrap();
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    refused_at_forged_checkpoint(f, &e, last, mallory.kid());
    assert!(e.to_string().contains("no keyring was given"), "{e}");
}

/// Finding: a checkpoint naming a key of the keyring other than the
/// signing key (here a retired one, as after a rotation) was not
/// verified at all, so a garbage signature passed.
fn a_writer_refuses_a_checkpoint_a_keyring_key_did_not_sign(f: &Fixture) {
    drop(f.with_rows(3));
    let old = tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC);
    let mallory = FileSigner::generate().unwrap();
    let last = forge(f, 3, old, |m| mallory.sign(m).unwrap());
    let mut keyring = f.keyring();
    keyring[1].retired = true;
    let mut ledger = Ledger::open(&f.path()).unwrap();
    ledger.set_keyring(&keyring);
    let e = ledger.writer(&f.signer, "alice").unwrap_err();
    refused_at_forged_checkpoint(f, &e, last, old);
    assert!(
        e.to_string().contains("its signature does not verify"),
        "{e}"
    );
}

/// After a rotation the last checkpoint is the old key's: a writer given
/// the keyring verifies it and issues; one without a keyring cannot
/// know the old key and says how to give it.
fn a_writer_knows_the_keys_of_its_keyring(f: &Fixture) {
    let mut ledger = f.with_rows(2);
    let next = FileSigner::generate().unwrap();
    let mut keyring = f.keyring();
    keyring[0].retired = true;
    keyring.push(KeyEntry::new(next.public_key(), 0));
    drop(ledger);
    ledger = Ledger::open(&f.path()).unwrap();
    let e = ledger.writer(&next, "alice").unwrap_err();
    assert!(e.to_string().contains("name the vendor's keyring"), "{e}");
    ledger.set_keyring(&keyring);
    let mut w = ledger.writer(&next, "alice").unwrap();
    let seq = w.next_sequence("SW-2026-000001").unwrap();
    w.append(record("SW-2026-000001", seq, 7)).unwrap();
    w.commit().unwrap();
    // Its own checkpoint now: known without the keyring's other keys.
    drop(ledger);
    let mut ledger = Ledger::open(&f.path()).unwrap();
    drop(ledger.writer(&next, "alice").unwrap());
    assert_eq!(ledger.latest_checkpoint().unwrap().kid, next.kid());
    Ledger::open_read_only(&f.path())
        .unwrap()
        .verify(&keyring, None)
        .unwrap();
}

/// Finding: a writer that accepted a forged checkpoint (here one given a
/// keyring holding the attacker's key) signed a genuine checkpoint over
/// the forged history; the attacker then removed the forged one, and
/// `ledger verify` passed. The genuine checkpoint names the one it
/// follows, so the gap is found.
fn verify_finds_a_checkpoint_removed_after_a_genuine_one_followed_it(f: &Fixture) {
    drop(f.with_rows(3));
    let mallory = FileSigner::generate().unwrap();
    let forged = forge(f, 3, mallory.kid(), |m| mallory.sign(m).unwrap());
    let mut fooled = f.keyring();
    fooled.push(KeyEntry::new(mallory.public_key(), 0));
    let mut ledger = Ledger::open(&f.path()).unwrap();
    ledger.set_keyring(&fooled);
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    let seq = w.next_sequence("SW-2026-000001").unwrap();
    w.append(record("SW-2026-000001", seq, 9)).unwrap();
    let genuine = w.commit().unwrap().unwrap();
    assert_eq!(genuine.data.previous, Some(forged));
    drop(ledger);
    // With the forged checkpoint: it does not verify.
    let e = f.verify().unwrap_err();
    assert_eq!(integrity(&e).0, forged, "{e}");
    // Without it: a genuine checkpoint follows one that is not there.
    let remove = format!("DELETE FROM checkpoints WHERE entries = {forged}");
    f.exec(&remove, &remove);
    let e = f.verify().unwrap_err();
    let (entry, reason) = integrity(&e);
    assert_eq!(entry, 3, "{e}");
    assert!(
        reason.contains(&format!(
            "follows one of entry {forged}, but the ledger's checkpoint before it is the one of entry 2"
        )),
        "{e}"
    );
    assert!(reason.contains("a checkpoint was removed"), "{e}");
}

/// A chain of checkpoints may start late (a ledger written by a tessera
/// before the chain), never stop: a checkpoint without `previous` after
/// one with it was signed by a writer that does not check.
fn verify_finds_a_chain_of_checkpoints_that_stops(f: &Fixture) {
    drop(f.with_rows(2));
    f.verify().unwrap();
    let ledger = Ledger::open_read_only(&f.path()).unwrap();
    let last = ledger.latest_checkpoint().unwrap();
    drop(ledger);
    assert_eq!(last.data.previous, Some(last.data.entries - 1));
    // The last checkpoint signed again without `previous`, by the key.
    let mut data = last.data.clone();
    data.previous = None;
    let bytes = sign_checkpoint(&data, &f.signer.kid(), |m| f.signer.sign(m)).unwrap();
    let (n, c) = (data.entries, hex::encode(bytes));
    f.exec(
        &format!("UPDATE checkpoints SET bytes = X'{c}' WHERE entries = {n}"),
        &format!("UPDATE checkpoints SET bytes = '\\x{c}'::bytea WHERE entries = {n}"),
    );
    let e = f.verify().unwrap_err();
    let (entry, reason) = integrity(&e);
    assert_eq!(entry, n, "{e}");
    assert!(
        reason.contains("does not name the checkpoint it follows"),
        "{e}"
    );
    // Every checkpoint without it (a ledger of a tessera before the
    // chain): accepted as it was.
    for m in 2..n {
        let ledger = Ledger::open_read_only(&f.path()).unwrap();
        let bytes = ledger.backend.checkpoints().unwrap();
        drop(ledger);
        let (_, b) = bytes.iter().find(|(k, _)| *k == m).unwrap();
        let mut data = tessera_verifier::decode_checkpoint_unverified(b)
            .unwrap()
            .to_data();
        data.previous = None;
        let b = hex::encode(sign_checkpoint(&data, &f.signer.kid(), |m| f.signer.sign(m)).unwrap());
        f.exec(
            &format!("UPDATE checkpoints SET bytes = X'{b}' WHERE entries = {m}"),
            &format!("UPDATE checkpoints SET bytes = '\\x{b}'::bytea WHERE entries = {m}"),
        );
    }
    f.verify().unwrap();
    // This tessera's first writer on it starts the chain there.
    let mut ledger = Ledger::open(&f.path()).unwrap();
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    let seq = w.next_sequence("SW-2026-000001").unwrap();
    w.append(record("SW-2026-000001", seq, 8)).unwrap();
    assert_eq!(w.commit().unwrap().unwrap().data.previous, Some(n));
    drop(ledger);
    f.verify().unwrap();
}

/// The comparison of a backend's views with the fold names a row the
/// backend holds twice (a table whose key constraint was dropped), one
/// it lacks, and one no entry made; the same rows once each pass.
#[test]
fn the_view_comparison_names_a_doubled_a_missing_and_a_made_up_row() {
    use views::{HwRow, MemoryViews, ViewRow, ViewStore as _};
    let row = |hw: &str, entry: u64| HwRow {
        hw_serial: hw.into(),
        serial: "SW-2026-000001".into(),
        at: samples::T0,
        entry,
    };
    let mut fold = MemoryViews::default();
    fold.put_hw(&row("HW-1", 2)).unwrap();
    fold.put_hw(&row("HW-2", 3)).unwrap();
    let compare = |rows: &[HwRow]| {
        fold.compare(3, |f| {
            rows.iter().try_for_each(|r| f(ViewRow::Hw(r.clone())))
        })
        .unwrap()
    };
    assert_eq!(compare(&[row("HW-1", 2), row("HW-2", 3)]), None);
    let (entry, what) = compare(&[row("HW-1", 2), row("HW-2", 3), row("HW-2", 3)]).unwrap();
    assert_eq!(entry, 3);
    assert!(what.contains("holds row HW-2 twice"), "{what}");
    let (entry, what) = compare(&[row("HW-2", 3)]).unwrap();
    assert_eq!(entry, 2);
    assert!(what.contains("has no row HW-1"), "{what}");
    let (entry, what) = compare(&[row("HW-1", 2), row("HW-2", 3), row("HW-3", 3)]).unwrap();
    assert_eq!(entry, 3);
    assert!(what.contains("which no journal entry made"), "{what}");
}

/// The view `hw_serials` as ledgers made before it was `WITHOUT ROWID`
/// have it: a rowid table and an index of the primary key. Such a ledger
/// opens, reads, takes new entries (in the same table: nothing rebuilds
/// it) and verifies. (`charges` was such a table too, before schema 5
/// moved it to one row an entry: `registry::tests` upgrades one.)
#[test]
fn a_ledger_with_the_rowid_tables_of_earlier_schema_4_still_works() {
    const CHANGED: [&str; 1] = ["hw_serials"];
    let charge = |item: &str| crate::ledger::Charge {
        kind: "activation".into(),
        item: item.into(),
        quantity: 3,
        cycle: "monthly".into(),
        period_start: samples::T0,
        period_end: None,
        days: 30,
        period_days: 30,
    };
    let shapes = |f: &Fixture| -> Vec<(String, String)> {
        let c = f.raw();
        let mut s = c
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
                 AND name = 'hw_serials'",
            )
            .unwrap();
        let rows = s
            .query_map([], |r| Ok((r.get(0).unwrap(), r.get(1).unwrap())))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    let f = Fixture::new();
    let mut ledger = f.with_rows(2);
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    w.map_hw_serial("HW-7F3A-0042", "SW-2026-000001", samples::T0)
        .unwrap();
    w.add_charges(
        "SW-2026-000001",
        1,
        vec![charge("profile:UC-BUSINESS"), charge("base:Phone System")],
        samples::T0,
    )
    .unwrap();
    w.commit().unwrap();
    drop(ledger);
    let new = shapes(&f);
    assert_eq!(new.len(), CHANGED.len());
    assert!(
        new.iter().all(|(_, sql)| sql.ends_with("WITHOUT ROWID")),
        "{new:?}"
    );

    // The same tables as the DDL before: the rows copied into rowid
    // tables, the indexes made again.
    let c = f.raw();
    for (table, sql) in &new {
        let indexes: Vec<String> = c
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let old = sql.trim_end_matches("WITHOUT ROWID").trim_end();
        c.execute_batch(&format!(
            "BEGIN; ALTER TABLE {table} RENAME TO moved; {old}; \
             INSERT INTO {table} SELECT * FROM moved; DROP TABLE moved; {}; COMMIT;",
            indexes.join("; ")
        ))
        .unwrap();
    }
    drop(c);
    let old = shapes(&f);
    assert!(
        old.iter().all(|(_, sql)| !sql.contains("WITHOUT ROWID")),
        "{old:?}"
    );
    let autoindexes: i64 = f
        .raw()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_autoindex_hw_serials_1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(autoindexes, 1);

    // It reads, verifies, takes new entries of both views and verifies.
    let mut ledger = Ledger::open(&f.path()).unwrap();
    assert_eq!(
        ledger.sw_serial_of("hw-7f3a-0042").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    let billed = |l: &Ledger| {
        l.queries()
            .charges(samples::T0, samples::T0 + 1)
            .unwrap()
            .into_iter()
            .map(|c| (c.serial, c.sequence, c.line, c.item))
            .collect::<Vec<_>>()
    };
    assert_eq!(billed(&ledger).len(), 2);
    let r = ledger.verify(&f.keyring(), None).unwrap();
    assert_eq!((r.entries, r.licenses), (5, 2));
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    let e = w
        .map_hw_serial("HW-7F3A-0042", "SW-2026-000002", samples::T0)
        .unwrap_err();
    assert!(
        e.to_string().contains("converted to SW-2026-000001 before"),
        "{e}"
    );
    w.map_hw_serial("HW-7F3A-0043", "SW-2026-000002", samples::T0)
        .unwrap();
    w.add_charges("SW-2026-000002", 1, vec![charge("storage")], samples::T0)
        .unwrap();
    w.commit().unwrap();
    assert_eq!(
        billed(&ledger),
        [
            (
                "SW-2026-000001".to_owned(),
                1,
                0,
                "profile:UC-BUSINESS".to_owned()
            ),
            (
                "SW-2026-000001".to_owned(),
                1,
                1,
                "base:Phone System".to_owned()
            ),
            ("SW-2026-000002".to_owned(), 1, 0, "storage".to_owned()),
        ]
    );
    let r = ledger.verify(&f.keyring(), None).unwrap();
    assert_eq!((r.entries, r.licenses), (7, 2));
    drop(ledger);
    assert_eq!(shapes(&f), old);
    // An edited row is still found by the views comparison.
    f.raw()
        .execute_batch("UPDATE hw_serials SET at = at + 1 WHERE hw_serial = 'HW-7F3A-0043'")
        .unwrap();
    let e = f.verify().unwrap_err();
    assert!(e.is_integrity(), "{e}");
}

/// The request keys of a serial's licenses, row by row, and the serials
/// another key answered for; the fold takes a `retire_keys` event on a
/// renewal and refuses one on a first license.
fn request_keys_of_a_binding_and_of_other_serials(f: &Fixture) {
    let mut ledger = f.with_rows(4);
    let key = |n: u8| hex::encode([n; 32]);
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    assert_eq!(
        w.request_key_rows("SW-2026-000001", 1).unwrap(),
        [(1, key(1)), (2, key(3))]
    );
    assert_eq!(
        w.request_key_rows("SW-2026-000001", 2).unwrap(),
        [(2, key(3))]
    );
    assert!(w.request_key_rows("SW-2026-000001", 3).unwrap().is_empty());
    assert_eq!(
        w.serials_with_request_key(&key(2), "SW-2026-000001")
            .unwrap(),
        ["SW-2026-000002"]
    );
    assert!(w
        .serials_with_request_key(&key(2), "SW-2026-000002")
        .unwrap()
        .is_empty());
    assert!(w
        .serials_with_request_key(&key(9), "SW-2026-000001")
        .unwrap()
        .is_empty());
    assert!(w
        .serials_with_request_key("not hex", "SW-2026-000001")
        .unwrap()
        .is_empty());
    let detail = serde_json::json!({ "retired_keys": [key(1)] });
    let e = w
        .add_event("SW-2026-000001", 1, "retire_keys", &detail, samples::T0)
        .unwrap_err();
    assert!(e.to_string().contains("which is a issue"), "{e}");
    w.add_event("SW-2026-000001", 2, "retire_keys", &detail, samples::T0)
        .unwrap();
    w.commit().unwrap();
    ledger.verify(&f.keyring(), None).unwrap();
    f.verify().unwrap();
}

/// `activation_opened` goes into the registry history of a PBX the
/// registry holds, and the fold refuses it for a serial outside the
/// registry or a code expired when it was made; `ledger verify` rebuilds
/// it.
fn an_activation_code_is_a_fact_of_a_registered_pbx(f: &Fixture) {
    let catalog = crate::catalog::Catalog::default_catalog().unwrap();
    let mut ledger = f.create();
    let at = samples::T0;
    let mut w = ledger.writer(&f.signer, "alice").unwrap();
    let new = crate::registry::NewPbx {
        customer: "Acme".into(),
        name: "HQ".into(),
        model: "VM-500".into(),
        platform: tessera_verifier::claims::Platform::Vm,
        cycle: tessera_verifier::claims::Cycle::Yearly,
        profiles: [("PBX-BASIC".to_owned(), 5)].into(),
        storage: 0,
        policy: None,
    };
    let serial = crate::registry::add(&mut w, &catalog, &new, None, at).unwrap();
    let e = w
        .open_activation("SW-2026-999999", [1; 32], at + 60, at)
        .unwrap_err();
    assert!(e.to_string().contains("not in the registry"), "{e}");
    let e = w.open_activation(&serial, [1; 32], at, at).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
    w.open_activation(&serial, [1; 32], at + 60, at).unwrap();
    w.open_activation(&serial, [2; 32], at + 120, at + 1)
        .unwrap();
    w.commit().unwrap();
    let changes = ledger.queries().pbx_changes(&serial).unwrap();
    let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["added", ACTIVATION, ACTIVATION]);
    assert!(
        changes[2].detail.contains(&hex::encode([2u8; 32])),
        "{}",
        changes[2].detail
    );
    assert!(changes[2].detail.contains(&(at + 120).to_string()));
    ledger.verify(&f.keyring(), None).unwrap();
    f.verify().unwrap();
}

#[test]
fn a_read_only_ledger_never_advises_issuing_into_a_copy() {
    let text = LedgerError::ReadOnly {
        path: PathBuf::from("/srv/tessera/ledger.db"),
    }
    .to_string();
    assert!(text.contains("as the ledger's owner"), "{text}");
    assert!(text.contains("never issue into a copy"), "{text}");
    assert!(!text.contains("issue on a writable copy"), "{text}");
}
