//! How far apart two CPUs are: the one-way latency of a cache line passed back and forth between
//! a thread pinned to each. On a VM the host may place two vCPUs in one core complex (tens of
//! ns) or in two (well above 100 ns), and move them while a program runs; two BLAS threads
//! sharing one product's packed panels feel it, separate processes do not. The processes
//! benchmark records it beside each round (`benches/processes_budget.sh`).
//!
//! ```text
//! cargo run --release --example core_to_core [-- <cpu a> <cpu b>]   # default: the first two
//! ```
//! Prints `core_to_core_ns=<median one-way latency of 5 runs>`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const TRIPS: u64 = 100_000;

fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it for cpu < 1024
    // (checked), and sched_setaffinity(0, ..) pins the calling thread.
    unsafe {
        let mut set = std::mem::zeroed::<libc::cpu_set_t>();
        if cpu >= 1024 {
            return Err(std::io::Error::other("cpu number beyond cpu_set_t"));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One-way latency in ns over `TRIPS` round trips between `a` and `b`.
fn once(a: usize, b: usize) -> std::io::Result<f64> {
    let flag = Arc::new(AtomicU64::new(0));
    let other = {
        let flag = flag.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            pin(b)?;
            for i in 0..TRIPS {
                while flag.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                flag.store(2 * i + 2, Ordering::Release);
            }
            Ok(())
        })
    };
    pin(a)?;
    let start = Instant::now();
    for i in 0..TRIPS {
        flag.store(2 * i + 1, Ordering::Release);
        while flag.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / (2 * TRIPS) as f64;
    other.join().expect("the other thread does not panic")?;
    Ok(ns)
}

fn main() -> std::io::Result<()> {
    let cpus: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().map_err(std::io::Error::other))
        .collect::<std::io::Result<_>>()?;
    let (a, b) = match cpus[..] {
        [a, b] => (a, b),
        [] => (0, 1),
        _ => return Err(std::io::Error::other("give two cpu numbers or none")),
    };
    let mut runs: Vec<f64> = (0..5).map(|_| once(a, b)).collect::<std::io::Result<_>>()?;
    runs.sort_by(f64::total_cmp);
    println!("core_to_core_ns={:.0}", runs[2]);
    Ok(())
}
