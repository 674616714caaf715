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
    let mut l = lower_c_order(OP, a)?;
    // Read as column major the buffer is `Aᵀ`, whose upper triangle is `A`'s lower one:
    // `?potrf` with `uplo = 'U'` gives `Aᵀ = Uᵀ·U`, and `U` read back in C order is `L`.
    potrf_call::<T, _>(rt, n, || {
        T::lax_potrf(square_layout(order), UPLO::Upper, &mut l)
    })
    .map_err(|e| lapack_error::<T>(Routine::Potrf, e))?;
    Ok(Array2::from_shape_vec((n, n), l).expect("n·n elements"))
}

/// `a`'s lower triangle (with the diagonal) copied into a C-order buffer, zeros above the
/// diagonal; [`Error::NonFinite`] for NaN or infinity in that triangle (found through the
/// sum of each copied row, so without a test per element; the upper triangle is never read).
/// `?potrf` and `?syev` with `uplo = 'U'` read only the part that was copied (the upper
/// triangle of the `Aᵀ` LAPACK sees) and leave the zeros alone.
pub(super) fn lower_c_order<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<Vec<T>> {
    let n = a.nrows();
    let mut buf = collect(op, a.shape(), std::iter::empty())?;
    let mut finite = true;
    for (i, row) in a.rows().into_iter().enumerate() {
        let start = buf.len();
        let lower = row.slice(ndarray::s![..=i]);
        match lower.as_slice() {
            Some(values) => buf.extend_from_slice(values),
            None => buf.extend(lower.iter().copied()),
        }
        finite &= all_finite(&buf[start..]);
        buf.extend(std::iter::repeat_n(T::zero(), n - i - 1));
    }
    if !finite {
        check_finite_lower(op, a)?;
    }
    Ok(buf)
}
