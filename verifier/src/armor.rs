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
use crate::ArmorError;

/// Armor label of a license.
pub const LABEL_LICENSE: &str = "TESSERA LICENSE";
/// Armor label of a request.
pub const LABEL_REQUEST: &str = "TESSERA REQUEST";
/// Line width of the base64 body written by `encode` (feature `alloc`).
pub const LINE_WIDTH: usize = 64;
/// Longest armored text accepted: base64 of [`MAX_OBJECT_LEN`] plus generous
/// room for quoting, whitespace and surrounding mail text.
pub const MAX_ARMOR_LEN: usize = 64 * 1024;

const DASHES: &str = "-----";
/// Base64 characters collected before decoding a piece; a multiple of 4.
const CHUNK: usize = 256;

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

/// Decodes the first armored block labelled `label` in `text` into `out`
/// and returns the decoded bytes.
///
/// # Errors
/// [`ArmorError::MissingBegin`] when no tessera block is present,
/// [`ArmorError::WrongLabel`] when only blocks of another label are,
/// [`ArmorError::MissingEnd`], [`ArmorError::BadBase64`],
/// [`ArmorError::TooLarge`] when the data exceeds `out` or the size cap, and
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

/// Armors `bytes` with `label` (feature `alloc`): base64 with padding in
/// [`LINE_WIDTH`]-column lines, LF line ends, a final newline.
#[cfg(feature = "alloc")]
#[must_use]
pub fn encode(bytes: &[u8], label: &str) -> alloc::string::String {
    use alloc::string::String;
    let body = STANDARD.encode(bytes);
    let mut text = String::with_capacity(body.len() + body.len() / LINE_WIDTH + 80);
    text.push_str(DASHES);
    text.push_str("BEGIN ");
    text.push_str(label);
    text.push_str(DASHES);
    text.push('\n');
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(LINE_WIDTH));
        text.push_str(line);
        text.push('\n');
        rest = tail;
    }
    text.push_str(DASHES);
    text.push_str("END ");
    text.push_str(label);
    text.push_str(DASHES);
    text.push('\n');
    text
}

#[cfg(test)]
#[cfg(feature = "alloc")]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

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
            Err(ArmorError::TooLarge)
        );
        let big = encode(&[0u8; MAX_OBJECT_LEN + 1], LABEL_LICENSE);
        let mut buf = [0u8; MAX_OBJECT_LEN + 100];
        assert_eq!(
            decode(&big, LABEL_LICENSE, &mut buf),
            Err(ArmorError::TooLarge)
        );
    }
}
