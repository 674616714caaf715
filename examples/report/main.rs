//! The demonstration: threads, processes or BLAS threads? Measured on this machine.
//!
//! ```text
//! cargo run --release --example report              # default workload, a few minutes on 2 cores
//! cargo run --release --example report -- --quick   # under a minute
//! cargo run --release --example report -- --help
//! ```
//!
//! Sections (each ends with one sentence computed from its numbers), after a header with the
//! kernel and the thread report:
//! 1. the classic table: serial vs C threads vs C processes for g (exp over an array), f (a
//!    scalar exp loop) and h (a batch of products, every BLAS-threads choice), numpy's version
//!    beside it, and what sharing memory with the processes cost;
//! - matmul throughput against numpy (A/B in the same run);
//! 2. the inner vs outer grid: every K outer × N BLAS pair, the best, the default policy, the
//!    worst oversubscribed pair;
//! 3. a small product's latency beside large ones, fixed BLAS threads vs `auto`;
//! 4. the grid under the OpenMP build of OpenBLAS when it is installed.
//!
//! Markdown on stdout; report.md, report.json, CSV files and PNG/SVG plots in `--out`.

mod canvas;
mod classic;
mod cli;
mod grid;
mod latency;
mod openmp;
mod output;
mod plots;
mod processes;
mod progress;
mod python;
mod stats;
mod versus;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

use cli::{Args, Section, Settings};
use output::{Header, ReportData};
use progress::Progress;

fn main() -> ExitCode {
    // parlinalg switched a generic fallback kernel before main (a benchmark on the wrong kernel
    // measures nothing about threading): the header says what happened.
    let selection = parlinalg::kernel::kernel_selection();
    let code = real_main(std::env::args_os().collect(), &selection.to_string());
    ExitCode::from(code)
}

/// Everything after the kernel check; returns the exit code (2 for a bad command line, from
/// clap, which also prints the message).
fn real_main(argv: Vec<std::ffi::OsString>, kernel: &str) -> u8 {
    let args = Args::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    let role = if let Some(spec) = &args.worker {
        Some(processes::worker_main(spec))
    } else {
        args.grid_child
            .as_ref()
            .map(|spec| openmp::child_main(spec))
    };
    if let Some(result) = role {
        return match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("report (child): {e}");
                1
            }
        };
    }
    let cores = parlinalg::threads::Cores::detect().count;
    let settings = Settings::resolve(&args, cores).unwrap_or_else(|e| e.exit());
    let command: Vec<String> = std::env::args().collect();
    match run(&settings, kernel, command, true) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("report: {e}");
            1
        }
    }
}

/// Runs every section the settings ask for, prints them as they finish (when `print`), and
/// writes the files.
///
/// # Errors
/// What stopped the run, as text.
pub fn run(
    settings: &Settings,
    kernel: &str,
    command: Vec<String>,
    print: bool,
) -> Result<ReportData, String> {
    std::fs::create_dir_all(&settings.out)
        .map_err(|e| format!("cannot create {}: {e}", settings.out.display()))?;
    let report = parlinalg::threads::report().map_err(|e| e.to_string())?;
    let header = Header {
        kernel: kernel.to_owned(),
        thread_report: report.to_string(),
        thread_report_json: serde_json::to_value(&report).map_err(|e| e.to_string())?,
        cores: settings.cores,
    };
    let openmp_there = openmp::installed(&settings.openmp_dir);
    let mut total = 0.0;
    if settings.runs(Section::Classic) {
        total += classic::estimate(&settings.classic);
        if settings.numpy {
            total += python::estimate(&settings.classic);
        }
    }
    if settings.runs(Section::Numpy) {
        total += versus::estimate(&settings.versus);
    }
    if settings.runs(Section::Grid) {
        total += grid::estimate(&settings.grid, settings.cores);
    }
    if settings.runs(Section::Latency) {
        total += latency::estimate(&settings.latency);
    }
    if settings.runs(Section::Openmp) && openmp_there {
        total += grid::estimate(&settings.grid, settings.cores);
    }
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
        seconds: 0.0,
    };
    if settings.runs(Section::Classic) {
        let rust = classic::measure(&settings.classic, &mut progress)?;
        let python = if settings.numpy {
            python::run(
                &settings.python,
                &settings.out,
                &settings.classic,
                &mut progress,
            )
        } else {
            python::PythonClassic::Skipped {
                why: "skipped (--no-numpy)".into(),
            }
        };
        let section = classic::ClassicSection {
            conclusion: classic::conclude(settings.classic.workers, &rust, &python),
            h_conclusion: classic::conclude_h(settings.classic.workers, &rust),
            sharing_conclusion: classic::conclude_sharing(&rust),
            settings: settings.classic.clone(),
            rust,
            python,
        };
        emit(&mut progress, output::classic_md(&section));
        data.classic = Some(section);
    }
    if settings.runs(Section::Numpy) {
        let python = settings.numpy.then_some(settings.python.as_str());
        let v = versus::measure(&settings.versus, python, &mut progress)?;
        emit(&mut progress, output::versus_md(&v));
        data.versus = Some(v);
    }
    if settings.runs(Section::Grid) {
        let g = grid::measure(&settings.grid, settings.cores, &mut progress)?;
        emit(
            &mut progress,
            output::grid_md(&g, "2. The inner vs outer grid: K outer × N BLAS threads"),
        );
        data.grid = Some(g);
    }
    if settings.runs(Section::Latency) {
        let l = latency::measure(&settings.latency, settings.cores, &mut progress)?;
        emit(&mut progress, output::latency_md(&l));
        data.latency = Some(l);
    }
    if settings.runs(Section::Openmp) {
        let o = openmp::run(
            &settings.openmp_dir,
            &settings.grid,
            settings.cores,
            &mut progress,
        );
        emit(&mut progress, output::openmp_md(&o));
        data.openmp = Some(o);
    }
    data.seconds = progress.elapsed();

    let mut files = output::write_files(&settings.out, &data)?;
    if let Some(g) = &data.grid {
        files.extend(plots::write(
            &settings.out,
            "grid_speedup",
            &plots::speedup(g, "Speedup against K·N threads (pthreads OpenBLAS)"),
        )?);
        files.extend(plots::write(
            &settings.out,
            "grid_heatmap",
            &plots::heatmap(g, "K outer × N BLAS threads"),
        )?);
    }
    if let Some(openmp::OpenMpOutcome::Ran { grid: g, .. }) = &data.openmp {
        files.extend(plots::write(
            &settings.out,
            "openmp_grid_speedup",
            &plots::speedup(g, "Speedup against K·N threads (OpenMP OpenBLAS)"),
        )?);
        files.extend(plots::write(
            &settings.out,
            "openmp_grid_heatmap",
            &plots::heatmap(g, "K outer × N BLAS threads (OpenMP OpenBLAS)"),
        )?);
    }
    if let Some(l) = &data.latency {
        files.extend(plots::write(&settings.out, "latency", &plots::latency(l))?);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment variable holding the command line (JSON) when a test runs `main_entry` as
    /// the report itself.
    const MAIN_ENV: &str = "PARLINALG_REPORT_MAIN_ARGS";

    /// Plays the report binary (a test harness is not one) when the spawning test asks.
    #[test]
    fn main_entry() {
        if let Ok(json) = std::env::var(MAIN_ENV) {
            let argv: Vec<String> = serde_json::from_str(&json).unwrap();
            let argv = argv.into_iter().map(Into::into).collect();
            std::process::exit(i32::from(real_main(argv, "kernel: test")));
        }
    }

    /// Runs the report's main in a child process with `args`: (exit code, stdout, stderr).
    fn report_process(args: &[&str]) -> (Option<i32>, String, String) {
        let argv: Vec<&str> = std::iter::once("report")
            .chain(args.iter().copied())
            .collect();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "tests::main_entry",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
                "-q",
            ])
            .env(MAIN_ENV, serde_json::to_string(&argv).unwrap())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn bad_flags_exit_2_with_a_clear_message() {
        for (args, says) in [
            (&["--frobnicate"][..], "unexpected argument '--frobnicate'"),
            (&["--sizes", "64,abc"], "invalid value 'abc' for '--sizes"),
            (&["--workers", "0"], "0 is not in 1..=64"),
            (&["--only", "grid", "--skip", "grid"], "no section to run"),
            (&["--cell-seconds", "-3"], "outside (0, 600] seconds"),
        ] {
            let (code, _, err) = report_process(args);
            assert_eq!(code, Some(2), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert!(
                err.contains("--help"),
                "{args:?} should point to --help: {err}"
            );
        }
        let (code, out, _) = report_process(&["--help"]);
        assert_eq!(code, Some(0));
        assert!(
            out.contains("--quick") && out.contains("--out <DIR>"),
            "{out}"
        );
    }

    /// A tiny run of every section, shared by the tests below (it takes a few seconds).
    fn tiny() -> &'static (Settings, ReportData) {
        static TINY: std::sync::OnceLock<(Settings, ReportData)> = std::sync::OnceLock::new();
        TINY.get_or_init(|| {
            let out =
                std::env::temp_dir().join(format!("parlinalg-report-test-{}", std::process::id()));
            let args = Args::try_parse_from([
                "report",
                "--quick",
                "--out",
                out.to_str().unwrap(),
                "--no-progress",
                "--workers",
                "2",
                "--elements",
                "20000",
                "--g-reps",
                "2",
                "--f-reps",
                "2",
                "--h-batch",
                "4",
                "--h-size",
                "32",
                "--sizes",
                "8,16",
                "--large",
                "48",
                "--max-threads",
                "4",
                "--cell-seconds",
                "0.002",
                "--rounds",
                "1",
                "--samples",
                "5",
                "--numpy-sizes",
                "16",
                "--threads",
                "1",
                "--no-numpy",
                "--openmp-dir",
                "/nonexistent",
            ])
            .unwrap();
            let mut settings = Settings::resolve(&args, 2).unwrap();
            settings.latency.small = 16;
            settings.latency.large = 64;
            settings.latency.max_seconds = 0.5;
            // numpy's section still runs, parlinalg's side only (--no-numpy drops it: bring it back).
            settings.sections.push(Section::Numpy);
            let data = run(&settings, "kernel: test", vec!["report".into()], false).unwrap();
            (settings, data)
        })
    }

    fn all_numbers(v: &serde_json::Value, path: &str, out: &mut Vec<(String, f64)>) {
        match v {
            serde_json::Value::Number(n) => out.push((path.to_owned(), n.as_f64().unwrap())),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    all_numbers(x, &format!("{path}[{i}]"), out);
                }
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    all_numbers(x, &format!("{path}.{k}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_table_is_present() {
        let (_, data) = tiny();
        let md = output::markdown(data);
        for heading in [
            "# parlinalg report",
            "## 1. The classic table",
            "### h with every BLAS-threads choice",
            "### What sharing memory with the processes cost",
            "## matmul throughput against numpy",
            "## 2. The inner vs outer grid",
            "## 3. Latency under a mixed load",
            "## 4. The grid under the OpenMP build of OpenBLAS",
            "apt-get install libopenblas0-openmp",
            "Python's version was not run",
        ] {
            assert!(md.contains(heading), "{heading:?} missing from\n{md}");
        }
        assert!(md.matches("\n|---").count() >= 9, "{md}");
        let out = &tiny().0.out;
        for f in [
            "report.md",
            "report.json",
            "classic.csv",
            "grid.csv",
            "latency.csv",
            "matmul_vs_numpy.csv",
            "grid_speedup.svg",
            "grid_speedup.png",
            "grid_heatmap.svg",
            "grid_heatmap.png",
            "latency.svg",
            "latency.png",
        ] {
            let p = out.join(f);
            assert!(
                p.metadata().map(|m| m.len() > 0).unwrap_or(false),
                "{} missing",
                p.display()
            );
        }
    }

    #[test]
    fn measured_numbers_are_finite_and_positive() {
        let (_, data) = tiny();
        let mut json = serde_json::to_value(data).unwrap();
        // The settings and the thread report hold counts and flags, not measurements.
        json.as_object_mut().unwrap().remove("settings");
        json.as_object_mut().unwrap().remove("header");
        let mut nums = Vec::new();
        all_numbers(&json, "", &mut nums);
        assert!(nums.len() > 100, "{} numbers", nums.len());
        for (path, v) in nums {
            assert!(v.is_finite(), "{path} = {v}");
            let may_be_zero = path.ends_with("exit_s") || path.ends_with("setup_s");
            assert!(v > 0.0 || (may_be_zero && v >= 0.0), "{path} = {v}");
        }
        let classic = data.classic.as_ref().unwrap();
        assert_eq!(classic.rust.len(), 6 + 3 * classic.settings.h_blas.len());
        let grid = data.grid.as_ref().unwrap();
        assert_eq!(grid.sizes.len(), 3);
        assert!(grid.sizes[2].single);
    }

    #[test]
    fn the_json_round_trips() {
        let (settings, data) = tiny();
        let text = std::fs::read_to_string(settings.out.join("report.json")).unwrap();
        let back: ReportData = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, data);
        let csv = std::fs::read_to_string(settings.out.join("grid.csv")).unwrap();
        let rows = csv.lines().count() - 1;
        let cells: usize = data
            .grid
            .as_ref()
            .unwrap()
            .sizes
            .iter()
            .map(|s| s.cells.len() + 1)
            .sum();
        assert_eq!(rows, cells);
    }

    #[test]
    fn the_conclusions_agree_with_the_numbers() {
        let (_, data) = tiny();
        let c = data.classic.as_ref().unwrap();
        assert_eq!(
            c.conclusion,
            classic::conclude(c.settings.workers, &c.rust, &c.python)
        );
        assert_eq!(
            c.h_conclusion,
            classic::conclude_h(c.settings.workers, &c.rust)
        );
        assert_eq!(c.sharing_conclusion, classic::conclude_sharing(&c.rust));
        let t = classic::find(&c.rust, workloads::Workload::G, classic::How::Threads, 1).unwrap();
        assert!(
            c.conclusion.contains(&format!("{:.2}×", t.speedup)),
            "{}",
            c.conclusion
        );

        let g = data.grid.as_ref().unwrap();
        assert_eq!(
            g.conclusion,
            grid::conclude(g.cores, &g.threading, &g.sizes)
        );
        for s in &g.sizes {
            let best = grid::best_of(&s.cells);
            assert_eq!(best, &s.best);
            assert!(s.cells.iter().all(|c| c.seconds >= best.seconds));
            let serial = s
                .cells
                .iter()
                .find(|c| (c.outer, c.blas) == (1, 1))
                .unwrap();
            for c in &s.cells {
                assert!((c.speedup - serial.seconds / c.seconds).abs() < 1e-9 * c.speedup);
            }
            assert!((s.policy.vs_best - s.policy.cell.seconds / best.seconds).abs() < 1e-12);
            assert!(
                g.conclusion
                    .contains(&format!("{}×{} for", best.outer, best.blas)),
                "{}",
                g.conclusion
            );
            if let Some((w, r)) = &s.worst_oversubscribed {
                assert!(w.threads() > g.cores);
                assert!(s
                    .cells
                    .iter()
                    .filter(|c| c.threads() > g.cores)
                    .all(|c| c.seconds <= w.seconds));
                assert!((r - w.seconds / best.seconds).abs() < 1e-12);
            }
        }
        let l = data.latency.as_ref().unwrap();
        assert_eq!(
            l.conclusion,
            latency::conclude(&l.settings, l.cores, &l.rows)
        );
        for r in &l.rows {
            assert!(r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms, "{r:?}");
        }
        let v = data.versus.as_ref().unwrap();
        assert_eq!(v.conclusion, versus::conclude(&v.rows, &v.numpy));
    }
}
