//! Prints the decoded content of a license and whether it verifies:
//! `cargo run -p tessera-verifier --features std --example inspect [FILE]`.
//!
//! Without FILE it reads the typical sample license of `spec/vectors/`; the
//! keyring is the published test keyring (`spec/vectors/keys.json`).
#![allow(missing_docs)]

use std::process::ExitCode;

use tessera_verifier::claims::Sharing;
use tessera_verifier::samples::{self, DAY, T0};
use tessera_verifier::{armor, decode_license, decode_license_unverified, KeyEntry, License};

const TYPICAL: &str = include_str!("../../spec/vectors/typical.lic");

fn date(t: i64) -> String {
    // Civil date from Unix seconds (Howard Hinnant's algorithm), UTC.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

fn print(l: &License<'_>) {
    println!("serial        {}", l.serial());
    if let Some(prev) = l.previous_serial() {
        println!("converted from HW serial {prev}");
    }
    println!("customer      {}", l.customer());
    println!("PBX name      {}", l.pbx_name());
    println!("issuer        {}  (key {})", l.issuer(), hex(&l.kid()));
    println!("license id    {}  sequence {}", hex(&l.id()), l.sequence());
    println!("platform      {:?}", l.platform());
    println!("issued        {}", date(l.issued_at()));
    println!("lease ends    {}", date(l.lease_end()));
    let term = l.term();
    match term.end {
        Some(end) => println!(
            "term          {:?}, {} to {}",
            term.cycle,
            date(term.start),
            date(end)
        ),
        None => println!("term          {:?} from {}", term.cycle, date(term.start)),
    }
    let p = l.policy();
    println!(
        "policy        check every {} h, renew {} d before lease end, {} h grace then {:?}",
        p.check_interval / 3600,
        p.renewal_window / 86_400,
        p.grace / 3600,
        p.after_grace
    );
    let b = l.binding();
    println!(
        "binding       {} of {} components",
        b.threshold,
        b.components.len()
    );
    for c in b.components {
        println!(
            "  kind {:<3} {}{}",
            c.kind.0,
            hex(&c.digest),
            if c.required { "  (required)" } else { "" }
        );
    }
    let e = l.entitlements();
    for p in e.profiles {
        println!("profile #{:<4} {}", p.code, p.count);
    }
    for f in e.features {
        println!(
            "feature #{:<4} {:?} x{}{}",
            f.code,
            f.category,
            f.quantity,
            if f.hidden { " (hidden)" } else { "" }
        );
    }
    for base in e.bases {
        let addons: Vec<String> = base
            .addons
            .map(|a| format!("#{}x{}", a.code, a.count))
            .collect();
        println!(
            "base #{:<7} {}  add-ons {}",
            base.code,
            base.count,
            addons.join(" ")
        );
    }
    println!(
        "storage       {} units ({} GB)",
        e.storage_units,
        u64::from(e.storage_units) * 10
    );
    for s in l.services() {
        println!(
            "service #{:<4} {} to {}",
            s.code,
            date(s.start),
            date(s.end)
        );
    }
    match l.sharing() {
        Sharing::None => {}
        Sharing::Server => println!("sharing       server"),
        Sharing::Client(server) => println!("sharing       client of {server}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> ExitCode {
    let text = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {path}: {e}");
                return ExitCode::from(1);
            }
        },
        None => TYPICAL.to_string(),
    };
    let keyring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, T0 - 365 * DAY)];
    let mut buf = [0u8; tessera_verifier::MAX_OBJECT_LEN];
    let bytes = match armor::decode(&text, armor::LABEL_LICENSE, &mut buf) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    println!("{} bytes of CBOR", bytes.len());
    match decode_license(bytes, &keyring) {
        Ok(l) => {
            print(&l);
            println!("signature     valid (test key {})", hex(&keyring[0].kid));
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Ok(l) = decode_license_unverified(bytes) {
                print(&l);
            }
            eprintln!("REFUSED: {e}");
            ExitCode::from(3)
        }
    }
}
