//! `parlinalg report`, the demonstration: threads, processes or BLAS threads? Measured on this
//! machine.
//!
//! ```text
//! parlinalg report              # default workload, a few minutes on 2 cores
//! parlinalg report --quick      # under a minute
//! parlinalg report --help
//! ```
//!
//! Sections (each ends with one sentence computed from its numbers), after a header with the
//! kernel and the thread report:
//! 1. the classic table: serial vs C threads vs C processes for g (exp over an array), f (a
//!    scalar exp loop) and h (a batch of products, every BLAS-threads choice), numpy's version
//!    beside it, and what sharing memory with the processes cost;
//! - matmul throughput against numpy (A/B in the same run);
//! 2. the inner vs outer grid: the K outer × N BLAS pairs chosen for the core count (every pair
//!    on 2 cores), the best and the cells tied with it, the default policy, the worst
//!    oversubscribed pair;
//! 3. a small product's latency beside large ones, fixed BLAS threads vs `auto`;
//! 4. the grid under the OpenMP build of OpenBLAS when it is installed;
//! 5. processes sharing the machine: fixed counts, per-process `auto`, the machine budget, and
//!    the same program as an MPI job when `mpirun` is installed.
//!
//! Markdown on stdout; report.md, report.json, CSV files and PNG/SVG plots in `--out`.
//!
//! Each section is a `section::ReportSection` (whether it runs, its estimate, its measurement,
//! its Markdown, CSV files and plots); [`run`], [`output`] and [`write_plots`] loop over
//! `section::SECTIONS`, the sections in the order above. `data.rs` holds the data of them all
//! (report.json), `table.rs` the pieces their Markdown and CSV share.

pub mod classic;
pub mod classic_rows;
mod classic_workers;
pub mod cli;
mod data;
pub mod grid;
pub mod latency;
pub(crate) mod lifecycle;
mod machine;
mod openmp;
pub mod output;
mod plots;
pub mod preflight;
pub mod processes;
mod progress;
mod python;
mod race;
mod section;
mod self_command;
pub mod stats;
mod table;
pub mod versus;
pub mod workloads;

pub use cli::{Args, Section, Settings};
pub use data::{ReportData, ReportHeader};
use progress::Progress;
use section::SECTIONS;

/// `parlinalg report`: runs the sections `args` ask for, or plays a child role (a worker of the
/// classic table, the grid under another OpenBLAS) when the report spawned this process as one.
/// Returns the exit code (2 for a bad command line, printed by clap).
pub fn main(args: &Args) -> u8 {
    let role = if let Some(spec) = &args.worker {
        Some(classic_workers::worker_main(spec))
    } else if let Some(spec) = &args.sharing_child {
        Some(processes::child_main(spec))
    } else {
        args.grid_child
            .as_ref()
            .map(|spec| openmp::child_main(spec))
    };
    if let Some(result) = role {
        return match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("parlinalg report (child): {e:#}");
                1
            }
        };
    }
    let cores = parlinalg::threads::Cores::detect().count;
    let settings = Settings::resolve(args, cores).unwrap_or_else(|e| e.exit());
    if let Err(e) = lifecycle::install_signal_handlers() {
        eprintln!("parlinalg report: cannot handle SIGINT and SIGTERM: {e}");
        return 1;
    }
    // parlinalg switches a generic fallback kernel before main (a benchmark on the wrong kernel
    // measures nothing about threading): the header says what happened.
    let kernel = parlinalg::kernel::kernel_selection().to_string();
    // Arguments as given; a byte that is not UTF-8 (a path may hold one) shows as U+FFFD.
    let command: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match run(&settings, &kernel, command, true) {
        Ok(_) => 0,
        Err(e) => {
            lifecycle::wait_if_stopping();
            eprintln!("parlinalg report: {e:#}");
            1
        }
    }
}

/// Runs every section the settings ask for, prints them as they finish (when `print`), and
/// writes the files.
///
/// # Errors
/// What stopped the run, as text: first a [`preflight::PreflightError`] when the output folder
/// cannot be written or a size does not fit in memory (nothing measured), else what failed.
pub fn run(
    settings: &Settings,
    kernel: &str,
    command: Vec<String>,
    print: bool,
) -> anyhow::Result<ReportData> {
    preflight::check(settings)?;
    let report = parlinalg::threads::report()?;
    let header = ReportHeader {
        kernel: kernel.to_owned(),
        thread_report: report.to_string(),
        thread_report_json: serde_json::to_value(&report)?,
        cores: settings.cores,
    };
    let total = estimated_seconds(settings);
    let mut progress = Progress::new(total, !settings.progress || !print);
    let emit = |progress: &mut Progress, md: String| {
        if print {
            progress.print(&md);
        }
    };
    emit(&mut progress, output::header_md(&header, settings));

    let mut data = ReportData {
        parlinalg: env!("CARGO_PKG_VERSION").to_owned(),
        command,
        settings: settings.clone(),
        header,
        classic: None,
        versus: None,
        grid: None,
        latency: None,
        openmp: None,
        sharing: None,
        seconds: 0.0,
    };
    for section in &SECTIONS {
        if settings.runs(section.section()) {
            section.measure(settings, &mut progress, &mut data)?;
            if let Some(md) = section.markdown(&data) {
                emit(&mut progress, md);
            }
        }
    }
    data.seconds = progress.elapsed();

    let mut files = output::write_files(&settings.out, &data)?;
    files.extend(write_plots(&settings.out, &data)?);
    progress.finish();
    if print {
        println!("## Files\n");
        for f in &files {
            println!("- {}", f.display());
        }
        println!(
            "\nThe whole run took {}.",
            progress::fmt_duration(std::time::Duration::from_secs_f64(data.seconds))
        );
    }
    Ok(data)
}

/// The run's estimated cost in seconds, section by section, for the progress bar.
fn estimated_seconds(settings: &Settings) -> f64 {
    let mut total = 0.0;
    for section in &SECTIONS {
        if settings.runs(section.section()) {
            total += section.estimate(settings);
        }
    }
    total
}

/// Every plot the data has, as SVG and PNG in `dir`, in section order; returns the files
/// written.
///
/// # Errors
/// Drawing, I/O or PNG encoding errors, as text.
pub fn write_plots(
    dir: &std::path::Path,
    data: &ReportData,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for section in &SECTIONS {
        for (name, plot) in section.plots(data) {
            files.extend(plots::write(dir, name, &plot)?);
        }
    }
    Ok(files)
}
