"""The ops decode and validate a tensor-product descriptor once and keep it (csrc/ops/descriptor_cache.h),
keyed by the tensors' identity and version counter. What must never happen: a stale entry. Writes
through torch are seen (the next call validates the new contents), a freed descriptor's memory is
never taken for another's, more descriptors than the cache holds stay correct, and inference tensors
(no version counter) are decoded every call."""
import pytest
import torch

from equiforce import ops
from equiforce.ops import reference
from tests.helpers import assert_close
from tests.ops.tp_cases import descriptor


def tensors(d):
    ints, floats = d.to_arrays()
    return torch.from_numpy(ints.copy()), torch.from_numpy(floats.copy())


def inputs(d, batch=5):
    x1 = torch.randn(batch, d.irreps_in1.dim, dtype=torch.float64)
    x2 = torch.randn(batch, d.irreps_in2.dim, dtype=torch.float64)
    w = torch.randn(d.weight_numel, dtype=torch.float64)
    return x1, x2, w


def test_an_in_place_write_is_seen_on_the_next_call():
    d = descriptor("uvu")
    ints, floats = tensors(d)
    x1, x2, w = inputs(d)
    first = ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
    floats.mul_(2.0)  # path weights and coefficients doubled: the product scales by 4
    second = ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
    assert_close(second, 4.0 * first, torch.float64)


def test_an_in_place_corruption_is_refused_not_served_from_the_cache():
    d = descriptor("uvw")
    ints, floats = tensors(d)
    x1, x2, w = inputs(d)
    ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
    floats.resize_(floats.numel() - 1)  # the float table no longer matches the header
    with pytest.raises(ValueError, match="TensorProductDescriptor"):
        ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)


def test_many_descriptors_freed_and_remade_stay_correct():
    """More descriptor tensors than the cache holds (256), each freed after use so its memory can be reused:
    every call agrees with the plain-torch reference of its own descriptor."""
    built = [(d, d.to_arrays()) for d in map(descriptor, ["uvw", "uvu", "uvv", "uuw", "uuu", "mixed", "nequip"])]
    for k in range(270):
        d, (int_array, float_array) = built[k % len(built)]
        ints, floats = torch.from_numpy(int_array.copy()), torch.from_numpy(float_array.copy())  # fresh tensors
        if k % 3 == 0:  # same layout, other numbers (path weights and coefficients: the product scales by s^2)
            floats = floats * (1.0 + 0.01 * k)
        x1, x2, w = inputs(d, batch=2)
        out = ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
        expected = reference.tensor_product(x1, x2, w, d) * ((1.0 + 0.01 * k) ** 2 if k % 3 == 0 else 1.0)
        assert_close(out, expected, torch.float64)
        del ints, floats  # refcounting frees them now, unless the cache holds them


def test_inference_tensors_are_decoded_every_call():
    d = descriptor("mixed")
    with torch.inference_mode():
        ints, floats = tensors(d)
        x1, x2, w = inputs(d)
        first = ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
        second = ops.tensor_product(x1, x2, w, ints, floats * 3.0, d.irreps_out.dim)
    assert_close(second, 9.0 * first, torch.float64)


def test_float32_and_float64_of_one_descriptor_are_kept_apart():
    d = descriptor("uvu")
    ints, floats = tensors(d)
    x1, x2, w = inputs(d)
    out64 = ops.tensor_product(x1, x2, w, ints, floats, d.irreps_out.dim)
    out32 = ops.tensor_product(x1.float(), x2.float(), w.float(), ints, floats, d.irreps_out.dim)
    assert out32.dtype == torch.float32
    assert_close(out32.double(), out64, torch.float32)
