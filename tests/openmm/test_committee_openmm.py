"""EquiForce.getUncertainty: a committee's energy_std and per-particle force_std in OpenMM (kJ/mol,
kJ/mol/nm) against the ASE calculator, at the context's current positions, for whole systems and ML/MM
subsets; a single model is refused with what to do."""
import numpy as np
import pytest

openmm = pytest.importorskip("openmm")

from equiforce.openmm import EquiForce  # noqa: E402

from ..helpers import ase_committee_spread, export_committee  # noqa: E402
from .test_equiforce_openmm import (EV, PLATFORMS, assert_plugin_matches_ase, ethanol, orthogonal,  # noqa: E402
                                   system_for)


@pytest.fixture(scope="module")
def committee_file(tmp_path_factory):
    return export_committee(tmp_path_factory.mktemp("omm_committee") / "committee.pt")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", ["ethanol", "orthogonal"])
def test_uncertainty_against_ase(case, platform, committee_file):
    atoms = {"ethanol": ethanol, "orthogonal": orthogonal}[case]()
    assert_plugin_matches_ase(committee_file, atoms, platform)  # the members' mean energy and forces
    periodic = bool(atoms.pbc.all())
    force = EquiForce(committee_file, elements=atoms.get_chemical_symbols(), periodic=periodic)
    context = openmm.Context(system_for(atoms, force), openmm.VerletIntegrator(0.0005),
                             openmm.Platform.getPlatformByName(platform))
    context.setPositions(atoms.positions * 0.1)
    context.setVelocitiesToTemperature(300, 1)
    for steps in (0, 5):  # after steps, the spread is that of the context's new positions
        context.getIntegrator().step(steps)
        atoms.positions = context.getState(getPositions=True).getPositions(asNumpy=True)._value * 10.0
        energy_std, force_std = force.getUncertainty(context)
        ref_e, ref_f = ase_committee_spread(committee_file, atoms)
        assert energy_std == pytest.approx(ref_e * EV, rel=1e-9)
        np.testing.assert_allclose(force_std, ref_f * EV * 10.0, rtol=1e-9)


def test_uncertainty_of_an_ml_mm_subset(committee_file):
    """force_std comes per covered particle, in addParticle order."""
    mol = ethanol()
    n = len(mol)
    system = openmm.System()
    for m in [40.0, *mol.get_masses(), 40.0]:
        system.addParticle(m)
    force = EquiForce(committee_file, elements=mol.get_chemical_symbols(), particles=range(1, 1 + n))
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(np.concatenate([[[9.0, 0, 0]], mol.positions, [[0, 0, 9.0]]]) * 0.1)
    energy_std, force_std = force.getUncertainty(context)
    ref_e, ref_f = ase_committee_spread(committee_file, mol)
    assert len(force_std) == n
    np.testing.assert_allclose(force_std, ref_f * EV * 10.0, rtol=1e-9)
    # a force found again through the System
    again = EquiForce.cast(system.getForce(0))
    assert again.getUncertainty(context)[0] == pytest.approx(energy_std, rel=1e-12)


def test_single_model_has_no_uncertainty(tmp_path):
    from equiforce.deploy import export
    from equiforce.model import EquiForceModel

    atoms = ethanol()
    path = export(EquiForceModel.from_config(dict(species=["H", "C", "O"], r_max=3.0, l_max=1, num_features=4,
                                                  num_layers=1)), tmp_path / "single.pt")
    force = EquiForce(path, elements=atoms.get_chemical_symbols())
    context = openmm.Context(system_for(atoms, force), openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions * 0.1)
    with pytest.raises(openmm.OpenMMException, match="single model.*committee"):
        force.getUncertainty(context)
