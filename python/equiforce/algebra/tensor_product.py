"""Tensor-product descriptors: plain data read by every backend (numpy only).

A descriptor names the irreps of both inputs and of the output, an instruction list with e3nn's
connection modes and path weights, and the sparse Clebsch-Gordan nonzeros. For an instruction
``(i1, i2, o)`` with segments ``x1[u, i]``, ``x2[v, j]`` and ``out[w, k]`` (e3nn's mul_ir layout):

==== ======================================================== ===============
mode out[., k] +=                                             weight shape
==== ======================================================== ===============
uvw  ``pw * W[u,v,w] C[i,j,k] x1[u,i] x2[v,j]``  (sum u, v)    (mul1, mul2, mulo)
uvu  ``pw * W[u,v] C x1[u,i] x2[v,j]`` into ``out[u,k]``       (mul1, mul2)
uvv  ``pw * W[u,v] C x1[u,i] x2[v,j]`` into ``out[v,k]``       (mul1, mul2)
uuw  ``pw * W[u,w] C x1[u,i] x2[u,j]`` into ``out[w,k]``       (mul1, mulo)
uuu  ``pw * W[u] C x1[u,i] x2[u,j]`` into ``out[u,k]``         (mul1,)
==== ======================================================== ===============

``C = wigner_3j(l1, l2, lo)``; ``W = 1`` where an instruction has no weight. The weights of all
weighted instructions are concatenated in instruction order, each flattened row-major: exactly
e3nn's ``TensorProduct`` layout, so an e3nn weight vector can be used as is.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from .irreps import Irreps
from .wigner import wigner_3j

__all__ = ["MODES", "Instruction", "TensorProductDescriptor"]

#: Connection modes in the order of their integer codes in the kernels.
MODES = ("uvw", "uvu", "uvv", "uuw", "uuu")
DESCRIPTOR_FORMAT_VERSION = 1


class Instruction(NamedTuple):
    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: tuple


def _path_shape(mode: str, mul1: int, mul2: int, mulo: int) -> tuple:
    return {"uvw": (mul1, mul2, mulo), "uvu": (mul1, mul2), "uvv": (mul1, mul2), "uuw": (mul1, mulo), "uuu": (mul1,)}[
        mode
    ]


def _fan_in(mode: str, mul1: int, mul2: int) -> int:
    # number of terms summed into one output element, as e3nn counts them
    return {"uvw": mul1 * mul2, "uvu": mul2, "uvv": mul1, "uuw": mul1, "uuu": 1}[mode]


class TensorProductDescriptor:
    """Irreps, instructions (with final path weights) and CG nonzeros of one tensor product.

    ``instructions`` are tuples ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])`` as in
    e3nn; the stored path weight is e3nn's normalised one, ``sqrt(alpha * path_weight)``, with
    ``alpha`` from ``irrep_normalization`` ('component', 'norm', 'none'), ``path_normalization``
    ('element', 'path', 'none') and the input/output variances. Pass ``normalized=True`` to use the
    given path weights unchanged (e.g. copied from an e3nn module).
    """

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions: Sequence[tuple],
        *,
        in1_var: Sequence[float] | None = None,
        in2_var: Sequence[float] | None = None,
        out_var: Sequence[float] | None = None,
        irrep_normalization: str | None = None,
        path_normalization: str | None = None,
        normalized: bool = False,
    ) -> None:
        self.irreps_in1 = Irreps(irreps_in1)
        self.irreps_in2 = Irreps(irreps_in2)
        self.irreps_out = Irreps(irreps_out)
        irrep_normalization = irrep_normalization or "component"
        path_normalization = path_normalization or "element"
        if irrep_normalization not in ("component", "norm", "none"):
            raise ValueError(f"irrep_normalization must be 'component', 'norm' or 'none', got {irrep_normalization!r}")
        if path_normalization not in ("element", "path", "none"):
            raise ValueError(f"path_normalization must be 'element', 'path' or 'none', got {path_normalization!r}")
        raw = [self._check_instruction(ins) for ins in instructions]
        in1_var = self._variances(in1_var, self.irreps_in1, "in1_var")
        in2_var = self._variances(in2_var, self.irreps_in2, "in2_var")
        out_var = self._variances(out_var, self.irreps_out, "out_var")

        self.instructions: list[Instruction] = []
        for i1, i2, io, mode, has_weight, weight in raw:
            m1, m2, mo = self.irreps_in1[i1], self.irreps_in2[i2], self.irreps_out[io]
            shape = _path_shape(mode, m1.mul, m2.mul, mo.mul)
            if not normalized:
                alpha = {"component": mo.ir.dim, "norm": m1.ir.dim * m2.ir.dim, "none": 1}[irrep_normalization]
                same_out = [r for r in raw if r[2] == io]
                if path_normalization == "element":
                    x = sum(
                        in1_var[r[0]] * in2_var[r[1]] * _fan_in(r[3], self.irreps_in1[r[0]].mul, self.irreps_in2[r[1]].mul)
                        for r in same_out
                    )
                elif path_normalization == "path":
                    x = in1_var[i1] * in2_var[i2] * _fan_in(mode, m1.mul, m2.mul) * len(same_out)
                else:
                    x = 1
                if x > 0:
                    alpha /= x
                weight = math.sqrt(alpha * out_var[io] * weight)
            self.instructions.append(Instruction(i1, i2, io, mode, has_weight, float(weight), shape))
        self.weight_numel = sum(math.prod(i.path_shape) for i in self.instructions if i.has_weight)

    # ---- validation -------------------------------------------------------------------------
    def _check_instruction(self, ins) -> tuple:
        ins = tuple(ins)
        if len(ins) not in (5, 6):
            raise ValueError(
                f"instruction {ins!r}: expected (i_in1, i_in2, i_out, mode, has_weight[, path_weight]), "
                "e.g. (0, 0, 0, 'uvu', True)"
            )
        i1, i2, io, mode, has_weight = ins[:5]
        weight = float(ins[5]) if len(ins) == 6 else 1.0
        for idx, irreps, name in ((i1, self.irreps_in1, "irreps_in1"), (i2, self.irreps_in2, "irreps_in2"), (io, self.irreps_out, "irreps_out")):
            if not isinstance(idx, (int, np.integer)) or not 0 <= idx < len(irreps):
                raise ValueError(f"instruction {ins!r}: index {idx!r} is out of range for {name} = {irreps} ({len(irreps)} entries)")
        if mode not in MODES:
            raise ValueError(f"instruction {ins!r}: connection mode must be one of {MODES}, got {mode!r}")
        m1, m2, mo = self.irreps_in1[i1], self.irreps_in2[i2], self.irreps_out[io]
        if m1.ir.p * m2.ir.p != mo.ir.p or not abs(m1.ir.l - m2.ir.l) <= mo.ir.l <= m1.ir.l + m2.ir.l:
            raise ValueError(f"instruction {ins!r}: {m1.ir} x {m2.ir} cannot produce {mo.ir} (parity or triangle rule)")
        need = {"uvu": (mo.mul == m1.mul, "mul_out == mul_in1"), "uvv": (mo.mul == m2.mul, "mul_out == mul_in2"),
                "uuw": (m1.mul == m2.mul, "mul_in1 == mul_in2"),
                "uuu": (m1.mul == m2.mul == mo.mul, "mul_in1 == mul_in2 == mul_out")}.get(mode, (True, ""))
        if not need[0]:
            raise ValueError(f"instruction {ins!r}: mode {mode!r} needs {need[1]}, got {m1} x {m2} -> {mo}")
        if mode == "uvw" and not has_weight:
            raise ValueError(f"instruction {ins!r}: mode 'uvw' needs weights (as in e3nn)")
        if mode == "uuw" and not has_weight and mo.mul != 1:
            raise ValueError(f"instruction {ins!r}: mode 'uuw' without weights sums over u and needs mul_out == 1")
        return (int(i1), int(i2), int(io), mode, bool(has_weight), weight)

    @staticmethod
    def _variances(var, irreps: Irreps, name: str) -> list[float]:
        if var is None:
            return [1.0] * len(irreps)
        var = [float(v) for v in var]
        if len(var) != len(irreps):
            raise ValueError(f"{name} has {len(var)} entries but the irreps {irreps} have {len(irreps)}")
        return var

    # ---- derived data -----------------------------------------------------------------------
    def nonzeros(self) -> list[tuple[int, int, int, int, float]]:
        """Sparse CG entries ``(instruction, m1, m2, m3, coeff)`` in instruction order."""
        out = []
        for n, ins in enumerate(self.instructions):
            l1, l2, lo = self.irreps_in1[ins.i_in1].ir.l, self.irreps_in2[ins.i_in2].ir.l, self.irreps_out[ins.i_out].ir.l
            c = wigner_3j(l1, l2, lo)
            for i, j, k in zip(*np.nonzero(c)):
                out.append((n, int(i), int(j), int(k), float(c[i, j, k])))
        return out

    def weight_slices(self) -> list[slice | None]:
        """Where each instruction's weights sit in the flat weight vector (None if unweighted)."""
        out, offset = [], 0
        for ins in self.instructions:
            if ins.has_weight:
                size = math.prod(ins.path_shape)
                out.append(slice(offset, offset + size))
                offset += size
            else:
                out.append(None)
        return out

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The flat encoding the kernels read (see csrc/cpu/descriptor.h): ``(int64[...], float64[...])``."""
        nnz = self.nonzeros()
        segments = []
        for irreps in (self.irreps_in1, self.irreps_in2, self.irreps_out):
            offset = 0
            for mul, ir in irreps:
                segments += [mul, ir.l, offset]
                offset += mul * ir.dim
        rows, begin = [], 0
        slices = self.weight_slices()
        for n, ins in enumerate(self.instructions):
            count = sum(1 for e in nnz if e[0] == n)
            woff = slices[n].start if slices[n] is not None else 0
            rows += [ins.i_in1, ins.i_in2, ins.i_out, MODES.index(ins.connection_mode), int(ins.has_weight), woff,
                     begin, begin + count]
            begin += count
        header = [DESCRIPTOR_FORMAT_VERSION, len(self.irreps_in1), len(self.irreps_in2), len(self.irreps_out),
                  len(self.instructions), len(nnz), self.irreps_in1.dim, self.irreps_in2.dim, self.irreps_out.dim,
                  self.weight_numel]
        ints = np.array(header + segments + rows + [v for e in nnz for v in e[1:4]], dtype=np.int64)
        floats = np.array([i.path_weight for i in self.instructions] + [e[4] for e in nnz], dtype=np.float64)
        return ints, floats

    def __repr__(self) -> str:
        nnz = self.nonzeros()
        head = (f"TensorProductDescriptor({self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out} | "
                f"{len(self.instructions)} paths | {self.weight_numel} weights | {len(nnz)} CG nonzeros)")
        rows = [("#", "in1", "in2", "out", "mode", "weights", "path_weight", "nnz")]
        for n, ins in enumerate(self.instructions):
            rows.append((str(n), str(self.irreps_in1[ins.i_in1]), str(self.irreps_in2[ins.i_in2]),
                         str(self.irreps_out[ins.i_out]), ins.connection_mode,
                         "x".join(map(str, ins.path_shape)) if ins.has_weight else "-", f"{ins.path_weight:.6g}",
                         str(sum(1 for e in nnz if e[0] == n))))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) if c in (0, 6, 7) else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
        return "\n".join([head] + ["  " + line for line in lines])
