//! Every elementwise and reduction case of the numpy reference, through every layout of
//! `common::vector_layouts` / `matrix_layouts`, in all three forms (new array, in place, into),
//! with the manifest's tolerances.

mod common;

use common::{assert_all_close, cases, close, matrix_layouts, vector_layouts, Case};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ShapeBuilder};
use ndarray_npy::ReadableElement;
use parlinalg::Float;

fn unary_new<T: Float>(op: &str, x: &ArrayView1<'_, T>) -> Array1<T> {
    match op {
        "exp" => parlinalg::exp(x),
        "ln" => parlinalg::ln(x),
        "sqrt" => parlinalg::sqrt(x),
        "tanh" => parlinalg::tanh(x),
        "sigmoid" => parlinalg::sigmoid(x),
        other => panic!("unknown unary op {other}"),
    }
}

fn unary_inplace<T: Float>(op: &str, x: &mut Array1<T>) {
    match op {
        "exp" => parlinalg::exp_inplace(x),
        "ln" => parlinalg::ln_inplace(x),
        "sqrt" => parlinalg::sqrt_inplace(x),
        "tanh" => parlinalg::tanh_inplace(x),
        "sigmoid" => parlinalg::sigmoid_inplace(x),
        other => panic!("unknown unary op {other}"),
    }
}

fn unary_into<T: Float>(op: &str, x: &ArrayView1<'_, T>, out: &mut Array1<T>) {
    match op {
        "exp" => parlinalg::exp_into(x, out),
        "ln" => parlinalg::ln_into(x, out),
        "sqrt" => parlinalg::sqrt_into(x, out),
        "tanh" => parlinalg::tanh_into(x, out),
        "sigmoid" => parlinalg::sigmoid_into(x, out),
        other => panic!("unknown unary op {other}"),
    }
    .unwrap()
}

fn check_unary<T: Float + ReadableElement>(case: &Case) {
    let x = case.load1::<T>("x");
    let want = case.load1::<T>("expected");
    let close_all = |got: &Array1<T>, ctx: &str| {
        assert_all_close(
            got.view().into_dyn(),
            want.view().into_dyn(),
            case.rtol,
            case.atol,
            ctx,
        )
    };
    for l in vector_layouts(&x) {
        let v = l.view();
        let ctx = format!("{} x:{}", case.name, l.name);
        close_all(&unary_new(&case.op, &v), &ctx);
        let mut out = Array1::from_elem(x.len(), T::nan());
        unary_into(&case.op, &v, &mut out);
        close_all(&out, &format!("{ctx} into"));
        let mut owned = v.to_owned();
        unary_inplace(&case.op, &mut owned);
        close_all(&owned, &format!("{ctx} in place"));
    }
    // The same values as a matrix, through every matrix layout (when the length factors).
    let n = x.len();
    if let Some(rows) = (2..=n / 2)
        .rev()
        .find(|r| n.is_multiple_of(*r) && n / r >= 2)
    {
        let m = Array2::from_shape_vec((rows, n / rows), x.to_vec()).unwrap();
        let w = Array2::from_shape_vec((rows, n / rows), want.to_vec()).unwrap();
        for l in matrix_layouts(&m) {
            let v = l.view();
            let got = match case.op.as_str() {
                "exp" => parlinalg::exp(&v),
                "ln" => parlinalg::ln(&v),
                "sqrt" => parlinalg::sqrt(&v),
                "tanh" => parlinalg::tanh(&v),
                _ => parlinalg::sigmoid(&v),
            };
            let ctx = format!("{} as matrix, {}", case.name, l.name);
            assert_all_close(
                got.view().into_dyn(),
                w.view().into_dyn(),
                case.rtol,
                case.atol,
                &ctx,
            );
        }
    }
}

#[test]
fn unary_cases_every_layout() {
    let all = cases(&["exp", "ln", "sqrt", "tanh", "sigmoid"]);
    assert!(
        all.len() >= 20,
        "expected the 20+ unary cases, got {}",
        all.len()
    );
    for case in all {
        if case.is_f32() {
            check_unary::<f32>(&case)
        } else {
            check_unary::<f64>(&case)
        }
    }
}

fn binary_new<T: Float>(
    op: &str,
    a: &ArrayView2<'_, T>,
    b: &ndarray::ArrayViewD<'_, T>,
) -> ndarray::ArrayD<T> {
    let a = a.view().into_dyn();
    match op {
        "add" => parlinalg::add(&a, b),
        "sub" => parlinalg::sub(&a, b),
        "mul" => parlinalg::mul(&a, b),
        "div" => parlinalg::div(&a, b),
        other => panic!("unknown binary op {other}"),
    }
    .unwrap()
}

fn binary_into<T: Float>(
    op: &str,
    a: &ArrayView2<'_, T>,
    b: &ndarray::ArrayViewD<'_, T>,
    out: &mut Array2<T>,
) {
    match op {
        "add" => parlinalg::add_into(a, b, out),
        "sub" => parlinalg::sub_into(a, b, out),
        "mul" => parlinalg::mul_into(a, b, out),
        "div" => parlinalg::div_into(a, b, out),
        other => panic!("unknown binary op {other}"),
    }
    .unwrap()
}

/// A case whose `a` is not 2-D (numpy broadcasting across more dimensions): checked as stored
/// and through a reversed-axes view of the same data.
fn check_binary_nd<T: Float + ReadableElement>(case: &Case) {
    let a = case.load::<T>("a");
    let b = case.load::<T>("b");
    let want = case.load::<T>("expected");
    let a_f = a.t().as_standard_layout().into_owned();
    for (name, va) in [("c_order", a.view()), ("f_order", a_f.t())] {
        let got = match case.op.as_str() {
            "add" => parlinalg::add(&va, &b),
            "sub" => parlinalg::sub(&va, &b),
            "mul" => parlinalg::mul(&va, &b),
            "div" => parlinalg::div(&va, &b),
            other => panic!("unknown binary op {other}"),
        }
        .unwrap();
        let ctx = format!("{} a:{name}", case.name);
        assert_all_close(got.view(), want.view(), case.rtol, case.atol, &ctx);
    }
}

fn check_binary<T: Float + ReadableElement>(case: &Case) {
    if case.load::<T>("a").ndim() != 2 {
        return check_binary_nd::<T>(case);
    }
    let a = case.load2::<T>("a");
    let b = case.load::<T>("b");
    let want = case.load2::<T>("expected");
    // b through every layout: vector layouts (row broadcast) or matrix layouts.
    let mut combos = 0;
    for la in matrix_layouts(&a) {
        let va = la.view();
        let mut check = |vb: ndarray::ArrayViewD<'_, T>, bname: &str| {
            let ctx = format!("{} a:{} b:{bname}", case.name, la.name);
            let got = binary_new(&case.op, &va, &vb);
            assert_all_close(
                got.view(),
                want.view().into_dyn(),
                case.rtol,
                case.atol,
                &ctx,
            );
            for f_order in [false, true] {
                let mut out = Array2::from_elem(a.raw_dim().set_f(f_order), T::nan());
                binary_into(&case.op, &va, &vb, &mut out);
                assert_all_close(
                    out.view().into_dyn(),
                    want.view().into_dyn(),
                    case.rtol,
                    case.atol,
                    &format!("{ctx} into (F order: {f_order})"),
                );
            }
            combos += 1;
        };
        if b.ndim() == 1 {
            let b1 = b.clone().into_dimensionality::<ndarray::Ix1>().unwrap();
            for lb in vector_layouts(&b1) {
                check(lb.view().into_dyn(), lb.name);
            }
        } else {
            let b2 = b.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
            for lb in matrix_layouts(&b2) {
                check(lb.view().into_dyn(), lb.name);
            }
        }
    }
    assert!(combos >= 30, "{}: only {combos} layout pairs", case.name);
}

#[test]
fn binary_cases_every_layout() {
    let all = cases(&["add", "sub", "mul", "div"]);
    assert!(all.len() >= 8);
    for case in all {
        if case.is_f32() {
            check_binary::<f32>(&case)
        } else {
            check_binary::<f64>(&case)
        }
    }
}

fn check_scalar<T: Float>(case: &Case, what: &str, got: T, want: T, layout: &str) {
    let (g, w) = (got.to_f64().unwrap(), want.to_f64().unwrap());
    assert!(
        close(g, w, case.rtol, case.atol),
        "{} {what} x:{layout}: got {g:e}, want {w:e}",
        case.name
    );
}

fn check_reductions<T: Float + ReadableElement>(case: &Case) {
    let x = case.load1::<T>("x");
    for l in vector_layouts(&x) {
        let v = l.view();
        for out in &case.outputs {
            let want = case.load0::<T>(out);
            let got = reduce_by_name(out.as_str(), &v);
            check_scalar(case, out, got, want, l.name);
        }
    }
}

/// The reduction `op` of `v`, by its reference name.
fn reduce_by_name<T: Float, D: ndarray::Dimension>(
    op: &str,
    v: &ndarray::ArrayView<'_, T, D>,
) -> T {
    match op {
        "sum" => parlinalg::sum(v),
        "mean" => parlinalg::mean(v),
        "max" => parlinalg::max(v),
        "min" => parlinalg::min(v),
        "norm2" => parlinalg::norm2(v),
        other => panic!("unknown reduction {other}"),
    }
    .unwrap()
}

fn check_single<T: Float + ReadableElement>(case: &Case) {
    let xd = case.load::<T>("x");
    if xd.ndim() != 1 {
        // Any other dimension: as stored and through its transpose (a reduction over every
        // element does not depend on the order).
        let want = case.load0::<T>("expected");
        for (name, v) in [("c_order", xd.view()), ("transposed", xd.t())] {
            let got = reduce_by_name(case.op.as_str(), &v);
            check_scalar(case, &case.op, got, want, name);
        }
        return;
    }
    let x = case.load1::<T>("x");
    let want = case.load0::<T>("expected");
    for l in vector_layouts(&x) {
        let v = l.view();
        let got = reduce_by_name(case.op.as_str(), &v);
        check_scalar(case, &case.op, got, want, l.name);
        // The same data as a 2-D matrix through every matrix layout, when it factors.
        let n = x.len();
        if let Some(r) = (2..=n / 2)
            .rev()
            .find(|r| n.is_multiple_of(*r) && n / r >= 2)
        {
            let m = Array2::from_shape_vec((r, n / r), x.to_vec()).unwrap();
            for lm in matrix_layouts(&m) {
                let got = reduce_by_name(&case.op, &lm.view());
                check_scalar(case, &case.op, got, want, lm.name);
            }
        }
    }
}

#[test]
fn reduction_cases_every_layout() {
    let all = cases(&["reductions"]);
    for case in &all {
        if case.is_f32() {
            check_reductions::<f32>(case)
        } else {
            check_reductions::<f64>(case)
        }
    }
    let single = cases(&["sum", "mean", "max", "min", "norm2"]);
    assert!(single.len() >= 4);
    for case in &single {
        if case.is_f32() {
            check_single::<f32>(case)
        } else {
            check_single::<f64>(case)
        }
    }
}
