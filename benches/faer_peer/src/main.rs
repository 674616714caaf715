//! parlinalg's LAPACK routines against faer, the pure-Rust peer, interleaved in one process.
//!
//! ```text
//! env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
//!     cargo run --release --manifest-path benches/faer_peer/Cargo.toml -- [FILTER] [--rounds R]
//! ```
//!
//! FILTER as in `cargo bench --bench lapack -- --ratios`: `solve` takes every solve cell,
//! `solve/t1` those on 1 thread, `solve/t1/100` one. Each cell builds one matrix (the kind
//! `benches/lapack.rs` uses: uniform in [-0.5, 0.5) plus the identity; `m·mᵀ/n + I` for the
//! symmetric routines), hands it to each library in its own layout (an `ndarray` in C order to
//! parlinalg, a column-major `faer::Mat` to faer; both copy it before factoring, as a caller
//! keeps the input), checks that the two agree, then alternates them round after round (at least
//! ~20 ms of calls per side and round, `benches/support/interleave.rs`) and prints the median
//! times and the median of the per-round ratios parlinalg / faer.
//!
//! "t1" runs parlinalg with 1 BLAS thread and faer with `Par::Seq`; "t2" 2 BLAS threads and
//! `Par::rayon(2)`. parlinalg's side includes its guarantees (shape, finiteness and condition
//! checks, equilibration where the magnitudes need it); faer's `solve` and `inv` make no
//! condition estimate, as numpy's.
//!
//! A crate of its own (its own `[workspace]`), so that the library, its tests and CI never
//! build faer.

use std::hint::black_box;

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Par, Side};
use parlinalg::ndarray::{Array1, Array2};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// The interleaving, the selection of cells and the agreement check of `benches/lapack.rs`.
#[path = "../../support/interleave.rs"]
mod interleave;
use interleave::{check_same, interleave, selected};

/// The cells: routine and sizes.
const CASES: &[(&str, &[usize])] = &[
    ("solve", &[100, 500, 1000, 2000]),
    ("inv", &[100, 500, 1000, 2000]),
    ("det", &[100, 500, 1000, 2000]),
    ("cholesky", &[100, 500, 1000, 2000]),
    ("eigvalsh", &[100, 500, 1000]),
    ("singular_values", &[100, 500, 1000]),
];

/// One side of a cell: a call whose result is kept from the optimiser.
type Call = Box<dyn FnMut()>;

/// A seeded n×n matrix, uniform in [-0.5, 0.5).
fn uniform(n: usize, seed: u64) -> Array2<f64> {
    let mut r = SmallRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, n), || r.random_range(-0.5..0.5))
}

fn input(op: &str, n: usize) -> Array2<f64> {
    if matches!(op, "cholesky" | "eigvalsh") {
        let m = uniform(n, 3);
        m.dot(&m.t()) / n as f64 + Array2::<f64>::eye(n)
    } else {
        uniform(n, 1) + Array2::<f64>::eye(n)
    }
}

/// The lower triangle of a column-major faer matrix, row by row (parlinalg's Cholesky factor
/// is lower triangular in C order).
fn lower_rows(m: &Mat<f64>) -> Vec<f64> {
    let n = m.nrows();
    (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| if j <= i { m[(i, j)] } else { 0.0 })
        .collect()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn sides(op: &str, n: usize) -> (Call, Call) {
    let a = input(op, n);
    let fa = Mat::<f64>::from_fn(n, n, |i, j| a[[i, j]]);
    let mut r = SmallRng::seed_from_u64(4);
    let b = Array1::from_shape_simple_fn(n, || r.random_range(-1.0..1.0));
    let fb = Mat::<f64>::from_fn(n, 1, |i, _| b[i]);
    // LU with different blocking, or another eigen or SVD algorithm, agree to this much on
    // these well-conditioned inputs; a wrong call is off by O(1).
    let same = |ours: &[f64], theirs: &[f64]| check_same(op, ours, theirs, 1e-8);
    match op {
        "solve" => {
            let theirs = fa.partial_piv_lu().solve(&fb);
            let theirs: Vec<f64> = (0..n).map(|i| theirs[(i, 0)]).collect();
            same(&parlinalg::solve(&a, &b).unwrap().to_vec(), &theirs);
            (
                Box::new(move || {
                    black_box(parlinalg::solve(&a, &b).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.partial_piv_lu().solve(&fb));
                }),
            )
        }
        "inv" => {
            let theirs = fa.partial_piv_lu().inverse();
            let ours = parlinalg::inv(&a).unwrap();
            let theirs: Vec<f64> = (0..n * n).map(|k| theirs[(k / n, k % n)]).collect();
            same(ours.as_slice().unwrap(), &theirs);
            (
                Box::new(move || {
                    black_box(parlinalg::inv(&a).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.partial_piv_lu().inverse());
                }),
            )
        }
        "det" => {
            let (ours, theirs) = (parlinalg::det(&a).unwrap(), fa.determinant());
            // The determinant of the larger inputs leaves f64's range: compare finite ones.
            if theirs.is_finite() {
                same(&[ours], &[theirs]);
            }
            (
                Box::new(move || {
                    black_box(parlinalg::det(&a).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.determinant());
                }),
            )
        }
        "cholesky" => {
            let theirs = fa.llt(Side::Lower).unwrap().L().to_owned();
            same(
                parlinalg::cholesky(&a).unwrap().as_slice().unwrap(),
                &lower_rows(&theirs),
            );
            (
                Box::new(move || {
                    black_box(parlinalg::cholesky(&a).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.llt(Side::Lower).unwrap());
                }),
            )
        }
        "eigvalsh" => {
            let theirs = sorted(fa.self_adjoint_eigenvalues(Side::Lower).unwrap());
            same(&sorted(parlinalg::eigvalsh(&a).unwrap().to_vec()), &theirs);
            (
                Box::new(move || {
                    black_box(parlinalg::eigvalsh(&a).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.self_adjoint_eigenvalues(Side::Lower).unwrap());
                }),
            )
        }
        "singular_values" => {
            let theirs = sorted(fa.singular_values().unwrap());
            same(
                &sorted(parlinalg::singular_values(&a).unwrap().to_vec()),
                &theirs,
            );
            (
                Box::new(move || {
                    black_box(parlinalg::singular_values(&a).unwrap());
                }),
                Box::new(move || {
                    black_box(fa.singular_values().unwrap());
                }),
            )
        }
        _ => unreachable!("every routine of CASES has its sides"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(9);
    let filter = args.first().filter(|a| !a.starts_with("--")).cloned();
    println!(
        "OpenBLAS kernel: {}; {}",
        parlinalg::kernel::kernel_selection(),
        parlinalg::blas_library().config
    );
    println!("| routine | n | threads | parlinalg | faer | parlinalg / faer (median of {rounds} rounds) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for threads in [1usize, 2] {
        parlinalg::threads::set_blas_threads(threads).expect("a valid thread count");
        faer::set_global_parallelism(if threads == 1 {
            Par::Seq
        } else {
            Par::rayon(threads)
        });
        for &(op, sizes) in CASES {
            for &n in sizes {
                let name = format!("{op}/t{threads}/{n}");
                if !selected(filter.as_deref(), &name) {
                    continue;
                }
                let (mut ours, mut theirs) = sides(op, n);
                let cell = interleave(&mut ours, &mut theirs, rounds);
                println!("{}", cell.row(op, n, threads));
            }
        }
    }
}
