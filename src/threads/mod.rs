//! How many threads BLAS and the outer pool run.
//!
//! OpenBLAS's thread count is process-wide in its pthreads build (the one Debian and Ubuntu
//! ship) and per calling thread in its OpenMP build.

use crate::blas::info::BlasLibrary;
use crate::{Error, Result};

/// parlinalg's own ceiling on any thread count, whatever the library allows.
pub const MAX_THREADS: usize = 4096;

/// The BLAS thread count now in force (`openblas_get_num_threads`).
///
/// ```
/// assert!(parlinalg::threads::blas_threads() >= 1);
/// ```
pub fn blas_threads() -> usize {
    usize::try_from(crate::blas::get_num_threads()).unwrap_or(1)
}

/// The largest BLAS thread count the loaded OpenBLAS accepts: its compiled `MAX_THREADS`
/// (capped at [`MAX_THREADS`]).
pub fn blas_max_threads() -> usize {
    BlasLibrary::query()
        .max_threads
        .map_or(MAX_THREADS, |m| m.clamp(1, MAX_THREADS))
}

/// Sets the BLAS thread count (`openblas_set_num_threads`).
///
/// # Errors
/// [`Error::InvalidThreadCount`] for 0 or a count above [`blas_max_threads`] (OpenBLAS would
/// silently clamp it).
///
/// ```
/// let before = parlinalg::threads::blas_threads();
/// parlinalg::threads::set_blas_threads(1)?;
/// assert_eq!(parlinalg::threads::blas_threads(), 1);
/// parlinalg::threads::set_blas_threads(before)?;
/// assert!(parlinalg::threads::set_blas_threads(0).is_err());
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn set_blas_threads(n: usize) -> Result<()> {
    let max = blas_max_threads();
    check_thread_count("BLAS threads", n, max)?;
    let n = std::ffi::c_int::try_from(n).expect("n <= MAX_THREADS fits c_int");
    crate::blas::set_num_threads(n);
    Ok(())
}

/// `Ok` when `1 ≤ n ≤ max`.
pub(crate) fn check_thread_count(what: &'static str, n: usize, max: usize) -> Result<()> {
    let why = if n == 0 {
        "must be at least 1".to_owned()
    } else if n > max {
        format!("above the maximum {max}")
    } else {
        return Ok(());
    };
    Err(Error::InvalidThreadCount {
        what,
        value: n,
        why,
    })
}
