//! # parlinalg
//!
//! An [`ndarray`] facade whose matrix products run in multithreaded OpenBLAS, with a thread
//! layer that says how many BLAS threads run and which kernel OpenBLAS picked.
//!
//! ## BLAS level
//!
//! [`matmul`], [`matvec`] and [`dot`] take any ndarray whose elements are `f32` or `f64` (owned
//! arrays, views, `a.t()`, slices with steps) and return owned arrays:
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | [`matmul`] | `cblas_sgemm` | `cblas_dgemm` |
//! | [`matvec`] | `cblas_sgemv` | `cblas_dgemv` |
//! | [`dot`] | `cblas_sdot` | `cblas_ddot` |
//!
//! Layouts BLAS reads in place (no copy): C order, F order, transposed views, sub-blocks of a
//! larger array, views with a step over rows (C data) or columns (F data), vectors with a
//! positive stride. Copied once into a C-order buffer first: views with a step on both axes,
//! negative strides, broadcast (stride 0) axes.
//!
//! ```
//! use parlinalg::ndarray::{array, s};
//!
//! let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
//! let c = parlinalg::matmul(&a, &a.t())?;           // 2×2, aᵀ read in place
//! assert_eq!(c, array![[14.0, 32.0], [32.0, 77.0]]);
//! let y = parlinalg::matvec(&a.slice(s![.., ..;2]), &array![1.0, 1.0])?; // copied once
//! assert_eq!(y, array![4.0, 10.0]);
//! # Ok::<(), parlinalg::Error>(())
//! ```
//!
//! ## LAPACK level
//!
//! [`solve`], [`inv`], [`det`], [`cholesky`], [`eigvalsh`], [`singular_values`] and [`lstsq`]
//! run in the LAPACK inside the same OpenBLAS (through ndarray-linalg), so under the same BLAS
//! thread settings as the products. They take any layout, copy the input once into a
//! column-major buffer, and return new C-order arrays:
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | [`solve`] (`b` 1-D or 2-D) | `sgetrf`, `slacn2` + `sgetrs`, `sgetrs` | `dgetrf`, `dlacn2` + `dgetrs`, `dgetrs` |
//! | [`inv`] | `sgetrf`, `sgetri`, `‖A⁻¹‖₁` of the inverse | `dgetrf`, `dgetri`, `‖A⁻¹‖₁` of the inverse |
//! | [`det`] | `sgetrf` | `dgetrf` |
//! | [`cholesky`] (lower factor) | `spotrf` | `dpotrf` |
//! | [`eigvalsh`] (ascending) | `ssyev` | `dsyev` |
//! | [`singular_values`] (descending) | `sgesdd` | `dgesdd` |
//! | [`lstsq`] (minimum norm) | `sgesdd`, `cblas_sgemv` | `dgesdd`, `cblas_dgemv` |
//!
//! Errors are values: [`Error::Singular`] (which pivot), [`Error::IllConditioned`] (singular to
//! working precision), [`Error::NotPositiveDefinite`] (which minor), [`Error::NotSquare`],
//! [`Error::ShapeMismatch`] (both shapes), [`Error::NonFinite`] (NaN or infinity, checked before
//! LAPACK sees it). Empty inputs have numpy's answers: `det` of `0 × 0` is 1, the others
//! return empty arrays (`lstsq` zeros of length `n`). [`cholesky`] and [`eigvalsh`] read only
//! the lower triangle.
//!
//! ```
//! use parlinalg::ndarray::array;
//!
//! let a = array![[4.0_f64, 2.0], [2.0, 3.0]];
//! let x = parlinalg::solve(&a, &array![2.0, 1.0])?;
//! assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
//! assert!((parlinalg::det(&a)? - 8.0).abs() < 1e-12);
//! let singular = parlinalg::solve(&array![[1.0, 2.0], [2.0, 4.0]], &array![1.0, 1.0]);
//! assert!(matches!(singular, Err(parlinalg::Error::Singular { pivot: 1, .. })));
//! # Ok::<(), parlinalg::Error>(())
//! ```
//!
//! ## Elementwise and reductions
//!
//! Everything that is not a matrix product runs in Rust on rayon, serially below a size
//! threshold: in the current rayon pool when called from one (a [`threads::Plan`]'s, or your
//! own `pool.install(..)`), else in parlinalg's outer pool ([`threads::set_outer_threads`],
//! `PARLINALG_OUTER_THREADS`, `RAYON_NUM_THREADS`, or the usable cores).
//!
//! | family | functions | numpy |
//! |---|---|---|
//! | unary maths | [`exp`], [`ln`], [`sqrt`], [`tanh`], [`sigmoid`], each also `_inplace` and `_into` | `np.exp(x)`, `out=` |
//! | binary arithmetic | [`add`], [`sub`], [`mul`], [`div`], each also `_into` | `a + b`, broadcasting |
//! | reductions | [`sum`], [`mean`], [`max`], [`min`], [`norm2`], each also `_axis` | `x.sum()`, `axis=` |
//!
//! - **Any layout**, any dimension: contiguous data (C, F, or any memory order shared by the
//!   operands and the output) goes through the vector kernels in one flat pass; other layouts
//!   row by row, gathering strided rows into a small buffer.
//! - **Vector kernels chosen at run time**: AVX-512, AVX2+FMA or portable code, detected once
//!   ([`simd_level`]). `exp` and `ln` are within 2 ulp, `tanh` and `sigmoid` within 4 ulp,
//!   `sqrt` and arithmetic exact (IEEE); special values as numpy (`exp(710) = inf`,
//!   `ln(0) = -inf`, `ln(-1) = NaN`, `sqrt(-1) = NaN`, NaN in, NaN out).
//! - **Broadcasting** as numpy: shapes align from the last axis, lengths equal or 1; shapes
//!   that do not broadcast are an [`Error::ShapeMismatch`] with both shapes.
//! - **New arrays** are allocated uninitialised, advised to use transparent huge pages when
//!   large (as numpy does), and first touched by the threads that write them.
//! - **Sums are pairwise over fixed leaves** of 1024 elements, so they are bit-identical for
//!   every thread count and every SIMD level, with error at most
//!   `(36 + ⌈log₂⌈n/1024⌉⌉)·u·Σ|xᵢ|`. NaN propagates as numpy; `max`, `min`, `mean` of nothing
//!   are [`Error::Empty`], `sum` of nothing is 0; `norm2` is scaled like LAPACK's `nrm2`.
//!
//! ```
//! use parlinalg::ndarray::{array, Axis};
//!
//! let x = array![[0.0, 1.0], [2.0, 3.0]];
//! let e = parlinalg::exp(&x);                                 // new array, same shape
//! let centred = parlinalg::sub(&x, &array![1.0, 2.0])?;        // row broadcast
//! assert_eq!(centred, array![[-1.0, -1.0], [1.0, 1.0]]);
//! assert_eq!(parlinalg::sum(&x)?, 6.0);
//! assert_eq!(parlinalg::max_axis(&x, Axis(1))?, array![1.0, 3.0]);
//! // On an explicit pool (the thread configuration layer does this for you):
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
//! let s = pool.install(|| parlinalg::sum(&e))?;
//! assert!((s - (1.0 + 1f64.exp() + 2f64.exp() + 3f64.exp())).abs() < 1e-12);
//! # Ok::<(), parlinalg::Error>(())
//! ```
//!
//! ## Which kernel and how many threads
//!
//! [`blas_library`] says which OpenBLAS is loaded, its version, running core kernel and
//! threading layer; [`kernel::check_loaded_kernel`] says whether that kernel is the best the CPU
//! can run and how to fix it. When OpenBLAS fell back to a generic kernel (Debian's 0.3.21 on a
//! CPU newer than it), every program that links parlinalg switches to the right one in-process
//! before `main`, and [`kernel::kernel_selection`] says what happened
//! (`PARLINALG_KERNEL_SWITCH=off` turns this off; a user's `OPENBLAS_CORETYPE` is kept).
//! [`threads`] reads and sets the BLAS thread count.
//!
//! ## What linking parlinalg changes in a process
//!
//! Besides the kernel switch above: a `pthread_atfork` handler that makes `fork()` safe beside
//! threaded calls (README, "Fork"), and, before the first BLAS call, one `malloc` and `free`
//! of 4 MiB that raise glibc's dynamic `mmap` and trim thresholds, as a program's first large
//! temporary would. Without it, OpenBLAS's per-call job table and a result near 256×256 make
//! glibc give the heap's top back to the kernel after every threaded product and fault it in
//! again on the next one. A program that set its own thresholds (`mallopt`,
//! `MALLOC_TRIM_THRESHOLD_`) keeps them.

#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![deny(unreachable_pub)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Links the system OpenBLAS (cblas symbols included); build.rs checks it is there.
use openblas_src as _;

pub use ndarray;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod alloc;
mod blas;
mod elementwise;
mod env;
mod error;
mod lapack;
mod openblas;
mod par;
mod reduce;
mod scalar;
mod simd;
pub mod threads;

pub use blas::{
    dot, matmul, matmul_batch, matmul_batch_into, matmul_batch_with, matmul_into, matvec,
};
pub use elementwise::{
    add, add_into, div, div_into, exp, exp_inplace, exp_into, ln, ln_inplace, ln_into, mul,
    mul_into, sigmoid, sigmoid_inplace, sigmoid_into, sqrt, sqrt_inplace, sqrt_into, sub, sub_into,
    tanh, tanh_inplace, tanh_into, try_exp, try_ln, try_sigmoid, try_sqrt, try_tanh,
};
pub use error::{Error, PoolBuildError, Result};
pub use lapack::{
    cholesky, det, eigvalsh, inv, lstsq, singular_values, solve, SolveRhs, LSTSQ_MAX_MIN_DIM,
};
pub use openblas::info::{blas_library, BlasLibrary, ThreadingLayer};
pub use openblas::kernel;
pub use reduce::{max, max_axis, mean, mean_axis, min, min_axis, norm2, norm2_axis, sum, sum_axis};
pub use scalar::Float;
pub use simd::{simd_level, SimdLevel};
