//! The OpenBLAS layer, at the bottom: the raw symbols (`ffi`), what the loaded library says about
//! itself (`info`), whether its kernel suits this CPU and the in-process switch (`kernel`), and
//! which BLAS libraries the process has loaded (`loaded`); and the one heap setting its threaded
//! calls need (`heap`). It knows neither ndarray nor parlinalg's threads; the thread layer above
//! it is the only code that sets thread counts.

pub(crate) mod backend;
pub(crate) mod ffi;
pub(crate) mod heap;
pub(crate) mod info;
pub mod kernel;
mod loaded;

pub use loaded::loaded_blas_libraries;
pub(crate) use loaded::loader_lock;
