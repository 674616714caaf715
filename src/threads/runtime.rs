//! The thread layer as an operation sees it: one entry, [`enter`], which checks the
//! environment, and a handle through which every BLAS call and every parallel loop runs.
//!
//! An operation (a product, a LAPACK routine, an elementwise map, a reduction) calls [`enter`]
//! once, first: a thread variable holding junk is then its [`Error::InvalidEnv`], also when it
//! has nothing to compute (an empty array). It cannot reach BLAS or the outer pool without the
//! [`Runtime`] that `enter` returns, so no operation can forget the check.
//!
//! [`Error::InvalidEnv`]: crate::Error::InvalidEnv

use rayon::ThreadPool;
use std::sync::Arc;

use super::control::{control, Control};
use super::plan;
use super::rule::CallSize;
use crate::Result;

/// The process's thread layer, for one operation: see [`enter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runtime {
    control: &'static Control,
}

/// The thread layer, built from the environment on first use.
///
/// # Errors
/// [`crate::Error::InvalidEnv`] when a thread variable holds junk (the same error every time).
#[inline]
pub(crate) fn enter() -> Result<Runtime> {
    Ok(Runtime {
        control: control()?,
    })
}

impl Runtime {
    /// Runs one BLAS or LAPACK call of `size` at the count the thread layer gives it.
    #[inline]
    pub(crate) fn blas_call<R>(self, size: CallSize, f: impl FnOnce() -> R) -> R {
        self.control.call(size, f)
    }

    /// Runs `f` where parlinalg's parallel operations belong: in the current rayon pool when
    /// called from one (a plan's, the user's own, or inside a parallel operation), in the pool
    /// of the innermost plan entered on this thread, else in the outer pool of the configured
    /// size. When that pool cannot be built (no thread can be spawned), `f` runs here.
    pub(crate) fn in_outer_pool<R: Send>(self, f: impl FnOnce() -> R + Send) -> R {
        match self.pool_here() {
            None => f(),
            Some(Ok(p)) => p.install(f),
            Some(Err(_)) => f(),
        }
    }

    /// The outer thread count a parallel operation started here would use.
    pub(crate) fn outer_threads_here(self) -> usize {
        if rayon::current_thread_index().is_some() {
            return rayon::current_num_threads();
        }
        match plan::entered_pool() {
            Some(p) => p.current_num_threads(),
            None => self.control.outer().value,
        }
    }

    /// `None` inside a rayon pool (work runs there), else the pool to install into.
    fn pool_here(self) -> Option<Result<Arc<ThreadPool>>> {
        if rayon::current_thread_index().is_some() {
            return None;
        }
        if let Some(p) = plan::entered_pool() {
            return Some(Ok(p));
        }
        Some(plan::pool(self.control.outer().value))
    }
}
