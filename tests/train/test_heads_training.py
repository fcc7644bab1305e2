"""Training, exporting and using models with dipole, polarizability and long-range heads, on water
molecules with analytic labels: fixed point charges (dipole), a bond-polarizability model, harmonic
bonds (energy, forces)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write

from equiforce.train import Trainer

CHARGES = {"O": -0.8, "H": 0.4}


def labelled_water(rng):
    half = np.radians(104.5 + rng.uniform(-10, 10)) / 2
    bonds = 0.96 + rng.uniform(-0.08, 0.08, 2)
    pos = np.array([[0, 0, 0], [bonds[0] * np.cos(half), bonds[0] * np.sin(half), 0],
                    [bonds[1] * np.cos(half), -bonds[1] * np.sin(half), 0]])
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    pos = pos @ q.T + rng.normal(size=3)
    p = torch.tensor(pos, requires_grad=True)
    lengths = torch.linalg.vector_norm(p[1:] - p[0], dim=1)
    energy = (10.0 * (lengths - 0.96) ** 2).sum() - 14.0
    (grad,) = torch.autograd.grad(energy, p)
    atoms = Atoms("OH2", positions=pos)
    atoms.info["energy"] = float(energy)
    atoms.arrays["forces"] = -grad.numpy()
    atoms.info["mu"] = sum(CHARGES[s] * r for s, r in zip(atoms.get_chemical_symbols(), pos))
    atoms.arrays["q"] = np.array([CHARGES[s] for s in atoms.get_chemical_symbols()])
    alpha = np.zeros((3, 3))
    for h in (1, 2):  # bond polarizabilities: isotropic + along the bond
        u = (pos[h] - pos[0]) / np.linalg.norm(pos[h] - pos[0])
        alpha += 0.4 * np.eye(3) + 0.6 * np.outer(u, u)
    atoms.info["alpha"] = alpha.ravel()
    return atoms


@pytest.fixture(scope="module")
def water_data(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("water") / "water.xyz"
    write(path, [labelled_water(rng) for _ in range(30)], format="extxyz")
    return path


def config(data, out, **model):
    return {
        "model": {"species": ["H", "O"], "r_max": 3.0, "l_max": 2, "num_features": 8, "num_layers": 2,
                  "num_basis": 4, "radial_hidden": 16, "dipole": True, "polarizability": True, **model},
        "data": {"train_file": str(data), "validation_fraction": 0.2, "dipole_key": "mu",
                 "polarizability_key": "alpha"},
        "training": {"output_dir": str(out), "batch_size": 4, "max_epochs": 10, "lr": 0.02, "progress": False,
                     "dtype": "float64", "dipole_weight": 100.0, "polarizability_weight": 100.0, "plots": False,
                     "ema_decay": 0.8},
    }


@pytest.mark.parametrize("long_range", ["none", "ewald"])
def test_dipole_and_polarizability_heads_learn_export_and_run_in_ase(water_data, tmp_path, long_range):
    trainer = Trainer(config(water_data, tmp_path / "run", long_range=long_range))
    before = trainer.evaluate(trainer.train)
    metrics = trainer.fit()
    assert metrics["train"]["dipole_mae"] < 0.5 * before["dipole_mae"]
    assert metrics["train"]["polarizability_mae"] < 0.5 * before["polarizability_mae"]
    assert {"dipole_mae", "polarizability_mae"} <= set(json.loads((tmp_path / "run" / "metrics.json").read_text())
                                                       ["validation"])

    cli = [sys.executable, "-m", "equiforce.cli"]
    model = tmp_path / "water.pt"
    deployed = subprocess.run(cli + ["deploy", str(tmp_path / "run" / "best.pt"), "-o", str(model)],
                              capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stderr
    assert "dipole polarizability" in deployed.stdout and f"long_range={long_range}" in deployed.stdout
    checked = subprocess.run(cli + ["check", str(model)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "dipole rotates as R v" in checked.stdout and "polarizability rotates as R T R^T" in checked.stdout
    scored = subprocess.run(cli + ["eval", str(model), str(water_data), "--dipole-key", "mu",
                                   "--polarizability-key", "alpha"], capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr
    scores = json.loads(scored.stdout)
    assert scores["structures"] == 30 and 0 < scores["dipole_mae"] < before["dipole_mae"]
    assert 0 < scores["polarizability_mae"] < before["polarizability_mae"]

    # the ASE calculator on the exported file gives the checkpoint's predictions (EMA weights)
    from equiforce.data import collate
    from equiforce.model import predict
    from equiforce.deploy.export import model_from_checkpoint
    from equiforce.hosts.ase import EquiForceCalculator

    atoms = labelled_water(np.random.default_rng(99))
    atoms.calc = EquiForceCalculator(model)
    graph = trainer.val[0]
    atoms.positions = graph.positions.numpy()
    ref = predict(model_from_checkpoint(tmp_path / "run" / "best.pt"), collate([graph]), forces=True)
    np.testing.assert_allclose(atoms.get_dipole_moment(), ref["dipole"][0].detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(atoms.calc.get_property("polarizability", atoms),
                               ref["polarizability"][0].detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"].detach().numpy(), atol=1e-10)
    if long_range == "ewald":
        charges = atoms.get_charges()
        assert abs(charges.sum()) < 1e-12
        np.testing.assert_allclose(charges, ref["charges"].detach().numpy(), atol=1e-10)


def test_charges_fit_reference_charges(water_data, tmp_path):
    """data.charges_key: a long-range model's charges learn reference atomic charges."""
    cfg = config(water_data, tmp_path / "run", long_range="ewald", dipole=False, polarizability=False)
    cfg["data"].update(charges_key="q", dipole_key=None, polarizability_key=None)
    cfg["training"].update(charges_weight=100.0, max_epochs=6)
    trainer = Trainer(cfg)
    before = trainer.evaluate(trainer.train)["charges_mae"]
    after = trainer.fit()["train"]["charges_mae"]
    assert after < 0.5 * before
    local = config(water_data, tmp_path / "local", dipole=False, polarizability=False)
    local["data"].update(charges_key="q", dipole_key=None, polarizability_key=None)
    with pytest.raises(ValueError, match="charges_key needs a model with charges"):
        Trainer(local)


def test_missing_and_malformed_labels_are_named(water_data, tmp_path):
    bad = config(water_data, tmp_path / "a")
    bad["data"]["dipole_key"] = "nope"
    with pytest.raises(KeyError, match="no 'nope' found"):
        Trainer(bad)
    frames = [labelled_water(np.random.default_rng(1))]
    frames[0].info["mu"] = np.arange(4.0)
    write(tmp_path / "bad.xyz", frames, format="extxyz")
    with pytest.raises(ValueError, match="must have 3 components"):
        Trainer(config(tmp_path / "bad.xyz", tmp_path / "b"))


def test_aoti_export_refuses_models_with_heads(tmp_path):
    from equiforce.deploy import export
    from equiforce.model import EquiForceModel

    model = EquiForceModel(["H", "O"], l_max=1, num_features=4, num_layers=1, dipole=True)
    with pytest.raises(ValueError, match="export models with long_range, dipole or polarizability heads"):
        export(model, tmp_path / "m.pt2", format="aoti")
