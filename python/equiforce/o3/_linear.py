"""e3nn-compatible equivariant linear layer, built on the tensor product with a constant 0e input."""

from typing import List, Optional, Union

import torch

from ..algebra import Irreps
from ._tensor_product import TensorProduct


class Linear(TensorProduct):
    """Drop-in for ``e3nn.o3.Linear`` (weights ``[mul_in, mul_out]`` per path, 'element' normalisation).

    It is the tensor product ``irreps_in x 1x0e -> irreps_out`` in mode ``uvw``, evaluated against
    a constant scalar 1, so it shares the tensor-product kernel and its derivatives. Biases, when
    asked for, are added to the scalar (0e) outputs as in e3nn and start at zero.
    """

    def __init__(self, irreps_in, irreps_out, *, internal_weights: Optional[bool] = None,
                 shared_weights: Optional[bool] = None, instructions: Optional[List[tuple]] = None,
                 biases: Union[bool, List[bool]] = False, path_normalization: str = "element") -> None:
        irreps_in, irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        if instructions is None:
            instructions = [(i, o) for i, (_, a) in enumerate(irreps_in) for o, (_, b) in enumerate(irreps_out) if a == b]
        for i, o in instructions:
            if irreps_in[i].ir != irreps_out[o].ir:
                raise ValueError(f"Linear instruction ({i}, {o}): {irreps_in[i]} and {irreps_out[o]} differ")
        if internal_weights is None:
            internal_weights = shared_weights is not False
        super().__init__(irreps_in, "0e", irreps_out, [(i, 0, o, "uvw", True) for i, o in instructions],
                         path_normalization=path_normalization, internal_weights=internal_weights,
                         shared_weights=shared_weights)
        if isinstance(biases, bool):
            biases = [biases and ir.is_scalar() for _, ir in irreps_out]
        if len(biases) != len(irreps_out) or any(b and not ir.is_scalar() for b, (_, ir) in zip(biases, irreps_out)):
            raise ValueError("biases must be one bool per output irrep, and only scalar (0e) outputs can have one")
        mask = torch.cat([torch.full((mul * ir.dim,), float(b)) for b, (mul, ir) in zip(biases, irreps_out)]) \
            if len(irreps_out) else torch.zeros(0)
        self.register_buffer("_bias_mask", mask.bool(), persistent=False)
        self.bias_numel = int(mask.sum())
        self.bias = torch.nn.Parameter(torch.zeros(self.bias_numel)) if self.bias_numel else None
        self.irreps_in = irreps_in
        self._dense_y_is_one = True

    def forward(self, features: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        one = features.new_ones(features.shape[:-1] + (1,))
        out = self._tensor_product(features, one, weight)
        if self.bias is not None:
            out = out.index_add(-1, torch.nonzero(self._bias_mask).flatten(), self.bias.expand(out.shape[:-1] + (-1,)))
        return out
