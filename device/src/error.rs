//! Errors of the agent: every message says what was wrong and what to do.

use std::path::PathBuf;

use tessera_verifier::text::escaped;

use crate::catalog::CatalogError;
use crate::clock::TimeError;
use crate::config::one_line;
use crate::config::ConfigError;
use crate::device_key::DeviceKeyError;
use crate::probe::ProbeError;
use crate::seats::SeatError;
use crate::store::{shown, FileError, StoreError, Unbound};

fn unbound_reason(why: &Unbound) -> String {
    match why {
        Unbound::OlderAgent => "it was written by an older tessera-agent and is not sealed under this device's key (anybody can write such a record, so it is never taken over)".into(),
        Unbound::NoDeviceKey(problem) => format!("the device key that seals it cannot be used ({problem})"),
    }
}

fn no_serial_off_appliance(
    config: &std::path::Path,
    platform: &str,
    configured: bool,
    hw_serial_set: bool,
) -> String {
    let config = shown(config);
    let how = if configured {
        format!("set to {platform} by `platform` in {config}")
    } else {
        format!("detected as {platform} (a hypervisor was found; `tessera-agent probe` shows the evidence)")
    };
    if hw_serial_set {
        format!(
            "this device has no serial to put in a request: `hw_serial` in {config} is ignored because the platform is {how}, and hardware serials are bound on appliances only: on an appliance, set `platform = \"hw\"` in {config}; on a VM or Cloud PBX, set `sw_serial` (the serial the vendor assigned) there instead"
        )
    } else {
        format!(
            "this device has no serial to put in a request: the platform is {how}, so no hardware serial is read: on a VM or Cloud PBX, set `sw_serial` (the serial the vendor assigned) in {config}; on an appliance, set `platform = \"hw\"` (and `hw_serial` as printed on it) there"
        )
    }
}

/// Why an agent command could not do its work. Every variant maps to exit
/// code 2 ([`crate::mode::EXIT_REFUSED`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The verifier refused the license (or request).
    #[error("{0}")]
    Refused(#[from] tessera_verifier::Error),
    /// No license is installed.
    #[error(
        "no license is installed in {}: run `tessera-agent request -o request.txt`, send the file to the vendor and install the answer with `tessera-agent install FILE`", shown(.0)
    )]
    NotActivated(PathBuf),
    /// The state folder does not exist: a mistyped `--state-dir` or
    /// `TESSERA_STATE_DIR` (or a device whose folder was never made), not
    /// a device waiting for its activation.
    #[error(
        "there is no state folder {}: check --state-dir or TESSERA_STATE_DIR (default {}); on a device never activated, `tessera-agent request -o request.txt` creates it", shown(.0), crate::agent::DEFAULT_STATE_DIR
    )]
    NoStateDir(PathBuf),
    /// The state record is corrupt or missing while a license is installed.
    #[error(
        "the license state {} is corrupt or missing, so no license can be trusted and the PBX gives no full service; run `tessera-agent request`, send the request to the vendor and install the fresh license with `tessera-agent install --recover FILE`", shown(.0)
    )]
    StateCorrupt(PathBuf),
    /// The state record is not bound to this device: written by an older
    /// agent (unkeyed), or the device key that binds it is gone.
    #[error(
        "the license state {} cannot be trusted: {}; so no license can be trusted and the PBX gives no full service; run `tessera-agent request`, send the request to the vendor and install the fresh license with `tessera-agent install --recover FILE`",
        shown(.path),
        unbound_reason(.why)
    )]
    StateUnbound {
        /// The state file.
        path: PathBuf,
        /// Why.
        why: Unbound,
    },
    /// The license is for another serial than this device's.
    #[error(
        "the license is for {} but this device has {}: it is another PBX's license; request a license from this device (`tessera-agent request -o request.txt`) and install the vendor's answer",
        escaped(.license),
        escaped(.device)
    )]
    WrongSerial {
        /// The license's serial (and the HW serial it converts).
        license: String,
        /// This device's serial.
        device: String,
    },
    /// The clock is earlier than the time the state already recorded (by
    /// more than the license's rollback tolerance).
    #[error(
        "the device clock says {now}, but this device already recorded {last_seen}, and its clock may not go back: set the clock to the correct time and check again. If {last_seen} is itself wrong (the clock was once set ahead), a newer license from the vendor resets it: run `tessera-agent request -o request.txt`, send the file to the vendor and install the answer with `tessera-agent install --recover FILE`"
    )]
    ClockRollback {
        /// The time the state recorded.
        last_seen: String,
        /// The device's time.
        now: String,
    },
    /// `install --recover` after a clock set back, with a license that is
    /// not newer than the one in force.
    #[error(
        "after a clock set back, `install --recover` takes only a license newer than the one in force (sequence {in_force}; this file has sequence {given}), which the vendor signs for a renewal request: run `tessera-agent request -o request.txt`, send it to the vendor and install the answer with --recover"
    )]
    RecoveryNeedsNewerLicense {
        /// Sequence of the license in force.
        in_force: u32,
        /// Sequence of the file given.
        given: u32,
    },
    /// `install --recover` was given a license issued before the recovery.
    #[error(
        "after a state loss only a license issued now can be installed (this one was issued {issued}); run `tessera-agent request` and ask the vendor for a fresh license"
    )]
    RecoveryNeedsFreshLicense {
        /// Issue time of the refused license.
        issued: String,
    },
    /// The license is not in force yet at the device's time.
    #[error(
        "the license starts {starts} but the device clock says {now}: set the clock correctly, or install the license after it starts; the license in force is unchanged"
    )]
    NotYetValid {
        /// Start of the license.
        starts: String,
        /// The device's time.
        now: String,
    },
    /// No keyring was configured.
    #[error(
        "no keyring: pass --keyring FILE, set `keyring` in {}, or put the vendor's keyring.toml in the state directory", shown(.config)
    )]
    NoKeyring {
        /// The configuration file consulted.
        config: PathBuf,
    },
    /// The keyring file cannot be used.
    #[error("the keyring {} cannot be used: {}", shown(.path), one_line(&.source.to_string()))]
    Keyring {
        /// The file.
        path: PathBuf,
        /// The keys crate's error.
        #[source]
        source: tessera_keys::KeyError,
    },
    /// The device has neither a SW serial nor a HW serial for its request.
    #[error(
        "this device has no serial to put in a request: set `sw_serial` (the serial the vendor assigned) or, on an appliance, `hw_serial` in {}", shown(.config)
    )]
    NoSerial {
        /// The configuration file consulted.
        config: PathBuf,
    },
    /// The device has no SW serial, and on its platform (vm or cloud,
    /// detected or configured) no HW serial is read: a configured
    /// `hw_serial` is ignored there.
    #[error("{}", no_serial_off_appliance(.config, .platform, *.configured, *.hw_serial_set))]
    NoSerialOffAppliance {
        /// The configuration file consulted.
        config: PathBuf,
        /// The platform (`vm`, `cloud`).
        platform: &'static str,
        /// Whether `platform` in the configuration set it (else detected).
        configured: bool,
        /// Whether `hw_serial` is configured (and ignored).
        hw_serial_set: bool,
    },
    /// An armored tessera file of another kind where a license was
    /// expected (a request given to `install`).
    #[error("this is {found} (`-----BEGIN {}-----`), not a license (`-----BEGIN TESSERA LICENSE-----`): {advice}", escaped(.label))]
    NotALicense {
        /// The kind found, in words.
        found: &'static str,
        /// The armor label found.
        label: String,
        /// What to do.
        advice: &'static str,
    },
    /// A tessera object of another kind, binary or in a QR code image,
    /// where a license was expected (a photo of the request's QR code
    /// given to `install`).
    #[error("{holder} {found}, not a license: {advice}")]
    WrongObject {
        /// Where it was found (`this image's QR code holds`, `this file is`).
        holder: &'static str,
        /// The kind found, in words.
        found: &'static str,
        /// What to do.
        advice: &'static str,
    },
    /// The input file cannot be read.
    #[error("cannot read {}: {reason}", escaped(.path))]
    Input {
        /// The file (or `-`).
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The output file cannot be written.
    #[error("cannot write {}: {reason}", escaped(.path))]
    Output {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed ({0}); try again once the system has finished booting")]
    Random(String),
    /// The request could not be encoded.
    #[error("the request could not be built ({0}); report this to the vendor with `tessera-agent probe --json`")]
    Encode(String),
    /// State directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file the agent reads by itself (keyring, configuration) was
    /// refused or cannot be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Identity probe.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// Device key.
    #[error(transparent)]
    DeviceKey(#[from] DeviceKeyError),
    /// Catalog.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Time.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// Seats.
    #[error(transparent)]
    Seats(#[from] SeatError),
    /// A QR code image (a license photographed or captured from a screen).
    #[error("the license image: {0}")]
    Qr(#[from] tessera_qr::QrError),
    /// Online renewal: no server, a bad URL or pin, the server out of
    /// reach or refusing.
    #[error("{0}")]
    Online(#[from] crate::online::OnlineError),
}

impl AgentError {
    /// A stable, machine-readable code for JSON output: the verifier's
    /// code for a refused license, otherwise the kind of failure.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(e) => e.code(),
            Self::NotActivated(_) => "not_activated",
            Self::NoStateDir(_) => "no_state_dir",
            Self::StateCorrupt(_) | Self::StateUnbound { .. } => "state_corrupt",
            Self::RecoveryNeedsFreshLicense { .. } => "recovery_needs_fresh_license",
            Self::ClockRollback { .. } => "clock_rollback",
            Self::WrongSerial { .. } => "wrong_serial",
            Self::RecoveryNeedsNewerLicense { .. } => "recovery_needs_newer_license",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::NoKeyring { .. } => "no_keyring",
            Self::Keyring { .. } => "keyring",
            Self::NoSerial { .. } | Self::NoSerialOffAppliance { .. } => "no_serial",
            Self::Input { .. } => "input",
            // The verifier's code for the same finding, kept for scripts.
            Self::NotALicense { .. } => "armor.wrong_label",
            // The verifier's code for the same finding.
            Self::WrongObject { .. } => "wrong_type",
            Self::Output { .. } => "output",
            Self::Random(_) => "random",
            Self::Encode(_) => "encode",
            Self::Store(StoreError::Locked(_)) => "locked",
            Self::Store(StoreError::LicenseDamaged { .. }) => "license_damaged",
            Self::Store(StoreError::NoStateDir(_)) => "no_state_dir",
            Self::Store(StoreError::NotStateFolder { foreign: false, .. }) => "not_activated",
            Self::Store(StoreError::NotStateFolder { foreign: true, .. }) => "not_state_folder",
            Self::Store(StoreError::FailPoint(_)) => "fail_point",
            Self::Store(StoreError::File(e)) | Self::File(e) => e.code(),
            Self::Config(ConfigError::File(e)) => e.code(),
            Self::Config(_) => "config",
            Self::Probe(ProbeError::TooFew { .. }) => "too_few_components",
            Self::Probe(_) => "identity",
            Self::DeviceKey(DeviceKeyError::File(e))
            | Self::Store(StoreError::DeviceKey(DeviceKeyError::File(e)))
                if e.code() != "io" =>
            {
                e.code()
            }
            Self::DeviceKey(_) | Self::Store(StoreError::DeviceKey(_)) => "device_key",
            Self::Catalog(CatalogError::File(e)) if e.code() != "io" => e.code(),
            Self::Catalog(_) => "catalog",
            Self::Time(_) => "time",
            Self::Seats(e) => e.code(),
            Self::Qr(_) => "qr",
            Self::Online(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_say_what_to_do() {
        let cases: [(AgentError, &str, &str); 4] = [
            (
                tessera_verifier::Error::Superseded { seq: 4 }.into(),
                "superseded",
                "sequence 4",
            ),
            (
                AgentError::NotActivated("/var/lib/tessera".into()),
                "not_activated",
                "tessera-agent request",
            ),
            (
                AgentError::StateCorrupt("/var/lib/tessera/state".into()),
                "state_corrupt",
                "install --recover",
            ),
            (
                StoreError::Locked("/x".into()).into(),
                "locked",
                "try again",
            ),
        ];
        for (e, code, hint) in cases {
            assert_eq!(e.code(), code);
            assert!(e.to_string().contains(hint), "{e}");
        }
    }
}
