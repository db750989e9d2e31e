//! The service over real TLS on loopback, on a real ledger, with a real
//! HTTP client (the one the agent uses).

use core::time::Duration;
use std::path::PathBuf;

use tessera_issuer::issuance::{self, Issuer, ReplaceReason};
use tessera_issuer::ledger::{Action, Ledger};
use tessera_signer::Signer as _;
use tessera_verifier::claims::{ComponentKind, Identity, Platform};
use tessera_verifier::encode::sign_request;
use tessera_verifier::samples::{self, seed_signer, T0};
use tessera_verifier::{armor, binding::component_digest, decode_license_unverified};

use super::*;
use crate::testing::{self, TestPki, TestVendor};

const HOUR: i64 = 3600;

struct Vendor {
    v: TestVendor,
    pki: TestPki,
    serial: String,
    // Dropped after the vendor: the database server, then the folder.
    _pg: Option<tessera_tests::postgres::PgServer>,
    _dir: tempfile::TempDir,
}

impl Vendor {
    /// A vendor with a key, a SQLite ledger and one appliance activated
    /// at T0.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.db");
        Self::with(dir, None, ledger)
    }

    /// The same on a real PostgreSQL the test starts (`None`: skipped,
    /// never under CI).
    fn postgres() -> Option<Self> {
        let pg = tessera_tests::postgres::PgServer::start()?;
        let url = pg.create_database();
        Some(Self::with(
            tempfile::tempdir().unwrap(),
            Some(pg),
            url.into(),
        ))
    }

    fn with(
        dir: tempfile::TempDir,
        pg: Option<tessera_tests::postgres::PgServer>,
        ledger: PathBuf,
    ) -> Self {
        let v = TestVendor::with_ledger(dir.path(), T0, ledger).unwrap();
        let serial = v.activate(1, 1, T0).unwrap().remove(0);
        Self {
            pki: v.pki.clone(),
            v,
            serial,
            _pg: pg,
            _dir: dir,
        }
    }

    fn ledger_path(&self) -> PathBuf {
        self.v.ledger_path()
    }

    fn postgres_ledger(&self) -> bool {
        self._pg.is_some()
    }

    /// Runs `sql` on the ledger behind tessera's back.
    fn edit_outside_tessera(&self, sql: &str) {
        match &self._pg {
            Some(pg) => {
                pg.psql(&self.ledger_path().to_string_lossy(), sql);
            }
            None => rusqlite::Connection::open(self.ledger_path())
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
        }
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(
            &mut tessera_issuer::ledger::Writer<'_>,
            &Issuer<'_>,
        ) -> Result<T, tessera_issuer::error::Error>,
    ) -> T {
        self.v.with_writer(f).unwrap()
    }

    fn settings(&self, clock: Clock, limits: Limits) -> Settings {
        self.v
            .settings("127.0.0.1:0".parse().unwrap(), clock, limits)
            .unwrap()
    }

    /// Licenses of the serial in the ledger.
    fn history(&self) -> Vec<tessera_issuer::ledger::Record> {
        Ledger::open_read_only(&self.ledger_path())
            .unwrap()
            .history(&self.serial)
            .unwrap()
    }
}

fn at(t: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t, 0).unwrap()
}

fn no_limits() -> Limits {
    Limits {
        per_address: Rate::parse("off").unwrap(),
        per_serial: Rate::parse("off").unwrap(),
        ..Limits::default()
    }
}

fn renewal(serial: &str, now: i64, nonce: u64) -> Vec<u8> {
    testing::renewal(serial, now, nonce).unwrap()
}

/// The sample appliance's renewal request for `serial` at `now`, before
/// it is signed.
fn request_for(serial: &str, now: i64, nonce: u64) -> tessera_verifier::encode::RequestData {
    let mut r = samples::request();
    r.serial = Some(serial.to_owned());
    r.hw_serial = None;
    r.created_at = now;
    r.nonce[..8].copy_from_slice(&nonce.to_be_bytes());
    r
}

/// `r` signed by the key of `seed`, which it names.
fn signed_by(mut r: tessera_verifier::encode::RequestData, seed: [u8; 32]) -> Vec<u8> {
    r.device_key = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    sign_request(&r, seed_signer(seed)).unwrap()
}

/// The sample appliance's renewal request for `serial` as anyone who saw
/// one can make it: serials, salt and identity digests kept, a new nonce,
/// signed with a throwaway key from `seed`.
fn forged(serial: &str, now: i64, nonce: u64, seed: u8) -> Vec<u8> {
    let mut r = request_for(serial, now, nonce);
    r.nonce[8..].fill(seed);
    signed_by(r, [seed; 32])
}

/// `r` with another device's identity.
fn with_other_identity(
    mut r: tessera_verifier::encode::RequestData,
) -> tessera_verifier::encode::RequestData {
    r.identity = [(ComponentKind::NIC_MAC, "00163e0000ff")]
        .iter()
        .map(|(kind, raw)| Identity {
            kind: *kind,
            digest: component_digest(&r.salt, *kind, raw.as_bytes()),
        })
        .collect();
    r
}

/// A request for `serial` from another device (another identity), signed
/// by the sample device key, so the key check passes and the binding
/// refuses it.
fn other_identity(serial: &str, now: i64, nonce: u64) -> Vec<u8> {
    signed_by(
        with_other_identity(request_for(serial, now, nonce)),
        samples::DEVICE_KEY_SEED,
    )
}

/// A request for `serial` from another device: its own key and identity.
fn other_device(serial: &str, now: i64, nonce: u64) -> Vec<u8> {
    signed_by(
        with_other_identity(request_for(serial, now, nonce)),
        [9; 32],
    )
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn new(pki: &TestPki, base: String) -> Self {
        Self {
            agent: testing::client(pki).unwrap(),
            base,
        }
    }

    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        self.post_with(path, &[content_type], body)
    }

    /// A POST with these `Content-Type` headers (none, one, several).
    fn post_with(&self, path: &str, content_types: &[&str], body: &[u8]) -> (u16, String, Vec<u8>) {
        let headers: Vec<(&str, &str)> = content_types
            .iter()
            .map(|ct| ("content-type", *ct))
            .collect();
        self.post_headers(path, &headers, body)
    }

    /// An activation with these `Tessera-Activation-Code` headers.
    fn activate_with(&self, body: &[u8], codes: &[&str]) -> (u16, String, Vec<u8>) {
        let mut headers = vec![("content-type", crate::routes::COSE)];
        headers.extend(
            codes
                .iter()
                .map(|c| (tessera_verifier::activation::HEADER, *c)),
        );
        self.post_headers("/v1/activate", &headers, body)
    }

    /// A POST with these headers.
    fn post_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut r = request.send(body).unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap();
        (r.status().as_u16(), ct, body)
    }

    fn renew(&self, body: &[u8]) -> (u16, String, Vec<u8>) {
        self.post("/v1/renew", "application/cose", body)
    }

    fn activate(&self, body: &[u8]) -> (u16, String, Vec<u8>) {
        self.post("/v1/activate", "application/cose", body)
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }
}

fn problem(status: u16, ct: &str, body: &[u8]) -> (u16, String) {
    assert_eq!(
        ct,
        "application/problem+json",
        "{}",
        String::from_utf8_lossy(body)
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["status"], status);
    assert_eq!(
        v["type"].as_str().unwrap(),
        format!("urn:tessera:problem:{}", v["code"].as_str().unwrap())
    );
    assert!(!v["detail"].as_str().unwrap().is_empty());
    (status, v["code"].as_str().unwrap().to_owned())
}

/// Starts a server for `v` at the manual time `now`, with a client.
fn serve(v: &Vendor, rt: &tokio::runtime::Runtime, now: i64, limits: Limits) -> (Running, Client) {
    serve_on(v, rt, &Clock::manual(now), limits)
}

/// Starts a server for `v` on `clock` (the test moves it), with a client.
fn serve_on(
    v: &Vendor,
    rt: &tokio::runtime::Runtime,
    clock: &Clock,
    limits: Limits,
) -> (Running, Client) {
    let server = rt
        .block_on(start(v.settings(clock.clone(), limits)))
        .unwrap();
    let c = Client::new(&v.pki, server.url());
    (server, c)
}

/// [`serve`] without limits, with the handle of its manual clock.
fn serve_with_clock(
    v: &Vendor,
    rt: &tokio::runtime::Runtime,
    now: i64,
) -> (Running, Client, Clock) {
    let clock = Clock::manual(now);
    let server = rt
        .block_on(start(v.settings(clock.clone(), no_limits())))
        .unwrap();
    let c = Client::new(&v.pki, server.url());
    (server, c, clock)
}

fn stop(rt: &tokio::runtime::Runtime, server: Running) {
    server.shutdown();
    rt.block_on(server.wait());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Each test on the SQLite ledger and on a real PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&super::Vendor::new());
                }
                #[test]
                fn postgres() {
                    if let Some(v) = super::Vendor::postgres() {
                        super::$name(&v);
                    }
                }
            }
        )*
    };
}

on_both_backends!(
    renews_over_tls_and_refuses_replays_and_stale_requests,
    refuses_unknown_replaced_and_bad_input_with_problems,
    refuses_unregistered_voided_stopped_and_deleted_pbxs,
    activates_pbxs_the_registry_knows,
    activation_refusals_are_one_problem,
    a_rogue_device_cannot_hijack_a_registered_pbx,
    a_ledger_modified_while_serving_is_503_and_not_ready,
    a_request_answered_by_a_bulk_row_is_a_replay,
    forged_copies_get_nothing_and_spend_no_budget,
    refusals_anyone_can_provoke_spend_no_budget,
    renewals_at_once_take_at_most_the_burst,
    an_appliance_has_one_budget_by_either_serial,
    a_forged_renewal_learns_nothing_of_the_pbx_state,
    a_renewal_tells_no_serial_without_a_license_from_another,
    a_forged_renewal_cannot_tell_a_spent_budget,
    refusals_answer_no_sooner_than_the_floor,
);

/// Limits with a renewal budget of `burst` (1/h: nothing refills during a
/// test) and no per-address limit.
fn budget_of(burst: u32) -> Limits {
    Limits {
        per_serial: Rate::parse(&format!("1/h,{burst}")).unwrap(),
        per_address: Rate::parse("off").unwrap(),
        ..Limits::default()
    }
}

/// Refusals anyone can provoke for a licensed PBX, each sent 10 times: an
/// activation signed by any key with a fresh nonce (`activation-refused`)
/// and an answered request sent again (`replay`, found before the key is
/// looked at). The PBX's device still renews its whole burst.
fn refusals_anyone_can_provoke_spend_no_budget(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, budget_of(3));
    let before = v.history().len();
    let answered = renewal(&v.serial, now, 1);
    assert_eq!(c.renew(&answered).0, 200);
    for n in 0..10u8 {
        let mut r = request_for(&v.serial, now, 100 + u64::from(n));
        r.nonce[8..].fill(0x50 + n);
        let (status, ct, body) = c.activate(&signed_by(r, [0x50 + n; 32]));
        assert_eq!(
            problem(status, &ct, &body),
            (403, "activation-refused".into())
        );
        let (status, ct, body) = c.renew(&answered);
        assert_eq!(problem(status, &ct, &body), (409, "replay".into()));
    }
    assert_eq!(c.renew(&renewal(&v.serial, now, 2)).0, 200);
    assert_eq!(c.renew(&renewal(&v.serial, now, 3)).0, 200);
    let (status, ct, body) = c.renew(&renewal(&v.serial, now, 4));
    assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
    assert_eq!(v.history().len(), before + 3);
    let m = server.metrics();
    assert_eq!(m.count("activate", "activation-refused"), 10);
    assert_eq!(m.count("renew", "replay"), 10);
    assert_eq!(m.count("renew", "rate-limited"), 1);
    stop(&rt, server);
}

/// 30 renewals of the device's own key sent at once: the budget's burst is
/// answered, the rest refused, none recorded beyond it.
fn renewals_at_once_take_at_most_the_burst(v: &Vendor) {
    const AT_ONCE: u64 = 30;
    const BURST: u32 = 5;
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, budget_of(BURST));
    let before = v.history().len();
    let bodies: Vec<Vec<u8>> = (0..AT_ONCE)
        .map(|n| renewal(&v.serial, now, 10 + n))
        .collect();
    let start = std::sync::Barrier::new(bodies.len());
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let running: Vec<_> = bodies
            .iter()
            .map(|body| {
                let (c, start) = (&c, &start);
                s.spawn(move || {
                    start.wait();
                    c.renew(body).0
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(started.elapsed() < Duration::from_secs(60));
    let answered = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(answered, BURST as usize, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(v.history().len(), before + BURST as usize);
    stop(&rt, server);
}

/// An appliance asking by its HW serial only and by its SW serial spends
/// one budget: the SW serial's.
fn an_appliance_has_one_budget_by_either_serial(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, budget_of(4));
    let before = v.history().len();
    let by_hw = |nonce: u64| {
        let mut r = request_for(&v.serial, now, nonce);
        r.serial = None;
        r.hw_serial = Some("HW-LOAD-000001".into());
        signed_by(r, samples::DEVICE_KEY_SEED)
    };
    let by_sw = |nonce: u64| renewal(&v.serial, now, nonce);
    for (n, body) in [by_sw(1), by_hw(2), by_sw(3), by_hw(4)].iter().enumerate() {
        assert_eq!(c.renew(body).0, 200, "request {n}");
    }
    for body in [by_hw(5), by_sw(6)] {
        let (status, ct, body) = c.renew(&body);
        assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
        let detail: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            detail["detail"].as_str().unwrap().contains(&v.serial),
            "{detail}"
        );
    }
    assert_eq!(v.history().len(), before + 4);
    stop(&rt, server);
}

fn forged_copies_get_nothing_and_spend_no_budget(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let limits = Limits {
        per_serial: Rate::parse("1/h,2").unwrap(),
        per_address: Rate::parse("off").unwrap(),
        ..Limits::default()
    };
    let (server, c) = serve(v, &rt, now, limits);
    let before = v.history().len();
    // 20 copies of the appliance's request, each re-signed with its own
    // key and nonce: no renewal, and the bucket of the serial untouched.
    for seed in 0..20u8 {
        let (status, ct, body) = c.renew(&forged(&v.serial, now, 100, 0xa0 + seed));
        assert_eq!(
            problem(status, &ct, &body),
            (403, "unknown-device-key".into())
        );
        let detail: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let detail = detail["detail"].as_str().unwrap();
        assert!(detail.contains(&v.serial), "{detail}");
        assert!(detail.contains("accept the key offline"), "{detail}");
    }
    assert_eq!(v.history().len(), before);
    // The appliance itself still has its whole budget, counted per serial.
    assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);
    assert_eq!(c.renew(&renewal(&v.serial, now, 2)).0, 200);
    let (status, ct, body) = c.renew(&renewal(&v.serial, now, 3));
    assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
    assert_eq!(v.history().len(), before + 2);
    assert_eq!(server.metrics().count("renew", "unknown-device-key"), 20);
    stop(&rt, server);
}

/// Requests for the PBX that its device did not sign (a copy re-signed
/// with a throwaway key, another device) get the same answer, byte for
/// byte, before and after the PBX's own device spent its renewal budget:
/// only that device hears that it asks too often.
fn a_forged_renewal_cannot_tell_a_spent_budget(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, budget_of(2));
    let before = v.history().len();
    let probes = [
        forged(&v.serial, now, 100, 0xb1),
        other_device(&v.serial, now, 101),
    ];
    let full: Vec<_> = probes.iter().map(|p| c.renew(p)).collect();
    let (status, ct, body) = &full[0];
    assert_eq!(
        problem(*status, ct, body),
        (403, "unknown-device-key".into())
    );
    assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);
    assert_eq!(c.renew(&renewal(&v.serial, now, 2)).0, 200);
    let (status, ct, body) = c.renew(&renewal(&v.serial, now, 3));
    assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
    let spent: Vec<_> = probes.iter().map(|p| c.renew(p)).collect();
    for (n, (full, spent)) in full.iter().zip(&spent).enumerate() {
        assert_eq!(
            full,
            spent,
            "probe {n}: {} / {}",
            String::from_utf8_lossy(&full.2),
            String::from_utf8_lossy(&spent.2)
        );
    }
    assert_eq!(v.history().len(), before + 2);
    let m = server.metrics();
    assert_eq!(m.count("renew", "rate-limited"), 1);
    stop(&rt, server);
}

fn renews_over_tls_and_refuses_replays_and_stale_requests(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 20 * HOUR;
    let server = rt
        .block_on(start(v.settings(Clock::manual(now), no_limits())))
        .unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let c = Client::new(&v.pki, server.url());

    let request = renewal(&v.serial, now - 10, 1);
    let (status, ct, body) = c.renew(&request);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ct, "application/cose");
    let license = decode_license_unverified(&body).unwrap().to_data();
    assert_eq!(license.serial, v.serial);
    assert_eq!(license.sequence, 2);
    assert_eq!(license.issued_at, now);
    // Durable before the answer: the ledger has it, byte for byte.
    let history = v.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].row.bytes, body);
    assert_eq!(history[1].row.action, Action::Renew);

    // The same request again: a replay, refused, nothing recorded.
    let (status, ct, body) = c.renew(&request);
    assert_eq!(problem(status, &ct, &body), (409, "replay".into()));
    // Armored text works as well; a new nonce is a new request.
    let armored = armor::encode(&renewal(&v.serial, now, 2), armor::LABEL_REQUEST);
    let (status, _, body) = c.post("/v1/renew", "text/plain", armored.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        decode_license_unverified(&body).unwrap().to_data().sequence,
        3
    );
    // Made an hour ago, or an hour ahead: outside the 5-minute window.
    for created in [now - HOUR, now + HOUR] {
        let (status, ct, body) = c.renew(&renewal(&v.serial, created, 3));
        assert_eq!(problem(status, &ct, &body), (400, "stale".into()));
        // The service's own setting, and the advice once.
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("(`--freshness` of tessera-server)"), "{text}");
        assert!(!text.contains("request_window"), "{text}");
        assert_eq!(text.matches("new request").count(), 1, "{text}");
    }
    assert_eq!(v.history().len(), 3);
    assert_eq!(server.metrics().count("renew", "ok"), 2);
    assert_eq!(server.metrics().count("renew", "replay"), 1);
    assert_eq!(server.metrics().count("renew", "stale"), 2);
    stop(&rt, server);

    // After a restart the nonce is still known: the ledger holds it.
    let (server, c) = serve(v, &rt, now, no_limits());
    let (status, ct, body) = c.renew(&request);
    assert_eq!(problem(status, &ct, &body), (409, "replay".into()));
    stop(&rt, server);
}

fn refuses_unknown_replaced_and_bad_input_with_problems(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, no_limits());

    // A HW serial never activated.
    let mut fresh = samples::request();
    fresh.hw_serial = Some("HW-NEVER-SEEN".into());
    fresh.created_at = now;
    let (status, ct, body) =
        c.renew(&sign_request(&fresh, seed_signer(samples::DEVICE_KEY_SEED)).unwrap());
    assert_eq!(problem(status, &ct, &body), (404, "unknown".into()));
    let (status, ct, body) = c.renew(b"\xd2\x84garbage");
    assert_eq!(
        problem(status, &ct, &body),
        (400, "malformed-request".into())
    );
    let (status, ct, body) = c.post("/v1/renew", "text/plain", b"hello\x1b[2J");
    assert_eq!(
        problem(status, &ct, &body),
        (400, "malformed-request".into())
    );
    let (status, ct, body) = c.post("/v1/renew", "application/json", b"{}");
    assert_eq!(
        problem(status, &ct, &body),
        (415, "unsupported-media-type".into())
    );
    let (status, ct, body) = c.renew(&vec![b'A'; 9000]);
    assert_eq!(problem(status, &ct, &body), (413, "too-large".into()));
    let (status, ct, body) = c.post("/nowhere/../etc/passwd", "text/plain", b"");
    assert_eq!(problem(status, &ct, &body), (404, "not-found".into()));
    // A tampered request: the device's signature no longer holds.
    let mut tampered = renewal(&v.serial, now, 7);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, ct, body) = c.renew(&tampered);
    assert_eq!(
        problem(status, &ct, &body),
        (400, "malformed-request".into())
    );

    // Another device asking for this serial: with a key the PBX never
    // used, and with its key but another identity.
    let (status, ct, body) = c.renew(&other_device(&v.serial, now, 0));
    assert_eq!(
        problem(status, &ct, &body),
        (403, "unknown-device-key".into())
    );
    let (status, ct, body) = c.renew(&other_identity(&v.serial, now, 1));
    assert_eq!(problem(status, &ct, &body), (403, "wrong-device".into()));

    // The appliance is replaced (RMA): the old box is refused from now on.
    let mut new_box = samples::request();
    new_box.hw_serial = Some("HW-7F3A-0099".into());
    new_box.identity = [
        (ComponentKind::HW_SERIAL, "HW-7F3A-0099"),
        (ComponentKind::NIC_MAC, "00163e000099"),
        (
            ComponentKind::SYSTEM_UUID,
            "4c4c4544-0000-0000-0000-000000000099",
        ),
        (ComponentKind::DISK_SERIAL, "DISK-NEW"),
    ]
    .iter()
    .map(|(kind, raw)| Identity {
        kind: *kind,
        digest: component_digest(&new_box.salt, *kind, raw.as_bytes()),
    })
    .collect();
    new_box.device_key = [0x42; 32];
    v.with_writer(|w, issuer| {
        issuance::replace(
            w,
            issuer,
            &v.serial,
            &new_box,
            ReplaceReason::Rma,
            None,
            at(now),
        )
    });
    let (status, ct, body) = c.renew(&renewal(&v.serial, now, 8));
    assert_eq!(problem(status, &ct, &body), (403, "replaced".into()));

    let (status, text) = c.get("/healthz");
    assert_eq!((status, text.as_str()), (200, "ok\n"));
    let (status, text) = c.get("/readyz");
    assert_eq!(status, 200);
    assert!(text.contains("ledger_entries"), "{text}");
    // The metrics are not the devices' to read (`--metrics-listen`).
    let (status, text) = c.get("/metrics");
    assert_eq!(status, 404, "{text}");
    assert!(!text.contains("tessera_requests_total"), "{text}");
    assert_eq!(server.metrics().count("renew", "replaced"), 1);
    assert!(server
        .metrics()
        .render()
        .contains("tessera_ledger_commit_seconds_count"));
    stop(&rt, server);
}

/// The metrics are served on the listener the operator asked for, in plain
/// HTTP, and nowhere else: the devices' listener answers `/metrics` as any
/// unknown path, and without `--metrics-listen` there is none.
#[test]
fn metrics_only_on_their_own_listener() {
    let v = Vendor::new();
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let mut s = v.settings(Clock::manual(now), no_limits());
    s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = rt.block_on(start(s)).unwrap();
    let c = Client::new(&v.pki, server.url());
    assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);
    let (status, ct, body) = c.renew(&forged(&v.serial, now, 2, 0x33));
    assert_eq!(
        problem(status, &ct, &body),
        (403, "unknown-device-key".into())
    );

    let (status, text) = c.get("/metrics");
    assert_eq!(status, 404, "{text}");
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(p["code"], "not-found", "{text}");
    assert!(
        !p["detail"].as_str().unwrap().contains("/metrics"),
        "{text}"
    );

    let url = server.metrics_url().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let agent = testing::client(&v.pki).unwrap();
    let mut r = agent.get(&url).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.body_mut().read_to_string().unwrap();
    for line in [
        "tessera_requests_total{route=\"renew\",outcome=\"ok\"} 1",
        "tessera_requests_total{route=\"renew\",outcome=\"unknown-device-key\"} 1",
        "tessera_requests_total{route=\"other\",outcome=\"not-found\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    let base = url.trim_end_matches("/metrics");
    for path in ["/healthz", "/v1/renew", "/"] {
        let r = agent.get(format!("{base}{path}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    stop(&rt, server);

    let (server, _) = serve(&v, &rt, now, no_limits());
    assert_eq!(server.metrics_url(), None);
    stop(&rt, server);

    let mut s = v.settings(Clock::manual(now), no_limits());
    s.listen = "127.0.0.1:8443".parse().unwrap();
    s.metrics_listen = Some(s.listen);
    let e = s.check().unwrap_err().to_string();
    assert!(e.contains("--metrics-listen"), "{e}");
}

#[test]
fn rate_limits_per_serial_and_per_address() {
    let v = Vendor::new();
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let limits = Limits {
        per_serial: Rate::parse("1/h,2").unwrap(),
        per_address: Rate::parse("1/h,6").unwrap(),
        ..Limits::default()
    };
    let (server, c) = serve(&v, &rt, now, limits);
    // Requests for this serial signed by another device (anyone can make
    // one) spend no token of the PBX's.
    for nonce in 10..12 {
        let (status, ct, body) = c.renew(&other_device(&v.serial, now, nonce));
        assert_eq!(
            problem(status, &ct, &body),
            (403, "unknown-device-key".into())
        );
    }
    assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);
    assert_eq!(c.renew(&renewal(&v.serial, now, 2)).0, 200);
    let (status, ct, body) = c.renew(&renewal(&v.serial, now, 3));
    assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
    // Another serial has its own budget, but this address has one left.
    let (status, ct, body) = c.renew(&renewal("SW-2026-000777", now, 4));
    assert_eq!(problem(status, &ct, &body), (404, "unknown".into()));
    let (status, ct, body) = c.renew(&renewal("SW-2026-000777", now, 5));
    assert_eq!(problem(status, &ct, &body), (429, "rate-limited".into()));
    // Probes are never limited.
    assert_eq!(c.get("/healthz").0, 200);
    assert_eq!(v.history().len(), 3);
    stop(&rt, server);
}

#[test]
fn graceful_shutdown_finishes_requests_in_flight() {
    let v = Vendor::new();
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let server = rt
        .block_on(start(v.settings(Clock::manual(now), no_limits())))
        .unwrap();
    // Hold the ledger's write lock, so renewals wait inside the server.
    let lock = rusqlite::Connection::open(v.ledger_path()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    const N: u32 = 8;
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let c = Client::new(&v.pki, server.url());
            let body = renewal(&v.serial, now, 100 + u64::from(i));
            std::thread::spawn(move || c.renew(&body))
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let in_flight = format!("tessera_requests_in_flight {N}");
    while !server.metrics().render().lines().any(|l| l == in_flight) {
        assert!(
            std::time::Instant::now() < deadline,
            "requests never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let addr = server.addr();
    server.shutdown();
    // No new connections once shutting down ...
    let refused = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        std::net::TcpStream::connect(addr).is_err()
    });
    assert!(refused, "still accepting after the shutdown began");
    // ... while the requests in flight are answered once the ledger is free.
    lock.execute_batch("ROLLBACK").unwrap();
    rt.block_on(server.wait());
    let mut sequences: Vec<u32> = clients
        .into_iter()
        .map(|t| {
            let (status, _, body) = t.join().unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            decode_license_unverified(&body).unwrap().to_data().sequence
        })
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (2..2 + N).collect::<Vec<_>>());
    let history = v.history();
    assert_eq!(history.len(), 1 + usize::try_from(N).unwrap());
    assert!(Ledger::open_read_only(&v.ledger_path())
        .unwrap()
        .verify(
            &[tessera_verifier::KeyEntry::new(v.v.signer.public_key(), 0)],
            None
        )
        .is_ok());
}

#[test]
fn plain_http_only_on_loopback_or_when_asked() {
    let v = Vendor::new();
    let mut s = v.settings(Clock::System, Limits::default());
    s.tls = None;
    assert!(s.check().is_ok());
    s.listen = "0.0.0.0:0".parse().unwrap();
    let e = s.check().unwrap_err().to_string();
    assert!(e.contains("--insecure-http"), "{e}");
    s.insecure_http = true;
    assert!(s.check().is_ok());
}

#[test]
fn a_client_may_pin_a_self_signed_server_certificate() {
    let v = Vendor::new();
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let own = TestPki {
        ca: dir.path().join("self.pem"),
        cert: dir.path().join("self.pem"),
        key: dir.path().join("self.key"),
    };
    std::fs::write(&own.cert, cert.pem()).unwrap();
    std::fs::write(&own.key, key.serialize_pem()).unwrap();
    let mut settings = v.settings(Clock::manual(T0 + HOUR), no_limits());
    settings.tls = Some(TlsFiles {
        cert: own.cert.clone(),
        key: own.key.clone(),
    });
    let server = rt.block_on(start(settings)).unwrap();
    assert_eq!(Client::new(&own, server.url()).get("/healthz").0, 200);
    stop(&rt, server);
}

/// Activates another appliance at T0 and voids its license at `now` (issued
/// in error); returns its serial.
fn void_a_new_pbx(v: &Vendor, now: i64) -> String {
    let voided = v.v.activate(1, 2, T0).unwrap().remove(0);
    let id =
        v.v.with_writer(|w, _| Ok(w.latest(&voided)?.map(|r| r.row.license_id)))
            .unwrap()
            .unwrap();
    v.with_writer(|w, issuer| {
        tessera_issuer::lifecycle::void(w, issuer, &id, "wrong customer", at(now))
    });
    voided
}

/// Decreases the vendor's appliance to zero users at `now`: stopped 5 days
/// later, deleted after 14.
fn decommission(v: &Vendor, now: i64) {
    let opts = tessera_issuer::issuance::IssueOptions {
        approval: Some("APP-7"),
        now: at(now),
        ..tessera_issuer::issuance::IssueOptions::default()
    };
    v.with_writer(|w, issuer| tessera_issuer::lifecycle::decommission(w, issuer, &v.serial, &opts));
}

/// Each lifecycle refusal has its own problem type, from the one rule of
/// the issuer library the CLI's `renew` uses.
fn refuses_unregistered_voided_stopped_and_deleted_pbxs(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let clock = Clock::manual(now);
    let (server, c) = serve_on(v, &rt, &clock, no_limits());

    // A serial the registry never allocated.
    let (status, ct, body) = c.renew(&renewal("SW-2026-999999", now, 1));
    assert_eq!(problem(status, &ct, &body), (404, "unknown".into()));

    // A license voided (issued in error): nothing is in force.
    let voided = void_a_new_pbx(v, now);
    let (status, ct, body) = c.renew(&renewal(&voided, now, 2));
    assert_eq!(problem(status, &ct, &body), (410, "voided".into()));

    // Decreased to zero users: stopped after 5 days, deleted after 14.
    decommission(v, now);
    let stopped = T0 + 6 * 24 * HOUR;
    clock.set(stopped);
    let (status, ct, body) = c.renew(&renewal(&v.serial, stopped, 3));
    assert_eq!(problem(status, &ct, &body), (403, "stopped".into()));
    let deleted = T0 + 15 * 24 * HOUR;
    clock.set(deleted);
    let (status, ct, body) = c.renew(&renewal(&v.serial, deleted, 4));
    assert_eq!(problem(status, &ct, &body), (410, "deleted".into()));

    assert_eq!(server.metrics().count("renew", "ok"), 0);
    for code in ["unknown", "voided", "stopped", "deleted"] {
        assert_eq!(server.metrics().count("renew", code), 1, "{code}");
    }
    stop(&rt, server);
    // Nothing was recorded for any of them.
    assert_eq!(v.history().len(), 2);
}

/// A request signed by a key the PBX never used gets one answer,
/// `unknown-device-key`, whatever the state of the PBX: in force, its
/// license voided, stopped, deleted; the same problem body each time, but
/// for the serial it names. The device's own requests still hear the state
/// (`refuses_unregistered_voided_stopped_and_deleted_pbxs`).
fn a_forged_renewal_learns_nothing_of_the_pbx_state(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let clock = Clock::manual(now);
    let (server, c) = serve_on(v, &rt, &clock, no_limits());
    let before = v.history().len();
    // The problem body, with the serial it names made neutral.
    let refused = |serial: &str, at: i64, nonce: u64| {
        let (status, ct, body) = c.renew(&forged(serial, at, nonce, 0xc7));
        assert_eq!(
            problem(status, &ct, &body),
            (403, "unknown-device-key".into()),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains(serial), "{text}");
        serde_json::from_str::<serde_json::Value>(&text.replace(serial, "SERIAL")).unwrap()
    };
    let in_force = refused(&v.serial, now, 1);
    let voided = void_a_new_pbx(v, now);
    assert_eq!(refused(&voided, now, 2), in_force);
    decommission(v, now);
    let stopped = T0 + 6 * 24 * HOUR;
    clock.set(stopped);
    assert_eq!(refused(&v.serial, stopped, 3), in_force);
    let deleted = T0 + 15 * 24 * HOUR;
    clock.set(deleted);
    assert_eq!(refused(&v.serial, deleted, 4), in_force);
    // And the device itself hears why.
    let (status, ct, body) = c.renew(&renewal(&v.serial, deleted, 5));
    assert_eq!(problem(status, &ct, &body), (410, "deleted".into()));
    let (status, ct, body) = c.renew(&renewal(&voided, deleted, 6));
    assert_eq!(problem(status, &ct, &body), (410, "voided".into()));
    let m = server.metrics();
    assert_eq!(m.count("renew", "unknown-device-key"), 4);
    assert_eq!(m.count("renew", "voided"), 1);
    assert_eq!(m.count("renew", "stopped"), 0);
    stop(&rt, server);
    // Nothing but the decommission was recorded.
    assert_eq!(v.history().len(), before + 1);
}

/// A bulk row records its request's nonce as a single command does: the
/// first-activation request it answered, sent to `/v1/renew`, is a
/// replay, and nothing is recorded.
fn a_request_answered_by_a_bulk_row_is_a_replay(v: &Vendor) {
    use tessera_issuer::bulk;
    use tessera_issuer::validate::{RequestCheck, DEFAULT_REQUEST_WINDOW};
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let request = activation(None, Some("HW-BULK-000001"), Platform::Hw, now - 10, 0xb1);
    let dir = v._dir.path();
    std::fs::write(
        dir.join("bulk.req"),
        armor::encode(&request, armor::LABEL_REQUEST),
    )
    .unwrap();
    let order = dir.join("bulk-order.toml");
    std::fs::write(&order, include_str!("../../issuer/examples/order.toml")).unwrap();
    let check = RequestCheck {
        now,
        window: DEFAULT_REQUEST_WINDOW,
    };
    let (rows, refused) =
        bulk::prepare_text("request\nbulk.req\n", dir, Some(&order), check).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    let mut ledger = Ledger::open(&v.ledger_path()).unwrap();
    let issuer = Issuer {
        catalog: &v.v.catalog,
        signer: &v.v.signer,
        operator: "ops",
    };
    let summary =
        bulk::issue_rows(&mut ledger, &issuer, &rows, 10, 1, at(now), None, |_| {}).unwrap();
    assert_eq!(summary.issued, 1, "{:?}", summary.refused);
    let serial = ledger.sw_serial_of("HW-BULK-000001").unwrap().unwrap();
    drop(ledger);

    let (server, c) = serve(v, &rt, now, no_limits());
    let (status, ct, body) = c.renew(&request);
    assert_eq!(problem(status, &ct, &body), (409, "replay".into()));
    assert_eq!(server.metrics().count("renew", "ok"), 0);
    stop(&rt, server);
    let history = Ledger::open_read_only(&v.ledger_path())
        .unwrap()
        .history(&serial)
        .unwrap();
    assert_eq!(history.len(), 1);
}

/// A first-activation request of the sample device (its key and identity
/// digests): a SW serial (VM, Cloud, or an appliance that knows it) or a HW
/// serial, made at `now`.
fn activation(
    serial: Option<&str>,
    hw: Option<&str>,
    platform: Platform,
    now: i64,
    nonce: u64,
) -> Vec<u8> {
    activation_by(serial, hw, platform, now, nonce, samples::DEVICE_KEY_SEED)
}

/// [`activation`] signed by the device key of `seed`.
fn activation_by(
    serial: Option<&str>,
    hw: Option<&str>,
    platform: Platform,
    now: i64,
    nonce: u64,
    seed: [u8; 32],
) -> Vec<u8> {
    let mut r = samples::request();
    r.serial = serial.map(str::to_owned);
    r.hw_serial = hw.map(str::to_owned);
    r.platform = platform;
    r.created_at = now;
    r.nonce = [0xac; 16];
    r.nonce[..8].copy_from_slice(&nonce.to_be_bytes());
    signed_by(r, seed)
}

/// `tessera pbx activation SERIAL --valid-days DAYS` at `now`: the code.
fn open_code(v: &Vendor, serial: &str, days: u32, now: i64) -> String {
    v.with_writer(|w, _| tessera_issuer::activation::open(w, serial, days, at(now)))
        .code
        .to_string()
}

/// `tessera pbx add`: a PBX entered in the registry at `now`; with `hw`,
/// an appliance whose HW serial the registry maps to its serial.
fn add_pbx(v: &Vendor, platform: Platform, hw: Option<&str>, now: i64) -> String {
    use tessera_issuer::registry::{self, NewPbx};
    v.with_writer(|w, issuer| {
        let new = NewPbx {
            customer: "Online Dental".into(),
            name: "Branch office".into(),
            model: "TA-7000".into(),
            platform,
            cycle: tessera_verifier::claims::Cycle::Yearly,
            profiles: [("PBX-BASIC".to_owned(), 7), ("UC-BUSINESS".to_owned(), 3)].into(),
            storage: 0,
            policy: None,
        };
        let serial = registry::add(w, issuer.catalog, &new, None, now)?;
        if let Some(hw) = hw {
            w.convert_hw_serial(hw, &serial, false, now)?;
        }
        Ok(serial)
    })
}

/// A renewal about a serial that has no license (and so no binding to
/// check the request against) gets one problem, byte for byte, naming
/// nothing: a serial never allocated, a VM serial waiting for its
/// activation (with or without an open code), a HW serial never seen, and
/// the HW serial of an appliance the registry knows. So `/v1/renew` lists
/// neither the PBXs that wait for activation nor the SW serial a HW serial
/// maps to.
fn a_renewal_tells_no_serial_without_a_license_from_another(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, no_limits());
    let waiting = add_pbx(v, Platform::Vm, None, now);
    let with_code = add_pbx(v, Platform::Vm, None, now);
    open_code(v, &with_code, 30, now);
    let appliance = add_pbx(v, Platform::Hw, Some("HW-WAIT-000001"), now);
    let asks: [(Option<&str>, Option<&str>, Platform); 5] = [
        (Some("SW-2026-999999"), None, Platform::Vm),
        (Some(&waiting), None, Platform::Vm),
        (Some(&with_code), None, Platform::Vm),
        (None, Some("HW-NOBODY-000001"), Platform::Hw),
        (None, Some("HW-WAIT-000001"), Platform::Hw),
    ];
    let mut bodies = Vec::new();
    for (nonce, (serial, hw, platform)) in (300..).zip(asks) {
        let (status, ct, body) = c.renew(&activation_by(serial, hw, platform, now, nonce, ROGUE));
        assert_eq!(
            problem(status, &ct, &body),
            (404, "unknown".into()),
            "{}",
            String::from_utf8_lossy(&body)
        );
        bodies.push(String::from_utf8(body).unwrap());
    }
    for b in &bodies {
        assert_eq!(b, &bodies[0]);
    }
    assert!(
        !bodies[0].contains("SW-") && !bodies[0].contains("HW-"),
        "{}",
        bodies[0]
    );
    assert!(!bodies[0].contains(&appliance));
    assert!(
        bodies[0].contains("tessera-agent activate"),
        "{}",
        bodies[0]
    );
    stop(&rt, server);
}

/// A VM serial `pbx add` allocated and an appliance the registry knows are
/// activated over TLS with the order they recorded, under the rules of
/// `tessera issue`; the license then renews on `/v1/renew`.
fn activates_pbxs_the_registry_knows(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(v, &rt, now, no_limits());

    let vm = add_pbx(v, Platform::Vm, None, now);
    let code = open_code(v, &vm, 30, now);
    let (status, ct, body) =
        c.activate_with(&activation(Some(&vm), None, Platform::Vm, now, 1), &[&code]);
    assert_eq!(
        (status, ct.as_str()),
        (200, crate::routes::COSE),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let l = decode_license_unverified(&body).unwrap().to_data();
    assert_eq!(l.serial, vm);
    assert_eq!(l.sequence, 1);
    assert_eq!(l.platform, Platform::Vm);
    assert_eq!(l.customer, "Online Dental");
    assert_eq!(l.pbx_name, "Branch office");
    assert_eq!(tessera_issuer::order::total_users(&l.entitlements), 10);
    assert!(l.lease_end > now);
    // Durable before the answer: the ledger has it, with the recorded order.
    let ledger = Ledger::open_read_only(&v.ledger_path()).unwrap();
    let history = ledger.history(&vm).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].row.action, Action::Issue);
    assert_eq!(history[0].row.bytes, body);
    assert!(history[0].row.order_json.contains("Online Dental"));
    drop(ledger);

    // The PBX renews from now on.
    let mut r = samples::request();
    r.serial = Some(vm.clone());
    r.hw_serial = None;
    r.platform = Platform::Vm;
    r.created_at = now;
    r.nonce = *b"vm-renewal-00001";
    let renewal = sign_request(&r, seed_signer(samples::DEVICE_KEY_SEED)).unwrap();
    let (status, _, body) = c.renew(&renewal);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        decode_license_unverified(&body).unwrap().to_data().sequence,
        2
    );

    // An appliance the vendor entered by its HW serial: the serial the
    // registry gave it, the HW serial as its previous serial.
    let hw = add_pbx(v, Platform::Hw, Some("HW-ONLINE-000001"), now);
    // Any case, spaces for dashes: as a person may type it.
    let code = open_code(v, "HW-ONLINE-000001", 30, now)
        .to_lowercase()
        .replace('-', " ");
    let (status, ct, body) = c.activate_with(
        &activation(None, Some("HW-ONLINE-000001"), Platform::Hw, now, 2),
        &[&code],
    );
    assert_eq!(
        (status, ct.as_str()),
        (200, crate::routes::COSE),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let l = decode_license_unverified(&body).unwrap().to_data();
    assert_eq!(l.serial, hw);
    assert_eq!(l.previous_serial.as_deref(), Some("HW-ONLINE-000001"));
    assert_eq!(l.platform, Platform::Hw);

    assert_eq!(server.metrics().count("activate", "ok"), 2);
    assert_eq!(server.metrics().count("renew", "ok"), 1);
    stop(&rt, server);
}

/// A device key no PBX of these tests uses: a rogue VM.
const ROGUE: [u8; 32] = [0x66; 32];

/// Every refusal of an activation to a device that is not the PBX's own is
/// one problem, byte for byte, whatever the PBX's state; the bound device
/// still learns its state; nothing is recorded.
fn activation_refusals_are_one_problem(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c, clock) = serve_with_clock(v, &rt, now);
    let entries = || {
        Ledger::open_read_only(&v.ledger_path())
            .unwrap()
            .queries()
            .head()
            .unwrap()
            .map_or(0, |(n, _)| n)
    };
    let expect = |body: &[u8], code: &[&str], want: (u16, &str)| -> Vec<u8> {
        let (status, ct, body) = c.activate_with(body, code);
        assert_eq!(
            problem(status, &ct, &body),
            (want.0, want.1.to_owned()),
            "{}",
            String::from_utf8_lossy(&body)
        );
        body
    };
    // A code that works, for a PBX of its own: it opens no other PBX.
    let waiting = add_pbx(v, Platform::Vm, None, now);
    let code = open_code(v, &waiting, 30, now);
    let voided = void_a_new_pbx(v, now);
    let before = entries();

    let mut bodies = Vec::new();
    let mut nonce = 100;
    let mut rogue = |serial: Option<&str>, hw: Option<&str>, platform, at: i64, given: &[&str]| {
        nonce += 1;
        expect(
            &activation_by(serial, hw, platform, at, nonce, ROGUE),
            given,
            (403, "activation-refused"),
        )
    };
    // A serial the registry never allocated, an appliance never entered.
    bodies.push(rogue(
        Some("SW-2026-999999"),
        None,
        Platform::Vm,
        now,
        &[&code],
    ));
    bodies.push(rogue(
        None,
        Some("HW-NOBODY-000001"),
        Platform::Hw,
        now,
        &[&code],
    ));
    // Activated already, by its SW serial and by its HW serial.
    bodies.push(rogue(Some(&v.serial), None, Platform::Hw, now, &[&code]));
    bodies.push(rogue(None, Some("HW-LOAD-000001"), Platform::Hw, now, &[]));
    // Voided.
    bodies.push(rogue(Some(&voided), None, Platform::Hw, now, &[&code]));
    // Waiting, but without its code.
    bodies.push(rogue(Some(&waiting), None, Platform::Vm, now, &[]));
    assert_eq!(entries(), before, "a refusal records nothing");
    // Stopped, then deleted, after a decrease to zero users.
    decommission(v, now);
    let before = entries();
    let stopped = T0 + 6 * 24 * HOUR;
    clock.set(stopped);
    bodies.push(rogue(
        Some(&v.serial),
        None,
        Platform::Hw,
        stopped,
        &[&code],
    ));
    let deleted = T0 + 15 * 24 * HOUR;
    clock.set(deleted);
    bodies.push(rogue(
        Some(&v.serial),
        None,
        Platform::Hw,
        deleted,
        &[&code],
    ));
    let first = String::from_utf8(bodies[0].clone()).unwrap();
    for b in &bodies {
        assert_eq!(String::from_utf8_lossy(b), first);
    }
    assert!(!first.contains("SW-"), "{first}");
    assert!(first.contains("tessera pbx activation"), "{first}");

    // The PBX's own device learns its state.
    expect(
        &activation(Some(&v.serial), None, Platform::Hw, deleted, 1),
        &[],
        (410, "deleted"),
    );
    clock.set(stopped);
    expect(
        &activation(Some(&v.serial), None, Platform::Hw, stopped, 2),
        &[],
        (403, "stopped"),
    );
    clock.set(now);
    // Stale: made outside the freshness window (before any lookup).
    expect(
        &activation(Some(&waiting), None, Platform::Vm, now - 2 * 24 * HOUR, 3),
        &[&code],
        (400, "stale"),
    );
    // A header that is no code: malformed, never repeated.
    let body = activation_by(Some(&waiting), None, Platform::Vm, now, 4, ROGUE);
    let long = "A".repeat(200);
    for bad in ["ABCDE-FGHJK", "ABCDE_FGHJK-MNPQR-STVWX", long.as_str()] {
        let p = expect(&body, &[bad], (400, "malformed-request"));
        assert!(!String::from_utf8_lossy(&p).contains("ABCDE-FGHJK\""));
    }
    expect(&body, &[&code, &code], (400, "malformed-request"));
    // The code holder's request for another platform than the registry
    // recorded: the rules of `tessera issue`.
    expect(
        &activation(Some(&waiting), None, Platform::Hw, now, 5),
        &[&code],
        (409, "refused"),
    );
    assert_eq!(entries(), before, "nothing was recorded");

    // Replayed: answered once, refused after.
    let first = activation(Some(&waiting), None, Platform::Vm, now, 6);
    assert_eq!(c.activate_with(&first, &[&code]).0, 200);
    expect(&first, &[&code], (409, "replay"));

    let m = server.metrics();
    assert_eq!(m.count("activate", "ok"), 1);
    assert_eq!(m.count("activate", "activation-refused"), 8);
    assert_eq!(m.count("activate", "malformed-request"), 4);
    assert_eq!(m.count("renew", "ok"), 0);
    stop(&rt, server);
}

/// The finding: a rogue VM naming the serial of a PBX the vendor entered
/// gets nothing without the PBX's activation code; the real VM with it
/// gets the license; the code then is used; expired and replaced codes
/// open nothing.
fn a_rogue_device_cannot_hijack_a_registered_pbx(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c, clock) = serve_with_clock(v, &rt, now);
    let vm = add_pbx(v, Platform::Vm, None, now);
    let code = open_code(v, &vm, 30, now);
    let refused = |body: Vec<u8>, given: &[&str]| {
        let (status, ct, body) = c.activate_with(&body, given);
        assert_eq!(
            problem(status, &ct, &body),
            (403, "activation-refused".to_owned())
        );
    };
    let licensed = || {
        Ledger::open_read_only(&v.ledger_path())
            .unwrap()
            .latest(&vm)
            .unwrap()
            .is_some()
    };
    // Without a code, with a wrong one.
    refused(
        activation_by(Some(&vm), None, Platform::Vm, now, 1, ROGUE),
        &[],
    );
    let wrong = tessera_verifier::activation::ActivationCode::from_random(&[3; 13]).to_string();
    refused(
        activation_by(Some(&vm), None, Platform::Vm, now, 2, ROGUE),
        &[&wrong],
    );
    assert!(!licensed(), "the PBX is still unlicensed");

    // The real device with the code.
    let (status, _, body) =
        c.activate_with(&activation(Some(&vm), None, Platform::Vm, now, 3), &[&code]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let l = decode_license_unverified(&body).unwrap().to_data();
    assert_eq!(l.serial, vm);

    // The code is used: another key with it is refused like everyone.
    refused(
        activation_by(Some(&vm), None, Platform::Vm, now, 4, ROGUE),
        &[&code],
    );
    // The real device asking again is told it is activated.
    let (status, ct, body) =
        c.activate_with(&activation(Some(&vm), None, Platform::Vm, now, 5), &[]);
    assert_eq!(
        problem(status, &ct, &body),
        (409, "already-activated".into())
    );

    // An expired code, and a code replaced by a newer one.
    let other = add_pbx(v, Platform::Vm, None, now);
    let short = open_code(v, &other, 1, now);
    clock.set(now + 25 * HOUR);
    let later = now + 25 * HOUR;
    refused(
        activation(Some(&other), None, Platform::Vm, later, 6),
        &[&short],
    );
    let replaced = open_code(v, &other, 30, later);
    let newest = open_code(v, &other, 30, later);
    refused(
        activation(Some(&other), None, Platform::Vm, later, 7),
        &[&replaced],
    );
    let (status, _, body) = c.activate_with(
        &activation(Some(&other), None, Platform::Vm, later, 8),
        &[&newest],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    stop(&rt, server);
}

/// Only the two media types the documentation names: `application/cose`
/// for the binary object and `text/plain` for its armor, each body what
/// its type says; type names without regard to case, a UTF-8 charset on
/// the text. Anything else is 415 and records nothing, on both routes.
#[test]
fn only_the_documented_media_types_are_accepted() {
    let v = Vendor::new();
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let (server, c) = serve(&v, &rt, now, no_limits());
    let binary = renewal(&v.serial, now, 1);
    let armored = armor::encode(&binary, armor::LABEL_REQUEST);
    let refused: &[(&[&str], &[u8])] = &[
        (&[], &binary),
        (&["application/octet-stream"], &binary),
        (&["text/plain"], &binary),
        (&["text/plain; charset=utf-8"], &binary),
        (&["application/cose"], armored.as_bytes()),
        (&["application/json"], b"{}"),
        (&["text/html"], armored.as_bytes()),
        (&["text/plain; charset=iso-8859-1"], armored.as_bytes()),
        (&["application/cose", "application/cose"], &binary),
        (&["application/cose-key"], &binary),
        (&["text/plain; charset"], armored.as_bytes()),
    ];
    for path in ["/v1/renew", "/v1/activate"] {
        for (types, body) in refused {
            let (status, ct, answer) = c.post_with(path, types, body);
            assert_eq!(
                problem(status, &ct, &answer),
                (415, "unsupported-media-type".into()),
                "{path} {types:?}"
            );
            let detail = serde_json::from_slice::<serde_json::Value>(&answer).unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(detail.contains("application/cose"), "{detail}");
            assert!(!detail.contains('\u{1b}'), "{detail}");
        }
    }
    assert_eq!(
        v.history().len(),
        1,
        "a refused media type recorded something"
    );
    assert_eq!(
        server.metrics().count("renew", "unsupported-media-type"),
        11
    );

    // The accepted spellings reach the rules: renewed, one after another.
    let accepted: &[(&str, bool)] = &[
        ("Application/COSE", false),
        ("application/cose; cose-type=\"cose-sign1\"", false),
        ("TEXT/PLAIN; charset=UTF-8", true),
        ("text/plain;charset=\"us-ascii\"", true),
        ("text/plain", true),
    ];
    for (nonce, (ct, text)) in (10..).zip(accepted) {
        let request = renewal(&v.serial, now, nonce);
        let body = if *text {
            armor::encode(&request, armor::LABEL_REQUEST).into_bytes()
        } else {
            request
        };
        let (status, _, answer) = c.post("/v1/renew", ct, &body);
        assert_eq!(status, 200, "{ct}: {}", String::from_utf8_lossy(&answer));
    }
    // Armored text with mail quoting and CRLF is still armored text.
    let quoted = armor::encode(&renewal(&v.serial, now, 20), armor::LABEL_REQUEST)
        .lines()
        .map(|l| format!("> {l}\r\n"))
        .collect::<String>();
    assert_eq!(c.post("/v1/renew", "text/plain", quoted.as_bytes()).0, 200);
    // Text that is no armor is a malformed request, not a media type.
    let (status, ct, answer) = c.post("/v1/renew", "text/plain", b"hello");
    assert_eq!(
        problem(status, &ct, &answer),
        (400, "malformed-request".into())
    );
    // On /v1/activate an accepted type reaches the rules (this PBX is
    // activated already).
    let (status, ct, answer) = c.post(
        "/v1/activate",
        "Application/Cose",
        &renewal(&v.serial, now, 30),
    );
    assert_eq!(
        problem(status, &ct, &answer),
        (409, "already-activated".into())
    );
    assert_eq!(v.history().len(), 7);
    stop(&rt, server);
}

/// A ledger edited outside tessera while the service runs: every device
/// request is 503 `ledger-modified` with nothing written, `/readyz` says
/// not ready from then on (load balancers stop sending), `/healthz` still
/// says the process lives. On SQLite the edit is seen at the next commit;
/// on PostgreSQL a process checks the views at its first writer only
/// (docs/operations.md, "Edited views stop the writers"), so there the
/// edit comes before the service's first request.
fn a_ledger_modified_while_serving_is_503_and_not_ready(v: &Vendor) {
    let rt = runtime();
    let now = T0 + 20 * HOUR;
    let (server, c) = serve(v, &rt, now, no_limits());
    if !v.postgres_ledger() {
        assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);
    }
    let (status, text) = c.get("/readyz");
    assert_eq!(status, 200, "{text}");
    let before = v.history().len();

    v.edit_outside_tessera("DELETE FROM hw_serials");
    for nonce in [2, 3] {
        let (status, ct, body) = c.renew(&renewal(&v.serial, now, nonce));
        assert_eq!(problem(status, &ct, &body), (503, "ledger-modified".into()));
    }
    let (status, ct, body) = c.activate(&renewal(&v.serial, now, 4));
    assert_eq!(problem(status, &ct, &body), (503, "ledger-modified".into()));
    assert_eq!(v.history().len(), before, "something was written");
    // Not ready from now on, though the process lives.
    for _ in 0..2 {
        let mut r = c.agent.get(format!("{}/readyz", c.base)).call().unwrap();
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        let body = r.body_mut().read_to_vec().unwrap();
        assert_eq!(
            problem(r.status().as_u16(), &ct, &body),
            (503, "ledger-modified".into())
        );
        let detail = String::from_utf8_lossy(&body).into_owned();
        assert!(detail.contains("tessera ledger verify"), "{detail}");
    }
    assert_eq!(c.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(server.metrics().count("renew", "ledger-modified"), 2);
    assert_eq!(server.metrics().count("activate", "ledger-modified"), 1);
    stop(&rt, server);
}

on_both_backends!(a_group_commit_refuses_a_forged_last_checkpoint);

/// Replaces the bytes of the ledger's last checkpoint, as someone with
/// write access to the database can.
fn set_last_checkpoint(v: &Vendor, entries: u64, bytes: &[u8]) {
    let hex = hex::encode(bytes);
    v.edit_outside_tessera(&if v.postgres_ledger() {
        format!("UPDATE checkpoints SET bytes = '\\x{hex}'::bytea WHERE entries = {entries}")
    } else {
        format!("UPDATE checkpoints SET bytes = X'{hex}' WHERE entries = {entries}")
    });
}

/// The server's commits verify the ledger's last checkpoint under its
/// keyring before writing: one signed by a key the keyring does not hold,
/// or naming a keyring key (here a retired one) over a signature it did
/// not make, is refused as a modified ledger (503 `ledger-modified`,
/// until a restart) and nothing is written; the genuine checkpoint put
/// back, a restarted service renews.
fn a_group_commit_refuses_a_forged_last_checkpoint(v: &Vendor) {
    use tessera_keys::{KeyRecord, Keyring};
    let mut ring = Keyring::new();
    let from = chrono::DateTime::from_timestamp(T0 - 400 * 86_400, 0).unwrap();
    ring.add(KeyRecord::new(samples::TEST_KEY_1_PUBLIC, "2025", from))
        .unwrap();
    ring.add(KeyRecord::new(v.v.signer.public_key(), "2026", from))
        .unwrap();
    ring.set_active(&v.v.signer.kid()).unwrap();
    let old = tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC);
    ring.retire(&old).unwrap();
    let path = v.v.dir.join("keyring.toml");
    ring.save(&path).unwrap();

    let genuine = Ledger::open_read_only(&v.ledger_path())
        .unwrap()
        .latest_checkpoint()
        .unwrap();
    let mallory = tessera_signer::FileSigner::generate().unwrap();
    let rt = runtime();
    let now = T0 + 20 * HOUR;
    let serve_with_keyring = || {
        let mut settings = v.settings(Clock::manual(now), no_limits());
        settings.key.keyring = Some(path.clone());
        let server = rt.block_on(start(settings)).unwrap();
        let c = Client::new(&v.pki, server.url());
        (server, c)
    };
    for (n, kid) in [(1, mallory.kid()), (2, old)] {
        let forged =
            tessera_verifier::encode::sign_checkpoint(&genuine.data, &kid, |m| mallory.sign(m))
                .unwrap();
        set_last_checkpoint(v, genuine.data.entries, &forged);
        let (server, c) = serve_with_keyring();
        let (status, ct, body) = c.renew(&renewal(&v.serial, now, n));
        assert_eq!(
            problem(status, &ct, &body),
            (503, "ledger-modified".into()),
            "{n}"
        );
        assert_eq!(v.history().len(), 1, "{n}");
        stop(&rt, server);
    }
    set_last_checkpoint(v, genuine.data.entries, &genuine.bytes);
    let (server, c) = serve_with_keyring();
    let (status, _, body) = c.renew(&renewal(&v.serial, now, 3));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(v.history().len(), 2);
    stop(&rt, server);
}

/// The activation code header: absent is `None`; a value over the cap,
/// not ASCII, given twice or no code is `malformed-request`, never a
/// panic, and never repeated in the problem.
#[test]
fn the_activation_code_header_is_checked_before_use() {
    use crate::problem::Kind;
    use axum::http::{HeaderMap, HeaderValue};
    use tessera_verifier::activation::{ActivationCode, HEADER};
    let read = |values: &[&[u8]]| {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        crate::routes::activation_code(&h)
    };
    assert!(read(&[]).unwrap().is_none());
    let code = ActivationCode::from_random(&[9; 13]);
    let text = code.to_string();
    assert_eq!(read(&[text.as_bytes()]).unwrap(), Some(code.clone()));
    assert_eq!(
        read(&[format!(" {} ", text.to_lowercase()).as_bytes()]).unwrap(),
        Some(code)
    );
    for bad in [
        &b"\xc3\x84BCDE-FGHJK-MNPQR-STVWX"[..],
        &[b'A'; 10_000][..],
        b"ABCDE-FGHJK-MNPQR-STVW",
        b"ABCDE;FGHJK-MNPQR-STVWX",
    ] {
        let p = read(&[bad]).unwrap_err();
        assert_eq!(p.kind(), Kind::MalformedRequest);
        assert!(
            !p.detail.contains("AAAAAAAA") && !p.detail.contains("FGHJK"),
            "{}",
            p.detail
        );
    }
    let p = read(&[text.as_bytes(), text.as_bytes()]).unwrap_err();
    assert_eq!(p.kind(), Kind::MalformedRequest);
}

/// Every refusal of the device routes whose work reads the ledger (and
/// the ones before it, for one rule) is answered no sooner than
/// [`REFUSAL_FLOOR`] after its request arrived, whatever the lookups
/// found: measured by the client, whose clock starts before the request
/// arrives and stops after the answer left. The PBX's own spent budget
/// (429) is not held back.
fn refusals_answer_no_sooner_than_the_floor(v: &Vendor) {
    use crate::limits::REFUSAL_FLOOR;
    use std::time::Instant;

    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let registered = add_pbx(v, Platform::Vm, None, now);
    let voided = void_a_new_pbx(v, now);
    let (server, c) = serve(v, &rt, now, budget_of(1));
    let timed = |send: &dyn Fn() -> (u16, String, Vec<u8>)| {
        let started = Instant::now();
        let (status, ct, body) = send();
        let took = started.elapsed();
        (problem(status, &ct, &body), took)
    };
    // A license spends the PBX's only token.
    assert_eq!(c.renew(&renewal(&v.serial, now, 1)).0, 200);

    let mut nonce = 10;
    let mut next = || {
        nonce += 1;
        nonce
    };
    // What, the body, the path, the problem expected.
    type Case<'a> = (&'a str, Vec<u8>, &'a str, (u16, &'a str));
    let cases: Vec<Case<'_>> = vec![
        (
            "activation of a licensed serial",
            activation_by(Some(&v.serial), None, Platform::Vm, now, next(), ROGUE),
            "/v1/activate",
            (403, "activation-refused"),
        ),
        (
            "activation of a registered serial",
            activation_by(Some(&registered), None, Platform::Vm, now, next(), ROGUE),
            "/v1/activate",
            (403, "activation-refused"),
        ),
        (
            "activation of an unknown serial",
            activation_by(
                Some("SW-2026-000777"),
                None,
                Platform::Vm,
                now,
                next(),
                ROGUE,
            ),
            "/v1/activate",
            (403, "activation-refused"),
        ),
        (
            "activation of a voided serial",
            activation_by(Some(&voided), None, Platform::Vm, now, next(), ROGUE),
            "/v1/activate",
            (403, "activation-refused"),
        ),
        (
            "forged renewal of a PBX whose budget is spent",
            forged(&v.serial, now, next(), 0x33),
            "/v1/renew",
            (403, "unknown-device-key"),
        ),
        (
            "renewal of an unknown serial",
            renewal("SW-2026-000777", now, next()),
            "/v1/renew",
            (404, "unknown"),
        ),
        (
            "renewal of a voided serial",
            renewal(&voided, now, next()),
            "/v1/renew",
            (410, "voided"),
        ),
        (
            "a replayed renewal",
            renewal(&v.serial, now, 1),
            "/v1/renew",
            (409, "replay"),
        ),
        (
            "a body that is no request",
            b"not a request".to_vec(),
            "/v1/renew",
            (400, "malformed-request"),
        ),
    ];
    for round in 0..3 {
        for (what, body, path, want) in &cases {
            let (got, took) = timed(&|| c.post(path, crate::routes::COSE, body));
            assert_eq!(got, (want.0, want.1.to_owned()), "{what}");
            assert!(
                took >= REFUSAL_FLOOR,
                "{what} (round {round}) answered after {took:?}, before the floor of {REFUSAL_FLOOR:?}"
            );
        }
    }
    // The PBX's own device, its budget spent: told as soon as the rules
    // found the request its own (only it hears this answer, and a forger
    // is told `unknown-device-key` at the floor whatever the budget). The
    // fastest of three is under the floor, which a 429 never waits for.
    let fastest = (100..103)
        .map(|nonce| {
            let (got, took) = timed(&|| c.renew(&renewal(&v.serial, now, nonce)));
            assert_eq!(got, (429, "rate-limited".to_owned()));
            took
        })
        .min()
        .unwrap();
    assert!(fastest < REFUSAL_FLOOR, "{fastest:?}");
    stop(&rt, server);
}

/// A scrape, in plain HTTP on a connection of its own: the status line,
/// or what went wrong. Bounded by `within`.
fn scrape(addr: core::net::SocketAddr, within: Duration) -> Result<String, String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(within))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The metrics listener's connections, all taken by clients that send
/// nothing (or half a request line), do not keep a scrape waiting: it is
/// answered at once, the oldest silent connection closed for it; and a
/// silent connection is closed after [`crate::serve::METRICS_HEADER_TIMEOUT`],
/// not held for the handshake timeout. Bounded: every read has a timeout.
#[test]
fn idle_connections_cannot_starve_a_scrape() {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::time::Instant;

    let v = Vendor::new();
    let rt = runtime();
    let now = T0 + 2 * HOUR;
    let mut s = v.settings(Clock::manual(now), no_limits());
    s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = rt.block_on(start(s)).unwrap();
    let addr = server.metrics_addr().unwrap();
    let bound = Duration::from_secs(1);
    assert!(bound < crate::serve::METRICS_HEADER_TIMEOUT);

    let mut idle: Vec<TcpStream> = Vec::new();
    for round in 0..3 {
        // As many silent connections as the listener takes, every other
        // one with half a request line.
        for i in 0..16 {
            let mut c = TcpStream::connect(addr).unwrap();
            if i % 2 == 1 {
                c.write_all(b"GET /met").unwrap();
            }
            idle.push(c);
        }
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let status = scrape(addr, Duration::from_secs(5));
        let took = started.elapsed();
        assert_eq!(status.as_deref(), Ok("HTTP/1.1 200 OK"), "round {round}");
        assert!(took < bound, "round {round}: the scrape took {took:?}");
    }

    // A lone silent connection is closed after the header timeout.
    drop(idle);
    std::thread::sleep(Duration::from_millis(100));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let started = Instant::now();
    // Closed: the end of the stream (after a 408, if any) or a reset.
    let read = c.read_to_end(&mut Vec::new());
    let took = started.elapsed();
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?} after {took:?}"
    );
    assert!(
        took < crate::serve::METRICS_HEADER_TIMEOUT + Duration::from_secs(2),
        "closed after {took:?}"
    );
    stop(&rt, server);
}
