"""The deployed-model contract as a TorchScript module (see DESIGN.md).

Inputs: positions [N, 3], species [N] (indices into ``species``), and either an edge list
(edge_src, edge_dst, edge_shift = S @ cell; hosts with their own neighbour lists, e.g. LAMMPS with
ghost atoms) or cell + pbc (hosts without: ASE, OpenMM), and the number of local atoms.
Outputs: energy of the local atoms, per-atom energies [N], forces on all N atoms, virial [3, 3]
from edge forces (correct with ghosts and periodic images), and per-atom virials [N, 3, 3] — each
edge's ``-vec (x) dE/dvec`` split half and half between its two atoms, so they sum to the virial
(what LAMMPS's ``compute stress/atom`` reads; format version 2).
"""
from typing import Dict, List, Tuple

import torch

from ..model import EquiForceModel

FORMAT_VERSION = 2
Outputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class DeployedPotential(torch.nn.Module):
    species: List[str]
    r_max: float
    num_layers: int
    _metadata: Dict[str, str]

    def __init__(self, model: EquiForceModel, metadata: Dict[str, str]) -> None:
        super().__init__()
        self.model = model
        self.species = list(model.species)
        self.r_max = float(model.r_max)
        self.num_layers = int(model.num_layers)
        self._metadata = dict(metadata)

    @torch.jit.export
    def metadata(self) -> Dict[str, str]:
        return self._metadata

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                edge_dst: torch.Tensor, edge_shift: torch.Tensor,
                num_local: int) -> Outputs:
        """Messages flow edge_src -> edge_dst; the edge vector is pos[src] - pos[dst] + edge_shift.
        Returns (energy of atoms [0, num_local), per-atom energies [N], forces [N, 3], virial [3, 3],
        per-atom virials [N, 3, 3])."""
        local = (torch.arange(positions.shape[0], device=positions.device) < num_local)
        return self.contract(positions, species, edge_src, edge_dst, edge_shift, local)

    def contract(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                 edge_dst: torch.Tensor, edge_shift: torch.Tensor,
                 local: torch.Tensor) -> Outputs:
        """The contract's outputs, ``local[N]`` (bool) marking the atoms whose energy counts. One body
        for the TorchScript and the AOTInductor exports."""
        model = self.model
        dtype = model.energy_shift.dtype
        positions = positions.to(dtype)
        vec = (positions[edge_src] - positions[edge_dst] + edge_shift.to(dtype)).detach().requires_grad_(True)
        atomic = model(vec, species, edge_src, edge_dst)
        energy = (atomic * local.to(dtype)).sum()
        grads = torch.autograd.grad([energy], [vec], allow_unused=True)
        g = grads[0]
        if g is None:
            g = torch.zeros_like(vec)
        grad_pos = torch.zeros_like(positions).index_add(0, edge_src, g).index_add(0, edge_dst, -g)
        vec = vec.detach()
        virial = -(vec.transpose(0, 1) @ g)
        half = (-0.5 * vec.unsqueeze(2) * g.unsqueeze(1)).reshape(-1, 9)
        atom_virial = torch.zeros(positions.shape[0], 9, dtype=dtype, device=positions.device)
        atom_virial = atom_virial.index_add(0, edge_src, half).index_add(0, edge_dst, half).reshape(-1, 3, 3)
        return energy.detach(), atomic.detach(), -grad_pos, virial, atom_virial

    @torch.jit.export
    def compute(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> Outputs:
        """The same outputs from cell [3, 3] (rows are lattice vectors) and pbc [3] (bool), with the
        model's own neighbour list; every atom is local."""
        dtype = self.model.energy_shift.dtype
        positions = positions.to(dtype)
        cell = cell.to(dtype)
        i, j, s = torch.ops.equiforce.neighbor_list(positions.detach(), cell.detach(), pbc, self.r_max, False)
        return self.forward(positions, species, j, i, s.to(dtype) @ cell, positions.shape[0])
