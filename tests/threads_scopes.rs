//! Scopes and plans: LIFO nesting, restore on drop and during a panic, the closure forms, and
//! the decided semantics of overlapping scopes on several threads (smallest innermost request;
//! the baseline is back when the last scope closes, in any order).
//!
//! The BLAS thread count is process-wide, so the tests of this file take turns.

use std::sync::{Barrier, Mutex};

use parlinalg::threads::{
    blas_threads, blas_threads_scope, set_blas_threads, with_blas_threads, Plan,
};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    let guard = TURN.lock().unwrap_or_else(|p| p.into_inner());
    set_blas_threads(2).unwrap(); // a known baseline, different from the scopes below
    guard
}

#[test]
fn scopes_nest_lifo_and_restore() {
    let _t = turn();
    assert_eq!(blas_threads(), 2);
    {
        let outer = blas_threads_scope(1).unwrap();
        assert_eq!((blas_threads(), outer.threads()), (1, 1));
        {
            let _inner = blas_threads_scope(3).unwrap();
            assert_eq!(blas_threads(), 3, "the innermost scope of a thread applies");
            {
                let _innermost = blas_threads_scope(1).unwrap();
                assert_eq!(blas_threads(), 1);
            }
            assert_eq!(blas_threads(), 3);
        }
        assert_eq!(blas_threads(), 1);
    }
    assert_eq!(blas_threads(), 2);
}

#[test]
fn dropping_out_of_order_still_restores_the_baseline() {
    let _t = turn();
    let a = blas_threads_scope(1).unwrap();
    let b = blas_threads_scope(3).unwrap();
    drop(a); // not LIFO
    assert_eq!(blas_threads(), 3);
    drop(b);
    assert_eq!(blas_threads(), 2);
}

#[test]
fn a_panic_inside_a_scope_restores_the_count() {
    let _t = turn();
    let result = std::panic::catch_unwind(|| {
        let _s = blas_threads_scope(1).unwrap();
        assert_eq!(blas_threads(), 1);
        panic!("boom");
    });
    assert!(result.is_err());
    assert_eq!(blas_threads(), 2);
    let result = std::panic::catch_unwind(|| with_blas_threads(1, || panic!("boom")));
    assert!(result.is_err());
    assert_eq!(blas_threads(), 2);
}

#[test]
fn the_closure_form_returns_the_value() {
    let _t = turn();
    let seen = with_blas_threads(1, blas_threads).unwrap();
    assert_eq!(seen, 1);
    assert_eq!(blas_threads(), 2);
}

#[test]
fn bad_counts_are_errors_and_change_nothing() {
    let _t = turn();
    let too_many = parlinalg::threads::blas_max_threads() + 1;
    for n in [0, too_many, 1 << 20, usize::MAX] {
        let err = blas_threads_scope(n).unwrap_err();
        assert!(
            matches!(err, parlinalg::Error::InvalidThreadCount { .. }),
            "{err:?}"
        );
        assert!(set_blas_threads(n).is_err());
        assert!(Plan::new(1, n).is_err());
        assert!(Plan::new(n.max(1 << 13), 1).is_err());
    }
    assert_eq!(blas_threads(), 2);
}

/// Two threads open overlapping scopes: the count is the smaller request while both are
/// open, the survivor's own request when one closes, and the baseline when both have.
#[test]
fn overlapping_scopes_on_two_threads() {
    let _t = turn();
    let step = Barrier::new(2);
    std::thread::scope(|s| {
        let t1 = s.spawn(|| {
            let g = blas_threads_scope(1).unwrap();
            step.wait(); // 1: both open
            step.wait(); // 2: checked
            drop(g);
            step.wait(); // 3: t1 closed
            step.wait(); // 4: checked
        });
        let t2 = s.spawn(|| {
            let g = blas_threads_scope(3).unwrap();
            step.wait(); // 1
            assert_eq!(blas_threads(), 1, "overlap: the smallest innermost request");
            step.wait(); // 2
            step.wait(); // 3
            assert_eq!(blas_threads(), 3, "t1 closed first: t2's request");
            step.wait(); // 4
            drop(g);
        });
        t1.join().unwrap();
        t2.join().unwrap();
    });
    assert_eq!(
        blas_threads(),
        2,
        "both closed: the baseline, not a stale value (#205)"
    );
}

#[test]
fn plans_run_k_outer_with_n_blas_and_restore() {
    let _t = turn();
    let plan = Plan::new(3, 1).unwrap();
    let (outer, blas) = plan
        .run(|| (rayon::current_num_threads(), blas_threads()))
        .unwrap();
    assert_eq!((outer, blas), (3, 1));
    assert_eq!(blas_threads(), 2);
    {
        let _g = Plan::new(1, 1).unwrap().enter().unwrap();
        assert_eq!(blas_threads(), 1);
    }
    assert_eq!(blas_threads(), 2);
    // The BLAS count applies on the pool's threads too (process-wide in pthreads OpenBLAS).
    let inside: Vec<usize> = Plan::new(2, 1)
        .unwrap()
        .run(|| {
            use rayon::prelude::*;
            (0..16).into_par_iter().map(|_| blas_threads()).collect()
        })
        .unwrap();
    assert!(inside.iter().all(|&n| n == 1), "{inside:?}");
}
