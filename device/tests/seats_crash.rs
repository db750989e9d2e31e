//! A mass import killed with SIGKILL leaves no partial import: the agent
//! is stopped at the seat fail points (half of the rows written inside the
//! transaction; every row written, before the commit) and at arbitrary
//! moments, then the store must hold none of the file's rows or all of
//! them, and the next import completes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;

use common::{at, Device, T0};
use tessera_verifier::samples::DAY;

const ROWS: usize = 3000;
const NOW: i64 = T0 + DAY;

fn activated() -> Device {
    let d = Device::appliance();
    let lic = d.licensed(1, T0, |l| {
        l.entitlements.bases[0].count = 10_000;
        l.entitlements.bases[0].addons[0].count = 10_000;
    });
    d.cmd()
        .args(["install", "--now", &at(T0)])
        .arg(&lic)
        .assert()
        .success();
    d
}

/// A mass-configuration file of `ROWS` Phone System seats; `variant`
/// changes every number and add-on.
fn csv(d: &Device, variant: u32) -> PathBuf {
    let mut text = String::from("extension_key,number,user,addon_1\n");
    for n in 0..ROWS {
        let addon = if variant == 0 { "call_recording" } else { "" };
        text.push_str(&format!(
            "Phone System,{},user{n}@example.com,{addon}\n",
            u32::try_from(n).unwrap() + 10_000 * (variant + 1)
        ));
    }
    let path = d.root.path().join(format!("mass-{variant}.csv"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The seats as `(user, number, add-ons)`, sorted.
fn seats(d: &Device) -> Vec<(String, String, usize)> {
    let out = d
        .cmd()
        .args(["seats", "list", "--json", "--now", &at(NOW)])
        .assert()
        .success()
        .get_output()
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut v: Vec<(String, String, usize)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap().to_owned(),
                s["extension"].as_str().unwrap().to_owned(),
                s["addons"].as_array().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

fn import(d: &Device, file: &Path) {
    d.cmd()
        .args(["seats", "import", "--now", &at(NOW)])
        .arg(file)
        .assert()
        .success();
}

/// Starts an import with `env` set, waits for the pausing fail point
/// (or `delay`), and kills the agent with SIGKILL.
fn kill_import(d: &Device, file: &Path, point: Option<&str>, delay: Duration) {
    let mut cmd = d.std_cmd();
    cmd.args(["seats", "import", "--now", &at(NOW)])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(p) = point {
        cmd.env("TESSERA_AGENT_FAILPOINT", format!("{p}:pause"));
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    match point {
        Some(p) => {
            let want = format!("tessera-agent: fail point {p} reached");
            loop {
                match rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(line) if line == want => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = child.kill();
                        panic!("{p}: the agent never reached the fail point ({e})");
                    }
                }
            }
        }
        None => std::thread::sleep(delay),
    }
    // SIGKILL: no destructor, no rollback by the process itself.
    child.kill().unwrap();
    let _ = child.wait().unwrap();
}

#[test]
fn an_import_killed_at_a_fail_point_leaves_no_row() {
    for point in ["seats-half-written", "seats-written"] {
        let d = activated();
        let file = csv(&d, 0);
        kill_import(&d, &file, Some(point), Duration::ZERO);
        assert!(seats(&d).is_empty(), "{point}: a partial import survived");
        import(&d, &file);
        let all = seats(&d);
        assert_eq!(all.len(), ROWS, "{point}");
        // A second file changing every row, killed half way: the first
        // file's seats, all of them, unchanged.
        let changed = csv(&d, 1);
        kill_import(&d, &changed, Some(point), Duration::ZERO);
        assert_eq!(seats(&d), all, "{point}: a partial change survived");
        import(&d, &changed);
        let after = seats(&d);
        assert_eq!(after.len(), ROWS);
        assert!(after.iter().all(|(_, n, a)| n.starts_with('2') && *a == 0));
    }
}

#[test]
fn an_import_killed_at_any_moment_leaves_none_or_all() {
    // How long a whole import takes here, process start included.
    let probe = activated();
    let probe_file = csv(&probe, 0);
    let started = std::time::Instant::now();
    import(&probe, &probe_file);
    let whole = started.elapsed();

    let d = activated();
    let file = csv(&d, 0);
    for percent in [10u32, 35, 60, 80, 95, 110] {
        let delay = whole * percent / 100;
        kill_import(&d, &file, None, delay);
        let n = seats(&d).len();
        assert!(
            n == 0 || n == ROWS,
            "killed after {delay:?} ({percent}% of {whole:?}): {n} rows"
        );
        if n == ROWS {
            break;
        }
    }
    import(&d, &file);
    assert_eq!(seats(&d).len(), ROWS);
}
