use super::*;

/// The `added` detail as it was made before, through a `Value` tree.
fn through_value(
    allocated: bool,
    text: [&str; 6],
    profiles: &BTreeMap<String, u32>,
    storage: u32,
    values: &PolicyValues,
) -> String {
    let [customer, name, model, platform, cycle, policy] = text;
    serde_json::json!({
        "customer": customer,
        "name": name,
        "model": model,
        "platform": platform,
        "cycle": cycle,
        "profiles": profiles,
        "storage": storage,
        "policy": policy,
        "values": values,
        "allocated": allocated,
    })
    .to_string()
}

#[test]
fn the_added_detail_is_the_text_a_value_tree_made() {
    let values = |after_grace: &str, n: u32| PolicyValues {
        lease: n,
        max_lease: n.saturating_mul(2),
        renewal_window: 7,
        check_interval: u32::MAX,
        grace: 0,
        after_grace: after_grace.into(),
        rollback_tolerance: 86_400,
    };
    let profiles = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    let cases = [
        (
            true,
            [
                "Example Dental Clinic",
                "Main office",
                "X-200",
                "hw",
                "yearly",
                "standard",
            ],
            profiles(&[
                ("UC-BUSINESS", 10),
                ("PBX-BASIC", 0),
                ("UC-PREMIUM", 4_000_000),
            ]),
            0,
            values("emergency_only", 86_400),
        ),
        (
            false,
            // Quotes, backslashes, slashes, non-ASCII and characters JSON
            // escapes (the fold refuses control characters, the text
            // must agree anyway).
            [
                "Zahnarzt \"Müller\" & Söhne",
                "a\\b/c",
                "日本語",
                "cloud",
                "5y",
                "p\u{7f}\u{1}\n",
            ],
            profiles(&[]),
            u32::MAX,
            values("locked", 0),
        ),
        (
            false,
            ["", "", "", "vm", "lifetime", ""],
            profiles(&[("", 1), ("é", 2), ("\u{2028}", 3)]),
            7,
            values("", u32::MAX),
        ),
    ];
    for (allocated, text, profiles, storage, values) in cases {
        let [customer, name, model, platform, cycle, policy] = text.map(str::to_owned);
        let expected = through_value(allocated, text, &profiles, storage, &values);
        let fact = Fact::PbxAdded {
            serial: "SW-2026-000001".into(),
            allocated,
            customer,
            name,
            model,
            platform,
            cycle,
            profiles,
            storage,
            policy,
            values,
        };
        assert_eq!(added_detail(&fact).as_deref(), Some(expected.as_str()));
    }
    assert_eq!(
        added_detail(&Fact::SerialAllocated {
            serial: "SW-2026-000001".into()
        }),
        None
    );
}
