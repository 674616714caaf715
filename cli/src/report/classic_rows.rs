//! One row of the classic table, Rust's or numpy's: the workload, how it ran (serial, C threads,
//! C processes), its time and its speedup over serial.

use serde::{Deserialize, Serialize};

use crate::report::classic_workers::ProcessRowCost;
use crate::report::stats::{Interval, Samples};
use crate::report::workloads::Workload;

/// How a row runs its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum How {
    /// One thread.
    Serial,
    /// C threads of one process.
    Threads,
    /// C processes.
    Processes,
}

impl How {
    /// As in the tables.
    pub fn name(self) -> &'static str {
        match self {
            How::Serial => "serial",
            How::Threads => "threads",
            How::Processes => "processes",
        }
    }
}

/// One measured row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassicRow {
    pub workload: Workload,
    pub how: How,
    /// Threads or processes (1 for serial).
    pub outer: usize,
    /// BLAS threads in each (matters for h only).
    pub blas: usize,
    pub seconds: f64,
    /// Over the serial, 1-BLAS-thread row of the same workload.
    pub speedup: f64,
    /// The speedup's 95% interval over rounds (Rust's rows; Python's are measured once).
    #[serde(default)]
    pub speedup_interval: Option<Interval>,
    /// Seconds, per round (Rust's rows).
    #[serde(default)]
    pub samples: Samples,
    /// Process rows: what the shared memory cost (in the last round).
    pub sharing: Option<ProcessRowCost>,
}

/// Speedup of every row over the serial 1-BLAS row of its workload (Python's rows, measured
/// once each).
pub fn fill_speedups(rows: &mut [ClassicRow]) {
    let base: Vec<(Workload, f64)> = rows
        .iter()
        .filter(|r| r.how == How::Serial && r.blas == 1)
        .map(|r| (r.workload, r.seconds))
        .collect();
    for r in rows.iter_mut() {
        if let Some((_, t)) = base.iter().find(|(w, _)| *w == r.workload) {
            r.speedup = t / r.seconds;
        }
    }
}

/// The row of `workload` run `how` with `blas` BLAS threads.
pub fn find(rows: &[ClassicRow], workload: Workload, how: How, blas: usize) -> Option<&ClassicRow> {
    rows.iter()
        .find(|r| r.workload == workload && r.how == how && r.blas == blas)
}
