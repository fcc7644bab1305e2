"""equiforce::conv against the unfused reference (per-edge TP + index_add) and against e3nn's
TensorProduct + index_add: values, first and second derivatives, and the awkward graphs."""
import pytest
import torch
from e3nn import o3 as e3nn_o3

from equiforce import o3
from equiforce.ops import reference
from tests.helpers import assert_close
from tests.ops.tp_cases import CASES, nequip_case


def _graph(num_nodes, num_edges, seed, sorted_edges=False):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=g)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=g)
    if sorted_edges:
        dst, order = torch.sort(dst)
        src = src[order]
    return src, dst


def _conv_inputs(conv, num_nodes, num_edges, seed=0, shared=False):
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(num_nodes, conv.irreps_in1.dim, generator=g, dtype=torch.float64)
    a = torch.randn(num_edges, conv.irreps_in2.dim, generator=g, dtype=torch.float64)
    w = torch.randn(*((num_edges,) if not shared else ()), conv.weight_numel, generator=g, dtype=torch.float64)
    return x, a, w


GRAPHS = {  # name: (num_nodes, num_edges, note)
    "random": (9, 40),
    "no_edges": (5, 0),
    "single_node": (1, 3),  # self-loops, duplicates
    "isolated_nodes": (12, 4),
}


@pytest.mark.parametrize("case", ["nequip", "mixed", "uvw"])
@pytest.mark.parametrize("graph", list(GRAPHS))
def test_values_and_derivatives_match_unfused_reference(case, graph, dtype):
    args = nequip_case() if case == "nequip" else CASES[case]
    conv = o3.TensorProductConv(*args)
    n, e = GRAPHS[graph]
    src, dst = _graph(n, e, seed=n + e)
    x, a, w = _conv_inputs(conv, n, e)
    go = torch.randn(n, conv.irreps_out.dim, dtype=torch.float64)
    vs = [torch.randn_like(t) for t in (x, a, w)]
    results = []
    for fn, dt in ((lambda *t: conv.to(dt)(*t, src, dst), dtype),
                   (lambda *t: reference.conv(*t, src, dst, n, conv.descriptor), torch.float64)):
        ins = [t.to(dt).requires_grad_() for t in (x, a, w)]
        out = fn(*ins)
        grads = torch.autograd.grad(out, ins, go.to(dt), create_graph=True, allow_unused=True)
        grads = [torch.zeros_like(i) if g is None else g for g, i in zip(grads, ins)]
        s = sum((g * v.to(dt)).sum() for g, v in zip(grads, vs) if g.requires_grad)
        second = torch.autograd.grad(s, ins, allow_unused=True) if torch.is_tensor(s) and s.requires_grad else [None] * 3
        second = [torch.zeros_like(i) if h is None else h for h, i in zip(second, ins)]
        results.append((out.detach(), [g.detach() for g in grads], second))
    (o, g, h), (ro, rg, rh) = results
    assert_close(o, ro, dtype, "out")
    for a_, b_, what in zip(g + h, rg + rh, ["dx", "dattr", "dw", "d2x", "d2attr", "d2w"]):
        assert_close(a_, b_, dtype, what)


def test_matches_e3nn_tensor_product_plus_index_add(dtype):
    torch.set_default_dtype(torch.float64)
    try:
        args = nequip_case(mul=3)
        ref = e3nn_o3.TensorProduct(*args, shared_weights=False, internal_weights=False)
    finally:
        torch.set_default_dtype(torch.float32)
    conv = o3.TensorProductConv(*args).to(dtype)
    src, dst = _graph(10, 60, seed=3)
    x, a, w = _conv_inputs(conv, 10, 60)
    expected = torch.zeros(10, ref.irreps_out.dim, dtype=torch.float64).index_add(0, dst, ref(x[src], a, w))
    assert_close(conv(x.to(dtype), a.to(dtype), w.to(dtype), src, dst), expected, dtype, "conv vs e3nn")


def test_edge_order_does_not_matter_and_duplicates_add_up():
    conv = o3.TensorProductConv(*nequip_case())
    src, dst = _graph(6, 25, seed=5)
    x, a, w = _conv_inputs(conv, 6, 25)
    perm = torch.randperm(25)
    assert_close(conv(x, a, w, src, dst), conv(x, a[perm], w[perm], src[perm], dst[perm]), torch.float64, "order")
    doubled = conv(x, torch.cat([a, a]), torch.cat([w, w]), torch.cat([src, src]), torch.cat([dst, dst]))
    assert_close(doubled, 2 * conv(x, a, w, src, dst), torch.float64, "duplicates")


@pytest.mark.parametrize("shared", [False, True])
def test_gradcheck_and_gradgradcheck(shared):
    conv = o3.TensorProductConv(*CASES["mixed"], shared_weights=shared)
    src, dst = _graph(4, 9, seed=1)
    x, a, w = (t.requires_grad_() for t in _conv_inputs(conv, 4, 9, shared=shared))
    fn = lambda x, a, w: conv(x, a, w, src, dst)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, a, w))
    assert torch.autograd.gradgradcheck(fn, (x, a, w))


def test_opcheck(dtype):
    conv = o3.TensorProductConv(*CASES["mixed"])
    src, dst = _graph(5, 12, seed=2)
    x, a, w = (t.to(dtype).requires_grad_() for t in _conv_inputs(conv, 5, 12))
    desc = (conv.descriptor_ints, conv.descriptor_floats)
    torch.library.opcheck(torch.ops.equiforce.conv.default, (x, a, w, src, dst, 5, *desc, conv.irreps_out.dim))
    go = torch.randn(5, conv.irreps_out.dim, dtype=dtype, requires_grad=True)
    torch.library.opcheck(torch.ops.equiforce.conv_backward.default, (go, x, a, w, src, dst, *desc))


def test_fewer_receivers_than_senders():
    """Receivers may be a prefix of the senders (local atoms receive, ghosts only send)."""
    conv = o3.TensorProductConv(*nequip_case())
    src, dst = _graph(4, 20, seed=9)
    x, a, w = _conv_inputs(conv, 10, 20)
    src = src + 6  # senders 6..9 are "ghosts"
    out = torch.ops.equiforce.conv(x, a, w, src, dst, 4, conv.descriptor_ints, conv.descriptor_floats,
                                   conv.irreps_out.dim)
    assert_close(out, reference.conv(x, a, w, src, dst, 4, conv.descriptor), torch.float64, "receivers prefix")


def _bad_calls():
    conv = o3.TensorProductConv(*nequip_case())
    src, dst = _graph(5, 8, seed=4)
    x, a, w = _conv_inputs(conv, 5, 8)
    op = torch.ops.equiforce.conv
    d = (conv.descriptor_ints, conv.descriptor_floats, conv.irreps_out.dim)
    return [
        (lambda: op(x, a, w, src, dst + 5, 5, *d), ValueError, "edge_dst"),
        (lambda: op(x, a, w, src - 1 - src.max(), dst, 5, *d), ValueError, "edge_src"),
        (lambda: op(x, a, w, src[:-1], dst, 5, *d), ValueError, "num_edges"),
        (lambda: op(x, a, w, src.float(), dst, 5, *d), TypeError, "int64"),
        (lambda: op(x, a[:, :-1], w, src, dst, 5, *d), ValueError, "edge_attr must have shape"),
        (lambda: op(x, a, w[:-1], src, dst, 5, *d), ValueError, "weight must have shape"),
        (lambda: op(x, a.float(), w, src, dst, 5, *d), TypeError, "same dtype"),
        (lambda: op(x, a, w, src, dst, -1, *d), ValueError, "num_nodes"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_bad_input_raises_clear_errors(index):
    call, error, match = _bad_calls()[index]
    with pytest.raises(error, match=match):
        call()
