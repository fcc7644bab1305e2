"""Statistics of the training set that fix the model's normalisation before training."""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data import Graph


def average_num_neighbors(graphs: Sequence[Graph]) -> float:
    atoms = sum(len(g.species) for g in graphs)
    edges = sum(len(g.edge_src) for g in graphs)
    return max(edges / max(atoms, 1), 1.0)


def fit_energy_shift_and_scale(graphs: Sequence[Graph], num_species: int,
                               isolated_energies: Optional[List[Optional[float]]] = None):
    """Per-species energy shift (isolated-atom energies where given, plus a least-squares fit of the
    remaining energy on the composition) and a common scale (RMS of the force components, else of the
    per-atom energy residuals). Returns (shift[S], scale[S]) as float64 tensors."""
    counts = np.zeros((len(graphs), num_species))
    energies = np.zeros(len(graphs))
    for n, g in enumerate(graphs):
        counts[n] = np.bincount(g.species.numpy(), minlength=num_species)
        energies[n] = float(g.energy) if g.energy is not None else np.nan
    shift = np.zeros(num_species)
    if isolated_energies is not None:
        for s, e in enumerate(isolated_energies):
            if e is not None:
                shift[s] = e
    has_energy = np.isfinite(energies)
    if has_energy.any():
        # The rest of the energy, per species, by ridge-regularised least squares on the composition
        # (unique even when every structure has one composition, as in MD data of one molecule): the
        # network then learns fluctuations about the data's mean, not the whole atomisation energy,
        # which costs float32 precision and training time. Isolated-atom energies stay the base.
        a = counts[has_energy]
        rest = energies[has_energy] - a @ shift
        ridge = 1e-8 * max(float(np.trace(a.T @ a)), 1.0)
        shift += np.linalg.solve(a.T @ a + ridge * np.eye(num_species), a.T @ rest)
    forces = [g.forces.numpy().ravel() for g in graphs if g.forces is not None]
    if forces:
        scale = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    elif has_energy.any():
        residual = (energies[has_energy] - counts[has_energy] @ shift) / counts[has_energy].sum(1)
        scale = float(np.std(residual))
    else:
        scale = 1.0
    scale = scale if np.isfinite(scale) and scale > 1e-8 else 1.0
    return torch.tensor(shift), torch.full((num_species,), scale, dtype=torch.float64)
