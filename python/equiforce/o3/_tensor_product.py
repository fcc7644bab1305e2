"""e3nn-compatible tensor-product modules on equiforce's compiled op."""

import math
from typing import List, Optional

import torch

from .. import ops  # noqa: F401  (loads the operator library)
from ..algebra import Irreps, TensorProductDescriptor


def _broadcast(a: List[int], b: List[int]) -> List[int]:
    """Broadcast two batch shapes (TorchScript-friendly torch.broadcast_shapes)."""
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + a
    b = [1] * (n - len(b)) + b
    out: List[int] = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise ValueError("tensor product inputs have batch shapes that do not broadcast")
        out.append(y if x == 1 else x)
    return out


class TensorProduct(torch.nn.Module):
    """Drop-in for ``e3nn.o3.TensorProduct``: same arguments, ``weight_numel``, weight layout and outputs.

    ``forward(x1[..., d1], x2[..., d2], weight=None) -> out[..., d_out]``; weights are shared
    ``[weight_numel]`` or per sample ``[..., weight_numel]`` (``shared_weights=False``). The math is
    ``equiforce::tensor_product``; the descriptor lives on the module as plain CPU tensors.
    """

    weight_numel: int
    shared_weights: bool
    internal_weights: bool
    _dim_in1: int
    _dim_in2: int
    _dim_out: int

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions, in1_var=None, in2_var=None, out_var=None,
                 irrep_normalization: Optional[str] = None, path_normalization: Optional[str] = None,
                 internal_weights: Optional[bool] = None, shared_weights: Optional[bool] = None,
                 _descriptor: Optional[TensorProductDescriptor] = None) -> None:
        super().__init__()
        self.descriptor = _descriptor or TensorProductDescriptor(
            irreps_in1, irreps_in2, irreps_out, instructions, in1_var=in1_var, in2_var=in2_var, out_var=out_var,
            irrep_normalization=irrep_normalization, path_normalization=path_normalization)
        d = self.descriptor
        self.irreps_in1, self.irreps_in2, self.irreps_out = d.irreps_in1, d.irreps_in2, d.irreps_out
        self.instructions = d.instructions
        self.weight_numel = d.weight_numel
        # e3nn's defaults
        if shared_weights is False and internal_weights is None:
            internal_weights = False
        if shared_weights is None:
            shared_weights = True
        if internal_weights is None:
            internal_weights = shared_weights and any(i.has_weight for i in d.instructions)
        if internal_weights and not shared_weights:
            raise ValueError("internal_weights=True requires shared_weights=True (as in e3nn)")
        self.shared_weights = bool(shared_weights)
        self.internal_weights = bool(internal_weights)
        if self.internal_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_buffer("weight", torch.Tensor(), persistent=False)
        ints, floats = d.to_arrays()
        # Plain attributes, not buffers: module.to(dtype/device) must leave them as int64/float64 CPU tables.
        self.descriptor_ints = torch.from_numpy(ints)
        self.descriptor_floats = torch.from_numpy(floats)
        self._dim_in1, self._dim_in2, self._dim_out = d.irreps_in1.dim, d.irreps_in2.dim, d.irreps_out.dim

    def __repr__(self) -> str:
        npath = sum(math.prod(i.path_shape) for i in self.instructions)
        return (f"{self.__class__.__name__}({self.irreps_in1.simplify()} x {self.irreps_in2.simplify()} -> "
                f"{self.irreps_out.simplify()} | {npath} paths | {self.weight_numel} weights)")

    def _get_weights(self, weight: Optional[torch.Tensor]) -> torch.Tensor:
        if weight is None:
            if self.weight_numel > 0 and not self.internal_weights:
                raise RuntimeError("Weights must be provided when the TensorProduct does not have `internal_weights`")
            return self.weight
        if self.shared_weights:
            if weight.shape != (self.weight_numel,):
                raise ValueError(f"shared weights must have shape [{self.weight_numel}], got {list(weight.shape)}")
        elif weight.dim() < 2 or weight.shape[-1] != self.weight_numel:
            raise ValueError(f"per-sample weights must have shape [..., {self.weight_numel}], got {list(weight.shape)}")
        return weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._tensor_product(x, y, weight)

    def _tensor_product(self, x: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
        if x.shape[-1] != self._dim_in1 or y.shape[-1] != self._dim_in2:
            raise ValueError(f"inputs must end in {self._dim_in1} and {self._dim_in2}, got {list(x.shape)} and {list(y.shape)}")
        w = self._get_weights(weight)
        if x.device != y.device or (self.weight_numel > 0 and w.device != x.device):
            raise ValueError("tensor product inputs and weights must be on one device; move them with .to(device)")
        batch = _broadcast(list(x.shape[:-1]), list(y.shape[:-1]))
        if self.weight_numel > 0 and not self.shared_weights:
            batch = _broadcast(batch, list(w.shape[:-1]))
            w = w.expand(batch + [self.weight_numel]).reshape(-1, self.weight_numel)
        x = x.expand(batch + [self._dim_in1]).reshape(-1, self._dim_in1)
        y = y.expand(batch + [self._dim_in2]).reshape(-1, self._dim_in2)
        if self.weight_numel == 0:
            w = x.new_empty(0)
        out = torch.ops.equiforce.tensor_product(x, y, w, self.descriptor_ints, self.descriptor_floats, self._dim_out)
        return out.reshape(batch + [self._dim_out])

    def weight_views(self, weight: Optional[torch.Tensor] = None, yield_instruction: bool = False):
        """Each weighted instruction's weights, shaped ``[..., *path_shape]`` (as e3nn)."""
        w = self._get_weights(weight)
        batch = w.shape[:-1]
        for ins, sl in zip(self.instructions, self.descriptor.weight_slices()):
            if sl is not None:
                view = w[..., sl].reshape(batch + ins.path_shape)
                yield (ins, view) if yield_instruction else view


class FullyConnectedTensorProduct(TensorProduct):
    """Drop-in for ``e3nn.o3.FullyConnectedTensorProduct``: every allowed path, mode ``uvw``."""

    def __init__(self, irreps_in1, irreps_in2, irreps_out, irrep_normalization=None, path_normalization=None,
                 **kwargs) -> None:
        irreps_in1, irreps_in2, irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        instructions = [
            (i1, i2, io, "uvw", True, 1.0)
            for i1, (_, ir1) in enumerate(irreps_in1)
            for i2, (_, ir2) in enumerate(irreps_in2)
            for io, (_, iro) in enumerate(irreps_out)
            if iro in ir1 * ir2
        ]
        super().__init__(irreps_in1, irreps_in2, irreps_out, instructions, irrep_normalization=irrep_normalization,
                         path_normalization=path_normalization, **kwargs)
