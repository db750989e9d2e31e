use tessera_keys::Signer as _;
use tessera_verifier::claims::{Cycle, Platform};
use tessera_verifier::encode::RequestData;
use tessera_verifier::samples;

use super::*;
use crate::issuance::tests::{fixture, t, Fixture};
use crate::issuance::{activate_online, IssueOptions, Issued};
use crate::registry::{self, NewPbx};

impl Fixture {
    /// A VM PBX entered in the registry; its serial.
    fn add_vm(&mut self) -> String {
        self.run(|w, i| {
            registry::add(
                w,
                i.catalog,
                &new_pbx(Platform::Vm),
                None,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap()
    }

    fn open(&mut self, serial: &str, days: u32, now: &str) -> Result<Opened, Error> {
        self.run(|w, _| open(w, serial, days, t(now)))
    }

    fn activate(
        &mut self,
        r: &RequestData,
        now: &str,
        code: Option<&ActivationCode>,
    ) -> Result<Issued, Error> {
        self.run(|w, i| activate_online(w, i, r, t(now), code))
    }

    fn head(&self) -> u64 {
        self.ledger.queries().head().unwrap().map_or(0, |h| h.0)
    }

    fn licensed(&self, serial: &str) -> bool {
        self.ledger.latest(serial).unwrap().is_some()
    }
}

fn new_pbx(platform: Platform) -> NewPbx {
    NewPbx {
        customer: "Victim GmbH".into(),
        name: "HQ".into(),
        model: "VM-500".into(),
        platform,
        cycle: Cycle::Yearly,
        profiles: [("PBX-BASIC".to_owned(), 50)].into(),
        storage: 0,
        policy: None,
    }
}

/// A VM's activation request for `serial`, signed by the device key of
/// `seed` (the sample key for 0), with its own nonce.
fn vm_request(serial: &str, seed: u8, nonce: u8) -> RequestData {
    let mut r = samples::request();
    r.serial = Some(serial.into());
    r.hw_serial = None;
    r.platform = Platform::Vm;
    if seed != 0 {
        r.device_key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes();
    }
    r.nonce = [nonce; 16];
    r
}

fn refused(e: &Error) {
    assert!(
        matches!(e, Error::Policy(PolicyError::ActivationRefused)),
        "{e:?}"
    );
}

#[test]
fn only_the_code_activates_and_only_once() {
    let mut f = fixture();
    let serial = f.add_vm();
    let opened = f.open(&serial, 30, "2026-01-02").unwrap();
    assert_eq!(opened.serial, serial);
    assert_eq!(opened.hw_serial, None);
    let toml = opened.agent_toml();
    assert!(
        toml.starts_with(&format!("sw_serial = \"{serial}\"\n")),
        "{toml}"
    );
    assert!(
        toml.contains(&format!("activation_code = \"{}\"", opened.code)),
        "{toml}"
    );

    // A rogue device naming the serial: without a code, with a wrong one.
    let head = f.head();
    let rogue = vm_request(&serial, 9, 1);
    refused(&f.activate(&rogue, "2026-01-03", None).unwrap_err());
    let wrong = ActivationCode::from_random(&[7; 13]);
    refused(
        &f.activate(&vm_request(&serial, 9, 2), "2026-01-03", Some(&wrong))
            .unwrap_err(),
    );
    assert!(!f.licensed(&serial));
    assert_eq!(f.head(), head, "a refusal records nothing");

    // The real device with the code.
    let real = vm_request(&serial, 0, 3);
    let issued = f.activate(&real, "2026-01-03", Some(&opened.code)).unwrap();
    assert_eq!(issued.license.serial, serial);
    assert_eq!(issued.license.customer, "Victim GmbH");

    // The code is used: another key with it gets the uniform refusal.
    refused(
        &f.activate(&vm_request(&serial, 9, 4), "2026-01-03", Some(&opened.code))
            .unwrap_err(),
    );
    // The real device asking again is told its state.
    let e = f
        .activate(&vm_request(&serial, 0, 5), "2026-01-03", None)
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Policy(PolicyError::AlreadyActivated { sequence: 1, .. })
        ),
        "{e:?}"
    );
}

#[test]
fn an_expired_or_replaced_code_is_refused() {
    let mut f = fixture();
    let serial = f.add_vm();
    let first = f.open(&serial, 1, "2026-01-02").unwrap();
    assert_eq!(first.valid_until, t("2026-01-03").timestamp());
    refused(
        &f.activate(&vm_request(&serial, 0, 1), "2026-01-03", Some(&first.code))
            .unwrap_err(),
    );
    let second = f.open(&serial, 30, "2026-01-04").unwrap();
    assert_ne!(first.code, second.code);
    refused(
        &f.activate(&vm_request(&serial, 0, 2), "2026-01-04", Some(&first.code))
            .unwrap_err(),
    );
    f.activate(&vm_request(&serial, 0, 3), "2026-01-04", Some(&second.code))
        .unwrap();
}

#[test]
fn every_refusal_to_another_device_is_the_same() {
    let mut f = fixture();
    let now = "2026-01-03";
    // A code that works, for a PBX of its own: it opens nothing else.
    let open_one = f.add_vm();
    let code = f.open(&open_one, 30, "2026-01-02").unwrap().code;

    // Activated by its device.
    let active = f.add_vm();
    let c = f.open(&active, 30, "2026-01-02").unwrap().code;
    f.activate(&vm_request(&active, 0, 1), now, Some(&c))
        .unwrap();

    // Voided after its activation.
    let voided = f.add_vm();
    let c = f.open(&voided, 30, "2026-01-02").unwrap().code;
    let id = f
        .activate(&vm_request(&voided, 0, 2), now, Some(&c))
        .unwrap()
        .record
        .row
        .license_id;
    f.run(|w, i| crate::lifecycle::void(w, i, &id, "issued in error", t(now)))
        .unwrap();

    // Decommissioned: stopped after 5 days, deleted after 14.
    let stopped = f.add_vm();
    let c = f.open(&stopped, 30, "2026-01-02").unwrap().code;
    f.activate(&vm_request(&stopped, 0, 3), now, Some(&c))
        .unwrap();
    let o = IssueOptions {
        now: t(now),
        approval: Some("APP-1"),
        ..IssueOptions::default()
    };
    f.run(|w, i| crate::lifecycle::decommission(w, i, &stopped, &o))
        .unwrap();

    let mut hw = samples::request();
    hw.hw_serial = Some("HW-0000-9999".into());
    let mut texts = Vec::new();
    for (what, r, at) in [
        ("unregistered", vm_request("SW-2026-999999", 9, 10), now),
        ("hw unregistered", hw, now),
        ("activated", vm_request(&active, 9, 11), now),
        ("voided", vm_request(&voided, 9, 12), now),
        ("stopped", vm_request(&stopped, 9, 13), "2026-01-09"),
        ("deleted", vm_request(&stopped, 9, 14), "2026-01-20"),
        ("no code", vm_request(&open_one, 9, 15), now),
    ] {
        let given = if what == "no code" { None } else { Some(&code) };
        let e = f.activate(&r, at, given).unwrap_err();
        refused(&e);
        texts.push(e.to_string());
    }
    texts.dedup();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(!texts[0].contains("SW-"), "{}", texts[0]);
    // The bound devices still learn their state.
    let e = f
        .activate(&vm_request(&stopped, 0, 20), "2026-01-09", None)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e:?}"
    );
    // The voided PBX's own device hears that its license was voided; a
    // new code activates it again.
    let e = f
        .activate(&vm_request(&voided, 0, 22), now, Some(&code))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::Voided { .. })),
        "{e:?}"
    );
    let c = f.open(&voided, 30, now).unwrap().code;
    let again = f
        .activate(&vm_request(&voided, 0, 21), now, Some(&c))
        .unwrap();
    assert_eq!(again.license.sequence, 3);
}

#[test]
fn an_appliance_entered_by_its_hw_serial_activates_with_its_code() {
    let mut f = fixture();
    let serial = f
        .run(|w, i| {
            registry::add_appliance(
                w,
                i.catalog,
                &NewPbx {
                    model: "TA-7000".into(),
                    ..new_pbx(Platform::Hw)
                },
                "HW-7F3A-0042",
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap();
    // By its HW serial, as printed on the label.
    let opened = f.open("hw-7f3a-0042", 30, "2026-01-02").unwrap();
    assert_eq!(opened.serial, serial);
    assert_eq!(opened.hw_serial.as_deref(), Some("HW-7F3A-0042"));
    assert!(opened.agent_toml().starts_with("# appliance HW-7F3A-0042"));
    let mut rogue = samples::request();
    rogue.device_key = [0x11; 32];
    refused(&f.activate(&rogue, "2026-01-03", None).unwrap_err());
    let issued = f
        .activate(&samples::request(), "2026-01-03", Some(&opened.code))
        .unwrap();
    assert_eq!(issued.license.serial, serial);
}

#[test]
fn pbx_activation_refuses_what_it_cannot_open() {
    let mut f = fixture();
    let serial = f.add_vm();
    for days in [0, MAX_VALID_DAYS + 1] {
        let e = f.open(&serial, days, "2026-01-02").unwrap_err();
        assert!(
            matches!(&e, Error::Usage(m) if m.contains("1 to 365")),
            "{e:?}"
        );
    }
    let e = f.open("SW-2026-999999", 30, "2026-01-02").unwrap_err();
    assert!(
        matches!(&e, Error::Usage(m) if m.contains("SW-2026-999999 is not in the ledger")),
        "{e:?}"
    );
    // Path-like text is no serial of the registry; control characters
    // are refused before any lookup.
    let e = f.open("../../etc/passwd", 30, "2026-01-02").unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::NotRegistered { .. })),
        "{e:?}"
    );
    let e = f
        .open("SW-2026-000001\u{1b}[2J", 30, "2026-01-02")
        .unwrap_err();
    assert!(matches!(&e, Error::Invalid(_)), "{e:?}");
    let code = f.open(&serial, 30, "2026-01-02").unwrap().code;
    f.activate(&vm_request(&serial, 0, 1), "2026-01-03", Some(&code))
        .unwrap();
    let e = f.open(&serial, 30, "2026-01-03").unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Policy(PolicyError::ActivationNotNeeded { sequence: 1, .. })
        ),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 2);
    let o = IssueOptions {
        now: t("2026-01-04"),
        approval: Some("APP-1"),
        ..IssueOptions::default()
    };
    f.run(|w, i| crate::lifecycle::decommission(w, i, &serial, &o))
        .unwrap();
    let e = f.open(&serial, 30, "2026-01-10").unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e:?}"
    );
}

#[test]
fn the_ledger_keeps_the_digest_and_shows_until_when() {
    let mut f = fixture();
    let serial = f.add_vm();
    let opened = f.open(&serial, 30, "2026-01-02").unwrap();
    let changes = f.ledger.queries().pbx_changes(&serial).unwrap();
    let row = changes.last().unwrap();
    assert_eq!(row.kind, ACTIVATION);
    assert_eq!(row.operator, "tessera-server");
    let code = opened.code.to_string();
    assert!(!row.detail.contains(&code), "{}", row.detail);
    assert!(row.detail.contains(&hex::encode(opened.code.digest())));
    let v: serde_json::Value = serde_json::from_str(&row.detail).unwrap();
    assert_eq!(
        describe(&v),
        "online activation opened: an activation code valid until 2026-02-01T00:00:00Z"
    );
    let keyring = [tessera_verifier::KeyEntry::new(f.signer.public_key(), 0)];
    f.ledger.verify(&keyring, None).unwrap();
}

#[test]
fn an_appliance_activates_only_the_pbx_entered_for_it() {
    let mut f = fixture();
    let add = |f: &mut Fixture, hw: &str, customer: &str| {
        f.run(|w, i| {
            registry::add_appliance(
                w,
                i.catalog,
                &NewPbx {
                    customer: customer.into(),
                    model: "TA-7000".into(),
                    ..new_pbx(Platform::Hw)
                },
                hw,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap()
    };
    let mine = add(&mut f, "HW-AAAA-0001", "Mallory");
    let theirs = add(&mut f, "HW-BBBB-0002", "Victim GmbH");
    let code = f.open(&mine, 30, "2026-01-02").unwrap().code;
    let from = |hw: &str, nonce: u8| {
        let mut r = samples::request();
        r.serial = Some(mine.clone());
        r.hw_serial = Some(hw.into());
        r.nonce = [nonce; 16];
        r
    };
    let head = f.head();
    // A box that reports the other PBX's HW serial, or one never entered,
    // with the code of this PBX.
    for (hw, why) in [
        ("HW-BBBB-0002", "another PBX's".to_owned()),
        (
            "HW-CCCC-0003",
            format!("entered {mine} for the appliance HW-AAAA-0001"),
        ),
    ] {
        let e = f
            .activate(&from(hw, 1), "2026-01-03", Some(&code))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Policy(PolicyError::HwSerialOfAnother { .. }))
                && e.to_string().contains(&why),
            "{e}"
        );
    }
    assert_eq!(f.head(), head, "a refusal records nothing");
    assert!(!f.licensed(&mine) && !f.licensed(&theirs));
    // The appliance it was entered for, in any case or spacing.
    let issued = f
        .activate(&from(" hw-aaaa-0001 ", 2), "2026-01-03", Some(&code))
        .unwrap();
    assert_eq!(issued.license.serial, mine);
}

/// The ledger reads of an activation `r` that is refused as
/// `activation-refused`, in order.
fn reads_of_refusal(
    f: &mut Fixture,
    r: &RequestData,
    code: Option<&ActivationCode>,
) -> Vec<&'static str> {
    f.run(|w, i| {
        w.reads.borrow_mut().clear();
        let e = activate_online(w, i, r, t("2026-01-04"), code).unwrap_err();
        refused(&e);
        let reads = w.reads.borrow().clone();
        Ok(reads)
    })
    .unwrap()
}

/// Every refusal to a device that is not the PBX's own does the same
/// work, whatever the ledger holds of the serial it names: the same
/// lookups in the same order for a serial never allocated, a registered
/// PBX with or without an open code, and a licensed one (so the time of
/// the answer, not only its bytes, tells none of them apart); and the
/// same for a HW serial never seen and one the registry entered.
#[test]
fn refusals_read_the_same_whatever_the_serial_is() {
    let mut f = fixture();
    let registered = f.add_vm();
    let waiting = f.add_vm();
    f.open(&waiting, 30, "2026-01-02").unwrap();
    let licensed = f.add_vm();
    let opened = f.open(&licensed, 30, "2026-01-02").unwrap();
    f.activate(
        &vm_request(&licensed, 0, 1),
        "2026-01-03",
        Some(&opened.code),
    )
    .unwrap();
    let wrong = ActivationCode::from_random(&[7; 13]);
    let mut seen = Vec::new();
    for (n, serial) in ["SW-2026-000777", &registered, &waiting, &licensed]
        .into_iter()
        .enumerate()
    {
        for code in [None, Some(&wrong)] {
            let nonce = u8::try_from(10 + 2 * n).unwrap() + u8::from(code.is_some());
            let reads = reads_of_refusal(&mut f, &vm_request(serial, 9, nonce), code);
            seen.push((serial.to_owned(), code.is_some(), reads));
        }
    }
    let (_, _, first) = &seen[0];
    assert!(first.contains(&"request_keys_since"), "{first:?}");
    for (serial, with_code, reads) in &seen {
        assert_eq!(reads, first, "{serial}, code given: {with_code}");
    }

    let appliance = f
        .run(|w, i| {
            let serial = registry::add(
                w,
                i.catalog,
                &new_pbx(Platform::Hw),
                None,
                t("2026-01-02").timestamp(),
            )?;
            w.convert_hw_serial("HW-SEEN-0001", &serial, false, t("2026-01-02").timestamp())?;
            Ok(serial)
        })
        .unwrap();
    let by_hw = |hw: &str, nonce: u8| {
        let mut r = vm_request(&appliance, 9, nonce);
        r.serial = None;
        r.hw_serial = Some(hw.into());
        r.platform = Platform::Hw;
        r
    };
    let unknown = reads_of_refusal(&mut f, &by_hw("HW-NEVER-0001", 30), None);
    let entered = reads_of_refusal(&mut f, &by_hw("HW-SEEN-0001", 31), None);
    assert_eq!(unknown, entered);
    assert_eq!(unknown.first(), Some(&"by_idem_key"));
    assert_eq!(unknown.get(1), Some(&"sw_serial_of"));
    assert_eq!(&unknown[2..], &first[1..]);
}
