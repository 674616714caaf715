//! Direct LAPACK calls (through `lapack-sys`, an independent declaration of the routines in the
//! same OpenBLAS) doing the work each `parlinalg` routine is built on, on the caller's own
//! buffers: the baseline of `benches/lapack.rs`. Each makes the one copy a caller must make
//! (LAPACK overwrites its input) and nothing else: no checks, no scaling.
//!
//! A C-order `n × n` buffer read as column major is `Aᵀ`, so the LU routines factor `Aᵀ` and
//! answer through the transposed solve (`trans = 'T'`), the infinity-norm condition estimate
//! of `Aᵀ` (= the 1-norm one of `A`) and `inv(Aᵀ) = inv(A)ᵀ`: no transposing copy at all.
#![allow(dead_code)] // each bench uses a part

use lapack_sys::{dgecon_, dgesdd_, dgetrf_, dgetri_, dgetrs_, dlacn2_, dlange_, dpotrf_, dsyev_};
use parlinalg::ndarray::{Array1, Array2};
use std::ffi::{c_char, c_int};

fn int(n: usize) -> c_int {
    c_int::try_from(n).expect("bench sizes fit LAPACK's integer")
}

fn ch(c: u8) -> *const c_char {
    match c {
        b'1' => c"1".as_ptr(),
        b'I' => c"I".as_ptr(),
        b'N' => c"N".as_ptr(),
        b'T' => c"T".as_ptr(),
        b'U' => c"U".as_ptr(),
        b'S' => c"S".as_ptr(),
        _ => unreachable!("not a flag the bench uses"),
    }
}

/// `a`'s C-order elements: one contiguous copy.
fn copy(a: &Array2<f64>) -> Vec<f64> {
    a.as_slice().expect("bench inputs are C order").to_vec()
}

/// `dgetrf` on the `n × n` `buf` (`Aᵀ` column major): the pivots.
fn getrf(n: usize, buf: &mut [f64]) -> Vec<c_int> {
    assert_eq!(buf.len(), n * n);
    let (ni, mut info) = (int(n), 0);
    let mut ipiv = vec![0; n];
    // SAFETY: buf holds n·n elements (asserted; lda = n), ipiv n.
    unsafe {
        dgetrf_(
            &ni,
            &ni,
            buf.as_mut_ptr(),
            &ni,
            ipiv.as_mut_ptr(),
            &mut info,
        )
    };
    assert_eq!(info, 0, "dgetrf");
    ipiv
}

/// `dgetrf` on `buf` (`Aᵀ` column major), then the 1-norm reciprocal condition number of `A`.
fn lu_and_rcond(n: usize, buf: &mut [f64]) -> (Vec<c_int>, f64) {
    let anorm = norm_of_transpose(n, buf);
    let ipiv = getrf(n, buf);
    (ipiv, gecon(n, buf, anorm))
}

/// `‖A‖₁` of the `A` whose transpose `buf` holds column major: `dlange` with `'I'`.
fn norm_of_transpose(n: usize, buf: &[f64]) -> f64 {
    assert_eq!(buf.len(), n * n);
    let mut work = vec![0.0; n];
    let ni = int(n);
    // SAFETY: buf holds n·n elements (lda = n, asserted); dlange with 'I' uses n of work.
    unsafe { dlange_(ch(b'I'), &ni, &ni, buf.as_ptr(), &ni, work.as_mut_ptr()) }
}

/// `dgecon` with the infinity norm on the LU of `Aᵀ` in `lu`: the 1-norm reciprocal condition
/// number of `A`.
fn gecon(n: usize, lu: &[f64], anorm: f64) -> f64 {
    assert_eq!(lu.len(), n * n);
    let ni = int(n);
    let (mut work, mut iwork, mut rcond, mut info) = (vec![0.0; 4 * n], vec![0; n], 0.0, 0);
    // SAFETY: lu holds the n·n factors (lda = n, asserted), work 4n and iwork n as dgecon
    // needs; the flag is a NUL-terminated one-letter string.
    unsafe {
        dgecon_(
            ch(b'I'),
            &ni,
            lu.as_ptr(),
            &ni,
            &anorm,
            &mut rcond,
            work.as_mut_ptr(),
            iwork.as_mut_ptr(),
            &mut info,
        )
    };
    assert_eq!(info, 0, "dgecon");
    rcond
}

/// The same estimate as [`gecon`] from `dlacn2` (the estimator inside `dgecon`) with each of
/// its solves one `dgetrs` instead of `dgecon`'s overflow-guarded `dlatrs`: what parlinalg
/// computes (without its fallback for a solve that overflows).
fn lacn2_with_getrs(n: usize, lu: &[f64], ipiv: &[c_int], anorm: f64) -> f64 {
    assert!(lu.len() == n * n && ipiv.len() == n);
    let ni = int(n);
    let (mut v, mut x, mut isgn) = (vec![0.0; n], vec![0.0; n], vec![0; n]);
    let (mut est, mut kase, mut isave) = (0.0, 0, [0; 3]);
    loop {
        // SAFETY: v, x and isgn hold n elements each, isave 3, as dlacn2 reads and writes.
        unsafe {
            dlacn2_(
                &ni,
                v.as_mut_ptr(),
                x.as_mut_ptr(),
                isgn.as_mut_ptr(),
                &mut est,
                &mut kase,
                isave.as_mut_ptr(),
            )
        };
        if kase == 0 {
            break;
        }
        // The LU is of Aᵀ: A·y = x is its transposed system (kase 1), Aᵀ·y = x its own.
        getrs_in_place(if kase == 1 { b'T' } else { b'N' }, lu, ipiv, &mut x);
    }
    (1.0 / est) / anorm
}

/// What a condition estimate starts from: the LU of `Aᵀ` (column major), its pivots and `‖A‖₁`.
#[derive(Clone)]
pub struct Factored {
    lu: Vec<f64>,
    ipiv: Vec<c_int>,
    anorm: f64,
}

/// The LU of `a` (its C-order copy factored as `Aᵀ`), its pivots and `‖A‖₁`: the input of the
/// condition-estimate cell.
pub fn lu_for_estimate(a: &Array2<f64>) -> Factored {
    let n = a.nrows();
    let mut lu = copy(a);
    let anorm = norm_of_transpose(n, &lu);
    let ipiv = getrf(n, &mut lu);
    Factored { lu, ipiv, anorm }
}

/// `dgecon` on the output of [`lu_for_estimate`].
pub fn estimate_gecon(f: &Factored) -> f64 {
    gecon(f.ipiv.len(), &f.lu, f.anorm)
}

/// `dlacn2` with `dgetrs` solves on the output of [`lu_for_estimate`].
pub fn estimate_lacn2(f: &Factored) -> f64 {
    lacn2_with_getrs(f.ipiv.len(), &f.lu, &f.ipiv, f.anorm)
}

/// `dgetrs` with `trans` on the n×n LU `lu` and its pivots, for one right-hand side `x`,
/// overwritten with the solution.
fn getrs_in_place(trans: u8, lu: &[f64], ipiv: &[c_int], x: &mut [f64]) {
    let n = ipiv.len();
    let (ni, mut info) = (int(n), 0);
    assert!(lu.len() == n * n && x.len() == n);
    // SAFETY: lu holds the n·n factors, ipiv n pivots, x n elements (one right-hand side),
    // all checked just above; the flag is a NUL-terminated one-letter string.
    unsafe {
        dgetrs_(
            ch(trans),
            &ni,
            &1,
            lu.as_ptr(),
            &ni,
            ipiv.as_ptr(),
            x.as_mut_ptr(),
            &ni,
            &mut info,
        )
    };
    assert_eq!(info, 0, "dgetrs");
}

/// `dgetrs` with `trans = 'T'` (the buffer holds the LU of `Aᵀ`) for one right-hand side.
fn solve_with(n: usize, lu: &[f64], ipiv: &[c_int], b: &Array1<f64>) -> Array1<f64> {
    assert_eq!(ipiv.len(), n);
    let mut x = b.to_vec();
    getrs_in_place(b'T', lu, ipiv, &mut x);
    Array1::from_vec(x)
}

/// `solve(a, b)`: `dgetrf`, `dgecon`, `dgetrs`.
pub fn solve(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let (ipiv, rcond) = lu_and_rcond(n, &mut buf);
    assert!(rcond > f64::EPSILON);
    solve_with(n, &buf, &ipiv, b)
}

/// `dgetrf` + `dgetrs` without the condition estimate: what numpy's `solve` (`dgesv`) does.
pub fn solve_unchecked(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let ipiv = getrf(n, &mut buf);
    solve_with(n, &buf, &ipiv, b)
}

/// `inv(a)`: `dgetrf`, `dgecon`, `dgetri` (workspace as `dgetri` asks for it).
pub fn inv(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let (ipiv, rcond) = lu_and_rcond(n, &mut buf);
    assert!(rcond > f64::EPSILON);
    invert_with(n, buf, &ipiv)
}

/// `dgetrf` + `dgetri` without the condition estimate: what a LAPACK user's inverse costs.
pub fn inv_unchecked(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let ipiv = getrf(n, &mut buf);
    invert_with(n, buf, &ipiv)
}

/// `dgetri` on the factors in `buf`, as the C-order `n × n` inverse.
fn invert_with(n: usize, mut buf: Vec<f64>, ipiv: &[c_int]) -> Array2<f64> {
    let (ni, mut info) = (int(n), 0);
    let mut query = 0.0;
    // SAFETY: a workspace query (lwork = -1) writes one element; then buf holds the n·n
    // factors, ipiv n pivots and work the lwork elements asked for.
    unsafe {
        dgetri_(
            &ni,
            buf.as_mut_ptr(),
            &ni,
            ipiv.as_ptr(),
            &mut query,
            &-1,
            &mut info,
        );
        let lwork = query as usize;
        let mut work = vec![0.0; lwork.max(1)];
        dgetri_(
            &ni,
            buf.as_mut_ptr(),
            &ni,
            ipiv.as_ptr(),
            work.as_mut_ptr(),
            &int(lwork.max(1)),
            &mut info,
        );
    }
    assert_eq!(info, 0, "dgetri");
    Array2::from_shape_vec((n, n), buf).expect("n·n")
}

/// `det(a)`: `dgetrf` and the product of the pivots (no overflow guard).
pub fn det(a: &Array2<f64>) -> f64 {
    let n = a.nrows();
    let mut buf = copy(a);
    let ipiv = getrf(n, &mut buf);
    let mut d = 1.0;
    for i in 0..n {
        d *= buf[i * n + i];
        if ipiv[i] != int(i + 1) {
            d = -d;
        }
    }
    d
}

/// `cholesky(a)`: `dpotrf` of the lower triangle (the upper one of the C-order buffer read as
/// column major), the other triangle zeroed.
pub fn cholesky(a: &Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let (ni, mut info) = (int(n), 0);
    // SAFETY: buf holds n·n elements, lda = n.
    unsafe { dpotrf_(ch(b'U'), &ni, buf.as_mut_ptr(), &ni, &mut info) };
    assert_eq!(info, 0, "dpotrf");
    for i in 0..n {
        buf[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    Array2::from_shape_vec((n, n), buf).expect("n·n")
}

/// `eigvalsh(a)`: `dsyev` with `jobz = 'N'` (the lower triangle of `a`).
pub fn eigvalsh(a: &Array2<f64>) -> Array1<f64> {
    let n = a.nrows();
    let mut buf = copy(a);
    let (ni, mut info) = (int(n), 0);
    let mut w = vec![0.0; n];
    let mut query = 0.0;
    // SAFETY: a workspace query, then buf n·n, w n and work the lwork elements asked for.
    unsafe {
        let (jobz, uplo) = (ch(b'N'), ch(b'U'));
        dsyev_(
            jobz,
            uplo,
            &ni,
            buf.as_mut_ptr(),
            &ni,
            w.as_mut_ptr(),
            &mut query,
            &-1,
            &mut info,
        );
        let lwork = (query as usize).max(1);
        let mut work = vec![0.0; lwork];
        dsyev_(
            jobz,
            uplo,
            &ni,
            buf.as_mut_ptr(),
            &ni,
            w.as_mut_ptr(),
            work.as_mut_ptr(),
            &int(lwork),
            &mut info,
        );
    }
    assert_eq!(info, 0, "dsyev");
    Array1::from_vec(w)
}

/// `dgesdd` of the `n × n` C-order `a` (its transpose, which has the same singular values);
/// `jobz = 'N'` (values only) or `'S'` (and the thin vectors). Returns `(s, u, vt)` of the
/// buffer's matrix.
fn gesdd(a: &Array2<f64>, jobz: u8) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = a.nrows();
    let mut buf = copy(a);
    let (ni, mut info) = (int(n), 0);
    let vectors = jobz == b'S';
    let mut s = vec![0.0; n];
    let (mut u, mut vt) = if vectors {
        (vec![0.0; n * n], vec![0.0; n * n])
    } else {
        (vec![0.0; 1], vec![0.0; 1])
    };
    let ld = if vectors { ni } else { 1 };
    let mut iwork = vec![0; 8 * n];
    let mut query = 0.0;
    // SAFETY: a workspace query, then buf n·n, s n, u and vt n·n (or 1 with jobz = 'N', ld 1),
    // iwork 8n and work the lwork elements asked for.
    unsafe {
        let j = ch(jobz);
        let (bp, sp, up, vp, ip) = (
            buf.as_mut_ptr(),
            s.as_mut_ptr(),
            u.as_mut_ptr(),
            vt.as_mut_ptr(),
            iwork.as_mut_ptr(),
        );
        dgesdd_(
            j, &ni, &ni, bp, &ni, sp, up, &ld, vp, &ld, &mut query, &-1, ip, &mut info,
        );
        let lwork = (query as usize).max(1);
        let mut work = vec![0.0; lwork];
        let wp = work.as_mut_ptr();
        dgesdd_(
            j,
            &ni,
            &ni,
            bp,
            &ni,
            sp,
            up,
            &ld,
            vp,
            &ld,
            wp,
            &int(lwork),
            ip,
            &mut info,
        );
    }
    assert_eq!(info, 0, "dgesdd");
    (s, u, vt)
}

/// `singular_values(a)`: `dgesdd` with `jobz = 'N'`.
pub fn singular_values(a: &Array2<f64>) -> Array1<f64> {
    Array1::from_vec(gesdd(a, b'N').0)
}

/// `lstsq(a, b)` for a square `a` of full rank: `dgesdd` (`jobz = 'S'`), then
/// `x = V·diag(1/s)·Uᵀ·b` by two matrix-vector products.
pub fn lstsq(a: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let n = a.nrows();
    // The buffer holds Aᵀ = U·S·Vᵀ (column major), so A = V·S·Uᵀ and A⁺ = U·S⁻¹·Vᵀ:
    // x = U·(S⁻¹·(Vᵀ·b)), with U and Vᵀ of the buffer's matrix.
    let (s, u, vt) = gesdd(a, b'S');
    let u = Array2::from_shape_vec((n, n), u).expect("n·n"); // C order: holds Uᵀ
    let vt = Array2::from_shape_vec((n, n), vt).expect("n·n"); // C order: holds V
    let y = vt.t().dot(b);
    let y = Array1::from_shape_fn(n, |i| y[i] / s[i]);
    u.t().dot(&y)
}
