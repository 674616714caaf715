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
/// `lax`), for `f32` and `f64` only. Every buffer is column major as LAPACK reads it (a C-order
/// copy of `A` is `Aᵀ` there: see [`Lu`]).
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

    /// `?getrs`: overwrites the `nrhs` right-hand sides in `b` (column major, `n × nrhs`)
    /// with the solutions of `A·X = B` (or `Aᵀ·X = B`, as `system` says), in one call (level 3
    /// for several right-hand sides; `lax` takes one at a time, so this one calls LAPACK
    /// through `lapack-sys`, the declarations `lax` itself uses).
    #[doc(hidden)]
    fn lax_getrs(
        lu: &Lu<Self>,
        system: System,
        nrhs: usize,
        b: &mut [Self],
    ) -> lax::error::Result<()>;

    /// One step of `?lacn2`, LAPACK's reverse-communication 1-norm estimator (Hager and
    /// Higham's, the one inside `?gecon`): on return `kase` is 0 when `est` is final, else 1
    /// or 2 to ask for `x` to be overwritten with `M·x` or `Mᵀ·x`. `v`, `x` and `isgn` hold
    /// `n` elements each and `isave` the estimator's state between steps.
    #[doc(hidden)]
    fn lax_lacn2(
        v: &mut [Self],
        x: &mut [Self],
        isgn: &mut [c_int],
        est: &mut Self,
        kase: &mut c_int,
        isave: &mut [c_int; 3],
    );

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

/// Which system [`LapackScalar::lax_getrs`] solves with an LU of `A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// `A·X = B`.
    A,
    /// `Aᵀ·X = B`.
    Transposed,
}

/// What [`LapackScalar::lax_gesdd`] returns.
#[derive(Debug)]
pub struct Svd<T> {
    pub(super) s: Vec<T>,
    pub(super) u: Option<Vec<T>>,
    pub(super) vt: Option<Vec<T>>,
}

macro_rules! impl_lapack_scalar {
    ($t:ty, $single:expr, $getrs:path, $lacn2:path) => {
        impl LapackScalar for $t {
            const SINGLE: bool = $single;

            fn lax_getrf(layout: MatrixLayout, a: &mut [Self]) -> lax::error::Result<Vec<i32>> {
                <$t as Lapack>::lu(layout, a)
            }

            fn lax_getrs(
                lu: &Lu<Self>,
                system: System,
                nrhs: usize,
                b: &mut [Self],
            ) -> lax::error::Result<()> {
                let n = lu.n;
                let nrhs = c_int::try_from(nrhs).map_err(|_| lax::error::Error::InvalidShape)?;
                let expected = usize::try_from(n).unwrap_or(0) * usize::try_from(nrhs).unwrap_or(0);
                if b.len() != expected || lu.factors.len() != usize::try_from(n).unwrap_or(0).pow(2)
                {
                    return Err(lax::error::Error::InvalidShape);
                }
                // LAPACK holds the LU of Aᵀ (see `Lu`): A·X = B is its transposed system.
                let trans = match system {
                    System::A => c"T",
                    System::Transposed => c"N",
                };
                let mut info = 0;
                // SAFETY: `factors` holds the n × n LU (lda = n) and `ipiv` its n pivots, as
                // `?getrf` left them; `b` holds n × nrhs elements, column major (ldb = n ≥ 1),
                // both checked above; `trans` is a NUL-terminated "T" or "N".
                unsafe {
                    $getrs(
                        trans.as_ptr(),
                        &n,
                        &nrhs,
                        lu.factors.as_ptr(),
                        &n,
                        lu.ipiv.as_ptr(),
                        b.as_mut_ptr(),
                        &n,
                        &mut info,
                    )
                };
                match info {
                    0 => Ok(()),
                    info if info < 0 => {
                        Err(lax::error::Error::LapackInvalidValue { return_code: info })
                    }
                    info => {
                        Err(lax::error::Error::LapackComputationalFailure { return_code: info })
                    }
                }
            }

            fn lax_lacn2(
                v: &mut [Self],
                x: &mut [Self],
                isgn: &mut [c_int],
                est: &mut Self,
                kase: &mut c_int,
                isave: &mut [c_int; 3],
            ) {
                let n = c_int::try_from(x.len()).expect("n fits LAPACK's integer");
                assert!(
                    v.len() == x.len() && isgn.len() == x.len(),
                    "lacn2 needs n of each"
                );
                // SAFETY: `v`, `x` and `isgn` hold n elements each (asserted above), `isave`
                // 3, as `?lacn2` reads and writes them; `est` and `kase` are plain scalars.
                unsafe {
                    $lacn2(
                        &n,
                        v.as_mut_ptr(),
                        x.as_mut_ptr(),
                        isgn.as_mut_ptr(),
                        est,
                        kase,
                        isave.as_mut_ptr(),
                    )
                }
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

impl_lapack_scalar!(f32, true, lapack_sys::sgetrs_, lapack_sys::slacn2_);
impl_lapack_scalar!(f64, false, lapack_sys::dgetrs_, lapack_sys::dlacn2_);

// ---------------------------------------------------------------------------------------------
// Checks and copies
