//! PKCS#11 URIs (RFC 7512): which module, token and key object to use.
//!
//! `pkcs11:token=Vendor%20CA;object=tessera-2026;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so`
//!
//! Every attribute of RFC 7512 is understood; an attribute this parser does
//! not know, a repeated one or a malformed percent escape is an error
//! rather than something silently ignored, since an ignored attribute could
//! select another key. `pin-value` is refused (a PIN in a command line is
//! readable by every user of the machine), `module-name` too (name the
//! library by path). Vendor attributes (`x-...`) are refused for the same
//! reason as unknown ones.

use core::fmt::Write as _;
use std::path::PathBuf;

use tessera_keys::KeyError;

/// The longest URI accepted: RFC 7512 sets no limit, but a URI naming one
/// key in one token is short; anything longer is a mistake.
const MAX_URI_LEN: usize = 4096;

/// The object types of RFC 7512 §2.3 that can name a key pair half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `type=private`
    Private,
    /// `type=public`: accepted, and means the key pair the public key
    /// belongs to.
    Public,
}

/// A parsed PKCS#11 URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label (CK_TOKEN_INFO.label).
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `library-manufacturer`.
    pub library_manufacturer: Option<String>,
    /// `library-description`.
    pub library_description: Option<String>,
    /// `library-version`: major and minor.
    pub library_version: Option<(u8, u8)>,
    /// `slot-id`.
    pub slot_id: Option<u64>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `object`: the key's label (CKA_LABEL).
    pub object: Option<String>,
    /// `id`: the key's CKA_ID, raw bytes.
    pub id: Option<Vec<u8>>,
    /// `type`: private or public (others are refused).
    pub object_type: Option<ObjectType>,
    /// `module-path` (query): the PKCS#11 library.
    pub module_path: Option<PathBuf>,
    /// `pin-source` (query): a file holding the PIN.
    pub pin_source: Option<PathBuf>,
}

impl Pkcs11Uri {
    /// Parses `text`, which starts with `pkcs11:` (in any case).
    ///
    /// # Errors
    /// [`KeyError::Pkcs11Uri`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::Pkcs11Uri {
            uri: text.to_owned(),
            reason,
        };
        if text.len() > MAX_URI_LEN {
            return Err(bad(format!(
                "{} bytes long, more than {MAX_URI_LEN}",
                text.len()
            )));
        }
        let rest =
            strip_scheme(text).ok_or_else(|| bad("it does not start with pkcs11:".into()))?;
        if rest.contains('#') {
            return Err(bad("a PKCS#11 URI has no fragment ('#')".into()));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("'{attr}' is not NAME=VALUE")))?;
            let value = decode(value).map_err(|e| bad(format!("{name}: {e}")))?;
            uri.set_path(name, value).map_err(bad)?;
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("'{attr}' is not NAME=VALUE")))?;
            let value = decode(value).map_err(|e| bad(format!("{name}: {e}")))?;
            uri.set_query(name, value).map_err(bad)?;
        }
        Ok(uri)
    }

    fn set_path(&mut self, name: &str, value: Vec<u8>) -> Result<(), String> {
        let text = |value: Vec<u8>| {
            String::from_utf8(value).map_err(|_| format!("{name} is not UTF-8 text"))
        };
        let slot = match name {
            "token" => &mut self.token,
            "manufacturer" => &mut self.manufacturer,
            "serial" => &mut self.serial,
            "model" => &mut self.model,
            "library-manufacturer" => &mut self.library_manufacturer,
            "library-description" => &mut self.library_description,
            "slot-description" => &mut self.slot_description,
            "slot-manufacturer" => &mut self.slot_manufacturer,
            "object" => &mut self.object,
            "id" => return set_once(name, &mut self.id, value),
            "library-version" => {
                let v = text(value)?;
                return set_once(name, &mut self.library_version, parse_version(&v)?);
            }
            "slot-id" => {
                let v = text(value)?;
                let id = v
                    .parse::<u64>()
                    .map_err(|_| format!("slot-id '{v}' is not a decimal number"))?;
                return set_once(name, &mut self.slot_id, id);
            }
            "type" => {
                let v = text(value)?;
                let t = match v.as_str() {
                    "private" => ObjectType::Private,
                    "public" => ObjectType::Public,
                    "cert" | "secret-key" | "data" => {
                        return Err(format!(
                            "type={v} names no key pair; tessera signs with a private key (type=private)"
                        ))
                    }
                    _ => return Err(format!("type '{v}' is not one of RFC 7512's")),
                };
                return set_once(name, &mut self.object_type, t);
            }
            "pin-value" | "pin-source" | "module-name" | "module-path" => {
                return Err(format!("{name} belongs in the query part, after '?'"))
            }
            _ => return Err(format!("unknown attribute '{name}'")),
        };
        let value = text(value)?;
        set_once(name, slot, value)
    }

    fn set_query(&mut self, name: &str, value: Vec<u8>) -> Result<(), String> {
        let text = |value: Vec<u8>| {
            String::from_utf8(value).map_err(|_| format!("{name} is not UTF-8 text"))
        };
        match name {
            "pin-value" => Err(
                "a PIN in the URI can be read by every user of this machine (ps, shell history); \
                 give it with TESSERA_PKCS11_PIN, --pin-file or at the prompt"
                    .into(),
            ),
            "module-name" => Err(
                "module-name is not supported; name the library with module-path=, --pkcs11-module or TESSERA_PKCS11_MODULE"
                    .into(),
            ),
            "module-path" => {
                let path = PathBuf::from(text(value)?);
                if !path.is_absolute() {
                    return Err("module-path must be an absolute path".into());
                }
                set_once(name, &mut self.module_path, path)
            }
            "pin-source" => {
                let v = text(value)?;
                // RFC 7512 §2.3: a file: URI, or (in practice) a plain path.
                let path = PathBuf::from(v.strip_prefix("file:").unwrap_or(&v));
                if path.as_os_str().is_empty() {
                    return Err("pin-source is empty".into());
                }
                set_once(name, &mut self.pin_source, path)
            }
            _ => Err(format!("unknown query attribute '{name}'")),
        }
    }

    /// The URI of one key, in RFC 7512's form, for messages and for the
    /// operator to reuse: token, object, id and type, percent-encoded.
    #[must_use]
    pub fn key_uri(token: &str, object: &str, id: &[u8]) -> String {
        let mut out = String::from("pkcs11:");
        let mut sep = "";
        if !token.is_empty() {
            out.push_str("token=");
            encode_into(&mut out, token.as_bytes());
            sep = ";";
        }
        if !object.is_empty() {
            out.push_str(sep);
            out.push_str("object=");
            encode_into(&mut out, object.as_bytes());
            sep = ";";
        }
        if !id.is_empty() {
            out.push_str(sep);
            out.push_str("id=");
            for b in id {
                // RFC 7512 recommends percent-encoding every byte of an id.
                let _ = write!(out, "%{b:02x}");
            }
            sep = ";";
        }
        out.push_str(sep);
        out.push_str("type=private");
        out
    }
}

fn strip_scheme(text: &str) -> Option<&str> {
    let scheme = text.get(..7)?;
    scheme
        .eq_ignore_ascii_case("pkcs11:")
        .then(|| text.get(7..))
        .flatten()
}

/// Whether `text` is meant as a PKCS#11 URI (starts with `pkcs11:`, any
/// case) rather than a file name.
#[must_use]
pub fn is_pkcs11_uri(text: &str) -> bool {
    strip_scheme(text).is_some()
}

fn set_once<T>(name: &str, slot: &mut Option<T>, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{name} appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_version(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("library-version '{text}' is not MAJOR or MAJOR.MINOR");
    let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u8>().map_err(|_| bad())
    };
    Ok((number(major)?, number(minor)?))
}

/// Percent-decodes a value; characters RFC 7512 does not allow unencoded
/// in a value are refused.
fn decode(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("'%' at byte {i} is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
            continue;
        }
        if !allowed(b) {
            return Err(format!(
                "'{}' must be percent-encoded",
                char::from(b).escape_default()
            ));
        }
        out.push(b);
        i += 1;
    }
    Ok(out)
}

/// RFC 7512 `pk11-pchar` and `pk11-qchar` without `%`: unreserved
/// characters and the reserved ones a value may hold. (`;` and `&` have
/// already split the attributes; the first `=` splits name and value.)
fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&/?|".contains(&b)
}

fn encode_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests;
