"""`equiforce select`: frames ranked by a committee's uncertainty, skipping symmetry copies (rotations,
reflections, translations, permutations of like atoms) of picked and excluded frames; the copy test
itself on molecules and periodic cells; bad input."""
import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import read, write

from equiforce.cli import main
from equiforce.deploy import export, load
from equiforce.model import EquiForceModel
from equiforce.select import Fingerprint, committee_scores, is_symmetry_copy, select
from equiforce.testing import random_o3

from .helpers import export_committee


def copy_of(atoms, seed, permute=True):
    """``atoms`` under a random O(3) element (reflection for odd seeds), a translation and a
    permutation of like atoms."""
    g = random_o3(improper=seed % 2 == 1, generator=torch.Generator().manual_seed(seed)).numpy()
    rng = np.random.default_rng(seed)
    out = atoms.copy()
    out.positions = atoms.positions @ g.T + rng.normal(size=3) * 5
    if atoms.pbc.all():
        out.set_cell(atoms.cell.array @ g.T)
        out.wrap()
    if permute:
        order = np.arange(len(atoms))
        symbols = np.array(atoms.get_chemical_symbols())
        for s in set(symbols):
            idx = np.flatnonzero(symbols == s)
            order[idx] = rng.permutation(idx)
        out = out[order]
    return out


def rattled_ethanol(seed):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.08, seed=seed)
    return atoms


@pytest.mark.parametrize("seed", range(4))
def test_symmetry_copies_are_recognised(seed):
    a = rattled_ethanol(seed)
    assert is_symmetry_copy(Fingerprint.of(a), Fingerprint.of(copy_of(a, seed)), 1e-6)
    moved = a.copy()
    moved.positions[3] += [0.01, 0, 0]  # a different structure, however slightly
    assert not is_symmetry_copy(Fingerprint.of(a), Fingerprint.of(copy_of(moved, seed)), 1e-3)
    assert not is_symmetry_copy(Fingerprint.of(a), Fingerprint.of(rattled_ethanol(seed + 10)), 1e-3)
    swapped = a.copy()
    swapped.symbols[[0, 2]] = swapped.symbols[[2, 0]]  # unlike atoms exchanged: another molecule
    assert not is_symmetry_copy(Fingerprint.of(a), Fingerprint.of(swapped), 1e-3)


def test_periodic_copies():
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    crystal.rattle(0.1, seed=1)
    crystal.symbols[[0, 3]] = ["Au", "Au"]
    for seed in range(3):
        assert is_symmetry_copy(Fingerprint.of(crystal), Fingerprint.of(copy_of(crystal, seed)), 1e-6)
    other = crystal.copy()
    other.positions[5] += [0.05, 0, 0]
    assert not is_symmetry_copy(Fingerprint.of(crystal), Fingerprint.of(other), 1e-3)
    strained = crystal.copy()
    strained.set_cell(crystal.cell.array * 1.01, scale_atoms=True)
    assert not is_symmetry_copy(Fingerprint.of(crystal), Fingerprint.of(strained), 1e-3)


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    path = export_committee(tmp_path_factory.mktemp("select") / "committee.pt", species=("H", "C", "O"))
    return path, *load(path)


def test_select_skips_copies_of_picked_and_excluded_frames(committee):
    _, module, meta = committee
    originals = [rattled_ethanol(seed) for seed in range(8)]
    scores = committee_scores(originals, module, meta)
    top = int(np.argmax([s["score"] for s in scores]))
    # the trajectory: every original, three copies of the most uncertain one, copies of two excluded ones
    excluded = [rattled_ethanol(100), rattled_ethanol(101)]
    frames = originals + [copy_of(originals[top], s) for s in range(3)] + [copy_of(e, 7) for e in excluded]
    picked, all_scores, skipped = select(frames, module, meta, n=len(frames), exclude=excluded, tolerance=1e-6)
    original = {**{k: k for k in range(8)}, 8: top, 9: top, 10: top}  # a copy may outrank its original by rounding
    assert sorted(original[k] for k in picked) == list(range(8))  # every original once, no copy
    assert original[picked[0]] == top
    assert skipped == {"copies_of_excluded": 2, "copies_of_picked": 3}
    # copies have the same uncertainty: the model is invariant
    for k in range(8, 11):
        assert all_scores[k]["score"] == pytest.approx(all_scores[top]["score"], rel=1e-9)
    # n limits the pick, ranked by the largest per-atom force_std
    picked3, _, _ = select(frames, module, meta, n=3, exclude=excluded, tolerance=1e-6)
    assert [original[k] for k in picked3] == sorted(range(8), key=lambda k: -scores[k]["score"])[:3]


def test_cli(committee, tmp_path, capsys):
    path, module, meta = committee
    frames = [rattled_ethanol(seed) for seed in range(6)]
    for f in frames:  # a trajectory written with model energies and forces: not to become labels
        f.info["energy"] = -1.0
        f.arrays["forces"] = np.ones((len(f), 3))
    trajectory = tmp_path / "md.xyz"
    write(trajectory, frames + [copy_of(frames[2], 3)], format="extxyz")
    write(tmp_path / "train.xyz", [copy_of(frames[0], 1)], format="extxyz")
    out = tmp_path / "picked.xyz"
    assert main(["select", str(trajectory), "--model", str(path), "-n", "10", "-o", str(out),
                 "--exclude", str(tmp_path / "train.xyz")]) == 0
    text = capsys.readouterr()
    assert "picked 5 of 7 frames" in text.out and "skipped 1 symmetry copies of excluded frames and 1" in text.out
    assert "only 5 distinct frames" in text.err
    picked = read(out, index=":")
    assert sorted(a.info["source_index"] for a in picked) == [1, 2, 3, 4, 5] or \
        sorted(a.info["source_index"] for a in picked) == [1, 3, 4, 5, 6]
    scores = [a.info["committee_score"] for a in picked]
    assert scores == sorted(scores, reverse=True)
    for atoms in picked:
        assert "energy" not in atoms.info and "forces" not in atoms.arrays and atoms.calc is None
        assert atoms.arrays["committee_force_std"].shape == (len(atoms),)
        assert atoms.info["committee_score"] == pytest.approx(atoms.arrays["committee_force_std"].max())


def test_bad_input(committee, tmp_path, capsys):
    path, module, meta = committee
    trajectory = tmp_path / "md.xyz"
    write(trajectory, [rattled_ethanol(0)], format="extxyz")
    single = export(EquiForceModel.from_config(dict(species=["H", "C", "O"], r_max=3.0, l_max=1, num_features=4,
                                                    num_layers=1)), tmp_path / "single.pt")
    cases = {
        "select needs a committee": ["--model", str(single), "-n", "1", "-o", str(tmp_path / "p.xyz")],
        "would overwrite an input": ["--model", str(path), "-n", "1", "-o", str(trajectory)],
        "-n must be at least 1": ["--model", str(path), "-n", "0", "-o", str(tmp_path / "p.xyz")],
        "does not exist": ["--model", str(path), "-n", "1", "-o", str(tmp_path / "p.xyz"), "--exclude",
                           str(tmp_path / "missing.xyz")],
    }
    for message, extra in cases.items():
        assert main(["select", str(trajectory)] + extra) == 2
        assert message in capsys.readouterr().err
    write(trajectory, [Atoms("Cu2", positions=[[0, 0, 0], [2, 0, 0]])], format="extxyz")
    assert main(["select", str(trajectory), "--model", str(path), "-n", "1", "-o", str(tmp_path / "p.xyz")]) == 2
    assert "does not know" in capsys.readouterr().err
    assert trajectory.exists()
