//! Oversubscription seen at run time: concurrent callers are counted, the peak is in the
//! report, and one warning (only one) goes through the `log` crate. Its own process: the
//! counters and the logger are process-wide.

use std::sync::{Barrier, Mutex};

use parlinalg::ndarray::Array2;
use parlinalg::threads::{report, set_blas_threads, Cores, Warning};

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

    // Every caller fixed at all the cores, two callers at once: 2× the cores asked.
    set_blas_threads(cores).unwrap();
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        for _ in 0..2 {
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
        "the two callers never overlapped: {:?}",
        r.usage
    );
    assert_eq!(r.usage.peak_callers, 2);
    assert_eq!(r.usage.peak_threads_asked, 2 * cores);
    assert_eq!(r.usage.peak_oversubscription, 2.0);
    assert!(
        r.warnings
            .iter()
            .any(|w| matches!(w, Warning::Oversubscribed { factor } if *factor == 2.0)),
        "{:?}",
        r.warnings
    );
    let logged = LOGGED.lock().unwrap().clone();
    assert_eq!(logged.len(), 1, "exactly one warning: {logged:?}");
    assert!(logged[0].contains("oversubscription 2.0×"), "{}", logged[0]);
    assert!(r.to_string().contains("2.00× the cores"), "{r}");
}
