#!/usr/bin/env bash
# Makes sure what parlinalg needs to build is on this machine: the Rust toolchain (checked
# only), a C compiler and linker (cargo links through `cc`; minimal Debian 13 images have none),
# pkg-config and the system OpenBLAS. Installs what is missing with apt-get on Debian/Ubuntu
# (with sudo when not root); elsewhere, says exactly what to install.
set -euo pipefail

say() { printf 'parlinalg: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
  say "cargo is missing: install the Rust toolchain from https://rustup.rs, then run this again."
  exit 1
fi

have_openblas() {
  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas
}

# Optional: Open MPI's mpirun, for the test suite's one real `mpirun -np 2` job
# (tests/threads_budget.rs). Installed where apt-get and root (or password-less sudo) allow;
# otherwise that test prints SKIPPED. Never fatal.
if ! command -v mpirun >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  mpi_sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      mpi_sudo="sudo -n"
    else
      mpi_sudo="none"
    fi
  fi
  if [ "$mpi_sudo" = "none" ]; then
    say "mpirun is missing and this user cannot install packages: the mpirun test will be SKIPPED"
  else
    say "installing openmpi-bin (for the mpirun test; optional)"
    { $mpi_sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $mpi_sudo apt-get install -y -qq openmpi-bin >/dev/null; } ||
      say "could not install openmpi-bin: the mpirun test will be SKIPPED"
  fi
fi

have_cc() {
  command -v cc >/dev/null 2>&1
}

if have_openblas && have_cc; then
  exit 0
fi

packages="libopenblas-dev pkg-config"
have_cc || packages="$packages gcc libc6-dev"
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    say "OpenBLAS is missing and this user cannot install packages: as root run"
    say "    apt-get install -y $packages"
    exit 1
  fi
  say "installing $packages (OpenBLAS from the system's packages)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq $packages >/dev/null
  if have_openblas && have_cc; then
    say "OpenBLAS $(pkg-config --modversion openblas) installed"
    exit 0
  fi
fi

say "could not find or install the system OpenBLAS and a C toolchain. Install them, then run this again:"
say "    Debian/Ubuntu: apt-get install $packages"
say "    Fedora:        dnf install openblas-devel pkgconf gcc"
say "    Arch:          pacman -S openblas pkgconf gcc"
say "Or point PKG_CONFIG_PATH at an openblas.pc, or set PARLINALG_OPENBLAS_LIB_DIR."
exit 1
