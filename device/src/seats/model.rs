//! What a seat is: its id, the license it takes, the user and extension
//! it is given to, its add-ons and its times. Values from people (user,
//! extension number) are checked here, once, for every way in (command
//! line, mass import, the store).

use core::fmt;
use core::str::FromStr;

use rand_core::{OsRng, RngCore};
use serde::{Serialize, Serializer};

use super::SeatError;

/// Longest user name, in characters.
pub const MAX_USER_LEN: usize = 128;
/// Longest extension number, in characters (a leading `+` included).
pub const MAX_EXTENSION_LEN: usize = 32;
/// Most add-ons on one seat.
pub const MAX_ADDONS: usize = 64;

/// A seat's id: a random (version 4) UUID, written
/// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` in lowercase.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeatId([u8; 16]);

impl SeatId {
    /// A new random id from the operating system's generator.
    ///
    /// # Errors
    /// [`SeatError::Random`] when the generator fails.
    pub fn random() -> Result<Self, SeatError> {
        let mut b = [0u8; 16];
        OsRng
            .try_fill_bytes(&mut b)
            .map_err(|e| SeatError::Random(e.to_string()))?;
        Ok(Self::from_random_bytes(b))
    }

    /// The version 4 UUID made of 16 random bytes (version and variant
    /// bits set).
    #[must_use]
    pub fn from_random_bytes(mut b: [u8; 16]) -> Self {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Self(b)
    }

    /// The 16 bytes.
    #[must_use]
    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        let p = |r: core::ops::Range<usize>| h.get(r).unwrap_or_default();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            p(0..8),
            p(8..12),
            p(12..16),
            p(16..20),
            p(20..32)
        )
    }
}

impl fmt::Debug for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeatId({self})")
    }
}

impl FromStr for SeatId {
    type Err = SeatError;

    /// Parses a full UUID (hyphens optional, any case).
    fn from_str(s: &str) -> Result<Self, SeatError> {
        let hex_digits: String = s.trim().chars().filter(|c| *c != '-').collect();
        let mut b = [0u8; 16];
        match hex::decode_to_slice(&hex_digits, &mut b) {
            Ok(()) => Ok(Self(b)),
            Err(_) => Err(SeatError::BadSeatId(s.to_owned())),
        }
    }
}

impl Serialize for SeatId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The license a seat takes: a user profile or a base license, by
/// catalog code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeatLicense {
    /// A user profile (PBX-BASIC, UC-BUSINESS, ...).
    Profile(u16),
    /// A base license (Auto Attendant, Call Group, Developer, Phone
    /// System), which may carry add-ons.
    Base(u16),
}

impl SeatLicense {
    /// `profile` or `base`.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::Profile(_) => "profile",
            Self::Base(_) => "base",
        }
    }

    /// The catalog code.
    #[must_use]
    pub fn code(self) -> u16 {
        match self {
            Self::Profile(c) | Self::Base(c) => c,
        }
    }

    /// Whether add-ons may go on it (base licenses only).
    #[must_use]
    pub fn takes_addons(self) -> bool {
        matches!(self, Self::Base(_))
    }
}

/// One seat: a license handed to a user (or, unassigned, kept with its
/// extension and add-ons for the next user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    /// Its id.
    pub id: SeatId,
    /// The license it takes.
    pub license: SeatLicense,
    /// The user holding it; `None` once unassigned.
    pub user: Option<String>,
    /// The extension number.
    pub extension: Option<String>,
    /// Add-on codes, ascending, no repeats (base licenses only).
    pub addons: Vec<u16>,
    /// When the seat was made (Unix seconds).
    pub created: i64,
    /// When it was given to its current user (Unix seconds).
    pub assigned: Option<i64>,
}

impl Seat {
    /// Whether it counts against the license (it has a user).
    #[must_use]
    pub fn is_assigned(&self) -> bool {
        self.user.is_some()
    }
}

/// Checks a user name: trimmed of surrounding spaces, 1 to
/// [`MAX_USER_LEN`] characters, no control or format characters
/// ([`tessera_verifier::text::check`]).
///
/// # Errors
/// [`SeatError::BadUser`].
pub fn check_user(user: &str) -> Result<String, SeatError> {
    let u = user.trim();
    let bad = |reason: &str| SeatError::BadUser {
        user: user.to_owned(),
        reason: reason.to_owned(),
    };
    if u.is_empty() {
        return Err(bad("is empty"));
    }
    if u.chars().count() > MAX_USER_LEN {
        return Err(bad("is longer than 128 characters"));
    }
    // The one rule for text fields: no control or format characters (a
    // name is shown on terminals and written into CSV files).
    if let Err(fault) = tessera_verifier::text::check(u) {
        return Err(bad(&format!("is refused: {fault}")));
    }
    Ok(u.to_owned())
}

/// Checks an extension number: digits, optionally after one leading `+`,
/// at most [`MAX_EXTENSION_LEN`] characters (surrounding spaces removed).
///
/// # Errors
/// [`SeatError::BadExtension`].
pub fn check_extension(number: &str) -> Result<String, SeatError> {
    let n = number.trim();
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty()
        || n.len() > MAX_EXTENSION_LEN
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SeatError::BadExtension(number.to_owned()));
    }
    Ok(n.to_owned())
}

/// Sorts and de-duplicates add-on codes, refusing more than
/// [`MAX_ADDONS`].
///
/// # Errors
/// [`SeatError::TooManyAddons`].
pub fn normalize_addons(mut codes: Vec<u16>) -> Result<Vec<u16>, SeatError> {
    codes.sort_unstable();
    codes.dedup();
    if codes.len() > MAX_ADDONS {
        return Err(SeatError::TooManyAddons(codes.len()));
    }
    Ok(codes)
}
