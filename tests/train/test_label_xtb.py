"""examples/data/label_xtb.py: real GFN2-xTB (tblite) labels that the trainer reads back."""
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase.build import molecule
from ase.io import write

from equiforce.data import read_structures

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "data" / "label_xtb.py"


def test_labels_are_consistent_and_readable(tmp_path):
    frames = []
    for seed in range(3):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    write(tmp_path / "in.xyz", frames)
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "in.xyz"), "-o", str(tmp_path / "out.xyz")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 of 3 frames" in done.stdout
    structures = read_structures(tmp_path / "out.xyz", dipole_key="dipole")
    assert len(structures) == 3 and structures[0].dipole.shape == (3,)
    # forces are -dE/dr: a finite difference of the xTB energy along one coordinate
    from tblite.ase import TBLite

    atoms = frames[0].copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    h, energies = 1e-4, []
    for sign in (1, -1):
        atoms.positions[2, 1] += sign * h
        energies.append(atoms.get_potential_energy())
        atoms.positions[2, 1] -= sign * h
    assert abs(-(energies[0] - energies[1]) / (2 * h) - structures[0].forces[2, 1]) < 1e-4
    # ethanol's GFN2-xTB dipole is about 0.4 e A
    assert 0.2 < np.linalg.norm(structures[0].dipole) < 0.6
