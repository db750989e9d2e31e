//! A checked CBOR reader that accepts only the deterministic encoding of
//! `spec/FORMAT.md` §6, and (feature `alloc`) the matching writer.
//!
//! The reader never indexes out of bounds, caps every length against the
//! remaining input before trusting it, and rejects: indefinite lengths,
//! non-shortest heads, floats, unassigned simple values, reserved
//! additional-information values, unsorted or duplicate map keys, nesting
//! beyond [`MAX_DEPTH`] and trailing bytes. A general-purpose decoder such as
//! `ciborium-ll` normalises heads as it reads them, which would hide exactly
//! the non-shortest encodings this reader must refuse, so the head is decoded
//! here from the raw bytes.

use crate::Malformed;

/// Deepest nesting accepted when skipping an unknown field (§6.3).
pub const MAX_DEPTH: usize = 8;

/// Major type: unsigned integer.
pub const MAJOR_UINT: u8 = 0;
/// Major type: negative integer.
pub const MAJOR_NINT: u8 = 1;
/// Major type: byte string.
pub const MAJOR_BSTR: u8 = 2;
/// Major type: text string.
pub const MAJOR_TSTR: u8 = 3;
/// Major type: array.
pub const MAJOR_ARRAY: u8 = 4;
/// Major type: map.
pub const MAJOR_MAP: u8 = 5;
/// Major type: tag.
pub const MAJOR_TAG: u8 = 6;
/// Major type: simple values.
pub const MAJOR_SIMPLE: u8 = 7;

const SIMPLE_FALSE: u64 = 20;
const SIMPLE_TRUE: u64 = 21;
const SIMPLE_NULL: u64 = 22;

type Result<T> = core::result::Result<T, Malformed>;

/// Encodes a CBOR head (major type + argument) in its shortest form into
/// `out`, returning the used prefix. Shared by the signature path (which
/// streams the Sig_structure) and the encoder.
#[must_use]
pub fn head(major: u8, arg: u64, out: &mut [u8; 9]) -> &[u8] {
    let mt = major << 5;
    let (first, extra) = match u8::try_from(arg) {
        Ok(small) if small < 24 => (mt | small, 0),
        Ok(_) => (mt | 24, 1),
        Err(_) if arg <= 0xffff => (mt | 25, 2),
        Err(_) if arg <= 0xffff_ffff => (mt | 26, 4),
        Err(_) => (mt | 27, 8),
    };
    let be = arg.to_be_bytes();
    let bytes = core::iter::once(&first).chain(be.iter().skip(8 - extra));
    for (dst, src) in out.iter_mut().zip(bytes) {
        *dst = *src;
    }
    out.get(..=extra).unwrap_or_default()
}

/// A cursor over a byte slice that yields only deterministic CBOR items.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next unread byte.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes from `start` up to the current position.
    pub fn since(&self, start: usize) -> Result<&'a [u8]> {
        self.buf.get(start..self.pos).ok_or(Malformed::Truncated)
    }

    /// Fails with [`Malformed::TrailingBytes`] unless all input was read.
    pub fn finish(&self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Malformed::TrailingBytes)
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Malformed::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Major type of the next item without consuming it.
    pub fn peek_major(&self) -> Result<u8> {
        self.buf
            .get(self.pos)
            .map(|b| b >> 5)
            .ok_or(Malformed::Truncated)
    }

    /// Reads a head, enforcing the shortest form (§6.1).
    pub fn head(&mut self) -> Result<(u8, u64)> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 if major == MAJOR_SIMPLE => {
                // Floats and two-byte simple values have no place in this format.
                return Err(Malformed::UnexpectedType);
            }
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            25 => {
                let v = self.be_uint(2)?;
                if v <= 0xff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            26 => {
                let v = self.be_uint(4)?;
                if v <= 0xffff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            27 => {
                let v = self.be_uint(8)?;
                if v <= 0xffff_ffff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            31 if matches!(
                major,
                MAJOR_BSTR | MAJOR_TSTR | MAJOR_ARRAY | MAJOR_MAP | MAJOR_SIMPLE
            ) =>
            {
                return Err(Malformed::IndefiniteLength);
            }
            _ => return Err(Malformed::UnexpectedType),
        };
        Ok((major, arg))
    }

    fn be_uint(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn expect_major(&mut self, major: u8) -> Result<u64> {
        let (m, arg) = self.head()?;
        if m == major {
            Ok(arg)
        } else {
            Err(Malformed::UnexpectedType)
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self) -> Result<u64> {
        self.expect_major(MAJOR_UINT)
    }

    /// An unsigned integer that fits `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.uint()?).map_err(|_| Malformed::BadValue)
    }

    /// An unsigned integer that fits `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        u16::try_from(self.uint()?).map_err(|_| Malformed::BadValue)
    }

    /// An unsigned integer that fits `u8`.
    pub fn u8(&mut self) -> Result<u8> {
        u8::try_from(self.uint()?).map_err(|_| Malformed::BadValue)
    }

    /// A signed integer (major type 0 or 1) that fits `i64`.
    pub fn int(&mut self) -> Result<i64> {
        match self.head()? {
            (MAJOR_UINT, v) => i64::try_from(v).map_err(|_| Malformed::BadValue),
            (MAJOR_NINT, v) => i64::try_from(v)
                .map(|v| -1 - v)
                .map_err(|_| Malformed::BadValue),
            _ => Err(Malformed::UnexpectedType),
        }
    }

    fn len_within(&self, arg: u64) -> Result<usize> {
        let len = usize::try_from(arg).map_err(|_| Malformed::Truncated)?;
        if len > self.buf.len().saturating_sub(self.pos) {
            return Err(Malformed::Truncated);
        }
        Ok(len)
    }

    /// A byte string of at most `max` bytes.
    pub fn bstr(&mut self, max: usize) -> Result<&'a [u8]> {
        let arg = self.expect_major(MAJOR_BSTR)?;
        let len = self.len_within(arg)?;
        if len > max {
            return Err(Malformed::BadLength);
        }
        self.take(len)
    }

    /// A byte string of exactly `N` bytes.
    #[inline]
    pub fn bstr_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        <[u8; N]>::try_from(self.bstr_exact(N)?).map_err(|_| Malformed::BadLength)
    }

    /// A byte string of exactly `len` bytes: the part of
    /// [`Reader::bstr_array`] that does not depend on the length, in flash
    /// once.
    fn bstr_exact(&mut self, len: usize) -> Result<&'a [u8]> {
        let arg = self.expect_major(MAJOR_BSTR)?;
        if self.len_within(arg)? != len {
            return Err(Malformed::BadLength);
        }
        self.take(len)
    }

    /// A UTF-8 text string of at most `max` bytes.
    pub fn tstr(&mut self, max: usize) -> Result<&'a str> {
        let arg = self.expect_major(MAJOR_TSTR)?;
        let len = self.len_within(arg)?;
        if len > max {
            return Err(Malformed::BadLength);
        }
        core::str::from_utf8(self.take(len)?).map_err(|_| Malformed::InvalidUtf8)
    }

    /// An array head with at most `max` elements; returns the element count.
    pub fn array(&mut self, max: usize) -> Result<usize> {
        let arg = self.expect_major(MAJOR_ARRAY)?;
        self.count(arg, max)
    }

    /// An array head with exactly `n` elements.
    pub fn array_of(&mut self, n: usize) -> Result<()> {
        let arg = self.expect_major(MAJOR_ARRAY)?;
        if usize::try_from(arg).ok() == Some(n) {
            Ok(())
        } else {
            Err(Malformed::BadLength)
        }
    }

    /// A map head with at most `max` entries; returns the entry count.
    pub fn map(&mut self, max: usize) -> Result<usize> {
        let arg = self.expect_major(MAJOR_MAP)?;
        self.count(arg, max)
    }

    fn count(&self, arg: u64, max: usize) -> Result<usize> {
        // Every element takes at least one byte: a count beyond the remaining
        // input is truncated, whatever the cap says.
        let n = self.len_within(arg)?;
        if n > max {
            Err(Malformed::TooManyItems)
        } else {
            Ok(n)
        }
    }

    /// A tag number.
    pub fn tag(&mut self) -> Result<u64> {
        self.expect_major(MAJOR_TAG)
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        match self.expect_major(MAJOR_SIMPLE)? {
            SIMPLE_FALSE => Ok(false),
            SIMPLE_TRUE => Ok(true),
            _ => Err(Malformed::UnexpectedType),
        }
    }

    /// Consumes a `null` if one is next; returns whether it did.
    pub fn null(&mut self) -> Result<bool> {
        if self.buf.get(self.pos) == Some(&0xf6) {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Skips one well-formed, deterministic item of any type, nested at most
    /// `depth` levels deep (§6.3).
    pub fn skip(&mut self, depth: usize) -> Result<()> {
        let depth = depth.checked_sub(1).ok_or(Malformed::TooDeep)?;
        let (major, arg) = self.head()?;
        match major {
            MAJOR_UINT | MAJOR_NINT => Ok(()),
            MAJOR_BSTR => {
                let len = self.len_within(arg)?;
                self.take(len).map(|_| ())
            }
            MAJOR_TSTR => {
                let len = self.len_within(arg)?;
                core::str::from_utf8(self.take(len)?)
                    .map(|_| ())
                    .map_err(|_| Malformed::InvalidUtf8)
            }
            MAJOR_ARRAY => {
                for _ in 0..self.len_within(arg)? {
                    self.skip(depth)?;
                }
                Ok(())
            }
            MAJOR_MAP => {
                let mut keys = MapKeys::new();
                for _ in 0..self.len_within(arg)? {
                    let start = self.pos;
                    self.skip(depth)?;
                    keys.check(self.since(start)?)?;
                    self.skip(depth)?;
                }
                Ok(())
            }
            MAJOR_TAG => self.skip(depth),
            _ => match arg {
                SIMPLE_FALSE | SIMPLE_TRUE | SIMPLE_NULL => Ok(()),
                _ => Err(Malformed::UnexpectedType),
            },
        }
    }

    /// Reads a map key that must be an integer, checking the deterministic
    /// key order against the previous key (§6.2).
    pub fn key(&mut self, keys: &mut MapKeys<'a>) -> Result<i64> {
        let start = self.pos;
        let key = self.int()?;
        keys.check(self.since(start)?)?;
        Ok(key)
    }
}

/// Tracks the encoded previous key of a map so that keys must be strictly
/// increasing in bytewise order (RFC 8949 §4.2.1), which also rules out
/// duplicates.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapKeys<'a> {
    previous: Option<&'a [u8]>,
}

impl<'a> MapKeys<'a> {
    /// A tracker for a new map.
    #[must_use]
    pub fn new() -> Self {
        Self { previous: None }
    }

    /// Accepts `encoded` if it sorts after the previous key.
    pub fn check(&mut self, encoded: &'a [u8]) -> Result<()> {
        if let Some(previous) = self.previous {
            match previous.cmp(encoded) {
                core::cmp::Ordering::Less => {}
                core::cmp::Ordering::Equal => return Err(Malformed::DuplicateKey),
                core::cmp::Ordering::Greater => return Err(Malformed::UnsortedKeys),
            }
        }
        self.previous = Some(encoded);
        Ok(())
    }
}

/// Where an [`Encoder`] puts its bytes.
pub trait Output {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

#[cfg(feature = "alloc")]
impl Output for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A caller buffer filled from its start, for encoding without a heap.
/// Bytes past its end are counted and dropped, so one pass tells how much
/// room the whole item needs ([`Fill::len`]); an empty buffer only counts.
#[derive(Debug)]
pub struct Fill<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Fill<'b> {
    /// Fills `buf` from its start.
    #[must_use]
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes put so far, stored or not: the room the item needs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was put.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether everything put was stored.
    #[must_use]
    pub fn fits(&self) -> bool {
        self.len <= self.buf.len()
    }
}

impl Output for Fill<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(room) = self
            .buf
            .get_mut(self.len..)
            .and_then(|rest| rest.get_mut(..bytes.len()))
        {
            room.copy_from_slice(bytes);
        }
        self.len = self.len.saturating_add(bytes.len());
    }
}

/// A deterministic CBOR encoder, the inverse of [`Reader`]: into a caller
/// buffer ([`Fill`]) without a heap, or into a `Vec` ([`Writer`], feature
/// `alloc`). Both write the same bytes: the encoders of licenses, requests
/// and the Sig_structure share this one definition.
#[derive(Clone, Debug, Default)]
pub struct Encoder<O> {
    out: O,
}

/// The encoder into a `Vec` (feature `alloc`).
#[cfg(feature = "alloc")]
pub type Writer = Encoder<alloc::vec::Vec<u8>>;

#[cfg(feature = "alloc")]
impl Encoder<alloc::vec::Vec<u8>> {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    #[must_use]
    pub fn into_bytes(self) -> alloc::vec::Vec<u8> {
        self.out
    }
}

impl<O: Output> Encoder<O> {
    /// An encoder appending to `out`.
    #[must_use]
    pub fn to(out: O) -> Self {
        Self { out }
    }

    /// The output.
    #[must_use]
    pub fn output(&self) -> &O {
        &self.out
    }

    /// Writes a head in shortest form.
    pub fn head(&mut self, major: u8, arg: u64) -> &mut Self {
        let mut buf = [0u8; 9];
        self.out.put(head(major, arg, &mut buf));
        self
    }

    /// An unsigned integer.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.head(MAJOR_UINT, v)
    }

    /// A signed integer.
    pub fn int(&mut self, v: i64) -> &mut Self {
        match u64::try_from(v) {
            Ok(u) => self.head(MAJOR_UINT, u),
            // v < 0, so -1 - v is in 0..=i64::MAX.
            Err(_) => self.head(MAJOR_NINT, (-1 - v).unsigned_abs()),
        }
    }

    /// A byte string.
    pub fn bstr(&mut self, v: &[u8]) -> &mut Self {
        self.head(MAJOR_BSTR, v.len() as u64);
        self.out.put(v);
        self
    }

    /// A text string.
    pub fn tstr(&mut self, v: &str) -> &mut Self {
        self.head(MAJOR_TSTR, v.len() as u64);
        self.out.put(v.as_bytes());
        self
    }

    /// An array head.
    pub fn array(&mut self, n: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, n as u64)
    }

    /// A map head.
    pub fn map(&mut self, n: usize) -> &mut Self {
        self.head(MAJOR_MAP, n as u64)
    }

    /// A tag.
    pub fn tag(&mut self, v: u64) -> &mut Self {
        self.head(MAJOR_TAG, v)
    }

    /// `true` or `false`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.head(MAJOR_SIMPLE, if v { SIMPLE_TRUE } else { SIMPLE_FALSE })
    }

    /// `null`.
    pub fn null(&mut self) -> &mut Self {
        self.head(MAJOR_SIMPLE, SIMPLE_NULL)
    }

    /// Appends already-encoded CBOR.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.out.put(v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_head(bytes: &[u8]) -> Result<(u8, u64)> {
        let mut r = Reader::new(bytes);
        let h = r.head()?;
        r.finish()?;
        Ok(h)
    }

    #[test]
    fn shortest_heads_accepted() {
        assert_eq!(read_head(&[0x17]), Ok((0, 23)));
        assert_eq!(read_head(&[0x18, 24]), Ok((0, 24)));
        assert_eq!(read_head(&[0x19, 1, 0]), Ok((0, 256)));
        assert_eq!(read_head(&[0x1a, 0, 1, 0, 0]), Ok((0, 65536)));
        assert_eq!(read_head(&[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]), Ok((0, 1 << 32)));
    }

    #[test]
    fn non_shortest_heads_rejected() {
        assert_eq!(read_head(&[0x18, 23]), Err(Malformed::NonShortest));
        assert_eq!(read_head(&[0x19, 0, 0xff]), Err(Malformed::NonShortest));
        assert_eq!(
            read_head(&[0x1a, 0, 0, 0xff, 0xff]),
            Err(Malformed::NonShortest)
        );
        assert_eq!(
            read_head(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(Malformed::NonShortest)
        );
        assert_eq!(read_head(&[0x58, 1, 0]), Err(Malformed::NonShortest));
    }

    #[test]
    fn reserved_indefinite_float_rejected() {
        assert_eq!(read_head(&[0x1c]), Err(Malformed::UnexpectedType));
        assert_eq!(read_head(&[0x1f]), Err(Malformed::UnexpectedType));
        assert_eq!(read_head(&[0x5f]), Err(Malformed::IndefiniteLength));
        assert_eq!(read_head(&[0x9f]), Err(Malformed::IndefiniteLength));
        assert_eq!(read_head(&[0xbf]), Err(Malformed::IndefiniteLength));
        assert_eq!(read_head(&[0xff]), Err(Malformed::IndefiniteLength));
        assert_eq!(read_head(&[0xf9, 0, 0]), Err(Malformed::UnexpectedType));
        assert_eq!(
            read_head(&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::UnexpectedType)
        );
        assert_eq!(read_head(&[0x19, 1]), Err(Malformed::Truncated));
        assert_eq!(read_head(&[]), Err(Malformed::Truncated));
    }

    #[test]
    fn lengths_capped_by_input() {
        let mut r = Reader::new(&[0x5a, 0xff, 0xff, 0xff, 0xff, 1]);
        assert_eq!(r.bstr(10), Err(Malformed::Truncated));
        let mut r = Reader::new(&[0x9a, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.array(10), Err(Malformed::Truncated));
        let mut r = Reader::new(&[0x83, 1, 2, 3]);
        assert_eq!(r.array(2), Err(Malformed::TooManyItems));
        let mut r = Reader::new(&[0x43, 1, 2, 3]);
        assert_eq!(r.bstr(2), Err(Malformed::BadLength));
        let mut r = Reader::new(&[0x62, 0xc3, 0x28]);
        assert_eq!(r.tstr(8), Err(Malformed::InvalidUtf8));
    }

    #[test]
    fn integers() {
        assert_eq!(Reader::new(&[0x20]).int(), Ok(-1));
        assert_eq!(Reader::new(&[0x3a, 0, 1, 0, 0]).int(), Ok(-65537));
        assert_eq!(
            Reader::new(&[0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0]).int(),
            Err(Malformed::BadValue)
        );
        assert_eq!(Reader::new(&[0x19, 1, 0]).u8(), Err(Malformed::BadValue));
        assert_eq!(Reader::new(&[0x20]).uint(), Err(Malformed::UnexpectedType));
    }

    #[test]
    fn map_keys_order_and_duplicates() {
        let mut keys = MapKeys::new();
        let mut r = Reader::new(&[0x01, 0x02, 0x02, 0x01, 0x3a, 0, 1, 0, 0]);
        assert_eq!(r.key(&mut keys), Ok(1));
        assert_eq!(r.key(&mut keys), Ok(2));
        assert_eq!(r.key(&mut keys), Err(Malformed::DuplicateKey));
        let mut keys = MapKeys::new();
        let mut r = Reader::new(&[0x02, 0x01]);
        assert_eq!(r.key(&mut keys), Ok(2));
        assert_eq!(r.key(&mut keys), Err(Malformed::UnsortedKeys));
        // Negative keys sort after positive ones (bytewise).
        let mut keys = MapKeys::new();
        let mut r = Reader::new(&[0x07, 0x3a, 0, 1, 0, 0]);
        assert_eq!(r.key(&mut keys), Ok(7));
        assert_eq!(r.key(&mut keys), Ok(-65537));
    }

    #[test]
    fn skip_checks_nested_items() {
        // [1, {1: h'', 2: "a"}, true, null]
        let ok = [0x84, 0x01, 0xa2, 0x01, 0x40, 0x02, 0x61, 0x61, 0xf5, 0xf6];
        let mut r = Reader::new(&ok);
        assert_eq!(r.skip(MAX_DEPTH), Ok(()));
        assert_eq!(r.finish(), Ok(()));
        let unsorted = [0xa2, 0x02, 0x00, 0x01, 0x00];
        assert_eq!(
            Reader::new(&unsorted).skip(MAX_DEPTH),
            Err(Malformed::UnsortedKeys)
        );
        let deep = [0x81, 0x81, 0x81, 0x00];
        assert_eq!(Reader::new(&deep).skip(3), Err(Malformed::TooDeep));
        assert_eq!(Reader::new(&deep).skip(4), Ok(()));
        assert_eq!(Reader::new(&[0xf7]).skip(1), Err(Malformed::UnexpectedType));
    }

    #[test]
    fn trailing_bytes() {
        let mut r = Reader::new(&[0x01, 0x02]);
        assert_eq!(r.uint(), Ok(1));
        assert_eq!(r.finish(), Err(Malformed::TrailingBytes));
    }

    #[test]
    fn fill_stores_what_fits_and_counts_the_rest() {
        let mut buf = [0u8; 4];
        let mut w = Encoder::to(Fill::new(&mut buf));
        w.uint(1).bstr(&[9, 9]);
        assert_eq!((w.output().len(), w.output().fits()), (4, true));
        w.uint(500);
        assert_eq!((w.output().len(), w.output().fits()), (7, false));
        assert_eq!(buf, [0x01, 0x42, 9, 9]);
        // An empty buffer only counts.
        let mut w = Encoder::to(Fill::new(&mut []));
        assert!(w.output().is_empty());
        w.tstr("abc").int(-1000);
        assert_eq!(w.output().len(), 4 + 3);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn fill_and_vec_write_the_same_bytes() {
        fn write<O: Output>(w: &mut Encoder<O>) {
            w.tag(18)
                .array(3)
                .int(i64::MIN)
                .map(1)
                .tstr("k")
                .bool(true)
                .null()
                .raw(&[0xa0]);
        }
        let mut v = Writer::new();
        write(&mut v);
        let v = v.into_bytes();
        let mut buf = [0u8; 64];
        let mut f = Encoder::to(Fill::new(&mut buf));
        write(&mut f);
        assert_eq!(f.output().len(), v.len());
        assert_eq!(&buf[..v.len()], &v[..]);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn writer_round_trips_heads() {
        for v in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.uint(v);
            let bytes = w.into_bytes();
            assert_eq!(read_head(&bytes), Ok((0, v)));
        }
        for v in [-1i64, -24, -25, -65537, i64::MIN, i64::MAX] {
            let mut w = Writer::new();
            w.int(v);
            let bytes = w.into_bytes();
            assert_eq!(Reader::new(&bytes).int(), Ok(v));
        }
    }
}
