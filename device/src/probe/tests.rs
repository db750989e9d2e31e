use std::os::unix::fs::symlink;

use tessera_verifier::samples;

use super::*;
use crate::testing::Tree;

fn probe(t: &Tree, settings: &ProbeSettings) -> Probe {
    Probe::run(t.root(), settings)
}

fn values(p: &Probe) -> Vec<(&'static str, &str)> {
    p.components
        .iter()
        .map(|f| (kind_name(f.kind), f.value.as_str()))
        .collect()
}

fn reason_of<'p>(p: &'p Probe, source: &str) -> Option<&'p SkipReason> {
    p.skipped
        .iter()
        .find(|s| s.source == source)
        .map(|s| &s.reason)
}

#[test]
fn sample_appliance_is_probed_like_the_samples_say() {
    let t = Tree::appliance();
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(p.platform, Platform::Hw);
    assert_eq!(p.platform_source, PlatformSource::Detected);
    assert!(!p.virtualization.is_virtual);
    assert_eq!(p.hw_serial.as_deref(), Some("HW-7F3A-0042"));
    assert_eq!(
        values(&p),
        [
            ("hw_serial", "HW-7F3A-0042"),
            ("system_uuid", "4c4c4544-0042-3510-8056-b4c04f4e3232"),
            ("machine_id", "0123456789abcdef0123456789abcdef"),
            ("nic_mac", "00163e5a1b2c"),
            ("disk_serial", "S3Z9NB0K123456"),
        ]
    );
    // Every sample value is found, normalized exactly as the samples are.
    for (kind, value) in samples::SAMPLE_DEVICE {
        assert!(
            p.components
                .iter()
                .any(|f| f.kind == kind && f.value == value),
            "{value}"
        );
    }
    assert_eq!(
        reason_of(&p, "config: ip"),
        Some(&SkipReason::NotConfigured)
    );
    assert_eq!(
        reason_of(&p, "/proc/cpuinfo: Serial"),
        Some(&SkipReason::Missing)
    );
    assert_eq!(p.hardware_components(), 5);
    assert!(p.require(5).is_ok());
    assert_eq!(
        p.require(6),
        Err(ProbeError::TooFew {
            found: 5,
            needed: 6
        })
    );
}

#[test]
fn identity_binds_the_sample_license() {
    let t = Tree::appliance();
    let p = probe(&t, &ProbeSettings::default());
    let (id, skipped) = p.identity(None).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(id.hw_serial(), Some("HW-7F3A-0042"));
    assert_eq!(id.sw_serial(), None);
    let l = samples::typical();
    let bytes = tessera_verifier::encode::sign_license(
        &l,
        &tessera_verifier::key_id(&samples::TEST_KEY_1_PUBLIC),
        samples::seed_signer(samples::TEST_KEY_1_SEED),
    )
    .unwrap();
    let ring = [tessera_verifier::KeyEntry::new(
        samples::TEST_KEY_1_PUBLIC,
        0,
    )];
    let license = tessera_verifier::decode_license(&bytes, &ring).unwrap();
    assert_eq!(id.check_binding(&license.binding()), Ok(4));
    assert_eq!(id.check_serial(&license), Ok(()));

    let (id, _) = p.identity(Some("SW-2026-000123")).unwrap();
    assert_eq!(id.sw_serial(), Some("SW-2026-000123"));
    assert!(matches!(
        p.identity(Some("bad\u{1}serial")),
        Err(ProbeError::SwSerial { .. })
    ));
}

#[test]
fn configured_values_come_first_and_win() {
    let t = Tree::appliance();
    let p = probe(
        &t,
        &ProbeSettings {
            ip: Some("192.0.2.10".into()),
            hw_serial: Some("HW-PRINTED-1".into()),
            platform: None,
            device_key: Some([9; 32]),
        },
    );
    let v = values(&p);
    assert_eq!(v[0], ("hw_serial", "HW-PRINTED-1"));
    assert_eq!(v[1], ("device_key", hex::encode([9u8; 32]).as_str()));
    assert_eq!(v[2], ("ip_addr", "192.0.2.10"));
    // The device key is not a hardware component.
    assert_eq!(p.hardware_components(), p.components.len() - 1);
    let (id, _) = p.identity(None).unwrap();
    assert_eq!(id.hw_serial(), Some("HW-PRINTED-1"));
}

#[test]
fn board_serial_when_the_product_serial_is_a_placeholder() {
    let t = Tree::appliance();
    t.file(paths::PRODUCT_SERIAL, "To Be Filled By O.E.M.\n");
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(p.hw_serial.as_deref(), Some("BRD-1"));
    assert_eq!(
        reason_of(&p, "/sys/class/dmi/id/product_serial"),
        Some(&SkipReason::Placeholder)
    );
}

#[test]
fn virtual_machines_are_detected_and_bind_no_hw_serial() {
    for (vendor, product, flags) in [
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)", ""),
        ("VMware, Inc.", "VMware Virtual Platform", ""),
        ("innotek GmbH", "VirtualBox", ""),
        ("Microsoft Corporation", "Virtual Machine", ""),
        ("Xen", "HVM domU", ""),
        ("Red Hat", "KVM", ""),
        ("Dell Inc.", "PowerEdge R640", "fpu hypervisor sse"),
    ] {
        let t = Tree::appliance();
        t.file(paths::SYS_VENDOR, vendor)
            .file(paths::PRODUCT_NAME, product)
            .file(paths::CPUINFO, format!("flags\t: {flags}\n"));
        let p = probe(&t, &ProbeSettings::default());
        assert!(p.virtualization.is_virtual, "{vendor} / {product}");
        assert_eq!(p.platform, Platform::Vm);
        assert_eq!(p.hw_serial, None);
        assert_eq!(
            reason_of(&p, "/sys/class/dmi/id/product_serial"),
            Some(&SkipReason::NotAppliance)
        );
        assert!(p
            .components
            .iter()
            .all(|f| f.kind != ComponentKind::HW_SERIAL));
    }
    // Bare metal from a vendor whose name merely contains "Microsoft".
    let t = Tree::appliance();
    t.file(paths::SYS_VENDOR, "Microsoft Corporation")
        .file(paths::PRODUCT_NAME, "Surface Pro");
    assert!(
        !probe(&t, &ProbeSettings::default())
            .virtualization
            .is_virtual
    );
}

#[test]
fn configured_platform_overrides_detection() {
    let t = Tree::appliance();
    t.file(paths::SYS_VENDOR, "QEMU");
    let p = probe(
        &t,
        &ProbeSettings {
            platform: Some(Platform::Hw),
            ..ProbeSettings::default()
        },
    );
    assert_eq!(p.platform, Platform::Hw);
    assert_eq!(p.platform_source, PlatformSource::Config);
    assert!(p.virtualization.is_virtual);
    assert_eq!(p.hw_serial.as_deref(), Some("HW-7F3A-0042"));
}

#[test]
fn interfaces_loopback_virtual_bridge_zero_and_random_are_skipped() {
    let t = Tree::appliance();
    t.nic("lo", "virtual/net", "00:00:00:00:00:00")
        .nic("veth1", "virtual", "aa:bb:cc:dd:ee:01")
        .nic("eth1", "pci0000:00/0000:00:1c.0", "00:00:00:00:00:00")
        .nic("eth2", "pci0000:00/0000:00:1d.0", "02:11:22:33:44:55")
        .nic("eth3", "pci0000:00/0000:00:1e.0", "00:16:3e:5a:1b:2c")
        .nic("eth4", "pci0000:00/0000:00:1f.0", "garbage");
    t.file(
        "sys/devices/pci0000:00/0000:00:1d.0/net/eth2/addr_assign_type",
        "1\n",
    );
    // A bridge: sysfs puts it under devices/virtual too; make this one a
    // plain directory to see the bridge/ rule on its own.
    t.file("sys/class/net/br0/address", "52:54:00:00:00:01\n")
        .file("sys/class/net/br0/bridge/bridge_id", "8000.525400000001\n");
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(
        reason_of(&p, "/sys/class/net/lo"),
        Some(&SkipReason::Loopback)
    );
    assert_eq!(
        reason_of(&p, "/sys/class/net/veth1"),
        Some(&SkipReason::Virtual)
    );
    assert_eq!(
        reason_of(&p, "/sys/class/net/br0"),
        Some(&SkipReason::Bridge)
    );
    assert_eq!(
        reason_of(&p, "/sys/class/net/eth1/address"),
        Some(&SkipReason::ZeroMac)
    );
    assert_eq!(
        reason_of(&p, "/sys/class/net/eth2/address"),
        Some(&SkipReason::RandomMac)
    );
    assert_eq!(
        reason_of(&p, "/sys/class/net/eth3/address"),
        Some(&SkipReason::Duplicate("/sys/class/net/eth0/address".into()))
    );
    assert!(matches!(
        reason_of(&p, "/sys/class/net/eth4/address"),
        Some(SkipReason::Invalid(_))
    ));
    let macs: Vec<_> = p
        .components
        .iter()
        .filter(|f| f.kind == ComponentKind::NIC_MAC)
        .collect();
    assert_eq!(macs.len(), 1);
}

#[test]
fn disks_loop_ram_dm_excluded_and_vpd_page_read() {
    let t = Tree::appliance();
    t.disk("loop0", "X1")
        .disk("ram0", "X2")
        .disk("dm-0", "X3")
        .disk("zram0", "X4")
        .disk("nvme0n1", "NVME-SERIAL-9")
        .file("sys/block/vda/serial", "virtio-disk-1\n")
        .disk("sdc", "0000000000")
        .file(
            "sys/block/sdb/device/vpd_pg80",
            b"\x00\x80\x00\x0c  WD-ABC12\x00\x00",
        )
        .file(
            "sys/block/sde/device/vpd_pg80",
            b"\x00\x80\x00\x06WD\x01XYZ",
        )
        .file("sys/block/sdd/device/model", "no serial here");
    let p = probe(&t, &ProbeSettings::default());
    for d in ["loop0", "ram0", "dm-0", "zram0"] {
        assert_eq!(
            reason_of(&p, &format!("/sys/block/{d}")),
            Some(&SkipReason::Excluded),
            "{d}"
        );
    }
    let disks: Vec<_> = p
        .components
        .iter()
        .filter(|f| f.kind == ComponentKind::DISK_SERIAL)
        .map(|f| (f.source.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        disks,
        [
            ("/sys/block/nvme0n1/device/serial", "NVME-SERIAL-9"),
            ("/sys/block/sda/device/serial", "S3Z9NB0K123456"),
            ("/sys/block/sdb/device/vpd_pg80", "WD-ABC12"),
            ("/sys/block/vda/serial", "VIRTIO-DISK-1"),
        ]
    );
    // A control character inside the serial: refused by the verifier's
    // rules and reported, not hashed.
    assert!(matches!(
        reason_of(&p, "/sys/block/sde/device/vpd_pg80"),
        Some(SkipReason::Invalid(_))
    ));
    assert_eq!(
        reason_of(&p, "/sys/block/sdc/device/serial"),
        Some(&SkipReason::Placeholder)
    );
    assert_eq!(
        reason_of(&p, "/sys/block/sdd/device/serial"),
        Some(&SkipReason::Missing)
    );
    t.file("sys/block/sdb/device/vpd_pg80", b"\x00\x80\x00\x08  WD-ABC");
    let p = probe(&t, &ProbeSettings::default());
    assert!(values(&p).contains(&("disk_serial", "WD-ABC")));
    t.file(
        "sys/block/sdb/device/vpd_pg80",
        b"\x00\x80\x00\x04\x00\x00\x00\x00",
    );
    let p = probe(&t, &ProbeSettings::default());
    assert!(matches!(
        reason_of(&p, "/sys/block/sdb/device/vpd_pg80"),
        Some(SkipReason::Invalid(_))
    ));
}

#[test]
fn cpu_serial_from_cpuinfo() {
    let t = Tree::appliance();
    t.file(
        paths::CPUINFO,
        "processor\t: 0\nHardware\t: BCM2835\nSerial\t\t: 10000000ab12cd34\nModel\t: Raspberry Pi\n",
    );
    let p = probe(&t, &ProbeSettings::default());
    assert!(values(&p).contains(&("cpu_id", "10000000AB12CD34")));
    t.file(paths::CPUINFO, "Serial\t\t: 0000000000000000\n");
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(
        reason_of(&p, "/proc/cpuinfo: Serial"),
        Some(&SkipReason::Placeholder)
    );
}

#[test]
fn empty_tree_finds_nothing_and_says_why() {
    let t = Tree::new();
    let p = probe(&t, &ProbeSettings::default());
    assert!(p.components.is_empty());
    assert_eq!(p.platform, Platform::Hw);
    for source in [
        "/sys/class/dmi/id/product_serial",
        "/sys/class/dmi/id/product_uuid",
        "/etc/machine-id",
        "/sys/class/net",
        "/sys/block",
    ] {
        assert_eq!(
            reason_of(&p, source),
            Some(&SkipReason::Missing),
            "{source}"
        );
    }
    assert!(matches!(
        p.require(1),
        Err(ProbeError::TooFew { found: 0, .. })
    ));
    let (id, _) = p.identity(None).unwrap();
    assert!(id.is_empty());
}

#[test]
fn strange_files_are_skipped_not_fatal() {
    let t = Tree::appliance();
    // A directory where a file should be (never opened, like a FIFO), an
    // oversized value, non-UTF-8, an unset machine id, then a placeholder
    // UUID.
    fs::remove_file(t.root().join(paths::PRODUCT_UUID)).unwrap();
    fs::create_dir_all(t.root().join(paths::PRODUCT_UUID)).unwrap();
    t.file(paths::MACHINE_ID, "uninitialized\n")
        .file(paths::PRODUCT_SERIAL, vec![b'A'; 5000])
        .file(paths::BOARD_SERIAL, [0xff, 0xfe, b'\n']);
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(
        reason_of(&p, "/sys/class/dmi/id/product_uuid"),
        Some(&SkipReason::NotAFile)
    );
    assert!(matches!(
        reason_of(&p, "/etc/machine-id"),
        Some(SkipReason::Invalid(_))
    ));
    assert_eq!(
        reason_of(&p, "/sys/class/dmi/id/product_serial"),
        Some(&SkipReason::TooLarge)
    );
    assert!(matches!(
        reason_of(&p, "/sys/class/dmi/id/board_serial"),
        Some(SkipReason::Invalid(_))
    ));
    fs::remove_dir(t.root().join(paths::PRODUCT_UUID)).unwrap();
    t.file(paths::PRODUCT_UUID, "03000200-0400-0500-0006-000700080009");
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(
        reason_of(&p, "/sys/class/dmi/id/product_uuid"),
        Some(&SkipReason::Placeholder)
    );
}

#[test]
fn symlink_loops_and_dangling_links_are_skipped() {
    let t = Tree::appliance();
    fs::remove_file(t.root().join(paths::PRODUCT_UUID)).unwrap();
    symlink("product_uuid", t.root().join(paths::PRODUCT_UUID)).unwrap();
    symlink(
        "../../devices/nowhere",
        t.root().join(paths::NET).join("eth9"),
    )
    .unwrap();
    let p = probe(&t, &ProbeSettings::default());
    assert!(matches!(
        reason_of(&p, "/sys/class/dmi/id/product_uuid"),
        Some(SkipReason::Unreadable(_))
    ));
    assert_eq!(
        reason_of(&p, "/sys/class/net/eth9/address"),
        Some(&SkipReason::Missing)
    );
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_reported_unless_root() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = Tree::appliance();
    let uuid = t.root().join(paths::PRODUCT_UUID);
    fs::set_permissions(&uuid, fs::Permissions::from_mode(0o000)).unwrap();
    let p = probe(&t, &ProbeSettings::default());
    // Root reads it anyway; anyone else is told why it is missing.
    let readable = File::open(&uuid).is_ok();
    assert_eq!(
        reason_of(&p, "/sys/class/dmi/id/product_uuid").is_some(),
        !readable
    );
}

#[test]
fn too_many_interfaces_are_capped() {
    let t = Tree::new();
    for i in 0..(MAX_DIR_ENTRIES + 3) {
        t.file(
            &format!("sys/class/net/eth{i:03}/address"),
            format!("00:16:3e:00:{:02x}:{:02x}\n", i / 256, i % 256),
        );
    }
    let p = probe(&t, &ProbeSettings::default());
    assert_eq!(p.components.len(), MAX_DIR_ENTRIES);
    assert_eq!(reason_of(&p, "/sys/class/net"), Some(&SkipReason::TooMany));
    // The identity keeps the first 16; the rest are reported.
    let (id, skipped) = p.identity(None).unwrap();
    assert_eq!(id.len(), 16);
    assert_eq!(skipped.len(), MAX_DIR_ENTRIES - 16);
    assert!(skipped.iter().all(|s| s.reason == SkipReason::IdentityFull));
}

#[test]
fn render_and_json_name_every_component_and_reason() {
    let t = Tree::appliance();
    let p = probe(&t, &ProbeSettings::default());
    let text = p.render();
    assert!(text.contains("platform: hw (detected)"));
    assert!(text.contains("nic_mac"));
    assert!(text.contains("set `ip` in agent.toml"));
    let json: serde_json::Value = serde_json::to_value(&p).unwrap();
    assert_eq!(json["platform"], "hw");
    assert_eq!(json["components"][0]["kind"], "hw_serial");
    assert_eq!(json["skipped"][0]["reason"], "not_configured");
}

#[test]
fn placeholders() {
    for p in [
        "To Be Filled By O.E.M.",
        " default string\n",
        "0000000000",
        "........",
        "N/A",
        "123456789",
        "System Serial Number",
    ] {
        assert!(is_placeholder(p.as_bytes()), "{p}");
    }
    for real in ["HW-7F3A-0042", "S3Z9NB0K123456", "", "1A"] {
        assert!(!is_placeholder(real.as_bytes()), "{real}");
    }
}

#[test]
fn vpd_pages() {
    assert_eq!(parse_vpd_serial(b""), None);
    assert_eq!(parse_vpd_serial(b"\x00\x83\x00\x01X"), None);
    assert_eq!(parse_vpd_serial(b"\x00\x80\x00\x05abc"), None);
    assert_eq!(parse_vpd_serial(b"\x00\x80\x00\x00"), Some(&b""[..]));
    assert_eq!(
        parse_vpd_serial(b"\x00\x80\x00\x03A\x00\x00"),
        Some(&b"A"[..])
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No cpuinfo text makes the parser panic, and a serial it finds
        /// is trimmed and non-empty.
        #[test]
        fn cpuinfo_never_panics(text in "\\PC{0,300}") {
            let info = parse_cpuinfo(&text);
            if let Some(s) = info.serial {
                prop_assert!(!s.is_empty());
                prop_assert_eq!(s.trim(), s.as_str());
            }
        }

        /// Arbitrary bytes as a VPD page: never panics, never reads past
        /// the page.
        #[test]
        fn vpd_never_panics(page in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(serial) = parse_vpd_serial(&page) {
                prop_assert!(serial.len() + 4 <= page.len());
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Arbitrary bytes in every file the probe reads: it never panics,
        /// and what it keeps the verifier accepts. (Each case builds a
        /// tree on disk, hence fewer cases.)
        #[test]
        fn arbitrary_file_contents_never_panic(
            contents in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 9),
        ) {
            let t = Tree::new();
            let files = [
                paths::PRODUCT_UUID,
                paths::PRODUCT_SERIAL,
                paths::BOARD_SERIAL,
                paths::SYS_VENDOR,
                paths::PRODUCT_NAME,
                paths::MACHINE_ID,
                paths::CPUINFO,
                "sys/class/net/eth0/address",
                "sys/block/sda/device/vpd_pg80",
            ];
            for (rel, bytes) in files.iter().zip(&contents) {
                t.file(rel, bytes);
            }
            let p = probe(&t, &ProbeSettings::default());
            let (id, skipped) = p.identity(None).unwrap();
            prop_assert!(skipped.is_empty());
            prop_assert_eq!(id.len(), p.components.len());
        }
    }
}
