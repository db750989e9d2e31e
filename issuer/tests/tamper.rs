//! Every way to tamper with a ledger that the issue reports (and more),
//! one table: each case edits a copy of a ledger with a full history
//! outside tessera, and `tessera ledger verify` must exit 4 naming an
//! entry, never with a database message. A cut-off end (the last
//! transaction removed whole, its views and checkpoint with it) is found
//! against a checkpoint kept elsewhere (`--expect-head`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tessera_issuer::catalog::Catalog;
use tessera_issuer::issuance::{issue, renew, replace, IssueOptions, Issuer, ReplaceReason};
use tessera_issuer::ledger::{entry_hash, Entry, Ledger, Writer};
use tessera_issuer::lifecycle::{decommission, modify, share, void, ShareOptions};
use tessera_issuer::order::Order;
use tessera_keys::{KeyRecord, Keyring};
use tessera_signer::{EncryptionParams, FileSigner, Passphrase};
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity, Platform};
use tessera_verifier::encode::RequestData;
use tessera_verifier::samples;

const ORDER: &str = include_str!("../examples/order.toml");
const PASSPHRASE: &str = "tamper tests only";
const SERIAL: &str = "SW-2026-000001";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn order() -> Order {
    Order::parse("order.toml", ORDER, false).unwrap()
}

fn order_with(from: &str, to: &str) -> Order {
    Order::parse("order.toml", &ORDER.replacen(from, to, 1), false).unwrap()
}

fn opts(now: &str) -> IssueOptions<'static> {
    IssueOptions {
        now: t(now),
        ..IssueOptions::default()
    }
}

fn hw_request(hw: &str, n: u8) -> RequestData {
    let mut r = samples::request();
    r.hw_serial = Some(hw.into());
    r.device_key = [n; 32];
    r.identity = [
        (ComponentKind::HW_SERIAL, hw.to_owned()),
        (ComponentKind::NIC_MAC, format!("00163e0001{n:02x}")),
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-0000000001{n:02x}"),
        ),
        (ComponentKind::DISK_SERIAL, format!("DISK-{n:04}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

fn vm_request(serial: &str, n: u8) -> RequestData {
    let mut r = samples::request();
    r.platform = Platform::Vm;
    r.serial = Some(serial.into());
    r.hw_serial = None;
    r.device_key = [n; 32];
    r.identity = [
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-0000000000{n:02x}"),
        ),
        (ComponentKind::MACHINE_ID, format!("{n:032x}")),
        (ComponentKind::NIC_MAC, format!("00163e0000{n:02x}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

/// A vendor folder: key file, keyring, and a ledger with every kind of
/// entry; `kept.ckpt` is the checkpoint after the last transaction, as an
/// operator keeps it elsewhere.
struct History {
    dir: tempfile::TempDir,
}

impl History {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pass = Passphrase::new(PASSPHRASE).unwrap();
        let info = tessera_signer::generate_to_file_with(
            &d.join("signing.pem"),
            &pass,
            EncryptionParams::insecure_for_tests(),
        )
        .unwrap();
        let mut ring = Keyring::new();
        ring.add(KeyRecord::new(
            info.public_key,
            "tamper",
            t("2020-01-01T00:00:00Z"),
        ))
        .unwrap();
        ring.set_active(&info.kid).unwrap();
        ring.save(&d.join("keyring.toml")).unwrap();
        let signer: FileSigner =
            tessera_signer::load_signer(&d.join("signing.pem"), &pass).unwrap();
        let catalog = Catalog::default_catalog().unwrap();
        let mut ledger = Ledger::create(
            &d.join("ledger.db"),
            &catalog.vendor,
            &signer,
            "ops",
            t("2026-01-01T00:00:00Z").timestamp(),
        )
        .unwrap();
        let issuer = Issuer {
            catalog: &catalog,
            signer: &signer,
            operator: "ops",
        };
        let device = hw_request("HW-7F3A-0042", 1);
        // Activation (allocation, conversion, license), a renewal.
        tx(&mut ledger, &signer, |w| {
            issue(w, &issuer, &order(), &device, &opts("2026-01-02T09:00:00Z")).unwrap();
        });
        tx(&mut ledger, &signer, |w| {
            renew(w, &issuer, &device, t("2026-01-20T09:00:00Z")).unwrap();
        });
        // A decrease with an approval (event).
        let fewer = order_with("PBX-BASIC = 20", "PBX-BASIC = 16");
        tx(&mut ledger, &signer, |w| {
            let o = IssueOptions {
                approval: Some("APP-1"),
                ..opts("2026-02-03T09:00:00Z")
            };
            modify(w, &issuer, SERIAL, &fewer, None, &o).unwrap();
        });
        // Decommission (schedule), then a user back (cancelled).
        tx(&mut ledger, &signer, |w| {
            let o = IssueOptions {
                approval: Some("APP-2"),
                ..opts("2026-02-04T09:00:00Z")
            };
            decommission(w, &issuer, SERIAL, &o).unwrap();
        });
        tx(&mut ledger, &signer, |w| {
            modify(
                w,
                &issuer,
                SERIAL,
                &order(),
                None,
                &opts("2026-02-05T09:00:00Z"),
            )
            .unwrap();
        });
        // RMA onto a new appliance (conversion, replaced binding, event).
        let new_box = hw_request("HW-9C1D-0007", 7);
        tx(&mut ledger, &signer, |w| {
            replace(
                w,
                &issuer,
                SERIAL,
                &new_box,
                ReplaceReason::Rma,
                None,
                t("2026-02-10T09:00:00Z"),
            )
            .unwrap();
        });
        // Sharing with a VM client (two licenses, two events).
        let vm = vm_request("SW-2026-000002", 9);
        tx(&mut ledger, &signer, |w| {
            let client = tessera_issuer::registry::add(
                w,
                &catalog,
                &tessera_issuer::registry::NewPbx {
                    customer: "Example Dental Clinic".into(),
                    name: "Failover".into(),
                    model: "VM-1".into(),
                    platform: tessera_verifier::claims::Platform::Vm,
                    cycle: tessera_verifier::claims::Cycle::Yearly,
                    profiles: Default::default(),
                    storage: 0,
                    policy: None,
                },
                None,
                t("2026-02-11T09:00:00Z").timestamp(),
            )
            .unwrap();
            assert_eq!(client, "SW-2026-000002");
            share(
                w,
                &issuer,
                SERIAL,
                "SW-2026-000002",
                &ShareOptions {
                    now: t("2026-02-11T09:00:00Z"),
                    request: Some(&vm),
                    pbx_name: Some("Failover"),
                    new_device_key: false,
                    retire_old_keys: false,
                },
            )
            .unwrap();
        });
        // Two more appliances in one transaction, then a void.
        tx(&mut ledger, &signer, |w| {
            for n in 20..22u8 {
                let r = hw_request(&format!("HW-B000-{n:04}"), n);
                let o = IssueOptions {
                    idem_key: Some(if n == 20 { "row-a" } else { "row-b" }),
                    ..opts("2026-02-12T09:00:00Z")
                };
                issue(w, &issuer, &order(), &r, &o).unwrap();
            }
        });
        // An appliance added before its activation, with its HW serial.
        tx(&mut ledger, &signer, |w| {
            let added = tessera_issuer::registry::add_appliance(
                w,
                &catalog,
                &tessera_issuer::registry::NewPbx {
                    customer: "Example Dental Clinic".into(),
                    name: "Branch".into(),
                    model: "TA-7000".into(),
                    platform: tessera_verifier::claims::Platform::Hw,
                    cycle: tessera_verifier::claims::Cycle::Yearly,
                    profiles: Default::default(),
                    storage: 0,
                    policy: None,
                },
                "hw-c000-0001",
                t("2026-02-13T09:00:00Z").timestamp(),
            )
            .unwrap();
            assert_eq!(added, "SW-2026-000005");
        });
        let latest = ledger.latest("SW-2026-000004").unwrap().unwrap();
        tx(&mut ledger, &signer, |w| {
            void(
                w,
                &issuer,
                &latest.row.license_id,
                "typed for another box",
                t("2026-02-12T10:00:00Z"),
            )
            .unwrap();
        });
        // An overdue notice claimed, refused by the server and withdrawn.
        tx(&mut ledger, &signer, |w| {
            let at = t("2026-02-12T11:00:00Z").timestamp();
            w.push(
                at,
                tessera_issuer::ledger::Fact::NoticeSent {
                    recipient: "ops@vendor.example".into(),
                    day: "2026-02-12".into(),
                    serials: vec![SERIAL.into()],
                },
            )
            .unwrap();
            w.push(
                at,
                tessera_issuer::ledger::Fact::NoticeWithdrawn {
                    recipient: "ops@vendor.example".into(),
                    day: "2026-02-12".into(),
                    reason: "550 mailbox unavailable".into(),
                },
            )
            .unwrap();
        });
        // Online activation opened for the appliance added above.
        tx(&mut ledger, &signer, |w| {
            tessera_issuer::activation::open(w, "SW-2026-000005", 30, t("2026-02-13T10:00:00Z"))
                .unwrap();
        });
        let kept = ledger.latest_checkpoint().unwrap();
        std::fs::write(
            d.join("kept.ckpt"),
            tessera_verifier::armor::encode(&kept.bytes, tessera_verifier::armor::LABEL_CHECKPOINT),
        )
        .unwrap();
        drop(ledger);
        let h = Self { dir };
        assert_eq!(
            h.verify(&h.ledger(), true).0,
            0,
            "{}",
            h.verify(&h.ledger(), true).1
        );
        h
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    /// A copy of the ledger to edit.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        std::fs::copy(self.ledger(), &to).unwrap();
        to
    }

    /// `tessera ledger verify` on `db`: (exit code, standard error).
    fn verify(&self, db: &Path, expect_head: bool) -> (i32, String) {
        self.verify_against(db, expect_head.then_some("kept.ckpt"))
    }

    /// `tessera ledger verify [--expect-head FILE]` on `db`.
    fn verify_against(&self, db: &Path, expect_head: Option<&str>) -> (i32, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.current_dir(self.dir.path())
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_LEDGER")
            .arg("--ledger")
            .arg(db)
            .args(["ledger", "verify", "--keyring", "keyring.toml"]);
        if let Some(file) = expect_head {
            cmd.args(["--expect-head", file]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// One transaction.
fn tx(ledger: &mut Ledger, signer: &FileSigner, f: impl FnOnce(&mut Writer<'_>)) {
    let mut w = ledger.writer(signer, "ops").unwrap();
    f(&mut w);
    w.commit().unwrap();
}

/// Re-hashes the whole journal after `edit` changed entries, as an
/// attacker who knows the hash formula (but not the vendor key) would.
/// Returns how many entries changed.
fn rehash(db: &Path, edit: impl Fn(i64, &mut Entry)) -> usize {
    let conn = Connection::open(db).unwrap();
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT position, body FROM journal ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = [0u8; 32];
    let mut changed = 0;
    for (position, body) in rows {
        let mut entry = Entry::decode(&body).unwrap();
        let before = entry.clone();
        edit(position, &mut entry);
        changed += usize::from(entry != before);
        let body = entry.encode();
        let hash = entry_hash(&prev, u64::try_from(position).unwrap(), &body);
        conn.execute(
            "UPDATE journal SET body = ?1, hash = ?2 WHERE position = ?3",
            rusqlite::params![body, hash.as_slice(), position],
        )
        .unwrap();
        prev = hash;
    }
    changed
}

/// (case, SQL against a copy of the ledger, as SQLite runs it)
const SQL_CASES: &[(&str, &str)] = &[
        // The journal.
        ("an entry's body edited", "UPDATE journal SET body = CAST(body || x'00' AS BLOB) WHERE position = 5"),
        ("an entry's body replaced by text", "UPDATE journal SET body = 'x' WHERE position = 5"),
        ("an entry's hash edited", "UPDATE journal SET hash = zeroblob(32) WHERE position = 3"),
        ("an entry deleted", "DELETE FROM journal WHERE position = 7"),
        ("the first entry deleted", "DELETE FROM journal WHERE position = 1"),
        ("the last entry deleted", "DELETE FROM journal WHERE position = (SELECT MAX(position) FROM journal)"),
        ("two entries swapped", "UPDATE journal SET position = -1 WHERE position = 4; UPDATE journal SET position = 4 WHERE position = 5; UPDATE journal SET position = 5 WHERE position = -1"),
        ("an entry inserted", "UPDATE journal SET position = position + 1000 WHERE position >= 6; INSERT INTO journal SELECT 6, body, hash FROM journal WHERE position = 1005; UPDATE journal SET position = position - 999 WHERE position >= 1006"),
        ("an entry duplicated at the end", "INSERT INTO journal SELECT (SELECT MAX(position) FROM journal) + 1, body, hash FROM journal WHERE position = 2"),
        ("the journal emptied", "DELETE FROM journal"),
        // Checkpoints.
        ("the last checkpoint deleted", "DELETE FROM checkpoints WHERE entries = (SELECT MAX(entries) FROM checkpoints)"),
        ("every checkpoint deleted", "DELETE FROM checkpoints"),
        ("a checkpoint's bytes edited", "UPDATE checkpoints SET bytes = CAST(substr(bytes, 1, 40) || x'ff' || substr(bytes, 42) AS BLOB) WHERE entries = (SELECT MIN(entries) FROM checkpoints WHERE entries > 1)"),
        ("a checkpoint moved to another entry", "UPDATE checkpoints SET entries = 2 WHERE entries = 1"),
        ("a checkpoint of a later entry added", "INSERT INTO checkpoints SELECT entries + 5, bytes FROM checkpoints WHERE entries = (SELECT MAX(entries) FROM checkpoints)"),
        // The views: licenses.
        ("a license's operator edited", "UPDATE licenses SET operator = 'mallory' WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        ("a license's customer edited", "UPDATE licenses SET customer = 'Other Clinic' WHERE serial = 'SW-2026-000001' AND sequence = 2"),
        ("a license's lease end moved", "UPDATE licenses SET lease_end = lease_end + 86400000 WHERE serial = 'SW-2026-000001' AND sequence = 2"),
        ("a license's term end removed", "UPDATE licenses SET term_end = NULL WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        ("a license's sequence changed", "UPDATE licenses SET sequence = 99 WHERE serial = 'SW-2026-000001' AND sequence = 2"),
        ("a license's action changed", "UPDATE licenses SET action = 'issue' WHERE action = 'void'"),
        ("a license's entry moved", "UPDATE licenses SET entry = entry + 1 WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        ("a license's bulk key changed", "UPDATE licenses SET idem_key = 'row-z' WHERE idem_key = 'row-a'"),
        ("a license's bulk key removed", "UPDATE licenses SET idem_key = NULL WHERE idem_key = 'row-b'"),
        ("a license deleted from the view", "DELETE FROM licenses WHERE serial = 'SW-2026-000001' AND sequence = 3"),
        ("the last license deleted from the view", "DELETE FROM licenses WHERE entry = (SELECT MAX(entry) FROM licenses)"),
        ("a license's id changed", "UPDATE licenses SET license_id = zeroblob(16) WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        ("a license's serial changed", "UPDATE licenses SET serial = 'SW-2026-000099' WHERE serial = 'SW-2026-000003'"),
        ("a license added to the view", "INSERT INTO licenses SELECT serial, 50, zeroblob(16), action, entry, operator, issued_at, customer, pbx_name, platform, lease_end, term_end, NULL, NULL FROM licenses WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        // HW → SW serials.
        ("a HW serial mapping deleted", "DELETE FROM hw_serials WHERE hw_serial = 'HW-7F3A-0042'"),
        ("a HW serial mapping moved", "UPDATE hw_serials SET serial = 'SW-2026-000002' WHERE hw_serial = 'HW-7F3A-0042'"),
        ("a HW serial mapping added", "INSERT INTO hw_serials VALUES ('HW-FFFF-0001', 'SW-2026-000001', 0, 2)"),
        ("a HW serial renamed", "UPDATE hw_serials SET hw_serial = 'hw-7f3a-0042' WHERE hw_serial = 'HW-7F3A-0042'"),
        ("a HW serial added with its PBX moved", "UPDATE hw_serials SET serial = 'SW-2026-000001' WHERE hw_serial = 'HW-C000-0001'"),
        ("a HW serial added with its PBX deleted", "DELETE FROM hw_serials WHERE hw_serial = 'HW-C000-0001'"),
        ("a HW serial given to a PBX added without one", "INSERT INTO hw_serials SELECT 'HW-C000-0002', serial, at, entry FROM hw_serials WHERE hw_serial = 'HW-C000-0001'"),
        // Serial counters.
        ("the serial counter set to 999999", "UPDATE serial_counter SET last = 999999"),
        ("the serial counter set back", "UPDATE serial_counter SET last = 1"),
        ("the serial counter deleted", "DELETE FROM serial_counter"),
        ("a year's counter added", "INSERT INTO serial_counter VALUES (2031, 5, 2)"),
        // Schedules.
        ("a schedule deleted", "DELETE FROM schedules"),
        ("a schedule's stop moved", "UPDATE schedules SET stop_at = stop_at + 86400000"),
        ("a cancelled schedule revived", "UPDATE schedules SET cancelled_at = NULL"),
        ("a schedule added", "INSERT INTO schedules VALUES ('SW-2026-000002', 0, 0, 0, NULL, 8)"),
        // Events.
        ("an event deleted", "DELETE FROM events WHERE kind = 'void'"),
        ("an event's approval edited", "UPDATE events SET detail = '{\"approval\":\"APP-999\",\"decreases\":\"\"}' WHERE kind = 'change'"),
        ("an event's operator edited", "UPDATE events SET operator = 'mallory' WHERE kind = 'replace'"),
        ("an event added", "INSERT INTO events VALUES (999, 'SW-2026-000001', 1, 'void', '{}', 'ops', 0)"),
        // Replaced bindings.
        ("a replaced binding deleted", "DELETE FROM replaced_bindings"),
        ("a replaced binding's device keys emptied", "UPDATE replaced_bindings SET device_keys = '[]'"),
        ("a replaced binding added", "INSERT INTO replaced_bindings VALUES ('SW-2026-000002', 1, 2, '[]', 'rma', 0, 9)"),
        // Request keys.
        ("a request key removed", "UPDATE licenses SET request_key = NULL WHERE serial = 'SW-2026-000001' AND sequence = 1"),
        ("a request key replaced", "UPDATE licenses SET request_key = zeroblob(32) WHERE serial = 'SW-2026-000001' AND sequence = 2"),
        ("a request key added", "UPDATE licenses SET request_key = zeroblob(32) WHERE request_key IS NULL"),
        // The PBX registry.
        ("a PBX's recorded policy edited", "UPDATE pbxs SET policy_values = replace(policy_values, '1209600', '99') WHERE serial = 'SW-2026-000001'"),
        ("a PBX's policy renamed", "UPDATE pbxs SET policy = 'appliance-72h-locked' WHERE serial = 'SW-2026-000002'"),
        ("a PBX deleted from the registry", "DELETE FROM pbxs WHERE serial = 'SW-2026-000002'"),
        ("a PBX added to the registry", "INSERT INTO pbxs SELECT 'SW-2026-000099', customer, name, model, platform, cycle, profiles, storage, policy, policy_values, created_at, entry FROM pbxs WHERE serial = 'SW-2026-000001'"),
        ("a registry change deleted", "DELETE FROM pbx_changes WHERE serial = 'SW-2026-000002'"),
        ("a registry change edited", "UPDATE pbx_changes SET operator = 'mallory' WHERE serial = 'SW-2026-000001'"),
        // Activation codes (in the registry's history).
        ("an activation code's digest replaced", "UPDATE pbx_changes SET detail = '{\"code_digest\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"valid_until\":4102444800}' WHERE kind = 'activation'"),
        ("an activation code's validity extended", "UPDATE pbx_changes SET detail = replace(detail, '\"valid_until\":', '\"valid_until\":1') WHERE kind = 'activation'"),
        ("an activation code deleted", "DELETE FROM pbx_changes WHERE kind = 'activation'"),
        ("an activation code added", "INSERT INTO pbx_changes SELECT entry - 1, 'SW-2026-000004', kind, detail, operator, at FROM pbx_changes WHERE kind = 'activation'"),
        // Billing quantities.
        // (One row a charges entry, its lines a JSON array of
        // [kind, item, quantity, cycle, period_start, period_end, days, period_days].)
        ("a charge's quantity edited", "UPDATE charges SET lines = json_set(lines, '$[0][2]', json_extract(lines, '$[0][2]') + 1) WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')"),
        ("a charge's period edited", "UPDATE charges SET lines = json_set(lines, '$[0][5]', NULL) WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')"),
        ("a charge deleted", "DELETE FROM charges WHERE serial = 'SW-2026-000003'"),
        ("a charge line deleted", "UPDATE charges SET lines = json_remove(lines, '$[#-1]') WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')"),
        ("a charge line added", "UPDATE charges SET lines = json_insert(lines, '$[#]', json_extract(lines, '$[0]')) WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')"),
        ("a charge added", "INSERT INTO charges SELECT (SELECT max(position) FROM journal) + 1, serial, sequence, lines, at FROM charges WHERE serial = 'SW-2026-000001' LIMIT 1"),
        ("a charge's lines made unreadable", "UPDATE charges SET lines = '[[\"activation\"]]' WHERE serial = 'SW-2026-000001'"),
        // The identity.
        ("the identity's vendor edited", "UPDATE identity SET vendor = 'other-vendor'"),
        ("the identity's ledger id edited", "UPDATE identity SET ledger_id = zeroblob(16)"),
        ("the identity deleted", "DELETE FROM identity"),
        // The file's shape.
        ("a view dropped", "DROP TABLE replaced_bindings"),
        ("a column renamed", "ALTER TABLE licenses RENAME COLUMN customer TO client"),
        ("a value of the wrong type", "UPDATE licenses SET sequence = 'one' WHERE serial = 'SW-2026-000002'"),
        ("the application id changed", "PRAGMA application_id = 0"),
        ("the schema version changed", "PRAGMA user_version = 2"),
        // Objects planted beside the tables: they pass a check of the rows
        // and change what later writes do.
        ("a trigger planted", "CREATE TRIGGER keep_out BEFORE INSERT ON hw_serials BEGIN SELECT RAISE(IGNORE); END"),
        ("a view planted", "CREATE VIEW every_license AS SELECT * FROM licenses"),
        ("an index planted", "CREATE INDEX by_customer ON licenses (customer)"),
        ("a table planted", "CREATE TABLE notes (text TEXT)"),
        ("a trigger planted on the registry", "CREATE TRIGGER keep_pbxs BEFORE UPDATE ON pbxs BEGIN SELECT RAISE(IGNORE); END"),
        ("an index planted on the charges", "CREATE INDEX by_serial ON charges (serial)"),
    ];

type Edit = fn(i64, &mut Entry);

/// Re-hashed journals: the chain holds, the signed checkpoints do not.
const REHASHED: &[(&str, Edit)] = &[
    ("an operator edited and the chain rehashed", |p, e| {
        if p == 3 {
            e.operator = "mallory".into();
        }
    }),
    ("an order edited and the chain rehashed", |_, e| {
        if let tessera_issuer::ledger::Fact::License { order, .. } = &mut e.fact {
            *order = order.replace("PBX-BASIC\":20", "PBX-BASIC\":200");
        }
    }),
    ("an approval edited and the chain rehashed", |_, e| {
        if let tessera_issuer::ledger::Fact::Event { detail, .. } = &mut e.fact {
            *detail = detail.replace("APP-1", "APP-9");
        }
    }),
    (
        "a HW serial added with its PBX edited and the chain rehashed",
        |_, e| {
            if let tessera_issuer::ledger::Fact::HwSerialConverted { hw_serial, .. } = &mut e.fact {
                if hw_serial == "HW-C000-0001" {
                    *hw_serial = "HW-C000-0002".into();
                }
            }
        },
    ),
    ("a time edited and the chain rehashed", |p, e| {
        if p == 2 {
            e.at += 1;
        }
    }),
    (
        "a notice's recipient edited and the chain rehashed",
        |_, e| {
            if let tessera_issuer::ledger::Fact::NoticeSent { recipient, .. } = &mut e.fact {
                *recipient = "mallory@elsewhere.example".into();
            }
        },
    ),
    (
        "a notice's withdrawal turned into a second notice for the day and the chain rehashed",
        |_, e| {
            if let tessera_issuer::ledger::Fact::NoticeWithdrawn { recipient, day, .. } = &e.fact {
                e.fact = tessera_issuer::ledger::Fact::NoticeSent {
                    recipient: recipient.clone(),
                    day: day.clone(),
                    serials: vec![SERIAL.into()],
                };
            }
        },
    ),
];

#[test]
fn every_tampering_case_exits_4_naming_the_entry() {
    let h = History::new();
    let sql = SQL_CASES;
    let rehashed = REHASHED;
    let mut failures = Vec::new();
    for (n, (case, statement)) in sql.iter().enumerate() {
        let db = h.copy(&format!("case-{n}.db"));
        Connection::open(&db)
            .unwrap()
            .execute_batch(statement)
            .unwrap();
        check(&h, &db, case, false, &mut failures);
    }
    for (n, (case, edit)) in rehashed.iter().enumerate() {
        let db = h.copy(&format!("rehash-{n}.db"));
        assert!(rehash(&db, edit) > 0, "{case}: nothing edited");
        check(&h, &db, case, false, &mut failures);
    }
    // A file that is no ledger any more.
    let db = h.copy("truncated.db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    check(&h, &db, "the file truncated", false, &mut failures);
    let db = h.copy("zeroed.db");
    std::fs::write(&db, vec![0u8; 4096]).unwrap();
    check(&h, &db, "the file zeroed", false, &mut failures);
    let db = h.copy("empty.db");
    std::fs::write(&db, b"").unwrap();
    check(&h, &db, "the file emptied", false, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} tampering cases, each exit 4",
        sql.len() + rehashed.len() + 3
    );
}

/// A case of [`SQL_CASES`] as PostgreSQL runs it: the same statement,
/// with its types and functions where SQLite's differ, and the mark
/// table where SQLite has pragmas.
fn to_postgres(case: &str, sqlite: &str) -> String {
    match case {
        "an entry's body edited" => {
            "UPDATE journal SET body = body || '\\x00'::bytea WHERE position = 5".into()
        }
        "a checkpoint's bytes edited" => "UPDATE checkpoints SET bytes = substr(bytes, 1, 40) || '\\xff'::bytea || substr(bytes, 42) WHERE entries = (SELECT MIN(entries) FROM checkpoints WHERE entries > 1)".into(),
        "a value of the wrong type" => format!("ALTER TABLE licenses ALTER COLUMN sequence TYPE TEXT; {sqlite}"),
        "the application id changed" => "UPDATE tessera_ledger SET application_id = 0".into(),
        "the schema version changed" => "UPDATE tessera_ledger SET schema_version = 2".into(),
        "a trigger planted" => "CREATE FUNCTION keep_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; \
             CREATE TRIGGER keep_out BEFORE INSERT ON hw_serials FOR EACH ROW EXECUTE FUNCTION keep_out()".into(),
        // PostgreSQL keeps the charges one row a line (schema 4).
        "a charge's quantity edited" => "UPDATE charges SET quantity = quantity + 1 WHERE line = 0 AND entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')".into(),
        "a charge's period edited" => "UPDATE charges SET period_end = NULL WHERE line = 0 AND entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')".into(),
        "a charge line deleted" => "DELETE FROM charges WHERE (entry, line) = (SELECT entry, max(line) FROM charges WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001') GROUP BY entry)".into(),
        "a charge line added" => "INSERT INTO charges SELECT entry, line + 100, serial, sequence, kind, item, quantity, cycle, period_start, period_end, days, period_days, at FROM charges WHERE line = 0 AND entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')".into(),
        "a charge added" => "INSERT INTO charges SELECT (SELECT max(position) FROM journal) + 1, line, serial, sequence, kind, item, quantity, cycle, period_start, period_end, days, period_days, at FROM charges WHERE entry = (SELECT min(entry) FROM charges WHERE serial = 'SW-2026-000001')".into(),
        "a charge's lines made unreadable" => "UPDATE charges SET item = 'profile:NONE' WHERE serial = 'SW-2026-000001'".into(),
        "a trigger planted on the registry" => "CREATE FUNCTION keep_pbxs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$; \
             CREATE TRIGGER keep_pbxs BEFORE UPDATE ON pbxs FOR EACH ROW EXECUTE FUNCTION keep_pbxs()".into(),
        _ => {
            let mut out = sqlite.to_owned();
            for n in [16, 32] {
                out = out.replace(
                    &format!("zeroblob({n})"),
                    &format!("decode(repeat('00', {n}), 'hex')"),
                );
            }
            out
        }
    }
}

/// The history of `h` moved into a new database of `server` by `ledger
/// migrate` (verified against the kept head); returns its URL.
fn migrated(h: &History, server: &tessera_tests::postgres::PgServer) -> String {
    let url = server.create_database();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(h.dir.path())
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .env_remove("TESSERA_CONFIG")
        .arg("--ledger")
        .arg(h.ledger())
        .args([
            "ledger",
            "migrate",
            "--keyring",
            "keyring.toml",
            "--to",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.verify(Path::new(&url), true).0, 0);
    url
}

/// [`rehash`] of a PostgreSQL ledger.
fn rehash_postgres(url: &str, edit: Edit) -> usize {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let rows = c
        .query("SELECT position, body FROM journal ORDER BY position", &[])
        .unwrap();
    let mut prev = [0u8; 32];
    let mut changed = 0;
    for r in rows {
        let position: i64 = r.get(0);
        let mut entry = Entry::decode(r.get::<_, &[u8]>(1)).unwrap();
        let before = entry.clone();
        edit(position, &mut entry);
        changed += usize::from(entry != before);
        let body = entry.encode();
        let hash = entry_hash(&prev, u64::try_from(position).unwrap(), &body);
        c.execute(
            "UPDATE journal SET body = $1, hash = $2 WHERE position = $3",
            &[&body, &hash.as_slice(), &position],
        )
        .unwrap();
        prev = hash;
    }
    changed
}

#[test]
fn every_tampering_case_exits_4_on_postgres_too() {
    let Some(server) = tessera_tests::postgres::PgServer::start() else {
        return;
    };
    let h = History::new();
    // The history, moved into PostgreSQL by `ledger migrate`: each case
    // edits a copy of that database.
    let pristine = migrated(&h, &server);
    let mut failures = Vec::new();
    for (case, statement) in SQL_CASES {
        let url = server.clone_database(&pristine);
        server.psql(&url, &to_postgres(case, statement));
        check(&h, Path::new(&url), case, false, &mut failures);
    }
    for (case, edit) in REHASHED {
        let url = server.clone_database(&pristine);
        assert!(rehash_postgres(&url, *edit) > 0, "{case}: nothing edited");
        check(&h, Path::new(&url), case, false, &mut failures);
    }
    for (case, statement) in [
        (
            "a rule planted",
            "CREATE RULE keep_out AS ON INSERT TO hw_serials DO INSTEAD NOTHING",
        ),
        (
            "row security enabled",
            "ALTER TABLE hw_serials ENABLE ROW LEVEL SECURITY",
        ),
    ] {
        let url = server.clone_database(&pristine);
        server.psql(&url, statement);
        check(&h, Path::new(&url), case, false, &mut failures);
    }
    for (case, statement) in [
        ("the mark deleted", "DELETE FROM tessera_ledger"),
        ("the mark dropped", "DROP TABLE tessera_ledger"),
        (
            "every table dropped",
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
        ),
    ] {
        let url = server.clone_database(&pristine);
        server.psql(&url, statement);
        let (code, stderr) = h.verify(Path::new(&url), false);
        // An empty database is no ledger (exit 1, `ledger init` named);
        // anything else is a damaged one (exit 4).
        let want = if case == "every table dropped" { 1 } else { 4 };
        if code != want {
            failures.push(format!("{case}: exit {code}: {}", stderr.trim()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!(
        "{} tampering cases on PostgreSQL, each exit 4",
        SQL_CASES.len() + REHASHED.len() + 4
    );
}

fn check(h: &History, db: &Path, case: &str, expect_head: bool, failures: &mut Vec<String>) {
    let (code, stderr) = h.verify(db, expect_head);
    let named = stderr.contains("at entry ") || stderr.contains("not a tessera ledger or damaged");
    let raw_sqlite = [
        "no such",
        "Invalid column type",
        "Query returned",
        "SQLITE",
        "db error",
        "ERROR:",
    ]
    .iter()
    .any(|w| stderr.contains(w));
    if code != 4 || !named || raw_sqlite {
        failures.push(format!("{case}: exit {code}: {}", stderr.trim()));
    }
}

#[test]
fn a_cut_off_end_is_found_with_the_head_kept_elsewhere() {
    let h = History::new();
    let db = h.copy("cut.db");
    // The last transaction (every entry after the checkpoint before the
    // last one) removed whole: entries, views and checkpoint. Consistent
    // in itself.
    let before_last = "(SELECT entries FROM checkpoints ORDER BY entries DESC LIMIT 1 OFFSET 1)";
    Connection::open(&db)
        .unwrap()
        .execute_batch(&format!(
            "DELETE FROM licenses WHERE entry > {before_last};
             DELETE FROM events WHERE entry > {before_last};
             DELETE FROM charges WHERE entry > {before_last};
             DELETE FROM pbx_changes WHERE entry > {before_last};
             DELETE FROM journal WHERE position > {before_last};
             DELETE FROM checkpoints WHERE entries = (SELECT MAX(entries) FROM checkpoints);"
        ))
        .unwrap();
    let (code, stderr) = h.verify(&db, false);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = h.verify(&db, true);
    assert_eq!(code, 4, "{stderr}");
    // Both cases named, each with what to do: a backup taken before
    // the checkpoint is not sent to "restore from a backup" alone.
    for says in [
        "older than that checkpoint",
        "If it is a backup taken before the checkpoint",
        "verify it against the checkpoint kept on the day it was taken",
        "If it is the live ledger",
        "were cut off",
    ] {
        assert!(stderr.contains(says), "{says}: {stderr}");
    }
    // The intact ledger holds the kept head.
    assert_eq!(h.verify(&h.ledger(), true).0, 0);
}

#[test]
fn an_edited_ledger_of_an_earlier_tessera_is_not_upgraded() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/upgrade.in");
    // (edit, exit code, says)
    let cases = [
        (
            "UPDATE licenses SET customer = 'Mallory' WHERE id = 3",
            4,
            "old.db does not hold at its row 3: its content does not match its hash",
        ),
        (
            "DELETE FROM licenses WHERE id = 16",
            4,
            "old.db does not hold at its row 16",
        ),
        (
            "UPDATE events SET detail = 'approved' WHERE id = 1",
            1,
            "licenses row 4 (SW-2026-000001:4) cannot be carried over",
        ),
    ];
    for (edit, code, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        for f in ["old.db", "keyring.toml", "signing.pem"] {
            std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
        }
        Connection::open(dir.path().join("old.db"))
            .unwrap()
            .execute_batch(edit)
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .current_dir(dir.path())
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_LEDGER")
            .env("TESSERA_PASSPHRASE", "correct horse battery staple")
            .env("TESSERA_OPERATOR", "carol")
            .args([
                "ledger", "upgrade", "--from", "old.db", "--ledger", "new.db",
            ])
            .args(["--key", "signing.pem", "--keyring", "keyring.toml"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{edit}: {stderr}");
        assert!(stderr.contains(says), "{edit}: {stderr}");
        assert!(stderr.contains("nothing was converted"), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("old.db") && n != "keyring.toml" && n != "signing.pem")
            .collect();
        assert!(left.is_empty(), "{edit}: left {left:?}");
    }
}

/// A file that cannot be the expected head is a wrong argument (exit 1)
/// said in a checkpoint's words, whatever it is.
#[test]
fn an_unusable_expected_head_says_what_it_is() {
    let h = History::new();
    let d = h.dir.path();
    let ledger = Ledger::open_read_only(&h.ledger()).unwrap();
    let license = ledger.latest(SERIAL).unwrap().unwrap();
    std::fs::write(
        d.join("a.lic"),
        tessera_verifier::armor::encode(&license.row.bytes, tessera_verifier::armor::LABEL_LICENSE),
    )
    .unwrap();
    let other = FileSigner::generate().unwrap();
    let foreign = Ledger::create(&d.join("other.db"), "tessera-vendor", &other, "ops", 0).unwrap();
    std::fs::write(
        d.join("other.ckpt"),
        tessera_verifier::armor::encode(
            &foreign.latest_checkpoint().unwrap().bytes,
            tessera_verifier::armor::LABEL_CHECKPOINT,
        ),
    )
    .unwrap();
    for (file, says) in [
        ("a.lic", "is not a checkpoint"),
        ("other.ckpt", "not in the vendor's keyring"),
    ] {
        let (code, stderr) = h.verify_against(&h.ledger(), Some(file));
        assert_eq!(code, 1, "{file}: {stderr}");
        assert!(stderr.contains(says), "{file}: {stderr}");
        assert!(
            !stderr.contains("device") && !stderr.contains("firmware"),
            "{file}: {stderr}"
        );
    }
}

/// `tessera ARGS` as an operator runs it in the vendor folder of `h`, on
/// the ledger `db`, at `now`: (exit code, standard error).
fn tessera(h: &History, db: &Path, now: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(h.dir.path())
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .env_remove("TESSERA_CONFIG")
        .env_remove("TESSERA_LEDGER")
        .env_remove("TESSERA_CATALOG")
        .env("TESSERA_KEYRING", "keyring.toml")
        .env("TESSERA_KEY", "signing.pem")
        .env("TESSERA_PASSPHRASE", PASSPHRASE)
        .env("TESSERA_OPERATOR", "ops")
        .env("TESSERA_NOW", now)
        .arg("--ledger")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// After the history's last transaction.
const LATER: &str = "2026-02-13T09:00:00Z";

/// A signed activation request of the appliance `hw`, made at `now`, in
/// the vendor folder; returns its file name.
fn activation_request(h: &History, hw: &str, now: &str) -> String {
    let mut r = samples::request();
    r.hw_serial = Some(hw.into());
    r.created_at = t(now).timestamp();
    let bytes =
        tessera_verifier::encode::sign_request(&r, samples::seed_signer(samples::DEVICE_KEY_SEED))
            .unwrap();
    let name = format!("{hw}.req");
    std::fs::write(
        h.dir.path().join(&name),
        tessera_verifier::armor::encode(&bytes, tessera_verifier::armor::LABEL_REQUEST),
    )
    .unwrap();
    std::fs::write(h.dir.path().join("order.toml"), ORDER).unwrap();
    name
}

/// Journal entries of the ledger `db` (a file or a PostgreSQL URL).
fn entries(db: &Path) -> u64 {
    Ledger::open_read_only(db).unwrap().head().unwrap().0
}

/// Whether `sql` edits only view tables (the tampering cases a writer
/// would decide on), not the journal, checkpoints or the file's shape.
fn edits_a_view(sql: &str) -> bool {
    ![
        "journal",
        "checkpoints",
        "PRAGMA",
        "CREATE ",
        "DROP ",
        "ALTER ",
    ]
    .iter()
    .any(|w| sql.contains(w))
}

/// A first activation on the ledger `db`: the writer command every view
/// edit below would feed (it reads the HW → SW serials, the counter, the
/// registry, the licenses ...). Returns (exit code, standard error, the
/// license file was written).
fn activate(h: &History, db: &Path, n: usize) -> (i32, String, bool) {
    let req = activation_request(h, "HW-AAAA-0100", LATER);
    let out = format!("activation-{n}.lic");
    let (code, stderr) = tessera(
        h,
        db,
        LATER,
        &[
            "issue",
            "--order",
            "order.toml",
            "--request",
            &req,
            "-o",
            &out,
        ],
    );
    (code, stderr, h.dir.path().join(&out).exists())
}

/// Each view case of the tampering table stops the writer: exit 4 in the
/// words of `ledger verify`, nothing written to the ledger, no file.
fn each_view_edit_stops_the_writer(
    h: &History,
    edited: &mut dyn FnMut(&str, &str) -> PathBuf,
) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    for (case, statement) in SQL_CASES.iter().filter(|(_, s)| edits_a_view(s)) {
        n += 1;
        let db = edited(case, statement);
        let before = entries(&db);
        let (code, stderr, written) = activate(h, &db, n);
        let said = stderr.contains("modified outside tessera")
            || stderr.contains("not a tessera ledger or damaged");
        if code != 4 || !said || written || entries(&db) != before {
            failures.push(format!(
                "{case}: exit {code}, file written {written}: {}",
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    n
}

#[test]
fn every_view_edit_stops_the_writer_it_would_fool() {
    let h = History::new();
    // The same command on the intact ledger issues.
    let intact = h.copy("intact.db");
    let (code, stderr, written) = activate(&h, &intact, 0);
    assert_eq!((code, written), (0, true), "{stderr}");
    let mut copies = 0;
    let n = each_view_edit_stops_the_writer(&h, &mut |_, statement| {
        copies += 1;
        let db = h.copy(&format!("view-{copies}.db"));
        Connection::open(&db)
            .unwrap()
            .execute_batch(statement)
            .unwrap();
        db
    });
    assert!(n >= 40, "only {n} view cases");
    eprintln!("{n} view edits, each stops the writer with exit 4");
}

#[test]
fn every_view_edit_stops_the_writer_on_postgres_too() {
    let Some(server) = tessera_tests::postgres::PgServer::start() else {
        return;
    };
    let h = History::new();
    let pristine = migrated(&h, &server);
    let intact = server.clone_database(&pristine);
    let (code, stderr, written) = activate(&h, Path::new(&intact), 0);
    assert_eq!((code, written), (0, true), "{stderr}");
    let n = each_view_edit_stops_the_writer(&h, &mut |case, statement| {
        let url = server.clone_database(&pristine);
        server.psql(&url, &to_postgres(case, statement));
        PathBuf::from(url)
    });
    eprintln!("{n} view edits on PostgreSQL, each stops the writer with exit 4");
}

/// The red-team reproduction: three SQL statements licensed a deleted
/// PBX again. Now the writer refuses the edited schedule.
#[test]
fn a_deleted_pbx_is_not_licensed_again_after_its_schedule_is_deleted() {
    let h = History::new();
    let db = h.copy("decommissioned.db");
    // SW-2026-000003 decreased to zero: stop after 5 days, deletion
    // after 14.
    let (code, stderr) = tessera(
        &h,
        &db,
        LATER,
        &[
            "decommission",
            "--serial",
            "SW-2026-000003",
            "--approval",
            "APP-3",
            "-o",
            "zero.lic",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(h.dir.path().join("order.toml"), ORDER).unwrap();
    let back = |db: &Path, out: &str| {
        let r = tessera(
            &h,
            db,
            "2026-03-01T09:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2026-000003",
                "--order",
                "order.toml",
                "-o",
                out,
            ],
        );
        (r.0, r.1, h.dir.path().join(out).exists())
    };
    // Deleted: licensed no more.
    let (code, stderr, written) = back(&db, "intact.lic");
    assert!(code != 0 && !written, "exit {code}: {stderr}");
    // The schedule and the decommission's lifecycle rows deleted.
    let before = entries(&db);
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "DELETE FROM schedules WHERE serial = 'SW-2026-000003';
             DELETE FROM events WHERE serial = 'SW-2026-000003' AND kind = 'decommission';",
        )
        .unwrap();
    let (code, stderr, written) = back(&db, "edited.lic");
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("modified outside tessera"), "{stderr}");
    assert!(stderr.contains("tessera ledger verify"), "{stderr}");
    assert!(!written);
    assert_eq!(entries(&db), before);
}

/// The red-team reproduction: deleting the HW → SW row gave one appliance
/// a second SW serial.
#[test]
fn an_appliance_gets_no_second_sw_serial_after_its_mapping_is_deleted() {
    let h = History::new();
    let db = h.copy("mapping.db");
    let req = activation_request(&h, "HW-B000-0021", LATER);
    let issue = |out: &str| {
        let r = tessera(
            &h,
            &db,
            LATER,
            &[
                "issue",
                "--order",
                "order.toml",
                "--request",
                &req,
                "-o",
                out,
            ],
        );
        (r.0, r.1, h.dir.path().join(out).exists())
    };
    Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM hw_serials WHERE hw_serial = 'HW-B000-0021'")
        .unwrap();
    let before = entries(&db);
    let (code, stderr, written) = issue("second.lic");
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("modified outside tessera"), "{stderr}");
    assert!(stderr.contains("hw_serials"), "{stderr}");
    assert!(!written);
    assert_eq!(entries(&db), before);
    let ledger = Ledger::open_read_only(&db).unwrap();
    assert!(ledger.latest("SW-2026-000005").unwrap().is_none());
}

/// The red-team reproduction: the serial counter set high made the next
/// allocation SW-2026-999999, and `ledger verify` said "intact" after it.
#[test]
fn a_serial_counter_set_high_allocates_nothing() {
    let h = History::new();
    let db = h.copy("counter.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE serial_counter SET last = 999998")
        .unwrap();
    let before = entries(&db);
    let (code, stderr, written) = activate(&h, &db, 1);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("serial_counter"), "{stderr}");
    assert!(!written);
    assert_eq!(entries(&db), before);
    // And verify names the edit.
    let (code, stderr) = h.verify(&db, false);
    assert_eq!(code, 4, "{stderr}");
}

/// What an attacker with write access to the ledger `db` (a file or a
/// PostgreSQL URL) does to license entries: every license's operator
/// becomes mallory, the chain is rehashed and the licenses view follows,
/// so journal and views agree; the checkpoints the rewrite broke are
/// removed and one signed by `mallory` covers the forged head. Returns
/// the forged checkpoint's entry count.
fn forge_head(db: &Path, mallory: &FileSigner) -> u64 {
    use tessera_keys::Signer as _;
    let edit: Edit = |_, e| {
        if let tessera_issuer::ledger::Fact::License { .. } = e.fact {
            e.operator = "mallory".into();
        }
    };
    let url = db.to_str().filter(|u| u.starts_with("postgres"));
    match url {
        Some(url) => assert!(rehash_postgres(url, edit) > 0),
        None => assert!(rehash(db, edit) > 0),
    }
    let ledger = Ledger::open_read_only(db).unwrap();
    let identity = ledger.identity().unwrap();
    let (entries, head) = ledger.head().unwrap();
    let first = ledger.all().unwrap()[0].id;
    drop(ledger);
    let data = tessera_verifier::encode::CheckpointData {
        issuer: identity.vendor,
        issued_at: t(LATER).timestamp(),
        ledger_id: identity.ledger_id,
        entries,
        head,
        previous: Some(u64::try_from(first).unwrap() - 1),
    };
    let forged =
        tessera_verifier::encode::sign_checkpoint(&data, &mallory.kid(), |m| mallory.sign(m))
            .unwrap();
    let edits = format!(
        "UPDATE licenses SET operator = 'mallory'; DELETE FROM checkpoints WHERE entries >= {first};"
    );
    match url {
        Some(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.batch_execute(&edits).unwrap();
            let n = i64::try_from(entries).unwrap();
            c.execute(
                "INSERT INTO checkpoints (entries, bytes) VALUES ($1, $2)",
                &[&n, &forged],
            )
            .unwrap();
        }
        None => {
            let c = Connection::open(db).unwrap();
            c.execute_batch(&edits).unwrap();
            c.execute(
                "INSERT INTO checkpoints (entries, bytes) VALUES (?1, ?2)",
                rusqlite::params![i64::try_from(entries).unwrap(), forged],
            )
            .unwrap();
        }
    }
    entries
}

/// The attack end to end on `db`: a forged checkpoint stops `tessera
/// issue` (exit 4, its entry and kid named, nothing written); a writer
/// fooled into trusting the forger's key (a keyring with it) issues and
/// signs a genuine checkpoint over the forged history, and once the
/// forged checkpoint is removed `ledger verify` still exits 4.
fn a_forged_checkpoint_is_refused_and_its_removal_found(h: &History, db: &Path) {
    use tessera_keys::Signer as _;
    let mallory = FileSigner::generate().unwrap();
    let forged = forge_head(db, &mallory);
    let (code, stderr, written) = activate(h, db, 1000);
    assert_eq!((code, written), (4, false), "{stderr}");
    assert!(
        stderr.contains(&format!("last checkpoint (entry {forged})"))
            && stderr.contains(&hex::encode(mallory.kid()))
            && stderr.contains("not in the vendor's keyring"),
        "{stderr}"
    );
    assert_eq!(entries(db), forged);
    // A keyring that trusts the forger's key: the writer is fooled.
    let mut fooled = Keyring::load(&h.dir.path().join("keyring.toml")).unwrap();
    fooled
        .add(KeyRecord::new(
            mallory.public_key(),
            "mallory",
            t("2020-01-01T00:00:00Z"),
        ))
        .unwrap();
    let fooled_path = h.dir.path().join("fooled.toml");
    let _ = std::fs::remove_file(&fooled_path);
    fooled.save(&fooled_path).unwrap();
    let req = activation_request(h, "HW-AAAA-0100", LATER);
    let (code, stderr) = tessera(
        h,
        db,
        LATER,
        &[
            "issue",
            "--keyring",
            "fooled.toml",
            "--order",
            "order.toml",
            "--request",
            &req,
            "-o",
            "fooled.lic",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    // The forged checkpoint does not verify under the vendor's keyring ...
    let (code, stderr) = h.verify(db, false);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains(&format!("at entry {forged}")), "{stderr}");
    // ... and without it the genuine one after it names the gap.
    let remove = format!("DELETE FROM checkpoints WHERE entries = {forged}");
    match db.to_str().filter(|u| u.starts_with("postgres")) {
        Some(url) => postgres::Client::connect(url, postgres::NoTls)
            .unwrap()
            .batch_execute(&remove)
            .unwrap(),
        None => Connection::open(db)
            .unwrap()
            .execute_batch(&remove)
            .unwrap(),
    }
    let (code, stderr) = h.verify(db, false);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!("follows one of entry {forged}"))
            && stderr.contains("a checkpoint was removed"),
        "{stderr}"
    );
}

/// The finding of an attacker's test: a checkpoint signed by any key
/// passed the writers, which then signed over the forged history, and
/// removing the forged checkpoint afterwards made `ledger verify` pass.
#[test]
fn a_forged_checkpoint_is_refused_and_its_removal_found_by_verify() {
    let h = History::new();
    let db = h.copy("forged.db");
    a_forged_checkpoint_is_refused_and_its_removal_found(&h, &db);
}

#[test]
fn a_forged_checkpoint_is_refused_and_its_removal_found_on_postgres_too() {
    let Some(server) = tessera_tests::postgres::PgServer::start() else {
        return;
    };
    let h = History::new();
    let url = migrated(&h, &server);
    a_forged_checkpoint_is_refused_and_its_removal_found(&h, Path::new(&url));
}
