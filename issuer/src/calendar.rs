//! Dates, terms and durations: every calendar rule of the issuer in one
//! place (docs/rules.md: payment cycle, last day of a month, co-termination).
//!
//! All times are UTC. Terms add calendar months and clamp to the end of a
//! shorter month (31 January + 1 month = 28/29 February), as chrono's
//! `checked_add_months` does.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tessera_verifier::claims::{Cycle, Platform};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A date or time that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a date or time: write RFC 3339 (2026-05-01T12:00:00Z) or YYYY-MM-DD (midnight UTC)", crate::validate::shown(.input))]
pub struct BadTime {
    /// The text given.
    pub input: String,
}

/// Parses RFC 3339 (`2026-05-01T12:00:00Z`, any offset, converted to UTC)
/// or a bare `YYYY-MM-DD` (midnight UTC).
///
/// ```
/// use tessera_issuer::calendar::parse_time;
/// assert_eq!(parse_time("2026-05-01").unwrap().timestamp(), 1_777_593_600);
/// assert_eq!(parse_time("2026-05-01T02:00:00+02:00").unwrap().timestamp(), 1_777_593_600);
/// ```
///
/// # Errors
/// [`BadTime`] naming the input.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, BadTime> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| Utc.from_utc_datetime(&dt))
        .ok_or_else(|| BadTime {
            input: text.to_owned(),
        })
}

/// A time as Unix seconds, clamped into chrono's range.
#[must_use]
pub fn from_unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// RFC 3339 in UTC with a `Z`, whole seconds.
#[must_use]
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// [`rfc3339`] of Unix seconds.
#[must_use]
pub fn rfc3339_unix(secs: i64) -> String {
    rfc3339(from_unix(secs))
}

/// The payment cycle of an order, as written in orders (`monthly`,
/// `yearly`, `5y`, `lifetime`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CycleName {
    /// One calendar month.
    #[serde(rename = "monthly")]
    Monthly,
    /// Twelve calendar months.
    #[serde(rename = "yearly")]
    Yearly,
    /// Sixty calendar months.
    #[serde(rename = "5y")]
    FiveYears,
    /// No term end.
    #[serde(rename = "lifetime")]
    Lifetime,
}

impl CycleName {
    /// The wire value.
    #[must_use]
    pub fn cycle(self) -> Cycle {
        match self {
            Self::Monthly => Cycle::Monthly,
            Self::Yearly => Cycle::Yearly,
            Self::FiveYears => Cycle::FiveYears,
            Self::Lifetime => Cycle::Lifetime,
        }
    }

    /// The name for a wire value.
    #[must_use]
    pub fn of(cycle: Cycle) -> Self {
        match cycle {
            Cycle::Monthly => Self::Monthly,
            Cycle::Yearly => Self::Yearly,
            Cycle::FiveYears => Self::FiveYears,
            Cycle::Lifetime => Self::Lifetime,
        }
    }

    /// The name as written in orders.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
            Self::FiveYears => "5y",
            Self::Lifetime => "lifetime",
        }
    }
}

/// The platform of an order, as written in orders (`hw`, `vm`, `cloud`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    /// Vendor appliance.
    Hw,
    /// Virtual machine.
    Vm,
    /// Vendor-hosted.
    Cloud,
}

impl PlatformName {
    /// The wire value.
    #[must_use]
    pub fn platform(self) -> Platform {
        match self {
            Self::Hw => Platform::Hw,
            Self::Vm => Platform::Vm,
            Self::Cloud => Platform::Cloud,
        }
    }

    /// The name for a wire value.
    #[must_use]
    pub fn of(platform: Platform) -> Self {
        match platform {
            Platform::Hw => Self::Hw,
            Platform::Vm => Self::Vm,
            Platform::Cloud => Self::Cloud,
        }
    }

    /// The name as written in orders.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hw => "hw",
            Self::Vm => "vm",
            Self::Cloud => "cloud",
        }
    }
}

/// Calendar months of one cycle; `None` for lifetime.
#[must_use]
pub fn cycle_months(cycle: Cycle) -> Option<u32> {
    match cycle {
        Cycle::Monthly => Some(1),
        Cycle::Yearly => Some(12),
        Cycle::FiveYears => Some(60),
        Cycle::Lifetime => None,
    }
}

/// The end of a term of `cycle` starting at `start`: calendar months
/// added, clamped to the end of a shorter month; `None` for lifetime (or
/// beyond the calendar).
///
/// ```
/// use tessera_issuer::calendar::{add_cycle, parse_time};
/// use tessera_verifier::claims::Cycle;
/// let end = add_cycle(parse_time("2026-01-31").unwrap(), Cycle::Monthly).unwrap();
/// assert_eq!(end, parse_time("2026-02-28").unwrap());
/// ```
#[must_use]
pub fn add_cycle(start: DateTime<Utc>, cycle: Cycle) -> Option<DateTime<Utc>> {
    start.checked_add_months(Months::new(cycle_months(cycle)?))
}

/// The last calendar day of a term ending at `end` (the day of the
/// instant just before `end`).
#[must_use]
pub fn last_term_day(end: DateTime<Utc>) -> NaiveDate {
    (end - chrono::Duration::seconds(1)).date_naive()
}

/// Whether `t` falls on the last day of its month.
///
/// ```
/// use tessera_issuer::calendar::{is_last_day_of_month, parse_time};
/// assert!(is_last_day_of_month(parse_time("2028-02-29T13:00:00Z").unwrap()));
/// assert!(!is_last_day_of_month(parse_time("2028-02-28").unwrap()));
/// ```
#[must_use]
pub fn is_last_day_of_month(t: DateTime<Utc>) -> bool {
    let d = t.date_naive();
    d.checked_add_days(Days::new(1))
        .is_none_or(|next| next.month() != d.month())
}

/// Whole days from `from` to `to` (negative when `to` is earlier),
/// counting partial days down.
#[must_use]
pub fn days_between(from: i64, to: i64) -> i64 {
    (to - from).div_euclid(DAY)
}

/// The prorated fraction of a service running from `start` to the term
/// end, relative to the whole term: days(start → end) / days(term start →
/// end), by calendar days (docs/rules.md: a service added mid-term is charged to
/// the remaining period).
#[must_use]
pub fn prorated_fraction(term_start: i64, term_end: i64, start: i64) -> f64 {
    let whole = calendar_days(term_start, term_end);
    if whole <= 0 {
        return 0.0;
    }
    let part = calendar_days(start.max(term_start), term_end).clamp(0, whole);
    // Day counts are far below 2^52: the conversions are exact.
    #[allow(clippy::cast_precision_loss)]
    let f = part as f64 / whole as f64;
    f
}

/// The end (exclusive, UTC) of the first business day after the day of
/// `t`: the deadline for reporting a mistake "within 1 business day".
/// Saturdays, Sundays and the `holidays` (the catalog's `[calendar]`) are
/// not business days.
///
/// ```
/// use chrono::NaiveDate;
/// use tessera_issuer::calendar::{end_of_next_business_day, parse_time, rfc3339_unix};
/// // Issued on Friday 2026-01-02: Monday counts, the deadline is Tuesday 00:00.
/// let friday = parse_time("2026-01-02T09:00:00Z").unwrap().timestamp();
/// assert_eq!(rfc3339_unix(end_of_next_business_day(friday, &[])), "2026-01-06T00:00:00Z");
/// let tuesday = parse_time("2026-01-06T18:00:00Z").unwrap().timestamp();
/// assert_eq!(rfc3339_unix(end_of_next_business_day(tuesday, &[])), "2026-01-08T00:00:00Z");
/// // With Monday 2026-01-05 a holiday, Tuesday counts instead.
/// let holiday = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
/// assert_eq!(rfc3339_unix(end_of_next_business_day(friday, &[holiday])), "2026-01-07T00:00:00Z");
/// ```
#[must_use]
pub fn end_of_next_business_day(t: i64, holidays: &[chrono::NaiveDate]) -> i64 {
    use chrono::Weekday;
    let mut day = from_unix(t).date_naive();
    loop {
        let Some(next) = day.succ_opt() else {
            return i64::MAX;
        };
        day = next;
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day) {
            break;
        }
    }
    day.succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(i64::MAX, |d| d.and_utc().timestamp())
}

/// Calendar days between the dates of two instants.
#[must_use]
pub fn calendar_days(from: i64, to: i64) -> i64 {
    (from_unix(to).date_naive() - from_unix(from).date_naive()).num_days()
}

/// A duration written as `<n>s`, `<n>m`, `<n>h` or `<n>d` (or a bare `0`),
/// in seconds, at most `u32::MAX`.
///
/// ```
/// use tessera_issuer::calendar::parse_duration;
/// assert_eq!(parse_duration("14d"), Some(14 * 86_400));
/// assert_eq!(parse_duration("3h"), Some(10_800));
/// assert_eq!(parse_duration("0"), Some(0));
/// assert_eq!(parse_duration("3 weeks"), None);
/// ```
#[must_use]
pub fn parse_duration(text: &str) -> Option<u32> {
    let t = text.trim();
    if t == "0" {
        return Some(0);
    }
    let unit = t.chars().last()?;
    let number: u64 = t.get(..t.len() - unit.len_utf8())?.parse().ok()?;
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    u32::try_from(number.checked_mul(scale)?).ok()
}

/// A duration in seconds as the shortest `<n>d|h|m|s` form.
#[must_use]
pub fn format_duration(secs: u32) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn cycles_add_calendar_months_clamped() {
        assert_eq!(
            add_cycle(t("2020-05-15"), Cycle::Yearly),
            Some(t("2021-05-15"))
        );
        assert_eq!(
            add_cycle(t("2024-02-29"), Cycle::Yearly),
            Some(t("2025-02-28"))
        );
        assert_eq!(
            add_cycle(t("2026-01-31"), Cycle::Monthly),
            Some(t("2026-02-28"))
        );
        assert_eq!(
            add_cycle(t("2026-03-31T10:00:00Z"), Cycle::FiveYears),
            Some(t("2031-03-31T10:00:00Z"))
        );
        assert_eq!(add_cycle(t("2026-01-01"), Cycle::Lifetime), None);
    }

    #[test]
    fn parse_times() {
        assert_eq!(t("2026-05-01").timestamp(), 1_777_593_600);
        assert_eq!(t("2026-05-01T00:00:00Z").timestamp(), 1_777_593_600);
        assert!(parse_time("01/05/2026").is_err());
        assert!(parse_time("2026-02-30").is_err());
        assert_eq!(
            parse_time("yesterday").unwrap_err().to_string(),
            "`yesterday` is not a date or time: write RFC 3339 (2026-05-01T12:00:00Z) or YYYY-MM-DD (midnight UTC)"
        );
    }

    #[test]
    fn last_days() {
        assert!(is_last_day_of_month(t("2026-01-31T23:59:59Z")));
        assert!(is_last_day_of_month(t("2026-04-30")));
        assert!(!is_last_day_of_month(t("2026-04-29")));
        assert_eq!(
            last_term_day(t("2027-01-01")),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
    }

    #[test]
    fn proration_example_from_domain() {
        // Yearly May 2020 -> May 2021, service ordered August 2020.
        let f = prorated_fraction(
            t("2020-05-01").timestamp(),
            t("2021-05-01").timestamp(),
            t("2020-08-01").timestamp(),
        );
        // 273 of 365 days.
        assert!((f - 273.0 / 365.0).abs() < 1e-12, "{f}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("45s"), Some(45));
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("-1d"), None);
        assert_eq!(parse_duration("99999999d"), None);
        assert_eq!(format_duration(14 * 86_400), "14d");
        assert_eq!(format_duration(10_800), "3h");
        assert_eq!(format_duration(61), "61s");
    }
}
