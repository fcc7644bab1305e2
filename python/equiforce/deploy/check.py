"""``equiforce check MODEL``: physics self-checks of an exported model, as a pass/fail table.

Forces against finite differences of the energy; invariance of the energy and equivariance of the
forces under random rotations with reflection, translations and permutations; the virial against a
finite strain; a periodic cell smaller than 2 r_max against its supercell; float32 against float64;
and for models with those heads: dipoles rotate as R v, polarizabilities as R T R^T, charges are
invariant (reflections included), and the charges sum to the model's total charge; for committees,
energy_std and force_std are invariant under rotations, reflections, translations and permutations.
"""
import copy
import warnings
from dataclasses import dataclass
from typing import Callable, List

import numpy as np
import torch

from ..testing import random_o3


@dataclass
class CheckResult:
    name: str
    error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance


def _cluster(n: int, species_count: int, seed: int, spacing: float = 1.3):
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:  # random points no closer than 0.8 * spacing
        p = rng.normal(size=3) * spacing * n ** (1 / 3) * 0.6
        if all(np.linalg.norm(p - q) > 0.8 * spacing for q in pts):
            pts.append(p)
    return torch.tensor(np.array(pts)), torch.tensor(rng.integers(0, species_count, n))


def _as_dtype(module, dtype):
    with warnings.catch_warnings():  # ScriptModule.to() peeks at .grad of non-leaf tensors
        warnings.simplefilter("ignore")
        return copy.deepcopy(module).to(dtype)


def run_checks(module, meta, seed: int = 0) -> List[CheckResult]:
    species_count = len(meta["species"].split())
    r_max = float(meta["r_max"])
    module = _as_dtype(module, torch.float64)
    none_pbc = torch.zeros(3, dtype=torch.bool)
    zero_cell = torch.zeros(3, 3, dtype=torch.float64)

    def efv(pos, species, cell=zero_cell, pbc=none_pbc, m=module):
        e, _, f, v = m.compute(pos, species, cell, pbc)[:4]
        return float(e), f.double(), v.double()

    pos, species = _cluster(8, species_count, seed)
    energy, forces, _ = efv(pos, species)
    scale_f = max(1.0, float(forces.abs().max()))
    results = []

    # forces = -dE/dr
    h, worst = 1e-5, 0.0
    for atom in range(len(pos)):
        for axis in range(3):
            p, m = pos.clone(), pos.clone()
            p[atom, axis] += h
            m[atom, axis] -= h
            fd = -(efv(p, species)[0] - efv(m, species)[0]) / (2 * h)
            worst = max(worst, abs(fd - float(forces[atom, axis])))
    results.append(CheckResult("forces = -dE/dr (finite differences)", worst / scale_f, 1e-6))

    # O(3) for equiforce's own models; rotations only for SO(3) models (SevenNet's is_parity: false, every
    # feature even), whose energy may change under a mirror: the check says which group it tested
    so3 = meta.get("symmetry", "O3") == "SO3"
    group = "SO(3) (rotations only: the model is not parity-invariant)" if so3 else "O(3) (with reflections)"
    worst_e, worst_f = 0.0, 0.0
    for trial in range(4):
        g = random_o3(improper=not so3 and trial % 2 == 1, generator=torch.Generator().manual_seed(seed + trial))
        e2, f2, _ = efv(pos @ g.T, species)
        worst_e = max(worst_e, abs(e2 - energy))
        worst_f = max(worst_f, float((f2 - forces @ g.T).abs().max()))
    results.append(CheckResult(f"E invariant under {group}", worst_e / max(1.0, abs(energy)), 1e-9))
    results.append(CheckResult(f"F equivariant under {group}", worst_f / scale_f, 1e-9))
    e2, f2, _ = efv(pos + torch.tensor([1.7, -3.1, 2.3], dtype=torch.float64), species)
    results.append(CheckResult("translation invariance", max(abs(e2 - energy), float((f2 - forces).abs().max())), 1e-9))
    perm = torch.randperm(len(pos), generator=torch.Generator().manual_seed(seed))
    e2, f2, _ = efv(pos[perm], species[perm])
    results.append(CheckResult("permutation invariance", max(abs(e2 - energy), float((f2 - forces[perm]).abs().max())), 1e-9))

    # periodic: a skewed cell smaller than 2 r_max, its virial and its 2x1x1 supercell
    rng = np.random.default_rng(seed + 1)
    cell = torch.tensor(np.eye(3) * 1.6 * r_max * 0.8 + rng.normal(size=(3, 3)) * 0.2)
    ppos = torch.tensor(rng.random((4, 3))) @ cell
    pspecies = torch.tensor(rng.integers(0, species_count, 4))
    pbc = torch.ones(3, dtype=torch.bool)
    pe, pf, pv = efv(ppos, pspecies, cell, pbc)
    h, worst = 1e-5, 0.0
    for a, b in [(0, 0), (1, 2), (2, 1), (0, 1)]:
        eps = torch.zeros(3, 3, dtype=torch.float64)
        eps[a, b] = h
        d_plus, d_minus = torch.eye(3, dtype=torch.float64) + eps, torch.eye(3, dtype=torch.float64) - eps
        fd = (efv(ppos @ d_plus, pspecies, cell @ d_plus, pbc)[0] - efv(ppos @ d_minus, pspecies, cell @ d_minus, pbc)[0]) / (2 * h)
        worst = max(worst, abs(fd + float(pv[a, b])))  # virial = -dE/dstrain
    results.append(CheckResult("virial = -dE/dstrain (finite strain)", worst / max(1.0, float(pv.abs().max())), 1e-6))
    outputs = module.compute(ppos, pspecies, cell, pbc)
    if len(outputs) > 4:  # format version 2: per-atom virials (LAMMPS compute stress/atom)
        results.append(CheckResult("per-atom virials sum to the virial",
                                   float((outputs[4].sum(0) - outputs[3]).abs().max()) / max(1.0, float(pv.abs().max())),
                                   1e-10))
    if float(meta.get("total_charge", 0.0)) == 0.0:  # a charged cell's supercell is another system
        big_pos = torch.cat([ppos, ppos + cell[0]])
        big_cell = cell.clone()
        big_cell[0] *= 2
        be, bf, _ = efv(big_pos, pspecies.repeat(2), big_cell, pbc)
        results.append(CheckResult("cell < 2 r_max equals its supercell",
                                   max(abs(be - 2 * pe), float((bf - pf.repeat(2, 1)).abs().max())), 1e-8))

    # float32 against float64
    e32, f32, _ = efv(pos.float(), species, m=_as_dtype(module, torch.float32))
    results.append(CheckResult("float32 agrees with float64", max(abs(e32 - energy) / max(1.0, abs(energy)),
                                                                   float((f32 - forces).abs().max()) / scale_f), 1e-3))
    outputs = set(meta.get("outputs", "").split())
    if outputs & {"dipole", "polarizability", "charges"}:
        results += _head_checks(module, outputs, pos, species, seed, float(meta.get("total_charge", 0.0)))
    if "committee_size" in meta:
        results += _committee_checks(module, pos, species, seed)
    return results


def _committee_checks(module, pos, species, seed: int) -> List[CheckResult]:
    """A committee's energy_std and per-atom force_std do not change under O(3) (with reflections),
    translations and permutations (force_std permutes with the atoms)."""
    from .committee import committee_spread

    none_pbc, zero_cell = torch.zeros(3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.float64)

    def spread(p, s):
        out = module.compute_committee(p, s, zero_cell, none_pbc)
        return committee_spread(out[5], out[6])

    e_std, f_std = spread(pos, species)
    scale = max(1e-3, float(f_std.max()))
    perm = torch.randperm(len(pos), generator=torch.Generator().manual_seed(seed + 20))
    worst = 0.0
    for trial in range(4):
        g = random_o3(improper=trial % 2 == 0, generator=torch.Generator().manual_seed(seed + 20 + trial))
        moved = pos @ g.T + torch.tensor([0.7, -1.9, 3.3], dtype=pos.dtype) * trial
        order = perm if trial % 2 else torch.arange(len(pos))
        e2, f2 = spread(moved[order], species[order])
        worst = max(worst, abs(float(e2 - e_std)) / max(1e-3, float(e_std)),
                    float((f2 - f_std[order]).abs().max()) / scale)
    return [CheckResult("committee spread invariant (O(3), translation, permutation)", worst, 1e-8)]


def _head_checks(module, outputs, pos, species, seed: int, total_charge: float) -> List[CheckResult]:
    """O(3) behaviour of the extra outputs: dipole R v, polarizability R T R^T, charges invariant."""
    none_pbc, zero_cell = torch.zeros(3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.float64)
    ref = module.properties(pos, species, zero_cell, none_pbc)
    worst = {name: 0.0 for name in outputs if name in ref}
    for trial in range(4):
        g = random_o3(improper=trial % 2 == 0, generator=torch.Generator().manual_seed(seed + 10 + trial))
        out = module.properties(pos @ g.T, species, zero_cell, none_pbc)
        expected = {"dipole": g @ ref["dipole"] if "dipole" in ref else None,
                    "polarizability": g @ ref["polarizability"] @ g.T if "polarizability" in ref else None,
                    "charges": ref.get("charges")}
        for name in worst:
            scale = max(1.0, float(expected[name].abs().max()))
            worst[name] = max(worst[name], float((out[name] - expected[name]).abs().max()) / scale)
    labels = {"dipole": "dipole rotates as R v (with reflections)",
              "polarizability": "polarizability rotates as R T R^T (with reflections)",
              "charges": "charges invariant under O(3)"}
    results = [CheckResult(labels[name], worst[name], 1e-9) for name in ("dipole", "polarizability", "charges")
               if name in worst]
    if "charges" in ref:
        results.append(CheckResult("charges sum to the total charge",
                                   abs(float(ref["charges"].sum()) - total_charge), 1e-9))
    return results


def format_table(results: List[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check'.ljust(width)}  {'error':>10}  {'tolerance':>9}  result"]
    for r in results:
        lines.append(f"{r.name.ljust(width)}  {r.error:10.2e}  {r.tolerance:9.0e}  {'PASS' if r.passed else 'FAIL'}")
    return "\n".join(lines)
