//! The BLAS-like libraries mapped into this process, from the dynamic loader: several of them
//! means several thread pools (numpy's bundled OpenBLAS beside the system's, MKL, BLIS, ...).

use std::ffi::{c_int, c_void, CStr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Held around every question parlinalg asks the dynamic loader (`dl_iterate_phdr`, `dladdr`).
/// glibc's `dl_iterate_phdr` holds a loader lock that a forked child does not reset: a fork
/// while another thread iterates leaves the child's loader locked for good. parlinalg's fork
/// handler takes this lock before the fork, so no parlinalg call is inside the loader then.
static LOADER: Mutex<()> = Mutex::new(());

/// Takes [`LOADER`] (a panic while holding it leaves nothing inconsistent: it guards no data).
pub(crate) fn loader_lock() -> MutexGuard<'static, ()> {
    LOADER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Files of BLAS-like libraries mapped into this process (OpenBLAS, reference BLAS, MKL, BLIS,
/// FlexiBLAS, numpy's and scipy's bundled OpenBLAS), deduplicated by real path.
///
/// ```
/// let libs = parlinalg::threads::loaded_blas_libraries();
/// assert!(libs.iter().any(|p| p.to_string_lossy().contains("openblas")), "{libs:?}");
/// ```
pub fn loaded_blas_libraries() -> Vec<PathBuf> {
    const PATTERNS: &[&str] = &[
        "libopenblas",
        "libblas.so",
        "libcblas",
        "libmkl_rt",
        "libmkl_core",
        "libblis",
        "libflexiblas",
        "libgoto",
        "libscipy_openblas",
    ];
    let mut found: Vec<PathBuf> = loaded_objects()
        .into_iter()
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase());
            name.is_some_and(|n| PATTERNS.iter().any(|pat| n.starts_with(pat)))
        })
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Paths of every shared object the dynamic loader has mapped.
#[cfg(target_os = "linux")]
fn loaded_objects() -> Vec<PathBuf> {
    unsafe extern "C" fn collect(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid info pointer for the duration of the callback,
        // and `data` is the &mut Vec passed below, alive for the whole iteration.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<PathBuf>>()) };
        if !info.dlpi_name.is_null() {
            // SAFETY: dlpi_name is non-null and NUL-terminated, owned by the loader.
            let name = unsafe { CStr::from_ptr(info.dlpi_name) };
            if !name.to_bytes().is_empty() {
                out.push(PathBuf::from(name.to_string_lossy().into_owned()));
            }
        }
        0
    }
    let mut out: Vec<PathBuf> = Vec::new();
    let _loader = loader_lock();
    // SAFETY: the callback only reads what the loader passes and writes into `out`, which
    // outlives the call; returning 0 continues the iteration.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&mut out as *mut Vec<PathBuf>).cast());
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn loaded_objects() -> Vec<PathBuf> {
    Vec::new()
}
