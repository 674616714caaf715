//! LU factorisation with partial pivoting and what is built on it: `solve` (`?getrf`, `?lacn2`,
//! `?getrs`), `inv` (`?getri`, the condition number from the inverse), `det`.

use super::condition::{reciprocal_condition, reciprocal_condition_of_inverse};
use super::dispatch::{Lu, System};
use super::equilibrate::{frexp, ldexp, scale_all, Equilibration, Magnitudes};
use super::stack;
use super::*;

/// Solves `a · x = b` for a square `a`, by LU factorisation with partial pivoting.
///
/// `b` is a vector of length `n` (one system) or an `n × r` matrix (one system per column);
/// the result has `b`'s shape. Any layout of `a` and `b` is taken (owned, views, `a.t()`,
/// strided, reversed), with the same result bit for bit: `a` is copied once into a C-order
/// buffer (which LAPACK factors as `aᵀ`, answering through the transposed routines), `b` into
/// a column-major one.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
/// | condition estimate (1-norm), `?gecon`'s estimator with `?getrs` solves | `slacn2` + `sgetrs` | `dlacn2` + `dgetrs` |
/// | triangular solves, every column of `b` at once | `sgetrs` | `dgetrs` |
///
/// Equilibrated where the magnitudes need it: when an entry lies outside `2^±(MAX_EXP/2)`
/// (about 1e±154 for f64) or rows or columns differ in scale by more than 16×, rows, then
/// columns, are scaled by powers of two so that each has its largest magnitude in `[1, 2)` (no
/// rounding is added), the LU and the condition estimate run on the scaled matrix, and the
/// result is scaled back. Entries of 1e±300, subnormal ones, or rows and columns of mixed
/// scale therefore neither overflow the factorisation nor skip the conditioning check; only a
/// result outside `T`'s range becomes `±inf` or 0, as IEEE says. Other matrices go to LAPACK
/// as they are, after one copy that also finds non-finite entries and `‖A‖₁`.
///
/// A `0 × 0` system has the empty solution (`b`'s shape, `0` or `0 × r`), as in numpy.
///
/// # Errors
/// - [`Error::NotSquare`] when `a` is not square;
/// - [`Error::ShapeMismatch`] when `b`'s length (rows) differs from `a`'s order (both shapes);
/// - [`Error::NonFinite`] for NaN or infinity in `a`, then in `b` (index of the first);
/// - [`Error::Singular`] when a pivot of the LU factorisation is exactly zero (which one);
/// - [`Error::IllConditioned`] when no pivot is zero but the estimated reciprocal condition
///   number is below machine epsilon (numpy would return numbers with no correct digit);
/// - [`Error::DimensionTooLarge`] beyond LAPACK's 32-bit integer; [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let a = array![[3.0_f64, 1.0], [1.0, 2.0]];
/// let x = parlinalg::solve(&a, &array![9.0, 8.0])?;              // one system
/// assert!((x[0] - 2.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12);
/// let xs = parlinalg::solve(&a.t(), &array![[4.0, 3.0], [3.0, 1.0]])?; // two, aᵀ read as is
/// assert_eq!(xs.dim(), (2, 2));
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn solve<T, SA, SB, D>(a: &ArrayBase<SA, Ix2>, b: &ArrayBase<SB, D>) -> Result<Array<T, D>>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
    D: SolveRhs,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "solve";
    let n = square(OP, a)?;
    let rows = b.shape()[0];
    if rows != n {
        return Err(Error::shape(
            OP,
            a.shape(),
            b.shape(),
            format!("a is {n}×{n} but b has {rows} rows"),
        ));
    }
    let r = b.shape().get(1).copied().unwrap_or(1);
    let (order, _) = lapack_dims(OP, n, n)?;
    lapack_dims(OP, n, r)?;
    if n == 0 {
        return Ok(Array::zeros(b.raw_dim()));
    }
    let (lu, eq, anorm) = prepare(OP, a, order)?;
    check_finite(OP, b)?;
    let lu = factorize(rt, lu, order)?;
    ensure_well_conditioned(rt, &lu, anorm)?;
    // `reversed_axes` is the identity on a vector and the transpose of a matrix: either way
    // its logical order is b's column-major order, so each system's right-hand side is one
    // contiguous chunk of n elements.
    let mut x = collect(OP, b.shape(), b.view().reversed_axes().iter().copied())?;
    // A x = b with A = R⁻¹ As C⁻¹ (powers of two): As (C⁻¹ x) = R b.
    if let Some(eq) = &eq {
        for column in x.chunks_exact_mut(n) {
            for (v, &e) in column.iter_mut().zip(&eq.row) {
                scale_all(std::slice::from_mut(v), e);
            }
        }
    }
    // Every right-hand side in one call.
    if r > 0 {
        lapack_call(rt, n, || T::lax_getrs(&lu, System::A, r, &mut x))
            .map_err(|e| lapack_error::<T>(Routine::Getrs, e))?;
    }
    if let Some(eq) = &eq {
        for column in x.chunks_exact_mut(n) {
            for (v, &e) in column.iter_mut().zip(&eq.col) {
                scale_all(std::slice::from_mut(v), e);
            }
        }
    }
    standard_layout(OP, b.raw_dim(), x)
}

/// Inverse of a square matrix, by LU factorisation with partial pivoting.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
/// | inverse from the factors | `sgetri` | `dgetri` |
/// | condition number (1-norm), exact: `‖A‖₁ ‖A⁻¹‖₁` from the inverse | one pass | one pass |
///
/// Equilibrated where the magnitudes need it: when an entry lies outside `2^±(MAX_EXP/2)`
/// (about 1e±154 for f64) or rows or columns differ in scale by more than 16×, rows, then
/// columns, are scaled by powers of two so that each has its largest magnitude in `[1, 2)` (no
/// rounding is added), the LU, the inverse and the condition number are those of the scaled
/// matrix, and the result is scaled back. Entries of 1e±300, subnormal ones, or rows and
/// columns of mixed scale therefore neither overflow the factorisation nor skip the
/// conditioning check; only a result outside `T`'s range becomes `±inf` or 0, as IEEE says.
/// Other matrices go to LAPACK as they are, after one copy that also finds non-finite entries
/// and `‖A‖₁`.
///
/// The conditioning check is [`solve`]'s, on the exact condition number rather than an
/// estimate: the inverse is at hand, so `‖A⁻¹‖₁` is one pass over it, cheaper than the
/// estimate's solves (which only bound `‖A⁻¹‖₁` from below). A matrix is therefore refused
/// after `?getri`, not before it.
///
/// The inverse of a `0 × 0` matrix is `0 × 0`, as in numpy. Prefer [`solve`] to multiplying by
/// the inverse: it is faster and more accurate.
///
/// # Errors
/// [`Error::NotSquare`]; [`Error::NonFinite`]; [`Error::Singular`] (an exactly zero pivot,
/// which one); [`Error::IllConditioned`] (reciprocal condition number below machine epsilon,
/// or an inverse that overflowed; `routine` is `?getri`); [`Error::DimensionTooLarge`];
/// [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let a = array![[4.0_f32, 7.0], [2.0, 6.0]];
/// let a_inv = parlinalg::inv(&a)?;
/// let id = parlinalg::matmul(&a, &a_inv)?;
/// assert!((id[[0, 0]] - 1.0).abs() < 1e-6 && id[[0, 1]].abs() < 1e-6);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn inv<T, S>(a: &ArrayBase<S, Ix2>) -> Result<Array2<T>>
where
    T: Float,
    S: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "inv";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(Array2::zeros((0, 0)));
    }
    let (buf, eq, anorm) = prepare(OP, a, order)?;
    let mut lu = factorize(rt, buf, order)?;
    // The condition number from the inverse itself (exact, one pass), before it is scaled
    // back: κ₁(As) = ‖As‖₁ ‖As⁻¹‖₁. As in `ensure_well_conditioned`, a `‖As‖₁` that is not
    // finite leaves nothing to check against, and `?getri` never runs on that LU.
    let rcond = if anorm.is_finite() {
        lapack_call(rt, n, || T::lax_getri(&mut lu))
            .map_err(|e| lapack_error::<T>(Routine::Getri, e))?;
        reciprocal_condition_of_inverse(&lu.factors, n, anorm)
    } else {
        T::nan()
    };
    refuse_if_ill_conditioned::<T>(Routine::Getri, rcond)?;
    // A = R⁻¹ As C⁻¹ (powers of two), so A⁻¹ = C As⁻¹ R: element (i, j), at i·n + j in the
    // C-order result, times 2^(col[i] + row[j]).
    if let Some(eq) = &eq {
        for (i, result_row) in lu.factors.chunks_exact_mut(n).enumerate() {
            for (v, &r) in result_row.iter_mut().zip(&eq.row) {
                scale_all(std::slice::from_mut(v), eq.col[i] + r);
            }
        }
    }
    Ok(Array2::from_shape_vec((n, n), lu.factors).expect("the factors hold n·n elements"))
}

/// Determinant of a square matrix, from its LU factorisation: the product of the pivots `U[i,i]`
/// times the sign of the row permutation.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
///
/// Equilibrated by powers of two where the magnitudes need it, as [`solve`] (the exponents go
/// into the product's separate power of two), so no pivot overflows.
///
/// The determinant of a `0 × 0` matrix is 1 (the empty product), as in numpy. An exactly
/// singular matrix (a zero pivot) has determinant 0: that is an answer, not an error. The
/// product is accumulated in `f64` with a separate power of two, so no intermediate product
/// overflows or underflows; only a determinant outside `T`'s range becomes `±inf` or `0`, as
/// IEEE arithmetic says. A nearly singular matrix is not refused: its small determinant is the
/// answer.
///
/// # Errors
/// [`Error::NotSquare`]; [`Error::NonFinite`]; [`Error::DimensionTooLarge`];
/// [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let d = parlinalg::det(&array![[1.0_f64, 2.0], [3.0, 4.0]])?;
/// assert!((d + 2.0).abs() < 1e-12);
/// assert_eq!(parlinalg::det(&array![[1.0, 2.0], [2.0, 4.0]])?, 0.0); // singular
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn det<T, S>(a: &ArrayBase<S, Ix2>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
{
    // The one rule for junk in the thread environment, also when no BLAS call follows.
    let rt = crate::threads::enter()?;
    const OP: &str = "det";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(T::one());
    }
    let (buf, eq, _) = prepare(OP, a, order)?;
    let lu = match factorize(rt, buf, order) {
        Ok(lu) => lu,
        Err(Error::Singular { .. }) => return Ok(T::zero()),
        Err(e) => return Err(e),
    };
    // ipiv is 1-based: row i was swapped with row ipiv[i] - 1.
    let swaps = lu
        .ipiv
        .iter()
        .enumerate()
        .filter(|&(i, &p)| usize::try_from(p - 1).ok() != Some(i))
        .count();
    let pivots = (0..n).map(|i| lu.factors[i * n + i]);
    // det A = det As · 2^-(Σ row + Σ col exponents): no pivot overflows or underflows.
    let shift: i64 = eq
        .iter()
        .flat_map(|eq| eq.row.iter().chain(&eq.col))
        .map(|&e| -i64::from(e))
        .sum();
    Ok(signed_product(pivots, swaps % 2 == 1, shift))
}

/// `a` copied once into a C-order buffer for the LU, refused when it holds NaN or infinity,
/// and equilibrated when its magnitudes need it ([`Magnitudes::needs_equilibration`]);
/// with the scaling and `‖As‖₁` (what the condition estimate wants).
///
/// The LU runs on that buffer as it is: read as column major it is `Asᵀ`, which `lax` calls
/// the C layout and answers through the transposed routines (`?getrs` with `trans = 'T'`, the
/// infinity-norm condition estimate of `Asᵀ`, which is the 1-norm one of `As`, and `?getri`,
/// whose `(Asᵀ)⁻¹` read back in C order is `As⁻¹`). No transposing copy in or out.
fn prepare<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
    n: c_int,
) -> Result<(Vec<T>, Option<Equilibration>, T)> {
    let (mut buf, magnitudes) = Magnitudes::copy_of(op, a)?;
    if !magnitudes.all_finite() {
        // NaN or infinity (named by the check), or finite values whose sums overflow.
        check_finite(op, a)?;
    }
    let (eq, anorm) = Equilibration::apply_if_needed(&mut buf, n as usize, &magnitudes);
    Ok((buf, eq, anorm))
}

/// The LU factorisation with partial pivoting of the C-order buffer from [`prepare`];
/// [`Error::Singular`] for an exactly zero pivot.
fn factorize<T: Float>(rt: Runtime, mut factors: Vec<T>, n: c_int) -> Result<Lu<T>> {
    let ipiv = getrf_call::<T, _>(rt, n as usize, || stack::getrf(n, &mut factors))?
        .map_err(|e| lapack_error::<T>(Routine::Getrf, e))?;
    Ok(Lu { n, factors, ipiv })
}

/// [`Error::IllConditioned`] when `?gecon`'s estimate ([`reciprocal_condition`]) puts the
/// reciprocal condition number below machine epsilon. Never skipped: a matrix whose
/// magnitudes could overflow is equilibrated first ([`Equilibration`]), so `anorm` is finite
/// (at most `2n` after equilibration, at most `n·2^(MAX_EXP/2)` without); were it ever not
/// finite, the estimate would be meaningless and the matrix is refused (an overflowed LU would
/// otherwise return a wrong answer as `Ok`).
fn ensure_well_conditioned<T: Float>(rt: Runtime, lu: &Lu<T>, anorm: T) -> Result<()> {
    let rcond = if anorm.is_finite() {
        lapack_call(rt, lu.n as usize, || reciprocal_condition(lu, anorm))
            .map_err(|e| lapack_error::<T>(Routine::Lacn2, e))?
    } else {
        T::nan()
    };
    refuse_if_ill_conditioned::<T>(Routine::Lacn2, rcond)
}

/// [`Error::IllConditioned`], naming `routine`, when `rcond` is below machine epsilon or NaN.
fn refuse_if_ill_conditioned<T: Float>(routine: Routine, rcond: T) -> Result<()> {
    // A NaN is refused too.
    if rcond.is_nan() || rcond < T::epsilon() {
        return Err(Error::IllConditioned {
            routine: routine.name::<T>(),
            rcond: rcond.to_f64().unwrap_or(f64::NAN),
            epsilon: T::epsilon().to_f64().unwrap_or(f64::NAN),
        });
    }
    Ok(())
}

/// `±Π values · 2^shift`, accumulated as an `f64` mantissa in `[0.5, 1)` and a separate power of two, so
/// that no intermediate product overflows or underflows; only the final value may, to `±inf` or
/// `0`, as the true product does in `T`.
pub(super) fn signed_product<T: Float>(
    values: impl Iterator<Item = T>,
    negative: bool,
    shift: i64,
) -> T {
    let (mut mantissa, mut exponent) = (if negative { -1.0 } else { 1.0 }, shift);
    for value in values {
        let (m, e) = frexp(value.to_f64().unwrap_or(f64::NAN));
        let (m, e2) = frexp(mantissa * m);
        mantissa = m;
        exponent += e + e2;
    }
    let product = ldexp(mantissa, exponent);
    // Rounded to T: `as` rounds to nearest and gives ±inf beyond f32's range (IEEE).
    let rounded = if T::SINGLE {
        T::from(product as f32)
    } else {
        T::from(product)
    };
    rounded.unwrap_or_else(T::nan)
}
