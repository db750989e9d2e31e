//! The license claims (`spec/FORMAT.md` §5): the CWT claims set and the
//! tessera private claim, decoded strictly into a borrowed [`License`] view.
//!
//! Decoding validates everything once; the collections (binding components,
//! profiles, features, base licenses, services) stay as validated CBOR
//! slices and are read lazily by allocation-free iterators ([`Items`]).

use crate::cbor::{MapKeys, Reader, MAX_DEPTH};
use crate::keyring::KeyId;
use crate::Malformed;

type Result<T> = core::result::Result<T, Malformed>;

/// The format version this verifier reads and writes (§5.3).
pub const FORMAT_VERSION: u8 = 1;
/// CWT claim key of the tessera private claim (§5.2): below -65536, in the
/// private-use range of RFC 8392.
pub const PRIVATE_CLAIM: i64 = -65537;
/// Length of a license id (`cti`) and of a request nonce.
pub const ID_LEN: usize = 16;
/// Length of a binding salt.
pub const SALT_LEN: usize = 16;
/// Length of an identity component digest.
pub const DIGEST_LEN: usize = 16;

/// CWT claim keys (RFC 8392 §3).
pub mod cwt {
    /// Issuer.
    pub const ISS: i64 = 1;
    /// Subject: the SW serial.
    pub const SUB: i64 = 2;
    /// Expiration time: the lease end.
    pub const EXP: i64 = 4;
    /// Not before.
    pub const NBF: i64 = 5;
    /// Issued at.
    pub const IAT: i64 = 6;
    /// CWT id: the license id or request nonce.
    pub const CTI: i64 = 7;
}

/// Keys of the license private claim map (§5.3).
pub mod key {
    /// Format version.
    pub const VERSION: i64 = 0;
    /// Critical keys.
    pub const CRIT: i64 = 1;
    /// Platform.
    pub const PLATFORM: i64 = 2;
    /// Sequence.
    pub const SEQUENCE: i64 = 3;
    /// Binding.
    pub const BINDING: i64 = 4;
    /// Previous (HW) serial.
    pub const PREVIOUS_SERIAL: i64 = 5;
    /// Term.
    pub const TERM: i64 = 6;
    /// Lease / grace policy.
    pub const POLICY: i64 = 7;
    /// Entitlements.
    pub const ENTITLEMENTS: i64 = 8;
    /// Services.
    pub const SERVICES: i64 = 9;
    /// Sharing role.
    pub const SHARING: i64 = 10;
    /// Customer name.
    pub const CUSTOMER: i64 = 11;
    /// PBX name.
    pub const PBX_NAME: i64 = 12;
    /// Highest key this version understands.
    pub const LAST: i64 = PBX_NAME;
}

/// Caps on every collection and string (§6.4).
pub mod limits {
    /// Identity components in a binding or request.
    pub const COMPONENTS: usize = 16;
    /// Profiles.
    pub const PROFILES: usize = 32;
    /// Features.
    pub const FEATURES: usize = 64;
    /// Base licenses.
    pub const BASES: usize = 16;
    /// Add-ons per base license.
    pub const ADDONS: usize = 32;
    /// Services.
    pub const SERVICES: usize = 16;
    /// Entries of a critical-keys list.
    pub const CRIT: usize = 8;
    /// Entries of the private claim map (known and unknown keys).
    pub const PRIVATE_KEYS: usize = 32;
    /// Entries of the CWT claims map.
    pub const CLAIMS: usize = 16;
    /// Serials (SW, HW, sharing server) and issuer.
    pub const SERIAL_LEN: usize = 64;
    /// PBX name.
    pub const NAME_LEN: usize = 64;
    /// Customer name.
    pub const CUSTOMER_LEN: usize = 128;
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $value:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $variant = $value),+
        }

        impl $name {
            /// The wire value (§5).
            #[must_use]
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The variant for a wire value.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            fn read(r: &mut Reader<'_>) -> Result<Self> {
                Self::from_code(r.u8()?).ok_or(Malformed::BadValue)
            }
        }
    };
}

code_enum! {
    /// Where the PBX runs (§5.3.2).
    Platform { /// Vendor appliance.
        Hw = 0, /// Virtual machine.
        Vm = 1, /// Vendor-hosted cloud: no offline grace.
        Cloud = 2 }
}

code_enum! {
    /// Payment cycle of the whole PBX (§5.3.6).
    Cycle { /// Monthly.
        Monthly = 0, /// Yearly.
        Yearly = 1, /// Five years.
        FiveYears = 2, /// Lifetime: no term end.
        Lifetime = 3 }
}

code_enum! {
    /// What the PBX may do once the grace period is over (§5.3.7).
    AfterGrace { /// Only emergency calls.
        EmergencyOnly = 0, /// Locked: phones stay registered, calls and web go to activation.
        Locked = 1 }
}

code_enum! {
    /// How a feature is counted (§5.3.8).
    FeatureCategory { /// Counted per unit (function, ring group, queue).
        Instance = 0, /// Counted per user.
        General = 1, /// Always included.
        Core = 2 }
}

/// Kind of a device identity component (§5.3.4). Unknown kinds are carried
/// and never match a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentKind(pub u8);

impl ComponentKind {
    /// HW serial printed on the appliance.
    pub const HW_SERIAL: Self = Self(1);
    /// CPU id / serial.
    pub const CPU_ID: Self = Self(2);
    /// NIC MAC address.
    pub const NIC_MAC: Self = Self(3);
    /// Configured IP address.
    pub const IP_ADDR: Self = Self(4);
    /// DMI system UUID or VM UUID.
    pub const SYSTEM_UUID: Self = Self(5);
    /// Disk serial.
    pub const DISK_SERIAL: Self = Self(6);
    /// Device public key.
    pub const DEVICE_KEY: Self = Self(7);
    /// OS machine id.
    pub const MACHINE_ID: Self = Self(8);

    /// Every kind this version knows, in code order.
    pub const KNOWN: [Self; 8] = [
        Self::HW_SERIAL,
        Self::CPU_ID,
        Self::NIC_MAC,
        Self::IP_ADDR,
        Self::SYSTEM_UUID,
        Self::DISK_SERIAL,
        Self::DEVICE_KEY,
        Self::MACHINE_ID,
    ];

    /// The name of a known kind, as catalogs, identity files and the agent
    /// write it (`hw_serial`, `nic_mac`, ...); `None` for an unknown kind.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::HW_SERIAL => Some("hw_serial"),
            Self::CPU_ID => Some("cpu_id"),
            Self::NIC_MAC => Some("nic_mac"),
            Self::IP_ADDR => Some("ip_addr"),
            Self::SYSTEM_UUID => Some("system_uuid"),
            Self::DISK_SERIAL => Some("disk_serial"),
            Self::DEVICE_KEY => Some("device_key"),
            Self::MACHINE_ID => Some("machine_id"),
            _ => None,
        }
    }

    /// The known kind with this name ([`ComponentKind::name`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|k| k.name() == Some(name))
    }
}

/// One bound identity component (§5.3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Component {
    /// Which identity value.
    pub kind: ComponentKind,
    /// Salted digest of the normalized value.
    pub digest: [u8; DIGEST_LEN],
    /// Must match, whatever the threshold.
    pub required: bool,
}

/// The binding of a license to a device (§5.3.4).
#[derive(Clone, Debug)]
pub struct Binding<'a> {
    /// Components that must match (k of n).
    pub threshold: u8,
    /// Salt of the component digests.
    pub salt: [u8; SALT_LEN],
    /// The components, in (kind, digest) order.
    pub components: Items<'a, Component>,
}

/// Commercial term (§5.3.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// Payment cycle.
    pub cycle: Cycle,
    /// Start of the term (Unix seconds).
    pub start: i64,
    /// End of the term; `None` exactly for lifetime.
    pub end: Option<i64>,
}

/// Lease, grace and check policy (§5.3.7). Durations in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Offline grace after the lease end.
    pub grace: u32,
    /// Mode after grace.
    pub after_grace: AfterGrace,
    /// How long before the lease end renewal becomes due.
    pub renewal_window: u32,
    /// How often the device checks.
    pub check_interval: u32,
    /// How far the clock may go back before it counts as rollback.
    pub rollback_tolerance: u32,
}

/// A user-profile count (§5.3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Catalog code.
    pub code: u16,
    /// Licensed users.
    pub count: u32,
}

/// A licensed feature (§5.3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Catalog code.
    pub code: u16,
    /// How it is counted.
    pub category: FeatureCategory,
    /// Licensed quantity.
    pub quantity: u32,
    /// Licensed but not shown to the end customer.
    pub hidden: bool,
}

/// An add-on of a base license (§5.3.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addon {
    /// Catalog code.
    pub code: u16,
    /// Licensed count.
    pub count: u32,
}

/// A base license and its add-ons (§5.3.8).
#[derive(Clone, Debug)]
pub struct Base<'a> {
    /// Catalog code.
    pub code: u16,
    /// Licensed count.
    pub count: u32,
    /// Add-ons, in code order.
    pub addons: Items<'a, Addon>,
}

/// A service attached to the PBX (§5.3.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// Catalog code.
    pub code: u16,
    /// Start (Unix seconds).
    pub start: i64,
    /// End: co-terminating with the term.
    pub end: i64,
}

/// Entitlements of a license (§5.3.8).
#[derive(Clone, Debug)]
pub struct Entitlements<'a> {
    /// User-profile counts, in code order.
    pub profiles: Items<'a, Profile>,
    /// Features, in code order.
    pub features: Items<'a, Feature>,
    /// Base licenses with add-ons, in code order.
    pub bases: Items<'a, Base<'a>>,
    /// Storage units (1 unit = 10 GB by catalog convention).
    pub storage_units: u32,
}

impl Entitlements<'_> {
    /// Whether the license grants nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.profiles.len() == 0
            && self.features.len() == 0
            && self.bases.len() == 0
            && self.storage_units == 0
    }
}

/// Sharing role for failover (§5.3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing<'a> {
    /// Not shared.
    None,
    /// Shares its user licenses with clients.
    Server,
    /// Uses the licenses of the server with this SW serial.
    Client(&'a str),
}

/// A lazy, allocation-free iterator over an already validated collection.
///
/// Cloning is cheap; [`Items::len`] is known up front.
#[derive(Clone)]
pub struct Items<'a, T> {
    reader: Reader<'a>,
    left: usize,
    parse: fn(&mut Reader<'a>) -> Result<T>,
}

impl<T> core::fmt::Debug for Items<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Items({})", self.left)
    }
}

impl<'a, T> Items<'a, T> {
    /// Validates `n` elements at the reader's position with `parse`,
    /// requiring `order` keys to strictly increase, and returns an iterator
    /// over them.
    fn validate<K: Ord>(
        r: &mut Reader<'a>,
        n: usize,
        parse: fn(&mut Reader<'a>) -> Result<T>,
        order: fn(&T) -> K,
        duplicate: Malformed,
    ) -> Result<Self> {
        let start = r.position();
        let mut previous: Option<K> = None;
        for _ in 0..n {
            let item = parse(r)?;
            let k = order(&item);
            if let Some(p) = previous {
                match p.cmp(&k) {
                    core::cmp::Ordering::Less => {}
                    core::cmp::Ordering::Equal => return Err(duplicate),
                    core::cmp::Ordering::Greater => return Err(Malformed::UnsortedKeys),
                }
            }
            previous = Some(k);
        }
        Ok(Self {
            reader: Reader::new(r.since(start)?),
            left: n,
            parse,
        })
    }

    /// Number of elements not yet yielded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.left
    }

    /// Whether no elements are left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<T> Iterator for Items<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match (self.parse)(&mut self.reader) {
            Ok(item) => Some(item),
            // Unreachable for validated data; end quietly rather than panic.
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

fn component(r: &mut Reader<'_>) -> Result<Component> {
    r.array_of(3)?;
    Ok(Component {
        kind: ComponentKind(r.u8()?),
        digest: r.bstr_array()?,
        required: r.bool()?,
    })
}

fn component_order(c: &Component) -> (ComponentKind, [u8; DIGEST_LEN]) {
    (c.kind, c.digest)
}

fn profile(r: &mut Reader<'_>) -> Result<Profile> {
    Ok(Profile {
        code: r.u16()?,
        count: r.u32()?,
    })
}

fn feature(r: &mut Reader<'_>) -> Result<Feature> {
    let code = r.u16()?;
    r.array_of(3)?;
    Ok(Feature {
        code,
        category: FeatureCategory::read(r)?,
        quantity: r.u32()?,
        hidden: r.bool()?,
    })
}

fn addon(r: &mut Reader<'_>) -> Result<Addon> {
    Ok(Addon {
        code: r.u16()?,
        count: r.u32()?,
    })
}

fn base<'a>(r: &mut Reader<'a>) -> Result<Base<'a>> {
    let code = r.u16()?;
    r.array_of(2)?;
    let count = r.u32()?;
    let n = r.map(limits::ADDONS)?;
    let addons = Items::validate(r, n, addon, |a| a.code, Malformed::DuplicateKey)?;
    Ok(Base {
        code,
        count,
        addons,
    })
}

fn service(r: &mut Reader<'_>) -> Result<Service> {
    let code = r.u16()?;
    r.array_of(2)?;
    let start = r.int()?;
    let end = r.int()?;
    if end < start {
        return Err(Malformed::BadValue);
    }
    Ok(Service { code, start, end })
}

/// Reads the `crit` list (§5.4): sorted, unique, each a key this version
/// understands.
fn crit(r: &mut Reader<'_>, last_known: i64) -> Result<()> {
    let n = r.array(limits::CRIT)?;
    if n == 0 {
        return Err(Malformed::BadValue);
    }
    let mut previous = None;
    for _ in 0..n {
        let k = r.uint()?;
        if previous.is_some_and(|p| p >= k) {
            return Err(Malformed::BadValue);
        }
        previous = Some(k);
        if i64::try_from(k).map_or(true, |k| k > last_known) {
            return Err(Malformed::UnknownCritical);
        }
    }
    Ok(())
}

/// Reads the binding (§5.3.4).
pub(crate) fn binding<'a>(r: &mut Reader<'a>) -> Result<Binding<'a>> {
    r.array_of(3)?;
    let threshold = r.u8()?;
    let salt = r.bstr_array()?;
    let n = r.array(limits::COMPONENTS)?;
    let components = Items::validate(r, n, component, component_order, Malformed::DuplicateKey)?;
    if threshold == 0 || usize::from(threshold) > components.len() {
        return Err(Malformed::BadValue);
    }
    Ok(Binding {
        threshold,
        salt,
        components,
    })
}

fn term(r: &mut Reader<'_>) -> Result<Term> {
    r.array_of(3)?;
    let cycle = Cycle::read(r)?;
    let start = r.int()?;
    let end = if r.null()? { None } else { Some(r.int()?) };
    match (cycle, end) {
        (Cycle::Lifetime, None) => {}
        (Cycle::Lifetime, Some(_)) | (_, None) => return Err(Malformed::BadValue),
        (_, Some(end)) if end <= start => return Err(Malformed::BadValue),
        _ => {}
    }
    Ok(Term { cycle, start, end })
}

fn policy(r: &mut Reader<'_>) -> Result<Policy> {
    r.array_of(5)?;
    let policy = Policy {
        grace: r.u32()?,
        after_grace: AfterGrace::read(r)?,
        renewal_window: r.u32()?,
        check_interval: r.u32()?,
        rollback_tolerance: r.u32()?,
    };
    if policy.check_interval == 0 {
        return Err(Malformed::BadValue);
    }
    Ok(policy)
}

fn entitlements<'a>(r: &mut Reader<'a>) -> Result<Entitlements<'a>> {
    r.array_of(4)?;
    let n = r.map(limits::PROFILES)?;
    let profiles = Items::validate(r, n, profile, |p| p.code, Malformed::DuplicateKey)?;
    let n = r.map(limits::FEATURES)?;
    let features = Items::validate(r, n, feature, |f| f.code, Malformed::DuplicateKey)?;
    let n = r.map(limits::BASES)?;
    let bases = Items::validate(r, n, base, |b| b.code, Malformed::DuplicateKey)?;
    let storage_units = r.u32()?;
    Ok(Entitlements {
        profiles,
        features,
        bases,
        storage_units,
    })
}

fn sharing<'a>(r: &mut Reader<'a>) -> Result<Sharing<'a>> {
    let n = r.array(2)?;
    match (n, r.u8()?) {
        (1, 0) => Ok(Sharing::None),
        (1, 1) => Ok(Sharing::Server),
        (2, 2) => Ok(Sharing::Client(r.tstr(limits::SERIAL_LEN)?)),
        _ => Err(Malformed::BadValue),
    }
}

/// A decoded license: a borrowed view over its bytes (§5).
///
/// Obtained from [`crate::decode_license`] (signature checked) or
/// [`crate::decode_license_unverified`].
#[derive(Clone, Debug)]
pub struct License<'a> {
    pub(crate) kid: KeyId,
    pub(crate) issuer: &'a str,
    pub(crate) serial: &'a str,
    pub(crate) issued_at: i64,
    pub(crate) not_before: i64,
    pub(crate) lease_end: i64,
    pub(crate) id: [u8; ID_LEN],
    pub(crate) platform: Platform,
    pub(crate) sequence: u32,
    pub(crate) binding: Binding<'a>,
    pub(crate) previous_serial: Option<&'a str>,
    pub(crate) term: Term,
    pub(crate) policy: Policy,
    pub(crate) entitlements: Entitlements<'a>,
    pub(crate) services: Items<'a, Service>,
    pub(crate) sharing: Sharing<'a>,
    pub(crate) customer: &'a str,
    pub(crate) pbx_name: &'a str,
}

impl<'a> License<'a> {
    /// Key id of the signing key.
    #[must_use]
    pub fn kid(&self) -> KeyId {
        self.kid
    }
    /// Vendor id (`iss`).
    #[must_use]
    pub fn issuer(&self) -> &'a str {
        self.issuer
    }
    /// SW serial of the PBX (`sub`).
    #[must_use]
    pub fn serial(&self) -> &'a str {
        self.serial
    }
    /// Issue time (`iat`, Unix seconds).
    #[must_use]
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }
    /// Start of validity (`nbf`).
    #[must_use]
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// End of this file's validity, the lease end (`exp`).
    #[must_use]
    pub fn lease_end(&self) -> i64 {
        self.lease_end
    }
    /// License id (`cti`).
    #[must_use]
    pub fn id(&self) -> [u8; ID_LEN] {
        self.id
    }
    /// Platform.
    #[must_use]
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// Per-serial sequence number from the ledger.
    #[must_use]
    pub fn sequence(&self) -> u32 {
        self.sequence
    }
    /// Device binding.
    #[must_use]
    pub fn binding(&self) -> Binding<'a> {
        self.binding.clone()
    }
    /// HW serial this SW serial was converted from, if any.
    #[must_use]
    pub fn previous_serial(&self) -> Option<&'a str> {
        self.previous_serial
    }
    /// Commercial term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.term
    }
    /// Lease, grace and check policy.
    #[must_use]
    pub fn policy(&self) -> Policy {
        self.policy
    }
    /// Entitlements (empty for a sharing client).
    #[must_use]
    pub fn entitlements(&self) -> Entitlements<'a> {
        self.entitlements.clone()
    }
    /// Services.
    #[must_use]
    pub fn services(&self) -> Items<'a, Service> {
        self.services.clone()
    }
    /// Sharing role.
    #[must_use]
    pub fn sharing(&self) -> Sharing<'a> {
        self.sharing
    }
    /// Customer name.
    #[must_use]
    pub fn customer(&self) -> &'a str {
        self.customer
    }
    /// PBX name.
    #[must_use]
    pub fn pbx_name(&self) -> &'a str {
        self.pbx_name
    }
}

/// The standard claims common to licenses and requests.
#[derive(Default)]
pub(crate) struct Standard<'a> {
    pub(crate) iss: Option<&'a str>,
    pub(crate) sub: Option<&'a str>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
    pub(crate) cti: Option<[u8; ID_LEN]>,
}

/// Walks a CWT claims map: standard claims into `std`, the private claim
/// through `private`, unknown claims skipped (§5.1).
pub(crate) fn claims_map<'a>(
    payload: &'a [u8],
    mut private: impl FnMut(&mut Reader<'a>) -> Result<()>,
) -> Result<Standard<'a>> {
    let mut r = Reader::new(payload);
    let n = r.map(limits::CLAIMS)?;
    let mut keys = MapKeys::new();
    let mut std = Standard::default();
    let mut seen_private = false;
    for _ in 0..n {
        match r.key(&mut keys)? {
            cwt::ISS => std.iss = Some(r.tstr(limits::SERIAL_LEN)?),
            cwt::SUB => std.sub = Some(r.tstr(limits::SERIAL_LEN)?),
            cwt::EXP => std.exp = Some(r.int()?),
            cwt::NBF => std.nbf = Some(r.int()?),
            cwt::IAT => std.iat = Some(r.int()?),
            cwt::CTI => std.cti = Some(r.bstr_array()?),
            PRIVATE_CLAIM => {
                private(&mut r)?;
                seen_private = true;
            }
            _ => r.skip(MAX_DEPTH)?,
        }
    }
    r.finish()?;
    if !seen_private {
        return Err(Malformed::MissingField);
    }
    Ok(std)
}

/// Reads the head of a private claim map and its version and `crit` entries;
/// returns the number of entries left and the key tracker.
pub(crate) fn private_head<'a>(
    r: &mut Reader<'a>,
    last_known: i64,
) -> Result<(usize, MapKeys<'a>, Option<i64>)> {
    let n = r.map(limits::PRIVATE_KEYS)?;
    let mut keys = MapKeys::new();
    if n == 0 || r.key(&mut keys)? != key::VERSION {
        return Err(Malformed::MissingField);
    }
    if r.u8().map_err(|_| Malformed::UnsupportedVersion)? != FORMAT_VERSION {
        return Err(Malformed::UnsupportedVersion);
    }
    let mut left = n - 1;
    let mut pending = None;
    if left > 0 {
        let k = r.key(&mut keys)?;
        left -= 1;
        if k == key::CRIT {
            crit(r, last_known)?;
        } else {
            pending = Some(k);
        }
    }
    Ok((left, keys, pending))
}

/// Decodes a license payload (§5). `kid` comes from the protected header.
pub(crate) fn parse_license(payload: &[u8], kid: KeyId) -> Result<License<'_>> {
    let mut lic: Option<License<'_>> = None;
    let std = claims_map(payload, |r| {
        lic = Some(private_license(r, kid)?);
        Ok(())
    })?;
    let mut lic = lic.ok_or(Malformed::MissingField)?;
    match (std.iss, std.sub, std.exp, std.nbf, std.iat, std.cti) {
        (Some(iss), Some(sub), Some(exp), Some(nbf), Some(iat), Some(cti)) => {
            if nbf > exp || iat > exp || sub.is_empty() {
                return Err(Malformed::BadValue);
            }
            lic.issuer = iss;
            lic.serial = sub;
            lic.lease_end = exp;
            lic.not_before = nbf;
            lic.issued_at = iat;
            lic.id = cti;
            Ok(lic)
        }
        _ => Err(Malformed::MissingField),
    }
}

fn private_license<'a>(r: &mut Reader<'a>, kid: KeyId) -> Result<License<'a>> {
    let (left, mut keys, mut pending) = private_head(r, key::LAST)?;
    let mut platform = None;
    let mut sequence = None;
    let mut bind = None;
    let mut previous_serial = None;
    let mut trm = None;
    let mut pol = None;
    let mut ents = None;
    let mut services = None;
    let mut share = None;
    let mut customer = None;
    let mut pbx_name = None;
    for _ in 0..left.saturating_add(usize::from(pending.is_some())) {
        let k = match pending.take() {
            Some(k) => k,
            None => r.key(&mut keys)?,
        };
        match k {
            key::PLATFORM => platform = Some(Platform::read(r)?),
            key::SEQUENCE => sequence = Some(r.u32()?),
            key::BINDING => bind = Some(binding(r)?),
            key::PREVIOUS_SERIAL => previous_serial = Some(r.tstr(limits::SERIAL_LEN)?),
            key::TERM => trm = Some(term(r)?),
            key::POLICY => pol = Some(policy(r)?),
            key::ENTITLEMENTS => ents = Some(entitlements(r)?),
            key::SERVICES => {
                let n = r.map(limits::SERVICES)?;
                services = Some(Items::validate(
                    r,
                    n,
                    service,
                    |s| s.code,
                    Malformed::DuplicateKey,
                )?);
            }
            key::SHARING => share = Some(sharing(r)?),
            key::CUSTOMER => customer = Some(r.tstr(limits::CUSTOMER_LEN)?),
            key::PBX_NAME => pbx_name = Some(r.tstr(limits::NAME_LEN)?),
            // Unknown, newer keys are skipped (§5.4); VERSION and CRIT were
            // read first and the key order rules out seeing them again.
            k if k > key::LAST => r.skip(MAX_DEPTH)?,
            _ => return Err(Malformed::BadValue),
        }
    }
    let (
        Some(platform),
        Some(sequence),
        Some(binding),
        Some(term),
        Some(policy),
        Some(entitlements),
        Some(services),
        Some(sharing),
        Some(customer),
        Some(pbx_name),
    ) = (
        platform, sequence, bind, trm, pol, ents, services, share, customer, pbx_name,
    )
    else {
        return Err(Malformed::MissingField);
    };
    if matches!(sharing, Sharing::Client(_)) && !entitlements.is_empty() {
        // A sharing client has no licenses of its own (docs/rules.md: sharing).
        return Err(Malformed::BadValue);
    }
    if let Some(end) = term.end {
        if services.clone().any(|s| s.end > end) {
            // Services co-terminate with the term (docs/rules.md: services).
            return Err(Malformed::BadValue);
        }
    } else if !services.is_empty() {
        // Services are for subscription PBXs only.
        return Err(Malformed::BadValue);
    }
    Ok(License {
        kid,
        issuer: "",
        serial: "",
        issued_at: 0,
        not_before: 0,
        lease_end: 0,
        id: [0; ID_LEN],
        platform,
        sequence,
        binding,
        previous_serial,
        term,
        policy,
        entitlements,
        services,
        sharing,
        customer,
        pbx_name,
    })
}

/// One identity component as a device reports it in a request (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    /// Which identity value.
    pub kind: ComponentKind,
    /// Salted digest of the normalized value.
    pub digest: [u8; DIGEST_LEN],
}

fn identity(r: &mut Reader<'_>) -> Result<Identity> {
    r.array_of(2)?;
    Ok(Identity {
        kind: ComponentKind(r.u8()?),
        digest: r.bstr_array()?,
    })
}

/// Keys of the request private claim map (§7.2).
pub mod request_key {
    /// Format version.
    pub const VERSION: i64 = 0;
    /// Critical keys.
    pub const CRIT: i64 = 1;
    /// Platform.
    pub const PLATFORM: i64 = 2;
    /// HW serial (first activation of an appliance).
    pub const HW_SERIAL: i64 = 3;
    /// Identity: salt and component digests.
    pub const IDENTITY: i64 = 4;
    /// License currently in force: id and sequence.
    pub const CURRENT: i64 = 5;
    /// Last successful renewal.
    pub const LAST_RENEWAL: i64 = 6;
    /// Device public key that signs the request.
    pub const DEVICE_KEY: i64 = 7;
    /// Highest key this version understands.
    pub const LAST: i64 = DEVICE_KEY;
}

/// A decoded request (§7): what a device sends to the vendor.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub(crate) serial: Option<&'a str>,
    pub(crate) hw_serial: Option<&'a str>,
    pub(crate) created_at: i64,
    pub(crate) nonce: [u8; ID_LEN],
    pub(crate) platform: Platform,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) identity: Items<'a, Identity>,
    pub(crate) current: Option<([u8; ID_LEN], u32)>,
    pub(crate) last_renewal: Option<i64>,
    pub(crate) device_key: [u8; 32],
}

impl<'a> Request<'a> {
    /// SW serial, once the device has one.
    #[must_use]
    pub fn serial(&self) -> Option<&'a str> {
        self.serial
    }
    /// HW serial of an appliance (first activation).
    #[must_use]
    pub fn hw_serial(&self) -> Option<&'a str> {
        self.hw_serial
    }
    /// When the device wrote the request (`iat`).
    #[must_use]
    pub fn created_at(&self) -> i64 {
        self.created_at
    }
    /// Random nonce (`cti`).
    #[must_use]
    pub fn nonce(&self) -> [u8; ID_LEN] {
        self.nonce
    }
    /// Platform the device detected.
    #[must_use]
    pub fn platform(&self) -> Platform {
        self.platform
    }
    /// Salt of the identity digests; the license binding reuses it.
    #[must_use]
    pub fn salt(&self) -> [u8; SALT_LEN] {
        self.salt
    }
    /// Identity component digests, in (kind, digest) order.
    #[must_use]
    pub fn identity(&self) -> Items<'a, Identity> {
        self.identity.clone()
    }
    /// License in force on the device: id and sequence.
    #[must_use]
    pub fn current(&self) -> Option<([u8; ID_LEN], u32)> {
        self.current
    }
    /// Last successful renewal (Unix seconds).
    #[must_use]
    pub fn last_renewal(&self) -> Option<i64> {
        self.last_renewal
    }
    /// Device public key that signed the request.
    #[must_use]
    pub fn device_key(&self) -> [u8; 32] {
        self.device_key
    }
}

/// Decodes a request payload (§7).
pub(crate) fn parse_request(payload: &[u8]) -> Result<Request<'_>> {
    let mut req: Option<Request<'_>> = None;
    let std = claims_map(payload, |r| {
        req = Some(private_request(r)?);
        Ok(())
    })?;
    let mut req = req.ok_or(Malformed::MissingField)?;
    let (Some(iat), Some(cti)) = (std.iat, std.cti) else {
        return Err(Malformed::MissingField);
    };
    if std.sub.is_none() && req.hw_serial.is_none() {
        return Err(Malformed::MissingField);
    }
    if std.sub == Some("") || req.hw_serial == Some("") {
        return Err(Malformed::BadValue);
    }
    req.serial = std.sub;
    req.created_at = iat;
    req.nonce = cti;
    Ok(req)
}

fn private_request<'a>(r: &mut Reader<'a>) -> Result<Request<'a>> {
    let (left, mut keys, mut pending) = private_head(r, request_key::LAST)?;
    let mut platform = None;
    let mut hw_serial = None;
    let mut ident = None;
    let mut current = None;
    let mut last_renewal = None;
    let mut device_key = None;
    for _ in 0..left.saturating_add(usize::from(pending.is_some())) {
        let k = match pending.take() {
            Some(k) => k,
            None => r.key(&mut keys)?,
        };
        match k {
            request_key::PLATFORM => platform = Some(Platform::read(r)?),
            request_key::HW_SERIAL => hw_serial = Some(r.tstr(limits::SERIAL_LEN)?),
            request_key::IDENTITY => {
                r.array_of(2)?;
                let salt = r.bstr_array()?;
                let n = r.array(limits::COMPONENTS)?;
                let items = Items::validate(r, n, identity, |i| *i, Malformed::DuplicateKey)?;
                if items.is_empty() {
                    return Err(Malformed::MissingField);
                }
                ident = Some((salt, items));
            }
            request_key::CURRENT => {
                r.array_of(2)?;
                current = Some((r.bstr_array()?, r.u32()?));
            }
            request_key::LAST_RENEWAL => last_renewal = Some(r.int()?),
            request_key::DEVICE_KEY => device_key = Some(r.bstr_array()?),
            k if k > request_key::LAST => r.skip(MAX_DEPTH)?,
            _ => return Err(Malformed::BadValue),
        }
    }
    let (Some(platform), Some((salt, identity)), Some(device_key)) = (platform, ident, device_key)
    else {
        return Err(Malformed::MissingField);
    };
    Ok(Request {
        serial: None,
        hw_serial,
        created_at: 0,
        nonce: [0; ID_LEN],
        platform,
        salt,
        identity,
        current,
        last_renewal,
        device_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_kind_names_round_trip() {
        for (code, kind) in (1u8..).zip(ComponentKind::KNOWN) {
            assert_eq!(kind, ComponentKind(code));
            let name = kind.name().unwrap();
            assert_eq!(ComponentKind::from_name(name), Some(kind));
        }
        for code in [0, 9, u8::MAX] {
            assert_eq!(ComponentKind(code).name(), None);
        }
        assert_eq!(ComponentKind::from_name("unknown"), None);
        assert_eq!(ComponentKind::from_name("HW_SERIAL"), None);
        assert_eq!(ComponentKind::from_name(""), None);
    }
}
