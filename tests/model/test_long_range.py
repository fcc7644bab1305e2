"""Long-range electrostatics, dipole and polarizability heads: Ewald against independent references,
charge neutrality, derivatives, O(3) behaviour of every output, energy conservation, bad input."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from equiforce.model import COULOMB_CONSTANT, EquiForceModel, evaluate
from equiforce.model.electrostatics import coulomb_potential, direct_potential, ewald_potential
from equiforce.testing import random_o3

F64 = torch.float64
MADELUNG_NACL = 1.747564594633182  # rock salt, per ion pair, nearest-neighbour distance
MADELUNG_CSCL = 1.762674773070988  # caesium chloride


def ewald_energy(positions, charges, cell, cutoff=6.0, accuracy=1e-12):
    positions, charges, cell = (torch.as_tensor(np.asarray(a), dtype=F64) for a in (positions, charges, cell))
    return float(0.5 * (charges * ewald_potential(positions, charges, cell, cutoff, accuracy)).sum())


def rock_salt(a=5.64):
    frac = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    pos = np.concatenate([frac, frac + 0.5]) * a
    return pos, np.array([1.0] * 4 + [-1.0] * 4), np.eye(3) * a


def test_nacl_madelung_energy_cubic_and_primitive_triclinic_cells():
    a = 5.64
    r0 = a / 2
    pos, q, cell = rock_salt(a)
    exact = -4 * MADELUNG_NACL * COULOMB_CONSTANT / r0
    assert abs(ewald_energy(pos, q, cell) - exact) <= 1e-6 * abs(exact)
    # the 2-atom primitive cell of the fcc lattice: a triclinic (60 degree) cell
    prim = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    e = ewald_energy([[0, 0, 0], [r0, 0, 0]], [1.0, -1.0], prim)
    assert abs(e - (-MADELUNG_NACL * COULOMB_CONSTANT / r0)) <= 1e-6 * MADELUNG_NACL * COULOMB_CONSTANT / r0
    # atoms far outside the cell and a translated crystal give the same energy
    shifted = pos + np.array([3 * a + 0.37, -2 * a, 0.11])
    assert abs(ewald_energy(shifted, q, cell) - exact) <= 1e-6 * abs(exact)


def test_cscl_madelung_energy():
    a = 4.12
    e = ewald_energy([[0, 0, 0], [a / 2] * 3], [1.0, -1.0], np.eye(3) * a)
    exact = -MADELUNG_CSCL * COULOMB_CONSTANT / (math.sqrt(3) * a / 2)
    assert abs(e - exact) <= 1e-6 * abs(exact)


def random_neutral_cell(seed, n=7, charged=False):
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(5.5, 8.0, 3)) + rng.normal(size=(3, 3)) * 0.8
    pos = rng.random((n, 3)) @ cell
    q = rng.normal(size=n)
    if not charged:
        q -= q.mean()
    return pos, q, cell


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ewald_matches_pymatgen_energy_and_forces_in_triclinic_cells(seed):
    from pymatgen.analysis.ewald import EwaldSummation
    from pymatgen.core import Lattice, Structure

    pos, q, cell = random_neutral_cell(seed)
    structure = Structure(Lattice(cell), ["H"] * len(q), pos, coords_are_cartesian=True,
                          site_properties={"charge": q})
    reference = EwaldSummation(structure, acc_factor=14.0, compute_forces=True)
    p = torch.tensor(pos, requires_grad=True)
    qt, c = torch.tensor(q), torch.tensor(cell)
    energy = 0.5 * (qt * ewald_potential(p, qt, c, 7.0, 1e-12)).sum()
    (grad,) = torch.autograd.grad(energy, p)
    # pymatgen's constant is from scipy's CODATA release; ours is CODATA 2018: compare shapes at 1e-6
    assert abs(float(energy.detach()) - reference.total_energy) <= 1e-6 * abs(reference.total_energy)
    assert np.abs(-grad.numpy() - reference.forces).max() <= 1e-6 * np.abs(reference.forces).max()


def test_ewald_energy_does_not_depend_on_the_splitting_parameter():
    pos, q, cell = random_neutral_cell(3)
    energies = [ewald_energy(pos, q, cell, cutoff=c, accuracy=1e-12) for c in (4.0, 6.0, 9.0)]
    assert max(energies) - min(energies) <= 1e-8 * abs(energies[0])
    pos, q, cell = random_neutral_cell(4, charged=True)  # with the neutralising background too
    energies = [ewald_energy(pos, q, cell, cutoff=c, accuracy=1e-12) for c in (4.0, 6.0, 9.0)]
    assert max(energies) - min(energies) <= 1e-8 * abs(energies[0])


def test_direct_sum_matches_a_plain_double_loop():
    rng = np.random.default_rng(5)
    pos, q = rng.normal(size=(6, 3)) * 3, rng.normal(size=6)
    expected = sum(q[i] * q[j] / np.linalg.norm(pos[i] - pos[j]) for i in range(6) for j in range(i + 1, 6))
    phi = direct_potential(torch.tensor(pos), torch.tensor(q))
    assert abs(0.5 * float((torch.tensor(q) * phi).sum()) - COULOMB_CONSTANT * expected) <= 1e-12 * abs(expected) * 15


def test_mixed_boundaries_are_refused():
    pos, q, cell = random_neutral_cell(0)
    with pytest.raises(ValueError, match="open or fully periodic"):
        coulomb_potential(torch.tensor(pos), torch.tensor(q), torch.tensor(cell), torch.tensor([True, True, False]))


# ---- the model with heads ---------------------------------------------------------------------

def head_model(long_range="ewald", dipole=True, polarizability=True, total_charge=0.0, seed=0, charge_scale=20.0,
               **extra):
    torch.manual_seed(seed)
    model = EquiForceModel.from_config(dict(species=["H", "O"], r_max=3.5, l_max=2, num_features=6, num_layers=2,
                                            long_range=long_range, dipole=dipole, polarizability=polarizability,
                                            total_charge=total_charge, ewald_cutoff=5.0, ewald_accuracy=1e-10,
                                            **extra))
    with torch.no_grad():  # charges of order 0.5 e, so the Coulomb part matters in every check
        model.charge_readout.weight.mul_(charge_scale) if long_range != "none" else None
    return model.eval()


def molecule(seed=0, n=7):
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        p = rng.normal(size=3) * 1.6
        if all(np.linalg.norm(p - q) > 1.0 for q in pts):
            pts.append(p)
    return torch.tensor(np.array(pts)), torch.tensor(rng.integers(0, 2, n))


def periodic(seed=0, n=6):
    rng = np.random.default_rng(seed)
    cell = torch.tensor(np.diag([6.0, 6.5, 7.0]) + rng.normal(size=(3, 3)) * 0.4)
    pos = torch.tensor(rng.random((n, 3))) @ cell
    return pos, torch.tensor(rng.integers(0, 2, n)), cell


def system_of(kind, seed):
    """(positions, species, cell, pbc): a molecule ('open') or a triclinic cell ('periodic')."""
    if kind == "open":
        pos, species = molecule(seed)
        return pos, species, torch.zeros(3, 3, dtype=F64), [False] * 3
    return (*periodic(seed), [True] * 3)


def test_charges_are_neutral_per_structure_and_sum_to_the_total_charge():
    from equiforce.data import collate
    from equiforce.data.graph import build_graph
    from equiforce.data.structures import Structure

    for total in (0.0, -1.0):
        model = head_model(total_charge=total)
        graphs = []
        for seed in range(3):
            pos, species = molecule(seed, n=5 + seed)
            s = Structure(["H" if k == 0 else "O" for k in species.tolist()], pos.numpy(), np.zeros((3, 3)),
                          np.zeros(3, bool))
            graphs.append(build_graph(s, lambda sym: torch.tensor([0 if x == "H" else 1 for x in sym]), 3.5, F64))
        batch = collate(graphs)
        out = model.outputs(batch.positions, batch.species, batch.edge_src, batch.edge_dst, batch.edge_shift,
                            batch.atom_graph, batch.num_graphs, batch.cells, batch.pbcs, forces=False)
        sums = torch.zeros(3, dtype=F64).index_add(0, batch.atom_graph, out["charges"])
        assert torch.allclose(sums, torch.full((3,), total, dtype=F64), atol=1e-12)
        assert float(out["charges"].abs().max()) > 0.05  # not trivially zero


@pytest.mark.parametrize("system", ["open", "periodic"])
def test_forces_and_virial_are_derivatives_with_long_range_on(system):
    model = head_model()
    pos, species, cell, pbc = system_of(system, 1)
    out = evaluate(model, pos, species, cell, pbc, forces=True, stress=system == "periodic")
    energy = lambda p, c=cell: float(evaluate(model, p, species, c, pbc, forces=False)["energy"])  # noqa: E731
    h = 1e-5
    worst = 0.0
    for atom in range(len(pos)):
        for axis in range(3):
            d = torch.zeros_like(pos)
            d[atom, axis] = h
            fd = -(energy(pos + d) - energy(pos - d)) / (2 * h)
            worst = max(worst, abs(fd - float(out["forces"][atom, axis])))
    assert worst <= 1e-6 * max(1.0, float(out["forces"].abs().max()))
    assert float(out["charges"].abs().max()) > 0.05
    if system == "periodic":
        for a, b in [(0, 0), (1, 2), (2, 1), (0, 1)]:
            eps = torch.zeros(3, 3, dtype=F64)
            eps[a, b] = h
            up, down = torch.eye(3, dtype=F64) + eps, torch.eye(3, dtype=F64) - eps
            fd = (energy(pos @ up, cell @ up) - energy(pos @ down, cell @ down)) / (2 * h)
            assert abs(fd + float(out["virial"][a, b])) <= 1e-6 * max(1.0, float(out["virial"].abs().max()))


@pytest.mark.parametrize("system", ["open", "periodic"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_output_rotates_correctly_under_o3_with_reflections(system, dtype):
    model = head_model().to(dtype)
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    pos, species, cell, pbc = system_of(system, 2)
    ref = evaluate(model, pos, species, cell, pbc, stress=system == "periodic")
    for trial in range(4):
        g = random_o3(improper=trial % 2 == 0, generator=torch.Generator().manual_seed(trial))
        out = evaluate(model, pos @ g.T, species, cell @ g.T, pbc, stress=system == "periodic")
        scale = lambda t: max(1.0, float(t.abs().max()))  # noqa: E731
        assert abs(float(out["energy"] - ref["energy"])) <= tol * scale(ref["energy"])
        assert torch.allclose(out["charges"], ref["charges"], atol=tol)
        assert float((out["forces"].double() - ref["forces"].double() @ g.T).abs().max()) <= tol * scale(ref["forces"])
        expected_dipole = g @ ref["dipole"].double()  # a polar vector: R v, -v under inversion
        assert float((out["dipole"].double() - expected_dipole).abs().max()) <= tol * scale(ref["dipole"])
        expected_alpha = g @ ref["polarizability"].double() @ g.T
        assert float((out["polarizability"].double() - expected_alpha).abs().max()) <= tol * scale(expected_alpha)
        if system == "periodic":
            expected_virial = g @ ref["virial"].double() @ g.T
            assert float((out["virial"].double() - expected_virial).abs().max()) <= tol * scale(expected_virial)


def test_polarizability_is_symmetric_and_the_dipole_is_translation_covariant_with_total_charge():
    model = head_model(total_charge=1.0)
    pos, species = molecule(3)
    out = evaluate(model, pos, species, forces=False)
    assert torch.allclose(out["polarizability"], out["polarizability"].T, atol=1e-14)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    moved = evaluate(model, pos + shift, species, forces=False)
    # sum_i q_i (r_i + t) = mu + Q t for a structure of total charge Q = 1
    assert torch.allclose(moved["dipole"], out["dipole"] + shift, atol=1e-10)


WATER_MODEL = Path(__file__).resolve().parents[2] / "examples" / "models" / "water_coulomb.pt"


@pytest.mark.parametrize("periodic", [False, True])
def test_nve_conserves_energy_with_long_range(periodic):
    """The shipped water model with learned charges (benchmarks/long_range_dimer.py): two molecules in
    vacuum (direct sum) and in a 9 A periodic box (Ewald), 300 K, 200 fs of velocity Verlet."""
    from ase import Atoms, units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from equiforce.hosts.ase import EquiForceCalculator

    water = np.array([[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    atoms = Atoms("OH2OH2", positions=np.concatenate([water, water @ np.diag([1, -1, 1]) + [0.3, -0.2, 3.1]]))
    if periodic:
        atoms.set_cell(np.eye(3) * 9.0)
        atoms.pbc = True
    atoms.calc = EquiForceCalculator(WATER_MODEL)
    assert np.abs(atoms.get_charges()).max() > 0.1
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    energies = []
    for _ in range(40):
        dyn.run(10)
        energies.append(atoms.get_total_energy())
    assert np.isfinite(energies).all()
    assert float(np.ptp(energies)) / len(atoms) < 2e-3  # eV/atom, fluctuation of a 0.5 fs Verlet step
    drift = abs(np.polyfit(np.arange(len(energies)) * 5.0, energies, 1)[0]) * 1e3 / len(atoms)  # meV/atom/fs
    assert drift < 0.01


def test_heads_need_the_features_they_read_and_bad_options_are_refused():
    with pytest.raises(ValueError, match="dipole: true needs l_max >= 1"):
        EquiForceModel(["H"], l_max=0, dipole=True)
    with pytest.raises(ValueError, match="polarizability: true needs l_max >= 2"):
        EquiForceModel(["H"], l_max=1, polarizability=True)
    with pytest.raises(ValueError, match="long_range must be one of"):
        EquiForceModel(["H"], long_range="pme")
    model = head_model()
    pos, species, cell = periodic(0)
    with pytest.raises(ValueError, match="open or fully periodic"):
        evaluate(model, pos, species, cell, [True, True, False])


def test_exported_long_range_model_refuses_host_edge_lists(tmp_path):
    """Ghost-atom hosts (the edge-list forward) cannot run a model whose Coulomb sum needs the cell."""
    from equiforce.deploy import export, load

    module, meta = load(export(head_model(dipole=False, polarizability=False), tmp_path / "lr.pt"))
    assert meta["long_range"] == "ewald" and meta["outputs"] == "energy forces virial charges"
    pos, species, cell = periodic(0)
    src, dst = torch.tensor([0, 1]), torch.tensor([1, 0])
    with pytest.raises(Exception, match="call compute"):
        module(pos, species, src, dst, torch.zeros(2, 3, dtype=F64), len(pos))
    out = module.compute(pos, species, cell, torch.ones(3, dtype=torch.bool))
    ref = evaluate(head_model(dipole=False, polarizability=False), pos, species, cell, [True] * 3, stress=True)
    assert abs(float(out[0]) - float(ref["energy"])) < 1e-10 * abs(float(ref["energy"]))
    assert torch.allclose(out[3], ref["virial"], atol=1e-10)
    assert torch.allclose(out[4].sum(0), out[3], atol=1e-10)  # per-atom virials sum to the virial


def test_dipole_of_the_charges_alone():
    """dipole: charges makes the dipole sum q_i r_i (no per-atom vectors): training it fits charges
    that reproduce the molecule's dipole, hence its dipole-dipole tail."""
    model = head_model(dipole="charges", polarizability=False)
    assert not hasattr(model, "dipole_readout")
    pos, species = molecule(4)
    out = evaluate(model, pos, species, forces=False)
    assert torch.allclose(out["dipole"], (out["charges"].unsqueeze(-1) * pos).sum(0), atol=1e-12)
    with pytest.raises(ValueError, match="needs long_range: ewald"):
        EquiForceModel(["H"], dipole="charges")
    with pytest.raises(ValueError, match="dipole must be true, false or 'charges'"):
        EquiForceModel(["H"], dipole="yes")
