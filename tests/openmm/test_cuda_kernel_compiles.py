"""The OpenMM CUDA-platform kernel (csrc/openmm/platforms/cuda) compiles against OpenMM's CUDA headers
(the openmm-cuda-13 wheel, unpacked without its NVIDIA dependencies), the CUDA toolkit's cuda.h (found
as tests/cuda finds the toolkit: CUDA_HOME, /usr/local/cuda, nvcc on PATH or NVIDIA's pip wheels) and
torch's headers. A syntax check: this machine has no GPU and a CPU build of torch (which lacks one
generated CUDA header, shimmed here), so nothing is linked or run; tests/gpu does that on a GPU."""
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.cuda.toolkit import toolkit

ROOT = Path(__file__).resolve().parents[2]


def test_cuda_platform_kernel_compiles(tmp_path):
    import torch.utils.cpp_extension as ext

    _, cuda_include = toolkit("cuda.h")  # found as tests/cuda finds it (pip wheels included), so CI runs this
    download = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp_path),
                               "openmm-cuda-13==8.6.1"], capture_output=True, text=True)
    assert download.returncode == 0, download.stderr
    wheel = next(tmp_path.glob("openmm_cuda_13-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "wheel")
    shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
    shim.mkdir(parents=True)
    (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    includes = [ROOT / "csrc/openmm/openmmapi/include", ROOT / "csrc/runtime", tmp_path / "wheel/OpenMM.libs/include",
                cuda_include, tmp_path / "shim", *ext.include_paths()]
    for source in ("platforms/cuda/CudaEquiForceKernels.cpp", "serialization/EquiForceProxy.cpp"):
        result = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-DEQUIFORCE_OPENMM_CUDA", "-w",
                                 *[f"-I{p}" for p in includes], str(ROOT / "csrc/openmm" / source)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
