//! Command line: the flags, the three run lengths (`--quick`, default, `--full`), and the
//! settings they resolve to. A bad flag is clap's usage error: a clear message, exit code 2.

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::report::machine::all_cores_blas;
use crate::report::processes::ProcessesSettings;

/// Where Debian's `libopenblas0-openmp` puts the OpenMP build of OpenBLAS.
pub const DEBIAN_OPENMP_DIR: &str = "/usr/lib/x86_64-linux-gnu/openblas-openmp";

/// Threads, processes or BLAS threads? parlinalg measures the answer on this machine.
///
/// Runs, with a progress bar on stderr: the classic table (serial vs C threads vs C processes
/// for exp over an array, a scalar exp loop and a batch of matrix products; numpy's version
/// beside it when python3 and numpy are installed), matmul throughput against numpy, the grid
/// of K outer × N BLAS threads for small to large products, a small product's latency beside
/// large ones, the grid again under the OpenMP build of OpenBLAS when it is installed, and
/// processes sharing the machine (BLAS threads fixed at 1 and at the cores, each process's own
/// `auto`, the machine budget, and an MPI job when `mpirun` is installed). Markdown tables go
/// to stdout; report.md, report.json, CSV files and PNG/SVG plots go to the output folder.
#[derive(Parser, Debug, Clone)]
#[command(name = "report")]
pub struct Args {
    /// A short run: under a minute on 2 cores (smaller arrays, shorter cells).
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// A long run: the classic sizes (300 × g, 10 × f over 10⁷ elements), longer cells, more
    /// samples.
    #[arg(long)]
    pub full: bool,
    /// Output folder for report.md, report.json, the CSV files and the plots.
    #[arg(long, value_name = "DIR", default_value = "report-out")]
    pub out: PathBuf,
    /// Sections to run, comma separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "SECTION")]
    pub only: Option<Vec<Section>>,
    /// Sections to leave out, comma separated.
    #[arg(long, value_delimiter = ',', value_name = "SECTION")]
    pub skip: Vec<Section>,

    /// Grid: sizes n of the batched n×n products, comma separated [default: 64,256,1024;
    /// 64,256,512 quick].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub sizes: Option<Vec<u32>>,
    /// Grid: size of the one large single product; 0 leaves it out [default: 2048; 1024 quick,
    /// 4096 full].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=16384))]
    pub large: Option<u32>,
    /// Grid: size n of a batch of fewer products than cores (half the cores, rounded up), where
    /// neither K = C outer threads nor N = C BLAS threads alone fills the machine; 0 leaves it
    /// out [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=8192))]
    pub small_batch: Option<u32>,
    /// Grid: the largest K·N (outer × BLAS threads) tried [default: 4 × cores]. Every pair up
    /// to it while that is at most 24 pairs (1 and 2 cores); beyond, the pairs that answer the
    /// question on C cores: K and N powers of two with K·N ≤ C, C×1 and 1×C, the K·N = C
    /// diagonal (K a power of two or C over one, dividing C), and K·N = 2C and 4C as 1×M, M×1,
    /// (M/C)×C and C×(M/C) (23 pairs on 16 cores).
    #[arg(long, value_name = "THREADS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub max_threads: Option<u32>,
    /// Grid: seconds of serial work per sample (one cell in one round) [default: 0.1; 0.02
    /// quick, 0.25 full].
    #[arg(long, alias = "cell-seconds", value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub sample_seconds: Option<f64>,
    /// Grid: seconds spent on each size; the race keeps sampling the cells still in contention
    /// until they are spent [default: 25; 2 quick, 60 full].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub size_seconds: Option<f64>,
    /// Grid: rounds every cell gets (cells in random order each round); matmul vs numpy:
    /// A/B rounds [default: grid 8, numpy 3; quick 6 and 2; full 10 and 5].
    #[arg(long, value_parser = clap::value_parser!(u32).range(3..=50))]
    pub rounds: Option<u32>,

    /// Classic table: C, the threads and the processes compared with serial [default: cores].
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: Option<u32>,
    /// Classic table: elements of the exp workloads [default: 10⁷; 2·10⁶ quick].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub elements: Option<u64>,
    /// Classic table: rounds, Rust's and Python's (every row once per round, in random order)
    /// [default: 5; 3 quick, 5 full].
    #[arg(long, value_parser = clap::value_parser!(u32).range(3..=50))]
    pub classic_rounds: Option<u32>,
    /// Classic table: repetitions of g, exp over the whole array, per round, rounded up to a
    /// multiple of C so that every worker gets as many [default: 100; 20 quick; 300 full].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub g_reps: Option<u32>,
    /// Classic table: repetitions of f, the scalar exp loop, per round, rounded up to a
    /// multiple of C [default: 6; 4 quick; 10 full].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub f_reps: Option<u32>,
    /// Classic table: products in h's batch, rounded up to a multiple of C so that no worker
    /// is idle [default: 8; 16 full; at least C].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub h_batch: Option<u32>,
    /// Classic table: size n of h's n×n products [default: 1024; 512 quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub h_size: Option<u32>,

    /// Latency: samples of the small product per condition [default: 1000; 400 quick, 3000
    /// full] (a p99 needs about 370 for an upper bound).
    #[arg(long, value_parser = clap::value_parser!(u32).range(5..=100_000))]
    pub samples: Option<u32>,
    /// Latency: size n of the small n×n product whose latency is measured [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=8192))]
    pub latency_small: Option<u32>,
    /// Latency: size n of the large products beside it [default: 1536; 1024 quick, 2048 full].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub latency_large: Option<u32>,
    /// Latency: longest time spent on one condition [default: 12 s; 4 quick, 60 full].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub latency_seconds: Option<f64>,

    /// matmul vs numpy: sizes n, comma separated [default: 256,1024,2048; 256,1024 quick].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub numpy_sizes: Option<Vec<u32>>,
    /// matmul vs numpy: BLAS thread counts, comma separated, at most the loaded OpenBLAS's
    /// maximum [default: 1 and the cores].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<Vec<u32>>,

    /// Leave out everything that needs python3 and numpy.
    #[arg(long, alias = "no-python")]
    pub no_numpy: bool,
    /// Python interpreter with numpy.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Folder holding the OpenMP build's libopenblas.so.0.
    #[arg(long, value_name = "DIR", default_value = DEBIAN_OPENMP_DIR)]
    pub openmp_dir: PathBuf,
    /// No progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,

    /// Internal: run as a worker process of the classic table (JSON spec).
    #[arg(long, hide = true, value_name = "SPEC")]
    pub worker: Option<String>,
    /// Processes: products per process [default: 1000; 200 quick, 2001 full].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub process_products: Option<u32>,
    /// Processes: the process counts, comma separated [default: 1, the cores, twice the cores].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processes: Option<Vec<u32>>,
    /// Processes: ranks of the MPI job, run with `mpirun --oversubscribe` [default: cores].
    #[arg(long, value_name = "RANKS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub mpi_ranks: Option<u32>,

    /// Internal: run as one process of the processes section (JSON spec).
    #[arg(long, hide = true, value_name = "SPEC")]
    pub sharing_child: Option<String>,
    /// Internal: run the grid as a child process (JSON spec), print the result as JSON.
    #[arg(long, hide = true, value_name = "SPEC")]
    pub grid_child: Option<String>,
}

/// The report's sections.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// Serial vs threads vs processes (and numpy's version).
    Classic,
    /// matmul throughput against numpy.
    Numpy,
    /// K outer × N BLAS threads.
    Grid,
    /// A small product's latency beside large ones.
    Latency,
    /// The grid under the OpenMP build of OpenBLAS.
    Openmp,
    /// Processes sharing the machine: fixed counts, per-process auto, the machine budget, MPI.
    Processes,
}

/// The run length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// `--quick`.
    Quick,
    /// No flag.
    Default,
    /// `--full`.
    Full,
}

/// Everything a run needs, resolved from the flags and the machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub mode: Mode,
    pub cores: usize,
    pub sections: Vec<Section>,
    /// Any bytes (a path need not be UTF-8); report.json holds it lossily (U+FFFD).
    #[serde(serialize_with = "path_lossy")]
    pub out: PathBuf,
    pub progress: bool,
    pub numpy: bool,
    pub python: String,
    #[serde(serialize_with = "path_lossy")]
    pub openmp_dir: PathBuf,
    pub classic: ClassicSettings,
    pub grid: GridSettings,
    pub latency: LatencySettings,
    pub versus: VersusSettings,
    pub sharing: ProcessesSettings,
}

/// The classic table's workloads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassicSettings {
    pub workers: usize,
    pub elements: usize,
    pub g_reps: usize,
    pub f_reps: usize,
    pub h_batch: usize,
    pub h_size: usize,
    /// BLAS thread counts tried for h.
    pub h_blas: Vec<usize>,
    /// Rounds: every row is measured once per round, in random order.
    pub rounds: usize,
}

/// The inner vs outer grid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GridSettings {
    pub sizes: Vec<usize>,
    /// The large single product (`None`: left out).
    pub large: Option<usize>,
    /// n of the batch of fewer products than cores (`None`: left out).
    #[serde(default)]
    pub small_batch: Option<usize>,
    pub max_threads: usize,
    /// Seconds of serial work per sample.
    pub sample_seconds: f64,
    /// Seconds of measuring per size.
    pub size_seconds: f64,
    /// Rounds every cell gets.
    pub rounds: usize,
}

/// The latency measurement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencySettings {
    pub small: usize,
    pub large: usize,
    pub samples: usize,
    /// Longest time spent on one condition, seconds (samples stop early past it).
    pub max_seconds: f64,
}

/// matmul vs numpy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersusSettings {
    pub sizes: Vec<usize>,
    pub threads: Vec<usize>,
    pub rounds: usize,
}

impl Settings {
    /// Resolves the flags for a machine with `cores` usable cores.
    ///
    /// # Errors
    /// A clap error (exit code 2) for combinations no single flag can reject.
    pub fn resolve(args: &Args, cores: usize) -> Result<Settings, clap::Error> {
        let mode = if args.quick {
            Mode::Quick
        } else if args.full {
            Mode::Full
        } else {
            Mode::Default
        };
        let cores = cores.max(1);
        let max_blas = parlinalg::threads::blas_max_threads();
        if let Some(&t) = args
            .threads
            .iter()
            .flatten()
            .find(|&&t| t as usize > max_blas)
        {
            return Err(usage_error(
                ErrorKind::ValueValidation,
                format!(
                    "--threads {t}: the loaded OpenBLAS runs at most {max_blas} BLAS threads \
                     (its MAX_THREADS)"
                ),
            ));
        }
        Ok(Settings {
            mode,
            cores,
            sections: sections(args)?,
            out: args.out.clone(),
            progress: !args.no_progress,
            numpy: !args.no_numpy,
            python: args.python.clone(),
            openmp_dir: args.openmp_dir.clone(),
            classic: ClassicSettings::resolve(args, mode, cores),
            grid: GridSettings::resolve(args, mode, cores),
            latency: LatencySettings::resolve(args, mode),
            versus: VersusSettings::resolve(args, mode, cores),
            sharing: processes_settings(args, mode, cores),
        })
    }

    /// Whether `section` runs.
    pub fn runs(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// The sections to run: `--only` (default: all), less `--skip`, less numpy's with `--no-numpy`.
fn sections(args: &Args) -> Result<Vec<Section>, clap::Error> {
    let mut sections = args.only.clone().unwrap_or_else(|| {
        vec![
            Section::Classic,
            Section::Numpy,
            Section::Grid,
            Section::Latency,
            Section::Openmp,
            Section::Processes,
        ]
    });
    sections.retain(|s| !args.skip.contains(s));
    sections.dedup();
    if args.no_numpy {
        sections.retain(|s| *s != Section::Numpy);
    }
    if sections.is_empty() {
        return Err(usage_error(
            ErrorKind::ArgumentConflict,
            "--only and --skip leave no section to run",
        ));
    }
    Ok(sections)
}

impl ClassicSettings {
    fn resolve(args: &Args, mode: Mode, cores: usize) -> Self {
        // h with 1, 2, 4, ... BLAS threads up to the cores, or to the most the loaded OpenBLAS
        // runs where that is fewer (Debian's: 64; a larger count is refused).
        let all_blas = all_cores_blas(cores);
        let mut h_blas: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2))
            .take_while(|&n| n < all_blas)
            .chain([all_blas])
            .collect();
        h_blas.dedup();
        let or = |v: Option<u32>, default: usize| v.map_or(default, |v| v as usize);
        let workers = or(args.workers, cores);
        ClassicSettings {
            workers,
            elements: args
                .elements
                .map_or(pick(mode, 2_000_000, 10_000_000, 10_000_000), |e| {
                    e as usize
                }),
            g_reps: whole_shares(or(args.g_reps, pick(mode, 20, 100, 300)), workers),
            f_reps: whole_shares(or(args.f_reps, pick(mode, 4, 6, 10)), workers),
            h_batch: whole_shares(or(args.h_batch, pick(mode, 8, 8, 16)), workers),
            h_size: or(args.h_size, pick(mode, 512, 1024, 1024)),
            h_blas,
            rounds: or(args.classic_rounds, pick(mode, 3, 5, 5)),
        }
    }
}

/// `work` rounded up to a multiple of `workers` (at least one each): C threads or processes
/// then get equal shares, none idle and none with one more than the others.
fn whole_shares(work: usize, workers: usize) -> usize {
    let workers = workers.max(1);
    work.max(1).div_ceil(workers) * workers
}

impl GridSettings {
    fn resolve(args: &Args, mode: Mode, cores: usize) -> Self {
        GridSettings {
            sizes: args.sizes.as_ref().map_or_else(
                || {
                    pick(
                        mode,
                        vec![64, 256, 512],
                        vec![64, 256, 1024],
                        vec![64, 256, 1024],
                    )
                },
                |s| to_usize(s),
            ),
            large: match args.large {
                Some(0) => None,
                Some(n) => Some(n as usize),
                None => Some(pick(mode, 1024, 2048, 4096)),
            },
            small_batch: match args.small_batch {
                Some(0) => None,
                Some(n) => Some(n as usize),
                None => Some(256),
            },
            max_threads: args.max_threads.map_or(4 * cores, |t| t as usize),
            sample_seconds: args.sample_seconds.unwrap_or(pick(mode, 0.02, 0.1, 0.25)),
            size_seconds: args.size_seconds.unwrap_or(pick(mode, 2.0, 25.0, 60.0)),
            rounds: args.rounds.map_or(pick(mode, 6, 8, 10), |r| r as usize),
        }
    }
}

impl LatencySettings {
    fn resolve(args: &Args, mode: Mode) -> Self {
        LatencySettings {
            small: args.latency_small.map_or(256, |n| n as usize),
            large: args
                .latency_large
                .map_or(pick(mode, 1024, 1536, 2048), |n| n as usize),
            samples: args
                .samples
                .map_or(pick(mode, 400, 1000, 3000), |s| s as usize),
            max_seconds: args.latency_seconds.unwrap_or(pick(mode, 4.0, 12.0, 60.0)),
        }
    }
}

impl VersusSettings {
    fn resolve(args: &Args, mode: Mode, cores: usize) -> Self {
        let default_sizes = || {
            pick(
                mode,
                vec![256, 1024],
                vec![256, 1024, 2048],
                vec![256, 1024, 2048],
            )
        };
        let default_threads = || {
            // 1 and every core, or as many as the loaded OpenBLAS runs where that is fewer.
            let mut t = vec![1, all_cores_blas(cores)];
            t.dedup();
            t
        };
        VersusSettings {
            sizes: args
                .numpy_sizes
                .as_ref()
                .map_or_else(default_sizes, |s| to_usize(s)),
            threads: args
                .threads
                .as_ref()
                .map_or_else(default_threads, |t| to_usize(t)),
            rounds: args.rounds.map_or(pick(mode, 2, 3, 5), |r| r as usize),
        }
    }
}

/// The processes section.
fn processes_settings(args: &Args, mode: Mode, cores: usize) -> ProcessesSettings {
    let mut processes = args
        .processes
        .as_ref()
        .map_or_else(|| vec![1, cores, 2 * cores], |p| to_usize(p));
    processes.sort_unstable();
    processes.dedup();
    ProcessesSettings {
        products: args
            .process_products
            .map_or(pick(mode, 200, 1000, 2001), |p| p as usize),
        n: 256,
        processes,
        rounds: pick(mode, 2, 3, 5),
        mpi_ranks: args.mpi_ranks.map_or(cores, |r| r as usize),
    }
}

/// Serialises a path that need not be UTF-8 as a string, bytes that are not UTF-8 as U+FFFD
/// (JSON holds only text; serde's own impl fails on such a path).
///
/// # Errors
/// The serializer's.
pub fn path_lossy<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// The value for the run length.
fn pick<T>(mode: Mode, quick: T, default: T, full: T) -> T {
    match mode {
        Mode::Quick => quick,
        Mode::Default => default,
        Mode::Full => full,
    }
}

fn to_usize(v: &[u32]) -> Vec<usize> {
    v.iter().map(|&x| x as usize).collect()
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 600.0 {
        Ok(v)
    } else {
        Err(format!("{s} is outside (0, 600] seconds"))
    }
}

/// A usage error in clap's format (exit code 2).
pub fn usage_error(kind: ErrorKind, msg: impl std::fmt::Display) -> clap::Error {
    Args::command().error(kind, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("report").chain(args.iter().copied()))
    }

    #[test]
    fn bad_flags_are_usage_errors_with_exit_code_2() {
        for bad in [
            &["--frobnicate"][..],
            &["--sizes", "64,abc"],
            &["--sizes", "0"],
            &["--workers", "0"],
            &["--quick", "--full"],
            &["--cell-seconds", "-1"],
            &["--only", "everything"],
            &["--rounds"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} must be rejected"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
            let text = err.to_string();
            assert!(text.starts_with("error:"), "{bad:?}: {text}");
        }
        let args = parse(&["--only", "grid", "--skip", "grid"]).unwrap();
        let err = Settings::resolve(&args, 2).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no section"), "{err}");
    }

    #[test]
    fn help_exits_0() {
        let err = parse(&["--help"]).unwrap_err();
        assert_eq!(err.exit_code(), 0);
        let help = Args::command().render_long_help().to_string();
        for flag in [
            "--quick",
            "--full",
            "--out",
            "--sizes",
            "--workers",
            "--threads",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
        assert!(!help.contains("--worker "), "the worker flag is hidden");
    }

    #[test]
    fn modes_resolve_to_their_budgets() {
        let quick = Settings::resolve(&parse(&["--quick"]).unwrap(), 2).unwrap();
        let default = Settings::resolve(&parse(&[]).unwrap(), 2).unwrap();
        let full = Settings::resolve(&parse(&["--full"]).unwrap(), 2).unwrap();
        assert_eq!(quick.mode, Mode::Quick);
        assert!(quick.grid.sample_seconds < default.grid.sample_seconds);
        assert!(default.grid.sample_seconds < full.grid.sample_seconds);
        assert!(quick.grid.size_seconds < default.grid.size_seconds);
        assert!(quick.grid.rounds >= 3, "an interval needs 3 rounds");
        assert_eq!(default.classic.elements, 10_000_000);
        assert_eq!((full.classic.g_reps, full.classic.f_reps), (300, 10));
        assert_eq!((quick.classic.rounds, default.classic.rounds), (3, 5));
        assert_eq!(default.grid.sizes, vec![64, 256, 1024]);
        assert_eq!(default.grid.max_threads, 8);
        assert_eq!(default.classic.h_blas, vec![1, 2]);
        assert_eq!(default.versus.threads, vec![1, 2]);
        assert!(default.versus.sizes.contains(&2048));
        let c8 = Settings::resolve(&parse(&[]).unwrap(), 8).unwrap();
        assert_eq!(c8.classic.h_blas, vec![1, 2, 4, 8]);
        // Every worker gets the same share of each workload, and h has a product for each.
        let c16 = Settings::resolve(&parse(&[]).unwrap(), 16).unwrap();
        assert_eq!(c16.classic.workers, 16);
        // The MPI job: one rank per core unless told.
        assert_eq!(c16.sharing.mpi_ranks, 16);
        let ranks = Settings::resolve(&parse(&["--mpi-ranks", "3"]).unwrap(), 16).unwrap();
        assert_eq!(ranks.sharing.mpi_ranks, 3);
        assert_eq!(
            (c16.classic.h_batch, c16.classic.g_reps, c16.classic.f_reps),
            (16, 112, 16)
        );
        // On more cores than the loaded OpenBLAS runs threads (Debian's: 64), h's largest BLAS
        // count is the library's maximum (a larger one is refused); the workers stay the cores.
        let max = parlinalg::threads::blas_max_threads();
        let c96 = Settings::resolve(&parse(&[]).unwrap(), 96).unwrap().classic;
        assert_eq!(c96.h_blas.last(), Some(&96.min(max)), "{:?}", c96.h_blas);
        assert!(c96.h_blas.iter().all(|&n| n <= max), "{:?}", c96.h_blas);
        assert_eq!(c96.workers, 96);
        let versus96 = Settings::resolve(&parse(&[]).unwrap(), 96).unwrap().versus;
        assert_eq!(versus96.threads, vec![1, 96.min(max)]);
        // A count the library refuses is a usage error up front, not after minutes of measuring.
        let too_many = (max + 1).to_string();
        let err = Settings::resolve(&parse(&["--threads", &too_many]).unwrap(), 2).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("at most"), "{err}");
        let c3 = Settings::resolve(&parse(&["--h-batch", "4", "--g-reps", "7"]).unwrap(), 3);
        let c3 = c3.unwrap().classic;
        assert_eq!((c3.h_batch, c3.g_reps, c3.f_reps), (6, 9, 6));
        let some =
            Settings::resolve(&parse(&["--skip", "openmp", "--no-numpy"]).unwrap(), 2).unwrap();
        assert!(!some.runs(Section::Openmp) && !some.runs(Section::Numpy));
        assert!(some.runs(Section::Grid));
        let no_large = Settings::resolve(&parse(&["--large", "0"]).unwrap(), 2).unwrap();
        assert_eq!(no_large.grid.large, None);
        assert_eq!(default.grid.small_batch, Some(256));
        let no_few = Settings::resolve(&parse(&["--small-batch", "0"]).unwrap(), 2).unwrap();
        assert_eq!(no_few.grid.small_batch, None);
    }
}
