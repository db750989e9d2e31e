//! Billing quantities.

use super::*;
use crate::calendar::parse_time;
use crate::order::Order;

fn t(s: &str) -> i64 {
    parse_time(s).unwrap().timestamp()
}

#[test]
fn a_lifetime_line_is_a_whole_one() {
    assert!((fraction(0, 0) - 1.0).abs() < f64::EPSILON);
    assert!((fraction(273, 365) - 273.0 / 365.0).abs() < 1e-12);
}

#[test]
fn activation_bills_every_profile_for_the_term() {
    let catalog = Catalog::default_catalog().unwrap();
    let o = Order::parse(
        "order.toml",
        include_str!("../../examples/order.toml"),
        false,
    )
    .unwrap();
    let r = o.resolve(&catalog).unwrap();
    let l = LicenseData {
        term: tessera_verifier::claims::Term {
            cycle: r.cycle,
            start: t("2026-01-01"),
            end: Some(t("2027-01-01")),
        },
        entitlements: r.entitlements,
        ..tessera_verifier::samples::typical()
    };
    let lines = charges(&catalog, None, &l, t("2026-01-02"), false);
    let basic = lines
        .iter()
        .find(|c| c.item == "profile:PBX-BASIC")
        .unwrap();
    assert_eq!(
        (
            basic.kind.as_str(),
            basic.quantity,
            basic.days,
            basic.period_days
        ),
        ("activation", 20, 365, 365)
    );
    // A zero count bills nothing.
    assert!(!lines.iter().any(|c| c.item == "profile:PBX-SERVICE"));
    // A change that adds 5 users on 2026-07-02 bills 5 for the rest.
    let mut more = l.clone();
    more.entitlements.profiles[0].count += 5;
    let lines = charges(&catalog, Some(&l), &more, t("2026-07-02"), false);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].kind, "increase");
    assert_eq!(lines[0].quantity, 5);
    assert_eq!((lines[0].days, lines[0].period_days), (183, 365));
}

#[test]
fn a_credit_reverses_each_line_and_books_negative() {
    let line = crate::ledger::ChargeRow {
        entry: 7,
        line: 0,
        serial: "SW-2026-000001".into(),
        sequence: 2,
        kind: "increase".into(),
        item: "profile:PBX-BASIC".into(),
        quantity: 5,
        cycle: "yearly".into(),
        period_start: t("2026-02-03"),
        period_end: Some(t("2027-01-01")),
        days: 332,
        period_days: 365,
        at: t("2026-02-03"),
    };
    let c = credits(core::slice::from_ref(&line));
    assert_eq!(
        c,
        [Charge {
            kind: CREDIT.into(),
            item: "profile:PBX-BASIC".into(),
            quantity: 5,
            cycle: "yearly".into(),
            period_start: line.period_start,
            period_end: line.period_end,
            days: 332,
            period_days: 365,
        }]
    );
    assert_eq!(signed_quantity(CREDIT, 5), -5);
    assert_eq!(signed_quantity("increase", 5), 5);
    assert_eq!(signed_quantity(CREDIT, u32::MAX), -i64::from(u32::MAX));
    assert!(credits(&[]).is_empty());
}
