#!/usr/bin/env bash
# Quick start, command 2: the whole test suite (unit, integration, doc tests, and a build of
# the examples and benches).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
cargo test --all-targets
cargo test --doc
