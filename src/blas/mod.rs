//! Matrix products and dot products in OpenBLAS.
//!
//! | function | f32 | f64 |
//! |---|---|---|
//! | [`matmul`](crate::matmul) | `cblas_sgemm` | `cblas_dgemm` |
//! | [`matvec`](crate::matvec) | `cblas_sgemv` | `cblas_dgemv` |
//! | [`dot`](crate::dot) | `cblas_sdot` | `cblas_ddot` |
//!
//! Every operand layout BLAS can read goes to BLAS in place (C order, F order, `a.t()`,
//! sub-blocks, row-strided views, positive vector strides); the others (inner stride ≠ 1 on both
//! axes, negative strides, broadcast axes) are copied once into a C-order buffer first. The
//! result is a new C-order array, written by BLAS directly (no zero-fill first).

mod batch;
mod layout;

pub use batch::{matmul_batch, matmul_batch_into, matmul_batch_with};

use std::ffi::c_int;
use std::marker::PhantomData;

use ndarray::{Array1, Array2, ArrayBase, ArrayViewMut2, CowArray, Data, DataMut, Ix1, Ix2};

use crate::alloc::{filled, uninit_buffer};
use crate::openblas::ffi::{MatArg, Transpose, VecArg};
use crate::threads::{CallSize, Runtime};
use crate::{Error, Float, Result};
use layout::{matrix_layout, vector_inc};

/// Matrix product `a · b` of an `m × k` and a `k × n` matrix, in `cblas_?gemm`.
///
/// Takes any layout (owned arrays, views, `a.t()`, slices with steps); see the
/// [module docs](crate#blas-level) for which layouts are copied. An empty inner dimension
/// (`k = 0`) gives an `m × n` matrix of zeros, as numpy does.
///
/// # Errors
/// - [`Error::ShapeMismatch`] when `a`'s columns differ from `b`'s rows (both shapes given);
/// - [`Error::DimensionTooLarge`] when a dimension exceeds the BLAS integer (`i32::MAX`);
/// - [`Error::Allocation`] when the result cannot be allocated.
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
/// let c = parlinalg::matmul(&a.t(), &a)?; // aᵀ·a, no copy of aᵀ
/// assert_eq!(c, array![[35.0, 44.0], [44.0, 56.0]]);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matmul<T, SA, SB>(a: &ArrayBase<SA, Ix2>, b: &ArrayBase<SB, Ix2>) -> Result<Array2<T>>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
{
    let rt = crate::threads::enter()?;
    const OP: &str = "matmul";
    let dims = product_dims(OP, a, b)?;
    let (m, n, k) = dims.usize();
    let len = element_count(OP, &[m, n])?;
    if len == 0 || k == 0 {
        let zeros = filled(OP, len, T::zero())?;
        return Ok(Array2::from_shape_vec((m, n), zeros).expect("shape matches length"));
    }
    // The result first: when it cannot be allocated, nothing is copied.
    let mut c = uninit_buffer::<T>(OP, len)?;
    // SAFETY: `c` has capacity m·n: m rows of ldc = n, freshly allocated, overlapping nothing.
    unsafe { gemm_into_ptr(rt, OP, a, b, dims, c.as_mut_ptr(), dims.n)? };
    // SAFETY: gemm with beta = 0 wrote all m·n elements of `c`.
    unsafe { c.set_len(len) };
    Ok(Array2::from_shape_vec((m, n), c).expect("shape matches length"))
}

/// Matrix product `a · b` written into `out` (numpy's `out=`), in `cblas_?gemm`: no
/// allocation when `out` is C order, F order, or a sub-block of either.
///
/// `out` is overwritten, never read. Other layouts of `out` (steps on both axes, negative
/// strides) get the product through a temporary.
///
/// # Errors
/// As [`matmul`], plus [`Error::ShapeMismatch`] when `out` is not `m × n`.
///
/// # Example
/// ```
/// use parlinalg::ndarray::{array, Array2};
///
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// let mut c = Array2::zeros((2, 2));
/// for _ in 0..3 {
///     parlinalg::matmul_into(&a, &a, &mut c)?; // reuses c's memory
/// }
/// assert_eq!(c, array![[7.0, 10.0], [15.0, 22.0]]);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matmul_into<T, SA, SB, SC>(
    a: &ArrayBase<SA, Ix2>,
    b: &ArrayBase<SB, Ix2>,
    out: &mut ArrayBase<SC, Ix2>,
) -> Result<()>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
    SC: DataMut<Elem = T>,
{
    let rt = crate::threads::enter()?;
    const OP: &str = "matmul_into";
    let dims = product_dims(OP, a, b)?;
    let (m, n, k) = dims.usize();
    if out.dim() != (m, n) {
        return Err(Error::shape(
            OP,
            &[m, n],
            out.shape(),
            format!(
                "the product is {m}×{n} but out is {}×{}",
                out.nrows(),
                out.ncols()
            ),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(T::zero());
        return Ok(());
    }
    // All three plain C order (what most programs hold): straight to BLAS, no layout to
    // resolve (the tiny-product fast path).
    if plain_c_order(a) && plain_c_order(b) && plain_c_order(out) {
        let arg = |ptr, ld| MatArg {
            ptr,
            trans: Transpose::NoTrans,
            ld,
        };
        let (pa, pb, c) = (
            arg(a.as_ptr(), dims.k),
            arg(b.as_ptr(), dims.n),
            out.as_mut_ptr(),
        );
        rt.blas_call(CallSize::Gemm { m, n, k }, || {
            // SAFETY: a (m × k), b (k × n) and out (m × n) are C order with unit inner stride
            // and rows `k`, `n` and `n` apart (checked just above), every dimension ≥ 1 and
            // within c_int (`product_dims`); out is exclusively borrowed, so it overlaps
            // neither input.
            unsafe { T::cblas_gemm(dims.m, dims.n, dims.k, pa, pb, c, dims.n) }
        });
        return Ok(());
    }
    product_into_view(rt, OP, a, b, dims, &mut out.view_mut())
}

/// Whether a matrix (every dimension ≥ 1) is stored as plain C order: unit stride along a row,
/// rows exactly one row apart.
#[inline(always)]
fn plain_c_order<S: ndarray::RawData>(a: &ArrayBase<S, Ix2>) -> bool {
    let (rows, cols) = a.dim();
    let strides = a.strides();
    (cols == 1 || strides[1] == 1) && (rows == 1 || strides[0] == cols as isize)
}

/// `a · b` (of `dims`, every dimension ≥ 1) written into the `m × n` view `out`: straight into
/// it when it is C order, F order or a sub-block of either, through a temporary otherwise.
#[inline]
fn product_into_view<T, SA, SB>(
    rt: Runtime,
    op: &'static str,
    a: &ArrayBase<SA, Ix2>,
    b: &ArrayBase<SB, Ix2>,
    dims: ProductDims,
    out: &mut ArrayViewMut2<'_, T>,
) -> Result<()>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
{
    let (m, n, _) = dims.usize();
    let strides = out.strides();
    let layout = matrix_layout(m, n, strides[0], strides[1])
        .and_then(|l| Some((l.trans, c_int::try_from(l.ld).ok()?)));
    let Some((trans, ldc)) = layout else {
        out.assign(&matmul(a, b)?);
        return Ok(());
    };
    let c = out.as_mut_ptr();
    match trans {
        // SAFETY: `out` is an m × n row-major block with ldc ≥ n (checked by `matrix_layout`),
        // exclusively borrowed, so it overlaps neither input.
        Transpose::NoTrans => unsafe { gemm_into_ptr(rt, op, a, b, dims, c, ldc)? },
        // `out` is column-major: write its transpose, an n × m row-major block, as bᵀ·aᵀ.
        // SAFETY: as above; `out` stored row-major is n × m with ldc ≥ m.
        Transpose::Trans => unsafe {
            gemm_into_ptr(rt, op, &b.t(), &a.t(), dims.transposed(), c, ldc)?
        },
    }
    Ok(())
}

/// `m, n, k` of `a · b` as BLAS integers.
#[derive(Debug, Clone, Copy)]
struct ProductDims {
    m: c_int,
    n: c_int,
    k: c_int,
    /// The same, as the sizes they were converted from.
    sizes: (usize, usize, usize),
}

impl ProductDims {
    /// The dimensions of (a·b)ᵀ = bᵀ·aᵀ.
    fn transposed(self) -> Self {
        ProductDims {
            m: self.n,
            n: self.m,
            k: self.k,
            sizes: (self.sizes.1, self.sizes.0, self.sizes.2),
        }
    }

    /// Checks `m, n, k` against the BLAS integer.
    #[inline(always)]
    fn new(op: &'static str, m: usize, n: usize, k: usize) -> Result<Self> {
        Ok(ProductDims {
            m: blas_int(op, m)?,
            n: blas_int(op, n)?,
            k: blas_int(op, k)?,
            sizes: (m, n, k),
        })
    }

    #[inline]
    fn usize(self) -> (usize, usize, usize) {
        self.sizes
    }
}

/// Writes `a · b` (`dims`, all ≥ 1) into the row-major block at `c` with leading dimension
/// `ldc`, through `cblas_?gemm` under the thread controller.
///
/// # Safety
/// `c` is valid for writes of `dims.m` rows of `ldc ≥ dims.n` elements and overlaps neither
/// input; `a` is `dims.m × dims.k` and `b` is `dims.k × dims.n`, all dimensions ≥ 1.
#[inline]
unsafe fn gemm_into_ptr<T, SA, SB>(
    rt: Runtime,
    op: &'static str,
    a: &ArrayBase<SA, Ix2>,
    b: &ArrayBase<SB, Ix2>,
    dims: ProductDims,
    c: *mut T,
    ldc: c_int,
) -> Result<()>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
{
    // Both read in place: the tiny-product fast path, with no operand struct to build.
    if let (Some(pa), Some(pb)) = (MatrixOperand::in_place(a), MatrixOperand::in_place(b)) {
        let (m, n, k) = dims.usize();
        rt.blas_call(CallSize::Gemm { m, n, k }, || {
            // SAFETY: as below; both operands are the arrays themselves.
            unsafe { T::cblas_gemm(dims.m, dims.n, dims.k, pa, pb, c, ldc) }
        });
        return Ok(());
    }
    let a = MatrixOperand::new(op, a)?;
    let b = MatrixOperand::new(op, b)?;
    let (m, n, k) = dims.usize();
    rt.blas_call(CallSize::Gemm { m, n, k }, || {
        // SAFETY: each operand's layout was checked by `matrix_layout` against its own shape
        // and strides (ld ≥ stored width, unit inner stride) and borrows live data for the
        // call; the dimensions are ≥ 1 and `c` is valid per this function's contract.
        unsafe { T::cblas_gemm(dims.m, dims.n, dims.k, a.arg(), b.arg(), c, ldc) }
    });
    Ok(())
}

/// Checks that `a · b` is defined and its dimensions fit the BLAS integer. Always inlined: its
/// `Result` returned through memory cost a store-forwarding stall per call (tiny products).
#[inline(always)]
fn product_dims<T, SA: Data<Elem = T>, SB: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<SA, Ix2>,
    b: &ArrayBase<SB, Ix2>,
) -> Result<ProductDims> {
    let ((m, k), (kb, n)) = (a.dim(), b.dim());
    if k != kb {
        return Err(inner_mismatch(op, a.shape(), b.shape()));
    }
    ProductDims::new(op, m, n, k)
}

#[cold]
#[inline(never)]
fn inner_mismatch(op: &'static str, a: &[usize], b: &[usize]) -> Error {
    Error::shape(
        op,
        a,
        b,
        format!("a has {} columns but b has {} rows", a[1], b[0]),
    )
}

/// Matrix–vector product `a · x` of an `m × k` matrix and a length-`k` vector, in
/// `cblas_?gemv`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when `x`'s length differs from `a`'s columns;
/// [`Error::DimensionTooLarge`] beyond the BLAS integer; [`Error::Allocation`].
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let a = array![[1.0_f32, 2.0], [3.0, 4.0]];
/// let y = parlinalg::matvec(&a, &array![1.0, 1.0])?;
/// assert_eq!(y, array![3.0, 7.0]);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matvec<T, SA, SX>(a: &ArrayBase<SA, Ix2>, x: &ArrayBase<SX, Ix1>) -> Result<Array1<T>>
where
    T: Float,
    SA: Data<Elem = T>,
    SX: Data<Elem = T>,
{
    let rt = crate::threads::enter()?;
    const OP: &str = "matvec";
    let (m, k) = a.dim();
    if x.len() != k {
        return Err(Error::shape(
            OP,
            a.shape(),
            x.shape(),
            format!("a has {k} columns but x has length {}", x.len()),
        ));
    }
    blas_int(OP, m)?;
    blas_int(OP, k)?;
    if m == 0 || k == 0 {
        return Ok(Array1::from_vec(filled(OP, m, T::zero())?));
    }
    let mut y = uninit_buffer::<T>(OP, m)?;
    let a = MatrixOperand::new(OP, a)?;
    let x = VectorOperand::new(OP, x)?;
    // gemv wants the stored (pre-transpose) matrix's dimensions.
    let (stored_rows, stored_cols) = match a.arg().trans {
        Transpose::NoTrans => (m, k),
        Transpose::Trans => (k, m),
    };
    let (rows, cols) = (blas_int(OP, stored_rows)?, blas_int(OP, stored_cols)?);
    let y_ptr = y.as_mut_ptr();
    rt.blas_call(CallSize::Gemv { m, n: k }, || {
        // SAFETY: the stored matrix is rows × cols (both ≥ 1, fit c_int) with the ld checked by
        // `matrix_layout`; op(A) is m × k, x has k elements at inc ≥ 1 (checked by
        // `vector_inc`), and `y` has capacity m, freshly allocated.
        unsafe { T::cblas_gemv(rows, cols, a.arg(), x.arg(), y_ptr) }
    });
    // SAFETY: gemv with beta = 0 wrote all m elements of `y`.
    unsafe { y.set_len(m) };
    Ok(Array1::from_vec(y))
}

/// Dot product `Σ x[i]·y[i]` of two vectors of equal length, in `cblas_?dot`.
///
/// The dot of two empty vectors is 0.
///
/// # Errors
/// [`Error::ShapeMismatch`] when the lengths differ; [`Error::DimensionTooLarge`] beyond the
/// BLAS integer.
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// let x = array![1.0, 2.0, 3.0];
/// assert_eq!(parlinalg::dot(&x, &x)?, 14.0);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn dot<T, SX, SY>(x: &ArrayBase<SX, Ix1>, y: &ArrayBase<SY, Ix1>) -> Result<T>
where
    T: Float,
    SX: Data<Elem = T>,
    SY: Data<Elem = T>,
{
    let rt = crate::threads::enter()?;
    const OP: &str = "dot";
    if x.len() != y.len() {
        return Err(Error::shape(
            OP,
            x.shape(),
            y.shape(),
            format!("lengths {} and {} differ", x.len(), y.len()),
        ));
    }
    let n = blas_int(OP, x.len())?;
    if n == 0 {
        return Ok(T::zero());
    }
    let x = VectorOperand::new(OP, x)?;
    let y = VectorOperand::new(OP, y)?;
    Ok(rt.blas_call(CallSize::Dot { n: x.data.len() }, || {
        // SAFETY: both vectors hold n ≥ 1 elements readable at their inc ≥ 1 (checked by
        // `vector_inc`), borrowed for the duration of the call.
        unsafe { T::cblas_dot(n, x.arg(), y.arg()) }
    }))
}

/// A matrix operand BLAS can read in place: the caller's data when its layout fits, else a
/// C-order copy that the operand owns.
struct MatrixOperand<'a, T> {
    arg: MatArg<T>,
    /// Keeps the copy alive when `arg` points into it.
    _copy: Option<Vec<T>>,
    _borrow: PhantomData<&'a T>,
}

impl<'a, T: Float> MatrixOperand<'a, T> {
    /// The operand as BLAS reads it: in place when it can (the tiny-product fast path, kept
    /// inline), a C-order copy otherwise ([`Self::copied`], out of line).
    #[inline(always)]
    fn new<S: Data<Elem = T>>(op: &'static str, a: &'a ArrayBase<S, Ix2>) -> Result<Self> {
        let (rows, cols) = a.dim();
        let strides = a.strides();
        match Self::blas_arg(a.as_ptr(), rows, cols, strides[0], strides[1]) {
            Some(arg) => Ok(MatrixOperand {
                arg,
                _copy: None,
                _borrow: PhantomData,
            }),
            None => Self::copied(op, a),
        }
    }

    /// The argument for BLAS when it can read `a` as it is.
    #[inline(always)]
    fn in_place<S: Data<Elem = T>>(a: &ArrayBase<S, Ix2>) -> Option<MatArg<T>> {
        let (rows, cols) = a.dim();
        let strides = a.strides();
        Self::blas_arg(a.as_ptr(), rows, cols, strides[0], strides[1])
    }

    #[cold]
    #[inline(never)]
    fn copied<S: Data<Elem = T>>(op: &'static str, a: &'a ArrayBase<S, Ix2>) -> Result<Self> {
        let (rows, cols) = a.dim();
        let copy = c_order_copy(op, a)?;
        let c_order_stride = isize::try_from(cols).expect("a slice's length fits isize");
        let arg = Self::blas_arg(copy.as_ptr(), rows, cols, c_order_stride, 1)
            .expect("a C-order copy always has a BLAS layout");
        Ok(MatrixOperand {
            arg,
            _copy: Some(copy),
            _borrow: PhantomData,
        })
    }

    /// `Some` when BLAS can read the matrix at `ptr` with these strides as it is, with a
    /// leading dimension that fits c_int.
    #[inline]
    fn blas_arg(
        ptr: *const T,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Option<MatArg<T>> {
        let layout = matrix_layout(rows, cols, row_stride, col_stride)?;
        let ld = c_int::try_from(layout.ld).ok()?;
        Some(MatArg {
            ptr,
            trans: layout.trans,
            ld,
        })
    }

    #[inline]
    fn arg(&self) -> MatArg<T> {
        self.arg
    }
}

/// A vector operand BLAS can read in place: the caller's view when its stride is positive and
/// fits c_int, else a contiguous copy.
struct VectorOperand<'a, T> {
    data: CowArray<'a, T, Ix1>,
    inc: c_int,
}

impl<'a, T: Float> VectorOperand<'a, T> {
    fn new<S: Data<Elem = T>>(op: &'static str, x: &'a ArrayBase<S, Ix1>) -> Result<Self> {
        let inc = vector_inc(x.len(), x.strides()[0]).and_then(|i| c_int::try_from(i).ok());
        Ok(match inc {
            Some(inc) => VectorOperand {
                data: CowArray::from(x.view()),
                inc,
            },
            None => VectorOperand {
                data: CowArray::from(Array1::from_vec(c_order_copy(op, x)?)),
                inc: 1,
            },
        })
    }

    fn arg(&self) -> VecArg<T> {
        VecArg {
            ptr: self.data.as_ptr(),
            inc: self.inc,
        }
    }
}

/// Converts a dimension to the BLAS integer, or says it is too large.
#[inline(always)]
fn blas_int(op: &'static str, dim: usize) -> Result<c_int> {
    match c_int::try_from(dim) {
        Ok(d) => Ok(d),
        Err(_) => Err(too_large(op, dim)),
    }
}

#[cold]
#[inline(never)]
fn too_large(op: &'static str, dim: usize) -> Error {
    Error::DimensionTooLarge {
        op,
        dim,
        max: c_int::MAX as usize,
    }
}

/// Product of `dims`, or an allocation error when it overflows.
fn element_count(op: &'static str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Allocation {
            op,
            shape: dims.to_vec(),
        })
}

/// The elements of `a` in logical (C) order, allocated fallibly.
fn c_order_copy<T: Float, S: Data<Elem = T>, D: ndarray::Dimension>(
    op: &'static str,
    a: &ArrayBase<S, D>,
) -> Result<Vec<T>> {
    let mut v = uninit_buffer(op, a.len())?;
    v.extend(a.iter().copied());
    Ok(v)
}
