//! The crate's one error type.
//!
//! Every fallible function of parlinalg returns [`Result<T>`], whose error is a value of
//! [`Error`]. Messages carry the evidence: both shapes of a mismatch, the name and value of a bad
//! environment variable, the LAPACK routine and its `info`.

use std::fmt;

/// Result alias used throughout parlinalg.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in parlinalg.
///
/// The enum is `#[non_exhaustive]`: match the variants you handle and keep a `_` arm.
///
/// ```
/// use parlinalg::{matmul, Error, ndarray::Array2};
///
/// let a = Array2::<f64>::zeros((2, 3));
/// let b = Array2::<f64>::zeros((4, 5));
/// match matmul(&a, &b) {
///     Err(Error::ShapeMismatch { left, right, .. }) => {
///         assert_eq!(left, vec![2, 3]);
///         assert_eq!(right, vec![4, 5]);
///     }
///     other => panic!("expected a shape mismatch, got {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The shapes of two operands do not fit together.
    #[error(
        "{op}: shapes {} and {} do not match ({why})",
        Shape(left),
        Shape(right)
    )]
    ShapeMismatch {
        /// The operation that was asked for.
        op: &'static str,
        /// Shape of the first operand.
        left: Vec<usize>,
        /// Shape of the second operand.
        right: Vec<usize>,
        /// Which dimensions disagree.
        why: String,
    },

    /// A dimension (or leading dimension) does not fit the BLAS/LAPACK integer type.
    #[error("{op}: dimension {dim} exceeds the BLAS integer limit {max}")]
    DimensionTooLarge {
        /// The operation that was asked for.
        op: &'static str,
        /// The offending dimension.
        dim: usize,
        /// The largest dimension the BLAS integer can hold.
        max: usize,
    },

    /// The result array could not be allocated.
    #[error("{op}: cannot allocate a result of shape {}", Shape(shape))]
    Allocation {
        /// The operation that was asked for.
        op: &'static str,
        /// Shape (or element count) of the result that was refused.
        shape: Vec<usize>,
    },

    /// The input is empty where the result is undefined (`max` of nothing, `det` of a 0×0
    /// matrix is fine but `mean` of nothing is not).
    #[error("{op}: input is empty, the result is undefined")]
    Empty {
        /// The operation that was asked for.
        op: &'static str,
    },

    /// An axis argument names an axis the array does not have.
    #[error("{op}: axis {axis} is out of bounds for an array of {ndim} dimensions")]
    AxisOutOfBounds {
        /// The operation that was asked for.
        op: &'static str,
        /// The axis that was asked for.
        axis: usize,
        /// How many axes the array has.
        ndim: usize,
    },

    /// A square matrix was required.
    #[error("{op}: matrix must be square, got shape {}", Shape(shape))]
    NotSquare {
        /// The operation that was asked for.
        op: &'static str,
        /// The shape that was passed.
        shape: Vec<usize>,
    },

    /// The input holds NaN or infinity where the routine's behaviour would be undefined.
    #[error("{op}: input holds a non-finite value ({value}) at index {index:?}; LAPACK's behaviour on NaN and infinity is undefined")]
    NonFinite {
        /// The operation that was asked for.
        op: &'static str,
        /// Index of the first non-finite element, in logical order.
        index: Vec<usize>,
        /// The value found there (printed).
        value: String,
    },

    /// LU factorisation found an exactly zero pivot: the matrix is singular.
    #[error("{routine}: matrix is singular (U[{pivot},{pivot}] is exactly zero, 1-based pivot {})", pivot + 1)]
    Singular {
        /// The LAPACK routine that found it.
        routine: &'static str,
        /// Zero-based index of the zero pivot. LAPACK factors the C-order copy of `A` as it
        /// lies in memory, which is `Aᵀ`: a zero row `i` of `A` (a zero column of `Aᵀ`) is
        /// pivot `i`.
        pivot: usize,
    },

    /// Cholesky factorisation failed: the matrix is not positive definite.
    #[error("{routine}: matrix is not positive definite (the leading minor of order {minor} is not positive)")]
    NotPositiveDefinite {
        /// The LAPACK routine that found it.
        routine: &'static str,
        /// Order (1-based) of the first leading minor that is not positive.
        minor: usize,
    },

    /// The matrix is singular to working precision: no pivot is exactly zero, but the
    /// reciprocal condition number (LAPACK's estimate for `solve`, the exact one from the
    /// inverse for `inv`) is below the machine epsilon of the element type, so a solution or
    /// inverse would have no correct digit (MATLAB warns at the same threshold; numpy returns
    /// the numbers).
    #[error("{routine}: matrix is singular to working precision (reciprocal condition number {rcond:e} < machine epsilon {epsilon:e})")]
    IllConditioned {
        /// The LAPACK routine behind the number: `?lacn2`, the estimator (`solve`), or
        /// `?getri`, whose inverse gave the exact number (`inv`).
        routine: &'static str,
        /// The reciprocal condition number (1-norm), estimated or exact.
        rcond: f64,
        /// The machine epsilon it was compared with.
        epsilon: f64,
    },

    /// A LAPACK routine reported an error or failed to converge.
    #[error("{routine}: LAPACK returned info = {info} ({why})")]
    Lapack {
        /// The LAPACK routine.
        routine: &'static str,
        /// Its `info` output.
        info: i32,
        /// What that means.
        why: String,
    },

    /// A thread count that is zero, negative or beyond the allowed maximum.
    #[error("invalid thread count {value} for {what}: {why}")]
    InvalidThreadCount {
        /// What the count was for (e.g. "BLAS threads").
        what: &'static str,
        /// The value that was given.
        value: usize,
        /// Why it was refused.
        why: String,
    },

    /// An environment variable holds something that is not a valid value.
    #[error("environment variable {name}={value:?} is invalid: {why}")]
    InvalidEnv {
        /// The variable's name.
        name: String,
        /// Its raw value.
        value: String,
        /// Why it was refused.
        why: String,
    },

    /// rayon could not build the outer thread pool a plan asks for (the OS refused threads).
    #[error("cannot build a pool of {threads} outer threads: {source}")]
    ThreadPool {
        /// The pool's size.
        threads: usize,
        /// rayon's error.
        #[source]
        source: PoolBuildError,
    },
}

/// rayon's [`ThreadPoolBuildError`](rayon::ThreadPoolBuildError), shared so that [`Error`]
/// stays `Clone` and comparable (two of them are equal when their messages are).
#[derive(Debug, Clone)]
pub struct PoolBuildError(std::sync::Arc<rayon::ThreadPoolBuildError>);

impl PoolBuildError {
    pub(crate) fn new(e: rayon::ThreadPoolBuildError) -> Self {
        PoolBuildError(std::sync::Arc::new(e))
    }
}

impl fmt::Display for PoolBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PoolBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for PoolBuildError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

/// Prints a shape as numpy does: `(2, 3)`, `(5,)`, `()`.
struct Shape<'a>(&'a [usize]);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => write!(f, "()"),
            [n] => write!(f, "({n},)"),
            dims => {
                write!(f, "(")?;
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{d}")?;
                }
                write!(f, ")")
            }
        }
    }
}

impl Error {
    /// A [`Error::ShapeMismatch`] for `op`, with both shapes and the reason.
    pub(crate) fn shape(op: &'static str, left: &[usize], right: &[usize], why: String) -> Self {
        Error::ShapeMismatch {
            op,
            left: left.to_vec(),
            right: right.to_vec(),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_mismatch_message_carries_both_shapes() {
        let e = Error::shape("matmul", &[2, 3], &[4, 5], "3 != 4".into());
        assert_eq!(
            e.to_string(),
            "matmul: shapes (2, 3) and (4, 5) do not match (3 != 4)"
        );
        let e = Error::shape("dot", &[5], &[], "x".into());
        assert!(e.to_string().contains("(5,) and ()"), "{e}");
    }

    #[test]
    fn singular_message_names_pivot() {
        let e = Error::Singular {
            routine: "dgetrf",
            pivot: 2,
        };
        assert!(e.to_string().contains("U[2,2]"), "{e}");
        assert!(e.to_string().contains("1-based pivot 3"), "{e}");
    }
}
