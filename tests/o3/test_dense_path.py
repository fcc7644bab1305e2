"""The BLAS path of tensor products whose second input is scalars (Linear, the species
self-connection) against the tensor-product kernel: outputs, first and second derivatives."""
import pytest
import torch

from equiforce.o3 import FullyConnectedTensorProduct, Linear
from tests.helpers import assert_close


def _modules(dtype):
    torch.manual_seed(0)
    linear = Linear("5x0e+3x1o+2x2e+4x0e+2x1e", "3x0e+4x1o+2x2e+2x2o", biases=True).to(dtype)
    fctp = FullyConnectedTensorProduct("5x0e+3x1o+2x2e", "3x0e+2x0e", "4x0e+3x1o+2x2e").to(dtype)
    with torch.no_grad():
        linear.bias.normal_()
    return [(linear, [linear.irreps_in.dim]), (fctp, [fctp.irreps_in1.dim, fctp.irreps_in2.dim])]


def _run(module, inputs, dense):
    module.use_dense = dense
    out = module(*inputs)
    g = torch.autograd.grad((out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum(), inputs + [module.weight],
                            create_graph=True)
    gg = torch.autograd.grad(sum((t * t).sum() for t in g), inputs + [module.weight])
    return [out, *g, *gg]


def test_scalar_paths_take_the_dense_path():
    for module, _ in _modules(torch.float64):
        assert module.use_dense


@pytest.mark.parametrize("batch", [(7,), (2, 3)])
def test_dense_equals_kernel(dtype, batch):
    for module, dims in _modules(dtype):
        inputs = [torch.randn(*batch, d, dtype=dtype, requires_grad=True) for d in dims]
        fast, reference = _run(module, inputs, True), _run(module, inputs, False)
        for a, b in zip(fast, reference):
            assert_close(a, b, dtype)


def test_not_scalar_second_input_uses_the_kernel():
    module = FullyConnectedTensorProduct("2x1o", "1x1o", "2x0e")
    assert not module.use_dense
