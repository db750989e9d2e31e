//! COSE_Sign1 envelope (RFC 9052 §4.2) as used by tessera
//! (`spec/FORMAT.md` §3): parsing the four-element structure, the protected
//! header, and verifying the signature over the Sig_structure without
//! copying it.

use crate::cbor::{self, Reader, MAJOR_ARRAY, MAJOR_BSTR, MAJOR_TSTR};
use crate::keyring::{KeyId, KEY_ID_LEN};
use crate::signature::{verify_parts, PublicKey, SIGNATURE_LEN};
use crate::{Error, Malformed};

/// Size cap for any signed object, armored or not, after base64 decoding
/// (§6.4).
pub const MAX_OBJECT_LEN: usize = 4096;
/// Size cap of the encoded protected header (§3.2).
pub const MAX_PROTECTED_LEN: usize = 64;
/// CBOR tag of COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;
/// COSE header label `alg`.
pub const LABEL_ALG: i64 = 1;
/// COSE header label `kid`.
pub const LABEL_KID: i64 = 4;
/// COSE header label `typ` (RFC 9596).
pub const LABEL_TYP: i64 = 16;
/// COSE algorithm EdDSA, written by tessera.
pub const ALG_EDDSA: i64 = -8;
/// COSE algorithm Ed25519 (fully specified), accepted on input.
pub const ALG_ED25519: i64 = -19;
/// `typ` of a license.
pub const TYP_LICENSE: &str = "tessera-license";
/// `typ` of a request.
pub const TYP_REQUEST: &str = "tessera-request";
/// The context string of a COSE_Sign1 Sig_structure.
const SIGNATURE1: &str = "Signature1";

/// Which kind of signed object a `typ` names (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// A license, signed by the vendor.
    License,
    /// A request, signed by the device.
    Request,
}

impl ObjectType {
    /// The `typ` header value.
    #[must_use]
    pub fn typ(self) -> &'static str {
        match self {
            Self::License => TYP_LICENSE,
            Self::Request => TYP_REQUEST,
        }
    }
}

/// A parsed, not yet verified COSE_Sign1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sign1<'a> {
    /// Signature algorithm: [`ALG_EDDSA`] or [`ALG_ED25519`].
    pub alg: i64,
    /// Key id of the signer.
    pub kid: KeyId,
    /// Object type from the `typ` header.
    pub object_type: ObjectType,
    /// The encoded protected header, as signed.
    pub protected: &'a [u8],
    /// The payload (a CWT claims set), as signed.
    pub payload: &'a [u8],
    /// The Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Parses a COSE_Sign1 (§3.1); does not verify the signature.
///
/// # Errors
/// [`Error::Malformed`] with the first strict-decoding rule broken.
pub fn parse(bytes: &[u8]) -> Result<Sign1<'_>, Error> {
    if bytes.len() > MAX_OBJECT_LEN {
        return Err(Malformed::TooLarge.into());
    }
    let mut r = Reader::new(bytes);
    if r.peek_major()? != cbor::MAJOR_TAG || r.tag()? != TAG_COSE_SIGN1 {
        return Err(Malformed::NotSign1.into());
    }
    if r.peek_major()? != MAJOR_ARRAY {
        return Err(Malformed::NotSign1.into());
    }
    r.array_of(4).map_err(|e| match e {
        Malformed::BadLength => Malformed::NotSign1,
        other => other,
    })?;
    let protected = r.bstr(MAX_PROTECTED_LEN)?;
    let (alg, kid, object_type) = parse_protected(protected)?;
    // The unprotected header must be empty: nothing unsigned may influence
    // the decision.
    if r.map(0).map_err(|e| match e {
        Malformed::TooManyItems => Malformed::BadValue,
        other => other,
    })? != 0
    {
        return Err(Malformed::BadValue.into());
    }
    let payload = r.bstr(MAX_OBJECT_LEN)?;
    let signature = r.bstr_array::<SIGNATURE_LEN>()?;
    r.finish()?;
    Ok(Sign1 {
        alg,
        kid,
        object_type,
        protected,
        payload,
        signature,
    })
}

fn parse_protected(bytes: &[u8]) -> Result<(i64, KeyId, ObjectType), Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map(3)?;
    let mut keys = cbor::MapKeys::new();
    let (mut alg, mut kid, mut typ) = (None, None, None);
    for _ in 0..n {
        match r.key(&mut keys)? {
            LABEL_ALG => {
                let a = r.int()?;
                if a != ALG_EDDSA && a != ALG_ED25519 {
                    return Err(Malformed::UnsupportedAlgorithm);
                }
                alg = Some(a);
            }
            LABEL_KID => kid = Some(r.bstr_array::<KEY_ID_LEN>()?),
            LABEL_TYP => {
                if r.peek_major()? != MAJOR_TSTR {
                    return Err(Malformed::UnexpectedType);
                }
                typ = Some(match r.tstr(32)? {
                    TYP_LICENSE => ObjectType::License,
                    TYP_REQUEST => ObjectType::Request,
                    _ => return Err(Malformed::BadValue),
                });
            }
            _ => return Err(Malformed::BadValue),
        }
    }
    r.finish()?;
    match (alg, kid, typ) {
        (Some(alg), Some(kid), Some(typ)) => Ok((alg, kid, typ)),
        _ => Err(Malformed::MissingField),
    }
}

impl Sign1<'_> {
    /// Verifies the signature with `public_key` over the Sig_structure
    /// `["Signature1", protected, h'', payload]` (RFC 9052 §4.4), streamed
    /// piece by piece.
    ///
    /// # Errors
    /// [`Error::BadSignature`].
    pub fn verify_with(&self, public_key: &PublicKey) -> Result<(), Error> {
        let mut array = [0u8; 9];
        let mut context = [0u8; 9];
        let mut protected = [0u8; 9];
        let mut aad = [0u8; 9];
        let mut payload = [0u8; 9];
        verify_parts(
            public_key,
            &[
                cbor::head(MAJOR_ARRAY, 4, &mut array),
                cbor::head(cbor::MAJOR_TSTR, SIGNATURE1.len() as u64, &mut context),
                SIGNATURE1.as_bytes(),
                cbor::head(MAJOR_BSTR, self.protected.len() as u64, &mut protected),
                self.protected,
                cbor::head(MAJOR_BSTR, 0, &mut aad),
                cbor::head(MAJOR_BSTR, self.payload.len() as u64, &mut payload),
                self.payload,
            ],
            &self.signature,
        )
    }
}

/// Encoding of COSE_Sign1 (feature `alloc`).
#[cfg(feature = "alloc")]
pub mod encode {
    use alloc::vec::Vec;

    use super::*;
    use crate::cbor::Writer;

    /// The encoded protected header for `kid` and `object_type` (§3.2).
    #[must_use]
    pub fn protected(kid: &KeyId, object_type: ObjectType) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(3)
            .int(LABEL_ALG)
            .int(ALG_EDDSA)
            .int(LABEL_KID)
            .bstr(kid)
            .int(LABEL_TYP)
            .tstr(object_type.typ());
        w.into_bytes()
    }

    /// The Sig_structure to be signed (RFC 9052 §4.4).
    #[must_use]
    pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(4)
            .tstr(SIGNATURE1)
            .bstr(protected)
            .bstr(&[])
            .bstr(payload);
        w.into_bytes()
    }

    /// Assembles a tagged COSE_Sign1 from its parts.
    #[must_use]
    pub fn assemble(protected: &[u8], payload: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Vec<u8> {
        let mut w = Writer::new();
        w.tag(TAG_COSE_SIGN1)
            .array(4)
            .bstr(protected)
            .map(0)
            .bstr(payload)
            .bstr(signature);
        w.into_bytes()
    }

    /// Signs `payload` as an object of `object_type` with `sign`, a function
    /// that returns the Ed25519 signature of the bytes it is given.
    ///
    /// # Errors
    /// Whatever `sign` returns.
    pub fn sign<E>(
        kid: &KeyId,
        object_type: ObjectType,
        payload: &[u8],
        sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
    ) -> Result<Vec<u8>, E> {
        let protected = protected(kid, object_type);
        let signature = sign(&sig_structure(&protected, payload))?;
        Ok(assemble(&protected, payload, &signature))
    }
}
