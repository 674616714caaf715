//! numpy's version of the classic table: `classic.py` (written into the output folder, so it
//! can be rerun by hand) once per BLAS thread count, OPENBLAS_NUM_THREADS set before numpy
//! loads. Without python3 or numpy the report says so and goes on.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::report::classic_rows::{fill_speedups, ClassicRow, How};
use crate::report::cli::ClassicSettings;
use crate::report::lifecycle;
use crate::report::progress::Progress;
use crate::report::stats::Samples;
use crate::report::workloads::Workload;

/// The script, shipped inside the report.
pub const CLASSIC_SCRIPT: &str = include_str!("classic.py");

/// What came of the Python table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PythonClassic {
    /// It ran: the interpreter's and numpy's versions and the rows.
    Ran {
        python: String,
        numpy: String,
        rows: Vec<ClassicRow>,
    },
    /// Not run, and why (no python3, no numpy, `--no-numpy`, or a failure).
    Skipped { why: String },
}

/// Probes `python` for numpy: `Ok(numpy version)` or why not.
pub fn probe(python: &str) -> Result<String, String> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", "import numpy; print(numpy.__version__)"]);
    let out = lifecycle::output(&mut cmd)
        .map_err(|e| format!("{python} not found ({e}); install python3 and numpy to compare"))?;
    if !out.status.success() {
        return Err(format!(
            "{python} has no numpy (`pip install numpy` to compare)"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Estimated cost in seconds, for the progress bar (Python's f is ~80 ns an element).
pub fn estimate(s: &ClassicSettings) -> f64 {
    let g = s.elements as f64 * 6e-9 * s.g_reps as f64 * 2.0;
    let f = s.elements as f64 * 90e-9 * s.f_reps as f64 * 2.5;
    let h = 2.0 * (s.h_size as f64).powi(3) * s.h_batch as f64 / 30e9 * 3.0;
    g + f + h * s.h_blas.len() as f64 + 1.0 * (2 + s.h_blas.len()) as f64
}

/// Runs the Python table; never fails the report (a failure is a `Skipped` with the reason).
pub fn run(
    python: &str,
    out_dir: &Path,
    s: &ClassicSettings,
    progress: &mut Progress,
) -> PythonClassic {
    if let Err(why) = probe(python) {
        return PythonClassic::Skipped { why };
    }
    let script = out_dir.join("classic.py");
    if let Err(e) = std::fs::write(&script, CLASSIC_SCRIPT) {
        return PythonClassic::Skipped {
            why: format!("cannot write {}: {e}", script.display()),
        };
    }
    let mut versions = (String::new(), String::new());
    let mut rows = Vec::new();
    for (i, &blas) in s.h_blas.iter().enumerate() {
        progress.label(format!("classic (Python): {blas} BLAS thread(s)"));
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .args(["--workers", &s.workers.to_string()])
            .args(["--elements", &s.elements.to_string()])
            .args(["--g-reps", &s.g_reps.to_string()])
            .args(["--f-reps", &s.f_reps.to_string()])
            .args(["--h-batch", &s.h_batch.to_string()])
            .args(["--h-size", &s.h_size.to_string()])
            .env("OPENBLAS_NUM_THREADS", blas.to_string())
            .env_remove("OMP_NUM_THREADS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if i > 0 {
            cmd.arg("--only-h");
        }
        let mut child = match lifecycle::spawn(&mut cmd) {
            Ok(c) => c,
            Err(e) => return skipped(format!("cannot run {python}: {e}")),
        };
        let stdout = child.stdout.take().expect("piped");
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let (Some(p), Some(n)) = (v["python"].as_str(), v["numpy"].as_str()) {
                versions = (p.to_owned(), n.to_owned());
                continue;
            }
            match parse_row(&v) {
                Some(r) => {
                    progress.advance(r.seconds);
                    rows.push(r);
                }
                None => return skipped(format!("unexpected line from classic.py: {line}")),
            }
        }
        let output = match child.wait_with_output() {
            Ok(o) => o,
            Err(e) => return skipped(format!("classic.py: {e}")),
        };
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            let last = err.lines().last().unwrap_or("no message");
            return skipped(format!("classic.py failed ({}): {last}", output.status));
        }
    }
    fill_speedups(&mut rows);
    PythonClassic::Ran {
        python: versions.0,
        numpy: versions.1,
        rows,
    }
}

fn skipped(why: String) -> PythonClassic {
    PythonClassic::Skipped { why }
}

fn parse_row(v: &serde_json::Value) -> Option<ClassicRow> {
    let workload = match v["workload"].as_str()? {
        "g" => Workload::G,
        "f" => Workload::F,
        "h" => Workload::H,
        _ => return None,
    };
    let how = match v["how"].as_str()? {
        "serial" => How::Serial,
        "threads" => How::Threads,
        "processes" => How::Processes,
        _ => return None,
    };
    let seconds = v["seconds"]
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)?;
    Some(ClassicRow {
        workload,
        how,
        outer: usize::try_from(v["outer"].as_u64()?).ok()?,
        blas: usize::try_from(v["blas"].as_u64()?).ok()?.max(1),
        seconds,
        speedup: f64::NAN,
        speedup_interval: None,
        samples: Samples::default(),
        sharing: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_junk_is_refused() {
        let v = serde_json::json!({"workload": "f", "how": "threads", "outer": 2, "blas": 1,
                                   "seconds": 1.5});
        let r = parse_row(&v).unwrap();
        assert_eq!(
            (r.workload, r.how, r.outer, r.seconds),
            (Workload::F, How::Threads, 2, 1.5)
        );
        assert!(parse_row(&serde_json::json!({"workload": "x"})).is_none());
        let neg = serde_json::json!({"workload": "g", "how": "serial", "outer": 1, "blas": 1,
                                     "seconds": -1.0});
        assert!(parse_row(&neg).is_none());
    }

    #[test]
    fn a_missing_interpreter_is_a_reason_not_a_failure() {
        let why = probe("/nonexistent/python3").unwrap_err();
        assert!(why.contains("not found"), "{why}");
    }
}
