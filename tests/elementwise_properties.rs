//! Properties beyond the reference cases: numpy broadcasting shapes, determinism of `sum`
//! across pool sizes, IEEE special values and empty inputs, summation accuracy on
//! ill-conditioned data against an exact reference, and ulp sweeps of both the SIMD and the
//! portable kernels.

mod common;

use common::Rng;
use ndarray::{arr0, Array, Array1, Array2, Array3, Axis, IxDyn};
use parlinalg::{Error, Float};

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

#[test]
fn broadcasting_row_column_scalar_and_3d() {
    let mut rng = Rng::new(1);
    let a: Array2<f64> = rng.matrix(5, 4);
    let row: Array1<f64> = rng.vector(4);
    let col: Array2<f64> = rng.matrix(5, 1);
    let one: Array2<f64> = rng.matrix(1, 1);
    assert_eq!(parlinalg::add(&a, &row).unwrap(), &a + &row);
    assert_eq!(parlinalg::sub(&row, &a).unwrap(), &row - &a);
    assert_eq!(parlinalg::mul(&a, &col).unwrap(), &a * &col);
    assert_eq!(parlinalg::div(&col, &a).unwrap(), &col / &a);
    assert_eq!(parlinalg::add(&a, &one).unwrap(), &a + &one);
    assert_eq!(parlinalg::mul(&a, &arr0(2.5)).unwrap(), &a * 2.5);
    // Column times row: an outer product by broadcasting.
    assert_eq!(parlinalg::mul(&col, &row).unwrap(), &col * &row);
    // 3-D against 2-D and 1-D, with length-1 axes on both sides.
    let t = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f32);
    let m = Array2::from_shape_fn((3, 1), |(j, _)| j as f32 + 1.0);
    let b = Array3::from_shape_fn((2, 1, 4), |(i, _, k)| (i + k) as f32 * 0.5 + 1.0);
    assert_eq!(parlinalg::add(&t, &m).unwrap(), &t + &m);
    assert_eq!(parlinalg::div(&t, &b).unwrap(), &t / &b);
    let r = parlinalg::sub(&b, &m).unwrap(); // (2,1,4) with (3,1) -> (2,3,4)
    assert_eq!(r.shape(), &[2, 3, 4]);
    assert_eq!(r, &b - &m);
    // Dynamic dimensions.
    let d = parlinalg::add(&t.view().into_dyn(), &m).unwrap();
    assert_eq!(d.raw_dim(), IxDyn(&[2, 3, 4]));
    // Large enough for the parallel row path (non-contiguous broadcast).
    let big = Array2::from_shape_fn((700, 300), |(i, j)| (i as f64) - (j as f64) * 0.5);
    let bcol = Array2::from_shape_fn((700, 1), |(i, _)| i as f64 * 0.25 + 1.0);
    assert_eq!(
        pool(3).install(|| parlinalg::div(&big, &bcol)).unwrap(),
        &big / &bcol
    );
    assert_eq!(
        pool(3)
            .install(|| parlinalg::add(&big.t(), &big.t()))
            .unwrap(),
        &big.t() * 2.0
    );
}

#[test]
fn incompatible_shapes_name_both() {
    let a = Array2::<f64>::zeros((3, 4));
    let b = Array1::<f64>::zeros(3);
    match parlinalg::add(&a, &b) {
        Err(Error::ShapeMismatch {
            op,
            left,
            right,
            why,
        }) => {
            assert_eq!(op, "add");
            assert_eq!((left, right), (vec![3, 4], vec![3]));
            assert!(why.contains("4 and 3"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let e = parlinalg::mul(
        &Array3::<f32>::zeros((2, 3, 4)),
        &Array2::<f32>::zeros((2, 4)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("(2, 3, 4) and (2, 4)"), "{e}");
    let mut out = Array2::<f64>::zeros((4, 3));
    assert!(matches!(
        parlinalg::sub_into(&a, &a, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        parlinalg::exp_into(&a, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
}

fn random_vec<T: Float>(rng: &mut Rng, n: usize, spread: f64) -> Array1<T> {
    Array1::from_shape_simple_fn(n, || {
        let e = rng.uniform() * spread;
        T::from(rng.uniform() * 10f64.powf(e)).unwrap()
    })
}

fn determinism<T: Float>() {
    let mut rng = Rng::new(7);
    for n in [1, 1023, 1025, 100_003, 1_000_003, 3_000_000] {
        let x: Array1<T> = random_vec(&mut rng, n, 6.0);
        let m = x.clone().into_shape_with_order((1, n)).unwrap();
        let want = pool(1).install(|| parlinalg::sum(&x)).unwrap();
        let want_n = pool(1).install(|| parlinalg::norm2(&x)).unwrap();
        let want_axis = pool(1)
            .install(|| parlinalg::sum_axis(&m, Axis(1)))
            .unwrap();
        for threads in [2, 3, 7] {
            let p = pool(threads);
            let got = p.install(|| parlinalg::sum(&x)).unwrap();
            assert_eq!(
                got.to_f64().unwrap().to_bits(),
                want.to_f64().unwrap().to_bits(),
                "sum of {n} on {threads} threads"
            );
            let got = p.install(|| parlinalg::mean(&x)).unwrap();
            assert_eq!(got, want / T::from(n).unwrap());
            let got = p.install(|| parlinalg::norm2(&x)).unwrap();
            assert_eq!(
                got.to_f64().unwrap().to_bits(),
                want_n.to_f64().unwrap().to_bits()
            );
            assert_eq!(
                p.install(|| parlinalg::sum_axis(&m, Axis(1))).unwrap(),
                want_axis
            );
        }
    }
}

#[test]
fn sum_is_bit_identical_on_1_2_3_7_threads() {
    determinism::<f64>();
    determinism::<f32>();
}

#[test]
fn ieee_special_values_and_empties() {
    let x = Array1::from(vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        710.0,
        -746.0,
        -1.0,
    ]);
    let e = parlinalg::exp(&x);
    assert_eq!(e.to_vec()[..4], [1.0, 1.0, f64::INFINITY, 0.0]);
    assert!(e[4].is_nan());
    assert_eq!((e[5], e[6]), (f64::INFINITY, 0.0));
    // Gradual underflow: exp(-740) is subnormal, not flushed.
    let sub = parlinalg::exp(&Array1::from(vec![-740.0f64]))[0];
    assert!(sub > 0.0 && sub < f64::MIN_POSITIVE, "{sub:e}");
    assert!((sub / (-740.0f64).exp() - 1.0).abs() < 1e-6);
    let l = parlinalg::ln(&x);
    assert_eq!(
        (l[0], l[1], l[2]),
        (f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY)
    );
    assert!(l[3].is_nan() && l[4].is_nan() && l[7].is_nan());
    let s = parlinalg::sqrt(&x);
    assert!(s[7].is_nan() && s[3].is_nan());
    assert_eq!(s[1].to_bits(), (-0.0f64).to_bits());
    let t = parlinalg::tanh(&x);
    assert_eq!((t[2], t[3]), (1.0, -1.0));
    assert_eq!(t[1].to_bits(), (-0.0f64).to_bits());
    let g = parlinalg::sigmoid(&x);
    assert_eq!((g[0], g[2], g[3]), (0.5, 1.0, 0.0));
    // f32 overflow threshold differs.
    let e32 = parlinalg::exp(&Array1::from(vec![88.0f32, 89.0, -104.0]));
    assert!(e32[0].is_finite() && e32[1].is_infinite() && e32[2] == 0.0);
    // Reductions.
    assert!(parlinalg::sum(&Array1::from(vec![1.0, f64::NAN]))
        .unwrap()
        .is_nan());
    assert!(
        parlinalg::sum(&Array1::from(vec![f64::INFINITY, f64::NEG_INFINITY]))
            .unwrap()
            .is_nan()
    );
    assert_eq!(
        parlinalg::sum(&Array1::from(vec![f64::INFINITY, 1.0])).unwrap(),
        f64::INFINITY
    );
    let mut big = Array1::from_elem(300_000, 1.0f32);
    big[123_456] = f32::NAN;
    assert!(parlinalg::max(&big).unwrap().is_nan());
    assert!(parlinalg::min(&big).unwrap().is_nan());
    assert!(parlinalg::mean(&big).unwrap().is_nan());
    let empty = Array::<f64, _>::zeros((0, 5));
    assert_eq!(parlinalg::sum(&empty).unwrap(), 0.0);
    assert_eq!(parlinalg::norm2(&empty).unwrap(), 0.0);
    for r in [
        parlinalg::max(&empty),
        parlinalg::min(&empty),
        parlinalg::mean(&empty),
    ] {
        assert!(matches!(r, Err(Error::Empty { .. })), "{r:?}");
    }
    assert_eq!(parlinalg::exp(&empty).shape(), &[0, 5]);
    assert_eq!(
        parlinalg::sum_axis(&empty, Axis(0)).unwrap(),
        Array1::<f64>::zeros(5)
    );
    assert!(parlinalg::max_axis(&empty, Axis(0)).is_err());
}

fn negative_zero_sums<T: Float>() {
    let nz = T::zero().neg();
    let is_neg_zero = |v: T| v == T::zero() && v.is_sign_negative();
    // One element, several, a partial leaf, several leaves, and a parallel run (numpy: -0.0).
    for n in [1, 2, 3, 33, 1025, 300_000] {
        let x = Array1::from_elem(n, nz);
        let s = parlinalg::sum(&x).unwrap();
        assert!(is_neg_zero(s), "sum of {n} × -0.0 = {s:?}");
        let m = parlinalg::mean(&x).unwrap();
        assert!(is_neg_zero(m), "mean of {n} × -0.0 = {m:?}");
        // Strided (gathered) path.
        let wide = Array1::from_elem(2 * n, nz);
        let v = wide.slice(ndarray::s![..;2]);
        assert!(is_neg_zero(parlinalg::sum(&v).unwrap()), "strided n = {n}");
    }
    let m = Array2::from_elem((3, 4), nz);
    for ax in 0..2 {
        let r = parlinalg::sum_axis(&m, Axis(ax)).unwrap();
        assert!(r.iter().all(|&v| is_neg_zero(v)), "sum_axis {ax}: {r:?}");
        let r = parlinalg::mean_axis(&m, Axis(ax)).unwrap();
        assert!(r.iter().all(|&v| is_neg_zero(v)), "mean_axis {ax}: {r:?}");
    }
    // Mixed signs still give +0, and the empty sum stays +0 (as numpy).
    let mixed = Array1::from(vec![nz, T::zero(), nz]);
    let s = parlinalg::sum(&mixed).unwrap();
    assert!(s == T::zero() && s.is_sign_positive(), "{s:?}");
    let s = parlinalg::sum(&Array1::<T>::zeros(0)).unwrap();
    assert!(s.is_sign_positive());
}

#[test]
fn sum_and_mean_of_negative_zeros_are_negative_zero() {
    negative_zero_sums::<f64>();
    negative_zero_sums::<f32>();
}

/// Values `m·2^e` with integer `m` (|m| < 2^bits) and `e` in [-20, 20]: their exact sum fits an
/// i128 scaled by 2^20.
fn exact_data<T: Float>(rng: &mut Rng, n: usize, bits: u32) -> (Array1<T>, f64, f64) {
    let mut xs = Vec::with_capacity(n);
    let (mut exact, mut abs): (i128, f64) = (0, 0.0);
    let mut prev = (0i64, 0i32);
    for i in 0..n {
        let m = (rng.next_u64() >> (64 - bits)) as i64
            * if rng.next_u64().is_multiple_of(2) {
                1
            } else {
                -1
            };
        let e = (rng.next_u64() % 41) as i32 - 20;
        // Ill-conditioned: every odd value is minus the previous one, give or take 2^10 units
        // of its last place.
        let (m, e) = if i % 2 == 1 {
            let (pm, pe) = prev;
            (-pm + (rng.next_u64() % 2048) as i64 - 1024, pe)
        } else {
            (m, e)
        };
        prev = (m, e);
        let v = m as f64 * 2f64.powi(e);
        xs.push(T::from(v).unwrap());
        exact += (m as i128) << (e + 20);
        abs += v.abs();
    }
    (Array1::from(xs), exact as f64 / 2f64.powi(20), abs)
}

fn accuracy<T: Float>(bits: u32, u: f64) {
    let mut rng = Rng::new(99);
    for n in [1000, 65_537, 1_000_000] {
        let (x, exact, abs) = exact_data::<T>(&mut rng, n, bits);
        let got = parlinalg::sum(&x).unwrap().to_f64().unwrap();
        let levels = (n.div_ceil(1024) as f64).log2().ceil();
        let bound = (36.0 + levels) * u * abs;
        let err = (got - exact).abs();
        assert!(
            err <= bound,
            "n {n}: |{got:e} - {exact:e}| = {err:e} > bound {bound:e}"
        );
        let cond = abs / exact.abs().max(f64::MIN_POSITIVE);
        assert!(cond > 1e4, "data not ill-conditioned (cond {cond:e})");
    }
}

#[test]
fn sum_meets_its_error_bound_on_ill_conditioned_data() {
    accuracy::<f64>(53, f64::EPSILON / 2.0);
    accuracy::<f32>(24, f32::EPSILON as f64 / 2.0);
}

/// Ulp distance between two f64 values (both NaN: 0).
fn ulps(a: f64, b: f64) -> u64 {
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

fn reference(op: &str) -> fn(f64) -> f64 {
    match op {
        "exp" => f64::exp,
        "ln" => f64::ln,
        "sqrt" => f64::sqrt,
        "tanh" => f64::tanh,
        _ => |x: f64| 1.0 / (1.0 + (-x).exp()),
    }
}

/// The documented bounds: exp, ln ≤ 2 ulp; tanh, sigmoid ≤ 4 ulp; sqrt exact.
const OPS: [(&str, f64, f64, u64); 5] = [
    ("exp", -745.0, 709.0, 2),
    ("ln", 1e-300, 1e300, 2),
    ("sqrt", 0.0, 1e300, 0),
    ("tanh", -20.0, 20.0, 4),
    ("sigmoid", -30.0, 30.0, 4),
];

/// `op` of every element of `xs` through the public function (at the detected SIMD level;
/// every level is swept kernel by kernel in `src/simd/tests.rs`).
fn public_unary<T: parlinalg::Float>(op: &str, xs: &[T]) -> Vec<T> {
    let x = Array1::from(xs.to_vec());
    match op {
        "exp" => parlinalg::exp(&x),
        "ln" => parlinalg::ln(&x),
        "sqrt" => parlinalg::sqrt(&x),
        "tanh" => parlinalg::tanh(&x),
        "sigmoid" => parlinalg::sigmoid(&x),
        other => panic!("no unary op {other}"),
    }
    .to_vec()
}

#[test]
fn ulp_sweeps_of_the_public_functions() {
    let level = parlinalg::simd_level();
    for (op, lo, hi, bound) in OPS {
        let n = 300_000;
        // ln and sqrt sweep geometrically (every binade), the others linearly.
        let xs: Vec<f64> = (0..=n)
            .map(|i| {
                let t = i as f64 / n as f64;
                if op == "ln" || op == "sqrt" {
                    (lo.max(1e-300).ln() * (1.0 - t) + hi.ln() * t).exp()
                } else {
                    lo + (hi - lo) * t
                }
            })
            .collect();
        let got = public_unary(op, &xs);
        let r = reference(op);
        let worst = xs
            .iter()
            .zip(&got)
            .map(|(&x, &y)| (ulps(y, r(x)), x))
            .max_by_key(|p| p.0)
            .unwrap();
        assert!(
            worst.0 <= bound,
            "{op} f64 at {level:?}: {} ulp at {:e}",
            worst.0,
            worst.1
        );
        // f32: against the f64 function rounded to f32 (within the f32 range).
        let xs32: Vec<f32> = xs
            .iter()
            .map(|&x| x as f32)
            .filter(|x| x.is_finite())
            .collect();
        let got = public_unary(op, &xs32);
        let worst = xs32
            .iter()
            .zip(&got)
            .map(|(&x, &y)| (ulps32(y, r(x as f64) as f32), x))
            .max_by_key(|p| p.0)
            .unwrap();
        assert!(
            worst.0 <= bound,
            "{op} f32 at {level:?}: {} ulp at {:e}",
            worst.0,
            worst.1
        );
    }
}

#[test]
fn outputs_beyond_the_streaming_threshold() {
    // 5·10⁶ f64 = 40 MB: existing outputs are written with non-temporal stores on AVX-512
    // and AVX2 (through the staging buffer), new arrays on AVX-512; normal stores elsewhere.
    // Every element is checked: a block the staging copy missed would hold stale values.
    let n = 5_000_001;
    let x = Array1::from_shape_fn(n, |i| (i % 2000) as f64 * 0.01 - 10.0);
    let y = Array1::from_shape_fn(n, |i| (i % 777) as f64 + 0.5);
    for threads in [1, 2] {
        let p = pool(threads);
        let e = p.install(|| parlinalg::exp(&x));
        let s = p.install(|| parlinalg::add(&x, &y)).unwrap();
        let mut out = Array1::from_elem(n, f64::NAN);
        p.install(|| parlinalg::div_into(&x, &y, &mut out)).unwrap();
        let mut e_into = Array1::from_elem(n, f64::NAN);
        p.install(|| parlinalg::exp_into(&x, &mut e_into)).unwrap();
        // The same kernel on one thread (a parlinalg call inside a caller's pool runs there).
        let serial = pool(1).install(|| parlinalg::exp(&x));
        for i in 0..n {
            assert_eq!(s[i], x[i] + y[i], "add at {i}");
            assert_eq!(out[i], x[i] / y[i], "div at {i}");
            assert_eq!(e[i].to_bits(), serial[i].to_bits(), "exp at {i}");
            assert_eq!(e_into[i].to_bits(), serial[i].to_bits(), "exp_into at {i}");
        }
        for i in (0..n).step_by(997).chain([1, 2, 3, n - 2, n - 1]) {
            assert!((e[i] / x[i].exp() - 1.0).abs() < 1e-15, "exp at {i}");
        }
    }
}

/// A result too large to allocate is `Error::Allocation` from the fallible unary maps (as from
/// `add`, `sum_axis` and `matmul`), and the infallible ones panic with that error, as their
/// docs say. The input is one element broadcast (stride 0), so nothing huge is allocated.
#[test]
fn unary_maps_of_a_huge_broadcast_view_are_allocation_errors() {
    let one = ndarray::array![0.5f64];
    let huge = one.broadcast(IxDyn(&[1 << 31, 1 << 31])).unwrap();
    let want = vec![1usize << 31, 1 << 31];
    type Try = fn(&ndarray::ArrayViewD<'_, f64>) -> parlinalg::Result<Array<f64, IxDyn>>;
    type Map = fn(&ndarray::ArrayViewD<'_, f64>) -> Array<f64, IxDyn>;
    let ops: [(&str, Try, Map); 5] = [
        ("exp", |x| parlinalg::try_exp(x), |x| parlinalg::exp(x)),
        ("ln", |x| parlinalg::try_ln(x), |x| parlinalg::ln(x)),
        ("sqrt", |x| parlinalg::try_sqrt(x), |x| parlinalg::sqrt(x)),
        ("tanh", |x| parlinalg::try_tanh(x), |x| parlinalg::tanh(x)),
        (
            "sigmoid",
            |x| parlinalg::try_sigmoid(x),
            |x| parlinalg::sigmoid(x),
        ),
    ];
    for (name, try_op, op) in ops {
        let err = try_op(&huge).unwrap_err();
        match &err {
            Error::Allocation { op, shape } => assert_eq!((*op, shape), (name, &want)),
            other => panic!("{name}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("(2147483648, 2147483648)"), "{msg}");
        let panic = std::panic::catch_unwind(|| op(&huge)).unwrap_err();
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(text, msg, "{name} panics with the error try_{name} returns");
        // The fallible form gives the same values as the infallible one.
        let x = Array1::linspace(0.1, 3.0, 100).into_dyn();
        assert_eq!(try_op(&x.view()).unwrap(), op(&x.view()));
    }
    // The other families already said so.
    assert!(matches!(
        parlinalg::add(&huge, &huge),
        Err(Error::Allocation { .. })
    ));
    let wide = one.broadcast((1 << 61, 2)).unwrap();
    assert!(matches!(
        parlinalg::sum_axis(&wide.t(), Axis(0)),
        Err(Error::Allocation { .. })
    ));
}
