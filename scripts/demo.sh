#!/usr/bin/env bash
# Quick start, command 1: the demonstration on its built-in default workload.
# Extra arguments go to the report (try --help). numpy runs beside parlinalg: from python3 when
# it has numpy, else from a project-local virtual environment made on first use
# (scripts/python-env.sh); --no-numpy leaves Python out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
python_args=()
want_python=1
for arg in "$@"; do
  case "$arg" in
    --no-numpy | --no-python | --help | -h | --python | --python=*) want_python=0 ;;
  esac
done
if [ "$want_python" -eq 1 ]; then
  if python=$(scripts/python-env.sh); then
    python_args=(--python "$python")
  else
    python_args=(--no-numpy)
  fi
fi
exec cargo run --quiet --release -p parlinalg-cli --bin parlinalg -- report "${python_args[@]}" "$@"
