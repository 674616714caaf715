//! Elementwise maths and reductions on 10⁷ elements, on explicit rayon pools, with the
//! machine's yardsticks: a STREAM-like triad, the fastest read of one array, and the cheapest
//! fresh array.
//!
//! ```text
//! cargo bench --bench elementwise                       # 1 and 2 threads, n = 10^7
//! PARLINALG_BENCH_THREADS=2 PARLINALG_BENCH_N=1000000 cargo bench --bench elementwise -- exp
//! ```
//!
//! Bench ids are `ew/<op>_<form>_<dtype>/t<threads>` (form: `new` array, `into` a
//! preallocated output, `red` for reductions); `benches/compare.py` reads criterion's medians
//! and sets them beside `benches/numpy_elementwise.py`.

use std::hint::black_box;

mod support;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parlinalg::ndarray::Array1;
use parlinalg::Float;
use rayon::prelude::*;

fn env_usize_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| s.trim().parse().expect("a list of positive integers"))
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// An array of `n` elements from `f`, allocated as numpy allocates its data: arrays of 4 MiB
/// and more ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`), so that inputs and
/// outputs of both sides sit on the same kind of pages (4 KiB pages alone make a memory-bound
/// single-thread `sum` ~30% slower here: the prefetchers stop at every page boundary).
fn numpy_like<T: Float>(n: usize, f: impl FnMut() -> T) -> Array1<T> {
    let mut v = huge_page_vec::<T>(n);
    v.extend(std::iter::repeat_with(f).take(n));
    Array1::from_vec(v)
}

/// An empty vector with room for `n` elements, advised to use huge pages from 4 MiB as numpy
/// does (and as parlinalg's own outputs are).
fn huge_page_vec<T>(n: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let bytes = n * std::mem::size_of::<T>();
    if bytes >= 4 << 20 {
        const HUGE: usize = 2 << 20;
        let base = v.as_mut_ptr() as usize;
        let start = base.next_multiple_of(HUGE);
        let end = (base + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: [start, end) lies inside the allocation of `v` (its capacity); the advice
            // changes only how the pages will be faulted in.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v
}

/// Seeded inputs in [-1, 1) (as the numpy script), and |x| + 0.5 for ln and sqrt.
fn inputs<T: Float>(n: usize, seed: u64) -> (Array1<T>, Array1<T>, Array1<T>) {
    let mut uniform = support::uniform(seed);
    let mut next = || T::from(uniform()).unwrap();
    let x = numpy_like(n, &mut next);
    let y = numpy_like(n, &mut next);
    let mut xs = x.iter();
    let pos = numpy_like(n, || xs.next().unwrap().abs() + T::from(0.5).unwrap());
    (x, y, pos)
}

fn bench_type<T: Float>(c: &mut Criterion, dtype: &str, n: usize, threads: &[usize]) {
    let (x, y, pos) = inputs::<T>(n, 20261124);
    let mut out = numpy_like(n, T::zero);
    let mut g = c.benchmark_group("ew");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(n as u64));
    for &t in threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .expect("a pool");
        let id = |name: &str| BenchmarkId::new(format!("{name}_{dtype}"), format!("t{t}"));
        type Unary<T> = fn(&Array1<T>) -> Array1<T>;
        type UnaryInto<T> = fn(&Array1<T>, &mut Array1<T>) -> parlinalg::Result<()>;
        type Case<'a, T> = (&'a str, Unary<T>, UnaryInto<T>, &'a Array1<T>);
        let unary: [Case<'_, T>; 5] = [
            ("exp", parlinalg::exp, parlinalg::exp_into, &x),
            ("ln", parlinalg::ln, parlinalg::ln_into, &pos),
            ("sqrt", parlinalg::sqrt, parlinalg::sqrt_into, &pos),
            ("tanh", parlinalg::tanh, parlinalg::tanh_into, &x),
            ("sigmoid", parlinalg::sigmoid, parlinalg::sigmoid_into, &x),
        ];
        for (name, f, f_into, arg) in unary {
            g.bench_function(id(&format!("{name}_new")), |b| {
                pool.install(|| b.iter(|| f(black_box(arg))))
            });
            g.bench_function(id(&format!("{name}_into")), |b| {
                pool.install(|| b.iter(|| f_into(black_box(arg), &mut out).unwrap()))
            });
        }
        type Bin<T> = fn(&Array1<T>, &Array1<T>) -> parlinalg::Result<Array1<T>>;
        type BinInto<T> = fn(&Array1<T>, &Array1<T>, &mut Array1<T>) -> parlinalg::Result<()>;
        let binary: [(&str, Bin<T>, BinInto<T>); 4] = [
            ("add", parlinalg::add, parlinalg::add_into),
            ("sub", parlinalg::sub, parlinalg::sub_into),
            ("mul", parlinalg::mul, parlinalg::mul_into),
            ("div", parlinalg::div, parlinalg::div_into),
        ];
        for (name, f, f_into) in binary {
            g.bench_function(id(&format!("{name}_new")), |b| {
                pool.install(|| b.iter(|| f(black_box(&x), black_box(&y)).unwrap()))
            });
            g.bench_function(id(&format!("{name}_into")), |b| {
                pool.install(|| b.iter(|| f_into(black_box(&x), black_box(&y), &mut out).unwrap()))
            });
        }
        type Red<T> = fn(&Array1<T>) -> parlinalg::Result<T>;
        let reductions: [(&str, Red<T>); 3] = [
            ("sum", parlinalg::sum),
            ("max", parlinalg::max),
            ("norm2", parlinalg::norm2),
        ];
        for (name, f) in reductions {
            g.bench_function(id(&format!("{name}_red")), |b| {
                pool.install(|| b.iter(|| f(black_box(&x)).unwrap()))
            });
        }
        // STREAM triad a = b + s·c on preallocated, already touched arrays: the bandwidth the
        // `out=` forms are measured against (24 bytes per element, as STREAM counts).
        let chunk = n.div_ceil(4 * t).max(4096);
        let s = T::from(3.0).unwrap();
        g.bench_function(id("triad_into"), |b| {
            pool.install(|| {
                b.iter(|| {
                    let (xs, ys) = (x.as_slice().unwrap(), y.as_slice().unwrap());
                    out.as_slice_mut()
                        .unwrap()
                        .par_chunks_mut(chunk)
                        .enumerate()
                        .for_each(|(i, o)| {
                            let r = i * chunk..i * chunk + o.len();
                            for ((d, &p), &q) in o.iter_mut().zip(&xs[r.clone()]).zip(&ys[r]) {
                                *d = p + s * q;
                            }
                        })
                })
            })
        });
        // Two more yardsticks, the floors under the targets. `read_red`: a plain read of x (an
        // unordered sum into 32 lanes, no tree), as fast as a reduction can read it. `fresh_new`:
        // the cheapest new array made from x (a copy of x into a fresh, huge-page-advised buffer,
        // each huge page written by one thread, then freed, as the new-array forms are).
        let read_chunk = n.div_ceil(4 * t).max(4096);
        g.bench_function(id("read_red"), |b| {
            pool.install(|| {
                b.iter(|| {
                    x.as_slice()
                        .unwrap()
                        .par_chunks(read_chunk)
                        .map(|c| {
                            let mut acc = [T::zero(); 32];
                            let mut it = c.chunks_exact(32);
                            for v in &mut it {
                                for (a, &e) in acc.iter_mut().zip(v) {
                                    *a = *a + e;
                                }
                            }
                            it.remainder()
                                .iter()
                                .chain(&acc)
                                .fold(T::zero(), |s, &a| s + a)
                        })
                        .reduce(T::zero, |a, b| a + b)
                })
            })
        });
        let page_chunk = (2 << 20) / std::mem::size_of::<T>();
        g.bench_function(id("fresh_new"), |b| {
            pool.install(|| {
                b.iter(|| {
                    let mut v = huge_page_vec::<T>(n);
                    let src = x.as_slice().unwrap();
                    v.spare_capacity_mut()
                        .par_chunks_mut(page_chunk)
                        .enumerate()
                        .for_each(|(i, c)| {
                            for (e, &s) in c.iter_mut().zip(&src[i * page_chunk..]) {
                                e.write(s);
                            }
                        });
                    // SAFETY: every element of the capacity was written just above.
                    unsafe { v.set_len(n) };
                    v
                })
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    // `cargo test --all-targets` runs each bench once without `--bench`: a small n keeps that
    // smoke test fast.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_n = if measuring { 10_000_000 } else { 100_000 };
    let n = env_usize_list("PARLINALG_BENCH_N", &[default_n])[0];
    let threads = env_usize_list("PARLINALG_BENCH_THREADS", &[1, 2]);
    eprintln!(
        "n = {n}, threads {threads:?}, SIMD level {:?}",
        parlinalg::simd_level()
    );
    bench_type::<f32>(c, "f32", n, &threads);
    bench_type::<f64>(c, "f64", n, &threads);
}

criterion_group!(elementwise, benches);
criterion_main!(elementwise);
