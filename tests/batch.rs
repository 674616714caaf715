//! matmul_batch and matmul_batch_into: the same products under every plan and under the policy, numpy's broadcasting
//! of a batch of 1, every layout, empty dimensions and bad shapes.

mod common;

use common::{matrix_layouts, Rng};
use ndarray::{s, Array3, Axis};
use parlinalg::threads::Plan;
use parlinalg::{matmul, matmul_batch, matmul_batch_into, matmul_batch_with, Error, Float};

/// `last_batch_decision` is process-wide: the tests that make decisions take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn batch_of<T: Float>(rng: &mut Rng, batch: usize, r: usize, c: usize) -> Array3<T> {
    let mut a = Array3::zeros((batch, r, c));
    for mut m in a.axis_iter_mut(Axis(0)) {
        m.assign(&rng.matrix::<T>(r, c));
    }
    a
}

fn check<T: Float>(a: &Array3<T>, b: &Array3<T>, got: &Array3<T>, tol: f64) {
    let batch = got.len_of(Axis(0));
    for i in 0..batch {
        let ai = a.index_axis(Axis(0), if a.len_of(Axis(0)) == 1 { 0 } else { i });
        let bi = b.index_axis(Axis(0), if b.len_of(Axis(0)) == 1 { 0 } else { i });
        let want = matmul(&ai, &bi).unwrap();
        for (g, w) in got.index_axis(Axis(0), i).iter().zip(want.iter()) {
            let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "product {i}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn every_plan_gives_the_same_products() {
    let _turn = turn();
    let mut rng = Rng::new(3);
    for &(batch, m, k, n) in &[
        (1, 3, 4, 5),
        (7, 17, 9, 13),
        (5, 64, 64, 64),
        (3, 130, 70, 90),
        // Several outer tasks, the last one shorter (1003 = 4 × 251 − 1; 61 = 3 × 21 − 2).
        (1003, 16, 16, 16),
        (61, 50, 40, 30),
    ] {
        let a: Array3<f64> = batch_of(&mut rng, batch, m, k);
        let b: Array3<f64> = batch_of(&mut rng, batch, k, n);
        check(&a, &b, &matmul_batch(&a, &b).unwrap(), 1e-12);
        for (outer, blas) in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (4, 1)] {
            let plan = Plan::new(outer, blas).unwrap();
            check(&a, &b, &matmul_batch_with(&a, &b, &plan).unwrap(), 1e-12);
        }
        let a32 = a.mapv(|x| x as f32);
        let b32 = b.mapv(|x| x as f32);
        check(&a32, &b32, &matmul_batch(&a32, &b32).unwrap(), 1e-4);
    }
}

#[test]
fn the_policy_records_its_decision() {
    let _turn = turn();
    let a = Array3::<f64>::ones((16, 80, 80));
    let c = matmul_batch(&a, &a).unwrap();
    assert!(c.iter().all(|&x| x == 80.0));
    let d = parlinalg::threads::last_batch_decision().expect("recorded");
    assert_eq!((d.batch, d.m, d.k, d.n), (16, 80, 80, 80));
    assert!(!d.choice.reason.is_empty());
    let cores = parlinalg::threads::Cores::detect().count;
    assert!(d.choice.plan.threads_asked() <= cores, "{}", d.choice);
}

#[test]
fn a_batch_of_one_broadcasts_as_in_numpy() {
    let _turn = turn();
    let mut rng = Rng::new(4);
    let a: Array3<f64> = batch_of(&mut rng, 1, 6, 5);
    let b: Array3<f64> = batch_of(&mut rng, 4, 5, 3);
    let c = matmul_batch(&a, &b).unwrap();
    assert_eq!(c.dim(), (4, 6, 3));
    check(&a, &b, &c, 1e-12);
    let c = matmul_batch(
        &b.view().permuted_axes([0, 2, 1]),
        &a.view().permuted_axes([0, 2, 1]),
    )
    .unwrap();
    assert_eq!(c.dim(), (4, 3, 6));
}

#[test]
fn any_layout_of_the_stack() {
    let _turn = turn();
    let mut rng = Rng::new(5);
    let a: Array3<f64> = batch_of(&mut rng, 4, 9, 7);
    let b: Array3<f64> = batch_of(&mut rng, 4, 7, 5);
    let want = matmul_batch(&a, &b).unwrap();
    // Transposed matrices inside the stack, a step over the batch, reversed batch order.
    let at = a
        .view()
        .permuted_axes([0, 2, 1])
        .as_standard_layout()
        .into_owned();
    let got = matmul_batch(&at.permuted_axes([0, 2, 1]), &b).unwrap();
    assert!((&got - &want).iter().all(|d| d.abs() < 1e-12));
    let mut doubled = Array3::<f64>::zeros((8, 9, 7));
    doubled.slice_mut(s![..;2, .., ..]).assign(&a);
    let got = matmul_batch(&doubled.slice(s![..;2, .., ..]), &b).unwrap();
    assert!((&got - &want).iter().all(|d| d.abs() < 1e-12));
    let rev = a.slice(s![..;-1, .., ..]).to_owned();
    let got = matmul_batch(&rev.slice(s![..;-1, .., ..]), &b).unwrap();
    assert!((&got - &want).iter().all(|d| d.abs() < 1e-12));
    // Each matrix in every 2-D layout of the common catalogue.
    for layout in matrix_layouts(&a.index_axis(Axis(0), 0).to_owned()) {
        let one = layout.view().insert_axis(Axis(0));
        let got = matmul_batch(&one, &b.slice(s![0..1, .., ..])).unwrap();
        let want0 = want.index_axis(Axis(0), 0);
        assert!(
            got.index_axis(Axis(0), 0)
                .iter()
                .zip(want0.iter())
                .all(|(g, w)| (g - w).abs() < 1e-12),
            "{}",
            layout.name
        );
    }
}

#[test]
fn empty_dimensions_follow_numpy() {
    let _turn = turn();
    let a = Array3::<f64>::zeros((3, 4, 0));
    let b = Array3::<f64>::zeros((3, 0, 2));
    assert_eq!(
        matmul_batch(&a, &b).unwrap(),
        Array3::<f64>::zeros((3, 4, 2))
    );
    let a = Array3::<f64>::zeros((0, 4, 5));
    let b = Array3::<f64>::zeros((0, 5, 2));
    assert_eq!(matmul_batch(&a, &b).unwrap().dim(), (0, 4, 2));
}

#[test]
fn bad_shapes_are_errors_with_both_shapes() {
    let a = Array3::<f32>::zeros((3, 4, 5));
    let err = matmul_batch(&a, &Array3::zeros((2, 5, 2))).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("(3, 4, 5) and (2, 5, 2)"), "{err}");
    let err = matmul_batch(&a, &Array3::zeros((3, 6, 2))).unwrap_err();
    assert!(err.to_string().contains("5 columns"), "{err}");
}

#[test]
fn into_an_existing_stack_of_any_layout_under_every_plan() {
    let _turn = turn();
    let mut rng = Rng::new(26);
    for &(batch, m, k, n) in &[
        (1, 3, 4, 5),
        (7, 17, 9, 13),
        (61, 20, 12, 8),
        (1003, 4, 4, 4),
    ] {
        let a: Array3<f64> = batch_of(&mut rng, batch, m, k);
        let b: Array3<f64> = batch_of(&mut rng, batch, k, n);
        let want = matmul_batch(&a, &b).unwrap();
        let plans = [
            None,
            Some(Plan::new(1, 2).unwrap()),
            Some(Plan::new(2, 1).unwrap()),
        ];
        for plan in &plans {
            // C order, filled with junk first: overwritten, never read.
            let mut c = Array3::from_elem((batch, m, n), f64::NAN);
            matmul_batch_into(&a, &b, &mut c, plan.as_ref()).unwrap();
            assert_eq!(c, want, "C order, plan {plan:?}");
            // Each matrix column major (the batch axis outermost).
            let mut f = Array3::from_elem((batch, n, m), f64::NAN);
            let mut fv = f.view_mut().permuted_axes([0, 2, 1]);
            matmul_batch_into(&a, &b, &mut fv, plan.as_ref()).unwrap();
            check(&a, &b, &fv.to_owned(), 1e-12);
            // Every other row and column of a larger stack (a sub-block per matrix), and the
            // batch axis reversed.
            let mut big = Array3::from_elem((batch, 2 * m, 2 * n), f64::NAN);
            let mut sub = big.slice_mut(s![..;-1, ..;2, ..;2]);
            matmul_batch_into(&a, &b, &mut sub, plan.as_ref()).unwrap();
            check(&a, &b, &sub.to_owned(), 1e-12);
            assert!(
                big.slice(s![.., 1..;2, ..]).iter().all(|v| v.is_nan()),
                "untouched"
            );
        }
        // A batch of 1 on one side broadcasts, as in matmul_batch.
        let one = a.slice(s![..1, .., ..]).to_owned();
        let mut c = Array3::zeros((batch, m, n));
        matmul_batch_into(&one, &b, &mut c, None).unwrap();
        check(&one, &b, &c, 1e-12);
        let a32 = a.mapv(|x| x as f32);
        let b32 = b.mapv(|x| x as f32);
        let mut c32 = Array3::zeros((batch, m, n));
        matmul_batch_into(&a32, &b32, &mut c32, None).unwrap();
        check(&a32, &b32, &c32, 1e-4);
    }
}

#[test]
fn into_checks_the_shape_of_out_and_follows_numpy_on_empty_dimensions() {
    let a = Array3::<f64>::ones((3, 2, 4));
    let b = Array3::<f64>::ones((3, 4, 5));
    for shape in [(3, 2, 4), (2, 2, 5), (3, 5, 2)] {
        let mut c = Array3::<f64>::zeros(shape);
        match matmul_batch_into(&a, &b, &mut c, None) {
            Err(Error::ShapeMismatch { op, right, .. }) => {
                assert_eq!(
                    (op, right),
                    ("matmul_batch_into", vec![shape.0, shape.1, shape.2])
                )
            }
            other => panic!("{shape:?}: {other:?}"),
        }
    }
    // k = 0: the products are zero matrices, written over whatever out held.
    let a0 = Array3::<f64>::ones((3, 2, 0));
    let b0 = Array3::<f64>::ones((3, 0, 5));
    let mut c = Array3::<f64>::from_elem((3, 2, 5), 7.0);
    matmul_batch_into(&a0, &b0, &mut c, None).unwrap();
    assert!(c.iter().all(|&v| v == 0.0));
    // An empty batch writes nothing.
    let mut empty = Array3::<f64>::zeros((0, 2, 5));
    matmul_batch_into(
        &a.slice(s![..0, .., ..]),
        &b.slice(s![..0, .., ..]),
        &mut empty,
        None,
    )
    .unwrap();
}
