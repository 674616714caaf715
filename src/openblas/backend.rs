//! One type per threading build of OpenBLAS, in the manner of threadpoolctl's `LibController`:
//! each knows how a thread count reaches its build, what calls made at once from several
//! application threads do there, what a fork does, which versions are known bad and what
//! parlinalg does about them, and the words `info` and the report print. The thread layer
//! asks the backend and never matches on [`ThreadingLayer`] itself.
//!
//! What each build does was measured, not assumed: `tests/concurrency_stress.rs` (every public
//! operation from six threads at different counts; a single wrong element fails it), run on
//! Debian 12's 0.3.21, Debian 13's 0.3.29 and sid's 0.3.34 in their pthreads, OpenMP and serial
//! builds by `scripts/openblas-matrix.sh`, and the report's K × N grid on each (BENCHMARKS.md,
//! "The OpenBLAS build matrix").
//!
//! **pthreads.** One process-wide count (`openblas_set_num_threads`) and one pool; concurrent
//! multithreaded calls queue on one lock while single-threaded calls run on their callers at
//! once. The controller sets the count under its own lock. OpenBLAS's `pthread_atfork` handler
//! joins the pool's workers, so no threaded call may be in flight at a fork (the thread layer's
//! fork gate). 0.3.28 to 0.3.30 are known upstream to give wrong GEMM results under concurrent
//! multithreaded calls: there parlinalg runs one multithreaded call at a time.
//!
//! **OpenMP.** The count a call runs at is the calling thread's OpenMP `nthreads` (set by
//! `omp_set_num_threads`), but the buffers the call's threads pack into are process-wide
//! (`blas_thread_buffer` in `driver/others/blas_server_omp.c`), sized for one count,
//! `blas_cpu_number`. `num_cpu_avail` (`common_thread.h`) compares the caller's `nthreads` with
//! `blas_cpu_number` on every threaded call and, when they differ, calls
//! `goto_set_num_threads`, which sets the global count and whose `adjust_thread_buffers` frees
//! the buffers of the threads above it. So a call at another count, or any
//! `openblas_set_num_threads`, frees the buffers a concurrent multithreaded call is packing
//! into; the memory is handed out again and two calls write the same bytes: wrong results
//! (measured before this backend existed: 33 wrong of 2,281 checked calls in two unscoped
//! `auto` threads on Debian 12's 0.3.21, wrong results on 0.3.29 and 0.3.34 too). Concurrent
//! multithreaded calls at one count queue (`exec_blas` spins on `blas_buffer_inuse`: one set of
//! buffers), burning a core while they wait. A call whose `nthreads` is 1 returns from
//! `num_cpu_avail` at once and touches nothing shared. From about 0.3.30 (sid's 0.3.34 has it),
//! once anything calls `openblas_set_num_threads`, `num_cpu_avail` returns the global count for
//! every call whatever its caller's `nthreads`, while the OpenMP team is still the caller's
//! `nthreads` in size: a team smaller than the call's parts runs them one after another, and
//! OpenBLAS's level-3 parts wait for each other (measured: a hang in 5 runs of 6).
//!
//! parlinalg therefore never calls `openblas_set_num_threads` in this build. It sets the
//! calling thread's `nthreads` for each call: single-threaded calls (1) run at once;
//! multithreaded calls run one at a time under [`OpenMp`]'s lock, and OpenBLAS moves its global
//! count and buffers to theirs inside the call, while nothing else uses them. If something else
//! called `openblas_set_num_threads` (OpenBLAS exports the flag it keeps), every call runs one
//! at a time at the global count, on a team that large. Waiting on a lock sleeps where
//! OpenBLAS's own queue spins. In a forked child every call runs single-threaded: GNU OpenMP
//! cannot rebuild the parent's team there (GCC bug 60035) and OpenBLAS's OpenMP build registers
//! no fork handler.
//!
//! **serial.** Every call runs on its caller. Debian's serial builds are compiled without
//! OpenBLAS's `USE_LOCKING`, so the buffer allocator is unlocked and concurrent calls can be
//! handed the same buffer (measured: wrong products and least-squares solutions on 0.3.21):
//! parlinalg runs one call at a time. Use the pthreads build with one BLAS thread for outer
//! threads that call BLAS at once.

use std::ffi::c_int;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::ffi;
use super::info::{BlasLibrary, ThreadingLayer};

/// How a thread count reaches a build's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountScope {
    /// One count for the whole process (`openblas_set_num_threads`): the controller sets it.
    ProcessWide,
    /// Each call runs at its caller's own count: the backend sets it as the call enters.
    PerCall,
}

/// What a build does with calls made at once from several application threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concurrency {
    /// Single-threaded calls run at once, one per caller; multithreaded ones queue for one
    /// another. So K outer × N BLAS threads with K, N > 1 runs no faster than one of the two.
    MultithreadedQueue,
    /// Calls cannot safely run at once: parlinalg runs one at a time, and outer threads buy
    /// nothing for BLAS work.
    OneAtATime,
}

/// Held while a call runs: the backend's lock, when the call needs it, and the count the call
/// really runs at (what a helper thread making part of it must adopt).
#[derive(Debug)]
pub(crate) struct CallGuard<'a> {
    /// Held for its drop: the lock is released when the call returns.
    #[allow(dead_code)]
    lock: Option<MutexGuard<'a, usize>>,
    threads: usize,
}

impl CallGuard<'_> {
    /// The count the call runs at.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }
}

/// A threading build of OpenBLAS: see the module's documentation for what each one does.
pub(crate) trait ThreadingBackend: fmt::Debug + Send + Sync {
    /// The build this type is for.
    fn layer(&self) -> ThreadingLayer;

    /// How a count reaches calls here.
    fn count_scope(&self) -> CountScope;

    /// What calls made at once do here.
    fn concurrency(&self) -> Concurrency;

    /// Sets the process-wide count to `n` when it differs (the controller, under its lock);
    /// returns the count OpenBLAS reports afterwards, or `None` where counts are set per call.
    fn set_process_count(&self, n: usize) -> Option<usize>;

    /// Whether a call at `n` threads would need the process-wide count changed first (then the
    /// controller must take its lock); `false` where counts are set per call.
    fn count_differs(&self, n: usize) -> bool;

    /// Prepares the calling thread for one call at `n` threads (`n ≥ 1`, as the thread layer
    /// decided it); the guard is held until the call returns, and says the count the call
    /// really runs at (1 in a serial build or a forked OpenMP child).
    fn enter_call(&self, n: usize) -> CallGuard<'_>;

    /// Whether a call OpenBLAS runs on its caller's thread (below its threading threshold)
    /// must still go through [`Self::enter_call`]: no where the guard of a 1-thread call is
    /// empty (pthreads), yes where even such a call takes a lock or sets a per-thread count.
    fn single_threaded_calls_need_entry(&self) -> bool {
        true
    }

    /// On a helper thread that makes a call for a caller that entered at `n` (and holds its
    /// guard): the helper runs at the caller's count.
    fn adopt_on_helper(&self, n: usize);

    /// The backend's lock, taken by the fork handler so that no call holds it across `fork()`.
    fn hold_for_fork(&self) -> Option<MutexGuard<'_, usize>>;

    /// Called in a forked child (before any call there).
    fn forked(&self);

    /// The known problem of this build at `version`, with what parlinalg does about it.
    fn known_problem(&self, version: Option<(u32, u32, u32)>) -> Option<&'static str>;

    /// One line for `info` and the report: how calls made at once run here, as measured.
    fn describe(&self) -> &'static str;

    /// What `auto` gives, in words, with `all` the count for a caller alone.
    fn auto_words(&self, all: usize) -> String;
}

/// The backend of the loaded library.
pub(crate) fn for_library(lib: &BlasLibrary) -> Box<dyn ThreadingBackend> {
    let version = lib.version_triple();
    match lib.threading {
        ThreadingLayer::OpenMp => Box::new(OpenMp::new()),
        ThreadingLayer::Sequential => Box::new(Serial::default()),
        // An unknown layer gets the pthreads rules: one process-wide count, set only by the
        // controller, and multithreaded calls one at a time.
        ThreadingLayer::Unknown(_) => Box::new(Pthreads::new(true)),
        ThreadingLayer::Pthreads => {
            Box::new(Pthreads::new(version.is_some_and(pthreads_gemm_race)))
        }
    }
}

/// Releases whose pthreads GEMM gave wrong results under concurrent multithreaded calls
/// (reported upstream for 0.3.28 to 0.3.30).
fn pthreads_gemm_race((major, minor, patch): (u32, u32, u32)) -> bool {
    (major, minor) == (0, 3) && (28..=30).contains(&patch)
}

/// Whether this release caps the threads of `?getrf` and `?potrf` by their size itself (0.3.27
/// and later: `CallSize::useful_threads` in the thread layer's `rule.rs`);
/// an unknown version is taken as one that does not.
pub(crate) fn caps_factorisation_threads(version: Option<(u32, u32, u32)>) -> bool {
    version.is_some_and(|v| v >= (0, 3, 27))
}

fn lock(m: &Mutex<usize>) -> MutexGuard<'_, usize> {
    // The guarded value is the count last set, written only after the set succeeded: a panic
    // inside a call cannot leave it inconsistent, so a poisoned lock is used as it is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn c_count(n: usize) -> c_int {
    c_int::try_from(n).expect("thread counts are capped at MAX_THREADS")
}

/// OpenBLAS's own pthreads pool.
#[derive(Debug)]
pub(crate) struct Pthreads {
    /// Multithreaded calls one at a time (a release known to corrupt them).
    serialise_multithreaded: bool,
    one_at_a_time: Mutex<usize>,
}

impl Pthreads {
    fn new(serialise_multithreaded: bool) -> Self {
        Pthreads {
            serialise_multithreaded,
            one_at_a_time: Mutex::new(0),
        }
    }
}

impl ThreadingBackend for Pthreads {
    fn layer(&self) -> ThreadingLayer {
        ThreadingLayer::Pthreads
    }
    fn count_scope(&self) -> CountScope {
        CountScope::ProcessWide
    }
    fn concurrency(&self) -> Concurrency {
        Concurrency::MultithreadedQueue
    }
    fn set_process_count(&self, n: usize) -> Option<usize> {
        if self.count_differs(n) {
            ffi::set_num_threads(c_count(n));
        }
        usize::try_from(ffi::get_num_threads()).ok()
    }
    fn count_differs(&self, n: usize) -> bool {
        usize::try_from(ffi::get_num_threads()).ok() != Some(n)
    }
    fn enter_call(&self, n: usize) -> CallGuard<'_> {
        CallGuard {
            lock: (self.serialise_multithreaded && n > 1).then(|| lock(&self.one_at_a_time)),
            threads: n,
        }
    }
    fn single_threaded_calls_need_entry(&self) -> bool {
        // A 1-thread call's guard holds no lock and sets no count.
        false
    }
    fn adopt_on_helper(&self, _n: usize) {
        // The count is process-wide: the helper already runs at it.
    }
    fn hold_for_fork(&self) -> Option<MutexGuard<'_, usize>> {
        Some(lock(&self.one_at_a_time))
    }
    fn forked(&self) {}
    fn known_problem(&self, version: Option<(u32, u32, u32)>) -> Option<&'static str> {
        version.is_some_and(pthreads_gemm_race).then_some(
            "GEMM gave wrong results under concurrent multithreaded calls in 0.3.28–0.3.30 \
             (upstream): parlinalg runs one multithreaded call at a time here; upgrade to \
             0.3.31 or later",
        )
    }
    fn describe(&self) -> &'static str {
        if self.serialise_multithreaded {
            "one process-wide pool; single-threaded calls run at once, multithreaded calls one \
             at a time (parlinalg's lock: upstream reports wrong GEMM results from concurrent \
             ones in 0.3.28–0.3.30)"
        } else {
            "one process-wide pool; single-threaded calls run at once, concurrent \
             multithreaded calls queue on one lock"
        }
    }
    fn auto_words(&self, all: usize) -> String {
        format!("auto: {all} for a caller alone, 1 while callers overlap")
    }
}

/// `omp_set_num_threads(int)`, the OpenMP runtime's setter of the calling thread's count.
type SetThreadCount = unsafe extern "C" fn(c_int);

/// OpenBLAS built with OpenMP.
#[derive(Debug)]
pub(crate) struct OpenMp {
    /// The OpenMP runtime's `omp_set_num_threads`, found among the loaded objects (the runtime
    /// this OpenBLAS was linked with); `None` if the process has none.
    set_thread_count: Option<SetThreadCount>,
    /// OpenBLAS's `blas_is_num_threads_set_explicitly` (exported since about 0.3.30), when the
    /// library has it: once anything calls `openblas_set_num_threads`, every call runs at the
    /// global count whatever its caller's OpenMP count says.
    explicit_count: Option<*const c_int>,
    /// Held by every multithreaded call (and by every call when counts cannot be set per call);
    /// OpenBLAS changes its global count and buffers only inside a call that holds it.
    multithreaded: Mutex<usize>,
    /// In a forked child: every call single-threaded.
    forked: AtomicBool,
}

// SAFETY: `explicit_count` points to a global of the loaded OpenBLAS, which is never unloaded;
// it is only read (volatile), from any thread, like the library itself does.
unsafe impl Send for OpenMp {}
// SAFETY: as for `Send`: shared reads of a process-global int.
unsafe impl Sync for OpenMp {}

impl OpenMp {
    fn new() -> Self {
        OpenMp {
            set_thread_count: loaded_symbol("omp_set_num_threads")
                // SAFETY: `omp_set_num_threads` is `void omp_set_num_threads(int)` in every
                // OpenMP runtime.
                .map(|p| unsafe { std::mem::transmute::<*mut libc::c_void, SetThreadCount>(p) }),
            explicit_count: loaded_symbol("blas_is_num_threads_set_explicitly")
                .map(|p| p.cast_const().cast::<c_int>()),
            multithreaded: Mutex::new(0),
            forked: AtomicBool::new(false),
        }
    }

    /// Sets the calling thread's OpenMP count, without touching OpenBLAS's global count.
    fn set_this_thread(set: SetThreadCount, n: usize) {
        // SAFETY: `set` is the runtime's `omp_set_num_threads` (found by name among the loaded
        // objects, which stay loaded): it takes any int and writes the calling thread's ICV.
        unsafe { set(c_count(n)) }
    }

    /// Whether calls now run at the global count whatever their caller's OpenMP count
    /// (someone called `openblas_set_num_threads`, or the runtime cannot be reached).
    fn global_count_only(&self) -> bool {
        self.set_thread_count.is_none()
            || self.explicit_count.is_some_and(|flag| {
                // SAFETY: `flag` is the address of OpenBLAS's exported `int` (found by name
                // among the loaded objects, which stay loaded); an aligned int read.
                unsafe { std::ptr::read_volatile(flag) != 0 }
            })
    }
}

/// The address of a symbol of the objects loaded in the process, if one has it.
fn loaded_symbol(name: &str) -> Option<*mut libc::c_void> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: RTLD_DEFAULT searches the objects already loaded; the name is NUL-terminated.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

impl ThreadingBackend for OpenMp {
    fn layer(&self) -> ThreadingLayer {
        ThreadingLayer::OpenMp
    }
    fn count_scope(&self) -> CountScope {
        CountScope::PerCall
    }
    fn concurrency(&self) -> Concurrency {
        Concurrency::MultithreadedQueue
    }
    fn set_process_count(&self, _n: usize) -> Option<usize> {
        // Never `openblas_set_num_threads` here: since about 0.3.30 it makes every later call
        // ignore its caller's count, and in every version it frees buffers in use.
        None
    }
    fn count_differs(&self, _n: usize) -> bool {
        false
    }
    fn enter_call(&self, n: usize) -> CallGuard<'_> {
        let n = if self.forked.load(Ordering::Relaxed) {
            1
        } else {
            n
        };
        if self.global_count_only() {
            // Every call runs at OpenBLAS's global count: one at a time, and on a team at least
            // that large (a smaller team would run the call's parts one after another, and
            // OpenBLAS's level-3 parts wait for each other: a hang).
            let guard = lock(&self.multithreaded);
            let global = usize::try_from(ffi::get_num_threads()).unwrap_or(1).max(1);
            if let Some(set) = self.set_thread_count {
                Self::set_this_thread(set, global);
            }
            return CallGuard {
                lock: Some(guard),
                threads: global,
            };
        }
        let set = self.set_thread_count.expect("checked by global_count_only");
        if n == 1 {
            // `num_cpu_avail` returns 1 for it before reading or writing anything shared.
            Self::set_this_thread(set, 1);
            return CallGuard {
                lock: None,
                threads: 1,
            };
        }
        // OpenBLAS moves its global count (and frees or allocates thread buffers) to this one
        // inside the call, in `num_cpu_avail`: safe, as no other multithreaded call is in
        // flight (they hold this lock) and single-threaded ones never touch those buffers.
        let guard = lock(&self.multithreaded);
        Self::set_this_thread(set, n);
        CallGuard {
            lock: Some(guard),
            threads: n,
        }
    }
    fn adopt_on_helper(&self, n: usize) {
        if let Some(set) = self.set_thread_count {
            Self::set_this_thread(set, n);
        }
    }
    fn hold_for_fork(&self) -> Option<MutexGuard<'_, usize>> {
        Some(lock(&self.multithreaded))
    }
    fn forked(&self) {
        self.forked.store(true, Ordering::Relaxed);
    }
    fn known_problem(&self, _version: Option<(u32, u32, u32)>) -> Option<&'static str> {
        self.global_count_only().then_some(
            "openblas_set_num_threads was called in this process: this OpenMP OpenBLAS now \
             runs every call at its global count, so parlinalg runs one call at a time",
        )
    }
    fn describe(&self) -> &'static str {
        "a count per calling thread but one set of thread buffers: calls at different counts \
         corrupt each other and multithreaded calls queue, so parlinalg runs multithreaded \
         calls one at a time; single-threaded calls run at once"
    }
    fn auto_words(&self, all: usize) -> String {
        format!("auto: {all} for a caller alone, 1 while callers overlap")
    }
}

/// OpenBLAS built without threads.
#[derive(Debug, Default)]
pub(crate) struct Serial {
    one_at_a_time: Mutex<usize>,
}

impl ThreadingBackend for Serial {
    fn layer(&self) -> ThreadingLayer {
        ThreadingLayer::Sequential
    }
    fn count_scope(&self) -> CountScope {
        CountScope::PerCall
    }
    fn concurrency(&self) -> Concurrency {
        Concurrency::OneAtATime
    }
    fn set_process_count(&self, _n: usize) -> Option<usize> {
        None
    }
    fn count_differs(&self, _n: usize) -> bool {
        false
    }
    fn enter_call(&self, _n: usize) -> CallGuard<'_> {
        CallGuard {
            lock: Some(lock(&self.one_at_a_time)),
            threads: 1,
        }
    }
    fn adopt_on_helper(&self, _n: usize) {}
    fn hold_for_fork(&self) -> Option<MutexGuard<'_, usize>> {
        Some(lock(&self.one_at_a_time))
    }
    fn forked(&self) {}
    fn known_problem(&self, _version: Option<(u32, u32, u32)>) -> Option<&'static str> {
        None
    }
    fn describe(&self) -> &'static str {
        "no threads, and an unlocked buffer allocator (built without USE_LOCKING): calls made \
         at once can corrupt each other, so parlinalg runs one call at a time"
    }
    fn auto_words(&self, _all: usize) -> String {
        "auto: 1 (a serial build)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pthreads_race_window_is_0_3_28_to_0_3_30() {
        assert!(!pthreads_gemm_race((0, 3, 27)));
        assert!(pthreads_gemm_race((0, 3, 28)));
        assert!(pthreads_gemm_race((0, 3, 30)));
        assert!(!pthreads_gemm_race((0, 3, 31)));
        assert!(!pthreads_gemm_race((0, 4, 29)));
        let p = Pthreads::new(true);
        assert!(p.known_problem(Some((0, 3, 29))).is_some());
        assert!(p.known_problem(Some((0, 3, 21))).is_none());
        assert!(p.enter_call(2).lock.is_some(), "serialised in the window");
        assert!(Pthreads::new(false).enter_call(2).lock.is_none());
        assert_eq!(p.enter_call(3).threads(), 3);
    }

    #[test]
    fn the_loaded_build_has_its_backend() {
        let lib = BlasLibrary::query();
        let backend = for_library(&lib);
        if !matches!(lib.threading, ThreadingLayer::Unknown(_)) {
            assert_eq!(backend.layer(), lib.threading);
        }
        // A single-threaded call never needs more than the serial build's lock.
        let guard = backend.enter_call(1);
        assert_eq!(
            guard.lock.is_some(),
            backend.concurrency() == Concurrency::OneAtATime
        );
        assert_eq!(guard.threads(), 1);
    }
}
