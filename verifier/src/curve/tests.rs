//! Every operation against curve25519-dalek.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use proptest::prelude::*;

use super::*;

fn ours(p: &EdwardsPoint) -> Point {
    decompress(&p.compress().to_bytes()).unwrap()
}

fn limbs(f: &Fe) -> [u32; 10] {
    // Canonical limbs: decoded from the canonical encoding.
    Fe::from_bytes(&f.encode()).0 .0
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn constants_are_exact() {
    // d = -121665/121666 and sqrt(-1), as RFC 8032 and curve25519-dalek
    // encode them.
    let d = Fe::from_bytes(&hex32(
        "a3785913ca4deb75abd841414d0a700098e879777940c78c73fe6f2bee6c0352",
    ));
    let sqrt_m1 = Fe::from_bytes(&hex32(
        "b0a00e4a271beec478e42fad0618432fa7d7fb3d99004d2b0bdfc14f8024832b",
    ));
    let d2 = d.add(&d).carry();
    let want = format!(
        "D {:?}\nD2 {:?}\nSQRT_M1 {:?}",
        limbs(&d),
        limbs(&d2),
        limbs(&sqrt_m1)
    );
    let have = format!(
        "D {:?}\nD2 {:?}\nSQRT_M1 {:?}",
        D.0 .0, D2.0 .0, SQRT_M1.0 .0
    );
    assert_eq!(have, want);
    // sqrt(-1)^2 = -1; d * 121666 = -121665.
    assert!(sqrt_m1.square().equals(&Fe::ONE.neg().carry()));
    let n = |v: u32| {
        Fe::from_bytes(&{
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&v.to_le_bytes());
            b
        })
    };
    assert!(d.mul(&n(121_666)).equals(&n(121_665).neg().carry()));
}

#[test]
fn base_point_table_is_exact() {
    let b = ours(&ED25519_BASEPOINT_POINT);
    let mut multiple = ED25519_BASEPOINT_POINT;
    let mut src = String::new();
    let mut same = true;
    for (i, have) in table::ODD_MULTIPLES_OF_B.iter().enumerate() {
        let want = ours(&multiple).to_affine_cached();
        let w = [&want.y_plus_x, &want.y_minus_x, &want.xy2d].map(limbs);
        let h = [&have.y_plus_x, &have.y_minus_x, &have.xy2d].map(|f| f.0 .0);
        same &= w == h;
        src.push_str(&format!(
            "    // [{}]B\n    entry(\n        {:?},\n        {:?},\n        {:?},\n    ),\n",
            2 * i + 1,
            w[0],
            w[1],
            w[2]
        ));
        multiple += ED25519_BASEPOINT_POINT + ED25519_BASEPOINT_POINT;
    }
    assert!(same, "the table should read:\n{src}");
    assert_eq!(table::ODD_MULTIPLES_OF_B.len(), 1 << (table::WIDTH - 2));
    // The affine entries add like the points they stand for.
    let sum = b
        .add_affine(&table::ODD_MULTIPLES_OF_B[1], false)
        .to_point();
    assert_eq!(
        sum.compress(),
        (ED25519_BASEPOINT_POINT * Scalar::from(4u8)).compress().0
    );
}

#[test]
fn decompress_matches_dalek_on_every_kind_of_encoding() {
    let mut cases: Vec<[u8; 32]> = Vec::new();
    for t in EIGHT_TORSION {
        let enc = t.compress().to_bytes();
        cases.push(enc);
        let mut flipped = enc;
        flipped[31] ^= 0x80;
        cases.push(flipped);
    }
    // y >= p (non-canonical), with either sign.
    for k in 0..19u8 {
        for sign in [0, 0x80] {
            let mut enc = [0xff; 32];
            enc[0] = 0xed + k;
            enc[31] = 0x7f | sign;
            cases.push(enc);
        }
    }
    cases.push([0; 32]);
    cases.push([0xff; 32]);
    for seed in 0..200u32 {
        let bytes: [u8; 32] = core::array::from_fn(|i| {
            (seed.wrapping_mul(2_654_435_761) >> (i % 24)) as u8 ^ i as u8
        });
        cases.push(bytes);
        cases.push(
            (ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order(bytes))
                .compress()
                .to_bytes(),
        );
    }
    let mut valid = 0;
    for enc in cases {
        let theirs = CompressedEdwardsY(enc).decompress();
        let mine = decompress(&enc);
        assert_eq!(mine.is_some(), theirs.is_some(), "{enc:02x?}");
        if let (Some(m), Some(t)) = (mine, theirs) {
            valid += 1;
            assert_eq!(m.compress(), t.compress().to_bytes(), "{enc:02x?}");
            assert_eq!(is_small_order(&m), t.is_small_order(), "{enc:02x?}");
            assert_eq!(m.neg().compress(), (-t).compress().to_bytes());
        }
    }
    assert!(valid > 200, "{valid}");
}

#[test]
fn small_order_points_and_mixed_order_ones() {
    let g = ED25519_BASEPOINT_POINT * Scalar::from(12_345u64);
    for t in EIGHT_TORSION {
        assert!(is_small_order(&ours(&t)));
        assert!(!is_small_order(&ours(&(g + t))));
    }
    assert!(is_small_order(&Point::IDENTITY));
    assert!(!is_small_order(&ours(&ED25519_BASEPOINT_POINT)));
}

fn naf_value(digits: &[i8; DIGITS]) -> Scalar {
    let mut acc = Scalar::ZERO;
    for &d in digits.iter().rev() {
        acc += acc;
        let m = Scalar::from(u64::from(d.unsigned_abs()));
        if d >= 0 {
            acc += m;
        } else {
            acc -= m;
        }
    }
    acc
}

fn check_naf(s: &Scalar, w: u32) {
    let digits = naf(s.as_bytes(), w);
    assert_eq!(naf_value(&digits), *s, "width {w}");
    for (i, &d) in digits.iter().enumerate() {
        if d != 0 {
            assert!(
                d % 2 != 0 && i32::from(d).abs() < 1 << (w - 1),
                "digit {d} at {i}"
            );
            assert!(
                digits
                    .iter()
                    .skip(i + 1)
                    .take(w as usize - 1)
                    .all(|&e| e == 0),
                "adjacent digits at {i}, width {w}"
            );
        }
    }
}

fn edge_scalars() -> Vec<Scalar> {
    let mut ones = [0xffu8; 32];
    ones[31] = 0x0f;
    Vec::from([
        Scalar::ZERO,
        Scalar::ONE,
        Scalar::from(7u8),
        Scalar::from(8u8),
        -Scalar::ONE,
        -Scalar::from(8u8),
        Scalar::from_bytes_mod_order([0xff; 32]),
        Scalar::from_bytes_mod_order(ones),
        Scalar::from(u64::MAX),
    ])
}

#[test]
fn naf_of_edge_scalars_at_every_width() {
    for w in 2..=8 {
        for s in edge_scalars() {
            check_naf(&s, w);
        }
    }
    // The densest NAFs fill the term arrays equation() sizes, never more.
    let dense = Scalar::from_bytes_mod_order([0x55; 32]);
    for s in edge_scalars().into_iter().chain([dense]) {
        for w in [WIDTH_P, table::WIDTH] {
            let n = naf(s.as_bytes(), w).iter().filter(|d| **d != 0).count();
            assert!(n <= DIGITS / w as usize + 1, "{n} terms at width {w}");
        }
    }
}

/// `equation` against curve25519-dalek's double-base multiplication.
fn agrees(k: &Scalar, p: &EdwardsPoint, s: &Scalar) {
    let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(k, p, s);
    let r_ours = ours(&r);
    assert!(equation(k.as_bytes(), &ours(p), s.as_bytes(), &r_ours));
    let wrong = ours(&(r + ED25519_BASEPOINT_POINT));
    assert!(!equation(k.as_bytes(), &ours(p), s.as_bytes(), &wrong));
}

#[test]
fn equation_on_edge_scalars_and_small_order_points() {
    let g = ED25519_BASEPOINT_POINT * Scalar::from(12_345u64);
    let mut points = Vec::from([EdwardsPoint::identity(), g, -g]);
    for t in EIGHT_TORSION {
        points.push(t);
        points.push(g + t);
    }
    for p in &points {
        for k in edge_scalars() {
            for s in edge_scalars() {
                agrees(&k, p, &s);
            }
        }
    }
}

#[test]
fn reduce_wide_and_canonical_scalars_on_edges() {
    let l_minus_1 = -Scalar::ONE;
    let mut cases: Vec<[u8; 64]> = Vec::from([[0; 64], [0xff; 64]]);
    let mut l = [0u8; 64];
    l[..32].copy_from_slice(&L);
    cases.push(l);
    let mut l1 = [0u8; 64];
    l1[..32].copy_from_slice(l_minus_1.as_bytes());
    cases.push(l1);
    let mut top = [0u8; 64];
    top[63] = 0x80;
    cases.push(top);
    for h in cases {
        assert_eq!(
            reduce_wide(&h),
            Scalar::from_bytes_mod_order_wide(&h).to_bytes(),
            "{h:02x?}"
        );
    }
    assert!(is_canonical_scalar(l_minus_1.as_bytes()));
    assert!(!is_canonical_scalar(&L));
    assert!(is_canonical_scalar(&[0; 32]));
    assert!(!is_canonical_scalar(&[0xff; 32]));
    let mut l_plus_1 = L;
    l_plus_1[0] += 1;
    assert!(!is_canonical_scalar(&l_plus_1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn naf_reconstructs_any_scalar(bytes in any::<[u8; 32]>(), w in 2u32..=8) {
        check_naf(&Scalar::from_bytes_mod_order(bytes), w);
    }

    #[test]
    fn terms_are_the_naf_digits(bytes in any::<[u8; 32]>()) {
        let s = Scalar::from_bytes_mod_order(bytes);
        for w in [WIDTH_P, table::WIDTH] {
            let digits = naf(s.as_bytes(), w);
            let want: Vec<(u8, i8)> = digits
                .iter()
                .enumerate()
                .filter(|(_, d)| **d != 0)
                .map(|(i, d)| (u8::try_from(i).unwrap(), *d))
                .collect();
            let t = Terms::<{ DIGITS / 4 + 1 }>::of(s.as_bytes(), w);
            let have: Vec<(u8, i8)> = t.pos[..t.len].iter().copied().zip(t.digit[..t.len].iter().copied()).collect();
            prop_assert_eq!(have, want);
        }
    }

    #[test]
    fn equation_agrees_with_dalek(
        k in any::<[u8; 32]>(),
        s in any::<[u8; 32]>(),
        p in any::<[u8; 32]>(),
        torsion in 0usize..8,
    ) {
        let k = Scalar::from_bytes_mod_order(k);
        let s = Scalar::from_bytes_mod_order(s);
        let p = ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order(p);
        agrees(&k, &p, &s);
        // Mixed order, as an attacker's key could be.
        agrees(&k, &(p + EIGHT_TORSION[torsion]), &s);
    }

    #[test]
    fn reduce_wide_agrees_with_dalek(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let mut h = [0u8; 64];
        h[..32].copy_from_slice(&a);
        h[32..].copy_from_slice(&b);
        prop_assert_eq!(reduce_wide(&h), Scalar::from_bytes_mod_order_wide(&h).to_bytes());
    }

    #[test]
    fn canonical_scalars_agree_with_dalek(s in any::<[u8; 32]>(), top in any::<u8>()) {
        for bytes in [s, { let mut t = s; t[31] = top & 0x1f; t }] {
            prop_assert_eq!(
                is_canonical_scalar(&bytes),
                bool::from(Scalar::from_canonical_bytes(bytes).is_some())
            );
        }
    }

    #[test]
    fn decompress_agrees_with_dalek(bytes in any::<[u8; 32]>()) {
        let theirs = CompressedEdwardsY(bytes).decompress();
        let mine = decompress(&bytes);
        prop_assert_eq!(mine.is_some(), theirs.is_some());
        if let (Some(m), Some(t)) = (mine, theirs) {
            prop_assert_eq!(m.compress(), t.compress().to_bytes());
        }
    }
}
