"""The ASE calculator returns what the model computes, in ASE's conventions."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import EquiForceModel


@pytest.fixture
def model():
    torch.manual_seed(1)
    return EquiForceModel.from_config(dict(species=["Cu", "H"], r_max=3.5, l_max=2, num_features=4, num_layers=2,
                                           avg_num_neighbors=12.0))


def test_molecule(model):
    atoms = Atoms("CuH2", positions=[[0, 0, 0], [1.5, 0, 0], [0, 1.4, 0.3]])
    atoms.calc = EquiForceCalculator(model)
    e = atoms.get_potential_energy()
    assert np.isclose(e, atoms.get_potential_energies().sum())
    assert np.allclose(atoms.get_forces().sum(axis=0), 0, atol=1e-10)
    with pytest.raises(Exception, match="stress"):
        atoms.get_stress()


def test_periodic_crystal_stress_matches_numerical(model):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.cell[0, 1] = 0.3  # triclinic
    atoms.calc = EquiForceCalculator(model)
    stress = atoms.get_stress()
    numerical = atoms.calc.calculate_numerical_stress(atoms, d=1e-5)
    assert np.allclose(stress, numerical, atol=1e-7)
    assert np.allclose(atoms.get_forces(), atoms.calc.calculate_numerical_forces(atoms, d=1e-5), atol=1e-6)


def test_rejects_unknown_elements(model):
    atoms = Atoms("Fe", positions=[[0, 0, 0]])
    atoms.calc = EquiForceCalculator(model)
    with pytest.raises(ValueError, match="Fe"):
        atoms.get_potential_energy()
