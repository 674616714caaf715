//! Unit tests of the LAPACK layer's private helpers.

use super::cholesky::lower_c_order;
use super::equilibrate::{frexp, ldexp, scale_all, Equilibration, Magnitudes};
use super::lu::signed_product;
use super::*;
use ndarray::array;

#[test]
fn frexp_and_ldexp_round_trip() {
    for x in [1.0, -3.5, 1e-310, 5e-324, 1e308, -0.75, 2f64.powi(-1022)] {
        let (m, e) = frexp(x);
        assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
        assert_eq!(ldexp(m, e), x, "{x}");
    }
    assert_eq!(frexp(0.0), (0.0, 0));
    assert_eq!(ldexp(0.5, 5000), f64::INFINITY);
    assert_eq!(ldexp(-0.5, -5000), -0.0);
}

#[test]
fn signed_product_does_not_overflow_in_between() {
    let values = [1e200, 1e200, 1e-200, 1e-200, 3.0];
    let p: f64 = signed_product(values.into_iter(), true, 0);
    assert!((p + 3.0).abs() < 1e-12, "{p}");
    let p: f32 = signed_product([1e30f32, 1e30, 1e-30, 1e-30, 2.0].into_iter(), false, 0);
    assert!((p - 2.0).abs() < 1e-6, "{p}");
    let p: f32 = signed_product([1e30f32, 1e30].into_iter(), false, 0);
    assert_eq!(p, f32::INFINITY);
    let p: f32 = signed_product([1e-30f32, 1e-30].into_iter(), true, 0);
    assert_eq!(p, -0.0);
    // The shift is a power of two applied once, at the end (det's equilibration).
    let p: f64 = signed_product([1.5f64, 2.0].into_iter(), false, -2000);
    assert_eq!(p, 0.0);
    let p: f64 = signed_product(
        [1.5 * 2f64.powi(1000), 2f64.powi(1000)].into_iter(),
        false,
        -2000,
    );
    assert_eq!(p, 1.5);
}

#[test]
fn routine_names_follow_the_type() {
    assert_eq!(Routine::Getrf.name::<f32>(), "sgetrf");
    assert_eq!(Routine::Syev.name::<f64>(), "dsyev");
}

#[test]
fn lax_errors_map_to_typed_errors() {
    let fail = |info| LaxError::LapackComputationalFailure { return_code: info };
    assert_eq!(
        lapack_error::<f64>(Routine::Getrf, fail(3)),
        Error::Singular {
            routine: "dgetrf",
            pivot: 2
        }
    );
    assert_eq!(
        lapack_error::<f32>(Routine::Potrf, fail(2)),
        Error::NotPositiveDefinite {
            routine: "spotrf",
            minor: 2
        }
    );
    assert!(matches!(
        lapack_error::<f64>(Routine::Syev, fail(1)),
        Error::Lapack { info: 1, .. }
    ));
    let bad = lapack_error::<f64>(
        Routine::Gesdd,
        LaxError::LapackInvalidValue { return_code: -4 },
    );
    assert!(bad.to_string().contains("argument 4"), "{bad}");
}

#[test]
fn lower_copy_ignores_the_upper_triangle() {
    let a = array![[1.0, 9.0, 9.0], [2.0, 3.0, 9.0], [4.0, 5.0, 6.0]];
    let v = lower_c_order("t", &a).unwrap();
    assert_eq!(v, vec![1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0]);
    let nan = array![[1.0, f64::NAN], [2.0, 3.0]];
    assert_eq!(lower_c_order("t", &nan).unwrap(), vec![1.0, 0.0, 2.0, 3.0]);
    let bad = array![[1.0, 0.0], [f64::INFINITY, 3.0]];
    assert!(
        matches!(lower_c_order("t", &bad), Err(Error::NonFinite { index, .. }) if index == vec![1, 0])
    );
    assert_eq!(
        column_major("t", &a.t()).unwrap(),
        a.iter().copied().collect::<Vec<_>>()
    );
}

#[test]
fn dims_must_fit_lapack_integers() {
    assert!(lapack_dims("t", 3, 4).is_ok());
    assert!(matches!(
        lapack_dims("t", 1 << 31, 1),
        Err(Error::DimensionTooLarge { dim, .. }) if dim == 1 << 31
    ));
    assert!(matches!(
        lapack_dims("t", 1 << 16, 1 << 16),
        Err(Error::DimensionTooLarge { .. })
    ));
}

/// `a`'s C-order copy and its magnitudes, through the strided path as well: both must agree.
fn measured(a: &Array2<f64>) -> (Vec<f64>, Magnitudes<f64>) {
    let (buf, m) = Magnitudes::copy_of("test", a).unwrap();
    let flipped = a.slice(ndarray::s![.., ..;-1]);
    let (strided, m2) = Magnitudes::copy_of("test", &flipped).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&strided),
        bits(&flipped.iter().copied().collect::<Vec<_>>())
    );
    assert_eq!(m.one_norm(), m2.one_norm());
    assert_eq!(m.needs_equilibration(), m2.needs_equilibration());
    (buf, m)
}

#[test]
fn one_pass_copies_measures_and_finds_non_finite_values() {
    // 19 columns: two lanes of 8 and a tail of 3.
    let a = Array2::from_shape_fn((7, 19), |(i, j)| (i as f64 - 3.0) * 0.25 + j as f64 * 0.5);
    let (buf, m) = measured(&a);
    assert_eq!(buf, a.iter().copied().collect::<Vec<_>>());
    let naive = a
        .columns()
        .into_iter()
        .map(|c| c.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max);
    assert_eq!(m.one_norm(), naive);
    assert!(m.all_finite());
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        for at in [(0, 0), (3, 17), (6, 18)] {
            let mut b = a.clone();
            b[at] = bad;
            assert!(!measured(&b).1.all_finite(), "{bad} at {at:?}");
        }
    }
    // Finite values whose sums overflow: not finite either, so the caller looks closer.
    assert!(!measured(&array![[1e308, 1e308], [1e308, 1.0]])
        .1
        .all_finite());
}

#[test]
fn equilibration_only_where_the_magnitudes_need_it() {
    let base = Array2::from_shape_fn(
        (6, 6),
        |(i, j)| if i == j { 4.0 } else { 0.5 + 0.1 * j as f64 },
    );
    assert!(!measured(&base).1.needs_equilibration());
    // Scaled as a whole inside the safe range: no.
    assert!(!measured(&(&base * 1e100)).1.needs_equilibration());
    assert!(!measured(&(&base * 1e-100)).1.needs_equilibration());
    // Outside it, or rows or columns of mixed scale: yes.
    for (what, m) in [
        ("1e300", &base * 1e300),
        ("1e-300", &base * 1e-300),
        ("subnormal", &base * 1e-320),
        ("a row 1e-3", {
            let mut m = base.clone();
            m.row_mut(2).mapv_inplace(|v| v * 1e-3);
            m
        }),
        ("a column 1e3", {
            let mut m = base.clone();
            m.column_mut(4).mapv_inplace(|v| v * 1e3);
            m
        }),
    ] {
        assert!(measured(&m).1.needs_equilibration(), "{what}");
    }
    // A zero row is singular, not mixed scale: left to the LU.
    let mut z = base.clone();
    z.row_mut(1).fill(0.0);
    assert!(!measured(&z).1.needs_equilibration());
}

#[test]
fn equilibration_scales_by_powers_of_two_in_place() {
    let a = array![[1e300, 2e300], [3e-300, -4e-300]];
    let (mut buf, m) = measured(&a);
    let (eq, norm) = Equilibration::apply_if_needed(&mut buf, 2, &m);
    let eq = eq.expect("mixed rows of 1e±300");
    for (i, row) in buf.chunks_exact(2).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            assert!(v.abs() < 2.0 && v != 0.0, "{v}");
            // Exact: scaling back gives the input bit for bit.
            let mut back = [v];
            scale_all(&mut back, -(eq.row[i] + eq.col[j]));
            assert_eq!(back[0], a[[i, j]]);
        }
    }
    assert!(norm.is_finite() && norm < 4.0, "{norm}");
}

#[test]
fn scale_all_is_one_exact_multiply_or_the_stepwise_scaling() {
    let mut v = [1.5f64, -3.0, 5e-324];
    scale_all(&mut v, 10);
    assert_eq!(v, [1536.0, -3072.0, 5e-324 * 1024.0]);
    // 2^1100 is not an f64: stepwise, exact where the result is normal.
    let mut w = [2f64.powi(-1000) * 2f64.powi(-50), 1.0];
    scale_all(&mut w, 1100);
    assert_eq!(w, [2f64.powi(50), f64::INFINITY]);
    let mut f = [3.0f32];
    scale_all(&mut f, -130);
    assert_eq!(f, [(3.0 * 2f64.powi(-130)) as f32]); // subnormal in f32: rounded once
}
