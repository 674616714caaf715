//! Times products made at once, under the thread policy in force (`auto` unless a variable
//! says otherwise), on whichever OpenBLAS build is loaded (`LD_LIBRARY_PATH`): what the
//! per-build backend costs or saves (BENCHMARKS.md, "The OpenBLAS build matrix").
//!
//! ```text
//! cargo run --release --example concurrent_products -- MODE N COUNT ROUNDS
//!   MODE  batch:   one matmul_batch of COUNT products of N×N (the policy's split)
//!         threads: two application threads, each COUNT products of N×N one after another
//! ```
//!
//! Prints one line: the loaded library, its kernel and threading build, the median seconds per
//! round over ROUNDS rounds (after one round of warm-up), and the products per second.

use std::time::Instant;

use parlinalg::ndarray::{Array2, Array3};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: concurrent_products batch|threads N COUNT ROUNDS";
    let [mode, n, count, rounds] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parse = |s: &str| -> usize {
        s.parse().unwrap_or_else(|_| {
            eprintln!("{usage}: {s} is not a positive integer");
            std::process::exit(2)
        })
    };
    let (n, count, rounds) = (parse(n), parse(count), parse(rounds).max(1));
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 11.0);
    let round: Box<dyn Fn()> = match mode.as_str() {
        "batch" => {
            let batch = Array3::from_shape_fn((count, n, n), |(p, i, j)| {
                ((p + i * 5 + j) % 13) as f64 / 13.0
            });
            Box::new(move || {
                std::hint::black_box(parlinalg::matmul_batch(&batch, &batch).unwrap());
            })
        }
        "threads" => Box::new(move || {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..count {
                            std::hint::black_box(parlinalg::matmul(&a, &a).unwrap());
                        }
                    });
                }
            });
        }),
        other => {
            eprintln!("{usage}: unknown mode {other}");
            std::process::exit(2);
        }
    };
    round();
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            round();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let products = if mode == "batch" { count } else { 2 * count };
    let lib = parlinalg::blas_library();
    println!(
        "{mode} n={n} count={count}: OpenBLAS {} {} {}: median {median:.4} s per round, {:.0} products/s",
        lib.version.as_deref().unwrap_or("?"),
        lib.corename,
        lib.threading,
        products as f64 / median
    );
}
