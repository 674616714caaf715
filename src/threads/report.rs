//! The thread report: what runs, how many threads, where each value came from, and what is
//! wrong. Like `python -m threadpoolctl -i numpy`, for this process.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::budget::BudgetReport;
use super::config::{BlasThreads, Cores, Setting};
use super::control::{blas_threads_now, control, UsageReport};

use super::policy::{last_batch_decision, BatchDecision};
use crate::openblas::info::BlasLibrary;
use crate::openblas::kernel::{
    check_kernel, kernel_selection, CpuFeatures, KernelFinding, KernelSelection,
};
use crate::openblas::loaded_blas_libraries;
use crate::Result;

/// Everything parlinalg knows about threads in this process.
///
/// `Display` prints a readable table; `serde::Serialize` gives JSON (e.g. with `serde_json`).
///
/// ```
/// let report = parlinalg::threads::report()?;
/// println!("{report}");
/// assert!(report.cores.count >= 1);
/// # Ok::<(), parlinalg::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// parlinalg's version.
    pub parlinalg: &'static str,
    /// The OpenBLAS in use, as it describes itself.
    pub blas: BlasLibrary,
    /// What calls made at once from several threads do on this build, and what parlinalg does
    /// about it (measured on each build: the README's "OpenBLAS builds and versions").
    pub concurrent_calls: String,
    /// What the `auto` BLAS thread policy gives on this build, in words.
    pub auto_policy: String,
    /// Whether its kernel is the best this CPU can run.
    pub kernel: KernelFinding,
    /// What parlinalg did about the kernel when the process loaded (switched in-process from a
    /// generic fallback, kept the user's choice, ...).
    pub kernel_selection: KernelSelection,
    /// The CPU features the check used.
    pub cpu: CpuFeatures,
    /// Cores this process may use, and why.
    pub cores: Cores,
    /// BLAS threads: the policy in force and where it came from.
    pub blas_threads: Setting<BlasThreads>,
    /// The count an open scope imposes, if any.
    pub blas_threads_scoped: Option<usize>,
    /// What OpenBLAS runs right now (`openblas_get_num_threads`).
    pub blas_threads_now: usize,
    /// Outer threads (parlinalg's rayon pool) and where the count came from.
    pub outer_threads: Setting<usize>,
    /// The machine-wide budget shared with other processes (read only: looking takes no slot).
    pub budget: BudgetReport,
    /// The thread variables of the environment, as read (`None`: unset).
    pub env: Vec<(String, Option<String>)>,
    /// Concurrent BLAS use seen so far.
    pub usage: UsageReport,
    /// The last batch decision of [`matmul_batch`](crate::matmul_batch).
    pub last_batch: Option<BatchDecision>,
    /// BLAS-like libraries loaded in this process.
    pub blas_libraries_loaded: Vec<PathBuf>,
    /// What is wrong or risky, worst first.
    pub warnings: Vec<Warning>,
}

/// Something the report flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// OpenBLAS runs a lesser kernel than the CPU supports, and parlinalg did not switch it:
    /// the message says why (turned off, the user's `OPENBLAS_CORETYPE`, a build without
    /// `DYNAMIC_ARCH`, ...) and the fix.
    SuboptimalKernel {
        /// What parlinalg did and the kernel check's finding, with the fix.
        finding: String,
    },
    /// This OpenBLAS version has a known concurrency bug.
    KnownBuggyVersion {
        /// The version.
        version: String,
        /// What goes wrong.
        problem: String,
    },
    /// `openblas_set_num_threads` did not change what OpenBLAS reports.
    SetNumThreadsIgnored {
        /// The count that was asked.
        asked: usize,
        /// What OpenBLAS reported afterwards.
        got: usize,
    },
    /// Several BLAS libraries are loaded: each has its own thread pool.
    SeveralBlasLibraries {
        /// Their paths.
        paths: Vec<PathBuf>,
    },
    /// Concurrent callers asked for more threads than cores.
    Oversubscribed {
        /// Peak threads asked / cores.
        factor: f64,
    },
    /// The machine-wide budget is on but cannot be used (its directory failed a check), so
    /// this process's `auto` takes every usable core whatever other processes do.
    BudgetUnavailable {
        /// What is wrong.
        why: String,
    },
    /// Slot files of the budget failed their check and are ignored (their CPUs are not used
    /// for extra BLAS threads).
    BudgetSlotsIgnored {
        /// Each file and why.
        files: Vec<String>,
        /// Slots still usable: what a process alone can take (at most this many BLAS threads
        /// from the budget under `auto`).
        usable: usize,
        /// Slots of this process's affinity mask.
        total: usize,
    },
    /// A launcher variable (MPI, Slurm) was set but could not be used to divide the node, so
    /// it was ignored: launcher variables only hint (see [`Cores::ignored_hints`]).
    LauncherHintIgnored {
        /// The variable, its value and why.
        hint: String,
    },
    /// The BLAS thread count asked for (environment or code) exceeds the usable cores.
    /// parlinalg keeps it (OpenBLAS accepts up to its compiled maximum, and the user asked),
    /// but every multithreaded call oversubscribes the cores.
    MoreThreadsThanCores {
        /// The count in force.
        threads: usize,
        /// The cores this process may use.
        cores: usize,
        /// Where the count came from.
        source: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::SuboptimalKernel { finding } => write!(f, "kernel: {finding}"),
            Warning::LauncherHintIgnored { hint } => write!(f, "launcher: {hint}"),
            Warning::KnownBuggyVersion { version, problem } => {
                write!(f, "OpenBLAS {version}: {problem}")
            }
            Warning::SetNumThreadsIgnored { asked, got } => write!(
                f,
                "openblas_set_num_threads({asked}) left {got} threads: this OpenBLAS ignores it \
                 (OpenMP build with OMP_DYNAMIC or a fixed team?); BLAS thread control has no effect"
            ),
            Warning::SeveralBlasLibraries { paths } => {
                write!(f, "{} BLAS libraries loaded, each with its own thread pool:", paths.len())?;
                for p in paths {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
            Warning::Oversubscribed { factor } => write!(
                f,
                "concurrent BLAS callers asked for {factor:.1}× the cores; use a plan, or leave \
                 BLAS threads on auto"
            ),
            Warning::BudgetUnavailable { why } => write!(
                f,
                "machine-wide budget unusable ({why}): auto ignores other processes"
            ),
            Warning::BudgetSlotsIgnored {
                files,
                usable,
                total,
            } => write!(
                f,
                "budget slot files ignored: {}; {usable} of {total} slots usable, so a process \
                 alone gets at most {} BLAS threads under auto",
                files.join("; "),
                (*usable).max(1)
            ),
            Warning::MoreThreadsThanCores {
                threads,
                cores,
                source,
            } => write!(
                f,
                "{threads} BLAS threads asked ({source}) exceed the {cores} usable cores: \
                 OpenBLAS runs them (it would cap a value read at load to the cores; parlinalg \
                 keeps what was asked, up to the compiled maximum), and every multithreaded \
                 call oversubscribes the cores"
            ),
        }
    }
}

/// Builds the report now.
///
/// Read-only: it sets nothing (no scope, no `openblas_set_num_threads`), so looking cannot
/// change what other threads run. Whether OpenBLAS ignores `openblas_set_num_threads` is what
/// the controller saw when it set counts (once at start-up, and at every change since). It
/// lists the loaded libraries through the dynamic loader.
///
/// # Errors
/// [`Error::InvalidEnv`](crate::Error::InvalidEnv) if a thread variable holds junk.
///
/// ```
/// let report = parlinalg::threads::report()?;
/// for warning in &report.warnings {
///     eprintln!("warning: {warning}");
/// }
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn report() -> Result<Report> {
    let c = control()?;
    let blas = BlasLibrary::query();
    let cpu = CpuFeatures::detect();
    let kernel = check_kernel(&blas.corename, blas.dynamic_arch, &cpu);
    let usage = c.usage();
    let libraries = loaded_blas_libraries();

    let mut warnings = Vec::new();
    let selection = kernel_selection().clone();
    if kernel.is_suboptimal() || matches!(kernel, KernelFinding::AboveCpu { .. }) {
        // The selection says why the kernel could not be switched (or that the user chose it).
        warnings.push(Warning::SuboptimalKernel {
            finding: selection.to_string(),
        });
    }
    if let Some(problem) = c.backend.known_problem(blas.version_triple()) {
        warnings.push(Warning::KnownBuggyVersion {
            version: blas.version.clone().unwrap_or_default(),
            problem: problem.into(),
        });
    }
    if let Some((asked, got)) = c.set_ignored() {
        warnings.push(Warning::SetNumThreadsIgnored { asked, got });
    }
    warnings.extend(
        c.cores
            .ignored_hints
            .iter()
            .map(|hint| Warning::LauncherHintIgnored { hint: hint.clone() }),
    );
    let baseline = c.baseline();
    if let BlasThreads::Fixed(n) = baseline.value {
        if n > c.cores.count {
            warnings.push(Warning::MoreThreadsThanCores {
                threads: n,
                cores: c.cores.count,
                source: baseline.source.to_string(),
            });
        }
    }
    let budget = c.budget.report();
    if let Some(why) = &budget.unavailable {
        warnings.push(Warning::BudgetUnavailable { why: why.clone() });
    } else if !budget.ignored.is_empty() {
        warnings.push(Warning::BudgetSlotsIgnored {
            files: budget.ignored.clone(),
            usable: budget.slots,
            total: budget.slots + c.budget.broken_slots(),
        });
    }
    if libraries.len() > 1 {
        warnings.push(Warning::SeveralBlasLibraries {
            paths: libraries.clone(),
        });
    }
    if usage.peak_oversubscription > 1.0 {
        warnings.push(Warning::Oversubscribed {
            factor: usage.peak_oversubscription,
        });
    }

    let all = c.cores.count.min(c.max_blas);
    Ok(Report {
        parlinalg: env!("CARGO_PKG_VERSION"),
        blas,
        concurrent_calls: c.backend.describe().to_owned(),
        auto_policy: c.backend.auto_words(all),
        kernel,
        kernel_selection: selection,
        cpu,
        cores: c.cores.clone(),
        blas_threads: baseline,
        blas_threads_scoped: c.scoped(),
        blas_threads_now: blas_threads_now(),
        outer_threads: c.outer(),
        budget,
        env: crate::env::reported_vars()
            .map(|name| {
                let raw = crate::env::read(name);
                (
                    name.to_owned(),
                    raw.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect(),
        usage,
        last_batch: last_batch_decision(),
        blas_libraries_loaded: libraries,
        warnings,
    })
}

impl Report {
    /// The library rows of the table: what is loaded and how it threads.
    fn library_rows(&self) -> Vec<(&'static str, String)> {
        let b = &self.blas;
        let unknown = || "unknown".to_owned();
        vec![
            (
                "BLAS library",
                b.path
                    .as_ref()
                    .map_or_else(unknown, |p| p.display().to_string()),
            ),
            ("version", b.version.clone().unwrap_or_else(unknown)),
            ("build config", b.config.clone()),
            ("kernel", self.kernel_selection.to_string()),
            (
                "threading",
                format!("{} ({})", b.threading, self.concurrent_calls),
            ),
            (
                "max threads",
                b.max_threads
                    .map_or_else(unknown, |m| format!("{m} (compiled)")),
            ),
        ]
    }

    /// The thread rows: cores, counts with their sources, the environment.
    fn thread_rows(&self) -> Vec<(&'static str, String)> {
        let policy = match self.blas_threads.value {
            BlasThreads::Auto => self.auto_policy.clone(),
            BlasThreads::Fixed(n) => format!("{n}"),
        };
        let scoped = self
            .blas_threads_scoped
            .map_or(String::new(), |s| format!(", scoped to {s}"));
        let env: Vec<String> = self
            .env
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        let (outer, outer_source) = (self.outer_threads.value, &self.outer_threads.source);
        vec![
            (
                "cores usable",
                format!("{} ({})", self.cores.count, self.cores.why),
            ),
            (
                "BLAS threads",
                format!(
                    "{policy} [{}]; now {}{scoped}",
                    self.blas_threads.source, self.blas_threads_now
                ),
            ),
            ("outer threads", format!("{outer} [{outer_source}]")),
            ("budget", self.budget_row()),
            (
                "environment",
                if env.is_empty() {
                    "no thread variable set".into()
                } else {
                    env.join(" ")
                },
            ),
        ]
    }

    /// The budget's row: on or off and why, the group and directory, the slots held.
    fn budget_row(&self) -> String {
        let b = &self.budget;
        let dir = b
            .dir
            .as_ref()
            .map_or(String::new(), |d| format!(", {}", d.display()));
        if b.enabled {
            format!(
                "{}; group {}{dir}; this process holds {} of its {} slots",
                b.why, b.group, b.held, b.slots
            )
        } else {
            format!("{}; group {}", b.why, b.group)
        }
    }

    /// What was seen at run time: usage, the last batch, the loaded libraries.
    fn usage_rows(&self) -> Vec<(&'static str, String)> {
        let u = &self.usage;
        let mut rows = vec![(
            "BLAS usage",
            format!(
                "{} threadable calls, {} overlapping; peak {} callers asking {} threads ({:.2}× the cores)",
                u.calls, u.overlapping_calls, u.peak_callers, u.peak_threads_asked,
                u.peak_oversubscription
            ),
        )];
        if let Some(d) = &self.last_batch {
            let shapes = format!("{} × ({}×{} · {}×{})", d.batch, d.m, d.k, d.k, d.n);
            rows.push(("last batch", format!("{shapes}: {}", d.choice)));
        }
        let loaded: Vec<String> = self
            .blas_libraries_loaded
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        rows.push(("BLAS loaded", loaded.join(", ")));
        rows
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "parlinalg {} thread report", self.parlinalg)?;
        let rows = [self.library_rows(), self.thread_rows(), self.usage_rows()];
        for (key, value) in rows.iter().flatten() {
            writeln!(f, "{key:<16}{value}")?;
        }
        if self.warnings.is_empty() {
            writeln!(f, "{:<16}none", "warnings")?;
        }
        for (i, w) in self.warnings.iter().enumerate() {
            writeln!(f, "{:<16}- {w}", if i == 0 { "warnings" } else { "" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_its_openblas_loaded_once() {
        let libs = loaded_blas_libraries();
        let openblas = libs
            .iter()
            .filter(|p| p.to_string_lossy().contains("openblas"))
            .count();
        assert_eq!(openblas, 1, "{libs:?}");
    }

    #[test]
    fn the_report_is_complete_and_prints() {
        let r = report().unwrap();
        let text = r.to_string();
        for key in [
            "BLAS library",
            "kernel",
            "threading",
            "cores usable",
            "BLAS threads",
            "outer threads",
            "budget",
            "warnings",
        ] {
            assert!(text.contains(key), "{key} missing in\n{text}");
        }
        assert!(r.blas_threads_now >= 1);
    }
}
