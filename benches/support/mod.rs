//! What the benches share: seeded matrices and a direct `cblas_?gemm` (through `cblas-sys`, an
//! independent declaration of the symbols parlinalg calls), the baseline of the facade benches.
#![allow(dead_code)] // each bench uses a part

pub mod interleave;
pub mod lapack;

use cblas_sys::{cblas_dgemm, cblas_sgemm, CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use parlinalg::ndarray::Array2;
pub use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
pub use rand::{Rng, SeedableRng};

/// A seeded n×n matrix, uniform in [-0.5, 0.5).
pub fn matrix<T: parlinalg::Float>(n: usize, seed: u64) -> Array2<T> {
    let mut r = SmallRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, n), || {
        T::from(r.random_range(-0.5..0.5)).expect("f32 and f64 hold it")
    })
}

/// A seeded stream of values in [-1, 1) (as the numpy scripts).
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut r = SmallRng::seed_from_u64(seed);
    move || r.random_range(-1.0..1.0)
}

/// Shuffles `v` in place, reproducibly for `rng`.
pub fn shuffle(v: &mut [usize], rng: &mut SmallRng) {
    v.shuffle(rng);
}

/// Direct `cblas_?gemm` of two C-order n×n matrices into `c`.
pub trait DirectGemm: parlinalg::Float {
    /// `f32` or `f64`, for tables.
    const NAME: &'static str;
    fn gemm(n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

macro_rules! direct {
    ($t:ty, $name:literal, $f:ident) => {
        impl DirectGemm for $t {
            const NAME: &'static str = $name;
            fn gemm(n: usize, a: &[$t], b: &[$t], c: &mut [$t]) {
                let len = n * n;
                assert!(a.len() >= len && b.len() >= len && c.len() >= len);
                let n = i32::try_from(n).expect("bench sizes fit the BLAS integer");
                // SAFETY: all three buffers hold n·n elements (asserted), C order, ld = n.
                unsafe {
                    $f(
                        CBLAS_LAYOUT::CblasRowMajor,
                        CBLAS_TRANSPOSE::CblasNoTrans,
                        CBLAS_TRANSPOSE::CblasNoTrans,
                        n,
                        n,
                        n,
                        1.0,
                        a.as_ptr(),
                        n,
                        b.as_ptr(),
                        n,
                        0.0,
                        c.as_mut_ptr(),
                        n,
                    )
                }
            }
        }
    };
}
direct!(f64, "f64", cblas_dgemm);
direct!(f32, "f32", cblas_sgemm);
