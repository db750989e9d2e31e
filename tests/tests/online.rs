//! Online renewal: the real `tessera-agent` renewing with a real
//! `tessera-server` the test starts on loopback (TLS, a CA made by the
//! test, pinned in agent.toml), on the vendor's real ledger, with a clock
//! the scenario moves. A PBX renewing daily for 30 days; an appliance on
//! the 3-hourly policy locked 72 hours after the server went away and
//! restored by its next renewal; a replaced (RMA) box refused; a PBX
//! activated from a file moving to online renewal and back; a VM the
//! vendor added activating itself online, an appliance the vendor never
//! entered refused; refusals anyone can provoke sent for a PBX, which
//! leave its renewal budget to its own agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{activate, agent_exit, OrderSpec, Site, Vendor, PASSPHRASE};
use tessera_issuer::cli::{Global, KeyArgs};
use tessera_issuer::commands::Ctx;
use tessera_issuer::config::Config;
use tessera_server::testing::{make_pki, TestPki};
use tessera_server::{Clock, Limits, Rate, Running, Settings, TlsFiles};

const T0: &str = "2026-01-02T09:00:00Z";
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

fn unix(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp()
}

/// Unix seconds as RFC 3339 (what `tessera` and `tessera-agent` take).
fn at(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The license service of a vendor, in this process.
struct Service {
    rt: tokio::runtime::Runtime,
    running: Option<Running>,
    clock: Clock,
    pki: TestPki,
    catalog: Option<PathBuf>,
    ledger: PathBuf,
    key: PathBuf,
    keyring: PathBuf,
    passphrase: PathBuf,
    limits: Limits,
}

impl Service {
    fn new(vendor: &Vendor, catalog: Option<PathBuf>, now: i64) -> Self {
        let limits = Limits {
            per_serial: Rate::parse("off").unwrap(),
            ..Limits::default()
        };
        Self::with_limits(vendor, catalog, now, limits)
    }

    fn with_limits(vendor: &Vendor, catalog: Option<PathBuf>, now: i64, limits: Limits) -> Self {
        let pki = make_pki(vendor.dir()).unwrap();
        let passphrase = vendor.write("passphrase", PASSPHRASE);
        let mut s = Self {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            running: None,
            clock: Clock::manual(now),
            pki,
            catalog,
            ledger: vendor.path("ledger.db"),
            key: vendor.path("signing.pem"),
            keyring: vendor.path("keyring.toml"),
            passphrase,
            limits,
        };
        s.start(0);
        s
    }

    /// Starts (again) on `port` (0: any).
    fn start(&mut self, port: u16) {
        let global = Global {
            ledger: Some(self.ledger.clone()),
            catalog: self.catalog.clone(),
            operator: Some("tessera-server".into()),
            ..Global::default()
        };
        let settings = Settings {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            tls: Some(TlsFiles {
                cert: self.pki.cert.clone(),
                key: self.pki.key.clone(),
            }),
            insecure_http: false,
            metrics_listen: None,
            ctx: Ctx::with_config(global, Config::default().with_env(|_| None)).unwrap(),
            key: KeyArgs {
                key: vec![self.key.clone()],
                passphrase_file: Some(self.passphrase.clone()),
                keyring: Some(self.keyring.clone()),
                ..KeyArgs::default()
            },
            freshness: tessera_server::DEFAULT_FRESHNESS,
            limits: self.limits.clone(),
            clock: self.clock.clone(),
        };
        self.running = Some(self.rt.block_on(tessera_server::start(settings)).unwrap());
    }

    fn url(&self) -> String {
        self.running.as_ref().unwrap().url()
    }

    fn port(&self) -> u16 {
        self.running.as_ref().unwrap().addr().port()
    }

    fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            self.rt.block_on(r.wait());
        }
    }

    /// Points `site` at this service: URL, pinned CA, no retries (a test
    /// does not wait for backoff).
    fn configure(&self, site: &Site, extra: &str) {
        std::fs::copy(&self.pki.ca, site.state().join("vendor-ca.pem")).unwrap();
        site.config(&format!(
            "server = \"{}\"\nserver_ca = \"vendor-ca.pem\"\nserver_retries = 0\n{extra}",
            self.url()
        ));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Activates `site` at T0 by files, with the vendor's `catalog`; returns
/// the SW serial.
fn activate_with(vendor: &Vendor, site: &Site, catalog: &std::path::Path) -> String {
    site.trust(vendor);
    OrderSpec::default().write(vendor, "order.toml");
    let req = site.request(T0);
    let catalog = catalog.to_str().unwrap();
    let (run, lic) = vendor.answer(
        T0,
        &["--catalog", catalog, "issue", "--order", "order.toml"],
        &req,
        "first.lic",
    );
    let serial = run.ok().json()["serial"].as_str().unwrap().to_owned();
    site.install(&lic, T0).ok();
    serial
}

fn check_online(site: &Site, now: i64) -> common::Run {
    site.agent(&["check", "--online", "--json", "--now", &at(now)])
}

/// The daily HW policy with a 2-day lease renewed on its last day, so a
/// renewal is due every day.
fn daily_catalog(vendor: &Vendor) -> PathBuf {
    vendor.catalog_with(
        "online.toml",
        &[(
            "lease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"",
            "lease = \"2d\"\nmax_lease = \"366d\"\nrenewal_window = \"1d\"",
        )],
    )
}

#[test]
fn a_pbx_renews_daily_for_30_days_and_every_license_is_in_the_ledger() {
    let vendor = Vendor::new();
    let catalog = daily_catalog(&vendor);
    let site = Site::appliance("HW-0E0E-0001", 41);
    let serial = activate_with(&vendor, &site, &catalog);
    let t0 = unix(T0);
    let service = Service::new(&vendor, Some(catalog.clone()), t0);
    service.configure(&site, "");
    // Not due on the day of activation: no request leaves.
    let quiet = check_online(&site, t0 + HOUR).code(agent_exit::FULL).json();
    assert_eq!(quiet["renewal"]["outcome"], "not_due");
    assert_eq!(quiet["renewal"]["attempts"], 0);

    for day in 1..=30 {
        let now = t0 + day * DAY + 17;
        service.clock.set(now);
        let r = check_online(&site, now).code(agent_exit::FULL).json();
        assert_eq!(r["renewal"]["outcome"], "renewed", "day {day}: {r}");
        assert_eq!(r["license"]["sequence"], day + 1, "day {day}");
        assert_eq!(r["days_since_renewal"], 0);
    }
    let shown = vendor.ledger_show(&serial);
    let licenses = shown["licenses"].as_array().unwrap();
    assert_eq!(licenses.len(), 31, "{shown}");
    assert!(licenses[1..].iter().all(|l| l["action"] == "renew"));
    vendor.tessera(&["ledger", "verify"]).ok();
    assert_eq!(
        service
            .running
            .as_ref()
            .unwrap()
            .metrics()
            .count("renew", "ok"),
        30
    );
}

#[test]
fn an_appliance_on_the_3_hourly_policy_locks_72_hours_after_the_server_goes_away() {
    let vendor = Vendor::new();
    let catalog = vendor.catalog_with(
        "3h.toml",
        &[(
            "lease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"\ncheck_interval = \"1d\"\ngrace = \"14d\"\nafter_grace = \"emergency_only\"",
            "lease = \"6h\"\nmax_lease = \"366d\"\nrenewal_window = \"3h\"\ncheck_interval = \"3h\"\ngrace = \"72h\"\nafter_grace = \"locked\"",
        )],
    );
    let site = Site::appliance("HW-0E0E-0002", 42);
    activate_with(&vendor, &site, &catalog);
    let t0 = unix(T0);
    let mut service = Service::new(&vendor, Some(catalog), t0);
    service.configure(&site, "");

    // A day of 3-hourly checks, renewing whenever the renewal is due.
    let mut last = t0;
    for k in 1..=8 {
        let now = t0 + k * 3 * HOUR;
        service.clock.set(now);
        let r = check_online(&site, now).code(agent_exit::FULL).json();
        assert_eq!(r["renewal"]["outcome"], "renewed", "check {k}: {r}");
        last = now;
    }
    // The server goes away. The lease (6 h) runs out, grace (72 h) runs,
    // then the appliance is locked: exactly as offline.
    let port = service.port();
    service.stop();
    let r = check_online(&site, last + 3 * HOUR)
        .code(agent_exit::RENEWAL_DUE)
        .json();
    assert_eq!(r["renewal"]["outcome"], "unreachable");
    assert_eq!(r["renewal"]["code"], "server_unreachable");
    let r = check_online(&site, last + 6 * HOUR + 1)
        .code(agent_exit::GRACE)
        .json();
    assert_eq!(r["renewal"]["outcome"], "unreachable");
    check_online(&site, last + 6 * HOUR + 71 * HOUR).code(agent_exit::GRACE);
    let r = check_online(&site, last + 6 * HOUR + 72 * HOUR + 1)
        .code(agent_exit::LOCKED)
        .json();
    assert_eq!(r["mode"], "locked");
    // `renew` says the server is out of reach (exit 4) and keeps the license.
    site.agent(&["renew", "--now", &at(last + 80 * HOUR)])
        .code(4)
        .says("could not be reached");

    // The server is back: the next check renews and restores full service.
    let back = last + 90 * HOUR;
    service.clock.set(back);
    service.start(port);
    let r = check_online(&site, back).code(agent_exit::FULL).json();
    assert_eq!(r["renewal"]["outcome"], "renewed");
    assert_eq!(r["mode"], "full");
    vendor.tessera(&["ledger", "verify"]).ok();
}

#[test]
fn a_replaced_box_is_refused_by_the_server_and_the_new_one_renews() {
    let vendor = Vendor::new();
    let old = Site::appliance("HW-0E0E-0003", 43);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let (summary, _) = activate(&vendor, &old, &order, T0, "old.lic");
    let serial = summary["serial"].as_str().unwrap().to_owned();
    let t0 = unix(T0);
    let service = Service::new(&vendor, None, t0);
    service.configure(&old, "");

    // RMA: a new box takes the serial over.
    let new = Site::appliance("HW-0E0E-0004", 44);
    new.trust(&vendor);
    let now = t0 + 10 * DAY;
    let req = new.request(&at(now));
    let (run, lic) = vendor.answer(
        &at(now),
        &["replace", "--serial", &serial, "--reason", "rma"],
        &req,
        "new.lic",
    );
    run.ok();
    new.install(&lic, &at(now)).ok();
    service.configure(&new, "");

    service.clock.set(now + HOUR);
    let refused = old
        .agent(&["renew", "--json", "--now", &at(now + HOUR)])
        .code(2)
        .json();
    assert_eq!(refused["renewal"]["outcome"], "refused");
    assert_eq!(refused["renewal"]["problem"], "replaced");
    // The old box keeps what it has (its lease, then grace) and no more.
    assert_eq!(refused["license"]["sequence"], 1);
    let renewed = new
        .agent(&["renew", "--json", "--now", &at(now + HOUR)])
        .ok()
        .json();
    assert_eq!(renewed["renewal"]["outcome"], "renewed");
    assert_eq!(renewed["license"]["sequence"], 3);
}

#[test]
fn a_pbx_activated_from_a_file_moves_to_online_renewal_and_back() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-0E0E-0005", 45);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "first.lic");
    let t0 = unix(T0);
    let service = Service::new(&vendor, None, t0);
    // No server configured: `check --online` says what to set; plain
    // `check` never needs one.
    site.agent(&["check", "--online", "--now", &at(t0 + HOUR)])
        .code(2)
        .says("server = \"https://");
    // Online, by the command line alone, with the pinned CA (no retries:
    // the test does not wait for backoff).
    site.config("server_retries = 0\n");
    let ca = site.state().join("ca.pem");
    std::fs::copy(&service.pki.ca, &ca).unwrap();
    service.clock.set(t0 + 2 * HOUR);
    let ca_arg = ca.to_str().unwrap().to_owned();
    let online = site
        .agent(&[
            "renew",
            "--server",
            &service.url(),
            "--server-ca",
            &ca_arg,
            "--json",
            "--now",
            &at(t0 + 2 * HOUR),
        ])
        .ok()
        .json();
    assert_eq!(online["license"]["sequence"], 2);
    // A server certificate the pin does not cover is a setting to fix:
    // refused at once (exit 2, `server_untrusted`), not retried as an
    // unreachable server.
    let other = tempfile::tempdir().unwrap();
    let other_ca = make_pki(other.path()).unwrap().ca;
    let wrong = site
        .agent(&[
            "renew",
            "--server",
            &service.url(),
            "--server-ca",
            other_ca.to_str().unwrap(),
            "--now",
            &at(t0 + 2 * HOUR),
        ])
        .code(2);
    for part in [
        "does not chain to the CA in",
        "(`server_ca`)",
        "the license in force stays",
    ] {
        assert!(wrong.stderr.contains(part), "{part}: {}", wrong.stderr);
    }
    assert!(
        !wrong.stderr.contains("could not be reached"),
        "{}",
        wrong.stderr
    );
    // And back to files: a request file answered by `tessera renew`.
    let now = t0 + 3 * DAY;
    let req = site.request(&at(now));
    let (run, lic) = vendor.answer(&at(now), &["renew"], &req, "by-file.lic");
    assert_eq!(run.ok().json()["sequence"], 3);
    site.install(&lic, &at(now)).ok();

    // One request, one answer, whoever answers it. The service refuses the
    // request the CLI answered: a replay.
    service.clock.set(now);
    let http = tessera_server::testing::client(&service.pki).unwrap();
    let post = |request: &std::path::Path| {
        let mut r = http
            .post(format!("{}/v1/renew", service.url()))
            .header("content-type", "text/plain")
            .send(&std::fs::read(request).unwrap()[..])
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
    };
    let (status, body) = post(&req);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("replay"), "{text}");
    // The CLI gives a request the service answered that same license back
    // (the partner lost the file), byte for byte, while it is the latest...
    let online_req = site.request(&at(now + HOUR));
    service.clock.set(now + HOUR);
    let (status, online) = post(&online_req);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&online));
    let (run, again) = vendor.answer(&at(now + 2 * HOUR), &["renew"], &online_req, "again.lic");
    let answer = run.ok().json();
    assert_eq!(answer["answered_before"], true, "{answer}");
    assert_eq!(answer["sequence"], 4, "{answer}");
    let text = std::fs::read_to_string(&again).unwrap();
    let mut buf = vec![0u8; tessera_verifier::MAX_OBJECT_LEN];
    let bytes =
        tessera_verifier::armor::decode(&text, tessera_verifier::armor::LABEL_LICENSE, &mut buf)
            .unwrap();
    assert_eq!(bytes, &online[..]);
    // ... and refuses it once a later license superseded it.
    let next = site.request(&at(now + 3 * HOUR));
    let (run, _) = vendor.answer(&at(now + 3 * HOUR), &["renew"], &next, "next.lic");
    assert_eq!(run.ok().json()["sequence"], 5);
    let (run, stale) = vendor.answer(&at(now + 4 * HOUR), &["renew"], &online_req, "stale.lic");
    run.code(2).says("has sequence 5 since");
    assert!(!stale.exists());
}

#[test]
fn a_vm_the_vendor_added_activates_itself_and_an_unknown_appliance_is_refused() {
    let vendor = Vendor::new();
    let serial = vendor.add_pbx(T0, "vm", "yearly", "Online Dental");
    let t0 = unix(T0);
    let service = Service::new(&vendor, None, t0 + HOUR);
    let site = Site::vm(&serial, 7);
    site.trust(&vendor);
    // A new device: the pinned CA where the firmware ships it, outside the
    // state folder (which holds only the agent's own files until then).
    let ca = site.dir().join("vendor-ca.pem");
    std::fs::copy(&service.pki.ca, &ca).unwrap();
    let pin = |site: &Site, extra: &str| {
        site.config(&format!(
            "server = \"{}\"\nserver_ca = \"{}\"\nserver_retries = 0\n{extra}",
            service.url(),
            ca.display()
        ));
    };
    // The vendor opens online activation: the lines the site pastes.
    let lines = vendor.at(T0, &["pbx", "activation", &serial]).ok().stdout;
    let mut toml = lines.lines();
    assert_eq!(
        toml.next(),
        Some(format!("sw_serial = \"{serial}\"").as_str()),
        "{lines}"
    );
    let code_line = toml.next().unwrap_or_default().to_owned();
    assert!(code_line.starts_with("activation_code = \""), "{lines}");
    let code = code_line
        .trim_start_matches("activation_code = \"")
        .trim_end_matches('"');
    assert_eq!(code.len(), 23, "{lines}");

    // A rogue VM that names the serial gets nothing, without a code or
    // with a wrong one, and learns nothing of the PBX.
    let rogue = Site::vm(&serial, 9);
    rogue.trust(&vendor);
    pin(&rogue, &format!("sw_serial = \"{serial}\"\n"));
    let refused = rogue.agent(&["activate", "--now", &at(t0 + HOUR)]).code(2);
    assert!(
        refused.stderr.contains("activation-refused"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("activation_code"),
        "{}",
        refused.stderr
    );
    let wrong = rogue
        .agent(&[
            "activate",
            "--code",
            "00000-00000-00000-00000",
            "--now",
            &at(t0 + HOUR),
        ])
        .code(2);
    assert!(
        wrong.stderr.contains("activation-refused"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("00000-00000"), "{}", wrong.stderr);
    assert_eq!(
        vendor.ledger_show(&serial)["licenses"],
        serde_json::json!([])
    );

    // The real VM with the lines the vendor printed.
    pin(&site, &lines);
    let r = site
        .agent(&["activate", "--json", "--now", &at(t0 + HOUR)])
        .code(agent_exit::FULL)
        .json();
    assert_eq!(r["renewal"]["outcome"], "activated", "{r}");
    assert_eq!(r["license"]["serial"], serial.as_str());
    assert_eq!(r["license"]["sequence"], 1);
    // In the ledger, with the order the registry recorded.
    let shown = vendor.ledger_show(&serial);
    assert!(shown.to_string().contains("Online Dental"), "{shown}");
    // The opening of the code is in the PBX's history, never the code.
    assert!(
        shown["registry"].to_string().contains("\"activation\""),
        "{shown}"
    );
    assert!(!shown.to_string().contains(code), "{shown}");
    // The code is used: the rogue VM gets nothing with it either.
    let used = rogue
        .agent(&["activate", "--code", code, "--now", &at(t0 + HOUR)])
        .code(2);
    assert!(
        used.stderr.contains("activation-refused"),
        "{}",
        used.stderr
    );

    // A second activation is refused: the PBX renews.
    service.clock.set(t0 + 2 * HOUR);
    let again = site
        .agent(&["activate", "--json", "--now", &at(t0 + 2 * HOUR)])
        .code(2)
        .json();
    assert_eq!(again["renewal"]["problem"], "already-activated", "{again}");
    assert_eq!(
        again["license"]["sequence"], 1,
        "the license in force stays"
    );
    service.clock.set(t0 + 3 * HOUR);
    let renewed = site
        .agent(&["renew", "--json", "--now", &at(t0 + 3 * HOUR)])
        .code(agent_exit::FULL)
        .json();
    assert_eq!(renewed["license"]["sequence"], 2);

    // An appliance the vendor never entered gets no license on its word.
    let unknown = Site::appliance("HW-0E0E-0099", 46);
    unknown.trust(&vendor);
    pin(&unknown, "");
    let refused = unknown
        .agent(&["activate", "--now", &at(t0 + 3 * HOUR)])
        .code(2);
    assert!(
        refused.stderr.contains("activation-refused"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_pbx_whose_server_is_stopped_walks_its_grace_to_emergency_only_and_a_renewal_restores_it() {
    // The daily HW policy: 14 days of service once the lease has run
    // out without a renewal, then emergency calls only, exactly as a PBX
    // that renews from files.
    let vendor = Vendor::new();
    let catalog = daily_catalog(&vendor);
    let site = Site::appliance("HW-0E0E-0003", 43);
    activate_with(&vendor, &site, &catalog);
    let t0 = unix(T0);
    let mut service = Service::new(&vendor, Some(catalog), t0);
    service.configure(&site, "");
    let day1 = t0 + DAY + 17;
    service.clock.set(day1);
    let r = check_online(&site, day1).code(agent_exit::FULL).json();
    assert_eq!(r["renewal"]["outcome"], "renewed", "{r}");
    let lease_end = day1 + 2 * DAY;

    let port = service.port();
    service.stop();
    // Inside the lease: still full service, the renewal due.
    let r = check_online(&site, day1 + DAY + HOUR)
        .code(agent_exit::RENEWAL_DUE)
        .json();
    assert_eq!(r["renewal"]["outcome"], "unreachable", "{r}");
    // The lease has run out: 14 days of grace, checked daily.
    for d in 0..14 {
        let now = lease_end + 1 + d * DAY;
        let r = check_online(&site, now).code(agent_exit::GRACE).json();
        assert_eq!(r["renewal"]["outcome"], "unreachable", "grace day {d}: {r}");
    }
    // Then emergency calls only.
    let r = check_online(&site, lease_end + 14 * DAY + 1)
        .code(agent_exit::EMERGENCY_ONLY)
        .json();
    assert_eq!(r["mode"], "emergency_only", "{r}");

    // The server is back: the next check renews and restores full service.
    let back = lease_end + 20 * DAY;
    service.clock.set(back);
    service.start(port);
    let r = check_online(&site, back).code(agent_exit::FULL).json();
    assert_eq!(r["renewal"]["outcome"], "renewed", "{r}");
    assert_eq!(r["mode"], "full");
    vendor.tessera(&["ledger", "verify"]).ok();
}

/// Refusals anyone can provoke for a licensed appliance, each sent 30
/// times under the per-address limit: the request file it was activated
/// with, sent again (`replay`), and another box's activation naming its HW
/// serial (`activation-refused`). Its renewal budget stays whole: the real
/// agent renews, as often as the burst allows.
#[test]
fn refusals_sent_for_a_pbx_leave_its_agent_renewing() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-0E0E-0007", 47);
    site.trust(&vendor);
    OrderSpec::default().write(&vendor, "order.toml");
    let answered = site.request(T0);
    let (run, lic) = vendor.answer(
        T0,
        &["issue", "--order", "order.toml"],
        &answered,
        "first.lic",
    );
    run.ok();
    site.install(&lic, T0).code(agent_exit::FULL);
    let t0 = unix(T0);
    let now = t0 + 60;
    let limits = Limits {
        // 1/h: nothing refills while the test runs.
        per_serial: Rate::parse("1/h,2").unwrap(),
        ..Limits::default()
    };
    let service = Service::with_limits(&vendor, None, now, limits);
    service.configure(&site, "");

    let other = Site::appliance("HW-0E0E-0007", 48);
    let activation = std::fs::read(other.request(&at(now))).unwrap();
    let replayed = std::fs::read(&answered).unwrap();
    let client = tessera_server::testing::client(&service.pki).unwrap();
    let post = |path: &str, body: &[u8]| {
        let r = client
            .post(&format!("{}{path}", service.url()))
            .header("content-type", "text/plain")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value =
            serde_json::from_slice(&r.into_body().read_to_vec().unwrap()).unwrap();
        (status, v["code"].as_str().unwrap_or_default().to_owned())
    };
    for _ in 0..30 {
        assert_eq!(post("/v1/renew", &replayed), (409, "replay".into()));
        assert_eq!(
            post("/v1/activate", &activation),
            (403, "activation-refused".into())
        );
    }
    for sequence in 2..=3 {
        let renewed = site
            .agent(&["renew", "--json", "--now", &at(now)])
            .ok()
            .json();
        assert_eq!(renewed["renewal"]["outcome"], "renewed", "{renewed}");
        assert_eq!(renewed["license"]["sequence"], sequence);
    }
    // The burst is the device's own, and it has spent it: rate-limited,
    // told apart from a server out of reach, with when to ask again; the
    // license in force stays (exit 4: try again later).
    let limited = site
        .agent(&["renew", "--json", "--now", &at(now)])
        .code(4)
        .json();
    assert_eq!(limited["renewal"]["outcome"], "rate_limited", "{limited}");
    assert_eq!(limited["renewal"]["code"], "rate_limited", "{limited}");
    assert_eq!(limited["renewal"]["problem"], "rate-limited", "{limited}");
    assert!(limited["renewal"]["retry_after"].as_u64().unwrap() > 0);
    assert_eq!(limited["license"]["sequence"], 3, "{limited}");
    let error = limited["renewal"]["error"].as_str().unwrap();
    assert!(
        error.contains("is up but refused the request for now"),
        "{error}"
    );
    assert!(error.contains("HTTP 429 after 1 attempt(s)"), "{error}");
    assert!(error.contains("try again in "), "{error}");
    site.agent(&["renew", "--now", &at(now)])
        .code(4)
        .says("is up but refused the request for now");
    // The periodic check keeps the verdict's exit code when the renewal it
    // tries is rate-limited: the license's, as offline.
    let later = now + 40 * DAY;
    service.clock.set(later);
    let offline = site.agent(&["check", "--json", "--now", &at(later)]);
    let checked = check_online(&site, later).code(offline.code);
    assert_ne!(offline.code, 4);
    let checked = checked.json();
    assert_eq!(checked["renewal"]["outcome"], "rate_limited", "{checked}");
    assert_eq!(checked["mode"], offline.json()["mode"]);
}
