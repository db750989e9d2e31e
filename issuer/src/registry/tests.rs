//! The registry and the policy each PBX keeps, against a real ledger.

use chrono::{DateTime, Utc};
use tessera_keys::Signer as _;
use tessera_signer::FileSigner;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{AfterGrace, ComponentKind, Identity};
use tessera_verifier::encode::RequestData;
use tessera_verifier::samples;

use super::*;
use crate::calendar::parse_time;
use crate::issuance::{issue, renew, replace, IssueOptions, Issuer, ReplaceReason};
use crate::ledger::Ledger;

const EXAMPLE: &str = include_str!("../../examples/order.toml");

fn t(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

/// The default catalog with the VM platform's default policy replaced.
fn catalog_with_vm_policy(policy: &str) -> Catalog {
    let text = crate::catalog::DEFAULT_CATALOG.replacen(
        "policy = \"vm-14d-emergency\"",
        &format!("policy = \"{policy}\""),
        1,
    );
    Catalog::parse("vendor.toml", &text).unwrap()
}

fn vm_order() -> Order {
    let mut o = Order::parse("order.toml", EXAMPLE, false).unwrap();
    o.platform = PlatformName::Vm;
    o
}

fn vm_request(serial: &str, seed: u8) -> RequestData {
    let mut r = samples::request();
    r.platform = Platform::Vm;
    r.serial = Some(serial.into());
    r.hw_serial = None;
    r.device_key = [seed; 32];
    r.identity = [
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-0000000000{seed:02x}"),
        ),
        (ComponentKind::MACHINE_ID, format!("{seed:032x}")),
        (ComponentKind::NIC_MAC, format!("00163e0000{seed:02x}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

fn new_vm(policy: Option<&str>) -> NewPbx {
    NewPbx {
        customer: "Example Dental Clinic".into(),
        name: "Main office".into(),
        model: "VM-500".into(),
        platform: Platform::Vm,
        cycle: Cycle::Yearly,
        // The fixture order's (a first license is for the registered order).
        profiles: [
            ("PBX-BASIC".to_owned(), 20),
            ("UC-ESSENTIAL".to_owned(), 15),
            ("UC-BUSINESS".to_owned(), 10),
            ("UC-PREMIUM".to_owned(), 5),
            ("UC-WIZYCONF".to_owned(), 2),
        ]
        .into_iter()
        .collect(),
        storage: 0,
        policy: policy.map(str::to_owned),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    ledger: Ledger,
    signer: FileSigner,
    /// The PostgreSQL server of a ledger in a database, kept running.
    server: Option<tessera_tests::postgres::PgServer>,
}

impl Fixture {
    /// A ledger in a file.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        Self::at(dir, path, None)
    }

    /// A ledger in a database of a fresh PostgreSQL server; `None` when
    /// PostgreSQL is not installed (outside CI).
    fn postgres() -> Option<Self> {
        let server = tessera_tests::postgres::PgServer::start()?;
        let path = std::path::PathBuf::from(server.create_database());
        Some(Self::at(tempfile::tempdir().unwrap(), path, Some(server)))
    }

    fn at(
        dir: tempfile::TempDir,
        path: std::path::PathBuf,
        server: Option<tessera_tests::postgres::PgServer>,
    ) -> Self {
        let signer = FileSigner::generate().unwrap();
        let ledger = Ledger::create(
            &path,
            "tessera-vendor",
            &signer,
            "alice",
            t("2026-01-01").timestamp(),
        )
        .unwrap();
        Self {
            _dir: dir,
            path,
            ledger,
            signer,
            server,
        }
    }

    /// Runs SQL on the ledger outside tessera: `sqlite` on a file,
    /// `postgres` on a database.
    fn exec(&self, sqlite: &str, postgres: &str) {
        if self.server.is_some() {
            let url = self.path.to_str().unwrap();
            let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
            c.batch_execute(postgres).unwrap();
        } else {
            let conn = rusqlite::Connection::open(&self.path).unwrap();
            conn.execute_batch(sqlite).unwrap();
        }
    }

    fn run<T>(
        &mut self,
        catalog: &Catalog,
        f: impl FnOnce(&mut Writer<'_>, &Issuer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let issuer = Issuer {
            catalog,
            signer: &self.signer,
            operator: "alice",
        };
        let mut w = self.ledger.writer(&self.signer, "alice").unwrap();
        let out = f(&mut w, &issuer)?;
        w.commit().unwrap();
        Ok(out)
    }

    fn verify(&self) {
        let keyring = [tessera_verifier::KeyEntry::new(self.signer.public_key(), 0)];
        self.ledger.verify(&keyring, None).unwrap();
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
                    super::$name(super::Fixture::new());
                }
                #[test]
                fn postgres() {
                    if let Some(f) = super::Fixture::postgres() {
                        super::$name(f);
                    }
                }
            }
        )*
    };
}

on_both_backends!(
    a_pbx_keeps_its_72h_locked_policy_through_modify_renew_and_replace_with_the_default_catalog,
    a_policy_changes_only_by_an_approved_edit_and_a_differing_catalog_is_reported,
    a_vm_request_with_a_serial_the_registry_never_allocated_is_refused,
    a_hw_first_activation_enters_the_pbx_with_the_orders_policy,
    storage_is_sold_for_cloud_only,
    a_schema_3_ledger_is_read_with_an_empty_registry_and_upgraded_by_its_first_writer,
    a_migration_records_the_new_platform_and_model,
    a_pbx_added_with_its_hw_serial_is_the_one_its_appliance_activates,
    a_hw_serial_of_another_pbx_is_refused_naming_it,
    a_replaced_binding_marks_the_pbx_replaced,
    a_void_credits_what_the_voided_license_charged,
);

fn opts(now: &str) -> IssueOptions<'static> {
    IssueOptions {
        now: t(now),
        ..IssueOptions::default()
    }
}

fn is_72h_locked(p: &Policy) -> bool {
    p.grace == 72 * 3600
        && p.after_grace == AfterGrace::Locked
        && p.check_interval == 3 * 3600
        && p.renewal_window == 86_400
        && p.rollback_tolerance == 3600
}

fn a_pbx_keeps_its_72h_locked_policy_through_modify_renew_and_replace_with_the_default_catalog(
    mut f: Fixture,
) {
    // The appliance line's catalog: VMs default to 72 h / locked / 3-hourly.
    let appliances = catalog_with_vm_policy("appliance-72h-locked");
    let default = Catalog::default_catalog().unwrap();
    let serial = f
        .run(&appliances, |w, i| {
            add(
                w,
                i.catalog,
                &new_vm(None),
                None,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap();
    let first = f
        .run(&appliances, |w, i| {
            issue(
                w,
                i,
                &vm_order(),
                &vm_request(&serial, 1),
                &opts("2026-01-02"),
            )
        })
        .unwrap();
    assert!(is_72h_locked(&first.license.policy));
    assert_eq!(first.license.lease_end - first.license.issued_at, 72 * 3600);

    // Every later command runs with the default catalog (14 d / emergency
    // only / daily for VMs): the PBX keeps what it recorded.
    let mut more = vm_order();
    more.profiles.insert("PBX-BASIC".into(), 25);
    let changed = f
        .run(&default, |w, i| {
            crate::lifecycle::modify(w, i, &serial, &more, None, &opts("2026-02-01"))
        })
        .unwrap();
    assert!(is_72h_locked(&changed.license.policy), "modify");
    assert_eq!(
        changed.license.lease_end - changed.license.issued_at,
        72 * 3600
    );
    let renewed = f
        .run(&default, |w, i| {
            renew(w, i, &vm_request(&serial, 1), t("2026-02-02"))
        })
        .unwrap();
    assert!(is_72h_locked(&renewed.license.policy), "renew");
    assert_eq!(
        renewed.license.lease_end - renewed.license.issued_at,
        72 * 3600
    );
    let replaced = f
        .run(&default, |w, i| {
            replace(
                w,
                i,
                &serial,
                &vm_request(&serial, 2),
                ReplaceReason::Rma,
                Some("VM-900"),
                t("2026-02-03"),
            )
        })
        .unwrap();
    assert!(is_72h_locked(&replaced.license.policy), "replace");
    assert_eq!(
        replaced.license.lease_end - replaced.license.issued_at,
        72 * 3600
    );
    // The default catalog's policy of that name agrees: nothing to report.
    let row = f.ledger.queries().pbx(&serial).unwrap().unwrap();
    assert_eq!(row.policy, "appliance-72h-locked");
    assert_eq!(policy_drift(&default, &row), None);
    // `replace --model` recorded the new device's model.
    assert_eq!(row.model, "VM-900");
    f.verify();
}

fn a_policy_changes_only_by_an_approved_edit_and_a_differing_catalog_is_reported(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let serial = f
        .run(&default, |w, i| {
            add(
                w,
                i.catalog,
                &new_vm(None),
                None,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap();
    f.run(&default, |w, i| {
        issue(
            w,
            i,
            &vm_order(),
            &vm_request(&serial, 1),
            &opts("2026-01-02"),
        )
    })
    .unwrap();
    let row = f.ledger.queries().pbx(&serial).unwrap().unwrap();
    assert_eq!(row.policy, "vm-14d-emergency");

    // A catalog whose vm-14d-emergency now says 7 days: reported, not used.
    let changed = Catalog::parse(
        "vendor.toml",
        &crate::catalog::DEFAULT_CATALOG.replacen(
            "name = \"vm-14d-emergency\"\ndescription = \"Virtual machine: 14 days offline grace, then emergency calls only\"\nlease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"\ncheck_interval = \"1d\"\ngrace = \"14d\"",
            "name = \"vm-14d-emergency\"\ndescription = \"changed\"\nlease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"\ncheck_interval = \"1d\"\ngrace = \"7d\"",
            1,
        ),
    )
    .unwrap();
    assert_eq!(
        policy_drift(&changed, &row),
        Some(vec!["grace 14d (catalog: 7d)".to_owned()])
    );
    let renewed = f
        .run(&changed, |w, i| {
            renew(w, i, &vm_request(&serial, 1), t("2026-02-02"))
        })
        .unwrap();
    assert_eq!(renewed.license.policy.grace, 14 * 86_400);

    // No approval, no change; an unknown name is refused with the names.
    let e = f
        .run(&default, |w, i| {
            change_policy(w, i.catalog, &row, "appliance-72h-locked", None, 0)
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::PolicyNeedsApproval { .. })
    ));
    let e = f
        .run(&default, |w, i| {
            change_policy(w, i.catalog, &row, "nope", Some("CHG-1"), 0)
        })
        .unwrap_err();
    assert!(e.to_string().contains("appliance-72h-locked"), "{e}");
    f.run(&default, |w, i| {
        change_policy(
            w,
            i.catalog,
            &row,
            "appliance-72h-locked",
            Some("CHG-1"),
            t("2026-02-03").timestamp(),
        )
    })
    .unwrap();
    let renewed = f
        .run(&default, |w, i| {
            renew(w, i, &vm_request(&serial, 1), t("2026-02-04"))
        })
        .unwrap();
    assert!(is_72h_locked(&renewed.license.policy));
    let changes = f.ledger.queries().pbx_changes(&serial).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[1].detail.contains("CHG-1"), "{:?}", changes[1]);
    f.verify();
}

fn a_vm_request_with_a_serial_the_registry_never_allocated_is_refused(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let e = f
        .run(&default, |w, i| {
            issue(
                w,
                i,
                &vm_order(),
                &vm_request("SW-2026-000042", 1),
                &opts("2026-01-02"),
            )
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::NotRegistered { .. })
    ));
    // The same for a Cloud PBX.
    let mut cloud = vm_order();
    cloud.platform = PlatformName::Cloud;
    let mut r = vm_request("SW-2026-000042", 1);
    r.platform = Platform::Cloud;
    let e = f
        .run(&default, |w, i| {
            issue(w, i, &cloud, &r, &opts("2026-01-02"))
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::NotRegistered { .. })
    ));
    // A serial the registry allocated activates; for the platform it was
    // added with only.
    let serial = f
        .run(&default, |w, i| {
            add(
                w,
                i.catalog,
                &new_vm(None),
                None,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap();
    assert_eq!(serial, "SW-2026-000001");
    let mut r = vm_request(&serial, 1);
    r.platform = Platform::Cloud;
    let e = f
        .run(&default, |w, i| {
            issue(w, i, &cloud, &r, &opts("2026-01-02"))
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::RegisteredPlatform { .. })
    ));
    f.run(&default, |w, i| {
        issue(
            w,
            i,
            &vm_order(),
            &vm_request(&serial, 1),
            &opts("2026-01-02"),
        )
    })
    .unwrap();
    f.verify();
}

fn a_hw_first_activation_enters_the_pbx_with_the_orders_policy(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let mut o = Order::parse("order.toml", EXAMPLE, false).unwrap();
    o.policy = Some("appliance-72h-locked".into());
    let issued = f
        .run(&default, |w, i| {
            issue(w, i, &o, &samples::request(), &opts("2026-01-02"))
        })
        .unwrap();
    assert!(is_72h_locked(&issued.license.policy));
    let row = f.ledger.queries().pbx("SW-2026-000001").unwrap().unwrap();
    assert_eq!(row.platform, "hw");
    assert_eq!(row.model, "TA-7000");
    assert_eq!(row.policy, "appliance-72h-locked");
    assert_eq!(row.profile_counts()["PBX-BASIC"], 20);
    f.verify();
}

fn storage_is_sold_for_cloud_only(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let mut hw = Order::parse("order.toml", EXAMPLE, false).unwrap();
    hw.storage_units = 3;
    let e = f
        .run(&default, |w, i| {
            issue(w, i, &hw, &samples::request(), &opts("2026-01-02"))
        })
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::StorageNotCloud { units: 3, .. })
    ));
    let mut vm = new_vm(None);
    vm.storage = 1;
    let e = f
        .run(&default, |w, i| add(w, i.catalog, &vm, None, 0))
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Policy(PolicyError::StorageNotCloud { units: 1, .. })
    ));
    let mut cloud = new_vm(None);
    cloud.platform = Platform::Cloud;
    cloud.storage = 4;
    let serial = f
        .run(&default, |w, i| {
            add(w, i.catalog, &cloud, None, t("2026-01-02").timestamp())
        })
        .unwrap();
    let row = f.ledger.queries().pbx(&serial).unwrap().unwrap();
    assert_eq!((row.storage, row.policy.as_str()), (4, "cloud-online"));
    // A Cloud PBX gets no policy with offline grace.
    cloud.policy = Some("vm-14d-emergency".into());
    cloud.storage = 0;
    let e = f
        .run(&default, |w, i| add(w, i.catalog, &cloud, None, 0))
        .unwrap_err();
    assert!(matches!(e, Error::Policy(PolicyError::GraceOnCloud { .. })));
}

fn a_schema_3_ledger_is_read_with_an_empty_registry_and_upgraded_by_its_first_writer(f: Fixture) {
    // What a ledger of the journal's first schema looks like: no registry
    // tables, and no registry facts in its journal (its genesis only).
    f.exec(
        "DROP TABLE pbxs; DROP TABLE pbx_changes; DROP TABLE charges; PRAGMA user_version = 3;",
        "DROP TABLE pbxs; DROP TABLE pbx_changes; DROP TABLE charges; \
         UPDATE tessera_ledger SET schema_version = 3;",
    );
    // A reader sees an empty registry; the first writer adds the tables.
    let reader = Ledger::open_read_only(&f.path).unwrap();
    assert!(reader.queries().pbxs().unwrap().is_empty());
    assert!(reader.queries().pbx("SW-2026-000001").unwrap().is_none());
    assert!(reader
        .queries()
        .charges(i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
    drop(reader);
    first_write(&f.path, &f.signer).unwrap();
    // Upgraded: its tables there and empty, the ledger whole.
    let reader = Ledger::open_read_only(&f.path).unwrap();
    assert!(reader.queries().pbxs().unwrap().is_empty());
    drop(reader);
    let version: i32 = if f.server.is_some() {
        let url = f.path.to_str().unwrap();
        let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        c.query_one("SELECT schema_version FROM tessera_ledger", &[])
            .unwrap()
            .get(0)
    } else {
        rusqlite::Connection::open(&f.path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let newest = if f.server.is_some() {
        crate::ledger::postgres::SCHEMA_VERSION
    } else {
        crate::ledger::sqlite::SCHEMA_VERSION
    };
    assert_eq!(version, newest);
}

/// The charges view of a ledger file before schema 5: one row a line.
const LINE_CHARGES: &str = "
ALTER TABLE charges RENAME TO charges_by_entry;
DROP INDEX charges_at;
CREATE TABLE charges (
    entry INTEGER NOT NULL, line INTEGER NOT NULL, serial TEXT NOT NULL,
    sequence INTEGER NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL,
    quantity INTEGER NOT NULL, cycle TEXT NOT NULL, period_start INTEGER NOT NULL,
    period_end INTEGER, days INTEGER NOT NULL, period_days INTEGER NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (entry, line)
) WITHOUT ROWID;
CREATE INDEX charges_at ON charges (at);
INSERT INTO charges SELECT c.entry, l.key, c.serial, c.sequence, l.value ->> 0, l.value ->> 1,
    l.value ->> 2, l.value ->> 3, l.value ->> 4, l.value ->> 5, l.value ->> 6, l.value ->> 7, c.at
    FROM charges_by_entry c, json_each(c.lines) l;
DROP TABLE charges_by_entry;
PRAGMA user_version = 4;
";

#[test]
fn a_schema_4_file_is_read_and_its_charges_moved_to_one_row_an_entry_by_its_first_writer() {
    let mut f = Fixture::new();
    let default = Catalog::default_catalog().unwrap();
    f.run(&default, |w, i| {
        issue(
            w,
            i,
            &Order::parse("order.toml", EXAMPLE, false).unwrap(),
            &samples::request(),
            &opts("2026-01-02"),
        )
    })
    .unwrap();
    let charges = |f: &Fixture| {
        Ledger::open_read_only(&f.path)
            .unwrap()
            .queries()
            .charges(i64::MIN, i64::MAX)
            .unwrap()
    };
    let before = charges(&f);
    assert!(before.len() > 1, "{before:?}");
    let path = f.path.clone();
    let version = || -> i32 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    let rows = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM charges", [], |r| r.get(0))
            .unwrap()
    };
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(LINE_CHARGES)
        .unwrap();
    assert_eq!(
        (version(), rows()),
        (4, i64::try_from(before.len()).unwrap())
    );
    // A reader of schema 4 reads the lines as they are.
    assert_eq!(charges(&f), before);
    // A writer whose check of the views fails leaves the file as it was:
    // the move is part of its transaction.
    let copy = path.with_extension("tampered.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let tampered = rusqlite::Connection::open(&copy).unwrap();
    tampered
        .execute_batch("UPDATE charges SET quantity = quantity + 1 WHERE line = 0")
        .unwrap();
    let shape = |c: &rusqlite::Connection| -> (i32, i64) {
        (
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap(),
            c.query_row("SELECT count(*) FROM charges", [], |r| r.get(0))
                .unwrap(),
        )
    };
    let kept = shape(&tampered);
    let e = first_write(&copy, &f.signer).unwrap_err();
    assert!(e.is_integrity(), "{e}");
    assert_eq!(shape(&tampered), kept);
    drop(tampered);
    // The first writer moves them, and its check of the views holds.
    first_write(&f.path, &f.signer).unwrap();
    assert_eq!(
        (version(), rows()),
        (crate::ledger::sqlite::SCHEMA_VERSION, 1)
    );
    assert_eq!(charges(&f), before);
    f.ledger = Ledger::open(&f.path).unwrap();
    f.run(&default, |w, i| {
        let mut o = Order::parse("order.toml", EXAMPLE, false).unwrap();
        for n in o.profiles.values_mut() {
            *n += 1;
        }
        let change = IssueOptions {
            change: true,
            ..opts("2026-02-02")
        };
        issue(w, i, &o, &samples::request(), &change)
    })
    .unwrap();
    assert!(charges(&f).len() > before.len());
    assert_eq!(rows(), 2);
    // A file that says schema 4 but holds schema 5's charges is damaged,
    // for readers and writers alike.
    drop(f.ledger);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 4")
        .unwrap();
    let read = Ledger::open_read_only(&path)
        .unwrap()
        .queries()
        .charges(i64::MIN, i64::MAX);
    assert!(
        matches!(read, Err(crate::ledger::LedgerError::Damaged { .. })),
        "{read:?}"
    );
    let write = first_write(&path, &f.signer);
    assert!(write.is_err(), "{write:?}");
}

/// Opens the ledger at `path` and commits a writer's transaction (which
/// brings an earlier schema up to date first).
fn first_write(
    path: &std::path::Path,
    signer: &FileSigner,
) -> Result<(), crate::ledger::LedgerError> {
    let mut ledger = Ledger::open(path)?;
    let w = ledger.writer(signer, "alice")?;
    w.commit()?;
    Ok(())
}

#[test]
fn the_state_follows_the_schedule() {
    let z = ZeroSchedule {
        stop_at: 100,
        delete_at: 200,
    };
    assert_eq!(state_at(None, false, 0), State::Registered);
    assert_eq!(state_at(None, true, 0), State::Active);
    assert_eq!(state_at(Some(z), true, 99), State::Active);
    assert_eq!(state_at(Some(z), true, 100), State::Stopped);
    assert_eq!(state_at(Some(z), true, 200), State::Deleted);
}

fn a_migration_records_the_new_platform_and_model(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    f.run(&default, |w, i| {
        issue(
            w,
            i,
            &Order::parse("order.toml", EXAMPLE, false).unwrap(),
            &samples::request(),
            &opts("2026-01-02"),
        )
    })
    .unwrap();
    let before = f.ledger.queries().pbx("SW-2026-000001").unwrap().unwrap();
    assert_eq!(
        (before.platform.as_str(), before.model.as_str()),
        ("hw", "TA-7000")
    );
    f.run(&default, |w, i| {
        replace(
            w,
            i,
            "SW-2026-000001",
            &vm_request("SW-2026-000001", 4),
            ReplaceReason::Migrate,
            Some("VM-500"),
            t("2026-02-01"),
        )
    })
    .unwrap();
    let after = f.ledger.queries().pbx("SW-2026-000001").unwrap().unwrap();
    assert_eq!(
        (after.platform.as_str(), after.model.as_str()),
        ("vm", "VM-500")
    );
    // The PBX keeps its policy across the migration.
    assert_eq!(after.policy, "hw-14d-emergency");
    // The registry's change and the activation's charges, read back.
    let q = f.ledger.queries();
    let changes = q.pbx_changes("SW-2026-000001").unwrap();
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c.serial == "SW-2026-000001"));
    let charges = q.charges(i64::MIN, i64::MAX).unwrap();
    assert!(charges
        .iter()
        .any(|c| c.kind == "activation" && c.sequence == 1 && c.quantity > 0));
    assert!(charges.iter().all(|c| c.serial == "SW-2026-000001"));
    // Charges of January only: none from before the first issue.
    assert!(q
        .charges(0, t("2026-01-01").timestamp())
        .unwrap()
        .is_empty());
    f.verify();
}

/// The example order's first activation of [`samples::request`]'s
/// appliance, on 2026-01-02.
fn activate_example(f: &mut Fixture, catalog: &Catalog) {
    f.run(catalog, |w, i| {
        issue(
            w,
            i,
            &Order::parse("order.toml", EXAMPLE, false).unwrap(),
            &samples::request(),
            &opts("2026-01-02"),
        )
    })
    .unwrap();
}

fn new_hw(name: &str) -> NewPbx {
    NewPbx {
        name: name.into(),
        model: "TA-7000".into(),
        platform: Platform::Hw,
        ..new_vm(None)
    }
}

/// The request of another appliance than [`samples::request`]'s, naming
/// `hw` (as typed on its label).
fn hw_request(hw: &str, seed: u8) -> RequestData {
    let mut r = samples::request();
    r.hw_serial = Some(hw.into());
    r.device_key = [seed; 32];
    r.identity = [
        (ComponentKind::HW_SERIAL, hw.trim().to_uppercase()),
        (ComponentKind::NIC_MAC, format!("00163e0001{seed:02x}")),
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-0000000001{seed:02x}"),
        ),
        (ComponentKind::DISK_SERIAL, format!("DISK-{seed:04}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

fn a_pbx_added_with_its_hw_serial_is_the_one_its_appliance_activates(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let hw_order = Order::parse("order.toml", EXAMPLE, false).unwrap();
    // Added before activation, with the HW serial on the box's label.
    let serial = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_hw("Main office"),
                "HW-7F3A-0042",
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap();
    assert_eq!(serial, "SW-2026-000001");
    assert_eq!(
        f.ledger.sw_serial_of("hw-7f3a-0042").unwrap().as_deref(),
        Some(serial.as_str())
    );
    // That box's first activation: the same SW serial, one PBX.
    let first = f
        .run(&default, |w, i| {
            issue(w, i, &hw_order, &samples::request(), &opts("2026-01-03"))
        })
        .unwrap();
    assert_eq!(first.license.serial, serial);
    assert_eq!(first.license.sequence, 1);
    assert_eq!(
        first.license.previous_serial.as_deref(),
        Some("HW-7F3A-0042")
    );
    assert_eq!(f.ledger.queries().pbxs().unwrap().len(), 1);
    assert_eq!(f.ledger.hw_serials_of(&serial).unwrap(), ["HW-7F3A-0042"]);

    // Another PBX, its HW serial typed lower case with spaces; its box's
    // request names it differently again: the same PBX.
    let branch = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_hw("Branch"),
                "  hw-b000-0020 ",
                t("2026-01-04").timestamp(),
            )
        })
        .unwrap();
    assert_eq!(branch, "SW-2026-000002");
    let mut branch_order = hw_order.clone();
    branch_order.pbx_name = "Branch".into();
    let second = f
        .run(&default, |w, i| {
            issue(
                w,
                i,
                &branch_order,
                &hw_request(" Hw-B000-0020", 20),
                &opts("2026-01-05"),
            )
        })
        .unwrap();
    assert_eq!(second.license.serial, branch);
    assert_eq!(f.ledger.queries().pbxs().unwrap().len(), 2);
    assert_eq!(f.ledger.hw_serials_of(&branch).unwrap(), ["HW-B000-0020"]);
    // A box never added gets a serial of its own, as before.
    let third = f
        .run(&default, |w, i| {
            issue(
                w,
                i,
                &hw_order,
                &hw_request("HW-B000-0021", 21),
                &opts("2026-01-05"),
            )
        })
        .unwrap();
    assert_eq!(third.license.serial, "SW-2026-000003");
    f.verify();
}

fn a_hw_serial_of_another_pbx_is_refused_naming_it(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    // Converted on a first activation.
    activate_example(&mut f, &default);
    let e = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_hw("Again"),
                " hw-7f3a-0042",
                t("2026-01-03").timestamp(),
            )
        })
        .unwrap_err();
    match &e {
        Error::Policy(PolicyError::HwSerialTaken {
            hw_serial,
            serial,
            pbx,
        }) => {
            assert_eq!(hw_serial, "HW-7F3A-0042");
            assert_eq!(serial, "SW-2026-000001");
            assert_eq!(pbx, "Example Dental Clinic / Main office");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("SW-2026-000001"), "{e}");
    // Given to an added PBX.
    f.run(&default, |w, i| {
        add_appliance(
            w,
            i.catalog,
            &new_hw("Branch"),
            "HW-B000-0001",
            t("2026-01-03").timestamp(),
        )
    })
    .unwrap();
    let e = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_hw("Other"),
                "hw-b000-0001",
                t("2026-01-03").timestamp(),
            )
        })
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::HwSerialTaken { serial, .. }) if serial == "SW-2026-000002"),
        "{e:?}"
    );
    // Not a HW PBX, not a HW serial: refused, nothing recorded.
    let e = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_vm(None),
                "HW-B000-0002",
                t("2026-01-03").timestamp(),
            )
        })
        .unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e:?}");
    let e = f
        .run(&default, |w, i| {
            add_appliance(
                w,
                i.catalog,
                &new_hw("Bad"),
                "HW-\u{1b}[2J",
                t("2026-01-03").timestamp(),
            )
        })
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert_eq!(f.ledger.queries().pbxs().unwrap().len(), 2);
    f.verify();
}

fn a_replaced_binding_marks_the_pbx_replaced(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    activate_example(&mut f, &default);
    let now = t("2026-02-02").timestamp();
    let before = standing_of(f.ledger.queries(), "SW-2026-000001", now).unwrap();
    assert_eq!(before.label(), "active");
    assert_eq!(before.replaced_at(), None);
    f.run(&default, |w, i| {
        replace(
            w,
            i,
            "SW-2026-000001",
            &hw_request("HW-9C1D-0007", 7),
            ReplaceReason::Rma,
            None,
            t("2026-02-01"),
        )
    })
    .unwrap();
    let after = standing_of(f.ledger.queries(), "SW-2026-000001", now).unwrap();
    assert_eq!(after.state, State::Active);
    assert_eq!(after.label(), "active+replaced");
    assert_eq!(after.replaced_at().as_deref(), Some("2026-02-01T00:00:00Z"));
    assert_eq!(after.replaced_reason(), Some("rma"));
    let mut v = serde_json::json!({});
    after.put_json(&mut v);
    assert_eq!(
        v,
        serde_json::json!({
            "state": "active",
            "replaced_at": "2026-02-01T00:00:00Z",
            "replaced_reason": "rma",
        })
    );
    f.verify();
}

fn a_void_credits_what_the_voided_license_charged(mut f: Fixture) {
    let default = Catalog::default_catalog().unwrap();
    let o = Order::parse("order.toml", EXAMPLE, false).unwrap();
    f.run(&default, |w, i| {
        issue(w, i, &o, &samples::request(), &opts("2026-02-02T09:00:00Z"))
    })
    .unwrap();
    let mut more = o.clone();
    more.profiles.insert("PBX-BASIC".into(), 25);
    let changed = f
        .run(&default, |w, i| {
            crate::lifecycle::modify(
                w,
                i,
                "SW-2026-000001",
                &more,
                None,
                &opts("2026-02-03T09:00:00Z"),
            )
        })
        .unwrap();
    let charges = |f: &Fixture| f.ledger.queries().charges(i64::MIN, i64::MAX).unwrap();
    let increase: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.sequence == changed.license.sequence)
        .collect();
    assert_eq!(increase.len(), 1);
    assert_eq!(
        (increase[0].kind.as_str(), increase[0].quantity),
        ("increase", 5)
    );
    let void = f
        .run(&default, |w, i| {
            crate::lifecycle::void(
                w,
                i,
                &changed.license.id,
                "25 typed for 20",
                t("2026-02-03T15:00:00Z"),
            )
        })
        .unwrap();
    let credit: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.sequence == void.license.sequence)
        .collect();
    assert_eq!(credit.len(), 1, "{credit:?}");
    let c = &credit[0];
    assert_eq!(c.kind, crate::billing::CREDIT);
    assert_eq!(
        (
            c.item.as_str(),
            c.quantity,
            c.period_start,
            c.period_end,
            c.days,
            c.period_days
        ),
        (
            increase[0].item.as_str(),
            5,
            increase[0].period_start,
            increase[0].period_end,
            increase[0].days,
            increase[0].period_days
        )
    );
    // Booked with signs, PBX-BASIC comes to what is licensed: 20.
    let basic: i64 = charges(&f)
        .iter()
        .filter(|c| c.item == "profile:PBX-BASIC")
        .map(|c| crate::billing::signed_quantity(&c.kind, c.quantity))
        .sum();
    assert_eq!(basic, 20);

    // The void of a first activation credits every line it charged.
    let branch = f
        .run(&default, |w, i| {
            issue(
                w,
                i,
                &o,
                &hw_request("HW-B000-0030", 30),
                &opts("2026-02-04T09:00:00Z"),
            )
        })
        .unwrap();
    let activation: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.serial == branch.license.serial)
        .collect();
    assert!(activation.len() > 1);
    f.run(&default, |w, i| {
        crate::lifecycle::void(
            w,
            i,
            &branch.license.id,
            "wrong box",
            t("2026-02-04T10:00:00Z"),
        )
    })
    .unwrap();
    let lines: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.serial == branch.license.serial)
        .collect();
    assert_eq!(lines.len(), 2 * activation.len());
    let mut net = std::collections::BTreeMap::<String, i64>::new();
    for c in &lines {
        *net.entry(c.item.clone()).or_default() +=
            crate::billing::signed_quantity(&c.kind, c.quantity);
    }
    assert!(net.values().all(|n| *n == 0), "{net:?}");

    // The void of a renewal that started the next term, on the term's
    // last day: the renewal is credited, and the restored content enters
    // the next term at the void, charged as a renewal.
    let renewed = f
        .run(&default, |w, i| {
            renew(w, i, &samples::request(), t("2026-12-31T09:00:00Z"))
        })
        .unwrap();
    let renewal: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.sequence == renewed.license.sequence && c.serial == "SW-2026-000001")
        .collect();
    assert!(renewal.iter().all(|c| c.kind == "renewal") && !renewal.is_empty());
    let void = f
        .run(&default, |w, i| {
            crate::lifecycle::void(
                w,
                i,
                &renewed.license.id,
                "renewed the wrong box",
                t("2026-12-31T10:00:00Z"),
            )
        })
        .unwrap();
    assert_eq!(void.license.term, renewed.license.term);
    let at_void: Vec<_> = charges(&f)
        .into_iter()
        .filter(|c| c.sequence == void.license.sequence && c.serial == "SW-2026-000001")
        .collect();
    let kinds = |k: &str| at_void.iter().filter(|c| c.kind == k).count();
    assert_eq!(kinds(crate::billing::CREDIT), renewal.len());
    assert_eq!(kinds("renewal"), renewal.len());
    f.verify();
}
