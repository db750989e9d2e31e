//! The seat commands against the installed license: [`crate::Agent::seats`]
//! opens the state directory (lock and crash recovery, as every command),
//! the seat store and the names; the counts come from verifying the
//! installed license with [`tessera_verifier::verify`] (nothing stored), or,
//! for a sharing client, from its server's license.

use core::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use tessera_verifier::armor::MAX_ARMOR_LEN;
use tessera_verifier::{decode_license, verify, Decision, Grants, KeyEntry, Role, Schedule};

use crate::agent::{license_bytes, Agent};
use crate::catalog::Catalog;
use crate::clock::format_time;
use crate::error::AgentError;
use crate::mode::Mode;
use crate::store::{Folder, Store};

use super::db::SeatDb;
use super::limits::{over_assigned, Limits, LimitsSource, OverAssigned, Summary};
use super::mass::{self, ImportOutcome, Stage};
use super::model::{Seat, SeatId, SeatLicense};
use super::names::Names;
use super::pool::NewSeat;
use super::{display_order, SeatError, SeatHook};

/// Options of [`Agent::seats`].
#[derive(Clone, Debug, Default)]
pub struct SeatOptions {
    /// For a sharing client: the server's license file (overrides
    /// `server_license` in `agent.toml`).
    pub server_license: Option<PathBuf>,
    /// Crash-safety test hook.
    pub hook: Option<SeatHook>,
}

/// What `seats list` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Seats of this user.
    pub user: Option<String>,
    /// The seat with this extension (Phone System seats only).
    pub extension: Option<String>,
    /// Seats of this license.
    pub license: Option<SeatLicense>,
    /// Seats with this add-on.
    pub addon: Option<u16>,
    /// Only seats without a user.
    pub unassigned: bool,
    /// Only assignments over the limit.
    pub over: bool,
}

/// A license with its name, for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LicenseView {
    /// `profile` or `base`.
    pub kind: &'static str,
    /// Catalog code.
    pub code: u16,
    /// Name.
    pub name: String,
}

/// An add-on with its name, for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddonView {
    /// Catalog code.
    pub code: u16,
    /// Name.
    pub name: String,
}

/// A seat with names, for output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeatView {
    /// Its UUID.
    pub uuid: SeatId,
    /// Its user; absent when unassigned.
    pub user: Option<String>,
    /// Its extension number.
    pub extension: Option<String>,
    /// Its license.
    pub license: LicenseView,
    /// Its add-ons.
    pub addons: Vec<AddonView>,
    /// When the seat was made.
    pub created: String,
    /// When it was given to its user.
    pub assigned: Option<String>,
}

impl SeatView {
    /// The view of `seat`.
    #[must_use]
    pub fn new(seat: &Seat, names: &Names) -> Self {
        Self {
            uuid: seat.id,
            user: seat.user.clone(),
            extension: seat.extension.clone(),
            license: LicenseView {
                kind: seat.license.kind(),
                code: seat.license.code(),
                name: names.license_name(seat.license),
            },
            addons: seat
                .addons
                .iter()
                .map(|&a| AddonView {
                    code: a,
                    name: names.addon_name(a),
                })
                .collect(),
            created: format_time(seat.created),
            assigned: seat.assigned.map(format_time),
        }
    }

    /// One line for people.
    #[must_use]
    pub fn line(&self) -> String {
        let addons: Vec<&str> = self.addons.iter().map(|a| a.name.as_str()).collect();
        format!(
            "{}: {}, {} ({} {}), extension {}, add-ons: {}",
            self.uuid,
            self.user.as_deref().unwrap_or("(unassigned)"),
            self.license.name,
            self.license.kind,
            self.license.code,
            self.extension.as_deref().unwrap_or("none"),
            if addons.is_empty() {
                "none".into()
            } else {
                addons.join(", ")
            }
        )
    }
}

/// A seat taken from its user (`seats unassign`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unassigned {
    /// The seat as it is now (without a user).
    #[serde(flatten)]
    pub seat: SeatView,
    /// Who held it.
    pub previous_user: String,
}

/// `seats list` as a table for people.
#[must_use]
pub fn render_list(seats: &[SeatView]) -> String {
    use core::fmt::Write as _;
    let rows: Vec<[String; 6]> = seats
        .iter()
        .map(|s| {
            [
                s.uuid.to_string(),
                s.user.clone().unwrap_or_else(|| "(unassigned)".into()),
                s.extension.clone().unwrap_or_else(|| "-".into()),
                format!("{} ({} {})", s.license.name, s.license.kind, s.license.code),
                if s.addons.is_empty() {
                    "-".into()
                } else {
                    s.addons
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                },
                s.assigned.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = [
        "UUID",
        "USER",
        "EXTENSION",
        "LICENSE",
        "ADD-ONS",
        "ASSIGNED",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 6]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let width = w.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]);
    }
    let _ = writeln!(out, "{} seat(s)", rows.len());
    out
}

/// An open seat session: the state directory locked, the store open.
#[derive(Debug)]
pub struct Seats<'a> {
    agent: &'a Agent,
    store: Store,
    db: SeatDb,
    names: Names,
    now: i64,
    server_license: Option<PathBuf>,
    limits: Option<Limits>,
}

impl Agent {
    /// Opens the seats of this PBX at time `now` (which dates new
    /// assignments and judges the license).
    ///
    /// # Errors
    /// [`AgentError::NotActivated`] without a state directory, store,
    /// catalog and seat store errors.
    pub fn seats(&self, now: i64, options: SeatOptions) -> Result<Seats<'_>, AgentError> {
        let store = self.open_store(false)?;
        let db = SeatDb::open(store.folder(), options.hook)?;
        let names = Names::new(self.catalog()?.as_ref());
        Ok(Seats {
            agent: self,
            store,
            db,
            names,
            now,
            server_license: options.server_license,
            limits: None,
        })
    }
}

fn no_service(mode: Mode) -> String {
    format!(
        "the license gives no full service ({}: {}); install a renewed license first",
        mode.name(),
        mode.behaviour()
    )
}

/// Verifies the sharing server's license at `path` for a client of
/// `server`: same keyring, a server license with that serial, in force at
/// `now`, not older than `seen` (the highest sequence used before).
fn server_limits(
    path: Option<&Path>,
    server: &str,
    keyring: &[KeyEntry],
    now: i64,
    seen: Option<u32>,
) -> Limits {
    let Some(path) = path else {
        return Limits::unavailable(format!(
            "this PBX is a sharing client of {server}, so its seats count against the server's license: pass --server-license FILE with a copy of {server}'s license file, or set `server_license` in agent.toml"
        ));
    };
    let shown = crate::store::shown(path);
    let input = match crate::store::read_file(path, MAX_ARMOR_LEN as u64, None, "license file") {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Limits::unavailable(format!(
                "the sharing server's license {shown} does not exist; copy the server's license file there"
            ))
        }
        Err(e) => {
            return Limits::unavailable(format!(
                "cannot read the sharing server's license: {e}"
            ))
        }
    };
    let bytes = match license_bytes(&input) {
        Ok(b) => b,
        Err(e) => {
            return Limits::unavailable(format!(
                "the sharing server's license {shown} cannot be read: {e}"
            ))
        }
    };
    let license = match decode_license(&bytes, keyring) {
        Ok(l) => l,
        Err(e) => {
            return Limits::unavailable(format!(
                "the sharing server's license {shown} is refused: {}",
                AgentError::from(e)
            ))
        }
    };
    let serial = license.serial();
    if serial != server {
        return Limits::unavailable(format!(
            "{shown} is the license of {serial}, but this PBX is a sharing client of {server}; use {server}'s license file"
        ));
    }
    let grants = Grants::new(&license);
    if grants.role() != Role::Server {
        return Limits::unavailable(format!(
            "{shown} ({serial}) is not a sharing server's license; ask the vendor to enable sharing on {server}"
        ));
    }
    let sequence = license.sequence();
    if let Some(seen) = seen.filter(|&s| s > sequence) {
        return Limits::unavailable(format!(
            "the sharing server's license {shown} has sequence {sequence}, older than sequence {seen} used before; use {server}'s current license file"
        ));
    }
    let verdict = Schedule::of(&license).verdict(now);
    let blocked = (!verdict.full_service()).then(|| {
        format!(
            "the sharing server's license {serial} gives no full service ({}); renew it on the server and copy the new file here",
            verdict.code()
        )
    });
    Limits::from_grants(
        &grants,
        LimitsSource {
            kind: "server",
            serial: Some(serial.to_owned()),
            sequence: Some(sequence),
        },
        blocked,
    )
}

fn seen_key(server: &str) -> String {
    format!("server_sequence:{server}")
}

/// The counts and blocking of the license `decision`, for the seats:
/// its own grants, or, for a sharing client, its server's.
fn decision_limits(
    decision: &Decision<'_>,
    server_license: Option<&Path>,
    keyring: &[KeyEntry],
    now: i64,
    db: &SeatDb,
) -> Result<Limits, SeatError> {
    let license = decision.license();
    let listed = Grants::new(license);
    let blocked = (!decision.full_service()).then(|| no_service(Mode::of(decision.verdict())));
    match listed.role() {
        Role::ClientOf(server) => {
            if let Some(b) = blocked {
                return Ok(Limits::unavailable(b));
            }
            let seen = db
                .meta(&seen_key(server))?
                .and_then(|v| v.parse::<u32>().ok());
            Ok(server_limits(server_license, server, keyring, now, seen))
        }
        Role::Standalone | Role::Server => Ok(Limits::from_grants(
            &listed,
            LimitsSource {
                kind: "own",
                serial: Some(license.serial().to_owned()),
                sequence: Some(license.sequence()),
            },
            blocked,
        )),
    }
}

/// The over-assigned section of `check` and `status`, and notes; never an
/// error (a check does not fail over seats).
pub(crate) fn over_assigned_report(
    agent: &Agent,
    folder: &Folder,
    decision: &Decision<'_>,
    keyring: &[KeyEntry],
    now: i64,
    catalog: Option<&Catalog>,
) -> (Vec<OverAssigned>, Vec<String>) {
    let db = match SeatDb::open_existing(folder) {
        Ok(Some(db)) => db,
        Ok(None) => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![format!("seats not checked: {e}")]),
    };
    let seats = match db.load() {
        Ok(s) => s,
        Err(e) => return (Vec::new(), vec![format!("seats not checked: {e}")]),
    };
    let names = Names::new(catalog);
    let server = agent.config().server_license.as_deref();
    let limits = match decision_limits(decision, server, keyring, now, &db) {
        Ok(l) => l,
        Err(e) => return (Vec::new(), vec![format!("seats not checked: {e}")]),
    };
    let mut notes = Vec::new();
    if limits.source().kind == "none" {
        if let Some(reason) = limits.blocked() {
            if decision.full_service() && seats.iter().any(Seat::is_assigned) {
                notes.push(format!("seats not checked against a license: {reason}"));
            }
        }
        return (Vec::new(), notes);
    }
    (over_assigned(&seats, &limits, &names), notes)
}

impl Seats<'_> {
    /// The names in use.
    #[must_use]
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The seat store.
    #[must_use]
    pub fn db(&self) -> &SeatDb {
        &self.db
    }

    /// The counts and whether new assignments may be made, from the
    /// installed license at this session's time (evaluated once).
    ///
    /// # Errors
    /// [`SeatError::NotAClient`] for `--server-license` on a PBX that is no
    /// sharing client; seat store errors. A missing or refused license is
    /// not an error: the limits then allow nothing and say why.
    pub fn limits(&mut self) -> Result<&Limits, AgentError> {
        if self.limits.is_none() {
            let l = self.evaluate()?;
            self.limits = Some(l);
        }
        self.limits
            .as_ref()
            .ok_or_else(|| SeatError::StoreInconsistent("limits not evaluated".into()).into())
    }

    fn evaluate(&self) -> Result<Limits, AgentError> {
        let installed = match self.agent.installed(&self.store) {
            Ok(Some(i)) => i,
            Ok(None) => {
                return Ok(Limits::unavailable(
                    "no license is installed; install the vendor's license with `tessera-agent install FILE`",
                ))
            }
            Err(e) => return Ok(Limits::unavailable(e.to_string())),
        };
        let mut state = installed.state;
        let decision = match verify(
            &installed.bytes,
            &installed.keyring,
            &installed.identity,
            self.now,
            &mut state,
        ) {
            Ok(d) => d,
            Err(e) => {
                return Ok(Limits::unavailable(format!(
                    "the installed license is refused: {}",
                    crate::agent::refused_license(
                        e,
                        &installed.state,
                        self.now,
                        &installed.bytes,
                        &installed.identity
                    )
                )))
            }
        };
        let role = Grants::new(decision.license()).role();
        if self.server_license.is_some() {
            match role {
                Role::Standalone => return Err(SeatError::NotAClient("standalone").into()),
                Role::Server => return Err(SeatError::NotAClient("a sharing server's").into()),
                Role::ClientOf(_) => {}
            }
        }
        let server =
            self.server_license
                .as_deref()
                .or(self.agent.config().server_license.as_deref());
        let limits = decision_limits(&decision, server, &installed.keyring, self.now, &self.db)?;
        if let (Role::ClientOf(server), Some(seq), None) =
            (role, limits.source().sequence, limits.blocked())
        {
            let key = seen_key(server);
            let seen = self.db.meta(&key)?.and_then(|v| v.parse::<u32>().ok());
            if seen.is_none_or(|s| s < seq) {
                self.db.set_meta(&key, &seq.to_string())?;
            }
        }
        Ok(limits)
    }

    fn view(&self, seat: &Seat) -> SeatView {
        SeatView::new(seat, &self.names)
    }

    /// `seats assign`: a new seat for `user`.
    ///
    /// # Errors
    /// The rules of [`super::Pool::assign`], store errors.
    pub fn assign(&mut self, new: NewSeat) -> Result<SeatView, AgentError> {
        let limits = self.limits()?.clone();
        let id = SeatId::random()?;
        let now = self.now;
        let names = &self.names;
        self.db
            .change(|p| p.assign(&limits, new, id, now, names), None)?;
        let seat = self
            .db
            .pool()?
            .get(id)
            .cloned()
            .ok_or_else(|| SeatError::NotFound(id.to_string()))?;
        Ok(self.view(&seat))
    }

    /// `seats unassign UUID`: the seat stays, without a user.
    ///
    /// # Errors
    /// [`SeatError::NotFound`], [`SeatError::NotAssigned`], store errors.
    pub fn unassign(&mut self, uuid: &str) -> Result<Unassigned, AgentError> {
        let (seat, previous) = self.db.change(
            |p| {
                let id = p.resolve(uuid)?;
                let previous = p.get(id).and_then(|s| s.user.clone()).unwrap_or_default();
                p.unassign(id).map(|s| (s, previous))
            },
            None,
        )?;
        Ok(Unassigned {
            seat: self.view(&seat),
            previous_user: previous,
        })
    }

    /// `seats unassign --user U`: every seat of the user.
    ///
    /// # Errors
    /// [`SeatError::NoSeatsForUser`], store errors.
    pub fn unassign_user(&mut self, user: &str) -> Result<Vec<Unassigned>, AgentError> {
        let seats = self.db.change(|p| p.unassign_user(user), None)?;
        let user = user.trim().to_owned();
        Ok(seats
            .iter()
            .map(|s| Unassigned {
                seat: self.view(s),
                previous_user: user.clone(),
            })
            .collect())
    }

    /// `seats reassign UUID --user V`.
    ///
    /// # Errors
    /// The rules of [`super::Pool::reassign`], store errors.
    pub fn reassign(&mut self, uuid: &str, user: &str) -> Result<SeatView, AgentError> {
        let limits = self.limits()?.clone();
        let now = self.now;
        let names = &self.names;
        let seat = self.db.change(
            |p| {
                let id = p.resolve(uuid)?;
                p.reassign(&limits, id, user, now, names)
            },
            None,
        )?;
        Ok(self.view(&seat))
    }

    /// `seats addons UUID --add A --remove B` (names or codes).
    ///
    /// # Errors
    /// The rules of [`super::Pool::set_addons`], unknown names, store
    /// errors.
    pub fn addons(
        &mut self,
        uuid: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<SeatView, AgentError> {
        let add = self.addon_codes(add)?;
        let remove = self.addon_codes(remove)?;
        let limits = if add.is_empty() {
            Limits::unavailable("adding nothing")
        } else {
            self.limits()?.clone()
        };
        let names = &self.names;
        let seat = self.db.change(
            |p| {
                let id = p.resolve(uuid)?;
                p.set_addons(&limits, id, &add, &remove, names)
            },
            None,
        )?;
        Ok(self.view(&seat))
    }

    /// Add-on names or codes to codes.
    ///
    /// # Errors
    /// [`SeatError::UnknownName`].
    pub fn addon_codes(&self, specs: &[String]) -> Result<Vec<u16>, AgentError> {
        specs
            .iter()
            .map(|a| self.names.addon(a).map_err(Into::into))
            .collect()
    }

    /// `seats terminate UUID`: the seat is removed.
    ///
    /// # Errors
    /// [`SeatError::NotFound`], store errors.
    pub fn terminate(&mut self, uuid: &str) -> Result<SeatView, AgentError> {
        let seat = self.db.change(
            |p| {
                let id = p.resolve(uuid)?;
                p.terminate(id)
            },
            None,
        )?;
        Ok(self.view(&seat))
    }

    /// `seats list`: the seats matching `filter`, in display order.
    ///
    /// # Errors
    /// [`SeatError::ExtensionSearch`] for an extension search outside the
    /// Phone System base license; store errors.
    pub fn list(&mut self, filter: &Filter) -> Result<Vec<SeatView>, AgentError> {
        let phone = SeatLicense::Base(self.names.phone_system());
        let license = match (&filter.extension, filter.license) {
            (Some(_), Some(l)) if l != phone => {
                return Err(SeatError::ExtensionSearch {
                    license: self.names.license_name(l),
                    phone_system: phone.code(),
                }
                .into())
            }
            (Some(_), _) => Some(phone),
            (None, l) => l,
        };
        let extension = filter
            .extension
            .as_deref()
            .map(super::model::check_extension)
            .transpose()?;
        let user = filter.user.as_deref().map(str::trim);
        let pool = self.db.pool()?;
        let over: Option<Vec<SeatId>> = if filter.over {
            let limits = self.limits()?.clone();
            Some(
                over_assigned(pool.seats(), &limits, &self.names)
                    .into_iter()
                    .flat_map(|o| o.assignments.into_iter().map(|a| a.uuid))
                    .collect(),
            )
        } else {
            None
        };
        let mut seats: Vec<&Seat> = pool
            .seats()
            .filter(|s| user.is_none_or(|u| s.user.as_deref() == Some(u)))
            .filter(|s| license.is_none_or(|l| s.license == l))
            .filter(|s| extension.is_none() || s.extension == extension)
            .filter(|s| filter.addon.is_none_or(|a| s.addons.contains(&a)))
            .filter(|s| !filter.unassigned || !s.is_assigned())
            .filter(|s| over.as_ref().is_none_or(|o| o.contains(&s.id)))
            .collect();
        seats.sort_by(|a, b| display_order(a, b));
        Ok(seats.into_iter().map(|s| self.view(s)).collect())
    }

    /// `seats summary`: licensed, assigned, available for every profile,
    /// base license and add-on (assigned counts recounted by the store).
    ///
    /// # Errors
    /// Store errors.
    pub fn summary(&mut self) -> Result<Summary, AgentError> {
        let limits = self.limits()?.clone();
        let counts = self.db.counts()?;
        let unassigned = self.db.unassigned()?;
        Ok(Summary::new(&limits, &counts, unassigned, &self.names))
    }

    /// Assignments over the limit (as `check` reports them).
    ///
    /// # Errors
    /// Store errors.
    pub fn over_assigned(&mut self) -> Result<Vec<OverAssigned>, AgentError> {
        let limits = self.limits()?.clone();
        let pool = self.db.pool()?;
        Ok(over_assigned(pool.seats(), &limits, &self.names))
    }

    /// `seats import`: reads the whole file, checks every row against the
    /// rules and the license on the seats as they would be, and writes all
    /// of it in one transaction, or nothing (every bad row reported with
    /// its line). `dry_run` checks without writing.
    ///
    /// # Errors
    /// [`SeatError::Import`] listing the bad rows, [`SeatError::BadCsv`],
    /// store errors, [`SeatError::FailPoint`].
    pub fn import(
        &mut self,
        input: impl Read,
        dry_run: bool,
        progress: &mut dyn FnMut(Stage, u64, u64),
    ) -> Result<ImportOutcome, AgentError> {
        let (rows, mut errors) = mass::read_rows(input, &self.names)?;
        let limits = if rows.is_empty() {
            Limits::unavailable("no rows")
        } else {
            self.limits()?.clone()
        };
        let now = self.now;
        let names = &self.names;
        let progress = RefCell::new(progress);
        let run = |pool: &mut super::Pool| {
            let mut checking = |stage, done, total| (progress.borrow_mut())(stage, done, total);
            let outcome =
                mass::apply_rows(pool, &limits, rows, &mut errors, now, names, &mut checking)?;
            if errors.is_empty() {
                return Ok(outcome);
            }
            let more = errors.len().saturating_sub(mass::MAX_REPORTED);
            errors.truncate(mass::MAX_REPORTED);
            Err(SeatError::Import {
                rows: core::mem::take(&mut errors),
                more,
            })
        };
        let outcome = if dry_run {
            self.db.check(run)?
        } else {
            let mut writing = |done, total| (progress.borrow_mut())(Stage::Writing, done, total);
            self.db.change(run, Some(&mut writing))?
        };
        Ok(outcome)
    }

    /// `seats export`: the assigned seats as a mass-configuration file;
    /// the number of rows.
    ///
    /// # Errors
    /// Store and output errors.
    pub fn export(&self, out: impl Write) -> Result<u64, AgentError> {
        let pool = self.db.pool()?;
        Ok(mass::export(pool.seats(), &self.names, out)?)
    }
}
