//! Signing with an Ed25519 key held in a PKCS#11 token (an HSM, a smart
//! card, SoftHSM2 in tests): the private key never leaves the token.
//!
//! - The key is named by an RFC 7512 URI ([`Pkcs11Uri`]):
//!   `pkcs11:token=Vendor;object=tessera-2026`.
//! - The module (the token's PKCS#11 library) comes from
//!   [`Pkcs11Options::module`] (the CLI's `--pkcs11-module` or
//!   [`MODULE_ENV`]), else from the URI's `module-path`.
//! - The user PIN comes from [`crate::PinSource`]: `TESSERA_PKCS11_PIN`, a
//!   file, or the terminal; a token with a PIN pad (protected
//!   authentication path) asks on the pad.
//! - Keys are generated in the token with `CKM_EC_EDWARDS_KEY_PAIR_GEN` as
//!   sensitive, non-extractable token objects; an existing key is adopted
//!   only if the token says it is sensitive and not extractable.
//! - Signatures are made with `CKM_EDDSA` (pure Ed25519, RFC 8032) and
//!   checked against the public key before they are returned, so a token
//!   fault or a mismatched public key object never yields a license that
//!   firmware would reject.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use ed25519_dalek::{Signature, VerifyingKey};
use tessera_keys::{KeyError, Signer};
use tessera_verifier::keyring::key_id;
use tessera_verifier::KeyId;

use crate::PinSource;

pub mod uri;

pub use uri::{is_pkcs11_uri, Pkcs11Uri};

/// The environment variable naming the PKCS#11 module (library path).
pub const MODULE_ENV: &str = "TESSERA_PKCS11_MODULE";

/// `CKA_EC_PARAMS` of Ed25519: the DER of the OID id-Ed25519
/// (1.3.101.112, RFC 8410), which tokens write on generation.
const ED25519_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// The other spelling PKCS#11 3.0 allows: PrintableString "edwards25519".
const ED25519_NAME_DER: &[u8] = b"\x13\x0cedwards25519";
/// Ed448, named so a message can say what was found.
const ED448_OID_DER: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x71];
const ED448_NAME_DER: &[u8] = b"\x13\x0aedwards448";

/// How to reach a token.
#[derive(Clone, Debug)]
pub struct Pkcs11Options {
    /// The PKCS#11 module; `None` uses the URI's `module-path`.
    pub module: Option<PathBuf>,
    /// Where the user PIN comes from. A URI's `pin-source` is used when
    /// this is [`PinSource::Auto`].
    pub pin: PinSource,
}

/// Whether [`Pkcs11Signer::generate_or_adopt`] made a new key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key pair was generated in the token.
    Created,
    /// A key pair already in the token was taken as it is.
    Adopted,
}

/// An Ed25519 key in a PKCS#11 token. Holds one logged-in session; the
/// private key stays in the token.
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    key: ObjectHandle,
    verifying: VerifyingKey,
    kid: KeyId,
    token: String,
    key_uri: String,
}

impl Pkcs11Signer {
    /// Opens the key named by `uri` for signing.
    ///
    /// # Errors
    /// [`KeyError::Pkcs11Uri`], [`KeyError::NoPkcs11Module`],
    /// [`KeyError::Pkcs11Module`], [`KeyError::NoPkcs11Token`],
    /// [`KeyError::SeveralPkcs11Tokens`], the PIN's errors
    /// ([`KeyError::NoPin`], [`KeyError::WrongPin`], [`KeyError::PinLocked`]
    /// ...), [`KeyError::Pkcs11KeyNotFound`],
    /// [`KeyError::Pkcs11KeyAmbiguous`], [`KeyError::Pkcs11KeyNotEd25519`],
    /// [`KeyError::Pkcs11KeyExportable`], [`KeyError::Pkcs11NoPublicKey`],
    /// [`KeyError::Pkcs11`].
    pub fn open(uri: &str, options: &Pkcs11Options) -> Result<Self, KeyError> {
        let token = Token::open(uri, options, false)?;
        match token.find_private()?.as_slice() {
            [] => Err(KeyError::Pkcs11KeyNotFound {
                uri: uri.to_owned(),
            }),
            [key] => token.into_signer(uri, *key),
            keys => Err(KeyError::Pkcs11KeyAmbiguous {
                uri: uri.to_owned(),
                what: "private keys",
                count: keys.len(),
            }),
        }
    }

    /// Creates an Ed25519 key pair in the token, labelled with the URI's
    /// `object` (and `id` when given; else the key id is written as
    /// `CKA_ID`), or adopts the one key pair the URI already names.
    ///
    /// # Errors
    /// As [`Pkcs11Signer::open`], and [`KeyError::Pkcs11Uri`] when a new
    /// key would have no `object` label, [`KeyError::Pkcs11Leftover`] when
    /// only a public key with that name exists, [`KeyError::Pkcs11`] when
    /// the token cannot generate the key (or another process created one
    /// with the same name at the same time).
    pub fn generate_or_adopt(
        uri: &str,
        options: &Pkcs11Options,
    ) -> Result<(Self, KeyOrigin), KeyError> {
        let parsed = Pkcs11Uri::parse(uri)?;
        if parsed.object.as_deref().is_none_or(str::is_empty) && parsed.id.is_none() {
            return Err(KeyError::Pkcs11Uri {
                uri: uri.to_owned(),
                reason: "name the key with object=LABEL (a new key needs a label)".into(),
            });
        }
        let token = Token::open(uri, options, true)?;
        match token.find_private()?.as_slice() {
            [] => {}
            [key] => return Ok((token.into_signer(uri, *key)?, KeyOrigin::Adopted)),
            keys => {
                return Err(KeyError::Pkcs11KeyAmbiguous {
                    uri: uri.to_owned(),
                    what: "private keys",
                    count: keys.len(),
                })
            }
        }
        let label = token
            .uri
            .object
            .clone()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| KeyError::Pkcs11Uri {
                uri: uri.to_owned(),
                reason: "a new key needs a name: add object=LABEL".into(),
            })?;
        if !token
            .find(ObjectClass::PUBLIC_KEY, &token.selector())?
            .is_empty()
        {
            return Err(KeyError::Pkcs11Leftover {
                uri: uri.to_owned(),
            });
        }
        let key = token.generate(uri, &label)?;
        Ok((token.into_signer(uri, key)?, KeyOrigin::Created))
    }

    /// The key's own URI (token, object, id), to name it in later commands.
    #[must_use]
    pub fn key_uri(&self) -> &str {
        &self.key_uri
    }

    /// The token's label.
    #[must_use]
    pub fn token_label(&self) -> &str {
        &self.token
    }
}

impl Signer for Pkcs11Signer {
    fn kid(&self) -> KeyId {
        self.kid
    }

    fn public_key(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], KeyError> {
        let failed = |reason: String| KeyError::Pkcs11 {
            token: self.token.clone(),
            action: "signing",
            reason,
        };
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let signature = {
            // A panic while holding the lock leaves the session as usable
            // as before: PKCS#11 calls are not interrupted half-way.
            let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
            session
                .sign(&mechanism, self.key, msg)
                .map_err(|e| failed(ck_reason(&e)))?
        };
        let bytes: [u8; 64] = signature
            .as_slice()
            .try_into()
            .map_err(|_| failed(format!("a {}-byte signature", signature.len())))?;
        self.verifying
            .verify_strict(msg, &Signature::from_bytes(&bytes))
            .map_err(|_| {
                failed("the signature does not verify under the key's public key object".into())
            })?;
        Ok(bytes)
    }
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key", &self.key_uri)
            .field("kid", &hex::encode(self.kid))
            .finish_non_exhaustive()
    }
}

/// A logged-in session on the one token a URI selects.
struct Token {
    uri: Pkcs11Uri,
    session: Session,
    label: String,
}

impl Token {
    fn open(text: &str, options: &Pkcs11Options, write: bool) -> Result<Self, KeyError> {
        let uri = Pkcs11Uri::parse(text)?;
        let module_path = options
            .module
            .clone()
            .or_else(|| uri.module_path.clone())
            .ok_or_else(|| KeyError::NoPkcs11Module {
                uri: text.to_owned(),
            })?;
        let module = module(&module_path)?;
        let slot = select_slot(&module, &module_path, &uri, text)?;
        let info = module.get_token_info(slot).map_err(|e| KeyError::Pkcs11 {
            token: String::new(),
            action: "reading the token information",
            reason: ck_reason(&e),
        })?;
        let label = info.label().trim_end().to_owned();
        let failed = |action: &'static str| {
            let token = label.clone();
            move |e: CkError| KeyError::Pkcs11 {
                token,
                action,
                reason: ck_reason(&e),
            }
        };
        let session = if write {
            module.open_rw_session(slot)
        } else {
            module.open_ro_session(slot)
        }
        .map_err(failed("opening a session"))?;
        if info.login_required() {
            let login = if info.protected_authentication_path() {
                session
                    .login(UserType::User, None)
                    .map_err(|e| (e, "the token's PIN pad".to_owned()))
            } else {
                let source = match (&options.pin, &uri.pin_source) {
                    (PinSource::Auto, Some(file)) => PinSource::File(file.clone()),
                    (source, _) => source.clone(),
                };
                let pin = source.obtain(&label)?;
                let raw = RawAuthPin::init_with_mut(|v: &mut Vec<u8>| {
                    v.extend_from_slice(pin.as_bytes());
                });
                session
                    .login_with_raw(UserType::User, &raw)
                    .map_err(|e| (e, pin.source().to_owned()))
            };
            match login {
                // Another session of this process is logged in already.
                Ok(()) | Err((CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _), _)) => {}
                Err((CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _), from)) => {
                    return Err(KeyError::WrongPin { token: label, from })
                }
                Err((CkError::Pkcs11(RvError::PinLocked, _), _)) => {
                    return Err(KeyError::PinLocked { token: label })
                }
                Err((e, _)) => return Err(failed("logging in")(e)),
            }
        }
        Ok(Self {
            uri,
            session,
            label,
        })
    }

    /// The attributes a key of the URI must have: label and id.
    fn selector(&self) -> Vec<Attribute> {
        let mut template = Vec::new();
        if let Some(label) = &self.uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        template
    }

    fn find(
        &self,
        class: ObjectClass,
        selector: &[Attribute],
    ) -> Result<Vec<ObjectHandle>, KeyError> {
        let mut template = vec![Attribute::Class(class)];
        template.extend_from_slice(selector);
        self.session
            .find_objects(&template)
            .map_err(|e| self.failed("searching for keys", &e))
    }

    fn find_private(&self) -> Result<Vec<ObjectHandle>, KeyError> {
        self.find(ObjectClass::PRIVATE_KEY, &self.selector())
    }

    fn failed(&self, action: &'static str, e: &CkError) -> KeyError {
        KeyError::Pkcs11 {
            token: self.label.clone(),
            action,
            reason: ck_reason(e),
        }
    }

    fn generate(&self, uri: &str, label: &str) -> Result<ObjectHandle, KeyError> {
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(ED25519_OID_DER.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if let Some(id) = &self.uri.id {
            public.push(Attribute::Id(id.clone()));
            private.push(Attribute::Id(id.clone()));
        }
        let (public_key, private_key) = self
            .session
            .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public, &private)
            .map_err(|e| self.failed("generating an Ed25519 key pair", &e))?;
        // Two processes creating the same name at once: keep the other's.
        let mut same_name = vec![Attribute::Label(label.as_bytes().to_vec())];
        same_name.extend(self.uri.id.clone().map(Attribute::Id));
        let twins = self.find(ObjectClass::PRIVATE_KEY, &same_name)?;
        if twins.len() > 1 {
            // Best effort: the error below is what the operator must see.
            let _ = self.session.destroy_object(private_key);
            let _ = self.session.destroy_object(public_key);
            return Err(KeyError::Pkcs11 {
                token: self.label.clone(),
                action: "creating the key",
                reason: format!(
                    "another key named {} was created at the same time; run the command again to adopt it",
                    tessera_verifier::text::escaped(uri)
                ),
            });
        }
        if self.uri.id.is_none() {
            // The key id as CKA_ID ties the token objects to the keyring.
            // Some tokens do not let CKA_ID change; the label still names
            // the key then.
            if let Ok(public_bytes) = self.public_key_of(uri, public_key) {
                let id = Attribute::Id(key_id(&public_bytes).to_vec());
                let _ = self
                    .session
                    .update_attributes(public_key, core::slice::from_ref(&id));
                let _ = self.session.update_attributes(private_key, &[id]);
            }
        }
        Ok(private_key)
    }

    /// Checks the private key and finds its public half; the signer.
    fn into_signer(self, uri: &str, key: ObjectHandle) -> Result<Pkcs11Signer, KeyError> {
        let attrs = self
            .session
            .get_attributes(
                key,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Label,
                    AttributeType::Id,
                ],
            )
            .map_err(|e| self.failed("reading the key's attributes", &e))?;
        let mut key_type = None;
        let mut params = None;
        let mut sensitive = None;
        let mut extractable = None;
        let mut label = Vec::new();
        let mut id = Vec::new();
        for attr in attrs {
            match attr {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::Sensitive(s) => sensitive = Some(s),
                Attribute::Extractable(x) => extractable = Some(x),
                Attribute::Label(l) => label = l,
                Attribute::Id(i) => id = i,
                _ => {}
            }
        }
        check_ed25519(uri, key_type, params.as_deref())?;
        if sensitive != Some(true) {
            return Err(KeyError::Pkcs11KeyExportable {
                uri: uri.to_owned(),
                why: "CKA_SENSITIVE is not true",
            });
        }
        if extractable != Some(false) {
            return Err(KeyError::Pkcs11KeyExportable {
                uri: uri.to_owned(),
                why: "CKA_EXTRACTABLE is not false",
            });
        }
        // The public key object with the private key's label and id.
        let mut pair = Vec::new();
        if !label.is_empty() {
            pair.push(Attribute::Label(label.clone()));
        }
        if !id.is_empty() {
            pair.push(Attribute::Id(id.clone()));
        }
        if pair.is_empty() {
            return Err(KeyError::Pkcs11NoPublicKey {
                uri: uri.to_owned(),
            });
        }
        pair.push(Attribute::KeyType(KeyType::EC_EDWARDS));
        let public = match self.find(ObjectClass::PUBLIC_KEY, &pair)?.as_slice() {
            [] => {
                return Err(KeyError::Pkcs11NoPublicKey {
                    uri: uri.to_owned(),
                })
            }
            [one] => *one,
            more => {
                return Err(KeyError::Pkcs11KeyAmbiguous {
                    uri: uri.to_owned(),
                    what: "public keys",
                    count: more.len(),
                })
            }
        };
        let public_key = self.public_key_of(uri, public)?;
        let verifying = VerifyingKey::from_bytes(&public_key)
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or_else(|| KeyError::Pkcs11 {
                token: self.label.clone(),
                action: "reading the public key",
                reason: "not a valid Ed25519 public key".into(),
            })?;
        let key_uri = Pkcs11Uri::key_uri(
            &self.label,
            &String::from_utf8_lossy(&label),
            // CKA_ID as written just now by `generate`, if it took.
            &self.id_of(key).unwrap_or(id),
        );
        Ok(Pkcs11Signer {
            session: Mutex::new(self.session),
            key,
            kid: key_id(&public_key),
            verifying,
            token: self.label,
            key_uri,
        })
    }

    fn id_of(&self, key: ObjectHandle) -> Option<Vec<u8>> {
        self.session
            .get_attributes(key, &[AttributeType::Id])
            .ok()?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(id) => Some(id),
                _ => None,
            })
    }

    /// The raw 32-byte key of a public key object's `CKA_EC_POINT`: the DER
    /// OCTET STRING PKCS#11 specifies, or the raw bytes some tokens give.
    fn public_key_of(&self, uri: &str, public: ObjectHandle) -> Result<[u8; 32], KeyError> {
        let attrs = self
            .session
            .get_attributes(
                public,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(|e| self.failed("reading the public key", &e))?;
        let mut key_type = None;
        let mut params = None;
        let mut point = None;
        for attr in attrs {
            match attr {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                _ => {}
            }
        }
        check_ed25519(uri, key_type, params.as_deref())?;
        let point = point.unwrap_or_default();
        let raw = match point.as_slice() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
            raw if raw.len() == 32 => raw,
            other => {
                return Err(KeyError::Pkcs11 {
                    token: self.label.clone(),
                    action: "reading the public key",
                    reason: format!("CKA_EC_POINT of {} bytes is no Ed25519 key", other.len()),
                })
            }
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(raw);
        Ok(out)
    }
}

fn check_ed25519(
    uri: &str,
    key_type: Option<KeyType>,
    params: Option<&[u8]>,
) -> Result<(), KeyError> {
    let found = |found: String| {
        Err(KeyError::Pkcs11KeyNotEd25519 {
            uri: uri.to_owned(),
            found,
        })
    };
    match key_type {
        Some(t) if t == KeyType::EC_EDWARDS => {}
        Some(t) => return found(format!("a {t} key")),
        None => return found("a key of unknown type".into()),
    }
    match params {
        Some(p) if p == ED25519_OID_DER || p == ED25519_NAME_DER => Ok(()),
        Some(p) if p == ED448_OID_DER || p == ED448_NAME_DER => found("an Ed448 key".into()),
        _ => found("an Edwards-curve key on an unknown curve".into()),
    }
}

/// The module's loaded and initialized library, one per path and process:
/// PKCS#11 libraries are initialized once per process, and finalizing one
/// while another signer uses it would break that signer.
fn module(path: &Path) -> Result<Pkcs11, KeyError> {
    static MODULES: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let modules = MODULES.get_or_init(Mutex::default);
    let mut modules = modules.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, m)) = modules.iter().find(|(p, _)| p == path) {
        return Ok(m.clone());
    }
    let failed = |reason: String| KeyError::Pkcs11Module {
        module: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(failed("no such file".into()));
    }
    let m = Pkcs11::new(path).map_err(|e| failed(ck_reason(&e)))?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(format!("initializing it: {}", ck_reason(&e)))),
    }
    modules.push((path.to_owned(), m.clone()));
    Ok(m)
}

/// The one slot whose token the URI selects.
fn select_slot(
    module: &Pkcs11,
    module_path: &Path,
    uri: &Pkcs11Uri,
    text: &str,
) -> Result<Slot, KeyError> {
    let failed = |e: CkError| KeyError::Pkcs11Module {
        module: module_path.to_owned(),
        reason: ck_reason(&e),
    };
    let library = module.get_library_info().map_err(failed)?;
    let library_matches = matches(
        uri.library_manufacturer.as_deref(),
        library.manufacturer_id(),
    ) && matches(
        uri.library_description.as_deref(),
        library.library_description(),
    ) && uri.library_version.is_none_or(|(major, minor)| {
        let v = library.library_version();
        (v.major(), v.minor()) == (major, minor)
    });
    let mut seen = Vec::new();
    let mut chosen = Vec::new();
    for slot in module.get_slots_with_token().map_err(failed)? {
        let (Ok(slot_info), Ok(token)) = (module.get_slot_info(slot), module.get_token_info(slot))
        else {
            continue;
        };
        seen.push(format!(
            "'{}' (serial {}, slot {})",
            token.label().trim_end(),
            token.serial_number().trim_end(),
            slot.id()
        ));
        let selected = library_matches
            && uri.slot_id.is_none_or(|id| id == slot.id())
            && matches(
                uri.slot_description.as_deref(),
                slot_info.slot_description(),
            )
            && matches(
                uri.slot_manufacturer.as_deref(),
                slot_info.manufacturer_id(),
            )
            && matches(uri.token.as_deref(), token.label())
            && matches(uri.manufacturer.as_deref(), token.manufacturer_id())
            && matches(uri.model.as_deref(), token.model())
            && matches(uri.serial.as_deref(), token.serial_number());
        if selected && token.token_initialized() {
            chosen.push(slot);
        }
    }
    match chosen.as_slice() {
        [one] => Ok(*one),
        [] => Err(KeyError::NoPkcs11Token {
            uri: text.to_owned(),
            tokens: if seen.is_empty() {
                "no initialized token".into()
            } else {
                format!("the tokens {}", seen.join(", "))
            },
        }),
        more => Err(KeyError::SeveralPkcs11Tokens {
            uri: text.to_owned(),
            count: more.len(),
        }),
    }
}

/// Token strings are blank-padded fixed fields: compare without the
/// padding.
fn matches(wanted: Option<&str>, actual: &str) -> bool {
    wanted.is_none_or(|w| w.trim_end() == actual.trim_end())
}

fn ck_reason(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function:?}: {rv:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
