//! Section 3, latency under a mixed load: a small product's p50 / p99 / max alone and beside a
//! thread running large products, under a fixed BLAS count of all cores (what OpenBLAS's
//! pthreads build does by default) and under parlinalg's `auto`.
//!
//! At the end: the section's Markdown ([`markdown`]) and latency.csv ([`csv()`](fn@csv)).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parlinalg::threads::{
    blas_threads_setting, set_blas_threads, set_blas_threads_auto, BlasThreads,
};
use serde::{Deserialize, Serialize};

use crate::report::cli::LatencySettings;
use crate::report::machine::{all_cores_blas, MachineState, Snapshot};
use crate::report::progress::Progress;
use crate::report::stats::{self, percentile};
use crate::report::table::{csv_text, strings, table};

/// One condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRow {
    /// `fixed N` or `auto`.
    pub blas: String,
    /// Beside a thread running large products.
    pub loaded: bool,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The p99's 95% interval (order statistics): `None` for an end the sample is too small
    /// to bound (for the upper end, fewer than about 370 samples).
    pub p99_lo_ms: Option<f64>,
    pub p99_hi_ms: Option<f64>,
    pub max_ms: f64,
}

/// The section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySection {
    pub settings: LatencySettings,
    /// BLAS threads of the fixed rows: the cores, or the loaded OpenBLAS's `MAX_THREADS` where
    /// that is fewer.
    pub cores: usize,
    pub rows: Vec<LatencyRow>,
    pub conclusion: String,
    /// The machine while the section ran.
    #[serde(default)]
    pub machine: Option<MachineState>,
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &LatencySettings) -> f64 {
    4.0 * (s.samples as f64 * 1.5e-3).min(s.max_seconds) + 1.0
}

/// Measures the four conditions; the BLAS thread setting is restored afterwards.
///
/// # Errors
/// parlinalg's errors, as text.
pub fn measure(
    s: &LatencySettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<LatencySection> {
    // "Fixed at all the cores": capped at what the loaded OpenBLAS runs.
    let cores = all_cores_blas(cores);
    let before = blas_threads_setting()?;
    let machine = Snapshot::take();
    let result = measure_all(s, cores, progress);
    let machine = Some(machine.until_now());
    match before.value {
        BlasThreads::Fixed(n) => set_blas_threads(n),
        BlasThreads::Auto => set_blas_threads_auto(),
    }?;
    let rows = result?;
    let conclusion = conclude(s, cores, &rows);
    Ok(LatencySection {
        settings: s.clone(),
        cores,
        rows,
        conclusion,
        machine,
    })
}

/// Bytes the section holds at once: the small and the large matrix and a product of each.
pub fn bytes_needed(s: &LatencySettings) -> u128 {
    2 * 8 * ((s.small as u128).pow(2) + (s.large as u128).pow(2))
}

fn measure_all(
    s: &LatencySettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<Vec<LatencyRow>> {
    let small = stats::matrix(s.small, 3);
    let big = stats::matrix(s.large, 4);
    let cap = Duration::from_secs_f64(s.max_seconds);
    let measure = |samples: usize| -> Vec<f64> {
        let start = Instant::now();
        let mut v = Vec::with_capacity(samples);
        while v.len() < samples && (v.len() < 5 || start.elapsed() < cap) {
            let t = Instant::now();
            black_box(parlinalg::matmul(&small, &small).expect("square"));
            v.push(t.elapsed().as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_micros(200));
        }
        v
    };
    let mut rows = Vec::new();
    for fixed in [true, false] {
        let label = if fixed {
            set_blas_threads(cores)?;
            format!("fixed {cores}")
        } else {
            set_blas_threads_auto()?;
            "auto".to_owned()
        };
        progress.label(format!("latency: {label}, alone"));
        let _ = parlinalg::matmul(&small, &small);
        let alone = measure(s.samples);
        progress.advance((s.samples as f64 * 1.5e-3).min(s.max_seconds));
        progress.label(format!(
            "latency: {label}, beside {0}×{0} products",
            s.large
        ));
        let stop = AtomicBool::new(false);
        let loaded = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    black_box(parlinalg::matmul(&big, &big).expect("square"));
                }
            });
            std::thread::sleep(Duration::from_millis(50));
            let v = measure(s.samples);
            stop.store(true, Ordering::Relaxed);
            v
        });
        progress.advance((s.samples as f64 * 1.5e-3).min(s.max_seconds) * 3.0);
        for (is_loaded, mut v) in [(false, alone), (true, loaded)] {
            let (lo, hi) = stats::quantile_ranks(v.len(), 0.99);
            rows.push(LatencyRow {
                blas: label.clone(),
                loaded: is_loaded,
                samples: v.len(),
                p50_ms: percentile(&mut v, 0.5),
                p99_ms: percentile(&mut v, 0.99),
                p99_lo_ms: lo.map(|i| v[i]),
                p99_hi_ms: hi.map(|i| v[i]),
                max_ms: percentile(&mut v, 1.0),
            });
        }
    }
    Ok(rows)
}

/// The section's sentence, from the numbers.
pub fn conclude(s: &LatencySettings, cores: usize, rows: &[LatencyRow]) -> String {
    let get = |blas: &str, loaded: bool| rows.iter().find(|r| r.blas == blas && r.loaded == loaded);
    let fixed = format!("fixed {cores}");
    match (
        get(&fixed, false),
        get(&fixed, true),
        get("auto", false),
        get("auto", true),
    ) {
        (Some(fa), Some(fl), Some(aa), Some(al)) => {
            let (rf, ra) = (fl.p99_ms / fa.p99_ms, al.p99_ms / aa.p99_ms);
            let better = if al.p99_ms < fl.p99_ms {
                format!(
                    "auto kept it {:.1}× lower than the fixed count",
                    fl.p99_ms / al.p99_ms
                )
            } else {
                format!(
                    "auto did not help ({:.1}× the fixed count's)",
                    al.p99_ms / fl.p99_ms
                )
            };
            // The claim holds only when the two p99 intervals are apart.
            let (lower, higher) = if al.p99_ms < fl.p99_ms {
                (al, fl)
            } else {
                (fl, al)
            };
            let apart =
                matches!((lower.p99_hi_ms, higher.p99_lo_ms), (Some(hi), Some(lo)) if hi < lo);
            let sure = if apart {
                "their p99 intervals do not overlap"
            } else {
                "but their p99 intervals overlap or are unbounded at this sample size: within noise, not a finding"
            };
            format!(
                "Beside a thread running {0}×{0} products, a {1}×{1} product's p99 latency went \
                 from {2:.2} to {3:.2} ms ({rf:.1}×) with BLAS threads fixed at {cores} and from \
                 {4:.2} to {5:.2} ms ({ra:.1}×) under auto, so {better} ({sure}).",
                s.large, s.small, fa.p99_ms, fl.p99_ms, aa.p99_ms, al.p99_ms
            )
        }
        _ => "Latency was not measured under every condition.".into(),
    }
}

// ---- Markdown and CSV ----

/// The latency section.
pub fn markdown(l: &LatencySection) -> String {
    let mut md = format!(
        "## 3. Latency under a mixed load\n\nA {0}×{0} f64 product, timed alone and beside a \
         thread running {1}×{1} products, with BLAS threads fixed at {2} (what the pthreads \
         OpenBLAS does by default) and under parlinalg's `auto`; milliseconds, up to {3} \
         samples 0.2 ms apart. The p99's 95% interval comes from the order statistics of the \
         samples; with fewer than about 370 samples nothing bounds it from above (the true p99 \
         may lie beyond the largest sample), and the table says so.\n\n",
        l.settings.small, l.settings.large, l.cores, l.settings.samples
    );
    let header = strings([
        "BLAS threads",
        "load",
        "samples",
        "p50",
        "p99",
        "p99 interval",
        "max",
    ]);
    let rows: Vec<Vec<String>> = l
        .rows
        .iter()
        .map(|r| {
            let interval = match (r.p99_lo_ms, r.p99_hi_ms) {
                (Some(lo), Some(hi)) => format!("{lo:.3}–{hi:.3}"),
                (Some(lo), None) => format!("≥ {lo:.3}: too few samples for an upper bound"),
                _ => "too few samples".to_owned(),
            };
            let load = if r.loaded {
                "beside large products"
            } else {
                "alone"
            };
            vec![
                r.blas.clone(),
                load.to_owned(),
                r.samples.to_string(),
                format!("{:.3}", r.p50_ms),
                format!("{:.3}", r.p99_ms),
                interval,
                format!("{:.3}", r.max_ms),
            ]
        })
        .collect();
    md.push_str(&table(&header, &rows));
    if let Some(m) = &l.machine {
        let _ = writeln!(md, "\n{}", m.describe());
    }
    let _ = writeln!(md, "\n{}\n", l.conclusion);
    md
}

/// latency.csv: a latency row is flat, its fields are the columns; `None` without rows.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv(l: &LatencySection) -> anyhow::Result<Option<String>> {
    csv_text(&l.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(blas: &str, loaded: bool, p99: f64) -> LatencyRow {
        LatencyRow {
            blas: blas.into(),
            loaded,
            samples: 1000,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            p99_lo_ms: Some(p99 * 0.9),
            p99_hi_ms: Some(p99 * 1.1),
            max_ms: p99 * 2.0,
        }
    }

    #[test]
    fn the_sentence_compares_the_p99s() {
        let s = LatencySettings {
            small: 256,
            large: 1536,
            samples: 10,
            max_seconds: 1.0,
        };
        let rows = [
            row("fixed 2", false, 1.0),
            row("fixed 2", true, 80.0),
            row("auto", false, 1.0),
            row("auto", true, 2.0),
        ];
        let c = conclude(&s, 2, &rows);
        assert!(c.contains("from 1.00 to 80.00 ms (80.0×)"), "{c}");
        assert!(c.contains("auto kept it 40.0× lower"), "{c}");
        assert!(c.contains("do not overlap"), "{c}");
        let mut few = rows.clone();
        few[3].p99_hi_ms = None;
        few[1].p99_lo_ms = Some(1.5);
        let c = conclude(&s, 2, &few);
        assert!(c.contains("within noise, not a finding"), "{c}");
        let rows = [
            row("fixed 2", false, 1.0),
            row("fixed 2", true, 2.0),
            row("auto", false, 1.0),
            row("auto", true, 3.0),
        ];
        assert!(conclude(&s, 2, &rows).contains("auto did not help"));
    }
}
