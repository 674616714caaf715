//! The demonstration (interim): which OpenBLAS and kernel run, and matmul throughput of
//! parlinalg against numpy and ndarray's own `.dot`, measured in this run.
//!
//! ```text
//! cargo run --release --example report -- --help
//! ```
//!
//! Every figure is measured here, alternating parlinalg and numpy (A/B) over several rounds;
//! the table quotes medians and the median of the per-round ratios.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use parlinalg::ndarray::Array2;
use parlinalg::threads::{blas_threads, set_blas_threads};

const NUMPY_SCRIPT: &str = include_str!("../benches/numpy_matmul.py");

/// parlinalg's report: kernel, threads, and matmul throughput against numpy.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A shorter workload (sizes 256 and 1024, 2 rounds).
    #[arg(long)]
    quick: bool,
    /// Matrix sizes n (n×n times n×n, f64), comma separated.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=16384))]
    sizes: Option<Vec<u32>>,
    /// BLAS thread counts, comma separated (default: 1 and the cores this process may use).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=4096))]
    threads: Option<Vec<u32>>,
    /// A/B rounds per cell (parlinalg then numpy, repeated).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: Option<u32>,
    /// Skip the numpy comparison.
    #[arg(long)]
    no_numpy: bool,
    /// Python interpreter with numpy.
    #[arg(long, default_value = "python3")]
    python: String,
}

fn main() -> ExitCode {
    // Before anything else: re-executes once with OPENBLAS_CORETYPE set if OpenBLAS fell back to
    // a generic kernel (a benchmark on the wrong kernel measures nothing about threading).
    let selection = parlinalg::kernel::ensure_best_kernel();
    let args = Args::parse();
    match run(&args, &selection) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    args: &Args,
    selection: &parlinalg::kernel::KernelSelection,
) -> Result<(), Box<dyn std::error::Error>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sizes: Vec<usize> = match (&args.sizes, args.quick) {
        (Some(s), _) => s.iter().map(|&n| n as usize).collect(),
        (None, true) => vec![256, 1024],
        (None, false) => vec![256, 1024, 2048],
    };
    let mut threads: Vec<usize> = match &args.threads {
        Some(t) => t.iter().map(|&n| n as usize).collect(),
        None => vec![1, cores],
    };
    threads.dedup();
    let rounds = args.rounds.unwrap_or(if args.quick { 2 } else { 3 }) as usize;

    println!("# parlinalg report\n");
    println!("{selection}\n");
    println!("```text\n{}\n```\n", parlinalg::blas_library());
    println!(
        "Kernel check: {}\n",
        parlinalg::kernel::check_loaded_kernel()
    );
    println!("Cores this process may use: {cores}\n");

    let numpy = if args.no_numpy {
        None
    } else {
        probe_numpy(&args.python)
    };
    match &numpy {
        Some(info) => println!("numpy reference: {info}\n"),
        None if args.no_numpy => println!("numpy reference: skipped (--no-numpy)\n"),
        None => println!(
            "numpy reference: not found ({} with numpy); `pip install numpy` to compare\n",
            args.python
        ),
    }

    println!("## matmul throughput, f64, n×n · n×n (GFLOP/s, median of {rounds} A/B rounds)\n");
    println!("| n | BLAS threads | parlinalg | numpy | parlinalg / numpy | ndarray `.dot` |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let before = blas_threads();
    let cells = sizes.len() * threads.len();
    let mut done = 0;
    for &n in &sizes {
        let a = random_matrix(n, 1);
        let b = random_matrix(n, 2);
        for &t in &threads {
            done += 1;
            eprint!("\r[{done}/{cells}] n = {n}, {t} BLAS threads ...   ");
            set_blas_threads(t)?;
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            let mut ratios = Vec::new();
            for _ in 0..rounds {
                let g = gflops(n, time_median(|| drop(parlinalg::matmul(&a, &b))));
                ours.push(g);
                if numpy.is_some() {
                    if let Some(gn) = numpy_gflops(&args.python, n, t) {
                        theirs.push(gn);
                        ratios.push(g / gn);
                    }
                }
            }
            // ndarray's own product (matrixmultiply, no BLAS): what a plain `.dot` gives.
            let nd = (n <= 1024).then(|| gflops(n, time_median(|| drop(a.dot(&b)))));
            println!(
                "| {n} | {t} | {:.1} | {} | {} | {} |",
                median(&mut ours),
                fmt_opt(median_opt(&mut theirs), |g| format!("{g:.1}")),
                fmt_opt(median_opt(&mut ratios), |r| format!("{:.0}%", r * 100.0)),
                fmt_opt(nd, |g| format!("{g:.1}")),
            );
        }
    }
    eprintln!();
    set_blas_threads(before)?;
    println!(
        "\nparlinalg and numpy alternate in each round on the same machine; numpy runs its own \
         bundled OpenBLAS (kernel above). `ndarray .dot` is ndarray without a BLAS backend."
    );
    Ok(())
}

fn random_matrix(n: usize, seed: u64) -> Array2<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Array2::from_shape_simple_fn((n, n), || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    })
}

/// Median wall time of `f` over at least 3 calls and 0.3 s, after one warm-up call.
fn time_median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn gflops(n: usize, t: Duration) -> f64 {
    2.0 * (n as f64).powi(3) / t.as_secs_f64() / 1e9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_opt(v: &mut [f64]) -> Option<f64> {
    (!v.is_empty()).then(|| median(v))
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "—".to_owned(), f)
}

/// numpy's version and OpenBLAS kernel, or `None` when python3 or numpy is missing.
fn probe_numpy(python: &str) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", NUMPY_SCRIPT, "--sizes", "8", "--min-time", "0"])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let v: serde_json::Value = serde_json::from_str(line.lines().next()?).ok()?;
    Some(format!(
        "numpy {} with OpenBLAS {} on kernel {}",
        v["numpy"].as_str()?,
        v["openblas"].as_str()?,
        v["kernel"].as_str()?
    ))
}

/// numpy's median GFLOP/s for one size with `threads` BLAS threads, in a fresh process.
fn numpy_gflops(python: &str, n: usize, threads: usize) -> Option<f64> {
    let out = Command::new(python)
        .args([
            "-c",
            NUMPY_SCRIPT,
            "--sizes",
            &n.to_string(),
            "--min-time",
            "0.3",
        ])
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let v: serde_json::Value = serde_json::from_str(text.lines().next()?).ok()?;
    v["gflops"].as_f64()
}
