//! Is OpenBLAS running the right kernel for this CPU?
//!
//! A `DYNAMIC_ARCH` OpenBLAS holds kernels for many CPUs and picks one when it loads. A build
//! older than the CPU does not recognise it and falls back to a generic kernel: Debian's 0.3.21
//! on a recent Xeon runs `Prescott` (SSE3) and its dgemm is 4.6× slower than with `SkylakeX`.
//! OpenBLAS reads `OPENBLAS_CORETYPE` when it selects its kernel table: at load, and again when a
//! `DYNAMIC_ARCH` build is asked to re-select it (`gotoblas_dynamic_init`).
//!
//! [`check_loaded_kernel`] compares the running kernel with the best instruction set the CPU and the OS
//! support (from CPUID) and returns a [`KernelFinding`] with the exact fix; it never recommends
//! a kernel that needs an instruction the CPU lacks. Every program that links parlinalg applies
//! that fix in-process before `main` ([`kernel_selection`] says what happened), so a user's
//! program runs the right kernel without any variable set.
//!
//! Re-executing the program with `OPENBLAS_CORETYPE` set is never needed: every `DYNAMIC_ARCH`
//! build has `gotoblas_dynamic_init`, and a build without `DYNAMIC_ARCH` holds one CPU's
//! kernels, which no variable can change.

mod check;
mod cpu;
mod switch;

pub use crate::env::{CORETYPE_VAR, SWITCH_VAR};
pub(crate) use check::check_kernel;
pub use check::{check_loaded_kernel, KernelFinding};
pub use cpu::{CpuFeatures, IsaLevel};
pub use switch::{kernel_selection, KernelSelection};
