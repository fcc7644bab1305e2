"""Export round trip: the TorchScript file carries the contract's metadata and gives the same
energies, forces and virial as the Python model, through the edge-list and the cell entry points."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk

from equiforce.deploy import export, load
from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import EquiForceModel, evaluate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = EquiForceModel.from_config(dict(species=["Cu", "H"], r_max=3.2, l_max=2, num_features=4, num_layers=2,
                                        avg_num_neighbors=10.0))
    with torch.no_grad():
        m.energy_shift.copy_(torch.tensor([-3.0, -1.0]))
    return m


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export(model, tmp_path_factory.mktemp("m") / "model.pt")


def _crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
    atoms.rattle(0.05, seed=1)
    atoms.symbols[3] = "H"
    atoms.cell[1, 0] = 0.4
    return atoms


def test_metadata(exported):
    _, meta = load(exported)
    assert meta["species"] == "Cu H" and meta["num_layers"] == "2" and float(meta["r_max"]) == 3.2
    assert float(meta["ghost_cutoff"]) == pytest.approx(6.4) and meta["dtype"] == "float64"
    assert meta["format_version"] == "1" and meta["torch_version"] == torch.__version__


def test_same_results_as_python(model, exported):
    module, _ = load(exported)
    atoms = _crystal()
    species = model.species_index(atoms.get_chemical_symbols())
    pos, cell = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)
    ref = evaluate(model, pos, species, cell, True, stress=True)
    energy, atomic, forces, virial = module.compute(pos, species, cell, torch.tensor([True] * 3))
    assert abs(energy - ref["energy"]) < 1e-10
    assert torch.allclose(forces, ref["forces"], atol=1e-10)
    assert torch.allclose(virial, ref["virial"], atol=1e-10)
    assert torch.allclose(atomic, ref["energies"], atol=1e-12)


def test_ase_calculator_on_the_exported_file(model, exported):
    atoms = _crystal()
    atoms.calc = EquiForceCalculator(exported)
    e_file, f_file, s_file = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = EquiForceCalculator(model)
    assert np.isclose(e_file, atoms.get_potential_energy(), atol=1e-10)
    assert np.allclose(f_file, atoms.get_forces(), atol=1e-10)
    assert np.allclose(s_file, atoms.get_stress(), atol=1e-10)


def test_loads_in_a_fresh_process(exported):
    code = f"""
import torch
from equiforce.deploy import load
m, meta = load({str(exported)!r})
e, a, f, v = m.compute(torch.zeros(2, 3, dtype=torch.float64) + torch.tensor([[0.0, 0, 0], [1.5, 0, 0]]),
                       torch.tensor([0, 1]), torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
assert torch.allclose(f.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a TorchScript"):
        load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(foreign))
    with pytest.raises(ValueError, match="not an equiforce model"):
        load(foreign)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")
