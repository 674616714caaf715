//! Bad and edge inputs of the LAPACK level, for f32 and f64: every bad input returns the right
//! `Error` kind (never a panic, never a number), empty inputs get numpy's answers, 1×1 and
//! 1×n shapes work, and sizes beyond LAPACK's integer are refused before anything is read.

use ndarray::{array, Array1, Array2, ArrayView1, ArrayView2};
use parlinalg::{cholesky, det, eigvalsh, inv, lstsq, singular_values, solve, Error, Float};

fn t<T: Float>(x: f64) -> T {
    T::from(x).unwrap()
}

fn mat<T: Float>(a: &Array2<f64>) -> Array2<T> {
    a.mapv(t)
}

fn vec1<T: Float>(a: &Array1<f64>) -> Array1<T> {
    a.mapv(t)
}

/// Runs a generic check for both element types.
macro_rules! both_types {
    ($($name:ident),* $(,)?) => {
        mod f32_cases { $( #[test] fn $name() { super::$name::<f32>(); } )* }
        mod f64_cases { $( #[test] fn $name() { super::$name::<f64>(); } )* }
    };
}

both_types!(
    not_square_is_refused_by_every_square_routine,
    shape_mismatch_names_both_shapes,
    non_finite_input_is_refused_with_its_index,
    junk_in_the_unread_triangle_is_ignored,
    exactly_singular_names_the_first_zero_pivot,
    singular_to_working_precision_is_refused,
    det_of_a_singular_matrix_is_zero_not_an_error,
    not_positive_definite_names_the_minor,
    empty_inputs_get_numpys_answers,
    one_by_one_matrices,
    row_and_column_matrices,
    only_the_lower_triangle_is_read,
    sizes_beyond_lapack_integers_are_refused_before_reading,
    broadcast_and_reversed_inputs_work,
);

fn not_square_is_refused_by_every_square_routine<T: Float>() {
    for shape in [(2, 3), (3, 2), (0, 3), (3, 0)] {
        let a = Array2::<T>::ones(shape);
        let b = Array1::<T>::ones(shape.0);
        let expect = |r: Result<(), Error>, op: &str| match r {
            Err(Error::NotSquare { op: got, shape: s }) => {
                assert_eq!(got, op);
                assert_eq!(s, vec![shape.0, shape.1]);
            }
            other => panic!("{op} {shape:?}: {other:?}"),
        };
        expect(solve(&a, &b).map(drop), "solve");
        expect(inv(&a).map(drop), "inv");
        expect(det(&a).map(drop), "det");
        expect(cholesky(&a).map(drop), "cholesky");
        expect(eigvalsh(&a).map(drop), "eigvalsh");
    }
    let msg = det(&Array2::<T>::ones((2, 3))).unwrap_err().to_string();
    assert!(msg.contains("(2, 3)"), "{msg}");
}

fn shape_mismatch_names_both_shapes<T: Float>() {
    let a = Array2::<T>::eye(3);
    let check = |r: Result<(), Error>, left: &[usize], right: &[usize]| match r {
        Err(e @ Error::ShapeMismatch { .. }) => {
            if let Error::ShapeMismatch {
                left: l, right: r, ..
            } = &e
            {
                assert_eq!((l.as_slice(), r.as_slice()), (left, right));
            }
            let msg = e.to_string();
            assert!(msg.contains(&format!("{:?}", left).replace('[', "(").replace(']', "")));
        }
        other => panic!("{other:?}"),
    };
    check(solve(&a, &Array1::<T>::ones(4)).map(drop), &[3, 3], &[4]);
    check(
        solve(&a, &Array2::<T>::ones((2, 5))).map(drop),
        &[3, 3],
        &[2, 5],
    );
    check(
        lstsq(&Array2::<T>::ones((4, 3)), &Array1::<T>::ones(3)).map(drop),
        &[4, 3],
        &[3],
    );
    // Also for an empty a: the mismatch is reported, not an empty answer.
    check(
        solve(&Array2::<T>::zeros((0, 0)), &Array1::<T>::ones(1)).map(drop),
        &[0, 0],
        &[1],
    );
    let msg = solve(&a, &Array1::<T>::ones(4)).unwrap_err().to_string();
    assert!(msg.contains("(3, 3)") && msg.contains("(4,)"), "{msg}");
}

fn non_finite_input_is_refused_with_its_index<T: Float>() {
    let base = mat::<T>(&array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]);
    for bad in [T::nan(), T::infinity(), T::neg_infinity()] {
        for (i, j) in [(0, 0), (2, 1), (1, 2)] {
            let mut a = base.clone();
            a[[i, j]] = bad;
            let b = Array1::<T>::ones(3);
            let mut results: Vec<(&str, Result<(), Error>)> = vec![
                ("solve", solve(&a, &b).map(drop)),
                ("inv", inv(&a).map(drop)),
                ("det", det(&a).map(drop)),
                ("singular_values", singular_values(&a).map(drop)),
                ("lstsq", lstsq(&a, &b).map(drop)),
            ];
            // cholesky and eigvalsh read only the lower triangle (the next test covers the
            // upper one).
            if i >= j {
                results.push(("cholesky", cholesky(&a).map(drop)));
                results.push(("eigvalsh", eigvalsh(&a).map(drop)));
            }
            for (op, r) in results {
                match r {
                    Err(Error::NonFinite {
                        op: got,
                        index,
                        value,
                    }) => {
                        assert_eq!(got, op);
                        assert_eq!(index, vec![i, j], "{op}");
                        assert_eq!(value, bad.to_string());
                    }
                    other => panic!("{op} with {bad} at ({i}, {j}): {other:?}"),
                }
            }
            // The index is logical, whatever the layout: in aᵀ the value sits at (j, i).
            match solve(&a.t(), &b) {
                Err(Error::NonFinite { index, .. }) => assert_eq!(index, vec![j, i]),
                other => panic!("{other:?}"),
            }
        }
        // In the right-hand side, after a finite a.
        let mut b = Array1::<T>::ones(3);
        b[2] = bad;
        for (op, r) in [
            ("solve", solve(&base, &b).map(drop)),
            ("lstsq", lstsq(&base, &b).map(drop)),
        ] {
            assert!(
                matches!(&r, Err(Error::NonFinite { index, .. }) if index == &vec![2]),
                "{op}: {r:?}"
            );
        }
        let mut bm = Array2::<T>::ones((3, 2));
        bm[[1, 1]] = bad;
        assert!(matches!(
            solve(&base, &bm),
            Err(Error::NonFinite { index, .. }) if index == vec![1, 1]
        ));
    }
}

fn junk_in_the_unread_triangle_is_ignored<T: Float>() {
    // cholesky and eigvalsh read only the lower triangle (as numpy's do): what is above the
    // diagonal, NaN and ±inf included, changes nothing; the lower triangle is still checked.
    let clean = mat::<T>(&array![[1.0, 0.0], [0.0, 1.0]]);
    for bad in [T::nan(), T::infinity(), T::neg_infinity()] {
        let mut a = clean.clone();
        a[[0, 1]] = bad;
        assert_eq!(cholesky(&a).unwrap(), cholesky(&clean).unwrap(), "{bad}");
        assert_eq!(eigvalsh(&a).unwrap(), eigvalsh(&clean).unwrap(), "{bad}");
        // Through a transposed view the same entry is logically below the diagonal: refused.
        let below = a.t();
        assert!(
            matches!(cholesky(&below), Err(Error::NonFinite { index, .. }) if index == vec![1, 0])
        );
        assert!(
            matches!(eigvalsh(&below), Err(Error::NonFinite { index, .. }) if index == vec![1, 0])
        );
    }
}

fn exactly_singular_names_the_first_zero_pivot<T: Float>() {
    let a = mat::<T>(&array![[1.0, 2.0], [2.0, 4.0]]);
    let b = Array1::<T>::ones(2);
    let routine = if std::mem::size_of::<T>() == 4 {
        "sgetrf"
    } else {
        "dgetrf"
    };
    for r in [solve(&a, &b).map(drop), inv(&a).map(drop)] {
        assert_eq!(r, Err(Error::Singular { routine, pivot: 1 }));
    }
    // A zero matrix: the very first pivot.
    let zero = Array2::<T>::zeros((4, 4));
    assert!(matches!(
        solve(&zero, &Array1::zeros(4)),
        Err(Error::Singular { pivot: 0, .. })
    ));
    // LAPACK factors the C-order copy of A as it lies, which is Aᵀ (the Error::Singular
    // docs): a zero row j of A is a zero column of Aᵀ, which stays zero through elimination,
    // so U[j, j] = 0 is the first zero pivot. In any layout of A.
    let n = 5;
    for j in 0..n {
        let mut a = Array2::<T>::from_shape_fn((n, n), |(r, c)| {
            t::<T>(((r * 7 + c * 3) % 11) as f64 + if r == c { 20.0 } else { 0.0 })
        });
        a.row_mut(j).fill(T::zero());
        let got = inv(&a);
        assert_eq!(got, Err(Error::Singular { routine, pivot: j }), "row {j}");
        let fortran = a.t().as_standard_layout().into_owned().reversed_axes();
        assert_eq!(
            inv(&fortran),
            Err(Error::Singular { routine, pivot: j }),
            "row {j}, column-major"
        );
        let msg = got.unwrap_err().to_string();
        assert!(msg.contains(&format!("1-based pivot {}", j + 1)), "{msg}");
        // Also with several right-hand sides, and with none.
        assert!(matches!(
            solve(&a, &Array2::<T>::ones((n, 3))),
            Err(Error::Singular { .. })
        ));
        assert!(matches!(
            solve(&a, &Array2::<T>::ones((n, 0))),
            Err(Error::Singular { .. })
        ));
    }
    // The classic 3×3 of rank 2: LAPACK's LU ends on an exactly zero pivot, or on a pivot at
    // rounding level; both are refused.
    let a = mat::<T>(&array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
    let r = solve(&a, &Array1::ones(3));
    assert!(
        matches!(
            r,
            Err(Error::Singular { .. } | Error::IllConditioned { .. })
        ),
        "{r:?}"
    );
}

fn singular_to_working_precision_is_refused<T: Float>() {
    // [[1, 1], [1, 1 + ε]] (1 + ε is the next number after 1): U[1,1] = ε is not zero, but
    // κ₁ ≈ 4/ε, so rcond ≈ ε/4.
    let delta = T::epsilon();
    let a = Array2::from_shape_vec((2, 2), vec![T::one(), T::one(), T::one(), T::one() + delta])
        .unwrap();
    // solve estimates the number (?lacn2); inv takes it exactly from its inverse (?getri).
    for (r, by) in [
        (solve(&a, &Array1::<T>::ones(2)).map(drop), "lacn2"),
        (inv(&a).map(drop), "getri"),
    ] {
        match r {
            Err(Error::IllConditioned {
                routine,
                rcond,
                epsilon,
            }) => {
                assert!(rcond < epsilon, "{rcond} {epsilon}");
                assert_eq!(epsilon, T::epsilon().to_f64().unwrap());
                assert!(routine.ends_with(by), "{routine}");
            }
            other => panic!("{other:?}"),
        }
    }
    // An inverse that overflows is refused, not returned with infinities: I − 2·(the
    // superdiagonal) has A⁻¹[0, n−1] = 2^(n−1), past T's range at n = 140 (f32) or 1040
    // (f64), with entries of 1 and −2 only (no equilibration, no zero pivot).
    let n = if T::SINGLE { 140 } else { 1040 };
    let mut growth = Array2::<T>::eye(n);
    for i in 0..n - 1 {
        growth[[i, i + 1]] = t(-2.0);
    }
    match inv(&growth) {
        // 0 from an infinity, NaN from the ∞ − ∞ that ?getri meets on the way.
        Err(Error::IllConditioned { rcond, .. }) => {
            assert!(rcond == 0.0 || rcond.is_nan(), "{rcond}")
        }
        other => panic!("{:?}", other.map(|inverse| inverse[[0, n - 1]])),
    }
    assert!(matches!(
        solve(&growth, &Array1::<T>::ones(n)),
        Err(Error::IllConditioned { .. })
    ));
    // The determinant of the first matrix is an answer, not an error.
    let d = det(&a).unwrap();
    assert!((d - delta).abs() <= delta, "{d}");
    // Badly scaled is not ill-conditioned: rcond is scale invariant.
    let tiny = Array2::<T>::eye(3).mapv(|x| x * t(1e-30));
    assert!(solve(&tiny, &Array1::<T>::from_elem(3, t(1e-30))).is_ok());
}

fn det_of_a_singular_matrix_is_zero_not_an_error<T: Float>() {
    assert_eq!(det(&Array2::<T>::zeros((3, 3))).unwrap(), T::zero());
    assert_eq!(
        det(&mat::<T>(&array![[1.0, 2.0], [2.0, 4.0]])).unwrap(),
        T::zero()
    );
}

fn not_positive_definite_names_the_minor<T: Float>() {
    let cases: [(Array2<f64>, usize); 4] = [
        (-Array2::eye(4), 1),
        (array![[1.0, 2.0], [2.0, 1.0]], 2),
        (array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], 3),
        (
            array![[4.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 9.0]],
            2,
        ),
    ];
    for (a, minor) in cases {
        match cholesky(&mat::<T>(&a)) {
            Err(Error::NotPositiveDefinite { minor: got, .. }) => assert_eq!(got, minor, "{a}"),
            other => panic!("{a}: {other:?}"),
        }
    }
}

fn empty_inputs_get_numpys_answers<T: Float>() {
    let e = Array2::<T>::zeros((0, 0));
    assert_eq!(det(&e).unwrap(), T::one());
    assert_eq!(inv(&e).unwrap().dim(), (0, 0));
    assert_eq!(solve(&e, &Array1::<T>::zeros(0)).unwrap().len(), 0);
    assert_eq!(
        solve(&e, &Array2::<T>::zeros((0, 3))).unwrap().dim(),
        (0, 3)
    );
    assert_eq!(cholesky(&e).unwrap().dim(), (0, 0));
    assert_eq!(eigvalsh(&e).unwrap().len(), 0);
    assert_eq!(singular_values(&e).unwrap().len(), 0);
    assert_eq!(
        singular_values(&Array2::<T>::zeros((0, 3))).unwrap().len(),
        0
    );
    assert_eq!(
        singular_values(&Array2::<T>::zeros((3, 0))).unwrap().len(),
        0
    );
    // lstsq: the minimum-norm solution of an empty system is zero.
    let x = lstsq(&Array2::<T>::zeros((0, 3)), &Array1::<T>::zeros(0)).unwrap();
    assert_eq!(x, Array1::<T>::zeros(3));
    assert_eq!(
        lstsq(&Array2::<T>::zeros((3, 0)), &Array1::<T>::ones(3))
            .unwrap()
            .len(),
        0
    );
    // Zero right-hand sides for a regular matrix.
    assert_eq!(
        solve(&Array2::<T>::eye(3), &Array2::<T>::zeros((3, 0)))
            .unwrap()
            .dim(),
        (3, 0)
    );
    // An all-zero matrix has least-squares solution zero (every singular value is cut).
    let x = lstsq(&Array2::<T>::zeros((3, 2)), &Array1::<T>::ones(3)).unwrap();
    assert_eq!(x, Array1::<T>::zeros(2));
}

fn one_by_one_matrices<T: Float>() {
    let a = mat::<T>(&array![[2.0]]);
    assert_eq!(
        solve(&a, &vec1::<T>(&array![4.0])).unwrap(),
        vec1::<T>(&array![2.0])
    );
    assert_eq!(inv(&a).unwrap(), mat::<T>(&array![[0.5]]));
    assert_eq!(det(&mat::<T>(&array![[-3.0]])).unwrap(), t(-3.0));
    assert_eq!(
        cholesky(&mat::<T>(&array![[4.0]])).unwrap(),
        mat::<T>(&array![[2.0]])
    );
    assert!(matches!(
        cholesky(&mat::<T>(&array![[-4.0]])),
        Err(Error::NotPositiveDefinite { minor: 1, .. })
    ));
    assert_eq!(
        eigvalsh(&mat::<T>(&array![[5.0]])).unwrap(),
        vec1::<T>(&array![5.0])
    );
    assert_eq!(
        singular_values(&mat::<T>(&array![[-5.0]])).unwrap(),
        vec1::<T>(&array![5.0])
    );
    assert_eq!(
        lstsq(&a, &vec1::<T>(&array![4.0])).unwrap(),
        vec1::<T>(&array![2.0])
    );
    assert_eq!(
        lstsq(&mat::<T>(&array![[0.0]]), &vec1::<T>(&array![4.0])).unwrap(),
        vec1::<T>(&array![0.0])
    );
    assert!(matches!(
        solve(&mat::<T>(&array![[0.0]]), &vec1::<T>(&array![1.0])),
        Err(Error::Singular { pivot: 0, .. })
    ));
}

fn row_and_column_matrices<T: Float>() {
    // 1×n: one equation; the minimum-norm solution is aᵀ·b / ‖a‖².
    let row = mat::<T>(&array![[1.0, 2.0, 2.0]]);
    let x = lstsq(&row, &vec1::<T>(&array![9.0])).unwrap();
    let want = vec1::<T>(&array![1.0, 2.0, 2.0]);
    let tol = t::<T>(100.0) * T::epsilon();
    assert!(
        x.iter().zip(&want).all(|(g, w)| (*g - *w).abs() <= tol),
        "{x}"
    );
    let s = singular_values(&row).unwrap();
    assert_eq!(s.len(), 1);
    assert!((s[0] - t(3.0)).abs() <= tol);
    // n×1 (a view of the row: a transposed 1×n), overdetermined.
    let col = row.t();
    let x = lstsq(&col, &vec1::<T>(&array![1.0, 2.0, 2.0])).unwrap();
    assert!((x[0] - T::one()).abs() <= tol, "{x}");
    assert!((singular_values(&col).unwrap()[0] - t(3.0)).abs() <= tol);
}

fn only_the_lower_triangle_is_read<T: Float>() {
    let lower = mat::<T>(&array![[4.0, 0.0, 0.0], [2.0, 5.0, 0.0], [1.0, 3.0, 6.0]]);
    let symmetric = mat::<T>(&array![[4.0, 2.0, 1.0], [2.0, 5.0, 3.0], [1.0, 3.0, 6.0]]);
    let garbage = mat::<T>(&array![[4.0, -70.0, 1e6], [2.0, 5.0, 8.0], [1.0, 3.0, 6.0]]);
    let l = cholesky(&symmetric).unwrap();
    assert_eq!(cholesky(&lower).unwrap(), l);
    assert_eq!(cholesky(&garbage).unwrap(), l);
    // The upper triangle of L is exactly zero.
    for ((i, j), &x) in l.indexed_iter() {
        if j > i {
            assert_eq!(x, T::zero());
        }
    }
    let w = eigvalsh(&symmetric).unwrap();
    assert_eq!(eigvalsh(&lower).unwrap(), w);
    assert_eq!(eigvalsh(&garbage).unwrap(), w);
}

fn sizes_beyond_lapack_integers_are_refused_before_reading<T: Float>() {
    // Broadcast views: huge logical shapes, one stored element. Each call must stop at the
    // size check, before touching (checking, copying) 2^62 elements.
    let one = Array2::<T>::ones((1, 1));
    let big = 1usize << 31;
    let huge: ArrayView2<'_, T> = one.broadcast((big, big)).unwrap();
    let b_one = Array1::<T>::ones(1);
    let b: ArrayView1<'_, T> = b_one.broadcast(big).unwrap();
    let too_large = |r: Result<(), Error>| {
        assert!(matches!(r, Err(Error::DimensionTooLarge { .. })), "{r:?}");
    };
    too_large(solve(&huge, &b).map(drop));
    too_large(inv(&huge).map(drop));
    too_large(det(&huge).map(drop));
    too_large(cholesky(&huge).map(drop));
    too_large(eigvalsh(&huge).map(drop));
    too_large(singular_values(&huge).map(drop));
    too_large(lstsq(&huge, &b).map(drop));
    // Each dimension fits, the element count does not.
    let wide = one.broadcast((1 << 16, 1 << 16)).unwrap();
    too_large(det(&wide).map(drop));
    too_large(singular_values(&wide).map(drop));
    // lstsq's SVD workspace grows as min(m, n)².
    let n = parlinalg::LSTSQ_MAX_MIN_DIM + 1;
    let square = one.broadcast((n, n)).unwrap();
    too_large(lstsq(&square, &b_one.broadcast(n).unwrap()).map(drop));
}

fn broadcast_and_reversed_inputs_work<T: Float>() {
    // A stride-0 view of one row repeated: singular, and said so.
    let row = vec1::<T>(&array![1.0, 2.0]);
    let a = row.broadcast((2, 2)).unwrap();
    assert!(matches!(
        solve(&a, &Array1::<T>::ones(2)),
        Err(Error::Singular { .. })
    ));
    // A broadcast right-hand side and reversed views.
    let a = mat::<T>(&array![[2.0, 1.0], [1.0, 3.0]]);
    let one = Array1::<T>::ones(1);
    let b = one.broadcast(2).unwrap();
    let x = solve(&a.slice(ndarray::s![..;-1, ..;-1]), &b).unwrap();
    // Reversing both axes gives [[3, 1], [1, 2]]; its solution of [1, 1] is [0.2, 0.4].
    let tol = t::<T>(10.0) * T::epsilon();
    assert!(
        (x[0] - t(0.2)).abs() <= tol && (x[1] - t(0.4)).abs() <= tol,
        "{x}"
    );
}
