//! Requests from C firmware without a heap (`spec/FORMAT.md` §7): written
//! and signed into a caller buffer ([`tessera_request_encode`]), armored
//! for the partner who carries them ([`tessera_armor_encode`]).
//!
//! The device key signs through a function of the firmware
//! ([`TesseraSignFn`]): a secure element, or a key in protected flash with
//! [`tessera_ed25519_sign`]. Firmware with a secure element never links
//! the signing code.

use core::ffi::{c_char, c_void};

use tessera_verifier::claims::{ComponentKind, Identity, Platform, DIGEST_LEN};
use tessera_verifier::request::{self, EncodeError, RequestFields};
use tessera_verifier::{armor, decode_request, State};

use crate::status::{self, *};
use crate::{ptr, run, IdentityInput, TesseraDecision, TesseraIdentity};
use crate::{TESSERA_MAX_COMPONENTS, TESSERA_STATE_LEN};

/// Room that always suffices for a signed request.
pub const TESSERA_MAX_REQUEST_LEN: usize = 768;
/// Room that always suffices for an armored request, with its NUL.
pub const TESSERA_MAX_REQUEST_ARMOR_LEN: usize = 1103;
/// Longest armored text [`crate::tessera_armor_decode`] reads.
pub const TESSERA_MAX_ARMOR_LEN: usize = 65536;
/// [`tessera_armor_encode`]: a license (`TESSERA LICENSE`).
pub const TESSERA_ARMOR_LICENSE: i32 = 0;
/// [`tessera_armor_encode`]: a request (`TESSERA REQUEST`).
pub const TESSERA_ARMOR_REQUEST: i32 = 1;

const _: () = assert!(TESSERA_MAX_REQUEST_LEN == request::MAX_REQUEST_LEN);
const _: () = assert!(
    TESSERA_MAX_REQUEST_ARMOR_LEN
        == armor::encoded_len(request::MAX_REQUEST_LEN, armor::LABEL_REQUEST) + 1
);
const _: () = assert!(TESSERA_MAX_ARMOR_LEN == armor::MAX_ARMOR_LEN);

/// Signs `message` (`message_len` bytes) with the device key and writes
/// the 64-byte Ed25519 signature to `signature`; returns 0 on success,
/// anything else on failure. Called once per request, with the `sign_ctx`
/// given to [`tessera_request_encode`]; `message` is valid during the call
/// only.
pub type TesseraSignFn = Option<
    extern "C" fn(
        ctx: *mut c_void,
        message: *const u8,
        message_len: usize,
        signature: *mut u8,
    ) -> i32,
>;

/// What the firmware adds to a request besides its identity and state.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TesseraRequestParams {
    /// Creation time: the device clock (Unix seconds).
    pub created_at: i64,
    /// 16 bytes from the device's random source, fresh for each request.
    pub nonce: [u8; 16],
    /// 16 bytes from the device's random source: the salt of the identity
    /// digests when no license is in force (`in_force` NULL); a renewal
    /// reuses the salt of the license in force.
    pub salt: [u8; 16],
    /// The public key of the key `sign` signs with
    /// ([`tessera_ed25519_public_key`] for a key the firmware holds).
    pub device_key: [u8; 32],
    /// Platform: 0 HW appliance, 1 VM, 2 Cloud.
    pub platform: u8,
}

/// Writes a signed request into `out` (`TESSERA_MAX_REQUEST_LEN` bytes
/// always suffice) and its length into `*out_len`: a first activation
/// when `state` holds no license, else a renewal naming the license in
/// force (`spec/FORMAT.md` §7).
///
/// - `identity`: as for [`crate::tessera_verify`]; the request names the SW
///   serial, or before the first activation the HW serial, and the digests
///   of the identity values.
/// - `state`, `state_len`: the `TESSERA_STATE_LEN`-byte record: the
///   license in force and the last renewal come from it.
/// - `in_force`: the decision of the license in force, whose binding salt
///   a renewal reuses; NULL when there is none (`params->salt` is used).
/// - `params`: time, nonce, salt, device key, platform.
/// - `sign`, `sign_ctx`: the device key's signing function, called once.
///
/// The request is decoded and its signature checked under
/// `params->device_key` before this returns, so a signer holding another
/// key is reported here (`TESSERA_E_SIGNER`), not by the vendor.
///
/// Outputs: on `TESSERA_OK`, `out[0..*out_len]` holds the request and the
/// rest of `out` is unspecified. On `TESSERA_E_NULL`, `TESSERA_E_ARGUMENT`
/// and `TESSERA_E_BUFFER` for `state_len` nothing is written. On every
/// other status all `out_cap` bytes of `out` are 0 and `*out_len` is 0.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_request_encode(
    identity: *const TesseraIdentity,
    state: *const u8,
    state_len: usize,
    in_force: *const TesseraDecision,
    params: *const TesseraRequestParams,
    sign: TesseraSignFn,
    sign_ctx: *mut c_void,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> i32 {
    run(|| {
        let id_c = ptr::reference(identity)?;
        let id_in = IdentityInput::new(id_c)?;
        let mut spans = [(0, 0); TESSERA_MAX_COMPONENTS + 3];
        id_in.spans(&mut spans);
        if state_len != TESSERA_STATE_LEN {
            ptr::check(state, 0)?;
            return Err(TESSERA_E_BUFFER);
        }
        let state = ptr::slice(state, state_len)?;
        let params = ptr::reference(params)?;
        let in_force = if in_force.is_null() {
            None
        } else {
            Some(ptr::reference(in_force)?)
        };
        let sign = sign.ok_or(TESSERA_E_NULL)?;
        let platform = Platform::from_code(params.platform).ok_or(TESSERA_E_ARGUMENT)?;
        let inputs = [
            ptr::span(identity, 1),
            ptr::span(state.as_ptr(), state.len()),
            ptr::span(params, 1),
            in_force.map_or((0, 0), |d| ptr::span(d, 1)),
        ];
        let out_span = ptr::span(out.cast_const(), out_cap);
        let len_span = ptr::span(out_len.cast_const(), 1);
        for output in [out_span, len_span] {
            ptr::disjoint(output, &inputs)?;
            ptr::disjoint(output, &spans)?;
        }
        ptr::disjoint(len_span, &[out_span])?;
        let len = ptr::reference_mut(out_len)?;
        let buf = ptr::slice_mut(out, out_cap)?;

        let written = (|| {
            let device = id_in.identity()?;
            let state = State::from_bytes(state).map_err(|e| status::of_error(&e))?;
            let salt = match in_force {
                Some(d) => d.license()?.binding().salt,
                None => params.salt,
            };
            let mut digests = [Identity {
                kind: ComponentKind(0),
                digest: [0; DIGEST_LEN],
            }; TESSERA_MAX_COMPONENTS];
            let n = digests
                .iter_mut()
                .zip(device.digests(&salt))
                .map(|(slot, d)| *slot = d)
                .count();
            let serial = device.sw_serial();
            let fields = RequestFields {
                serial,
                hw_serial: if serial.is_none() {
                    device.hw_serial()
                } else {
                    None
                },
                created_at: params.created_at,
                nonce: params.nonce,
                platform,
                salt,
                identity: digests.get(..n).unwrap_or_default(),
                current: state.license_id().zip(state.sequence()),
                last_renewal: state.last_renewal(),
                device_key: params.device_key,
            };
            let bytes = request::sign(&fields, buf, |message| {
                let mut signature = [0u8; 64];
                match sign(
                    sign_ctx,
                    message.as_ptr(),
                    message.len(),
                    signature.as_mut_ptr(),
                ) {
                    0 => Ok(signature),
                    failed => Err(failed),
                }
            })
            .map_err(|e| match e {
                EncodeError::Invalid(m) => status::of_error(&m.into()),
                EncodeError::Buffer { .. } => TESSERA_E_BUFFER,
                EncodeError::Sign(_) => TESSERA_E_SIGNER,
                _ => TESSERA_E_INTERNAL,
            })?;
            decode_request(bytes).map_err(|_| TESSERA_E_SIGNER)?;
            // The request is written a few bytes into `out`: to its start.
            let (at, n) = (bytes.as_ptr() as usize, bytes.len());
            let start = at.saturating_sub(buf.as_ptr() as usize);
            buf.copy_within(start..start + n, 0);
            Ok(n)
        })();
        whole_or_cleared(written, buf, len)
    })
}

/// The outputs of an encoder: on success the length in `*len`; on an error
/// all of `buf` and `*len` are 0, as `tessera.h` documents.
fn whole_or_cleared(
    result: Result<usize, i32>,
    buf: &mut [u8],
    len: &mut usize,
) -> Result<(), i32> {
    match result {
        Ok(n) => {
            *len = n;
            Ok(())
        }
        Err(e) => {
            buf.fill(0);
            *len = 0;
            Err(e)
        }
    }
}

/// Armors `len` bytes (a license or a request, `label`
/// `TESSERA_ARMOR_LICENSE` / `TESSERA_ARMOR_REQUEST`) into `out` as
/// NUL-terminated text (`spec/FORMAT.md` §8: BEGIN line, base64 in
/// 64-column lines, END line, LF line ends) and stores its length, without
/// the NUL, in `*out_len`. `TESSERA_MAX_REQUEST_ARMOR_LEN` bytes always
/// suffice for a request.
///
/// Outputs: on `TESSERA_OK`, `out[0..*out_len]` holds the text and
/// `out[*out_len]` its NUL; the rest of `out` is not written. On
/// `TESSERA_E_NULL` and `TESSERA_E_ARGUMENT` nothing is written. On every
/// other status (`TESSERA_E_BUFFER`, `TESSERA_E_ARMOR_TOO_LARGE` for more
/// than `TESSERA_MAX_LICENSE_LEN` bytes) all `out_cap` bytes of `out` are 0
/// and `*out_len` is 0.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_armor_encode(
    bytes: *const u8,
    len: usize,
    label: i32,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> i32 {
    run(|| {
        // Bytes over the cap are refused unread (below, with the output
        // cleared).
        ptr::check(bytes, len)?;
        let label = match label {
            TESSERA_ARMOR_LICENSE => armor::LABEL_LICENSE,
            TESSERA_ARMOR_REQUEST => armor::LABEL_REQUEST,
            _ => return Err(TESSERA_E_ARGUMENT),
        };
        let input = ptr::span(bytes, len);
        let out_span = ptr::span(out.cast_const(), out_cap);
        let len_span = ptr::span(out_len.cast_const(), 1);
        ptr::disjoint(out_span, &[input])?;
        ptr::disjoint(len_span, &[input, out_span])?;
        let written = ptr::reference_mut(out_len)?;
        let buf = ptr::slice_mut(out.cast::<u8>(), out_cap)?;
        let bytes = if len > tessera_verifier::MAX_OBJECT_LEN {
            None
        } else {
            Some(ptr::slice(bytes, len)?)
        };
        let result = match (bytes, buf.split_last_mut()) {
            (None, _) => Err(TESSERA_E_ARMOR_TOO_LARGE),
            (_, None) => Err(TESSERA_E_BUFFER),
            // Room for the text before the NUL.
            (Some(bytes), Some((_, text_room))) => armor::encode_into(bytes, label, text_room)
                .map(str::len)
                .map_err(|e| match e {
                    tessera_verifier::ArmorError::BufferTooSmall => TESSERA_E_BUFFER,
                    other => status::of_error(&other.into()),
                }),
        };
        if let Some(nul) = result.as_ref().ok().and_then(|&n| buf.get_mut(n)) {
            *nul = 0;
        }
        whole_or_cleared(result, buf, written)
    })
}

/// The Ed25519 public key of a 32-byte secret seed, for
/// `TesseraRequestParams::device_key` when the firmware holds its device
/// key. Nothing is written on an error.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_ed25519_public_key(seed: *const u8, public_key: *mut u8) -> i32 {
    run(|| {
        let seed = seed_of(seed)?;
        let seed_span = ptr::span(seed.as_ptr(), seed.len());
        ptr::disjoint(ptr::span(public_key.cast_const(), 32), &[seed_span])?;
        let out = ptr::slice_mut(public_key, 32)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        out.copy_from_slice(key.verifying_key().as_bytes());
        Ok(())
    })
}

/// Signs `message` with the Ed25519 key of a 32-byte secret seed into
/// `signature` (64 bytes): a [`TesseraSignFn`] for firmware that holds its
/// device key in protected flash calls this. The expanded key is wiped
/// before it returns. Nothing is written on an error.
#[allow(unsafe_code)] // `no_mangle` only; the body is safe code.
#[unsafe(no_mangle)]
pub extern "C" fn tessera_ed25519_sign(
    seed: *const u8,
    message: *const u8,
    message_len: usize,
    signature: *mut u8,
) -> i32 {
    run(|| {
        use ed25519_dalek::Signer as _;
        let seed = seed_of(seed)?;
        let message = ptr::slice(message, message_len)?;
        ptr::disjoint(
            ptr::span(signature.cast_const(), 64),
            &[
                ptr::span(seed.as_ptr(), seed.len()),
                ptr::span(message.as_ptr(), message.len()),
            ],
        )?;
        let out = ptr::slice_mut(signature, 64)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        out.copy_from_slice(&key.sign(message).to_bytes());
        Ok(())
    })
}

fn seed_of<'a>(seed: *const u8) -> Result<&'a [u8; 32], i32> {
    ptr::slice(seed, 32)?
        .try_into()
        .map_err(|_| TESSERA_E_ARGUMENT)
}
