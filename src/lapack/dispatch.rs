//! Per-type dispatch to `lax`'s `s` / `d` routines: the sealed [`LapackScalar`] supertrait of
//! [`crate::Float`].

use super::*;

/// An LU factorisation of a C-order `n × n` matrix `A` as `?getrf` leaves it: `factors` holds,
/// read as column major, `L` (unit lower, below the diagonal) and `U` of `Aᵀ = P·L·U`; `ipiv`
/// the 1-based row interchanges. The routines below answer for `A` itself (`lax`'s C layout:
/// `?getrs` transposed, the infinity-norm `?gecon`, `?getri` whose result read in C order is
/// `A⁻¹`); `det A = det Aᵀ` is the signed product of the pivots.
#[derive(Debug)]
pub struct Lu<T> {
    pub(super) n: c_int,
    pub(super) factors: Vec<T>,
    pub(super) ipiv: Vec<i32>,
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

    /// `?getrf` on the `n × n` matrix in `a` (as `layout` says), overwritten with its factors.
    #[doc(hidden)]
    fn lax_getrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<i32>>;

    /// `?getrs`: overwrites the right-hand side `b` (`n` elements) with the solution of
    /// `A·x = b`.
    #[doc(hidden)]
    fn lax_getrs(lu: &Lu<Self>, b: &mut [Self]) -> lax::error::Result<()>;

    /// `?getri`: overwrites the factors with `A⁻¹` (C order).
    #[doc(hidden)]
    fn lax_getri(lu: &mut Lu<Self>) -> lax::error::Result<()>;

    /// `?gecon`: the estimated reciprocal 1-norm condition number of `A`, given `anorm = ‖A‖₁`
    /// (the infinity-norm estimate for the `Aᵀ` LAPACK holds).
    #[doc(hidden)]
    fn lax_gecon(lu: &Lu<Self>, anorm: Self) -> lax::error::Result<Self>;

    /// `?potrf` of the `uplo` triangle, overwritten with the factor.
    #[doc(hidden)]
    fn lax_potrf(layout: MatrixLayout, uplo: UPLO, a: &mut [Self]) -> lax::error::Result<()>;

    /// `?syev` with `jobz = 'N'` of the `uplo` triangle: the eigenvalues, ascending.
    #[doc(hidden)]
    fn lax_syev(layout: MatrixLayout, uplo: UPLO, a: &mut [Self]) -> lax::error::Result<Vec<Self>>;

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
    pub(super) s: Vec<T>,
    pub(super) u: Option<Vec<T>>,
    pub(super) vt: Option<Vec<T>>,
}

macro_rules! impl_lapack_scalar {
    ($t:ty, $single:expr) => {
        impl LapackScalar for $t {
            const SINGLE: bool = $single;

            fn lax_getrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<i32>> {
                <$t as Lapack>::lu(layout, a)
            }

            fn lax_getrs(lu: &Lu<Self>, b: &mut [Self]) -> lax::error::Result<()> {
                let layout = c_order_layout(lu.n);
                <$t as Lapack>::solve(layout, Transpose::No, &lu.factors, &lu.ipiv, b)
            }

            fn lax_getri(lu: &mut Lu<Self>) -> lax::error::Result<()> {
                let layout = c_order_layout(lu.n);
                <$t as Lapack>::inv(layout, &mut lu.factors, &lu.ipiv)
            }

            fn lax_gecon(lu: &Lu<Self>, anorm: Self) -> lax::error::Result<Self> {
                <$t as Lapack>::rcond(c_order_layout(lu.n), &lu.factors, anorm)
            }

            fn lax_potrf(
                layout: MatrixLayout,
                uplo: UPLO,
                a: &mut [Self],
            ) -> lax::error::Result<()> {
                <$t as Lapack>::cholesky(layout, uplo, a)
            }

            fn lax_syev(
                layout: MatrixLayout,
                uplo: UPLO,
                a: &mut [Self],
            ) -> lax::error::Result<Vec<Self>> {
                <$t as Lapack>::eigh(false, layout, uplo, a)
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
