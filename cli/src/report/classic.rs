//! Section 1, the classic table in Rust: serial vs C threads vs C processes for g (exp over an
//! array), f (a scalar exp loop) and h (a batch of matrix products, with every BLAS-threads
//! choice), and what sharing memory with the processes costs.

use parlinalg::threads::Plan;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::report::cli::ClassicSettings;
use crate::report::processes::{self, Job, Sharing};
use crate::report::progress::Progress;
use crate::report::python::PythonClassic;
use crate::report::stats::{self, seconds};
use crate::report::workloads::{self, Workload};

/// How a row runs its workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum How {
    /// One thread.
    Serial,
    /// C threads of one process.
    Threads,
    /// C processes.
    Processes,
}

impl How {
    /// As in the tables.
    pub fn name(self) -> &'static str {
        match self {
            How::Serial => "serial",
            How::Threads => "threads",
            How::Processes => "processes",
        }
    }
}

/// One measured row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassicRow {
    pub workload: Workload,
    pub how: How,
    /// Threads or processes (1 for serial).
    pub outer: usize,
    /// BLAS threads in each (matters for h only).
    pub blas: usize,
    pub seconds: f64,
    /// Over the serial, 1-BLAS-thread row of the same workload.
    pub speedup: f64,
    /// Process rows: what the shared memory cost.
    pub sharing: Option<Sharing>,
}

/// The classic section: Rust's rows, Python's, and one sentence each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassicSection {
    pub settings: ClassicSettings,
    pub rust: Vec<ClassicRow>,
    pub python: PythonClassic,
    /// On the main table (serial, threads, processes; h on 1 BLAS thread).
    pub conclusion: String,
    /// On h with every BLAS-threads choice.
    pub h_conclusion: String,
    /// On what sharing memory cost.
    pub sharing_conclusion: String,
}

/// Estimated cost of the Rust rows, in seconds of one core, for the progress bar.
pub fn estimate(s: &ClassicSettings) -> f64 {
    let exp = s.elements as f64 * 8e-9 * (s.g_reps + s.f_reps) as f64;
    let h = 2.0 * (s.h_size as f64).powi(3) * s.h_batch as f64 / 30e9;
    3.0 * exp + 3.0 * h * s.h_blas.len() as f64 + 0.1 * (2 + s.h_blas.len()) as f64
}

/// Measures every Rust row.
///
/// # Errors
/// A failed process row or parlinalg error, as text.
pub fn measure(s: &ClassicSettings, progress: &mut Progress) -> anyhow::Result<Vec<ClassicRow>> {
    let mut rows = Vec::new();
    let mut x = vec![0.0; s.elements];
    stats::fill_exp_input(&mut x, 11);
    for (workload, reps) in [(Workload::G, s.g_reps), (Workload::F, s.f_reps)] {
        rows.extend(measure_exp(workload, &x, reps, s.workers, progress)?);
    }
    drop(x);
    rows.extend(measure_h(s, progress)?);
    fill_speedups(&mut rows);
    Ok(rows)
}

/// g or f (`reps` passes of exp over `x`): serially, on C threads and in C processes.
fn measure_exp(
    workload: Workload,
    x: &[f64],
    reps: usize,
    c: usize,
    progress: &mut Progress,
) -> anyhow::Result<Vec<ClassicRow>> {
    let cost = x.len() as f64 * 8e-9 * reps as f64;
    let run = |x: &[f64], out: &mut [f64], reps: usize| match workload {
        Workload::G => workloads::run_g(x, out, reps),
        _ => workloads::run_f(x, out, reps),
    };
    let mut rows = Vec::new();
    progress.label(format!("classic: {} serial", workload.name()));
    // Output buffers written once before the clock starts (pages faulted in), in every row.
    let mut out = vec![1.0; x.len()];
    let serial = Plan::new(1, 1)?;
    let t = seconds(|| {
        serial
            .run(|| run(x, &mut out, reps))
            .expect("a 1-thread pool")
    });
    workloads::check_exp(x, &out)?;
    rows.push(row(workload, How::Serial, 1, 1, t, None));
    progress.advance(cost);

    progress.label(format!("classic: {} on {c} threads", workload.name()));
    let mut outs = vec![vec![1.0; x.len()]; c];
    let threads = Plan::new(c, 1)?;
    let t = seconds(|| {
        threads
            .run(|| {
                outs.par_iter_mut()
                    .with_max_len(1)
                    .enumerate()
                    .for_each(|(w, out)| run(x, out, workloads::share(reps, c, w)))
            })
            .expect("a pool of C threads")
    });
    for (w, out) in outs.iter().enumerate() {
        if workloads::share(reps, c, w) > 0 {
            workloads::check_exp(x, out)?;
        }
    }
    drop(outs);
    rows.push(row(workload, How::Threads, c, 1, t, None));
    progress.advance(cost);

    progress.label(format!("classic: {} in {c} processes", workload.name()));
    let sharing = processes::run(&Job::Exp { workload, x, reps }, c)?;
    let t = sharing.total_s();
    rows.push(row(workload, How::Processes, c, 1, t, Some(sharing)));
    progress.advance(cost + 0.1);
    Ok(rows)
}

/// h (a batch of products) with every BLAS-threads choice: serially, on C outer threads and in
/// C processes.
fn measure_h(s: &ClassicSettings, progress: &mut Progress) -> anyhow::Result<Vec<ClassicRow>> {
    let (c, batch, n) = (s.workers, s.h_batch, s.h_size);
    let a = stats::batch(batch, n, 21);
    let b = stats::batch(batch, n, 22);
    let (a_s, b_s) = (
        a.as_slice().expect("C order"),
        b.as_slice().expect("C order"),
    );
    let cost = 2.0 * (n as f64).powi(3) * batch as f64 / 30e9;
    // BLAS buffers and threads started before the first timed product.
    parlinalg::matmul(&stats::matrix(64, 1), &stats::matrix(64, 2))?;
    let mut rows = Vec::new();
    for &blas in &s.h_blas {
        for (how, outer) in [(How::Serial, 1), (How::Threads, c)] {
            progress.label(format!("classic: h, {outer} outer × {blas} BLAS"));
            let plan = Plan::new(outer, blas)?;
            // As the processes do: each worker a contiguous block of products, written into an
            // output whose pages were touched before the clock starts.
            let mut out = vec![1.0; a_s.len()];
            let t = seconds(|| {
                plan.run(|| {
                    blocks(a_s, b_s, &mut out, n * n, outer)
                        .into_par_iter()
                        .with_max_len(1)
                        .try_for_each(|(a, b, c)| workloads::run_h(a, b, c, n))
                })
                .expect("a pool of K threads")
                .expect("square products")
            });
            workloads::check_products(a_s, b_s, &out, n)?;
            rows.push(row(Workload::H, how, outer, blas, t, None));
            progress.advance(cost);
        }
        progress.label(format!("classic: h, {c} processes × {blas} BLAS"));
        let job = Job::Products {
            a: a_s,
            b: b_s,
            n,
            blas,
        };
        let sharing = processes::run(&job, c)?;
        let t = sharing.total_s();
        rows.push(row(Workload::H, How::Processes, c, blas, t, Some(sharing)));
        progress.advance(cost + 0.1);
    }
    Ok(rows)
}

/// The batch split into `workers` contiguous blocks of products (as `processes` splits it).
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

fn row(
    workload: Workload,
    how: How,
    outer: usize,
    blas: usize,
    seconds: f64,
    sharing: Option<Sharing>,
) -> ClassicRow {
    ClassicRow {
        workload,
        how,
        outer,
        blas,
        seconds,
        speedup: f64::NAN,
        sharing,
    }
}

/// Speedup of every row over the serial 1-BLAS row of its workload.
pub fn fill_speedups(rows: &mut [ClassicRow]) {
    let base: Vec<(Workload, f64)> = rows
        .iter()
        .filter(|r| r.how == How::Serial && r.blas == 1)
        .map(|r| (r.workload, r.seconds))
        .collect();
    for r in rows.iter_mut() {
        if let Some((_, t)) = base.iter().find(|(w, _)| *w == r.workload) {
            r.speedup = t / r.seconds;
        }
    }
}

/// The row of `workload` run `how` with `blas` BLAS threads.
pub fn find(rows: &[ClassicRow], workload: Workload, how: How, blas: usize) -> Option<&ClassicRow> {
    rows.iter()
        .find(|r| r.workload == workload && r.how == how && r.blas == blas)
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
    let behind: Vec<&str> = ["g", "f", "h"]
        .iter()
        .zip(t.iter().zip(&p))
        .filter(|(_, (t, p))| **t < 0.95 * **p)
        .map(|(name, _)| *name)
        .collect();
    let best_any = t.iter().chain(&p).copied().fold(0.0, f64::max);
    let verdict = if best_any < 0.6 * workers as f64 {
        format!(
            "neither came near {workers}× (at best {best_any:.2}×): other programs were probably \
             using the cores, so rerun on an idle machine"
        )
    } else if behind.is_empty() {
        "threads did everything processes did, without the spawn, since Rust has no GIL".to_owned()
    } else {
        format!(
            "processes were more than 5% ahead of threads on {}",
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
    let shared: Vec<(&ClassicRow, &Sharing)> = rust
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
pub fn overhead_fraction(s: &Sharing) -> f64 {
    (s.spawn_s + s.exit_s) / s.total_s().max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(workload: Workload, how: How, outer: usize, blas: usize, seconds: f64) -> ClassicRow {
        let sharing = (how == How::Processes).then_some(Sharing {
            bytes: 1 << 20,
            setup_s: 0.001,
            spawn_s: 0.05,
            compute_s: seconds - 0.06,
            exit_s: 0.01,
        });
        row(workload, how, outer, blas, seconds, sharing)
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
        assert!(s.contains("ahead of threads on f"), "{s}");
        assert!(!s.contains("no GIL"), "{s}");
        let mut slow = rows(1.0);
        for r in &mut slow {
            r.seconds = if r.how == How::Serial {
                r.seconds
            } else {
                r.seconds * 1.8
            };
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
