//! Every way handling a key, a passphrase or a keyring can fail.
//!
//! Each message says what was wrong, then after a `;` what to do about it,
//! so the CLI can print it as is.

use std::io;
use std::path::PathBuf;

use tessera_verifier::text::shown;
use tessera_verifier::KeyId;

/// What a file named on the command line was to be, for the message when
/// it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A key file (private or public).
    Key,
    /// A keyring.
    Keyring,
    /// A file holding a passphrase on its first line.
    PassphraseFile,
    /// A file holding a token's PIN on its first line.
    PinFile,
    /// Any other file.
    Other,
}

impl FileKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Key => "key file",
            Self::Keyring => "keyring file",
            Self::PassphraseFile => "passphrase file",
            Self::PinFile => "PIN file",
            Self::Other => "file",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Key => " (a signing key is created with `tessera keygen`)",
            Self::Keyring => " (`tessera keygen --keyring FILE` or `tessera keyring add --keyring FILE` creates one)",
            Self::PassphraseFile => " (or give the passphrase in TESSERA_PASSPHRASE, or at the prompt)",
            Self::PinFile => " (or give the PIN in TESSERA_PKCS11_PIN, or at the prompt)",
            Self::Other => "",
        }
    }
}

/// Why a key, passphrase or keyring operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file does not exist.
    #[error("{}: no such {}; check the path{}", file.display(), what.noun(), what.hint())]
    NotFound {
        /// The missing file.
        file: PathBuf,
        /// What it was to be.
        what: FileKind,
    },

    /// The file is not a PEM file at all (binary data, another kind of
    /// text): not a damaged key, the wrong file.
    #[error("{}: not a key file ({reason}); name the PEM file `tessera keygen` wrote (the private key, or FILE.pub for its public key)", file.display())]
    NotPem {
        /// The file.
        file: PathBuf,
        /// What it holds instead.
        reason: String,
    },

    /// The file to create exists already; key files are never overwritten.
    #[error("{}: already exists, and tessera never overwrites key files; choose another path or move the existing file away first", file.display())]
    AlreadyExists {
        /// The existing file.
        file: PathBuf,
    },

    /// Reading, writing or syncing a file failed.
    #[error("{}: could not {action}: {source}; check the path, its permissions and the free disk space", file.display())]
    Io {
        /// The file or folder concerned.
        file: PathBuf,
        /// What was being done ("read", "create", ...).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The passphrase does not decrypt the private key.
    #[error("{}: wrong passphrase: the one from {from} does not decrypt this key (or the encrypted key is damaged); check it and try again", file.display())]
    WrongPassphrase {
        /// The key file.
        file: PathBuf,
        /// Where the passphrase came from ("the prompt", "the environment
        /// variable TESSERA_PASSPHRASE", "the file pass.txt").
        from: String,
    },

    /// The file is not a well-formed key file: damaged, truncated or not a
    /// key at all.
    #[error("{}: not a valid key file ({reason}); it is damaged or truncated: restore it from your backup", file.display())]
    Corrupt {
        /// The key file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The file is a PEM file, but of another kind (a certificate, an
    /// OpenSSH key ...).
    #[error("{}: this is a '{}' PEM file, not a tessera key file; pass the file written by `tessera keygen` or `tessera key public`", file.display(), shown(found))]
    NotAKeyFile {
        /// The file.
        file: PathBuf,
        /// The PEM label found.
        found: String,
    },

    /// A public key was given where a private key is needed.
    #[error("{}: this is a public key, but signing needs the private key; pass the private key file written by `tessera keygen`", file.display())]
    PublicKeyGiven {
        /// The key file.
        file: PathBuf,
    },

    /// A private key was given where a public key is expected.
    #[error("{}: this is a private key, but a public key is expected here; pass the public key file (`tessera key public` writes it) and keep the private key to yourself", file.display())]
    PrivateKeyGiven {
        /// The key file.
        file: PathBuf,
    },

    /// The key is not an Ed25519 key (RSA, EC, ...).
    #[error("{}: this is {algorithm} key, but tessera signs only with Ed25519; create an Ed25519 key with `tessera keygen`", file.display())]
    UnsupportedAlgorithm {
        /// The key file.
        file: PathBuf,
        /// The algorithm found, with its article ("an RSA", "an EC (P-256)", ...).
        algorithm: String,
    },

    /// A private key stored without encryption, where an encrypted one is
    /// required.
    #[error("{}: the private key is not encrypted, and tessera refuses plaintext signing keys; encrypt it (`openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000 -in PLAIN -out ENCRYPTED`) and securely delete the plaintext file", file.display())]
    Unencrypted {
        /// The key file.
        file: PathBuf,
    },

    /// The private key is encrypted with a scheme tessera does not support.
    #[error("{}: the key is encrypted with {scheme}, which tessera does not support; re-encrypt it with PBES2 and AES-256-CBC (`openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000`)", file.display())]
    UnsupportedEncryption {
        /// The key file.
        file: PathBuf,
        /// The scheme found.
        scheme: String,
    },

    /// No passphrase source is available in a non-interactive run.
    #[error("no passphrase available; set TESSERA_PASSPHRASE, pass --passphrase-file FILE, or run in a terminal to be prompted")]
    NoPassphrase,

    /// The passphrase is empty.
    #[error("the passphrase from {from} is empty; provide a non-empty passphrase")]
    EmptyPassphrase {
        /// Where it came from (environment variable, file, prompt).
        from: String,
    },

    /// The passphrase file is not usable (too large, not UTF-8 ...).
    #[error("{}: not a usable passphrase file ({reason}); put the passphrase alone on the first line", file.display())]
    BadPassphraseFile {
        /// The passphrase file.
        file: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A new key's passphrase too short to protect it.
    #[error("the passphrase from {from} has {chars} character(s), too few for a signing key; use at least {min} (a phrase of several words is best)")]
    WeakPassphrase {
        /// Where it came from.
        from: String,
        /// Its length in characters.
        chars: usize,
        /// The least accepted.
        min: usize,
    },

    /// The two passphrases typed at the prompt differ.
    #[error("the two passphrases typed do not match; run the command again and type the same passphrase twice")]
    PassphraseMismatch,

    /// Reading from the terminal failed.
    #[error("could not read the passphrase from the terminal: {0}; set TESSERA_PASSPHRASE or pass --passphrase-file FILE instead")]
    Prompt(#[source] io::Error),

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}; retry, and check the system's entropy source")]
    Rng(#[source] rand_core::Error),

    /// A signing backend failed (a hardware module, ...).
    #[error("signing failed: {0}; check the signing device and retry")]
    Signing(String),

    /// No PIN source is available in a non-interactive run.
    #[error("no PIN for the PKCS#11 token; set TESSERA_PKCS11_PIN, pass --pin-file FILE, or run in a terminal to be prompted")]
    NoPin,

    /// The PIN is empty.
    #[error("the PIN from {from} is empty; provide the token's user PIN")]
    EmptyPin {
        /// Where it came from (environment variable, file, prompt).
        from: String,
    },

    /// The PIN file is not usable (too large, several lines).
    #[error("{}: not a usable PIN file ({reason}); put the PIN alone on the first line", file.display())]
    BadPinFile {
        /// The PIN file.
        file: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Reading the PIN from the terminal failed.
    #[error("could not read the PIN from the terminal: {0}; set TESSERA_PKCS11_PIN or pass --pin-file FILE instead")]
    PinPrompt(#[source] io::Error),

    /// The token refused the PIN.
    #[error("PKCS#11 token '{}': the PIN from {from} is incorrect; check it and retry (a token locks its PIN after a few wrong tries)", shown(token))]
    WrongPin {
        /// The token's label.
        token: String,
        /// Where the PIN came from.
        from: String,
    },

    /// The token's user PIN is locked.
    #[error("PKCS#11 token '{}': the user PIN is locked after too many wrong tries; have the token's security officer unlock or reset it", shown(token))]
    PinLocked {
        /// The token's label.
        token: String,
    },

    /// No PKCS#11 module was named.
    #[error("no PKCS#11 module to reach {}; pass --pkcs11-module FILE or set TESSERA_PKCS11_MODULE to the token's library (SoftHSM2 on Debian: /usr/lib/softhsm/libsofthsm2.so)", shown(uri))]
    NoPkcs11Module {
        /// The key's URI.
        uri: String,
    },

    /// The PKCS#11 module cannot be loaded or initialized.
    #[error("{}: cannot use this PKCS#11 module ({reason}); check the library path given by --pkcs11-module, TESSERA_PKCS11_MODULE or the URI's module-path", module.display())]
    Pkcs11Module {
        /// The module's path.
        module: PathBuf,
        /// What failed.
        reason: String,
    },

    /// A PKCS#11 URI that cannot be used.
    #[error("'{}' is not a usable PKCS#11 URI: {reason}; write it as in RFC 7512, e.g. pkcs11:token=Signing;object=tessera-2026", shown(uri))]
    Pkcs11Uri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The URI matches no token of the module.
    #[error("no token of the PKCS#11 module matches {}; the module has {}; name one with token=LABEL (or serial=, slot-id=)", shown(uri), shown(tokens))]
    NoPkcs11Token {
        /// The URI.
        uri: String,
        /// The tokens present, for the message ("no token" when none).
        tokens: String,
    },

    /// The URI matches several tokens.
    #[error(
        "{count} tokens match {}; add token=, serial= or slot-id= to the URI to name one",
        shown(uri)
    )]
    SeveralPkcs11Tokens {
        /// The URI.
        uri: String,
        /// How many tokens match.
        count: usize,
    },

    /// No private key in the token matches the URI.
    #[error("no private key in the token matches {}; check object= and id= (`pkcs11-tool --list-objects --login` lists them), or create the key with `tessera keygen --pkcs11 URI`", shown(uri))]
    Pkcs11KeyNotFound {
        /// The URI.
        uri: String,
    },

    /// Several keys match the URI.
    #[error("{count} {what} in the token match {}; add id= or a more precise object= to the URI to select one", shown(uri))]
    Pkcs11KeyAmbiguous {
        /// The URI.
        uri: String,
        /// "private keys" or "public keys".
        what: &'static str,
        /// How many match.
        count: usize,
    },

    /// The key is not an Ed25519 key.
    #[error("the key {} is {found}, but tessera signs only with Ed25519; create an Ed25519 key in the token with `tessera keygen --pkcs11 URI`", shown(uri))]
    Pkcs11KeyNotEd25519 {
        /// The URI.
        uri: String,
        /// What was found ("an RSA key", "an Ed448 key", ...).
        found: String,
    },

    /// The private key could leave the token.
    #[error("the private key {} can be exported from the token ({why}), and tessera signs only with keys that never leave it; create a new key with `tessera keygen --pkcs11 URI` and rotate to it", shown(uri))]
    Pkcs11KeyExportable {
        /// The URI.
        uri: String,
        /// Which attribute allows it.
        why: &'static str,
    },

    /// The private key has no public key object beside it.
    #[error("the token holds no public key for {} (a public key object with the private key's label and id); import the public key into the token, or create a new key pair with `tessera keygen --pkcs11 URI`", shown(uri))]
    Pkcs11NoPublicKey {
        /// The URI.
        uri: String,
    },

    /// A public key with the new key's name exists without its private key.
    #[error("the token already holds a public key named by {} but no private key; choose another object= name for the new key, or delete the leftover object", shown(uri))]
    Pkcs11Leftover {
        /// The URI.
        uri: String,
    },

    /// A token operation failed.
    #[error("PKCS#11 token '{}': {action} failed ({reason}); check that the token is present and working, then retry", shown(token))]
    Pkcs11 {
        /// The token's label.
        token: String,
        /// What was being done.
        action: &'static str,
        /// The module's answer.
        reason: String,
    },

    /// The keyring file is not valid TOML or misses / mistypes a field.
    #[error("{}: invalid keyring: {reason}; fix the file (see keys/README.md for its fields) or restore it from version control", file.display())]
    KeyringSyntax {
        /// The keyring file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A text that should be a key id (16 hex digits) is not one. The
    /// message quotes at most the first 80 characters of it, escaped.
    #[error(
        "'{}' is not a key id; a key id is 16 hex digits, as shown by `tessera keyring list`",
        shown(input)
    )]
    BadKid {
        /// The text given.
        input: String,
    },

    /// A keyring entry's kid does not match its public key.
    #[error("keyring entry {}: the kid does not match the public key (whose kid is {}); correct the kid or re-add the key from its public key file", hex::encode(kid), hex::encode(expected))]
    KidMismatch {
        /// The kid recorded.
        kid: KeyId,
        /// The kid derived from the public key.
        expected: KeyId,
    },

    /// Two keyring entries have the same kid.
    #[error("key {} is already in the keyring; each key appears once (list them with `tessera keyring list`)", hex::encode(kid))]
    DuplicateKid {
        /// The repeated kid.
        kid: KeyId,
    },

    /// A key added to a keyring that already holds it.
    #[error("key {} is already in the keyring (valid from {valid_from}); each key appears once: no command changes a key's entry, so to change its validity window edit its `valid_from` or `valid_until` in the keyring file (TOML; `tessera keyring list` reads it back and checks it), then export the keyring to firmware again", hex::encode(kid))]
    AlreadyInKeyring {
        /// The key.
        kid: KeyId,
        /// Start of the window of the entry already there (RFC 3339).
        valid_from: String,
    },

    /// No keyring entry has this kid.
    #[error(
        "key {} is not in the keyring; check the kid with `tessera keyring list`",
        hex::encode(kid)
    )]
    UnknownKid {
        /// The kid asked for.
        kid: KeyId,
    },

    /// A public key is not a usable Ed25519 key (not a curve point, or of
    /// small order).
    #[error("key {}: the public key is not a valid Ed25519 key (invalid or small-order point); re-add it from the public key file written by `tessera key public`", hex::encode(kid))]
    WeakPublicKey {
        /// The kid of the key.
        kid: KeyId,
    },

    /// A validity window ends before it starts.
    #[error("key {}: valid_until ({valid_until}) is before valid_from ({valid_from}); correct the dates", hex::encode(kid))]
    InvalidWindow {
        /// The kid of the key.
        kid: KeyId,
        /// Start of the window (RFC 3339).
        valid_from: String,
        /// End of the window (RFC 3339).
        valid_until: String,
    },

    /// A retired key cannot become the active signing key.
    #[error("key {} is retired and cannot sign again; make another key active (`tessera keyring add` a new key first if needed)", hex::encode(kid))]
    ActivateRetired {
        /// The kid of the retired key.
        kid: KeyId,
    },

    /// The active signing key cannot be retired.
    #[error("key {} is the active signing key and cannot be retired; switch issuing to its successor first (set it active), re-issue, then retire this key", hex::encode(kid))]
    RetireActive {
        /// The kid of the active key.
        kid: KeyId,
    },

    /// The keyring names no active signing key.
    #[error("the keyring names no active signing key; make one active (set_active / `tessera keyring activate KID`)")]
    NoActiveKey,

    /// The signer is not the keyring's active signing key.
    #[error("the signing key {} is not the active signing key {}; sign with the active key, or switch the keyring to this key first", hex::encode(kid), hex::encode(active))]
    NotActiveSigner {
        /// The signer's kid.
        kid: KeyId,
        /// The active key's kid.
        active: KeyId,
    },

    /// The active signing key's validity window does not cover the time of
    /// signing.
    #[error("the active signing key {} is not valid at {at}: firmware would refuse what it signs; check the clock, or switch to a key whose window covers this time", hex::encode(kid))]
    KeyNotValidAt {
        /// The active key's kid.
        kid: KeyId,
        /// The time of signing (RFC 3339).
        at: String,
    },

    /// Activating now a key whose window starts later would halt issuing.
    #[error("key {} becomes valid at {valid_from}: made active now, nothing could sign until then; schedule the switch with `tessera keyring activate {} --at {valid_from}` (it then happens by itself)", hex::encode(kid), hex::encode(kid))]
    KeyNotYetValid {
        /// The key.
        kid: KeyId,
        /// Start of its window (RFC 3339).
        valid_from: String,
    },

    /// A switch scheduled at a time that has passed.
    #[error("the switch to key {} at {at} is not in the future; activate it now instead (`tessera keyring activate {}`)", hex::encode(kid), hex::encode(kid))]
    ScheduleInPast {
        /// The key.
        kid: KeyId,
        /// The time asked for (RFC 3339).
        at: String,
    },

    /// A scheduled switch after the end of the window of the key active
    /// until then: nothing could sign in between.
    #[error("the key active until the switch, {}, is valid only until {until}, before the switch to {} at {at}: nothing could sign in between; schedule the switch at or before {until}", hex::encode(active), hex::encode(kid))]
    RotationGap {
        /// The key active until the switch.
        active: KeyId,
        /// End of its window (RFC 3339).
        until: String,
        /// The key switched to.
        kid: KeyId,
        /// The switch (RFC 3339).
        at: String,
    },

    /// A key scheduled to become active cannot be retired.
    #[error("key {} is scheduled to become the active signing key at {at} and cannot be retired; schedule another key at that time first (`tessera keyring activate KID --at {at}`)", hex::encode(kid))]
    RetireScheduled {
        /// The key.
        kid: KeyId,
        /// The scheduled switch (RFC 3339).
        at: String,
    },

    /// An export was asked of a keyring without keys.
    #[error("the keyring has no keys, and firmware with an empty keyring accepts nothing; add a key first")]
    EmptyKeyring,

    /// Encoding a document failed; this is a bug.
    #[error("internal error while encoding {what}: {reason}; please report this bug")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message must say what to do, not only what went wrong.
    #[test]
    fn messages_are_actionable() {
        let file = PathBuf::from("/keys/k.pem");
        let kid = [0xab; 8];
        let errors = [
            KeyError::NotFound {
                file: file.clone(),
                what: FileKind::Keyring,
            },
            KeyError::NotPem {
                file: file.clone(),
                reason: "binary data".into(),
            },
            KeyError::AlreadyExists { file: file.clone() },
            KeyError::WrongPassphrase {
                file: file.clone(),
                from: "the prompt".into(),
            },
            KeyError::Corrupt {
                file: file.clone(),
                reason: "truncated".into(),
            },
            KeyError::PublicKeyGiven { file: file.clone() },
            KeyError::PrivateKeyGiven { file: file.clone() },
            KeyError::UnsupportedAlgorithm {
                file: file.clone(),
                algorithm: "an RSA".into(),
            },
            KeyError::Unencrypted { file: file.clone() },
            KeyError::NoPassphrase,
            KeyError::WeakPassphrase {
                from: "the prompt".into(),
                chars: 1,
                min: 8,
            },
            KeyError::PassphraseMismatch,
            KeyError::KidMismatch {
                kid,
                expected: [1; 8],
            },
            KeyError::DuplicateKid { kid },
            KeyError::AlreadyInKeyring {
                kid,
                valid_from: "2026-01-01T00:00:00Z".into(),
            },
            KeyError::RetireActive { kid },
            KeyError::ActivateRetired { kid },
            KeyError::KeyNotYetValid {
                kid,
                valid_from: "2027-01-01T00:00:00Z".into(),
            },
            KeyError::ScheduleInPast {
                kid,
                at: "2027-01-01T00:00:00Z".into(),
            },
            KeyError::RotationGap {
                active: [1; 8],
                until: "2026-12-31T00:00:00Z".into(),
                kid,
                at: "2027-01-01T00:00:00Z".into(),
            },
            KeyError::RetireScheduled {
                kid,
                at: "2027-01-01T00:00:00Z".into(),
            },
            KeyError::EmptyKeyring,
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.contains(';'), "no advice in {msg:?}");
            if let KeyError::NoPassphrase = e {
                assert!(msg.contains("TESSERA_PASSPHRASE"));
            }
        }
        let msg = KeyError::AlreadyExists { file }.to_string();
        assert!(msg.starts_with("/keys/k.pem: "), "{msg}");
        assert!(KeyError::DuplicateKid { kid }
            .to_string()
            .contains("abababababababab"));
    }
}
