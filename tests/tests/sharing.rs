//! Sharing licenses for failover with `tessera share`: user licenses live
//! on the server, a client without licenses of its own uses them. Same
//! customer, per-user PBXs, a Cloud PBX only as a server; a vendor-side
//! action.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{activate, agent_exit, vendor_exit, OrderSpec, Site, Vendor};

const T0: &str = "2026-01-02T09:00:00Z";
const SHARE: &str = "2026-01-05T09:00:00Z";
/// The registry allocates these in this order ([`cloud_server`]).
const SERVER: &str = "SW-2026-000001";
const CLIENT: &str = "SW-2026-000002";

/// A Cloud server PBX with users, licensed and running.
fn cloud_server() -> (Vendor, Site) {
    let vendor = Vendor::new();
    let spec = OrderSpec {
        platform: "cloud",
        cycle: "monthly",
        pbx_name: "Cloud HQ",
        ..OrderSpec::default()
    };
    assert_eq!(vendor.add_pbx_as(T0, &spec), SERVER);
    assert_eq!(
        vendor.add_pbx(T0, "vm", "yearly", "Example Dental Clinic"),
        CLIENT
    );
    let server = Site::cloud(SERVER, 1);
    let order = spec.write(&vendor, "server.toml");
    activate(&vendor, &server, &order, T0, "server.lic");
    (vendor, server)
}

fn share(vendor: &Vendor, client_request: Option<&std::path::Path>, client: &str) -> common::Run {
    match client_request {
        Some(req) => {
            vendor
                .answer(
                    SHARE,
                    &[
                        "share",
                        "--server",
                        SERVER,
                        "--client",
                        client,
                        "--server-output",
                        "server-2.lic",
                    ],
                    req,
                    "client.lic",
                )
                .0
        }
        None => vendor.at(
            SHARE,
            &[
                "share",
                "--server",
                SERVER,
                "--client",
                client,
                "-o",
                "client.lic",
                "--server-output",
                "server-2.lic",
                "--json",
            ],
        ),
    }
}

#[test]
fn a_cloud_server_shares_its_users_with_a_vm_client() {
    let (vendor, server) = cloud_server();
    let client = Site::vm(CLIENT, 2);
    client.trust(&vendor);
    let req = client.request(SHARE);
    let out = share(&vendor, Some(&req), CLIENT).ok().json();
    assert_eq!(out["client"]["serial"], CLIENT);
    assert_eq!(out["client"]["platform"], "vm");
    assert_eq!(out["client"]["customer"], "Example Dental Clinic");
    assert_eq!(out["server"]["serial"], SERVER);

    // The server's role is marked: a new server license.
    let s = server
        .install(&vendor.path("server-2.lic"), SHARE)
        .code(agent_exit::FULL)
        .json();
    assert_eq!(s["sharing"]["role"], "server");
    assert_eq!(s["entitlements"]["total_users"], 35);

    // The client carries no entitlements, only the server's serial.
    let c = client
        .install(&vendor.path("client.lic"), SHARE)
        .code(agent_exit::FULL)
        .json();
    assert_eq!(c["sharing"]["role"], "client");
    assert_eq!(c["sharing"]["server"], SERVER);
    assert_eq!(c["entitlements"]["total_users"], 0);
    assert_eq!(c["entitlements"]["profiles"].as_array().unwrap().len(), 0);
    let inspected = vendor.tessera(&["inspect", "client.lic"]).ok().stdout;
    assert!(
        inspected.contains(&format!("client of {SERVER}")),
        "{inspected}"
    );

    // The client renews like any PBX and stays a client.
    let req = client.request("2026-01-20T09:00:00Z");
    let (run, lic) = vendor.answer("2026-01-20T09:00:00Z", &["renew"], &req, "client-2.lic");
    run.ok();
    let c = client.install(&lic, "2026-01-20T09:00:00Z").ok().json();
    assert_eq!(c["sharing"]["server"], SERVER);
}

#[test]
fn an_existing_pbx_without_licenses_becomes_a_client() {
    let (vendor, _server) = cloud_server();
    // A HW appliance licensed with zero users (a standby box).
    let standby = Site::appliance("HW-5TBY-0001", 3);
    let order = OrderSpec {
        pbx_name: "Standby",
        storage_units: 0,
        profiles: &[("PBX-BASIC", 0)],
        extra: "",
        ..OrderSpec::default()
    }
    .write(&vendor, "standby.toml");
    let (summary, _) = activate(&vendor, &standby, &order, T0, "standby.lic");
    let serial = summary["serial"].as_str().unwrap().to_owned();
    let out = share(&vendor, None, &serial).ok().json();
    assert_eq!(out["client"]["sequence"], 2);
    let c = standby
        .install(&vendor.path("client.lic"), SHARE)
        .code(agent_exit::FULL)
        .json();
    assert_eq!(c["sharing"]["server"], SERVER);
}

#[test]
fn sharing_refusals() {
    let (vendor, _server) = cloud_server();

    // A Cloud PBX can only be a server.
    let cloud_client = Site::cloud("SW-2026-700002", 4);
    let req = cloud_client.request(SHARE);
    share(&vendor, Some(&req), "SW-2026-700002")
        .code(vendor_exit::POLICY)
        .says("a Cloud PBX can only be a sharing server");

    // A client has no licenses of its own.
    let busy = Site::appliance("HW-BU5Y-0001", 5);
    let order = OrderSpec::default().write(&vendor, "busy.toml");
    let (summary, _) = activate(&vendor, &busy, &order, T0, "busy.lic");
    let busy_serial = summary["serial"].as_str().unwrap().to_owned();
    share(&vendor, None, &busy_serial)
        .code(vendor_exit::POLICY)
        .says("a sharing client has no licenses of its own");

    // Only within one customer.
    let spec = OrderSpec {
        platform: "vm",
        customer: "Other Customer Ltd",
        storage_units: 0,
        profiles: &[("PBX-BASIC", 0)],
        extra: "",
        ..OrderSpec::default()
    };
    let other_serial = vendor.add_pbx_as(T0, &spec);
    let other = Site::vm(&other_serial, 6);
    let order = spec.write(&vendor, "other.toml");
    activate(&vendor, &other, &order, T0, "other.lic");
    share(&vendor, None, &other_serial)
        .code(vendor_exit::POLICY)
        .says("licenses are only shared within one customer");

    // Not with itself.
    share(&vendor, None, SERVER)
        .code(vendor_exit::POLICY)
        .says("cannot be a sharing client of itself");

    // A client cannot serve others, and a server needs user licenses.
    let vm = Site::vm(CLIENT, 2);
    let req = vm.request(SHARE);
    share(&vendor, Some(&req), CLIENT).ok();
    vendor
        .at(
            SHARE,
            &[
                "share",
                "--server",
                CLIENT,
                "--client",
                &other_serial,
                "-o",
                "x.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("is not a sharing server");
    vendor
        .at(
            SHARE,
            &[
                "share",
                "--server",
                &other_serial,
                "--client",
                CLIENT,
                "-o",
                "y.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("has no user licenses to share");
    // A client never gets licenses of its own by a change.
    OrderSpec {
        platform: "vm",
        sharing: "client-of SW-2026-000001",
        ..OrderSpec::default()
    }
    .write(&vendor, "client-more.toml");
    vendor
        .at(
            SHARE,
            &[
                "modify",
                "--serial",
                CLIENT,
                "--order",
                "client-more.toml",
                "-o",
                "z.lic",
            ],
        )
        .code(vendor_exit::POLICY)
        .says("a sharing client has no licenses of its own");
}
