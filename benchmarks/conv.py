#!/usr/bin/env python
"""Fused convolution benchmark (CPU): equiforce.o3.TensorProductConv vs e3nn TensorProduct + index_add.

What is measured (same inputs for both sides, timed back to back per config):

* equiforce: ``equiforce.o3.TensorProductConv(...)(x, edge_attr, edge_weight, edge_src, edge_dst)``,
  one fused op; the ``[E, d_out]`` messages are never formed.
* e3nn (what NequIP does): ``msg = e3nn.o3.TensorProduct(...)(x[edge_src], edge_attr, edge_weight)``
  then ``torch.zeros(N, d_out).index_add(0, edge_dst, msg)``.

Both modules are built from the same arguments, NequIP's sizes: node irreps ``32x0e+32x1o+32x2e``,
edge attrs = spherical harmonics ``1x0e+1x1o+1x2e`` (component normalisation, of random unit
vectors), one ``(i1, i2, i_out, 'uvu', True)`` instruction per allowed path with l_out <= 2, each
its own ``32x<ir_out>`` output segment (tests/ops/tp_cases.py::nequip_case(mul=32); 15 paths,
d_out 1632, weight_numel 480), ``shared_weights=False, internal_weights=False``. Graph: N = 4000
atoms, each the receiver (edge_dst) of exactly 32 edges whose senders (edge_src) are uniform random
atoms, E = 128000 edges in a random order (not grouped by receiver or sender); per-edge random
weights ``[E, 480]``; x ``[N, 288]`` random normal. Nothing is copied between the modules (weights
are inputs). Before timing, the outputs are compared once on a small graph (N=64, 8 neighbours;
``max_abs_diff`` in the JSON; exit status 1 on mismatch).

Modes: ``fwd`` (under no_grad) and ``fwd_bwd`` (forward + ``torch.autograd.grad(y, (x, edge_attr,
edge_weight), g)`` with a fixed random cotangent g); float32 and float64. Timing as in kernels.py
(benchmarks/_common.py): ``--threads`` via torch.set_num_threads, OMP_WAIT_POLICY=PASSIVE unless
set, ``--warmup`` untimed calls then ``--repeats`` timed calls; median / min / iqr_over_median in
ms, cpu_util = CPU time / wall time. speedup = e3nn median / equiforce median.

Peak memory of the forward pass (``--mem-modes``, default fwd only): each (side, dtype, mode) runs
in a fresh subprocess of this script, which builds the module and the full-size inputs, warms the
code path up on a tiny graph (2 calls), then reads VmRSS from /proc/self/status (baseline), resets
the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``; where that is refused, the
subprocess's earlier peak is checked not to mask the call's), runs ONE full-size call (fwd: under
no_grad, output kept alive; fwd_bwd: forward + grads) and reads VmHWM. Reported:
``peak_increase_mib = VmHWM_after - VmRSS_before`` (inputs and the module excluded, the output
included; glibc malloc default settings, as a user would run). memory ratio = equiforce peak
increase / e3nn peak increase (< 1: equiforce needs less).

Reproduce (from the repository root; about 10 minutes on 2 cores):
    python benchmarks/conv.py --json-out benchmarks/results/conv.json
Smoke test:
    python benchmarks/conv.py --quick --json-out /tmp/conv_quick.json
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (environment, env_footer, finish_environment, log, make_fn, nequip_tp_arguments,  # noqa: E402
                     proc_status_kib, random_unit, reset_peak_rss, time_fn, write_json)
# (_common sets OMP_WAIT_POLICY before torch is imported)

import torch  # noqa: E402
import e3nn  # noqa: E402
import e3nn.o3  # noqa: E402
import equiforce  # noqa: E402
import equiforce.o3  # noqa: E402

SIDES = ("equiforce", "e3nn")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}
CHECK_GRAPH = (64, 8)  # atoms, neighbours for the agreement check


class E3nnConv(torch.nn.Module):
    """NequIP's convolution: gather senders, per-edge TensorProduct, index_add over receivers."""

    def __init__(self, tp):
        super().__init__()
        self.tp = tp

    def forward(self, x, edge_attr, edge_weight, edge_src, edge_dst):
        msg = self.tp(x[edge_src], edge_attr, edge_weight)
        return torch.zeros(x.shape[0], msg.shape[1], dtype=msg.dtype).index_add(0, edge_dst, msg)


def build(side, dtype):
    in1, in2, out, instructions = nequip_tp_arguments(mul=32, lmax=2)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # e3nn's TP buffers follow the default dtype
    try:
        if side == "equiforce":
            return equiforce.o3.TensorProductConv(in1, in2, out, instructions, shared_weights=False,
                                                  internal_weights=False)
        return E3nnConv(e3nn.o3.TensorProduct(in1, in2, out, instructions, shared_weights=False,
                                              internal_weights=False))
    finally:
        torch.set_default_dtype(prev)


def info():
    in1, in2, out, instructions = nequip_tp_arguments(mul=32, lmax=2)
    tp = e3nn.o3.TensorProduct(in1, in2, out, instructions, shared_weights=False, internal_weights=False)
    return {"irreps_in1": in1, "irreps_in2": in2, "irreps_out": out, "n_instructions": len(instructions),
            "dim_in1": tp.irreps_in1.dim, "dim_in2": tp.irreps_in2.dim, "dim_out": tp.irreps_out.dim,
            "weight_numel": tp.weight_numel}


def make_graph(n_atoms, neighbours, dtype, seed=0):
    """(x, edge_attr, edge_weight, edge_src, edge_dst): every atom receives `neighbours` edges from
    uniform random senders; edges shuffled."""
    d = info()
    g = torch.Generator().manual_seed(seed)
    e = n_atoms * neighbours
    edge_dst = torch.arange(n_atoms).repeat_interleave(neighbours)
    edge_src = torch.randint(0, n_atoms, (e,), generator=g)
    perm = torch.randperm(e, generator=g)
    edge_src, edge_dst = edge_src[perm].contiguous(), edge_dst[perm].contiguous()
    x = torch.randn(n_atoms, d["dim_in1"], generator=g, dtype=dtype)
    edge_attr = e3nn.o3.spherical_harmonics(d["irreps_in2"], random_unit(e, dtype, seed=seed + 1), True,
                                            normalization="component")
    edge_weight = torch.randn(e, d["weight_numel"], generator=g, dtype=dtype)
    return x, edge_attr, edge_weight, edge_src, edge_dst


def cotangent(n_atoms, dim_out, dtype):
    return torch.randn(n_atoms, dim_out, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)


# ----------------------------------------------------------------------------------------------- memory


def mem_child(side, dname, mode, n_atoms, neighbours):
    """Runs in a fresh process: one full-size call, peak RSS over the pre-call baseline. Prints JSON."""
    dtype = DTYPES[dname]
    module = build(side, dtype)
    inputs = make_graph(n_atoms, neighbours, dtype)
    gout = cotangent(n_atoms, info()["dim_out"], dtype)
    # warm the code path up (lazy init, first-call allocations) on a tiny graph
    small = make_graph(8, 4, dtype, seed=3)
    for _ in range(2):  # e3nn's TorchScript profiling executor optimises on the second call
        make_fn(module, small, cotangent(8, gout.shape[1], dtype), mode, n_diff=3)()
    del small
    fn = make_fn(module, inputs, gout, mode, n_diff=3)  # fwd_bwd: leaf clones made here, before the baseline
    gc.collect()
    before = proc_status_kib("VmRSS", "VmHWM")
    reset = reset_peak_rss()
    hwm_reset = proc_status_kib("VmHWM")["VmHWM"]
    t0 = time.perf_counter()
    result = fn()  # kept alive until VmHWM has been read
    wall = time.perf_counter() - t0
    after = proc_status_kib("VmRSS", "VmHWM")
    del result
    rec = {"side": side, "dtype": dname, "mode": mode, "atoms": n_atoms, "edges": n_atoms * neighbours,
           "rss_before_mib": before["VmRSS"] / 1024, "hwm_before_mib": before["VmHWM"] / 1024,
           "hwm_reset": reset, "hwm_after_reset_mib": hwm_reset / 1024,
           "hwm_after_mib": after["VmHWM"] / 1024, "rss_after_mib": after["VmRSS"] / 1024,
           "peak_increase_mib": (after["VmHWM"] - before["VmRSS"]) / 1024, "call_s": wall,
           "threads": torch.get_num_threads()}
    # without a reset, an earlier peak above the baseline would mask the call's own peak
    rec["valid"] = reset or after["VmHWM"] > before["VmHWM"]
    print("MEMJSON " + json.dumps(rec), flush=True)


def measure_memory(side, dname, mode, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--_mem-child", side, dname, mode, "--atoms", str(args.atoms),
           "--neighbours", str(args.neighbours), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(proc.stderr[-3000:])
        raise RuntimeError(f"memory subprocess failed: {side} {dname} {mode} (rc {proc.returncode})")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MEMJSON ")][-1]
    return json.loads(line[len("MEMJSON "):])


# ----------------------------------------------------------------------------------------------- timing


def check_agreement(modules, dname):
    inp = make_graph(*CHECK_GRAPH, DTYPES[dname], seed=7)
    with torch.no_grad():
        ya, yb = (modules[k](*inp) for k in SIDES)
    rec = {"check_graph": {"atoms": CHECK_GRAPH[0], "neighbours": CHECK_GRAPH[1]},
           "max_abs_diff": (ya - yb).abs().max().item(), "max_abs": yb.abs().max().item(),
           "allclose": torch.allclose(ya, yb, **TOL[dname]), "tol": TOL[dname]}
    log(f"  check conv {dname}: max_abs_diff {rec['max_abs_diff']:.3e} (max |y| {rec['max_abs']:.2e}) "
        f"allclose {rec['allclose']}")
    if not rec["allclose"]:
        log(f"  WARNING: conv {dname}: equiforce and e3nn outputs differ")
    return rec


def run_timing(results, args, config):
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        modules = {side: build(side, dtype) for side in SIDES}
        check = check_agreement(modules, dname)
        inputs = make_graph(args.atoms, args.neighbours, dtype)
        gout = cotangent(args.atoms, info()["dim_out"], dtype)
        for mode in args.modes:
            rec = {"op": "conv", "config": config, "dtype": dname, "mode": mode, **check}
            for side in SIDES:
                fn = make_fn(modules[side], inputs, gout, mode, n_diff=3)
                rec[side] = time_fn(fn, args.warmup, args.repeats)
                del fn
                gc.collect()
            rec["speedup"] = rec["e3nn"]["median_ms"] / rec["equiforce"]["median_ms"]
            results.append(rec)
            log(f"  conv {config} {dname} {mode:7s} equiforce {rec['equiforce']['median_ms']:9.2f} ms "
                f"(iqr/med {rec['equiforce']['iqr_over_median']:.2f}, util {rec['equiforce']['cpu_util']:.2f})  "
                f"e3nn {rec['e3nn']['median_ms']:9.2f} ms (iqr/med {rec['e3nn']['iqr_over_median']:.2f}, "
                f"util {rec['e3nn']['cpu_util']:.2f})  speedup {rec['speedup']:.2f}x")
        del inputs, gout, modules
        gc.collect()


def run_memory(memory, args, config):
    for dname in args.dtypes:
        for mode in args.mem_modes:
            rec = {"op": "conv", "config": config, "dtype": dname, "mode": mode}
            for side in SIDES:
                rec[side] = measure_memory(side, dname, mode, args)
            rec["valid"] = rec["equiforce"]["valid"] and rec["e3nn"]["valid"]
            rec["memory_ratio"] = rec["equiforce"]["peak_increase_mib"] / rec["e3nn"]["peak_increase_mib"]
            memory.append(rec)
            log(f"  mem  {config} {dname} {mode:7s} equiforce +{rec['equiforce']['peak_increase_mib']:.1f} MiB  "
                f"e3nn +{rec['e3nn']['peak_increase_mib']:.1f} MiB  ratio {rec['memory_ratio']:.3f}"
                + ("" if rec["valid"] else "  (INVALID: peak counter not reset and masked)"))


def print_tables(results, memory, env):
    print("| op | config | dtype | mode | equiforce ms | e3nn ms | speedup |")
    print("|---|---|---|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['op']} | {r['config']} | {r['dtype']} | {r['mode']} | {r['equiforce']['median_ms']:.2f} | "
              f"{r['e3nn']['median_ms']:.2f} | {r['speedup']:.2f}x |")
    if memory:
        print()
        print("| op | config | dtype | peak memory of | equiforce MiB | e3nn MiB | memory ratio (ef/e3nn) |")
        print("|---|---|---|---|---:|---:|---:|")
        for r in memory:
            flag = "" if r["valid"] else " (invalid)"
            print(f"| {r['op']} | {r['config']} | {r['dtype']} | {r['mode']} | "
                  f"{r['equiforce']['peak_increase_mib']:.1f} | {r['e3nn']['peak_increase_mib']:.1f} | "
                  f"{r['memory_ratio']:.3f}{flag} |")
        print("\nMiB: peak RSS increase over the pre-call baseline, one call in a fresh process "
              "(inputs excluded, output included).")
    if results:
        diffs = ", ".join(f"{r['dtype']} {r['max_abs_diff']:.2e}" for r in results if r["mode"] == results[0]["mode"])
        print(f"max_abs_diff on the check graph: {diffs}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--atoms", type=int, default=4000, help="number of atoms N (default 4000)")
    p.add_argument("--neighbours", type=int, default=32, help="incoming edges per atom (default 32)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=list(DTYPES))
    p.add_argument("--modes", nargs="+", default=["fwd", "fwd_bwd"], choices=["fwd", "fwd_bwd"])
    p.add_argument("--mem-modes", nargs="*", default=["fwd"], choices=["fwd", "fwd_bwd"],
                   help="modes whose peak memory is measured in subprocesses (default fwd; none to skip)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: N=200, 1 warmup, 1 repeat")
    p.add_argument("--json-out", default="benchmarks/results/conv.json")
    p.add_argument("--_mem-child", nargs=3, metavar=("SIDE", "DTYPE", "MODE"), default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.atoms, args.warmup, args.repeats = 200, 1, 1

    torch.set_num_threads(args.threads)
    if args._mem_child:
        side, dname, mode = args._mem_child
        mem_child(side, dname, mode, args.atoms, args.neighbours)
        return

    t_start = time.perf_counter()
    env = environment({"e3nn": e3nn.__version__, "equiforce": equiforce.__version__,
                       "e3nn_opt_defaults": dict(e3nn.get_optimization_defaults())})
    log(f"[conv] torch {env['torch']} e3nn {env['e3nn']} equiforce {env['equiforce']} threads {env['threads']} "
        f"OMP_WAIT_POLICY {env['OMP_WAIT_POLICY']} loadavg {env['loadavg_start']}")
    config = f"N={args.atoms} E={args.atoms * args.neighbours}"
    results, memory = [], []
    run_timing(results, args, config)
    run_memory(memory, args, config)
    finish_environment(env, t_start)

    print_tables(results, memory, env)
    print(f"\n{env_footer(env)}")
    write_json(args.json_out, {"bench": "equiforce_conv_vs_e3nn_tp_index_add", "env": env, "args": vars(args),
                               "info": info(), "results": results, "memory": memory}, "conv")
    failed = [r for r in results if not r["allclose"]]
    if failed:
        sys.exit("FAILED: equiforce and e3nn outputs disagree (see max_abs_diff in the JSON)")
    if not all(m["valid"] for m in memory):
        log("WARNING: some peak-memory numbers are invalid (peak counter could not be reset)")


if __name__ == "__main__":
    main()
