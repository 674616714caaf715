//! The progress bar on stderr (`indicatif`): steps weighted by their estimated cost, time left
//! extrapolated from the time the finished steps really took.
//!
//! On a terminal indicatif redraws the bar in place; elsewhere (a pipe, CI) a line is printed
//! every few seconds, or nothing when silenced. A child process relays its steps to the parent's
//! bar as `@@label` / `@@progress` lines on stdout: that thin layer is ours.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Units of estimated cost per bar position: costs are in seconds, positions are integers.
const SCALE: f64 = 1000.0;

/// A weighted progress bar.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    last_line: Instant,
    /// Plain lines instead of a redrawn bar (stderr is not a terminal).
    lines: bool,
    silent: bool,
    /// A child process's bar: labels and steps go to stdout, for the parent's bar.
    relay: bool,
}

impl Progress {
    /// A bar for steps whose estimated costs add up to `total` (any unit, e.g. seconds).
    pub fn new(total: f64, silent: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if silent || !tty {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(positions(total).max(1)), target);
        bar.set_style(
            ProgressStyle::with_template("[{bar:28}] {percent:>3}% ~{eta} left | {msg}")
                .expect("a valid template")
                .progress_chars("#>-"),
        );
        let now = Instant::now();
        Progress {
            bar,
            start: now,
            last_line: now,
            lines: !tty && !silent,
            silent,
            relay: false,
        }
    }

    /// A child process's bar: relays to the parent's through stdout.
    pub fn relay() -> Self {
        Progress {
            relay: true,
            ..Progress::new(1.0, true)
        }
    }

    /// Says what runs now.
    pub fn label(&mut self, label: impl Into<String>) {
        let label = label.into();
        if self.relay {
            println!("@@label {label}");
        }
        self.bar.set_message(label);
        self.line(false);
    }

    /// Marks `weight` more of the estimated total as done.
    pub fn advance(&mut self, weight: f64) {
        if self.relay {
            println!("@@progress {weight}");
            return;
        }
        self.bar.inc(positions(weight));
        self.line(false);
    }

    /// Seconds since the bar started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Prints `text` on stdout, with the bar moved out of the way.
    pub fn print(&mut self, text: &str) {
        self.bar.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        });
        self.line(true);
    }

    /// Removes the bar (the run is over).
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
        if !self.silent {
            eprintln!("report: done in {:.0} s", self.elapsed());
        }
    }

    /// Off a terminal: one line every few seconds (or now, when `force`).
    fn line(&mut self, force: bool) {
        if self.lines && (force || self.last_line.elapsed() >= Duration::from_secs(5)) {
            self.last_line = Instant::now();
            let len = self.bar.length().unwrap_or(1).max(1);
            let pct = 100.0 * self.bar.position() as f64 / len as f64;
            let left = match self.bar.position() {
                0 => "estimating".to_owned(),
                _ => format!("~{} left", fmt_duration(self.bar.eta())),
            };
            eprintln!("report: {pct:>3.0}% {left} | {}", self.bar.message());
        }
    }
}

fn positions(weight: f64) -> u64 {
    (weight.max(0.0) * SCALE).round() as u64
}

/// `1 min 05 s`, `42 s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_secs(42)), "42 s");
        assert_eq!(fmt_duration(Duration::from_secs(65)), "1 min 05 s");
    }

    #[test]
    fn steps_advance_the_bar_by_their_weight() {
        let mut p = Progress::new(10.0, true);
        p.advance(2.5);
        assert_eq!(p.bar.position(), 2500);
        assert_eq!(p.bar.length(), Some(10_000));
        p.label("grid");
        assert_eq!(p.bar.message(), "grid");
    }
}
