"""The converted SevenNet-0 in the hosts, without Python in the loop: `pair_style equiforce` in LAMMPS
(1 rank on a periodic rutile cell; 1, 2 and 4 ranks on a molecule, where ranks exchange real ghosts)
and the EquiForce force in OpenMM (Reference and CPU), each equal to the ASE calculator. The model
knows 89 elements; `pair_coeff * * 7net-0.pt Ti O` maps two of them."""
import numpy as np
import pytest
from ase.build import molecule
from ase.spacegroup import crystal

pytest.importorskip("sevenn", reason="the test environment installs sevenn (scripts/install.sh)")

from equiforce.convert import convert  # noqa: E402
from equiforce.hosts.ase import EquiForceCalculator  # noqa: E402
from tests.lammps.helpers import input_script, needs_plugin, run_driver, write_data  # noqa: E402


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return convert("sevenn:7net-0", tmp_path_factory.mktemp("7net") / "7net-0.pt", dtype="float64")


def rutile():
    atoms = crystal(["Ti", "O"], basis=[(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                    cellpar=[4.594, 4.594, 2.959, 90, 90, 90]).repeat((2, 2, 3))
    atoms.rattle(0.04, seed=7)
    return atoms


def hydrocarbon():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.03, seed=8)
    return atoms


def ase_reference(model_file, atoms):
    atoms = atoms.copy()
    atoms.calc = EquiForceCalculator(model_file)
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_potential_energies()


def assert_lammps_matches(result, ref):
    energy, forces, energies = ref
    assert abs(float(result["pe"]) - energy) <= 1e-10 * abs(energy)
    np.testing.assert_allclose(result["f"], forces, rtol=0, atol=1e-10 * max(1.0, np.abs(forces).max()))
    np.testing.assert_allclose(result["pe_atom"], energies, rtol=0, atol=1e-10 * abs(energy))


@needs_plugin
def test_lammps_periodic_oxide_with_a_subset_of_the_elements(model_file, tmp_path):
    atoms = rutile()
    write_data(tmp_path / "data", atoms, ["Ti", "O"])
    result = run_driver(tmp_path, input_script(tmp_path / "data", model_file, ["Ti", "O"]))
    assert_lammps_matches(result, ase_reference(model_file, atoms))


@needs_plugin
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_lammps_molecule_on_several_ranks(ranks, model_file, tmp_path):
    atoms = hydrocarbon()
    elements = ["H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    pre = {1: "", 2: "processors 2 1 1", 4: "processors 2 2 1"}[ranks]
    result = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements, periodic=False, pre=pre),
                        ranks=ranks)
    assert_lammps_matches(result, ase_reference(model_file, atoms))


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_openmm(platform, model_file):
    pytest.importorskip("openmm")
    from tests.openmm.test_equiforce_openmm import assert_plugin_matches_ase

    assert_plugin_matches_ase(model_file, rutile(), platform)
    assert_plugin_matches_ase(model_file, hydrocarbon(), platform)
