//! What `check`, `status` and `install` tell people and scripts: an owned
//! summary of a verifier [`Decision`], printed as text or JSON.

use core::fmt::Write as _;

use serde::Serialize;
use tessera_verifier::claims::{AfterGrace, Cycle, FeatureCategory};
use tessera_verifier::entitlement::Role;
use tessera_verifier::text::escaped;
use tessera_verifier::time::Schedule;
use tessera_verifier::{Decision, Grants, State, Verdict};

use crate::catalog::{Catalog, CodeKind};
use crate::clock::{days_until, format_time};
use crate::mode::Mode;
use crate::probe::platform_name;
use crate::seats::OverAssigned;

/// The note of a `check` whose state record could not be saved.
pub const STATE_NOT_SAVED: &str = "the state record could not be saved, so the time of this check is not recorded; the verdict stands (judged against the state last saved) and the PBX keeps its mode, but free space on the disk of the state folder and check again";

/// The outcome of evaluating the installed license at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The time evaluated at (RFC 3339).
    pub now: String,
    /// The verifier's verdict code (`valid`, `renewal_due`, `grace`,
    /// `expired_emergency_only`, `expired_locked`, `not_yet_valid`).
    pub verdict: &'static str,
    /// The PBX mode.
    pub mode: Mode,
    /// Whether the PBX may give full service.
    pub full_service: bool,
    /// The process exit code for this mode.
    pub exit_code: u8,
    /// What the PBX should do, for people.
    pub behaviour: &'static str,
    /// Whole days left: until the license end (valid, renewal due), until
    /// the end of grace (grace); absent otherwise.
    pub days_left: Option<u32>,
    /// First second after grace, while in grace.
    pub grace_until: Option<String>,
    /// Whole days since the last successful renewal (what the vendor is
    /// told for systems that fail to renew).
    pub days_since_renewal: Option<u32>,
    /// Time of the last successful renewal.
    pub last_renewal: Option<String>,
    /// When to check next.
    pub next_check: String,
    /// The license.
    pub license: LicenseSummary,
    /// How well the device matches the license binding.
    pub binding: BindingSummary,
    /// The sharing role.
    pub sharing: SharingSummary,
    /// What the license grants.
    pub entitlements: EntitlementSummary,
    /// Seat counts above what the license allows (`tessera-agent seats`):
    /// nothing is deleted, new assignments of that kind are refused.
    pub over_assigned: Vec<OverAssigned>,
    /// Whether the state record is on disk as this report has it: false
    /// when `check` could not save it (a full or failing disk). The verdict
    /// stands, judged against the last state saved; the warning is among
    /// the notes.
    pub state_saved: bool,
    /// Warnings and recovery notes.
    pub notes: Vec<String>,
    /// The PBX was decommissioned (all user licenses removed): when it
    /// stops and when it is deleted unless a user license is added back.
    pub decommissioned: Option<Decommissioned>,
}

/// The stop and deletion of a decommissioned PBX. Its license has no user
/// licenses, is not a sharing client's, and ends without grace, locked:
/// what the vendor issues after a decrease to zero users, whose license
/// ends at the stop (+5 days); the deletion follows 9 days after the stop
/// (+14 days).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decommissioned {
    /// The stop (the license's end).
    pub stop: String,
    /// The deletion, unless a user license is added back before.
    pub delete: String,
    /// Whether the stop has come.
    pub stopped: bool,
    /// Whether the deletion has come: no user license brings it back.
    pub deleted: bool,
}

impl Decommissioned {
    /// The deletion as the site is told it: still avoidable before it
    /// comes, final after.
    fn deletion(&self) -> String {
        if self.deleted {
            format!(
                "irrevocably deleted on {}: adding a user license no longer brings it back",
                self.delete
            )
        } else {
            format!(
                "deleted on {} unless a user license is added back",
                self.delete
            )
        }
    }
}

/// Days from a decommissioned PBX's stop to its deletion.
pub const DAYS_FROM_STOP_TO_DELETION: i64 = 9;

/// The license's identity and dates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LicenseSummary {
    /// SW serial.
    pub serial: String,
    /// License id, hex.
    pub id: String,
    /// Sequence.
    pub sequence: u32,
    /// Vendor id.
    pub issuer: String,
    /// Platform (`hw`, `vm`, `cloud`).
    pub platform: &'static str,
    /// Customer.
    pub customer: String,
    /// PBX name.
    pub pbx_name: String,
    /// HW serial converted to this SW serial, on a first activation.
    pub previous_serial: Option<String>,
    /// Issue time.
    pub issued_at: String,
    /// Start of validity.
    pub not_before: String,
    /// End of this file's lease.
    pub lease_end: String,
    /// Payment cycle (`monthly`, `yearly`, `five_years`, `lifetime`).
    pub cycle: &'static str,
    /// Term start.
    pub term_start: String,
    /// Term end; absent for lifetime.
    pub term_end: Option<String>,
    /// The earlier of lease end and term end.
    pub effective_end: String,
    /// End of the offline grace period.
    pub grace_end: String,
    /// What applies after grace (`emergency_only`, `locked`).
    pub after_grace: &'static str,
    /// Check interval in seconds.
    pub check_interval: u32,
}

/// Binding match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BindingSummary {
    /// Components of the license that matched this device.
    pub matched: u8,
    /// Components needed.
    pub threshold: u8,
    /// Components the license names.
    pub components: usize,
}

/// Sharing role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharingSummary {
    /// `standalone`, `server` or `client`.
    pub role: &'static str,
    /// The server's SW serial, for a client.
    pub server: Option<String>,
}

/// A code with its catalog name and a count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// Catalog code.
    pub code: u16,
    /// Catalog name: the configured catalog's, else the default
    /// catalog's; absent when it names none.
    pub name: Option<String>,
    /// Count.
    pub count: u32,
}

/// A licensed feature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureEntry {
    /// Catalog code.
    pub code: u16,
    /// Catalog name: the configured catalog's, else the default
    /// catalog's; absent when it names none.
    pub name: Option<String>,
    /// `instance`, `general` or `core`.
    pub category: &'static str,
    /// Quantity.
    pub quantity: u32,
    /// Licensed but not shown to the end customer.
    pub hidden: bool,
    /// Whether it may be used.
    pub enabled: bool,
}

/// A base license with its add-ons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BaseEntry {
    /// Catalog code.
    pub code: u16,
    /// Catalog name: the configured catalog's, else the default
    /// catalog's; absent when it names none.
    pub name: Option<String>,
    /// Count.
    pub count: u32,
    /// Add-ons.
    pub addons: Vec<Counted>,
}

/// A service with its effective (co-terminated) end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    /// Catalog code.
    pub code: u16,
    /// Catalog name: the configured catalog's, else the default
    /// catalog's; absent when it names none.
    pub name: Option<String>,
    /// Start.
    pub start: String,
    /// Effective end.
    pub end: String,
    /// Whether it runs now.
    pub active: bool,
}

/// What the license grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntitlementSummary {
    /// Whether the verdict lets the PBX use them (valid, renewal due,
    /// grace). When false the lists show what the license names, not
    /// what may be used.
    pub granted: bool,
    /// Sum of profile counts.
    pub total_users: u64,
    /// Profile counts.
    pub profiles: Vec<Counted>,
    /// Features.
    pub features: Vec<FeatureEntry>,
    /// Base licenses with add-ons.
    pub bases: Vec<BaseEntry>,
    /// Storage units.
    pub storage_units: u32,
    /// Storage in GB.
    pub storage_gb: u64,
    /// Services.
    pub services: Vec<ServiceEntry>,
}

fn cycle_name(c: Cycle) -> &'static str {
    match c {
        Cycle::Monthly => "monthly",
        Cycle::Yearly => "yearly",
        Cycle::FiveYears => "five_years",
        Cycle::Lifetime => "lifetime",
    }
}

fn after_grace_name(a: AfterGrace) -> &'static str {
    match a {
        AfterGrace::EmergencyOnly => "emergency_only",
        AfterGrace::Locked => "locked",
    }
}

fn category_name(c: FeatureCategory) -> &'static str {
    match c {
        FeatureCategory::Instance => "instance",
        FeatureCategory::General => "general",
        FeatureCategory::Core => "core",
    }
}

impl Report {
    /// Summarizes `decision` taken at `now`; `state` is the state after
    /// it, `catalog` names the codes.
    #[must_use]
    pub fn new(
        decision: &Decision<'_>,
        state: &State,
        now: i64,
        catalog: Option<&Catalog>,
    ) -> Self {
        let license = decision.license();
        let verdict = decision.verdict();
        let mode = Mode::of(verdict);
        let schedule = Schedule::of(license);
        let term = license.term();
        let policy = license.policy();
        let days_left = match verdict {
            Verdict::Valid => Some(days_until(now, schedule.effective_end())),
            Verdict::RenewalDue { days_left } => Some(days_left),
            Verdict::Grace { until } => Some(days_until(now, until)),
            Verdict::Expired { .. } | Verdict::NotYetValid => None,
        };
        let binding = license.binding();
        let name = |kind, code| catalog.and_then(|c| c.name(kind, code)).map(String::from);
        let grants = Grants::new(license);
        let (role, server) = match grants.role() {
            Role::Standalone => ("standalone", None),
            Role::Server => ("server", None),
            Role::ClientOf(s) => ("client", Some(s.to_owned())),
        };
        let entitlements = EntitlementSummary {
            granted: decision.grants().is_some(),
            total_users: grants.total_users(),
            profiles: grants
                .profiles()
                .map(|p| Counted {
                    code: p.code,
                    name: name(CodeKind::Profile, p.code),
                    count: p.count,
                })
                .collect(),
            features: grants
                .features()
                .map(|f| FeatureEntry {
                    code: f.code,
                    name: name(CodeKind::Feature, f.code),
                    category: category_name(f.category),
                    quantity: f.quantity,
                    hidden: f.hidden,
                    enabled: grants.feature_enabled(f.code),
                })
                .collect(),
            bases: grants
                .bases()
                .map(|b| BaseEntry {
                    code: b.code,
                    name: name(CodeKind::Base, b.code),
                    count: b.count,
                    addons: b
                        .addons
                        .map(|a| Counted {
                            code: a.code,
                            name: name(CodeKind::Addon, a.code),
                            count: a.count,
                        })
                        .collect(),
                })
                .collect(),
            storage_units: grants.storage_units(),
            storage_gb: grants.storage_gb(),
            services: grants
                .services()
                .map(|s| ServiceEntry {
                    code: s.code,
                    name: name(CodeKind::Service, s.code),
                    start: format_time(s.start),
                    end: format_time(s.end),
                    active: s.active_at(now),
                })
                .collect(),
        };
        let decommissioned = (entitlements.total_users == 0
            && role != "client"
            && policy.grace == 0
            && policy.after_grace == tessera_verifier::claims::AfterGrace::Locked)
            .then(|| {
                let stop = schedule.effective_end();
                let delete = stop.saturating_add(DAYS_FROM_STOP_TO_DELETION * 86_400);
                Decommissioned {
                    stop: format_time(stop),
                    delete: format_time(delete),
                    stopped: now >= stop,
                    deleted: now >= delete,
                }
            });
        let mut notes = Vec::new();
        if decision.matched_components() == binding.threshold && verdict.full_service() {
            notes.push(format!(
                "only {} identity component(s) match, exactly as many as needed: one more hardware change unbinds the license; request a new license after planned changes",
                binding.threshold
            ));
        }
        Self {
            now: format_time(now),
            verdict: verdict.code(),
            mode,
            full_service: mode.full_service(),
            exit_code: mode.exit_code(),
            behaviour: mode.behaviour(),
            days_left,
            grace_until: match verdict {
                Verdict::Grace { until } => Some(format_time(until)),
                _ => None,
            },
            days_since_renewal: decision.days_since_renewal(),
            last_renewal: state.last_renewal().map(format_time),
            next_check: format_time(decision.next_check()),
            license: LicenseSummary {
                serial: license.serial().to_owned(),
                id: hex::encode(license.id()),
                sequence: license.sequence(),
                issuer: license.issuer().to_owned(),
                platform: platform_name(license.platform()),
                customer: license.customer().to_owned(),
                pbx_name: license.pbx_name().to_owned(),
                previous_serial: license.previous_serial().map(String::from),
                issued_at: format_time(license.issued_at()),
                not_before: format_time(license.not_before()),
                lease_end: format_time(license.lease_end()),
                cycle: cycle_name(term.cycle),
                term_start: format_time(term.start),
                term_end: term.end.map(format_time),
                effective_end: format_time(schedule.effective_end()),
                grace_end: format_time(schedule.grace_end()),
                after_grace: after_grace_name(policy.after_grace),
                check_interval: policy.check_interval,
            },
            binding: BindingSummary {
                matched: decision.matched_components(),
                threshold: binding.threshold,
                components: binding.components.len(),
            },
            sharing: SharingSummary { role, server },
            entitlements,
            over_assigned: Vec::new(),
            state_saved: true,
            notes,
            decommissioned,
        }
    }

    /// One or two lines for `check` and `install`.
    #[must_use]
    pub fn summary(&self) -> String {
        let l = &self.license;
        let head = format!("license {} (sequence {})", escaped(&l.serial), l.sequence);
        let mut out = match (&self.decommissioned, self.mode) {
            (Some(d), Mode::EmergencyOnly | Mode::Locked) if d.stopped => format!(
                "stopped on {}; {} ({head})",
                d.stop,
                d.deletion()
            ),
            (Some(d), Mode::Full | Mode::RenewalDue) => format!(
                "decommissioned: all user licenses removed; stops on {}, deleted on {} unless a user license is added back ({head})",
                d.stop, d.delete
            ),
            _ => self.mode_summary(&head),
        };
        if let Some(days) = self.days_since_renewal {
            let _ = write!(
                out,
                "\nlast renewal {days} day(s) ago; next check {}",
                self.next_check
            );
        } else {
            let _ = write!(out, "\nnext check {}", self.next_check);
        }
        for o in &self.over_assigned {
            let _ = write!(out, "\nover-assigned: {}", o.message());
        }
        for note in &self.notes {
            let _ = write!(out, "\nnote: {note}");
        }
        out
    }

    /// The first line of [`Report::summary`] for a PBX in its normal life.
    fn mode_summary(&self, head: &str) -> String {
        let l = &self.license;
        match self.mode {
            Mode::Full => format!(
                "valid: full service; {head} ends {}, {} day(s) left",
                l.effective_end,
                self.days_left.unwrap_or(0)
            ),
            Mode::RenewalDue => format!(
                "renewal due: {} day(s) left until {}; full service, notify the administrator to renew ({head})",
                self.days_left.unwrap_or(0),
                l.effective_end
            ),
            Mode::Grace => format!(
                "grace: the license ended {}; full service for {} more day(s), until {}; renew now ({head})",
                l.effective_end,
                self.days_left.unwrap_or(0),
                self.grace_until.as_deref().unwrap_or("?")
            ),
            Mode::EmergencyOnly | Mode::Locked => format!(
                "expired: {}; grace ended {} ({head})",
                self.behaviour, l.grace_end
            ),
            Mode::NotYetValid => format!(
                "not yet valid: the license starts {}; check the device clock ({head})",
                l.not_before
            ),
        }
    }

    /// The full report for `status`.
    #[must_use]
    pub fn render(&self) -> String {
        let l = &self.license;
        let mut out = String::new();
        let row = |out: &mut String, k: &str, v: &str| {
            let _ = writeln!(out, "{k:<19} {v}");
        };
        match &self.decommissioned {
            Some(d) if d.stopped => row(
                &mut out,
                "verdict:",
                &format!(
                    "{} (stopped on {}; {})",
                    self.verdict,
                    d.stop,
                    d.deletion()
                ),
            ),
            Some(d) => row(
                &mut out,
                "verdict:",
                &format!(
                    "{} (decommissioned: stops on {}; deleted on {} unless a user license is added back)",
                    self.verdict, d.stop, d.delete
                ),
            ),
            None => row(
                &mut out,
                "verdict:",
                &format!("{} ({})", self.verdict, self.behaviour),
            ),
        }
        row(&mut out, "exit code:", &self.exit_code.to_string());
        if let Some(d) = self.days_left {
            row(&mut out, "days left:", &d.to_string());
        }
        if let Some(g) = &self.grace_until {
            row(&mut out, "grace until:", g);
        }
        match (&self.last_renewal, self.days_since_renewal) {
            (Some(t), Some(d)) => row(&mut out, "last renewal:", &format!("{t} ({d} day(s) ago)")),
            _ => row(&mut out, "last renewal:", "never"),
        }
        row(&mut out, "next check:", &self.next_check);
        // Text from the license (and the catalog) is shown escaped: a
        // control or format character in it cannot act on the terminal.
        row(&mut out, "serial:", &escaped(&l.serial).to_string());
        if let Some(p) = &l.previous_serial {
            row(&mut out, "previous serial:", &escaped(p).to_string());
        }
        row(
            &mut out,
            "license id:",
            &format!("{} (sequence {})", l.id, l.sequence),
        );
        row(&mut out, "platform:", l.platform);
        row(&mut out, "customer:", &escaped(&l.customer).to_string());
        row(&mut out, "pbx name:", &escaped(&l.pbx_name).to_string());
        let term_end = l.term_end.as_deref().unwrap_or("none (lifetime)");
        row(
            &mut out,
            "term:",
            &format!("{} from {} to {term_end}", l.cycle, l.term_start),
        );
        row(&mut out, "lease end:", &l.lease_end);
        match &self.decommissioned {
            Some(d) => {
                row(&mut out, "stop:", &format!("{} (no grace, locked)", d.stop));
                let deletion = if d.deleted {
                    format!("{} (irrevocable: it has come)", d.delete)
                } else {
                    format!("{} unless a user license is added back", d.delete)
                };
                row(&mut out, "deletion:", &deletion);
            }
            None => row(
                &mut out,
                "grace end:",
                &format!("{} (then {})", l.grace_end, l.after_grace),
            ),
        }
        row(
            &mut out,
            "binding:",
            &format!(
                "{} of {} components match, {} needed",
                self.binding.matched, self.binding.components, self.binding.threshold
            ),
        );
        let sharing = match &self.sharing.server {
            Some(server) => format!("client of {}", escaped(server)),
            None => self.sharing.role.to_owned(),
        };
        row(&mut out, "sharing:", &sharing);
        let e = &self.entitlements;
        let label = |code: u16, name: &Option<String>| match name {
            Some(n) => format!("{} ({code})", escaped(n)),
            None => format!("code {code}"),
        };
        let granted = if e.granted {
            ""
        } else {
            " [not granted: expired]"
        };
        let _ = writeln!(out, "entitlements:{granted}");
        let _ = writeln!(out, "  users:           {}", e.total_users);
        for p in &e.profiles {
            let _ = writeln!(
                out,
                "  profile          {} x{}",
                label(p.code, &p.name),
                p.count
            );
        }
        for f in &e.features {
            let hidden = if f.hidden { ", hidden" } else { "" };
            let _ = writeln!(
                out,
                "  feature          {} x{} ({}{hidden})",
                label(f.code, &f.name),
                f.quantity,
                f.category
            );
        }
        for b in &e.bases {
            let _ = writeln!(
                out,
                "  base             {} x{}",
                label(b.code, &b.name),
                b.count
            );
            for a in &b.addons {
                let _ = writeln!(
                    out,
                    "    add-on         {} x{}",
                    label(a.code, &a.name),
                    a.count
                );
            }
        }
        let _ = writeln!(
            out,
            "  storage:         {} unit(s), {} GB",
            e.storage_units, e.storage_gb
        );
        for s in &e.services {
            let active = if s.active { "active" } else { "inactive" };
            let _ = writeln!(
                out,
                "  service          {} {} to {} ({active})",
                label(s.code, &s.name),
                s.start,
                s.end
            );
        }
        if !self.over_assigned.is_empty() {
            let _ = writeln!(out, "over-assigned:");
            for o in &self.over_assigned {
                let _ = writeln!(out, "  {}", o.message());
                for a in &o.assignments {
                    let ext = a
                        .extension
                        .as_deref()
                        .map(|e| format!(", extension {}", escaped(e)))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    {} {}{ext} (assigned {})",
                        a.uuid,
                        escaped(&a.user),
                        a.assigned
                    );
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use tessera_verifier::samples::{self, DAY, T0};
    use tessera_verifier::{encode, key_id, verify, KeyEntry};

    use super::*;

    fn report_at(l: &encode::LicenseData, now: i64, catalog: Option<&Catalog>) -> Report {
        let bytes = encode::sign_license(
            l,
            &key_id(&samples::TEST_KEY_1_PUBLIC),
            samples::seed_signer(samples::TEST_KEY_1_SEED),
        )
        .unwrap();
        let ring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0)];
        let mut st = State::new();
        let d = verify(&bytes, &ring, &samples::sample_identity(), now, &mut st).unwrap();
        Report::new(&d, &st, now, catalog)
    }

    #[test]
    fn valid_report_lists_everything() {
        let catalog = Catalog::parse(
            "[[profile]]\ncode = 1\nname = \"PBX-BASIC\"\n[[addon]]\ncode = 4\nname = \"device_ip_phone\"\n",
        )
        .unwrap();
        let r = report_at(&samples::typical(), T0 + DAY, Some(&catalog));
        assert_eq!(r.mode, Mode::Full);
        assert_eq!(r.exit_code, 0);
        assert_eq!(r.days_left, Some(364));
        assert_eq!(r.days_since_renewal, Some(0));
        assert_eq!(r.license.serial, "SW-2026-000123");
        assert_eq!(r.license.previous_serial.as_deref(), Some("HW-7F3A-0042"));
        assert_eq!(r.binding.matched, 4);
        assert_eq!(r.binding.threshold, 3);
        assert_eq!(r.sharing.role, "standalone");
        let e = &r.entitlements;
        assert!(e.granted);
        assert_eq!(e.total_users, 52);
        assert_eq!(e.profiles[0].name.as_deref(), Some("PBX-BASIC"));
        assert_eq!(e.profiles[1].name, None);
        assert_eq!(e.storage_gb, 100);
        assert!(e.features.iter().any(|f| f.hidden && f.enabled));
        let phone = e.bases.iter().find(|b| b.code == 4).unwrap();
        assert!(phone
            .addons
            .iter()
            .any(|a| a.name.as_deref() == Some("device_ip_phone") && a.count == 40));
        assert_eq!(e.services.len(), 2);
        assert!(e.services[0].active && !e.services[1].active);
        let text = r.render();
        assert!(text.contains("PBX-BASIC (1) x20"), "{text}");
        assert!(text.contains("code 2 x15"), "{text}");
        assert!(r.summary().starts_with("valid: full service;"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["mode"], "full");
        assert_eq!(
            json["entitlements"]["bases"][1]["addons"][1]["name"],
            "device_ip_phone"
        );
    }

    #[test]
    fn every_mode_has_its_summary() {
        let end = T0 + 365 * DAY;
        let cases = [
            (
                end - 10 * DAY,
                Mode::RenewalDue,
                Some(10),
                "renewal due: 10 day(s) left",
            ),
            (end + DAY, Mode::Grace, Some(13), "grace: the license ended"),
            (
                end + 15 * DAY,
                Mode::EmergencyOnly,
                None,
                "expired: emergency numbers only",
            ),
        ];
        for (now, mode, days, start) in cases {
            let r = report_at(&samples::typical(), now, None);
            assert_eq!(r.mode, mode);
            assert_eq!(r.days_left, days);
            assert!(r.summary().starts_with(start), "{}", r.summary());
            assert_eq!(r.entitlements.granted, mode.full_service());
        }
        let r = report_at(&samples::typical(), T0 - DAY, None);
        assert_eq!(r.mode, Mode::NotYetValid);
        assert_eq!(r.exit_code, 2);
        let mut locked = samples::lifetime_vm();
        locked.binding = samples::typical().binding;
        locked.previous_serial = Some("HW-7F3A-0042".into());
        locked.lease_end = T0 + DAY;
        let r = report_at(&locked, T0 + 5 * DAY, None);
        assert_eq!(r.mode, Mode::Locked);
        assert_eq!(r.license.term_end, None);
        assert!(r.render().contains("none (lifetime)"));
    }

    #[test]
    fn sharing_client_shows_its_server() {
        let mut l = samples::sharing_client();
        l.serial = "SW-2026-000124".into();
        let r = report_at(&l, T0, None);
        assert_eq!(r.sharing.role, "client");
        assert_eq!(r.sharing.server.as_deref(), Some("SW-2026-000123"));
        assert!(r.render().contains("client of SW-2026-000123"));
        assert_eq!(r.entitlements.total_users, 0);
    }

    #[test]
    fn text_from_the_license_is_shown_escaped() {
        // Licenses signed before the issuer refused such text may carry it.
        let mut r = report_at(&samples::typical(), T0 + DAY, None);
        r.license.customer = "Mallory\u{1b}[2J\u{202e}gpj".into();
        r.license.pbx_name = "PBX\nnote: forged line".into();
        r.license.serial = "SW-1\u{7}".into();
        let text = r.render();
        assert!(
            text.contains("customer:           Mallory\\u{1b}[2J\\u{202e}gpj"),
            "{text}"
        );
        assert!(
            text.contains("pbx name:           PBX\\u{a}note: forged line"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
        assert!(!r.summary().contains('\u{7}'), "{}", r.summary());
        // JSON keeps the value, with control characters escaped by JSON.
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("Mallory\\u001b[2J"), "{json}");
    }

    #[test]
    fn binding_at_threshold_warns() {
        let mut l = samples::typical();
        l.binding.threshold = 4;
        let r = report_at(&l, T0, None);
        assert!(r
            .notes
            .iter()
            .any(|n| n.contains("one more hardware change")));
    }
}
