use parlinalg::ndarray::Array1;
use std::time::Instant;
fn main() {
    let n = 10_000_000usize;
    let x = Array1::from_shape_fn(n, |i| (i % 1000) as f64 / 1000.0);
    for _ in 0..12 {
        let t0 = Instant::now();
        let y = parlinalg::exp(&x);
        let dt = t0.elapsed();
        let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        let l: Vec<_> = s.lines().filter(|l| l.contains("AnonHuge")).collect();
        println!("{:?} {:?} {}", dt, l, y[5]);
    }
}
