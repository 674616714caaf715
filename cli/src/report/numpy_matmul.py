#!/usr/bin/env python3
"""numpy's matmul throughput: the outside reference for parlinalg's matmul.

Prints one JSON object per size: {"n", "dtype", "threads", "median_s", "gflops", "kernel",
"numpy", "openblas"}. BLAS threads are fixed by OPENBLAS_NUM_THREADS before numpy loads (set
by the caller, or by --threads here). numpy is the reference only: parlinalg never needs it.

    OPENBLAS_NUM_THREADS=1 python3 cli/src/report/numpy_matmul.py --sizes 256,1024,2048 --dtype float64
"""
import argparse
import ctypes
import glob
import json
import os
import sys
import time


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="256,1024,2048")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads (sets OPENBLAS_NUM_THREADS before numpy loads)")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds of timed calls per size (at least 3 calls)")
    return p.parse_args()


def openblas_info(np):
    """numpy's OpenBLAS kernel and config, through threadpoolctl or its own symbols."""
    try:
        import threadpoolctl
        for lib in threadpoolctl.threadpool_info():
            if lib.get("internal_api") == "openblas":
                return lib.get("architecture"), lib.get("version")
    except ImportError:
        pass
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*.so*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "")):
            try:
                core = getattr(lib, f"{prefix}get_corename{suffix}")
                conf = getattr(lib, f"{prefix}get_config{suffix}")
            except AttributeError:
                continue
            core.restype = conf.restype = ctypes.c_char_p
            return core().decode(), conf().decode().split()[1]
    return "unknown", "unknown"


def main():
    args = parse()
    if args.threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np

    kernel, version = openblas_info(np)
    rng = np.random.default_rng(0)
    for n in (int(s) for s in args.sizes.split(",")):
        a = rng.standard_normal((n, n)).astype(args.dtype)
        b = rng.standard_normal((n, n)).astype(args.dtype)
        a @ b  # warm-up: threads started, pages touched
        times = []
        start = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - start < args.min_time:
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        times.sort()
        median = times[len(times) // 2]
        print(json.dumps({
            "n": n, "dtype": args.dtype,
            "threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0),
            "median_s": median, "gflops": 2.0 * n ** 3 / median / 1e9,
            "kernel": kernel, "openblas": version, "numpy": np.__version__,
        }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
