//! Bulk issuance records the same thing on one thread as on several, and
//! a signature that fails redoes its batch row by row.

use std::path::Path;

use ed25519_dalek::SigningKey;
use tessera_keys::{KeyError, KeyId, Signer};
use tessera_signer::FileSigner;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity};
use tessera_verifier::encode::sign_request;
use tessera_verifier::{armor, samples, KeyEntry};

use super::*;
use crate::calendar::parse_time;
use crate::catalog::Catalog;
use crate::validate::{RequestCheck, DEFAULT_REQUEST_WINDOW};

const ORDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/order.toml");
const NOW: &str = "2026-01-02T09:00:00Z";

/// A new ledger at `path`, created at [`NOW`].
fn new_ledger(path: &Path, signer: &FileSigner) -> Ledger {
    let now = parse_time(NOW).unwrap().timestamp();
    Ledger::create(path, "tessera-vendor", signer, "alice", now).unwrap()
}

/// The request check of a run at [`NOW`].
fn check() -> RequestCheck {
    RequestCheck {
        now: parse_time(NOW).unwrap().timestamp(),
        window: DEFAULT_REQUEST_WINDOW,
    }
}

fn device_seed(n: u32) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    seed[4] = 0x5e;
    seed
}

/// A request from appliance `hw`, device key from `n`.
fn request(n: u32, hw: &str) -> String {
    let seed = device_seed(n);
    let mut r = samples::request();
    r.hw_serial = Some(hw.to_owned());
    r.device_key = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    r.nonce[..4].copy_from_slice(&n.to_be_bytes());
    r.identity = [
        (ComponentKind::HW_SERIAL, hw.to_owned()),
        (ComponentKind::NIC_MAC, format!("02{n:010x}")),
        (ComponentKind::DISK_SERIAL, format!("D{n:09}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    armor::encode(
        &sign_request(&r, samples::seed_signer(seed)).unwrap(),
        armor::LABEL_REQUEST,
    )
}

/// Twenty appliances, then a second device claiming appliance 5's HW
/// serial (refused: licensed), then row 3 again (the CSV refuses a
/// repeated row; given to the library, it is skipped).
fn rows(dir: &Path) -> Vec<Prepared> {
    let mut csv = String::from("request,extension,number,user,base,addon_1,addon_2\n");
    let mut line = |file: &str, n: u32| {
        csv.push_str(&format!(
            "{file},{n},+4930{n:06},user{n}@example.com,Phone System,call_recording,device_ip_phone\n"
        ));
    };
    for n in 0..20 {
        std::fs::write(
            dir.join(format!("{n}.req")),
            request(n, &format!("HW-T{n:04}")),
        )
        .unwrap();
        line(&format!("{n}.req"), n);
    }
    std::fs::write(dir.join("other.req"), request(99, "HW-T0005")).unwrap();
    line("other.req", 99);
    let check = check();
    let (rows, errors) = prepare_text(&csv, dir, Some(Path::new(ORDER)), check).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let mut rows = rows;
    rows.push(rows[3].clone());
    rows
}

/// Each row's outcome in a form that does not depend on timing: the
/// serial and sequence issued or skipped, or the refusal.
fn summary(o: &Outcome) -> String {
    match o {
        Outcome::Issued(r) => format!("issued {} #{}", r.row.serial, r.row.sequence),
        Outcome::Skipped(r) => format!("skipped {} #{}", r.row.serial, r.row.sequence),
        Outcome::Refused(e) => format!("refused line {}: {}", e.line, e.message),
    }
}

/// Each row's outcome ([`summary`]) of [`issue_rows`] at [`NOW`].
fn outcomes(
    ledger: &mut Ledger,
    issuer: &Issuer<'_>,
    rows: &[Prepared],
    batch: usize,
    threads: usize,
) -> Vec<String> {
    let now = parse_time(NOW).unwrap();
    let mut seen = Vec::new();
    let done = issue_rows(ledger, issuer, rows, batch, threads, now, None, |o| {
        seen.push(summary(o));
    })
    .unwrap();
    assert_eq!(done.issued + done.skipped + done.refused.len(), rows.len());
    seen
}

fn run(
    signer: &(dyn Signer + Sync),
    trusted: &FileSigner,
    threads: usize,
    batch: usize,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows(dir.path());
    let mut ledger = new_ledger(&dir.path().join("l.db"), trusted);
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer,
        operator: "alice",
    };
    let seen = outcomes(&mut ledger, &issuer, &rows, batch, threads);
    let keyring = [KeyEntry::new(trusted.public_key(), 0)];
    ledger.verify(&keyring, None).unwrap();
    seen
}

#[test]
fn one_thread_or_several_record_the_same_rows() {
    let signer = FileSigner::generate().unwrap();
    let one = run(&signer, &signer, 1, 2_000);
    assert_eq!(one.len(), 22);
    assert_eq!(one[0], "issued SW-2026-000001 #1");
    let serial_5 = &one[5]["issued ".len()..one[5].len() - " #1".len()];
    assert!(
        one[20].starts_with("refused line 22:") && one[20].contains(serial_5),
        "{}",
        one[20]
    );
    assert_eq!(one[21], format!("skipped {}", &one[3]["issued ".len()..]));
    for (threads, batch) in [(2, 2_000), (4, 2_000), (3, 7)] {
        assert_eq!(
            run(&signer, &signer, threads, batch),
            one,
            "{threads} threads, batches of {batch}"
        );
    }
}

/// A signer that fails for every message holding `poison`.
struct Failing<'a> {
    inner: &'a FileSigner,
    poison: &'a [u8],
}

impl Signer for Failing<'_> {
    fn kid(&self) -> KeyId {
        self.inner.kid()
    }
    fn public_key(&self) -> [u8; 32] {
        self.inner.public_key()
    }
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError> {
        if msg.windows(self.poison.len()).any(|w| w == self.poison) {
            return Err(KeyError::Signing("the token is gone".into()));
        }
        self.inner.sign(msg)
    }
}

#[test]
fn a_failed_signature_refuses_its_row_only() {
    let inner = FileSigner::generate().unwrap();
    // The license of row 7 (appliance 6) binds its disk.
    let disk_6 = component_digest(
        &samples::request().salt,
        ComponentKind::DISK_SERIAL,
        b"D000000006",
    );
    let signer = Failing {
        inner: &inner,
        poison: &disk_6,
    };
    for threads in [1, 2] {
        let seen = run(&signer, &inner, threads, 2_000);
        assert!(seen[6].starts_with("refused line 8:"), "{}", seen[6]);
        assert!(seen[6].contains("the token is gone"), "{}", seen[6]);
        assert_eq!(seen.iter().filter(|s| s.starts_with("issued")).count(), 19);
    }
}

/// A license recorded for `row` the way bulk rows were recorded before
/// they were recorded under their request's nonce: under `key`.
fn record_the_old_way(ledger: &mut Ledger, issuer: &Issuer<'_>, row: &Prepared, key: &str) {
    let now = parse_time(NOW).unwrap();
    let mut w = ledger.writer(issuer.signer, issuer.operator).unwrap();
    let opts = IssueOptions {
        now,
        approval: None,
        change: false,
        idem_key: Some(key),
        order_json: Some(&row.order_json),
        new_device_key: false,
        retire_old_keys: false,
    };
    issuance::issue(&mut w, issuer, &row.order, &row.request, &opts).unwrap();
    w.commit().unwrap();
}

/// A run an earlier tessera started (rows recorded under their row key)
/// resumes: its rows are skipped, not issued again, a voided one is not
/// written again, and the rest are issued.
#[test]
fn a_run_recorded_under_row_keys_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = appliances(d, 3, "HW-O", |_| None);
    let (rows, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let now = parse_time(NOW).unwrap();
    let signer = FileSigner::generate().unwrap();
    let mut ledger = new_ledger(&d.join("l.db"), &signer);
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    for row in &rows[..2] {
        record_the_old_way(
            &mut ledger,
            &issuer,
            row,
            &row_key(&row.order_json, &row.request),
        );
    }
    let voided = ledger.latest("SW-2026-000002").unwrap().unwrap();
    let mut w = ledger.writer(&signer, "alice").unwrap();
    crate::lifecycle::void(&mut w, &issuer, &voided.row.license_id, "wrong order", now).unwrap();
    w.commit().unwrap();
    for threads in [1, 2] {
        let seen = outcomes(&mut ledger, &issuer, &rows, 100, threads);
        assert_eq!(seen[0], "skipped SW-2026-000001 #1");
        assert!(
            seen[1].starts_with("refused line 3: this row was issued before (SW-2026-000002 sequence 1), and the PBX has sequence 2 since (a void)"),
            "{}",
            seen[1]
        );
        // Issued by the first run, skipped by the second.
        let third = if threads == 1 { "issued" } else { "skipped" };
        assert_eq!(seen[2], format!("{third} SW-2026-000003 #1"));
    }
    let keyring = [KeyEntry::new(signer.public_key(), 0)];
    assert_eq!(ledger.verify(&keyring, None).unwrap().licenses, 4);
}

/// A row an earlier tessera recorded under the key of the CSV's `key`
/// column is found by it; the key gives another device, or another order,
/// nothing of that row's license.
#[test]
fn a_key_column_resumes_its_old_row_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for n in [1, 2] {
        std::fs::write(
            d.join(format!("{n}.req")),
            request(n, &format!("HW-K{n:04}")),
        )
        .unwrap();
    }
    let signer = FileSigner::generate().unwrap();
    let mut ledger = new_ledger(&d.join("l.db"), &signer);
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    let check = check();
    let rows = |file: &str, user: &str| {
        let csv = format!(
            "request,extension,number,user,base,addon_1,addon_2,key\n{file},10,+4930000010,{user},Phone System,call_recording,device_ip_phone,K1\n"
        );
        let (rows, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rows[0].old_key(), "K1");
        rows
    };
    record_the_old_way(
        &mut ledger,
        &issuer,
        &rows("1.req", "a@example.com")[0],
        "K1",
    );
    let mut run = |rows: Vec<Prepared>| outcomes(&mut ledger, &issuer, &rows, 100, 2).remove(0);
    assert_eq!(
        run(rows("1.req", "a@example.com")),
        "skipped SW-2026-000001 #1"
    );
    // Another device's row: its own first license.
    assert_eq!(
        run(rows("2.req", "a@example.com")),
        "issued SW-2026-000002 #1"
    );
    let other_order = run(rows("1.req", "b@example.com"));
    assert!(
        other_order.starts_with("refused line 2: SW-2026-000001 already has a license in force"),
        "{other_order}"
    );
}

/// A request is answered once within a run too: a second row with the
/// same request and the same order is the first row again; with another
/// order it is refused, in the same batch as in a later one.
#[test]
fn a_request_in_two_rows_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = appliances(d, 2, "HW-R", |_| None);
    let (mut rows, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let mut other = rows[0].clone();
    other.line = 9;
    "Another Clinic".clone_into(&mut other.order.customer);
    other.order_json = other.order.to_json();
    rows.push(rows[0].clone());
    rows.push(other);
    let signer = FileSigner::generate().unwrap();
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    for (batch, threads) in [(100, 2), (100, 1), (1, 2)] {
        let mut ledger = new_ledger(&d.join(format!("l-{batch}-{threads}.db")), &signer);
        let seen = outcomes(&mut ledger, &issuer, &rows, batch, threads);
        assert_eq!(seen[0], "issued SW-2026-000001 #1");
        assert_eq!(seen[2], "skipped SW-2026-000001 #1");
        assert!(seen[3].starts_with("refused line 9: "), "{}", seen[3]);
        let why = if batch == 1 {
            "this request was answered before: SW-2026-000001 sequence 1 (issue)"
        } else {
            "an earlier row answers this row's request, with another order"
        };
        assert!(seen[3].contains(why), "{batch}: {}", seen[3]);
        assert_eq!(ledger.all().unwrap().len(), 2);
    }
    // The CSV refuses both at once, naming the first row.
    let mut csv = csv;
    csv.push_str(
        "0.req,0,+4930000000,user0@example.com,Phone System,call_recording,device_ip_phone\n",
    );
    csv.push_str("0.req,5,+4930000005,other@example.com,Phone System\n");
    let (_, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check()).unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0]
            .message
            .starts_with("same row (same request, same order) as line 2"),
        "{errors:?}"
    );
    assert!(
        errors[1]
            .message
            .starts_with("the request of line 2 again, with another order"),
        "{errors:?}"
    );
}

#[test]
fn eta_waits_for_a_measured_rate() {
    use core::time::Duration;
    // The first draw of a 0.44 s run said "57s": no guess any more.
    assert_eq!(eta_text(0, Some(2000), Duration::ZERO), "eta ...");
    assert_eq!(
        eta_text(50, Some(2000), Duration::from_millis(300)),
        "eta ..."
    );
    // 500 of 2000 rows in 2 s: 1500 left at 250 rows/s.
    assert_eq!(eta_text(500, Some(2000), Duration::from_secs(2)), "eta 6s");
    assert_eq!(
        eta_text(10, Some(1000), Duration::from_secs(10)),
        "eta 16m30s"
    );
    assert_eq!(eta_text(10, None, Duration::from_secs(10)), "");
}

/// A bulk CSV of `count` appliances (HW serials `PREFIX0000` ...), with
/// their request files in `d`, and the order file `order(n)` names (none:
/// the run's `--order`).
fn appliances(
    d: &Path,
    count: u32,
    prefix: &str,
    order: impl Fn(u32) -> Option<&'static str>,
) -> String {
    let orders = (0..count).any(|n| order(n).is_some());
    let mut csv = String::from(if orders {
        "request,order,extension,number,user,base,addon_1,addon_2\n"
    } else {
        "request,extension,number,user,base,addon_1,addon_2\n"
    });
    for n in 0..count {
        std::fs::write(
            d.join(format!("{n}.req")),
            request(n, &format!("{prefix}{n:04}")),
        )
        .unwrap();
        let order = order(n).map(|o| format!("{o},")).unwrap_or_default();
        csv.push_str(&format!(
            "{n}.req,{order}{n},+4930{n:06},user{n}@example.com,Phone System,call_recording,device_ip_phone\n"
        ));
    }
    csv
}

/// The write-ahead log is copied into the ledger file by the writer's
/// checkpoint thread, not inside the commits, and starts over once past
/// its limit: across many batches it stays a fraction of what was
/// written (without the copy, or without a writer that waits for it, it
/// holds every page the run wrote: 3.7 MB here, for a 1.7 MB file).
#[test]
fn the_log_stays_bounded_across_batches() {
    log_stays_bounded(false);
}

/// The same with the ledger's path a symbolic link: SQLite keeps the log
/// next to the file the link points to, and that is the log to measure.
#[test]
fn the_log_of_a_linked_ledger_stays_bounded() {
    log_stays_bounded(true);
}

fn log_stays_bounded(through_link: bool) {
    const ROWS: u32 = 240;
    const BATCH: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = appliances(d, ROWS, "HW-W", |_| None);
    let now = parse_time(NOW).unwrap();
    let check = check();
    let (rows, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let signer = FileSigner::generate().unwrap();
    std::fs::create_dir(d.join("real")).unwrap();
    let real = d.join("real/l.db");
    drop(new_ledger(&real, &signer));
    let path = if through_link {
        std::os::unix::fs::symlink("real/l.db", d.join("l.db")).unwrap();
        d.join("l.db")
    } else {
        real.clone()
    };
    let mut ledger = Ledger::open(&path).unwrap();
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    // 16 pages: the log starts over every batch or two.
    crate::ledger::sqlite::set_log_limit(16 * 4096);
    let wal = d.join("real/l.db-wal");
    let mut largest = 0u64;
    let summary = issue_rows(&mut ledger, &issuer, &rows, BATCH, 2, now, None, |_| {
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    })
    .unwrap();
    assert_eq!(summary.issued, rows.len());
    drop(ledger);
    let file = std::fs::metadata(&real).unwrap().len();
    assert!(
        largest < file / 2,
        "the log grew to {largest} bytes for a ledger file of {file}"
    );
    // Every committed row is in the file once the writer is gone.
    let ledger = Ledger::open_read_only(&path).unwrap();
    let keyring = [KeyEntry::new(signer.public_key(), 0)];
    ledger.verify(&keyring, None).unwrap();
    assert_eq!(ledger.all().unwrap().len(), rows.len());
}

/// A row refused only after it wrote (its order names a policy the
/// catalog lacks: found once its PBX is being entered in the registry)
/// spoils the batch's fast pass; the batch is redone with each row in a
/// savepoint, on several threads, and the refused row leaves no trace.
#[test]
fn a_row_refused_after_it_wrote_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let order = std::fs::read_to_string(ORDER).unwrap();
    std::fs::write(d.join("good.toml"), &order).unwrap();
    std::fs::write(
        d.join("bad.toml"),
        format!("policy = \"no-such-policy\"\n{order}"),
    )
    .unwrap();
    let csv = appliances(d, 12, "HW-S", |n| {
        Some(if n == 7 { "bad.toml" } else { "good.toml" })
    });
    let now = parse_time(NOW).unwrap();
    let check = check();
    let (rows, errors) = prepare_text(&csv, d, None, check).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let signer = FileSigner::generate().unwrap();
    let mut ledger = new_ledger(&d.join("l.db"), &signer);
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    let mut seen = Vec::new();
    let summary = issue_rows(&mut ledger, &issuer, &rows, 100, 2, now, None, |o| {
        seen.push(summary(o));
    })
    .unwrap();
    assert_eq!((summary.issued, summary.refused.len()), (11, 1), "{seen:?}");
    assert!(seen[7].starts_with("refused line 9:"), "{}", seen[7]);
    assert!(seen[7].contains("no-such-policy"), "{}", seen[7]);
    // Eleven serials in a row: the refused row's allocation is gone.
    for (i, s) in seen.iter().filter(|s| s.starts_with("issued")).enumerate() {
        assert_eq!(s, &format!("issued SW-2026-{:06} #1", i + 1));
    }
    assert!(ledger.sw_serial_of("HW-S0007").unwrap().is_none());
    let keyring = [KeyEntry::new(signer.public_key(), 0)];
    let r = ledger.verify(&keyring, None).unwrap();
    assert_eq!(r.licenses, 11);
}

#[test]
fn a_row_quotes_what_it_names_as_a_prefix_and_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("0.req"), request(0, "HW-T0000")).unwrap();
    let huge = "A".repeat(2 * 1024 * 1024);
    // An order file with a 2 MB field name in it.
    std::fs::write(
        d.join("big.toml"),
        format!("customer = \"A\"\nplatform = \"hw\"\ncycle = \"yearly\"\nterm_start = \"2026-01-01\"\n{huge} = 1\n"),
    )
    .unwrap();
    let csv = format!("request,order\n{huge}.req,\n0.req,{huge}.toml\n0.req,big.toml\n");
    let (rows, errors) = prepare_text(&csv, d, Some(Path::new(ORDER)), check()).unwrap();
    assert!(rows.is_empty(), "{}", rows.len());
    assert_eq!(errors.len(), 3, "{errors:?}");
    for e in &errors {
        assert!(
            e.message.len() < 600,
            "line {}: {} bytes",
            e.line,
            e.message.len()
        );
        assert!(
            e.message.contains(&format!("{}... (", "A".repeat(10))),
            "{}",
            e.message
        );
    }
    // The path given for the files, the field name for the order.
    let path_bytes = d.display().to_string().len() + 1 + huge.len() + 4;
    assert!(
        errors[0].message.contains(&format!(
            "... ({} bytes)",
            crate::validate::grouped(path_bytes)
        )),
        "{}",
        errors[0].message
    );
    assert!(
        errors[1].message.contains(&format!(
            "... ({} bytes)",
            crate::validate::grouped(path_bytes + 1)
        )),
        "{}",
        errors[1].message
    );
    assert!(
        errors[2].message.contains("unknown field `")
            && errors[2].message.contains("... (2,097,152 bytes)`"),
        "{}",
        errors[2].message
    );
}

/// A catalog name the order refuses that a cell gave is blamed on its
/// column, not on the order file; one the order file names too says both.
#[test]
fn a_refused_name_from_a_cell_names_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let order = std::fs::read_to_string(ORDER).unwrap();
    let also = dir.path().join("also.toml");
    std::fs::write(
        &also,
        order.replace(
            "addons = { device_desktop_app = 3 }",
            "addons = { device_desktop_app = 3, hologram = 1 }",
        ),
    )
    .unwrap();
    let mut csv = String::from("request,order,profile,base,addon_1,addon_2\n");
    for (n, row) in [
        ",UC-GALACTIC,,,",
        ",,Nowhere,,",
        ",,Phone System,call_recording,hologram",
        "also.toml,,Call Group,hologram,",
    ]
    .iter()
    .enumerate()
    {
        let n = u32::try_from(n).unwrap();
        std::fs::write(
            dir.path().join(format!("{n}.req")),
            request(n, &format!("HW-C{n:04}")),
        )
        .unwrap();
        csv.push_str(&format!("{n}.req,{row}\n"));
    }
    let (rows, errors) = prepare_text(&csv, dir.path(), Some(Path::new(ORDER)), check()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let signer = FileSigner::generate().unwrap();
    let mut ledger = new_ledger(&dir.path().join("l.db"), &signer);
    let catalog = Catalog::default_catalog().unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    let seen = outcomes(&mut ledger, &issuer, &rows, 10, 1);
    let expected = [
        (2, "unknown profile `UC-GALACTIC` in column profile;"),
        (3, "unknown base license `Nowhere` in column base;"),
        (4, "unknown add-on `hologram` in column addon_2;"),
        (
            5,
            "unknown add-on `hologram` in column addon_1 (and in the order file);",
        ),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    for (seen, (line, says)) in seen.iter().zip(expected) {
        assert!(
            seen.starts_with(&format!("refused line {line}: {says}")),
            "{seen}"
        );
    }
}
