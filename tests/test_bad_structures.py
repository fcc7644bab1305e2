"""Structures no model can evaluate get one line that names the atoms, in every host: the ASE
calculator (exported file and in-memory model), `evaluate`, data files, the C++ runtime and OpenMM
(LAMMPS: tests/lammps). Never a NaN, never a TorchScript traceback."""
import subprocess

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import write

from equiforce.data import read_structures
from equiforce.deploy import export
from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import MIN_DISTANCE, EquiForceModel, evaluate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return EquiForceModel.from_config(dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=1, num_features=4,
                                           num_layers=2))


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    return export(model, tmp_path_factory.mktemp("bad") / "model.pt")


def _overlapping():
    atoms = molecule("CH3CH2OH")
    atoms.positions[5] = atoms.positions[2] + [0.03, 0, 0]
    return atoms


def _cases():
    nan = molecule("CH3CH2OH")
    nan.positions[4, 1] = np.nan
    zero_cell = molecule("CH3CH2OH")
    zero_cell.pbc = True  # no cell
    nan_cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    nan_cell.cell[0, 0] = np.inf
    tiny = Atoms("Cu", positions=[[0, 0, 0]], cell=np.eye(3) * 0.05, pbc=True)
    return {
        "overlapping": (_overlapping(), r"atoms 2 and 5 are 0.03 A apart, closer than 0.1 A: overlapping atoms"),
        "on the same spot": (Atoms("H2", positions=[[1, 1, 1], [1, 1, 1]]), r"atoms 0 and 1 are 0 A apart"),
        "nan position": (nan, r"positions\[4\] is not finite"),
        "zero cell with pbc": (zero_cell, "linearly dependent"),
        "inf cell": (nan_cell, "the cell is not finite"),
        "own image": (tiny, r"atom 0 is 0.05 A from its own periodic image"),
    }


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("source", ["file", "model"])
def test_ase_calculator_names_the_atoms(case, source, model, model_file):
    atoms, message = _cases()[case]
    atoms.calc = EquiForceCalculator(model_file if source == "file" else model)
    with pytest.raises(ValueError, match=message) as info:
        atoms.get_potential_energy()
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_evaluate_and_a_threshold_just_above(model):
    atoms, message = _cases()["overlapping"]
    species = model.species_index(atoms.get_chemical_symbols())
    with pytest.raises(ValueError, match=message):
        evaluate(model, torch.tensor(atoms.positions), species)
    atoms.positions[5] = atoms.positions[2] + [1.01 * MIN_DISTANCE, 0, 0]
    out = evaluate(model, torch.tensor(atoms.positions), species)
    assert torch.isfinite(out["energy"]) and torch.isfinite(out["forces"]).all()


def test_data_file_names_the_frame(tmp_path):
    frames = [molecule("CH3CH2OH"), _overlapping()]
    for n, atoms in enumerate(frames):
        atoms.info["energy"] = -1.0 * n
        atoms.arrays["forces"] = np.zeros((len(atoms), 3))
    write(tmp_path / "data.xyz", frames, format="extxyz")
    with pytest.raises(ValueError, match=r"data.xyz frame 1: atoms 2 and 5 are 0.03 A apart"):
        read_structures(tmp_path / "data.xyz")


@pytest.mark.parametrize("case", ["overlapping", "nan position", "inf cell", "own image"])
def test_cpp_runtime(case, model, model_file, cpp_program, tmp_path):
    """csrc/runtime (what LAMMPS and OpenMM load) refuses with the same line; the test program's
    structures are periodic in all three directions."""
    atoms, message = _cases()[case]
    if not atoms.pbc.all():
        atoms.set_cell(np.eye(3) * 12.0)
    species = model.species_index(atoms.get_chemical_symbols())
    (tmp_path / "in.bin").write_bytes(np.ascontiguousarray(atoms.positions).tobytes() + species.numpy().tobytes()
                                      + np.ascontiguousarray(atoms.cell.array).tobytes())
    run = subprocess.run([str(cpp_program / "run_deployed_model"), str(model_file), str(tmp_path / "in.bin"),
                          str(len(atoms)), str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.startswith("error: equiforce: ") and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert pytest.importorskip("re").search(message, run.stderr), run.stderr


def test_openmm_names_the_particles(model_file):
    """OpenMM reports System particle indices (here an ML/MM subset starting at particle 2) and nm."""
    openmm = pytest.importorskip("openmm")
    from equiforce.openmm import EquiForce

    mol = _overlapping()
    system = openmm.System()
    for m in [40.0, 40.0, *mol.get_masses()]:
        system.addParticle(m)
    system.addForce(EquiForce(model_file, elements=mol.get_chemical_symbols(), particles=range(2, 2 + len(mol))))
    for platform in ("Reference", "CPU"):
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
        context.setPositions(np.concatenate([[[2.0, 0, 0], [0, 2.0, 0]], mol.positions * 0.1]))
        with pytest.raises(openmm.OpenMMException, match=r"particles 4 and 7 are 0.003 nm apart, closer than 0.01 nm"):
            context.getState(getEnergy=True)
        positions = np.concatenate([[[2.0, 0, 0], [0, 2.0, 0]], molecule("CH3CH2OH").positions * 0.1])
        positions[6, 0] = np.nan
        context.setPositions(positions)
        # OpenMM's own check may come first (Reference): either way, one clear line
        with pytest.raises(openmm.OpenMMException, match=r"position of particle 6 is not finite|coordinate is NaN"):
            context.getState(getEnergy=True)
