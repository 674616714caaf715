//! Vector kernels over slices, chosen once at run time from the CPU's features.
//!
//! Every kernel is one scalar algorithm (`math.rs` for the transcendental functions, closures
//! here for arithmetic and the reduction leaves) instantiated three times by [`kernels!`]:
//! inside a `#[target_feature(enable = "avx512f,...")]` function, inside an `avx2,fma` one, and
//! plainly (the portable path, SSE2 on x86-64 and whatever the target has elsewhere). The
//! compiler vectorises each loop for the features of its function; [`SimdLevel::detect`] picks
//! one level once per process. Reductions use a fixed number of accumulators and no fused
//! operations, so every level returns bit-identical sums.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod math;
#[cfg(target_arch = "x86_64")]
mod stream;

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use crate::openblas::kernel::CpuFeatures;

/// The instruction sets the elementwise kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain code (SSE2 on x86-64): runs everywhere.
    Portable,
    /// AVX2 with FMA (Haswell, Zen and later).
    Avx2Fma,
    /// AVX-512 F/DQ/BW/VL (Skylake-X, Ice Lake, Sapphire Rapids, Zen 4).
    Avx512,
}

impl SimdLevel {
    /// The best level this CPU (and OS) supports, from the features
    /// [`CpuFeatures::detect`](crate::kernel::CpuFeatures::detect) reads: every feature the
    /// level's kernels are compiled with (`#[target_feature]`) must be present.
    ///
    /// ```
    /// assert_eq!(parlinalg::SimdLevel::detect(), parlinalg::simd_level());
    /// ```
    pub fn detect() -> Self {
        Self::of(&CpuFeatures::detect())
    }

    /// The best level a CPU with `cpu`'s features runs. Pure.
    pub(crate) fn of(cpu: &CpuFeatures) -> Self {
        let avx2_fma = cpu.x86_64 && cpu.avx2 && cpu.fma;
        if avx2_fma && cpu.avx512f && cpu.avx512dq && cpu.avx512bw && cpu.avx512vl {
            SimdLevel::Avx512
        } else if avx2_fma {
            SimdLevel::Avx2Fma
        } else {
            SimdLevel::Portable
        }
    }

    /// Every level this CPU can run, lowest first (for tests and benches).
    ///
    /// ```
    /// use parlinalg::SimdLevel;
    /// let levels = SimdLevel::available();
    /// assert_eq!(levels[0], SimdLevel::Portable);
    /// assert_eq!(levels.last(), Some(&SimdLevel::detect()));
    /// ```
    pub fn available() -> Vec<SimdLevel> {
        let best = Self::detect();
        [SimdLevel::Portable, SimdLevel::Avx2Fma, SimdLevel::Avx512]
            .into_iter()
            .filter(|l| *l <= best)
            .collect()
    }
}

/// The level every kernel of this process uses (detected once).
///
/// ```
/// println!("elementwise kernels: {:?}", parlinalg::simd_level());
/// ```
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(SimdLevel::detect)
}

/// A unary elementwise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    /// `e^x`
    Exp,
    /// natural logarithm
    Ln,
    /// square root
    Sqrt,
    /// hyperbolic tangent
    Tanh,
    /// `1 / (1 + e^-x)`
    Sigmoid,
}

/// A binary elementwise operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
}

/// How the second operand of a binary kernel is given.
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a, T> {
    /// One value per element.
    Slice(&'a [T]),
    /// The same value for every element (a broadcast axis).
    Scalar(T),
}

/// Elements per reduction leaf: the fixed unit every sum is split into, whatever the thread
/// count. A leaf is summed by [`LANES`] accumulators, each adding `LEAF / LANES` values in
/// order, then combined pairwise.
pub(crate) const LEAF: usize = 1024;
/// Independent accumulators of a reduction leaf.
pub(crate) const LANES: usize = 32;

/// What a reduction leaf computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// `Σx` (-0.0 for nothing: the identity of IEEE addition, so that a sum of negative
    /// zeros keeps its sign).
    Sum,
    /// `Σx²`.
    SumSq,
    /// `Σ(x/scale)²`.
    ScaledSumSq,
    /// The largest element, NaN when any is NaN (`-inf` for nothing).
    Max,
    /// The smallest element, NaN when any is NaN (`+inf` for nothing).
    Min,
    /// The largest `|x|`, NaN when any is NaN (0 for nothing).
    AbsMax,
}

/// Per-type kernels (f32 and f64). Sealed: the module is private.
pub trait SimdScalar: Copy + Send + Sync + 'static {
    /// `dst[i] = op(src[i])` for all `i` (`src.len() == dst.len()`), at `level`.
    fn unary(level: SimdLevel, op: Unary, src: &[Self], dst: &mut [MaybeUninit<Self>]);
    /// As [`SimdScalar::unary`], with non-temporal stores where the level has them (AVX-512
    /// directly, AVX2 through a staging buffer: `stream.rs`), for outputs far larger than the
    /// caches; the same values.
    fn unary_stream(level: SimdLevel, op: Unary, src: &[Self], dst: &mut [MaybeUninit<Self>]);
    /// `dst[i] = a[i] op b[i]` with non-temporal stores where the level has them.
    fn binary_stream(
        level: SimdLevel,
        op: Binary,
        a: &[Self],
        b: &[Self],
        dst: &mut [MaybeUninit<Self>],
    );
    /// `dst[i] = a[i] op b[i]` (or `a[i] op b` for a scalar `b`).
    fn binary(
        level: SimdLevel,
        op: Binary,
        a: &[Self],
        b: Rhs<'_, Self>,
        dst: &mut [MaybeUninit<Self>],
    );
    /// `dst[i] = a op b[i]` for a scalar `a` (the left operand broadcast).
    fn binary_scalar_left(
        level: SimdLevel,
        op: Binary,
        a: Self,
        b: &[Self],
        dst: &mut [MaybeUninit<Self>],
    );
    /// Folds every leaf of `x` (consecutive runs of [`LEAF`] elements, the last one shorter)
    /// into `out[i]`, in the fixed order described at [`LEAF`]; `out.len()` must be
    /// `x.len().div_ceil(LEAF)`. One call per run of leaves keeps the per-leaf cost to a few
    /// instructions. `scale` is used by [`Fold::ScaledSumSq`] only.
    fn fold_leaves(level: SimdLevel, fold: Fold, scale: Self, x: &[Self], out: &mut [Self]);
}

/// Writes `f(src[i])` into `dst[i]`.
#[inline(always)]
fn map1<T: Copy>(src: &[T], dst: &mut [MaybeUninit<T>], f: impl Fn(T) -> T) {
    assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(f(s));
    }
}

/// Writes `f(a[i], b[i])` (or `f(a[i], b)`) into `dst[i]`.
#[inline(always)]
fn map2<T: Copy>(a: &[T], b: Rhs<'_, T>, dst: &mut [MaybeUninit<T>], f: impl Fn(T, T) -> T) {
    assert_eq!(a.len(), dst.len(), "kernel slices differ in length");
    match b {
        Rhs::Slice(b) => {
            assert_eq!(b.len(), dst.len(), "kernel slices differ in length");
            for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                d.write(f(x, y));
            }
        }
        Rhs::Scalar(y) => {
            for (d, &x) in dst.iter_mut().zip(a) {
                d.write(f(x, y));
            }
        }
    }
}

/// Folds at most [`LEAF`] elements into [`LANES`] accumulators (`acc[j] = step(acc[j], x)`
/// for the elements `j, j + LANES, ...`), then combines the accumulators pairwise with
/// `combine`. Fixed order: the same result at every level.
#[inline(always)]
fn leaf_fold<T: Copy>(
    x: &[T],
    init: T,
    step: impl Fn(T, T) -> T,
    combine: impl Fn(T, T) -> T,
) -> T {
    debug_assert!(x.len() <= LEAF);
    let mut acc = [init; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] = step(acc[j], c[j]);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = step(*a, v);
    }
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            acc[j] = combine(acc[j], acc[j + width]);
        }
        width /= 2;
    }
    acc[0]
}

/// `out[i] = leaf(i-th run of LEAF elements of x)`.
#[inline(always)]
fn fold_each<T: Copy>(x: &[T], out: &mut [T], leaf: impl Fn(&[T]) -> T) {
    assert_eq!(out.len(), x.len().div_ceil(LEAF), "one output per leaf");
    for (o, c) in out.iter_mut().zip(x.chunks(LEAF)) {
        *o = leaf(c);
    }
}

/// `a` when `a > b` or `a` is NaN, else `b`: a max that keeps NaN once it has seen one.
#[inline(always)]
fn max_nan<T: num_traits::Float>(acc: T, v: T) -> T {
    if v > acc || v.is_nan() {
        v
    } else {
        acc
    }
}

/// The min counterpart of [`max_nan`].
#[inline(always)]
fn min_nan<T: num_traits::Float>(acc: T, v: T) -> T {
    if v < acc || v.is_nan() {
        v
    } else {
        acc
    }
}

/// Generates a function `$name(level, args...) -> ret` that runs `$body` (an expression over
/// `args` that may use the const `FMA: bool`) compiled for AVX-512, AVX2+FMA or plainly.
macro_rules! kernels {
    ($( fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty $body:block )*) => {$(
        fn $name(level: SimdLevel, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    #[allow(dead_code)]
                    const FMA: bool = true;
                    $body
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    #[allow(dead_code)]
                    const FMA: bool = true;
                    $body
                }
                match level {
                    // SAFETY: every caller passes a level no higher than `SimdLevel::detect()`
                    // (crate code passes `simd_level()`, the detected level, and the tests
                    // `SimdLevel::available()`, which filters by it), and
                    // `detect` returns `Avx512` only when `CpuFeatures::detect`
                    // (`is_x86_feature_detected!`) found every feature enabled on `avx512`. The variants are public, so this is
                    // the callers' check, not the type's.
                    SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, for avx2 and fma.
                    SimdLevel::Avx2Fma => return unsafe { avx2($($arg),*) },
                    SimdLevel::Portable => {}
                }
            }
            let _ = level;
            #[allow(dead_code)]
            const FMA: bool = false;
            $body
        }
    )*};
}

macro_rules! impl_scalar {
    ($t:ty, $m:ident, $exp:ident, $ln:ident, $sqrt:ident, $tanh:ident, $sigmoid:ident,
     avx512: $aunary:ident, $abinary:ident) => {
        mod $m {
            use super::math::{$exp, $ln, $sigmoid, $sqrt, $tanh};
            use super::*;

            kernels! {
                fn exp(src: &[$t], dst: &mut [MaybeUninit<$t>]) -> () {
                    map1(src, dst, $exp::<FMA>)
                }
                fn ln(src: &[$t], dst: &mut [MaybeUninit<$t>]) -> () {
                    map1(src, dst, $ln::<FMA>)
                }
                fn sqrt(src: &[$t], dst: &mut [MaybeUninit<$t>]) -> () {
                    map1(src, dst, $sqrt::<FMA>)
                }
                fn tanh(src: &[$t], dst: &mut [MaybeUninit<$t>]) -> () {
                    map1(src, dst, $tanh::<FMA>)
                }
                fn sigmoid(src: &[$t], dst: &mut [MaybeUninit<$t>]) -> () {
                    map1(src, dst, $sigmoid::<FMA>)
                }
                fn add(a: &[$t], b: Rhs<'_, $t>, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(a, b, dst, |x, y| x + y)
                }
                fn sub(a: &[$t], b: Rhs<'_, $t>, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(a, b, dst, |x, y| x - y)
                }
                fn mul(a: &[$t], b: Rhs<'_, $t>, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(a, b, dst, |x, y| x * y)
                }
                fn div(a: &[$t], b: Rhs<'_, $t>, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(a, b, dst, |x, y| x / y)
                }
                fn rsub(b: &[$t], a: $t, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(b, Rhs::Scalar(a), dst, |y, x| x - y)
                }
                fn rdiv(b: &[$t], a: $t, dst: &mut [MaybeUninit<$t>]) -> () {
                    map2(b, Rhs::Scalar(a), dst, |y, x| x / y)
                }
                fn sum_leaves(x: &[$t], out: &mut [$t]) -> () {
                    // -0.0 is the identity of IEEE addition (-0 + -0 = -0, -0 + +0 = +0), so
                    // a sum of negative zeros is -0.0, as numpy's.
                    fold_each(x, out, |c| leaf_fold(c, -0.0, |a, v| a + v, |a, b| a + b))
                }
                fn sumsq_leaves(x: &[$t], out: &mut [$t]) -> () {
                    fold_each(x, out, |c| leaf_fold(c, 0.0, |a, v| a + v * v, |a, b| a + b))
                }
                fn scaled_sumsq_leaves(x: &[$t], scale: $t, out: &mut [$t]) -> () {
                    fold_each(x, out, |c| {
                        leaf_fold(c, 0.0, |a, v| { let s = v / scale; a + s * s }, |a, b| a + b)
                    })
                }
                fn max_leaves(x: &[$t], out: &mut [$t]) -> () {
                    fold_each(x, out, |c| leaf_fold(c, <$t>::NEG_INFINITY, max_nan, max_nan))
                }
                fn min_leaves(x: &[$t], out: &mut [$t]) -> () {
                    fold_each(x, out, |c| leaf_fold(c, <$t>::INFINITY, min_nan, min_nan))
                }
                fn amax_leaves(x: &[$t], out: &mut [$t]) -> () {
                    fold_each(x, out, |c| leaf_fold(c, 0.0, |a, v| max_nan(a, v.abs()), max_nan))
                }
            }

            impl SimdScalar for $t {
                fn unary(level: SimdLevel, op: Unary, src: &[Self], dst: &mut [MaybeUninit<Self>]) {
                    #[cfg(target_arch = "x86_64")]
                    if level == SimdLevel::Avx512 {
                        let kernel = super::avx512::$aunary(op, false);
                        // SAFETY: the level is no higher than `SimdLevel::detect()` (see the
                        // dispatch macro above), which confirmed the features this kernel enables.
                        return unsafe { kernel(src, dst) };
                    }
                    match op {
                        Unary::Exp => exp(level, src, dst),
                        Unary::Ln => ln(level, src, dst),
                        Unary::Sqrt => sqrt(level, src, dst),
                        Unary::Tanh => tanh(level, src, dst),
                        Unary::Sigmoid => sigmoid(level, src, dst),
                    }
                }
                fn unary_stream(
                    level: SimdLevel,
                    op: Unary,
                    src: &[Self],
                    dst: &mut [MaybeUninit<Self>],
                ) {
                    #[cfg(target_arch = "x86_64")]
                    if level == SimdLevel::Avx512 {
                        let kernel = super::avx512::$aunary(op, true);
                        // SAFETY: as in `unary`.
                        return unsafe { kernel(src, dst) };
                    }
                    #[cfg(target_arch = "x86_64")]
                    if level == SimdLevel::Avx2Fma {
                        assert_eq!(src.len(), dst.len(), "kernel slices differ in length");
                        // SAFETY: the level is no higher than `SimdLevel::detect()`, so AVX2
                        // (hence AVX) was detected; `unary` writes every element of each piece.
                        return unsafe {
                            super::stream::staged(dst, |off, piece| {
                                Self::unary(level, op, &src[off..off + piece.len()], piece)
                            })
                        };
                    }
                    Self::unary(level, op, src, dst)
                }
                fn binary_stream(
                    level: SimdLevel,
                    op: Binary,
                    a: &[Self],
                    b: &[Self],
                    dst: &mut [MaybeUninit<Self>],
                ) {
                    #[cfg(target_arch = "x86_64")]
                    if level == SimdLevel::Avx512 {
                        let kernel = super::avx512::$abinary(op);
                        // SAFETY: as in `unary`.
                        return unsafe { kernel(a, b, dst) };
                    }
                    #[cfg(target_arch = "x86_64")]
                    if level == SimdLevel::Avx2Fma {
                        assert!(
                            a.len() == dst.len() && b.len() == dst.len(),
                            "kernel slices differ in length"
                        );
                        // SAFETY: as in `unary_stream`; `binary` writes every element.
                        return unsafe {
                            super::stream::staged(dst, |off, piece| {
                                let r = off..off + piece.len();
                                Self::binary(level, op, &a[r.clone()], Rhs::Slice(&b[r]), piece)
                            })
                        };
                    }
                    Self::binary(level, op, a, Rhs::Slice(b), dst)
                }
                fn binary(
                    level: SimdLevel,
                    op: Binary,
                    a: &[Self],
                    b: Rhs<'_, Self>,
                    dst: &mut [MaybeUninit<Self>],
                ) {
                    match op {
                        Binary::Add => add(level, a, b, dst),
                        Binary::Sub => sub(level, a, b, dst),
                        Binary::Mul => mul(level, a, b, dst),
                        Binary::Div => div(level, a, b, dst),
                    }
                }
                fn binary_scalar_left(
                    level: SimdLevel,
                    op: Binary,
                    a: Self,
                    b: &[Self],
                    dst: &mut [MaybeUninit<Self>],
                ) {
                    match op {
                        // Addition and multiplication commute exactly in IEEE arithmetic.
                        Binary::Add => add(level, b, Rhs::Scalar(a), dst),
                        Binary::Mul => mul(level, b, Rhs::Scalar(a), dst),
                        Binary::Sub => rsub(level, b, a, dst),
                        Binary::Div => rdiv(level, b, a, dst),
                    }
                }
                fn fold_leaves(
                    level: SimdLevel,
                    fold: Fold,
                    scale: Self,
                    x: &[Self],
                    out: &mut [Self],
                ) {
                    match fold {
                        Fold::Sum => sum_leaves(level, x, out),
                        Fold::SumSq => sumsq_leaves(level, x, out),
                        Fold::ScaledSumSq => scaled_sumsq_leaves(level, x, scale, out),
                        Fold::Max => max_leaves(level, x, out),
                        Fold::Min => min_leaves(level, x, out),
                        Fold::AbsMax => amax_leaves(level, x, out),
                    }
                }
            }
        }
    };
}

impl_scalar!(
    f64,
    f64_kernels,
    exp_f64,
    ln_f64,
    sqrt_f64,
    tanh_f64,
    sigmoid_f64,
    avx512: unary_f64,
    binary_stream_f64
);
impl_scalar!(
    f32,
    f32_kernels,
    exp_f32,
    ln_f32,
    sqrt_f32,
    tanh_f32,
    sigmoid_f32,
    avx512: unary_f32,
    binary_stream_f32
);

#[cfg(test)]
mod tests;
