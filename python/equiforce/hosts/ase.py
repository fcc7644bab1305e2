"""ASE calculator for equiforce models."""
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..model import EquiForceModel, check_structure, evaluate, stress_from_virial

_EXTRAS = ("charges", "dipole", "polarizability")


class EquiForceCalculator(Calculator):
    """``atoms.calc = EquiForceCalculator(model)``: energy, free_energy, forces, stress (periodic cells)
    and per-atom ``energies``, in eV and Angstrom; for models with those heads also ``dipole`` (e A,
    ``atoms.get_dipole_moment()``), ``polarizability`` (3 x 3, the training labels' unit;
    ``calc.get_property('polarizability', atoms)``) and ``charges`` (e, the learned charges of a
    long-range model; ``atoms.get_charges()``). For a committee (``equiforce deploy A B C -o
    committee.pt``) energy and forces are the members' means, and ``results`` also holds
    ``energy_std`` (eV) and ``force_std`` (eV/A per atom: the norm of the per-component standard
    deviation), e.g. ``calc.get_property('force_std', atoms)``. ``model`` is an
    :class:`EquiForceModel` or the path of an exported model (``equiforce deploy``). Structures no
    model can evaluate — NaN or inf positions or cell, a degenerate periodic cell, atoms closer than
    ``equiforce.model.MIN_DISTANCE`` (0.1 A) — raise ValueError naming the atoms."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model, device: str = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.device = torch.device(device)
        self.deployed = None
        if isinstance(model, (str, Path)):
            from ..deploy import load

            self.deployed, meta = load(model)
            self.deployed = self.deployed.to(self.device)
            self.species = meta["species"].split()
            extras = [name for name in meta.get("outputs", "").split() if name in _EXTRAS]
            self.committee = "committee_size" in meta
            if self.committee:
                extras += ["energy_std", "force_std"]
        elif isinstance(model, EquiForceModel):
            self.committee = False
            self.model = model.to(device).eval()
            self.species = list(model.species)
            extras = (["charges"] if model.long_range != "none" else []) + (["dipole"] if model.dipole else []) \
                + (["polarizability"] if model.polarizability else [])
        else:
            raise TypeError(f"EquiForceCalculator needs an EquiForceModel or a model path, got {type(model).__name__}")
        self.extras = extras
        self.implemented_properties = type(self).implemented_properties + extras

    def _species_index(self, symbols) -> torch.Tensor:
        lookup = {s: n for n, s in enumerate(self.species)}
        missing = sorted(set(symbols) - set(lookup))
        if missing:
            raise ValueError(f"this model knows the elements {self.species}, not {missing}")
        return torch.tensor([lookup[s] for s in symbols], dtype=torch.long, device=self.device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        species = self._species_index(atoms.get_chemical_symbols())
        positions = torch.as_tensor(atoms.positions, device=self.device)
        cell = torch.as_tensor(atoms.cell.array, device=self.device)
        # every call computes the virial: keep the stress of a periodic cell whether asked or not, so a
        # later get_stress() is not a second evaluation
        want_stress = bool(atoms.pbc.all())
        if self.deployed is not None:
            pbc = torch.as_tensor(atoms.pbc, device=self.device)
            check_structure(positions, cell, pbc)  # one line naming the atoms, not a TorchScript traceback
            if self.committee:
                outputs = self.deployed.compute_committee(positions, species, cell, pbc)
            else:
                outputs = self.deployed.compute(positions, species, cell, pbc)
            energy, atomic, forces, virial = outputs[:4]
            out = {"energy": energy, "energies": atomic, "forces": forces}
            if self.committee:
                from ..deploy.committee import committee_spread

                out["energy_std"], out["force_std"] = committee_spread(outputs[5], outputs[6])
            if want_stress:
                out["stress"] = stress_from_virial(virial, torch.det(cell.to(virial.dtype)).abs())
            if set(self.extras) & set(_EXTRAS):
                out.update(self.deployed.properties(positions, species, cell, pbc))
        else:
            out = evaluate(self.model, positions, species, cell, atoms.pbc.tolist(), forces=True, stress=want_stress)
        energy = float(out["energy"])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["energies"].cpu().numpy().astype(np.float64),
            "forces": out["forces"].cpu().numpy().astype(np.float64),
        }
        for name in self.extras:
            self.results[name] = out[name].detach().cpu().numpy().astype(np.float64)
        if "energy_std" in self.results:
            self.results["energy_std"] = float(self.results["energy_std"])
        if want_stress:
            s = out["stress"].cpu().numpy().astype(np.float64)
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
