//! Products at sizes around OpenBLAS's block edges (1, 2, 3, 255, 256, 257, ...) against a naive
//! f64 loop, f32 and f64, in several layouts.
//!
//! Tolerance: a dot product of length k computed in floating point with unit roundoff u has
//! |error| ≤ γ_k · Σ|a_ik·b_kj| with γ_k = k·u / (1 − k·u) (Higham, Accuracy and Stability,
//! §3.1). We allow k·ε·Σ|a_ik·b_kj| (ε = 2u, so twice γ_k for the k used here) plus one ulp of
//! the result's scale for rounding the f64 reference to T.

mod common;

use common::{matrix_layouts, naive_matmul, vector_layouts, Rng};
use ndarray::{Array1, Array2};
use parlinalg::Float;

fn check_product<T: Float>(m: usize, k: usize, n: usize, rng: &mut Rng) {
    let a: Array2<T> = rng.matrix(m, k);
    let b: Array2<T> = rng.matrix(k, n);
    let (want, bound) = naive_matmul(&a.view(), &b.view());
    let eps = T::epsilon().to_f64().unwrap();
    let check = |got: &Array2<T>, what: &str| {
        assert_eq!(got.dim(), (m, n), "{what}");
        for ((i, j), g) in got.indexed_iter() {
            let g = g.to_f64().unwrap();
            let tol = (k.max(1) as f64) * eps * bound[[i, j]] + eps * want[[i, j]].abs();
            assert!(
                (g - want[[i, j]]).abs() <= tol,
                "{what} {m}x{k}x{n} at ({i},{j}): got {g:e}, want {:e}, tol {tol:e}",
                want[[i, j]]
            );
        }
    };
    // Every layout of a against C-order b, and every layout of b against C-order a.
    for la in matrix_layouts(&a) {
        check(
            &parlinalg::matmul(&la.view(), &b).unwrap(),
            &format!("a:{}", la.name),
        );
    }
    for lb in matrix_layouts(&b) {
        check(
            &parlinalg::matmul(&a, &lb.view()).unwrap(),
            &format!("b:{}", lb.name),
        );
    }
    // matvec with the first column of b, dot with the first row of a and first column of b.
    if n > 0 {
        let x: Array1<T> = b.column(0).to_owned();
        for lx in vector_layouts(&x) {
            let y = parlinalg::matvec(&a, &lx.view()).unwrap();
            let y2 = y.clone().into_shape_with_order((m, 1)).unwrap();
            let wantcol = want.column(0);
            for i in 0..m {
                let tol = (k.max(1) as f64) * eps * bound[[i, 0]] + eps * wantcol[i].abs();
                assert!(
                    (y2[[i, 0]].to_f64().unwrap() - wantcol[i]).abs() <= tol,
                    "matvec {m}x{k} x:{}",
                    lx.name
                );
            }
        }
        if m > 0 {
            let d = parlinalg::dot(&a.row(0), &b.column(0))
                .unwrap()
                .to_f64()
                .unwrap();
            let tol = (k.max(1) as f64) * eps * bound[[0, 0]] + eps * want[[0, 0]].abs();
            assert!((d - want[[0, 0]]).abs() <= tol, "dot k={k}");
        }
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 2, 3),
    (2, 1, 2),
    (3, 3, 3),
    (1, 257, 1),
    (255, 2, 3),
    (3, 256, 257),
    (256, 1, 255),
    (257, 255, 1),
    (127, 129, 65),
    (255, 256, 257),
];

#[test]
fn f64_products_around_block_edges() {
    let mut rng = Rng::new(0x5eed_0064);
    for &(m, k, n) in SHAPES {
        check_product::<f64>(m, k, n, &mut rng);
    }
}

#[test]
fn f32_products_around_block_edges() {
    let mut rng = Rng::new(0x5eed_0032);
    for &(m, k, n) in SHAPES {
        check_product::<f32>(m, k, n, &mut rng);
    }
}

#[test]
fn results_do_not_depend_on_the_blas_thread_count() {
    // The same product with 1 and with the default BLAS threads agrees within the bound
    // (blocking may change the summation order, so not bit-for-bit).
    let mut rng = Rng::new(7);
    let a: Array2<f64> = rng.matrix(300, 280);
    let b: Array2<f64> = rng.matrix(280, 310);
    let (want, bound) = naive_matmul(&a.view(), &b.view());
    for threads in [1, 2] {
        let got = parlinalg::threads::with_blas_threads(threads, || parlinalg::matmul(&a, &b))
            .unwrap()
            .unwrap();
        for ((i, j), g) in got.indexed_iter() {
            assert!((g - want[[i, j]]).abs() <= 280.0 * f64::EPSILON * bound[[i, j]]);
        }
    }
}

/// `matmul_into` writes the same product into every output layout, touches nothing outside
/// the output view, and rejects a wrongly shaped output.
#[test]
fn matmul_into_every_output_layout() {
    use ndarray::{s, ShapeBuilder};
    let mut rng = Rng::new(11);
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 2),
        (17, 1, 9),
        (64, 65, 63),
        (130, 257, 129),
        (4, 0, 3),
    ] {
        let a: Array2<f64> = rng.matrix(m, k);
        let b: Array2<f64> = rng.matrix(k, n);
        let want = parlinalg::matmul(&a, &b).unwrap();
        let sentinel = -7.0;
        let check = |out: ndarray::ArrayView2<'_, f64>, name: &str| {
            for ((i, j), g) in out.indexed_iter() {
                assert!(
                    (g - want[[i, j]]).abs() <= 1e-12 * (1.0 + want[[i, j]].abs()),
                    "{name} {m}x{k}x{n}"
                );
            }
        };
        let mut c = Array2::from_elem((m, n), sentinel);
        parlinalg::matmul_into(&a, &b, &mut c).unwrap();
        check(c.view(), "c_order");
        let mut f = Array2::from_elem((m, n).f(), sentinel);
        parlinalg::matmul_into(&a, &b, &mut f).unwrap();
        check(f.view(), "f_order");
        for f_order in [false, true] {
            let shape = (m + 3, n + 4);
            let mut big = if f_order {
                Array2::from_elem(shape.f(), sentinel)
            } else {
                Array2::from_elem(shape, sentinel)
            };
            parlinalg::matmul_into(&a, &b, &mut big.slice_mut(s![1..m + 1, 2..n + 2])).unwrap();
            check(big.slice(s![1..m + 1, 2..n + 2]), "sub_block");
            let outside = big.iter().filter(|&&v| v == sentinel).count();
            assert_eq!(
                outside,
                (m + 3) * (n + 4) - m * n,
                "wrote outside the block"
            );
        }
        let mut big = Array2::from_elem((2 * m, 2 * n), sentinel);
        parlinalg::matmul_into(&a, &b, &mut big.slice_mut(s![..;2, ..;2])).unwrap();
        check(big.slice(s![..;2, ..;2]), "both_strided");
        let mut rev = Array2::from_elem((m, n), sentinel);
        parlinalg::matmul_into(&a, &b, &mut rev.slice_mut(s![..;-1, ..])).unwrap();
        check(rev.slice(s![..;-1, ..]), "reversed_rows");
    }
    let a = Array2::<f32>::zeros((2, 3));
    let mut wrong = Array2::<f32>::zeros((2, 4));
    let err = parlinalg::matmul_into(&a, &Array2::zeros((3, 3)), &mut wrong).unwrap_err();
    assert!(err.to_string().contains("(2, 3) and (2, 4)"), "{err}");
}
