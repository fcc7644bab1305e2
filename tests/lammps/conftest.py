import pytest
import torch

from equiforce.deploy import export
from equiforce.model import EquiForceModel


@pytest.fixture(scope="session")
def lammps_model():
    """A small float64 model of H, C, O and Cu (untrained: smooth, non-trivial forces)."""
    torch.manual_seed(11)
    m = EquiForceModel.from_config(dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=2, num_features=4,
                                        num_layers=2, avg_num_neighbors=12.0))
    with torch.no_grad():
        m.energy_shift.copy_(torch.tensor([-1.0, -2.0, -3.0, -4.0]))
    return m


@pytest.fixture(scope="session")
def model_file(lammps_model, tmp_path_factory):
    return export(lammps_model, tmp_path_factory.mktemp("lammps_model") / "model.pt")


@pytest.fixture(scope="session")
def plugin_parts_driver(tmp_path_factory):
    """tests/lammps/plugin_parts_driver.cpp with the plugin's LAMMPS-free sources (graph builder, version
    checks), compiled with the machine's C++ compiler: no LAMMPS, no torch."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    exe = tmp_path_factory.mktemp("plugin_parts") / "plugin_parts_driver"
    command = [os.environ.get("CXX", "g++"), "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
               f"-I{root / 'lammps_plugin'}", str(Path(__file__).with_name("plugin_parts_driver.cpp")),
               str(root / "lammps_plugin" / "graph_builder.cpp"), "-o", str(exe)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return exe
