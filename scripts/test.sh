#!/usr/bin/env bash
# Quick start, command 2: the whole test suite of the workspace (the library's unit,
# integration and doc tests, the `parlinalg` command's tests through its built binary, and a
# build of the examples and benches).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo test --workspace --all-targets
cargo test --workspace --doc
