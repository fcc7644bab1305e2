"""equiforce._C serves the same CPU kernels on NumPy arrays, without torch."""
import subprocess
import sys

import numpy as np
import pytest

from equiforce import _C
from equiforce.algebra import TensorProductDescriptor, spherical_harmonics
from tests.ops.tp_cases import descriptor


def test_build_info():
    info = _C.build_info()
    assert info["version"] and info["cuda"] is False and info["openmp_threads"] >= 1
    assert info["sh_lmax_supported"] == 12
    from equiforce.algebra.spherical_harmonics import LMAX_SUPPORTED  # the Python side says the same

    assert LMAX_SUPPORTED == info["sh_lmax_supported"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
def test_spherical_harmonics_equal_reference(dtype, normalization):
    x = np.random.default_rng(1).normal(size=(500, 3)).astype(dtype)
    y = _C.spherical_harmonics(x, 6, True, normalization)
    assert y.dtype == dtype and y.shape == (500, 49)
    ref = spherical_harmonics(6, x.astype(np.float64), True, normalization)
    np.testing.assert_allclose(y, ref, rtol=0, atol=2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", ["uvw", "mixed", "nequip"])
@pytest.mark.parametrize("shared", [True, False])
def test_tensor_product_equals_torch_op(name, shared):
    import torch

    from equiforce import ops

    d = descriptor(name)
    rng = np.random.default_rng(2)
    x1 = rng.normal(size=(9, d.irreps_in1.dim))
    x2 = rng.normal(size=(9, d.irreps_in2.dim))
    w = rng.normal(size=(d.weight_numel,) if shared else (9, d.weight_numel))
    ints, floats = d.to_arrays()
    ours = _C.tensor_product(x1, x2, w, ints, floats)
    ref = ops.tensor_product(*(torch.from_numpy(a) for a in (x1, x2, w, ints, floats)), d.irreps_out.dim)
    np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_input():
    d = descriptor("uvu")
    ints, floats = d.to_arrays()
    with pytest.raises(ValueError, match="lmax"):
        _C.spherical_harmonics(np.zeros((2, 3)), 13, True)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        _C.spherical_harmonics(np.zeros((2, 4)), 2, True)
    with pytest.raises(ValueError, match="normalization"):
        _C.spherical_harmonics(np.zeros((2, 3)), 2, True, "unit")
    with pytest.raises(ValueError, match="shapes"):
        _C.tensor_product(np.zeros((2, 3)), np.zeros((2, d.irreps_in2.dim)), None, ints, floats)
    with pytest.raises(ValueError, match="needs weights"):
        _C.tensor_product(np.zeros((2, d.irreps_in1.dim)), np.zeros((2, d.irreps_in2.dim)), None, ints, floats)
    with pytest.raises(ValueError, match="malformed"):
        _C.tensor_product(np.zeros((2, d.irreps_in1.dim)), np.zeros((2, d.irreps_in2.dim)), None, ints[:4], floats)


def test_works_without_torch():
    code = """
import sys, numpy as np
from equiforce import _C
from equiforce.algebra import TensorProductDescriptor
d = TensorProductDescriptor("2x0e+1x1o", "1x1o", "2x1o+1x0e", [(0, 0, 0, "uvu", True), (1, 0, 1, "uvu", False)])
out = _C.tensor_product(np.ones((3, 5)), np.ones((3, 3)), np.ones(2), *d.to_arrays())
y = _C.spherical_harmonics(np.ones((4, 3)), 3, True)
assert out.shape == (3, 7) and y.shape == (4, 16)
assert "torch" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dlpack_inputs_on_the_cpu_match_numpy():
    """Any DLPack producer works (here torch CPU tensors); the CPU kernels run and NumPy comes back."""
    import torch

    rng = np.random.default_rng(3)
    v = rng.normal(size=(7, 3))
    for dtype in (np.float32, np.float64):
        ref = _C.spherical_harmonics(v.astype(dtype), 3, True, "component")
        out = _C.spherical_harmonics(torch.from_numpy(v.astype(dtype)), 3, True, "component")
        assert isinstance(out, np.ndarray) and out.dtype == dtype
        np.testing.assert_array_equal(out, ref)
    d = descriptor("uvw")
    ints, floats = d.to_arrays()
    x1, x2 = rng.normal(size=(4, d.irreps_in1.dim)), rng.normal(size=(4, d.irreps_in2.dim))
    w = rng.normal(size=(4, d.weight_numel))
    ref = _C.tensor_product(x1, x2, w, ints, floats)
    out = _C.tensor_product(torch.from_numpy(x1), torch.from_numpy(x2), torch.from_numpy(w), ints, floats)
    np.testing.assert_array_equal(out, ref)


def test_cuda_dlpack_input_without_cuda_build_is_a_clear_error():
    import torch

    if _C.build_info()["cuda"]:
        pytest.skip("this build has CUDA kernels: tests/gpu covers the CUDA path")

    class ClaimsCuda:  # a producer that says its data is on a GPU
        def __init__(self):
            self.t = torch.zeros(3, 3, dtype=torch.float64)

        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, stream=None):
            return self.t.__dlpack__()

    with pytest.raises(RuntimeError, match="built without CUDA"):
        _C.spherical_harmonics(ClaimsCuda(), 2, True, "component")
