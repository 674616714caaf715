//! The one owner of OpenBLAS's thread count in this process.
//!
//! Every parlinalg BLAS and LAPACK call goes through [`blas_call`], every scope through
//! [`Control::push_scope`] / [`Control::pop_scope`], every setter through [`Control`], so the
//! count OpenBLAS runs is always derived from one state, by one rule (`Control::rule`):
//!
//! 1. While scopes are open (on any thread), the count is the smallest of the innermost scope of
//!    each thread that has one: in OpenBLAS's pthreads build the count is process-wide, and
//!    the smallest request is the only one that oversubscribes nobody.
//! 2. Otherwise the baseline: a fixed count (code or environment), or `auto` (see
//!    [`BlasThreads::Auto`]): every usable core for a caller that is alone; while several
//!    application threads make calls big enough for OpenBLAS to thread, one thread per call
//!    (concurrent multithreaded calls queue for one another on every threaded build).
//!
//! When the last scope closes, the baseline is back, whatever order threads closed theirs in
//! (the fix for threadpoolctl's issue #205, where the last thread to leave restored a stale
//! value). Each guard removes its own entry, never the top of a stack, and nesting is linear
//! (see `stack.rs`).
//!
//! The rule holds at every instant: every write of a process-wide count (pthreads build)
//! happens under the mutex and is derived from the state. The lock-free fast path only
//! *reads*: when the count in force is already the one the call gets, it runs without the
//! lock; when the count would have to change, it takes the lock and decides there. How the
//! decided count then reaches the call, and which calls may overlap, is the backend's
//! (`openblas/backend.rs`): in the OpenMP build each call sets its own thread's count and
//! multithreaded calls run one at a time; in the serial build every call does.
//!
//! One exception to "the count the state gives": a factorisation that can use one thread
//! (`?getrf` under 20 000 elements, `?potrf` under 128 columns, in f64) on a pthreads OpenBLAS
//! before 0.3.27, which would run it on every thread of the count (1.2–1.9× slower on 2).
//! The state then holds the count *lowered* to 1 for it ([`Control::call`]): it closes a gate
//! at which the other calls OpenBLAS may thread wait, and lowers the count only once none is
//! in flight, so no call ever runs at a count other than the one it was given.

use std::cell::Cell;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::budget::{self, Budget, BudgetHold};
use super::config::{BlasThreads, Cores, Limits, Setting, Source, ThreadConfig, MAX_THREADS};
use super::fork::{self, ForkHandlers, ForkHeld};
use super::rule::{self, CallSize, RuleInputs, OVERLAP_WINDOW};
use super::stack::Stack;
use crate::openblas::backend::{self, CallGuard, CountScope, ThreadingBackend};
use crate::openblas::info::BlasLibrary;
use crate::{Error, Result};

/// The open scopes: per thread that has one, its stack of requested counts. Every operation
/// costs O(threads with scopes), amortised, whatever the depth or the order of removal.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    threads: Vec<(ThreadId, Stack<usize>)>,
    /// Thread slots visited plus stack entries pushed and popped: the work done so far.
    work: u64,
}

impl Scopes {
    fn slot(&mut self, thread: ThreadId) -> Option<usize> {
        let i = self.threads.iter().position(|(t, _)| *t == thread);
        self.work += i.map_or(self.threads.len(), |i| i + 1) as u64;
        i
    }

    fn push(&mut self, thread: ThreadId, id: u64, threads: usize) {
        let i = self.slot(thread).unwrap_or_else(|| {
            self.threads.push((thread, Stack::default()));
            self.threads.len() - 1
        });
        let stack = &mut self.threads[i].1;
        let before = stack.steps();
        stack.push(id, threads);
        self.work += stack.steps() - before;
    }

    /// Removes scope `id`, looking on `thread` first (a guard is dropped on its own thread).
    fn remove(&mut self, thread: ThreadId, id: u64) {
        let mut found = None;
        let own = self.slot(thread);
        for i in own.into_iter().chain(0..self.threads.len()) {
            let stack = &mut self.threads[i].1;
            let before = stack.steps();
            let removed = stack.remove(id);
            self.work += 1 + stack.steps() - before;
            if removed {
                found = Some(i);
                break;
            }
        }
        if let Some(i) = found {
            if self.threads[i].1.is_empty() {
                self.threads.swap_remove(i);
            }
        }
    }

    /// Forgets the scopes of every thread but `thread` (in a forked child, the others are gone
    /// and their guards will never drop).
    fn keep_only(&mut self, thread: ThreadId) {
        self.threads.retain(|(t, _)| *t == thread);
    }

    /// The smallest of each thread's innermost scope.
    fn threads(&self) -> Option<usize> {
        self.threads
            .iter()
            .filter_map(|(_, s)| s.top().copied())
            .min()
    }

    /// Entries held, over every thread (for tests of the cost).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.threads.iter().map(|(_, s)| s.held()).sum()
    }
}

/// Concurrent BLAS use since the process started (in a forked child: since the fork), over
/// the calls OpenBLAS may thread (the others run on their caller's thread and ask for no BLAS
/// thread).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UsageReport {
    /// BLAS and LAPACK calls made through parlinalg.
    pub calls: u64,
    /// Calls that started while another thread was in a call OpenBLAS may thread.
    pub overlapping_calls: u64,
    /// Most callers inside BLAS at once.
    pub peak_callers: usize,
    /// Most threads asked at once by concurrent callers.
    pub peak_threads_asked: usize,
    /// `peak_threads_asked / cores`: above 1 means the cores were oversubscribed.
    pub peak_oversubscription: f64,
}

#[derive(Debug)]
struct State {
    baseline: Setting<BlasThreads>,
    outer: Setting<usize>,
    scopes: Scopes,
    next_scope_id: u64,
    /// The first `openblas_set_num_threads(asked)` that left another count `(asked, got)`.
    set_ignored: Option<(usize, usize)>,
    /// When two callers last overlapped in calls OpenBLAS may thread.
    last_overlap: Option<Instant>,
    /// Set in a forked child: the count the state gives is applied at the next lock (the
    /// fork handler itself does not call OpenBLAS).
    reapply: bool,
    /// Where the process-wide count stands for the factorisations it is lowered for
    /// ([`Control::call`]).
    lowering: Lowering,
    /// Calls waiting at the lowering gate: no factorisation lowers the count, or joins a
    /// lowering, while one waits (so a stream of factorisations cannot starve them).
    waiting_at_gate: usize,
}

/// The process-wide count lowered to 1 for factorisations that OpenBLAS before 0.3.27 would
/// thread although they can use one thread ([`Control::call`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lowering {
    /// The count is the state's.
    Off,
    /// A factorisation closed the gate and waits for the calls in flight to finish.
    Draining,
    /// The count is 1 for `holders` factorisations in flight; other calls OpenBLAS may thread
    /// wait at the gate.
    Lowered { holders: usize },
}

/// Counters every call updates without the lock.
#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    overlapping_calls: AtomicU64,
    /// Callers inside a BLAS call now (low 32 bits) and the threads they asked for, summed
    /// (high 32 bits): one atomic, so a call updates both at once.
    load: AtomicU64,
    /// Callers inside a call OpenBLAS may thread.
    active_threaded: AtomicUsize,
    peak_callers: AtomicUsize,
    peak_threads_asked: AtomicUsize,
    warned: AtomicBool,
}

impl Counters {
    /// Back to zero: in a forked child the callers counted are gone, and the statistics are
    /// the child's own from then on.
    fn reset(&self) {
        self.calls.store(0, Relaxed);
        self.overlapping_calls.store(0, Relaxed);
        self.load.store(0, Relaxed);
        self.active_threaded.store(0, Relaxed);
        self.peak_callers.store(0, Relaxed);
        self.peak_threads_asked.store(0, Relaxed);
        self.warned.store(false, Relaxed);
    }
}

/// The process-wide controller.
#[derive(Debug)]
pub(crate) struct Control {
    state: Mutex<State>,
    counters: Counters,
    /// The count a threadable call gets without taking the lock: whatever else runs (a fixed
    /// count or an open scope), or 0 when the lock must decide.
    fast_any: AtomicUsize,
    /// The same for a caller alone (`auto` with no recent overlap), or 0.
    fast_alone: AtomicUsize,
    pub cores: Cores,
    /// What differs between OpenBLAS's threading builds (`openblas/backend.rs`).
    pub backend: Box<dyn ThreadingBackend>,
    /// Calls below OpenBLAS's threading threshold run straight through [`Control::call`]
    /// (the backend needs nothing for them): the fast path of tiny products.
    small_calls_direct: bool,
    /// The count is process-wide and OpenBLAS older than 0.3.27, which does not cap the
    /// threads of `?getrf` and `?potrf` by their size: the controller lowers the count to 1 for
    /// those that can use one thread ([`Control::call`]).
    lowers_count_for_caps: bool,
    /// Closed (true) while the count is lowered or being lowered: calls OpenBLAS may thread
    /// wait at it, as at the fork gate.
    lowered_gate: AtomicBool,
    /// Signalled when the lowering changes (lowered, or back off).
    lowering_changed: Condvar,
    pub max_blas: usize,
    /// `PARLINALG_DETERMINISTIC=1`: `auto` gives every call the solitary count.
    pub deterministic: bool,
    /// The machine-wide budget this process shares with other processes (`budget/`).
    pub budget: Budget,
}

static CONTROL: OnceLock<std::result::Result<Control, Error>> = OnceLock::new();

/// The controller, created on first use from the environment (read once). An invalid variable
/// makes every call that needs the controller fail with the same [`Error::InvalidEnv`].
#[inline]
pub(crate) fn control() -> Result<&'static Control> {
    // Built: one atomic load (the fork handlers were registered before the build).
    if let Some(Ok(control)) = CONTROL.get() {
        return Ok(control);
    }
    control_slow()
}

#[cold]
fn control_slow() -> Result<&'static Control> {
    // Registered before the controller is built (one atomic load afterwards), so that a fork
    // while another thread builds it waits for the build (see `hold_for_fork`).
    fork::watch(&FORK);
    CONTROL
        .get_or_init(Control::from_process)
        .as_ref()
        .map_err(Clone::clone)
}

/// What the controller does around a fork (`fork.rs`).
static FORK: ForkHandlers = ForkHandlers::new(wait_for_threaded_calls, hold_for_fork);

/// The controller's lock, held by the forking thread across `fork()` (see `fork.rs`).
struct ControlHold {
    control: &'static Control,
    state: MutexGuard<'static, State>,
    /// Taken after `state` (no code holds both otherwise).
    budget: BudgetHold,
    /// The backend's lock, taken last: its holders are inside a call and take no other lock.
    _backend: Option<MutexGuard<'static, usize>>,
}

/// Waits until no call OpenBLAS may thread is in flight (the fork handler, with its gate closed
/// so that no new one starts). pthreads OpenBLAS's own fork handler joins its workers: with a
/// call in flight on another thread that join never returns, and the parent hangs in `fork()`.
fn wait_for_threaded_calls() {
    let Some(Ok(control)) = CONTROL.get() else {
        return;
    };
    while control.counters.active_threaded.load(SeqCst) != 0 {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Waits for the controller (if another thread is building it) and takes its locks; nothing
/// when the environment made it an error (there is no state to protect then).
fn hold_for_fork() -> Box<dyn ForkHeld> {
    let Ok(control) = control() else {
        return Box::new(());
    };
    let state = control.lock();
    let budget = control.budget.hold_for_fork();
    Box::new(ControlHold {
        control,
        state,
        budget,
        _backend: control.backend.hold_for_fork(),
    })
}

impl ForkHeld for ControlHold {
    /// The calls that waited at the fork gate were paused, not idle (see
    /// [`budget::Budget::resume_after_fork`]).
    fn in_parent(&mut self) {
        self.control.budget.resume_after_fork();
    }

    /// Keeps only what the forking thread owns (its own open scopes and plans stay valid, and
    /// their guards restore as usual), and forgets every other thread's scopes and live calls.
    fn in_child(&mut self) {
        let me = std::thread::current().id();
        let s = &mut *self.state;
        s.scopes.keep_only(me);
        // No factorisation is in flight in the child: its caller did not fork.
        s.lowering = Lowering::Off;
        s.waiting_at_gate = 0;
        self.control.lowered_gate.store(false, SeqCst);
        s.last_overlap = None;
        s.reapply = true;
        self.control.counters.reset();
        self.control.backend.forked();
        self.control.refresh_fast(s);
        budget::rebuild_in_child(&self.control.budget, &mut self.budget);
    }
}

impl Control {
    fn from_process() -> Result<Control> {
        // Before any call OpenBLAS may thread (`openblas/heap.rs` says why).
        crate::openblas::heap::prime_malloc_thresholds();
        let lib = BlasLibrary::query();
        let config = ThreadConfig::resolve(&crate::env::process, &Limits::read(), lib.max_threads)?;
        let ThreadConfig {
            blas,
            outer,
            deterministic,
            budget,
            budget_cpus,
            cores,
            max_blas,
        } = config;
        let budget = Budget::new(budget, budget_cpus, cores.count.min(max_blas));
        let backend = backend::for_library(&lib);
        let control = Control {
            state: Mutex::new(State {
                baseline: blas,
                outer,
                scopes: Scopes::default(),
                next_scope_id: 0,
                set_ignored: None,
                last_overlap: None,
                reapply: false,
                lowering: Lowering::Off,
                waiting_at_gate: 0,
            }),
            counters: Counters::default(),
            fast_any: AtomicUsize::new(0),
            fast_alone: AtomicUsize::new(0),
            cores,
            small_calls_direct: !backend.single_threaded_calls_need_entry(),
            lowers_count_for_caps: backend.count_scope() == CountScope::ProcessWide
                && !backend::caps_factorisation_threads(lib.version_triple()),
            lowered_gate: AtomicBool::new(false),
            lowering_changed: Condvar::new(),
            backend,
            max_blas,
            deterministic,
            budget,
        };
        {
            let mut state = control.lock();
            // Whether OpenBLAS takes a count at all, found once here (where the count is set
            // anyway, before any other thread can use the controller) so that the report only
            // reads: a count different from the one in force, then the one the state gives.
            let now = blas_threads_now();
            if control.backend.count_scope() == CountScope::ProcessWide && control.max_blas >= 2 {
                control.apply(&mut state, if now == 1 { 2 } else { 1 });
            }
            control.settle(&mut state);
        }
        Ok(control)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent (every update is
        // a few plain field writes), so a poisoned lock is used as it is.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.reapply {
            // The first lock in a forked child: the count of what survived the fork.
            s.reapply = false;
            self.settle(&mut s);
        }
        s
    }

    /// [`rule::blas_count`] in the current state.
    fn rule(&self, s: &State, overlapping: bool) -> usize {
        rule::blas_count(self.inputs(s), overlapping)
    }

    /// Whether [`Self::rule`] depends on the other callers in the current state.
    fn depends_on_callers(&self, s: &State) -> bool {
        rule::depends_on_callers(self.inputs(s))
    }

    fn inputs(&self, s: &State) -> RuleInputs {
        RuleInputs {
            scoped: s.scopes.threads(),
            baseline: s.baseline.value,
            deterministic: self.deterministic,
            usable: self.cores.count.min(self.max_blas),
        }
    }

    /// Recomputes the lock-free answers after the state changed (called with the lock held):
    /// `fast_any`, the count whatever the other callers do (0: it depends on them), and
    /// `fast_alone`, the count for a caller that is alone (0: take the lock).
    fn refresh_fast(&self, s: &State) {
        let (any, alone) = if !self.depends_on_callers(s) {
            let n = self.rule(s, false);
            (n, n)
        } else if s.last_overlap.is_some() {
            // A recent overlap must be timed out: that needs the lock.
            (0, 0)
        } else {
            (0, self.rule(s, false))
        };
        self.fast_any.store(any, Relaxed);
        self.fast_alone.store(alone, Relaxed);
    }

    /// After the state changed (under the lock): applies the count it gives a call that is
    /// alone, and recomputes the lock-free answers.
    fn settle(&self, s: &mut State) {
        let n = self.solitary_threads(s);
        self.apply(s, n);
        self.refresh_fast(s);
    }

    /// The count for a call that is alone (or made under scopes, which are honoured exactly).
    /// Under `auto` with the budget in use, at most what the budget last granted: closing a
    /// scope (or changing the baseline) puts back the count the last call had, not more than
    /// the budget gave it.
    fn solitary_threads(&self, s: &State) -> usize {
        let n = self.rule(s, false);
        if self.depends_on_callers(s) && self.budget.active() {
            n.min(self.budget.last_grant())
        } else {
            n
        }
    }

    /// Sets OpenBLAS's process-wide count to `n` where the build has one, and records the
    /// first count OpenBLAS did not take. Takes the state to prove the lock is held: this is
    /// the only place the process-wide count is written. Builds that take a count per call get
    /// it from their backend as each call enters.
    fn apply(&self, s: &mut State, n: usize) {
        // Held at 1 while factorisations run on it (the others wait at the gate).
        let n = match s.lowering {
            Lowering::Lowered { .. } => 1,
            _ => n,
        };
        if let Some(got) = self.backend.set_process_count(n) {
            if got != n && s.set_ignored.is_none() {
                s.set_ignored = Some((n, got));
            }
        }
    }

    /// Registers a caller; returns the threads it asked for. Calls too small for OpenBLAS to
    /// thread touch nothing shared; the others update atomic counters and, when their count
    /// depends on other callers, take the lock to decide it.
    ///
    /// `holding`: the caller holds the lowered count (see [`Self::call`]) and runs on it.
    fn enter(&'static self, size: CallSize, holding: bool) -> (usize, bool) {
        // OpenBLAS runs small calls on the caller's thread: they ask for no BLAS thread, cannot
        // oversubscribe, and are not counted (shared counters bouncing between cores cost more
        // than a 16×16 product).
        if !size.may_thread() {
            return (1, false);
        }
        let (asked, budgeted) = if holding {
            self.pass_gates(false);
            (1, false)
        } else {
            self.enter_threaded(self.useful_threads(size))
        };
        let c = &self.counters;
        c.calls.fetch_add(1, Relaxed);
        let now = c.load.fetch_add(load_delta(asked), Relaxed) + load_delta(asked);
        let (active, asked_now) = unpack_load(now);
        // Loads first: the read-modify-writes only when a peak is beaten (rarely).
        if active > c.peak_callers.load(Relaxed) {
            c.peak_callers.fetch_max(active, Relaxed);
        }
        if asked_now > c.peak_threads_asked.load(Relaxed) {
            c.peak_threads_asked.fetch_max(asked_now, Relaxed);
            if asked_now > self.cores.count && !c.warned.swap(true, Relaxed) {
                self.warn_oversubscribed(active, asked_now);
            }
        }
        (asked, budgeted)
    }

    /// The thread count for a call OpenBLAS may thread, and applies it. Without the lock when
    /// the answer does not depend on other callers (a fixed count, an open scope, or `auto`
    /// for a caller alone) and is already in force; under it otherwise. The fast path never
    /// writes a process-wide count (a stale answer could overwrite a scope another thread just
    /// opened); where the count is per call, the backend sets it as the call enters.
    ///
    /// Under `auto` (the answer depends on other callers: `fast_any` is 0), a caller alone in
    /// this process also asks the machine-wide budget, before any lock, and gets at most what
    /// it grants; whether it asked is returned, to give the grant back when the call ends.
    ///
    /// A call that can use at most `useful` threads gets at most that many, and asks the
    /// budget for no more (none for one).
    fn enter_threaded(&'static self, useful: usize) -> (usize, bool) {
        let threaded = self.pass_gates(true);
        if threaded > 1 {
            self.counters.overlapping_calls.fetch_add(1, Relaxed);
        }
        let any = self.fast_any.load(Relaxed);
        // The budget, for a caller alone here (overlapping callers get one thread each from
        // the in-process rule) that may run more than one thread. Under `auto` it gets at most
        // what the budget grants. An explicit count (a fixed count, a scope, a plan,
        // deterministic mode) is the user's and runs as asked, but takes the free slots it can
        // too (never waiting), so that other processes' `auto` sees those cores in use.
        let granted =
            (threaded == 1 && any != 1 && useful > 1 && self.budget.active()).then(|| {
                let want = if any == 0 {
                    self.cores.count.min(self.max_blas)
                } else {
                    any
                };
                self.budget.grant(want.min(useful), any == 0)
            });
        let budgeted = granted.is_some();
        let cap = match granted {
            Some(n) if any == 0 => n,
            _ => usize::MAX,
        };
        let fast = match any {
            0 if threaded == 1 => self.fast_alone.load(Relaxed).min(cap),
            any => any,
        };
        // Without the lock when the count in force is already this one (or the build takes
        // its count per call); a process-wide count that must change is changed under it.
        if fast != 0 && !self.backend.count_differs(fast) {
            return (fast.min(useful), budgeted);
        }
        let mut s = self.lock();
        // The clock is read only around overlaps: a caller alone pays nothing for it.
        let overlapping = if threaded > 1 {
            s.last_overlap = Some(Instant::now());
            true
        } else if let Some(t) = s.last_overlap {
            let recent = t.elapsed() < OVERLAP_WINDOW;
            if !recent {
                s.last_overlap = None;
            }
            recent
        } else {
            false
        };
        let n = self.rule(&s, overlapping);
        // A grant applies to `auto` only (the state may have changed since it was asked).
        let n = if self.depends_on_callers(&s) {
            n.min(cap)
        } else {
            n
        };
        self.apply(&mut s, n);
        self.refresh_fast(&s);
        (n.min(useful), budgeted)
    }

    /// Counts the caller among the calls in flight that OpenBLAS may thread, once the fork
    /// gate is open and, unless it holds the lowered count, the lowering gate too; returns how
    /// many are in flight with it. Counted first, then the gates read (all sequentially
    /// consistent, as the fork handler's and [`Self::lower_to_one`]'s close-then-count):
    /// either the closer waits for this call, or this call waits for the closer.
    fn pass_gates(&self, lowering_too: bool) -> usize {
        let active = &self.counters.active_threaded;
        loop {
            let n = active.fetch_add(1, SeqCst) + 1;
            let fork_closed = fork::gate_closed();
            let lowered = lowering_too && self.lowered_gate.load(SeqCst);
            if !fork_closed && !lowered {
                return n;
            }
            active.fetch_sub(1, SeqCst);
            if fork_closed {
                fork::wait_for_open_gate();
                continue;
            }
            // Until the count is back; then counted in under the lock, before a factorisation
            // can close the gate again (it would wait for this call).
            let mut s = self.lock();
            s.waiting_at_gate += 1;
            s = self.wait_until(s, |s| s.lowering == Lowering::Off);
            s.waiting_at_gate -= 1;
            let n = active.fetch_add(1, SeqCst) + 1;
            if s.waiting_at_gate == 0 {
                self.lowering_changed.notify_all();
            }
            drop(s);
            if !fork::gate_closed() {
                return n;
            }
            active.fetch_sub(1, SeqCst);
            fork::wait_for_open_gate();
        }
    }

    /// Waits on the lock's condition variable until `done` holds of the state.
    fn wait_until<'a>(
        &self,
        mut s: MutexGuard<'a, State>,
        done: impl Fn(&State) -> bool,
    ) -> MutexGuard<'a, State> {
        while !done(&s) {
            s = self
                .lowering_changed
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
        s
    }

    /// The most threads a call of `size` runs on where this build honours a cap: its
    /// [`CallSize::useful_threads`] where the count is per call or OpenBLAS caps the call
    /// itself; where it does neither, unbounded (the count in force is what the call gets,
    /// unless [`Self::call`] lowers it).
    fn useful_threads(&self, size: CallSize) -> usize {
        if self.lowers_count_for_caps {
            usize::MAX
        } else {
            size.useful_threads()
        }
    }

    /// Takes the process-wide count down to 1 for one factorisation (see [`Self::call`]):
    /// joins a lowering in force, or closes the gate, waits for the calls in flight to finish
    /// and lowers the count. `false` where the count is already 1 (nothing to lower).
    fn lower_to_one(&self) -> bool {
        let s = self.lock();
        let mut s = self.wait_until(s, |s| {
            s.lowering != Lowering::Draining && s.waiting_at_gate == 0
        });
        if let Lowering::Lowered { holders } = &mut s.lowering {
            *holders += 1;
            return true;
        }
        if blas_threads_now() <= 1 {
            return false;
        }
        s.lowering = Lowering::Draining;
        self.lowered_gate.store(true, SeqCst);
        drop(s);
        // New calls wait at the gate; those that passed it finish (none waits for this
        // thread: a call in flight is inside OpenBLAS, which calls nothing back).
        while self.counters.active_threaded.load(SeqCst) != 0 {
            std::thread::sleep(Duration::from_micros(20));
        }
        let mut s = self.lock();
        s.lowering = Lowering::Lowered { holders: 1 };
        self.apply(&mut s, 1);
        self.lowering_changed.notify_all();
        true
    }

    /// One factorisation on the lowered count returned: the last one puts back the count the
    /// state gives and opens the gate.
    fn raise_after_one(&self) {
        let mut s = self.lock();
        match &mut s.lowering {
            Lowering::Lowered { holders } if *holders > 1 => *holders -= 1,
            _ => {
                s.lowering = Lowering::Off;
                self.lowered_gate.store(false, SeqCst);
                self.settle(&mut s);
                self.lowering_changed.notify_all();
            }
        }
    }

    #[cold]
    fn warn_oversubscribed(&self, callers: usize, asked: usize) {
        log::warn!(
            "parlinalg: {callers} concurrent BLAS callers asked for {asked} threads on {} cores \
             (oversubscription {:.1}×); use a plan or the `auto` BLAS threads policy",
            self.cores.count,
            asked as f64 / self.cores.count as f64
        );
    }

    fn leave(&self, size: CallSize, asked: usize, budgeted: bool) {
        if !size.may_thread() {
            return;
        }
        if budgeted {
            self.budget.done();
        }
        self.counters.active_threaded.fetch_sub(1, SeqCst);
        self.counters.load.fetch_sub(load_delta(asked), Relaxed);
    }

    /// Opens a scope of `threads` on the calling thread; returns its id.
    pub(crate) fn push_scope(&self, threads: usize) -> u64 {
        let mut s = self.lock();
        let id = s.next_scope_id;
        s.next_scope_id += 1;
        s.scopes.push(std::thread::current().id(), id, threads);
        self.settle(&mut s);
        id
    }

    /// Closes scope `id` (in any order: its own entry, not the innermost one) and applies what
    /// is left.
    pub(crate) fn pop_scope(&self, id: u64) {
        let mut s = self.lock();
        s.scopes.remove(std::thread::current().id(), id);
        self.settle(&mut s);
    }

    /// Replaces the baseline (from code).
    pub(crate) fn set_baseline(&self, value: BlasThreads) {
        let mut s = self.lock();
        s.baseline = Setting {
            value,
            source: Source::Code,
        };
        self.settle(&mut s);
    }

    /// Replaces the outer thread count (from code).
    pub(crate) fn set_outer(&self, n: usize) {
        self.lock().outer = Setting {
            value: n,
            source: Source::Code,
        };
    }

    pub(crate) fn baseline(&self) -> Setting<BlasThreads> {
        self.lock().baseline.clone()
    }

    pub(crate) fn outer(&self) -> Setting<usize> {
        self.lock().outer.clone()
    }

    /// The scoped count in force, if any scope is open.
    pub(crate) fn scoped(&self) -> Option<usize> {
        self.lock().scopes.threads()
    }

    /// The first count OpenBLAS did not take, `(asked, got)`: read, never probed.
    pub(crate) fn set_ignored(&self) -> Option<(usize, usize)> {
        self.lock().set_ignored
    }

    pub(crate) fn usage(&self) -> UsageReport {
        let c = &self.counters;
        let peak_threads_asked = c.peak_threads_asked.load(Relaxed);
        UsageReport {
            calls: c.calls.load(Relaxed),
            overlapping_calls: c.overlapping_calls.load(Relaxed),
            peak_callers: c.peak_callers.load(Relaxed),
            peak_threads_asked,
            peak_oversubscription: peak_threads_asked as f64 / self.cores.count as f64,
        }
    }
}

/// What one caller adds to [`Counters::load`]: itself, and the threads it asked for.
fn load_delta(asked: usize) -> u64 {
    // Thread counts are capped at MAX_THREADS, so the sum of any number of callers' requests
    // stays far below 2³² in practice; callers are counted below 2³² as well.
    1 | (asked as u64) << 32
}

/// `(callers, threads asked)` from [`Counters::load`].
fn unpack_load(load: u64) -> (usize, usize) {
    ((load & 0xffff_ffff) as usize, (load >> 32) as usize)
}

/// The largest BLAS count the loaded OpenBLAS accepts (its compiled maximum, capped at
/// [`MAX_THREADS`]), also when the environment holds junk.
pub(crate) fn max_blas_threads() -> usize {
    match control() {
        Ok(c) => c.max_blas,
        Err(_) => BlasLibrary::query()
            .max_threads
            .map_or(MAX_THREADS, |m| m.clamp(1, MAX_THREADS)),
    }
}

/// The count OpenBLAS reports now (`openblas_get_num_threads`).
pub(crate) fn blas_threads_now() -> usize {
    usize::try_from(crate::openblas::ffi::get_num_threads()).unwrap_or(1)
}

impl Control {
    /// Runs one BLAS or LAPACK call under the controller: registers the caller, sets the
    /// thread count the policy gives it, and unregisters it afterwards, also if `f` panics.
    ///
    /// A factorisation that can use only a few threads (`?getrf`, `?potrf`:
    /// [`CallSize::useful_threads`]) runs on at most that many where the build allows it:
    /// where the count is per call (OpenMP), it enters with that count; where OpenBLAS caps
    /// the call itself (0.3.27 on), it is counted at that. Where the count is process-wide and
    /// OpenBLAS does not cap (pthreads before 0.3.27), one that can use a single thread gets
    /// the count lowered to 1 for it: it closes a gate that other calls OpenBLAS may thread
    /// wait at, waits for those in flight to finish, and runs at 1 (with any other such
    /// factorisation that comes meanwhile); the last one puts the count back. So no other call
    /// ever runs at a count it did not get, and their bits stay what they are alone (the
    /// promise of a fixed count and of deterministic mode), and no call's count rises under
    /// it (the large-stack decision of `?getrf` reads it). Larger factorisations run at the
    /// count in force there.
    #[inline]
    pub(crate) fn call<R>(&'static self, size: CallSize, f: impl FnOnce() -> R) -> R {
        // Below OpenBLAS's threading threshold the call runs on this thread whatever the
        // count: nothing to decide, count or guard where the backend needs no entry for it.
        if self.small_calls_direct && !size.may_thread() {
            return f();
        }
        if self.lowers_count_for_caps && size.useful_threads() == 1 {
            return self.call_lowered(size, f);
        }
        self.call_entered(size, f, false)
    }

    /// [`Self::call_entered`] on the count lowered to 1 (see [`Self::call`]).
    fn call_lowered<R>(&'static self, size: CallSize, f: impl FnOnce() -> R) -> R {
        struct Raise<'a>(&'a Control);
        impl Drop for Raise<'_> {
            fn drop(&mut self) {
                self.0.raise_after_one();
            }
        }
        if !self.lower_to_one() {
            return self.call_entered(size, f, false);
        }
        let _raise = Raise(self);
        self.call_entered(size, f, true)
    }

    /// [`Self::call`] through the count decision and the backend's guard; `holding`: on the
    /// lowered count.
    fn call_entered<R>(&'static self, size: CallSize, f: impl FnOnce() -> R, holding: bool) -> R {
        struct Leave<'a>(&'a Control, CallSize, usize, bool);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.leave(self.1, self.2, self.3);
            }
        }
        let (asked, budgeted) = self.enter(size, holding);
        let _leave = Leave(self, size, asked, budgeted);
        // Dropped before `_leave`: the backend's lock is released before the caller is
        // unregistered.
        let _call = CallThreads::enter(&*self.backend, asked);
        f()
    }
}

thread_local! {
    /// The BLAS count the call this thread is making runs at (0 outside calls).
    static CALL_THREADS: Cell<usize> = const { Cell::new(0) };
}

/// One call's count on its thread, and the backend's guard for it; restores the thread's
/// previous value when dropped.
struct CallThreads<'a> {
    _guard: CallGuard<'a>,
    previous: usize,
}

impl<'a> CallThreads<'a> {
    fn enter(backend: &'a dyn ThreadingBackend, n: usize) -> Self {
        let guard = backend.enter_call(n);
        let previous = CALL_THREADS.with(|c| c.replace(guard.threads()));
        CallThreads {
            _guard: guard,
            previous,
        }
    }
}

impl Drop for CallThreads<'_> {
    fn drop(&mut self) {
        CALL_THREADS.with(|c| c.set(self.previous));
    }
}

/// The BLAS count of the call the calling thread is inside (1 outside calls).
fn call_threads_here() -> usize {
    CALL_THREADS.with(Cell::get).max(1)
}

/// Makes a helper thread that runs part of the calling thread's call (LAPACK's `?getrf` on a
/// larger stack) run at that call's count.
fn adopt_call_threads(n: usize) {
    if let Ok(control) = control() {
        control.backend.adopt_on_helper(n);
    }
}

/// The BLAS count of the call the calling thread is making, carried to a helper thread that
/// makes part of it on the caller's behalf (LAPACK's `?getrf` on a larger stack): how the
/// helper adopts it is the backend's (per thread in the OpenMP build, nothing to do where the
/// count is process-wide).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallerThreads {
    threads: usize,
}

impl CallerThreads {
    /// The count the thread layer gave the call this thread is inside.
    pub(crate) fn of_this_thread() -> Self {
        CallerThreads {
            threads: call_threads_here(),
        }
    }

    /// The count, at least 1.
    pub(crate) fn count(self) -> usize {
        self.threads
    }

    /// Makes the helper thread this runs on use the caller's count.
    pub(crate) fn adopt_here(self) {
        adopt_call_threads(self.threads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_per_thread_then_minimum_across_threads() {
        let t1 = std::thread::current().id();
        let t2 = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let scopes = |entries: &[(u64, ThreadId, usize)]| {
            let mut s = Scopes::default();
            for &(id, thread, threads) in entries {
                s.push(thread, id, threads);
            }
            s
        };
        assert_eq!(scopes(&[]).threads(), None);
        // One thread: the innermost applies, even when larger than the outer one.
        assert_eq!(scopes(&[(0, t1, 1), (1, t1, 4)]).threads(), Some(4));
        // Two threads: the smaller of their innermost scopes.
        assert_eq!(
            scopes(&[(0, t1, 1), (1, t2, 3), (2, t1, 4)]).threads(),
            Some(3)
        );
        assert_eq!(scopes(&[(0, t2, 2), (1, t1, 4)]).threads(), Some(2));
        // Each removal takes its own entry: the outer scope of t1 leaves first.
        let mut s = scopes(&[(0, t1, 1), (1, t2, 3), (2, t1, 4)]);
        s.remove(t1, 0);
        assert_eq!(s.threads(), Some(3));
        s.remove(t2, 1);
        assert_eq!(s.threads(), Some(4));
        s.remove(t1, 2);
        assert_eq!(s.threads(), None);
        assert_eq!(s.held(), 0);
    }

    /// Waits (at most 10 s) until no factorisation holds the count lowered.
    fn lowering_ends(control: &Control) -> bool {
        let start = Instant::now();
        while control.lock().lowering != Lowering::Off {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// A factorisation runs on at most the threads it can use while the count is higher: its
    /// own count, and the process-wide one where OpenBLAS does not cap it itself; the count is
    /// put back when it returns, also by a panic. (Other tests run beside this one and may
    /// lower the count meanwhile, never raise it above the scope of 2.)
    #[test]
    fn a_factorisation_runs_on_the_threads_it_can_use() {
        let control = control().unwrap();
        if control.max_blas < 2 {
            eprintln!("SKIPPED: this OpenBLAS runs one thread");
            return;
        }
        let _two = crate::threads::blas_threads_scope(2).unwrap();
        let seen = |n| {
            control.call(CallSize::Lu { n, single: false }, || {
                (call_threads_here(), blas_threads_now())
            })
        };
        let (own, process) = seen(100);
        // Where a build runs every call at its global count (OpenMP after a call of
        // `openblas_set_num_threads`), the call says that count.
        assert!(
            own == 1 || own == process,
            "{own} in a call of 1 ({process} in force)"
        );
        if control.backend.count_scope() == CountScope::ProcessWide {
            assert_eq!(own, 1);
        }
        if control.lowers_count_for_caps {
            assert_eq!(process, 1, "the count OpenBLAS reads");
        }
        assert!(seen(1000).0 <= 2);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            control.call(
                CallSize::Cholesky {
                    n: 100,
                    single: false,
                },
                || panic!("inside the call"),
            )
        }));
        assert!(panicked.is_err());
        assert!(
            lowering_ends(control),
            "the count stays lowered after a panic"
        );
        assert!(!control.lowered_gate.load(SeqCst));
    }

    /// The controller in a scope of 2 where this build lowers the count for factorisations;
    /// `None` (the test skipped, and says so) elsewhere.
    fn lowering_at_two() -> Option<(&'static Control, crate::threads::BlasThreadsGuard)> {
        let control = control().unwrap();
        if !control.lowers_count_for_caps || control.max_blas < 2 {
            eprintln!("SKIPPED: this build needs no lowering");
            return None;
        }
        Some((control, crate::threads::blas_threads_scope(2).unwrap()))
    }

    /// While the count is lowered for a factorisation, a call OpenBLAS may thread waits for
    /// it and then runs at the count it was given, not the lowered one.
    #[test]
    fn other_calls_wait_for_a_lowered_count() {
        let Some((control, _two)) = lowering_at_two() else {
            return;
        };
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let factorisation = std::thread::spawn(move || {
            control.call(
                CallSize::Lu {
                    n: 100,
                    single: false,
                },
                || {
                    let lowered = matches!(control.lock().lowering, Lowering::Lowered { .. });
                    inside_tx.send(lowered).unwrap();
                    std::thread::sleep(Duration::from_millis(100));
                    Instant::now()
                },
            )
        });
        let lowered = inside_rx.recv().unwrap();
        let (started, own, process) = control.call(
            CallSize::Gemm {
                m: 256,
                n: 256,
                k: 256,
            },
            || (Instant::now(), call_threads_here(), blas_threads_now()),
        );
        let factorisation_ended = factorisation.join().unwrap();
        assert_eq!(own, process, "the product ran at a count it was not given");
        if lowered {
            assert!(started >= factorisation_ended, "the product did not wait");
        }
        assert!(lowering_ends(control));
    }

    /// Factorisations that come while the count is lowered run on it together, not one after
    /// another: two that wait for each other inside their calls both finish.
    #[test]
    fn factorisations_share_a_lowered_count() {
        let Some((control, _two)) = lowering_at_two() else {
            return;
        };
        let both_inside = std::sync::Arc::new(std::sync::Barrier::new(2));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let (both_inside, done_tx) = (both_inside.clone(), done_tx.clone());
            std::thread::spawn(move || {
                control.call(
                    CallSize::Lu {
                        n: 100,
                        single: false,
                    },
                    || {
                        both_inside.wait();
                        blas_threads_now()
                    },
                );
                done_tx.send(()).unwrap();
            });
        }
        for _ in 0..2 {
            done_rx
                .recv_timeout(Duration::from_secs(20))
                .expect("two factorisations could not be inside their calls at once");
        }
        assert!(lowering_ends(control));
    }

    #[test]
    fn twenty_thousand_nested_scopes_cost_linear_work() {
        const N: u64 = 20_000;
        let t = std::thread::current().id();
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        let mut s = Scopes::default();
        s.push(other, N, 7);
        for id in 0..N {
            s.push(t, id, 1 + (id as usize % 3));
        }
        assert_eq!(s.held(), N as usize + 1);
        // Dropped front to back (as a Vec of guards drops): the worst order for a search.
        for id in 0..N {
            s.remove(t, id);
            if id + 1 < N {
                assert_eq!(s.threads(), Some(1 + ((N - 1) as usize % 3)));
            }
        }
        assert_eq!(s.threads(), Some(7));
        assert_eq!(s.held(), 1, "only the other thread's scope is left");
        // Per scope: a push and a pop, and a visit of at most the two thread slots for each;
        // the old flat list visited every open scope on every change (N²/2 = 2·10⁸ here).
        assert!(
            s.work <= 8 * (N + 1),
            "{} steps for {N} nested scopes",
            s.work
        );
    }
}
