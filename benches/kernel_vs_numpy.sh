#!/usr/bin/env bash
# parlinalg's matmul in a user's program against numpy's, f64, one BLAS thread, alternating
# rounds in one run (the machine's noise moves both alike): the figure behind "the right kernel in
# every program" in BENCHMARKS.md.
#
#   benches/kernel_vs_numpy.sh [n] [rounds]      # default 2048, 7
#
# Rows: the program as a user runs it (no variable set); started on Prescott with the switch
# forced (what a CPU OpenBLAS falls back on gets, shown on any x86-64 machine); started on
# Prescott with the switch off (the generic kernel itself); numpy (its own OpenBLAS, its own
# kernel pick). Prints each round, then medians and the ratios to numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2048}
rounds=${2:-7}
python=$(scripts/python-env.sh)
cargo build --quiet --release --example matmul_gflops
prog=target/release/examples/matmul_gflops
numpy() {
  OPENBLAS_NUM_THREADS=1 "$python" cli/src/report/numpy_matmul.py --sizes "$n" --dtype float64 --min-time 1
}
declare -A all
for r in $(seq 1 "$rounds"); do
  for row in default forced off numpy; do
    case $row in
      default) line=$(env -u OPENBLAS_CORETYPE "$prog" "$n" 1 5) ;;
      forced) line=$(OPENBLAS_CORETYPE=Prescott PARLINALG_KERNEL_SWITCH=force "$prog" "$n" 1 5) ;;
      off) line=$(OPENBLAS_CORETYPE=Prescott PARLINALG_KERNEL_SWITCH=off "$prog" "$n" 1 3) ;;
      numpy) line=$(numpy | tail -1) ;;
    esac
    echo "round $r $row $line"
    all[$row]+="$("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["gflops"])' "$line") "
  done
done
"$python" - "${all[default]}" "${all[forced]}" "${all[off]}" "${all[numpy]}" <<'PY'
import statistics, sys
names = ["no variable set", "Prescott, switch forced", "Prescott, switch off", "numpy"]
vals = [[float(v) for v in arg.split()] for arg in sys.argv[1:]]
np_med = statistics.median(vals[3])
print("| program | GFLOPS (median) | min..max | vs numpy (median of per-round ratios) |")
print("|---|---:|---:|---:|")
for name, v in zip(names, vals):
    ratios = [a / b for a, b in zip(v, vals[3])]
    print(f"| {name} | {statistics.median(v):.1f} | {min(v):.1f}..{max(v):.1f} | {statistics.median(ratios):.2f}x |")
PY
