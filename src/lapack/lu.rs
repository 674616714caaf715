//! LU factorisation with partial pivoting and what is built on it: `solve` (`?getrf`, `?gecon`,
//! `?getrs`), `inv` (`?getri`), `det`.

use super::dispatch::Lu;
use super::equilibrate::{frexp, ldexp, scale2, Equilibration};
use super::*;

/// Solves `a · x = b` for a square `a`, by LU factorisation with partial pivoting.
///
/// `b` is a vector of length `n` (one system) or an `n × r` matrix (one system per column);
/// the result has `b`'s shape. Any layout of `a` and `b` is taken (owned, views, `a.t()`,
/// strided, reversed); both are copied once into column-major buffers.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
/// | condition estimate (1-norm) | `sgecon` | `dgecon` |
/// | triangular solves, per column of `b` | `sgetrs` | `dgetrs` |
///
/// Equilibrated first: rows, then columns, are scaled by powers of two so that each has its
/// largest magnitude in `[1, 2)` (no rounding is added), the LU and the condition estimate run
/// on the scaled matrix, and the result is scaled back. Entries of 1e±300, subnormal ones, or
/// rows and columns of mixed scale therefore neither overflow the factorisation nor skip the
/// conditioning check; only a result outside `T`'s range becomes `±inf` or 0, as IEEE says.
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
    check_finite(OP, a)?;
    check_finite(OP, b)?;
    // A x = b with A = R⁻¹ As C⁻¹ (powers of two): As (C⁻¹ x) = R b.
    let eq = Equilibration::of(a);
    let scaled = eq.apply(OP, a)?;
    let lu = factorize(rt, OP, &scaled, order)?;
    ensure_well_conditioned(rt, &lu, one_norm(&scaled))?;
    // `reversed_axes` is the identity on a vector and the transpose of a matrix: either way
    // its logical order is b's column-major order, so each system's right-hand side is one
    // contiguous chunk of n elements.
    let mut x = collect(OP, b.shape(), b.view().reversed_axes().iter().copied())?;
    for column in x.chunks_exact_mut(n) {
        for (v, &e) in column.iter_mut().zip(&eq.row) {
            *v = scale2(*v, e);
        }
        lapack_call(rt, n, || T::lax_getrs(&lu, column))
            .map_err(|e| lapack_error::<T>(Routine::Getrs, e))?;
        for (v, &e) in column.iter_mut().zip(&eq.col) {
            *v = scale2(*v, e);
        }
    }
    standard_layout(OP, b.raw_dim(), x)
}

/// Inverse of a square matrix, by LU factorisation with partial pivoting.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
/// | condition estimate (1-norm) | `sgecon` | `dgecon` |
/// | inverse from the factors | `sgetri` | `dgetri` |
///
/// Equilibrated first: rows, then columns, are scaled by powers of two so that each has its
/// largest magnitude in `[1, 2)` (no rounding is added), the LU and the condition estimate run
/// on the scaled matrix, and the result is scaled back. Entries of 1e±300, subnormal ones, or
/// rows and columns of mixed scale therefore neither overflow the factorisation nor skip the
/// conditioning check; only a result outside `T`'s range becomes `±inf` or 0, as IEEE says.
///
/// The inverse of a `0 × 0` matrix is `0 × 0`, as in numpy. Prefer [`solve`] to multiplying by
/// the inverse: it is faster and more accurate.
///
/// # Errors
/// [`Error::NotSquare`]; [`Error::NonFinite`]; [`Error::Singular`] (an exactly zero pivot,
/// which one); [`Error::IllConditioned`] (reciprocal condition number below machine epsilon);
/// [`Error::DimensionTooLarge`]; [`Error::Allocation`].
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
    check_finite(OP, a)?;
    // A = R⁻¹ As C⁻¹ (powers of two), so A⁻¹ = C As⁻¹ R.
    let eq = Equilibration::of(a);
    let scaled = eq.apply(OP, a)?;
    let mut lu = factorize(rt, OP, &scaled, order)?;
    ensure_well_conditioned(rt, &lu, one_norm(&scaled))?;
    lapack_call(rt, n, || T::lax_getri(&mut lu))
        .map_err(|e| lapack_error::<T>(Routine::Getri, e))?;
    // Column-major: element (i, j) is at j·n + i.
    for (j, column) in lu.factors.chunks_exact_mut(n).enumerate() {
        for (i, v) in column.iter_mut().enumerate() {
            *v = scale2(*v, eq.col[i] + eq.row[j]);
        }
    }
    standard_layout(OP, ndarray::Dim([n, n]), lu.factors)
}

/// Determinant of a square matrix, from its LU factorisation: the product of the pivots `U[i,i]`
/// times the sign of the row permutation.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | LU with partial pivoting | `sgetrf` | `dgetrf` |
///
/// Equilibrated by powers of two as [`solve`] (the exponents go into the product's separate
/// power of two), so no pivot overflows.
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
    check_finite(OP, a)?;
    // det A = det As · 2^-(Σ row + Σ col exponents): no pivot overflows or underflows.
    let eq = Equilibration::of(a);
    let scaled = eq.apply(OP, a)?;
    let lu = match factorize(rt, OP, &scaled, order) {
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
    let shift: i64 = eq.row.iter().chain(&eq.col).map(|&e| -i64::from(e)).sum();
    Ok(signed_product(pivots, swaps % 2 == 1, shift))
}

/// `‖a‖₁`, the largest column sum of absolute values (what `?gecon` wants).
pub(super) fn one_norm<T: Float, S: Data<Elem = T>>(a: &ArrayBase<S, Ix2>) -> T {
    a.columns()
        .into_iter()
        .map(|column| column.iter().fold(T::zero(), |sum, x| sum + x.abs()))
        .fold(T::zero(), T::max)
}

/// `a`'s LU factorisation with partial pivoting; [`Error::Singular`] for an exactly zero pivot.
pub(super) fn factorize<T: Float, S: Data<Elem = T>>(
    rt: Runtime,
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
    n: c_int,
) -> Result<Lu<T>> {
    let mut factors = column_major(op, a)?;
    let ipiv = lapack_call(rt, n as usize, || getrf_on_a_large_stack(n, &mut factors))?
        .map_err(|e| lapack_error::<T>(Routine::Getrf, e))?;
    Ok(Lu { n, factors, ipiv })
}

/// Matrices with at least this many elements are factorised on a helper thread with
/// [`GETRF_STACK`] bytes of stack.
///
/// OpenBLAS's multithreaded `?getrf` (which 0.3.21 takes from 10 000 elements on, with more
/// than one BLAS thread) puts a `job` array of about 0.5 MiB on the caller's stack at every
/// level of its recursion (OpenBLAS issues #246, #1082, #3229). Measured with Debian's 0.3.21
/// (`MAX_THREADS=64`, 2 threads): 2.7 MiB for n = 257, 4.9 MiB for n = 1000 to 3000. A Rust
/// thread has 2 MiB unless told otherwise (`std::thread::spawn`, rayon's workers, the test
/// harness), and overflowing it is a SIGSEGV, not a panic. The threshold is below OpenBLAS's
/// so that a version with a lower one is covered too.
pub(super) const GETRF_HELPER_MIN_ELEMENTS: usize = 4096;

/// Stack of the `?getrf` helper thread: more than ten times the largest use measured. Only
/// address space is reserved; pages are committed as they are touched.
pub(super) const GETRF_STACK: usize = 64 << 20;

/// `?getrf` on the column-major `n × n` `factors`, on a helper thread with a large stack when
/// OpenBLAS may take its multithreaded path (see [`GETRF_HELPER_MIN_ELEMENTS`]). The outer
/// `Result` is parlinalg's (the helper could not start), the inner one LAPACK's.
pub(super) fn getrf_on_a_large_stack<T: Float>(
    n: c_int,
    factors: &mut [T],
) -> Result<lax::error::Result<Vec<i32>>> {
    // With one BLAS thread OpenBLAS takes its single-threaded getrf, which needs no big stack
    // (the controller has already set the count for this call).
    let caller = crate::threads::CallerThreads::of_this_thread();
    if factors.len() < GETRF_HELPER_MIN_ELEMENTS || caller.count() == 1 {
        return Ok(T::lax_getrf(square_layout(n), factors));
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("parlinalg-getrf".into())
            .stack_size(GETRF_STACK)
            .spawn_scoped(scope, move || {
                caller.adopt_here();
                T::lax_getrf(square_layout(n), factors)
            })
            .map_err(|e| Error::Lapack {
                routine: Routine::Getrf.name::<T>(),
                info: 0,
                why: format!(
                    "cannot start a thread with a {} MiB stack for it: {e}",
                    GETRF_STACK >> 20
                ),
            })?;
        // lax does not panic on valid input; if it ever does, the panic goes on as it is.
        Ok(helper
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// [`Error::IllConditioned`] when `?gecon` estimates the reciprocal condition number below
/// machine epsilon. Never skipped: the matrix is equilibrated first ([`Equilibration`]), so
/// `anorm` is at most `2n`; were it ever not finite, the estimate would be meaningless and the
/// matrix is refused (an overflowed LU would otherwise return a wrong answer as `Ok`).
pub(super) fn ensure_well_conditioned<T: Float>(rt: Runtime, lu: &Lu<T>, anorm: T) -> Result<()> {
    let rcond = if anorm.is_finite() {
        lapack_call(rt, lu.n as usize, || T::lax_gecon(lu, anorm))
            .map_err(|e| lapack_error::<T>(Routine::Gecon, e))?
    } else {
        T::nan()
    };
    // A NaN estimate is refused too.
    if rcond.is_nan() || rcond < T::epsilon() {
        return Err(Error::IllConditioned {
            routine: Routine::Gecon.name::<T>(),
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
