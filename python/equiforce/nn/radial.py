"""Radial parts of an equivariant interaction: Bessel basis, smooth polynomial cutoff, radial MLP."""
import math

import torch


BESSEL_PREFACTORS = ("sqrt(2/r_max)", "2/r_max")


class BesselBasis(torch.nn.Module):
    """``r[E] -> B[E, num_basis]``, ``B_n(r) = c sin(n pi r / r_max) / r`` with ``c = sqrt(2/r_max)``
    (NequIP's basis) or ``c = 2/r_max`` (SevenNet's).

    The frequencies ``n pi / r_max`` are trainable when ``trainable=True``.
    """

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = True,
                 prefactor: str = "sqrt(2/r_max)") -> None:
        super().__init__()
        if r_max <= 0 or num_basis < 1:
            raise ValueError(f"BesselBasis needs r_max > 0 and num_basis >= 1, got {r_max}, {num_basis}")
        if prefactor not in BESSEL_PREFACTORS:
            raise ValueError(f"bessel_prefactor must be one of {BESSEL_PREFACTORS}, got {prefactor!r}")
        self.r_max = float(r_max)
        self.prefactor = math.sqrt(2.0 / r_max) if prefactor == "sqrt(2/r_max)" else 2.0 / r_max
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


class XPLORCutoff(torch.nn.Module):
    """The XPLOR switching function: 1 below ``r_on``, then
    ``(r_c^2 - r^2)^2 (r_c^2 + 2 r^2 - 3 r_on^2) / (r_c^2 - r_on^2)^3`` down to 0 at ``r_max`` (SevenNet-0)."""

    def __init__(self, r_max: float, r_on: float) -> None:
        super().__init__()
        if not 0 < r_on < r_max:
            raise ValueError(f"the XPLOR cutoff needs 0 < cutoff_on < r_max, got cutoff_on={r_on}, r_max={r_max}")
        self.r_max, self.r_on = float(r_max), float(r_on)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r2, on2, cut2 = r * r, self.r_on * self.r_on, self.r_max * self.r_max
        switched = (cut2 - r2) ** 2 * (cut2 + 2.0 * r2 - 3.0 * on2) / (cut2 - on2) ** 3
        inside = (r < self.r_max).to(r.dtype)
        return torch.where(r < self.r_on, torch.ones_like(r), switched * inside)


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
