"""`equiforce eval` scores whatever labels a file has: energy-only scans (with the error of the curve
relative to its own minimum), `--forces-key none`, files mixing frames with and without forces."""
import json
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import write

from equiforce.cli import main
from equiforce.hosts.ase import EquiForceCalculator

MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "ethanol.pt"


def _scan(n=7):
    """A C-O bond stretch of ethanol, labelled with the model's own energies plus 0.25 eV and a
    per-frame wobble: the energy errors are known exactly. Returns (frames, wobble, model energies)."""
    frames, wobble, predicted = [], 0.01 * np.sin(np.arange(n)), []
    for k in range(n):
        atoms = molecule("CH3CH2OH")
        atoms.set_distance(1, 2, 1.35 + 0.05 * k, fix=0)
        atoms.calc = EquiForceCalculator(MODEL)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = None
        predicted.append(energy)
        atoms.info["energy"] = energy + 0.25 + wobble[k]
        atoms.arrays["forces"] = forces
        frames.append(atoms)
    return frames, wobble, np.array(predicted)


def _eval(capsys, *args):
    assert main(["eval", str(MODEL), *map(str, args)]) == 0
    return json.loads(capsys.readouterr().out)


def test_energy_only_scan(tmp_path, capsys):
    frames, wobble, pred = _scan()
    for atoms in frames:
        del atoms.arrays["forces"]
    write(tmp_path / "scan.xyz", frames, format="extxyz")
    out = _eval(capsys, tmp_path / "scan.xyz")
    assert out["structures"] == 7 and out["energy_labelled"] == 7 and "forces_mae" not in out
    assert out["energy_mae"] == pytest.approx(np.abs(0.25 + wobble).mean(), abs=2e-4)  # a float32 model
    # each curve minus its own minimum: pred - min(pred) against ref - min(ref); the 0.25 eV offset drops out
    ref = pred + 0.25 + wobble
    assert out["relative_energy_mae"] == pytest.approx(np.abs((pred - pred.min()) - (ref - ref.min())).mean(),
                                                        abs=2e-4)


def test_forces_key_none_and_mixed_frames(tmp_path, capsys):
    frames, _, _ = _scan(4)
    write(tmp_path / "full.xyz", frames, format="extxyz")
    out = _eval(capsys, tmp_path / "full.xyz", "--forces-key", "none")
    assert "forces_mae" not in out and out["energy_labelled"] == 4
    out = _eval(capsys, tmp_path / "full.xyz", "--forces-key", "forces")
    assert out["forces_labelled"] == 4 and out["forces_mae"] < 1e-5  # the model's own forces
    del frames[1].arrays["forces"]
    write(tmp_path / "mixed.xyz", frames, format="extxyz")
    out = _eval(capsys, tmp_path / "mixed.xyz")
    assert out["structures"] == 4 and out["forces_labelled"] == 3 and out["energy_labelled"] == 4


def test_no_labels_at_all_is_an_error(tmp_path, capsys):
    write(tmp_path / "bare.xyz", [molecule("CH3CH2OH")], format="extxyz")
    assert main(["eval", str(MODEL), str(tmp_path / "bare.xyz")]) == 2
    assert "none of its 1 frames has any of the labels ['energy', 'forces']" in capsys.readouterr().err
