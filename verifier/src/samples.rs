//! Published sample contents and test keys (feature `alloc`): the source
//! of the vectors in `spec/vectors/`, the README example and tests in
//! other crates. Never use these keys for real licenses: their secret
//! halves are printed in RFC 8032.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::{Signer as _, SigningKey};

use crate::binding::component_digest;
use crate::claims::{
    Addon, AfterGrace, Component, ComponentKind, Cycle, Feature, FeatureCategory, Identity,
    Platform, Policy, Profile, Service, Term,
};
use crate::encode::{
    BaseData, BindingData, CheckpointData, EntitlementsData, LicenseData, RequestData, SharingData,
};

/// Secret seed of test key 1: RFC 8032 §7.1 TEST 1.
pub const TEST_KEY_1_SEED: [u8; 32] = [
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// Public key of test key 1.
pub const TEST_KEY_1_PUBLIC: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];
/// Secret seed of test key 2: RFC 8032 §7.1 TEST 2.
pub const TEST_KEY_2_SEED: [u8; 32] = [
    0x4c, 0xcd, 0x08, 0x9b, 0x28, 0xff, 0x96, 0xda, 0x9d, 0xb6, 0xc3, 0x46, 0xec, 0x11, 0x4e, 0x0f,
    0x5b, 0x8a, 0x31, 0x9f, 0x35, 0xab, 0xa6, 0x24, 0xda, 0x8c, 0xf6, 0xed, 0x4f, 0xb8, 0xa6, 0xfb,
];
/// Public key of test key 2.
pub const TEST_KEY_2_PUBLIC: [u8; 32] = [
    0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
    0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c,
];

/// 2026-01-01T00:00:00Z, the issue time of the samples.
pub const T0: i64 = 1_767_225_600;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// Salt of the sample binding.
pub const SAMPLE_SALT: [u8; 16] = *b"tessera-salt-001";

/// Raw identity of the sample HW appliance: (kind, normalized value).
pub const SAMPLE_DEVICE: [(ComponentKind, &str); 4] = [
    (ComponentKind::HW_SERIAL, "HW-7F3A-0042"),
    (ComponentKind::NIC_MAC, "00163e5a1b2c"),
    (
        ComponentKind::SYSTEM_UUID,
        "4c4c4544-0042-3510-8056-b4c04f4e3232",
    ),
    (ComponentKind::DISK_SERIAL, "S3Z9NB0K123456"),
];

fn sample_components() -> Vec<Component> {
    SAMPLE_DEVICE
        .iter()
        .map(|(kind, value)| Component {
            kind: *kind,
            digest: component_digest(&SAMPLE_SALT, *kind, value.as_bytes()),
            required: *kind == ComponentKind::HW_SERIAL,
        })
        .collect()
}

/// The shipped default policy: daily checks, 14 days of grace, then one
/// emergency call (docs/rules.md: periodic check).
#[must_use]
pub fn policy_14_days_emergency() -> Policy {
    Policy {
        grace: 14 * 86_400,
        after_grace: AfterGrace::EmergencyOnly,
        renewal_window: 30 * 86_400,
        check_interval: 86_400,
        rollback_tolerance: 86_400,
    }
}

/// The other shipped policy: 3-hourly checks, 72 hours of grace, then
/// locked.
#[must_use]
pub fn policy_72_hours_locked() -> Policy {
    Policy {
        grace: 72 * 3_600,
        after_grace: AfterGrace::Locked,
        renewal_window: 86_400,
        check_interval: 3 * 3_600,
        rollback_tolerance: 86_400,
    }
}

/// The smallest valid license: one binding component, nothing licensed.
#[must_use]
pub fn minimal() -> LicenseData {
    LicenseData {
        issuer: "v".into(),
        serial: "S".into(),
        issued_at: T0,
        not_before: T0,
        lease_end: T0 + DAY,
        id: [0; 16],
        platform: Platform::Vm,
        sequence: 0,
        binding: BindingData {
            threshold: 1,
            salt: [0; 16],
            components: vec![Component {
                kind: ComponentKind::MACHINE_ID,
                digest: [0; 16],
                required: false,
            }],
        },
        previous_serial: None,
        term: Term {
            cycle: Cycle::Monthly,
            start: T0,
            end: Some(T0 + 31 * DAY),
        },
        policy: policy_14_days_emergency(),
        entitlements: EntitlementsData::default(),
        services: Vec::new(),
        sharing: SharingData::None,
        customer: String::new(),
        pbx_name: String::new(),
    }
}

/// A typical PBX order on a HW appliance: 6 profiles, 10 features, 2 base
/// licenses with add-ons, storage, 2 services, 4 binding components (3 of
/// 4 must match, the HW serial always).
#[must_use]
pub fn typical() -> LicenseData {
    let term_end = T0 + 365 * DAY;
    let profile = |code, count| Profile { code, count };
    let feature = |code, category, quantity, hidden| Feature {
        code,
        category,
        quantity,
        hidden,
    };
    let addon = |code, count| Addon { code, count };
    LicenseData {
        issuer: "tessera-vendor".into(),
        serial: "SW-2026-000123".into(),
        issued_at: T0,
        not_before: T0,
        lease_end: term_end,
        id: *b"lic-typical-0001",
        platform: Platform::Hw,
        sequence: 1,
        binding: BindingData {
            threshold: 3,
            salt: SAMPLE_SALT,
            components: sample_components(),
        },
        previous_serial: Some("HW-7F3A-0042".into()),
        term: Term {
            cycle: Cycle::Yearly,
            start: T0,
            end: Some(term_end),
        },
        policy: policy_14_days_emergency(),
        entitlements: EntitlementsData {
            profiles: vec![
                profile(1, 20),
                profile(2, 15),
                profile(3, 10),
                profile(4, 5),
                profile(5, 2),
                profile(6, 0),
            ],
            features: vec![
                feature(1, FeatureCategory::Instance, 4, false),
                feature(2, FeatureCategory::Instance, 2, false),
                feature(3, FeatureCategory::Instance, 8, false),
                feature(4, FeatureCategory::General, 52, false),
                feature(5, FeatureCategory::General, 52, false),
                feature(6, FeatureCategory::General, 10, false),
                feature(7, FeatureCategory::Core, 1, false),
                feature(8, FeatureCategory::Core, 1, false),
                feature(9, FeatureCategory::Core, 1, true),
                feature(10, FeatureCategory::General, 300, true),
            ],
            bases: vec![
                BaseData {
                    code: 4,
                    count: 52,
                    addons: vec![addon(1, 52), addon(4, 40), addon(5, 30), addon(6, 10)],
                },
                BaseData {
                    code: 2,
                    count: 3,
                    addons: vec![addon(2, 3)],
                },
            ],
            storage_units: 10,
        },
        services: vec![
            Service {
                code: 1,
                start: T0,
                end: term_end,
            },
            Service {
                code: 2,
                start: T0 + 212 * DAY,
                end: term_end,
            },
        ],
        sharing: SharingData::None,
        customer: "Example Dental Clinic".into(),
        pbx_name: "Main office".into(),
    }
}

/// The largest license the sample generator makes: every collection well
/// filled and every string at its cap, still under the 4 KiB object cap.
#[must_use]
pub fn maximal() -> LicenseData {
    use crate::claims::limits;
    let mut l = typical();
    l.issuer = "i".repeat(limits::SERIAL_LEN);
    l.serial = "s".repeat(limits::SERIAL_LEN);
    l.previous_serial = Some("h".repeat(limits::SERIAL_LEN));
    l.customer = "c".repeat(limits::CUSTOMER_LEN);
    l.pbx_name = "n".repeat(limits::NAME_LEN);
    l.sequence = u32::MAX;
    l.platform = Platform::Cloud;
    l.binding.threshold = 16;
    l.binding.components = (0..16u8)
        .map(|i| Component {
            kind: ComponentKind(i % 8 + 1),
            digest: [i; 16],
            required: i % 2 == 0,
        })
        .collect();
    l.entitlements.profiles = (0..32u16)
        .map(|code| Profile {
            code,
            count: u32::MAX,
        })
        .collect();
    l.entitlements.features = (0..64u16)
        .map(|code| Feature {
            code: code * 1000,
            category: FeatureCategory::General,
            quantity: 100_000,
            hidden: code % 3 == 0,
        })
        .collect();
    l.entitlements.bases = (0..8u16)
        .map(|code| BaseData {
            code,
            count: 1000,
            addons: (0..32u16)
                .map(|a| Addon {
                    code: a,
                    count: 1000,
                })
                .collect(),
        })
        .collect();
    l.entitlements.storage_units = u32::MAX;
    let end = l.term.end.unwrap_or(l.lease_end);
    l.services = (0..16u16)
        .map(|code| Service {
            code,
            start: T0 + i64::from(code) * DAY,
            end,
        })
        .collect();
    l
}

/// A sharing client: no entitlements, only its server's serial.
#[must_use]
pub fn sharing_client() -> LicenseData {
    let mut l = typical();
    l.serial = "SW-2026-000124".into();
    l.entitlements = EntitlementsData::default();
    l.services = Vec::new();
    l.sharing = SharingData::Client("SW-2026-000123".into());
    l
}

/// A lifetime license on a VM with the 72-hour / locked policy.
#[must_use]
pub fn lifetime_vm() -> LicenseData {
    let mut l = typical();
    l.platform = Platform::Vm;
    l.previous_serial = None;
    l.term = Term {
        cycle: Cycle::Lifetime,
        start: T0,
        end: None,
    };
    l.services = Vec::new();
    l.policy = policy_72_hours_locked();
    l
}

/// The request the sample appliance writes on first activation, signed
/// with a device key whose seed is `[7; 32]`.
#[must_use]
pub fn request() -> RequestData {
    RequestData {
        serial: None,
        hw_serial: Some("HW-7F3A-0042".into()),
        created_at: T0 - DAY,
        nonce: *b"nonce-0000000001",
        platform: Platform::Hw,
        salt: SAMPLE_SALT,
        identity: sample_components()
            .into_iter()
            .map(|c| Identity {
                kind: c.kind,
                digest: c.digest,
            })
            .collect(),
        current: None,
        last_renewal: None,
        device_key: SigningKey::from_bytes(&DEVICE_KEY_SEED)
            .verifying_key()
            .to_bytes(),
    }
}

/// A checkpoint of a sample ledger (`spec/FORMAT.md` §10): 42 entries,
/// following the ledger's checkpoint of 40, signed a day after the
/// samples' issue time.
#[must_use]
pub fn checkpoint() -> CheckpointData {
    CheckpointData {
        issuer: "tessera-vendor".into(),
        issued_at: T0 + DAY,
        ledger_id: *b"ledger-sample-01",
        entries: 42,
        head: [0x5a; 32],
        previous: Some(40),
    }
}

/// Seed of the sample device key that signs sample requests.
pub const DEVICE_KEY_SEED: [u8; 32] = [7; 32];

/// A signing function for [`crate::encode::sign_license`] /
/// [`crate::encode::sign_request`] from a raw seed; for samples and tests.
pub fn seed_signer(
    seed: [u8; 32],
) -> impl FnOnce(&[u8]) -> Result<[u8; 64], core::convert::Infallible> {
    move |msg| Ok(SigningKey::from_bytes(&seed).sign(msg).to_bytes())
}

/// A renewal request from the sample appliance after activation.
#[must_use]
pub fn renewal_request() -> RequestData {
    let mut r = request();
    r.serial = Some("SW-2026-000123".into());
    r.hw_serial = None;
    r.created_at = T0 + 340 * DAY;
    r.nonce = *b"nonce-0000000002";
    r.current = Some((*b"lic-typical-0001", 1));
    r.last_renewal = Some(T0);
    r
}

/// Raw identity of the sample HW appliance as its firmware reads it
/// (separators, case and whitespace as the probes give them); each
/// normalizes to the matching [`SAMPLE_DEVICE`] value.
pub const SAMPLE_DEVICE_RAW: [(ComponentKind, &str); 4] = [
    (ComponentKind::HW_SERIAL, " hw-7f3a-0042\n"),
    (ComponentKind::NIC_MAC, "00:16:3E:5A:1B:2C"),
    (
        ComponentKind::SYSTEM_UUID,
        "{4C4C4544-0042-3510-8056-B4C04F4E3232}",
    ),
    (ComponentKind::DISK_SERIAL, "  S3Z9NB0K123456  "),
];

/// The sample appliance's [`crate::binding::DeviceIdentity`] before its
/// first activation: the raw values of [`SAMPLE_DEVICE_RAW`], its HW
/// serial, no SW serial yet.
#[must_use]
pub fn sample_identity() -> crate::binding::DeviceIdentity {
    let mut id = crate::binding::DeviceIdentity::new();
    for (kind, raw) in SAMPLE_DEVICE_RAW {
        if kind == ComponentKind::HW_SERIAL {
            // Samples are fixed, valid values: an error here is impossible
            // and would show as a missing component in every test.
            let _ = id.set_hw_serial(raw);
        } else {
            let _ = id.add(kind, raw);
        }
    }
    id
}
