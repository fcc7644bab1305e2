"""equivariant_basis: the commutant of finite-group representations, NumPy only."""
import itertools

import numpy as np
import pytest

from equiforce.algebra import equivariant_basis

C4Z = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])


def _check(basis, rep_in, rep_out):
    k = basis.shape[0]
    gram = np.einsum("kij,lij->kl", basis, basis)
    np.testing.assert_allclose(gram, np.eye(k), atol=1e-12)  # orthonormal
    for w in basis:
        for a, b in zip(rep_in, rep_out):
            np.testing.assert_allclose(w @ a, b @ w, atol=1e-12)  # equivariant


def test_rotation_by_90_degrees_about_z():
    basis = equivariant_basis([C4Z], [C4Z])
    assert basis.shape == (3, 3, 3)
    _check(basis, [C4Z], [C4Z])
    # it spans exactly [[a, b, 0], [-b, a, 0], [0, 0, c]]
    a, b, c = np.random.default_rng(0).normal(size=3)
    target = np.array([[a, b, 0], [-b, a, 0], [0, 0, c]])
    coefficients = np.einsum("kij,ij->k", basis, target)
    np.testing.assert_allclose(np.einsum("k,kij->ij", coefficients, basis), target, atol=1e-12)


def test_permutation_group_and_counts():
    """S3 permuting 3 coordinates (generators: a swap and a 3-cycle): the commutant of the permutation
    representation is 2-dimensional (identity and all-ones); from it to the trivial rep: 1."""
    swap = np.eye(3)[[1, 0, 2]]
    cycle = np.eye(3)[[1, 2, 0]]
    basis = equivariant_basis([swap, cycle], [swap, cycle])
    assert basis.shape == (2, 3, 3)
    _check(basis, [swap, cycle], [swap, cycle])
    invariant = equivariant_basis([swap, cycle], [np.eye(1), np.eye(1)])
    assert invariant.shape == (1, 1, 3)
    np.testing.assert_allclose(np.abs(invariant[0]), np.full((1, 3), 3 ** -0.5), atol=1e-12)
    # the sign representation does not occur in the permutation representation: k = 0
    sign = equivariant_basis([swap, cycle], [-np.eye(1), np.eye(1)])
    assert sign.shape == (0, 1, 3)


def test_random_orthogonal_representations():
    """The dihedral group D4 acting on the plane, direct-summed with random blocks: the count of the
    commutant is the sum over irreps of multiplicity_in x multiplicity_out."""
    r = np.array([[0.0, -1], [1, 0]])
    m = np.array([[1.0, 0], [0, -1]])
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    rep_in = [q @ np.kron(np.eye(2), g) @ q.T for g in (r, m)]  # 2 copies of the 2-D irrep, rotated basis
    rep_out = [np.kron(np.eye(3), g) for g in (r, m)]           # 3 copies
    basis = equivariant_basis(rep_in, rep_out)
    assert basis.shape == (6, 6, 4)  # 2 x 3 copies, the 2-D irrep of D4 is absolutely irreducible
    _check(basis, rep_in, rep_out)
    # products of generators (other group elements) commute too
    for (a1, b1), (a2, b2) in itertools.product(zip(rep_in, rep_out), repeat=2):
        for w in basis:
            np.testing.assert_allclose(w @ a1 @ a2, b1 @ b2 @ w, atol=1e-11)


@pytest.mark.parametrize("rep_in, rep_out, message", [
    ([C4Z], [], "same generators"),
    ([np.ones((3, 2))], [C4Z], "square"),
    ([C4Z, np.eye(2)], [C4Z, C4Z], "one size"),
    ([C4Z * np.nan], [C4Z], "non-finite"),
])
def test_bad_input(rep_in, rep_out, message):
    with pytest.raises(ValueError, match=message):
        equivariant_basis(rep_in, rep_out)


def test_numpy_only():
    import subprocess
    import sys

    code = "import sys, equiforce.algebra.finite as f; f.equivariant_basis([[[1.0]]], [[[1.0]]]); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
