//! Section 5, processes sharing the machine: P copies of a small program (many f64 products of
//! 256×256, as a process pool, a test runner or several service replicas would run them) at
//! once, with BLAS threads fixed at 1, fixed at the cores, under each process's own `auto`
//! with the machine-wide budget off, and under the budget (the default). Throughput, and the
//! latency of each product beside the others; then the same program as a real MPI job when
//! Open MPI's `mpirun` is installed.

use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::report::machine::{MachineState, Snapshot};
use crate::report::progress::Progress;
use crate::report::stats::{self, percentile, Interval, Samples, STATISTIC};

/// The marker before a child's JSON line on its stdout.
const RESULT: &str = "@@sharing ";

/// What the section runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingSettings {
    /// Products per process.
    pub products: usize,
    /// Their size n.
    pub n: usize,
    /// Process counts tried.
    pub processes: Vec<usize>,
    /// Rounds (every configuration once per round, in random order).
    pub rounds: usize,
}

/// How the children choose their BLAS threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// `PARLINALG_BLAS_THREADS=1`.
    Fixed1,
    /// `PARLINALG_BLAS_THREADS=<cores>`.
    FixedCores,
    /// `auto`, each process alone in its view (`PARLINALG_BUDGET=off`).
    AutoAlone,
    /// `auto` with the machine-wide budget (the default).
    Budget,
}

impl Mode {
    const ALL: [Mode; 4] = [
        Mode::Fixed1,
        Mode::FixedCores,
        Mode::AutoAlone,
        Mode::Budget,
    ];

    /// The environment the children get.
    fn env(self, cores: usize) -> Vec<(&'static str, String)> {
        match self {
            Mode::Fixed1 => vec![(parlinalg::threads::BLAS_THREADS_VAR, "1".into())],
            Mode::FixedCores => vec![(parlinalg::threads::BLAS_THREADS_VAR, cores.to_string())],
            Mode::AutoAlone => vec![(parlinalg::threads::BUDGET_VAR, "off".into())],
            Mode::Budget => vec![],
        }
    }

    /// The row's label.
    pub fn label(self, cores: usize) -> String {
        match self {
            Mode::Fixed1 => "fixed 1".into(),
            Mode::FixedCores => format!("fixed {cores}"),
            Mode::AutoAlone => "auto, budget off".into(),
            Mode::Budget => "auto + machine budget (default)".into(),
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
pub struct SharingRow {
    pub processes: usize,
    pub mode: Mode,
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
        ranks: usize,
        seconds: f64,
        /// Each rank's thread lines.
        threads: Vec<Vec<String>>,
    },
    NotRun {
        why: String,
    },
}

/// The section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingSection {
    pub settings: SharingSettings,
    pub cores: usize,
    pub statistic: String,
    pub rows: Vec<SharingRow>,
    pub mpi: MpiOutcome,
    pub machine: MachineState,
    pub conclusion: String,
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &SharingSettings, cores: usize) -> f64 {
    let product = 2.0 * (s.n as f64).powi(3) / 40e9;
    let work: f64 = s
        .processes
        .iter()
        .map(|&p| p as f64 * s.products as f64 * product / cores as f64)
        .sum();
    (work + 0.05 * s.processes.len() as f64) * (Mode::ALL.len() * s.rounds) as f64 + work
}

/// Runs the section: every (P, mode) once per round in random order, then the MPI job.
///
/// # Errors
/// A child that failed or printed no result.
pub fn measure(
    s: &SharingSettings,
    cores: usize,
    progress: &mut Progress,
) -> anyhow::Result<SharingSection> {
    let machine = Snapshot::take();
    let group = format!("report-{}", std::process::id());
    let configs: Vec<(usize, Mode)> = s
        .processes
        .iter()
        .flat_map(|&p| Mode::ALL.map(|m| (p, m)))
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
            .position(|&c| c == (p, Mode::Fixed1))
            .expect("every P has a fixed-1 row")
    };
    let rows: Vec<SharingRow> = configs
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
            SharingRow {
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
    let mpi = run_mpi(s, cores, &group);
    Ok(SharingSection {
        settings: s.clone(),
        cores,
        statistic: STATISTIC.to_owned(),
        conclusion: conclude(cores, &rows),
        rows,
        mpi,
        machine: machine.until_now(),
    })
}

/// The child's command line: this program's `report --sharing-child`.
fn child_command(s: &SharingSettings) -> anyhow::Result<(std::path::PathBuf, Vec<String>)> {
    let exe = std::env::current_exe()?;
    let spec = serde_json::to_string(&(s.products, s.n))?;
    Ok((exe, vec!["report".into(), "--sharing-child".into(), spec]))
}

/// Starts `p` children at once with `env`, waits for all, and reads their results.
fn run_children(
    s: &SharingSettings,
    p: usize,
    env: &[(&str, String)],
) -> anyhow::Result<Vec<ChildResult>> {
    let (exe, args) = child_command(s)?;
    let children: Vec<std::process::Child> = (0..p)
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
            cmd.spawn()
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

/// The same program as an MPI job of one rank per core (budget on), when `mpirun` is there.
fn run_mpi(s: &SharingSettings, cores: usize, group: &str) -> MpiOutcome {
    let Ok(mpirun) = which("mpirun") else {
        return MpiOutcome::NotRun {
            why: "Open MPI's mpirun is not installed: on Debian or Ubuntu `apt-get install openmpi-bin`".into(),
        };
    };
    let result = (|| -> anyhow::Result<MpiOutcome> {
        let (exe, args) = child_command(s)?;
        let mut cmd = Command::new(&mpirun);
        // SAFETY: geteuid only reads the process's user id.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-run-as-root");
        }
        cmd.args(["-np", &cores.to_string(), "--oversubscribe"])
            .arg(&exe)
            .args(&args);
        cmd.env(parlinalg::threads::BUDGET_GROUP_VAR, group);
        let command = format!("mpirun -np {cores} parlinalg report --sharing-child …");
        let t = Instant::now();
        let out = cmd.stdin(Stdio::null()).output()?;
        let seconds = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "{} exited with {}: {}",
            command,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let threads = stdout
            .lines()
            .filter_map(|l| l.strip_prefix(RESULT))
            .map(|l| serde_json::from_str::<ChildResult>(l).map(|c| c.threads))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MpiOutcome::Ran {
            command,
            ranks: threads.len(),
            seconds,
            threads,
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
/// line.
///
/// # Errors
/// A bad spec, or parlinalg's errors.
pub fn child_main(spec: &str) -> anyhow::Result<()> {
    let (products, n): (usize, usize) = serde_json::from_str(spec)?;
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
    println!("{RESULT}{}", serde_json::to_string(&result)?);
    Ok(())
}

/// The section's sentence.
pub fn conclude(cores: usize, rows: &[SharingRow]) -> String {
    let get = |p: usize, m: Mode| rows.iter().find(|r| r.processes == p && r.mode == m);
    let Some(most) = rows.iter().map(|r| r.processes).max() else {
        return "Nothing was measured.".into();
    };
    let cmp = |r: &SharingRow| {
        let noise = r.vs_fixed1_interval.is_some_and(|iv| iv.contains(1.0));
        format!(
            "{:.2}×{}",
            r.vs_fixed1,
            if noise { " (within noise)" } else { "" }
        )
    };
    let mut parts = Vec::new();
    if let (Some(alone), Some(budget)) = (get(most, Mode::AutoAlone), get(most, Mode::Budget)) {
        parts.push(format!(
            "with {most} processes on {cores} cores, each process's own auto took {} the time of 1 BLAS thread each and the machine budget {}",
            cmp(alone),
            cmp(budget)
        ));
    }
    if let Some(one) = get(1, Mode::Budget) {
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
