//! The report's data (one serde type for all of it) and its renderings: Markdown for stdout and
//! report.md, JSON, and one CSV file per table.

use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::report::classic::{self, ClassicSection};
use crate::report::classic_rows::{self, ClassicRow, How};
use crate::report::cli::Settings;
use crate::report::grid::{Cell, GridSection, GridSize, IMPOSSIBLE};
use crate::report::latency::LatencySection;
use crate::report::openmp::OpenMpOutcome;
use crate::report::processes::{MpiOutcome, SharingSection};
use crate::report::python::PythonClassic;
use crate::report::stats::{Interval, STATISTIC};
use crate::report::versus::{VersusRow, VersusSection};
use crate::report::workloads::Workload;

/// Everything the run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    pub parlinalg: String,
    /// The command line.
    pub command: Vec<String>,
    pub settings: Settings,
    pub header: ReportHeader,
    pub classic: Option<ClassicSection>,
    pub versus: Option<VersusSection>,
    pub grid: Option<GridSection>,
    pub latency: Option<LatencySection>,
    pub openmp: Option<OpenMpOutcome>,
    #[serde(default)]
    pub sharing: Option<SharingSection>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// The report's header: what runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportHeader {
    /// What parlinalg did about the OpenBLAS kernel (`kernel_selection`).
    pub kernel: String,
    /// `parlinalg::threads::report()`, as text.
    pub thread_report: String,
    /// The same, as JSON.
    pub thread_report_json: serde_json::Value,
    pub cores: usize,
}

/// `1.23 s`, `45.6 ms`, `0.81 ms`.
pub fn fmt_s(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn mb(bytes: usize) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// The header section.
pub fn header_md(h: &ReportHeader, settings: &Settings) -> String {
    format!(
        "# parlinalg report: threads, processes or BLAS threads?\n\n\
         Every figure below was measured in this run ({:?} workload, {} cores usable).\n\n\
         {}\n\n```text\n{}```\n\n",
        settings.mode, h.cores, h.kernel, h.thread_report
    )
}

/// `1.23 s (1.93×, 1.88–1.97)`, with ⚠ when the speedup is above the workers × 1.10.
fn cell(rows: &[ClassicRow], w: Workload, how: How, blas: usize, workers: usize) -> String {
    classic_rows::find(rows, w, how, blas).map_or_else(
        || "—".to_owned(),
        |r| {
            let iv = r
                .speedup_interval
                .map_or(String::new(), |iv| format!(", {:.2}–{:.2}", iv.lo, iv.hi));
            let flag = if r.speedup > workers as f64 * IMPOSSIBLE {
                " ⚠"
            } else {
                ""
            };
            format!("{} ({:.2}×{iv}){flag}", fmt_s(r.seconds), r.speedup)
        },
    )
}

/// The classic section: the main table, h with every BLAS choice, and sharing costs.
pub fn classic_md(c: &ClassicSection) -> String {
    let py_rows: &[ClassicRow] = match &c.python {
        PythonClassic::Ran { rows, .. } => rows,
        PythonClassic::Skipped { .. } => &[],
    };
    // Rust's rows, then Python's when it ran: one column group each.
    let languages: &[&[ClassicRow]] = if py_rows.is_empty() {
        &[&c.rust]
    } else {
        &[&c.rust, py_rows]
    };
    let mut md = classic_main_md(c, languages);
    md.push_str(&classic_h_md(c, languages));
    md.push_str(&classic_sharing_md(c));
    md
}

/// Serial, C threads and C processes: (how, outer count, the main table's label, the h table's
/// noun).
fn hows(workers: usize) -> [(How, usize, String, &'static str); 3] {
    [
        (How::Serial, 1, "serial".to_owned(), "thread"),
        (
            How::Threads,
            workers,
            format!("{workers} threads"),
            "threads",
        ),
        (
            How::Processes,
            workers,
            format!("{workers} processes"),
            "processes",
        ),
    ]
}

/// The main table: g, f and h at 1 BLAS thread, serial, in threads and in processes.
fn classic_main_md(c: &ClassicSection, languages: &[&[ClassicRow]]) -> String {
    let s = &c.settings;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## 1. The classic table: serial, {0} threads or {0} processes?\n",
        s.workers
    );
    let _ = writeln!(
        md,
        "g: exp over {} elements at once (`parlinalg::exp_into` a reused buffer), {}× per round; f: a scalar loop calling `f64::exp` \
         per element over the same array, {}× per round; h: {} products of {}×{} f64 matrices. Threads \
         and processes split the repetitions (g, f) or the products (h); processes are this \
         program re-executed, sharing inputs and outputs through one memfd segment; their time \
         runs from the first spawn to the last exit (writing the inputs into the segment is \
         listed apart, below). Rust's rows: every row once per round, {} rounds in random \
         order; the time is the **{}** of the rounds, and the speedup over serial has its 95% \
         interval (paired bootstrap over rounds); ⚠ marks a speedup above the {} workers × \
         {IMPOSSIBLE:.2}, which no split can reach: noise of the serial row, not a finding. \
         Python's rows are measured the same way, in as many rounds (one call of `classic.py` \
         per round and BLAS thread count, in random order), except that a Python process row's \
         clock starts once its workers have started (interpreter and `import numpy`, listed \
         apart below, as a program that keeps its pool would pay it once). Time (speedup over \
         serial).\n",
        s.elements, s.g_reps, s.f_reps, s.h_batch, s.h_size, s.h_size, s.rounds, STATISTIC, s.workers
    );
    let mut header = strings(["", "Rust g", "Rust f", "Rust h"]);
    if languages.len() > 1 {
        header.extend(strings(["numpy g", "Python f", "numpy h"]));
    }
    let rows: Vec<Vec<String>> = hows(s.workers)
        .iter()
        .map(|(how, _, label, _)| {
            let cells = languages.iter().flat_map(|rows| {
                [Workload::G, Workload::F, Workload::H].map(|w| cell(rows, w, *how, 1, s.workers))
            });
            std::iter::once(label.clone()).chain(cells).collect()
        })
        .collect();
    md.push_str(&table(&header, &rows));
    match &c.python {
        PythonClassic::Ran { python, numpy, .. } => {
            let _ = writeln!(
                md,
                "\nPython {python} with numpy {numpy}: the same workloads (`np.exp`, a list \
                 comprehension over `math.exp`, `np.matmul`), threads from a \
                 `ThreadPoolExecutor`, processes from `multiprocessing` (spawn) sharing a \
                 `/dev/shm` file; `classic.py` in the output folder reruns it."
            );
        }
        PythonClassic::Skipped { why } => {
            let _ = writeln!(md, "\nPython's version was not run: {why}.");
        }
    }
    let _ = writeln!(md, "\n{}\n\n{}\n", c.machine.describe(), c.conclusion);
    md
}

/// h with every BLAS-threads choice, serial, in threads and in processes.
fn classic_h_md(c: &ClassicSection, languages: &[&[ClassicRow]]) -> String {
    let s = &c.settings;
    let mut md = String::new();
    let _ = writeln!(md, "### h with every BLAS-threads choice\n");
    let mut header = strings(["outer × BLAS threads", "Rust"]);
    if languages.len() > 1 {
        header.push("numpy".to_owned());
    }
    let hows = hows(s.workers);
    let rows: Vec<Vec<String>> = s
        .h_blas
        .iter()
        .flat_map(|&blas| {
            hows.iter().map(move |(how, outer, _, what)| {
                let cells = languages
                    .iter()
                    .map(|rows| cell(rows, Workload::H, *how, blas, s.workers));
                std::iter::once(format!("{outer} {what} × {blas}"))
                    .chain(cells)
                    .collect()
            })
        })
        .collect();
    md.push_str(&table(&header, &rows));
    let _ = writeln!(md, "\n{}\n", c.h_conclusion);
    md
}

/// What sharing memory with the processes cost, row by row.
fn classic_sharing_md(c: &ClassicSection) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### What sharing memory with the processes cost\n");
    md.push_str(
        "Setup: create the memfd segment, map it and write the inputs once (before the row's \
         clock starts). Spawn: from the first spawn until every worker has mapped the segment \
         and waits. Exit: from the last worker's end of compute until all are reaped. Rust's \
         process rows count spawn, compute and exit in their time. Python's rows (when it ran): \
         setup writes a `/dev/shm` file, spawn is the pool's start until every worker has \
         imported numpy and waits at a barrier, and their time counts compute and exit only.\n\n",
    );
    let header = strings([
        "row",
        "segment",
        "setup",
        "spawn",
        "compute",
        "exit",
        "spawn + exit",
    ]);
    let python: &[ClassicRow] = match &c.python {
        PythonClassic::Ran { rows, .. } => rows,
        PythonClassic::Skipped { .. } => &[],
    };
    let rows: Vec<Vec<String>> = [("Rust", &c.rust[..]), ("Python", python)]
        .into_iter()
        .flat_map(|(language, rows)| rows.iter().map(move |r| (language, r)))
        .filter_map(|(language, r)| {
            let sh = r.sharing.as_ref()?;
            Some(vec![
                format!("{language} {} × {} BLAS", r.workload.name(), r.blas),
                mb(sh.bytes),
                fmt_s(sh.setup_s),
                fmt_s(sh.spawn_s),
                fmt_s(sh.compute_s),
                fmt_s(sh.exit_s),
                format!("{:.1}%", 100.0 * classic::overhead_fraction(sh)),
            ])
        })
        .collect();
    md.push_str(&table(&header, &rows));
    let _ = writeln!(md, "\n{}\n", c.sharing_conclusion);
    md
}

/// matmul vs numpy.
pub fn versus_md(v: &VersusSection) -> String {
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

/// A Markdown table: a header row, then the rows; the first column left-aligned, the others
/// right-aligned.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    // An empty first cell (the classic table's corner) reads `| |`.
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").trim_start());
    let mut md = line(header);
    md.push_str(&format!(
        "|---|{}\n",
        "---:|".repeat(header.len().saturating_sub(1))
    ));
    for r in rows {
        md.push_str(&line(r));
    }
    md
}

fn strings<const N: usize>(v: [&str; N]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// `1.93× (1.88–1.97)`: a speedup or ratio with its interval, when it has one.
fn with_interval(x: f64, iv: Option<Interval>, unit: &str) -> String {
    match iv {
        Some(iv) => format!("{x:.2}{unit} ({:.2}–{:.2})", iv.lo, iv.hi),
        None => format!("{x:.2}{unit}"),
    }
}

/// A grid section (`title` says which library).
pub fn grid_md(g: &GridSection, title: &str) -> String {
    let st = &g.settings;
    let mut md = format!(
        "## {title}\n\nf64 products, `matmul_batch_with(&a, &b, &Plan::new(K, N)?)` for {}, \
         the default policy through `matmul_batch`, and a control (the serial plan measured a \
         second time, as a cell of its own), on {}. A sample is about {} s of \
         serial work; each round measures every cell once in a fresh random order; after {} \
         rounds a cell whose time is clearly above the leader's (its interval wholly above) \
         leaves the race, and the rest are sampled until {} s per size are spent. Times are the \
         **{}** of a cell's rounds; intervals are 95%, from a paired bootstrap over rounds. The \
         best is the pair, or the policy's pick, with the highest speedup as printed, so no \
         printed figure beats it; every cell whose time ÷ the best's has an interval holding 1 \
         is tied with it (**bold**). The highest of many noisy figures leans optimistic (the \
         winner's curse): under each size, a held-out check picks on the odd rounds alone and \
         scores that pick on the even rounds, which says by about how much. A speedup above the \
         {} usable cores × {IMPOSSIBLE:.2} is re-measured and, if it persists, flagged. \
         OpenBLAS: {}.\n\n",
        grid_pairs_md(st.max_threads, g.cores),
        grid_sizes_md(g),
        st.sample_seconds,
        st.rounds,
        st.size_seconds,
        g.statistic,
        g.cores,
        g.library
    );
    md.push_str(&grid_summary_md(g));
    md.push_str(
        "\nSpeedup over serial of every pair (rows K outer threads, columns N BLAS threads), with \
         its interval; **bold**: tied with the best; [r] the rounds of a cell that \
         left the race early; ⚠ flagged (below):\n\n",
    );
    let mut flags = Vec::new();
    for s in &g.sizes {
        md.push_str(&size_matrix_md(s, &mut flags));
    }
    for f in flags {
        let _ = writeln!(md, "- ⚠ {f}");
    }
    let _ = writeln!(md, "\n{}\n\n{}\n", g.machine.describe(), g.conclusion);
    md
}

/// Which pairs a grid measured, in words.
fn grid_pairs_md(max_threads: usize, cores: usize) -> String {
    let count = crate::report::grid::pairs(max_threads, cores, false).len();
    if count == crate::report::grid::full_grid_len(max_threads) {
        format!("every pair with K·N ≤ {max_threads} ({count} pairs)")
    } else {
        format!(
            "{count} pairs chosen for {cores} cores: K and N powers of two with K·N ≤ {cores}, \
             {cores}×1 and 1×{cores}, the K·N = {cores} diagonal, and oversubscribed K·N = {} \
             and {} (1×M, M×1, (M/{cores})×{cores}, {cores}×(M/{cores})), up to K·N = {max_threads}",
            2 * cores,
            4 * cores
        )
    }
}

/// The grid's sizes, in words.
fn grid_sizes_md(g: &GridSection) -> String {
    let mut parts = Vec::new();
    let batches: Vec<String> = g
        .sizes
        .iter()
        .filter(|s| !s.single && !s.small_batch)
        .map(|s| s.n.to_string())
        .collect();
    if !batches.is_empty() {
        parts.push(format!(
            "batches of many n×n products (n = {})",
            batches.join(", ")
        ));
    }
    for s in g.sizes.iter().filter(|s| s.small_batch) {
        parts.push(format!(
            "a batch of {} {n}×{n} product(s), fewer than the {} cores, where K = {1} outer \
             threads leave some idle and a split K × N with K < {1} may fill them better",
            s.batch,
            g.cores,
            n = s.n
        ));
    }
    for s in g.sizes.iter().filter(|s| s.single) {
        parts.push(format!("one {0}×{0} product (K = 1 only)", s.n));
    }
    parts.join("; ")
}

/// `64`, `256 (batch of 8)` or `2048 (single)`.
fn size_name(s: &GridSize) -> String {
    if s.single {
        format!("{} (single)", s.n)
    } else if s.small_batch {
        format!("{} (batch of {})", s.n, s.batch)
    } else {
        s.n.to_string()
    }
}

/// The grid's summary: one row per size, the best pair, the policy, the control and the worst
/// oversubscribed pair.
fn grid_summary_md(g: &GridSection) -> String {
    let header = strings([
        "n",
        "batch × calls",
        "rounds",
        "serial",
        "best K×N",
        "best speedup",
        "policy's K×N",
        "policy speedup",
        "policy / best time",
        "control / serial",
        "worst oversubscribed",
        "its time / best",
    ]);
    let rows: Vec<Vec<String>> = g
        .sizes
        .iter()
        .map(|s| {
            let serial = s.cells.iter().find(|c| (c.outer, c.blas) == (1, 1));
            let (worst, ratio) = s.worst_oversubscribed.as_ref().map_or_else(
                || ("—".to_owned(), "—".to_owned()),
                |(c, r)| (format!("{}×{}", c.outer, c.blas), format!("{r:.2}×")),
            );
            vec![
                size_name(s),
                format!("{} × {}", s.batch, s.calls),
                s.rounds.to_string(),
                serial.map_or("—".to_owned(), |c| fmt_s(c.seconds)),
                format!(
                    "{}×{}{}",
                    s.best.outer,
                    s.best.blas,
                    if s.best_is_policy { " (policy)" } else { "" }
                ),
                with_interval(s.best.speedup, s.best.speedup_interval, "×"),
                format!("{}×{}", s.policy.cell.outer, s.policy.cell.blas),
                with_interval(s.policy.cell.speedup, s.policy.cell.speedup_interval, "×"),
                with_interval(s.policy.vs_best, s.policy.vs_best_interval, ""),
                with_interval(s.control.ratio, s.control.interval, ""),
                worst,
                ratio,
            ]
        })
        .collect();
    table(&header, &rows)
}

/// One size's K × N matrix of speedups and the policy's line; the flags it raises go to `flags`.
fn size_matrix_md(s: &GridSize, flags: &mut Vec<String>) -> String {
    let (ks, ns) = s.axes();
    let mut header = vec![format!("n = {}", size_name(s))];
    header.extend(ns.iter().map(|n| format!("N = {n}")));
    let rows: Vec<Vec<String>> = ks
        .iter()
        .map(|&k| {
            let mut row = vec![format!("K = {k}")];
            row.extend(ns.iter().map(|&n| {
                let Some(c) = s.cells.iter().find(|c| (c.outer, c.blas) == (k, n)) else {
                    return String::new();
                };
                if let Some(f) = &c.flag {
                    flags.push(format!("n = {}, {}×{}: {f}", s.n, k, n));
                }
                matrix_cell(c, s.rounds)
            }));
            row
        })
        .collect();
    let mut md = table(&header, &rows);
    let _ = writeln!(
        md,
        "\nPolicy for n = {}: {}×{}, {}.",
        size_name(s),
        s.policy.cell.outer,
        s.policy.cell.blas,
        s.policy.reason
    );
    if let Some(h) = &s.held_out {
        let _ = writeln!(
            md,
            "Held-out check: picked on the odd rounds alone, {}×{} scores {} on the even rounds, \
             beside the best's {:.2}× on all of them.",
            h.outer,
            h.blas,
            with_interval(h.speedup, h.interval, "×"),
            s.best.speedup
        );
    }
    md.push('\n');
    if let Some(f) = &s.policy.cell.flag {
        flags.push(format!("n = {}, the default policy: {f}", s.n));
    }
    md
}

/// `1.93 (1.88–1.97) [4] ⚠`, bold when within noise of the best.
fn matrix_cell(c: &Cell, rounds: usize) -> String {
    let mut t = with_interval(c.speedup, c.speedup_interval, "");
    if c.samples.len() < rounds {
        t.push_str(&format!(" [{}]", c.samples.len()));
    }
    if c.flag.is_some() {
        t.push_str(" ⚠");
    }
    if c.within_noise_of_best {
        format!("**{t}**")
    } else {
        t
    }
}

/// The latency section.
pub fn latency_md(l: &LatencySection) -> String {
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

/// The OpenMP section.
pub fn openmp_md(o: &OpenMpOutcome) -> String {
    match o {
        OpenMpOutcome::Ran { dir, grid } => {
            let mut md = grid_md(grid, "4. The grid again under the OpenMP build of OpenBLAS");
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

/// The processes section.
pub fn sharing_md(x: &SharingSection) -> String {
    let st = &x.settings;
    let mut md = format!(
        "## 5. Processes sharing the machine\n\nP copies of one program, each making {} \
         products of {n}×{n} f64 through `parlinalg::matmul`, started at once, with BLAS threads \
         fixed at 1, fixed at the {} cores, under each process's own `auto` with the \
         machine-wide budget off (`PARLINALG_BUDGET=off`: every process believes it is alone), \
         and under the budget (the default: the processes share one slot per core). Wall time \
         from the first spawn to the last exit, the **{}** of {} rounds in random order; the \
         ratio to the fixed-1 row with as many processes has its 95% interval; latency is each \
         product's time, over every process (last round).\n\n",
        st.products,
        x.cores,
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

/// The whole report as Markdown.
pub fn markdown(d: &ReportData) -> String {
    let mut md = header_md(&d.header, &d.settings);
    if let Some(c) = &d.classic {
        md.push_str(&classic_md(c));
    }
    if let Some(v) = &d.versus {
        md.push_str(&versus_md(v));
    }
    if let Some(g) = &d.grid {
        md.push_str(&grid_md(
            g,
            "2. The inner vs outer grid: K outer × N BLAS threads",
        ));
    }
    if let Some(l) = &d.latency {
        md.push_str(&latency_md(l));
    }
    if let Some(o) = &d.openmp {
        md.push_str(&openmp_md(o));
    }
    if let Some(x) = &d.sharing {
        md.push_str(&sharing_md(x));
    }
    md
}

/// A row of classic.csv.
#[derive(Serialize)]
struct ClassicCsv<'a> {
    language: &'a str,
    workload: &'a str,
    how: &'a str,
    outer: usize,
    blas: usize,
    seconds: f64,
    speedup: f64,
    segment_bytes: Option<usize>,
    setup_s: Option<f64>,
    spawn_s: Option<f64>,
    compute_s: Option<f64>,
    exit_s: Option<f64>,
}

impl<'a> ClassicCsv<'a> {
    /// Rust's rows, then Python's.
    fn rows(c: &'a ClassicSection) -> impl Iterator<Item = ClassicCsv<'a>> {
        let py: &[ClassicRow] = match &c.python {
            PythonClassic::Ran { rows, .. } => rows,
            PythonClassic::Skipped { .. } => &[],
        };
        [("rust", &c.rust[..]), ("python", py)]
            .into_iter()
            .flat_map(|(language, list)| list.iter().map(move |r| (language, r)))
            .map(|(language, r)| {
                let sh = r.sharing.as_ref();
                ClassicCsv {
                    language,
                    workload: r.workload.name(),
                    how: r.how.name(),
                    outer: r.outer,
                    blas: r.blas,
                    seconds: r.seconds,
                    speedup: r.speedup,
                    segment_bytes: sh.map(|s| s.bytes),
                    setup_s: sh.map(|s| s.setup_s),
                    spawn_s: sh.map(|s| s.spawn_s),
                    compute_s: sh.map(|s| s.compute_s),
                    exit_s: sh.map(|s| s.exit_s),
                }
            })
    }
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

/// A row of grid.csv: one cell (`kind` = `pair`) or the policy's choice (`policy`).
#[derive(Serialize)]
struct GridCsv<'a> {
    threading: &'a str,
    n: usize,
    single: bool,
    batch: usize,
    kind: &'a str,
    outer: usize,
    blas: usize,
    rounds: usize,
    seconds: f64,
    gflops: f64,
    speedup: f64,
    speedup_lo: Option<f64>,
    speedup_hi: Option<f64>,
    within_noise_of_best: bool,
    flag: Option<&'a str>,
}

impl<'a> GridCsv<'a> {
    /// Every pair and the policy's choice of every size, the pthreads grid then OpenMP's.
    fn rows(d: &'a ReportData) -> impl Iterator<Item = GridCsv<'a>> {
        let openmp_grid = match &d.openmp {
            Some(OpenMpOutcome::Ran { grid, .. }) => Some(&**grid),
            _ => None,
        };
        [d.grid.as_ref(), openmp_grid]
            .into_iter()
            .flatten()
            .flat_map(|g| g.sizes.iter().map(move |s| (g, s)))
            .flat_map(|(g, s)| {
                let cells = s.cells.iter().map(|c| ("pair", c));
                cells
                    .chain(std::iter::once(("policy", &s.policy.cell)))
                    .map(move |(kind, c)| GridCsv {
                        threading: &g.threading,
                        n: s.n,
                        single: s.single,
                        batch: s.batch,
                        kind,
                        outer: c.outer,
                        blas: c.blas,
                        rounds: c.samples.len(),
                        seconds: c.seconds,
                        gflops: c.gflops,
                        speedup: c.speedup,
                        speedup_lo: c.speedup_interval.map(|iv| iv.lo),
                        speedup_hi: c.speedup_interval.map(|iv| iv.hi),
                        within_noise_of_best: c.within_noise_of_best,
                        flag: c.flag.as_deref(),
                    })
            })
    }
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
    fn rows(x: &SharingSection) -> impl Iterator<Item = ProcessesCsv> + '_ {
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

/// One CSV file from serde rows (the header from the field names), or `None` without rows.
fn csv_text<R: Serialize>(rows: impl IntoIterator<Item = R>) -> anyhow::Result<Option<String>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut any = false;
    for r in rows {
        w.serialize(r)?;
        any = true;
    }
    let bytes = w.into_inner()?;
    Ok(any.then(|| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The CSV files: (file name, contents), one per table that ran.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv_files(d: &ReportData) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let mut add = |name: &str, text: Option<String>| {
        if let Some(text) = text {
            files.push((name.to_owned(), text));
        }
    };
    if let Some(c) = &d.classic {
        add("classic.csv", csv_text(ClassicCsv::rows(c))?);
    }
    if let Some(v) = &d.versus {
        add(
            "matmul_vs_numpy.csv",
            csv_text(v.rows.iter().map(VersusCsv::from))?,
        );
    }
    add("grid.csv", csv_text(GridCsv::rows(d))?);
    if let Some(l) = &d.latency {
        // A latency row is flat: its fields are latency.csv's columns.
        add("latency.csv", csv_text(&l.rows)?);
    }
    if let Some(x) = &d.sharing {
        add("processes.csv", csv_text(ProcessesCsv::rows(x))?);
    }
    Ok(files)
}

/// Writes report.md, report.json and the CSV files into `dir`; returns the paths.
///
/// # Errors
/// I/O errors, as text.
pub fn write_files(dir: &Path, d: &ReportData) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |name: &str, contents: &str| -> anyhow::Result<()> {
        let p = dir.join(name);
        std::fs::write(&p, contents).with_context(|| format!("{}", p.display()))?;
        written.push(p);
        Ok(())
    };
    put("report.md", &markdown(d))?;
    put("report.json", &serde_json::to_string_pretty(d)?)?;
    for (name, contents) in csv_files(d)? {
        put(&name, &contents)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_well() {
        assert_eq!(fmt_s(12.34), "12.3 s");
        assert_eq!(fmt_s(1.234), "1.23 s");
        assert_eq!(fmt_s(0.1234), "123 ms");
        assert_eq!(fmt_s(0.001234), "1.23 ms");
    }
}
