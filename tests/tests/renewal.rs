//! Renewal: air-gapped by file, online-style daily with short leases,
//! offline past the lease (grace, then the after-grace mode, then a
//! renewal file restores full service), and the 3-hour / 72-hour / locked
//! profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";

#[test]
fn air_gapped_renewal_round_trip() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-A1A1-0001", 1);
    let order = OrderSpec {
        air_gapped: true,
        ..OrderSpec::default()
    }
    .write(&vendor, "order.toml");
    let (summary, _) = activate(&vendor, &site, &order, T0, "activation.lic");
    // An air-gapped PBX gets a lease up to the term end.
    assert_eq!(summary["lease_end"], "2027-01-01T00:00:00Z");
    site.check("2026-06-01T00:00:00Z").code(agent_exit::FULL);
    // Inside the 7-day renewal window the administrator is told.
    let due = site
        .check("2026-12-27T00:00:00Z")
        .code(agent_exit::RENEWAL_DUE)
        .json();
    assert_eq!(due["days_left"], 5);

    // Request file out, license file in, on the last day of the term: the
    // term auto-renews for one more cycle.
    let req = site.request("2026-12-31T10:00:00Z");
    let (run, lic) = vendor.answer("2026-12-31T10:00:00Z", &["renew"], &req, "renewal.lic");
    let renewed = run.ok().json();
    assert_eq!(renewed["action"], "renew");
    assert_eq!(renewed["sequence"], 2);
    assert_eq!(renewed["term_end"], "2028-01-01T00:00:00Z");
    assert!(renewed["warnings"][0]
        .as_str()
        .unwrap()
        .starts_with("renewed in the last 2 days of the term"));
    let status = site.install(&lic, "2026-12-31T10:00:00Z").ok().json();
    assert_eq!(status["license"]["sequence"], 2);
    assert_eq!(status["days_since_renewal"], 0);
    site.check("2027-06-01T00:00:00Z").code(agent_exit::FULL);
}

#[test]
fn online_daily_renewal_with_short_leases() {
    let vendor = Vendor::new();
    let catalog = vendor.catalog_with(
        "online.toml",
        &[(
            "lease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"",
            "lease = \"2d\"\nmax_lease = \"366d\"\nrenewal_window = \"1d\"",
        )],
    );
    let catalog = catalog.to_str().unwrap().to_owned();
    let site = Site::appliance("HW-A1A1-0002", 2);
    site.trust(&vendor);
    OrderSpec::default().write(&vendor, "order.toml");
    let req = site.request(T0);
    let (run, lic) = vendor.answer(
        T0,
        &["--catalog", &catalog, "issue", "--order", "order.toml"],
        &req,
        "day-0.lic",
    );
    assert_eq!(run.ok().json()["lease_end"], "2026-01-04T09:00:00Z");
    site.install(&lic, T0).ok();
    // A week of daily checks, each renewing once the renewal is due.
    for day in 1..=7u32 {
        let now = format!("2026-01-{:02}T09:00:00Z", 2 + day);
        site.check(&now).code(agent_exit::RENEWAL_DUE);
        let req = site.request(&now);
        let (run, lic) = vendor.answer(
            &now,
            &["--catalog", &catalog, "renew"],
            &req,
            &format!("day-{day}.lic"),
        );
        assert_eq!(run.ok().json()["sequence"], day + 1);
        let status = site.install(&lic, &now).ok().json();
        assert_eq!(status["days_since_renewal"], 0);
        assert_eq!(status["mode"], "full");
    }
    let list = vendor.tessera(&["ledger", "list", "--json"]).ok().json();
    assert_eq!(list[0]["licenses"], 8);
    assert_eq!(list[0]["last_action"], "renew");
}

#[test]
fn offline_past_the_lease_grace_then_emergency_only_then_a_renewal_file_restores_service() {
    let vendor = Vendor::new();
    let site = Site::appliance("HW-A1A1-0003", 3);
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let (summary, _) = activate(&vendor, &site, &order, T0, "activation.lic");
    assert_eq!(summary["lease_end"], "2026-02-01T09:00:00Z");

    site.check("2026-01-30T09:00:00Z")
        .code(agent_exit::RENEWAL_DUE);
    let grace = site
        .check("2026-02-01T09:00:00Z")
        .code(agent_exit::GRACE)
        .json();
    assert_eq!(grace["verdict"], "grace");
    assert_eq!(grace["grace_until"], "2026-02-15T09:00:00Z");
    assert_eq!(grace["full_service"], true);
    site.check("2026-02-15T08:59:59Z").code(agent_exit::GRACE);
    let expired = site
        .check("2026-02-15T09:00:00Z")
        .code(agent_exit::EMERGENCY_ONLY)
        .json();
    assert_eq!(expired["verdict"], "expired_emergency_only");
    assert_eq!(expired["full_service"], false);
    assert_eq!(expired["days_since_renewal"], 44);

    // The vendor's daily notice names it with the days since renewal.
    let overdue = vendor
        .at("2026-02-16T00:00:00Z", &["report", "overdue", "--json"])
        .ok()
        .json();
    let text = overdue.to_string();
    assert!(text.contains("SW-2026-000001"), "{text}");
    assert!(text.contains("Example Dental Clinic"), "{text}");
    assert!(text.contains("TA-7000"), "{text}");
    assert!(text.contains("\"days_since_renewal\":44"), "{text}");

    // A renewal file carried by hand restores full service at once.
    let req = site.request("2026-02-16T10:00:00Z");
    let (run, lic) = vendor.answer("2026-02-16T10:00:00Z", &["renew"], &req, "renewal.lic");
    run.ok();
    let status = site.install(&lic, "2026-02-16T10:00:00Z").ok().json();
    assert_eq!(status["mode"], "full");
    assert_eq!(status["days_since_renewal"], 0);
    site.check("2026-02-17T10:00:00Z").code(agent_exit::FULL);
}

#[test]
fn three_hour_checks_72_hours_of_grace_then_locked() {
    let vendor = Vendor::new();
    let catalog = vendor.catalog_with(
        "three-hourly.toml",
        &[(
            "lease = \"30d\"\nmax_lease = \"366d\"\nrenewal_window = \"7d\"\ncheck_interval = \"1d\"\ngrace = \"14d\"\nafter_grace = \"emergency_only\"",
            "lease = \"1d\"\nmax_lease = \"366d\"\nrenewal_window = \"3h\"\ncheck_interval = \"3h\"\ngrace = \"72h\"\nafter_grace = \"locked\"",
        )],
    );
    let catalog = catalog.to_str().unwrap().to_owned();
    let site = Site::appliance("HW-A1A1-0004", 4);
    site.trust(&vendor);
    OrderSpec::default().write(&vendor, "order.toml");
    let req = site.request(T0);
    let (run, lic) = vendor.answer(
        T0,
        &["--catalog", &catalog, "issue", "--order", "order.toml"],
        &req,
        "activation.lic",
    );
    assert_eq!(run.ok().json()["lease_end"], "2026-01-03T09:00:00Z");
    let status = site.install(&lic, T0).ok().json();
    assert_eq!(status["next_check"], "2026-01-02T12:00:00Z");
    let inspect = vendor
        .tessera(&["inspect", "activation.lic", "--json"])
        .ok()
        .stdout;
    assert!(inspect.contains("locked"), "{inspect}");

    site.check("2026-01-03T08:00:00Z")
        .code(agent_exit::RENEWAL_DUE);
    let grace = site
        .check("2026-01-03T09:00:00Z")
        .code(agent_exit::GRACE)
        .json();
    assert_eq!(grace["grace_until"], "2026-01-06T09:00:00Z");
    site.check("2026-01-06T08:59:59Z").code(agent_exit::GRACE);
    let locked = site
        .check("2026-01-06T09:00:00Z")
        .code(agent_exit::LOCKED)
        .json();
    assert_eq!(locked["verdict"], "expired_locked");
    assert_eq!(locked["mode"], "locked");

    // Reconnected: the renewal restores full service at once.
    let req = site.request("2026-01-07T09:00:00Z");
    let (run, lic) = vendor.answer(
        "2026-01-07T09:00:00Z",
        &["--catalog", &catalog, "renew"],
        &req,
        "renewal.lic",
    );
    run.ok();
    site.install(&lic, "2026-01-07T09:00:00Z").ok();
    site.check("2026-01-07T12:00:00Z").code(agent_exit::FULL);
}
