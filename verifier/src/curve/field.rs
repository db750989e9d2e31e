//! Arithmetic modulo `p = 2^255 - 19` on fiat-crypto's formally verified
//! 32-bit code (`fiat_crypto::curve25519_32`): ten limbs of 25.5 bits, the
//! representation curve25519-dalek's 32-bit backend uses too.
//!
//! fiat-crypto states the bounds each function needs and keeps: sums and
//! differences of two tight elements are loose, products and squares of
//! loose elements are tight again. [`Fe`] is tight and [`Loose`] loose, so
//! the types enforce those bounds: nothing here can overflow a limb.
//!
//! Each fiat-crypto function is inlined into exactly one wrapper below
//! (`inline(never)`), so the multiplication's straight-line code is in
//! flash once.

use fiat_crypto::curve25519_32::{
    fiat_25519_add, fiat_25519_carry, fiat_25519_carry_mul, fiat_25519_from_bytes,
    fiat_25519_loose_field_element, fiat_25519_opp, fiat_25519_relax, fiat_25519_sub,
    fiat_25519_tight_field_element, fiat_25519_to_bytes,
};

/// A field element with tight limb bounds: the result of every product,
/// square and carry, and the input of sums and differences.
#[derive(Clone, Copy)]
pub(crate) struct Fe(pub(crate) fiat_25519_tight_field_element);

/// A field element with loose limb bounds: a sum or difference, fit to be
/// multiplied or carried, not added again.
#[derive(Clone, Copy)]
pub(crate) struct Loose(fiat_25519_loose_field_element);

impl Fe {
    /// 0.
    pub(crate) const ZERO: Self = Self(fiat_25519_tight_field_element([0; 10]));
    /// 1.
    pub(crate) const ONE: Self = Self(fiat_25519_tight_field_element([
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]));

    /// The element of a 32-byte little-endian encoding, its top bit
    /// ignored; values from `p` to `2^255 - 1` are reduced.
    #[inline(never)]
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut b = *bytes;
        if let Some(top) = b.last_mut() {
            *top &= 0x7f;
        }
        let mut out = fiat_25519_tight_field_element([0; 10]);
        fiat_25519_from_bytes(&mut out, &b);
        Self(out)
    }

    /// The canonical encoding: the value below `p`, little-endian, top bit 0.
    #[inline(never)]
    pub(crate) fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        fiat_25519_to_bytes(&mut out, &self.0);
        out
    }

    /// Whether two elements are equal modulo `p`.
    pub(crate) fn equals(&self, other: &Self) -> bool {
        self.encode() == other.encode()
    }

    /// Whether the canonical encoding is odd ("negative", RFC 8032).
    pub(crate) fn is_negative(&self) -> bool {
        self.encode().first().is_some_and(|b| b & 1 == 1)
    }

    /// `self + rhs`.
    #[inline(never)]
    pub(crate) fn add(&self, rhs: &Self) -> Loose {
        let mut out = fiat_25519_loose_field_element([0; 10]);
        fiat_25519_add(&mut out, &self.0, &rhs.0);
        Loose(out)
    }

    /// `self - rhs`.
    #[inline(never)]
    pub(crate) fn sub(&self, rhs: &Self) -> Loose {
        let mut out = fiat_25519_loose_field_element([0; 10]);
        fiat_25519_sub(&mut out, &self.0, &rhs.0);
        Loose(out)
    }

    /// `-self`.
    #[inline(never)]
    pub(crate) fn neg(&self) -> Loose {
        let mut out = fiat_25519_loose_field_element([0; 10]);
        fiat_25519_opp(&mut out, &self.0);
        Loose(out)
    }

    /// The same element with loose bounds (the limbs are unchanged).
    pub(crate) fn relax(&self) -> Loose {
        let mut out = fiat_25519_loose_field_element([0; 10]);
        fiat_25519_relax(&mut out, &self.0);
        Loose(out)
    }

    /// `self * rhs`.
    pub(crate) fn mul(&self, rhs: &Self) -> Self {
        self.relax().mul(&rhs.relax())
    }

    /// `self^2`.
    pub(crate) fn square(&self) -> Self {
        self.relax().square()
    }

    /// `self^(2^k)`.
    fn square_times(&self, k: u32) -> Self {
        let mut x = *self;
        for _ in 0..k {
            x = x.square();
        }
        x
    }

    /// `self^((p-5)/8) = self^(2^252 - 3)`, for square roots: the addition
    /// chain of RFC 8032's reference code (250 squarings, 11 products).
    pub(crate) fn pow_p58(&self) -> Self {
        let z2 = self.square();
        let z9 = self.mul(&z2.square_times(2));
        let z11 = z2.mul(&z9);
        let z_5_0 = z9.mul(&z11.square());
        let z_10_0 = z_5_0.square_times(5).mul(&z_5_0);
        let z_20_0 = z_10_0.square_times(10).mul(&z_10_0);
        let z_40_0 = z_20_0.square_times(20).mul(&z_20_0);
        let z_50_0 = z_40_0.square_times(10).mul(&z_10_0);
        let z_100_0 = z_50_0.square_times(50).mul(&z_50_0);
        let z_200_0 = z_100_0.square_times(100).mul(&z_100_0);
        let z_250_0 = z_200_0.square_times(50).mul(&z_50_0);
        z_250_0.square_times(2).mul(self)
    }
}

impl Loose {
    /// `self * rhs`.
    #[inline(never)]
    pub(crate) fn mul(&self, rhs: &Self) -> Fe {
        let mut out = fiat_25519_tight_field_element([0; 10]);
        fiat_25519_carry_mul(&mut out, &self.0, &rhs.0);
        Fe(out)
    }

    /// `self^2`, as a product: fiat-crypto's squaring saves a fifth of the
    /// work of a square but costs firmware another kilobyte of flash.
    pub(crate) fn square(&self) -> Fe {
        self.mul(self)
    }

    /// The same element with tight bounds.
    #[inline(never)]
    pub(crate) fn carry(&self) -> Fe {
        let mut out = fiat_25519_tight_field_element([0; 10]);
        fiat_25519_carry(&mut out, &self.0);
        Fe(out)
    }
}
