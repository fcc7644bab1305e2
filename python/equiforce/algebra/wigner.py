"""Real Clebsch-Gordan coefficients and Wigner-D matrices in e3nn's conventions (numpy only).

The real basis of each irrep ``l`` is e3nn's: index ``m`` runs over ``-l..l`` and, for
``l = 1``, the basis is ``(x, y, z)`` so that ``wigner_D_from_matrix(1, R) == R``.
Everything is computed in float64 from exact SU(2) Clebsch-Gordan values, cached, and
returned as a fresh copy so callers may modify what they get.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

__all__ = [
    "wigner_3j",
    "so3_generators",
    "wigner_D",
    "wigner_D_from_matrix",
    "angles_to_matrix",
    "matrix_to_angles",
]


def _su2_cg(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> float:
    """<j1 m1; j2 m2 | j3 m3> (Condon-Shortley) by Racah's formula, exact until the final sqrt."""
    if m3 != m1 + m2 or not abs(j1 - j2) <= j3 <= j1 + j2:
        return 0.0
    f = math.factorial
    prefactor = Fraction(
        (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3),
        f(j1 + j2 + j3 + 1),
    ) * (f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))
    total = Fraction(0)
    for k in range(0, j1 + j2 + 1):
        args = (k, j1 + j2 - j3 - k, j1 - m1 - k, j2 + m2 - k, j3 - j2 + m1 + k, j3 - j1 - m2 + k)
        if min(args) < 0:
            continue
        denominator = 1
        for a in args:
            denominator *= f(a)
        total += Fraction((-1) ** k, denominator)
    return math.sqrt(prefactor) * float(total)


@functools.lru_cache(maxsize=None)
def _real_to_complex(l: int) -> np.ndarray:
    """Q[m_complex, m_real]: the complex spherical basis expressed in the real one.

    The global factor (-i)^l makes the real Clebsch-Gordan coefficients real (as in e3nn).
    """
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / math.sqrt(2)
    for m in range(-l, 0):
        q[l + m, l - m] = s
        q[l + m, l + m] = -1j * s
    q[l, l] = 1
    for m in range(1, l + 1):
        q[l + m, l + m] = (-1) ** m * s
        q[l + m, l - m] = 1j * (-1) ** m * s
    return (-1j) ** l * q


def _columns(q: np.ndarray) -> list[list[tuple[int, complex]]]:
    """The nonzeros ``(row, value)`` of each column of ``q``, as Python complex numbers."""
    return [[(int(i), complex(q[i, a])) for i in np.flatnonzero(q[:, a])] for a in range(q.shape[1])]


@functools.lru_cache(maxsize=None)
def _wigner_3j_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    complex_cg = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                complex_cg[l1 + m1, l2 + m2, l3 + m3] = _su2_cg(l1, m1, l2, m2, l3, m3)
    # The change of basis is written out term by term with exactly rounded sums (math.fsum), not
    # with einsum: BLAS sums in a machine-dependent order, and the generated kernels' constants
    # (python -m equiforce.algebra.codegen) must come out bit-identical on every machine.
    columns = [_columns(_real_to_complex(l)) for l in (l1, l2, l3)]
    c = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for a, b, n in np.ndindex(*c.shape):
        terms = [
            v1 * v2 * v3.conjugate() * complex_cg[i, k, m]
            for i, v1 in columns[0][a]
            for k, v2 in columns[1][b]
            for m, v3 in columns[2][n]
            if complex_cg[i, k, m] != 0.0
        ]
        assert abs(math.fsum(t.imag for t in terms)) < 1e-10, "real Clebsch-Gordan coefficients came out complex"
        c[a, b, n] = math.fsum(t.real for t in terms)
    c /= math.sqrt(math.fsum(float(v) ** 2 for v in c.flat))
    c[np.abs(c) < 1e-15] = 0.0
    c.setflags(write=False)
    return c


def wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Clebsch-Gordan tensor ``C[m1, m2, m3]`` of shape ``[2l1+1, 2l2+1, 2l3+1]``, float64.

    Invariant: ``C[i,j,k] = C[a,b,c] D1[a,i] D2[b,j] D3[c,k]`` for every rotation, and
    ``sum(C**2) == 1``. Equal to ``e3nn.o3.wigner_3j`` to ~1e-15.

    >>> wigner_3j(1, 1, 0).round(4)[:, :, 0]
    array([[0.5774, 0.    , 0.    ],
           [0.    , 0.5774, 0.    ],
           [0.    , 0.    , 0.5774]])
    """
    for l in (l1, l2, l3):
        if not isinstance(l, (int, np.integer)) or l < 0:
            raise ValueError(f"wigner_3j needs non-negative integer l, got {l!r}")
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"wigner_3j({l1}, {l2}, {l3}): l3 must lie in |l1-l2|..l1+l2 (triangle rule)")
    return _wigner_3j_cached(int(l1), int(l2), int(l3)).copy()


@functools.lru_cache(maxsize=None)
def _so3_generators_cached(l: int) -> np.ndarray:
    j = l
    m = np.arange(-j, j)
    raising = np.diag(-np.sqrt(j * (j + 1) - m * (m + 1.0)), k=-1)
    m = np.arange(-j + 1, j + 1)
    lowering = np.diag(np.sqrt(j * (j + 1) - m * (m - 1.0)), k=1)
    m = np.arange(-j, j + 1)
    su2 = np.stack([0.5 * (raising + lowering), np.diag(1j * m), -0.5j * (raising - lowering)])
    q = _real_to_complex(l)
    x = np.conj(q.T) @ su2 @ q
    assert np.abs(x.imag).max() < 1e-10
    x = np.ascontiguousarray(x.real)
    x.setflags(write=False)
    return x


def so3_generators(l: int) -> np.ndarray:
    """Real antisymmetric generators ``[3, 2l+1, 2l+1]`` of rotations about x, y and z."""
    return _so3_generators_cached(int(l)).copy()


@functools.lru_cache(maxsize=None)
def _generator_eigh(l: int, axis: int):
    # X is real antisymmetric, so iX is Hermitian: exp(tX) = V exp(-i t w) V^H.
    w, v = np.linalg.eigh(1j * _so3_generators_cached(l)[axis])
    return w, v


def _expm_generator(l: int, axis: int, angle: np.ndarray) -> np.ndarray:
    w, v = _generator_eigh(l, axis)
    phase = np.exp(-1j * np.asarray(angle)[..., None] * w)
    return np.real((v * phase[..., None, :]) @ np.conj(v.T))


def wigner_D(l: int, alpha, beta, gamma) -> np.ndarray:
    """Wigner-D matrix ``[..., 2l+1, 2l+1]`` of the rotation Y(alpha) X(beta) Y(gamma), as e3nn."""
    alpha, beta, gamma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (alpha, beta, gamma)))
    return _expm_generator(l, 1, alpha) @ _expm_generator(l, 0, beta) @ _expm_generator(l, 1, gamma)


def _matrix_x(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _matrix_y(a):
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def angles_to_matrix(alpha, beta, gamma) -> np.ndarray:
    """Rotation matrix Y(alpha) @ X(beta) @ Y(gamma), ``[..., 3, 3]``."""
    alpha, beta, gamma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (alpha, beta, gamma)))
    return _matrix_y(alpha) @ _matrix_x(beta) @ _matrix_y(gamma)


def matrix_to_angles(r: np.ndarray):
    """Inverse of :func:`angles_to_matrix` for proper rotations ``[..., 3, 3]``."""
    r = np.asarray(r, dtype=np.float64)
    if not np.allclose(np.linalg.det(r), 1.0, atol=1e-6):
        raise ValueError("matrix_to_angles needs proper rotations (det = +1)")
    y = r @ np.array([0.0, 1.0, 0.0])
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    beta = np.arccos(np.clip(y[..., 1], -1.0, 1.0))
    alpha = np.arctan2(y[..., 0], y[..., 2])
    rest = np.swapaxes(angles_to_matrix(alpha, beta, np.zeros_like(alpha)), -1, -2) @ r
    gamma = np.arctan2(rest[..., 0, 2], rest[..., 0, 0])
    return alpha, beta, gamma


def wigner_D_from_matrix(l: int, r: np.ndarray, p: int = -1) -> np.ndarray:
    """D of irrep (l, p) for an O(3) element ``r`` ``[..., 3, 3]`` (reflections included).

    An improper ``r = -R`` acts as ``p**1 * D(R)``: parity ``p`` applies once per inversion.
    """
    r = np.asarray(r, dtype=np.float64)
    det = np.sign(np.linalg.det(r))
    proper = det[..., None, None] * r
    d = wigner_D(l, *matrix_to_angles(proper))
    factor = np.where(det < 0, float(p), 1.0)
    return factor[..., None, None] * d
