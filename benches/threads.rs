//! The thread layer, measured: the default policy against every static (K outer, N BLAS) pair
//! for `matmul_batch`, where small batches stop paying for outer threads, a small product's
//! latency beside large ones, and the cost of a scope.
//!
//! ```text
//! cargo bench --bench threads                 # all four (~5 min on 2 cores)
//! cargo bench --bench threads -- policy       # one part: policy | threshold | latency | scope
//! cargo bench --bench threads -- policy --sizes 64,256 --rounds 5 --seconds 0.5
//! ```
//! Cells run interleaved round after round (the policy table in a new random order each
//! round, the threshold table alternating), each after a short pause so that the previous
//! cell's spinning threads are asleep. The policy table scores cells by their lower quartile
//! over rounds (medians beside it), the other tables quote medians. Under `cargo test` (no
//! `--bench` argument) a tiny smoke run proves the bench works.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parlinalg::ndarray::Array3;
use support::{matrix, SeedableRng};

mod support;
use parlinalg::threads::{blas_threads_scope, set_blas_threads, set_blas_threads_auto, Plan};

struct Opts {
    parts: Vec<String>,
    sizes: Vec<usize>,
    rounds: usize,
    seconds: f64,
    samples: usize,
}

fn opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let mut o = Opts {
        parts: vec![],
        sizes: vec![16, 64, 256, 1024],
        rounds: 3,
        seconds: 1.0,
        samples: 400,
    };
    let mut bench = false;
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--bench" => bench = true,
            "--sizes" => {
                o.sizes = value()
                    .split(',')
                    .map(|s| s.parse().expect("size"))
                    .collect()
            }
            "--rounds" => o.rounds = value().parse().expect("rounds"),
            "--seconds" => o.seconds = value().parse().expect("seconds"),
            "--samples" => o.samples = value().parse().expect("samples"),
            "policy" | "threshold" | "latency" | "scope" => o.parts.push(a),
            _ => {}
        }
    }
    if !bench {
        // cargo test: smoke run
        o = Opts {
            parts: ["policy", "threshold", "latency", "scope"]
                .map(String::from)
                .to_vec(),
            sizes: vec![16],
            rounds: 1,
            seconds: 0.02,
            samples: 10,
        };
    }
    if o.parts.is_empty() {
        o.parts = ["policy", "threshold", "latency", "scope"]
            .map(String::from)
            .to_vec();
    }
    o
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// Idle time before each timed cell of the policy table: longer than rayon's and OpenBLAS's
/// workers spin before they sleep, so that the previous cell's threads are asleep.
const CELL_PAUSE: Duration = Duration::from_millis(20);

/// The default policy against every static pair with K·N ≤ 4 × cores.
fn policy(o: &Opts) {
    let cores = parlinalg::threads::Cores::detect().count;
    let mut pairs = vec![];
    for k in [1, 2, 4, 8] {
        for n in [1, 2, 4, 8] {
            if k * n <= 4 * cores {
                pairs.push((k, n));
            }
        }
    }
    println!("\n## matmul_batch: default policy vs every static (K outer × N BLAS) pair\n");
    println!(
        "f64, {cores} cores, batches of ~{}s of serial work per measurement (a batch of at most \
         64 MB is repeated to fill it), {} rounds, each running every cell once in a new random \
         order, 20 ms apart. Cells are scored by their lower quartile over the rounds (the \
         machine's noise only adds time); speedups over serial (1×1). \"policy / best\": the \
         policy's score over the best static cell's. \"held out\": the best pair picked on the \
         even rounds, both scored on the odd ones (no winner's curse). \"same plan\": the static \
         cell that runs the policy's own plan, over the policy: how far two identical plans \
         land apart in this run.\n",
        o.seconds, o.rounds
    );
    print!("| n | batch × calls | policy's plan |");
    for (k, n) in &pairs {
        print!(" {k}×{n} |");
    }
    println!(
        " best static | policy | policy / best | held out | policy / best (medians) | same plan, static / policy |"
    );
    print!("|---:|---:|---|");
    for _ in &pairs {
        print!("---:|");
    }
    println!("---|---:|---:|---|---:|---:|");
    for &n in &o.sizes {
        // One product's serial time, then a batch that fits 64 MB, repeated to ~seconds.
        let a1 = matrix::<f64>(n, 1);
        let t1 = {
            let _s = blas_threads_scope(1).unwrap();
            let reps = (2e7 / (2.0 * (n as f64).powi(3))).clamp(3.0, 1e5) as usize;
            let t = Instant::now();
            for _ in 0..reps {
                black_box(parlinalg::matmul(&a1, &a1).unwrap());
            }
            t.elapsed().as_secs_f64() / reps as f64
        };
        let per_product_bytes = 3 * n * n * 8;
        let fits = ((64 << 20) / per_product_bytes).max(2 * cores);
        let batch = ((o.seconds / t1) as usize).clamp(2 * cores, fits);
        let calls = ((o.seconds / (t1 * batch as f64)).ceil() as usize).max(1);
        let a = Array3::from_shape_fn((batch, n, n), |(b, i, j)| a1[[i, j]] + b as f64 * 1e-3);
        let b = a.clone();
        let choice = parlinalg::threads::plan_for_batch(batch, n, n, n).unwrap();
        // configs: every static pair, then the policy
        let mut times: Vec<Vec<f64>> = vec![vec![]; pairs.len() + 1];
        let mut order: Vec<usize> = (0..=pairs.len()).collect();
        let mut rng = support::SmallRng::seed_from_u64(0x5EED_u64 + n as u64);
        for _ in 0..o.rounds {
            // A new random order every round, and a pause before every cell: a cell must not
            // always follow the same one, whose threads (rayon's and OpenBLAS's spin before
            // they sleep) would still be taking cores when it starts.
            support::shuffle(&mut order, &mut rng);
            for &c in &order {
                std::thread::sleep(CELL_PAUSE);
                let t = Instant::now();
                for _ in 0..calls {
                    let out = if c == pairs.len() {
                        parlinalg::matmul_batch(&a, &b)
                    } else {
                        let (k, nb) = pairs[c];
                        parlinalg::matmul_batch_with(&a, &b, &Plan::new(k, nb).unwrap())
                    };
                    black_box(out.unwrap());
                }
                times[c].push(t.elapsed().as_secs_f64() / calls as f64);
            }
        }
        // This VM's noise only ever adds time, in bursts of seconds that slow whatever cell
        // runs then (seen: cells of the very same plan with medians 10–20% apart over 30
        // rounds, while their fast runs agreed within 4%). So every cell is scored by its lower
        // quartile over the rounds, the time it takes when nothing else interferes; medians
        // are shown beside it.
        let q1 = |v: &[f64]| percentile(&mut v.to_vec(), 0.25);
        let score: Vec<f64> = times.iter().map(|t| q1(t)).collect();
        let med: Vec<f64> = times.iter().map(|t| median(&mut t.clone())).collect();
        let serial_i = pairs.iter().position(|&p| p == (1, 1)).unwrap();
        let best_of = |v: &[f64]| {
            v[..pairs.len()]
                .iter()
                .copied()
                .enumerate()
                .min_by(|x, y| x.1.total_cmp(&y.1))
                .unwrap()
        };
        let (best_i, best) = best_of(&score);
        print!("| {n} | {batch} × {calls} | {} |", choice.plan);
        for m in &score[..pairs.len()] {
            print!(" {:.2} |", score[serial_i] / m);
        }
        let policy = score[pairs.len()];
        let held_out = match held_out_ratio(&times, pairs.len(), q1) {
            Some((pick, ratio)) => {
                format!("{}×{}: {:.1}%", pairs[pick].0, pairs[pick].1, 100.0 * ratio)
            }
            None => "—".into(),
        };
        let same_plan = pairs
            .iter()
            .position(|&(k, nb)| {
                (k, nb) == (choice.plan.outer_threads(), choice.plan.blas_threads())
            })
            .map_or("—".into(), |i| {
                format!("{:.1}%", 100.0 * score[i] / policy)
            });
        println!(
            " {}×{} ({:.2}) | {:.2} | {:.1}% | {held_out} | {:.1}% | {same_plan} |",
            pairs[best_i].0,
            pairs[best_i].1,
            score[serial_i] / best,
            score[serial_i] / policy,
            100.0 * policy / best,
            100.0 * med[pairs.len()] / best_of(&med).1,
        );
    }
}

/// The policy's score over the best static pair's without the winner's curse: the best pair
/// is picked by `score` on the even rounds, and both are scored on the odd rounds. Picking the
/// fastest of many noisy cells and scoring it on the same samples favours whichever cell was
/// luckiest; scoring it on other rounds does not. `times[c][r]` is config `c`'s time in round
/// `r`, the policy last. `None` with fewer than 2 rounds.
fn held_out_ratio(
    times: &[Vec<f64>],
    statics: usize,
    score: impl Fn(&[f64]) -> f64,
) -> Option<(usize, f64)> {
    if times[0].len() < 2 {
        return None;
    }
    let rounds = |c: usize, parity: usize| -> Vec<f64> {
        times[c].iter().skip(parity).step_by(2).copied().collect()
    };
    let picking: Vec<f64> = (0..statics).map(|c| score(&rounds(c, 0))).collect();
    let pick = (0..statics)
        .min_by(|&x, &y| picking[x].total_cmp(&picking[y]))
        .expect("at least one static pair");
    Some((pick, score(&rounds(statics, 1)) / score(&rounds(pick, 1))))
}

/// Small batches of 16×16 products around the policy's serial threshold: serial against all cores as
/// outer threads, and what the policy picks.
fn threshold(o: &Opts) {
    let cores = parlinalg::threads::Cores::detect().count;
    let n = 16;
    let per_product = 2.0 * (n as f64).powi(3);
    println!("\n## Small batches of {n}×{n} f64 products: serial against {cores} outer threads\n");
    println!(
        "Median of {} interleaved rounds of ~{:.2} s each; the policy column says what \
         `plan_for_batch` picks (serial below its threshold).\n",
        o.rounds.max(5),
        o.seconds / 4.0,
    );
    println!("| MFLOP in all | batch | serial µs | {cores} outer µs | speedup | policy |");
    println!("|---:|---:|---:|---:|---:|---|");
    let outer = Plan::new(cores, 1).unwrap();
    for mflop in [1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 16.0] {
        let batch = (mflop * 1e6 / per_product).round() as usize;
        let a = Array3::from_shape_fn((batch, n, n), |(b, i, j)| {
            ((b + 3 * i + 7 * j) % 13) as f64 - 6.0
        });
        let calls = ((o.seconds / 4.0) / (batch as f64 * 300e-9)).max(3.0) as usize;
        let mut times = [vec![], vec![]];
        for round in 0..o.rounds.max(5) {
            for step in 0..2 {
                let c = (step + round) % 2;
                let plan = if c == 0 { Plan::serial() } else { outer };
                std::thread::sleep(CELL_PAUSE);
                let t = Instant::now();
                for _ in 0..calls {
                    black_box(parlinalg::matmul_batch_with(&a, &a, &plan).unwrap());
                }
                times[c].push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
            }
        }
        let [serial, split] = times.map(|mut t| median(&mut t));
        let choice = parlinalg::threads::plan_for_batch(batch, n, n, n).unwrap();
        println!(
            "| {mflop} | {batch} | {serial:.1} | {split:.1} | {:.2}× | {} |",
            serial / split,
            choice.plan
        );
    }
}

/// p50 / p99 / max latency of a 256×256 product alone, and beside a thread running large
/// products, under a fixed BLAS count of all cores (OpenBLAS's own default) and under auto.
fn latency(o: &Opts) {
    let cores = parlinalg::threads::Cores::detect().count;
    // All the cores, up to OpenBLAS's compiled maximum (Debian's: 64): `set_blas_threads`
    // refuses more, and OpenBLAS's own default stops there too.
    let all = cores.min(parlinalg::threads::blas_max_threads());
    let small = matrix::<f64>(256, 3);
    let big = matrix::<f64>(if o.samples > 50 { 1536 } else { 256 }, 4);
    let measure = |samples: usize| -> Vec<f64> {
        (0..samples)
            .map(|_| {
                let t = Instant::now();
                black_box(parlinalg::matmul(&small, &small).unwrap());
                let dt = t.elapsed().as_secs_f64() * 1e3;
                std::thread::sleep(Duration::from_micros(200));
                dt
            })
            .collect()
    };
    println!("\n## Latency of a 256×256 f64 product (ms), alone and beside a thread running {0}×{0} products\n", big.nrows());
    println!("{cores} cores, {} samples each, 0.2 ms apart.\n", o.samples);
    println!("| BLAS threads | load | p50 | p99 | max | p99 / p99 alone |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, fixed) in [
        (format!("fixed {all} (OpenBLAS's default)"), true),
        ("auto (parlinalg's default)".to_owned(), false),
    ] {
        if fixed {
            set_blas_threads(all).unwrap();
        } else {
            set_blas_threads_auto().unwrap();
        }
        let mut alone = measure(o.samples);
        let stop = AtomicBool::new(false);
        let mut loaded = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    black_box(parlinalg::matmul(&big, &big).unwrap());
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            let v = measure(o.samples);
            stop.store(true, Ordering::Relaxed);
            v
        });
        let p99_alone = percentile(&mut alone, 0.99);
        for (load, v) in [
            ("alone", &mut alone),
            ("beside large products", &mut loaded),
        ] {
            let p99 = percentile(v, 0.99);
            println!(
                "| {label} | {load} | {:.3} | {:.3} | {:.3} | {:.2}× |",
                percentile(v, 0.5),
                p99,
                v.iter().cloned().fold(0.0, f64::max),
                p99 / p99_alone
            );
        }
    }
    set_blas_threads_auto().unwrap();
}

/// A named closure to time.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Entering and leaving a scope that changes nothing, and one that changes the count.
fn scope(o: &Opts) {
    let iters = if o.samples > 50 { 1_000_000 } else { 1000 };
    let now = parlinalg::threads::blas_threads();
    let other = if now == 1 { 2 } else { 1 };
    println!(
        "\n## Cost of a scope (ns per enter + leave, median of {} rounds of {iters})\n",
        o.rounds.max(3)
    );
    println!("| scope | ns |");
    println!("|---|---:|");
    let cases: [Case<'_>; 4] = [
        (
            "blas_threads_scope(current): changes nothing",
            Box::new(|| drop(black_box(blas_threads_scope(now).unwrap()))),
        ),
        (
            "with_blas_threads(current, ..)",
            Box::new(|| {
                black_box(parlinalg::threads::with_blas_threads(now, || 1).unwrap());
            }),
        ),
        (
            "Plan::new(1, current).enter()",
            Box::new(|| drop(black_box(Plan::new(1, now).unwrap().enter().unwrap()))),
        ),
        (
            "blas_threads_scope(other): sets and restores OpenBLAS",
            Box::new(|| drop(black_box(blas_threads_scope(other).unwrap()))),
        ),
    ];
    for (name, f) in cases.iter() {
        let mut per = vec![];
        for _ in 0..o.rounds.max(3) {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            per.push(t.elapsed().as_secs_f64() * 1e9 / iters as f64);
        }
        println!("| {name} | {:.0} |", median(&mut per));
    }
}

fn main() {
    let selection = parlinalg::kernel::kernel_selection();
    let o = opts();
    println!(
        "OpenBLAS kernel: {selection}; {}",
        parlinalg::blas_library().config
    );
    for part in &o.parts {
        match part.as_str() {
            "policy" => policy(&o),
            "threshold" => threshold(&o),
            "latency" => latency(&o),
            _ => scope(&o),
        }
    }
}
