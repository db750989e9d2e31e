//! The one call firmware makes (`spec/RUNTIME.md` §1, §8): license bytes,
//! keyring, device identity, clock and persistent state in; a
//! [`Decision`] (or the reason for refusal) out.

use crate::binding::DeviceIdentity;
use crate::entitlement::Grants;
use crate::state::State;
use crate::time::{Schedule, Verdict};
use crate::{decode_license, Error, License, TrustedKey};

/// What firmware may do with a license that was accepted: the verdict,
/// when to check again, days since the last renewal and the entitlements.
///
/// Borrows the license bytes; holds the decoded view, never a copy of them.
#[derive(Clone, Debug)]
pub struct Decision<'a> {
    license: License<'a>,
    verdict: Verdict,
    next_check: i64,
    days_since_renewal: Option<u32>,
    matched: u8,
}

impl<'a> Decision<'a> {
    /// The verdict at the time of the check.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// When to check again (Unix seconds): the check interval, shortened
    /// so no verdict change is missed.
    #[must_use]
    pub fn next_check(&self) -> i64 {
        self.next_check
    }

    /// Whole days since the last successful renewal, as reported to the
    /// vendor for systems that fail to renew; `None` while the device has
    /// never had a license in force (a not-yet-valid first license).
    #[must_use]
    pub fn days_since_renewal(&self) -> Option<u32> {
        self.days_since_renewal
    }

    /// How many binding components matched this device (≥ the threshold).
    /// A device that only just binds can warn before the next hardware
    /// change makes it stop.
    #[must_use]
    pub fn matched_components(&self) -> u8 {
        self.matched
    }

    /// The accepted, signature-checked license.
    #[must_use]
    pub fn license(&self) -> &License<'a> {
        &self.license
    }

    /// Whether the PBX may give full service.
    #[must_use]
    pub fn full_service(&self) -> bool {
        self.verdict.full_service()
    }

    /// The entitlements, only while the verdict allows service (valid,
    /// renewal due, grace). Once expired, or before the license is in
    /// force, nothing is granted by it; [`Grants::new`] on
    /// [`Decision::license`] still shows what it lists.
    #[must_use]
    pub fn grants(&self) -> Option<Grants<'a>> {
        self.full_service().then(|| Grants::new(&self.license))
    }
}

/// Verifies a license for this device at `now` and updates `state`
/// (`spec/RUNTIME.md` §1).
///
/// Checks, in this order: decoding and signature ([`decode_license`]),
/// serial (device and state), binding, clock rollback, anti-rollback
/// (sequence), then the time verdict. `state` is changed only when `Ok`
/// is returned; persist it then if it differs from what was loaded.
///
/// Degraded states (renewal due, grace, expired, not yet valid) are
/// verdicts in the `Ok` decision, not errors.
///
/// # Errors
/// The [`decode_license`] errors, then [`Error::WrongSerial`],
/// [`Error::WrongDevice`], [`Error::ClockRollback`],
/// [`Error::Superseded`], and [`Error::StateCorrupt`] when a recovery
/// state is shown a license older than the recovery.
pub fn verify<'a, K: TrustedKey>(
    bytes: &'a [u8],
    keyring: &[K],
    identity: &DeviceIdentity,
    now: i64,
    state: &mut State,
) -> Result<Decision<'a>, Error> {
    let license = decode_license(bytes, keyring)?;
    decide(license, identity, now, state)
}

/// The steps of [`verify`] after decoding, out of line: on a small MCU
/// their locals are not on the stack during the signature check.
#[inline(never)]
fn decide<'a>(
    license: License<'a>,
    identity: &DeviceIdentity,
    now: i64,
    state: &mut State,
) -> Result<Decision<'a>, Error> {
    identity.check_serial(&license)?;
    state.check_serial(license.serial())?;
    let matched = identity.check_binding(&license.binding)?;
    state.check_clock(now, license.policy().rollback_tolerance)?;
    let schedule = Schedule::of(&license);
    let verdict = schedule.verdict(now);
    let next = state.accept(&license, now, verdict)?;
    *state = next;
    Ok(Decision {
        verdict,
        next_check: schedule.next_check(now),
        days_since_renewal: next.days_since_renewal(now),
        matched,
        license,
    })
}

// Builds licenses with the encoder, hence `alloc`.
#[cfg(test)]
#[cfg(feature = "alloc")]
mod tests {
    extern crate std;

    use alloc::string::ToString;
    use alloc::vec::Vec;

    use super::*;
    use crate::claims::{AfterGrace, Component, ComponentKind, Cycle, Platform, Term};
    use crate::encode::{sign_license, LicenseData};
    use crate::samples::{self, seed_signer, DAY, T0, TEST_KEY_1_PUBLIC, TEST_KEY_1_SEED};
    use crate::time::HOUR;
    use crate::KeyEntry;
    use crate::{key_id, Malformed};

    const SW: &str = "SW-2026-000123";
    const YEAR_END: i64 = T0 + 365 * DAY;

    fn keyring() -> [KeyEntry; 1] {
        [KeyEntry::new(TEST_KEY_1_PUBLIC, T0 - 365 * DAY)]
    }

    fn sign(l: &LicenseData) -> Vec<u8> {
        sign_license(l, &key_id(&TEST_KEY_1_PUBLIC), seed_signer(TEST_KEY_1_SEED)).unwrap()
    }

    /// The sample appliance after its first activation: it knows its SW
    /// serial.
    fn activated() -> DeviceIdentity {
        let mut id = samples::sample_identity();
        id.set_sw_serial(SW).unwrap();
        id
    }

    /// Verifies and returns the verdict, or the error; the state is updated
    /// as `verify` does.
    fn check(
        l: &LicenseData,
        id: &DeviceIdentity,
        now: i64,
        st: &mut State,
    ) -> Result<Verdict, Error> {
        let bytes = sign(l);
        verify(&bytes, &keyring(), id, now, st).map(|d| d.verdict())
    }

    /// `typical` renewed: next sequence, new id, lease `days` from `at`.
    fn renewal(seq: u32, at: i64, lease_days: i64) -> LicenseData {
        let mut l = samples::typical();
        l.sequence = seq;
        l.id = [seq.to_be_bytes()[3]; 16];
        l.issued_at = at;
        l.not_before = at;
        l.lease_end = (at + lease_days * DAY).min(YEAR_END);
        l
    }

    /// A VM license bound to CPU id, NIC MAC, IP and VM UUID, 2 of 4.
    fn vm_license(id: &DeviceIdentity) -> LicenseData {
        let mut l = samples::typical();
        l.platform = Platform::Vm;
        l.previous_serial = None;
        l.binding.threshold = 2;
        l.binding.components = id
            .digests(&samples::SAMPLE_SALT)
            .map(|i| Component {
                kind: i.kind,
                digest: i.digest,
                required: false,
            })
            .collect();
        l
    }

    fn vm_identity(cpu: &str, mac: &str, ip: &str, uuid: &str) -> DeviceIdentity {
        let mut id = DeviceIdentity::new();
        id.add(ComponentKind::CPU_ID, cpu).unwrap();
        id.add(ComponentKind::NIC_MAC, mac).unwrap();
        id.add(ComponentKind::IP_ADDR, ip).unwrap();
        id.add(ComponentKind::SYSTEM_UUID, uuid).unwrap();
        id
    }

    const VM_UUID: &str = "564d5c3a-0b9e-7f21-a3c4-1d2e3f405162";
    fn the_vm() -> DeviceIdentity {
        vm_identity(
            "GenuineIntel-000906EA",
            "52:54:00:12:34:56",
            "192.0.2.10",
            VM_UUID,
        )
    }

    // ---- Activation and serials -------------------------------------

    #[test]
    fn first_activation_converts_hw_serial_to_sw_serial() {
        // No SW serial yet: the license's previous serial is the HW serial.
        let id = samples::sample_identity();
        assert_eq!(id.sw_serial(), None);
        let mut st = State::new();
        let bytes = sign(&samples::typical());
        let d = verify(&bytes, &keyring(), &id, T0 + HOUR, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::Valid);
        assert_eq!(d.license().serial(), SW);
        assert_eq!(d.days_since_renewal(), Some(0));
        assert_eq!(d.matched_components(), 4);
        // The state now belongs to the SW serial; afterwards only the SW
        // serial identifies the PBX.
        assert_eq!(st.serial_digest(), Some(crate::state::serial_digest(SW)));
        assert_eq!(st.sequence(), Some(1));
        assert_eq!(
            check(&samples::typical(), &activated(), T0 + DAY, &mut st),
            Ok(Verdict::Valid)
        );
    }

    #[test]
    fn first_activation_for_another_hw_serial_refused() {
        let mut l = samples::typical();
        l.previous_serial = Some("HW-0000-9999".into());
        let mut st = State::new();
        assert_eq!(
            check(&l, &samples::sample_identity(), T0, &mut st),
            Err(Error::WrongSerial)
        );
        l.previous_serial = None;
        assert_eq!(
            check(&l, &samples::sample_identity(), T0, &mut st),
            Err(Error::WrongSerial)
        );
        assert_eq!(st, State::new());
    }

    #[test]
    fn license_for_another_sw_serial_refused() {
        let mut id = samples::sample_identity();
        id.set_sw_serial("SW-2026-999999").unwrap();
        let mut st = State::new();
        assert_eq!(
            check(&samples::typical(), &id, T0, &mut st),
            Err(Error::WrongSerial)
        );
    }

    #[test]
    fn fresh_vm_relies_on_binding_alone() {
        let id = the_vm();
        assert!(id.sw_serial().is_none() && id.hw_serial().is_none());
        let mut st = State::new();
        assert_eq!(
            check(&vm_license(&id), &id, T0, &mut st),
            Ok(Verdict::Valid)
        );
        let other = vm_identity(
            "AuthenticAMD-00A20F10",
            "52:54:00:ab:cd:ef",
            "198.51.100.7",
            "11111111-2222-3333-4444-555555555555",
        );
        let mut st = State::new();
        assert_eq!(
            check(&vm_license(&id), &other, T0, &mut st),
            Err(Error::WrongDevice {
                matched: 0,
                needed: 2
            })
        );
    }

    #[test]
    fn state_belongs_to_one_serial() {
        // A device without a configured SW serial cannot switch serials by
        // accepting another PBX's license bound to the same hardware.
        let id = the_vm();
        let mut st = State::new();
        assert_eq!(
            check(&vm_license(&id), &id, T0, &mut st),
            Ok(Verdict::Valid)
        );
        let mut other = vm_license(&id);
        other.serial = "SW-2026-000777".into();
        other.sequence = 9;
        assert_eq!(
            check(&other, &id, T0 + DAY, &mut st),
            Err(Error::WrongSerial)
        );
    }

    // ---- Binding -------------------------------------------------------

    #[test]
    fn nic_replaced_still_binds() {
        let mut id = DeviceIdentity::new();
        id.set_sw_serial(SW).unwrap();
        for (kind, raw) in samples::SAMPLE_DEVICE_RAW {
            let raw = if kind == ComponentKind::NIC_MAC {
                "00:16:3e:ff:ff:01"
            } else {
                raw
            };
            id.add(kind, raw).unwrap();
        }
        id.set_hw_serial("HW-7F3A-0042").unwrap();
        let mut st = State::new();
        let bytes = sign(&samples::typical());
        let d = verify(&bytes, &keyring(), &id, T0, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::Valid);
        assert_eq!(d.matched_components(), 3);
    }

    #[test]
    fn dhcp_address_renewed_still_binds() {
        let id = the_vm();
        let renewed = vm_identity(
            "GenuineIntel-000906EA",
            "52:54:00:12:34:56",
            "192.0.2.77",
            VM_UUID,
        );
        let mut st = State::new();
        assert_eq!(
            check(&vm_license(&id), &renewed, T0, &mut st),
            Ok(Verdict::Valid)
        );
    }

    #[test]
    fn hypervisor_upgrade_changing_one_identifier_still_binds() {
        let id = the_vm();
        let upgraded = vm_identity(
            "GenuineIntel-000906EA",
            "52:54:00:12:34:56",
            "192.0.2.10",
            "99999999-0b9e-7f21-a3c4-1d2e3f405162",
        );
        let mut st = State::new();
        assert_eq!(
            check(&vm_license(&id), &upgraded, T0, &mut st),
            Ok(Verdict::Valid)
        );
    }

    #[test]
    fn copied_to_other_machine_refused() {
        // The other box even claims the same SW serial and HW serial text
        // is unknown to it: only 0 of the 4 components match.
        let mut other = DeviceIdentity::new();
        other.set_sw_serial(SW).unwrap();
        other.set_hw_serial("HW-1111-2222").unwrap();
        other
            .add(ComponentKind::NIC_MAC, "00:16:3e:00:00:01")
            .unwrap();
        other.add(ComponentKind::DISK_SERIAL, "WD-XYZ").unwrap();
        let mut st = State::new();
        let err = check(&samples::typical(), &other, T0, &mut st).unwrap_err();
        assert_eq!(
            err,
            Error::WrongDevice {
                matched: 0,
                needed: 3
            }
        );
        // The message gives counts, never the values that differ.
        let msg = err.to_string();
        assert!(msg.contains("0 identity component(s) matched, 3 needed"));
        assert!(!msg.contains("HW-") && !msg.contains("00163e"));
        assert_eq!(st, State::new());
    }

    #[test]
    fn required_component_missing_refused() {
        // 3 of 4 match (enough for k = 3) but the required HW serial is
        // another: needed = max(k, matched + 1) = 4.
        let mut id = DeviceIdentity::new();
        id.set_sw_serial(SW).unwrap();
        for (kind, raw) in samples::SAMPLE_DEVICE_RAW {
            if kind != ComponentKind::HW_SERIAL {
                id.add(kind, raw).unwrap();
            }
        }
        id.add(ComponentKind::HW_SERIAL, "HW-7F3A-0043").unwrap();
        let mut st = State::new();
        assert_eq!(
            check(&samples::typical(), &id, T0, &mut st),
            Err(Error::WrongDevice {
                matched: 3,
                needed: 4
            })
        );
    }

    #[test]
    fn vendor_binding_styles_and_ip_change_needs_rebinding() {
        // One vendor binds to CPU + NIC + IP, all required.
        let id = the_vm();
        let mut cpu_nic_ip = vm_license(&id);
        cpu_nic_ip.binding.components.retain(|c| {
            [
                ComponentKind::CPU_ID,
                ComponentKind::NIC_MAC,
                ComponentKind::IP_ADDR,
            ]
            .contains(&c.kind)
        });
        cpu_nic_ip.binding.threshold = 3;
        for c in &mut cpu_nic_ip.binding.components {
            c.required = true;
        }
        let mut st = State::new();
        assert_eq!(check(&cpu_nic_ip, &id, T0, &mut st), Ok(Verdict::Valid));
        // Changing the bound IP address is an administrative act: the
        // license must be re-bound.
        let moved = vm_identity(
            "GenuineIntel-000906EA",
            "52:54:00:12:34:56",
            "192.0.2.99",
            VM_UUID,
        );
        assert_eq!(
            check(&cpu_nic_ip, &moved, T0 + DAY, &mut st),
            Err(Error::WrongDevice {
                matched: 2,
                needed: 3
            })
        );
        // Another vendor binds by the HW serial alone.
        let mut hw_only = samples::typical();
        hw_only
            .binding
            .components
            .retain(|c| c.kind == ComponentKind::HW_SERIAL);
        hw_only.binding.threshold = 1;
        let mut bare = DeviceIdentity::new();
        bare.set_hw_serial("HW-7F3A-0042").unwrap();
        assert_eq!(
            check(&hw_only, &bare, T0, &mut State::new()),
            Ok(Verdict::Valid)
        );
    }

    #[test]
    fn verify_keeps_a_small_footprint() {
        // The decision holds a borrowed view, never the license bytes; the
        // state is the 64-byte record's in-memory form.
        let decision = core::mem::size_of::<Decision<'_>>();
        let identity = core::mem::size_of::<DeviceIdentity>();
        std::println!(
            "Decision {decision} B, DeviceIdentity {identity} B, State {} B",
            core::mem::size_of::<State>()
        );
        assert!(decision <= 1024, "Decision is {decision} bytes");
        assert!(identity <= 1280, "DeviceIdentity is {identity} bytes");
        assert!(core::mem::size_of::<State>() <= 64);
    }

    // ---- Time and grace ------------------------------------------------

    #[test]
    fn grace_14_days_then_emergency_only() {
        let l = samples::typical();
        let mut st = State::new();
        let id = activated();
        let until = YEAR_END + 14 * DAY;
        let table = [
            (T0, Verdict::Valid),
            (YEAR_END - 10 * DAY, Verdict::RenewalDue { days_left: 10 }),
            (YEAR_END, Verdict::Grace { until }),
            (until - 1, Verdict::Grace { until }),
            (
                until,
                Verdict::Expired {
                    mode: AfterGrace::EmergencyOnly,
                },
            ),
        ];
        for (now, want) in table {
            assert_eq!(check(&l, &id, now, &mut st), Ok(want));
        }
        let bytes = sign(&l);
        let d = verify(&bytes, &keyring(), &id, until, &mut st).unwrap();
        assert!(!d.full_service());
        assert!(d.grants().is_none());
        assert_eq!(d.days_since_renewal(), Some(379));
    }

    #[test]
    fn grace_72_hours_then_locked() {
        // Online VM on 3-hour leases with 3-hourly checks.
        let mut l = samples::lifetime_vm();
        l.lease_end = T0 + 3 * HOUR;
        let mut id = the_vm();
        l.binding = vm_license(&id).binding;
        id.set_sw_serial(SW).unwrap();
        let mut st = State::new();
        let lease_end = T0 + 3 * HOUR;
        let bytes = sign(&l);
        let d = verify(&bytes, &keyring(), &id, T0, &mut st).unwrap();
        assert_eq!(d.next_check(), T0 + 3 * HOUR);
        let until = lease_end + 72 * HOUR;
        assert_eq!(
            check(&l, &id, lease_end + HOUR, &mut st),
            Ok(Verdict::Grace { until })
        );
        assert_eq!(
            check(&l, &id, until, &mut st),
            Ok(Verdict::Expired {
                mode: AfterGrace::Locked
            })
        );
    }

    #[test]
    fn cloud_has_no_offline_grace() {
        let mut l = samples::typical();
        l.platform = Platform::Cloud;
        l.lease_end = T0 + DAY;
        let mut st = State::new();
        assert_eq!(
            check(&l, &activated(), T0 + DAY, &mut st),
            Ok(Verdict::Expired {
                mode: AfterGrace::EmergencyOnly
            })
        );
    }

    #[test]
    fn renewal_due_inside_the_window() {
        let mut st = State::new();
        assert_eq!(
            check(
                &samples::typical(),
                &activated(),
                YEAR_END - 30 * DAY,
                &mut st
            ),
            Ok(Verdict::RenewalDue { days_left: 30 })
        );
    }

    #[test]
    fn not_yet_valid_is_not_recorded() {
        let id = activated();
        let mut st = State::new();
        assert_eq!(
            check(&samples::typical(), &id, T0, &mut st),
            Ok(Verdict::Valid)
        );
        // A renewal that starts next month arrives early.
        let future = renewal(2, T0 + 30 * DAY, 400);
        let before = st;
        let bytes = sign(&future);
        let d = verify(&bytes, &keyring(), &id, T0 + DAY, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::NotYetValid);
        assert!(d.grants().is_none());
        assert_eq!(d.next_check(), T0 + 2 * DAY);
        // Only the clock moved: the license in force is not superseded.
        assert_eq!(st.sequence(), before.sequence());
        assert_eq!(st.last_seen(), Some(T0 + DAY));
        assert_eq!(
            check(&samples::typical(), &id, T0 + DAY, &mut st),
            Ok(Verdict::Valid)
        );
        // Once in force it replaces the old one.
        assert_eq!(
            check(&future, &id, T0 + 30 * DAY, &mut st),
            Ok(Verdict::Valid)
        );
        assert_eq!(st.sequence(), Some(2));
    }

    #[test]
    fn renewal_file_restores_full_service() {
        // Air-gapped box: lease of 30 days, then grace, then emergency only.
        let id = activated();
        let mut st = State::new();
        let first = renewal(1, T0, 30);
        assert_eq!(
            check(&first, &id, T0, &mut st),
            Ok(Verdict::RenewalDue { days_left: 30 })
        );
        let late = T0 + 50 * DAY;
        assert_eq!(
            check(&first, &id, late, &mut st),
            Ok(Verdict::Expired {
                mode: AfterGrace::EmergencyOnly
            })
        );
        // The partner brings a renewal file: full operation at once.
        let bytes = sign(&renewal(2, late - DAY, 60));
        let d = verify(&bytes, &keyring(), &id, late, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::Valid);
        assert!(d.full_service());
        assert_eq!(d.days_since_renewal(), Some(0));
        assert_eq!(st.last_renewal(), Some(late));
        assert_eq!(st.sequence(), Some(2));
    }

    #[test]
    fn days_since_last_renewal_is_reported() {
        let id = activated();
        let mut st = State::new();
        let l = renewal(1, T0, 1);
        check(&l, &id, T0, &mut st).unwrap();
        let bytes = sign(&l);
        for days in [0, 1, 5, 20] {
            let d = verify(&bytes, &keyring(), &id, T0 + days * DAY + HOUR, &mut st).unwrap();
            assert_eq!(d.days_since_renewal(), Some(u32::try_from(days).unwrap()));
        }
    }

    #[test]
    fn lifetime_license_renews_leases_without_term_end() {
        let mut l = samples::lifetime_vm();
        let mut id = the_vm();
        l.binding = vm_license(&id).binding;
        id.set_sw_serial(SW).unwrap();
        l.term = Term {
            cycle: Cycle::Lifetime,
            start: T0,
            end: None,
        };
        l.lease_end = T0 + 10 * 365 * DAY;
        let mut st = State::new();
        let bytes = sign(&l);
        let d = verify(&bytes, &keyring(), &id, T0 + 5 * 365 * DAY, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::Valid);
        assert_eq!(d.license().term().end, None);
    }

    // ---- Anti-rollback and clock -----------------------------------------

    #[test]
    fn replayed_older_license_superseded() {
        let id = activated();
        let mut st = State::new();
        check(&renewal(1, T0, 30), &id, T0, &mut st).unwrap();
        check(&renewal(2, T0 + 20 * DAY, 30), &id, T0 + 20 * DAY, &mut st).unwrap();
        let after = st;
        assert_eq!(
            check(&renewal(1, T0, 30), &id, T0 + 21 * DAY, &mut st),
            Err(Error::Superseded { seq: 2 })
        );
        assert_eq!(st, after);
    }

    #[test]
    fn voided_license_with_same_sequence_superseded() {
        let id = activated();
        let mut st = State::new();
        check(&renewal(3, T0, 30), &id, T0, &mut st).unwrap();
        let mut other = renewal(3, T0, 30);
        other.id = *b"another-id-00003";
        assert_eq!(
            check(&other, &id, T0 + DAY, &mut st),
            Err(Error::Superseded { seq: 3 })
        );
    }

    #[test]
    fn reinstalling_the_license_in_force_is_accepted() {
        let id = activated();
        let mut st = State::new();
        let l = renewal(1, T0, 30);
        check(&l, &id, T0, &mut st).unwrap();
        assert_eq!(
            check(&l, &id, T0 + DAY, &mut st),
            Ok(Verdict::RenewalDue { days_left: 29 })
        );
        // A re-check is not a renewal.
        assert_eq!(st.last_renewal(), Some(T0));
        assert_eq!(st.last_seen(), Some(T0 + DAY));
    }

    #[test]
    fn clock_set_back_refused() {
        let id = activated();
        let mut st = State::new();
        let l = samples::typical();
        check(&l, &id, T0 + 100 * DAY, &mut st).unwrap();
        let before = st;
        // Back by more than the 24 h tolerance: refused, state untouched.
        assert_eq!(
            check(&l, &id, T0 + 99 * DAY - 1, &mut st),
            Err(Error::ClockRollback)
        );
        assert_eq!(st, before);
        // Within tolerance (NTP step, time zone fix): accepted, and last
        // seen does not move back.
        assert_eq!(check(&l, &id, T0 + 99 * DAY, &mut st), Ok(Verdict::Valid));
        assert_eq!(st.last_seen(), Some(T0 + 100 * DAY));
    }

    #[test]
    fn clock_set_back_cannot_revive_an_expired_license() {
        let id = activated();
        let mut st = State::new();
        let l = renewal(1, T0, 30);
        let expired_at = T0 + 45 * DAY;
        assert!(matches!(
            check(&l, &id, expired_at, &mut st),
            Ok(Verdict::Expired { .. })
        ));
        assert_eq!(check(&l, &id, T0 + DAY, &mut st), Err(Error::ClockRollback));
    }

    #[test]
    fn corrupted_state_is_reported_not_reset() {
        let id = activated();
        let mut st = State::new();
        check(&renewal(2, T0, 30), &id, T0, &mut st).unwrap();
        let mut bytes = st.to_bytes();
        bytes[5] ^= 1;
        assert_eq!(State::from_bytes(&bytes), Err(Error::StateCorrupt));
        // The operator's recovery does not accept the file the device had
        // before, let alone an older one ...
        let mut rec = State::recovery(T0 + 2 * DAY);
        assert_eq!(
            check(&renewal(2, T0, 30), &id, T0 + 2 * DAY, &mut rec),
            Err(Error::StateCorrupt)
        );
        assert_eq!(
            check(&renewal(1, T0, 30), &id, T0 + 2 * DAY, &mut rec),
            Err(Error::StateCorrupt)
        );
        // ... nor a clock set back before the recovery ...
        assert_eq!(
            check(&renewal(3, T0 + 2 * DAY, 30), &id, T0, &mut rec),
            Err(Error::ClockRollback)
        );
        assert!(rec.in_recovery());
        // ... only a fresh license from the vendor.
        assert_eq!(
            check(&renewal(3, T0 + 2 * DAY, 30), &id, T0 + 2 * DAY, &mut rec),
            Ok(Verdict::RenewalDue { days_left: 30 })
        );
        assert!(!rec.in_recovery());
        assert_eq!(rec.sequence(), Some(3));
    }

    // ---- RMA, migration, sharing ----------------------------------------

    #[test]
    fn rma_replacement_takes_over_the_serial_and_old_box_stops() {
        let old_box = activated();
        let mut old_state = State::new();
        let old = renewal(4, T0, 30);
        check(&old, &old_box, T0, &mut old_state).unwrap();
        // Replacement appliance: new identity, same SW serial, next sequence.
        let mut new_box = DeviceIdentity::new();
        new_box.set_hw_serial("HW-8A11-0007").unwrap();
        new_box
            .add(ComponentKind::NIC_MAC, "00:16:3e:77:88:99")
            .unwrap();
        new_box
            .add(ComponentKind::DISK_SERIAL, "S3Z9NB0K999999")
            .unwrap();
        let mut replacement = renewal(5, T0 + 10 * DAY, 30);
        replacement.previous_serial = Some("HW-8A11-0007".into());
        replacement.binding.components = new_box
            .digests(&samples::SAMPLE_SALT)
            .map(|i| Component {
                kind: i.kind,
                digest: i.digest,
                required: i.kind == ComponentKind::HW_SERIAL,
            })
            .collect();
        let mut new_state = State::new();
        assert!(check(&replacement, &new_box, T0 + 10 * DAY, &mut new_state)
            .unwrap()
            .full_service());
        // The replacement is useless on the old box ...
        assert!(matches!(
            check(&replacement, &old_box, T0 + 10 * DAY, &mut old_state),
            Err(Error::WrongDevice { .. })
        ));
        // ... which is never renewed again and stops at lease end + grace.
        assert!(matches!(
            check(&old, &old_box, T0 + 44 * DAY, &mut old_state),
            Ok(Verdict::Expired { .. })
        ));
    }

    #[test]
    fn hw_to_vm_migration_keeps_the_serial() {
        let vm = {
            let mut id = the_vm();
            id.set_sw_serial(SW).unwrap();
            id
        };
        let mut migrated = vm_license(&the_vm());
        migrated.sequence = 7;
        let mut st = State::new();
        let bytes = sign(&migrated);
        let d = verify(&bytes, &keyring(), &vm, T0 + DAY, &mut st).unwrap();
        assert_eq!(d.verdict(), Verdict::Valid);
        assert_eq!(d.grants().unwrap().profile_count(1), 20);
    }

    #[test]
    fn sharing_client_decision_has_no_entitlements() {
        let mut id = samples::sample_identity();
        id.set_sw_serial("SW-2026-000124").unwrap();
        let mut st = State::new();
        let bytes = sign(&samples::sharing_client());
        let d = verify(&bytes, &keyring(), &id, T0, &mut st).unwrap();
        let g = d.grants().unwrap();
        assert_eq!(g.role(), crate::entitlement::Role::ClientOf(SW));
        assert!(g.is_empty());
    }

    // ---- Errors leave the state alone -----------------------------------

    #[test]
    fn decode_errors_pass_through_and_leave_state_alone() {
        let id = activated();
        let mut st = State::new();
        check(&samples::typical(), &id, T0, &mut st).unwrap();
        let before = st;
        let good = sign(&samples::typical());
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 1] ^= 1;
        assert_eq!(
            verify(&flipped, &keyring(), &id, T0, &mut st).unwrap_err(),
            Error::BadSignature
        );
        assert_eq!(
            verify(&good[..n - 1], &keyring(), &id, T0, &mut st).unwrap_err(),
            Error::Malformed(Malformed::Truncated)
        );
        assert_eq!(
            verify::<KeyEntry>(&good, &[], &id, T0, &mut st).unwrap_err(),
            Error::UnknownKey
        );
        let mut retired = keyring();
        retired[0].retired = true;
        assert_eq!(
            verify(&good, &retired, &id, T0, &mut st).unwrap_err(),
            Error::RetiredKey
        );
        assert_eq!(st, before);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            /// Through `verify`, with one license and a clock that only
            /// moves forward, the verdict never goes back.
            #[test]
            fn verdicts_never_go_back_without_a_new_license(
                lease_days in 1i64..60,
                steps in proptest::collection::vec(0i64..5 * DAY, 1..30),
            ) {
                let id = activated();
                let bytes = sign(&renewal(1, T0, lease_days));
                let mut st = State::new();
                let mut now = T0;
                let mut rank = 0;
                for step in steps {
                    now += step;
                    let d = verify(&bytes, &keyring(), &id, now, &mut st).unwrap();
                    prop_assert!(d.verdict().rank() >= rank);
                    rank = d.verdict().rank();
                }
            }

            /// Whatever clocks a device reports and whichever of three
            /// licenses it is shown, last-seen never decreases and the
            /// highest sequence never drops.
            #[test]
            fn last_seen_never_decreases(
                steps in proptest::collection::vec((-3i64 * DAY..20 * DAY, 0usize..3), 1..25)
            ) {
                let id = activated();
                let licenses: Vec<Vec<u8>> = (1..=3u32)
                    .map(|s| sign(&renewal(s, T0 + i64::from(s) * 10 * DAY, 40)))
                    .collect();
                let mut st = State::new();
                let mut now = T0;
                let mut seen = None;
                let mut seq = None;
                for (delta, which) in steps {
                    now += delta;
                    let _ = verify(&licenses[which], &keyring(), &id, now, &mut st);
                    prop_assert!(st.last_seen() >= seen);
                    prop_assert!(st.sequence() >= seq);
                    seen = st.last_seen();
                    seq = st.sequence();
                }
            }
        }
    }
}
