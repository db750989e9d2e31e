//! `int32_t` status codes of the C API: `TESSERA_OK` (0), or a negative
//! code naming the refusal, with its stable text code
//! ([`tessera_status_code`]) and a message ([`tessera_strerror`]).
//!
//! The text codes are the verifier's [`Error::code`] strings
//! (`spec/FORMAT.md` §9, the `expected` field of the vectors); the tests
//! check both tables against the verifier so they cannot drift.

use core::ffi::{c_char, CStr};

use tessera_verifier::{ArmorError, Error, IdentityError, Malformed};

/// Success.
pub const TESSERA_OK: i32 = 0;

/// A required pointer argument is NULL.
pub const TESSERA_E_NULL: i32 = -1;
/// An output buffer is too small, or a state record has the wrong length.
pub const TESSERA_E_BUFFER: i32 = -2;
/// An argument is out of range: misaligned pointer, overlapping buffers,
/// too many keys or components, text that is not UTF-8, a key whose kid
/// is not the key id of its public key.
pub const TESSERA_E_ARGUMENT: i32 = -3;
/// The index is past the end of the list (the `*_at` queries).
pub const TESSERA_E_NOT_FOUND: i32 = -4;
/// The decision's verdict grants nothing (expired, not yet valid), so
/// entitlement queries answer nothing.
pub const TESSERA_E_NO_SERVICE: i32 = -5;
/// The decision holds no accepted license (it was not filled by a
/// successful `tessera_verify`).
pub const TESSERA_E_NO_LICENSE: i32 = -6;
/// The signing function given to `tessera_request_encode` failed.
pub const TESSERA_E_SIGNER: i32 = -7;
/// The decision was not filled by `tessera_verify` (or
/// `tessera_decode_license`), or was changed since: its check value does
/// not match.
pub const TESSERA_E_DECISION: i32 = -8;
/// An error this version of the C API does not know (a newer verifier).
pub const TESSERA_E_INTERNAL: i32 = -9;

/// Identity: the component kind has no normalization rule.
pub const TESSERA_E_IDENTITY_UNKNOWN_KIND: i32 = -10;
/// Identity: an empty value.
pub const TESSERA_E_IDENTITY_EMPTY: i32 = -11;
/// Identity: a value not of the form its kind requires.
pub const TESSERA_E_IDENTITY_INVALID: i32 = -12;
/// Identity: a normalized value over 64 bytes.
pub const TESSERA_E_IDENTITY_TOO_LONG: i32 = -13;
/// Identity: more than 16 different components.
pub const TESSERA_E_IDENTITY_FULL: i32 = -14;

/// The kid matches no key of the keyring.
pub const TESSERA_E_UNKNOWN_KEY: i32 = -20;
/// The only keys with this kid are retired.
pub const TESSERA_E_RETIRED_KEY: i32 = -21;
/// The signing key does not cover the license's issue time.
pub const TESSERA_E_KEY_NOT_VALID_AT: i32 = -22;
/// The signature does not verify.
pub const TESSERA_E_BAD_SIGNATURE: i32 = -23;
/// A request presented as a license.
pub const TESSERA_E_WRONG_TYPE: i32 = -24;
/// The binding matched too few components of this device (details in the
/// decision: `wrong_device_matched`, `wrong_device_needed`).
pub const TESSERA_E_WRONG_DEVICE: i32 = -25;
/// The license is for another serial.
pub const TESSERA_E_WRONG_SERIAL: i32 = -26;
/// A license with a higher sequence was already accepted (the decision's
/// `superseded_sequence` says which).
pub const TESSERA_E_SUPERSEDED: i32 = -27;
/// The clock is earlier than the last time seen minus the tolerance.
pub const TESSERA_E_CLOCK_ROLLBACK: i32 = -28;
/// The state record is corrupt.
pub const TESSERA_E_STATE_CORRUPT: i32 = -29;
/// The keyring lists the same kid twice (refused before anything is
/// verified, whatever the license).
pub const TESSERA_E_DUPLICATE_KID: i32 = -30;

/// Armor: no BEGIN line.
pub const TESSERA_E_ARMOR_MISSING_BEGIN: i32 = -40;
/// Armor: a BEGIN line of another object type.
pub const TESSERA_E_ARMOR_WRONG_LABEL: i32 = -41;
/// Armor: no END line.
pub const TESSERA_E_ARMOR_MISSING_END: i32 = -42;
/// Armor: not valid base64.
pub const TESSERA_E_ARMOR_BAD_BASE64: i32 = -43;
/// Armor: larger than any valid object.
pub const TESSERA_E_ARMOR_TOO_LARGE: i32 = -44;
/// Armor: nothing between BEGIN and END.
pub const TESSERA_E_ARMOR_EMPTY: i32 = -45;

/// Malformed: the data ends inside an item.
pub const TESSERA_E_MALFORMED_TRUNCATED: i32 = -60;
/// Malformed: bytes after the object.
pub const TESSERA_E_MALFORMED_TRAILING_BYTES: i32 = -61;
/// Malformed: an indefinite-length item.
pub const TESSERA_E_MALFORMED_INDEFINITE_LENGTH: i32 = -62;
/// Malformed: an integer or length not in shortest form.
pub const TESSERA_E_MALFORMED_NON_SHORTEST: i32 = -63;
/// Malformed: map keys out of order.
pub const TESSERA_E_MALFORMED_UNSORTED_KEYS: i32 = -64;
/// Malformed: a duplicate map key.
pub const TESSERA_E_MALFORMED_DUPLICATE_KEY: i32 = -65;
/// Malformed: an item of an unexpected type.
pub const TESSERA_E_MALFORMED_UNEXPECTED_TYPE: i32 = -66;
/// Malformed: over the size cap.
pub const TESSERA_E_MALFORMED_TOO_LARGE: i32 = -67;
/// Malformed: too many items in a collection.
pub const TESSERA_E_MALFORMED_TOO_MANY_ITEMS: i32 = -68;
/// Malformed: a string of the wrong length.
pub const TESSERA_E_MALFORMED_BAD_LENGTH: i32 = -69;
/// Malformed: nested too deeply.
pub const TESSERA_E_MALFORMED_TOO_DEEP: i32 = -70;
/// Malformed: text that is not UTF-8.
pub const TESSERA_E_MALFORMED_INVALID_UTF8: i32 = -71;
/// Malformed: a required field is missing.
pub const TESSERA_E_MALFORMED_MISSING_FIELD: i32 = -72;
/// Malformed: a value outside its allowed range.
pub const TESSERA_E_MALFORMED_BAD_VALUE: i32 = -73;
/// Malformed: an unknown critical field.
pub const TESSERA_E_MALFORMED_UNKNOWN_CRITICAL: i32 = -74;
/// Malformed: an unsupported format version.
pub const TESSERA_E_MALFORMED_UNSUPPORTED_VERSION: i32 = -75;
/// Malformed: an unsupported signature algorithm.
pub const TESSERA_E_MALFORMED_UNSUPPORTED_ALGORITHM: i32 = -76;
/// Malformed: not a COSE_Sign1 (another tag, no tag, or not an array of
/// four items).
pub const TESSERA_E_MALFORMED_NOT_SIGN1: i32 = -77;
/// Malformed: the protected header marks a parameter critical that this
/// version does not understand.
pub const TESSERA_E_MALFORMED_UNKNOWN_CRITICAL_HEADER: i32 = -78;
/// Malformed: a header parameter in the unprotected header, which must be
/// empty.
pub const TESSERA_E_MALFORMED_UNPROTECTED_HEADER: i32 = -79;

/// The status code of a verifier error.
pub(crate) fn of_error(e: &Error) -> i32 {
    match e {
        Error::Armor(a) => of_armor(*a),
        Error::Malformed(m) => of_malformed(*m),
        Error::UnknownKey => TESSERA_E_UNKNOWN_KEY,
        Error::RetiredKey => TESSERA_E_RETIRED_KEY,
        Error::KeyNotValidAt => TESSERA_E_KEY_NOT_VALID_AT,
        Error::BadSignature => TESSERA_E_BAD_SIGNATURE,
        Error::WrongType => TESSERA_E_WRONG_TYPE,
        Error::WrongDevice { .. } => TESSERA_E_WRONG_DEVICE,
        Error::WrongSerial => TESSERA_E_WRONG_SERIAL,
        Error::Superseded { .. } => TESSERA_E_SUPERSEDED,
        Error::ClockRollback => TESSERA_E_CLOCK_ROLLBACK,
        Error::StateCorrupt => TESSERA_E_STATE_CORRUPT,
        Error::NotSign1 { .. } => TESSERA_E_MALFORMED_NOT_SIGN1,
        Error::DuplicateKid => TESSERA_E_DUPLICATE_KID,
        _ => TESSERA_E_INTERNAL,
    }
}

fn of_armor(a: ArmorError) -> i32 {
    match a {
        ArmorError::MissingBegin => TESSERA_E_ARMOR_MISSING_BEGIN,
        ArmorError::WrongLabel => TESSERA_E_ARMOR_WRONG_LABEL,
        ArmorError::MissingEnd => TESSERA_E_ARMOR_MISSING_END,
        ArmorError::BadBase64 => TESSERA_E_ARMOR_BAD_BASE64,
        ArmorError::TooLarge => TESSERA_E_ARMOR_TOO_LARGE,
        ArmorError::Empty => TESSERA_E_ARMOR_EMPTY,
        // The caller's buffer, not the file: the C API's own status.
        ArmorError::BufferTooSmall => TESSERA_E_BUFFER,
        _ => TESSERA_E_INTERNAL,
    }
}

fn of_malformed(m: Malformed) -> i32 {
    match m {
        Malformed::Truncated => TESSERA_E_MALFORMED_TRUNCATED,
        Malformed::TrailingBytes => TESSERA_E_MALFORMED_TRAILING_BYTES,
        Malformed::IndefiniteLength => TESSERA_E_MALFORMED_INDEFINITE_LENGTH,
        Malformed::NonShortest => TESSERA_E_MALFORMED_NON_SHORTEST,
        Malformed::UnsortedKeys => TESSERA_E_MALFORMED_UNSORTED_KEYS,
        Malformed::DuplicateKey => TESSERA_E_MALFORMED_DUPLICATE_KEY,
        Malformed::UnexpectedType => TESSERA_E_MALFORMED_UNEXPECTED_TYPE,
        Malformed::TooLarge => TESSERA_E_MALFORMED_TOO_LARGE,
        Malformed::TooManyItems => TESSERA_E_MALFORMED_TOO_MANY_ITEMS,
        Malformed::BadLength => TESSERA_E_MALFORMED_BAD_LENGTH,
        Malformed::TooDeep => TESSERA_E_MALFORMED_TOO_DEEP,
        Malformed::InvalidUtf8 => TESSERA_E_MALFORMED_INVALID_UTF8,
        Malformed::MissingField => TESSERA_E_MALFORMED_MISSING_FIELD,
        Malformed::BadValue => TESSERA_E_MALFORMED_BAD_VALUE,
        Malformed::UnknownCritical => TESSERA_E_MALFORMED_UNKNOWN_CRITICAL,
        Malformed::UnsupportedVersion => TESSERA_E_MALFORMED_UNSUPPORTED_VERSION,
        Malformed::UnsupportedAlgorithm => TESSERA_E_MALFORMED_UNSUPPORTED_ALGORITHM,
        Malformed::NotSign1 => TESSERA_E_MALFORMED_NOT_SIGN1,
        Malformed::UnknownCriticalHeader => TESSERA_E_MALFORMED_UNKNOWN_CRITICAL_HEADER,
        Malformed::UnprotectedHeader => TESSERA_E_MALFORMED_UNPROTECTED_HEADER,
        _ => TESSERA_E_INTERNAL,
    }
}

/// The status code of an identity error.
pub(crate) fn of_identity(e: IdentityError) -> i32 {
    match e {
        IdentityError::UnknownKind => TESSERA_E_IDENTITY_UNKNOWN_KIND,
        IdentityError::Empty => TESSERA_E_IDENTITY_EMPTY,
        IdentityError::Invalid => TESSERA_E_IDENTITY_INVALID,
        IdentityError::TooLong => TESSERA_E_IDENTITY_TOO_LONG,
        IdentityError::Full => TESSERA_E_IDENTITY_FULL,
        _ => TESSERA_E_INTERNAL,
    }
}

/// (status, stable code, message) of every status.
const TABLE: &[(i32, &CStr, &CStr)] = &[
    (TESSERA_OK, c"ok", c"success"),
    (TESSERA_E_NULL, c"null_pointer", c"a required pointer argument is NULL"),
    (TESSERA_E_BUFFER, c"buffer_too_small", c"an output buffer is too small, or a state record has the wrong length"),
    (TESSERA_E_ARGUMENT, c"invalid_argument", c"an argument is invalid (misaligned or overlapping buffers, too many keys or components, text that is not UTF-8, or a key entry whose kid does not match its public key)"),
    (TESSERA_E_NOT_FOUND, c"not_found", c"no entry at this index"),
    (TESSERA_E_NO_SERVICE, c"no_service", c"the verdict grants no service (expired or not yet valid): the license grants nothing now"),
    (TESSERA_E_NO_LICENSE, c"no_license", c"the decision holds no accepted license: call tessera_verify first"),
    (TESSERA_E_SIGNER, c"signer_failed", c"the signing function failed; the request was not written"),
    (TESSERA_E_DECISION, c"decision_not_verified", c"the decision was not filled by tessera_verify or was changed since; verify again and keep the decision where nothing else writes"),
    (TESSERA_E_INTERNAL, c"internal", c"an error unknown to this version of the C API"),
    (TESSERA_E_IDENTITY_UNKNOWN_KIND, c"identity.unknown_kind", c"this identity component kind is unknown to this version"),
    (TESSERA_E_IDENTITY_EMPTY, c"identity.empty", c"the identity value is empty"),
    (TESSERA_E_IDENTITY_INVALID, c"identity.invalid", c"the identity value is not valid for its kind (see spec/RUNTIME.md section 2)"),
    (TESSERA_E_IDENTITY_TOO_LONG, c"identity.too_long", c"the identity value is longer than 64 bytes once normalized"),
    (TESSERA_E_IDENTITY_FULL, c"identity.full", c"the device identity already holds 16 components"),
    (TESSERA_E_UNKNOWN_KEY, c"unknown_key", c"the license was signed by a key this device does not trust; update the firmware keyring or ask the vendor which key signed it"),
    (TESSERA_E_RETIRED_KEY, c"retired_key", c"the license was signed by a retired key; ask the vendor to re-issue it with the current key"),
    (TESSERA_E_KEY_NOT_VALID_AT, c"key_not_valid_at", c"the signing key was not valid at the license's issue time; ask the vendor to re-issue the license"),
    (TESSERA_E_BAD_SIGNATURE, c"bad_signature", c"the signature does not match: the file was altered or damaged; use the file exactly as the vendor sent it"),
    (TESSERA_E_WRONG_TYPE, c"wrong_type", c"this is another kind of tessera object (a request where a license was expected, or the reverse)"),
    (TESSERA_E_WRONG_DEVICE, c"wrong_device", c"the license is bound to another device: too few identity components matched (see wrong_device_matched and wrong_device_needed); request a license from this device"),
    (TESSERA_E_WRONG_SERIAL, c"wrong_serial", c"the license is for another serial than this device's; request a license from this device"),
    (TESSERA_E_SUPERSEDED, c"superseded", c"a newer license (see superseded_sequence) was already installed; this older one cannot replace it"),
    (TESSERA_E_CLOCK_ROLLBACK, c"clock_rollback", c"the device clock is earlier than a time already seen; set the clock correctly and check again"),
    (TESSERA_E_STATE_CORRUPT, c"state_corrupt", c"the stored license state is corrupt; restore it from backup or install a fresh license from the vendor"),
    (TESSERA_E_DUPLICATE_KID, c"duplicate_kid", c"the firmware keyring lists the license's key id twice, so the order of its entries would decide; rebuild the keyring with `tessera keyring export`"),
    (TESSERA_E_ARMOR_MISSING_BEGIN, c"armor.missing_begin", c"no '-----BEGIN TESSERA ...-----' line found; paste the whole file including its BEGIN and END lines"),
    (TESSERA_E_ARMOR_WRONG_LABEL, c"armor.wrong_label", c"this is another kind of tessera file (e.g. a request where a license was expected)"),
    (TESSERA_E_ARMOR_MISSING_END, c"armor.missing_end", c"the '-----END TESSERA ...-----' line is missing; the file was cut short, copy it again whole"),
    (TESSERA_E_ARMOR_BAD_BASE64, c"armor.bad_base64", c"the text between BEGIN and END was changed (not valid base64); copy the file again unchanged"),
    (TESSERA_E_ARMOR_TOO_LARGE, c"armor.too_large", c"the file is larger than any valid tessera object"),
    (TESSERA_E_ARMOR_EMPTY, c"armor.empty", c"the file has BEGIN and END lines but nothing between them"),
    (TESSERA_E_MALFORMED_TRUNCATED, c"malformed.truncated", c"the file is not a valid tessera object (the data ends too early); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_TRAILING_BYTES, c"malformed.trailing_bytes", c"the file is not a valid tessera object (extra bytes after the end); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_INDEFINITE_LENGTH, c"malformed.indefinite_length", c"the file is not a valid tessera object (indefinite-length item); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_NON_SHORTEST, c"malformed.non_shortest", c"the file is not a valid tessera object (integer or length not in shortest form); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNSORTED_KEYS, c"malformed.unsorted_keys", c"the file is not a valid tessera object (map keys out of order); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_DUPLICATE_KEY, c"malformed.duplicate_key", c"the file is not a valid tessera object (duplicate map key); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNEXPECTED_TYPE, c"malformed.unexpected_type", c"the file is not a valid tessera object (item of an unexpected type); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_TOO_LARGE, c"malformed.too_large", c"the file is not a valid tessera object (larger than the size cap); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_TOO_MANY_ITEMS, c"malformed.too_many_items", c"the file is not a valid tessera object (too many items in a list); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_BAD_LENGTH, c"malformed.bad_length", c"the file is not a valid tessera object (a string or byte string of the wrong length); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_TOO_DEEP, c"malformed.too_deep", c"the file is not a valid tessera object (nested too deeply); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_INVALID_UTF8, c"malformed.invalid_utf8", c"the file is not a valid tessera object (text is not valid UTF-8); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_MISSING_FIELD, c"malformed.missing_field", c"the file is not a valid tessera object (a required field is missing); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_BAD_VALUE, c"malformed.bad_value", c"the file is not a valid tessera object (a field has a value outside its allowed range); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNKNOWN_CRITICAL, c"malformed.unknown_critical", c"the file is not a valid tessera object (a critical field unknown to this firmware (update the firmware)); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNSUPPORTED_VERSION, c"malformed.unsupported_version", c"the file is not a valid tessera object (unsupported format version (update the firmware)); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNSUPPORTED_ALGORITHM, c"malformed.unsupported_algorithm", c"the file is not a valid tessera object (unsupported signature algorithm); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_NOT_SIGN1, c"malformed.not_sign1", c"not a license: COSE_Sign1 (tag 18) expected, found another CBOR tag, no tag, or not an array of four items; use the file exactly as the vendor sent it"),
    (TESSERA_E_MALFORMED_UNKNOWN_CRITICAL_HEADER, c"malformed.unknown_critical_header", c"the file is not a valid tessera object (a header parameter marked critical that this firmware does not understand (update the firmware)); it may be damaged or from another product: ask the vendor to send it again"),
    (TESSERA_E_MALFORMED_UNPROTECTED_HEADER, c"malformed.unprotected_header", c"the file is not a valid tessera object (a header parameter outside the signature (the unprotected header must be empty)); it may be damaged or from another product: ask the vendor to send it again"),
];

fn lookup(status: i32) -> Option<&'static (i32, &'static CStr, &'static CStr)> {
    TABLE.iter().find(|(s, _, _)| *s == status)
}

/// The stable text code of a status: `"ok"`, the verifier's error codes
/// (`"malformed.truncated"`, `"bad_signature"`, ... as in
/// the JSON files of `spec/vectors`), `"identity.*"`, or the C API's own
/// (`"null_pointer"`, `"buffer_too_small"`, ...). An unknown status gives
/// `"unknown_status"`. The string is static and NUL-terminated; never
/// free it.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_status_code(status: i32) -> *const c_char {
    lookup(status).map_or(c"unknown_status", |e| e.1).as_ptr()
}

/// A one-line English message for a status, for logs and operator
/// screens. Static and NUL-terminated; never free it.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_strerror(status: i32) -> *const c_char {
    lookup(status)
        .map_or(c"unknown status code", |e| e.2)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;
    use std::vec::Vec;

    use super::*;

    fn every_error() -> Vec<Error> {
        let mut all = Vec::new();
        for a in [
            ArmorError::MissingBegin,
            ArmorError::WrongLabel,
            ArmorError::MissingEnd,
            ArmorError::BadBase64,
            ArmorError::TooLarge,
            ArmorError::Empty,
        ] {
            all.push(Error::Armor(a));
        }
        // ArmorError::BufferTooSmall is the caller's buffer: TESSERA_E_BUFFER
        // (`buffer_too_small_is_the_buffer_status`).
        for m in [
            Malformed::Truncated,
            Malformed::TrailingBytes,
            Malformed::IndefiniteLength,
            Malformed::NonShortest,
            Malformed::UnsortedKeys,
            Malformed::DuplicateKey,
            Malformed::UnexpectedType,
            Malformed::TooLarge,
            Malformed::TooManyItems,
            Malformed::BadLength,
            Malformed::TooDeep,
            Malformed::InvalidUtf8,
            Malformed::MissingField,
            Malformed::BadValue,
            Malformed::UnknownCritical,
            Malformed::UnsupportedVersion,
            Malformed::UnsupportedAlgorithm,
            Malformed::NotSign1,
            Malformed::UnknownCriticalHeader,
            Malformed::UnprotectedHeader,
        ] {
            all.push(Error::Malformed(m));
        }
        all.extend([
            Error::UnknownKey,
            Error::RetiredKey,
            Error::KeyNotValidAt,
            Error::BadSignature,
            Error::WrongType,
            Error::WrongDevice {
                matched: 1,
                needed: 3,
            },
            Error::WrongSerial,
            Error::Superseded { seq: 7 },
            Error::ClockRollback,
            Error::StateCorrupt,
            Error::DuplicateKid,
            Error::NotSign1 {
                expected: Some(tessera_verifier::ObjectType::License),
                found: tessera_verifier::Found::Tag(17),
            },
        ]);
        all
    }

    fn text(p: *const c_char) -> &'static str {
        TABLE
            .iter()
            .flat_map(|(_, c, m)| [*c, *m])
            .chain([c"unknown_status", c"unknown status code"])
            .find(|c| c.as_ptr() == p)
            .and_then(|c| c.to_str().ok())
            .unwrap()
    }

    #[test]
    fn codes_and_messages_match_the_verifier() {
        for e in every_error() {
            let s = of_error(&e);
            assert_ne!(s, TESSERA_E_INTERNAL, "{e:?}");
            assert_eq!(text(tessera_status_code(s)), e.code(), "{e:?}");
            let message = text(tessera_strerror(s));
            match e {
                // Static messages cannot carry the numbers; the decision
                // does.
                // The status's message is that of Error::NotSign1, which
                // the decoders answer; the bare reason shares its code.
                Error::Malformed(Malformed::NotSign1) => {}
                Error::NotSign1 { .. } => {
                    let display = e.to_string();
                    let head = display.split(", found").next().unwrap();
                    assert!(message.starts_with(head), "{message} / {display}");
                }
                Error::WrongDevice { .. } | Error::Superseded { .. } => {
                    let display = e.to_string();
                    let head = display.split(':').next().unwrap();
                    let head = head.split(" (sequence").next().unwrap();
                    assert!(message.starts_with(head), "{message} / {display}");
                }
                _ => assert_eq!(message, e.to_string(), "{e:?}"),
            }
        }
    }

    #[test]
    fn buffer_too_small_is_the_buffer_status() {
        let s = of_error(&Error::Armor(ArmorError::BufferTooSmall));
        assert_eq!(s, TESSERA_E_BUFFER);
        assert_eq!(text(tessera_status_code(s)), "buffer_too_small");
    }

    #[test]
    fn identity_codes_match_the_verifier() {
        for e in [
            IdentityError::UnknownKind,
            IdentityError::Empty,
            IdentityError::Invalid,
            IdentityError::TooLong,
            IdentityError::Full,
        ] {
            let s = of_identity(e);
            assert_eq!(text(tessera_status_code(s)), e.code());
            assert_eq!(text(tessera_strerror(s)), e.to_string());
        }
    }

    #[test]
    fn statuses_are_unique_and_negative() {
        let mut seen = Vec::new();
        for (s, code, _) in TABLE {
            assert!(*s <= 0);
            assert!(!seen.contains(s), "{s} twice");
            assert_eq!(TABLE.iter().filter(|e| e.1 == *code).count(), 1);
            seen.push(*s);
        }
        assert_eq!(text(tessera_status_code(12345)), "unknown_status");
        assert_eq!(text(tessera_strerror(-12345)), "unknown status code");
    }
}
