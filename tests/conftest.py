import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def e3nn_in_float64():
    """e3nn builds its Clebsch-Gordan buffers, generators and angles in the default dtype: make its
    references exact by building them in float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
