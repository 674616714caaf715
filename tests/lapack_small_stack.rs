//! LU-based routines called from threads with small stacks, with more than one BLAS thread.
//!
//! OpenBLAS's multithreaded `?getrf` needs megabytes of the caller's stack (OpenBLAS issues
//! #246, #1082, #3229); a Rust thread has 2 MiB by default, and the overflow is a SIGSEGV
//! that takes the whole process down. parlinalg factorises large matrices on a helper thread
//! with a large stack: this file fails (the test process dies) if that guard regresses. Its own
//! file, because it sets the process-wide BLAS thread count.

use ndarray::{Array1, Array2};
use parlinalg::{det, inv, matvec, solve, Float};

fn matrix<T: Float>(n: usize) -> Array2<T> {
    // Diagonally weighted, so regular and well conditioned; partial pivoting still runs.
    Array2::from_shape_fn((n, n), |(i, j)| {
        let v = ((i * 7 + j * 13) % 17) as f64 - 8.0 + if i == j { 3.0 * n as f64 } else { 0.0 };
        T::from(v).unwrap()
    })
}

fn lu_routines_on_a_small_stack<T: Float>(n: usize, stack: usize) {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let a = matrix::<T>(n);
            let b = Array1::<T>::ones(n);
            let x = solve(&a, &b).unwrap();
            let r = &matvec(&a, &x).unwrap() - &b;
            let tol = T::from(1e3).unwrap() * T::epsilon();
            assert!(
                r.iter().all(|v| v.abs() <= tol),
                "n = {n}: residual too large"
            );
            assert_eq!(inv(&a).unwrap().dim(), (n, n));
            assert!(det(&a).unwrap() != T::zero());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn solve_inv_det_from_threads_with_small_stacks() {
    // At least two BLAS threads, so that OpenBLAS takes its multithreaded getrf at n = 300
    // (at n = 100 the thread layer gives getrf one thread: it runs in place).
    let before = parlinalg::threads::blas_threads();
    parlinalg::threads::set_blas_threads(before.max(2).min(parlinalg::threads::blas_max_threads()))
        .unwrap();
    for n in [100, 300] {
        for stack in [256 << 10, 2 << 20] {
            lu_routines_on_a_small_stack::<f64>(n, stack);
            lu_routines_on_a_small_stack::<f32>(n, stack);
        }
    }
    parlinalg::threads::set_blas_threads(before).unwrap();
}
