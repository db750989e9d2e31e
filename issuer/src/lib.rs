//! # tessera-issuer
//!
//! The vendor's license tool (binary `tessera`): it turns an order plus a
//! device request into a signed license file, records everything in a
//! tamper-evident SQLite ledger and never lets an order break a rule of
//! docs/rules.md.
//!
//! The binary is thin; the logic lives here:
//!
//! | module | what |
//! |---|---|
//! | [`catalog`] | products, profiles, features, base licenses, add-ons, services, platform defaults |
//! | [`order`] | orders (TOML/JSON) and their resolution to catalog codes |
//! | [`policy`] | the licensing rules (docs/rules.md), one error variant each |
//! | [`calendar`] | dates, terms, proration, durations |
//! | [`registry`] | the PBX registry: serials allocated before activation, the policy each PBX keeps |
//! | [`ledger`] | the SQLite ledger: hash chain, sequences, HW → SW serials, schedules |
//! | [`issuance`] | issue / renew / replace inside one ledger transaction |
//! | [`lifecycle`] | modify / decommission / share / void after the activation |
//! | [`billing`] | billing quantities of each charge-relevant event |
//! | [`bulk`] | CSV bulk issuance, batched and resumable |
//! | [`cli`], [`commands`] | the command line and one module per command |
//! | [`config`] | settings: option, environment, `tessera.toml`, default |
//! | [`output`] | atomic output files, `-` for stdin / stdout |
//! | [`validate`] | the one validation layer: text fields, serials, requests, licenses |
//! | [`error`] | errors and exit codes |
//!
//! The wire format is `tessera-verifier`'s: licenses are built as
//! [`tessera_verifier::encode::LicenseData`] and signed with
//! [`tessera_verifier::encode::sign_license`], never encoded here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod activation;
pub mod billing;
pub mod bulk;
pub mod calendar;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod issuance;
pub mod ledger;
pub mod lifecycle;
pub mod notify;
pub mod order;
pub mod output;
pub mod policy;
pub mod registry;
pub mod signing;
pub mod validate;
