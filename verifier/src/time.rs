//! Time policy (`spec/RUNTIME.md` §5): from the clock and a license's
//! dates and policy, exactly one [`Verdict`] and the time of the next check.
//!
//! All times are Unix seconds (`i64`), all durations seconds (`u32`), and
//! every sum saturates, so no license value can overflow the arithmetic.
//! Boundaries follow CWT: a license is in force from `nbf` inclusive and
//! until `exp` exclusive (RFC 8392 §3.1.4–§3.1.5).

use crate::claims::{AfterGrace, Platform, Policy};
use crate::License;

/// One hour in seconds.
pub const HOUR: i64 = 3_600;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// What the firmware may do right now (`spec/RUNTIME.md` §5.2).
///
/// Degraded states are verdicts, not errors: firmware is always told what
/// it may still do. Ordered by [`Verdict::rank`]: as time passes without a
/// new license the verdict only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Before the license's `nbf`: it is not in force yet. Keep using the
    /// license in force and retry at the next check.
    NotYetValid,
    /// Full service.
    Valid,
    /// Full service; the effective end is inside the renewal window.
    RenewalDue {
        /// Whole days left until the effective end, rounded up (1 in the
        /// last day, never 0).
        days_left: u32,
    },
    /// Past the effective end, inside the offline grace period: full
    /// service, renewal urgent.
    Grace {
        /// First second after the grace period.
        until: i64,
    },
    /// Grace is over (or never applied): only what `mode` allows.
    Expired {
        /// What the PBX may still do.
        mode: AfterGrace,
    },
}

impl Verdict {
    /// Position in the only order time can move verdicts in:
    /// `NotYetValid` 0, `Valid` 1, `RenewalDue` 2, `Grace` 3, `Expired` 4.
    #[must_use]
    pub fn rank(&self) -> u8 {
        match self {
            Self::NotYetValid => 0,
            Self::Valid => 1,
            Self::RenewalDue { .. } => 2,
            Self::Grace { .. } => 3,
            Self::Expired { .. } => 4,
        }
    }

    /// Whether the PBX may give full service (valid, renewal due, grace).
    #[must_use]
    pub fn full_service(&self) -> bool {
        matches!(
            self,
            Self::Valid | Self::RenewalDue { .. } | Self::Grace { .. }
        )
    }

    /// A stable, machine-readable name (`spec/vectors/runtime.json`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotYetValid => "not_yet_valid",
            Self::Valid => "valid",
            Self::RenewalDue { .. } => "renewal_due",
            Self::Grace { .. } => "grace",
            Self::Expired {
                mode: AfterGrace::EmergencyOnly,
            } => "expired_emergency_only",
            Self::Expired {
                mode: AfterGrace::Locked,
            } => "expired_locked",
        }
    }
}

/// The dates and policy that decide a verdict (`spec/RUNTIME.md` §5.1).
///
/// Usually built from a license with [`Schedule::of`]; the fields are
/// public so policies can be expressed and tested on their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Start of validity (`nbf`).
    pub not_before: i64,
    /// End of this file's lease (`exp`).
    pub lease_end: i64,
    /// End of the commercial term; `None` for lifetime.
    pub term_end: Option<i64>,
    /// Offline grace after the effective end, in seconds.
    pub grace: u32,
    /// What applies once grace is over.
    pub after_grace: AfterGrace,
    /// How long before the effective end renewal becomes due, in seconds.
    pub renewal_window: u32,
    /// How often the device checks, in seconds (≥ 1).
    pub check_interval: u32,
    /// Whether offline grace applies at all: not for Cloud, whose license
    /// is held by the vendor's own, always-online infrastructure.
    pub offline_grace: bool,
}

impl Schedule {
    /// A schedule from explicit dates, a policy and the platform.
    #[must_use]
    pub fn new(
        not_before: i64,
        lease_end: i64,
        term_end: Option<i64>,
        policy: &Policy,
        platform: Platform,
    ) -> Self {
        Self {
            not_before,
            lease_end,
            term_end,
            grace: policy.grace,
            after_grace: policy.after_grace,
            renewal_window: policy.renewal_window,
            check_interval: policy.check_interval,
            offline_grace: platform != Platform::Cloud,
        }
    }

    /// The schedule of a license.
    #[must_use]
    pub fn of(license: &License<'_>) -> Self {
        Self::new(
            license.not_before(),
            license.lease_end(),
            license.term().end,
            &license.policy(),
            license.platform(),
        )
    }

    /// Effective end: the earlier of the lease end and the term end.
    #[must_use]
    pub fn effective_end(&self) -> i64 {
        match self.term_end {
            Some(term_end) => self.lease_end.min(term_end),
            None => self.lease_end,
        }
    }

    /// First second of the renewal window.
    #[must_use]
    pub fn renewal_from(&self) -> i64 {
        self.effective_end()
            .saturating_sub(i64::from(self.renewal_window))
    }

    /// First second after grace (the effective end when no grace applies).
    #[must_use]
    pub fn grace_end(&self) -> i64 {
        if self.offline_grace {
            self.effective_end().saturating_add(i64::from(self.grace))
        } else {
            self.effective_end()
        }
    }

    /// The verdict at `now` (`spec/RUNTIME.md` §5.2).
    #[must_use]
    pub fn verdict(&self, now: i64) -> Verdict {
        let end = self.effective_end();
        if now < self.not_before {
            Verdict::NotYetValid
        } else if now < self.renewal_from() {
            Verdict::Valid
        } else if now < end {
            Verdict::RenewalDue {
                days_left: days_up(end.saturating_sub(now)),
            }
        } else if now < self.grace_end() {
            Verdict::Grace {
                until: self.grace_end(),
            }
        } else {
            Verdict::Expired {
                mode: self.after_grace,
            }
        }
    }

    /// The next time after `now` at which the verdict changes, if it ever
    /// does (it does not once expired).
    #[must_use]
    pub fn next_boundary(&self, now: i64) -> Option<i64> {
        [
            self.not_before,
            self.renewal_from(),
            self.effective_end(),
            self.grace_end(),
        ]
        .into_iter()
        .filter(|&b| b > now)
        .min()
    }

    /// When the device should check next: `now` plus the check interval,
    /// but never later than the next verdict boundary, so no change of
    /// verdict goes unnoticed for a whole interval (`spec/RUNTIME.md` §5.3).
    #[must_use]
    pub fn next_check(&self, now: i64) -> i64 {
        let regular = now.saturating_add(i64::from(self.check_interval.max(1)));
        match self.next_boundary(now) {
            Some(boundary) => regular.min(boundary),
            None => regular,
        }
    }
}

/// Whole days in `seconds` (> 0), rounded up, saturating.
fn days_up(seconds: i64) -> u32 {
    whole_days(seconds.saturating_add(DAY - 1))
}

/// Whole days from `since` to `now`, rounded down; 0 if `now` is earlier.
#[must_use]
pub fn days_between(since: i64, now: i64) -> u32 {
    whole_days(now.saturating_sub(since))
}

/// `seconds / DAY` rounded down, 0 for negative seconds, saturating.
///
/// Without a 64-bit division, which a Cortex-M does in a library routine
/// of about 2 KiB of flash: `DAY = 2^7 * 675`, so after a shift it is a
/// schoolbook division by 675 in 16-bit digits, where every partial
/// remainder shifted by 16 bits still fits 32.
fn whole_days(seconds: i64) -> u32 {
    const DIVISOR: u32 = 675;
    const _: () = assert!(DAY == 128 * DIVISOR as i64);
    let n = u64::try_from(seconds).unwrap_or(0) >> 7;
    let mut quotient = 0u64;
    let mut rest = 0u32;
    for shift in [48, 32, 16, 0] {
        let digit = u32::try_from((n >> shift) & 0xffff).unwrap_or(0);
        let current = (rest << 16) | digit;
        quotient = (quotient << 16) | u64::from(current / DIVISOR);
        rest = current % DIVISOR;
    }
    u32::try_from(quotient).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::AfterGrace::{EmergencyOnly, Locked};

    #[test]
    fn whole_days_is_the_plain_division() {
        let plain = |s: i64| u32::try_from(s.max(0) / DAY).unwrap_or(u32::MAX);
        let edges = [
            i64::MIN,
            -1,
            0,
            1,
            DAY - 1,
            DAY,
            DAY + 1,
            127,
            128,
            i64::from(u32::MAX) * DAY - 1,
            i64::from(u32::MAX) * DAY,
            i64::from(u32::MAX) * DAY + DAY,
            i64::MAX,
        ];
        for s in edges {
            assert_eq!(whole_days(s), plain(s), "{s}");
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for s in [x as i64, (x >> 20) as i64, (x >> 40) as i64] {
                assert_eq!(whole_days(s), plain(s), "{s}");
            }
        }
    }

    const T0: i64 = 1_767_225_600;

    /// The shipped default: daily checks, 30-day renewal window, 14 days of
    /// grace, then one emergency call (docs/rules.md: periodic check).
    fn daily_14_days() -> Policy {
        Policy {
            grace: 14 * 86_400,
            after_grace: EmergencyOnly,
            renewal_window: 30 * 86_400,
            check_interval: 86_400,
            rollback_tolerance: 86_400,
        }
    }

    /// The other shipped profile: 3-hourly checks, 72 hours of grace, then
    /// locked.
    fn three_hourly_72_hours() -> Policy {
        Policy {
            grace: 72 * 3_600,
            after_grace: Locked,
            renewal_window: 86_400,
            check_interval: 3 * 3_600,
            rollback_tolerance: 86_400,
        }
    }

    fn yearly(policy: &Policy, platform: Platform) -> Schedule {
        Schedule::new(T0, T0 + 365 * DAY, Some(T0 + 365 * DAY), policy, platform)
    }

    #[test]
    fn grace_14_days_then_emergency_only() {
        let s = yearly(&daily_14_days(), Platform::Hw);
        let end = T0 + 365 * DAY;
        let table = [
            (T0, Verdict::Valid),
            (end - 30 * DAY - 1, Verdict::Valid),
            (end - 30 * DAY, Verdict::RenewalDue { days_left: 30 }),
            (end - 1, Verdict::RenewalDue { days_left: 1 }),
            (
                end,
                Verdict::Grace {
                    until: end + 14 * DAY,
                },
            ),
            (
                end + 14 * DAY - 1,
                Verdict::Grace {
                    until: end + 14 * DAY,
                },
            ),
            (
                end + 14 * DAY,
                Verdict::Expired {
                    mode: EmergencyOnly,
                },
            ),
            (
                end + 1000 * DAY,
                Verdict::Expired {
                    mode: EmergencyOnly,
                },
            ),
        ];
        for (now, want) in table {
            assert_eq!(s.verdict(now), want, "at end{:+}s", now - end);
        }
    }

    #[test]
    fn grace_72_hours_then_locked() {
        // An online device on 3-hour leases inside a yearly term.
        let p = three_hourly_72_hours();
        let lease_end = T0 + 3 * HOUR;
        let s = Schedule::new(T0, lease_end, Some(T0 + 365 * DAY), &p, Platform::Vm);
        let until = lease_end + 72 * HOUR;
        let table = [
            (T0, Verdict::RenewalDue { days_left: 1 }),
            (lease_end, Verdict::Grace { until }),
            (until - 1, Verdict::Grace { until }),
            (until, Verdict::Expired { mode: Locked }),
        ];
        for (now, want) in table {
            assert_eq!(s.verdict(now), want, "at {now}");
        }
    }

    #[test]
    fn cloud_has_no_offline_grace() {
        let s = yearly(&daily_14_days(), Platform::Cloud);
        let end = T0 + 365 * DAY;
        assert_eq!(s.verdict(end - 1), Verdict::RenewalDue { days_left: 1 });
        assert_eq!(
            s.verdict(end),
            Verdict::Expired {
                mode: EmergencyOnly
            }
        );
        assert_eq!(s.grace_end(), end);
    }

    #[test]
    fn zero_grace_goes_straight_to_expired() {
        let mut p = daily_14_days();
        p.grace = 0;
        let s = yearly(&p, Platform::Hw);
        assert_eq!(
            s.verdict(T0 + 365 * DAY),
            Verdict::Expired {
                mode: EmergencyOnly
            }
        );
    }

    #[test]
    fn not_yet_valid_before_nbf() {
        let s = yearly(&daily_14_days(), Platform::Hw);
        assert_eq!(s.verdict(T0 - 1), Verdict::NotYetValid);
        assert_eq!(s.verdict(T0), Verdict::Valid);
        // The next check is at nbf at the latest.
        assert_eq!(s.next_check(T0 - HOUR), T0);
    }

    #[test]
    fn effective_end_is_the_earlier_of_lease_and_term() {
        let p = daily_14_days();
        // Air-gapped: lease to the term end.
        let s = Schedule::new(T0, T0 + 400 * DAY, Some(T0 + 365 * DAY), &p, Platform::Hw);
        assert_eq!(s.effective_end(), T0 + 365 * DAY);
        // Online: a short lease inside the term.
        let s = Schedule::new(T0, T0 + DAY, Some(T0 + 365 * DAY), &p, Platform::Hw);
        assert_eq!(s.effective_end(), T0 + DAY);
        // Lifetime: the lease alone.
        let s = Schedule::new(T0, T0 + 90 * DAY, None, &p, Platform::Vm);
        assert_eq!(s.effective_end(), T0 + 90 * DAY);
    }

    #[test]
    fn daily_checks_and_three_hourly_checks() {
        let s = yearly(&daily_14_days(), Platform::Hw);
        assert_eq!(s.next_check(T0), T0 + DAY);
        let s = yearly(&three_hourly_72_hours(), Platform::Hw);
        assert_eq!(s.next_check(T0), T0 + 3 * HOUR);
    }

    #[test]
    fn next_check_never_passes_a_verdict_boundary() {
        let s = yearly(&daily_14_days(), Platform::Hw);
        let end = T0 + 365 * DAY;
        // An hour before the renewal window opens: check when it opens.
        assert_eq!(s.next_check(end - 30 * DAY - HOUR), end - 30 * DAY);
        // Minutes before the end: check at the end.
        assert_eq!(s.next_check(end - 60), end);
        // In grace: at most at the end of grace.
        assert_eq!(s.next_check(end + 14 * DAY - 10), end + 14 * DAY);
        // Expired: the regular interval, for a renewal file or network.
        assert_eq!(s.next_check(end + 20 * DAY), end + 21 * DAY);
    }

    #[test]
    fn extreme_values_saturate() {
        let p = Policy {
            grace: u32::MAX,
            after_grace: Locked,
            renewal_window: u32::MAX,
            check_interval: u32::MAX,
            rollback_tolerance: u32::MAX,
        };
        let s = Schedule::new(i64::MIN, i64::MAX, None, &p, Platform::Hw);
        assert_eq!(s.grace_end(), i64::MAX);
        assert_eq!(s.next_check(i64::MAX - 1), i64::MAX);
        assert_eq!(s.verdict(0), Verdict::Valid);
        assert_eq!(
            s.verdict(i64::MAX - 1),
            Verdict::RenewalDue { days_left: 1 }
        );
        assert_eq!(days_between(i64::MIN, i64::MAX), u32::MAX);
        assert_eq!(days_between(10, 0), 0);
    }

    mod properties {
        extern crate std;

        use super::*;
        use proptest::prelude::*;

        fn schedule() -> impl Strategy<Value = Schedule> {
            (
                -1000i64..1000,
                0i64..400,
                proptest::option::of(0i64..400),
                0u32..30 * 86_400,
                any::<bool>(),
                0u32..60 * 86_400,
                1u32..2 * 86_400,
                any::<bool>(),
            )
                .prop_map(|(nbf, lease, term, grace, locked, window, check, cloud)| {
                    let not_before = T0 + nbf * HOUR;
                    Schedule {
                        not_before,
                        lease_end: not_before + lease * DAY,
                        term_end: term.map(|t| not_before + t * DAY + 1),
                        grace,
                        after_grace: if locked { Locked } else { EmergencyOnly },
                        renewal_window: window,
                        check_interval: check,
                        offline_grace: !cloud,
                    }
                })
        }

        proptest! {
            /// Valid → RenewalDue → Grace → Expired, never backwards while
            /// no new license arrives; days left never grow.
            #[test]
            fn verdicts_progress_monotonically(
                s in schedule(),
                start in -2000i64..2000,
                steps in proptest::collection::vec(0i64..20 * DAY, 1..40),
            ) {
                let mut now = T0 + start * HOUR;
                let mut previous = s.verdict(now);
                for step in steps {
                    now += step;
                    let v = s.verdict(now);
                    prop_assert!(v.rank() >= previous.rank(), "{previous:?} then {v:?}");
                    if let (Verdict::RenewalDue { days_left: a }, Verdict::RenewalDue { days_left: b }) = (previous, v) {
                        prop_assert!(b <= a);
                    }
                    previous = v;
                }
            }

            /// The next check is after now, at most one interval away, and
            /// no verdict change happens before it.
            #[test]
            fn next_check_is_never_past_a_verdict_change(s in schedule(), at in -2000i64..20_000) {
                let now = T0 + at * HOUR;
                let next = s.next_check(now);
                prop_assert!(next > now);
                prop_assert!(next <= now + i64::from(s.check_interval));
                let v = s.verdict(now);
                prop_assert_eq!(core::mem::discriminant(&s.verdict(next - 1)), core::mem::discriminant(&v));
            }
        }
    }
}
