//! The issue-13 workload: 2001 f64 products of 256×256 under parlinalg's defaults, timed.
//! Prints `wall_s=<seconds> threads_last=<BLAS threads of the last call>`; run several copies
//! at once to see the machine-wide budget (`benches/processes_budget.sh` does).
//!
//! ```text
//! cargo run --release --example processes_budget [-- <products>]
//! ```

use std::time::Instant;

use parlinalg::ndarray::Array2;

fn main() -> parlinalg::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2001);
    let a = Array2::<f64>::from_shape_fn((256, 256), |(i, j)| ((i * 7 + j * 3) % 17) as f64 / 17.0);
    let b = a.t().to_owned();
    let start = Instant::now();
    let mut acc = 0.0;
    for _ in 0..n {
        let c = parlinalg::matmul(&a, &b)?;
        acc += c[[0, 0]];
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "wall_s={wall:.3} threads_last={} checksum={acc:.3}",
        parlinalg::threads::blas_threads()
    );
    Ok(())
}
