//! LAPACK routines over ndarray-linalg's LAPACK layer (`lax`), in the LAPACK inside the same
//! OpenBLAS as the products (so under the same BLAS thread settings).
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | [`solve`](crate::solve) | `sgetrf`, `sgecon`, `sgetrs` | `dgetrf`, `dgecon`, `dgetrs` |
//! | [`inv`](crate::inv) | `sgetrf`, `sgecon`, `sgetri` | `dgetrf`, `dgecon`, `dgetri` |
//! | [`det`](crate::det) | `sgetrf` | `dgetrf` |
//! | [`cholesky`](crate::cholesky) | `spotrf` (lower) | `dpotrf` (lower) |
//! | [`eigvalsh`](crate::eigvalsh) | `ssyev` (values only, lower) | `dsyev` (values only, lower) |
//! | [`singular_values`](crate::singular_values) | `sgesdd` (`jobz = 'N'`) | `dgesdd` (`jobz = 'N'`) |
//! | [`lstsq`](crate::lstsq) | `sgesdd` (`jobz = 'S'`), `cblas_sgemv` | `dgesdd` (`jobz = 'S'`), `cblas_dgemv` |
//!
//! Every routine, in this order:
//! 1. checks shapes (square, matching rows) and that sizes fit LAPACK's 32-bit integer (`lax`
//!    converts with `as i32`, which would wrap);
//! 2. answers empty inputs itself, as numpy does (LAPACK is never called with a zero
//!    dimension: `lax` passes `lda = n` to some routines, which LAPACK refuses for `n = 0`);
//! 3. refuses NaN and infinity anywhere in the input (LAPACK's behaviour on them is undefined);
//! 4. copies the input once into a fresh column-major buffer, whatever its layout (LAPACK
//!    overwrites its input, and `lax` mishandles some strided and 1×n layouts);
//! 5. calls LAPACK and maps its `info` to [`Error`] in one place, `lapack_error`.
//!
//! Results are new standard-layout (C-order) arrays.

use std::ffi::c_int;

use crate::threads::{blas_call, CallSize};
use lax::error::Error as LaxError;
use ndarray::{Array, Array1, Array2, ArrayBase, ArrayView2, Data, Dimension, Ix1, Ix2};
use ndarray::{ShapeBuilder, StrideShape};
use ndarray_linalg::{JobSvd, Lapack, MatrixLayout, Transpose, UPLO};

use crate::{Error, Float, Result};

/// Largest `min(m, n)` [`lstsq`] takes: its SVD workspace, about `4·min(m, n)²` elements plus
/// blocking, must fit LAPACK's 32-bit integer (`lax` would panic converting it).
pub const LSTSQ_MAX_MIN_DIM: usize = 20_000;

/// The right-hand sides [`solve`] takes: a vector ([`Ix1`](type@Ix1), one system) or a matrix
/// ([`Ix2`](type@Ix2), one system per column).
///
/// Sealed: implemented for these two dimensions only.
pub trait SolveRhs: Dimension + sealed::Sealed {}

impl SolveRhs for Ix1 {}
impl SolveRhs for Ix2 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for ndarray::Ix1 {}
    impl Sealed for ndarray::Ix2 {}
}

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
    let lu = factorize(OP, &scaled, order)?;
    ensure_well_conditioned(&lu, one_norm(&scaled))?;
    // `reversed_axes` is the identity on a vector and the transpose of a matrix: either way
    // its logical order is b's column-major order, so each system's right-hand side is one
    // contiguous chunk of n elements.
    let mut x = collect(OP, b.shape(), b.view().reversed_axes().iter().copied())?;
    for column in x.chunks_exact_mut(n) {
        for (v, &e) in column.iter_mut().zip(&eq.row) {
            *v = scale2(*v, e);
        }
        lapack_call(n, || T::lax_getrs(&lu, column))?
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
    let mut lu = factorize(OP, &scaled, order)?;
    ensure_well_conditioned(&lu, one_norm(&scaled))?;
    lapack_call(n, || T::lax_getri(&mut lu))?.map_err(|e| lapack_error::<T>(Routine::Getri, e))?;
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
    let lu = match factorize(OP, &scaled, order) {
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

/// Cholesky factor `L` (lower triangular, positive diagonal) of a symmetric positive definite
/// matrix: `a = L · Lᵀ`.
///
/// **Only the lower triangle of `a` (with the diagonal) is read; the strict upper triangle is
/// never looked at** (LAPACK's `uplo = 'L'`, as numpy). A matrix that is not symmetric is
/// therefore treated as the symmetric matrix its lower triangle defines: no error, and the
/// result is the factor of that matrix, not of `a`. NaN or infinity is refused anywhere in `a`,
/// even in the unread triangle. The strict upper triangle of the result is exactly zero.
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
/// - [`Error::NotSquare`]; [`Error::NonFinite`]; [`Error::DimensionTooLarge`];
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
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn cholesky<T, S>(a: &ArrayBase<S, Ix2>) -> Result<Array2<T>>
where
    T: Float,
    S: Data<Elem = T>,
{
    const OP: &str = "cholesky";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(Array2::zeros((0, 0)));
    }
    check_finite(OP, a)?;
    // The lower triangle in column-major order, zeros above: potrf overwrites the lower
    // triangle with L and leaves the zeros alone.
    let mut l = lower_column_major(OP, a)?;
    lapack_call(n, || T::lax_potrf(square_layout(order), &mut l))?
        .map_err(|e| lapack_error::<T>(Routine::Potrf, e))?;
    standard_layout(OP, ndarray::Dim([n, n]), l)
}

/// Eigenvalues of a symmetric matrix, in ascending order.
///
/// **Only the lower triangle of `a` (with the diagonal) is read; the strict upper triangle is
/// never looked at** (LAPACK's `uplo = 'L'`, numpy's default `UPLO='L'`). A matrix that is not
/// symmetric is therefore treated as the symmetric matrix its lower triangle defines: no error,
/// and the values are those of that matrix, not the (possibly complex) eigenvalues of `a`.
/// NaN or infinity is refused anywhere in `a`, even in the unread triangle.
///
/// | step | f32 | f64 |
/// |---|---|---|
/// | tridiagonal reduction and QL/QR, values only | `ssyev` | `dsyev` |
///
/// A `0 × 0` matrix has no eigenvalues (an empty vector), as in numpy.
///
/// # Errors
/// [`Error::Lapack`] when the QL/QR iteration does not converge; [`Error::NotSquare`];
/// [`Error::NonFinite`]; [`Error::DimensionTooLarge`]; [`Error::Allocation`].
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
    const OP: &str = "eigvalsh";
    let n = square(OP, a)?;
    let (order, _) = lapack_dims(OP, n, n)?;
    if n == 0 {
        return Ok(Array1::zeros(0));
    }
    check_finite(OP, a)?;
    let mut lower = lower_column_major(OP, a)?;
    let values = lapack_call(n, || T::lax_syev(square_layout(order), &mut lower))?
        .map_err(|e| lapack_error::<T>(Routine::Syev, e))?;
    Ok(Array1::from_vec(values))
}

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
    let svd = lapack_call(m.min(n), || T::lax_gesdd(layout, JobSvd::None, &mut data))?
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
    let svd = lapack_call(m.min(n), || T::lax_gesdd(layout, JobSvd::Some, &mut data))?
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

/// The LAPACK routines parlinalg calls, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routine {
    Getrf,
    Getrs,
    Getri,
    Gecon,
    Potrf,
    Syev,
    Gesdd,
}

impl Routine {
    /// The routine's LAPACK name for `T` (`dgetrf` for f64, `sgetrf` for f32).
    fn name<T: Float>(self) -> &'static str {
        let (single, double) = match self {
            Routine::Getrf => ("sgetrf", "dgetrf"),
            Routine::Getrs => ("sgetrs", "dgetrs"),
            Routine::Getri => ("sgetri", "dgetri"),
            Routine::Gecon => ("sgecon", "dgecon"),
            Routine::Potrf => ("spotrf", "dpotrf"),
            Routine::Syev => ("ssyev", "dsyev"),
            Routine::Gesdd => ("sgesdd", "dgesdd"),
        };
        if T::SINGLE {
            single
        } else {
            double
        }
    }
}

/// Maps a `lax` error of `routine` to parlinalg's [`Error`]. The only place LAPACK status
/// codes are interpreted (lax turns `info > 0` into `LapackComputationalFailure` and
/// `info < 0` into `LapackInvalidValue`).
fn lapack_error<T: Float>(routine: Routine, e: LaxError) -> Error {
    let name = routine.name::<T>();
    match e {
        LaxError::LapackComputationalFailure { return_code: info } => {
            // info > 0 here; a 1-based index for the factorisations.
            let index = usize::try_from(info).unwrap_or(0);
            match routine {
                // getrf: U(info, info) is exactly zero. getri reports the same after getrf.
                Routine::Getrf | Routine::Getri => Error::Singular {
                    routine: name,
                    pivot: index.saturating_sub(1),
                },
                // potrf: the leading minor of order info is not positive.
                Routine::Potrf => Error::NotPositiveDefinite {
                    routine: name,
                    minor: index,
                },
                Routine::Syev => Error::Lapack {
                    routine: name,
                    info,
                    why: format!(
                        "the QL/QR iteration did not converge: {info} off-diagonal elements of \
                         the tridiagonal form did not reach zero"
                    ),
                },
                Routine::Gesdd => Error::Lapack {
                    routine: name,
                    info,
                    why: "the bidiagonal divide-and-conquer SVD (?bdsdc) did not converge".into(),
                },
                Routine::Getrs | Routine::Gecon => Error::Lapack {
                    routine: name,
                    info,
                    why: "unexpected positive info from a routine that defines none".into(),
                },
            }
        }
        LaxError::LapackInvalidValue { return_code: info } => Error::Lapack {
            routine: name,
            info,
            why: format!(
                "argument {} had an illegal value (a bug in parlinalg's call: please report it)",
                info.unsigned_abs()
            ),
        },
        LaxError::InvalidShape => Error::Lapack {
            routine: name,
            info: 0,
            why: "ndarray-linalg refused the matrix layout".into(),
        },
    }
}

/// An LU factorisation: `factors` holds `L` (unit lower, below the diagonal) and `U`, column
/// major `n × n`; `ipiv` the 1-based row interchanges, as `?getrf` returns them.
#[derive(Debug)]
pub struct Lu<T> {
    n: c_int,
    factors: Vec<T>,
    ipiv: Vec<i32>,
}

/// Per-type dispatch to ndarray-linalg's LAPACK layer ([`ndarray_linalg::Lapack`], i.e.
/// `lax`), for `f32` and `f64` only. Every buffer is column major.
///
/// The trait is public inside a private module, so users can name neither it nor its methods:
/// it seals [`crate::Float`] together with the BLAS dispatch. Its methods have names of their
/// own: making `ndarray_linalg::Scalar` a supertrait of `Float` instead would make `x.exp()`,
/// `x.sqrt()`, `x.abs()` ... ambiguous (`Scalar` and `num_traits::Float` both define them) in
/// every generic function of the crate.
pub trait LapackScalar: Copy + 'static {
    /// `true` for f32 (the `s` routines), `false` for f64 (the `d` routines).
    #[doc(hidden)]
    const SINGLE: bool;

    /// `?getrf` on the `n × n` matrix in `a`, overwritten with its factors.
    #[doc(hidden)]
    fn lax_getrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<i32>>;

    /// `?getrs`: overwrites the right-hand side `b` (`n` elements) with the solution.
    #[doc(hidden)]
    fn lax_getrs(lu: &Lu<Self>, b: &mut [Self]) -> lax::error::Result<()>;

    /// `?getri`: overwrites the factors with the inverse.
    #[doc(hidden)]
    fn lax_getri(lu: &mut Lu<Self>) -> lax::error::Result<()>;

    /// `?gecon` (1-norm): the estimated reciprocal condition number, given `anorm = ‖a‖₁`.
    #[doc(hidden)]
    fn lax_gecon(lu: &Lu<Self>, anorm: Self) -> lax::error::Result<Self>;

    /// `?potrf` with `uplo = 'L'`: overwrites the lower triangle with `L`.
    #[doc(hidden)]
    fn lax_potrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<()>;

    /// `?syev` with `jobz = 'N'`, `uplo = 'L'`: the eigenvalues, ascending.
    #[doc(hidden)]
    fn lax_syev(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<Self>>;

    /// `?gesdd`: singular values (descending) and, for `jobz = 'S'`, the thin `U` (`m × k`)
    /// and `Vᵀ` (`k × n`), column major.
    #[doc(hidden)]
    fn lax_gesdd(
        layout: MatrixLayout,
        jobz: JobSvd,
        a: &mut [Self],
    ) -> lax::error::Result<Svd<Self>>;
}

/// What [`LapackScalar::lax_gesdd`] returns.
#[derive(Debug)]
pub struct Svd<T> {
    s: Vec<T>,
    u: Option<Vec<T>>,
    vt: Option<Vec<T>>,
}

macro_rules! impl_lapack_scalar {
    ($t:ty, $single:expr) => {
        impl LapackScalar for $t {
            const SINGLE: bool = $single;

            fn lax_getrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<i32>> {
                <$t as Lapack>::lu(layout, a)
            }

            fn lax_getrs(lu: &Lu<Self>, b: &mut [Self]) -> lax::error::Result<()> {
                let layout = square_layout(lu.n);
                <$t as Lapack>::solve(layout, Transpose::No, &lu.factors, &lu.ipiv, b)
            }

            fn lax_getri(lu: &mut Lu<Self>) -> lax::error::Result<()> {
                let layout = square_layout(lu.n);
                <$t as Lapack>::inv(layout, &mut lu.factors, &lu.ipiv)
            }

            fn lax_gecon(lu: &Lu<Self>, anorm: Self) -> lax::error::Result<Self> {
                <$t as Lapack>::rcond(square_layout(lu.n), &lu.factors, anorm)
            }

            fn lax_potrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<()> {
                <$t as Lapack>::cholesky(layout, UPLO::Lower, a)
            }

            fn lax_syev(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<Self>> {
                <$t as Lapack>::eigh(false, layout, UPLO::Lower, a)
            }

            fn lax_gesdd(
                layout: MatrixLayout,
                jobz: JobSvd,
                a: &mut [Self],
            ) -> lax::error::Result<Svd<Self>> {
                let svd = <$t as Lapack>::svddc(layout, jobz, a)?;
                Ok(Svd {
                    s: svd.s,
                    u: svd.u,
                    vt: svd.vt,
                })
            }
        }
    };
}

impl_lapack_scalar!(f32, true);
impl_lapack_scalar!(f64, false);

// ---------------------------------------------------------------------------------------------
// Checks and copies

/// The order of a square matrix, or [`Error::NotSquare`].
fn square<T, S: Data<Elem = T>>(op: &'static str, a: &ArrayBase<S, Ix2>) -> Result<usize> {
    let (m, n) = a.dim();
    if m == n {
        Ok(n)
    } else {
        Err(Error::NotSquare {
            op,
            shape: a.shape().to_vec(),
        })
    }
}

/// Both dimensions as LAPACK integers, after checking that they and the element count fit
/// (`lax` multiplies dimensions and converts lengths with `as i32`, which would wrap).
fn lapack_dims(op: &'static str, rows: usize, cols: usize) -> Result<(c_int, c_int)> {
    let too_large = |dim: usize| Error::DimensionTooLarge {
        op,
        dim,
        max: c_int::MAX.unsigned_abs() as usize,
    };
    let r = c_int::try_from(rows).map_err(|_| too_large(rows))?;
    let c = c_int::try_from(cols).map_err(|_| too_large(cols))?;
    let count = rows.saturating_mul(cols);
    c_int::try_from(count).map_err(|_| too_large(count))?;
    Ok((r, c))
}

/// The layout `lax` expects for an `n × n` column-major buffer.
fn square_layout(n: c_int) -> MatrixLayout {
    MatrixLayout::F { col: n, lda: n }
}

/// [`Error::NonFinite`] naming the first NaN or infinity of `a` in logical (row-major) order.
fn check_finite<T: Float, S: Data<Elem = T>, D: Dimension>(
    op: &'static str,
    a: &ArrayBase<S, D>,
) -> Result<()> {
    if a.iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let view = a.view().into_dyn();
    match view.indexed_iter().find(|(_, x)| !x.is_finite()) {
        Some((index, value)) => Err(Error::NonFinite {
            op,
            index: index.slice().to_vec(),
            value: value.to_string(),
        }),
        None => Ok(()),
    }
}

/// `‖a‖₁`, the largest column sum of absolute values (what `?gecon` wants).
fn one_norm<T: Float, S: Data<Elem = T>>(a: &ArrayBase<S, Ix2>) -> T {
    a.columns()
        .into_iter()
        .map(|column| column.iter().fold(T::zero(), |sum, x| sum + x.abs()))
        .fold(T::zero(), T::max)
}

/// `a`'s LU factorisation with partial pivoting; [`Error::Singular`] for an exactly zero pivot.
fn factorize<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
    n: c_int,
) -> Result<Lu<T>> {
    let mut factors = column_major(op, a)?;
    let ipiv = lapack_call(n as usize, || getrf_on_a_large_stack(n, &mut factors))??
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
const GETRF_HELPER_MIN_ELEMENTS: usize = 4096;

/// Stack of the `?getrf` helper thread: more than ten times the largest use measured. Only
/// address space is reserved; pages are committed as they are touched.
const GETRF_STACK: usize = 64 << 20;

/// `?getrf` on the column-major `n × n` `factors`, on a helper thread with a large stack when
/// OpenBLAS may take its multithreaded path (see [`GETRF_HELPER_MIN_ELEMENTS`]). The outer
/// `Result` is parlinalg's (the helper could not start), the inner one LAPACK's.
fn getrf_on_a_large_stack<T: Float>(
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

/// Runs one LAPACK routine on an order-`n` problem under the thread controller (its blocked
/// algorithms call threaded level-3 BLAS, so it counts as a BLAS caller).
fn lapack_call<R>(n: usize, f: impl FnOnce() -> R) -> Result<R> {
    blas_call(CallSize::Lapack { n }, f)
}

/// [`Error::IllConditioned`] when `?gecon` estimates the reciprocal condition number below
/// machine epsilon. Never skipped: the matrix is equilibrated first ([`Equilibration`]), so
/// `anorm` is at most `2n`; were it ever not finite, the estimate would be meaningless and the
/// matrix is refused (it used to be waved through, and an overflowed LU returned a wrong
/// answer as `Ok`).
fn ensure_well_conditioned<T: Float>(lu: &Lu<T>, anorm: T) -> Result<()> {
    let rcond = if anorm.is_finite() {
        lapack_call(lu.n as usize, || T::lax_gecon(lu, anorm))?
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

/// Row and column scalings by powers of two (the idea of LAPACK's `?geequb`): `As = R·A·C`
/// with `R = diag(2^row[i])`, `C = diag(2^col[j])`, chosen so that each row of `R·A` has its
/// largest magnitude in `[1, 2)`, then each column of `R·A·C` too. Multiplying by a power of
/// two adds no rounding (short of the subnormal range), so the scaled problem is the same
/// problem: an LU of `As` cannot overflow (`|As| < 2`), and its condition estimate is never
/// skipped. Entries of 1e±300 or subnormal ones factor as well as entries of 1.
struct Equilibration {
    row: Vec<i32>,
    col: Vec<i32>,
}

impl Equilibration {
    fn of<T: Float, S: Data<Elem = T>>(a: &ArrayBase<S, Ix2>) -> Equilibration {
        // In the exponent domain (integers), so that no scaled value can underflow on the way:
        // the unit exponent of x·2^r is the unit exponent of x minus r, exactly.
        let unit = |v: &T| (*v != T::zero()).then(|| unit_exponent(*v));
        let row: Vec<i32> = a
            .rows()
            .into_iter()
            .map(|r| r.iter().filter_map(unit).min().unwrap_or(0))
            .collect();
        let col = a
            .columns()
            .into_iter()
            .map(|c| {
                c.iter()
                    .zip(&row)
                    .filter_map(|(v, &r)| unit(v).map(|u| u - r))
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        Equilibration { row, col }
    }

    /// `R·A·C`, a new C-order array.
    fn apply<T: Float, S: Data<Elem = T>>(
        &self,
        op: &'static str,
        a: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<T>> {
        let (n, m) = a.dim();
        // Logical (row-major) order, so the vector is the C-order array.
        let values = a
            .indexed_iter()
            .map(|((i, j), &v)| scale2(v, self.row[i] + self.col[j]));
        let data = collect(op, &[n, m], values)?;
        Ok(Array2::from_shape_vec((n, m), data).expect("collect gives n·m elements"))
    }
}

/// The `k` with `|x|·2^k` in `[1, 2)`; 0 for 0 (an all-zero row or column stays as it is, and
/// is found singular).
fn unit_exponent<T: Float>(x: T) -> i32 {
    let (_, e) = frexp(x.to_f64().unwrap_or(0.0));
    if x == T::zero() {
        0
    } else {
        i32::try_from(1 - e).expect("an f64 exponent fits an i32")
    }
}

/// `x · 2^k`, exact unless the result leaves the normal range of `T`.
fn scale2<T: Float>(x: T, k: i32) -> T {
    let y = ldexp(x.to_f64().unwrap_or(f64::NAN), i64::from(k));
    if T::SINGLE {
        T::from(y as f32)
    } else {
        T::from(y)
    }
    .unwrap_or_else(T::nan)
}

/// A vector of `shape`'s element count filled from `values`, allocated fallibly.
fn collect<T>(
    op: &'static str,
    shape: &[usize],
    values: impl Iterator<Item = T>,
) -> Result<Vec<T>> {
    let len = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let mut v = Vec::new();
    len.and_then(|len| v.try_reserve_exact(len).ok())
        .ok_or_else(|| Error::Allocation {
            op,
            shape: shape.to_vec(),
        })?;
    v.extend(values);
    Ok(v)
}

/// `a`'s elements in column-major order.
fn column_major<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<Vec<T>> {
    collect(op, a.shape(), a.t().iter().copied())
}

/// `a`'s lower triangle (with the diagonal) in column-major order, zeros above the diagonal.
fn lower_column_major<T: Float, S: Data<Elem = T>>(
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

/// The column-major `data` of shape `dim` (as many elements, built by this module) as a new
/// standard-layout (C-order) array.
fn standard_layout<T: Float, D: Dimension>(
    op: &'static str,
    dim: D,
    data: Vec<T>,
) -> Result<Array<T, D>> {
    let column_major = Array::from_shape_vec(dim.clone().f(), data)
        .expect("the buffer was built with the result's element count");
    if column_major.is_standard_layout() {
        return Ok(column_major);
    }
    let c_order = collect(op, dim.slice(), column_major.iter().copied())?;
    Ok(Array::from_shape_vec(dim, c_order).expect("a C-order buffer of the array's length"))
}

/// A column-major `rows × cols` view of `data`, or `None` when the length does not match.
fn column_major_view<T>(data: &[T], rows: usize, cols: usize) -> Option<ArrayView2<'_, T>> {
    let shape: StrideShape<Ix2> = (rows, cols).f().into();
    ArrayView2::from_shape(shape, data).ok()
}

// ---------------------------------------------------------------------------------------------
// The determinant's product

/// `±Π values · 2^shift`, accumulated as an `f64` mantissa in `[0.5, 1)` and a separate power of two, so
/// that no intermediate product overflows or underflows; only the final value may, to `±inf` or
/// `0`, as the true product does in `T`.
fn signed_product<T: Float>(values: impl Iterator<Item = T>, negative: bool, shift: i64) -> T {
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

/// `x = m · 2^e` with `0.5 ≤ |m| < 1`; zero, infinities and NaN come back as `(x, 0)`.
fn frexp(x: f64) -> (f64, i64) {
    const EXP_MASK: u64 = 0x7ff << 52;
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = i64::try_from((bits & EXP_MASK) >> 52).expect("11 bits");
    if biased == 0 {
        // Subnormal: scale into the normal range first (exactly: a power of two).
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    (
        f64::from_bits((bits & !EXP_MASK) | (1022 << 52)),
        biased - 1022,
    )
}

/// `m · 2^e`, in steps that keep every factor a normal power of two.
fn ldexp(m: f64, e: i64) -> f64 {
    // Beyond ±2200 the result is 0 or ±inf whatever |m| < 1 is.
    let mut e = i32::try_from(e.clamp(-2200, 2200)).expect("clamped");
    let mut x = m;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

#[cfg(test)]
mod tests {
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
}
