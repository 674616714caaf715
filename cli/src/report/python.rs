//! numpy's version of the classic table: `classic.py` (written into the output folder, so it
//! can be rerun by hand), one call per round and BLAS thread count, OPENBLAS_NUM_THREADS set
//! before numpy loads. The calls of a round run in a random order, and each measures its rows
//! once in a random order of its own, so Python's rows get rounds, a time (the report's
//! statistic) and a speedup interval like Rust's. A process row's workers start (interpreter,
//! `import numpy`) before its clock does: that start is listed apart. Without python3 or numpy
//! the report says so and goes on.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::report::classic_rows::{from_rounds, ClassicRow, How, Measured};
use crate::report::classic_workers::ProcessRowCost;
use crate::report::cli::ClassicSettings;
use crate::report::lifecycle;
use crate::report::progress::Progress;
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

/// Estimated cost in seconds, for the progress bar (Python's f is ~80 ns an element; a call
/// starts an interpreter and numpy, a process row C more).
pub fn estimate(s: &ClassicSettings) -> f64 {
    let g = s.elements as f64 * 6e-9 * s.g_reps as f64 * 2.0;
    let f = s.elements as f64 * 90e-9 * s.f_reps as f64 * 2.5;
    let h = 2.0 * (s.h_size as f64).powi(3) * s.h_batch as f64 / 30e9 * 3.0;
    let starts = 0.5 * s.h_blas.len() as f64 + 0.3 * (2 + s.h_blas.len()) as f64;
    s.rounds as f64 * (g + f + h * s.h_blas.len() as f64 + starts)
}

/// Runs the Python table, `s.rounds` rounds; never fails the report (a failure is a `Skipped`
/// with the reason).
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
    let mut measured = Vec::new();
    let mut rng = SmallRng::seed_from_u64(6);
    for round in 0..s.rounds {
        // The call at h_blas[0] (1 BLAS thread) measures g and f too, the others only h.
        let mut calls: Vec<usize> = (0..s.h_blas.len()).collect();
        calls.shuffle(&mut rng);
        for i in calls {
            let blas = s.h_blas[i];
            progress.label(format!(
                "classic (Python): round {}, {blas} BLAS thread(s)",
                round + 1
            ));
            match call(python, &script, s, blas, round, i > 0, progress) {
                Ok((v, rows)) => {
                    versions = v;
                    measured.extend(rows);
                }
                Err(why) => return PythonClassic::Skipped { why },
            }
        }
    }
    PythonClassic::Ran {
        python: versions.0,
        numpy: versions.1,
        rows: from_rounds(&measured),
    }
}

/// One call of the script: one round at `blas` BLAS threads; the versions and its rows.
fn call(
    python: &str,
    script: &Path,
    s: &ClassicSettings,
    blas: usize,
    round: usize,
    only_h: bool,
    progress: &mut Progress,
) -> Result<((String, String), Vec<Measured>), String> {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--workers", &s.workers.to_string()])
        .args(["--elements", &s.elements.to_string()])
        .args(["--g-reps", &s.g_reps.to_string()])
        .args(["--f-reps", &s.f_reps.to_string()])
        .args(["--h-batch", &s.h_batch.to_string()])
        .args(["--h-size", &s.h_size.to_string()])
        .args(["--rounds", "1", "--first-round", &round.to_string()])
        .env("OPENBLAS_NUM_THREADS", blas.to_string())
        .env_remove("OMP_NUM_THREADS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if only_h {
        cmd.arg("--only-h");
    }
    let mut child = lifecycle::spawn(&mut cmd).map_err(|e| format!("cannot run {python}: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut versions = (String::new(), String::new());
    let mut rows = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let (Some(p), Some(n)) = (v["python"].as_str(), v["numpy"].as_str()) {
            versions = (p.to_owned(), n.to_owned());
            continue;
        }
        let r = parse_row(&v).ok_or_else(|| format!("unexpected line from classic.py: {line}"))?;
        progress.advance(r.seconds);
        rows.push(r);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("classic.py: {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let last = err.lines().last().unwrap_or("no message");
        return Err(format!("classic.py failed ({}): {last}", output.status));
    }
    Ok((versions, rows))
}

/// One line of the script's output: a row measured in one round, with a process row's costs
/// (the workers' start apart from the row's time).
fn parse_row(v: &serde_json::Value) -> Option<Measured> {
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
    let positive = |key: &str| v[key].as_f64().filter(|s| s.is_finite() && *s > 0.0);
    let at_least_0 = |key: &str| v[key].as_f64().filter(|s| s.is_finite() && *s >= 0.0);
    let sharing = if how == How::Processes {
        Some(ProcessRowCost {
            bytes: usize::try_from(v["bytes"].as_u64()?).ok()?,
            setup_s: at_least_0("setup_s")?,
            spawn_s: positive("start_s")?,
            compute_s: positive("compute_s")?,
            exit_s: at_least_0("exit_s")?,
        })
    } else {
        None
    };
    Some(Measured {
        workload,
        how,
        outer: usize::try_from(v["outer"].as_u64()?).ok()?,
        blas: usize::try_from(v["blas"].as_u64()?).ok()?.max(1),
        round: usize::try_from(v["round"].as_u64()?).ok()?,
        seconds: positive("seconds")?,
        sharing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_and_junk_is_refused() {
        let v = serde_json::json!({"workload": "f", "how": "threads", "outer": 2, "blas": 1,
                                   "round": 3, "seconds": 1.5});
        let r = parse_row(&v).unwrap();
        assert_eq!(
            (r.workload, r.how, r.outer, r.round, r.seconds),
            (Workload::F, How::Threads, 2, 3, 1.5)
        );
        assert_eq!(r.sharing, None);
        assert!(parse_row(&serde_json::json!({"workload": "x"})).is_none());
        let neg = serde_json::json!({"workload": "g", "how": "serial", "outer": 1, "blas": 1,
                                     "round": 0, "seconds": -1.0});
        assert!(parse_row(&neg).is_none());
        let no_round = serde_json::json!({"workload": "g", "how": "serial", "outer": 1,
                                          "blas": 1, "seconds": 1.0});
        assert!(parse_row(&no_round).is_none(), "every row names its round");
        // A process row carries the workers' start apart from its time.
        let p = serde_json::json!({"workload": "h", "how": "processes", "outer": 2, "blas": 2,
                                   "round": 0, "seconds": 0.55, "bytes": 4096, "setup_s": 0.01,
                                   "start_s": 0.4, "compute_s": 0.5, "exit_s": 0.05});
        let sh = parse_row(&p).unwrap().sharing.unwrap();
        assert_eq!((sh.spawn_s, sh.compute_s, sh.bytes), (0.4, 0.5, 4096));
        let mut no_start = p.clone();
        no_start.as_object_mut().unwrap().remove("start_s");
        assert!(parse_row(&no_start).is_none());
    }

    #[test]
    fn a_missing_interpreter_is_a_reason_not_a_failure() {
        let why = probe("/nonexistent/python3").unwrap_err();
        assert!(why.contains("not found"), "{why}");
    }
}
