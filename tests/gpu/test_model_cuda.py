"""The potential on the GPU: energies and forces against the CPU (float64 <= 1e-10 relative,
float32 <= 1e-5), the exported model on CUDA, a CUDA-graph capture of a model step, and _C's DLPack
path with CUDA arrays."""
from pathlib import Path

import pytest
import torch

from equiforce.model import EquiForceModel, evaluate

CUDA = torch.device("cuda")
ROOT = Path(__file__).resolve().parents[2]


def copper(repeat=4, seed=0, a=3.6):
    """A rattled fcc copper supercell (no ASE on the GPU machine)."""
    basis = torch.tensor([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]], dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(*[torch.arange(repeat, dtype=torch.float64)] * 3, indexing="ij"), -1)
    pos = (grid.reshape(-1, 1, 3) + basis).reshape(-1, 3) * a
    pos += 0.1 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return pos, torch.eye(3, dtype=torch.float64) * a * repeat


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_energy_and_forces_match_the_cpu(dtype, tol):
    torch.manual_seed(0)
    model = EquiForceModel(["Cu"], r_max=4.5, l_max=2, num_features=16, num_layers=3).to(dtype)
    pos, cell = copper()
    species = torch.zeros(len(pos), dtype=torch.long)
    cpu = evaluate(model, pos, species, cell, True, stress=True)
    gpu = evaluate(model.to(CUDA), pos.to(CUDA), species.to(CUDA), cell.to(CUDA), True, stress=True)
    assert abs(float(gpu["energy"]) - float(cpu["energy"])) <= tol * abs(float(cpu["energy"]))
    scale = float(cpu["forces"].abs().max())
    assert float((gpu["forces"].cpu() - cpu["forces"]).abs().max()) <= tol * scale
    assert float((gpu["virial"].cpu() - cpu["virial"]).abs().max()) <= tol * float(cpu["virial"].abs().max())


def test_exported_model_runs_on_cuda():
    from equiforce.deploy import load

    module, meta = load(ROOT / "examples/models/cu.pt")
    module = module.to(CUDA)
    pos, cell = copper(3)
    species = torch.zeros(len(pos), dtype=torch.long)
    pbc = torch.ones(3, dtype=torch.bool)
    e_gpu, _, f_gpu = module.compute(pos.to(CUDA), species.to(CUDA), cell.to(CUDA), pbc.to(CUDA))[:3]
    cpu_module, _ = load(ROOT / "examples/models/cu.pt")
    e_cpu, _, f_cpu = cpu_module.compute(pos, species, cell, pbc)[:3]
    assert abs(float(e_gpu) - float(e_cpu)) <= 1e-5 * abs(float(e_cpu))
    assert float((f_gpu.cpu() - f_cpu).abs().max()) <= 1e-4


def test_cuda_graph_capture_of_a_model_step():
    """Energy and forces of a fixed graph captured once and replayed on new positions."""
    torch.manual_seed(1)
    model = EquiForceModel(["Cu"], r_max=4.5, l_max=2, num_features=8, num_layers=2).double().to(CUDA)
    pos, cell = copper(3)
    species = torch.zeros(len(pos), dtype=torch.long, device=CUDA)
    i, j, s = torch.ops.equiforce.neighbor_list(pos, cell, torch.ones(3, dtype=torch.bool), 4.5, False)
    shift = (s.double() @ cell).to(CUDA)
    src, dst = j.to(CUDA), i.to(CUDA)
    static_pos = pos.to(CUDA).clone()

    def step():
        vec = (static_pos[src] - static_pos[dst] + shift).requires_grad_(True)
        energy = model(vec, species, src, dst).sum()
        (g,) = torch.autograd.grad(energy, vec)
        forces = torch.zeros_like(static_pos).index_add(0, dst, g).index_add(0, src, -g)
        return energy.detach(), forces

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up: descriptor tables and allocator pools
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_energy, static_forces = step()
    moved = pos.to(CUDA) + 0.01 * torch.randn_like(pos.to(CUDA))
    static_pos.copy_(moved)
    graph.replay()
    torch.cuda.synchronize()
    expected_energy, expected_forces = step()
    assert abs(float(static_energy) - float(expected_energy)) <= 1e-10 * abs(float(expected_energy))
    assert float((static_forces - expected_forces).abs().max()) <= 1e-10 * float(expected_forces.abs().max())


def test_python_module_takes_cuda_arrays_through_dlpack():
    from equiforce import _C
    from equiforce.algebra import TensorProductDescriptor
    from tests.ops.tp_cases import descriptor

    r = torch.randn(1000, 3, dtype=torch.float64, device=CUDA)
    out = _C.spherical_harmonics(r, 3, True, "component")
    got = torch.from_dlpack(out)
    assert got.is_cuda
    expected = torch.ops.equiforce.spherical_harmonics(r, 3, True, "component")
    assert float((got - expected).abs().max()) <= 1e-12
    d: TensorProductDescriptor = descriptor("mixed")
    ints, floats = d.to_arrays()
    x1 = torch.randn(64, d.irreps_in1.dim, dtype=torch.float32, device=CUDA)
    x2 = torch.randn(64, d.irreps_in2.dim, dtype=torch.float32, device=CUDA)
    w = torch.randn(64, d.weight_numel, dtype=torch.float32, device=CUDA)
    got = torch.from_dlpack(_C.tensor_product(x1, x2, w, ints, floats))
    expected = torch.from_numpy(_C.tensor_product(x1.cpu().numpy(), x2.cpu().numpy(), w.cpu().numpy(), ints, floats))
    assert float((got.cpu() - expected).abs().max()) <= 1e-5 * max(1.0, float(expected.abs().max()))
    with pytest.raises(Exception, match="once"):
        out.__dlpack__()
