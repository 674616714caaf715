//! How many threads BLAS and the outer pool run: decided, scoped, explained.
//!
//! Two kinds of threads share the cores: OpenBLAS's own, inside each call (**BLAS threads**,
//! N), and parlinalg's rayon pool around the calls (**outer threads**, K). Each setting is
//! resolved once, highest precedence first, and keeps its [`Source`]:
//!
//! | setting | 1. code | 2. parlinalg env | 3. standard env | 4. default |
//! |---|---|---|---|---|
//! | BLAS threads | [`set_blas_threads`], [`blas_threads_scope`], [`Plan`] | `PARLINALG_BLAS_THREADS` | `OPENBLAS_NUM_THREADS`, `GOTO_NUM_THREADS`, `OMP_NUM_THREADS` | `auto` |
//! | outer threads | [`set_outer_threads`], [`Plan`] | `PARLINALG_OUTER_THREADS` | `RAYON_NUM_THREADS` | [`Cores::detect`] |
//! | machine-wide budget (`auto` only) | — | `PARLINALG_BUDGET` (`on`/`off`), `PARLINALG_BUDGET_GROUP` | — | on, group `default` |
//! | cores of this rank | — | — | launcher variables ([`LOCAL_SIZE_VARS`], [`CPUS_PER_TASK_VARS`]) | affinity ∩ cgroup quota |
//!
//! A variable holding junk (`abc`, `-1`, `0` where zero means nothing, `1e9`, an empty string, a
//! count above the maximum) is an [`crate::Error::InvalidEnv`] naming it,
//! returned by every parlinalg operation (BLAS, LAPACK, elementwise maps and reductions; the
//! infallible maps such as [`exp`](crate::exp) panic with it, their `try_` forms return it) —
//! never a silent fallback. Values that are not UTF-8 are junk, only ASCII whitespace is
//! trimmed, and every entry of an `OMP_NUM_THREADS` list must be a positive count (the first,
//! the outermost team, is the BLAS count).
//!
//! A count above the usable cores (say `OPENBLAS_NUM_THREADS=64` on 2 cores, which OpenBLAS
//! itself caps to 2 at load) is kept as asked, up to OpenBLAS's compiled maximum (above it:
//! an error), and [`report`] warns ([`Warning::MoreThreadsThanCores`]).
//!
//! **`auto`** (the default for BLAS threads) never oversubscribes and knows the backend: a
//! caller alone gets every usable core; while several application threads make calls that
//! OpenBLAS would thread, each call runs single-threaded (OpenBLAS would otherwise make their
//! multithreaded calls queue: on one lock in its pthreads build, on one set of thread buffers
//! in its OpenMP build). What each build does with concurrent calls, and how parlinalg keeps
//! them correct there (one multithreaded call at a time under OpenMP, one call at a time in the
//! serial build), is the README's "OpenBLAS builds and versions".
//!
//! **Processes share a machine-wide budget** (`budget/`): under `auto`, a call OpenBLAS would
//! thread, made while no other thread of the process makes one, takes free slots (one `flock`ed
//! file per CPU of its affinity mask, in `/dev/shm/parlinalg-<uid>/<group>/`) and runs one
//! thread per slot, at least one; it never blocks, and a killed process's slots come back at
//! once (the kernel drops its locks). Slots are leased (checked at most every 2 ms, given back
//! 10 ms after the last call), a holder gives its extra slots back while another process wants
//! one. Fixed counts, scopes, plans and deterministic mode run the count asked, whatever the
//! budget says, but take the free slots they can too, so that other processes see the cores
//! in use.
//! [`BUDGET_VAR`] (`PARLINALG_BUDGET=off`) turns it off, [`BUDGET_GROUP_VAR`] separates sets of
//! processes; [`report`] shows it ([`BudgetReport`]). The README's "Processes" section says why
//! this and not TBB's IPC semaphores or make's jobserver.
//!
//! **Launchers** (`launcher.rs`): under MPI or Slurm, [`Cores::detect`] gives this rank its share
//! of the node: its own affinity mask or per-task CPU count ([`CPUS_PER_TASK_VARS`]) if it has
//! one, else the limits divided by the local rank count ([`LOCAL_SIZE_VARS`]), never divided
//! twice; [`Cores::why`] says which variable decided, and a rank bound to one core is said to be.
//! Launcher variables only hint: one that cannot be used is ignored and reported
//! ([`Cores::ignored_hints`], [`Warning::LauncherHintIgnored`]), never an error.
//!
//! **Results under `auto` can depend on what other threads do.** OpenBLAS rounds differently
//! on one and on several threads, and `auto` picks the count from the other callers, so four
//! concurrent products may differ in the last bits from the same products made alone. Set
//! [`DETERMINISTIC_VAR`] (`PARLINALG_DETERMINISTIC=1`) to make every call get the same count
//! whatever else runs (the bits then depend only on the inputs; concurrent callers queue on
//! pthreads OpenBLAS's lock), or fix the count ([`set_blas_threads`], a variable).
//!
//! **Scopes** ([`blas_threads_scope`], [`with_blas_threads`], [`Plan::enter`], [`Plan::run`])
//! nest LIFO within a thread; across threads, overlapping scopes give the smallest of each
//! thread's innermost request, and the baseline is back when the last one closes, in any order.
//!
//! **Fork.** pthreads OpenBLAS joins its workers in a `pthread_atfork` handler: a `fork()` while
//! another thread is inside a threaded BLAS call would hang the parent there. parlinalg's own
//! handler runs first: it holds back new parlinalg calls OpenBLAS may thread and waits for those
//! in flight, so a fork beside parlinalg's calls is safe (BLAS calls made around parlinalg are
//! still the program's to keep out of a fork). In the forked child parlinalg rebuilds what it
//! owns before its first call there: its rayon pools (fresh ones on plain pthreads; the dead
//! ones are never joined), its controller (other threads' scopes and live caller counts
//! dropped; the forking thread's own scopes and entered plans kept, and their guards restore as
//! usual) and its locks (taken across the fork). Under OpenMP OpenBLAS a forked child runs BLAS
//! single-threaded (GNU OpenMP cannot rebuild its team there). Not repaired: your own rayon
//! pools and rayon's global pool (rayon#708), and a fork made from a rayon worker thread. The
//! README's "Fork" section has the full rules.
//!
//! **Plans** run K outer × N BLAS threads; [`plan_for_batch`] is the default policy's choice,
//! used by [`matmul_batch`](crate::matmul_batch). [`report`] says what runs and what is wrong.
//! parlinalg counts concurrent BLAS callers; when they ask for more threads than cores it logs
//! one warning through the `log` crate (it never prints).

mod budget;
mod config;
mod control;
mod fork;
mod plan;
mod policy;
mod report;
mod rule;
mod runtime;
mod scope;
mod stack;
mod worker;

pub use crate::env::{
    BLAS_THREADS_VAR, BUDGET_GROUP_VAR, BUDGET_VAR, CPUS_PER_TASK_VARS, DETERMINISTIC_VAR,
    LOCAL_SIZE_VARS, OUTER_THREADS_VAR, RAYON_VAR, STANDARD_BLAS_VARS,
};
pub use crate::openblas::loaded_blas_libraries;
pub use budget::{budget_dir, BudgetReport};
pub use config::{BlasThreads, Cores, Setting, Source, MAX_THREADS};
pub use control::UsageReport;
pub use plan::{Plan, PlanGuard, PLAN_POOL_CACHE};
pub use policy::{last_batch_decision, plan_for_batch, BatchDecision, PlanChoice};
pub use report::{report, Report, Warning};
pub use scope::{blas_threads_scope, with_blas_threads, BlasThreadsGuard};

pub(crate) use control::CallerThreads;
pub(crate) use policy::{batch_task_len, record_batch_decision};
pub(crate) use rule::CallSize;
pub(crate) use runtime::{enter, Runtime};

use crate::Result;
use config::check_thread_count;

/// Reads and validates the thread environment now (it is otherwise read on first use), and
/// applies it to OpenBLAS.
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) for the first variable that holds junk.
///
/// ```
/// parlinalg::threads::init()?;
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn init() -> Result<()> {
    control::control().map(|_| ())
}

/// The BLAS thread count in force now (`openblas_get_num_threads`).
///
/// With the pthreads build of OpenBLAS before 0.3.27, while a thread is inside a `?getrf` or
/// `?potrf` small enough to use one thread, the count is lowered to 1 (the README's "Threads"
/// section, "Factorisations on the threads they can use"), and this reads 1.
///
/// ```
/// assert!(parlinalg::threads::blas_threads() >= 1);
/// ```
pub fn blas_threads() -> usize {
    control::blas_threads_now()
}

/// The largest BLAS thread count the loaded OpenBLAS accepts: its compiled `MAX_THREADS`
/// (capped at [`MAX_THREADS`]).
///
/// ```
/// let max = parlinalg::threads::blas_max_threads();
/// assert!(max >= 1);
/// assert!(parlinalg::threads::set_blas_threads(max + 1).is_err());
/// ```
pub fn blas_max_threads() -> usize {
    control::max_blas_threads()
}

/// Fixes the BLAS thread count from code (the baseline; open scopes still apply on top, and
/// the baseline takes over when they close).
///
/// # Errors
/// [`Error::InvalidThreadCount`](crate::Error::InvalidThreadCount) for 0 or a count above [`blas_max_threads`] (OpenBLAS would
/// silently clamp it); [`Error::InvalidEnv`](crate::Error::InvalidEnv) if the environment holds junk.
///
/// ```
/// use parlinalg::threads::{blas_threads, set_blas_threads, set_blas_threads_auto};
///
/// set_blas_threads(1)?;
/// assert_eq!(blas_threads(), 1);
/// assert!(set_blas_threads(0).is_err());
/// set_blas_threads_auto()?;
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn set_blas_threads(n: usize) -> Result<()> {
    let control = control::control()?;
    check_thread_count("BLAS threads", n, control.max_blas)?;
    control.set_baseline(BlasThreads::Fixed(n));
    Ok(())
}

/// Returns BLAS threads to the `auto` policy (from code).
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) if the environment holds junk.
///
/// ```
/// use parlinalg::threads::{blas_threads_setting, set_blas_threads_auto, BlasThreads, Source};
///
/// set_blas_threads_auto()?;
/// let setting = blas_threads_setting()?;
/// assert_eq!(setting.value, BlasThreads::Auto);
/// assert_eq!(setting.source, Source::Code);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn set_blas_threads_auto() -> Result<()> {
    control::control()?.set_baseline(BlasThreads::Auto);
    Ok(())
}

/// The BLAS thread policy in force (outside scopes) and where it came from.
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) if the environment holds junk.
///
/// ```
/// let setting = parlinalg::threads::blas_threads_setting()?;
/// println!("BLAS threads: {:?}, from {}", setting.value, setting.source);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn blas_threads_setting() -> Result<Setting<BlasThreads>> {
    Ok(control::control()?.baseline())
}

/// Sets the outer thread count (the size of parlinalg's rayon pool) from code.
///
/// # Errors
/// [`Error::InvalidThreadCount`](crate::Error::InvalidThreadCount) for 0 or above [`MAX_THREADS`]; [`Error::InvalidEnv`](crate::Error::InvalidEnv).
///
/// ```
/// parlinalg::threads::set_outer_threads(2)?;
/// assert_eq!(parlinalg::threads::outer_threads()?.value, 2);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn set_outer_threads(n: usize) -> Result<()> {
    check_thread_count("outer threads", n, MAX_THREADS)?;
    control::control()?.set_outer(n);
    Ok(())
}

/// The outer thread count and where it came from.
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) if the environment holds junk.
///
/// ```
/// let outer = parlinalg::threads::outer_threads()?;
/// assert!(outer.value >= 1);
/// println!("outer threads: {}, from {}", outer.value, outer.source);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn outer_threads() -> Result<Setting<usize>> {
    Ok(control::control()?.outer())
}
