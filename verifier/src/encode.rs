//! Deterministic encoders (feature `alloc`): owned license and request
//! contents and their encoding (`spec/FORMAT.md` §6.2).
//!
//! Every encoder decodes its own output with the strict decoder before
//! returning it, so nothing this crate writes can be refused by it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::cbor::Writer;
use crate::checkpoint::{self, HEAD_LEN, LEDGER_ID_LEN};
use crate::claims::{
    self, cwt, key, Component, Identity, Platform, Policy, Term, FORMAT_VERSION, ID_LEN, SALT_LEN,
};
use crate::cose::{self, ObjectType};
use crate::keyring::KeyId;
use crate::request::{self, write_claims, Claim, RequestFields};
use crate::signature::SIGNATURE_LEN;
use crate::Malformed;

/// A base license with its add-ons, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseData {
    /// Catalog code.
    pub code: u16,
    /// Licensed count.
    pub count: u32,
    /// Add-ons: (code, count).
    pub addons: Vec<claims::Addon>,
}

/// Entitlements, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntitlementsData {
    /// Profile counts.
    pub profiles: Vec<claims::Profile>,
    /// Features.
    pub features: Vec<claims::Feature>,
    /// Base licenses with add-ons.
    pub bases: Vec<BaseData>,
    /// Storage units (1 unit = 10 GB).
    pub storage_units: u32,
}

/// Sharing role, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SharingData {
    /// Not shared.
    #[default]
    None,
    /// Server.
    Server,
    /// Client of the server with this SW serial.
    Client(String),
}

/// Binding, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingData {
    /// Threshold k.
    pub threshold: u8,
    /// Digest salt.
    pub salt: [u8; SALT_LEN],
    /// Components (any order; encoded sorted).
    pub components: Vec<Component>,
}

/// Everything a license says, owned: the input of [`encode_license_payload`]
/// and the output of [`crate::License::to_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseData {
    /// Vendor id (`iss`).
    pub issuer: String,
    /// SW serial (`sub`).
    pub serial: String,
    /// Issue time (`iat`).
    pub issued_at: i64,
    /// Not before (`nbf`).
    pub not_before: i64,
    /// Lease end (`exp`).
    pub lease_end: i64,
    /// License id (`cti`).
    pub id: [u8; ID_LEN],
    /// Platform.
    pub platform: Platform,
    /// Sequence per serial.
    pub sequence: u32,
    /// Binding.
    pub binding: BindingData,
    /// HW serial converted to this SW serial.
    pub previous_serial: Option<String>,
    /// Term.
    pub term: Term,
    /// Lease / grace policy.
    pub policy: Policy,
    /// Entitlements.
    pub entitlements: EntitlementsData,
    /// Services.
    pub services: Vec<claims::Service>,
    /// Sharing role.
    pub sharing: SharingData,
    /// Customer name.
    pub customer: String,
    /// PBX name.
    pub pbx_name: String,
}

/// Everything a request says, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestData {
    /// SW serial, once known.
    pub serial: Option<String>,
    /// HW serial (first activation of an appliance).
    pub hw_serial: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Random nonce.
    pub nonce: [u8; ID_LEN],
    /// Platform.
    pub platform: Platform,
    /// Salt of the identity digests.
    pub salt: [u8; SALT_LEN],
    /// Identity digests (any order; encoded sorted).
    pub identity: Vec<Identity>,
    /// License in force: id and sequence.
    pub current: Option<([u8; ID_LEN], u32)>,
    /// Last successful renewal.
    pub last_renewal: Option<i64>,
    /// Device public key that signs the request.
    pub device_key: [u8; 32],
}

fn sorted<T: Clone, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(key);
    v
}

fn write_component(w: &mut Writer, c: &Component) {
    w.array(3)
        .uint(c.kind.0.into())
        .bstr(&c.digest)
        .bool(c.required);
}

fn write_term(w: &mut Writer, t: &Term) {
    w.array(3).uint(t.cycle.code().into()).int(t.start);
    match t.end {
        Some(end) => w.int(end),
        None => w.null(),
    };
}

fn write_policy(w: &mut Writer, p: &Policy) {
    w.array(5)
        .uint(p.grace.into())
        .uint(p.after_grace.code().into())
        .uint(p.renewal_window.into())
        .uint(p.check_interval.into())
        .uint(p.rollback_tolerance.into());
}

fn write_entitlements(w: &mut Writer, e: &EntitlementsData) {
    w.array(4);
    let profiles = sorted(&e.profiles, |p| p.code);
    w.map(profiles.len());
    for p in &profiles {
        w.uint(p.code.into()).uint(p.count.into());
    }
    let features = sorted(&e.features, |f| f.code);
    w.map(features.len());
    for f in &features {
        w.uint(f.code.into())
            .array(3)
            .uint(f.category.code().into())
            .uint(f.quantity.into())
            .bool(f.hidden);
    }
    let bases = sorted(&e.bases, |b| b.code);
    w.map(bases.len());
    for b in &bases {
        w.uint(b.code.into()).array(2).uint(b.count.into());
        let addons = sorted(&b.addons, |a| a.code);
        w.map(addons.len());
        for a in &addons {
            w.uint(a.code.into()).uint(a.count.into());
        }
    }
    w.uint(e.storage_units.into());
}

/// Encodes the CWT claims set of a license (§5), deterministically.
///
/// # Errors
/// The [`Malformed`] reason the strict decoder gives for the result: a
/// value over a cap, a duplicate code, an incoherent term, ...
pub fn encode_license_payload(l: &LicenseData) -> Result<Vec<u8>, Malformed> {
    let mut p = Writer::new();
    let entries = 11 + usize::from(l.previous_serial.is_some());
    p.map(entries);
    p.int(key::VERSION).uint(FORMAT_VERSION.into());
    p.int(key::PLATFORM).uint(l.platform.code().into());
    p.int(key::SEQUENCE).uint(l.sequence.into());
    p.int(key::BINDING)
        .array(3)
        .uint(l.binding.threshold.into())
        .bstr(&l.binding.salt);
    let components = sorted(&l.binding.components, |c| (c.kind, c.digest));
    p.array(components.len());
    for c in &components {
        write_component(&mut p, c);
    }
    if let Some(prev) = &l.previous_serial {
        p.int(key::PREVIOUS_SERIAL).tstr(prev);
    }
    p.int(key::TERM);
    write_term(&mut p, &l.term);
    p.int(key::POLICY);
    write_policy(&mut p, &l.policy);
    p.int(key::ENTITLEMENTS);
    write_entitlements(&mut p, &l.entitlements);
    p.int(key::SERVICES);
    let services = sorted(&l.services, |s| s.code);
    p.map(services.len());
    for s in &services {
        p.uint(s.code.into()).array(2).int(s.start).int(s.end);
    }
    p.int(key::SHARING);
    match &l.sharing {
        SharingData::None => p.array(1).uint(0),
        SharingData::Server => p.array(1).uint(1),
        SharingData::Client(server) => p.array(2).uint(2).tstr(server),
    };
    p.int(key::CUSTOMER).tstr(&l.customer);
    p.int(key::PBX_NAME).tstr(&l.pbx_name);

    let mut w = Writer::new();
    write_claims(
        &mut w,
        &[
            Some((cwt::ISS, Claim::Text(&l.issuer))),
            Some((cwt::SUB, Claim::Text(&l.serial))),
            Some((cwt::EXP, Claim::Int(l.lease_end))),
            Some((cwt::NBF, Claim::Int(l.not_before))),
            Some((cwt::IAT, Claim::Int(l.issued_at))),
            Some((cwt::CTI, Claim::Bytes(&l.id))),
        ],
        |w| {
            w.raw(&p.into_bytes());
        },
    );
    let bytes = w.into_bytes();
    claims::parse_license(&bytes, [0; 8])?;
    Ok(bytes)
}

/// Encodes and signs a license: a tagged COSE_Sign1 ready for
/// [`crate::armor::encode`].
///
/// `sign` returns the Ed25519 signature of the bytes it is given (for
/// example a `tessera_keys` signer).
///
/// # Errors
/// [`EncodeError::Invalid`] when the content breaks a format rule,
/// [`EncodeError::Sign`] with the signer's error.
pub fn sign_license<E>(
    l: &LicenseData,
    kid: &KeyId,
    sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
) -> Result<Vec<u8>, EncodeError<E>> {
    let payload = encode_license_payload(l).map_err(EncodeError::Invalid)?;
    cose::encode::sign(kid, ObjectType::License, &payload, sign).map_err(EncodeError::Sign)
}

/// Encodes the claims set of a request (§7), with
/// [`crate::request::write_payload`], the one definition of a request
/// payload.
///
/// # Errors
/// The [`Malformed`] reason the strict decoder gives for the result.
pub fn encode_request_payload(r: &RequestData) -> Result<Vec<u8>, Malformed> {
    let mut w = Writer::new();
    request::write_payload(&r.fields(), &mut w)?;
    let bytes = w.into_bytes();
    claims::parse_request(&bytes)?;
    Ok(bytes)
}

/// Encodes and signs a request with the device key; the kid is derived
/// from `r.device_key`.
///
/// # Errors
/// As [`sign_license`].
pub fn sign_request<E>(
    r: &RequestData,
    sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
) -> Result<Vec<u8>, EncodeError<E>> {
    let payload = encode_request_payload(r).map_err(EncodeError::Invalid)?;
    let kid = crate::keyring::key_id(&r.device_key);
    cose::encode::sign(&kid, ObjectType::Request, &payload, sign).map_err(EncodeError::Sign)
}

pub use crate::request::EncodeError;

/// A ledger checkpoint's content, owned (§10): the input of
/// [`encode_checkpoint_payload`] and the output of
/// [`crate::Checkpoint::to_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointData {
    /// Vendor id (`iss`).
    pub issuer: String,
    /// Signing time (`iat`).
    pub issued_at: i64,
    /// The ledger it speaks for.
    pub ledger_id: [u8; LEDGER_ID_LEN],
    /// Journal entries covered (at least 1).
    pub entries: u64,
    /// Hash of the last covered entry.
    pub head: [u8; HEAD_LEN],
    /// Entries covered by the ledger's checkpoint before this one (the
    /// one it follows); `None` for a ledger's first checkpoint.
    pub previous: Option<u64>,
}

/// Encodes the CWT claims set of a checkpoint (§10.2), deterministically.
///
/// # Errors
/// The [`Malformed`] reason the strict decoder gives for the result (an
/// empty or over-long vendor id, zero entries).
pub fn encode_checkpoint_payload(c: &CheckpointData) -> Result<Vec<u8>, Malformed> {
    let mut p = Writer::new();
    p.map(if c.previous.is_some() { 5 } else { 4 });
    p.int(checkpoint::key::VERSION)
        .uint(FORMAT_VERSION.into())
        .int(checkpoint::key::LEDGER)
        .bstr(&c.ledger_id)
        .int(checkpoint::key::ENTRIES)
        .uint(c.entries)
        .int(checkpoint::key::HEAD)
        .bstr(&c.head);
    if let Some(previous) = c.previous {
        p.int(checkpoint::key::PREVIOUS).uint(previous);
    }
    let mut w = Writer::new();
    write_claims(
        &mut w,
        &[
            Some((cwt::ISS, Claim::Text(&c.issuer))),
            Some((cwt::IAT, Claim::Int(c.issued_at))),
        ],
        |w| {
            w.raw(&p.into_bytes());
        },
    );
    let bytes = w.into_bytes();
    checkpoint::parse_checkpoint(&bytes, [0; 8])?;
    Ok(bytes)
}

/// Encodes and signs a checkpoint with the vendor key `kid`: a tagged
/// COSE_Sign1 of type `tessera-checkpoint`, ready for
/// [`crate::armor::encode`] with [`crate::armor::LABEL_CHECKPOINT`].
///
/// # Errors
/// As [`sign_license`].
pub fn sign_checkpoint<E>(
    c: &CheckpointData,
    kid: &KeyId,
    sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
) -> Result<Vec<u8>, EncodeError<E>> {
    let payload = encode_checkpoint_payload(c).map_err(EncodeError::Invalid)?;
    cose::encode::sign(kid, ObjectType::Checkpoint, &payload, sign).map_err(EncodeError::Sign)
}

impl crate::Checkpoint<'_> {
    /// The owned content of this checkpoint (feature `alloc`).
    #[must_use]
    pub fn to_data(&self) -> CheckpointData {
        CheckpointData {
            issuer: self.issuer().into(),
            issued_at: self.issued_at(),
            ledger_id: self.ledger_id(),
            entries: self.entries(),
            head: self.head(),
            previous: self.previous(),
        }
    }
}

impl crate::License<'_> {
    /// The owned content of this license (feature `alloc`); encoding it
    /// gives the same payload bytes.
    #[must_use]
    pub fn to_data(&self) -> LicenseData {
        let binding = self.binding();
        let e = self.entitlements();
        LicenseData {
            issuer: self.issuer().into(),
            serial: self.serial().into(),
            issued_at: self.issued_at(),
            not_before: self.not_before(),
            lease_end: self.lease_end(),
            id: self.id(),
            platform: self.platform(),
            sequence: self.sequence(),
            binding: BindingData {
                threshold: binding.threshold,
                salt: binding.salt,
                components: binding.components.collect(),
            },
            previous_serial: self.previous_serial().map(String::from),
            term: self.term(),
            policy: self.policy(),
            entitlements: EntitlementsData {
                profiles: e.profiles.collect(),
                features: e.features.collect(),
                bases: e
                    .bases
                    .map(|b| BaseData {
                        code: b.code,
                        count: b.count,
                        addons: b.addons.collect(),
                    })
                    .collect(),
                storage_units: e.storage_units,
            },
            services: self.services().collect(),
            sharing: match self.sharing() {
                claims::Sharing::None => SharingData::None,
                claims::Sharing::Server => SharingData::Server,
                claims::Sharing::Client(s) => SharingData::Client(s.into()),
            },
            customer: self.customer().into(),
            pbx_name: self.pbx_name().into(),
        }
    }
}

impl crate::Request<'_> {
    /// The owned content of this request (feature `alloc`).
    #[must_use]
    pub fn to_data(&self) -> RequestData {
        RequestData {
            serial: self.serial().map(String::from),
            hw_serial: self.hw_serial().map(String::from),
            created_at: self.created_at(),
            nonce: self.nonce(),
            platform: self.platform(),
            salt: self.salt(),
            identity: self.identity().collect(),
            current: self.current(),
            last_renewal: self.last_renewal(),
            device_key: self.device_key(),
        }
    }
}

impl LicenseData {
    /// The same content with every collection in encoding order, for
    /// comparing contents regardless of the order they were given in.
    #[must_use]
    pub fn sorted(&self) -> Self {
        let mut l = self.clone();
        l.binding.components.sort_by_key(|c| (c.kind, c.digest));
        l.entitlements.profiles.sort_by_key(|p| p.code);
        l.entitlements.features.sort_by_key(|f| f.code);
        l.entitlements.bases.sort_by_key(|b| b.code);
        for b in &mut l.entitlements.bases {
            b.addons.sort_by_key(|a| a.code);
        }
        l.services.sort_by_key(|s| s.code);
        l
    }
}

impl RequestData {
    /// The same content, borrowed, as the encoder without a heap takes it.
    #[must_use]
    pub fn fields(&self) -> RequestFields<'_> {
        RequestFields {
            serial: self.serial.as_deref(),
            hw_serial: self.hw_serial.as_deref(),
            created_at: self.created_at,
            nonce: self.nonce,
            platform: self.platform,
            salt: self.salt,
            identity: &self.identity,
            current: self.current,
            last_renewal: self.last_renewal,
            device_key: self.device_key,
        }
    }

    /// The same content with the identity in encoding order.
    #[must_use]
    pub fn sorted(&self) -> Self {
        let mut r = self.clone();
        r.identity.sort();
        r
    }
}
