//! Plans: K outer threads (a rayon pool) × N BLAS threads, run as a closure or entered as a
//! guard.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};

use rayon::ThreadPool;
use serde::Serialize;

use super::config::{check_thread_count, MAX_THREADS};
use super::control::{control, max_blas_threads};
use super::fork::{self, ForkHandlers};
use super::scope::{blas_threads_scope, BlasThreadsGuard};
use super::stack::Stack;
use crate::{Error, Result};

/// K outer threads and N BLAS threads per call.
///
/// ```
/// use parlinalg::threads::Plan;
///
/// // Two outer threads, each making single-threaded BLAS calls.
/// let plan = Plan::new(2, 1)?;
/// let total: usize = plan.run(|| {
///     use rayon::prelude::*;
///     (0..8).into_par_iter().map(|_| parlinalg::threads::blas_threads()).sum()
/// })?;
/// assert_eq!(total, 8);
/// # Ok::<(), parlinalg::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Plan {
    outer: usize,
    blas: usize,
}

impl Plan {
    /// A plan of `outer` threads each making BLAS calls of `blas` threads.
    ///
    /// # Errors
    /// [`Error::InvalidThreadCount`] for 0 or absurd counts (beyond
    /// [`MAX_THREADS`] or OpenBLAS's compiled maximum).
    ///
    /// ```
    /// use parlinalg::threads::Plan;
    ///
    /// let plan = Plan::new(2, 1)?;
    /// assert_eq!((plan.outer_threads(), plan.blas_threads(), plan.threads_asked()), (2, 1, 2));
    /// assert!(Plan::new(0, 1).is_err());
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn new(outer: usize, blas: usize) -> Result<Plan> {
        check_thread_count("outer threads", outer, MAX_THREADS)?;
        check_thread_count("BLAS threads", blas, max_blas_threads())?;
        Ok(Plan { outer, blas })
    }

    /// A plan from counts the caller already validated (≥ 1, within the limits).
    pub(crate) fn from_trusted(outer: usize, blas: usize) -> Plan {
        debug_assert!(outer >= 1 && blas >= 1);
        Plan { outer, blas }
    }

    /// Serial: one outer thread, one BLAS thread.
    ///
    /// ```
    /// assert_eq!(parlinalg::threads::Plan::serial().threads_asked(), 1);
    /// ```
    pub fn serial() -> Plan {
        Plan { outer: 1, blas: 1 }
    }

    /// K, the outer (rayon) threads.
    ///
    /// ```
    /// assert_eq!(parlinalg::threads::Plan::new(3, 1)?.outer_threads(), 3);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn outer_threads(&self) -> usize {
        self.outer
    }

    /// N, the BLAS threads per call.
    ///
    /// ```
    /// assert_eq!(parlinalg::threads::Plan::new(1, 2)?.blas_threads(), 2);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn blas_threads(&self) -> usize {
        self.blas
    }

    /// Busy threads the plan asks for at most: K × N.
    ///
    /// ```
    /// assert_eq!(parlinalg::threads::Plan::new(2, 2)?.threads_asked(), 4);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn threads_asked(&self) -> usize {
        self.outer * self.blas
    }

    /// Runs `f` inside this plan's rayon pool (so `rayon` parallel iterators and parlinalg's
    /// own parallel operations inside use K threads), with N BLAS threads per call. Restores the
    /// previous BLAS count afterwards, also on panic (the panic is resumed).
    ///
    /// # Errors
    /// As [`blas_threads_scope`](super::blas_threads_scope), and
    /// [`Error::ThreadPool`] if the pool cannot be built.
    ///
    /// ```
    /// use parlinalg::threads::Plan;
    ///
    /// let threads = Plan::new(2, 1)?.run(|| rayon::current_num_threads())?;
    /// assert_eq!(threads, 2);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        let pool = pool(self.outer)?;
        let _blas = blas_threads_scope(self.blas)?;
        Ok(pool.install(f))
    }

    /// Enters the plan on this thread until the guard drops: BLAS calls use N threads, and
    /// parlinalg's parallel operations started from this thread run on K threads. (Your own
    /// rayon code runs in K threads only inside [`Plan::run`].)
    ///
    /// # Errors
    /// As [`Plan::run`].
    ///
    /// ```
    /// let _plan = parlinalg::threads::Plan::new(1, 1)?.enter()?;
    /// assert_eq!(parlinalg::threads::blas_threads(), 1);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn enter(&self) -> Result<PlanGuard> {
        let pool = pool(self.outer)?;
        let blas = blas_threads_scope(self.blas)?;
        let id = NEXT_OVERRIDE.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        OUTER_OVERRIDE.with(|o| o.borrow_mut().push(id, PoolHandle::new(self.outer, pool)));
        Ok(PlanGuard { id, _blas: blas })
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} outer × {} BLAS", self.outer, self.blas)
    }
}

/// An entered [`Plan`]; dropping it leaves this plan, whatever the order other plans of this
/// thread are left in (the innermost plan still entered applies).
#[must_use = "the plan is left as soon as the guard is dropped"]
#[derive(Debug)]
pub struct PlanGuard {
    id: u64,
    _blas: BlasThreadsGuard,
}

impl Drop for PlanGuard {
    fn drop(&mut self) {
        // Its own entry, not the innermost one (which may belong to a plan entered later).
        OUTER_OVERRIDE.with(|o| o.borrow_mut().remove(self.id));
    }
}

thread_local! {
    /// Pools of the plans entered on this thread, innermost last.
    static OUTER_OVERRIDE: RefCell<Stack<PoolHandle>> = RefCell::new(Stack::default());
    /// The id of the next plan entered on this thread.
    static NEXT_OVERRIDE: Cell<u64> = const { Cell::new(0) };
}

/// How many rayon pools parlinalg keeps for reuse (the most recently used sizes). A pool that
/// leaves the cache is dropped once no plan holds it, and its threads exit, so however many
/// distinct plans a program makes, the threads alive stay bounded.
pub const PLAN_POOL_CACHE: usize = 4;

/// A handle on one of parlinalg's pools that knows the process [generation](super::fork) it
/// was built in. In a forked child the pool's workers do not exist: the handle is then never
/// used, and dropping it leaks the pool (dropping a rayon pool wakes its workers through
/// their sleep mutexes, which a dead worker may have held at the fork).
#[derive(Debug)]
pub(super) struct PoolHandle {
    threads: usize,
    generation: u64,
    pool: ManuallyDrop<Arc<ThreadPool>>,
}

impl PoolHandle {
    fn new(threads: usize, pool: Arc<ThreadPool>) -> Self {
        PoolHandle {
            threads,
            generation: fork::generation(),
            pool: ManuallyDrop::new(pool),
        }
    }

    /// Whether the pool's workers are alive: it was built in this process, not before a fork.
    fn alive(&self) -> bool {
        self.generation == fork::generation()
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        if self.alive() {
            // SAFETY: `pool` is dropped only here, once, and never used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.pool) };
        }
    }
}

/// parlinalg's pools for reuse, most recently used last.
static POOLS: Mutex<Vec<PoolHandle>> = Mutex::new(Vec::new());

/// The pool cache's lock, held by the forking thread across `fork()` (see `fork.rs`).
static FORK: ForkHandlers =
    ForkHandlers::holding(|| Box::new(POOLS.lock().unwrap_or_else(|p| p.into_inner())));

/// The rayon pool of `threads` threads, from a small cache of the most recently used sizes
/// ([`PLAN_POOL_CACHE`]). In a forked child, the pools built before the fork are forgotten
/// (leaked) and fresh ones built.
pub(crate) fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    fork::watch(&FORK);
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    if pools.first().is_some_and(|h| !h.alive()) {
        // A forked child's first use: every cached pool is dead (the handles leak them).
        pools.clear();
    }
    if let Some(i) = pools.iter().position(|h| h.threads == threads) {
        let hit = pools.remove(i);
        let p = Arc::clone(&hit.pool);
        pools.push(hit);
        return Ok(p);
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("parlinalg-{threads}-{i}"))
        .spawn_handler(super::worker::spawn)
        .build()
        .map_err(|e| Error::ThreadPool {
            threads,
            source: crate::error::PoolBuildError::new(e),
        })?;
    let built = Arc::new(built);
    pools.push(PoolHandle::new(threads, Arc::clone(&built)));
    if pools.len() > PLAN_POOL_CACHE {
        // Dropping the last handle tells the pool's threads to exit (rayon does not join them).
        pools.remove(0);
    }
    Ok(built)
}

/// The pool of the innermost plan entered on this thread. A plan entered before a fork (this
/// thread forked from inside it) gets a fresh pool of its size in the child: the handle built
/// before the fork is replaced (and leaked), so the guard still leaves the plan as usual.
pub(super) fn entered_pool() -> Option<Arc<ThreadPool>> {
    OUTER_OVERRIDE.with(|o| {
        let mut o = o.borrow_mut();
        let top = o.top_mut()?;
        if !top.alive() {
            // Without a pool (threads cannot be spawned), the caller falls back to the
            // configured outer pool, which reports the same error.
            *top = PoolHandle::new(top.threads, pool(top.threads).ok()?);
        }
        Some(Arc::clone(&top.pool))
    })
}

/// The outer thread count parlinalg's parallel operations would use if started here.
pub(crate) fn current_outer_threads() -> Result<usize> {
    if rayon::current_thread_index().is_some() {
        return Ok(rayon::current_num_threads());
    }
    if let Some(p) = entered_pool() {
        return Ok(p.current_num_threads());
    }
    Ok(control()?.outer().value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where an operation's parallel work runs now.
    fn in_outer_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
        crate::threads::enter().unwrap().in_outer_pool(f)
    }

    #[test]
    fn plans_validate_their_counts() {
        assert!(Plan::new(0, 1).is_err());
        assert!(Plan::new(1, 0).is_err());
        assert!(Plan::new(MAX_THREADS + 1, 1).is_err());
        assert!(Plan::new(1, 100_000).is_err());
        let p = Plan::new(3, 2).unwrap();
        assert_eq!(
            (p.outer_threads(), p.blas_threads(), p.threads_asked()),
            (3, 2, 6)
        );
        assert_eq!(p.to_string(), "3 outer × 2 BLAS");
    }

    #[test]
    fn run_uses_k_threads_and_pools_are_cached() {
        let p = Plan::new(3, 1).unwrap();
        assert_eq!(p.run(rayon::current_num_threads).unwrap(), 3);
        assert!(Arc::ptr_eq(&pool(3).unwrap(), &pool(3).unwrap()));
    }

    #[test]
    fn entered_plans_route_parlinalg_work_lifo() {
        let outer = Plan::new(2, 1).unwrap().enter().unwrap();
        assert_eq!(in_outer_pool(rayon::current_num_threads), 2);
        {
            let _inner = Plan::new(3, 1).unwrap().enter().unwrap();
            assert_eq!(in_outer_pool(rayon::current_num_threads), 3);
            assert_eq!(current_outer_threads().unwrap(), 3);
        }
        assert_eq!(in_outer_pool(rayon::current_num_threads), 2);
        drop(outer);
    }

    #[test]
    fn each_plan_guard_leaves_its_own_plan_in_any_order() {
        let default = in_outer_pool(rayon::current_num_threads);
        let outer = Plan::new(2, 1).unwrap().enter().unwrap();
        let inner = Plan::new(3, 1).unwrap().enter().unwrap();
        // Dropping the outer plan first leaves the inner one in force.
        drop(outer);
        assert_eq!(in_outer_pool(rayon::current_num_threads), 3);
        assert_eq!(current_outer_threads().unwrap(), 3);
        drop(inner);
        assert_eq!(in_outer_pool(rayon::current_num_threads), default);
        // Three deep, the middle one first.
        let a = Plan::new(2, 1).unwrap().enter().unwrap();
        let b = Plan::new(3, 1).unwrap().enter().unwrap();
        let c = Plan::new(4, 1).unwrap().enter().unwrap();
        drop(b);
        assert_eq!(in_outer_pool(rayon::current_num_threads), 4);
        drop(c);
        assert_eq!(
            in_outer_pool(rayon::current_num_threads),
            2,
            "b must not come back"
        );
        drop(a);
        assert_eq!(in_outer_pool(rayon::current_num_threads), default);
    }
}
