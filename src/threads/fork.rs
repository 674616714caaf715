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
//! and OpenBLAS's thread server do the same), once, when the first part of it that owns
//! process state is built. This module knows none of those parts: each registers itself
//! ([`watch`], with its [`ForkHandlers`]) when its state is first built: the controller
//! (`control.rs`), the pool cache (`plan.rs`), the last batch decision (`policy.rs`).
//!
//! - **prepare** (parent, before the fork, on the forking thread): first closes a gate that
//!   calls OpenBLAS may thread wait at, and waits for the ones in flight to finish: pthreads
//!   OpenBLAS's own prepare handler, which runs after this one (handlers registered earlier run
//!   later), joins its workers, and with a call in flight on another thread that join never
//!   returns (the parent would hang in `fork()`). Then it takes parlinalg's locks, each part's
//!   in the order the parts registered, then the loader lock of `openblas::loaded` (glibc does
//!   not reset the lock `dl_iterate_phdr` holds in a child), so no other thread is inside a
//!   critical section when the process is copied. No parlinalg code takes one of these locks
//!   while holding another, so any order is deadlock-free; none is held across a BLAS call.
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
use std::sync::{Mutex, MutexGuard};

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

/// What one part of parlinalg's process state does around a fork.
#[derive(Debug)]
pub(super) struct ForkHandlers {
    registered: AtomicBool,
    /// In `prepare`, after the gate closed and before any lock is taken: waits for what must
    /// not be in flight across the fork.
    quiesce: fn(),
    /// In `prepare`: takes this part's locks. What it returns is kept on the forking thread and
    /// told which side of the fork it is on.
    hold: fn() -> Box<dyn ForkHeld>,
}

impl ForkHandlers {
    /// A part that waits with `quiesce` and holds what `hold` takes.
    pub(super) const fn new(quiesce: fn(), hold: fn() -> Box<dyn ForkHeld>) -> Self {
        ForkHandlers {
            registered: AtomicBool::new(false),
            quiesce,
            hold,
        }
    }

    /// A part with nothing to wait for.
    pub(super) const fn holding(hold: fn() -> Box<dyn ForkHeld>) -> Self {
        Self::new(|| {}, hold)
    }
}

/// What a part holds across the fork. Released (dropped) after the side's method ran, in the
/// reverse order of taking.
pub(super) trait ForkHeld {
    /// In the parent, with the locks still held.
    fn in_parent(&mut self) {}
    /// In the child, with the locks still held: drop what belongs to threads that are gone.
    fn in_child(&mut self) {}
}

impl<T> ForkHeld for MutexGuard<'static, T> {}
impl ForkHeld for () {}

/// The parts registered, in the order their locks are taken.
static PARTS: Mutex<Vec<&'static ForkHandlers>> = Mutex::new(Vec::new());

/// Registers `part` (once; later calls cost one atomic load), and the fork handlers, once per
/// process (inherited by forked children).
pub(super) fn watch(part: &'static ForkHandlers) {
    if part.registered.load(Ordering::Acquire) {
        return;
    }
    let mut parts = lock(&PARTS);
    if !part.registered.swap(true, Ordering::AcqRel) {
        parts.push(part);
    }
    drop(parts);
    register_handlers();
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn register_handlers() {
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
    /// The list of parts: none registers across the fork.
    _parts: MutexGuard<'static, Vec<&'static ForkHandlers>>,
    /// Each part's, in the order taken.
    held: Vec<Box<dyn ForkHeld>>,
    /// No parlinalg call is inside the dynamic loader across the fork (`openblas::loaded`).
    loader: MutexGuard<'static, ()>,
}

impl Held {
    /// Tells each part which side it is on, then releases everything in reverse order.
    fn release(self, side: fn(&mut dyn ForkHeld)) {
        let Held {
            _parts,
            mut held,
            loader,
        } = self;
        for h in &mut held {
            side(h.as_mut());
        }
        drop(loader);
        while let Some(h) = held.pop() {
            drop(h);
        }
    }
}

thread_local! {
    /// Set by `prepare` on the forking thread, taken by `parent` or `child` on the same one.
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

extern "C" fn prepare() {
    // First the calls OpenBLAS may thread: none starts, the ones in flight finish (parlinalg
    // registers this handler after OpenBLAS registered its own, so this one runs first).
    GATE.store(true, Ordering::SeqCst);
    let parts = lock(&PARTS);
    for part in parts.iter() {
        (part.quiesce)();
    }
    let held = parts.iter().map(|part| (part.hold)()).collect();
    let held = Held {
        _parts: parts,
        held,
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
    if let Some(held) = take_held() {
        held.release(|h| h.in_parent());
    }
    GATE.store(false, Ordering::SeqCst);
}

extern "C" fn child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if let Some(held) = take_held() {
        held.release(|h| h.in_child());
    }
    GATE.store(false, Ordering::SeqCst);
}
