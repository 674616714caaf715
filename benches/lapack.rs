//! Each LAPACK routine of parlinalg against a direct call of the LAPACK routines it is built
//! on, in the same OpenBLAS, on the same inputs (f64, C order, as users hold them), with 1
//! and 2 BLAS threads set explicitly, n = 16 … 2000.
//!
//! ```text
//! cargo bench --bench lapack                    # everything (~15 min on 2 cores)
//! cargo bench --bench lapack -- 'solve/t1'      # a filter: routine / threads / variant / n
//! cargo bench --bench lapack -- --ratios 'solve/t1/100' --rounds 15
//! ```
//! `--ratios` is the figure to quote on a noisy machine: both sides interleaved round after
//! round, the median of the per-round ratios (BENCHMARKS.md).
//! The direct side (`benches/support/lapack.rs`, through `lapack-sys`) makes the one copy a
//! caller must make and calls `dgetrf` + `dgecon` + `dgetrs` (solve), `dgetrf` + `dgecon` +
//! `dgetri` (inv), `dgetrf` (det), `dpotrf` (cholesky), `dsyev` (eigvalsh), `dgesdd`
//! (singular_values, and lstsq with two matrix-vector products): what a LAPACK user calls.
//! parlinalg's side adds what it guarantees: the shape, finiteness and conditioning checks,
//! equilibration where the magnitudes need it, C-order results; its condition estimate is
//! `dgecon`'s estimator with `dgetrs` solves (the `lacn2_vs_gecon` cell compares the two
//! alone, `solve_vs_unchecked` parlinalg's solve with numpy's `dgetrf` + `dgetrs`,
//! `inv_vs_unchecked` parlinalg's inv with `dgetrf` + `dgetri`). Under
//! `cargo test` each cell runs once at its first size.

use std::ffi::c_int;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use parlinalg::ndarray::{Array1, Array2};
use support::interleave::{check_same, interleave, selected};
use support::lapack as direct;
use support::{matrix, uniform};

mod support;

extern "C" {
    /// OpenBLAS's global count, set for the direct calls (parlinalg's own calls set it from
    /// the explicit count of the group).
    fn openblas_set_num_threads(n: c_int);
}

/// The routines and the sizes each runs at (the eigen and SVD solvers are 5-20× an LU).
const CASES: &[(&str, &[usize])] = &[
    ("solve", &[16, 100, 500, 1000, 2000]),
    ("inv", &[16, 100, 500, 1000, 2000]),
    ("det", &[16, 100, 500, 1000, 2000]),
    ("cholesky", &[16, 100, 500, 1000, 2000]),
    ("eigvalsh", &[16, 100, 500, 1000]),
    ("singular_values", &[16, 100, 500, 1000]),
    ("lstsq", &[16, 100, 500]),
    // Not a routine: `det` called from a thread with a 2 MiB stack, where OpenBLAS's parallel
    // getrf must run on parlinalg's helper thread, against the same call from a thread with
    // 64 MiB, where it runs in place (the "direct" column). At 1 thread both run in place.
    ("det_from_2mib_thread", &[200, 1000]),
    // Not a routine either: the direct `dgetrf` + `dgecon` + `dgetrs` against the direct
    // `dgetrf` + `dgetrs` (numpy's `solve`): what the condition estimate costs.
    ("direct_solve_vs_unchecked", &[100, 500, 1000, 2000]),
    // parlinalg's `solve` (with its condition estimate) against the direct `dgetrf` +
    // `dgetrs` without one: what the guarantee costs parlinalg, and the floor of numpy's
    // `solve` (`dgesv`).
    ("solve_vs_unchecked", &[100, 500, 1000, 2000]),
    // parlinalg's `inv` (which takes its condition number from the inverse) against the
    // direct `dgetrf` + `dgetri` without one.
    ("inv_vs_unchecked", &[100, 500, 1000, 2000]),
    // The condition estimate alone, on one LU: the estimator parlinalg runs (`dlacn2` with
    // `dgetrs` solves, "parlinalg" column) against `dgecon` ("direct" column).
    ("lacn2_vs_gecon", &[100, 500, 1000, 2000]),
];

/// A symmetric positive definite matrix: `m·mᵀ/n + I`.
fn spd(n: usize) -> Array2<f64> {
    let m = matrix::<f64>(n, 3);
    m.dot(&m.t()) / n as f64 + Array2::<f64>::eye(n)
}

fn vector(n: usize) -> Array1<f64> {
    let mut u = uniform(4);
    Array1::from_shape_simple_fn(n, &mut u)
}

/// The two sides of one cell, checked to agree first.
type Side = Box<dyn FnMut()>;

fn sides(op: &str, n: usize) -> (Side, Side) {
    let a = if matches!(op, "cholesky" | "eigvalsh") {
        spd(n)
    } else {
        // Uniform in [-0.5, 0.5) plus a diagonal of 1: well conditioned at every n.
        matrix::<f64>(n, 1) + Array2::<f64>::eye(n)
    };
    let b = vector(n);
    // Loose: LU with different pivots, or a different SVD path, agree to this much on these
    // well-conditioned inputs; a wrong call is off by O(1).
    let tol = 1e-8;
    let same = |ours: &[f64], theirs: &[f64]| check_same(op, ours, theirs, tol);
    macro_rules! pair {
        ($ours:expr, $theirs:expr) => {{
            let (x, y) = (a.clone(), b.clone());
            let ours: Side = Box::new(move || {
                black_box($ours(&x, &y));
            });
            let (x, y) = (a.clone(), b.clone());
            let theirs: Side = Box::new(move || {
                black_box($theirs(&x, &y));
            });
            (ours, theirs)
        }};
    }
    match op {
        "solve" => {
            same(
                &parlinalg::solve(&a, &b).unwrap().to_vec(),
                &direct::solve(&a, &b).to_vec(),
            );
            pair!(|a, b| parlinalg::solve(a, b).unwrap(), direct::solve)
        }
        "inv" | "inv_vs_unchecked" => {
            // The direct side with dgecon, or bare dgetrf + dgetri.
            let theirs: fn(&Array2<f64>) -> Array2<f64> = if op == "inv" {
                direct::inv
            } else {
                direct::inv_unchecked
            };
            let ours = parlinalg::inv(&a).unwrap();
            same(ours.as_slice().unwrap(), theirs(&a).as_slice().unwrap());
            pair!(|a, _| parlinalg::inv(a).unwrap(), |a, _| theirs(a))
        }
        "det" => {
            let (ours, theirs) = (parlinalg::det(&a).unwrap(), direct::det(&a));
            // The determinant of the larger inputs leaves f64's range: compare finite ones.
            if theirs.is_finite() {
                same(&[ours], &[theirs]);
            }
            pair!(|a, _| parlinalg::det(a).unwrap(), |a, _| direct::det(a))
        }
        "cholesky" => {
            let ours = parlinalg::cholesky(&a).unwrap();
            same(
                ours.as_slice().unwrap(),
                direct::cholesky(&a).as_slice().unwrap(),
            );
            pair!(|a, _| parlinalg::cholesky(a).unwrap(), |a, _| {
                direct::cholesky(a)
            })
        }
        "eigvalsh" => {
            let ours = parlinalg::eigvalsh(&a).unwrap();
            same(&ours.to_vec(), &direct::eigvalsh(&a).to_vec());
            pair!(|a, _| parlinalg::eigvalsh(a).unwrap(), |a, _| {
                direct::eigvalsh(a)
            })
        }
        "singular_values" => {
            let ours = parlinalg::singular_values(&a).unwrap();
            same(&ours.to_vec(), &direct::singular_values(&a).to_vec());
            pair!(|a, _| parlinalg::singular_values(a).unwrap(), |a, _| {
                direct::singular_values(a)
            })
        }
        "det_from_2mib_thread" => {
            let (x, y) = (a.clone(), a.clone());
            let ours = on_thread(2 << 20, move || {
                black_box(parlinalg::det(&x).unwrap());
            });
            let theirs = on_thread(64 << 20, move || {
                black_box(parlinalg::det(&y).unwrap());
            });
            (ours, theirs)
        }
        "direct_solve_vs_unchecked" => {
            same(
                &direct::solve(&a, &b).to_vec(),
                &direct::solve_unchecked(&a, &b).to_vec(),
            );
            pair!(direct::solve, direct::solve_unchecked)
        }
        "solve_vs_unchecked" => {
            same(
                &parlinalg::solve(&a, &b).unwrap().to_vec(),
                &direct::solve_unchecked(&a, &b).to_vec(),
            );
            pair!(
                |a, b| parlinalg::solve(a, b).unwrap(),
                direct::solve_unchecked
            )
        }
        "lacn2_vs_gecon" => {
            let lu = direct::lu_for_estimate(&a);
            let (ours, theirs) = (direct::estimate_lacn2(&lu), direct::estimate_gecon(&lu));
            check_same(op, &[ours], &[theirs], 1e-6);
            let lu2 = lu.clone();
            let ours: Side = Box::new(move || {
                black_box(direct::estimate_lacn2(&lu));
            });
            let theirs: Side = Box::new(move || {
                black_box(direct::estimate_gecon(&lu2));
            });
            (ours, theirs)
        }
        "lstsq" => {
            let ours = parlinalg::lstsq(&a, &b).unwrap();
            same(&ours.to_vec(), &direct::lstsq(&a, &b).to_vec());
            pair!(|a, b| parlinalg::lstsq(a, b).unwrap(), direct::lstsq)
        }
        _ => unreachable!("a routine of CASES"),
    }
}

/// A side whose every call runs `f` on one thread of its own with a `stack`-byte stack (the
/// same hand-off cost on both sides of a cell).
fn on_thread(stack: usize, mut f: impl FnMut() + Send + 'static) -> Side {
    let (go, jobs) = std::sync::mpsc::sync_channel::<()>(0);
    let (finished, done) = std::sync::mpsc::sync_channel::<()>(0);
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            for () in jobs {
                f();
                finished.send(()).expect("the bench waits");
            }
        })
        .expect("a bench thread");
    Box::new(move || {
        go.send(()).expect("the thread runs");
        done.recv().expect("the thread answers");
    })
}

/// Sets OpenBLAS's global count for the direct calls.
fn direct_threads(threads: usize) {
    // SAFETY: sets OpenBLAS's global count; no BLAS call is running (one thread here).
    unsafe { openblas_set_num_threads(threads as c_int) };
}

fn bench_case(c: &mut Criterion, op: &str, sizes: &[usize], threads: usize) {
    let mut group = c.benchmark_group(format!("{op}/t{threads}"));
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for &n in sizes {
        if n >= 500 {
            group.sampling_mode(SamplingMode::Flat).sample_size(10);
        } else {
            group.sampling_mode(SamplingMode::Auto).sample_size(30);
        }
        direct_threads(threads);
        let (mut ours, mut theirs) = sides(op, n);
        group.bench_with_input(BenchmarkId::new("parlinalg", n), &n, |bn, _| {
            bn.iter(&mut ours)
        });
        direct_threads(threads);
        group.bench_with_input(BenchmarkId::new("direct", n), &n, |bn, _| {
            bn.iter(&mut theirs)
        });
    }
    group.finish();
}

/// `--ratios`: the robust figure on a noisy machine. Both sides run interleaved, in alternating
/// order, round after round (each round at least ~20 ms of calls per side), and the table
/// quotes the median of the per-round ratios parlinalg / direct with the median times.
fn ratios(filter: Option<&str>, rounds: usize) {
    println!("| routine | n | BLAS threads | parlinalg | direct | parlinalg / direct (median of {rounds} rounds) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for threads in [1usize, 2] {
        parlinalg::threads::set_blas_threads(threads).expect("a valid thread count");
        for &(op, sizes) in CASES {
            for &n in sizes {
                let name = format!("{op}/t{threads}/{n}");
                // "det" takes every det cell, "det/t1" those on 1 thread, "det/t1/100" one.
                if !selected(filter, &name) {
                    continue;
                }
                direct_threads(threads);
                let (mut ours, mut theirs) = sides(op, n);
                let cell = interleave(&mut ours, &mut theirs, rounds);
                println!("{}", cell.row(op, n, threads));
            }
        }
    }
}

fn main() {
    println!(
        "OpenBLAS kernel: {}; {}",
        parlinalg::kernel::kernel_selection(),
        parlinalg::blas_library().config
    );
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--ratios") {
        // `cargo bench --bench lapack -- --ratios [FILTER] [--rounds R]`
        let rest = &args[at + 1..];
        let rounds = rest
            .iter()
            .position(|a| a == "--rounds")
            .and_then(|i| rest.get(i + 1)?.parse().ok())
            .unwrap_or(9);
        let filter = rest
            .first()
            .filter(|a| !a.starts_with("--"))
            .map(String::as_str);
        ratios(filter, rounds);
        return;
    }
    // `cargo bench` passes --bench; under `cargo test` every cell runs once, at n = 16 only.
    let full = args.iter().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    for threads in [1usize, 2] {
        parlinalg::threads::set_blas_threads(threads).expect("a valid thread count");
        for &(op, sizes) in CASES {
            let sizes = if full { sizes } else { &sizes[..1] };
            bench_case(&mut c, op, sizes, threads);
        }
    }
    c.final_summary();
}
