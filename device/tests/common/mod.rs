//! Fixtures for the CLI and crash tests: a fake machine below a sysroot,
//! the test keyring, and licenses made the way the issuer answers a
//! request (with `tessera_verifier::samples` and the RFC 8032 test key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tessera_verifier::armor;
use tessera_verifier::claims::{AfterGrace, Component, ComponentKind};
use tessera_verifier::encode::{sign_license, LicenseData};
use tessera_verifier::samples::{self, DAY, TEST_KEY_1_PUBLIC, TEST_KEY_1_SEED};
use tessera_verifier::{decode_request, key_id, MAX_OBJECT_LEN};

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = samples::T0;

/// A device: a fake sysroot and a state directory with the keyring.
pub struct Device {
    pub root: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Device {
    /// The sample appliance of `tessera_verifier::samples`.
    pub fn appliance() -> Self {
        let d = Self {
            root: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
        };
        d.file("sys/class/dmi/id/sys_vendor", "Example PBX Systems\n")
            .file("sys/class/dmi/id/product_name", "PBX-4000\n")
            .file("sys/class/dmi/id/product_serial", " hw-7f3a-0042\n")
            .file(
                "sys/class/dmi/id/product_uuid",
                "4C4C4544-0042-3510-8056-B4C04F4E3232\n",
            )
            .file("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
            .file("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2\n")
            .file("sys/block/sda/device/serial", "  S3Z9NB0K123456  \n")
            .file("sys/block/loop0/device/serial", "LOOP\n");
        d.nic("eth0", "pci0000:00/0000:00:19.0", "00:16:3E:5A:1B:2C");
        d.nic("veth0", "virtual", "aa:bb:cc:dd:ee:ff");
        fs::write(d.state.path().join("keyring.toml"), keyring_toml()).unwrap();
        d
    }

    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.root.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    pub fn nic(&self, name: &str, device: &str, mac: &str) {
        let target = self
            .root
            .path()
            .join("sys/devices")
            .join(device)
            .join("net")
            .join(name);
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("address"), format!("{mac}\n")).unwrap();
        let net = self.root.path().join("sys/class/net");
        fs::create_dir_all(&net).unwrap();
        symlink(format!("../../devices/{device}/net/{name}"), net.join(name)).unwrap();
    }

    pub fn state_file(&self, name: &str) -> PathBuf {
        self.state.path().join(name)
    }

    /// The agent command for this device (sysroot and state directory set).
    pub fn cmd(&self) -> assert_cmd::Command {
        self.cmd_at(self.state.path())
    }

    /// The agent command for this device with the state directory `state`.
    pub fn cmd_at(&self, state: &Path) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(agent_bin());
        cmd.env_remove("TESSERA_STATE_DIR")
            .env_remove("TESSERA_AGENT_CONFIG")
            .env_remove("TESSERA_AGENT_FAILPOINT")
            .arg("--state-dir")
            .arg(state)
            .arg("--sysroot")
            .arg(self.root.path());
        cmd
    }

    /// Runs `tessera-agent ARGS --now NOW`, which must exit with `code`.
    pub fn run(&self, args: &[&str], now: i64, code: i32) -> std::process::Output {
        self.cmd()
            .args(args)
            .args(["--now", &at(now)])
            .assert()
            .code(code)
            .get_output()
            .clone()
    }

    /// The appliance activated: license sequence 1 issued and installed
    /// at `T0`.
    pub fn activated() -> Self {
        let d = Self::appliance();
        let license = d.licensed(1, T0, |_| {});
        d.run(&["install", license.to_str().unwrap()], T0, 0);
        d
    }

    /// The same as a plain `std::process::Command`, for spawning.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(agent_bin());
        cmd.env_remove("TESSERA_STATE_DIR")
            .env_remove("TESSERA_AGENT_CONFIG")
            .env_remove("TESSERA_AGENT_FAILPOINT")
            .arg("--state-dir")
            .arg(self.state.path())
            .arg("--sysroot")
            .arg(self.root.path());
        cmd
    }

    /// Runs `request`, answers it like the issuer and returns the armored
    /// license written to a file next to the state directory.
    pub fn licensed(
        &self,
        sequence: u32,
        issued_at: i64,
        tweak: impl FnOnce(&mut LicenseData),
    ) -> PathBuf {
        self.licensed_in(self.state.path(), sequence, issued_at, tweak)
    }

    /// [`Device::licensed`] for the state directory `state`.
    pub fn licensed_in(
        &self,
        state: &Path,
        sequence: u32,
        issued_at: i64,
        tweak: impl FnOnce(&mut LicenseData),
    ) -> PathBuf {
        let out = self
            .cmd_at(state)
            .args(["request", "--now", &format!("@{issued_at}")])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let mut l = answer(&String::from_utf8(out).unwrap(), sequence, issued_at);
        tweak(&mut l);
        let path = self
            .root
            .path()
            .join(format!("license-{sequence}-{issued_at}.txt"));
        fs::write(&path, armor::encode(&sign(&l), armor::LABEL_LICENSE)).unwrap();
        path
    }
}

pub fn agent_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tessera-agent"))
}

/// Keyring TOML trusting test key 1.
pub fn keyring_toml() -> String {
    format!(
        "format = 1\n\n[[key]]\nkid = \"{}\"\nlabel = \"test key 1\"\npublic_key = \"{}\"\nvalid_from = 2025-01-01T00:00:00Z\nretired = false\n",
        hex::encode(key_id(&TEST_KEY_1_PUBLIC)),
        hex::encode(TEST_KEY_1_PUBLIC)
    )
}

pub fn sign(l: &LicenseData) -> Vec<u8> {
    sign_license(
        l,
        &key_id(&TEST_KEY_1_PUBLIC),
        samples::seed_signer(TEST_KEY_1_SEED),
    )
    .unwrap()
}

/// The issuer's answer to an armored request: the typical order on a
/// yearly term from `issued_at`, bound to the request's HW serial
/// (required), MAC, IP address (if configured), UUID and disk serial, 3 of
/// them needed.
pub fn answer(armored_request: &str, sequence: u32, issued_at: i64) -> LicenseData {
    let mut buf = [0u8; MAX_OBJECT_LEN];
    let bytes = armor::decode(armored_request, armor::LABEL_REQUEST, &mut buf).unwrap();
    let r = decode_request(bytes).unwrap();
    let mut l = samples::typical();
    let term_end = issued_at + 365 * DAY;
    l.sequence = sequence;
    l.id = [u8::try_from(sequence % 256).unwrap(); 16];
    l.issued_at = issued_at;
    l.not_before = issued_at;
    l.term.start = issued_at;
    l.term.end = Some(term_end);
    l.lease_end = term_end;
    for s in &mut l.services {
        s.start = issued_at;
        s.end = term_end;
    }
    l.previous_serial = r.hw_serial().map(String::from);
    if let Some(serial) = r.serial() {
        l.serial = serial.to_owned();
    }
    l.binding.salt = r.salt();
    l.binding.threshold = 3;
    l.binding.components = r
        .identity()
        .filter(|i| {
            [
                ComponentKind::HW_SERIAL,
                ComponentKind::NIC_MAC,
                ComponentKind::IP_ADDR,
                ComponentKind::SYSTEM_UUID,
                ComponentKind::DISK_SERIAL,
            ]
            .contains(&i.kind)
        })
        .map(|i| Component {
            kind: i.kind,
            digest: i.digest,
            required: i.kind == ComponentKind::HW_SERIAL,
        })
        .collect();
    l
}

/// The 72-hour, then locked policy, on a short lease.
pub fn locked_after(l: &mut LicenseData, lease_days: i64) {
    l.policy = samples::policy_72_hours_locked();
    l.policy.after_grace = AfterGrace::Locked;
    l.lease_end = l.issued_at + lease_days * DAY;
}

/// `@SECONDS` for `--now`.
pub fn at(t: i64) -> String {
    format!("@{t}")
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}
