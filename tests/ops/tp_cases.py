"""Tensor-product configurations shared by the op and module tests: every connection mode, with
and without weights, several instructions accumulating into one output segment, and the
NequIP-style uvu convolution product."""
from equiforce.algebra import Irreps, TensorProductDescriptor

IN1 = Irreps("3x0e+2x1o+2x2e+2x1e+1x3o")
IN2 = Irreps("2x0e+2x1o+1x2o+2x2e")


def _build(modes, stride, lmax_out=3, unweighted_every=4):
    """Valid instructions over IN1 x IN2 (every `stride`-th candidate), outputs shared by (mul, ir)."""
    out, index, instructions = [], {}, []
    candidates = 0
    for i1, (m1, ir1) in enumerate(IN1):
        for i2, (m2, ir2) in enumerate(IN2):
            for ir in ir1 * ir2:
                if ir.l > lmax_out:
                    continue
                mode = modes[candidates % len(modes)]
                candidates += 1
                if candidates % stride:
                    continue
                mul = {"uvw": 2, "uvu": m1, "uvv": m2, "uuw": 2, "uuu": m1}[mode]
                if mode in ("uuw", "uuu") and m1 != m2:
                    continue
                key = (mul, ir)
                if key not in index:
                    index[key] = len(out)
                    out.append(key)
                weighted = mode in ("uvw", "uuw") or len(instructions) % unweighted_every != 1
                instructions.append((i1, i2, index[key], mode, weighted))
    return str(IN1), str(IN2), str(Irreps(out)), instructions


CASES = {
    "uvw": _build(["uvw"], 3),
    "uvu": _build(["uvu"], 2),
    "uvv": _build(["uvv"], 2),
    "uuw": _build(["uuw"], 1),
    "uuu": _build(["uuu"], 1),
    "mixed": _build(["uvw", "uvu", "uvv", "uuw", "uuu"], 2),
}


def nequip_case(mul=4, lmax=2):
    """Node irreps (mul)x(0e+1o+2e) x SH(l<=lmax) -> every allowed uvu path with l_out <= lmax,
    each path its own output segment (NequIP's layout, as the model builds it)."""
    from equiforce.nn import conv_instructions, hidden_irreps

    in1 = Irreps(f"{mul}x0e+{mul}x1o+{mul}x2e")
    in2 = Irreps.spherical_harmonics(lmax)
    mid, instructions = conv_instructions(in1, in2, hidden_irreps(1, lmax, parity=True))
    return str(in1), str(in2), str(mid), instructions


def descriptor(name, **kw):
    args = nequip_case() if name == "nequip" else CASES[name]
    return TensorProductDescriptor(*args, **kw)


ALL = list(CASES) + ["nequip"]
