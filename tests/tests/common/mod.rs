//! The harness of the end-to-end scenarios: a **vendor** folder where the
//! real `tessera` binary keeps its key, keyring and ledger, and **sites**
//! (fake machines) where the real `tessera-agent` probes a fake sysroot and
//! keeps its state. The two only exchange files: a request is carried from
//! a site to the vendor, a license or keyring back ([`carry`]). Time is
//! simulated with the hidden `--now` of both binaries.
//!
//! The binaries are built once per test binary with
//! `cargo build -p tessera-issuer -p tessera-device -p tessera-server --bins` into the same
//! target folder and profile as the test itself, or taken from
//! `TESSERA_E2E_BIN_DIR` when set (CI that built them already).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use core::cell::Cell;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use tessera_signer::{EncryptionParams, Passphrase};

/// Passphrase of the vendor's test keys (cheap encryption parameters).
pub const PASSPHRASE: &str = "e2e only, never a real key";

/// The binaries under test.
pub struct Bins {
    /// `tessera`, the vendor CLI.
    pub tessera: PathBuf,
    /// `tessera-agent`, the device agent.
    pub agent: PathBuf,
    /// `tessera-server`, the online license service.
    pub server: PathBuf,
}

/// The binaries, built on first use.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(build_bins)
}

fn build_bins() -> Bins {
    if let Some(dir) = std::env::var_os("TESSERA_E2E_BIN_DIR") {
        let dir = PathBuf::from(dir);
        return Bins {
            tessera: dir.join("tessera"),
            agent: dir.join("tessera-agent"),
            server: dir.join("tessera-server"),
        };
    }
    // This test runs as <target>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "tessera-issuer",
            "-p",
            "tessera-device",
            "-p",
            "tessera-server",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    if profile != "debug" {
        cmd.args(["--profile", profile]);
    }
    let status = cmd.status().expect("run cargo to build the binaries");
    assert!(
        status.success(),
        "cargo build -p tessera-issuer -p tessera-device -p tessera-server --bins failed"
    );
    Bins {
        tessera: profile_dir.join("tessera"),
        agent: profile_dir.join("tessera-agent"),
        server: profile_dir.join("tessera-server"),
    }
}

/// What a process did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub what: String,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn of(cmd: &mut Command, what: String) -> Self {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        Self {
            what,
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (expected {code})\n--- stdout\n{}--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// Asserts that standard output or error contains `text`.
    #[track_caller]
    pub fn says(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "`{}` does not say {text:?}\n--- stdout\n{}--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: standard output is not JSON ({e})\n{}\n--- stderr\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// Copies `file` into the folder `to` under the same name: what a partner
/// does with a USB stick or a mail. Returns the new path.
pub fn carry(file: &Path, to: &Path) -> PathBuf {
    let dest = to.join(file.file_name().unwrap());
    fs::copy(file, &dest).unwrap_or_else(|e| panic!("carry {}: {e}", file.display()));
    dest
}

/// The vendor: signing keys, keyring, ledger and orders in one folder.
pub struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    /// A vendor with one signing key, active in the keyring from
    /// 2019-01-01 (every scenario runs after that), and its ledger.
    pub fn new() -> Self {
        let v = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        v.new_key("signing.pem");
        v.tessera(&[
            "keyring",
            "add",
            "--keyring",
            "keyring.toml",
            "--public",
            "signing.pem.pub",
            "--label",
            "e2e key 1",
            "--valid-from",
            "2019-01-01",
            "--activate",
        ])
        .ok();
        v.tessera(&["ledger", "init"]).ok();
        v
    }

    /// The vendor's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the vendor's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the vendor's folder.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, contents).unwrap();
        p
    }

    /// Generates an encrypted signing key `name` (cheap test parameters)
    /// and its public key `name.pub`; returns the kid.
    pub fn new_key(&self, name: &str) -> String {
        let pass = Passphrase::new(PASSPHRASE).unwrap();
        let info = tessera_signer::generate_to_file_with(
            &self.path(name),
            &pass,
            EncryptionParams::insecure_for_tests(),
        )
        .unwrap();
        tessera_signer::write_public_key_file(&self.path(&format!("{name}.pub")), &info).unwrap();
        info.kid_hex()
    }

    /// Runs `tessera` in the vendor's folder with its ledger, key, keyring
    /// and operator.
    pub fn tessera(&self, args: &[&str]) -> Run {
        self.tessera_env(&[], args)
    }

    /// [`Vendor::tessera`] with more environment variables (a PKCS#11
    /// token's configuration, a PIN).
    pub fn tessera_env(&self, env: &[(&str, &OsStr)], args: &[&str]) -> Run {
        let mut cmd = Command::new(&bins().tessera);
        cmd.current_dir(self.dir())
            .env_remove("TESSERA_NOW")
            .env_remove("TESSERA_CATALOG")
            .env_remove("TESSERA_CONFIG")
            .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
            .env("TESSERA_LEDGER", "ledger.db")
            .env("TESSERA_KEY", "signing.pem")
            .env("TESSERA_KEYRING", "keyring.toml")
            .env("TESSERA_PASSPHRASE", PASSPHRASE)
            .env("TESSERA_OPERATOR", "ops")
            .env_remove("TESSERA_PKCS11_PIN")
            .env_remove("TESSERA_PKCS11_MODULE")
            .envs(env.iter().copied())
            .args(args);
        Run::of(&mut cmd, format!("tessera {}", args.join(" ")))
    }

    /// Runs `tessera ... --now NOW`.
    pub fn at(&self, now: &str, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--now", now]);
        self.tessera(&all)
    }

    /// Runs `tessera ... --now NOW --rehearsal-copy` for a command that
    /// changes the keyring: on the keyring the command names with
    /// `--keyring`, with no keyring configured. A rehearsal time changes
    /// only a keyring said to be a copy, never a configured one
    /// (docs/operations.md "Rehearsals"); the scenarios' keyring is theirs.
    pub fn rehearse_keyring(&self, now: &str, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--now", now, "--rehearsal-copy"]);
        self.tessera_env(&[("TESSERA_KEYRING", OsStr::new(""))], &all)
    }

    /// Carries a site's request here, runs `tessera ARGS --request R -o OUT
    /// --json --now NOW` and returns the run and the license file (in the
    /// vendor's folder).
    pub fn answer(&self, now: &str, args: &[&str], request: &Path, out: &str) -> (Run, PathBuf) {
        let req = carry(request, self.dir());
        let req = req.file_name().unwrap().to_str().unwrap().to_owned();
        let mut all = args.to_vec();
        all.extend(["--request", &req, "-o", out, "--json"]);
        (self.at(now, &all), self.path(out))
    }

    /// The catalog the vendor uses by default, with text replacements (to
    /// make a catalog with other platform defaults); written to `name`.
    pub fn catalog_with(&self, name: &str, changes: &[(&str, &str)]) -> PathBuf {
        let mut text = self.tessera(&["catalog", "show"]).ok().stdout;
        for (from, to) in changes {
            assert!(text.contains(from), "catalog has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        self.write(name, &text)
    }

    /// `tessera pbx add` of a PBX of `platform` and `cycle` for
    /// `customer` at `now`, otherwise as `OrderSpec::default()` says:
    /// returns the SW serial the registry allocated (VM and Cloud PBXs
    /// activate with it).
    pub fn add_pbx(&self, now: &str, platform: &str, cycle: &str, customer: &str) -> String {
        self.add_pbx_as(
            now,
            &OrderSpec {
                platform,
                cycle,
                customer,
                ..OrderSpec::default()
            },
        )
    }

    /// `tessera pbx add` of the PBX `order` is for (a registered PBX's
    /// first license is for its registered order): returns its serial.
    pub fn add_pbx_as(&self, now: &str, order: &OrderSpec<'_>) -> String {
        let mut args = vec![
            "pbx",
            "add",
            "--customer",
            order.customer,
            "--name",
            order.pbx_name,
            "--model",
            "M-1",
            "--platform",
            order.platform,
            "--cycle",
            order.cycle,
            "--json",
        ];
        let profiles: Vec<String> = order
            .profiles
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        for p in &profiles {
            args.extend(["--profile", p.as_str()]);
        }
        let storage = order.storage_units.to_string();
        if order.storage_units > 0 {
            args.extend(["--storage", storage.as_str()]);
        }
        let out = self.at(now, &args).ok().json();
        out["serial"].as_str().unwrap().to_owned()
    }

    /// `tessera ledger show SERIAL --json`.
    pub fn ledger_show(&self, serial: &str) -> Value {
        self.tessera(&["ledger", "show", serial, "--json"])
            .ok()
            .json()
    }
}

/// An order for one PBX (issuer/README.md, "Orders").
pub struct OrderSpec<'a> {
    /// `customer`.
    pub customer: &'a str,
    /// `pbx_name`.
    pub pbx_name: &'a str,
    /// `platform`.
    pub platform: &'a str,
    /// `cycle`.
    pub cycle: &'a str,
    /// `term_start`.
    pub term_start: &'a str,
    /// `air_gapped`.
    pub air_gapped: bool,
    /// `storage_units`.
    pub storage_units: u32,
    /// `sharing`.
    pub sharing: &'a str,
    /// `[profiles]`.
    pub profiles: &'a [(&'a str, u32)],
    /// Extra TOML appended (features, bases, services, devices).
    pub extra: &'a str,
}

impl Default for OrderSpec<'_> {
    fn default() -> Self {
        Self {
            customer: "Example Dental Clinic",
            pbx_name: "Main office",
            platform: "hw",
            cycle: "yearly",
            term_start: "2026-01-01",
            air_gapped: false,
            storage_units: 0,
            sharing: "none",
            profiles: &[("PBX-BASIC", 20), ("UC-BUSINESS", 10), ("UC-PREMIUM", 5)],
            extra: "[[devices]]\nmodel = \"Yealink T54W\"\nid = \"80:5e:c0:11:22:33\"\nlabel = \"Reception\"\n",
        }
    }
}

impl OrderSpec<'_> {
    /// The order as TOML.
    pub fn toml(&self) -> String {
        let mut s = format!(
            "customer = \"{}\"\npbx_name = \"{}\"\nmodel = \"TA-7000\"\nplatform = \"{}\"\ncycle = \"{}\"\nterm_start = \"{}\"\nair_gapped = {}\nstorage_units = {}\nsharing = \"{}\"\n\n[profiles]\n",
            self.customer,
            self.pbx_name,
            self.platform,
            self.cycle,
            self.term_start,
            self.air_gapped,
            self.storage_units,
            self.sharing
        );
        for (name, count) in self.profiles {
            s.push_str(&format!("{name} = {count}\n"));
        }
        s.push('\n');
        s.push_str(self.extra);
        s
    }

    /// Writes the order into the vendor's folder.
    pub fn write(&self, vendor: &Vendor, name: &str) -> PathBuf {
        vendor.write(name, &self.toml())
    }
}

/// A fake machine: a sysroot the agent probes, its state folder and an
/// outbox for the request files it writes.
pub struct Site {
    dir: tempfile::TempDir,
    requests: Cell<u32>,
}

impl Site {
    fn empty() -> Self {
        let s = Self {
            dir: tempfile::tempdir().unwrap(),
            requests: Cell::new(0),
        };
        fs::create_dir_all(s.state()).unwrap();
        fs::create_dir_all(s.outbox()).unwrap();
        s.file("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2\n");
        s
    }

    /// A vendor appliance with HW serial `hw` printed on it (DMI) and
    /// identifiers derived from `n`: NIC MAC, system UUID, disk serial,
    /// machine id.
    pub fn appliance(hw: &str, n: u8) -> Self {
        let s = Self::empty();
        s.file("sys/class/dmi/id/sys_vendor", "Example PBX Systems\n")
            .file("sys/class/dmi/id/product_name", "TA-7000\n")
            .file("sys/class/dmi/id/product_serial", &format!("{hw}\n"))
            .file(
                "sys/class/dmi/id/product_uuid",
                &format!("4C4C4544-0042-3510-8056-0000000001{n:02X}\n"),
            )
            .file(
                "etc/machine-id",
                &format!("{:032x}\n", 0xa000 + u32::from(n)),
            )
            .file(
                "sys/block/sda/device/serial",
                &format!("  DISK-HW-{n:04}  \n"),
            );
        s.nic(
            "eth0",
            "pci0000:00/0000:00:19.0",
            &format!("00:16:3e:01:00:{n:02x}"),
        );
        s
    }

    /// A virtual machine (QEMU) whose SW serial the vendor assigned.
    pub fn vm(sw_serial: &str, n: u8) -> Self {
        let s = Self::empty();
        s.file("sys/class/dmi/id/sys_vendor", "QEMU\n")
            .file(
                "sys/class/dmi/id/product_name",
                "Standard PC (Q35 + ICH9, 2009)\n",
            )
            .file(
                "sys/class/dmi/id/product_uuid",
                &format!("8e0a5d0c-1b2c-4d3e-8f40-0000000002{n:02x}\n"),
            )
            .file(
                "etc/machine-id",
                &format!("{:032x}\n", 0xb000 + u32::from(n)),
            )
            .file("sys/block/vda/serial", &format!("VIRTIO-{n:04}\n"));
        s.nic(
            "ens3",
            "pci0000:00/0000:00:03.0",
            &format!("52:54:00:02:00:{n:02x}"),
        );
        s.config(&format!("sw_serial = \"{sw_serial}\"\n"));
        s
    }

    /// A Cloud PBX instance (vendor-hosted).
    pub fn cloud(sw_serial: &str, n: u8) -> Self {
        let s = Self::vm(sw_serial, n);
        s.config(&format!(
            "platform = \"cloud\"\nsw_serial = \"{sw_serial}\"\n"
        ));
        s
    }

    /// The site's folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The sysroot.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The agent's state folder.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Where requests are written and licenses arrive.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Writes a file below the sysroot.
    pub fn file(&self, rel: &str, contents: &str) -> &Self {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    /// A network interface with its sysfs link.
    pub fn nic(&self, name: &str, device: &str, mac: &str) {
        let target = self
            .root()
            .join("sys/devices")
            .join(device)
            .join("net")
            .join(name);
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("address"), format!("{mac}\n")).unwrap();
        let net = self.root().join("sys/class/net");
        fs::create_dir_all(&net).unwrap();
        symlink(format!("../../devices/{device}/net/{name}"), net.join(name)).unwrap();
    }

    /// Replaces the NIC's MAC address (a swapped network card).
    pub fn swap_nic(&self, mac: &str) {
        let link = self.root().join("sys/class/net");
        for entry in fs::read_dir(&link).unwrap() {
            let p = entry.unwrap().path().join("address");
            fs::write(p, format!("{mac}\n")).unwrap();
        }
    }

    /// Writes `agent.toml`.
    pub fn config(&self, toml: &str) {
        fs::write(self.state().join("agent.toml"), toml).unwrap();
    }

    /// Installs the vendor's keyring as the firmware keyring (carried).
    pub fn trust(&self, vendor: &Vendor) {
        fs::copy(
            vendor.path("keyring.toml"),
            self.state().join("keyring.toml"),
        )
        .unwrap();
    }

    /// Runs `tessera-agent` for this machine.
    pub fn agent(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(&bins().agent);
        cmd.env_remove("TESSERA_STATE_DIR")
            .env_remove("TESSERA_AGENT_CONFIG")
            .env_remove("TESSERA_AGENT_FAILPOINT")
            .arg("--state-dir")
            .arg(self.state())
            .arg("--sysroot")
            .arg(self.root())
            .args(args);
        Run::of(&mut cmd, format!("tessera-agent {}", args.join(" ")))
    }

    /// Makes a request at `now`; returns the file in the outbox.
    pub fn request(&self, now: &str) -> PathBuf {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        let name = format!("request-{n}.req");
        let path = self.outbox().join(&name);
        self.agent(&["request", "-o", path.to_str().unwrap(), "--now", now])
            .ok();
        path
    }

    /// Carries a license file from the vendor and installs it at `now`.
    pub fn install(&self, license: &Path, now: &str) -> Run {
        let here = carry(license, &self.outbox());
        self.agent(&["install", here.to_str().unwrap(), "--json", "--now", now])
    }

    /// The periodic check at `now` (`--json`).
    pub fn check(&self, now: &str) -> Run {
        self.agent(&["check", "--json", "--now", now])
    }

    /// The status at `now` (`--json`).
    pub fn status(&self, now: &str) -> Run {
        self.agent(&["status", "--json", "--now", now])
    }
}

/// Exit codes of `tessera-agent check|status|install`.
pub mod agent_exit {
    /// Full service.
    pub const FULL: i32 = 0;
    /// Refused or error.
    pub const REFUSED: i32 = 2;
    /// Renewal due.
    pub const RENEWAL_DUE: i32 = 10;
    /// Grace.
    pub const GRACE: i32 = 11;
    /// Emergency calls only.
    pub const EMERGENCY_ONLY: i32 = 12;
    /// Locked.
    pub const LOCKED: i32 = 13;
}

/// Exit codes of `tessera`.
pub mod vendor_exit {
    /// Usage, input or I/O error.
    pub const USAGE: i32 = 1;
    /// Policy refusal.
    pub const POLICY: i32 = 2;
    /// Verification failure.
    pub const VERIFY: i32 = 3;
}

/// Activates a site: request, `tessera issue` of `order`, install. Returns
/// the issue summary (JSON) and the license file in the vendor's folder.
pub fn activate(
    vendor: &Vendor,
    site: &Site,
    order: &Path,
    now: &str,
    out: &str,
) -> (Value, PathBuf) {
    site.trust(vendor);
    let req = site.request(now);
    let order = order.file_name().unwrap().to_str().unwrap().to_owned();
    let (run, lic) = vendor.answer(now, &["issue", "--order", &order], &req, out);
    let summary = run.ok().json();
    site.install(&lic, now).code(agent_exit::FULL);
    (summary, lic)
}

/// The error code of an agent `--json` refusal.
pub fn agent_error(run: &Run) -> String {
    run.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
