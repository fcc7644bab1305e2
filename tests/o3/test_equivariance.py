"""Equivariance of every module under random O(3) elements, reflections included."""
import pytest
import torch

from equiforce import o3
from equiforce.testing import assert_equivariant, irreps_D, random_o3
from tests.ops.tp_cases import ALL, CASES, nequip_case


def test_random_o3_covers_both_components():
    assert torch.det(random_o3(improper=True)) < 0 < torch.det(random_o3(improper=False))


@pytest.mark.parametrize("l", [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8], "1e+2e"])
def test_spherical_harmonics(l, dtype):
    sh = o3.SphericalHarmonics(l, normalize=True)
    irreps_in = "1e" if l == "1e+2e" else "1o"
    assert_equivariant(lambda x: sh(x), [irreps_in], [sh.irreps_out], dtype=dtype)


@pytest.mark.parametrize("name", ALL)
def test_tensor_product(name, dtype):
    args = nequip_case() if name == "nequip" else CASES[name]
    tp = o3.TensorProduct(*args, shared_weights=False).to(dtype)
    w = torch.randn(5, tp.weight_numel, dtype=dtype)
    assert_equivariant(lambda a, b, c: tp(a, b, c), [tp.irreps_in1, tp.irreps_in2, None], [tp.irreps_out],
                       args=[torch.randn(5, tp.irreps_in1.dim, dtype=dtype),
                             torch.randn(5, tp.irreps_in2.dim, dtype=dtype), w], dtype=dtype)


def test_linear(dtype):
    lin = o3.Linear("4x0e+3x1o+2x2e+1x0o", "2x0e+2x1o+1x2e+1x0o", biases=True).to(dtype)
    assert_equivariant(lin, [lin.irreps_in], [lin.irreps_out], dtype=dtype)


def test_the_check_catches_a_parity_bug():
    # a pseudovector treated as a vector passes rotations but fails reflections
    sh = o3.SphericalHarmonics([1], normalize=False)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(sh, ["1e"], ["1o"])


def test_irreps_D_is_block_diagonal_orthogonal():
    g = random_o3(improper=True)
    d = irreps_D("2x0e+1x1o+1x2e", g)
    assert torch.allclose(d @ d.T, torch.eye(d.shape[0], dtype=d.dtype), atol=1e-12)
    assert torch.allclose(d[2:5, 2:5], g)


def test_convolution(dtype):
    conv = o3.TensorProductConv(*nequip_case()).to(dtype)
    src = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    dst = torch.tensor([1, 2, 3, 4, 0, 3, 0, 0])
    w = torch.randn(8, conv.weight_numel, dtype=dtype)
    assert_equivariant(lambda x, a: conv(x, a, w, src, dst), [conv.irreps_in1, conv.irreps_in2], [conv.irreps_out],
                       args=[torch.randn(5, conv.irreps_in1.dim, dtype=dtype),
                             torch.randn(8, conv.irreps_in2.dim, dtype=dtype)], dtype=dtype)
