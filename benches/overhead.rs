//! Facade overhead, measured the robust way on a noisy machine: the four ways of computing the
//! same n×n product run interleaved in rotating order, round after round, and the table quotes
//! medians of per-round ratios (so slow drifts of the machine cancel out).
//!
//! ```text
//! cargo bench --bench overhead                      # f64 and f32, 1 and 2 BLAS threads
//! cargo bench --bench overhead -- --sizes 4,64 --threads 1 --rounds 300
//! ```
//! Variants: `parlinalg::matmul` (allocates its result), a direct `cblas_?gemm` into a fresh
//! `vec![0; n*n]`, `parlinalg::matmul_into` into a reused array, and a direct `cblas_?gemm`
//! into a reused buffer. Direct calls use `cblas-sys`, an independent declaration.

use std::hint::black_box;
use std::time::Instant;

use parlinalg::ndarray::Array2;
use support::{matrix, DirectGemm};

mod support;

struct Opts {
    sizes: Vec<usize>,
    threads: Vec<usize>,
    rounds: Option<usize>,
}

fn parse_list(v: Option<String>, what: &str) -> Option<Vec<usize>> {
    v.map(|s| {
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad {what}: {x}"))
            })
            .collect()
    })
}

fn opts() -> Opts {
    let mut args = std::env::args().skip(1);
    let (mut sizes, mut threads, mut rounds) = (None, None, None);
    let mut bench = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => sizes = parse_list(args.next(), "sizes"),
            "--threads" => threads = parse_list(args.next(), "threads"),
            "--rounds" => rounds = args.next().map(|r| r.parse().expect("rounds")),
            "--bench" => bench = true, // passed by cargo bench, not by cargo test
            _ => {}
        }
    }
    if !bench {
        // Under `cargo test --all-targets`: a smoke run that proves the bench works.
        sizes = sizes.or(Some(vec![4, 64]));
        threads = threads.or(Some(vec![1]));
        rounds = rounds.or(Some(2));
    }
    Opts {
        sizes: sizes.unwrap_or_else(|| vec![4, 16, 64, 256, 1024, 2048]),
        threads: threads.unwrap_or_else(|| vec![1, 2]),
        rounds,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds per call of `f`, timed over `batch` calls.
fn per_call(batch: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..batch {
        f();
    }
    t.elapsed().as_secs_f64() / batch as f64
}

fn run<T: DirectGemm>(n: usize, threads: usize, rounds: Option<usize>) {
    parlinalg::threads::set_blas_threads(threads).unwrap();
    let a = matrix::<T>(n, 1);
    let b = matrix::<T>(n, 2);
    let (sa, sb) = (a.as_slice().unwrap(), b.as_slice().unwrap());
    let mut out = Array2::<T>::zeros((n, n));
    let mut raw = vec![T::zero(); n * n];
    // Batch so that one timing covers ≥ ~1 ms (5·10⁷ flops); rounds so that a cell takes a
    // few seconds.
    let flops = 2.0 * (n as f64).powi(3);
    let batch = ((5e7 / flops.max(1.0)) as usize).clamp(1, 20_000);
    let rounds = rounds.unwrap_or(match n {
        0..=64 => 200,
        65..=256 => 60,
        257..=1024 => 15,
        _ => 7,
    });
    let mut times = [vec![], vec![], vec![], vec![]];
    for round in 0..=rounds {
        let mut this = [0.0; 4];
        for k in 0..4 {
            let v = (k + round) % 4; // rotate the order every round
            this[v] = match v {
                0 => per_call(batch, || {
                    drop(black_box(parlinalg::matmul(&a, &b).unwrap()))
                }),
                1 => per_call(batch, || {
                    let mut c = vec![T::zero(); n * n];
                    T::gemm(n, sa, sb, &mut c);
                    black_box(c);
                }),
                2 => per_call(batch, || parlinalg::matmul_into(&a, &b, &mut out).unwrap()),
                _ => per_call(batch, || T::gemm(n, sa, sb, black_box(&mut raw))),
            };
        }
        if round > 0 {
            // round 0 is the warm-up
            for v in 0..4 {
                times[v].push(this[v]);
            }
        }
    }
    let ratio = |x: usize, y: usize| {
        let mut r: Vec<f64> = times[x].iter().zip(&times[y]).map(|(p, q)| p / q).collect();
        median(&mut r)
    };
    let diff_ns = |x: usize, y: usize| {
        let mut d: Vec<f64> = times[x]
            .iter()
            .zip(&times[y])
            .map(|(p, q)| (p - q) * 1e9)
            .collect();
        median(&mut d)
    };
    let med: Vec<f64> = times.iter().map(|t| median(&mut t.clone())).collect();
    println!(
        "| {} | {n} | {threads} | {:.0} | {:.0} | {:.0} | {:.0} | {:+.1}% ({:+.0} ns) | {:+.1}% ({:+.0} ns) | {:+.1}% ({:+.0} ns) |",
        T::NAME,
        med[0] * 1e9,
        med[1] * 1e9,
        med[2] * 1e9,
        med[3] * 1e9,
        (ratio(0, 1) - 1.0) * 100.0,
        diff_ns(0, 1),
        (ratio(2, 3) - 1.0) * 100.0,
        diff_ns(2, 3),
        (ratio(0, 3) - 1.0) * 100.0,
        diff_ns(0, 3),
    );
}

fn main() {
    let selection = parlinalg::kernel::kernel_selection();
    let o = opts();
    println!(
        "OpenBLAS kernel: {selection}; {}",
        parlinalg::blas_library().config
    );
    println!();
    println!("| type | n | BLAS threads | matmul ns | cblas fresh ns | matmul_into ns | cblas same ns | matmul vs cblas fresh | matmul_into vs cblas same | matmul vs cblas same |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &t in &o.threads {
        for &n in &o.sizes {
            run::<f64>(n, t, o.rounds);
            run::<f32>(n, t, o.rounds);
        }
    }
}
