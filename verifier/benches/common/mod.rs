//! The fixture both benches measure: the typical license of
//! `spec/vectors/typical.lic` (495 bytes of CBOR, armored), verified by the
//! sample appliance at its first activation, and the same bytes for the
//! bare Ed25519 primitive.

// Shared by two bench binaries; each uses part of it.
#![allow(dead_code)]

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use tessera_verifier::samples::{self, DAY, T0, TEST_KEY_1_PUBLIC, TEST_KEY_1_SEED};
use tessera_verifier::{
    armor, cose, DeviceIdentity, KeyEntry, PreparedKey, State, TrustedKey, MAX_OBJECT_LEN,
};

/// The armored typical license.
pub const TYPICAL_LIC: &str = include_str!("../../../spec/vectors/typical.lic");

/// One hour after the samples' issue time: the license is valid.
pub const NOW: i64 = T0 + 3_600;

/// Inputs of a full verify and of the bare primitive on the same bytes.
pub struct Fixture {
    pub armored: &'static str,
    pub cbor: Vec<u8>,
    pub keyring: [KeyEntry; 1],
    /// The same keyring, prepared once (keys decompressed).
    pub prepared: [PreparedKey; 1],
    pub identity: DeviceIdentity,
    pub state: State,
    /// The COSE Sig_structure `["Signature1", protected, h'', payload]`:
    /// exactly the bytes the signature covers.
    pub sig_structure: Vec<u8>,
    pub signature: Signature,
    pub public_key: [u8; 32],
    pub verifying_key: VerifyingKey,
    pub signing_key: SigningKey,
}

/// A CBOR byte string head (lengths below 65536, as in any license).
fn bstr_head(len: usize, out: &mut Vec<u8>) {
    let [.., hi, lo] = len.to_be_bytes();
    match len {
        0..=23 => out.push(0x40 | lo),
        24..=255 => out.extend_from_slice(&[0x58, lo]),
        _ => out.extend_from_slice(&[0x59, hi, lo]),
    }
}

/// Stops the bench with a message: the fixture is broken.
fn broken(what: &str) -> ! {
    eprintln!("bench fixture: {what}");
    std::process::exit(1)
}

impl Fixture {
    pub fn new() -> Self {
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let cbor = armor::decode(TYPICAL_LIC, armor::LABEL_LICENSE, &mut buf)
            .unwrap_or_else(|_| broken("typical.lic does not decode"))
            .to_vec();
        let sign1 = cose::parse(&cbor).unwrap_or_else(|_| broken("not a COSE_Sign1"));
        let mut sig_structure = vec![0x84, 0x6a];
        sig_structure.extend_from_slice(b"Signature1");
        bstr_head(sign1.protected.len(), &mut sig_structure);
        sig_structure.extend_from_slice(sign1.protected);
        bstr_head(0, &mut sig_structure);
        bstr_head(sign1.payload.len(), &mut sig_structure);
        sig_structure.extend_from_slice(sign1.payload);
        let signature = Signature::from_bytes(&sign1.signature);
        let verifying_key =
            VerifyingKey::from_bytes(&TEST_KEY_1_PUBLIC).unwrap_or_else(|_| broken("test key 1"));
        if verifying_key
            .verify_strict(&sig_structure, &signature)
            .is_err()
        {
            broken("the signature does not cover the Sig_structure built here");
        }
        let keyring = [KeyEntry::new(TEST_KEY_1_PUBLIC, T0 - 365 * DAY)];
        Self {
            armored: TYPICAL_LIC,
            cbor,
            keyring,
            prepared: keyring.map(PreparedKey::new),
            identity: samples::sample_identity(),
            state: State::new(),
            sig_structure,
            signature,
            public_key: TEST_KEY_1_PUBLIC,
            verifying_key,
            signing_key: SigningKey::from_bytes(&TEST_KEY_1_SEED),
        }
    }

    /// The full verify firmware runs: armor decode, CBOR/COSE decode,
    /// signature, serial and binding, clock, state and time verdict.
    /// The keyring holds raw keys, decompressed at each verify.
    pub fn full_verify(&self) -> bool {
        self.verify_with(&self.keyring)
    }

    /// The same with a keyring prepared once (`PreparedKey`).
    pub fn full_verify_prepared(&self) -> bool {
        self.verify_with(&self.prepared)
    }

    fn verify_with<K: TrustedKey>(&self, keyring: &[K]) -> bool {
        let mut buf = [0u8; MAX_OBJECT_LEN];
        let Ok(bytes) = armor::decode(self.armored, armor::LABEL_LICENSE, &mut buf) else {
            return false;
        };
        let mut state = self.state;
        tessera_verifier::verify(bytes, keyring, &self.identity, NOW, &mut state)
            .is_ok_and(|d| d.full_service())
    }

    /// Bare `verify_strict` with a key already decompressed.
    pub fn bare_verify_strict(&self) -> bool {
        self.verifying_key
            .verify_strict(&self.sig_structure, &self.signature)
            .is_ok()
    }

    /// Bare `verify_strict` from the raw 32-byte key, as the verifier gets
    /// it from its keyring (includes the key decompression).
    pub fn bare_from_bytes_verify_strict(&self) -> bool {
        VerifyingKey::from_bytes(&self.public_key)
            .and_then(|k| k.verify_strict(&self.sig_structure, &self.signature))
            .is_ok()
    }
}
