"""The models shipped in examples/models load, pass `equiforce check`, and give what their README row
says they give (ethanol_dipole.pt: the dipole too)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.glob("*.pt")))
def test_shipped_model_passes_check_and_is_small(name):
    path = MODELS / name
    assert path.stat().st_size <= 5 * 2**20
    result = subprocess.run([sys.executable, "-m", "equiforce.cli", "check", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ethanol_dipole_model_gives_the_dipole_of_a_rotated_molecule_rotated():
    from ase.build import molecule

    from equiforce.hosts.ase import EquiForceCalculator
    from equiforce.testing import random_o3

    atoms = molecule("CH3CH2OH")
    atoms.calc = EquiForceCalculator(MODELS / "ethanol_dipole.pt")
    mu = atoms.get_dipole_moment()
    assert 0.2 < np.linalg.norm(mu) < 0.6  # e A; GFN2-xTB gives about 0.4 for ethanol
    g = random_o3(improper=True).numpy()
    turned = atoms.copy()
    turned.positions = atoms.positions @ g.T
    turned.calc = EquiForceCalculator(MODELS / "ethanol_dipole.pt")
    np.testing.assert_allclose(turned.get_dipole_moment(), g @ mu, atol=1e-5)


def test_ethanol_committee_is_surer_about_ethanol_than_about_a_distorted_one():
    """The shipped committee: small spread on a training-like geometry, a larger one where a C-H bond is
    stretched to 1.6 A (far outside the 500 K data), and the largest there on that bond's atoms."""
    from ase.build import molecule

    from equiforce.hosts.ase import EquiForceCalculator

    atoms = molecule("CH3CH2OH")
    calc = EquiForceCalculator(MODELS / "ethanol_committee.pt")
    atoms.calc = calc
    atoms.get_potential_energy()
    near = calc.results["force_std"].copy()
    carbon, hydrogen = 0, next(i for i, s in enumerate(atoms.get_chemical_symbols()) if s == "H"
                               and atoms.get_distance(0, i) < 1.2)
    stretched = atoms.copy()
    stretched.set_distance(carbon, hydrogen, 1.6, fix=0)
    stretched.calc = calc
    stretched.get_potential_energy()
    far = calc.results["force_std"]
    assert near.max() < 0.2 and far.max() > 2 * near.max()
    assert int(np.argmax(far)) in (carbon, hydrogen)
