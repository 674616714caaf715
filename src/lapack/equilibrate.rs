//! Scaling by powers of two (exact: no rounding added) so that LU never overflows on inputs
//! of extreme magnitude; results are scaled back.

use super::*;

/// Row and column scalings by powers of two (the idea of LAPACK's `?geequb`): `As = R·A·C`
/// with `R = diag(2^row[i])`, `C = diag(2^col[j])`, chosen so that each row of `R·A` has its
/// largest magnitude in `[1, 2)`, then each column of `R·A·C` too. Multiplying by a power of
/// two adds no rounding (short of the subnormal range), so the scaled problem is the same
/// problem: an LU of `As` cannot overflow (`|As| < 2`), and its condition estimate is never
/// skipped. Entries of 1e±300 or subnormal ones factor as well as entries of 1.
pub(super) struct Equilibration {
    pub(super) row: Vec<i32>,
    pub(super) col: Vec<i32>,
}

impl Equilibration {
    pub(super) fn of<T: Float, S: Data<Elem = T>>(a: &ArrayBase<S, Ix2>) -> Equilibration {
        // In the exponent domain (integers), so that no scaled value can underflow on the way:
        // the unit exponent of x·2^r is the unit exponent of x minus r, exactly.
        let unit = |v: &T| (*v != T::zero()).then(|| unit_exponent(*v));
        let row: Vec<i32> = a
            .rows()
            .into_iter()
            .map(|r| r.iter().filter_map(unit).min().unwrap_or(0))
            .collect();
        let col = a
            .columns()
            .into_iter()
            .map(|c| {
                c.iter()
                    .zip(&row)
                    .filter_map(|(v, &r)| unit(v).map(|u| u - r))
                    .min()
                    .unwrap_or(0)
            })
            .collect();
        Equilibration { row, col }
    }

    /// `R·A·C`, a new C-order array.
    pub(super) fn apply<T: Float, S: Data<Elem = T>>(
        &self,
        op: &'static str,
        a: &ArrayBase<S, Ix2>,
    ) -> Result<Array2<T>> {
        let (n, m) = a.dim();
        // Logical (row-major) order, so the vector is the C-order array.
        let values = a
            .indexed_iter()
            .map(|((i, j), &v)| scale2(v, self.row[i] + self.col[j]));
        let data = collect(op, &[n, m], values)?;
        Ok(Array2::from_shape_vec((n, m), data).expect("collect gives n·m elements"))
    }
}

/// The `k` with `|x|·2^k` in `[1, 2)`; 0 for 0 (an all-zero row or column stays as it is, and
/// is found singular).
pub(super) fn unit_exponent<T: Float>(x: T) -> i32 {
    let (_, e) = frexp(x.to_f64().unwrap_or(0.0));
    if x == T::zero() {
        0
    } else {
        i32::try_from(1 - e).expect("an f64 exponent fits an i32")
    }
}

/// `x · 2^k`, exact unless the result leaves the normal range of `T`.
pub(super) fn scale2<T: Float>(x: T, k: i32) -> T {
    let y = ldexp(x.to_f64().unwrap_or(f64::NAN), i64::from(k));
    if T::SINGLE {
        T::from(y as f32)
    } else {
        T::from(y)
    }
    .unwrap_or_else(T::nan)
}

/// `x = m · 2^e` with `0.5 ≤ |m| < 1`; zero, infinities and NaN come back as `(x, 0)`.
pub(super) fn frexp(x: f64) -> (f64, i64) {
    const EXP_MASK: u64 = 0x7ff << 52;
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let biased = i64::try_from((bits & EXP_MASK) >> 52).expect("11 bits");
    if biased == 0 {
        // Subnormal: scale into the normal range first (exactly: a power of two).
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    (
        f64::from_bits((bits & !EXP_MASK) | (1022 << 52)),
        biased - 1022,
    )
}

/// `m · 2^e`, in steps that keep every factor a normal power of two.
pub(super) fn ldexp(m: f64, e: i64) -> f64 {
    // Beyond ±2200 the result is 0 or ±inf whatever |m| < 1 is.
    let mut e = i32::try_from(e.clamp(-2200, 2200)).expect("clamped");
    let mut x = m;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}
