use std::fs;

use tessera_verifier::samples::{DAY, T0};
use tessera_verifier::{armor, decode_request, Error};

use super::*;
use crate::mode::Mode;
use crate::store::{FailAction, FailPoint};
use crate::testing::{answer, sign, write_keyring, Tree};

struct Setup {
    tree: Tree,
    state: tempfile::TempDir,
}

impl Setup {
    fn appliance() -> Self {
        Self::on(Tree::appliance())
    }

    fn on(tree: Tree) -> Self {
        let state = tempfile::tempdir().unwrap();
        write_keyring(state.path());
        Self { tree, state }
    }

    fn options(&self) -> AgentOptions {
        let mut o = AgentOptions::new(self.state.path());
        o.sysroot = Some(self.tree.root().to_owned());
        o
    }

    fn agent(&self) -> Agent {
        Agent::new(self.options()).unwrap()
    }

    fn hooked(&self, point: FailPoint) -> Agent {
        let mut o = self.options();
        o.fail_hook = Some(FailHook {
            point,
            action: FailAction::Fail,
        });
        Agent::new(o).unwrap()
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.state.path().join(name)
    }

    /// Request, answer with `sequence`, install: the activated appliance.
    fn activate(&self, now: i64) -> Vec<u8> {
        let license = self.license(1, now);
        self.agent().install(&license, now, false).unwrap();
        license
    }

    /// A license answering a fresh request, armored as the vendor sends it.
    fn license(&self, sequence: u32, issued_at: i64) -> Vec<u8> {
        let req = self.agent().request(issued_at).unwrap();
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let bytes = armor::decode(&req.armored, armor::LABEL_REQUEST, &mut buf).unwrap();
        let l = answer(bytes, sequence, issued_at);
        armor::encode(&sign(&l), armor::LABEL_LICENSE).into_bytes()
    }
}

fn decoded(armored: &str) -> Vec<u8> {
    let mut buf = [0u8; MAX_OBJECT_LEN];
    armor::decode(armored, armor::LABEL_REQUEST, &mut buf)
        .unwrap()
        .to_vec()
}

#[test]
fn first_request_of_an_appliance_carries_the_hw_serial() {
    let s = Setup::appliance();
    let out = s.agent().request(T0).unwrap();
    assert!(out.key_created);
    let bytes = decoded(&out.armored);
    let r = decode_request(&bytes).unwrap();
    assert_eq!(r.serial(), None);
    assert_eq!(r.hw_serial(), Some("HW-7F3A-0042"));
    assert_eq!(r.created_at(), T0);
    assert_eq!(r.current(), None);
    assert_eq!(r.last_renewal(), None);
    assert_eq!(r.platform(), tessera_verifier::claims::Platform::Hw);
    // HW serial, device key, UUID, machine id, MAC, disk.
    assert_eq!(r.identity().len(), 6);
    assert!(r
        .identity()
        .any(|i| i.kind == tessera_verifier::claims::ComponentKind::DEVICE_KEY));
    // The device key was stored 0600 and signs the next request too, with
    // a fresh salt and nonce.
    let again = s.agent().request(T0).unwrap();
    assert!(!again.key_created);
    assert_eq!(again.data.device_key, out.data.device_key);
    assert_ne!(again.data.salt, out.data.salt);
    assert_ne!(again.data.nonce, out.data.nonce);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(s.path("device.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn activation_then_checks_then_renewal() {
    let s = Setup::appliance();
    let first = s.activate(T0);
    assert_eq!(
        s.agent().status(T0 + DAY).unwrap().license.serial,
        "SW-2026-000123"
    );
    let r = s.agent().check(T0 + DAY).unwrap();
    assert_eq!(r.mode, Mode::Full);
    assert_eq!(r.exit_code, 0);
    assert_eq!(r.days_since_renewal, Some(1));

    // The renewal request names the SW serial and the license in force.
    let req = s.agent().request(T0 + 300 * DAY).unwrap();
    assert_eq!(req.data.serial.as_deref(), Some("SW-2026-000123"));
    assert_eq!(req.data.hw_serial, None);
    assert_eq!(req.data.current, Some(([1; 16], 1)));
    assert_eq!(req.data.last_renewal, Some(T0));

    let second = s.license(2, T0 + 300 * DAY);
    let r = s.agent().install(&second, T0 + 300 * DAY, false).unwrap();
    assert_eq!(r.license.sequence, 2);
    assert_eq!(r.days_since_renewal, Some(0));

    // The old file is refused and changes nothing.
    let before = (
        fs::read(s.path("license")).unwrap(),
        fs::read(s.path("state")).unwrap(),
    );
    let err = s
        .agent()
        .install(&first, T0 + 301 * DAY, false)
        .unwrap_err();
    assert!(
        matches!(err, AgentError::Refused(Error::Superseded { seq: 2 })),
        "{err}"
    );
    let after = (
        fs::read(s.path("license")).unwrap(),
        fs::read(s.path("state")).unwrap(),
    );
    assert_eq!(before, after);
    // Re-installing the license in force is fine.
    s.agent().install(&second, T0 + 301 * DAY, false).unwrap();
}

#[test]
fn days_offline_walk_through_every_mode() {
    let s = Setup::appliance();
    s.activate(T0);
    let end = T0 + 365 * DAY;
    let table = [
        (end - 40 * DAY, Mode::Full, 0),
        (end - 10 * DAY, Mode::RenewalDue, 10),
        (end + DAY, Mode::Grace, 11),
        (end + 14 * DAY, Mode::EmergencyOnly, 12),
    ];
    for (now, mode, code) in table {
        let r = s.agent().check(now).unwrap();
        assert_eq!((r.mode, r.exit_code), (mode, code), "{}", r.now);
    }
    // The clock set back by more than the tolerance is refused.
    let err = s.agent().check(end - 40 * DAY).unwrap_err();
    assert!(matches!(err, AgentError::ClockRollback { .. }), "{err}");
    assert_eq!(err.code(), "clock_rollback");
    // The renewal file brings full service back at once.
    let renewal = s.license(2, end + 20 * DAY);
    let r = s.agent().install(&renewal, end + 20 * DAY, false).unwrap();
    assert_eq!(r.mode, Mode::Full);
}

#[test]
fn status_does_not_store_anything() {
    let s = Setup::appliance();
    s.activate(T0);
    let before = fs::read(s.path("state")).unwrap();
    s.agent().status(T0 + 5 * DAY).unwrap();
    assert_eq!(fs::read(s.path("state")).unwrap(), before);
    s.agent().check(T0 + 5 * DAY).unwrap();
    assert_ne!(fs::read(s.path("state")).unwrap(), before);
}

#[test]
fn corrupt_state_refuses_service_until_a_fresh_license_is_installed() {
    let s = Setup::appliance();
    let license = s.activate(T0);
    let mut bytes = fs::read(s.path("state")).unwrap();
    bytes[20] ^= 0x40;
    fs::write(s.path("state"), &bytes).unwrap();

    let later = T0 + 3 * DAY;
    let err = s.agent().check(later).unwrap_err();
    assert!(matches!(err, AgentError::StateCorrupt(_)), "{err}");
    assert_eq!(err.code(), "state_corrupt");
    assert!(matches!(
        s.agent().status(later),
        Err(AgentError::StateCorrupt(_))
    ));
    // Not silently reset: installing the old file again is refused ...
    assert!(matches!(
        s.agent().install(&license, later, false),
        Err(AgentError::StateCorrupt(_))
    ));
    // ... also with --recover, since it was issued before the loss.
    assert!(matches!(
        s.agent().install(&license, later, true),
        Err(AgentError::RecoveryNeedsFreshLicense { .. })
    ));
    assert!(matches!(
        s.agent().check(later),
        Err(AgentError::StateCorrupt(_))
    ));
    // The request still works and says the state is corrupt.
    let req = s.agent().request(later).unwrap();
    assert_eq!(req.data.current, None);
    assert!(req.notes.iter().any(|n| n.contains("--recover")));
    // A fresh license from the vendor, installed with --recover, restores
    // service; the corrupt record is kept for support.
    let fresh = s.license(2, later);
    let r = s.agent().install(&fresh, later, true).unwrap();
    assert_eq!(r.mode, Mode::Full);
    assert_eq!(fs::read(s.path("state.corrupt")).unwrap(), bytes);
    assert_eq!(s.agent().check(later + DAY).unwrap().mode, Mode::Full);
}

#[test]
fn missing_state_with_a_license_is_corrupt_not_fresh() {
    let s = Setup::appliance();
    let license = s.activate(T0);
    fs::remove_file(s.path("state")).unwrap();
    assert!(matches!(
        s.agent().check(T0 + DAY),
        Err(AgentError::StateCorrupt(_))
    ));
    assert!(matches!(
        s.agent().install(&license, T0 + DAY, false),
        Err(AgentError::StateCorrupt(_))
    ));
}

#[test]
fn license_for_another_device_is_refused_and_nothing_written() {
    let s = Setup::appliance();
    let other = Setup::on(Tree::vm());
    let theirs = {
        let mut o = other.options();
        o.config = None;
        fs::write(other.path("agent.toml"), "sw_serial = \"SW-2026-000999\"\n").unwrap();
        let req = Agent::new(o).unwrap().request(T0).unwrap();
        let l = answer(&decoded(&req.armored), 1, T0);
        sign(&l)
    };
    let names = || {
        let mut names: Vec<_> = fs::read_dir(s.state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = names();
    let err = s.agent().install(&theirs, T0, false).unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::WrongSerial { .. } | AgentError::Refused(Error::WrongDevice { .. })
        ),
        "{err}"
    );
    // A folder never set up stays so: no license, and neither the device
    // key, the fresh state nor the lock file the install made.
    assert_eq!(names(), before);
    // On a provisioned device the fresh state stays as it was.
    s.agent().request(T0).unwrap();
    let before = names();
    s.agent().install(&theirs, T0, false).unwrap_err();
    assert_eq!(names(), before);
    assert!(!s.path("license").exists());
    let store = Store::open(s.state.path(), false, None).unwrap();
    assert_eq!(
        store.read_state().unwrap(),
        StoredState::Intact(State::new()),
        "only the provisioned fresh state"
    );
}

#[test]
fn not_yet_valid_license_is_not_installed() {
    let s = Setup::appliance();
    let license = s.license(1, T0 + 10 * DAY);
    let err = s.agent().install(&license, T0, false).unwrap_err();
    assert!(matches!(err, AgentError::NotYetValid { .. }), "{err}");
    assert!(!s.path("license").exists());
}

#[test]
fn binary_and_armored_input_both_install() {
    let s = Setup::appliance();
    let armored = s.license(1, T0);
    let mut buf = [0u8; MAX_OBJECT_LEN];
    let text = String::from_utf8(armored.clone()).unwrap();
    let raw = armor::decode(&text, armor::LABEL_LICENSE, &mut buf).unwrap();
    assert_eq!(
        license_bytes(raw).unwrap(),
        license_bytes(&armored).unwrap()
    );
    // Mail-quoted with CRLF still reads.
    let quoted: String = text.lines().map(|l| format!("> {l}\r\n")).collect();
    assert_eq!(license_bytes(quoted.as_bytes()).unwrap(), raw);
    // Binary input that is no license says what it is.
    let err = license_bytes(&[0xff, 0]).unwrap_err();
    assert!(
        matches!(err, AgentError::Refused(Error::NotSign1 { .. })),
        "{err}"
    );
    let mut mac0 = raw.to_vec();
    mac0[0] = 0xd1;
    let err = license_bytes(&mac0).unwrap_err().to_string();
    assert!(
        err.contains("not a license: COSE_Sign1 (tag 18) expected, found tag 17 (COSE_Mac0)"),
        "{err}"
    );
    assert!(matches!(
        license_bytes(b"hello"),
        Err(AgentError::Refused(Error::Armor(_)))
    ));
    s.agent().install(raw, T0, false).unwrap();
}

#[test]
fn a_photo_of_the_license_qr_code_installs() {
    let s = Setup::appliance();
    let armored = s.license(1, T0);
    let mut buf = [0u8; MAX_OBJECT_LEN];
    let text = String::from_utf8(armored.clone()).unwrap();
    let raw = armor::decode(&text, armor::LABEL_LICENSE, &mut buf).unwrap();
    let png = tessera_qr::encode(raw).unwrap().to_png().unwrap();
    assert_eq!(license_bytes(&png).unwrap(), raw);
    // A code holding the armored text reads too.
    let of_text = tessera_qr::encode(&armored).unwrap().to_png().unwrap();
    assert_eq!(license_bytes(&of_text).unwrap(), raw);
    // An image without a code says so.
    let blank = tessera_qr::encode(b"x").unwrap().to_png().unwrap();
    let mut white = blank.clone();
    white.truncate(40);
    assert!(matches!(
        license_bytes(&white),
        Err(AgentError::Qr(tessera_qr::QrError::NotAnImage { .. }))
    ));
    // A code whose payload is not a license is refused like any input.
    let other = tessera_qr::encode(b"hello").unwrap().to_png().unwrap();
    assert!(matches!(
        license_bytes(&other),
        Err(AgentError::Refused(Error::Armor(_)))
    ));
    let report = s.agent().install(&png, T0, false).unwrap();
    assert_eq!(report.license.sequence, 1);
}

#[test]
fn the_request_as_an_image_or_binary_is_named_as_the_request() {
    let s = Setup::appliance();
    let req = s.agent().request(T0).unwrap();
    let code = tessera_qr::encode(&req.bytes).unwrap();
    let armored = license_bytes(req.armored.as_bytes()).unwrap_err();
    for (input, holder) in [
        (code.to_png().unwrap(), "this image's QR code holds"),
        (code.to_svg().into_bytes(), "this image's QR code holds"),
        (req.bytes.clone(), "this file is"),
    ] {
        let err = license_bytes(&input).unwrap_err();
        assert_eq!(err.code(), "wrong_type");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{holder} a tessera request, not a license: ")),
            "{text}"
        );
        // The advice of the armored request's message.
        assert!(
            armored
                .to_string()
                .ends_with(text.split_once(": ").unwrap().1),
            "{text} / {armored}"
        );
    }
    // The license's SVG, as `tessera issue --qr-svg` writes it, installs.
    let license = s.license(1, T0);
    let mut buf = [0u8; MAX_OBJECT_LEN];
    let raw = armor::read_object(&license, armor::LABEL_LICENSE, &mut buf).unwrap();
    let svg = tessera_qr::encode(raw).unwrap().to_svg();
    assert!(svg.len() > armor::MAX_ARMOR_LEN, "{}", svg.len());
    assert_eq!(license_bytes(svg.as_bytes()).unwrap(), raw);
    let report = s.agent().install(svg.as_bytes(), T0, false).unwrap();
    assert_eq!(report.license.sequence, 1);
}

#[test]
fn fresh_vm_needs_a_configured_serial() {
    let s = Setup::on(Tree::vm());
    let err = s.agent().request(T0).unwrap_err();
    assert!(
        matches!(err, AgentError::NoSerialOffAppliance { .. }),
        "{err}"
    );
    assert_eq!(err.code(), "no_serial");
    assert!(err.to_string().contains("sw_serial"));
    fs::write(
        s.path("agent.toml"),
        "sw_serial = \"SW-2026-000555\"\nip = \"192.0.2.10\"\n",
    )
    .unwrap();
    let req = s.agent().request(T0).unwrap();
    assert_eq!(req.data.serial.as_deref(), Some("SW-2026-000555"));
    assert_eq!(req.data.hw_serial, None);
    assert_eq!(req.data.platform, tessera_verifier::claims::Platform::Vm);
    // VM: UUID, machine id, MAC, IP, device key.
    assert_eq!(req.data.identity.len(), 5);
    let license = s.license(1, T0);
    assert_eq!(
        s.agent().install(&license, T0, false).unwrap().mode,
        Mode::Full
    );
}

#[test]
fn a_hw_serial_ignored_on_a_vm_is_named_with_the_fix() {
    let s = Setup::on(Tree::vm());
    fs::write(s.path("agent.toml"), "hw_serial = \"HW-VM-0001\"\n").unwrap();
    let err = s.agent().request(T0).unwrap_err();
    assert_eq!(err.code(), "no_serial");
    let text = err.to_string();
    for words in [
        "`hw_serial` in",
        "is ignored because the platform is detected as vm",
        "set `platform = \"hw\"`",
        "set `sw_serial`",
    ] {
        assert!(text.contains(words), "{words} not in: {text}");
    }
    // Set, not detected: the message says which setting.
    fs::write(
        s.path("agent.toml"),
        "platform = \"cloud\"\nhw_serial = \"HW-VM-0001\"\n",
    )
    .unwrap();
    let text = s.agent().request(T0).unwrap_err().to_string();
    assert!(
        text.contains("the platform is set to cloud by `platform` in"),
        "{text}"
    );
    // The fix it names works.
    fs::write(
        s.path("agent.toml"),
        "platform = \"hw\"\nhw_serial = \"HW-VM-0001\"\n",
    )
    .unwrap();
    let req = s.agent().request(T0).unwrap();
    assert_eq!(req.data.hw_serial.as_deref(), Some("HW-VM-0001"));
}

#[test]
fn the_request_serial_is_the_one_a_request_carries() {
    let s = Setup::appliance();
    let agent = s.agent();
    let serial = agent.request_serial(&agent.probe()).unwrap();
    assert_eq!(
        (serial.kind, serial.value.as_str(), serial.source.as_str()),
        ("hw", "HW-7F3A-0042", "/sys/class/dmi/id/product_serial")
    );
    s.activate(T0);
    let agent = s.agent();
    let serial = agent.request_serial(&agent.probe()).unwrap();
    let req = agent.request(T0).unwrap();
    assert_eq!(serial.kind, "sw");
    assert_eq!(serial.source, "installed license");
    assert_eq!(req.data.serial.as_deref(), Some(serial.value.as_str()));
    // A fresh VM has none: the request's own refusal.
    let vm = Setup::on(Tree::vm());
    let agent = vm.agent();
    let err = agent.request_serial(&agent.probe()).unwrap_err();
    assert_eq!(err.to_string(), agent.request(T0).unwrap_err().to_string());
    fs::write(vm.path("agent.toml"), "sw_serial = \"SW-2026-000555\"\n").unwrap();
    let agent = vm.agent();
    let serial = agent.request_serial(&agent.probe()).unwrap();
    assert_eq!(
        (serial.kind, serial.value.as_str(), serial.source.as_str()),
        ("sw", "SW-2026-000555", "config: sw_serial")
    );
}

#[test]
fn a_license_for_another_serial_names_both_serials() {
    let s = Setup::appliance();
    let license = |seq: u32, tweak: &dyn Fn(&mut tessera_verifier::encode::LicenseData)| {
        let req = s.agent().request(T0).unwrap();
        let mut l = answer(&decoded(&req.armored), seq, T0);
        tweak(&mut l);
        armor::encode(&sign(&l), armor::LABEL_LICENSE).into_bytes()
    };
    // First activation: another appliance's HW serial.
    let theirs = license(1, &|l| {
        l.serial = "SW-2026-000777".into();
        l.previous_serial = Some("HW-0000-9999".into());
    });
    let err = s.agent().install(&theirs, T0, false).unwrap_err();
    assert_eq!(err.code(), "wrong_serial");
    assert_eq!(
        err.to_string(),
        "the license is for SW serial SW-2026-000777 (first activation of HW serial HW-0000-9999) but this device has HW serial HW-7F3A-0042: it is another PBX's license; request a license from this device (`tessera-agent request -o request.txt`) and install the vendor's answer"
    );
    // Activated: the SW serial of the license in force.
    s.activate(T0);
    let theirs = license(2, &|l| l.serial = "SW-2026-000999".into());
    let err = s.agent().install(&theirs, T0, false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the license is for SW serial SW-2026-000999 but this device has SW serial SW-2026-000123:"
        ),
        "{text}"
    );
}

#[test]
fn too_few_components_refuse_a_request() {
    let t = Tree::new();
    t.file("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
    let s = Setup::on(t);
    fs::write(
        s.path("agent.toml"),
        "hw_serial = \"HW-1\"\nmin_components = 3\n",
    )
    .unwrap();
    let err = s.agent().request(T0).unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::Probe(crate::probe::ProbeError::TooFew {
                found: 2,
                needed: 3
            })
        ),
        "{err}"
    );
}

/// The names in a folder, sorted; `None` when it does not exist.
fn names(dir: &std::path::Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    Some(names)
}

#[test]
fn a_refused_request_leaves_nothing_behind() {
    let refused = |_: &RequestOutcome| -> Result<(), AgentError> {
        Err(AgentError::Output {
            path: "request.txt".into(),
            reason: "the disk is full".into(),
        })
    };
    // A folder with only the keyring: refused by the delivery (the
    // request file could not be written), then by too few components.
    let s = Setup::appliance();
    let before = names(s.state.path());
    let err = s.agent().request_then(T0, refused).unwrap_err();
    assert_eq!(err.code(), "output");
    assert_eq!(names(s.state.path()), before);
    let empty = Setup::on(Tree::new());
    let err = empty.agent().request(T0).unwrap_err();
    assert_eq!(err.code(), "too_few_components");
    assert_eq!(names(empty.state.path()), Some(vec!["keyring.toml".into()]));
    // No serial at all (a VM without `sw_serial`).
    let vm = Setup::on(Tree::vm());
    let err = vm.agent().request(T0).unwrap_err();
    assert_eq!(err.code(), "no_serial", "{err}");
    assert_eq!(names(vm.state.path()), Some(vec!["keyring.toml".into()]));
    // A state folder the request would have made is not left behind.
    let mut o = s.options();
    o.state_dir = s.state.path().join("new");
    let err = Agent::new(o.clone())
        .unwrap()
        .request_then(T0, refused)
        .unwrap_err();
    assert_eq!(err.code(), "output");
    assert_eq!(names(&o.state_dir), None);
    // Delivered: the device key, state and lock stay.
    let made = Agent::new(o.clone())
        .unwrap()
        .request_then(T0, |r| Ok(r.key_created));
    assert!(made.unwrap());
    let provisioned = names(&o.state_dir).unwrap();
    assert_eq!(provisioned, ["device.key", "lock", "state"]);
    // A refused request later keeps the device's key and state.
    let key = fs::read(o.state_dir.join("device.key")).unwrap();
    Agent::new(o.clone())
        .unwrap()
        .request_then(T0, refused)
        .unwrap_err();
    assert_eq!(names(&o.state_dir).unwrap(), provisioned);
    assert_eq!(fs::read(o.state_dir.join("device.key")).unwrap(), key);
}

#[test]
fn keyring_comes_from_option_config_or_state_dir() {
    let s = Setup::appliance();
    fs::remove_file(s.path("keyring.toml")).unwrap();
    let err = s.agent().keyring().unwrap_err();
    assert!(matches!(err, AgentError::NoKeyring { .. }));
    let elsewhere = tempfile::tempdir().unwrap();
    let path = write_keyring(elsewhere.path());
    let mut o = s.options();
    o.keyring = Some(path.clone());
    assert_eq!(Agent::new(o).unwrap().keyring().unwrap().len(), 1);
    fs::write(
        s.path("agent.toml"),
        format!("keyring = {:?}\n", path.display().to_string()),
    )
    .unwrap();
    assert_eq!(s.agent().keyring().unwrap().len(), 1);
    fs::write(path, "format = 1\n[[key]]\nkid = \"00\"\n").unwrap();
    assert!(matches!(
        s.agent().keyring(),
        Err(AgentError::Keyring { .. })
    ));
}

#[test]
fn check_before_activation_says_what_to_do() {
    let s = Setup::appliance();
    let err = s.agent().check(T0).unwrap_err();
    assert_eq!(err.code(), "not_activated");
    assert!(err.to_string().contains("tessera-agent request"), "{err}");
    // Nothing was created in the folder (its keyring only).
    assert_eq!(fs::read_dir(s.state.path()).unwrap().count(), 1);
    let mut o = s.options();
    o.state_dir = s.state.path().join("nowhere");
    // A folder that is not there is a mistyped --state-dir, not a device
    // waiting for activation (which a PBX would send to its activation
    // page).
    let err = Agent::new(o).unwrap().check(T0).unwrap_err();
    assert!(matches!(err, AgentError::NoStateDir(_)), "{err:?}");
    assert_eq!(err.code(), "no_state_dir");
    assert!(err.to_string().contains("check --state-dir"), "{err}");
}

#[test]
fn invalid_ip_override_is_refused() {
    let s = Setup::appliance();
    let mut o = s.options();
    o.ip = Some("0.0.0.0".into());
    assert!(matches!(Agent::new(o), Err(AgentError::Config(_))));
    let mut o = s.options();
    o.config = Some(s.path("missing.toml"));
    assert!(matches!(
        Agent::new(o),
        Err(AgentError::Config(ConfigError::Missing(_)))
    ));
}

#[test]
fn a_missing_sysroot_is_named_with_what_set_it() {
    let s = Setup::appliance();
    let gone = s.state.path().join("no-such-root");
    let mut o = s.options();
    o.sysroot = Some(gone.clone());
    let err = Agent::new(o).unwrap_err();
    assert!(
        matches!(err, AgentError::Config(ConfigError::NoSysroot { .. })),
        "{err:?}"
    );
    assert_eq!(err.code(), "config");
    let text = err.to_string();
    assert!(text.contains(&gone.display().to_string()), "{text}");
    assert!(text.contains("set by --sysroot"), "{text}");
    // A file is no root either.
    let file = s.path("keyring.toml");
    let mut o = s.options();
    o.sysroot = Some(file);
    assert!(Agent::new(o)
        .unwrap_err()
        .to_string()
        .contains("it is a file"));
    // Set in agent.toml (relative to it): the key and the file are named.
    fs::write(s.path("agent.toml"), "sysroot = \"no-such-root\"\n").unwrap();
    let mut o = s.options();
    o.sysroot = None;
    let text = Agent::new(o).unwrap_err().to_string();
    assert!(text.contains(&gone.display().to_string()), "{text}");
    let config = s.path("agent.toml").display().to_string();
    assert!(
        text.contains(&format!("set by `sysroot` in {config}")),
        "{text}"
    );
    // --sysroot wins over the file, and an existing root is taken.
    assert!(Agent::new(s.options()).is_ok());
    // Nothing was created in the state folder.
    assert!(!s.path("device.key").exists() && !s.path("lock").exists());
}

#[test]
fn catalog_names_appear_in_status() {
    let s = Setup::appliance();
    s.activate(T0);
    let catalog = s.path("catalog.toml");
    fs::write(&catalog, "[[profile]]\ncode = 1\nname = \"PBX-BASIC\"\n").unwrap();
    let mut o = s.options();
    o.catalog = Some(catalog);
    let r = Agent::new(o).unwrap().status(T0).unwrap();
    assert_eq!(
        r.entitlements.profiles[0].name.as_deref(),
        Some("PBX-BASIC")
    );
}

/// A crash at every step of an install of a renewal leaves the old or the
/// new license in force, and the next check gives full service.
#[test]
fn install_interrupted_at_every_fail_point() {
    for point in FailPoint::ALL {
        let s = Setup::appliance();
        s.activate(T0);
        let renewal = s.license(2, T0 + 10 * DAY);
        let err = s
            .hooked(point)
            .install(&renewal, T0 + 10 * DAY, false)
            .unwrap_err();
        assert!(matches!(err, AgentError::Store(StoreError::FailPoint(p)) if p == point));
        let r = s.agent().check(T0 + 11 * DAY).unwrap();
        assert_eq!(r.mode, Mode::Full, "{point:?}");
        let want = match point {
            FailPoint::LicenseTempTorn | FailPoint::LicenseTempWritten => 1,
            _ => 2,
        };
        assert_eq!(r.license.sequence, want, "{point:?}");
        // Whatever happened, the older license can no longer come back
        // once the newer one was checked.
        if want == 2 {
            let first = s.license(1, T0);
            assert!(s.agent().install(&first, T0 + 12 * DAY, false).is_err());
        }
    }
}

/// A crash while the check stores the state leaves a state that still
/// works.
#[test]
fn check_interrupted_at_every_state_fail_point() {
    for point in [
        FailPoint::StateTempTorn,
        FailPoint::StateTempWritten,
        FailPoint::StateRenamed,
    ] {
        let s = Setup::appliance();
        s.activate(T0);
        assert!(s.hooked(point).check(T0 + DAY).is_err());
        assert_eq!(
            s.agent().check(T0 + 2 * DAY).unwrap().mode,
            Mode::Full,
            "{point:?}"
        );
    }
}

/// One command opens its state folder once: a path swapped to another
/// folder afterwards (an older copy of the state, say) changes nothing for
/// it; the keyring, the state, the license and the seats all come from the
/// folder it opened.
#[test]
fn the_state_folder_is_opened_once_per_agent() {
    let s = Setup::appliance();
    s.activate(T0);
    let older = tempfile::tempdir().unwrap();
    let agent = s.agent();
    assert!(agent.folder(false).unwrap().is_some());
    // Swap: the state folder moves away, an empty folder takes its name.
    let moved = older.path().join("moved");
    fs::rename(s.state.path(), &moved).unwrap();
    fs::create_dir(s.state.path()).unwrap();
    let report = agent.check(T0 + DAY).unwrap();
    assert_eq!(report.license.sequence, 1);
    // SQLite opens by path only: the seat store notices the path names
    // another folder now, and refuses rather than open that one.
    let e = agent
        .seats(T0 + DAY, crate::seats::SeatOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("moved or replaced"), "{e}");
    assert_eq!(fs::read_dir(s.state.path()).unwrap().count(), 0);
    fs::remove_dir(s.state.path()).unwrap();
    fs::rename(&moved, s.state.path()).unwrap();
}
