//! Scoped BLAS thread counts: a guard and a closure form.
//!
//! Semantics, decided once for the process-wide setting of OpenBLAS's pthreads build:
//! - within one thread, scopes nest LIFO: the innermost applies;
//! - across threads, overlapping scopes give the **smallest** of each thread's innermost
//!   request (never more threads than anyone asked for, so never oversubscribed);
//! - when the last scope closes, in whatever order, the baseline (environment or
//!   [`set_blas_threads`](super::set_blas_threads)) is back.
//!
//! Guards restore on drop, also while a panic unwinds, and cannot be sent to another thread.

use std::marker::PhantomData;

use super::config::check_thread_count;
use super::control::{control, Control};
use crate::Result;

/// An open BLAS-threads scope; closing it (dropping the guard) restores the previous count.
///
/// Created by [`blas_threads_scope`]. Not `Send`: a scope belongs to the thread that opened it.
#[must_use = "the scope closes as soon as the guard is dropped"]
pub struct BlasThreadsGuard {
    control: &'static Control,
    id: u64,
    threads: usize,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for BlasThreadsGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlasThreadsGuard")
            .field("threads", &self.threads)
            .finish()
    }
}

impl BlasThreadsGuard {
    /// The count this scope asked for.
    ///
    /// ```
    /// let scope = parlinalg::threads::blas_threads_scope(1)?;
    /// assert_eq!(scope.threads(), 1);
    /// # Ok::<(), parlinalg::Error>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Drop for BlasThreadsGuard {
    fn drop(&mut self) {
        self.control.pop_scope(self.id);
    }
}

/// Opens a scope in which BLAS calls use `threads` threads (see the [module docs](crate::threads) for
/// overlapping scopes on several threads).
///
/// # Errors
/// [`Error::InvalidThreadCount`](crate::Error::InvalidThreadCount) for 0 or more than
/// OpenBLAS's compiled maximum; [`Error::InvalidEnv`](crate::Error::InvalidEnv) if a thread
/// variable of the environment holds junk.
///
/// ```
/// use parlinalg::threads::{blas_threads, blas_threads_scope};
///
/// let before = blas_threads();
/// {
///     let _one = blas_threads_scope(1)?;
///     assert_eq!(blas_threads(), 1);
/// }
/// assert_eq!(blas_threads(), before);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn blas_threads_scope(threads: usize) -> Result<BlasThreadsGuard> {
    let control = control()?;
    check_thread_count("BLAS threads", threads, control.max_blas)?;
    Ok(BlasThreadsGuard {
        control,
        id: control.push_scope(threads),
        threads,
        _not_send: PhantomData,
    })
}

/// Runs `f` with BLAS calls using `threads` threads, then restores the previous count (also if
/// `f` panics).
///
/// # Errors
/// As [`blas_threads_scope`].
///
/// ```
/// use parlinalg::ndarray::Array2;
///
/// let a = Array2::<f64>::eye(64);
/// let c = parlinalg::threads::with_blas_threads(1, || parlinalg::matmul(&a, &a))??;
/// assert_eq!(c, a);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn with_blas_threads<R>(threads: usize, f: impl FnOnce() -> R) -> Result<R> {
    let _scope = blas_threads_scope(threads)?;
    Ok(f())
}
