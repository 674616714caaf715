//! What taking and returning budget slots costs a call at OpenBLAS's threading threshold
//! (a 64×64×64 f64 product, the smallest it threads): the same loop of products with the
//! machine-wide budget on and off, in child processes that alternate, round after round
//! (`PARLINALG_BUDGET` is read once per process). Prints the median time per call of each and
//! the median of the per-round ratios.
//!
//! With `inv:N` as third argument the loop is of `inv` of an N×N matrix instead (a LAPACK
//! routine: its factorisation and inverse keep every core busy for the whole call, which is
//! where a thread of the budget waking beside them costs most).
//!
//! ```text
//! cargo run --release --example budget_cost [-- <rounds> <calls per round> [inv:N]]
//! cargo run --release --example budget_cost -- 9 12 inv:1000
//! ```

use std::process::Command;
use std::time::Instant;

use parlinalg::ndarray::Array2;

const CHILD: &str = "PARLINALG_BUDGET_COST_CHILD";

/// The median seconds per `inv` of an `n × n` matrix over `calls` calls (one warm-up).
fn inv_per_call(n: usize, calls: usize) -> parlinalg::Result<f64> {
    let a = Array2::<f64>::from_shape_fn((n, n), |(i, j)| {
        ((i * 7 + j * 3) % 11) as f64 / 11.0 + if i == j { 2.0 } else { 0.0 }
    });
    parlinalg::inv(&a)?;
    let mut per_call = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        std::hint::black_box(parlinalg::inv(&a)?);
        per_call.push(t.elapsed().as_secs_f64());
    }
    Ok(median(per_call))
}

fn child(calls: usize, workload: &Workload) -> parlinalg::Result<()> {
    if let Workload::Inv(n) = *workload {
        let t = inv_per_call(n, calls)?;
        let r = parlinalg::threads::report()?;
        println!(
            "{t:.6e} {} {}",
            r.budget.enabled,
            parlinalg::threads::blas_threads()
        );
        return Ok(());
    }
    let a = Array2::<f64>::from_shape_fn((64, 64), |(i, j)| ((i + 2 * j) % 7) as f64);
    let mut c = Array2::<f64>::zeros((64, 64));
    for _ in 0..calls / 10 {
        parlinalg::matmul_into(&a, &a, &mut c)?;
    }
    let mut per_call = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..calls / 10 {
            parlinalg::matmul_into(&a, &a, &mut c)?;
        }
        per_call.push(t.elapsed().as_secs_f64() / (calls / 10) as f64);
    }
    per_call.sort_by(f64::total_cmp);
    let r = parlinalg::threads::report()?;
    println!(
        "{:.6e} {} {}",
        per_call[per_call.len() / 2],
        r.budget.enabled,
        parlinalg::threads::blas_threads()
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What each child times.
enum Workload {
    /// 64×64×64 f64 products (OpenBLAS's threading threshold).
    Product,
    /// `inv` of an N×N f64 matrix.
    Inv(usize),
}

fn main() -> parlinalg::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    let calls: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let workload_arg = args.next();
    let workload = match workload_arg.as_deref().and_then(|w| w.strip_prefix("inv:")) {
        Some(n) => Workload::Inv(n.parse().expect("inv:N with a whole N")),
        None => Workload::Product,
    };
    if std::env::var_os(CHILD).is_some() {
        return child(calls, &workload);
    }
    let exe = std::env::current_exe().expect("own path");
    let run = |budget: &str| -> (f64, String) {
        let out = Command::new(&exe)
            .args([rounds.to_string(), calls.to_string()])
            .args(workload_arg.iter())
            .env(CHILD, "1")
            .env("PARLINALG_BUDGET", budget)
            .env(
                "PARLINALG_BUDGET_GROUP",
                format!("cost{}", std::process::id()),
            )
            .output()
            .expect("child runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let t = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("child printed {text:?}"));
        (t, text.trim().to_owned())
    };
    let (mut on, mut off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rounds {
        let ((a, sa), (b, sb)) = if r % 2 == 0 {
            (run("on"), run("off"))
        } else {
            let b = run("off");
            (run("on"), b)
        };
        eprintln!("round {r}: on {sa} | off {sb}");
        on.push(a);
        off.push(b);
        ratios.push(a / b);
    }
    let (on, off, ratio) = (median(on), median(off), median(ratios));
    let what = match workload {
        Workload::Product => "64x64x64 f64".to_owned(),
        Workload::Inv(n) => format!("inv {n}x{n} f64"),
    };
    println!(
        "{what}: budget on {:.2} µs/call, off {:.2} µs/call; on/off {ratio:.4} (median of \
         {rounds} rounds, {calls} calls each): cost {:+.2}%",
        on * 1e6,
        off * 1e6,
        (ratio - 1.0) * 100.0
    );
    let _ = std::fs::remove_dir_all(format!(
        "/dev/shm/parlinalg-{}/cost{}",
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() },
        std::process::id()
    ));
    Ok(())
}
