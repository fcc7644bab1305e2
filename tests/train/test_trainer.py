"""Training on a tiny EMT-labelled copper set: the loss falls, resume is exact, bad data is named."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write

from equiforce.train import Trainer


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = []
    for n in range(12):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.08, seed=n)
        atoms.set_cell(atoms.cell * (1 + rng.normal(0, 0.01)), scale_atoms=True)
        atoms.calc = EMT()
        atoms.info["energy"] = atoms.get_potential_energy()
        atoms.arrays["forces"] = atoms.get_forces()
        atoms.info["stress"] = atoms.get_stress()
        atoms.calc = None
        frames.append(atoms)
    path = tmp_path_factory.mktemp("data") / "cu.xyz"
    write(path, frames, format="extxyz")
    return path


def _config(data, out, **training):
    return {
        "model": {"species": ["Cu"], "r_max": 3.0, "l_max": 1, "num_features": 4, "num_layers": 1, "num_basis": 4,
                  "radial_hidden": 8},
        "data": {"train_file": str(data), "validation_fraction": 0.25, "stress_key": "stress"},
        "training": {"output_dir": str(out), "batch_size": 3, "max_epochs": 3, "lr": 0.01, "progress": False,
                     "dtype": "float64", "stress_weight": 1.0, **training},
    }


def test_loss_falls_and_outputs_are_written(cu_data, tmp_path):
    trainer = Trainer(_config(cu_data, tmp_path, max_epochs=8))
    before = trainer.evaluate(trainer.train)["forces_mae"]
    metrics = trainer.fit()
    assert metrics["train"]["forces_mae"] < before
    for name in ("last.pt", "best.pt", "log.csv", "metrics.json", "parity.png"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 8 and metrics["parity_plot"].endswith("parity.png")


def test_cosine_schedule_stage_two_and_snapshots(cu_data, tmp_path):
    """Cosine decay to min_lr by stage two's start; stage two switches weights and learning rate;
    snapshot_minutes keeps timed checkpoints (a tiny interval: one per epoch)."""
    trainer = Trainer(_config(cu_data, tmp_path, max_epochs=5, scheduler="cosine", min_lr=0.001, plots=False,
                              stage_two={"epoch": 3, "energy_weight": 50.0, "lr": 0.002},
                              snapshot_minutes=1e-6))
    assert trainer._weights()["energy_weight"] == 1.0
    trainer.fit()
    assert trainer._weights()["energy_weight"] == 50.0 and trainer._weights()["forces_weight"] == 100.0
    lrs = [float(line.split(",")[2]) for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert lrs[0] < 0.01 and lrs[2] == pytest.approx(0.001) and lrs[3:] == [pytest.approx(0.002)] * 2
    assert len(list(tmp_path.glob("snapshot_*min.pt"))) >= 1
    with pytest.raises(ValueError, match="stage_two"):
        Trainer(_config(cu_data, tmp_path / "x", stage_two={"energy_weight": 1.0}))
    with pytest.raises(ValueError, match="scheduler"):
        Trainer(_config(cu_data, tmp_path / "y", scheduler="step"))


def test_progress_bar_draws_live_on_a_terminal():
    import io

    from equiforce.train.report import ProgressBar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    live, log = Tty(), io.StringIO()
    for stream in (live, log):
        bar = ProgressBar(3, "[train] epoch 1", stream=stream)
        for loss in (3.0, 2.0, 1.0):
            bar.last_draw = 0.0
            bar.update(loss)
        bar.close("loss 2")
    assert "\r[train] epoch 1 [" in live.getvalue() and "3/3 loss 2" in live.getvalue()
    assert log.getvalue() == "[train] epoch 1 loss 2\n"  # logs get the closing line only


def test_resume_is_exact(cu_data, tmp_path):
    straight = Trainer(_config(cu_data, tmp_path / "a", max_epochs=2))
    straight.fit()
    first = Trainer(_config(cu_data, tmp_path / "b", max_epochs=1))
    first.fit()
    resumed = Trainer(_config(cu_data, tmp_path / "b", max_epochs=2))
    assert resumed.epoch == 1
    resumed.fit()
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_cli_train(cu_data, tmp_path):
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_config(cu_data, tmp_path / "run", max_epochs=1)))
    result = subprocess.run([sys.executable, "-m", "equiforce.cli", "train", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("change, match", [
    (lambda c: c["model"].update(colour=1), "unknown model config keys"),
    (lambda c: c["training"].update(learning_rate=1), "unknown keys in 'training'"),
    (lambda c: c["data"].update(forces_key="F"), "no 'F' found"),
    (lambda c: c["model"].update(species=["Ag"]), r"elements \['Cu'\]"),
    (lambda c: c["data"].update(train_file="/nonexistent.xyz"), "does not exist"),
])
def test_bad_configs_and_data_are_explained(cu_data, tmp_path, change, match):
    config = _config(cu_data, tmp_path)
    change(config)
    with pytest.raises((ValueError, KeyError, FileNotFoundError), match=match):
        Trainer(config)


def test_nan_and_empty_data(tmp_path):
    bad = tmp_path / "nan.xyz"
    bad.write_text('1\nProperties=species:S:1:pos:R:3:forces:R:3 energy=nan pbc="F F F"\nCu 0 0 0 0 0 0\n')
    config = _config(bad, tmp_path / "o")
    config["data"]["stress_key"] = None
    with pytest.raises(ValueError, match="NaN"):
        Trainer(config)
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    with pytest.raises(ValueError):
        Trainer(_config(empty, tmp_path / "p"))


def test_deploy_and_eval_a_trained_checkpoint(cu_data, tmp_path):
    trainer = Trainer(_config(cu_data, tmp_path / "run", max_epochs=2))
    trainer.fit()
    model = tmp_path / "cu.pt"
    cli = [sys.executable, "-m", "equiforce.cli"]
    deployed = subprocess.run(cli + ["deploy", str(tmp_path / "run" / "best.pt"), "-o", str(model)],
                              capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stderr
    assert "species=Cu" in deployed.stdout and "ghost_cutoff=3.0" in deployed.stdout
    evaluated = subprocess.run(cli + ["eval", str(model), str(cu_data)], capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert metrics["structures"] == 12 and metrics["forces_mae"] > 0
    # the exported EMA weights give the trainer's own figures on the same frames
    with trainer._with_ema():
        ours = trainer.evaluate(trainer.train + trainer.val)
    assert abs(ours["forces_mae"] - metrics["forces_mae"]) < 1e-8
    not_a_checkpoint = subprocess.run(cli + ["deploy", str(cu_data), "-o", str(tmp_path / "x.pt")],
                                      capture_output=True, text=True)
    assert not_a_checkpoint.returncode == 2 and "not an equiforce training checkpoint" in not_a_checkpoint.stderr
    wrong_name = subprocess.run(cli + ["deploy", str(tmp_path / "run" / "best.pt"), "--format", "aoti", "-o",
                                       str(tmp_path / "cu.pt")], capture_output=True, text=True)
    assert wrong_name.returncode == 2 and "*.pt2" in wrong_name.stderr
    checked = subprocess.run(cli + ["check", str(model)], capture_output=True, text=True)
    assert "forces" in checked.stdout and checked.returncode in (0, 1)  # a 2-epoch model: the table is printed


def test_stress_labels_are_optional_per_frame():
    from ase import Atoms

    from equiforce.data import from_atoms

    slab = Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]], cell=[5, 5, 20], pbc=True)
    slab.info["energy"] = -1.0
    slab.arrays["forces"] = np.zeros((2, 3))
    assert from_atoms(slab, stress_key="stress").stress is None
    slab.info["stress"] = np.arange(6.0)
    assert from_atoms(slab, stress_key="stress").stress[1, 2] == 3.0  # Voigt yz
