#!/usr/bin/env bash
# Quick start, command 1: the demonstration on its built-in default workload.
# Extra arguments go to the report (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo run --quiet --release --example report -- "$@"
