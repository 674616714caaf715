//! Fallible allocation of result buffers, with transparent huge pages for large ones.
//!
//! A fresh result of tens of megabytes costs one page fault per 4 KiB page on first write;
//! with transparent huge pages (THP) in `madvise` mode, the default on Debian and Ubuntu,
//! asking for huge pages cuts that 512-fold. numpy does the same for arrays of 4 MiB and more
//! (`madvise(MADV_HUGEPAGE)` in its allocator).

use crate::{Error, Result};

/// Buffers at least this large get `MADV_HUGEPAGE`, as in numpy.
pub(crate) const HUGEPAGE_THRESHOLD_BYTES: usize = 4 << 20;

/// Size of an x86-64 / aarch64 transparent huge page.
const HUGEPAGE_BYTES: usize = 2 << 20;

/// An empty vector with capacity for exactly `len` elements, or [`Error::Allocation`] when the
/// allocator refuses (instead of aborting the process). Large buffers are advised to use huge
/// pages before anything touches them.
pub(crate) fn uninit_buffer<T>(op: &'static str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::<T>::new();
    v.try_reserve_exact(len).map_err(|_| Error::Allocation {
        op,
        shape: vec![len],
    })?;
    advise_huge_pages(v.as_mut_ptr().cast::<u8>(), len * std::mem::size_of::<T>());
    Ok(v)
}

/// `len` copies of `value`, allocated fallibly.
pub(crate) fn filled<T: Copy>(op: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = uninit_buffer(op, len)?;
    v.resize(len, value);
    Ok(v)
}

/// Advises the kernel to back the whole 2 MiB pages inside `[ptr, ptr + bytes)` with huge
/// pages. A hint: failure (no THP, another OS) changes nothing but speed.
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    if bytes < HUGEPAGE_THRESHOLD_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = (ptr as usize).next_multiple_of(HUGEPAGE_BYTES);
        let end = (ptr as usize + bytes) / HUGEPAGE_BYTES * HUGEPAGE_BYTES;
        if end > start {
            // SAFETY: [start, end) lies inside the allocation we own (start rounded up, end
            // rounded down); MADV_HUGEPAGE only changes how pages are backed, never their
            // contents, and the memory is not yet initialised anyway.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = ptr;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_allocate() {
        let v = uninit_buffer::<f64>("t", 10).unwrap();
        assert!(v.capacity() >= 10 && v.is_empty());
        let big = filled("t", 1 << 20, 1.5f64).unwrap(); // 8 MiB: advised
        assert_eq!(big.len(), 1 << 20);
        assert!(big.iter().all(|&x| x == 1.5));
    }

    #[test]
    fn impossible_sizes_are_errors() {
        let err = uninit_buffer::<f64>("t", usize::MAX / 4).unwrap_err();
        assert!(matches!(err, Error::Allocation { op: "t", .. }), "{err:?}");
    }
}
