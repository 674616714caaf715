//! The plan pool cache is bounded (issue 15): after many distinct plans, the threads of the
//! pools that left the cache exit. Its own file: it counts every thread of this process.

use parlinalg::threads::Plan;

/// Threads of this process now (entries of /proc/self/task).
fn live_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

#[test]
fn many_distinct_plans_leave_a_bounded_number_of_threads() {
    twenty_thousand_nested_scopes_open_and_close();
    const LARGEST: usize = 64;
    let before = live_threads();
    for k in 1..=LARGEST {
        let ran = Plan::new(k, 1)
            .unwrap()
            .run(rayon::current_num_threads)
            .unwrap();
        assert_eq!(ran, k);
    }
    // The cache keeps at most PLAN_POOL_CACHE pools of at most LARGEST threads; every other
    // pool was dropped and its threads exit (asynchronously: wait for them, with a deadline
    // far above the time they need, so that a leak fails rather than hangs).
    let bound = before + parlinalg::threads::PLAN_POOL_CACHE * LARGEST;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut now = live_threads();
    while now > bound && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        now = live_threads();
    }
    assert!(
        now <= bound,
        "{now} threads alive after plans of 1..={LARGEST} threads (were {before}; bound {bound}; \
         without a bound on the cache: {})",
        before + LARGEST * (LARGEST + 1) / 2
    );
    // And a cached pool is still reused: the same plan again builds nothing new.
    let again = live_threads();
    Plan::new(LARGEST, 1).unwrap().run(|| ()).unwrap();
    assert!(live_threads() <= again + 1);
}

/// 20,000 nested scopes open and close (dropped front to back, the worst order for a search);
/// the cost is checked by an operation count in the controller's unit tests, not by time.
/// Called from the one test of this file, so that no other scope (a plan's) overlaps it.
fn twenty_thousand_nested_scopes_open_and_close() {
    let base = parlinalg::threads::blas_threads();
    let guards: Vec<_> = (0..20_000)
        .map(|i| parlinalg::threads::blas_threads_scope(1 + i % 2).unwrap())
        .collect();
    assert_eq!(
        parlinalg::threads::blas_threads(),
        2,
        "the innermost (1 + 19999 % 2) applies"
    );
    drop(guards);
    assert_eq!(parlinalg::threads::blas_threads(), base);
    let r = parlinalg::threads::report().unwrap();
    assert_eq!(r.blas_threads_scoped, None);
}
