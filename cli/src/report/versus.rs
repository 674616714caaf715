//! matmul throughput of parlinalg against numpy, alternating the two (A/B) round after round,
//! with 1 and C BLAS threads; ndarray's own `.dot` (no BLAS) for scale.
//!
//! At the end: the section's Markdown ([`markdown`]) and matmul_vs_numpy.csv ([`csv()`](fn@csv)). It
//! runs as `--only numpy` ([`Section::Numpy`](crate::report::Section::Numpy)).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parlinalg::threads::with_blas_threads;
use serde::{Deserialize, Serialize};

use crate::report::cli::VersusSettings;
use crate::report::progress::Progress;
use crate::report::stats::{self, gflops, median};
use crate::report::table::csv_text;

const NUMPY_SCRIPT: &str = include_str!("numpy_matmul.py");

/// One (size, BLAS threads) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersusRow {
    pub n: usize,
    pub threads: usize,
    /// parlinalg's median GFLOP/s.
    pub parlinalg_gflops: f64,
    /// numpy's median GFLOP/s.
    pub numpy_gflops: Option<f64>,
    /// parlinalg / numpy: the ratio of the two medians.
    pub ratio: Option<f64>,
    /// ndarray's `.dot` (n ≤ 1024 only: it is slow).
    pub ndarray_gflops: Option<f64>,
}

/// The section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersusSection {
    /// numpy's version and kernel, or why it is missing.
    pub numpy: Result<String, String>,
    pub rounds: usize,
    pub rows: Vec<VersusRow>,
    pub conclusion: String,
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &VersusSettings) -> f64 {
    (s.sizes.len() * s.threads.len()) as f64 * (s.rounds as f64 * 1.2 + 0.4)
}

/// Measures every cell.
///
/// # Errors
/// parlinalg's errors, as text.
pub fn measure(
    s: &VersusSettings,
    python: Option<&str>,
    progress: &mut Progress,
) -> anyhow::Result<VersusSection> {
    let numpy = match python {
        None => Err("skipped (--no-numpy)".to_owned()),
        Some(py) => probe_numpy(py)
            .ok_or_else(|| format!("not found ({py} with numpy); `pip install numpy` to compare")),
    };
    let mut rows = Vec::new();
    for &n in &s.sizes {
        let a = stats::matrix(n, 1);
        let b = stats::matrix(n, 2);
        for &t in &s.threads {
            progress.label(format!("matmul vs numpy: n = {n}, {t} BLAS threads"));
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            for _ in 0..s.rounds {
                let g = with_blas_threads(t, || {
                    gflops(
                        n,
                        1,
                        time_median(|| drop(parlinalg::matmul(&a, &b))).as_secs_f64(),
                    )
                })?;
                ours.push(g);
                if let (Ok(_), Some(py)) = (&numpy, python) {
                    if let Some(gn) = numpy_gflops(py, n, t) {
                        theirs.push(gn);
                    }
                }
                progress.advance(1.2);
            }
            let nd =
                (n <= 1024).then(|| gflops(n, 1, time_median(|| drop(a.dot(&b))).as_secs_f64()));
            let (ours, theirs) = (
                median(&mut ours),
                (!theirs.is_empty()).then(|| median(&mut theirs)),
            );
            rows.push(VersusRow {
                n,
                threads: t,
                parlinalg_gflops: ours,
                numpy_gflops: theirs,
                // The ratio of the two medians shown beside it (a median of per-round ratios
                // could disagree with both columns).
                ratio: theirs.map(|gn| ours / gn),
                ndarray_gflops: nd,
            });
            progress.advance(0.4);
        }
    }
    let conclusion = conclude(&rows, &numpy);
    Ok(VersusSection {
        numpy,
        rounds: s.rounds,
        rows,
        conclusion,
    })
}

/// The section's sentence.
pub fn conclude(rows: &[VersusRow], numpy: &Result<String, String>) -> String {
    let with_ratio: Vec<&VersusRow> = rows.iter().filter(|r| r.ratio.is_some()).collect();
    if with_ratio.is_empty() {
        let best = rows
            .iter()
            .max_by(|a, b| a.parlinalg_gflops.total_cmp(&b.parlinalg_gflops));
        return match (best, numpy) {
            (Some(b), Err(why)) => format!(
                "parlinalg's matmul peaked at {:.1} GFLOP/s (n = {}, {} BLAS thread{}); numpy {why}.",
                b.parlinalg_gflops,
                b.n,
                b.threads,
                if b.threads == 1 { "" } else { "s" }
            ),
            _ => "Nothing was measured.".into(),
        };
    }
    let ratio = |r: &&VersusRow| r.ratio.unwrap_or(f64::NAN);
    let lo = with_ratio
        .iter()
        .min_by(|a, b| ratio(a).total_cmp(&ratio(b)))
        .expect("some");
    let hi = with_ratio
        .iter()
        .max_by(|a, b| ratio(a).total_cmp(&ratio(b)))
        .expect("some");
    let largest = with_ratio.iter().map(|r| r.n).max().expect("some");
    let at_largest: Vec<String> = with_ratio
        .iter()
        .filter(|r| r.n == largest)
        .map(|r| {
            format!(
                "{:.0}% with {} BLAS thread{}",
                100.0 * ratio(r),
                r.threads,
                if r.threads == 1 { "" } else { "s" }
            )
        })
        .collect();
    format!(
        "parlinalg's matmul ran at {:.0}% to {:.0}% of numpy's throughput measured in the same \
         run (n = {largest}: {}).",
        100.0 * ratio(lo),
        100.0 * ratio(hi),
        at_largest.join(", ")
    )
}

/// Median wall time of `f` over at least 3 calls and 0.3 s, after one warm-up call.
fn time_median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    Duration::from_secs_f64(median(&mut times))
}

/// Bytes one size holds at once, in parlinalg's process or numpy's: a, b and the product.
pub fn bytes_needed(n: usize) -> u128 {
    3 * 8 * (n as u128).pow(2)
}

/// numpy's version and OpenBLAS kernel, or `None` when python3 or numpy is missing.
pub fn probe_numpy(python: &str) -> Option<String> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", NUMPY_SCRIPT, "--sizes", "8", "--min-time", "0"])
        .stdin(Stdio::null());
    let out = crate::report::lifecycle::output(&mut cmd).ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let v: serde_json::Value = serde_json::from_str(line.lines().next()?).ok()?;
    Some(format!(
        "numpy {} with OpenBLAS {} on kernel {}",
        v["numpy"].as_str()?,
        v["openblas"].as_str()?,
        v["kernel"].as_str()?
    ))
}

/// numpy's median GFLOP/s for one size with `threads` BLAS threads, in a fresh process.
fn numpy_gflops(python: &str, n: usize, threads: usize) -> Option<f64> {
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        NUMPY_SCRIPT,
        "--sizes",
        &n.to_string(),
        "--min-time",
        "0.3",
    ])
    .env("OPENBLAS_NUM_THREADS", threads.to_string())
    .stdin(Stdio::null());
    let out = crate::report::lifecycle::output(&mut cmd).ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.lines().next()?).ok()?;
    v["gflops"].as_f64()
}

// ---- Markdown and CSV ----

/// matmul vs numpy.
pub fn markdown(v: &VersusSection) -> String {
    let mut md = format!(
        "## matmul throughput against numpy\n\nf64, n×n · n×n, GFLOP/s, median of {} A/B rounds \
         (parlinalg then numpy in a fresh process, alternating). numpy: {}. ndarray `.dot` is \
         ndarray without a BLAS backend.\n\n\
         | n | BLAS threads | parlinalg | numpy | parlinalg / numpy | ndarray `.dot` |\n\
         |---:|---:|---:|---:|---:|---:|\n",
        v.rounds,
        match &v.numpy {
            Ok(info) => info.clone(),
            Err(why) => why.clone(),
        }
    );
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "—".to_owned(), f);
    for r in &v.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {} | {} | {} |",
            r.n,
            r.threads,
            r.parlinalg_gflops,
            opt(r.numpy_gflops, &|g| format!("{g:.1}")),
            opt(r.ratio, &|x| format!("{:.0}%", x * 100.0)),
            opt(r.ndarray_gflops, &|g| format!("{g:.1}")),
        );
    }
    let _ = writeln!(md, "\n{}\n", v.conclusion);
    md
}

/// A row of matmul_vs_numpy.csv.
#[derive(Serialize)]
struct VersusCsv {
    n: usize,
    blas_threads: usize,
    parlinalg_gflops: f64,
    numpy_gflops: Option<f64>,
    ratio: Option<f64>,
    ndarray_gflops: Option<f64>,
}

impl From<&VersusRow> for VersusCsv {
    fn from(r: &VersusRow) -> Self {
        VersusCsv {
            n: r.n,
            blas_threads: r.threads,
            parlinalg_gflops: r.parlinalg_gflops,
            numpy_gflops: r.numpy_gflops,
            ratio: r.ratio,
            ndarray_gflops: r.ndarray_gflops,
        }
    }
}

/// matmul_vs_numpy.csv, one row per size and BLAS-thread count; `None` without rows.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv(v: &VersusSection) -> anyhow::Result<Option<String>> {
    csv_text(v.rows.iter().map(VersusCsv::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: usize, threads: usize, ratio: Option<f64>) -> VersusRow {
        VersusRow {
            n,
            threads,
            parlinalg_gflops: 10.0 * threads as f64,
            numpy_gflops: ratio.map(|r| 10.0 * threads as f64 / r),
            ratio,
            ndarray_gflops: None,
        }
    }

    #[test]
    fn the_sentence_quotes_the_range_and_the_largest_size() {
        let rows = [
            row(256, 1, Some(0.9)),
            row(2048, 1, Some(1.01)),
            row(2048, 2, Some(0.97)),
        ];
        let s = conclude(&rows, &Ok("numpy".into()));
        assert!(s.contains("90% to 101%"), "{s}");
        assert!(
            s.contains("n = 2048: 101% with 1 BLAS thread, 97% with 2 BLAS threads"),
            "{s}"
        );
        let s = conclude(&[row(256, 2, None)], &Err("not found".into()));
        assert!(
            s.contains("20.0 GFLOP/s") && s.contains("numpy not found"),
            "{s}"
        );
    }
}
