//! Text armor for carrying licenses and requests by hand
//! (`spec/FORMAT.md` §8): `-----BEGIN TESSERA LICENSE-----`, base64 in
//! 64-column lines, `-----END TESSERA LICENSE-----`.
//!
//! The reader is tolerant of what e-mail and copy-paste do to text: CRLF
//! line ends, blank lines, leading and trailing whitespace, text around the
//! block, re-wrapped lines and `> ` quoting. It decodes into a caller buffer
//! without allocating.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::cose::MAX_OBJECT_LEN;
use crate::{ArmorError, Error, Malformed};

/// Armor label of a license.
pub const LABEL_LICENSE: &str = "TESSERA LICENSE";
/// Armor label of a request.
pub const LABEL_REQUEST: &str = "TESSERA REQUEST";
/// Armor label of a ledger checkpoint (§10).
pub const LABEL_CHECKPOINT: &str = "TESSERA CHECKPOINT";
/// Line width of the base64 body written by `encode` (feature `alloc`).
pub const LINE_WIDTH: usize = 64;
/// Longest armored text accepted: base64 of [`MAX_OBJECT_LEN`] plus generous
/// room for quoting, whitespace and surrounding mail text.
pub const MAX_ARMOR_LEN: usize = 64 * 1024;

const DASHES: &str = "-----";
/// The unit the reader's checks are defined in: base64 characters decoded
/// as one piece (a multiple of 4), so that padding may end a chunk only at
/// the end of the data, and a chunk's errors come before anything after it.
const CHUNK: usize = 256;
/// Base64 characters held before decoding: whole chunks, decoded in one
/// call when the output has room for all of them (see [`Sink::decode`]).
/// One chunk keeps `decode`'s frame at about 400 bytes on a Cortex-M4
/// (the C ABI decodes armor on the device); three measured 11 % fewer
/// instructions on the typical license for 512 bytes more stack.
const HELD: usize = CHUNK;
/// Bytes copied at a time from base64 lines.
const BLOCK: usize = 64;

/// Strips mail quoting (`>`, `> >`, `>>`) and surrounding whitespace.
fn unquote(line: &str) -> &str {
    // ASCII whitespace only: base64 text never needs Unicode trimming, and
    // a non-ASCII space left in place is refused by the decoder.
    let mut rest = line.trim_ascii();
    while let Some(after) = rest.strip_prefix('>') {
        rest = after.trim_ascii_start();
    }
    rest
}

/// Parses `-----BEGIN <label>-----` / `-----END <label>-----`.
fn boundary<'l>(line: &'l str, word: &str) -> Option<&'l str> {
    line.strip_prefix(DASHES)?
        .strip_prefix(word)?
        .strip_prefix(' ')?
        .strip_suffix(DASHES)
}

/// Length of the quoting (`>` and whitespace) that starts the line at the
/// start of `text`.
fn quoting(text: &[u8]) -> usize {
    text.iter()
        .position(|&b| b == b'\n' || (b != b'>' && !b.is_ascii_whitespace()))
        .unwrap_or(text.len())
}

/// Whether the line at the start of `text`, its quoting removed, is
/// exactly `<open><label>-----` and whitespace: what follows the line if so.
/// A fast path for [`boundary`], valid for a `label` without line ends.
fn exact<'t>(text: &'t [u8], open: &str, label: &str) -> Option<&'t [u8]> {
    let rest = text
        .get(quoting(text)..)?
        .strip_prefix(open.as_bytes())?
        .strip_prefix(label.as_bytes())?
        .strip_prefix(DASHES.as_bytes())?;
    let end = rest
        .iter()
        .position(|&b| b == b'\n' || !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    match rest.get(end) {
        None => Some(&[]),
        Some(b'\n') => rest.get(end + 1..),
        Some(_) => None,
    }
}

/// Decodes the first armored block labelled `label` in `text` into `out`
/// and returns the decoded bytes. A byte order mark at the start of `text`
/// (as Windows editors save UTF-8) is skipped.
///
/// # Errors
/// [`ArmorError::MissingBegin`] when no tessera block is present,
/// [`ArmorError::WrongLabel`] when only blocks of another label are,
/// [`ArmorError::MissingEnd`], [`ArmorError::BadBase64`],
/// [`ArmorError::TooLarge`] when the data exceeds the size cap,
/// [`ArmorError::BufferTooSmall`] when it does not fit an `out` shorter
/// than [`MAX_OBJECT_LEN`] (which always suffices), and
/// [`ArmorError::Empty`].
///
/// ```
/// use tessera_verifier::armor::{decode, LABEL_LICENSE};
/// let text = "Hello,\r\n> -----BEGIN TESSERA LICENSE-----\r\n> AQID\r\n> -----END TESSERA LICENSE-----\r\n";
/// let mut buf = [0u8; 16];
/// assert_eq!(decode(text, LABEL_LICENSE, &mut buf).unwrap(), &[1, 2, 3]);
/// ```
pub fn decode<'o>(text: &str, label: &str, out: &'o mut [u8]) -> Result<&'o [u8], ArmorError> {
    if text.len() > MAX_ARMOR_LEN {
        return Err(ArmorError::TooLarge);
    }
    // Windows editors start UTF-8 text with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // The fast path of exact boundary lines needs labels without line ends
    // (no line holds one: such a label never matches).
    let plain = !label.bytes().fold(false, |acc, b| acc | (b == b'\n'));
    // The lines of `text.lines()`, one at a time, keeping what follows.
    let mut rest = text;
    let mut wrong_label = false;
    let body = loop {
        if rest.is_empty() {
            return Err(if wrong_label {
                ArmorError::WrongLabel
            } else {
                ArmorError::MissingBegin
            });
        }
        if plain {
            if let Some(after) = exact(rest.as_bytes(), "-----BEGIN ", label) {
                // `after` follows a '\n' (or is empty): a char boundary.
                break rest.get(rest.len() - after.len()..).unwrap_or_default();
            }
        }
        // `unquote` trims the "\r" that `lines()` would strip.
        let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        match boundary(unquote(line), "BEGIN") {
            Some(found) if found == label => break after,
            Some(found) if found.starts_with("TESSERA ") => wrong_label = true,
            _ => {}
        }
        rest = after;
    };
    let limit = out.len().min(MAX_OBJECT_LEN);
    let mut sink = Sink {
        out,
        limit,
        written: 0,
        held: [0; HELD + BLOCK],
        filled: 0,
        padded: false,
    };
    let bytes = body.as_bytes();
    let mut at = 0;
    loop {
        // Skip quoting, whitespace and blank lines: `at` lands on the first
        // byte of the next unquoted line, every byte before it on its line
        // being whitespace or '>'.
        let Some(skip) = bytes.get(at..).and_then(|tail| {
            tail.iter()
                .position(|&b| b != b'>' && !b.is_ascii_whitespace())
        }) else {
            return Err(sink.missing_end());
        };
        at += skip;
        // Only a line starting with dashes can be a boundary.
        if bytes.get(at) == Some(&b'-') {
            let tail = bytes.get(at..).unwrap_or_default();
            if plain && exact(tail, "-----END ", label).is_some() {
                let n = sink.end()?;
                return sink.out.get(..n).ok_or(ArmorError::TooLarge);
            }
            let tail = body.get(at..).unwrap_or_default();
            let line = unquote(tail.split_once('\n').map_or(tail, |(line, _)| line));
            if let Some(found) = boundary(line, "END") {
                if found != label {
                    return Err(sink.missing_end());
                }
                let n = sink.end()?;
                return sink.out.get(..n).ok_or(ArmorError::TooLarge);
            }
            if boundary(line, "BEGIN").is_some() {
                return Err(sink.missing_end());
            }
        }
        at = sink.line(bytes, at)?;
    }
}

/// Whether `c` stops a bulk copy: whitespace, control bytes and non-ASCII
/// bytes (the last two are data, refused by the decoder).
#[inline(always)]
fn special(c: u8) -> bool {
    !(b'!'..0x80).contains(&c)
}

/// Whether a line starting with `c` is a plain data line: neither quoted
/// nor indented nor a boundary line.
#[inline(always)]
fn plain(c: u8) -> bool {
    !special(c) && c != b'-' && c != b'>'
}

/// Index of the first [`special`] byte of `b` (`N` a multiple of 8), `N`
/// if none.
#[inline(always)]
fn first_special<const N: usize>(b: &[u8; N]) -> usize {
    // Without short-circuit, so that it vectorizes.
    if !b.iter().fold(false, |acc, &c| acc | special(c)) {
        return N;
    }
    // A word at a time: `w - 0x2121..21` borrows out of (sets the high bit
    // of) the bytes below '!', `| w` adds those from 0x80 up. Borrows run
    // upwards, so the lowest mark is exact.
    let mut n = 0;
    for w in b.chunks_exact(8) {
        let w = w.first_chunk().map_or(0, |w| u64::from_le_bytes(*w));
        let marks = (w.wrapping_sub(0x2121_2121_2121_2121) | w) & 0x8080_8080_8080_8080;
        if marks != 0 {
            return n + (marks.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    N
}

/// Copies the data of `text` from `at` into `held` from `filled` up to the
/// first [`special`] byte other than the line end of a line followed by a
/// [`plain`] one, stopping early once [`HELD`] bytes are held. Returns the
/// new `at` and `filled`.
///
/// Works a block (or a word) at a time: the base64 decoder checks every
/// character, so no other per-byte work is needed here.
#[inline(never)]
fn copy_run(
    text: &[u8],
    mut at: usize,
    held: &mut [u8; HELD + BLOCK],
    mut filled: usize,
) -> (usize, usize) {
    loop {
        let (Some(src), Some(dst)) = (text.get(at..), held.get_mut(filled..)) else {
            return (at, filled);
        };
        // Store whole blocks or words, keep the bytes before the first
        // special one: the rest is overwritten later or never decoded.
        let n = if let (Some(b), Some(slot)) = (src.first_chunk(), dst.first_chunk_mut()) {
            let n = first_special::<BLOCK>(b);
            *slot = *b;
            n
        } else if let (Some(w), Some(slot)) = (src.first_chunk(), dst.first_chunk_mut()) {
            let n = first_special::<8>(w);
            *slot = *w;
            n
        } else {
            // Fewer than a word left: byte by byte.
            let n = src.iter().take_while(|&&c| !special(c)).count();
            if let (Some(b), Some(slot)) = (src.get(..n), dst.get_mut(..n)) {
                slot.copy_from_slice(b);
            }
            return (at + n, filled + n);
        };
        at += n;
        filled += n;
        if filled >= HELD {
            return (at, filled);
        }
        // Go on past the end of a line followed by a plain line.
        match text.get(at..) {
            Some([c, ..]) if !special(*c) => {}
            Some([b'\n', c, ..]) if plain(*c) => at += 1,
            Some([b'\r', b'\n', c, ..]) if plain(*c) => at += 2,
            _ => return (at, filled),
        }
    }
}

/// Collects base64 characters and decodes them chunk by chunk (in effect:
/// see [`Sink::decode`]), so lines may be wrapped at any width.
struct Sink<'o> {
    out: &'o mut [u8],
    limit: usize,
    written: usize,
    /// Characters not decoded yet, from a chunk boundary, and room to store
    /// a whole block past [`HELD`].
    held: [u8; HELD + BLOCK],
    /// Characters in `held`, below [`HELD`] between calls.
    filled: usize,
    /// The last chunk decoded ended in padding: no data may follow.
    padded: bool,
}

impl Sink<'_> {
    /// Appends the data of the line whose first (non-whitespace) data byte
    /// is at `at`: every byte up to the line end but whitespace. Returns
    /// where the next line starts (past the end of `text` for the last).
    #[inline(always)]
    fn line(&mut self, text: &[u8], mut at: usize) -> Result<usize, ArmorError> {
        loop {
            // Special bytes one at a time: whitespace (skipped), the line
            // end, control and non-ASCII bytes (data).
            loop {
                match text.get(at) {
                    None | Some(b'\n') => return Ok(at + 1),
                    Some(&c) if special(c) => {
                        at += 1;
                        if !c.is_ascii_whitespace() {
                            self.push(c)?;
                        }
                    }
                    Some(_) => break,
                }
            }
            if self.padded {
                // Data after a chunk that ended in padding.
                return Err(ArmorError::BadBase64);
            }
            (at, self.filled) = copy_run(text, at, &mut self.held, self.filled);
            if self.filled >= HELD {
                self.settle()?;
            }
        }
    }

    /// Appends one byte.
    fn push(&mut self, c: u8) -> Result<(), ArmorError> {
        if self.padded {
            // Data after a chunk that ended in padding.
            return Err(ArmorError::BadBase64);
        }
        let slot = self
            .held
            .get_mut(self.filled)
            .ok_or(ArmorError::BadBase64)?;
        *slot = c;
        self.filled += 1;
        if self.filled >= HELD {
            self.settle()?;
        }
        Ok(())
    }

    /// Decodes the whole chunks held and keeps the rest, as if each chunk
    /// had been decoded when it was complete.
    fn settle(&mut self) -> Result<(), ArmorError> {
        let whole = self.filled / CHUNK * CHUNK;
        if whole == 0 {
            return Ok(());
        }
        self.decode(whole)?;
        let rest = self.filled - whole;
        let (head, tail) = self
            .held
            .split_at_mut_checked(whole)
            .ok_or(ArmorError::BadBase64)?;
        let over = tail.get(..rest).ok_or(ArmorError::BadBase64)?;
        head.get_mut(..rest)
            .ok_or(ArmorError::BadBase64)?
            .copy_from_slice(over);
        self.filled = rest;
        if self.padded && rest > 0 {
            // Data after a chunk that ended in padding.
            return Err(ArmorError::BadBase64);
        }
        Ok(())
    }

    /// The result when the END line is missing: the errors of the chunks
    /// completed before, else [`ArmorError::MissingEnd`].
    fn missing_end(&mut self) -> ArmorError {
        self.settle().err().unwrap_or(ArmorError::MissingEnd)
    }

    /// Decodes the whole chunks in `held[..len]`, with the result of
    /// decoding them one at a time (and refusing data after a chunk that
    /// ends in padding).
    ///
    /// With room in the output for all of them, one call gives that result:
    /// one at a time, they can then only fail with `BadBase64`, and do
    /// exactly when the concatenation does (a valid chunk ends in padding
    /// only if its last quad is padded, which is refused when more follows).
    fn decode(&mut self, len: usize) -> Result<(), ArmorError> {
        let input = self.held.get(..len).ok_or(ArmorError::BadBase64)?;
        if self.limit.saturating_sub(self.written) >= len / 4 * 3 {
            self.padded = input.last() == Some(&b'=');
            return write(input, self.out, self.limit, &mut self.written);
        }
        for chunk in input.chunks(CHUNK) {
            if self.padded {
                return Err(ArmorError::BadBase64);
            }
            self.padded = chunk.last() == Some(&b'=');
            write(chunk, self.out, self.limit, &mut self.written)?;
        }
        Ok(())
    }

    /// Decodes what is held at the END line: the length of the data.
    fn end(&mut self) -> Result<usize, ArmorError> {
        let len = self.filled;
        // With room for all of it, one call decides as the chunks and the
        // last piece would one at a time (see `decode`).
        if len % 4 != 0 || self.limit.saturating_sub(self.written) < len / 4 * 3 {
            self.settle()?;
            if self.filled % 4 != 0 {
                return Err(ArmorError::BadBase64);
            }
        }
        if self.filled > 0 {
            let input = self.held.get(..self.filled).ok_or(ArmorError::BadBase64)?;
            write(input, self.out, self.limit, &mut self.written)?;
        }
        if self.written == 0 {
            return Err(ArmorError::Empty);
        }
        Ok(self.written)
    }
}

/// Decodes base64 `input` (a multiple of 4 characters) into
/// `out[*written..limit]`.
fn write(
    input: &[u8],
    out: &mut [u8],
    limit: usize,
    written: &mut usize,
) -> Result<(), ArmorError> {
    // Over the limit: over the cap, or over a shorter caller buffer.
    let over = if out.len() < MAX_OBJECT_LEN {
        ArmorError::BufferTooSmall
    } else {
        ArmorError::TooLarge
    };
    let room = out.get_mut(*written..limit).ok_or(over)?;
    let n = STANDARD.decode_slice(input, room).map_err(|e| match e {
        base64::DecodeSliceError::OutputSliceTooSmall => over,
        base64::DecodeSliceError::DecodeError(_) => ArmorError::BadBase64,
    })?;
    *written += n;
    Ok(())
}

/// The bytes of a signed object as a file or a paste holds it: the
/// armored text of `label`, or the binary COSE_Sign1 itself. The object
/// is copied or decoded into `out` ([`MAX_OBJECT_LEN`] bytes always
/// suffice).
///
/// Input is armor when it is UTF-8 text: it holds a `-----BEGIN` line, or
/// it starts with an ASCII character (or a byte order mark) and has no
/// control characters besides whitespace (a paste without its BEGIN line,
/// answered with [`ArmorError::MissingBegin`]). Anything else is binary
/// and returned as it is: decoding it says what it is when it is not a
/// COSE_Sign1 (another COSE tag, no tag; [`Error::NotSign1`]).
///
/// # Errors
/// The [`decode`] errors for text; for binary input
/// [`Malformed::TooLarge`] over [`MAX_OBJECT_LEN`] bytes or when it does
/// not fit `out`.
///
/// ```
/// use tessera_verifier::armor::{read_object, LABEL_LICENSE};
/// let mut buf = [0u8; 16];
/// // Binary input is returned as it is ...
/// assert_eq!(read_object(&[0xd1, 0x84, 0x40], LABEL_LICENSE, &mut buf).unwrap(), &[0xd1, 0x84, 0x40]);
/// // ... and text is read as armor.
/// let text = b"-----BEGIN TESSERA LICENSE-----\nAQID\n-----END TESSERA LICENSE-----\n";
/// assert_eq!(read_object(text, LABEL_LICENSE, &mut buf).unwrap(), &[1, 2, 3]);
/// ```
pub fn read_object<'o>(input: &[u8], label: &str, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
    if let Some(text) = as_text(input) {
        return decode(text, label, out).map_err(Error::Armor);
    }
    if input.len() > MAX_OBJECT_LEN {
        return Err(Malformed::TooLarge.into());
    }
    let out = out.get_mut(..input.len()).ok_or(Malformed::TooLarge)?;
    out.copy_from_slice(input);
    Ok(out)
}

/// `input` as text, if it is armor or meant to be (see [`read_object`]).
fn as_text(input: &[u8]) -> Option<&str> {
    let text = core::str::from_utf8(input).ok()?;
    let armored = text.contains("-----BEGIN");
    // Binary CBOR starts with a byte from 0x80 (an array, map or tag
    // head): text without a BEGIN line must start as text does.
    let plain = || {
        text.chars()
            .next()
            .is_none_or(|c| c.is_ascii() || c == '\u{feff}')
            && text
                .chars()
                .all(|c| !c.is_control() || c.is_ascii_whitespace())
    };
    (armored || plain()).then_some(text)
}

/// Length of the armored text [`encode_into`] writes for `len` bytes with
/// `label`: BEGIN line, base64 in [`LINE_WIDTH`]-column lines, END line,
/// each ended by LF.
#[must_use]
pub const fn encoded_len(len: usize, label: &str) -> usize {
    let body = len.div_ceil(3) * 4;
    let boundaries = "-----BEGIN -----\n".len() + "-----END -----\n".len() + 2 * label.len();
    boundaries + body + body.div_ceil(LINE_WIDTH)
}

/// Armors `bytes` with `label` into `out`, without a heap (`spec/FORMAT.md`
/// §8): base64 with padding in [`LINE_WIDTH`]-column lines, LF line ends,
/// a final newline. Returns the text, the first [`encoded_len`] bytes of
/// `out`.
///
/// # Errors
/// [`ArmorError::TooLarge`] for more than [`MAX_OBJECT_LEN`] bytes,
/// [`ArmorError::BufferTooSmall`] when `out` is shorter than
/// [`encoded_len`] (nothing is written then).
pub fn encode_into<'o>(
    bytes: &[u8],
    label: &str,
    out: &'o mut [u8],
) -> Result<&'o str, ArmorError> {
    if bytes.len() > MAX_OBJECT_LEN {
        return Err(ArmorError::TooLarge);
    }
    let out = out
        .get_mut(..encoded_len(bytes.len(), label))
        .ok_or(ArmorError::BufferTooSmall)?;
    write_armor(bytes, label, out);
    core::str::from_utf8(out).map_err(|_| ArmorError::BadBase64)
}

/// Writes the armor of `bytes` into `out`, exactly [`encoded_len`] bytes:
/// the one definition of the written form.
fn write_armor(bytes: &[u8], label: &str, out: &mut [u8]) {
    let mut at = 0;
    let mut put = |piece: &[u8]| {
        if let Some(dst) = out.get_mut(at..at + piece.len()) {
            dst.copy_from_slice(piece);
        }
        at += piece.len();
    };
    for piece in [DASHES, "BEGIN ", label, DASHES, "\n"] {
        put(piece.as_bytes());
    }
    // 48 bytes make a line of 64 characters.
    let mut line = [0u8; LINE_WIDTH];
    for chunk in bytes.chunks(LINE_WIDTH / 4 * 3) {
        let n = base64_line(chunk, &mut line);
        put(line.get(..n).unwrap_or_default());
        put(b"\n");
    }
    for piece in [DASHES, "END ", label, DASHES, "\n"] {
        put(piece.as_bytes());
    }
}

/// Standard base64 with padding (RFC 4648 §4) of up to 48 bytes into
/// `out`; returns the length. A few dozen instructions of flash where the
/// base64 crate's general engine (which the decoder uses) takes a
/// kilobyte; the tests hold the two equal.
fn base64_line(chunk: &[u8], out: &mut [u8; LINE_WIDTH]) -> usize {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32, shift: u32| {
        ALPHABET
            .get(((v >> shift) & 0x3f) as usize)
            .copied()
            .unwrap_or(b'=')
    };
    let mut n = 0;
    for (group, quad) in chunk.chunks(3).zip(out.chunks_exact_mut(4)) {
        let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let v = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        let chars = [
            sextet(v, 18),
            sextet(v, 12),
            if group.len() > 1 { sextet(v, 6) } else { b'=' },
            if group.len() > 2 { sextet(v, 0) } else { b'=' },
        ];
        quad.copy_from_slice(&chars);
        n += 4;
    }
    n
}

/// Armors `bytes` with `label` (feature `alloc`): what [`encode_into`]
/// writes, also for bytes over the size cap (readers refuse those).
#[cfg(feature = "alloc")]
#[must_use]
pub fn encode(bytes: &[u8], label: &str) -> alloc::string::String {
    let mut out = alloc::vec![0u8; encoded_len(bytes.len(), label)];
    write_armor(bytes, label, &mut out);
    alloc::string::String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
#[cfg(feature = "alloc")]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// The reader before it was made faster, kept verbatim as the
    /// reference the differential tests compare against.
    mod reference {
        // `unquote` and `boundary` are unchanged from that reader: shared.
        use super::super::{
            boundary, unquote, ArmorError, MAX_ARMOR_LEN, MAX_OBJECT_LEN, STANDARD,
        };
        use base64::Engine as _;

        /// Base64 characters collected before decoding a piece; a multiple of 4.
        const CHUNK: usize = 256;

        pub(super) fn decode<'o>(
            text: &str,
            label: &str,
            out: &'o mut [u8],
        ) -> Result<&'o [u8], ArmorError> {
            if text.len() > MAX_ARMOR_LEN {
                return Err(ArmorError::TooLarge);
            }
            let mut lines = text.lines().map(unquote);
            let mut wrong_label = false;
            loop {
                let Some(line) = lines.next() else {
                    return Err(if wrong_label {
                        ArmorError::WrongLabel
                    } else {
                        ArmorError::MissingBegin
                    });
                };
                match boundary(line, "BEGIN") {
                    Some(found) if found == label => break,
                    Some(found) if found.starts_with("TESSERA ") => wrong_label = true,
                    _ => {}
                }
            }
            let limit = out.len().min(MAX_OBJECT_LEN);
            let mut sink = Sink {
                out,
                limit,
                written: 0,
                pending: [0; CHUNK],
                filled: 0,
                padded: false,
            };
            for line in lines {
                if let Some(found) = boundary(line, "END") {
                    if found != label {
                        return Err(ArmorError::MissingEnd);
                    }
                    let n = sink.finish()?;
                    if n == 0 {
                        return Err(ArmorError::Empty);
                    }
                    return sink.out.get(..n).ok_or(ArmorError::TooLarge);
                }
                if boundary(line, "BEGIN").is_some() {
                    return Err(ArmorError::MissingEnd);
                }
                // Copy runs of non-whitespace in bulk; the base64 decoder checks
                // every character, so no per-byte work is needed here.
                for run in line.as_bytes().split(u8::is_ascii_whitespace) {
                    sink.extend(run)?;
                }
            }
            Err(ArmorError::MissingEnd)
        }

        /// Collects base64 characters and decodes them in chunks that are multiples
        /// of four characters, so lines may be wrapped at any width.
        struct Sink<'o> {
            out: &'o mut [u8],
            limit: usize,
            written: usize,
            pending: [u8; CHUNK],
            filled: usize,
            padded: bool,
        }

        impl Sink<'_> {
            fn extend(&mut self, mut run: &[u8]) -> Result<(), ArmorError> {
                while !run.is_empty() {
                    if self.padded {
                        // Data after a chunk that ended in padding.
                        return Err(ArmorError::BadBase64);
                    }
                    let room = self
                        .pending
                        .get_mut(self.filled..)
                        .ok_or(ArmorError::BadBase64)?;
                    let n = room.len().min(run.len());
                    let (head, tail) = run.split_at(n);
                    room.get_mut(..n)
                        .ok_or(ArmorError::BadBase64)?
                        .copy_from_slice(head);
                    self.filled += n;
                    run = tail;
                    if self.filled == CHUNK {
                        // Padding may only end the data: a full chunk ending in '='
                        // must be the last one.
                        self.padded = self.pending.last() == Some(&b'=');
                        self.flush()?;
                    }
                }
                Ok(())
            }

            fn flush(&mut self) -> Result<(), ArmorError> {
                let input = self
                    .pending
                    .get(..self.filled)
                    .ok_or(ArmorError::BadBase64)?;
                let room = self
                    .out
                    .get_mut(self.written..self.limit)
                    .ok_or(ArmorError::TooLarge)?;
                let n = STANDARD.decode_slice(input, room).map_err(|e| match e {
                    base64::DecodeSliceError::OutputSliceTooSmall => ArmorError::TooLarge,
                    base64::DecodeSliceError::DecodeError(_) => ArmorError::BadBase64,
                })?;
                self.written += n;
                self.filled = 0;
                Ok(())
            }

            fn finish(&mut self) -> Result<usize, ArmorError> {
                if self.filled % 4 != 0 {
                    return Err(ArmorError::BadBase64);
                }
                if self.filled > 0 {
                    self.flush()?;
                }
                Ok(self.written)
            }
        }
    }

    fn sample() -> Vec<u8> {
        (0..=255u8).cycle().take(700).collect()
    }

    fn dec(text: &str, label: &str) -> Result<Vec<u8>, ArmorError> {
        let mut buf = [0u8; MAX_OBJECT_LEN];
        decode(text, label, &mut buf).map(<[u8]>::to_vec)
    }

    #[test]
    fn round_trip_every_length() {
        for len in 1..200u8 {
            let data: Vec<u8> = (0..len).map(|i: u8| i.wrapping_mul(7)).collect();
            let text = encode(&data, LABEL_LICENSE);
            assert!(text
                .lines()
                .all(|l| l.len() <= LINE_WIDTH || l.starts_with("-----")));
            assert_eq!(dec(&text, LABEL_LICENSE), Ok(data));
        }
    }

    /// The armor as FORMAT.md §8 describes it, written the obvious way.
    fn reference_armor(bytes: &[u8], label: &str) -> String {
        let body = STANDARD.encode(bytes);
        let mut text = alloc::format!("-----BEGIN {label}-----\n");
        for line in body.as_bytes().chunks(LINE_WIDTH) {
            text.push_str(core::str::from_utf8(line).unwrap());
            text.push('\n');
        }
        text.push_str(&alloc::format!("-----END {label}-----\n"));
        text
    }

    #[test]
    fn encode_into_writes_the_specified_form_without_a_heap() {
        let mut buf = [0u8; encoded_len(MAX_OBJECT_LEN, LABEL_REQUEST)];
        for len in (0..300).chain([MAX_OBJECT_LEN - 1, MAX_OBJECT_LEN]) {
            let data: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 31 % 251).unwrap())
                .collect();
            for label in [LABEL_LICENSE, LABEL_REQUEST] {
                let want = reference_armor(&data, label);
                assert_eq!(encoded_len(len, label), want.len(), "{len}");
                let text = encode_into(&data, label, &mut buf).unwrap();
                assert_eq!(text, want, "{len}");
                assert_eq!(encode(&data, label), want, "{len}");
                if len > 0 {
                    assert_eq!(dec(&want, label), Ok(data.clone()));
                }
                // One byte short: refused, nothing written.
                let mut short = alloc::vec![0u8; want.len() - 1];
                assert_eq!(
                    encode_into(&data, label, &mut short),
                    Err(ArmorError::BufferTooSmall)
                );
                assert!(short.iter().all(|&b| b == 0));
            }
        }
        assert_eq!(
            encode_into(&[0; MAX_OBJECT_LEN + 1], LABEL_LICENSE, &mut buf),
            Err(ArmorError::TooLarge)
        );
    }

    #[test]
    fn read_object_tells_text_from_binary() {
        let data = sample();
        let text = encode(&data, LABEL_LICENSE);
        let mut buf = [0u8; MAX_OBJECT_LEN];
        // Armor, also with CRLF and after a greeting in non-ASCII letters.
        for t in [
            text.clone(),
            text.replace('\n', "\r\n"),
            alloc::format!("Grüße,\n\n{text}"),
        ] {
            assert_eq!(
                read_object(t.as_bytes(), LABEL_LICENSE, &mut buf).map(<[u8]>::to_vec),
                Ok(data.clone())
            );
        }
        // Text without a BEGIN line is armor that lacks it.
        for t in ["", "hello\n", "\t  \r\n"] {
            assert_eq!(
                read_object(t.as_bytes(), LABEL_LICENSE, &mut buf),
                Err(Error::Armor(ArmorError::MissingBegin)),
                "{t:?}"
            );
        }
        assert_eq!(
            read_object(text.as_bytes(), LABEL_REQUEST, &mut buf),
            Err(Error::Armor(ArmorError::WrongLabel))
        );
        assert_eq!(
            read_object("\u{feff}hello".as_bytes(), LABEL_LICENSE, &mut buf),
            Err(Error::Armor(ArmorError::MissingBegin))
        );
        // Binary: control bytes, not UTF-8, or starting with a CBOR head
        // from 0x80 (here d1 84 is valid UTF-8); returned as it is.
        for b in [
            &[0xd2, 0x84, 0x43, 0xa1, 0x01][..],
            &[0x01][..],
            &[0xff, 0xfe][..],
            &[0xd1, 0x84, 0x40][..],
        ] {
            assert_eq!(read_object(b, LABEL_LICENSE, &mut buf), Ok(b));
        }
        let big = [1u8; MAX_OBJECT_LEN + 1];
        assert_eq!(
            read_object(&big, LABEL_LICENSE, &mut [0u8; MAX_OBJECT_LEN + 1]),
            Err(Error::Malformed(Malformed::TooLarge))
        );
        assert_eq!(
            read_object(&[1, 2, 3], LABEL_LICENSE, &mut [0u8; 2]),
            Err(Error::Malformed(Malformed::TooLarge))
        );
    }

    #[test]
    fn tolerant_of_mail() {
        let data = sample();
        let text = encode(&data, LABEL_LICENSE);
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(dec(&crlf, LABEL_LICENSE), Ok(data.clone()));
        let quoted: String = text.lines().map(|l| alloc::format!("> > {l}\n")).collect();
        assert_eq!(dec(&quoted, LABEL_LICENSE), Ok(data.clone()));
        let spaced = alloc::format!(
            "Dear partner,\n\nhere it is:\n\n   {}\n\nRegards\n",
            text.replace('\n', "\n\n   ")
        );
        assert_eq!(dec(&spaced, LABEL_LICENSE), Ok(data.clone()));
        // Re-wrapped at 76 columns, as some mailers do.
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let rewrapped: String = body
            .as_bytes()
            .chunks(76)
            .map(|c| alloc::format!("{}\n", core::str::from_utf8(c).unwrap()))
            .collect();
        let rewrapped = alloc::format!(
            "-----BEGIN TESSERA LICENSE-----\n{rewrapped}-----END TESSERA LICENSE-----"
        );
        assert_eq!(dec(&rewrapped, LABEL_LICENSE), Ok(data));
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let data = sample();
        let text = encode(&data, LABEL_LICENSE);
        for saved in [
            alloc::format!("\u{feff}{text}"),
            alloc::format!("\u{feff}{}", text.replace('\n', "\r\n")),
            alloc::format!("\u{feff}Hello,\n\n{text}"),
        ] {
            assert_eq!(dec(&saved, LABEL_LICENSE), Ok(data.clone()), "{saved:?}");
        }
        // Only at the start: a mark inside a boundary line spoils it.
        let inside = text.replacen("-----BEGIN", "\u{feff}-----BEGIN", 1);
        assert_eq!(
            dec(&alloc::format!("x\n{inside}"), LABEL_LICENSE),
            Err(ArmorError::MissingBegin)
        );
    }

    #[test]
    fn errors() {
        let text = encode(&[1, 2, 3, 4], LABEL_LICENSE);
        assert_eq!(
            dec("nothing here", LABEL_LICENSE),
            Err(ArmorError::MissingBegin)
        );
        assert_eq!(dec(&text, LABEL_REQUEST), Err(ArmorError::WrongLabel));
        let cut: String = text.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(dec(&cut, LABEL_LICENSE), Err(ArmorError::MissingEnd));
        assert_eq!(
            dec(&text.replace("AQID", "AQ!D"), LABEL_LICENSE),
            Err(ArmorError::BadBase64)
        );
        // Non-zero trailing bits are not canonical base64.
        assert_eq!(
            dec(&text.replace("AQIDBA==", "AQIDBB=="), LABEL_LICENSE),
            Err(ArmorError::BadBase64)
        );
        assert_eq!(
            dec(&text.replace("AQIDBA==", "AQIDB"), LABEL_LICENSE),
            Err(ArmorError::BadBase64)
        );
        assert_eq!(
            dec(&text.replace("AQIDBA==", "AQ==IDBA"), LABEL_LICENSE),
            Err(ArmorError::BadBase64)
        );
        // Padding that ends a full decoding chunk, followed by more data.
        let chunked = alloc::format!(
            "-----BEGIN TESSERA LICENSE-----\n{}AA==\nAAAA\n-----END TESSERA LICENSE-----\n",
            "A".repeat(CHUNK - 4)
        );
        assert_eq!(dec(&chunked, LABEL_LICENSE), Err(ArmorError::BadBase64));
        let unchunked = chunked.replace("AA==\nAAAA", "AA==");
        assert_eq!(
            dec(&unchunked, LABEL_LICENSE).map(|v| v.len()),
            Ok((CHUNK - 4) / 4 * 3 + 1)
        );
        assert_eq!(
            dec(&text.replace("AQID", "AQ\u{e9}D"), LABEL_LICENSE),
            Err(ArmorError::BadBase64)
        );
        let empty = "-----BEGIN TESSERA LICENSE-----\n-----END TESSERA LICENSE-----\n";
        assert_eq!(dec(empty, LABEL_LICENSE), Err(ArmorError::Empty));
        let mut small = [0u8; 3];
        assert_eq!(
            decode(&text, LABEL_LICENSE, &mut small),
            Err(ArmorError::BufferTooSmall)
        );
        let big = encode(&[0u8; MAX_OBJECT_LEN + 1], LABEL_LICENSE);
        let mut buf = [0u8; MAX_OBJECT_LEN + 100];
        assert_eq!(
            decode(&big, LABEL_LICENSE, &mut buf),
            Err(ArmorError::TooLarge)
        );
    }

    /// Decodes with both readers into buffers of `len` bytes and checks
    /// they agree: same result, same bytes.
    fn same(text: &str, label: &str, len: usize) -> Result<Vec<u8>, ArmorError> {
        let mut a = alloc::vec![0u8; len];
        let mut b = alloc::vec![0u8; len];
        let new = decode(text, label, &mut a).map(<[u8]>::to_vec);
        let old = reference::decode(text, label, &mut b).map(<[u8]>::to_vec);
        // The reference said TooLarge for a buffer too short as well.
        if new == Err(ArmorError::BufferTooSmall) {
            assert!(len < MAX_OBJECT_LEN, "{text:?} {label:?} {len}");
            assert_eq!(old, Err(ArmorError::TooLarge), "{text:?} {label:?} {len}");
            return new;
        }
        assert_eq!(new, old, "{text:?} {label:?} {len}");
        if new.is_ok() {
            // Nothing written past the data either.
            assert_eq!(a, b, "{text:?} {label:?} {len}");
        }
        new
    }

    /// [`same`], when the result itself is not the point.
    fn agree(text: &str, label: &str, len: usize) {
        let _ = same(text, label, len);
    }

    /// Output buffer sizes around the chunk and block boundaries, and the
    /// size cap.
    const OUT_LENS: [usize; 12] = [
        0,
        1,
        3,
        48,
        189,
        192,
        193,
        380,
        384,
        576,
        1000,
        MAX_OBJECT_LEN + 8,
    ];

    /// [`same_all`], when the result itself is not the point.
    fn agree_all(text: &str) {
        let _ = same_all(text);
    }

    /// [`same`] for both labels and every size of [`OUT_LENS`]: the result
    /// with a buffer of the size cap.
    fn same_all(text: &str) -> Result<Vec<u8>, ArmorError> {
        for len in OUT_LENS {
            agree(text, LABEL_REQUEST, len);
            agree(text, LABEL_LICENSE, len);
        }
        same(text, LABEL_LICENSE, MAX_OBJECT_LEN)
    }

    fn armor(body: &str) -> String {
        alloc::format!("-----BEGIN TESSERA LICENSE-----\n{body}\n-----END TESSERA LICENSE-----\n")
    }

    /// `body` in lines of `width` characters, each followed by `end`.
    fn wrap(body: &str, width: usize, end: &str) -> String {
        let chars: Vec<char> = body.chars().collect();
        chars
            .chunks(width)
            .map(|c| alloc::format!("{}{end}", c.iter().collect::<String>()))
            .collect()
    }

    #[test]
    fn long_lines() {
        // One line longer than a chunk, than two, at every alignment.
        for len in [
            CHUNK / 4 * 3 - 3,
            CHUNK / 4 * 3,
            CHUNK / 4 * 3 + 1,
            1000,
            MAX_OBJECT_LEN,
        ] {
            let data: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 31 % 251).unwrap())
                .collect();
            let body = STANDARD.encode(&data);
            assert_eq!(same_all(&armor(&body)), Ok(data.clone()));
            let crlf = armor(&body).replace('\n', "\r\n");
            assert_eq!(same_all(&crlf), Ok(data.clone()));
            for width in [
                1, 3, 4, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 76, 127, 128, 129, 255, 256, 257,
            ] {
                let text = armor(&wrap(&body, width, "\n"));
                assert_eq!(same_all(&text), Ok(data.clone()), "{width}");
                let text = armor(&wrap(&body, width, " \r\n> "));
                assert_eq!(same_all(&text), Ok(data.clone()), "{width}");
            }
        }
        let big = STANDARD.encode([7u8; MAX_OBJECT_LEN + 1]);
        assert_eq!(same_all(&armor(&big)), Err(ArmorError::TooLarge));
        assert_eq!(
            same_all(&armor(&wrap(&big, 64, "\n"))),
            Err(ArmorError::TooLarge)
        );
    }

    #[test]
    fn padding_at_chunk_boundaries() {
        // A chunk ends in padding: only whitespace and the END line may
        // follow. Every chunk up to past what is held before decoding.
        for k in 1..=HELD / CHUNK + 1 {
            for (pad, tail) in [
                ("AA==", ""),
                ("AAA=", ""),
                ("AA==", "\n  \t\r\n> \n"),
                ("AA==", " \x0c "),
            ] {
                let body = alloc::format!("{}{pad}{tail}", "A".repeat(k * CHUNK - 4));
                let len = k * CHUNK / 4 * 3 - 3 + pad.matches('A').count() - 1;
                assert_eq!(same_all(&armor(&body)).map(|v| v.len()), Ok(len), "{k}");
                assert_eq!(
                    same_all(&armor(&wrap(&body, 64, "\n"))).map(|v| v.len()),
                    Ok(len),
                    "{k}"
                );
                for more in [
                    "AAAA", "\nAAAA", " A", "\n> A", "\n\x0b", "=", "\n====", "\né",
                ] {
                    let text = armor(&alloc::format!("{body}{more}"));
                    assert_eq!(same_all(&text), Err(ArmorError::BadBase64), "{k} {more:?}");
                    // Also when the END line never comes, or another BEGIN does.
                    let cut = alloc::format!("-----BEGIN TESSERA LICENSE-----\n{body}{more}\n");
                    assert_eq!(same_all(&cut), Err(ArmorError::BadBase64), "{k} {more:?}");
                    let nested = alloc::format!("{cut}-----BEGIN TESSERA LICENSE-----\n");
                    assert_eq!(
                        same_all(&nested),
                        Err(ArmorError::BadBase64),
                        "{k} {more:?}"
                    );
                }
                let cut = alloc::format!("-----BEGIN TESSERA LICENSE-----\n{body}\n");
                assert_eq!(same_all(&cut), Err(ArmorError::MissingEnd));
                let other = alloc::format!("{cut}-----END TESSERA REQUEST-----\n");
                assert_eq!(same_all(&other), Err(ArmorError::MissingEnd));
            }
            // The chunk ends in padding in the middle of a copied block: a
            // first line of every length shifts where blocks fall.
            for first in 1..=BLOCK + 8 {
                let mut head = "A".repeat(first);
                head.push('\n');
                head.push_str(&"A".repeat(k * CHUNK - 4 - first));
                for more in ["AAAA", "A", "=", " AAAA", "\n\x0b", "\nAAAA"] {
                    let text = armor(&alloc::format!("{head}AA=={more}"));
                    assert_eq!(
                        same_all(&text),
                        Err(ArmorError::BadBase64),
                        "{k} {first} {more:?}"
                    );
                }
                let text = armor(&alloc::format!("{head}AA==  "));
                let len = k * CHUNK / 4 * 3 - 2;
                assert_eq!(same(&text, LABEL_LICENSE, len).map(|v| v.len()), Ok(len));
                assert_eq!(
                    same(&text, LABEL_LICENSE, len - 1),
                    Err(ArmorError::BufferTooSmall)
                );
            }
        }
        // Padding one character before or after a chunk boundary, or in the
        // middle of a chunk.
        for at in [
            CHUNK - 8,
            CHUNK - 5,
            CHUNK - 3,
            CHUNK,
            CHUNK + 4,
            2 * CHUNK - 4,
            100,
            HELD - 4,
            HELD,
            HELD + 4,
        ] {
            let body = alloc::format!("{}AA==AAAA{}", "A".repeat(at), "A".repeat(2 * CHUNK));
            assert_eq!(same_all(&armor(&body)), Err(ArmorError::BadBase64), "{at}");
            assert_eq!(
                same_all(&armor(&wrap(&body, 64, "\n"))),
                Err(ArmorError::BadBase64),
                "{at}"
            );
        }
    }

    #[test]
    fn chunk_errors_come_first() {
        // A bad character or too small an output in one chunk, and the text
        // cut, ended by another label or by a nested BEGIN line later: what
        // decides is whether the chunk was complete before.
        let body = STANDARD.encode([0x5a; 1500]);
        for bad in [0, 200, 255, 256, 300, 511, 512, 700, 767, 768, 1000, 1999] {
            for stop in [bad + 1, 255, 256, 257, 512, 768, 769, 1024, 1100, 2000] {
                let mut b = String::from(&body[..stop.min(body.len())]);
                if bad < b.len() {
                    b.replace_range(bad..=bad, "!");
                }
                for end in [
                    "",
                    "\n-----END TESSERA REQUEST-----\n",
                    "\n-----BEGIN TESSERA LICENSE-----\n",
                    "\n-----END TESSERA LICENSE-----\n",
                ] {
                    let text = alloc::format!("-----BEGIN TESSERA LICENSE-----\n{b}{end}");
                    let result = same_all(&text);
                    if bad < b.len() && (bad / CHUNK + 1) * CHUNK <= b.len() {
                        assert_eq!(result, Err(ArmorError::BadBase64), "{bad} {stop} {end:?}");
                    }
                    let text = alloc::format!(
                        "-----BEGIN TESSERA LICENSE-----\n{}{end}",
                        wrap(&b, 76, "\r\n")
                    );
                    assert_eq!(same_all(&text), result, "{bad} {stop} {end:?}");
                }
            }
        }
        // Too small an output against a bad character in a later chunk, in
        // the last piece, or a last piece that is not whole quads.
        for len in [
            0, 1, 100, 191, 192, 193, 383, 384, 385, 575, 576, 577, 700, 767, 768, 1000,
        ] {
            for bad in [None, Some(10), Some(300), Some(600), Some(800), Some(1020)] {
                for cut in [1024, 1023, 1022, 1021, 1020, 1026, 768, 770, 772, 512] {
                    let mut b = String::from(&body[..cut]);
                    if let Some(at) = bad.filter(|&at| at < cut) {
                        b.replace_range(at..=at, "*");
                    }
                    agree(&armor(&b), LABEL_LICENSE, len);
                    agree(&armor(&wrap(&b, 64, "\n")), LABEL_LICENSE, len);
                }
            }
        }
    }

    #[test]
    fn whitespace_and_stray_bytes_inside_lines() {
        let data = sample();
        let body = STANDARD.encode(&data);
        for ws in [" ", "  ", "\t", "\x0c", "\r", " \t\r\x0c "] {
            for width in [1, 4, 7, 64, 100] {
                let text = armor(&wrap(&body, width, ws));
                assert_eq!(same_all(&text), Ok(data.clone()), "{ws:?} {width}");
            }
        }
        // Bytes below '!' that are not whitespace, DEL, non-ASCII: refused,
        // wherever they are.
        for stray in [
            "\x0b",
            "\0",
            "\x1f",
            "\x7f",
            "\u{a0}",
            "\u{e9}",
            "\u{1f600}",
            "!",
            "-",
            ">",
            "_",
        ] {
            for at in [0, 1, 63, 64, 65, 255, 256, 257, 500] {
                let mut b = body.clone();
                b.insert_str(at, stray);
                // Except '>' starting a line: quoting.
                let want = |line_start: bool| {
                    if stray == ">" && line_start {
                        Ok(data.clone())
                    } else {
                        Err(ArmorError::BadBase64)
                    }
                };
                assert_eq!(same_all(&armor(&b)), want(at == 0), "{stray:?} {at}");
                let text = armor(&wrap(&b, 64, "\n"));
                assert_eq!(same_all(&text), want(at % 64 == 0), "{stray:?} {at}");
                // At a chunk boundary with no END line: the chunk decides.
                let cut = alloc::format!("-----BEGIN TESSERA LICENSE-----\n{b}");
                agree_all(&cut);
            }
        }
    }

    #[test]
    fn quoting_and_boundaries() {
        let data = sample();
        let text = encode(&data, LABEL_LICENSE);
        for quote in [
            "> ", ">", ">>", "> > ", " >\t> ", ">  >>  ", "\t", "   ", "\x0c>",
        ] {
            let quoted: String = text
                .lines()
                .map(|l| alloc::format!("{quote}{l}\n"))
                .collect();
            assert_eq!(same_all(&quoted), Ok(data.clone()), "{quote:?}");
            let quoted: String = text
                .lines()
                .map(|l| alloc::format!("{quote}{l}  \r\n"))
                .collect();
            assert_eq!(same_all(&quoted), Ok(data.clone()), "{quote:?}");
            // Quoting only on the body, or only on the boundaries.
            let body_only: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("-----") {
                        alloc::format!("{l}\n")
                    } else {
                        alloc::format!("{quote}{l}\n")
                    }
                })
                .collect();
            assert_eq!(same_all(&body_only), Ok(data.clone()), "{quote:?}");
        }
        // The END line without a line end, with trailing blanks, quoted.
        for end in [
            "-----END TESSERA LICENSE-----",
            "-----END TESSERA LICENSE----- \t\r",
            "> -----END TESSERA LICENSE-----\n\n",
            ">>-----END TESSERA LICENSE-----\r\n",
        ] {
            let t = text.replace("-----END TESSERA LICENSE-----\n", end);
            assert_eq!(same_all(&t), Ok(data.clone()), "{end:?}");
        }
        // Lines that look like boundaries but are not.
        for line in [
            "-----END TESSERA LICENSE----- x",
            "-----END TESSERA LICENSE-----=",
            "-----END TESSERA LICENSE---",
            "-----END  TESSERA LICENSE-----",
            "-----ENDTESSERA LICENSE-----",
            "----END TESSERA LICENSE-----",
            "-----END TESSERA LICENSE-----\u{a0}",
            "- ----END TESSERA LICENSE-----",
            "-",
            "-----",
            "-----END TESSERA REQUEST-----",
            "-----BEGIN TESSERA LICENSE-----",
            "-----BEGIN OTHER-----",
            "-----END-----",
        ] {
            for at in [1, 5, 11] {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.insert(at, line);
                let t = lines.join("\n");
                assert!(same_all(&t).is_err(), "{line:?} {at}");
                let t = lines.join("\r\n> ");
                assert!(same_all(&t).is_err(), "{line:?} {at}");
            }
        }
        // Text around the block, other blocks before it, labels.
        let request = encode(&[9, 9, 9], LABEL_REQUEST);
        let two =
            alloc::format!("Hi,\n{request}\nand\n{text}\nbye\n-----END TESSERA LICENSE-----\n");
        assert_eq!(same(&two, LABEL_LICENSE, MAX_OBJECT_LEN), Ok(data.clone()));
        assert_eq!(
            same(&two, LABEL_REQUEST, MAX_OBJECT_LEN),
            Ok(alloc::vec![9, 9, 9])
        );
        assert_eq!(
            same(&two, "TESSERA OTHER", 100),
            Err(ArmorError::WrongLabel)
        );
        assert_eq!(same(&two, "OTHER", 100), Err(ArmorError::WrongLabel));
        assert_eq!(
            same("Hi\n-----BEGIN OTHER-----\n", "OTHER 2", 100),
            Err(ArmorError::MissingBegin)
        );
        for label in [
            "",
            " ",
            "TESSERA LICENSE\n",
            "TESSERA\nLICENSE",
            "\n",
            "TESSERA LICENSE-----",
            "-",
        ] {
            let t = text.replace(LABEL_LICENSE, label);
            agree_all(&t);
            agree(&t, label, MAX_OBJECT_LEN);
        }
    }

    #[test]
    fn ends_of_text() {
        let data = sample();
        let text = encode(&data, LABEL_LICENSE);
        // Cut anywhere: never a panic, always what the reference says.
        for cut in 0..text.len() {
            agree_all(&text[..cut]);
            agree_all(&text[..cut].replace('\n', "\r\n"));
        }
        // Bare CRs do not end lines: one line, a BEGIN line of a longer label.
        assert_eq!(
            same_all(&text.replace('\n', "\r")),
            Err(ArmorError::WrongLabel)
        );
        let huge = " ".repeat(MAX_ARMOR_LEN + 1);
        assert_eq!(same_all(&huge), Err(ArmorError::TooLarge));
        let spaced = alloc::format!("{}{text}", " ".repeat(MAX_ARMOR_LEN - text.len()));
        assert_eq!(same_all(&spaced), Ok(data));
    }

    mod differential {
        use super::*;
        use proptest::prelude::*;

        /// Pieces inserted into armored text: line ends, blanks, quoting,
        /// padding, boundaries of every kind, bytes the decoder refuses.
        const PIECES: [&str; 31] = [
            "\n",
            "\r\n",
            "\r",
            " ",
            "\t",
            "\x0b",
            "\x0c",
            ">",
            "> ",
            "\n> ",
            "=",
            "==",
            "A",
            "AAAA",
            "AA==",
            "-",
            "-----",
            "\u{e9}",
            "\u{a0}",
            "!",
            "\0",
            "\x7f",
            "\n\n",
            "\n-----BEGIN TESSERA LICENSE-----\n",
            "\n-----END TESSERA LICENSE-----\n",
            "\n-----BEGIN TESSERA REQUEST-----\n",
            "\n-----END TESSERA REQUEST-----\n",
            "-----END TESSERA LICENSE-----",
            "\n> -----END TESSERA LICENSE----- \n",
            "\n-----BEGIN TESSERA-----\n",
            "\n-----END OTHER-----\n",
        ];

        fn edit() -> impl Strategy<Value = (prop::sample::Index, u8, usize)> {
            (any::<prop::sample::Index>(), 0u8..3, 0..PIECES.len())
        }

        /// Inserts, deletes or replaces at a char boundary.
        fn apply(text: &mut String, (at, kind, piece): &(prop::sample::Index, u8, usize)) {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let i = bounds[at.index(bounds.len())];
            let next = bounds.iter().copied().find(|&b| b > i).unwrap_or(i);
            match kind {
                0 => text.insert_str(i, PIECES[*piece]),
                1 => text.replace_range(i..next, ""),
                _ => text.replace_range(i..next, PIECES[*piece]),
            }
        }

        fn text() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(any::<u8>(), 0..1200),
                1usize..300,
                prop::sample::select(alloc::vec!["", "> ", ">>", " > > ", "\t", "  "]),
                prop::sample::select(alloc::vec!["\n", "\r\n", " \n", "\n\n", "\r\n> "]),
                prop::sample::select(alloc::vec![
                    "",
                    "Hello,\n\n",
                    "-----BEGIN TESSERA REQUEST-----\nAQID\n-----END TESSERA REQUEST-----\n"
                ]),
                prop::collection::vec(edit(), 0..4),
            )
                .prop_map(|(data, width, quote, eol, before, edits)| {
                    let body = STANDARD.encode(&data);
                    let mut text =
                        alloc::format!("{before}{quote}-----BEGIN TESSERA LICENSE-----{eol}");
                    for line in body.as_bytes().chunks(width) {
                        text.push_str(quote);
                        text.push_str(core::str::from_utf8(line).unwrap());
                        text.push_str(eol);
                    }
                    text.push_str(quote);
                    text.push_str("-----END TESSERA LICENSE-----");
                    text.push_str(eol);
                    for e in &edits {
                        apply(&mut text, e);
                    }
                    text
                })
        }

        fn soup() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    3 => (0..PIECES.len()).prop_map(|i| String::from(PIECES[i])),
                    2 => "[A-Za-z0-9+/]{1,80}",
                    1 => "[A-Za-z0-9+/]{200,300}",
                ],
                0..40,
            )
            .prop_map(|p| p.concat())
        }

        proptest! {
            /// Armored text, rewrapped, quoted and edited: the new reader
            /// agrees with the old one on every result.
            #[test]
            fn agrees_with_reference_on_armor(text in text(), len in prop::sample::select(OUT_LENS.to_vec())) {
                agree(&text, LABEL_LICENSE, len);
                agree(&text, LABEL_LICENSE, MAX_OBJECT_LEN);
                agree(&text, LABEL_REQUEST, len);
            }

            /// Any mix of boundaries, blanks and base64.
            #[test]
            fn agrees_with_reference_on_soup(text in soup(), len in prop::sample::select(OUT_LENS.to_vec())) {
                agree(&text, LABEL_LICENSE, len);
                agree(&text, LABEL_LICENSE, MAX_OBJECT_LEN);
                agree(&text, LABEL_REQUEST, len);
            }
        }
    }
}
