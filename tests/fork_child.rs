//! Real forks (issue 14): after multithreaded work of every kind, a forked child runs every
//! public operation, each within a time limit, and gets the results of a serial reference
//! computed before the fork; the parent runs them all again afterwards. Also: a fork from
//! inside a scope and an entered plan (the child honours what the forking thread owns, and its
//! guards restore as usual); forks while other threads take and release
//! parlinalg's locks; a fork of a fork; and the same under OpenBLAS's OpenMP build where it
//! is installed.
//!
//! Each scenario runs in its own child process of the test (its `child_entry` test, run by
//! the harness in `tests/common/child.rs`), under a watchdog, so that a hang fails the test instead of hanging
//! the suite. That process does the work and forks; the forked grandchild reports through a
//! pipe ("start OP", then "ok OP" or "fail OP: why") and leaves with `_exit`; its parent kills
//! it when one call takes longer than [`PER_CALL`] and fails naming that operation. Forks are
//! made while no other thread is inside a BLAS call (the parent-side rule, tests/fork_safety.rs).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::child::TestChild;
use common::Rng;
use parlinalg::ndarray::{Array1, Array2, Array3, Axis};
use parlinalg::threads::{self, Plan};

const CHILD_VAR: &str = "PARLINALG_TEST_FORK_SCENARIO";

/// The limit for one call in a forked child (a hang detector: the calls take
/// milliseconds).
const PER_CALL: Duration = Duration::from_secs(10);

/// The watchdog on a scenario's whole process.
const OVERALL: Duration = Duration::from_secs(240);

/// Where Debian's `libopenblas0-openmp` puts the OpenMP build.
const OPENMP_DIR: &str = "/usr/lib/x86_64-linux-gnu/openblas-openmp";

/// Elementwise length: above every parallel threshold (2¹⁷).
const LEN: usize = 1 << 18;

/// Inputs and their serial results, computed under `Plan::serial()` before any fork.
struct Refs {
    x: Array1<f64>,
    pos: Array1<f64>,
    y: Array1<f64>,
    m: Array2<f64>,
    row: Array1<f64>,
    a: Array2<f64>,
    b: Array2<f64>,
    a8: Array2<f64>,
    spd: Array2<f64>,
    tall: Array2<f64>,
    rhs: Array1<f64>,
    rhs_tall: Array1<f64>,
    ba: Array3<f64>,
    bb: Array3<f64>,
    // Results.
    exp: Array1<f64>,
    ln: Array1<f64>,
    sqrt: Array1<f64>,
    tanh: Array1<f64>,
    sigmoid: Array1<f64>,
    add: Array1<f64>,
    sub: Array1<f64>,
    mul: Array1<f64>,
    div: Array1<f64>,
    add_row: Array2<f64>,
    sum: f64,
    mean: f64,
    max: f64,
    min: f64,
    norm2: f64,
    sum_axis: Array1<f64>,
    mean_axis: Array1<f64>,
    max_axis: Array1<f64>,
    min_axis: Array1<f64>,
    norm2_axis: Array1<f64>,
    sum32: f32,
    ab: Array2<f64>,
    a8a8: Array2<f64>,
    av: Array1<f64>,
    dot: f64,
    batch: Array3<f64>,
    solve: Array1<f64>,
    inv: Array2<f64>,
    det: f64,
    chol: Array2<f64>,
    eig: Array1<f64>,
    sv: Array1<f64>,
    lstsq: Array1<f64>,
}

impl Refs {
    fn new() -> Refs {
        let mut rng = Rng::new(20261202);
        let x = rng.vector::<f64>(LEN);
        let pos = x.mapv(|v| v.abs() + 0.5);
        let y = rng.vector::<f64>(LEN).mapv(|v| v + 2.0);
        let m = rng.matrix::<f64>(512, 512);
        let row = rng.vector::<f64>(512);
        let a = rng.matrix::<f64>(300, 300);
        let b = rng.matrix::<f64>(300, 300);
        let a8 = rng.matrix::<f64>(8, 8);
        let spd = a.t().dot(&a) / 300.0 + Array2::<f64>::eye(300);
        let tall = rng.matrix::<f64>(400, 200);
        let rhs = rng.vector::<f64>(300);
        let rhs_tall = rng.vector::<f64>(400);
        let ba = Array3::from_shape_fn((32, 96, 96), |(i, j, k)| {
            ((i * 7 + j * 3 + k) % 17) as f64 / 17.0 - 0.5
        });
        let bb = Array3::from_shape_fn((32, 96, 96), |(i, j, k)| {
            ((i * 5 + j + k * 11) % 13) as f64 / 13.0 - 0.5
        });
        let serial = Plan::serial().enter().unwrap();
        let r = Refs {
            exp: parlinalg::exp(&x),
            ln: parlinalg::ln(&pos),
            sqrt: parlinalg::sqrt(&pos),
            tanh: parlinalg::tanh(&x),
            sigmoid: parlinalg::sigmoid(&x),
            add: parlinalg::add(&x, &y).unwrap(),
            sub: parlinalg::sub(&x, &y).unwrap(),
            mul: parlinalg::mul(&x, &y).unwrap(),
            div: parlinalg::div(&x, &y).unwrap(),
            add_row: parlinalg::add(&m, &row).unwrap(),
            sum: parlinalg::sum(&x).unwrap(),
            mean: parlinalg::mean(&x).unwrap(),
            max: parlinalg::max(&x).unwrap(),
            min: parlinalg::min(&x).unwrap(),
            norm2: parlinalg::norm2(&x).unwrap(),
            sum_axis: parlinalg::sum_axis(&m, Axis(0)).unwrap(),
            mean_axis: parlinalg::mean_axis(&m, Axis(1)).unwrap(),
            max_axis: parlinalg::max_axis(&m, Axis(0)).unwrap(),
            min_axis: parlinalg::min_axis(&m, Axis(1)).unwrap(),
            norm2_axis: parlinalg::norm2_axis(&m, Axis(0)).unwrap(),
            sum32: parlinalg::sum(&x.mapv(|v| v as f32)).unwrap(),
            ab: parlinalg::matmul(&a, &b).unwrap(),
            a8a8: parlinalg::matmul(&a8, &a8).unwrap(),
            av: parlinalg::matvec(&a, &rhs).unwrap(),
            dot: parlinalg::dot(&x, &y).unwrap(),
            batch: parlinalg::matmul_batch_with(&ba, &bb, &Plan::serial()).unwrap(),
            solve: parlinalg::solve(&a, &rhs).unwrap(),
            inv: parlinalg::inv(&a).unwrap(),
            det: parlinalg::det(&spd).unwrap(),
            chol: parlinalg::cholesky(&spd).unwrap(),
            eig: parlinalg::eigvalsh(&spd).unwrap(),
            sv: parlinalg::singular_values(&a).unwrap(),
            lstsq: parlinalg::lstsq(&tall, &rhs_tall).unwrap(),
            x,
            pos,
            y,
            m,
            row,
            a,
            b,
            a8,
            spd,
            tall,
            rhs,
            rhs_tall,
            ba,
            bb,
        };
        drop(serial);
        r
    }
}

type Check = Result<(), String>;

/// Bitwise: elementwise maps and reductions do not depend on the split (by design).
fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: &T) -> Check {
    if got == *want {
        Ok(())
    } else {
        Err(format!("{what}: not the serial bits"))
    }
}

/// BLAS and LAPACK results may round differently on other thread counts: within 1e-9 of the
/// largest reference value (the problems are well conditioned, n ≤ 400).
fn close<'a>(
    what: &str,
    got: impl IntoIterator<Item = &'a f64>,
    want: impl IntoIterator<Item = &'a f64>,
) -> Check {
    let (got, want): (Vec<f64>, Vec<f64>) = (
        got.into_iter().copied().collect(),
        want.into_iter().copied().collect(),
    );
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
    if got.len() == want.len() && err <= 1e-9 * scale {
        Ok(())
    } else {
        Err(format!("{what}: error {err:e} (scale {scale:e})"))
    }
}

fn err(e: parlinalg::Error) -> String {
    e.to_string()
}

type Op<'a> = (&'static str, Box<dyn Fn() -> Check + 'a>);

/// Every public operation, at sizes that take the parallel paths, checked against `r`.
fn operations(r: &Refs) -> Vec<Op<'_>> {
    let mut ops: Vec<Op<'_>> = Vec::new();
    macro_rules! op {
        ($name:expr, $body:expr) => {
            ops.push(($name, Box::new($body)));
        };
    }
    macro_rules! unary {
        ($f:ident, $try:ident, $into:ident, $inplace:ident, $input:ident) => {
            op!(stringify!($f), || same(
                stringify!($f),
                parlinalg::$f(&r.$input),
                &r.$f
            ));
            op!(stringify!($try), || same(
                stringify!($try),
                parlinalg::$try(&r.$input).map_err(err)?,
                &r.$f
            ));
            op!(stringify!($into), || {
                let mut out = Array1::zeros(LEN);
                parlinalg::$into(&r.$input, &mut out).map_err(err)?;
                same(stringify!($into), out, &r.$f)
            });
            op!(stringify!($inplace), || {
                let mut v = r.$input.clone();
                parlinalg::$inplace(&mut v);
                same(stringify!($inplace), v, &r.$f)
            });
        };
    }
    unary!(exp, try_exp, exp_into, exp_inplace, x);
    unary!(ln, try_ln, ln_into, ln_inplace, pos);
    unary!(sqrt, try_sqrt, sqrt_into, sqrt_inplace, pos);
    unary!(tanh, try_tanh, tanh_into, tanh_inplace, x);
    unary!(sigmoid, try_sigmoid, sigmoid_into, sigmoid_inplace, x);
    macro_rules! binary {
        ($f:ident, $into:ident) => {
            op!(stringify!($f), || same(
                stringify!($f),
                parlinalg::$f(&r.x, &r.y).map_err(err)?,
                &r.$f
            ));
            op!(stringify!($into), || {
                let mut out = Array1::zeros(LEN);
                parlinalg::$into(&r.x, &r.y, &mut out).map_err(err)?;
                same(stringify!($into), out, &r.$f)
            });
        };
    }
    binary!(add, add_into);
    binary!(sub, sub_into);
    binary!(mul, mul_into);
    binary!(div, div_into);
    op!("add (broadcast)", || same(
        "add (broadcast)",
        parlinalg::add(&r.m, &r.row).map_err(err)?,
        &r.add_row
    ));
    op!("sum", || same(
        "sum",
        parlinalg::sum(&r.x).map_err(err)?,
        &r.sum
    ));
    op!("sum (f32)", || same(
        "sum (f32)",
        parlinalg::sum(&r.x.mapv(|v| v as f32)).map_err(err)?,
        &r.sum32
    ));
    op!("mean", || same(
        "mean",
        parlinalg::mean(&r.x).map_err(err)?,
        &r.mean
    ));
    op!("max", || same(
        "max",
        parlinalg::max(&r.x).map_err(err)?,
        &r.max
    ));
    op!("min", || same(
        "min",
        parlinalg::min(&r.x).map_err(err)?,
        &r.min
    ));
    op!("norm2", || same(
        "norm2",
        parlinalg::norm2(&r.x).map_err(err)?,
        &r.norm2
    ));
    op!("sum_axis", || same(
        "sum_axis",
        parlinalg::sum_axis(&r.m, Axis(0)).map_err(err)?,
        &r.sum_axis
    ));
    op!("mean_axis", || same(
        "mean_axis",
        parlinalg::mean_axis(&r.m, Axis(1)).map_err(err)?,
        &r.mean_axis
    ));
    op!("max_axis", || same(
        "max_axis",
        parlinalg::max_axis(&r.m, Axis(0)).map_err(err)?,
        &r.max_axis
    ));
    op!("min_axis", || same(
        "min_axis",
        parlinalg::min_axis(&r.m, Axis(1)).map_err(err)?,
        &r.min_axis
    ));
    op!("norm2_axis", || same(
        "norm2_axis",
        parlinalg::norm2_axis(&r.m, Axis(0)).map_err(err)?,
        &r.norm2_axis
    ));
    op!("matmul (n = 8)", || close(
        "matmul (n = 8)",
        &parlinalg::matmul(&r.a8, &r.a8).map_err(err)?,
        &r.a8a8
    ));
    op!("matmul (n = 300)", || close(
        "matmul (n = 300)",
        &parlinalg::matmul(&r.a, &r.b).map_err(err)?,
        &r.ab
    ));
    op!("matmul (2 BLAS threads)", || {
        let c = threads::with_blas_threads(2, || parlinalg::matmul(&r.a, &r.b))
            .map_err(err)?
            .map_err(err)?;
        close("matmul (2 BLAS threads)", &c, &r.ab)
    });
    op!("matmul_into", || {
        let mut out = Array2::zeros((300, 300));
        parlinalg::matmul_into(&r.a, &r.b, &mut out).map_err(err)?;
        close("matmul_into", &out, &r.ab)
    });
    op!("matvec", || close(
        "matvec",
        &parlinalg::matvec(&r.a, &r.rhs).map_err(err)?,
        &r.av
    ));
    op!("dot", || close(
        "dot",
        [&parlinalg::dot(&r.x, &r.y).map_err(err)?],
        [&r.dot]
    ));
    op!("matmul_batch", || close(
        "matmul_batch",
        &parlinalg::matmul_batch(&r.ba, &r.bb).map_err(err)?,
        &r.batch
    ));
    op!("matmul_batch_with (2 outer × 1 BLAS)", || close(
        "matmul_batch_with",
        &parlinalg::matmul_batch_with(&r.ba, &r.bb, &Plan::new(2, 1).map_err(err)?).map_err(err)?,
        &r.batch
    ));
    op!("matmul_batch_with (1 outer × 2 BLAS)", || close(
        "matmul_batch_with",
        &parlinalg::matmul_batch_with(&r.ba, &r.bb, &Plan::new(1, 2).map_err(err)?).map_err(err)?,
        &r.batch
    ));
    op!("solve", || close(
        "solve",
        &parlinalg::solve(&r.a, &r.rhs).map_err(err)?,
        &r.solve
    ));
    op!("inv", || close(
        "inv",
        &parlinalg::inv(&r.a).map_err(err)?,
        &r.inv
    ));
    op!("det", || {
        let d = parlinalg::det(&r.spd).map_err(err)?;
        // A product of 300 pivots: relative.
        if ((d - r.det) / r.det).abs() <= 1e-9 {
            Ok(())
        } else {
            Err(format!("det: {d:e}, want {:e}", r.det))
        }
    });
    op!("cholesky", || close(
        "cholesky",
        &parlinalg::cholesky(&r.spd).map_err(err)?,
        &r.chol
    ));
    op!("eigvalsh", || close(
        "eigvalsh",
        &parlinalg::eigvalsh(&r.spd).map_err(err)?,
        &r.eig
    ));
    op!("singular_values", || close(
        "singular_values",
        &parlinalg::singular_values(&r.a).map_err(err)?,
        &r.sv
    ));
    op!("lstsq", || close(
        "lstsq",
        &parlinalg::lstsq(&r.tall, &r.rhs_tall).map_err(err)?,
        &r.lstsq
    ));
    op!("threads::report", || {
        let report = threads::report().map_err(err)?;
        let text = report.to_string();
        if text.is_empty() {
            return Err("report: empty".into());
        }
        Ok(())
    });
    op!("blas_threads_scope", || {
        let before = threads::blas_threads();
        {
            let _one = threads::blas_threads_scope(1).map_err(err)?;
            if threads::blas_threads() != 1 {
                return Err(format!("scope of 1: {} in force", threads::blas_threads()));
            }
            close(
                "matmul in a scope",
                &parlinalg::matmul(&r.a, &r.b).map_err(err)?,
                &r.ab,
            )?;
        }
        if threads::blas_threads() != before {
            return Err(format!(
                "scope closed: {} in force, {before} before",
                threads::blas_threads()
            ));
        }
        Ok(())
    });
    op!("Plan::run (2 outer)", || {
        let (n, s) = Plan::new(2, 1)
            .map_err(err)?
            .run(|| (rayon::current_num_threads(), parlinalg::sum(&r.x)))
            .map_err(err)?;
        if n != 2 {
            return Err(format!("Plan::run: {n} threads"));
        }
        same("sum in a plan", s.map_err(err)?, &r.sum)
    });
    op!("Plan::enter (2 outer × 1 BLAS)", || {
        let _plan = Plan::new(2, 1).map_err(err)?.enter().map_err(err)?;
        if threads::blas_threads() != 1 {
            return Err(format!("plan of 1 BLAS: {}", threads::blas_threads()));
        }
        same("exp in a plan", parlinalg::exp(&r.x), &r.exp)
    });
    op!("two application threads", || {
        std::thread::scope(|s| {
            let h1 = s.spawn(|| parlinalg::matmul(&r.a, &r.b));
            let h2 = s.spawn(|| parlinalg::sum(&r.x));
            let c = h1.join().map_err(|_| "thread panicked")?.map_err(err)?;
            close("matmul beside sum", &c, &r.ab)?;
            same(
                "sum beside matmul",
                h2.join().map_err(|_| "thread panicked")?.map_err(err)?,
                &r.sum,
            )
        })
    });
    ops
}

/// Under OpenMP OpenBLAS a forked child runs BLAS single-threaded (GNU OpenMP cannot rebuild
/// its team): the count in force there is 1, not the one asked.
fn openmp_child() -> bool {
    parlinalg::blas_library().threading == parlinalg::ThreadingLayer::OpenMp
}

/// Runs every operation here (in the process that will fork, or after it forked).
fn run_all_here(r: &Refs, when: &str) {
    for (name, f) in operations(r) {
        if let Err(e) = f() {
            panic!("{when}: {name}: {e}");
        }
    }
}

/// Multithreaded work of every kind before the fork: every operation on the default pools,
/// the same from two application threads at once (overlapping BLAS callers, both in the outer
/// pool), parlinalg calls from inside a plan's pool, and a plan's pool used by the caller's
/// own rayon code. Every thread has finished (and no BLAS call is running) when it returns.
fn multithreaded_work(r: &Refs) {
    run_all_here(r, "before the fork");
    if std::env::var_os(NO_CONCURRENT_BLAS).is_some() {
        return;
    }
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for (name, f) in operations(r) {
                    // (The scope's check of the count in force assumes no other thread's scope.)
                    if name == "two application threads" || name == "blas_threads_scope" {
                        continue;
                    }
                    if let Err(e) = f() {
                        panic!("before the fork, concurrently: {name}: {e}");
                    }
                }
            });
        }
    });
    let sums = Plan::new(2, 1)
        .unwrap()
        .run(|| {
            use rayon::prelude::*;
            (0..8)
                .into_par_iter()
                .map(|_| parlinalg::sum(&r.x).unwrap())
                .collect::<Vec<_>>()
        })
        .unwrap();
    assert!(sums.iter().all(|s| *s == r.sum));
}

/// What a forked child tells its parent, line by line.
enum Line {
    Start(String),
    Ok(String),
    Fail(String),
    Done,
}

/// The forked child's side: runs `ops` (each with the time it took, against [`PER_CALL`]),
/// reporting through `fd`, then `_exit`s. Never returns.
fn report_ops(fd: i32, ops: &[Op<'_>]) -> ! {
    // SAFETY: `fd` is the write end of a pipe this process owns, used by nothing else.
    let mut w = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let mut code = 0;
    for (name, f) in ops {
        let _ = writeln!(w, "start {name}");
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let took = t.elapsed();
        let line = match outcome {
            Ok(Ok(())) if took <= PER_CALL => format!("ok {name}"),
            Ok(Ok(())) => format!("fail {name}: took {took:?}, over {PER_CALL:?}"),
            Ok(Err(e)) => format!("fail {name}: {e}"),
            Err(_) => format!("fail {name}: panicked"),
        };
        if line.starts_with("fail") {
            code = 1;
        }
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(w, "done");
    drop(w);
    // SAFETY: leaves the forked child at once, without running the parent's atexit handlers
    // or the test harness's code (which assumes threads that do not exist here).
    unsafe { libc::_exit(code) }
}

/// Forks; the child runs `child` (which ends in [`report_ops`], so does not return); the
/// parent watches it: every operation it starts must finish within [`PER_CALL`] and succeed.
/// Returns the names of the operations the child ran.
fn fork_and_watch(child: impl FnOnce(i32)) -> Vec<String> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: no other thread of this process is inside a BLAS call (the callers joined), so
    // OpenBLAS's prepare handler returns; the child only runs parlinalg calls and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: the read end belongs to the parent.
        unsafe { libc::close(fds[0]) };
        child(fds[1]);
        // SAFETY: leaves the forked child at once (`child` should not have returned).
        unsafe { libc::_exit(3) }
    }
    // SAFETY: the write end belongs to the child.
    unsafe { libc::close(fds[1]) };
    // SAFETY: `fds[0]` is the read end, owned from here on by this `File`.
    let reader = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let parsed = if let Some(n) = line.strip_prefix("start ") {
                Line::Start(n.to_owned())
            } else if let Some(n) = line.strip_prefix("ok ") {
                Line::Ok(n.to_owned())
            } else if let Some(n) = line.strip_prefix("fail ") {
                Line::Fail(n.to_owned())
            } else {
                Line::Done
            };
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    let mut ran = Vec::new();
    let mut failures = Vec::new();
    let mut current: Option<(String, Instant)> = None;
    let mut done = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Line::Start(n)) => current = Some((n, Instant::now())),
            Ok(Line::Ok(n)) => {
                current = None;
                ran.push(n);
            }
            Ok(Line::Fail(why)) => {
                current = None;
                failures.push(why);
            }
            Ok(Line::Done) => done = true,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some((name, since)) = &current {
            if since.elapsed() > PER_CALL {
                // SAFETY: `pid` is our own child, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                // SAFETY: as above; reaps it.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
                panic!("the forked child hung in {name}: killed after {PER_CALL:?}");
            }
        }
    }
    let mut status = 0;
    // SAFETY: `pid` is our own child; `status` is a valid out pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        failures.is_empty(),
        "in the forked child: {}",
        failures.join("; ")
    );
    assert!(
        done && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child died (status {status:#x}) after {ran:?}"
    );
    ran
}

/// Forks after multithreaded work; the child runs everything; so does the parent afterwards.
fn scenario_every_operation(r: &Refs) {
    multithreaded_work(r);
    let ran = fork_and_watch(|fd| {
        let ops = operations(r);
        let before = threads::report().unwrap().usage.calls;
        if before != 0 {
            // The counters are the child's own: no call made before the fork is counted.
            eprintln!("the child's usage counts {before} calls made before the fork");
            // SAFETY: leaves the forked child at once (nothing was written to the pipe).
            unsafe { libc::_exit(2) }
        }
        let mut ops = ops;
        if openmp_child() {
            ops.push((
                "OpenMP: single-threaded BLAS in the child",
                Box::new(|| {
                    parlinalg::matmul(&r.a, &r.b).map_err(err)?;
                    match threads::blas_threads() {
                        1 => Ok(()),
                        n => Err(format!("{n} OpenMP threads in a forked child")),
                    }
                }),
            ));
        }
        // A fork of the fork: the grandchild too (last: it runs every operation again).
        ops.push((
            "a fork of the fork",
            Box::new(|| {
                fork_and_watch(|fd| report_ops(fd, &operations(r)));
                Ok(())
            }),
        ));
        report_ops(fd, &ops)
    });
    assert_eq!(
        ran.len(),
        operations(r).len() + 1 + usize::from(openmp_child())
    );
    run_all_here(r, "in the parent after the fork");
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({ "scenario": "every", "operations_in_the_child": ran.len() })
    );
}

/// Forks from inside a scope of 2 on this thread while another thread holds a scope of 1
/// open: the child honours its own scope (2), not the dead thread's; closing it restores the
/// baseline. The parent keeps min(2, 1) = 1 until the other thread closes its scope.
fn scenario_scope(r: &Refs) {
    multithreaded_work(r);
    let baseline = threads::blas_threads_setting().unwrap();
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let _one = threads::blas_threads_scope(1).unwrap();
        ready_tx.send(()).unwrap();
        hold_rx.recv().unwrap();
    });
    ready_rx.recv().unwrap();
    let two = std::cell::Cell::new(Some(threads::blas_threads_scope(2).unwrap()));
    assert_eq!(threads::blas_threads(), 1, "the smaller of the two scopes");
    fork_and_watch(|fd| {
        let mut ops = operations(r);
        ops.insert(
            0,
            (
                "the forking thread's scope",
                Box::new(|| {
                    // The first call that takes the controller applies what survived.
                    let report = threads::report().map_err(err)?;
                    if report.blas_threads_scoped != Some(2) || threads::blas_threads() != 2 {
                        return Err(format!(
                            "scope of 2 in the child: {} in force",
                            threads::blas_threads()
                        ));
                    }
                    close(
                        "matmul in the scope",
                        &parlinalg::matmul(&r.a, &r.b).map_err(err)?,
                        &r.ab,
                    )
                }),
            ),
        );
        // Closing the scope in the child: the baseline, not the dead thread's scope.
        let two = &two;
        ops.push((
            "closing the scope",
            Box::new(move || {
                drop(two.take());
                if threads::blas_threads_setting().map_err(err)? != baseline
                    || threads::report()
                        .map_err(err)?
                        .blas_threads_scoped
                        .is_some()
                {
                    return Err("the baseline is not back".into());
                }
                Ok(())
            }),
        ));
        report_ops(fd, &ops)
    });
    assert_eq!(
        threads::blas_threads(),
        1,
        "the parent's scopes are untouched"
    );
    hold_tx.send(()).unwrap();
    other.join().unwrap();
    assert_eq!(threads::blas_threads(), 2);
    drop(two.take());
    run_all_here(r, "in the parent after the fork");
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({ "scenario": "scope" })
    );
}

/// Forks from inside an entered plan (3 outer × 1 BLAS): in the child the plan still routes
/// parlinalg's work to 3 outer threads (a fresh pool) and 1 BLAS thread; leaving it restores.
fn scenario_plan(r: &Refs) {
    multithreaded_work(r);
    let plan = std::cell::Cell::new(Some(Plan::new(3, 1).unwrap().enter().unwrap()));
    parlinalg::exp(&r.x);
    fork_and_watch(|fd| {
        let mut ops: Vec<Op<'_>> = vec![(
            "the entered plan",
            Box::new(|| {
                // Routed to the plan's pool, rebuilt in the child (the one built before the
                // fork has no workers here: this would hang).
                let mut v = r.x.clone();
                parlinalg::exp_inplace(&mut v);
                same(
                    "sum in the plan",
                    parlinalg::sum(&r.x).map_err(err)?,
                    &r.sum,
                )?;
                if threads::blas_threads() != 1 {
                    return Err(format!("plan's BLAS count: {}", threads::blas_threads()));
                }
                same("exp in the plan", v, &r.exp)
            }),
        )];
        ops.extend(operations(r));
        let plan = &plan;
        ops.push((
            "leaving the plan",
            Box::new(move || {
                drop(plan.take());
                same("exp after the plan", parlinalg::exp(&r.x), &r.exp)
            }),
        ));
        report_ops(fd, &ops)
    });
    drop(plan.take());
    run_all_here(r, "in the parent after the fork");
    println!("CHILD-RESULT {}", serde_json::json!({ "scenario": "plan" }));
}

/// Forks 20 times while two threads take and release every parlinalg lock (scopes, plans of
/// changing sizes that build and evict pools, the batch decision, the report): the children
/// never inherit a held lock.
fn scenario_locks(r: &Refs) {
    multithreaded_work(r);
    let stop = AtomicBool::new(false);
    /// Stops the lock takers also when a fork fails (the scope would wait for them forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop = Stop(&stop);
        for t in 0..2 {
            let stop = &stop;
            s.spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    drop(threads::blas_threads_scope(1 + (i + t) % 2).unwrap());
                    let plan = Plan::new(3 + (i + t) % 5, 1).unwrap().enter().unwrap();
                    drop(plan);
                    let _ = threads::last_batch_decision();
                    let _ = threads::report().unwrap();
                }
            });
        }
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(5));
            fork_and_watch(|fd| {
                let ops = operations(r);
                let some: Vec<Op<'_>> = ops
                    .into_iter()
                    .filter(|(n, _)| {
                        [
                            "sum",
                            "exp",
                            "matmul (n = 300)",
                            "matmul_batch",
                            "blas_threads_scope",
                            "Plan::enter (2 outer × 1 BLAS)",
                            "threads::report",
                        ]
                        .contains(n)
                    })
                    .collect();
                report_ops(fd, &some)
            });
        }
        stop.store(true, Ordering::Relaxed);
    });
    run_all_here(r, "in the parent after the forks");
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({ "scenario": "locks" })
    );
}

/// The child process's side: runs the scenario named by [`CHILD_VAR`].
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    let Some(scenario) = std::env::var_os(CHILD_VAR) else {
        return;
    };
    if std::env::var(LAYER_CHECK).as_deref() == Ok("openmp") {
        let lib = parlinalg::blas_library();
        assert_eq!(
            lib.threading,
            parlinalg::ThreadingLayer::OpenMp,
            "LD_LIBRARY_PATH did not switch to the OpenMP build: {lib:?}"
        );
    }
    let r = Refs::new();
    match scenario.to_str().unwrap() {
        "every" => scenario_every_operation(&r),
        "scope" => scenario_scope(&r),
        "plan" => scenario_plan(&r),
        "locks" => scenario_locks(&r),
        other => panic!("unknown scenario {other}"),
    }
}

/// Runs `scenario` in a child process of the test under [`OVERALL`]; fails unless it passed.
fn run_scenario(scenario: &str, env: &[(&str, &str)]) {
    let out = TestChild::entry()
        .env(CHILD_VAR, scenario)
        .envs(env.iter().copied())
        // The watchdog also kills a forked child that hangs (and holds the output pipes open).
        .own_process_group()
        .timeout(OVERALL)
        .output();
    let r = out.assert_success().result();
    assert_eq!(r["scenario"], scenario, "{out:?}");
}

#[test]
fn every_operation_works_in_a_forked_child_and_in_its_parent() {
    run_scenario("every", &[]);
}

#[test]
fn a_fork_inside_a_scope_keeps_the_forking_threads_scope_only() {
    run_scenario("scope", &[]);
}

#[test]
fn a_fork_inside_an_entered_plan_keeps_the_plan_on_fresh_threads() {
    run_scenario("plan", &[]);
}

/// Twenty forks while two other threads keep taking parlinalg's locks (scopes, plans that build
/// and evict pools, the batch decision, `report()`). Found two hangs in forked children, both
/// fixed: glibc's loader lock held by another thread's `dl_iterate_phdr` (parlinalg's fork
/// handler now holds its loader lock across the fork), and std's thread-start lock held by a
/// pool thread starting or ending (parlinalg's pool threads are now plain pthreads).
#[test]
fn forks_while_other_threads_take_parlinalgs_locks() {
    run_scenario("locks", &[]);
}

#[test]
fn every_operation_works_in_a_forked_child_under_openmp_openblas() {
    let dir = std::path::Path::new(OPENMP_DIR);
    if !dir.join("libopenblas.so.0").is_file() {
        eprintln!(
            "skipped, not passed: no OpenMP OpenBLAS in {OPENMP_DIR} (Debian: apt-get install \
             libopenblas0-openmp)"
        );
        return;
    }
    let path = match std::env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{OPENMP_DIR}:{old}"),
        _ => OPENMP_DIR.to_owned(),
    };
    run_scenario(
        "every",
        &[
            ("LD_LIBRARY_PATH", &path),
            (LAYER_CHECK, "openmp"),
            (NO_CONCURRENT_BLAS, "1"),
        ],
    );
}

/// Set in the OpenMP run: no concurrent BLAS callers before the fork. Debian's OpenMP
/// OpenBLAS 0.3.21 computes wrong products when two application threads call it at once
/// (seen here: `matmul_into` of 300×300 off by the size of the result), fork or no fork; that
/// is not what this file tests.
const NO_CONCURRENT_BLAS: &str = "PARLINALG_TEST_FORK_NO_CONCURRENT_BLAS";

/// Set in the OpenMP run: the child checks it really loaded the OpenMP build.
const LAYER_CHECK: &str = "PARLINALG_TEST_FORK_EXPECT_LAYER";
