//! The rules of docs/rules.md that an order must keep, each with its own
//! [`PolicyError`] variant and its own test.
//!
//! The functions are pure: the caller (issuance, inside the ledger
//! transaction) gathers the license in force, the sharing server and the
//! schedule from the ledger and passes them in a [`Context`].

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tessera_verifier::claims::{Cycle, Platform, Service, Term};
use tessera_verifier::encode::{EntitlementsData, LicenseData, SharingData};

use crate::calendar::{
    add_cycle, from_unix, is_last_day_of_month, last_term_day, prorated_fraction, rfc3339,
    rfc3339_unix, DAY,
};
use crate::catalog::Catalog;
use crate::order::{total_users, Resolved};

/// Days after a decrease to zero users before the PBX stops (docs/rules.md).
pub const STOP_AFTER_DAYS: i64 = 5;
/// Days after a decrease to zero users before the PBX is deleted (docs/rules.md).
pub const DELETE_AFTER_DAYS: i64 = 14;
/// Changes inside this many days before the term end get a warning
/// (docs/rules.md: changes are recommended at least 2 days before expiry).
pub const WARN_DAYS_BEFORE_TERM_END: i64 = 2;

/// What was wrong with a request signed by a device key the PBX never
/// used ([`PolicyError::UnknownDeviceKey`]; `key` is the first 16 hex
/// digits): the one wording of it. The CLI and the license service append
/// what to do, which differs on purpose: the CLI's operator may accept the
/// key (`--new-device-key`), the service never does.
#[must_use]
pub fn unknown_device_key(serial: &str, key: &str) -> String {
    format!(
        "the request for {serial} is signed by a device key this PBX never used (key {key}): nothing was issued"
    )
}

/// An order or request that breaks a rule. Exit code 2.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Lifetime is not sold for Cloud.
    #[error("a Cloud PBX cannot have a lifetime license; choose monthly, yearly or 5y")]
    LifetimeOnCloud,
    /// Services only for subscriptions.
    #[error("service `{service}` cannot be added to a lifetime PBX: services are for subscription PBXs (monthly, yearly, 5y) only")]
    ServicesOnLifetime {
        /// The service.
        service: String,
    },
    /// A service must start inside the term.
    #[error("service `{service}` starts {start}, outside the PBX term {term_start} .. {term_end}; services co-terminate with the term, so start it inside it")]
    ServiceOutsideTerm {
        /// The service.
        service: String,
        /// Its start.
        start: String,
        /// Term start.
        term_start: String,
        /// Term end.
        term_end: String,
    },
    /// Storage can never be decreased.
    #[error("storage cannot be decreased (from {from} to {to} units), not even with an approval; order at least {from} units")]
    StorageDecrease {
        /// Units in force.
        from: u32,
        /// Units ordered.
        to: u32,
    },
    /// A decrease needs a vendor approval reference.
    #[error("this change decreases {what}; decreases need vendor approval: pass --approval REF")]
    DecreaseNeedsApproval {
        /// What decreases.
        what: String,
    },
    /// Lifetime licenses can never be decreased.
    #[error("this change decreases {what}, but lifetime licenses can never be decreased")]
    DecreaseOnLifetime {
        /// What decreases.
        what: String,
    },
    /// No decrease on the last day of a month.
    #[error("no decrease on the last day of a month ({date}); make the change tomorrow")]
    DecreaseOnLastDayOfMonth {
        /// The day.
        date: NaiveDate,
    },
    /// A sharing client has no licenses of its own.
    #[error("a sharing client has no licenses of its own: remove profiles, features, packages, base licenses, storage and services from the order (they live on server {server})")]
    ClientHasLicenses {
        /// The server.
        server: String,
    },
    /// A Cloud PBX can only be a sharing server.
    #[error("a Cloud PBX can only be a sharing server, not a client; use sharing = \"server\" or \"none\"")]
    CloudClient,
    /// The server of a client is not in the ledger.
    #[error("sharing server {server} has no license in the ledger; license the server first")]
    UnknownServer {
        /// The server.
        server: String,
    },
    /// The server of a client is not licensed as a server.
    #[error("{server} is not a sharing server (its license says sharing = \"{role}\"); change it to sharing = \"server\" first")]
    NotAServer {
        /// The server.
        server: String,
        /// Its role.
        role: String,
    },
    /// Sharing only between PBXs of the same customer.
    #[error("sharing server {server} belongs to customer `{server_customer}`, not `{customer}`; licenses are only shared within one customer")]
    OtherCustomer {
        /// The server.
        server: String,
        /// The server's customer.
        server_customer: String,
        /// This order's customer.
        customer: String,
    },
    /// A PBX cannot be its own sharing client.
    #[error("{serial} cannot be a sharing client of itself")]
    OwnClient {
        /// The serial.
        serial: String,
    },
    /// Only one active license per SW serial.
    #[error("{serial} already has a license in force (sequence {sequence}); to change it use `tessera modify --serial {serial} --order ORDER` (in scripts, `tessera issue --change` does the same; decreases also need --approval), to extend it use `tessera renew`")]
    AlreadyLicensed {
        /// The serial.
        serial: String,
        /// The sequence in force.
        sequence: u32,
    },
    /// `replace` with the request of a device that has a license of its
    /// own (another PBX).
    #[error("the request is from {other}, a PBX with a license of its own (sequence {sequence}), not from a new device for {serial}; take the request from the replacement device (`tessera-agent request` on it), or decommission {other} first")]
    ReplacementLicensed {
        /// The serial being rebound.
        serial: String,
        /// The PBX the request comes from.
        other: String,
        /// Its sequence in force.
        sequence: u32,
    },
    /// `--change` for a serial without a license.
    #[error("{serial} has no license to change yet: a PBX gets its first license from `tessera issue` (without --change) or by online activation, and is changed after")]
    NothingToChange {
        /// The serial.
        serial: String,
    },
    /// `tessera modify` with the order the license in force grants
    /// already: a new sequence would change nothing.
    #[error("nothing changes: the license in force of {serial} (sequence {sequence}) already grants this order; nothing was issued (a new lease is `tessera renew`)")]
    NothingChanges {
        /// The serial.
        serial: String,
        /// The sequence of the license in force.
        sequence: u32,
    },
    /// A change cannot move the PBX to another platform.
    #[error("a change cannot move {serial} from {from} to {to}; a migration is a replacement (`tessera replace`)")]
    PlatformChange {
        /// The serial.
        serial: String,
        /// Platform in force.
        from: String,
        /// Platform ordered.
        to: String,
    },
    /// A change keeps the payment cycle.
    #[error("a change cannot switch the payment cycle of {serial} from {from} to {to}: all profiles share one cycle for the term; order the new cycle at the next term")]
    CycleChange {
        /// The serial.
        serial: String,
        /// Cycle in force.
        from: String,
        /// Cycle ordered.
        to: String,
    },
    /// The ordered term is already over.
    #[error("the ordered term ended {end}; order a term that covers today")]
    TermOver {
        /// Term end.
        end: String,
    },
    /// The PBX was deleted after a decrease to zero users.
    #[error("{serial} was deleted on {at} after all its user licenses were removed; it cannot be licensed again")]
    PbxDeleted {
        /// The serial.
        serial: String,
        /// Deletion time.
        at: String,
    },
    /// Renewal for a serial without a license.
    #[error("{serial} has no license in the ledger to renew; activate it with `tessera issue`")]
    NoLicense {
        /// The serial.
        serial: String,
    },
    /// Renewal for a serial whose only license was voided (issued in
    /// error): nothing is in force.
    #[error("the license of {serial} was voided (issued in error) and no license is in force; activate it again with `tessera issue`")]
    Voided {
        /// The serial.
        serial: String,
    },
    /// An online activation for a serial that has a license in force: a
    /// second activation is a renewal.
    #[error("{serial} is activated already (license {sequence} is in force): a licensed PBX renews (`tessera-agent renew`, `POST /v1/renew`); a change of its order is `tessera modify`")]
    AlreadyActivated {
        /// The serial.
        serial: String,
        /// The sequence in force.
        sequence: u32,
    },
    /// An online activation of an appliance whose HW serial the registry
    /// does not know: the vendor enters an appliance before it may claim a
    /// license over the network.
    #[error("HW serial {hw_serial} is not in the PBX registry: an appliance is activated online only once the vendor entered it (`tessera pbx add --platform hw --hw-serial {hw_serial} ...`); or the vendor activates it from its request file with `tessera issue`")]
    HwNotRegistered {
        /// The HW serial, as the request gave it.
        hw_serial: String,
    },
    /// A request answered before (its nonce is in the ledger).
    #[error("this request was answered before (its nonce is in the ledger): a replay; the device must make a new request")]
    RequestReplayed,
    /// A request answered before whose license is no longer the latest
    /// of its serial: answering it again would hand out a superseded
    /// license, or a second one for one request.
    #[error("this request was answered before: {serial} sequence {sequence} on {answered_at}, and the PBX has sequence {latest} since; a request is answered once, so the device must make a new request (`tessera-agent request`)")]
    RequestSuperseded {
        /// The serial.
        serial: String,
        /// The sequence that answered the request.
        sequence: u32,
        /// When (RFC 3339).
        answered_at: String,
        /// The latest sequence of the serial.
        latest: u32,
    },
    /// A request answered before by another command, or with another
    /// order, than the one it is given to now.
    #[error("this request was answered before: {serial} sequence {sequence} ({}) on {answered_at}{differs}; a request is answered once, and a {command} with it would be a second answer: the device must make a new request (`tessera-agent request`){hint}", .action.as_str())]
    RequestAnsweredOtherwise {
        /// The serial.
        serial: String,
        /// The sequence that answered the request.
        sequence: u32,
        /// What that license was.
        action: crate::ledger::Action,
        /// When (RFC 3339).
        answered_at: String,
        /// How that answer differs from what is asked now, when that is
        /// more than its action, serial or order (` with --reason rma`),
        /// or empty.
        differs: String,
        /// What is asked now (`renewal`, `change` ...).
        command: &'static str,
        /// What else the operator can do.
        hint: &'static str,
    },
    /// Renewal of a binding that was replaced.
    #[error("the binding of this request was replaced for {serial}{when}: this device is never renewed again, and no replacement binds the PBX back to it; the PBX runs on the device that replaced it (`tessera ledger show {serial}`)")]
    BindingReplaced {
        /// The serial.
        serial: String,
        /// ` on DATE by license N (rma)`, when the ledger knows.
        when: String,
    },
    /// A request about a PBX the ledger knows, signed by a device key that
    /// none of the requests answered for its current binding was signed
    /// with: anyone who has seen one request file can copy its identity
    /// and re-sign it with a key of their own.
    #[error("{}; if the PBX really has a new key (its storage was wiped or replaced), accept it explicitly with `--new-device-key` on the same command, after confirming with the site that the request is theirs", unknown_device_key(serial, key))]
    UnknownDeviceKey {
        /// The serial.
        serial: String,
        /// The first 16 hex digits of the request's device key.
        key: String,
    },
    /// A request signed by the device key of a binding a replacement
    /// superseded (RMA, migration): that box's key never renews the PBX
    /// again, not even with `--new-device-key`.
    #[error("the request for {serial} is signed by device key {key} of the binding replaced on {at} (by license {by}, {reason}): that box is no longer this PBX's and its key is never accepted again, not even with `--new-device-key`; nothing was issued. Ask the site for a request made on the PBX's current device (`tessera-agent request`)")]
    ReplacedDeviceKey {
        /// The serial.
        serial: String,
        /// The first 16 hex digits of the request's device key.
        key: String,
        /// When the binding was replaced (RFC 3339).
        at: String,
        /// The replacing license.
        by: u32,
        /// `rma` or `migrate`.
        reason: String,
    },
    /// `--new-device-key` with a device key the ledger records for
    /// another PBX: one device key never serves two PBXs.
    #[error("the request for {serial} is signed by device key {key}, which the ledger records for {others}: a device key belongs to one PBX, so it is not accepted for {serial}, not even with `--new-device-key`; nothing was issued. Ask the site of {serial} for a request made on its own device (`tessera-agent request`); if that box now runs {others} instead, bind it with `tessera replace --serial SERIAL --request FILE --reason rma|migrate` of the PBX it runs now")]
    DeviceKeyOfOtherPbx {
        /// The serial asked about.
        serial: String,
        /// The first 16 hex digits of the request's device key.
        key: String,
        /// The serials the key is recorded for (comma-separated).
        others: String,
    },
    /// `tessera replace` with a request of the device the PBX is bound to
    /// now: that is no new box, and replacing would take the binding's
    /// key away from the device that holds it.
    #[error("this request for {serial} comes from the device it is bound to now ({why}): a replacement needs a request made on the new box (RMA or migration), nothing was issued. If the bound device only has a new key (its storage was wiped), accept the key with `tessera renew --request FILE --new-device-key` instead, after confirming with the site that the request is theirs")]
    ReplaceBySameDevice {
        /// The serial.
        serial: String,
        /// What gave it away: its identity or its key.
        why: String,
    },
    /// Renewal request from a device the license is not bound to.
    #[error("this request's identity matches {matched} of the {needed} components needed by the binding of {serial}; if this is the PBX's new device (RMA or migration), bind it with `tessera replace --serial {serial} --request FILE --reason rma|migrate`")]
    WrongDevice {
        /// The serial.
        serial: String,
        /// Components matched.
        matched: u8,
        /// Components needed.
        needed: u8,
    },
    /// A renewal request without a SW serial.
    #[error("the request has no SW serial (first activation); use `tessera issue`")]
    NotActivated,
    /// The platform of the request and of the order differ.
    #[error("the request comes from a {request} PBX but the order is for {order}; fix the order's platform")]
    PlatformMismatch {
        /// Request platform.
        request: String,
        /// Order platform.
        order: String,
    },
    /// The request does not carry the components the catalog binds.
    #[error("the request carries {have} of the identity components the catalog binds for {platform} ({wanted}); at least {needed} are needed{required}")]
    NotEnoughIdentity {
        /// Platform.
        platform: String,
        /// Components wanted.
        wanted: String,
        /// How many the request has.
        have: usize,
        /// The threshold.
        needed: u8,
        /// Missing required kinds, if any.
        required: String,
    },
    /// `--reason rma` for a replacement on another platform.
    #[error("an RMA replaces a {from} PBX with a {from} PBX, but this request comes from a {to} PBX; a move between platforms is `--reason migrate`")]
    RmaChangesPlatform {
        /// Platform in force.
        from: String,
        /// Platform of the request.
        to: String,
    },
    /// A request that speaks for another serial than the one named.
    #[error("the request comes from {request}, not from {serial}; use a request made by {serial}")]
    RequestForOtherSerial {
        /// The serial named on the command line.
        serial: String,
        /// The serial of the request.
        request: String,
    },
    /// A sharing server without user licenses.
    #[error("{server} has no user licenses to share (sharing shares per-user licenses); license users on it first")]
    NoUsersToShare {
        /// The server.
        server: String,
    },
    /// The client already uses this server.
    #[error("{client} is already a sharing client of {server}")]
    AlreadyShared {
        /// The client.
        client: String,
        /// The server.
        server: String,
    },
    /// A void asked for too late (docs/rules.md: within 1 business day).
    #[error("license {id} was issued {issued}; activation mistakes must be reported within 1 business day (until {deadline}), so it can no longer be voided; correct it with `tessera modify` (decreases need --approval)")]
    VoidTooLate {
        /// License id (hex).
        id: String,
        /// Issue time.
        issued: String,
        /// End of the next business day.
        deadline: String,
    },
    /// Only the license in force can be voided.
    #[error("license {id} (sequence {sequence} of {serial}) is already superseded by sequence {latest}; only the license in force can be voided")]
    VoidSuperseded {
        /// License id (hex).
        id: String,
        /// The serial.
        serial: String,
        /// Its sequence.
        sequence: u32,
        /// The sequence in force.
        latest: u32,
    },
    /// A void is not voided.
    #[error("license {id} is itself a void; issue the right license with `tessera issue` or `tessera modify` instead")]
    VoidOfVoid {
        /// License id (hex).
        id: String,
    },
    /// Decommissioning a PBX whose stop is already scheduled.
    #[error("{serial} is already decommissioned: it stops {stop_at} and is deleted {delete_at}; add a user license back with `tessera modify` to cancel")]
    AlreadyDecommissioned {
        /// The serial.
        serial: String,
        /// Stop.
        stop_at: String,
        /// Deletion.
        delete_at: String,
    },
    /// A policy name the catalog does not have.
    #[error("unknown policy `{name}`; the catalog has: {known}")]
    UnknownPolicy {
        /// The name given.
        name: String,
        /// The catalog's policies.
        known: String,
    },
    /// A Cloud PBX given a policy with offline grace.
    #[error("policy {policy} has an offline grace; a Cloud PBX has none (docs/rules.md): choose a policy with grace 0s")]
    GraceOnCloud {
        /// The policy.
        policy: String,
    },
    /// Storage on a PBX that is not Cloud.
    #[error("{units} storage units on a {platform} PBX: storage is sold for Cloud PBXs only; remove storage_units (or --storage) from the order")]
    StorageNotCloud {
        /// The platform.
        platform: String,
        /// The units ordered.
        units: u32,
    },
    /// The first license of a PBX entered with `tessera pbx add`, from
    /// an order that is not the one the registry holds for it: it would
    /// license (and bill) another customer's order on that PBX.
    #[error("{serial} is registered (`tessera pbx add`) with another order than this one: {}; issue its first license with an order that says what the registry says (`tessera pbx show {serial}` shows it): correct the registry first with `tessera pbx edit {serial} --customer ... --name ...` if the registry is what is wrong, or issue the registered order and then change it with `tessera modify --serial {serial} --order FILE`", differences.join("; "))]
    RegisteredOrderDiffers {
        /// The serial.
        serial: String,
        /// Each field that differs, with both values.
        differences: Vec<String>,
    },
    /// A VM or Cloud serial the registry never allocated.
    #[error("{serial} is not in the PBX registry: a VM or Cloud PBX activates with the serial `tessera pbx add` allocated for it; add the PBX (`tessera pbx add --customer ... --platform ...`) and give its agent the serial printed")]
    NotRegistered {
        /// The serial.
        serial: String,
    },
    /// A policy change without its approval.
    #[error("changing the policy of {serial} needs vendor approval: pass --approval REF")]
    PolicyNeedsApproval {
        /// The serial.
        serial: String,
    },
    /// A registered PBX's platform differs from the request's.
    #[error("{serial} is registered as a {registered} PBX but the request comes from a {request} device; a move to another platform is `tessera replace --reason migrate`")]
    RegisteredPlatform {
        /// The serial.
        serial: String,
        /// Platform in the registry.
        registered: String,
        /// Platform of the request.
        request: String,
    },
    /// Renewal of a stopped PBX.
    #[error("{serial} was stopped on {stop} after all its user licenses were removed (deleted on {delete} unless a user license is added back): it is not renewed; add users with `tessera modify` to bring it back")]
    PbxStopped {
        /// The serial.
        serial: String,
        /// Stop time.
        stop: String,
        /// Deletion time.
        delete: String,
    },
    /// A replacement onto a binding that a replacement superseded.
    #[error("this request comes from the device of {serial} whose binding was replaced on {at} (by license {by}, {reason}); a replaced binding never becomes the PBX's again: send the request of the PBX's new device, or of another replacement unit")]
    ReplaceOntoReplaced {
        /// The serial.
        serial: String,
        /// When it was replaced.
        at: String,
        /// The replacing license.
        by: u32,
        /// `rma` or `migrate`.
        reason: String,
    },
    /// Decommissioning a PBX without user licenses.
    #[error("{serial} has no user licenses to remove; nothing to decommission")]
    NoUsers {
        /// The serial.
        serial: String,
    },
    /// `tessera pbx add` of a PBX that is registered already and not
    /// licensed yet: a retry after a lost output would give it a second
    /// serial.
    #[error("{customer} / {name} ({platform}) is registered already as {serial}, not licensed yet: use that serial (`tessera pbx show {serial}`); if a second PBX of that name is meant, add it with --again")]
    PbxAlreadyAdded {
        /// The serial registered.
        serial: String,
        /// Customer.
        customer: String,
        /// PBX name.
        name: String,
        /// Platform.
        platform: String,
    },
    /// A HW serial given to a new PBX that belongs to another one.
    #[error("HW serial {hw_serial} is {serial} already ({pbx}): one appliance is one PBX; `tessera pbx show {hw_serial}` shows it")]
    HwSerialTaken {
        /// The HW serial (normalized).
        hw_serial: String,
        /// The SW serial it was converted to.
        serial: String,
        /// Customer / name of that PBX.
        pbx: String,
    },
    /// An online activation refused: the one answer for every reason
    /// (unknown serial or HW serial, activated, voided, stopped or deleted
    /// PBX, no code, a wrong, expired or used code), so that whoever names
    /// a serial learns nothing of the PBX behind it.
    #[error("no PBX waits for online activation with this serial and activation code; ask the vendor for an activation code (`tessera pbx activation SERIAL`) and set it as `activation_code` in agent.toml (or `tessera-agent activate --code CODE`)")]
    ActivationRefused,
    /// `tessera pbx activation` for a PBX that has a license in force.
    #[error("{serial} has license {sequence} in force: a licensed PBX renews, it is not activated again; a new device for it is `tessera replace`, a lost license file `tessera ledger show {serial} --license`")]
    ActivationNotNeeded {
        /// The serial.
        serial: String,
        /// The sequence in force.
        sequence: u32,
    },
    /// A request names a SW serial and a HW serial that the registry does
    /// not put together: the HW serial is another PBX's, or the PBX was
    /// entered for another appliance and was never licensed.
    #[error("the request names {serial} and comes from the appliance {hw_serial}, but {why}: nothing was issued; an appliance is activated as the PBX the registry entered it for (its agent reads the HW serial from the box), and a PBX moves to other hardware with `tessera replace`")]
    HwSerialOfAnother {
        /// The SW serial the request names.
        serial: String,
        /// The HW serial it comes from.
        hw_serial: String,
        /// Which of the two it is.
        why: String,
    },
}

/// Something an operator should know, that does not stop issuance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The change is made within 2 days of the term end.
    NearTermEnd {
        /// Term end.
        term_end: i64,
    },
    /// Adding users back cancelled the scheduled stop and deletion.
    ScheduleCancelled,
    /// The decrease to zero users scheduled stop and deletion.
    ZeroScheduled {
        /// Stop.
        stop_at: i64,
        /// Deletion.
        delete_at: i64,
    },
    /// The term was extended by auto-renewal.
    AutoRenewed {
        /// New term end.
        term_end: Option<i64>,
    },
    /// A renewal before the last 2 days of the term keeps it.
    TermKept {
        /// The term end.
        term_end: i64,
    },
}

impl core::fmt::Display for Warning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NearTermEnd { term_end } => write!(
                f,
                "the term ends {} (within {WARN_DAYS_BEFORE_TERM_END} days): changes are recommended at least {WARN_DAYS_BEFORE_TERM_END} days before, the PBX auto-renews on its last term day",
                rfc3339_unix(*term_end)
            ),
            Self::ScheduleCancelled => {
                f.write_str("user licenses were added back: the scheduled stop and deletion are cancelled")
            }
            Self::ZeroScheduled { stop_at, delete_at } => write!(
                f,
                "all user licenses removed: the PBX stops {} and is irrevocably deleted {} unless a user license is added back before",
                rfc3339_unix(*stop_at),
                rfc3339_unix(*delete_at)
            ),
            Self::AutoRenewed { term_end } => match term_end {
                Some(end) => write!(
                    f,
                    "renewed in the last {WARN_DAYS_BEFORE_TERM_END} days of the term (or after it): the term is extended by one cycle and now ends {}",
                    rfc3339_unix(*end)
                ),
                None => f.write_str("auto-renewed"),
            },
            Self::TermKept { term_end } => write!(
                f,
                "the term is kept: it ends {} and renews on its last day ({}); a renewal from {} on extends it by one cycle",
                rfc3339_unix(*term_end),
                last_term_day(from_unix(*term_end)),
                renewal_days_start(*term_end)
            ),
        }
    }
}

/// A service's prorated share of the term.
#[derive(Clone, Debug, PartialEq)]
pub struct Proration {
    /// Service name.
    pub service: String,
    /// Service start.
    pub start: i64,
    /// Service end (the term end).
    pub end: i64,
    /// days(start → end) / days(term start → term end).
    pub fraction: f64,
}

/// What a decrease to zero users schedules (docs/rules.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroSchedule {
    /// The PBX stops.
    pub stop_at: i64,
    /// The PBX is deleted.
    pub delete_at: i64,
}

/// What happens to the stop/delete schedule of a serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleChange {
    /// Nothing.
    Keep,
    /// A decrease to zero: schedule stop and deletion.
    Start(ZeroSchedule),
    /// Users added back before deletion: cancel.
    Cancel,
}

/// The sharing server named by a client order, as the ledger knows it.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// Its latest license.
    pub license: LicenseData,
}

/// What the policy needs to know besides the order.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    /// The time of issuance.
    pub now: DateTime<Utc>,
    /// The serial being licensed.
    pub serial: &'a str,
    /// `--approval REF`.
    pub approval: Option<&'a str>,
    /// `--change`: the order changes the license in force.
    pub change: bool,
    /// The license in force for this serial.
    pub current: Option<&'a LicenseData>,
    /// The sharing server of a client order (`None` when not in the
    /// ledger or not a client).
    pub server: Option<&'a ServerInfo>,
    /// The pending stop/delete schedule of this serial.
    pub schedule: Option<ZeroSchedule>,
}

/// The outcome of a successful check: the effective term and services,
/// and what to tell the operator.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The term of the license to issue.
    pub term: Term,
    /// Services with their start and end.
    pub services: Vec<Service>,
    /// Prorated shares of services.
    pub prorations: Vec<Proration>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// What the change decreases (empty when nothing).
    pub decreases: Vec<String>,
    /// Stop/delete schedule.
    pub schedule: ScheduleChange,
}

/// Checks every rule for issuing `order` in `ctx` and works out the term,
/// services, prorations, warnings and schedule.
///
/// # Errors
/// The first [`PolicyError`] of the rules in this order: deleted PBX,
/// one active license, lifetime on Cloud, sharing, platform/cycle of a
/// change, term, services, storage, decreases.
pub fn check(
    catalog: &Catalog,
    order_grants_anything: bool,
    customer: &str,
    order: &Resolved,
    ctx: &Context<'_>,
) -> Result<Assessment, PolicyError> {
    not_deleted(ctx.serial, ctx.schedule, ctx.now)?;
    single_active(ctx.serial, ctx.current, ctx.change)?;
    lifetime_not_for_cloud(order.platform, order.cycle)?;
    sharing(
        ctx.serial,
        order,
        order_grants_anything,
        customer,
        ctx.server,
    )?;
    if let Some(current) = ctx.current {
        same_platform_and_cycle(ctx.serial, current, order)?;
    }
    let term = match ctx.current {
        Some(current) => current.term,
        None => new_term(order.cycle, order.term_start, ctx.now)?,
    };
    let (services, prorations) = services(order, &term, ctx.current, ctx.now)?;
    let mut warnings = Vec::new();
    let mut decreases = Vec::new();
    let mut schedule = ScheduleChange::Keep;
    if let Some(current) = ctx.current {
        storage_never_decreases(
            current.entitlements.storage_units,
            order.entitlements.storage_units,
        )?;
        decreases = find_decreases(catalog, current, &order.entitlements, &services);
        decrease_allowed(&decreases, term.cycle, ctx.approval, ctx.now)?;
        if let Some(w) = near_term_end(&term, ctx.now) {
            warnings.push(w);
        }
        schedule = zero_users(
            &current.entitlements,
            &order.entitlements,
            ctx.schedule,
            ctx.now,
        );
        match schedule {
            ScheduleChange::Start(z) => warnings.push(Warning::ZeroScheduled {
                stop_at: z.stop_at,
                delete_at: z.delete_at,
            }),
            ScheduleChange::Cancel => warnings.push(Warning::ScheduleCancelled),
            ScheduleChange::Keep => {}
        }
    }
    Ok(Assessment {
        term,
        services,
        prorations,
        warnings,
        decreases,
        schedule,
    })
}

/// A replacement with `--reason rma` keeps the platform (like for like);
/// `migrate` may change it.
///
/// # Errors
/// [`PolicyError::RmaChangesPlatform`].
pub fn rma_keeps_platform(rma: bool, from: Platform, to: Platform) -> Result<(), PolicyError> {
    use crate::calendar::PlatformName;
    if rma && from != to {
        return Err(PolicyError::RmaChangesPlatform {
            from: PlatformName::of(from).as_str().into(),
            to: PlatformName::of(to).as_str().into(),
        });
    }
    Ok(())
}

/// Whether a license grants anything of its own: user profiles, base
/// licenses, add-ons, storage, services, or features beyond the free core
/// ones. A sharing client must grant nothing.
#[must_use]
pub fn grants_anything(l: &LicenseData) -> bool {
    use tessera_verifier::claims::FeatureCategory;
    let e = &l.entitlements;
    total_users(e) > 0
        || e.bases
            .iter()
            .any(|b| b.count > 0 || b.addons.iter().any(|a| a.count > 0))
        || e.storage_units > 0
        || !l.services.is_empty()
        || e.features
            .iter()
            .any(|f| f.category != FeatureCategory::Core && f.quantity > 0)
}

/// Sharing set up by `tessera share`: both PBXs of one customer, the
/// server with user licenses and not itself a client, the client not a
/// Cloud PBX, without licenses of its own, and not the server itself.
///
/// # Errors
/// [`PolicyError::OwnClient`], [`PolicyError::NotAServer`],
/// [`PolicyError::NoUsersToShare`], [`PolicyError::CloudClient`],
/// [`PolicyError::OtherCustomer`], [`PolicyError::ClientHasLicenses`],
/// [`PolicyError::AlreadyShared`].
pub fn share_allowed(
    server_serial: &str,
    server: &LicenseData,
    client_serial: &str,
    client_platform: Platform,
    client: Option<&LicenseData>,
) -> Result<(), PolicyError> {
    if server_serial == client_serial {
        return Err(PolicyError::OwnClient {
            serial: client_serial.to_owned(),
        });
    }
    if let SharingData::Client(s) = &server.sharing {
        return Err(PolicyError::NotAServer {
            server: server_serial.to_owned(),
            role: format!("client-of {s}"),
        });
    }
    if total_users(&server.entitlements) == 0 {
        return Err(PolicyError::NoUsersToShare {
            server: server_serial.to_owned(),
        });
    }
    if client_platform == Platform::Cloud {
        return Err(PolicyError::CloudClient);
    }
    let Some(client) = client else {
        return Ok(());
    };
    if client.customer != server.customer {
        return Err(PolicyError::OtherCustomer {
            server: server_serial.to_owned(),
            server_customer: server.customer.clone(),
            customer: client.customer.clone(),
        });
    }
    if matches!(&client.sharing, SharingData::Client(s) if s == server_serial) {
        return Err(PolicyError::AlreadyShared {
            client: client_serial.to_owned(),
            server: server_serial.to_owned(),
        });
    }
    if grants_anything(client) {
        return Err(PolicyError::ClientHasLicenses {
            server: server_serial.to_owned(),
        });
    }
    Ok(())
}

/// A void within 1 business day of the issue (docs/rules.md: activation mistakes
/// are reported within 1 business day): until the end (UTC) of the first
/// day after the day of issue that is neither a Saturday, a Sunday nor one
/// of the catalog's `holidays`.
///
/// # Errors
/// [`PolicyError::VoidTooLate`].
pub fn void_in_time(
    id: &str,
    issued_at: i64,
    now: DateTime<Utc>,
    holidays: &[chrono::NaiveDate],
) -> Result<(), PolicyError> {
    let deadline = crate::calendar::end_of_next_business_day(issued_at, holidays);
    if now.timestamp() >= deadline {
        return Err(PolicyError::VoidTooLate {
            id: id.to_owned(),
            issued: rfc3339_unix(issued_at),
            deadline: rfc3339_unix(deadline),
        });
    }
    Ok(())
}

/// A PBX deleted after a decrease to zero cannot be licensed again.
///
/// # Errors
/// [`PolicyError::PbxDeleted`].
pub fn not_deleted(
    serial: &str,
    schedule: Option<ZeroSchedule>,
    now: DateTime<Utc>,
) -> Result<(), PolicyError> {
    match schedule {
        Some(z) if now.timestamp() >= z.delete_at => Err(PolicyError::PbxDeleted {
            serial: serial.to_owned(),
            at: rfc3339_unix(z.delete_at),
        }),
        _ => Ok(()),
    }
}

/// A PBX whose stop has come is not renewed: refused with its stop and
/// deletion dates (deleted: [`PolicyError::PbxDeleted`]).
///
/// # Errors
/// [`PolicyError::PbxStopped`], [`PolicyError::PbxDeleted`].
pub fn not_stopped(
    serial: &str,
    schedule: Option<ZeroSchedule>,
    now: DateTime<Utc>,
) -> Result<(), PolicyError> {
    not_deleted(serial, schedule, now)?;
    match schedule {
        Some(z) if now.timestamp() >= z.stop_at => Err(PolicyError::PbxStopped {
            serial: serial.to_owned(),
            stop: rfc3339_unix(z.stop_at),
            delete: rfc3339_unix(z.delete_at),
        }),
        _ => Ok(()),
    }
}

/// Only one active license per SW serial: a second order for a licensed
/// serial must say it is a change.
///
/// # Errors
/// [`PolicyError::AlreadyLicensed`], [`PolicyError::NothingToChange`].
pub fn single_active(
    serial: &str,
    current: Option<&LicenseData>,
    change: bool,
) -> Result<(), PolicyError> {
    match (current, change) {
        (Some(c), false) => Err(PolicyError::AlreadyLicensed {
            serial: serial.to_owned(),
            sequence: c.sequence,
        }),
        (None, true) => Err(PolicyError::NothingToChange {
            serial: serial.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Lifetime is not available for Cloud.
///
/// # Errors
/// [`PolicyError::LifetimeOnCloud`].
pub fn lifetime_not_for_cloud(platform: Platform, cycle: Cycle) -> Result<(), PolicyError> {
    if platform == Platform::Cloud && cycle == Cycle::Lifetime {
        return Err(PolicyError::LifetimeOnCloud);
    }
    Ok(())
}

/// Sharing: a client has no licenses of its own, a Cloud PBX can only be
/// a server, and the server is a licensed server of the same customer.
///
/// # Errors
/// [`PolicyError::CloudClient`], [`PolicyError::ClientHasLicenses`],
/// [`PolicyError::OwnClient`], [`PolicyError::UnknownServer`],
/// [`PolicyError::NotAServer`], [`PolicyError::OtherCustomer`].
pub fn sharing(
    serial: &str,
    order: &Resolved,
    order_grants_anything: bool,
    customer: &str,
    server: Option<&ServerInfo>,
) -> Result<(), PolicyError> {
    let SharingData::Client(server_serial) = &order.sharing else {
        return Ok(());
    };
    if order.platform == Platform::Cloud {
        return Err(PolicyError::CloudClient);
    }
    if order_grants_anything {
        return Err(PolicyError::ClientHasLicenses {
            server: server_serial.clone(),
        });
    }
    if server_serial == serial {
        return Err(PolicyError::OwnClient {
            serial: serial.to_owned(),
        });
    }
    let Some(server) = server else {
        return Err(PolicyError::UnknownServer {
            server: server_serial.clone(),
        });
    };
    match &server.license.sharing {
        SharingData::Server => {}
        SharingData::None => {
            return Err(PolicyError::NotAServer {
                server: server_serial.clone(),
                role: "none".into(),
            })
        }
        SharingData::Client(s) => {
            return Err(PolicyError::NotAServer {
                server: server_serial.clone(),
                role: format!("client-of {s}"),
            })
        }
    }
    if server.license.customer != customer {
        return Err(PolicyError::OtherCustomer {
            server: server_serial.clone(),
            server_customer: server.license.customer.clone(),
            customer: customer.to_owned(),
        });
    }
    Ok(())
}

/// A change keeps the platform (a migration is a replacement) and the
/// payment cycle (one cycle per PBX and term).
///
/// # Errors
/// [`PolicyError::PlatformChange`], [`PolicyError::CycleChange`].
pub fn same_platform_and_cycle(
    serial: &str,
    current: &LicenseData,
    order: &Resolved,
) -> Result<(), PolicyError> {
    use crate::calendar::{CycleName, PlatformName};
    if current.platform != order.platform {
        return Err(PolicyError::PlatformChange {
            serial: serial.to_owned(),
            from: PlatformName::of(current.platform).as_str().into(),
            to: PlatformName::of(order.platform).as_str().into(),
        });
    }
    if current.term.cycle != order.cycle {
        return Err(PolicyError::CycleChange {
            serial: serial.to_owned(),
            from: CycleName::of(current.term.cycle).as_str().into(),
            to: CycleName::of(order.cycle).as_str().into(),
        });
    }
    Ok(())
}

/// The term of a new license: one cycle from the ordered start (no end for
/// lifetime). A term already over is refused.
///
/// # Errors
/// [`PolicyError::TermOver`].
pub fn new_term(
    cycle: Cycle,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Term, PolicyError> {
    let end = match cycle {
        Cycle::Lifetime => None,
        _ => Some(add_cycle(start, cycle).ok_or(PolicyError::TermOver {
            end: "beyond the calendar".into(),
        })?),
    };
    if let Some(end) = end {
        if end <= now {
            return Err(PolicyError::TermOver { end: rfc3339(end) });
        }
    }
    Ok(Term {
        cycle,
        start: start.timestamp(),
        end: end.map(|e| e.timestamp()),
    })
}

/// Services: only for subscriptions, each running from its start to the
/// term end (co-termination), with its prorated fraction.
///
/// A service's start is the order's, else the start it already had in the
/// license in force, else the change date (a service added by a change) or
/// the term start (a new license).
///
/// # Errors
/// [`PolicyError::ServicesOnLifetime`], [`PolicyError::ServiceOutsideTerm`].
pub fn services(
    order: &Resolved,
    term: &Term,
    current: Option<&LicenseData>,
    now: DateTime<Utc>,
) -> Result<(Vec<Service>, Vec<Proration>), PolicyError> {
    let mut services = Vec::new();
    let mut prorations = Vec::new();
    for s in &order.services {
        let Some(term_end) = term.end else {
            return Err(PolicyError::ServicesOnLifetime {
                service: s.name.clone(),
            });
        };
        let start = s.start.map(|t| t.timestamp()).unwrap_or_else(|| {
            current
                .and_then(|c| c.services.iter().find(|x| x.code == s.code))
                .map(|x| x.start)
                .unwrap_or(if current.is_some() {
                    now.timestamp()
                } else {
                    term.start
                })
        });
        if start < term.start || start >= term_end {
            return Err(PolicyError::ServiceOutsideTerm {
                service: s.name.clone(),
                start: rfc3339_unix(start),
                term_start: rfc3339_unix(term.start),
                term_end: rfc3339_unix(term_end),
            });
        }
        services.push(Service {
            code: s.code,
            start,
            end: term_end,
        });
        prorations.push(Proration {
            service: s.name.clone(),
            start,
            end: term_end,
            fraction: prorated_fraction(term.start, term_end, start),
        });
    }
    Ok((services, prorations))
}

/// Storage can never be decreased.
///
/// # Errors
/// [`PolicyError::StorageDecrease`].
pub fn storage_never_decreases(from: u32, to: u32) -> Result<(), PolicyError> {
    if to < from {
        return Err(PolicyError::StorageDecrease { from, to });
    }
    Ok(())
}

/// Everything the new entitlements and services grant less than the
/// license in force, described with catalog names.
#[must_use]
pub fn find_decreases(
    catalog: &Catalog,
    current: &LicenseData,
    new: &EntitlementsData,
    new_services: &[Service],
) -> Vec<String> {
    let mut out = Vec::new();
    let old = &current.entitlements;
    for p in &old.profiles {
        let now = new
            .profiles
            .iter()
            .find(|n| n.code == p.code)
            .map_or(0, |n| n.count);
        if now < p.count {
            out.push(format!(
                "{} from {} to {now}",
                catalog.profile_name(p.code),
                p.count
            ));
        }
    }
    for f in &old.features {
        let now = new
            .features
            .iter()
            .find(|n| n.code == f.code)
            .map_or(0, |n| n.quantity);
        if now < f.quantity {
            out.push(format!(
                "feature {} from {} to {now}",
                catalog.feature_name(f.code),
                f.quantity
            ));
        }
    }
    for b in &old.bases {
        let nb = new.bases.iter().find(|n| n.code == b.code);
        let now = nb.map_or(0, |n| n.count);
        if now < b.count {
            out.push(format!(
                "{} from {} to {now}",
                catalog.base_name(b.code),
                b.count
            ));
        }
        for a in &b.addons {
            let now = nb
                .and_then(|n| n.addons.iter().find(|x| x.code == a.code))
                .map_or(0, |x| x.count);
            if now < a.count {
                out.push(format!(
                    "{} / {} from {} to {now}",
                    catalog.base_name(b.code),
                    catalog.addon_name(a.code),
                    a.count
                ));
            }
        }
    }
    for s in &current.services {
        if !new_services.iter().any(|n| n.code == s.code) {
            out.push(format!("service {} removed", catalog.service_name(s.code)));
        }
    }
    out
}

/// Decreases: never for lifetime, never on the last day of a month, and
/// only with an approval reference.
///
/// # Errors
/// [`PolicyError::DecreaseOnLifetime`],
/// [`PolicyError::DecreaseOnLastDayOfMonth`],
/// [`PolicyError::DecreaseNeedsApproval`].
pub fn decrease_allowed(
    decreases: &[String],
    cycle: Cycle,
    approval: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), PolicyError> {
    if decreases.is_empty() {
        return Ok(());
    }
    let what = decreases.join(", ");
    if cycle == Cycle::Lifetime {
        return Err(PolicyError::DecreaseOnLifetime { what });
    }
    if is_last_day_of_month(now) {
        return Err(PolicyError::DecreaseOnLastDayOfMonth {
            date: now.date_naive(),
        });
    }
    if approval.is_none_or(|a| a.trim().is_empty()) {
        return Err(PolicyError::DecreaseNeedsApproval { what });
    }
    Ok(())
}

/// A change within 2 days of the term end gets a warning.
#[must_use]
pub fn near_term_end(term: &Term, now: DateTime<Utc>) -> Option<Warning> {
    let end = term.end?;
    let left = end - now.timestamp();
    (left > 0 && left <= WARN_DAYS_BEFORE_TERM_END * DAY)
        .then_some(Warning::NearTermEnd { term_end: end })
}

/// Decrease to zero users schedules stop (+5 days) and deletion (+14
/// days); adding a user back before deletion cancels them.
#[must_use]
pub fn zero_users(
    old: &EntitlementsData,
    new: &EntitlementsData,
    schedule: Option<ZeroSchedule>,
    now: DateTime<Utc>,
) -> ScheduleChange {
    let before = total_users(old);
    let after = total_users(new);
    if schedule.is_some() && after > 0 {
        return ScheduleChange::Cancel;
    }
    if before > 0 && after == 0 && schedule.is_none() {
        let t = now.timestamp();
        return ScheduleChange::Start(ZeroSchedule {
            stop_at: t + STOP_AFTER_DAYS * DAY,
            delete_at: t + DELETE_AFTER_DAYS * DAY,
        });
    }
    ScheduleChange::Keep
}

/// The first day on which a renewal extends a term ending at `end`: the
/// term's last [`WARN_DAYS_BEFORE_TERM_END`] days (licenses renew and are
/// invoiced on the last day of the term; changes are advised 2 days
/// before).
#[must_use]
pub fn renewal_days_start(end: i64) -> chrono::NaiveDate {
    let last = last_term_day(from_unix(end));
    last.checked_sub_days(chrono::Days::new(
        u64::try_from(WARN_DAYS_BEFORE_TERM_END - 1).unwrap_or(0),
    ))
    .unwrap_or(last)
}

/// Auto-renewal: a renewal in the last 2 days of the term, or after its
/// end, extends the term by one cycle (repeated while the renewal still
/// falls in the new term's last 2 days or after it). Lifetime terms never
/// change.
#[must_use]
pub fn auto_renew(term: &Term, now: DateTime<Utc>) -> Term {
    let mut t = *term;
    let today = now.date_naive();
    while let Some(end) = t.end {
        let end_dt = from_unix(end);
        if today < renewal_days_start(end) {
            break;
        }
        let Some(next) = add_cycle(end_dt, t.cycle) else {
            break;
        };
        t = Term {
            cycle: t.cycle,
            start: end,
            end: Some(next.timestamp()),
        };
    }
    t
}

/// The lease end of a license issued at `now`: the online lease, or up to
/// the term end for an air-gapped PBX (capped by `max_lease`), never past
/// the term end nor a scheduled stop.
#[must_use]
pub fn lease_end(
    now: DateTime<Utc>,
    term: &Term,
    lease: u32,
    max_lease: u32,
    air_gapped: bool,
    stop_at: Option<i64>,
) -> i64 {
    let t = now.timestamp();
    let mut end = if air_gapped {
        term.end.unwrap_or(i64::MAX).min(t + i64::from(max_lease))
    } else {
        t + i64::from(lease)
    };
    if let Some(term_end) = term.end {
        end = end.min(term_end);
    }
    if let Some(stop) = stop_at {
        end = end.min(stop);
    }
    end.max(t)
}

/// The time `days` days after `t`.
#[must_use]
pub fn plus_days(t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    t + Duration::days(days)
}

#[cfg(test)]
mod tests;
