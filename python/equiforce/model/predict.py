"""What every caller of the model shares: the graph of a structure, per-atom virials, stress.

The derivatives themselves (forces, virial, per-atom virials, edge gradients) come from one
function, :meth:`EquiForceModel.outputs`; training (:func:`predict`), the Python API
(:func:`evaluate`), the exported contract (TorchScript and AOTInductor) and committees call it.
The helpers here are TorchScript-compatible, so the exported model uses the same ones.
"""
from typing import Dict, Optional, Tuple

import torch


def radius_graph(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                 r_max: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(edge_src, edge_dst, edge_shift)`` of one structure: every pair closer than ``r_max`` (periodic
    images included), messages flowing from the neighbour to the centre, the edge vector
    ``positions[src] - positions[dst] + edge_shift`` with ``edge_shift = S @ cell`` (the neighbour
    list's pairs (i, j, S) have D = pos[j] - pos[i] + S @ cell, ASE's convention, so src = j, dst = i)."""
    i, j, s = torch.ops.equiforce.neighbor_list(positions.detach(), cell.detach().cpu(), pbc.cpu().to(torch.bool),
                                                r_max, False)
    return j, i, s.to(positions.dtype) @ cell.to(positions.device, positions.dtype)


def edge_virials_per_atom(vec: torch.Tensor, edge_grad: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                          start: torch.Tensor) -> torch.Tensor:
    """``start [N, 9]`` plus each edge's virial ``-vec (x) dE/dvec``, half to each of its atoms: [N, 3, 3]
    (what LAMMPS's ``compute stress/atom`` reads; they sum to the virial)."""
    half = (-0.5 * vec.unsqueeze(2) * edge_grad.unsqueeze(1)).reshape(-1, 9)
    return start.index_add(0, edge_src, half).index_add(0, edge_dst, half).reshape(-1, 3, 3)


def stress_from_virial(virial: torch.Tensor, volume: torch.Tensor) -> torch.Tensor:
    """Stress (eV/A^3, ASE's sign: dE/dstrain / volume) from virials ``[..., 3, 3]`` and volumes ``[...]``;
    a zero volume (no periodic cell) is an error."""
    if bool((volume <= 0).any()):
        raise ValueError("stress needs a cell periodic in all three directions with non-zero volume")
    return -virial / volume.unsqueeze(-1).unsqueeze(-1)


def evaluate(model, positions: torch.Tensor, species: torch.Tensor, cell: Optional[torch.Tensor] = None, pbc=False,
             forces: bool = True, stress: bool = False) -> Dict[str, torch.Tensor]:
    """Energy (eV), per-atom energies, forces (eV/A) and, for a periodic cell, the virial (eV) and
    stress (eV/A^3) of one structure; with the model's heads also ``charges``, ``dipole`` and
    ``polarizability``. Bad input (NaN, overlapping atoms, a degenerate periodic cell) is a ValueError."""
    from .inputs import check_structure

    dtype = model.energy_shift.dtype
    positions = positions.to(dtype).detach()
    device = positions.device
    cell = torch.zeros(3, 3, dtype=dtype, device=device) if cell is None else \
        torch.as_tensor(cell, dtype=dtype, device=device)
    pbc = torch.as_tensor(pbc, dtype=torch.bool).expand(3)
    check_structure(positions, cell, pbc)
    src, dst, shift = radius_graph(positions, cell, pbc, model.r_max)
    out = model.outputs(positions, species, src, dst, shift, torch.zeros(positions.shape[0], dtype=torch.long,
                        device=device), 1, cell.unsqueeze(0), pbc.unsqueeze(0), forces=forces or stress, virial=stress)
    result = {"energy": out["energy"][0].detach(), "energies": out["energies"].detach()}
    for name in ("charges", "forces"):
        if name in out:
            result[name] = out[name].detach()
    for name in ("dipole", "polarizability"):
        if name in out:
            result[name] = out[name][0].detach()
    if stress:
        result["virial"] = out["virial"][0].detach()
        result["stress"] = stress_from_virial(result["virial"], torch.abs(torch.det(cell)))
    if not forces:
        result.pop("forces", None)
    return result


def predict(model, batch, forces: bool = True, stress: bool = False, create_graph: bool = False):
    """Energies ``[B]``, forces ``[N, 3]``, stress ``[B, 3, 3]`` and, for models with those heads,
    ``dipole [B, 3]``, ``polarizability [B, 3, 3]`` and ``charges [N]`` of a batch
    (:class:`equiforce.data.Batch`); ``create_graph`` keeps the graph of the derivatives so a
    force/stress loss can be trained on. Structures without a periodic cell get a placeholder stress
    (their stress labels are masked out)."""
    out = model.outputs(batch.positions, batch.species, batch.edge_src, batch.edge_dst, batch.edge_shift,
                        batch.atom_graph, batch.num_graphs, batch.cells, batch.pbcs, forces=forces,
                        virial=stress, create_graph=create_graph)
    if stress:
        out["stress"] = stress_from_virial(out["virial"], torch.where(batch.volume > 0, batch.volume,
                                                                      torch.ones_like(batch.volume)))
    return out
