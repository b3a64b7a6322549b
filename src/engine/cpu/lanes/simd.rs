//! Lanes of f64 for the lane engine: `V` holds one value of each of `L` walkers, and its
//! operations are loops over the lanes that the compiler turns into SIMD instructions (SSE2,
//! AVX2 or AVX-512, whichever the function they are inlined into is compiled for; see
//! `run_on` in mod.rs). exp, ln and sin/cos are branch-free polynomials so that they
//! vectorise as well: within 1-2 ulp of the C library's, which the scalar engine calls.
//! Everything is `#[inline(always)]` so that it lands inside those functions.

// Lane loops index several arrays at one lane: the form that vectorises cleanly.
#![allow(clippy::needless_range_loop)]
// The polynomial coefficients and split constants are quoted as fdlibm prints them.
#![allow(clippy::excessive_precision)]

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use crate::engine::observables::ROUND_MAGIC;
use crate::rng::{PHILOX_M, philox_bump_key};

/// Walkers per lane group: 8 AVX-512 registers of f64 per value. Wider groups than one
/// register keep several independent operations in flight and spread the per-step bookkeeping;
/// 64 ran fastest (32: 0.8x, 128: 0.8x on the default system).
pub const L: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct V(pub [f64; L]);

/// A lane mask: all ones (true) or all zeros (false) per lane, as SIMD compares give it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Mask(pub [u64; L]);

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub struct U(pub [u32; L]);

impl Default for V {
    fn default() -> V {
        V::ZERO
    }
}

impl V {
    pub const ZERO: V = V([0.0; L]);

    #[inline(always)]
    pub fn splat(v: f64) -> V {
        V([v; L])
    }

    #[inline(always)]
    pub fn map(self, f: impl Fn(f64) -> f64) -> V {
        let mut out = self;
        for l in 0..L {
            out.0[l] = f(self.0[l]);
        }
        out
    }

    #[inline(always)]
    pub fn zip(self, other: V, f: impl Fn(f64, f64) -> f64) -> V {
        let mut out = self;
        for l in 0..L {
            out.0[l] = f(self.0[l], other.0[l]);
        }
        out
    }

    #[inline(always)]
    fn test(self, other: V, f: impl Fn(f64, f64) -> bool) -> Mask {
        let mut out = Mask([0; L]);
        for l in 0..L {
            out.0[l] = 0u64.wrapping_sub(f(self.0[l], other.0[l]) as u64);
        }
        out
    }

    /// The sum of the lanes, added pairwise in halves: that vectorises, where a sum from the
    /// first lane to the last is one chain of dependent additions.
    #[inline(always)]
    pub fn sum(self) -> f64 {
        let mut a = self.0;
        let mut half = L / 2;
        while half > 0 {
            for l in 0..half {
                a[l] += a[l + half];
            }
            half /= 2;
        }
        a[0]
    }

    #[inline(always)]
    pub fn sqrt(self) -> V {
        self.map(f64::sqrt)
    }

    #[inline(always)]
    pub fn abs(self) -> V {
        self.map(f64::abs)
    }

    /// `f64::max` lane by lane (a NaN lane gives the other operand, as the scalar engine's).
    #[inline(always)]
    pub fn max(self, other: V) -> V {
        self.zip(other, f64::max)
    }

    #[inline(always)]
    pub fn gt(self, other: V) -> Mask {
        self.test(other, |a, b| a > b)
    }

    #[inline(always)]
    pub fn is_nan(self) -> Mask {
        self.test(self, |a, b| a != b)
    }

    #[inline(always)]
    pub fn lt(self, other: V) -> Mask {
        self.test(other, |a, b| a < b)
    }

    #[inline(always)]
    pub fn ge(self, other: V) -> Mask {
        self.test(other, |a, b| a >= b)
    }

    #[inline(always)]
    pub fn is_finite(self) -> Mask {
        self.test(self, |a, _| a.is_finite())
    }

    #[inline(always)]
    pub fn to_bits(self) -> [u64; L] {
        let mut out = [0; L];
        for l in 0..L {
            out[l] = self.0[l].to_bits();
        }
        out
    }

    #[inline(always)]
    pub fn from_bits(bits: [u64; L]) -> V {
        let mut out = V::ZERO;
        for l in 0..L {
            out.0[l] = f64::from_bits(bits[l]);
        }
        out
    }
}

/// Lane by lane `f` on 64-bit integers.
#[inline(always)]
fn bitwise(bits: [u64; L], f: impl Fn(u64) -> u64) -> [u64; L] {
    let mut out = bits;
    for l in 0..L {
        out[l] = f(bits[l]);
    }
    out
}

impl Mask {
    /// Every lane set.
    pub const ALL: Mask = Mask([u64::MAX; L]);

    #[inline(always)]
    pub fn from_fn(f: impl Fn(usize) -> bool) -> Mask {
        Mask(std::array::from_fn(|l| 0u64.wrapping_sub(f(l) as u64)))
    }

    #[inline(always)]
    pub fn get(self, l: usize) -> bool {
        self.0[l] != 0
    }

    #[inline(always)]
    pub fn or(self, other: Mask) -> Mask {
        let mut out = self;
        for l in 0..L {
            out.0[l] = self.0[l] | other.0[l];
        }
        out
    }

    #[inline(always)]
    pub fn not(self) -> Mask {
        let mut out = self;
        for l in 0..L {
            out.0[l] = !self.0[l];
        }
        out
    }

    /// Whether any lane is set.
    #[inline(always)]
    pub fn any(self) -> bool {
        self.0.iter().fold(0, |a, b| a | b) != 0
    }

    #[inline(always)]
    pub fn and(self, other: Mask) -> Mask {
        let mut out = self;
        for l in 0..L {
            out.0[l] = self.0[l] & other.0[l];
        }
        out
    }

    /// Lane by lane, `a` where the mask is set, else `b`.
    #[inline(always)]
    pub fn select(self, a: V, b: V) -> V {
        let (a, b) = (a.to_bits(), b.to_bits());
        let mut out = [0; L];
        for l in 0..L {
            out[l] = (a[l] & self.0[l]) | (b[l] & !self.0[l]);
        }
        V::from_bits(out)
    }
}

macro_rules! lanewise {
    ($trait:ident, $method:ident, $op:tt) => {
        impl $trait for V {
            type Output = V;
            #[inline(always)]
            fn $method(self, other: V) -> V {
                self.zip(other, |a, b| a $op b)
            }
        }
        impl $trait<f64> for V {
            type Output = V;
            #[inline(always)]
            fn $method(self, other: f64) -> V {
                self.map(|a| a $op other)
            }
        }
        impl $trait<V> for f64 {
            type Output = V;
            #[inline(always)]
            fn $method(self, other: V) -> V {
                other.map(|b| self $op b)
            }
        }
    };
}

lanewise!(Add, add, +);
lanewise!(Sub, sub, -);
lanewise!(Mul, mul, *);
lanewise!(Div, div, /);

impl Neg for V {
    type Output = V;
    #[inline(always)]
    fn neg(self) -> V {
        self.map(|a| -a)
    }
}

impl AddAssign for V {
    #[inline(always)]
    fn add_assign(&mut self, other: V) {
        *self = *self + other;
    }
}

/// ln 2 split so that n LN2_HI is exact for the n of `exp` and `ln` (fdlibm's ln2_hi, ln2_lo).
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// e^x: x = n ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor series to r^13 (truncation
/// below 1e-17), times 2^n applied in two halves so that subnormal results come out right.
/// Overflow gives inf, underflow 0, NaN stays NaN.
#[inline(always)]
pub fn exp(x: V) -> V {
    const TAYLOR: [f64; 13] = [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ];
    let clamped = x.max(V::splat(-746.0)).zip(V::splat(710.0), f64::min);
    let shifted = clamped * std::f64::consts::LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = (clamped - n * LN2_HI) - n * LN2_LO;
    let mut p = V::splat(1.0 / 6_227_020_800.0);
    for c in TAYLOR {
        p = p * r + c;
    }
    // n sits in the low 32 bits of `shifted`; 2^(n/2) and 2^(n - n/2) as exponent fields
    // (wrapping: only a NaN lane, whose result is NaN anyway, has a garbage n).
    let k = bitwise(shifted.to_bits(), |b| b as u32 as i32 as i64 as u64);
    let half = bitwise(k, |k| (k as i64 >> 1) as u64);
    let field = |e: [u64; L]| V::from_bits(bitwise(e, |e| e.wrapping_add(1023) << 52));
    let rest = std::array::from_fn(|l| k[l].wrapping_sub(half[l]));
    let e = p * field(half) * field(rest);
    let e = x.gt(V::splat(709.8)).select(V::splat(f64::INFINITY), e);
    let e = x.lt(V::splat(-745.2)).select(V::ZERO, e);
    x.is_nan().select(x, e)
}

/// ln x for positive normal x (also +inf, NaN for NaN or negative x, -inf at 0): x = 2^k m
/// with m in [sqrt(2)/2, sqrt(2)), ln m by fdlibm's e_log.c polynomial.
#[inline(always)]
pub fn ln(x: V) -> V {
    const LG: [f64; 7] = [
        6.666_666_666_666_735_130e-1,
        3.999_999_999_940_941_908e-1,
        2.857_142_874_366_239_149e-1,
        2.222_219_843_214_978_396e-1,
        1.818_357_216_161_805_012e-1,
        1.531_383_769_920_937_332e-1,
        1.479_819_860_511_658_591e-1,
    ];
    let bits = x.to_bits();
    let mantissa = V::from_bits(bitwise(bits, |b| {
        (b & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000
    }));
    // The biased exponent, as an f64: 2^52 + e has e in its low bits.
    let biased = V::from_bits(bitwise(bits, |b| (b >> 52) | 0x4330_0000_0000_0000))
        - 4_503_599_627_370_496.0;
    let big = mantissa.gt(V::splat(std::f64::consts::SQRT_2));
    let m = big.select(0.5 * mantissa, mantissa);
    let k = biased - 1023.0 + big.select(V::splat(1.0), V::ZERO);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let hfsq = 0.5 * f * f;
    let r = k * LN2_HI - ((hfsq - (s * (hfsq + t1 + t2) + k * LN2_LO)) - f);
    let positive = x.gt(V::ZERO).and(x.lt(V::splat(f64::INFINITY)));
    // Else: ln(+inf) = inf, ln(+-0) = -inf, NaN for NaN and negative x.
    let special = x.gt(V::ZERO).select(x, V::splat(f64::NEG_INFINITY));
    let special = x
        .is_nan()
        .or(x.lt(V::ZERO))
        .select(V::splat(f64::NAN), special);
    positive.select(r, special)
}

/// (sin a, cos a) for |a| <= pi (Box-Muller's angle): a = k pi/2 + r with |r| <= pi/4 and
/// fdlibm's k_sin.c and k_cos.c polynomials on r.
#[inline(always)]
pub fn sin_cos(a: V) -> (V, V) {
    const PIO2_HI: f64 = 1.570_796_326_734_125_614_17;
    const PIO2_LO: f64 = 6.077_100_506_506_192_249_32e-11;
    const S: [f64; 6] = [
        -1.666_666_666_666_663_243_48e-1,
        8.333_333_333_322_489_461_24e-3,
        -1.984_126_982_985_794_931_34e-4,
        2.755_731_370_707_006_767_89e-6,
        -2.505_076_025_340_686_341_95e-8,
        1.589_690_995_211_550_102_21e-10,
    ];
    const C: [f64; 6] = [
        4.166_666_666_666_660_190_37e-2,
        -1.388_888_888_887_410_957_49e-3,
        2.480_158_728_947_672_941_78e-5,
        -2.755_731_435_139_066_330_35e-7,
        2.087_572_321_298_174_827_90e-9,
        -1.135_964_755_778_819_482_65e-11,
    ];
    let shifted = a * std::f64::consts::FRAC_2_PI + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let quadrant = bitwise(shifted.to_bits(), |b| b & 3);
    let r = (a - n * PIO2_HI) - n * PIO2_LO;
    let z = r * r;
    let sr = S[1] + z * (S[2] + z * (S[3] + z * (S[4] + z * S[5])));
    let s = r + z * r * (S[0] + z * sr);
    let cr = z * (C[0] + z * (C[1] + z * (C[2] + z * (C[3] + z * (C[4] + z * C[5])))));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    let c = w + (((1.0 - w) - hz) + z * cr);
    // Quadrants 1 and 3 swap sine and cosine; the sine's sign flips in 2 and 3, the cosine's
    // in 1 and 2.
    let swap = Mask(bitwise(quadrant, |q| 0u64.wrapping_sub(q & 1)));
    let (sin, cos) = (swap.select(c, s), swap.select(s, c));
    let flip = |v: V, sign: [u64; L]| {
        let bits = v.to_bits();
        V::from_bits(std::array::from_fn(|l| bits[l] ^ (sign[l] << 63)))
    };
    let sin_sign = bitwise(quadrant, |q| q >> 1);
    let cos_sign = bitwise(quadrant, |q| (q ^ (q >> 1)) & 1);
    (flip(sin, sin_sign), flip(cos, cos_sign))
}

/// Philox4x32-10 on `L` counters at once (`crate::rng::philox4x32_10`, lane by lane).
#[inline(always)]
pub fn philox(counter: [U; 4], key: [u32; 2]) -> [U; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = philox_bump_key(k);
        }
        // The round of `crate::rng::philox4x32_10`, written out per lane so it vectorises.
        let mut next = c;
        for l in 0..L {
            let p0 = PHILOX_M[0] * c[0].0[l] as u64;
            let p1 = PHILOX_M[1] * c[2].0[l] as u64;
            next[0].0[l] = (p1 >> 32) as u32 ^ c[1].0[l] ^ k[0];
            next[1].0[l] = p1 as u32;
            next[2].0[l] = (p0 >> 32) as u32 ^ c[3].0[l] ^ k[1];
            next[3].0[l] = p0 as u32;
        }
        c = next;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest distance in ulps between `got` and `want` over lanes.
    fn ulps(got: V, want: [f64; L]) -> u64 {
        (0..L)
            .map(|l| {
                let (g, w) = (got.0[l], want[l]);
                if g == w || (g.is_nan() && w.is_nan()) {
                    0
                } else {
                    (g.to_bits() as i64 - w.to_bits() as i64).unsigned_abs()
                }
            })
            .max()
            .unwrap()
    }

    /// `count` lane groups of values from `lo` to `hi`, evenly spread with an irrational step.
    fn inputs(lo: f64, hi: f64, count: usize) -> impl Iterator<Item = V> {
        (0..count).map(move |i| {
            V(std::array::from_fn(|l| {
                let t = ((i * L + l) as f64 * 0.618_033_988_749_894_8).fract();
                lo + (hi - lo) * t
            }))
        })
    }

    /// `values` repeated over the lanes.
    fn cycled(values: &[f64]) -> V {
        V(std::array::from_fn(|l| values[l % values.len()]))
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_c_library() {
        for x in inputs(-745.0, 709.0, 4_000).chain(inputs(-1.0, 1.0, 4_000)) {
            assert!(ulps(exp(x), x.0.map(f64::exp)) <= 2, "{x:?}");
        }
        let edges = cycled(&[
            -1000.0,
            -745.5,
            710.0,
            1e300,
            f64::NAN,
            0.0,
            -0.0,
            f64::INFINITY,
        ]);
        let want = cycled(&[
            0.0,
            0.0,
            f64::INFINITY,
            f64::INFINITY,
            f64::NAN,
            1.0,
            1.0,
            f64::INFINITY,
        ]);
        assert_eq!(ulps(exp(edges), want.0), 0);
        assert_eq!(exp(V::splat(f64::NEG_INFINITY)), V::ZERO);
    }

    #[test]
    fn ln_is_within_two_ulp_of_the_c_library() {
        for x in inputs(1e-300, 1.0, 4_000)
            .chain(inputs(0.5, 2.0, 4_000))
            .chain(inputs(1.0, 1e300, 4_000))
            .chain(inputs(0.999, 1.001, 1_000))
        {
            assert!(ulps(ln(x), x.0.map(f64::ln)) <= 2, "{x:?}");
        }
        let edges = cycled(&[0.0, -1.0, f64::NAN, f64::INFINITY, 1.0, 2.0, 0.5, f64::MAX]);
        assert_eq!(ulps(ln(edges), edges.0.map(f64::ln)), 0);
    }

    #[test]
    fn sin_cos_are_within_two_ulp_of_the_c_library_on_box_mullers_angles() {
        // Near the zeros an ulp of the result is tiny: compare absolutely there.
        for a in inputs(-std::f64::consts::PI, std::f64::consts::PI, 8_000) {
            let (s, c) = sin_cos(a);
            for l in 0..L {
                let (ws, wc) = a.0[l].sin_cos();
                assert!(
                    (s.0[l] - ws).abs() <= 2.0 * f64::EPSILON * ws.abs().max(1e-3),
                    "{a:?}"
                );
                assert!(
                    (c.0[l] - wc).abs() <= 2.0 * f64::EPSILON * wc.abs().max(1e-3),
                    "{a:?}"
                );
            }
        }
    }

    #[test]
    fn philox_lanes_match_the_scalar_generator() {
        let counter = [
            U(std::array::from_fn(|l| l as u32 * 7919)),
            U([5; L]),
            U([0; L]),
            U(std::array::from_fn(|l| l as u32)),
        ];
        let out = philox(counter, [0xdead_beef, 42]);
        for l in 0..L {
            let scalar = crate::rng::philox4x32_10(counter.map(|c| c.0[l]), [0xdead_beef, 42]);
            assert_eq!(scalar, out.map(|c| c.0[l]));
        }
    }
}
