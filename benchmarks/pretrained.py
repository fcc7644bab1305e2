"""Pretrained SevenNet models: equiforce's conversion against sevenn's own calculator, side by side.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/pretrained.py [--models 7net-0 7net-l3i5] [--repeats 5]

Per call: energy + forces + stress through each one's ASE calculator (neighbour list included), float32,
on the CPU with the threads OMP_NUM_THREADS allows; an oxide (rattled rutile TiO2) and a metal (rattled
fcc Cu) from ~64 to ~1,000 atoms. Times are medians of ``--repeats`` calls after a warm-up call, both
codes in this process, alternating. Peak memory: each (code, structure) in a fresh process, the peak
resident set of one call over the process's resident set before it (VmHWM after
resetting it, over VmRSS), so one code's
caches never count for the other. Prints a markdown table and writes benchmarks/results/pretrained.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def structures():
    from ase.build import bulk
    from ase.spacegroup import crystal

    def rutile(reps):
        atoms = crystal(["Ti", "O"], basis=[(0, 0, 0), (0.305, 0.305, 0)], spacegroup=136,
                        cellpar=[4.594, 4.594, 2.959, 90, 90, 90]).repeat(reps)
        atoms.rattle(0.04, seed=1)
        return atoms

    def copper(reps):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
        atoms.rattle(0.04, seed=2)
        return atoms

    return {"TiO2_72": rutile((2, 2, 3)), "TiO2_270": rutile((3, 3, 5)), "TiO2_1080": rutile((6, 6, 5)),
            "Cu_64": copper((2, 2, 4)), "Cu_256": copper((4, 4, 4)), "Cu_1008": copper((6, 6, 7))}


def calculator(code: str, model: str, converted: Path):
    if code == "sevenn":
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(model, device="cpu")
    from equiforce.hosts.ase import EquiForceCalculator

    return EquiForceCalculator(converted)


def one_call(atoms, calc):
    atoms = atoms.copy()
    calc.reset()  # ASE would return the cached results of an unchanged structure
    atoms.calc = calc
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    return atoms


def memory_child(code: str, model: str, converted: str, name: str) -> None:
    """In a fresh process: peak RSS growth (MiB) of one call, after a first call on a tiny cell."""
    warnings.filterwarnings("ignore")
    calc = calculator(code, model, Path(converted))
    from ase.build import bulk

    one_call(bulk("Cu", "fcc", a=3.61) * (2, 2, 2), calc)  # code paths loaded, model built
    atoms = structures()[name]
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current size
    one_call(atoms, calc)
    print(json.dumps({"peak_mib": (_status_kib("VmHWM") - before) / 1024}))


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (ru_maxrss would carry the parent's size across fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["7net-0", "7net-l3i5"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return memory_child(*args.child)
    warnings.filterwarnings("ignore")
    from equiforce.convert import convert

    import torch

    rows, results = [], []
    workdir = Path(tempfile.mkdtemp(prefix="pretrained_bench_"))
    for model in args.models:
        converted = convert(f"sevenn:{model}", workdir / f"{model}.pt")
        calcs = {code: calculator(code, model, converted) for code in ("sevenn", "equiforce")}
        for name, atoms in structures().items():
            times = {code: [] for code in calcs}
            for code, calc in calcs.items():
                one_call(atoms, calc)  # warm-up
            for _ in range(args.repeats):
                for code, calc in calcs.items():
                    t0 = time.perf_counter()
                    done = one_call(atoms, calc)
                    times[code].append(time.perf_counter() - t0)
            ms = {code: 1e3 * statistics.median(t) for code, t in times.items()}
            entry = {"model": model, "structure": name, "atoms": len(atoms), "ms": ms,
                     "speedup": ms["sevenn"] / ms["equiforce"]}
            if not args.skip_memory:
                peaks = {}
                for code in calcs:
                    out = subprocess.run([sys.executable, __file__, "--child", code, model, str(converted), name],
                                         capture_output=True, text=True, timeout=1800, env=os.environ.copy())
                    peaks[code] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"] if out.returncode == 0 \
                        else float("nan")
                entry["peak_mib"] = peaks
                entry["memory_ratio"] = peaks["equiforce"] / peaks["sevenn"] if peaks["sevenn"] else float("nan")
            results.append(entry)
            mem = (f"{entry['peak_mib']['sevenn']:.0f} | {entry['peak_mib']['equiforce']:.0f} | "
                   f"{entry['memory_ratio']:.2f}") if "peak_mib" in entry else "- | - | -"
            rows.append(f"| {model} | {name} | {len(atoms)} | {ms['sevenn']:.1f} | {ms['equiforce']:.1f} | "
                        f"{entry['speedup']:.2f}x | {mem} |")
            print(rows[-1], flush=True)
            del done
    print("\n| model | structure | atoms | sevenn ms | equiforce ms | speed-up | sevenn peak MiB | equiforce peak "
          "MiB | memory ratio |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    out = ROOT / "benchmarks" / "results" / "pretrained.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"threads": torch.get_num_threads(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
