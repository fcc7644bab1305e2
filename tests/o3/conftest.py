import pytest
import torch


@pytest.fixture(autouse=True)
def build_e3nn_references_in_float64():
    # e3nn computes its Clebsch-Gordan buffers in the default dtype when a module is built
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
