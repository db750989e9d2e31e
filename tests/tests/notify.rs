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

const T0: &str = "2026-01-02T09:00:00Z";
const OPS: &str = "ops@vendor.example";
const SALES: &str = "sales@vendor.example";

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

fn notify(vendor: &Vendor, now: &str, extra: &[&str]) -> common::Run {
    let mut args = vec!["report", "overdue", "--notify", "--json"];
    args.extend(extra);
    vendor.at(now, &args)
}

#[test]
fn the_overdue_mail_arrives_once_a_day_per_recipient() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-A1A1-0007", 7);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    let sink = Sink::start();
    configure(&vendor, sink.port());

    // `tessera config` shows where each setting comes from.
    vendor
        .tessera(&["config"])
        .ok()
        .says("notify.smtp         127.0.0.1  (from tessera.toml)")
        .says("notify.to           ops@vendor.example, sales@vendor.example");

    // Before the lease ran out: nothing overdue, no mail, no connection.
    let quiet = notify(&vendor, "2026-01-20T06:00:00Z", &[]).ok().json();
    assert_eq!(quiet["overdue"].as_array().unwrap().len(), 0, "{quiet}");
    assert!(sink.mails().is_empty());

    let first = notify(&vendor, "2026-02-16T06:00:00Z", &[]).ok().json();
    assert_eq!(first["day"], "2026-02-16");
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
    // nothing): nothing sent.
    for now in ["2026-02-16T06:05:00Z", "2026-02-16T23:59:59Z"] {
        let again = notify(&vendor, now, &[]).ok().json();
        assert_eq!(again["sent"], serde_json::json!([]), "{again}");
        assert_eq!(again["already_sent"], serde_json::json!([OPS, SALES]));
        assert_eq!(sink.mails().len(), 2);
    }
    vendor.tessera(&["ledger", "verify"]).ok();

    // The next day: again, one day later.
    let next = notify(&vendor, "2026-02-17T06:00:00Z", &[]).ok().json();
    assert_eq!(next["sent"], serde_json::json!([OPS, SALES]));
    assert_eq!(next["overdue"][0]["days_since_renewal"], 45);
    assert_eq!(sink.mails().len(), 4);

    // An unreachable server: exit 8, the server named, nothing recorded
    // (the same day then goes out once the server is back).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port = closed.to_string();
    let down = notify(&vendor, "2026-02-18T06:00:00Z", &["--smtp-port", &port]).code(8);
    assert!(
        down.stderr
            .contains(&format!("SMTP server 127.0.0.1:{closed}"))
            && down.stderr.contains("nothing was sent or recorded"),
        "{}",
        down.stderr
    );
    let back = notify(&vendor, "2026-02-18T06:10:00Z", &[]).ok().json();
    assert_eq!(back["sent"], serde_json::json!([OPS, SALES]));
    assert_eq!(sink.mails().len(), 6);

    // One recipient of two refused: the other gets it, exit 8 names the
    // refused one, and the next run retries it only.
    sink.refuse(SALES);
    let half = notify(&vendor, "2026-02-19T06:00:00Z", &[]).code(8);
    let json = half.json();
    assert_eq!(json["sent"], serde_json::json!([OPS]));
    assert_eq!(json["failed"][0]["recipient"], SALES);
    assert_eq!(json["failed"][0]["retried_next_run"], true);
    assert!(
        half.stderr.contains("did not reach 1 of 2"),
        "{}",
        half.stderr
    );
    let retry = notify(&vendor, "2026-02-19T07:00:00Z", &[]).code(8).json();
    assert_eq!(retry["already_sent"], serde_json::json!([OPS]));
    assert_eq!(retry["failed"][0]["recipient"], SALES);
    assert_eq!(sink.mails().len(), 7);
    vendor.tessera(&["ledger", "verify"]).ok();
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
