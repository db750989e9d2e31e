use tessera_verifier::samples;

use super::*;
use crate::calendar::parse_time;
use crate::order::{Order, SharingOrder};

const EXAMPLE: &str = include_str!("../../examples/order.toml");

fn t(s: &str) -> DateTime<Utc> {
    parse_time(s).unwrap()
}

fn catalog() -> Catalog {
    Catalog::default_catalog().unwrap()
}

fn order() -> Order {
    Order::parse("order.toml", EXAMPLE, false).unwrap()
}

/// The license in force for `o`, as the ledger would have it.
fn current(o: &Order, now: DateTime<Utc>) -> LicenseData {
    let c = catalog();
    let r = o.resolve(&c).unwrap();
    let a = check(&c, o.grants_anything(), &o.customer, &r, &ctx(now)).unwrap();
    let mut l = samples::typical();
    l.platform = r.platform;
    l.term = a.term;
    l.entitlements = r.entitlements;
    l.services = a.services;
    l.sharing = r.sharing;
    l.customer = o.customer.clone();
    l
}

fn ctx(now: DateTime<Utc>) -> Context<'static> {
    Context {
        now,
        serial: "SW-2026-000001",
        approval: None,
        change: false,
        current: None,
        server: None,
        schedule: None,
    }
}

fn run(o: &Order, ctx: &Context<'_>) -> Result<Assessment, PolicyError> {
    let c = catalog();
    let r = o.resolve(&c).unwrap();
    check(&c, o.grants_anything(), &o.customer, &r, ctx)
}

#[test]
fn example_order_passes() {
    let a = run(&order(), &ctx(t("2026-01-02"))).unwrap();
    assert_eq!(a.term.start, t("2026-01-01").timestamp());
    assert_eq!(a.term.end, Some(t("2027-01-01").timestamp()));
    assert!(a.warnings.is_empty());
    assert!(a.decreases.is_empty());
}

#[test]
fn lifetime_not_for_cloud_rule() {
    let mut o = order();
    o.platform = crate::calendar::PlatformName::Cloud;
    o.cycle = crate::calendar::CycleName::Lifetime;
    o.services.clear();
    assert_eq!(
        run(&o, &ctx(t("2026-01-02"))),
        Err(PolicyError::LifetimeOnCloud)
    );
    assert_eq!(
        lifetime_not_for_cloud(Platform::Hw, Cycle::Lifetime),
        Ok(())
    );
}

#[test]
fn services_only_for_subscriptions() {
    let mut o = order();
    o.cycle = crate::calendar::CycleName::Lifetime;
    let e = run(&o, &ctx(t("2026-01-02"))).unwrap_err();
    assert_eq!(
        e,
        PolicyError::ServicesOnLifetime {
            service: "hardware-as-a-service".into()
        }
    );
}

#[test]
fn services_co_terminate_and_are_prorated() {
    // docs/rules.md: yearly May 2020 -> May 2021, service ordered August 2020.
    let mut o = order();
    o.term_start = "2020-05-01".into();
    o.services.clear();
    o.services.insert(
        "sound-pack".into(),
        crate::order::ServiceOrder {
            start: Some("2020-08-01".into()),
        },
    );
    let a = run(&o, &ctx(t("2020-08-01"))).unwrap();
    assert_eq!(a.services.len(), 1);
    assert_eq!(a.services[0].start, t("2020-08-01").timestamp());
    assert_eq!(a.services[0].end, t("2021-05-01").timestamp());
    let p = &a.prorations[0];
    assert_eq!(p.end, t("2021-05-01").timestamp());
    assert!((p.fraction - 273.0 / 365.0).abs() < 1e-12, "{}", p.fraction);
}

#[test]
fn service_added_by_change_starts_at_change_date() {
    let now = t("2026-03-01");
    let mut o = order();
    o.services.remove("sound-pack");
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    o2.services.insert(
        "extended-support".into(),
        crate::order::ServiceOrder::default(),
    );
    let mut c = ctx(now);
    c.change = true;
    c.current = Some(&cur);
    let a = run(&o2, &c).unwrap();
    let s = a
        .prorations
        .iter()
        .find(|p| p.service == "extended-support")
        .unwrap();
    assert_eq!(s.start, now.timestamp());
    assert_eq!(s.end, t("2027-01-01").timestamp());
    assert!((s.fraction - 306.0 / 365.0).abs() < 1e-12);
    // The service already in force keeps its start.
    assert_eq!(
        a.services.iter().find(|s| s.code == 1).unwrap().start,
        t("2026-01-01").timestamp()
    );
}

#[test]
fn service_outside_term() {
    let mut o = order();
    o.services.insert(
        "sound-pack".into(),
        crate::order::ServiceOrder {
            start: Some("2027-02-01".into()),
        },
    );
    assert!(matches!(
        run(&o, &ctx(t("2026-01-02"))),
        Err(PolicyError::ServiceOutsideTerm { .. })
    ));
}

#[test]
fn storage_never_decreases_even_with_approval() {
    let mut o = order();
    o.platform = crate::calendar::PlatformName::Cloud;
    o.storage_units = 10;
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    o2.storage_units = 9;
    let mut c = ctx(t("2026-03-02"));
    c.change = true;
    c.current = Some(&cur);
    c.approval = Some("APP-1");
    assert_eq!(
        run(&o2, &c),
        Err(PolicyError::StorageDecrease { from: 10, to: 9 })
    );
    o2.storage_units = 11;
    c.approval = None;
    assert!(run(&o2, &c).is_ok(), "storage increases any time");
}

#[test]
fn increases_any_time_without_approval() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    *o2.profiles.get_mut("UC-PREMIUM").unwrap() += 5;
    // Even on the last day of a month.
    let mut c = ctx(t("2026-03-31T10:00:00Z"));
    c.change = true;
    c.current = Some(&cur);
    let a = run(&o2, &c).unwrap();
    assert!(a.decreases.is_empty());
}

fn decreased() -> (Order, LicenseData) {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    *o2.profiles.get_mut("UC-PREMIUM").unwrap() = 3;
    (o2, cur)
}

#[test]
fn decreases_need_approval() {
    let (o2, cur) = decreased();
    let mut c = ctx(t("2026-03-02"));
    c.change = true;
    c.current = Some(&cur);
    let e = run(&o2, &c).unwrap_err();
    assert_eq!(
        e,
        PolicyError::DecreaseNeedsApproval {
            // The per-user feature follows the user count.
            what: "UC-PREMIUM from 5 to 3, feature call_center_analytics from 52 to 50".into()
        }
    );
    c.approval = Some("APP-2026-17");
    let a = run(&o2, &c).unwrap();
    assert_eq!(a.decreases.len(), 2);
}

#[test]
fn no_decrease_for_lifetime() {
    let mut o = order();
    o.cycle = crate::calendar::CycleName::Lifetime;
    o.services.clear();
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    o2.bases.remove("Call Group");
    let mut c = ctx(t("2026-03-02"));
    c.change = true;
    c.current = Some(&cur);
    c.approval = Some("APP-1");
    assert!(matches!(
        run(&o2, &c),
        Err(PolicyError::DecreaseOnLifetime { .. })
    ));
}

#[test]
fn no_decrease_on_last_day_of_month() {
    let (o2, cur) = decreased();
    let mut c = ctx(t("2026-02-28T09:00:00Z"));
    c.change = true;
    c.current = Some(&cur);
    c.approval = Some("APP-1");
    assert_eq!(
        run(&o2, &c),
        Err(PolicyError::DecreaseOnLastDayOfMonth {
            date: NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        })
    );
}

#[test]
fn removing_a_service_is_a_decrease() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    o2.services.remove("sound-pack");
    let mut c = ctx(t("2026-09-02"));
    c.change = true;
    c.current = Some(&cur);
    let e = run(&o2, &c).unwrap_err();
    assert!(e.to_string().contains("service sound-pack removed"), "{e}");
}

#[test]
fn warns_within_two_days_of_term_end() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut c = ctx(t("2026-12-30T12:00:00Z"));
    c.change = true;
    c.current = Some(&cur);
    let a = run(&o, &c).unwrap();
    assert_eq!(
        a.warnings,
        [Warning::NearTermEnd {
            term_end: t("2027-01-01").timestamp()
        }]
    );
    c.now = t("2026-12-28");
    assert!(run(&o, &c).unwrap().warnings.is_empty());
}

#[test]
fn auto_renewal_in_the_last_2_days_of_the_term() {
    let term = Term {
        cycle: Cycle::Yearly,
        start: t("2026-01-01").timestamp(),
        end: Some(t("2027-01-01").timestamp()),
    };
    // Before the last 2 days: unchanged.
    assert_eq!(auto_renew(&term, t("2026-12-29T23:59:59Z")), term);
    // The last 2 days: one more cycle.
    for day in ["2026-12-30T00:00:00Z", "2026-12-31T08:00:00Z"] {
        let r = auto_renew(&term, t(day));
        assert_eq!(r.start, t("2027-01-01").timestamp());
        assert_eq!(r.end, Some(t("2028-01-01").timestamp()));
    }
    // After the term: still one cycle, as long as it covers today.
    let r = auto_renew(&term, t("2027-01-05"));
    assert_eq!(r.end, Some(t("2028-01-01").timestamp()));
    // Monthly from 31 January clamps to month ends.
    let m = Term {
        cycle: Cycle::Monthly,
        start: t("2026-01-31").timestamp(),
        end: Some(t("2026-02-28").timestamp()),
    };
    assert_eq!(
        auto_renew(&m, t("2026-02-27T10:00:00Z")).end,
        Some(t("2026-03-28").timestamp())
    );
    let life = Term {
        cycle: Cycle::Lifetime,
        start: 0,
        end: None,
    };
    assert_eq!(auto_renew(&life, t("2030-01-01")), life);
}

#[test]
fn decrease_to_zero_schedules_stop_and_deletion() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut o2 = o.clone();
    for c in o2.profiles.values_mut() {
        *c = 0;
    }
    let now = t("2026-03-02T10:00:00Z");
    let mut c = ctx(now);
    c.change = true;
    c.current = Some(&cur);
    c.approval = Some("APP-9");
    let a = run(&o2, &c).unwrap();
    let z = ZeroSchedule {
        stop_at: t("2026-03-07T10:00:00Z").timestamp(),
        delete_at: t("2026-03-16T10:00:00Z").timestamp(),
    };
    assert_eq!(a.schedule, ScheduleChange::Start(z));
    // Adding a user back before deletion cancels.
    c.schedule = Some(z);
    c.now = t("2026-03-10");
    let a = run(&o, &c).unwrap();
    assert_eq!(a.schedule, ScheduleChange::Cancel);
    // After deletion nothing can be issued.
    c.now = t("2026-03-16T10:00:00Z");
    assert!(matches!(run(&o, &c), Err(PolicyError::PbxDeleted { .. })));
}

#[test]
fn sharing_client_has_no_licenses() {
    let mut o = order();
    o.sharing = SharingOrder::ClientOf("SW-2026-000009".into());
    assert_eq!(
        run(&o, &ctx(t("2026-01-02"))),
        Err(PolicyError::ClientHasLicenses {
            server: "SW-2026-000009".into()
        })
    );
}

fn client_order() -> Order {
    let mut o = order();
    o.sharing = SharingOrder::ClientOf("SW-2026-000009".into());
    o.profiles.clear();
    o.features.clear();
    o.packages.clear();
    o.bases.clear();
    o.services.clear();
    o.storage_units = 0;
    o
}

#[test]
fn cloud_can_only_be_a_server() {
    let mut o = client_order();
    o.platform = crate::calendar::PlatformName::Cloud;
    assert_eq!(
        run(&o, &ctx(t("2026-01-02"))),
        Err(PolicyError::CloudClient)
    );
}

#[test]
fn client_needs_a_licensed_server_of_the_same_customer() {
    let o = client_order();
    let c = ctx(t("2026-01-02"));
    assert!(matches!(
        run(&o, &c),
        Err(PolicyError::UnknownServer { .. })
    ));
    let mut server = ServerInfo {
        license: samples::typical(),
    };
    server.license.customer = o.customer.clone();
    let mut c2 = c.clone();
    c2.server = Some(&server);
    assert!(matches!(run(&o, &c2), Err(PolicyError::NotAServer { .. })));
    let mut server2 = server.clone();
    server2.license.sharing = SharingData::Server;
    c2.server = Some(&server2);
    let a = run(&o, &c2).unwrap();
    assert!(a.services.is_empty());
    let mut server3 = server2.clone();
    server3.license.customer = "Someone else".into();
    c2.server = Some(&server3);
    assert!(matches!(
        run(&o, &c2),
        Err(PolicyError::OtherCustomer { .. })
    ));
}

#[test]
fn one_active_license_per_serial() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut c = ctx(t("2026-02-02"));
    c.current = Some(&cur);
    assert_eq!(
        run(&o, &c),
        Err(PolicyError::AlreadyLicensed {
            serial: "SW-2026-000001".into(),
            sequence: 1
        })
    );
    // The documented way to change a license comes first; --change is
    // the scripts' alternative.
    let text = run(&o, &c).unwrap_err().to_string();
    let modify = text.find("`tessera modify --serial SW-2026-000001");
    let change = text.find("--change");
    assert!(modify.is_some() && modify < change, "{text}");
    let mut c = ctx(t("2026-02-02"));
    c.change = true;
    assert!(matches!(
        run(&o, &c),
        Err(PolicyError::NothingToChange { .. })
    ));
}

#[test]
fn change_keeps_platform_and_cycle() {
    let o = order();
    let cur = current(&o, t("2026-01-02"));
    let mut c = ctx(t("2026-02-02"));
    c.change = true;
    c.current = Some(&cur);
    let mut o2 = o.clone();
    o2.platform = crate::calendar::PlatformName::Vm;
    assert!(matches!(
        run(&o2, &c),
        Err(PolicyError::PlatformChange { .. })
    ));
    let mut o3 = o.clone();
    o3.cycle = crate::calendar::CycleName::Monthly;
    assert!(matches!(run(&o3, &c), Err(PolicyError::CycleChange { .. })));
}

#[test]
fn term_must_cover_today() {
    let o = order();
    assert_eq!(
        run(&o, &ctx(t("2027-01-01"))),
        Err(PolicyError::TermOver {
            end: "2027-01-01T00:00:00Z".into()
        })
    );
}

#[test]
fn lease_rules() {
    let term = Term {
        cycle: Cycle::Yearly,
        start: t("2026-01-01").timestamp(),
        end: Some(t("2027-01-01").timestamp()),
    };
    let now = t("2026-12-20");
    let day = 86_400;
    // Online: 30 days, but never past the term end.
    assert_eq!(
        lease_end(now, &term, 30 * day, 366 * day, false, None),
        t("2027-01-01").timestamp()
    );
    assert_eq!(
        lease_end(t("2026-02-01"), &term, 30 * day, 366 * day, false, None),
        t("2026-03-03").timestamp()
    );
    // Air-gapped: the term end.
    assert_eq!(
        lease_end(t("2026-02-01"), &term, 30 * day, 366 * day, true, None),
        t("2027-01-01").timestamp()
    );
    // Never past a scheduled stop.
    assert_eq!(
        lease_end(
            t("2026-02-01"),
            &term,
            30 * day,
            366 * day,
            false,
            Some(t("2026-02-06").timestamp())
        ),
        t("2026-02-06").timestamp()
    );
}

#[test]
fn rma_keeps_the_platform_migration_may_change_it() {
    assert_eq!(rma_keeps_platform(true, Platform::Hw, Platform::Hw), Ok(()));
    assert!(matches!(
        rma_keeps_platform(true, Platform::Hw, Platform::Vm),
        Err(PolicyError::RmaChangesPlatform { .. })
    ));
    assert_eq!(
        rma_keeps_platform(false, Platform::Hw, Platform::Vm),
        Ok(())
    );
    assert_eq!(
        rma_keeps_platform(false, Platform::Vm, Platform::Hw),
        Ok(())
    );
}

#[test]
fn share_needs_one_customer_a_per_user_server_and_an_empty_non_cloud_client() {
    let server = current(&order(), t("2026-01-02"));
    let mut client = current(&order(), t("2026-01-02"));
    client.entitlements = EntitlementsData::default();
    client.services.clear();
    let ok = share_allowed("SW-S", &server, "SW-C", Platform::Vm, Some(&client));
    assert_eq!(ok, Ok(()));
    // A new client (no license yet) only needs a non-Cloud platform.
    assert_eq!(
        share_allowed("SW-S", &server, "SW-C", Platform::Hw, None),
        Ok(())
    );
    assert_eq!(
        share_allowed("SW-S", &server, "SW-C", Platform::Cloud, None),
        Err(PolicyError::CloudClient)
    );
    assert!(matches!(
        share_allowed("SW-S", &server, "SW-S", Platform::Vm, None),
        Err(PolicyError::OwnClient { .. })
    ));
    let mut other = client.clone();
    other.customer = "Other Customer Ltd".into();
    assert!(matches!(
        share_allowed("SW-S", &server, "SW-C", Platform::Vm, Some(&other)),
        Err(PolicyError::OtherCustomer { .. })
    ));
    let busy = current(&order(), t("2026-01-02"));
    assert!(matches!(
        share_allowed("SW-S", &server, "SW-C", Platform::Vm, Some(&busy)),
        Err(PolicyError::ClientHasLicenses { .. })
    ));
    let mut no_users = server.clone();
    for p in &mut no_users.entitlements.profiles {
        p.count = 0;
    }
    assert!(matches!(
        share_allowed("SW-S", &no_users, "SW-C", Platform::Vm, Some(&client)),
        Err(PolicyError::NoUsersToShare { .. })
    ));
    let mut a_client = server.clone();
    a_client.sharing = SharingData::Client("SW-X".into());
    assert!(matches!(
        share_allowed("SW-S", &a_client, "SW-C", Platform::Vm, Some(&client)),
        Err(PolicyError::NotAServer { .. })
    ));
    let mut already = client.clone();
    already.sharing = SharingData::Client("SW-S".into());
    assert!(matches!(
        share_allowed("SW-S", &server, "SW-C", Platform::Vm, Some(&already)),
        Err(PolicyError::AlreadyShared { .. })
    ));
}

#[test]
fn core_features_are_not_licenses_of_ones_own() {
    let mut l = current(&order(), t("2026-01-02"));
    assert!(grants_anything(&l));
    l.entitlements.profiles.iter_mut().for_each(|p| p.count = 0);
    l.entitlements.bases.clear();
    l.entitlements.storage_units = 0;
    l.services.clear();
    assert!(grants_anything(&l), "instance and general features remain");
    l.entitlements
        .features
        .retain(|f| f.category == tessera_verifier::claims::FeatureCategory::Core);
    assert!(!grants_anything(&l));
}

#[test]
fn a_void_within_one_business_day() {
    // Wednesday: until the end of Thursday.
    let wed = t("2026-01-07T15:00:00Z").timestamp();
    assert_eq!(
        void_in_time("id", wed, t("2026-01-08T23:59:59Z"), &[]),
        Ok(())
    );
    assert!(matches!(
        void_in_time("id", wed, t("2026-01-09T00:00:00Z"), &[]),
        Err(PolicyError::VoidTooLate { .. })
    ));
    // Friday and Saturday: until the end of Monday.
    for issued in ["2026-01-09T17:00:00Z", "2026-01-10T12:00:00Z"] {
        let at = t(issued).timestamp();
        assert_eq!(
            void_in_time("id", at, t("2026-01-12T20:00:00Z"), &[]),
            Ok(())
        );
        assert!(void_in_time("id", at, t("2026-01-13T00:00:00Z"), &[]).is_err());
    }
}

#[test]
fn holidays_are_not_business_days() {
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    // Thursday 2026-12-24; Friday the 25th and Monday the 28th are holidays
    // here: the next business day is Tuesday the 29th.
    let holidays = [day("2026-12-25"), day("2026-12-28")];
    let thu = t("2026-12-24T10:00:00Z").timestamp();
    assert_eq!(
        void_in_time("id", thu, t("2026-12-29T23:59:59Z"), &holidays),
        Ok(())
    );
    assert!(matches!(
        void_in_time("id", thu, t("2026-12-30T00:00:00Z"), &holidays),
        Err(PolicyError::VoidTooLate { deadline, .. }) if deadline == "2026-12-30T00:00:00Z"
    ));
    // Without the holidays the same void ends with Friday.
    assert!(void_in_time("id", thu, t("2026-12-26T00:00:00Z"), &[]).is_err());
    // A holiday on the day of issue itself changes nothing.
    let hol = t("2026-12-25T10:00:00Z").timestamp();
    assert_eq!(
        void_in_time("id", hol, t("2026-12-29T12:00:00Z"), &holidays),
        Ok(())
    );
}
