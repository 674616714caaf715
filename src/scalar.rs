//! The element types parlinalg computes with.

use crate::lapack::LapackScalar;
use crate::openblas::ffi::BlasScalar;
use crate::simd::SimdScalar;

/// `f32` or `f64`: the element types every parlinalg function takes.
///
/// The trait is sealed: its BLAS and LAPACK dispatch and its SIMD kernels live in supertraits
/// users cannot name or implement.
pub trait Float:
    BlasScalar
    + LapackScalar
    + SimdScalar
    + ndarray::LinalgScalar
    + num_traits::Float
    + std::fmt::Debug
    + std::fmt::Display
    + Default
    + Send
    + Sync
    + 'static
{
}

impl Float for f32 {}
impl Float for f64 {}
