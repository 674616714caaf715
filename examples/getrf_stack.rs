//! How much stack OpenBLAS's `?getrf` uses, measured: a thread with a 64 MiB stack paints the
//! part below its frame, runs `parlinalg::det` (whose `?getrf` runs in place on such a thread)
//! and finds the deepest byte the call changed. With more than one BLAS thread OpenBLAS takes
//! its parallel `?getrf` from 10 000 elements on (0.3.21), which keeps a `MAX_THREADS² × 128`
//! byte job array per level of its recursion on the stack (`src/lapack/stack.rs`); parlinalg
//! gives it at most one thread per 10 000 elements, so it is parallel from 20 000 (n = 142)
//! on, and smaller sizes measure the serial `?getrf`.
//!
//! ```text
//! cargo run --release --example getrf_stack [-- <threads> <n>...]
//! cargo run --release --example getrf_stack -- 2 64 100 150 257 1000 3000
//! ```

use std::hint::black_box;

/// Bytes painted below the measuring frame (the thread has 64 MiB).
const PAINTED: usize = 60 << 20;
const PAINT: u8 = 0xA5;

/// Paints `PAINTED` bytes below the current frame, runs `f`, and returns how deep below the
/// frame the stack was written.
#[inline(never)]
fn deepest_use(f: impl FnOnce()) -> usize {
    let marker = 0u8;
    let top = std::ptr::addr_of!(marker) as usize - 4096;
    let bottom = top - PAINTED;
    // SAFETY: [bottom, top) lies inside this thread's own 64 MiB stack, below the live frames
    // (4 KiB under this frame's locals); nothing else uses that memory until `f` runs, and
    // volatile writes keep the compiler from dropping them.
    unsafe {
        for a in (bottom..top).step_by(64) {
            std::ptr::write_volatile(a as *mut u8, PAINT);
        }
    }
    f();
    // SAFETY: reads of the same range, which is still this thread's stack.
    let first_changed = (bottom..top)
        .step_by(64)
        .find(|&a| unsafe { std::ptr::read_volatile(a as *const u8) } != PAINT)
        .unwrap_or(top);
    top - first_changed
}

fn main() -> parlinalg::Result<()> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let sizes: Vec<usize> = args.filter_map(|s| s.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![64, 100, 150, 257, 500, 1000, 2000, 3000]
    } else {
        sizes
    };
    parlinalg::threads::set_blas_threads(threads)?;
    let lib = parlinalg::blas_library();
    println!(
        "{} ({}), {} BLAS threads",
        lib.config,
        parlinalg::kernel::kernel_selection(),
        threads
    );
    println!("| n | stack used by det (getrf) |");
    println!("|---:|---:|");
    for n in sizes {
        let a = parlinalg::ndarray::Array2::<f64>::from_shape_fn((n, n), |(i, j)| {
            ((i * 31 + j * 17) % 97) as f64 / 97.0 - 0.5 + if i == j { 2.0 } else { 0.0 }
        });
        let used = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || deepest_use(|| drop(black_box(parlinalg::det(&a)))))
            .expect("a thread with a 64 MiB stack")
            .join()
            .expect("the measuring thread");
        println!("| {n} | {:.2} MiB |", used as f64 / (1 << 20) as f64);
    }
    Ok(())
}
