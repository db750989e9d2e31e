//! `[a]P + [b]B` with a small stack (feature `small-stack`).
//!
//! curve25519-dalek's variable-time double-base multiplication keeps two
//! 8-entry lookup tables, two 256-digit NAFs and large temporaries on the
//! stack: about 8 KiB on a Cortex-M4, most of a small MCU's stack. This is
//! the same interleaved (Straus) method with width-4 NAFs, so each table has
//! 4 entries (P, 3P, 5P, 7P), built from curve25519-dalek's public point
//! operations: about 2.3 KiB of data on the stack, for roughly a fifth more
//! field multiplications (`bench/REPORT.md` has the measured figures).
//!
//! The result is a group element, whatever method computes it; the tests
//! compare it with curve25519-dalek's on random scalars and points,
//! small-order and mixed-order points included, and the signature tests run
//! every RFC 8032 and Wycheproof vector through both.
//!
//! Variable time is fine here: every input of a verification is public.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;

/// NAF width: digits are odd and lie in `[-7, 7]`.
const WIDTH: u32 = 4;
/// Odd multiples kept per point: P, 3P, 5P, 7P.
const TABLE: usize = 1 << (WIDTH - 2);
/// Digits of a NAF; a reduced scalar is below 2^253, so its width-4 NAF
/// ends by digit 253.
const DIGITS: usize = 256;

/// Computes `[a]p + [b]B` in variable time.
#[must_use]
pub fn double_base(a: &Scalar, p: &EdwardsPoint, b: &Scalar) -> EdwardsPoint {
    let a_naf = naf(a.as_bytes());
    let b_naf = naf(b.as_bytes());
    let p_table = odd_multiples(p);
    let b_table = odd_multiples(&ED25519_BASEPOINT_POINT);

    let mut acc = EdwardsPoint::identity();
    // Doublings owed to `acc`, done in one go before the next addition.
    let mut owed = 0u32;
    let mut started = false;
    for (&da, &db) in a_naf.iter().zip(b_naf.iter()).rev() {
        if started {
            owed += 1;
        }
        if da == 0 && db == 0 {
            continue;
        }
        acc = double_times(acc, owed);
        owed = 0;
        started = true;
        acc = add_digit(acc, &p_table, da);
        acc = add_digit(acc, &b_table, db);
    }
    double_times(acc, owed)
}

/// `[2^n] p`: three doublings at a time through curve25519-dalek's
/// projective doubling (`mul_by_cofactor` is `[8]`), the rest by unified
/// addition, which is complete on this curve.
fn double_times(mut p: EdwardsPoint, mut n: u32) -> EdwardsPoint {
    while n >= 3 {
        p = p.mul_by_cofactor();
        n -= 3;
    }
    for _ in 0..n {
        p = p + p;
    }
    p
}

/// `acc + [digit] P`, with `table` the odd multiples of P.
fn add_digit(acc: EdwardsPoint, table: &[EdwardsPoint; TABLE], digit: i8) -> EdwardsPoint {
    let Some(entry) = table.get(usize::from(digit.unsigned_abs() / 2)) else {
        // Unreachable for digits from `naf`; a wrong sum can only make the
        // signature comparison fail.
        return acc;
    };
    match digit {
        0 => acc,
        d if d > 0 => acc + entry,
        _ => acc - entry,
    }
}

/// P, 3P, 5P, 7P.
fn odd_multiples(p: &EdwardsPoint) -> [EdwardsPoint; TABLE] {
    let twice = p + p;
    let mut table = [*p; TABLE];
    let mut prev = *p;
    for slot in table.iter_mut().skip(1) {
        prev += twice;
        *slot = prev;
    }
    table
}

/// Width-4 non-adjacent form of a little-endian 256-bit integer below
/// 2^255: digit `i` weighs 2^i, every non-zero digit is odd and in
/// `[-7, 7]`, and of any 4 consecutive digits at most one is non-zero.
fn naf(bytes: &[u8; 32]) -> [i8; DIGITS] {
    let mut digits = [0i8; DIGITS];
    let mask = (1u32 << WIDTH) - 1;
    let half = 1u32 << (WIDTH - 1);
    let mut carry = 0u32;
    let mut pos = 0usize;
    while pos < DIGITS {
        let window = carry + (bits(bytes, pos) & mask);
        if window & 1 == 0 {
            // Even window: digit 0. The carry stays: with a carry the low
            // bit was 1, so adding the carry carries on upwards.
            pos += 1;
            continue;
        }
        // Odd window in [1, 15]: a digit in [1, 7] or, borrowing 16 from
        // the next position, in [-7, -1].
        let value = i8::try_from(window).unwrap_or(0);
        let digit = if window < half {
            carry = 0;
            value
        } else {
            carry = 1;
            value - (1i8 << WIDTH)
        };
        if let Some(slot) = digits.get_mut(pos) {
            *slot = digit;
        }
        pos += WIDTH as usize;
    }
    digits
}

/// The 16 bits of `bytes` (little-endian) starting at bit `pos`, zero past
/// the end.
fn bits(bytes: &[u8; 32], pos: usize) -> u32 {
    let byte = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
    let at = pos / 8;
    let word = byte(at) | (byte(at + 1) << 8) | (byte(at + 2) << 16);
    word >> (pos % 8)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec;
    use std::vec::Vec;

    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use proptest::prelude::*;

    fn dalek(a: &Scalar, p: &EdwardsPoint, b: &Scalar) -> EdwardsPoint {
        EdwardsPoint::vartime_double_scalar_mul_basepoint(a, p, b)
    }

    /// The NAF's value, as a scalar: sum of digit * 2^i.
    fn value(digits: &[i8; DIGITS]) -> Scalar {
        let mut acc = Scalar::ZERO;
        for &d in digits.iter().rev() {
            acc += acc;
            let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
            if d >= 0 {
                acc += magnitude;
            } else {
                acc -= magnitude;
            }
        }
        acc
    }

    fn check_naf(s: &Scalar) {
        let digits = naf(s.as_bytes());
        assert_eq!(value(&digits), *s);
        for (i, &d) in digits.iter().enumerate() {
            if d != 0 {
                assert!(d % 2 != 0 && (-7..=7).contains(&d), "digit {d} at {i}");
                let next = digits.iter().skip(i + 1).take(WIDTH as usize - 1);
                assert!(next.copied().all(|e| e == 0), "adjacent digits at {i}");
            }
        }
    }

    /// Edge scalars: 0, 1, small, l - 1, runs of ones (long carries).
    fn edges() -> Vec<Scalar> {
        let mut out = vec![
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(7u8),
            Scalar::from(8u8),
        ];
        out.push(-Scalar::ONE);
        out.push(-Scalar::from(8u8));
        out.push(Scalar::from_bytes_mod_order([0xff; 32]));
        let mut ones = [0xffu8; 32];
        ones[31] = 0x0f;
        out.push(Scalar::from_bytes_mod_order(ones));
        out.push(Scalar::from(u64::MAX));
        out
    }

    #[test]
    fn naf_of_edge_scalars() {
        for s in edges() {
            check_naf(&s);
        }
    }

    #[test]
    fn edge_scalars_and_small_order_points_agree_with_dalek() {
        let g = EdwardsPoint::mul_base(&Scalar::from(12_345u64));
        let mut points = vec![EdwardsPoint::identity(), g, -g];
        for t in EIGHT_TORSION {
            points.push(t);
            points.push(g + t);
        }
        for p in &points {
            for a in edges() {
                for b in edges() {
                    assert_eq!(double_base(&a, p, &b), dalek(&a, p, &b));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn naf_reconstructs_any_scalar(bytes in any::<[u8; 32]>()) {
            check_naf(&Scalar::from_bytes_mod_order(bytes));
        }

        #[test]
        fn agrees_with_dalek(
            a in any::<[u8; 32]>(),
            b in any::<[u8; 32]>(),
            p in any::<[u8; 32]>(),
            torsion in 0usize..8,
        ) {
            let a = Scalar::from_bytes_mod_order(a);
            let b = Scalar::from_bytes_mod_order(b);
            let p = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(p));
            prop_assert_eq!(double_base(&a, &p, &b), dalek(&a, &p, &b));
            // Mixed order, as an attacker's key could be.
            let q = p + EIGHT_TORSION[torsion];
            prop_assert_eq!(double_base(&a, &q, &b), dalek(&a, &q, &b));
        }
    }
}
