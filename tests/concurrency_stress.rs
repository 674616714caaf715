//! Concurrency stress: every public operation, called at once from application threads that run
//! at different BLAS thread counts, must give the numbers it gives alone. Fails on a single
//! wrong element.
//!
//! Why: in OpenBLAS's OpenMP build a call that changes the count frees the per-thread packing
//! buffers another thread's call is still using (`openblas/backend.rs` says how); the pthreads
//! and serial builds have their own rules. This file is what proves, on each build and version
//! of the matrix (`scripts/openblas-matrix.sh`), that parlinalg's calls cannot hit any of it.
//!
//! The binary runs itself once per process-wide configuration (each child reads its own
//! environment): `auto` with two threads and with six, a fixed count
//! (`PARLINALG_BLAS_THREADS=2`), deterministic mode, and a program that called
//! `openblas_set_num_threads` itself. In
//! each child, [`WORKERS`] threads loop over every operation in turn, each in its own way: no
//! scope (the process's setting), scopes of 1, 2 and 3 BLAS threads, and plans (`Plan::run`
//! with a batch inside, `Plan::enter` around single calls). Inputs are large enough for
//! OpenBLAS to thread them (products ≥ 64³, LAPACK n = 128).
//!
//! References and tolerances (each check is a max over elements, stated once in [`Tol`]):
//! - products, matrix-vector products, dots and batches: naive loops in f64, computed once
//!   before the threads start; an element may differ by at most γ_k·(|A|·|B|)ᵢⱼ, where
//!   γ_k = k·u/(1 − k·u) is the standard bound for a dot product of length k in any order
//!   (Higham, *Accuracy and Stability*, §3.1), u the unit roundoff of the element type;
//! - LAPACK routines: the same routine on the same input, computed once alone on one BLAS
//!   thread before the threads start. Every input is built well conditioned (diagonally
//!   dominant: κ∞ ≤ 3; symmetric ones with eigenvalues in [n/2, 3n/2]), so two backward-stable
//!   runs may differ by at most c·n·u·κ relative to the result's largest element; c = 32
//!   leaves two orders of magnitude over what blocking differences give, and wrong results
//!   seen under the OpenMP build were off by 10⁻² to 1;
//! - elementwise maps bit for bit (each element is computed alone), reductions within
//!   n·u·Σ|x|.
//!
//! `PARLINALG_STRESS_SECONDS` (default 3) bounds each configuration's run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child::TestChild;
use common::naive_matmul;
use parlinalg::ndarray::{s, Array1, Array2, Array3, ArrayView2, Axis};
use parlinalg::threads::{blas_threads_scope, Plan};
use parlinalg::Float;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};

/// Application threads per child: two without a scope, scopes of 1, 2 and 3, and a planner.
const WORKERS: usize = 6;
const CHILD_VAR: &str = "PARLINALG_STRESS_CHILD";

/// The process-wide configurations, each in its own child: name and environment.
const CONFIGS: &[(&str, &[(&str, &str)])] = &[
    ("auto-2", &[("PARLINALG_STRESS_WORKERS", "2")]),
    ("auto", &[]),
    ("fixed-2", &[("PARLINALG_BLAS_THREADS", "2")]),
    ("deterministic", &[("PARLINALG_DETERMINISTIC", "1")]),
    // The program itself called `openblas_set_num_threads(2)` before parlinalg's first call
    // (OpenMP OpenBLAS from about 0.3.30 then runs every call at the global count).
    ("user-set-2", &[("PARLINALG_STRESS_USER_SET", "2")]),
];

/// Variables that would change what a child runs.
const CLEARED: &[&str] = &[
    "PARLINALG_BLAS_THREADS",
    "PARLINALG_OUTER_THREADS",
    "PARLINALG_DETERMINISTIC",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
    "RAYON_NUM_THREADS",
];

fn main() {
    if let Ok(config) = std::env::var(CHILD_VAR) {
        child(&config);
        return;
    }
    let lib = parlinalg::blas_library();
    println!(
        "concurrency_stress: {} ({}, {} threading)",
        lib.version
            .as_deref()
            .unwrap_or("OpenBLAS of unknown version"),
        lib.path
            .as_ref()
            .map_or("path unknown".into(), |p| p.display().to_string()),
        lib.threading
    );
    let mut failed = 0;
    for (name, env) in CONFIGS {
        let out = TestChild::main()
            .remove(CLEARED)
            .env(CHILD_VAR, name)
            .envs(env.iter().copied())
            .output();
        print!("{}", out.stdout);
        if !out.status.success() {
            failed += 1;
            println!("config {name}: FAILED ({})\n{}", out.status, out.stderr);
        }
    }
    let passed = CONFIGS.len() - failed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// How far a result may be from its reference, relative to a scale (see the file's docs).
#[derive(Clone, Copy)]
struct Tol {
    u: f64,
}

impl Tol {
    fn of<T: Float>() -> Tol {
        Tol {
            u: T::epsilon().to_f64().unwrap() / 2.0,
        }
    }
    /// γ_k.
    fn gamma(self, k: usize) -> f64 {
        let ku = k as f64 * self.u;
        ku / (1.0 - ku)
    }
    /// 32·n·u·κ with κ ≤ 3: two backward-stable runs on a well-conditioned input of order n.
    fn lapack(self, n: usize) -> f64 {
        32.0 * n as f64 * self.u * 3.0
    }
}

/// One operation's reference: checks a result, returns the number of wrong elements.
type Check = Box<dyn Fn() -> Result<usize, String> + Send + Sync>;

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn random<T: Float>(r: &mut SmallRng, rows: usize, cols: usize) -> Array2<T> {
    Array2::from_shape_simple_fn((rows, cols), || T::from(r.random_range(-0.5..0.5)).unwrap())
}

/// n·I + R, R uniform in (−½, ½): diagonally dominant, κ∞ ≤ 3.
fn well_conditioned<T: Float>(r: &mut SmallRng, n: usize) -> Array2<T> {
    let mut a = random::<T>(r, n, n);
    for i in 0..n {
        a[[i, i]] = a[[i, i]] + T::from(n).unwrap();
    }
    a
}

/// Symmetric n·I + (R + Rᵀ)/2: eigenvalues in [n/2, 3n/2], so positive definite, κ ≤ 3.
fn symmetric<T: Float>(r: &mut SmallRng, n: usize) -> Array2<T> {
    let a = well_conditioned::<T>(r, n);
    let half = T::from(0.5).unwrap();
    Array2::from_shape_fn((n, n), |(i, j)| (a[[i, j]] + a[[j, i]]) * half)
}

/// Whether a difference exceeds its bound; a NaN difference always does.
fn outside(difference: f64, bound: f64) -> bool {
    !matches!(
        difference.partial_cmp(&bound),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// Elements of `got` farther from `want` than `gamma·scale`.
fn wrong_against<T: Float>(
    got: ArrayView2<T>,
    want: &Array2<f64>,
    scale: &Array2<f64>,
    gamma: f64,
) -> usize {
    got.iter()
        .zip(want.iter().zip(scale))
        .filter(|(g, (w, s))| {
            outside(
                (g.to_f64().unwrap() - *w).abs(),
                gamma * *s + f64::MIN_POSITIVE,
            )
        })
        .count()
}

/// Elements of `got` farther from `want` than `rtol` times `want`'s largest magnitude.
fn wrong_relative<'a, T: Float>(
    got: impl IntoIterator<Item = &'a T>,
    want: impl IntoIterator<Item = &'a T> + Clone,
    rtol: f64,
) -> usize {
    let big = want
        .clone()
        .into_iter()
        .fold(0.0f64, |m, w| m.max(w.to_f64().unwrap().abs()));
    let (mut bad, mut worst) = (0, 0.0f64);
    for (g, w) in got.into_iter().zip(want) {
        let d = (g.to_f64().unwrap() - w.to_f64().unwrap()).abs();
        if outside(d, rtol * big + f64::MIN_POSITIVE) {
            bad += 1;
            worst = worst.max(d / big);
        }
    }
    if bad > 0 {
        eprintln!(
            "  {bad} element(s) off by up to {worst:.2e} of the largest (allowed {rtol:.1e})"
        );
    }
    bad
}

fn err(op: &str, e: parlinalg::Error) -> String {
    format!("{op}: {e}")
}

/// Every operation's checks for element type `T`, inputs made from `seed`.
fn operations<T: Float>(seed: u64) -> Vec<(String, Check)> {
    let ty = std::any::type_name::<T>();
    let tol = Tol::of::<T>();
    let mut r = rng(seed);
    let mut out: Vec<(String, Check)> = Vec::new();
    let alone = |f: &mut dyn FnMut()| parlinalg::threads::with_blas_threads(1, f).unwrap();

    // Products: the four transpose variants, through matmul and matmul_into.
    let n = 128;
    let a = Arc::new(random::<T>(&mut r, n, n + 3));
    let b = Arc::new(random::<T>(&mut r, n + 3, n - 5));
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a_in = if ta {
            Arc::new(a.t().to_owned().reversed_axes())
        } else {
            a.clone()
        };
        let b_in = if tb {
            Arc::new(b.t().to_owned().reversed_axes())
        } else {
            b.clone()
        };
        // `x.t().to_owned().reversed_axes()` holds x's values in F order: read through a
        // transpose flag by BLAS.
        let (want, scale) = naive_matmul(&a_in.view(), &b_in.view());
        let (want, scale) = (Arc::new(want), Arc::new(scale));
        let gamma = tol.gamma(a.ncols());
        let (a1, b1, w1, s1) = (a_in.clone(), b_in.clone(), want.clone(), scale.clone());
        out.push((
            format!("matmul {ty} t=({ta},{tb})"),
            Box::new(move || {
                let c = parlinalg::matmul(&*a1, &*b1).map_err(|e| err("matmul", e))?;
                Ok(wrong_against(c.view(), &w1, &s1, gamma))
            }),
        ));
        out.push((
            format!("matmul_into {ty} t=({ta},{tb})"),
            Box::new(move || {
                let mut c = Array2::<T>::zeros((a_in.nrows(), b_in.ncols()));
                parlinalg::matmul_into(&*a_in, &*b_in, &mut c)
                    .map_err(|e| err("matmul_into", e))?;
                Ok(wrong_against(c.view(), &want, &scale, gamma))
            }),
        ));
    }

    // Matrix-vector product and dot, above OpenBLAS's threading thresholds.
    let (m, k) = (192, 160);
    let am = Arc::new(random::<T>(&mut r, m, k));
    let x = Arc::new(random::<T>(&mut r, k, 1));
    let (want, scale) = naive_matmul(&am.view(), &x.view());
    out.push((
        format!("matvec {ty}"),
        Box::new(move || {
            let y = parlinalg::matvec(&*am, &x.column(0)).map_err(|e| err("matvec", e))?;
            let y = y.insert_axis(Axis(1));
            Ok(wrong_against(y.view(), &want, &scale, tol.gamma(k)))
        }),
    ));
    let len = 20_011;
    let u = Arc::new(random::<T>(&mut r, 1, len));
    let v = Arc::new(random::<T>(&mut r, len, 1));
    let (want, scale) = naive_matmul(&u.view(), &v.view());
    out.push((
        format!("dot {ty}"),
        Box::new(move || {
            let d = parlinalg::dot(&u.row(0), &v.column(0)).map_err(|e| err("dot", e))?;
            let d = Array2::from_elem((1, 1), d);
            Ok(wrong_against(d.view(), &want, &scale, tol.gamma(len)))
        }),
    ));

    // Batches: the policy's own split, and plans run by other threads (see `worker`).
    let (batch, p) = (6, 72);
    let ab = Arc::new(Array3::from_shape_fn((batch, p, p), |_| {
        T::from(r.random_range(-0.5..0.5)).unwrap()
    }));
    let bb = Arc::new(Array3::from_shape_fn((batch, p, p), |_| {
        T::from(r.random_range(-0.5..0.5)).unwrap()
    }));
    let refs: Arc<Vec<_>> = Arc::new(
        (0..batch)
            .map(|i| naive_matmul(&ab.slice(s![i, .., ..]), &bb.slice(s![i, .., ..])))
            .collect(),
    );
    let check_batch = move |c: Array3<T>| {
        (0..batch)
            .map(|i| wrong_against(c.slice(s![i, .., ..]), &refs[i].0, &refs[i].1, tol.gamma(p)))
            .sum::<usize>()
    };
    let check_batch = Arc::new(check_batch);
    {
        let (ab, bb, check) = (ab.clone(), bb.clone(), check_batch.clone());
        out.push((
            format!("matmul_batch {ty}"),
            Box::new(move || {
                let c = parlinalg::matmul_batch(&*ab, &*bb).map_err(|e| err("matmul_batch", e))?;
                Ok(check(c))
            }),
        ));
    }
    for (outer, blas) in [(2, 1), (1, 2)] {
        let (ab, bb, check) = (ab.clone(), bb.clone(), check_batch.clone());
        out.push((
            format!("matmul_batch_with {ty} plan {outer}x{blas}"),
            Box::new(move || {
                let plan = Plan::new(outer, blas).map_err(|e| err("plan", e))?;
                let c = parlinalg::matmul_batch_with(&*ab, &*bb, &plan)
                    .map_err(|e| err("matmul_batch_with", e))?;
                Ok(check(c))
            }),
        ));
    }

    // LAPACK, n = 128: OpenBLAS threads its factorisations from n·n ≥ 10⁴.
    let n = 128;
    let rtol = tol.lapack(n);
    let a = Arc::new(well_conditioned::<T>(&mut r, n));
    let rhs = Arc::new(random::<T>(&mut r, n, 3));
    let spd = Arc::new(symmetric::<T>(&mut r, n));
    let tall = Arc::new({
        let mut t = random::<T>(&mut r, 3 * n / 2, n);
        for i in 0..n {
            t[[i, i]] = t[[i, i]] + T::from(n).unwrap();
        }
        t
    });
    let y = Arc::new(random::<T>(&mut r, 3 * n / 2, 1).column(0).to_owned());
    let det_in = Arc::new(a.mapv(|v| v / T::from(n).unwrap()));

    let mut solve_ref = None;
    let mut inv_ref = None;
    let mut det_ref = None;
    let mut chol_ref = None;
    let mut eig_ref = None;
    let mut sv_ref = None;
    let mut lstsq_ref = None;
    alone(&mut || {
        solve_ref = Some(parlinalg::solve(&*a, &*rhs).unwrap());
        inv_ref = Some(parlinalg::inv(&*a).unwrap());
        det_ref = Some(parlinalg::det(&*det_in).unwrap());
        chol_ref = Some(parlinalg::cholesky(&*spd).unwrap());
        eig_ref = Some(parlinalg::eigvalsh(&*spd).unwrap());
        sv_ref = Some(parlinalg::singular_values(&*a).unwrap());
        lstsq_ref = Some(parlinalg::lstsq(&*tall, &*y).unwrap());
    });
    let (solve_ref, inv_ref) = (solve_ref.unwrap(), inv_ref.unwrap());
    let (det_ref, chol_ref) = (det_ref.unwrap(), chol_ref.unwrap());
    let (eig_ref, sv_ref, lstsq_ref) = (eig_ref.unwrap(), sv_ref.unwrap(), lstsq_ref.unwrap());
    {
        let (a, rhs) = (a.clone(), rhs.clone());
        out.push((
            format!("solve {ty}"),
            Box::new(move || {
                let x = parlinalg::solve(&*a, &*rhs).map_err(|e| err("solve", e))?;
                Ok(wrong_relative(&x, &solve_ref, rtol))
            }),
        ));
    }
    {
        let a = a.clone();
        out.push((
            format!("inv {ty}"),
            Box::new(move || {
                let x = parlinalg::inv(&*a).map_err(|e| err("inv", e))?;
                Ok(wrong_relative(&x, &inv_ref, rtol))
            }),
        ));
    }
    out.push((
        format!("det {ty}"),
        Box::new(move || {
            // The determinant multiplies n pivots: n times a pivot's relative error.
            let d = parlinalg::det(&*det_in).map_err(|e| err("det", e))?;
            Ok(wrong_relative(&[d], &[det_ref], n as f64 * rtol))
        }),
    ));
    {
        let spd = spd.clone();
        out.push((
            format!("cholesky {ty}"),
            Box::new(move || {
                let l = parlinalg::cholesky(&*spd).map_err(|e| err("cholesky", e))?;
                Ok(wrong_relative(&l, &chol_ref, rtol))
            }),
        ));
    }
    out.push((
        format!("eigvalsh {ty}"),
        Box::new(move || {
            let w = parlinalg::eigvalsh(&*spd).map_err(|e| err("eigvalsh", e))?;
            Ok(wrong_relative(&w, &eig_ref, rtol))
        }),
    ));
    out.push((
        format!("singular_values {ty}"),
        Box::new(move || {
            let w = parlinalg::singular_values(&*a).map_err(|e| err("singular_values", e))?;
            Ok(wrong_relative(&w, &sv_ref, rtol))
        }),
    ));
    out.push((
        format!("lstsq {ty}"),
        Box::new(move || {
            let x = parlinalg::lstsq(&*tall, &*y).map_err(|e| err("lstsq", e))?;
            Ok(wrong_relative(&x, &lstsq_ref, rtol))
        }),
    ));

    // Elementwise and reductions run on rayon, beside the BLAS calls.
    let xs: Arc<Array1<T>> = Arc::new(Array1::from_shape_simple_fn(200_003, || {
        T::from(r.random_range(-4.0..4.0)).unwrap()
    }));
    let e_ref = parlinalg::exp(&*xs);
    let sum_scale: f64 = e_ref.iter().map(|v| v.to_f64().unwrap().abs()).sum();
    let sum_ref: f64 = e_ref.iter().map(|v| v.to_f64().unwrap()).sum();
    out.push((
        format!("exp+sum {ty}"),
        Box::new(move || {
            let e = parlinalg::exp(&*xs);
            let bits = e.iter().zip(&e_ref).filter(|(g, w)| g != w).count();
            let s = parlinalg::sum(&e)
                .map_err(|e| err("sum", e))?
                .to_f64()
                .unwrap();
            let sum_ok = (s - sum_ref).abs() <= tol.gamma(e.len()) * sum_scale;
            Ok(bits + usize::from(!sum_ok))
        }),
    ));
    out
}

/// What a worker does around each call.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// No scope: the process's setting (auto, fixed or deterministic).
    Unscoped,
    /// Inside `blas_threads_scope(n)`, opened and closed around every few calls.
    Scope(usize),
    /// Inside `Plan::new(1, 2).enter()` and `Plan::new(2, 1).run(..)` in turn.
    Planned,
}

fn worker(
    mode: Mode,
    start: usize,
    checks: &[(String, Check)],
    deadline: Instant,
    wrong: &[AtomicU64],
    calls: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut i = start;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let round = |i: usize| {
            let (name, check) = &checks[i % checks.len()];
            match check() {
                Ok(bad) => {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if bad > 0 {
                        wrong[i % checks.len()].fetch_add(1, Ordering::Relaxed);
                        eprintln!("{name} ({mode:?}): {bad} wrong element(s)");
                    }
                }
                Err(e) => {
                    eprintln!("{name} ({mode:?}): unexpected error {e}");
                    stop.store(true, Ordering::Relaxed);
                }
            }
        };
        match mode {
            Mode::Unscoped => round(i),
            // Scoped every other call, so that the scoped count and the setting alternate.
            Mode::Scope(n) if i.is_multiple_of(2) => {
                let _g = blas_threads_scope(n).unwrap();
                round(i);
            }
            Mode::Scope(_) => round(i),
            Mode::Planned if i.is_multiple_of(2) => {
                let _g = Plan::new(1, 2).unwrap().enter().unwrap();
                round(i);
            }
            Mode::Planned => Plan::new(2, 1).unwrap().run(|| round(i)).unwrap(),
        }
        i += 1;
    }
}

extern "C" {
    fn openblas_set_num_threads(n: std::ffi::c_int);
}

fn child(config: &str) {
    if let Some(n) = std::env::var("PARLINALG_STRESS_USER_SET")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        // SAFETY: OpenBLAS's setter takes any int; no other thread runs yet.
        unsafe { openblas_set_num_threads(n) };
    }
    let seconds: f64 = std::env::var("PARLINALG_STRESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut checks = operations::<f64>(1);
    checks.extend(operations::<f32>(2));
    let checks = Arc::new(checks);
    let wrong: Arc<Vec<AtomicU64>> =
        Arc::new((0..checks.len()).map(|_| AtomicU64::new(0)).collect());
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let modes = [
        Mode::Unscoped,
        Mode::Unscoped,
        Mode::Scope(1),
        Mode::Scope(2),
        Mode::Scope(3),
        Mode::Planned,
    ];
    assert_eq!(modes.len(), WORKERS);
    // `PARLINALG_STRESS_WORKERS=2`: only the first two (two unscoped callers under `auto`).
    let workers: usize = std::env::var("PARLINALG_STRESS_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(WORKERS)
        .min(WORKERS);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = modes[..workers]
        .iter()
        .enumerate()
        .map(|(w, &mode)| {
            let (checks, wrong, calls, stop) =
                (checks.clone(), wrong.clone(), calls.clone(), stop.clone());
            std::thread::spawn(move || {
                // Each worker starts at another operation, so different ones overlap.
                let start = w * checks.len() / WORKERS;
                worker(mode, start, &checks, deadline, &wrong, &calls, &stop)
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker panicked");
    }
    let total_wrong: u64 = wrong.iter().map(|w| w.load(Ordering::Relaxed)).sum();
    let calls = calls.load(Ordering::Relaxed);
    println!(
        "config {config}: {calls} checked calls over {} operations, {total_wrong} wrong",
        checks.len()
    );
    for ((name, _), w) in checks.iter().zip(wrong.iter()) {
        let w = w.load(Ordering::Relaxed);
        if w > 0 {
            println!("  {name}: {w} wrong");
        }
    }
    if total_wrong > 0 || stop.load(Ordering::Relaxed) || calls == 0 {
        std::process::exit(1);
    }
}
