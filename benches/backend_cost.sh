#!/usr/bin/env bash
# A/B of examples/concurrent_products between two builds of it (say the commit before the
# per-build backends and now), on one OpenBLAS build: alternating A B A B for ROUNDS rounds,
# each a fresh process reporting its own median; prints every line, then the median of each
# side per workload. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the runs.
#
# Usage: benches/backend_cost.sh BIN_A BIN_B LIBDIR [ROUNDS]
#   BIN_A, BIN_B  concurrent_products binaries (cargo build --release --example concurrent_products)
#   LIBDIR        the folder of the libopenblas.so.0 to load (e.g. .../openblas-openmp)
set -euo pipefail
a=$1 b=$2 lib=$3 rounds=${4:-5}
workloads=("batch 128 64 5" "batch 512 4 5" "threads 256 100 5" "threads 64 4000 5")
for w in "${workloads[@]}"; do
  for ((r = 0; r < rounds; r++)); do
    for side in A B; do
      bin=$a; [ "$side" = B ] && bin=$b
      line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$lib" "$bin" $w)
      echo "$side $line"
    done
  done
done | tee /dev/stderr | python3 -c '
import re, statistics, sys
runs = {}
for line in sys.stdin:
    side, mode, n, count = line.split()[:4]
    count = count.rstrip(":")
    t = float(re.search(r"median ([0-9.]+) s", line).group(1))
    runs.setdefault((mode, n, count), {}).setdefault(side, []).append(t)
for key, sides in runs.items():
    a, b = statistics.median(sides["A"]), statistics.median(sides["B"])
    print(" ".join(key) + f": A median {a:.4f} s, B median {b:.4f} s, A/B {a / b:.2f}")
'
