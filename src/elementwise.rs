//! Unary and binary elementwise maths, with numpy's broadcasting.
//!
//! Every function takes any layout (owned arrays, views, `a.t()`, slices with steps, broadcast
//! views). Three forms per operation:
//!
//! | form | unary | binary | numpy |
//! |---|---|---|---|
//! | new array | [`exp`]`(&x) -> Array` | [`add`]`(&a, &b) -> Result<Array>` | `np.exp(x)` |
//! | in place | [`exp_inplace`]`(&mut x)` | — | `np.exp(x, out=x)` |
//! | into an output | [`exp_into`]`(&x, &mut out)` | [`add_into`]`(&a, &b, &mut out)` | `out=` |
//!
//! A new array keeps the input's memory order when it is C or F contiguous (both inputs', for a
//! binary operation), and is C order otherwise. Contiguous data goes through the SIMD kernels
//! in one flat pass, in parallel chunks on the current rayon pool above a size threshold; other
//! layouts go row by row (gathering strided rows into a small buffer).

use std::mem::MaybeUninit;

use ndarray::{
    Array, ArrayBase, ArrayView1, ArrayViewMut1, Axis, Data, DataMut, DimMax, Dimension,
};
use ndarray::{ArrayView, ArrayViewMut, Zip};

use crate::par::{
    as_uninit_mut, for_each_chunk, uninit_array, worth_splitting, PAR_MIN_ARITHMETIC,
    PAR_MIN_TRANSCENDENTAL, STREAM_MIN_BYTES,
};
use crate::simd::{simd_level, Binary, Rhs, SimdLevel, Unary};
use crate::threads::Runtime;
use crate::{Error, Float, Result};

/// Elements per gather buffer of the row-by-row path.
const BUF: usize = 256;

fn par_min_unary(op: Unary) -> usize {
    match op {
        Unary::Sqrt => PAR_MIN_ARITHMETIC,
        _ => PAR_MIN_TRANSCENDENTAL,
    }
}

/// An output element: initialised (`T`, for `_into` and in place) or not (`MaybeUninit<T>`, a
/// new array). Kernels only write to it.
trait Slot<T>: Send + Sized {
    /// Whether the output is a fresh allocation (a new array) rather than existing memory.
    const FRESH: bool;
    fn as_uninit(s: &mut [Self]) -> &mut [MaybeUninit<T>];
    fn put(&mut self, v: T);
}

impl<T: Copy + Send> Slot<T> for T {
    const FRESH: bool = false;
    fn as_uninit(s: &mut [Self]) -> &mut [MaybeUninit<T>] {
        as_uninit_mut(s)
    }
    fn put(&mut self, v: T) {
        *self = v;
    }
}

impl<T: Copy + Send> Slot<T> for MaybeUninit<T> {
    const FRESH: bool = true;
    fn as_uninit(s: &mut [Self]) -> &mut [MaybeUninit<T>] {
        s
    }
    fn put(&mut self, v: T) {
        self.write(v);
    }
}

/// Whether `a` is F contiguous (its reversed axes are C contiguous).
fn is_f_contiguous<T, S: Data<Elem = T>, D: Dimension>(a: &ArrayBase<S, D>) -> bool {
    a.ndim() > 1 && a.view().reversed_axes().is_standard_layout()
}

/// Whether an output of `len` elements is written with streaming stores: when it is far larger
/// than the caches, except a fresh output below AVX-512. A fresh page was just zeroed by the
/// kernel, so its lines are in cache and normal stores cost no extra read: at the AVX2 level
/// streaming speeds up the `_into` forms and not the new-array ones, at the AVX-512 level both
/// (BENCHMARKS.md, "Elementwise maths and reductions").
fn streams<T>(len: usize, fresh: bool, level: SimdLevel) -> bool {
    len.saturating_mul(std::mem::size_of::<T>()) >= STREAM_MIN_BYTES
        && (!fresh || level == SimdLevel::Avx512)
}

/// `op` over contiguous `src` into `dst` of the same length, in parallel chunks; `fresh` when
/// `dst` is a new allocation.
fn unary_flat<T: Float>(
    rt: Runtime,
    level: SimdLevel,
    op: Unary,
    src: &[T],
    dst: &mut [MaybeUninit<T>],
    fresh: bool,
) {
    let stream = streams::<T>(dst.len(), fresh, level);
    for_each_chunk(rt, dst, par_min_unary(op), |off, chunk| {
        let src = &src[off..off + chunk.len()];
        if stream {
            T::unary_stream(level, op, src, chunk)
        } else {
            T::unary(level, op, src, chunk)
        }
    });
}

/// `op` over one row `src` into `dst` (any strides).
fn unary_row<T: Float, O: Slot<T>>(
    level: SimdLevel,
    op: Unary,
    src: ArrayView1<'_, T>,
    mut dst: ArrayViewMut1<'_, O>,
) {
    let mut inb = [T::zero(); BUF];
    if let Some(out) = dst.as_slice_mut() {
        let out = O::as_uninit(out);
        if let Some(s) = src.as_slice() {
            return T::unary(level, op, s, out);
        }
        for (o, s) in out.chunks_mut(BUF).zip(src.axis_chunks_iter(Axis(0), BUF)) {
            let b = &mut inb[..o.len()];
            b.iter_mut().zip(&s).for_each(|(bi, v)| *bi = *v);
            T::unary(level, op, b, o);
        }
    } else {
        let mut outb = [T::zero(); BUF];
        for (mut o, s) in dst
            .axis_chunks_iter_mut(Axis(0), BUF)
            .zip(src.axis_chunks_iter(Axis(0), BUF))
        {
            let m = s.len();
            inb.iter_mut().zip(&s).for_each(|(bi, v)| *bi = *v);
            T::unary(level, op, &inb[..m], as_uninit_mut(&mut outb[..m]));
            o.iter_mut()
                .zip(&outb[..m])
                .for_each(|(slot, v)| slot.put(*v));
        }
    }
}

/// `op` over `src` into `dst` of the same shape: flat when both share one contiguous memory
/// order, else row by row (rows in parallel above the threshold).
fn unary_views<T: Float, O: Slot<T>, D: Dimension>(
    rt: Runtime,
    op: Unary,
    src: ArrayView<'_, T, D>,
    mut dst: ArrayViewMut<'_, O, D>,
) {
    let level = simd_level();
    if src.strides() == dst.strides() {
        if let (Some(s), Some(d)) = (src.as_slice_memory_order(), dst.as_slice_memory_order_mut()) {
            return unary_flat(rt, level, op, s, O::as_uninit(d), O::FRESH);
        }
    }
    let zip = Zip::from(dst.rows_mut()).and(src.rows());
    if worth_splitting(rt, src.len(), par_min_unary(op)) {
        rt.in_outer_pool(|| zip.par_for_each(|d, s| unary_row(level, op, s, d)));
    } else {
        zip.for_each(|d, s| unary_row(level, op, s, d));
    }
}

fn unary_new<T: Float, S: Data<Elem = T>, D: Dimension>(
    op: Unary,
    name: &'static str,
    x: &ArrayBase<S, D>,
) -> Result<Array<T, D>> {
    let rt = crate::threads::enter()?;
    let f_order = !x.is_standard_layout() && is_f_contiguous(x);
    let mut out = uninit_array::<T, D>(name, x.raw_dim(), f_order)?;
    unary_views(rt, op, x.view(), out.view_mut());
    // SAFETY: `unary_views` wrote every element of `out` (flat: the chunks cover the slice;
    // rows: the rows cover the array).
    Ok(unsafe { out.assume_init() })
}

/// The value of an infallible form, or the panic its docs promise: exactly where the fallible
/// form returns an error, with that error as the message.
fn or_panic<R>(r: Result<R>) -> R {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn unary_inplace<T: Float, S: DataMut<Elem = T>, D: Dimension>(op: Unary, x: &mut ArrayBase<S, D>) {
    let rt = or_panic(crate::threads::enter());
    let level = simd_level();
    let block = |chunk: &mut [T]| {
        let mut buf = [T::zero(); BUF];
        for c in chunk.chunks_mut(BUF) {
            let b = &mut buf[..c.len()];
            b.copy_from_slice(c);
            T::unary(level, op, b, as_uninit_mut(c));
        }
    };
    let len = x.len();
    if let Some(s) = x.as_slice_memory_order_mut() {
        return for_each_chunk(rt, s, par_min_unary(op), |_, c| block(c));
    }
    let row = |mut r: ArrayViewMut1<'_, T>| match r.as_slice_mut() {
        Some(s) => block(s),
        None => {
            let (mut inb, mut outb) = ([T::zero(); BUF], [T::zero(); BUF]);
            for mut c in r.axis_chunks_iter_mut(Axis(0), BUF) {
                let m = c.len();
                inb.iter_mut().zip(&c).for_each(|(b, v)| *b = *v);
                T::unary(level, op, &inb[..m], as_uninit_mut(&mut outb[..m]));
                c.iter_mut().zip(&outb[..m]).for_each(|(d, v)| *d = *v);
            }
        }
    };
    let zip = Zip::from(x.rows_mut());
    if worth_splitting(rt, len, par_min_unary(op)) {
        rt.in_outer_pool(|| zip.par_for_each(row));
    } else {
        zip.for_each(row);
    }
}

fn unary_into<T, S, D, SO, E>(
    op: Unary,
    name: &'static str,
    x: &ArrayBase<S, D>,
    out: &mut ArrayBase<SO, E>,
) -> Result<()>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
    SO: DataMut<Elem = T>,
    E: Dimension,
{
    let rt = crate::threads::enter()?;
    let xb = x.broadcast(out.raw_dim()).ok_or_else(|| {
        Error::shape(
            name,
            x.shape(),
            out.shape(),
            "the input does not broadcast to the output's shape".into(),
        )
    })?;
    unary_views(rt, op, xb, out.view_mut());
    Ok(())
}

macro_rules! unary_fns {
    ($op:expr, $name:ident, $try:ident, $inplace:ident, $into:ident, $what:literal, $detail:literal,
     $ex_in:literal, $ex_out:literal) => {
        #[doc = concat!($what, ", elementwise, as a new array of the same shape.")]
        ///
        #[doc = $detail]
        ///
        /// The result has the input's memory order when the input is C or F contiguous, else C
        /// order. Above a size threshold the work is split over the current rayon pool.
        ///
        /// # Panics
        #[doc = concat!("Exactly when [`", stringify!($try), "`] returns an error, with that error as the message:")]
        /// the result cannot be allocated ([`Error::Allocation`]), or a thread variable of the
        /// environment holds junk ([`Error::InvalidEnv`], which every parlinalg operation
        #[doc = concat!("returns). Use [`", stringify!($try), "`] to get the error as a value; [`")]
        #[doc = stringify!($into)]
        /// `] into a preallocated array never allocates.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array1};
        ///
        #[doc = concat!("let x: Array1<f64> = array![", $ex_in, "];")]
        #[doc = concat!("let y = parlinalg::", stringify!($name), "(&x);")]
        #[doc = concat!("let want: Array1<f64> = array![", $ex_out, "];")]
        /// assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs()));
        /// // Any layout: here every second element of x, reversed.
        #[doc = concat!("let z = parlinalg::", stringify!($name), "(&x.slice(parlinalg::ndarray::s![..;-2]));")]
        /// assert_eq!(z.len(), (x.len() + 1) / 2);
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $name<T, S, D>(x: &ArrayBase<S, D>) -> Array<T, D>
        where
            T: Float,
            S: Data<Elem = T>,
            D: Dimension,
        {
            or_panic(unary_new($op, stringify!($name), x))
        }

        #[doc = concat!($what, ", elementwise, as a new array; the fallible form of [`", stringify!($name), "`].")]
        ///
        #[doc = concat!("The same values, layout and threading as [`", stringify!($name), "`].")]
        ///
        /// # Errors
        /// - [`Error::Allocation`] when the result cannot be allocated (its shape in the
        ///   message), for instance for a broadcast view of a huge shape;
        /// - [`Error::InvalidEnv`] when a thread variable of the environment holds junk.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array1, IxDyn};
        /// use parlinalg::Error;
        ///
        #[doc = concat!("let x: Array1<f64> = array![", $ex_in, "];")]
        #[doc = concat!("let y = parlinalg::", stringify!($try), "(&x)?;")]
        #[doc = concat!("assert_eq!(y, parlinalg::", stringify!($name), "(&x));")]
        /// // One element seen as 2⁶² of them (a zero-stride view): too large to allocate.
        /// let one = array![1.0f64];
        /// let huge = one.broadcast(IxDyn(&[1 << 31, 1 << 31])).unwrap();
        #[doc = concat!("let err = parlinalg::", stringify!($try), "(&huge).unwrap_err();")]
        /// assert!(matches!(err, Error::Allocation { .. }), "{err}");
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $try<T, S, D>(x: &ArrayBase<S, D>) -> Result<Array<T, D>>
        where
            T: Float,
            S: Data<Elem = T>,
            D: Dimension,
        {
            unary_new($op, stringify!($name), x)
        }

        #[doc = concat!($what, ", elementwise, overwriting `x` (numpy's `out=x`).")]
        ///
        /// Any layout; never allocates (strided data goes through a small stack buffer).
        ///
        /// # Panics
        /// When a thread variable of the environment holds junk, with the
        /// [`Error::InvalidEnv`] every fallible parlinalg operation returns as the message.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array1};
        ///
        #[doc = concat!("let mut x: Array1<f64> = array![", $ex_in, "];")]
        #[doc = concat!("parlinalg::", stringify!($inplace), "(&mut x);")]
        #[doc = concat!("let want: Array1<f64> = array![", $ex_out, "];")]
        /// assert!(x.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs()));
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $inplace<T, S, D>(x: &mut ArrayBase<S, D>)
        where
            T: Float,
            S: DataMut<Elem = T>,
            D: Dimension,
        {
            unary_inplace($op, x)
        }

        #[doc = concat!($what, ", elementwise, written into `out` (numpy's `out=`).")]
        ///
        /// `x` is broadcast to `out`'s shape (numpy's rule), so a row can fill every row of
        /// `out`. Any layouts; never allocates.
        ///
        /// # Errors
        /// [`Error::ShapeMismatch`] when `x` does not broadcast to `out`'s shape (both shapes
        /// in the message); [`Error::InvalidEnv`] when a thread variable holds junk.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array1, Array2};
        ///
        #[doc = concat!("let x: Array1<f64> = array![", $ex_in, "];")]
        /// let mut out = Array2::zeros((2, x.len()));
        #[doc = concat!("parlinalg::", stringify!($into), "(&x, &mut out)?;")]
        #[doc = concat!("let want: Array1<f64> = array![", $ex_out, "];")]
        /// assert!(out.row(1).iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-12 * b.abs()));
        #[doc = concat!("assert!(parlinalg::", stringify!($into), "(&x, &mut Array2::zeros((2, 9))).is_err());")]
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $into<T, S, D, SO, E>(x: &ArrayBase<S, D>, out: &mut ArrayBase<SO, E>) -> Result<()>
        where
            T: Float,
            S: Data<Elem = T>,
            D: Dimension,
            SO: DataMut<Elem = T>,
            E: Dimension,
        {
            unary_into($op, stringify!($into), x, out)
        }
    };
}

unary_fns!(
    Unary::Exp,
    exp,
    try_exp,
    exp_inplace,
    exp_into,
    "`e^x`",
    "Vectorised (AVX-512, AVX2+FMA or portable, chosen at run time), within 2 ulp of the exact \
     result. As numpy: `exp(±0) = 1`, `exp(+inf) = +inf`, `exp(-inf) = 0`, NaN gives NaN, \
     overflow (x > 709.78 in f64, 88.72 in f32) gives `+inf`, underflow goes through the \
     subnormals to 0.",
    "0.0, 1.0, -1.0, 2.5",
    "1.0, 2.718281828459045, 0.36787944117144233, 12.182493960703473"
);
unary_fns!(
    Unary::Ln,
    ln,
    try_ln,
    ln_inplace,
    ln_into,
    "The natural logarithm",
    "Vectorised, within 2 ulp. As numpy: `ln(±0) = -inf`, `ln(x < 0) = NaN`, \
     `ln(+inf) = +inf`, NaN gives NaN; subnormal inputs are exact-range.",
    "1.0, 2.718281828459045, 10.0, 0.5",
    "0.0, 1.0, 2.302585092994046, -0.6931471805599453"
);
unary_fns!(
    Unary::Sqrt,
    sqrt,
    try_sqrt,
    sqrt_inplace,
    sqrt_into,
    "The square root",
    "Correctly rounded (the IEEE instruction). `sqrt(x < 0) = NaN`, `sqrt(-0) = -0`.",
    "0.0, 1.0, 2.0, 16.0",
    "0.0, 1.0, 1.4142135623730951, 4.0"
);
unary_fns!(
    Unary::Tanh,
    tanh,
    try_tanh,
    tanh_inplace,
    tanh_into,
    "The hyperbolic tangent",
    "Vectorised, within 4 ulp. `tanh(±inf) = ±1`, `tanh(-0) = -0`, NaN gives NaN.",
    "0.0, 0.5, -1.0, 20.0",
    "0.0, 0.46211715726000974, -0.7615941559557649, 1.0"
);
unary_fns!(
    Unary::Sigmoid,
    sigmoid,
    try_sigmoid,
    sigmoid_inplace,
    sigmoid_into,
    "The logistic function `1 / (1 + e^-x)`",
    "Vectorised, within 4 ulp of numpy's `1 / (1 + np.exp(-x))`: 0 for x below about \
     -745 (f64), 1 for large x, NaN gives NaN.",
    "0.0, 1.0, -2.0, 40.0",
    "0.5, 0.7310585786300049, 0.11920292202211755, 1.0"
);

/// The shape numpy broadcasting gives to operands of shapes `a` and `b`, or why there is none.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        // Aligned from the right; missing leading axes count as 1.
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            (x, y) => {
                return Err(format!(
                    "axis {} (counted from the right): {x} and {y} differ and neither is 1",
                    n - i
                ))
            }
        };
    }
    Ok(out)
}

/// A dimension of type `E` holding `shape`.
fn dim_of<E: Dimension>(shape: &[usize]) -> E {
    let mut d = E::zeros(shape.len());
    d.slice_mut().copy_from_slice(shape);
    d
}

/// How one operand row is read.
enum Operand<'a, T> {
    Slice(&'a [T]),
    Scalar(T),
    Strided,
}

fn operand<'a, T: Copy>(v: &'a ArrayView1<'_, T>) -> Operand<'a, T> {
    if v.len() == 1 || v.strides()[0] == 0 {
        Operand::Scalar(v[0])
    } else if let Some(s) = v.as_slice() {
        Operand::Slice(s)
    } else {
        Operand::Strided
    }
}

/// `a op b` over one row into `dst` (any strides; stride-0 operands are scalars).
fn binary_row<T: Float, O: Slot<T>>(
    level: SimdLevel,
    op: Binary,
    a: ArrayView1<'_, T>,
    b: ArrayView1<'_, T>,
    mut dst: ArrayViewMut1<'_, O>,
) {
    if dst.is_empty() {
        return;
    }
    if let Some(out) = dst.as_slice_mut() {
        let out = O::as_uninit(out);
        match (operand(&a), operand(&b)) {
            (Operand::Slice(x), Operand::Slice(y)) => {
                return T::binary(level, op, x, Rhs::Slice(y), out)
            }
            (Operand::Slice(x), Operand::Scalar(y)) => {
                return T::binary(level, op, x, Rhs::Scalar(y), out)
            }
            (Operand::Scalar(x), Operand::Slice(y)) => {
                return T::binary_scalar_left(level, op, x, y, out)
            }
            _ => {}
        }
    }
    let (mut ab, mut bb, mut ob) = ([T::zero(); BUF], [T::zero(); BUF], [T::zero(); BUF]);
    for ((mut o, x), y) in dst
        .axis_chunks_iter_mut(Axis(0), BUF)
        .zip(a.axis_chunks_iter(Axis(0), BUF))
        .zip(b.axis_chunks_iter(Axis(0), BUF))
    {
        let m = o.len();
        ab.iter_mut().zip(&x).for_each(|(d, v)| *d = *v);
        bb.iter_mut().zip(&y).for_each(|(d, v)| *d = *v);
        T::binary(
            level,
            op,
            &ab[..m],
            Rhs::Slice(&bb[..m]),
            as_uninit_mut(&mut ob[..m]),
        );
        o.iter_mut().zip(&ob[..m]).for_each(|(d, v)| d.put(*v));
    }
}

/// `a op b` into `dst`, all three of `dst`'s shape (a and b already broadcast).
fn binary_views<T: Float, O: Slot<T>, E: Dimension>(
    rt: Runtime,
    op: Binary,
    a: ArrayView<'_, T, E>,
    b: ArrayView<'_, T, E>,
    mut dst: ArrayViewMut<'_, O, E>,
) {
    let level = simd_level();
    if a.strides() == dst.strides() && b.strides() == dst.strides() {
        if let (Some(x), Some(y), Some(d)) = (
            a.as_slice_memory_order(),
            b.as_slice_memory_order(),
            dst.as_slice_memory_order_mut(),
        ) {
            let stream = streams::<T>(d.len(), O::FRESH, level);
            return for_each_chunk(rt, O::as_uninit(d), PAR_MIN_ARITHMETIC, |off, c| {
                let r = off..off + c.len();
                if stream {
                    T::binary_stream(level, op, &x[r.clone()], &y[r], c)
                } else {
                    T::binary(level, op, &x[r.clone()], Rhs::Slice(&y[r]), c)
                }
            });
        }
    }
    let zip = Zip::from(dst.rows_mut()).and(a.rows()).and(b.rows());
    if worth_splitting(rt, a.len(), PAR_MIN_ARITHMETIC) {
        rt.in_outer_pool(|| zip.par_for_each(|d, x, y| binary_row(level, op, x, y, d)));
    } else {
        zip.for_each(|d, x, y| binary_row(level, op, x, y, d));
    }
}

type Broadcast<DA, DB> = <DA as DimMax<DB>>::Output;

fn binary_new<T, SA, SB, DA, DB>(
    op: Binary,
    name: &'static str,
    a: &ArrayBase<SA, DA>,
    b: &ArrayBase<SB, DB>,
) -> Result<Array<T, Broadcast<DA, DB>>>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
    DA: Dimension + DimMax<DB>,
    DB: Dimension,
{
    let rt = crate::threads::enter()?;
    let shape = broadcast_shape(a.shape(), b.shape())
        .map_err(|why| Error::shape(name, a.shape(), b.shape(), why))?;
    let dim: Broadcast<DA, DB> = dim_of(&shape);
    let av = a
        .broadcast(dim.clone())
        .expect("checked by broadcast_shape");
    let bv = b
        .broadcast(dim.clone())
        .expect("checked by broadcast_shape");
    let f_order = !(av.is_standard_layout() && bv.is_standard_layout())
        && is_f_contiguous(&av)
        && is_f_contiguous(&bv);
    let mut out = uninit_array::<T, _>(name, dim, f_order)?;
    binary_views(rt, op, av, bv, out.view_mut());
    // SAFETY: `binary_views` wrote every element of `out`.
    Ok(unsafe { out.assume_init() })
}

fn binary_into<T, SA, SB, DA, DB, SO, E>(
    op: Binary,
    name: &'static str,
    a: &ArrayBase<SA, DA>,
    b: &ArrayBase<SB, DB>,
    out: &mut ArrayBase<SO, E>,
) -> Result<()>
where
    T: Float,
    SA: Data<Elem = T>,
    SB: Data<Elem = T>,
    DA: Dimension,
    DB: Dimension,
    SO: DataMut<Elem = T>,
    E: Dimension,
{
    let rt = crate::threads::enter()?;
    broadcast_shape(a.shape(), b.shape())
        .map_err(|why| Error::shape(name, a.shape(), b.shape(), why))?;
    let fit = |x: &[usize]| {
        Error::shape(
            name,
            x,
            out.shape(),
            "the operand does not broadcast to the output's shape".into(),
        )
    };
    let av = a.broadcast(out.raw_dim()).ok_or_else(|| fit(a.shape()))?;
    let bv = b.broadcast(out.raw_dim()).ok_or_else(|| fit(b.shape()))?;
    binary_views(rt, op, av, bv, out.view_mut());
    Ok(())
}

macro_rules! binary_fns {
    ($op:expr, $name:ident, $into:ident, $sym:literal, $ex:literal) => {
        #[doc = concat!("`a ", $sym, " b`, elementwise, with numpy's broadcasting, as a new array.")]
        ///
        /// Shapes are aligned from the last axis; each pair of lengths must be equal or one of
        /// them 1 (that operand is repeated), and missing leading axes count as 1. The result
        /// has the broadcast shape, and the dimension type ndarray gives it
        /// ([`DimMax`](ndarray::DimMax)): 2-D with 1-D is 2-D, anything with `IxDyn` is
        /// `IxDyn`. It is F order when both operands are F contiguous, else C order. IEEE
        /// arithmetic, as numpy (division by zero gives ±inf or NaN).
        ///
        /// # Errors
        /// - [`Error::ShapeMismatch`] when the shapes do not broadcast (both shapes and the
        ///   axis in the message);
        /// - [`Error::Allocation`] when the result cannot be allocated;
        /// - [`Error::InvalidEnv`] when a thread variable of the environment holds junk.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array2};
        ///
        /// let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        /// let row = array![10.0, 20.0, 30.0];
        #[doc = concat!("let c = parlinalg::", stringify!($name), "(&a, &row)?; // row broadcast along the rows")]
        #[doc = concat!("assert_eq!(c, ", $ex, ");")]
        #[doc = concat!("assert!(parlinalg::", stringify!($name), "(&a, &array![1.0, 2.0]).is_err());")]
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $name<T, SA, SB, DA, DB>(
            a: &ArrayBase<SA, DA>,
            b: &ArrayBase<SB, DB>,
        ) -> Result<Array<T, <DA as DimMax<DB>>::Output>>
        where
            T: Float,
            SA: Data<Elem = T>,
            SB: Data<Elem = T>,
            DA: Dimension + DimMax<DB>,
            DB: Dimension,
        {
            binary_new($op, stringify!($name), a, b)
        }

        #[doc = concat!("`a ", $sym, " b`, elementwise, written into `out` (numpy's `out=`).")]
        ///
        /// `a` and `b` must broadcast together, and each to `out`'s shape. Any layouts;
        /// never allocates. With contiguous operands of one memory order this is a single
        /// streaming pass, split over the current rayon pool above a size threshold.
        ///
        /// # Errors
        /// [`Error::ShapeMismatch`] when the operands do not broadcast together or to `out`;
        /// [`Error::InvalidEnv`] when a thread variable of the environment holds junk.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Array2};
        ///
        /// let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        /// let mut out = Array2::zeros((2, 3));
        #[doc = concat!("parlinalg::", stringify!($into), "(&a, &array![10.0, 20.0, 30.0], &mut out)?;")]
        #[doc = concat!("assert_eq!(out, ", $ex, ");")]
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $into<T, SA, SB, DA, DB, SO, E>(
            a: &ArrayBase<SA, DA>,
            b: &ArrayBase<SB, DB>,
            out: &mut ArrayBase<SO, E>,
        ) -> Result<()>
        where
            T: Float,
            SA: Data<Elem = T>,
            SB: Data<Elem = T>,
            DA: Dimension,
            DB: Dimension,
            SO: DataMut<Elem = T>,
            E: Dimension,
        {
            binary_into($op, stringify!($into), a, b, out)
        }
    };
}

binary_fns!(
    Binary::Add,
    add,
    add_into,
    "+",
    "array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]"
);
binary_fns!(
    Binary::Sub,
    sub,
    sub_into,
    "-",
    "array![[-9.0, -18.0, -27.0], [-6.0, -15.0, -24.0]]"
);
binary_fns!(
    Binary::Mul,
    mul,
    mul_into,
    "*",
    "array![[10.0, 40.0, 90.0], [40.0, 100.0, 180.0]]"
);
binary_fns!(
    Binary::Div,
    div,
    div_into,
    "/",
    "array![[0.1, 0.1, 0.1], [0.4, 0.25, 0.2]]"
);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array2, Array3, IxDyn};

    #[test]
    fn broadcast_shapes_follow_numpy() {
        assert_eq!(broadcast_shape(&[3, 4], &[4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast_shape(&[3, 1], &[1, 4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast_shape(&[], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shape(&[2, 1, 5], &[7, 1]).unwrap(), vec![2, 7, 5]);
        assert_eq!(broadcast_shape(&[0, 3], &[1, 3]).unwrap(), vec![0, 3]);
        let e = broadcast_shape(&[3, 4], &[3]).unwrap_err();
        assert!(e.contains("4 and 3"), "{e}");
    }

    #[test]
    fn unary_every_layout_matches_scalar_map() {
        let a = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| (i * 20 + j * 5 + k) as f64 * 0.1);
        let views = [
            a.view(),
            a.view().reversed_axes(),
            a.slice(s![.., ..;2, ..;-1]),
            a.slice(s![..;-1, .., 1..]),
        ];
        for v in views {
            let got = tanh(&v);
            assert_eq!(got.shape(), v.shape());
            for (g, x) in got.iter().zip(v.iter()) {
                assert!((g - x.tanh()).abs() <= 4.0 * f64::EPSILON);
            }
            let mut m = v.to_owned();
            tanh_inplace(&mut m);
            assert_eq!(m, got);
            let mut out = Array3::zeros(v.raw_dim());
            tanh_into(&v, &mut out).unwrap();
            assert_eq!(out, got);
        }
    }

    #[test]
    fn inplace_on_strided_view_touches_only_the_view() {
        let a = Array3::from_shape_fn((3, 4, 300), |(i, j, k)| (i + j + k) as f64 * 0.01);
        let mut b = a.clone();
        exp_inplace(&mut b.slice_mut(s![.., ..;2, ..;-3]));
        assert_eq!(
            b.slice(s![.., ..;2, ..;-3]),
            exp(&a.slice(s![.., ..;2, ..;-3]))
        );
        assert_eq!(b.slice(s![.., 1..;2, ..]), a.slice(s![.., 1..;2, ..]));
        assert_eq!(b.slice(s![.., ..;2, ..;-3]).len(), 3 * 2 * 100);
    }

    #[test]
    fn new_array_keeps_f_order() {
        let a = Array2::from_shape_fn((3, 4), |(i, j)| (i + j) as f32);
        let e = exp(&a.t());
        assert!(e.t().is_standard_layout());
        let s = add(&a.t(), &a.t()).unwrap();
        assert!(s.t().is_standard_layout());
        assert_eq!(s, &a.t() * 2.0);
    }

    #[test]
    fn binary_broadcasts_and_reports_shapes() {
        let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let col = array![[1.0], [2.0], [3.0]];
        assert_eq!(sub(&a, &col).unwrap(), &a - &col);
        assert_eq!(div(&col, &a).unwrap(), &col / &a);
        let scalar = ndarray::arr0(2.0);
        assert_eq!(mul(&a, &scalar).unwrap(), &a * 2.0);
        assert_eq!(mul(&scalar, &a).unwrap(), &a * 2.0);
        let d = add(&a.view().into_dyn(), &array![1.0, 1.0]).unwrap();
        assert_eq!(d.raw_dim(), IxDyn(&[3, 2]));
        match add(&a, &array![1.0, 2.0, 3.0]) {
            Err(Error::ShapeMismatch { left, right, .. }) => {
                assert_eq!((left, right), (vec![3, 2], vec![3]))
            }
            other => panic!("{other:?}"),
        }
        let mut out = Array2::zeros((3, 2));
        assert!(add_into(&a, &a, &mut Array2::zeros((2, 3))).is_err());
        add_into(&a, &array![10.0, 20.0], &mut out).unwrap();
        assert_eq!(out, array![[11.0, 22.0], [13.0, 24.0], [15.0, 26.0]]);
        // Strided output.
        let mut big = Array2::zeros((3, 4));
        add_into(&a, &a, &mut big.slice_mut(s![.., ..;-2])).unwrap();
        assert_eq!(big.slice(s![.., ..;-2]), &a * 2.0);
    }

    #[test]
    fn empty_and_zero_dim() {
        let e = Array2::<f64>::zeros((0, 3));
        assert_eq!(exp(&e).shape(), &[0, 3]);
        assert_eq!(add(&e, &array![1.0, 2.0, 3.0]).unwrap().shape(), &[0, 3]);
        let z = ndarray::arr0(1.0f32);
        assert_eq!(exp(&z)[()], std::f32::consts::E);
    }
}
