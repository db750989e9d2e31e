//! # tessera-tests
//!
//! End-to-end scenarios across the workspace, one file per lifecycle in
//! `tests/tests/`: the real `tessera` (vendor) and `tessera-agent` (device)
//! binaries, with license and request files carried by hand between a
//! vendor folder and a site folder, and time simulated with `--now`.
//!
//! This library is empty on purpose; the harness is
//! `tests/tests/common/mod.rs` and the map of every DOMAIN rule to its
//! tests is `tests/README.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
