//! What the PBX may do, and the exit codes that tell firmware scripts.
//!
//! | exit | mode | PBX behaviour |
//! |---|---|---|
//! | 0 | full | full service |
//! | 10 | renewal due | full service; notify the administrator |
//! | 11 | grace | full service; banner with the days left |
//! | 12 | emergency only | only emergency numbers, one call at a time |
//! | 13 | locked | phones stay registered; calls and web go to the activation page |
//! | 2 | refused or error | no license can be trusted: behave as locked and show the message |
//!
//! Exit code 2 is also what the argument parser uses for a usage error,
//! which is the same thing for a script: nothing was decided. Exit code 3
//! ([`EXIT_OUTPUT`]) is for the other commands only: their work was done,
//! their standard output could not be written; `check`, `status` and
//! `install` keep the mode's code then.

use serde::Serialize;
use tessera_verifier::claims::AfterGrace;
use tessera_verifier::Verdict;

/// Exit code: full service.
pub const EXIT_FULL: u8 = 0;
/// Exit code: the license or the command was refused, or an error occurred.
pub const EXIT_REFUSED: u8 = 2;
/// Exit code of a command other than `check`, `status` and `install`
/// whose work was done but whose standard output could not be written (a
/// full disk, an I/O error; a pipe whose reader is gone is not an error).
/// `check`, `status` and `install` keep the mode's exit code then: the
/// decision stands.
pub const EXIT_OUTPUT: u8 = 3;
/// Exit code of `renew` and `activate`: try again later. The license
/// service could not be reached (`server_unreachable`), or it is up but
/// still rate-limited the PBX after the retries (`rate_limited`, with the
/// server's `Retry-After`); the license in force stays and the offline
/// grace rules apply. `check --online` exits with the mode instead.
pub const EXIT_UNREACHABLE: u8 = 4;
/// Exit code: full service, renewal due.
pub const EXIT_RENEWAL_DUE: u8 = 10;
/// Exit code: full service during the offline grace period.
pub const EXIT_GRACE: u8 = 11;
/// Exit code: grace is over, emergency calls only.
pub const EXIT_EMERGENCY_ONLY: u8 = 12;
/// Exit code: grace is over, locked.
pub const EXIT_LOCKED: u8 = 13;

/// The operating mode of the PBX that a verdict calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Full service.
    Full,
    /// Full service; the license must be renewed soon.
    RenewalDue,
    /// Full service inside the offline grace period.
    Grace,
    /// Grace is over: only emergency numbers, one call.
    EmergencyOnly,
    /// Grace is over: phones registered, calls and web to the activation page.
    Locked,
    /// The license is not in force yet (the clock is behind its start).
    NotYetValid,
}

impl Mode {
    /// The mode a verdict calls for.
    #[must_use]
    pub fn of(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Valid => Self::Full,
            Verdict::RenewalDue { .. } => Self::RenewalDue,
            Verdict::Grace { .. } => Self::Grace,
            Verdict::Expired {
                mode: AfterGrace::EmergencyOnly,
            } => Self::EmergencyOnly,
            Verdict::Expired {
                mode: AfterGrace::Locked,
            } => Self::Locked,
            Verdict::NotYetValid => Self::NotYetValid,
        }
    }

    /// The process exit code of `check`, `status` and `install` in this
    /// mode (module documentation).
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Full => EXIT_FULL,
            Self::RenewalDue => EXIT_RENEWAL_DUE,
            Self::Grace => EXIT_GRACE,
            Self::EmergencyOnly => EXIT_EMERGENCY_ONLY,
            Self::Locked => EXIT_LOCKED,
            Self::NotYetValid => EXIT_REFUSED,
        }
    }

    /// Whether the PBX may give full service.
    #[must_use]
    pub fn full_service(self) -> bool {
        matches!(self, Self::Full | Self::RenewalDue | Self::Grace)
    }

    /// A stable name (`full`, `renewal_due`, ...), as in the JSON output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::RenewalDue => "renewal_due",
            Self::Grace => "grace",
            Self::EmergencyOnly => "emergency_only",
            Self::Locked => "locked",
            Self::NotYetValid => "not_yet_valid",
        }
    }

    /// What the PBX should do in this mode, in one sentence for people.
    #[must_use]
    pub fn behaviour(self) -> &'static str {
        match self {
            Self::Full => "full service",
            Self::RenewalDue => {
                "full service; notify the administrator that the license must be renewed"
            }
            Self::Grace => "full service; show a banner with the days of grace left",
            Self::EmergencyOnly => "emergency numbers only, one call at a time",
            Self::Locked => {
                "locked: phones stay registered, calls and web access go to the activation page"
            }
            Self::NotYetValid => "the license is not in force yet: check the clock",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_table() {
        let table = [
            (Verdict::Valid, EXIT_FULL, true),
            (Verdict::RenewalDue { days_left: 3 }, EXIT_RENEWAL_DUE, true),
            (Verdict::Grace { until: 5 }, EXIT_GRACE, true),
            (
                Verdict::Expired {
                    mode: AfterGrace::EmergencyOnly,
                },
                EXIT_EMERGENCY_ONLY,
                false,
            ),
            (
                Verdict::Expired {
                    mode: AfterGrace::Locked,
                },
                EXIT_LOCKED,
                false,
            ),
            (Verdict::NotYetValid, EXIT_REFUSED, false),
        ];
        for (verdict, code, full) in table {
            let mode = Mode::of(verdict);
            assert_eq!(mode.exit_code(), code, "{verdict:?}");
            assert_eq!(mode.full_service(), full, "{verdict:?}");
            assert_eq!(mode.full_service(), verdict.full_service());
        }
    }

    #[test]
    fn names_are_the_json_names() {
        for mode in [
            Mode::Full,
            Mode::RenewalDue,
            Mode::Grace,
            Mode::EmergencyOnly,
            Mode::Locked,
            Mode::NotYetValid,
        ] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.name()));
            assert!(!mode.behaviour().is_empty());
        }
    }
}
