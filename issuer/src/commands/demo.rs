//! `tessera demo`: the whole flow on built-in samples, through the same
//! code paths as the real commands (keygen, issue, the verifier's runtime
//! `verify`), in a temporary folder, with no passphrase prompt and no
//! network.

use std::path::Path;

use chrono::Utc;
use tessera_verifier::encode::sign_request;
use tessera_verifier::entitlement::Grants;
use tessera_verifier::samples::{self, DEVICE_KEY_SEED};
use tessera_verifier::{armor, verify, DeviceIdentity, KeyEntry, State, Verdict};

use super::inspect::verdict_text;
use super::issue::{issue_one, summary_text};
use super::keys;
use super::Ctx;
use crate::calendar::{rfc3339_unix, DAY};
use crate::catalog::{category_name, Catalog};
use crate::cli::{Global, IssueArgs, KeyArgs, KeygenArgs, OutArgs, Pkcs11Args};
use crate::config::Config;
use crate::error::Error;
use crate::issuance::{random_id, Answer, Issued};
use crate::ledger::Ledger;
use crate::order::{Order, ServiceOrder};
use crate::output::write_atomic;

const EXAMPLE_ORDER: &str = include_str!("../../examples/order.toml");

fn out(text: &str) -> Result<(), Error> {
    super::print(text)
}

fn section(title: &str) -> Result<(), Error> {
    out(&format!("\n== {title} ==\n"))
}

/// The entitlements a decision grants, with catalog names.
fn grants_text(g: &Grants<'_>, catalog: &Catalog, now: i64) -> String {
    let mut s = String::new();
    let profiles: Vec<String> = g
        .profiles()
        .map(|p| format!("{} {}", catalog.profile_name(p.code), p.count))
        .collect();
    s.push_str(&format!(
        "  users        {} ({})\n",
        g.total_users(),
        profiles.join(", ")
    ));
    let visible: Vec<String> = g
        .visible_features()
        .map(|f| {
            format!(
                "{} {} ({})",
                catalog.feature_name(f.code),
                f.quantity,
                category_name(f.category)
            )
        })
        .collect();
    s.push_str(&format!("  features     {}\n", visible.join(", ")));
    let hidden: Vec<String> = g
        .features()
        .filter(|f| f.hidden)
        .map(|f| catalog.feature_name(f.code))
        .collect();
    s.push_str(&format!(
        "  hidden       {} (licensed, not shown to the customer)\n",
        hidden.join(", ")
    ));
    for b in g.bases() {
        let addons: Vec<String> = b
            .addons
            .map(|a| format!("{} {}", catalog.addon_name(a.code), a.count))
            .collect();
        s.push_str(&format!(
            "  base         {} {}: {}\n",
            catalog.base_name(b.code),
            b.count,
            addons.join(", ")
        ));
    }
    s.push_str(&format!(
        "  storage      {} units = {} GB\n",
        g.storage_units(),
        g.storage_gb()
    ));
    for sv in g.services() {
        s.push_str(&format!(
            "  service      {} {} .. {} ({})\n",
            catalog.service_name(sv.code),
            rfc3339_unix(sv.start),
            rfc3339_unix(sv.end),
            if sv.active_at(now) {
                "running"
            } else {
                "not started"
            }
        ));
    }
    s
}

/// `tessera demo`.
///
/// # Errors
/// Any step's error (none expected: everything is built in).
pub fn run() -> Result<(), Error> {
    let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let tmp = dir.path();
    let now = Utc::now();
    let global = Global {
        ledger: Some(tmp.join("tessera.db")),
        operator: Some("demo".into()),
        ..Global::default()
    };
    // The demo is self-contained: no configuration file, no environment.
    let ctx = Ctx::with_config(global, Config::default().with_env(|_| None))?;
    let catalog = ctx.catalog()?;

    out("tessera demo: a license for a HW appliance, from order to firmware\n")?;
    out(&format!(
        "working in {} (removed at the end)\n",
        tmp.display()
    ))?;

    section("1. signing key (tessera keygen)")?;
    // A random passphrase in a file: the real key file format, no prompt.
    let passphrase = tmp.join("passphrase");
    write_atomic(&passphrase, hex::encode(random_id()?).as_bytes(), false)?;
    let keygen = KeygenArgs {
        out: Some(tmp.join("signing.pem")),
        pkcs11: None,
        token: Pkcs11Args::default(),
        keyring: Some(tmp.join("keyring.toml")),
        // A keyring of the demo's own, in its scratch folder.
        rehearsal_copy: true,
        label: "demo signing key".into(),
        valid_from: Some(rfc3339_unix(now.timestamp() - DAY)),
        passphrase_file: Some(passphrase.clone()),
        json: false,
    };
    let (info, _) = keys::generate(&ctx, &keygen)?;
    out(&format!(
        "kid {}: encrypted signing.pem (PBKDF2 600 000 iterations), signing.pem.pub, active in keyring.toml\n",
        info.kid_hex()
    ))?;

    // The ledger exists before anything is issued into it.
    let signer = super::load_signer(
        &ctx,
        &KeyArgs {
            key: vec![tmp.join("signing.pem")],
            passphrase_file: Some(passphrase.clone()),
            keyring: Some(tmp.join("keyring.toml")),
            token: Pkcs11Args::default(),
        },
    )?;
    let checkpoint = Ledger::init(
        &tmp.join("tessera.db"),
        &catalog.vendor,
        &signer,
        "demo",
        ctx.now.timestamp(),
    )?;
    out(&format!(
        "ledger tessera.db (tessera ledger init): id {}, vendor {}, first checkpoint signed by kid {}\n",
        hex::encode(checkpoint.data.ledger_id),
        checkpoint.data.issuer,
        hex::encode(checkpoint.kid)
    ))?;

    section("2. order and device request")?;
    let order_path = tmp.join("order.json");
    let mut order = Order::parse("examples/order.toml", EXAMPLE_ORDER, false)?;
    let today = now.date_naive();
    order.term_start = today.to_string();
    order.services.insert(
        "sound-pack".into(),
        ServiceOrder {
            start: Some((today + chrono::Days::new(92)).to_string()),
        },
    );
    write_atomic(&order_path, order.to_json().as_bytes(), false)?;
    out(&format!(
        "order: {} / {}, {} {}, {} users, storage {} units, services {}\n",
        order.customer,
        order.pbx_name,
        order.platform.as_str(),
        order.cycle.as_str(),
        order.profiles.values().map(|c| u64::from(*c)).sum::<u64>(),
        order.storage_units,
        order
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let mut request = samples::request();
    request.created_at = now.timestamp() - 3_600;
    request.nonce = random_id()?;
    let request_bytes = sign_request(&request, samples::seed_signer(DEVICE_KEY_SEED))
        .map_err(|_| Error::Usage("the sample request does not encode".into()))?;
    let request_path = tmp.join("device.req");
    let request_text = armor::encode(&request_bytes, armor::LABEL_REQUEST);
    write_atomic(&request_path, request_text.as_bytes(), false)?;
    out(&format!(
        "request from appliance {} (first activation: no SW serial yet), {} identity digests, {} bytes:\n{request_text}",
        request.hw_serial.as_deref().unwrap_or("-"),
        request.identity.len(),
        request_bytes.len()
    ))?;

    section("3. issue (tessera issue --order order.json --request device.req)")?;
    let license_path = tmp.join("device.lic");
    let args = IssueArgs {
        order: Some(order_path),
        request: Some(request_path),
        change: false,
        new_device_key: false,
        retire_old_keys: false,
        approval: None,
        bulk: None,
        batch_size: 1,
        threads: None,
        key: KeyArgs {
            key: vec![tmp.join("signing.pem")],
            passphrase_file: Some(passphrase),
            keyring: Some(tmp.join("keyring.toml")),
            token: Pkcs11Args::default(),
        },
        out: OutArgs {
            output: Some(license_path.clone()),
            force: false,
            json: false,
            qr_png: None,
            qr_svg: None,
        },
    };
    let issued = match issue_one(&ctx, &args, order_path_of(&args)?, request_path_of(&args)?)? {
        Answer::New(issued) => issued,
        // The demo's ledger is new: its request was never answered.
        Answer::Again(record) => Issued::recorded(*record)?,
    };
    write_atomic(&license_path, issued.armored().as_bytes(), false)?;
    out(&format!("{}\n", summary_text(&issued, None)))?;
    out(&format!(
        "license, {} bytes of COSE_Sign1:\n{}",
        issued.record.row.bytes.len(),
        issued.armored()
    ))?;

    section("4. firmware verifies it (tessera_verifier::verify)")?;
    let keyring: Vec<KeyEntry> =
        tessera_keys::Keyring::load(&tmp.join("keyring.toml"))?.to_entries();
    let mut identity: DeviceIdentity = samples::sample_identity();
    out("device identity: raw probe values (HW serial, NIC MAC, DMI UUID, disk serial), normalized by the verifier\n")?;
    let bytes = &issued.record.row.bytes;
    let mut state = State::new();
    let at = now.timestamp();
    let d = verify(bytes, &keyring, &identity, at, &mut state).map_err(|source| {
        Error::Verification {
            path: "device.lic".into(),
            source,
        }
    })?;
    out(&format!(
        "  decision     {} ({} of {} binding components match, threshold {})\n  serial       {} (was HW serial {})\n  next check   {}\n",
        verdict_text(d.verdict()),
        d.matched_components(),
        d.license().binding().components.len(),
        d.license().binding().threshold,
        d.license().serial(),
        d.license().previous_serial().unwrap_or("-"),
        rfc3339_unix(d.next_check()),
    ))?;
    if let Some(g) = d.grants() {
        out(&grants_text(&g, &catalog, at))?;
    }
    // Firmware persists its new SW serial and the state.
    identity
        .set_sw_serial(d.license().serial())
        .map_err(|e| Error::Usage(format!("SW serial: {e}")))?;
    let mut flash = state.to_bytes();

    section("5. offline: no renewal reaches the device")?;
    let lease_end = issued.license.lease_end;
    out(&format!(
        "lease ends {}; grace {} days, then {}\n",
        rfc3339_unix(lease_end),
        issued.license.policy.grace / 86_400,
        crate::catalog::after_grace_name(issued.license.policy.after_grace)
    ))?;
    out(&format!(
        "  {:<15} {:<20}  {:<9}  {}\n",
        "DAY", "TIME", "CALLS", "VERDICT"
    ))?;
    // One check a day happens on the device; these are the days that
    // show each change.
    let days: [i64; 12] = [-10, -5, 0, 1, 4, 7, 10, 13, 14, 15, 17, 20];
    let mut saw_grace = false;
    let mut saw_emergency = false;
    for day in days {
        let t = lease_end + day * DAY;
        let mut state = State::from_bytes(&flash).map_err(|source| Error::Verification {
            path: "state".into(),
            source,
        })?;
        let d = verify(bytes, &keyring, &identity, t, &mut state).map_err(|source| {
            Error::Verification {
                path: "device.lic".into(),
                source,
            }
        })?;
        flash = state.to_bytes();
        saw_grace |= matches!(d.verdict(), Verdict::Grace { .. });
        saw_emergency |= matches!(d.verdict(), Verdict::Expired { .. });
        let label = match day {
            d if d < 0 => format!("lease end {d}d"),
            0 => "lease end".to_owned(),
            d => format!("lease end +{d}d"),
        };
        out(&format!(
            "  {:<15} {:<20}  {:<9}  {}\n",
            label,
            rfc3339_unix(t),
            if d.full_service() { "all" } else { "emergency" },
            verdict_text(d.verdict())
        ))?;
    }
    out(&format!(
        "\nafter 20 days offline the PBX is in {}: a renewal file (tessera renew) restores full service at once\n",
        if saw_emergency { "emergency-only mode" } else { "grace" }
    ))?;
    if !(saw_grace && saw_emergency) {
        return Err(Error::Usage(
            "the demo did not pass through grace and emergency-only".into(),
        ));
    }
    Ok(())
}

fn order_path_of(a: &IssueArgs) -> Result<&Path, Error> {
    a.order
        .as_deref()
        .ok_or_else(|| Error::Usage("no order".into()))
}

fn request_path_of(a: &IssueArgs) -> Result<&Path, Error> {
    a.request
        .as_deref()
        .ok_or_else(|| Error::Usage("no request".into()))
}
