"""equiforce::neighbor_list against ase.neighborlist.primitive_neighbor_list on many random cells."""
import numpy as np
import pytest
import torch
from ase.neighborlist import primitive_neighbor_list
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from equiforce.ops import neighbor_list


def _rows(i, j, s):
    a = np.concatenate([np.asarray(i)[:, None], np.asarray(j)[:, None], np.asarray(s).reshape(-1, 3)], axis=1)
    return a[np.lexsort(a.T[::-1])] if len(a) else a.reshape(0, 5)


def assert_same_as_ase(positions, cell, pbc, cutoff, self_interaction=False, dtype=torch.float64):
    i, j, s = primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=self_interaction)
    oi, oj, os_ = neighbor_list(torch.tensor(positions, dtype=dtype), torch.tensor(cell), torch.tensor(pbc), cutoff,
                                self_interaction)
    assert oi.dtype == torch.long and os_.shape == (len(oi), 3)
    expected, got = _rows(i, j, s), _rows(oi.numpy(), oj.numpy(), os_.numpy())
    assert expected.shape == got.shape, f"{len(got)} pairs, ASE finds {len(expected)}"
    assert (expected == got).all()
    assert (np.diff(oi.numpy()) >= 0).all(), "pairs are sorted by i"


def _spacing(cell):
    return 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)


@st.composite
def systems(draw):
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["triclinic", "orthogonal", "tiny", "skewed"]))
    if kind == "orthogonal":
        cell = np.diag(rng.uniform(2, 10, 3))
    elif kind == "tiny":
        cell = np.diag(rng.uniform(0.8, 2.5, 3)) + rng.normal(size=(3, 3)) * 0.2
    elif kind == "skewed":
        cell = np.eye(3) * rng.uniform(3, 6) + np.triu(rng.uniform(-4, 4, (3, 3)), 1)
    else:
        cell = rng.normal(size=(3, 3)) * rng.uniform(2, 6)
    pbc = rng.random(3) < 0.6
    n = int(rng.integers(1, 40))
    inside = rng.random((n, 3)) @ cell
    outside = rng.normal(size=(n, 3)) * 6  # atoms anywhere, outside the cell included
    positions = np.where(rng.random((n, 1)) < 0.7, inside, outside)
    cutoff = float(rng.uniform(0.3, 4.5))
    return positions, cell, pbc, cutoff, bool(rng.random() < 0.3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(systems())
def test_random_cells_match_ase(system):
    positions, cell, pbc, cutoff, self_interaction = system
    if abs(np.linalg.det(cell)) < 0.3 or cutoff / _spacing(cell).min() > 5:
        return  # ASE's own search explodes in memory there; covered by the brute-force test below
    assert_same_as_ase(positions, cell, pbc, cutoff, self_interaction)


def _brute_force(positions, cell, pbc, cutoff, self_interaction):
    reach = [int(np.ceil(cutoff / s)) + 1 if p else 0 for s, p in zip(_spacing(cell), pbc)]
    rows = []
    for a in range(-reach[0], reach[0] + 1):
        for b in range(-reach[1], reach[1] + 1):
            for c in range(-reach[2], reach[2] + 1):
                shift = np.array([a, b, c])
                d = positions[None, :, :] - positions[:, None, :] + shift @ cell
                for i, j in zip(*np.nonzero(np.linalg.norm(d, axis=-1) < cutoff)):
                    if i == j and not shift.any() and not self_interaction:
                        continue
                    rows.append([i, j, a, b, c])
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


@pytest.mark.parametrize("seed", range(6))
def test_cells_much_smaller_than_the_cutoff(seed):
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 0.9 + rng.normal(size=(3, 3)) * 0.15
    pbc = np.array([True, True, seed % 2 == 0])
    positions = rng.random((3, 3)) @ cell
    i, j, s = neighbor_list(torch.tensor(positions), torch.tensor(cell), torch.tensor(pbc), 2.7, seed % 3 == 0)
    expected = _brute_force(positions, cell, pbc, 2.7, seed % 3 == 0)
    got = _rows(i.numpy(), j.numpy(), s.numpy())
    assert got.shape == expected.shape and (got == expected[np.lexsort(expected.T[::-1])]).all()


def test_single_atom_sees_its_own_images():
    cell = np.diag([2.0, 3.0, 10.0])
    i, j, s = neighbor_list(torch.zeros(1, 3), torch.tensor(cell), torch.tensor([True, True, False]), 3.5)
    assert (i == 0).all() and (j == 0).all()
    # |(1,0,0)| = 2 and |(0,1,0)| = 3 are inside 3.5; |(1,1,0)| = 3.6 and |(2,0,0)| = 4 are not
    assert sorted(map(tuple, s.tolist())) == sorted([(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0)])
    assert_same_as_ase(np.zeros((1, 3)), cell, np.array([True, True, False]), 3.5)


def test_molecule_without_cell_and_float32_positions():
    rng = np.random.default_rng(3)
    positions = rng.normal(size=(20, 3)) * 2
    assert_same_as_ase(positions, np.zeros((3, 3)), np.array([False] * 3), 2.5)
    assert_same_as_ase(positions.astype(np.float32).astype(np.float64), np.zeros((3, 3)), np.array([False] * 3), 2.5,
                       dtype=torch.float32)


def test_empty_and_zero_cutoff():
    i, j, s = neighbor_list(torch.zeros(0, 3), None, False, 3.0)
    assert len(i) == len(j) == len(s) == 0
    i, _, _ = neighbor_list(torch.zeros(4, 3), None, False, 0.0)
    assert len(i) == 0


def test_bulk_crystal_counts():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6).repeat((3, 3, 3))
    i, _, _ = neighbor_list(torch.tensor(atoms.positions), torch.tensor(atoms.cell.array), True, 2.6)
    assert np.bincount(i.numpy()).tolist() == [12] * len(atoms)  # fcc: 12 nearest neighbours
    assert_same_as_ase(atoms.positions, atoms.cell.array, np.array([True] * 3), 5.0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(cutoff=-1.0), "cutoff"),
    (dict(cutoff=float("nan")), "cutoff"),
    (dict(cell=np.zeros((3, 3)), pbc=True), "linearly dependent"),
    (dict(cell=np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]]), pbc=True), "linearly dependent"),
    (dict(positions=np.array([[0.0, np.nan, 0.0]])), "NaN"),
    (dict(positions=np.zeros((3, 2))), "shape"),
])
def test_bad_input_raises_clear_errors(kwargs, match):
    args = dict(positions=np.zeros((2, 3)), cell=np.eye(3) * 5, pbc=False, cutoff=2.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        neighbor_list(torch.tensor(args["positions"]), torch.tensor(args["cell"]), args["pbc"], args["cutoff"])


def test_opcheck():
    x = torch.randn(10, 3, dtype=torch.float64) * 3
    torch.library.opcheck(torch.ops.equiforce.neighbor_list.default,
                          (x, torch.eye(3, dtype=torch.float64) * 5, torch.tensor([True, True, False]), 2.5, False))
