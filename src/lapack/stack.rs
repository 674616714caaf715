//! `?getrf` where its stack need is met: on the calling thread when it has the room, on a
//! helper thread with a large stack otherwise.
//!
//! OpenBLAS's multithreaded `?getrf` (`lapack/getrf/getrf_parallel.c`, taken from 10 000
//! elements on with more than one BLAS thread) keeps `job_t job[MAX_CPU_NUMBER]` on the stack
//! at every level of its recursion, each `job_t` being `MAX_CPU_NUMBER × CACHE_LINE_SIZE ×
//! DIVIDE_RATE` words: `MAX_THREADS² × 128` bytes a level, 0.5 MiB for Debian's
//! `MAX_THREADS=64` (OpenBLAS issues #246, #1082, #3229). Measured with Debian's 0.3.21 and
//! 2 threads (`cargo run --release --example getrf_stack`): 3.1 MiB at n = 100, 3.6 MiB at
//! 150 and 257, 4.1 MiB at 500, 4.6 MiB from 1000 to 3000; nothing at n = 64 or with one
//! thread. A Rust thread has 2 MiB unless told otherwise (`std::thread::spawn`, rayon's
//! workers, the test harness) and a process's main thread 8 MiB (`ulimit -s`); overflowing is
//! a SIGSEGV, not a panic.
//!
//! So the need is estimated from the loaded library's `MAX_THREADS` and the order, with a
//! margin over what was measured ([`stack_need`]); the call runs in place when the calling
//! thread has that much stack left (the main thread, for n up to about 2000 with Debian's
//! build), and otherwise on a helper thread with [`HELPER_STACK`] bytes, started on first need
//! and kept ([`on_helper`]). Started per call, it cost (`cargo bench --bench lapack --
//! --ratios det_from_2mib_thread`) +114 µs on a `det` of n = 100 at 2 threads (1.8× the call in
//! place) and 1.59× at n = 200, most of it the page faults of a fresh stack; kept, 1.16× at
//! n = 200 and 1.00–1.02× at n = 1000 (BENCHMARKS.md, section 9). With one
//! BLAS thread, or below OpenBLAS's threshold, OpenBLAS takes its serial `?getrf`, which needs
//! no large stack; since the thread layer gives `?getrf` at most one thread per 10 000
//! elements (`threads/rule.rs`), that is every matrix under 20 000 elements (n < 142 in f64),
//! so a `det` of n = 100 no longer needs the helper at any count.

use std::cell::Cell;
use std::sync::{mpsc, Mutex, OnceLock};

use super::*;

/// Matrices below this many elements never take OpenBLAS's parallel `?getrf` (0.3.21 takes it
/// from 10 000 on; the threshold is lower so that a version with a lower one is covered too).
pub(super) const PARALLEL_GETRF_MIN_ELEMENTS: usize = 4096;

/// Stack of the helper thread: more than ten times the largest use measured with
/// `MAX_THREADS=64`. Only address space is reserved; pages are committed as they are touched.
pub(super) const HELPER_STACK: usize = 64 << 20;

/// `?getrf` (C layout, see `lu::prepare`) on the `n × n` `factors`. The outer `Result` is
/// parlinalg's (the helper could not start), the inner one LAPACK's.
pub(super) fn getrf<T: Float>(n: c_int, factors: &mut [T]) -> Result<lax::error::Result<Vec<i32>>> {
    // The controller has already set the count for this call.
    let caller = crate::threads::CallerThreads::of_this_thread();
    let serial = factors.len() < PARALLEL_GETRF_MIN_ELEMENTS || caller.count() == 1;
    let room = stack_need(n as usize).is_some_and(|need| free_stack().is_some_and(|f| f >= need));
    if serial || room {
        return Ok(T::lax_getrf(c_order_layout(n), factors));
    }
    on_helper(move || {
        caller.adopt_here();
        T::lax_getrf(c_order_layout(n), factors)
    })
    .map_err(|e| Error::Lapack {
        routine: Routine::Getrf.name::<T>(),
        info: 0,
        why: format!(
            "cannot start a thread with a {} MiB stack for it: {e}",
            HELPER_STACK >> 20
        ),
    })
}

/// A job for the kept helper thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The kept helper: started on first need, one per process, it runs the jobs handed to it one
/// after another (multithreaded `?getrf` calls queue for one another in every OpenBLAS build
/// anyway). Kept, because a fresh 64 MiB stack faults in the megabytes the parallel `?getrf`
/// touches on every call: a thread started per call made a `det` of n = 200 at 2 threads from
/// a 2 MiB thread take 1.59× the call in place, the kept one 1.16× (BENCHMARKS.md, section 9).
/// What it touched stays resident (about 4–5 MiB with Debian's build).
struct Helper {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// The process that started it: a forked child has no such thread.
    pid: u32,
}

static HELPER: OnceLock<std::io::Result<Helper>> = OnceLock::new();

/// Runs `f` on the kept helper thread and waits for it (a panic in `f` goes on in the caller);
/// in a forked child of the process that started the helper, or where the helper could not
/// start, on a thread started for the call. `Err` when no thread can start.
fn on_helper<R: Send>(f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    let helper = HELPER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("parlinalg-getrf".into())
            .stack_size(HELPER_STACK)
            .spawn(move || {
                for job in queue {
                    job();
                }
            })?;
        Ok(Helper {
            jobs: Mutex::new(jobs),
            pid: std::process::id(),
        })
    });
    let helper = match helper {
        Ok(helper) if helper.pid == std::process::id() => helper,
        // A forked child, or the helper could not start (that is not kept: the call tries a
        // thread of its own, and says why if that fails too).
        _ => return on_thread_of_its_own(f),
    };
    let (done, result) = mpsc::sync_channel(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // The caller waits for this; it is gone only if it panicked itself.
        let _ = done.send(outcome);
    });
    // SAFETY: only the lifetime is changed, to hand the job to a thread that outlives this
    // call. The job borrows from this frame; this function returns only after `result.recv()`
    // returned, which happens once `done` is gone: after the job ran (it sent), or was dropped
    // unrun (the helper's queue is dropped with the helper). Either way no borrow is used after
    // this function returns.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    // A poisoned lock guards only a sender: used as it is.
    let sent = helper
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job);
    if sent.is_err() {
        return Err(std::io::Error::other("the helper thread is gone"));
    }
    match result.recv() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(std::io::Error::other("the helper thread is gone")),
    }
}

/// `f` on a thread of its own with [`HELPER_STACK`], started for the call.
fn on_thread_of_its_own<R: Send>(f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("parlinalg-getrf".into())
            .stack_size(HELPER_STACK)
            .spawn_scoped(scope, f)?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// The stack OpenBLAS's parallel `?getrf` of order `n` may use: `MAX_THREADS² × 128` bytes
/// per recursion level, `⌊log₂ n⌋ + 3` levels (the recursion halves the panel; the measured
/// use is below this: 3.1 MiB where this gives 5.5 MiB at n = 100, 4.6 MiB where it gives
/// 7 MiB at n = 1000), plus 1 MiB for the rest of the frames. `None` when the library does not say its `MAX_THREADS`.
pub(super) fn stack_need(n: usize) -> Option<usize> {
    static MAX_THREADS: OnceLock<Option<usize>> = OnceLock::new();
    let max = (*MAX_THREADS.get_or_init(|| crate::blas_library().max_threads))?;
    let levels = usize::try_from(n.max(2).ilog2()).ok()? + 3;
    max.checked_mul(max)?
        .checked_mul(128)?
        .checked_mul(levels)?
        .checked_add(1 << 20)
}

/// The bytes of stack left below the caller's frame on this thread, from its stack's lowest
/// address (asked once per thread: for the main thread glibc reads `/proc/self/maps`).
/// `None` where the system does not say.
pub(super) fn free_stack() -> Option<usize> {
    thread_local! {
        static LOWEST: Cell<Option<usize>> = const { Cell::new(None) };
    }
    let lowest = match LOWEST.get() {
        Some(lowest) => lowest,
        None => {
            let lowest = stack_lowest_address()?;
            LOWEST.set(Some(lowest));
            lowest
        }
    };
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    sp.checked_sub(lowest)
}

/// The lowest usable address of this thread's stack (above its guard page).
fn stack_lowest_address() -> Option<usize> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read and destroyed
    // once; pthread_attr_getstack and pthread_attr_getguardsize only write the out-pointers.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let (mut addr, mut size, mut guard) = (std::ptr::null_mut(), 0usize, 0usize);
        let got = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size) == 0
            && libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard) == 0;
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (got && !addr.is_null() && size > 0).then(|| addr as usize + guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_grows_with_the_order_and_covers_what_was_measured() {
        // Debian's 0.3.21 has MAX_THREADS=64: measured 3.1 MiB at n = 100, 3.6 MiB at 257,
        // 4.6 MiB at 1000 and 3000 (examples/getrf_stack.rs).
        if crate::blas_library().max_threads == Some(64) {
            let mib = |n| stack_need(n).unwrap() as f64 / (1 << 20) as f64;
            assert!(mib(100) >= 3.1 && mib(257) >= 3.6 && mib(1000) >= 4.6 && mib(3000) >= 4.6);
        }
        if let (Some(a), Some(b)) = (stack_need(100), stack_need(10_000)) {
            assert!(a < b);
        }
    }

    #[test]
    fn a_small_thread_has_less_free_stack_than_the_need_of_a_large_order() {
        let free = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(free_stack)
            .unwrap()
            .join()
            .unwrap()
            .expect("glibc reports a thread's stack");
        assert!(free < 1 << 20 && free > 1 << 19, "{free}");
        let big = std::thread::Builder::new()
            .stack_size(HELPER_STACK)
            .spawn(free_stack)
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(big > HELPER_STACK - (1 << 20), "{big}");
    }

    /// Every call runs on the same kept thread, with the large stack; a panic there goes on in
    /// the caller and leaves the helper working.
    #[test]
    fn the_helper_is_kept_and_survives_a_panic() {
        let here = std::thread::current().id();
        let first = on_helper(|| (std::thread::current().id(), free_stack())).unwrap();
        let second = on_helper(|| std::thread::current().id()).unwrap();
        assert!(first.0 != here && first.0 == second);
        assert!(first.1.unwrap() > HELPER_STACK - (1 << 20));
        let mut borrowed = vec![1.0f64; 4];
        on_helper(|| borrowed.iter_mut().for_each(|v| *v *= 2.0)).unwrap();
        assert_eq!(borrowed, [2.0; 4]);
        let panicked = std::panic::catch_unwind(|| on_helper(|| panic!("on the helper")));
        assert!(panicked.is_err());
        assert_eq!(on_helper(|| 7).unwrap(), 7);
    }

    #[test]
    fn getrf_in_place_and_on_the_helper_give_the_same_factors() {
        // 2 BLAS threads and 300² elements: OpenBLAS's parallel getrf. On a thread of 64 MiB
        // it runs in place (the need is about 7 MiB); on one of 2 MiB, on the helper.
        let a = ndarray::Array2::from_shape_fn((300, 300), |(i, j)| {
            ((i * 37 + j * 11) % 101) as f64 / 101.0 - 0.5 + if i == j { 4.0 } else { 0.0 }
        });
        let run = |stack: usize| {
            let a = a.clone();
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let _two = crate::threads::blas_threads_scope(2).unwrap();
                    let in_place =
                        stack_need(300).is_some_and(|need| free_stack().unwrap() >= need);
                    (in_place, crate::inv(&a).unwrap(), crate::det(&a).unwrap())
                })
                .unwrap()
                .join()
                .unwrap()
        };
        let (small, big) = (run(2 << 20), run(HELPER_STACK));
        assert!(!small.0, "a 2 MiB thread has not the room");
        if crate::blas_library().max_threads.is_some() {
            assert!(big.0, "a 64 MiB thread has the room");
        }
        let worst = (&small.1 - &big.1)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(worst <= 1e-12, "{worst:e}");
        assert!((small.2 - big.2).abs() <= 1e-12 * big.2.abs());
    }
}
