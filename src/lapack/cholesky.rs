//! The Cholesky factor of a symmetric positive definite matrix: `?potrf`.

use super::*;

/// Cholesky factor `L` (lower triangular, positive diagonal) of a symmetric positive definite
/// matrix: `a = L · Lᵀ`.
///
/// **Only the lower triangle of `a` (with the diagonal) is read; the strict upper triangle is
/// never looked at** (LAPACK's `uplo = 'L'`, as numpy). A matrix that is not symmetric is
/// therefore treated as the symmetric matrix its lower triangle defines: no error, and the
/// result is the factor of that matrix, not of `a`. NaN or infinity is refused in the lower
/// triangle and ignored above it, as numpy does. The strict upper triangle of the result is
/// exactly zero.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | Cholesky factorisation | `spotrf` | `dpotrf` |
///
/// The factor of a `0 × 0` matrix is `0 × 0`, as in numpy.
///
/// # Errors
/// - [`Error::NotPositiveDefinite`] when the leading minor of some order is not positive (the
///   order, 1-based, as LAPACK's `info`);
/// - [`Error::NotSquare`]; [`Error::NonFinite`] (lower triangle); [`Error::DimensionTooLarge`];
///   [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let a = array![[4.0, 2.0], [2.0, 5.0]];
/// let l = parlinalg::cholesky(&a)?;
/// assert_eq!(l, array![[2.0, 0.0], [1.0, 2.0]]);
/// // The upper triangle is not read:
/// assert_eq!(parlinalg::cholesky(&array![[4.0, 99.0], [2.0, 5.0]])?, l);
/// assert_eq!(parlinalg::cholesky(&array![[4.0, f64::NAN], [2.0, 5.0]])?, l);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn cholesky<T, S>(a: &ArrayBase<S, Ix2>) -> Result<Array2<T>>
where
    T: Float,
    S: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "cholesky";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(Array2::zeros((0, 0)));
    }
    check_finite_lower(OP, a)?;
    // The lower triangle in column-major order, zeros above: potrf overwrites the lower
    // triangle with L and leaves the zeros alone.
    let mut l = lower_column_major(OP, a)?;
    lapack_call(rt, n, || T::lax_potrf(square_layout(order), &mut l))
        .map_err(|e| lapack_error::<T>(Routine::Potrf, e))?;
    standard_layout(OP, ndarray::Dim([n, n]), l)
}

/// `a`'s lower triangle (with the diagonal) in column-major order, zeros above the diagonal.
pub(super) fn lower_column_major<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<Vec<T>> {
    // aᵀ's logical order is a's column-major order; its index (j, i) is a's (i, j).
    let transposed = a.t();
    let values = transposed
        .indexed_iter()
        .map(|((j, i), &x)| if i >= j { x } else { T::zero() });
    collect(op, a.shape(), values)
}
