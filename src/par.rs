//! Splitting elementwise work over the caller's rayon pool, and fresh output buffers.
//!
//! Nothing here builds a pool: parallel work runs where the thread layer says
//! (the thread layer's `Runtime::in_outer_pool`): in the current rayon pool when called from one (a plan's,
//! or the user's own), else in parlinalg's outer pool of the configured size. Below a size
//! threshold everything runs on the calling thread.

use std::mem::MaybeUninit;

use ndarray::{Array, Dimension, ShapeBuilder};
use rayon::prelude::*;

use crate::threads::Runtime;
use crate::{Error, Result};

// Each threshold below is where the serial work is a few times what handing it to the pool costs
// (waking the other workers), so that splitting cannot lose much even when another core is busy.
// The op's cost per element sets where that is: transcendental maps cost several times an
// arithmetic one, reductions less. The measurements behind the numbers are in BENCHMARKS.md
// ("Elementwise maths and reductions", with their machine and command).

/// Below this many elements a transcendental map (`exp`, `ln`, `tanh`, `sigmoid`) runs
/// serially.
pub(crate) const PAR_MIN_TRANSCENDENTAL: usize = 1 << 15;

/// Below this many elements an arithmetic map (`+ - * /`, `sqrt`) runs serially.
pub(crate) const PAR_MIN_ARITHMETIC: usize = 1 << 17;

/// Below this many elements a reduction runs serially.
pub(crate) const PAR_MIN_REDUCE: usize = 1 << 17;

/// Outputs at least this large are written with non-temporal (streaming) stores where the
/// SIMD level has them: as large as a big last-level cache, so caching them only costs a read of
/// every output line before it is written. The AVX-512 level streams fresh and existing outputs;
/// the AVX2 level streams through a staging buffer (`simd/stream.rs`), into existing outputs
/// only (`elementwise::streams` says why). The A/B runs are in BENCHMARKS.md
/// ("Elementwise maths and reductions").
pub(crate) const STREAM_MIN_BYTES: usize = 32 << 20;

/// Size of a transparent huge page on x86-64 Linux; parallel chunks of large outputs start on
/// multiples of it, so that no two threads fault in the same huge page.
const HUGE_PAGE: usize = 2 << 20;

/// A small page; chunks of mid-sized outputs start on multiples of it.
const PAGE: usize = 4096;

/// Whether `len` elements are worth splitting over the current pool.
pub(crate) fn worth_splitting(rt: Runtime, len: usize, min_len: usize) -> bool {
    len >= min_len && rt.outer_threads_here() > 1
}

/// A new array of `shape` (C order, or F order when `f_order`), uninitialised, allocated
/// fallibly; large ones are advised to use huge pages (as numpy does from 4 MiB). Its pages are not touched here: the
/// threads that fill the array fault them in, each its own chunk (first touch).
pub(crate) fn uninit_array<T, D: Dimension>(
    op: &'static str,
    shape: D,
    f_order: bool,
) -> Result<Array<MaybeUninit<T>, D>> {
    let too_large = || Error::Allocation {
        op,
        shape: shape.slice().to_vec(),
    };
    let len = shape.size_checked().ok_or_else(too_large)?;
    len.checked_mul(std::mem::size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(too_large)?;
    // Fallible, and advised to use huge pages when large (`crate::alloc`).
    let mut v = crate::alloc::uninit_buffer::<MaybeUninit<T>>(op, len)?;
    // SAFETY: the capacity is at least `len` and `MaybeUninit<T>` needs no initialisation.
    unsafe { v.set_len(len) };
    let shape = shape.set_f(f_order);
    Ok(Array::from_shape_vec(shape, v).expect("the vector holds exactly the shape's elements"))
}

/// Calls `f(offset, chunk)` over pieces of `dst` that together cover it once, in parallel on
/// the current pool when `dst` has at least `min_len` elements. Split points fall on page (or,
/// for large buffers, huge page) boundaries of `dst`, so each page is first touched by the
/// thread that writes it.
pub(crate) fn for_each_chunk<T, F>(rt: Runtime, dst: &mut [T], min_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let n = dst.len();
    if !worth_splitting(rt, n, min_len) {
        f(0, dst);
        return;
    }
    rt.in_outer_pool(|| split_chunks(dst, &f));
}

/// The parallel part of [`for_each_chunk`], run inside the outer pool.
fn split_chunks<T, F>(dst: &mut [T], f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let n = dst.len();
    let size = std::mem::size_of::<T>().max(1);
    // About four pieces per thread, at least a page, at most a huge page.
    let target = (n / (4 * rayon::current_num_threads())).max(1) * size;
    let align = if target >= HUGE_PAGE { HUGE_PAGE } else { PAGE };
    let per = (target.min(HUGE_PAGE) / align * align / size).max(1);
    let addr = dst.as_ptr() as usize;
    let head = ((addr.next_multiple_of(align) - addr) / size).min(n);
    let (first, rest) = dst.split_at_mut(head);
    rayon::join(
        || {
            if !first.is_empty() {
                f(0, first)
            }
        },
        || {
            rest.par_chunks_mut(per)
                .enumerate()
                .for_each(|(i, c)| f(head + i * per, c))
        },
    );
}

/// `&mut [T]` seen as `&mut [MaybeUninit<T>]`, for kernels that only write.
pub(crate) fn as_uninit_mut<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's size and alignment; every value written through the
    // result is an initialised T, so `s` stays initialised when the borrow ends.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

#[cfg(test)]
fn rt() -> Runtime {
    crate::threads::enter().expect("the test environment is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn chunks_cover_every_element_once_whatever_the_threads() {
        for threads in [1, 2, 3, 7] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for n in [0, 1, 4095, 4096, 100_003, 1 << 20] {
                let mut v = vec![0u32; n];
                let calls = AtomicUsize::new(0);
                pool.install(|| {
                    for_each_chunk(rt(), &mut v, 1000, |off, c| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        for (i, x) in c.iter_mut().enumerate() {
                            *x += (off + i) as u32 + 1;
                        }
                    })
                });
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 + 1));
                assert!(calls.load(Ordering::Relaxed) >= 1);
            }
        }
    }

    #[test]
    fn uninit_array_orders_and_sizes() {
        let a = uninit_array::<f64, _>("t", ndarray::Dim([3, 4]), true).unwrap();
        assert_eq!(a.strides(), &[1, 3]);
        let a = uninit_array::<f64, _>("t", ndarray::Dim([3, 4]), false).unwrap();
        assert_eq!(a.strides(), &[4, 1]);
        let e = uninit_array::<f64, _>("t", ndarray::Dim([usize::MAX, 4]), false);
        assert!(matches!(e, Err(Error::Allocation { .. })));
        // Big enough for the huge-page advice.
        let a = uninit_array::<f32, _>("t", ndarray::Dim([1 << 21]), false).unwrap();
        assert_eq!(a.len(), 1 << 21);
    }
}

#[cfg(test)]
mod outer_pool_tests {
    use super::*;
    use crate::threads::Plan;

    /// Elementwise work follows the thread layer: a plan of one outer thread keeps it serial, a
    /// plan of K splits it over K threads. K is one more than the cores, so that no default pool
    /// (rayon's or parlinalg's, one thread per core) has K threads and work run outside the
    /// plan's pool shows on any machine.
    #[test]
    fn splitting_follows_the_entered_plan() {
        let big = PAR_MIN_ARITHMETIC * 4;
        {
            let _serial = Plan::new(1, 1).unwrap().enter().unwrap();
            assert!(!worth_splitting(rt(), big, PAR_MIN_ARITHMETIC));
        }
        let k = crate::threads::Cores::detect().count + 1;
        let _plan = Plan::new(k, 1).unwrap().enter().unwrap();
        assert!(worth_splitting(rt(), big, PAR_MIN_ARITHMETIC));
        let mut data = vec![0u32; big];
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        for_each_chunk(rt(), &mut data, PAR_MIN_ARITHMETIC, |_, chunk| {
            chunk.iter_mut().for_each(|v| *v = 1);
            // A worker of a K-thread rayon pool (the plan's: the only one of that size here).
            let pool = (rayon::current_thread_index(), rayon::current_num_threads());
            seen.lock().unwrap().insert((pool.0.is_some(), pool.1));
        });
        assert!(data.iter().all(|&v| v == 1));
        let seen = seen.into_inner().unwrap();
        assert_eq!(
            seen,
            std::collections::HashSet::from([(true, k)]),
            "work ran outside the plan's pool"
        );
    }
}
