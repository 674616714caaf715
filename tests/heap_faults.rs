//! A loop of threaded products does not page-fault its memory in again on every call.
//!
//! OpenBLAS's threaded product `malloc`s a job table on every call; with a result about as large
//! (f64 256×256), glibc's default thresholds hand the heap's top back to the kernel whenever the
//! result is freed, and the next call faults it in again (over 100 faults per product without
//! parlinalg's priming of the thresholds, none with it). The count is the kernel's, not a
//! timing: the child counts its minor faults over 200 products.
//!
//! A test with its own `main` (`harness = false`): the products run on the main thread, in
//! glibc's main heap, as in a user's program (libtest would run them in a thread of its own,
//! whose heap glibc trims by other rules).

#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use common::child::TestChild;

const CHILD_VAR: &str = "PARLINALG_TEST_HEAP_CHILD";
const PRODUCTS: u64 = 200;

fn minor_faults() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage = unsafe { std::mem::zeroed::<libc::rusage>() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_minflt as u64
}

fn main() {
    if std::env::var_os(CHILD_VAR).is_some() {
        child();
    } else {
        threaded_products_do_not_fault_their_memory_in_again_every_call();
        println!("heap_faults: ok");
    }
}

/// In the child: products of 256×256 at 2 BLAS threads; prints the threads the calls ran and
/// the minor faults over the products after a warm-up.
fn child() {
    let a = parlinalg::ndarray::Array2::<f64>::from_shape_fn((256, 256), |(i, j)| {
        ((i * 7 + j * 3) % 17) as f64
    });
    let mut check = 0.0;
    for _ in 0..5 {
        check += parlinalg::matmul(&a, &a).unwrap()[[0, 0]];
    }
    let before = minor_faults();
    for _ in 0..PRODUCTS {
        check += parlinalg::matmul(&a, &a).unwrap()[[1, 1]];
    }
    let faults = minor_faults() - before;
    println!(
        "CHILD-RESULT {}",
        serde_json::json!({
            "threads": parlinalg::threads::blas_threads(),
            "faults": faults,
            "check": check,
        })
    );
}

fn threaded_products_do_not_fault_their_memory_in_again_every_call() {
    if parlinalg::threads::Cores::detect().count < 2 {
        eprintln!("skipped, not passed: one usable core, so OpenBLAS never threads");
        return;
    }
    let r = TestChild::main()
        .remove(&[
            "MALLOC_TRIM_THRESHOLD_",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TOP_PAD_",
        ])
        .env(CHILD_VAR, "1")
        .env("PARLINALG_BLAS_THREADS", "2")
        .env("PARLINALG_BUDGET", "off")
        .result();
    let field = |name: &str| -> u64 {
        r[name]
            .as_u64()
            .unwrap_or_else(|| panic!("no {name} in {r}"))
    };
    assert_eq!(field("threads"), 2, "the products must run threaded: {r}");
    // A 256×256 f64 result is 128 pages: faulting it in again each call gives over 100 per
    // product; a steady heap gives about none (a few for the pool's own stacks and buffers).
    let per_product = field("faults") as f64 / PRODUCTS as f64;
    assert!(
        per_product < 10.0,
        "{per_product:.1} minor faults per threaded product ({r}): the heap is handed back \
         and faulted in again on every call"
    );
}
