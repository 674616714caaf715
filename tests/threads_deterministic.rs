//! `PARLINALG_DETERMINISTIC=1` (issue 15, item 11): under `auto`, the bits of a product do not
//! depend on what other threads do. Tested in a child process, which reads its environment
//! once; a watchdog kills a child that does not finish.

mod common;

use std::time::Duration;

use common::child::TestChild;
use parlinalg::ndarray::Array2;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng};
use serde_json::Value;

const CHILD_VAR: &str = "PARLINALG_TEST_DETERMINISTIC_CHILD";

/// Four seeded problems: a 200×200 product and a dot of length 200 000 each (OpenBLAS threads
/// `ddot` by splitting the sum, so its rounding depends on the thread count).
fn products() -> Vec<(Array2<f64>, Array2<f64>)> {
    (0..4u64)
        .map(|p| {
            let mut rng = SmallRng::seed_from_u64(p + 1);
            let mut next = move || rng.random_range(-0.5..0.5);
            let a = Array2::from_shape_simple_fn((200, 1000), &mut next);
            let b = Array2::from_shape_simple_fn((1000, 200), &mut next);
            (a, b)
        })
        .collect()
}

/// The product's bits, then the dot of the two operands' elements seen as vectors.
fn solve(a: &Array2<f64>, b: &Array2<f64>) -> Vec<u64> {
    let c = parlinalg::matmul(a, b).unwrap();
    let x = a.view().into_shape_with_order(a.len()).unwrap();
    let y = b.view().into_shape_with_order(b.len()).unwrap();
    let d = parlinalg::dot(&x, &y).unwrap();
    c.iter().map(|v| v.to_bits()).chain([d.to_bits()]).collect()
}

/// The child's side: each product alone, then all four concurrently (several rounds); prints
/// how many concurrent results differ from the solitary ones. Does nothing in the parent.
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let problems = products();
    let alone: Vec<Vec<u64>> = problems.iter().map(|(a, b)| solve(a, b)).collect();
    let mut differing = 0;
    for _ in 0..5 {
        let results: Vec<Vec<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = problems
                .iter()
                .map(|(a, b)| s.spawn(move || solve(a, b)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        differing += results.iter().zip(&alone).filter(|(r, a)| r != a).count();
    }
    let r = parlinalg::threads::report().unwrap();
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({ "differing": differing, "overlapping": r.usage.overlapping_calls })
    );
}

/// Runs the child with `vars`, killing it after `limit`; returns its result.
fn child(vars: &[(&str, &str)], limit: Duration) -> Value {
    TestChild::entry()
        .remove(&[
            "PARLINALG_BLAS_THREADS",
            "OPENBLAS_NUM_THREADS",
            "GOTO_NUM_THREADS",
            "OMP_NUM_THREADS",
            "PARLINALG_DETERMINISTIC",
        ])
        .env(CHILD_VAR, "1")
        .envs(vars.iter().copied())
        .timeout(limit)
        .result()
}

#[test]
fn deterministic_mode_gives_the_same_bits_alone_and_concurrently() {
    let r = child(
        &[("PARLINALG_DETERMINISTIC", "1")],
        Duration::from_secs(120),
    );
    assert_eq!(
        r["differing"], 0,
        "products differed between solitary and concurrent runs: {r}"
    );
    // The scenario did overlap (else it would prove nothing).
    let overlapping = r["overlapping"].as_u64().unwrap();
    assert!(overlapping > 0, "{r}");
}
