//! Singular values and minimum-norm least squares: `?gesdd`.

use super::equilibrate::{scale2, unit_exponent};
use super::*;

/// Largest `min(m, n)` [`lstsq`] takes: its SVD workspace, about `4·min(m, n)²` elements plus
/// blocking, must fit LAPACK's 32-bit integer (`lax` would panic converting it).
pub const LSTSQ_MAX_MIN_DIM: usize = 20_000;

/// Singular values of an `m × n` matrix, in descending order (`min(m, n)` of them).
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | bidiagonal divide and conquer, values only | `sgesdd` (`jobz = 'N'`) | `dgesdd` (`jobz = 'N'`) |
///
/// A matrix with a zero dimension has no singular values (an empty vector), as in numpy.
///
/// # Errors
/// [`Error::Lapack`] when the SVD does not converge; [`Error::NonFinite`];
/// [`Error::DimensionTooLarge`]; [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let s = parlinalg::singular_values(&array![[3.0_f64, 0.0, 0.0], [0.0, -4.0, 0.0]])?;
/// assert!((s[0] - 4.0).abs() < 1e-12 && (s[1] - 3.0).abs() < 1e-12);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn singular_values<T, S>(a: &ArrayBase<S, Ix2>) -> Result<Array1<T>>
where
    T: Float,
    S: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "singular_values";
    let (m, n) = a.dim();
    let (rows, cols) = lapack_dims(OP, m, n)?;
    if m == 0 || n == 0 {
        return Ok(Array1::zeros(0));
    }
    check_finite(OP, a)?;
    let mut data = column_major(OP, a)?;
    let layout = MatrixLayout::F {
        col: cols,
        lda: rows,
    };
    let svd = lapack_call(rt, m.min(n), || {
        T::lax_gesdd(layout, JobSvd::None, &mut data)
    })
    .map_err(|e| lapack_error::<T>(Routine::Gesdd, e))?;
    Ok(Array1::from_vec(svd.s))
}

/// Minimum-norm least-squares solution `x` of `a · x ≈ b`, for an `m × n` matrix `a` of any
/// shape (tall, square, wide) and rank, and `b` of length `m`.
///
/// `a` and `b` are each scaled by one power of two (their largest magnitude into `[1, 2)`; a
/// global scaling leaves the minimum-norm solution unchanged, and adds no rounding), so
/// entries of 1e±300 or subnormal ones work as well as entries of 1.
///
/// `x` minimises `‖a·x − b‖₂`, and among the minimisers (when `a` is rank-deficient or wide)
/// has the smallest `‖x‖₂`. It is computed from the thin SVD `a = U·diag(s)·Vᵀ` as
/// `x = V · diag(1/sᵢ) · Uᵀ · b`, where singular values `sᵢ ≤ ε · max(m, n) · s₀` count as zero
/// (`ε` the machine epsilon of `T`): numpy's default `rcond` for `numpy.linalg.lstsq`. This is
/// the rank decision `?gelsd` makes with that `rcond`; ndarray-linalg's own `least_squares`
/// calls `?gelsd` with `rcond = -1` (LAPACK's epsilon, `max(m, n)` times smaller), which keeps
/// rounding-level singular values of a rank-deficient matrix and blows them up.
///
/// For `f32` the SVD runs in `f32` and the cutoff uses `f32`'s epsilon. numpy computes `f32`
/// input in `f64` with `f64`'s epsilon, so on an `f32` matrix that is rank-deficient up to
/// `f32` rounding it counts the rounding noise as rank, and its answer differs from this one.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | thin SVD | `sgesdd` (`jobz = 'S'`) | `dgesdd` (`jobz = 'S'`) |
/// | `Uᵀ·b`, then `V·c` | `cblas_sgemv` | `cblas_dgemv` |
///
/// A matrix with a zero dimension gives `x = 0` of length `n` (the minimum-norm solution of
/// an empty system), as in numpy.
///
/// # Errors
/// - [`Error::ShapeMismatch`] when `b`'s length differs from `a`'s rows (both shapes);
/// - [`Error::NonFinite`] for NaN or infinity in `a`, then in `b`;
/// - [`Error::Lapack`] when the SVD does not converge;
/// - [`Error::DimensionTooLarge`] when `min(m, n)` exceeds [`LSTSQ_MAX_MIN_DIM`] or a size
///   exceeds LAPACK's 32-bit integer; [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// // Fit y = c0 + c1·t through three points.
/// let a = array![[1.0_f64, 0.0], [1.0, 1.0], [1.0, 2.0]];
/// let x = parlinalg::lstsq(&a, &array![1.0, 3.0, 5.0])?;
/// assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12);
/// // Rank-deficient: two equal columns share the weight equally.
/// let x = parlinalg::lstsq(&array![[1.0_f64, 1.0], [2.0, 2.0]], &array![2.0, 4.0])?;
/// assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn lstsq<T, SA, SB>(a: &ArrayBase<SA, Ix2>, b: &ArrayBase<SB, Ix1>) -> Result<Array1<T>>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "lstsq";
    let (m, n) = a.dim();
    if b.len() != m {
        return Err(Error::shape(
            OP,
            a.shape(),
            b.shape(),
            format!("a has {m} rows but b has length {}", b.len()),
        ));
    }
    let (rows, cols) = lapack_dims(OP, m, n)?;
    let k = m.min(n);
    if k > LSTSQ_MAX_MIN_DIM {
        return Err(Error::DimensionTooLarge {
            op: OP,
            dim: k,
            max: LSTSQ_MAX_MIN_DIM,
        });
    }
    if k == 0 {
        return Ok(Array1::zeros(n));
    }
    check_finite(OP, a)?;
    check_finite(OP, b)?;
    // One power of two for a and one for b (the minimum-norm solution is invariant only under
    // a global scaling): As = 2^sa·a, bs = 2^sb·b, and x = 2^(sa − sb)·xs.
    let sa = unit_exponent(a.iter().fold(T::zero(), |m, v| m.max(v.abs())));
    let sb = unit_exponent(b.iter().fold(T::zero(), |m, v| m.max(v.abs())));
    let a = a.mapv(|v| scale2(v, sa));
    let b = b.mapv(|v| scale2(v, sb));
    let mut data = column_major(OP, &a)?;
    let layout = MatrixLayout::F {
        col: cols,
        lda: rows,
    };
    let svd = lapack_call(rt, m.min(n), || {
        T::lax_gesdd(layout, JobSvd::Some, &mut data)
    })
    .map_err(|e| lapack_error::<T>(Routine::Gesdd, e))?;
    let missing = || Error::Lapack {
        routine: Routine::Gesdd.name::<T>(),
        info: 0,
        why: "jobz = 'S' returned no singular vectors of the expected size".into(),
    };
    let (u, vt) = (svd.u.ok_or_else(missing)?, svd.vt.ok_or_else(missing)?);
    let u = column_major_view(&u, m, k).ok_or_else(missing)?;
    let vt = column_major_view(&vt, k, n).ok_or_else(missing)?;
    let largest = svd.s[0];
    let cutoff = T::epsilon() * T::from(m.max(n)).unwrap_or_else(T::max_value) * largest;
    let utb = crate::matvec(&u.t(), &b)?;
    let scaled: Array1<T> = utb
        .iter()
        .zip(&svd.s)
        .map(|(&c, &s)| if s > cutoff { c / s } else { T::zero() })
        .collect();
    Ok(crate::matvec(&vt.t(), &scaled)?.mapv(|v| scale2(v, sa - sb)))
}

// ---------------------------------------------------------------------------------------------
// LAPACK dispatch and the one place its status becomes an Error
