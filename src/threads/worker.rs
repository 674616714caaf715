//! The threads of parlinalg's rayon pools, started with `pthread_create` rather than
//! `std::thread`.
//!
//! Why: std's thread start and exit take a process-wide lock (its stack-overflow bookkeeping,
//! `std::sys::pal::unix::stack_overflow::thread_info`). A `fork()` made while another thread is
//! starting or ending copies that lock held, and in the child every thread std then starts waits
//! on it forever: a forked child of a program that builds or drops pools while it forks could not
//! run parallel work again (seen in `tests/fork_child.rs`). Threads started here never take that
//! lock; rayon runs its worker loop on them as on its own.

use std::ffi::c_void;
use std::mem::MaybeUninit;

/// Stack reserved for a worker (address space only; pages are committed as they are touched):
/// more than std's 2 MiB default, for OpenBLAS kernels called from a worker.
const WORKER_STACK: usize = 8 << 20;

/// rayon's `spawn_handler`: runs `thread` on a new detached pthread.
pub(super) fn spawn(thread: rayon::ThreadBuilder) -> std::io::Result<()> {
    let name = thread.name().map(str::to_owned);
    spawn_named(name, move || thread.run())
}

/// Runs `f` on a new detached pthread (the budget's release thread).
pub(super) fn spawn_plain(f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    spawn_named(Some("parlinalg-budget".into()), f)
}

type Job = Box<dyn FnOnce() + Send>;

fn spawn_named(name: Option<String>, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    extern "C" fn start(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the box `spawn_named` leaked for this thread; it is taken back once,
        // here.
        let (name, job) = *unsafe { Box::from_raw(arg.cast::<(Option<String>, Job)>()) };
        if let Some(name) = name {
            // The kernel keeps 15 bytes of a thread's name.
            let short: String = name.chars().take(15).collect();
            if let Ok(name) = std::ffi::CString::new(short) {
                // SAFETY: names this thread with a NUL-terminated string of at most 15 bytes.
                unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr()) };
            }
        }
        // A panic must not unwind into C (rayon catches the panics of jobs itself).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        std::ptr::null_mut()
    }
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: initialises the attribute object `attr` points to.
    let rc = unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    // SAFETY: `attr` was initialised just above; both setters only write it.
    unsafe {
        libc::pthread_attr_setstacksize(attr.as_mut_ptr(), WORKER_STACK);
        libc::pthread_attr_setdetachstate(attr.as_mut_ptr(), libc::PTHREAD_CREATE_DETACHED);
    }
    let job: Job = Box::new(f);
    let arg = Box::into_raw(Box::new((name, job))).cast::<c_void>();
    let mut id = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: `id` and `attr` are valid; `start` is an `extern "C" fn` taking and returning a
    // pointer, as pthread_create expects; `arg` stays valid until `start` takes it back.
    let rc = unsafe { libc::pthread_create(id.as_mut_ptr(), attr.as_ptr(), start, arg) };
    // SAFETY: `attr` was initialised and is not used again.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if rc != 0 {
        // SAFETY: the thread was not created, so `start` never took the box: free it here.
        drop(unsafe { Box::from_raw(arg.cast::<(Option<String>, Job)>()) });
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}
