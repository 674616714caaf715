//! Every matmul, matmul_transposed, matvec and dot case of the numpy reference, through every
//! layout of `common::matrix_layouts` / `vector_layouts`, with the manifest's tolerances.

mod common;

use common::{assert_all_close, cases, close, matrix_layouts, vector_layouts, Case};
use ndarray_npy::ReadableElement;
use parlinalg::Float;

fn check_matmul<T: Float + ReadableElement>(case: &Case, transposed: bool) {
    let a = case.load2::<T>("a");
    let b = case.load2::<T>("b");
    let want = case.load2::<T>("expected");
    let mut combos = 0;
    for la in matrix_layouts(&a) {
        for lb in matrix_layouts(&b) {
            let (va, vb) = (la.view(), lb.view());
            // matmul_transposed: C = aᵀ·bᵀ, passed as transposed views (no copy).
            let got = if transposed {
                parlinalg::matmul(&va.t(), &vb.t())
            } else {
                parlinalg::matmul(&va, &vb)
            }
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert!(got.is_standard_layout());
            let ctx = format!("{} a:{} b:{}", case.name, la.name, lb.name);
            assert_all_close(
                got.view().into_dyn(),
                want.view().into_dyn(),
                case.rtol,
                case.atol,
                &ctx,
            );
            combos += 1;
        }
    }
    assert_eq!(combos, 100);
}

fn check_matvec<T: Float + ReadableElement>(case: &Case) {
    let a = case.load2::<T>("a");
    let x = case.load1::<T>("x");
    let want = case.load1::<T>("expected");
    for la in matrix_layouts(&a) {
        for lx in vector_layouts(&x) {
            let got = parlinalg::matvec(&la.view(), &lx.view()).unwrap();
            let ctx = format!("{} a:{} x:{}", case.name, la.name, lx.name);
            assert_all_close(
                got.view().into_dyn(),
                want.view().into_dyn(),
                case.rtol,
                case.atol,
                &ctx,
            );
        }
    }
}

fn check_dot<T: Float + ReadableElement>(case: &Case) {
    let x = case.load1::<T>("x");
    let y = case.load1::<T>("y");
    let want = case.load0::<T>("expected").to_f64().unwrap();
    for lx in vector_layouts(&x) {
        for ly in vector_layouts(&y) {
            let got = parlinalg::dot(&lx.view(), &ly.view())
                .unwrap()
                .to_f64()
                .unwrap();
            assert!(
                close(got, want, case.rtol, case.atol),
                "{} x:{} y:{}: got {got:e}, want {want:e}",
                case.name,
                lx.name,
                ly.name
            );
        }
    }
}

#[test]
fn reference_matmul_cases() {
    for case in cases(&["matmul", "matmul_transposed"]) {
        let transposed = case.op == "matmul_transposed";
        if case.is_f32() {
            check_matmul::<f32>(&case, transposed);
        } else {
            check_matmul::<f64>(&case, transposed);
        }
    }
}

#[test]
fn reference_matvec_cases() {
    for case in cases(&["matvec"]) {
        if case.is_f32() {
            check_matvec::<f32>(&case);
        } else {
            check_matvec::<f64>(&case);
        }
    }
}

#[test]
fn reference_dot_cases() {
    for case in cases(&["dot"]) {
        if case.is_f32() {
            check_dot::<f32>(&case);
        } else {
            check_dot::<f64>(&case);
        }
    }
}
