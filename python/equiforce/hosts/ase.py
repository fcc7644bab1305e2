"""ASE calculator for equiforce models."""
import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from ..model import EquiForceModel, evaluate


class EquiForceCalculator(Calculator):
    """``atoms.calc = EquiForceCalculator(model)``: energy, free_energy, forces, stress (periodic cells)
    and per-atom ``energies``, in eV and Angstrom. ``model`` is an :class:`EquiForceModel`."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: EquiForceModel, device: str = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, EquiForceModel):
            raise TypeError(f"EquiForceCalculator needs an EquiForceModel, got {type(model).__name__}")
        self.model = model.to(device).eval()
        self.device = torch.device(device)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        species = self.model.species_index(atoms.get_chemical_symbols()).to(self.device)
        positions = torch.as_tensor(atoms.positions, device=self.device)
        want_stress = "stress" in properties and bool(atoms.pbc.all())
        out = evaluate(self.model, positions, species, torch.as_tensor(atoms.cell.array), atoms.pbc.tolist(),
                       forces=True, stress=want_stress)
        energy = float(out["energy"])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["energies"].cpu().numpy().astype(np.float64),
            "forces": out["forces"].cpu().numpy().astype(np.float64),
        }
        if want_stress:
            s = out["stress"].cpu().numpy().astype(np.float64)
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        elif "stress" in properties:
            from ase.calculators.calculator import PropertyNotImplementedError

            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
