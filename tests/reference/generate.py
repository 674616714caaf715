#!/usr/bin/env python3
"""Generates parlinalg's reference cases with numpy, seeded, into this folder.

    python3 tests/reference/generate.py             # rewrites tests/reference/
    python3 tests/reference/generate.py --seed 7 --out /tmp/held-out
    PARLINALG_REFERENCE_DIR=/tmp/held-out cargo test --test blas_reference

Every case is a folder of `.npy` files: its inputs and its outputs (see README.md here for the
format). numpy computes every expected value in float64 or wider from the exact inputs and
rounds once to the case's dtype, so the reference is independent of the BLAS under test.

The tolerances are |got - want| <= atol + rtol * |want|, chosen from error bounds:
- products and dots of length k: the rounding error of a sum of k products is at most
  k * eps * sum|a_i b_i| (Higham, ch. 3); inputs are in [-1, 1), so with k <= 300 the bound
  is ~300 eps relative to the row norms: rtol 1e-3 / atol 1e-4 for f32 (eps 6e-8) and
  1e-9 / 1e-11 for f64 (eps 1.1e-16) leave a margin of ~50x over the bound.
- elementwise maps: parlinalg's kernels are within 4 ulp: rtol 1e-4 (f32), 1e-10 (f64).
- reductions of 1.4e5 elements in any summation order: n * eps * sum|x| bounds the error:
  rtol 1e-1 against sums that may cancel to near zero is loose on purpose for f32; the
  f64 bound is 1e-7.
- LAPACK: the systems are diagonally dominant (condition number below ~10), so backward
  stable routines are accurate to ~n * cond * eps: rtol 1e-3 (f32), 1e-7 (f64).
"""

import argparse
import json
import pathlib
import shutil

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

TOL = {
    "float32": {"blas": (1e-3, 1e-4), "dot": (1e-2, 1e-3), "map": (1e-4, 1e-5),
                "reduce": (1e-1, 1e-2), "lapack": (1e-3, 1e-4)},
    "float64": {"blas": (1e-9, 1e-11), "dot": (1e-8, 1e-10), "map": (1e-10, 1e-12),
                "reduce": (1e-7, 1e-9), "lapack": (1e-7, 1e-9)},
}
SHORT = {"float32": "f32", "float64": "f64"}


class Writer:
    def __init__(self, out: pathlib.Path, rng: np.random.Generator):
        self.out = out
        self.rng = rng
        self.cases = []

    def uniform(self, shape, dtype):
        return self.rng.uniform(-1.0, 1.0, size=shape).astype(dtype)

    def case(self, name, op, dtype, inputs, outputs, tol, note=""):
        folder = self.out / name
        folder.mkdir(parents=True)
        for key, value in {**inputs, **outputs}.items():
            np.save(folder / f"{key}.npy", np.asarray(value, dtype=dtype))
        rtol, atol = tol
        self.cases.append({
            "name": name, "op": op, "dtype": dtype,
            "inputs": list(inputs), "outputs": list(outputs),
            "rtol": rtol, "atol": atol, "note": note,
        })


def exact(x):
    """The inputs as float64 (f32 inputs are exact in f64), for a reference computed wider."""
    return np.asarray(x, dtype=np.float64)


def blas_cases(w: Writer, dtype: str):
    tol = TOL[dtype]
    sizes = [(1, 1, 1), (3, 5, 2), (7, 1, 9), (64, 64, 64), (127, 33, 65), (257, 129, 3),
             (129, 200, 131)]
    for m, k, n in sizes:
        a, b = w.uniform((m, k), dtype), w.uniform((k, n), dtype)
        w.case(f"matmul_{dtype}_{m}x{k}x{n}", "matmul", dtype, {"a": a, "b": b},
               {"expected": exact(a) @ exact(b)}, tol["blas"])
    a, b = w.uniform((45, 31), dtype), w.uniform((23, 45), dtype)
    w.case(f"matmul_at_bt_{dtype}", "matmul_transposed", dtype, {"a": a, "b": b},
           {"expected": exact(a).T @ exact(b).T}, tol["blas"], "C = a^T * b^T")
    a, b = np.zeros((4, 0)), np.zeros((0, 3))
    w.case(f"matmul_{dtype}_empty_inner", "matmul", dtype, {"a": a, "b": b},
           {"expected": np.zeros((4, 3))}, tol["blas"], "empty inner dimension: zeros")
    for n in [0, 1, 17, 1000, 20011]:
        x, y = w.uniform(n, dtype), w.uniform(n, dtype)
        w.case(f"dot_{dtype}_{n}", "dot", dtype, {"x": x, "y": y},
               {"expected": np.dot(exact(x), exact(y))}, tol["dot"])
    for m, k in [(333, 77), (1, 9), (65, 1)]:
        a, x = w.uniform((m, k), dtype), w.uniform(k, dtype)
        w.case(f"matvec_{dtype}_{m}x{k}", "matvec", dtype, {"a": a, "x": x},
               {"expected": exact(a) @ exact(x)}, tol["blas"])


def map_cases(w: Writer, dtype: str):
    tol = TOL[dtype]["map"]
    ops = {
        "exp": (np.exp, (-20.0, 20.0)),
        "tanh": (np.tanh, (-10.0, 10.0)),
        "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)), (-30.0, 30.0)),
        "ln": (np.log, (1e-6, 1e6)),
        "sqrt": (np.sqrt, (0.0, 1e6)),
    }
    with np.errstate(all="ignore"):
        for n in [10, 5003]:
            for op, (f, (lo, hi)) in ops.items():
                x = w.rng.uniform(lo, hi, size=n).astype(dtype)
                w.case(f"{op}_{dtype}_{n}", op, dtype, {"x": x}, {"expected": f(exact(x))}, tol)
        big = 89.0 if dtype == "float32" else 710.0
        x = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, big, -big * 1.2,
                      1e-30, -1e-30], dtype=dtype)
        w.case(f"exp_{dtype}_special", "exp", dtype, {"x": x}, {"expected": np.exp(exact(x))},
               tol, "inf, nan, overflow and underflow")
        x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0, 1e-30, 3e38, 2.5],
                     dtype=dtype)
        w.case(f"ln_{dtype}_special", "ln", dtype, {"x": x}, {"expected": np.log(exact(x))},
               tol, "log of 0, negatives, inf, nan")
        x = np.array([0.0, -0.0, -1.0, np.inf, np.nan, 4.0, 1e-30], dtype=dtype)
        w.case(f"sqrt_{dtype}_special", "sqrt", dtype, {"x": x},
               {"expected": np.sqrt(exact(x))}, tol, "sqrt of negatives, -0, inf, nan")


def binary_cases(w: Writer, dtype: str):
    tol = TOL[dtype]["map"]
    with np.errstate(all="ignore"):
        for op, f in [("add", np.add), ("mul", np.multiply), ("div", np.divide)]:
            a, b = w.uniform((301, 37), dtype), w.uniform(37, dtype)
            w.case(f"{op}_row_{dtype}", op, dtype, {"a": a, "b": b},
                   {"expected": f(exact(a), exact(b))}, tol, "b broadcast along rows")
        a, b = w.uniform((129, 65), dtype), w.uniform((129, 65), dtype)
        w.case(f"sub_{dtype}", "sub", dtype, {"a": a, "b": b},
               {"expected": exact(a) - exact(b)}, tol)
        a, b = w.uniform((3, 4, 5), dtype), w.uniform((4, 1), dtype)
        w.case(f"mul_3d_{dtype}", "mul", dtype, {"a": a, "b": b},
               {"expected": exact(a) * exact(b)}, tol, "b (4, 1) broadcast against (3, 4, 5)")


def reduction_cases(w: Writer, dtype: str):
    tol = TOL[dtype]
    x = w.uniform(140001, dtype)
    wide = exact(x)
    w.case(f"reduce_{dtype}", "reductions", dtype, {"x": x},
           {"sum": wide.sum(), "mean": wide.mean(), "max": wide.max(), "min": wide.min(),
            "norm2": np.sqrt((wide * wide).sum())}, tol["reduce"],
           "outputs: sum, mean, max, min, norm2 of x")
    x = w.uniform(1000, dtype)
    x[317] = np.nan
    w.case(f"sum_{dtype}_nan", "sum", dtype, {"x": x}, {"expected": np.sum(exact(x))},
           tol["map"], "NaN propagates")
    w.case(f"max_{dtype}_nan", "max", dtype, {"x": x}, {"expected": np.max(exact(x))},
           tol["map"], "NaN propagates, as numpy.max")
    x = w.uniform((33, 17), dtype)
    w.case(f"norm2_{dtype}_2d", "norm2", dtype, {"x": x},
           {"expected": np.linalg.norm(exact(x))}, tol["map"], "Frobenius norm of a 2-D array")
    x = w.uniform(129, dtype)
    w.case(f"mean_{dtype}_odd", "mean", dtype, {"x": x}, {"expected": exact(x).mean()},
           tol["map"])


def dominant(w: Writer, n: int, dtype: str):
    """A random n x n matrix made diagonally dominant: nonsingular, condition number < ~10."""
    a = w.rng.uniform(-1.0, 1.0, size=(n, n))
    a += np.diag(np.abs(a).sum(axis=1) + 1.0)
    return a.astype(dtype)


def spd(w: Writer, n: int, dtype: str):
    m = w.rng.uniform(-1.0, 1.0, size=(n, n))
    return (m @ m.T + n * np.eye(n)).astype(dtype)


def lapack_cases(w: Writer, dtype: str):
    tol = TOL[dtype]["lapack"]
    s = SHORT[dtype]
    for n in [1, 7, 60]:
        a, b = dominant(w, n, dtype), w.uniform(n, dtype)
        w.case(f"solve_{n}_{s}", "solve", dtype, {"a": a, "b": b},
               {"expected": np.linalg.solve(exact(a), exact(b))}, tol)
    a, b = dominant(w, 60, dtype), w.uniform((60, 4), dtype)
    w.case(f"solve_multi_{s}", "solve", dtype, {"a": a, "b": b},
           {"expected": np.linalg.solve(exact(a), exact(b))}, tol, "4 right-hand sides")
    for n in [3, 33]:
        a = dominant(w, n, dtype)
        w.case(f"inv_{n}_{s}", "inv", dtype, {"a": a}, {"expected": np.linalg.inv(exact(a))},
               tol)
    a = dominant(w, 8, dtype) / 4
    w.case(f"det_{s}", "det", dtype, {"a": a}, {"expected": np.linalg.det(exact(a))}, tol)
    for n in [5, 40]:
        a = spd(w, n, dtype)
        w.case(f"cholesky_{n}_{s}", "cholesky_lower", dtype, {"a": a},
               {"expected": np.linalg.cholesky(exact(a))}, tol)
        w.case(f"eigh_{n}_{s}", "eigvalsh", dtype, {"a": a},
               {"expected": np.linalg.eigvalsh(exact(a))}, tol, "ascending eigenvalues")
    for m, n in [(50, 20), (9, 31)]:
        a = w.uniform((m, n), dtype)
        w.case(f"svd_{m}x{n}_{s}", "singular_values", dtype, {"a": a},
               {"expected": np.linalg.svd(exact(a), compute_uv=False)}, tol, "descending")
    for m, n in [(80, 30), (12, 25)]:
        a, b = w.uniform((m, n), dtype), w.uniform(m, dtype)
        x = np.linalg.lstsq(exact(a), exact(b), rcond=None)[0]
        shape = "tall" if m > n else "wide: the minimum-norm solution"
        w.case(f"lstsq_{m}x{n}_{s}", "lstsq", dtype, {"a": a, "b": b}, {"expected": x}, tol,
               shape)
    a = w.uniform((6, 6), dtype)
    a[:, 4] = a[:, 1]
    w.case(f"solve_singular_{s}", "solve_must_fail", dtype,
           {"a": a, "b": w.uniform(6, dtype)}, {}, tol,
           "singular: must return an error, not a wrong answer or a panic")
    a = np.zeros((4, 4), dtype=dtype)
    a[0, 0] = 1.0
    w.case(f"inv_singular_{s}", "inv_must_fail", dtype, {"a": a}, {}, tol,
           "rank 1: must return an error")
    a = spd(w, 5, dtype)
    a[3, 3] = -5.0
    w.case(f"cholesky_not_spd_{s}", "cholesky_must_fail", dtype, {"a": a}, {}, tol,
           "not positive definite: must return an error")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--out", type=pathlib.Path, default=HERE)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_dir() and any(old.glob("*.npy")):
            shutil.rmtree(old)
    w = Writer(out, np.random.default_rng(args.seed))
    for dtype in ["float32", "float64"]:
        blas_cases(w, dtype)
        map_cases(w, dtype)
        binary_cases(w, dtype)
        reduction_cases(w, dtype)
        lapack_cases(w, dtype)
    manifest = {"generator": f"numpy {np.__version__}", "seed": args.seed, "cases": w.cases}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(w.cases)} cases in {out} (numpy {np.__version__}, seed {args.seed})")


if __name__ == "__main__":
    main()
