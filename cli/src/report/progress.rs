//! The progress bar on stderr: steps weighted by their estimated cost, time left extrapolated
//! from the time the finished steps really took.
//!
//! On a terminal the bar redraws in place; otherwise (a pipe, CI, a test) it prints a line
//! every few seconds, or nothing at all when silenced.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A weighted progress bar.
pub struct Progress {
    total: f64,
    done: f64,
    start: Instant,
    last_line: Instant,
    label: String,
    tty: bool,
    silent: bool,
    /// A child process's bar: labels and steps go to stdout as `@@label` / `@@progress`
    /// lines, for the parent's bar.
    relay: bool,
}

impl Progress {
    /// A bar for steps whose estimated costs add up to `total` (any unit, e.g. seconds).
    pub fn new(total: f64, silent: bool) -> Self {
        let now = Instant::now();
        Progress {
            total: total.max(f64::MIN_POSITIVE),
            done: 0.0,
            start: now,
            last_line: now,
            label: String::new(),
            tty: std::io::stderr().is_terminal(),
            silent,
            relay: false,
        }
    }

    /// A child process's bar: relays to the parent's through stdout.
    pub fn relay() -> Self {
        Progress {
            relay: true,
            silent: true,
            ..Progress::new(1.0, true)
        }
    }

    /// Says what runs now.
    pub fn label(&mut self, label: impl Into<String>) {
        self.label = label.into();
        if self.relay {
            println!("@@label {}", self.label);
        }
        self.draw(false);
    }

    /// Marks `weight` more of the estimated total as done.
    pub fn advance(&mut self, weight: f64) {
        if self.relay {
            println!("@@progress {weight}");
            return;
        }
        self.done = (self.done + weight).min(self.total);
        self.draw(false);
    }

    /// Seconds since the bar started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Time left, extrapolated: elapsed × remaining / done (None before the first step ends).
    pub fn eta(&self) -> Option<Duration> {
        (self.done > 0.0).then(|| {
            let rate = self.elapsed() / self.done;
            Duration::from_secs_f64(rate * (self.total - self.done).max(0.0))
        })
    }

    /// Prints `text` on stdout, with the bar moved out of the way.
    pub fn print(&mut self, text: &str) {
        self.clear();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.draw(true);
    }

    /// Removes the bar (the run is over).
    pub fn finish(&mut self) {
        self.clear();
        if !self.silent {
            eprintln!("report: done in {:.0} s", self.elapsed());
        }
    }

    fn clear(&self) {
        if self.tty && !self.silent {
            eprint!("\r\x1b[2K");
        }
    }

    fn draw(&mut self, force: bool) {
        if self.silent {
            return;
        }
        let frac = self.done / self.total;
        let left = self.eta().map_or_else(
            || "estimating".to_owned(),
            |d| format!("~{} left", fmt_duration(d)),
        );
        if self.tty {
            const WIDTH: usize = 28;
            let filled = ((frac * WIDTH as f64).round() as usize).min(WIDTH);
            eprint!(
                "\r\x1b[2K[{}{}] {:>3.0}% {left} | {}",
                "#".repeat(filled),
                "-".repeat(WIDTH - filled),
                frac * 100.0,
                self.label
            );
        } else if force || self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            eprintln!("report: {:>3.0}% {left} | {}", frac * 100.0, self.label);
        }
    }
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
    fn eta_extrapolates_from_done_work() {
        let mut p = Progress::new(10.0, true);
        assert!(p.eta().is_none());
        p.advance(5.0);
        let eta = p.eta().unwrap().as_secs_f64();
        assert!(eta <= p.elapsed() + 1e-3, "{eta}");
        p.advance(100.0);
        assert_eq!(p.eta().unwrap(), Duration::ZERO);
    }
}
