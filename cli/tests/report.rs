//! `parlinalg report` and `parlinalg info`, tested through the built binary: bad flags, a tiny
//! run of every section from a directory of its own (its files, its JSON read back into the
//! report's types, its conclusions recomputed from its numbers), and the info table and JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use parlinalg_cli::report::{
    classic, classic_rows, grid, latency, output, processes, stats, versus, workloads, ReportData,
};

mod common;

use common::{parlinalg_command, scratch, text};

fn parlinalg(args: &[&str], cwd: &Path) -> Output {
    parlinalg_command()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run the parlinalg binary")
}

#[test]
fn bad_flags_exit_2_with_a_clear_message() {
    let here = std::env::temp_dir();
    for (args, says) in [
        (
            &["report", "--frobnicate"][..],
            "unexpected argument '--frobnicate'",
        ),
        (
            &["report", "--sizes", "64,abc"],
            "invalid value 'abc' for '--sizes",
        ),
        (&["report", "--workers", "0"], "0 is not in 1..=64"),
        (
            &["report", "--only", "grid", "--skip", "grid"],
            "no section to run",
        ),
        (
            &["report", "--cell-seconds", "-3"],
            "outside (0, 600] seconds",
        ),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["info", "--yaml"], "unexpected argument '--yaml'"),
    ] {
        let out = parlinalg(args, &here);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains("--help"),
            "{args:?} should point to --help: {err}"
        );
    }
    let out = parlinalg(&["report", "--help"], &here);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("--quick") && help.contains("--out <DIR>"),
        "{help}"
    );
    // The whole description, every section named (clap shows only the first line with
    // `long_about = None`).
    assert!(
        help.contains("processes sharing the machine") && help.contains("MPI job"),
        "report --help describes every section: {help}"
    );
    assert!(
        !help.contains("--worker "),
        "the worker flag is hidden: {help}"
    );
    let out = parlinalg(&["--help"], &here);
    let help = text(&out.stdout);
    assert!(help.contains("info") && help.contains("report"), "{help}");
    let out = parlinalg(&["--version"], &here);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).starts_with("parlinalg "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn info_prints_the_table_and_the_json() {
    let dir = scratch("info");
    let out = parlinalg(&["info"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    for key in ["BLAS library", "kernel", "threading", "BLAS threads"] {
        assert!(table.contains(key), "{key} missing from\n{table}");
    }
    let out = parlinalg(&["info", "--json"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("info --json is JSON");
    assert!(json["blas"]["config"]
        .as_str()
        .unwrap()
        .contains("OpenBLAS"));
    assert!(json["kernel_selection"]["outcome"].is_string(), "{json}");
    // Junk in a thread variable is an error naming it, exit code 1.
    let out = Command::new(env!("CARGO_BIN_EXE_parlinalg"))
        .arg("info")
        .env("PARLINALG_BLAS_THREADS", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("PARLINALG_BLAS_THREADS") && err.contains("many"),
        "{err}"
    );
}

/// A tiny run of every section, from a scratch directory with the default output folder
/// (`report-out` there): (its directory, its stdout, the data read back from report.json).
fn tiny() -> &'static (PathBuf, String, ReportData) {
    static TINY: OnceLock<(PathBuf, String, ReportData)> = OnceLock::new();
    TINY.get_or_init(|| {
        let dir = scratch("tiny");
        #[rustfmt::skip]
        let args = [
            "report", "--quick", "--no-progress", "--workers", "2", "--elements", "20000",
            "--g-reps", "2", "--f-reps", "2", "--h-batch", "4", "--h-size", "32",
            "--sizes", "8,16", "--small-batch", "12", "--large", "48", "--max-threads", "4", "--sample-seconds", "0.002", "--size-seconds", "0.05",
            "--rounds", "3", "--samples", "5", "--latency-small", "16", "--latency-large", "64",
            "--latency-seconds", "0.5", "--numpy-sizes", "16", "--threads", "1",
            // Two MPI ranks: the default, one per core, would be 192 on a 192-core machine.
            "--processes", "1,2", "--process-products", "20", "--mpi-ranks", "2",
            // numpy's sections run parlinalg's side and say why numpy's was not run.
            "--python", "/nonexistent/python3", "--openmp-dir", "/nonexistent",
        ];
        let out = parlinalg(&args, &dir);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
        let json = std::fs::read_to_string(dir.join("report-out/report.json")).unwrap();
        let data: ReportData = serde_json::from_str(&json).expect("report.json reads back");
        (dir, stdout, data)
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
fn every_table_and_file_is_there() {
    let (dir, stdout, data) = tiny();
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
        "## 5. Processes sharing the machine",
        "apt-get install libopenblas0-openmp",
        "Python's version was not run",
    ] {
        assert!(md.contains(heading), "{heading:?} missing from\n{md}");
        assert!(stdout.contains(heading), "{heading:?} missing from stdout");
    }
    assert!(md.matches("\n|---").count() >= 9, "{md}");
    // The classic table, the grid, the latency and the processes each say what the machine did,
    // and, with two CPUs usable, how far apart two of them were.
    let machine_lines: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("Machine during this section"))
        .collect();
    assert!(machine_lines.len() >= 4, "{machine_lines:?}");
    if std::thread::available_parallelism().map_or(1, usize::from) >= 2 {
        assert!(
            machine_lines
                .iter()
                .all(|l| l.contains("a cache line from CPU")),
            "{machine_lines:?}"
        );
    }
    let out = dir.join("report-out");
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
        "classic.svg",
        "classic.png",
        "processes.csv",
    ] {
        let p = out.join(f);
        assert!(
            p.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{} missing",
            p.display()
        );
    }
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), md);
}

#[test]
fn measured_numbers_are_finite_and_positive() {
    let (_, _, data) = tiny();
    let mut json = serde_json::to_value(data).unwrap();
    // The settings and the thread report hold counts and flags, not measurements.
    json.as_object_mut().unwrap().remove("settings");
    json.as_object_mut().unwrap().remove("header");
    let mut nums = Vec::new();
    all_numbers(&json, "", &mut nums);
    assert!(nums.len() > 100, "{} numbers", nums.len());
    for (path, v) in nums {
        assert!(v.is_finite(), "{path} = {v}");
        // Round numbers and MPI rank numbers start at 0; the machine's steal and others' CPU
        // may be 0.
        if path.ends_with("][0]") && path.contains("samples")
            || path.contains(".machine.")
            || path.contains(".mpi.reported[")
        {
            assert!(v >= 0.0, "{path} = {v}");
            continue;
        }
        let may_be_zero = path.ends_with("exit_s") || path.ends_with("setup_s");
        assert!(v > 0.0 || (may_be_zero && v >= 0.0), "{path} = {v}");
    }
    let classic = data.classic.as_ref().unwrap();
    assert_eq!(classic.rust.len(), 6 + 3 * classic.settings.h_blas.len());
    // Every worker has whole shares: h has at least a product per worker.
    let c = &classic.settings;
    for work in [c.h_batch, c.g_reps, c.f_reps] {
        assert!(work >= c.workers && work % c.workers == 0, "{c:?}");
    }
    let grid = data.grid.as_ref().unwrap();
    assert_eq!(grid.sizes.len(), 4);
    assert!(grid.sizes[2].small_batch && !grid.sizes[2].single);
    assert_eq!(grid.sizes[2].batch, grid::few_products(grid.cores));
    assert!(grid.sizes[3].single);
}

#[test]
fn the_json_and_csv_agree_with_each_other() {
    let (dir, _, data) = tiny();
    let text = std::fs::read_to_string(dir.join("report-out/report.json")).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(data).unwrap(),
        raw,
        "report.json round-trips"
    );
    let csv = std::fs::read_to_string(dir.join("report-out/grid.csv")).unwrap();
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
    let (_, _, data) = tiny();
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
    let t = classic_rows::find(
        &c.rust,
        workloads::Workload::G,
        classic_rows::How::Threads,
        1,
    )
    .unwrap();
    assert!(
        c.conclusion.contains(&format!("{:.2}×", t.speedup)),
        "{}",
        c.conclusion
    );
    // Processes ran for real (spawned `parlinalg report --worker`) and shared their inputs.
    let processes = classic_rows::find(
        &c.rust,
        workloads::Workload::G,
        classic_rows::How::Processes,
        1,
    );
    assert!(processes.is_some_and(|p| p.seconds > 0.0), "{:?}", c.rust);

    let g = data.grid.as_ref().unwrap();
    assert_eq!(
        g.conclusion,
        grid::conclude(g.cores, &g.threading, &g.sizes)
    );
    for s in &g.sizes {
        let serial = s
            .cells
            .iter()
            .find(|c| (c.outer, c.blas) == (1, 1))
            .unwrap();
        for c in s.cells.iter().chain([&s.policy.cell]) {
            // Every figure is recomputed from the samples it was computed from.
            assert!(c.samples.len() >= g.settings.rounds, "{c:?}");
            assert_eq!(c.seconds, c.samples.estimate());
            let (speedup, _) = stats::ratio(&serial.samples, &c.samples, 0);
            assert!((c.speedup - speedup).abs() <= 1e-12 * speedup, "{c:?}");
            let iv = c.speedup_interval.expect("3 rounds give an interval");
            assert!(iv.lo <= c.speedup && c.speedup <= iv.hi, "{c:?}");
            let impossible = c.speedup > g.cores as f64 * grid::IMPOSSIBLE;
            assert_eq!(c.flag.is_some(), impossible, "{c:?}");
        }
        // The best is the highest printed speedup among the pairs and the policy's pick: no
        // printed figure beats it, and the cells tied with it are marked.
        assert!(
            s.cells
                .iter()
                .chain([&s.policy.cell])
                .all(|c| c.speedup <= s.best.speedup),
            "{s:?}"
        );
        let candidates = s.cells.iter().chain([&s.policy.cell]).map(|c| &c.samples);
        let pick = stats::best_by_speedup(&serial.samples, candidates).unwrap();
        assert_eq!(s.best_is_policy, pick == s.cells.len());
        let best = s.cells.get(pick).unwrap_or(&s.policy.cell);
        assert_eq!(&s.best, best);
        assert!(s.best.within_noise_of_best);
        for (i, c) in s.cells.iter().enumerate() {
            let tied = i == pick || stats::tied(&c.samples, &s.best.samples, i as u64);
            assert_eq!(c.within_noise_of_best, tied, "{c:?}");
        }
        let (vs_best, _) = stats::ratio(&s.policy.cell.samples, &s.best.samples, 0);
        assert!((s.policy.vs_best - vs_best).abs() <= 1e-12 * vs_best);
        // The held-out check: the pick of the odd rounds, scored on the even ones.
        let pairs: Vec<(usize, usize)> = s.cells.iter().map(|c| (c.outer, c.blas)).collect();
        let samples: Vec<stats::Samples> = s.cells.iter().map(|c| c.samples.clone()).collect();
        assert_eq!(
            s.held_out,
            grid::held_out_check(&pairs, &serial.samples, &samples)
        );
        let (control, _) = stats::ratio(&s.control.samples, &serial.samples, 0);
        assert!((s.control.ratio - control).abs() <= 1e-12 * control);
        assert!(
            g.conclusion
                .contains(&format!("{}×{} for", s.best.outer, s.best.blas)),
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
            assert!((r - w.seconds / s.best.seconds).abs() < 1e-12);
        }
    }
    assert!(g.conclusion.contains("the control"), "{}", g.conclusion);
    let l = data.latency.as_ref().unwrap();
    assert_eq!(
        l.conclusion,
        latency::conclude(&l.settings, l.cores, &l.rows)
    );
    for r in &l.rows {
        assert!(r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms, "{r:?}");
        // 5 samples: nothing bounds the p99 from above, and the table says the sample is too
        // small.
        assert_eq!(r.p99_hi_ms, None, "{r:?}");
    }
    assert!(latency::markdown(l).contains("too few samples"));
    let v = data.versus.as_ref().unwrap();
    assert_eq!(v.conclusion, versus::conclude(&v.rows, &v.numpy));
    let x = data.sharing.as_ref().unwrap();
    assert_eq!(x.conclusion, processes::conclude(x.cores, &x.rows));
    assert_eq!(x.rows.len(), 2 * 4, "P = 1, 2 under four modes");
    for r in &x.rows {
        let fixed1 = x
            .rows
            .iter()
            .find(|f| f.processes == r.processes && f.mode == processes::BlasMode::Fixed1)
            .unwrap();
        let (ratio, _) = stats::ratio(&r.samples, &fixed1.samples, 0);
        assert!((r.vs_fixed1 - ratio).abs() <= 1e-12 * ratio, "{r:?}");
        assert_eq!(r.samples.len(), x.settings.rounds);
        assert!(r.p50_ms <= r.p99_ms);
    }
    match &x.mpi {
        // Each rank says how many BLAS threads it runs and where the count came from.
        processes::MpiOutcome::Ran { ranks, threads, .. } => {
            assert_eq!((*ranks, x.settings.mpi_ranks), (2, 2));
            assert!(threads
                .iter()
                .all(|t| t.iter().any(|l| l.starts_with("BLAS threads"))));
        }
        processes::MpiOutcome::NotRun { why } => assert!(
            why.contains("openmpi-bin") || why.contains("failed"),
            "{why}"
        ),
    }
}

/// With python3 and numpy installed, numpy's rows of the classic table get rounds and intervals
/// like Rust's, and a process row's workers start before its clock does.
#[test]
fn python_rows_have_rounds_and_intervals_when_numpy_is_there() {
    let has_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_numpy {
        eprintln!("skipped, not passed: no python3 with numpy");
        return;
    }
    let dir = scratch("python-rounds");
    #[rustfmt::skip]
    let out = parlinalg(&[
        "report", "--only", "classic", "--no-progress", "--workers", "2", "--elements", "20000",
        "--g-reps", "2", "--f-reps", "2", "--h-batch", "4", "--h-size", "32",
        "--classic-rounds", "3",
    ], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(dir.join("report-out/report.json")).unwrap();
    let data: ReportData = serde_json::from_str(&json).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&json).unwrap();
    let python = &raw["classic"]["python"];
    assert_eq!(
        python["outcome"], "ran",
        "numpy's table did not run: {python}"
    );
    let rows: Vec<classic_rows::ClassicRow> =
        serde_json::from_value(python["rows"].clone()).unwrap();
    let c = data.classic.unwrap();
    assert_eq!(rows.len(), 6 + 3 * c.settings.h_blas.len(), "{rows:?}");
    for r in &rows {
        assert_eq!(r.samples.len(), 3, "one sample per round: {r:?}");
        let rounds: Vec<usize> = r.samples.0.iter().map(|s| s.0).collect();
        assert_eq!(rounds, [0, 1, 2], "{r:?}");
        assert_eq!(r.seconds, r.samples.estimate());
        let iv = r.speedup_interval.expect("3 rounds give an interval");
        assert!(iv.lo <= r.speedup && r.speedup <= iv.hi, "{r:?}");
        if r.how == classic_rows::How::Processes {
            let sh = r.sharing.expect("a process row's costs");
            assert!(sh.spawn_s > 0.0, "the workers' start is measured: {sh:?}");
        }
    }
    // The table prints numpy's intervals: every cell of the serial row reads `(1.00×, a–b)`.
    let md = classic::markdown(&c);
    let serial = md.lines().find(|l| l.starts_with("| serial |")).unwrap();
    assert_eq!(serial.matches("(1.00×, ").count(), 6, "{serial}");
    assert!(md.contains("Python h × 1 BLAS"), "{md}");
}

/// With the OpenMP build present (Debian's path or PARLINALG_TEST_OPENMP_DIR), a tiny grid runs
/// under it in a child process.
#[test]
fn the_grid_runs_under_openmp_when_installed() {
    let openmp = std::env::var_os("PARLINALG_TEST_OPENMP_DIR").map_or_else(
        || PathBuf::from("/usr/lib/x86_64-linux-gnu/openblas-openmp"),
        PathBuf::from,
    );
    if !openmp.join("libopenblas.so.0").exists() {
        eprintln!(
            "skipped, not passed: no OpenMP OpenBLAS in {}",
            openmp.display()
        );
        return;
    }
    let dir = scratch("openmp");
    #[rustfmt::skip]
    let out = parlinalg(&[
        "report", "--only", "openmp", "--no-progress", "--sizes", "16", "--large", "0",
        "--max-threads", "4", "--sample-seconds", "0.001", "--size-seconds", "0.02", "--rounds", "3",
        "--openmp-dir", openmp.to_str().unwrap(),
    ], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report-out/report.json")).unwrap())
            .unwrap();
    assert_eq!(json["openmp"]["outcome"], "ran", "{}", json["openmp"]);
    assert_eq!(json["openmp"]["grid"]["threading"], "openmp");
}

/// An MPI job of more ranks than cores (`--oversubscribe`), each result over 1 KiB: every
/// rank reports (through its own file; its stdout would arrive cut and interleaved).
#[test]
fn an_mpi_job_of_16_ranks_reports_every_rank() {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("mpirun").is_file()));
    if !found {
        eprintln!("skipped, not passed: no mpirun on PATH (apt-get install openmpi-bin)");
        return;
    }
    let dir = scratch("mpi16");
    #[rustfmt::skip]
    let out = parlinalg(&[
        "report", "--quick", "--no-progress", "--only", "processes", "--processes", "1",
        "--process-products", "200", "--mpi-ranks", "16",
    ], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(dir.join("report-out/report.json")).unwrap();
    let data: ReportData = serde_json::from_str(&json).unwrap();
    match data.sharing.unwrap().mpi {
        processes::MpiOutcome::Ran {
            ranks,
            threads,
            reported,
            missing,
            ..
        } => {
            assert_eq!(ranks, 16);
            assert!(missing.is_empty(), "{missing:?}");
            assert_eq!(reported, (0..16).collect::<Vec<_>>());
            assert_eq!(threads.len(), 16);
        }
        processes::MpiOutcome::NotRun { why } => panic!("the MPI job was not run: {why}"),
    }
}
