"""nequip's own ASE calculator on a trajectory of structures (run in its own process: nequip sets torch's
default dtype to float64 process-wide). ``python nequip_reference.py CHECKPOINT STRUCTURES.traj OUT.npz``
writes per structure: energy, energies (per atom), forces, and stress (3x3, ASE sign) for periodic cells."""
import sys

import numpy as np
from ase.io import read
from nequip.integrations.ase import NequIPCalculator


def main(checkpoint, structures, out):
    calc = NequIPCalculator._from_saved_model(checkpoint, device="cpu", chemical_species_to_atom_type_map=True)
    results = {}
    for n, atoms in enumerate(read(structures, ":")):
        atoms.calc = calc
        results[f"{n}_energy"] = np.array(atoms.get_potential_energy())
        results[f"{n}_energies"] = atoms.get_potential_energies()
        results[f"{n}_forces"] = atoms.get_forces()
        if atoms.pbc.all():
            results[f"{n}_stress"] = atoms.get_stress(voigt=False)
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
