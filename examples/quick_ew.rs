use parlinalg::ndarray::Array1;
use std::time::Instant;
fn med(mut v: Vec<f64>) -> f64 { v.sort_by(|a,b| a.partial_cmp(b).unwrap()); v[v.len()/2] }
fn main() {
    let n = 10_000_000usize;
    let threads: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let x64 = Array1::from_shape_fn(n, |i| ((i * 7919) % 20000) as f64 / 10000.0 - 1.0);
    let y64 = x64.mapv(|v| v * 0.5 + 0.1);
    let x32 = x64.mapv(|v| v as f32);
    let mut out64 = Array1::<f64>::zeros(n);
    pool.install(|| {
        macro_rules! t { ($name:expr, $e:expr) => {{
            let mut ts = vec![];
            for _ in 0..11 { let t0 = Instant::now(); let r = $e; std::hint::black_box(&r); drop(r); ts.push(t0.elapsed().as_secs_f64()); }
            println!("{:24} {:8.3} ns/elem", $name, med(ts) / n as f64 * 1e9);
        }}}
        t!("exp f64 new", parlinalg::exp(&x64));
        t!("exp f32 new", parlinalg::exp(&x32));
        t!("ln f64 new", parlinalg::ln(&y64.mapv(f64::abs)));
        t!("tanh f64 new", parlinalg::tanh(&x64));
        t!("tanh f32 new", parlinalg::tanh(&x32));
        t!("sigmoid f64 new", parlinalg::sigmoid(&x64));
        t!("exp f64 into", parlinalg::exp_into(&x64, &mut out64).unwrap());
        t!("add f64 new", parlinalg::add(&x64, &y64).unwrap());
        t!("add f64 into", parlinalg::add_into(&x64, &y64, &mut out64).unwrap());
        t!("triad f64 naive", { for ((o, a), b) in out64.iter_mut().zip(&x64).zip(&y64) { *o = a + 3.0 * b; } });
    });
}
