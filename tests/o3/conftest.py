import pytest



@pytest.fixture(autouse=True)
def _e3nn_references_in_float64(e3nn_in_float64):
    yield
