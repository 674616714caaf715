//! Shared helpers of the integration tests: the numpy reference cases, tolerant comparison,
//! a seeded generator, the catalogue of layouts every input is also passed through, and the
//! harness that runs a copy of the test binary as a child process ([`child`]).
#![allow(dead_code)] // each test file uses a different part

pub mod child;

use std::path::PathBuf;

use ndarray::{s, Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ShapeBuilder};
use ndarray_npy::ReadableElement;
use parlinalg::Float;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};

/// One case of `tests/reference/manifest.json`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub op: String,
    pub dtype: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub rtol: f64,
    pub atol: f64,
    pub note: String,
}

/// The reference folder: `PARLINALG_REFERENCE_DIR` when set (to run held-out cases from the
/// same generator), else `tests/reference`, made by `tests/reference/generate.py`.
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("PARLINALG_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference"),
    }
}

/// Every case whose `op` is one of `ops`. Panics (the test fails) when the folder or the
/// manifest is missing or there is no such case: a silent empty loop would prove nothing.
pub fn cases(ops: &[&str]) -> Vec<Case> {
    let dir = reference_dir();
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let found: Vec<Case> = manifest["cases"]
        .as_array()
        .expect("manifest has cases")
        .iter()
        .filter(|c| ops.contains(&c["op"].as_str().unwrap_or("")))
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            op: c["op"].as_str().unwrap().to_owned(),
            dtype: c["dtype"].as_str().unwrap().to_owned(),
            inputs: strings(&c["inputs"]),
            outputs: strings(&c["outputs"]),
            rtol: c["rtol"].as_f64().unwrap(),
            atol: c["atol"].as_f64().unwrap(),
            note: c["note"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no reference case for {ops:?} in {}",
        dir.display()
    );
    found
}

impl Case {
    /// Loads `file` (an input or output name) of this case.
    pub fn load<T: ReadableElement>(&self, file: &str) -> ArrayD<T> {
        let path = reference_dir().join(&self.name).join(format!("{file}.npy"));
        ndarray_npy::read_npy(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn load2<T: ReadableElement>(&self, file: &str) -> Array2<T> {
        self.load(file).into_dimensionality().expect("2-D")
    }

    pub fn load1<T: ReadableElement>(&self, file: &str) -> Array1<T> {
        self.load(file).into_dimensionality().expect("1-D")
    }

    pub fn load0<T: ReadableElement + Clone>(&self, file: &str) -> T {
        self.load::<T>(file).first().cloned().expect("a scalar")
    }

    pub fn is_f32(&self) -> bool {
        match self.dtype.as_str() {
            "float32" => true,
            "float64" => false,
            other => panic!("{}: unexpected dtype {other}", self.name),
        }
    }
}

/// The manifest's rule: |got − want| ≤ atol + rtol·|want|, NaN equal to NaN, infinities equal
/// by sign.
pub fn close(got: f64, want: f64, rtol: f64, atol: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= atol + rtol * want.abs()
}

/// Asserts every element is [`close`], naming the first that is not.
pub fn assert_all_close<T: Float>(
    got: ArrayViewD<'_, T>,
    want: ArrayViewD<'_, T>,
    rtol: f64,
    atol: f64,
    context: &str,
) {
    assert_eq!(got.shape(), want.shape(), "{context}: shapes differ");
    for ((idx, g), w) in got.indexed_iter().zip(want.iter()) {
        let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
        assert!(
            close(g, w, rtol, atol),
            "{context}: at {idx:?} got {g:e}, want {w:e} (rtol {rtol:e}, atol {atol:e})"
        );
    }
}

/// A seeded generator (rand's `SmallRng`), so every run of a test sees the same inputs.
pub struct Rng(SmallRng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(SmallRng::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.random()
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random_range(-1.0..1.0)
    }

    pub fn matrix<T: Float>(&mut self, rows: usize, cols: usize) -> Array2<T> {
        Array2::from_shape_simple_fn((rows, cols), || T::from(self.uniform()).unwrap())
    }

    pub fn vector<T: Float>(&mut self, len: usize) -> Array1<T> {
        Array1::from_shape_simple_fn(len, || T::from(self.uniform()).unwrap())
    }
}

/// One way of holding a matrix: the backing storage and how to view the logical matrix in it.
pub struct MatrixLayout<T> {
    pub name: &'static str,
    backing: Array2<T>,
    view: fn(&Array2<T>) -> ArrayView2<'_, T>,
}

impl<T> MatrixLayout<T> {
    pub fn view(&self) -> ArrayView2<'_, T> {
        (self.view)(&self.backing)
    }
}

/// The same logical matrix `a` in every layout the facade must handle: C and F order, the
/// transpose of stored data, sub-blocks of a larger array, row- and column-strided views of C
/// and F data, reversed rows and reversed columns.
pub fn matrix_layouts<T: Float>(a: &Array2<T>) -> Vec<MatrixLayout<T>> {
    let (r, c) = a.dim();
    let embed = |shape: (usize, usize), f_order: bool, slice: &dyn Fn(&mut Array2<T>)| {
        let mut big = if f_order {
            Array2::from_elem(shape.f(), T::nan())
        } else {
            Array2::from_elem(shape, T::nan())
        };
        slice(&mut big);
        big
    };
    let mut f_order = Array2::from_elem((r, c).f(), T::zero());
    f_order.assign(a);
    vec![
        MatrixLayout {
            name: "c_order",
            backing: a.clone(),
            view: |b| b.view(),
        },
        MatrixLayout {
            name: "f_order",
            backing: f_order,
            view: |b| b.view(),
        },
        MatrixLayout {
            name: "transpose_of_stored",
            backing: a.t().as_standard_layout().into_owned(),
            view: |b| b.t(),
        },
        MatrixLayout {
            name: "sub_block",
            backing: embed((r + 3, c + 5), false, &|big| {
                big.slice_mut(s![1..r + 1, 2..c + 2]).assign(a)
            }),
            view: |b| b.slice(s![1..b.nrows() - 2, 2..b.ncols() - 3]),
        },
        MatrixLayout {
            name: "row_strided_c",
            backing: embed((2 * r, c), false, &|big| {
                big.slice_mut(s![..;2, ..]).assign(a)
            }),
            view: |b| b.slice(s![..;2, ..]),
        },
        MatrixLayout {
            name: "col_strided_c",
            backing: embed((r, 2 * c), false, &|big| {
                big.slice_mut(s![.., ..;2]).assign(a)
            }),
            view: |b| b.slice(s![.., ..;2]),
        },
        MatrixLayout {
            name: "col_strided_f",
            backing: embed((r, 2 * c), true, &|big| {
                big.slice_mut(s![.., ..;2]).assign(a)
            }),
            view: |b| b.slice(s![.., ..;2]),
        },
        MatrixLayout {
            name: "both_strided",
            backing: embed((2 * r, 2 * c), false, &|big| {
                big.slice_mut(s![..;2, ..;2]).assign(a)
            }),
            view: |b| b.slice(s![..;2, ..;2]),
        },
        MatrixLayout {
            name: "reversed_rows",
            backing: a.slice(s![..;-1, ..]).to_owned(),
            view: |b| b.slice(s![..;-1, ..]),
        },
        MatrixLayout {
            name: "reversed_cols",
            backing: a.slice(s![.., ..;-1]).to_owned(),
            view: |b| b.slice(s![.., ..;-1]),
        },
    ]
}

/// One way of holding a vector.
pub struct VectorLayout<T> {
    pub name: &'static str,
    backing: Array1<T>,
    view: fn(&Array1<T>) -> ArrayView1<'_, T>,
}

impl<T> VectorLayout<T> {
    pub fn view(&self) -> ArrayView1<'_, T> {
        (self.view)(&self.backing)
    }
}

/// The same logical vector contiguous, with a step of 3, and reversed.
pub fn vector_layouts<T: Float>(x: &Array1<T>) -> Vec<VectorLayout<T>> {
    let mut strided = Array1::from_elem(3 * x.len(), T::nan());
    strided.slice_mut(s![..;3]).assign(x);
    vec![
        VectorLayout {
            name: "contiguous",
            backing: x.clone(),
            view: |b| b.view(),
        },
        VectorLayout {
            name: "strided",
            backing: strided,
            view: |b| b.slice(s![..;3]),
        },
        VectorLayout {
            name: "reversed",
            backing: x.slice(s![..;-1]).to_owned(),
            view: |b| b.slice(s![..;-1]),
        },
    ]
}

/// Naive `a · b` accumulated in f64, and the elementwise bound `Σ|a_ik|·|b_kj|` that scales
/// its rounding error.
pub fn naive_matmul<T: Float>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
) -> (Array2<f64>, Array2<f64>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut c = Array2::zeros((m, n));
    let mut bound = Array2::zeros((m, n));
    for i in 0..m {
        for j in 0..n {
            let (mut acc, mut abs) = (0.0f64, 0.0f64);
            for p in 0..k {
                let prod = a[[i, p]].to_f64().unwrap() * b[[p, j]].to_f64().unwrap();
                acc += prod;
                abs += prod.abs();
            }
            c[[i, j]] = acc;
            bound[[i, j]] = abs;
        }
    }
    (c, bound)
}

impl Rng {
    /// A uniformly random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        p.shuffle(&mut self.0);
        p
    }
}

/// Every variable that sets a thread count, cleared in child processes that test them.
pub const THREAD_VARS: &[&str] = &[
    "PARLINALG_BLAS_THREADS",
    "PARLINALG_OUTER_THREADS",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OMP_NUM_THREADS",
    "RAYON_NUM_THREADS",
];
