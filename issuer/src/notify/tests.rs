use std::path::PathBuf;

use tessera_keys::Signer as _;
use tessera_signer::FileSigner;
use tessera_tests::smtp::Sink;
use tessera_verifier::encode::sign_license;
use tessera_verifier::{samples, KeyEntry};

use super::*;
use crate::calendar::DAY;
use crate::ledger::{Action, NewRecord};

const VENDOR: &str = "tessera-vendor";
const SERIAL: &str = "SW-2026-000123";

/// A ledger (a file, or a database of a PostgreSQL server the test
/// started) holding one PBX whose daily lease ran out at `T0 + DAY`.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    signer: FileSigner,
    _server: Option<tessera_tests::postgres::PgServer>,
}

impl Fixture {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        Self::with(dir, path, None)
    }

    fn postgres() -> Option<Self> {
        let server = tessera_tests::postgres::PgServer::start()?;
        let url = PathBuf::from(server.create_database());
        Some(Self::with(tempfile::tempdir().unwrap(), url, Some(server)))
    }

    fn with(
        dir: tempfile::TempDir,
        path: PathBuf,
        server: Option<tessera_tests::postgres::PgServer>,
    ) -> Self {
        Self::with_lease(dir, path, server, samples::T0 + DAY)
    }

    /// A ledger whose one PBX's lease (issued at `T0`) ends at `lease_end`.
    fn with_lease(
        dir: tempfile::TempDir,
        path: PathBuf,
        server: Option<tessera_tests::postgres::PgServer>,
        lease_end: i64,
    ) -> Self {
        let f = Self {
            _dir: dir,
            path,
            signer: FileSigner::generate().unwrap(),
            _server: server,
        };
        let mut ledger = Ledger::create(&f.path, VENDOR, &f.signer, "alice", samples::T0).unwrap();
        let mut l = samples::typical();
        l.serial = SERIAL.into();
        l.sequence = 1;
        l.lease_end = lease_end;
        l.customer = "Acme Hotels".into();
        l.pbx_name = "front desk".into();
        let bytes = sign_license(
            &l,
            &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
            samples::seed_signer(samples::TEST_KEY_1_SEED),
        )
        .unwrap();
        let mut w = ledger.writer(&f.signer, "alice").unwrap();
        w.append(NewRecord {
            action: Action::Issue,
            bytes,
            order_json: "{}".into(),
            issued_at: l.issued_at,
            idem_key: None,
            request_key: None,
        })
        .unwrap();
        w.commit().unwrap();
        f
    }

    fn open(&self) -> Ledger {
        Ledger::open(&self.path).unwrap()
    }

    fn head(&self) -> u64 {
        Ledger::open_read_only(&self.path)
            .unwrap()
            .head()
            .unwrap()
            .0
    }

    fn verify(&self) -> Result<crate::ledger::VerifyReport, crate::ledger::LedgerError> {
        let keyring = vec![
            KeyEntry::new(self.signer.public_key(), 0),
            KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0),
        ];
        Ledger::open_read_only(&self.path)?.verify(&keyring, None)
    }

    fn run(&self, at: i64, mail: &MailSettings) -> Result<NoticeReport, Error> {
        notify(&mut self.open(), &self.signer, "cron", at, 3, mail)
    }
}

fn mail(port: u16, to: &[&str]) -> MailSettings {
    MailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        insecure_plaintext: false,
        ca_pem: None,
        from: "tessera@vendor.example".into(),
        to: to.iter().map(|t| (*t).to_owned()).collect(),
        username: None,
        password: None,
        timeout: Duration::from_secs(10),
    }
}

/// Four days after the lease ran out: 4 whole days since the renewal.
const LATE: i64 = samples::T0 + 4 * DAY + 3600;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&super::Fixture::sqlite());
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
    one_mail_per_recipient_per_day,
    nothing_overdue_sends_nothing,
    an_unreachable_server_records_nothing,
    a_refused_recipient_is_retried_the_other_is_not,
    two_runs_at_once_send_once,
    a_run_waits_for_the_sends_of_a_run_at_the_same_time,
    the_fold_refuses_a_second_notice,
);

fn one_mail_per_recipient_per_day(f: &Fixture) {
    let sink = Sink::start();
    let m = mail(sink.port(), &["ops@vendor.example", "sales@vendor.example"]);
    let r = f.run(LATE, &m).unwrap();
    assert_eq!(r.day, "2026-01-05");
    assert_eq!(r.overdue.len(), 1);
    assert_eq!(r.overdue[0].days_since_renewal, 4);
    assert!(r
        .deliveries
        .iter()
        .all(|d| matches!(d, Delivery::Sent { .. })));
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    for (mail, to) in mails
        .iter()
        .zip(["ops@vendor.example", "sales@vendor.example"])
    {
        assert_eq!(mail.to, vec![to.to_owned()]);
        assert_eq!(mail.from, "tessera@vendor.example");
        assert!(mail
            .data
            .contains("Subject: tessera: 1 PBX(s) overdue for renewal on 2026-01-05"));
        // The body is quoted-printable: soft line breaks joined.
        let data = mail.data.replace("=\r\n", "");
        let row = data
            .lines()
            .find(|l| l.contains(SERIAL))
            .unwrap_or_else(|| panic!("no row for {SERIAL} in {}", mail.data));
        assert!(row.contains("Acme Hotels / front desk"), "{row}");
        assert!(row.trim_start().starts_with("4 "), "{row}");
    }
    // The same day again, and after a "restart" (a new process: the
    // ledger opened afresh): nothing more.
    let head = f.head();
    for _ in 0..2 {
        let again = f.run(LATE + 3 * 3600, &m).unwrap();
        assert!(again
            .deliveries
            .iter()
            .all(|d| matches!(d, Delivery::AlreadySent { .. })));
        assert_eq!(sink.mails().len(), 2);
        assert_eq!(f.head(), head, "a run that sends nothing records nothing");
    }
    // The same recipients spelled in other case are the same recipients.
    let shouted = mail(sink.port(), &["OPS@Vendor.Example", "Sales@VENDOR.example"]);
    let again = f.run(LATE + 4 * 3600, &shouted).unwrap();
    assert!(
        again
            .deliveries
            .iter()
            .all(|d| matches!(d, Delivery::AlreadySent { .. })),
        "{:?}",
        again.deliveries
    );
    assert_eq!(sink.mails().len(), 2);
    // The next day: sent again, the PBX one day later.
    let next = f.run(LATE + DAY, &m).unwrap();
    assert_eq!(next.day, "2026-01-06");
    assert_eq!(next.overdue[0].days_since_renewal, 5);
    assert_eq!(sink.mails().len(), 4);
    f.verify().unwrap();
}

fn nothing_overdue_sends_nothing(f: &Fixture) {
    let sink = Sink::start();
    let head = f.head();
    // The lease has not run out yet; then it has, but only for 2 days.
    for at in [samples::T0 + 3600, samples::T0 + 2 * DAY + 60] {
        let r = f
            .run(at, &mail(sink.port(), &["ops@vendor.example"]))
            .unwrap();
        assert!(r.overdue.is_empty());
        assert!(r.deliveries.is_empty());
    }
    assert!(sink.mails().is_empty());
    assert_eq!(f.head(), head);
}

/// The threshold counts the days past the lease end (days of grace used),
/// not the days since the renewal: with a 30-day lease those are never
/// below 30 once the lease ran out, so a threshold of 3 would select every
/// PBX the day its lease ends.
#[test]
fn the_threshold_counts_from_the_lease_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let lease_end = samples::T0 + 30 * DAY;
    let f = Fixture::with_lease(dir, path, None, lease_end);
    let ledger = f.open();
    // The lease not yet over, then over for 1 and 2 days (and a second
    // short of 3): not in the notice with 3.
    for at in [
        lease_end - 1,
        lease_end,
        lease_end + DAY,
        lease_end + 3 * DAY - 1,
    ] {
        assert!(overdue(&ledger, at, 3).unwrap().is_empty(), "at {at}");
    }
    // Three days past the lease end: listed, with the days since the
    // renewal (33), not the days past the lease end.
    let rows = overdue(&ledger, lease_end + 3 * DAY, 3).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].days_since_renewal, 33);
    assert_eq!(rows[0].last_renewal, samples::T0);
    // 0: every PBX whose lease ran out.
    assert_eq!(overdue(&ledger, lease_end, 0).unwrap().len(), 1);
    assert!(overdue(&ledger, lease_end - 1, 0).unwrap().is_empty());
    // A lease end near the end of time with the largest threshold does
    // not overflow.
    assert!(!is_overdue(i64::MAX - 1, i64::MAX - 1, u32::MAX));
    assert!(is_overdue(i64::MIN, i64::MAX, u32::MAX));
}

fn an_unreachable_server_records_nothing(f: &Fixture) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let head = f.head();
    let e = f
        .run(LATE, &mail(port, &["ops@vendor.example"]))
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Mail { .. }), "{e:?}");
    assert_eq!(e.exit_code(), crate::error::EXIT_MAIL);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("check the host, the port"), "{text}");
    assert_eq!(f.head(), head);
    // Once the server is there, the notice goes out.
    let sink = Sink::start();
    f.run(LATE, &mail(sink.port(), &["ops@vendor.example"]))
        .unwrap();
    assert_eq!(sink.mails().len(), 1);
}

fn a_refused_recipient_is_retried_the_other_is_not(f: &Fixture) {
    let sink = Sink::start();
    sink.refuse("gone@vendor.example");
    let m = mail(sink.port(), &["ops@vendor.example", "gone@vendor.example"]);
    let r = f.run(LATE, &m).unwrap();
    assert_eq!(
        r.deliveries[0],
        Delivery::Sent {
            recipient: "ops@vendor.example".into()
        }
    );
    let Delivery::Failed { error, .. } = &r.deliveries[1] else {
        panic!("{:?}", r.deliveries[1]);
    };
    assert!(
        error.contains(&format!("127.0.0.1:{}", sink.port())),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
    let ledger = f.open();
    assert!(ledger
        .queries()
        .notice_in_effect("ops@vendor.example", "2026-01-05")
        .unwrap());
    assert!(!ledger
        .queries()
        .notice_in_effect("gone@vendor.example", "2026-01-05")
        .unwrap());
    drop(ledger);
    // The rerun tries the refused one again, not the other.
    let again = f.run(LATE + 60, &m).unwrap();
    assert!(matches!(again.deliveries[0], Delivery::AlreadySent { .. }));
    assert!(matches!(again.deliveries[1], Delivery::Failed { .. }));
    assert_eq!(sink.mails().len(), 1);
    f.verify().unwrap();
}

fn two_runs_at_once_send_once(f: &Fixture) {
    let sink = Sink::start();
    let m = mail(sink.port(), &["ops@vendor.example", "sales@vendor.example"]);
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut ledger = f.open();
                barrier.wait();
                notify(&mut ledger, &f.signer, "cron", LATE, 3, &m).unwrap()
            });
        }
    });
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let mut to: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["ops@vendor.example", "sales@vendor.example"]);
    f.verify().unwrap();
}

/// A run that finds another run's claim while that run's mail is still
/// on its way waits for it: the first run's mail fails and its claim is
/// withdrawn, so the second sends (not `already_sent` for a mail that
/// never arrived).
fn a_run_waits_for_the_sends_of_a_run_at_the_same_time(f: &Fixture) {
    let sink = Sink::start();
    let ops = "ops@vendor.example";
    let m = mail(sink.port(), &[ops]);
    sink.stall(ops);
    std::thread::scope(|s| {
        let first = s.spawn(|| f.run(LATE, &m).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !sink.stalled() {
            assert!(
                std::time::Instant::now() < deadline,
                "the first run never sent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The first run has claimed and is sending: a second run now.
        let second = s.spawn(|| f.run(LATE + 60, &m).unwrap());
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            !second.is_finished(),
            "the second run did not wait for the first"
        );
        sink.release();
        let first = first.join().unwrap();
        assert!(
            matches!(&first.deliveries[..], [Delivery::Failed { recipient, .. }] if recipient == ops),
            "{:?}",
            first.deliveries
        );
        let second = second.join().unwrap();
        assert_eq!(
            second.deliveries,
            [Delivery::Sent {
                recipient: ops.into()
            }]
        );
    });
    assert_eq!(sink.mails().len(), 1);
    // A third run that day: the second's mail arrived.
    let third = f.run(LATE + 120, &m).unwrap();
    assert_eq!(
        third.deliveries,
        [Delivery::AlreadySent {
            recipient: ops.into()
        }]
    );
    f.verify().unwrap();
}

fn the_fold_refuses_a_second_notice(f: &Fixture) {
    let mut ledger = f.open();
    let claim = || Fact::NoticeSent {
        recipient: "ops@vendor.example".into(),
        day: "2026-01-05".into(),
        serials: vec![SERIAL.into()],
    };
    let mut w = ledger.writer(&f.signer, "cron").unwrap();
    w.push(LATE, claim()).unwrap();
    let e = w.push(LATE, claim()).unwrap_err();
    assert!(
        e.to_string().contains("one mail per recipient per day"),
        "{e}"
    );
    let withdraw = |recipient: &str| Fact::NoticeWithdrawn {
        recipient: recipient.into(),
        day: "2026-01-05".into(),
        reason: "550".into(),
    };
    w.push(LATE, withdraw("ops@vendor.example")).unwrap();
    // Withdrawn: claimable again; a withdrawal of nothing is refused.
    w.push(LATE, claim()).unwrap();
    assert!(w.push(LATE, withdraw("other@vendor.example")).is_err());
    for bad in [
        Fact::NoticeSent {
            recipient: "not an address".into(),
            day: "2026-01-05".into(),
            serials: vec![SERIAL.into()],
        },
        Fact::NoticeSent {
            recipient: "a@b.example".into(),
            day: "2026-13-40".into(),
            serials: vec![SERIAL.into()],
        },
        Fact::NoticeSent {
            recipient: "a@b.example".into(),
            day: "2026-01-05".into(),
            serials: vec!["../etc".into()],
        },
    ] {
        assert!(w.push(LATE, bad).is_err());
    }
    w.commit().unwrap();
    drop(ledger);
    f.verify().unwrap();
}

#[test]
fn settings_are_checked_before_any_connection() {
    let ok = mail(2525, &["ops@vendor.example"]);
    ok.check().unwrap();
    let remote_plain = MailSettings {
        host: "mail.vendor.example".into(),
        ..ok.clone()
    };
    let e = remote_plain.check().unwrap_err().to_string();
    assert!(e.contains("insecure_plaintext"), "{e}");
    MailSettings {
        insecure_plaintext: true,
        ..remote_plain.clone()
    }
    .check()
    .unwrap();
    for bad in [
        MailSettings {
            to: vec!["ops@vendor.example\r\nBcc: x@evil.example".into()],
            ..ok.clone()
        },
        MailSettings {
            to: vec!["a@b.example, c@d.example".into()],
            ..ok.clone()
        },
        MailSettings {
            to: vec![],
            ..ok.clone()
        },
        MailSettings {
            from: "nobody".into(),
            ..ok.clone()
        },
        MailSettings {
            host: "mail.example/../x".into(),
            ..ok.clone()
        },
        MailSettings {
            username: Some("u".into()),
            ..ok.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
    assert!(is_loopback("localhost") && is_loopback("::1") && is_loopback("127.0.0.2"));
    assert!(!is_loopback("mail.example.com"));
}

#[test]
fn settings_errors_quote_a_huge_value_as_a_prefix_and_its_length() {
    let ok = mail(2525, &["ops@vendor.example"]);
    let huge = "A".repeat(2 * 1024 * 1024);
    for bad in [
        MailSettings {
            host: huge.clone(),
            ..ok.clone()
        },
        MailSettings {
            from: huge.clone(),
            ..ok.clone()
        },
        MailSettings {
            to: vec![huge.clone()],
            ..ok.clone()
        },
    ] {
        let e = bad.check().unwrap_err().to_string();
        assert!(e.len() < 600, "{} bytes", e.len());
        assert!(
            e.contains(&format!("`{}... (2,097,152 bytes)`", "A".repeat(80))),
            "{e}"
        );
    }
}

#[test]
fn the_body_escapes_what_partners_typed() {
    let row = OverduePbx {
        serial: SERIAL.into(),
        customer: "Evil\u{1b}[2J Corp".into(),
        pbx_name: "x\u{202e}y".into(),
        model: "M".into(),
        days_since_renewal: 9,
        last_renewal: samples::T0,
        lease_end: samples::T0 + DAY,
    };
    let text = body("2026-01-05", 3, &[row]);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
}

#[test]
fn starttls_to_a_server_of_the_vendor_ca() {
    let f = Fixture::sqlite();
    let (sink, ca) = Sink::start_tls();
    let tls = MailSettings {
        tls: TlsMode::Starttls,
        ..mail(sink.port(), &["ops@vendor.example"])
    };
    // Without the CA the certificate is not trusted: a clear error, and
    // nothing recorded.
    let head = f.head();
    let e = f.run(LATE, &tls).unwrap_err().to_string();
    assert!(e.contains("TLS"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{}", sink.port())), "{e}");
    assert_eq!(f.head(), head);
    assert!(sink.mails().is_empty());
    let trusted = MailSettings {
        ca_pem: Some(ca.into_bytes()),
        ..tls
    };
    let r = f.run(LATE, &trusted).unwrap();
    assert!(matches!(r.deliveries[0], Delivery::Sent { .. }));
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the mail came over STARTTLS");
}
