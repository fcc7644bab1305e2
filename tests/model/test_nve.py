"""NVE energy conservation with velocity Verlet in float64 (the test's drift bound: total energy
wanders by less than 2e-4 eV/atom over 1000 steps, while the potential energy moves ~100x more)."""
import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import EquiForceModel


def test_nve_conserves_energy_over_1000_steps():
    torch.manual_seed(7)
    model = EquiForceModel.from_config(dict(species=["Cu"], r_max=4.0, l_max=2, num_features=8, num_layers=2,
                                            avg_num_neighbors=40.0, dtype="float64"))
    with torch.no_grad():
        model.energy_scale.fill_(100.0)  # random weights give tiny forces: scale them to ~0.5 eV/A
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
    atoms.rattle(0.1, seed=1)
    atoms.calc = EquiForceCalculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(0))
    Stationary(atoms)
    total, potential = [], []
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)

    def record():
        total.append(atoms.get_total_energy())
        potential.append(atoms.get_potential_energy())

    dyn.attach(record, interval=1)
    dyn.run(1000)
    total, potential = np.array(total), np.array(potential)
    assert np.abs(atoms.get_forces()).max() > 0.05, "forces too small for a meaningful test"
    drift = np.abs(total - total[0]).max() / len(atoms)
    assert drift < 2e-4, f"total energy moved {drift:.2e} eV/atom"
    assert np.ptp(potential) / len(atoms) > 100 * drift
