"""Checkpoints are plain data: a file holding a pickled object that would run code is refused before
anything in it runs, by `equiforce deploy` and by resuming training; real checkpoints load."""
import os
import subprocess
import sys

import pytest
import torch

from equiforce.model import EquiForceModel
from equiforce.train.checkpoint import load_checkpoint, save_checkpoint


class _RunsCommand:
    """Unpickling this runs a shell command (the attack a weights_only=False loader falls for)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _malicious(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    torch.save({"format": "equiforce-checkpoint", "model_config": {"species": ["H"]}, "x": _RunsCommand(marker)}, path)
    return path, marker


def test_deploy_refuses_a_pickle_that_runs_code(tmp_path):
    path, marker = _malicious(tmp_path)
    run = subprocess.run([sys.executable, "-m", "equiforce.cli", "deploy", str(path), "-o", str(tmp_path / "m.pt")],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "holds Python objects other than tensors" in run.stderr and "posix.system" in run.stderr
    assert not marker.exists(), "the pickled command ran"
    assert not (tmp_path / "m.pt").exists()


def test_resume_refuses_a_pickle_that_runs_code(tmp_path):
    path, marker = _malicious(tmp_path)
    with pytest.raises(ValueError, match="without unpickling objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_plain_checkpoint_round_trips_and_deploys(tmp_path):
    model = EquiForceModel.from_config({"species": ["H", "O"], "num_features": 4, "num_layers": 1, "l_max": 1})
    state = {"format": "equiforce-checkpoint", "version": 1, "model_config": {"species": ["H", "O"], "num_features": 4,
             "num_layers": 1, "l_max": 1}, "model": model.state_dict(), "ema": model.state_dict(),
             "best": float("inf"), "torch_rng": torch.get_rng_state(), "nested": [(1, "a"), {"b": None}]}
    path = save_checkpoint(state, tmp_path / "ckpt.pt")
    loaded = load_checkpoint(path)
    assert loaded["nested"] == [(1, "a"), {"b": None}]
    assert all(torch.equal(loaded["model"][k], v) for k, v in model.state_dict().items())
    from equiforce.deploy import export, load

    export(path, tmp_path / "m.pt")
    assert load(tmp_path / "m.pt")[1]["species"] == "H O"


def test_saving_refuses_objects_and_foreign_files_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"state\['x'\] is a _RunsCommand"):
        save_checkpoint({"format": "equiforce-checkpoint", "x": _RunsCommand(tmp_path / "m")}, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not an equiforce training checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an equiforce training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
