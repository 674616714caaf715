//! Hand-written AVX-512 kernels for `exp`, `ln`, `tanh` and `sigmoid`.
//!
//! The compiler vectorises `math.rs` well, but builds 2ⁿ and clamps with integer and blend
//! instructions; AVX-512 has single instructions for both (`vscalefpd` computes `p·2ⁿ` with
//! IEEE overflow and gradual underflow, `vrndscalepd` rounds). That cuts `exp` from about 32 to
//! 20 instructions per vector. `tanh` uses `expm1` (one exponential, no second polynomial):
//! `tanh|x| = −m / (2 + m)` with `m = expm1(−2|x|)`, accurate down to tiny `x`.
//!
//! Same accuracy bounds as `math.rs` (checked by the same ulp sweeps at this level).
//!
//! Each map also has a `_stream` variant with non-temporal stores, for outputs far larger than
//! the last-level cache: the output lines are not read before being written (no
//! read-for-ownership), a quarter less memory traffic for `a + b`.

// Coefficients are written as fitted or as published (fdlibm); the compiler rounds them to
// the nearest float, which is what the error analysis assumes.
#![allow(clippy::excessive_precision)]
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::{Binary, Unary};

/// A unary kernel of this module: callable only once AVX-512 is detected.
pub(super) type UnaryKernel<T> = unsafe fn(&[T], &mut [MaybeUninit<T>]);
/// A binary (slice, slice) kernel of this module.
pub(super) type BinaryKernel<T> = unsafe fn(&[T], &[T], &mut [MaybeUninit<T>]);

// The same coefficients and ln 2 splits as the portable kernels: one definition each.
use super::math::{
    EXP32_Q, EXP64_Q, LG32, LG64, LN2_HI32_EXP, LN2_HI32_LOG, LN2_HI64, LN2_LO32_EXP, LN2_LO32_LOG,
    LN2_LO64,
};

/// Round to nearest, no exceptions (for `vrndscale`).
const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// `r + r²·q(r) ≈ e^r − 1` on `|r| ≤ ln2/2`, and `k` with `x = k·ln2 + r`.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn reduce64(x: __m512d) -> (__m512d, __m512d) {
    let k =
        _mm512_roundscale_pd::<NEAREST>(_mm512_mul_pd(x, _mm512_set1_pd(std::f64::consts::LOG2_E)));
    let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_HI64), x);
    let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_LO64), r);
    let mut q = _mm512_set1_pd(EXP64_Q[9]);
    for &c in EXP64_Q[..9].iter().rev() {
        q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(c));
    }
    (_mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r), k)
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn reduce32(x: __m512) -> (__m512, __m512) {
    let k =
        _mm512_roundscale_ps::<NEAREST>(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)));
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_HI32_EXP), x);
    let r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_LO32_EXP), r);
    let mut q = _mm512_set1_ps(EXP32_Q[4]);
    for &c in EXP32_Q[..4].iter().rev() {
        q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(c));
    }
    (_mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r), k)
}

/// `e^x`, 8 lanes. Clamping keeps `r` small (beyond the clamp the result is `+inf` or 0
/// anyway); `vminpd`/`vmaxpd` return their second operand when either is NaN, so NaN passes.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn exp64(x: __m512d) -> __m512d {
    let x = _mm512_min_pd(_mm512_set1_pd(710.0), x);
    let x = _mm512_max_pd(_mm512_set1_pd(-746.0), x);
    let (pm1, k) = reduce64(x);
    _mm512_scalef_pd(_mm512_add_pd(pm1, _mm512_set1_pd(1.0)), k)
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn exp32(x: __m512) -> __m512 {
    let x = _mm512_min_ps(_mm512_set1_ps(89.0), x);
    let x = _mm512_max_ps(_mm512_set1_ps(-104.0), x);
    let (pm1, k) = reduce32(x);
    _mm512_scalef_ps(_mm512_add_ps(pm1, _mm512_set1_ps(1.0)), k)
}

/// `tanh x`, 8 lanes: `−m / (2 + m)` with `m = expm1(−2|x|) = 2ᵏ·(e^r − 1) + (2ᵏ − 1)`,
/// given x's sign. `|x|` is clamped at 22 (tanh rounds to 1 there); NaN passes.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn tanh64(x: __m512d) -> __m512d {
    let ax = _mm512_abs_pd(x);
    let y = _mm512_mul_pd(
        _mm512_min_pd(_mm512_set1_pd(22.0), ax),
        _mm512_set1_pd(-2.0),
    );
    let (pm1, k) = reduce64(y);
    let one = _mm512_set1_pd(1.0);
    let m = _mm512_add_pd(
        _mm512_scalef_pd(pm1, k),
        _mm512_sub_pd(_mm512_scalef_pd(one, k), one),
    );
    let t = _mm512_div_pd(
        _mm512_sub_pd(_mm512_setzero_pd(), m),
        _mm512_add_pd(_mm512_set1_pd(2.0), m),
    );
    // t ≥ 0 (or NaN): copy x's sign bit in.
    _mm512_or_pd(t, _mm512_and_pd(x, _mm512_set1_pd(-0.0)))
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn tanh32(x: __m512) -> __m512 {
    let ax = _mm512_abs_ps(x);
    let y = _mm512_mul_ps(
        _mm512_min_ps(_mm512_set1_ps(10.0), ax),
        _mm512_set1_ps(-2.0),
    );
    let (pm1, k) = reduce32(y);
    let one = _mm512_set1_ps(1.0);
    let m = _mm512_add_ps(
        _mm512_scalef_ps(pm1, k),
        _mm512_sub_ps(_mm512_scalef_ps(one, k), one),
    );
    let t = _mm512_div_ps(
        _mm512_sub_ps(_mm512_setzero_ps(), m),
        _mm512_add_ps(_mm512_set1_ps(2.0), m),
    );
    _mm512_or_ps(t, _mm512_and_ps(x, _mm512_set1_ps(-0.0)))
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn sigmoid64(x: __m512d) -> __m512d {
    let one = _mm512_set1_pd(1.0);
    let e = exp64(_mm512_sub_pd(_mm512_setzero_pd(), x));
    _mm512_div_pd(one, _mm512_add_pd(one, e))
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn sigmoid32(x: __m512) -> __m512 {
    let one = _mm512_set1_ps(1.0);
    let e = exp32(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(one, _mm512_add_ps(one, e))
}

/// Natural logarithm, 8 lanes: fdlibm's algorithm, with `vgetmantpd`/`vgetexppd` splitting
/// `x = 2ᵉ·m` (subnormals included) instead of integer bit fiddling.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn ln64(x: __m512d) -> __m512d {
    let set = _mm512_set1_pd;
    let m = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_NAN>(x);
    let e = _mm512_getexp_pd(x);
    // m in [√½, √2): halve the upper part and count it in the exponent.
    let big = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(m, set(std::f64::consts::SQRT_2));
    let m = _mm512_mask_mul_pd(m, big, m, set(0.5));
    let e = _mm512_mask_add_pd(e, big, e, set(1.0));
    let f = _mm512_sub_pd(m, set(1.0));
    let s = _mm512_div_pd(f, _mm512_add_pd(set(2.0), f));
    let z = _mm512_mul_pd(s, s);
    let w = _mm512_mul_pd(z, z);
    let t1 = _mm512_mul_pd(
        w,
        _mm512_fmadd_pd(
            w,
            _mm512_fmadd_pd(w, set(LG64[5]), set(LG64[3])),
            set(LG64[1]),
        ),
    );
    let t2 = _mm512_mul_pd(
        z,
        _mm512_fmadd_pd(
            w,
            _mm512_fmadd_pd(
                w,
                _mm512_fmadd_pd(w, set(LG64[6]), set(LG64[4])),
                set(LG64[2]),
            ),
            set(LG64[0]),
        ),
    );
    let r = _mm512_add_pd(t2, t1);
    let hfsq = _mm512_mul_pd(_mm512_mul_pd(set(0.5), f), f);
    let inner = _mm512_fmadd_pd(s, _mm512_add_pd(hfsq, r), _mm512_mul_pd(e, set(LN2_LO64)));
    let y = _mm512_sub_pd(
        _mm512_mul_pd(e, set(LN2_HI64)),
        _mm512_sub_pd(_mm512_sub_pd(hfsq, inner), f),
    );
    // Special values need no blend: getmant gives NaN for x < 0 (sign control "NaN") and for
    // NaN; for ±0 getexp gives -inf and the formula ends in -inf - (+inf) = -inf; for +inf
    // getexp gives +inf, getmant 1, and the formula gives +inf.
    y
}

#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
fn ln32(x: __m512) -> __m512 {
    let set = _mm512_set1_ps;
    let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_NAN>(x);
    let e = _mm512_getexp_ps(x);
    let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, set(std::f32::consts::SQRT_2));
    let m = _mm512_mask_mul_ps(m, big, m, set(0.5));
    let e = _mm512_mask_add_ps(e, big, e, set(1.0));
    let f = _mm512_sub_ps(m, set(1.0));
    let s = _mm512_div_ps(f, _mm512_add_ps(set(2.0), f));
    let z = _mm512_mul_ps(s, s);
    let w = _mm512_mul_ps(z, z);
    let t1 = _mm512_mul_ps(w, _mm512_fmadd_ps(w, set(LG32[3]), set(LG32[1])));
    let t2 = _mm512_mul_ps(z, _mm512_fmadd_ps(w, set(LG32[2]), set(LG32[0])));
    let r = _mm512_add_ps(t2, t1);
    let hfsq = _mm512_mul_ps(_mm512_mul_ps(set(0.5), f), f);
    let inner = _mm512_fmadd_ps(
        s,
        _mm512_add_ps(hfsq, r),
        _mm512_mul_ps(e, set(LN2_LO32_LOG)),
    );
    // Special values as in `ln64`.
    _mm512_sub_ps(
        _mm512_mul_ps(e, set(LN2_HI32_LOG)),
        _mm512_sub_ps(_mm512_sub_ps(hfsq, inner), f),
    )
}

macro_rules! map_f64 {
    ($($name:ident, $stream:ident => $f:ident),*) => {$(
        /// The kernel over a slice with non-temporal (streaming) stores for the aligned body:
        /// no read-for-ownership of the output, which bypasses the caches. For outputs much
        /// larger than the last-level cache.
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        pub(super) fn $stream(src: &[f64], dst: &mut [MaybeUninit<f64>]) {
            assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
            let n = src.len();
            let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<f64>());
            // Elements before the first 64-byte boundary of dst (f64 is 8-byte aligned).
            let head = ((64 - (d as usize) % 64) % 64 / 8).min(n);
            let mut i = 0;
            if head > 0 {
                let mask: __mmask8 = (1u8 << head) - 1;
                // SAFETY: the `head` ≤ n masked lanes are in bounds; the others are not
                // accessed.
                unsafe {
                    let v = _mm512_maskz_loadu_pd(mask, s);
                    _mm512_mask_storeu_pd(d, mask, $f(v));
                }
                i = head;
            }
            while i + 8 <= n {
                // SAFETY: i + 8 ≤ n: in bounds; d + i is 64-byte aligned (after the head),
                // as _mm512_stream_pd requires.
                unsafe { _mm512_stream_pd(d.add(i), $f(_mm512_loadu_pd(s.add(i)))) };
                i += 8;
            }
            if i < n {
                let mask: __mmask8 = (1u8 << (n - i)) - 1;
                // SAFETY: the n − i masked lanes are in bounds; the others are not accessed.
                unsafe {
                    let v = _mm512_maskz_loadu_pd(mask, s.add(i));
                    _mm512_mask_storeu_pd(d.add(i), mask, $f(v));
                }
            }
            // Streaming stores are weakly ordered: fence them before anyone else reads dst.
            _mm_sfence();
        }

        /// The kernel over a slice: full vectors, then one masked vector for the tail.
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        pub(super) fn $name(src: &[f64], dst: &mut [MaybeUninit<f64>]) {
            assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
            let n = src.len();
            let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<f64>());
            let mut i = 0;
            while i + 8 <= n {
                // SAFETY: i + 8 ≤ n = both slices' length: the 8 lanes are in bounds.
                unsafe { _mm512_storeu_pd(d.add(i), $f(_mm512_loadu_pd(s.add(i)))) };
                i += 8;
            }
            if i < n {
                let mask: __mmask8 = (1u8 << (n - i)) - 1;
                // SAFETY: masked lanes (the n − i < 8 remaining) are in bounds; the others are
                // neither read nor written (AVX-512 masked accesses do not fault on them).
                unsafe {
                    let v = _mm512_maskz_loadu_pd(mask, s.add(i));
                    _mm512_mask_storeu_pd(d.add(i), mask, $f(v));
                }
            }
        }
    )*};
}

macro_rules! map_f32 {
    ($($name:ident, $stream:ident => $f:ident),*) => {$(
        /// The kernel with non-temporal stores for the aligned body (see `map_f64`).
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        pub(super) fn $stream(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
            assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
            let n = src.len();
            let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<f32>());
            let head = ((64 - (d as usize) % 64) % 64 / 4).min(n);
            let mut i = 0;
            if head > 0 {
                let mask: __mmask16 = (1u16 << head) - 1;
                // SAFETY: the `head` ≤ n masked lanes are in bounds; the others are not
                // accessed.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(mask, s);
                    _mm512_mask_storeu_ps(d, mask, $f(v));
                }
                i = head;
            }
            while i + 16 <= n {
                // SAFETY: i + 16 ≤ n: in bounds; d + i is 64-byte aligned after the head.
                unsafe { _mm512_stream_ps(d.add(i), $f(_mm512_loadu_ps(s.add(i)))) };
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u16 << (n - i)) - 1;
                // SAFETY: the n − i masked lanes are in bounds; the others are not accessed.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(mask, s.add(i));
                    _mm512_mask_storeu_ps(d.add(i), mask, $f(v));
                }
            }
            _mm_sfence();
        }

        /// The kernel over a slice: full vectors, then one masked vector for the tail.
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        pub(super) fn $name(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
            assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
            let n = src.len();
            let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<f32>());
            let mut i = 0;
            while i + 16 <= n {
                // SAFETY: i + 16 ≤ n = both slices' length: the 16 lanes are in bounds.
                unsafe { _mm512_storeu_ps(d.add(i), $f(_mm512_loadu_ps(s.add(i)))) };
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u16 << (n - i)) - 1;
                // SAFETY: masked lanes (the n − i < 16 remaining) are in bounds; the others
                // are neither read nor written.
                unsafe {
                    let v = _mm512_maskz_loadu_ps(mask, s.add(i));
                    _mm512_mask_storeu_ps(d.add(i), mask, $f(v));
                }
            }
        }
    )*};
}

/// `√x` (the IEEE instruction), for the streaming variant.
#[inline]
#[target_feature(enable = "avx512f")]
fn sqrt64(x: __m512d) -> __m512d {
    _mm512_sqrt_pd(x)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sqrt32(x: __m512) -> __m512 {
    _mm512_sqrt_ps(x)
}

map_f64!(
    exp_f64, exp_f64_stream => exp64,
    ln_f64, ln_f64_stream => ln64,
    sqrt_f64, sqrt_f64_stream => sqrt64,
    tanh_f64, tanh_f64_stream => tanh64,
    sigmoid_f64, sigmoid_f64_stream => sigmoid64
);
map_f32!(
    exp_f32, exp_f32_stream => exp32,
    ln_f32, ln_f32_stream => ln32,
    sqrt_f32, sqrt_f32_stream => sqrt32,
    tanh_f32, tanh_f32_stream => tanh32,
    sigmoid_f32, sigmoid_f32_stream => sigmoid32
);

/// `dst[i] = a[i] op b[i]` with streaming stores for the aligned body.
macro_rules! binary_stream {
    ($($name:ident: $t:ty, $lanes:literal, $mask:ty, $load:ident, $mload:ident, $mstore:ident,
       $stream:ident, $op:ident);* $(;)?) => {$(
        #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
        pub(super) fn $name(a: &[$t], b: &[$t], dst: &mut [MaybeUninit<$t>]) {
            assert!(a.len() == dst.len() && b.len() == dst.len(), "kernel slices differ");
            let n = dst.len();
            let (pa, pb, d) = (a.as_ptr(), b.as_ptr(), dst.as_mut_ptr().cast::<$t>());
            let size = std::mem::size_of::<$t>();
            let head = ((64 - (d as usize) % 64) % 64 / size).min(n);
            let mut i = 0;
            if head > 0 {
                let mask: $mask = ((1u32 << head) - 1) as $mask;
                // SAFETY: the `head` ≤ n masked lanes are in bounds; others not accessed.
                unsafe { $mstore(d, mask, $op($mload(mask, pa), $mload(mask, pb))) };
                i = head;
            }
            while i + $lanes <= n {
                // SAFETY: in bounds (i + lanes ≤ n); d + i is 64-byte aligned after the head.
                unsafe { $stream(d.add(i), $op($load(pa.add(i)), $load(pb.add(i)))) };
                i += $lanes;
            }
            if i < n {
                let mask: $mask = ((1u32 << (n - i)) - 1) as $mask;
                // SAFETY: the n − i masked lanes are in bounds; others not accessed.
                unsafe {
                    $mstore(d.add(i), mask, $op($mload(mask, pa.add(i)), $mload(mask, pb.add(i))))
                };
            }
            _mm_sfence();
        }
    )*};
}

binary_stream! {
    add_f64_stream: f64, 8, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd, _mm512_stream_pd, _mm512_add_pd;
    sub_f64_stream: f64, 8, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd, _mm512_stream_pd, _mm512_sub_pd;
    mul_f64_stream: f64, 8, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd, _mm512_stream_pd, _mm512_mul_pd;
    div_f64_stream: f64, 8, __mmask8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
        _mm512_mask_storeu_pd, _mm512_stream_pd, _mm512_div_pd;
    add_f32_stream: f32, 16, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_stream_ps, _mm512_add_ps;
    sub_f32_stream: f32, 16, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_stream_ps, _mm512_sub_ps;
    mul_f32_stream: f32, 16, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_stream_ps, _mm512_mul_ps;
    div_f32_stream: f32, 16, __mmask16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_mask_storeu_ps, _mm512_stream_ps, _mm512_div_ps;
}

macro_rules! tables {
    ($($t:ty: $unary:ident, $binary:ident,
       [$exp:ident $exps:ident, $ln:ident $lns:ident, $sqrt:ident $sqrts:ident,
        $tanh:ident $tanhs:ident, $sig:ident $sigs:ident],
       [$add:ident, $sub:ident, $mul:ident, $div:ident]);*) => {$(
        /// The AVX-512 kernel for `op`, with streaming stores or not.
        pub(super) fn $unary(op: Unary, stream: bool) -> UnaryKernel<$t> {
            match (op, stream) {
                (Unary::Exp, false) => $exp,
                (Unary::Exp, true) => $exps,
                (Unary::Ln, false) => $ln,
                (Unary::Ln, true) => $lns,
                (Unary::Sqrt, false) => $sqrt,
                (Unary::Sqrt, true) => $sqrts,
                (Unary::Tanh, false) => $tanh,
                (Unary::Tanh, true) => $tanhs,
                (Unary::Sigmoid, false) => $sig,
                (Unary::Sigmoid, true) => $sigs,
            }
        }

        /// The streaming AVX-512 kernel for `a op b`.
        pub(super) fn $binary(op: Binary) -> BinaryKernel<$t> {
            match op {
                Binary::Add => $add,
                Binary::Sub => $sub,
                Binary::Mul => $mul,
                Binary::Div => $div,
            }
        }
    )*};
}

tables! {
    f64: unary_f64, binary_stream_f64,
        [exp_f64 exp_f64_stream, ln_f64 ln_f64_stream, sqrt_f64 sqrt_f64_stream,
         tanh_f64 tanh_f64_stream, sigmoid_f64 sigmoid_f64_stream],
        [add_f64_stream, sub_f64_stream, mul_f64_stream, div_f64_stream];
    f32: unary_f32, binary_stream_f32,
        [exp_f32 exp_f32_stream, ln_f32 ln_f32_stream, sqrt_f32 sqrt_f32_stream,
         tanh_f32 tanh_f32_stream, sigmoid_f32 sigmoid_f32_stream],
        [add_f32_stream, sub_f32_stream, mul_f32_stream, div_f32_stream]
}
