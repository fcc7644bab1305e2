"""The potential's symmetries and derivatives: invariant energy, equivariant forces under O(3) with
reflections, translations and permutations; forces and stress against finite differences; a small
periodic cell against its supercell."""
import numpy as np
import pytest
import torch

from equiforce.model import EquiForceModel, evaluate
from equiforce.testing import random_o3

SYMBOLS = ["C", "C", "O", "H", "H", "H", "H", "H", "H"]


def _model(parity=True, l_max=2, dtype="float64", **kw):
    torch.manual_seed(0)
    config = dict(species=["C", "H", "O"], r_max=4.0, l_max=l_max, num_features=6, num_layers=2, parity=parity,
                  dtype=dtype, avg_num_neighbors=5.0)
    config.update(kw)
    model = EquiForceModel.from_config(config)
    with torch.no_grad():  # non-trivial per-species scale and shift
        model.energy_shift.copy_(torch.tensor([-1.0, -0.5, -2.0]))
        model.energy_scale.copy_(torch.tensor([0.7, 1.3, 0.9]))
    return model


def _molecule(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(SYMBOLS), 3, generator=g, dtype=torch.float64) * 1.1


@pytest.mark.parametrize("parity, l_max", [(True, 2), (False, 2), (True, 1), (True, 3), (True, 0)])
def test_energy_invariant_and_forces_equivariant_under_o3(parity, l_max):
    model = _model(parity, l_max)
    species = model.species_index(SYMBOLS)
    pos = _molecule()
    ref = evaluate(model, pos, species)
    for improper in (False, True, False, True):
        g = random_o3(improper=improper)
        out = evaluate(model, pos @ g.T, species)
        assert abs(out["energy"] - ref["energy"]) < 1e-10
        assert torch.allclose(out["forces"], ref["forces"] @ g.T, atol=1e-10)
        assert torch.allclose(out["energies"], ref["energies"], atol=1e-10)


def test_translation_and_permutation_invariance():
    model = _model()
    species = model.species_index(SYMBOLS)
    pos = _molecule(1)
    ref = evaluate(model, pos, species)
    moved = evaluate(model, pos + torch.tensor([3.0, -7.0, 11.0], dtype=torch.float64), species)
    assert abs(moved["energy"] - ref["energy"]) < 1e-10
    perm = torch.randperm(len(SYMBOLS))
    permuted = evaluate(model, pos[perm], species[perm])
    assert abs(permuted["energy"] - ref["energy"]) < 1e-10
    assert torch.allclose(permuted["forces"], ref["forces"][perm], atol=1e-10)


def test_forces_are_minus_the_energy_gradient():
    model = _model()
    species = model.species_index(SYMBOLS)
    pos = _molecule(2)
    forces = evaluate(model, pos, species)["forces"]
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (8, 2), (2, 0)]:
        plus, minus = pos.clone(), pos.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        fd = -(evaluate(model, plus, species, forces=False)["energy"]
               - evaluate(model, minus, species, forces=False)["energy"]) / (2 * h)
        assert abs(fd - forces[atom, axis]) < 1e-7, (atom, axis, float(fd), float(forces[atom, axis]))


def _periodic(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    cell = torch.tensor([[4.2, 0.3, 0.0], [0.4, 3.9, 0.2], [-0.3, 0.5, 4.4]], dtype=torch.float64)
    frac = torch.rand(n, 3, generator=g, dtype=torch.float64)
    return frac @ cell, cell


def test_stress_against_finite_strain():
    model = _model()
    pos, cell = _periodic()
    species = model.species_index(["C", "H", "O", "H", "C", "H"])
    out = evaluate(model, pos, species, cell, True, stress=True)
    volume = torch.det(cell).abs()
    h = 1e-5
    for a, b in [(0, 0), (1, 2), (2, 1), (0, 2), (2, 2)]:
        eps = torch.zeros(3, 3, dtype=torch.float64)
        eps[a, b] = h
        e_plus = evaluate(model, pos @ (torch.eye(3, dtype=torch.float64) + eps), species,
                          cell @ (torch.eye(3, dtype=torch.float64) + eps), True, forces=False)["energy"]
        e_minus = evaluate(model, pos @ (torch.eye(3, dtype=torch.float64) - eps), species,
                           cell @ (torch.eye(3, dtype=torch.float64) - eps), True, forces=False)["energy"]
        fd = (e_plus - e_minus) / (2 * h) / volume
        assert abs(fd - out["stress"][a, b]) < 1e-7, (a, b, float(fd), float(out["stress"][a, b]))


def test_small_periodic_cell_equals_its_supercell():
    """A cell smaller than 2 r_max (atoms see their own images) against a 2x2x1 supercell."""
    model = _model()
    pos, cell = _periodic(3, n=3)
    cell = cell * 0.8
    pos = pos * 0.8
    symbols = ["C", "O", "H"]
    species = model.species_index(symbols)
    small = evaluate(model, pos, species, cell, True, stress=True)
    shifts = [torch.tensor([a, b, 0], dtype=torch.float64) @ cell for a in range(2) for b in range(2)]
    big_pos = torch.cat([pos + s for s in shifts])
    big_cell = cell * torch.tensor([[2.0], [2.0], [1.0]], dtype=torch.float64)
    big = evaluate(model, big_pos, species.repeat(4), big_cell, True, stress=True)
    assert abs(big["energy"] - 4 * small["energy"]) < 1e-9
    assert torch.allclose(big["forces"], small["forces"].repeat(4, 1), atol=1e-9)
    assert torch.allclose(big["stress"], small["stress"], atol=1e-10)


def test_float32_agrees_with_float64():
    m64 = _model(dtype="float64")
    m32 = _model(dtype="float32")
    species = m64.species_index(SYMBOLS)
    pos = _molecule(4)
    a, b = evaluate(m64, pos, species), evaluate(m32, pos, species)
    assert abs(float(a["energy"]) - float(b["energy"])) < 1e-4 * max(1.0, abs(float(a["energy"])))
    assert torch.allclose(a["forces"], b["forces"].double(), atol=1e-4)


@pytest.mark.parametrize("config, match", [
    (dict(r_max=5.0), "species"),
    (dict(species=["C"], l_max=2, colour="red"), "unknown model config keys"),
    (dict(species=["C"], dtype="float16"), "dtype"),
    (dict(species=["C", "C"]), "distinct"),
])
def test_bad_configs(config, match):
    with pytest.raises(ValueError, match=match):
        EquiForceModel.from_config(config)


def test_unknown_element():
    with pytest.raises(ValueError, match=r"not \['Fe'\]"):
        _model().species_index(["C", "Fe"])
