"""The CUDA code compiles on machines without a GPU, so it never rots: every torch-free .cu file of
csrc/cuda with plain nvcc for sm_80 (A100) and sm_90 (H100/H200), and the op registrations'
CUDA paths (EQUIFORCE_WITH_CUDA) as a syntax check against torch's headers (a CPU build of torch
lacks one generated CUDA header, shimmed here). tests/gpu builds, runs and times it on a GPU."""
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.cuda.toolkit import toolkit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))


def test_there_are_cuda_sources():
    assert {p.name for p in SOURCES} >= {"common.cu", "spherical_harmonics.cu", "tensor_product.cu", "conv.cu",
                                         "neighbor_list.cu"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_torch_free_cuda_source_compiles_for_sm80_and_sm90(source, tmp_path):
    nvcc, _ = toolkit()
    command = [str(nvcc), "-std=c++17", "-O1", "--expt-relaxed-constexpr", "--extended-lambda", "-Werror",
               "all-warnings", "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
               "-c", str(source), "-o", str(tmp_path / "out.o")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "out.o").stat().st_size > 0


@pytest.mark.parametrize("source", ["spherical_harmonics.cpp", "tensor_product.cpp", "conv.cpp", "neighbor_list.cpp"])
def test_op_registrations_with_cuda_compile(source, tmp_path):
    import torch.utils.cpp_extension as ext

    _, include = toolkit()
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    includes = [ROOT / "csrc", include, tmp_path / "shim", *ext.include_paths()]
    result = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-DEQUIFORCE_WITH_CUDA", "-w",
                             *[f"-I{p}" for p in includes], str(ROOT / "csrc" / "ops" / source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_python_module_with_cuda_compiles():
    """equiforce._C's DLPack path to the CUDA launchers (no torch headers: pybind11, CUDA runtime)."""
    import pybind11

    _, include = toolkit()
    includes = [ROOT / "csrc", include, pybind11.get_include(), sysconfig.get_paths()["include"]]
    result = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-DEQUIFORCE_WITH_CUDA", "-DEQUIFORCE_VERSION=\"0\"",
                             "-fopenmp", "-w", *[f"-I{p}" for p in includes], str(ROOT / "csrc/bindings/module.cpp")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
