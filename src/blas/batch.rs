//! Batches of products: `batch × m × k` times `batch × k × n`, split between outer and BLAS
//! threads by the default policy or by a given plan.

use std::mem::MaybeUninit;

use ndarray::{Array3, ArrayBase, Axis, Data, DataMut, Ix3};
use rayon::prelude::*;

use super::{element_count, gemm_into_ptr, product_into_view, ProductDims};
use crate::alloc::{filled, uninit_buffer};
use crate::threads::{
    batch_task_len, plan_for_batch, with_blas_threads, BatchDecision, Plan, Runtime,
};
use crate::{Error, Float, Result};

/// Products of a batch of matrices, `out[i] = a[i] · b[i]`, split between outer threads and
/// BLAS threads by the default policy ([`threads::plan_for_batch`](crate::threads::plan_for_batch)).
///
/// `a` is `batch × m × k`, `b` is `batch × k × n`; as in numpy, a batch of 1 on either side is
/// broadcast against the other. Each product lands in `cblas_?gemm`. The policy's choice is
/// recorded: [`threads::last_batch_decision`](crate::threads::last_batch_decision) and the
/// report show it.
///
/// # Errors
/// [`Error::ShapeMismatch`] (batch sizes or inner dimensions), [`Error::DimensionTooLarge`],
/// [`Error::Allocation`], [`Error::InvalidEnv`].
///
/// ```
/// use parlinalg::ndarray::Array3;
///
/// let a = Array3::<f64>::ones((8, 3, 4));
/// let b = Array3::<f64>::ones((8, 4, 2));
/// let c = parlinalg::matmul_batch(&a, &b)?;
/// assert_eq!(c.dim(), (8, 3, 2));
/// assert!(c.iter().all(|&x| x == 4.0));
/// println!("{:?}", parlinalg::threads::last_batch_decision());
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matmul_batch<T, SA, SB>(a: &ArrayBase<SA, Ix3>, b: &ArrayBase<SB, Ix3>) -> Result<Array3<T>>
where
    T: Float,
    SA: Data<Elem = T> + Sync,
    SB: Data<Elem = T> + Sync,
{
    let rt = crate::threads::enter()?;
    let (batch, dims) = batch_dims("matmul_batch", a, b)?;
    let (m, n, k) = dims.usize();
    let choice = plan_for_batch(batch, m, k, n)?;
    let plan = choice.plan;
    crate::threads::record_batch_decision(BatchDecision {
        batch,
        m,
        k,
        n,
        choice,
    });
    batch_under(rt, a, b, &plan)
}

/// [`matmul_batch`] under a given plan: K outer threads each computing whole products with N
/// BLAS threads (K = 1: one product after another, each on N BLAS threads).
///
/// # Errors
/// As [`matmul_batch`].
///
/// ```
/// use parlinalg::{ndarray::Array3, threads::Plan};
///
/// let a = Array3::<f32>::ones((4, 16, 16));
/// let inner = parlinalg::matmul_batch_with(&a, &a, &Plan::new(1, 2)?)?;
/// let outer = parlinalg::matmul_batch_with(&a, &a, &Plan::new(2, 1)?)?;
/// assert_eq!(inner, outer);
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matmul_batch_with<T, SA, SB>(
    a: &ArrayBase<SA, Ix3>,
    b: &ArrayBase<SB, Ix3>,
    plan: &Plan,
) -> Result<Array3<T>>
where
    T: Float,
    SA: Data<Elem = T> + Sync,
    SB: Data<Elem = T> + Sync,
{
    batch_under(crate::threads::enter()?, a, b, plan)
}

/// [`matmul_batch`] written into `out` (numpy's `out=`): `out[i] = a[i] · b[i]`, with no
/// allocation and no fresh pages to fault in when `out`'s matrices are C order, F order or
/// sub-blocks of either (other layouts get each product through a temporary). `out` is
/// overwritten, never read. Split between outer and BLAS threads by the default policy, as
/// [`matmul_batch`], or by `plan` when given.
///
/// A batch of 2,000 products of 64×64 into a fresh array spends about a fifth of its CPU
/// faulting in the result's 65 MB; into a reused one, none (BENCHMARKS.md).
///
/// # Errors
/// As [`matmul_batch`], plus [`Error::ShapeMismatch`] when `out` is not `batch × m × n`.
///
/// ```
/// use parlinalg::ndarray::Array3;
///
/// let a = Array3::<f64>::ones((8, 3, 4));
/// let b = Array3::<f64>::ones((8, 4, 2));
/// let mut c = Array3::<f64>::zeros((8, 3, 2));
/// for _ in 0..3 {
///     parlinalg::matmul_batch_into(&a, &b, &mut c, None)?; // reuses c's memory
/// }
/// assert!(c.iter().all(|&x| x == 4.0));
/// # Ok::<(), parlinalg::Error>(())
/// ```
pub fn matmul_batch_into<T, SA, SB, SC>(
    a: &ArrayBase<SA, Ix3>,
    b: &ArrayBase<SB, Ix3>,
    out: &mut ArrayBase<SC, Ix3>,
    plan: Option<&Plan>,
) -> Result<()>
where
    T: Float,
    SA: Data<Elem = T> + Sync,
    SB: Data<Elem = T> + Sync,
    SC: DataMut<Elem = T>,
{
    const OP: &str = "matmul_batch_into";
    let rt = crate::threads::enter()?;
    let (batch, dims) = batch_dims(OP, a, b)?;
    let (m, n, k) = dims.usize();
    if out.dim() != (batch, m, n) {
        return Err(Error::shape(
            OP,
            &[batch, m, n],
            out.shape(),
            format!(
                "the products are {batch} × {m}×{n} but out is {}",
                out.shape()
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" × ")
            ),
        ));
    }
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(T::zero());
        return Ok(());
    }
    let plan = match plan {
        Some(plan) => *plan,
        None => {
            let choice = plan_for_batch(batch, m, k, n)?;
            let plan = choice.plan;
            crate::threads::record_batch_decision(BatchDecision {
                batch,
                m,
                k,
                n,
                choice,
            });
            plan
        }
    };
    let pick = |x: usize, i: usize| if x == 1 { 0 } else { i };
    let (batch_a, batch_b) = (a.len_of(Axis(0)), b.len_of(Axis(0)));
    let product = |i: usize, mut slot: ndarray::ArrayViewMut2<'_, T>| -> Result<()> {
        let ai = a.index_axis(Axis(0), pick(batch_a, i));
        let bi = b.index_axis(Axis(0), pick(batch_b, i));
        product_into_view(rt, OP, &ai, &bi, dims, &mut slot)
    };
    if plan.outer_threads() == 1 {
        with_blas_threads(plan.blas_threads(), || {
            out.axis_iter_mut(Axis(0))
                .enumerate()
                .try_for_each(|(i, slot)| product(i, slot))
        })??;
    } else {
        // Even tasks of consecutive products, as in `batch_under`.
        let task_len = batch_task_len(batch, 2.0 * m as f64 * n as f64 * k as f64);
        let mut out = out.view_mut();
        plan.run(|| {
            out.axis_chunks_iter_mut(Axis(0), task_len)
                .into_par_iter()
                .with_max_len(1)
                .enumerate()
                .try_for_each(|(task, mut products)| {
                    products
                        .axis_iter_mut(Axis(0))
                        .enumerate()
                        .try_for_each(|(j, slot)| product(task * task_len + j, slot))
                })
        })??;
    }
    Ok(())
}

/// The products of a batch under `plan`.
fn batch_under<T, SA, SB>(
    rt: Runtime,
    a: &ArrayBase<SA, Ix3>,
    b: &ArrayBase<SB, Ix3>,
    plan: &Plan,
) -> Result<Array3<T>>
where
    T: Float,
    SA: Data<Elem = T> + Sync,
    SB: Data<Elem = T> + Sync,
{
    const OP: &str = "matmul_batch";
    let (batch, dims) = batch_dims(OP, a, b)?;
    let (m, n, k) = dims.usize();
    let len = element_count(OP, &[batch, m, n])?;
    if len == 0 || k == 0 {
        let zeros = filled(OP, len, T::zero())?;
        return Ok(Array3::from_shape_vec((batch, m, n), zeros).expect("shape matches length"));
    }
    let mut out = uninit_buffer::<T>(OP, len)?;
    let per_product = m * n;
    let pick = |x: usize, i: usize| if x == 1 { 0 } else { i };
    let (batch_a, batch_b) = (a.len_of(Axis(0)), b.len_of(Axis(0)));
    let product = |(i, chunk): (usize, &mut [MaybeUninit<T>])| -> Result<()> {
        let ai = a.index_axis(Axis(0), pick(batch_a, i));
        let bi = b.index_axis(Axis(0), pick(batch_b, i));
        // SAFETY: `chunk` is this product's own m·n elements of the output (chunks of one
        // exclusive borrow never overlap), i.e. m rows of ldc = n; the inputs are separate
        // arrays, and every dimension is ≥ 1 (checked above).
        unsafe {
            gemm_into_ptr(
                rt,
                OP,
                &ai,
                &bi,
                dims,
                chunk.as_mut_ptr().cast::<T>(),
                dims.n,
            )
        }
    };
    let slots = &mut out.spare_capacity_mut()[..len];
    if plan.outer_threads() == 1 {
        with_blas_threads(plan.blas_threads(), || {
            slots
                .chunks_mut(per_product)
                .enumerate()
                .try_for_each(product)
        })??;
    } else {
        // Even tasks of consecutive products, each at least BATCH_TASK_FLOPS, one rayon job
        // each: rayon's adaptive split alone would leave about a quarter of the batch per piece
        // on 2 threads, and one thread idle while the other finishes its last piece.
        let task_len = batch_task_len(batch, 2.0 * m as f64 * n as f64 * k as f64);
        plan.run(|| {
            slots
                .par_chunks_mut(per_product * task_len)
                .with_max_len(1)
                .enumerate()
                .try_for_each(|(task, products)| {
                    products
                        .chunks_mut(per_product)
                        .enumerate()
                        .try_for_each(|(j, slot)| product((task * task_len + j, slot)))
                })
        })??;
    }
    // SAFETY: every product returned Ok, so gemm (beta = 0) wrote all `len` elements.
    unsafe { out.set_len(len) };
    Ok(Array3::from_shape_vec((batch, m, n), out).expect("shape matches length"))
}

/// The batch size (after broadcasting a batch of 1) and the per-product dimensions.
fn batch_dims<T, SA: Data<Elem = T>, SB: Data<Elem = T>>(
    op: &'static str,
    a: &ArrayBase<SA, Ix3>,
    b: &ArrayBase<SB, Ix3>,
) -> Result<(usize, ProductDims)> {
    let ((ba, m, k), (bb, kb, n)) = (a.dim(), b.dim());
    let batch = match (ba, bb) {
        (x, y) if x == y => x,
        (1, y) => y,
        (x, 1) => x,
        _ => {
            return Err(Error::shape(
                op,
                a.shape(),
                b.shape(),
                format!("batch sizes {ba} and {bb} differ (and neither is 1)"),
            ))
        }
    };
    if k != kb {
        return Err(Error::shape(
            op,
            a.shape(),
            b.shape(),
            format!("a's matrices have {k} columns but b's have {kb} rows"),
        ));
    }
    Ok((batch, ProductDims::new(op, m, n, k)?))
}
