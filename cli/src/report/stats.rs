//! Numeric helpers: the report's statistic and its intervals, percentiles, timing, seeded
//! inputs.
//!
//! Timings on a shared machine are noisy in one direction: a burst of another process's work
//! or of the hypervisor's steal only ever adds time. So a configuration's time is the **lower
//! quartile** of its per-round samples ([`STATISTIC`]), which ignores up to three bursts in
//! four without being the minimum (the minimum of many noisy cells is biased low, the winner's
//! curse). A ratio of two configurations comes with a **paired bootstrap interval over
//! rounds** ([`ratio`]): the rounds both ran in are resampled with replacement, keeping each
//! round's pair together, so a slow round that hit both counts once, not twice.

use std::time::Instant;

use parlinalg::ndarray::{Array2, Array3};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The statistic of a configuration's samples, as the report names it.
pub const STATISTIC: &str = "lower quartile";

/// The quantile [`STATISTIC`] takes.
const QUANTILE: f64 = 0.25;

/// The confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// Bootstrap resamples per interval.
const RESAMPLES: usize = 2000;

/// One configuration's timings: `(round, seconds per call)`, one per round it ran in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples(pub Vec<(usize, f64)>);

impl Samples {
    /// Rounds measured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No round measured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The [`STATISTIC`] of the seconds; `NaN` without samples.
    pub fn estimate(&self) -> f64 {
        let mut v: Vec<f64> = self.0.iter().map(|s| s.1).collect();
        percentile(&mut v, QUANTILE)
    }

    /// The samples of the rounds `keep` accepts.
    pub fn rounds(&self, keep: impl Fn(usize) -> bool) -> Samples {
        Samples(self.0.iter().copied().filter(|s| keep(s.0)).collect())
    }
}

/// A [`CONFIDENCE`] interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// Whether `x` lies inside.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// `a`'s time over `b`'s (with `a` the serial cell, `b`'s speedup), each the [`STATISTIC`] over
/// the rounds both ran in, and its paired bootstrap interval (`None` below 3 common rounds).
/// `seed` makes the interval reproducible.
pub fn ratio(a: &Samples, b: &Samples, seed: u64) -> (f64, Option<Interval>) {
    let pairs: Vec<(f64, f64)> =
        a.0.iter()
            .filter_map(|&(r, ta)| b.0.iter().find(|s| s.0 == r).map(|&(_, tb)| (ta, tb)))
            .collect();
    let of = |p: &[(f64, f64)]| {
        let mut x: Vec<f64> = p.iter().map(|p| p.0).collect();
        let mut y: Vec<f64> = p.iter().map(|p| p.1).collect();
        percentile(&mut x, QUANTILE) / percentile(&mut y, QUANTILE)
    };
    let value = of(&pairs);
    if pairs.len() < 3 {
        return (value, None);
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut draw = vec![(0.0, 0.0); pairs.len()];
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for d in &mut draw {
                *d = pairs[rng.random_range(0..pairs.len())];
            }
            of(&draw)
        })
        .collect();
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let lo = percentile(&mut ratios, tail);
    let hi = percentile(&mut ratios, 1.0 - tail);
    (value, Some(Interval { lo, hi }))
}

/// Rounds alternate between picking the best configuration (odd rounds) and scoring it (even
/// rounds), so the best is never scored on the samples that made it the best.
pub fn is_pick_round(round: usize) -> bool {
    round % 2 == 1
}

/// The index of the configuration with the smallest [`STATISTIC`] over the pick rounds only.
pub fn held_out_best<'a>(cells: impl IntoIterator<Item = &'a Samples>) -> Option<usize> {
    cells
        .into_iter()
        .map(|s| s.rounds(is_pick_round).estimate())
        .enumerate()
        .filter(|(_, t)| t.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The distribution-free [`CONFIDENCE`] interval of the `p`-quantile of `n` samples, as
/// 0-based indices into the sorted samples: the exact binomial order-statistic interval (the
/// k-th smallest sample lies below the true quantile with probability P(Binomial(n, p) ≥ k)).
/// An end is `None` when `n` is too small for it: for p99, fewer than about 370 samples have no
/// upper bound (the true p99 may lie above the largest sample).
pub fn quantile_ranks(n: usize, p: f64) -> (Option<usize>, Option<usize>) {
    let tail = (1.0 - CONFIDENCE) / 2.0;
    // cdf[k] = P(B ≤ k), from the pmf in log space (no overflow for large n).
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_choose = 0.0;
    let mut cdf = Vec::with_capacity(n + 1);
    let mut sum = 0.0;
    for k in 0..=n {
        if k > 0 {
            log_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        sum += (log_choose + k as f64 * lp + (n - k) as f64 * lq).exp();
        cdf.push(sum);
    }
    // Lower: the largest rank l ≥ 1 with P(B ≤ l - 1) ≤ tail. Upper: the smallest rank u ≤ n
    // with P(B ≤ u - 1) ≥ 1 - tail.
    let lo = (1..=n).take_while(|&l| cdf[l - 1] <= tail).last();
    let hi = (1..=n).find(|&u| cdf[u - 1] >= 1.0 - tail);
    (lo.map(|l| l - 1), hi.map(|u| u - 1))
}

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
pub(crate) mod tests {
    use super::*;

    /// A known noise model: each sample is the true time × a jitter of up to ±5%, and one
    /// sample in eight is hit by a burst that adds 30–100% (another process, the hypervisor).
    pub(crate) fn noisy(rng: &mut SmallRng, truth: f64) -> f64 {
        let jitter = 1.0 + 0.05 * (rng.random::<f64>() + rng.random::<f64>() - 1.0);
        let burst = if rng.random::<f64>() < 0.125 {
            1.3 + 0.7 * rng.random::<f64>()
        } else {
            1.0
        };
        truth * jitter * burst
    }

    fn samples(rng: &mut SmallRng, truth: f64, rounds: usize) -> Samples {
        Samples((0..rounds).map(|r| (r, noisy(rng, truth))).collect())
    }

    #[test]
    fn the_interval_covers_the_true_ratio_at_its_stated_rate() {
        // 1000 runs of 12 paired rounds each, a true speedup of 1.8: a 95% interval should miss
        // about 5% of the time; a percentile bootstrap of 12 samples is a little narrow, so the
        // test accepts 90-99% (an interval that is always right, or one with no width, fails).
        let mut rng = SmallRng::seed_from_u64(42);
        let trials = 1000;
        let mut covered = 0;
        let mut width = 0.0;
        for t in 0..trials {
            let serial = samples(&mut rng, 1.0, 12);
            let cell = samples(&mut rng, 1.0 / 1.8, 12);
            let (value, iv) = ratio(&serial, &cell, t);
            let iv = iv.expect("12 rounds");
            assert!(iv.lo <= value && value <= iv.hi, "{iv:?} {value}");
            covered += usize::from(iv.contains(1.8));
            width += (iv.hi - iv.lo) / 1.8;
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
        let width = width / trials as f64;
        assert!(width > 0.01 && width < 0.2, "mean relative width {width}");
        let (_, none) = ratio(&samples(&mut rng, 1.0, 2), &samples(&mut rng, 1.0, 2), 0);
        assert!(none.is_none(), "two rounds give no interval");
    }

    #[test]
    fn the_held_out_pick_is_unbiased_where_the_minimum_is_not() {
        // Ten configurations with the same true time 1.0: the best of them is no faster than
        // any other. Picked and scored on the same rounds, the winner looks faster (the
        // winner's curse); scored on the other rounds, it does not.
        let mut rng = SmallRng::seed_from_u64(7);
        let (mut naive, mut held_out, mut one, mut one_all) = (0.0, 0.0, 0.0, 0.0);
        let trials = 400;
        for _ in 0..trials {
            let cells: Vec<Samples> = (0..10).map(|_| samples(&mut rng, 1.0, 12)).collect();
            naive += cells
                .iter()
                .map(Samples::estimate)
                .fold(f64::INFINITY, f64::min);
            let best = held_out_best(&cells).unwrap();
            held_out += cells[best].rounds(|r| !is_pick_round(r)).estimate();
            one += cells[0].rounds(|r| !is_pick_round(r)).estimate();
            one_all += cells[0].estimate();
        }
        let [naive, held_out, one, one_all] =
            [naive, held_out, one, one_all].map(|x| x / trials as f64);
        // Scored on its 6 held-out rounds, the pick is no faster than any one cell on the same
        // rounds; the minimum over all 12 rounds is faster than any one cell on 12 rounds.
        assert!((held_out / one - 1.0).abs() < 0.005, "{held_out} vs {one}");
        assert!(
            naive < one_all * 0.99,
            "the minimum is biased low: {naive} vs {one_all}"
        );
    }

    #[test]
    fn quantile_ranks_say_when_the_sample_is_too_small() {
        assert_eq!(
            quantile_ranks(300, 0.99).1,
            None,
            "300 samples: no upper bound for p99"
        );
        let (lo, hi) = quantile_ranks(1000, 0.99);
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!(lo < 989 && 989 < hi && hi < 1000, "{lo} {hi}");
        let (lo, hi) = quantile_ranks(101, 0.5);
        assert!(lo.unwrap() < 50 && hi.unwrap() > 50);
        assert_eq!(quantile_ranks(0, 0.5), (None, None));
    }

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
