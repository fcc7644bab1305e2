"""e3nn-compatible spherical harmonics on equiforce's compiled op."""

from typing import List, Union

import torch

from .. import ops
from ..algebra import Irreps
from ..algebra.spherical_harmonics import LMAX_SUPPORTED, NORMALIZATIONS


def _degrees(l):
    """e3nn's accepted forms of ``l`` -> (list of degrees, input parity)."""
    if isinstance(l, str):
        l = Irreps(l)
    if isinstance(l, Irreps):
        input_p = -1 if all(p == (-1) ** deg for _, (deg, p) in l) else 1
        degrees = []
        for mul, (deg, p) in l:
            if p != input_p**deg:
                raise ValueError(f"spherical harmonics of {l}: degree {deg} must have parity {input_p**deg}")
            degrees += [deg] * mul
        return degrees, input_p
    if isinstance(l, int):
        return [l], -1
    return [int(x) for x in l], -1


class SphericalHarmonics(torch.nn.Module):
    """Module form of :func:`spherical_harmonics` (same arguments as ``e3nn.o3.SphericalHarmonics``).

    ``x[..., 3] -> Y[..., irreps_out.dim]``; TorchScript-able.
    """

    normalize: bool
    normalization: str
    _ls_list: List[int]
    _lmax: int
    _is_range_lmax: bool

    def __init__(self, irreps_out: Union[int, List[int], str, Irreps], normalize: bool,
                 normalization: str = "integral", irreps_in=None) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        ls, input_p = _degrees(irreps_out)
        if irreps_in is not None:
            irreps_in = Irreps(irreps_in)
            if irreps_in not in (Irreps("1x1o"), Irreps("1x1e")):
                raise ValueError(f"irreps_in must be 1x1o (vector) or 1x1e (pseudovector), got {irreps_in}")
            input_p = irreps_in[0].ir.p
        if not ls or min(ls) < 0 or max(ls) > LMAX_SUPPORTED:
            raise ValueError(f"spherical harmonics degrees must lie in 0..{LMAX_SUPPORTED}, got {ls}")
        self.irreps_in = Irreps([(1, (1, input_p))])
        self.irreps_out = Irreps([(1, (deg, input_p**deg)) for deg in ls]).simplify()
        self.normalize = bool(normalize)
        self.normalization = normalization
        self._ls_list = ls
        self._lmax = max(ls)
        self._is_range_lmax = ls == list(range(max(ls) + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-1]
        sh = torch.ops.equiforce.spherical_harmonics(x.reshape(-1, 3), self._lmax, self.normalize, self.normalization)
        if not self._is_range_lmax:
            sh = torch.cat([sh[:, l * l : (l + 1) * (l + 1)] for l in self._ls_list], dim=1)
        return sh.reshape(batch + (sh.shape[1],))

    def extra_repr(self) -> str:
        return f"{self.irreps_out}, normalize={self.normalize}, normalization={self.normalization!r}"


def spherical_harmonics(l: Union[int, List[int], str, Irreps], x: torch.Tensor, normalize: bool,
                        normalization: str = "integral") -> torch.Tensor:
    """Drop-in for ``e3nn.o3.spherical_harmonics``: ``x[..., 3] -> Y[..., sum(2l+1)]``.

    >>> import torch
    >>> spherical_harmonics(1, torch.tensor([[0.0, 0.0, 2.0]]), normalize=True, normalization="component")
    tensor([[0.0000, 0.0000, 1.7321]])
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.shape[-1:] != (3,):
        raise ValueError(f"spherical_harmonics: x must have shape [..., 3], got {tuple(x.shape)}")
    return SphericalHarmonics(l, normalize, normalization)(x)
