//! Device binding digests (`spec/FORMAT.md` §5.3.4), the device identity
//! firmware fills in, and the binding and serial checks
//! (`spec/RUNTIME.md` §2–§4).
//!
//! A license never carries raw identity values: each component is the
//! first 16 bytes of SHA-256 over a domain tag, the salt, the component
//! kind and the normalized value, so files carried by partners do not
//! reveal serials or addresses.
//!
//! The issuer, the device agent and firmware must hash exactly the same
//! bytes for the same identity value, so every raw value goes through
//! [`normalize`] first; nobody re-implements it.

use core::fmt;

use sha2::{Digest, Sha256};

mod ip;

use crate::claims::{limits, Binding, Component, ComponentKind, Identity, DIGEST_LEN, SALT_LEN};
use crate::{Error, License};

/// Domain-separation tag of component digests.
pub const DIGEST_TAG: &[u8] = b"tessera-binding-v1\0";

/// Digest of one normalized identity value (§5.3.4).
///
/// ```
/// use tessera_verifier::{binding::component_digest, claims::ComponentKind};
/// let d = component_digest(&[0; 16], ComponentKind::NIC_MAC, b"0011223344ff");
/// assert_eq!(d.len(), 16);
/// ```
#[must_use]
pub fn component_digest(
    salt: &[u8; SALT_LEN],
    kind: ComponentKind,
    normalized: &[u8],
) -> [u8; DIGEST_LEN] {
    let digest = Sha256::new()
        .chain_update(DIGEST_TAG)
        .chain_update(salt)
        .chain_update([kind.0])
        .chain_update(normalized)
        .finalize();
    let mut out = [0u8; DIGEST_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// Longest normalized identity value in bytes (`spec/RUNTIME.md` §2.1).
pub const MAX_VALUE_LEN: usize = 64;

/// Most components a [`DeviceIdentity`] holds: the same cap as a license
/// binding, so every component a license can name fits.
pub const MAX_COMPONENTS: usize = limits::COMPONENTS;

/// Why a raw identity value or serial was refused (`spec/RUNTIME.md` §2).
///
/// These are errors of the caller (firmware probing its hardware, the
/// issuer reading a request form), not of a license, so they are not
/// [`Error`] variants: a refused value is never silently hashed, because a
/// digest of garbage would either never match or, worse, match every
/// device with the same broken probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The component kind has no normalization rule in this version.
    UnknownKind,
    /// The value is empty (after trimming).
    Empty,
    /// The value is not of the form its kind requires.
    Invalid,
    /// The normalized value is longer than [`MAX_VALUE_LEN`] bytes.
    TooLong,
    /// The identity already holds [`MAX_COMPONENTS`] components.
    Full,
}

impl IdentityError {
    /// A stable, machine-readable code (`spec/vectors/runtime.json`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownKind => "identity.unknown_kind",
            Self::Empty => "identity.empty",
            Self::Invalid => "identity.invalid",
            Self::TooLong => "identity.too_long",
            Self::Full => "identity.full",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownKind => "this identity component kind is unknown to this version",
            Self::Empty => "the identity value is empty",
            Self::Invalid => {
                "the identity value is not valid for its kind (see spec/RUNTIME.md section 2)"
            }
            Self::TooLong => "the identity value is longer than 64 bytes once normalized",
            Self::Full => "the device identity already holds 16 components",
        })
    }
}

impl core::error::Error for IdentityError {}

/// Normalizes a raw identity value of `kind` into `out` and returns the
/// normalized bytes, the input of [`component_digest`]
/// (`spec/RUNTIME.md` §2.2).
///
/// Text kinds must be UTF-8; surrounding ASCII whitespace is trimmed
/// first. Per kind:
///
/// | kind | rule |
/// |---|---|
/// | HW serial, disk serial, CPU id | ASCII upper-case; no control characters |
/// | NIC MAC | exactly 12 hex digits once `:` `-` `.` are removed; lower-case; not all-zero / broadcast |
/// | IP address | parsed as `core::net` parses it, written back canonically as it writes it (IPv4 dotted decimal, IPv6 RFC 5952, IPv4-mapped IPv6 as IPv4; `binding/ip.rs`, without `core::fmt`); not unspecified / loopback |
/// | system / VM UUID | 32 hex digits, bare, hyphenated 8-4-4-4-12, optionally in braces; written lower-case hyphenated; not nil / all-`f` |
/// | machine id | ASCII lower-case; no control characters |
/// | device key | the raw 32 bytes, not all-zero |
///
/// ```
/// use tessera_verifier::binding::{normalize, MAX_VALUE_LEN};
/// use tessera_verifier::claims::ComponentKind;
/// let mut buf = [0u8; MAX_VALUE_LEN];
/// let mac = normalize(ComponentKind::NIC_MAC, b"00:16:3E:5A:1B:2C", &mut buf);
/// assert_eq!(mac, Ok(&b"00163e5a1b2c"[..]));
/// let ip = normalize(ComponentKind::IP_ADDR, b"2001:DB8:0:0::1", &mut buf);
/// assert_eq!(ip, Ok(&b"2001:db8::1"[..]));
/// ```
///
/// # Errors
/// [`IdentityError::UnknownKind`], [`IdentityError::Empty`],
/// [`IdentityError::Invalid`], [`IdentityError::TooLong`].
pub fn normalize<'o>(
    kind: ComponentKind,
    raw: &[u8],
    out: &'o mut [u8; MAX_VALUE_LEN],
) -> Result<&'o [u8], IdentityError> {
    let len = match kind {
        ComponentKind::HW_SERIAL | ComponentKind::DISK_SERIAL | ComponentKind::CPU_ID => {
            text(raw, out, Case::Upper)?
        }
        ComponentKind::MACHINE_ID => text(raw, out, Case::Lower)?,
        ComponentKind::NIC_MAC => mac(raw, out)?,
        ComponentKind::IP_ADDR => ip(raw, out)?,
        ComponentKind::SYSTEM_UUID => uuid(raw, out)?,
        ComponentKind::DEVICE_KEY => device_key(raw, out)?,
        _ => return Err(IdentityError::UnknownKind),
    };
    out.get(..len).ok_or(IdentityError::TooLong)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Lower,
    Keep,
}

/// Copies `src` into `dst` from the start; the caller checked the length.
fn copy_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// Trimmed, case-mapped text without control characters.
fn text(raw: &[u8], out: &mut [u8; MAX_VALUE_LEN], case: Case) -> Result<usize, IdentityError> {
    let t = core::str::from_utf8(raw)
        .map_err(|_| IdentityError::Invalid)?
        .as_bytes()
        .trim_ascii();
    if t.is_empty() {
        return Err(IdentityError::Empty);
    }
    // A NUL-padded or otherwise garbled probe result must be fixed at the
    // probe, not hashed: it would never match what the issuer was told.
    if t.iter().any(|b| b.is_ascii_control()) {
        return Err(IdentityError::Invalid);
    }
    if t.len() > MAX_VALUE_LEN {
        return Err(IdentityError::TooLong);
    }
    for (o, b) in out.iter_mut().zip(t) {
        *o = match case {
            Case::Upper => b.to_ascii_uppercase(),
            Case::Lower => b.to_ascii_lowercase(),
            Case::Keep => *b,
        };
    }
    Ok(t.len())
}

/// Collects exactly `N` hex digits, lower-cased, from `digits`.
fn hex_digits<const N: usize>(digits: impl Iterator<Item = u8>) -> Result<[u8; N], IdentityError> {
    let mut out = [0u8; N];
    let mut n = 0usize;
    for b in digits {
        if !b.is_ascii_hexdigit() {
            return Err(IdentityError::Invalid);
        }
        *out.get_mut(n).ok_or(IdentityError::Invalid)? = b.to_ascii_lowercase();
        n += 1;
    }
    if n != N {
        return Err(IdentityError::Invalid);
    }
    // All-zero and all-ones are what probes report for "absent" (no NIC,
    // DMI "not settable"); binding to them would bind to every such box.
    if out.iter().all(|&b| b == b'0') || out.iter().all(|&b| b == b'f') {
        return Err(IdentityError::Invalid);
    }
    Ok(out)
}

fn trimmed_utf8(raw: &[u8]) -> Result<&[u8], IdentityError> {
    let t = core::str::from_utf8(raw)
        .map_err(|_| IdentityError::Invalid)?
        .as_bytes()
        .trim_ascii();
    if t.is_empty() {
        Err(IdentityError::Empty)
    } else {
        Ok(t)
    }
}

fn mac(raw: &[u8], out: &mut [u8; MAX_VALUE_LEN]) -> Result<usize, IdentityError> {
    let t = trimmed_utf8(raw)?;
    let digits = t
        .iter()
        .copied()
        .filter(|b| !matches!(b, b':' | b'-' | b'.'));
    let hex: [u8; 12] = hex_digits(digits)?;
    copy_into(out, &hex);
    Ok(hex.len())
}

fn uuid(raw: &[u8], out: &mut [u8; MAX_VALUE_LEN]) -> Result<usize, IdentityError> {
    let mut t = trimmed_utf8(raw)?;
    if let Some(inner) = t.strip_prefix(b"{").and_then(|t| t.strip_suffix(b"}")) {
        t = inner;
    }
    let hex: [u8; 32] = match t.len() {
        32 => hex_digits(t.iter().copied())?,
        36 => {
            // Hyphens exactly at the 8-4-4-4-12 positions, nowhere else.
            let mut hyphens_ok = true;
            let digits = t.iter().enumerate().filter_map(|(i, &b)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    hyphens_ok &= b == b'-';
                    None
                } else {
                    Some(b)
                }
            });
            let hex = hex_digits(digits)?;
            if !hyphens_ok {
                return Err(IdentityError::Invalid);
            }
            hex
        }
        _ => return Err(IdentityError::Invalid),
    };
    let mut n = 0usize;
    for (i, d) in hex.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            *out.get_mut(n).ok_or(IdentityError::TooLong)? = b'-';
            n += 1;
        }
        *out.get_mut(n).ok_or(IdentityError::TooLong)? = *d;
        n += 1;
    }
    Ok(n)
}

fn ip(raw: &[u8], out: &mut [u8; MAX_VALUE_LEN]) -> Result<usize, IdentityError> {
    let t = trimmed_utf8(raw)?;
    // An IPv4 address seen through an IPv4-mapped IPv6 socket is the same
    // address; write it once, as IPv4.
    let addr = ip::parse(t).ok_or(IdentityError::Invalid)?.canonical();
    // Every device has these: they identify nothing.
    if addr.is_unspecified_or_loopback() {
        return Err(IdentityError::Invalid);
    }
    ip::write(&addr, out).ok_or(IdentityError::TooLong)
}

fn device_key(raw: &[u8], out: &mut [u8; MAX_VALUE_LEN]) -> Result<usize, IdentityError> {
    if raw.is_empty() {
        return Err(IdentityError::Empty);
    }
    if raw.len() != 32 || raw.iter().all(|&b| b == 0) {
        return Err(IdentityError::Invalid);
    }
    copy_into(out, raw);
    Ok(raw.len())
}

/// A normalized value held in place.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Value {
    len: u8,
    bytes: [u8; MAX_VALUE_LEN],
}

impl Value {
    const EMPTY: Self = Self {
        len: 0,
        bytes: [0; MAX_VALUE_LEN],
    };

    fn new(normalized: &[u8]) -> Result<Self, IdentityError> {
        let len = u8::try_from(normalized.len()).map_err(|_| IdentityError::TooLong)?;
        if usize::from(len) > MAX_VALUE_LEN {
            return Err(IdentityError::TooLong);
        }
        let mut v = Self::EMPTY;
        copy_into(&mut v.bytes, normalized);
        v.len = len;
        Ok(v)
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Only text values are stored as serials, so this is never empty
    /// for a set serial.
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
struct Slot {
    kind: ComponentKind,
    value: Value,
}

/// What firmware knows about the device it runs on: raw identity
/// components, normalized as they are added, and its serials
/// (`spec/RUNTIME.md` §2).
///
/// Fixed capacity ([`MAX_COMPONENTS`] values of at most
/// [`MAX_VALUE_LEN`] bytes, about 1.2 KiB), no heap; the caller owns it and
/// [`crate::verify`] only borrows it. Several values of one kind (two NICs,
/// two disks) may be added; adding the same normalized value twice keeps
/// one.
///
/// ```
/// use tessera_verifier::binding::DeviceIdentity;
/// use tessera_verifier::claims::ComponentKind;
/// # fn main() -> Result<(), tessera_verifier::binding::IdentityError> {
/// let mut id = DeviceIdentity::new();
/// id.set_hw_serial(" hw-7f3a-0042\n")?; // also adds the HW_SERIAL component
/// id.add(ComponentKind::NIC_MAC, "00-16-3E-5A-1B-2C")?;
/// id.add(ComponentKind::SYSTEM_UUID, "{4C4C4544-0042-3510-8056-B4C04F4E3232}")?;
/// assert_eq!(id.hw_serial(), Some("HW-7F3A-0042"));
/// assert_eq!(id.len(), 3);
/// assert!(id.add(ComponentKind::NIC_MAC, "not a mac").is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DeviceIdentity {
    slots: [Slot; MAX_COMPONENTS],
    count: u8,
    sw_serial: Option<Value>,
    hw_serial: Option<Value>,
}

impl fmt::Debug for DeviceIdentity {
    // Raw identity values stay out of logs: kinds and counts only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("kinds", &DebugKinds(self))
            .field("sw_serial", &self.sw_serial.is_some())
            .field("hw_serial", &self.hw_serial.is_some())
            .finish()
    }
}

struct DebugKinds<'i>(&'i DeviceIdentity);

impl fmt::Debug for DebugKinds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.active().map(|s| s.kind.0))
            .finish()
    }
}

impl Default for DeviceIdentity {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceIdentity {
    /// An identity with no components and no serials.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slots: [Slot {
                kind: ComponentKind(0),
                value: Value::EMPTY,
            }; MAX_COMPONENTS],
            count: 0,
            sw_serial: None,
            hw_serial: None,
        }
    }

    fn active(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.slots.iter().take(usize::from(self.count))
    }

    /// Adds one raw identity value of `kind`, normalized by [`normalize`].
    ///
    /// # Errors
    /// The [`normalize`] errors, and [`IdentityError::Full`] when
    /// [`MAX_COMPONENTS`] different values are already held.
    pub fn add(&mut self, kind: ComponentKind, raw: impl AsRef<[u8]>) -> Result<(), IdentityError> {
        let mut buf = [0u8; MAX_VALUE_LEN];
        let value = Value::new(normalize(kind, raw.as_ref(), &mut buf)?)?;
        if self.active().any(|s| s.kind == kind && s.value == value) {
            return Ok(());
        }
        let slot = self
            .slots
            .get_mut(usize::from(self.count))
            .ok_or(IdentityError::Full)?;
        *slot = Slot { kind, value };
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Sets the device's SW serial, once it has one (after its first
    /// activation: firmware persists [`License::serial`] of the first
    /// accepted license). Surrounding ASCII whitespace is trimmed; the
    /// serial is otherwise compared exactly.
    ///
    /// # Errors
    /// [`IdentityError::Empty`], [`IdentityError::Invalid`] (not UTF-8 or
    /// control characters), [`IdentityError::TooLong`] (over 64 bytes).
    pub fn set_sw_serial(&mut self, serial: &str) -> Result<(), IdentityError> {
        let mut buf = [0u8; MAX_VALUE_LEN];
        let n = text(serial.as_bytes(), &mut buf, Case::Keep)?;
        self.sw_serial = Some(Value::new(buf.get(..n).unwrap_or_default())?);
        Ok(())
    }

    /// Sets the HW serial printed on an appliance, normalized like a
    /// [`ComponentKind::HW_SERIAL`] component (which it also adds, so the
    /// two can never disagree).
    ///
    /// # Errors
    /// As [`DeviceIdentity::add`].
    pub fn set_hw_serial(&mut self, raw: &str) -> Result<(), IdentityError> {
        let mut buf = [0u8; MAX_VALUE_LEN];
        let value = Value::new(normalize(
            ComponentKind::HW_SERIAL,
            raw.as_bytes(),
            &mut buf,
        )?)?;
        self.add(ComponentKind::HW_SERIAL, value.as_bytes())?;
        self.hw_serial = Some(value);
        Ok(())
    }

    /// The SW serial, if set.
    #[must_use]
    pub fn sw_serial(&self) -> Option<&str> {
        self.sw_serial.as_ref().map(Value::as_str)
    }

    /// The normalized HW serial, if set.
    #[must_use]
    pub fn hw_serial(&self) -> Option<&str> {
        self.hw_serial.as_ref().map(Value::as_str)
    }

    /// Number of components held.
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no component is held (such an identity binds to nothing).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The components as (kind, normalized value), in the order added.
    pub fn components(&self) -> impl Iterator<Item = (ComponentKind, &[u8])> + '_ {
        self.active().map(|s| (s.kind, s.value.as_bytes()))
    }

    /// The salted digests of every component, for a request
    /// (`spec/FORMAT.md` §7): the issuer copies the ones it binds to.
    pub fn digests<'s>(&'s self, salt: &'s [u8; SALT_LEN]) -> impl Iterator<Item = Identity> + 's {
        self.active().map(move |s| Identity {
            kind: s.kind,
            digest: component_digest(salt, s.kind, s.value.as_bytes()),
        })
    }

    /// Evaluates a license binding against this device
    /// (`spec/RUNTIME.md` §3) and returns how many components matched.
    ///
    /// # Errors
    /// [`Error::WrongDevice`] with the number matched and needed; never
    /// which value differed.
    pub fn check_binding(&self, binding: &Binding<'_>) -> Result<u8, Error> {
        self.evaluate(binding.threshold, &binding.salt, binding.components.clone())
    }

    /// The binding rule over any list of components (the decoder
    /// guarantees 1 ≤ k ≤ n and no duplicates for licenses).
    pub(crate) fn evaluate(
        &self,
        threshold: u8,
        salt: &[u8; SALT_LEN],
        components: impl IntoIterator<Item = Component>,
    ) -> Result<u8, Error> {
        // A threshold of 0 would bind to anything; treat it as 1.
        let threshold = threshold.max(1);
        // Each device value is hashed at most once, and only if the license
        // names its kind.
        let mut cache = [None::<[u8; DIGEST_LEN]>; MAX_COMPONENTS];
        let mut matched: u8 = 0;
        let mut required_missed = false;
        for c in components {
            let mut hit = false;
            for (slot, cached) in self.active().zip(cache.iter_mut()) {
                if slot.kind != c.kind {
                    continue;
                }
                let digest = *cached.get_or_insert_with(|| {
                    component_digest(salt, slot.kind, slot.value.as_bytes())
                });
                if digest == c.digest {
                    hit = true;
                    break;
                }
            }
            if hit {
                matched = matched.saturating_add(1);
            } else if c.required {
                required_missed = true;
            }
        }
        if required_missed {
            // One more match than now would still not do without the
            // required component; say at least that many are needed, so
            // `matched < needed` always holds in the error.
            Err(Error::WrongDevice {
                matched,
                needed: threshold.max(matched.saturating_add(1)),
            })
        } else if matched < threshold {
            Err(Error::WrongDevice {
                matched,
                needed: threshold,
            })
        } else {
            Ok(matched)
        }
    }

    /// Checks that `license` is for this device's serial
    /// (`spec/RUNTIME.md` §4):
    /// - with a SW serial: the license's `sub` must equal it;
    /// - without a SW serial but with a HW serial (first activation of an
    ///   appliance): the license's previous serial must equal the HW serial
    ///   (both normalized as HW serials);
    /// - with neither (a fresh VM): the binding alone decides.
    ///
    /// # Errors
    /// [`Error::WrongSerial`].
    pub fn check_serial(&self, license: &License<'_>) -> Result<(), Error> {
        let ok = match (self.sw_serial(), self.hw_serial()) {
            (Some(sw), _) => license.serial() == sw,
            (None, Some(hw)) => license.previous_serial().is_some_and(|previous| {
                let mut buf = [0u8; MAX_VALUE_LEN];
                normalize(ComponentKind::HW_SERIAL, previous.as_bytes(), &mut buf)
                    .is_ok_and(|p| p == hw.as_bytes())
            }),
            (None, None) => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::WrongSerial)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_salt_separate_digests() {
        let a = component_digest(&[0; 16], ComponentKind::HW_SERIAL, b"X1");
        assert_ne!(
            a,
            component_digest(&[0; 16], ComponentKind::DISK_SERIAL, b"X1")
        );
        assert_ne!(
            a,
            component_digest(&[1; 16], ComponentKind::HW_SERIAL, b"X1")
        );
        assert_eq!(
            a,
            component_digest(&[0; 16], ComponentKind::HW_SERIAL, b"X1")
        );
    }

    extern crate std;

    fn norm(kind: ComponentKind, raw: &[u8]) -> Result<std::vec::Vec<u8>, IdentityError> {
        let mut buf = [0u8; MAX_VALUE_LEN];
        normalize(kind, raw, &mut buf).map(<[u8]>::to_vec)
    }

    #[test]
    fn normalization_rules_per_kind() {
        use ComponentKind as K;
        let ok: &[(ComponentKind, &[u8], &[u8])] = &[
            (K::HW_SERIAL, b" hw-7f3a-0042\r\n", b"HW-7F3A-0042"),
            (K::DISK_SERIAL, b"\tWd-123 abc ", b"WD-123 ABC"),
            (K::CPU_ID, b"bfebfbff000906ea", b"BFEBFBFF000906EA"),
            (K::NIC_MAC, b"00:16:3E:5A:1B:2C", b"00163e5a1b2c"),
            (K::NIC_MAC, b"00-16-3e-5a-1b-2c", b"00163e5a1b2c"),
            (K::NIC_MAC, b"0016.3e5a.1b2c", b"00163e5a1b2c"),
            (K::NIC_MAC, b"00163E5A1B2C", b"00163e5a1b2c"),
            (K::IP_ADDR, b"192.0.2.10", b"192.0.2.10"),
            (
                K::IP_ADDR,
                b" 2001:0DB8:0000:0000:0000:0000:0000:0001 ",
                b"2001:db8::1",
            ),
            (K::IP_ADDR, b"2001:db8:0:1:1:1:1:1", b"2001:db8:0:1:1:1:1:1"),
            (K::IP_ADDR, b"::ffff:192.0.2.1", b"192.0.2.1"),
            (K::IP_ADDR, b"fe80::1:0:0:1", b"fe80::1:0:0:1"),
            (
                K::SYSTEM_UUID,
                b"4C4C4544-0042-3510-8056-B4C04F4E3232",
                b"4c4c4544-0042-3510-8056-b4c04f4e3232",
            ),
            (
                K::SYSTEM_UUID,
                b"{4c4c4544-0042-3510-8056-b4c04f4e3232}",
                b"4c4c4544-0042-3510-8056-b4c04f4e3232",
            ),
            (
                K::SYSTEM_UUID,
                b"4C4C4544004235108056B4C04F4E3232",
                b"4c4c4544-0042-3510-8056-b4c04f4e3232",
            ),
            (
                K::MACHINE_ID,
                b"  0F1E2D3C4B5A69788796A5B4C3D2E1F0\n",
                b"0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            ),
            (K::DEVICE_KEY, &[7; 32], &[7; 32]),
        ];
        for (kind, raw, want) in ok {
            assert_eq!(norm(*kind, raw).as_deref(), Ok(*want), "{kind:?} {raw:?}");
        }
        let bad: &[(ComponentKind, &[u8], IdentityError)] = &[
            (K::HW_SERIAL, b"   ", IdentityError::Empty),
            (K::HW_SERIAL, b"HW\0\0", IdentityError::Invalid),
            (K::HW_SERIAL, &[0xff, 0xfe], IdentityError::Invalid),
            (K::HW_SERIAL, &[b'X'; 65], IdentityError::TooLong),
            (K::NIC_MAC, b"00:16:3e:5a:1b", IdentityError::Invalid),
            (K::NIC_MAC, b"00:16:3e:5a:1b:2c:3d", IdentityError::Invalid),
            (K::NIC_MAC, b"00 16 3e 5a 1b 2c", IdentityError::Invalid),
            (K::NIC_MAC, b"g0:16:3e:5a:1b:2c", IdentityError::Invalid),
            (K::NIC_MAC, b"00:00:00:00:00:00", IdentityError::Invalid),
            (K::NIC_MAC, b"FF:FF:FF:FF:FF:FF", IdentityError::Invalid),
            (K::NIC_MAC, b"", IdentityError::Empty),
            (K::IP_ADDR, b"192.0.2.300", IdentityError::Invalid),
            (K::IP_ADDR, b"192.000.002.010", IdentityError::Invalid),
            (K::IP_ADDR, b"fe80::1%eth0", IdentityError::Invalid),
            (K::IP_ADDR, b"0.0.0.0", IdentityError::Invalid),
            (K::IP_ADDR, b"::", IdentityError::Invalid),
            (K::IP_ADDR, b"127.0.0.1", IdentityError::Invalid),
            (K::IP_ADDR, b"::1", IdentityError::Invalid),
            (K::IP_ADDR, b"host.example", IdentityError::Invalid),
            (
                K::SYSTEM_UUID,
                b"4c4c4544-0042-3510-8056-b4c04f4e323",
                IdentityError::Invalid,
            ),
            (
                K::SYSTEM_UUID,
                b"4c4c45440-042-3510-8056-b4c04f4e3232",
                IdentityError::Invalid,
            ),
            (
                K::SYSTEM_UUID,
                b"{4c4c4544-0042-3510-8056-b4c04f4e3232",
                IdentityError::Invalid,
            ),
            (
                K::SYSTEM_UUID,
                b"00000000-0000-0000-0000-000000000000",
                IdentityError::Invalid,
            ),
            (
                K::SYSTEM_UUID,
                b"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
                IdentityError::Invalid,
            ),
            (K::DEVICE_KEY, &[7; 31], IdentityError::Invalid),
            (K::DEVICE_KEY, &[0; 32], IdentityError::Invalid),
            (K::DEVICE_KEY, b"", IdentityError::Empty),
            (ComponentKind(0), b"x", IdentityError::UnknownKind),
            (ComponentKind(9), b"x", IdentityError::UnknownKind),
        ];
        for (kind, raw, want) in bad {
            assert_eq!(norm(*kind, raw), Err(*want), "{kind:?} {raw:?}");
        }
    }

    #[test]
    fn identity_capacity_and_duplicates() {
        let mut id = DeviceIdentity::new();
        let values = b"ABCDEFGHIJKLMNOP";
        for v in values {
            id.add(ComponentKind::DISK_SERIAL, [*v]).unwrap();
        }
        assert_eq!(id.len(), MAX_COMPONENTS);
        // The same normalized value again is no new component.
        id.add(ComponentKind::DISK_SERIAL, " a ").unwrap();
        assert_eq!(
            id.add(ComponentKind::DISK_SERIAL, "Q"),
            Err(IdentityError::Full)
        );
        assert_eq!(id.add(ComponentKind::CPU_ID, "A"), Err(IdentityError::Full));
        assert_eq!(id.len(), MAX_COMPONENTS);
        // Refused values leave the identity unchanged.
        let mut id = DeviceIdentity::new();
        assert_eq!(
            id.add(ComponentKind::NIC_MAC, "nope"),
            Err(IdentityError::Invalid)
        );
        assert!(id.is_empty());
        assert_eq!(id.set_sw_serial(" "), Err(IdentityError::Empty));
        assert_eq!(id.sw_serial(), None);
        id.set_sw_serial(" SW-1 ").unwrap();
        assert_eq!(id.sw_serial(), Some("SW-1"));
        let long = "S".repeat(65);
        assert_eq!(id.set_sw_serial(&long), Err(IdentityError::TooLong));
    }

    #[test]
    fn digests_are_of_normalized_values() {
        let mut id = DeviceIdentity::new();
        id.add(ComponentKind::NIC_MAC, "00:16:3E:5A:1B:2C").unwrap();
        let salt = [9; 16];
        let d: std::vec::Vec<Identity> = id.digests(&salt).collect();
        assert_eq!(
            d,
            [Identity {
                kind: ComponentKind::NIC_MAC,
                digest: component_digest(&salt, ComponentKind::NIC_MAC, b"00163e5a1b2c"),
            }]
        );
        // Debug output names kinds only, never values.
        let dbg = std::format!("{id:?}");
        assert!(!dbg.contains("00163e") && dbg.contains('3'), "{dbg}");
    }

    #[test]
    fn each_license_component_counts_once() {
        // Two NICs on the device, two NIC components in the license.
        let salt = [1; 16];
        let nic = |v: &str| Component {
            kind: ComponentKind::NIC_MAC,
            digest: component_digest(&salt, ComponentKind::NIC_MAC, v.as_bytes()),
            required: false,
        };
        let mut id = DeviceIdentity::new();
        id.add(ComponentKind::NIC_MAC, "001122334455").unwrap();
        id.add(ComponentKind::NIC_MAC, "001122334466").unwrap();
        let both = [nic("001122334455"), nic("001122334466")];
        assert_eq!(id.evaluate(2, &salt, both), Ok(2));
        // One device NIC cannot satisfy two license components.
        let mut one = DeviceIdentity::new();
        one.add(ComponentKind::NIC_MAC, "001122334455").unwrap();
        assert_eq!(
            one.evaluate(2, &salt, both),
            Err(Error::WrongDevice {
                matched: 1,
                needed: 2
            })
        );
        // A component of an unknown kind never matches.
        let unknown = Component {
            kind: ComponentKind(200),
            digest: [0; 16],
            required: false,
        };
        assert_eq!(
            id.evaluate(1, &salt, [unknown]),
            Err(Error::WrongDevice {
                matched: 0,
                needed: 1
            })
        );
        // An empty identity binds to nothing.
        assert_eq!(
            DeviceIdentity::new().evaluate(1, &salt, both),
            Err(Error::WrongDevice {
                matched: 0,
                needed: 1
            })
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const GOOD: [&str; 16] = [
            "A0", "B1", "C2", "D3", "E4", "F5", "G6", "H7", "I8", "J9", "K10", "L11", "M12", "N13",
            "O14", "P15",
        ];
        const SALT: [u8; 16] = *b"property-salt-01";

        fn setup(
            n: usize,
            present: u16,
            required: u16,
        ) -> (DeviceIdentity, std::vec::Vec<Component>) {
            let components = GOOD
                .iter()
                .take(n)
                .enumerate()
                .map(|(i, v)| Component {
                    kind: ComponentKind::DISK_SERIAL,
                    digest: component_digest(&SALT, ComponentKind::DISK_SERIAL, v.as_bytes()),
                    required: required & (1 << i) != 0,
                })
                .collect();
            let mut id = DeviceIdentity::new();
            for (i, v) in GOOD.iter().take(n).enumerate() {
                if present & (1 << i) != 0 {
                    id.add(ComponentKind::DISK_SERIAL, v).unwrap();
                } else {
                    // The replacement part: same kind, another value.
                    id.add(ComponentKind::DISK_SERIAL, std::format!("X{v}"))
                        .unwrap();
                }
            }
            (id, components)
        }

        proptest! {
            /// Any k of n matching components bind; any k − 1 do not.
            #[test]
            fn any_k_of_n_binds_and_k_minus_1_does_not(
                n in 1usize..=16,
                k_seed in any::<u8>(),
                order in Just((0..16u8).collect::<std::vec::Vec<u8>>()).prop_shuffle(),
            ) {
                let k = k_seed as usize % n + 1;
                // The first k (resp. k - 1) indices of a random permutation of 0..n.
                let subset = |m: usize| order.iter().filter(|&&i| usize::from(i) < n).take(m).fold(0u16, |acc, &i| acc | 1 << i);
                let threshold = u8::try_from(k).unwrap();
                let (id, comps) = setup(n, subset(k), 0);
                prop_assert_eq!(id.evaluate(threshold, &SALT, comps.iter().copied()), Ok(threshold));
                let (id, comps) = setup(n, subset(k - 1), 0);
                prop_assert_eq!(
                    id.evaluate(threshold, &SALT, comps.iter().copied()),
                    Err(Error::WrongDevice { matched: threshold - 1, needed: threshold })
                );
            }

            /// With required components: binds iff at least k match and
            /// every required one does; the error always has matched < needed.
            #[test]
            fn required_components_must_match(n in 1usize..=16, k_seed in any::<u8>(), present in any::<u16>(), required in any::<u16>()) {
                let k = k_seed as usize % n + 1;
                let mask = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
                let (present, required) = (present & mask, required & mask);
                let (id, comps) = setup(n, present, required);
                let matched = u8::try_from(present.count_ones()).unwrap();
                let threshold = u8::try_from(k).unwrap();
                let binds = matched >= threshold && required & !present == 0;
                match id.evaluate(threshold, &SALT, comps.iter().copied()) {
                    Ok(m) => { prop_assert!(binds); prop_assert_eq!(m, matched); }
                    Err(Error::WrongDevice { matched: m, needed }) => {
                        prop_assert!(!binds);
                        prop_assert_eq!(m, matched);
                        prop_assert!(needed > m && needed >= threshold);
                        let want = if required & !present != 0 { threshold.max(matched + 1) } else { threshold };
                        prop_assert_eq!(needed, want);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }
        }
    }
}
