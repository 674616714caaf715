//! Section 5, processes sharing the machine: P copies of a small program (many f64 products of
//! 256×256, as a process pool, a test runner or several service replicas would run them) at
//! once, with BLAS threads fixed at 1, fixed at the cores, under each process's own `auto`
//! with the machine-wide budget off, and under the budget (the default). Throughput, and the
//! latency of each product beside the others; then the same program as a real MPI job when
//! Open MPI's `mpirun` is installed.
//!
//! A local child prints its result on its own stdout pipe. An MPI rank cannot: `mpirun`
//! forwards every rank's output in pieces of at most 4 KiB that interleave between ranks, so a
//! result line over 1 KiB (stdout's line buffer) arrives cut and mixed with others. Each rank
//! writes its result instead into its own file, `rank-<r>.json` in a directory made for the
//! run (written under a temporary name, then renamed, so a file is whole or absent), and the
//! report reads every rank's file: a rank that wrote none, or a bad one, is named by its
//! number while the others are still shown.
//!
//! At the end: the section's Markdown ([`markdown`]) and processes.csv ([`csv()`](fn@csv)).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::report::lifecycle::{self, Scratch};
use crate::report::machine::{all_cores_blas, MachineState, Snapshot};
use crate::report::progress::Progress;
use crate::report::stats::{self, percentile, Interval, Samples, STATISTIC};
use crate::report::table::{csv_text, fmt_s, strings, table, with_interval};

/// The marker before a child's JSON line on its stdout.
const RESULT: &str = "@@sharing ";

/// What the section runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessesSettings {
    /// Products per process.
    pub products: usize,
    /// Their size n.
    pub n: usize,
    /// Process counts tried.
    pub processes: Vec<usize>,
    /// Rounds (every configuration once per round, in random order).
    pub rounds: usize,
    /// Ranks of the MPI job (the cores unless `--mpi-ranks` says otherwise).
    #[serde(default)]
    pub mpi_ranks: usize,
}

/// How the children choose their BLAS threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlasMode {
    /// `PARLINALG_BLAS_THREADS=1`.
    Fixed1,
    /// `PARLINALG_BLAS_THREADS=<cores>`.
    FixedCores,
    /// `auto`, each process alone in its view (`PARLINALG_BUDGET=off`).
    AutoAlone,
    /// `auto` with the machine-wide budget (the default).
    Budget,
}

impl BlasMode {
    const ALL: [BlasMode; 4] = [
        BlasMode::Fixed1,
        BlasMode::FixedCores,
        BlasMode::AutoAlone,
        BlasMode::Budget,
    ];

    /// The environment the children get.
    fn env(self, cores: usize) -> Vec<(&'static str, String)> {
        match self {
            BlasMode::Fixed1 => vec![(parlinalg::threads::BLAS_THREADS_VAR, "1".into())],
            BlasMode::FixedCores => vec![(
                parlinalg::threads::BLAS_THREADS_VAR,
                all_cores_blas(cores).to_string(),
            )],
            BlasMode::AutoAlone => vec![(parlinalg::threads::BUDGET_VAR, "off".into())],
            BlasMode::Budget => vec![],
        }
    }

    /// The row's label.
    pub fn label(self, cores: usize) -> String {
        match self {
            BlasMode::Fixed1 => "fixed 1".into(),
            BlasMode::FixedCores => format!("fixed {}", all_cores_blas(cores)),
            BlasMode::AutoAlone => "auto, budget off".into(),
            BlasMode::Budget => "auto + machine budget (default)".into(),
        }
    }
}

/// One child's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildResult {
    /// Milliseconds of each product.
    pub product_ms: Vec<f64>,
    /// The thread report's lines on BLAS threads, cores and the budget.
    pub threads: Vec<String>,
}

/// One configuration: P processes under one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessesRow {
    pub processes: usize,
    pub mode: BlasMode,
    /// Wall seconds from the first spawn to the last exit: the statistic of the rounds.
    pub seconds: f64,
    /// Products per second, all processes together.
    pub throughput: f64,
    /// This row's time / the fixed-1 row's time with as many processes, and its interval.
    pub vs_fixed1: f64,
    pub vs_fixed1_interval: Option<Interval>,
    /// Per-product latency over every product of every process (last round).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub samples: Samples,
}

/// The MPI job, or why it did not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MpiOutcome {
    Ran {
        command: String,
        /// Ranks started.
        ranks: usize,
        seconds: f64,
        /// The thread lines of each rank that reported, in rank order (`reported` says which).
        threads: Vec<Vec<String>>,
        /// The ranks whose results are in `threads`.
        #[serde(default)]
        reported: Vec<usize>,
        /// Each rank that gave no usable result, and why.
        #[serde(default)]
        missing: Vec<MissingRank>,
    },
    NotRun {
        why: String,
    },
}

/// A rank of the MPI job that gave no usable result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingRank {
    pub rank: usize,
    pub why: String,
}

/// The section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessesSection {
    pub settings: ProcessesSettings,
    pub cores: usize,
    pub statistic: String,
    pub rows: Vec<ProcessesRow>,
    pub mpi: MpiOutcome,
    pub machine: MachineState,
    pub conclusion: String,
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &ProcessesSettings, cores: usize) -> f64 {
    let product = 2.0 * (s.n as f64).powi(3) / 40e9;
    let work: f64 = s
        .processes
        .iter()
        .map(|&p| p as f64 * s.products as f64 * product / cores as f64)
        .sum();
    (work + 0.05 * s.processes.len() as f64) * (BlasMode::ALL.len() * s.rounds) as f64 + work
}

/// Runs the section: every (P, mode) once per round in random order, then the MPI job.
///
/// # Errors
/// A child that failed or printed no result.
pub fn measure(
    s: &ProcessesSettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<ProcessesSection> {
    let machine = Snapshot::take();
    let group = format!("report-{}", std::process::id());
    let _group_dirs = budget_group_dirs(&group);
    let configs: Vec<(usize, BlasMode)> = s
        .processes
        .iter()
        .flat_map(|&p| BlasMode::ALL.map(|m| (p, m)))
        .collect();
    let mut last: Vec<Vec<ChildResult>> = vec![Vec::new(); configs.len()];
    let mut race =
        crate::report::race::Race::new(configs.len(), &(0..configs.len()).collect::<Vec<_>>(), 11);
    let limits = crate::report::race::RaceLimits {
        min_rounds: s.rounds,
        max_rounds: s.rounds,
        seconds: 0.0,
    };
    race.run(limits, |i| -> anyhow::Result<crate::report::race::Sample> {
        let (p, mode) = configs[i];
        progress.label(format!("processes: {p} × {}", mode.label(cores)));
        let t = Instant::now();
        let mut env = mode.env(cores);
        env.push((parlinalg::threads::BUDGET_GROUP_VAR, group.clone()));
        last[i] = run_children(s, p, &env)?;
        let wall = t.elapsed().as_secs_f64();
        progress.advance(wall);
        Ok(crate::report::race::Sample {
            per_call: wall,
            wall,
        })
    })?;
    let fixed1 = |p: usize| {
        configs
            .iter()
            .position(|&c| c == (p, BlasMode::Fixed1))
            .expect("every P has a fixed-1 row")
    };
    let rows: Vec<ProcessesRow> = configs
        .iter()
        .enumerate()
        .map(|(i, &(p, mode))| {
            let samples = &race.samples[i];
            let (vs_fixed1, vs_fixed1_interval) =
                stats::ratio(samples, &race.samples[fixed1(p)], i as u64);
            let mut ms: Vec<f64> = last[i]
                .iter()
                .flat_map(|c| c.product_ms.iter().copied())
                .collect();
            let seconds = samples.estimate();
            ProcessesRow {
                processes: p,
                mode,
                seconds,
                throughput: (p * s.products) as f64 / seconds,
                vs_fixed1,
                vs_fixed1_interval,
                p50_ms: percentile(&mut ms, 0.5),
                p99_ms: percentile(&mut ms, 0.99),
                samples: samples.clone(),
            }
        })
        .collect();
    progress.label("processes: an MPI job");
    let mpi = run_mpi(s, &group);
    Ok(ProcessesSection {
        settings: s.clone(),
        cores,
        statistic: STATISTIC.to_owned(),
        conclusion: conclude(cores, &rows),
        rows,
        mpi,
        machine: machine.until_now(),
    })
}

/// What a child runs, and where its result goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildSpec {
    /// Products to make.
    pub products: usize,
    /// Their size n.
    pub n: usize,
    /// An MPI rank's directory: the result goes to `rank-<r>.json` there (see [`rank_file`]);
    /// `None`: a result line on stdout.
    pub results: Option<PathBuf>,
}

/// The child's command line: this program's `report --sharing-child SPEC`.
fn child_command(
    s: &ProcessesSettings,
    results: Option<&Path>,
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let exe = std::env::current_exe()?;
    let spec = serde_json::to_string(&ChildSpec {
        products: s.products,
        n: s.n,
        results: results.map(Path::to_path_buf),
    })?;
    Ok((exe, vec!["report".into(), "--sharing-child".into(), spec]))
}

/// Where rank `rank` puts its result in `dir`.
pub fn rank_file(dir: &Path, rank: usize) -> PathBuf {
    dir.join(format!("rank-{rank}.json"))
}

/// The variables MPI launchers set to a process's rank: Open MPI, MPICH and Intel MPI (PMI),
/// PMIx, Slurm's `srun`.
const RANK_VARS: [&str; 4] = [
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
    "SLURM_PROCID",
];

/// This process's MPI rank, from the first of [`RANK_VARS`] that is set.
///
/// # Errors
/// None of them is set, or the first one set is not a number.
fn mpi_rank() -> anyhow::Result<usize> {
    let (name, raw) = RANK_VARS
        .iter()
        .find_map(|v| std::env::var_os(v).map(|raw| (*v, raw)))
        .ok_or_else(|| anyhow::anyhow!("no MPI rank: none of {RANK_VARS:?} is set"))?;
    parse_rank(name, &raw.to_string_lossy())
}

fn parse_rank(name: &str, raw: &str) -> anyhow::Result<usize> {
    raw.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{name}={raw:?} is not a rank"))
}

/// Writes `result` as rank `rank`'s file in `dir`: under a temporary name, then renamed, so
/// the report finds a whole file or none.
///
/// # Errors
/// The file could not be written or renamed.
pub fn write_rank_file(dir: &Path, rank: usize, result: &ChildResult) -> anyhow::Result<()> {
    let path = rank_file(dir, rank);
    let tmp = dir.join(format!(".rank-{rank}.json.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(result)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Reads every rank's file in `dir`: the results of the ranks that wrote a good one (in rank
/// order), and each other rank with why.
pub fn read_rank_files(dir: &Path, ranks: usize) -> (Vec<(usize, ChildResult)>, Vec<MissingRank>) {
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for rank in 0..ranks {
        let path = rank_file(dir, rank);
        let read = std::fs::read(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "wrote no result".to_owned(),
                _ => format!("its result cannot be read: {e}"),
            })
            .and_then(|bytes| {
                serde_json::from_slice::<ChildResult>(&bytes)
                    .map_err(|e| format!("its result is not valid: {e}"))
            });
        match read {
            Ok(r) => results.push((rank, r)),
            Err(why) => missing.push(MissingRank { rank, why }),
        }
    }
    (results, missing)
}

/// A directory of the report's own for one MPI job's rank files, removed when dropped (or
/// on a signal).
fn rank_dir() -> anyhow::Result<Scratch> {
    use std::os::unix::fs::DirBuilderExt as _;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("parlinalg-mpi-{}-{k}", std::process::id()));
    let scratch = Scratch::register(dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(scratch.path())
        .with_context(|| format!("cannot create {}", scratch.path().display()))?;
    Ok(scratch)
}

/// The budget directory the children of group `group` make (`threads::budget_dir`): the group
/// is the report's alone, so the report removes it when the section ends.
fn budget_group_dirs(group: &str) -> Vec<Scratch> {
    vec![Scratch::register(parlinalg::threads::budget_dir(group))]
}

/// Starts `p` children at once with `env`, waits for all, and reads their results.
fn run_children(
    s: &ProcessesSettings,
    p: usize,
    env: &[(&str, String)],
) -> anyhow::Result<Vec<ChildResult>> {
    let (exe, args) = child_command(s, None)?;
    let children: Vec<lifecycle::Tracked> = (0..p)
        .map(|_| {
            let mut cmd = Command::new(&exe);
            cmd.args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // The report's own thread variables must not reach the children.
            let ours = [
                parlinalg::threads::BLAS_THREADS_VAR,
                parlinalg::threads::BUDGET_VAR,
            ];
            for v in parlinalg::threads::STANDARD_BLAS_VARS.iter().chain(&ours) {
                cmd.env_remove(v);
            }
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
            lifecycle::spawn(&mut cmd)
        })
        .collect::<Result<_, _>>()?;
    children
        .into_iter()
        .map(|c| parse_child(c.wait_with_output()?))
        .collect()
}

fn parse_child(out: std::process::Output) -> anyhow::Result<ChildResult> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "a child failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .ok_or_else(|| anyhow::anyhow!("a child printed no result: {stdout}"))?;
    Ok(serde_json::from_str(line)?)
}

/// The same program as an MPI job of `s.mpi_ranks` ranks (budget on), when `mpirun` is
/// there. Each rank writes its result into its own file (see the module's docs).
fn run_mpi(s: &ProcessesSettings, group: &str) -> MpiOutcome {
    let Ok(mpirun) = which("mpirun") else {
        return MpiOutcome::NotRun {
            why: "Open MPI's mpirun is not installed: on Debian or Ubuntu `apt-get install openmpi-bin`".into(),
        };
    };
    let ranks = s.mpi_ranks.max(1);
    let result = (|| -> anyhow::Result<MpiOutcome> {
        let dir = rank_dir()?;
        let (exe, args) = child_command(s, Some(dir.path()))?;
        let mut cmd = Command::new(&mpirun);
        // SAFETY: geteuid only reads the process's user id.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-run-as-root");
        }
        cmd.args(["-np", &ranks.to_string(), "--oversubscribe"])
            .arg(&exe)
            .args(&args);
        cmd.env(parlinalg::threads::BUDGET_GROUP_VAR, group);
        let command = format!("mpirun -np {ranks} parlinalg report --sharing-child …");
        let t = Instant::now();
        let out = lifecycle::output(&mut cmd)?;
        let seconds = t.elapsed().as_secs_f64();
        let (results, mut missing) = read_rank_files(dir.path(), ranks);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty());
            let why = format!(
                "{command} exited with {}: {}",
                out.status,
                last.unwrap_or("no message")
            );
            if results.is_empty() {
                anyhow::bail!(why);
            }
            for m in &mut missing {
                m.why = format!("{} ({why})", m.why);
            }
        }
        Ok(MpiOutcome::Ran {
            command,
            ranks,
            seconds,
            reported: results.iter().map(|(r, _)| *r).collect(),
            threads: results.into_iter().map(|(_, c)| c.threads).collect(),
            missing,
        })
    })();
    result.unwrap_or_else(|e| MpiOutcome::NotRun {
        why: format!("the MPI job failed: {e:#}"),
    })
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// `parlinalg report --sharing-child SPEC`: the program each process runs. Prints one result
/// line, or, as an MPI rank, writes its rank's file.
///
/// # Errors
/// A bad spec, no rank under MPI, parlinalg's errors, or the result could not be written.
pub fn child_main(spec: &str) -> anyhow::Result<()> {
    let ChildSpec {
        products,
        n,
        results,
    } = serde_json::from_str(spec).context("bad --sharing-child spec")?;
    // Known before the work, so that a rank without one fails at once.
    let rank = results.as_ref().map(|_| mpi_rank()).transpose()?;
    let a = stats::matrix(n, 1);
    let b = stats::matrix(n, 2);
    let mut product_ms = Vec::with_capacity(products);
    for _ in 0..products {
        let t = Instant::now();
        std::hint::black_box(parlinalg::matmul(&a, &b)?);
        product_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let report = parlinalg::threads::report()?.to_string();
    let threads = report
        .lines()
        .filter(|l| {
            ["cores usable", "BLAS threads", "budget"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let result = ChildResult {
        product_ms,
        threads,
    };
    match (results, rank) {
        (Some(dir), Some(rank)) => write_rank_file(&dir, rank, &result)?,
        _ => println!("{RESULT}{}", serde_json::to_string(&result)?),
    }
    Ok(())
}

/// The section's sentence.
pub fn conclude(cores: usize, rows: &[ProcessesRow]) -> String {
    let get = |p: usize, m: BlasMode| rows.iter().find(|r| r.processes == p && r.mode == m);
    let Some(most) = rows.iter().map(|r| r.processes).max() else {
        return "Nothing was measured.".into();
    };
    let cmp = |r: &ProcessesRow| {
        let noise = r.vs_fixed1_interval.is_some_and(|iv| iv.contains(1.0));
        format!(
            "{:.2}×{}",
            r.vs_fixed1,
            if noise { " (within noise)" } else { "" }
        )
    };
    let mut parts = Vec::new();
    if let (Some(alone), Some(budget)) =
        (get(most, BlasMode::AutoAlone), get(most, BlasMode::Budget))
    {
        parts.push(format!(
            "with {most} processes on {cores} cores, each process's own auto took {} the time of 1 BLAS thread each and the machine budget {}",
            cmp(alone),
            cmp(budget)
        ));
    }
    if let Some(one) = get(1, BlasMode::Budget) {
        parts.push(format!(
            "one process alone under the budget took {} its 1-thread time",
            cmp(one)
        ));
    }
    if parts.is_empty() {
        return "Not every configuration was measured.".into();
    }
    let mut s = parts.join("; ");
    s[..1].make_ascii_uppercase();
    format!("{s}.")
}

// ---- Markdown and CSV ----

/// The processes section.
pub fn markdown(x: &ProcessesSection) -> String {
    let st = &x.settings;
    let mut md = format!(
        "## 5. Processes sharing the machine\n\nP copies of one program, each making {} \
         products of {n}×{n} f64 through `parlinalg::matmul`, started at once, with BLAS threads \
         fixed at 1, fixed at {} (the cores, up to the most OpenBLAS runs), under each process's own `auto` with the \
         machine-wide budget off (`PARLINALG_BUDGET=off`: every process believes it is alone), \
         and under the budget (the default: the processes share one slot per core). Wall time \
         from the first spawn to the last exit, the **{}** of {} rounds in random order; the \
         ratio to the fixed-1 row with as many processes has its 95% interval; latency is each \
         product's time, over every process (last round).\n\n",
        st.products,
        all_cores_blas(x.cores),
        x.statistic,
        st.rounds,
        n = st.n
    );
    let header = strings([
        "processes",
        "BLAS threads",
        "wall",
        "products/s",
        "time / fixed 1",
        "p50 ms",
        "p99 ms",
    ]);
    let rows: Vec<Vec<String>> = x
        .rows
        .iter()
        .map(|r| {
            vec![
                r.processes.to_string(),
                r.mode.label(x.cores),
                fmt_s(r.seconds),
                format!("{:.0}", r.throughput),
                with_interval(r.vs_fixed1, r.vs_fixed1_interval, "×"),
                format!("{:.3}", r.p50_ms),
                format!("{:.3}", r.p99_ms),
            ]
        })
        .collect();
    md.push_str(&table(&header, &rows));
    match &x.mpi {
        MpiOutcome::Ran {
            command,
            ranks,
            seconds,
            threads,
            reported,
            missing,
        } => {
            let _ = writeln!(
                md,
                "\nAs an MPI job, `{command}`: {ranks} ranks in {}, {} reported; what each rank ran:\n",
                fmt_s(*seconds),
                threads.len()
            );
            for (i, lines) in threads.iter().enumerate() {
                // Reports from before `reported` existed hold every rank in order.
                let rank = reported.get(i).copied().unwrap_or(i);
                let _ = writeln!(md, "- rank {rank}: {}", lines.join("; "));
            }
            for m in missing {
                let _ = writeln!(md, "- rank {}: no result, {}", m.rank, m.why);
            }
        }
        MpiOutcome::NotRun { why } => {
            let _ = writeln!(md, "\nThe MPI job was not run: {why}.");
        }
    }
    let _ = writeln!(md, "\n{}\n\n{}\n", x.machine.describe(), x.conclusion);
    md
}

/// A row of processes.csv.
#[derive(Serialize)]
struct ProcessesCsv {
    processes: usize,
    blas: String,
    seconds: f64,
    throughput: f64,
    vs_fixed1: f64,
    vs_fixed1_lo: Option<f64>,
    vs_fixed1_hi: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
}

impl ProcessesCsv {
    fn rows(x: &ProcessesSection) -> impl Iterator<Item = ProcessesCsv> + '_ {
        x.rows.iter().map(|r| ProcessesCsv {
            processes: r.processes,
            blas: r.mode.label(x.cores),
            seconds: r.seconds,
            throughput: r.throughput,
            vs_fixed1: r.vs_fixed1,
            vs_fixed1_lo: r.vs_fixed1_interval.map(|iv| iv.lo),
            vs_fixed1_hi: r.vs_fixed1_interval.map(|iv| iv.hi),
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
        })
    }
}

/// processes.csv, one row per process count and BLAS-threads mode; `None` without rows.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv(x: &ProcessesSection) -> anyhow::Result<Option<String>> {
    csv_text(ProcessesCsv::rows(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Fixed at the cores" never asks for more BLAS threads than the loaded OpenBLAS runs:
    /// on 96 cores under Debian's `MAX_THREADS=64` the children would get `InvalidEnv`.
    #[test]
    fn fixed_at_the_cores_stays_within_the_librarys_threads() {
        let max = parlinalg::threads::blas_max_threads();
        for cores in [1, 2, 16, 96, 192] {
            let expected = cores.min(max).to_string();
            let env = BlasMode::FixedCores.env(cores);
            assert_eq!(
                env,
                vec![(parlinalg::threads::BLAS_THREADS_VAR, expected.clone())]
            );
            assert_eq!(
                BlasMode::FixedCores.label(cores),
                format!("fixed {expected}")
            );
        }
    }

    fn result(tag: &str) -> ChildResult {
        ChildResult {
            product_ms: vec![1.5; 300],
            threads: vec![format!("BLAS threads {tag}")],
        }
    }

    #[test]
    fn every_rank_is_read_and_a_bad_one_is_named_beside_the_others() {
        let dir = std::env::temp_dir().join(format!("parlinalg-rank-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Results over 1 KiB each, as a long run's are.
        for rank in [0, 1, 3] {
            write_rank_file(&dir, rank, &result(&rank.to_string())).unwrap();
        }
        std::fs::write(rank_file(&dir, 4), b"{\"product_ms\": [1.0,").unwrap();
        let (results, missing) = read_rank_files(&dir, 5);
        let ranks: Vec<usize> = results.iter().map(|(r, _)| *r).collect();
        assert_eq!(ranks, [0, 1, 3]);
        assert_eq!(results[2].1, result("3"));
        let named: Vec<usize> = missing.iter().map(|m| m.rank).collect();
        assert_eq!(named, [2, 4]);
        assert!(missing[0].why.contains("no result"), "{missing:?}");
        assert!(missing[1].why.contains("not valid"), "{missing:?}");
        // No temporary file is left beside the results.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("rank-")), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ranks_parse_and_junk_is_an_error_naming_the_variable() {
        assert_eq!(parse_rank("PMI_RANK", "12").unwrap(), 12);
        let err = parse_rank("OMPI_COMM_WORLD_RANK", "x1").unwrap_err();
        assert!(err.to_string().contains("OMPI_COMM_WORLD_RANK"), "{err}");
    }

    #[test]
    fn a_rank_dir_is_removed_when_dropped() {
        let dir = rank_dir().unwrap();
        let path = dir.path().to_path_buf();
        write_rank_file(&path, 0, &result("0")).unwrap();
        drop(dir);
        assert!(!path.exists());
    }
}
