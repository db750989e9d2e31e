//! Mass import of 10,000 seats (the bar: under 2 s in release mode).
//!
//! ```sh
//! CARGO_TARGET_DIR=target/seats cargo bench -p tessera-device --bench seats_import
//! ```
//!
//! Two measurements, each importing the same 10,000-row file into an empty
//! seat store on disk (WAL, `synchronous = FULL`, one transaction):
//!
//! - `library`: `mass::read_rows` + `SeatDb::change` with
//!   `mass::apply_rows` (reading, every rule, the write);
//! - `cli`: the whole `tessera-agent seats import FILE` process on an
//!   activated device (start-up, lock, license verification, names,
//!   import), as an operator runs it.
//!
//! Criterion reports each; then a plain timing of 5 runs of each prints
//! `IMPORT_10000 <what> median_ms=...` lines.

#[path = "../tests/common/mod.rs"]
mod common;

use core::error::Error;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BatchSize, Criterion};
use tessera_device::seats::mass;
use tessera_device::seats::{Limits, Names, SeatDb, SEATS_FILE};
use tessera_device::store::Folder;

const ROWS: u32 = 10_000;

type Res<T> = Result<T, Box<dyn Error>>;

fn csv_text() -> String {
    let mut text = String::from("extension_key,number,user,addon_1,addon_2\n");
    for n in 0..ROWS {
        let addons = match n % 3 {
            0 => "call_recording,device_ip_phone",
            1 => "device_ip_phone,",
            _ => ",",
        };
        text.push_str(&format!(
            "Phone System,{},user{n}@example.com,{addons}\n",
            10_000 + n
        ));
    }
    text
}

fn limits() -> Limits {
    Limits::new().base(4, ROWS, &[(1, ROWS), (4, ROWS)])
}

/// One import through the library into an empty store in `dir`.
fn import_library(dir: &Path, text: &str) -> Res<u64> {
    let names = Names::default();
    let l = limits();
    let folder = Folder::open(dir, false)?.ok_or("no folder")?;
    let mut db = SeatDb::open(&folder, None)?;
    let (rows, mut errors) = mass::read_rows(text.as_bytes(), &names)?;
    let out = db.change(
        |p| mass::apply_rows(p, &l, rows, &mut errors, 0, &names, &mut |_, _, _| {}),
        None,
    )?;
    if !errors.is_empty() || out.created != u64::from(ROWS) {
        return Err(format!("unexpected import: {out:?}, {} errors", errors.len()).into());
    }
    Ok(out.created)
}

fn clear_store(state: &Path) -> Res<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = state.join(format!("{SEATS_FILE}{suffix}"));
        if p.exists() {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

/// An activated appliance whose license has 10,000 Phone System seats.
fn activated() -> Res<(common::Device, PathBuf)> {
    let d = common::Device::appliance();
    let lic = d.licensed(1, common::T0, |l| {
        l.entitlements.bases[0].count = ROWS;
        for a in &mut l.entitlements.bases[0].addons {
            a.count = ROWS;
        }
    });
    let ok = d
        .std_cmd()
        .args(["install", "--now", &common::at(common::T0)])
        .arg(&lic)
        .output()?
        .status
        .success();
    if !ok {
        return Err("install failed".into());
    }
    let file = d.root.path().join("mass.csv");
    std::fs::write(&file, csv_text())?;
    Ok((d, file))
}

fn import_cli(d: &common::Device, file: &Path) -> Res<()> {
    let out = d
        .std_cmd()
        .args(["seats", "import", "--now", &common::at(common::T0 + 86_400)])
        .arg(file)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(())
}

fn median_ms(mut f: impl FnMut() -> Res<Duration>) -> Res<f64> {
    let mut v = Vec::new();
    for _ in 0..5 {
        v.push(f()?.as_secs_f64() * 1000.0);
    }
    v.sort_by(f64::total_cmp);
    Ok(v.get(2).copied().unwrap_or(f64::NAN))
}

fn run() -> Res<()> {
    let text = csv_text();
    let scratch = tempfile::tempdir()?;
    let (device, file) = activated()?;
    let state = device.state.path().to_owned();
    import_library(scratch.path(), &text)?;
    clear_store(scratch.path())?;
    clear_store(&state)?;
    import_cli(&device, &file)?;

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut failed: Option<String> = None;
    {
        let mut g = c.benchmark_group("seats_import_10000");
        g.bench_function("library", |b| {
            b.iter_batched(
                || clear_store(scratch.path()),
                |_| {
                    if let Err(e) = import_library(scratch.path(), &text) {
                        failed = Some(e.to_string());
                    }
                },
                BatchSize::PerIteration,
            );
        });
        g.bench_function("cli", |b| {
            b.iter_batched(
                || clear_store(&state),
                |_| {
                    if let Err(e) = import_cli(&device, &file) {
                        failed = Some(e.to_string());
                    }
                },
                BatchSize::PerIteration,
            );
        });
        g.finish();
    }
    c.final_summary();
    if let Some(e) = failed {
        return Err(e.into());
    }

    let lib = median_ms(|| {
        clear_store(scratch.path())?;
        let t = Instant::now();
        import_library(scratch.path(), &text)?;
        Ok(t.elapsed())
    })?;
    let cli = median_ms(|| {
        clear_store(&state)?;
        let t = Instant::now();
        import_cli(&device, &file)?;
        Ok(t.elapsed())
    })?;
    println!("IMPORT_10000 library median_ms={lib:.1}");
    println!("IMPORT_10000 cli median_ms={cli:.1} (bar: 2000)");
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seats_import: {e}");
        std::process::exit(1);
    }
}
