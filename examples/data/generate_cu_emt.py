"""Bulk copper with vacancies and surfaces at 300-1200 K, labelled with ASE's EMT.

    python examples/data/generate_cu_emt.py -o examples/data/cu_emt.xyz

Langevin MD per (structure, temperature), one frame every 20 steps after 100 steps of warm-up;
energies, forces and (periodic bulk only) stresses in eV, eV/A, eV/A^3. Deterministic (seeded).
"""
import argparse

import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution


def structures(rng):
    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))  # 32 atoms
    yield "bulk", crystal.copy()
    vacancy = crystal.copy()
    del vacancy[int(rng.integers(len(vacancy)))]
    yield "vacancy", vacancy
    divacancy = crystal.copy()
    for index in sorted(rng.choice(len(divacancy), 2, replace=False), reverse=True):
        del divacancy[int(index)]
    yield "divacancy", divacancy
    slab = fcc111("Cu", size=(3, 3, 4), a=3.61, vacuum=6.0, periodic=True)  # 36 atoms, a (111) surface
    yield "surface", slab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", default="examples/data/cu_emt.xyz")
    parser.add_argument("--frames", type=int, default=12, help="frames per structure and temperature")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = []
    for kind, atoms in structures(rng):
        for temperature in (300, 600, 900, 1200):
            a = atoms.copy()
            a.calc = EMT()
            MaxwellBoltzmannDistribution(a, temperature_K=temperature, rng=rng)
            dyn = Langevin(a, 2.0 * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
            dyn.run(100)
            for _ in range(args.frames):
                dyn.run(20)
                frame = a.copy()
                frame.info.update(config_type=kind, temperature=temperature, energy=a.get_potential_energy())
                frame.arrays["forces"] = a.get_forces()
                if kind != "surface":
                    frame.info["stress"] = a.get_stress()
                frames.append(frame)
    write(args.output, frames, format="extxyz")
    print(f"wrote {len(frames)} frames to {args.output}")


if __name__ == "__main__":
    main()
