//! Algebraic properties of the LAPACK level on seeded random inputs, f32 and f64, sizes
//! 1, 2, 3, 17, 64, 257 (block edges of the blocked LAPACK codes).
//!
//! Every tolerance is derived from the standard error bounds of the routine and the input's
//! norms or condition number, and stated where it is used, in units of `ε` (machine epsilon
//! of the element type) times a size factor. `C` (below) is the one constant left free: the
//! bounds hold "up to a modest constant"; we take 4. Products in the checks go through
//! parlinalg's own `matmul`/`matvec` (their rounding is of the same order as the bounds'), and
//! the independent references (LU pivots, inverses, condition numbers) come from a naive
//! partial-pivoting LU in f64, written below.

mod common;

use common::Rng;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use parlinalg::{
    cholesky, det, eigvalsh, inv, lstsq, matmul, matvec, singular_values, solve, Float,
};

const SIZES: [usize; 6] = [1, 2, 3, 17, 64, 257];

/// The modest constant of the rounding-error bounds.
const C: f64 = 4.0;

macro_rules! both_types {
    ($($name:ident),* $(,)?) => {
        mod f32_cases { $( #[test] fn $name() { super::$name::<f32>(); } )* }
        mod f64_cases { $( #[test] fn $name() { super::$name::<f64>(); } )* }
    };
}

both_types!(
    solve_residual_and_forward_error,
    inv_times_a_is_identity,
    cholesky_factor_reproduces_a,
    det_is_the_signed_product_of_lu_pivots,
    eigvalsh_sum_is_the_trace,
    singular_values_are_roots_of_gram_eigenvalues,
    lstsq_tall_square_wide_and_rank_deficient,
    lu_results_do_not_depend_on_the_layout,
);

// ---------------------------------------------------------------------------------------------
// Properties

fn solve_residual_and_forward_error<T: Float>() {
    let mut rng = Rng::new(0x501e);
    for n in SIZES {
        let a: Array2<T> = rng.matrix(n, n);
        let b: Array2<T> = rng.matrix(n, 3);
        let x = solve(&a, &b).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        let (a64, x64, b64) = (f64s2(&a), f64s2(&x), f64s2(&b));
        let r = f64s2(&matmul(&a, &x).unwrap()) - &b64;
        let lu = NaiveLu::new(&a64).expect("a random matrix is regular");
        let kappa = norm_inf(&a64.view()) * norm_inf(&lu.inverse().view());
        for j in 0..3 {
            // Backward error of LU with partial pivoting (plus the rounding of a·x):
            // ‖a·x − b‖∞ ≤ C·n·ε·(‖a‖∞·‖x‖∞ + ‖b‖∞).
            let tol = C
                * n as f64
                * eps::<T>()
                * (norm_inf(&a64.view()) * vnorm_inf(&x64.column(j)) + vnorm_inf(&b64.column(j)));
            let res = vnorm_inf(&r.column(j));
            assert!(
                res <= tol,
                "n = {n}, column {j}: residual {res:e} > {tol:e}"
            );
            // Forward error against the f64 solution: ‖x − x*‖∞ / ‖x*‖∞ ≤ C·n·ε·κ∞(a).
            let want = Array1::from_vec(lu.solve(&b64.column(j).to_vec()));
            let err = vnorm_inf(&(&x64.column(j) - &want).view()) / vnorm_inf(&want.view());
            let tol = C * n as f64 * eps::<T>() * kappa;
            assert!(
                err <= tol,
                "n = {n}, column {j}: forward error {err:e} > {tol:e} (κ∞ {kappa:e})"
            );
        }
        // The vector form is the same computation on one column. Not bit for bit: the BLAS
        // thread count (and so OpenBLAS's blocking in getrf) may differ between the two calls
        // when other threads call BLAS at the same time, so within the forward-error bound.
        let xv = solve(&a, &b.column(1)).unwrap();
        let diff = vnorm_inf(&(&f64s1(&xv) - &x64.column(1)).view()) / vnorm_inf(&x64.column(1));
        assert!(
            diff <= C * n as f64 * eps::<T>() * kappa,
            "n = {n}: vector form differs by {diff:e}"
        );
    }
}

fn inv_times_a_is_identity<T: Float>() {
    let mut rng = Rng::new(0x1a7);
    for n in SIZES {
        let a: Array2<T> = rng.matrix(n, n);
        let x = inv(&a).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        // ‖a·X − I‖∞ and ‖X·a − I‖∞ ≤ C·n·ε·‖a‖∞·‖X‖∞ (= C·n·ε·κ∞(a) up to the accuracy of X):
        // the backward error of LU and of the triangular inversions, and of the product.
        let kappa = norm_inf(&f64s2(&a).view()) * norm_inf(&f64s2(&x).view());
        let tol = C * n as f64 * eps::<T>() * kappa;
        let eye = Array2::<f64>::eye(n);
        for (side, product) in [("a·X", matmul(&a, &x)), ("X·a", matmul(&x, &a))] {
            let res = norm_inf(&(f64s2(&product.unwrap()) - &eye).view());
            assert!(
                res <= tol,
                "n = {n}: ‖{side} − I‖∞ = {res:e} > {tol:e} (κ∞ {kappa:e})"
            );
        }
    }
}

fn cholesky_factor_reproduces_a<T: Float>() {
    let mut rng = Rng::new(0xc401);
    for n in SIZES {
        // a = g·gᵀ + I: symmetric (made exactly so) positive definite, κ₂ ≲ 1 + ‖g‖₂² ~ n.
        let g: Array2<T> = rng.matrix(n, n);
        let a = symmetric_from_lower(&(matmul(&g, &g.t()).unwrap() + Array2::<T>::eye(n)));
        let l = cholesky(&a).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        for ((i, j), &v) in l.indexed_iter() {
            if j > i {
                assert_eq!(v, T::zero(), "n = {n}: L[{i},{j}] above the diagonal");
            } else if i == j {
                assert!(v > T::zero(), "n = {n}: L[{i},{i}] = {v}");
            }
        }
        // Cholesky is backward stable componentwise: L·Lᵀ = a + Δ with
        // |Δ_ij| ≤ γ_{n+1}·(|L|·|Lᵀ|)_ij ≤ (n+1)·ε·√(a_ii·a_jj) (Cauchy–Schwarz on the rows of
        // L); the product L·Lᵀ adds as much again. So |L·Lᵀ − a|_ij ≤ C·(n+1)·ε·√(a_ii·a_jj).
        let llt = f64s2(&matmul(&l, &l.t()).unwrap());
        let a64 = f64s2(&a);
        for ((i, j), &v) in llt.indexed_iter() {
            let tol = C * (n + 1) as f64 * eps::<T>() * (a64[[i, i]] * a64[[j, j]]).sqrt();
            let err = (v - a64[[i, j]]).abs();
            assert!(
                err <= tol,
                "n = {n}: |L·Lᵀ − a| at ({i},{j}) = {err:e} > {tol:e}"
            );
        }
    }
}

fn det_is_the_signed_product_of_lu_pivots<T: Float>() {
    let mut rng = Rng::new(0xde7);
    for n in SIZES {
        // A random matrix plus s times a random permutation matrix, s = 2·(estimate of ‖R‖₂ =
        // 2·σ·√n with σ² = 1/3): partial pivoting follows the permutation (row swaps, a sign to
        // get right) and the matrix stays well conditioned, so the bound below is meaningful.
        // Then each row is scaled by an exact power of two so that |det| ≈ 1, which keeps a
        // 257×257 determinant inside f32's range (the scaling changes det by exactly 2^E).
        let mut a: Array2<T> = rng.matrix(n, n);
        let s = 2.0 * 2.0 * (n as f64 / 3.0).sqrt();
        let perm = rng.permutation(n);
        for (i, &p) in perm.iter().enumerate() {
            a[[i, p]] = a[[i, p]] + T::from(s).unwrap();
        }
        let log2 = NaiveLu::new(&f64s2(&a)).unwrap().log2_abs_det();
        scale_rows_to_unit_det(&mut a, log2);

        let a64 = f64s2(&a);
        let lu = NaiveLu::new(&a64).expect("regular");
        let want = lu.det();
        let got = det(&a).unwrap().to_f64().unwrap();
        // First-order perturbation: δdet/det = tr(a⁻¹·δa). LU's backward error is
        // |δa| ≤ γ_n·|L|·|U| ≈ n·ε·|a| (no growth: the pivots are the large entries), so
        // |δdet/det| ≤ n·ε·cond_det with cond_det = Σ_ij |a_ij·(a⁻¹)_ji|, the condition number
        // of the determinant under relative perturbations of the entries (invariant under the
        // row scaling). The f64 reference adds the same with ε_f64.
        let ainv = lu.inverse();
        let cond_det: f64 = a64
            .indexed_iter()
            .map(|((i, j), &v)| (v * ainv[[j, i]]).abs())
            .sum();
        let tol = C * n as f64 * (eps::<T>() + f64::EPSILON) * cond_det;
        let rel = (got - want).abs() / want.abs();
        assert!(
            rel <= tol,
            "n = {n}: det {got:e}, pivots give {want:e}: relative error {rel:e} > {tol:e}"
        );
        assert!(tol < 0.05, "n = {n}: the bound {tol:e} would prove nothing");
        assert_eq!(got.signum(), want.signum(), "n = {n}: sign");
    }
}

fn eigvalsh_sum_is_the_trace<T: Float>() {
    let mut rng = Rng::new(0xe16);
    for n in SIZES {
        let a = symmetric_from_lower(&rng.matrix::<T>(n, n));
        let w = eigvalsh(&a).unwrap_or_else(|e| panic!("n = {n}: {e}"));
        assert_eq!(w.len(), n);
        assert!(
            w.windows(2).into_iter().all(|p| p[0] <= p[1]),
            "n = {n}: not ascending"
        );
        let a64 = f64s2(&a);
        let w64 = f64s1(&w);
        let fro = a64.iter().map(|v| v * v).sum::<f64>().sqrt();
        // syev is backward stable: the values are exact for a + E, ‖E‖₂ ≤ p(n)·ε·‖a‖₂, with
        // p(n) a modest function of n (√n in the usual rounding-error growth). The trace of
        // the values is tr(a + E), and |tr E| ≤ √n·‖E‖_F ≤ n·ε·‖a‖_F with p(n) = √n:
        // |Σλ − tr a| ≤ C·n·ε·‖a‖_F.
        let trace: f64 = a64.diag().sum();
        let tol = C * n as f64 * eps::<T>() * fro;
        let err = (w64.sum() - trace).abs();
        assert!(err <= tol, "n = {n}: |Σλ − tr a| = {err:e} > {tol:e}");
        // Orthogonal invariance gives a second identity, Σλ² = ‖a‖_F², with
        // |Σλ² − ‖a‖_F²| ≤ 2·‖a‖_F·‖E‖_F ≤ 2·C·n·ε·‖a‖_F².
        let err = (w64.iter().map(|v| v * v).sum::<f64>() - fro * fro).abs();
        let tol = 2.0 * C * n as f64 * eps::<T>() * fro * fro;
        assert!(err <= tol, "n = {n}: |Σλ² − ‖a‖_F²| = {err:e} > {tol:e}");
    }
}

fn singular_values_are_roots_of_gram_eigenvalues<T: Float>() {
    let mut rng = Rng::new(0x5fd);
    for n in SIZES {
        for (m, k) in [(n, n), (2 * n, n), (n, 2 * n)] {
            let a: Array2<T> = rng.matrix(m, k);
            let sv = singular_values(&a).unwrap_or_else(|e| panic!("{m}×{k}: {e}"));
            let p = m.min(k);
            assert_eq!(sv.len(), p);
            assert!(
                sv.windows(2).into_iter().all(|w| w[0] >= w[1]),
                "{m}×{k}: not descending"
            );
            assert!(sv.iter().all(|&v| v >= T::zero()));
            // The smaller Gram matrix, aᵀ·a (tall) or a·aᵀ (wide): its eigenvalues are σ².
            let gram = if m >= k {
                matmul(&a.t(), &a).unwrap()
            } else {
                matmul(&a, &a.t()).unwrap()
            };
            let lambda = eigvalsh(&symmetric_from_lower(&gram)).unwrap();
            let fro2 = f64s2(&a).iter().map(|v| v * v).sum::<f64>();
            // Compared as squares: forming the Gram matrix rounds each entry by
            // γ_max(m,k)·(|a|ᵀ|a|)_ij, so its eigenvalues move by up to max(m,k)·ε·‖a‖_F²,
            // and the SVD's own σ_i move by p(n)·ε·σ_max (so σ_i² by 2·σ_max² of that). √λ
            // itself would be off by ε·‖a‖²/σ for small σ: the reason to compare squares.
            // |σ_i² − λ_(p−1−i)| ≤ C·max(m,k)·ε·‖a‖_F².
            let tol = C * m.max(k) as f64 * eps::<T>() * fro2;
            for i in 0..p {
                let s2 = sv[i].to_f64().unwrap().powi(2);
                let l = lambda[p - 1 - i].to_f64().unwrap();
                assert!(
                    (s2 - l).abs() <= tol,
                    "{m}×{k}: σ_{i}² = {s2:e}, Gram eigenvalue {l:e}, tolerance {tol:e}"
                );
            }
        }
    }
}

fn lstsq_tall_square_wide_and_rank_deficient<T: Float>() {
    let mut rng = Rng::new(0x15);
    for n in SIZES {
        let e = eps::<T>();

        // Tall, full rank: x solves the normal equations, aᵀ·(b − a·x) ≈ 0. x is the exact
        // least-squares solution for a + Δa, b + Δb with ‖Δa‖ ≤ m·ε·‖a‖ (the SVD is backward
        // stable), and forming r = b − a·x and aᵀ·r rounds as much again:
        // ‖aᵀ·r‖₂ ≤ C·m·ε·‖a‖_F·(‖a‖_F·‖x‖₂ + ‖b‖₂).
        let m = 2 * n;
        let a: Array2<T> = rng.matrix(m, n);
        let b: Array1<T> = rng.vector(m);
        let x = lstsq(&a, &b).unwrap_or_else(|e| panic!("{m}×{n}: {e}"));
        let r = &b - &matvec(&a, &x).unwrap();
        let atr = f64s1(&matvec(&a.t(), &r).unwrap());
        let fro = frobenius(&f64s2(&a));
        let tol = C * m as f64 * e * fro * (fro * norm2(&f64s1(&x)) + norm2(&f64s1(&b)));
        assert!(
            norm2(&atr) <= tol,
            "{m}×{n}: ‖aᵀr‖ = {:e} > {tol:e}",
            norm2(&atr)
        );

        // Rank-deficient: a = [g | g] (each column twice), rank n. The minimum-norm solution
        // splits the weight equally: x = [z/2; z/2] with z the least-squares solution for g.
        // g is tall and random, so well conditioned (κ₂ ≈ 6); least squares with a residual has
        // forward error ≲ m·ε·(κ + κ²)·‖z‖ (κ₂(g) from its singular values).
        let g = a;
        let mut dup = Array2::<T>::zeros((m, 2 * n));
        dup.slice_mut(s![.., ..n]).assign(&g);
        dup.slice_mut(s![.., n..]).assign(&g);
        let x = f64s1(&lstsq(&dup, &b).unwrap());
        let z = f64s1(&lstsq(&g, &b).unwrap());
        let sv = f64s1(&singular_values(&g).unwrap());
        let kappa = sv[0] / sv[n - 1];
        let tol = C * m as f64 * e * (kappa + kappa * kappa) * norm2(&z);
        for half in [x.slice(s![..n]), x.slice(s![n..])] {
            let err = norm2(&(&half - &(&z / 2.0)));
            assert!(
                err <= tol,
                "[g|g] {m}×{}: ‖x_half − z/2‖ = {err:e} > {tol:e}",
                2 * n
            );
        }

        // Square and regular: the same answer as solve, within C·n·ε·κ∞(a) (both are
        // backward stable; κ∞ from the independent f64 inverse).
        let a: Array2<T> = rng.matrix(n, n);
        let b: Array1<T> = rng.vector(n);
        let x_ls = f64s1(&lstsq(&a, &b).unwrap());
        let x_lu = f64s1(&solve(&a, &b).unwrap());
        let a64 = f64s2(&a);
        let kappa = norm_inf(&a64.view()) * norm_inf(&NaiveLu::new(&a64).unwrap().inverse().view());
        let tol = C * n as f64 * e * kappa * vnorm_inf(&x_lu.view());
        let err = vnorm_inf(&(&x_ls - &x_lu).view());
        assert!(
            err <= tol,
            "{n}×{n}: lstsq and solve differ by {err:e} > {tol:e}"
        );

        // Wide, full rank: a·x = b is consistent, and the minimum-norm x lies in the row space:
        // x = aᵀ·y with (a·aᵀ)·y = b. The reference goes through a·aᵀ, whose condition number
        // is κ(a)² (κ₂(a) ≈ 6 for a random 1×2 aspect): ‖x − aᵀy‖₂ ≤ C·k·ε·κ²·‖x‖₂.
        let k = 2 * n;
        let a: Array2<T> = rng.matrix(n, k);
        let b: Array1<T> = rng.vector(n);
        let x = lstsq(&a, &b).unwrap();
        let aat = symmetric_from_lower(&matmul(&a, &a.t()).unwrap());
        let y = solve(&aat, &b).unwrap();
        let want = f64s1(&matvec(&a.t(), &y).unwrap());
        let sv = f64s1(&singular_values(&a).unwrap());
        let kappa = sv[0] / sv[n - 1];
        let tol = C * k as f64 * e * kappa * kappa * norm2(&want);
        let err = norm2(&(&f64s1(&x) - &want));
        assert!(err <= tol, "{n}×{k}: ‖x − aᵀy‖ = {err:e} > {tol:e}");
        // And it is a solution: ‖a·x − b‖₂ ≤ C·k·ε·‖a‖_F·‖x‖₂ (+ ‖b‖₂ for the rounding of b).
        let res = norm2(&f64s1(&(&matvec(&a, &x).unwrap() - &b)));
        let fro = frobenius(&f64s2(&a));
        let tol = C * k as f64 * e * (fro * norm2(&f64s1(&x)) + norm2(&f64s1(&b)));
        assert!(res <= tol, "{n}×{k}: ‖a·x − b‖ = {res:e} > {tol:e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn eps<T: Float>() -> f64 {
    T::epsilon().to_f64().unwrap()
}

fn f64s2<T: Float>(a: &Array2<T>) -> Array2<f64> {
    a.mapv(|v| v.to_f64().unwrap())
}

fn f64s1<T: Float>(a: &Array1<T>) -> Array1<f64> {
    a.mapv(|v| v.to_f64().unwrap())
}

/// ‖a‖∞, the largest row sum of absolute values.
fn norm_inf(a: &ArrayView2<'_, f64>) -> f64 {
    a.map_axis(Axis(1), |row| row.iter().map(|v| v.abs()).sum::<f64>())
        .fold(0.0, |m, &v| m.max(v))
}

fn vnorm_inf(x: &ArrayView1<'_, f64>) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn norm2(x: &Array1<f64>) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

fn frobenius(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// The symmetric matrix whose lower triangle is `a`'s (exactly symmetric).
fn symmetric_from_lower<T: Float>(a: &Array2<T>) -> Array2<T> {
    Array2::from_shape_fn(a.dim(), |(i, j)| if i >= j { a[[i, j]] } else { a[[j, i]] })
}

/// Scales the rows of `a` by exact powers of two, 2^e_i with Σ e_i = −round(log2 |det a|), so
/// that the determinant becomes ±(a number in [2^-½, 2^½]).
fn scale_rows_to_unit_det<T: Float>(a: &mut Array2<T>, log2_abs_det: f64) {
    let n = a.nrows();
    let total = -(log2_abs_det.round() as i64);
    let n_i = n as i64;
    for (i, mut row) in a.rows_mut().into_iter().enumerate() {
        let i = i as i64;
        // Spread `total` over the rows: each gets floor or ceil of total / n.
        let e = (total * (i + 1)).div_euclid(n_i) - (total * i).div_euclid(n_i);
        let factor = T::from(2f64.powi(e as i32)).unwrap();
        row.mapv_inplace(|v| v * factor);
    }
}

/// A naive LU factorisation with partial pivoting in f64: `p·a = l·u`, row-major, no blocking.
/// The independent reference for determinants, inverses and condition numbers.
struct NaiveLu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
    swaps: usize,
}

impl NaiveLu {
    /// `None` when a pivot is exactly zero.
    fn new(a: &Array2<f64>) -> Option<Self> {
        let n = a.nrows();
        let mut lu: Vec<f64> = a.iter().copied().collect();
        let mut perm: Vec<usize> = (0..n).collect();
        let mut swaps = 0;
        for k in 0..n {
            let p = (k..n)
                .max_by(|&i, &j| lu[i * n + k].abs().total_cmp(&lu[j * n + k].abs()))
                .unwrap();
            if lu[p * n + k] == 0.0 {
                return None;
            }
            if p != k {
                for j in 0..n {
                    lu.swap(k * n + j, p * n + j);
                }
                perm.swap(k, p);
                swaps += 1;
            }
            let pivot = lu[k * n + k];
            for i in k + 1..n {
                let l = lu[i * n + k] / pivot;
                lu[i * n + k] = l;
                if l != 0.0 {
                    for j in k + 1..n {
                        lu[i * n + j] -= l * lu[k * n + j];
                    }
                }
            }
        }
        Some(NaiveLu { n, lu, perm, swaps })
    }

    fn pivots(&self) -> impl Iterator<Item = f64> + '_ {
        (0..self.n).map(|i| self.lu[i * self.n + i])
    }

    /// det = (−1)^swaps · Π u_ii (fine in f64 for the scaled matrices of the tests).
    fn det(&self) -> f64 {
        let sign = if self.swaps % 2 == 1 { -1.0 } else { 1.0 };
        sign * self.pivots().product::<f64>()
    }

    fn log2_abs_det(&self) -> f64 {
        self.pivots().map(|u| u.abs().log2()).sum()
    }

    fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x: Vec<f64> = self.perm.iter().map(|&p| b[p]).collect();
        for i in 0..n {
            let s: f64 = (0..i).map(|j| self.lu[i * n + j] * x[j]).sum();
            x[i] -= s;
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|j| self.lu[i * n + j] * x[j]).sum();
            x[i] = (x[i] - s) / self.lu[i * n + i];
        }
        x
    }

    fn inverse(&self) -> Array2<f64> {
        let n = self.n;
        let mut inv = Array2::zeros((n, n));
        let mut e = vec![0.0; n];
        for j in 0..n {
            e.iter_mut().for_each(|v| *v = 0.0);
            e[j] = 1.0;
            let col = self.solve(&e);
            inv.column_mut(j).assign(&Array1::from_vec(col));
        }
        inv
    }
}

/// solve, inv and det give the same bits for the same matrix in every layout: C order,
/// column major, a strided view and a reversed one (all are copied into one C-order buffer
/// before LAPACK runs), with and without equilibration (rows of mixed scale).
fn lu_results_do_not_depend_on_the_layout<T: Float>() {
    let mut rng = Rng::new(26);
    for n in [3, 17, 64] {
        for mixed in [false, true] {
            let mut a: Array2<T> = Array2::from_shape_fn((n, n), |(i, j)| {
                let v = rng.uniform() - 0.5 + if i == j { 2.0 } else { 0.0 };
                T::from(v).unwrap()
            });
            if mixed {
                a.row_mut(1).mapv_inplace(|v| v * T::from(1e-6).unwrap());
            }
            let b: Array1<T> = Array1::from_shape_fn(n, |i| T::from(i as f64 - 1.5).unwrap());
            let fortran = a.t().as_standard_layout().into_owned().reversed_axes();
            let mut wide = Array2::<T>::zeros((n, 2 * n));
            wide.slice_mut(s![.., ..;2]).assign(&a);
            let strided = wide.slice(s![.., ..;2]);
            let mut flipped = a.clone();
            flipped.invert_axis(Axis(0));
            let reversed = flipped.slice(s![..;-1, ..]);
            let bits2 = |m: &Array2<T>| {
                m.iter()
                    .map(|v| v.to_f64().unwrap().to_bits())
                    .collect::<Vec<_>>()
            };
            let bits1 = |m: &Array1<T>| {
                m.iter()
                    .map(|v| v.to_f64().unwrap().to_bits())
                    .collect::<Vec<_>>()
            };
            let (x, ai, d) = (solve(&a, &b).unwrap(), inv(&a).unwrap(), det(&a).unwrap());
            for (what, view) in [
                ("column major", fortran.view()),
                ("strided", strided),
                ("reversed", reversed),
            ] {
                assert_eq!(view, a.view(), "{what}: the same matrix");
                let ctx = format!("n = {n}, mixed = {mixed}, {what}");
                assert_eq!(bits1(&solve(&view, &b).unwrap()), bits1(&x), "solve {ctx}");
                assert_eq!(bits2(&inv(&view).unwrap()), bits2(&ai), "inv {ctx}");
                assert_eq!(
                    det(&view).unwrap().to_bits_f64(),
                    d.to_bits_f64(),
                    "det {ctx}"
                );
            }
        }
    }
}

trait Bits {
    fn to_bits_f64(self) -> u64;
}

impl<T: Float> Bits for T {
    fn to_bits_f64(self) -> u64 {
        self.to_f64().unwrap().to_bits()
    }
}
