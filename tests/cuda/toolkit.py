"""Where the CUDA toolkit is, for the compile checks that run without a GPU (tests/cuda, the OpenMM
CUDA-platform kernel): CUDA_HOME, /usr/local/cuda, the nvcc on PATH (through a wrapper script, if
that is what it is), or NVIDIA's pip wheels that scripts/install.sh installs on machines without one."""
import os
import re
import shutil
import sysconfig
from pathlib import Path

import pytest

PIP_CUDA = Path(sysconfig.get_paths()["purelib"]) / "nvidia" / "cu13"  # pip install nvidia-cuda-nvcc ...
INSTALL_HINT = ("scripts/install.sh installs one (pip install nvidia-cuda-nvcc nvidia-cuda-cccl nvidia-cuda-runtime "
                "nvidia-cuda-crt) when the machine has none")


def _wrapped(script: Path) -> list:
    """The nvcc a small wrapper script (`exec /path/to/nvcc "$@"`) runs, if it is one."""
    try:
        text = script.read_text(errors="ignore")[:4096] if script.stat().st_size < 4096 else ""
    except OSError:
        return []
    return [Path(m) for m in re.findall(r"(/\S+/bin/nvcc)\b", text)]


def _candidates() -> list:
    out = [Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc"] if os.environ.get("CUDA_HOME") else []
    out.append(Path("/usr/local/cuda/bin/nvcc"))
    on_path = shutil.which("nvcc")
    if on_path:
        out += [Path(on_path).resolve(), *_wrapped(Path(on_path))]
    out.append(PIP_CUDA / "bin" / "nvcc")
    return out


def toolkit(header: str = "cuda_runtime.h"):
    """(nvcc, include folder) of the first toolkit whose include folder has `header`; fails the test
    (never skips: CI must compile the CUDA code) when there is none."""
    for nvcc in _candidates():
        include = nvcc.parent.parent / "include"
        if nvcc.exists() and (include / header).exists():
            return nvcc, include
    pytest.fail(f"no CUDA toolkit with {header}: {INSTALL_HINT}")
