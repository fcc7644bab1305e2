"""Radial parts of an equivariant interaction: Bessel basis, smooth polynomial cutoff, radial MLP."""
import math

import torch


class BesselBasis(torch.nn.Module):
    """``r[E] -> B[E, num_basis]``, ``B_n(r) = sqrt(2/r_max) sin(n pi r / r_max) / r`` (NequIP's basis).

    The frequencies ``n pi / r_max`` are trainable when ``trainable=True``.
    """

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        if r_max <= 0 or num_basis < 1:
            raise ValueError(f"BesselBasis needs r_max > 0 and num_basis >= 1, got {r_max}, {num_basis}")
        self.r_max = float(r_max)
        self.prefactor = math.sqrt(2.0 / r_max)
        weights = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / r_max
        self.frequencies = torch.nn.Parameter(weights, requires_grad=trainable)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r


class PolynomialCutoff(torch.nn.Module):
    """Smooth envelope ``f(r)`` going to 0 at ``r_max`` with ``p`` continuous derivatives (NequIP, p = 6)."""

    def __init__(self, r_max: float, p: int = 6) -> None:
        super().__init__()
        if r_max <= 0 or p < 1:
            raise ValueError(f"PolynomialCutoff needs r_max > 0 and p >= 1, got {r_max}, {p}")
        self.r_max = float(r_max)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.r_max
        p = self.p
        f = (1.0 - (p + 1.0) * (p + 2.0) / 2.0 * x.pow(p) + p * (p + 2.0) * x.pow(p + 1.0)
             - p * (p + 1.0) / 2.0 * x.pow(p + 2.0))
        return f * (x < 1.0).to(r.dtype)


class RadialMLP(torch.nn.Module):
    """``basis[E, num_basis] -> weights[E, out]``: SiLU MLP without biases (so zero basis gives zero weights)."""

    def __init__(self, num_basis: int, hidden: int, depth: int, out: int) -> None:
        super().__init__()
        dims = [num_basis] + [hidden] * depth + [out]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for n, layer in enumerate(self.layers):
            x = layer(x)
            if n < len(self.layers) - 1:
                x = torch.nn.functional.silu(x)
        return x
