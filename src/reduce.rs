//! Reductions: `sum`, `mean`, `max`, `min`, `norm2`, over the whole array or along one axis.
//!
//! # Order of summation, and why it does not depend on the thread count
//!
//! The elements (in memory order for contiguous arrays, logical order otherwise) are cut into
//! leaves of 1024. A leaf is added by 32 running accumulators (accumulator `j` takes elements
//! `j, j + 32, ...`), which are then combined pairwise. Leaves are combined by a binary tree
//! whose split points depend only on the number of leaves (`mid = len / 2`); rayon
//! runs the two halves of a node on two threads when the node is large, but every node
//! computes the same value however the work is scheduled. So results are bit-identical for any
//! pool size, and for every SIMD level (no fused multiply-add, no reassociation).
//!
//! # Error bound
//!
//! With unit roundoff `u` (2⁻⁵³ for f64, 2⁻²⁴ for f32), a leaf of up to 1024 elements has
//! 31 sequential additions per accumulator and 5 pairwise levels, and the tree over `L`
//! leaves has `⌈log₂ L⌉` levels, so the computed sum `ŝ` of `n` elements satisfies
//!
//! `|ŝ − Σxᵢ| ≤ (36 + ⌈log₂⌈n/1024⌉⌉) · u · Σ|xᵢ|` (to first order in `u`).
//!
//! For 10⁷ elements that is `50·u·Σ|xᵢ|`, against `(n − 1)·u·Σ|xᵢ|` for a running sum.
//! `norm2` inherits half of it (relative, through the square root) plus one rounding.

use std::mem::MaybeUninit;

use ndarray::{Array, ArrayBase, ArrayView1, Axis, Data, Dimension, RemoveAxis, Zip};

use crate::par::{worth_splitting, PAR_MIN_REDUCE};
use rayon::prelude::*;

use crate::simd::{simd_level, Fold, LEAF};
use crate::threads::Runtime;
use crate::{Error, Float, Result};

/// Folds the leaves of `x` (see [`Fold`]) and combines them with `combine` along the fixed
/// tree. `x` must not be empty. Leaf values are computed in parallel runs of whole leaves
/// (contiguous input) or serially through a gather buffer (other layouts); either way leaf `i`
/// holds the same elements in the same order, so the result does not depend on the pool.
fn reduce<T, S, D>(
    rt: Runtime,
    x: &ArrayBase<S, D>,
    fold: Fold,
    scale: T,
    combine: impl Fn(T, T) -> T + Sync,
) -> T
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    debug_assert!(!x.is_empty());
    let level = simd_level();
    let n = x.len();
    let mut leaves = vec![T::zero(); n.div_ceil(LEAF)];
    match x.as_slice_memory_order() {
        Some(s) if worth_splitting(rt, n, PAR_MIN_REDUCE) => rt.in_outer_pool(|| {
            // About four runs per thread; each run is whole leaves.
            let per = leaves
                .len()
                .div_ceil(4 * rayon::current_num_threads())
                .max(1);
            leaves.par_chunks_mut(per).enumerate().for_each(|(k, out)| {
                let lo = k * per * LEAF;
                let hi = (lo + out.len() * LEAF).min(n);
                T::fold_leaves(level, fold, scale, &s[lo..hi], out)
            });
        }),
        Some(s) => T::fold_leaves(level, fold, scale, s, &mut leaves),
        None => {
            let mut buf = Vec::with_capacity(LEAF);
            let mut i = 0;
            for &v in x.iter() {
                buf.push(v);
                if buf.len() == LEAF {
                    T::fold_leaves(level, fold, scale, &buf, &mut leaves[i..i + 1]);
                    buf.clear();
                    i += 1;
                }
            }
            if !buf.is_empty() {
                T::fold_leaves(level, fold, scale, &buf, &mut leaves[i..i + 1]);
            }
        }
    }
    if leaves.len() >= TREE_PAR_MIN && worth_splitting(rt, n, PAR_MIN_REDUCE) {
        rt.in_outer_pool(|| tree(&leaves, &combine))
    } else {
        tree(&leaves, &combine)
    }
}

/// The fixed binary tree over leaf values: split at `mid = len / 2`, whatever the pool;
/// halves run on two threads when large.
fn tree<T: Copy + Send + Sync>(v: &[T], combine: &(impl Fn(T, T) -> T + Sync)) -> T {
    match v {
        [a] => *a,
        [a, b] => combine(*a, *b),
        _ => {
            let (l, r) = v.split_at(v.len() / 2);
            let (a, b) = if v.len() >= TREE_PAR_MIN {
                rayon::join(|| tree(l, combine), || tree(r, combine))
            } else {
                (tree(l, combine), tree(r, combine))
            };
            combine(a, b)
        }
    }
}

/// Leaf values above which the two halves of a tree node are combined on two threads.
const TREE_PAR_MIN: usize = 1 << 14;

fn sum_of<T: Float, S: Data<Elem = T>, D: Dimension>(rt: Runtime, x: &ArrayBase<S, D>) -> T {
    if x.is_empty() {
        return T::zero();
    }
    reduce(rt, x, Fold::Sum, T::zero(), |a, b| a + b)
}

fn max_nan<T: Float>(a: T, b: T) -> T {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

fn min_nan<T: Float>(a: T, b: T) -> T {
    if b < a || b.is_nan() {
        b
    } else {
        a
    }
}

fn max_of<T: Float, S: Data<Elem = T>, D: Dimension>(rt: Runtime, x: &ArrayBase<S, D>) -> T {
    reduce(rt, x, Fold::Max, T::zero(), max_nan)
}

fn min_of<T: Float, S: Data<Elem = T>, D: Dimension>(rt: Runtime, x: &ArrayBase<S, D>) -> T {
    reduce(rt, x, Fold::Min, T::zero(), min_nan)
}

fn norm2_of<T: Float, S: Data<Elem = T>, D: Dimension>(rt: Runtime, x: &ArrayBase<S, D>) -> T {
    if x.is_empty() {
        return T::zero();
    }
    let ss = reduce(rt, x, Fold::SumSq, T::zero(), |a, b| a + b);
    // Fast path: no square overflowed, and none that underflowed can matter (the sum is far
    // above the subnormal range, so each lost square is below u·sum/n).
    if ss.is_nan() || (ss.is_finite() && ss >= T::min_positive_value() / T::epsilon()) {
        return ss.sqrt();
    }
    // Scaled pass, as LAPACK's nrm2: Σ(x/amax)² lies in [1, n], no overflow, no underflow
    // that matters.
    let amax = reduce(rt, x, Fold::AbsMax, T::zero(), max_nan);
    if amax.is_nan() || amax == T::zero() || amax.is_infinite() {
        return amax;
    }
    let scaled = reduce(rt, x, Fold::ScaledSumSq, amax, |a, b| a + b);
    amax * scaled.sqrt()
}

fn nonempty<T, S: Data<Elem = T>, D: Dimension>(
    op: &'static str,
    x: &ArrayBase<S, D>,
) -> Result<()> {
    if x.is_empty() {
        Err(Error::Empty { op })
    } else {
        Ok(())
    }
}

/// Sum of all elements, pairwise over fixed leaves: bit-identical for any thread count.
///
/// The sum of an empty array is +0.0, of negative zeros -0.0 (as numpy). NaN anywhere gives
/// NaN; `+inf` and `-inf` together give NaN (IEEE, as numpy).
///
/// Order: the elements (memory order when contiguous, logical order otherwise) are cut into
/// leaves of 1024; a leaf is added by 32 running accumulators (element `i` to accumulator
/// `i mod 32`) combined pairwise; leaves are combined by a binary tree split at half the
/// leaves, independent of the pool, so the result is bit-identical on any number
/// of threads and at any SIMD level. Error bound, with `u` the unit roundoff (2⁻⁵³ for f64,
/// 2⁻²⁴ for f32), to first order: `|ŝ − Σxᵢ| ≤ (36 + ⌈log₂⌈n/1024⌉⌉)·u·Σ|xᵢ|` (50·u·Σ|xᵢ|
/// at n = 10⁷, against (n − 1)·u·Σ|xᵢ| for a running sum). Tested against an exact
/// (integer) reference on ill-conditioned data.
///
/// # Errors
/// [`Error::InvalidEnv`] when a thread variable of the environment holds junk (as every
/// parlinalg operation).
///
/// # Example
/// ```
/// use parlinalg::ndarray::{array, Array1};
///
/// assert_eq!(parlinalg::sum(&array![[1.0, 2.0], [3.0, 4.0]])?, 10.0);
/// assert_eq!(parlinalg::sum(&Array1::<f32>::zeros(0))?, 0.0);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn sum<T, S, D>(x: &ArrayBase<S, D>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    Ok(sum_of(crate::threads::enter()?, x))
}

/// Arithmetic mean: [`sum`] divided by the element count.
///
/// # Errors
/// [`Error::Empty`] for an empty array (numpy returns NaN with a warning);
/// [`Error::InvalidEnv`] when a thread variable holds junk.
///
/// # Example
/// ```
/// use parlinalg::ndarray::{array, Array1};
///
/// assert_eq!(parlinalg::mean(&array![1.0, 2.0, 6.0])?, 3.0);
/// assert!(parlinalg::mean(&Array1::<f64>::zeros(0)).is_err());
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn mean<T, S, D>(x: &ArrayBase<S, D>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    let rt = crate::threads::enter()?;
    nonempty("mean", x)?;
    Ok(sum_of(rt, x) / T::from(x.len()).expect("a length converts to a float"))
}

/// Largest element; NaN when any element is NaN (as `numpy.max`).
///
/// # Errors
/// [`Error::Empty`] for an empty array; [`Error::InvalidEnv`] when a thread variable holds
/// junk.
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// assert_eq!(parlinalg::max(&array![1.0, 7.0, -3.0])?, 7.0);
/// assert!(parlinalg::max(&array![1.0, f64::NAN, 7.0])?.is_nan());
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn max<T, S, D>(x: &ArrayBase<S, D>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    let rt = crate::threads::enter()?;
    nonempty("max", x)?;
    Ok(max_of(rt, x))
}

/// Smallest element; NaN when any element is NaN (as `numpy.min`).
///
/// # Errors
/// [`Error::Empty`] for an empty array; [`Error::InvalidEnv`] when a thread variable holds
/// junk.
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// assert_eq!(parlinalg::min(&array![1.0, 7.0, -3.0])?, -3.0);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn min<T, S, D>(x: &ArrayBase<S, D>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    let rt = crate::threads::enter()?;
    nonempty("min", x)?;
    Ok(min_of(rt, x))
}

/// Euclidean norm `√Σxᵢ²` of all elements, without overflow or underflow.
///
/// One pass sums the squares (same fixed tree as [`sum`]); when that overflows or lands where
/// underflowed squares could matter, a second pass scales by the largest magnitude as LAPACK's
/// `nrm2` does, so `norm2([1e300, 1e300]) = 1.414e300` and `norm2([1e-300, 1e-300]) =
/// 1.414e-300`. NaN anywhere gives NaN, else an infinite element gives `+inf`. The norm of an
/// empty array is 0.
///
/// # Errors
/// [`Error::InvalidEnv`] when a thread variable of the environment holds junk (as every
/// parlinalg operation).
///
/// # Example
/// ```
/// use parlinalg::ndarray::array;
///
/// assert_eq!(parlinalg::norm2(&array![3.0, 4.0])?, 5.0);
/// let big: f64 = parlinalg::norm2(&array![3e300, 4e300])?;
/// assert!((big - 5e300).abs() <= 5e300 * 1e-15);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn norm2<T, S, D>(x: &ArrayBase<S, D>) -> Result<T>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension,
{
    Ok(norm2_of(crate::threads::enter()?, x))
}

/// Applies `f` to every lane of `x` along `axis`; the result has `x`'s shape without `axis`.
fn along<T, S, D>(
    op: &'static str,
    x: &ArrayBase<S, D>,
    axis: Axis,
    needs_elements: bool,
    f: impl Fn(Runtime, ArrayView1<'_, T>) -> T + Sync,
) -> Result<Array<T, D::Smaller>>
where
    T: Float,
    S: Data<Elem = T>,
    D: Dimension + RemoveAxis,
{
    let rt = crate::threads::enter()?;
    if axis.index() >= x.ndim() {
        return Err(Error::AxisOutOfBounds {
            op,
            axis: axis.index(),
            ndim: x.ndim(),
        });
    }
    let shape = x.raw_dim().remove_axis(axis);
    if needs_elements && x.len_of(axis) == 0 && shape.size() > 0 {
        return Err(Error::Empty { op });
    }
    let mut out = crate::par::uninit_array::<T, _>(op, shape, false)?;
    let zip = Zip::from(&mut out).and(x.lanes(axis));
    let put = |o: &mut MaybeUninit<T>, lane: ArrayView1<'_, T>| {
        o.write(f(rt, lane));
    };
    if worth_splitting(rt, x.len(), PAR_MIN_REDUCE) {
        rt.in_outer_pool(|| zip.par_for_each(put));
    } else {
        zip.for_each(put);
    }
    // SAFETY: the zip visited every element of `out` once (one lane per output element).
    Ok(unsafe { out.assume_init() })
}

macro_rules! axis_fn {
    ($name:ident, $whole:ident, $needs:expr, $f:expr, $doc:literal, $ex:literal) => {
        #[doc = concat!("[`", stringify!($whole), "`] of every lane along `axis`: the result has `x`'s shape without that axis.")]
        ///
        #[doc = $doc]
        ///
        /// # Errors
        /// [`Error::AxisOutOfBounds`] when `axis ≥ x.ndim()`;
        #[doc = concat!("[`Error::Empty`] when the axis has length 0 and the result is otherwise non-empty", $needs, ";")]
        /// [`Error::Allocation`] when the result cannot be allocated; [`Error::InvalidEnv`]
        /// when a thread variable of the environment holds junk.
        ///
        /// # Example
        /// ```
        /// use parlinalg::ndarray::{array, Axis};
        ///
        /// let x = array![[1.0, 2.0, 9.0], [4.0, 5.0, 6.0]];
        #[doc = concat!("let r = parlinalg::", stringify!($name), "(&x, Axis(0))?;")]
        #[doc = concat!("assert_eq!(r, ", $ex, ");")]
        #[doc = concat!("assert!(parlinalg::", stringify!($name), "(&x, Axis(2)).is_err());")]
        /// # Ok::<(), parlinalg::Error>(())
        /// ```
        pub fn $name<T, S, D>(x: &ArrayBase<S, D>, axis: Axis) -> Result<Array<T, D::Smaller>>
        where
            T: Float,
            S: Data<Elem = T>,
            D: Dimension + RemoveAxis,
        {
            along(stringify!($name), x, axis, $needs != "", $f)
        }
    };
}

axis_fn!(
    sum_axis,
    sum,
    "",
    |rt: Runtime, l: ArrayView1<'_, T>| sum_of(rt, &l),
    "Each lane is summed in the same fixed order as [`sum`] (its own leaves and tree).",
    "array![5.0, 7.0, 15.0]"
);
axis_fn!(
    mean_axis,
    mean,
    " (the mean of nothing)",
    |rt: Runtime, l: ArrayView1<'_, T>| sum_of(rt, &l)
        / T::from(l.len()).expect("a length converts"),
    "Each lane's [`sum`] divided by the axis length.",
    "array![2.5, 3.5, 7.5]"
);
axis_fn!(
    max_axis,
    max,
    " (the max of nothing)",
    |rt: Runtime, l: ArrayView1<'_, T>| max_of(rt, &l),
    "NaN in a lane gives NaN for that lane.",
    "array![4.0, 5.0, 9.0]"
);
axis_fn!(
    min_axis,
    min,
    " (the min of nothing)",
    |rt: Runtime, l: ArrayView1<'_, T>| min_of(rt, &l),
    "NaN in a lane gives NaN for that lane.",
    "array![1.0, 2.0, 6.0]"
);
axis_fn!(
    norm2_axis,
    norm2,
    "",
    |rt: Runtime, l: ArrayView1<'_, T>| norm2_of(rt, &l),
    "Each lane's Euclidean norm, scaled against overflow and underflow.",
    "array![(17.0f64).sqrt(), (29.0f64).sqrt(), (117.0f64).sqrt()]"
);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array1, Array2, Array3};

    #[test]
    fn tree_is_the_same_for_every_pool() {
        let x = Array1::from_shape_fn(1_000_003, |i| ((i * 7919) % 10007) as f64 * 1e-3 - 5.0);
        let want = sum(&x).unwrap().to_bits();
        for threads in [1, 2, 3, 7] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(pool.install(|| sum(&x)).unwrap().to_bits(), want);
        }
    }

    #[test]
    fn strided_and_contiguous_agree() {
        let x = Array1::from_shape_fn(50_000, |i| (i as f64).sin());
        let mut big = Array1::zeros(100_000);
        big.slice_mut(s![..;2]).assign(&x);
        let v = big.slice(s![..;2]);
        assert_eq!(sum(&v).unwrap().to_bits(), sum(&x).unwrap().to_bits());
        assert_eq!(max(&v).unwrap(), max(&x).unwrap());
        assert_eq!(norm2(&v).unwrap().to_bits(), norm2(&x).unwrap().to_bits());
    }

    #[test]
    fn empties() {
        let e = Array1::<f64>::zeros(0);
        assert_eq!(sum(&e).unwrap(), 0.0);
        assert_eq!(norm2(&e).unwrap(), 0.0);
        assert!(matches!(mean(&e), Err(Error::Empty { op: "mean" })));
        assert!(matches!(max(&e), Err(Error::Empty { op: "max" })));
        assert!(matches!(min(&e), Err(Error::Empty { op: "min" })));
        let m = Array2::<f64>::zeros((0, 3));
        assert_eq!(sum_axis(&m, Axis(0)).unwrap(), array![0.0, 0.0, 0.0]);
        assert!(matches!(max_axis(&m, Axis(0)), Err(Error::Empty { .. })));
        assert_eq!(max_axis(&m, Axis(1)).unwrap().len(), 0);
    }

    #[test]
    fn norm2_scales() {
        let big = array![3e300f64, 4e300];
        assert!((norm2(&big).unwrap() / 5e300 - 1.0).abs() < 1e-15);
        let tiny = array![3e-310f64, 4e-310];
        assert!((norm2(&tiny).unwrap() / 5e-310 - 1.0).abs() < 1e-6);
        let small = array![3e-200f64, 4e-200];
        assert!((norm2(&small).unwrap() / 5e-200 - 1.0).abs() < 1e-15);
        assert_eq!(norm2(&array![f64::INFINITY, 1.0]).unwrap(), f64::INFINITY);
        assert!(norm2(&array![f64::INFINITY, f64::NAN]).unwrap().is_nan());
        assert!((norm2(&array![3e30f32, 4e30]).unwrap() / 5e30 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn axes() {
        let x = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f64);
        for ax in 0..3 {
            let a = Axis(ax);
            assert_eq!(sum_axis(&x, a).unwrap(), x.sum_axis(a));
            assert_eq!(mean_axis(&x, a).unwrap(), x.mean_axis(a).unwrap());
            let mx = max_axis(&x, a).unwrap();
            assert_eq!(mx, x.map_axis(a, |l| l.fold(f64::MIN, |m, &v| m.max(v))));
        }
        assert!(matches!(
            sum_axis(&x, Axis(3)),
            Err(Error::AxisOutOfBounds {
                axis: 3,
                ndim: 3,
                ..
            })
        ));
    }
}
