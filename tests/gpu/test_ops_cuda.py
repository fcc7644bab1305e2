"""Every op on CUDA tensors against the same op on the CPU (outputs, first and second derivatives,
float32 and float64, fresh random inputs) and against e3nn on the GPU."""
import numpy as np
import pytest
import torch

import equiforce.ops  # noqa: F401  (registers the ops)
from equiforce import o3
from equiforce.algebra import Irreps
from tests.ops.tp_cases import ALL, descriptor

CUDA = torch.device("cuda")
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def close(a, b, dtype, what):
    scale = max(1.0, float(b.detach().abs().max())) if b.numel() else 1.0
    err = float((a.detach().cpu() - b.detach().cpu()).abs().max()) if b.numel() else 0.0
    assert err <= TOL[dtype] * scale, f"{what}: max error {err:.3e} (scale {scale:.3e})"


def derivatives(fn, inputs, seed):
    """Output, first derivatives (VJP with a random cotangent) and second derivatives (the gradient
    of <first, random> with respect to every input)."""
    g = torch.Generator().manual_seed(seed)
    out = fn(*inputs)
    cot = torch.randn(out.shape, generator=g, dtype=out.dtype).to(out.device)
    first = torch.autograd.grad(out, inputs, cot, create_graph=True, allow_unused=True)
    first = [f if f is not None else torch.zeros_like(x) for f, x in zip(first, inputs)]
    probe = sum((f * torch.randn(f.shape, generator=g, dtype=f.dtype).to(f.device)).sum() for f in first)
    second = torch.autograd.grad(probe, inputs, allow_unused=True)
    second = [s if s is not None else torch.zeros_like(x) for s, x in zip(second, inputs)]
    return out, first, second


def compare(fn_cpu, fn_cuda, inputs_cpu, dtype, seed, name):
    cpu = [x.detach().clone().requires_grad_(True) for x in inputs_cpu]
    gpu = [x.detach().to(CUDA).requires_grad_(True) for x in inputs_cpu]
    out_c, first_c, second_c = derivatives(fn_cpu, cpu, seed)
    out_g, first_g, second_g = derivatives(fn_cuda, gpu, seed)
    close(out_g, out_c, dtype, f"{name} output")
    for k, (a, b) in enumerate(zip(first_g, first_c)):
        close(a, b, dtype, f"{name} d/d input {k}")
    for k, (a, b) in enumerate(zip(second_g, second_c)):
        close(a, b, dtype, f"{name} d2/d input {k}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("lmax", [0, 1, 2, 3, 6, 12])
@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
@pytest.mark.parametrize("normalize", [True, False])
def test_spherical_harmonics(dtype, lmax, normalization, normalize):
    r = torch.randn(257, 3, dtype=dtype)
    r[0] = 0.0  # the zero vector, as e3nn treats it
    fn = lambda v: torch.ops.equiforce.spherical_harmonics(v, lmax, normalize, normalization)  # noqa: E731
    compare(fn, fn, [r], dtype, lmax, f"sh l<={lmax}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ALL)
@pytest.mark.parametrize("weights", ["per_sample", "shared"])
def test_tensor_product(dtype, case, weights):
    d = descriptor(case)
    tp = o3.TensorProduct(d.irreps_in1, d.irreps_in2, d.irreps_out, d.instructions,
                          shared_weights=weights == "shared", internal_weights=False).to(dtype)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(300, d.irreps_in1.dim, generator=g, dtype=dtype)
    x2 = torch.randn(300, d.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(*((300,) if weights == "per_sample" else ()), tp.weight_numel, generator=g, dtype=dtype)
    compare(tp, tp, [x1, x2, w], dtype, 3, f"tp {case} {weights}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["nequip", "mixed", "uvw"])
@pytest.mark.parametrize("weights", ["per_edge", "shared"])
def test_conv(dtype, case, weights):
    d = descriptor(case)
    conv = o3.TensorProductConv(d.irreps_in1, d.irreps_in2, d.irreps_out, d.instructions,
                                shared_weights=weights == "shared").to(dtype)
    g = torch.Generator().manual_seed(4)
    nodes, edges = 97, 1500
    src = torch.randint(0, nodes, (edges,), generator=g)
    dst = torch.randint(0, nodes - 3, (edges,), generator=g)  # the last nodes receive nothing
    x = torch.randn(nodes, d.irreps_in1.dim, generator=g, dtype=dtype)
    attr = torch.randn(edges, d.irreps_in2.dim, generator=g, dtype=dtype)
    w = torch.randn(*((edges,) if weights == "per_edge" else ()), conv.weight_numel, generator=g, dtype=dtype)

    def run(device):
        s, t = src.to(device), dst.to(device)
        return lambda a, b, c: conv(a, b, c, s, t)

    compare(run("cpu"), run(CUDA), [x, attr, w], dtype, 5, f"conv {case} {weights}")


def test_conv_rejects_bad_indices_on_the_gpu():
    d = descriptor("nequip")
    conv = o3.TensorProductConv(d.irreps_in1, d.irreps_in2, d.irreps_out, d.instructions).double().to(CUDA)
    x = torch.randn(5, d.irreps_in1.dim, dtype=torch.float64, device=CUDA)
    attr = torch.randn(3, d.irreps_in2.dim, dtype=torch.float64, device=CUDA)
    w = torch.randn(3, conv.weight_numel, dtype=torch.float64, device=CUDA)
    src = torch.tensor([0, 1, 7], device=CUDA)
    with pytest.raises(ValueError, match="outside"):
        conv(x, attr, w, src, torch.tensor([0, 1, 2], device=CUDA))


@pytest.mark.parametrize("case", ["open", "orthogonal", "triclinic", "small_cell", "mixed"])
def test_neighbor_list(case):
    rng = np.random.default_rng(7)
    n = 400
    cell = np.diag([14.0, 15.0, 16.0]) + (rng.normal(size=(3, 3)) * 1.5 if case == "triclinic" else 0)
    pbc = {"open": [False] * 3, "mixed": [True, True, False]}.get(case, [True] * 3)
    if case == "small_cell":
        cell, n = np.eye(3) * 3.0, 5
    pos = torch.tensor(rng.random((n, 3)) @ cell * 1.2 - 1.0)  # some atoms outside the cell
    cell_t, pbc_t = torch.tensor(cell), torch.tensor(pbc)
    ref = torch.ops.equiforce.neighbor_list(pos, cell_t, pbc_t, 5.0, False)
    out = torch.ops.equiforce.neighbor_list(pos.to(CUDA), cell_t, pbc_t, 5.0, False)
    key = lambda t: sorted(zip(t[0].tolist(), t[1].tolist(), map(tuple, t[2].tolist())))  # noqa: E731
    assert out[0].is_cuda and key([x.cpu() for x in out]) == key(ref)


def test_against_e3nn_on_the_gpu():
    e3nn = pytest.importorskip("e3nn")
    from e3nn import o3 as e3o3

    r = torch.randn(1000, 3, device=CUDA, dtype=torch.float64)
    ours = o3.SphericalHarmonics(Irreps.spherical_harmonics(4), normalize=True, normalization="component")
    theirs = e3o3.spherical_harmonics(list(range(5)), r, normalize=True, normalization="component")
    close(ours(r), theirs, torch.float64, "SH vs e3nn")
    tp_e3nn = e3o3.FullyConnectedTensorProduct("4x0e+4x1o+2x2e", "0e+1o+2e", "4x0e+4x1o+4x2e").double().to(CUDA)
    tp = o3.from_e3nn(tp_e3nn).to(device=CUDA, dtype=torch.float64)
    x1 = torch.randn(500, tp_e3nn.irreps_in1.dim, device=CUDA, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(500, tp_e3nn.irreps_in2.dim, device=CUDA, dtype=torch.float64, requires_grad=True)
    a, b = tp(x1, x2), tp_e3nn(x1, x2)
    close(a, b, torch.float64, "TP vs e3nn")
    ga = torch.autograd.grad(a.pow(2).sum(), [x1, x2])
    gb = torch.autograd.grad(b.pow(2).sum(), [x1, x2])
    for p, q in zip(ga, gb):
        close(p, q, torch.float64, "TP gradient vs e3nn")
