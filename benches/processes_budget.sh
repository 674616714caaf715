#!/usr/bin/env bash
# Issue 13's measurement: 4 concurrent copies of examples/processes_budget.rs (2001 f64
# products of 256×256 each) under parlinalg's defaults (the machine-wide budget on), with the
# budget off, and with BLAS threads fixed at 1; and one copy alone, under the defaults and at
# 1 thread. The cases alternate in rotating order, round after round; the table gives the
# median wall time of each case (for 4 copies: until the last one ends) and the ratios.
#
#   benches/processes_budget.sh [rounds=5] [products=2001]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
products=${2:-2001}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --example processes_budget >&2
bin="$target/release/examples/processes_budget"
trap 'rm -rf "/dev/shm/parlinalg-$(id -u)/bench$$"' EXIT

now() { date +%s.%N; }
run() { # copies, env assignments...
  local copies=$1; shift
  local t0; t0=$(now)
  for _ in $(seq "$copies"); do env "$@" "$bin" "$products" >/dev/null & done
  wait
  echo "$(now) - $t0" | bc -l
}
cases=("4 default" "4 budget_off" "4 fixed_1" "1 default" "1 fixed_1")
envs() {
  case $1 in
    default) echo "PARLINALG_BUDGET_GROUP=bench$$" ;;
    budget_off) echo "PARLINALG_BUDGET=off" ;;
    fixed_1) echo "PARLINALG_BLAS_THREADS=1" ;;
  esac
}
declare -A times
for r in $(seq "$rounds"); do
  for i in $(seq 0 4); do
    c=${cases[$(( (i + r) % 5 ))]}
    set -- $c
    t=$(run "$1" $(envs "$2"))
    times[$c]="${times[$c]:-} $t"
    printf 'round %d: %-14s %.3f s\n' "$r" "$c" "$t" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A med
echo "| case | median wall (s) | all rounds (s) |"
echo "|---|---|---|"
for c in "${cases[@]}"; do
  med[$c]=$(echo "${times[$c]}" | median)
  printf '| %s | %.3f | %s |\n' "$c" "${med[$c]}" "$(echo "${times[$c]}" | xargs printf '%.2f ')"
done
ratio() { echo "${med[$1]} / ${med[$2]}" | bc -l; }
printf '\n4 copies, defaults / fixed 1 thread: %.3f (target ≤ 1.10)\n' "$(ratio '4 default' '4 fixed_1')"
printf '4 copies, budget off / fixed 1 thread: %.3f\n' "$(ratio '4 budget_off' '4 fixed_1')"
printf '1 copy, defaults / fixed 1 thread: %.3f (target ≤ 0.70)\n' "$(ratio '1 default' '1 fixed_1')"
