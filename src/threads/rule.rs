//! The decisions of the thread layer that read no process state: which calls OpenBLAS may
//! thread, and the BLAS count a call gets. Pure; the controller (`control.rs`) feeds them its
//! state under its lock.

use std::time::Duration;

use super::config::BlasThreads;

/// After two application threads overlapped in BLAS calls, `auto` keeps BLAS single-threaded
/// this long, so that a caller arriving between another's short calls does not grab every core
/// for a long call (without it, the p99 latency of a small product beside large ones follows
/// the large ones: BENCHMARKS.md, "The thread layer", latency).
pub(crate) const OVERLAP_WINDOW: Duration = Duration::from_millis(50);

/// How big a call is, to tell whether OpenBLAS may thread it (OpenBLAS 0.3's own thresholds:
/// it runs smaller calls on the calling thread, without its lock).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CallSize {
    /// `?gemm`: OpenBLAS threads when m·n·k ≥ 65536 · GEMM_MULTITHREAD_THRESHOLD (4).
    Gemm { m: usize, n: usize, k: usize },
    /// `?gemv`: threads when m·n ≥ 2304 · 4.
    Gemv { m: usize, n: usize },
    /// `?dot`: threads when n > 10000.
    Dot { n: usize },
    /// A LAPACK routine on an n×n problem: blocked routines call threaded level-3 BLAS.
    Lapack { n: usize },
    /// `?getrf` of an n×n matrix (`single`: f32): threaded from [`lu_elements_per_thread`]
    /// elements on.
    Lu { n: usize, single: bool },
    /// `?potrf` of order n (`single`: f32): threaded from [`cholesky_columns_per_thread`]
    /// columns on.
    Cholesky { n: usize, single: bool },
}

/// Elements of the matrix per thread of OpenBLAS's `?getrf`: it runs smaller matrices on one
/// thread, and from 0.3.27 on gives a larger one at most one thread per this many
/// (`interface/lapack/getrf.c`).
pub(crate) const fn lu_elements_per_thread(single: bool) -> usize {
    if single {
        40_000
    } else {
        10_000
    }
}

/// Columns per thread of OpenBLAS's `?potrf`, as [`lu_elements_per_thread`]
/// (`interface/lapack/potrf.c`).
pub(crate) const fn cholesky_columns_per_thread(single: bool) -> usize {
    if single {
        128
    } else {
        64
    }
}

impl CallSize {
    pub(crate) fn may_thread(self) -> bool {
        match self {
            CallSize::Gemm { m, n, k } => m.saturating_mul(n).saturating_mul(k) >= 65_536 * 4,
            CallSize::Gemv { m, n } => m.saturating_mul(n) >= 2_304 * 4,
            CallSize::Dot { n } => n > 10_000,
            CallSize::Lapack { n } => n >= 64,
            CallSize::Lu { .. } | CallSize::Cholesky { .. } => self.useful_threads() >= 1,
        }
    }

    /// The most threads the call can use: for `?getrf` and `?potrf`, OpenBLAS 0.3.27's cap (one
    /// thread per [`lu_elements_per_thread`] elements, per [`cholesky_columns_per_thread`]
    /// columns; 0 below the first), which older versions lack (2 threads at n = 100 made a
    /// `dgetrf` 1.2× and a `dpotrf` 1.8× slower than 1 thread: BENCHMARKS.md, section 9).
    /// Unbounded for the other calls.
    pub(crate) fn useful_threads(self) -> usize {
        match self {
            CallSize::Lu { n, single } => n.saturating_mul(n) / lu_elements_per_thread(single),
            CallSize::Cholesky { n, single } => n / cholesky_columns_per_thread(single),
            _ => usize::MAX,
        }
    }
}

/// What the count rule reads of the controller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RuleInputs {
    /// The smallest of each thread's innermost open scope, if any scope is open.
    pub scoped: Option<usize>,
    /// The baseline outside scopes.
    pub baseline: BlasThreads,
    /// `PARLINALG_DETERMINISTIC=1`.
    pub deterministic: bool,
    /// The usable cores, capped at OpenBLAS's maximum.
    pub usable: usize,
}

/// The rule, stated once: the BLAS count for a call OpenBLAS may thread, `overlapping` when
/// callers overlapped within [`OVERLAP_WINDOW`].
///
/// Open scopes and a fixed count are honoured exactly. Under `auto`: every usable core for a
/// caller that is alone, and one thread per call while callers overlap, on every build:
/// concurrent multithreaded calls queue for one another in the pthreads and OpenMP builds alike
/// (`openblas/backend.rs`), so splitting the cores among them would only leave cores idle. In
/// deterministic mode every usable core whatever the others do, since the count changes the
/// bits.
pub(crate) fn blas_count(inputs: RuleInputs, overlapping: bool) -> usize {
    match (inputs.scoped, inputs.baseline) {
        (Some(n), _) | (None, BlasThreads::Fixed(n)) => n,
        (None, BlasThreads::Auto) if inputs.deterministic => inputs.usable,
        (None, BlasThreads::Auto) if overlapping => 1,
        (None, BlasThreads::Auto) => inputs.usable,
    }
}

/// Whether [`blas_count`] depends on what other callers do.
pub(crate) fn depends_on_callers(inputs: RuleInputs) -> bool {
    inputs.scoped.is_none() && inputs.baseline == BlasThreads::Auto && !inputs.deterministic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openblas_thresholds() {
        assert!(!CallSize::Gemm { m: 4, n: 4, k: 4 }.may_thread());
        assert!(!CallSize::Gemm {
            m: 64,
            n: 64,
            k: 63
        }
        .may_thread());
        assert!(CallSize::Gemm {
            m: 64,
            n: 64,
            k: 64
        }
        .may_thread());
        assert!(CallSize::Gemm {
            m: 256,
            n: 256,
            k: 256
        }
        .may_thread());
        assert!(!CallSize::Dot { n: 10_000 }.may_thread());
        assert!(CallSize::Dot { n: 10_001 }.may_thread());
        assert!(CallSize::Gemv { m: 96, n: 96 }.may_thread());
        assert!(!CallSize::Gemm {
            m: usize::MAX,
            n: 0,
            k: 5
        }
        .may_thread());
    }

    /// `?getrf` and `?potrf` thread where OpenBLAS does, on at most the threads 0.3.27 gives.
    #[test]
    fn factorisations_use_one_thread_per_share_of_work() {
        let lu = |n, single| CallSize::Lu { n, single };
        assert!(!lu(99, false).may_thread());
        assert_eq!(
            [100, 141, 142, 200, 1000].map(|n| lu(n, false).useful_threads()),
            [1, 1, 2, 4, 100]
        );
        assert!(!lu(199, true).may_thread());
        assert_eq!(lu(200, true).useful_threads(), 1);
        assert_eq!(lu(2000, true).useful_threads(), 100);
        let cholesky = |n, single| CallSize::Cholesky { n, single };
        assert!(!cholesky(63, false).may_thread() && !cholesky(127, true).may_thread());
        assert_eq!(
            [64, 127, 128, 1000].map(|n| cholesky(n, false).useful_threads()),
            [1, 1, 2, 15]
        );
        assert_eq!(cholesky(300, true).useful_threads(), 2);
        assert_eq!(lu(usize::MAX, false).useful_threads(), usize::MAX / 10_000);
        assert_eq!(CallSize::Lapack { n: 100 }.useful_threads(), usize::MAX);
    }

    #[test]
    fn scopes_then_fixed_then_auto() {
        let auto = RuleInputs {
            scoped: None,
            baseline: BlasThreads::Auto,
            deterministic: false,
            usable: 8,
        };
        assert_eq!(blas_count(auto, false), 8);
        assert_eq!(blas_count(auto, true), 1);
        assert!(depends_on_callers(auto));
        let deterministic = RuleInputs {
            deterministic: true,
            ..auto
        };
        assert_eq!(blas_count(deterministic, true), 8);
        assert!(!depends_on_callers(deterministic));
        let fixed = RuleInputs {
            baseline: BlasThreads::Fixed(3),
            ..auto
        };
        assert_eq!((blas_count(fixed, false), blas_count(fixed, true)), (3, 3));
        assert!(!depends_on_callers(fixed));
        // A scope wins over everything, also when larger than the cores.
        let scoped = RuleInputs {
            scoped: Some(12),
            ..fixed
        };
        assert_eq!(blas_count(scoped, true), 12);
        assert!(!depends_on_callers(RuleInputs {
            scoped: Some(1),
            ..auto
        }));
    }
}
