//! solve, inv, det and lstsq over extreme magnitudes (issue 15): entries of 1e±300, subnormal
//! ones, and rows and columns of mixed scale. No wrong answer may come back as `Ok`.
//!
//! Every matrix is `A = D₁·B·D₂` with `B` a seeded, well-conditioned matrix of entries near 1
//! and `D₁`, `D₂` diagonal powers of two. Scaling by a power of two is exact in both directions
//! (short of rounding into the subnormal range, which is why the check scales the *stored*
//! entries of `A` back rather than trusting `B`), so each result is checked in the scaled
//! problem, where every value is near 1 and the residual is computed in plain f64 without
//! overflow.
//!
//! Tolerance: LU with partial pivoting is backward stable, `‖B'z − c‖∞ ≤ γ·‖B'‖∞·‖z‖∞` with
//! `γ` of order `n·u·ρ` (ρ the growth factor, small for these matrices). We allow
//! `γ = 64·n·u`, which is far below any wrong answer (the reported failure had a relative
//! residual of 1) and above the rounding of the scaled solve.

mod common;

use common::Rng;
use ndarray::{array, Array1, Array2};
use parlinalg::Error;

const U: f64 = f64::EPSILON / 2.0;

/// `x·2^e`, in exact steps of at most 2^±1000 (exact unless the result leaves the normal
/// range).
fn scale(x: f64, e: i32) -> f64 {
    let (mut x, mut e) = (x, e);
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

/// A seeded, diagonally dominant (so well-conditioned) n×n matrix with entries near 1.
fn base(rng: &mut Rng, n: usize) -> Array2<f64> {
    let mut b = Array2::from_shape_fn((n, n), |_| rng.uniform() * 2.0 - 1.0);
    for i in 0..n {
        b[[i, i]] += n as f64 * if i % 2 == 0 { 1.0 } else { -1.0 };
    }
    b
}

fn inf_norm(m: &Array2<f64>) -> f64 {
    m.rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// The row and column exponents of each case: (name, row exponents, column exponents).
fn cases(n: usize) -> Vec<(&'static str, Vec<i32>, Vec<i32>)> {
    let alt = |a: i32, b: i32| (0..n).map(|i| if i % 2 == 0 { a } else { b }).collect();
    let zero = vec![0; n];
    vec![
        ("1e300", vec![996; n], zero.clone()),
        ("1e-300", vec![-996; n], zero.clone()),
        ("near max", vec![1018; n], zero.clone()), // |B| < 2^5: below f64::MAX
        ("subnormal", vec![-1040; n], zero.clone()),
        ("mixed rows", alt(-990, 990), zero.clone()),
        ("mixed columns", zero.clone(), alt(1000, -1000)),
        ("mixed both", alt(500, -500), alt(-500, 500)),
        (
            "graded",
            (0..n as i32).map(|i| 200 * i - 400).collect(),
            zero,
        ),
    ]
}

#[test]
fn the_reported_matrix_solves_and_inverts_correctly() {
    let a: Array2<f64> = array![[1e308, 1e308], [1e308, -1e308]];
    let x = parlinalg::solve(&a, &array![1.0, 0.0]).unwrap();
    // True solution: [1/(2e308), 1/(2e308)] = 5e-309 each (subnormal: 1 ulp of slack there).
    for v in x.iter() {
        assert!(
            (v - 5e-309).abs() <= 2.0 * f64::from_bits(1) + 5e-309 * 4.0 * U,
            "{x}"
        );
    }
    let inv = parlinalg::inv(&a).unwrap();
    for v in inv.iter() {
        assert!((v.abs() - 5e-309).abs() <= 2.0 * f64::from_bits(1), "{inv}");
    }
    assert!(inv[[1, 1]] < 0.0 && inv[[0, 0]] > 0.0);
    // det = -2e616: outside f64, so -inf is the IEEE answer.
    assert_eq!(parlinalg::det(&a).unwrap(), f64::NEG_INFINITY);
}

#[test]
fn solve_inv_det_residuals_over_extreme_magnitudes() {
    let mut rng = Rng::new(15);
    for n in [1, 2, 3, 5, 8] {
        for (name, rows, cols) in cases(n) {
            let b0 = base(&mut rng, n);
            let a = Array2::from_shape_fn((n, n), |(i, j)| scale(b0[[i, j]], rows[i] + cols[j]));
            // B': the stored A scaled back (exact: scaling up by a power of two).
            let bs = Array2::from_shape_fn((n, n), |(i, j)| scale(a[[i, j]], -(rows[i] + cols[j])));
            let tol = 64.0 * n as f64 * U * inf_norm(&bs);
            let what = format!("{name}, n = {n}");

            // solve: b = D₁·c, so B'·(D₂·x) = c.
            let c0 = Array1::from_shape_fn(n, |_| rng.uniform() + 0.5);
            let b = Array1::from_shape_fn(n, |i| scale(c0[i], rows[i]));
            let c = Array1::from_shape_fn(n, |i| scale(b[i], -rows[i]));
            let x = parlinalg::solve(&a, &b).unwrap_or_else(|e| panic!("{what}: {e}"));
            let z = Array1::from_shape_fn(n, |j| scale(x[j], cols[j]));
            let zmax = z.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let r = bs.dot(&z) - &c;
            let rmax = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(
                zmax.is_finite() && rmax <= tol * zmax,
                "solve {what}: residual {rmax:e} > {:e}; x = {x}",
                tol * zmax
            );

            // inv: D₂·A⁻¹·D₁ = B'⁻¹, so B'·Z = I. Where A⁻¹ itself leaves f64 (A subnormal:
            // entries near 2^1040), ±inf is IEEE's answer and there is nothing to scale back.
            let least = rows
                .iter()
                .flat_map(|r| cols.iter().map(move |c| r + c))
                .min();
            if least.unwrap_or(0) < -1020 {
                let ai = parlinalg::inv(&a).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(ai.iter().any(|v| v.is_infinite()), "inv {what}: {ai}");
            } else {
                let ai = parlinalg::inv(&a).unwrap_or_else(|e| panic!("{what}: {e}"));
                let zi =
                    Array2::from_shape_fn((n, n), |(i, j)| scale(ai[[i, j]], cols[i] + rows[j]));
                let resid = bs.dot(&zi) - Array2::<f64>::eye(n);
                let bound = tol * inf_norm(&zi);
                assert!(
                    inf_norm(&zi).is_finite() && inf_norm(&resid) <= bound,
                    "inv {what}: residual {:e} > {bound:e}",
                    inf_norm(&resid)
                );
            }

            // det: det A = det B' · 2^(Σ rows + Σ cols); compared in the scaled problem.
            let shift: i32 = rows.iter().chain(&cols).sum();
            let d = parlinalg::det(&a).unwrap();
            let want = naive_det(&bs);
            let log2 = want.abs().log2() + f64::from(shift);
            if (-1020.0..1023.0).contains(&log2) {
                let got = scale(d, -shift);
                assert!(
                    (got - want).abs() <= 64.0 * n as f64 * U * want.abs(),
                    "det {what}: {got:e} vs {want:e}"
                );
            } else if log2 >= 1024.5 {
                assert!(
                    d.is_infinite() && d.signum() == want.signum(),
                    "det {what}: {d:e}"
                );
            } else if log2 < -1080.0 {
                assert_eq!(d, 0.0, "det {what}");
            }
        }
    }
}

/// Gaussian elimination with partial pivoting in f64, on entries near 1.
fn naive_det(a: &Array2<f64>) -> f64 {
    let mut m = a.clone();
    let n = m.nrows();
    let mut det = 1.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| m[[i, k]].abs().total_cmp(&m[[j, k]].abs()))
            .unwrap();
        if p != k {
            for j in 0..n {
                m.swap([k, j], [p, j]);
            }
            det = -det;
        }
        det *= m[[k, k]];
        for i in k + 1..n {
            let l = m[[i, k]] / m[[k, k]];
            for j in k..n {
                m[[i, j]] -= l * m[[k, j]];
            }
        }
    }
    det
}

#[test]
fn lstsq_over_extreme_global_magnitudes() {
    let mut rng = Rng::new(1515);
    let (m, n) = (6, 3);
    let b0 = Array2::from_shape_fn((m, n), |(i, j)| {
        rng.uniform() + if i == j { 2.0 } else { 0.0 }
    });
    let c0 = Array1::from_shape_fn(m, |_| rng.uniform());
    let want = parlinalg::lstsq(&b0, &c0).unwrap();
    for (sa, sb) in [
        (996, 0),
        (-996, 0),
        (0, 996),
        (0, -996),
        (600, -400),
        (-1040, -1040),
        (1000, 1000),
    ] {
        let a = b0.mapv(|v| scale(v, sa));
        let b = c0.mapv(|v| scale(v, sb));
        // x = 2^(sb − sa)·want (every case keeps it inside f64): compare in the scaled problem.
        let x = parlinalg::lstsq(&a, &b).unwrap_or_else(|e| panic!("({sa}, {sb}): {e}"));
        let got = x.mapv(|v| scale(v, sa - sb));
        // Subnormal entries lost bits: compare against the problem actually stored.
        let stored =
            parlinalg::lstsq(&a.mapv(|v| scale(v, -sa)), &b.mapv(|v| scale(v, -sb))).unwrap();
        let rel = if sa < -1022 || sb < -1022 {
            1e-6
        } else {
            1e-12
        };
        for ((g, w), s) in got.iter().zip(&want).zip(&stored) {
            assert!(
                (g - s).abs() <= 1e-12 * s.abs().max(1.0)
                    && (g - w).abs() <= rel * w.abs().max(1.0),
                "lstsq ({sa}, {sb}): {got} vs {want}"
            );
        }
    }
}

#[test]
fn an_overflowing_condition_estimate_is_never_skipped() {
    // Singular to working precision at 1e308: must be refused, as it is at 1.
    let a = array![[1e308, 1e308], [1e308, 1e308 * (1.0 + f64::EPSILON)]];
    for r in [
        parlinalg::solve(&a, &array![1.0, 1.0]).map(drop),
        parlinalg::inv(&a).map(drop),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::IllConditioned { .. } | Error::Singular { .. })
            ),
            "{r:?}"
        );
    }
}
