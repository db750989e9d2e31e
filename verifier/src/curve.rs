//! Ed25519 group arithmetic for small MCUs (feature `small-stack`): what a
//! signature check needs, and nothing else, on fiat-crypto's verified field
//! code ([`field`]).
//!
//! curve25519-dalek's variable-time double-base multiplication keeps two
//! 8-entry tables, two 256-digit NAFs and large temporaries on the stack
//! (about 8 KiB on a Cortex-M4), and its public API has no mixed additions
//! or cheap doublings to build a leaner one on. This module has exactly the
//! operations of a verification:
//!
//! - [`decompress`], with curve25519-dalek's semantics (the y coordinate
//!   reduced modulo p, the non-negative root, the sign bit applied as given);
//! - [`is_small_order`];
//! - [`equation`]: `[k]P + [s]B = R`, by interleaved width-w NAFs (Straus):
//!   a width-4 table of P on the stack (4 points), and odd multiples of the
//!   base point B in flash ([`table`]) as affine points, so each addition
//!   of a multiple of B saves a multiplication and none is computed at run
//!   time;
//! - [`reduce_wide`] and [`is_canonical_scalar`]: scalars modulo the group
//!   order l.
//!
//! The formulas are the extended twisted Edwards ones of Hisil, Wong,
//! Carter and Dawson (2008) for `a = -1`, as in RFC 8032 and
//! curve25519-dalek. Variable time is fine: every input of a verification
//! is public. The tests compare every operation with curve25519-dalek on
//! random, edge, small-order and mixed-order inputs, and the signature tests
//! run every RFC 8032, Wycheproof, CCTV and speccheck vector through it
//! against `verify_strict`.

mod field;
pub(crate) mod table;

use field::{Fe, Loose};

/// The curve constant d = -121665/121666.
const D: Fe = Fe(fiat_crypto::curve25519_32::fiat_25519_tight_field_element(
    [
        56195235, 13857412, 51736253, 6949390, 114729, 24766616, 60832955, 30306712, 48412415,
        21499315,
    ],
));
/// 2d.
const D2: Fe = Fe(fiat_crypto::curve25519_32::fiat_25519_tight_field_element(
    [
        45281625, 27714825, 36363642, 13898781, 229458, 15978800, 54557047, 27058993, 29715967,
        9444199,
    ],
));
/// A square root of -1.
const SQRT_M1: Fe = Fe(fiat_crypto::curve25519_32::fiat_25519_tight_field_element(
    [
        34513072, 25610706, 9377949, 3500415, 12389472, 33281959, 41962654, 31548777, 326685,
        11406482,
    ],
));

/// A point in extended coordinates (X:Y:Z:T): x = X/Z, y = Y/Z, xy = T/Z.
#[derive(Clone, Copy)]
pub(crate) struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// (X:Y:Z), what a doubling needs.
#[derive(Clone, Copy)]
struct Projective {
    x: Fe,
    y: Fe,
    z: Fe,
}

/// A sum or double before its last multiplications: x = X/Z, y = Y/T.
#[derive(Clone, Copy)]
struct Completed {
    x: Loose,
    y: Loose,
    z: Loose,
    t: Loose,
}

/// A point ready to be added: (Y+X, Y-X, Z, 2dT).
#[derive(Clone, Copy)]
struct Cached {
    y_plus_x: Fe,
    y_minus_x: Fe,
    z: Fe,
    t2d: Fe,
}

/// An affine point ready to be added: (y+x, y-x, 2dxy).
#[derive(Clone, Copy)]
pub(crate) struct AffineCached {
    y_plus_x: Fe,
    y_minus_x: Fe,
    xy2d: Fe,
}

impl Projective {
    const IDENTITY: Self = Self {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
    };

    /// `2 * self`.
    fn double(&self) -> Completed {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz).carry();
        let x_plus_y_sq = self.x.add(&self.y).square();
        let yy_plus_xx = yy.add(&xx).carry();
        let yy_minus_xx = yy.sub(&xx).carry();
        Completed {
            x: x_plus_y_sq.sub(&yy_plus_xx),
            y: yy_plus_xx.relax(),
            z: yy_minus_xx.relax(),
            t: zz2.sub(&yy_minus_xx),
        }
    }

    /// Whether this is the neutral element (0, 1).
    fn is_identity(&self) -> bool {
        self.x.equals(&Fe::ZERO) && self.y.equals(&self.z)
    }
}

impl Completed {
    fn to_projective(self) -> Projective {
        Projective {
            x: self.x.mul(&self.t),
            y: self.y.mul(&self.z),
            z: self.z.mul(&self.t),
        }
    }

    fn to_point(self) -> Point {
        Point {
            x: self.x.mul(&self.t),
            y: self.y.mul(&self.z),
            z: self.z.mul(&self.t),
            t: self.x.mul(&self.y),
        }
    }
}

impl Point {
    /// The neutral element.
    #[cfg(test)]
    pub(crate) const IDENTITY: Self = Self {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
        t: Fe::ZERO,
    };

    fn to_projective(self) -> Projective {
        Projective {
            x: self.x,
            y: self.y,
            z: self.z,
        }
    }

    fn to_cached(self) -> Cached {
        Cached {
            y_plus_x: self.y.add(&self.x).carry(),
            y_minus_x: self.y.sub(&self.x).carry(),
            z: self.z,
            t2d: self.t.mul(&D2),
        }
    }

    /// `-self`.
    pub(crate) fn neg(&self) -> Self {
        Self {
            x: self.x.neg().carry(),
            y: self.y,
            z: self.z,
            t: self.t.neg().carry(),
        }
    }

    /// `self + q` (`negate`: `self - q`).
    fn add_cached(&self, q: &Cached, negate: bool) -> Completed {
        let tt2d = self.t.mul(&q.t2d);
        let zz = self.z.mul(&q.z);
        let zz2 = zz.add(&zz).carry();
        self.finish_sum((&q.y_plus_x, &q.y_minus_x), &zz2, &tt2d, negate)
    }

    /// `self + q` for an affine `q` (`negate`: `self - q`): one
    /// multiplication less.
    fn add_affine(&self, q: &AffineCached, negate: bool) -> Completed {
        let tt2d = self.t.mul(&q.xy2d);
        let zz2 = self.z.add(&self.z).carry();
        self.finish_sum((&q.y_plus_x, &q.y_minus_x), &zz2, &tt2d, negate)
    }

    /// The rest of a sum with `q`, given `q`'s `(Y + X, Y - X)` (swapped
    /// to subtract), `ZZ2` and `TT2d`:
    /// `(PP - MM, PP + MM, ZZ2 ± TT2d, ZZ2 ∓ TT2d)`.
    fn finish_sum(&self, q: (&Fe, &Fe), zz2: &Fe, tt2d: &Fe, negate: bool) -> Completed {
        let (plus, minus) = if negate { (q.1, q.0) } else { q };
        let pp = self.y.add(&self.x).mul(&plus.relax());
        let mm = self.y.sub(&self.x).mul(&minus.relax());
        let (z, t) = if negate {
            (zz2.sub(tt2d), zz2.add(tt2d))
        } else {
            (zz2.add(tt2d), zz2.sub(tt2d))
        };
        Completed {
            x: pp.sub(&mm),
            y: pp.add(&mm),
            z,
            t,
        }
    }

    /// `2 * self`.
    fn double(&self) -> Self {
        self.to_projective().double().to_point()
    }

    /// The affine form of this point, ready to be added (for the table of
    /// multiples of B).
    #[cfg(test)]
    pub(crate) fn to_affine_cached(self) -> AffineCached {
        // 1/Z = Z^(p-2) = (Z^((p-5)/8))^8 * Z^3.
        let z3 = self.z.square().mul(&self.z);
        let inv = self.z.pow_p58().square().square().square().mul(&z3);
        let x = self.x.mul(&inv);
        let y = self.y.mul(&inv);
        AffineCached {
            y_plus_x: y.add(&x).carry(),
            y_minus_x: y.sub(&x).carry(),
            xy2d: x.mul(&y).mul(&D2),
        }
    }

    /// The canonical encoding (for tests: the recomputed R is compared as a
    /// point, never compressed).
    #[cfg(test)]
    pub(crate) fn compress(&self) -> [u8; 32] {
        let z3 = self.z.square().mul(&self.z);
        let inv = self.z.pow_p58().square().square().square().mul(&z3);
        let x = self.x.mul(&inv);
        let mut out = self.y.mul(&inv).encode();
        if let Some(top) = out.last_mut() {
            *top |= u8::from(x.is_negative()) << 7;
        }
        out
    }
}

/// Decompresses a point encoding exactly as curve25519-dalek's
/// `CompressedEdwardsY::decompress` does: y is the low 255 bits reduced
/// modulo p, x the non-negative square root of `(y² - 1)/(dy² + 1)`,
/// negated when the sign bit is set (also when x = 0). `None` when there
/// is no square root.
pub(crate) fn decompress(bytes: &[u8; 32]) -> Option<Point> {
    let y = Fe::from_bytes(bytes);
    let yy = y.square();
    let u = yy.sub(&Fe::ONE).carry();
    let v = yy.mul(&D).add(&Fe::ONE).carry();
    // x = u v³ (u v⁷)^((p-5)/8) is a root of u/v or of -u/v (RFC 8032 §5.1.3).
    let v3 = v.square().mul(&v);
    let v7 = v3.square().mul(&v);
    let r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
    let check = v.mul(&r.square());
    let mut x = if check.equals(&u) {
        r
    } else if check.equals(&u.neg().carry()) {
        r.mul(&SQRT_M1)
    } else {
        return None;
    };
    if x.is_negative() {
        x = x.neg().carry();
    }
    if bytes.last().is_some_and(|b| b >> 7 == 1) {
        x = x.neg().carry();
    }
    Some(Point {
        x,
        y,
        z: Fe::ONE,
        t: x.mul(&y),
    })
}

/// Whether `[8]P` is the neutral element: P is one of the 8 points of small
/// order.
pub(crate) fn is_small_order(p: &Point) -> bool {
    let mut q = p.to_projective();
    for _ in 0..3 {
        q = q.double().to_projective();
    }
    q.is_identity()
}

/// Width of the NAF of the variable point's scalar: 4 odd multiples on
/// the stack (640 bytes; width 5 takes 640 more for 4 % fewer
/// instructions).
const WIDTH_P: u32 = 4;
/// Odd multiples of P kept on the stack: P, 3P, 5P, 7P.
const TABLE_P: usize = 1 << (WIDTH_P - 2);
/// NAF digits: a reduced scalar is below 2^253.
const DIGITS: usize = 256;

/// Whether `[k]P + [s]B = R`, for scalars `k` and `s` below 2^253
/// (little-endian; reduced modulo l), R given in affine coordinates (as
/// [`decompress`] returns it).
// Out of line: its table and NAF terms are on the stack only while it runs,
// not in the frame of everything `verify` inlines.
#[inline(never)]
pub(crate) fn equation(k: &[u8; 32], p: &Point, s: &[u8; 32], r: &Point) -> bool {
    let k_terms = Terms::<{ DIGITS / WIDTH_P as usize + 1 }>::of(k, WIDTH_P);
    let s_terms = Terms::<{ DIGITS / table::WIDTH as usize + 1 }>::of(s, table::WIDTH);
    let p_table = odd_multiples(p);
    let (mut ki, mut si) = (k_terms.len, s_terms.len);
    let top = k_terms.last_pos().max(s_terms.last_pos());
    let mut acc = Projective::IDENTITY;
    for pos in (0..=top).rev() {
        let mut sum = acc.double();
        if let Some(dk) = k_terms.take_at(&mut ki, pos) {
            if let Some(q) = p_table.get(usize::from(dk.unsigned_abs() / 2)) {
                sum = sum.to_point().add_cached(q, dk < 0);
            }
        }
        if let Some(ds) = s_terms.take_at(&mut si, pos) {
            if let Some(q) = table::ODD_MULTIPLES_OF_B.get(usize::from(ds.unsigned_abs() / 2)) {
                sum = sum.to_point().add_affine(q, ds < 0);
            }
        }
        acc = sum.to_projective();
    }
    // (X:Y:Z) = (x_R : y_R : 1) as projective points.
    acc.x.equals(&r.x.mul(&acc.z)) && acc.y.equals(&r.y.mul(&acc.z))
}

/// The non-zero digits of a width-w NAF, lowest first: a few dozen
/// (position, digit) pairs instead of 256 digits on the stack. At most
/// `DIGITS / w + 1`, as consecutive terms are at least `w` positions apart.
struct Terms<const N: usize> {
    pos: [u8; N],
    digit: [i8; N],
    len: usize,
}

impl<const N: usize> Terms<N> {
    fn of(bytes: &[u8; 32], w: u32) -> Self {
        let mut t = Self {
            pos: [0; N],
            digit: [0; N],
            len: 0,
        };
        naf_digits(bytes, w, |pos, digit| {
            if let (Some(p), Some(d)) = (t.pos.get_mut(t.len), t.digit.get_mut(t.len)) {
                *p = u8::try_from(pos).unwrap_or(u8::MAX);
                *d = digit;
                t.len += 1;
            }
        });
        t
    }

    /// Position of the highest term (0 without terms).
    fn last_pos(&self) -> u8 {
        self.len
            .checked_sub(1)
            .and_then(|i| self.pos.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The digit at `pos`, if the term below `*next` is there (moving
    /// `*next` down past it); terms are taken from the top.
    fn take_at(&self, next: &mut usize, pos: u8) -> Option<i8> {
        let i = next.checked_sub(1)?;
        if self.pos.get(i) != Some(&pos) {
            return None;
        }
        *next = i;
        self.digit.get(i).copied()
    }
}

/// P, 3P, 5P, ... (`TABLE_P` entries), ready to be added.
fn odd_multiples(p: &Point) -> [Cached; TABLE_P] {
    let twice = p.double().to_cached();
    let mut table = [p.to_cached(); TABLE_P];
    let mut prev = *p;
    for slot in table.iter_mut().skip(1) {
        prev = prev.add_cached(&twice, false).to_point();
        *slot = prev.to_cached();
    }
    table
}

/// The width-`w` non-adjacent form of a little-endian integer below
/// 2^253, one non-zero digit at a time, lowest first: digit `d` at `pos`
/// weighs `d * 2^pos`, every one is odd and below `2^(w-1)` in magnitude,
/// and of any `w` consecutive digits at most one is non-zero.
fn naf_digits(bytes: &[u8; 32], w: u32, mut emit: impl FnMut(usize, i8)) {
    let mask = (1u32 << w) - 1;
    let half = 1u32 << (w - 1);
    let mut carry = 0u32;
    let mut pos = 0usize;
    while pos < DIGITS {
        let window = carry + (bits(bytes, pos) & mask);
        if window & 1 == 0 {
            // Even: digit 0; a carry carries on upwards with the next bit.
            pos += 1;
            continue;
        }
        // Odd, in [1, 2^w): a digit below half, or one borrowing 2^w from
        // the next position.
        let value = i16::try_from(window).unwrap_or(0);
        let digit = if window < half {
            carry = 0;
            value
        } else {
            carry = 1;
            value - (1i16 << w)
        };
        emit(pos, i8::try_from(digit).unwrap_or(0));
        pos += w as usize;
    }
}

/// All 256 digits of the width-`w` NAF (for the tests).
#[cfg(test)]
pub(crate) fn naf(bytes: &[u8; 32], w: u32) -> [i8; DIGITS] {
    let mut digits = [0i8; DIGITS];
    naf_digits(bytes, w, |pos, d| digits[pos] = d);
    digits
}

/// The 24 bits of `bytes` (little-endian) from bit `pos` on, fewer past the
/// end (zeros).
fn bits(bytes: &[u8; 32], pos: usize) -> u32 {
    let byte = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
    let at = pos / 8;
    let word = byte(at) | (byte(at + 1) << 8) | (byte(at + 2) << 16);
    word >> (pos % 8)
}

/// The group order l = 2^252 + 27742317777372353535851937790883648493,
/// little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether a little-endian scalar is below l (RFC 8032's "S < L").
pub(crate) fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    // The first byte from the top where they differ decides.
    for (a, b) in s.iter().zip(L.iter()).rev() {
        if a != b {
            return a < b;
        }
    }
    false
}

/// A 512-bit little-endian integer (a SHA-512 digest) modulo l.
///
/// With `c = l - 2^252` (16 bytes), `2^256 = 16 * 2^252 ≡ -16c (mod l)`:
/// each byte at position `i ≥ 32` is folded into the 16 bytes from
/// `i - 32` as `-16c` times its value, from the top down, with signed
/// byte limbs and carries. What is left is below 2^256; its bits from 252
/// on are folded the same way (`2^252 ≡ -c`), and a last correction brings
/// the result into `[0, l)`.
pub(crate) fn reduce_wide(h: &[u8; 64]) -> [u8; 32] {
    let mut x = [0i64; 64];
    for (limb, b) in x.iter_mut().zip(h.iter()) {
        *limb = i64::from(*b);
    }
    for i in (32..64).rev() {
        let top = x.get(i).copied().unwrap_or(0);
        if let Some(limb) = x.get_mut(i) {
            *limb = 0;
        }
        // Fold into bytes i-32 .. i-13 (c's 16 bytes and 4 zero bytes for
        // the carry to run out), then leave the carry at i-12.
        let mut carry = 0i64;
        for (j, l) in (i - 32..i - 12).zip(L.iter()) {
            if let Some(limb) = x.get_mut(j) {
                *limb += carry - 16 * top * i64::from(*l);
                // Round to nearest: limbs stay in [-128, 128).
                carry = (*limb + 128) >> 8;
                *limb -= carry << 8;
            }
        }
        if let Some(limb) = x.get_mut(i - 12) {
            *limb += carry;
        }
    }
    // Now below 2^256 (signed limbs): fold the bits from 252 on, q = x >> 252.
    let q = x.get(31).copied().unwrap_or(0) >> 4;
    let mut carry = 0i64;
    for (limb, l) in x.iter_mut().zip(L.iter()) {
        *limb += carry - q * i64::from(*l);
        carry = *limb >> 8;
        *limb &= 0xff;
    }
    // The result is x + carry * 2^256 with carry in {-1, 0}; adding back
    // l * (-carry) when negative brings it into [0, l).
    for (limb, l) in x.iter_mut().zip(L.iter()) {
        *limb -= carry * i64::from(*l);
    }
    let mut out = [0u8; 32];
    let mut carry = 0i64;
    for (o, limb) in out.iter_mut().zip(x.iter()) {
        let v = *limb + carry;
        carry = v >> 8;
        *o = u8::try_from(v & 0xff).unwrap_or(0);
    }
    out
}

#[cfg(test)]
mod tests;
