//! The machine-wide budget: cooperating processes share the cores, with no daemon, and a
//! killed process's share comes back by itself.
//!
//! **Slots.** One file per CPU of the machine, `cpu<N>`, in a directory of the user's own
//! (`/dev/shm/parlinalg-<uid>/<group>/`; `$XDG_RUNTIME_DIR`, then `/tmp`, when there is no
//! `/dev/shm`). A process holds a slot by holding a kernel `flock` on its file (exclusive,
//! always `LOCK_NB`: it never blocks and never waits on another process). The kernel drops the
//! lock when the holder's last descriptor closes, so a process killed with `kill -9` gives its
//! slots back at once; nothing is counted in a file, so nothing can be left wrong.
//!
//! **Who takes what.** Only calls OpenBLAS would thread, under the `auto` policy, when the
//! in-process rule gives them more than one thread, touch the budget (every smaller call, a
//! fixed count, an open scope, deterministic mode and in-process overlap never do). Such a call
//! asks for the threads the rule gives it and gets one per slot it holds, at least one: its
//! calling thread is a slot like any other (it runs on a core), and with no slot free it still
//! runs on one thread, its own. A process only tries the slots of CPUs in its affinity mask, so
//! processes whose masks do not overlap never compete.
//!
//! **Leases, so that a call pays nothing.** Slots are kept between calls: a call checks a clock
//! and two atomics, and the budget is looked at again (a few `flock`s) at most every
//! [`CHECK_EVERY`]. A helper thread (a plain pthread, running only while something is held)
//! gives everything back once no threadable call has started or ended for [`IDLE_RELEASE`].
//!
//! **Fairness.** A process that finds no slot free marks itself wanting: it holds a shared lock
//! on the group's `want` file (so a killed waiter stops wanting at once too). A holder of more
//! than one slot tests that file at its next check (an exclusive `LOCK_NB` that fails while
//! anyone wants) and gives its extra slots back; a holder takes more only when nobody wants.
//! So four busy processes on two cores settle at one thread each, and one alone takes both.
//!
//! **Safety of the files** (`files.rs`). The directories are created `0700` and opened with
//! `O_NOFOLLOW`; each directory and file is checked with `fstat` (owner is this user, no access
//! for group or others, a directory or a regular file as expected). A directory that fails the check turns
//! the budget off for the process (reported, with why); a slot file that fails it (a symlink,
//! a directory, a FIFO, another owner) is ignored (reported) and its CPU is not used. Every
//! file is opened `O_CLOEXEC | O_NONBLOCK`. Another user cannot create, take or corrupt
//! anything in a `0700` directory of ours; root can, as everywhere.
//!
//! **Fork.** `flock` locks belong to the open file description, which a forked child shares:
//! the child closes its copies of every budget descriptor without unlocking (the parent's
//! locks stay: the description is still open in the parent) and starts with nothing held.

mod files;
mod holders;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{BudgetEnv, Setting};
use files::{group_path, open_file, open_group_dir, Dir};
use holders::{held_by_stopped, FileId, LOOK_EVERY};

/// How often a process looks at the budget again while it makes threadable calls.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(2);

/// How long after its last threadable call a process keeps its slots.
pub(crate) const IDLE_RELEASE: Duration = Duration::from_millis(10);

/// `Budget::last_use` when a call has just ended and the release thread has not looked since.
const JUST_ENDED: u64 = u64::MAX;

/// The budget as this process sees it: read-only (looking takes no slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BudgetReport {
    /// Whether this process takes part in a machine-wide budget now.
    pub enabled: bool,
    /// Why it is on or off (the variable, or the problem with the directory).
    pub why: String,
    /// The group (processes share slots only within a group).
    pub group: String,
    /// The group's directory, once known.
    pub dir: Option<PathBuf>,
    /// Slots this process may take: CPUs in its affinity mask whose slot file is usable.
    pub slots: usize,
    /// Slots this process holds now.
    pub held: usize,
    /// Slot files ignored, and why (a symlink, a directory, another owner, ...).
    pub ignored: Vec<String>,
    /// The budget was asked for but cannot work here, and why (its directory failed a check,
    /// or none of this process's slot files can be used); `None` when it works or is off by
    /// choice.
    pub unavailable: Option<String>,
}

/// One CPU's slot file.
#[derive(Debug)]
struct Slot {
    cpu: usize,
    /// Opened on first use; `None` also after a fork (reopened then).
    fd: Option<OwnedFd>,
    held: bool,
    /// The file failed its check: never used.
    broken: bool,
}

#[derive(Debug)]
pub(super) struct State {
    /// `None` until first opened; `Some(Err(why))` when the directory is unusable.
    dir: Option<std::result::Result<Dir, String>>,
    slots: Vec<Slot>,
    want: Option<OwnedFd>,
    /// This process holds a shared lock on `want` (it found no slot free).
    wanting: bool,
    /// The release thread runs.
    releaser: bool,
    /// The release thread, for the end of the last call in flight to wake it. In the state
    /// (under its lock, which the fork handler holds across `fork`), not beside it.
    releaser_thread: Option<std::thread::Thread>,
    /// The release thread could not be started (`ulimit -u`, no memory): slots go back at the
    /// end of each call instead, so that none is held while the process does not call.
    no_releaser: bool,
    /// The last look at who holds the slots not held here: when, and how many a stopped
    /// process holds (see `holders`).
    borrowable: Option<(Instant, usize)>,
    ignored: Vec<String>,
}

/// The process's part of the budget.
#[derive(Debug)]
pub(crate) struct Budget {
    pub enabled: Setting<bool>,
    pub group: Setting<String>,
    /// The most threads the in-process rule can ask (the usable cores).
    cap: usize,
    state: Mutex<State>,
    /// Threads the slots held allowed at the last check (≥ 1), for calls between checks; kept
    /// after the slots go back (it is then what the last call had); `usize::MAX` before any.
    granted: AtomicUsize,
    /// When the next check is due, in ns since `epoch()`; 0: now.
    next_check: AtomicU64,
    /// When the last threadable call started, in ns since `epoch()`.
    last_use: AtomicU64,
    /// Calls that were granted threads and have not finished.
    in_flight: AtomicUsize,
    /// Set when the directory turned out unusable: calls skip the budget.
    broken: AtomicBool,
    /// The release thread waits for the calls in flight to end (parked, not polling: a thread
    /// that wakes every few milliseconds beside BLAS threads that fill every core preempts
    /// one of them, stalling the others at their next barrier; measured +15% on
    /// `inv(1000)` at 2 threads).
    parked: AtomicBool,
    /// Set when the release thread could not be started: [`Self::done`] gives the slots back.
    release_at_done: AtomicBool,
    /// Starts the release thread; whether it runs ([`spawn_releaser`]; a failing one in tests).
    spawner: fn(&'static Budget) -> bool,
}

/// What the release thread does next.
enum Next {
    /// Look again after [`IDLE_RELEASE`] / 2.
    Sleep,
    /// Wait until the calls in flight end (or [`PARKED_AT_MOST`]).
    WaitForCalls,
    /// Nothing is held: end.
    Stop,
}

/// The longest the release thread waits for calls in flight before it looks again anyway.
const PARKED_AT_MOST: Duration = Duration::from_secs(1);

/// The directory the budget of processes in group `group` uses (`/dev/shm`, else
/// `$XDG_RUNTIME_DIR`, else `/tmp`, then `parlinalg-<uid>/<group>`), whether or not it exists
/// yet: for a program that runs a group of its own and removes it afterwards.
///
/// ```
/// let dir = parlinalg::threads::budget_dir("default");
/// assert!(dir.ends_with("default"));
/// assert!(dir.parent().unwrap().file_name().unwrap().to_string_lossy().starts_with("parlinalg-"));
/// ```
pub fn budget_dir(group: &str) -> PathBuf {
    group_path(group)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos(t: Instant) -> u64 {
    u64::try_from(t.duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

impl Budget {
    /// The budget of a process whose affinity mask holds `cpus`, and which may use `cap` cores.
    pub(crate) fn new(env: BudgetEnv, cpus: Vec<usize>, cap: usize) -> Budget {
        let _ = epoch();
        Budget {
            enabled: env.enabled,
            group: env.group,
            cap: cap.max(1),
            state: Mutex::new(State {
                dir: None,
                slots: cpus
                    .into_iter()
                    .map(|cpu| Slot {
                        cpu,
                        fd: None,
                        held: false,
                        broken: false,
                    })
                    .collect(),
                want: None,
                wanting: false,
                releaser: false,
                releaser_thread: None,
                no_releaser: false,
                borrowable: None,
                ignored: Vec::new(),
            }),
            granted: AtomicUsize::new(usize::MAX),
            next_check: AtomicU64::new(0),
            last_use: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            broken: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            release_at_done: AtomicBool::new(false),
            spawner: spawn_releaser,
        }
    }

    /// Whether calls go through the budget.
    pub(crate) fn active(&self) -> bool {
        self.enabled.value && self.cap > 1 && !self.broken.load(Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few field writes and syscalls: a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The threads a call asking for `want` (≥ 2) may run: one per slot held, at least 1. Must
    /// be paired with [`Self::done`] when the call ends.
    ///
    /// `auto` says whether the call runs what it is granted (`auto`) or its own explicit count
    /// (it takes slots only to show other processes the cores in use): only an `auto` grant is
    /// kept as [`Self::last_grant`], the count `auto` falls back to when scopes close.
    pub(crate) fn grant(&'static self, want: usize, auto: bool) -> usize {
        self.in_flight.fetch_add(1, SeqCst);
        let now = Instant::now();
        let t = nanos(now);
        self.last_use.store(t, Relaxed);
        if t < self.next_check.load(SeqCst) {
            return self.granted.load(Relaxed).clamp(1, want);
        }
        let mut s = self.lock();
        // Another caller may have checked meanwhile.
        if t < self.next_check.load(SeqCst) {
            return self.granted.load(Relaxed).clamp(1, want);
        }
        let n = self.check(&mut s, want.min(self.cap));
        if auto {
            self.granted.store(n, Relaxed);
        }
        self.next_check.store(nanos(now + CHECK_EVERY), SeqCst);
        if (n > 1 || s.wanting || s.slots.iter().any(|x| x.held)) && !s.releaser {
            s.releaser = (self.spawner)(self);
            if !s.releaser && !s.no_releaser {
                // Tried again at each check; meanwhile no slot outlives a call.
                s.no_releaser = true;
                self.release_at_done.store(true, SeqCst);
                s.ignored.push(
                    "release thread: could not be started (a thread limit such as `ulimit -u`, \
                     or no memory): slots are given back at the end of each call"
                        .to_owned(),
                );
            } else if s.releaser && s.no_releaser {
                s.no_releaser = false;
                self.release_at_done.store(false, SeqCst);
            }
        }
        n.clamp(1, want)
    }

    /// What the last check granted (`usize::MAX` before the first): what the last call had.
    pub(crate) fn last_grant(&self) -> usize {
        self.granted.load(Relaxed)
    }

    /// The end of a call [`Self::grant`] admitted. The idle time that returns the slots counts
    /// from here: a call longer than [`IDLE_RELEASE`] must not have its slots given back the
    /// moment it ends, before the next call of a busy process can start. No clock is read here
    /// (one measured +1.9% against +0.5% at OpenBLAS's threading threshold): [`JUST_ENDED`]
    /// says "now", and the release thread stamps the time when it next looks.
    ///
    /// The last call in flight wakes the release thread if it waits for it (one atomic load
    /// otherwise; [`Self::wait_for_calls`] says why no wake-up is lost).
    ///
    /// Without a release thread the last call in flight gives every slot back itself.
    pub(crate) fn done(&self) {
        self.last_use.store(JUST_ENDED, Relaxed);
        if self.in_flight.fetch_sub(1, SeqCst) != 1 {
            return;
        }
        if self.parked.load(SeqCst) {
            if let Some(thread) = self.lock().releaser_thread.as_ref() {
                thread.unpark();
            }
        }
        if self.release_at_done.load(SeqCst) {
            let mut s = self.lock();
            // A call that started meanwhile keeps them (it checks under this lock).
            if self.in_flight.load(SeqCst) == 0 {
                self.release_all(&mut s);
                self.next_check.store(0, SeqCst);
            }
        }
    }

    /// On the release thread: waits until no call is in flight. `parked` is set before
    /// `in_flight` is read and `done` reads `parked` after it decrements `in_flight` (both
    /// sequentially consistent): either this sees the count at 0 and does not wait, or the
    /// last `done` sees `parked` and unparks this thread (an unpark before the park makes the
    /// park return at once).
    fn wait_for_calls(&self) {
        self.parked.store(true, SeqCst);
        if self.in_flight.load(SeqCst) > 0 {
            std::thread::park_timeout(PARKED_AT_MOST);
        }
        self.parked.store(false, SeqCst);
    }

    /// Looks at the budget (with the lock): gives extra slots back when another process wants
    /// one, takes free ones when none does, marks this process wanting when it has none.
    fn check(&self, s: &mut State, want: usize) -> usize {
        if s.dir.is_none() {
            self.open(s);
        }
        let Some(Ok(dir)) = &s.dir else {
            return want;
        };
        let dirfd = dir.fd.as_raw_fd();
        if s.want.is_none() && !s.ignored.iter().any(|i| i.starts_with("want")) {
            match open_file(dirfd, "want") {
                Ok(fd) => s.want = Some(fd),
                // Without it, holders cannot see waiters: they keep what they took.
                Err(why) => s.ignored.push(format!("want: {why}")),
            }
        }
        let held = s.slots.iter().filter(|x| x.held).count();
        let others_want = held >= 1 && s.want.as_ref().is_some_and(someone_wants);
        let mut held_now = held;
        if held > 1 && others_want {
            for slot in s.slots.iter_mut().filter(|x| x.held).skip(1) {
                unlock(slot);
                held_now -= 1;
            }
        } else if held < want && !others_want {
            let start = current_cpu();
            let n = s.slots.len();
            let first = s.slots.iter().position(|x| x.cpu == start).unwrap_or(0);
            for i in 0..n {
                if held_now >= want {
                    break;
                }
                let slot_index = (first + i) % n;
                let slot = &mut s.slots[slot_index];
                if slot.held || slot.broken {
                    continue;
                }
                if slot.fd.is_none() {
                    match open_file(dirfd, &format!("cpu{}", slot.cpu)) {
                        Ok(fd) => slot.fd = Some(fd),
                        Err(why) => {
                            slot.broken = true;
                            s.ignored
                                .push(format!("cpu{}: {why}", s.slots[slot_index].cpu));
                            continue;
                        }
                    }
                }
                let slot = &mut s.slots[slot_index];
                if slot.fd.as_ref().is_some_and(try_lock) {
                    slot.held = true;
                    held_now += 1;
                }
            }
            if s.slots.iter().all(|x| x.broken) {
                // Not one slot file can be used (a read-only group directory, every file
                // foreign or of the wrong kind): a budget that can never grant a slot would
                // keep this process on one thread for its whole life. Off, and said.
                self.turn_off(
                    s,
                    format!(
                        "none of this process's {} slot files can be used: {}",
                        s.slots.len(),
                        s.ignored.join("; ")
                    ),
                );
                return want;
            }
        }
        let borrowed = if held_now < want {
            self.borrowable(s).min(want - held_now)
        } else {
            0
        };
        // Wanting while holding nothing; not otherwise.
        if held_now == 0 && !s.wanting {
            s.wanting = s.want.as_ref().is_some_and(try_lock_shared);
        } else if held_now > 0 && s.wanting {
            if let Some(w) = &s.want {
                unlock_fd(w.as_raw_fd());
            }
            s.wanting = false;
        }
        (held_now + borrowed).max(1)
    }

    /// How many of the slots this process could not take are held by a stopped process (so
    /// their cores are idle and may be used without the slot); looked up at most every
    /// [`LOOK_EVERY`].
    fn borrowable(&self, s: &mut State) -> usize {
        if let Some((at, n)) = s.borrowable {
            if at.elapsed() < LOOK_EVERY {
                return n;
            }
        }
        let files: Vec<FileId> = s
            .slots
            .iter()
            .filter(|x| !x.held && !x.broken)
            .filter_map(|x| x.fd.as_ref().and_then(FileId::of))
            .collect();
        let n = held_by_stopped(&files);
        s.borrowable = Some((Instant::now(), n));
        n
    }

    /// Turns the budget off for the rest of the process, giving back what it holds; `why` is
    /// what the report says.
    fn turn_off(&self, s: &mut State, why: String) {
        self.release_all(s);
        s.want = None;
        s.dir = Some(Err(why));
        self.broken.store(true, Relaxed);
    }

    /// Opens and checks the group's directory (once).
    fn open(&self, s: &mut State) {
        let opened = open_group_dir(&self.group.value);
        if opened.is_err() {
            self.broken.store(true, Relaxed);
        }
        s.dir = Some(opened);
    }

    /// Gives everything back when no threadable call started or ended for [`IDLE_RELEASE`];
    /// what the release thread does next.
    fn release_if_idle(&self) -> Next {
        let mut s = self.lock();
        let now = nanos(Instant::now());
        let last = self.last_use.load(Relaxed);
        if last == JUST_ENDED {
            // A call ended since the last look: idle from now on (a call that started since
            // has stamped its own start, and then this does nothing).
            let _ = self
                .last_use
                .compare_exchange(JUST_ENDED, now, Relaxed, Relaxed);
        }
        // `JUST_ENDED` is the largest value: the subtraction saturates to 0, not idle.
        let idle = now.saturating_sub(last) >= IDLE_RELEASE.as_nanos() as u64;
        if idle {
            // Callers between `grant`'s count and its check go to the lock (and wait for this
            // release) or are seen here: then nothing is released.
            self.next_check.store(0, SeqCst);
            if self.in_flight.load(SeqCst) == 0 {
                self.release_all(&mut s);
            }
        }
        let still = s.wanting || s.slots.iter().any(|x| x.held);
        if !still {
            s.releaser = false;
            s.releaser_thread = None;
            Next::Stop
        } else if self.in_flight.load(SeqCst) > 0 {
            Next::WaitForCalls
        } else {
            Next::Sleep
        }
    }

    fn release_all(&self, s: &mut State) {
        for slot in s.slots.iter_mut().filter(|x| x.held) {
            unlock(slot);
        }
        if s.wanting {
            if let Some(w) = &s.want {
                unlock_fd(w.as_raw_fd());
            }
            s.wanting = false;
        }
    }

    /// The read-only view for the report (opens the directory if not yet opened: that takes
    /// no slot).
    /// Slot files that failed their check (their CPUs are not used).
    pub(crate) fn broken_slots(&self) -> usize {
        self.lock().slots.iter().filter(|s| s.broken).count()
    }

    pub(crate) fn report(&self) -> BudgetReport {
        let mut s = self.lock();
        let (enabled, why) = if !self.enabled.value {
            (false, format!("off [{}]", self.enabled.source))
        } else if self.cap <= 1 {
            (
                false,
                "off: this process may use one core, so it never takes a slot".to_owned(),
            )
        } else {
            if s.dir.is_none() {
                self.open(&mut s);
            }
            match &s.dir {
                Some(Err(why)) => (false, format!("off: {why}")),
                _ => (true, format!("on [{}]", self.enabled.source)),
            }
        };
        let unavailable = match &s.dir {
            Some(Err(why)) if self.enabled.value && self.cap > 1 => Some(why.clone()),
            _ => None,
        };
        let dir = match &s.dir {
            Some(Ok(d)) => Some(d.path.clone()),
            _ => None,
        };
        BudgetReport {
            enabled,
            why,
            group: self.group.value.clone(),
            dir,
            slots: s.slots.iter().filter(|x| !x.broken).count(),
            held: s.slots.iter().filter(|x| x.held).count(),
            ignored: s.ignored.clone(),
            unavailable,
        }
    }

    /// The lock, held by the forking thread across `fork()`.
    pub(super) fn hold_for_fork(&self) -> MutexGuard<'_, State> {
        self.lock()
    }

    /// In the parent after a fork (its lock still held by the forking thread): the time spent
    /// at the fork gate and in `fork()` was a pause of this process's calls, not idleness.
    /// Without this the release thread, running as soon as the lock is released, could take a
    /// long fork for [`IDLE_RELEASE`] without calls and give every slot back, for the child
    /// (or anyone) to take while the parent goes on calling (seen: a forked child running 2
    /// threads on the slots its parent still used; the parent left with none of its 16).
    pub(super) fn resume_after_fork(&self) {
        self.last_use.store(nanos(Instant::now()), Relaxed);
    }
}

/// In the forked child, with the lock held: forgets every descriptor (closed without
/// unlocking: the parent's locks live on in its own descriptors) and everything held.
pub(super) fn rebuild_in_child(budget: &Budget, s: &mut State) {
    for slot in &mut s.slots {
        slot.fd = None;
        slot.held = false;
    }
    s.want = None;
    s.wanting = false;
    s.releaser = false;
    s.releaser_thread = None;
    s.borrowable = None;
    budget.parked.store(false, SeqCst);
    budget.granted.store(usize::MAX, Relaxed);
    budget.next_check.store(0, SeqCst);
    budget.in_flight.store(0, SeqCst);
}

pub(super) type BudgetHold = MutexGuard<'static, State>;

/// Starts the release thread; whether it runs.
fn spawn_releaser(budget: &'static Budget) -> bool {
    super::worker::spawn_plain(move || {
        budget.lock().releaser_thread = Some(std::thread::current());
        loop {
            match budget.release_if_idle() {
                Next::Sleep => std::thread::sleep(IDLE_RELEASE / 2),
                Next::WaitForCalls => budget.wait_for_calls(),
                Next::Stop => break,
            }
        }
    })
    .is_ok()
}

/// The CPU the calling thread runs on (0 if unknown).
fn current_cpu() -> usize {
    // SAFETY: sched_getcpu takes no argument and only returns a number.
    usize::try_from(unsafe { libc::sched_getcpu() }).unwrap_or(0)
}

/// `LOCK_EX | LOCK_NB`: whether it was taken. Never blocks.
fn try_lock(fd: &OwnedFd) -> bool {
    // SAFETY: flock on a descriptor we own; LOCK_NB never blocks.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Whether some process holds `want` (shared): an exclusive `LOCK_NB` that fails then, given
/// straight back when it succeeds.
fn someone_wants(want: &OwnedFd) -> bool {
    if try_lock(want) {
        unlock_fd(want.as_raw_fd());
        false
    } else {
        true
    }
}

fn try_lock_shared(fd: &OwnedFd) -> bool {
    // SAFETY: flock on a descriptor we own; LOCK_NB never blocks.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) == 0 }
}

fn unlock_fd(fd: RawFd) {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(fd, libc::LOCK_UN) };
}

fn unlock(slot: &mut Slot) {
    if let Some(fd) = &slot.fd {
        unlock_fd(fd.as_raw_fd());
    }
    slot.held = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::config::Source;
    use std::path::Path;

    /// Whether `dir/cpu<cpu>` is locked by another open file description.
    fn slot_held(dir: &Path, cpu: usize) -> bool {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(format!("cpu{cpu}")))
            .unwrap();
        !try_lock(&OwnedFd::from(f))
    }

    fn budget(group: &str, cpus: Vec<usize>) -> &'static Budget {
        Box::leak(Box::new(Budget::new(env(group), cpus, 2)))
    }

    fn env(group: &str) -> BudgetEnv {
        BudgetEnv {
            enabled: Setting {
                value: true,
                source: Source::Code,
            },
            group: Setting {
                value: group.to_owned(),
                source: Source::Code,
            },
        }
    }

    #[test]
    fn without_a_release_thread_no_slot_outlives_a_call() {
        // What `ulimit -u` does to the release thread: it cannot start. Slots taken for a call
        // go back when the call ends, and the report says why.
        let group = format!("unit-noreleaser-{}", std::process::id());
        let b: &'static Budget = Box::leak(Box::new(Budget {
            spawner: |_| false,
            ..Budget::new(env(&group), vec![0, 1], 2)
        }));
        for _ in 0..3 {
            assert_eq!(b.grant(2, true), 2);
            assert_eq!(b.report().held, 2);
            b.done();
            assert_eq!(b.report().held, 0, "given back at the end of the call");
        }
        let report = b.report();
        assert!(
            report.ignored.iter().any(|i| i.contains("release thread")),
            "{report:?}"
        );
        // Two calls at once: the first to end keeps them for the other.
        assert_eq!(b.grant(2, true), 2);
        std::thread::sleep(CHECK_EVERY * 2);
        assert_eq!(b.grant(2, true), 2);
        b.done();
        assert_eq!(b.report().held, 2, "a call is still in flight");
        b.done();
        assert_eq!(b.report().held, 0);
        std::fs::remove_dir_all(report.dir.unwrap()).unwrap();
    }

    #[test]
    fn a_process_tries_only_the_slots_of_its_mask_and_gives_them_back_when_idle() {
        // Three "processes" (each budget opens its own descriptors: flock locks of different
        // open file descriptions conflict also within one process).
        let group = format!("unit-mask-{}", std::process::id());
        let low = budget(&group, vec![0, 1]);
        let high = budget(&group, vec![2, 3]);
        let across = budget(&group, vec![1, 2]);
        assert_eq!(low.grant(2, true), 2);
        assert_eq!(high.grant(2, true), 2, "disjoint masks do not compete");
        assert_eq!(
            across.grant(2, true),
            1,
            "none free: its own thread, never a wait"
        );
        assert_eq!(across.report().held, 0);
        for b in [low, high, across] {
            b.done();
        }
        assert_eq!((low.report().held, high.report().held), (2, 2));
        // The one that wanted is seen: at its next check, a holder keeps one slot only.
        std::thread::sleep(CHECK_EVERY * 2);
        assert_eq!(low.grant(2, true), 1);
        low.done();
        // Idle: everything goes back by itself.
        let start = Instant::now();
        while low.report().held + high.report().held > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "slots kept while idle"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(start.elapsed() >= IDLE_RELEASE / 2);
        let dir = low.report().dir.unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn closing_a_forked_copy_of_a_locked_descriptor_keeps_the_lock() {
        // What the child handler relies on: close() of one descriptor of an open file
        // description releases its flock only when no descriptor refers to it any more.
        let dir = std::env::temp_dir().join(format!("parlinalg-flock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cpu0");
        std::fs::write(&path, b"").unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let fd = OwnedFd::from(f);
        assert!(try_lock(&fd));
        assert!(slot_held(&dir, 0));
        // A duplicate (what a forked child inherits) closed: still held.
        // SAFETY: dup of a descriptor we own.
        let dup = unsafe { libc::dup(fd.as_raw_fd()) };
        assert!(dup >= 0);
        // SAFETY: `dup` is ours and closed once.
        unsafe { libc::close(dup) };
        assert!(slot_held(&dir, 0));
        drop(fd);
        assert!(!slot_held(&dir, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
