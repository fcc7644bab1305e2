"""Committees: several independently trained models exported as one file whose spread is an uncertainty.

    equiforce deploy run1/best.pt run2/best.pt run3/best.pt -o committee.pt

The file follows the deployed-model contract with the members' *mean* energy, per-atom energies,
forces, virial and per-atom virials, so every host runs it as it runs one model. Its extra methods
give the members' own energies and forces, from which hosts take the spread:

- ``committee(positions, species, edge_src, edge_dst, edge_shift, num_local, layer_sizes)`` and
  ``compute_committee(positions, species, cell, pbc)``: the five contract outputs, then the members'
  energies of the local atoms ``[M]`` and their forces on all N atoms ``[M, N, 3]`` (one evaluation of
  each member; the mean is not computed twice);
- ``uncertainty(positions, species, cell, pbc)``: ``energy``, ``forces`` and the spreads below.

``energy_std`` is the members' sample standard deviation (ddof 1) of the structure's energy, and
``force_std[i]`` the norm of the per-component sample standard deviation of atom i's force,
``sqrt(sum_d var_m F_m,id)`` — a scalar per atom that does not change under rotations, reflections,
translations or permutations. Hosts with ghost atoms (LAMMPS over MPI) must first sum each member's
forces on periodic images and ghosts into their owners, then take the spread: the spread of summed
forces is not the sum of spreads.
"""
from typing import Dict, List, Optional, Tuple

import torch

from ..model import EquiForceModel
from ..model.predict import radius_graph
from .potential import DeployedPotential, Outputs, layer_lists, stage_forces

CommitteeOutputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                         torch.Tensor]


def committee_spread(member_energies: torch.Tensor, member_forces: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(energy_std [], force_std [N])`` from the members' energies ``[M]`` and forces ``[M, N, 3]``."""
    energy_std = torch.var(member_energies, dim=0, unbiased=True).sqrt()
    force_std = torch.var(member_forces, dim=0, unbiased=True).sum(-1).sqrt()
    return energy_std, force_std


def check_members(models: List[EquiForceModel], names: List[str]) -> None:
    """Committee members must agree on everything a host relies on; raise ValueError naming the first
    disagreement."""
    if len(models) < 2:
        raise ValueError("a committee needs at least two trained models (three or more give a useful spread)")
    first, name0 = models[0], names[0]
    for model, name in zip(models[1:], names[1:]):
        for what, a, b in (("species (in order)", list(first.species), list(model.species)),
                           ("cutoff r_max", float(first.r_max), float(model.r_max)),
                           ("number of message-passing layers", first.num_layers, model.num_layers),
                           ("dtype", first.energy_shift.dtype, model.energy_shift.dtype)):
            if a != b:
                raise ValueError(f"committee members must share their {what}: {name0} has {a}, {name} has {b}; "
                                 "train every member with the same model settings (only the seed, the data "
                                 "order or subset and the number of features may differ)")
    for model, name in zip(models, names):
        if model.long_range != "none" or model.dipole or model.polarizability:
            raise ValueError(f"{name} has long-range, dipole or polarizability heads; committees carry energy "
                             "and forces of local models only: deploy such models one by one")


class CommitteePotential(torch.nn.Module):
    species: List[str]
    r_max: float
    num_layers: int
    _metadata: Dict[str, str]

    def __init__(self, models: List[EquiForceModel], metadata: Dict[str, str]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList([DeployedPotential(m, metadata) for m in models])
        self.species = list(models[0].species)
        self.r_max = float(models[0].r_max)
        self.num_layers = int(models[0].num_layers)
        self._metadata = dict(metadata)
        self.register_buffer("_dtype", torch.zeros(0, dtype=models[0].energy_shift.dtype))

    @torch.jit.export
    def metadata(self) -> Dict[str, str]:
        return self._metadata

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                edge_dst: torch.Tensor, edge_shift: torch.Tensor, num_local: int,
                layer_sizes: Optional[torch.Tensor] = None) -> Outputs:
        """The deployed-model contract with the members' means (see DeployedPotential.forward)."""
        out = self.committee(positions, species, edge_src, edge_dst, edge_shift, num_local, layer_sizes)
        return out[0], out[1], out[2], out[3], out[4]

    @torch.jit.export
    def committee(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                  edge_dst: torch.Tensor, edge_shift: torch.Tensor, num_local: int,
                  layer_sizes: Optional[torch.Tensor] = None) -> CommitteeOutputs:
        """The contract's five outputs (means), then the members' energies ``[M]`` and forces ``[M, N, 3]``."""
        local = torch.arange(positions.shape[0], device=positions.device) < num_local
        nodes, edges = layer_lists(layer_sizes, self.num_layers, num_local, positions.shape[0], edge_src.shape[0])
        energy, atomic, forces, virial, atom_virial = [], [], [], [], []
        for member in self.members:
            out = member.contract(positions, species, edge_src, edge_dst, edge_shift, local, nodes, edges)
            energy.append(out[0])
            atomic.append(out[1])
            forces.append(out[2])
            virial.append(out[3])
            atom_virial.append(out[4])
        member_energies, member_forces = torch.stack(energy), torch.stack(forces)
        return (member_energies.mean(0), torch.stack(atomic).mean(0), member_forces.mean(0),
                torch.stack(virial).mean(0), torch.stack(atom_virial).mean(0), member_energies, member_forces)

    # The stages of member m (DeployedPotential's, see there).
    @torch.jit.export
    def stage_edges(self, member: int, vec: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        for m, potential in enumerate(self.members):
            if m == member:
                return potential.stage_edges(0, vec)
        raise ValueError("stage_edges: no such committee member")

    @torch.jit.export
    def stage_embedding(self, member: int, species: torch.Tensor) -> torch.Tensor:
        for m, potential in enumerate(self.members):
            if m == member:
                return potential.stage_embedding(0, species)
        raise ValueError("stage_embedding: no such committee member")

    @torch.jit.export
    def stage_layer(self, member: int, layer: int, x: torch.Tensor, species: torch.Tensor, sh: torch.Tensor,
                    radial: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor, num_out: int) -> torch.Tensor:
        for m, potential in enumerate(self.members):
            if m == member:
                return potential.stage_layer(0, layer, x, species, sh, radial, edge_src, edge_dst, num_out)
        raise ValueError("stage_layer: no such committee member")

    @torch.jit.export
    def stage_readout(self, member: int, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        for m, potential in enumerate(self.members):
            if m == member:
                return potential.stage_readout(0, x, species)
        raise ValueError("stage_readout: no such committee member")

    @torch.jit.export
    def stage_forces(self, vec: torch.Tensor, edge_grad: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                     num_nodes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return stage_forces(vec, edge_grad, edge_src, edge_dst, num_nodes)

    @torch.jit.export
    def compute(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> Outputs:
        out = self.compute_committee(positions, species, cell, pbc)
        return out[0], out[1], out[2], out[3], out[4]

    @torch.jit.export
    def compute_committee(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                          pbc: torch.Tensor) -> CommitteeOutputs:
        """``committee`` on the model's own neighbour list from cell [3, 3] and pbc [3]."""
        positions = positions.to(self._dtype.dtype)
        src, dst, shift = radius_graph(positions, cell, pbc, self.r_max)
        return self.committee(positions, species, src, dst, shift, positions.shape[0], None)

    @torch.jit.export
    def uncertainty(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                    pbc: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Mean ``energy`` and ``forces``, ``energy_std`` and per-atom ``force_std`` of one structure."""
        out = self.compute_committee(positions, species, cell, pbc)
        energy_std, force_std = committee_spread(out[5], out[6])
        return {"energy": out[0], "forces": out[2], "energy_std": energy_std, "force_std": force_std,
                "member_energies": out[5]}
