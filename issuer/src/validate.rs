//! The one validation layer for everything that enters a license, a ledger
//! entry, a file name or a terminal.
//!
//! A request is signed by the device that sends it, so anyone can write
//! one; an order or a bulk CSV may come from a partner's spreadsheet. What
//! they carry is checked here, once, with errors that name the field:
//!
//! - **Text fields** (customer, PBX name, model, device labels, user
//!   assignments, approval references, reasons, operators) must pass
//!   [`tessera_verifier::text::check`]: no control characters, no bidi
//!   overrides or other invisible format characters. Invalid UTF-8 never
//!   gets this far (every reader decodes strictly).
//! - **SW serials** must match the ledger's grammar `SW-YYYY-NNNNNN`
//!   ([`sw_serial`]): a serial is used as a file name and a lookup key, so
//!   `../x`, `/etc/passwd` or a trailing newline can never be one.
//! - **HW serials** are normalized with the verifier's
//!   [`tessera_verifier::normalize`] (trimmed, upper-case) before every
//!   lookup and before they are stored ([`hw_serial`]), so case or spacing
//!   never makes a second PBX.
//! - **Requests** ([`request`]): both serials as above, a `device_key`
//!   identity component that is the digest of the key that signed the
//!   request ([`device_key_component`]), and the creation time `iat`
//!   inside a window around the issuer's clock.
//! - **Licenses** ([`license`]): every text field once more right before
//!   signing, so nothing with a control or format character is ever
//!   signed, whatever path built it.
//!
//! Counts are bounded by the catalog ([`crate::catalog::Catalog::max_count`],
//! checked when an order is resolved).

use tessera_verifier::binding::{component_digest, MAX_VALUE_LEN};
use tessera_verifier::claims::{limits, ComponentKind};
use tessera_verifier::encode::{LicenseData, RequestData, SharingData};
use tessera_verifier::text::{self, TextFault};

use crate::calendar::{format_duration, rfc3339_unix, DAY};

/// The default window around the issuer's clock in which a request's
/// creation time must lie (`request_window` in the configuration).
pub const DEFAULT_REQUEST_WINDOW: u32 = 30 * 86_400;

/// Longest text field the issuer accepts (the license format's largest
/// cap, the customer name, is 128 bytes; order-only fields such as device
/// labels and user names get the same room).
pub const MAX_TEXT_LEN: usize = 256;

/// Why input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A control or format character in a text field.
    #[error("{field} `{shown}`: {fault}")]
    Text {
        /// Which field (`customer`, `request HW serial`, ...).
        field: String,
        /// The value, escaped for display.
        shown: String,
        /// What is wrong.
        fault: TextFault,
    },
    /// A text field longer than any legitimate value.
    #[error("{field} is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// Which field.
        field: String,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A SW serial outside the ledger's grammar.
    #[error("{field} `{shown}` is not a SW serial: tessera serials are SW-YYYY-NNNNNN (a year and six digits), as the ledger allocates them")]
    SwSerial {
        /// Which field.
        field: String,
        /// The value, escaped for display.
        shown: String,
    },
    /// A HW serial that does not normalize.
    #[error("{field} `{shown}` is not a usable HW serial: {reason}")]
    HwSerial {
        /// Which field.
        field: String,
        /// The value, escaped for display.
        shown: String,
        /// What the normalization said.
        reason: String,
    },
    /// A request written too long before (or after) the issuer's clock.
    #[error("the request was written at {written}, {distance} the issuer's clock ({now}); requests are accepted within {window}: check the device's clock (NTP) and ask it for a new request")]
    StaleRequest {
        /// The request's `iat`.
        written: String,
        /// How far, and in which direction.
        distance: String,
        /// The issuer's clock.
        now: String,
        /// The accepted window and the setting that sets it, as the
        /// operator writes it (`30d of it (`request_window` ...)`; one
        /// field, so that the error stays small).
        window: String,
    },
    /// A request whose `device_key` identity component is not the digest
    /// of the key that signed it: a copy re-signed with another key, or a
    /// device that lists a key it does not sign with.
    #[error("the request's identity component `device_key` is not the digest of the key that signed the request (key {key}): the request was re-signed by someone else or made wrong; ask the device for a new request (`tessera-agent request`)")]
    DeviceKeyMismatch {
        /// The first 16 hex digits of the signing key.
        key: String,
    },
    /// A count above the catalog's maximum.
    #[error("{what} `{name}`: {count} is more than the catalog allows ({max}); check the order (the catalog's `max` for it, or `[limits] max_count`, sets the bound)")]
    TooMany {
        /// Profile, base license, add-on, feature or storage.
        what: &'static str,
        /// Its name.
        name: String,
        /// The count given.
        count: u64,
        /// The bound.
        max: u32,
    },
}

// The one bound and shape for quoting untrusted text, shared with the
// key store's messages: see [`tessera_verifier::text::shown`].
pub use tessera_verifier::text::{shown, SHOWN_CHARS};

/// The name that a serde message quotes in backticks (`rest` starts just
/// after the opening one) and what the message says after it. The name
/// may hold backticks itself: the message's own words resume at the
/// last "`, expected " or "`, there are no ".
pub(crate) fn quoted_name(rest: &str) -> (&str, &str) {
    ["`, expected ", "`, there are no "]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .max()
        .map_or_else(
            || (rest.strip_suffix('`').unwrap_or(rest), ""),
            |at| {
                (
                    rest.get(..at).unwrap_or(rest),
                    rest.get(at + 1..).unwrap_or(""),
                )
            },
        )
}

/// The text of a string literal as serde's messages write it (Rust's
/// `{:?}`: in double quotes, `\"`, `\\`, `\n`, `\u{1b}` ...); `None`
/// when `literal` is not one.
pub(crate) fn debug_literal(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            'u' => {
                let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// A parser's message (serde's, as TOML and JSON readers word them)
/// with the value or name it quotes shown as [`shown`] shows one:
/// `unknown field `NAME``, `unknown variant `VALUE``, `invalid type:
/// string "TEXT"`; any other message over [`LONG_MESSAGE`] bytes is cut
/// whole. For the readers whose messages are not reworded (the catalog).
#[must_use]
pub fn parser_message(message: &str) -> String {
    for head in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = message.strip_prefix(head) {
            let (name, after) = quoted_name(rest);
            return format!("{head}{}`{after}", shown(name));
        }
    }
    for head in ["invalid type: string ", "invalid value: string "] {
        if let Some(rest) = message.strip_prefix(head) {
            if let Some((literal, expected)) = rest.rsplit_once(", expected ") {
                if let Some(text) = debug_literal(literal) {
                    return format!("{head}\"{}\", expected {expected}", shown(&text));
                }
            }
        }
    }
    if message.len() > LONG_MESSAGE {
        return shown(message);
    }
    message.to_owned()
}

/// A parser message longer than this is cut as a quoted value is
/// ([`shown`]): the parsers' own words are far shorter.
pub const LONG_MESSAGE: usize = 400;

pub use tessera_verifier::text::grouped;

/// Checks a text field: printable characters only, at most
/// [`MAX_TEXT_LEN`] bytes.
///
/// # Errors
/// [`InvalidInput::Text`], [`InvalidInput::TooLong`].
pub fn text(field: &str, value: &str) -> Result<(), InvalidInput> {
    // Printable ASCII, the common case, needs no table lookup.
    if value.len() <= MAX_TEXT_LEN && value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(InvalidInput::TooLong {
            field: field.to_owned(),
            len: value.len(),
            max: MAX_TEXT_LEN,
        });
    }
    text::check(value).map_err(|fault| InvalidInput::Text {
        field: field.to_owned(),
        shown: shown(value),
        fault,
    })
}

/// Whether `s` is in the ledger's serial grammar `SW-YYYY-NNNNNN`.
#[must_use]
pub fn is_sw_serial(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14
        && b.starts_with(b"SW-")
        && b.get(7) == Some(&b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 0..=2 | 7) || c.is_ascii_digit())
}

/// Checks a SW serial against the ledger's grammar.
///
/// # Errors
/// [`InvalidInput::SwSerial`].
pub fn sw_serial(field: &str, value: &str) -> Result<(), InvalidInput> {
    if is_sw_serial(value) {
        Ok(())
    } else {
        Err(InvalidInput::SwSerial {
            field: field.to_owned(),
            shown: shown(value),
        })
    }
}

/// The normalized form of a HW serial (`spec/RUNTIME.md` §2.2: trimmed,
/// ASCII upper-case), refused when it holds a control or format character.
///
/// # Errors
/// [`InvalidInput::HwSerial`], [`InvalidInput::Text`].
pub fn hw_serial(field: &str, raw: &str) -> Result<String, InvalidInput> {
    let mut buf = [0u8; MAX_VALUE_LEN];
    let bad = |reason: String| InvalidInput::HwSerial {
        field: field.to_owned(),
        shown: shown(raw),
        reason,
    };
    let normalized =
        tessera_verifier::normalize(ComponentKind::HW_SERIAL, raw.as_bytes(), &mut buf)
            .map_err(|e| bad(e.to_string()))?;
    let normalized = core::str::from_utf8(normalized)
        .map_err(|_| bad("not UTF-8 once normalized".into()))?
        .to_owned();
    text(field, &normalized)?;
    if normalized.len() > limits::SERIAL_LEN {
        return Err(bad(format!("longer than {} bytes", limits::SERIAL_LEN)));
    }
    Ok(normalized)
}

/// A serial named on the command line (`--serial`, `ledger show`): a SW
/// serial as it is, or a HW serial in its normalized form.
///
/// # Errors
/// [`InvalidInput::HwSerial`] (naming both readings) when it is neither.
pub fn serial_arg(field: &str, raw: &str) -> Result<String, InvalidInput> {
    let t = raw.trim();
    if is_sw_serial(t) {
        return Ok(t.to_owned());
    }
    hw_serial(field, raw).map_err(|e| match e {
        InvalidInput::HwSerial {
            field,
            shown,
            reason,
        } => InvalidInput::HwSerial {
            field,
            shown,
            reason: format!(
                "it is not a SW serial (SW-YYYY-NNNNNN) either, and as a HW serial: {reason}"
            ),
        },
        other => other,
    })
}

/// What a request must meet, fixed once per command: the issuer's clock
/// and the freshness window around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestCheck {
    /// The issuer's clock (Unix seconds).
    pub now: i64,
    /// How far the request's creation time may be from `now` (seconds).
    pub window: u32,
}

impl RequestCheck {
    /// [`request`] with these settings.
    ///
    /// # Errors
    /// As [`request`].
    pub fn apply(&self, r: RequestData) -> Result<RequestData, InvalidInput> {
        request(r, self.now, self.window)
    }
}

/// Checks a request that arrived from a device, and normalizes its HW
/// serial: the SW serial must be in the ledger's grammar, the HW serial
/// must normalize, a `device_key` component must be the digest of the
/// signing key ([`device_key_component`]), and the creation time must lie
/// within `window` seconds of `now` (either way).
///
/// # Errors
/// [`InvalidInput::SwSerial`], [`InvalidInput::HwSerial`],
/// [`InvalidInput::Text`], [`InvalidInput::DeviceKeyMismatch`],
/// [`InvalidInput::StaleRequest`].
pub fn request(r: RequestData, now: i64, window: u32) -> Result<RequestData, InvalidInput> {
    request_within(r, now, window, CLI_REQUEST_WINDOW)
}

/// How the vendor CLI's freshness window is set, for its refusals.
pub const CLI_REQUEST_WINDOW: &str = "`request_window` in tessera.toml or TESSERA_REQUEST_WINDOW";

/// [`request`] for a caller whose window is set by `setting` (how an
/// operator changes it, e.g. "`--freshness` of tessera-server"), which
/// the refusal names: one check and one wording for every caller.
///
/// # Errors
/// As [`request`].
pub fn request_within(
    mut r: RequestData,
    now: i64,
    window: u32,
    setting: &'static str,
) -> Result<RequestData, InvalidInput> {
    if let Some(sw) = &r.serial {
        sw_serial("the request's SW serial", sw)?;
    }
    if let Some(hw) = &r.hw_serial {
        r.hw_serial = Some(hw_serial("the request's HW serial", hw)?);
    }
    device_key_component(&r)?;
    let distance = i128::from(r.created_at) - i128::from(now);
    if distance.unsigned_abs() > u128::from(window) {
        let days = distance.unsigned_abs() / u128::from(DAY.unsigned_abs());
        let when = if days > 1_000_000 {
            "at an impossible distance from".to_owned()
        } else if distance < 0 {
            format!("{days} day(s) before")
        } else {
            format!("{days} day(s) after")
        };
        let written = if (-(1_i64 << 40)..(1_i64 << 40)).contains(&r.created_at) {
            rfc3339_unix(r.created_at)
        } else {
            format!("{} (Unix seconds)", r.created_at)
        };
        return Err(InvalidInput::StaleRequest {
            written,
            distance: when,
            now: rfc3339_unix(now),
            window: format!("{} of it ({setting})", format_duration(window)),
        });
    }
    Ok(r)
}

/// Checks that a request whose identity lists a `device_key` component
/// carries the digest of the key that signed it
/// ([`tessera_verifier::binding::component_digest`] of the key under the
/// request's salt): the key is the one component the signature proves,
/// so a copy re-signed with another key cannot keep the original's.
///
/// # Errors
/// [`InvalidInput::DeviceKeyMismatch`].
pub fn device_key_component(r: &RequestData) -> Result<(), InvalidInput> {
    let own = component_digest(&r.salt, ComponentKind::DEVICE_KEY, &r.device_key);
    if r.identity
        .iter()
        .any(|i| i.kind == ComponentKind::DEVICE_KEY && i.digest != own)
    {
        return Err(InvalidInput::DeviceKeyMismatch {
            key: hex::encode(&r.device_key[..8]),
        });
    }
    Ok(())
}

/// Checks every text field of a license before it is signed: the serial
/// grammar (also of a sharing server), a normalized HW serial as the
/// previous serial, printable vendor id, customer and PBX name.
///
/// # Errors
/// The first field that does not hold.
pub fn license(l: &LicenseData) -> Result<(), InvalidInput> {
    license_text(
        &l.serial,
        &l.issuer,
        &l.customer,
        &l.pbx_name,
        l.previous_serial.as_deref(),
        match &l.sharing {
            SharingData::Client(server) => Some(server),
            _ => None,
        },
    )
}

/// [`license`] on a decoded license, without copying it.
///
/// # Errors
/// As [`license`].
pub fn license_view(l: &tessera_verifier::License<'_>) -> Result<(), InvalidInput> {
    license_text(
        l.serial(),
        l.issuer(),
        l.customer(),
        l.pbx_name(),
        l.previous_serial(),
        match l.sharing() {
            tessera_verifier::claims::Sharing::Client(server) => Some(server),
            _ => None,
        },
    )
}

fn license_text(
    serial: &str,
    issuer: &str,
    customer: &str,
    pbx_name: &str,
    previous: Option<&str>,
    server: Option<&str>,
) -> Result<(), InvalidInput> {
    sw_serial("serial", serial)?;
    text("vendor id", issuer)?;
    text("customer", customer)?;
    text("PBX name", pbx_name)?;
    if let Some(prev) = previous {
        let normalized = hw_serial("previous (HW) serial", prev)?;
        if normalized != prev {
            return Err(InvalidInput::HwSerial {
                field: "previous (HW) serial".into(),
                shown: shown(prev),
                reason: format!("not in its normalized form `{normalized}`"),
            });
        }
    }
    if let Some(server) = server {
        sw_serial("sharing server", server)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
