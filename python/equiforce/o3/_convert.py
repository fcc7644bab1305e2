"""Convert e3nn modules (weights included) into equiforce modules computing the same function."""
from __future__ import annotations

import torch

from ..algebra import TensorProductDescriptor
from ._tensor_product import TensorProduct


def from_e3nn(module) -> TensorProduct:
    """An ``equiforce.o3.TensorProduct`` equal to the given ``e3nn.o3.TensorProduct`` (or subclass).

    Irreps, instructions with e3nn's final path weights, weight sharing and internal weights are
    copied, so ``from_e3nn(tp)(x, y, w) == tp(x, y, w)``.
    """
    try:
        from e3nn import o3 as e3nn_o3
    except ImportError as exc:  # pragma: no cover
        raise ImportError("from_e3nn needs e3nn installed (pip install e3nn)") from exc
    if not isinstance(module, e3nn_o3.TensorProduct):
        raise TypeError(f"from_e3nn converts e3nn.o3.TensorProduct modules, got {type(module).__name__}")
    unsupported = {i.connection_mode for i in module.instructions} - {"uvw", "uvu", "uvv", "uuw", "uuu"}
    if unsupported:
        raise ValueError(f"from_e3nn: connection modes {sorted(unsupported)} are not supported")
    descriptor = TensorProductDescriptor(
        module.irreps_in1, module.irreps_in2, module.irreps_out,
        [(i.i_in1, i.i_in2, i.i_out, i.connection_mode, i.has_weight, i.path_weight) for i in module.instructions],
        normalized=True)
    ours = TensorProduct(module.irreps_in1, module.irreps_in2, module.irreps_out, None,
                         internal_weights=module.internal_weights, shared_weights=module.shared_weights,
                         _descriptor=descriptor)
    if ours.internal_weights and ours.weight_numel > 0:
        with torch.no_grad():
            ours.weight = torch.nn.Parameter(module.weight.detach().clone())
    return ours
