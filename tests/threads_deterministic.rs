//! `PARLINALG_DETERMINISTIC=1` (issue 15, item 11): under `auto`, the bits of a product do not
//! depend on what other threads do; nor under a fixed count. Factorisations small enough to
//! run on one thread run beside the products (with OpenBLAS before 0.3.27 the thread layer
//! lowers the process-wide count for them, and the products must not see it). Tested in a
//! child process, which reads its environment once; a watchdog kills a child that does not
//! finish.

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

/// A 100×100 system (whose LU can use one thread) solved, and the determinant of the matrix:
/// their bits.
fn factorise(a: &Array2<f64>) -> Vec<u64> {
    let b = a.column(0).to_owned();
    let x = parlinalg::solve(a, &b).unwrap();
    let d = parlinalg::det(a).unwrap();
    x.iter().map(|v| v.to_bits()).chain([d.to_bits()]).collect()
}

/// The child's side: each product and factorisation alone, then the four products
/// concurrently with two threads of factorisations (several rounds); prints how many
/// concurrent results differ from the solitary ones. Does nothing in the parent.
#[test]
#[ignore = "run by the harness in a child process (tests/common/child.rs)"]
fn child_entry() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let problems = products();
    let systems: Vec<Array2<f64>> = (0..2u64)
        .map(|p| {
            let mut rng = SmallRng::seed_from_u64(p + 11);
            Array2::from_shape_simple_fn((100, 100), move || rng.random_range(-0.5..0.5))
                + Array2::<f64>::eye(100) * 4.0
        })
        .collect();
    let alone: Vec<Vec<u64>> = problems.iter().map(|(a, b)| solve(a, b)).collect();
    let systems_alone: Vec<Vec<u64>> = systems.iter().map(factorise).collect();
    let (mut differing, mut factorisations_differing) = (0, 0);
    for _ in 0..5 {
        let (results, factorised): (Vec<Vec<u64>>, Vec<Vec<Vec<u64>>>) = std::thread::scope(|s| {
            // The factorisations first, so that the products start while they run.
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let factorising: Vec<_> = systems
                .iter()
                .map(|a| {
                    let started = started_tx.clone();
                    s.spawn(move || {
                        let mut runs = vec![factorise(a)];
                        started.send(()).unwrap();
                        runs.extend((0..30).map(|_| factorise(a)));
                        runs
                    })
                })
                .collect();
            for _ in &systems {
                started_rx.recv().unwrap();
            }
            let handles: Vec<_> = problems
                .iter()
                .map(|(a, b)| s.spawn(move || solve(a, b)))
                .collect();
            (
                handles.into_iter().map(|h| h.join().unwrap()).collect(),
                factorising.into_iter().map(|h| h.join().unwrap()).collect(),
            )
        });
        differing += results.iter().zip(&alone).filter(|(r, a)| r != a).count();
        factorisations_differing += factorised
            .iter()
            .zip(&systems_alone)
            .map(|(runs, a)| runs.iter().filter(|r| *r != a).count())
            .sum::<usize>();
    }
    let r = parlinalg::threads::report().unwrap();
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({
            "differing": differing,
            "factorisations_differing": factorisations_differing,
            "overlapping": r.usage.overlapping_calls,
        })
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

/// The bits of every result of a child, alone and concurrently, are the same; and the
/// scenario did overlap (else it would prove nothing).
fn assert_same_bits(r: &Value) {
    assert_eq!(
        r["differing"], 0,
        "products differed between solitary and concurrent runs: {r}"
    );
    assert_eq!(
        r["factorisations_differing"], 0,
        "factorisations differed between solitary and concurrent runs: {r}"
    );
    let overlapping = r["overlapping"].as_u64().unwrap();
    assert!(overlapping > 0, "{r}");
}

#[test]
fn deterministic_mode_gives_the_same_bits_alone_and_concurrently() {
    assert_same_bits(&child(
        &[("PARLINALG_DETERMINISTIC", "1")],
        Duration::from_secs(120),
    ));
}

/// A fixed count of 2 (above the cores on a 1-core machine: still honoured) gives the same
/// bits whatever other threads do, factorisations beside the products included.
#[test]
fn a_fixed_count_gives_the_same_bits_alone_and_concurrently() {
    assert_same_bits(&child(
        &[("PARLINALG_BLAS_THREADS", "2")],
        Duration::from_secs(120),
    ));
}
