#!/usr/bin/env bash
# Issue 13's measurement: 4 concurrent copies of examples/processes_budget.rs (2001 f64
# products of 256×256 each) under parlinalg's defaults (the machine-wide budget on), with the
# budget off, and with BLAS threads fixed at 1; and one copy alone, under the defaults and at
# 1 thread. The 4-copy cases alternate in rotating order, round after round, each round ending
# with the lone pair; the table gives the median wall time of each case (for 4 copies: until
# the last one ends) and the ratios, the lone ratio also by where the host placed the two
# vCPUs (examples/core_to_core.rs, before and after each pair).
#
#   benches/processes_budget.sh [rounds=5] [products=2001]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
products=${2:-2001}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --example processes_budget --example core_to_core >&2
bin="$target/release/examples/processes_budget"
probe="$target/release/examples/core_to_core"
trap 'rm -rf "/dev/shm/parlinalg-$(id -u)/bench$$"' EXIT

now() { date +%s.%N; }
run() { # copies, env assignments...
  local copies=$1; shift
  local t0; t0=$(now)
  for _ in $(seq "$copies"); do env "$@" "$bin" "$products" >/dev/null & done
  wait
  echo "$(now) - $t0" | bc -l
}
cases=("4 default" "4 budget_off" "4 fixed_1")
envs() {
  case $1 in
    default) echo "PARLINALG_BUDGET_GROUP=bench$$" ;;
    budget_off) echo "PARLINALG_BUDGET=off" ;;
    fixed_1) echo "PARLINALG_BLAS_THREADS=1" ;;
  esac
}
# One process alone, under the defaults and at 1 thread, back to back in alternating order,
# with the two vCPUs' distance measured before and after the pair: a host that places them
# in two core complexes (a cache line takes over 100 ns from one to the other, against tens
# of ns within one) slows two BLAS threads sharing one product, and may move them at any time.
far_ns=100
alone_pair() { # round
  local l0 l1 d f
  l0=$("$probe" | cut -d= -f2)
  if (( $1 % 2 )); then d=$(run 1 $(envs default)); f=$(run 1 $(envs fixed_1))
  else f=$(run 1 $(envs fixed_1)); d=$(run 1 $(envs default)); fi
  l1=$("$probe" | cut -d= -f2)
  local place=changed
  if (( l0 < far_ns && l1 < far_ns )); then place=near; elif (( l0 >= far_ns && l1 >= far_ns )); then place=far; fi
  printf 'round %d: 1 default %.3f s, 1 fixed_1 %.3f s, core to core %s → %s ns (%s)\n' "$1" "$d" "$f" "$l0" "$l1" "$place" >&2
  times["1 default"]="${times["1 default"]:-} $d"
  times["1 fixed_1"]="${times["1 fixed_1"]:-} $f"
  local q; q=$(echo "$d / $f" | bc -l)
  alone[$place]="${alone[$place]:-} $q"
  alone[all]="${alone[all]:-} $q"
}
declare -A times alone
for r in $(seq "$rounds"); do
  for i in 0 1 2; do
    c=${cases[$(( (i + r) % 3 ))]}
    set -- $c
    t=$(run "$1" $(envs "$2"))
    times[$c]="${times[$c]:-} $t"
    printf 'round %d: %-14s %.3f s\n' "$r" "$c" "$t" >&2
  done
  alone_pair "$r"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A med
echo "| case | median wall (s) | all rounds (s) |"
echo "|---|---|---|"
for c in "${cases[@]}" "1 default" "1 fixed_1"; do
  med[$c]=$(echo "${times[$c]}" | median)
  printf '| %s | %.3f | %s |\n' "$c" "${med[$c]}" "$(echo "${times[$c]}" | xargs printf '%.2f ')"
done
ratio() { echo "${med[$1]} / ${med[$2]}" | bc -l; }
printf '\n4 copies, defaults / fixed 1 thread: %.3f (target ≤ 1.10)\n' "$(ratio '4 default' '4 fixed_1')"
printf '4 copies, budget off / fixed 1 thread: %.3f\n' "$(ratio '4 budget_off' '4 fixed_1')"
printf '1 copy, defaults / fixed 1 thread: %.3f over all rounds (target ≤ 0.70)\n' "$(ratio '1 default' '1 fixed_1')"
printf '  median of the %d lone pairs'"'"' ratios: %.3f\n' "$(echo "${alone[all]}" | wc -w)" "$(echo "${alone[all]}" | median)"
for place in near far changed; do
  v=${alone[$place]:-}
  n=$(echo "$v" | wc -w)
  if (( n > 0 )); then
    printf '  rounds with the vCPUs %-7s (%d): median ratio %.3f, each %s\n' "$place" "$n" "$(echo "$v" | median)" "$(echo "$v" | xargs printf '%.2f ')"
  fi
done
