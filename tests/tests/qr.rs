//! QR codes across the air gap: the site shows its request as a QR code,
//! the vendor reads the picture and answers with a license QR code, the
//! site installs from the picture. An independent decoder (zbarimg, Debian
//! zbar-tools) reads the request's PNG; skipped without it, except under
//! `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{agent_exit, carry, OrderSpec, Site, Vendor};
use tessera_tests::tools::require_tool;

const T0: &str = "2026-01-02T09:00:00Z";

/// The version of a QR code PNG written by tessera (8 pixels per module,
/// a 4-module quiet zone): the PNG header's width.
fn png_version(png: &[u8]) -> u32 {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    (width / 8 - 8 - 17) / 4
}

#[test]
fn request_and_license_travel_as_qr_codes() {
    let vendor = Vendor::new();
    let order = OrderSpec::default().write(&vendor, "order.toml");
    let site = Site::appliance("HW-QRC0-0001", 1);
    site.trust(&vendor);

    // The site: the request as a file and as images of its QR code.
    let out = site.outbox();
    let (txt, png, svg) = (
        out.join("req.txt"),
        out.join("req.png"),
        out.join("req.svg"),
    );
    site.agent(&[
        "request",
        "-o",
        txt.to_str().unwrap(),
        "--qr-png",
        png.to_str().unwrap(),
        "--qr-svg",
        svg.to_str().unwrap(),
        "--now",
        T0,
    ])
    .ok()
    .says("QR code: version ");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    // An independent decoder reads the same request bytes the file holds.
    if let Some(zbarimg) = require_tool("zbarimg", "zbar-tools") {
        let read = Command::new(zbarimg)
            .args(["--quiet", "--raw", "-Sbinary"])
            .arg(&png)
            .output()
            .unwrap();
        assert!(read.status.success());
        let armored = std::fs::read_to_string(&txt).unwrap();
        let body: String = armored
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let decoded = base64_decode(&body);
        // zbarimg writes binary data as it is, but some versions end it
        // with a line feed; the request's last byte may be 0x0a itself.
        let exact = read.stdout == decoded;
        let with_line_end = read.stdout.strip_suffix(b"\n") == Some(decoded.as_slice());
        assert!(exact || with_line_end, "{:?} != {:?}", read.stdout, decoded);
    }

    // The vendor reads the picture and writes the license's QR code too.
    let req = carry(&png, vendor.dir());
    let order = order.file_name().unwrap().to_str().unwrap();
    vendor
        .at(
            T0,
            &[
                "issue",
                "--order",
                order,
                "--request",
                req.file_name().unwrap().to_str().unwrap(),
                "-o",
                "a.lic",
                "--qr-png",
                "a.png",
                "--qr-svg",
                "a.svg",
            ],
        )
        .ok()
        .says("wrote a.png (QR code, version ");
    let license_png = std::fs::read(vendor.path("a.png")).unwrap();
    let version = png_version(&license_png);
    assert!(version <= 20, "version {version}");
    // Existing images are not overwritten without --force.
    vendor
        .at(
            T0,
            &[
                "renew",
                "--request",
                "req.png",
                "-o",
                "b.lic",
                "--qr-png",
                "a.png",
            ],
        )
        .code(common::vendor_exit::USAGE)
        .says("a.png exists");

    // The site installs from the picture; the vendor inspects it too.
    site.install(&vendor.path("a.png"), T0)
        .code(agent_exit::FULL);
    let inspected = vendor.tessera(&["inspect", "a.png", "--json"]).ok().json();
    let from_file = vendor.tessera(&["inspect", "a.lic", "--json"]).ok().json();
    assert_eq!(inspected, from_file);
}

#[test]
fn the_request_qr_code_prints_on_standard_output() {
    let site = Site::appliance("HW-QRC0-0002", 2);
    let vendor = Vendor::new();
    site.trust(&vendor);
    let run = site.agent(&["request", "--qr", "--now", T0]).ok();
    // Not a terminal here: plain half blocks, dark modules drawn, no
    // escape sequences, no armored text.
    assert!(!run.stdout.contains("BEGIN TESSERA"), "{}", run.stdout);
    assert!(!run.stdout.contains('\x1b'));
    let lines: Vec<&str> = run.stdout.lines().collect();
    // 17 + 4 x version modules and a quiet zone of 4 on each side: as many
    // columns, and half as many lines (two rows of modules per line).
    let columns = lines[0].chars().count();
    assert_eq!((columns - 8 - 17) % 4, 0, "{columns} columns");
    assert!((columns - 25) / 4 <= 20);
    assert_eq!(lines.len(), columns.div_ceil(2));
    assert!(lines.iter().all(|l| l.chars().count() == columns));
    assert!(run.stdout.contains('█') && run.stdout.contains('▀'));
    run.says("request written to standard output as a QR code");
    // With -o FILE the file is written as well.
    let file = site.outbox().join("r.txt");
    site.agent(&["request", "--qr", "-o", file.to_str().unwrap(), "--now", T0])
        .ok();
    assert!(std::fs::read_to_string(file)
        .unwrap()
        .starts_with("-----BEGIN TESSERA REQUEST-----"));
}

#[test]
fn a_picture_without_a_code_is_refused_with_advice() {
    let vendor = Vendor::new();
    let order = OrderSpec::default().write(&vendor, "order.toml");
    // A PNG of nothing: 64x64 white pixels.
    let blank = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x40, 0x08, 0x00, 0x00, 0x00, 0x00, 0x8f,
        0x02, 0x2e, 0x02, 0x00, 0x00, 0x00, 0x29, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0xed, 0xcc,
        0x41, 0x11, 0x00, 0x00, 0x0c, 0x02, 0x20, 0xfb, 0x97, 0xd6, 0x10, 0xfb, 0xed, 0x20, 0x00,
        0xe9, 0x51, 0x04, 0x02, 0x81, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x81, 0x40, 0x20, 0x10,
        0x7c, 0x0f, 0x06, 0xa7, 0x0b, 0xf0, 0xe2, 0xaa, 0xf0, 0x0c, 0x32, 0x00, 0x00, 0x00, 0x00,
        0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    std::fs::write(vendor.path("blank.png"), blank).unwrap();
    vendor
        .at(
            T0,
            &[
                "issue",
                "--order",
                order.file_name().unwrap().to_str().unwrap(),
                "--request",
                "blank.png",
                "-o",
                "x.lic",
            ],
        )
        .code(common::vendor_exit::USAGE)
        .says("blank.png: no QR code found in the image");
    assert!(!vendor.path("x.lic").exists());
    let site = Site::appliance("HW-QRC0-0003", 3);
    site.trust(&vendor);
    let run = site
        .install(&vendor.path("blank.png"), T0)
        .code(agent_exit::REFUSED);
    assert_eq!(common::agent_error(&run), "qr");
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap();
        acc = (acc << 6) | u32::try_from(v).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    out
}
