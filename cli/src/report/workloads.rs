//! The classic table's three workloads, as each thread or process runs its share of them:
//!
//! - **g**: exp over the whole array at once (numpy's `np.exp(x)`), repeated;
//! - **f**: a plain scalar loop calling `f64::exp` per element (Python's `[math.exp(v) for v in
//!   x]`), repeated;
//! - **h**: a batch of n×n matrix products, each worker taking every C-th product.

use parlinalg::ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Workload {
    /// exp over the whole array at once.
    G,
    /// A scalar loop, `f64::exp` per element.
    F,
    /// A batch of matrix products.
    H,
}

impl Workload {
    /// Short name as in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::G => "g",
            Workload::F => "f",
            Workload::H => "h",
        }
    }
}

/// Runs g `reps` times: `parlinalg::exp_into` over the whole array, into `out` (SIMD kernels
/// over rayon in the current pool: one thread inside a plan of one outer thread, C threads
/// inside a plan of C). Every row writes into an output allocated and touched before its clock
/// starts, as a Rust program reusing its buffer would: fresh 80 MB results would measure the
/// kernel's page zeroing and, for threads, contention on the process's page tables (an OS
/// effect, not a lock of the language's).
pub fn run_g(x: &[f64], out: &mut [f64], reps: usize) {
    let x = ArrayView1::from(x);
    let mut out = ArrayViewMut1::from(out);
    for _ in 0..reps {
        parlinalg::exp_into(&x, &mut out).expect("x and out have the same length");
        std::hint::black_box(&mut out);
    }
}

/// Runs f `reps` times: the scalar loop writes `exp(x[i])` into `out[i]`.
pub fn run_f(x: &[f64], out: &mut [f64], reps: usize) {
    for _ in 0..reps {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.exp();
        }
        std::hint::black_box(&mut *out);
    }
}

/// Multiplies a block of products, `c[i] = a[i] · b[i]`, each `n × n`, stored one after
/// another (C order) in the slices.
///
/// # Errors
/// parlinalg's error for a product (none expected: the shapes are built here).
pub fn run_h(a: &[f64], b: &[f64], c: &mut [f64], n: usize) -> parlinalg::Result<()> {
    let nn = n * n;
    for ((ai, bi), ci) in a.chunks(nn).zip(b.chunks(nn)).zip(c.chunks_mut(nn)) {
        let ai = ArrayView2::from_shape((n, n), ai).expect("n·n elements");
        let bi = ArrayView2::from_shape((n, n), bi).expect("n·n elements");
        let mut ci = ArrayViewMut2::from_shape((n, n), ci).expect("n·n elements");
        parlinalg::matmul_into(&ai, &bi, &mut ci)?;
    }
    Ok(())
}

/// Worker `w`'s share of `reps` repetitions split among `workers` (the first ones take one
/// more when it does not divide).
pub fn share(reps: usize, workers: usize, w: usize) -> usize {
    reps / workers + usize::from(w < reps % workers)
}

/// Checks `out` against `exp(x)` at a few spread indices.
pub fn check_exp(x: &[f64], out: &[f64]) -> anyhow::Result<()> {
    if x.len() != out.len() {
        anyhow::bail!("{} outputs for {} inputs", out.len(), x.len());
    }
    let step = (x.len() / 97).max(1);
    for i in (0..x.len())
        .step_by(step)
        .chain([x.len().saturating_sub(1)])
    {
        let want = x[i].exp();
        if (out[i] - want).abs() > 1e-12 * want.abs().max(1.0) {
            anyhow::bail!("exp(x[{i}]) = {want} but the worker wrote {}", out[i]);
        }
    }
    Ok(())
}

/// Checks a few entries of each product of the batch against a direct dot product.
pub fn check_products(a: &[f64], b: &[f64], c: &[f64], n: usize) -> anyhow::Result<()> {
    let nn = n * n;
    for p in 0..c.len() / nn.max(1) {
        for (i, j) in [(0, 0), (n - 1, n - 1), (n / 2, n / 3)] {
            let want: f64 = (0..n)
                .map(|k| a[p * nn + i * n + k] * b[p * nn + k * n + j])
                .sum();
            let got = c[p * nn + i * n + j];
            if (got - want).abs() > 1e-9 * (n as f64) {
                anyhow::bail!(
                    "product {p}: c[{i}, {j}] = {got}, a direct dot product gives {want}"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parlinalg::threads::Plan;

    #[test]
    fn g_and_f_compute_exp() {
        let mut x = vec![0.0; 5000];
        crate::report::stats::fill_exp_input(&mut x, 3);
        let mut out = vec![0.0; 5000];
        Plan::new(2, 1)
            .unwrap()
            .run(|| run_g(&x, &mut out, 2))
            .unwrap();
        check_exp(&x, &out).unwrap();
        let mut out = vec![0.0; 5000];
        run_f(&x, &mut out, 2);
        check_exp(&x, &out).unwrap();
        out[0] += 1.0;
        assert!(check_exp(&x, &out).is_err());
    }

    #[test]
    fn h_multiplies_every_product_of_its_block() {
        let (batch, n) = (5, 7);
        let a = crate::report::stats::batch(batch, n, 1);
        let b = crate::report::stats::batch(batch, n, 2);
        let (a, b) = (a.as_slice().unwrap(), b.as_slice().unwrap());
        let mut c = vec![0.0; batch * n * n];
        run_h(a, b, &mut c, n).unwrap();
        check_products(a, b, &c, n).unwrap();
        c[n * n] += 1.0;
        assert!(check_products(a, b, &c, n).is_err());
    }

    #[test]
    fn shares_add_up() {
        for reps in 0..20 {
            for workers in 1..5 {
                let total: usize = (0..workers).map(|w| share(reps, workers, w)).sum();
                assert_eq!(total, reps);
            }
        }
    }
}
