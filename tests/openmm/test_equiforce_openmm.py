"""EquiForce (C++ OpenMM plugin) against the ASE calculator, on every available platform that the
plugin serves: molecules, periodic orthogonal and triclinic boxes (atoms outside the box), ML/MM
subsets, serialization, NVE, openmm-ml, bad input."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

openmm = pytest.importorskip("openmm")
from openmm import unit  # noqa: E402

from equiforce.deploy import export  # noqa: E402
from equiforce.hosts.ase import EquiForceCalculator  # noqa: E402
from equiforce.model import EquiForceModel  # noqa: E402
from equiforce.openmm import EquiForce, make_topology  # noqa: E402

EV = 96.48533212331002  # kJ/mol
ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = [p for p in ("Reference", "CPU", "CUDA")
             if p in [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
             and (p != "CUDA" or torch.cuda.is_available())]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(13)
    m = EquiForceModel.from_config(dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=2, num_features=4,
                                        num_layers=2, avg_num_neighbors=12.0))
    with torch.no_grad():
        m.energy_shift.copy_(torch.tensor([-1.0, -2.0, -3.0, -4.0]))
    return export(m, tmp_path_factory.mktemp("omm") / "model.pt")


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=5)
    return atoms


def orthogonal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.1, seed=2)
    atoms.symbols[[0, 5, 9]] = ["H", "C", "O"]
    atoms.positions[3] += atoms.cell[0] * 1.5  # outside the box
    return atoms


def triclinic():
    """OpenMM's reduced form: a along x, b in the xy plane, small tilts."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    atoms.set_cell(np.array([[10.8, 0, 0], [1.0, 10.8, 0], [0.5, -0.7, 10.8]]), scale_atoms=True)
    atoms.rattle(0.1, seed=3)
    atoms.symbols[[1, 7]] = ["O", "H"]
    atoms.positions[2] -= atoms.cell[1] + atoms.cell[2]
    return atoms


def system_for(atoms, force, extra=0):
    system = openmm.System()
    for m in atoms.get_masses():
        system.addParticle(m)
    for _ in range(extra):
        system.addParticle(40.0)
    if atoms.pbc.all():
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in atoms.cell.array))
    system.addForce(force)
    return system


def energy_forces(system, positions_A, platform, box=None):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in box))
    context.setPositions(positions_A * 0.1)
    state = context.getState(getEnergy=True, getForces=True)
    e = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV
    f = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer) / (EV * 10)
    return e, np.asarray(f)


def ase_reference(model_file, atoms):
    atoms = atoms.copy()
    atoms.calc = EquiForceCalculator(model_file)
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", ["ethanol", "orthogonal", "triclinic"])
def test_against_ase_calculator(case, platform, model_file):
    assert_plugin_matches_ase(model_file, {"ethanol": ethanol, "orthogonal": orthogonal, "triclinic": triclinic}[case](),
                              platform)


def assert_plugin_matches_ase(model_file, atoms, platform):
    """Energy and forces of the EquiForce plugin on ``platform`` equal the ASE calculator's."""
    periodic = bool(atoms.pbc.all())
    force = EquiForce(model_file, elements=atoms.get_chemical_symbols(), periodic=periodic)
    e, f = energy_forces(system_for(atoms, force), atoms.positions, platform,
                         atoms.cell.array if periodic else None)
    e_ref, f_ref = ase_reference(model_file, atoms)
    assert e == pytest.approx(e_ref, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-9 * max(1.0, np.abs(f_ref).max()))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_ml_mm_subset(platform, model_file):
    """The model covers atoms 2..10 of 13 (ethanol among three argon-like particles); the others get no
    force from it and do not change its energy."""
    mol = ethanol()
    n = len(mol)
    positions = np.concatenate([[[8.0, 0, 0], [0, 8.0, 0]], mol.positions, [[0, 0, 8.0]]])
    system = openmm.System()
    for m in [40.0, 40.0, *mol.get_masses(), 40.0]:
        system.addParticle(m)
    force = EquiForce(model_file, elements=mol.get_chemical_symbols(), particles=range(2, 2 + n))
    system.addForce(force)
    e, f = energy_forces(system, positions, platform)
    e_ref, f_ref = ase_reference(model_file, mol)
    assert e == pytest.approx(e_ref, rel=1e-10)
    np.testing.assert_allclose(f[2:2 + n], f_ref, atol=1e-9 * np.abs(f_ref).max())
    assert np.all(f[[0, 1, -1]] == 0)


def test_serialization_round_trip_and_deepcopy(model_file):
    atoms = triclinic()
    force = EquiForce(model_file, elements=atoms.get_chemical_symbols(), periodic=True, forceGroup=3)
    system = system_for(atoms, force)
    xml = openmm.XmlSerializer.serialize(system)
    assert 'type="EquiForce"' in xml and str(Path(model_file).resolve()) in xml
    for other in (openmm.XmlSerializer.deserialize(xml), copy.deepcopy(system)):
        restored = other.getForce(0)
        assert EquiForce.isinstance(restored)
        cast = EquiForce.cast(restored)
        assert cast.getNumParticles() == len(atoms) and cast.usesPeriodicBoundaryConditions()
        assert cast.getForceGroup() == 3 and cast.getParticleElement(1) == "O"
        e1, f1 = energy_forces(system, atoms.positions, "Reference", atoms.cell.array)
        e2, f2 = energy_forces(other, atoms.positions, "Reference", atoms.cell.array)
        assert e1 == e2 and np.array_equal(f1, f2)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_nve_conserves_energy(platform):
    """The shipped ethanol model (float32), 600 steps of 0.5 fs from 500 K."""
    atoms = molecule("CH3CH2OH")
    force = EquiForce(ROOT / "examples" / "models" / "ethanol.pt", elements=atoms.get_chemical_symbols())
    system = system_for(atoms, force)
    integrator = openmm.VerletIntegrator(0.0005 * unit.picoseconds)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    context.setPositions(atoms.positions * 0.1)
    context.setVelocitiesToTemperature(500 * unit.kelvin, 7)
    totals, kinetic = [], []
    for _ in range(12):
        integrator.step(50)
        state = context.getState(getEnergy=True)
        ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        totals.append(ke + state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        kinetic.append(ke)
    assert np.ptp(kinetic) > 1.0  # it moves
    assert np.ptp(totals) / EV < 5e-3, totals  # eV, 9 atoms, float32 model


def test_openmmml_create_system_and_mixed_system(model_file):
    from openmmml import MLPotential

    atoms = ethanol()
    topology = make_topology(atoms.get_chemical_symbols())
    potential = MLPotential("equiforce", modelPath=str(model_file))
    system = potential.createSystem(topology)
    forces = [system.getForce(i) for i in range(system.getNumForces())]
    assert sum(EquiForce.isinstance(f) for f in forces) == 1
    e, f = energy_forces(system, atoms.positions, "Reference")
    e_ref, f_ref = ase_reference(model_file, atoms)
    assert e == pytest.approx(e_ref, rel=1e-10)
    np.testing.assert_allclose(f, f_ref, atol=1e-9 * np.abs(f_ref).max())

    # ML/MM: an MM system with a C-C bond and a C-O bond; atoms 0-2 (C, C, O) become ML, so the bonds
    # among them leave and the model covers exactly them
    mm = openmm.System()
    for m in atoms.get_masses():
        mm.addParticle(m)
    bonds = openmm.HarmonicBondForce()
    bonds.addBond(0, 1, 0.15, 1000.0)
    bonds.addBond(1, 2, 0.14, 1000.0)
    bonds.addBond(2, 3, 0.1, 1000.0)  # O-H: stays MM
    mm.addForce(bonds)
    mixed = potential.createMixedSystem(topology, mm, [0, 1, 2])
    ml = [mixed.getForce(i) for i in range(mixed.getNumForces()) if EquiForce.isinstance(mixed.getForce(i))]
    assert len(ml) == 1
    ml = EquiForce.cast(ml[0])
    assert [ml.getParticle(k) for k in range(ml.getNumParticles())] == [0, 1, 2]
    sub = Atoms(atoms.get_chemical_symbols()[:3], atoms.positions[:3])
    e_mixed, _ = energy_forces(mixed, atoms.positions, "Reference")
    d = np.linalg.norm(atoms.positions[2] - atoms.positions[3]) * 0.1
    e_bond = 0.5 * 1000.0 * (d - 0.1) ** 2 / EV
    assert e_mixed == pytest.approx(ase_reference(model_file, sub)[0] + e_bond, rel=1e-9)


def test_bad_input_raises_openmm_exception(model_file, tmp_path):
    atoms = ethanol()
    symbols = atoms.get_chemical_symbols()
    cases = {
        "does not exist": EquiForce(tmp_path / "missing.pt", elements=symbols),
        "does not know": EquiForce(model_file, elements=["Xe"] + symbols[1:]),
        "does not exist: the System has": EquiForce(model_file, elements=symbols, particles=range(5, 5 + len(symbols))),
    }
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    cases["cannot load"] = EquiForce(tmp_path / "junk.pt", elements=symbols)
    for message, force in cases.items():
        with pytest.raises(openmm.OpenMMException, match=message):
            openmm.Context(system_for(atoms, force), openmm.VerletIntegrator(0.001),
                           openmm.Platform.getPlatformByName("Reference"))
    with pytest.raises(openmm.OpenMMException, match="one element per particle"):
        EquiForce(model_file, elements=symbols, particles=[0, 1])
    with pytest.raises(openmm.OpenMMException, match="needs the elements"):
        EquiForce(model_file)


@pytest.fixture(scope="module")
def long_range_file(tmp_path_factory):
    """Learned charges with Ewald summation (periodic) or the direct sum (open); untrained."""
    from tests.helpers import export_long_range_model

    return export_long_range_model(tmp_path_factory.mktemp("omm_lr") / "coulomb.pt", seed=14)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", ["ethanol", "triclinic"])
def test_long_range_model(case, platform, long_range_file):
    assert_plugin_matches_ase(long_range_file, {"ethanol": ethanol, "triclinic": triclinic}[case](), platform)
