"""Shared helpers for the side-by-side benchmarks in this folder (kernels.py, conv.py, neighbor_list.py).

Import this module *before* torch: it sets OMP_WAIT_POLICY=PASSIVE (unless already set), which
OpenMP only reads when the runtime starts. Timing: ``--warmup`` untimed calls, then ``--repeats``
timed calls; median / min / max / iqr_over_median in ms, cpu_util = process CPU time / wall time
(2.0 = both cores busy with 2 threads; much lower = machine contended).
"""
import datetime
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must happen before torch is imported

import torch  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def summarize(samples):
    """[(wall_s, cpu_s)] per call -> summary in ms (same fields as the peers' scripts)."""
    ts = sorted(w for w, _ in samples)
    cs = [c for _, c in samples]
    med = statistics.median(ts)
    q1, q3 = (statistics.quantiles(ts, n=4, method="inclusive")[::2] if len(ts) >= 4 else (ts[0], ts[-1]))
    return {
        "median_ms": med * 1e3, "min_ms": ts[0] * 1e3, "max_ms": ts[-1] * 1e3,
        "iqr_over_median": (q3 - q1) / med if med > 0 else None,
        "cpu_median_ms": statistics.median(cs) * 1e3,
        "cpu_util": sum(cs) / sum(ts) if sum(ts) > 0 else None,
        "repeats": len(ts),
    }


def time_fn(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0, time.process_time() - c0))
    return summarize(samples)


def make_fn(call, inputs, gout, mode, n_diff=None):
    """fwd: call(*inputs) under no_grad. fwd_bwd: forward + grads of (y * gout).sum() w.r.t. the first
    ``n_diff`` inputs (all by default; the rest, e.g. integer indices, are passed through unchanged)."""
    if mode == "fwd":
        def fn():
            with torch.no_grad():
                return call(*inputs)
        return fn
    n_diff = len(inputs) if n_diff is None else n_diff
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs[:n_diff]]
    rest = list(inputs[n_diff:])

    def fn():
        return torch.autograd.grad(call(*leaves, *rest), leaves, grad_outputs=gout)
    return fn


def proc_status_kib(*keys):
    """Fields of /proc/self/status in KiB (VmRSS, VmHWM, ...)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def reset_peak_rss():
    """Reset the kernel's peak-RSS counter (VmHWM); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(versions):
    """Run environment; ``versions`` (library versions and settings) go after python/torch."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__, **versions,
        "threads": torch.get_num_threads(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "loadavg_start": list(os.getloadavg()),
    }


def finish_environment(env, t_start):
    env["loadavg_end"] = list(os.getloadavg())
    env["total_s"] = time.perf_counter() - t_start
    return env


def env_footer(env):
    return (f"threads {env['threads']}, OMP_WAIT_POLICY {env['OMP_WAIT_POLICY']}, loadavg {env['loadavg_start']} -> "
            f"{env['loadavg_end']}, total {env['total_s']:.0f} s")


def write_json(path, payload, tag):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    log(f"[{tag}] wrote {path}")


def nequip_tp_arguments(mul=32, lmax=2):
    """NequIP-sized 'uvu' TP: in1 ``mul x (0e+1o+2e)``, in2 = SH up to lmax, one instruction per
    allowed path with l_out <= lmax, each into its own ``mul x <ir_out>`` segment (generation order):
    ``equiforce.nn.conv_instructions``, the layout the model itself uses."""
    from equiforce.algebra import Irreps
    from equiforce.nn import conv_instructions, hidden_irreps

    irreps_in1 = Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e")
    irreps_in2 = Irreps.spherical_harmonics(lmax)
    mid, instructions = conv_instructions(irreps_in1, irreps_in2, hidden_irreps(1, lmax, parity=True))
    return str(irreps_in1), str(irreps_in2), str(mid), instructions


def random_unit(n, dtype, seed):
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x / x.norm(dim=-1, keepdim=True)).to(dtype)
