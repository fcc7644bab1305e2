"""ML/MM: ethanol described by the shipped model (examples/models/ethanol.pt) inside a cluster of 40
argon atoms described by Lennard-Jones (OpenMM NonbondedForce); ethanol-argon is Lennard-Jones too.
EquiForce covers only the ethanol particles. Langevin dynamics at 100 K.

    python examples/openmm/mlmm_ethanol_argon.py [--steps 500]
"""
import argparse
import sys

import numpy as np
import openmm
from ase.build import molecule
from openmm import app, unit

from pathlib import Path

from equiforce.openmm import EquiForce, make_topology

MODEL = Path(__file__).resolve().parents[1] / "models" / "ethanol.pt"
LJ = {"Ar": (0.340, 0.996), "C": (0.340, 0.360), "H": (0.260, 0.065), "O": (0.300, 0.710)}  # sigma nm, eps kJ/mol


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--platform", default="CPU")
    args = parser.parse_args()

    mol = molecule("CH3CH2OH")
    rng = np.random.default_rng(0)
    argon = []
    while len(argon) < 40:  # argon on a shell 5-9 A from the molecule's centre, >= 3.4 A apart
        p = rng.normal(size=3)
        p = p / np.linalg.norm(p) * rng.uniform(5.0, 9.0)
        if all(np.linalg.norm(p - q) > 3.4 for q in argon) and np.min(np.linalg.norm(mol.positions - p, axis=1)) > 3.0:
            argon.append(p)
    symbols = mol.get_chemical_symbols() + ["Ar"] * len(argon)
    positions = np.concatenate([mol.positions, argon])

    topology = make_topology(symbols)
    system = openmm.System()
    lj = openmm.NonbondedForce()
    lj.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    for s in symbols:
        system.addParticle(app.Element.getBySymbol(s).mass)
        lj.addParticle(0.0, *LJ[s])
    n = len(mol)
    for i in range(n):  # no MM interactions inside the ML molecule
        for j in range(i + 1, n):
            lj.addException(i, j, 0.0, 0.1, 0.0)
    system.addForce(lj)
    system.addForce(EquiForce(MODEL, topology, particles=range(n)))

    integrator = openmm.LangevinMiddleIntegrator(100 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtoseconds)
    simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(positions * unit.angstrom)
    simulation.minimizeEnergy(maxIterations=50)
    simulation.reporters.append(app.StateDataReporter(sys.stdout, 100, step=True, potentialEnergy=True,
                                                      temperature=True))
    simulation.step(args.steps)


if __name__ == "__main__":
    main()
