import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from e3nn import o3 as e3nn_o3

from equiforce.algebra import spherical_harmonics
from equiforce.algebra.codegen import generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
@pytest.mark.parametrize("normalize", [True, False])
def test_numpy_reference_equals_e3nn(normalization, normalize):
    x = np.random.default_rng(0).normal(size=(64, 3)) * 1.7
    ours = spherical_harmonics(11, x, normalize, normalization)
    ref = e3nn_o3.spherical_harmonics(list(range(12)), torch.tensor(x), normalize, normalization).numpy()
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-13


def test_generated_kernel_header_is_up_to_date():
    committed = (ROOT / "csrc" / "kernels" / "sh_generated.h").read_text()
    assert committed == generate(), "run `python -m equiforce.algebra.codegen` and commit csrc/kernels/sh_generated.h"


def test_algebra_does_not_import_torch():
    code = "import sys, equiforce.algebra, equiforce.algebra.codegen; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
