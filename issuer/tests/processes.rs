//! The ledger under real processes: two `tessera` processes issuing for
//! the same serial at once never share a sequence, two answering the same
//! request at once issue one license, and a bulk run killed
//! with SIGKILL leaves a ledger that verifies, with every license file it
//! wrote recorded in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity};
use tessera_verifier::encode::sign_request;
use tessera_verifier::{armor, samples};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/issue.in");

fn tessera(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.current_dir(dir)
        .env("TESSERA_OPERATOR", "test")
        .env("TESSERA_PASSPHRASE", "correct horse battery staple")
        .env("TESSERA_KEY", "signing.pem")
        .env_remove("TESSERA_CATALOG")
        .env_remove("TESSERA_KEYRING")
        .env_remove("TESSERA_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .env("TESSERA_NOW", "2026-01-02T09:00:00Z")
        // The fixture renewal request is dated ten weeks later.
        .env("TESSERA_REQUEST_WINDOW", "400d");
    // A PostgreSQL ledger is named in the folder's tessera.toml.
    if dir.join("tessera.toml").exists() {
        c.env_remove("TESSERA_LEDGER");
    } else {
        c.env("TESSERA_LEDGER", "tessera.db");
    }
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    tessera(dir).args(args).output().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn workdir() -> tempfile::TempDir {
    workdir_on(None)
}

/// A folder with the fixtures and a new ledger: `tessera.db`, or the
/// PostgreSQL database `url` (named in tessera.toml).
fn workdir_on(url: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(url) = url {
        std::fs::write(
            dir.path().join("tessera.toml"),
            format!("ledger = \"{url}\"\n"),
        )
        .unwrap();
    }
    for f in ["signing.pem", "keyring.toml", "order.toml", "device.req"] {
        std::fs::copy(Path::new(FIXTURES).join(f), dir.path().join(f)).unwrap();
    }
    ok(&run(dir.path(), &["ledger", "init"]));
    dir
}

fn ledger_json(dir: &Path) -> Vec<serde_json::Value> {
    let out = run(dir, &["ledger", "export", "--json"]);
    ok(&out);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The sample appliance's first license (`device.req`), as `first.lic`.
fn first_license(d: &Path) {
    let args = ["issue", "--order", "order.toml", "--request", "device.req"];
    ok(&run(d, &[&args[..], &["-o", "first.lic"]].concat()));
}

/// Runs `scenario` in a folder whose ledger is a new database of a real
/// PostgreSQL server (skipped without one, except under `CI=true`).
fn on_postgres(scenario: fn(&tempfile::TempDir)) {
    let Some(server) = tessera_tests::postgres::PgServer::start() else {
        return;
    };
    scenario(&workdir_on(Some(&server.create_database())));
}

#[test]
fn two_processes_never_share_a_sequence() {
    two_processes_at_once(&workdir());
}

#[test]
fn two_processes_never_fork_a_postgres_ledger() {
    on_postgres(two_processes_at_once);
}

fn two_processes_at_once(dir: &tempfile::TempDir) {
    let d = dir.path();
    first_license(d);
    const PER_PROCESS: usize = 8;
    let spawn = |tag: &str| {
        let d = d.to_owned();
        let tag = tag.to_owned();
        std::thread::spawn(move || {
            for i in 0..PER_PROCESS {
                // Each renewal answers a request of its own.
                let req = format!("{tag}-{i}.req");
                let n = u32::try_from(i).unwrap() + if tag == "a" { 0 } else { 100 };
                std::fs::write(d.join(&req), renewal_request(n)).unwrap();
                let out = run(
                    &d,
                    &["renew", "--request", &req, "-o", &format!("{tag}-{i}.lic")],
                );
                ok(&out);
            }
        })
    };
    let a = spawn("a");
    let b = spawn("b");
    a.join().unwrap();
    b.join().unwrap();
    let rows = ledger_json(d);
    let mut seqs: Vec<u64> = rows
        .iter()
        .filter(|r| r["serial"] == "SW-2026-000001")
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    let n = u64::try_from(2 * PER_PROCESS + 1).unwrap();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    // Every written file holds a distinct sequence.
    let mut file_seqs: Vec<u32> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lic"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let mut buf = vec![0u8; 4096];
            let bytes = armor::decode(&text, armor::LABEL_LICENSE, &mut buf).unwrap();
            tessera_verifier::decode_license_unverified(bytes)
                .unwrap()
                .sequence()
        })
        .collect();
    file_seqs.sort_unstable();
    assert_eq!(file_seqs.len(), 2 * PER_PROCESS + 1);
    file_seqs.dedup();
    assert_eq!(file_seqs.len(), 2 * PER_PROCESS + 1);
    ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
}

/// The sample appliance's renewal request number `n` (the fixture
/// `device-renewal.req` with a nonce of its own): a request is answered
/// once, so each renewal needs a new one, as the device makes it.
fn renewal_request(n: u32) -> String {
    let mut r = samples::renewal_request();
    r.serial = Some("SW-2026-000001".into());
    r.created_at = samples::T0 + 70 * samples::DAY;
    r.nonce[..4].copy_from_slice(b"proc");
    r.nonce[4..8].copy_from_slice(&n.to_be_bytes());
    let bytes = sign_request(&r, samples::seed_signer(samples::DEVICE_KEY_SEED)).unwrap();
    armor::encode(&bytes, armor::LABEL_REQUEST)
}

#[test]
fn two_processes_answer_one_request_once() {
    one_request_twice_at_once(&workdir());
}

#[test]
fn two_processes_answer_one_request_once_on_postgres() {
    on_postgres(one_request_twice_at_once);
}

/// The same renewal request given to two processes at once, a few times
/// over: one license is issued for it; the other process writes that same
/// license (exit 0), byte for byte, and says so.
fn one_request_twice_at_once(dir: &tempfile::TempDir) {
    let d = dir.path();
    first_license(d);
    const ROUNDS: u32 = 4;
    for round in 0..ROUNDS {
        let req = format!("r{round}.req");
        std::fs::write(d.join(&req), renewal_request(1000 + round)).unwrap();
        let spawn = |tag: &str| {
            let (d, req) = (d.to_owned(), req.clone());
            let lic = format!("{tag}{round}.lic");
            std::thread::spawn(move || {
                let out = run(&d, &["renew", "--request", &req, "-o", &lic]);
                ok(&out);
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                (std::fs::read(d.join(&lic)).unwrap(), stderr)
            })
        };
        let (a, b) = (spawn("a"), spawn("b"));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(a.0, b.0, "round {round}: two licenses for one request");
        let again = [&a.1, &b.1]
            .iter()
            .filter(|e| e.contains("this request was answered before"))
            .count();
        assert_eq!(again, 1, "round {round}:\n{}\n{}", a.1, b.1);
    }
    let rows = ledger_json(d);
    let n = rows
        .iter()
        .filter(|r| r["serial"] == "SW-2026-000001")
        .count();
    assert_eq!(n, 1 + usize::try_from(ROUNDS).unwrap());
    ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
}

/// A request of HW box `n` (distinct HW serial, identity and device key).
fn box_request(n: u32) -> String {
    box_request_with_nonce(n, n)
}

/// [`box_request`] with its nonce made from `nonce`: another request of
/// the same box.
fn box_request_with_nonce(n: u32, nonce: u32) -> String {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    seed[4] = 0xb0;
    let key = SigningKey::from_bytes(&seed);
    let hw = format!("HW-K{n:07}");
    let mut r = samples::request();
    r.hw_serial = Some(hw.clone());
    r.device_key = key.verifying_key().to_bytes();
    r.nonce = [0; 16];
    r.nonce[..4].copy_from_slice(&nonce.to_be_bytes());
    r.identity = [
        (ComponentKind::HW_SERIAL, hw.clone()),
        (ComponentKind::NIC_MAC, format!("02{n:010x}")),
        (ComponentKind::DISK_SERIAL, format!("D{n:09}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    let bytes = sign_request(&r, samples::seed_signer(seed)).unwrap();
    armor::encode(&bytes, armor::LABEL_REQUEST)
}

fn license_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "lic"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigkill_during_bulk_leaves_a_consistent_ledger() {
    let dir = workdir();
    let d = dir.path();
    const ROWS: u32 = 1_000;
    write_bulk_inputs(d, ROWS);
    let bulk = |d: &Path| {
        tessera(d)
            .args([
                "issue",
                "--bulk",
                "big.csv",
                "--order",
                "order.toml",
                "-o",
                "out",
                "--batch-size",
                "25",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = bulk(d);
    let out_dir = d.join("out");
    let start = Instant::now();
    // Kill it once the first batches are out, in the middle of the run.
    while license_files(&out_dir).len() < 40 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "bulk never started"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
    let rows = ledger_json(d);
    assert!(
        rows.len() < usize::try_from(ROWS).unwrap(),
        "the run finished before it was killed; raise ROWS"
    );
    let recorded: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r["license"].as_str().unwrap().to_owned())
        .collect();
    let files = license_files(&out_dir);
    assert!(!files.is_empty());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            recorded.contains(&text),
            "{} is not in the ledger",
            f.display()
        );
    }

    // Between the runs: the order file gets a comment (the rows it issued
    // stay the same rows), and two license files of committed rows go
    // missing (the resumed run writes them again).
    let order = std::fs::read_to_string(d.join("order.toml")).unwrap();
    std::fs::write(
        d.join("order.toml"),
        format!("# checked by ops after the crash\n{order}\n# end\n"),
    )
    .unwrap();
    for f in files.iter().take(2) {
        std::fs::remove_file(f).unwrap();
    }

    // Resuming issues the rest and skips what is done.
    let out = tessera(d)
        .args([
            "issue",
            "--bulk",
            "big.csv",
            "--order",
            "order.toml",
            "-o",
            "out",
        ])
        .output()
        .unwrap();
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{ROWS} row(s): ")), "{stderr}");
    assert!(
        stderr.contains(&format!("{} already issued", rows.len())),
        "{stderr}"
    );
    assert!(stderr.contains(", 0 refused;"), "{stderr}");
    ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
    assert_eq!(ledger_json(d).len(), usize::try_from(ROWS).unwrap());
    assert_eq!(
        license_files(&out_dir).len(),
        usize::try_from(ROWS).unwrap()
    );
    // No temporary file of the killed run is left.
    let temps: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

/// Runs `tessera` as someone who may read but not write `dir`: as root
/// (whom file modes do not stop), through `setpriv` as nobody.
fn tessera_without_write_access(dir: &Path, args: &[&str]) -> Output {
    let root = running_as_root();
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_tessera"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
    };
    c.current_dir(dir)
        .env("TESSERA_LEDGER", "tessera.db")
        .env("TESSERA_NOW", "2026-01-02T09:00:00Z")
        .env_remove("TESSERA_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .args(args)
        .output()
        .unwrap()
}

fn running_as_root() -> bool {
    // The owner of a file this process just created is its user.
    let probe = tempfile::NamedTempFile::new().unwrap();
    std::os::unix::fs::MetadataExt::uid(&probe.as_file().metadata().unwrap()) == 0
}

#[test]
fn readers_run_during_a_bulk_write_and_on_read_only_media() {
    let dir = workdir();
    let d = dir.path();
    const ROWS: u32 = 3_000;
    write_bulk_inputs(d, ROWS);
    let mut child = tessera(d)
        .args([
            "issue",
            "--bulk",
            "big.csv",
            "--order",
            "order.toml",
            "-o",
            "out",
            "--batch-size",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("bulk.err")).unwrap())
        .spawn()
        .unwrap();
    // While it writes, readers list, show and verify: each completes, and
    // sees a ledger that grows and verifies.
    let mut reads = 0u32;
    let mut seen = 0usize;
    let mut during = 0u32;
    while child.try_wait().unwrap().is_none() {
        let start = Instant::now();
        let out = run(d, &["ledger", "list", "--json"]);
        ok(&out);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ledger list took {:?} during the bulk run",
            start.elapsed()
        );
        let n = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len();
        assert!(n >= seen, "the list shrank from {seen} to {n}");
        seen = n;
        during += u32::from(n < usize::try_from(ROWS).unwrap());
        if reads % 4 == 0 {
            ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
        }
        reads += 1;
    }
    assert!(
        child.wait().unwrap().success(),
        "the bulk run failed: {}",
        std::fs::read_to_string(d.join("bulk.err")).unwrap_or_default()
    );
    assert!(
        during >= 2,
        "the readers did not run while the bulk run wrote ({reads} reads, {during} before its end); raise ROWS"
    );
    ok(&run(d, &["ledger", "verify", "--keyring", "keyring.toml"]));
    eprintln!("{reads} reads during the bulk run, {during} of them before all {ROWS} rows were in");

    // A copy on "read-only media": a folder and file nobody may write.
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    {
        let conn = rusqlite::Connection::open(d.join("tessera.db")).unwrap();
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    for f in ["tessera.db", "keyring.toml"] {
        std::fs::copy(d.join(f), m.join(f)).unwrap();
    }
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap();
    };
    mode(&m.join("tessera.db"), 0o444);
    mode(&m.join("keyring.toml"), 0o444);
    mode(m, 0o555);
    for args in [
        &["ledger", "list"][..],
        &["ledger", "show", "HW-K0000001"],
        &["ledger", "verify", "--keyring", "keyring.toml"],
        &["ledger", "head"],
        &["ledger", "export", "--json"],
        &["report", "overdue"],
    ] {
        let out = tessera_without_write_access(m, args);
        ok(&out);
    }
    // Nothing was written there, and a writer says why it cannot.
    let names: Vec<_> = std::fs::read_dir(m)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    mode(m, 0o755);

    // A copy with its -wal file but without its -shm (`cp ledger.db
    // ledger.db-wal /media`): read as it is, the file would lack what the
    // -wal holds and verify as a shorter, "intact" ledger. Refused.
    let media = tempfile::tempdir().unwrap();
    let m = media.path();
    {
        // A second connection keeps the -wal from being folded back and
        // removed when the first one closes.
        let hold = rusqlite::Connection::open(d.join("tessera.db")).unwrap();
        let _: i64 = hold
            .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
            .unwrap();
        let write = rusqlite::Connection::open(d.join("tessera.db")).unwrap();
        write
            .execute_batch(
                "BEGIN; UPDATE identity SET vendor = vendor || 'x'; \
                 UPDATE identity SET vendor = substr(vendor, 1, length(vendor) - 1); COMMIT;",
            )
            .unwrap();
        drop(write);
        for f in ["tessera.db", "tessera.db-wal", "keyring.toml"] {
            std::fs::copy(d.join(f), m.join(f)).unwrap();
        }
        drop(hold);
    }
    assert!(std::fs::metadata(m.join("tessera.db-wal")).unwrap().len() > 0);
    for f in ["tessera.db", "tessera.db-wal", "keyring.toml"] {
        mode(&m.join(f), 0o444);
    }
    mode(m, 0o555);
    for args in [
        &["ledger", "list"][..],
        &["ledger", "verify", "--keyring", "keyring.toml"],
    ] {
        let out = tessera_without_write_access(m, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("-wal file holds recent entries"),
            "{args:?}: {stderr}"
        );
    }
    mode(m, 0o755);
}

/// `big.csv` in `d`: one row per HW box, `rows` of them, with their
/// request files in `req/`.
fn write_bulk_inputs(d: &Path, rows: u32) {
    let mut csv = String::from("request,extension,user\n");
    std::fs::create_dir_all(d.join("req")).unwrap();
    for n in 0..rows {
        std::fs::write(d.join(format!("req/{n}.req")), box_request(n)).unwrap();
        csv.push_str(&format!("req/{n}.req,{n},user{n}@example.com\n"));
    }
    std::fs::write(d.join("big.csv"), csv).unwrap();
}

/// A bulk run of `rows` HW boxes into the ledger of `d`.
fn bulk_issue(d: &Path, rows: u32, extra: &[&str]) -> Output {
    write_bulk_inputs(d, rows);
    tessera(d)
        .args([
            "issue",
            "--bulk",
            "big.csv",
            "--order",
            "order.toml",
            "-o",
            "out",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn ledger_list_into_a_pipe_closed_early_is_quiet() {
    let dir = workdir();
    let d = dir.path();
    ok(&bulk_issue(d, 600, &[]));
    // More than a pipe holds (64 KiB), so `head -1` really closes it while
    // tessera still writes.
    let full = run(d, &["ledger", "list"]);
    ok(&full);
    assert!(full.stdout.len() > 64 * 1024, "{} bytes", full.stdout.len());
    let out = Command::new("bash")
        .args([
            "-c",
            "set -o pipefail; \"$TESSERA\" ledger list | head -1; \"$TESSERA\" ledger list --json | head -1",
        ])
        .env("TESSERA", env!("CARGO_BIN_EXE_tessera"))
        .current_dir(d)
        .env("TESSERA_LEDGER", "tessera.db")
        .env_remove("TESSERA_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("SERIAL "), "{stdout}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
}

#[test]
fn bulk_json_reports_every_row() {
    let dir = workdir();
    let d = dir.path();
    let out = bulk_issue(d, 3, &["--json"]);
    ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 3);
    assert_eq!(report["issued"], 3);
    assert_eq!(report["refused"], 0);
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["outcome"], "issued");
    assert!(rows[0]["serial"].as_str().unwrap().starts_with("SW-"));
    assert!(rows[0]["file"].as_str().unwrap().starts_with("out/"));
}

#[test]
fn a_bulk_row_for_a_licensed_device_suggests_no_change_flag() {
    let dir = workdir();
    let d = dir.path();
    std::fs::create_dir_all(d.join("req")).unwrap();
    std::fs::write(d.join("req/0.req"), box_request(0)).unwrap();
    std::fs::write(d.join("req/0b.req"), box_request_with_nonce(0, 1000)).unwrap();
    // The same device twice, with two requests and different users
    // (different rows).
    std::fs::write(
        d.join("twice.csv"),
        "request,extension,user\nreq/0.req,100,a@example.com\nreq/0b.req,101,b@example.com\n",
    )
    .unwrap();
    let out = tessera(d)
        .args([
            "issue",
            "--bulk",
            "twice.csv",
            "--order",
            "order.toml",
            "-o",
            "out",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("twice.csv:3: refused:"), "{err}");
    assert!(err.contains("gives each device its first license"), "{err}");
    assert!(!err.contains("--change"), "{err}");
}

#[test]
fn a_bulk_run_stopped_half_way_says_what_it_recorded() {
    let dir = workdir();
    let d = dir.path();
    // Rows 3 and 4 are the second batch; the file of row 3 cannot be
    // written (a folder holds its name), which stops the run after that
    // batch is committed.
    std::fs::create_dir_all(d.join("out/SW-2026-000003-1.lic")).unwrap();
    let out = bulk_issue(d, 5, &["--batch-size", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("the run stopped after 4 row(s) were recorded in the ledger (4 issued, 0 already issued)"),
        "{err}"
    );
    assert!(
        err.contains("out/SW-2026-000003-1.lic is a folder"),
        "{err}"
    );
    assert!(d.join("out/SW-2026-000001-1.lic").is_file());
    assert!(!d.join("out/SW-2026-000005-1.lic").exists());
    // Resumed: the recorded rows are skipped, the missing file written,
    // the last row issued.
    std::fs::remove_dir(d.join("out/SW-2026-000003-1.lic")).unwrap();
    let out = bulk_issue(d, 5, &["--batch-size", "2"]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("5 row(s): 1 issued, 4 already issued (skipped), 0 refused"),
        "{err}"
    );
    for n in 1..=5 {
        assert!(
            d.join(format!("out/SW-2026-00000{n}-1.lic")).is_file(),
            "{n}"
        );
    }
}

#[test]
fn a_resumed_bulk_run_never_writes_a_voided_license_again() {
    let dir = workdir();
    let d = dir.path();
    ok(&bulk_issue(d, 2, &[]));
    ok(&run(
        d,
        &[
            "void",
            "--license",
            "SW-2026-000001:1",
            "--reason",
            "wrong order",
        ],
    ));
    std::fs::remove_file(d.join("out/SW-2026-000001-1.lic")).unwrap();
    std::fs::remove_file(d.join("out/SW-2026-000002-1.lic")).unwrap();
    refused_rows(
        &bulk_issue(d, 2, &[]),
        &[
            "big.csv:2: refused: this request was answered before: SW-2026-000001 sequence 1 on 2026-01-02T09:00:00Z, and the PBX has sequence 2 since",
            "2 row(s): 0 issued, 1 already issued (skipped), 1 refused",
        ],
    );
    // The voided license is not written again; the other row's is.
    assert!(!d.join("out/SW-2026-000001-1.lic").exists());
    assert!(d.join("out/SW-2026-000002-1.lic").is_file());
}

/// Boxes `0..count` with their request files in `req/`, in `plain.csv`:
/// no user columns, so each row's order is the order file's.
fn plain_bulk_inputs(d: &Path, count: u32) {
    std::fs::create_dir_all(d.join("req")).unwrap();
    let mut csv = String::from("request\n");
    for n in 0..count {
        std::fs::write(d.join(format!("req/{n}.req")), box_request(n)).unwrap();
        csv.push_str(&format!("req/{n}.req\n"));
    }
    std::fs::write(d.join("plain.csv"), csv).unwrap();
}

fn bulk_plain(d: &Path, order: &str) -> Output {
    run(
        d,
        &[
            "issue",
            "--bulk",
            "plain.csv",
            "--order",
            order,
            "-o",
            "out",
        ],
    )
}

/// `more.toml`: the order with one user more (a change with an increase
/// charge).
fn more_users(d: &Path) {
    let order = std::fs::read_to_string(d.join("order.toml")).unwrap();
    let more = order.replace("PBX-BASIC = 20", "PBX-BASIC = 21");
    assert_ne!(more, order);
    std::fs::write(d.join("more.toml"), more).unwrap();
}

/// A bulk run that refused rows (exit 6), saying each of `says`.
fn refused_rows(out: &Output, says: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    for s in says {
        assert!(err.contains(s), "{s}: {err}");
    }
}

/// `tessera issue --order ORDER --request req/0.req -o OUT`.
fn issue_request(d: &Path, order: &str, out: &str) -> Output {
    run(
        d,
        &[
            "issue",
            "--order",
            order,
            "--request",
            "req/0.req",
            "-o",
            out,
        ],
    )
}

fn refused_as_answered(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains("this request was answered before: SW-2026-000001 sequence 1"),
        "{what}: {err}"
    );
}

/// A request a bulk row answered is answered once, as if a single command
/// had answered it: no renewal, no change and no second first license
/// from it (nothing recorded, no file written), not even after a void;
/// only the same first license again, byte for byte, to `issue` with the
/// row's order while it is the latest.
#[test]
fn a_request_answered_by_a_bulk_row_is_answered_once() {
    bulk_request_answered_once(&workdir());
}

#[test]
fn a_request_answered_by_a_bulk_row_is_answered_once_on_postgres() {
    on_postgres(bulk_request_answered_once);
}

fn bulk_request_answered_once(dir: &tempfile::TempDir) {
    let d = dir.path();
    plain_bulk_inputs(d, 2);
    more_users(d);
    ok(&bulk_plain(d, "order.toml"));
    assert_eq!(ledger_json(d).len(), 2);

    let out = issue_request(d, "more.toml", "x.lic");
    refused_as_answered(&out, "issue with another order");
    let out = run(d, &["renew", "--request", "req/0.req", "-o", "x.lic"]);
    refused_as_answered(&out, "renew");
    let out = run(
        d,
        &[
            "modify",
            "--serial",
            "SW-2026-000001",
            "--order",
            "more.toml",
            "--request",
            "req/0.req",
            "-o",
            "x.lic",
        ],
    );
    refused_as_answered(&out, "modify");
    assert!(!d.join("x.lic").exists());
    assert_eq!(ledger_json(d).len(), 2);

    // The partner lost the file: the same order gives the same license.
    let out = issue_request(d, "order.toml", "again.lic");
    ok(&out);
    assert_eq!(
        std::fs::read(d.join("again.lic")).unwrap(),
        std::fs::read(d.join("out/SW-2026-000001-1.lic")).unwrap()
    );
    assert_eq!(ledger_json(d).len(), 2);

    // After a void, the request activates nothing again.
    ok(&run(
        d,
        &[
            "void",
            "--license",
            "SW-2026-000001:1",
            "--reason",
            "wrong order",
        ],
    ));
    let out = issue_request(d, "order.toml", "x.lic");
    refused_as_answered(&out, "issue after a void");
    assert!(String::from_utf8_lossy(&out.stderr).contains("and the PBX has sequence 2 since"));
    assert!(!d.join("x.lic").exists());
    assert_eq!(ledger_json(d).len(), 3);
}

/// A bulk row whose request a single command answered: refused when that
/// answer was another (another order); the same first license again when
/// it was this row's, with its file written.
#[test]
fn a_bulk_row_whose_request_a_command_answered_is_answered_once() {
    bulk_row_answered_before(&workdir());
}

#[test]
fn a_bulk_row_whose_request_a_command_answered_is_answered_once_on_postgres() {
    on_postgres(bulk_row_answered_before);
}

fn bulk_row_answered_before(dir: &tempfile::TempDir) {
    let d = dir.path();
    plain_bulk_inputs(d, 2);
    more_users(d);
    ok(&issue_request(d, "more.toml", "single.lic"));
    refused_rows(
        &bulk_plain(d, "order.toml"),
        &[
            "plain.csv:2: refused: this request was answered before: SW-2026-000001 sequence 1 (issue)",
            "2 row(s): 1 issued, 0 already issued (skipped), 1 refused",
        ],
    );
    assert!(!d.join("out/SW-2026-000001-1.lic").exists());
    // With the order the command used, the row is that same license (the
    // other row's request was answered with the other order).
    refused_rows(
        &bulk_plain(d, "more.toml"),
        &["2 row(s): 0 issued, 1 already issued (skipped), 1 refused"],
    );
    assert_eq!(
        std::fs::read(d.join("out/SW-2026-000001-1.lic")).unwrap(),
        std::fs::read(d.join("single.lic")).unwrap()
    );
    assert_eq!(ledger_json(d).len(), 2);
}
