//! Text that enters a license, a file name or a terminal.
//!
//! Every text field a license or request carries (serials, customer, PBX
//! name, model, device labels) is written by someone who may be hostile: a
//! request is signed by the device that sends it, so anyone can write one.
//! A control character (ESC, NUL, BEL, CR), a bidirectional override
//! (U+202E) or an invisible format character in such a field can rewrite a
//! terminal line, spoof a log entry or make two different serials look the
//! same. [`check`] is the one rule for refusing such text before it is
//! signed or stored; [`escaped`] is the one way to show text that came from
//! a file or a request without letting it act on the terminal.
//!
//! Both work without allocation, so firmware can use them too.
//!
//! ```
//! use tessera_verifier::text::{check, escaped, TextFault};
//!
//! assert_eq!(check("SW-2026-000042"), Ok(()));
//! assert_eq!(
//!     check("ACME\u{202e}gpj.exe"),
//!     Err(TextFault::Format { index: 4, ch: '\u{202e}' })
//! );
//! assert_eq!(escaped("a\u{1b}[2Jb").to_string(), "a\\u{1b}[2Jb");
//! ```

use core::fmt;

/// Why a text field was refused by [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextFault {
    /// A control character (Unicode category Cc: U+0000–U+001F,
    /// U+007F–U+009F) at byte offset `index`.
    Control {
        /// Byte offset of the character in the text.
        index: usize,
        /// The character.
        ch: char,
    },
    /// A format character (category Cf: bidirectional overrides and
    /// isolates, zero-width characters, the byte-order mark, ...) or a line
    /// or paragraph separator (Zl, Zp) at byte offset `index`.
    Format {
        /// Byte offset of the character in the text.
        index: usize,
        /// The character.
        ch: char,
    },
}

impl fmt::Display for TextFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TextFault::Control { index, ch } => write!(
                f,
                "control character U+{:04X} at byte {index}; remove it (text fields hold printable characters only)",
                u32::from(ch)
            ),
            TextFault::Format { index, ch } => write!(
                f,
                "invisible or direction-changing character U+{:04X} at byte {index}; remove it (text fields hold printable characters only)",
                u32::from(ch)
            ),
        }
    }
}

impl core::error::Error for TextFault {}

/// Unicode general category Cf (format characters), as of Unicode 15.1,
/// plus U+2028 (Zl) and U+2029 (Zp): ranges, inclusive and sorted.
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `ch` is a format character or a line/paragraph separator.
#[must_use]
pub fn is_format(ch: char) -> bool {
    let c = u32::from(ch);
    FORMAT_RANGES.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// Whether `ch` may appear in a text field: neither a control character
/// nor a format character (see [`TextFault`]).
#[must_use]
pub fn is_allowed(ch: char) -> bool {
    !ch.is_control() && !is_format(ch)
}

/// Checks that `text` holds only characters a terminal shows as
/// themselves: no control characters and no format characters. Invalid
/// UTF-8 cannot reach here (`&str`); decoders refuse it earlier.
///
/// # Errors
/// The first offending character, with its byte offset.
pub fn check(text: &str) -> Result<(), TextFault> {
    for (index, ch) in text.char_indices() {
        if ch.is_control() {
            return Err(TextFault::Control { index, ch });
        }
        if is_format(ch) {
            return Err(TextFault::Format { index, ch });
        }
    }
    Ok(())
}

/// Text shown with every character [`check`] would refuse written as
/// `\u{..}`; see [`escaped`].
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

/// Wraps `text` for display: printable characters as they are, every
/// control or format character as `\u{hex}`, so text from a file or a
/// request can never move the cursor, clear the screen, ring the bell or
/// reverse the line it is printed on.
#[must_use]
pub fn escaped(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((index, ch)) = rest.char_indices().find(|&(_, ch)| !is_allowed(ch)) {
            let Some((clean, tail)) = rest.split_at_checked(index) else {
                break;
            };
            f.write_str(clean)?;
            write!(f, "\\u{{{:x}}}", u32::from(ch))?;
            rest = tail.get(ch.len_utf8()..).unwrap_or("");
        }
        f.write_str(rest)
    }
}

/// Characters that make a spreadsheet read a cell as a formula when they
/// come first (OWASP, "CSV Injection"), also after leading white space
/// (spreadsheets may trim it on import) and in their full-width forms
/// (U+FF1D, U+FF0B, U+FF0D, U+FF20, which East Asian input produces and
/// spreadsheets may read as the ASCII ones).
const FORMULA_OPERATORS: [char; 8] = [
    '=', '+', '-', '@', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
];

/// Whether a spreadsheet may read `cell` as a formula: it starts with a
/// tab or a carriage return (OWASP), or its first character after any
/// leading white space is one of the formula operators.
fn formula(cell: &str) -> bool {
    cell.starts_with(['\t', '\r'])
        || cell
            .trim_start()
            .starts_with(|c: char| FORMULA_OPERATORS.contains(&c))
}

/// Whether a `'` in front of `rest` is one a CSV writer adds: `rest` is a
/// formula or starts with `'` itself.
fn quoted(rest: &str) -> bool {
    rest.starts_with('\'') || formula(rest)
}

/// Whether a CSV writer must put a `'` in front of `cell` so that a
/// spreadsheet shows it as text, never runs it: a cell a spreadsheet may
/// take for a formula, or one that already starts with `'` followed by
/// such a formula or another `'` (so that [`csv_unquote`] reverses the
/// quote exactly).
///
/// ```
/// use tessera_verifier::text::{csv_needs_quote, csv_unquote};
/// assert!(csv_needs_quote("=SUM(A1:A9)"));
/// assert!(csv_needs_quote("  =1+1"));
/// assert!(csv_needs_quote("\u{ff1d}1+1"));
/// assert!(!csv_needs_quote("alice"));
/// assert_eq!(csv_unquote("'=1"), "=1");
/// assert_eq!(csv_unquote("'alice"), "'alice");
/// ```
#[must_use]
pub fn csv_needs_quote(cell: &str) -> bool {
    formula(cell) || cell.strip_prefix('\'').is_some_and(quoted)
}

/// A cell as a CSV reader takes it back: the `'` a writer added after
/// [`csv_needs_quote`] is removed.
#[must_use]
pub fn csv_unquote(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if quoted(rest) => rest,
        _ => cell,
    }
}

/// How many characters of untrusted text [`shown`] quotes, escapes
/// counted as the characters they print.
pub const SHOWN_CHARS: usize = 80;

/// Shown form of untrusted text (a value or a name read from a file, a
/// request or the command line), the one way a message quotes one:
/// escaped for a terminal as [`escaped`] does, and when that is over
/// [`SHOWN_CHARS`] characters, its first characters (cut between two
/// characters, never inside one or inside an escape) and how long the
/// whole text was, so that a 2 MB value gives a line, not 2 MB of it.
///
/// ```
/// use tessera_verifier::text::shown;
/// assert_eq!(shown("PBX-BASIC"), "PBX-BASIC");
/// assert_eq!(shown("a\u{1b}b"), "a\\u{1b}b");
/// let long = "A".repeat(2 * 1024 * 1024);
/// assert_eq!(shown(&long), format!("{}... (2,097,152 bytes)", "A".repeat(80)));
/// ```
#[cfg(feature = "alloc")]
#[must_use]
pub fn shown(value: &str) -> alloc::string::String {
    use alloc::string::{String, ToString};
    let mut out = String::new();
    let mut chars = 0;
    let mut buf = [0u8; 4];
    for ch in value.chars() {
        // Escaped one character at a time: a long value is never
        // escaped whole only to be cut.
        let piece = escaped(ch.encode_utf8(&mut buf)).to_string();
        let width = piece.chars().count();
        if chars + width > SHOWN_CHARS {
            out.push_str("... (");
            out.push_str(&grouped(value.len()));
            out.push_str(" bytes)");
            return out;
        }
        chars += width;
        out.push_str(&piece);
    }
    out
}

/// `n` with a comma between each group of three digits: `2,097,152`.
#[cfg(feature = "alloc")]
#[must_use]
pub fn grouped(n: usize) -> alloc::string::String {
    use alloc::string::{String, ToString};
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[cfg(feature = "alloc")]
    #[test]
    fn shown_bounds_escapes_and_cuts_between_characters() {
        use alloc::format;
        use alloc::string::String;
        let huge = "A".repeat(2 * 1024 * 1024);
        let mut want = "A".repeat(SHOWN_CHARS);
        want.push_str("... (2,097,152 bytes)");
        assert_eq!(shown(&huge), want);
        assert_eq!(shown(&"b".repeat(SHOWN_CHARS)), "b".repeat(SHOWN_CHARS));
        assert_eq!(shown("a\u{1b}b"), "a\\u{1b}b");
        // An escape is never cut in its middle; a character never split.
        let mut esc = "a".repeat(SHOWN_CHARS - 2);
        esc.push('\u{1b}');
        assert_eq!(
            shown(&esc),
            format!("{}... (79 bytes)", "a".repeat(SHOWN_CHARS - 2))
        );
        let wide: String = "€".repeat(100);
        assert_eq!(
            shown(&wide),
            format!("{}... (300 bytes)", "€".repeat(SHOWN_CHARS))
        );
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1000), "1,000");
    }

    #[test]
    fn printable_text_passes() {
        for ok in [
            "SW-2026-000042",
            "HW-7F3A-0042",
            "Müller & Söhne GmbH",
            "東京オフィス",
            "PBX 1 (Lobby) – rack 3",
            "",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
            assert_eq!(escaped(ok).to_string(), ok);
        }
    }

    #[test]
    fn control_characters_are_refused_with_their_offset() {
        for (text, index, ch) in [
            ("\u{1b}[2J", 0, '\u{1b}'),
            ("ab\0", 2, '\0'),
            ("bell\u{7}", 4, '\u{7}'),
            ("serial\n", 6, '\n'),
            ("tab\there", 3, '\t'),
            ("del\u{7f}", 3, '\u{7f}'),
            ("c1\u{9b}31m", 2, '\u{9b}'),
            ("é\r", 2, '\r'),
        ] {
            assert_eq!(
                check(text),
                Err(TextFault::Control { index, ch }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn format_characters_are_refused_with_their_offset() {
        for (text, index, ch) in [
            ("ACME\u{202e}gpj", 4, '\u{202e}'),
            ("\u{2066}x", 0, '\u{2066}'),
            ("zero\u{200b}width", 4, '\u{200b}'),
            ("\u{feff}SW-1", 0, '\u{feff}'),
            ("soft\u{ad}hyphen", 4, '\u{ad}'),
            ("line\u{2028}sep", 4, '\u{2028}'),
            ("tag\u{e0041}", 3, '\u{e0041}'),
        ] {
            assert_eq!(
                check(text),
                Err(TextFault::Format { index, ch }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_format_table_is_sorted_and_disjoint() {
        let mut last = None;
        for &(lo, hi) in FORMAT_RANGES {
            assert!(lo <= hi);
            if let Some(prev) = last {
                assert!(lo > prev, "{lo:x} overlaps");
            }
            last = Some(hi);
        }
    }

    #[test]
    fn every_refused_character_is_escaped_and_nothing_else() {
        assert_eq!(escaped("a\u{1b}[31mb").to_string(), "a\\u{1b}[31mb");
        assert_eq!(escaped("\u{202e}\u{7}").to_string(), "\\u{202e}\\u{7}");
        assert_eq!(escaped("x\ny").to_string(), "x\\u{a}y");
        assert_eq!(escaped("back\\slash").to_string(), "back\\slash");
        // Every character in the first planes: escaped output is clean.
        for c in (0u32..0x3_0000).filter_map(char::from_u32) {
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            let shown = escaped(s).to_string();
            assert_eq!(check(&shown), Ok(()), "U+{:04X}", u32::from(c));
            assert_eq!(shown == *s, is_allowed(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn messages_name_the_code_point_and_say_what_to_do() {
        let m = TextFault::Format {
            index: 4,
            ch: '\u{202e}',
        }
        .to_string();
        assert!(
            m.contains("U+202E") && m.contains("byte 4") && m.contains("remove it"),
            "{m}"
        );
        let m = TextFault::Control {
            index: 0,
            ch: '\u{1b}',
        }
        .to_string();
        assert!(m.contains("U+001B"), "{m}");
    }
}
