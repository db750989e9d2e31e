//! One-time activation codes: what a site types into its agent so that the
//! online service activates *its* PBX, not whoever first names the serial.
//!
//! A code is 20 symbols of Crockford's base32 (100 random bits), shown in
//! four groups of five: `7K3QD-9XW2M-TR4FZ-B8N6P`. [`ActivationCode::parse`]
//! is the one reader of a code for every crate (the vendor CLI, the
//! service, the agent): any case, spaces and dashes anywhere, `I`/`L` read
//! as `1` and `O` as `0` (Crockford's rule for symbols misread from paper),
//! at most [`MAX_TEXT`] bytes. The ledger keeps only
//! [`ActivationCode::digest`]; the code itself leaves the vendor once, in
//! the lines `tessera pbx activation` prints, and travels to the service in
//! the [`HEADER`] of `POST /v1/activate` over the pinned TLS connection.
//!
//! Nothing here allocates or panics, so firmware may read codes too.
//!
//! ```
//! use tessera_verifier::activation::ActivationCode;
//!
//! let code = ActivationCode::from_random(&[0x5a; 13]);
//! let again = ActivationCode::parse(&code.to_string().to_lowercase().replace('-', " ")).unwrap();
//! assert_eq!(code, again);
//! assert!(ActivationCode::parse("not a code").is_err());
//! ```

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// The HTTP request header that carries a code to `POST /v1/activate`.
pub const HEADER: &str = "Tessera-Activation-Code";

/// Symbols in a code (5 bits each: 100 bits).
pub const SYMBOLS: usize = 20;

/// The longest text [`ActivationCode::parse`] reads (a grouped code is 23
/// bytes; room for spaces, no room for a payload).
pub const MAX_TEXT: usize = 64;

/// Random bytes [`ActivationCode::from_random`] takes (104 bits, of which
/// the code keeps 100).
pub const RANDOM_BYTES: usize = 13;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Domain tag of [`ActivationCode::digest`].
const DIGEST_TAG: &[u8] = b"tessera-activation-code-v1\0";

/// Why a text is no activation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeFault {
    /// Over [`MAX_TEXT`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character that is no base32 symbol, space or dash, at byte
    /// offset `index` (the character itself is not repeated: it may be a
    /// secret or a terminal escape).
    BadCharacter {
        /// Byte offset.
        index: usize,
    },
    /// Not [`SYMBOLS`] symbols.
    WrongLength {
        /// How many symbols it has (at most [`SYMBOLS`] + 1: counting
        /// stops there).
        symbols: usize,
    },
}

impl fmt::Display for CodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "the activation code is {len} bytes long; a code is 20 letters and digits in four groups of five"
            ),
            Self::BadCharacter { index } => write!(
                f,
                "the activation code has a character at byte {index} that is not a letter, digit, space or dash of a code (four groups of five letters and digits, without U)"
            ),
            Self::WrongLength { symbols } => write!(
                f,
                "the activation code has {symbols}{} letters and digits; a code has 20, in four groups of five: copy it again from what `tessera pbx activation` printed",
                if *symbols > SYMBOLS { " or more" } else { "" }
            ),
        }
    }
}

impl core::error::Error for CodeFault {}

/// A one-time activation code, normalized (upper case, no separators).
/// Wiped from memory on drop; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationCode {
    symbols: [u8; SYMBOLS],
}

impl ActivationCode {
    /// Reads a code as a person or a file gives it (see the module).
    ///
    /// # Errors
    /// [`CodeFault`] saying what is wrong, never repeating the text.
    pub fn parse(text: &str) -> Result<Self, CodeFault> {
        if text.len() > MAX_TEXT {
            return Err(CodeFault::TooLong { len: text.len() });
        }
        let mut symbols = [0u8; SYMBOLS];
        let mut n = 0usize;
        for (index, b) in text.bytes().enumerate() {
            let symbol = match b.to_ascii_uppercase() {
                b' ' | b'-' => continue,
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c if ALPHABET.contains(&c) => c,
                _ => return Err(CodeFault::BadCharacter { index }),
            };
            let Some(slot) = symbols.get_mut(n) else {
                symbols.zeroize();
                return Err(CodeFault::WrongLength {
                    symbols: SYMBOLS + 1,
                });
            };
            *slot = symbol;
            n += 1;
        }
        if n != SYMBOLS {
            symbols.zeroize();
            return Err(CodeFault::WrongLength { symbols: n });
        }
        Ok(Self { symbols })
    }

    /// The code of 100 random bits: the first 100 bits of `random` (which
    /// the caller takes from the OS RNG).
    #[must_use]
    pub fn from_random(random: &[u8; RANDOM_BYTES]) -> Self {
        let mut symbols = [0u8; SYMBOLS];
        for (i, slot) in symbols.iter_mut().enumerate() {
            // Bits 5i .. 5i+5, big-endian, from two bytes.
            let bit = i * 5;
            let hi = random.get(bit / 8).copied().unwrap_or(0);
            let lo = random.get(bit / 8 + 1).copied().unwrap_or(0);
            let pair = (u16::from(hi) << 8) | u16::from(lo);
            let value = (pair >> (11 - bit % 8)) & 0x1f;
            *slot = ALPHABET.get(usize::from(value)).copied().unwrap_or(b'0');
        }
        Self { symbols }
    }

    /// The digest the ledger keeps instead of the code:
    /// SHA-256(`"tessera-activation-code-v1\0"` ‖ the 20 normalized
    /// symbols).
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DIGEST_TAG);
        h.update(self.symbols);
        h.finalize().into()
    }

    /// The code in four groups of five symbols joined by dashes, such as
    /// `7K3QD-9XW2M-TR4FZ-B8N6P` (also its `Display`).
    #[must_use]
    pub fn grouped(&self) -> [u8; SYMBOLS + 3] {
        let mut out = [b'-'; SYMBOLS + 3];
        for (i, s) in self.symbols.iter().enumerate() {
            if let Some(slot) = out.get_mut(i + i / 5) {
                *slot = *s;
            }
        }
        out
    }

    /// The last four symbols, for messages that must not show the code.
    #[must_use]
    pub fn tail(&self) -> [u8; 4] {
        let mut out = [0u8; 4];
        for (o, s) in out.iter_mut().zip(self.symbols.iter().skip(SYMBOLS - 4)) {
            *o = *s;
        }
        out
    }
}

impl Drop for ActivationCode {
    fn drop(&mut self) {
        self.symbols.zeroize();
    }
}

impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grouped = self.grouped();
        // Only alphabet symbols and dashes: always ASCII.
        f.write_str(core::str::from_utf8(&grouped).unwrap_or("?"))
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationCode(..")?;
        for c in self.tail() {
            write!(f, "{}", char::from(c))?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::string::{String, ToString};

    #[test]
    fn a_code_reads_back_in_any_case_and_grouping() {
        let code = ActivationCode::from_random(&[
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76,
        ]);
        let shown = code.to_string();
        assert_eq!(shown.len(), 23);
        assert_eq!(shown.matches('-').count(), 3);
        for text in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace('-', ""),
            shown.replace('-', " "),
            format!("  {}  ", shown.replace('-', " - ")),
        ] {
            assert_eq!(ActivationCode::parse(&text), Ok(code.clone()), "{text}");
        }
        assert_eq!(
            ActivationCode::parse(&shown).unwrap().digest(),
            code.digest()
        );
    }

    #[test]
    fn the_bits_are_the_random_bytes() {
        // 0x00.. gives all zeros; 0xff.. all Z; 0b00001_00010_... counts.
        assert_eq!(
            ActivationCode::from_random(&[0; 13]).to_string(),
            "00000-00000-00000-00000"
        );
        assert_eq!(
            ActivationCode::from_random(&[0xff; 13]).to_string(),
            "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ"
        );
        // 00001 00010 00011 00100 00101 00110 00111 01000 ...
        let bytes = [
            0b0000_1000,
            0b1000_0110,
            0b0100_0010,
            0b1001_1000,
            0b1110_1000,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        assert!(ActivationCode::from_random(&bytes)
            .to_string()
            .starts_with("12345-678"));
    }

    #[test]
    fn crockford_aliases_read_as_their_digits() {
        let a = ActivationCode::parse("OOOOO-IIIII-LLLLL-00000").unwrap();
        let b = ActivationCode::parse("00000-11111-11111-00000").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn what_is_no_code_is_refused_without_repeating_it() {
        assert_eq!(
            ActivationCode::parse("ABCDE-FGHJK-MNPQR-STVW"),
            Err(CodeFault::WrongLength { symbols: 19 })
        );
        assert_eq!(
            ActivationCode::parse("ABCDE-FGHJK-MNPQR-STVWX-Y"),
            Err(CodeFault::WrongLength { symbols: 21 })
        );
        assert_eq!(
            ActivationCode::parse(""),
            Err(CodeFault::WrongLength { symbols: 0 })
        );
        assert_eq!(
            ActivationCode::parse("ABCDE-FGHJK-MNPQR-STVWU"),
            Err(CodeFault::BadCharacter { index: 22 })
        );
        assert_eq!(
            ActivationCode::parse("ABCDE\u{1b}[2J"),
            Err(CodeFault::BadCharacter { index: 5 })
        );
        assert_eq!(
            ActivationCode::parse("ABCDÉ"),
            Err(CodeFault::BadCharacter { index: 4 })
        );
        let long = "A".repeat(MAX_TEXT + 1);
        assert_eq!(
            ActivationCode::parse(&long),
            Err(CodeFault::TooLong { len: MAX_TEXT + 1 })
        );
        let e = ActivationCode::parse("ABCDE\u{1b}").unwrap_err();
        let mut shown = String::new();
        core::fmt::write(&mut shown, format_args!("{e}")).unwrap();
        assert!(!shown.contains('\u{1b}'));
    }

    #[test]
    fn debug_shows_only_the_tail() {
        let code = ActivationCode::parse("ABCDE-FGHJK-MNPQR-STVWX").unwrap();
        assert_eq!(format!("{code:?}"), "ActivationCode(..TVWX)");
    }
}
