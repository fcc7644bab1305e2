#!/usr/bin/env python
"""OpenMM: the C++ EquiForce plugin against the same exported model run through ``openmm.PythonForce``
(a Python callback per step, what openmm-ml uses for MACE and NequIP), same process, same platform.

Shipped models: ethanol (examples/models/ethanol.pt, 9 atoms, vacuum) and copper
(examples/models/cu.pt, periodic fcc blocks of 108, 256, 500 and 864 atoms). Each side: a System with
only that force, ``VerletIntegrator`` (0.5 fs ethanol, 2 fs Cu) on the ``--platform`` (default CPU),
velocities from 300 K, ``--warmup`` steps, then the median over ``--repeats`` timed blocks of steps
(block length by size); the three sides alternate, ``--rounds`` times, and each keeps its best
round. The PythonForce callback (positions and box from the State, forces back as a NumPy array)
loads the file two ways: ``torch.jit.load`` with TorchScript's default executor (what a user of
openmm-ml's PythonForce pattern would write) and ``equiforce.deploy.load`` (equiforce's Python API,
which runs TorchScript without the graph-executor optimisations, like the plugin). Torch threads:
``--threads`` on every side (``OMP_WAIT_POLICY=PASSIVE``). ns/day from the step time and time step.

Reproduce (about 2 minutes on 2 cores):
    python benchmarks/openmm_plugin.py --json-out benchmarks/results/openmm.json
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import openmm  # noqa: E402
import torch  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from openmm import unit  # noqa: E402

from _common import environment, env_footer, finish_environment, log, write_json  # noqa: E402
from equiforce.deploy import load  # noqa: E402
from equiforce.openmm import EquiForce  # noqa: E402

EV = 96.48533212331002  # kJ/mol per eV
MODELS = ROOT / "examples" / "models"


def systems():
    eth = molecule("CH3CH2OH")
    yield "ethanol", eth, MODELS / "ethanol.pt", 0.5, 100
    for rep, steps in (((3, 3, 3), 20), ((4, 4, 4), 10), ((5, 5, 5), 5), ((6, 6, 6), 3)):
        yield f"Cu {4 * rep[0] ** 3}", bulk("Cu", "fcc", a=3.61, cubic=True).repeat(rep), MODELS / "cu.pt", 2.0, steps


def python_force(model_path, atoms, loader):
    """The same model behind openmm.PythonForce; ``loader``: "torch.jit" or "equiforce"."""
    module, meta = load(model_path)
    if loader == "torch.jit":
        module = torch.jit.load(str(model_path))
    names = meta["species"].split()
    species = torch.tensor([names.index(s) for s in atoms.get_chemical_symbols()])
    periodic = bool(atoms.pbc.all())
    pbc = torch.tensor([periodic] * 3)

    def compute(state):
        pos = torch.from_numpy(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer) * 10.0)
        if periodic:
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            cell = torch.from_numpy(np.asarray(box) * 10.0)
        else:
            cell = torch.zeros(3, 3, dtype=torch.float64)
        energy, _, forces = module.compute(pos, species, cell, pbc)[:3]
        return float(energy) * EV, forces.double().numpy() * (EV * 10.0)

    force = openmm.PythonForce(compute)
    force.setUsesPeriodicBoundaryConditions(periodic)
    return force


def time_steps(atoms, force, dt_fs, platform, steps, warmup, repeats):
    system = openmm.System()
    for m in atoms.get_masses():
        system.addParticle(m)
    if atoms.pbc.all():
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in atoms.cell.array))
    system.addForce(force)
    integrator = openmm.VerletIntegrator(dt_fs * unit.femtoseconds)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform))
    context.setPositions(atoms.positions * 0.1)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 3)
    integrator.step(warmup)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        integrator.step(steps)
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    env = environment({"openmm": openmm.__version__, "platform": args.platform})
    rows = []
    for name, atoms, model, dt, steps in systems():
        periodic = bool(atoms.pbc.all())
        sides = {"plugin": lambda: EquiForce(model, elements=atoms.get_chemical_symbols(), periodic=periodic),
                 "python_force_torch_jit": lambda: python_force(model, atoms, "torch.jit"),
                 "python_force_equiforce": lambda: python_force(model, atoms, "equiforce")}
        best = {side: float("inf") for side in sides}
        for _ in range(args.rounds):
            for side, make in sides.items():
                best[side] = min(best[side], time_steps(atoms, make(), dt, args.platform, steps, args.warmup,
                                                        args.repeats))
        row = dict(system=name, atoms=len(atoms), dt_fs=dt, **{f"{k}_ms": v * 1e3 for k, v in best.items()},
                   **{f"{k}_ns_per_day": dt * 1e-6 * 86400 / v for k, v in best.items()},
                   speedup_vs_torch_jit=best["python_force_torch_jit"] / best["plugin"],
                   speedup_vs_equiforce=best["python_force_equiforce"] / best["plugin"],
                   callback_overhead_ms=(best["python_force_equiforce"] - best["plugin"]) * 1e3)
        rows.append(row)
        log(f"{name}: plugin {row['plugin_ms']:.2f} ms/step ({row['plugin_ns_per_day']:.3f} ns/day); PythonForce "
            f"torch.jit.load {row['python_force_torch_jit_ms']:.2f} ms ({row['speedup_vs_torch_jit']:.2f}x), "
            f"equiforce.deploy.load {row['python_force_equiforce_ms']:.2f} ms ({row['speedup_vs_equiforce']:.2f}x, "
            f"{row['callback_overhead_ms']:+.2f} ms)")
    env = finish_environment(env, t_start)
    log(env_footer(env))
    write_json(args.json_out, {"environment": env, "rows": rows}, "openmm")


if __name__ == "__main__":
    main()
