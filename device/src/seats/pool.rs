//! The seats in memory, and every change to them with its rules. The
//! store loads a [`Pool`], a command changes it (each change checked
//! against the [`Limits`]), and the store writes what changed in one
//! transaction: the rules live here, once, for single commands and mass
//! import alike.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::limits::{Counts, Key, Limits};
use super::model::{check_extension, check_user, normalize_addons, Seat, SeatId, SeatLicense};
use super::names::Names;
use super::SeatError;

/// The seats, their indexes and counts, and what changed since loading.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    seats: BTreeMap<SeatId, Seat>,
    by_holder: HashMap<(String, SeatLicense), SeatId>,
    profile_of: HashMap<String, SeatId>,
    by_extension: HashMap<String, BTreeSet<SeatId>>,
    counts: Counts,
    stored: BTreeSet<SeatId>,
    changed: BTreeSet<SeatId>,
    removed: BTreeSet<SeatId>,
}

/// What to change on one seat, for [`Pool::assign`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSeat {
    /// The user.
    pub user: String,
    /// The extension number.
    pub extension: Option<String>,
    /// The license.
    pub license: SeatLicense,
    /// Add-on codes.
    pub addons: Vec<u16>,
}

impl Pool {
    /// The seats as loaded from the store (nothing changed yet).
    ///
    /// # Errors
    /// [`SeatError::StoreInconsistent`] when the rows break a rule the
    /// store's constraints should have kept (a repeated holder).
    pub fn loaded(seats: impl IntoIterator<Item = Seat>) -> Result<Self, SeatError> {
        let mut p = Self::default();
        for s in seats {
            if let Some(u) = &s.user {
                if p.by_holder.contains_key(&(u.clone(), s.license)) {
                    return Err(SeatError::StoreInconsistent(format!(
                        "user {u} holds the same license twice"
                    )));
                }
            }
            p.stored.insert(s.id);
            p.index(&s);
            p.seats.insert(s.id, s);
        }
        Ok(p)
    }

    fn index(&mut self, s: &Seat) {
        self.counts.apply(s, true);
        if let Some(u) = &s.user {
            self.by_holder.insert((u.clone(), s.license), s.id);
            if matches!(s.license, SeatLicense::Profile(_)) {
                self.profile_of.insert(u.clone(), s.id);
            }
        }
        if let Some(e) = &s.extension {
            self.by_extension.entry(e.clone()).or_default().insert(s.id);
        }
    }

    fn unindex(&mut self, s: &Seat) {
        self.counts.apply(s, false);
        if let Some(u) = &s.user {
            if self.by_holder.get(&(u.clone(), s.license)) == Some(&s.id) {
                self.by_holder.remove(&(u.clone(), s.license));
            }
            if self.profile_of.get(u) == Some(&s.id) {
                self.profile_of.remove(u);
            }
        }
        if let Some(e) = &s.extension {
            if let Some(set) = self.by_extension.get_mut(e) {
                set.remove(&s.id);
                if set.is_empty() {
                    self.by_extension.remove(e);
                }
            }
        }
    }

    /// Puts `seat` in place of the seat with its id (if any), keeping the
    /// indexes and counts right.
    fn put(&mut self, seat: Seat) {
        if let Some(old) = self.seats.remove(&seat.id) {
            self.unindex(&old);
        }
        self.index(&seat);
        self.removed.remove(&seat.id);
        self.changed.insert(seat.id);
        self.seats.insert(seat.id, seat);
    }

    fn take(&mut self, id: SeatId) -> Option<Seat> {
        let s = self.seats.remove(&id)?;
        self.unindex(&s);
        self.changed.remove(&id);
        if self.stored.contains(&id) {
            self.removed.insert(id);
        }
        Some(s)
    }

    /// Every seat, by id.
    pub fn seats(&self) -> impl Iterator<Item = &Seat> + '_ {
        self.seats.values()
    }

    /// Number of seats.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seats.len()
    }

    /// Whether there are no seats.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }

    /// The seat with id `id`.
    #[must_use]
    pub fn get(&self, id: SeatId) -> Option<&Seat> {
        self.seats.get(&id)
    }

    /// Assigned counts (kept up to date with every change).
    #[must_use]
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Seats without a user.
    #[must_use]
    pub fn unassigned(&self) -> u64 {
        self.seats.values().filter(|s| !s.is_assigned()).count() as u64
    }

    /// Seats changed or added since loading (to write).
    pub fn changed(&self) -> impl Iterator<Item = (&Seat, bool)> + '_ {
        self.changed
            .iter()
            .filter_map(|id| self.seats.get(id).map(|s| (s, self.stored.contains(id))))
    }

    /// Ids of stored seats removed since loading (to delete).
    pub fn removed(&self) -> impl Iterator<Item = SeatId> + '_ {
        self.removed.iter().copied()
    }

    /// Number of changes to write.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.changed.len() + self.removed.len()
    }

    /// Marks everything as stored (after a commit).
    pub fn committed(&mut self) {
        self.stored = self.seats.keys().copied().collect();
        self.changed.clear();
        self.removed.clear();
    }

    /// The seat named by `spec`: a full UUID, or a unique prefix of at
    /// least 4 hex digits (hyphens ignored).
    ///
    /// # Errors
    /// [`SeatError::NotFound`], [`SeatError::AmbiguousSeat`],
    /// [`SeatError::BadSeatId`].
    pub fn resolve(&self, spec: &str) -> Result<SeatId, SeatError> {
        if let Ok(id) = spec.parse::<SeatId>() {
            return if self.seats.contains_key(&id) {
                Ok(id)
            } else {
                Err(SeatError::NotFound(spec.to_owned()))
            };
        }
        let want: String = spec
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        if want.len() < 4 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SeatError::BadSeatId(spec.to_owned()));
        }
        let mut found = self
            .seats
            .keys()
            .filter(|id| hex::encode(id.bytes()).starts_with(&want));
        match (found.next(), found.next()) {
            (Some(&id), None) => Ok(id),
            (None, _) => Err(SeatError::NotFound(spec.to_owned())),
            (Some(_), Some(_)) => Err(SeatError::AmbiguousSeat(spec.to_owned())),
        }
    }

    fn check_holder(
        &self,
        user: &str,
        license: SeatLicense,
        names: &Names,
    ) -> Result<(), SeatError> {
        if let Some(id) = self.by_holder.get(&(user.to_owned(), license)) {
            return Err(SeatError::UserHasLicense {
                user: user.to_owned(),
                license: names.license_name(license),
                uuid: *id,
            });
        }
        if let SeatLicense::Profile(_) = license {
            if let Some(id) = self.profile_of.get(user) {
                let other = self.seats.get(id).map(|s| s.license).unwrap_or(license);
                return Err(SeatError::UserHasProfile {
                    user: user.to_owned(),
                    profile: names.license_name(other),
                    uuid: *id,
                });
            }
        }
        Ok(())
    }

    fn check_extension_free(&self, ext: &str, me: Option<SeatId>) -> Result<(), SeatError> {
        if let Some(other) = self
            .by_extension
            .get(ext)
            .and_then(|set| set.iter().find(|id| Some(**id) != me))
        {
            let user = self
                .seats
                .get(other)
                .and_then(|s| s.user.clone())
                .unwrap_or_else(|| "unassigned".into());
            return Err(SeatError::ExtensionTaken {
                extension: ext.to_owned(),
                uuid: *other,
                user,
            });
        }
        Ok(())
    }

    /// Admits a seat becoming assigned with `addons` (or, `only`, just
    /// those add-ons on an assigned seat): service, the license count,
    /// add-ons listed for the base and their counts.
    fn admit(
        &self,
        limits: &Limits,
        license: SeatLicense,
        addons: &[u16],
        with_license: bool,
        names: &Names,
    ) -> Result<(), SeatError> {
        limits.require_service()?;
        if with_license {
            limits.admit(Key::of(license), &self.counts, names)?;
        }
        if let SeatLicense::Base(b) = license {
            for &a in addons {
                limits.admit_addon(b, a, names)?;
                limits.admit(Key::Addon { base: b, addon: a }, &self.counts, names)?;
            }
        } else if !addons.is_empty() {
            return Err(SeatError::AddonOnProfile(names.license_name(license)));
        }
        Ok(())
    }

    /// Makes a new seat for a user (`seats assign`).
    ///
    /// Refused: no service, the count of the license or of an add-on
    /// reached (or over after a license change), an add-on the license
    /// does not list for the base (or any add-on on a profile), a user
    /// who already holds this license (or another profile), an extension
    /// number in use.
    ///
    /// # Errors
    /// The [`SeatError`] of the rule broken.
    pub fn assign(
        &mut self,
        limits: &Limits,
        new: NewSeat,
        id: SeatId,
        now: i64,
        names: &Names,
    ) -> Result<SeatId, SeatError> {
        let seat = self.prepare(new, id, now, names)?;
        if let Some(e) = &seat.extension {
            self.check_extension_free(e, None)?;
        }
        self.admit(limits, seat.license, &seat.addons, true, names)?;
        self.put(seat);
        Ok(id)
    }

    fn prepare(
        &self,
        new: NewSeat,
        id: SeatId,
        now: i64,
        names: &Names,
    ) -> Result<Seat, SeatError> {
        let user = check_user(&new.user)?;
        let extension = new.extension.as_deref().map(check_extension).transpose()?;
        let addons = normalize_addons(new.addons)?;
        if !new.license.takes_addons() && !addons.is_empty() {
            return Err(SeatError::AddonOnProfile(names.license_name(new.license)));
        }
        if self.seats.contains_key(&id) {
            return Err(SeatError::StoreInconsistent(format!(
                "seat id {id} is in use"
            )));
        }
        self.check_holder(&user, new.license, names)?;
        Ok(Seat {
            id,
            license: new.license,
            user: Some(user),
            extension,
            addons,
            created: now,
            assigned: Some(now),
        })
    }

    /// Takes a seat from its user (`seats unassign`): it stays, with its
    /// extension and add-ons, for the next user, and counts nothing.
    /// Allowed whatever the license says.
    ///
    /// # Errors
    /// [`SeatError::NotAssigned`] for a seat without a user.
    pub fn unassign(&mut self, id: SeatId) -> Result<Seat, SeatError> {
        let mut s = self
            .seats
            .get(&id)
            .cloned()
            .ok_or_else(|| SeatError::NotFound(id.to_string()))?;
        if s.user.is_none() {
            return Err(SeatError::NotAssigned(id));
        }
        s.user = None;
        s.assigned = None;
        self.put(s.clone());
        Ok(s)
    }

    /// Unassigns every seat of `user`.
    ///
    /// # Errors
    /// [`SeatError::NoSeatsForUser`].
    pub fn unassign_user(&mut self, user: &str) -> Result<Vec<Seat>, SeatError> {
        let user = check_user(user)?;
        let ids: Vec<SeatId> = self
            .seats
            .values()
            .filter(|s| s.user.as_deref() == Some(user.as_str()))
            .map(|s| s.id)
            .collect();
        if ids.is_empty() {
            return Err(SeatError::NoSeatsForUser(user));
        }
        let mut seats = ids
            .into_iter()
            .map(|id| self.unassign(id))
            .collect::<Result<Vec<Seat>, SeatError>>()?;
        seats.sort_by(super::display_order);
        Ok(seats)
    }

    /// Gives a seat to another user (`seats reassign`), keeping its id,
    /// extension and add-ons. An unassigned seat is counted again, so its
    /// license and add-ons must fit; a seat moving from one user to
    /// another changes no count. Needs a license in full service.
    ///
    /// # Errors
    /// [`SeatError::NoService`], [`SeatError::LimitReached`],
    /// [`SeatError::UserHasLicense`], [`SeatError::UserHasProfile`], ...
    pub fn reassign(
        &mut self,
        limits: &Limits,
        id: SeatId,
        user: &str,
        now: i64,
        names: &Names,
    ) -> Result<Seat, SeatError> {
        let user = check_user(user)?;
        let mut s = self
            .seats
            .get(&id)
            .cloned()
            .ok_or_else(|| SeatError::NotFound(id.to_string()))?;
        if s.user.as_deref() == Some(user.as_str()) {
            return Ok(s);
        }
        limits.require_service()?;
        self.check_holder(&user, s.license, names)?;
        if !s.is_assigned() {
            self.admit(limits, s.license, &s.addons, true, names)?;
        }
        s.user = Some(user);
        s.assigned = Some(now);
        self.put(s.clone());
        Ok(s)
    }

    /// Adds and removes add-ons of a base license seat (`seats addons`).
    /// Adding needs a license in full service that lists the add-on for
    /// the base, with room in its count (on an assigned seat); removing is
    /// always allowed. An add-on already there (or already absent) is left
    /// as it is.
    ///
    /// # Errors
    /// [`SeatError::AddonOnProfile`], [`SeatError::AddonBothWays`],
    /// [`SeatError::NoService`], [`SeatError::AddonNotForBase`],
    /// [`SeatError::LimitReached`].
    pub fn set_addons(
        &mut self,
        limits: &Limits,
        id: SeatId,
        add: &[u16],
        remove: &[u16],
        names: &Names,
    ) -> Result<Seat, SeatError> {
        let mut s = self
            .seats
            .get(&id)
            .cloned()
            .ok_or_else(|| SeatError::NotFound(id.to_string()))?;
        if !s.license.takes_addons() {
            return Err(SeatError::AddonOnProfile(names.license_name(s.license)));
        }
        if let Some(a) = add.iter().find(|a| remove.contains(a)) {
            return Err(SeatError::AddonBothWays(names.addon_name(*a)));
        }
        let new: Vec<u16> = normalize_addons(add.to_vec())?
            .into_iter()
            .filter(|a| !s.addons.contains(a))
            .collect();
        if !new.is_empty() {
            if let SeatLicense::Base(b) = s.license {
                limits.require_service()?;
                for &a in &new {
                    limits.admit_addon(b, a, names)?;
                    if s.is_assigned() {
                        limits.admit(Key::Addon { base: b, addon: a }, &self.counts, names)?;
                    }
                }
            }
        }
        let mut addons: Vec<u16> = s
            .addons
            .iter()
            .copied()
            .filter(|a| !remove.contains(a))
            .chain(new)
            .collect();
        addons = normalize_addons(addons)?;
        if addons != s.addons {
            s.addons = addons;
            self.put(s.clone());
        }
        Ok(s)
    }

    /// Ends a seat by its id (`seats terminate`): it is removed, assigned
    /// or not. Allowed whatever the license says.
    ///
    /// # Errors
    /// [`SeatError::NotFound`].
    pub fn terminate(&mut self, id: SeatId) -> Result<Seat, SeatError> {
        self.take(id)
            .ok_or_else(|| SeatError::NotFound(id.to_string()))
    }

    /// One mass-configuration row: the seat of `user` with `license` gets
    /// `extension` and exactly `addons`; without one, an unassigned seat
    /// of that license with that extension is given to the user; else a
    /// new seat is made. Extension numbers are not checked here (an
    /// import checks them on the final state, so numbers can move between
    /// rows): call [`Pool::extension_clashes`] after the last row.
    ///
    /// # Errors
    /// As [`Pool::assign`] and [`Pool::set_addons`], but for extensions.
    pub fn upsert(
        &mut self,
        limits: &Limits,
        row: NewSeat,
        new_id: impl FnOnce() -> Result<SeatId, SeatError>,
        now: i64,
        names: &Names,
    ) -> Result<Upsert, SeatError> {
        let user = check_user(&row.user)?;
        let extension = row.extension.as_deref().map(check_extension).transpose()?;
        let addons = normalize_addons(row.addons)?;
        if !row.license.takes_addons() && !addons.is_empty() {
            return Err(SeatError::AddonOnProfile(names.license_name(row.license)));
        }
        if let Some(&id) = self.by_holder.get(&(user.clone(), row.license)) {
            let Some(mut s) = self.seats.get(&id).cloned() else {
                return Err(SeatError::StoreInconsistent(format!(
                    "index names a missing seat {id}"
                )));
            };
            if s.extension == extension && s.addons == addons {
                return Ok(Upsert::Unchanged(id));
            }
            let added: Vec<u16> = addons
                .iter()
                .copied()
                .filter(|a| !s.addons.contains(a))
                .collect();
            if !added.is_empty() {
                self.admit(limits, s.license, &added, false, names)?;
            }
            s.extension = extension;
            s.addons = addons;
            self.put(s);
            return Ok(Upsert::Changed(id));
        }
        let idle = extension.as_ref().and_then(|e| {
            self.by_extension.get(e).and_then(|set| {
                set.iter().copied().find(|id| {
                    self.seats
                        .get(id)
                        .is_some_and(|s| s.user.is_none() && s.license == row.license)
                })
            })
        });
        if let Some(id) = idle {
            self.check_holder(&user, row.license, names)?;
            self.admit(limits, row.license, &addons, true, names)?;
            let Some(mut s) = self.seats.get(&id).cloned() else {
                return Err(SeatError::StoreInconsistent(format!(
                    "index names a missing seat {id}"
                )));
            };
            s.user = Some(user);
            s.assigned = Some(now);
            s.addons = addons;
            self.put(s);
            return Ok(Upsert::Changed(id));
        }
        self.check_holder(&user, row.license, names)?;
        self.admit(limits, row.license, &addons, true, names)?;
        let id = new_id()?;
        if self.seats.contains_key(&id) {
            return Err(SeatError::StoreInconsistent(format!(
                "seat id {id} is in use"
            )));
        }
        self.put(Seat {
            id,
            license: row.license,
            user: Some(user),
            extension,
            addons,
            created: now,
            assigned: Some(now),
        });
        Ok(Upsert::Created(id))
    }

    /// Extension numbers held by more than one seat, with the seats.
    #[must_use]
    pub fn extension_clashes(&self) -> Vec<(String, Vec<SeatId>)> {
        let mut out: Vec<(String, Vec<SeatId>)> = self
            .by_extension
            .iter()
            .filter(|(_, set)| set.len() > 1)
            .map(|(e, set)| (e.clone(), set.iter().copied().collect()))
            .collect();
        out.sort();
        out
    }
}

/// What [`Pool::upsert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsert {
    /// A new seat.
    Created(SeatId),
    /// An existing seat changed (extension, add-ons, or an unassigned
    /// seat given to the user).
    Changed(SeatId),
    /// Nothing to do.
    Unchanged(SeatId),
}

impl Upsert {
    /// The seat.
    #[must_use]
    pub fn id(self) -> SeatId {
        match self {
            Self::Created(id) | Self::Changed(id) | Self::Unchanged(id) => id,
        }
    }
}
