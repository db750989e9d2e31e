//! Profiles, base licenses and add-ons by catalog name or numeric code.
//!
//! Names come from the configured catalog (`catalog` in `agent.toml` or
//! `--catalog`), else from the default catalog of `spec/FORMAT.md`
//! Appendix A ([`Catalog::builtin`]). Names match without regard to case;
//! a number is always taken as a code.

use crate::catalog::{kind_word, Catalog, CodeKind};

use super::model::SeatLicense;
use super::SeatError;

/// Code of the Phone System base license in the default catalog.
pub const PHONE_SYSTEM_CODE: u16 = 4;
/// Name of the Phone System base license.
pub const PHONE_SYSTEM_NAME: &str = "Phone System";

/// Code ↔ name for seats.
#[derive(Clone, Debug)]
pub struct Names {
    catalog: Catalog,
    builtin: bool,
}

impl Default for Names {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Names {
    /// Names from `catalog`, else the default catalog.
    #[must_use]
    pub fn new(catalog: Option<&Catalog>) -> Self {
        match catalog {
            Some(c) => Self {
                catalog: c.clone(),
                builtin: false,
            },
            None => Self {
                catalog: Catalog::builtin(),
                builtin: true,
            },
        }
    }

    /// Whether the names are the default catalog's.
    #[must_use]
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// The code of `spec` (a name or a number) in namespace `kind`.
    ///
    /// # Errors
    /// [`SeatError::UnknownName`], listing the names known.
    pub fn code(&self, kind: CodeKind, spec: &str) -> Result<u16, SeatError> {
        let s = spec.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map_err(|_| self.unknown(kind, spec));
        }
        self.find(kind, s).ok_or_else(|| self.unknown(kind, spec))
    }

    fn find(&self, kind: CodeKind, name: &str) -> Option<u16> {
        self.catalog
            .entries(kind)
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(c, _)| c)
    }

    fn unknown(&self, kind: CodeKind, spec: &str) -> SeatError {
        let known: Vec<&str> = self.catalog.entries(kind).map(|(_, n)| n).collect();
        SeatError::UnknownName {
            kind: kind_word(kind),
            name: spec.to_owned(),
            known: if known.is_empty() {
                "(the catalog names none: use numeric codes)".into()
            } else {
                known.join(", ")
            },
        }
    }

    /// A profile by name or code.
    ///
    /// # Errors
    /// [`SeatError::UnknownName`].
    pub fn profile(&self, spec: &str) -> Result<SeatLicense, SeatError> {
        self.code(CodeKind::Profile, spec).map(SeatLicense::Profile)
    }

    /// A base license by name or code.
    ///
    /// # Errors
    /// [`SeatError::UnknownName`].
    pub fn base(&self, spec: &str) -> Result<SeatLicense, SeatError> {
        self.code(CodeKind::Base, spec).map(SeatLicense::Base)
    }

    /// An add-on by name or code.
    ///
    /// # Errors
    /// [`SeatError::UnknownName`].
    pub fn addon(&self, spec: &str) -> Result<u16, SeatError> {
        self.code(CodeKind::Addon, spec)
    }

    /// The license of a mass-configuration `extension_key`:
    /// `profile:NAME|CODE`, `base:NAME|CODE`, or a bare base license name
    /// or code (a bare name that is no base license but a profile is taken
    /// as the profile).
    ///
    /// # Errors
    /// [`SeatError::UnknownName`], [`SeatError::AmbiguousName`].
    pub fn license_key(&self, key: &str) -> Result<SeatLicense, SeatError> {
        let k = key.trim();
        if let Some((prefix, rest)) = k.split_once(':') {
            if prefix.trim().eq_ignore_ascii_case("profile") {
                return self.profile(rest);
            }
            if prefix.trim().eq_ignore_ascii_case("base") {
                return self.base(rest);
            }
        }
        if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
            return self.base(k);
        }
        match (
            self.find(CodeKind::Base, k),
            self.find(CodeKind::Profile, k),
        ) {
            (Some(b), None) => Ok(SeatLicense::Base(b)),
            (None, Some(p)) => Ok(SeatLicense::Profile(p)),
            (Some(_), Some(_)) => Err(SeatError::AmbiguousName(k.to_owned())),
            (None, None) => Err(self.unknown(CodeKind::Base, key)),
        }
    }

    /// The `extension_key` written by an export: the bare name of a base
    /// license, `profile:NAME` for a profile (codes where the catalog has
    /// no name).
    #[must_use]
    pub fn license_key_of(&self, l: SeatLicense) -> String {
        match l {
            SeatLicense::Base(c) => match self.catalog.name(CodeKind::Base, c) {
                // A bare name that is a profile's too would be ambiguous.
                Some(name) if self.find(CodeKind::Profile, name).is_some() => {
                    format!("base:{name}")
                }
                Some(name) => name.to_owned(),
                None => format!("base:{c}"),
            },
            SeatLicense::Profile(c) => format!(
                "profile:{}",
                self.catalog
                    .name(CodeKind::Profile, c)
                    .map_or_else(|| c.to_string(), str::to_owned)
            ),
        }
    }

    /// The name of `code`, or `code N`.
    #[must_use]
    pub fn name(&self, kind: CodeKind, code: u16) -> String {
        self.catalog
            .name(kind, code)
            .map_or_else(|| format!("code {code}"), str::to_owned)
    }

    /// The name of `code` if the catalog has one.
    #[must_use]
    pub fn name_opt(&self, kind: CodeKind, code: u16) -> Option<String> {
        self.catalog.name(kind, code).map(str::to_owned)
    }

    /// The license's name (`UC-BUSINESS`, `Phone System`, `profile 7`).
    #[must_use]
    pub fn license_name(&self, l: SeatLicense) -> String {
        let (kind, word) = match l {
            SeatLicense::Profile(_) => (CodeKind::Profile, "profile"),
            SeatLicense::Base(_) => (CodeKind::Base, "base"),
        };
        self.catalog
            .name(kind, l.code())
            .map_or_else(|| format!("{word} {}", l.code()), str::to_owned)
    }

    /// The add-on's name (`call_recording`, `add-on 12`).
    #[must_use]
    pub fn addon_name(&self, code: u16) -> String {
        self.catalog
            .name(CodeKind::Addon, code)
            .map_or_else(|| format!("add-on {code}"), str::to_owned)
    }

    /// The add-on's name, or its code as a number (what an export writes,
    /// so that it imports back).
    #[must_use]
    pub fn addon_name_or_code(&self, code: u16) -> String {
        self.catalog
            .name(CodeKind::Addon, code)
            .map_or_else(|| code.to_string(), str::to_owned)
    }

    /// The code of the Phone System base license: the catalog's base
    /// license named `Phone System`, else 4.
    #[must_use]
    pub fn phone_system(&self) -> u16 {
        self.find(CodeKind::Base, PHONE_SYSTEM_NAME)
            .unwrap_or(PHONE_SYSTEM_CODE)
    }
}
