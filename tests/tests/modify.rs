//! Changing a license with `tessera modify`: increases at any time,
//! decreases with an approval (never on the last day of a month, never for
//! lifetime), storage never decreasing, and services added mid-term that
//! co-terminate with the PBX and are prorated (the May 2020 → August 2020
//! → May 2021 example of docs/rules.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";

fn licensed(spec: &OrderSpec<'_>) -> (Vendor, Site) {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-7F3A-0042", 1);
    let order = spec.write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    (vendor, site)
}

fn modify(vendor: &Vendor, now: &str, order: &str, extra: &[&str], out: &str) -> common::Run {
    let mut args = vec![
        "modify",
        "--serial",
        "SW-2026-000001",
        "--order",
        order,
        "-o",
        out,
        "--json",
    ];
    args.extend(extra);
    vendor.at(now, &args)
}

#[test]
fn an_increase_is_allowed_any_day_without_approval() {
    let (vendor, site) = licensed(&OrderSpec::default());
    OrderSpec {
        profiles: &[("PBX-BASIC", 25), ("UC-BUSINESS", 10), ("UC-PREMIUM", 9)],
        ..OrderSpec::default()
    }
    .write(&vendor, "more.toml");
    // Even on the last day of a month.
    let summary = modify(
        &vendor,
        "2026-03-31T10:00:00Z",
        "more.toml",
        &[],
        "more.lic",
    )
    .ok()
    .json();
    assert_eq!(summary["action"], "change");
    assert_eq!(summary["sequence"], 2);
    assert_eq!(summary["decreases"].as_array().unwrap().len(), 0);
    let status = site
        .install(&vendor.path("more.lic"), "2026-03-31T10:00:00Z")
        .ok()
        .json();
    assert_eq!(status["entitlements"]["total_users"], 44);
}

#[test]
fn a_decrease_needs_an_approval_and_never_happens_on_the_last_day_of_a_month() {
    let (vendor, site) = licensed(&OrderSpec::default());
    OrderSpec {
        profiles: &[("PBX-BASIC", 16), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "fewer.toml");
    modify(
        &vendor,
        "2026-03-03T10:00:00Z",
        "fewer.toml",
        &[],
        "fewer.lic",
    )
    .code(vendor_exit::POLICY)
    .says("decreases need vendor approval: pass --approval REF");
    modify(
        &vendor,
        "2026-03-31T10:00:00Z",
        "fewer.toml",
        &["--approval", "APP-2026-17"],
        "fewer.lic",
    )
    .code(vendor_exit::POLICY)
    .says("no decrease on the last day of a month (2026-03-31)");
    let summary = modify(
        &vendor,
        "2026-03-03T10:00:00Z",
        "fewer.toml",
        &["--approval", "APP-2026-17"],
        "fewer.lic",
    )
    .ok()
    .json();
    assert_eq!(summary["decreases"][0], "PBX-BASIC from 20 to 16");
    assert_eq!(summary["approval"], "APP-2026-17");
    let status = site
        .install(&vendor.path("fewer.lic"), "2026-03-03T10:00:00Z")
        .ok()
        .json();
    assert_eq!(status["entitlements"]["total_users"], 31);
    // The ledger keeps the approval with the change.
    let show = vendor.ledger_show("SW-2026-000001");
    assert_eq!(show["licenses"][1]["action"], "change");
    assert!(show.to_string().contains("APP-2026-17"), "{show}");
}

#[test]
fn a_lifetime_license_is_never_decreased() {
    let lifetime = OrderSpec {
        cycle: "lifetime",
        ..OrderSpec::default()
    };
    let (vendor, _site) = licensed(&lifetime);
    OrderSpec {
        cycle: "lifetime",
        profiles: &[("PBX-BASIC", 10), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "fewer.toml");
    modify(
        &vendor,
        "2026-03-03T10:00:00Z",
        "fewer.toml",
        &["--approval", "APP-2026-18"],
        "fewer.lic",
    )
    .code(vendor_exit::POLICY)
    .says("lifetime licenses can never be decreased");
}

#[test]
fn storage_is_sold_for_cloud_only_and_never_decreased() {
    // Storage on a HW PBX is refused.
    let (vendor, _site) = licensed(&OrderSpec::default());
    OrderSpec {
        storage_units: 3,
        ..OrderSpec::default()
    }
    .write(&vendor, "hw-storage.toml");
    modify(
        &vendor,
        "2026-03-03T10:00:00Z",
        "hw-storage.toml",
        &[],
        "storage.lic",
    )
    .code(vendor_exit::POLICY)
    .says("3 storage units on a hw PBX: storage is sold for Cloud PBXs only");

    // A Cloud PBX buys it, and never gets less.
    let vendor = Vendor::new();
    let serial = vendor.add_pbx(T0, "cloud", "monthly", "Example Dental Clinic");
    assert_eq!(serial, "SW-2026-000001");
    let site = Site::cloud(&serial, 1);
    let cloud = |units| OrderSpec {
        platform: "cloud",
        cycle: "monthly",
        storage_units: units,
        ..OrderSpec::default()
    };
    let order = cloud(10).write(&vendor, "order.toml");
    activate(&vendor, &site, &order, T0, "activation.lic");
    cloud(5).write(&vendor, "less-storage.toml");
    modify(
        &vendor,
        "2026-01-20T10:00:00Z",
        "less-storage.toml",
        &["--approval", "APP-2026-19"],
        "storage.lic",
    )
    .code(vendor_exit::POLICY)
    .says("storage cannot be decreased (from 10 to 5 units)");
    // More storage is an increase.
    cloud(12).write(&vendor, "more-storage.toml");
    modify(
        &vendor,
        "2026-01-20T10:00:00Z",
        "more-storage.toml",
        &[],
        "storage.lic",
    )
    .ok();
}

#[test]
fn a_service_added_mid_term_co_terminates_and_is_prorated() {
    // docs/rules.md: PBX yearly from May 2020 expires May 2021; a service
    // ordered in August 2020 also expires May 2021 and is charged for
    // August 2020 to May 2021.
    let vendor = Vendor::new();
    let site = Site::appliance("HW-2020-0001", 1);
    let may = OrderSpec {
        term_start: "2020-05-01",
        ..OrderSpec::default()
    };
    let order = may.write(&vendor, "order.toml");
    let (summary, _) = activate(&vendor, &site, &order, "2020-05-04T09:00:00Z", "may.lic");
    assert_eq!(summary["term_end"], "2021-05-01T00:00:00Z");
    let extra = format!("{}\n[services.sound-pack]\n", may.extra);
    OrderSpec {
        term_start: "2020-05-01",
        extra: &extra,
        ..OrderSpec::default()
    }
    .write(&vendor, "august.toml");
    let summary = vendor
        .at(
            "2020-08-01T00:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2020-000001",
                "--order",
                "august.toml",
                "-o",
                "august.lic",
                "--json",
            ],
        )
        .ok()
        .json();
    let p = &summary["prorations"][0];
    assert_eq!(p["service"], "sound-pack");
    assert_eq!(p["start"], "2020-08-01T00:00:00Z");
    assert_eq!(p["end"], "2021-05-01T00:00:00Z");
    // August 2020 to May 2021: 273 of the term's 365 days.
    let fraction = p["fraction"].as_f64().unwrap();
    assert!((fraction - 273.0 / 365.0).abs() < 1e-9, "{fraction}");
    // The text summary reports it too (of the next change: the same order
    // again would change nothing, and is refused).
    OrderSpec {
        term_start: "2020-05-01",
        extra: &extra,
        profiles: &[("PBX-BASIC", 21), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "august-more.toml");
    let text = vendor
        .at(
            "2020-08-02T00:00:00Z",
            &[
                "modify",
                "--serial",
                "SW-2020-000001",
                "--order",
                "august-more.toml",
                "-o",
                "august-2.lic",
            ],
        )
        .ok();
    assert!(
        text.stderr.contains(
            "sound-pack 2020-08-01T00:00:00Z .. 2021-05-01T00:00:00Z, prorated 0.7479 of the term"
        ),
        "{}",
        text.stderr
    );

    // The device sees the service end with the term.
    let status = site
        .install(&vendor.path("august.lic"), "2020-08-01T09:00:00Z")
        .code(agent_exit::FULL)
        .json();
    let services = status["entitlements"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["end"], "2021-05-01T00:00:00Z");
    assert_eq!(status["license"]["term_end"], "2021-05-01T00:00:00Z");

    // The billing record: the service, charged August 2020 to May 2021
    // with its exact days, once (the second change added a user, not the
    // service again).
    let august = vendor
        .tessera(&[
            "report",
            "billing",
            "--from",
            "2020-08-01",
            "--to",
            "2020-09-01",
            "--json",
        ])
        .ok()
        .json();
    let charges: Vec<_> = august["charges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "service")
        .collect();
    assert_eq!(charges.len(), 1, "{august}");
    let c = charges[0];
    assert_eq!(c["serial"], "SW-2020-000001");
    assert_eq!(c["customer"], "Example Dental Clinic");
    assert_eq!(c["kind"], "service");
    assert_eq!(c["item"], "service:sound-pack");
    assert_eq!(c["quantity"], 1);
    assert_eq!(c["cycle"], "yearly");
    assert_eq!(c["period_start"], "2020-08-01T00:00:00Z");
    assert_eq!(c["period_end"], "2021-05-01T00:00:00Z");
    assert_eq!(c["days"], 273);
    assert_eq!(c["period_days"], 365);
    let fraction = c["fraction"].as_f64().unwrap();
    assert!((fraction - 273.0 / 365.0).abs() < 1e-6, "{fraction}");
    // The activation in May: each profile for the whole term.
    let may = vendor
        .tessera(&[
            "report",
            "billing",
            "--from",
            "2020-05-01",
            "--to",
            "2020-06-01",
            "--csv",
        ])
        .ok()
        .stdout;
    let mut lines = may.lines();
    assert_eq!(
        lines.next(),
        Some("recorded_at,customer,serial,model,kind,item,quantity,cycle,period_start,period_end,days,period_days,fraction,sequence,credits_sequence")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{may}");
    assert!(
        rows.contains(&"2020-05-04T09:00:00Z,Example Dental Clinic,SW-2020-000001,TA-7000,activation,profile:PBX-BASIC,20,yearly,2020-05-01T00:00:00Z,2021-05-01T00:00:00Z,365,365,1.000000,1,"),
        "{may}"
    );
}

#[test]
fn services_are_never_added_to_a_lifetime_pbx() {
    let lifetime = OrderSpec {
        cycle: "lifetime",
        ..OrderSpec::default()
    };
    let (vendor, _site) = licensed(&lifetime);
    let extra = format!("{}\n[services.sound-pack]\n", lifetime.extra);
    OrderSpec {
        cycle: "lifetime",
        extra: &extra,
        ..OrderSpec::default()
    }
    .write(&vendor, "service.toml");
    modify(
        &vendor,
        "2026-03-03T10:00:00Z",
        "service.toml",
        &[],
        "service.lic",
    )
    .code(vendor_exit::POLICY)
    .says("services are for subscription PBXs");
}

#[test]
fn a_change_near_the_term_end_warns_and_a_platform_change_is_a_replacement() {
    let (vendor, _site) = licensed(&OrderSpec::default());
    OrderSpec {
        profiles: &[("PBX-BASIC", 21), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "more.toml");
    let summary = modify(
        &vendor,
        "2026-12-30T12:00:00Z",
        "more.toml",
        &[],
        "late.lic",
    )
    .ok()
    .json();
    assert!(summary["warnings"][0]
        .as_str()
        .unwrap()
        .contains("within 2 days"));
    OrderSpec {
        platform: "vm",
        ..OrderSpec::default()
    }
    .write(&vendor, "vm.toml");
    modify(&vendor, "2026-03-03T10:00:00Z", "vm.toml", &[], "vm.lic")
        .code(vendor_exit::POLICY)
        .says("a migration is a replacement");
}

#[test]
fn modify_by_request_rebinds_only_the_licensed_device() {
    let (vendor, site) = licensed(&OrderSpec::default());
    OrderSpec {
        profiles: &[("PBX-BASIC", 21), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
        ..OrderSpec::default()
    }
    .write(&vendor, "more.toml");
    let req = site.request("2026-03-03T10:00:00Z");
    let (run, lic) = vendor.answer(
        "2026-03-03T10:00:00Z",
        &[
            "modify",
            "--serial",
            "SW-2026-000001",
            "--order",
            "more.toml",
        ],
        &req,
        "more.lic",
    );
    run.ok();
    site.install(&lic, "2026-03-03T10:00:00Z")
        .code(agent_exit::FULL);
    // Another box cannot get the change.
    let other = Site::appliance("HW-0THE-0002", 2);
    let req = other.request("2026-03-04T10:00:00Z");
    let (run, _) = vendor.answer(
        "2026-03-04T10:00:00Z",
        &[
            "modify",
            "--serial",
            "SW-2026-000001",
            "--order",
            "more.toml",
        ],
        &req,
        "other.lic",
    );
    run.code(vendor_exit::POLICY);
}
