//! Ulp sweeps of every kernel at every level this CPU runs (the portable one included), and
//! the reduction leaves' order.

use super::*;
use rand::{Rng as _, SeedableRng};

/// Distance between two floats counted in representable numbers (0 when equal, also for two
/// NaNs; `u64::MAX` when only one is NaN).
fn ulps64(a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |x: f64| {
        let i = x.to_bits() as i64;
        if i < 0 {
            i64::MIN - i
        } else {
            i
        }
    };
    key(a).abs_diff(key(b))
}

fn ulps32(a: f32, b: f32) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i32::MIN - i
        } else {
            i
        }
    };
    u64::from(key(a).abs_diff(key(b)))
}

/// Inputs evenly spread over `[lo, hi]`, plus the ends.
fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..=n)
        .map(|i| lo + (hi - lo) * i as f64 / n as f64)
        .collect()
}

/// Every `step`-th positive f64 bit pattern below +inf: all binades, subnormals included.
fn positive_patterns64(n: u64) -> Vec<f64> {
    let step = 0x7ff0_0000_0000_0000 / n;
    (0..n).map(|i| f64::from_bits(i * step + i % 7)).collect()
}

fn positive_patterns32(n: u32) -> Vec<f32> {
    let step = 0x7f80_0000 / n;
    (0..n).map(|i| f32::from_bits(i * step + i % 7)).collect()
}

/// Max ulp error of `op` at `level` over `xs` against `reference` (a correctly rounded or
/// < 1 ulp function), and the input where it happens.
fn max_err64(level: SimdLevel, op: Unary, xs: &[f64], reference: fn(f64) -> f64) -> (u64, f64) {
    let mut out = vec![MaybeUninit::uninit(); xs.len()];
    f64::unary(level, op, xs, &mut out);
    xs.iter()
        .zip(&out)
        // SAFETY: the kernel wrote every element of `out`.
        .map(|(&x, y)| (ulps64(unsafe { y.assume_init() }, reference(x)), x))
        .max_by_key(|p| p.0)
        .unwrap()
}

fn max_err32(level: SimdLevel, op: Unary, xs: &[f32], reference: fn(f64) -> f64) -> (u64, f32) {
    let mut out = vec![MaybeUninit::uninit(); xs.len()];
    f32::unary(level, op, xs, &mut out);
    xs.iter()
        .zip(&out)
        .map(|(&x, y)| {
            // SAFETY: the kernel wrote every element of `out`.
            let y = unsafe { y.assume_init() };
            (ulps32(y, reference(x as f64) as f32), x)
        })
        .max_by_key(|p| p.0)
        .unwrap()
}

fn sigmoid_ref(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Sigmoid in f64 from a result accurate to ~1 ulp of f64 (the f32 reference).
fn sigmoid_ref_hi(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The bounds documented in `math.rs`.
const BOUNDS: [(Unary, u64); 5] = [
    (Unary::Exp, 2),
    (Unary::Ln, 2),
    (Unary::Sqrt, 0),
    (Unary::Tanh, 4),
    (Unary::Sigmoid, 4),
];

fn inputs64(op: Unary) -> Vec<f64> {
    let mut xs = match op {
        Unary::Exp => linspace(-746.0, 710.0, 400_000),
        Unary::Ln | Unary::Sqrt => positive_patterns64(400_000),
        Unary::Tanh => linspace(-25.0, 25.0, 400_000),
        Unary::Sigmoid => linspace(-40.0, 40.0, 400_000),
    };
    xs.extend(linspace(-1.0, 1.0, 100_000));
    xs.extend(linspace(0.5, 2.0, 100_000));
    if matches!(op, Unary::Ln | Unary::Sqrt) {
        xs.retain(|x| *x >= 0.0);
    }
    xs
}

fn inputs32(op: Unary) -> Vec<f32> {
    let mut xs: Vec<f32> = match op {
        Unary::Exp => linspace(-104.0, 89.0, 400_000)
            .iter()
            .map(|&x| x as f32)
            .collect(),
        Unary::Ln | Unary::Sqrt => positive_patterns32(400_000),
        Unary::Tanh => linspace(-12.0, 12.0, 400_000)
            .iter()
            .map(|&x| x as f32)
            .collect(),
        Unary::Sigmoid => linspace(-20.0, 20.0, 400_000)
            .iter()
            .map(|&x| x as f32)
            .collect(),
    };
    xs.extend(linspace(-1.0, 1.0, 100_000).iter().map(|&x| x as f32));
    if matches!(op, Unary::Ln | Unary::Sqrt) {
        xs.retain(|x| *x >= 0.0);
    }
    xs
}

fn reference(op: Unary, hi: bool) -> fn(f64) -> f64 {
    match op {
        Unary::Exp => f64::exp,
        Unary::Ln => f64::ln,
        Unary::Sqrt => f64::sqrt,
        Unary::Tanh => f64::tanh,
        Unary::Sigmoid if hi => sigmoid_ref_hi,
        Unary::Sigmoid => sigmoid_ref,
    }
}

#[test]
fn ulp_sweep_f64_every_level() {
    for level in SimdLevel::available() {
        for (op, bound) in BOUNDS {
            let (err, at) = max_err64(level, op, &inputs64(op), reference(op, false));
            eprintln!("{op:?} f64 {level:?}: {err} ulp at {at:e}");
            assert!(
                err <= bound,
                "{op:?} f64 at {level:?}: {err} ulp at x = {at:e} (bound {bound})"
            );
        }
    }
}

#[test]
fn ulp_sweep_f32_every_level() {
    for level in SimdLevel::available() {
        for (op, bound) in BOUNDS {
            let (err, at) = max_err32(level, op, &inputs32(op), reference(op, true));
            eprintln!("{op:?} f32 {level:?}: {err} ulp at {at:e}");
            assert!(
                err <= bound,
                "{op:?} f32 at {level:?}: {err} ulp at x = {at:e} (bound {bound})"
            );
        }
    }
}

#[test]
fn special_values_every_level() {
    let xs = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        710.0,
        -746.0,
        709.78,
        -745.1,
        -708.5,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        -f64::MAX,
    ];
    for level in SimdLevel::available() {
        for op in [Unary::Exp, Unary::Ln, Unary::Sqrt, Unary::Tanh] {
            let r = reference(op, false);
            let (err, at) = max_err64(level, op, &xs, r);
            assert!(err <= 2, "{op:?} f64 at {level:?}: {err} ulp at {at:e}");
            let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            let (err, at) = max_err32(level, op, &xs32, r);
            assert!(err <= 2, "{op:?} f32 at {level:?}: {err} ulp at {at:e}");
        }
    }
}

/// One leaf (at most LEAF elements) folded at `level`.
fn leaf<T: SimdScalar + num_traits::Float>(level: SimdLevel, fold: Fold, x: &[T]) -> T {
    let mut out = [T::zero()];
    T::fold_leaves(level, fold, T::one(), x, &mut out);
    out[0]
}

#[test]
fn many_leaves_in_one_call_match_one_at_a_time() {
    let x: Vec<f32> = (0..5000).map(|i| (i as f32 * 0.7).sin()).collect();
    for level in SimdLevel::available() {
        for fold in [Fold::Sum, Fold::SumSq, Fold::Max, Fold::Min, Fold::AbsMax] {
            let mut out = vec![0.0f32; 5];
            f32::fold_leaves(level, fold, 1.0, &x, &mut out);
            for (i, c) in x.chunks(LEAF).enumerate() {
                assert_eq!(out[i].to_bits(), leaf(level, fold, c).to_bits());
            }
        }
    }
}

#[test]
fn leaves_agree_bit_for_bit_across_levels() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x1234_5678);
    let xs: Vec<f64> = (0..LEAF).map(|_| rng.random_range(-1.0..1.0)).collect();
    for len in [1, 31, 32, 33, 1000, LEAF] {
        let x = &xs[..len];
        let want = leaf(SimdLevel::Portable, Fold::Sum, x);
        // The documented order: LANES running sums, combined pairwise.
        let mut acc = [0.0; LANES];
        for (i, v) in x.iter().enumerate() {
            acc[i % LANES] += v;
        }
        let mut w = LANES / 2;
        while w > 0 {
            for j in 0..w {
                acc[j] += acc[j + w];
            }
            w /= 2;
        }
        assert_eq!(want.to_bits(), acc[0].to_bits(), "len {len}");
        for level in SimdLevel::available() {
            assert_eq!(leaf(level, Fold::Sum, x).to_bits(), want.to_bits());
            assert_eq!(
                leaf(level, Fold::SumSq, x).to_bits(),
                leaf(SimdLevel::Portable, Fold::SumSq, x).to_bits()
            );
            let xs32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            assert_eq!(
                leaf(level, Fold::Sum, &xs32).to_bits(),
                leaf(SimdLevel::Portable, Fold::Sum, &xs32).to_bits()
            );
        }
    }
}

#[test]
fn max_min_leaves_propagate_nan() {
    for level in SimdLevel::available() {
        let mut x: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(leaf(level, Fold::Max, &x), 99.0);
        assert_eq!(leaf(level, Fold::Min, &x), 0.0);
        assert_eq!(leaf(level, Fold::AbsMax, &x), 99.0);
        x[37] = f64::NAN;
        assert!(leaf(level, Fold::Max, &x).is_nan());
        assert!(leaf(level, Fold::Min, &x).is_nan());
        assert!(leaf(level, Fold::AbsMax, &x).is_nan());
    }
}

#[test]
fn binary_kernels_every_level() {
    let a: Vec<f32> = (0..101).map(|i| i as f32 * 0.5 - 7.0).collect();
    let b: Vec<f32> = (0..101).map(|i| i as f32 * 0.25 + 1.0).collect();
    for level in SimdLevel::available() {
        for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
            let f = |x: f32, y: f32| match op {
                Binary::Add => x + y,
                Binary::Sub => x - y,
                Binary::Mul => x * y,
                Binary::Div => x / y,
            };
            let mut out = vec![MaybeUninit::uninit(); a.len()];
            f32::binary(level, op, &a, Rhs::Slice(&b), &mut out);
            for i in 0..a.len() {
                // SAFETY: written by the kernel.
                assert_eq!(unsafe { out[i].assume_init() }, f(a[i], b[i]));
            }
            f32::binary(level, op, &a, Rhs::Scalar(3.0), &mut out);
            for i in 0..a.len() {
                // SAFETY: written by the kernel.
                assert_eq!(unsafe { out[i].assume_init() }, f(a[i], 3.0));
            }
            f32::binary_scalar_left(level, op, 3.0, &b, &mut out);
            for i in 0..a.len() {
                // SAFETY: written by the kernel.
                assert_eq!(unsafe { out[i].assume_init() }, f(3.0, b[i]));
            }
        }
    }
}

/// Runs `plain` and `stream` (two kernels writing the same output) into fresh buffers of
/// `len` elements placed `off` elements into an allocation (so the output is misaligned every
/// way), and checks that they wrote the same bits.
fn same_bits<T: Copy + Into<f64> + std::fmt::Debug>(
    off: usize,
    len: usize,
    plain: impl Fn(&mut [MaybeUninit<T>]),
    stream: impl Fn(&mut [MaybeUninit<T>]),
    what: &str,
) {
    let (mut a, mut b) = (
        vec![MaybeUninit::uninit(); off + len],
        vec![MaybeUninit::uninit(); off + len],
    );
    plain(&mut a[off..]);
    stream(&mut b[off..]);
    for (i, (p, q)) in a[off..].iter().zip(&b[off..]).enumerate() {
        // SAFETY: both kernels wrote every element of their output.
        let (p, q) = unsafe { (p.assume_init(), q.assume_init()) };
        assert!(
            p.into().to_bits() == q.into().to_bits(),
            "{what} at {i}: {p:?} vs {q:?}"
        );
    }
}

/// The streaming variants of every unary and binary kernel against the plain ones, for `T`.
fn streaming_matches_plain<T: SimdScalar + Into<f64> + std::fmt::Debug>(
    level: SimdLevel,
    xs: &[T],
    ys: &[T],
    off: usize,
    len: usize,
) {
    let (x, y) = (&xs[off..off + len], &ys[off..off + len]);
    let t = std::any::type_name::<T>();
    for op in [
        Unary::Exp,
        Unary::Ln,
        Unary::Sqrt,
        Unary::Tanh,
        Unary::Sigmoid,
    ] {
        let what = format!("{op:?} {t} {level:?} off {off} len {len}");
        same_bits(
            off,
            len,
            |d| T::unary(level, op, y, d),
            |d| T::unary_stream(level, op, y, d),
            &what,
        );
    }
    for op in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
        let what = format!("{op:?} {t} {level:?} off {off} len {len}");
        same_bits(
            off,
            len,
            |d| T::binary(level, op, x, Rhs::Slice(y), d),
            |d| T::binary_stream(level, op, x, y, d),
            &what,
        );
    }
}

#[test]
fn streaming_kernels_match_at_every_offset() {
    // Long enough for several staging blocks (4 KiB: 512 f64, 1024 f32) plus a tail.
    const N: usize = 3000;
    let xs: Vec<f64> = (0..N).map(|i| (i % 300) as f64 * 0.37 - 50.0).collect();
    let ys: Vec<f64> = (0..N).map(|i| (i % 300) as f64 * 0.11 + 1.0).collect();
    let xs32: Vec<f32> = xs.iter().map(|&v| v as f32).collect();
    let ys32: Vec<f32> = ys.iter().map(|&v| v as f32).collect();
    for level in SimdLevel::available() {
        // Offsets and lengths that misalign the output every way, shorter than a vector,
        // shorter than a staging block, exactly whole blocks after the head, and several
        // blocks with a tail.
        for (off, len) in [
            (0, 300),
            (1, 299),
            (3, 5),
            (7, 200),
            (0, 0),
            (5, 17),
            (0, 1024),
            (0, 2048),
            (1, N - 1),
            (9, 2500),
            (0, N),
        ] {
            streaming_matches_plain(level, &xs, &ys, off, len);
            streaming_matches_plain(level, &xs32, &ys32, off, len);
        }
    }
}

#[test]
fn public_functions_use_the_detected_level() {
    let x: Vec<f64> = (0..10_000).map(|i| f64::from(i) * 1e-3 - 5.0).collect();
    let mut want = vec![MaybeUninit::uninit(); x.len()];
    f64::unary(simd_level(), Unary::Tanh, &x, &mut want);
    // SAFETY: the kernel wrote every element of `want`.
    let want: Vec<f64> = want.iter().map(|y| unsafe { y.assume_init() }).collect();
    assert_eq!(crate::tanh(&ndarray::Array1::from(x)).to_vec(), want);
}
