"""GPU benchmark (needs a CUDA build of equiforce: tests/gpu/run_all.sh builds it and runs this).

1. The fused convolution at NequIP's sizes (node irreps 32x0e+32x1o+32x2e, SH l <= 2, 32 neighbours
   per atom, every uvu path), forward and forward+backward, float32 and float64, against e3nn's
   TensorProduct + index_add on the same GPU, and against cuEquivariance and OpenEquivariance when
   their wheels are importable (otherwise reported as absent).
2. The MD step (energy + forces, neighbour list included) of the shipped Cu model in float32 at 10k,
   100k and 1M atoms: time and peak GPU memory.

    python benchmarks/gpu.py --out benchmarks/results/gpu.json

Times are medians of CUDA-event-timed repeats after warm-up, in one process, side by side.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def conv_case(atoms, neighbors, mul, dtype):
    from equiforce import o3
    from equiforce.algebra import Irreps
    from equiforce.nn import conv_instructions, hidden_irreps

    irreps_in = Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e")
    irreps_sh = Irreps.spherical_harmonics(2)
    mid, instructions = conv_instructions(irreps_in, irreps_sh, hidden_irreps(mul, 2, True))
    g = torch.Generator(device="cuda").manual_seed(0)
    edges = atoms * neighbors
    x = torch.randn(atoms, irreps_in.dim, device="cuda", dtype=dtype, generator=g)
    vec = torch.randn(edges, 3, device="cuda", dtype=dtype, generator=g)
    sh = o3.SphericalHarmonics(irreps_sh, normalize=True, normalization="component")(vec)
    src = torch.randint(0, atoms, (edges,), device="cuda", generator=g)
    dst = torch.arange(edges, device="cuda") // neighbors
    return irreps_in, irreps_sh, mid, instructions, x, sh, src, dst


def bench_conv(atoms, neighbors, mul, dtype):
    from equiforce import o3

    irreps_in, irreps_sh, mid, instructions, x, sh, src, dst = conv_case(atoms, neighbors, mul, dtype)
    ours = o3.TensorProductConv(irreps_in, irreps_sh, mid, instructions).to(device="cuda", dtype=dtype)
    w = torch.randn(sh.shape[0], ours.weight_numel, device="cuda", dtype=dtype)
    result = {}

    def run(fn, backward):
        xs, ws = x.detach().requires_grad_(backward), w.detach().requires_grad_(backward)
        hs = sh.detach().requires_grad_(backward)

        def step():
            out = fn(xs, hs, ws)
            if backward:
                torch.autograd.grad(out.pow(2).sum(), [xs, hs, ws])
        return step

    candidates = {"equiforce": lambda a, b, c: ours(a, b, c, src, dst)}
    try:
        import e3nn.o3 as e3o3

        tp = e3o3.TensorProduct(irreps_in, irreps_sh, mid, instructions, shared_weights=False,
                                internal_weights=False).to(device="cuda", dtype=dtype)

        def e3nn_conv(a, b, c):
            messages = tp(a[src], b, c)
            return torch.zeros(atoms, messages.shape[1], device="cuda", dtype=dtype).index_add(0, dst, messages)
        candidates["e3nn"] = e3nn_conv
    except Exception as exc:  # noqa: BLE001  (report why a peer is absent)
        result["e3nn_error"] = repr(exc)
    for name in ("cuequivariance_torch", "openequivariance"):
        try:
            __import__(name)
            result[f"{name}_note"] = "importable; its side-by-side adapter is not written yet"
        except Exception as exc:  # noqa: BLE001
            result[f"{name}_note"] = f"not available here ({exc.__class__.__name__})"
    for name, fn in candidates.items():
        for backward in (False, True):
            torch.cuda.reset_peak_memory_stats()
            try:
                ms = timed(run(fn, backward))
                result[f"{name}_{'fwd_bwd' if backward else 'fwd'}_ms"] = ms
                result[f"{name}_{'fwd_bwd' if backward else 'fwd'}_peak_MiB"] = torch.cuda.max_memory_allocated() / 2**20
            except Exception as exc:  # noqa: BLE001
                result[f"{name}_{'fwd_bwd' if backward else 'fwd'}_error"] = repr(exc)[:300]
    for kind in ("fwd", "fwd_bwd"):
        if f"e3nn_{kind}_ms" in result and f"equiforce_{kind}_ms" in result:
            result[f"speedup_vs_e3nn_{kind}"] = result[f"e3nn_{kind}_ms"] / result[f"equiforce_{kind}_ms"]
    return result


def fcc_copper(cells, a=3.61):
    basis = torch.tensor([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]], dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(*[torch.arange(cells, dtype=torch.float64)] * 3, indexing="ij"), -1)
    pos = (grid.reshape(-1, 1, 3) + basis).reshape(-1, 3) * a
    pos += 0.05 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return pos, torch.eye(3, dtype=torch.float64) * a * cells


def bench_md_step(target_atoms):
    from equiforce.deploy import load

    module, meta = load(ROOT / "examples/models/cu.pt")
    module = module.to("cuda")
    cells = round((target_atoms / 4) ** (1 / 3))
    pos, cell = fcc_copper(cells)
    pos, cell = pos.float().cuda(), cell.float().cuda()
    species = torch.zeros(len(pos), dtype=torch.long, device="cuda")
    pbc = torch.ones(3, dtype=torch.bool, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        ms = timed(lambda: module.compute(pos, species, cell, pbc), repeats=5, warmup=1)
    except Exception as exc:  # noqa: BLE001  (out of memory at 1M atoms is a result too)
        return {"atoms": len(pos), "error": repr(exc)[:300]}
    return {"atoms": len(pos), "step_ms": ms, "ns_per_atom_step": 1e6 * ms / len(pos),
            "peak_GiB": torch.cuda.max_memory_allocated() / 2**30, "wall_s": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/gpu.json"))
    parser.add_argument("--atoms", type=int, default=4096, help="conv benchmark: atoms (32 neighbours each)")
    parser.add_argument("--md", default="10000,100000,1000000")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA device", file=sys.stderr)
        return 2
    from equiforce import _C

    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "equiforce_build": _C.build_info(),
              "conv": {}, "md_step_cu_float32": []}
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).replace("torch.", "")
        report["conv"][name] = bench_conv(args.atoms, 32, 32, dtype)
        print(name, json.dumps(report["conv"][name]), flush=True)
    for n in [int(x) for x in args.md.split(",") if x]:
        report["md_step_cu_float32"].append(bench_md_step(n))
        print(json.dumps(report["md_step_cu_float32"][-1]), flush=True)
        torch.cuda.empty_cache()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
