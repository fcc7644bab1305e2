"""equiforce::spherical_harmonics against e3nn and the plain-torch reference: values, first and
second derivatives, gradcheck, opcheck and bad input."""
import pytest
import torch
from e3nn import o3 as e3nn_o3

from equiforce import ops
from equiforce.ops import reference
from tests.helpers import assert_close

NORMALIZATIONS = ["component", "norm", "integral"]


def _vectors(n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64) * 2.0
    x[0] = 0.0  # the zero vector: normalize=True maps it to 0 like e3nn
    return x.to(dtype)


@pytest.mark.parametrize("lmax", [0, 1, 2, 3, 6, 8, 12])
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("normalize", [True, False])
def test_values_match_e3nn(lmax, normalization, normalize, dtype):
    x = _vectors(200, dtype, seed=lmax)
    if not normalize:
        x = x / 2.0
    ours = ops.spherical_harmonics(x, lmax, normalize, normalization)
    ref = e3nn_o3.spherical_harmonics(list(range(lmax + 1)), x.double(), normalize, normalization)
    assert ours.dtype == dtype
    assert_close(ours, ref, dtype, f"Y lmax={lmax}")


@pytest.mark.parametrize("lmax", [1, 2, 4, 7])
@pytest.mark.parametrize("normalize", [True, False])
def test_first_and_second_derivatives_match_e3nn(lmax, normalize, dtype):
    normalization = NORMALIZATIONS[lmax % 3]
    x = _vectors(64, torch.float64, seed=10 + lmax)[1:]  # drop the zero vector: e3nn's derivative there is 0/0
    g = torch.randn(x.shape[0], (lmax + 1) ** 2, dtype=torch.float64)
    v = torch.randn_like(x)
    results = []
    for fn, dt in ((lambda t: ops.spherical_harmonics(t, lmax, normalize, normalization), dtype),
                   (lambda t: e3nn_o3.spherical_harmonics(list(range(lmax + 1)), t, normalize, normalization),
                    torch.float64),
                   (lambda t: reference.spherical_harmonics(t, lmax, normalize, normalization), torch.float64)):
        xi = x.to(dt).requires_grad_()
        (gx,) = torch.autograd.grad((fn(xi) * g.to(dt)).sum(), xi, create_graph=True)
        if gx.requires_grad:
            (hv,) = torch.autograd.grad((gx * v.to(dt)).sum(), xi)
        else:  # e3nn and the reference drop the graph where Y is linear in x
            hv = torch.zeros_like(xi)
        results.append((gx.detach(), hv))
    for other in results[1:]:
        assert_close(results[0][0], other[0], dtype, "dY/dx")
        assert_close(results[0][1], other[1], dtype, "d2Y/dx2")


def test_second_derivative_wrt_grad_out():
    x = _vectors(20, torch.float64)[1:].requires_grad_()
    g = torch.randn(19, 16, dtype=torch.float64, requires_grad=True)
    out = torch.ops.equiforce.spherical_harmonics_backward(g, x, 3, True, "integral")
    v = torch.randn_like(out)
    gg, = torch.autograd.grad((out * v).sum(), g)
    # d<g, J v>/dg = J v: a forward-mode derivative of Y
    _, jv = torch.autograd.functional.jvp(lambda t: reference.spherical_harmonics(t, 3, True, "integral"), x.detach(), v)
    assert_close(gg, jv, torch.float64, "J v")


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck_and_gradgradcheck(normalize):
    x = _vectors(12, torch.float64)[1:].requires_grad_()
    fn = lambda t: ops.spherical_harmonics(t, 4, normalize, "norm")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("op, args", [
    ("spherical_harmonics", lambda x, g: (x, 3, True, "component")),
    ("spherical_harmonics_backward", lambda x, g: (g, x, 3, False, "integral")),
])
def test_opcheck(op, args, dtype):
    x = _vectors(10, dtype)[1:].requires_grad_()
    g = torch.randn(9, 16, dtype=dtype, requires_grad=True)
    torch.library.opcheck(getattr(torch.ops.equiforce, op).default, args(x, g))


def test_batch_shapes_and_non_contiguous_input():
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    y = ops.spherical_harmonics(x, 2)
    assert y.shape == (4, 5, 9)
    xt = torch.randn(3, 30, dtype=torch.float64).t()  # non-contiguous [30, 3]
    assert_close(ops.spherical_harmonics(xt, 3), ops.spherical_harmonics(xt.contiguous(), 3), torch.float64, "strided")


def test_empty_input():
    assert ops.spherical_harmonics(torch.zeros(0, 3), 2).shape == (0, 9)


@pytest.mark.parametrize("call, error, match", [
    (lambda: ops.spherical_harmonics(torch.randn(5, 2), 2), ValueError, r"\[\.\.\., 3\]"),
    (lambda: ops.spherical_harmonics(torch.randn(5, 3), 13), ValueError, "lmax"),
    (lambda: ops.spherical_harmonics(torch.randn(5, 3), -1), ValueError, "lmax"),
    (lambda: ops.spherical_harmonics(torch.randn(5, 3), 2, True, "unit"), ValueError, "normalization"),
    (lambda: ops.spherical_harmonics(torch.randint(0, 3, (5, 3)), 2), TypeError, "float32 or float64"),
    (lambda: torch.ops.equiforce.spherical_harmonics(torch.randn(5, 3), 99, True, "norm"), ValueError, "lmax"),
    (lambda: torch.ops.equiforce.spherical_harmonics(torch.randn(5, 4), 2, True, "norm"), ValueError, "shape"),
    (lambda: torch.ops.equiforce.spherical_harmonics(torch.randn(5, 3), 2, True, "bad"), ValueError, "normalization"),
    (lambda: torch.ops.equiforce.spherical_harmonics_backward(torch.randn(5, 8), torch.randn(5, 3), 2, True, "norm"),
     ValueError, "grad_out"),
    (lambda: torch.ops.equiforce.spherical_harmonics_backward(torch.randn(5, 9), torch.randn(5, 3).double(), 2, True,
                                                              "norm"), TypeError, "same dtype"),
])
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
