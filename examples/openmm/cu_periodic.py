"""A periodic copper crystal (shipped model examples/models/cu.pt) in OpenMM: 256 atoms, Langevin
dynamics at 600 K with a Monte Carlo barostat at 1 bar — the box comes from the context every step.

    python examples/openmm/cu_periodic.py [--steps 500] [--platform CPU]
"""
import argparse
import sys
import time
from pathlib import Path

import openmm
from ase.build import bulk
from openmm import app, unit

from equiforce.openmm import EquiForce, make_topology

MODEL = Path(__file__).resolve().parents[1] / "models" / "cu.pt"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 4))
    topology = make_topology(atoms.get_chemical_symbols(), box=atoms.cell.array)
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.addForce(EquiForce(MODEL, topology))  # periodic: the topology has a box
    system.addForce(openmm.MonteCarloBarostat(1 * unit.bar, 600 * unit.kelvin, 25))

    integrator = openmm.LangevinMiddleIntegrator(600 * unit.kelvin, 5 / unit.picosecond, 2 * unit.femtoseconds)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(atoms.positions * unit.angstrom)
    simulation.context.setVelocitiesToTemperature(600 * unit.kelvin, 1)
    simulation.reporters.append(app.StateDataReporter(sys.stdout, 100, step=True, potentialEnergy=True,
                                                      temperature=True, volume=True))
    t0 = time.perf_counter()
    simulation.step(args.steps)
    ms = (time.perf_counter() - t0) / args.steps * 1e3
    print(f"{ms:.2f} ms/step on {args.platform}, {2e-6 * 86400e3 / ms:.3f} ns/day")


if __name__ == "__main__":
    main()
