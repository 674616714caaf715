#!/usr/bin/env bash
# The OpenBLAS build matrix: parlinalg's correctness tests, built once here, run against each
# threading build (pthreads, OpenMP, serial) of the OpenBLAS of three Debian releases:
#
#   host     this machine's own release (Debian 12: 0.3.21), its three builds unpacked from
#            Debian's packages into the cache and put first on LD_LIBRARY_PATH;
#   trixie   Debian 13 (0.3.29), a minimal root filesystem made with debootstrap;
#   sid      Debian unstable (0.3.34 when written), the same way.
#
# The binaries run in each root filesystem under chroot (with /proc, /sys, /dev and this
# checkout mounted at the same paths), on that release's libraries. Which tests: the numpy
# reference cases (BLAS and LAPACK), the kernel switch, fork safety, the concurrency
# stress test (tests/concurrency_stress.rs), which fails on a single wrong element, and the
# same bits alone and beside other threads under a fixed count and deterministic mode
# (tests/threads_deterministic.rs, factorisations beside products included).
#
# Needs root (debootstrap, chroot, mount) and Debian's package registry, nothing else: the
# mirror is the one this machine's apt uses (or PARLINALG_MATRIX_MIRROR). Root filesystems are
# cached in PARLINALG_MATRIX_CACHE (default /var/cache/parlinalg-matrix) and reused; --refresh
# makes them anew. PARLINALG_MATRIX_RELEASES (default "host trixie sid") picks the releases.
#
# Usage: scripts/openblas-matrix.sh [--refresh] [--stress-seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf 'openblas-matrix: %s\n' "$*" >&2; }

refresh=0
stress_seconds=${PARLINALG_STRESS_SECONDS:-3}
while [ $# -gt 0 ]; do
  case "$1" in
    --refresh) refresh=1 ;;
    --stress-seconds) stress_seconds=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument $1"; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" -ne 0 ]; then
  say "needs root (debootstrap, chroot and mount); run it as root or with sudo"
  exit 1
fi
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
cache=${PARLINALG_MATRIX_CACHE:-/var/cache/parlinalg-matrix}
releases=${PARLINALG_MATRIX_RELEASES:-host trixie sid}
flavours="pthread openmp serial"
packages="libopenblas0-pthread libopenblas0-openmp libopenblas0-serial libgomp1"
mkdir -p "$cache"

# What the matrix needs on this machine.
need=""
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
command -v dpkg-architecture >/dev/null 2>&1 || need="$need dpkg-dev"
if [ -n "$need" ]; then
  say "installing$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
fi

# The Debian mirror this machine's apt uses.
mirror() {
  if [ -n "${PARLINALG_MATRIX_MIRROR:-}" ]; then
    echo "$PARLINALG_MATRIX_MIRROR"
    return
  fi
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  if [ -z "$m" ]; then
    say "no Debian mirror in this machine's apt sources: set PARLINALG_MATRIX_MIRROR"
    exit 1
  fi
  echo "$m"
}

# The test binaries, built once on this machine.
say "building the test binaries"
tests="blas_reference lapack_reference kernel_switch fork_safety concurrency_stress threads_deterministic"
test_args=()
for t in $tests; do test_args+=(--test "$t"); done
binaries=$(cargo test --no-run --message-format=json "${test_args[@]}" 2>/dev/null |
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"//; s/"$//')
declare -A binary
for b in $binaries; do
  name=$(basename "$b")
  binary[${name%-*}]=$b
done
for t in $tests; do
  [ -n "${binary[$t]:-}" ] || { say "no binary for $t"; exit 1; }
done

# A release's root: the host's packages unpacked, or a debootstrapped file system.
prepare() {
  local release=$1 root=$cache/$1
  if [ "$refresh" -eq 1 ]; then rm -rf "$root"; fi
  if [ -f "$root/.complete" ]; then return; fi
  rm -rf "$root" "$root.tmp"
  if [ "$release" = host ]; then
    mkdir -p "$root.tmp/debs"
    (cd "$root.tmp/debs" && apt-get download $packages >/dev/null 2>&1) ||
      { apt-get update -qq && (cd "$root.tmp/debs" && apt-get download $packages >/dev/null); }
    for d in "$root.tmp"/debs/*.deb; do dpkg -x "$d" "$root.tmp"; done
  else
    say "making a $release root file system (debootstrap, once)"
    debootstrap --variant=minbase --arch="$arch" --include="${packages// /,}" \
      "$release" "$root.tmp" "$(mirror)" >"$cache/$release.debootstrap.log" 2>&1 ||
      { say "debootstrap $release failed: see $cache/$release.debootstrap.log"; exit 1; }
    rm -rf "$root.tmp/var/cache/apt/archives"/*.deb
  fi
  mv "$root.tmp" "$root"
  touch "$root/.complete"
}

mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}
trap unmount_all EXIT

# Mounts what the binaries need inside a chroot: the kernel's file systems and this checkout
# (binaries, reference cases) at the same path.
enter() {
  local root=$1 d
  for d in proc sys dev "${repo#/}"; do
    mkdir -p "$root/$d"
    if [ "$d" = proc ]; then mount -t proc proc "$root/proc"; else mount --rbind "/$d" "$root/$d"; fi
    mounted+=("$root/$d")
  done
}

# Runs a test binary in one cell; prints its summary, returns its status.
run_cell() {
  local release=$1 flavour=$2 t=$3 root=$cache/$1 bin=${binary[$3]} libdir
  libdir=/usr/lib/$multiarch/openblas-$flavour
  local envs=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "PARLINALG_STRESS_SECONDS=$stress_seconds")
  for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    [ -n "${!v:-}" ] && envs+=("$v=${!v}")
  done
  local args=()
  [ "$t" = concurrency_stress ] || args=(--test-threads=2 -q)
  if [ "$release" = host ]; then
    env -i "${envs[@]}" LD_LIBRARY_PATH="$root$libdir" "$bin" "${args[@]}"
  else
    chroot "$root" env -i "${envs[@]}" LD_LIBRARY_PATH="$libdir" "$bin" "${args[@]}"
  fi
}

results=()
failed=0
for release in $releases; do
  prepare "$release"
  [ "$release" = host ] || enter "$cache/$release"
  for flavour in $flavours; do
    lib=$cache/$release/usr/lib/$multiarch/openblas-$flavour/libopenblas.so.0
    version=$(strings "$lib" 2>/dev/null | grep -o -m1 'OpenBLAS [0-9][0-9.]*' | head -n 1) || true
    version=${version:-OpenBLAS ?}
    for t in $tests; do
      log=$cache/logs/$release-$flavour-$t.log
      mkdir -p "$cache/logs"
      if run_cell "$release" "$flavour" "$t" >"$log" 2>&1; then
        status=ok
      else
        status=FAILED
        failed=$((failed + 1))
      fi
      summary=$(grep -E '^config |^test result|passed, ' "$log" | tr '\n' ';' | sed 's/;$//')
      results+=("$release | ${version#OpenBLAS } | $flavour | $t | $status | $summary")
      say "$release ${version#OpenBLAS } $flavour $t: $status"
      if [ "$status" = FAILED ]; then sed 's/^/    /' "$log" | tail -40 >&2; fi
    done
  done
  unmount_all
done

echo
echo "| release | OpenBLAS | build | tests | result | summary |"
echo "|---|---|---|---|---|---|"
for r in "${results[@]}"; do echo "| $r |"; done
echo
cells=$(( ${#results[@]} ))
echo "openblas-matrix: $((cells - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
