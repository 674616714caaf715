//! Scaling by powers of two (exact: no rounding added) so that LU never overflows on inputs
//! of extreme magnitude; results are scaled back.

use super::*;

/// What one pass over `A`, fused with its copy into a C-order buffer, learns about its
/// magnitudes: the row and column sums of absolute values. Enough for `‖A‖₁` (what `?gecon`
/// wants), to find NaN and infinity without a test per element, and to decide whether the LU
/// needs [`Equilibration`].
pub(super) struct Magnitudes<T> {
    /// `Σᵢ |aᵢⱼ|` per column: `‖A‖₁` is the largest. NaN or infinity when `A` holds one (or
    /// when a sum overflows).
    col_sums: Vec<T>,
    /// The smallest non-zero and the largest `Σⱼ |aᵢⱼ|` of a row.
    row_min: T,
    row_max: T,
}

/// Elements per step of the fused loop: a whole AVX-512 register of f64, two of f32 on AVX2.
const LANES: usize = 8;

impl<T: Float> Magnitudes<T> {
    /// Copies `a` into a new C-order buffer and measures each row while it is still in L1.
    pub(super) fn copy_of<S: Data<Elem = T>>(
        op: &'static str,
        a: &ArrayBase<S, Ix2>,
    ) -> Result<(Vec<T>, Magnitudes<T>)> {
        let (rows, cols) = a.dim();
        // Reserved, not zeroed: each row is written once, by the copy.
        let mut buf = collect(op, &[rows, cols], std::iter::empty())?;
        let mut m = Magnitudes::empty(cols);
        for src in a.rows() {
            let start = buf.len();
            match src.as_slice() {
                Some(src) => buf.extend_from_slice(src),
                None => buf.extend(src.iter().copied()),
            }
            m.add_row(&buf[start..]);
        }
        Ok((buf, m))
    }

    fn empty(cols: usize) -> Magnitudes<T> {
        Magnitudes {
            col_sums: vec![T::zero(); cols],
            row_min: T::infinity(),
            row_max: T::zero(),
        }
    }

    /// Measures a C-order buffer (after it was equilibrated).
    fn of_buffer(buf: &[T], cols: usize) -> Magnitudes<T> {
        let mut m = Magnitudes::empty(cols);
        buf.chunks_exact(cols).for_each(|row| m.add_row(row));
        m
    }

    /// Adds `|v|` of one row to the column sums and its own sum to the row extremes, with the
    /// widest vectors this CPU has ([`sums`]).
    fn add_row(&mut self, row: &[T]) {
        let sum = sums(&mut self.col_sums, row);
        self.add_row_sum(sum);
    }

    fn add_row_sum(&mut self, sum: T) {
        if sum > T::zero() {
            self.row_min = self.row_min.min(sum);
        }
        self.row_max = self.row_max.max(sum);
    }

    /// `false` when `A` holds NaN or infinity, or its column sums overflow.
    pub(super) fn all_finite(&self) -> bool {
        self.col_sums.iter().all(|s| s.is_finite()) && self.row_max.is_finite()
    }

    /// `‖A‖₁`, the largest column sum of absolute values.
    pub(super) fn one_norm(&self) -> T {
        self.col_sums.iter().copied().fold(T::zero(), T::max)
    }

    /// Whether the LU must run on an equilibrated copy: when a magnitude could overflow or
    /// underflow the factorisation, or when rows or columns are of mixed scale.
    ///
    /// The safe range is `[2^-E, 2^E]` with `E` half of `T`'s largest exponent (2^512 for
    /// f64, 2^64 for f32), tested on the row and column sums (a sum bounds its largest element
    /// from above and `n` times it from below). Inside it, with partial pivoting `|L| ≤ 1` and
    /// `|U| ≤ ρ·max|A|` (the growth factor ρ is ≤ 2^(n-1) in theory and about n^(2/3) in
    /// practice, LAPACK Working Note 7), so the factors overflow only for a growth above 2^E,
    /// which would ruin an equilibrated LU as well; `‖A‖₁` stays finite for `?gecon`, which
    /// scales its own triangular solves (`?latrs`) against overflow; and rows whose entries
    /// are above 2^-E/n keep their multipliers and updates far from the subnormal range.
    ///
    /// Mixed scale is `?geequ`'s test on the sums, with LAPACK's threshold of 0.1 (`?laqge`)
    /// rounded to a power of two: the smallest row (column) sum below 1/16 of the largest.
    /// Row and column scaling does not change the solution, but it changes the condition
    /// number that `?gecon` estimates: a matrix whose rows differ by 2^±990 is well
    /// conditioned after it and hopeless before.
    pub(super) fn needs_equilibration(&self) -> bool {
        let half = max_exp::<T>() / 2;
        let (high, low) = (pow2::<T>(half), pow2::<T>(-half));
        let ratio = pow2::<T>(-4);
        let cols = self.col_sums.iter().filter(|&&m| m > T::zero());
        let col_min = cols.clone().copied().fold(T::infinity(), T::min);
        let col_max = cols.copied().fold(T::zero(), T::max);
        !self.all_finite()
            || self.row_max > high
            || col_max > high
            || self.row_min < low
            || self.row_min < self.row_max * ratio
            || col_min < col_max * ratio
    }
}

/// Adds `|v|` of `row` to `col_sums` element by element and returns the row's sum: compiled
/// for AVX-512 and AVX2 as well as for the baseline, and run at the level the elementwise
/// kernels use ([`crate::simd_level`]). The scan of the LU's input is then a small part of a
/// small factorisation (n = 100: about 1.5 µs of 90).
fn sums<T: Float>(col_sums: &mut [T], row: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::SimdLevel;
        match crate::simd_level() {
            // SAFETY: the level was detected on this CPU (`SimdLevel::detect`), so the
            // instructions these copies are compiled for exist here.
            SimdLevel::Avx512 => return unsafe { sums_avx512(col_sums, row) },
            // SAFETY: as above.
            SimdLevel::Avx2Fma => return unsafe { sums_avx2(col_sums, row) },
            SimdLevel::Portable => {}
        }
    }
    sums_body(col_sums, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn sums_avx512<T: Float>(col_sums: &mut [T], row: &[T]) -> T {
    sums_body(col_sums, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sums_avx2<T: Float>(col_sums: &mut [T], row: &[T]) -> T {
    sums_body(col_sums, row)
}

/// One loop over arrays of [`LANES`], which the compiler vectorises (the row sum kept in
/// lanes: a plain sum over the row would stay scalar, as floating-point addition does not
/// reassociate).
#[inline(always)]
fn sums_body<T: Float>(col_sums: &mut [T], row: &[T]) -> T {
    let mut lanes = [T::zero(); LANES];
    let split = row.len() - row.len() % LANES;
    let body = row[..split]
        .chunks_exact(LANES)
        .zip(col_sums[..split].chunks_exact_mut(LANES));
    for (v, c) in body {
        let v: &[T; LANES] = v.try_into().expect("chunks of LANES");
        let c: &mut [T; LANES] = c.try_into().expect("chunks of LANES");
        for k in 0..LANES {
            let a = v[k].abs();
            c[k] = c[k] + a;
            lanes[k] = lanes[k] + a;
        }
    }
    let mut sum = lanes.into_iter().fold(T::zero(), |x, y| x + y);
    for (c, &v) in col_sums[split..].iter_mut().zip(&row[split..]) {
        *c = *c + v.abs();
        sum = sum + v.abs();
    }
    sum
}

/// `T::MAX_EXP`: 2^MAX_EXP is the first power of two beyond `T`'s range.
fn max_exp<T: Float>() -> i32 {
    if T::SINGLE {
        f32::MAX_EXP
    } else {
        f64::MAX_EXP
    }
}

/// `T::MIN_EXP`: 2^(MIN_EXP - 1) is `T`'s smallest normal power of two.
fn min_exp<T: Float>() -> i32 {
    if T::SINGLE {
        f32::MIN_EXP
    } else {
        f64::MIN_EXP
    }
}

/// `2^k` for `k` inside `T`'s normal exponent range.
fn pow2<T: Float>(k: i32) -> T {
    T::from(2f64.powi(k)).expect("a power of two inside T's normal range")
}

/// Multiplies every element of `v` by `2^k`: one multiply by an exact power of two when `2^k`
/// is a normal number (exact unless a result leaves the normal range, as IEEE rounds it), the
/// stepwise [`scale2`] otherwise.
pub(super) fn scale_all<T: Float>(v: &mut [T], k: i32) {
    if k == 0 {
        return;
    }
    let normal = min_exp::<T>() - 1..max_exp::<T>();
    if normal.contains(&k) {
        let f = pow2::<T>(k);
        v.iter_mut().for_each(|x| *x = *x * f);
    } else {
        v.iter_mut().for_each(|x| *x = scale2(*x, k));
    }
}

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
    /// Equilibrates the C-order `rows × cols` buffer in place when its [`Magnitudes`] ask for
    /// it; returns the scaling (`None`: left as it is) and `‖As‖₁`.
    pub(super) fn apply_if_needed<T: Float>(
        buf: &mut [T],
        cols: usize,
        magnitudes: &Magnitudes<T>,
    ) -> (Option<Equilibration>, T) {
        if !magnitudes.needs_equilibration() {
            return (None, magnitudes.one_norm());
        }
        let eq = Equilibration::of(buf, cols);
        for (row, &r) in buf.chunks_exact_mut(cols).zip(&eq.row) {
            for (v, &c) in row.iter_mut().zip(&eq.col) {
                *v = scale2(*v, r + c);
            }
        }
        let norm = Magnitudes::of_buffer(buf, cols).one_norm();
        (Some(eq), norm)
    }

    /// The exponents for the C-order `rows × cols` buffer.
    fn of<T: Float>(buf: &[T], cols: usize) -> Equilibration {
        // In the exponent domain (integers), so that no scaled value can underflow on the way:
        // the unit exponent of x·2^r is the unit exponent of x minus r, exactly.
        let unit = |v: &T| (*v != T::zero()).then(|| unit_exponent(*v));
        let row: Vec<i32> = buf
            .chunks_exact(cols)
            .map(|r| r.iter().filter_map(unit).min().unwrap_or(0))
            .collect();
        let mut col = vec![i32::MAX; cols];
        for (values, &r) in buf.chunks_exact(cols).zip(&row) {
            for (c, v) in col.iter_mut().zip(values) {
                if let Some(u) = unit(v) {
                    *c = (*c).min(u - r);
                }
            }
        }
        col.iter_mut()
            .filter(|c| **c == i32::MAX)
            .for_each(|c| *c = 0);
        Equilibration { row, col }
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
