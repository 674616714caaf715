//! Fork: what `fork()` leaves dead in the child, and how parlinalg rebuilds it.
//!
//! After `fork()` the child has one thread, the one that called it. Everything parlinalg keeps
//! that belongs to other threads is dead there:
//!
//! - the workers of its rayon pools (the outer pools and the plans' pools): a job handed to
//!   such a pool waits forever (rayon#708; rayon will not fix it);
//! - the open scopes of other threads, and their counts of active BLAS callers: they would
//!   hold the child's BLAS count down (or up) forever;
//! - a `Mutex` another thread held at the moment of fork: locked forever in the child.
//!
//! **Why `pthread_atfork` rather than comparing the process id on each call.** A pid check can
//! notice that the pools are dead, but not repair a lock that a dead thread held: the child
//! cannot tell a mutex held by a thread that no longer exists from one held by a thread it
//! started itself. So parlinalg registers a handler trio, the classic fix (glibc's own malloc
//! and OpenBLAS's thread server do the same), once, when its controller is first built:
//!
//! - **prepare** (parent, before the fork, on the forking thread): first closes a gate that
//!   calls OpenBLAS may thread wait at, and waits for the ones in flight to finish: pthreads
//!   OpenBLAS's own prepare handler, which runs after this one (handlers registered earlier run
//!   later), joins its workers, and with a call in flight on another thread that join never
//!   returns (the parent would hang in `fork()`). Then it takes parlinalg's locks in one fixed
//!   order (the controller's state, the pool cache, the last batch decision, the loader lock of
//!   `openblas::loaded`: glibc does not reset the lock `dl_iterate_phdr` holds in a child), so
//!   no other thread is inside a critical section when the process is copied. No parlinalg code
//!   takes one of these locks while holding another, so any order is deadlock-free; none is
//!   held across a BLAS call.
//! - **parent**: releases them.
//! - **child**: advances the process [`generation`], drops the state of the threads that did
//!   not survive (other threads' scopes, the live caller counts, the overlap clock, the usage
//!   statistics, which are the child's own from then on), then releases the locks.
//!
//! The pools are rebuilt lazily: every handle parlinalg keeps on a pool records the generation
//! it was built in; a handle of an earlier generation is never used, joined or dropped (it is
//! leaked: dropping a rayon pool wakes its workers through their sleep mutexes, which a dead
//! worker may hold), and a fresh pool of the same size is built on first use. The child
//! handler itself only writes memory and unlocks: it does not build pools or call OpenBLAS;
//! the BLAS count the state now gives is applied by the child's first call that takes the
//! controller.
//!
//! OpenBLAS repairs its own pool: its pthreads build registers `blas_thread_shutdown_` as a
//! prepare handler (it joins its workers; the pool restarts on the next threaded call) and
//! re-initialises its buffers in the child. Its OpenMP build registers nothing, and the OpenMP
//! runtime decides (see the README's "Fork" section for what was measured).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::control::{self, ControlHold};
use super::plan::{self, PoolsHold};
use super::policy::{self, BatchHold};

/// How many forks separate this process from the one that first loaded parlinalg (0 there,
/// 1 in its child, 2 in a grandchild, ...). Only the child handler writes it.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Closed by `prepare` until `parent` or `child`: calls OpenBLAS may thread wait at it, so that
/// none is in flight when OpenBLAS's own fork handler joins its workers.
static GATE: AtomicBool = AtomicBool::new(false);

/// Whether a fork is under way (a threadable call must wait for it).
pub(super) fn gate_closed() -> bool {
    GATE.load(Ordering::SeqCst)
}

/// Waits until the fork under way has happened.
pub(super) fn wait_for_open_gate() {
    while gate_closed() {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

/// The current process generation: a pool built in an earlier one has no workers here.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Registers the fork handlers, once per process (inherited by forked children).
pub(crate) fn watch() {
    // Not a `Once`: a fork while another thread ran its closure would leave the child's copy
    // "running" forever, and every later call would wait on it.
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    if REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: the three handlers are `extern "C" fn()` with no arguments, as `pthread_atfork`
    // expects; they live as long as the process (they are in this binary), and none unwinds
    // (no `panic!`, fallible thread-local and `RefCell` accesses only).
    let err = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if err != 0 {
        log::warn!(
            "parlinalg: cannot register its fork handlers (error {err}): a forked child may hang"
        );
    }
}

/// The locks the forking thread holds from `prepare` until `parent` or `child`.
struct Held {
    control: Option<ControlHold>,
    pools: PoolsHold,
    batch: BatchHold,
    /// No parlinalg call is inside the dynamic loader across the fork (`openblas::loaded`).
    loader: std::sync::MutexGuard<'static, ()>,
}

thread_local! {
    /// Set by `prepare` on the forking thread, taken by `parent` or `child` on the same one.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

extern "C" fn prepare() {
    // First the calls OpenBLAS may thread: none starts, the ones in flight finish (parlinalg
    // registers this handler after OpenBLAS registered its own, so this one runs first).
    GATE.store(true, Ordering::SeqCst);
    control::wait_for_threaded_calls();
    // Waits for a controller another thread is building, so that the child does not inherit a
    // half-built one; the lock order is fixed (see the module docs).
    let held = Held {
        control: control::hold_for_fork(),
        pools: plan::hold_for_fork(),
        batch: policy::hold_for_fork(),
        loader: crate::openblas::loader_lock(),
    };
    let _ = HELD.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            *h = Some(held);
        }
    });
}

/// Takes what `prepare` stored on this thread.
fn take_held() -> Option<Held> {
    HELD.try_with(|h| h.try_borrow_mut().ok().and_then(|mut h| h.take()))
        .ok()
        .flatten()
}

extern "C" fn parent() {
    if let Some(mut held) = take_held() {
        if let Some(c) = held.control.as_mut() {
            c.resume_in_parent();
        }
    }
    GATE.store(false, Ordering::SeqCst);
}

extern "C" fn child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if let Some(mut held) = take_held() {
        if let Some(c) = held.control.as_mut() {
            c.rebuild_in_child();
        }
        // Released in reverse order of taking.
        drop(held.loader);
        drop(held.batch);
        drop(held.pools);
        drop(held.control);
    }
    GATE.store(false, Ordering::SeqCst);
}
