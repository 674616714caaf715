#!/usr/bin/env bash
# Prints the python interpreter the report should use for its numpy comparison, making a
# project-local virtual environment (.venv-numpy/, ignored by git) with the pinned numpy and
# threadpoolctl of scripts/requirements-numpy.txt when python3 has no numpy. Says what it did in
# one line on stderr. Prints nothing (and exits 1) when no interpreter with numpy can be had,
# after saying exactly what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'parlinalg: %s\n' "$*" >&2; }
venv=.venv-numpy
requirements=scripts/requirements-numpy.txt
python=${PARLINALG_PYTHON:-python3}

has_numpy() { "$1" -c 'import numpy, threadpoolctl' >/dev/null 2>&1; }

if ! command -v "$python" >/dev/null 2>&1; then
  say "no $python: the numpy comparison is skipped (install python3, e.g. apt-get install python3 python3-venv)"
  exit 1
fi
if has_numpy "$python"; then
  command -v "$python"
  exit 0
fi
if [ -x "$venv/bin/python" ] && has_numpy "$venv/bin/python"; then
  echo "$PWD/$venv/bin/python"
  exit 0
fi

make_venv() {
  rm -rf "$venv"
  "$python" -m venv "$venv" >/dev/null 2>&1
}
if ! make_venv; then
  # Debian and Ubuntu ship venv's pip bootstrap separately.
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    say "installing python3-venv to make $venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$version-venv" >/dev/null 2>&1 ||
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
  fi
  if ! make_venv; then
    say "cannot make a virtual environment with $python: install python3-venv"
    say "    (Debian/Ubuntu: sudo apt-get install python3-venv), or numpy and threadpoolctl"
    say "    into $python, then run this again; --no-numpy skips the comparison"
    exit 1
  fi
fi
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2; then
  say "pip could not install numpy into $venv (see above): the comparison is skipped;"
  say "    install numpy and threadpoolctl into $python by hand, or pass --no-numpy"
  rm -rf "$venv"
  exit 1
fi
say "made $venv with $("$venv/bin/python" -c 'import numpy, threadpoolctl; print(f"numpy {numpy.__version__}, threadpoolctl {threadpoolctl.__version__}")') for the numpy comparison (--no-numpy skips Python)"
echo "$PWD/$venv/bin/python"
