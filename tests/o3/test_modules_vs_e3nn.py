"""equiforce.o3 modules are drop-ins for e3nn's: same arguments, weight layout and outputs,
first and second derivatives, float32 and float64."""
import pytest
import torch
from e3nn import o3 as e3nn_o3

from equiforce import o3
from tests.helpers import assert_close
from tests.ops.tp_cases import ALL, CASES, nequip_case


def _args(name):
    return nequip_case() if name == "nequip" else CASES[name]


def _values_and_derivatives(module, inputs, dtype, go, vs):
    ins = [t.to(dtype).requires_grad_() for t in inputs]
    out = module(*ins)
    grads = torch.autograd.grad(out, ins, go.to(dtype), create_graph=True)
    s = sum((g * v.to(dtype)).sum() for g, v in zip(grads, vs) if g.requires_grad)
    second = torch.autograd.grad(s, ins, allow_unused=True) if s.requires_grad else [None] * len(ins)
    second = [torch.zeros_like(i) if h is None else h for h, i in zip(second, ins)]
    return out.detach(), [g.detach() for g in grads], second


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("irrep_normalization, path_normalization", [("component", "element"), ("norm", "path"),
                                                                     ("none", "none")])
def test_tensor_product_matches_e3nn(name, irrep_normalization, path_normalization, dtype):
    args = _args(name)
    kw = dict(irrep_normalization=irrep_normalization, path_normalization=path_normalization, shared_weights=False)
    ref = e3nn_o3.TensorProduct(*args, **kw).double()
    ours = o3.TensorProduct(*args, **kw)
    assert ours.weight_numel == ref.weight_numel
    assert repr(ours) == repr(ref)
    batch = 6
    inputs = [torch.randn(batch, ref.irreps_in1.dim, dtype=torch.float64),
              torch.randn(batch, ref.irreps_in2.dim, dtype=torch.float64),
              torch.randn(batch, ref.weight_numel, dtype=torch.float64)]
    go = torch.randn(batch, ref.irreps_out.dim, dtype=torch.float64)
    vs = [torch.randn_like(t) for t in inputs]
    a = _values_and_derivatives(ours.to(dtype), inputs, dtype, go, vs)
    b = _values_and_derivatives(ref, inputs, torch.float64, go, vs)
    assert_close(a[0], b[0], dtype, "out")
    for x, y in zip(a[1] + a[2], b[1] + b[2]):
        assert_close(x, y, dtype, "derivative")


def test_internal_shared_weights_copied_from_e3nn_give_the_same_function(dtype):
    args = CASES["mixed"]
    ref = e3nn_o3.TensorProduct(*args).double()
    ours = o3.TensorProduct(*args).double()
    assert ours.internal_weights and ours.shared_weights
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    x1 = torch.randn(2, 3, ref.irreps_in1.dim, dtype=torch.float64)  # leading batch dims broadcast
    x2 = torch.randn(3, ref.irreps_in2.dim, dtype=torch.float64)
    assert_close(ours.to(dtype)(x1.to(dtype), x2.to(dtype)), ref(x1, x2), dtype, "shared weights")


def test_fully_connected_and_from_e3nn(dtype):
    irreps = ("4x0e+3x1o+2x2e", "0e+1o+2e", "3x0e+2x1o+2x1e+2x2e")
    ref = e3nn_o3.FullyConnectedTensorProduct(*irreps).double()
    ours = o3.FullyConnectedTensorProduct(*irreps).double()
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    converted = o3.from_e3nn(ref).double()
    x1 = torch.randn(5, ref.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(5, ref.irreps_in2.dim, dtype=torch.float64)
    assert_close(ours.to(dtype)(x1.to(dtype), x2.to(dtype)), ref(x1, x2), dtype, "FullyConnectedTensorProduct")
    assert_close(converted.to(dtype)(x1.to(dtype), x2.to(dtype)), ref(x1, x2), dtype, "from_e3nn")


@pytest.mark.parametrize("name", ["uvu", "mixed"])
def test_from_e3nn_per_sample_weights(name):
    ref = e3nn_o3.TensorProduct(*CASES[name], shared_weights=False).double()
    ours = o3.from_e3nn(ref)
    x1 = torch.randn(4, ref.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(4, ref.irreps_in2.dim, dtype=torch.float64)
    w = torch.randn(4, ref.weight_numel, dtype=torch.float64)
    assert_close(ours(x1, x2, w), ref(x1, x2, w), torch.float64, "from_e3nn per-sample")


def test_from_e3nn_rejects_other_modules():
    with pytest.raises(TypeError):
        o3.from_e3nn(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("biases", [False, True])
def test_linear_matches_e3nn(biases, dtype):
    irreps_in, irreps_out = "5x0e+3x1o+2x2e+1x1e", "4x0e+2x1o+3x2e+1x0o"
    ref = e3nn_o3.Linear(irreps_in, irreps_out, biases=biases).double()
    ours = o3.Linear(irreps_in, irreps_out, biases=biases).double()
    assert ours.weight_numel == ref.weight_numel
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
        if biases:
            ref.bias.normal_()
            ours.bias.copy_(ref.bias)
    x = torch.randn(7, ref.irreps_in.dim, dtype=torch.float64)
    assert_close(ours.to(dtype)(x.to(dtype)), ref(x), dtype, "Linear")


@pytest.mark.parametrize("l", [2, [0, 1, 2], [1, 3], "0e+1o+2e", "1o+2e+3o", "0e+1e+2e", [4, 0]])
@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
def test_spherical_harmonics_api_matches_e3nn(l, normalization, dtype):
    x = torch.randn(3, 8, 3, dtype=torch.float64)
    ref = e3nn_o3.spherical_harmonics(l, x, True, normalization)
    assert_close(o3.spherical_harmonics(l, x.to(dtype), True, normalization), ref, dtype, f"sh {l}")
    module = o3.SphericalHarmonics(l, normalize=False, normalization=normalization)
    assert module.irreps_out == e3nn_o3.SphericalHarmonics(l, False, normalization).irreps_out
    assert_close(module(x.to(dtype)), e3nn_o3.spherical_harmonics(l, x, False, normalization), dtype, "module")


def test_spherical_harmonics_default_normalization_is_integral():
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_close(o3.spherical_harmonics(2, x, True), e3nn_o3.spherical_harmonics(2, x, True), torch.float64, "default")


@pytest.mark.parametrize("call, error", [
    (lambda: o3.spherical_harmonics("1e+2o", torch.randn(2, 3), True), ValueError),
    (lambda: o3.spherical_harmonics("1x", torch.randn(2, 3), True), ValueError),
    (lambda: o3.spherical_harmonics(2, torch.randn(2, 4), True), ValueError),
    (lambda: o3.spherical_harmonics(13, torch.randn(2, 3), True), ValueError),
    (lambda: o3.TensorProduct("2x0e+", "0e", "2x0e", [(0, 0, 0, "uvu", True)]), ValueError),
    (lambda: o3.TensorProduct("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)])(torch.randn(3, 3), torch.randn(3, 1)),
     ValueError),
    (lambda: o3.TensorProduct("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)], shared_weights=False)(
        torch.randn(3, 2), torch.randn(3, 1)), RuntimeError),
    (lambda: o3.TensorProduct("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)], shared_weights=False)(
        torch.randn(3, 2), torch.randn(3, 1), torch.randn(3, 3)), ValueError),
    (lambda: o3.TensorProduct("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)])(torch.randn(3, 2), torch.randn(2, 1)),
     ValueError),
    (lambda: o3.Linear("2x0e", "2x1o", instructions=[(0, 0)]), ValueError),
])
def test_bad_input_raises_clear_errors(call, error):
    with pytest.raises(error):
        call()


def test_mixed_devices_are_refused():
    tp = o3.TensorProduct("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)], shared_weights=False)
    with pytest.raises(ValueError, match="one device"):
        tp(torch.randn(3, 2), torch.randn(3, 1, device="meta"), torch.randn(3, 2))
    conv = o3.TensorProductConv("2x0e", "0e", "2x0e", [(0, 0, 0, "uvu", True)])
    with pytest.raises(ValueError, match="one device"):
        conv(torch.randn(3, 2), torch.randn(2, 1), torch.randn(2, 2), torch.tensor([0, 1]),
             torch.tensor([1, 2], device="meta"))
