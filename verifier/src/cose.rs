//! COSE_Sign1 envelope (RFC 9052 §4.2) as used by tessera
//! (`spec/FORMAT.md` §3): parsing the four-element structure, the protected
//! header, and verifying the signature over the Sig_structure without
//! copying it.

use crate::cbor::{self, Reader, MAJOR_ARRAY, MAJOR_BSTR, MAJOR_TSTR};
use crate::error::Found;
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
/// `typ` of a ledger checkpoint (§10).
pub const TYP_CHECKPOINT: &str = "tessera-checkpoint";
/// The context string of a COSE_Sign1 Sig_structure (RFC 9052 §4.4).
pub(crate) const SIGNATURE1: &str = "Signature1";

/// Which kind of signed object a `typ` names (§3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// A license, signed by the vendor.
    License,
    /// A request, signed by the device.
    Request,
    /// A ledger checkpoint, signed by the vendor (§10).
    Checkpoint,
}

impl ObjectType {
    /// The `typ` header value.
    #[must_use]
    pub fn typ(self) -> &'static str {
        match self {
            Self::License => TYP_LICENSE,
            Self::Request => TYP_REQUEST,
            Self::Checkpoint => TYP_CHECKPOINT,
        }
    }

    /// What the object is called in messages: `"license"`, `"request"`,
    /// `"checkpoint"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::License => "license",
            Self::Request => "request",
            Self::Checkpoint => "checkpoint",
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
/// [`Error::Malformed`] with the first strict-decoding rule broken; for
/// input that is no COSE_Sign1 at all, [`Error::NotSign1`] says what was
/// found instead (another tag, no tag, ...).
pub fn parse(bytes: &[u8]) -> Result<Sign1<'_>, Error> {
    if bytes.len() > MAX_OBJECT_LEN {
        return Err(Malformed::TooLarge.into());
    }
    let mut r = Reader::new(bytes);
    let not_sign1 = |found| Error::NotSign1 {
        expected: None,
        found,
    };
    match r.peek_major() {
        Err(_) => return Err(not_sign1(Found::Nothing)),
        Ok(cbor::MAJOR_TAG) => match r.tag()? {
            TAG_COSE_SIGN1 => {}
            tag => {
                return Err(not_sign1(Found::Tag(
                    u32::try_from(tag).unwrap_or(u32::MAX),
                )))
            }
        },
        Ok(major) => return Err(not_sign1(Found::Untagged(major))),
    }
    if r.peek_major()? != MAJOR_ARRAY {
        return Err(not_sign1(Found::Shape));
    }
    r.array_of(4).map_err(|e| match e {
        Malformed::BadLength => not_sign1(Found::Shape),
        other => other.into(),
    })?;
    let protected = r.bstr(MAX_PROTECTED_LEN)?;
    let (alg, kid, object_type) = parse_protected(protected)?;
    // The unprotected header must be empty: nothing unsigned may influence
    // the decision.
    if r.map(0).map_err(|e| match e {
        Malformed::TooManyItems => Malformed::UnprotectedHeader,
        other => other,
    })? != 0
    {
        return Err(Malformed::UnprotectedHeader.into());
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

/// [`parse`] for a caller that expects one type of object: an input that
/// is no COSE_Sign1 names it ([`Error::NotSign1`]), and a COSE_Sign1
/// of another type is [`Error::WrongType`].
///
/// # Errors
/// As [`parse`], and [`Error::WrongType`].
pub fn parse_as(bytes: &[u8], expected: ObjectType) -> Result<Sign1<'_>, Error> {
    let sign1 = parse(bytes).map_err(|e| match e {
        Error::NotSign1 { found, .. } => Error::NotSign1 {
            expected: Some(expected),
            found,
        },
        other => other,
    })?;
    if sign1.object_type == expected {
        Ok(sign1)
    } else {
        Err(Error::WrongType)
    }
}

/// Most entries of a protected header: the three of §3.2, `crit` and a few
/// more, which are refused one by one.
const MAX_PROTECTED_ENTRIES: usize = 8;
/// COSE header label `crit` (RFC 9052 §3.1).
const LABEL_CRIT: i64 = 2;

fn parse_protected(bytes: &[u8]) -> Result<(i64, KeyId, ObjectType), Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map(MAX_PROTECTED_ENTRIES)?;
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
            LABEL_CRIT => {
                // A well-formed list of labels (RFC 9052 §3.1), none of
                // which this version understands as critical.
                let labels = r.array(MAX_PROTECTED_ENTRIES)?;
                if labels == 0 {
                    return Err(Malformed::BadValue);
                }
                for _ in 0..labels {
                    match r.peek_major()? {
                        cbor::MAJOR_UINT | cbor::MAJOR_NINT => {
                            r.int()?;
                        }
                        MAJOR_TSTR => {
                            r.tstr(MAX_PROTECTED_LEN)?;
                        }
                        _ => return Err(Malformed::UnexpectedType),
                    }
                }
                return Err(Malformed::UnknownCriticalHeader);
            }
            LABEL_KID => kid = Some(r.bstr_array::<KEY_ID_LEN>()?),
            LABEL_TYP => {
                if r.peek_major()? != MAJOR_TSTR {
                    return Err(Malformed::UnexpectedType);
                }
                typ = Some(match r.tstr(32)? {
                    TYP_LICENSE => ObjectType::License,
                    TYP_REQUEST => ObjectType::Request,
                    TYP_CHECKPOINT => ObjectType::Checkpoint,
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

/// Writes the protected header for `kid` and `object_type` (§3.2): the
/// one definition the encoders with and without a heap share.
pub fn write_protected<O: cbor::Output>(
    w: &mut cbor::Encoder<O>,
    kid: &KeyId,
    object_type: ObjectType,
) {
    w.map(3)
        .int(LABEL_ALG)
        .int(ALG_EDDSA)
        .int(LABEL_KID)
        .bstr(kid)
        .int(LABEL_TYP)
        .tstr(object_type.typ());
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
        write_protected(&mut w, kid, object_type);
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

#[cfg(test)]
#[cfg(feature = "alloc")]
mod tests {
    extern crate std;

    use alloc::vec::Vec;
    use std::string::ToString;

    use super::*;
    use crate::cbor::Writer;
    use crate::{armor, decode_license, decode_request, key_id, samples, KeyEntry};

    fn kid() -> KeyId {
        key_id(&samples::TEST_KEY_1_PUBLIC)
    }

    /// `tag([protected, unprotected, h'', 64 zero bytes])`, or untagged.
    fn object(tag: Option<u64>, protected: &[u8], unprotected: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        if let Some(tag) = tag {
            w.tag(tag);
        }
        w.array(4)
            .bstr(protected)
            .raw(unprotected)
            .bstr(&[])
            .bstr(&[0; SIGNATURE_LEN]);
        w.into_bytes()
    }

    fn license_header() -> Vec<u8> {
        encode::protected(&kid(), ObjectType::License)
    }

    fn malformed(bytes: &[u8]) -> Malformed {
        match parse(bytes) {
            Err(Error::Malformed(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    fn not_sign1(bytes: &[u8]) -> Found {
        match parse(bytes) {
            Err(Error::NotSign1 {
                expected: None,
                found,
            }) => found,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_tags_and_untagged_input_say_what_they_are() {
        let header = license_header();
        let ring = [KeyEntry::new(samples::TEST_KEY_1_PUBLIC, 0)];
        for (tag, found, text) in [
            (Some(17), Found::Tag(17), "found tag 17 (COSE_Mac0)"),
            (Some(98), Found::Tag(98), "found tag 98 (COSE_Sign)"),
            (Some(61), Found::Tag(61), "found tag 61 (CWT)"),
            (Some(1000), Found::Tag(1000), "found tag 1000;"),
            (Some(1 << 40), Found::Tag(u32::MAX), "found tag 4294967295;"),
            (
                None,
                Found::Untagged(4),
                "found an untagged array (a COSE_Sign1 without its tag 18)",
            ),
        ] {
            let bytes = object(tag, &header, &[0xa0]);
            assert_eq!(not_sign1(&bytes), found);
            let err = decode_license(&bytes, &ring).unwrap_err();
            assert_eq!(
                err,
                Error::NotSign1 {
                    expected: Some(ObjectType::License),
                    found
                }
            );
            assert_eq!(err.code(), "malformed.not_sign1");
            let msg = err.to_string();
            assert!(
                msg.starts_with("not a license: COSE_Sign1 (tag 18) expected, ")
                    && msg.contains(text),
                "{msg}"
            );
            // Armored, the same bytes give the same answer.
            let text = armor::encode(&bytes, armor::LABEL_LICENSE);
            let mut buf = [0u8; MAX_OBJECT_LEN];
            let read = armor::read_object(text.as_bytes(), armor::LABEL_LICENSE, &mut buf);
            assert_eq!(read.map(<[u8]>::to_vec), Ok(bytes.clone()));
            // And read as a binary file.
            let read = armor::read_object(&bytes, armor::LABEL_LICENSE, &mut buf).unwrap();
            assert_eq!(decode_license(read, &ring).unwrap_err(), err);
            // A request reader names a request.
            assert!(decode_request(&bytes)
                .unwrap_err()
                .to_string()
                .starts_with("not a request: "));
        }
        for (bytes, found) in [
            (&[][..], Found::Nothing),
            (&[0xa0][..], Found::Untagged(5)),
            (&[0x61, b'x'][..], Found::Untagged(3)),
            (&[0xf6][..], Found::Untagged(7)),
            (&[0xd2, 0x83, 0x40, 0xa0, 0x40][..], Found::Shape),
            (&[0xd2, 0xa0][..], Found::Shape),
        ] {
            assert_eq!(not_sign1(bytes), found, "{bytes:02x?}");
        }
        // A CWT-wrapped COSE_Sign1 is still refused: only a leading 18.
        let mut wrapped = alloc::vec![0xd8, 61];
        wrapped.extend(object(Some(18), &header, &[0xa0]));
        assert_eq!(not_sign1(&wrapped), Found::Tag(61));
    }

    #[test]
    fn critical_header_parameters_are_refused_with_their_own_reason() {
        // {1: -8, 2: [label], 4: kid, 16: "tessera-license"}
        let with_crit = |crit: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new();
            w.map(4).int(LABEL_ALG).int(ALG_EDDSA).int(LABEL_CRIT);
            crit(&mut w);
            w.int(LABEL_KID)
                .bstr(&kid())
                .int(LABEL_TYP)
                .tstr(TYP_LICENSE);
            w.into_bytes()
        };
        for crit in [
            with_crit(&|w| {
                w.array(1).int(300);
            }),
            with_crit(&|w| {
                w.array(2).int(LABEL_TYP).tstr("x-tessera");
            }),
        ] {
            let err = parse(&object(Some(18), &crit, &[0xa0])).unwrap_err();
            assert_eq!(err, Error::Malformed(Malformed::UnknownCriticalHeader));
            assert_eq!(err.code(), "malformed.unknown_critical_header");
            assert!(err.to_string().contains("marked critical"), "{err}");
        }
        // A crit that is no list of labels is malformed, not unknown.
        let empty = with_crit(&|w| {
            w.array(0);
        });
        assert_eq!(
            malformed(&object(Some(18), &empty, &[0xa0])),
            Malformed::BadValue
        );
        let bytes = with_crit(&|w| {
            w.array(1).bstr(b"x");
        });
        assert_eq!(
            malformed(&object(Some(18), &bytes, &[0xa0])),
            Malformed::UnexpectedType
        );
        // An unknown label that is not marked critical: refused too (§3.2).
        let mut w = Writer::new();
        w.map(4)
            .int(LABEL_ALG)
            .int(ALG_EDDSA)
            .int(3)
            .tstr("application/cwt")
            .int(LABEL_KID)
            .bstr(&kid())
            .int(LABEL_TYP)
            .tstr(TYP_LICENSE);
        assert_eq!(
            malformed(&object(Some(18), &w.into_bytes(), &[0xa0])),
            Malformed::BadValue
        );
    }

    #[test]
    fn unprotected_parameters_are_refused_with_their_own_reason() {
        let header = license_header();
        // A kid override, an alg, and any other label.
        let mut kid_override = Writer::new();
        kid_override.map(1).int(LABEL_KID).bstr(&[0; KEY_ID_LEN]);
        let mut two = Writer::new();
        two.map(2)
            .int(LABEL_ALG)
            .int(ALG_EDDSA)
            .int(LABEL_KID)
            .bstr(&kid());
        let mut other = Writer::new();
        other.map(1).int(33).bstr(b"x5chain");
        for unprotected in [
            kid_override.into_bytes(),
            two.into_bytes(),
            other.into_bytes(),
        ] {
            let err = parse(&object(Some(18), &header, &unprotected)).unwrap_err();
            assert_eq!(err, Error::Malformed(Malformed::UnprotectedHeader));
            assert_eq!(err.code(), "malformed.unprotected_header");
            assert!(err.to_string().contains("outside the signature"), "{err}");
        }
        // Not a map at all: the type is wrong.
        assert_eq!(
            malformed(&object(Some(18), &header, &[0x80])),
            Malformed::UnexpectedType
        );
        assert!(parse(&object(Some(18), &header, &[0xa0])).is_ok());
    }
}
