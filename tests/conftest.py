import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def e3nn_in_float64():
    """e3nn builds its Clebsch-Gordan buffers, generators and angles in the default dtype: make its
    references exact by building them in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def cpp_program():
    """tests/cpp built against the installed op and runtime libraries (C++ hosts without Python)."""
    from equiforce.ops import library_path

    venv_cmake = Path(sys.executable).parent / "cmake"
    cmake = str(venv_cmake) if venv_cmake.exists() else shutil.which("cmake")
    build = ROOT / "build" / "tests-cpp"
    configure = subprocess.run([cmake, "-S", str(ROOT / "tests" / "cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                                f"-DPython_EXECUTABLE={sys.executable}",
                                f"-DEQUIFORCE_LIB_DIR={library_path().parent}"], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compiled = subprocess.run([cmake, "--build", str(build), "-j2"], capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return build
