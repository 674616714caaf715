//! One row of the classic table, Rust's or numpy's: the workload, how it ran (serial, C threads,
//! C processes), its time and its speedup over serial.

use serde::{Deserialize, Serialize};

use crate::report::classic_workers::ProcessRowCost;
use crate::report::stats::{self, Interval, Samples};
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
    /// The speedup's 95% interval (paired bootstrap over rounds).
    #[serde(default)]
    pub speedup_interval: Option<Interval>,
    /// Seconds, per round.
    #[serde(default)]
    pub samples: Samples,
    /// Process rows: what the shared memory cost (in the last round). Rust's rows count the
    /// spawn in their time; Python's leave the workers' start out (see [`Measured`]).
    pub sharing: Option<ProcessRowCost>,
}

/// One row measured in one round (Python's rows arrive this way, a line each).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub workload: Workload,
    pub how: How,
    pub outer: usize,
    pub blas: usize,
    pub round: usize,
    pub seconds: f64,
    /// A process row's costs in this round.
    pub sharing: Option<ProcessRowCost>,
}

/// The rows of per-round measurements, one per (workload, how, BLAS threads) in the classic
/// table's order (g, f, then h by BLAS threads; serial, threads, processes), each with its
/// samples, time, speedup and interval ([`fill_speedups`]) and the last round's sharing costs.
pub fn from_rounds(measured: &[Measured]) -> Vec<ClassicRow> {
    let mut rows: Vec<ClassicRow> = Vec::new();
    for m in measured {
        let i = match rows
            .iter()
            .position(|r| (r.workload, r.how, r.blas) == (m.workload, m.how, m.blas))
        {
            Some(i) => i,
            None => {
                rows.push(ClassicRow {
                    workload: m.workload,
                    how: m.how,
                    outer: m.outer,
                    blas: m.blas,
                    seconds: f64::NAN,
                    speedup: f64::NAN,
                    speedup_interval: None,
                    samples: Samples::default(),
                    sharing: None,
                });
                rows.len() - 1
            }
        };
        let r = &mut rows[i];
        r.samples.0.push((m.round, m.seconds));
        if m.sharing.is_some() {
            r.sharing = m.sharing;
        }
    }
    let workload = |w: Workload| match w {
        Workload::G => 0,
        Workload::F => 1,
        Workload::H => 2,
    };
    let how = |h: How| match h {
        How::Serial => 0,
        How::Threads => 1,
        How::Processes => 2,
    };
    rows.sort_by_key(|r| (workload(r.workload), r.blas, how(r.how)));
    fill_speedups(&mut rows);
    rows
}

/// Every row's time (the [`STATISTIC`](crate::report::stats::STATISTIC) of its samples) and
/// its speedup over the serial 1-BLAS-thread row of its workload, with the paired bootstrap
/// interval over the rounds both ran in.
pub fn fill_speedups(rows: &mut [ClassicRow]) {
    let serial: Vec<(Workload, Samples)> = rows
        .iter()
        .filter(|r| r.how == How::Serial && r.blas == 1)
        .map(|r| (r.workload, r.samples.clone()))
        .collect();
    for r in rows.iter_mut() {
        r.seconds = r.samples.estimate();
        if let Some((_, base)) = serial.iter().find(|(w, _)| *w == r.workload) {
            (r.speedup, r.speedup_interval) = stats::ratio(base, &r.samples, 9);
        }
    }
}

/// The row of `workload` run `how` with `blas` BLAS threads.
pub fn find(rows: &[ClassicRow], workload: Workload, how: How, blas: usize) -> Option<&ClassicRow> {
    rows.iter()
        .find(|r| r.workload == workload && r.how == how && r.blas == blas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(workload: Workload, how: How, blas: usize, round: usize, seconds: f64) -> Measured {
        Measured {
            workload,
            how,
            outer: if how == How::Serial { 1 } else { 2 },
            blas,
            round,
            seconds,
            sharing: None,
        }
    }

    #[test]
    fn rounds_become_rows_with_intervals() {
        // Four rounds, arriving in any order: h serial at 1 BLAS thread takes 1 s (± jitter),
        // h in threads 0.5 s, h serial at 2 BLAS threads 0.6 s.
        let jitter = [1.0, 1.04, 0.98, 1.1];
        let mut measured = Vec::new();
        for (round, j) in jitter.iter().enumerate().rev() {
            measured.push(m(Workload::H, How::Threads, 1, round, 0.5 * j));
            measured.push(m(Workload::H, How::Serial, 2, round, 0.6 * j));
            measured.push(m(Workload::H, How::Serial, 1, round, 1.0 * j));
        }
        let rows = from_rounds(&measured);
        let keys: Vec<(How, usize)> = rows.iter().map(|r| (r.how, r.blas)).collect();
        assert_eq!(
            keys,
            [(How::Serial, 1), (How::Threads, 1), (How::Serial, 2)],
            "the table's order"
        );
        for r in &rows {
            assert_eq!(r.samples.len(), 4, "{r:?}");
            assert_eq!(r.seconds, r.samples.estimate());
            let iv = r.speedup_interval.expect("4 rounds give an interval");
            assert!(iv.lo <= r.speedup && r.speedup <= iv.hi, "{r:?}");
        }
        // Each round's jitter hits both rows alike: the paired ratio is exact.
        let threads = find(&rows, Workload::H, How::Threads, 1).unwrap();
        assert!((threads.speedup - 2.0).abs() < 1e-12, "{threads:?}");
        let iv = threads.speedup_interval.unwrap();
        assert!((iv.lo - 2.0).abs() < 1e-12 && (iv.hi - 2.0).abs() < 1e-12);
        let blas2 = find(&rows, Workload::H, How::Serial, 2).unwrap();
        assert!((blas2.speedup - 1.0 / 0.6).abs() < 1e-12, "{blas2:?}");
        // One round is a figure without an interval.
        let once = from_rounds(&measured[..3]);
        assert!(once.iter().all(|r| r.speedup_interval.is_none()));
    }
}
