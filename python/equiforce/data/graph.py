"""Neighbour graphs of labelled structures, and batching several into one disjoint graph."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from .structures import Structure


@dataclass
class Graph:
    """One structure with its neighbour list: messages flow edge_src -> edge_dst and the edge
    vector is positions[src] - positions[dst] + edge_shift (edge_shift = S @ cell)."""

    positions: torch.Tensor  # [N, 3]
    species: torch.Tensor  # [N]
    edge_src: torch.Tensor  # [E]
    edge_dst: torch.Tensor  # [E]
    edge_shift: torch.Tensor  # [E, 3]
    cell: torch.Tensor  # [3, 3]
    periodic: bool  # all three directions periodic (stress is defined)
    energy: Optional[torch.Tensor] = None  # []
    forces: Optional[torch.Tensor] = None  # [N, 3]
    stress: Optional[torch.Tensor] = None  # [3, 3]
    pbc: Optional[torch.Tensor] = None  # [3] bool
    dipole: Optional[torch.Tensor] = None  # [3]
    polarizability: Optional[torch.Tensor] = None  # [3, 3]
    charges: Optional[torch.Tensor] = None  # [N]


def build_graph(structure: Structure, species_index, r_max: float, dtype=torch.float64) -> Graph:
    """``species_index(symbols) -> LongTensor`` maps elements to the model's species."""
    from ..model.predict import radius_graph

    pos = torch.tensor(structure.positions, dtype=torch.float64)
    cell = torch.tensor(structure.cell, dtype=torch.float64)
    src, dst, shift = radius_graph(pos, cell, torch.tensor(structure.pbc), r_max)
    as_tensor = lambda a: None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    return Graph(pos.to(dtype), species_index(structure.symbols), src, dst, shift.to(dtype),
                 cell.to(dtype), bool(np.all(structure.pbc)), as_tensor(structure.energy),
                 as_tensor(structure.forces), as_tensor(structure.stress), torch.tensor(np.asarray(structure.pbc, bool)),
                 as_tensor(structure.dipole), as_tensor(structure.polarizability), as_tensor(structure.charges))


@dataclass
class Batch:
    """Disjoint union of graphs; ``atom_graph[n]`` says which structure atom n belongs to."""

    positions: torch.Tensor
    species: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_shift: torch.Tensor
    atom_graph: torch.Tensor  # [N]
    num_graphs: int
    volume: torch.Tensor  # [B] (0 for non-periodic)
    energy: Optional[torch.Tensor] = None  # [B]
    forces: Optional[torch.Tensor] = None  # [N, 3]
    stress: Optional[torch.Tensor] = None  # [B, 3, 3]
    stress_mask: Optional[torch.Tensor] = None  # [B] bool: structures with a stress label
    cells: Optional[torch.Tensor] = None  # [B, 3, 3]
    pbcs: Optional[torch.Tensor] = None  # [B, 3] bool
    dipole: Optional[torch.Tensor] = None  # [B, 3]
    polarizability: Optional[torch.Tensor] = None  # [B, 3, 3]
    charges: Optional[torch.Tensor] = None  # [N]

    @property
    def num_atoms(self) -> torch.Tensor:
        return torch.bincount(self.atom_graph, minlength=self.num_graphs)


def collate(graphs: Sequence[Graph]) -> Batch:
    offsets = np.cumsum([0] + [len(g.species) for g in graphs])
    cat = torch.cat
    labels_all = lambda name: all(getattr(g, name) is not None for g in graphs)  # noqa: E731
    dtype = graphs[0].positions.dtype
    stress = None
    if any(g.stress is not None for g in graphs):
        stress = torch.stack([g.stress if g.stress is not None else torch.zeros(3, 3, dtype=dtype) for g in graphs])
    return Batch(
        positions=cat([g.positions for g in graphs]),
        species=cat([g.species for g in graphs]),
        edge_src=cat([g.edge_src + int(o) for g, o in zip(graphs, offsets)]),
        edge_dst=cat([g.edge_dst + int(o) for g, o in zip(graphs, offsets)]),
        edge_shift=cat([g.edge_shift for g in graphs]),
        atom_graph=cat([torch.full((len(g.species),), n, dtype=torch.long) for n, g in enumerate(graphs)]),
        num_graphs=len(graphs),
        volume=torch.stack([torch.det(g.cell).abs() if g.periodic else torch.zeros((), dtype=dtype) for g in graphs]),
        energy=torch.stack([g.energy for g in graphs]) if labels_all("energy") else None,
        forces=cat([g.forces for g in graphs]) if labels_all("forces") else None,
        stress=stress,
        stress_mask=torch.tensor([g.stress is not None for g in graphs]) if stress is not None else None,
        cells=torch.stack([g.cell for g in graphs]),
        pbcs=torch.stack([g.pbc if g.pbc is not None else torch.full((3,), g.periodic) for g in graphs]),
        dipole=torch.stack([g.dipole for g in graphs]) if labels_all("dipole") else None,
        polarizability=torch.stack([g.polarizability for g in graphs]) if labels_all("polarizability") else None,
        charges=cat([g.charges for g in graphs]) if labels_all("charges") else None,
    )
