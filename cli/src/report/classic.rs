//! Section 1, the classic table in Rust: serial vs C threads vs C processes for g (exp over an
//! array), f (a scalar exp loop) and h (a batch of matrix products, with every BLAS-threads
//! choice), and what sharing memory with the processes costs.
//!
//! At the end: the section's Markdown ([`markdown`]) and classic.csv ([`csv()`](fn@csv)).

use std::fmt::Write as _;

use parlinalg::threads::Plan;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::report::classic_rows::{fill_speedups, find, ClassicRow, How};
use crate::report::classic_workers::{self, Job, ProcessRowCost};
use crate::report::cli::ClassicSettings;
use crate::report::grid::IMPOSSIBLE;
use crate::report::machine::MachineState;
use crate::report::progress::Progress;
use crate::report::python::PythonClassic;
use crate::report::race::{Race, RaceLimits, Sample};
use crate::report::stats::{self, seconds, STATISTIC};
use crate::report::table::{csv_text, fmt_s, mb, strings, table};
use crate::report::workloads::{self, Workload};

/// The classic section: Rust's rows, Python's, and one sentence each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassicSection {
    pub settings: ClassicSettings,
    pub rust: Vec<ClassicRow>,
    pub python: PythonClassic,
    /// The machine while the Rust rows ran.
    pub machine: MachineState,
    /// On the main table (serial, threads, processes; h on 1 BLAS thread).
    pub conclusion: String,
    /// On h with every BLAS-threads choice.
    pub h_conclusion: String,
    /// On what sharing memory cost.
    pub sharing_conclusion: String,
}

/// Estimated seconds, for the progress bar.
pub fn estimate(s: &ClassicSettings) -> f64 {
    // Serial, then threads and processes at about half of it each, plus the segment's setup.
    let exp = s.elements as f64 * 1.2e-9 * (s.g_reps + s.f_reps) as f64;
    let h = 2.0 * (s.h_size as f64).powi(3) * s.h_batch as f64 / 30e9;
    let per_round = 2.2 * (exp + h * s.h_blas.len() as f64);
    s.rounds as f64 * (per_round + 0.3 * (2 + s.h_blas.len()) as f64)
}

/// Bytes the Rust table holds at once: the inputs and the threads' outputs (x and C outputs of
/// `elements`; a, b and c of h's batch), and beside them one process row's shared segment (the
/// same, for g or f, or for h).
pub fn bytes_needed(s: &ClassicSettings) -> u128 {
    let exp = 8 * (s.elements as u128) * (1 + s.workers as u128);
    let h = 3 * 8 * (s.h_batch as u128) * (s.h_size as u128).pow(2);
    exp + h + exp.max(h)
}

/// One row to measure.
#[derive(Debug, Clone, Copy)]
struct Config {
    workload: Workload,
    how: How,
    outer: usize,
    blas: usize,
}

/// Measures the Rust rows: every row once per round, in a fresh random order each round.
///
/// # Errors
/// parlinalg's errors, a worker that failed, or a wrong result.
pub fn measure(s: &ClassicSettings, progress: &mut Progress) -> anyhow::Result<Vec<ClassicRow>> {
    let configs = configs(s);
    let mut bench = Bench::new(s);
    let mut sharing: Vec<Option<ProcessRowCost>> = vec![None; configs.len()];
    parlinalg::matmul(&stats::matrix(64, 1), &stats::matrix(64, 2))?;
    let mut race = Race::new(configs.len(), &(0..configs.len()).collect::<Vec<_>>(), 5);
    let limits = RaceLimits {
        min_rounds: s.rounds,
        max_rounds: s.rounds,
        seconds: 0.0,
    };
    race.run(limits, |i| -> anyhow::Result<Sample> {
        let c = configs[i];
        progress.label(format!(
            "classic: {}, {} {} × {} BLAS",
            c.workload.name(),
            c.outer,
            c.how.name(),
            c.blas
        ));
        let t = match c.how {
            How::Processes => {
                let sh = bench.in_processes(c)?;
                let t = sh.total_s();
                sharing[i] = Some(sh);
                t
            }
            _ if c.workload == Workload::H => bench.products_in_threads(c)?,
            _ => bench.exp_in_threads(c)?,
        };
        progress.advance(t);
        Ok(Sample {
            per_call: t,
            wall: t,
        })
    })?;
    Ok(rows(&configs, &race, sharing))
}

/// Every row: g and f serial, in C threads and in C processes with 1 BLAS thread; h the same
/// with each BLAS-threads choice.
fn configs(s: &ClassicSettings) -> Vec<Config> {
    let config = |workload, how, blas| Config {
        workload,
        how,
        outer: if how == How::Serial { 1 } else { s.workers },
        blas,
    };
    let hows = [How::Serial, How::Threads, How::Processes];
    let mut configs: Vec<Config> = [Workload::G, Workload::F]
        .into_iter()
        .flat_map(|w| hows.map(|how| config(w, how, 1)))
        .collect();
    configs.extend(
        s.h_blas
            .iter()
            .flat_map(|&blas| hows.map(|how| config(Workload::H, how, blas))),
    );
    configs
}

/// The rows from the race's samples: each time with its speedup over the serial row of its
/// workload ([`fill_speedups`]).
fn rows(configs: &[Config], race: &Race, sharing: Vec<Option<ProcessRowCost>>) -> Vec<ClassicRow> {
    let mut rows: Vec<ClassicRow> = configs
        .iter()
        .zip(&race.samples)
        .zip(sharing)
        .map(|((c, samples), sharing)| ClassicRow {
            workload: c.workload,
            how: c.how,
            outer: c.outer,
            blas: c.blas,
            seconds: f64::NAN,
            speedup: f64::NAN,
            speedup_interval: None,
            samples: samples.clone(),
            sharing,
        })
        .collect();
    fill_speedups(&mut rows);
    rows
}

/// The inputs (one x for g and f, a batch a, b for h) and the outputs threads write into,
/// made once; each method times one row and checks what it computed.
struct Bench<'s> {
    s: &'s ClassicSettings,
    x: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    /// One output per thread for g and f.
    outs: Vec<Vec<f64>>,
    h_out: Vec<f64>,
}

impl<'s> Bench<'s> {
    fn new(s: &'s ClassicSettings) -> Self {
        let mut x = vec![0.0; s.elements];
        stats::fill_exp_input(&mut x, 11);
        let [a, b] = [21, 22].map(|seed| {
            stats::batch(s.h_batch, s.h_size, seed)
                .into_raw_vec_and_offset()
                .0
        });
        Bench {
            s,
            outs: vec![vec![1.0; x.len()]; s.workers],
            h_out: vec![1.0; a.len()],
            x,
            a,
            b,
        }
    }

    fn reps(&self, workload: Workload) -> usize {
        if workload == Workload::G {
            self.s.g_reps
        } else {
            self.s.f_reps
        }
    }

    /// g, f or h split over C worker processes.
    fn in_processes(&self, c: Config) -> anyhow::Result<ProcessRowCost> {
        let job = match c.workload {
            Workload::H => Job::Products {
                a: &self.a,
                b: &self.b,
                n: self.s.h_size,
                blas: c.blas,
            },
            workload => Job::Exp {
                workload,
                x: &self.x,
                reps: self.reps(workload),
            },
        };
        classic_workers::run(&job, self.s.workers)
    }

    /// h's batch in `c.outer` threads of `c.blas` BLAS threads each (serial: 1 × blas).
    fn products_in_threads(&mut self, c: Config) -> anyhow::Result<f64> {
        let (n, plan) = (self.s.h_size, Plan::new(c.outer, c.blas)?);
        let (a, b, out) = (&self.a, &self.b, &mut self.h_out);
        let t = seconds(|| {
            plan.run(|| {
                blocks(a, b, out, n * n, c.outer)
                    .into_par_iter()
                    .with_max_len(1)
                    .try_for_each(|(a, b, c)| workloads::run_h(a, b, c, n))
            })
            .expect("a pool of K threads")
            .expect("square products")
        });
        workloads::check_products(a, b, out, n)?;
        Ok(t)
    }

    /// g or f, its repetitions split over `c.outer` threads (serial: 1).
    fn exp_in_threads(&mut self, c: Config) -> anyhow::Result<f64> {
        let (reps, outer) = (self.reps(c.workload), c.outer);
        let (x, outs) = (&self.x, &mut self.outs[..outer]);
        let run = |out: &mut [f64], reps| match c.workload {
            Workload::G => workloads::run_g(x, out, reps),
            _ => workloads::run_f(x, out, reps),
        };
        let t = seconds(|| {
            Plan::new(outer, 1)
                .expect("a pool of C threads")
                .run(|| {
                    outs.par_iter_mut()
                        .with_max_len(1)
                        .enumerate()
                        .for_each(|(w, out)| run(out, workloads::share(reps, outer, w)))
                })
                .expect("a pool of C threads")
        });
        for (w, out) in outs.iter().enumerate() {
            if workloads::share(reps, outer, w) > 0 {
                workloads::check_exp(x, out)?;
            }
        }
        Ok(t)
    }
}

/// The workers' blocks of h: contiguous runs of products, one per worker.
fn blocks<'a>(
    a: &'a [f64],
    b: &'a [f64],
    c: &'a mut [f64],
    nn: usize,
    workers: usize,
) -> Vec<(&'a [f64], &'a [f64], &'a mut [f64])> {
    let batch = a.len() / nn.max(1);
    let mut out = Vec::with_capacity(workers);
    let (mut a, mut b, mut c) = (a, b, c);
    for w in 0..workers {
        let len = workloads::share(batch, workers, w) * nn;
        let (ah, at) = a.split_at(len);
        let (bh, bt) = b.split_at(len);
        let (ch, ct) = std::mem::take(&mut c).split_at_mut(len);
        out.push((ah, bh, ch));
        (a, b, c) = (at, bt, ct);
    }
    out
}

/// The main table's sentence, from the numbers.
pub fn conclude(workers: usize, rust: &[ClassicRow], python: &PythonClassic) -> String {
    let speedups = |rows: &[ClassicRow], how| -> Vec<f64> {
        [Workload::G, Workload::F, Workload::H]
            .iter()
            .map(|&w| find(rows, w, how, 1).map_or(f64::NAN, |r| r.speedup))
            .collect()
    };
    let list = |v: &[f64]| format!("{:.2}×, {:.2}× and {:.2}×", v[0], v[1], v[2]);
    let t = speedups(rust, How::Threads);
    let p = speedups(rust, How::Processes);
    // Processes are ahead on a workload only where threads' time ÷ processes' time has an
    // interval wholly above 1; a difference inside it is noise.
    let ahead = |w: Workload| -> Option<bool> {
        let (t, p) = (
            find(rust, w, How::Threads, 1)?,
            find(rust, w, How::Processes, 1)?,
        );
        let (_, iv) = stats::ratio(&t.samples, &p.samples, 4);
        Some(iv?.lo > 1.0)
    };
    let behind: Vec<&str> = [Workload::G, Workload::F, Workload::H]
        .into_iter()
        .filter(|&w| ahead(w) == Some(true))
        .map(Workload::name)
        .collect();
    let best_any = t.iter().chain(&p).copied().fold(0.0, f64::max);
    let verdict = if best_any < 0.6 * workers as f64 {
        format!(
            "neither came near {workers}× (at best {best_any:.2}×): other programs were probably \
             using the cores, so rerun on an idle machine"
        )
    } else if behind.is_empty() {
        "threads did everything processes did (any difference is inside the intervals), \
         without the spawn, since Rust has no GIL"
            .to_owned()
    } else {
        format!(
            "processes were ahead of threads, beyond the intervals, on {}",
            behind.join(" and ")
        )
    };
    let python = match python {
        PythonClassic::Ran { rows, .. } if !rows.is_empty() => {
            let pt = speedups(rows, How::Threads);
            let pp = speedups(rows, How::Processes);
            format!(
                "; Python's threads gave {} and its processes {}",
                list(&pt),
                list(&pp)
            )
        }
        _ => String::new(),
    };
    format!(
        "With {workers} workers, Rust's threads ran g, f and h {} faster than serial and its \
         processes {}, so {verdict}{python}.",
        list(&t),
        list(&p)
    )
}

/// The sentence on h with every BLAS-threads choice.
pub fn conclude_h(workers: usize, rust: &[ClassicRow]) -> String {
    let h: Vec<&ClassicRow> = rust.iter().filter(|r| r.workload == Workload::H).collect();
    let Some(best) = h.iter().max_by(|a, b| a.speedup.total_cmp(&b.speedup)) else {
        return "h was not measured.".into();
    };
    let nested: Vec<&&ClassicRow> = h
        .iter()
        .filter(|r| r.how != How::Serial && r.blas > 1)
        .collect();
    let worst = nested.iter().min_by(|a, b| a.speedup.total_cmp(&b.speedup));
    let tail = match worst {
        Some(w) => format!(
            ", while {} {} × {} BLAS threads (K·N = {} on {workers} workers) reached only {:.2}×",
            w.outer,
            w.how.name(),
            w.blas,
            w.outer * w.blas,
            w.speedup
        ),
        None => String::new(),
    };
    format!(
        "The fastest way to run h was {} {} × {} BLAS thread{} ({:.2}× serial){tail}.",
        best.outer,
        if best.how == How::Serial {
            "thread"
        } else {
            best.how.name()
        },
        best.blas,
        if best.blas == 1 { "" } else { "s" },
        best.speedup
    )
}

/// The sentence on what sharing memory cost.
pub fn conclude_sharing(rust: &[ClassicRow]) -> String {
    let shared: Vec<(&ClassicRow, &ProcessRowCost)> = rust
        .iter()
        .filter_map(|r| r.sharing.as_ref().map(|s| (r, s)))
        .collect();
    if shared.is_empty() {
        return "No process row ran.".into();
    }
    let (worst_row, worst) = shared
        .iter()
        .max_by(|a, b| overhead_fraction(a.1).total_cmp(&overhead_fraction(b.1)))
        .copied()
        .expect("not empty");
    let setup_rate = shared
        .iter()
        .map(|(_, s)| s.bytes as f64 / s.setup_s.max(1e-9) / 1e9)
        .fold(f64::INFINITY, f64::min);
    let mean_spawn_exit = shared
        .iter()
        .map(|(_, s)| (s.spawn_s + s.exit_s) * 1e3)
        .sum::<f64>()
        / shared.len() as f64;
    format!(
        "Writing the inputs into the shared segment ran at {setup_rate:.1} GB/s or faster, and \
         spawning and reaping the workers took {mean_spawn_exit:.0} ms a row on average, at most \
         {:.0}% of a process row's time ({} with {} BLAS thread{}).",
        100.0 * overhead_fraction(worst),
        worst_row.workload.name(),
        worst_row.blas,
        if worst_row.blas == 1 { "" } else { "s" }
    )
}

/// Spawn and exit as a fraction of the row's time.
pub fn overhead_fraction(s: &ProcessRowCost) -> f64 {
    (s.spawn_s + s.exit_s) / s.total_s().max(1e-12)
}

// ---- Markdown and CSV ----

/// `1.23 s (1.93×, 1.88–1.97)`, with ⚠ when the speedup is above the workers × 1.10.
fn cell(rows: &[ClassicRow], w: Workload, how: How, blas: usize, workers: usize) -> String {
    find(rows, w, how, blas).map_or_else(
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
pub fn markdown(c: &ClassicSection) -> String {
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
    let mut md = main_table_md(c, languages);
    md.push_str(&h_table_md(c, languages));
    md.push_str(&sharing_costs_md(c));
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
fn main_table_md(c: &ClassicSection, languages: &[&[ClassicRow]]) -> String {
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
fn h_table_md(c: &ClassicSection, languages: &[&[ClassicRow]]) -> String {
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
fn sharing_costs_md(c: &ClassicSection) -> String {
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
                format!("{:.1}%", 100.0 * overhead_fraction(sh)),
            ])
        })
        .collect();
    md.push_str(&table(&header, &rows));
    let _ = writeln!(md, "\n{}\n", c.sharing_conclusion);
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

/// classic.csv: Rust's rows, then Python's, with what sharing memory cost each process row;
/// `None` without rows.
///
/// # Errors
/// A row the CSV writer refuses, as text.
pub fn csv(c: &ClassicSection) -> anyhow::Result<Option<String>> {
    csv_text(ClassicCsv::rows(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::Samples;

    fn r(workload: Workload, how: How, outer: usize, blas: usize, seconds: f64) -> ClassicRow {
        let sharing = (how == How::Processes).then_some(ProcessRowCost {
            bytes: 1 << 20,
            setup_s: 0.001,
            spawn_s: 0.05,
            compute_s: seconds - 0.06,
            exit_s: 0.01,
        });
        // Five rounds with a little jitter, so that speedups have intervals.
        let samples = Samples(
            [1.0, 1.02, 0.99, 1.01, 1.0]
                .iter()
                .enumerate()
                .map(|(r, j)| (r, seconds * j))
                .collect(),
        );
        ClassicRow {
            workload,
            how,
            outer,
            blas,
            seconds: samples.estimate(),
            speedup: f64::NAN,
            speedup_interval: None,
            samples,
            sharing,
        }
    }

    fn rows(f_threads: f64) -> Vec<ClassicRow> {
        let mut v = vec![
            r(Workload::G, How::Serial, 1, 1, 2.0),
            r(Workload::G, How::Threads, 2, 1, 1.0),
            r(Workload::G, How::Processes, 2, 1, 1.1),
            r(Workload::F, How::Serial, 1, 1, 2.0),
            r(Workload::F, How::Threads, 2, 1, f_threads),
            r(Workload::F, How::Processes, 2, 1, 1.05),
            r(Workload::H, How::Serial, 1, 1, 1.0),
            r(Workload::H, How::Threads, 2, 1, 0.52),
            r(Workload::H, How::Processes, 2, 1, 0.6),
            r(Workload::H, How::Serial, 1, 2, 0.51),
            r(Workload::H, How::Threads, 2, 2, 0.9),
            r(Workload::H, How::Processes, 2, 2, 0.7),
        ];
        fill_speedups(&mut v);
        v
    }

    #[test]
    fn blocks_split_the_batch_contiguously() {
        let (a, b) = ([1.0; 10], [2.0; 10]);
        let mut c = [0.0; 10];
        let parts = blocks(&a, &b, &mut c, 2, 2);
        let lens: Vec<usize> = parts.iter().map(|(a, _, c)| a.len().min(c.len())).collect();
        assert_eq!(lens, vec![6, 4]);
        assert_eq!(blocks(&a, &b, &mut c, 2, 7).len(), 7);
    }

    #[test]
    fn the_main_sentence_follows_the_numbers() {
        let none = PythonClassic::Skipped { why: "test".into() };
        let s = conclude(2, &rows(1.0), &none);
        assert!(s.contains("2.00×, 2.00× and 1.92×"), "{s}");
        assert!(s.contains("no GIL"), "{s}");
        let s = conclude(2, &rows(1.5), &none);
        assert!(
            s.contains("ahead of threads, beyond the intervals, on f"),
            "{s}"
        );
        // 3% apart with rounds that overlap: inside the intervals, so not a finding.
        let mut close = rows(1.0);
        let f = close
            .iter_mut()
            .find(|r| r.workload == Workload::F && r.how == How::Threads);
        f.unwrap().samples = Samples(vec![(0, 1.05), (1, 1.0), (2, 1.1), (3, 1.03), (4, 1.02)]);
        let s = conclude(2, &close, &none);
        assert!(s.contains("inside the intervals"), "{s}");
        let mut slow = rows(1.0);
        for r in slow.iter_mut().filter(|r| r.how != How::Serial) {
            r.samples.0.iter_mut().for_each(|s| s.1 *= 1.8);
        }
        fill_speedups(&mut slow);
        let s = conclude(2, &slow, &none);
        assert!(s.contains("neither came near 2×"), "{s}");
    }

    #[test]
    fn the_h_sentence_names_the_best_and_the_worst_nested() {
        let s = conclude_h(2, &rows(1.0));
        assert!(
            s.contains("1 thread × 2 BLAS threads (1.96× serial)"),
            "{s}"
        );
        assert!(s.contains("2 threads × 2 BLAS threads (K·N = 4"), "{s}");
        assert!(s.contains("1.11×"), "{s}");
    }

    #[test]
    fn the_sharing_sentence_quotes_the_worst_overhead() {
        let s = conclude_sharing(&rows(1.0));
        // h with 1 BLAS thread: 0.06 of 0.6 s is the largest share.
        assert!(
            s.contains("at most 10%") && s.contains("(h with 1 BLAS thread)"),
            "{s}"
        );
        assert!(s.contains("60 ms a row"), "{s}");
    }
}
