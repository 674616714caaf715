#!/usr/bin/env python3
"""numpy's throughput on the ops of benches/elementwise.rs, same sizes (the outside reference).

Usage: python3 benches/numpy_elementwise.py [--n 10000000] [--repeats 15] [--json out.json]

Prints ns per element (median of repeats) for the new-array form and the out= form, per dtype.
numpy runs these ops single-threaded (its own OpenBLAS is not involved). Inputs are uniform in
[-1, 1) (ln and sqrt get |x| + 0.5), seeded, as in the Rust bench.
"""
import argparse
import json
import statistics
import time

import numpy as np


def sigmoid(x, out=None):
    # 1 / (1 + exp(-x)), the reference's definition, in the fewest numpy passes.
    if out is None:
        out = np.negative(x)
    else:
        np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    np.reciprocal(out, out=out)
    return out


def timeit(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    n = args.n
    rng = np.random.default_rng(20261124)
    results = []
    for dtype in (np.float32, np.float64):
        x = rng.uniform(-1, 1, n).astype(dtype)
        y = rng.uniform(-1, 1, n).astype(dtype)
        pos = np.abs(x) + dtype(0.5)
        out = np.empty_like(x)
        unary = {
            "exp": (np.exp, x),
            "ln": (np.log, pos),
            "sqrt": (np.sqrt, pos),
            "tanh": (np.tanh, x),
            "sigmoid": (sigmoid, x),
        }
        for name, (f, arg) in unary.items():
            new = timeit(lambda: f(arg), args.repeats)
            into = timeit(lambda: f(arg, out=out), args.repeats)
            results.append((name, dtype.__name__, new, into))
        binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
        for name, f in binary.items():
            new = timeit(lambda: f(x, y), args.repeats)
            into = timeit(lambda: f(x, y, out=out), args.repeats)
            results.append((name, dtype.__name__, new, into))
        for name, f in {"sum": np.sum, "max": np.max, "norm2": np.linalg.norm}.items():
            t = timeit(lambda: f(x), args.repeats)
            results.append((name, dtype.__name__, t, None))
    print(f"numpy {np.__version__}, n = {n}, median of {args.repeats} (ns/element)")
    print(f"{'op':8} {'dtype':8} {'new':>8} {'out=':>8}")
    rows = []
    for name, dt, new, into in results:
        a = new / n * 1e9
        b = None if into is None else into / n * 1e9
        rows.append({"op": name, "dtype": dt, "new_ns": a, "out_ns": b})
        print(f"{name:8} {dt:8} {a:8.3f} {'' if b is None else f'{b:8.3f}'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"numpy": np.__version__, "n": n, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
