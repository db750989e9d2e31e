//! What the license allows (licensed counts, and whether new assignments
//! may be made at all) and what the seats use (assigned counts), and the
//! comparison of the two: the summary and the over-assigned report.

use std::collections::BTreeMap;

use serde::Serialize;
use tessera_verifier::Grants;

use crate::clock::format_time;

use super::model::{Seat, SeatId, SeatLicense};
use super::names::Names;
use super::SeatError;

/// One counted thing: a profile, a base license, or an add-on on a base
/// license.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A user profile.
    Profile(u16),
    /// A base license.
    Base(u16),
    /// An add-on on a base license.
    Addon {
        /// The base license.
        base: u16,
        /// The add-on.
        addon: u16,
    },
}

impl Key {
    /// The key of a license.
    #[must_use]
    pub fn of(l: SeatLicense) -> Self {
        match l {
            SeatLicense::Profile(c) => Self::Profile(c),
            SeatLicense::Base(c) => Self::Base(c),
        }
    }

    /// `profile`, `base` or `addon`.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::Profile(_) => "profile",
            Self::Base(_) => "base",
            Self::Addon { .. } => "addon",
        }
    }

    /// The name people see: `UC-BUSINESS`, `Phone System`,
    /// `call_recording on Phone System`.
    #[must_use]
    pub fn label(self, names: &Names) -> String {
        match self {
            Self::Profile(c) => names.license_name(SeatLicense::Profile(c)),
            Self::Base(c) => names.license_name(SeatLicense::Base(c)),
            Self::Addon { base, addon } => format!(
                "{} on {}",
                names.addon_name(addon),
                names.license_name(SeatLicense::Base(base))
            ),
        }
    }

    /// The keys a seat counts under while assigned.
    pub fn of_seat(seat: &Seat) -> impl Iterator<Item = Self> + '_ {
        let base = match seat.license {
            SeatLicense::Base(b) => Some(b),
            SeatLicense::Profile(_) => None,
        };
        core::iter::once(Self::of(seat.license)).chain(base.into_iter().flat_map(|b| {
            seat.addons
                .iter()
                .map(move |&a| Self::Addon { base: b, addon: a })
        }))
    }
}

/// Assigned counts per [`Key`] (keys with zero are absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<Key, u32>);

impl Counts {
    /// The count of `key`.
    #[must_use]
    pub fn get(&self, key: Key) -> u32 {
        self.0.get(&key).copied().unwrap_or(0)
    }

    /// Adds (or, `up = false`, removes) the contributions of an assigned
    /// seat; an unassigned seat counts nothing.
    pub fn apply(&mut self, seat: &Seat, up: bool) {
        if !seat.is_assigned() {
            return;
        }
        for k in Key::of_seat(seat) {
            let e = self.0.entry(k).or_insert(0);
            *e = if up {
                e.saturating_add(1)
            } else {
                e.saturating_sub(1)
            };
            if *e == 0 {
                self.0.remove(&k);
            }
        }
    }

    /// Counts of `seats`, recounted from scratch.
    #[must_use]
    pub fn recount<'a>(seats: impl IntoIterator<Item = &'a Seat>) -> Self {
        let mut c = Self::default();
        for s in seats {
            c.apply(s, true);
        }
        c
    }

    /// Sets a count (for the store's SQL recount).
    pub fn set(&mut self, key: Key, n: u32) {
        if n == 0 {
            self.0.remove(&key);
        } else {
            self.0.insert(key, n);
        }
    }

    /// Every key with a count above zero, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, u32)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}

/// Where the counts come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitsSource {
    /// `own` (this PBX's license), `server` (the sharing server's license)
    /// or `none`.
    pub kind: &'static str,
    /// Serial of the license.
    pub serial: Option<String>,
    /// Sequence of the license.
    pub sequence: Option<u32>,
}

/// Licensed counts, and whether new assignments may be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    profiles: BTreeMap<u16, u32>,
    bases: BTreeMap<u16, (u32, BTreeMap<u16, u32>)>,
    blocked: Option<String>,
    source: LimitsSource,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

impl Limits {
    /// No counts, new assignments allowed (add counts with
    /// [`Limits::profile`], [`Limits::base`]); for tests and integrators.
    #[must_use]
    pub fn new() -> Self {
        Self {
            profiles: BTreeMap::new(),
            bases: BTreeMap::new(),
            blocked: None,
            source: LimitsSource {
                kind: "own",
                serial: None,
                sequence: None,
            },
        }
    }

    /// No counts and no new assignments, for `reason` (no license, a
    /// refused license, ...).
    #[must_use]
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self {
            blocked: Some(reason.into()),
            source: LimitsSource {
                kind: "none",
                serial: None,
                sequence: None,
            },
            ..Self::new()
        }
    }

    /// The counts a license lists; new assignments blocked for `blocked`
    /// (a verdict without full service), if given.
    #[must_use]
    pub fn from_grants(grants: &Grants<'_>, source: LimitsSource, blocked: Option<String>) -> Self {
        let mut l = Self {
            blocked,
            source,
            ..Self::new()
        };
        for p in grants.profiles() {
            l.profiles.insert(p.code, p.count);
        }
        for b in grants.bases() {
            let addons = b.addons.clone().map(|a| (a.code, a.count)).collect();
            l.bases.insert(b.code, (b.count, addons));
        }
        l
    }

    /// Adds a profile count.
    #[must_use]
    pub fn profile(mut self, code: u16, count: u32) -> Self {
        self.profiles.insert(code, count);
        self
    }

    /// Adds a base license count with its add-on counts.
    #[must_use]
    pub fn base(mut self, code: u16, count: u32, addons: &[(u16, u32)]) -> Self {
        self.bases
            .insert(code, (count, addons.iter().copied().collect()));
        self
    }

    /// Blocks new assignments for `reason`.
    #[must_use]
    pub fn blocked_for(mut self, reason: impl Into<String>) -> Self {
        self.blocked = Some(reason.into());
        self
    }

    /// Why no new assignments may be made, if so.
    #[must_use]
    pub fn blocked(&self) -> Option<&str> {
        self.blocked.as_deref()
    }

    /// Where the counts come from.
    #[must_use]
    pub fn source(&self) -> &LimitsSource {
        &self.source
    }

    /// The licensed count of `key` (0 when the license does not list it).
    #[must_use]
    pub fn licensed(&self, key: Key) -> u32 {
        match key {
            Key::Profile(c) => self.profiles.get(&c).copied().unwrap_or(0),
            Key::Base(c) => self.bases.get(&c).map_or(0, |b| b.0),
            Key::Addon { base, addon } => self
                .bases
                .get(&base)
                .and_then(|b| b.1.get(&addon))
                .copied()
                .unwrap_or(0),
        }
    }

    /// Whether the license's entry for base `base` lists add-on `addon`.
    #[must_use]
    pub fn addon_listed(&self, base: u16, addon: u16) -> bool {
        self.bases
            .get(&base)
            .is_some_and(|b| b.1.contains_key(&addon))
    }

    /// The add-ons listed for base `base`.
    pub fn addons_of(&self, base: u16) -> impl Iterator<Item = u16> + '_ {
        self.bases
            .get(&base)
            .into_iter()
            .flat_map(|b| b.1.keys().copied())
    }

    /// Every key the license lists, in order.
    #[must_use]
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.profiles.keys().map(|&c| Key::Profile(c)).collect();
        for (&b, (_, addons)) in &self.bases {
            keys.push(Key::Base(b));
            keys.extend(addons.keys().map(|&a| Key::Addon { base: b, addon: a }));
        }
        keys
    }

    /// Refuses any new assignment while blocked.
    ///
    /// # Errors
    /// [`SeatError::NoService`].
    pub fn require_service(&self) -> Result<(), SeatError> {
        match &self.blocked {
            Some(reason) => Err(SeatError::NoService(reason.clone())),
            None => Ok(()),
        }
    }

    /// Admits one more assignment under `key`, given the current `counts`:
    /// refused when it would exceed the licensed count (also when the
    /// count is already over the limit after a license change).
    ///
    /// # Errors
    /// [`SeatError::LimitReached`], naming the counts.
    pub fn admit(&self, key: Key, counts: &Counts, names: &Names) -> Result<(), SeatError> {
        let licensed = self.licensed(key);
        let assigned = counts.get(key);
        if u64::from(assigned) < u64::from(licensed) {
            return Ok(());
        }
        Err(SeatError::LimitReached {
            name: key.label(names),
            licensed,
            assigned,
        })
    }

    /// Admits add-on `addon` on a seat of base `base`: the license must
    /// list it for that base (with [`Limits::admit`] for its count done
    /// by the caller).
    ///
    /// # Errors
    /// [`SeatError::AddonNotForBase`].
    pub fn admit_addon(&self, base: u16, addon: u16, names: &Names) -> Result<(), SeatError> {
        if self.addon_listed(base, addon) {
            return Ok(());
        }
        let listed: Vec<String> = self.addons_of(base).map(|a| names.addon_name(a)).collect();
        Err(SeatError::AddonNotForBase {
            addon: names.addon_name(addon),
            base: names.license_name(SeatLicense::Base(base)),
            listed: if listed.is_empty() {
                "no add-ons".into()
            } else {
                listed.join(", ")
            },
        })
    }
}

/// One line of `seats summary`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryEntry {
    /// `profile`, `base` or `addon`.
    pub kind: &'static str,
    /// Catalog code (of the add-on, for an add-on).
    pub code: u16,
    /// Name.
    pub name: String,
    /// For an add-on: the base license code.
    pub base: Option<u16>,
    /// Licensed count.
    pub licensed: u32,
    /// Assigned count.
    pub assigned: u32,
    /// Licensed − assigned (0 when over).
    pub available: u32,
    /// Assigned − licensed (0 when within).
    pub over: u32,
}

/// `seats summary`: for every profile, base license and add-on the
/// license lists or a seat uses: licensed, assigned, available.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Where the licensed counts come from.
    pub source: LimitsSource,
    /// Whether new assignments may be made.
    pub may_assign: bool,
    /// Why not, when they may not.
    pub reason: Option<String>,
    /// The lines.
    pub entries: Vec<SummaryEntry>,
    /// Seats kept without a user (they count nothing).
    pub unassigned_seats: u64,
}

impl Summary {
    /// Compares `limits` with `counts`.
    #[must_use]
    pub fn new(limits: &Limits, counts: &Counts, unassigned: u64, names: &Names) -> Self {
        let mut keys = limits.keys();
        keys.extend(counts.iter().map(|(k, _)| k));
        keys.sort_by_key(|k| match *k {
            Key::Profile(c) => (0, c, 0, 0),
            Key::Base(c) => (1, c, 0, 0),
            Key::Addon { base, addon } => (1, base, 1, addon),
        });
        keys.dedup();
        let entries = keys
            .into_iter()
            .map(|k| {
                let licensed = limits.licensed(k);
                let assigned = counts.get(k);
                let (code, base, name) = match k {
                    Key::Profile(c) | Key::Base(c) => (c, None, k.label(names)),
                    Key::Addon { base, addon } => (addon, Some(base), names.addon_name(addon)),
                };
                SummaryEntry {
                    kind: k.kind(),
                    code,
                    name,
                    base,
                    licensed,
                    assigned,
                    available: licensed.saturating_sub(assigned),
                    over: assigned.saturating_sub(licensed),
                }
            })
            .collect();
        Self {
            source: limits.source().clone(),
            may_assign: limits.blocked().is_none(),
            reason: limits.blocked().map(str::to_owned),
            entries,
            unassigned_seats: unassigned,
        }
    }

    /// The table for people.
    #[must_use]
    pub fn render(&self) -> String {
        use core::fmt::Write as _;
        let mut out = String::new();
        let src = match (&self.source.serial, self.source.sequence) {
            (Some(s), Some(q)) if self.source.kind == "server" => {
                format!("the sharing server's license {s} (sequence {q})")
            }
            (Some(s), Some(q)) => format!("license {s} (sequence {q})"),
            _ => "no license".into(),
        };
        let _ = writeln!(out, "counts from {src}");
        match &self.reason {
            None => {
                let _ = writeln!(out, "new assignments: allowed");
            }
            Some(r) => {
                let _ = writeln!(out, "new assignments: refused: {r}");
            }
        }
        let label = |e: &SummaryEntry| match e.base {
            Some(_) => format!("  + {} ({})", e.name, e.code),
            None => format!("{} ({})", e.name, e.code),
        };
        let width = self
            .entries
            .iter()
            .map(|e| label(e).chars().count())
            .max()
            .unwrap_or(0)
            .max(7);
        let _ = writeln!(
            out,
            "{:<8} {:<width$} {:>8} {:>8} {:>9}",
            "KIND", "LICENSE", "LICENSED", "ASSIGNED", "AVAILABLE"
        );
        for e in &self.entries {
            let over = if e.over > 0 {
                format!("  OVER BY {}", e.over)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<8} {:<width$} {:>8} {:>8} {:>9}{over}",
                e.kind,
                label(e),
                e.licensed,
                e.assigned,
                e.available
            );
        }
        if self.unassigned_seats > 0 {
            let _ = writeln!(
                out,
                "{} unassigned seat(s) kept for reassignment (they count nothing)",
                self.unassigned_seats
            );
        }
        out
    }
}

/// An assignment beyond the licensed count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverSeat {
    /// The seat.
    pub uuid: SeatId,
    /// Its user.
    pub user: String,
    /// Its extension.
    pub extension: Option<String>,
    /// When it was assigned.
    pub assigned: String,
}

/// A count over the limit: the over-assigned section of `check` and
/// `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverAssigned {
    /// `profile`, `base` or `addon`.
    pub kind: &'static str,
    /// Catalog code (of the add-on, for an add-on).
    pub code: u16,
    /// For an add-on: the base license code.
    pub base: Option<u16>,
    /// Name (`UC-BUSINESS`, `call_recording on Phone System`).
    pub name: String,
    /// Licensed count.
    pub licensed: u32,
    /// Assigned count.
    pub assigned: u32,
    /// Assigned − licensed.
    pub over: u32,
    /// The assignments over the limit: the most recently assigned ones.
    pub assignments: Vec<OverSeat>,
}

impl OverAssigned {
    /// One line for people.
    #[must_use]
    pub fn message(&self) -> String {
        format!(
            "{}: {} licensed, {} assigned, {} over the limit; new ones are refused until {} {} unassigned or more are ordered",
            self.name,
            self.licensed,
            self.assigned,
            self.over,
            self.over,
            if self.over == 1 { "is" } else { "are" }
        )
    }
}

/// Every count of `seats` above `limits`, with the assignments over the
/// limit: for each count, the seats beyond the licensed number when
/// ordered by assignment time (then id), so the latest are over. Nothing
/// is deleted.
#[must_use]
pub fn over_assigned<'a>(
    seats: impl IntoIterator<Item = &'a Seat>,
    limits: &Limits,
    names: &Names,
) -> Vec<OverAssigned> {
    let mut by_key: BTreeMap<Key, Vec<&Seat>> = BTreeMap::new();
    for s in seats {
        if s.is_assigned() {
            for k in Key::of_seat(s) {
                by_key.entry(k).or_default().push(s);
            }
        }
    }
    let mut out = Vec::new();
    for (key, mut holders) in by_key {
        let licensed = limits.licensed(key);
        let assigned = u32::try_from(holders.len()).unwrap_or(u32::MAX);
        if assigned <= licensed {
            continue;
        }
        holders.sort_by_key(|s| (s.assigned.unwrap_or(s.created), s.id));
        let skip = usize::try_from(licensed).unwrap_or(usize::MAX);
        let (code, base) = match key {
            Key::Profile(c) | Key::Base(c) => (c, None),
            Key::Addon { base, addon } => (addon, Some(base)),
        };
        out.push(OverAssigned {
            kind: key.kind(),
            code,
            base,
            name: key.label(names),
            licensed,
            assigned,
            over: assigned - licensed,
            assignments: holders
                .into_iter()
                .skip(skip)
                .map(|s| OverSeat {
                    uuid: s.id,
                    user: s.user.clone().unwrap_or_default(),
                    extension: s.extension.clone(),
                    assigned: format_time(s.assigned.unwrap_or(s.created)),
                })
                .collect(),
        });
    }
    out
}
