import numpy as np
import pytest
import torch
from e3nn import o3 as e3nn_o3

from equiforce.algebra import wigner_3j, wigner_D, wigner_D_from_matrix, angles_to_matrix, matrix_to_angles
from equiforce.testing import random_o3

L_MAX = 8


@pytest.fixture(autouse=True)
def _e3nn_references_in_float64(e3nn_in_float64):
    yield


def test_wigner_3j_equals_e3nn_up_to_l8():
    worst = 0.0
    for l1 in range(L_MAX + 1):
        for l2 in range(L_MAX + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, L_MAX) + 1):
                ref = e3nn_o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
                worst = max(worst, np.abs(wigner_3j(l1, l2, l3) - ref).max())
    assert worst < 1e-12, f"largest difference from e3nn: {worst:.3e}"


def test_wigner_3j_is_a_copy_and_normalised():
    c = wigner_3j(2, 2, 2)
    c[:] = 0
    assert abs(np.sum(wigner_3j(2, 2, 2) ** 2) - 1) < 1e-14


@pytest.mark.parametrize("bad", [(1, 1, 3), (-1, 0, 1), (1.5, 1, 1)])
def test_wigner_3j_rejects_bad_degrees(bad):
    with pytest.raises(ValueError):
        wigner_3j(*bad)


@pytest.mark.parametrize("l", range(6))
def test_wigner_D_equals_e3nn(l):
    a, b, c = np.random.default_rng(l).uniform(0, 2 * np.pi, 3)
    ref = e3nn_o3.wigner_D(l, *(torch.tensor(v) for v in (a, b, c))).numpy()
    assert np.abs(wigner_D(l, a, b, c) - ref).max() < 1e-12


@pytest.mark.parametrize("l,p", [(0, 1), (0, -1), (1, -1), (1, 1), (2, 1), (3, -1), (4, 1)])
def test_D_from_matrix_equals_e3nn_with_reflections(l, p):
    for improper in (False, True):
        r = random_o3(improper=improper)
        ref = e3nn_o3.Irrep(l, p).D_from_matrix(r).numpy()
        assert np.abs(wigner_D_from_matrix(l, r.numpy(), p) - ref).max() < 1e-10


def test_D_is_a_homomorphism_and_w3j_invariant():
    r1, r2 = random_o3(True).numpy(), random_o3(False).numpy()
    for l in range(5):
        lhs = wigner_D_from_matrix(l, r1 @ r2, -1)
        rhs = wigner_D_from_matrix(l, r1, -1) @ wigner_D_from_matrix(l, r2, -1)
        assert np.abs(lhs - rhs).max() < 1e-10
    for l1, l2, l3 in [(1, 1, 2), (2, 1, 3), (2, 2, 2), (3, 2, 1)]:
        c = wigner_3j(l1, l2, l3)
        d1, d2, d3 = (wigner_D_from_matrix(l, r1, (-1) ** l) for l in (l1, l2, l3))
        assert np.abs(np.einsum("abc,ai,bj,ck->ijk", c, d1, d2, d3) - c).max() < 1e-10


def test_angles_round_trip():
    r = random_o3(False).numpy()
    assert np.abs(angles_to_matrix(*matrix_to_angles(r)) - r).max() < 1e-12
    assert np.abs(wigner_D_from_matrix(1, r) - r).max() < 1e-12  # l = 1 is (x, y, z)
