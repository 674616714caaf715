//! Oversubscription seen at run time: concurrent callers are counted, the peak is in the
//! report, and one warning (only one) goes through the `log` crate. Its own process: the
//! counters and the logger are process-wide.

use std::sync::{Barrier, Mutex};

use parlinalg::ndarray::Array2;
use parlinalg::threads::{blas_max_threads, report, set_blas_threads, Cores, Warning};

static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOGGED.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// The most BLAS threads one caller can be fixed at: the cores, capped at the loaded OpenBLAS's
/// compiled maximum (Debian's: 64), above which `set_blas_threads` refuses the count.
fn usable() -> usize {
    Cores::detect().count.min(blas_max_threads())
}

#[test]
fn fixed_threads_from_two_callers_are_counted_and_warned_once() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let cores = Cores::detect().count;

    // Alone, auto never oversubscribes.
    let a = Array2::<f64>::from_elem((384, 384), 0.5);
    parlinalg::matmul(&a, &a).unwrap();
    let r = report().unwrap();
    assert!(r.usage.peak_oversubscription <= 1.0, "{:?}", r.usage);
    assert!(LOGGED.lock().unwrap().is_empty());

    // Every caller fixed at all the cores, two callers at once: 2× the cores asked. Where the
    // cores exceed OpenBLAS's maximum, callers fixed at that maximum, as many as it takes to
    // ask for 2× the cores (more when it does not divide them).
    let each = usable();
    let callers = (2 * cores).div_ceil(each);
    let asked = callers * each;
    let factor = asked as f64 / cores as f64;
    // The warning goes out when the threads asked first exceed the cores: callers come in one
    // at a time, so at the first multiple of `each` above them.
    let first = (cores / each + 1) * each;
    set_blas_threads(each).unwrap();
    let start = Barrier::new(callers);
    std::thread::scope(|s| {
        for _ in 0..callers {
            s.spawn(|| {
                start.wait();
                for _ in 0..20 {
                    parlinalg::matmul(&a, &a).unwrap();
                }
            });
        }
    });
    let r = report().unwrap();
    assert!(
        r.usage.overlapping_calls > 0,
        "the callers never overlapped: {:?}",
        r.usage
    );
    assert_eq!(r.usage.peak_callers, callers);
    assert_eq!(r.usage.peak_threads_asked, asked);
    assert_eq!(r.usage.peak_oversubscription, factor);
    assert!(
        r.warnings
            .iter()
            .any(|w| matches!(w, Warning::Oversubscribed { factor: f } if *f == factor)),
        "{:?}",
        r.warnings
    );
    let logged = LOGGED.lock().unwrap().clone();
    assert_eq!(logged.len(), 1, "exactly one warning: {logged:?}");
    let said = format!("oversubscription {:.1}×", first as f64 / cores as f64);
    assert!(logged[0].contains(&said), "{} (wanted {said})", logged[0]);
    assert!(
        r.to_string().contains(&format!("{factor:.2}× the cores")),
        "{r}"
    );
}
