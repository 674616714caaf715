//! Section 2, the inner vs outer grid: for each size, every (K outer, N BLAS) pair with
//! K·N ≤ the limit, run through `matmul_batch_with(&a, &b, &Plan::new(K, N)?)`, and the
//! default policy through `matmul_batch`; throughput, speedup over serial, the best split, the
//! policy's distance from it, and the cost of the worst oversubscribed pair.

use std::hint::black_box;
use std::time::Instant;

use parlinalg::threads::Plan;
use serde::{Deserialize, Serialize};

use crate::report::cli::GridSettings;
use crate::report::progress::Progress;
use crate::report::stats::{self, gflops, median};

/// Largest output of one batch, bytes: below glibc's largest mmap threshold (32 MiB), so the
/// allocator reuses the buffer instead of faulting in fresh pages at every call.
const MAX_OUTPUT_BYTES: usize = 24 << 20;

/// One measured configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// K.
    pub outer: usize,
    /// N.
    pub blas: usize,
    /// Median seconds of one call (one batch).
    pub seconds: f64,
    pub gflops: f64,
    /// Serial (1×1) time / this time.
    pub speedup: f64,
}

impl Cell {
    /// K·N.
    pub fn threads(&self) -> usize {
        self.outer * self.blas
    }
}

/// The default policy's pick and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCell {
    pub cell: Cell,
    pub reason: String,
    /// Policy time / best pair's time.
    pub vs_best: f64,
}

/// One size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSize {
    pub n: usize,
    /// Products per call.
    pub batch: usize,
    /// Calls per measurement.
    pub calls: usize,
    /// The large single product (K = 1 only).
    pub single: bool,
    pub cells: Vec<Cell>,
    pub policy: PolicyCell,
    /// The fastest pair.
    pub best: Cell,
    /// The slowest pair with K·N above the cores, and its time / the best time.
    pub worst_oversubscribed: Option<(Cell, f64)>,
}

/// The section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSection {
    /// The OpenBLAS, as `config` reports it.
    pub library: String,
    /// Its threading layer (pthreads, openmp).
    pub threading: String,
    pub cores: usize,
    pub settings: GridSettings,
    pub sizes: Vec<GridSize>,
    pub conclusion: String,
}

/// The thread counts tried for K and for N: every count up to 16, beyond that powers of two
/// and multiples of the cores.
pub fn counts(max: usize, cores: usize) -> Vec<usize> {
    let mut v: Vec<usize> = if max <= 16 {
        (1..=max).collect()
    } else {
        std::iter::successors(Some(1usize), |n| Some(n * 2))
            .take_while(|&n| n <= max)
            .chain(
                [cores, 2 * cores, 4 * cores]
                    .into_iter()
                    .filter(|&c| c <= max),
            )
            .collect()
    };
    v.sort_unstable();
    v.dedup();
    v
}

/// The (K, N) pairs of one size.
pub fn pairs(max: usize, cores: usize, single: bool) -> Vec<(usize, usize)> {
    let c = counts(max, cores);
    let mut p = Vec::new();
    for &k in &c {
        if single && k > 1 {
            break;
        }
        for &n in &c {
            if k * n <= max {
                p.push((k, n));
            }
        }
    }
    p
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &GridSettings, cores: usize) -> f64 {
    let sizes = s.sizes.len() as f64;
    let per = |single| (pairs(s.max_threads, cores, single).len() + 1) as f64;
    let mut total = sizes * per(false) * s.rounds as f64 * s.cell_seconds * 0.8;
    if s.large.is_some() {
        total += per(true) * s.rounds as f64 * s.cell_seconds.max(0.5);
    }
    total + sizes * 0.2
}

/// Measures the grid in this process (whatever OpenBLAS it loaded).
///
/// # Errors
/// parlinalg's errors, as text.
pub fn measure(
    s: &GridSettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<GridSection> {
    let lib = parlinalg::blas_library();
    // Every outer pool built before the first measurement (a pool starts its threads once).
    for k in counts(s.max_threads, cores) {
        Plan::new(k, 1).and_then(|p| p.run(|| ()))?;
    }
    let mut sizes = Vec::new();
    let jobs = s
        .sizes
        .iter()
        .map(|&n| (n, false))
        .chain(s.large.map(|n| (n, true)));
    for (n, single) in jobs {
        sizes.push(measure_size(s, cores, n, single, progress)?);
    }
    let conclusion = conclude(cores, &lib.threading.to_string(), &sizes);
    Ok(GridSection {
        library: lib.config.clone(),
        threading: lib.threading.to_string(),
        cores,
        settings: s.clone(),
        sizes,
        conclusion,
    })
}

fn measure_size(
    s: &GridSettings,
    cores: usize,
    n: usize,
    single: bool,
    progress: &mut Progress,
) -> parlinalg::Result<GridSize> {
    progress.label(format!("grid: n = {n}, calibrating"));
    // One product's serial time, then a batch of ~cell_seconds of serial work.
    let a1 = stats::matrix(n, 1);
    let t1 = Plan::new(1, 1)?.run(|| {
        let _ = parlinalg::matmul(&a1, &a1);
        let reps = (2e7 / (2.0 * (n as f64).powi(3))).clamp(2.0, 1e4) as usize;
        let t = Instant::now();
        for _ in 0..reps {
            black_box(parlinalg::matmul(&a1, &a1).expect("square"));
        }
        t.elapsed().as_secs_f64() / reps as f64
    })?;
    let batch = if single {
        1
    } else {
        let lo = 2 * cores;
        let hi = (MAX_OUTPUT_BYTES / (n * n * 8)).max(lo);
        ((s.cell_seconds / t1) as usize).clamp(lo, hi)
    };
    let calls = ((s.cell_seconds / (t1 * batch as f64)).ceil() as usize).max(1);
    let a = stats::batch(batch, n, 3);
    let b = stats::batch(batch, n, 4);
    let configs = pairs(s.max_threads, cores, single);
    let choice = parlinalg::threads::plan_for_batch(batch, n, n, n)?;
    let plans: Vec<Plan> = configs
        .iter()
        .map(|&(k, nb)| Plan::new(k, nb))
        .collect::<parlinalg::Result<_>>()?;
    let policy_at = plans.len();
    // Untimed: the output buffer allocated once and the inputs in cache, so that the first
    // timed cell pays no more than the others.
    black_box(parlinalg::matmul_batch_with(&a, &b, &Plan::serial())?);
    black_box(parlinalg::matmul_batch(&a, &b)?);
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); plans.len() + 1];
    let weight = s.cell_seconds * 0.8;
    for round in 0..s.rounds {
        for step in 0..=plans.len() {
            let c = (step + round) % (plans.len() + 1);
            progress.label(format!(
                "grid: n = {n}, {}",
                if c == policy_at {
                    "default policy".to_owned()
                } else {
                    format!("{} outer × {} BLAS", configs[c].0, configs[c].1)
                }
            ));
            let t = Instant::now();
            for _ in 0..calls {
                let out = if c == policy_at {
                    parlinalg::matmul_batch(&a, &b)?
                } else {
                    parlinalg::matmul_batch_with(&a, &b, &plans[c])?
                };
                black_box(out);
            }
            times[c].push(t.elapsed().as_secs_f64() / calls as f64);
            progress.advance(if single {
                s.cell_seconds.max(0.5)
            } else {
                weight
            });
        }
    }
    let med: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let serial = med[configs
        .iter()
        .position(|&p| p == (1, 1))
        .expect("1×1 is a pair")];
    let cell = |(k, nb): (usize, usize), t: f64| Cell {
        outer: k,
        blas: nb,
        seconds: t,
        gflops: gflops(n, batch, t),
        speedup: serial / t,
    };
    let cells: Vec<Cell> = configs
        .iter()
        .zip(&med)
        .map(|(&p, &t)| cell(p, t))
        .collect();
    let best = best_of(&cells).clone();
    let policy = cell(
        (choice.plan.outer_threads(), choice.plan.blas_threads()),
        med[policy_at],
    );
    let worst_oversubscribed = worst_oversubscribed(&cells, cores, &best);
    Ok(GridSize {
        n,
        batch,
        calls,
        single,
        policy: PolicyCell {
            vs_best: policy.seconds / best.seconds,
            cell: policy,
            reason: choice.reason,
        },
        best,
        worst_oversubscribed,
        cells,
    })
}

/// The fastest cell.
pub fn best_of(cells: &[Cell]) -> &Cell {
    cells
        .iter()
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .expect("at least the 1×1 cell")
}

/// The slowest cell with K·N above the cores, with its time / the best time.
pub fn worst_oversubscribed(cells: &[Cell], cores: usize, best: &Cell) -> Option<(Cell, f64)> {
    cells
        .iter()
        .filter(|c| c.threads() > cores)
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .map(|c| (c.clone(), c.seconds / best.seconds))
}

/// The section's sentence, from the numbers.
pub fn conclude(cores: usize, threading: &str, sizes: &[GridSize]) -> String {
    if sizes.is_empty() {
        return "No size was measured.".into();
    }
    let name = |g: &GridSize| {
        if g.single {
            format!("the single {0}×{0} product", g.n)
        } else {
            format!("n = {}", g.n)
        }
    };
    let bests: Vec<String> = sizes
        .iter()
        .map(|g| {
            format!(
                "{}×{} for {} ({:.2}×)",
                g.best.outer,
                g.best.blas,
                name(g),
                g.best.speedup
            )
        })
        .collect();
    let gap = sizes
        .iter()
        .max_by(|a, b| a.policy.vs_best.total_cmp(&b.policy.vs_best))
        .expect("not empty");
    let policy = if gap.policy.vs_best <= 1.05 {
        format!(
            "the default policy came within 5% of the best at every size (at worst {:.1}% behind, {})",
            100.0 * (gap.policy.vs_best - 1.0),
            name(gap)
        )
    } else if (gap.policy.cell.outer, gap.policy.cell.blas) == (gap.best.outer, gap.best.blas) {
        format!(
            "the default policy's largest gap from the best, {:.0}% for {}, was with the best \
             pair itself ({}×{}, measured in its own cells): run-to-run noise",
            100.0 * (gap.policy.vs_best - 1.0),
            name(gap),
            gap.best.outer,
            gap.best.blas
        )
    } else {
        format!(
            "the default policy was at most {:.0}% behind the best ({}: it picked {}×{}, the best was {}×{})",
            100.0 * (gap.policy.vs_best - 1.0),
            name(gap),
            gap.policy.cell.outer,
            gap.policy.cell.blas,
            gap.best.outer,
            gap.best.blas
        )
    };
    let worst = sizes
        .iter()
        .filter_map(|g| g.worst_oversubscribed.as_ref().map(|w| (g, w)))
        .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
    let worst = match worst {
        Some((g, (c, r))) => format!(
            ", and the worst oversubscribed pair, {}×{} for {}, took {r:.2}× the best time",
            c.outer,
            c.blas,
            name(g)
        ),
        None => String::new(),
    };
    format!(
        "On {cores} cores with {threading} OpenBLAS the best split was {}; {policy}{worst}.",
        bests.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_cover_every_product_up_to_the_limit() {
        let p = pairs(8, 2, false);
        assert_eq!(p.len(), 20);
        assert!(p.iter().all(|&(k, n)| k * n <= 8));
        assert!(
            p.contains(&(1, 1))
                && p.contains(&(8, 1))
                && p.contains(&(1, 8))
                && p.contains(&(2, 4))
        );
        assert_eq!(
            pairs(8, 2, true),
            (1..=8).map(|n| (1, n)).collect::<Vec<_>>()
        );
        let big = counts(256, 64);
        assert!(big.contains(&64) && big.contains(&128) && big.contains(&256) && big.len() < 12);
    }

    fn cell(outer: usize, blas: usize, seconds: f64) -> Cell {
        Cell {
            outer,
            blas,
            seconds,
            gflops: 1.0 / seconds,
            speedup: 1.0 / seconds,
        }
    }

    #[test]
    fn best_worst_and_the_sentence_agree() {
        let cells = vec![
            cell(1, 1, 1.0),
            cell(2, 1, 0.5),
            cell(1, 2, 0.55),
            cell(2, 2, 0.9),
            cell(4, 1, 0.6),
        ];
        let best = best_of(&cells).clone();
        assert_eq!((best.outer, best.blas), (2, 1));
        let (w, r) = worst_oversubscribed(&cells, 2, &best).unwrap();
        assert_eq!((w.outer, w.blas), (2, 2));
        assert!((r - 1.8).abs() < 1e-12);
        let size = GridSize {
            n: 64,
            batch: 8,
            calls: 1,
            single: false,
            policy: PolicyCell {
                cell: cell(1, 2, 0.55),
                reason: "test".into(),
                vs_best: 1.1,
            },
            best,
            worst_oversubscribed: Some((w, r)),
            cells,
        };
        let s = conclude(2, "pthreads", &[size]);
        assert!(s.contains("2×1 for n = 64 (2.00×)"), "{s}");
        assert!(
            s.contains("at most 10% behind the best (n = 64: it picked 1×2"),
            "{s}"
        );
        assert!(
            s.contains("2×2 for n = 64, took 1.80× the best time"),
            "{s}"
        );
        assert_eq!(s.matches(". ").count(), 0, "one sentence: {s}");
    }
}
