//! Section 2, the inner vs outer grid: for each size (batches of many products, a batch of
//! fewer products than cores, one large single product), the (K outer, N BLAS) pairs that
//! answer the question at this core count ([`pairs`]: every pair on 1 and 2 cores, a selection
//! fixed by the core count beyond), run through `matmul_batch_with(&a, &b, &Plan::new(K, N)?)`,
//! the default policy through `matmul_batch`, and a control (the serial plan a second time); measured in a
//! race (`race.rs`) and summarised with intervals (`stats.rs`): the speedups, the best split
//! (the highest speedup as printed, with every cell tied with it), the policy's distance from
//! it, a held-out check of the best's selection bias, and the cost of the worst oversubscribed
//! pair.
//!
//! At the end: a grid's Markdown under a title ([`markdown`], the OpenMP section's too) and its
//! rows of grid.csv ([`csv()`](fn@csv)).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use parlinalg::ndarray::Array3;
use parlinalg::threads::{Plan, PlanChoice};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::report::cli::GridSettings;
use crate::report::machine::{MachineState, Snapshot};
use crate::report::progress::Progress;
use crate::report::race::{Race, RaceLimits, Sample};
use crate::report::stats::{self, gflops, is_pick_round, seconds, Interval, Samples, STATISTIC};
use crate::report::table::{csv_text, fmt_s, strings, table, with_interval};

/// Largest output of one batch, bytes: below glibc's largest mmap threshold (32 MiB), so the
/// allocator reuses the buffer instead of faulting in fresh pages at every call.
const MAX_OUTPUT_BYTES: usize = 24 << 20;

/// Bytes one size of the grid holds at once: a and b of its largest batch (at least 2 products
/// per core, more while the output stays under 24 MiB, `MAX_OUTPUT_BYTES`; one product for the
/// large single one) and one output batch, plus the calibration's matrix and product.
pub fn bytes_needed(n: usize, cores: usize, single: bool) -> u128 {
    let matrix = 8 * (n as u128).pow(2);
    let batch = if single {
        1
    } else {
        (MAX_OUTPUT_BYTES / (n * n * 8).max(1)).max(2 * cores)
    };
    (3 * batch as u128 + 2) * matrix
}

/// Bytes the batch of fewer products than cores holds at once: a, b and c of its
/// [`few_products`], plus the calibration's matrix and product.
pub fn bytes_needed_small_batch(n: usize, cores: usize) -> u128 {
    (3 * few_products(cores) as u128 + 2) * 8 * (n as u128).pow(2)
}

/// No size runs more rounds than this, however many seconds it has left.
const MAX_ROUNDS: usize = 60;

/// A speedup above the usable cores × this is re-measured, and flagged if it persists.
pub const IMPOSSIBLE: f64 = 1.10;

/// One measured configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// K.
    pub outer: usize,
    /// N.
    pub blas: usize,
    /// Seconds of one call (one batch): the statistic of its rounds.
    pub seconds: f64,
    pub gflops: f64,
    /// Serial (1×1) time / this time.
    pub speedup: f64,
    /// The speedup's 95% interval (paired bootstrap over rounds; none below 3 rounds).
    pub speedup_interval: Option<Interval>,
    /// Tied with the best: its time ÷ the best's has a paired interval that holds 1.
    pub within_noise_of_best: bool,
    /// Why this figure is not a finding (a speedup above the usable cores that persisted).
    pub flag: Option<String>,
    /// Seconds per call, per round it was measured in.
    pub samples: Samples,
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
    /// Policy time / the best's time, over the rounds both ran in (1 when the policy's pick is
    /// the best).
    pub vs_best: f64,
    pub vs_best_interval: Option<Interval>,
}

/// A secondary check of the best's selection bias (the winner's curse): the pair picked on the
/// odd rounds alone, and its speedup scored on the even rounds only. Beside the best's own
/// figure it says how optimistic picking the highest of many noisy figures made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutCheck {
    pub outer: usize,
    pub blas: usize,
    /// Its speedup over serial on the even rounds.
    pub speedup: f64,
    pub interval: Option<Interval>,
}

/// The run's own noise: the serial plan measured a second time, as a cell of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseControl {
    /// Its time / the serial cell's time (1 without noise).
    pub ratio: f64,
    pub interval: Option<Interval>,
    pub samples: Samples,
}

/// One size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridSize {
    pub n: usize,
    /// Products per call.
    pub batch: usize,
    /// Calls per sample.
    pub calls: usize,
    /// The large single product (K = 1 only).
    pub single: bool,
    /// The batch of fewer products than cores ([`few_products`]).
    #[serde(default)]
    pub small_batch: bool,
    /// Rounds run (a cell that left the race early has fewer samples).
    pub rounds: usize,
    pub cells: Vec<Cell>,
    pub policy: PolicyCell,
    /// The best: the pair, or the policy's pick, with the highest speedup as printed (over all
    /// its rounds); no printed figure beats it.
    pub best: Cell,
    /// The best is the policy's own cell (its K×N measured through `matmul_batch`).
    #[serde(default)]
    pub best_is_policy: bool,
    /// The best's selection bias, checked on held-out rounds.
    #[serde(default)]
    pub held_out: Option<HeldOutCheck>,
    pub control: NoiseControl,
    /// The slowest pair with K·N above the cores, and its time / the best time.
    pub worst_oversubscribed: Option<(Cell, f64)>,
}

impl GridSize {
    /// The K (outer) and the N (BLAS) values of its cells, each sorted, without repeats.
    pub fn axes(&self) -> (Vec<usize>, Vec<usize>) {
        let sorted = |f: fn(&Cell) -> usize| {
            let mut v: Vec<usize> = self.cells.iter().map(f).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        (sorted(|c| c.outer), sorted(|c| c.blas))
    }
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
    /// The statistic of every time.
    pub statistic: String,
    pub sizes: Vec<GridSize>,
    /// The machine while the grid ran.
    pub machine: MachineState,
    pub conclusion: String,
}

/// Every pair with K·N ≤ the limit is measured while there are at most this many (on 1 and 2
/// cores, with the default limit of 4 × cores: 8 and 20 pairs).
pub const FULL_GRID_PAIRS: usize = 24;

/// How many pairs have K·N ≤ `max`.
pub fn full_grid_len(max: usize) -> usize {
    (1..=max).map(|k| max / k).sum()
}

/// Every (K, N) with K·N ≤ `max`.
fn full_grid(max: usize) -> Vec<(usize, usize)> {
    (1..=max)
        .flat_map(|k| (1..=max / k).map(move |n| (k, n)))
        .collect()
}

/// The pairs that answer the question on `cores` cores (C), whatever C is: K and N powers of
/// two with K·N ≤ C; pure outer and pure inner, C×1 and 1×C; the K·N = C diagonal, (K, C/K)
/// for every K that is a power of two or C over one and divides C; and oversubscribed, for M =
/// 2C and 4C, 1×M, M×1, (M/C)×C and C×(M/C). About 23 pairs on 16 cores, 36 on 64.
pub fn selection(cores: usize) -> Vec<(usize, usize)> {
    let c = cores.max(1);
    let powers: Vec<usize> = std::iter::successors(Some(1usize), |k| Some(k * 2))
        .take_while(|&k| k <= c)
        .collect();
    let mut p: Vec<(usize, usize)> = Vec::new();
    for &k in &powers {
        p.extend(powers.iter().filter(|&&n| k * n <= c).map(|&n| (k, n)));
    }
    p.extend([(c, 1), (1, c)]);
    let over_powers = powers
        .iter()
        .filter(|&&k| c.is_multiple_of(k))
        .map(|&k| c / k);
    for k in powers.iter().copied().chain(over_powers) {
        if c.is_multiple_of(k) {
            p.push((k, c / k));
        }
    }
    for m in [2, 4] {
        p.extend([(1, m * c), (m * c, 1), (m, c), (c, m)]);
    }
    p.sort_unstable();
    p.dedup();
    p
}

/// The (K, N) pairs of one size, sorted: every pair with K·N ≤ `max` when there are at most
/// [`FULL_GRID_PAIRS`], else the [`selection`] for `cores` up to K·N ≤ `max`; K = 1 only for
/// the single product. A pure function of its arguments, so of the core count by default.
pub fn pairs(max: usize, cores: usize, single: bool) -> Vec<(usize, usize)> {
    let max = max.max(1);
    let full = full_grid(max);
    let mut p = if full.len() <= FULL_GRID_PAIRS {
        full
    } else {
        let mut p = selection(cores);
        p.retain(|&(k, n)| k * n <= max);
        p
    };
    if single {
        p.retain(|&(k, _)| k == 1);
    }
    p.sort_unstable();
    p.dedup();
    p
}

/// Products in the batch smaller than the cores: half the cores, rounded up. On C ≥ 3 cores
/// neither K = C outer threads (C − B of them idle) nor N = C BLAS threads on one product at a
/// time fills the machine the way B outer × C/B BLAS threads can.
pub fn few_products(cores: usize) -> usize {
    cores.max(1).div_ceil(2)
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &GridSettings, cores: usize) -> f64 {
    // A size takes its seconds (`size_seconds`), or its first rounds of every cell if they take longer (about
    // two thirds of a serial sample per cell on average).
    let size = |cells: usize, sample: f64| {
        s.size_seconds
            .max(s.rounds as f64 * (cells + 2) as f64 * sample * 0.65)
            + 0.5
    };
    let batches = s.sizes.len() + usize::from(s.small_batch.is_some());
    let batched = batches as f64 * size(pairs(s.max_threads, cores, false).len(), s.sample_seconds);
    let single = s.large.map_or(0.0, |n| {
        let product = 2.0 * (n as f64).powi(3) / 40e9;
        size(
            pairs(s.max_threads, cores, true).len(),
            product.max(s.sample_seconds),
        )
    });
    batched + single
}

/// Measures the grid in this process (whatever OpenBLAS it loaded). The sizes' rounds are
/// interleaved, in random order, so each cell's samples span the whole section rather than a
/// stretch of it: a slow minute of the machine touches every size alike.
///
/// # Errors
/// parlinalg's errors.
pub fn measure(
    s: &GridSettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<GridSection> {
    let lib = parlinalg::blas_library();
    let machine = Snapshot::take();
    // Every outer pool built before the first measurement (a pool starts its threads once).
    let mut outer: Vec<usize> = pairs(s.max_threads, cores, false)
        .iter()
        .map(|p| p.0)
        .collect();
    outer.dedup();
    for k in outer {
        Plan::new(k, 1).and_then(|p| p.run(|| ()))?;
    }
    let jobs = s.sizes.iter().map(|&n| (n, Shape::Batch));
    let jobs: Vec<SizeJob> = jobs
        .chain(s.small_batch.map(|n| (n, Shape::Few)))
        .chain(s.large.map(|n| (n, Shape::Single)))
        .map(|(n, shape)| SizeJob::prepare(s, cores, n, shape, progress))
        .collect::<parlinalg::Result<_>>()?;
    let mut races: Vec<Race> = jobs.iter().map(SizeJob::race).collect();
    let mut spent = vec![0.0; jobs.len()];
    let limits = RaceLimits {
        min_rounds: s.rounds,
        max_rounds: MAX_ROUNDS,
        seconds: s.size_seconds,
    };
    let mut rng = SmallRng::seed_from_u64(17);
    loop {
        let mut open: Vec<usize> = (0..jobs.len())
            .filter(|&j| !limits.done(races[j].rounds(), spent[j]))
            .collect();
        if open.is_empty() {
            break;
        }
        open.shuffle(&mut rng);
        for j in open {
            spent[j] += races[j].step(s.rounds, |i| jobs[j].measure(i, progress))?;
        }
    }
    let sizes = jobs
        .iter()
        .zip(races)
        .map(|(job, race)| job.finish(race, s.rounds, progress))
        .collect::<parlinalg::Result<Vec<_>>>()?;
    Ok(GridSection {
        library: lib.config.clone(),
        threading: lib.threading.to_string(),
        cores,
        settings: s.clone(),
        statistic: STATISTIC.to_owned(),
        conclusion: conclude(cores, &lib.threading.to_string(), &sizes),
        sizes,
        machine: machine.until_now(),
    })
}

/// What one size of the grid multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A batch of many products (at least 2 per core).
    Batch,
    /// A batch of fewer products than cores ([`few_products`]).
    Few,
    /// One large product.
    Single,
}

/// The batch and the calls per sample for size `n`: about `sample_seconds` of serial work.
fn batch_and_calls(
    s: &GridSettings,
    cores: usize,
    n: usize,
    shape: Shape,
) -> parlinalg::Result<(usize, usize)> {
    let a = stats::matrix(n, 1);
    let t1 = Plan::new(1, 1)?.run(|| {
        let _ = parlinalg::matmul(&a, &a);
        let reps = (2e7 / (2.0 * (n as f64).powi(3))).clamp(2.0, 1e4) as usize;
        let t = seconds(|| {
            for _ in 0..reps {
                black_box(parlinalg::matmul(&a, &a).expect("square"));
            }
        });
        t / reps as f64
    })?;
    let batch = match shape {
        Shape::Single => 1,
        Shape::Few => few_products(cores),
        Shape::Batch => {
            let hi = (MAX_OUTPUT_BYTES / (n * n * 8)).max(2 * cores);
            ((s.sample_seconds / t1) as usize).clamp(2 * cores, hi)
        }
    };
    let calls = ((s.sample_seconds / (t1 * batch as f64)).ceil() as usize).max(1);
    Ok((batch, calls))
}

/// One size: its inputs and configurations — the pairs, then the default policy, then the
/// control (the serial plan again).
struct SizeJob {
    n: usize,
    shape: Shape,
    batch: usize,
    calls: usize,
    cores: usize,
    a: Array3<f64>,
    b: Array3<f64>,
    pairs: Vec<(usize, usize)>,
    plans: Vec<Plan>,
    choice: PlanChoice,
    serial: usize,
    policy: usize,
    control: usize,
}

impl SizeJob {
    fn prepare(
        s: &GridSettings,
        cores: usize,
        n: usize,
        shape: Shape,
        progress: &mut Progress,
    ) -> parlinalg::Result<SizeJob> {
        progress.label(format!("grid: n = {n}, calibrating"));
        let (batch, calls) = batch_and_calls(s, cores, n, shape)?;
        let (a, b) = (stats::batch(batch, n, 3), stats::batch(batch, n, 4));
        // N above the BLAS threads OpenBLAS was built for is no plan (4 × 32 cores > 64).
        let mut pairs = pairs(s.max_threads, cores, shape == Shape::Single);
        pairs.retain(|&(_, nb)| nb <= parlinalg::threads::blas_max_threads());
        let choice = parlinalg::threads::plan_for_batch(batch, n, n, n)?;
        let serial = pairs
            .iter()
            .position(|&p| p == (1, 1))
            .expect("1×1 is a pair");
        let mut plans: Vec<Plan> = pairs
            .iter()
            .map(|&(k, nb)| Plan::new(k, nb))
            .collect::<parlinalg::Result<_>>()?;
        plans.extend([Plan::serial(), Plan::serial()]); // the policy's is unused
        Ok(SizeJob {
            n,
            shape,
            batch,
            calls,
            cores,
            a,
            b,
            policy: pairs.len(),
            control: pairs.len() + 1,
            pairs,
            plans,
            choice,
            serial,
        })
    }

    fn race(&self) -> Race {
        Race::new(
            self.plans.len(),
            &[self.serial, self.policy, self.control],
            self.n as u64,
        )
    }

    /// One sample of configuration `i`.
    fn measure(&self, i: usize, progress: &mut Progress) -> parlinalg::Result<Sample> {
        let n = self.n;
        progress.label(match i {
            _ if i == self.policy => format!("grid: n = {n}, default policy"),
            _ if i == self.control => format!("grid: n = {n}, control (1 × 1 again)"),
            _ => format!(
                "grid: n = {n}, {} outer × {} BLAS",
                self.pairs[i].0, self.pairs[i].1
            ),
        });
        let t = Instant::now();
        for _ in 0..self.calls {
            black_box(if i == self.policy {
                parlinalg::matmul_batch(&self.a, &self.b)?
            } else {
                parlinalg::matmul_batch_with(&self.a, &self.b, &self.plans[i])?
            });
        }
        let wall = t.elapsed().as_secs_f64();
        progress.advance(wall);
        let per_call = wall / self.calls as f64;
        Ok(Sample { per_call, wall })
    }

    /// Re-measures the speedups above the usable cores, then summarises the size.
    fn finish(
        &self,
        mut race: Race,
        rounds: usize,
        progress: &mut Progress,
    ) -> parlinalg::Result<GridSize> {
        let (serial, policy, control) = (self.serial, self.policy, self.control);
        let limit = self.cores as f64 * IMPOSSIBLE;
        let speedup = |i: usize| stats::ratio(&race.samples[serial], &race.samples[i], 0).0;
        let suspects: Vec<usize> = (0..=policy).filter(|&i| speedup(i) > limit).collect();
        if !suspects.is_empty() {
            let which: Vec<usize> = [serial, control].into_iter().chain(suspects).collect();
            race.extra(&which, rounds.max(4), |i| self.measure(i, progress))?;
        }
        let samples = &race.samples;
        let judge = Judge {
            serial: &samples[serial],
            cores: self.cores,
            n: self.n,
            batch: self.batch,
        };
        let mut cells: Vec<Cell> = self
            .pairs
            .iter()
            .zip(samples)
            .map(|(&p, s)| judge.cell(p, s))
            .collect();
        let plan = &self.choice.plan;
        let mut policy_cell = judge.cell(
            (plan.outer_threads(), plan.blas_threads()),
            &samples[policy],
        );
        // The best: the highest speedup as printed, among the pairs and the policy's pick.
        let best = stats::best_by_speedup(&samples[serial], &samples[..=policy]).unwrap_or(serial);
        for (i, c) in cells.iter_mut().chain([&mut policy_cell]).enumerate() {
            c.within_noise_of_best =
                i == best || stats::tied(&samples[i], &samples[best], i as u64);
        }
        let best_cell = if best == policy {
            policy_cell.clone()
        } else {
            cells[best].clone()
        };
        let (vs_best, vs_best_interval) = stats::ratio(&samples[policy], &samples[best], 2);
        let (ratio, interval) = stats::ratio(&samples[control], &samples[serial], 3);
        Ok(GridSize {
            n: self.n,
            batch: self.batch,
            calls: self.calls,
            single: self.shape == Shape::Single,
            small_batch: self.shape == Shape::Few,
            rounds: race.rounds(),
            policy: PolicyCell {
                cell: policy_cell,
                reason: self.choice.reason.clone(),
                vs_best,
                vs_best_interval,
            },
            control: NoiseControl {
                ratio,
                interval,
                samples: samples[control].clone(),
            },
            worst_oversubscribed: worst_oversubscribed(&cells, self.cores, &best_cell),
            best: best_cell,
            best_is_policy: best == policy,
            held_out: held_out_check(&self.pairs, &samples[serial], &samples[..self.pairs.len()]),
            cells: std::mem::take(&mut cells),
        })
    }
}

/// The held-out check of `pairs` (with their samples): the pair picked on the odd rounds and
/// its speedup on the even ones.
pub fn held_out_check(
    pairs: &[(usize, usize)],
    serial: &Samples,
    samples: &[Samples],
) -> Option<HeldOutCheck> {
    let pick = stats::held_out_best(samples)?;
    let scored = |s: &Samples| s.rounds(|r| !is_pick_round(r));
    let (speedup, interval) = stats::ratio(&scored(serial), &scored(&samples[pick]), 1);
    speedup.is_finite().then(|| HeldOutCheck {
        outer: pairs[pick].0,
        blas: pairs[pick].1,
        speedup,
        interval,
    })
}

/// Turns samples into a cell: its speedup over `serial`, the interval, and a flag when the
/// speedup is more than the cores allow.
#[derive(Clone, Copy)]
struct Judge<'a> {
    serial: &'a Samples,
    cores: usize,
    n: usize,
    batch: usize,
}

impl Judge<'_> {
    fn cell(&self, (outer, blas): (usize, usize), samples: &Samples) -> Cell {
        let (speedup, speedup_interval) =
            stats::ratio(self.serial, samples, (outer * 64 + blas) as u64);
        let seconds = samples.estimate();
        Cell {
            outer,
            blas,
            seconds,
            gflops: gflops(self.n, self.batch, seconds),
            speedup,
            speedup_interval,
            within_noise_of_best: false,
            flag: impossible(speedup, self.cores, self.serial),
            samples: samples.clone(),
        }
    }
}

/// Why a speedup above the usable cores × [`IMPOSSIBLE`] is not a finding (`None` below it).
pub fn impossible(speedup: f64, cores: usize, serial: &Samples) -> Option<String> {
    if speedup <= cores as f64 * IMPOSSIBLE {
        return None;
    }
    let mut v: Vec<f64> = serial.0.iter().map(|s| s.1).collect();
    let spread = stats::percentile(&mut v, 1.0) / stats::percentile(&mut v, 0.0) - 1.0;
    let cause = if spread > 0.25 {
        format!("the serial cell's samples spread by {:.0}%, so a noisy serial time is the likely cause", 100.0 * spread)
    } else {
        format!("the serial cell's samples spread by only {:.0}%, so the likely cause is not noise but a superlinear effect (the split batch fits the per-core caches)", 100.0 * spread)
    };
    Some(format!(
        "{speedup:.2}× is above the {cores} usable cores × {IMPOSSIBLE:.2} and persisted after re-measuring: {cause}"
    ))
}

/// The slowest cell with K·N above the cores, with its time / the best time.
pub fn worst_oversubscribed(cells: &[Cell], cores: usize, best: &Cell) -> Option<(Cell, f64)> {
    cells
        .iter()
        .filter(|c| c.threads() > cores)
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .map(|c| (c.clone(), c.seconds / best.seconds))
}

/// `12%` or `−3%`: how far a time ratio is from 1.
fn pct(ratio: f64) -> String {
    format!("{:+.0}%", 100.0 * (ratio - 1.0))
}

/// `(+1% … +9%)`, or empty without an interval.
fn pct_interval(iv: Option<Interval>) -> String {
    iv.map_or(String::new(), |iv| {
        format!(" ({} … {})", pct(iv.lo), pct(iv.hi))
    })
}

/// The section's sentence, from the numbers.
pub fn conclude(cores: usize, threading: &str, sizes: &[GridSize]) -> String {
    if sizes.is_empty() {
        return "No size was measured.".into();
    }
    let name = |g: &GridSize| {
        if g.single {
            format!("the single {0}×{0} product", g.n)
        } else if g.small_batch {
            format!("n = {} in a batch of {}", g.n, g.batch)
        } else {
            format!("n = {}", g.n)
        }
    };
    let bests: Vec<String> = sizes
        .iter()
        .map(|g| {
            let iv = g
                .best
                .speedup_interval
                .map_or(String::new(), |iv| format!(", {:.2}–{:.2}", iv.lo, iv.hi));
            let policy = if g.best_is_policy {
                ", the policy's own pick"
            } else {
                ""
            };
            format!(
                "{}×{} for {} ({:.2}×{iv}{policy})",
                g.best.outer,
                g.best.blas,
                name(g),
                g.best.speedup
            )
        })
        .collect();
    let noise = |g: &GridSize| {
        g.policy.vs_best <= 1.0 || g.policy.vs_best_interval.is_some_and(|iv| iv.contains(1.0))
    };
    let gap = sizes
        .iter()
        .max_by(|a, b| a.policy.vs_best.total_cmp(&b.policy.vs_best))
        .expect("not empty");
    let policy = if sizes.iter().all(noise) {
        format!(
            "the default policy was within noise of the best pair at every size (its largest gap, {} for {}, has an interval that holds 0)",
            pct(gap.policy.vs_best), name(gap)
        )
    } else {
        format!(
            "the default policy was at most {} behind the best ({}{}: it picked {}×{}, the best was {}×{})",
            pct(gap.policy.vs_best),
            name(gap),
            pct_interval(gap.policy.vs_best_interval),
            gap.policy.cell.outer,
            gap.policy.cell.blas,
            gap.best.outer,
            gap.best.blas
        )
    };
    let control = sizes
        .iter()
        .max_by(|a, b| {
            (a.control.ratio - 1.0)
                .abs()
                .total_cmp(&(b.control.ratio - 1.0).abs())
        })
        .expect("not empty");
    let control = format!(
        "the control (the serial plan measured twice) differed from itself by {} at most ({}): that is this run's noise",
        pct(control.control.ratio),
        name(control)
    );
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
    let flagged = sizes
        .iter()
        .flat_map(|g| g.cells.iter().chain([&g.policy.cell]))
        .filter(|c| c.flag.is_some())
        .count();
    let flags = match flagged {
        0 => String::new(),
        n => format!(" {n} speedup(s) above the usable cores × {IMPOSSIBLE:.2} persisted after re-measuring and are flagged in the tables, not findings."),
    };
    format!(
        "On {cores} cores with {threading} OpenBLAS the best split was {}; {policy}; {control}{worst}.{flags}",
        bests.join(", ")
    )
}

// ---- Markdown and CSV ----

/// A grid section (`title` says which library).
pub fn markdown(g: &GridSection, title: &str) -> String {
    let st = &g.settings;
    let mut md = format!(
        "## {title}\n\nf64 products, `matmul_batch_with(&a, &b, &Plan::new(K, N)?)` for {}, \
         the default policy through `matmul_batch`, and a control (the serial plan measured a \
         second time, as a cell of its own), on {}. A sample is about {} s of \
         serial work; each round measures every cell once in a fresh random order; after {} \
         rounds a cell whose time is clearly above the leader's (its interval wholly above) \
         leaves the race, and the rest are sampled until {} s per size are spent. Times are the \
         **{}** of a cell's rounds; intervals are 95%, from a paired bootstrap over rounds. The \
         best is the pair, or the policy's pick, with the highest speedup as printed, so no \
         printed figure beats it; every cell whose time ÷ the best's has an interval holding 1 \
         is tied with it (**bold**). The highest of many noisy figures leans optimistic (the \
         winner's curse): under each size, a held-out check picks on the odd rounds alone and \
         scores that pick on the even rounds, which says by about how much. A speedup above the \
         {} usable cores × {IMPOSSIBLE:.2} is re-measured and, if it persists, flagged. \
         OpenBLAS: {}.\n\n",
        pairs_md(st.max_threads, g.cores),
        sizes_md(g),
        st.sample_seconds,
        st.rounds,
        st.size_seconds,
        g.statistic,
        g.cores,
        g.library
    );
    md.push_str(&summary_md(g));
    md.push_str(
        "\nSpeedup over serial of every pair (rows K outer threads, columns N BLAS threads), with \
         its interval; **bold**: tied with the best; [r] the rounds of a cell that \
         left the race early; ⚠ flagged (below):\n\n",
    );
    let mut flags = Vec::new();
    for s in &g.sizes {
        md.push_str(&size_matrix_md(s, &mut flags));
    }
    for f in flags {
        let _ = writeln!(md, "- ⚠ {f}");
    }
    let _ = writeln!(md, "\n{}\n\n{}\n", g.machine.describe(), g.conclusion);
    md
}

/// Which pairs a grid measured, in words.
fn pairs_md(max_threads: usize, cores: usize) -> String {
    let count = pairs(max_threads, cores, false).len();
    if count == full_grid_len(max_threads) {
        format!("every pair with K·N ≤ {max_threads} ({count} pairs)")
    } else {
        format!(
            "{count} pairs chosen for {cores} cores: K and N powers of two with K·N ≤ {cores}, \
             {cores}×1 and 1×{cores}, the K·N = {cores} diagonal, and oversubscribed K·N = {} \
             and {} (1×M, M×1, (M/{cores})×{cores}, {cores}×(M/{cores})), up to K·N = {max_threads}",
            2 * cores,
            4 * cores
        )
    }
}

/// The grid's sizes, in words.
fn sizes_md(g: &GridSection) -> String {
    let mut parts = Vec::new();
    let batches: Vec<String> = g
        .sizes
        .iter()
        .filter(|s| !s.single && !s.small_batch)
        .map(|s| s.n.to_string())
        .collect();
    if !batches.is_empty() {
        parts.push(format!(
            "batches of many n×n products (n = {})",
            batches.join(", ")
        ));
    }
    for s in g.sizes.iter().filter(|s| s.small_batch) {
        parts.push(format!(
            "a batch of {} {n}×{n} product(s), fewer than the {} cores, where K = {1} outer \
             threads leave some idle and a split K × N with K < {1} may fill them better",
            s.batch,
            g.cores,
            n = s.n
        ));
    }
    for s in g.sizes.iter().filter(|s| s.single) {
        parts.push(format!("one {0}×{0} product (K = 1 only)", s.n));
    }
    parts.join("; ")
}

/// `64`, `256 (batch of 8)` or `2048 (single)`.
fn size_name(s: &GridSize) -> String {
    if s.single {
        format!("{} (single)", s.n)
    } else if s.small_batch {
        format!("{} (batch of {})", s.n, s.batch)
    } else {
        s.n.to_string()
    }
}

/// The grid's summary: one row per size, the best pair, the policy, the control and the worst
/// oversubscribed pair.
fn summary_md(g: &GridSection) -> String {
    let header = strings([
        "n",
        "batch × calls",
        "rounds",
        "serial",
        "best K×N",
        "best speedup",
        "policy's K×N",
        "policy speedup",
        "policy / best time",
        "control / serial",
        "worst oversubscribed",
        "its time / best",
    ]);
    let rows: Vec<Vec<String>> = g
        .sizes
        .iter()
        .map(|s| {
            let serial = s.cells.iter().find(|c| (c.outer, c.blas) == (1, 1));
            let (worst, ratio) = s.worst_oversubscribed.as_ref().map_or_else(
                || ("—".to_owned(), "—".to_owned()),
                |(c, r)| (format!("{}×{}", c.outer, c.blas), format!("{r:.2}×")),
            );
            vec![
                size_name(s),
                format!("{} × {}", s.batch, s.calls),
                s.rounds.to_string(),
                serial.map_or("—".to_owned(), |c| fmt_s(c.seconds)),
                format!(
                    "{}×{}{}",
                    s.best.outer,
                    s.best.blas,
                    if s.best_is_policy { " (policy)" } else { "" }
                ),
                with_interval(s.best.speedup, s.best.speedup_interval, "×"),
                format!("{}×{}", s.policy.cell.outer, s.policy.cell.blas),
                with_interval(s.policy.cell.speedup, s.policy.cell.speedup_interval, "×"),
                with_interval(s.policy.vs_best, s.policy.vs_best_interval, ""),
                with_interval(s.control.ratio, s.control.interval, ""),
                worst,
                ratio,
            ]
        })
        .collect();
    table(&header, &rows)
}

/// One size's K × N matrix of speedups and the policy's line; the flags it raises go to `flags`.
fn size_matrix_md(s: &GridSize, flags: &mut Vec<String>) -> String {
    let (ks, ns) = s.axes();
    let mut header = vec![format!("n = {}", size_name(s))];
    header.extend(ns.iter().map(|n| format!("N = {n}")));
    let rows: Vec<Vec<String>> = ks
        .iter()
        .map(|&k| {
            let mut row = vec![format!("K = {k}")];
            row.extend(ns.iter().map(|&n| {
                let Some(c) = s.cells.iter().find(|c| (c.outer, c.blas) == (k, n)) else {
                    return String::new();
                };
                if let Some(f) = &c.flag {
                    flags.push(format!("n = {}, {}×{}: {f}", s.n, k, n));
                }
                matrix_cell(c, s.rounds)
            }));
            row
        })
        .collect();
    let mut md = table(&header, &rows);
    let _ = writeln!(
        md,
        "\nPolicy for n = {}: {}×{}, {}.",
        size_name(s),
        s.policy.cell.outer,
        s.policy.cell.blas,
        s.policy.reason
    );
    if let Some(h) = &s.held_out {
        let _ = writeln!(
            md,
            "Held-out check: picked on the odd rounds alone, {}×{} scores {} on the even rounds, \
             beside the best's {:.2}× on all of them.",
            h.outer,
            h.blas,
            with_interval(h.speedup, h.interval, "×"),
            s.best.speedup
        );
    }
    md.push('\n');
    if let Some(f) = &s.policy.cell.flag {
        flags.push(format!("n = {}, the default policy: {f}", s.n));
    }
    md
}

/// `1.93 (1.88–1.97) [4] ⚠`, bold when within noise of the best.
fn matrix_cell(c: &Cell, rounds: usize) -> String {
    let mut t = with_interval(c.speedup, c.speedup_interval, "");
    if c.samples.len() < rounds {
        t.push_str(&format!(" [{}]", c.samples.len()));
    }
    if c.flag.is_some() {
        t.push_str(" ⚠");
    }
    if c.within_noise_of_best {
        format!("**{t}**")
    } else {
        t
    }
}

/// A row of grid.csv: one cell (`kind` = `pair`) or the policy's choice (`policy`).
#[derive(Serialize)]
struct GridCsv<'a> {
    threading: &'a str,
    n: usize,
    single: bool,
    batch: usize,
    kind: &'a str,
    outer: usize,
    blas: usize,
    rounds: usize,
    seconds: f64,
    gflops: f64,
    speedup: f64,
    speedup_lo: Option<f64>,
    speedup_hi: Option<f64>,
    within_noise_of_best: bool,
    flag: Option<&'a str>,
}

impl<'a> GridCsv<'a> {
    /// Every pair and the policy's choice of every size of `g`.
    fn rows(g: &'a GridSection) -> impl Iterator<Item = GridCsv<'a>> {
        g.sizes.iter().flat_map(move |s| {
            let cells = s.cells.iter().map(|c| ("pair", c));
            cells
                .chain(std::iter::once(("policy", &s.policy.cell)))
                .map(move |(kind, c)| GridCsv {
                    threading: &g.threading,
                    n: s.n,
                    single: s.single,
                    batch: s.batch,
                    kind,
                    outer: c.outer,
                    blas: c.blas,
                    rounds: c.samples.len(),
                    seconds: c.seconds,
                    gflops: c.gflops,
                    speedup: c.speedup,
                    speedup_lo: c.speedup_interval.map(|iv| iv.lo),
                    speedup_hi: c.speedup_interval.map(|iv| iv.hi),
                    within_noise_of_best: c.within_noise_of_best,
                    flag: c.flag.as_deref(),
                })
        })
    }
}

/// The name of the CSV file every grid of the run goes to (the pthreads grid's rows, then the
/// OpenMP grid's, told apart by `threading`).
pub const CSV_FILE: &str = "grid.csv";

/// The rows of `g` for grid.csv, with its header; `None` without rows.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv(g: &GridSection) -> anyhow::Result<Option<String>> {
    csv_text(GridCsv::rows(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_keep_every_pair_up_to_the_limit() {
        let p = pairs(8, 2, false);
        assert_eq!(p.len(), 20);
        assert_eq!(p, full_grid(8), "today's grid on 2 cores");
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
        assert_eq!(pairs(4, 1, false).len(), 8, "1 core: every pair too");
        // A small --max-threads is every pair again, whatever the cores.
        assert_eq!(pairs(6, 16, false), full_grid(6));
    }

    #[test]
    fn the_selection_answers_the_question_at_any_core_count() {
        // (cores, most pairs): bounded where the full grid grows as 4C·ln(4C) (300 pairs on 16
        // cores).
        for (c, most) in [
            (3, 16),
            (4, 16),
            (6, 20),
            (16, 25),
            (32, 32),
            (48, 40),
            (64, 40),
        ] {
            let p = pairs(4 * c, c, false);
            assert!(full_grid(4 * c).len() > FULL_GRID_PAIRS, "{c} cores select");
            assert!(p.len() <= most, "{c} cores: {} pairs {p:?}", p.len());
            assert!(p.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
            assert!(p.iter().all(|&(k, n)| k * n <= 4 * c), "{c}: {p:?}");
            for must in [(1, 1), (c, 1), (1, c), (2, 1), (1, 2)] {
                assert!(p.contains(&must), "{c} cores: {must:?} missing from {p:?}");
            }
            // The K·N = C diagonal for K a power of two dividing C, and C over each of them.
            let mut k = 1;
            while k <= c {
                if c % k == 0 {
                    assert!(
                        p.contains(&(k, c / k)) && p.contains(&(c / k, k)),
                        "{c}: {k}"
                    );
                }
                k *= 2;
            }
            // Powers of two under the cores.
            assert!(p.contains(&(2, 2)) || c < 4, "{c}: {p:?}");
            // A few oversubscribed pairs at 2C and 4C, nested ones among them.
            for m in [2 * c, 4 * c] {
                let at: Vec<&(usize, usize)> = p.iter().filter(|&&(k, n)| k * n == m).collect();
                assert!(at.len() >= 3, "{c} cores, K·N = {m}: {at:?}");
                assert!(at.iter().any(|&&(k, n)| k > 1 && n > 1), "{c}: {at:?}");
            }
            // The single product: K = 1 and every N of the batches.
            let single = pairs(4 * c, c, true);
            let ns: Vec<usize> = p.iter().filter(|q| q.0 == 1).map(|q| q.1).collect();
            assert_eq!(single.iter().map(|q| q.1).collect::<Vec<_>>(), ns);
            assert!(single.iter().all(|q| q.0 == 1));
        }
        assert_eq!(pairs(64, 16, false).len(), 23);
        assert_eq!(pairs(256, 64, false).len(), 36);
        // --max-threads caps K·N in the selection too.
        let capped = pairs(32, 16, false);
        assert!(capped.iter().all(|&(k, n)| k * n <= 32));
        assert!(capped.contains(&(16, 2)) && !capped.contains(&(16, 4)));
    }

    #[test]
    fn the_small_batch_has_fewer_products_than_cores() {
        assert_eq!(few_products(1), 1);
        for c in [2, 3, 4, 6, 16, 32, 64] {
            let b = few_products(c);
            assert!((1..c).contains(&b), "{c}: {b}");
            // Its filling split, B outer × C/B BLAS threads, is a pair of the grid.
            if c % b == 0 {
                assert!(pairs(4 * c, c, false).contains(&(b, c / b)), "{c}: {b}");
            }
        }
    }

    #[test]
    fn the_default_grid_fits_its_time_on_many_cores() {
        // The progress bar's estimate, from the cells a run measures: on 16 and 64 cores the
        // default grid within 10 minutes, --quick within 2; 2 cores as before (about 2 min).
        use clap::Parser as _;
        let resolve = |flags: &[&str], cores| {
            let args = crate::report::Args::try_parse_from(
                std::iter::once("report").chain(flags.iter().copied()),
            )
            .unwrap();
            crate::report::Settings::resolve(&args, cores).unwrap().grid
        };
        for cores in [2, 16, 64] {
            let default = estimate(&resolve(&[], cores), cores);
            let quick = estimate(&resolve(&["--quick"], cores), cores);
            assert!(default < 600.0, "{cores} cores: {default} s");
            assert!(quick < 120.0, "{cores} cores: {quick} s");
        }
    }

    /// A cell whose samples are `seconds` in every one of 8 rounds, judged against a serial
    /// cell of 1 s.
    fn cell(outer: usize, blas: usize, seconds: f64) -> Cell {
        let serial = Samples((0..8).map(|r| (r, 1.0)).collect());
        let judge = Judge {
            serial: &serial,
            cores: 2,
            n: 64,
            batch: 8,
        };
        judge.cell(
            (outer, blas),
            &Samples((0..8).map(|r| (r, seconds)).collect()),
        )
    }

    fn size(cells: Vec<Cell>, policy: Cell, vs_best: f64, iv: Option<Interval>) -> GridSize {
        let best = stats::best_by_speedup(&cells[0].samples, cells.iter().map(|c| &c.samples));
        let best = cells[best.unwrap()].clone();
        GridSize {
            n: 64,
            batch: 8,
            calls: 1,
            single: false,
            small_batch: false,
            rounds: 8,
            policy: PolicyCell {
                cell: policy,
                reason: "test".into(),
                vs_best,
                vs_best_interval: iv,
            },
            control: NoiseControl {
                ratio: 1.03,
                interval: Some(Interval { lo: 0.98, hi: 1.07 }),
                samples: Samples::default(),
            },
            worst_oversubscribed: worst_oversubscribed(&cells, 2, &best),
            best,
            best_is_policy: false,
            held_out: None,
            cells,
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
        let real_gap = size(
            cells.clone(),
            cell(1, 2, 0.55),
            1.1,
            Some(Interval { lo: 1.05, hi: 1.15 }),
        );
        assert_eq!((real_gap.best.outer, real_gap.best.blas), (2, 1));
        let (w, r) = real_gap.worst_oversubscribed.clone().unwrap();
        assert_eq!((w.outer, w.blas), (2, 2));
        assert!((r - 1.8).abs() < 1e-12);
        let s = conclude(2, "pthreads", &[real_gap]);
        assert!(s.contains("2×1 for n = 64 (2.00×, 2.00–2.00)"), "{s}");
        assert!(
            s.contains("at most +10% behind the best (n = 64 (+5% … +15%): it picked 1×2"),
            "{s}"
        );
        assert!(
            s.contains("2×2 for n = 64, took 1.80× the best time"),
            "{s}"
        );
        assert!(s.contains("differed from itself by +3%"), "{s}");
        assert_eq!(s.matches(". ").count(), 0, "one sentence: {s}");
        // The same gap with an interval that holds 1 is noise, and said to be.
        let noise = size(
            cells,
            cell(1, 2, 0.55),
            1.1,
            Some(Interval { lo: 0.97, hi: 1.2 }),
        );
        let s = conclude(2, "pthreads", &[noise]);
        assert!(
            s.contains("within noise of the best pair at every size"),
            "{s}"
        );
    }

    #[test]
    fn an_impossible_speedup_is_flagged_with_its_reason() {
        assert!(
            cell(2, 1, 0.5).flag.is_none(),
            "2.0× on 2 cores is possible"
        );
        assert!(
            cell(2, 1, 0.46).flag.is_none(),
            "2.17× is within the 10% margin"
        );
        let flagged = cell(2, 1, 0.4)
            .flag
            .expect("2.5× on 2 cores is not possible");
        assert!(flagged.contains("above the 2 usable cores"), "{flagged}");
        assert!(flagged.contains("spread by only 0%"), "{flagged}");
        // A serial cell with a slow burst: the flag names the noise.
        let noisy = Samples(vec![(0, 1.0), (1, 1.6), (2, 1.0), (3, 1.5)]);
        let why = impossible(2.7, 2, &noisy).unwrap();
        assert!(
            why.contains("spread by 60%") && why.contains("noisy serial"),
            "{why}"
        );
        let s = conclude(
            2,
            "pthreads",
            &[size(
                vec![cell(1, 1, 1.0), cell(2, 1, 0.4)],
                cell(2, 1, 0.4),
                1.0,
                None,
            )],
        );
        assert!(s.contains("2 speedup(s) above the usable cores"), "{s}");
    }
}
