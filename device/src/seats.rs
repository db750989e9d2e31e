//! Seat management: the people who run the PBX hand the license's
//! profiles, base licenses and add-ons out to users and extensions, and
//! the agent enforces the license at every step, offline.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | a seat: UUID, license, user, extension, add-ons, times |
//! | [`names`] | catalog names ↔ codes (configured catalog, else `spec/FORMAT.md` Appendix A) |
//! | [`limits`] | licensed and assigned counts, summary, over-assigned report |
//! | [`pool`] | the seats in memory and every change with its rules |
//! | [`db`] | the SQLite store `seats.db` in the state directory |
//! | [`mass`] | mass configuration CSV: import (all or nothing) and export |
//! | [`session`] | the commands against the installed license ([`crate::Agent::seats`]) |
//!
//! # Rules
//!
//! - A new assignment (a seat made, an unassigned seat given to a user,
//!   an add-on added) needs a license in full service (valid, renewal
//!   due, grace); emergency-only, locked, not yet valid, refused or no
//!   license: none (`unassign`, `terminate` and removing add-ons always
//!   work).
//! - It must fit the licensed count: `UC-BUSINESS: 10 licensed, 10
//!   assigned; unassign one or order more`. Add-ons go only on base
//!   licenses whose entry in the license lists them, and their counts
//!   are enforced too.
//! - A user holds at most one seat of each license, and one profile; an
//!   extension number belongs to one seat.
//! - Search by extension covers the Phone System base license only.
//! - A renewed or modified license that lowers a count below what is
//!   assigned deletes nothing: the latest assignments are reported as
//!   over the limit (`seats summary`, `check`, `status`), and new ones of
//!   that kind are refused until the count fits.
//! - A sharing client counts against its server's license
//!   (`--server-license FILE` or `server_license` in `agent.toml`): it is
//!   verified with the same keyring, must be a server license whose serial
//!   is the one the client's license names, must be in force, and may not
//!   be older (sequence) than one used before.

pub mod db;
pub mod limits;
pub mod mass;
pub mod model;
pub mod names;
pub mod pool;
pub mod session;

use core::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use db::{SeatDb, SEATS_FILE};
pub use limits::{Counts, Key, Limits, OverAssigned, Summary};
pub use model::{Seat, SeatId, SeatLicense};
pub use names::Names;
pub use pool::{NewSeat, Pool};
pub use session::{Filter, SeatOptions, SeatView, Seats, Unassigned};

use tessera_verifier::text::escaped;

use crate::store::{shown, FailAction, FileError};

/// A bad row of a mass import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Line of the file.
    pub line: u64,
    /// What is wrong and what to do.
    pub message: String,
}

fn limit_message(name: &str, licensed: u32, assigned: u32) -> String {
    if licensed == 0 && assigned == 0 {
        return format!("{name}: 0 licensed, 0 assigned; the license has none, order some first");
    }
    let need = u64::from(assigned) + 1 - u64::from(licensed);
    let what = if need == 1 {
        "one".to_owned()
    } else {
        need.to_string()
    };
    let over = if assigned > licensed {
        " (over the limit since the license changed)"
    } else {
        ""
    };
    format!("{name}: {licensed} licensed, {assigned} assigned{over}; unassign {what} or order more")
}

fn import_message(rows: &[RowError], more: usize) -> String {
    let mut s = format!(
        "the import was refused and changed nothing: {} row(s) are wrong; fix them and import the file again",
        rows.len() + more
    );
    for r in rows {
        s.push_str(&format!("\n  line {}: {}", r.line, r.message));
    }
    if more > 0 {
        s.push_str(&format!("\n  ... and {more} more"));
    }
    s
}

/// Why a seat command was refused. Every message says what was wrong and
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeatError {
    /// The license allows no new assignments now.
    #[error("no new assignments: {0}; unassign and terminate still work")]
    NoService(String),
    /// The licensed count is reached (or exceeded after a license change).
    #[error("{}", limit_message(.name, *.licensed, *.assigned))]
    LimitReached {
        /// What is counted.
        name: String,
        /// Licensed count.
        licensed: u32,
        /// Assigned count.
        assigned: u32,
    },
    /// The license does not list the add-on for the base license.
    #[error("add-on {addon} is not licensed for the {base} base license (the license lists {listed} for it); order it for {base} or leave it out")]
    AddonNotForBase {
        /// The add-on.
        addon: String,
        /// The base license.
        base: String,
        /// What the license lists for the base.
        listed: String,
    },
    /// Add-ons were given for a profile seat.
    #[error("{0} is a user profile and takes no add-ons; add-ons go on base licenses (--base)")]
    AddonOnProfile(String),
    /// The same add-on was to be added and removed.
    #[error("add-on {0} is both added and removed; name it once")]
    AddonBothWays(String),
    /// Too many add-ons on one seat.
    #[error("{0} add-ons on one seat; at most 64")]
    TooManyAddons(usize),
    /// Search by extension for another license than Phone System.
    #[error("search by extension covers the Phone System base license (code {phone_system}) only, not {license}; search {license} by --user instead")]
    ExtensionSearch {
        /// The license asked for.
        license: String,
        /// The Phone System code.
        phone_system: u16,
    },
    /// No seat with this id.
    #[error("no seat {}; `tessera-agent seats list` shows the seats and their UUIDs", escaped(.0))]
    NotFound(String),
    /// A UUID prefix matching several seats.
    #[error("`{}` matches several seats; give more of the UUID", escaped(.0))]
    AmbiguousSeat(String),
    /// Not a UUID.
    #[error("`{}` is not a seat UUID (xxxxxxxx-xxxx-4xxx-xxxx-xxxxxxxxxxxx, or a unique prefix of 4 or more hex digits)", escaped(.0))]
    BadSeatId(String),
    /// The seat has no user.
    #[error("seat {0} is not assigned; give it to a user with `seats reassign`, or remove it with `seats terminate`")]
    NotAssigned(SeatId),
    /// No seat for the user.
    #[error("{} holds no seat; `tessera-agent seats list` shows who holds which", escaped(.0))]
    NoSeatsForUser(String),
    /// The user already holds this license.
    #[error("{} already holds {license} (seat {uuid}); a user holds one seat of each license: reassign or unassign that seat first", escaped(.user))]
    UserHasLicense {
        /// The user.
        user: String,
        /// The license.
        license: String,
        /// The seat held.
        uuid: SeatId,
    },
    /// The user already has a profile.
    #[error("{} already has the profile {profile} (seat {uuid}); a user has one profile: unassign it first", escaped(.user))]
    UserHasProfile {
        /// The user.
        user: String,
        /// The profile held.
        profile: String,
        /// The seat held.
        uuid: SeatId,
    },
    /// The extension number is in use.
    #[error("extension {} is used by seat {uuid} ({}); choose another number or free it first", escaped(.extension), escaped(.user))]
    ExtensionTaken {
        /// The number.
        extension: String,
        /// The seat using it.
        uuid: SeatId,
        /// Its user.
        user: String,
    },
    /// A bad user name.
    #[error("user `{}` {reason}; give the user's login or e-mail address", escaped(.user))]
    BadUser {
        /// As given.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad extension number.
    #[error("extension `{}` is not a number: use digits (optionally after one +), at most 32", escaped(.0))]
    BadExtension(String),
    /// A name the catalog does not know.
    #[error("unknown {kind} `{}`; use a code or one of: {known}", escaped(.name))]
    UnknownName {
        /// `profile`, `base license`, `add-on`.
        kind: &'static str,
        /// As given.
        name: String,
        /// The names known.
        known: String,
    },
    /// A bare `extension_key` naming both a base license and a profile.
    #[error("`{name}` names both a base license and a profile; write base:{name} or profile:{name}", name = escaped(.0))]
    AmbiguousName(String),
    /// `--server-license` for a PBX that is no sharing client.
    #[error("--server-license is only for a sharing client, and this PBX's license is {0}; leave it out")]
    NotAClient(&'static str),
    /// A mass import with bad rows; nothing was changed.
    #[error("{}", import_message(.rows, *.more))]
    Import {
        /// The bad rows (the first [`mass::MAX_REPORTED`]).
        rows: Vec<RowError>,
        /// How many more.
        more: usize,
    },
    /// A bad row of a mass-configuration file.
    #[error("{0}")]
    BadRow(String),
    /// A mass-configuration file that cannot be read at all.
    #[error("cannot import: {0}")]
    BadCsv(String),
    /// Output could not be written.
    #[error("cannot write the output: {0}")]
    Output(String),
    /// The seat store cannot be used.
    #[error("the seat store {} cannot be used: {source}; check the disk and the permissions of the state directory", shown(.path))]
    Db {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The state folder's path no longer leads to the folder opened.
    #[error("the state folder {} was moved or replaced while the agent was using it; run the command again", shown(.0))]
    FolderMoved(PathBuf),
    /// A seat store file of 0 bytes: a new store is never empty (it is
    /// made whole and then renamed into place), so it was cut off.
    #[error("the seat store {} is empty (0 bytes): its seat assignments are lost (a full disk, or a copy or restore cut short); restore seats.db from a backup, or remove it to start again with no seats", shown(.0))]
    EmptyStore(PathBuf),
    /// A store made by a newer agent.
    #[error("the seat store {} has schema version {found}, newer than this agent knows (1); update tessera-agent", shown(.path))]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// Rows that break the store's own rules.
    #[error(
        "the seat store is inconsistent ({0}); restore it from a backup or export, or report this"
    )]
    StoreInconsistent(String),
    /// The random number generator failed.
    #[error("the system random number generator failed ({0}); try again")]
    Random(String),
    /// A test fail point was reached.
    #[error("stopped at fail point `{0}` (test hook)")]
    FailPoint(&'static str),
    /// A file of the seat store (or the CSV) was refused (a link, not a
    /// regular file, owner or mode, too large) or cannot be read.
    #[error(transparent)]
    File(#[from] FileError),
}

impl SeatError {
    pub(crate) fn db(path: &Path, source: rusqlite::Error) -> Self {
        Self::Db {
            path: path.to_owned(),
            source,
        }
    }

    /// A stable code for JSON output.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoService(_) => "no_service",
            Self::LimitReached { .. } => "seat_limit",
            Self::AddonNotForBase { .. } => "addon_not_licensed",
            Self::AddonOnProfile(_) => "addon_on_profile",
            Self::AddonBothWays(_) | Self::TooManyAddons(_) => "bad_addons",
            Self::ExtensionSearch { .. } => "extension_search",
            Self::NotFound(_) | Self::NoSeatsForUser(_) => "seat_not_found",
            Self::AmbiguousSeat(_) | Self::BadSeatId(_) => "bad_seat_id",
            Self::NotAssigned(_) => "seat_not_assigned",
            Self::UserHasLicense { .. } | Self::UserHasProfile { .. } => "user_has_seat",
            Self::ExtensionTaken { .. } => "extension_taken",
            Self::BadUser { .. } => "bad_user",
            Self::BadExtension(_) => "bad_extension",
            Self::UnknownName { .. } | Self::AmbiguousName(_) => "unknown_name",
            Self::NotAClient(_) => "not_a_client",
            Self::Import { .. } => "import_refused",
            Self::BadCsv(_) | Self::BadRow(_) => "bad_csv",
            Self::Output(_) => "output",
            Self::Db { .. }
            | Self::NewerSchema { .. }
            | Self::FolderMoved(_)
            | Self::EmptyStore(_) => "seat_store",
            Self::StoreInconsistent(_) => "seat_store_inconsistent",
            Self::Random(_) => "random",
            Self::FailPoint(_) => "fail_point",
            Self::File(e) => e.code(),
        }
    }
}

/// A point in a seat write where a test can stop the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatFailPoint {
    /// Half of the changes written, inside the transaction.
    HalfWritten,
    /// Every change written, before the commit.
    Written,
}

impl SeatFailPoint {
    /// Every point.
    pub const ALL: [Self; 2] = [Self::HalfWritten, Self::Written];

    /// The name used in [`crate::store::FAIL_POINT_ENV`].
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::HalfWritten => "seats-half-written",
            Self::Written => "seats-written",
        }
    }
}

/// A test hook that stops a seat write at one point (as a crash would).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeatHook {
    /// Where.
    pub point: SeatFailPoint,
    /// How.
    pub action: FailAction,
}

impl SeatHook {
    /// Parses `NAME` or `NAME:pause`.
    #[must_use]
    pub fn parse(spec: &str) -> Option<Self> {
        let (name, action) = FailAction::split(spec)?;
        SeatFailPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .map(|point| Self { point, action })
    }

    fn reached(self) -> Result<(), SeatError> {
        self.action.perform(self.point.name());
        Err(SeatError::FailPoint(self.point.name()))
    }
}

/// The order seats are listed and exported in: by license (profiles,
/// then base licenses, by code), assigned before unassigned, then by
/// extension number, user, assignment time and id.
#[must_use]
pub fn display_order(a: &Seat, b: &Seat) -> Ordering {
    let key = |s: &Seat| {
        (
            s.license,
            s.user.is_none(),
            s.extension.as_ref().map(|e| (e.len(), e.clone())),
            s.user.clone(),
            s.assigned,
            s.id,
        )
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests;
