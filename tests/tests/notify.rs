//! The overdue notice by e-mail (`tessera report overdue --notify`) as a
//! vendor's daily timer runs it, against an SMTP sink the test starts on
//! a free loopback port: the mail arrives with the right row, a second
//! run (a new process: a restart) the same day sends nothing, the next
//! day sends again, an unreachable server is a clear error that records
//! nothing, and a refused recipient does not stop the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, OrderSpec, Site, Vendor};
use tessera_tests::smtp::Sink;

const OPS: &str = "ops@vendor.example";
const SALES: &str = "sales@vendor.example";
const NOC: &str = "noc@vendor.example";

/// `[notify]` in the vendor folder's tessera.toml: the sink, two
/// recipients.
fn configure(vendor: &Vendor, port: u16) {
    vendor.write(
        "tessera.toml",
        &format!(
            "[notify]\nsmtp = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"tessera@vendor.example\"\nto = [\"{OPS}\", \"{SALES}\"]\ndays = 3\n"
        ),
    );
}

/// `report overdue --notify --json ARGS`, on the clock's time (the only
/// time --notify runs on).
fn notify(vendor: &Vendor, extra: &[&str]) -> common::Run {
    let mut args = vec!["report", "overdue", "--notify", "--json"];
    args.extend(extra);
    vendor.tessera(&args)
}

/// Today (UTC) as the notice names it; waits out the last two minutes of
/// a day so that every run of a test sees one day.
fn today() -> String {
    let now = chrono::Utc::now();
    let left = 86_400 - i64::from(chrono::Timelike::num_seconds_from_midnight(&now));
    if left < 120 {
        std::thread::sleep(core::time::Duration::from_secs(
            u64::try_from(left).unwrap() + 1,
        ));
    }
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// A vendor with one appliance activated 44 days ago (its lease long run
/// out: overdue), the sink and `[notify]`.
fn overdue_vendor() -> (Vendor, Sink, String) {
    let day = today();
    let vendor = Vendor::new();
    let site = Site::appliance("HW-A1A1-0007", 7);
    let start = chrono::Utc::now() - chrono::Duration::days(44);
    let term_start = start.format("%Y-%m-%d").to_string();
    let order = OrderSpec {
        term_start: &term_start,
        ..OrderSpec::default()
    }
    .write(&vendor, "order.toml");
    let sink = Sink::start();
    configure(&vendor, sink.port());
    // Before anything is licensed: nothing overdue, no mail, no connection.
    let quiet = notify(&vendor, &[]).ok().json();
    assert_eq!(quiet["overdue"].as_array().unwrap().len(), 0, "{quiet}");
    assert!(sink.mails().is_empty());
    activate(
        &vendor,
        &site,
        &order,
        &start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "activation.lic",
    );
    (vendor, sink, day)
}

#[test]
fn the_overdue_mail_arrives_once_a_day_per_recipient() {
    let (vendor, sink, day) = overdue_vendor();

    // `tessera config` shows where each setting comes from.
    vendor
        .tessera(&["config"])
        .ok()
        .says("notify.smtp         127.0.0.1  (from tessera.toml)")
        .says("notify.to           ops@vendor.example, sales@vendor.example");

    let first = notify(&vendor, &[]).ok().json();
    assert_eq!(first["day"], day);
    assert_eq!(first["sent"], serde_json::json!([OPS, SALES]), "{first}");
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    for (mail, to) in mails.iter().zip([OPS, SALES]) {
        assert_eq!(mail.to, [to]);
        let body = mail.data.replace("=\r\n", "");
        let row = body
            .lines()
            .find(|l| l.contains("SW-2026-000001"))
            .unwrap_or_else(|| panic!("no row in {body}"));
        assert!(row.trim_start().starts_with("44 "), "{row}");
        assert!(row.contains("TA-7000"), "{row}");
        assert!(row.contains("Example Dental Clinic"), "{row}");
    }

    // Rerun the same day (each run is a new process: a restart changes
    // nothing): nothing sent. (The next day's notice is the library's
    // test `notify::tests::one_mail_per_recipient_per_day`: the CLI runs
    // on the clock's day only.)
    for _ in 0..2 {
        let again = notify(&vendor, &[]).ok().json();
        assert_eq!(again["sent"], serde_json::json!([]), "{again}");
        assert_eq!(again["already_sent"], serde_json::json!([OPS, SALES]));
        assert_eq!(sink.mails().len(), 2);
    }
    vendor.tessera(&["ledger", "verify"]).ok();

    // An unreachable server: exit 8, the server named, nothing recorded
    // (the notice then goes out once the server is back).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port = closed.to_string();
    let down = notify(&vendor, &["--to", NOC, "--smtp-port", &port]).code(8);
    assert!(
        down.stderr
            .contains(&format!("SMTP server 127.0.0.1:{closed}"))
            && down.stderr.contains("nothing was sent or recorded"),
        "{}",
        down.stderr
    );
    let back = notify(&vendor, &["--to", NOC]).ok().json();
    assert_eq!(back["sent"], serde_json::json!([NOC]));
    assert_eq!(sink.mails().len(), 3);

    // One recipient of two refused: the other gets it, exit 8 names the
    // refused one, and the next run retries it only.
    let (billing, desk) = ("billing@vendor.example", "desk@vendor.example");
    sink.refuse(desk);
    let half = notify(&vendor, &["--to", billing, "--to", desk]).code(8);
    let json = half.json();
    assert_eq!(json["sent"], serde_json::json!([billing]));
    assert_eq!(json["failed"][0]["recipient"], desk);
    assert_eq!(json["failed"][0]["retried_next_run"], true);
    assert!(
        half.stderr.contains("did not reach 1 of 2"),
        "{}",
        half.stderr
    );
    let retry = notify(&vendor, &["--to", billing, "--to", desk])
        .code(8)
        .json();
    assert_eq!(retry["already_sent"], serde_json::json!([billing]));
    assert_eq!(retry["failed"][0]["recipient"], desk);
    assert_eq!(sink.mails().len(), 4);
    vendor.tessera(&["ledger", "verify"]).ok();
}

/// `--notify` with a rehearsal time would claim that day's notice in the
/// live ledger (a later day's claim silences the real notice of that
/// day): refused, naming both flags and the rehearsal that works, with
/// nothing sent or recorded; the rehearsal itself lists the PBXs.
#[test]
fn a_rehearsal_time_never_sends_or_records_a_notice() {
    let (vendor, sink, _) = overdue_vendor();
    let head = vendor.tessera(&["ledger", "head"]).ok().stdout;
    let later = (chrono::Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%dT07:00:00Z")
        .to_string();
    let earlier = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%dT07:00:00Z")
        .to_string();
    for now in [&later, &earlier] {
        let refused = notify(&vendor, &["--now", now]).code(1);
        for says in [
            "--notify",
            "--now",
            "report overdue --now TIME` without --notify",
            "copy of the ledger",
        ] {
            assert!(refused.stderr.contains(says), "{says}: {}", refused.stderr);
        }
        let env = vendor
            .tessera_env(
                &[("TESSERA_NOW", std::ffi::OsStr::new(now))],
                &["report", "overdue", "--notify"],
            )
            .code(1);
        assert!(env.stderr.contains("TESSERA_NOW"), "{}", env.stderr);
    }
    assert!(sink.mails().is_empty());
    assert_eq!(vendor.tessera(&["ledger", "head"]).ok().stdout, head);
    // The rehearsal: the list the notice would carry that day.
    let list = vendor
        .tessera(&["report", "overdue", "--json", "--now", &later])
        .ok()
        .json();
    assert_eq!(list["overdue"][0]["serial"], "SW-2026-000001", "{list}");
    // Today's real notice is still due, to both.
    let real = notify(&vendor, &[]).ok().json();
    assert_eq!(real["sent"], serde_json::json!([OPS, SALES]), "{real}");
}

/// `--days N` counts the days past the lease end (the grace used), not
/// the days since the last renewal: the appliance renewed 44 days ago, its
/// 30-day lease ended 14 days ago, so it is in the notice with 14 and not
/// with 15, while the rows still say 44 days since the renewal.
#[test]
fn the_threshold_counts_the_days_past_the_lease_end() {
    let (vendor, sink, _) = overdue_vendor();
    let head = vendor.tessera(&["ledger", "head"]).ok().stdout;
    let none = notify(&vendor, &["--days", "15"]).ok().json();
    assert_eq!(none["overdue"].as_array().unwrap().len(), 0, "{none}");
    assert!(sink.mails().is_empty());
    assert_eq!(vendor.tessera(&["ledger", "head"]).ok().stdout, head);
    let listed = |days: &str| {
        vendor
            .tessera(&["report", "overdue", "--json", "--days", days])
            .ok()
            .json()["overdue"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(listed("15"), 0);
    assert_eq!(listed("14"), 1);
    let sent = notify(&vendor, &["--days", "14"]).ok().json();
    assert_eq!(sent["overdue"][0]["days_since_renewal"], 44, "{sent}");
    assert_eq!(sent["sent"], serde_json::json!([OPS, SALES]), "{sent}");
}

#[test]
fn the_password_is_never_an_argument_and_plain_smtp_stays_local() {
    let vendor = Vendor::new();
    vendor
        .tessera(&["report", "overdue", "--notify", "--smtp-password", "x"])
        .code(1)
        .says("--smtp-password");
    vendor
        .tessera(&[
            "report",
            "overdue",
            "--notify",
            "--smtp",
            "mail.vendor.example",
            "--smtp-tls",
            "none",
            "--from",
            "tessera@vendor.example",
            "--to",
            OPS,
        ])
        .code(1)
        .says("insecure_plaintext");
    vendor
        .tessera(&["report", "overdue", "--smtp", "127.0.0.1"])
        .code(1)
        .says("--notify");
}
