//! Unit tests of the LAPACK layer's private helpers.

use super::cholesky::lower_column_major;
use super::equilibrate::{frexp, ldexp};
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
    let v = lower_column_major("t", &a).unwrap();
    assert_eq!(v, vec![1.0, 2.0, 4.0, 0.0, 3.0, 5.0, 0.0, 0.0, 6.0]);
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
