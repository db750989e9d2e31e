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
    /// # Errors
    /// The parser's message; a name with a control or format character.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        let mut names = BTreeMap::new();
        for (kind, entries) in [
            (CodeKind::Profile, file.profile),
            (CodeKind::Feature, file.feature),
            (CodeKind::Base, file.base),
            (CodeKind::Addon, file.addon),
            (CodeKind::Service, file.service),
        ] {
            for e in entries {
                // Names are shown on terminals and written into CSV files.
                tessera_verifier::text::check(&e.name).map_err(|fault| {
                    format!(
                        "the name of code {} (`{}`): {fault}",
                        e.code,
                        tessera_verifier::text::escaped(&e.name)
                    )
                })?;
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

    /// The default catalog of `spec/FORMAT.md` Appendix A (profiles, base
    /// licenses and add-ons), used for names when no catalog is
    /// configured.
    ///
    /// ```
    /// use tessera_device::catalog::{Catalog, CodeKind};
    /// let c = Catalog::builtin();
    /// assert_eq!(c.name(CodeKind::Profile, 3), Some("UC-BUSINESS"));
    /// assert_eq!(c.name(CodeKind::Base, 4), Some("Phone System"));
    /// assert_eq!(c.name(CodeKind::Addon, 9), Some("license_call_recording_unlimited_enabled"));
    /// ```
    #[must_use]
    pub fn builtin() -> Self {
        let mut names = BTreeMap::new();
        for (kind, list) in [
            (CodeKind::Profile, &DEFAULT_PROFILES[..]),
            (CodeKind::Base, &DEFAULT_BASES[..]),
            (CodeKind::Addon, &DEFAULT_ADDONS[..]),
        ] {
            for (code, name) in list {
                names.insert((slot(kind), *code), (*name).to_owned());
            }
        }
        Self { names }
    }
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
