//! LAPACK routines over ndarray-linalg's LAPACK layer (`lax`), in the LAPACK inside the same
//! OpenBLAS as the products (so under the same BLAS thread settings).
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | [`solve`](crate::solve) | `sgetrf`, `slacn2` + `sgetrs`, `sgetrs` | `dgetrf`, `dlacn2` + `dgetrs`, `dgetrs` |
//! | [`inv`](crate::inv) | `sgetrf`, `sgetri`, `‖A⁻¹‖₁` of the inverse | `dgetrf`, `dgetri`, `‖A⁻¹‖₁` of the inverse |
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
//! 3. copies the input once into a fresh buffer, whatever its layout (LAPACK overwrites its
//!    input, and `lax` mishandles some strided and 1×n layouts): C order for the square
//!    routines, which LAPACK then reads as the transpose (`?getrf` factors `Aᵀ` and the
//!    transposed `?getrs` and `?getri` answer for `A`, and the condition estimate is the
//!    infinity-norm one of `Aᵀ`; `?potrf` and `?syev` read
//!    `A`'s lower triangle as `Aᵀ`'s upper one), so no transposing copy in or out; column major
//!    for the SVD routines;
//! 4. refuses NaN and infinity anywhere in what LAPACK reads (its behaviour on them is
//!    undefined), found during that copy without a test per element;
//! 5. calls LAPACK and maps its `info` to [`Error`] in one place, `lapack_error`.
//!
//! Results are new standard-layout (C-order) arrays.

mod cholesky;
mod condition;
mod dispatch;
mod eigh;
mod equilibrate;
mod lu;
mod stack;
mod svd;
#[cfg(test)]
mod tests;

pub use cholesky::cholesky;
pub(crate) use dispatch::LapackScalar;
pub use eigh::eigvalsh;
pub use lu::{det, inv, solve};
pub use svd::{lstsq, singular_values, LSTSQ_MAX_MIN_DIM};

use std::ffi::c_int;

use crate::threads::{CallSize, Runtime};
use lax::error::Error as LaxError;
use ndarray::{Array, Array1, Array2, ArrayBase, ArrayView2, Data, Dimension, Ix1, Ix2};
use ndarray::{ShapeBuilder, StrideShape};
use ndarray_linalg::{JobSvd, Lapack, MatrixLayout, UPLO};

use crate::{Error, Float, Result};

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

/// The LAPACK routines parlinalg calls, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Routine {
    Getrf,
    Getrs,
    Getri,
    Lacn2,
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
            Routine::Lacn2 => ("slacn2", "dlacn2"),
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
pub(super) fn lapack_error<T: Float>(routine: Routine, e: LaxError) -> Error {
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
                Routine::Getrs | Routine::Lacn2 => Error::Lapack {
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

/// The order of a square matrix, or [`Error::NotSquare`].
pub(super) fn square<T, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<usize> {
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
pub(super) fn lapack_dims(op: &'static str, rows: usize, cols: usize) -> Result<(c_int, c_int)> {
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
pub(super) fn square_layout(n: c_int) -> MatrixLayout {
    MatrixLayout::F { col: n, lda: n }
}

/// The layout `lax` expects for an `n × n` C-order buffer: LAPACK sees its transpose, and
/// `lax` answers for the matrix itself through the transposed routines.
pub(super) fn c_order_layout(n: c_int) -> MatrixLayout {
    MatrixLayout::C { row: n, lda: n }
}

/// [`Error::NonFinite`] naming the first NaN or infinity of `a` in logical (row-major) order.
pub(super) fn check_finite<T: Float, S: Data<Elem = T>, D: Dimension>(
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

/// Whether every value is finite, without a branch per element: `v · 0` is ±0 for a finite `v`
/// and NaN for NaN or ±∞, summed in lanes of 8 so that the compiler vectorises it.
pub(super) fn all_finite<T: Float>(values: &[T]) -> bool {
    const LANES: usize = 8;
    let mut lanes = [T::zero(); LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        let chunk: &[T; LANES] = chunk.try_into().expect("chunks of LANES");
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + v * T::zero();
        }
    }
    lanes
        .iter()
        .chain(tail)
        .all(|&v| v * T::zero() == T::zero())
}

/// As [`check_finite`], over the lower triangle (diagonal included) of a square matrix only:
/// what routines that never read the upper triangle (`?potrf`, `?syev`) see, so junk there is
/// not an error, as in numpy.
pub(super) fn check_finite_lower<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<()> {
    match a
        .indexed_iter()
        .find(|&((i, j), x)| i >= j && !x.is_finite())
    {
        Some(((i, j), value)) => Err(Error::NonFinite {
            op,
            index: vec![i, j],
            value: value.to_string(),
        }),
        None => Ok(()),
    }
}

/// Runs one LAPACK routine on an order-`n` problem under the thread controller (its blocked
/// algorithms call threaded level-3 BLAS, so it counts as a BLAS caller).
pub(super) fn lapack_call<R>(rt: Runtime, n: usize, f: impl FnOnce() -> R) -> R {
    rt.blas_call(CallSize::Lapack { n }, f)
}

/// Runs `?getrf` of an `n × n` matrix of `T` under the thread controller, counted at the
/// threads OpenBLAS 0.3.27 and later give it (one per 10 000 elements in f64); on one thread
/// also with an older OpenBLAS where that is all it can use (`threads/control.rs`, `call`).
pub(super) fn getrf_call<T: Float, R>(rt: Runtime, n: usize, f: impl FnOnce() -> R) -> R {
    rt.blas_call(
        CallSize::Lu {
            n,
            single: is_single::<T>(),
        },
        f,
    )
}

/// [`getrf_call`] for `?potrf` of order `n` (one thread per 64 columns in f64).
pub(super) fn potrf_call<T: Float, R>(rt: Runtime, n: usize, f: impl FnOnce() -> R) -> R {
    rt.blas_call(
        CallSize::Cholesky {
            n,
            single: is_single::<T>(),
        },
        f,
    )
}

/// Whether `T` is single precision (OpenBLAS threads its factorisations from larger sizes).
fn is_single<T: Float>() -> bool {
    std::mem::size_of::<T>() == std::mem::size_of::<f32>()
}

/// A vector of `shape`'s element count filled from `values`, allocated fallibly.
pub(super) fn collect<T>(
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
pub(super) fn column_major<T: Float, S: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<S, Ix2>,
) -> Result<Vec<T>> {
    collect(op, a.shape(), a.t().iter().copied())
}

/// The column-major `data` of shape `dim` (as many elements, built by this module) as a new
/// standard-layout (C-order) array.
pub(super) fn standard_layout<T: Float, D: Dimension>(
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
pub(super) fn column_major_view<T>(
    data: &[T],
    rows: usize,
    cols: usize,
) -> Option<ArrayView2<'_, T>> {
    let shape: StrideShape<Ix2> = (rows, cols).f().into();
    ArrayView2::from_shape(shape, data).ok()
}

// ---------------------------------------------------------------------------------------------
// The determinant's product
