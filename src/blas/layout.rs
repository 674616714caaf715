//! From ndarray strides to what BLAS can take: order, transpose flag and leading dimension.
//!
//! BLAS reads a matrix as a pointer plus a leading dimension: consecutive elements of a row (or,
//! transposed, of a column) must be adjacent, and rows (columns) evenly spaced by `ld ≥ width`.
//! ndarray views are more general (any signed strides, broadcast axes of stride 0). The resolver
//! says which views fit, so that only the others are copied.
//!
//! We always call BLAS in row-major order. A logical `rows × cols` view fits:
//! - as stored row-major (`NoTrans`) when its column stride is 1 and its row stride is at least
//!   `cols`: C order, sub-blocks of a larger C-order array, row-strided views;
//! - as the transpose of a stored row-major `cols × rows` matrix (`Trans`) when its row stride is
//!   1 and its column stride is at least `rows`: F order, `a.t()` of C-order data, sub-blocks.
//!
//! The stride of an axis of length 1 is never read, so it does not matter.

use crate::openblas::ffi::Transpose;

/// How BLAS reads a logical matrix in row-major calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatrixLayout {
    /// `NoTrans`: the data is the logical matrix stored row-major; `Trans`: the data is its
    /// transpose stored row-major.
    pub trans: Transpose,
    /// Distance between consecutive stored rows, in elements (≥ 1 and ≥ the stored width).
    pub ld: usize,
}

/// The BLAS layout of a logical `rows × cols` view with the given element strides, or `None`
/// when BLAS cannot read it in place (inner stride ≠ 1 on both axes, negative or zero strides
/// on a non-trivial axis, rows closer together than their width).
#[inline]
pub(crate) fn matrix_layout(
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
) -> Option<MatrixLayout> {
    if rows == 0 || cols == 0 {
        // Nothing is read; any valid leading dimension will do.
        return Some(MatrixLayout {
            trans: Transpose::NoTrans,
            ld: cols.max(1),
        });
    }
    // Row-major: each row contiguous, rows evenly spaced by ld ≥ cols.
    if cols <= 1 || col_stride == 1 {
        if let Some(ld) = leading_dimension(rows, cols, row_stride) {
            return Some(MatrixLayout {
                trans: Transpose::NoTrans,
                ld,
            });
        }
    }
    // Column-major: each column contiguous, columns evenly spaced by ld ≥ rows.
    if rows <= 1 || row_stride == 1 {
        if let Some(ld) = leading_dimension(cols, rows, col_stride) {
            return Some(MatrixLayout {
                trans: Transpose::Trans,
                ld,
            });
        }
    }
    None
}

/// The leading dimension for `outer` stored rows of `width` elements each, spaced by
/// `outer_stride`, if BLAS accepts it.
#[inline]
fn leading_dimension(outer: usize, width: usize, outer_stride: isize) -> Option<usize> {
    let min_ld = width.max(1);
    if outer <= 1 {
        // A single stored row: its spacing is never used, any ld ≥ width is valid.
        return Some(min_ld);
    }
    let stride = usize::try_from(outer_stride).ok()?;
    (stride >= min_ld).then_some(stride)
}

/// The BLAS increment of a 1-D view of length `len` and element stride `stride`, or `None`
/// when BLAS cannot read it in place (negative or zero stride on a vector of length ≥ 2).
///
/// BLAS does accept negative increments, but then expects the pointer to the lowest address;
/// copying such a (rare) vector once is simpler than getting that pointer arithmetic right.
pub(crate) fn vector_inc(len: usize, stride: isize) -> Option<usize> {
    if len <= 1 {
        return Some(1);
    }
    usize::try_from(stride).ok().filter(|&s| s >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2, ShapeBuilder};

    fn layout_of(a: &ndarray::ArrayView2<'_, f64>) -> Option<MatrixLayout> {
        let (r, c) = a.dim();
        let st = a.strides();
        matrix_layout(r, c, st[0], st[1])
    }

    fn no_trans(ld: usize) -> Option<MatrixLayout> {
        Some(MatrixLayout {
            trans: Transpose::NoTrans,
            ld,
        })
    }

    fn trans(ld: usize) -> Option<MatrixLayout> {
        Some(MatrixLayout {
            trans: Transpose::Trans,
            ld,
        })
    }

    #[test]
    fn c_order_is_row_major() {
        let a = Array2::<f64>::zeros((3, 5));
        assert_eq!(layout_of(&a.view()), no_trans(5));
    }

    #[test]
    fn f_order_and_transposed_views_are_transposed() {
        let f = Array2::<f64>::zeros((3, 5).f());
        assert_eq!(layout_of(&f.view()), trans(3));
        let c = Array2::<f64>::zeros((5, 3));
        assert_eq!(layout_of(&c.t()), trans(3));
    }

    #[test]
    fn sub_block_keeps_the_parent_leading_dimension() {
        let big = Array2::<f64>::zeros((10, 12));
        assert_eq!(layout_of(&big.slice(s![2..5, 3..7])), no_trans(12));
        let bigf = Array2::<f64>::zeros((10, 12).f());
        assert_eq!(layout_of(&bigf.slice(s![2..5, 3..7])), trans(10));
    }

    #[test]
    fn row_strided_view_is_row_major_with_larger_ld() {
        let big = Array2::<f64>::zeros((10, 4));
        assert_eq!(layout_of(&big.slice(s![..;2, ..])), no_trans(8));
        // Column-strided view of F-order data: columns still contiguous.
        let bigf = Array2::<f64>::zeros((4, 10).f());
        assert_eq!(layout_of(&bigf.slice(s![.., ..;3])), trans(12));
    }

    #[test]
    fn inner_stride_two_on_both_axes_is_rejected() {
        let big = Array2::<f64>::zeros((6, 8));
        assert_eq!(layout_of(&big.slice(s![..;2, ..;2])), None);
        assert_eq!(layout_of(&big.slice(s![.., ..;2])), None);
    }

    #[test]
    fn negative_strides_are_rejected() {
        let a = Array2::<f64>::zeros((4, 5));
        assert_eq!(layout_of(&a.slice(s![..;-1, ..])), None);
        assert_eq!(layout_of(&a.slice(s![.., ..;-1])), None);
    }

    #[test]
    fn broadcast_zero_stride_is_rejected() {
        let row = ndarray::Array1::<f64>::zeros(5);
        let b = row.broadcast((4, 5)).unwrap();
        assert_eq!(layout_of(&b), None);
    }

    #[test]
    fn length_one_axes_ignore_their_stride() {
        // One row, reversed: its (negative) row stride is never read.
        let a = Array2::<f64>::zeros((1, 5));
        assert_eq!(layout_of(&a.slice(s![..;-1, ..])), no_trans(5));
        // One column taken with a step: still a valid single column.
        let a = Array2::<f64>::zeros((4, 6));
        assert_eq!(layout_of(&a.slice(s![.., 1..2])), no_trans(6));
        assert_eq!(matrix_layout(1, 1, -7, 0), no_trans(1));
        // A broadcast column (row stride 0, 1 column) is not readable in place.
        assert_eq!(matrix_layout(4, 1, 0, 1), None);
    }

    #[test]
    fn zero_length_axes_are_valid() {
        assert_eq!(matrix_layout(0, 5, 5, 1), no_trans(5));
        assert_eq!(matrix_layout(3, 0, 0, 1), no_trans(1));
        assert_eq!(matrix_layout(0, 0, 0, 0), no_trans(1));
    }

    #[test]
    fn rows_closer_than_their_width_are_rejected() {
        // Overlapping rows (stride 2 for width 3) would make BLAS reject lda.
        assert_eq!(matrix_layout(4, 3, 2, 1), None);
    }

    #[test]
    fn vector_increments() {
        assert_eq!(vector_inc(5, 1), Some(1));
        assert_eq!(vector_inc(5, 3), Some(3));
        assert_eq!(vector_inc(5, -1), None);
        assert_eq!(vector_inc(5, 0), None);
        assert_eq!(vector_inc(1, -4), Some(1));
        assert_eq!(vector_inc(0, 0), Some(1));
    }
}
