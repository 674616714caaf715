//! The report's data: one serde type for all of it, as report.json holds it (old files load:
//! its field names and attributes do not change).

use serde::{Deserialize, Serialize};

use crate::report::classic::ClassicSection;
use crate::report::cli::Settings;
use crate::report::grid::GridSection;
use crate::report::latency::LatencySection;
use crate::report::openmp::OpenMpOutcome;
use crate::report::processes::ProcessesSection;
use crate::report::versus::VersusSection;

/// Everything the run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// The version of parlinalg that ran.
    pub parlinalg: String,
    /// The command line.
    pub command: Vec<String>,
    /// The resolved settings (sizes, rounds, sections).
    pub settings: Settings,
    /// What runs: the kernel and the thread report.
    pub header: ReportHeader,
    /// [`Section::Classic`](crate::report::Section::Classic), when it ran.
    pub classic: Option<ClassicSection>,
    /// [`Section::Numpy`](crate::report::Section::Numpy) (`versus.rs`), when it ran.
    pub versus: Option<VersusSection>,
    /// [`Section::Grid`](crate::report::Section::Grid), when it ran.
    pub grid: Option<GridSection>,
    /// [`Section::Latency`](crate::report::Section::Latency), when it ran.
    pub latency: Option<LatencySection>,
    /// [`Section::Openmp`](crate::report::Section::Openmp), when it ran.
    pub openmp: Option<OpenMpOutcome>,
    /// [`Section::Processes`](crate::report::Section::Processes), when it ran; `sharing` in
    /// report.json, as before the section had its name (absent in files older than it).
    #[serde(default)]
    pub sharing: Option<ProcessesSection>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// The report's header: what runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportHeader {
    /// What parlinalg did about the OpenBLAS kernel (`kernel_selection`).
    pub kernel: String,
    /// `parlinalg::threads::report()`, as text.
    pub thread_report: String,
    /// The same, as JSON.
    pub thread_report_json: serde_json::Value,
    /// The cores this process may use.
    pub cores: usize,
}
