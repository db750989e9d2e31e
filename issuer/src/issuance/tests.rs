use tessera_signer::FileSigner;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{ComponentKind, Identity};
use tessera_verifier::samples;
use tessera_verifier::{verify, KeyEntry, State, Verdict};

use super::*;
use crate::calendar::parse_time;
use crate::ledger::Ledger;

const EXAMPLE: &str = include_str!("../../examples/order.toml");

/// A vendor with a fresh ledger, the default catalog and a new key (the
/// tests of other modules use it too).
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) ledger: Ledger,
    pub(crate) catalog: Catalog,
    pub(crate) signer: FileSigner,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let signer = FileSigner::generate().unwrap();
    let ledger = Ledger::create(
        &dir.path().join("l.db"),
        "tessera-vendor",
        &signer,
        "alice",
        t("2026-01-01").timestamp(),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        ledger,
        catalog: Catalog::default_catalog().unwrap(),
        signer,
    }
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

fn order() -> Order {
    Order::parse("order.toml", EXAMPLE, false).unwrap()
}

fn opts(now: &str) -> IssueOptions<'static> {
    IssueOptions {
        now: t(now),
        ..IssueOptions::default()
    }
}

impl Fixture {
    fn issue(
        &mut self,
        o: &Order,
        r: &RequestData,
        opts: &IssueOptions<'_>,
    ) -> Result<Issued, Error> {
        let issuer = Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: "alice",
        };
        let mut w = self.ledger.writer(&self.signer, "alice").unwrap();
        let issued = issue(&mut w, &issuer, o, r, opts)?;
        w.commit().unwrap();
        Ok(issued)
    }

    fn renew(&mut self, r: &RequestData, now: &str) -> Result<Issued, Error> {
        let issuer = Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: "bob",
        };
        let mut w = self.ledger.writer(&self.signer, "bob").unwrap();
        let issued = renew(&mut w, &issuer, r, t(now))?;
        w.commit().unwrap();
        Ok(issued)
    }

    fn keyring(&self) -> [KeyEntry; 1] {
        [KeyEntry::new(self.signer.public_key(), 0)]
    }
}

/// A request of another appliance (different identity values).
fn other_request(hw: &str) -> RequestData {
    let mut r = samples::request();
    r.hw_serial = Some(hw.into());
    r.identity = [
        (ComponentKind::HW_SERIAL, hw),
        (ComponentKind::NIC_MAC, "00163e000001"),
        (
            ComponentKind::SYSTEM_UUID,
            "4c4c4544-0000-0000-0000-000000000001",
        ),
        (ComponentKind::DISK_SERIAL, "DISK-OTHER"),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

#[test]
fn first_activation_converts_the_hw_serial() {
    let mut f = fixture();
    let issued = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let l = &issued.license;
    assert_eq!(l.serial, "SW-2026-000001");
    assert_eq!(l.previous_serial.as_deref(), Some("HW-7F3A-0042"));
    assert_eq!(issued.converted_from.as_deref(), Some("HW-7F3A-0042"));
    assert_eq!(l.sequence, 1);
    assert_eq!(l.issuer, "tessera-vendor");
    assert_eq!(l.binding.threshold, 3);
    assert_eq!(l.binding.salt, samples::SAMPLE_SALT);
    assert_eq!(l.binding.components.len(), 4);
    assert!(l
        .binding
        .components
        .iter()
        .all(|c| c.required == (c.kind == ComponentKind::HW_SERIAL)));
    assert_eq!(l.lease_end, t("2026-02-01").timestamp());
    assert_eq!(l.policy.grace, 14 * 86_400);
    assert_eq!(
        f.ledger.sw_serial_of("HW-7F3A-0042").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    assert_eq!(issued.prorations.len(), 2);
    // Firmware accepts it.
    let mut state = State::new();
    let d = verify(
        &issued.record.row.bytes,
        &f.keyring(),
        &samples::sample_identity(),
        t("2026-01-03").timestamp(),
        &mut state,
    )
    .unwrap();
    assert_eq!(d.verdict(), Verdict::Valid);
    assert_eq!(d.grants().unwrap().profile_count(1), 20);
    f.ledger.verify(&f.keyring(), None).unwrap();
}

#[test]
fn a_second_first_activation_is_refused() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let e = f
        .issue(&order(), &samples::request(), &opts("2026-01-03"))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::AlreadyLicensed { serial, sequence: 1 }) if serial == "SW-2026-000001"),
        "{e}"
    );
    // Nothing was recorded by the refusal.
    assert_eq!(f.ledger.verify(&f.keyring(), None).unwrap().licenses, 1);
}

#[test]
fn a_change_gets_the_next_sequence() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let mut o = order();
    *o.profiles.get_mut("UC-PREMIUM").unwrap() = 9;
    let mut r = samples::request();
    r.serial = Some("SW-2026-000001".into());
    r.hw_serial = None;
    let mut opt = opts("2026-03-02");
    opt.change = true;
    let issued = f.issue(&o, &r, &opt).unwrap();
    assert_eq!(issued.license.sequence, 2);
    assert_eq!(issued.record.row.action, Action::Change);
    assert_eq!(issued.license.term.end, Some(t("2027-01-01").timestamp()));
    assert_eq!(
        issued.license.previous_serial.as_deref(),
        Some("HW-7F3A-0042")
    );
}

#[test]
fn change_from_another_device_is_refused() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let mut r = other_request("HW-OTHER-1");
    r.serial = Some("SW-2026-000001".into());
    let mut opt = opts("2026-03-02");
    opt.change = true;
    let e = f.issue(&order(), &r, &opt).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Policy(PolicyError::WrongDevice { matched: 0, .. })
        ),
        "{e}"
    );
}

#[test]
fn renewal_keeps_content_and_moves_the_lease() {
    let mut f = fixture();
    let first = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let r = samples::renewal_request();
    let mut r = r;
    r.serial = Some("SW-2026-000001".into());
    let renewed = f.renew(&r, "2026-01-30").unwrap();
    assert_eq!(renewed.license.sequence, 2);
    assert_eq!(renewed.record.row.action, Action::Renew);
    assert_eq!(renewed.record.row.operator, "bob");
    assert_eq!(renewed.license.lease_end, t("2026-03-01").timestamp());
    assert_ne!(renewed.license.id, first.license.id);
    let mut a = first.license.clone();
    let b = &renewed.license;
    a.id = b.id;
    a.issued_at = b.issued_at;
    a.not_before = b.not_before;
    a.lease_end = b.lease_end;
    a.sequence = b.sequence;
    assert_eq!(&a, b, "same content");
    // The HW request (no SW serial) of the same device also renews.
    assert_eq!(
        f.renew(&samples::request(), "2026-02-01")
            .unwrap()
            .license
            .sequence,
        3
    );
}

#[test]
fn renewal_in_the_last_2_days_of_the_term_extends_it() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let renewed = f
        .renew(&samples::request(), "2026-12-31T06:00:00Z")
        .unwrap();
    let l = &renewed.license;
    assert_eq!(l.term.start, t("2027-01-01").timestamp());
    assert_eq!(l.term.end, Some(t("2028-01-01").timestamp()));
    assert!(l
        .services
        .iter()
        .all(|s| s.end == t("2028-01-01").timestamp()));
    assert_eq!(l.lease_end, t("2027-01-30T06:00:00Z").timestamp());
    assert!(matches!(
        renewed.warnings[..],
        [Warning::AutoRenewed { .. }]
    ));
    assert!(renewed.warnings[0]
        .to_string()
        .contains("the term is extended by one cycle and now ends 2028-01-01T00:00:00Z"));
    // The day before the last 2 days: the term is kept, and says so.
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let renewed = f
        .renew(&samples::request(), "2026-12-29T06:00:00Z")
        .unwrap();
    assert_eq!(renewed.license.term.end, Some(t("2027-01-01").timestamp()));
    assert_eq!(renewed.license.lease_end, t("2027-01-01").timestamp());
    assert_eq!(
        renewed.warnings[0].to_string(),
        "the term is kept: it ends 2027-01-01T00:00:00Z and renews on its last day (2026-12-31); a renewal from 2026-12-30 on extends it by one cycle"
    );
    // The first of the last 2 days extends it.
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let renewed = f
        .renew(&samples::request(), "2026-12-30T06:00:00Z")
        .unwrap();
    assert_eq!(renewed.license.term.end, Some(t("2028-01-01").timestamp()));
}

#[test]
fn renewal_needs_a_license_and_the_right_device() {
    let mut f = fixture();
    let e = f
        .renew(&samples::renewal_request(), "2026-01-02")
        .unwrap_err();
    // A serial the registry never allocated, licensed or not.
    assert!(
        matches!(e, Error::Policy(PolicyError::NotRegistered { .. })),
        "{e}"
    );
    let mut fresh = samples::request();
    fresh.hw_serial = Some("HW-NEVER-SEEN".into());
    let e = f.renew(&fresh, "2026-01-02").unwrap_err();
    assert!(matches!(e, Error::Policy(PolicyError::NotActivated)), "{e}");
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let mut stranger = other_request("HW-OTHER-2");
    stranger.serial = Some("SW-2026-000001".into());
    let e = f.renew(&stranger, "2026-01-20").unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::WrongDevice { .. })),
        "{e}"
    );
}

#[test]
fn replaced_binding_is_never_renewed() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let mut new_box = other_request("HW-RMA-0001");
    // A new box: a device key of its own.
    new_box.device_key = throwaway_key(0x9b);
    let replaced = {
        let issuer = Issuer {
            catalog: &f.catalog,
            signer: &f.signer,
            operator: "carol",
        };
        let mut w = f.ledger.writer(&f.signer, "carol").unwrap();
        let r = replace(
            &mut w,
            &issuer,
            "SW-2026-000001",
            &new_box,
            ReplaceReason::Rma,
            None,
            t("2026-02-10"),
        )
        .unwrap();
        w.commit().unwrap();
        r
    };
    assert_eq!(replaced.license.sequence, 2);
    assert_eq!(
        replaced.license.previous_serial.as_deref(),
        Some("HW-RMA-0001")
    );
    assert_eq!(
        f.ledger.sw_serial_of("HW-RMA-0001").unwrap().as_deref(),
        Some("SW-2026-000001")
    );
    assert_eq!(
        replaced.license.entitlements,
        order().resolve(&f.catalog).unwrap().entitlements
    );
    // The old box asks for a renewal: refused for good.
    let e = f.renew(&samples::request(), "2026-02-11").unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::BindingReplaced { .. })),
        "{e}"
    );
    // The error points at the replacement, not back at `replace`.
    assert!(
        e.to_string()
            .contains("replaced for SW-2026-000001 on 2026-02-10T00:00:00Z by license 2 (rma)"),
        "{e}"
    );
    assert!(
        e.to_string().contains("no replacement binds the PBX back"),
        "{e}"
    );
    // An RMA back onto the old box is refused, naming when and by what.
    let back = {
        let issuer = Issuer {
            catalog: &f.catalog,
            signer: &f.signer,
            operator: "carol",
        };
        let mut w = f.ledger.writer(&f.signer, "carol").unwrap();
        replace(
            &mut w,
            &issuer,
            "SW-2026-000001",
            &samples::request(),
            ReplaceReason::Rma,
            None,
            t("2026-02-11"),
        )
        .unwrap_err()
    };
    assert!(
        matches!(
            &back,
            Error::Policy(PolicyError::ReplaceOntoReplaced { by: 2, reason, .. }) if reason == "rma"
        ),
        "{back}"
    );
    assert!(
        back.to_string()
            .contains("replaced on 2026-02-10T00:00:00Z"),
        "{back}"
    );
    // The new box renews.
    assert_eq!(f.renew(&new_box, "2026-02-12").unwrap().license.sequence, 3);
    f.ledger.verify(&f.keyring(), None).unwrap();
}

#[test]
fn a_stopped_pbx_is_not_renewed() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let issuer = Issuer {
        catalog: &f.catalog,
        signer: &f.signer,
        operator: "carol",
    };
    let mut w = f.ledger.writer(&f.signer, "carol").unwrap();
    crate::lifecycle::decommission(
        &mut w,
        &issuer,
        "SW-2026-000001",
        &IssueOptions {
            approval: Some("APP-1"),
            ..opts("2026-03-03T10:00:00Z")
        },
    )
    .unwrap();
    w.commit().unwrap();
    // Before the stop: a lease up to the stop.
    let before = f
        .renew(&samples::request(), "2026-03-05T10:00:00Z")
        .unwrap();
    assert_eq!(
        before.license.lease_end,
        t("2026-03-08T10:00:00Z").timestamp()
    );
    // From the stop on: refused, with both dates.
    let e = f
        .renew(&samples::request(), "2026-03-08T10:00:00Z")
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e}"
    );
    assert!(
        e.to_string().contains(
            "stopped on 2026-03-08T10:00:00Z after all its user licenses were removed (deleted on 2026-03-17T10:00:00Z"
        ),
        "{e}"
    );
}

#[test]
fn migration_to_vm_uses_vm_defaults() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let salt = [9u8; 16];
    let mut vm = samples::request();
    // A new machine: a device key of its own.
    vm.device_key = throwaway_key(0x9a);
    vm.platform = Platform::Vm;
    vm.hw_serial = None;
    vm.serial = Some("SW-2026-000001".into());
    vm.salt = salt;
    vm.identity = [
        (
            ComponentKind::SYSTEM_UUID,
            "4c4c4544-0000-0000-0000-0000000000aa",
        ),
        (
            ComponentKind::MACHINE_ID,
            "0123456789abcdef0123456789abcdef",
        ),
        (ComponentKind::NIC_MAC, "00163e0000aa"),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&salt, *kind, v.as_bytes()),
    })
    .collect();
    let issuer = Issuer {
        catalog: &f.catalog,
        signer: &f.signer,
        operator: "carol",
    };
    let mut w = f.ledger.writer(&f.signer, "carol").unwrap();
    let r = replace(
        &mut w,
        &issuer,
        "SW-2026-000001",
        &vm,
        ReplaceReason::Migrate,
        None,
        t("2026-02-10"),
    )
    .unwrap();
    assert_eq!(r.license.platform, Platform::Vm);
    assert_eq!(r.license.previous_serial, None);
    assert_eq!(r.license.binding.components.len(), 3);
    assert!(r.record.row.order_json.contains("\"platform\":\"vm\""));
}

#[test]
fn request_platform_must_match_the_order() {
    let mut f = fixture();
    let mut o = order();
    o.platform = PlatformName::Vm;
    let e = f
        .issue(&o, &samples::request(), &opts("2026-01-02"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PlatformMismatch { .. })),
        "{e}"
    );
}

#[test]
fn request_must_carry_the_bound_components() {
    let mut f = fixture();
    let mut r = samples::request();
    r.identity.retain(|i| i.kind != ComponentKind::HW_SERIAL);
    let e = f.issue(&order(), &r, &opts("2026-01-02")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the request carries 3 of the identity components the catalog binds for hw (hw_serial, nic_mac, system_uuid, disk_serial); at least 3 are needed, and hw_serial is required"
    );
    // The refusal rolled back the serial allocation.
    let r = samples::request();
    assert_eq!(
        f.issue(&order(), &r, &opts("2026-01-02"))
            .unwrap()
            .license
            .serial,
        "SW-2026-000001"
    );
}

#[test]
fn decrease_to_zero_clamps_the_lease_and_schedules() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let mut o = order();
    for c in o.profiles.values_mut() {
        *c = 0;
    }
    let mut opt = opts("2026-03-02");
    opt.change = true;
    opt.approval = Some("APP-7");
    let issued = f.issue(&o, &samples::request(), &opt).unwrap();
    assert_eq!(issued.license.lease_end, t("2026-03-07").timestamp());
    assert_eq!(
        f.ledger.schedule("SW-2026-000001").unwrap(),
        Some(policy::ZeroSchedule {
            stop_at: t("2026-03-07").timestamp(),
            delete_at: t("2026-03-16").timestamp()
        })
    );
    // Renewal stays clamped to the stop; after deletion nothing.
    assert_eq!(
        f.renew(&samples::request(), "2026-03-05")
            .unwrap()
            .license
            .lease_end,
        t("2026-03-07").timestamp()
    );
    let e = f.renew(&samples::request(), "2026-03-16").unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxDeleted { .. })),
        "{e}"
    );
}

/// The replacement device's request came from another licensed PBX: the
/// refusal says so, and suggests no `--change` (replace has none).
#[test]
fn replacing_with_a_licensed_device_names_it() {
    let mut f = fixture();
    f.issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let licensed_box = other_request("HW-OTHER-0001");
    f.issue(&order(), &licensed_box, &opts("2026-01-03"))
        .unwrap();
    let issuer = Issuer {
        catalog: &f.catalog,
        signer: &f.signer,
        operator: "carol",
    };
    let mut w = f.ledger.writer(&f.signer, "carol").unwrap();
    let e = replace(
        &mut w,
        &issuer,
        "SW-2026-000001",
        &licensed_box,
        ReplaceReason::Rma,
        None,
        t("2026-02-10"),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::ReplacementLicensed { serial, other, sequence: 1 })
            if serial == "SW-2026-000001" && other == "SW-2026-000002"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(!text.contains("--change"), "{text}");
    assert!(text.contains("tessera-agent request"), "{text}");
}

impl Fixture {
    /// `f` in one write transaction (operator `tessera-server`), committed
    /// when it succeeds.
    pub(crate) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>, &Issuer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let issuer = Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: "tessera-server",
        };
        let mut w = self.ledger.writer(&self.signer, "tessera-server").unwrap();
        let out = f(&mut w, &issuer)?;
        w.commit().unwrap();
        Ok(out)
    }
}

/// The sample appliance's renewal request for `serial`, with `nonce`.
fn online_request(serial: &str, nonce: &[u8; 16]) -> RequestData {
    let mut r = samples::request();
    r.serial = Some(serial.into());
    r.hw_serial = None;
    r.nonce = *nonce;
    r
}

#[test]
fn online_renewal_records_the_nonce_and_refuses_a_replay() {
    let mut f = fixture();
    let first = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let r = online_request(&first.license.serial, b"nonce-online-001");
    let renewed = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-03")))
        .unwrap();
    assert_eq!(renewed.license.sequence, 2);
    assert_eq!(
        renewed.record.row.idem_key.as_deref(),
        Some(request_nonce_key(&r).as_str())
    );
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-03")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e}"
    );
    // Even inside one transaction (a group commit), the second is a replay.
    let r2 = online_request(&first.license.serial, b"nonce-online-002");
    let e = f
        .run(|w, i| {
            renew_online(w, i, &r2, t("2026-01-03"))?;
            renew_online(w, i, &r2, t("2026-01-03"))
        })
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e}"
    );
}

/// The sample appliance licensed on 2026-01-02 and decommissioned on
/// 2026-01-05 (stopped from 2026-01-10, deleted from 2026-01-19), and its
/// serial.
fn decommissioned() -> (Fixture, String) {
    let mut f = fixture();
    let first = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let serial = first.license.serial.clone();
    let o = IssueOptions {
        approval: Some("APP-1"),
        ..opts("2026-01-05")
    };
    f.run(|w, i| crate::lifecycle::decommission(w, i, &serial, &o))
        .unwrap();
    (f, serial)
}

#[test]
fn online_renewal_refuses_stopped_deleted_and_voided_pbxs() {
    let (mut f, serial) = decommissioned();
    // Before the stop (+5 days) it still renews; after, it is stopped;
    // after the deletion (+14 days), deleted.
    let r = online_request(&serial, b"nonce-online-010");
    f.run(|w, i| renew_online(w, i, &r, t("2026-01-09")))
        .unwrap();
    let r = online_request(&serial, b"nonce-online-011");
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-11")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e}"
    );
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-20")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxDeleted { .. })),
        "{e}"
    );

    let (mut f, voided) = voided_first_activation();
    let r = online_request(&voided, b"nonce-online-020");
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-03")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::Voided { .. })),
        "{e}"
    );
    // The CLI's renewal is the same rule.
    let e = f.run(|w, i| renew(w, i, &r, t("2026-01-03"))).unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::Voided { .. })),
        "{e}"
    );

    // A serial the registry never allocated.
    let r = online_request("SW-2026-999999", b"nonce-online-030");
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-03")))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::NotRegistered { serial }) if serial == "SW-2026-999999"),
        "{e}"
    );
}

#[test]
fn online_activation_is_issue_for_the_recorded_order_of_a_registered_pbx() {
    let mut f = fixture();
    let now = t("2026-01-02");
    let serial = f
        .run(|w, i| {
            registry::add(
                w,
                i.catalog,
                &registry::NewPbx {
                    customer: "Registry GmbH".into(),
                    name: "HQ".into(),
                    model: "VM-500".into(),
                    platform: Platform::Vm,
                    cycle: tessera_verifier::claims::Cycle::Yearly,
                    profiles: [("PBX-BASIC".to_owned(), 20)].into(),
                    storage: 0,
                    policy: None,
                },
                None,
                now.timestamp(),
            )
        })
        .unwrap();
    let mut r = online_request(&serial, b"nonce-activate-1");
    r.platform = Platform::Vm;
    let code = f
        .run(|w, _| crate::activation::open(w, &serial, 30, now))
        .unwrap()
        .code;
    let issued = f
        .run(|w, i| activate_online(w, i, &r, now, Some(&code)))
        .unwrap();
    assert_eq!(issued.license.serial, serial);
    assert_eq!(issued.license.customer, "Registry GmbH");
    assert_eq!(crate::order::total_users(&issued.license.entitlements), 20);
    assert_eq!(issued.license.term.start, now.timestamp());
    assert_eq!(
        issued.record.row.idem_key.as_deref(),
        Some(request_nonce_key(&r).as_str())
    );
    // The same request again is a replay; a new one finds it activated.
    let e = f
        .run(|w, i| activate_online(w, i, &r, now, Some(&code)))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e}"
    );
    r.nonce = *b"nonce-activate-2";
    let e = f
        .run(|w, i| activate_online(w, i, &r, now, None))
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Policy(PolicyError::AlreadyActivated { sequence: 1, .. })
        ),
        "{e}"
    );
    // An appliance the registry does not know is not entered on its word.
    let hw = samples::request();
    let e = f
        .run(|w, i| activate_online(w, i, &hw, now, Some(&code)))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::ActivationRefused)),
        "{e}"
    );
    assert!(f
        .run(|w, _| Ok(w.sw_serial_of("HW-7F3A-0042")?))
        .unwrap()
        .is_none());
}

/// What `tessera renew` asks of a request.
const RENEWAL: Asked<'static> = Asked {
    action: Action::Renew,
    serial: None,
    order_json: None,
    command: "renewal",
    hint: "",
    also: Also::Nothing,
};

/// `tessera renew`'s answer: [`answer_once`] around [`renew_recorded`].
fn renew_once(
    w: &mut Writer<'_>,
    i: &Issuer<'_>,
    r: &RequestData,
    now: &str,
) -> Result<Answer<Issued>, Error> {
    answer_once(w, r, &RENEWAL, t(now), |w, key| {
        renew_recorded(w, i, r, t(now), key, false)
    })
}

/// A ledger with the sample appliance licensed (2026-01-02), its serial,
/// and a renewal request of it carried by hand.
fn licensed_with_renewal_request() -> (Fixture, String, RequestData) {
    let mut f = fixture();
    let first = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    let serial = first.license.serial.clone();
    let r = online_request(&serial, b"nonce-by-hand-01");
    (f, serial, r)
}

#[test]
fn a_request_answered_by_the_cli_is_answered_once_on_both_sides() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let Answer::New(renewed) = f.run(|w, i| renew_once(w, i, &r, "2026-01-03")).unwrap() else {
        panic!("a new request gets a new license");
    };
    assert_eq!(renewed.license.sequence, 2);
    assert_eq!(
        renewed.record.row.idem_key.as_deref(),
        Some(request_nonce_key(&r).as_str())
    );
    // The same file again (the partner lost the license): the same
    // license, byte for byte, and nothing recorded.
    let Answer::Again(again) = f.run(|w, i| renew_once(w, i, &r, "2026-01-04")).unwrap() else {
        panic!("a repeat is answered with what was issued for it");
    };
    assert_eq!(again.row.sequence, 2);
    assert_eq!(again.row.bytes, renewed.record.row.bytes);
    let w = f.ledger.writer(&f.signer, "alice").unwrap();
    assert_eq!(w.latest(&serial).unwrap().unwrap().row.sequence, 2);
    drop(w);
    // The service refuses the request the CLI answered.
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-01-04")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e}"
    );
    // The service answers the device's next request; the CLI then gives
    // that license back for it, and refuses the superseded one.
    let r2 = online_request(&serial, b"nonce-online-002");
    f.run(|w, i| renew_online(w, i, &r2, t("2026-01-05")))
        .unwrap();
    let Answer::Again(online) = f.run(|w, i| renew_once(w, i, &r2, "2026-01-06")).unwrap() else {
        panic!("the service's answer is the latest license");
    };
    assert_eq!(online.row.sequence, 3);
    let e = f
        .run(|w, i| renew_once(w, i, &r, "2026-01-06"))
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Policy(PolicyError::RequestSuperseded { serial: s, sequence: 2, latest: 3, answered_at })
                if *s == serial && answered_at == "2026-01-03T00:00:00Z"
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("sequence 2 on 2026-01-03T00:00:00Z"),
        "{text}"
    );
    assert!(text.contains("sequence 3 since"), "{text}");
    assert!(text.contains("new request"), "{text}");
}

#[test]
fn a_request_answered_otherwise_is_refused() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    f.run(|w, i| renew_once(w, i, &r, "2026-01-03")).unwrap();
    let order_json = order().to_json();
    let change = Asked {
        action: Action::Change,
        serial: Some(&serial),
        order_json: Some(&order_json),
        command: "change",
        hint: "; or change it without a request",
        also: Also::Nothing,
    };
    let e = f
        .run(|w, i| {
            answer_once(w, &r, &change, t("2026-01-04"), |w, key| {
                let o = IssueOptions {
                    change: true,
                    idem_key: Some(key),
                    ..opts("2026-01-04")
                };
                crate::lifecycle::modify(w, i, &serial, &order(), Some(&r), &o)
            })
        })
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Policy(PolicyError::RequestAnsweredOtherwise {
                sequence: 2,
                action: Action::Renew,
                ..
            })
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().ends_with("; or change it without a request"),
        "{e}"
    );
    // Another serial than the one that answered it: refused too.
    let other = Asked {
        serial: Some("SW-2026-000999"),
        ..RENEWAL
    };
    let e = f
        .run(|w, i| {
            answer_once(w, &r, &other, t("2026-01-04"), |w, key| {
                renew_recorded(w, i, &r, t("2026-01-04"), key, false)
            })
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Policy(PolicyError::RequestAnsweredOtherwise { .. })
        ),
        "{e:?}"
    );
}

#[test]
fn a_request_answered_alone_is_never_issued_again_by_a_bulk_row() {
    let mut f = fixture();
    let r = samples::request();
    let order_json = order().to_json();
    let first_license = Asked {
        action: Action::Issue,
        serial: None,
        order_json: Some(&order_json),
        command: "first license",
        hint: "",
        also: Also::Nothing,
    };
    let answered = f
        .run(|w, i| {
            answer_once(w, &r, &first_license, t("2026-01-02"), |w, key| {
                let o = IssueOptions {
                    idem_key: Some(key),
                    ..opts("2026-01-02")
                };
                issue(w, i, &order(), &r, &o)
            })
        })
        .unwrap();
    assert!(matches!(answered, Answer::New(_)));
    // A bulk row (its own key) or any other caller of `issue`.
    let e = f
        .run(|w, i| {
            let o = IssueOptions {
                idem_key: Some("row-1"),
                change: true,
                ..opts("2026-01-03")
            };
            issue(w, i, &order(), &r, &o)
        })
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e:?}"
    );
}

#[test]
fn another_device_copying_an_answered_nonce_gets_nothing() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    f.run(|w, i| renew_once(w, i, &r, "2026-01-03")).unwrap();
    // Another appliance's request, with the nonce read from the file.
    let mut other = samples::request();
    other.hw_serial = Some("HW-0THE-R001".into());
    other.identity = vec![Identity {
        kind: ComponentKind::HW_SERIAL,
        digest: component_digest(&other.salt, ComponentKind::HW_SERIAL, b"HW-0THE-R001"),
    }];
    other.nonce = r.nonce;
    let e = f
        .run(|w, i| renew_once(w, i, &other, "2026-01-04"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&serial), "{e}");
}

#[test]
fn a_copy_re_signed_with_another_key_gets_nothing() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    f.run(|w, i| renew_once(w, i, &r, "2026-01-03")).unwrap();
    // Everything of the file (nonce, salt, identity digests) kept, signed
    // with a key of the copier's own.
    let mut forged = r.clone();
    forged.device_key = ed25519_dalek::SigningKey::from_bytes(&[0x77; 32])
        .verifying_key()
        .to_bytes();
    let e = f
        .run(|w, i| renew_once(w, i, &forged, "2026-01-04"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::RequestReplayed)),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&serial), "{e}");
    // The device's own repeat still gets its license back.
    let again = f.run(|w, i| renew_once(w, i, &r, "2026-01-05")).unwrap();
    assert!(matches!(again, Answer::Again(_)));
}

#[test]
fn a_stopped_pbx_gets_nothing_back_from_its_own_file() {
    let (mut f, serial) = decommissioned();
    // Renewed before the stop (2026-01-10), then the same file after it.
    let r = online_request(&serial, b"nonce-by-hand-02");
    let renewed = f.run(|w, i| renew_once(w, i, &r, "2026-01-06")).unwrap();
    assert!(matches!(renewed, Answer::New(_)));
    let again = f.run(|w, i| renew_once(w, i, &r, "2026-01-07")).unwrap();
    assert!(matches!(again, Answer::Again(_)));
    let e = f
        .run(|w, i| renew_once(w, i, &r, "2026-01-11"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e:?}"
    );
    let e = f
        .run(|w, i| renew_once(w, i, &r, "2026-01-20"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxDeleted { .. })),
        "{e:?}"
    );
}

/// A device key nobody recorded: the public half of `seed`.
fn throwaway_key(seed: u8) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .verifying_key()
        .to_bytes()
}

/// A copy of `r` as anyone who has seen the file can make it: serials,
/// salt and identity digests kept, a new nonce, signed with a key of the
/// copier's own.
fn forged(r: &RequestData, seed: u8) -> RequestData {
    let mut copy = r.clone();
    copy.device_key = throwaway_key(seed);
    copy.nonce = [seed; 16];
    copy
}

/// The device keys the ledger recorded for `serial` from `from` on.
fn recorded_keys(f: &mut Fixture, serial: &str, from: u32) -> Vec<String> {
    f.run(|w, _| Ok(w.request_keys_since(serial, from)?))
        .unwrap()
}

/// The latest sequence of `serial`.
fn latest_sequence(f: &Fixture, serial: &str) -> u32 {
    f.ledger.latest(serial).unwrap().unwrap().row.sequence
}

fn unknown_key(e: &Error, serial: &str) {
    assert!(
        matches!(e, Error::Policy(PolicyError::UnknownDeviceKey { serial: s, .. }) if s == serial),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains(serial), "{text}");
    assert!(text.contains("never used"), "{text}");
    assert!(text.contains("--new-device-key"), "{text}");
    assert_eq!(e.exit_code(), crate::error::EXIT_POLICY);
}

/// The service's last check ([`renew_online_gated`]) is reached only by
/// a request the rules would answer: never by a forged copy, whose answer
/// so cannot depend on it, and its refusal leaves nothing recorded.
#[test]
fn an_online_renewal_asks_its_gate_only_for_the_bound_device() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let mut asked: Vec<String> = Vec::new();
    let e = f
        .run(|w, i| {
            renew_online_gated(w, i, &forged(&r, 0x61), t("2026-01-03"), |s| {
                asked.push(s.to_owned());
                Err(Error::Usage("closed".into()))
            })
        })
        .unwrap_err();
    unknown_key(&e, &serial);
    assert!(asked.is_empty(), "{asked:?}");
    let before = latest_sequence(&f, &serial);
    let e = f
        .run(|w, i| {
            renew_online_gated(w, i, &r, t("2026-01-03"), |s| {
                asked.push(s.to_owned());
                Err(Error::Usage("closed".into()))
            })
        })
        .unwrap_err();
    assert!(matches!(&e, Error::Usage(m) if m == "closed"), "{e:?}");
    assert_eq!(asked, vec![serial.clone()]);
    assert_eq!(latest_sequence(&f, &serial), before);
    let renewed = f
        .run(|w, i| renew_online_gated(w, i, &r, t("2026-01-03"), |_| Ok::<(), Error>(())))
        .unwrap();
    assert_eq!(renewed.license.sequence, before + 1);
}

#[test]
fn a_forged_copy_gets_no_renewal_and_no_change() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let copy = forged(&r, 0x51);
    let e = f
        .run(|w, i| renew_once(w, i, &copy, "2026-01-03"))
        .unwrap_err();
    unknown_key(&e, &serial);
    let e = f
        .run(|w, i| renew_online(w, i, &forged(&r, 0x52), t("2026-01-03")))
        .unwrap_err();
    unknown_key(&e, &serial);
    let mut o = order();
    *o.profiles.get_mut("UC-PREMIUM").unwrap() = 9;
    let copy = forged(&r, 0x53);
    let e = f
        .run(|w, i| crate::lifecycle::modify(w, i, &serial, &o, Some(&copy), &opts("2026-03-02")))
        .unwrap_err();
    unknown_key(&e, &serial);
    let change = IssueOptions {
        change: true,
        ..opts("2026-03-02")
    };
    let e = f.issue(&o, &forged(&r, 0x54), &change).unwrap_err();
    unknown_key(&e, &serial);
    assert_eq!(latest_sequence(&f, &serial), 1);
    // The device's own request still renews.
    f.run(|w, i| renew_once(w, i, &r, "2026-01-03")).unwrap();
    assert_eq!(latest_sequence(&f, &serial), 2);
}

/// The voided first activation of the sample appliance: its fixture and
/// serial.
fn voided_first_activation() -> (Fixture, String) {
    let mut f = fixture();
    let first = f
        .issue(&order(), &samples::request(), &opts("2026-01-02"))
        .unwrap();
    f.run(|w, i| {
        crate::lifecycle::void(
            w,
            i,
            &first.license.id,
            "wrong customer",
            t("2026-01-02T12:00:00Z"),
        )
    })
    .unwrap();
    (f, first.license.serial)
}

/// Every renewal path a device request takes: the service's, the CLI's
/// with a request file, and the plain rule.
fn renewal_paths(f: &mut Fixture, r: &RequestData, now: &str) -> [Error; 3] {
    [
        f.run(|w, i| renew_online(w, i, r, t(now))).unwrap_err(),
        f.run(|w, i| renew_once(w, i, r, now)).unwrap_err(),
        f.run(|w, i| renew(w, i, r, t(now))).unwrap_err(),
    ]
}

#[test]
fn a_forged_renewal_learns_nothing_of_a_stopped_or_deleted_pbx() {
    // Stopped on 2026-01-10 (+5 days), deleted on 2026-01-19 (+14 days).
    let (mut f, serial) = decommissioned();
    for (n, now) in ["2026-01-08", "2026-01-11", "2026-01-20"]
        .iter()
        .enumerate()
    {
        let nonce = [0x40 + u8::try_from(n).unwrap(); 16];
        let copy = forged(&online_request(&serial, &nonce), 0x70);
        for e in renewal_paths(&mut f, &copy, now) {
            unknown_key(&e, &serial);
        }
    }
    // The device itself still hears why.
    let own = online_request(&serial, b"nonce-own-000011");
    let [online, by_hand, plain] = renewal_paths(&mut f, &own, "2026-01-11");
    for e in [online, by_hand, plain] {
        assert!(
            matches!(e, Error::Policy(PolicyError::PbxStopped { .. })),
            "{e:?}"
        );
    }
    for e in renewal_paths(&mut f, &own, "2026-01-20") {
        assert!(
            matches!(e, Error::Policy(PolicyError::PbxDeleted { .. })),
            "{e:?}"
        );
    }
    // The operator who accepts a new key hears why nothing is renewed.
    let e = f
        .run(|w, i| renew_recorded(w, i, &forged(&own, 0x71), t("2026-01-11"), "k", true))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::PbxStopped { .. })),
        "{e:?}"
    );
}

#[test]
fn a_forged_renewal_learns_nothing_of_a_voided_license() {
    let (mut f, serial) = voided_first_activation();
    let own = online_request(&serial, b"nonce-own-000021");
    let copy = forged(&own, 0x72);
    for e in renewal_paths(&mut f, &copy, "2026-01-03") {
        unknown_key(&e, &serial);
    }
    for e in renewal_paths(&mut f, &own, "2026-01-03") {
        assert!(
            matches!(e, Error::Policy(PolicyError::Voided { .. })),
            "{e:?}"
        );
    }
    let e = f
        .run(|w, i| renew_recorded(w, i, &copy, t("2026-01-03"), "k", true))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::Voided { .. })),
        "{e:?}"
    );
    // Nothing was recorded by any of it.
    assert_eq!(latest_sequence(&f, &serial), 2);
}

#[test]
fn twenty_forged_keys_give_no_renewal() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let renewed = (0..20u8)
        .filter(|n| {
            f.run(|w, i| renew_online(w, i, &forged(&r, 0x80 + n), t("2026-01-03")))
                .is_ok()
        })
        .count();
    assert_eq!(renewed, 0);
    assert_eq!(latest_sequence(&f, &serial), 1);
}

/// The ledger reads of refusing a forged copy of `r` (key `seed`) as a
/// renewal, checked to be the refusal of an unknown key.
fn reads_of_forged_renewal(
    f: &mut Fixture,
    serial: &str,
    r: &RequestData,
    seed: u8,
) -> Vec<&'static str> {
    let (reads, e) = f
        .run(|w, i| {
            w.reads.borrow_mut().clear();
            let e = renew_online(w, i, &forged(r, seed), t("2026-01-03")).unwrap_err();
            let reads = w.reads.borrow().clone();
            Ok((reads, e))
        })
        .unwrap();
    unknown_key(&e, serial);
    reads
}

#[test]
fn a_forged_renewals_ledger_work_does_not_grow_with_the_history() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let alone = reads_of_forged_renewal(&mut f, &serial, &r, 0x91);
    assert!(!alone.contains(&"history"), "{alone:?}");
    for n in 1..=40u8 {
        let own = online_request(&serial, &[n; 16]);
        let renewed = f.run(|w, i| renew_once(w, i, &own, "2026-01-03")).unwrap();
        assert!(matches!(renewed, Answer::New(_)));
    }
    assert_eq!(latest_sequence(&f, &serial), 41);
    // The same lookups, none of them the whole history, with 41 licenses
    // as with one.
    assert_eq!(reads_of_forged_renewal(&mut f, &serial, &r, 0x92), alone);
}

#[test]
fn an_accepted_new_key_is_recorded_and_renews_without_the_flag() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    // The device's storage was wiped: same identity, a new key.
    let mut wiped = r.clone();
    wiped.device_key = throwaway_key(0x61);
    let accepted = f
        .run(|w, i| {
            answer_once(w, &wiped, &RENEWAL, t("2026-01-03"), |w, key| {
                renew_recorded(w, i, &wiped, t("2026-01-03"), key, true)
            })
        })
        .unwrap();
    let Answer::New(accepted) = accepted else {
        panic!("a new request gets a new license");
    };
    assert_eq!(accepted.license.sequence, 2);
    assert!(accepted
        .details
        .iter()
        .any(|(label, text)| *label == "device key" && text.contains("accepted")));
    assert_eq!(
        recorded_keys(&mut f, &serial, 2),
        [hex::encode(wiped.device_key)]
    );
    let events = f.ledger.events(&serial).unwrap();
    let event = events.iter().find(|e| e.kind == "device_key").unwrap();
    assert_eq!(event.sequence, 2);
    assert_eq!(event.operator, "tessera-server");
    assert!(event.describe().contains(&hex::encode(wiped.device_key)));
    assert!(event.describe().contains("accepted by tessera-server"));
    // Its next request, with the accepted key, needs no flag.
    let mut next = wiped.clone();
    next.nonce = *b"nonce-after-wipe";
    f.run(|w, i| renew_online(w, i, &next, t("2026-01-04")))
        .unwrap();
    assert_eq!(latest_sequence(&f, &serial), 3);
    // The flag accepts a key, not another device.
    let mut other = other_request("HW-OTHER-9");
    other.serial = Some(serial.clone());
    other.hw_serial = None;
    other.device_key = throwaway_key(0x62);
    let e = f
        .run(|w, i| renew_recorded(w, i, &other, t("2026-01-05"), "k", true))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::WrongDevice { .. })),
        "{e:?}"
    );
    // The ledger with the event verifies.
    f.ledger.verify(&f.keyring(), None).unwrap();
}

#[test]
fn a_binding_without_a_recorded_key_trusts_the_first() {
    let mut f = fixture();
    // A license from before request keys were recorded.
    let serial = f
        .run(|w, i| {
            let mut planned = plan(w, i, &order(), &samples::request(), &opts("2026-01-02"))?;
            planned.request_key = None;
            let bytes = sign_planned(i, &planned)?;
            record(w, i, planned, bytes).map(|issued| issued.license.serial)
        })
        .unwrap();
    assert!(recorded_keys(&mut f, &serial, 1).is_empty());
    let mut first = online_request(&serial, b"nonce-first-use1");
    first.device_key = throwaway_key(0x71);
    let renewed = f
        .run(|w, i| renew_online(w, i, &first, t("2026-01-03")))
        .unwrap();
    assert_eq!(
        recorded_keys(&mut f, &serial, 1),
        [hex::encode(first.device_key)]
    );
    assert_eq!(renewed.license.sequence, 2);
    assert!(f
        .ledger
        .events(&serial)
        .unwrap()
        .iter()
        .all(|e| e.kind != "device_key"));
    // From then on that key is the PBX's: another one is refused.
    let e = f
        .run(|w, i| renew_online(w, i, &forged(&first, 0x72), t("2026-01-04")))
        .unwrap_err();
    unknown_key(&e, &serial);
}

#[test]
fn a_replacement_needs_no_flag_and_its_key_is_the_bindings_own() {
    let (mut f, _, r, renewal) = replaced_by_new_box();
    f.run(|w, i| renew_online(w, i, &renewal, t("2026-02-11")))
        .unwrap();
    // The old box's key belongs to a replaced binding: it is told so.
    let e = f
        .run(|w, i| renew_online(w, i, &r, t("2026-02-12")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::BindingReplaced { .. })),
        "{e:?}"
    );
}

/// `tessera replace --reason REASON [--model MODEL]` with request `r`:
/// [`answer_once`] around [`replace_recorded`].
fn replace_once(
    w: &mut Writer<'_>,
    i: &Issuer<'_>,
    (serial, r): (&str, &RequestData),
    (reason, model): (ReplaceReason, Option<&str>),
    now: &str,
) -> Result<Answer<Issued>, Error> {
    let asked = Asked {
        action: Action::Replace,
        serial: Some(serial),
        order_json: None,
        command: "replacement",
        hint: "",
        also: Also::Replace { reason, model },
    };
    answer_once(w, r, &asked, t(now), |w, key| {
        replace_recorded(w, i, serial, r, (reason, model), t(now), Some(key))
    })
}

#[test]
fn a_repeated_replacement_with_another_reason_or_model_is_refused() {
    let (mut f, serial, _) = licensed_with_renewal_request();
    let mut new_box = other_request("HW-RMA-0003");
    new_box.device_key = throwaway_key(0x93);
    let rma = (ReplaceReason::Rma, Some("TA-8000"));
    let Answer::New(first) = f
        .run(|w, i| replace_once(w, i, (&serial, &new_box), rma, "2026-02-10"))
        .unwrap()
    else {
        panic!("a new request gets a new license");
    };
    // The same command again, or without --model: the same license.
    for again in [rma, (ReplaceReason::Rma, None)] {
        let Answer::Again(record) = f
            .run(|w, i| replace_once(w, i, (&serial, &new_box), again, "2026-02-11"))
            .unwrap()
        else {
            panic!("a repeat of the same replacement gets its license back");
        };
        assert_eq!(record.row.bytes, first.record.row.bytes);
    }
    // Another reason, or another model: the request was answered
    // otherwise, and the message says how.
    for (other, differs) in [
        ((ReplaceReason::Migrate, None), " with --reason rma"),
        (
            (ReplaceReason::Rma, Some("TA-9000")),
            " with the model TA-8000",
        ),
    ] {
        let e = f
            .run(|w, i| replace_once(w, i, (&serial, &new_box), other, "2026-02-11"))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Policy(PolicyError::RequestAnsweredOtherwise { differs: d, sequence: 2, .. })
                    if d == differs
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains(&format!("(replace) on 2026-02-10T00:00:00Z{differs};")),
            "{e}"
        );
    }
    let w = f.ledger.writer(&f.signer, "alice").unwrap();
    assert_eq!(w.latest(&serial).unwrap().unwrap().row.sequence, 2);
}

/// `tessera replace --reason rma` of `serial` with request `r`, on
/// 2026-02-10.
fn rma(f: &mut Fixture, serial: &str, r: &RequestData) -> Result<Issued, Error> {
    f.run(|w, i| replace(w, i, serial, r, ReplaceReason::Rma, None, t("2026-02-10")))
}

/// The sample appliance licensed, its renewal request, and the request
/// of the box an RMA replaced it with (key `0x91`), after the
/// replacement (2026-02-10).
fn replaced_by_new_box() -> (Fixture, String, RequestData, RequestData) {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let mut new_box = other_request("HW-RMA-0002");
    new_box.device_key = throwaway_key(0x91);
    rma(&mut f, &serial, &new_box).unwrap();
    let mut renewal = new_box.clone();
    renewal.serial = Some(serial.clone());
    renewal.hw_serial = None;
    renewal.nonce = *b"nonce-after-rma1";
    (f, serial, r, renewal)
}

#[test]
fn the_old_boxs_key_after_a_replacement_is_refused_with_and_without_the_flag() {
    let (mut f, serial, old, new_box) = replaced_by_new_box();
    let before = latest_sequence(&f, &serial);
    // A copy of the new box's request re-signed with the old box's key.
    let mut copy = new_box.clone();
    copy.device_key = old.device_key;
    copy.nonce = *b"nonce-old-key-01";
    let e = f
        .run(|w, i| renew_online(w, i, &copy, t("2026-02-11")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Policy(PolicyError::BindingReplaced { .. })),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(!text.contains("never used"), "{text}");
    assert!(text.contains("on 2026-02-10"), "{text}");
    assert!(text.contains("signed by device key"), "{text}");
    assert!(text.contains("of that binding"), "{text}");
    copy.nonce = *b"nonce-old-key-02";
    let e = f
        .run(|w, i| renew_recorded(w, i, &copy, t("2026-02-11"), "k", true))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::ReplacedDeviceKey { serial: s, .. }) if *s == serial),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("replaced on 2026-02-10"), "{text}");
    assert!(text.contains("not even with `--new-device-key`"), "{text}");
    assert_eq!(e.exit_code(), crate::error::EXIT_POLICY);
    assert_eq!(latest_sequence(&f, &serial), before);
    // The new box renews with its own key.
    f.run(|w, i| renew_online(w, i, &new_box, t("2026-02-12")))
        .unwrap();
}

#[test]
fn another_pbxs_key_is_refused_with_the_flag() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let mut other = other_request("HW-OTHER-0007");
    other.device_key = throwaway_key(0xa1);
    let other_serial = f
        .issue(&order(), &other, &opts("2026-01-02"))
        .unwrap()
        .license
        .serial;
    // The first PBX's request re-signed with the other PBX's key.
    let mut copy = forged(&r, 0xa2);
    copy.device_key = other.device_key;
    let e = f
        .run(|w, i| renew_recorded(w, i, &copy, t("2026-01-03"), "k", true))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::DeviceKeyOfOtherPbx { serial: s, others, .. })
            if *s == serial && *others == other_serial),
        "{e:?}"
    );
    assert!(e.to_string().contains(&other_serial), "{e}");
    assert_eq!(latest_sequence(&f, &serial), 1);
    // Without the flag it stays an unknown key.
    let e = f
        .run(|w, i| renew_online(w, i, &copy, t("2026-01-03")))
        .unwrap_err();
    unknown_key(&e, &serial);
}

#[test]
fn a_replacement_with_the_bound_devices_request_is_refused() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    // A copy of the bound device's request, re-signed by someone else.
    let mut copy = forged(&r, 0xb1);
    copy.serial = None;
    copy.hw_serial = Some("HW-7F3A-0042".into());
    let e = rma(&mut f, &serial, &copy).unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::ReplaceBySameDevice { why, .. }) if why.contains("identity")),
        "{e:?}"
    );
    assert!(e.to_string().contains("--new-device-key"), "{e}");
    // Another identity signed by the binding's own key: the same device.
    let mut own_key = other_request("HW-RMA-0003");
    own_key.device_key = r.device_key;
    let e = rma(&mut f, &serial, &own_key).unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::ReplaceBySameDevice { why, .. }) if why.contains("key")),
        "{e:?}"
    );
    assert_eq!(latest_sequence(&f, &serial), 1);
    // The bound device still renews, and a real RMA still works.
    f.run(|w, i| renew_online(w, i, &r, t("2026-01-03")))
        .unwrap();
    let mut new_box = other_request("HW-RMA-0004");
    new_box.device_key = throwaway_key(0xb2);
    rma(&mut f, &serial, &new_box).unwrap();
    assert_eq!(latest_sequence(&f, &serial), 3);
}

#[test]
fn a_voided_acceptance_withdraws_the_key() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let mut wrong = r.clone();
    wrong.device_key = throwaway_key(0xc1);
    let accepted = f
        .run(|w, i| renew_recorded(w, i, &wrong, t("2026-01-03"), "k1", true))
        .unwrap();
    let id = accepted.license.id;
    f.run(|w, i| crate::lifecycle::void(w, i, &id, "key accepted in error", t("2026-01-03")))
        .unwrap();
    let mut again = wrong.clone();
    again.nonce = *b"nonce-after-void";
    let e = f
        .run(|w, i| renew_online(w, i, &again, t("2026-01-04")))
        .unwrap_err();
    unknown_key(&e, &serial);
    // The device's own key still counts.
    f.run(|w, i| renew_online(w, i, &r, t("2026-01-04")))
        .unwrap();
    f.ledger.verify(&f.keyring(), None).unwrap();
}

#[test]
fn retired_old_keys_renew_nothing() {
    let (mut f, serial, r) = licensed_with_renewal_request();
    let mut wiped = r.clone();
    wiped.device_key = throwaway_key(0xd1);
    let accepted = f
        .run(|w, i| renew_retiring_old_keys(w, i, &wiped, t("2026-01-03"), "k1"))
        .unwrap();
    assert!(accepted
        .details
        .iter()
        .any(|(label, text)| *label == "old keys" && text.contains(&hex::encode(r.device_key))));
    let events = f.ledger.events(&serial).unwrap();
    let retire = events.iter().find(|e| e.kind == RETIRE_KEYS).unwrap();
    assert_eq!(retire.sequence, 2);
    assert!(retire.describe().contains("keys withdrawn"));
    // The old key is refused online and offline, even for a request
    // answered before (nothing is given back to it).
    let mut old = r.clone();
    old.nonce = *b"nonce-old-key-03";
    let e = f
        .run(|w, i| renew_online(w, i, &old, t("2026-01-04")))
        .unwrap_err();
    unknown_key(&e, &serial);
    let e = f
        .run(|w, i| renew_once(w, i, &old, "2026-01-04"))
        .unwrap_err();
    unknown_key(&e, &serial);
    // The new key renews without a flag.
    let mut next = wiped.clone();
    next.nonce = *b"nonce-new-key-01";
    f.run(|w, i| renew_online(w, i, &next, t("2026-01-04")))
        .unwrap();
    // The journal with the new event verifies.
    f.ledger.verify(&f.keyring(), None).unwrap();
    // Voiding the license that retired them gives the old keys back.
    let latest = f.ledger.latest(&serial).unwrap().unwrap();
    assert_eq!(latest.row.sequence, 3);
}
