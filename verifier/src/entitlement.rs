//! Entitlement queries (`spec/RUNTIME.md` §7): what a license grants, read
//! straight from the validated license bytes, without allocation.
//!
//! Codes are catalog data (profile names, feature and add-on codes live in
//! the issuer's catalog), so every query takes the numeric catalog code
//! and answers "nothing" for a code the license does not name.

use crate::claims::{
    Base, Entitlements, Feature, FeatureCategory, Items, Profile, Service, Sharing,
};
use crate::License;

/// Gigabytes per storage unit, by catalog convention (docs/rules.md: 1 license =
/// 10 GB).
pub const GB_PER_STORAGE_UNIT: u64 = 10;

/// A service with its effective end: the earlier of its own end and the
/// term end, since services co-terminate with the PBX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceGrant {
    /// Catalog code.
    pub code: u16,
    /// Start (Unix seconds).
    pub start: i64,
    /// Effective end (Unix seconds, exclusive).
    pub end: i64,
}

impl ServiceGrant {
    /// Whether the service runs at `now` (start inclusive, end exclusive).
    #[must_use]
    pub fn active_at(&self, now: i64) -> bool {
        self.start <= now && now < self.end
    }
}

/// The sharing role of a PBX (docs/rules.md: sharing licenses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role<'a> {
    /// Not shared: the license's own entitlements apply.
    Standalone,
    /// Shares its user licenses with client PBXs.
    Server,
    /// Uses the licenses of the server with this SW serial; it has no
    /// entitlements of its own.
    ClientOf(&'a str),
}

/// Borrowed, allocation-free view of what a license grants.
///
/// Cheap to create and clone (a few slice references); every query walks
/// the validated CBOR of one collection (at most 64 entries).
#[derive(Clone, Debug)]
pub struct Grants<'a> {
    entitlements: Entitlements<'a>,
    services: Items<'a, Service>,
    term_end: Option<i64>,
    sharing: Sharing<'a>,
}

impl<'a> Grants<'a> {
    /// The grants of `license`, whatever its verdict: use
    /// [`crate::Decision::grants`] to get them only when the verdict allows
    /// service.
    #[must_use]
    pub fn new(license: &License<'a>) -> Self {
        Self {
            entitlements: license.entitlements(),
            services: license.services(),
            term_end: license.term().end,
            sharing: license.sharing(),
        }
    }

    /// Licensed users of the profile with catalog code `code` (0 if absent).
    #[must_use]
    pub fn profile_count(&self, code: u16) -> u32 {
        self.profiles()
            .find(|p| p.code == code)
            .map_or(0, |p| p.count)
    }

    /// All profile counts, in code order.
    #[must_use]
    pub fn profiles(&self) -> Items<'a, Profile> {
        self.entitlements.profiles.clone()
    }

    /// Sum of all profile counts: the licensed users of the PBX.
    #[must_use]
    pub fn total_users(&self) -> u64 {
        self.profiles().map(|p| u64::from(p.count)).sum()
    }

    /// The feature with catalog code `code`, if licensed.
    #[must_use]
    pub fn feature(&self, code: u16) -> Option<Feature> {
        self.features().find(|f| f.code == code)
    }

    /// All features, in code order (hidden ones included).
    #[must_use]
    pub fn features(&self) -> Items<'a, Feature> {
        self.entitlements.features.clone()
    }

    /// The features to show to the end customer (not hidden).
    pub fn visible_features(&self) -> impl Iterator<Item = Feature> + 'a {
        self.features().filter(|f| !f.hidden)
    }

    /// Whether feature `code` may be used: listed with a quantity above
    /// zero, or listed as a core feature (always included, whatever the
    /// quantity). A hidden feature is enabled; it is only not shown.
    #[must_use]
    pub fn feature_enabled(&self, code: u16) -> bool {
        self.feature(code)
            .is_some_and(|f| f.quantity > 0 || f.category == FeatureCategory::Core)
    }

    /// Licensed quantity of feature `code` (0 if absent): per unit for
    /// instance features, per user for general features.
    #[must_use]
    pub fn feature_quantity(&self, code: u16) -> u32 {
        self.feature(code).map_or(0, |f| f.quantity)
    }

    /// Category of feature `code`, if licensed.
    #[must_use]
    pub fn feature_category(&self, code: u16) -> Option<FeatureCategory> {
        self.feature(code).map(|f| f.category)
    }

    /// Whether feature `code` is licensed but hidden from the end customer.
    #[must_use]
    pub fn feature_hidden(&self, code: u16) -> bool {
        self.feature(code).is_some_and(|f| f.hidden)
    }

    /// The base license with catalog code `code` and its add-ons.
    #[must_use]
    pub fn base(&self, code: u16) -> Option<Base<'a>> {
        self.bases().find(|b| b.code == code)
    }

    /// All base licenses, in code order.
    #[must_use]
    pub fn bases(&self) -> Items<'a, Base<'a>> {
        self.entitlements.bases.clone()
    }

    /// Licensed count of base license `code` (0 if absent).
    #[must_use]
    pub fn base_count(&self, code: u16) -> u32 {
        self.base(code).map_or(0, |b| b.count)
    }

    /// Licensed count of add-on `addon` on base license `base` (0 if
    /// either is absent).
    #[must_use]
    pub fn addon_count(&self, base: u16, addon: u16) -> u32 {
        self.base(base)
            .and_then(|b| b.addons.clone().find(|a| a.code == addon))
            .map_or(0, |a| a.count)
    }

    /// Storage units (1 unit = [`GB_PER_STORAGE_UNIT`] GB).
    #[must_use]
    pub fn storage_units(&self) -> u32 {
        self.entitlements.storage_units
    }

    /// Storage in GB: units × [`GB_PER_STORAGE_UNIT`] (cannot overflow).
    #[must_use]
    pub fn storage_gb(&self) -> u64 {
        u64::from(self.storage_units()) * GB_PER_STORAGE_UNIT
    }

    /// Services with their effective end, in code order.
    pub fn services(&self) -> impl Iterator<Item = ServiceGrant> + 'a {
        let term_end = self.term_end;
        self.services.clone().map(move |s| ServiceGrant {
            code: s.code,
            start: s.start,
            end: term_end.map_or(s.end, |t| s.end.min(t)),
        })
    }

    /// The service with catalog code `code`, if licensed.
    #[must_use]
    pub fn service(&self, code: u16) -> Option<ServiceGrant> {
        self.services().find(|s| s.code == code)
    }

    /// The sharing role.
    #[must_use]
    pub fn role(&self) -> Role<'a> {
        match self.sharing {
            Sharing::None => Role::Standalone,
            Sharing::Server => Role::Server,
            Sharing::Client(server) => Role::ClientOf(server),
        }
    }

    /// Whether the license grants nothing of its own (always true for a
    /// sharing client).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entitlements.is_empty() && self.services.is_empty()
    }
}

// Builds licenses with the encoder, hence `alloc`.
#[cfg(test)]
#[cfg(feature = "alloc")]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::claims::{Addon, FeatureCategory::*};
    use crate::encode::{encode_license_payload, LicenseData};
    use crate::samples::{self, DAY, T0};

    fn with<R>(data: &LicenseData, f: impl FnOnce(Grants<'_>) -> R) -> R {
        let payload = encode_license_payload(data).unwrap();
        let license = crate::claims::parse_license(&payload, [0; 8]).unwrap();
        f(Grants::new(&license))
    }

    #[test]
    fn profile_counts_by_catalog_code() {
        with(&samples::typical(), |g| {
            assert_eq!(g.profile_count(1), 20);
            assert_eq!(g.profile_count(6), 0);
            assert_eq!(g.profile_count(99), 0);
            assert_eq!(g.total_users(), 52);
            assert_eq!(g.profiles().len(), 6);
        });
    }

    #[test]
    fn features_by_category_quantity_and_hidden() {
        with(&samples::typical(), |g| {
            assert!(g.feature_enabled(1));
            assert_eq!(g.feature_quantity(1), 4);
            assert_eq!(g.feature_category(1), Some(Instance));
            assert_eq!(g.feature_category(4), Some(General));
            assert_eq!(g.feature_category(7), Some(Core));
            assert!(g.feature_hidden(9) && g.feature_enabled(9));
            assert!(!g.feature_hidden(1));
            assert!(!g.feature_enabled(99));
            assert_eq!(g.feature_category(99), None);
            assert_eq!(g.visible_features().count(), 8);
        });
        // Core features are included whatever their quantity; others need one.
        let mut l = samples::typical();
        l.entitlements.features[6].quantity = 0;
        l.entitlements.features[0].quantity = 0;
        with(&l, |g| {
            assert!(g.feature_enabled(7));
            assert!(!g.feature_enabled(1));
        });
    }

    #[test]
    fn base_licenses_and_their_addons() {
        with(&samples::typical(), |g| {
            assert_eq!(g.base_count(4), 52);
            assert_eq!(g.addon_count(4, 1), 52);
            assert_eq!(g.addon_count(4, 6), 10);
            assert_eq!(g.addon_count(2, 2), 3);
            // An add-on of another base does not count here.
            assert_eq!(g.addon_count(2, 1), 0);
            assert_eq!(g.addon_count(99, 1), 0);
            let codes: Vec<u16> = g.bases().map(|b| b.code).collect();
            assert_eq!(codes, [2, 4]);
            let addons: Vec<Addon> = g.base(2).unwrap().addons.collect();
            assert_eq!(addons, [Addon { code: 2, count: 3 }]);
        });
    }

    #[test]
    fn storage_is_carried_in_units_of_10_gb() {
        with(&samples::typical(), |g| {
            assert_eq!(g.storage_units(), 10);
            assert_eq!(g.storage_gb(), 100);
        });
        with(&samples::maximal(), |g| {
            assert_eq!(g.storage_gb(), u64::from(u32::MAX) * 10);
        });
    }

    #[test]
    fn services_co_terminate_with_the_term() {
        with(&samples::typical(), |g| {
            let end = T0 + 365 * DAY;
            let added_mid_term = g.service(2).unwrap();
            assert_eq!(added_mid_term.start, T0 + 212 * DAY);
            assert_eq!(added_mid_term.end, end);
            assert!(g.services().all(|s| s.end == end));
            assert!(!added_mid_term.active_at(T0));
            assert!(added_mid_term.active_at(T0 + 300 * DAY));
            assert!(!added_mid_term.active_at(end));
            assert_eq!(g.service(9), None);
        });
    }

    #[test]
    fn sharing_client_has_no_entitlements_of_its_own() {
        with(&samples::sharing_client(), |g| {
            assert_eq!(g.role(), Role::ClientOf("SW-2026-000123"));
            assert!(g.is_empty());
            assert_eq!(g.profile_count(1), 0);
            assert_eq!(g.storage_gb(), 0);
            assert!(!g.feature_enabled(1));
        });
        with(&samples::typical(), |g| {
            assert_eq!(g.role(), Role::Standalone);
            assert!(!g.is_empty());
        });
        let mut server = samples::typical();
        server.sharing = crate::encode::SharingData::Server;
        with(&server, |g| assert_eq!(g.role(), Role::Server));
    }
}
