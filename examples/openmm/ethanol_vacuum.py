"""Ethanol in vacuum with the shipped model (examples/models/ethanol.pt) as an OpenMM Force: NVE with
a Verlet integrator, 0.5 fs steps from 500 K; prints the total energy every 100 steps and ms/step.

    python examples/openmm/ethanol_vacuum.py [--steps 1000] [--platform CPU]
"""
import argparse
import time
from pathlib import Path

import openmm
from ase.build import molecule
from openmm import app, unit

from equiforce.openmm import EquiForce, make_topology

MODEL = Path(__file__).resolve().parents[1] / "models" / "ethanol.pt"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()

    atoms = molecule("CH3CH2OH")
    topology = make_topology(atoms.get_chemical_symbols())
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.addForce(EquiForce(MODEL, topology))

    integrator = openmm.VerletIntegrator(0.5 * unit.femtoseconds)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(atoms.positions * unit.angstrom)
    simulation.context.setVelocitiesToTemperature(500 * unit.kelvin, 1)
    simulation.reporters.append(app.StateDataReporter(
        __import__("sys").stdout, 100, step=True, potentialEnergy=True, kineticEnergy=True, totalEnergy=True,
        temperature=True))
    t0 = time.perf_counter()
    simulation.step(args.steps)
    ms = (time.perf_counter() - t0) / args.steps * 1e3
    print(f"{ms:.2f} ms/step on {args.platform}, {0.5e-6 * 86400e3 / ms:.2f} ns/day")


if __name__ == "__main__":
    main()
