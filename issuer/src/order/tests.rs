use super::*;

const EXAMPLE: &str = include_str!("../../examples/order.toml");

fn catalog() -> Catalog {
    Catalog::default_catalog().unwrap()
}

fn example() -> Order {
    Order::parse("order.toml", EXAMPLE, false).unwrap()
}

#[test]
fn example_resolves() {
    let c = catalog();
    let r = example().resolve(&c).unwrap();
    assert_eq!(r.platform, Platform::Hw);
    assert_eq!(r.cycle, Cycle::Yearly);
    assert_eq!(r.total_users(), 52);
    let e = &r.entitlements;
    assert_eq!(e.profiles.len(), 6);
    assert_eq!(e.storage_units, 0);
    let f = |name: &str| {
        let code = c.feature(name).unwrap().code;
        *e.features.iter().find(|f| f.code == code).unwrap()
    };
    assert_eq!(f("ring_group").quantity, 4);
    // General feature from a package defaults to the user count.
    assert_eq!(f("call_center_analytics").quantity, 52);
    assert!(f("call_center_analytics").hidden);
    // Core features are always in, with quantity 1.
    assert_eq!(f("call_forwarding").quantity, 1);
    assert!(f("remote_diagnostics").hidden);
    assert!(f("announcement").hidden);
    assert_eq!(f("voicemail").quantity, 52);
    assert_eq!(e.bases.len(), 2);
    assert_eq!(e.bases[0].code, 2);
    assert_eq!(e.bases[1].addons.len(), 4);
    assert_eq!(r.services.len(), 2);
    assert!(r.services.iter().any(|s| s.start.is_some()));
}

#[test]
fn json_orders_are_accepted() {
    let o = example();
    let json = o.to_json();
    let back = Order::parse("order.json", &json, true).unwrap();
    assert_eq!(back, o);
}

#[test]
fn unknown_names_list_the_known_ones() {
    let mut o = example();
    o.profiles.insert("UC-GALACTIC".into(), 1);
    let e = o.resolve(&catalog()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown profile `UC-GALACTIC` in the order; the catalog knows: PBX-BASIC, UC-ESSENTIAL, UC-BUSINESS, UC-PREMIUM, UC-WIZYCONF, PBX-SERVICE"
    );
    let mut o = example();
    o.bases
        .get_mut("Phone System")
        .unwrap()
        .addons
        .insert("hologram".into(), 1);
    assert!(matches!(
        o.resolve(&catalog()),
        Err(OrderError::UnknownName { kind: "add-on", .. })
    ));
}

#[test]
fn syntax_errors_name_the_line() {
    let text = EXAMPLE.replace("cycle = \"yearly\"", "cycle = \"weekly\"");
    let e = Order::parse("o.toml", &text, false).unwrap_err();
    let OrderError::Syntax { line, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(line, 8);
    let e = Order::parse("o.json", "{\n\"customer\": 1}", true).unwrap_err();
    assert!(matches!(e, OrderError::Syntax { line: 2, .. }), "{e:?}");
}

#[test]
fn sharing_roles() {
    let parse = |s: &str| SharingOrder::try_from(s.to_owned());
    assert_eq!(parse("none").unwrap(), SharingOrder::None);
    assert_eq!(parse("server").unwrap(), SharingOrder::Server);
    assert_eq!(
        parse("client-of SW-2026-000001").unwrap(),
        SharingOrder::ClientOf("SW-2026-000001".into())
    );
    assert!(parse("client-of").is_err());
    assert!(parse("client-ofX").is_err());
    assert!(parse("master").is_err());
    assert_eq!(
        String::from(SharingOrder::ClientOf("S".into())),
        "client-of S"
    );
}

#[test]
fn client_gets_no_entitlements() {
    let mut o = example();
    o.sharing = SharingOrder::ClientOf("SW-2026-000001".into());
    let r = o.resolve(&catalog()).unwrap();
    assert_eq!(r.entitlements, EntitlementsData::default());
    assert!(o.grants_anything());
}

#[test]
fn bad_dates_and_lengths() {
    let mut o = example();
    o.term_start = "next monday".into();
    assert!(matches!(
        o.resolve(&catalog()),
        Err(OrderError::BadDate { .. })
    ));
    let mut o = example();
    o.pbx_name = "n".repeat(65);
    assert!(matches!(
        o.resolve(&catalog()),
        Err(OrderError::TooLong {
            field: "pbx_name",
            ..
        })
    ));
}

#[test]
fn counts_are_bounded_by_the_catalog() {
    let mut o = example();
    o.profiles.insert("PBX-BASIC".into(), u32::MAX);
    let e = o.resolve(&catalog()).unwrap_err();
    assert!(
        matches!(
            &e,
            OrderError::Invalid(InvalidInput::TooMany {
                what: "profile",
                max: 100_000,
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("4294967295"), "{e}");
    let mut o = example();
    o.storage_units = 100_001;
    assert!(o.resolve(&catalog()).is_err());
    let mut o = example();
    if let Some(b) = o.bases.values_mut().next() {
        b.count = 100_001;
    }
    assert!(o.resolve(&catalog()).is_err());
    let mut o = example();
    o.features
        .insert("queue".into(), FeatureOrder::Quantity(100_001));
    assert!(o.resolve(&catalog()).is_err());
    // At the bound is fine.
    let mut o = example();
    o.profiles.insert("PBX-BASIC".into(), 100_000);
    o.resolve(&catalog()).unwrap();
}

#[test]
fn text_fields_are_refused_naming_the_field() {
    type Edit = fn(&mut Order);
    let cases: [(&str, Edit); 6] = [
        ("customer", |o| o.customer = "ACME\u{1b}[2J".into()),
        ("pbx_name", |o| o.pbx_name = "Main\u{202e}".into()),
        ("model", |o| o.model = Some("TA\u{7}".into())),
        ("devices[1].label", |o| o.devices[0].label = "x\0".into()),
        ("assignments[1].user", |o| {
            o.assignments.push(Assignment {
                user: "=evil\r\n".into(),
                ..Assignment::default()
            });
        }),
        ("sharing (client-of)", |o| {
            o.sharing = SharingOrder::ClientOf("../server".into());
        }),
    ];
    for (field, edit) in cases {
        let mut o = example();
        if o.devices.is_empty() {
            o.devices.push(AttachedDevice {
                model: "T54W".into(),
                id: "80:5e:c0:11:22:33".into(),
                label: String::new(),
            });
        }
        edit(&mut o);
        let e = o.resolve(&catalog()).unwrap_err();
        assert!(matches!(e, OrderError::Invalid(_)), "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
}

/// The error reading `text` as the order file `o.toml` (written to a
/// temporary folder, read as `tessera issue --order` reads it).
fn load_error(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let e = Order::load(&path).unwrap_err().to_string();
    e.replace(&dir.path().display().to_string(), "DIR")
}

const HEAD: &str = "customer = \"A\"\nplatform = \"hw\"\ncycle = \"yearly\"\n";

#[test]
fn order_file_errors_name_the_file_the_field_and_what_is_expected() {
    let hint = "; `tessera catalog example-order` prints an order with every field, each explained";
    let cases = [
        (
            "platform = \"hw\"\ncycle = \"yearly\"\nterm_start = \"2026-01-01\"\n".to_owned(),
            "order DIR/o.toml, line 1: the required field `customer` is missing",
        ),
        (
            format!("{HEAD}term_start = \"2026-01-01\"\n[profiles]\nPBX-BASIC = \"ten\"\n"),
            "order DIR/o.toml, line 6: field `profiles.PBX-BASIC`: expected a whole number (0 or more, no quotes), found the text \"ten\"",
        ),
        (
            format!("{HEAD}term_start = \"2026-01-01\"\nusers = 3\n"),
            "order DIR/o.toml, line 5: unknown field `users` (known here: customer, pbx_name, model,",
        ),
        (
            format!("{}term_start = \"2026-01-01\"\n", HEAD.replace("yearly", "weekly")),
            "order DIR/o.toml, line 3: field `cycle`: `weekly` is not one of: monthly, yearly, 5y, lifetime",
        ),
        (
            format!("{HEAD}term_start = \"2026-13-01\"\n"),
            "order DIR/o.toml, line 4: field `term_start`: `2026-13-01` is not a date or time",
        ),
        (
            format!("{HEAD}term_start = \"2026-01-01\"\n[services.sound-pack]\nstart = \"soon\"\n"),
            "order DIR/o.toml, line 6: field `services.sound-pack.start`: `soon` is not a date or time",
        ),
        (
            format!("{HEAD}term_start = 2026-01-01\n"),
            "order DIR/o.toml, line 4: field `term_start`: expected text in double quotes, found a table, or a date without double quotes",
        ),
        (
            format!("{HEAD}term_start = \"2026-01-01\"\n[features]\nivr = \"x\"\n"),
            "order DIR/o.toml, line 6: field `features.ivr`: expected a quantity",
        ),
        (
            // An entry of a list of tables, counted from 1 as in JSON.
            format!("{HEAD}term_start = \"2026-01-01\"\n[[devices]]\nmodel = \"a\"\nid = \"1\"\n[[devices]]\nmodel = \"b\"\nid = \"2\"\ncolour = \"red\"\n"),
            "order DIR/o.toml, line 11: unknown field `devices[2].colour` (known here: model, id, label)",
        ),
        (
            format!("{HEAD}term_start = \"2026-01-01\"\n[[assignments]]\nuser = \"a\"\n[[assignments]]\nuser = 5\n"),
            "order DIR/o.toml, line 8: field `assignments[2].user`: expected text in double quotes, found the number 5",
        ),
    ];
    for (text, says) in cases {
        let e = load_error("o.toml", &text);
        assert!(e.starts_with(says), "{e}\nshould start with\n{says}");
        assert!(e.ends_with(hint), "{e}");
        assert!(!e.contains("issuer/examples"), "{e}");
    }
    let e = load_error(
        "o.json",
        "{\"customer\": \"A\", \"platform\": \"hw\", \"cycle\": \"yearly\", \"term_start\": \"2026-01-01\", \"userz\": 1}",
    );
    // The line and column once, in the error's words, not serde_json's
    // "at line 1 column 90" too.
    assert!(
        e.starts_with(
            "order DIR/o.json, line 1, column 90: unknown field `userz` (known here: customer,"
        ),
        "{e}"
    );
    assert_eq!(e.matches("column").count(), 1, "{e}");
}

/// A JSON order: the required fields and `rest` (JSON members, after a
/// comma), one member a line.
fn json_order(rest: &str) -> String {
    format!(
        "{{\n  \"customer\": \"A\",\n  \"platform\": \"hw\",\n  \"cycle\": \"yearly\",\n  \"term_start\": \"2026-01-01\",\n{rest}\n}}\n"
    )
}

#[test]
fn json_order_errors_give_the_path_of_the_field_and_its_line_and_column() {
    let cases = [
        (
            "  \"profiles\": {\"PBX-BASIC\": 2,\n    \"UC-PREMIUM\": \"ten\"}",
            "order DIR/o.json, line 7, column 23: field `profiles.UC-PREMIUM`: expected a whole number (0 or more, no quotes), found the text \"ten\"",
        ),
        (
            "  \"assignments\": [{\"user\": \"a\"}, {\"user\": \"b\"},\n    {\"user\": \"c\"}, {\"extension\": \"104\", \"user\": 5}]",
            "order DIR/o.json, line 7, column 49: field `assignments[4].user`: expected text in double quotes, found the number 5",
        ),
        (
            "  \"devices\": [{\"model\": \"T54W\", \"id\": \"1\"},\n    {\"model\": \"T54W\", \"id\": \"2\", \"colour\": \"red\"}]",
            "order DIR/o.json, line 7, column 41: unknown field `devices[2].colour` (known here: model, id, label)",
        ),
        (
            "  \"bases\": {\"Phone System\": {\"count\": 3, \"addons\": {\"call_recording\": -1}}}",
            "order DIR/o.json, line 6, column 72: field `bases.Phone System.addons.call_recording`: expected a whole number (0 or more, no quotes), found the number -1",
        ),
        (
            "  \"bases\": {\"Call Group\": {\"addons\": {}}}",
            "order DIR/o.json, line 6, column 40: the required field `count` of [bases.Call Group] is missing",
        ),
        (
            "  \"features\": {\"ivr\": 2, \"queue\": \"lots\"}",
            "order DIR/o.json, line 6, column 40: field `features.queue`: expected a quantity (a whole number) or a table such as { quantity = 10, hidden = true }, found the text \"lots\"",
        ),
        (
            "  \"services\": {\"sound-pack\": {\"start\": 20260801}}",
            "order DIR/o.json, line 6, column 47: field `services.sound-pack.start`: expected text in double quotes, found the number 20260801",
        ),
        (
            // A brace, a bracket and an escaped quote inside strings
            // are no structure.
            "  \"pbx_name\": \"{[\\\"x\",\n  \"devices\": [{\"model\": \"}]\", \"id\": true}]",
            "order DIR/o.json, line 7, column 40: field `devices[1].id`: expected text in double quotes, found true",
        ),
    ];
    for (rest, says) in cases {
        let e = load_error("o.json", &json_order(rest));
        assert!(e.starts_with(says), "{e}\nshould start with\n{says}");
    }
}

#[test]
fn errors_quote_a_huge_value_or_name_as_a_prefix_and_its_length() {
    let huge = "A".repeat(2 * 1024 * 1024);
    let prefix = format!("`{}... (2,097,152 bytes)`", "A".repeat(80));
    // The path of a field is shown as one: `profiles.` and the name.
    for (name, text) in [
        (
            "o.toml",
            format!("{HEAD}term_start = \"2026-01-01\"\n[profiles]\n{huge} = \"x\"\n"),
        ),
        (
            "o.json",
            json_order(&format!("  \"profiles\": {{\"{huge}\": \"x\"}}")),
        ),
    ] {
        let e = load_error(name, &text);
        assert!(
            e.contains(&format!(
                "field `profiles.{}... (2,097,161 bytes)`: expected",
                "A".repeat(71)
            )),
            "{e}"
        );
        assert!(e.len() < 600, "{}", e.len());
    }
    let cases = [
        ("o.toml", format!("{HEAD}term_start = \"2026-01-01\"\n{huge} = 1\n")),
        ("o.toml", format!("customer = \"A\"\nplatform = \"{huge}\"\ncycle = \"yearly\"\nterm_start = \"2026-01-01\"\n")),
        ("o.toml", format!("{HEAD}term_start = \"2026-01-01\"\nsharing = \"{huge}\"\n")),
        ("o.json", json_order(&format!("  \"{huge}\": 1"))),
        ("o.json", json_order(&format!("  \"sharing\": \"{huge}\""))),
        ("o.json", format!("{{\"customer\": \"A\", \"platform\": \"{huge}\"}}")),
    ];
    for (name, text) in cases {
        let e = load_error(name, &text);
        assert!(e.len() < 600, "{name}: {} bytes: {}", e.len(), &e[..600]);
        assert!(e.contains(&prefix), "{name}: {e}");
    }
    // A date: the value is the date given.
    let e = load_error(
        "o.toml",
        &format!("{HEAD}term_start = \"2026-01-01{huge}\"\n"),
    );
    assert!(
        e.contains("... (2,097,162 bytes)` is not a date or time"),
        "{e}"
    );
    assert!(e.len() < 600, "{}", e.len());
    // A value found where a number belongs: the text found is the value.
    let e = load_error(
        "o.json",
        &json_order(&format!("  \"profiles\": {{\"PBX-BASIC\": \"{huge}\"}}")),
    );
    assert!(
        e.contains(&format!(
            "found the text \"{}... (2,097,152 bytes)\"",
            "A".repeat(80)
        )),
        "{e}"
    );
}

#[test]
fn quoted_values_are_escaped_and_cut_between_characters() {
    // Control characters: escaped, also when the parser's own message
    // quoted them (`{:?}`), and the length is the value's, in bytes.
    let e = load_error(
        "o.json",
        &json_order(&format!(
            "  \"profiles\": {{\"PBX-BASIC\": \"\\u001b[2J\\n{}\"}}",
            "é".repeat(100)
        )),
    );
    assert!(
        e.contains(&format!(
            "found the text \"\\u{{1b}}[2J\\u{{a}}{}... (205 bytes)\"",
            "é".repeat(66)
        )),
        "{e}"
    );
    assert!(!e.contains('\u{1b}'), "{e:?}");
    // A multi-byte character at the cut: never split.
    for lead in 0..4 {
        let name = format!("{}{}", "a".repeat(lead), "😀".repeat(100));
        let e = load_error(
            "o.toml",
            &format!("{HEAD}term_start = \"2026-01-01\"\n\"{name}\" = 1\n"),
        );
        let shown = format!("{}{}", "a".repeat(lead), "😀".repeat(80 - lead));
        assert!(
            e.contains(&format!(
                "unknown field `{shown}... ({} bytes)`",
                lead + 400
            )),
            "{e}"
        );
    }
    // A short value is shown whole, escaped.
    let e = load_error(
        "o.toml",
        &format!("{HEAD}term_start = \"2026-01-01\"\nsharing = \"odd\\u0007\"\n"),
    );
    assert!(e.contains("sharing `odd\\u{7}` is not"), "{e}");
}

#[test]
fn the_example_order_printed_is_one_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.toml");
    std::fs::write(&path, crate::order::EXAMPLE).unwrap();
    Order::load(&path).unwrap().resolve(&catalog()).unwrap();
}
