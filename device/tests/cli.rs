//! `tessera-agent` end to end on a fake machine: probe, request, the
//! vendor's answer (made here like the issuer makes it), install, days of
//! checks offline, status, and every refusal with its exit code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;

use common::{at, locked_after, Device, T0};
use tessera_verifier::samples::DAY;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn help_lists_commands_exit_codes_and_examples() {
    let d = Device::appliance();
    let out = d
        .cmd()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    for word in [
        "probe",
        "request",
        "install",
        "check",
        "status",
        "13  grace over: locked",
        "Examples:",
    ] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
    let out = d
        .cmd()
        .args(["check", "--help"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(text.contains("tessera-agent check --json"));
    // Each decision command lists its own exit codes.
    for command in ["check", "status", "install"] {
        let out = d
            .cmd()
            .args([command, "--help"])
            .assert()
            .success()
            .get_output()
            .clone();
        let help = stdout(&out);
        for code in [
            "0   full service",
            "10  full service, renewal due",
            "11  full service in grace",
            "12  grace over: emergency numbers only",
            "13  grace over: locked",
            "2   refused or error",
        ] {
            assert!(
                help.contains(code),
                "{command}: {code} missing from:\n{help}"
            );
        }
    }
    // --now is for tests and stays out of the help.
    assert!(!text.contains("--now"));
    d.cmd().arg("frobnicate").assert().code(2);
}

#[test]
fn probe_prints_components_and_skips() {
    let d = Device::appliance();
    let out = d.cmd().arg("probe").assert().success().get_output().clone();
    let text = stdout(&out);
    assert!(text.contains("platform: hw (detected)"), "{text}");
    assert!(text.contains("HW-7F3A-0042"), "{text}");
    assert!(text.contains("00163e5a1b2c"), "{text}");
    assert!(text.contains("virtual interface"), "{text}");
    assert!(text.contains("loop, RAM or device-mapper"), "{text}");

    let out = d
        .cmd()
        .args(["--ip", "192.0.2.10", "probe", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["platform"], "hw");
    assert_eq!(json["enough"], true);
    let kinds: Vec<&str> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "hw_serial",
            "ip_addr",
            "system_uuid",
            "machine_id",
            "nic_mac",
            "disk_serial"
        ]
    );
}

#[test]
fn probe_names_the_request_serial_or_why_a_request_would_be_refused() {
    let d = Device::appliance();
    let out = d.cmd().arg("probe").assert().success().get_output().clone();
    assert!(
        stdout(&out).contains(
            "request serial: HW-7F3A-0042 (HW serial, from /sys/class/dmi/id/product_serial)"
        ),
        "{}",
        stdout(&out)
    );
    // The appliance detected as a VM: its hw_serial is ignored, and a
    // request would be refused; probe says so, and exits as request would.
    d.file("proc/cpuinfo", "flags\t\t: fpu hypervisor\n");
    fs::write(d.state_file("agent.toml"), "hw_serial = \"HW-VM-0001\"\n").unwrap();
    let out = d.cmd().arg("probe").assert().code(2).get_output().clone();
    assert!(
        stdout(&out).contains("request serial: none"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("a request would be refused: this device has no serial")
            && err.contains("is ignored because the platform is detected as vm"),
        "{err}"
    );
    let out = d
        .cmd()
        .args(["probe", "--json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["enough"], true);
    assert_eq!(json["serial"], serde_json::Value::Null);
    assert_eq!(json["request_ready"], false);
    assert_eq!(json["request_problems"][0]["code"], "no_serial");
    // The fix it names: probe then shows the serial the request carries.
    fs::write(
        d.state_file("agent.toml"),
        "platform = \"hw\"\nhw_serial = \"HW-VM-0001\"\n",
    )
    .unwrap();
    let out = d
        .cmd()
        .args(["probe", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["request_ready"], true);
    assert_eq!(json["request_problems"], serde_json::json!([]));
    assert_eq!(
        json["serial"],
        serde_json::json!({"kind": "hw", "value": "HW-VM-0001", "source": "config: hw_serial"})
    );
}

#[test]
fn probe_of_an_empty_machine_fails_with_reasons() {
    let d = Device::appliance();
    let empty = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::new(common::agent_bin())
        .arg("--state-dir")
        .arg(d.state.path())
        .arg("--sysroot")
        .arg(empty.path())
        .arg("probe")
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stdout(&out).contains("not present on this system"));
    assert!(stderr(&out).contains("0 identity component(s) found, 2 needed"));
    // With --json, standard output stays one JSON document.
    let out = assert_cmd::Command::new(common::agent_bin())
        .arg("--state-dir")
        .arg(d.state.path())
        .arg("--sysroot")
        .arg(empty.path())
        .args(["probe", "--json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["enough"], false);
    // A sysroot that is not there is named, with the option that set it,
    // and nothing is made in the state folder.
    let gone = empty.path().join("mnt-image");
    for command in ["probe", "request", "check"] {
        let out = assert_cmd::Command::new(common::agent_bin())
            .arg("--state-dir")
            .arg(empty.path().join("state"))
            .arg("--sysroot")
            .arg(&gone)
            .args([command, "--json"])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["error"]["code"], "config", "{command}");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("the sysroot {} does not exist", gone.display()))
                && message.contains("set by --sysroot"),
            "{command}: {message}"
        );
        assert!(!empty.path().join("state").exists(), "{command}");
    }
}

#[test]
fn activation_and_a_year_offline() {
    let d = Device::appliance();
    // The request file: first activation, so the HW serial.
    let req_path = d.root.path().join("request.txt");
    let out = d
        .cmd()
        .args(["request", "-o"])
        .arg(&req_path)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stderr(&out).contains("HW serial HW-7F3A-0042 (first activation)"));
    assert!(stderr(&out).contains("a new device key was created"));
    let text = fs::read_to_string(&req_path).unwrap();
    assert!(text.starts_with("-----BEGIN TESSERA REQUEST-----\n"));
    // Never overwritten without --force.
    d.cmd()
        .args(["request", "-o"])
        .arg(&req_path)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--force"));
    d.cmd()
        .args(["request", "--force", "-o"])
        .arg(&req_path)
        .assert()
        .success();

    let license = d.licensed(1, T0, |_| {});
    let out = d
        .cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(stdout(&out).contains("installed license SW-2026-000123 (sequence 1)"));

    let end = T0 + 365 * DAY;
    for (now, code, words) in [
        (T0 + DAY, 0, "valid: full service"),
        (end - 10 * DAY, 10, "renewal due: 10 day(s) left"),
        (end + 3 * DAY, 11, "grace:"),
        (end + 14 * DAY, 12, "expired: emergency numbers only"),
    ] {
        let out = d
            .cmd()
            .args(["check", "--now", &at(now)])
            .assert()
            .code(code)
            .get_output()
            .clone();
        assert!(stdout(&out).contains(words), "{}", stdout(&out));
    }
    // The clock set back past the tolerance: refused.
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("clock"));

    // The renewal request names the SW serial; its answer restores service.
    let renewal = d.licensed(2, end + 15 * DAY, |_| {});
    d.cmd()
        .args(["install", "--now", &at(end + 15 * DAY)])
        .arg(&renewal)
        .assert()
        .code(0);
    // The first license again: a downgrade, refused.
    d.cmd()
        .args(["install", "--now", &at(end + 16 * DAY)])
        .arg(&license)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sequence 2"));
    let out = d
        .cmd()
        .args(["status", "--json", "--now", &at(end + 16 * DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["license"]["sequence"], 2);
    assert_eq!(json["days_since_renewal"], 1);
    assert_eq!(json["mode"], "full");
}

#[test]
fn status_shows_entitlements_with_catalog_names_and_role() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .success();
    let catalog = d.root.path().join("catalog.toml");
    fs::write(
        &catalog,
        "[[profile]]\ncode = 1\nname = \"PBX-BASIC\"\n[[base]]\ncode = 4\nname = \"Phone System\"\n[[addon]]\ncode = 4\nname = \"device_ip_phone\"\n",
    )
    .unwrap();
    let out = d
        .cmd()
        .args(["status", "--now", &at(T0 + 5 * DAY), "--catalog"])
        .arg(&catalog)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = stdout(&out);
    for want in [
        "verdict:            valid",
        "last renewal:       2026-01-01T00:00:00Z (5 day(s) ago)",
        "sharing:            standalone",
        "PBX-BASIC (1) x20",
        "Phone System (4) x52",
        "device_ip_phone (4) x40",
        "storage:         10 unit(s), 100 GB",
        "binding:            4 of 4 components match, 3 needed",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // Without a catalog, the default names, as `seats` shows them.
    let out = d
        .cmd()
        .args(["status", "--now", &at(T0 + 5 * DAY)])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = stdout(&out);
    for want in [
        "PBX-BASIC (1) x20",
        "UC-ESSENTIAL (2) x",
        "Phone System (4) x52",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    assert!(!text.contains("profile          code "), "{text}");
}

#[test]
fn locked_after_72_hours() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |l| locked_after(l, 1));
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(10);
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(11);
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(T0 + 4 * DAY)])
        .assert()
        .code(13)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["mode"], "locked");
    assert_eq!(json["entitlements"]["granted"], false);
}

#[test]
fn corrupt_state_exit_2_until_recovered_with_a_fresh_license() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .success();
    let state = d.state_file("state");
    let mut bytes = fs::read(&state).unwrap();
    bytes[40] ^= 1;
    fs::write(&state, &bytes).unwrap();
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &at(T0 + 3 * DAY)])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["error"]["code"], "state_corrupt");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("install --recover"));
    // The old file does not bring service back, with or without --recover.
    d.cmd()
        .args(["install", "--now", &at(T0 + 3 * DAY)])
        .arg(&license)
        .assert()
        .code(2);
    d.cmd()
        .args(["install", "--recover", "--now", &at(T0 + 3 * DAY)])
        .arg(&license)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("fresh license"));
    assert_eq!(fs::read(&state).unwrap(), bytes);
    let fresh = d.licensed(2, T0 + 3 * DAY, |_| {});
    d.cmd()
        .args(["install", "--recover", "--now", &at(T0 + 3 * DAY)])
        .arg(&fresh)
        .assert()
        .code(0);
    assert!(d.state_file("state.corrupt").exists());
    d.cmd()
        .args(["check", "--now", &at(T0 + 4 * DAY)])
        .assert()
        .code(0);
}

#[test]
fn refusals_exit_2_with_advice() {
    let d = Device::appliance();
    // Not activated yet.
    d.cmd()
        .args(["check"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no license is installed"));
    // Garbage, a request instead of a license, a damaged signature.
    let junk = d.root.path().join("junk.txt");
    fs::write(&junk, "hello").unwrap();
    d.cmd()
        .args(["install"])
        .arg(&junk)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("BEGIN"));
    let req = d.root.path().join("req.txt");
    d.cmd().args(["request", "-o"]).arg(&req).assert().success();
    d.cmd()
        .args(["install"])
        .arg(&req)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "this is a tessera request (`-----BEGIN TESSERA REQUEST-----`), not a license (`-----BEGIN TESSERA LICENSE-----`): a request goes to the vendor",
        ));
    // Its code for scripts is the one it always had.
    let out = d
        .cmd()
        .args(["install", "--json"])
        .arg(&req)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "armor.wrong_label", "{err}");
    let license = d.licensed(1, T0, |_| {});
    let text = fs::read_to_string(&license).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let line = &mut lines[3];
    let flipped = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, flipped);
    let tampered = d.root.path().join("tampered.txt");
    fs::write(&tampered, lines.join("\n")).unwrap();
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&tampered)
        .assert()
        .code(2);
    // Not yet valid.
    d.cmd()
        .args(["install", "--now", &at(T0 - 2 * DAY)])
        .arg(&license)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("set the clock"));
    assert!(!d.state_file("license").exists());
    // No keyring.
    fs::remove_file(d.state_file("keyring.toml")).unwrap();
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--keyring"));
    // A bad --now.
    d.cmd()
        .args(["check", "--now", "tomorrow"])
        .assert()
        .code(2);
}

#[test]
fn install_from_stdin_with_keyring_option_and_env_state_dir() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    let keyring = d.root.path().join("ring.toml");
    fs::rename(d.state_file("keyring.toml"), &keyring).unwrap();
    let mut cmd = assert_cmd::Command::new(common::agent_bin());
    cmd.env("TESSERA_STATE_DIR", d.state.path())
        .env_remove("TESSERA_AGENT_FAILPOINT")
        .arg("--sysroot")
        .arg(d.root.path())
        .args(["install", "--now", &at(T0), "--keyring"])
        .arg(&keyring)
        .arg("-")
        .write_stdin(fs::read(&license).unwrap())
        .assert()
        .code(0);
    assert!(d.state_file("license").exists());
    d.cmd()
        .args(["check", "--now", &at(T0 + DAY), "--keyring"])
        .arg(&keyring)
        .assert()
        .code(0);
}

#[test]
fn configured_ip_is_bound_and_changing_it_needs_a_new_license() {
    let d = Device::appliance();
    fs::write(d.state_file("agent.toml"), "ip = \"192.0.2.10\"\n").unwrap();
    // The vendor binds all five: HW serial, MAC, IP, UUID, disk serial.
    let license = d.licensed(1, T0, |l| l.binding.threshold = 5);
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(0);
    // The agent never looks at interface addresses (DHCP): only its
    // configuration names the bound address.
    d.cmd()
        .args(["check", "--now", &at(T0 + DAY)])
        .assert()
        .code(0);
    // The administrator changes the address: the license no longer binds
    // until a new one is requested and installed.
    fs::write(d.state_file("agent.toml"), "ip = \"192.0.2.99\"\n").unwrap();
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "4 identity component(s) matched, 5 needed",
        ));
    let rebound = d.licensed(2, T0 + 2 * DAY, |l| l.binding.threshold = 5);
    d.cmd()
        .args(["install", "--now", &at(T0 + 2 * DAY)])
        .arg(&rebound)
        .assert()
        .code(0);
    // An invalid address is a configuration error, not a silent skip.
    fs::write(d.state_file("agent.toml"), "ip = \"192.0.2.999\"\n").unwrap();
    d.cmd()
        .args(["check", "--now", &at(T0 + 3 * DAY)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`ip`"));
}

#[test]
fn hardware_change_beyond_the_threshold_is_wrong_device() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&license)
        .assert()
        .code(0);
    // NIC swapped: still 3 of 4.
    fs::write(
        d.root
            .path()
            .join("sys/devices/pci0000:00/0000:00:19.0/net/eth0/address"),
        "00:16:3e:99:99:99\n",
    )
    .unwrap();
    d.cmd()
        .args(["check", "--now", &at(T0 + DAY)])
        .assert()
        .code(0);
    // And the disk too: 2 of 4.
    d.file("sys/block/sda/device/serial", "OTHER-DISK\n");
    d.cmd()
        .args(["check", "--now", &at(T0 + 2 * DAY)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "2 identity component(s) matched, 3 needed",
        ));
}

/// Windows Notepad saves UTF-8 with a byte order mark; such a license file
/// installs like any other, from a file and from standard input.
#[test]
fn a_license_saved_with_a_byte_order_mark_installs() {
    let d = Device::appliance();
    let license = d.licensed(1, T0, |_| {});
    let text = fs::read_to_string(&license).unwrap();
    let saved = d.root.path().join("license-notepad.txt");
    fs::write(&saved, format!("\u{feff}{}", text.replace('\n', "\r\n"))).unwrap();
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&saved)
        .assert()
        .code(0);
    let renewal = d.licensed(2, T0 + DAY, |_| {});
    let text = fs::read_to_string(&renewal).unwrap();
    d.cmd()
        .args(["install", "-", "--now", &at(T0 + DAY)])
        .write_stdin(format!("\u{feff}{text}"))
        .assert()
        .code(0)
        .stdout(predicates::str::contains("sequence 2"));
}

/// A license service on loopback that answers one request with 429 (too
/// many requests, `Retry-After: 30`, a problem body): its URL and the
/// thread, which ends after the answer.
fn one_429() -> (String, std::thread::JoinHandle<()>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            line.clear();
        }
        reader.read_exact(&mut vec![0; length]).unwrap();
        let body = r#"{"code":"rate-limited","detail":"too many requests; ask again in 30 s","status":429}"#;
        write!(
            stream,
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\nretry-after: 30\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    (url, thread)
}

#[test]
fn a_rate_limited_first_activation_exits_4_not_refused() {
    let d = Device::appliance();
    fs::write(d.state_file("agent.toml"), "server_retries = 0\n").unwrap();
    let (url, server) = one_429();
    let out = d
        .cmd()
        .args(["activate", "--json", "--server", &url])
        .assert()
        .code(4)
        .get_output()
        .clone();
    server.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert_eq!(v["exit_code"], 4, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is up but refused the request for now"),
        "{message}"
    );
    assert!(message.contains("try again in 30 s"), "{message}");
    assert!(
        stderr(&out).contains("try again in 30 s"),
        "{}",
        stderr(&out)
    );
}

/// The example command lines of `tessera-agent ARGS --help`: the lines
/// below `Examples:` (without the words after two or more spaces, which
/// say what the line does), each split at `&&`.
fn help_examples(d: &Device, args: &[&str]) -> Vec<String> {
    let out = d
        .cmd()
        .args(args)
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    let Some((_, examples)) = text.split_once("\nExamples:\n") else {
        panic!("no examples in `{}` --help:\n{text}", args.join(" "));
    };
    let lines: Vec<String> = examples
        .lines()
        .map_while(|l| l.strip_prefix("  tessera-agent "))
        .map(|l| l.split("  ").next().unwrap().trim_end().to_owned())
        .flat_map(|l| {
            l.split(" && ")
                .map(|c| c.trim_start_matches("tessera-agent ").to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!lines.is_empty(), "{text}");
    lines
}

/// Splits an example command line into words as a shell would (single
/// quotes only), the input file of a `<` apart.
fn words(line: &str) -> (Vec<String>, Option<String>) {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(core::mem::take(&mut word));
                    any = false;
                }
            }
            _ => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    let stdin = match out.iter().position(|w| w == "<") {
        Some(i) => {
            let file = out.remove(i + 1);
            out.remove(i);
            Some(file)
        }
        None => None,
    };
    (out, stdin)
}

/// The seats the examples name by a UUID prefix: `3f2a` is the Phone
/// System seat of extension 1001 (alice's first), `9c41` bob's first seat.
const EXAMPLE_SEATS: [(&str, &[&str]); 2] = [
    ("3f2a", &["--extension", "1001"]),
    ("9c41", &["--user", "bob"]),
];

/// The UUIDs of the example seats, looked up when first named and kept.
type Seats = Vec<(&'static str, String)>;

fn example_seat(d: &Device, seats: &mut Seats, word: &str) -> Option<String> {
    let (name, filter) = EXAMPLE_SEATS.iter().find(|(s, _)| word.starts_with(s))?;
    if !seats.iter().any(|(s, _)| s == name) {
        let uuid = seat_of(d, filter);
        seats.push((name, uuid));
    }
    seats
        .iter()
        .find(|(s, _)| s == name)
        .map(|(_, uuid)| uuid.clone())
}

/// Runs the examples of `help` (a command path) on the device, in its
/// folder, as they are written, but for the seats named by a UUID prefix
/// ([`EXAMPLE_SEATS`]), which are those of this device.
fn run_examples(d: &Device, help: &[&str], seats: &mut Seats) {
    for line in help_examples(d, help) {
        let (mut args, stdin) = words(&line);
        for a in &mut args {
            if let Some(uuid) = example_seat(d, seats, a) {
                // A unique prefix as long as the example's (at least 8).
                *a = uuid[..a.len().clamp(8, uuid.len())].to_owned();
            }
        }
        let mut cmd = d.cmd();
        cmd.current_dir(d.root.path())
            .args(&args)
            .args(["--now", &at(T0 + DAY)]);
        if let Some(file) = stdin {
            cmd.pipe_stdin(d.root.path().join(file)).unwrap();
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "`tessera-agent {line}` (from `{} --help`) exited {:?}:\n{}{}",
            help.join(" "),
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
    }
}

/// The UUID of the first seat `seats list FILTER` lists.
fn seat_of(d: &Device, filter: &[&str]) -> String {
    let out = d
        .cmd()
        .args(["seats", "list", "--json", "--now", &at(T0 + DAY)])
        .args(filter)
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .and_then(|a| a.first())
        .and_then(|s| s["uuid"].as_str())
        .unwrap_or_else(|| panic!("no seat for {filter:?}: {v}"))
        .to_owned()
}

#[test]
fn every_seats_command_has_examples_that_run() {
    let activated = || {
        let d = Device::appliance();
        let license = d.licensed(1, T0, |_| {});
        d.run(&["install", license.to_str().unwrap()], T0, 0);
        d
    };
    // The overview of `seats --help`, on a device of its own.
    let d = activated();
    run_examples(&d, &["seats"], &mut Vec::new());
    // Each command's own, in an order where each finds the seats it names.
    let d = activated();
    run_examples(&d, &["seats", "assign"], &mut Vec::new());
    let mut seats = Vec::new();
    for (name, _) in EXAMPLE_SEATS {
        example_seat(&d, &mut seats, name);
    }
    for command in [
        "list",
        "summary",
        "addons",
        "reassign",
        "unassign",
        "terminate",
        "export",
        "import",
    ] {
        run_examples(&d, &["seats", command], &mut seats);
    }
}

#[test]
fn a_refused_request_leaves_nothing_behind() {
    let d = Device::appliance();
    let before = || {
        let mut names: Vec<String> = fs::read_dir(d.state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let existing = d.root.path().join("old-request.txt");
    fs::write(&existing, "kept").unwrap();
    let missing = d.root.path().join("no-such-folder/request.txt");
    let new_state = d.root.path().join("state");
    let twice = d.root.path().join("twice.txt");
    // The same file spelled another way: through `..` and through a link
    // to its folder.
    fs::create_dir(d.root.path().join("sub")).unwrap();
    let twice_dotdot = d.root.path().join("sub/../twice.txt");
    std::os::unix::fs::symlink(d.root.path(), d.root.path().join("again")).unwrap();
    let twice_linked = d.root.path().join("again/twice.txt");
    for args in [
        vec!["-o", missing.to_str().unwrap()],
        vec!["-o", existing.to_str().unwrap()],
        vec!["--qr-png", missing.to_str().unwrap()],
        vec!["-o", "/dev/null"],
        vec![
            "-o",
            twice.to_str().unwrap(),
            "--qr-png",
            twice.to_str().unwrap(),
            "--force",
        ],
        vec![
            "-o",
            twice.to_str().unwrap(),
            "--qr-png",
            twice_dotdot.to_str().unwrap(),
        ],
        vec![
            "-o",
            twice.to_str().unwrap(),
            "--qr-svg",
            twice_linked.to_str().unwrap(),
            "--force",
        ],
    ] {
        for state in [d.state.path(), new_state.as_path()] {
            let out = d
                .cmd_at(state)
                .arg("request")
                .args(&args)
                .assert()
                .code(2)
                .get_output()
                .clone();
            assert!(
                stderr(&out).contains("cannot write"),
                "{args:?}: {}",
                stderr(&out)
            );
            assert_eq!(before(), ["keyring.toml"], "{args:?}");
            assert!(!new_state.exists(), "{args:?}");
        }
    }
    assert_eq!(fs::read_to_string(&existing).unwrap(), "kept");
    assert!(!twice.exists());
    // No temporary file is left beside the outputs either.
    let mut beside: Vec<_> = fs::read_dir(d.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    beside.sort();
    assert!(beside.is_empty(), "{beside:?}");
    // Too few components: refused before anything is made.
    let empty = tempfile::tempdir().unwrap();
    assert_cmd::Command::new(common::agent_bin())
        .arg("--state-dir")
        .arg(&new_state)
        .arg("--sysroot")
        .arg(empty.path())
        .arg("request")
        .assert()
        .code(2);
    assert!(!new_state.exists());
    // The same request, deliverable, makes the device key.
    let out = d
        .cmd()
        .args([
            "request",
            "-o",
            missing
                .to_str()
                .unwrap()
                .replace("no-such-folder/", "")
                .as_str(),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stderr(&out).contains("a new device key was created"));
    assert_eq!(before(), ["device.key", "keyring.toml", "lock", "state"]);
}

/// Every file and folder below `dir`, with its kind, for comparing a tree
/// before and after a command.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(here) = todo.pop() {
        for e in fs::read_dir(&here).unwrap() {
            let e = e.unwrap();
            let kind = e.file_type().unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if kind.is_dir() {
                todo.push(e.path());
                out.push(format!("{rel}/"));
            } else if kind.is_symlink() {
                out.push(format!("{rel}@"));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_refused_install_on_a_folder_never_set_up_leaves_nothing_behind() {
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    let d = Device::appliance();
    let keyring = d.state_file("keyring.toml");
    let root = d.root.path();
    // The vendor's answers, to be refused: for another device, with a
    // broken signature, not valid yet, and no license at all.
    let other = d.licensed(1, T0, |l| l.binding.salt[0] ^= 1);
    let not_yet = d.licensed(2, T0, |l| l.not_before = T0 + 10 * DAY);
    let broken = root.join("broken.txt");
    let text = fs::read_to_string(d.licensed(3, T0, |_| {})).unwrap();
    let mut buf = [0u8; tessera_verifier::MAX_OBJECT_LEN];
    let mut bytes =
        tessera_verifier::armor::decode(&text, tessera_verifier::armor::LABEL_LICENSE, &mut buf)
            .unwrap()
            .to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(
        &broken,
        tessera_verifier::armor::encode(&bytes, tessera_verifier::armor::LABEL_LICENSE),
    )
    .unwrap();
    let garbage = root.join("garbage.txt");
    fs::write(&garbage, "not a license\n").unwrap();
    let bad_keyring = root.join("bad-keyring.toml");
    fs::write(&bad_keyring, "format = 1\n[[key]]\n").unwrap();
    let open_keyring = root.join("open-keyring.toml");
    fs::write(&open_keyring, common::keyring_toml()).unwrap();
    fs::set_permissions(&open_keyring, fs::Permissions::from_mode(0o666)).unwrap();
    let (o, n, b, g) = (
        other.to_str().unwrap(),
        not_yet.to_str().unwrap(),
        broken.to_str().unwrap(),
        garbage.to_str().unwrap(),
    );
    let k = keyring.to_str().unwrap();
    let refusals: Vec<(&str, Vec<&str>)> = vec![
        ("another device", vec![o, "--keyring", k]),
        ("broken signature", vec![b, "--keyring", k]),
        ("not valid yet", vec![n, "--keyring", k]),
        ("no license", vec![g, "--keyring", k]),
        (
            "no license file",
            vec!["/nonexistent/license.txt", "--keyring", k],
        ),
        ("a folder for a license", vec!["/", "--keyring", k]),
        ("no keyring", vec![o]),
        (
            "keyring missing",
            vec![o, "--keyring", "/nonexistent/keyring.toml"],
        ),
        (
            "keyring unreadable",
            vec![o, "--keyring", bad_keyring.to_str().unwrap()],
        ),
        (
            "keyring writable by all",
            vec![o, "--keyring", open_keyring.to_str().unwrap()],
        ),
    ];
    // Folders never set up: missing (with missing parents too), empty,
    // holding only the keyring.
    let site = tempfile::tempdir().unwrap();
    let site = site.path();
    let mut left = Vec::new();
    let kinds = ["missing", "missing/parents", "empty", "keyring only"];
    for kind in kinds {
        for (what, args) in &refusals {
            let state = site.join("site/state");
            let _ = fs::remove_dir_all(site.join("site"));
            match kind {
                "missing" => fs::create_dir(site.join("site")).unwrap(),
                "missing/parents" => {}
                "empty" => fs::create_dir_all(&state).unwrap(),
                _ => {
                    fs::create_dir_all(&state).unwrap();
                    fs::copy(&keyring, state.join("keyring.toml")).unwrap();
                }
            }
            let before = (tree(root), tree(site));
            let out = d
                .cmd_at(&state)
                .arg("install")
                .args(args)
                .args(["--now", &at(T0 + DAY)])
                .assert()
                .failure()
                .get_output()
                .clone();
            let after = (tree(root), tree(site));
            if after != before {
                let new = |a: &[String], b: &[String]| {
                    a.iter()
                        .filter(|n| !b.contains(n))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                left.push(format!(
                    "{kind}, {what}: made {:?}, removed {:?}: {}",
                    [new(&after.0, &before.0), new(&after.1, &before.1)].concat(),
                    [new(&before.0, &after.0), new(&before.1, &after.1)].concat(),
                    stderr(&out).lines().last().unwrap_or_default()
                ));
            }
        }
    }
    // Folders refused for what is in or around them, with a license this
    // device would install: links, a FIFO and foreign files planted,
    // unsafe modes and owners, a file on the way, the output full.
    let good = d.licensed(4, T0, |_| {});
    let state = site.join("site/state");
    let outside = site.join("outside");
    type Plant = Box<dyn Fn(&std::path::Path)>;
    let link = |name: &'static str| -> Plant {
        let outside = outside.clone();
        Box::new(move |state: &std::path::Path| {
            fs::create_dir_all(state).unwrap();
            symlink(outside.join(name), state.join(name)).unwrap();
        })
    };
    let mut plants: Vec<(&str, Plant, Vec<&str>)> = vec![
        ("lock a link", link("lock"), vec![]),
        ("device.key a link", link("device.key"), vec![]),
        ("state a link", link("state"), vec![]),
        ("license a link", link("license"), vec![]),
        ("license.new a link", link("license.new"), vec![]),
        ("keyring.toml a link", link("keyring.toml"), vec![]),
        (
            "lock a FIFO",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state).unwrap();
                common::mkfifo(&state.join("lock"));
            }),
            vec![],
        ),
        (
            "a foreign file",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state).unwrap();
                fs::write(state.join("notes.txt"), "mine").unwrap();
            }),
            vec![],
        ),
        (
            "folder writable by all",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state).unwrap();
                fs::set_permissions(state, fs::Permissions::from_mode(0o777)).unwrap();
            }),
            vec![],
        ),
        (
            "parent writable by all",
            Box::new(|state: &std::path::Path| {
                let parent = state.parent().unwrap();
                fs::create_dir_all(parent).unwrap();
                fs::set_permissions(parent, fs::Permissions::from_mode(0o777)).unwrap();
            }),
            vec![],
        ),
        (
            "a file on the way",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state.parent().unwrap().parent().unwrap()).unwrap();
                fs::write(state.parent().unwrap(), "file").unwrap();
            }),
            vec![],
        ),
        (
            "the state folder a file",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state.parent().unwrap()).unwrap();
                fs::write(state, "file").unwrap();
            }),
            vec![],
        ),
    ];
    if rustix::process::geteuid().is_root() {
        plants.push((
            "folder of another owner",
            Box::new(|state: &std::path::Path| {
                fs::create_dir_all(state).unwrap();
                std::os::unix::fs::chown(state, Some(4242), Some(4242)).unwrap();
            }),
            vec![],
        ));
    }
    for (what, plant, _) in &plants {
        let _ = fs::remove_dir_all(site.join("site"));
        let _ = fs::remove_file(site.join("site"));
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&outside).unwrap();
        plant(&state);
        let before = (tree(root), tree(site));
        let out = d
            .cmd_at(&state)
            .arg("install")
            .arg(&good)
            .arg("--keyring")
            .arg(&keyring)
            .args(["--now", &at(T0 + DAY)])
            .assert()
            .failure()
            .get_output()
            .clone();
        if (tree(root), tree(site)) != before {
            left.push(format!(
                "{what}: {:?} -> {:?}: {}",
                before.1,
                tree(site),
                stderr(&out)
            ));
        }
    }
    // A link to a folder not made yet is followed (and the folder made),
    // a report to a full device fails: refused, they leave nothing either.
    for what in ["a link to a missing folder", "standard output full"] {
        let _ = fs::remove_dir_all(site.join("site"));
        let _ = fs::remove_dir_all(&outside);
        fs::create_dir_all(&outside).unwrap();
        let mut cmd = std::process::Command::new(common::agent_bin());
        cmd.env_remove("TESSERA_STATE_DIR")
            .env_remove("TESSERA_AGENT_CONFIG")
            .arg("--state-dir")
            .arg(&state)
            .arg("--sysroot")
            .arg(root)
            .arg("install")
            .arg(&other)
            .arg("--keyring")
            .arg(&keyring)
            .args(["--json", "--now", &at(T0 + DAY)]);
        if what == "standard output full" {
            cmd.stdout(
                fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            );
        } else {
            fs::create_dir_all(site.join("site")).unwrap();
            symlink(outside.join("new-state"), &state).unwrap();
        }
        let before = (tree(root), tree(site));
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{what}");
        if (tree(root), tree(site)) != before {
            left.push(format!(
                "{what}: {:?} -> {:?}: {}",
                before.1,
                tree(site),
                stderr(&out)
            ));
        }
    }
    assert!(left.is_empty(), "{}", left.join("\n"));
}

/// Every code the report shows has its name, whatever the field.
fn all_named(entitlements: &serde_json::Value) -> bool {
    let named = |list: &serde_json::Value| {
        list.as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"].is_string())
    };
    named(&entitlements["profiles"])
        && named(&entitlements["features"])
        && named(&entitlements["bases"])
        && named(&entitlements["services"])
        && entitlements["bases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| named(&b["addons"]))
}

#[test]
fn check_renew_and_status_name_codes_alike_with_the_default_catalog() {
    let d = Device::activated();
    let now = at(T0 + DAY);
    let entitlements = |args: &[&str], code: i32| {
        let out = d
            .cmd()
            .args(args)
            .args(["--json", "--now", &now])
            .assert()
            .code(code)
            .get_output()
            .clone();
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        json["entitlements"].clone()
    };
    let status = entitlements(&["status"], 0);
    assert!(all_named(&status), "{status:#}");
    assert_eq!(status["features"][9]["name"], "call_forwarding");
    assert_eq!(status["services"][1]["name"], "sound-pack");
    assert_eq!(entitlements(&["check"], 0), status);
    // A renewal that cannot reach the server reports the license in force.
    fs::write(
        d.state_file("agent.toml"),
        "server = \"http://127.0.0.1:1\"\nserver_retries = 0\n",
    )
    .unwrap();
    assert_eq!(entitlements(&["renew"], 4), status);
    let out = d
        .cmd()
        .args(["status", "--now", &now])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(text.contains("call_forwarding (10) x300"), "{text}");
    assert!(!text.contains("code "), "{text}");
    // A configured catalog that cannot be read: the check still decides,
    // with the codes unnamed and a note why; status refuses it.
    fs::write(d.state_file("agent.toml"), "catalog = \"missing.toml\"\n").unwrap();
    let out = d
        .cmd()
        .args(["check", "--json", "--now", &now])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json["entitlements"]["profiles"][0]["name"],
        serde_json::Value::Null
    );
    assert!(
        json["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("entitlements are shown by code only")),
        "{json:#}"
    );
    d.cmd()
        .args(["status", "--now", &now])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("missing.toml"));
}

#[test]
fn an_output_in_a_missing_folder_names_the_folder_and_what_to_do() {
    let d = Device::activated();
    let missing = d.root.path().join("no such folder");
    let file = missing.join("request.txt");
    let file = file.to_str().unwrap();
    let t = at(T0 + DAY);
    for args in [
        vec!["request", "-o", file, "--now", &t],
        vec!["request", "--qr-png", file, "--now", &t],
        vec!["request", "--qr-svg", file, "--now", &t],
        vec!["seats", "export", "-o", file, "--now", &t],
    ] {
        let out = d.cmd().args(&args).assert().code(2).get_output().clone();
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "the folder {} does not exist; create it first (mkdir -p '{}')",
                missing.display(),
                missing.display()
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains("os error"), "{args:?}: {err}");
    }
    // A file where the folder should be.
    let not_folder = d.root.path().join("license-1-1767225600.txt/request.txt");
    let out = d
        .cmd()
        .args(["request", "-o", not_folder.to_str().unwrap(), "--now", &t])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr(&out).contains("is not a folder"), "{}", stderr(&out));
}

/// Every regular file of the state folder and its bytes.
fn state_files(d: &Device) -> std::collections::BTreeMap<String, Vec<u8>> {
    fs::read_dir(d.state.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn no_output_replaces_the_agents_own_files_even_with_force() {
    let d = Device::activated();
    // The seat store exists, so that an export over it has a file to hit.
    d.run(&["seats", "export"], T0, 0);
    let state = d.state.path().to_owned();
    let own = |name: &str| state.join(name).to_str().unwrap().to_owned();
    // The state folder through a link, and a hard link to the device key
    // outside it: the same files under other names.
    let link = d.root.path().join("state-link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    let through_link = link.join("state").to_str().unwrap().to_owned();
    fs::create_dir(state.join("sub")).unwrap();
    let dotdot = state.join("sub/../device.key").to_str().unwrap().to_owned();
    let hard = d.root.path().join("key-copy");
    fs::hard_link(state.join("device.key"), &hard).unwrap();
    let hard = hard.to_str().unwrap().to_owned();
    let state_dir = state.to_str().unwrap().to_owned();
    let state_slash = format!("{state_dir}/");
    let request =
        |flag: &str, path: &str| vec!["request".to_owned(), flag.to_owned(), path.to_owned()];
    let export = |path: &str| ["seats", "export", "-o", path].map(str::to_owned).to_vec();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (request("-o", &own("device.key")), "device.key"),
        (request("-o", &own("state")), "state"),
        (request("--qr-png", &own("license")), "license"),
        (request("--qr-svg", &own("keyring.toml")), "keyring.toml"),
        (request("-o", &own("lock")), "lock"),
        (request("-o", &own("agent.toml")), "agent.toml"),
        (request("-o", &own("state.corrupt")), "state.corrupt"),
        (
            request("-o", &own("license.new-0123456789abcdef")),
            "license.new-0123456789abcdef",
        ),
        (request("-o", &own("seats.db-wal")), "seats.db-wal"),
        (request("-o", &state_dir), "state folder"),
        (request("-o", &state_slash), "state folder (slash)"),
        (request("-o", &through_link), "state through a link"),
        (request("-o", &dotdot), "device.key through .."),
        (request("-o", &hard), "hard link to device.key"),
        (export(&own("seats.db")), "seats.db"),
        (export(&own("device.key")), "export"),
    ];
    for (args, case) in cases {
        let before = state_files(&d);
        let out = d
            .cmd()
            .args(&args)
            .args(["--force", "--now", &at(T0 + DAY)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(err.contains("cannot write"), "{case}: {err}");
        assert!(err.contains("not even with --force"), "{case}: {err}");
        assert!(err.contains("write the output elsewhere"), "{case}: {err}");
        assert_eq!(state_files(&d), before, "{case}");
    }
    // A configuration or keyring file named outside the state folder.
    let config = d.root.path().join("custom.toml");
    fs::write(&config, "").unwrap();
    let keyring = d.root.path().join("ring.toml");
    fs::copy(state.join("keyring.toml"), &keyring).unwrap();
    for args in [
        vec![
            "--config",
            config.to_str().unwrap(),
            "request",
            "-o",
            config.to_str().unwrap(),
        ],
        vec![
            "seats",
            "--keyring",
            keyring.to_str().unwrap(),
            "export",
            "-o",
            keyring.to_str().unwrap(),
        ],
    ] {
        let out = d
            .cmd()
            .args(&args)
            .args(["--force", "--now", &at(T0 + DAY)])
            .assert()
            .code(2)
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(
            err.contains("configuration or keyring file"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(fs::read(&config).unwrap(), b"");
    // The device still works: its key signs, its license is in force.
    d.run(&["check"], T0 + DAY, 0);
    d.run(&["request", "-o", "-"], T0 + DAY, 0);
    // A file of another name in the state folder is no file of the
    // agent's: written as any output is.
    let other = d.root.path().join("request.txt");
    d.run(&["request", "-o", other.to_str().unwrap()], T0 + DAY, 0);
}
