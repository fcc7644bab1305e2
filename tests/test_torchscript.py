"""A module built on the ops is scripted, saved, re-loaded in a fresh Python process, and run from
a C++ program that dlopens the op library: same energy, gradient and Hessian-vector product."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from equiforce import o3
from equiforce.ops import library_path

ROOT = Path(__file__).resolve().parents[1]


class ToyEnergy(torch.nn.Module):
    """A miniature potential on every op: neighbour list, SH of the edge vectors, a fused
    convolution and a tensor-product readout. Twice differentiable in the positions."""

    def __init__(self):
        super().__init__()
        self.sh = o3.SphericalHarmonics([0, 1, 2], normalize=True, normalization="component")
        self.conv = o3.TensorProductConv("2x0e", "0e+1o+2e", "2x0e+2x1o+2x2e",
                                         [(0, 0, 0, "uvu", True), (0, 1, 1, "uvu", True), (0, 2, 2, "uvu", True)])
        self.tp = o3.FullyConnectedTensorProduct("2x0e+2x1o+2x2e", "2x0e+2x1o+2x2e", "3x0e")
        self.radial = torch.nn.Linear(1, self.conv.weight_numel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cell = torch.zeros(3, 3, dtype=x.dtype)
        pbc = torch.zeros(3, dtype=torch.bool)
        i, j, _ = torch.ops.equiforce.neighbor_list(x.detach(), cell, pbc, 2.5, False)
        vec = x[j] - x[i]
        r = torch.linalg.vector_norm(vec, dim=-1, keepdim=True)
        weight = torch.tanh(self.radial(r)) * torch.cos(r)
        h = self.conv(torch.ones(x.shape[0], 2, dtype=x.dtype), self.sh(vec), weight, j, i)
        return self.tp(h, h).pow(2).sum()


def _reference(module, x):
    x = x.clone().requires_grad_()
    energy = module(x)
    (grad,) = torch.autograd.grad(energy, x, create_graph=True)
    (hvp,) = torch.autograd.grad(grad.sum(), x)
    return energy.item(), grad.detach().numpy(), hvp.numpy()


@pytest.fixture(scope="module")
def saved_module(tmp_path_factory):
    torch.manual_seed(0)
    module = torch.jit.script(ToyEnergy().double())
    path = tmp_path_factory.mktemp("ts") / "toy.pt"
    module.save(str(path))
    x = torch.randn(11, 3, dtype=torch.float64) * 1.5
    return path, x, _reference(module, x)


def test_scripted_module_reloads_in_a_fresh_process(saved_module, tmp_path):
    path, x, (energy, grad, hvp) = saved_module
    np.save(tmp_path / "x.npy", x.numpy())
    code = f"""
import numpy as np, torch
import equiforce.ops  # registers the ops before loading
m = torch.jit.load({str(path)!r})
x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})).requires_grad_()
e = m(x)
g, = torch.autograd.grad(e, x, create_graph=True)
h, = torch.autograd.grad(g.sum(), x)
np.save({str(tmp_path / 'out.npy')!r}, np.concatenate([[e.item()], g.detach().numpy().ravel(), h.numpy().ravel()]))
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    out = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(out, np.concatenate([[energy], grad.ravel(), hvp.ravel()]), rtol=1e-12, atol=1e-12)


def test_cpp_program_runs_the_saved_module(saved_module, cpp_program, tmp_path):
    path, x, (energy, grad, hvp) = saved_module
    (tmp_path / "x.bin").write_bytes(x.numpy().tobytes())
    result = subprocess.run([str(cpp_program / "run_scripted_module"), str(library_path()), str(path), str(tmp_path / "x.bin"),
                             str(x.shape[0]), str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.float64)
    np.testing.assert_allclose(out, np.concatenate([[energy], grad.ravel(), hvp.ravel()]), rtol=1e-12, atol=1e-12)


def test_cpp_program_without_the_op_library_fails_cleanly(saved_module, cpp_program, tmp_path):
    path, x, _ = saved_module
    (tmp_path / "x.bin").write_bytes(x.numpy().tobytes())
    libc = "libc.so.6"  # loads fine but registers nothing
    result = subprocess.run([str(cpp_program / "run_scripted_module"), libc, str(path), str(tmp_path / "x.bin"), str(x.shape[0]),
                             str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert result.returncode == 1 and "equiforce" in result.stderr
