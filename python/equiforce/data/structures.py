"""Labelled structures from extxyz (or anything ASE reads), with checks that name what is wrong."""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch


@dataclass
class Structure:
    """One configuration: Angstrom, eV, eV/A and eV/A^3 (ASE's stress sign)."""

    symbols: List[str]
    positions: np.ndarray  # [N, 3]
    cell: np.ndarray  # [3, 3], rows are lattice vectors
    pbc: np.ndarray  # [3] bool
    energy: Optional[float] = None
    forces: Optional[np.ndarray] = None  # [N, 3]
    stress: Optional[np.ndarray] = None  # [3, 3]
    dipole: Optional[np.ndarray] = None  # [3] (e A)
    polarizability: Optional[np.ndarray] = None  # [3, 3]
    charges: Optional[np.ndarray] = None  # [N] (e), reference atomic charges

    def __len__(self) -> int:
        return len(self.symbols)


def _lookup(atoms, key: str, per_atom: bool):
    where = atoms.arrays if per_atom else atoms.info
    if key in where:
        return where[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _available(atoms) -> List[str]:
    keys = set(atoms.info) | set(atoms.arrays)
    if atoms.calc is not None:
        keys |= set(getattr(atoms.calc, "results", {}))
    return sorted(keys - {"numbers", "positions"})


def _stress_matrix(value) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64).ravel()
    if value.size == 9:
        return value.reshape(3, 3)
    if value.size == 6:  # Voigt: xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = value
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f"stress must have 6 (Voigt) or 9 components, got {value.size}")


def from_atoms(atoms, energy_key: Optional[str] = "energy", forces_key: Optional[str] = "forces",
               stress_key: Optional[str] = None, where: str = "", dipole_key: Optional[str] = None,
               polarizability_key: Optional[str] = None, charges_key: Optional[str] = None,
               required: bool = True) -> Structure:
    """An ASE Atoms -> Structure, taking labels from info/arrays or an attached calculator. A label
    named but absent is an error, or with ``required=False`` left None (evaluation takes whatever
    labels a file has). Non-finite values, overlapping atoms and degenerate periodic cells are errors."""
    def need(key, per_atom):
        value = _lookup(atoms, key, per_atom)
        if value is None and required:
            raise KeyError(f"{where}: no {key!r} found (keys present: {_available(atoms)}); set the key names in "
                           "the data config (energy_key / forces_key / stress_key / dipole_key / polarizability_key) "
                           "or skip the label (null in a YAML config, none on the command line)")
        return value

    s = Structure(list(atoms.get_chemical_symbols()), np.array(atoms.positions, dtype=np.float64),
                  np.array(atoms.cell.array, dtype=np.float64), np.array(atoms.pbc, dtype=bool))
    if energy_key and need(energy_key, False) is not None:
        s.energy = float(need(energy_key, False))
    if forces_key and need(forces_key, True) is not None:
        s.forces = np.array(need(forces_key, True), dtype=np.float64).reshape(len(s), 3)
    if stress_key:  # optional per frame: slabs and molecules in a periodic data set have none
        stress = _lookup(atoms, stress_key, False)
        s.stress = None if stress is None else _stress_matrix(stress)
    if dipole_key and need(dipole_key, False) is not None:
        dipole = np.array(need(dipole_key, False), dtype=np.float64).ravel()
        if dipole.size != 3:
            raise ValueError(f"{where}: {dipole_key!r} must have 3 components, got {dipole.size}")
        s.dipole = dipole
    if polarizability_key and need(polarizability_key, False) is not None:
        s.polarizability = _stress_matrix(need(polarizability_key, False))
    if charges_key and need(charges_key, True) is not None:
        s.charges = np.array(need(charges_key, True), dtype=np.float64).reshape(len(s))
    for name, value in (("positions", s.positions), ("energy", s.energy), ("forces", s.forces),
                        ("stress", s.stress), ("dipole", s.dipole), ("polarizability", s.polarizability),
                        ("charges", s.charges)):
        if value is not None and not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: {name} contains NaN or inf")
    from ..model.inputs import check_structure

    try:
        check_structure(torch.from_numpy(s.positions), torch.from_numpy(s.cell), s.pbc)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return s


def read_structures(path, energy_key: Optional[str] = "energy", forces_key: Optional[str] = "forces",
                    stress_key: Optional[str] = None, index: str = ":", dipole_key: Optional[str] = None,
                    polarizability_key: Optional[str] = None, charges_key: Optional[str] = None,
                    required: bool = True) -> List[Structure]:
    """All frames of ``path`` (extxyz or any format ASE reads) as Structures (``required``: see
    :func:`from_atoms`)."""
    import ase.io

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    try:
        frames = ase.io.read(str(path), index=index)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise ValueError(f"cannot read {path} with ASE: {exc}") from exc
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"{path} holds no structures")
    return [from_atoms(a, energy_key, forces_key, stress_key, f"{path} frame {n}", dipole_key, polarizability_key,
                       charges_key, required) for n, a in enumerate(frames)]


def split(structures: Sequence[Structure], validation_fraction: float, seed: int):
    """A reproducible random (train, validation) split; both parts are non-empty when possible."""
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(len(structures))
    n_val = min(len(structures) - 1, max(1 if validation_fraction > 0 else 0,
                                          int(math.floor(validation_fraction * len(structures)))))
    val = [structures[k] for k in sorted(order[:n_val])]
    train = [structures[k] for k in sorted(order[n_val:])]
    return train, val
