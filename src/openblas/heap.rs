//! Keeps glibc's heap from handing its top back to the kernel after every threaded product.
//!
//! **Why**: OpenBLAS's threaded level-3 driver `malloc`s its job table on every call that runs
//! on more than one thread, and frees it on return (`MAX_CPU_NUMBER` entries: 512 KiB in a
//! build for 64 threads). glibc starts with a 128 KiB `mmap` threshold and raises it, with the
//! trim threshold at twice its value, to the size of each larger `mmap`ed block the program
//! frees. In a loop of threaded products whose result is about as large as the job table
//! (f64 results near 256×256), the result and the table together reach the trim threshold: every
//! free of the result gives the heap's top back to the kernel, and the next call page-faults it
//! in again, on both threads. That costs more than the product's own arithmetic.
//!
//! **What**: once, before the first call OpenBLAS may thread, parlinalg allocates and frees one
//! block of [`PRIME_BYTES`] with glibc's `malloc`. glibc serves it by `mmap` (it is above the
//! threshold, unless the program already freed a larger block) and, on `free`, raises its
//! thresholds as it would after any program's first large temporary: `mmap` threshold 4 MiB,
//! trim threshold 8 MiB. Nothing is disabled: glibc keeps adjusting them by itself. A program
//! that fixed them (`mallopt`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`) keeps its own
//! values, since glibc then adjusts nothing. Other C libraries and Rust global allocators are
//! not touched (on them this does nothing OpenBLAS's `malloc` would notice).

/// The block that raises glibc's dynamic thresholds: twice the job table of an OpenBLAS build
/// for 128 threads (2 MiB), so that a table and a result together never reach the trim
/// threshold (results above glibc's 32 MiB cap are `mmap`ed per call anyway, at any thread
/// count).
pub(crate) const PRIME_BYTES: usize = 4 << 20;

/// Raises glibc's dynamic `mmap` and trim thresholds once (see the module docs); later calls
/// do nothing.
pub(crate) fn prime_malloc_thresholds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc and free of one block that nobody else sees; the volatile write stays
        // inside it (checked non-null first). The write keeps the pair: the optimiser may
        // remove a `malloc` whose block is only freed, and the effect wanted is on glibc's
        // state, not on the block.
        unsafe {
            let block = libc::malloc(PRIME_BYTES).cast::<u8>();
            if !block.is_null() {
                std::ptr::write_volatile(block, 0);
            }
            libc::free(block.cast());
        }
    });
}
