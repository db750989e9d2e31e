//! A plain loop for `valgrind --tool=callgrind`: instruction counts (Ir)
//! are repeatable on a noisy machine where times are not.
//!
//! `TESSERA_IR_MODE=verify|verify_prepared|strict|strict_from_bytes
//! TESSERA_IR_N=<n>` runs the full verify (raw or prepared keyring), or the bare primitive on the same bytes, `n`
//! times. `bench/ir.sh` (from `bench/compare.sh` and CI) runs it with two values of `n` and divides the
//! difference, so setup cost cancels out. Without the variables (as under
//! `cargo bench`) it runs each mode once.

mod common;

use core::hint::black_box;

use common::Fixture;

fn main() {
    let fixture = Fixture::new();
    let n: u64 = std::env::var("TESSERA_IR_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let modes = match std::env::var("TESSERA_IR_MODE") {
        Ok(m) => vec![m],
        Err(_) => vec![
            "verify".into(),
            "verify_prepared".into(),
            "strict".into(),
            "strict_from_bytes".into(),
        ],
    };
    for mode in modes {
        let f: &dyn Fn() -> bool = match mode.as_str() {
            "verify" => &|| fixture.full_verify(),
            "verify_prepared" => &|| fixture.full_verify_prepared(),
            "strict" => &|| fixture.bare_verify_strict(),
            "strict_from_bytes" => &|| fixture.bare_from_bytes_verify_strict(),
            other => {
                eprintln!("unknown TESSERA_IR_MODE {other}");
                std::process::exit(2);
            }
        };
        let mut ok = 0u64;
        for _ in 0..n {
            ok += u64::from(black_box(f()));
        }
        if ok != n {
            eprintln!("{mode} failed");
            std::process::exit(1);
        }
        println!("{mode}: {n} run(s) ok");
    }
}
