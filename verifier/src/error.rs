//! Errors of the verifier: every way a license or request can be refused.
//!
//! Each error has a stable [`Error::code`] used by the test vectors
//! (`spec/vectors/`) and by other implementations, and a [`Display`]
//! message that says what was wrong and what to do.
//!
//! [`Display`]: core::fmt::Display

use core::fmt;

use crate::cose::ObjectType;

/// Why a license, request or state record was refused.
///
/// Degraded states (renewal due, grace, expired) are verdicts, not errors:
/// this type only covers objects that cannot be trusted at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The text armor around the object is broken.
    Armor(ArmorError),
    /// The bytes are not a well-formed object of this format.
    Malformed(Malformed),
    /// The kid in the header matches no key of the keyring.
    UnknownKey,
    /// The only keys with this kid are retired.
    RetiredKey,
    /// The key with this kid exists but does not cover the issue time.
    KeyNotValidAt,
    /// The signature does not verify under the key named by the kid.
    BadSignature,
    /// The object is of another type (a request presented as a license, or
    /// the reverse).
    WrongType,
    /// The binding matched too few identity components of this device.
    WrongDevice {
        /// Components of the license that matched this device.
        matched: u8,
        /// Components needed (the threshold k, or a required one missed).
        needed: u8,
    },
    /// The license is for another serial than this device's.
    WrongSerial,
    /// A license with a higher sequence for this serial was already accepted.
    Superseded {
        /// The highest sequence accepted so far.
        seq: u32,
    },
    /// The clock is earlier than the last time seen minus the tolerance.
    ClockRollback,
    /// The persisted state record is corrupt (checksum, version or length).
    StateCorrupt,
    /// Not a COSE_Sign1 (`spec/FORMAT.md` §3.1): another tag, no tag, or
    /// not an array of four items under the tag 18. Its code is
    /// [`Malformed::NotSign1`]'s, `malformed.not_sign1`. (Kept out of
    /// [`Malformed`], which every CBOR read returns: a one-byte reason
    /// keeps those results, and firmware, small.)
    NotSign1 {
        /// The object the caller asked for, when it said (a license, a
        /// request); `None` from [`crate::cose::parse`].
        expected: Option<ObjectType>,
        /// What stood where the COSE_Sign1 was expected.
        found: Found,
    },
    /// The keyring has two entries with the license's kid, so their order
    /// would decide; [`crate::keyring::Keyring::new`] refuses such a
    /// keyring when it is built.
    DuplicateKid,
}

/// What is wrong with the armor around a license or request
/// (`spec/FORMAT.md` §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArmorError {
    /// No `-----BEGIN TESSERA ...-----` line was found.
    MissingBegin,
    /// A BEGIN line was found, but for another object (e.g. a request where
    /// a license was expected).
    WrongLabel,
    /// The BEGIN line has no matching END line.
    MissingEnd,
    /// A character that is not base64, misplaced padding or non-zero
    /// trailing bits.
    BadBase64,
    /// The decoded object does not fit the buffer / size cap.
    TooLarge,
    /// The armor holds no data.
    Empty,
    /// The object does not fit the caller's buffer, which is shorter than
    /// the size cap (a buffer of `MAX_OBJECT_LEN` bytes always suffices).
    BufferTooSmall,
}

/// Why bytes are not a well-formed object (`spec/FORMAT.md` §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The input ends inside an item.
    Truncated,
    /// Bytes follow the complete object.
    TrailingBytes,
    /// An indefinite-length string, array or map.
    IndefiniteLength,
    /// An integer or length not in its shortest form.
    NonShortest,
    /// Map keys not in the deterministic (bytewise) order.
    UnsortedKeys,
    /// The same map key twice.
    DuplicateKey,
    /// An item of another major type than the field requires, or a float,
    /// an unexpected tag or an unassigned simple value.
    UnexpectedType,
    /// The object exceeds its size cap.
    TooLarge,
    /// More elements than the cap for this collection.
    TooManyItems,
    /// A string longer than its cap, or a byte string of the wrong length.
    BadLength,
    /// Nesting deeper than the cap.
    TooDeep,
    /// A text string that is not valid UTF-8.
    InvalidUtf8,
    /// A required field is absent.
    MissingField,
    /// A field value outside its allowed range or set.
    BadValue,
    /// The object names a critical field this verifier does not understand.
    UnknownCritical,
    /// The format version is not one this verifier understands.
    UnsupportedVersion,
    /// The signature algorithm is not EdDSA / Ed25519.
    UnsupportedAlgorithm,
    /// Not a COSE_Sign1 (§3.1). The decoders answer [`Error::NotSign1`],
    /// which says what was found instead; this reason has the same code.
    NotSign1,
    /// The protected header marks a header parameter critical (`crit`,
    /// label 2) that this verifier does not understand (§3.2).
    UnknownCriticalHeader,
    /// A header parameter in the unprotected header, which must be empty:
    /// nothing outside the signature (a kid override, say) may influence
    /// the decision (§3.1).
    UnprotectedHeader,
}

/// What stood where a COSE_Sign1 (CBOR tag 18 on an array of four items)
/// was expected ([`Error::NotSign1`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// Another CBOR tag: 16 COSE_Encrypt0, 17 COSE_Mac0, 61 CWT, 96
    /// COSE_Encrypt, 97 COSE_Mac, 98 COSE_Sign, ... (tags above
    /// `u32::MAX` are reported as `u32::MAX`).
    Tag(u32),
    /// No tag: an item of this CBOR major type (4, an array, is a
    /// COSE_Sign1 that lost its tag).
    Untagged(u8),
    /// The tag 18, but not on an array of four items.
    Shape,
    /// No data at all.
    Nothing,
}

impl Error {
    /// A stable, machine-readable code (`spec/vectors/README.md`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Armor(a) => a.code(),
            Self::Malformed(m) => m.code(),
            Self::UnknownKey => "unknown_key",
            Self::RetiredKey => "retired_key",
            Self::KeyNotValidAt => "key_not_valid_at",
            Self::BadSignature => "bad_signature",
            Self::WrongType => "wrong_type",
            Self::WrongDevice { .. } => "wrong_device",
            Self::WrongSerial => "wrong_serial",
            Self::Superseded { .. } => "superseded",
            Self::ClockRollback => "clock_rollback",
            Self::StateCorrupt => "state_corrupt",
            Self::NotSign1 { .. } => "malformed.not_sign1",
            Self::DuplicateKid => "duplicate_kid",
        }
    }
}

impl ArmorError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingBegin => "armor.missing_begin",
            Self::WrongLabel => "armor.wrong_label",
            Self::MissingEnd => "armor.missing_end",
            Self::BadBase64 => "armor.bad_base64",
            Self::TooLarge => "armor.too_large",
            Self::Empty => "armor.empty",
            Self::BufferTooSmall => "armor.buffer_too_small",
        }
    }
}

impl Malformed {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated => "malformed.truncated",
            Self::TrailingBytes => "malformed.trailing_bytes",
            Self::IndefiniteLength => "malformed.indefinite_length",
            Self::NonShortest => "malformed.non_shortest",
            Self::UnsortedKeys => "malformed.unsorted_keys",
            Self::DuplicateKey => "malformed.duplicate_key",
            Self::UnexpectedType => "malformed.unexpected_type",
            Self::TooLarge => "malformed.too_large",
            Self::TooManyItems => "malformed.too_many_items",
            Self::BadLength => "malformed.bad_length",
            Self::TooDeep => "malformed.too_deep",
            Self::InvalidUtf8 => "malformed.invalid_utf8",
            Self::MissingField => "malformed.missing_field",
            Self::BadValue => "malformed.bad_value",
            Self::UnknownCritical => "malformed.unknown_critical",
            Self::UnsupportedVersion => "malformed.unsupported_version",
            Self::UnsupportedAlgorithm => "malformed.unsupported_algorithm",
            Self::NotSign1 => "malformed.not_sign1",
            Self::UnknownCriticalHeader => "malformed.unknown_critical_header",
            Self::UnprotectedHeader => "malformed.unprotected_header",
        }
    }
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

impl From<ArmorError> for Error {
    fn from(a: ArmorError) -> Self {
        Self::Armor(a)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Armor(a) => write!(f, "{a}"),
            Self::NotSign1 { expected, found } => write!(
                f,
                "not a {}: COSE_Sign1 (tag 18) expected, found {found}; use the file exactly as the vendor sent it",
                expected.map_or("tessera object", ObjectType::name)
            ),
            Self::Malformed(m) => write!(
                f,
                "the file is not a valid tessera object ({m}); it may be damaged or from another product: ask the vendor to send it again"
            ),
            Self::UnknownKey => f.write_str(
                "the license was signed by a key this device does not trust; update the firmware keyring or ask the vendor which key signed it",
            ),
            Self::RetiredKey => f.write_str(
                "the license was signed by a retired key; ask the vendor to re-issue it with the current key",
            ),
            Self::KeyNotValidAt => f.write_str(
                "the signing key was not valid at the license's issue time; ask the vendor to re-issue the license",
            ),
            Self::BadSignature => f.write_str(
                "the signature does not match: the file was altered or damaged; use the file exactly as the vendor sent it",
            ),
            Self::WrongType => f.write_str(
                "this is another kind of tessera object (a request where a license was expected, or the reverse)",
            ),
            Self::WrongDevice { matched, needed } => write!(
                f,
                "the license is bound to another device: {matched} identity component(s) matched, {needed} needed; request a license from this device"
            ),
            Self::WrongSerial => f.write_str(
                "the license is for another serial than this device's; request a license from this device",
            ),
            Self::Superseded { seq } => write!(
                f,
                "a newer license (sequence {seq}) was already installed; this older one cannot replace it"
            ),
            Self::ClockRollback => f.write_str(
                "the device clock is earlier than a time already seen; set the clock correctly and check again",
            ),
            Self::StateCorrupt => f.write_str(
                "the stored license state is corrupt; restore it from backup or install a fresh license from the vendor",
            ),
            Self::DuplicateKid => f.write_str(
                "the firmware keyring lists the license's key id twice, so the order of its entries would decide; rebuild the keyring with `tessera keyring export`",
            ),
        }
    }
}

impl fmt::Display for ArmorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingBegin => "no '-----BEGIN TESSERA ...-----' line found; paste the whole file including its BEGIN and END lines",
            Self::WrongLabel => "this is another kind of tessera file (e.g. a request where a license was expected)",
            Self::MissingEnd => "the '-----END TESSERA ...-----' line is missing; the file was cut short, copy it again whole",
            Self::BadBase64 => "the text between BEGIN and END was changed (not valid base64); copy the file again unchanged",
            Self::TooLarge => "the file is larger than any valid tessera object",
            Self::Empty => "the file has BEGIN and END lines but nothing between them",
            Self::BufferTooSmall => "the buffer given for the object is too small (4096 bytes always suffice)",
        })
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the data ends too early",
            Self::TrailingBytes => "extra bytes after the end",
            Self::IndefiniteLength => "indefinite-length item",
            Self::NonShortest => "integer or length not in shortest form",
            Self::UnsortedKeys => "map keys out of order",
            Self::DuplicateKey => "duplicate map key",
            Self::UnexpectedType => "item of an unexpected type",
            Self::TooLarge => "larger than the size cap",
            Self::TooManyItems => "too many items in a list",
            Self::BadLength => "a string or byte string of the wrong length",
            Self::TooDeep => "nested too deeply",
            Self::InvalidUtf8 => "text is not valid UTF-8",
            Self::MissingField => "a required field is missing",
            Self::BadValue => "a field has a value outside its allowed range",
            Self::UnknownCritical => {
                "a critical field unknown to this firmware (update the firmware)"
            }
            Self::UnsupportedVersion => "unsupported format version (update the firmware)",
            Self::UnsupportedAlgorithm => "unsupported signature algorithm",
            Self::NotSign1 => "not a COSE_Sign1 object",
            Self::UnknownCriticalHeader => {
                "a header parameter marked critical that this firmware does not understand (update the firmware)"
            }
            Self::UnprotectedHeader => {
                "a header parameter outside the signature (the unprotected header must be empty)"
            }
        })
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(tag) => {
                let name = match tag {
                    16 => " (COSE_Encrypt0)",
                    17 => " (COSE_Mac0)",
                    61 => " (CWT)",
                    96 => " (COSE_Encrypt)",
                    97 => " (COSE_Mac)",
                    98 => " (COSE_Sign)",
                    55799 => " (self-described CBOR)",
                    _ => "",
                };
                write!(f, "tag {tag}{name}")
            }
            Self::Untagged(major) => f.write_str(match major {
                0 | 1 => "an untagged integer",
                2 => "an untagged byte string",
                3 => "untagged text",
                4 => "an untagged array (a COSE_Sign1 without its tag 18)",
                5 => "an untagged map",
                _ => "an untagged simple value or float",
            }),
            Self::Shape => f.write_str("the tag 18 on something other than an array of four items"),
            Self::Nothing => f.write_str("no data"),
        }
    }
}

// `core::error::Error` is `std::error::Error`: the impls serve std users
// without making the crate depend on std.
impl core::error::Error for Error {}
impl core::error::Error for ArmorError {}
impl core::error::Error for Malformed {}
