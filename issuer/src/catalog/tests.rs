use super::*;

fn broken(from: &str, to: &str) -> CatalogError {
    assert!(DEFAULT_CATALOG.contains(from), "{from}");
    Catalog::parse("test.toml", &DEFAULT_CATALOG.replacen(from, to, 1)).unwrap_err()
}

fn line_of_text(needle: &str) -> usize {
    line_of(DEFAULT_CATALOG, DEFAULT_CATALOG.find(needle).unwrap())
}

#[test]
fn default_catalog_loads_with_appendix_a_codes() {
    let c = Catalog::default_catalog().unwrap();
    assert_eq!(c.vendor, "tessera-vendor");
    assert_eq!(c.storage_unit_gb, 10);
    let profiles: Vec<_> = c
        .profiles
        .iter()
        .map(|p| (p.code, p.name.as_str()))
        .collect();
    assert_eq!(
        profiles,
        [
            (1, "PBX-BASIC"),
            (2, "UC-ESSENTIAL"),
            (3, "UC-BUSINESS"),
            (4, "UC-PREMIUM"),
            (5, "UC-WIZYCONF"),
            (6, "PBX-SERVICE")
        ]
    );
    assert_eq!(c.base("phone system").unwrap().code, 4);
    assert_eq!(c.addon("team_chat").unwrap().code, 8);
    assert_eq!(
        c.addon("license_call_recording_unlimited_enabled")
            .unwrap()
            .code,
        9
    );
    assert_eq!(c.addon_name(3), "license_dnc_checking_enabled");
    assert_eq!(c.addon_name(99), "add-on #99");
    let hw = c.platform(Platform::Hw).unwrap();
    assert_eq!(hw.check_interval, 86_400);
    assert_eq!(hw.grace, 14 * 86_400);
    assert_eq!(hw.after_grace, AfterGrace::EmergencyOnly);
    assert_eq!(hw.threshold, 3);
    let cloud = c.platform(Platform::Cloud).unwrap();
    assert_eq!(cloud.grace, 0);
    assert_eq!(cloud.check_interval, 3 * 3_600);
    assert!(c.feature("remote_diagnostics").unwrap().hidden);
    assert_eq!(c.package("Contact-Center").unwrap().features.len(), 3);
    assert_eq!(c.text(), DEFAULT_CATALOG);
    assert!(c.holidays.is_empty());
}

#[test]
fn holidays_are_dates_sorted_once() {
    let text = DEFAULT_CATALOG.replacen(
        "holidays = []",
        "holidays = [\"2026-12-26\", \"2026-12-25\", \" 2026-12-25 \"]",
        1,
    );
    let c = Catalog::parse("test.toml", &text).unwrap();
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    assert_eq!(c.holidays, [day(25), day(26)]);
    // A catalog without [calendar] (written before it existed) still loads.
    let old = DEFAULT_CATALOG
        .replacen("[calendar]", "", 1)
        .replacen("holidays = []", "", 1);
    assert!(Catalog::parse("old.toml", &old)
        .unwrap()
        .holidays
        .is_empty());
}

#[test]
fn a_holiday_that_is_no_date_is_refused_with_its_line() {
    let e = broken("holidays = []", "holidays = [\"2026-02-30\"]");
    let CatalogError::Invalid { line, reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*line, line_of_text("holidays = []"));
    assert!(
        reason.contains("2026-02-30") && reason.contains("YYYY-MM-DD"),
        "{reason}"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let e = broken("unit_gb = 10", "unit_gb = ten");
    let CatalogError::Syntax { line, file, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(file, "test.toml");
    assert_eq!(*line, line_of_text("unit_gb = 10"));
}

#[test]
fn unknown_field_is_refused() {
    let e = broken("unit_gb = 10", "unit_gb = 10\nunit_tb = 1");
    assert!(matches!(e, CatalogError::Syntax { .. }), "{e:?}");
    assert!(e.to_string().contains("unit_tb"), "{e}");
}

#[test]
fn duplicate_code_names_both_lines() {
    let e = broken(
        "code = 2\nname = \"UC-ESSENTIAL\"",
        "code = 1\nname = \"UC-ESSENTIAL\"",
    );
    let first = line_of_text("code = 1\nname = \"PBX-BASIC\"");
    let second = line_of_text("code = 2\nname = \"UC-ESSENTIAL\"");
    assert_eq!(
        e.to_string(),
        format!("test.toml:{second}: duplicate profile code 1 (first used on line {first}): each profile needs its own code")
    );
}

#[test]
fn same_code_in_other_namespace_is_fine() {
    // Profile 1, base 1, add-on 1, feature 1 and service 1 coexist.
    let c = Catalog::default_catalog().unwrap();
    assert_eq!(c.profile_name(1), "PBX-BASIC");
    assert_eq!(c.base_name(1), "Auto Attendant");
    assert_eq!(c.service_name(1), "hardware-as-a-service");
}

#[test]
fn duplicate_name_any_case() {
    let e = broken("name = \"UC-WIZYCONF\"", "name = \"pbx-basic\"");
    assert!(
        e.to_string().contains("duplicate profile name `pbx-basic`"),
        "{e}"
    );
}

#[test]
fn unknown_feature_in_package() {
    let e = broken(
        "features = [\"conference_room\", \"fax\"]",
        "features = [\"conference_room\", \"telepathy\"]",
    );
    let line = line_of_text("features = [\"conference_room\", \"fax\"]");
    assert_eq!(
        e.to_string(),
        format!("test.toml:{line}: unknown feature `telepathy` in package `collaboration`: define it in a [[feature]] first")
    );
}

#[test]
fn code_out_of_range() {
    let e = broken(
        "code = 9\nname = \"license_call",
        "code = 70000\nname = \"license_call",
    );
    assert!(
        e.to_string().contains("addon code 70000 is out of range"),
        "{e}"
    );
}

#[test]
fn bad_category() {
    let e = broken("category = \"core\"", "category = \"free\"");
    assert!(
        e.to_string().contains("unknown feature category `free`"),
        "{e}"
    );
}

#[test]
fn cloud_has_no_grace() {
    let e = broken("grace = \"0s\"", "grace = \"1d\"");
    assert!(
        e.to_string().contains("platform.cloud.grace must be 0"),
        "{e}"
    );
}

#[test]
fn threshold_within_binding() {
    let e = broken("threshold = 2", "threshold = 4");
    assert!(
        e.to_string()
            .contains("platform.cloud.threshold 4 must be between 1 and the 3"),
        "{e}"
    );
}

#[test]
fn required_must_be_bound() {
    let e = broken("required = [\"hw_serial\"]", "required = [\"ip_addr\"]");
    assert!(e.to_string().contains("not in its binding"), "{e}");
}

#[test]
fn unknown_component_and_bad_duration() {
    let e = broken("\"hw_serial\", \"nic_mac\"", "\"hw_serial\", \"nic\"");
    assert!(
        e.to_string().contains("unknown identity component `nic`"),
        "{e}"
    );
    let e = broken("lease = \"30d\"", "lease = \"a month\"");
    assert!(e.to_string().contains("is not a duration"), "{e}");
}

#[test]
fn missing_platform() {
    let text = DEFAULT_CATALOG.replace("[platform.cloud]", "[platform.kubernetes]");
    let e = Catalog::parse("t", &text).unwrap_err();
    assert!(e.to_string().contains("unknown field `kubernetes`"), "{e}");
    let text = DEFAULT_CATALOG.replace("[platform.cloud]", "[cloud]");
    let text = &text[..text.find("[cloud]").unwrap()];
    let e = Catalog::parse("t", text).unwrap_err();
    assert!(e.to_string().contains("[platform.cloud] is missing"), "{e}");
}

#[test]
fn wrong_format() {
    let e = broken("format = 1", "format = 2");
    assert!(
        e.to_string().starts_with("test.toml:12: catalog format 2"),
        "{e}"
    );
}

#[test]
fn count_limits_default_and_per_item() {
    let c = Catalog::default_catalog().unwrap();
    assert_eq!(c.max_count, DEFAULT_MAX_COUNT);
    assert_eq!(c.max_storage_units, DEFAULT_MAX_STORAGE_UNITS);
    assert_eq!(c.max_count(None), DEFAULT_MAX_COUNT);
    let text =
        DEFAULT_CATALOG.replacen("name = \"PBX-BASIC\"", "name = \"PBX-BASIC\"\nmax = 500", 1);
    let c = Catalog::parse("t", &text).unwrap();
    assert_eq!(c.profile("PBX-BASIC").unwrap().max, Some(500));
    assert_eq!(c.max_count(c.profile("PBX-BASIC").unwrap().max), 500);
    for bad in ["max_count = 0", "max_count = -1", "max_count = 4294967296"] {
        let e = broken("max_count = 100000", bad);
        assert!(e.to_string().contains("out of range"), "{e}");
    }
    let text = DEFAULT_CATALOG.replacen("name = \"queue\"", "name = \"queue\"\nmax = 0", 1);
    let e = Catalog::parse("t", &text).unwrap_err();
    assert!(e.to_string().contains("feature `queue`: max"), "{e}");
}

#[test]
fn errors_quote_a_huge_value_or_name_as_a_prefix_and_its_length() {
    let huge = "A".repeat(2 * 1024 * 1024);
    let prefix = format!("`{}... (2,097,152 bytes)`", "A".repeat(80));
    let cases = [
        ("unit_gb = 10", format!("unit_gb = 10\n{huge} = 1")),
        ("holidays = []", format!("holidays = [\"{huge}\"]")),
        ("lease = \"30d\"", format!("lease = \"{huge}\"")),
        (
            "after_grace = \"emergency_only\"",
            format!("after_grace = \"{huge}\""),
        ),
    ];
    for (from, to) in cases {
        let e = broken(from, &to).to_string();
        assert!(e.len() < 600, "{from}: {} bytes", e.len());
        assert!(e.contains(&prefix), "{from}: {e}");
    }
    // Escaped, also in the parser's own message.
    let e = broken("unit_gb = 10", "unit_gb = 10\n\"a\\u001b[2Jb\" = 1").to_string();
    assert!(e.contains("unknown field `a\\u{1b}[2Jb`"), "{e}");
}
