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
