"""nequip's own ASE calculator on a trajectory of structures (run in its own process: nequip sets torch's
default dtype to float64 process-wide). ``python nequip_reference.py CHECKPOINT STRUCTURES.traj OUT.npz``
writes per structure n: energy_n, energies_n (per atom), forces_n, and stress_n (Voigt, ASE sign) for
periodic cells, as sevenn_reference.py does."""
import sys

import numpy as np
from ase.io import read
from nequip.integrations.ase import NequIPCalculator


def main(checkpoint, structures, out):
    calc = NequIPCalculator._from_saved_model(checkpoint, device="cpu", chemical_species_to_atom_type_map=True)
    results = {}
    for n, atoms in enumerate(read(structures, ":")):
        atoms.calc = calc
        results[f"energy_{n}"] = np.float64(atoms.get_potential_energy())
        results[f"energies_{n}"] = atoms.get_potential_energies()
        results[f"forces_{n}"] = atoms.get_forces()
        if atoms.pbc.all():
            results[f"stress_{n}"] = np.asarray(atoms.get_stress(), dtype=np.float64)
    np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:4])
