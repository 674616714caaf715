//! What a user's program gets from `parlinalg::matmul`: the OpenBLAS kernel it runs (after
//! parlinalg's load-time kernel check and switch) and the median throughput of an n×n f64
//! product on a fixed number of BLAS threads. One JSON line on stdout.
//!
//! ```sh
//! cargo run --release --example matmul_gflops -- 2048 1 5     # n, BLAS threads, calls
//! OPENBLAS_CORETYPE=Prescott PARLINALG_KERNEL_SWITCH=force \
//!     cargo run --release --example matmul_gflops             # start on Prescott, switch
//! ```
//! `benches/kernel_vs_numpy.sh` runs it beside numpy, alternating.

use std::time::Instant;

use parlinalg::ndarray::Array2;

fn arg(i: usize, default: usize) -> Result<usize, String> {
    std::env::args().nth(i).map_or(Ok(default), |s| {
        s.parse().map_err(|e| format!("argument {i} ({s:?}): {e}"))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, threads, calls) = (arg(1, 2048)?, arg(2, 1)?, arg(3, 5)?.max(1));
    let a = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5);
    let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 5 + j * 13) % 17) as f64 / 17.0 - 0.5);
    let mut seconds = Vec::with_capacity(calls);
    parlinalg::threads::with_blas_threads(threads, || -> parlinalg::Result<()> {
        std::hint::black_box(parlinalg::matmul(&a, &b)?); // warm-up: buffers, pages
        for _ in 0..calls {
            let t = Instant::now();
            std::hint::black_box(parlinalg::matmul(&a, &b)?);
            seconds.push(t.elapsed().as_secs_f64());
        }
        Ok(())
    })??;
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    eprintln!(
        "min {:.4} s, median {median:.4} s over {calls} calls",
        seconds[0]
    );
    let selection = parlinalg::kernel::kernel_selection();
    println!(
        "{{\"n\": {n}, \"threads\": {threads}, \"median_s\": {median:.6}, \"gflops\": {:.2}, \
         \"kernel\": \"{}\", \"selection\": \"{}\"}}",
        2.0 * (n as f64).powi(3) / median / 1e9,
        parlinalg::blas_library().corename,
        selection.to_string().replace('"', "'"),
    );
    Ok(())
}
