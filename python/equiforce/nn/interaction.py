"""NequIP-style interaction block on the fused convolution."""
from typing import List, Optional, Tuple

import torch

from ..algebra import Irrep, Irreps
from ..o3 import FullyConnectedTensorProduct, Linear, TensorProductConv
from .gate import Gate
from .radial import RadialMLP


def conv_instructions(irreps_in: Irreps, irreps_sh: Irreps, targets: Irreps,
                      sort: bool = False) -> Tuple[Irreps, List[tuple]]:
    """uvu paths from every (input, SH) pair to every output irrep present in ``targets``, each into
    its own segment (NequIP's layout). With ``sort``, the segments are stably sorted by irrep and the
    instructions by segment (SevenNet's layout since 0.11, as e3nn's ``Irreps.sort``): the radial
    weights and the output Linear then follow that order. Returns (irreps_mid, instructions)."""
    wanted = {ir for _, ir in targets}
    mid, instructions = [], []
    for i1, (mul, ir1) in enumerate(irreps_in):
        for i2, (_, ir2) in enumerate(irreps_sh):
            for ir in ir1 * ir2:
                if ir in wanted:
                    instructions.append((i1, i2, len(mid), "uvu", True))
                    mid.append((mul, ir))
    if not sort:
        return Irreps(mid), instructions
    irreps_mid, p, _ = Irreps(mid).sort()
    moved = sorted(((i1, i2, p[k], mode, w) for i1, i2, k, mode, w in instructions), key=lambda ins: ins[2])
    return irreps_mid, moved


SELF_CONNECTIONS = ("tensor_product", "linear", "none")


def with_modality(x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """``x [N, d]`` with the modality one-hot ``[M]`` appended to every row: ``[N, d + M]``."""
    return torch.cat([x, modality.to(x.dtype).unsqueeze(0).expand(x.shape[0], modality.shape[0])], dim=-1)


class Interaction(torch.nn.Module):
    """One message-passing layer:
    ``x -> Linear -> conv(SH(r_ij), radial MLP(r_ij)) / denominator -> Linear
    + self-connection -> gate``, with a residual connection when ``residual`` and shapes allow.

    ``self_connection``: 'tensor_product' (of x with the species one-hot, NequIP), 'linear' (of x
    alone, SevenNet) or 'none'. ``denominator`` defaults to sqrt(avg_num_neighbors). ``gate_activation``,
    ``scalar_scale``, ``gate_scale`` and ``odd_scale`` as in :class:`Gate`; ``sort_paths`` as in :func:`conv_instructions`.

    ``forward(x[N, irreps_in], species_one_hot[N, S], sh[E, irreps_sh], radial[E, num_basis],
    edge_src[E], edge_dst[E]) -> x'[N, irreps_out]``; with ``num_out``, only the first ``num_out``
    nodes are updated (every ``edge_dst`` below it) and x' has ``num_out`` rows.
    """

    def __init__(self, irreps_in, irreps_sh, irreps_hidden, num_species: int, num_basis: int, radial_hidden: int,
                 radial_depth: int, avg_num_neighbors: float, self_connection: str = "tensor_product",
                 residual: bool = True, gate_activation: str = "sigmoid", scalar_scale: float = 1.0,
                 gate_scale: float = 1.0, odd_scale: float = 1.0, denominator: Optional[float] = None,
                 sort_paths: bool = False,
                 modality: Optional[torch.Tensor] = None, modality_in: bool = False,
                 modality_out: bool = False) -> None:
        super().__init__()
        if self_connection not in SELF_CONNECTIONS:
            raise ValueError(f"self_connection must be one of {SELF_CONNECTIONS}, got {self_connection!r}")
        irreps_in, irreps_sh, irreps_hidden = Irreps(irreps_in), Irreps(irreps_sh), Irreps(irreps_hidden)
        self.irreps_in = irreps_in
        # multi-fidelity models (SevenNet-MF): a constant one-hot of the modality appended as scalars to
        # the inputs of the first and/or the second Linear
        modal = torch.zeros(0) if modality is None else modality.detach().clone().to(torch.get_default_dtype())
        self.register_buffer("_modality", modal)
        self.modality_in, self.modality_out = bool(modality_in and modal.numel()), bool(modality_out and modal.numel())
        extra = Irreps(f"{modal.numel()}x0e") if modal.numel() else Irreps("")
        self.linear_in = Linear(irreps_in + extra if self.modality_in else irreps_in, irreps_in)
        irreps_mid, instructions = conv_instructions(irreps_in, irreps_sh, irreps_hidden, sort_paths)
        self.conv = TensorProductConv(irreps_in, irreps_sh, irreps_mid, instructions)
        self.radial = RadialMLP(num_basis, radial_hidden, radial_depth, self.conv.weight_numel)
        reachable = {ir for _, ir in irreps_mid}
        scalars = Irreps([(mul, ir) for mul, ir in irreps_hidden if ir.l == 0 and ir in reachable])
        gated = Irreps([(mul, ir) for mul, ir in irreps_hidden if ir.l > 0 and ir in reachable])
        self.gate = Gate(scalars, gated, gate_activation, scalar_scale, gate_scale, odd_scale)
        self.linear_out = Linear(irreps_mid + extra if self.modality_out else irreps_mid, self.gate.irreps_in)
        self.self_connection = FullyConnectedTensorProduct(irreps_in, Irreps(f"{num_species}x0e"), self.gate.irreps_in) \
            if self_connection == "tensor_product" else None
        self.self_connection_linear = Linear(irreps_in, self.gate.irreps_in) if self_connection == "linear" else None
        self.irreps_out = self.gate.irreps_out
        self.residual = bool(residual) and irreps_in == self.irreps_out
        if denominator is not None and not denominator > 0:
            raise ValueError(f"the message denominator must be positive, got {denominator}")
        self.inv_sqrt_neighbors = float(avg_num_neighbors) ** -0.5 if denominator is None else 1.0 / float(denominator)

    def forward(self, x: torch.Tensor, species_one_hot: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor,
                edge_src: torch.Tensor, edge_dst: torch.Tensor, num_out: Optional[int] = None) -> torch.Tensor:
        h = self.linear_in(with_modality(x, self._modality) if self.modality_in else x)
        h = self.conv(h, sh, self.radial(radial), edge_src, edge_dst, num_out) * self.inv_sqrt_neighbors
        if num_out is not None:
            x, species_one_hot = x[:num_out], species_one_hot[:num_out]
        h = self.linear_out(with_modality(h, self._modality) if self.modality_out else h)
        if self.self_connection is not None:
            h = h + self.self_connection(x, species_one_hot)
        if self.self_connection_linear is not None:
            h = h + self.self_connection_linear(x)
        h = self.gate(h)
        return x + h if self.residual else h


def hidden_irreps(num_features: int, l_max: int, parity: bool) -> Irreps:
    """``num_features`` copies of every irrep up to l_max: both parities when ``parity``, else (-1)^l."""
    out = []
    for l in range(l_max + 1):
        for p in ((1, -1) if parity else ((-1) ** l,)):
            out.append((num_features, Irrep(l, p)))
    return Irreps(out)
