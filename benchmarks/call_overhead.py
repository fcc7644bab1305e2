"""Per-call overhead on a small molecule: the exported model's `compute` on 9-atom ethanol, and one
equiforce op on one row, where what a call costs beyond the arithmetic (argument checks,
decoding the tensor-product descriptor) shows.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/call_overhead.py
    ... --ops-library /path/to/other/libequiforce_ops.so   # the same, on another build of the ops

`--ops-library` loads that operator library before equiforce does (same schemas), so two builds
can be compared one process each, on the same model file.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def median_us(fn, repeats: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops-library", type=Path, help="load this libequiforce_ops.so instead of the installed one")
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "models" / "ethanol.pt")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    if args.ops_library:
        torch.ops.load_library(str(args.ops_library))
    import ase.io

    from equiforce.hosts.ase import EquiForceCalculator
    from equiforce.o3 import FullyConnectedTensorProduct

    calc = EquiForceCalculator(str(args.model))
    model = calc.deployed
    atoms = ase.io.read(ROOT / "examples" / "data" / "ethanol" / "train.xyz", index=0)
    species = calc._species_index(atoms.get_chemical_symbols())
    positions = torch.tensor(atoms.positions, dtype=torch.float64)
    cell = torch.zeros(3, 3, dtype=torch.float64)
    pbc = torch.zeros(3, dtype=torch.bool)
    compute = median_us(lambda: model.compute(positions, species, cell, pbc), args.repeats)

    ops_us = {}
    for mul in (8, 32):  # one row through torch.ops directly: the call's own cost, decoding included
        irreps = f"{mul}x0e+{mul}x1o+{mul}x2e"
        tp = FullyConnectedTensorProduct(irreps, "0e+1o+2e", irreps).double()
        x1 = torch.randn(1, tp.irreps_in1.dim, dtype=torch.float64)
        x2 = torch.randn(1, tp.irreps_in2.dim, dtype=torch.float64)
        w = torch.randn(tp.weight_numel, dtype=torch.float64)
        call = torch.ops.equiforce.tensor_product
        ints, floats, dim_out = tp.descriptor_ints, tp.descriptor_floats, tp._dim_out
        ops_us[f"tensor_product_1_row_{mul}x_us"] = round(
            median_us(lambda: call(x1, x2, w, ints, floats, dim_out), 5 * args.repeats), 2)
    result = {"ops_library": str(args.ops_library or "installed"), "atoms": len(atoms),
              "compute_us": round(compute, 1), **ops_us, "threads": torch.get_num_threads()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
