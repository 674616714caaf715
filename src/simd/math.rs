//! The scalar algorithms of the vector kernels: `exp`, `ln`, `tanh`, `sigmoid` for one lane.
//!
//! Each function is branch-free (selects, bit manipulation, polynomials), so that a loop over a
//! slice calling it is vectorised by the compiler inside a `#[target_feature]` function: the
//! same source gives the AVX-512, the AVX2+FMA and the portable kernels. `FMA` says whether
//! `a·b + c` is fused (`mul_add`, one rounding) or two operations (the portable path, where
//! `mul_add` would be a slow library call on CPUs without FMA).
//!
//! Accuracy, measured by the ulp sweeps in `super::tests` and `tests/elementwise_properties.rs`
//! against the correctly rounded result (f64 functions against a double-double or `f64` std
//! function evaluated with higher-precision checks, f32 functions against `f64` std functions):
//!
//! | function | f64 max error | f32 max error |
//! |---|---|---|
//! | `exp` | ≤ 2 ulp | ≤ 2 ulp |
//! | `ln` | ≤ 2 ulp | ≤ 2 ulp |
//! | `tanh` | ≤ 4 ulp | ≤ 4 ulp |
//! | `sigmoid` | ≤ 4 ulp | ≤ 4 ulp |
//!
//! IEEE special values follow numpy: `exp(+inf) = +inf`, `exp(-inf) = 0`, overflow to `+inf`,
//! gradual underflow to subnormals and then 0, NaN in gives NaN out; `ln(±0) = -inf`,
//! `ln(x < 0) = NaN`, `ln(+inf) = +inf`; `tanh(±inf) = ±1`, `tanh(-0) = -0`.

// Coefficients are written as fitted or as published (fdlibm); the compiler rounds them to
// the nearest float, which is what the error analysis assumes.
#![allow(clippy::excessive_precision)]

/// `a·b + c`, fused when `FMA`.
#[inline(always)]
fn fma64<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `a·b + c`, fused when `FMA`.
#[inline(always)]
fn fma32<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// ln 2 split so that n·LN2_HI64 is exact for |n| < 2¹¹ (fdlibm's constants).
pub(super) const LN2_HI64: f64 = 6.931_471_803_691_238_164_9e-1;
pub(super) const LN2_LO64: f64 = 1.908_214_929_270_587_700_02e-10;
/// ln 2 split for f32 `exp`: 0x3f317200, n·LN2_HI32_EXP exact for |n| < 2⁹.
pub(super) const LN2_HI32_EXP: f32 = 6.931_457_5e-1;
pub(super) const LN2_LO32_EXP: f32 = 1.428_606_8e-6;
/// ln 2 split for f32 `log` (fdlibm's `logf`): 0x3f317180 and 0x3717f7d1.
pub(super) const LN2_HI32_LOG: f32 = 6.931_381_2e-1;
pub(super) const LN2_LO32_LOG: f32 = 9.058_000_6e-6;

/// Coefficients of `q` in `e^r = 1 + r + r²·q(r)` on `|r| ≤ ln2/2` (Chebyshev fit, degree 9).
pub(super) const EXP64_Q: [f64; 10] = [
    0.500_000_000_000_000_1,
    0.166_666_666_666_666_67,
    0.041_666_666_666_624_16,
    0.008_333_333_333_330_064,
    0.001_388_888_891_719_671_9,
    0.000_198_412_698_630_405_45,
    0.000_024_801_521_322_368_693,
    0.000_002_755_726_848_031_002_6,
    0.000_000_276_200_758_799_833_67,
    0.000_000_025_100_375_832_561_234,
];

/// `e^x` for one f64 lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn exp_f64<const FMA: bool>(x: f64) -> f64 {
    // 1.5·2⁵²: adding it rounds to an integer, held in the low mantissa bits.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    // Beyond these, the result is +inf or 0 anyway; clamping keeps 2ⁿ representable as two
    // factors. NaN fails both comparisons and passes through.
    let x = x.clamp(-746.0, 710.0);
    let z = fma64::<FMA>(x, std::f64::consts::LOG2_E, MAGIC);
    let nf = z - MAGIC;
    let r = fma64::<FMA>(nf, -LN2_HI64, x);
    let r = fma64::<FMA>(nf, -LN2_LO64, r);
    let mut q = EXP64_Q[9];
    for &c in EXP64_Q[..9].iter().rev() {
        q = fma64::<FMA>(q, r, c);
    }
    let p = fma64::<FMA>(r * r, q, r) + 1.0;
    // n = round(x/ln2) from the bits of z, in [-1077, 1025] after the clamp; 2ⁿ is built as
    // 2^n1 · 2^n2 with both halves normal, so that overflow and gradual underflow happen in the
    // last multiplication, rounded once.
    let n = (z.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let n1 = ((n.wrapping_add(1080) as u64) >> 1) as i64 - 540;
    let n2 = n.wrapping_sub(n1);
    let s1 = f64::from_bits((n1.wrapping_add(1023) as u64) << 52);
    let s2 = f64::from_bits((n2.wrapping_add(1023) as u64) << 52);
    p * s1 * s2
}

/// Coefficients of `q` in `e^r = 1 + r + r²·q(r)` on `|r| ≤ ln2/2` (Chebyshev fit, degree 4).
pub(super) const EXP32_Q: [f32; 5] = [
    0.5,
    0.166_665_77,
    0.041_666_556,
    0.008_363_173,
    0.001_392_617_6,
];

/// `e^x` for one f32 lane (≤ 2 ulp).
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³
    let x = x.clamp(-104.0, 89.0);
    let z = fma32::<FMA>(x, std::f32::consts::LOG2_E, MAGIC);
    let nf = z - MAGIC;
    let r = fma32::<FMA>(nf, -LN2_HI32_EXP, x);
    let r = fma32::<FMA>(nf, -LN2_LO32_EXP, r);
    let mut q = EXP32_Q[4];
    for &c in EXP32_Q[..4].iter().rev() {
        q = fma32::<FMA>(q, r, c);
    }
    let p = fma32::<FMA>(r * r, q, r) + 1.0;
    // n in [-151, 129]; both halves of 2ⁿ stay normal.
    let n = (z.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let n1 = ((n.wrapping_add(160) as u32) >> 1) as i32 - 80;
    let n2 = n.wrapping_sub(n1);
    let s1 = f32::from_bits((n1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((n2.wrapping_add(127) as u32) << 23);
    p * s1 * s2
}

/// fdlibm's `log` polynomial: `log(1+f) = f - f²/2 + s·(f²/2 + R(s²))`, `s = f/(2+f)`.
pub(super) const LG64: [f64; 7] = [
    6.666_666_666_666_735_13e-1,
    3.999_999_999_940_941_908e-1,
    2.857_142_874_366_239_149e-1,
    2.222_219_843_214_978_396e-1,
    1.818_357_216_161_805_012e-1,
    1.531_383_769_920_937_332e-1,
    1.479_819_860_511_658_591e-1,
];

/// Natural logarithm of one f64 lane (≤ 2 ulp; fdlibm's algorithm, branch-free).
#[inline(always)]
pub(crate) fn ln_f64<const FMA: bool>(x: f64) -> f64 {
    const TWO54: f64 = 18_014_398_509_481_984.0;
    const EXP_MAGIC: u64 = 0x4330_0000_0000_0000; // 2⁵², whose low mantissa bits hold an int
                                                  // Subnormals are scaled into the normal range first.
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * TWO54 } else { x };
    let bits = xs.to_bits();
    let biased = (bits >> 52) & 0x7ff;
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // m in [√½, √2): f = m - 1 is small on both sides of 1.
    let big = m > std::f64::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = f64::from_bits(EXP_MAGIC | biased) - (4_503_599_627_370_496.0 + 1023.0);
    let e = e + if big { 1.0 } else { 0.0 } - if sub { 54.0 } else { 0.0 };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * fma64::<FMA>(w, fma64::<FMA>(w, LG64[5], LG64[3]), LG64[1]);
    let t2 = z * fma64::<FMA>(
        w,
        fma64::<FMA>(w, fma64::<FMA>(w, LG64[6], LG64[4]), LG64[2]),
        LG64[0],
    );
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let y = e * LN2_HI64 - ((hfsq - fma64::<FMA>(s, hfsq + r, e * LN2_LO64)) - f);
    // NaN and negatives give NaN (-0.0 is not < 0: ln(-0) = -inf, as IEEE wants).
    if x < 0.0 || x.is_nan() {
        f64::NAN
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        f64::INFINITY
    } else {
        y
    }
}

/// fdlibm's `logf` polynomial.
pub(super) const LG32: [f32; 4] = [0.666_666_6, 0.400_009_72, 0.284_987_87, 0.242_790_79];

/// Natural logarithm of one f32 lane (≤ 2 ulp; fdlibm's `logf`, branch-free).
#[inline(always)]
pub(crate) fn ln_f32<const FMA: bool>(x: f32) -> f32 {
    const TWO25: f32 = 33_554_432.0;
    const EXP_MAGIC: u32 = 0x4b00_0000; // 2²³
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * TWO25 } else { x };
    let bits = xs.to_bits();
    let biased = (bits >> 23) & 0xff;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { m * 0.5 } else { m };
    let e = f32::from_bits(EXP_MAGIC | biased) - (8_388_608.0 + 127.0);
    let e = e + if big { 1.0 } else { 0.0 } - if sub { 25.0 } else { 0.0 };
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * fma32::<FMA>(w, LG32[3], LG32[1]);
    let t2 = z * fma32::<FMA>(w, LG32[2], LG32[0]);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let y = e * LN2_HI32_LOG - ((hfsq - fma32::<FMA>(s, hfsq + r, e * LN2_LO32_LOG)) - f);
    if x < 0.0 || x.is_nan() {
        f32::NAN
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else {
        y
    }
}

/// Coefficients of `q` in `tanh(x) = x + x³·q(x²)` on `|x| < 0.625` (Chebyshev fit, degree 10).
const TANH64_Q: [f64; 11] = [
    -0.333_333_333_333_333_2,
    0.133_333_333_333_266_58,
    -0.053_968_253_961_395_57,
    0.021_869_488_260_559_115,
    -0.008_863_229_830_925_709,
    0.003_592_058_977_473_455_3,
    -0.001_455_309_297_534_643,
    0.000_587_437_286_009_438_2,
    -0.000_230_776_162_695_198_58,
    0.000_079_599_557_352_648_08,
    -0.000_017_244_874_494_844_33,
];

/// `tanh x` for one f64 lane (≤ 4 ulp): an odd polynomial below 0.625, `(e−1)/(e+1)` with
/// `e = exp(2|x|)` above.
#[inline(always)]
pub(crate) fn tanh_f64<const FMA: bool>(x: f64) -> f64 {
    let ax = x.abs();
    // tanh(22) rounds to 1; clamping keeps e finite. NaN passes through.
    let a = if ax > 22.0 { 22.0 } else { ax };
    let e = exp_f64::<FMA>(2.0 * a);
    let large = ((e - 1.0) / (e + 1.0)).copysign(x);
    let z = x * x;
    let mut q = TANH64_Q[10];
    for &c in TANH64_Q[..10].iter().rev() {
        q = fma64::<FMA>(q, z, c);
    }
    // Odd: computed on |x| and given x's sign (so that tanh(-0) = -0).
    let small = fma64::<FMA>(ax * z, q, ax).copysign(x);
    if ax < 0.625 {
        small
    } else {
        large
    }
}

/// Coefficients of `q` in `tanh(x) = x + x³·q(x²)` on `|x| < 0.625` (Chebyshev fit, degree 4).
const TANH32_Q: [f32; 5] = [
    -0.333_333_3,
    0.133_327_7,
    -0.053_850_91,
    0.020_997_18,
    -0.006_096_714,
];

/// `tanh x` for one f32 lane (≤ 4 ulp).
#[inline(always)]
pub(crate) fn tanh_f32<const FMA: bool>(x: f32) -> f32 {
    let ax = x.abs();
    let a = if ax > 10.0 { 10.0 } else { ax };
    let e = exp_f32::<FMA>(2.0 * a);
    let large = ((e - 1.0) / (e + 1.0)).copysign(x);
    let z = x * x;
    let mut q = TANH32_Q[4];
    for &c in TANH32_Q[..4].iter().rev() {
        q = fma32::<FMA>(q, z, c);
    }
    let small = fma32::<FMA>(ax * z, q, ax).copysign(x);
    if ax < 0.625 {
        small
    } else {
        large
    }
}

/// The logistic function `1 / (1 + e^-x)` for one f64 lane (≤ 4 ulp), as numpy computes it.
#[inline(always)]
pub(crate) fn sigmoid_f64<const FMA: bool>(x: f64) -> f64 {
    1.0 / (1.0 + exp_f64::<FMA>(-x))
}

/// The logistic function `1 / (1 + e^-x)` for one f32 lane (≤ 4 ulp).
#[inline(always)]
pub(crate) fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32::<FMA>(-x))
}

/// `√x` for one f64 lane (correctly rounded: the IEEE instruction).
#[inline(always)]
pub(crate) fn sqrt_f64<const FMA: bool>(x: f64) -> f64 {
    x.sqrt()
}

/// `√x` for one f32 lane (correctly rounded).
#[inline(always)]
pub(crate) fn sqrt_f32<const FMA: bool>(x: f32) -> f32 {
    x.sqrt()
}
