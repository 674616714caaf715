//! The thread configuration as a value: what the environment and the machine ask for, before
//! any code changes it. Pure, apart from reading the machine's limits ([`Limits::read`]).
//!
//! - `settings.rs`: BLAS threads, outer threads, deterministic mode and the budget's switch,
//!   with their precedence and where each came from;
//! - `cores.rs`: the cores this process may use (affinity mask ∩ cgroup quota);
//! - `launcher.rs`: this rank's share of them under MPI or Slurm.
//!
//! [`ThreadConfig::resolve`] puts them together; the runtime (`control.rs`) is built from one.

mod cores;
mod launcher;
mod settings;

pub use cores::Cores;
pub(crate) use cores::Limits;
pub(crate) use settings::BudgetEnv;
pub use settings::{BlasThreads, Setting, Source};

use crate::env::Lookup;
use crate::{Error, Result};

/// parlinalg's own ceiling on any thread count, whatever the library allows.
pub const MAX_THREADS: usize = 4096;

/// Everything the environment and the machine say about threads, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadConfig {
    /// The BLAS thread policy outside scopes.
    pub blas: Setting<BlasThreads>,
    /// The outer pool's size.
    pub outer: Setting<usize>,
    /// `PARLINALG_DETERMINISTIC=1`: `auto` gives every call the solitary count.
    pub deterministic: bool,
    /// The machine-wide budget's switch and group.
    pub budget: BudgetEnv,
    /// The CPUs the budget may try (this process's affinity mask).
    pub budget_cpus: Vec<usize>,
    /// The cores this process (this rank) may use.
    pub cores: Cores,
    /// The largest BLAS count: the library's compiled maximum, capped at [`MAX_THREADS`].
    pub max_blas: usize,
}

impl ThreadConfig {
    /// The configuration from the variables `lookup` gives, the machine's `limits`, and the
    /// loaded library's maximum thread count (`None` when unknown).
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] for the first variable parlinalg's settings read that holds junk
    /// (launcher variables only hint: see `launcher.rs`).
    pub(crate) fn resolve(
        lookup: Lookup<'_>,
        limits: &Limits,
        library_max: Option<usize>,
    ) -> Result<ThreadConfig> {
        let cores = launcher::apply(limits.cores(), limits.online, lookup);
        let max_blas = library_max.unwrap_or(MAX_THREADS).clamp(1, MAX_THREADS);
        let settings = settings::resolve(lookup, &cores, max_blas, MAX_THREADS)?;
        Ok(ThreadConfig {
            blas: settings.blas,
            outer: settings.outer,
            deterministic: settings.deterministic,
            budget: settings::resolve_budget(lookup)?,
            budget_cpus: limits.budget_cpus(),
            cores,
            max_blas,
        })
    }
}

impl Cores {
    /// Reads the affinity mask and the cgroup quota of this process, and takes this rank's
    /// share under an MPI or Slurm launcher (the rule is in the README's "Launchers" section:
    /// its own mask or per-task CPU count, else the limits divided by the local rank count).
    ///
    /// A launcher variable that cannot be used is ignored and listed in
    /// [`Cores::ignored_hints`].
    ///
    /// ```
    /// let cores = parlinalg::threads::Cores::detect();
    /// assert!(cores.count >= 1);
    /// println!("{} cores: {}", cores.count, cores.why);
    /// ```
    pub fn detect() -> Cores {
        let limits = Limits::read();
        launcher::apply(limits.cores(), limits.online, &crate::env::process)
    }
}

/// `Ok` when `1 ≤ n ≤ max`.
///
/// # Errors
/// [`Error::InvalidThreadCount`] naming `what`, for 0 or a count above `max`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn a_configuration_comes_out_of_a_lookup_and_the_limits() {
        let limits = Limits {
            cpus: Some(vec![0, 1, 2, 3]),
            quota: None,
            online: Some(8),
        };
        let lookup = |k: &str| match k {
            "PARLINALG_BLAS_THREADS" => Some(OsString::from("3")),
            "OMPI_COMM_WORLD_LOCAL_SIZE" => Some(OsString::from("2")),
            _ => None,
        };
        let c = ThreadConfig::resolve(&lookup, &limits, Some(64)).unwrap();
        assert_eq!(c.blas.value, BlasThreads::Fixed(3));
        // Its own mask (4 of 8 online) is the rank's share: not divided again.
        assert_eq!(c.cores.count, 4);
        assert_eq!(c.outer.value, 4);
        assert_eq!(c.budget_cpus, vec![0, 1, 2, 3]);
        assert_eq!(c.max_blas, 64);
        assert!(c.budget.enabled.value);
        let unknown_max = ThreadConfig::resolve(&|_| None, &limits, None).unwrap();
        assert_eq!(unknown_max.max_blas, MAX_THREADS);
        let junk = |k: &str| (k == "PARLINALG_BUDGET").then(|| OsString::from("maybe"));
        assert!(matches!(
            ThreadConfig::resolve(&junk, &limits, Some(64)),
            Err(Error::InvalidEnv { name, .. }) if name == "PARLINALG_BUDGET"
        ));
    }

    #[test]
    fn thread_counts_are_checked_against_one_and_the_maximum() {
        assert!(check_thread_count("x", 1, 4).is_ok());
        assert!(check_thread_count("x", 4, 4).is_ok());
        for bad in [0, 5, usize::MAX] {
            assert!(matches!(
                check_thread_count("x", bad, 4),
                Err(Error::InvalidThreadCount { value, .. }) if value == bad
            ));
        }
    }
}
