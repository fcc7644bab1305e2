"""``equiforce select``: the frames of a trajectory a committee is least sure about, for labelling.

    equiforce select md.xyz --model committee.pt -n 20 -o picked.xyz --exclude train.xyz

Frames are scored by the committee's largest per-atom ``force_std`` (``--score max``, default), its
mean over atoms (``mean``) or ``energy_std`` per atom (``energy``), and taken from the most uncertain
down. A frame is skipped when it is a *symmetry copy* — the same structure rotated, reflected,
translated or with like atoms relabelled — of a frame already picked or of one in ``--exclude``
(e.g. the training set): an E(3)-equivariant model predicts exactly the same for it, so labelling
it teaches the model nothing.

Copies are found in two steps. First the invariant fingerprint: the sorted interatomic distances of
each pair of species (minimum-image for periodic frames, which also need the same cell volume)
agree within ``tolerance`` (A). Then, for molecules, the atoms are matched species by species on
their own sorted distances (Hungarian assignment) and the best orthogonal transformation
(reflections allowed) must map one frame onto the other within ``tolerance`` RMSD; for periodic
frames the matched atoms' distance lists must agree within ``tolerance``.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def _distances(atoms) -> np.ndarray:
    if atoms.pbc.any():
        return atoms.get_all_distances(mic=True)
    diff = atoms.positions[:, None, :] - atoms.positions[None, :, :]
    return np.sqrt((diff ** 2).sum(-1))


@dataclass
class Fingerprint:
    """E(3)- and permutation-invariant description of one frame (see the module docstring)."""

    key: Tuple  # composition (and periodicity)
    vector: np.ndarray  # sorted distances of each species pair, concatenated
    per_atom: Dict[str, np.ndarray]  # species -> [n_s, N - 1]: each atom's distances, sorted per species
    atoms_index: Dict[str, np.ndarray]  # species -> indices of its atoms
    positions: np.ndarray
    volume: float

    @classmethod
    def of(cls, atoms) -> "Fingerprint":
        symbols = np.array(atoms.get_chemical_symbols())
        species = sorted(set(symbols))
        d = _distances(atoms)
        index = {s: np.flatnonzero(symbols == s) for s in species}
        parts = []
        for a_n, a in enumerate(species):
            for b in species[a_n:]:
                block = d[np.ix_(index[a], index[b])]
                values = block[np.triu_indices(len(index[a]), 1)] if a == b else block.ravel()
                parts.append(np.sort(values))
        per_atom = {}
        for s in species:
            rows = []
            for i in index[s]:
                rows.append(np.concatenate([np.sort(d[i, index[t][index[t] != i]]) for t in species]))
            per_atom[s] = np.array(rows)
        periodic = tuple(bool(p) for p in atoms.pbc)
        volume = abs(float(np.linalg.det(atoms.cell.array))) if all(periodic) else 0.0
        key = (tuple((s, len(index[s])) for s in species), periodic)
        return cls(key, np.concatenate(parts) if parts else np.zeros(0), per_atom, index,
                   atoms.positions.copy(), volume)


def _assignment(a: Fingerprint, b: Fingerprint) -> Tuple[np.ndarray, np.ndarray, float]:
    """Atoms of ``b`` matched to those of ``a`` species by species (order of ``a``), and the largest
    descriptor difference of the matched pairs."""
    from scipy.optimize import linear_sum_assignment

    order_a, order_b, worst = [], [], 0.0
    for s, rows_a in a.per_atom.items():
        rows_b = b.per_atom[s]
        cost = np.abs(rows_a[:, None, :] - rows_b[None, :, :]).max(-1)
        r, c = linear_sum_assignment(cost)
        worst = max(worst, float(cost[r, c].max()))
        order_a.append(a.atoms_index[s][r])
        order_b.append(b.atoms_index[s][c])
    return np.concatenate(order_a), np.concatenate(order_b), worst


def is_symmetry_copy(a: Fingerprint, b: Fingerprint, tolerance: float) -> bool:
    """Whether ``b`` is ``a`` rotated, reflected, translated and/or with like atoms permuted."""
    if a.key != b.key or abs(a.volume - b.volume) > tolerance * max(1.0, a.volume) ** (2 / 3):
        return False
    if a.vector.size and np.abs(a.vector - b.vector).max() > tolerance:
        return False
    order_a, order_b, worst = _assignment(a, b)
    if worst > tolerance:
        return False
    if any(a.key[1]):  # periodic: the matched atoms' environments agree
        return True
    x = a.positions[order_a] - a.positions[order_a].mean(0)
    y = b.positions[order_b] - b.positions[order_b].mean(0)
    u, _, vt = np.linalg.svd(y.T @ x)  # orthogonal Procrustes, reflections allowed: y @ (u vt) ~ x
    rmsd = float(np.sqrt(((y @ (u @ vt) - x) ** 2).sum(1).mean()))
    return rmsd <= tolerance


@dataclass
class CopyFinder:
    """Fingerprints seen so far, each with where it came from, grouped by composition, with a fast
    vectorised first test."""

    tolerance: float
    groups: Dict[Tuple, List[Tuple[Fingerprint, str]]] = field(default_factory=dict)
    stacks: Dict[Tuple, np.ndarray] = field(default_factory=dict)

    def add(self, fp: Fingerprint, origin: str) -> None:
        self.groups.setdefault(fp.key, []).append((fp, origin))
        self.stacks.pop(fp.key, None)

    def copy_of(self, fp: Fingerprint) -> Optional[str]:
        """The origin of a stored frame that ``fp`` is a symmetry copy of, or None."""
        group = self.groups.get(fp.key)
        if not group:
            return None
        if fp.key not in self.stacks:
            self.stacks[fp.key] = np.stack([g.vector for g, _ in group])
        stack = self.stacks[fp.key]
        close = np.flatnonzero(np.abs(stack - fp.vector).max(1) <= self.tolerance) if stack.shape[1] else \
            np.arange(len(group))
        for n in close:
            if is_symmetry_copy(group[n][0], fp, self.tolerance):
                return group[n][1]
        return None


SCORES = ("max", "mean", "energy")


def committee_scores(frames: Sequence, model, meta: dict, score: str = "max") -> List[dict]:
    """Per frame: ``energy_std`` (eV), ``force_std`` [N] (eV/A) and the ranking ``score``."""
    import torch

    if "committee_size" not in meta:
        raise ValueError("the model is a single model; select needs a committee: equiforce deploy CKPT1 CKPT2 "
                         "CKPT3 -o committee.pt")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    species = meta["species"].split()
    lookup = {s: n for n, s in enumerate(species)}
    results = []
    for n, atoms in enumerate(frames):
        missing = sorted(set(atoms.get_chemical_symbols()) - set(lookup))
        if missing:
            raise ValueError(f"frame {n} has elements {missing} that the committee (species {species}) does not know")
        species_index = torch.tensor([lookup[s] for s in atoms.get_chemical_symbols()])
        out = model.uncertainty(torch.tensor(atoms.positions), species_index, torch.tensor(atoms.cell.array),
                                torch.tensor(atoms.pbc))
        energy_std, force_std = float(out["energy_std"]), out["force_std"].detach().double().numpy()
        value = {"max": float(force_std.max()), "mean": float(force_std.mean()),
                 "energy": energy_std / len(atoms)}[score]
        results.append({"energy_std": energy_std, "force_std": force_std, "score": value})
    return results


def select(frames: Sequence, model, meta: dict, n: int, exclude: Sequence = (), tolerance: float = 1e-3,
           score: str = "max") -> Tuple[List[int], List[dict], dict]:
    """Indices of the ``n`` most uncertain frames that are no symmetry copies of one another or of
    ``exclude``; also every frame's scores and counts of what was skipped."""
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    if tolerance <= 0:
        raise ValueError(f"tolerance must be > 0 (Angstrom), got {tolerance}")
    scores = committee_scores(frames, model, meta, score)
    finder = CopyFinder(tolerance)
    for atoms in exclude:
        finder.add(Fingerprint.of(atoms), "excluded")
    picked, skipped = [], {"excluded": 0, "picked": 0}
    for index in sorted(range(len(frames)), key=lambda k: -scores[k]["score"]):
        if len(picked) == n:
            break
        fp = Fingerprint.of(frames[index])
        origin = finder.copy_of(fp)
        if origin is not None:
            skipped[origin] += 1
            continue
        finder.add(fp, "picked")
        picked.append(index)
    return picked, scores, {"copies_of_" + k: v for k, v in skipped.items()}
