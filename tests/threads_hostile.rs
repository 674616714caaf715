//! Scopes under hostile concurrency (issue 15): an open scope holds at every instant while
//! other threads make unscoped calls, and looking at the report changes nothing. Its own file:
//! the scenarios set the process-wide count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use parlinalg::ndarray::Array2;
use parlinalg::threads::{blas_threads, blas_threads_scope, report, Warning};

/// One and then two threads make unscoped 64³ products (which OpenBLAS may thread) while this
/// thread opens and closes scopes of 1 and reads the count in a tight loop: every read inside
/// a scope must be 1. Bounded by time, checked by count: any violation fails.
fn scope_holds_beside(workers: usize, run: Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let a = Array2::from_shape_fn((64, 64), |(i, j)| ((i * 7 + j * 3 + w) % 11) as f64);
                let mut products = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    parlinalg::matmul(&a, &a).unwrap();
                    products += 1;
                }
                products
            })
        })
        .collect();
    let deadline = Instant::now() + run;
    let (mut reads, mut violations, mut scopes) = (0u64, 0u64, 0u64);
    let mut seen = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        let scope = blas_threads_scope(1).unwrap();
        scopes += 1;
        for _ in 0..200 {
            let n = blas_threads();
            reads += 1;
            if n != 1 {
                violations += 1;
                seen.insert(n);
            }
        }
        drop(scope);
    }
    stop.store(true, Ordering::Relaxed);
    let products: u64 = handles.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(products > 0 && scopes > 0);
    assert_eq!(
        violations, 0,
        "{violations} of {reads} reads inside {scopes} scopes of 1 saw {seen:?} \
         ({products} unscoped products on {workers} threads ran meanwhile)"
    );
}

#[test]
fn an_open_scope_is_never_overwritten_by_unscoped_callers() {
    scope_holds_beside(1, Duration::from_secs(2));
    scope_holds_beside(2, Duration::from_secs(2));
}

/// Another thread holds a scope of 1; the report must neither disturb it nor mistake it for
/// an OpenBLAS that ignores `openblas_set_num_threads`.
#[test]
fn the_report_is_read_only_while_another_thread_holds_a_scope() {
    let ready = Arc::new(Barrier::new(2));
    let done = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicU64::new(0));
    let holder = {
        let (ready, done, wrong) = (Arc::clone(&ready), Arc::clone(&done), Arc::clone(&wrong));
        std::thread::spawn(move || {
            let _one = blas_threads_scope(1).unwrap();
            ready.wait();
            while !done.load(Ordering::Relaxed) {
                if blas_threads() != 1 {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    ready.wait();
    for _ in 0..200 {
        let r = report().unwrap();
        assert_eq!(r.blas_threads_scoped, Some(1));
        assert!(
            !r.warnings
                .iter()
                .any(|w| matches!(w, Warning::SetNumThreadsIgnored { .. })),
            "false warning while another thread holds a scope: {:?}",
            r.warnings
        );
    }
    done.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "the report changed the count a scope holds"
    );
}
