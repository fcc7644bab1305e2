"""Committees (`equiforce deploy CKPT1 CKPT2 ... -o committee.pt`): means and spreads equal to the
members evaluated one by one, the host entry points (edge list with ghosts and layer sizes, cell,
ASE), the spread's invariance under rotations, reflections, translations and permutations in float32
and float64, `equiforce check`, and members that cannot form a committee."""
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from equiforce.cli import main
from equiforce.deploy import export, load
from equiforce.deploy.committee import committee_spread
from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import EquiForceModel, evaluate
from equiforce.testing import random_o3

CONFIG = dict(species=["H", "C", "O"], r_max=3.0, l_max=2, num_features=4, num_layers=2, avg_num_neighbors=8.0)


def member(seed, **changes):
    torch.manual_seed(seed)
    model = EquiForceModel.from_config({**CONFIG, **changes})
    with torch.no_grad():
        model.energy_shift.copy_(torch.linspace(-3.0, -1.0, len(model.species)))
    return model


def checkpoint(path, model):
    """What `equiforce train` writes, as far as `equiforce deploy` reads it."""
    config = {**CONFIG, "dtype": str(model.energy_shift.dtype).replace("torch.", "")}
    torch.save({"format": "equiforce-checkpoint", "model_config": config, "ema": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def members():
    return [member(seed) for seed in (1, 2, 3, 4)]


@pytest.fixture(scope="module")
def committee(members, tmp_path_factory):
    return export(members, tmp_path_factory.mktemp("committee") / "committee.pt")


def reference(members, atoms):
    species = members[0].species_index(atoms.get_chemical_symbols())
    outs = [evaluate(m, torch.tensor(atoms.positions), species, torch.tensor(atoms.cell.array), atoms.pbc.tolist(),
                     stress=bool(atoms.pbc.all())) for m in members]
    energies = torch.stack([o["energy"] for o in outs])
    forces = torch.stack([o["forces"] for o in outs])
    return energies, forces, outs


def _ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=3)
    return atoms


def _periodic():
    atoms = bulk("C", "diamond", a=3.57, cubic=True)
    atoms.rattle(0.08, seed=4)
    atoms.symbols[[1, 4]] = ["H", "O"]
    atoms.cell[1, 0] = 0.3
    return atoms


@pytest.mark.parametrize("make", [_ethanol, _periodic])
def test_means_and_spreads_equal_the_members(members, committee, make):
    atoms = make()
    energies, forces, outs = reference(members, atoms)
    module, meta = load(committee)
    assert meta["committee_size"] == "4" and "force_std" in meta["outputs"].split()
    species = members[0].species_index(atoms.get_chemical_symbols())
    out = module.compute_committee(torch.tensor(atoms.positions), species, torch.tensor(atoms.cell.array),
                                   torch.tensor(atoms.pbc))
    torch.testing.assert_close(out[0], energies.mean(), rtol=0, atol=1e-12)
    torch.testing.assert_close(out[2], forces.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out[5], energies, rtol=0, atol=1e-12)
    torch.testing.assert_close(out[6], forces, rtol=0, atol=1e-12)
    if atoms.pbc.all():
        torch.testing.assert_close(out[3], torch.stack([o["virial"] for o in outs]).mean(0), rtol=0, atol=1e-12)
        torch.testing.assert_close(out[4].sum(0), out[3], rtol=0, atol=1e-12)
    # the spread: sample standard deviations (ddof 1), per-atom norm over the three components
    e_std, f_std = committee_spread(out[5], out[6])
    assert float(e_std) == pytest.approx(float(np.std(energies.numpy(), ddof=1)), rel=1e-12)
    np.testing.assert_allclose(f_std.numpy(), np.linalg.norm(np.std(forces.numpy(), axis=0, ddof=1), axis=1),
                               rtol=1e-12)
    # the contract's entry points give the means too
    assert torch.allclose(module.compute(torch.tensor(atoms.positions), species, torch.tensor(atoms.cell.array),
                                         torch.tensor(atoms.pbc))[2], forces.mean(0), atol=1e-12)
    atoms.calc = EquiForceCalculator(committee)
    assert atoms.get_potential_energy() == pytest.approx(float(energies.mean()), abs=1e-12)
    assert atoms.calc.results["energy_std"] == pytest.approx(float(e_std), rel=1e-12)
    np.testing.assert_allclose(atoms.calc.get_property("force_std", atoms), f_std.numpy(), rtol=1e-12)


def test_edge_list_with_ghosts_and_layer_sizes(members, committee):
    """The edge-list entry point (LAMMPS) counts the local atoms' energies only; passing layer sizes
    (no pruning here) changes nothing."""
    module, _ = load(committee)
    torch.manual_seed(0)
    pos = torch.rand(7, 3, dtype=torch.float64) * 3
    species = torch.tensor([0, 1, 2, 0, 1, 0, 0])
    src, dst = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    keep = (src != dst) & ((pos[src] - pos[dst]).norm(dim=-1) < 3.0)
    src, dst = src[keep], dst[keep]
    shift = torch.zeros(len(src), 3, dtype=torch.float64)
    out = module.committee(pos, species, src, dst, shift, 5)
    sizes = torch.tensor([[7, 7], [len(src), len(src)]])
    again = module.committee(pos, species, src, dst, shift, 5, sizes)
    for a, b in zip(out, again):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    singles = [m.to(torch.float64) for m in members]
    for k, m in enumerate(singles):
        vec = (pos[src] - pos[dst] + shift).requires_grad_(True)
        e = m(vec, species, src, dst)[:5].sum()
        assert float(out[5][k]) == pytest.approx(float(e.detach()), abs=1e-12)
    contract = module.forward(pos, species, src, dst, shift, 5)
    for a, b in zip(contract, out[:5]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spread_is_invariant(dtype, tmp_path):
    """energy_std and force_std under random O(3) elements with reflections, translations and
    permutations of the atoms, on fresh random structures."""
    models = [member(seed, dtype=str(dtype).replace("torch.", "")) for seed in (5, 6, 7)]
    module, _ = load(export(models, tmp_path / "c.pt"))
    generator = torch.Generator().manual_seed(int(dtype == torch.float64))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for trial in range(4):
        pos = torch.randn(10, 3, generator=generator, dtype=torch.float64) * 1.6
        species = torch.randint(0, 3, (10,), generator=generator)
        zero_cell, no_pbc = torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool)
        ref = module.uncertainty(pos.to(dtype), species, zero_cell, no_pbc)
        g = random_o3(improper=trial % 2 == 0, generator=generator)
        perm = torch.randperm(10, generator=generator)
        moved = (pos @ g.T + torch.randn(3, generator=generator, dtype=torch.float64) * 4)[perm]
        out = module.uncertainty(moved.to(dtype), species[perm], zero_cell, no_pbc)
        scale = float(ref["force_std"].max())
        assert abs(float(out["energy_std"] - ref["energy_std"])) <= tol * max(1.0, float(ref["energy_std"]))
        assert float((out["force_std"] - ref["force_std"][perm]).abs().max()) <= tol * max(1.0, scale)
        assert float((out["forces"] - ref["forces"][perm] @ g.to(dtype).T).abs().max()) <= tol * max(
            1.0, float(ref["forces"].abs().max()))


def test_cli_deploy_and_check(members, tmp_path, capsys):
    paths = [str(checkpoint(tmp_path / f"m{k}.pt", m)) for k, m in enumerate(members[:3])]
    assert main(["deploy", *paths, "-o", str(tmp_path / "committee.pt")]) == 0
    assert "committee_size=3" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "committee.pt")]) == 0
    assert "committee spread invariant" in capsys.readouterr().out
    # one checkpoint: an ordinary model
    assert main(["deploy", paths[0], "-o", str(tmp_path / "one.pt")]) == 0
    assert "committee_size" not in load(tmp_path / "one.pt")[1]


@pytest.mark.parametrize("change,message", [
    (dict(species=["H", "O", "C"]), "species"),
    (dict(species=["H", "C"]), "species"),
    (dict(r_max=3.5), "cutoff r_max"),
    (dict(num_layers=3), "number of message-passing layers"),
    (dict(dtype="float32"), "dtype"),
    (dict(long_range="ewald"), "long-range, dipole or polarizability"),
    (dict(dipole=True), "long-range, dipole or polarizability"),
])
def test_members_that_cannot_form_a_committee(members, tmp_path, change, message):
    other = member(9, **change)
    target = tmp_path / "committee.pt"
    target.write_text("kept")
    with pytest.raises(ValueError, match=message):
        export([members[0], members[1], other], target)
    assert target.read_text() == "kept"  # nothing a user saved is lost


def test_other_refusals(members, tmp_path):
    with pytest.raises(ValueError, match="TorchScript only"):
        export(members[:2], tmp_path / "c.pt2", format="aoti")
    module, meta = load(export(members[0], tmp_path / "single.pt"))
    assert "committee_size" not in meta
    assert "energy_std" not in EquiForceCalculator(tmp_path / "single.pt").implemented_properties


def test_eval_reports_how_the_spread_ranks_errors(members, committee, tmp_path, capsys):
    """`equiforce eval` of a committee adds the mean force_std and its correlation with the per-atom
    force errors; labels from one member make the errors exactly that member's deviation."""
    import json

    from ase.io import write

    frames = []
    for seed in range(4):
        atoms = _ethanol()
        atoms.rattle(0.05, seed=10 + seed)
        species = members[0].species_index(atoms.get_chemical_symbols())
        out = evaluate(members[0], torch.tensor(atoms.positions), species)
        atoms.info["energy"] = float(out["energy"])
        atoms.arrays["forces"] = out["forces"].numpy()
        frames.append(atoms)
    write(tmp_path / "labelled.xyz", frames, format="extxyz")
    assert main(["eval", str(committee), str(tmp_path / "labelled.xyz")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["force_std_mean"] > 0 and -1 <= metrics["force_std_error_spearman"] <= 1
    assert metrics["force_std_error_pearson"] > 0.3  # the deviation of one member tracks the spread
