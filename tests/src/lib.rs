//! # tessera-tests
//!
//! End-to-end scenarios across the workspace, one file per lifecycle in
//! `tests/tests/`: the real `tessera` (vendor) and `tessera-agent` (device)
//! binaries, with license and request files carried by hand between a
//! vendor folder and a site folder, and time simulated with `--now`.
//!
//! The harness of the scenarios is `tests/tests/common/mod.rs`, and the
//! map of every licensing rule to its tests is `docs/rules.md`. This library
//! holds what other crates' tests share: [`softhsm`], a SoftHSM2 token per
//! test for the PKCS#11 signer, [`postgres`], a PostgreSQL server per test
//! for the ledger's PostgreSQL backend, and [`tools`], external tools that are
//! skipped when missing on a developer machine and required under CI.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::expect_used, clippy::panic)]

pub mod postgres;
pub mod smtp;
pub mod softhsm;
pub mod tools;
