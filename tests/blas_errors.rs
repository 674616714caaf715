//! Bad and edge inputs of the BLAS level: typed errors, numpy's empty-dimension rules, no
//! panics, no aborts.

use ndarray::{Array1, Array2};
use parlinalg::{dot, matmul, matvec, Error};

#[test]
fn matmul_shape_mismatch_carries_both_shapes() {
    let a = Array2::<f64>::zeros((2, 3));
    let b = Array2::<f64>::zeros((4, 5));
    let err = matmul(&a, &b).unwrap_err();
    match &err {
        Error::ShapeMismatch {
            op, left, right, ..
        } => {
            assert_eq!(*op, "matmul");
            assert_eq!(left, &[2, 3]);
            assert_eq!(right, &[4, 5]);
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("(2, 3)") && msg.contains("(4, 5)"), "{msg}");
}

#[test]
fn matvec_and_dot_shape_mismatch() {
    let a = Array2::<f32>::zeros((2, 3));
    let x = Array1::<f32>::zeros(4);
    assert!(matches!(matvec(&a, &x), Err(Error::ShapeMismatch { .. })));
    let err = dot(&x, &Array1::<f32>::zeros(5)).unwrap_err();
    assert!(err.to_string().contains("(4,) and (5,)"), "{err}");
}

#[test]
fn empty_inner_dimension_gives_zeros() {
    let a = Array2::<f64>::zeros((4, 0));
    let b = Array2::<f64>::zeros((0, 3));
    assert_eq!(matmul(&a, &b).unwrap(), Array2::zeros((4, 3)));
    assert_eq!(matvec(&a, &Array1::zeros(0)).unwrap(), Array1::zeros(4));
    assert_eq!(
        dot(&Array1::<f32>::zeros(0), &Array1::zeros(0)).unwrap(),
        0.0
    );
}

#[test]
fn empty_outer_dimensions_give_empty_results() {
    let a = Array2::<f64>::zeros((0, 5));
    let b = Array2::<f64>::ones((5, 3));
    assert_eq!(matmul(&a, &b).unwrap().dim(), (0, 3));
    assert_eq!(
        matmul(&b.t(), &Array2::<f64>::ones((5, 0))).unwrap().dim(),
        (3, 0)
    );
    assert_eq!(
        matmul(&Array2::<f32>::zeros((0, 0)), &Array2::zeros((0, 0)))
            .unwrap()
            .dim(),
        (0, 0)
    );
    assert_eq!(matvec(&a, &Array1::ones(5)).unwrap().len(), 0);
}

#[test]
fn nan_and_infinity_propagate_like_ieee() {
    let mut a = Array2::<f64>::ones((3, 3));
    a[[1, 2]] = f64::NAN;
    let b = Array2::<f64>::ones((3, 2));
    let c = matmul(&a, &b).unwrap();
    assert!(c.row(1).iter().all(|v| v.is_nan()));
    assert!(c.row(0).iter().all(|&v| v == 3.0));
    assert!(c.row(2).iter().all(|&v| v == 3.0));
    let x = Array1::from(vec![1.0, f64::INFINITY, 1.0]);
    assert!(dot(&x, &Array1::ones(3)).unwrap().is_infinite());
    let y = matvec(&Array2::<f64>::eye(3), &x).unwrap();
    assert_eq!(y[1], f64::INFINITY);
}

/// A dimension beyond the BLAS integer is an error before anything is allocated or copied.
/// Broadcast views give such dimensions without memory.
#[test]
fn dimensions_beyond_the_blas_integer_are_errors() {
    let big = i32::MAX as usize + 1;
    let one = Array1::<f64>::ones(1);
    let long = one.broadcast(big).unwrap();
    let err = dot(&long, &long).unwrap_err();
    assert!(
        matches!(err, Error::DimensionTooLarge { dim, .. } if dim == big),
        "{err:?}"
    );
    let tall = Array2::<f64>::ones((1, 1));
    let tall = tall.broadcast((big, 1)).unwrap();
    assert!(matches!(
        matmul(&tall, &Array2::<f64>::ones((1, 1))),
        Err(Error::DimensionTooLarge { .. })
    ));
    assert!(matches!(
        matvec(&tall, &one),
        Err(Error::DimensionTooLarge { .. })
    ));
    assert!(matches!(
        matvec(&tall.t(), &long),
        Err(Error::DimensionTooLarge { .. })
    ));
}

/// A result too large for memory is an error, not an abort.
#[test]
fn a_result_too_large_to_allocate_is_an_error() {
    let n = 1usize << 30; // fits the BLAS integer; n·n·8 bytes does not fit the address space
    let col = Array2::<f64>::ones((1, 1));
    let a = col.broadcast((n, 1)).unwrap();
    let b = col.broadcast((1, n)).unwrap();
    let err = matmul(&a, &b).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
}

#[test]
fn broadcast_operands_are_copied_and_correct() {
    let row = Array1::from(vec![1.0f32, 2.0, 3.0]);
    let a = row.broadcast((4, 3)).unwrap(); // every row the same, row stride 0
    let c = matmul(&a, &Array2::<f32>::eye(3)).unwrap();
    for r in c.rows() {
        assert_eq!(r.to_vec(), vec![1.0, 2.0, 3.0]);
    }
    let x = Array1::from(vec![2.0f32]);
    let x = x.broadcast(3).unwrap(); // stride 0
    assert_eq!(dot(&row, &x).unwrap(), 12.0);
    assert_eq!(matvec(&a, &x).unwrap().to_vec(), vec![12.0; 4]);
}
