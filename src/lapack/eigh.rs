//! Eigenvalues of a symmetric matrix: `?syev`.

use super::cholesky::lower_c_order;
use super::*;

/// Eigenvalues of a symmetric matrix, in ascending order.
///
/// **Only the lower triangle of `a` (with the diagonal) is read; the strict upper triangle is
/// never looked at** (LAPACK's `uplo = 'L'`, numpy's default `UPLO='L'`). A matrix that is not
/// symmetric is therefore treated as the symmetric matrix its lower triangle defines: no error,
/// and the values are those of that matrix, not the (possibly complex) eigenvalues of `a`.
/// NaN or infinity is refused in the lower triangle and ignored above it, as numpy does.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | tridiagonal reduction and QL/QR, values only | `ssyev` | `dsyev` |
///
/// A `0 × 0` matrix has no eigenvalues (an empty vector), as in numpy.
///
/// # Errors
/// [`Error::Lapack`] when the QL/QR iteration does not converge; [`Error::NotSquare`];
/// [`Error::NonFinite`] (lower triangle); [`Error::DimensionTooLarge`]; [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let w = parlinalg::eigvalsh(&array![[2.0_f64, 1.0], [1.0, 2.0]])?;
/// assert!((w[0] - 1.0).abs() < 1e-12 && (w[1] - 3.0).abs() < 1e-12);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn eigvalsh<T, S>(a: &ArrayBase<S, Ix2>) -> Result<Array1<T>>
where
    T: Float,
    S: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "eigvalsh";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(Array1::zeros(0));
    }
    // Read as column major the buffer is `Aᵀ` (the same eigenvalues), whose upper triangle
    // is `A`'s lower one.
    let mut lower = lower_c_order(OP, a)?;
    let values = lapack_call(rt, n, || {
        T::lax_syev(square_layout(order), UPLO::Upper, &mut lower)
    })
    .map_err(|e| lapack_error::<T>(Routine::Syev, e))?;
    Ok(Array1::from_vec(values))
}
