//! Golden CLI tests: every command's output and exit code, checked in
//! under `tests/cmd/*.trycmd` (inputs in `*.in/`, made by
//! `tests/fixtures.rs`). Update after an intended change with
//! `TRYCMD=overwrite cargo test -p tessera-issuer --test cli` and review
//! the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn golden() {
    trycmd::TestCases::new()
        .register_bin(
            "tessera",
            std::path::Path::new(env!("CARGO_BIN_EXE_tessera")),
        )
        .env("TESSERA_NOW", "2026-01-02T09:00:00Z")
        .env("TESSERA_OPERATOR", "alice")
        .env("TESSERA_PASSPHRASE", "correct horse battery staple")
        .env("TESSERA_KEY", "signing.pem")
        .env("TESSERA_LEDGER", "tessera.db")
        // No configuration file of the machine's user.
        .env("XDG_CONFIG_HOME", "/nonexistent/tessera-tests")
        // Empty is unset: nothing of the developer's environment leaks in.
        .env("TESSERA_CONFIG", "")
        .env("TESSERA_KEYRING", "")
        .env("TESSERA_CATALOG", "")
        // The scenarios replay a year with one request file per device;
        // errors.trycmd shows the default window's refusal.
        .env("TESSERA_REQUEST_WINDOW", "400d")
        .case("tests/cmd/*.trycmd");
}
