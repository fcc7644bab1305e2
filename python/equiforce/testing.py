"""Equivariance testing helpers that ship with the package (torch).

>>> import torch
>>> from equiforce import o3
>>> from equiforce.testing import assert_equivariant
>>> sh = o3.SphericalHarmonics([0, 1, 2], normalize=True)
>>> errors = assert_equivariant(sh, ["1o"], [sh.irreps_out])
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from .algebra import Irreps
from .algebra.wigner import wigner_D_from_matrix

__all__ = ["random_o3", "irreps_D", "assert_equivariant"]


def random_o3(improper: bool | None = None, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Haar-random element of O(3) ``[3, 3]``: a rotation, or a rotation times -1 when ``improper``
    (a fair coin when ``improper`` is None)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q = -q
    if improper is None:
        improper = bool(torch.randint(0, 2, (), generator=generator))
    return (-q if improper else q).to(dtype)


def irreps_D(irreps, r: torch.Tensor) -> torch.Tensor:
    """Block-diagonal representation ``[dim, dim]`` of the O(3) element ``r`` on ``irreps``."""
    irreps = Irreps(irreps)
    rn = r.detach().cpu().double().numpy()
    blocks = [wigner_D_from_matrix(ir.l, rn, ir.p) for mul, ir in irreps for _ in range(mul)]
    dim = irreps.dim
    out = np.zeros((dim, dim))
    i = 0
    for b in blocks:
        n = b.shape[0]
        out[i : i + n, i : i + n] = b
        i += n
    return torch.as_tensor(out, dtype=r.dtype, device=r.device)


def assert_equivariant(fn: Callable, irreps_in: Sequence, irreps_out: Sequence, args: Sequence | None = None,
                       trials: int = 4, batch: int = 5, dtype: torch.dtype = torch.float64,
                       tolerance: float | None = None) -> list[float]:
    """Check ``fn(*(D_in(g) x)) == D_out(g) fn(*x)`` for random O(3) elements g, reflections included.

    ``irreps_in``/``irreps_out`` give one Irreps (or None for an argument/output that does not
    transform) per positional argument/output. Random inputs ``[batch, dim]`` are drawn when
    ``args`` is None. Trials alternate proper and improper elements, so parity is always tested.
    Raises AssertionError naming the largest error; returns the error of every trial.
    """
    irreps_in = [None if i is None else Irreps(i) for i in irreps_in]
    irreps_out = [None if i is None else Irreps(i) for i in irreps_out]
    if args is None:
        args = [torch.randn(batch, i.dim, dtype=dtype) for i in irreps_in]
    tolerance = tolerance if tolerance is not None else (1e-9 if dtype == torch.float64 else 1e-4)
    errors = []
    for t in range(trials):
        g = random_o3(improper=(t % 2 == 1), dtype=dtype)
        rotated = [a if i is None else a @ irreps_D(i, g).T.to(a.dtype) for a, i in zip(args, irreps_in)]
        out_then = fn(*rotated)
        out_first = fn(*args)
        if not isinstance(out_then, (tuple, list)):
            out_then, out_first = [out_then], [out_first]
        err = 0.0
        for a, b, i in zip(out_then, out_first, irreps_out):
            expected = b if i is None else b @ irreps_D(i, g).T.to(b.dtype)
            scale = max(1.0, expected.abs().max().item())
            err = max(err, (a - expected).abs().max().item() / scale)
        errors.append(err)
    worst = max(errors)
    if worst > tolerance:
        raise AssertionError(f"not equivariant: largest relative error {worst:.3e} > {tolerance:.1e} "
                             f"(errors per trial, proper/improper alternating: {errors})")
    return errors
