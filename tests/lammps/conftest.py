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
