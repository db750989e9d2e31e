//! Names for the catalog codes a license carries (`spec/FORMAT.md` §2),
//! read from the vendor's catalog TOML (the issuer's `--catalog` file).
//!
//! Only `code` and `name` of `[[profile]]`, `[[feature]]`, `[[base]]`,
//! `[[addon]]` and `[[service]]` entries are read; everything else in the
//! file (policy, packages, descriptions) is the issuer's business and is
//! ignored here, so a newer catalog still names what an older agent shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::one_line;
use crate::store::{read_file, shown, FileError};

/// Largest catalog file read, in bytes.
pub const MAX_CATALOG_LEN: u64 = 1024 * 1024;

/// Why the catalog cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file was refused (not a regular file, larger than
    /// [`MAX_CATALOG_LEN`]) or cannot be read.
    #[error("the catalog: {0}; pass --catalog with the vendor's catalog file or leave it out")]
    File(#[from] FileError),
    /// The file does not exist.
    #[error("the catalog {} does not exist; pass --catalog with the vendor's catalog file or leave it out", shown(.0))]
    Missing(PathBuf),
    /// The file is not a catalog.
    #[error("the catalog {} is not valid: {message}", shown(.path))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct Entry {
    code: u16,
    name: String,
}

#[derive(Deserialize)]
struct CatalogFile {
    #[serde(default)]
    profile: Vec<Entry>,
    #[serde(default)]
    feature: Vec<Entry>,
    #[serde(default)]
    base: Vec<Entry>,
    #[serde(default)]
    addon: Vec<Entry>,
    #[serde(default)]
    service: Vec<Entry>,
}

/// One code namespace of the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// User profiles.
    Profile,
    /// Features.
    Feature,
    /// Base licenses.
    Base,
    /// Add-ons.
    Addon,
    /// Services.
    Service,
}

/// Code → name maps, one per [`CodeKind`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    names: BTreeMap<(u8, u16), String>,
}

fn slot(kind: CodeKind) -> u8 {
    match kind {
        CodeKind::Profile => 0,
        CodeKind::Feature => 1,
        CodeKind::Base => 2,
        CodeKind::Addon => 3,
        CodeKind::Service => 4,
    }
}

impl Catalog {
    /// Reads a catalog file.
    ///
    /// # Errors
    /// [`CatalogError::File`], [`CatalogError::Missing`], [`CatalogError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let bytes = read_file(path, MAX_CATALOG_LEN, None, "catalog")?
            .ok_or_else(|| CatalogError::Missing(path.to_owned()))?;
        let invalid = |message: String| CatalogError::Invalid {
            path: path.to_owned(),
            message,
        };
        let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
        Self::parse(&text).map_err(invalid)
    }

    /// Parses catalog text.
    ///
    /// ```
    /// use tessera_device::catalog::{Catalog, CodeKind};
    /// let c = Catalog::parse("[[profile]]\ncode = 1\nname = \"PBX-BASIC\"\n").unwrap();
    /// assert_eq!(c.name(CodeKind::Profile, 1), Some("PBX-BASIC"));
    /// assert_eq!(c.name(CodeKind::Feature, 1), None);
    /// ```
    ///
    /// Names are checked so that each one reads back as the code it names
    /// (`seats` take names and codes, and an export must import back as
    /// it was): a code named twice in one kind, and for profiles, base
    /// licenses and add-ons a name that is empty or has surrounding
    /// spaces, a name that is a number (numbers are codes), a profile or
    /// base license name that starts with `profile:` or `base:` (the CSV
    /// prefixes), and two names of one kind that differ only in case
    /// (names match without regard to case) are refused, naming both
    /// entries.
    ///
    /// # Errors
    /// The parser's message; a name with a control or format character; a
    /// name that collides with a code or another name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let mut names: BTreeMap<(u8, u16), String> = BTreeMap::new();
        for (kind, entries) in [
            (CodeKind::Profile, file.profile),
            (CodeKind::Feature, file.feature),
            (CodeKind::Base, file.base),
            (CodeKind::Addon, file.addon),
            (CodeKind::Service, file.service),
        ] {
            // Lower-cased name → the entry that has it, for seat kinds.
            let mut folded: BTreeMap<String, u16> = BTreeMap::new();
            for e in entries {
                let shown = tessera_verifier::text::escaped(&e.name);
                let word = kind_word(kind);
                // Names are shown on terminals and written into CSV files.
                tessera_verifier::text::check(&e.name).map_err(|fault| {
                    format!("the name of {word} code {} (`{shown}`): {fault}", e.code)
                })?;
                if let Some(first) = names.get(&(slot(kind), e.code)) {
                    return Err(format!(
                        "{word} code {} is named twice (`{}` and `{shown}`); give each code one entry",
                        e.code,
                        tessera_verifier::text::escaped(first)
                    ));
                }
                if matches!(kind, CodeKind::Profile | CodeKind::Base | CodeKind::Addon) {
                    name_reads_back(kind, e.code, &e.name)?;
                    if let Some(&other) = folded.get(&e.name.to_lowercase()) {
                        let first = names.get(&(slot(kind), other)).map_or("", String::as_str);
                        return Err(format!(
                            "the {word} names `{}` (code {other}) and `{shown}` (code {}) differ only in case, and names are matched without regard to case; rename one of them",
                            tessera_verifier::text::escaped(first),
                            e.code
                        ));
                    }
                    folded.insert(e.name.to_lowercase(), e.code);
                }
                names.insert((slot(kind), e.code), e.name);
            }
        }
        Ok(Self { names })
    }

    /// The name of `code` in namespace `kind`, if the catalog has one.
    #[must_use]
    pub fn name(&self, kind: CodeKind, code: u16) -> Option<&str> {
        self.names.get(&(slot(kind), code)).map(String::as_str)
    }

    /// Every `(code, name)` of namespace `kind`, in code order.
    pub fn entries(&self, kind: CodeKind) -> impl Iterator<Item = (u16, &str)> + '_ {
        let s = slot(kind);
        self.names
            .range((s, 0)..=(s, u16::MAX))
            .map(|(&(_, code), name)| (code, name.as_str()))
    }

    /// The default catalog: the codes of `spec/FORMAT.md` Appendix A
    /// (profiles, base licenses and add-ons) and the features and
    /// services of the issuer's embedded default catalog
    /// (`issuer/catalog/default.toml`), used for names when no catalog is
    /// configured.
    ///
    /// ```
    /// use tessera_device::catalog::{Catalog, CodeKind};
    /// let c = Catalog::builtin();
    /// assert_eq!(c.name(CodeKind::Profile, 3), Some("UC-BUSINESS"));
    /// assert_eq!(c.name(CodeKind::Base, 4), Some("Phone System"));
    /// assert_eq!(c.name(CodeKind::Addon, 9), Some("license_call_recording_unlimited_enabled"));
    /// assert_eq!(c.name(CodeKind::Feature, 10), Some("call_forwarding"));
    /// assert_eq!(c.name(CodeKind::Service, 2), Some("sound-pack"));
    /// ```
    #[must_use]
    pub fn builtin() -> Self {
        let mut names = BTreeMap::new();
        for (kind, list) in [
            (CodeKind::Profile, &DEFAULT_PROFILES[..]),
            (CodeKind::Base, &DEFAULT_BASES[..]),
            (CodeKind::Addon, &DEFAULT_ADDONS[..]),
            (CodeKind::Feature, &DEFAULT_FEATURES[..]),
            (CodeKind::Service, &DEFAULT_SERVICES[..]),
        ] {
            for (code, name) in list {
                names.insert((slot(kind), *code), (*name).to_owned());
            }
        }
        Self { names }
    }
}

/// How a kind is named in messages.
pub(crate) fn kind_word(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::Profile => "profile",
        CodeKind::Base => "base license",
        CodeKind::Addon => "add-on",
        CodeKind::Feature => "feature",
        CodeKind::Service => "service",
    }
}

/// Refuses a name of a profile, base license or add-on that would not
/// read back as its own code (see [`Catalog::parse`]).
fn name_reads_back(kind: CodeKind, code: u16, name: &str) -> Result<(), String> {
    let word = kind_word(kind);
    let shown = tessera_verifier::text::escaped(name);
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed != name {
        return Err(format!(
            "the name of {word} code {code} (`{shown}`) is empty or has surrounding spaces, and names are matched without them; write the name alone"
        ));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the name of {word} code {code} (`{shown}`) is a number, and numbers are read as codes (`{shown}` means {word} code {shown}); give it a name that is not a number"
        ));
    }
    let prefix = name
        .split_once(':')
        .map(|(p, _)| p.trim().to_ascii_lowercase());
    if matches!(kind, CodeKind::Profile | CodeKind::Base)
        && matches!(prefix.as_deref(), Some("profile" | "base"))
    {
        return Err(format!(
            "the name of {word} code {code} (`{shown}`) starts with `profile:` or `base:`, which a mass-configuration file reads as the kind of license; rename it"
        ));
    }
    Ok(())
}

/// Default profile codes (`spec/FORMAT.md` Appendix A).
pub const DEFAULT_PROFILES: [(u16, &str); 6] = [
    (1, "PBX-BASIC"),
    (2, "UC-ESSENTIAL"),
    (3, "UC-BUSINESS"),
    (4, "UC-PREMIUM"),
    (5, "UC-WIZYCONF"),
    (6, "PBX-SERVICE"),
];

/// Default base license codes (`spec/FORMAT.md` Appendix A).
pub const DEFAULT_BASES: [(u16, &str); 4] = [
    (1, "Auto Attendant"),
    (2, "Call Group"),
    (3, "Developer"),
    (4, "Phone System"),
];

/// Default add-on codes (`spec/FORMAT.md` Appendix A).
pub const DEFAULT_ADDONS: [(u16, &str); 9] = [
    (1, "call_recording"),
    (2, "device_desktop_app"),
    (3, "license_dnc_checking_enabled"),
    (4, "device_ip_phone"),
    (5, "device_mobile_app"),
    (6, "device_web_rtc"),
    (7, "license_number"),
    (8, "team_chat"),
    (9, "license_call_recording_unlimited_enabled"),
];

/// Default feature codes (the issuer's default catalog).
pub const DEFAULT_FEATURES: [(u16, &str); 13] = [
    (1, "ring_group"),
    (2, "queue"),
    (3, "ivr"),
    (4, "conference_room"),
    (5, "wallboard"),
    (6, "extension"),
    (7, "voicemail"),
    (8, "announcement"),
    (9, "fax"),
    (10, "call_forwarding"),
    (11, "call_history"),
    (12, "remote_diagnostics"),
    (13, "call_center_analytics"),
];

/// Default service codes (the issuer's default catalog).
pub const DEFAULT_SERVICES: [(u16, &str); 3] = [
    (1, "hardware-as-a-service"),
    (2, "sound-pack"),
    (3, "extended-support"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_issuer_catalog_shape_and_ignores_the_rest() {
        let c = Catalog::parse(
            r#"
            format = 1
            vendor = "tessera-vendor"
            [storage]
            unit_gb = 10
            [[profile]]
            code = 4
            name = "UC-PREMIUM"
            description = "..."
            [[feature]]
            code = 2
            name = "queue"
            category = "instance"
            [[base]]
            code = 4
            name = "Phone System"
            [[addon]]
            code = 1
            name = "call_recording"
            [[service]]
            code = 2
            name = "sound-pack"
            [platform.hw]
            grace = "14d"
            "#,
        )
        .unwrap();
        assert_eq!(c.name(CodeKind::Profile, 4), Some("UC-PREMIUM"));
        assert_eq!(c.name(CodeKind::Feature, 2), Some("queue"));
        assert_eq!(c.name(CodeKind::Base, 4), Some("Phone System"));
        assert_eq!(c.name(CodeKind::Addon, 1), Some("call_recording"));
        assert_eq!(c.name(CodeKind::Service, 2), Some("sound-pack"));
        assert_eq!(c.name(CodeKind::Service, 4), None);
    }

    #[test]
    fn bad_files_are_reported() {
        assert!(Catalog::parse("[[profile]]\ncode = 70000\nname = \"x\"").is_err());
        assert!(Catalog::parse("[[profile]]\nname = \"x\"").is_err());
        assert!(Catalog::parse("not toml =").is_err());
        let dir = tempfile::tempdir().unwrap();
        let e = Catalog::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(e.to_string().contains("--catalog"));
    }

    fn entries(kind: &str, list: &[(u16, &str)]) -> String {
        list.iter()
            .map(|(c, n)| format!("[[{kind}]]\ncode = {c}\nname = \"{n}\"\n"))
            .collect()
    }

    #[test]
    fn names_that_collide_with_codes_or_each_other_are_refused_naming_both() {
        let cases: [(String, &[&str]); 8] = [
            (
                entries("base", &[(4, "2"), (2, "4")]),
                &["base license code 4", "`2`", "is a number"],
            ),
            (
                entries("profile", &[(1, "PBX-BASIC"), (3, "pbx-basic")]),
                &[
                    "`PBX-BASIC` (code 1)",
                    "`pbx-basic` (code 3)",
                    "differ only in case",
                ],
            ),
            (
                entries("addon", &[(1, "call_recording"), (1, "team_chat")]),
                &[
                    "add-on code 1 is named twice",
                    "`call_recording`",
                    "`team_chat`",
                ],
            ),
            (
                entries("base", &[(1, "Profile:UC-BUSINESS")]),
                &["base license code 1", "`profile:` or `base:`"],
            ),
            (
                entries("profile", &[(2, " UC-ESSENTIAL")]),
                &["profile code 2", "surrounding spaces"],
            ),
            (entries("addon", &[(3, "")]), &["add-on code 3", "empty"]),
            (
                entries("addon", &[(3, "007")]),
                &["add-on code 3", "is a number"],
            ),
            (
                entries("feature", &[(2, "queue"), (2, "ivr")]),
                &["feature code 2 is named twice", "`queue`", "`ivr`"],
            ),
        ];
        for (text, expect) in cases {
            let e = Catalog::parse(&text).unwrap_err();
            for word in expect {
                assert!(e.contains(word), "{word} not in: {e}");
            }
        }
        // Features and services are only shown, never looked up by name:
        // a number or a case twin there is allowed.
        let c = Catalog::parse(&format!(
            "{}{}",
            entries("feature", &[(1, "911"), (2, "Queue"), (3, "queue")]),
            entries("service", &[(1, "2")])
        ))
        .unwrap();
        assert_eq!(c.name(CodeKind::Feature, 1), Some("911"));
        // The same name in two kinds is fine (exports write `base:NAME`).
        assert!(Catalog::parse(&format!(
            "{}{}",
            entries("profile", &[(1, "Developer")]),
            entries("base", &[(3, "Developer")])
        ))
        .is_ok());
    }

    #[test]
    fn the_issuers_default_catalog_loads() {
        let c = Catalog::parse(include_str!("../../issuer/catalog/default.toml")).unwrap();
        for (kind, list) in [
            (CodeKind::Profile, &DEFAULT_PROFILES[..]),
            (CodeKind::Base, &DEFAULT_BASES[..]),
            (CodeKind::Addon, &DEFAULT_ADDONS[..]),
        ] {
            for (code, name) in list {
                assert_eq!(c.name(kind, *code), Some(*name));
            }
        }
    }

    #[test]
    fn the_builtin_catalog_names_what_the_issuers_default_catalog_names() {
        let issuer = Catalog::parse(include_str!("../../issuer/catalog/default.toml")).unwrap();
        let builtin = Catalog::builtin();
        for kind in [
            CodeKind::Profile,
            CodeKind::Feature,
            CodeKind::Base,
            CodeKind::Addon,
            CodeKind::Service,
        ] {
            let want: Vec<_> = issuer.entries(kind).collect();
            let have: Vec<_> = builtin.entries(kind).collect();
            assert_eq!(have, want, "{}", kind_word(kind));
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
                let _ = Catalog::parse(&text);
            }
        }
    }
}
