//! The default policy: how to split a batch of products between outer threads (K) and BLAS
//! threads (N), knowing the backend.
//!
//! What the build does with concurrent calls is its backend's (`openblas/backend.rs`); the
//! policy reads it as [`Concurrency`]:
//! - **pthreads and OpenMP OpenBLAS** ([`Concurrency::MultithreadedQueue`]): single-threaded
//!   calls run at once, concurrent multithreaded ones queue (pthreads on one lock, OpenMP on
//!   one set of thread buffers and parlinalg's lock); K > 1 with N > 1 serialises and leaves
//!   cores idle, so joblib's rule (K callers × cores / K threads each) is wrong on both. Either
//!   outer (K = cores, N = 1) or inner (K = 1, N = cores, or the loaded OpenBLAS's
//!   `MAX_THREADS` where that is fewer), by a cost model: outer wastes cores when the batch does
//!   not divide evenly, inner wastes them on products too small to split.
//! - **serial OpenBLAS** ([`Concurrency::OneAtATime`]): calls cannot run at once, so neither
//!   kind of thread helps: serial.
//!
//! Tiny batches run serially (rayon's fork/join costs more than they do), and a batch started
//! from inside a parallel region runs serially on its thread (never multiply someone else's K).

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use super::config::{BlasThreads, Source};
use super::control::control;
use super::fork::{self, ForkHandlers};
use super::plan::Plan;
use crate::openblas::backend::Concurrency;
use crate::Result;

/// Work (floating-point operations) of one outer task of a batch, at least: consecutive
/// products are grouped into even tasks of about this much, ~60 µs on one core. Smaller tasks would cost
/// more in rayon's splitting than a 16×16 product does; larger ones leave one thread idle
/// while another finishes its last task.
pub(crate) const BATCH_TASK_FLOPS: f64 = 2.0e6;

/// Below this many floating-point operations for the whole batch, run serially: two tasks of
/// [`BATCH_TASK_FLOPS`], less cannot be split, and handing a batch to the pool and waiting for
/// it costs tens of microseconds, as much as a batch that small computes (the break-even is
/// measured by `cargo bench --bench threads -- threshold`, BENCHMARKS.md, "The thread layer").
pub(crate) const SERIAL_BELOW_FLOPS: f64 = 2.0 * BATCH_TASK_FLOPS;

/// Products per outer task for `batch` products of `flops_per_product` each: the batch cut
/// into as many even tasks of at least [`BATCH_TASK_FLOPS`] as it holds (at least one).
pub(crate) fn batch_task_len(batch: usize, flops_per_product: f64) -> usize {
    let tasks = (batch as f64 * flops_per_product / BATCH_TASK_FLOPS)
        .floor()
        .clamp(1.0, batch.max(1) as f64) as usize;
    batch.max(1).div_ceil(tasks)
}

/// Product size (flops) at which splitting one product over BLAS threads reaches half of its
/// ideal efficiency in the cost model, eff(f) = f / (f + this). Calibrated on the efficiency of
/// a 256³ product on 2 BLAS threads (BENCHMARKS.md, "The thread layer").
pub(crate) const INNER_HALF_EFFICIENCY_FLOPS: f64 = 8.0e6;

/// What the policy decided for a batch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanChoice {
    /// The plan.
    pub plan: Plan,
    /// Why, in one sentence.
    pub reason: String,
}

impl std::fmt::Display for PlanChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.plan, self.reason)
    }
}

/// A batch decision with its problem, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BatchDecision {
    /// Products in the batch.
    pub batch: usize,
    /// Each product is m×k times k×n.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
    /// The choice.
    pub choice: PlanChoice,
}

static LAST_BATCH: Mutex<Option<BatchDecision>> = Mutex::new(None);

/// The last decision's lock, held by the forking thread across `fork()` (see `fork.rs`).
static FORK: ForkHandlers = ForkHandlers::holding(|| Box::new(last_batch()));

/// The last decision, locked; registers the lock with the fork handlers on first use.
fn last_batch() -> MutexGuard<'static, Option<BatchDecision>> {
    fork::watch(&FORK);
    LAST_BATCH.lock().unwrap_or_else(|p| p.into_inner())
}

/// The last decision [`matmul_batch`](crate::matmul_batch) made in this process.
///
/// ```
/// use parlinalg::ndarray::Array3;
///
/// let a = Array3::<f64>::ones((8, 32, 32));
/// parlinalg::matmul_batch(&a, &a)?;
/// let decision = parlinalg::threads::last_batch_decision().expect("a batch ran");
/// println!("{decision:?}");
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn last_batch_decision() -> Option<BatchDecision> {
    last_batch().clone()
}

pub(crate) fn record_batch_decision(d: BatchDecision) {
    *last_batch() = Some(d);
}

/// What the policy needs to know about the process. Pure data, so the policy is testable.
#[derive(Debug, Clone)]
pub(crate) struct PolicyInput {
    pub cores: usize,
    /// The most BLAS threads the loaded OpenBLAS runs (its compiled `MAX_THREADS`): an inner
    /// plan asks for at most this many, even on a machine with more cores.
    pub max_blas: usize,
    pub outer_limit: usize,
    /// What the loaded build does with concurrent calls.
    pub concurrency: Concurrency,
    /// The build's name, for the reasons given.
    pub build: String,
    /// BLAS threads the user fixed (scope, code or environment), with where it came from.
    pub fixed_blas: Option<(usize, String)>,
    /// Called from inside a rayon pool.
    pub nested: bool,
}

/// The plan [`matmul_batch`](crate::matmul_batch) would use for `batch` products of
/// `m×k · k×n` here and now.
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) if a thread variable holds junk.
///
/// ```
/// let choice = parlinalg::threads::plan_for_batch(64, 256, 256, 256)?;
/// println!("{choice}");
/// assert!(choice.plan.threads_asked() <= parlinalg::threads::Cores::detect().count);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn plan_for_batch(batch: usize, m: usize, k: usize, n: usize) -> Result<PlanChoice> {
    let c = control()?;
    let fixed_blas = match (c.scoped(), c.baseline()) {
        (Some(s), _) => Some((s, "a scope".to_owned())),
        (None, b) => match b.value {
            BlasThreads::Fixed(n) => Some((n, source_text(&b.source))),
            BlasThreads::Auto => None,
        },
    };
    let input = PolicyInput {
        cores: c.cores.count,
        max_blas: c.max_blas,
        outer_limit: super::plan::current_outer_threads()?,
        concurrency: c.backend.concurrency(),
        build: c.backend.layer().to_string(),
        fixed_blas,
        nested: rayon::current_thread_index().is_some(),
    };
    Ok(choose_batch_plan(&input, batch, m, k, n))
}

fn source_text(s: &Source) -> String {
    match s {
        Source::Code => "code".into(),
        Source::Env(name) => name.clone(),
        Source::Default(why) => why.clone(),
    }
}

/// The policy itself. Pure.
pub(crate) fn choose_batch_plan(
    input: &PolicyInput,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
) -> PlanChoice {
    let plan = |outer: usize, blas: usize| Plan::from_trusted(outer.max(1), blas.max(1));
    let per_product = 2.0 * m as f64 * k as f64 * n as f64;
    let total = per_product * batch as f64;
    let cores = input.cores.max(1);
    let task_len = batch_task_len(batch, per_product);
    let tasks = batch.div_ceil(task_len);
    let k_max = tasks.min(cores).min(input.outer_limit).max(1);

    if input.nested {
        return PlanChoice {
            plan: plan(1, 1),
            reason: "called from inside a parallel region: serial, single-threaded BLAS, so \
                     the enclosing threads are not multiplied"
                .into(),
        };
    }
    if total < SERIAL_BELOW_FLOPS {
        return PlanChoice {
            plan: plan(1, 1),
            reason: format!(
                "{total:.1e} flops in all: cheaper serial than split (threshold {SERIAL_BELOW_FLOPS:.0e})"
            ),
        };
    }
    let build = &input.build;
    if input.concurrency == Concurrency::OneAtATime {
        return PlanChoice {
            plan: plan(1, 1),
            reason: format!(
                "{build} OpenBLAS runs one call at a time (parlinalg's lock: its concurrent \
                 calls are not safe), and threads none: serial"
            ),
        };
    }
    if let Some((nb, from)) = &input.fixed_blas {
        return fixed_blas_choice(build, *nb, from, cores, k_max);
    }
    let t_outer = (tasks.div_ceil(k_max) * task_len) as f64;
    let inner_blas = cores.min(input.max_blas).max(1);
    outer_or_inner(build, batch, (m, k, n), inner_blas, k_max, t_outer)
}

/// BLAS threads fixed by the user at `nb`: all the outer threads when `nb` is 1, else one
/// (concurrent multithreaded calls queue for one another).
fn fixed_blas_choice(build: &str, nb: usize, from: &str, cores: usize, k_max: usize) -> PlanChoice {
    let outer = if nb == 1 { k_max } else { 1 };
    let why_one = if nb > 1 {
        format!(" ({build} OpenBLAS queues concurrent multithreaded calls)")
    } else {
        String::new()
    };
    PlanChoice {
        plan: Plan::from_trusted(outer.max(1), nb.max(1)),
        reason: format!(
            "BLAS threads fixed at {nb} by {from}; {outer} outer thread(s) keep K·N within {cores} cores{why_one}"
        ),
    }
}

/// The batch on `k_max` outer threads of 1 BLAS thread (taking `t_outer`, in products), or one
/// product after another on `inner_blas` BLAS threads (every core, or the loaded OpenBLAS's
/// `MAX_THREADS` where that is fewer), whichever the cost model says is faster; never both,
/// since concurrent multithreaded calls queue for one another.
fn outer_or_inner(
    build: &str,
    batch: usize,
    (m, k, n): (usize, usize, usize),
    inner_blas: usize,
    k_max: usize,
    t_outer: f64,
) -> PlanChoice {
    let per_product = 2.0 * m as f64 * k as f64 * n as f64;
    // One threshold, OpenBLAS's, stated once (`CallSize::may_thread`).
    let threaded = super::rule::CallSize::Gemm { m, n, k }.may_thread();
    let eff = if threaded {
        per_product / (per_product + INNER_HALF_EFFICIENCY_FLOPS)
    } else {
        1.0 / inner_blas as f64 // OpenBLAS runs such products on one thread anyway
    };
    let t_inner = batch as f64 / (inner_blas as f64 * eff);
    let share = 100.0 * t_inner / t_outer;
    if k_max == 1 || t_inner < 0.97 * t_outer {
        PlanChoice {
            plan: Plan::from_trusted(1, inner_blas),
            reason: format!(
                "inner: {batch} product(s) one after another on {inner_blas} BLAS threads \
                 (model: {share:.0}% of outer's time; {build} OpenBLAS would serialise K > 1 × N > 1)"
            ),
        }
    } else {
        PlanChoice {
            plan: Plan::from_trusted(k_max.max(1), 1),
            reason: format!(
                "outer: {k_max} threads each run whole products on 1 BLAS thread \
                 (model: inner would take {share:.0}% of outer's time; {build} OpenBLAS \
                 would serialise K > 1 × N > 1)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREADED: Concurrency = Concurrency::MultithreadedQueue;
    const SERIAL: Concurrency = Concurrency::OneAtATime;

    fn input(concurrency: Concurrency) -> PolicyInput {
        PolicyInput {
            cores: 2,
            max_blas: 64,
            outer_limit: 2,
            concurrency,
            build: "test".into(),
            fixed_blas: None,
            nested: false,
        }
    }

    fn choose(i: &PolicyInput, batch: usize, n: usize) -> Plan {
        choose_batch_plan(i, batch, n, n, n).plan
    }

    #[test]
    fn never_asks_more_threads_than_cores() {
        for layer in [THREADED, SERIAL] {
            for cores in [1, 2, 3, 8, 64] {
                for batch in [1, 2, 3, 7, 100] {
                    for n in [4, 16, 64, 256, 1024, 4096] {
                        let i = PolicyInput {
                            cores,
                            outer_limit: cores,
                            ..input(layer)
                        };
                        let p = choose(&i, batch, n);
                        assert!(
                            p.threads_asked() <= cores,
                            "{layer:?} {cores} {batch} {n}: {p}"
                        );
                    }
                }
            }
        }
    }

    /// On more cores than the loaded OpenBLAS runs threads (Debian's 0.3.21: `MAX_THREADS`
    /// 64; servers have 96–192 CPUs), an inner plan asks for the library's maximum, not the
    /// cores: a plan of more BLAS threads than that is refused when it runs
    /// (`InvalidThreadCount`), so `matmul_batch` would fail wherever inner wins.
    #[test]
    fn inner_plans_stay_within_the_librarys_threads() {
        for layer in [THREADED, SERIAL] {
            for (cores, max_blas) in [(96, 64), (192, 64), (4096, 64), (8, 4), (3, 1)] {
                for batch in [1, 2, 3, 7, 100] {
                    for n in [4, 16, 64, 256, 1024, 4096] {
                        let i = PolicyInput {
                            cores,
                            max_blas,
                            outer_limit: cores,
                            ..input(layer)
                        };
                        let p = choose(&i, batch, n);
                        assert!(
                            p.blas_threads() <= max_blas && p.threads_asked() <= cores,
                            "{layer:?} {cores} cores, max {max_blas}, {batch} × {n}: {p}"
                        );
                    }
                }
            }
        }
        // One large product on 96 cores goes inner, on all the threads the library has.
        let i = PolicyInput {
            cores: 96,
            max_blas: 64,
            outer_limit: 96,
            ..input(THREADED)
        };
        assert_eq!(choose(&i, 1, 4096), Plan::from_trusted(1, 64));
    }

    #[test]
    fn pthreads_never_nests() {
        let i = input(THREADED);
        for batch in [1, 2, 3, 50] {
            for n in [16, 64, 256, 1024] {
                let p = choose(&i, batch, n);
                assert!(p.outer_threads() == 1 || p.blas_threads() == 1, "{p}");
            }
        }
    }

    #[test]
    fn pthreads_big_batches_go_outer_single_products_inner() {
        let i = input(THREADED);
        assert_eq!(choose(&i, 64, 256), Plan::from_trusted(2, 1));
        assert_eq!(choose(&i, 64, 1024), Plan::from_trusted(2, 1));
        assert_eq!(choose(&i, 1, 1024), Plan::from_trusted(1, 2));
        // 3 large products on 2 cores: outer needs 2 rounds, inner 1.5: inner.
        assert_eq!(choose(&i, 3, 2048), Plan::from_trusted(1, 2));
        // 3 small products: inner cannot split them well: outer.
        assert_eq!(choose(&i, 3, 100), Plan::from_trusted(2, 1));
        // Many tiny products: grouped into tasks of ~BATCH_TASK_FLOPS, outer.
        assert_eq!(choose(&i, 10_922, 16), Plan::from_trusted(2, 1));
    }

    #[test]
    fn a_build_that_queues_multithreaded_calls_never_nests_at_any_core_count() {
        for cores in [2, 8, 16, 64] {
            let i = PolicyInput {
                cores,
                outer_limit: cores,
                ..input(THREADED)
            };
            for batch in [1, 2, 3, 50, 1000] {
                for n in [16, 64, 256, 512, 1024] {
                    let p = choose(&i, batch, n);
                    assert!(
                        p.outer_threads() == 1 || p.blas_threads() == 1,
                        "{cores}: {p}"
                    );
                }
            }
            assert_eq!(choose(&i, 1, 1024), Plan::from_trusted(1, cores));
            assert_eq!(choose(&i, 100 * cores, 256), Plan::from_trusted(cores, 1));
        }
    }

    #[test]
    fn a_build_that_runs_one_call_at_a_time_gets_serial_plans() {
        let i = PolicyInput {
            cores: 8,
            outer_limit: 8,
            fixed_blas: Some((1, "code".into())),
            ..input(SERIAL)
        };
        for batch in [1, 4, 100] {
            assert_eq!(choose(&i, batch, 512), Plan::serial());
        }
        assert!(choose_batch_plan(&i, 100, 512, 512, 512)
            .reason
            .contains("one call at a time"));
    }

    #[test]
    fn tiny_and_nested_batches_are_serial() {
        let i = input(THREADED);
        assert_eq!(choose(&i, 4, 8), Plan::serial());
        // 250 products of 16³: 2 MFLOP in all, one task: serial (slower split than serial).
        assert_eq!(choose(&i, 250, 16), Plan::serial());
        assert_eq!(choose(&i, 500, 16), Plan::from_trusted(2, 1));
        let nested = PolicyInput {
            nested: true,
            ..input(THREADED)
        };
        assert_eq!(choose(&nested, 64, 1024), Plan::serial());
    }

    #[test]
    fn fixed_blas_threads_are_honoured() {
        let i = PolicyInput {
            fixed_blas: Some((2, "OPENBLAS_NUM_THREADS".into())),
            ..input(THREADED)
        };
        let c = choose_batch_plan(&i, 64, 256, 256, 256);
        assert_eq!(c.plan, Plan::from_trusted(1, 2));
        assert!(c.reason.contains("OPENBLAS_NUM_THREADS"), "{}", c.reason);
        let i = PolicyInput {
            fixed_blas: Some((1, "code".into())),
            ..input(THREADED)
        };
        assert_eq!(choose(&i, 64, 256), Plan::from_trusted(2, 1));
    }

    #[test]
    fn batches_cut_into_tasks_of_at_least_the_task_work() {
        for batch in [1, 2, 3, 10, 61, 500, 1003, 10_922, 1 << 20] {
            for per_product in [8.0, 8192.0, 1.2e5, 7.0e5, 2.0e6, 3.3e7, 2.0e9] {
                let len = batch_task_len(batch, per_product);
                assert!((1..=batch).contains(&len), "{batch} {per_product}: {len}");
                let tasks = batch.div_ceil(len);
                let total = batch as f64 * per_product;
                if tasks > 1 {
                    // Full tasks do at least the task work, and there are no more of them
                    // than the batch holds (the last one may be shorter).
                    assert!(
                        len as f64 * per_product >= BATCH_TASK_FLOPS,
                        "{batch} {per_product}"
                    );
                    assert!(
                        tasks as f64 <= total / BATCH_TASK_FLOPS,
                        "{batch} {per_product}"
                    );
                } else {
                    assert_eq!(len, batch);
                }
            }
        }
        assert_eq!(batch_task_len(1003, 8192.0), 251);
        assert_eq!(batch_task_len(250, 8192.0), 250);
    }

    #[test]
    fn the_outer_limit_caps_k() {
        let i = PolicyInput {
            cores: 8,
            outer_limit: 3,
            ..input(THREADED)
        };
        assert_eq!(choose(&i, 100, 100).outer_threads(), 3);
    }
}
