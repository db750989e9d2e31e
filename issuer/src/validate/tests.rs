use tessera_verifier::samples;

use super::*;

#[test]
fn sw_serial_grammar() {
    for ok in ["SW-2026-000001", "SW-1999-999999", "SW-2026-500001"] {
        assert!(is_sw_serial(ok), "{ok}");
        sw_serial("serial", ok).unwrap();
    }
    for bad in [
        "",
        "SW-2026-00001",
        "SW-2026-0000001",
        "SW-2026-1000000",
        "sw-2026-000001",
        "SW-2026-000001\n",
        " SW-2026-000001",
        "SW-2026_000001",
        "SW-202A-000001",
        "../escaped",
        "/etc/passwd",
        "../../etc/passwd",
        "SW-2026-00000\u{0661}",
        "SW-2026-000001/../x",
        "anything-goes",
    ] {
        assert!(!is_sw_serial(bad), "{bad:?}");
        let e = sw_serial("the request's SW serial", bad).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("SW-YYYY-NNNNNN"), "{m}");
        assert!(m.starts_with("the request's SW serial"), "{m}");
        assert_eq!(check_printable(&m), Ok(()), "{m}");
    }
}

fn check_printable(s: &str) -> Result<(), TextFault> {
    tessera_verifier::text::check(s)
}

#[test]
fn hw_serials_are_normalized_before_use() {
    for raw in [
        "HW-7F3A-0042",
        "  HW-7F3A-0042  ",
        "hw-7f3a-0042",
        "\thw-7F3A-0042\n",
    ] {
        assert_eq!(
            hw_serial("HW serial", raw).unwrap(),
            "HW-7F3A-0042",
            "{raw:?}"
        );
    }
    for bad in [
        "",
        "   ",
        "HW\u{1b}[2J",
        "HW\0",
        "HW-\u{202e}0042",
        "HW-\u{7}",
    ] {
        let e = hw_serial("the request's HW serial", bad).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("the request's HW serial"), "{m}");
        assert_eq!(check_printable(&m), Ok(()), "{m}");
    }
    let long = "H".repeat(65);
    assert!(hw_serial("HW serial", &long).is_err());
}

#[test]
fn serial_arguments_are_sw_or_normalized_hw() {
    assert_eq!(
        serial_arg("--serial", " SW-2026-000001 ").unwrap(),
        "SW-2026-000001"
    );
    assert_eq!(
        serial_arg("--serial", "hw-7f3a-0042").unwrap(),
        "HW-7F3A-0042"
    );
    let m = serial_arg("--serial", "\u{1b}]0;x\u{7}")
        .unwrap_err()
        .to_string();
    assert!(m.contains("not a SW serial"), "{m}");
    assert_eq!(check_printable(&m), Ok(()), "{m}");
}

#[test]
fn text_fields_refuse_control_and_format_characters_naming_the_field() {
    text("customer", "Müller & Söhne GmbH").unwrap();
    for (value, code) in [
        ("ACME\u{1b}[2J", "U+001B"),
        ("ACME\0", "U+0000"),
        ("bell\u{7}", "U+0007"),
        ("ACME\u{202e}gpj.exe", "U+202E"),
        ("line\nbreak", "U+000A"),
    ] {
        let m = text("customer", value).unwrap_err().to_string();
        assert!(m.starts_with("customer `"), "{m}");
        assert!(m.contains(code), "{m}");
        assert_eq!(check_printable(&m), Ok(()), "{m}");
    }
    let long = "x".repeat(MAX_TEXT_LEN + 1);
    assert!(matches!(
        text("label", &long),
        Err(InvalidInput::TooLong { .. })
    ));
}

#[test]
fn requests_must_be_fresh_and_name_valid_serials() {
    let now = samples::T0;
    let r = samples::request();
    request(r.clone(), now, DEFAULT_REQUEST_WINDOW).unwrap();
    // Spacing and case of the HW serial are normalized away.
    let mut spaced = r.clone();
    spaced.hw_serial = Some("  hw-7f3a-0042 ".into());
    assert_eq!(
        request(spaced, now, DEFAULT_REQUEST_WINDOW)
            .unwrap()
            .hw_serial
            .as_deref(),
        Some("HW-7F3A-0042")
    );
    for created_at in [i64::MIN, i64::MAX, 0, now - 31 * DAY, now + 31 * DAY] {
        let mut old = r.clone();
        old.created_at = created_at;
        let e = request(old, now, DEFAULT_REQUEST_WINDOW).unwrap_err();
        assert!(
            matches!(e, InvalidInput::StaleRequest { .. }),
            "{created_at}: {e}"
        );
        assert!(e.to_string().contains("30d"), "{e}");
        assert!(e.to_string().contains("TESSERA_REQUEST_WINDOW"), "{e}");
    }
    // Another caller names its own setting, with the same advice, once.
    let mut old = r.clone();
    old.created_at = now - 31 * DAY;
    let e = request_within(old, now, 300, "`--freshness` of tessera-server")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("within 5m of it (`--freshness` of tessera-server)"),
        "{e}"
    );
    assert!(!e.contains("request_window"), "{e}");
    assert_eq!(e.matches("clock").count(), 2, "{e}");
    let mut edge = r.clone();
    edge.created_at = now - 30 * DAY;
    request(edge, now, DEFAULT_REQUEST_WINDOW).unwrap();
    let mut path = r;
    path.serial = Some("../escaped".into());
    assert!(matches!(
        request(path, now, DEFAULT_REQUEST_WINDOW),
        Err(InvalidInput::SwSerial { .. })
    ));
}

#[test]
fn licenses_are_checked_before_signing() {
    let mut l = samples::typical();
    license(&l).unwrap();
    l.customer = "Mallory\u{1b}[1A".into();
    let m = license(&l).unwrap_err().to_string();
    assert!(m.starts_with("customer"), "{m}");
    let mut l = samples::typical();
    l.serial = "SW-2026-000001\n".into();
    assert!(matches!(license(&l), Err(InvalidInput::SwSerial { .. })));
    let mut l = samples::typical();
    l.previous_serial = Some("hw-7f3a-0042".into());
    assert!(matches!(license(&l), Err(InvalidInput::HwSerial { .. })));
    let mut l = samples::sharing_client();
    l.sharing = SharingData::Client("../server".into());
    assert!(matches!(license(&l), Err(InvalidInput::SwSerial { .. })));
}

#[test]
fn a_device_key_component_must_be_the_signers() {
    use tessera_verifier::binding::component_digest;
    use tessera_verifier::claims::Identity;
    let now = samples::T0;
    let mut r = samples::request();
    let own = Identity {
        kind: ComponentKind::DEVICE_KEY,
        digest: component_digest(&r.salt, ComponentKind::DEVICE_KEY, &r.device_key),
    };
    r.identity.push(own);
    request(r.clone(), now, DEFAULT_REQUEST_WINDOW).unwrap();
    // The same request re-signed with another key keeps the original's
    // component: refused, naming the field.
    let mut copy = r.clone();
    copy.device_key = ed25519_dalek::SigningKey::from_bytes(&[0x33; 32])
        .verifying_key()
        .to_bytes();
    let e = request(copy.clone(), now, DEFAULT_REQUEST_WINDOW).unwrap_err();
    assert!(matches!(e, InvalidInput::DeviceKeyMismatch { .. }), "{e}");
    let m = e.to_string();
    assert!(m.contains("`device_key`"), "{m}");
    assert!(m.contains(&hex::encode(&copy.device_key[..8])), "{m}");
    assert!(m.contains("tessera-agent request"), "{m}");
    // A digest under another salt is not the signer's either.
    let mut salted = r.clone();
    salted.identity.last_mut().unwrap().digest =
        component_digest(&[9; 16], ComponentKind::DEVICE_KEY, &r.device_key);
    assert!(request(salted, now, DEFAULT_REQUEST_WINDOW).is_err());
    // Without the component, nothing to compare.
    request(samples::request(), now, DEFAULT_REQUEST_WINDOW).unwrap();
}

#[test]
fn shown_quotes_a_huge_value_as_a_prefix_and_its_length() {
    let huge = "A".repeat(2 * 1024 * 1024);
    assert_eq!(
        shown(&huge),
        format!("{}... (2,097,152 bytes)", "A".repeat(SHOWN_CHARS))
    );
    // At the bound nothing is cut; one more character is.
    let at = "b".repeat(SHOWN_CHARS);
    assert_eq!(shown(&at), at);
    let over = "b".repeat(SHOWN_CHARS + 1);
    assert_eq!(
        shown(&over),
        format!("{}... (81 bytes)", "b".repeat(SHOWN_CHARS))
    );
}

#[test]
fn shown_cuts_between_characters_never_inside_one() {
    // Two-, three- and four-byte characters, with the cut falling on
    // each: the prefix is whole characters and the length is in bytes.
    for (ch, bytes) in [("é", 2), ("€", 3), ("😀", 4)] {
        for lead in 0..4 {
            let value = format!("{}{}", "a".repeat(lead), ch.repeat(100));
            let s = shown(&value);
            let (prefix, rest) = s.split_once("... (").unwrap();
            assert_eq!(prefix.chars().count(), SHOWN_CHARS, "{s}");
            assert!(value.starts_with(prefix), "{s}");
            assert_eq!(rest, format!("{} bytes)", lead + 100 * bytes), "{s}");
        }
    }
}

#[test]
fn shown_escapes_control_characters_and_never_cuts_an_escape() {
    assert_eq!(shown("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
    assert_eq!(shown("x\u{202e}y"), "x\\u{202e}y");
    // Each ESC prints as six characters: 13 fit in 80, the 14th is left
    // out whole.
    let s = shown(&"\u{1b}".repeat(1000));
    assert_eq!(s, format!("{}... (1,000 bytes)", "\\u{1b}".repeat(13)));
    assert!(!s.contains('\u{1b}'));
}

#[test]
fn grouped_puts_a_comma_between_groups_of_three() {
    for (n, text) in [
        (0, "0"),
        (999, "999"),
        (1_000, "1,000"),
        (65_536, "65,536"),
        (2_097_152, "2,097,152"),
        (1_000_000_000, "1,000,000,000"),
    ] {
        assert_eq!(grouped(n), text);
    }
}
