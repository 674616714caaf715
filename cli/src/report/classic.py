#!/usr/bin/env python3
"""The classic table in Python: serial vs threads vs processes.

g: np.exp over an array, repeated; f: a Python loop calling math.exp per element, repeated;
h: a batch of n x n matrix products (np.matmul), each worker taking a block of them. Processes
are started with multiprocessing's "spawn" (never fork with a live BLAS pool) and share the
arrays through a file in /dev/shm mapped with numpy.memmap. BLAS threads come from
OPENBLAS_NUM_THREADS, set before numpy loads (the parlinalg report runs this script once per
BLAS thread count). Every row is measured once per round, the rows of a round in a random
order; the parlinalg report runs one round per call (`--first-round R --rounds 1`) and
interleaves the calls of its BLAS counts, so that a round's rows lie close together in time.

A process row starts a pool of C workers and waits until each has started (its interpreter,
`import numpy`) and stands at a barrier: that start is measured apart (`start_s`), and the row's
time runs from then until the last worker has exited, as a program that keeps its pool would
see it. Prints one JSON object per line: first the versions, then one per row and round.

    OPENBLAS_NUM_THREADS=1 python3 classic.py --workers 2 --elements 10000000 --g-reps 20 --rounds 3
"""
import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def share(reps, workers, w):
    return reps // workers + (1 if w < reps % workers else 0)


def run_g(x, out, reps):
    y = None
    for _ in range(reps):
        y = np.exp(x)
    if y is not None:
        out[:] = y


def run_f(x, out, reps):
    xs = x.tolist()
    ys = None
    for _ in range(reps):
        ys = [math.exp(v) for v in xs]
    if ys is not None:
        out[:] = ys


def run_h(a, b, c, lo, hi):
    for i in range(lo, hi):
        np.matmul(a[i], b[i], out=c[i])


def blocks(batch, workers):
    lo = 0
    for w in range(workers):
        hi = lo + share(batch, workers, w)
        yield lo, hi
        lo = hi


def worker(spec):
    """A process's share, on arrays mapped from the shared file."""
    kind, path, shapes, w, workers, reps = spec
    arrays = open_arrays(path, shapes, "r+")
    if kind == "h":
        a, b, c = arrays
        lo, hi = list(blocks(a.shape[0], workers))[w]
        run_h(a, b, c, lo, hi)
    else:
        x, outs = arrays[0], arrays[1:]
        (run_g if kind == "g" else run_f)(x, outs[w], reps)
    for arr in arrays:
        arr.flush() if hasattr(arr, "flush") else None


def open_arrays(path, shapes, mode):
    arrays, offset = [], 0
    for shape in shapes:
        arr = np.memmap(path, dtype=np.float64, mode=mode, offset=offset, shape=tuple(shape))
        arrays.append(arr)
        offset += int(np.prod(shape)) * 8
    return arrays


def shared_file(shapes):
    size = sum(int(np.prod(s)) * 8 for s in shapes)
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    fd, path = tempfile.mkstemp(prefix="parlinalg-classic-", dir=folder)
    os.ftruncate(fd, size)
    os.close(fd)
    return path


# Seconds a process row waits for its workers to start before it gives up.
START_TIMEOUT = 300


def ready(barrier):
    """A pool worker's initializer: it has started and imported numpy; wait for the others."""
    barrier.wait(START_TIMEOUT)


def in_processes(ctx, kind, inputs, out_shapes, reps, c, check):
    """Runs `kind` in c spawned processes sharing one file: the inputs, then the outputs.
    Returns the row's costs: bytes, setup_s (writing the inputs), start_s (until every worker
    has started and waits at the barrier), compute_s (until the last result is back), exit_s
    (until every worker has exited); `check` gets the outputs before the file goes."""
    shapes = [x.shape for x in inputs] + out_shapes
    t = time.perf_counter()
    path = shared_file(shapes)
    try:
        arrays = open_arrays(path, shapes, "r+")
        for arr, x in zip(arrays, inputs):
            arr[:] = x
            arr.flush()
        cost = {"bytes": os.path.getsize(path), "setup_s": time.perf_counter() - t}
        t = time.perf_counter()
        barrier = ctx.Barrier(c + 1)
        pool = ctx.Pool(c, initializer=ready, initargs=(barrier,))
        try:
            barrier.wait(START_TIMEOUT)
            cost["start_s"] = time.perf_counter() - t
            t = time.perf_counter()
            specs = [(kind, path, shapes, w, c, share(reps, c, w)) for w in range(c)]
            pool.map(worker, specs, chunksize=1)
            cost["compute_s"] = time.perf_counter() - t
            t = time.perf_counter()
            pool.close()
            pool.join()
            cost["exit_s"] = time.perf_counter() - t
        finally:
            pool.terminate()
        check(arrays[len(inputs):])
        del arrays
    finally:
        os.unlink(path)
    return cost


def row(kind, how, outer, blas, r, seconds, extra=None):
    out = {"workload": kind, "how": how, "outer": outer, "blas": blas, "round": r,
           "seconds": seconds}
    out.update(extra or {})
    print(json.dumps(out), flush=True)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--elements", type=int, default=10_000_000)
    p.add_argument("--g-reps", type=int, default=20)
    p.add_argument("--f-reps", type=int, default=6)
    p.add_argument("--h-batch", type=int, default=8)
    p.add_argument("--h-size", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=1, help="rounds to measure")
    p.add_argument("--first-round", type=int, default=0,
                   help="the first round's number (it seeds the round's order)")
    p.add_argument("--only-h", action="store_true", help="only the matrix products")
    args = p.parse_args()
    blas = int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0)
    c = args.workers
    print(json.dumps({"python": sys.version.split()[0], "numpy": np.__version__}), flush=True)
    ctx = multiprocessing.get_context("spawn")
    rng = np.random.default_rng(0)

    # Every row as (workload, how, outer, run): run() measures it once and returns (seconds,
    # extra fields).
    rows = []
    kinds = [] if args.only_h else [("g", args.g_reps), ("f", args.f_reps)]
    for kind, reps in kinds:
        x = rng.uniform(-1.0, 1.0, args.elements)
        fn = run_g if kind == "g" else run_f
        out = np.empty_like(x)

        def threads(fn=fn, x=x, reps=reps):
            outs = [np.empty_like(x) for _ in range(c)]  # made per row: C outputs at once
            t = time.perf_counter()
            with ThreadPoolExecutor(c) as pool:
                list(pool.map(lambda w: fn(x, outs[w], share(reps, c, w)), range(c)))
            return time.perf_counter() - t

        def check_exp(outs, x=x, reps=reps):
            for w in range(c):
                if share(reps, c, w) and not np.allclose(outs[w][::9973], np.exp(x[::9973])):
                    raise SystemExit(f"process {w} wrote wrong results")

        def processes(kind=kind, x=x, reps=reps, check=check_exp):
            cost = in_processes(ctx, kind, [x], [x.shape] * c, reps, c, check)
            return cost["compute_s"] + cost["exit_s"], cost

        rows += [
            (kind, "serial", 1, lambda fn=fn, x=x, out=out, reps=reps:
                (timed(lambda: fn(x, out, reps)), None)),
            (kind, "threads", c, lambda threads=threads: (threads(), None)),
            (kind, "processes", c, processes),
        ]

    n, batch = args.h_size, args.h_batch
    a = rng.standard_normal((batch, n, n))
    b = rng.standard_normal((batch, n, n))
    a[0] @ b[0]  # BLAS threads started
    cc = np.empty_like(a)

    def h_threads():
        with ThreadPoolExecutor(c) as pool:
            list(pool.map(lambda lh: run_h(a, b, cc, *lh), blocks(batch, c)))

    def check_products(outs):
        if not np.allclose(outs[0][-1], a[-1] @ b[-1]):
            raise SystemExit("processes wrote wrong products")

    def h_processes():
        cost = in_processes(ctx, "h", [a, b], [a.shape], 0, c, check_products)
        return cost["compute_s"] + cost["exit_s"], cost

    rows += [
        ("h", "serial", 1, lambda: (timed(lambda: run_h(a, b, cc, 0, batch)), None)),
        ("h", "threads", c, lambda: (timed(h_threads), None)),
        ("h", "processes", c, h_processes),
    ]
    for r in range(args.first_round, args.first_round + args.rounds):
        order = list(rows)
        random.Random(1000 * r + blas).shuffle(order)
        for kind, how, outer, run in order:
            seconds, extra = run()
            row(kind, how, outer, blas, r, seconds, extra)


if __name__ == "__main__":
    sys.exit(main())
