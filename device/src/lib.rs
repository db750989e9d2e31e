//! # tessera-device
//!
//! The reference device agent a Linux-based PBX runs, and the model for
//! firmware integrators: it finds out who the device is, makes signed
//! request files, installs licenses, keeps the verifier's state safe
//! across crashes and runs the periodic check. The binary `tessera-agent`
//! is a thin command line over [`Agent`].
//!
//! | module | what |
//! |---|---|
//! | [`probe`] | identity components from sysfs, procfs and the configuration; VM detection |
//! | [`config`] | `agent.toml` |
//! | [`device_key`] | the device's Ed25519 key (signs requests; an identity component) |
//! | [`store`] | the state directory: owner and mode checks, no links or FIFOs, size caps, lock, atomic writes, the state sealed under the device key, crash recovery, fail points |
//! | [`agent`] | `request`, `install`, `check`, `status` |
//! | [`report`] | what a check tells people and scripts (text, JSON) |
//! | [`mode`] | PBX modes and exit codes |
//! | [`catalog`] | names for catalog codes |
//! | [`clock`] | times on the command line |
//! | [`online`] | online renewal with the vendor's license service: pinned HTTPS, retries with backoff and jitter |
//! | [`seats`] | seat management: assignments of profiles, base licenses and add-ons, enforced against the license |
//!
//! The license itself is judged only by [`tessera_verifier::verify`], and
//! identity values are normalized only by
//! [`tessera_verifier::binding::normalize`]: the agent never re-implements
//! the format.
//!
//! ```no_run
//! use tessera_device::{Agent, AgentOptions, clock};
//! # fn main() -> Result<(), tessera_device::AgentError> {
//! let agent = Agent::new(AgentOptions::new("/var/lib/tessera"))?;
//! let report = agent.check(clock::system_now()?)?;
//! println!("{}", report.summary());
//! std::process::exit(report.exit_code.into());
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod device_key;
pub mod error;
pub mod mode;
pub mod online;
pub mod probe;
pub mod report;
pub mod seats;
pub mod store;
#[cfg(test)]
mod testing;

pub use agent::{Agent, AgentOptions, RequestOutcome};
pub use error::AgentError;
pub use mode::Mode;
pub use probe::{Probe, ProbeSettings};
pub use report::Report;
pub use store::{FailAction, FailHook, FailPoint, Store};
