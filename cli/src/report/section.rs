//! One trait for what every section of the report provides, and the list of sections in the
//! order they run and print. `report/mod.rs` and `output.rs` loop over [`SECTIONS`]; a section's
//! measurement, conclusions, Markdown and CSV live in its own file (`classic.rs`, `versus.rs`,
//! `grid.rs`, `latency.rs`, `openmp.rs`, `processes.rs`), its plots' drawing in `plots.rs`, and
//! here only what joins it to the run: which [`Section`] names it, its settings, and its slot in
//! [`ReportData`].
//!
//! (The glue is here, not in the section's file, because [`ReportData`] holds every section's
//! data: a section file that named it would import itself back through `data.rs`.)

use crate::report::cli::{Section, Settings};
use crate::report::data::ReportData;
use crate::report::plots::Plot;
use crate::report::progress::Progress;
use crate::report::{classic, grid, latency, machine, openmp, processes, python, versus};

/// A section of the report: whether it runs, what it costs, how it is measured, and how it is
/// rendered from [`ReportData`] (Markdown, CSV files, plots). Every rendering reads only the data,
/// so a report.json renders the same files as the run that wrote it.
pub trait ReportSection: Sync {
    /// The `--only` / `--skip` value that names this section.
    fn section(&self) -> Section;

    /// Its estimated cost in seconds, for the progress bar (asked only when it runs).
    fn estimate(&self, settings: &Settings) -> f64;

    /// Measures it, concludes, and stores the result in its slot of `data`.
    ///
    /// # Errors
    /// What stopped the measurement, as text.
    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()>;

    /// Its Markdown, or `None` when `data` does not hold it.
    fn markdown(&self, data: &ReportData) -> Option<String>;

    /// Its CSV files as (file name, contents with the header line); none when `data` does not
    /// hold it. Two sections may name the same file: their rows go into one file, in section
    /// order, under one header.
    ///
    /// # Errors
    /// A row the CSV writer refuses, as text.
    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>>;

    /// Its plots as (file name without extension, plot); none when `data` does not hold it.
    fn plots<'a>(&self, data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)>;
}

/// Every section, in the order they run, print and write their files.
pub static SECTIONS: [&dyn ReportSection; 6] =
    [&Classic, &Numpy, &Grid, &Latency, &Openmp, &Processes];

/// A CSV file named `name` when there is text.
fn file(name: &str, text: Option<String>) -> Vec<(String, String)> {
    text.map(|t| (name.to_owned(), t)).into_iter().collect()
}

/// [`Section::Classic`]: serial vs C threads vs C processes, numpy's version beside it
/// (`classic.rs`, `python.rs`).
#[derive(Debug)]
pub struct Classic;

impl ReportSection for Classic {
    fn section(&self) -> Section {
        Section::Classic
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        let python = if settings.numpy {
            python::estimate(&settings.classic)
        } else {
            0.0
        };
        classic::estimate(&settings.classic) + python
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        let machine = machine::Snapshot::take();
        let rust = classic::measure(&settings.classic, progress)?;
        let machine = machine.until_now();
        let python = if settings.numpy {
            python::run(&settings.python, &settings.out, &settings.classic, progress)
        } else {
            python::PythonClassic::Skipped {
                why: "skipped (--no-numpy)".into(),
            }
        };
        data.classic = Some(classic::ClassicSection {
            conclusion: classic::conclude(settings.classic.workers, &rust, &python),
            h_conclusion: classic::conclude_h(settings.classic.workers, &rust),
            sharing_conclusion: classic::conclude_sharing(&rust),
            settings: settings.classic.clone(),
            rust,
            python,
            machine,
        });
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        data.classic.as_ref().map(classic::markdown)
    }

    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.classic {
            Some(c) => Ok(file("classic.csv", classic::csv(c)?)),
            None => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        data.classic
            .iter()
            .map(|c| ("classic", Plot::Classic(c)))
            .collect()
    }
}

/// [`Section::Numpy`]: matmul throughput against numpy (`versus.rs`).
#[derive(Debug)]
pub struct Numpy;

impl ReportSection for Numpy {
    fn section(&self) -> Section {
        Section::Numpy
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        versus::estimate(&settings.versus)
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        let python = settings.numpy.then_some(settings.python.as_str());
        data.versus = Some(versus::measure(&settings.versus, python, progress)?);
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        data.versus.as_ref().map(versus::markdown)
    }

    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.versus {
            Some(v) => Ok(file("matmul_vs_numpy.csv", versus::csv(v)?)),
            None => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, _data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        Vec::new()
    }
}

/// [`Section::Grid`]: K outer × N BLAS threads under the pthreads OpenBLAS (`grid.rs`).
#[derive(Debug)]
pub struct Grid;

impl ReportSection for Grid {
    fn section(&self) -> Section {
        Section::Grid
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        grid::estimate(&settings.grid, settings.cores)
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        data.grid = Some(grid::measure(&settings.grid, settings.cores, progress)?);
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        let title = "2. The inner vs outer grid: K outer × N BLAS threads";
        data.grid.as_ref().map(|g| grid::markdown(g, title))
    }

    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.grid {
            Some(g) => Ok(file(grid::CSV_FILE, grid::csv(g)?)),
            None => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        let Some(g) = &data.grid else {
            return Vec::new();
        };
        vec![
            (
                "grid_speedup",
                Plot::Speedup(g, "Speedup against K·N threads (pthreads OpenBLAS)"),
            ),
            ("grid_heatmap", Plot::Heatmap(g, "K outer × N BLAS threads")),
        ]
    }
}

/// [`Section::Latency`]: a small product's latency beside large ones (`latency.rs`).
#[derive(Debug)]
pub struct Latency;

impl ReportSection for Latency {
    fn section(&self) -> Section {
        Section::Latency
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        latency::estimate(&settings.latency)
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        data.latency = Some(latency::measure(
            &settings.latency,
            settings.cores,
            progress,
        )?);
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        data.latency.as_ref().map(latency::markdown)
    }

    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.latency {
            Some(l) => Ok(file("latency.csv", latency::csv(l)?)),
            None => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        data.latency
            .iter()
            .map(|l| ("latency", Plot::Latency(l)))
            .collect()
    }
}

/// [`Section::Openmp`]: the grid again under the OpenMP build of OpenBLAS, in a child process
/// (`openmp.rs`).
#[derive(Debug)]
pub struct Openmp;

impl ReportSection for Openmp {
    fn section(&self) -> Section {
        Section::Openmp
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        if openmp::installed(&settings.openmp_dir) {
            grid::estimate(&settings.grid, settings.cores)
        } else {
            0.0
        }
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        data.openmp = Some(openmp::run(
            &settings.openmp_dir,
            &settings.grid,
            settings.cores,
            progress,
        ));
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        data.openmp.as_ref().map(openmp::markdown)
    }

    /// Its rows go into grid.csv, after the pthreads grid's.
    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.openmp {
            Some(openmp::OpenMpOutcome::Ran { grid: g, .. }) => {
                Ok(file(grid::CSV_FILE, grid::csv(g)?))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        let Some(openmp::OpenMpOutcome::Ran { grid: g, .. }) = &data.openmp else {
            return Vec::new();
        };
        vec![
            (
                "openmp_grid_speedup",
                Plot::Speedup(g, "Speedup against K·N threads (OpenMP OpenBLAS)"),
            ),
            (
                "openmp_grid_heatmap",
                Plot::Heatmap(g, "K outer × N BLAS threads (OpenMP OpenBLAS)"),
            ),
        ]
    }
}

/// [`Section::Processes`]: processes sharing the machine, and the MPI job (`processes.rs`).
#[derive(Debug)]
pub struct Processes;

impl ReportSection for Processes {
    fn section(&self) -> Section {
        Section::Processes
    }

    fn estimate(&self, settings: &Settings) -> f64 {
        processes::estimate(&settings.sharing, settings.cores)
    }

    fn measure(
        &self,
        settings: &Settings,
        progress: &mut Progress,
        data: &mut ReportData,
    ) -> anyhow::Result<()> {
        data.sharing = Some(processes::measure(
            &settings.sharing,
            settings.cores,
            progress,
        )?);
        Ok(())
    }

    fn markdown(&self, data: &ReportData) -> Option<String> {
        data.sharing.as_ref().map(processes::markdown)
    }

    fn csv_files(&self, data: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
        match &data.sharing {
            Some(x) => Ok(file("processes.csv", processes::csv(x)?)),
            None => Ok(Vec::new()),
        }
    }

    fn plots<'a>(&self, _data: &'a ReportData) -> Vec<(&'static str, Plot<'a>)> {
        Vec::new()
    }
}
