#!/usr/bin/env python
"""Periodic neighbour-list benchmark (CPU): equiforce vs vesin vs ASE, in one process.

What is measured (same positions and cell for every implementation, timed back to back per size):

* equiforce: ``equiforce.ops.neighbor_list(positions, cell, pbc=True, cutoff=5.0)`` -> (i, j, S) as
  torch tensors (float64 positions/cell as torch tensors, converted from numpy outside the timing);
  O(N) cell list, pairs sorted by i, parallel over torch's thread pool (``--threads``).
* vesin: ``vesin.NeighborList(cutoff=5.0, full_list=True, n_threads=--threads).compute(points, box,
  periodic=True, quantities='ijS')`` on numpy arrays (calculator built once, outside the timing;
  skin 0, so no Verlet caching between calls; ``sorted=False``, vesin's default, unless
  ``--vesin-sorted``). vesin >= 0.6 parallelises its CPU search with std::thread; n_threads is
  passed explicitly so all multi-threaded libraries use the same number of threads.
* ASE: ``ase.neighborlist.primitive_neighbor_list('ijS', [True]*3, cell, positions, 5.0)`` (plain
  numpy, no threading of its own; numpy's OpenBLAS may use threads in its few BLAS calls; pairs
  sorted by i). Skipped for systems above ``--skip-ase-above`` atoms
  (default 20000; it is slow and memory-hungry there), which the table marks as "skipped".

Systems: random uniform positions in periodic cubic boxes at 0.1 atoms/A^3 (edge (N/0.1)^(1/3) A),
N = 1k, 10k and 100k atoms (about 52 neighbours per atom within 5 A, full list: each pair twice).
Before timing each size, the outputs are checked: same pair count, and the same set of (i, j, S)
triples (exit status 1 otherwise). Timing as in kernels.py (benchmarks/_common.py): OMP_WAIT_POLICY=
PASSIVE unless set, ``--warmup`` untimed calls then ``--repeats`` timed calls; median / min /
iqr_over_median in ms, cpu_util = process CPU time / wall time (> 1: more than one core busy).
Ratios: vesin_ms / equiforce_ms and ase_ms / equiforce_ms (> 1: equiforce is faster).

Reproduce (from the repository root; about 2 minutes on 2 cores):
    python benchmarks/neighbor_list.py --json-out benchmarks/results/neighbor_list.json
Smoke test:
    python benchmarks/neighbor_list.py --quick --json-out /tmp/neighbor_list_quick.json
"""
import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import environment, env_footer, finish_environment, log, time_fn, write_json  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import ase  # noqa: E402
import ase.neighborlist  # noqa: E402
import vesin  # noqa: E402
import equiforce  # noqa: E402
import equiforce.ops  # noqa: E402

IMPLS = ("equiforce", "vesin", "ase")
VESIN_THREADS_NOTE = ("vesin {v}: CPU neighbour search parallelised with std::thread; "
                      "NeighborList(n_threads=0) means OMP_NUM_THREADS if set, else all cores. "
                      "This benchmark passes n_threads={t} explicitly.")


def random_system(n, density, seed):
    edge = (n / density) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, edge, size=(n, 3)), np.eye(3) * edge


def canonical(i, j, s):
    """Pairs as an [P, 5] int64 array sorted lexicographically by (i, j, S)."""
    rows = np.column_stack([np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64),
                            np.asarray(s, dtype=np.int64).reshape(-1, 3)])
    return rows[np.lexsort(rows.T[::-1])]


def callables(positions, cell, args):
    pos_t, cell_t = torch.from_numpy(positions), torch.from_numpy(cell)
    calc = vesin.NeighborList(cutoff=args.cutoff, full_list=True, sorted=args.vesin_sorted, n_threads=args.threads)
    return {
        "equiforce": lambda: equiforce.ops.neighbor_list(pos_t, cell_t, pbc=True, cutoff=args.cutoff),
        "vesin": lambda: calc.compute(points=positions, box=cell, periodic=True, quantities="ijS"),
        "ase": lambda: ase.neighborlist.primitive_neighbor_list("ijS", [True, True, True], cell, positions,
                                                                args.cutoff, self_interaction=False),
    }


def to_numpy(out):
    return [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in out]


def bench_size(results, n, args):
    positions, cell = random_system(n, args.density, seed=n)
    fns = callables(positions, cell, args)
    run = [k for k in IMPLS if not (k == "ase" and n > args.skip_ase_above)]
    rec = {"atoms": n, "box_edge_A": float(cell[0, 0]), "density": args.density, "cutoff": args.cutoff,
           "skipped": [k for k in IMPLS if k not in run]}

    # correctness: pair counts and pair sets
    ref = None
    counts = {}
    for k in run:
        rows = canonical(*to_numpy(fns[k]()))
        counts[k] = int(rows.shape[0])
        if ref is None:
            ref = rows
            same = True
        else:
            same = rows.shape == ref.shape and bool(np.array_equal(rows, ref))
        rec.setdefault("same_pairs_as_equiforce", {})[k] = same
        del rows
    del ref
    gc.collect()
    rec["pairs"] = counts
    rec["pairs_per_atom"] = counts["equiforce"] / n
    rec["agree"] = len(set(counts.values())) == 1 and all(rec["same_pairs_as_equiforce"].values())
    log(f"  check N={n}: pairs {counts} same sets {rec['same_pairs_as_equiforce']}")
    if not rec["agree"]:
        log(f"  WARNING: N={n}: implementations disagree")

    for k in run:
        rec[k] = time_fn(fns[k], args.warmup, args.repeats)
        gc.collect()
    for k in run[1:]:
        rec[f"{k}_over_equiforce"] = rec[k]["median_ms"] / rec["equiforce"]["median_ms"]
    results.append(rec)
    log(f"  nl N={n:6d} " + "  ".join(
        f"{k} {rec[k]['median_ms']:9.2f} ms (iqr/med {rec[k]['iqr_over_median']:.2f}, util {rec[k]['cpu_util']:.2f})"
        for k in run))


def print_table(results, args):
    print("| atoms | pairs | equiforce ms | vesin ms | ase ms | vesin/equiforce | ase/equiforce |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        def ms(k):
            return f"{r[k]['median_ms']:.2f}" if k in r else "skipped"

        def ratio(k):
            return f"{r[f'{k}_over_equiforce']:.2f}x" if k in r else "-"
        print(f"| {r['atoms']} | {r['pairs']['equiforce']} | {ms('equiforce')} | {ms('vesin')} | {ms('ase')} | "
              f"{ratio('vesin')} | {ratio('ase')} |")
    skipped = [r["atoms"] for r in results if "ase" in r["skipped"]]
    if skipped:
        print(f"\nASE skipped for N > {args.skip_ase_above} (--skip-ase-above): N = {skipped}")
    print(f"vesin n_threads={args.threads}, sorted={args.vesin_sorted}; equiforce torch threads "
          f"{torch.get_num_threads()}; ASE plain numpy. cutoff {args.cutoff:.1f} A, density {args.density} atoms/A^3, "
          "full lists.")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000], help="numbers of atoms")
    p.add_argument("--density", type=float, default=0.1, help="atoms per A^3 (default 0.1)")
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--skip-ase-above", type=int, default=20_000, help="skip ASE for more atoms than this")
    p.add_argument("--vesin-sorted", action="store_true", help="ask vesin for pairs sorted by i (as equiforce/ASE)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and vesin n_threads (default 2)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: 1k atoms only, 1 warmup, 3 repeats")
    p.add_argument("--json-out", default="benchmarks/results/neighbor_list.json")
    args = p.parse_args()
    if args.quick:
        args.sizes, args.warmup, args.repeats = [1000], 1, 3

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    env = environment({"equiforce": equiforce.__version__, "vesin": vesin.__version__, "ase": ase.__version__,
                       "numpy": np.__version__, "vesin_threads": args.threads,
                       "vesin_threading": VESIN_THREADS_NOTE.format(v=vesin.__version__, t=args.threads),
                       "ase_threading": "plain numpy, no threading of its own (numpy's BLAS may use threads)"})
    log(f"[neighbor_list] torch {env['torch']} equiforce {env['equiforce']} vesin {env['vesin']} ase {env['ase']} "
        f"threads {env['threads']} OMP_WAIT_POLICY {env['OMP_WAIT_POLICY']} loadavg {env['loadavg_start']}")
    results = []
    for n in args.sizes:
        bench_size(results, n, args)
    finish_environment(env, t_start)

    print_table(results, args)
    print(f"\n{env_footer(env)}")
    write_json(args.json_out, {"bench": "neighbor_list_equiforce_vesin_ase", "env": env, "args": vars(args),
                               "results": results}, "neighbor_list")
    if not all(r["agree"] for r in results):
        sys.exit("FAILED: neighbour lists disagree (see pairs / same_pairs_as_equiforce in the JSON)")


if __name__ == "__main__":
    main()
