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
//! build), and on a helper thread started with [`HELPER_STACK`] bytes otherwise: measured
//! (`cargo bench --bench lapack -- --ratios det_from_2mib_thread`) +114 µs on a `det` of
//! n = 100 at 2 threads (1.8× the call in place), nothing measurable at n = 1000. With one
//! BLAS thread, or below OpenBLAS's threshold, OpenBLAS takes its serial `?getrf`, which needs
//! no large stack; since the thread layer gives `?getrf` at most one thread per 10 000
//! elements (`threads/rule.rs`), that is every matrix under 20 000 elements (n < 142 in f64),
//! so a `det` of n = 100 no longer needs the helper at any count.

use std::cell::Cell;
use std::sync::OnceLock;

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
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("parlinalg-getrf".into())
            .stack_size(HELPER_STACK)
            .spawn_scoped(scope, move || {
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
            })?;
        // lax does not panic on valid input; if it ever does, the panic goes on as it is.
        Ok(helper
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
