"""Gated nonlinearity for equivariant features (as e3nn's Gate): scalars through SiLU,
higher-l features multiplied by gates (sigmoid, or SiLU as in SevenNet) computed from extra scalars."""
import torch

from ..algebra import Irreps

GATE_ACTIVATIONS = ("sigmoid", "silu")


class Gate(torch.nn.Module):
    """``[scalars | gates | gated] -> [silu(scalars) | sigmoid(gates) * gated]``.

    ``irreps_scalars`` (0e/0o) pass through SiLU (odd scalars through tanh, which keeps parity);
    ``irreps_gated`` has one gate scalar (0e) per multiplicity, in order. Input irreps are
    ``irreps_scalars + irreps_gates + irreps_gated``; output ``irreps_scalars + irreps_gated``.

    ``gate_activation``: 'sigmoid' (NequIP) or 'silu' (SevenNet). ``scalar_scale`` and ``gate_scale``
    multiply the even scalars' SiLU and the gates' activation: e3nn normalises every activation by its
    second moment under a unit Gaussian (``normalize2mom``), so models trained with e3nn's Gate carry
    those constants (SiLU: 1.6791767923989418, e3nn's Monte-Carlo estimate, kept as is); ``odd_scale``
    multiplies the odd scalars' tanh (e3nn: 1.5937334472592695 for tanh).
    """

    def __init__(self, irreps_scalars, irreps_gated, gate_activation: str = "sigmoid", scalar_scale: float = 1.0,
                 gate_scale: float = 1.0, odd_scale: float = 1.0) -> None:
        super().__init__()
        if gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(f"gate_activation must be one of {GATE_ACTIVATIONS}, got {gate_activation!r}")
        self.silu_gates = gate_activation == "silu"
        self.scalar_scale, self.gate_scale, self.odd_scale = float(scalar_scale), float(gate_scale), float(odd_scale)
        self.irreps_scalars = Irreps(irreps_scalars)
        self.irreps_gated = Irreps(irreps_gated)
        if any(ir.l != 0 for _, ir in self.irreps_scalars):
            raise ValueError(f"Gate: irreps_scalars must be scalars, got {self.irreps_scalars}")
        if any(ir.l == 0 for _, ir in self.irreps_gated):
            raise ValueError(f"Gate: irreps_gated must have l > 0, got {self.irreps_gated}")
        self.num_gates = self.irreps_gated.num_irreps
        self.irreps_gates = Irreps(f"{self.num_gates}x0e") if self.num_gates else Irreps("")
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        self.irreps_out = self.irreps_scalars + self.irreps_gated
        odd = torch.cat([torch.full((mul,), ir.p < 0) for mul, ir in self.irreps_scalars]) \
            if len(self.irreps_scalars) else torch.zeros(0, dtype=torch.bool)
        self.register_buffer("_odd_scalars", odd, persistent=False)
        # index that repeats each gate over the 2l+1 components of its feature
        repeat = [n for n, (mul_ir) in enumerate(ir for mul, ir in self.irreps_gated for _ in range(mul))
                  for _ in range(mul_ir.dim)]
        self.register_buffer("_gate_index", torch.tensor(repeat, dtype=torch.long), persistent=False)
        self._num_scalars = self.irreps_scalars.dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        s = features[..., : self._num_scalars]
        g = features[..., self._num_scalars : self._num_scalars + self.num_gates]
        v = features[..., self._num_scalars + self.num_gates :]
        even = torch.nn.functional.silu(s)
        if self.scalar_scale != 1.0:
            even = even * self.scalar_scale
        odd = torch.tanh(s)
        if self.odd_scale != 1.0:
            odd = odd * self.odd_scale
        s = torch.where(self._odd_scalars, odd, even)
        if self.num_gates == 0:
            return s
        g = torch.nn.functional.silu(g) if self.silu_gates else torch.sigmoid(g)
        if self.gate_scale != 1.0:
            g = g * self.gate_scale
        return torch.cat([s, v * g.index_select(-1, self._gate_index)], dim=-1)
