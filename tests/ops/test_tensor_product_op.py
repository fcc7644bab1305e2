"""equiforce::tensor_product against the plain-torch reference: values, first and second
derivatives for every connection mode, weights shared / per sample / absent, and bad input."""
import pytest
import torch

from equiforce import ops
from equiforce.ops import reference
from tests.helpers import assert_close
from tests.ops.seeding import stable_seed
from tests.ops.tp_cases import ALL, descriptor


def _inputs(d, batch, dtype, weights, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(batch, d.irreps_in1.dim, generator=g, dtype=torch.float64)
    x2 = torch.randn(batch, d.irreps_in2.dim, generator=g, dtype=torch.float64)
    shape = {"shared": (d.weight_numel,), "per_sample": (batch, d.weight_numel), "none": None}[weights]
    w = torch.randn(*shape, generator=g, dtype=torch.float64) if shape and d.weight_numel else None
    return [t.to(dtype) if t is not None else None for t in (x1, x2, w)]


def _call(d):
    ints, floats = (torch.from_numpy(a) for a in d.to_arrays())
    return lambda a, b, w: ops.tensor_product(a, b, w, ints, floats, d.irreps_out.dim)


def _all_weighted(d):
    return d.weight_numel > 0


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("weights", ["shared", "per_sample"])
def test_forward_backward_double_backward_match_reference(name, weights, dtype):
    d = descriptor(name)
    x1, x2, w = _inputs(d, 7, torch.float64, weights, seed=stable_seed(name) % 1000)
    go = torch.randn(7, d.irreps_out.dim, dtype=torch.float64)
    vs = [torch.randn_like(t) for t in (x1, x2, w)]
    results = []
    for fn, dt in ((_call(d), dtype), (lambda a, b, c: reference.tensor_product(a, b, c, d), torch.float64)):
        inputs = [t.to(dt).requires_grad_() for t in (x1, x2, w)]
        out = fn(*inputs)
        grads = torch.autograd.grad(out, inputs, go.to(dt), create_graph=True)
        # second derivatives: d<v, grads>/d(inputs) and d/d(grad_out) via a grad_out that requires grad
        s = sum((g * v.to(dt)).sum() for g, v in zip(grads, vs) if g.requires_grad)
        second = torch.autograd.grad(s, inputs, allow_unused=True)
        second = [torch.zeros_like(i) if h is None else h for h, i in zip(second, inputs)]
        results.append((out.detach(), [g.detach() for g in grads], second))
    (o, g, h), (ro, rg, rh) = results
    assert_close(o, ro, dtype, f"{name} out")
    for a, b, what in zip(g, rg, ("x1", "x2", "w")):
        assert_close(a, b, dtype, f"{name} d/d{what}")
    for a, b, what in zip(h, rh, ("x1", "x2", "w")):
        assert_close(a, b, dtype, f"{name} d2/d{what}")


@pytest.mark.parametrize("name", ALL)
def test_double_backward_wrt_grad_out(name):
    d = descriptor(name)
    x1, x2, w = _inputs(d, 5, torch.float64, "per_sample")
    go = torch.randn(5, d.irreps_out.dim, dtype=torch.float64, requires_grad=True)
    vs = [torch.randn_like(t) for t in (x1, x2, w)]
    res = []
    for fn in (_call(d), lambda a, b, c: reference.tensor_product(a, b, c, d)):
        ins = [t.clone().requires_grad_() for t in (x1, x2, w)]
        grads = torch.autograd.grad(fn(*ins), ins, go, create_graph=True)
        s = sum((g * v).sum() for g, v in zip(grads, vs))
        res.append(torch.autograd.grad(s, go)[0])
    assert_close(res[0], res[1], torch.float64, f"{name} d2/dgrad_out")


@pytest.mark.parametrize("name", ["uvw", "uvu", "mixed", "uuu"])
@pytest.mark.parametrize("weights", ["shared", "per_sample"])
def test_gradcheck_and_gradgradcheck(name, weights):
    d = descriptor(name)
    x1, x2, w = (t.requires_grad_() for t in _inputs(d, 3, torch.float64, weights))
    fn = _call(d)
    assert torch.autograd.gradcheck(fn, (x1, x2, w))
    assert torch.autograd.gradgradcheck(fn, (x1, x2, w))


def test_no_weights_at_all():
    from equiforce.algebra import TensorProductDescriptor

    d = TensorProductDescriptor("2x1o+1x2e", "1x1o", "2x0e+2x1e+1x1o", [(0, 0, 0, "uvu", False), (0, 0, 1, "uvu", False),
                                                                      (1, 0, 2, "uvu", False)])
    assert d.weight_numel == 0
    x1, x2, _ = _inputs(d, 4, torch.float64, "none")
    x1.requires_grad_(), x2.requires_grad_()
    fn = _call(d)
    assert_close(fn(x1, x2, None), reference.tensor_product(x1, x2, None, d), torch.float64, "no weights")
    assert torch.autograd.gradgradcheck(lambda a, b: fn(a, b, None), (x1, x2))


@pytest.mark.parametrize("weights", ["shared", "per_sample"])
def test_opcheck(weights, dtype):
    d = descriptor("mixed")
    ints, floats = (torch.from_numpy(a) for a in d.to_arrays())
    x1, x2, w = (t.requires_grad_() for t in _inputs(d, 4, dtype, weights))
    go = torch.randn(4, d.irreps_out.dim, dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.equiforce.tensor_product.default, (x1, x2, w, ints, floats, d.irreps_out.dim))
    torch.library.opcheck(torch.ops.equiforce.tensor_product_backward.default, (go, x1, x2, w, ints, floats))


def test_empty_batch_and_non_contiguous_inputs():
    d = descriptor("uvu")
    fn = _call(d)
    x1, x2, w = _inputs(d, 6, torch.float64, "per_sample")
    assert fn(x1[:0], x2[:0], w[:0]).shape == (0, d.irreps_out.dim)
    x1s = torch.randn(d.irreps_in1.dim, 6, dtype=torch.float64).t()
    assert not x1s.is_contiguous()
    assert_close(fn(x1s, x2, w), fn(x1s.contiguous(), x2, w), torch.float64, "strided")


def _bad_calls():
    d = descriptor("uvu")
    ints, floats = (torch.from_numpy(a) for a in d.to_arrays())
    x1, x2, w = _inputs(d, 3, torch.float64, "per_sample")
    op = torch.ops.equiforce.tensor_product
    n = d.irreps_out.dim
    broken = ints.clone()
    broken[-1] = 99  # a CG index outside its irrep
    return [
        (lambda: op(x1[:, :-1], x2, w, ints, floats, n), ValueError, "x1 must have shape"),
        (lambda: op(x1, x2[:2], w, ints, floats, n), ValueError, "batch sizes"),
        (lambda: op(x1, x2, w[:, :-1], ints, floats, n), ValueError, "weight must have shape"),
        (lambda: op(x1, x2.float(), w, ints, floats, n), TypeError, "same dtype"),
        (lambda: op(x1, x2, w.float(), ints, floats, n), TypeError, "same dtype"),
        (lambda: op(x1.int(), x2, w, ints, floats, n), TypeError, "float32 or float64"),
        (lambda: op(x1, x2, w, ints, floats, n + 1), ValueError, "dim_out"),
        (lambda: op(x1, x2, w, broken, floats, n), ValueError, "malformed tensor-product descriptor"),
        (lambda: op(x1, x2, w, ints[:5], floats, n), ValueError, "malformed"),
        (lambda: op(x1, x2, w, ints.float(), floats, n), ValueError, "int64"),
        (lambda: op(x1, x2, w, ints, floats[:-1], n), ValueError, "malformed"),
        (lambda: op(x1, x2, w.new_empty(0), ints, floats, n), ValueError, "weight must have shape"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_bad_input_raises_clear_errors(index):
    call, error, match = _bad_calls()[index]
    with pytest.raises(error, match=match):
        call()


def test_mixed_devices_are_refused():
    d = descriptor("uvu")
    x1, x2, w = _inputs(d, 3, torch.float64, "per_sample")
    ints, floats = (torch.from_numpy(a) for a in d.to_arrays())
    with pytest.raises(ValueError, match="different devices"):
        ops.tensor_product(x1, x2.to("meta"), w, ints, floats, d.irreps_out.dim)
