//! Generates the input files of the golden CLI tests (`tests/cmd/*.in/`).
//!
//! Run once after changing what the cases need, then review and commit:
//!
//! ```sh
//! cargo test -p tessera-issuer --test fixtures -- --ignored
//! ```
//!
//! Keys are encrypted with cheap test parameters under the passphrase in
//! `PASSPHRASE` (the golden tests set `TESSERA_PASSPHRASE` to it); they are
//! test keys, never to be used for real licenses. Requests are the
//! verifier's samples and derivatives, signed deterministically.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use tessera_keys::{KeyRecord, Keyring};
use tessera_signer::{EncryptionParams, Passphrase};
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity, Platform};
use tessera_verifier::encode::{sign_request, RequestData};
use tessera_verifier::{armor, samples};

/// The passphrase of the fixture keys.
pub const PASSPHRASE: &str = "correct horse battery staple";

fn cmd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd")
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), contents).unwrap();
}

fn request(r: &RequestData, seed: [u8; 32]) -> String {
    let bytes = sign_request(r, samples::seed_signer(seed)).unwrap();
    armor::encode(&bytes, armor::LABEL_REQUEST)
}

/// A request of a device with the given raw identity, signed by a device
/// key from `seed`.
fn device(
    platform: Platform,
    serial: Option<&str>,
    hw: Option<&str>,
    identity: &[(ComponentKind, &str)],
    seed: u8,
) -> String {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mut r = samples::request();
    r.platform = platform;
    r.serial = serial.map(str::to_owned);
    r.hw_serial = hw.map(str::to_owned);
    r.nonce = [seed; 16];
    r.device_key = key.verifying_key().to_bytes();
    r.identity = identity
        .iter()
        .map(|(kind, v)| Identity {
            kind: *kind,
            digest: component_digest(&r.salt, *kind, v.as_bytes()),
        })
        .collect();
    request(&r, [seed; 32])
}

fn hw_box(hw: &str, n: u8, seed: u8) -> String {
    device(
        Platform::Hw,
        None,
        Some(hw),
        &[
            (ComponentKind::HW_SERIAL, hw),
            (ComponentKind::NIC_MAC, &format!("00163e0100{n:02x}")),
            (
                ComponentKind::SYSTEM_UUID,
                &format!("4c4c4544-0000-0000-0000-0000000001{n:02x}"),
            ),
            (ComponentKind::DISK_SERIAL, &format!("DISK-{n:04}")),
        ],
        seed,
    )
}

fn vm(serial: &str, seed: u8) -> String {
    device(
        Platform::Vm,
        Some(serial),
        None,
        &[
            (
                ComponentKind::SYSTEM_UUID,
                "4c4c4544-0000-0000-0000-0000000000aa",
            ),
            (
                ComponentKind::MACHINE_ID,
                "0123456789abcdef0123456789abcdef",
            ),
            (ComponentKind::NIC_MAC, "00163e0000aa"),
        ],
        seed,
    )
}

fn cloud(serial: &str, seed: u8) -> String {
    device(
        Platform::Cloud,
        Some(serial),
        None,
        &[
            (
                ComponentKind::SYSTEM_UUID,
                "4c4c4544-0000-0000-0000-0000000000cc",
            ),
            (
                ComponentKind::MACHINE_ID,
                "cccccccccccccccccccccccccccccccc",
            ),
        ],
        seed,
    )
}

const ORDER: &str = include_str!("../examples/order.toml");

fn order_with(changes: &[(&str, &str)]) -> String {
    let mut o = ORDER.to_owned();
    for (from, to) in changes {
        assert!(o.contains(from), "{from}");
        o = o.replacen(from, to, 1);
    }
    o
}

const MINIMAL_VM: &str = "customer = \"Example Dental Clinic\"
pbx_name = \"Failover\"
platform = \"vm\"
cycle = \"yearly\"
term_start = \"2026-01-01\"

[profiles]
PBX-BASIC = 5
";

fn keys(dir: &Path) {
    let pass = Passphrase::new(PASSPHRASE).unwrap();
    let params = EncryptionParams::insecure_for_tests();
    let _ = std::fs::remove_file(dir.join("signing.pem"));
    let _ = std::fs::remove_file(dir.join("other.pem"));
    std::fs::create_dir_all(dir).unwrap();
    let info =
        tessera_signer::generate_to_file_with(&dir.join("signing.pem"), &pass, params).unwrap();
    write(dir, "signing.pem.pub", info.to_pem().unwrap());
    let other =
        tessera_signer::generate_to_file_with(&dir.join("other.pem"), &pass, params).unwrap();
    write(dir, "other.pem.pub", other.to_pem().unwrap());
    let mut ring = Keyring::new();
    let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    ring.add(KeyRecord::new(
        info.public_key,
        "fixture key (tests only)",
        from,
    ))
    .unwrap();
    ring.set_active(&info.kid).unwrap();
    write(dir, "keyring.toml", ring.to_toml().unwrap());
}

/// A ledger with two licenses, signed by the fixture key in `dir`, whose
/// first license's operator was edited in the licenses view outside
/// tessera; next to it an empty file and a text file where a ledger
/// should be.
fn tampered_ledger(dir: &Path) {
    use tessera_issuer::catalog::Catalog;
    use tessera_issuer::issuance::{issue, IssueOptions, Issuer};
    use tessera_issuer::ledger::Ledger;
    use tessera_issuer::order::Order;

    let path = dir.join("tampered.db");
    let _ = std::fs::remove_file(&path);
    let now: DateTime<Utc> = "2026-01-02T09:00:00Z".parse().unwrap();
    let pass = Passphrase::new(PASSPHRASE).unwrap();
    let signer = tessera_signer::load_signer(&dir.join("signing.pem"), &pass).unwrap();
    let catalog = Catalog::default_catalog().unwrap();
    let mut ledger =
        Ledger::create(&path, &catalog.vendor, &signer, "alice", now.timestamp()).unwrap();
    let issuer = Issuer {
        catalog: &catalog,
        signer: &signer,
        operator: "alice",
    };
    let order = Order::parse("order.toml", ORDER, false).unwrap();
    for n in 1..=2u8 {
        let text = hw_box(&format!("HW-T000-{n:04}"), n, 60 + n);
        let mut buf = vec![0u8; 4096];
        let bytes = armor::decode(&text, armor::LABEL_REQUEST, &mut buf).unwrap();
        let req = tessera_verifier::decode_request(bytes).unwrap().to_data();
        let mut w = ledger.writer(&signer, "alice").unwrap();
        let opts = IssueOptions {
            now,
            ..IssueOptions::default()
        };
        issue(&mut w, &issuer, &order, &req, &opts).unwrap();
        w.commit().unwrap();
    }
    drop(ledger);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE licenses SET operator = 'mallory' WHERE serial = 'SW-2026-000001'",
        [],
    )
    .unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    drop(conn);
    for ext in ["-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(ext);
        let _ = std::fs::remove_file(p);
    }
    write(dir, "empty.db", "");
    write(dir, "foreign.db", "ledger = the accounts of 2025\n");
}

/// Only the ledgers of `errors.in` (its keys stay, so the other cases
/// keep their output).
#[test]
#[ignore = "writes the fixtures; run by hand"]
fn regenerate_ledgers() {
    tampered_ledger(&cmd_dir().join("errors.in"));
}

#[test]
#[ignore = "writes the fixtures; run by hand"]
fn regenerate() {
    let base = cmd_dir();

    // keys.trycmd: a public key to add to a keyring.
    let dir = base.join("keys.in");
    keys(&dir);
    for f in ["signing.pem", "keyring.toml", "other.pem", "other.pem.pub"] {
        let _ = std::fs::remove_file(dir.join(f));
    }

    // issue.trycmd: the whole single-license flow and every refusal.
    let dir = base.join("issue.in");
    keys(&dir);
    write(
        &dir,
        "device.req",
        request(&samples::request(), samples::DEVICE_KEY_SEED),
    );
    let mut renewal = samples::renewal_request();
    renewal.serial = Some("SW-2026-000001".into());
    renewal.created_at = samples::T0 + 70 * samples::DAY;
    write(
        &dir,
        "device-renewal.req",
        request(&renewal, samples::DEVICE_KEY_SEED),
    );
    write(&dir, "newbox.req", hw_box("HW-9C1D-0007", 7, 21));
    branch_request(&dir);
    write(&dir, "vm.req", vm("SW-2026-000002", 22));
    write(&dir, "cloud.req", cloud("SW-2026-700001", 23));
    write(&dir, "vm2.req", vm("SW-2026-000003", 24));
    write(&dir, "order.toml", ORDER);
    write(
        &dir,
        "order-more.toml",
        order_with(&[("UC-PREMIUM = 5", "UC-PREMIUM = 9")]),
    );
    write(
        &dir,
        "order-fewer.toml",
        order_with(&[
            ("UC-PREMIUM = 5", "UC-PREMIUM = 7"),
            ("PBX-BASIC = 20", "PBX-BASIC = 16"),
        ]),
    );
    write(
        &dir,
        "order-hw-storage.toml",
        order_with(&[
            ("UC-PREMIUM = 5", "UC-PREMIUM = 9"),
            ("storage_units = 0", "storage_units = 5"),
        ]),
    );
    write(
        &dir,
        "order-cloud-lifetime.toml",
        "customer = \"Example Dental Clinic\"\nplatform = \"cloud\"\ncycle = \"lifetime\"\nterm_start = \"2026-01-01\"\n\n[profiles]\nUC-BUSINESS = 10\n",
    );
    write(
        &dir,
        "order-vm-lifetime-services.toml",
        MINIMAL_VM.replace("cycle = \"yearly\"", "cycle = \"lifetime\"")
            + "\n[services.sound-pack]\n",
    );
    write(
        &dir,
        "order-client.toml",
        MINIMAL_VM.replace(
            "term_start = \"2026-01-01\"",
            "term_start = \"2026-01-01\"\nsharing = \"client-of SW-2026-000001\"",
        ),
    );
    write(
        &dir,
        "order-cloud-client.toml",
        "customer = \"Example Dental Clinic\"\nplatform = \"cloud\"\ncycle = \"monthly\"\nterm_start = \"2026-01-01\"\nsharing = \"client-of SW-2026-000001\"\n",
    );
    write(&dir, "order-vm.toml", MINIMAL_VM);
    write(
        &dir,
        "order-vm-zero.toml",
        MINIMAL_VM.replace("PBX-BASIC = 5", "PBX-BASIC = 0"),
    );
    let lifetime = MINIMAL_VM
        .replace("cycle = \"yearly\"", "cycle = \"lifetime\"")
        .replace("pbx_name = \"Failover\"", "pbx_name = \"Lab\"");
    write(&dir, "order-vm-lifetime.toml", &lifetime);
    write(
        &dir,
        "order-vm-lifetime-fewer.toml",
        lifetime.replace("PBX-BASIC = 5", "PBX-BASIC = 4"),
    );
    write(
        &dir,
        "order-client-ok.toml",
        "customer = \"Example Dental Clinic\"\npbx_name = \"Lab\"\nplatform = \"vm\"\ncycle = \"yearly\"\nterm_start = \"2026-01-01\"\nsharing = \"client-of SW-2026-000001\"\n",
    );
    write(
        &dir,
        "order-service-outside.toml",
        order_with(&[("start = \"2026-08-01\"", "start = \"2027-03-01\"")]),
    );
    let mut identity = String::from("sw_serial = \"SW-2026-000001\"\n");
    for (kind, raw) in samples::SAMPLE_DEVICE_RAW {
        let name = tessera_issuer::catalog::component_kind_name(kind);
        let raw = raw.trim();
        if kind == ComponentKind::HW_SERIAL {
            identity.push_str(&format!("hw_serial = \"{raw}\"\n"));
        } else {
            identity.push_str(&format!(
                "\n[[component]]\nkind = \"{name}\"\nvalue = \"{raw}\"\n"
            ));
        }
    }
    write(&dir, "device.toml", &identity);

    // bulk.trycmd: a rollout of four appliances, one bad row, one missing
    // request, then a re-run.
    let dir = base.join("bulk.in");
    keys(&dir);
    for n in 1..=4u8 {
        write(
            &dir,
            &format!("hw-{n}.req"),
            hw_box(&format!("HW-B000-{n:04}"), n, 40 + n),
        );
    }
    write(
        &dir,
        "base-order.toml",
        "customer = \"Example Retail Chain\"\nplatform = \"hw\"\ncycle = \"monthly\"\nterm_start = \"2026-01-01\"\nmodel = \"TA-2000\"\n\n[profiles]\nPBX-BASIC = 2\n",
    );
    write(&dir, "bulk.csv", include_str!("../examples/bulk.csv"));

    // errors.trycmd: broken inputs.
    let dir = base.join("errors.in");
    keys(&dir);
    write(
        &dir,
        "device.req",
        request(&samples::request(), samples::DEVICE_KEY_SEED),
    );
    write(&dir, "order.toml", ORDER);
    write(
        &dir,
        "order-typo.toml",
        order_with(&[(
            "cycle = \"yearly\"",
            "cycle = \"yearly\"\ncolour = \"blue\"",
        )]),
    );
    write(
        &dir,
        "order-unknown.toml",
        order_with(&[("UC-WIZYCONF = 2", "UC-WIZARD = 2")]),
    );
    write(
        &dir,
        "catalog-duplicate.toml",
        tessera_issuer::catalog::DEFAULT_CATALOG.replacen(
            "code = 2\nname = \"UC-ESSENTIAL\"",
            "code = 1\nname = \"UC-ESSENTIAL\"",
            1,
        ),
    );
    let lic_bytes = tessera_verifier::encode::sign_license(
        &samples::typical(),
        &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
        samples::seed_signer(samples::TEST_KEY_1_SEED),
    )
    .unwrap();
    tampered_ledger(&dir);
    let mut flipped = lic_bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    write(
        &dir,
        "sample.lic",
        armor::encode(&lic_bytes, armor::LABEL_LICENSE),
    );
    write(
        &dir,
        "tampered.lic",
        armor::encode(&flipped, armor::LABEL_LICENSE),
    );
    write(
        &dir,
        "sample-keyring.toml",
        format!(
            "format = 1\n\n[[key]]\nkid = \"{}\"\nlabel = \"RFC 8032 test key 1 (samples only)\"\npublic_key = \"{}\"\nvalid_from = 2025-01-01T00:00:00Z\nretired = false\n",
            hex::encode(tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC)),
            hex::encode(samples::TEST_KEY_1_PUBLIC)
        ),
    );
    next_requests(&base);
}

/// The inputs of `lifecycle.trycmd` only (its keys are new each time, so
/// the other cases keep theirs).
#[test]
#[ignore = "writes the fixtures; run by hand"]
fn regenerate_lifecycle() {
    let dir = cmd_dir().join("lifecycle.in");
    keys(&dir);
    for f in ["other.pem", "other.pem.pub"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    write(
        &dir,
        "device.req",
        request(&samples::request(), samples::DEVICE_KEY_SEED),
    );
    let mut renewal = samples::renewal_request();
    renewal.serial = Some("SW-2026-000001".into());
    renewal.created_at = samples::T0 + 70 * samples::DAY;
    write(
        &dir,
        "device-renewal.req",
        request(&renewal, samples::DEVICE_KEY_SEED),
    );
    write(&dir, "newbox.req", hw_box("HW-9C1D-0007", 7, 21));
    write(&dir, "vm.req", vm("SW-2026-000002", 22));
    write(&dir, "other-vm.req", vm("SW-2026-000001", 24));
    write(&dir, "cloud.req", cloud("SW-2026-700001", 23));
    write(&dir, "order.toml", ORDER);
    let more = order_with(&[("UC-PREMIUM = 5", "UC-PREMIUM = 9")]);
    let support = more.replacen(
        "[services.sound-pack]",
        "[services.extended-support]\n\n[services.sound-pack]",
        1,
    );
    let fewer = support
        .replacen("UC-PREMIUM = 9", "UC-PREMIUM = 7", 1)
        .replacen("PBX-BASIC = 20", "PBX-BASIC = 16", 1);
    write(&dir, "order-more.toml", &more);
    write(&dir, "order-support.toml", &support);
    write(&dir, "order-fewer.toml", &fewer);
    write(
        &dir,
        "order-hw-storage.toml",
        fewer.replacen("storage_units = 0", "storage_units = 5", 1),
    );
    write(
        &dir,
        "order-typo.toml",
        fewer.replacen("PBX-BASIC = 16", "PBX-BASIC = 200", 1),
    );
    let mut one = fewer.replacen("PBX-BASIC = 16", "PBX-BASIC = 1", 1);
    for p in [
        "UC-ESSENTIAL = 15",
        "UC-BUSINESS = 10",
        "UC-PREMIUM = 7",
        "UC-WIZYCONF = 2",
    ] {
        let (name, _) = p.split_once(" = ").unwrap();
        one = one.replacen(p, &format!("{name} = 0"), 1);
    }
    write(&dir, "order-one.toml", &one);
    next_requests(&cmd_dir());
}

/// The request of an appliance added with `pbx add --hw-serial` before
/// its activation; its HW serial as the agent read it (lower case,
/// spaces).
/// The device's next request after `text` (signed by `seed`): the same
/// device and serial, another nonce (`next` and `n` in its first five
/// bytes, so it is no other fixture's). A
/// request is answered once, so every license a case issues for a device
/// after its first answers one of these.
fn next_request(text: &str, seed: [u8; 32], n: u8) -> String {
    let mut buf = [0u8; tessera_verifier::MAX_OBJECT_LEN];
    let bytes = armor::decode(text, armor::LABEL_REQUEST, &mut buf).unwrap();
    let mut r = tessera_verifier::decode_request(bytes).unwrap().to_data();
    r.nonce[..4].copy_from_slice(b"next");
    r.nonce[4] = n;
    request(&r, seed)
}

/// The next requests of the devices of `issue.trycmd` and
/// `lifecycle.trycmd` (`device-2.req` ...: [`next_request`]).
fn next_requests(base: &Path) {
    let issue = base.join("issue.in");
    let read = |dir: &Path, name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let device = read(&issue, "device.req");
    let renewal = read(&issue, "device-renewal.req");
    let vm = read(&issue, "vm.req");
    let vm2 = read(&issue, "vm2.req");
    for n in 2..=4 {
        let next = next_request(&device, samples::DEVICE_KEY_SEED, n - 1);
        write(&issue, &format!("device-{n}.req"), next);
    }
    for n in 2..=3 {
        let next = next_request(&renewal, samples::DEVICE_KEY_SEED, n - 1);
        write(&issue, &format!("device-renewal-{n}.req"), next);
        write(
            &issue,
            &format!("vm-{n}.req"),
            next_request(&vm, [22; 32], n - 1),
        );
    }
    write(&issue, "vm2-2.req", next_request(&vm2, [24; 32], 1));
    let lifecycle = base.join("lifecycle.in");
    let device = read(&lifecycle, "device.req");
    write(
        &lifecycle,
        "device-2.req",
        next_request(&device, samples::DEVICE_KEY_SEED, 1),
    );
}

/// Only the next requests of `issue.in` and `lifecycle.in`
/// ([`next_requests`]).
#[test]
#[ignore = "writes the fixtures; run by hand"]
fn regenerate_next_requests() {
    next_requests(&cmd_dir());
}

fn branch_request(dir: &Path) {
    write(dir, "branch.req", hw_box(" hw-b000-0050 ", 50, 25));
}

/// `branch.req` of `lifecycle.trycmd` alone.
#[test]
#[ignore = "writes the fixtures; run by hand"]
fn regenerate_lifecycle_branch_request() {
    branch_request(&cmd_dir().join("lifecycle.in"));
}
