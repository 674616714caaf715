//! Section 4, the grid under the OpenMP build of OpenBLAS: the report re-executes itself with
//! `LD_LIBRARY_PATH` pointing at the OpenMP `libopenblas.so.0` (Debian's `libopenblas0-openmp`),
//! the child checks that it really loaded an OpenMP build, runs the grid and sends it back as
//! JSON on stdout (with its progress). Without that library the report says how to get it.
//!
//! At the end: the section's Markdown ([`markdown`]); its grid's rows go into grid.csv.

use anyhow::Context as _;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use parlinalg::ThreadingLayer;
use serde::{Deserialize, Serialize};

use crate::report::cli::{GridSettings, DEBIAN_OPENMP_DIR};
use crate::report::grid::{self, GridSection};
use crate::report::progress::Progress;
use crate::report::self_command::{self_command, SelfRole};

/// What came of the OpenMP grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OpenMpOutcome {
    /// It ran under the library in `dir`.
    Ran {
        #[serde(serialize_with = "crate::report::cli::path_lossy")]
        dir: PathBuf,
        grid: Box<GridSection>,
    },
    /// The library is not there: how to get it.
    NotInstalled { how: String },
    /// It is there but the child failed.
    Failed { why: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct ChildSpec {
    grid: GridSettings,
    cores: usize,
}

/// Whether `dir` holds an OpenBLAS to switch to.
pub fn installed(dir: &Path) -> bool {
    dir.join("libopenblas.so.0").is_file()
}

/// Runs the grid in a child under the OpenMP OpenBLAS of `dir`.
pub fn run(dir: &Path, s: &GridSettings, cores: usize, progress: &mut Progress) -> OpenMpOutcome {
    if !installed(dir) {
        return OpenMpOutcome::NotInstalled {
            how: format!(
                "no libopenblas.so.0 in {}: on Debian or Ubuntu `apt-get install \
                 libopenblas0-openmp` puts the OpenMP build in {DEBIAN_OPENMP_DIR} (the \
                 pthreads build stays the default); elsewhere pass --openmp-dir DIR",
                dir.display()
            ),
        };
    }
    let spec = serde_json::to_string(&ChildSpec {
        grid: s.clone(),
        cores,
    })
    .expect("specs serialise");
    let path = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) if !old.is_empty() => {
            let mut p = dir.as_os_str().to_owned();
            p.push(":");
            p.push(old);
            p
        }
        _ => dir.as_os_str().to_owned(),
    };
    let mut cmd = self_command(SelfRole::GridChild, &spec);
    cmd.env("LD_LIBRARY_PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match crate::report::lifecycle::spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            return OpenMpOutcome::Failed {
                why: format!("cannot start the child: {e}"),
            }
        }
    };
    let stdout = child.stdout.take().expect("piped");
    let mut result = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(w) = line.strip_prefix("@@progress ") {
            progress.advance(w.trim().parse().unwrap_or(0.0));
        } else if let Some(l) = line.strip_prefix("@@label ") {
            progress.label(format!("OpenMP {l}"));
        } else if let Some(json) = line.strip_prefix("@@result ") {
            result = Some(serde_json::from_str::<GridSection>(json));
        }
    }
    let output = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return OpenMpOutcome::Failed { why: e.to_string() },
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    match result {
        Some(Ok(grid)) if output.status.success() => OpenMpOutcome::Ran {
            dir: dir.to_owned(),
            grid: Box::new(grid),
        },
        Some(Err(e)) => OpenMpOutcome::Failed {
            why: format!("unreadable result from the child: {e}"),
        },
        _ => OpenMpOutcome::Failed {
            why: format!(
                "the child ({}) said: {}",
                output.status,
                stderr
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("nothing")
            ),
        },
    }
}

/// The child's life: check the library, run the grid, print the result.
///
/// # Errors
/// The library is not an OpenMP build, or the grid failed.
pub fn child_main(spec_json: &str) -> anyhow::Result<()> {
    let spec: ChildSpec = serde_json::from_str(spec_json).context("bad grid-child spec")?;
    let lib = parlinalg::blas_library();
    if lib.threading != ThreadingLayer::OpenMp {
        anyhow::bail!(
            "the child loaded {} with {} threading, not the OpenMP build: LD_LIBRARY_PATH did \
             not take effect",
            lib.path
                .as_ref()
                .map_or("an unknown OpenBLAS".to_owned(), |p| p
                    .display()
                    .to_string()),
            lib.threading
        );
    }
    let mut progress = Progress::relay();
    let grid = grid::measure(&spec.grid, spec.cores, &mut progress)?;
    println!(
        "@@result {}",
        serde_json::to_string(&grid).expect("the grid serialises")
    );
    Ok(())
}

// ---- Markdown ----

/// The OpenMP section.
pub fn markdown(o: &OpenMpOutcome) -> String {
    match o {
        OpenMpOutcome::Ran { dir, grid } => {
            let mut md =
                grid::markdown(grid, "4. The grid again under the OpenMP build of OpenBLAS");
            let _ = writeln!(
                md,
                "The child ran with `LD_LIBRARY_PATH={}` and checked that OpenBLAS reports OpenMP \
                 threading. There a call's count is its caller's, but the threads' buffers are \
                 process-wide: parlinalg runs multithreaded calls one at a time (calls at \
                 different counts would corrupt each other) and single-threaded calls at once, \
                 so the cells with K > 1 and N > 1 queue as under the pthreads build.\n",
                dir.display()
            );
            md
        }
        OpenMpOutcome::NotInstalled { how } => {
            format!("## 4. The grid under the OpenMP build of OpenBLAS\n\nNot run: {how}.\n\n")
        }
        OpenMpOutcome::Failed { why } => {
            format!("## 4. The grid under the OpenMP build of OpenBLAS\n\nFailed: {why}.\n\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_how_to_get_it() {
        let s = GridSettings {
            sizes: vec![8],
            large: None,
            small_batch: None,
            max_threads: 2,
            sample_seconds: 0.001,
            size_seconds: 0.01,
            rounds: 3,
        };
        let out = run(
            Path::new("/nonexistent"),
            &s,
            2,
            &mut Progress::new(1.0, true),
        );
        match out {
            OpenMpOutcome::NotInstalled { how } => {
                assert!(how.contains("apt-get install libopenblas0-openmp"), "{how}")
            }
            other => panic!("{other:?}"),
        }
    }
}
