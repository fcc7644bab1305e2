"""Fused equivariant convolution module on ``equiforce::conv``."""
from typing import Optional

import torch

from ._tensor_product import TensorProduct


class TensorProductConv(TensorProduct):
    """``index_add`` over receivers of ``TensorProduct(x[edge_src], edge_attr, edge_weight)``, fused.

    ``forward(x[N, d1], edge_attr[E, d2], edge_weight, edge_src[E], edge_dst[E]) -> out[N, d_out]``
    with ``TensorProduct``'s arguments and weight layout (hence e3nn's); ``edge_weight`` is
    ``[E, weight_numel]`` (``shared_weights=False``, the default here), ``[weight_numel]`` or None
    with internal weights. Edges may come in any order; the op groups them itself. Messages
    ``[E, d_out]`` are never formed.
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions, irrep_normalization: Optional[str] = None,
                 path_normalization: Optional[str] = None, internal_weights: bool = False,
                 shared_weights: bool = False) -> None:
        super().__init__(irreps_in1, irreps_in2, irreps_out, instructions, irrep_normalization=irrep_normalization,
                         path_normalization=path_normalization, internal_weights=internal_weights,
                         shared_weights=shared_weights)

    def forward(self, x: torch.Tensor, edge_attr: torch.Tensor, edge_weight: Optional[torch.Tensor],  # type: ignore[override]
                edge_src: torch.Tensor, edge_dst: torch.Tensor, num_nodes: Optional[int] = None) -> torch.Tensor:
        """Output rows: ``num_nodes`` receivers (default: as many as ``x`` has senders)."""
        w = self._get_weights(edge_weight)
        if not (x.device == edge_attr.device == edge_src.device == edge_dst.device) or (
                self.weight_numel > 0 and w.device != x.device):
            raise ValueError("convolution inputs, edge indices and weights must be on one device; move them with .to(device)")
        if self.weight_numel == 0:
            w = x.new_empty(0)
        rows = x.shape[0] if num_nodes is None else num_nodes
        return torch.ops.equiforce.conv(x, edge_attr, w, edge_src, edge_dst, rows, self.descriptor_ints,
                                        self.descriptor_floats, self._dim_out)
