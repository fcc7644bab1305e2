"""Every test here starts from torch's global generator seeded by its own name, so a failure
reproduces alone, in any order, in any process."""
import pytest
import torch

from tests.ops.seeding import stable_seed


@pytest.fixture(autouse=True)
def _seed_torch_by_test_name(request):
    torch.manual_seed(stable_seed(request.node.nodeid))
