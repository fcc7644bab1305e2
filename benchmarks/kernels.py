#!/usr/bin/env python
"""Side-by-side CPU kernel benchmark: equiforce vs e3nn, in one process.

What is measured (same inputs for both libraries, timed back to back per config):

* ``sh``: ``<lib>.o3.spherical_harmonics(list(range(L+1)), x, normalize=True,
  normalization='component')`` on N random unit vectors (N = 1M), L in {2, 3, 6}.
* ``tp``: ``<lib>.o3.TensorProduct`` in 'uvu' mode with per-sample weights at NequIP sizes:
  in1 ``32x0e+32x1o+32x2e``, in2 ``1x0e+1x1o+1x2e``, one instruction
  ``(i1, i2, i_out, 'uvu', True)`` per allowed path (parity + triangle rule) with l_out <= 2,
  each writing its own output segment ``32x<ir_out>`` (unsorted, in generation order),
  ``shared_weights=False, internal_weights=False``; batch 100k. Both modules are built from the
  same arguments; nothing is copied between them (weights are inputs). Before timing, the two
  outputs are compared once on a small batch (``max_abs_diff`` in the JSON).

Modes: ``fwd`` (under no_grad) and ``fwd_bwd`` (forward + ``torch.autograd.grad(y, inputs, g)``
with a fixed random cotangent g, i.e. the gradient of ``(y * g).sum()``; w.r.t. x for sh and
w.r.t. x1, x2 and the weights for tp); float32 and float64.

Timing follows /work/shared/peers (sh_bench.py / tp_bench.py): ``--threads`` via
torch.set_num_threads, OMP_WAIT_POLICY=PASSIVE unless already set, ``--warmup`` untimed calls,
then ``--repeats`` timed calls; median / min / iqr_over_median in ms, cpu_util = process CPU
time / wall time (2.0 = both cores busy with 2 threads; much lower = machine contended).
speedup = e3nn median / equiforce median. e3nn runs with its default optimisation settings
(recorded in env).

Reproduce (from the repository root):
    python benchmarks/kernels.py --json-out benchmarks/results/kernels.json
Smoke test:
    python benchmarks/kernels.py --quick --json-out /tmp/kernels_quick.json
"""
import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (environment, env_footer, finish_environment, log, make_fn, nequip_tp_arguments,  # noqa: E402
                     random_unit, time_fn, write_json)  # _common sets OMP_WAIT_POLICY before torch is imported

import torch  # noqa: E402
import e3nn  # noqa: E402
import e3nn.o3  # noqa: E402
import equiforce  # noqa: E402
import equiforce.o3  # noqa: E402

LIBS = {"equiforce": equiforce.o3, "e3nn": e3nn.o3}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}


def tp_arguments():
    """NequIP-sized 'uvu' TP: every allowed path with l_out <= 2, one 32x<ir_out> segment per path."""
    return nequip_tp_arguments(mul=32, lmax=2)


def bench_config(results, op, config, dname, modes, build, make_inputs, args, check=None, info=None):
    """Build both libraries' callables, optionally check agreement, then time every mode back to back."""
    dtype = DTYPES[dname]
    calls = {name: build(lib, dtype) for name, lib in LIBS.items()}
    extra = {"info": info} if info else {}
    if check is not None:
        inp = make_inputs(check, dtype)
        with torch.no_grad():
            ya, yb = (calls[k](*inp) for k in ("equiforce", "e3nn"))
        extra = {**extra, "check_batch": check, "max_abs_diff": (ya - yb).abs().max().item(),
                 "allclose": torch.allclose(ya, yb, **TOL[dname]), "tol": TOL[dname]}
        if not extra["allclose"]:
            log(f"  WARNING: {op} {config} {dname}: equiforce and e3nn outputs differ")
        log(f"  check {op} {config} {dname}: max_abs_diff {extra['max_abs_diff']:.3e} allclose {extra['allclose']}")
        del ya, yb, inp
    inputs = make_inputs(None, dtype)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        out_shape = calls["e3nn"](*inputs).shape
    gout = torch.randn(out_shape, generator=g, dtype=torch.float64).to(dtype)
    for mode in modes:
        rec = {"op": op, "config": config, "dtype": dname, "mode": mode, **extra}
        for name, call in calls.items():
            fn = make_fn(call, inputs, gout, mode)
            rec[name] = time_fn(fn, args.warmup, args.repeats)
            del fn
            gc.collect()
        rec["speedup"] = rec["e3nn"]["median_ms"] / rec["equiforce"]["median_ms"]
        results.append(rec)
        log(f"  {op:3s} {config:22s} {dname} {mode:7s} equiforce {rec['equiforce']['median_ms']:9.2f} ms "
            f"(iqr/med {rec['equiforce']['iqr_over_median']:.2f}, util {rec['equiforce']['cpu_util']:.2f})  "
            f"e3nn {rec['e3nn']['median_ms']:9.2f} ms (iqr/med {rec['e3nn']['iqr_over_median']:.2f}, "
            f"util {rec['e3nn']['cpu_util']:.2f})  speedup {rec['speedup']:.2f}x")
    del inputs, gout, calls
    gc.collect()


def run_sh(results, args):
    for dname in args.dtypes:
        for L in args.lmax:
            def build(lib, dtype, L=L):
                ls = list(range(L + 1))
                return lambda x: lib.spherical_harmonics(ls, x, normalize=True, normalization="component")

            def make_inputs(n, dtype):
                return (random_unit(n or args.sh_n, dtype, seed=0),)
            bench_config(results, "sh", f"N={args.sh_n} L={L}", dname, args.modes, build, make_inputs, args,
                         check=min(1000, args.sh_n))


def run_tp(results, args):
    in1, in2, out, instructions = tp_arguments()
    ref = e3nn.o3.TensorProduct(in1, in2, out, instructions, shared_weights=False, internal_weights=False)
    info = {"irreps_in1": in1, "irreps_in2": in2, "irreps_out": out, "n_instructions": len(instructions),
            "dim_in1": ref.irreps_in1.dim, "dim_out": ref.irreps_out.dim, "weight_numel": ref.weight_numel}

    def build(lib, dtype):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # e3nn's TP buffers follow the default dtype
        try:
            tp = lib.TensorProduct(in1, in2, out, instructions, shared_weights=False, internal_weights=False)
        finally:
            torch.set_default_dtype(prev)
        assert tp.weight_numel == info["weight_numel"], (lib.__name__, tp.weight_numel)
        return tp

    def make_inputs(n, dtype):
        n = n or args.batch
        g = torch.Generator().manual_seed(0)
        x1 = torch.randn(n, info["dim_in1"], generator=g, dtype=dtype)
        x2 = e3nn.o3.spherical_harmonics(in2, random_unit(n, dtype, seed=1), True, normalization="component")
        w = torch.randn(n, info["weight_numel"], generator=g, dtype=dtype)
        return x1, x2, w

    for dname in args.dtypes:
        bench_config(results, "tp", f"uvu B={args.batch}", dname, args.modes, build, make_inputs, args,
                     check=min(256, args.batch), info=info)


def print_table(results):
    print("| op | config | dtype | mode | equiforce ms | e3nn ms | speedup |")
    print("|---|---|---|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['op']} | {r['config']} | {r['dtype']} | {r['mode']} | {r['equiforce']['median_ms']:.2f} | "
              f"{r['e3nn']['median_ms']:.2f} | {r['speedup']:.2f}x |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["sh", "tp"], default=None, help="run only one benchmark")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=list(DTYPES))
    p.add_argument("--modes", nargs="+", default=["fwd", "fwd_bwd"], choices=["fwd", "fwd_bwd"])
    p.add_argument("--sh-n", type=int, default=1_000_000, help="number of vectors for sh (default 1M)")
    p.add_argument("--lmax", type=int, nargs="+", default=[2, 3, 6], help="sh orders L (l = 0..L)")
    p.add_argument("--batch", type=int, default=100_000, help="tp batch size (default 100k)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: sh N=10k, tp batch 2k, 1 warmup, 1 repeat")
    p.add_argument("--json-out", default="benchmarks/results/kernels.json")
    args = p.parse_args()
    if args.quick:
        args.sh_n, args.batch, args.warmup, args.repeats = 10_000, 2_000, 1, 1

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    env = environment({"e3nn": e3nn.__version__, "equiforce": equiforce.__version__,
                       "e3nn_opt_defaults": dict(e3nn.get_optimization_defaults())})
    log(f"[kernels] torch {env['torch']} e3nn {env['e3nn']} equiforce {env['equiforce']} threads {env['threads']} "
        f"OMP_WAIT_POLICY {env['OMP_WAIT_POLICY']} loadavg {env['loadavg_start']}")

    results = []
    if args.only in (None, "sh"):
        run_sh(results, args)
    if args.only in (None, "tp"):
        run_tp(results, args)
    finish_environment(env, t_start)

    print_table(results)
    print(f"\n{env_footer(env)}")
    write_json(args.json_out, {"bench": "equiforce_vs_e3nn_kernels", "env": env, "args": vars(args),
                               "results": results}, "kernels")
    if not all(r.get("allclose", True) for r in results):
        sys.exit("FAILED: equiforce and e3nn outputs disagree (see max_abs_diff in the JSON)")


if __name__ == "__main__":
    main()
