//! The only place with raw BLAS symbols.
//!
//! Every declaration mirrors one prototype of OpenBLAS 0.3's `cblas.h` (where `blasint` is
//! `int` in the LP64 builds Debian ships). This module knows nothing of ndarray: callers pass
//! dimensions, pointers and leading dimensions that the layout resolver already checked.

use std::ffi::{c_char, c_int};

/// `enum CBLAS_ORDER` of `cblas.h`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // ColMajor is part of the mirrored enum; we always pass RowMajor.
pub(crate) enum Order {
    RowMajor = 101,
    ColMajor = 102,
}

/// `enum CBLAS_TRANSPOSE` of `cblas.h` (the conjugate variants are not needed for real types).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transpose {
    /// Use the stored matrix as it is.
    NoTrans = 111,
    /// Use the transpose of the stored matrix.
    Trans = 112,
}

extern "C" {
    fn cblas_sgemm(
        order: Order,
        transa: Transpose,
        transb: Transpose,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn cblas_dgemm(
        order: Order,
        transa: Transpose,
        transb: Transpose,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f64,
        a: *const f64,
        lda: c_int,
        b: *const f64,
        ldb: c_int,
        beta: f64,
        c: *mut f64,
        ldc: c_int,
    );
    fn cblas_sgemv(
        order: Order,
        trans: Transpose,
        m: c_int,
        n: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        x: *const f32,
        incx: c_int,
        beta: f32,
        y: *mut f32,
        incy: c_int,
    );
    fn cblas_dgemv(
        order: Order,
        trans: Transpose,
        m: c_int,
        n: c_int,
        alpha: f64,
        a: *const f64,
        lda: c_int,
        x: *const f64,
        incx: c_int,
        beta: f64,
        y: *mut f64,
        incy: c_int,
    );
    fn cblas_sdot(n: c_int, x: *const f32, incx: c_int, y: *const f32, incy: c_int) -> f32;
    fn cblas_ddot(n: c_int, x: *const f64, incx: c_int, y: *const f64, incy: c_int) -> f64;

    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_num_procs() -> c_int;
    fn openblas_get_config() -> *mut c_char;
    fn openblas_get_corename() -> *mut c_char;
    fn openblas_get_parallel() -> c_int;
}

/// A matrix operand as BLAS sees it: storage pointer, whether to transpose the stored
/// row-major matrix, and its leading dimension.
#[derive(Debug, Clone, Copy)]
pub struct MatArg<T> {
    /// First element of the stored matrix.
    pub ptr: *const T,
    /// Whether BLAS transposes the stored row-major matrix.
    pub trans: Transpose,
    /// Leading dimension of the stored matrix.
    pub ld: c_int,
}

impl<T> MatArg<T> {
    /// The same storage read as the transpose: `op(A)ᵀ`.
    pub fn transposed(self) -> Self {
        let trans = match self.trans {
            Transpose::NoTrans => Transpose::Trans,
            Transpose::Trans => Transpose::NoTrans,
        };
        MatArg { trans, ..self }
    }
}

/// A strided vector operand.
#[derive(Debug, Clone, Copy)]
pub struct VecArg<T> {
    /// First element.
    pub ptr: *const T,
    /// Distance between elements (≥ 1).
    pub inc: c_int,
}

/// Per-type dispatch to the `s` / `d` routines. Implemented for `f32` and `f64` only. The
/// method names carry a `cblas_` prefix so they never collide with users' own traits.
///
/// The trait is public inside a private module, so users can name neither it nor its methods:
/// it seals [`crate::Float`] (hence `unreachable_pub` is allowed here: `pub(crate)` would make it
/// a private bound of a public trait).
#[allow(unreachable_pub)]
pub trait BlasScalar: Copy + Send + Sync + 'static {
    /// `C = op(A) · op(B)` with `C` row-major `m × n` (leading dimension `ldc`), via
    /// `cblas_?gemm(RowMajor, ..., alpha = 1, ..., beta = 0, ...)`.
    ///
    /// # Safety
    /// `m, n, k ≥ 1`; `a` describes a readable stored matrix that is `m × k` after `a.trans`
    /// with `a.ld` no smaller than its stored width, likewise `b` for `k × n`; `c` is valid for
    /// writes of `m` rows of `ldc ≥ n` elements. `c` need not be initialised (beta = 0: BLAS
    /// does not read it) and must not overlap `a` or `b`.
    #[doc(hidden)]
    unsafe fn cblas_gemm(
        m: c_int,
        n: c_int,
        k: c_int,
        a: MatArg<Self>,
        b: MatArg<Self>,
        c: *mut Self,
        ldc: c_int,
    );

    /// `y = op(A) · x` via `cblas_?gemv(RowMajor, ...)`, where the stored matrix is
    /// `rows × cols` row-major and `y` is contiguous.
    ///
    /// # Safety
    /// `rows, cols ≥ 1`; `a` is a readable stored `rows × cols` matrix with `a.ld ≥ cols`;
    /// `x` is readable at `len(op(A) columns)` positions spaced by `x.inc ≥ 1`; `y` is valid for
    /// writes of `len(op(A) rows)` contiguous elements, need not be initialised, and does not
    /// overlap the inputs.
    #[doc(hidden)]
    unsafe fn cblas_gemv(rows: c_int, cols: c_int, a: MatArg<Self>, x: VecArg<Self>, y: *mut Self);

    /// `Σ x[i]·y[i]` via `cblas_?dot`.
    ///
    /// # Safety
    /// `n ≥ 0`; `x` and `y` are readable at `n` positions spaced by their `inc ≥ 1`.
    #[doc(hidden)]
    unsafe fn cblas_dot(n: c_int, x: VecArg<Self>, y: VecArg<Self>) -> Self;
}

macro_rules! impl_blas_scalar {
    ($t:ty, $gemm:ident, $gemv:ident, $dot:ident) => {
        impl BlasScalar for $t {
            #[inline]
            unsafe fn cblas_gemm(
                m: c_int,
                n: c_int,
                k: c_int,
                a: MatArg<Self>,
                b: MatArg<Self>,
                c: *mut Self,
                ldc: c_int,
            ) {
                // SAFETY: the caller upholds this method's contract (dimensions ≥ 1, operands
                // readable with leading dimensions no smaller than their stored widths, `c`
                // writable for m × ldc); alpha = 1 and beta = 0 are plain values.
                unsafe {
                    $gemm(
                        Order::RowMajor,
                        a.trans,
                        b.trans,
                        m,
                        n,
                        k,
                        1.0,
                        a.ptr,
                        a.ld,
                        b.ptr,
                        b.ld,
                        0.0,
                        c,
                        ldc,
                    )
                }
            }

            unsafe fn cblas_gemv(
                rows: c_int,
                cols: c_int,
                a: MatArg<Self>,
                x: VecArg<Self>,
                y: *mut Self,
            ) {
                // SAFETY: the caller upholds this method's contract: the stored matrix is
                // rows × cols with ld ≥ cols, `x` and `y` match op(A)'s shape, incy = 1.
                unsafe {
                    $gemv(
                        Order::RowMajor,
                        a.trans,
                        rows,
                        cols,
                        1.0,
                        a.ptr,
                        a.ld,
                        x.ptr,
                        x.inc,
                        0.0,
                        y,
                        1,
                    )
                }
            }

            unsafe fn cblas_dot(n: c_int, x: VecArg<Self>, y: VecArg<Self>) -> Self {
                // SAFETY: the caller guarantees both vectors are readable at n strided positions.
                unsafe { $dot(n, x.ptr, x.inc, y.ptr, y.inc) }
            }
        }
    };
}

impl_blas_scalar!(f32, cblas_sgemm, cblas_sgemv, cblas_sdot);
impl_blas_scalar!(f64, cblas_dgemm, cblas_dgemv, cblas_ddot);

/// Threading layer as `openblas_get_parallel` reports it: 0 sequential, 1 pthreads, 2 OpenMP.
pub(crate) fn get_parallel() -> c_int {
    // SAFETY: takes no arguments and reads a compile-time constant of the library.
    unsafe { openblas_get_parallel() }
}

/// Current BLAS thread count (`openblas_get_num_threads`).
pub(crate) fn get_num_threads() -> c_int {
    // SAFETY: takes no arguments; reads OpenBLAS's global thread count.
    unsafe { openblas_get_num_threads() }
}

/// Number of processors OpenBLAS detected at load (`openblas_get_num_procs`).
pub(crate) fn get_num_procs() -> c_int {
    // SAFETY: takes no arguments; reads a value fixed when OpenBLAS loaded.
    unsafe { openblas_get_num_procs() }
}

/// Sets the BLAS thread count (`openblas_set_num_threads`): process-wide. In the OpenMP build it
/// also resizes the threads' shared buffers, so only the backend calls it there, with no other
/// multithreaded call in flight (`backend.rs`).
pub(crate) fn set_num_threads(n: c_int) {
    // SAFETY: OpenBLAS accepts any int (it clamps to [1, MAX_THREADS]); callers pass n ≥ 1.
    unsafe { openblas_set_num_threads(n) }
}

/// `openblas_get_config()`, copied into an owned string.
pub(crate) fn get_config() -> String {
    // SAFETY: openblas_get_config returns a pointer to a static NUL-terminated buffer (or, in
    // builds where it is missing, the link would fail); the pointer is checked for null.
    unsafe { owned_c_string(openblas_get_config()) }
}

/// `openblas_get_corename()`, copied into an owned string.
pub(crate) fn get_corename() -> String {
    // SAFETY: as for get_config: a static NUL-terminated string or null, checked below.
    unsafe { owned_c_string(openblas_get_corename()) }
}

/// Address of a symbol that lives in the loaded OpenBLAS, for `dladdr`.
pub(crate) fn symbol_address() -> *const std::ffi::c_void {
    openblas_get_config as *const std::ffi::c_void
}

/// Copies a C string that OpenBLAS owns.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that stays valid during the call.
unsafe fn owned_c_string(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: p is non-null and NUL-terminated per this function's contract.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_owned()
}

/// `gotoblas_dynamic_quit` and `gotoblas_dynamic_init` of a `DYNAMIC_ARCH` OpenBLAS, looked up at
/// run time in the library that holds our cblas symbols: other builds (one CPU, or another BLAS)
/// lack them and still link and run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DynamicArch {
    quit: unsafe extern "C" fn(),
    init: unsafe extern "C" fn(),
}

impl DynamicArch {
    /// Both symbols, or why not.
    pub(crate) fn lookup() -> std::result::Result<Self, String> {
        let file =
            loaded_from().ok_or("the dynamic loader cannot say which file holds OpenBLAS")?;
        let c_file = std::ffi::CString::new(file.as_os_str().as_encoded_bytes())
            .map_err(|_| "the OpenBLAS path holds a NUL byte".to_owned())?;
        // SAFETY: c_file is a valid NUL-terminated path; RTLD_NOLOAD only returns a handle to an
        // object that is already mapped (it never loads or runs anything), or null.
        let handle = unsafe { libc::dlopen(c_file.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        if handle.is_null() {
            return Err(format!("{} is not open in this process", file.display()));
        }
        let find = |name: &std::ffi::CStr| {
            // SAFETY: handle came from dlopen above and stays valid (the object is never
            // unloaded: we hold a reference); name is NUL-terminated.
            let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
            (!p.is_null()).then_some(p)
        };
        let (Some(quit), Some(init)) = (
            find(c"gotoblas_dynamic_quit"),
            find(c"gotoblas_dynamic_init"),
        ) else {
            return Err(format!(
                "{} exports no gotoblas_dynamic_quit/gotoblas_dynamic_init (not a DYNAMIC_ARCH build)",
                file.display()
            ));
        };
        // SAFETY: both symbols are `void f(void)` in OpenBLAS's driver/others/dynamic.c; a
        // non-null dlsym result is the function's address.
        unsafe {
            Ok(DynamicArch {
                quit: std::mem::transmute::<*mut std::ffi::c_void, unsafe extern "C" fn()>(quit),
                init: std::mem::transmute::<*mut std::ffi::c_void, unsafe extern "C" fn()>(init),
            })
        }
    }

    /// Drops the kernel table and selects it again, as at load (`gotoblas_dynamic_init` reads
    /// `OPENBLAS_CORETYPE`, or CPUID when it is unset).
    ///
    /// # Safety
    /// No thread may be inside OpenBLAS or enter it until this returns: between the two calls the
    /// kernel table is null and any BLAS call dereferences it.
    pub(crate) unsafe fn reselect(self) {
        // SAFETY: the caller guarantees no concurrent BLAS call; quit only clears the table
        // pointer and init fills it again (and sets the table's blocking parameters).
        unsafe {
            (self.quit)();
            (self.init)();
        }
    }
}

/// The file the OpenBLAS symbols were loaded from (via `dladdr`), when the loader can say.
pub(crate) fn loaded_from() -> Option<std::path::PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let _loader = super::loaded::loader_lock();
    // SAFETY: dladdr only reads the address and writes `info`, which is valid for writes; a
    // zero return means "not found" and leaves nothing we read.
    let found = unsafe { libc::dladdr(symbol_address(), info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr returned non-zero, so it filled `info` (it was zeroed before anyway).
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is non-null and points to the loader's NUL-terminated path string, valid
    // while the object stays loaded (OpenBLAS is never unloaded).
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    Some(std::path::PathBuf::from(
        name.to_string_lossy().into_owned(),
    ))
}
