//! Minor page faults and time per product of `parlinalg::matmul` over a sweep of sizes (f64 and
//! f32), in one process: whether the heap is faulted in again on every threaded product (see
//! `src/openblas/heap.rs`). Run it with 2 BLAS threads to see the threaded path.
//!
//! ```text
//! PARLINALG_BLAS_THREADS=2 PARLINALG_BUDGET=off cargo run --release --example fault_sweep
//! ```

use parlinalg::ndarray::Array2;

fn minor_faults() -> i64 {
    // SAFETY: getrusage fills the zeroed struct it is given; RUSAGE_SELF is always valid.
    let mut usage = unsafe { std::mem::zeroed::<libc::rusage>() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_minflt
}

/// (minor faults per product, ms per product) after 3 warm-up products.
fn sweep<T: parlinalg::Float>(n: usize) -> parlinalg::Result<(f64, f64)> {
    let a = Array2::<T>::from_shape_fn((n, n), |(i, j)| T::from((i + j) % 7).expect("small"));
    for _ in 0..3 {
        std::hint::black_box(parlinalg::matmul(&a, &a)?);
    }
    let reps = (2e9 / (2.0 * (n as f64).powi(3))).clamp(20.0, 400.0) as usize;
    let (faults, start) = (minor_faults(), std::time::Instant::now());
    for _ in 0..reps {
        std::hint::black_box(parlinalg::matmul(&a, &a)?);
    }
    let ms = start.elapsed().as_secs_f64() / reps as f64 * 1e3;
    Ok(((minor_faults() - faults) as f64 / reps as f64, ms))
}

fn main() -> parlinalg::Result<()> {
    println!("BLAS threads {}", parlinalg::threads::blas_threads());
    for n in [128, 192, 256, 320, 384, 512, 768, 1024] {
        let (faults, ms) = sweep::<f64>(n)?;
        println!("f64 {n}: {faults:.1} faults/product, {ms:.3} ms");
    }
    for n in [256, 362, 512] {
        let (faults, ms) = sweep::<f32>(n)?;
        println!("f32 {n}: {faults:.1} faults/product, {ms:.3} ms");
    }
    Ok(())
}
