//! Test fixtures shared by the unit tests: fake machines, a keyring and
//! licenses made the way the issuer makes them.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tessera_verifier::claims::{Component, ComponentKind};
use tessera_verifier::encode::{sign_license, LicenseData};
use tessera_verifier::samples::{self, TEST_KEY_1_PUBLIC, TEST_KEY_1_SEED};
use tessera_verifier::{decode_request, key_id};

use crate::probe::paths;

/// A fake machine: files below a temporary sysroot.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    /// A network interface the way sysfs shows it: a symlink to its device.
    pub fn nic(&self, name: &str, device: &str, mac: &str) -> &Self {
        let target = self
            .root()
            .join("sys/devices")
            .join(device)
            .join("net")
            .join(name);
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("address"), format!("{mac}\n")).unwrap();
        fs::create_dir_all(self.root().join(paths::NET)).unwrap();
        let rel_target = format!("../../devices/{device}/net/{name}");
        symlink(rel_target, self.root().join(paths::NET).join(name)).unwrap();
        self
    }

    pub fn disk(&self, name: &str, serial: &str) -> &Self {
        self.file(
            &format!("sys/block/{name}/device/serial"),
            format!("{serial}\n"),
        )
    }

    /// The sample appliance of `tessera_verifier::samples` on bare metal.
    pub fn appliance() -> Self {
        let t = Self::new();
        t.file(paths::SYS_VENDOR, "Example PBX Systems\n")
            .file(paths::PRODUCT_NAME, "PBX-4000\n")
            .file(paths::PRODUCT_SERIAL, " hw-7f3a-0042\n")
            .file(paths::BOARD_SERIAL, "BRD-1\n")
            .file(
                paths::PRODUCT_UUID,
                "4C4C4544-0042-3510-8056-B4C04F4E3232\n",
            )
            .file(paths::MACHINE_ID, "0123456789abcdef0123456789abcdef\n")
            .file(paths::CPUINFO, "processor\t: 0\nflags\t\t: fpu sse2\n\n")
            .nic("eth0", "pci0000:00/0000:00:19.0", "00:16:3E:5A:1B:2C")
            .disk("sda", "  S3Z9NB0K123456  ");
        t
    }

    /// A fresh VM: no usable hardware serial, a hypervisor.
    pub fn vm() -> Self {
        let t = Self::new();
        t.file(paths::SYS_VENDOR, "QEMU\n")
            .file(paths::PRODUCT_NAME, "Standard PC (Q35 + ICH9, 2009)\n")
            .file(
                paths::PRODUCT_UUID,
                "564d5c3a-0b9e-7f21-a3c4-1d2e3f405162\n",
            )
            .file(paths::MACHINE_ID, "fedcba9876543210fedcba9876543210\n")
            .file(paths::CPUINFO, "flags\t\t: fpu hypervisor\n")
            .nic("ens3", "pci0000:00/0000:00:03.0", "52:54:00:12:34:56");
        t
    }
}

/// Keyring TOML trusting test key 1 from 2025 on.
pub fn keyring_toml() -> String {
    format!(
        "format = 1\n\n[[key]]\nkid = \"{}\"\nlabel = \"test key 1\"\npublic_key = \"{}\"\nvalid_from = 2025-01-01T00:00:00Z\nretired = false\n",
        hex::encode(key_id(&TEST_KEY_1_PUBLIC)),
        hex::encode(TEST_KEY_1_PUBLIC)
    )
}

/// Writes [`keyring_toml`] into `dir` and returns its path.
pub fn write_keyring(dir: &Path) -> PathBuf {
    let path = dir.join("keyring.toml");
    fs::write(&path, keyring_toml()).unwrap();
    path
}

/// Signs a license with test key 1.
pub fn sign(l: &LicenseData) -> Vec<u8> {
    sign_license(
        l,
        &key_id(&TEST_KEY_1_PUBLIC),
        samples::seed_signer(TEST_KEY_1_SEED),
    )
    .unwrap()
}

/// What the issuer answers to a request: the typical order, bound to the
/// request's HW serial (required), MAC, UUID and disk serial (3 of 4, or
/// 2 of the VM's components), with the given sequence and issue time.
pub fn answer(request: &[u8], sequence: u32, issued_at: i64) -> LicenseData {
    let r = decode_request(request).unwrap();
    let mut l = samples::typical();
    l.sequence = sequence;
    l.id = [u8::try_from(sequence % 256).unwrap(); 16];
    l.issued_at = issued_at;
    l.not_before = issued_at;
    // A yearly term from the issue time, the lease to its end (air-gapped).
    let term_end = issued_at + 365 * samples::DAY;
    l.term.start = issued_at;
    l.term.end = Some(term_end);
    l.lease_end = term_end;
    for service in &mut l.services {
        service.start = issued_at;
        service.end = term_end;
    }
    l.previous_serial = r.hw_serial().map(String::from);
    if let Some(serial) = r.serial() {
        l.serial = serial.to_owned();
    }
    l.platform = r.platform();
    let kinds = [
        ComponentKind::HW_SERIAL,
        ComponentKind::NIC_MAC,
        ComponentKind::SYSTEM_UUID,
        ComponentKind::DISK_SERIAL,
        ComponentKind::MACHINE_ID,
    ];
    l.binding.salt = r.salt();
    l.binding.components = r
        .identity()
        .filter(|i| kinds.contains(&i.kind))
        .map(|i| Component {
            kind: i.kind,
            digest: i.digest,
            required: i.kind == ComponentKind::HW_SERIAL,
        })
        .collect();
    l.binding.threshold =
        if r.hw_serial().is_some() || l.platform == tessera_verifier::claims::Platform::Hw {
            3
        } else {
            2
        };
    l
}
