//! What a report leaves behind: nothing. Every process the report starts (its own workers and
//! children, python3, mpirun) and every scratch path it makes goes through here, so that the
//! end of a run, an error, SIGINT, SIGTERM or SIGHUP removes them all.
//!
//! - **Children** start in a process group of their own (so that killing the group reaches
//!   what they start in turn: mpirun's ranks, Python's pool) with no stdin. Nothing runs in
//!   the child between fork and exec (no `pre_exec`: it would make the standard library
//!   `fork()` the whole process, and OpenBLAS's fork handler can hang a parent whose BLAS
//!   threads are busy; `tests/fork_safety.rs` forbids it), so the group is set by
//!   `posix_spawn` and the death signal by the child itself: the report's own children (its
//!   re-executions as workers) call [`die_with_the_report`] first thing, which sets
//!   `PR_SET_PDEATHSIG` to SIGTERM and exits if the report (named in [`PARENT_VAR`]) is
//!   already gone. Other programs (python3, mpirun) are ended through their group by the
//!   signal thread. A [`Tracked`] child dropped before it was waited for is killed and reaped.
//! - **Scratch paths** ([`Scratch`]) are removed when dropped.
//! - **Signals**: [`install_signal_handlers`] makes SIGINT, SIGTERM and SIGHUP write their
//!   number into a pipe (the only thing a handler may safely do); a thread reading the pipe
//!   sends SIGTERM to every child's group, waits up to [`GRACE`] for them, SIGKILLs what is
//!   left, removes the scratch paths and exits with 128 + the signal's number.
//!
//! The death signal is tied to the thread that forked: the report starts its children from its
//! main thread, which lives as long as the report.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The report's pid, in the environment of every child it starts.
pub const PARENT_VAR: &str = "PARLINALG_REPORT_PARENT";

/// In a process the report started (its [`PARENT_VAR`] set): asks the kernel for SIGTERM when
/// its parent dies (the report, or mpirun for a rank), and exits at once if the report is
/// already gone (it died before the call, so nobody would send the signal). Does nothing in
/// any other process.
pub fn die_with_the_report() {
    let Some(parent) = std::env::var(PARENT_VAR)
        .ok()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return;
    };
    // SAFETY: prctl(PR_SET_PDEATHSIG), getppid and kill(pid, 0) only set or read process
    // state (kill with signal 0 sends nothing).
    let report_gone = unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0
            && libc::getppid() != parent
            && libc::kill(parent, 0) != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    };
    // A grandchild (an MPI rank under mpirun) has another parent but sees the report alive.
    if report_gone {
        std::process::exit(1);
    }
}

/// How long children get to exit after SIGTERM before they are killed.
pub const GRACE: Duration = Duration::from_millis(300);

/// The live children (their pids, each its group's id) and the scratch paths.
#[derive(Debug, Default)]
struct Registry {
    children: BTreeSet<libc::pid_t>,
    paths: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    children: BTreeSet::new(),
    paths: Vec::new(),
});

/// The registry, also after a thread panicked holding it (its sets stay valid).
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process the report started: killed (with its group) and reaped if dropped before
/// it was waited for. Derefs to [`Child`].
#[derive(Debug)]
pub struct Tracked {
    child: Option<Child>,
}

impl Tracked {
    /// Waits for the child and collects its piped output (see [`Child::wait_with_output`]).
    ///
    /// # Errors
    /// As [`Child::wait_with_output`].
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        let child = self
            .child
            .take()
            .expect("a tracked child is present until consumed");
        let pid = pid_of(&child);
        let out = child.wait_with_output();
        registry().children.remove(&pid);
        out
    }
}

impl std::ops::Deref for Tracked {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child.as_ref().expect("present until consumed")
    }
}

impl std::ops::DerefMut for Tracked {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("present until consumed")
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = pid_of(&child);
        // Not reaped yet, so `pid` (and its group) cannot name another process.
        if !matches!(child.try_wait(), Ok(Some(_))) {
            kill_group(pid, libc::SIGKILL);
            let _ = child.wait();
        }
        registry().children.remove(&pid);
    }
}

fn pid_of(child: &Child) -> libc::pid_t {
    libc::pid_t::try_from(child.id()).expect("a pid fits pid_t")
}

/// Sends `sig` to the group led by `pid` and to `pid` itself (in case it left the group).
fn kill_group(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill only sends a signal; a group or process that is gone gives ESRCH.
    unsafe {
        libc::kill(-pid, sig);
        libc::kill(pid, sig);
    }
}

/// Starts `cmd` as a tracked child: its own process group, no stdin, the report's pid in
/// [`PARENT_VAR`] (for [`die_with_the_report`]).
///
/// # Errors
/// The command could not be started.
pub fn spawn(cmd: &mut Command) -> io::Result<Tracked> {
    cmd.process_group(0)
        .stdin(Stdio::null())
        .env(PARENT_VAR, std::process::id().to_string());
    // Registered while the lock is held, so that a signal's cleanup sees it.
    let mut reg = registry();
    let child = cmd.spawn()?;
    reg.children.insert(pid_of(&child));
    Ok(Tracked { child: Some(child) })
}

/// Runs `cmd` as a tracked child to its end and collects its output (as
/// [`Command::output`], stdout and stderr piped).
///
/// # Errors
/// The command could not be started or waited for.
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    spawn(cmd)?.wait_with_output()
}

/// A scratch path of the report's, removed (a directory with what is inside) when dropped or
/// when a signal ends the report.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Registers `path` (made or about to be made by the report, or by its children).
    pub fn register(path: PathBuf) -> Scratch {
        registry().paths.push(path.clone());
        Scratch { path }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove(&self.path);
        let mut reg = registry();
        if let Some(i) = reg.paths.iter().position(|p| *p == self.path) {
            reg.paths.swap_remove(i);
        }
    }
}

fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
}

/// The pipe's write end, for the handler (-1 before the install).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The signal being handled, 0 before one came.
static STOPPING: AtomicI32 = AtomicI32::new(0);

/// When a signal is ending the report, waits for the signal thread to end the process (the
/// main thread's errors are then the signal's doing: a child killed, a pipe closed); returns
/// at once otherwise.
pub fn wait_if_stopping() {
    if STOPPING.load(Ordering::SeqCst) != 0 {
        loop {
            std::thread::park();
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    // An atomic store is async-signal-safe.
    STOPPING.store(sig, Ordering::SeqCst);
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    let byte = u8::try_from(sig).unwrap_or(0);
    // SAFETY: write is async-signal-safe; `byte` lives for the call; a full pipe fails with
    // EAGAIN (the descriptor is non-blocking) and the first signal is already on its way.
    unsafe {
        libc::write(fd, std::ptr::addr_of!(byte).cast(), 1);
    }
}

/// Makes SIGINT, SIGTERM and SIGHUP end the report cleanly: children killed, scratch paths
/// removed, exit code 128 + the signal's number. Call once, from the report's main.
///
/// # Errors
/// The pipe, the handlers or the thread could not be set up.
pub fn install_signal_handlers() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array with new descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    // The reading end blocks: the thread sleeps in read until a signal comes.
    // SAFETY: fcntl on the descriptor pipe2 just made.
    unsafe { libc::fcntl(read_fd, libc::F_SETFL, 0) };
    SIGNAL_PIPE.store(write_fd, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("report-signals".into())
        .spawn(move || loop {
            let mut byte = 0u8;
            // SAFETY: read into a one-byte buffer we own, from our pipe's reading end.
            let n = unsafe { libc::read(read_fd, std::ptr::addr_of_mut!(byte).cast(), 1) };
            if n == 1 {
                end_on_signal(libc::c_int::from(byte));
            }
        })?;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler address and an empty mask is valid; the
        // handler only calls write (async-signal-safe).
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The signal thread's work: end every child, remove every scratch path, exit.
fn end_on_signal(sig: libc::c_int) -> ! {
    let (children, paths) = {
        let reg = registry();
        (
            reg.children.iter().copied().collect::<Vec<_>>(),
            reg.paths.clone(),
        )
    };
    for &pid in &children {
        kill_group(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    let mut left = children.clone();
    while !left.is_empty() && Instant::now() < deadline {
        // SAFETY: waitpid with WNOHANG on our own children; a child another thread reaped
        // gives ECHILD (-1), which counts as gone.
        left.retain(|&pid| unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0 });
        std::thread::sleep(Duration::from_millis(10));
    }
    for &pid in &children {
        kill_group(pid, libc::SIGKILL);
    }
    for &pid in &left {
        // SAFETY: reaps a child just killed (blocking briefly); ECHILD if another thread did.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    for p in &paths {
        remove(p);
    }
    eprintln!(
        "\nparlinalg report: stopped by signal {sig}; {} child process(es) ended, {} scratch path(s) removed",
        children.len(),
        paths.len()
    );
    std::process::exit(128 + sig)
}
