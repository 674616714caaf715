//! The reciprocal 1-norm condition number of `A`, behind
//! [`Error::IllConditioned`](crate::Error::IllConditioned): estimated from the LU for `solve`,
//! exact from the inverse for `inv`.
//!
//! The estimate is the one `?gecon` makes: `1 / (‖A‖₁ · est)`, where `est ≤ ‖A⁻¹‖₁` comes from
//! LAPACK's own estimator `?lacn2` (Hager's method with Higham's refinements: about five
//! products with `A⁻¹` or `A⁻ᵀ`, each one solve with the LU). Only the solves differ.
//! `?gecon` runs each through `?latrs`, a triangular solve that guards every step against
//! overflow and, for most matrices of a few hundred rows on, cannot prove that no step
//! overflows and falls back to its scaled column-by-column loop; here each is one
//! `?getrs`, the solve `solve` itself runs. On OpenBLAS 0.3.21 (f64, 1 thread) that makes the
//! estimate 1.7× cheaper at n = 100 and 2.5–3× from n = 500 on, with the same value.
//!
//! What `?latrs`'s guard bought is kept by falling back to `?gecon` itself: a solve whose
//! result is not finite (it overflowed) hands the whole estimate to `?gecon`, which scales
//! where it must. That takes a matrix whose inverse overflows, `‖A⁻¹‖₁ ≥ 2^MAX_EXP` after the
//! equilibration into `2^±(MAX_EXP/2)` the routines apply where magnitudes need it, so one
//! that is refused either way (its reciprocal condition number is below `2^(−MAX_EXP/2)`), or
//! the exponential growth of Wilkinson's examples inside the solve with `L`.
//!
//! `inv` has `A⁻¹` itself, so it makes no estimate: `‖A⁻¹‖₁` is one pass over the inverse
//! ([`reciprocal_condition_of_inverse`]), exact where the estimate is a lower bound, and
//! cheaper than the estimate's five or so solves (each a pass over the whole LU).

use super::dispatch::{Lu, System};
use super::*;

/// `1 / (anorm · est)`, `est` the `?lacn2` estimate of `‖A⁻¹‖₁` for the `A` whose LU `lu` is
/// and `anorm = ‖A‖₁` (finite and positive); 0 where `A⁻¹` is estimated to have no finite
/// norm. Equal to what `?gecon` with the infinity norm of the `Aᵀ` LAPACK holds returns.
pub(super) fn reciprocal_condition<T: Float>(lu: &Lu<T>, anorm: T) -> lax::error::Result<T> {
    let n = usize::try_from(lu.n).unwrap_or(0);
    if n == 0 {
        return Ok(T::one());
    }
    if anorm == T::zero() {
        return Ok(T::zero());
    }
    let mut v = vec![T::zero(); n];
    let mut x = vec![T::zero(); n];
    let mut isgn: Vec<c_int> = vec![0; n];
    let mut est = T::zero();
    let mut kase: c_int = 0;
    let mut isave: [c_int; 3] = [0; 3];
    loop {
        T::lax_lacn2(&mut v, &mut x, &mut isgn, &mut est, &mut kase, &mut isave);
        // ?lacn2 estimates ‖M‖₁ for M = A⁻¹: kase 1 asks for M·x, kase 2 for Mᵀ·x.
        let system = match kase {
            0 => break,
            1 => System::A,
            _ => System::Transposed,
        };
        T::lax_getrs(lu, system, 1, &mut x)?;
        if !all_finite(&x) {
            return T::lax_gecon(lu, anorm);
        }
    }
    Ok(if est > T::zero() {
        (T::one() / est) / anorm
    } else {
        T::zero()
    })
}

/// `1 / (anorm · ‖A⁻¹‖₁)` from the inverse itself, `inverse` the `n × n` `A⁻¹` in C order and
/// `anorm = ‖A‖₁`: the exact reciprocal condition number (of the computed inverse), 0 where a
/// column sum overflows, NaN where the inverse holds a NaN.
pub(super) fn reciprocal_condition_of_inverse<T: Float>(inverse: &[T], n: usize, anorm: T) -> T {
    if n == 0 {
        return T::one();
    }
    // ‖A⁻¹‖₁ is the largest column sum of |A⁻¹|: accumulated row by row, in C order, so
    // the pass is sequential and the inner loop vectorises.
    let mut sums = vec![T::zero(); n];
    for row in inverse.chunks_exact(n) {
        for (sum, &v) in sums.iter_mut().zip(row) {
            *sum = *sum + v.abs();
        }
    }
    // A NaN anywhere makes the norm NaN (`max` would drop it).
    let norm = sums
        .iter()
        .fold(T::zero(), |m, &s| if s > m || s.is_nan() { s } else { m });
    if norm.is_nan() || anorm.is_nan() {
        return T::nan();
    }
    if norm == T::zero() || anorm == T::zero() {
        return T::zero();
    }
    (T::one() / norm) / anorm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lapack::dispatch::LapackScalar;

    /// Runs `f` as a LAPACK call of order `n` under the thread controller, as the routines do
    /// (tests run beside each other, and some OpenBLAS builds need the controller for that).
    fn call<R>(n: usize, f: impl FnOnce() -> R) -> R {
        lapack_call(crate::threads::enter().unwrap(), n, f)
    }

    /// The LU of a C-order `n × n` buffer, as `solve` makes it (on a thread with the stack
    /// OpenBLAS's parallel `?getrf` needs: a test's thread has 2 MiB).
    fn factorize_for_tests<T: Float>(mut a: Vec<T>) -> Lu<T> {
        let n = (a.len() as f64).sqrt() as usize;
        assert_eq!(n * n, a.len());
        let order = c_int::try_from(n).unwrap();
        let ipiv = call(n, || super::super::stack::getrf(order, &mut a))
            .unwrap()
            .unwrap();
        Lu {
            n: order,
            factors: a,
            ipiv,
        }
    }

    /// A deterministic pseudo-random matrix in [-0.5, 0.5) (a 64-bit LCG), C order.
    fn matrix(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n * n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn one_norm(a: &[f64], n: usize) -> f64 {
        // C order: column j is a[j], a[n + j], ...
        (0..n)
            .map(|j| (0..n).map(|i| a[i * n + j].abs()).sum::<f64>())
            .fold(0.0, f64::max)
    }

    /// The estimate is `?gecon`'s, on matrices from well conditioned to nearly singular, at
    /// sizes either side of `?gecon`'s switch to its scaled loop, in f64 and f32. Same
    /// estimator and same sequence of vectors, so the values agree to rounding (a relative
    /// 1e-6 in f64, 1e-3 in f32: only the solves' rounding differs, and the estimator's
    /// choices of signs and indices are the same on these seeds).
    #[test]
    fn the_estimate_is_gecons() {
        for (n, seed, near_singular) in [
            (1, 1, false),
            (3, 2, false),
            (17, 3, false),
            (100, 4, false),
            (100, 5, true),
            (257, 6, false),
            (500, 7, true),
        ] {
            let mut a = matrix(n, seed);
            if near_singular {
                // Row 1 = row 0 + 1e-9·noise: the condition number is about 1e9.
                let noise = matrix(n, seed + 100);
                for j in 0..n {
                    a[n + j] = a[j] + 1e-9 * noise[j];
                }
            } else {
                for i in 0..n {
                    a[i * n + i] += 1.0;
                }
            }
            let anorm = one_norm(&a, n);
            let lu = factorize_for_tests(a.clone());
            let ours = call(n, || reciprocal_condition(&lu, anorm)).unwrap();
            let gecon = call(n, || f64::lax_gecon(&lu, anorm)).unwrap();
            assert!(
                (ours - gecon).abs() <= 1e-6 * gecon,
                "n = {n}: ours {ours:e}, dgecon {gecon:e}"
            );
            if near_singular {
                assert!(
                    ours < 1e-8,
                    "n = {n}: {ours:e} for a condition number near 1e9"
                );
            }

            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let anorm32 = one_norm(&a, n) as f32;
            let lu32 = factorize_for_tests(a32);
            let ours32 = call(n, || reciprocal_condition(&lu32, anorm32)).unwrap();
            let gecon32 = call(n, || f32::lax_gecon(&lu32, anorm32)).unwrap();
            assert!(
                (ours32 - gecon32).abs() <= 1e-3 * gecon32,
                "n = {n}: ours {ours32:e}, sgecon {gecon32:e}"
            );
        }
    }

    /// The exact reciprocal condition number from an inverse: `1 / (‖A‖₁ ‖A⁻¹‖₁)` against
    /// naive column sums, at least the estimate (which is a lower bound of `‖A⁻¹‖₁`), and
    /// refusals for what an overflowed inverse holds: 0 for an infinity, NaN for a NaN.
    #[test]
    fn the_inverse_gives_the_exact_number() {
        for (n, seed) in [(1, 1), (2, 2), (7, 3), (64, 4), (129, 5)] {
            let mut a = matrix(n, seed);
            for i in 0..n {
                a[i * n + i] += 0.5;
            }
            let anorm = one_norm(&a, n);
            let mut lu = factorize_for_tests(a);
            let estimated = call(n, || reciprocal_condition(&lu, anorm)).unwrap();
            call(n, || f64::lax_getri(&mut lu)).unwrap();
            let exact = reciprocal_condition_of_inverse(&lu.factors, n, anorm);
            let naive = 1.0 / (anorm * one_norm(&lu.factors, n));
            assert!(
                (exact - naive).abs() <= 1e-12 * naive,
                "n = {n}: {exact:e} against {naive:e}"
            );
            assert!(
                exact <= estimated * (1.0 + 1e-12),
                "n = {n}: {exact:e} > {estimated:e}"
            );
        }
        let mut inverse = vec![1.0f64; 9];
        inverse[4] = f64::INFINITY;
        assert_eq!(reciprocal_condition_of_inverse(&inverse, 3, 1.0), 0.0);
        inverse[7] = f64::NAN;
        assert!(reciprocal_condition_of_inverse(&inverse, 3, 1.0).is_nan());
        inverse[4] = 1.0;
        assert!(reciprocal_condition_of_inverse(&inverse, 3, 1.0).is_nan());
        assert_eq!(reciprocal_condition_of_inverse::<f32>(&[], 0, 1.0), 1.0);
    }

    /// A solve that overflows gives `?gecon`'s answer, the estimate of a singular matrix (0),
    /// and never the NaN that `∞ − ∞` makes inside the solve (`?lacn2` fed NaN returns a NaN
    /// estimate). In f32, row 0 of `A` is `[1, 1, −1, 0, …]` and the rows below are those of
    /// `I − 2·(superdiagonal)`: `A⁻¹` holds entries up to `2^(n−2)`, past f32's range at
    /// n = 140, and its row 0 subtracts two of them that overflow to `+∞`.
    #[test]
    fn an_overflowing_solve_falls_back_to_gecon() {
        let n = 140;
        let mut a = vec![0f32; n * n];
        for i in 0..n {
            a[i * n + i] = 1.0;
            if i + 1 < n {
                a[i * n + i + 1] = -2.0;
            }
        }
        a[1] = 1.0;
        a[2] = -1.0;
        let lu = factorize_for_tests(a);
        let ours = call(n, || reciprocal_condition(&lu, 4.0)).unwrap();
        let gecon = call(n, || f32::lax_gecon(&lu, 4.0)).unwrap();
        assert_eq!(
            ours.to_bits(),
            gecon.to_bits(),
            "ours {ours:e}, sgecon {gecon:e}"
        );
        assert!(ours.is_finite() && ours < f32::EPSILON, "{ours:e}");
    }
}
