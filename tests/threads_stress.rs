//! Stress: 8 threads × thousands of nested scopes, each with real BLAS calls inside, checked
//! against a naive product. Passes when every result is right, nothing deadlocks (a watchdog
//! aborts when no thread makes progress for a while), and the final state equals the initial
//! state. Repeated several rounds per run (`PARLINALG_STRESS_ROUNDS`, default 2).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parlinalg::ndarray::Array2;
use parlinalg::threads::{blas_threads, blas_threads_scope, with_blas_threads, Plan};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};

const THREADS: usize = 8;
const ITERATIONS: usize = 1500;
/// No product finished anywhere for this long: a deadlock.
const STALL: Duration = Duration::from_secs(60);

static PROGRESS: AtomicUsize = AtomicUsize::new(0);

/// A seeded generator (rand's `SmallRng`): each worker's sequence of calls is reproducible.
struct Rng(SmallRng);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SmallRng::seed_from_u64(seed))
    }
    fn below(&mut self, n: u64) -> usize {
        self.0.random_range(0..n) as usize
    }
    fn matrix(&mut self, r: usize, c: usize) -> Array2<f64> {
        Array2::from_shape_simple_fn((r, c), || self.0.random_range(-0.5..0.5))
    }
}

/// Row `i` of a·b, naively.
fn naive_row(a: &Array2<f64>, b: &Array2<f64>, i: usize) -> Vec<f64> {
    (0..b.ncols())
        .map(|j| (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum())
        .collect()
}

fn checked_product(rng: &mut Rng) {
    // Mostly small products, some large enough for OpenBLAS to thread.
    let big = rng.below(10) == 0;
    let (m, k, n) = if big {
        (
            64 + rng.below(100),
            64 + rng.below(100),
            64 + rng.below(100),
        )
    } else {
        (1 + rng.below(20), 1 + rng.below(20), 1 + rng.below(20))
    };
    let a = rng.matrix(m, k);
    let b = rng.matrix(k, n);
    let got = parlinalg::matmul(&a, &b).unwrap();
    // Small products are checked whole, large ones on two random rows (cheap in debug builds).
    let rows: Vec<usize> = if big {
        vec![rng.below(m as u64), m - 1]
    } else {
        (0..m).collect()
    };
    for i in rows {
        for (g, w) in got.row(i).iter().zip(naive_row(&a, &b, i)) {
            assert!(
                (g - w).abs() <= 1e-12 * k as f64,
                "wrong product under concurrency"
            );
        }
    }
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

fn worker(seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..ITERATIONS {
        match rng.below(4) {
            0 => {
                let _a = blas_threads_scope(1 + rng.below(3)).unwrap();
                checked_product(&mut rng);
                let _b = blas_threads_scope(1 + rng.below(3)).unwrap();
                checked_product(&mut rng);
                {
                    let _c = blas_threads_scope(1 + rng.below(3)).unwrap();
                    checked_product(&mut rng);
                }
            }
            1 => {
                with_blas_threads(1 + rng.below(3), || {
                    checked_product(&mut rng);
                    with_blas_threads(1 + rng.below(3), || checked_product(&mut rng)).unwrap();
                })
                .unwrap();
            }
            2 => {
                let _p = Plan::new(1 + rng.below(2), 1 + rng.below(2))
                    .unwrap()
                    .enter()
                    .unwrap();
                checked_product(&mut rng);
            }
            _ => checked_product(&mut rng), // no scope: the auto policy under contention
        }
    }
}

#[test]
fn eight_threads_of_nested_scopes_with_real_blas_calls() {
    let rounds: usize = std::env::var("PARLINALG_STRESS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let initial = blas_threads();
    let initial_setting = parlinalg::threads::blas_threads_setting().unwrap();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut last, mut since) = (PROGRESS.load(Ordering::Relaxed), Instant::now());
            while !done.load(Ordering::Relaxed) {
                let now = PROGRESS.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                } else if since.elapsed() > STALL {
                    eprintln!("stress test: no product finished for {STALL:?}: deadlock");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    for round in 0..rounds {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || worker(0x5eed ^ ((round * THREADS + t) as u64) << 8));
            }
        });
        assert_eq!(
            blas_threads(),
            initial,
            "round {round}: final BLAS threads differ"
        );
        assert_eq!(
            parlinalg::threads::blas_threads_setting().unwrap(),
            initial_setting,
            "round {round}: the baseline changed"
        );
        let r = parlinalg::threads::report().unwrap();
        assert_eq!(r.blas_threads_scoped, None, "round {round}: a scope leaked");
    }
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
}
