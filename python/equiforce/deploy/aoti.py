"""AOTInductor export (``.pt2``) of the deployed-model contract, and its Python loader.

TorchScript cannot be the only format: it is deprecated from torch 2.11. An AOTInductor package
is compiled C++ with the network's weights and the metadata inside; the custom operators stay
calls into the op library (loaded by ``csrc/runtime`` and by ``equiforce.ops``).

``torch.export`` cannot trace ``torch.autograd.grad``, so the forces come in through ``make_fx``
first: it records the backward operators (ours included) as plain graph nodes, with symbolic
atom and edge counts, and that graph is what gets exported and compiled. The package's inputs
are (positions, species, edge_src, edge_dst, edge_shift, num_local[1]); fewer than two atoms or
edges are padded by :func:`pad_inputs` (a far ghost atom, edges beyond the cutoff: exactly zero
contribution), since the compiled graph is valid from two of each.
"""
from pathlib import Path
from typing import Dict, Tuple, Union

import torch

from ..model import EquiForceModel
from ..model.predict import radius_graph
from .potential import DeployedPotential

MIN_SIZE = 2


class _Contract(torch.nn.Module):
    def __init__(self, model: EquiForceModel) -> None:
        super().__init__()
        self.potential = DeployedPotential(model, {})

    def forward(self, positions, species, edge_src, edge_dst, edge_shift, num_local):
        local = torch.arange(positions.shape[0], device=positions.device) < num_local
        return self.potential.contract(positions, species, edge_src, edge_dst, edge_shift, local)


def _example(model: EquiForceModel, atoms: int = 7):
    dtype = model.energy_shift.dtype
    g = torch.Generator().manual_seed(0)
    positions = torch.rand(atoms, 3, generator=g, dtype=dtype) * model.r_max
    species = torch.arange(atoms) % len(model.species)
    src, dst = torch.meshgrid(torch.arange(atoms), torch.arange(atoms), indexing="ij")
    keep = src != dst
    src, dst = src[keep][:-3].contiguous(), dst[keep][:-3].contiguous()  # E != N, N^2 (no accidental guards)
    return positions, species, src, dst, torch.zeros(len(src), 3, dtype=dtype), torch.tensor([atoms - 1])


def export_aoti(model: EquiForceModel, output: Union[str, Path], metadata: Dict[str, str]) -> Path:
    """Compile ``model`` (eval mode, its own dtype) into the AOTInductor package ``output``."""
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    from .. import ops  # noqa: F401  (operators and their fake kernels)

    module = _Contract(model.eval())
    for p in module.parameters():
        p.requires_grad_(False)
    example = _example(model)
    graph = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    atoms, edges = Dim("atoms", min=MIN_SIZE), Dim("edges", min=MIN_SIZE)
    dynamic = ({0: atoms}, {0: atoms}, {0: edges}, {0: edges}, {0: edges}, None)
    program = torch.export.export(graph, example, dynamic_shapes=dynamic, strict=False)
    output = Path(output)
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(output),
        inductor_configs={"aot_inductor.metadata": dict(metadata), "aot_inductor.package_cpp_only": False})
    return output


def pad_inputs(positions, species, edge_src, edge_dst, edge_shift, num_local: int, r_max: float):
    """Give the compiled graph at least two atoms and two edges without changing any output: a ghost
    atom far away (outside ``num_local``) and self-edges of atom 0 longer than the cutoff. Returns the
    padded inputs and the number of real atoms."""
    n = positions.shape[0]
    if n >= MIN_SIZE and edge_src.shape[0] >= MIN_SIZE:
        return (positions, species, edge_src, edge_dst, edge_shift), n
    if n < MIN_SIZE:
        far = positions.new_full((MIN_SIZE - n, 3), 1e6)
        positions = torch.cat([positions, far])
        species = torch.cat([species, species.new_zeros(MIN_SIZE - n)])
    missing = MIN_SIZE - edge_src.shape[0]
    if missing > 0:
        zero = edge_src.new_zeros(missing)
        shift = edge_shift.new_zeros(missing, 3)
        shift[:, 0] = 2.0 * r_max + 1.0
        edge_src, edge_dst = torch.cat([edge_src, zero]), torch.cat([edge_dst, zero])
        edge_shift = torch.cat([edge_shift, shift])
    return (positions, species, edge_src, edge_dst, edge_shift), n


class AOTIPotential:
    """A loaded ``.pt2`` with the TorchScript export's interface: ``forward(positions, species,
    edge_src, edge_dst, edge_shift, num_local)``, ``compute(positions, species, cell, pbc)``,
    ``metadata()``."""

    def __init__(self, path: Union[str, Path]) -> None:
        from .. import ops  # noqa: F401  (the package calls our operators)

        self.path = str(path)
        self._compiled = torch._inductor.aoti_load_package(self.path)
        self._metadata = dict(self._compiled.get_metadata())
        self.r_max = float(self._metadata.get("r_max", "nan"))
        self.dtype = getattr(torch, self._metadata.get("dtype", "float64"))

    def metadata(self) -> Dict[str, str]:
        return dict(self._metadata)

    def to(self, device) -> "AOTIPotential":
        if torch.device(device).type != "cpu":
            raise ValueError("this .pt2 was compiled for the CPU; export it on a GPU machine for CUDA")
        return self

    def __call__(self, *args):
        return self.forward(*args)

    def forward(self, positions, species, edge_src, edge_dst, edge_shift,
                num_local: int) -> Tuple[torch.Tensor, ...]:
        inputs, n = pad_inputs(positions.to(self.dtype), species.long(), edge_src.long(), edge_dst.long(),
                               edge_shift.to(self.dtype), num_local, self.r_max)
        outputs = self._compiled(*inputs, torch.tensor([int(num_local)]))
        energy, atomic, forces, virial = outputs[:4]
        out = (energy, atomic[:n], forces[:n], virial)
        return out + (outputs[4][:n],) if len(outputs) > 4 else out

    def compute(self, positions, species, cell, pbc):
        positions = positions.to(self.dtype)
        return self.forward(positions, species, *radius_graph(positions, cell, pbc, self.r_max), positions.shape[0])
