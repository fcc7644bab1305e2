"""Equivariant linear maps for finite groups (NumPy only).

A finite group acting on an input space and an output space is given by the matrices of its
generators in both: ``rep_in[g]`` [d_in, d_in] and ``rep_out[g]`` [d_out, d_out]. The linear maps
W [d_out, d_in] with ``W @ rep_in[g] == rep_out[g] @ W`` for every generator g (hence for every
group element) form a vector space; :func:`equivariant_basis` returns an orthonormal basis of it
(Frobenius inner product), found as the null space of the stacked constraints
``(I_out (x) rep_in[g]^T - rep_out[g] (x) I_in) vec(W) = 0`` (row-major vec).
"""
from typing import Sequence

import numpy as np


def equivariant_basis(rep_in: Sequence[np.ndarray], rep_out: Sequence[np.ndarray], tol: float = 1e-9) -> np.ndarray:
    """Orthonormal basis ``[k, d_out, d_in]`` of the maps W with ``W @ rep_in[g] == rep_out[g] @ W``
    for every generator g (``rep_in`` and ``rep_out`` list the same generators, in the same order).
    k = 0 gives an array of shape ``[0, d_out, d_in]``. ``tol``: singular values below ``tol`` times
    the largest (or below ``tol`` itself) count as zero."""
    rep_in = [np.asarray(m, dtype=np.float64) for m in rep_in]
    rep_out = [np.asarray(m, dtype=np.float64) for m in rep_out]
    if len(rep_in) == 0 or len(rep_in) != len(rep_out):
        raise ValueError(f"rep_in and rep_out must list the same generators: got {len(rep_in)} and {len(rep_out)} "
                         "matrices (at least one each)")
    for name, reps in (("rep_in", rep_in), ("rep_out", rep_out)):
        for n, m in enumerate(reps):
            if m.ndim != 2 or m.shape[0] != m.shape[1]:
                raise ValueError(f"{name}[{n}] must be a square 2-D matrix, got shape {m.shape}")
            if m.shape != reps[0].shape:
                raise ValueError(f"{name}[{n}] has shape {m.shape} but {name}[0] has {reps[0].shape}: one space, "
                                 "one size")
            if not np.all(np.isfinite(m)):
                raise ValueError(f"{name}[{n}] has non-finite entries")
    d_in, d_out = rep_in[0].shape[0], rep_out[0].shape[0]
    eye_in, eye_out = np.eye(d_in), np.eye(d_out)
    constraints = np.concatenate([np.kron(eye_out, a.T) - np.kron(b, eye_in) for a, b in zip(rep_in, rep_out)])
    _, s, vh = np.linalg.svd(constraints, full_matrices=True)
    scale = max(1.0, float(s[0])) if s.size else 1.0
    rank = int(np.sum(s > tol * scale))
    basis = vh[rank:]  # orthonormal rows spanning the null space
    return basis.reshape(-1, d_out, d_in)
