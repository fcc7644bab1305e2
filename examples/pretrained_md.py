"""A pretrained universal model in the production hosts, without Python in the MD loop: SevenNet-0
(89 elements, MPtrj), converted from the installed sevenn package with ``equiforce convert
sevenn:7net-0``, runs NVE molecular dynamics of titanium dioxide

- in LAMMPS on 2 MPI ranks (``mpirun -np 2 lmp``, ``pair_style equiforce``, ``pair_coeff * * 7net-0.pt
  Ti O``): a periodic rutile box, each rank updating its own atoms and exchanging node features with
  the other between the 5 layers (ghosts out to r_max + skin = 7 A only);
- in OpenMM (the ``EquiForce`` plugin force, CPU platform): the same periodic rutile box.

Prints the energy conservation and ms/step per host (after a warm-up step; OpenMM's energy readings,
every 5 steps, are not timed) and writes a plot of the total-energy drift.

    python examples/pretrained_md.py [--steps 100] [--out runs/demo]

The two hosts start from the same positions, so their first energies agree (printed).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
MASSES = {"Ti": 47.867, "O": 15.999}


def rutile(repeat):
    from ase.spacegroup import crystal

    return crystal(["Ti", "O"], basis=[(0, 0, 0), (0.3048, 0.3048, 0)], spacegroup=136,
                   cellpar=[4.594, 4.594, 2.959, 90, 90, 90]).repeat(repeat)


def rutile_box():
    """72 atoms of rutile (2 x 2 x 3 cells, 9.2 x 9.2 x 8.9 A), slightly rattled: the demo's system."""
    atoms = rutile((2, 2, 3))
    atoms.rattle(0.02, seed=1)
    return atoms


def tio2_nve_input(data: Path, model: Path, steps: int, boundary: str = "p p p") -> str:
    """LAMMPS input: NVE of a TiO2 data file from 300 K with pair_style equiforce, a 1-step warm-up run,
    then ``steps`` steps (thermo every 5: step temp pe etotal)."""
    return f"""units metal
atom_style atomic
boundary {boundary}
read_data {data}
mass 1 {MASSES['Ti']}
mass 2 {MASSES['O']}
pair_style equiforce
pair_coeff * * {model} Ti O
velocity all create 300 4928459 mom yes rot yes
timestep 0.001
fix nve all nve
thermo 5
thermo_style custom step temp pe etotal
run 1
run {steps}
"""


def energy_stats(times_ps, energies, atoms):
    energies = np.asarray(energies)
    slope = np.polyfit(times_ps, energies, 1)[0] if len(energies) > 2 else float("nan")
    return {"drift_mev_per_atom_per_ps": 1000 * slope / atoms,
            "fluctuation_mev_per_atom": 1000 * energies.std() / atoms}


def run_lammps(model: Path, steps: int, work: Path) -> dict:
    from ase.io import write

    atoms = rutile_box()
    data = work / "tio2.data"
    write(data, atoms, format="lammps-data", specorder=["Ti", "O"], masses=False)
    script = work / "in.tio2"
    script.write_text(tio2_nve_input(data, model, steps))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env.pop("LAMMPS_PLUGIN_PATH", None)
    out = subprocess.run([str(BIN / "mpirun"), "-np", "2", str(BIN / "lmp"), "-in", str(script), "-log", "none"],
                         capture_output=True, text=True, env=env, cwd=work)
    if out.returncode != 0:
        raise RuntimeError("LAMMPS failed:\n" + out.stdout[-3000:] + out.stderr[-2000:])
    rows = re.findall(r"^\s*(\d+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s*$", out.stdout, re.M)
    by_step = {int(r[0]): float(r[3]) for r in rows}  # the warm-up run's rows repeat step 1
    steps_done = np.array(sorted(by_step))
    etotal = np.array([by_step[k] for k in steps_done])
    loop = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", out.stdout)[-1]
    first_pe = float(re.findall(r"^\s*0\s+[-0-9.eE+]+\s+([-0-9.eE+]+)\s", out.stdout, re.M)[0])
    return {"host": "LAMMPS, 2 MPI ranks", "system": f"rutile, {len(atoms)} atoms, periodic", "first_pe": first_pe,
            "atoms": len(atoms), "steps": steps, "ms_per_step": 1000 * float(loop[0]) / int(loop[2]),
            "times_ps": steps_done * 1e-3, "energies": etotal,
            **energy_stats(steps_done * 1e-3, etotal, len(atoms))}


def run_openmm(model: Path, steps: int, every: int = 5) -> dict:
    import openmm
    from openmm import app, unit

    from equiforce.openmm import EquiForce, make_topology

    atoms = rutile_box()
    topology = make_topology(atoms.get_chemical_symbols(), box=atoms.cell.array)
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.addForce(EquiForce(model, topology))
    integrator = openmm.VerletIntegrator(1 * unit.femtoseconds)
    platform = openmm.Platform.getPlatformByName("CPU")
    simulation = app.Simulation(topology, system, integrator, platform, {"Threads": "2"})
    simulation.context.setPositions(atoms.positions * unit.angstrom)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    first_pe = simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole) / 96.48533212331
    times, energies, seconds, done = [], [], 0.0, 0
    while True:  # the energy every `every` steps (reading it costs one more force call, not timed)
        state = simulation.context.getState(getEnergy=True)
        energies.append((state.getPotentialEnergy() + state.getKineticEnergy()).value_in_unit(unit.kilojoule_per_mole)
                        / 96.48533212331)  # kJ/mol -> eV
        times.append(done * 1e-3)
        if done == steps:
            break
        chunk = min(every, steps - done)
        t0 = time.perf_counter()
        simulation.step(chunk)
        seconds += time.perf_counter() - t0
        done += chunk
    return {"host": "OpenMM, CPU platform", "system": f"rutile, {len(atoms)} atoms, periodic", "first_pe": first_pe,
            "atoms": len(atoms),
            "steps": steps, "ms_per_step": 1000 * seconds / steps, "times_ps": np.array(times),
            "energies": np.array(energies), **energy_stats(np.array(times), energies, len(atoms))}


def plot(runs, path: Path):
    from equiforce.train.report import line_plot

    series = [(f"{r['host']}: {r['system']}", list(r["times_ps"]),
               list(1000 * (r["energies"] - r["energies"][0]) / r["atoms"]), "-") for r in runs]
    return line_plot(path, series, "time (ps)", "total energy - initial (meV/atom)",
                     "SevenNet-0 (converted) NVE, TiO2, 1 fs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs") / "demo")
    args = parser.parse_args(argv)
    from equiforce.convert import convert

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = convert("sevenn:7net-0", args.out / "7net-0.pt")
    print(f"converted sevenn:7net-0 -> {model} in {time.perf_counter() - t0:.1f} s (89 elements, 5 layers, r_max 5 A)")
    with tempfile.TemporaryDirectory(prefix="equiforce-demo-") as work:
        runs = [run_lammps(model, args.steps, Path(work)), run_openmm(model, args.steps)]
    print(f"{'host':22} {'system':38} {'steps':>6} {'drift meV/atom/ps':>18} {'fluct. meV/atom':>16} {'ms/step':>8}")
    for r in runs:
        print(f"{r['host']:22} {r['system']:38} {r['steps']:6d} {r['drift_mev_per_atom_per_ps']:18.3f} "
              f"{r['fluctuation_mev_per_atom']:16.4f} {r['ms_per_step']:8.1f}")
    print(f"first potential energy: LAMMPS {runs[0]['first_pe']:.6f} eV, OpenMM {runs[1]['first_pe']:.6f} eV")
    print("plot:", plot(runs, args.out / "pretrained_md.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
