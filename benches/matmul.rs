//! `parlinalg::matmul` / `matmul_into` against a direct `cblas_?gemm` on the same buffers,
//! f32 and f64, n = 4 … 2048, with 1 and 2 BLAS threads (set explicitly before each group).
//!
//! ```text
//! cargo bench --bench matmul                 # everything (~10 min on 2 cores)
//! cargo bench --bench matmul -- 'f64/t1'     # a filter
//! ```
//! The direct calls go through `cblas-sys`, an independent declaration of the same symbols.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use parlinalg::ndarray::Array2;
use support::{matrix, DirectGemm};

mod support;

const SIZES: &[usize] = &[4, 16, 64, 256, 1024, 2048];

fn bench_type<T: DirectGemm>(c: &mut Criterion, name: &str) {
    for threads in [1usize, 2] {
        parlinalg::threads::set_blas_threads(threads).expect("valid thread count");
        let mut group = c.benchmark_group(format!("{name}/t{threads}"));
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(2));
        for &n in SIZES {
            if n >= 256 {
                group.sampling_mode(SamplingMode::Flat).sample_size(10);
            } else {
                group.sampling_mode(SamplingMode::Auto).sample_size(50);
            }
            group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
            let a = matrix::<T>(n, 1);
            let b = matrix::<T>(n, 2);
            let (sa, sb) = (a.as_slice().unwrap(), b.as_slice().unwrap());
            group.bench_with_input(BenchmarkId::new("parlinalg_matmul", n), &n, |bench, _| {
                bench.iter(|| parlinalg::matmul(&a, &b).unwrap())
            });
            group.bench_with_input(
                BenchmarkId::new("cblas_fresh_output", n),
                &n,
                |bench, &n| {
                    bench.iter(|| {
                        let mut out = vec![T::zero(); n * n];
                        T::gemm(n, sa, sb, &mut out);
                        out
                    })
                },
            );
            let mut out = Array2::<T>::zeros((n, n));
            group.bench_with_input(
                BenchmarkId::new("parlinalg_matmul_into", n),
                &n,
                |bench, _| bench.iter(|| parlinalg::matmul_into(&a, &b, &mut out).unwrap()),
            );
            let mut raw = vec![T::zero(); n * n];
            group.bench_with_input(
                BenchmarkId::new("cblas_same_buffers", n),
                &n,
                |bench, &n| bench.iter(|| T::gemm(n, sa, sb, &mut raw)),
            );
        }
        group.finish();
    }
}

/// A batch of 2,000 products of 64×64 (65 MB of results) into a fresh stack and into a reused
/// one: what faulting in the fresh result's pages costs.
fn bench_batch_into(c: &mut Criterion) {
    parlinalg::threads::set_blas_threads_auto().expect("auto");
    let (batch, n) = (2000, 64);
    let mut group = c.benchmark_group(format!("batch{batch}x{n}"));
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10);
    let a = parlinalg::ndarray::Array3::from_shape_fn((batch, n, n), |(b, i, j)| {
        ((b + 3 * i + 7 * j) % 13) as f64 - 6.0
    });
    group.bench_function("matmul_batch", |bench| {
        bench.iter(|| parlinalg::matmul_batch(&a, &a).unwrap())
    });
    let mut out = parlinalg::ndarray::Array3::<f64>::zeros((batch, n, n));
    group.bench_function("matmul_batch_into", |bench| {
        bench.iter(|| parlinalg::matmul_batch_into(&a, &a, &mut out, None).unwrap())
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_type::<f64>(c, "f64");
    bench_type::<f32>(c, "f32");
    bench_batch_into(c);
}

fn main() {
    // Benchmarks on a generic fallback kernel measure nothing: say which one runs.
    eprintln!("OpenBLAS kernel: {}", parlinalg::kernel::kernel_selection());
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
