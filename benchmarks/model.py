#!/usr/bin/env python
"""Whole-model benchmark (CPU): equiforce vs nequip 0.19 (PyPI), energy + forces per call.

Both models get the same hyperparameters (NequIP's tutorial: r_max 5, l_max 2 with parity,
32 features, 4 layers, 8 Bessel functions, polynomial cutoff p = 6, radial MLP 2 x 64, species
C H O, avg_num_neighbors 40, random weights: cost does not depend on them) and the same
structures: ethanol (9 atoms, no cell) and periodic C/H/O boxes (C:H:O = 2:6:1) at 0.1 atoms/A^3,
atoms on a jittered cubic lattice (nearest distance >= 1.5 A), about 52 neighbours per atom.
The neighbour lists are built before timing, each side with its own (nequip: its transforms,
matscipy; equiforce: ``equiforce::neighbor_list``), so the timed call is the model: energy and
forces (nequip's ``ForceStressOutput`` also returns the virial for cells; so does ours).

Timing: both sides in this process, same ``--threads`` and OMP_WAIT_POLICY (PASSIVE unless set),
``--warmup`` untimed then ``--repeats`` timed calls, alternating sides per system and dtype;
speedup = nequip median / equiforce median, for each of our two export formats (TorchScript and
AOTInductor, the same model and weights). Peak memory: each (side, system, dtype) in a fresh
subprocess of this script: build, one small warm-up call, reset the peak-RSS counter
(``/proc/self/clear_refs``), one full call, ``VmHWM - VmRSS_before`` (GiB). nequip configs whose
estimated peak (per edge, from the float32 run of the same system, x2 for float64) exceeds
``--max-gb`` are skipped, and the estimate is reported.

Floating-point floor: per edge and layer, the convolution's sparse Clebsch-Gordan work
(2 flops per nonzero and channel) plus the radial MLP (2 flops per multiply-add); energy + forces
costs about 3x the forward (the backward of a product is two products). ``achieved_gflops`` =
floor flops of the call / its median time, against the nominal peak of the machine
(``--peak-gflops``, default: 2 cores x 2.45 GHz x 32 float32 flops per cycle, half for float64).

Reproduce (needs ``pip install nequip==0.19.1``; about 15 minutes on 2 cores):
    python benchmarks/model.py --json-out benchmarks/results/model.json
Smoke test:
    python benchmarks/model.py --systems ethanol box:200 --repeats 2 --json-out /tmp/model_quick.json
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (environment, env_footer, finish_environment, log, proc_status_kib, reset_peak_rss,  # noqa: E402
                     time_fn, write_json)

import numpy as np  # noqa: E402
import torch  # noqa: E402

SPECIES = ["C", "H", "O"]
HYPER = dict(r_max=5.0, l_max=2, parity=True, num_features=32, num_layers=4, num_basis=8, cutoff_p=6,
             radial_hidden=64, radial_depth=2, avg_num_neighbors=40.0)


def make_system(name, seed=0):
    from ase import Atoms
    from ase.build import molecule

    if name == "ethanol":
        return molecule("CH3CH2OH")
    n = int(name.split(":", 1)[1])
    rng = np.random.default_rng(seed)
    side = round((n / 0.1) ** (1 / 3) / (1 / 0.1) ** (1 / 3))  # lattice sites per edge
    a = (1 / 0.1) ** (1 / 3)  # 2.154 A: 0.1 atoms/A^3
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
    pos = (grid + 0.5 + rng.uniform(-0.15, 0.15, grid.shape)) * a
    symbols = np.array(["C"] * 2 + ["H"] * 6 + ["O"])[np.arange(len(pos)) % 9]
    rng.shuffle(symbols)
    return Atoms(symbols=list(symbols), positions=pos, cell=[side * a] * 3, pbc=True)


# ---- the two sides ------------------------------------------------------------------------------
def build_equiforce(dtype, script=True):
    """The deployed module, TorchScript-compiled as `equiforce deploy` writes it (what the ASE
    calculator, LAMMPS and OpenMM run); ``script=False`` for the eager Python module."""
    from equiforce.deploy import DeployedPotential
    from equiforce.model import EquiForceModel

    torch.manual_seed(0)
    model = EquiForceModel.from_config(dict(species=SPECIES, **HYPER, dtype=dtype)).eval()
    potential = DeployedPotential(model, {"format": "equiforce-deployed"})
    return torch.jit.script(potential) if script else potential


def equiforce_call(potential, atoms):
    from equiforce.ops import neighbor_list

    dtype = potential.dtype if hasattr(potential, "dtype") else potential.model.energy_shift.dtype
    pos = torch.tensor(atoms.positions, dtype=dtype)
    cell = torch.tensor(atoms.cell.array, dtype=dtype)
    species = torch.tensor([SPECIES.index(s) for s in atoms.get_chemical_symbols()])
    i, j, s = neighbor_list(pos, cell, bool(atoms.pbc.any()), HYPER["r_max"])
    shift = s.to(dtype) @ cell

    def call():
        energy, _, forces = potential(pos, species, j, i, shift, pos.shape[0])[:3]
        return energy, forces
    return call, len(i)


def build_equiforce_aoti(dtype):
    """The same model exported with ``--format aoti`` (compiled once per dtype, cached in the temp dir;
    ~75 s each) and loaded as hosts load it."""
    import tempfile

    from equiforce.deploy import export, load

    path = os.path.join(tempfile.gettempdir(), f"equiforce_model_bench_{dtype}.pt2")
    if not os.path.exists(path):
        export(build_equiforce(dtype, script=False).model, path, format="aoti")
    return load(path)[0]


def build_nequip(dtype):
    from hydra.utils import get_method
    from nequip.utils.global_state import set_global_state

    set_global_state()
    cfg = {"_target_": "nequip.model.NequIPGNNModel", "seed": 0, "model_dtype": dtype, "type_names": SPECIES,
           "r_max": HYPER["r_max"], "num_bessels": HYPER["num_basis"], "bessel_trainable": False,
           "polynomial_cutoff_p": HYPER["cutoff_p"], "num_layers": HYPER["num_layers"], "l_max": HYPER["l_max"],
           "parity": HYPER["parity"], "num_features": HYPER["num_features"],
           "radial_mlp_depth": HYPER["radial_depth"], "radial_mlp_width": HYPER["radial_hidden"],
           "avg_num_neighbors": HYPER["avg_num_neighbors"],
           "per_type_energy_scales": {t: 1.0 for t in SPECIES}, "per_type_energy_shifts": {t: 0.0 for t in SPECIES},
           "per_type_energy_scales_trainable": False, "per_type_energy_shifts_trainable": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_method(cfg.pop("_target_"))(**cfg)
    return model.eval()


def nequip_call(model, atoms):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.integrations.utils import basic_transforms

    md = model.metadata
    data = from_ase(atoms)
    for t in basic_transforms(md, float(md["r_max"]), SPECIES, {t: t for t in SPECIES}):
        data = t(data)

    def call():
        out = model(dict(data))
        return out[AtomicDataDict.TOTAL_ENERGY_KEY].detach(), out[AtomicDataDict.FORCE_KEY].detach()
    return call, int(data[AtomicDataDict.EDGE_INDEX_KEY].shape[1])


SIDES = {"equiforce": (build_equiforce, equiforce_call), "equiforce_aoti": (build_equiforce_aoti, equiforce_call),
         "nequip": (build_nequip, nequip_call)}
OURS = ("equiforce", "equiforce_aoti")


# ---- floating-point floor ---------------------------------------------------------------------
def flops_per_edge(dtype="float64"):
    """Forward flops per edge of the convolutions and radial MLPs of all layers (the floor's terms)."""
    potential = build_equiforce(dtype, script=False)
    conv, mlp = 0, 0
    for layer in potential.model.layers:
        d = layer.conv.descriptor
        nnz = d.nonzeros()
        for n, ins in enumerate(d.instructions):
            mul = d.irreps_in1[ins.i_in1].mul
            conv += 2 * mul * sum(1 for e in nnz if e[0] == n)
        for lin in layer.radial.layers:
            mlp += 2 * lin.in_features * lin.out_features
    return {"conv_fwd": conv, "radial_mlp_fwd": mlp, "fwd": conv + mlp, "energy_forces": 3 * (conv + mlp)}


# ---- memory (subprocess) ---------------------------------------------------------------------
def memory_child(side, system, dtype, threads):
    torch.set_num_threads(threads)
    build, prepare = SIDES[side]
    model = build(dtype)
    small, _ = prepare(model, make_system("ethanol"))
    small()
    call, edges = prepare(model, make_system(system))
    gc.collect()
    before = proc_status_kib("VmRSS")["VmRSS"]
    reset = reset_peak_rss()
    result = call()
    after = proc_status_kib("VmHWM")["VmHWM"]
    del result
    return {"peak_increase_gib": (after - before) / 2**20, "edges": edges, "reset": reset}


def measure_memory(side, system, dtype, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", side, system, dtype, str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory subprocess failed ({side} {system} {dtype}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- main -----------------------------------------------------------------------------------------
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", nargs="+", default=["ethanol", "box:1000", "box:4000"])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--slow-repeats", type=int, default=3, help="repeats for calls slower than 5 s")
    p.add_argument("--max-gb", type=float, default=14.0)
    p.add_argument("--peak-gflops", type=float, default=None)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json-out")
    p.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        side, system, dtype, threads = args.memory_child
        print(json.dumps(memory_child(side, system, dtype, int(threads))))
        return 0

    import equiforce
    import nequip

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    env = environment({"equiforce": equiforce.__version__, "nequip": nequip.__version__})
    floor = flops_per_edge()
    log(f"[model] flops per edge (forward, all layers): conv {floor['conv_fwd']}, radial MLP "
        f"{floor['radial_mlp_fwd']}; energy+forces floor {floor['energy_forces']}")
    results, gib_per_edge = [], {}
    for dtype in args.dtypes:
        models = {side: SIDES[side][0](dtype) for side in SIDES}
        for system in args.systems:
            atoms = make_system(system)
            rec = {"system": system, "atoms": len(atoms), "dtype": dtype}
            calls = {}
            for side in SIDES:
                calls[side], rec[f"{side}_edges"] = SIDES[side][1](models[side], atoms)
            outputs = {side: calls[side]() for side in SIDES}
            rec["sum_force_abs_max"] = {side: float(f.sum(0).abs().max()) for side, (_, f) in outputs.items()}
            # the two exports of one model agree (same weights, same kernels)
            rec["aoti_vs_torchscript_max_force_diff"] = float((outputs["equiforce"][1] - outputs["equiforce_aoti"][1]).abs().max())
            edges = rec["nequip_edges"]
            for side in SIDES:
                est = gib_per_edge.get((side, system), None)
                if side == "nequip" and dtype == "float64" and ("nequip", system) in gib_per_edge:
                    est = 2 * gib_per_edge[("nequip", system)] * edges
                    rec["nequip_est_gib"] = est
                    if est > args.max_gb:
                        rec["nequip_skipped"] = f"estimated peak {est:.1f} GiB > --max-gb {args.max_gb}"
                        log(f"[{system} {dtype}] nequip skipped: {rec['nequip_skipped']}")
                        continue
                t0 = time.perf_counter()
                calls[side]()
                first = time.perf_counter() - t0
                repeats = args.slow_repeats if first > 5 else args.repeats
                rec[side] = time_fn(calls[side], 0 if first > 5 else args.warmup, repeats)
                if not args.no_memory:
                    mem = measure_memory(side, system, dtype, args.threads)
                    rec[side]["peak_increase_gib"] = mem["peak_increase_gib"]
                    if dtype == "float32":
                        gib_per_edge[(side, system)] = mem["peak_increase_gib"] / max(edges, 1)
                log(f"[{system} {dtype}] {side}: {rec[side]['median_ms']:.1f} ms "
                    f"(cpu_util {rec[side]['cpu_util']:.2f})"
                    + (f", peak +{rec[side]['peak_increase_gib']:.3f} GiB" if "peak_increase_gib" in rec[side] else ""))
            for ours in OURS:
                if "nequip" in rec:
                    rec[f"speedup_{ours}"] = rec["nequip"]["median_ms"] / rec[ours]["median_ms"]
                    if rec["nequip"].get("peak_increase_gib", 0) > 0.01:  # below ~10 MiB the counters are noise
                        rec[f"memory_ratio_{ours}"] = rec[ours]["peak_increase_gib"] / rec["nequip"]["peak_increase_gib"]
            peak = args.peak_gflops or 2 * 2.45 * (32 if dtype == "float32" else 16)
            work = floor["energy_forces"] * rec["equiforce_edges"]
            rec["floor_flops"] = work
            best = min(rec[ours]["median_ms"] for ours in OURS)
            rec["achieved_gflops"] = work / (best * 1e-3) / 1e9
            rec["fraction_of_peak"] = rec["achieved_gflops"] / peak
            log(f"[{system} {dtype}] speedup TorchScript {rec.get('speedup_equiforce', float('nan')):.2f}x, AOTI "
                f"{rec.get('speedup_equiforce_aoti', float('nan')):.2f}x  memory ratio "
                f"{rec.get('memory_ratio_equiforce', float('nan')):.3f} / {rec.get('memory_ratio_equiforce_aoti', float('nan')):.3f}"
                f"  floor {work / 1e9:.2f} GFLOP -> "
                f"{rec['achieved_gflops']:.1f} GFLOP/s ({100 * rec['fraction_of_peak']:.1f}% of {peak:.0f})")
            results.append(rec)
            gc.collect()
    env = finish_environment(env, t_start)
    log("[model] " + env_footer(env))
    payload = {"env": env, "hyperparameters": HYPER, "flops_per_edge": floor, "results": results}
    write_json(args.json_out, payload, "model")
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
