//! Small numeric helpers: medians, percentiles, timing, seeded inputs.

use std::time::Instant;

use parlinalg::ndarray::{Array2, Array3};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The median of `v` (sorted in place); `NaN` for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

/// The `p`-quantile of `v` (0 ≤ p ≤ 1, nearest rank, sorted in place); `NaN` when empty.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    v[i]
}

/// Seconds that `f` took.
pub fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine, so a worker's
/// timestamps compare with its parent's.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which is valid for writes;
    // CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// A seeded stream of values in [-0.5, 0.5), so every run multiplies the same numbers.
fn stream(seed: u64) -> impl FnMut() -> f64 {
    let mut r = SmallRng::seed_from_u64(seed);
    move || r.random_range(-0.5..0.5)
}

/// A seeded n×n matrix.
pub fn matrix(n: usize, seed: u64) -> Array2<f64> {
    Array2::from_shape_simple_fn((n, n), stream(seed))
}

/// A seeded batch of n×n matrices.
pub fn batch(batch: usize, n: usize, seed: u64) -> Array3<f64> {
    Array3::from_shape_simple_fn((batch, n, n), stream(seed))
}

/// GFLOP/s of `products` products of n×n matrices in `secs` seconds.
pub fn gflops(n: usize, products: usize, secs: f64) -> f64 {
    2.0 * (n as f64).powi(3) * products as f64 / secs / 1e9
}

/// Fills `out` with `exp`'s argument range of the classic workload: values in [-1, 1).
pub fn fill_exp_input(out: &mut [f64], seed: u64) {
    let mut next = stream(seed);
    for v in out {
        *v = 2.0 * next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&mut v), 3.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert_eq!(percentile(&mut v, 1.0), 5.0);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn inputs_are_seeded() {
        assert_eq!(matrix(3, 1), matrix(3, 1));
        assert_ne!(matrix(3, 1), matrix(3, 2));
        let mut x = vec![0.0; 100];
        fill_exp_input(&mut x, 7);
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
