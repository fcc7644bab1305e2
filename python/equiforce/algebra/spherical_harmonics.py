"""Real spherical harmonics in e3nn's convention (numpy only), and the recurrence the kernels use.

``Y^l`` is a homogeneous harmonic polynomial of degree ``l`` in ``(x, y, z)``, with
``Y^1 = sqrt(3) (x, y, z)`` under ``component`` normalisation (``|Y^l(u)|^2 = 2l+1`` for unit u).
Every degree follows from the previous one by one sparse Clebsch-Gordan contraction::

    Y^l[i] = sum_(j,k) a_l C(l, l-1, 1)[i, j, k] Y^(l-1)[j] r[k]

with ``a_l > 0`` fixed by the normalisation. :func:`recurrence_terms` returns those nonzeros;
the C++ kernels are generated from them (``python -m equiforce.algebra.codegen``).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .wigner import wigner_3j

__all__ = ["LMAX_SUPPORTED", "NORMALIZATIONS", "recurrence_terms", "normalization_factors", "spherical_harmonics"]

#: Highest degree the compiled kernels implement.
LMAX_SUPPORTED = 12
#: Accepted normalisation names, in the order of their integer codes in the ops.
NORMALIZATIONS = ("component", "norm", "integral")


@functools.lru_cache(maxsize=None)
def _recurrence_terms_cached(l: int):
    c = wigner_3j(l, l - 1, 1)
    # fix a_l on a generic unit vector: |Y^l(u)|^2 must be 2l+1. Exactly rounded sums (no einsum,
    # no BLAS norm), so the generated kernel constants are the same on every machine.
    u = np.array([0.3, -0.5, 0.8])
    u /= math.sqrt(math.fsum(u**2))
    y_prev = _evaluate_component(l - 1, u[None])[0, (l - 1) ** 2 :]
    raw = [math.fsum(c[i, j, k] * y_prev[j] * u[k] for j in range(2 * l - 1) for k in range(3)) for i in range(2 * l + 1)]
    a = math.sqrt(2 * l + 1) / math.sqrt(math.fsum(v * v for v in raw))
    terms = [(i, j, k, a * c[i, j, k]) for i, j, k in zip(*np.nonzero(np.abs(c) > 1e-14))]
    return tuple((int(i), int(j), int(k), float(v)) for i, j, k, v in terms)


def recurrence_terms(l: int) -> list[tuple[int, int, int, float]]:
    """Nonzeros ``(i, j, k, coeff)`` with ``Y^l[i] = sum coeff * Y^(l-1)[j] * r[k]``, for l >= 1."""
    if not 1 <= l <= LMAX_SUPPORTED:
        raise ValueError(f"recurrence_terms: l must be in 1..{LMAX_SUPPORTED}, got {l}")
    return list(_recurrence_terms_cached(l))


def _evaluate_component(lmax: int, r: np.ndarray) -> np.ndarray:
    out = [np.ones((len(r), 1))]
    for l in range(1, lmax + 1):
        y = np.zeros((len(r), 2 * l + 1))
        for i, j, k, coeff in _recurrence_terms_cached(l):
            y[:, i] += coeff * out[-1][:, j] * r[:, k]
        out.append(y)
    return np.concatenate(out, axis=1)


def normalization_factors(lmax: int, normalization: str) -> np.ndarray:
    """Per-degree factor ``[lmax+1]`` applied to component-normalised harmonics."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    ls = np.arange(lmax + 1)
    if normalization == "component":
        return np.ones(lmax + 1)
    if normalization == "norm":
        return 1.0 / np.sqrt(2 * ls + 1)
    return np.full(lmax + 1, 1.0 / math.sqrt(4 * math.pi))


def spherical_harmonics(lmax: int, r: np.ndarray, normalize: bool = True, normalization: str = "integral") -> np.ndarray:
    """All degrees ``0..lmax``: ``r[..., 3] -> Y[..., (lmax+1)**2]`` (float64 reference)."""
    if not 0 <= lmax <= LMAX_SUPPORTED:
        raise ValueError(f"lmax must be in 0..{LMAX_SUPPORTED}, got {lmax}")
    r = np.asarray(r, dtype=np.float64)
    shape = r.shape[:-1]
    r = r.reshape(-1, 3)
    if normalize:
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    y = _evaluate_component(lmax, r)
    factor = np.repeat(normalization_factors(lmax, normalization), 2 * np.arange(lmax + 1) + 1)
    return (y * factor).reshape(*shape, -1)
