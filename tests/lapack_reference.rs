//! Every LAPACK case of the numpy reference (solve, solve with several right-hand sides, inv,
//! det, cholesky_lower, eigvalsh, singular_values, lstsq, and the `*_must_fail` cases), with the
//! manifest's tolerances, through every layout of `common::matrix_layouts` (and
//! `vector_layouts` for vector right-hand sides).

mod common;

use common::{assert_all_close, cases, close, matrix_layouts, vector_layouts, Case};
use ndarray::{ArrayD, Dimension};
use ndarray_npy::ReadableElement;
use parlinalg::{Error, Float};

const OPS: &[&str] = &[
    "solve",
    "inv",
    "det",
    "cholesky_lower",
    "eigvalsh",
    "singular_values",
    "lstsq",
    "solve_must_fail",
    "inv_must_fail",
    "cholesky_must_fail",
];

fn expect_close<T: Float, D: Dimension>(
    case: &Case,
    got: parlinalg::Result<ndarray::Array<T, D>>,
    want: &ArrayD<T>,
    ctx: &str,
) {
    let got = got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_all_close(
        got.view().into_dyn(),
        want.view(),
        case.rtol,
        case.atol,
        ctx,
    );
}

/// Runs `case` through every layout; returns how many calls were checked.
fn check<T: Float + ReadableElement>(case: &Case) -> usize {
    let a = case.load2::<T>("a");
    let mut calls = 0;
    for la in matrix_layouts(&a) {
        let va = la.view();
        let ctx = format!("{} a:{}", case.name, la.name);
        match case.op.as_str() {
            "solve" => {
                let want = case.load::<T>("expected");
                let b = case.load::<T>("b");
                match b.ndim() {
                    1 => {
                        let b = b.into_dimensionality().unwrap();
                        for lb in vector_layouts(&b) {
                            let got = parlinalg::solve(&va, &lb.view());
                            expect_close(case, got, &want, &format!("{ctx} b:{}", lb.name));
                            calls += 1;
                        }
                    }
                    2 => {
                        let b = b.into_dimensionality().unwrap();
                        for lb in matrix_layouts(&b) {
                            let got = parlinalg::solve(&va, &lb.view());
                            expect_close(case, got, &want, &format!("{ctx} b:{}", lb.name));
                            calls += 1;
                        }
                    }
                    d => panic!("{}: b has {d} dimensions", case.name),
                }
            }
            "inv" => {
                expect_close(case, parlinalg::inv(&va), &case.load("expected"), &ctx);
                calls += 1;
            }
            "det" => {
                let got = parlinalg::det(&va).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let want = case.load0::<T>("expected");
                let (g, w) = (got.to_f64().unwrap(), want.to_f64().unwrap());
                assert!(
                    close(g, w, case.rtol, case.atol),
                    "{ctx}: got {g:e}, want {w:e}"
                );
                calls += 1;
            }
            "cholesky_lower" => {
                expect_close(case, parlinalg::cholesky(&va), &case.load("expected"), &ctx);
                calls += 1;
            }
            "eigvalsh" => {
                expect_close(case, parlinalg::eigvalsh(&va), &case.load("expected"), &ctx);
                calls += 1;
            }
            "singular_values" => {
                let got = parlinalg::singular_values(&va);
                expect_close(case, got, &case.load("expected"), &ctx);
                calls += 1;
            }
            "lstsq" => {
                let want = case.load::<T>("expected");
                let b = case.load1::<T>("b");
                for lb in vector_layouts(&b) {
                    let got = parlinalg::lstsq(&va, &lb.view());
                    expect_close(case, got, &want, &format!("{ctx} b:{}", lb.name));
                    calls += 1;
                }
            }
            "solve_must_fail" | "inv_must_fail" => {
                // An exactly zero pivot is `Singular`; a matrix singular only to working
                // precision is `IllConditioned`. Either is the right refusal; a number is not.
                let got = if case.op == "inv_must_fail" {
                    parlinalg::inv(&va).map(drop)
                } else {
                    let b = case.load1::<T>("b");
                    parlinalg::solve(&va, &b).map(drop)
                };
                assert!(
                    matches!(
                        got,
                        Err(Error::Singular { .. } | Error::IllConditioned { .. })
                    ),
                    "{ctx}: expected a singular-matrix error, got {got:?}"
                );
                calls += 1;
            }
            "cholesky_must_fail" => {
                let got = parlinalg::cholesky(&va);
                assert!(
                    matches!(got, Err(Error::NotPositiveDefinite { .. })),
                    "{ctx}: expected NotPositiveDefinite, got {got:?}"
                );
                calls += 1;
            }
            other => panic!("{}: no check for op {other}", case.name),
        }
    }
    calls
}

#[test]
fn every_lapack_reference_case_through_every_layout() {
    let all = cases(OPS);
    let mut seen = std::collections::BTreeSet::new();
    for case in &all {
        let calls = if case.is_f32() {
            check::<f32>(case)
        } else {
            check::<f64>(case)
        };
        assert!(calls >= 10, "{}: only {calls} calls", case.name);
        seen.insert(case.op.clone());
    }
    // The cases the issue names must all be there (a renamed op would otherwise be skipped).
    for op in [
        "solve",
        "inv",
        "det",
        "cholesky_lower",
        "eigvalsh",
        "singular_values",
        "lstsq",
        "solve_must_fail",
        "cholesky_must_fail",
    ] {
        assert!(seen.contains(op), "no reference case for {op}");
    }
    let multi = all
        .iter()
        .filter(|c| c.op == "solve")
        .filter(|c| {
            let ndim = if c.is_f32() {
                c.load::<f32>("b").ndim()
            } else {
                c.load::<f64>("b").ndim()
            };
            ndim == 2
        })
        .count();
    assert!(multi >= 1, "no solve case with several right-hand sides");
}

#[test]
fn singular_reference_case_names_the_pivot() {
    for case in cases(&["solve_must_fail"]) {
        if case.is_f32() {
            continue;
        }
        let a = case.load2::<f64>("a");
        let b = case.load1::<f64>("b");
        match parlinalg::solve(&a, &b) {
            // The all-ones matrix: the first elimination step zeroes everything below row 0.
            Err(Error::Singular { routine, pivot }) => {
                assert_eq!(routine, "dgetrf");
                assert!(
                    pivot >= 1 && pivot < a.nrows(),
                    "{}: pivot {pivot}",
                    case.name
                );
            }
            Err(Error::IllConditioned { .. }) => {}
            other => panic!("{}: {other:?}", case.name),
        }
    }
}

#[test]
fn not_positive_definite_reference_case_names_the_minor() {
    for case in cases(&["cholesky_must_fail"]) {
        if case.is_f32() {
            continue;
        }
        let a = case.load2::<f64>("a");
        match parlinalg::cholesky(&a) {
            Err(Error::NotPositiveDefinite { routine, minor }) => {
                assert_eq!(routine, "dpotrf");
                assert!((1..=a.nrows()).contains(&minor), "{}: {minor}", case.name);
            }
            other => panic!("{}: {other:?}", case.name),
        }
    }
}
