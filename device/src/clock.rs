//! Times on the command line and in reports.
//!
//! The agent works in Unix seconds like the verifier. `--now` takes the
//! forms people type (RFC 3339 or a calendar date), so tests can simulate
//! days offline without touching the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// One day in seconds.
pub const DAY: i64 = 86_400;

/// Why a time given on the command line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The text is neither RFC 3339, `YYYY-MM-DD` nor `@SECONDS`.
    #[error(
        "`{0}` is not a time: write RFC 3339 (2026-05-01T12:00:00Z), a date (2026-05-01, midnight UTC) or @UNIX_SECONDS"
    )]
    Unparsable(String),
    /// The system clock is before 1970 or beyond what the agent handles.
    #[error(
        "the system clock is not set (before 1970 or out of range); set the clock and try again"
    )]
    ClockUnset,
}

/// Parses a time: RFC 3339 (`2026-05-01T12:00:00Z`, any offset), a
/// calendar date (`2026-05-01`, taken as midnight UTC) or `@SECONDS`
/// (Unix time).
///
/// ```
/// use tessera_device::clock::parse_time;
/// assert_eq!(parse_time("2026-01-01"), Ok(1_767_225_600));
/// assert_eq!(parse_time("2026-01-01T01:00:00+01:00"), Ok(1_767_225_600));
/// assert_eq!(parse_time("@1767225600"), Ok(1_767_225_600));
/// assert!(parse_time("yesterday").is_err());
/// ```
///
/// # Errors
/// [`TimeError::Unparsable`].
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    if let Some(seconds) = t.strip_prefix('@') {
        return seconds
            .parse::<i64>()
            .map_err(|_| TimeError::Unparsable(text.to_owned()));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp());
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp())
        .ok_or_else(|| TimeError::Unparsable(text.to_owned()))
}

/// Formats Unix seconds as RFC 3339 in UTC (`2026-01-01T00:00:00Z`);
/// values chrono cannot represent are written `@SECONDS`.
///
/// ```
/// assert_eq!(tessera_device::clock::format_time(1_767_225_600), "2026-01-01T00:00:00Z");
/// ```
#[must_use]
pub fn format_time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).map_or_else(
        || format!("@{t}"),
        |dt| dt.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// The system clock in Unix seconds.
///
/// # Errors
/// [`TimeError::ClockUnset`] for a clock before 1970.
pub fn system_now() -> Result<i64, TimeError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or(TimeError::ClockUnset)
}

/// Whole days from `now` until `end`, rounded up; 0 when `end` is not
/// after `now`.
#[must_use]
pub fn days_until(now: i64, end: i64) -> u32 {
    let seconds = end.saturating_sub(now).max(0);
    let days = seconds.saturating_add(DAY - 1) / DAY;
    u32::try_from(days).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Ok(1_767_225_600));
        assert_eq!(parse_time(" 2026-01-15 "), Ok(1_767_225_600 + 14 * DAY));
        assert_eq!(parse_time("@-5"), Ok(-5));
        assert!(matches!(parse_time(""), Err(TimeError::Unparsable(_))));
        assert!(matches!(
            parse_time("2026-13-01"),
            Err(TimeError::Unparsable(_))
        ));
        assert!(matches!(parse_time("@1e9"), Err(TimeError::Unparsable(_))));
    }

    #[test]
    fn formats_and_round_trips() {
        let t = 1_767_225_600 + 3_723;
        assert_eq!(format_time(t), "2026-01-01T01:02:03Z");
        assert_eq!(parse_time(&format_time(t)), Ok(t));
        assert_eq!(format_time(i64::MAX), format!("@{}", i64::MAX));
    }

    #[test]
    fn days_until_rounds_up() {
        assert_eq!(days_until(0, 0), 0);
        assert_eq!(days_until(0, 1), 1);
        assert_eq!(days_until(0, DAY), 1);
        assert_eq!(days_until(0, DAY + 1), 2);
        assert_eq!(days_until(10, 0), 0);
        assert_eq!(days_until(i64::MIN, i64::MAX), u32::MAX);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(system_now().unwrap() > 1_577_836_800);
    }
}
