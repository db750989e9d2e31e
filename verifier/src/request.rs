//! Requests written without a heap (`spec/FORMAT.md` §7): what firmware
//! sends the vendor for a first activation or a renewal, encoded and signed
//! into a caller buffer.
//!
//! The device key signs the request. Firmware keeps that key where it
//! likes: [`sign`] hands the Sig_structure to a function of the caller (a
//! secure element, a key in protected flash), [`sign_with_seed`] signs with
//! ed25519-dalek when the firmware holds the 32-byte seed. Either way the
//! bytes are those of the encoder with a heap (`encode::sign_request`,
//! feature `alloc`; a property test holds them equal), and the Sig_structure
//! is built in the output buffer itself, so no second buffer is needed.
//!
//! ```
//! use tessera_verifier::claims::{ComponentKind, Identity, Platform};
//! use tessera_verifier::request::{sign_with_seed, RequestFields, MAX_REQUEST_LEN};
//! use tessera_verifier::{armor, decode_request};
//!
//! let seed = [7u8; 32]; // the device key, held by the firmware
//! let device_key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
//! let identity = [Identity { kind: ComponentKind::HW_SERIAL, digest: [1; 16] }];
//! let fields = RequestFields {
//!     serial: None,
//!     hw_serial: Some("HW-7F3A-0042"),
//!     created_at: 1_767_225_600,
//!     nonce: [9; 16],
//!     platform: Platform::Hw,
//!     salt: [5; 16],
//!     identity: &identity,
//!     current: None,
//!     last_renewal: None,
//!     device_key,
//! };
//! let mut buf = [0u8; MAX_REQUEST_LEN];
//! let request = sign_with_seed(&fields, &seed, &mut buf)?;
//! assert_eq!(decode_request(request)?.hw_serial(), Some("HW-7F3A-0042"));
//! // Armored into a caller buffer, for the partner to carry.
//! let mut text = [0u8; armor::encoded_len(MAX_REQUEST_LEN, armor::LABEL_REQUEST)];
//! let text = armor::encode_into(request, armor::LABEL_REQUEST, &mut text)?;
//! assert!(text.starts_with("-----BEGIN TESSERA REQUEST-----\n"));
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use core::convert::Infallible;
use core::fmt;

use crate::cbor::{self, Encoder, Fill, Output, MAJOR_BSTR};
use crate::claims::{
    self, cwt, limits, request_key, ComponentKind, Identity, Platform, FORMAT_VERSION, ID_LEN,
    PRIVATE_CLAIM, SALT_LEN,
};
use crate::cose::{self, ObjectType, MAX_PROTECTED_LEN, SIGNATURE1, TAG_COSE_SIGN1};
use crate::keyring::key_id;
use crate::signature::SIGNATURE_LEN;
use crate::Malformed;

/// Room that always suffices for a signed request: every string and
/// collection at its cap (§6.4) fits, with a margin (a test holds it).
pub const MAX_REQUEST_LEN: usize = 768;

/// What a request says, borrowed: the no-heap counterpart of
/// `encode::RequestData` (feature `alloc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestFields<'a> {
    /// SW serial, once the device has one.
    pub serial: Option<&'a str>,
    /// HW serial (first activation of an appliance, before it has a SW
    /// serial).
    pub hw_serial: Option<&'a str>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Random nonce: firmware draws it from its random source.
    pub nonce: [u8; ID_LEN],
    /// Platform.
    pub platform: Platform,
    /// Salt of the identity digests: the salt of the installed license's
    /// binding for a renewal, a fresh random one otherwise.
    pub salt: [u8; SALT_LEN],
    /// Identity digests under `salt`, in any order (encoded sorted), 1 to
    /// 16 ([`crate::DeviceIdentity::digests`]).
    pub identity: &'a [Identity],
    /// License in force: id and sequence ([`crate::State::license_id`],
    /// [`crate::State::sequence`]).
    pub current: Option<([u8; ID_LEN], u32)>,
    /// Last successful renewal ([`crate::State::last_renewal`]).
    pub last_renewal: Option<i64>,
    /// Device public key that signs the request.
    pub device_key: [u8; 32],
}

/// Why encoding failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError<E> {
    /// The content breaks a format rule (the decoder's reason).
    Invalid(Malformed),
    /// The signer failed.
    Sign(E),
    /// The output buffer is too small; this many bytes are needed
    /// ([`MAX_REQUEST_LEN`] always suffice for a request).
    Buffer {
        /// Bytes the object needs.
        needed: usize,
    },
    /// The seed given to sign does not belong to the request's device key.
    WrongKey,
}

impl<E: fmt::Display> fmt::Display for EncodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) => write!(f, "the content breaks a format rule: {m}"),
            Self::Sign(e) => write!(f, "signing failed: {e}"),
            Self::Buffer { needed } => write!(
                f,
                "the output buffer is too small: {needed} bytes are needed"
            ),
            Self::WrongKey => f.write_str(
                "the signing key is not the device key the request names; sign with the device key",
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for EncodeError<E> {}

impl<E> From<Malformed> for EncodeError<E> {
    fn from(m: Malformed) -> Self {
        Self::Invalid(m)
    }
}

/// A CWT claim value ([`write_claims`]).
pub(crate) enum Claim<'a> {
    /// A text string.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// Writes a CWT claims map: the given standard claims (in key order), then
/// the private claim written by `private`.
pub(crate) fn write_claims<O: Output>(
    w: &mut Encoder<O>,
    standard: &[Option<(i64, Claim<'_>)>],
    private: impl FnOnce(&mut Encoder<O>),
) {
    w.map(standard.iter().flatten().count() + 1);
    for (k, v) in standard.iter().flatten() {
        w.int(*k);
        match v {
            Claim::Text(s) => w.tstr(s),
            Claim::Int(i) => w.int(*i),
            Claim::Bytes(b) => w.bstr(b),
        };
    }
    w.int(PRIVATE_CLAIM);
    private(w);
}

/// Writes the claims set of a request (§7.2), deterministically: the one
/// definition of a request payload, with and without a heap.
///
/// # Errors
/// [`Malformed::TooManyItems`] for more than 16 identity digests; the rest
/// is checked by decoding the result ([`sign`]).
pub fn write_payload<O: Output>(
    r: &RequestFields<'_>,
    w: &mut Encoder<O>,
) -> Result<(), Malformed> {
    let mut identity = [Identity {
        kind: ComponentKind(0),
        digest: [0; claims::DIGEST_LEN],
    }; limits::COMPONENTS];
    let sorted = identity
        .get_mut(..r.identity.len())
        .ok_or(Malformed::TooManyItems)?;
    sorted.copy_from_slice(r.identity);
    sorted.sort_unstable();
    let sorted = &*sorted;
    write_claims(
        w,
        &[
            r.serial.map(|s| (cwt::SUB, Claim::Text(s))),
            Some((cwt::IAT, Claim::Int(r.created_at))),
            Some((cwt::CTI, Claim::Bytes(&r.nonce))),
        ],
        |p| {
            let entries = 4
                + usize::from(r.hw_serial.is_some())
                + usize::from(r.current.is_some())
                + usize::from(r.last_renewal.is_some());
            p.map(entries);
            p.int(request_key::VERSION).uint(FORMAT_VERSION.into());
            p.int(request_key::PLATFORM).uint(r.platform.code().into());
            if let Some(hw) = r.hw_serial {
                p.int(request_key::HW_SERIAL).tstr(hw);
            }
            p.int(request_key::IDENTITY)
                .array(2)
                .bstr(&r.salt)
                .array(sorted.len());
            for i in sorted {
                p.array(2).uint(i.kind.0.into()).bstr(&i.digest);
            }
            if let Some((id, seq)) = &r.current {
                p.int(request_key::CURRENT)
                    .array(2)
                    .bstr(id)
                    .uint((*seq).into());
            }
            if let Some(t) = r.last_renewal {
                p.int(request_key::LAST_RENEWAL).int(t);
            }
            p.int(request_key::DEVICE_KEY).bstr(&r.device_key);
        },
    );
    Ok(())
}

impl RequestFields<'_> {
    /// The format's rules for a request's content (§6.4, §7.2), checked on
    /// the fields: what decoding the encoded request would refuse, with the
    /// decoder's reason (a test holds the two equal). Cheaper on firmware
    /// than decoding (about 1.4 KiB of flash less).
    ///
    /// # Errors
    /// [`Malformed::BadLength`] for a serial over 64 bytes,
    /// [`Malformed::TooManyItems`] for more than 16 identity digests,
    /// [`Malformed::DuplicateKey`] for one twice,
    /// [`Malformed::MissingField`] for none or for neither serial,
    /// [`Malformed::BadValue`] for an empty serial.
    pub fn check(&self) -> Result<(), Malformed> {
        // In the order the encoder and then the decoder meet them.
        if self.identity.len() > limits::COMPONENTS {
            return Err(Malformed::TooManyItems);
        }
        for text in [self.serial, self.hw_serial].into_iter().flatten() {
            if text.len() > limits::SERIAL_LEN {
                return Err(Malformed::BadLength);
            }
        }
        for (i, a) in self.identity.iter().enumerate() {
            if self.identity.iter().skip(i + 1).any(|b| a == b) {
                return Err(Malformed::DuplicateKey);
            }
        }
        if self.identity.is_empty() || (self.serial.is_none() && self.hw_serial.is_none()) {
            return Err(Malformed::MissingField);
        }
        if self.serial == Some("") || self.hw_serial == Some("") {
            return Err(Malformed::BadValue);
        }
        Ok(())
    }
}

/// Length of the shortest CBOR head for `arg`.
fn head_len(arg: u64) -> usize {
    let mut buf = [0u8; 9];
    cbor::head(MAJOR_BSTR, arg, &mut buf).len()
}

/// Encodes and signs a request into `out` and returns the tagged
/// COSE_Sign1 (§7.1), ready for [`crate::armor::encode_into`]: a part of
/// `out`, not at its start (the Sig_structure that was signed began
/// there; see below).
///
/// `sign` gets the Sig_structure, once, and returns the Ed25519 signature
/// of it by the device key `r.device_key`; the kid is derived from that
/// key. The content is checked before it is signed
/// ([`RequestFields::check`]), so nothing this writes is refused by the
/// decoder for its content; a signer holding another key is not detected
/// here (the vendor's `decode_request` is).
///
/// # Errors
/// [`EncodeError::Invalid`] when the content breaks a format rule,
/// [`EncodeError::Buffer`] when `out` is too small (nothing is signed
/// then), [`EncodeError::Sign`] with the signer's error.
pub fn sign<'o, E>(
    r: &RequestFields<'_>,
    out: &'o mut [u8],
    sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
) -> Result<&'o [u8], EncodeError<E>> {
    r.check()?;
    let mut protected = [0u8; MAX_PROTECTED_LEN];
    let mut w = Encoder::to(Fill::new(&mut protected));
    cose::write_protected(&mut w, &key_id(&r.device_key), ObjectType::Request);
    let protected_len = w.output().len();
    let protected = protected.get(..protected_len).ok_or(Malformed::TooLarge)?;

    // The payload's length first (a counting pass), then the layout:
    //   Sig_structure = [ "Signature1", protected, h'', payload ]
    //   COSE_Sign1    = 18([ protected, {}, payload, signature ])
    // The payload is written once, after the Sig_structure's prefix at the
    // start of `out`; after signing, the COSE_Sign1's prefix (10 bytes
    // shorter) is written right before the payload and the signature after
    // it. Nothing is moved (a memmove costs firmware 1.5 KiB of flash).
    let mut count = Encoder::to(Fill::new(&mut []));
    write_payload(r, &mut count)?;
    let payload_len = count.output().len();
    let shared = head_len(protected.len() as u64) + protected.len();
    let sig_prefix = 1 + head_len(SIGNATURE1.len() as u64) + SIGNATURE1.len() + shared + 1;
    let cose_prefix = head_len(TAG_COSE_SIGN1) + 1 + shared + 1;
    let payload_head = head_len(payload_len as u64);
    let signed_len = sig_prefix + payload_head + payload_len;
    let start = sig_prefix - cose_prefix;
    let end = signed_len + head_len(SIGNATURE_LEN as u64) + SIGNATURE_LEN;
    if out.len() < end {
        return Err(EncodeError::Buffer { needed: end });
    }

    let mut w = Encoder::to(Fill::new(out));
    w.array(4)
        .tstr(SIGNATURE1)
        .bstr(protected)
        .bstr(&[])
        .head(MAJOR_BSTR, payload_len as u64);
    write_payload(r, &mut w)?;
    if w.output().len() != signed_len {
        return Err(Malformed::BadLength.into());
    }
    let payload_at = sig_prefix + payload_head;
    let signature =
        sign(out.get(..signed_len).ok_or(Malformed::Truncated)?).map_err(EncodeError::Sign)?;

    let mut w = Encoder::to(Fill::new(
        out.get_mut(start..payload_at).ok_or(Malformed::Truncated)?,
    ));
    w.tag(TAG_COSE_SIGN1)
        .array(4)
        .bstr(protected)
        .map(0)
        .head(MAJOR_BSTR, payload_len as u64);
    let mut w = Encoder::to(Fill::new(
        out.get_mut(signed_len..end).ok_or(Malformed::Truncated)?,
    ));
    w.bstr(&signature);
    out.get(start..end).ok_or(Malformed::Truncated.into())
}

/// [`sign`] with the device key's 32-byte seed, for firmware that holds the
/// key itself (ed25519-dalek signs).
///
/// # Errors
/// As [`sign`], and [`EncodeError::WrongKey`] when the seed's public key
/// is not `r.device_key`.
pub fn sign_with_seed<'o>(
    r: &RequestFields<'_>,
    seed: &[u8; 32],
    out: &'o mut [u8],
) -> Result<&'o [u8], EncodeError<Infallible>> {
    use ed25519_dalek::Signer as _;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    if key.verifying_key().to_bytes() != r.device_key {
        return Err(EncodeError::WrongKey);
    }
    sign(r, out, |m| Ok(key.sign(m).to_bytes()))
}

#[cfg(test)]
mod tests;
