//! Tests of the lifecycle commands, each against a real ledger.

use chrono::{DateTime, Utc};
use tessera_keys::Signer as _;
use tessera_signer::FileSigner;
use tessera_verifier::binding::component_digest;
use tessera_verifier::claims::{AfterGrace, ComponentKind, Identity, Platform};
use tessera_verifier::samples;
use tessera_verifier::{verify, KeyEntry, State, Verdict};

use super::*;
use crate::calendar::parse_time;
use crate::catalog::Catalog;
use crate::issuance::{answer_once, Also, Answer, Asked};
use crate::issuance::{issue, renew, replace, ReplaceReason};
use crate::ledger::Ledger;

const EXAMPLE: &str = include_str!("../../examples/order.toml");
const SERIAL: &str = "SW-2026-000001";

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    catalog: Catalog,
    signer: FileSigner,
}

fn t(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

fn order() -> Order {
    Order::parse("order.toml", EXAMPLE, false).unwrap()
}

fn order_with(from: &str, to: &str) -> Order {
    assert!(EXAMPLE.contains(from), "{from}");
    Order::parse("order.toml", &EXAMPLE.replacen(from, to, 1), false).unwrap()
}

fn opts(now: &str) -> IssueOptions<'static> {
    IssueOptions {
        now: t(now),
        ..IssueOptions::default()
    }
}

/// A request of a VM with its own identity, signed by a device key from
/// `seed`.
fn vm_request(serial: &str, seed: u8) -> RequestData {
    let mut r = samples::request();
    r.platform = Platform::Vm;
    r.serial = Some(serial.into());
    r.hw_serial = None;
    r.device_key = [seed; 32];
    r.identity = [
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-0000000000{seed:02x}"),
        ),
        (ComponentKind::MACHINE_ID, format!("{seed:032x}")),
        (ComponentKind::NIC_MAC, format!("00163e0000{seed:02x}")),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

/// The options of sharing with the client `vm` asks for, named
/// "Failover", on 2026-02-01.
fn failover(vm: &RequestData) -> ShareOptions<'_> {
    ShareOptions {
        now: t("2026-02-01"),
        request: Some(vm),
        pbx_name: Some("Failover"),
        new_device_key: false,
        retire_old_keys: false,
    }
}

/// The first request of another appliance: HW serial `hw`, NIC and
/// system UUID ending in `tag`, disk `disk`.
fn appliance_request(hw: &str, tag: &str, disk: &str) -> RequestData {
    let mut r = samples::request();
    r.hw_serial = Some(hw.into());
    r.identity = [
        (ComponentKind::HW_SERIAL, hw.to_owned()),
        (ComponentKind::NIC_MAC, format!("00163e00{tag}")),
        (
            ComponentKind::SYSTEM_UUID,
            format!("4c4c4544-0000-0000-0000-00000000{tag}"),
        ),
        (ComponentKind::DISK_SERIAL, disk.to_owned()),
    ]
    .iter()
    .map(|(kind, v)| Identity {
        kind: *kind,
        digest: component_digest(&r.salt, *kind, v.as_bytes()),
    })
    .collect();
    r
}

impl Fixture {
    fn new() -> Self {
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
        let mut f = Self {
            _dir: dir,
            ledger,
            catalog: Catalog::default_catalog().unwrap(),
            signer,
        };
        f.run(|w, i| issue(w, i, &order(), &samples::request(), &opts("2026-01-02")))
            .unwrap();
        f
    }

    /// Adds a VM PBX to the registry; returns its serial.
    fn add_vm(&mut self, cycle: tessera_verifier::claims::Cycle) -> String {
        self.add_vm_as(cycle, "Branch", Default::default())
    }

    /// [`Fixture::add_vm`] with this name and these profiles (the first
    /// license of a registered PBX is for its registered order).
    fn add_vm_as(
        &mut self,
        cycle: tessera_verifier::claims::Cycle,
        name: &str,
        profiles: std::collections::BTreeMap<String, u32>,
    ) -> String {
        self.run(|w, i| {
            crate::registry::add(
                w,
                i.catalog,
                &crate::registry::NewPbx {
                    customer: "Example Dental Clinic".into(),
                    name: name.into(),
                    model: "VM-1".into(),
                    platform: Platform::Vm,
                    cycle,
                    profiles,
                    storage: 0,
                    policy: None,
                },
                None,
                t("2026-01-02").timestamp(),
            )
        })
        .unwrap()
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>, &Issuer<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let issuer = Issuer {
            catalog: &self.catalog,
            signer: &self.signer,
            operator: "alice",
        };
        let mut w = self.ledger.writer(&self.signer, "alice").unwrap();
        let out = f(&mut w, &issuer)?;
        w.commit().unwrap();
        Ok(out)
    }

    fn modify(&mut self, o: &Order, approval: Option<&str>, now: &str) -> Result<Issued, Error> {
        let opts = IssueOptions {
            approval,
            ..opts(now)
        };
        self.run(|w, i| modify(w, i, SERIAL, o, None, &opts))
    }

    fn keyring(&self) -> [KeyEntry; 1] {
        [KeyEntry::new(self.signer.public_key(), 0)]
    }

    /// The firmware's decision on `issued` for the sample appliance.
    fn verdict(&self, issued: &Issued, now: &str, state: &mut State) -> Verdict {
        verify(
            &issued.record.row.bytes,
            &self.keyring(),
            &samples::sample_identity(),
            t(now).timestamp(),
            state,
        )
        .unwrap()
        .verdict()
    }
}

fn policy_error(e: Error) -> PolicyError {
    match e {
        Error::Policy(p) => p,
        e => panic!("not a policy refusal: {e}"),
    }
}

#[test]
fn modify_keeps_the_binding_and_term_without_a_request() {
    let mut f = Fixture::new();
    let first = f.ledger.latest(SERIAL).unwrap().unwrap();
    let first = decode_data(&first).unwrap();
    let more = order_with("UC-PREMIUM = 5", "UC-PREMIUM = 9");
    let changed = f.modify(&more, None, "2026-03-02").unwrap();
    assert_eq!(changed.record.row.action, Action::Change);
    assert_eq!(changed.license.sequence, 2);
    assert_eq!(changed.license.binding, first.binding);
    assert_eq!(changed.license.term, first.term);
    assert_eq!(crate::order::total_users(&changed.license.entitlements), 56);
    // The HW serial names the PBX too.
    let even_more = order_with("UC-PREMIUM = 5", "UC-PREMIUM = 10");
    let issued = f
        .run(|w, i| modify(w, i, "HW-7F3A-0042", &even_more, None, &opts("2026-03-03")))
        .unwrap();
    assert_eq!(issued.license.sequence, 3);
}

#[test]
fn modify_with_the_order_in_force_issues_nothing() {
    let mut f = Fixture::new();
    let more = order_with("UC-PREMIUM = 5", "UC-PREMIUM = 9");
    assert_eq!(
        f.modify(&more, None, "2026-03-02")
            .unwrap()
            .license
            .sequence,
        2
    );
    let e = f.modify(&more, None, "2026-03-03").unwrap_err();
    assert!(
        matches!(
            policy_error(e),
            PolicyError::NothingChanges { sequence: 2, .. }
        ),
        "the same order again"
    );
    assert_eq!(f.ledger.latest(SERIAL).unwrap().unwrap().row.sequence, 2);
    // The first order again is a change back (a decrease, approved).
    let back = f.modify(&order(), Some("CHG-1"), "2026-03-04").unwrap();
    assert_eq!(back.license.sequence, 3);
}

#[test]
fn modify_refuses_a_request_of_another_pbx_and_an_unlicensed_serial() {
    let mut f = Fixture::new();
    let vm = vm_request("SW-2026-500001", 9);
    let e = f
        .run(|w, i| modify(w, i, SERIAL, &order(), Some(&vm), &opts("2026-03-02")))
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::RequestForOtherSerial { .. }
    ));
    // A PBX in the registry without a license yet: nothing to change.
    let waiting = f.add_vm(tessera_verifier::claims::Cycle::Yearly);
    let e = f
        .run(|w, i| modify(w, i, &waiting, &order(), None, &opts("2026-03-02")))
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::NothingToChange { .. }
    ));
    // A serial neither licensed nor registered is a typo: exit 1, saying
    // so, not a rule's refusal with its hints.
    let e = f
        .run(|w, i| modify(w, i, "SW-2026-999999", &order(), None, &opts("2026-03-02")))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Usage(m) if m.contains("SW-2026-999999 is not in the ledger")),
        "{e:?}"
    );
}

#[test]
fn decommission_stops_after_5_days_without_grace_and_records_the_approval() {
    let mut f = Fixture::new();
    let e = f
        .run(|w, i| decommission(w, i, SERIAL, &opts("2026-03-03T10:00:00Z")))
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::DecreaseNeedsApproval { .. }
    ));
    let o = IssueOptions {
        approval: Some("APP-40"),
        ..opts("2026-03-03T10:00:00Z")
    };
    let zero = f.run(|w, i| decommission(w, i, SERIAL, &o)).unwrap();
    let l = &zero.license;
    assert_eq!(crate::order::total_users(&l.entitlements), 0);
    assert!(l.entitlements.bases.iter().all(|b| b.count == 0));
    assert_eq!(l.lease_end, t("2026-03-08T10:00:00Z").timestamp());
    assert_eq!(l.policy.grace, 0);
    assert_eq!(l.policy.after_grace, AfterGrace::Locked);
    let z = f.ledger.schedule(SERIAL).unwrap().unwrap();
    assert_eq!(z.delete_at, t("2026-03-17T10:00:00Z").timestamp());
    let events = f.ledger.events(SERIAL).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "decommission");
    assert_eq!(events[0].detail["approval"], "APP-40");
    // Firmware: full service until the stop, locked from then on.
    let mut state = State::new();
    assert!(matches!(
        f.verdict(&zero, "2026-03-08T09:00:00Z", &mut state),
        Verdict::RenewalDue { .. }
    ));
    assert_eq!(
        f.verdict(&zero, "2026-03-08T10:00:00Z", &mut state),
        Verdict::Expired {
            mode: AfterGrace::Locked
        }
    );
    // Twice is refused; a PBX without users has nothing to remove.
    let e = f.run(|w, i| decommission(w, i, SERIAL, &o)).unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::AlreadyDecommissioned { .. }
    ));
    // One user back before the deletion: grace is back.
    let one = order_with("PBX-BASIC = 20", "PBX-BASIC = 1");
    let back = f
        .modify(&one, Some("APP-41"), "2026-03-10T10:00:00Z")
        .unwrap();
    assert_eq!(back.license.policy.grace, 14 * 86_400);
    assert!(f.ledger.schedule(SERIAL).unwrap().is_none());
}

#[test]
fn decommission_of_a_lifetime_license_is_refused() {
    let mut f = Fixture::new();
    let lifetime = order_with("cycle = \"yearly\"", "cycle = \"lifetime\"");
    let serial = f.add_vm_as(
        tessera_verifier::claims::Cycle::Lifetime,
        &lifetime.pbx_name,
        lifetime.profiles.clone(),
    );
    let vm = vm_request(&serial, 3);
    let mut lifetime = lifetime;
    lifetime.platform = crate::calendar::PlatformName::Vm;
    lifetime.services.clear();
    f.run(|w, i| issue(w, i, &lifetime, &vm, &opts("2026-01-02")))
        .unwrap();
    let o = IssueOptions {
        approval: Some("APP-1"),
        ..opts("2026-03-03")
    };
    let e = f.run(|w, i| decommission(w, i, &serial, &o)).unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::DecreaseOnLifetime { .. }
    ));
}

#[test]
fn share_issues_an_empty_client_license_and_marks_the_server_once() {
    let mut f = Fixture::new();
    let client = f.add_vm(tessera_verifier::claims::Cycle::Yearly);
    let client2 = f.add_vm(tessera_verifier::claims::Cycle::Yearly);
    let vm = vm_request(&client, 4);
    let so = failover(&vm);
    let shared = f.run(|w, i| share(w, i, SERIAL, &client, &so)).unwrap();
    let c = &shared.client.license;
    assert_eq!(c.sharing, SharingData::Client(SERIAL.into()));
    assert_eq!(c.entitlements, EntitlementsData::default());
    assert!(c.services.is_empty());
    assert_eq!(c.customer, "Example Dental Clinic");
    assert_eq!(c.pbx_name, "Failover");
    assert_eq!(c.platform, Platform::Vm);
    assert_eq!(shared.client.record.row.action, Action::Share);
    let server = shared.server.unwrap();
    assert_eq!(server.license.sharing, SharingData::Server);
    assert_eq!(server.license.sequence, 2);
    // A second client: the server keeps its license.
    // Without --pbx-name it is named as the registry names it.
    let vm2 = vm_request(&client2, 5);
    let so = ShareOptions {
        request: Some(&vm2),
        pbx_name: None,
        ..so
    };
    let shared = f.run(|w, i| share(w, i, SERIAL, &client2, &so)).unwrap();
    assert!(shared.server.is_none());
    assert_eq!(shared.client.license.pbx_name, "Branch");
    // The same again is refused.
    let again = ShareOptions {
        request: None,
        ..so
    };
    let e = f
        .run(|w, i| share(w, i, SERIAL, &client2, &again))
        .unwrap_err();
    assert!(matches!(policy_error(e), PolicyError::AlreadyShared { .. }));
}

#[test]
fn share_converts_the_hw_serial_of_a_new_appliance_client() {
    let mut f = Fixture::new();
    let hw = appliance_request("HW-CL1E-0001", "c1e0", "DISK-CLIENT");
    let so = ShareOptions {
        now: t("2026-02-01"),
        request: Some(&hw),
        pbx_name: None,
        new_device_key: false,
        retire_old_keys: false,
    };
    let shared = f
        .run(|w, i| share(w, i, SERIAL, "HW-CL1E-0001", &so))
        .unwrap();
    assert_eq!(shared.client.license.serial, "SW-2026-000002");
    assert_eq!(
        shared.client.converted_from.as_deref(),
        Some("HW-CL1E-0001")
    );
    assert_eq!(
        shared.client.license.previous_serial.as_deref(),
        Some("HW-CL1E-0001")
    );
}

#[test]
fn void_restores_the_license_before_the_mistake() {
    let mut f = Fixture::new();
    let typo = order_with("PBX-BASIC = 20", "PBX-BASIC = 200");
    let wrong = f.modify(&typo, None, "2026-03-02T10:00:00Z").unwrap();
    let voided = f
        .run(|w, i| {
            void(
                w,
                i,
                &wrong.license.id,
                "200 for 20",
                t("2026-03-02T11:00:00Z"),
            )
        })
        .unwrap();
    assert_eq!(voided.record.row.action, Action::Void);
    assert_eq!(voided.license.sequence, 3);
    assert_eq!(crate::order::total_users(&voided.license.entitlements), 52);
    let history = f.ledger.history(SERIAL).unwrap();
    assert_eq!(history.len(), 3);
    let events = f.ledger.events(SERIAL).unwrap();
    assert_eq!(events[0].kind, "void");
    assert_eq!(events[0].detail["reason"], "200 for 20");
    assert_eq!(events[0].detail["restored_sequence"], 1);
    f.ledger.verify(&f.keyring(), None).unwrap();
    // A device holding the voided license takes the void, never back.
    let mut state = State::new();
    assert_eq!(
        f.verdict(&wrong, "2026-03-02T10:30:00Z", &mut state),
        Verdict::Valid
    );
    assert_eq!(
        f.verdict(&voided, "2026-03-02T11:30:00Z", &mut state),
        Verdict::Valid
    );
    assert!(verify(
        &wrong.record.row.bytes,
        &f.keyring(),
        &samples::sample_identity(),
        t("2026-03-02T12:00:00Z").timestamp(),
        &mut state
    )
    .is_err());
}

#[test]
fn void_rules() {
    let mut f = Fixture::new();
    let typo = order_with("PBX-BASIC = 20", "PBX-BASIC = 200");
    // Issued on Friday 2026-03-06: Monday is the last day for a void.
    let wrong = f.modify(&typo, None, "2026-03-06T10:00:00Z").unwrap();
    let e = f
        .run(|w, i| void(w, i, &wrong.license.id, "late", t("2026-03-10T00:00:00Z")))
        .unwrap_err();
    assert!(matches!(policy_error(e), PolicyError::VoidTooLate { .. }));
    let first = f.ledger.history(SERIAL).unwrap()[0].row.license_id;
    let e = f
        .run(|w, i| void(w, i, &first, "old", t("2026-03-06T11:00:00Z")))
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::VoidSuperseded { .. }
    ));
    let e = f
        .run(|w, i| void(w, i, &wrong.license.id, "  ", t("2026-03-06T11:00:00Z")))
        .unwrap_err();
    assert!(matches!(e, Error::Usage(_)));
    let v = f
        .run(|w, i| void(w, i, &wrong.license.id, "typo", t("2026-03-09T23:00:00Z")))
        .unwrap();
    let e = f
        .run(|w, i| void(w, i, &v.license.id, "again", t("2026-03-09T23:30:00Z")))
        .unwrap_err();
    assert!(matches!(policy_error(e), PolicyError::VoidOfVoid { .. }));
    let e = f
        .run(|w, i| void(w, i, &[7; 16], "none", t("2026-03-09T23:30:00Z")))
        .unwrap_err();
    assert!(matches!(e, Error::Usage(_)));
}

#[test]
fn void_of_a_first_activation_grants_nothing_until_the_right_license() {
    let mut f = Fixture::new();
    let first = f.ledger.latest(SERIAL).unwrap().unwrap();
    let voided = f
        .run(|w, i| {
            void(
                w,
                i,
                &first.row.license_id,
                "wrong customer",
                t("2026-01-02T10:00:00Z"),
            )
        })
        .unwrap();
    assert_eq!(voided.license.entitlements, EntitlementsData::default());
    assert_eq!(
        voided.license.lease_end,
        t("2026-01-02T10:00:00Z").timestamp()
    );
    let mut state = State::new();
    assert_eq!(
        f.verdict(&voided, "2026-01-02T10:00:00Z", &mut state),
        Verdict::Expired {
            mode: AfterGrace::Locked
        }
    );
    // No renewal of a void; the right order is a first license again.
    let mut again = samples::renewal_request();
    again.serial = Some(SERIAL.into());
    let e = f
        .run(|w, i| renew(w, i, &again, t("2026-01-02T10:30:00Z")))
        .unwrap_err();
    assert!(matches!(policy_error(e), PolicyError::Voided { .. }));
    let right = f
        .run(|w, i| {
            issue(
                w,
                i,
                &order(),
                &samples::request(),
                &opts("2026-01-02T11:00:00Z"),
            )
        })
        .unwrap();
    assert_eq!(right.record.row.action, Action::Issue);
    assert_eq!(right.license.sequence, 3);
    assert_eq!(
        right.license.previous_serial.as_deref(),
        Some("HW-7F3A-0042")
    );
}

#[test]
fn a_replaced_device_is_refused_by_its_key_even_under_a_new_salt() {
    let mut f = Fixture::new();
    // A renewal records the old box's device key.
    let mut renewal = samples::renewal_request();
    renewal.serial = Some(SERIAL.into());
    f.run(|w, i| renew(w, i, &renewal, t("2026-01-20")))
        .unwrap();
    let vm = vm_request(SERIAL, 6);
    let replaced = f
        .run(|w, i| {
            replace(
                w,
                i,
                SERIAL,
                &vm,
                ReplaceReason::Migrate,
                None,
                t("2026-02-01"),
            )
        })
        .unwrap();
    assert_eq!(replaced.details[0], ("reason", "migrate".to_owned()));
    // The old box lost its license file and asks under a fresh salt.
    let mut lost = renewal.clone();
    lost.salt = [0x5a; 16];
    lost.identity = samples::request()
        .identity
        .iter()
        .map(|i| Identity {
            kind: i.kind,
            digest: [0; 16],
        })
        .collect();
    let e = f
        .run(|w, i| renew(w, i, &lost, t("2026-02-02")))
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::BindingReplaced { .. }
    ));
    // Never back onto the replaced box, whatever the reason.
    for reason in [ReplaceReason::Rma, ReplaceReason::Migrate] {
        let e = f
            .run(|w, i| {
                replace(
                    w,
                    i,
                    SERIAL,
                    &samples::request(),
                    reason,
                    None,
                    t("2026-02-03"),
                )
            })
            .unwrap_err();
        assert!(matches!(
            policy_error(e),
            PolicyError::ReplaceOntoReplaced { .. }
        ));
    }
    // An RMA keeps the platform: another appliance is a migration.
    let mut other_box = samples::request();
    other_box.device_key = [0x77; 32];
    other_box.hw_serial = Some("HW-0THE-0001".into());
    for c in &mut other_box.identity {
        c.digest = [0x11; 16];
    }
    let e = f
        .run(|w, i| {
            replace(
                w,
                i,
                SERIAL,
                &other_box,
                ReplaceReason::Rma,
                None,
                t("2026-02-03"),
            )
        })
        .unwrap_err();
    assert!(matches!(
        policy_error(e),
        PolicyError::RmaChangesPlatform { .. }
    ));
    // The new VM renews.
    f.run(|w, i| renew(w, i, &vm, t("2026-02-04"))).unwrap();
}

#[test]
fn a_forged_client_request_gets_no_client_license() {
    let mut f = Fixture::new();
    let client = f.add_vm(tessera_verifier::claims::Cycle::Yearly);
    let vm = vm_request(&client, 4);
    let so = failover(&vm);
    f.run(|w, i| share(w, i, SERIAL, &client, &so)).unwrap();
    // A second server of the customer, to move the client to.
    let hw = appliance_request("HW-SRV2-0001", "b2b2", "DISK-SRV2");
    let server2 = f
        .run(|w, i| issue(w, i, &order(), &hw, &opts("2026-02-01")))
        .unwrap()
        .license
        .serial;
    // The client's request file, copied and re-signed with another key.
    let mut forged = vm.clone();
    forged.device_key = [0x44; 32];
    forged.nonce = [0x44; 16];
    let so = ShareOptions {
        now: t("2026-02-02"),
        request: Some(&forged),
        pbx_name: None,
        new_device_key: false,
        retire_old_keys: false,
    };
    let e = f
        .run(|w, i| share(w, i, &server2, &client, &so))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::UnknownDeviceKey { serial, .. }) if *serial == client),
        "{e:?}"
    );
    assert_eq!(f.ledger.latest(&client).unwrap().unwrap().row.sequence, 1);
    // Accepted by the operator, the new key moves the client.
    let so = ShareOptions {
        new_device_key: true,
        ..so
    };
    let shared = f.run(|w, i| share(w, i, &server2, &client, &so)).unwrap();
    assert_eq!(shared.client.license.sequence, 2);
    assert!(f
        .ledger
        .events(&client)
        .unwrap()
        .iter()
        .any(|e| e.kind == "device_key" && e.sequence == 2));
}

/// `tessera share --server SERVER --client CLIENT --request` with the
/// client's request `r` and `so`'s PBX name: [`answer_once`] around
/// [`share_recorded`].
fn share_once(
    w: &mut Writer<'_>,
    i: &Issuer<'_>,
    (server, client): (&str, &str),
    so: &ShareOptions<'_>,
) -> Result<Answer<Shared>, Error> {
    let Some(r) = so.request else {
        return Err(Error::Usage("a request".into()));
    };
    let asked = Asked {
        action: Action::Share,
        serial: Some(client),
        order_json: None,
        command: "client license",
        hint: "",
        also: Also::Share {
            server,
            pbx_name: so.pbx_name,
        },
    };
    answer_once(w, r, &asked, so.now, |w, key| {
        share_recorded(w, i, (server, client), so, key)
    })
}

#[test]
fn a_repeated_client_request_for_another_server_or_name_is_refused() {
    let mut f = Fixture::new();
    let client = f.add_vm(tessera_verifier::claims::Cycle::Yearly);
    let vm = vm_request(&client, 4);
    let so = failover(&vm);
    let hw = appliance_request("HW-SRV3-0001", "b3b3", "DISK-SRV3");
    let server2 = f
        .run(|w, i| issue(w, i, &order(), &hw, &opts("2026-01-20")))
        .unwrap()
        .license
        .serial;
    let Answer::New(first) = f
        .run(|w, i| share_once(w, i, (SERIAL, &client), &so))
        .unwrap()
    else {
        panic!("a new request gets a client license");
    };
    // The same command again (the partner lost the file): the same
    // client license.
    let Answer::Again(again) = f
        .run(|w, i| share_once(w, i, (SERIAL, &client), &so))
        .unwrap()
    else {
        panic!("a repeat gets its license back");
    };
    assert_eq!(again.row.bytes, first.client.record.row.bytes);
    // Another server, or another name: answered otherwise, not a client
    // license of the wrong server given back.
    let renamed = ShareOptions {
        pbx_name: Some("Standby"),
        ..failover(&vm)
    };
    for (server, so, differs) in [
        (server2.as_str(), &so, format!(" as a client of {SERIAL}")),
        (SERIAL, &renamed, " with the PBX name Failover".to_owned()),
    ] {
        let e = f
            .run(|w, i| share_once(w, i, (server, &client), so))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Policy(PolicyError::RequestAnsweredOtherwise { differs: d, .. }) if *d == differs
            ),
            "{e:?}"
        );
    }
    assert_eq!(f.ledger.latest(&client).unwrap().unwrap().row.sequence, 1);
}
