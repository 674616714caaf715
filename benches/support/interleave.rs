//! Two calls timed against each other the way a noisy machine allows: interleaved in one
//! process, in alternating order, round after round, and quoted as the median of the per-round
//! ratios. Used by `benches/lapack.rs --ratios` and by `benches/faer_peer` (which includes this
//! file by path: it is a crate of its own), so it depends on nothing but `std`.
#![allow(dead_code)] // each bench uses a part

use std::time::Instant;

/// The medians of one interleaved cell: seconds per call of each side, and of the per-round
/// ratios `ours / theirs`.
#[derive(Clone, Copy, Debug)]
pub struct Interleaved {
    pub ours: f64,
    pub theirs: f64,
    pub ratio: f64,
}

impl Interleaved {
    /// The cell's row of a Markdown table: routine, n, threads, both times, the ratio.
    pub fn row(&self, op: &str, n: usize, threads: usize) -> String {
        format!(
            "| {op} | {n} | {threads} | {} | {} | {:.3} |",
            show(self.ours),
            show(self.theirs),
            self.ratio
        )
    }
}

/// Times `ours` against `theirs` over `rounds` rounds: each round runs a batch of each (as many
/// calls as take about 20 ms, sized from one call of each), the first side alternating.
pub fn interleave(ours: &mut dyn FnMut(), theirs: &mut dyn FnMut(), rounds: usize) -> Interleaved {
    assert!(rounds > 0, "at least one round");
    let once = Instant::now();
    ours();
    theirs();
    let batch = ((0.02 / once.elapsed().as_secs_f64().max(1e-9)) as usize).max(1);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        t.elapsed().as_secs_f64() / batch as f64
    };
    let (mut a, mut b, mut r) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = time(ours);
            (x, time(theirs))
        } else {
            let y = time(theirs);
            (time(ours), y)
        };
        a.push(x);
        b.push(y);
        r.push(x / y);
    }
    Interleaved {
        ours: median(&mut a),
        theirs: median(&mut b),
        ratio: median(&mut r),
    }
}

/// Whether the cell `name` ("routine/t1/100") is selected by `filter`: the whole name, or a
/// prefix of it up to a `/` ("routine", "routine/t1"); every cell without a filter.
pub fn selected(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| name == f || name.starts_with(&format!("{f}/")))
}

/// Refuses to time two sides that do not compute the same thing: the largest difference of
/// `ours` and `theirs`, relative to the largest magnitude of `theirs`, must be within `tol`.
pub fn check_same(what: &str, ours: &[f64], theirs: &[f64], tol: f64) {
    let scale = theirs.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(theirs)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        ours.len() == theirs.len() && worst <= tol * scale,
        "{what}: the two sides differ by {worst:e} (scale {scale:e})"
    );
}

/// The median (the upper one of an even count); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds as µs below a millisecond, ms above.
pub fn show(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        format!("{:.2} ms", seconds * 1e3)
    }
}
