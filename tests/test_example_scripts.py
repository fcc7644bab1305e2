"""The study scripts run end to end on tiny settings (the repository's ethanol frames instead of
../shared): benchmarks/sample_efficiency.py and examples/active_learning.py (GFN2-xTB labels through
tblite), each writing its JSON and PNG."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lammps.helpers import needs_plugin

ROOT = Path(__file__).resolve().parents[1]
ETHANOL = ROOT / "examples" / "data" / "ethanol" / "train.xyz"


def _run(args, cwd):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_sample_efficiency_script(tmp_path):
    from ase.io import read, write

    write(tmp_path / "test.xyz", read(ETHANOL, index="-20:"), format="extxyz")
    out = tmp_path / "se"
    _run([ROOT / "benchmarks" / "sample_efficiency.py", "--sizes", "5", "10", "--models", "l0", "l1", "baseline",
          "--steps", "6", "--steps-per-frame", "0", "--parameters", "3000", "--train-file", ETHANOL,
          "--test-file", tmp_path / "test.xyz", "--out", out], tmp_path)
    results = json.loads(out.with_suffix(".json").read_text())
    assert set(results["runs"]) == {"l0", "l1", "baseline"}
    assert all(set(runs) == {"5", "10"} for runs in results["runs"].values())
    assert all(abs(m["parameters"] - 3000) < 1500 for m in results["models"].values())
    assert out.with_suffix(".png").stat().st_size > 1000


def test_active_learning_script(tmp_path):
    from ase.io import read, write

    write(tmp_path / "test.xyz", read(ETHANOL, index="-5:"), format="extxyz")
    out = tmp_path / "al"
    _run([ROOT / "examples" / "active_learning.py", "--rounds", "1", "--start", "4", "--per-round", "2",
          "--members", "2", "--steps", "10", "--trajectories", "2", "--md-steps", "10",
          "--start-file", ETHANOL, "--test-file", tmp_path / "test.xyz", "--work", tmp_path / "work", "--out", out],
         tmp_path)
    results = json.loads(out.with_suffix(".json").read_text())
    for strategy in ("uncertainty", "random"):
        rounds = results["strategies"][strategy]
        assert [r["labelled"] for r in rounds] == [4, 6]
        assert all(r["forces_mae_meV_per_A"] > 0 for r in rounds)
    assert "skipped_copies" in results["strategies"]["uncertainty"][0]
    assert out.with_suffix(".png").stat().st_size > 1000


@needs_plugin
def test_demo_front_door(tmp_path):
    """The README's main command on tiny settings: the ASE runs of the shipped models, then the converted
    SevenNet-0 in LAMMPS (2 MPI ranks) and OpenMM, with energy conservation, ms/step and a plot."""
    pytest.importorskip("sevenn", reason="the test environment installs sevenn (scripts/install.sh)")
    pytest.importorskip("openmm", reason="the test environment installs openmm (scripts/install.sh)")
    out = _run([ROOT / "examples" / "demo.py", "--steps", "20", "--pretrained-steps", "7", "--out", tmp_path / "demo"],
               tmp_path)
    assert "ethanol (9 atoms, vacuum)" in out and "Cu fcc (108 atoms, periodic)" in out
    hosts = [line for line in out.splitlines() if line.startswith(("LAMMPS, 2 MPI ranks", "OpenMM, CPU platform"))]
    assert len(hosts) == 2, out
    for line in hosts:
        steps, drift, fluctuation, ms = (float(x) for x in line.split()[-4:])
        assert steps == 7 and abs(drift) < 200 and fluctuation < 5 and ms > 0, line
    assert (tmp_path / "demo" / "pretrained_md.png").stat().st_size > 1000
