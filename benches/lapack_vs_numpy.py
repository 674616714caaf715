#!/usr/bin/env python3
"""parlinalg's LAPACK routines against the direct LAPACK calls they are built on and against
numpy (its own OpenBLAS), measured in one run, rounds alternating between the two processes.

Usage (from the project root; numpy and threadpoolctl, never a dependency of the library or
its tests):
    python3 benches/lapack_vs_numpy.py [--rounds 3] [--only solve/t1] [--out table.md]
        [--numpy-python /usr/bin/python3]

Each round runs `cargo bench --bench lapack -- --ratios <cell>` (parlinalg and the direct calls
interleaved in one process: the median of per-round ratios) and then the same routine in
numpy, in a process of its own (so that numpy's BLAS threads, which spin a while after each
call, never run beside the Rust bench), on a matrix of the same kind and size, with numpy's
BLAS limited to the same thread count (threadpoolctl). The table gives medians over rounds:
times, parlinalg / direct and parlinalg / numpy.

`--numpy-python` picks the interpreter whose numpy is measured: pip's numpy brings its own
OpenBLAS (a newer release, its own kernel choice); Debian's `python3-numpy` (`/usr/bin/python3`
after `apt-get install python3-numpy python3-threadpoolctl`) runs on the system OpenBLAS that
parlinalg uses, and is started with `OPENBLAS_CORETYPE` set to the kernel parlinalg switched
to, so that both run the same library and kernel.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The cells of benches/lapack.rs (routine, sizes).
CASES = [
    ("solve", [100, 500, 1000, 2000]),
    ("inv", [100, 500, 1000, 2000]),
    ("det", [100, 500, 1000, 2000]),
    ("cholesky", [100, 500, 1000, 2000]),
    ("eigvalsh", [100, 500, 1000]),
    ("singular_values", [100, 500, 1000]),
    ("lstsq", [100, 500]),
]


def inputs(op, n):
    rng = np.random.default_rng(1)
    if op in ("cholesky", "eigvalsh"):
        m = rng.uniform(-0.5, 0.5, (n, n))
        a = m @ m.T / n + np.eye(n)
    else:
        a = rng.uniform(-0.5, 0.5, (n, n)) + np.eye(n)
    b = rng.uniform(-1, 1, n)
    return a, b


def numpy_call(op, a, b):
    la = np.linalg
    return {
        "solve": lambda: la.solve(a, b),
        "inv": lambda: la.inv(a),
        "det": lambda: la.det(a),
        "cholesky": lambda: la.cholesky(a),
        "eigvalsh": lambda: la.eigvalsh(a),
        "singular_values": lambda: la.svd(a, compute_uv=False),
        "lstsq": lambda: la.lstsq(a, b, rcond=None),
    }[op]


def numpy_time(op, n, threads, rounds=9):
    """Median seconds per call over `rounds` batches of at least ~20 ms."""
    a, b = inputs(op, n)
    f = numpy_call(op, a, b)
    with threadpool_limits(limits=threads, user_api="blas"):
        t = time.perf_counter()
        f()
        once = max(time.perf_counter() - t, 1e-9)
        batch = max(1, int(0.02 / once))
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(batch):
                f()
            times.append((time.perf_counter() - t) / batch)
    return statistics.median(times)


ROW = re.compile(r"^\| (\w+) \| (\d+) \| (\d+) \| ([\d.]+) (µs|ms) \| ([\d.]+) (µs|ms) \| ([\d.]+) \|$")


def seconds(v, unit):
    return float(v) * (1e-6 if unit == "µs" else 1e-3)


def numpy_in_child(python, op, n, threads, coretype):
    """numpy_time in a fresh process of `python` (this file, --numpy-cell)."""
    env = dict(os.environ)
    env.pop("OPENBLAS_L2_SIZE", None)
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run(
        [python, os.path.abspath(__file__), "--numpy-cell", op, str(n), str(threads)],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()
    return float(out[0]), " ".join(out[1:])


def rust_cell(cell, rounds):
    cmd = ["cargo", "bench", "-q", "--bench", "lapack", "--", "--ratios", cell, "--rounds", str(rounds)]
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    kernel = next((l for l in out.splitlines() if l.startswith("OpenBLAS kernel")), "?")
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m:
            return kernel, seconds(m[4], m[5]), seconds(m[6], m[7]), float(m[8])
    raise SystemExit(f"no row for {cell} in:\n{out}")


def show(s):
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--numpy-cell":
        op, n, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        t = numpy_time(op, n, threads)
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        desc = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} ({i.get('threading_layer')})"
            for i in info
        )
        print(t, f"numpy {np.__version__}: {desc}")
        return
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default=None, help="a prefix of routine/tT/n, as the bench's --ratios")
    p.add_argument("--out", default=None)
    p.add_argument("--numpy-python", default=sys.executable)
    args = p.parse_args()
    system = args.numpy_python != sys.executable
    rows = []
    kernel, numpy_desc = "?", "?"
    for threads in (1, 2):
        for op, sizes in CASES:
            for n in sizes:
                cell = f"{op}/t{threads}/{n}"
                if args.only and not (cell == args.only or cell.startswith(args.only + "/")):
                    continue
                ours, direct, vs_direct, vs_numpy, numpy = [], [], [], [], []
                for _ in range(args.rounds):
                    kernel, o, d, r = rust_cell(cell, 11)
                    # The kernel parlinalg runs ("OpenBLAS kernel: Cooperlake, switched ..."),
                    # for numpy on the system OpenBLAS.
                    core = kernel.split(":", 1)[1].split(",")[0].strip() if system else None
                    nt, numpy_desc = numpy_in_child(args.numpy_python, op, n, threads, core)
                    ours.append(o)
                    direct.append(d)
                    vs_direct.append(r)
                    numpy.append(nt)
                    vs_numpy.append(o / nt)
                med = statistics.median
                row = (f"| {op} | {n} | {threads} | {show(med(ours))} | {show(med(direct))} | "
                       f"{show(med(numpy))} | {med(vs_direct):.2f} | {med(vs_numpy):.2f} |")
                print(row, file=sys.stderr, flush=True)
                rows.append(row)
    lines = [kernel, numpy_desc + (f" (OPENBLAS_CORETYPE={core})" if system and rows else "")]
    lines += [
        "",
        f"| routine | n | BLAS threads | parlinalg | direct LAPACK | numpy | parlinalg / direct | parlinalg / numpy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
