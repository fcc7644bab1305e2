"""`equiforce check`: passes on a real export, fails (exit 1) when physics is broken."""
import subprocess
import sys

import torch

from equiforce.deploy import export, load
from equiforce.deploy.check import run_checks
from equiforce.model import EquiForceModel


def _exported(tmp_path):
    torch.manual_seed(0)
    model = EquiForceModel.from_config(dict(species=["C", "H", "O"], r_max=3.0, l_max=2, num_features=4,
                                            num_layers=2, dtype="float32"))
    return export(model, tmp_path / "model.pt")


def test_check_cli_passes_on_an_exported_model(tmp_path):
    result = subprocess.run([sys.executable, "-m", "equiforce.cli", "check", str(_exported(tmp_path))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASS") == 9 and "all checks passed" in result.stdout


class BrokenForces(torch.nn.Module):
    """Wraps a deployed model but returns forces that are not -dE/dr and not equivariant."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def compute(self, positions, species, cell, pbc):
        e, a, f, v, w = self.inner.compute(positions, species, cell, pbc)
        return e, a, f + positions.to(f.dtype) * 0.1, v, w


def test_check_catches_broken_forces(tmp_path):
    module, meta = load(_exported(tmp_path))
    results = {r.name: r.passed for r in run_checks(BrokenForces(module), meta)}
    assert not results["forces = -dE/dr (finite differences)"]
    assert not results["translation invariance"]
    assert results["E invariant under O(3) (with reflections)"]


def test_check_cli_refuses_foreign_files(tmp_path):
    foreign = tmp_path / "x.pt"
    torch.jit.script(torch.nn.Linear(1, 1)).save(str(foreign))
    result = subprocess.run([sys.executable, "-m", "equiforce.cli", "check", str(foreign)], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "not an equiforce model" in result.stderr
