"""The deployed-model contract as a TorchScript module (see DESIGN.md).

Inputs: positions [N, 3], species [N] (indices into ``species``), and either an edge list
(edge_src, edge_dst, edge_shift = S @ cell; hosts with their own neighbour lists, e.g. LAMMPS with
ghost atoms) or cell + pbc (hosts without: ASE, OpenMM), and the number of local atoms.
Outputs: energy of the local atoms, per-atom energies [N], forces on all N atoms, virial [3, 3]
from edge forces (correct with ghosts and periodic images), and per-atom virials [N, 3, 3] — each
edge's ``-vec (x) dE/dvec`` split half and half between its two atoms, so they sum to the virial
(what LAMMPS's ``compute stress/atom`` reads; format version 2).

Hosts with ghost atoms may also pass ``layer_sizes`` [2, num_layers] (int64): nodes and edges that
each layer updates and uses, with nodes ordered by message-passing hops from the local atoms and
edges by their receiver's hops (see ``EquiForceModel.forward``); the LAMMPS pair style does, so that
ghosts only cost the layers that reach them. The AOTInductor export ignores it.

Models with long-range electrostatics (metadata ``long_range=ewald``) need the whole periodic
structure: ``forward`` (host edge lists, ghost atoms) refuses them and hosts call ``compute``. Their
per-atom virials are the local part's plus the Coulomb virial spread evenly over the atoms (it has
no unique per-atom split), so they still sum to the virial. ``properties(positions, species, cell,
pbc)`` returns the heads a model has (``dipole [3]``, ``polarizability [3, 3]``, ``charges [N]``).
"""
from typing import Dict, List, Optional, Tuple

import torch

from ..model import EquiForceModel
from ..model.electrostatics import ewald_partial_structure, ewald_share
from ..model.predict import edge_virials_per_atom, radius_graph

FORMAT_VERSION = 2
Outputs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def layer_lists(layer_sizes: Optional[torch.Tensor], num_layers: int, num_local: int, num_nodes: int,
                num_edges: int) -> Tuple[Optional[List[int]], Optional[List[int]]]:
    """``layer_sizes [2, num_layers]`` (or None) as the model's per-layer node and edge counts, checked."""
    if layer_sizes is None:
        return None, None
    sizes = layer_sizes.to(torch.long).cpu()
    if sizes.dim() != 2 or sizes.shape[0] != 2 or sizes.shape[1] != num_layers:
        raise ValueError("layer_sizes must have shape [2, num_layers]: nodes and edges per layer")
    nodes: List[int] = sizes[0].tolist()
    edges: List[int] = sizes[1].tolist()
    if nodes[-1] < num_local or nodes[0] > num_nodes or edges[0] > num_edges:
        raise ValueError("layer_sizes: the last layer must keep every local atom, and no layer more nodes "
                         "or edges than given")
    return nodes, edges


def stage_forces(vec: torch.Tensor, edge_grad: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                 num_nodes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forces on the nodes [N, 3], the virial [3, 3] and per-atom virials [N, 3, 3] from dE/d(edge vector):
    what :meth:`EquiForceModel.outputs` derives, for hosts that ran the stages themselves."""
    g = edge_grad.to(vec.dtype)
    forces = -torch.zeros(num_nodes, 3, dtype=g.dtype, device=g.device).index_add(0, edge_src, g).index_add(
        0, edge_dst, -g)
    virial = -(vec.transpose(0, 1) @ g)
    start = torch.zeros(num_nodes, 9, dtype=g.dtype, device=g.device)
    return forces, virial, edge_virials_per_atom(vec, g, edge_src, edge_dst, start)


class DeployedPotential(torch.nn.Module):
    species: List[str]
    r_max: float
    num_layers: int
    long_range: bool
    _metadata: Dict[str, str]

    def __init__(self, model: EquiForceModel, metadata: Dict[str, str]) -> None:
        super().__init__()
        self.model = model
        self.species = list(model.species)
        self.r_max = float(model.r_max)
        self.num_layers = int(model.num_layers)
        self.long_range = model.long_range != "none"
        self._metadata = dict(metadata)

    @torch.jit.export
    def metadata(self) -> Dict[str, str]:
        return self._metadata

    def forward(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                edge_dst: torch.Tensor, edge_shift: torch.Tensor,
                num_local: int, layer_sizes: Optional[torch.Tensor] = None) -> Outputs:
        """Messages flow edge_src -> edge_dst; the edge vector is pos[src] - pos[dst] + edge_shift.
        Returns (energy of atoms [0, num_local), per-atom energies [N], forces [N, 3], virial [3, 3],
        per-atom virials [N, 3, 3])."""
        if self.long_range:
            raise ValueError("this model has long-range electrostatics, which need the whole periodic structure: "
                             "call compute(positions, species, cell, pbc) (in LAMMPS: run it on one MPI rank)")
        local = (torch.arange(positions.shape[0], device=positions.device) < num_local)
        nodes, edges = layer_lists(layer_sizes, self.num_layers, num_local, positions.shape[0], edge_src.shape[0])
        return self.contract(positions, species, edge_src, edge_dst, edge_shift, local, nodes, edges)

    def contract(self, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                 edge_dst: torch.Tensor, edge_shift: torch.Tensor,
                 local: torch.Tensor, layer_nodes: Optional[List[int]] = None,
                 layer_edges: Optional[List[int]] = None, cell: Optional[torch.Tensor] = None,
                 pbc: Optional[torch.Tensor] = None) -> Outputs:
        """The contract's outputs, ``local[N]`` (bool) marking the atoms whose energy counts; ``cell`` and
        ``pbc`` for long-range models (the whole structure). One body for the TorchScript and the
        AOTInductor exports and for committees: :meth:`EquiForceModel.outputs`."""
        model = self.model
        dtype = model.energy_shift.dtype
        n = positions.shape[0]
        cells = torch.zeros(1, 3, 3, dtype=dtype, device=positions.device) if cell is None else \
            cell.to(positions.device, dtype).reshape(1, 3, 3)
        pbcs = torch.zeros(1, 3, dtype=torch.bool, device=positions.device) if pbc is None else \
            pbc.to(positions.device, torch.bool).reshape(1, 3)
        out = model.outputs(positions.to(dtype), species, edge_src, edge_dst, edge_shift.to(dtype),
                            torch.zeros(n, dtype=torch.long, device=positions.device), 1, cells, pbcs,
                            forces=True, virial=True, atom_virials=True, local=local, layer_nodes=layer_nodes,
                            layer_edges=layer_edges)
        return (out["energy"][0].detach(), out["energies"].detach(), out["forces"].detach(),
                out["virial"][0].detach(), out["atom_virials"].detach())

    # The stages (DESIGN.md: part of the contract), for hosts that exchange node features between layers
    # instead of recomputing a halo (LAMMPS on several ranks, csrc/runtime Model::compute_exchanged). Every
    # method takes the committee member first (0 here); inputs and outputs are in the model's dtype and
    # differentiable, so the host's autograd runs the backward layer by layer. In order:
    #   sh, radial = stage_edges(m, vec)                 vec = pos[src] - pos[dst] + shift, [E, 3]
    #   x = stage_embedding(m, species)                  [N, width]
    #   x = stage_layer(m, k, x, species, sh, radial, src, dst, n)   -> the first n nodes' features [n, width_k]
    #       (the host fills the ghost rows of the next layer's input from their owners)
    #   e = stage_readout(m, x, species)                 per-atom energies of x's rows
    #   forces, virial, atom_virials = stage_forces(vec, dE/dvec, src, dst, N)
    # Metadata ``node_widths`` gives each member's layer widths without running the model.
    @torch.jit.export
    def stage_edges(self, member: int, vec: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.model.edge_features(vec)

    @torch.jit.export
    def stage_embedding(self, member: int, species: torch.Tensor) -> torch.Tensor:
        return self.model.embed(species, self.model.energy_shift.dtype)[0]

    @torch.jit.export
    def stage_layer(self, member: int, layer: int, x: torch.Tensor, species: torch.Tensor, sh: torch.Tensor,
                    radial: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor, num_out: int) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(species, len(self.species)).to(x.dtype)
        for k, interaction in enumerate(self.model.layers):
            if k == layer:
                return interaction(x, one_hot, sh, radial, edge_src, edge_dst, num_out)
        raise ValueError("stage_layer: no such layer")

    @torch.jit.export
    def stage_readout(self, member: int, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.model.atomic_energies(x, species[:x.shape[0]])

    @torch.jit.export
    def stage_forces(self, vec: torch.Tensor, edge_grad: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                     num_nodes: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return stage_forces(vec, edge_grad, edge_src, edge_dst, num_nodes)

    # Long-range models (learned charges + Coulomb): the last layer's features also give each atom a raw
    # charge, and the whole structure's Coulomb term comes from every atom's position and raw charge
    # (hosts gather them from all processes):
    #   raw = stage_charges(m, x)                                  [n], differentiable
    #   energies, forces, virial, dE/draw = stage_coulomb(positions [N, 3], raw [N], cell, pbc)
    # energies are each atom's 0.5 q_i phi_i (q: raw shifted so that they sum to total_charge), forces and
    # the virial are -dE/dr and -dE/dstrain at fixed raw charges; dE/draw goes into the model's backward.
    @torch.jit.export
    def stage_charges(self, member: int, x: torch.Tensor) -> torch.Tensor:
        return self.model.raw_charges(x)

    @torch.jit.export
    def stage_coulomb(self, positions: torch.Tensor, raw: torch.Tensor, cell: torch.Tensor,
                      pbc: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        model = self.model
        dtype = model.energy_shift.dtype
        pos = positions.to(dtype).detach().requires_grad_(True)
        raw_in = raw.to(dtype).detach().requires_grad_(True)
        strain = torch.zeros(3, 3, dtype=dtype, device=pos.device).requires_grad_(True)
        q = model.charges(raw_in.unsqueeze(-1), torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device), 1,
                          raw_charges=True)
        box = cell.to(pos.device, dtype)
        phi = model.coulomb(pos + pos @ strain, q, box + box @ strain, pbc.to(torch.bool))
        energies = 0.5 * q * phi
        grads = torch.autograd.grad([energies.sum()], [pos, strain, raw_in], allow_unused=True)
        g_pos, g_strain, g_raw = grads[0], grads[1], grads[2]
        forces = torch.zeros_like(pos) if g_pos is None else -g_pos
        virial = torch.zeros_like(strain) if g_strain is None else -g_strain
        return energies.detach(), forces, virial, torch.zeros_like(raw_in) if g_raw is None else g_raw

    # Periodic cells on several processes need no gathering: Ewald's structure factor is a sum over atoms and its
    # real-space part reaches only ewald_cutoff (metadata), so each process holds its atoms and ghosts that far:
    #   q, partial = stage_ewald_structure(positions [n, 3], raw [n], totals, cell)
    #       totals [2]: every process's sum of raw charges and number of atoms; q: the charges (summing to
    #       total_charge); partial [2K + 1]: the structure factor of these atoms -> summed over processes
    #   phi, forces, virial_pairs, virial_structure = stage_ewald(positions [N, 3], n, q of all N, pair_src,
    #       pair_dst, pair_shift, the summed structure factor, cell)          (equiforce.model.electrostatics)
    # energies are 0.5 q_i phi_i, dE/draw_i = phi_i - mean(phi) over all atoms (the shift's chain rule).
    @torch.jit.export
    def stage_ewald_structure(self, positions: torch.Tensor, raw: torch.Tensor, totals: torch.Tensor,
                              cell: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        model = self.model
        dtype = model.energy_shift.dtype
        totals = totals.to(raw.device, dtype)
        q = (raw.to(dtype) - (totals[0] - model.total_charge) / totals[1]).detach()  # as EquiForceModel.charges
        return q, ewald_partial_structure(positions.to(dtype).detach(), q, cell.to(positions.device, dtype),
                                          model.ewald_cutoff, model.ewald_accuracy)

    @torch.jit.export
    def stage_ewald(self, positions: torch.Tensor, num_local: int, charges: torch.Tensor, pair_src: torch.Tensor,
                    pair_dst: torch.Tensor, pair_shift: torch.Tensor, structure: torch.Tensor,
                    cell: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        model = self.model
        dtype = model.energy_shift.dtype
        return ewald_share(positions.to(dtype), num_local, charges.to(dtype), pair_src, pair_dst, pair_shift.to(dtype),
                           structure.to(dtype), cell.to(positions.device, dtype), model.ewald_cutoff,
                           model.ewald_accuracy)

    @torch.jit.export
    def compute(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> Outputs:
        """The same outputs from cell [3, 3] (rows are lattice vectors) and pbc [3] (bool), with the
        model's own neighbour list; every atom is local."""
        dtype = self.model.energy_shift.dtype
        positions = positions.to(dtype)
        src, dst, shift = radius_graph(positions, cell.to(dtype), pbc, self.r_max)
        local = torch.ones(positions.shape[0], dtype=torch.bool, device=positions.device)
        return self.contract(positions, species, src, dst, shift, local, None, None, cell, pbc)

    @torch.jit.export
    def properties(self, positions: torch.Tensor, species: torch.Tensor, cell: torch.Tensor,
                   pbc: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The model's extra outputs for one structure: ``dipole`` [3] (e A), ``polarizability``
        [3, 3] and ``charges`` [N] (e), those it has (metadata ``outputs``)."""
        dtype = self.model.energy_shift.dtype
        positions = positions.to(dtype)
        cell = cell.to(dtype)
        src, dst, shift = radius_graph(positions, cell, pbc, self.r_max)
        out = self.model.outputs(positions, species, src, dst, shift,
                                 torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device), 1,
                                 cell.unsqueeze(0), pbc.to(torch.bool).reshape(1, 3), False, False, False)
        result: Dict[str, torch.Tensor] = {}
        for name in ["dipole", "polarizability"]:
            if name in out:
                result[name] = out[name][0].detach()
        if "charges" in out:
            result["charges"] = out["charges"].detach()
        return result
