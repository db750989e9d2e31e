//! The vendor's catalog (TOML): user profiles, features by category with
//! packages, base licenses with add-ons, services, the storage unit, and
//! per-platform license defaults (lease, checks, grace, binding).
//!
//! Licenses carry numeric codes (`spec/FORMAT.md` §2); the catalog maps
//! names to codes with one namespace per kind. The embedded default
//! ([`DEFAULT_CATALOG`], `issuer/catalog/default.toml`) uses the codes of
//! `spec/FORMAT.md` Appendix A. Every rule is checked on load and a broken
//! rule names the line it is on.

use core::ops::Range;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tessera_verifier::claims::{AfterGrace, ComponentKind, FeatureCategory, Platform};
use toml::Spanned;

use crate::calendar::{format_duration, parse_duration};
use crate::validate::shown;

/// The embedded default catalog (`issuer/catalog/default.toml`).
pub const DEFAULT_CATALOG: &str = include_str!("../catalog/default.toml");

/// The only catalog format this version reads.
pub const CATALOG_FORMAT: u32 = 1;

/// `[limits] max_count` when the catalog does not say: the highest count
/// of a profile, base license, add-on or feature on one PBX.
pub const DEFAULT_MAX_COUNT: u32 = 100_000;
/// `[limits] max_storage_units` when the catalog does not say.
pub const DEFAULT_MAX_STORAGE_UNITS: u32 = 100_000;

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The catalog file could not be read.
    #[error("cannot read catalog {path}: {source}; check the path given with --catalog")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type / unknown name.
    #[error(
        "{file}:{line}: {reason}; fix the catalog (see `tessera catalog show` for the format)"
    )]
    Syntax {
        /// The file (or `<default>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What the parser said.
        reason: String,
    },
    /// A catalog rule is broken.
    #[error("{file}:{line}: {reason}")]
    Invalid {
        /// The file (or `<default>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// Which rule, and what to do.
        reason: String,
    },
}

/// A named, coded catalog entry (profile, base license, add-on, service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Code carried in licenses.
    pub code: u16,
    /// Name used in orders.
    pub name: String,
    /// Description for people.
    pub description: String,
    /// Highest count an order may give it (`max`); `None`: the catalog's
    /// `[limits] max_count`.
    pub max: Option<u32>,
}

/// A feature definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureDef {
    /// Code carried in licenses.
    pub code: u16,
    /// Name used in orders.
    pub name: String,
    /// How it is counted.
    pub category: FeatureCategory,
    /// Licensed but not shown to the end customer, unless the order says
    /// otherwise.
    pub hidden: bool,
    /// Quantity granted when an order or package does not say; `None`:
    /// the PBX's total user count for general features, 1 otherwise.
    pub default_quantity: Option<u32>,
    /// Description for people.
    pub description: String,
    /// Highest quantity an order may give it (`max`); `None`: the
    /// catalog's `[limits] max_count`.
    pub max: Option<u32>,
}

/// A named set of features sold together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// Name used in orders.
    pub name: String,
    /// Feature names (all defined in the catalog).
    pub features: Vec<String>,
    /// Description for people.
    pub description: String,
}

/// The timing a PBX is licensed under: leases, checks, grace and what
/// follows it. A catalog names these sets (`[[policy]]`); each PBX records
/// the one it was given, with every value, and keeps it whatever catalog
/// later commands run with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyValues {
    /// Validity of one license file (seconds) for an online PBX.
    pub lease: u32,
    /// Longest lease of an air-gapped PBX.
    pub max_lease: u32,
    /// How long before the lease end renewal becomes due.
    pub renewal_window: u32,
    /// How often the PBX checks its license.
    pub check_interval: u32,
    /// Offline grace after the lease end.
    pub grace: u32,
    /// Mode after grace: `emergency_only` or `locked`.
    pub after_grace: String,
    /// Clock rollback tolerance.
    pub rollback_tolerance: u32,
}

impl PolicyValues {
    /// The after-grace mode.
    #[must_use]
    pub fn after_grace_mode(&self) -> AfterGrace {
        if self.after_grace == "locked" {
            AfterGrace::Locked
        } else {
            AfterGrace::EmergencyOnly
        }
    }

    /// Whether the values are usable: a lease, a check interval, a
    /// longest lease at least the lease, a known after-grace mode.
    #[must_use]
    pub fn problem(&self) -> Option<String> {
        if self.lease == 0 {
            Some("its lease is 0".into())
        } else if self.max_lease < self.lease {
            Some("its max_lease is shorter than its lease".into())
        } else if self.check_interval == 0 {
            Some("its check interval is 0".into())
        } else if !matches!(self.after_grace.as_str(), "emergency_only" | "locked") {
            Some(format!(
                "its after-grace mode `{}` is not emergency_only or locked",
                crate::validate::shown(&self.after_grace)
            ))
        } else {
            None
        }
    }

    /// The fields whose values differ from `other`'s, as
    /// `field VALUE (OTHER)`, in catalog order.
    #[must_use]
    pub fn differences(&self, other: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let durations = [
            ("lease", self.lease, other.lease),
            ("max_lease", self.max_lease, other.max_lease),
            ("renewal_window", self.renewal_window, other.renewal_window),
            ("check_interval", self.check_interval, other.check_interval),
            ("grace", self.grace, other.grace),
        ];
        for (field, a, b) in durations {
            if a != b {
                out.push(format!(
                    "{field} {} (catalog: {})",
                    format_duration(a),
                    format_duration(b)
                ));
            }
        }
        if self.after_grace != other.after_grace {
            out.push(format!(
                "after_grace {} (catalog: {})",
                self.after_grace, other.after_grace
            ));
        }
        if self.rollback_tolerance != other.rollback_tolerance {
            out.push(format!(
                "rollback_tolerance {} (catalog: {})",
                format_duration(self.rollback_tolerance),
                format_duration(other.rollback_tolerance)
            ));
        }
        out
    }

    /// A one-line summary.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "lease {} (air-gapped up to {}), renewal window {}, checks every {}, grace {} then {}, rollback tolerance {}",
            format_duration(self.lease),
            format_duration(self.max_lease),
            format_duration(self.renewal_window),
            format_duration(self.check_interval),
            format_duration(self.grace),
            self.after_grace,
            format_duration(self.rollback_tolerance)
        )
    }
}

/// A named policy of the catalog (`[[policy]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPolicy {
    /// Its name (`hw-14d-emergency` ...).
    pub name: String,
    /// Description for people.
    pub description: String,
    /// Its values.
    pub values: PolicyValues,
}

/// License defaults for one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformDefaults {
    /// The name of the platform's default policy (`policy = NAME`, or
    /// `platform-KEY` for a platform that sets the values itself).
    pub policy: String,
    /// Validity of one license file (seconds) for an online PBX.
    pub lease: u32,
    /// Longest lease of an air-gapped PBX (which otherwise gets the term
    /// end; a lifetime one gets this).
    pub max_lease: u32,
    /// How long before the lease end renewal becomes due.
    pub renewal_window: u32,
    /// How often the PBX checks its license.
    pub check_interval: u32,
    /// Offline grace after the lease end.
    pub grace: u32,
    /// Mode after grace.
    pub after_grace: AfterGrace,
    /// Clock rollback tolerance.
    pub rollback_tolerance: u32,
    /// Identity component kinds bound, in preference order.
    pub binding: Vec<ComponentKind>,
    /// Kinds that must always match.
    pub required: Vec<ComponentKind>,
    /// How many bound components must match (k of n).
    pub threshold: u8,
}

/// A checked catalog.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// `iss` of every license.
    pub vendor: String,
    /// GB per storage unit.
    pub storage_unit_gb: u32,
    /// User profiles.
    pub profiles: Vec<Item>,
    /// Features.
    pub features: Vec<FeatureDef>,
    /// Packages.
    pub packages: Vec<Package>,
    /// Base licenses.
    pub bases: Vec<Item>,
    /// Add-ons.
    pub addons: Vec<Item>,
    /// Services.
    pub services: Vec<Item>,
    /// Public holidays (UTC dates): not business days, like Saturdays and
    /// Sundays, for the 1-business-day void window. Sorted, no repeats.
    pub holidays: Vec<chrono::NaiveDate>,
    /// Highest count of any profile, base license, add-on or feature that
    /// does not set its own `max` (`[limits] max_count`).
    pub max_count: u32,
    /// Highest storage units of one PBX (`[limits] max_storage_units`).
    pub max_storage_units: u32,
    /// Named policies, in catalog order (those the platforms define
    /// inline included, as `platform-KEY`).
    pub policies: Vec<NamedPolicy>,
    platforms: BTreeMap<&'static str, PlatformDefaults>,
    text: String,
    source: String,
}

/// The catalog name of a component kind ([`ComponentKind::name`]; `kind-N`
/// for unknown kinds).
#[must_use]
pub fn component_kind_name(kind: ComponentKind) -> String {
    kind.name()
        .map_or_else(|| format!("kind-{}", kind.0), str::to_owned)
}

/// The name of a feature category as written in catalogs.
#[must_use]
pub fn category_name(category: FeatureCategory) -> &'static str {
    match category {
        FeatureCategory::Instance => "instance",
        FeatureCategory::General => "general",
        FeatureCategory::Core => "core",
    }
}

/// The name of an after-grace mode as written in catalogs.
#[must_use]
pub fn after_grace_name(mode: AfterGrace) -> &'static str {
    match mode {
        AfterGrace::EmergencyOnly => "emergency_only",
        AfterGrace::Locked => "locked",
    }
}

fn platform_key(platform: Platform) -> &'static str {
    match platform {
        Platform::Hw => "hw",
        Platform::Vm => "vm",
        Platform::Cloud => "cloud",
    }
}

fn find<'i>(items: &'i [Item], name: &str) -> Option<&'i Item> {
    items.iter().find(|i| i.name.eq_ignore_ascii_case(name))
}

fn name_of(items: &[Item], code: u16) -> Option<&str> {
    items
        .iter()
        .find(|i| i.code == code)
        .map(|i| i.name.as_str())
}

impl Catalog {
    /// The embedded default catalog.
    ///
    /// # Errors
    /// Only if the embedded file is broken, which a test rules out.
    pub fn default_catalog() -> Result<Self, CatalogError> {
        Self::parse("<default>", DEFAULT_CATALOG)
    }

    /// Reads and checks a catalog file.
    ///
    /// # Errors
    /// [`CatalogError::Read`], [`CatalogError::Syntax`],
    /// [`CatalogError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = tessera_keys::storage::read_regular_text(path, crate::output::MAX_INPUT)
            .map_err(|source| CatalogError::Read {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// The catalog from `--catalog` when given, else the default.
    ///
    /// # Errors
    /// As [`Catalog::load`].
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, CatalogError> {
        match path {
            Some(p) => Self::load(p),
            None => Self::default_catalog(),
        }
    }

    /// Parses and checks catalog TOML; `file` names it in errors.
    ///
    /// # Errors
    /// [`CatalogError::Syntax`], [`CatalogError::Invalid`].
    pub fn parse(file: &str, text: &str) -> Result<Self, CatalogError> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError::Syntax {
            file: file.to_owned(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            reason: crate::validate::parser_message(e.message().trim()),
        })?;
        Checker { file, text }.check(raw, text)
    }

    /// The catalog's TOML text, as read.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the catalog came from (`<default>` or a path).
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The defaults for a platform; always present in a checked catalog
    /// (all three platforms are required).
    #[must_use]
    pub fn platform(&self, platform: Platform) -> Option<&PlatformDefaults> {
        self.platforms.get(platform_key(platform))
    }

    /// A named policy (any case).
    #[must_use]
    pub fn policy(&self, name: &str) -> Option<&NamedPolicy> {
        self.policies
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The names of the policies, for messages.
    #[must_use]
    pub fn policy_names(&self) -> String {
        self.policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The default policy of a platform.
    #[must_use]
    pub fn default_policy(&self, platform: Platform) -> Option<&NamedPolicy> {
        self.platform(platform).and_then(|d| self.policy(&d.policy))
    }

    /// A profile by name (any case).
    #[must_use]
    pub fn profile(&self, name: &str) -> Option<&Item> {
        find(&self.profiles, name)
    }

    /// A feature by name (any case).
    #[must_use]
    pub fn feature(&self, name: &str) -> Option<&FeatureDef> {
        self.features
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// A package by name (any case).
    #[must_use]
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// A base license by name (any case).
    #[must_use]
    pub fn base(&self, name: &str) -> Option<&Item> {
        find(&self.bases, name)
    }

    /// An add-on by name (any case).
    #[must_use]
    pub fn addon(&self, name: &str) -> Option<&Item> {
        find(&self.addons, name)
    }

    /// A service by name (any case).
    #[must_use]
    pub fn service(&self, name: &str) -> Option<&Item> {
        find(&self.services, name)
    }

    /// The name of a profile code, or `profile #N` when unknown.
    #[must_use]
    pub fn profile_name(&self, code: u16) -> String {
        name_of(&self.profiles, code).map_or_else(|| format!("profile #{code}"), str::to_owned)
    }

    /// The name of a feature code, or `feature #N` when unknown.
    #[must_use]
    pub fn feature_name(&self, code: u16) -> String {
        self.features
            .iter()
            .find(|f| f.code == code)
            .map_or_else(|| format!("feature #{code}"), |f| f.name.clone())
    }

    /// The name of a base license code, or `base #N` when unknown.
    #[must_use]
    pub fn base_name(&self, code: u16) -> String {
        name_of(&self.bases, code).map_or_else(|| format!("base #{code}"), str::to_owned)
    }

    /// The name of an add-on code, or `add-on #N` when unknown.
    #[must_use]
    pub fn addon_name(&self, code: u16) -> String {
        name_of(&self.addons, code).map_or_else(|| format!("add-on #{code}"), str::to_owned)
    }

    /// The name of a service code, or `service #N` when unknown.
    #[must_use]
    pub fn service_name(&self, code: u16) -> String {
        name_of(&self.services, code).map_or_else(|| format!("service #{code}"), str::to_owned)
    }

    /// Known names of one kind, for "unknown X; known: ..." messages.
    #[must_use]
    pub fn names(items: &[Item]) -> String {
        items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Known feature names.
    #[must_use]
    pub fn feature_names(&self) -> String {
        self.features
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Known package names.
    #[must_use]
    pub fn package_names(&self) -> String {
        self.packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The highest count an order may give an item whose own `max` is
    /// `item_max`.
    #[must_use]
    pub fn max_count(&self, item_max: Option<u32>) -> u32 {
        item_max.unwrap_or(self.max_count)
    }

    /// A one-line summary of a platform's defaults.
    #[must_use]
    pub fn describe_platform(d: &PlatformDefaults) -> String {
        format!(
            "lease {}, checks every {}, grace {} then {}, binding {} of [{}]",
            format_duration(d.lease),
            format_duration(d.check_interval),
            format_duration(d.grace),
            after_grace_name(d.after_grace),
            d.threshold,
            d.binding
                .iter()
                .map(|k| {
                    let n = component_kind_name(*k);
                    if d.required.contains(k) {
                        format!("{n}!")
                    } else {
                        n
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    format: Spanned<u32>,
    vendor: Spanned<String>,
    storage: RawStorage,
    #[serde(default)]
    profile: Vec<RawItem>,
    #[serde(default)]
    feature: Vec<RawFeature>,
    #[serde(default)]
    package: Vec<RawPackage>,
    #[serde(default)]
    base: Vec<RawItem>,
    #[serde(default)]
    addon: Vec<RawItem>,
    #[serde(default)]
    service: Vec<RawItem>,
    #[serde(default)]
    calendar: Option<RawCalendar>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    policy: Vec<RawPolicy>,
    platform: RawPlatforms,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    lease: Spanned<String>,
    max_lease: Spanned<String>,
    renewal_window: Spanned<String>,
    check_interval: Spanned<String>,
    grace: Spanned<String>,
    after_grace: Spanned<String>,
    rollback_tolerance: Spanned<String>,
}

/// The timing fields of a policy, or of a platform that sets them itself.
struct RawTiming<'r> {
    lease: &'r Spanned<String>,
    max_lease: &'r Spanned<String>,
    renewal_window: &'r Spanned<String>,
    check_interval: &'r Spanned<String>,
    grace: &'r Spanned<String>,
    after_grace: &'r Spanned<String>,
    rollback_tolerance: &'r Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    max_count: Option<Spanned<i64>>,
    #[serde(default)]
    max_storage_units: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    #[serde(default)]
    holidays: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatforms {
    hw: Option<RawPlatform>,
    vm: Option<RawPlatform>,
    cloud: Option<RawPlatform>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    unit_gb: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    code: Spanned<i64>,
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    max: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    code: Spanned<i64>,
    name: Spanned<String>,
    category: Spanned<String>,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    default_quantity: Option<u32>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    max: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: Spanned<String>,
    features: Vec<Spanned<String>>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    #[serde(default)]
    policy: Option<Spanned<String>>,
    #[serde(default)]
    lease: Option<Spanned<String>>,
    #[serde(default)]
    max_lease: Option<Spanned<String>>,
    #[serde(default)]
    renewal_window: Option<Spanned<String>>,
    #[serde(default)]
    check_interval: Option<Spanned<String>>,
    #[serde(default)]
    grace: Option<Spanned<String>>,
    #[serde(default)]
    after_grace: Option<Spanned<String>>,
    #[serde(default)]
    rollback_tolerance: Option<Spanned<String>>,
    binding: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
    threshold: Spanned<i64>,
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn err(&self, span: Range<usize>, reason: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            file: self.file.to_owned(),
            line: line_of(self.text, span.start),
            reason: reason.into(),
        }
    }

    fn check(&self, raw: RawCatalog, text: &str) -> Result<Catalog, CatalogError> {
        if *raw.format.get_ref() != CATALOG_FORMAT {
            return Err(self.err(
                raw.format.span(),
                format!(
                    "catalog format {} is not {CATALOG_FORMAT}, the only one this version reads",
                    raw.format.get_ref()
                ),
            ));
        }
        let vendor = raw.vendor.get_ref().trim();
        if vendor.is_empty() || vendor.len() > 64 {
            return Err(self.err(
                raw.vendor.span(),
                "vendor must be 1 to 64 bytes: it is the `iss` of every license",
            ));
        }
        if *raw.storage.unit_gb.get_ref() == 0 {
            return Err(self.err(
                raw.storage.unit_gb.span(),
                "storage unit_gb must be at least 1",
            ));
        }
        let profiles = self.items("profile", raw.profile)?;
        let bases = self.items("base", raw.base)?;
        let addons = self.items("addon", raw.addon)?;
        let services = self.items("service", raw.service)?;
        let features = self.features(raw.feature)?;
        let packages = self.packages(raw.package, &features)?;
        let holidays = self.holidays(raw.calendar)?;
        let (max_count, max_storage_units) = match raw.limits {
            Some(l) => (
                self.limit("[limits] max_count", l.max_count.as_ref())?,
                self.limit("[limits] max_storage_units", l.max_storage_units.as_ref())?,
            ),
            None => (None, None),
        };
        let mut policies = self.policies(&raw.policy)?;
        let mut platforms = BTreeMap::new();
        let RawPlatforms { hw, vm, cloud } = raw.platform;
        for (key, p) in [("hw", hw), ("vm", vm), ("cloud", cloud)] {
            let Some(p) = p else {
                let at = self.text.find("[platform").unwrap_or(0);
                return Err(self.err(
                    at..at,
                    format!("[platform.{key}] is missing: every platform (hw, vm, cloud) needs its defaults"),
                ));
            };
            platforms.insert(key, self.platform(key, p, &mut policies)?);
        }
        Ok(Catalog {
            vendor: vendor.to_owned(),
            storage_unit_gb: *raw.storage.unit_gb.get_ref(),
            profiles,
            features,
            packages,
            bases,
            addons,
            services,
            holidays,
            max_count: max_count.unwrap_or(DEFAULT_MAX_COUNT),
            max_storage_units: max_storage_units.unwrap_or(DEFAULT_MAX_STORAGE_UNITS),
            policies,
            platforms,
            text: text.to_owned(),
            source: self.file.to_owned(),
        })
    }

    fn holidays(&self, raw: Option<RawCalendar>) -> Result<Vec<chrono::NaiveDate>, CatalogError> {
        let mut days = Vec::new();
        for day in raw.map(|c| c.holidays).unwrap_or_default() {
            let parsed = chrono::NaiveDate::parse_from_str(day.get_ref().trim(), "%Y-%m-%d")
                .map_err(|_| {
                    self.err(
                        day.span(),
                        format!(
                            "holiday `{}` is not a date: write YYYY-MM-DD, e.g. \"2026-12-25\"",
                            shown(day.get_ref())
                        ),
                    )
                })?;
            days.push(parsed);
        }
        days.sort_unstable();
        days.dedup();
        Ok(days)
    }

    /// A count bound: 1 to 4 294 967 295.
    fn limit(&self, what: &str, v: Option<&Spanned<i64>>) -> Result<Option<u32>, CatalogError> {
        let Some(v) = v else { return Ok(None) };
        u32::try_from(*v.get_ref())
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                self.err(
                    v.span(),
                    format!(
                        "{what} {} is out of range: a bound is 1 to 4294967295",
                        v.get_ref()
                    ),
                )
            })
    }

    fn code(&self, kind: &str, code: &Spanned<i64>) -> Result<u16, CatalogError> {
        u16::try_from(*code.get_ref()).map_err(|_| {
            self.err(
                code.span(),
                format!(
                    "{kind} code {} is out of range: codes are 0 to 65535",
                    code.get_ref()
                ),
            )
        })
    }

    fn name(&self, kind: &str, name: &Spanned<String>) -> Result<String, CatalogError> {
        let n = name.get_ref().trim();
        if n.is_empty() || n.len() > 64 {
            return Err(self.err(name.span(), format!("{kind} name must be 1 to 64 bytes")));
        }
        Ok(n.to_owned())
    }

    /// Checks one namespace: codes in range and unique, names unique (any
    /// case).
    fn unique(
        &self,
        kind: &str,
        codes: &mut HashMap<u16, usize>,
        names: &mut HashMap<String, usize>,
        code: (u16, &Spanned<i64>),
        name: (&str, &Spanned<String>),
    ) -> Result<(), CatalogError> {
        let line = line_of(self.text, code.1.span().start);
        if let Some(first) = codes.insert(code.0, line) {
            return Err(self.err(
                code.1.span(),
                format!(
                    "duplicate {kind} code {} (first used on line {first}): each {kind} needs its own code",
                    code.0
                ),
            ));
        }
        let line = line_of(self.text, name.1.span().start);
        if let Some(first) = names.insert(name.0.to_ascii_lowercase(), line) {
            return Err(self.err(
                name.1.span(),
                format!(
                    "duplicate {kind} name `{}` (first used on line {first}; names are compared without case)",
                    name.0
                ),
            ));
        }
        Ok(())
    }

    fn items(&self, kind: &str, raw: Vec<RawItem>) -> Result<Vec<Item>, CatalogError> {
        let mut codes = HashMap::new();
        let mut names = HashMap::new();
        raw.into_iter()
            .map(|r| {
                let code = self.code(kind, &r.code)?;
                let name = self.name(kind, &r.name)?;
                self.unique(
                    kind,
                    &mut codes,
                    &mut names,
                    (code, &r.code),
                    (&name, &r.name),
                )?;
                let max = self.limit(&format!("{kind} `{name}`: max"), r.max.as_ref())?;
                Ok(Item {
                    code,
                    name,
                    description: r.description,
                    max,
                })
            })
            .collect()
    }

    fn features(&self, raw: Vec<RawFeature>) -> Result<Vec<FeatureDef>, CatalogError> {
        let mut codes = HashMap::new();
        let mut names = HashMap::new();
        raw.into_iter()
            .map(|r| {
                let code = self.code("feature", &r.code)?;
                let name = self.name("feature", &r.name)?;
                self.unique(
                    "feature",
                    &mut codes,
                    &mut names,
                    (code, &r.code),
                    (&name, &r.name),
                )?;
                let category = match r.category.get_ref().as_str() {
                    "instance" => FeatureCategory::Instance,
                    "general" => FeatureCategory::General,
                    "core" => FeatureCategory::Core,
                    other => {
                        return Err(self.err(
                            r.category.span(),
                            format!(
                                "unknown feature category `{other}`: use instance, general or core"
                            ),
                        ))
                    }
                };
                let max = self.limit(&format!("feature `{name}`: max"), r.max.as_ref())?;
                Ok(FeatureDef {
                    code,
                    name,
                    category,
                    hidden: r.hidden,
                    default_quantity: r.default_quantity,
                    description: r.description,
                    max,
                })
            })
            .collect()
    }

    fn packages(
        &self,
        raw: Vec<RawPackage>,
        features: &[FeatureDef],
    ) -> Result<Vec<Package>, CatalogError> {
        let mut names: HashMap<String, usize> = HashMap::new();
        raw.into_iter()
            .map(|r| {
                let name = self.name("package", &r.name)?;
                let line = line_of(self.text, r.name.span().start);
                if let Some(first) = names.insert(name.to_ascii_lowercase(), line) {
                    return Err(self.err(
                        r.name.span(),
                        format!("duplicate package name `{name}` (first used on line {first})"),
                    ));
                }
                if r.features.is_empty() {
                    return Err(self.err(
                        r.name.span(),
                        format!("package `{name}` has no features"),
                    ));
                }
                let mut list: Vec<String> = Vec::new();
                for f in &r.features {
                    let Some(def) = features
                        .iter()
                        .find(|d| d.name.eq_ignore_ascii_case(f.get_ref()))
                    else {
                        return Err(self.err(
                            f.span(),
                            format!(
                                "unknown feature `{}` in package `{name}`: define it in a [[feature]] first",
                                shown(f.get_ref())
                            ),
                        ));
                    };
                    if list.contains(&def.name) {
                        return Err(self.err(
                            f.span(),
                            format!("feature `{}` is listed twice in package `{name}`", def.name),
                        ));
                    }
                    list.push(def.name.clone());
                }
                Ok(Package {
                    name,
                    features: list,
                    description: r.description,
                })
            })
            .collect()
    }

    fn duration(&self, what: &str, field: &str, d: &Spanned<String>) -> Result<u32, CatalogError> {
        parse_duration(d.get_ref()).ok_or_else(|| {
            self.err(
                d.span(),
                format!(
                    "{what}.{field} `{}` is not a duration: write <n>s, <n>m, <n>h or <n>d",
                    shown(d.get_ref())
                ),
            )
        })
    }

    fn kind(&self, key: &str, name: &Spanned<String>) -> Result<ComponentKind, CatalogError> {
        ComponentKind::from_name(name.get_ref()).ok_or_else(|| {
            self.err(
                name.span(),
                format!(
                    "platform.{key}: unknown identity component `{}`; known: {}",
                    shown(name.get_ref()),
                    ComponentKind::KNOWN
                        .iter()
                        .filter_map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The values of a policy (`what` names it in messages:
    /// `platform.hw`, `policy.NAME`).
    fn timing(&self, what: &str, t: &RawTiming<'_>) -> Result<PolicyValues, CatalogError> {
        let lease = self.duration(what, "lease", t.lease)?;
        let max_lease = self.duration(what, "max_lease", t.max_lease)?;
        let renewal_window = self.duration(what, "renewal_window", t.renewal_window)?;
        let check_interval = self.duration(what, "check_interval", t.check_interval)?;
        let grace = self.duration(what, "grace", t.grace)?;
        let rollback_tolerance = self.duration(what, "rollback_tolerance", t.rollback_tolerance)?;
        if lease == 0 {
            return Err(self.err(t.lease.span(), format!("{what}.lease must not be 0")));
        }
        if max_lease < lease {
            return Err(self.err(
                t.max_lease.span(),
                format!("{what}.max_lease must be at least the lease"),
            ));
        }
        if check_interval == 0 {
            return Err(self.err(
                t.check_interval.span(),
                format!("{what}.check_interval must not be 0 (spec/FORMAT.md §5.3.7)"),
            ));
        }
        let after_grace = match t.after_grace.get_ref().as_str() {
            m @ ("emergency_only" | "locked") => m.to_owned(),
            other => {
                return Err(self.err(
                    t.after_grace.span(),
                    format!(
                        "{what}.after_grace `{}`: use emergency_only or locked",
                        shown(other)
                    ),
                ))
            }
        };
        Ok(PolicyValues {
            lease,
            max_lease,
            renewal_window,
            check_interval,
            grace,
            after_grace,
            rollback_tolerance,
        })
    }

    fn policies(&self, raw: &[RawPolicy]) -> Result<Vec<NamedPolicy>, CatalogError> {
        let mut out: Vec<NamedPolicy> = Vec::new();
        for p in raw {
            let name = self.name("policy", &p.name)?;
            let valid = name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(self.err(
                    p.name.span(),
                    format!(
                        "policy name `{}`: use letters, digits, `-` and `_` only",
                        shown(&name)
                    ),
                ));
            }
            if out.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
                return Err(self.err(
                    p.name.span(),
                    format!("duplicate policy name `{name}` (names are compared without case)"),
                ));
            }
            let values = self.timing(
                &format!("policy.{name}"),
                &RawTiming {
                    lease: &p.lease,
                    max_lease: &p.max_lease,
                    renewal_window: &p.renewal_window,
                    check_interval: &p.check_interval,
                    grace: &p.grace,
                    after_grace: &p.after_grace,
                    rollback_tolerance: &p.rollback_tolerance,
                },
            )?;
            out.push(NamedPolicy {
                name,
                description: p.description.clone(),
                values,
            });
        }
        Ok(out)
    }

    /// A platform's defaults: its default policy named (`policy = NAME`)
    /// or its values set inline (then a policy `platform-KEY`, added to
    /// `policies`), and its binding.
    fn platform(
        &self,
        key: &str,
        p: RawPlatform,
        policies: &mut Vec<NamedPolicy>,
    ) -> Result<PlatformDefaults, CatalogError> {
        let what = format!("platform.{key}");
        let inline = [
            &p.lease,
            &p.max_lease,
            &p.renewal_window,
            &p.check_interval,
            &p.grace,
            &p.after_grace,
            &p.rollback_tolerance,
        ];
        let (policy_name, values) = match &p.policy {
            Some(name) => {
                if let Some(field) = inline.iter().find_map(|f| f.as_ref()) {
                    return Err(self.err(
                        field.span(),
                        format!("{what} names its policy `{}` and sets timing values too: set them in the [[policy]] only", shown(name.get_ref())),
                    ));
                }
                let found = policies
                    .iter()
                    .find(|n| n.name.eq_ignore_ascii_case(name.get_ref().trim()))
                    .ok_or_else(|| {
                        self.err(
                            name.span(),
                            format!(
                                "{what}.policy `{}` is not a [[policy]] of this catalog; it has: {}",
                                shown(name.get_ref()),
                                policies
                                    .iter()
                                    .map(|n| n.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                (found.name.clone(), found.values.clone())
            }
            None => {
                let missing = |field: &str| {
                    let at = self.text.find(&format!("[platform.{key}]")).unwrap_or(0);
                    self.err(
                        at..at,
                        format!("{what} needs `policy = NAME` or its own {field} (and every other timing value)"),
                    )
                };
                let values = self.timing(
                    &what,
                    &RawTiming {
                        lease: p.lease.as_ref().ok_or_else(|| missing("lease"))?,
                        max_lease: p.max_lease.as_ref().ok_or_else(|| missing("max_lease"))?,
                        renewal_window: p
                            .renewal_window
                            .as_ref()
                            .ok_or_else(|| missing("renewal_window"))?,
                        check_interval: p
                            .check_interval
                            .as_ref()
                            .ok_or_else(|| missing("check_interval"))?,
                        grace: p.grace.as_ref().ok_or_else(|| missing("grace"))?,
                        after_grace: p
                            .after_grace
                            .as_ref()
                            .ok_or_else(|| missing("after_grace"))?,
                        rollback_tolerance: p
                            .rollback_tolerance
                            .as_ref()
                            .ok_or_else(|| missing("rollback_tolerance"))?,
                    },
                )?;
                let name = format!("platform-{key}");
                if policies.iter().any(|n| n.name.eq_ignore_ascii_case(&name)) {
                    let at = self.text.find(&format!("[platform.{key}]")).unwrap_or(0);
                    return Err(self.err(
                        at..at,
                        format!("{what} sets its values inline, which makes a policy `{name}`, and a [[policy]] has that name: name the policy with `policy = \"{name}\"` instead"),
                    ));
                }
                policies.push(NamedPolicy {
                    name: name.clone(),
                    description: format!("the values of [platform.{key}]"),
                    values: values.clone(),
                });
                (name, values)
            }
        };
        if key == "cloud" && values.grace != 0 {
            let span = p
                .grace
                .as_ref()
                .or(p.policy.as_ref())
                .map_or(0..0, Spanned::span);
            return Err(self.err(
                span,
                "platform.cloud.grace must be 0: a Cloud PBX has no offline grace (docs/rules.md)",
            ));
        }
        let PolicyValues {
            lease,
            max_lease,
            renewal_window,
            check_interval,
            grace,
            rollback_tolerance,
            ..
        } = values;
        let after_grace = values.after_grace_mode();
        let mut binding = Vec::new();
        for name in p.binding.get_ref() {
            let k = self.kind(key, name)?;
            if binding.contains(&k) {
                return Err(self.err(
                    name.span(),
                    format!(
                        "platform.{key}.binding lists `{}` twice",
                        shown(name.get_ref())
                    ),
                ));
            }
            binding.push(k);
        }
        if binding.is_empty() || binding.len() > 16 {
            return Err(self.err(
                p.binding.span(),
                format!("platform.{key}.binding must name 1 to 16 components"),
            ));
        }
        let mut required = Vec::new();
        for name in &p.required {
            let k = self.kind(key, name)?;
            if !binding.contains(&k) {
                return Err(self.err(
                    name.span(),
                    format!(
                        "platform.{key}.required names `{}`, which is not in its binding",
                        shown(name.get_ref())
                    ),
                ));
            }
            required.push(k);
        }
        let threshold = *p.threshold.get_ref();
        let threshold = u8::try_from(threshold)
            .ok()
            .filter(|t| *t >= 1 && usize::from(*t) <= binding.len())
            .ok_or_else(|| {
                self.err(
                    p.threshold.span(),
                    format!(
                        "platform.{key}.threshold {threshold} must be between 1 and the {} binding components",
                        binding.len()
                    ),
                )
            })?;
        Ok(PlatformDefaults {
            policy: policy_name,
            lease,
            max_lease,
            renewal_window,
            check_interval,
            grace,
            after_grace,
            rollback_tolerance,
            binding,
            required,
            threshold,
        })
    }
}

#[cfg(test)]
mod tests;
