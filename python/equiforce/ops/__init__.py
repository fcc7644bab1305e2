"""Torch front-end of equiforce's custom operators (``torch.ops.equiforce.*``).

Importing this module loads the compiled operator library (plain C++, no Python inside, so C++
hosts can load the same file) and registers the fake kernels used by ``torch.export``.

Functions here are thin, checked wrappers; ``equiforce.ops.reference`` holds a plain-torch
implementation of each op for tests.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..algebra.spherical_harmonics import LMAX_SUPPORTED, NORMALIZATIONS

__all__ = ["library_path", "spherical_harmonics", "tensor_product", "conv", "neighbor_list", "LMAX_SUPPORTED"]

_LIBRARY_NAME = "libequiforce_ops.so"


def library_path() -> Path:
    """Path of the operator library; C++ hosts dlopen it (RTLD_GLOBAL) before loading a model."""
    here = Path(__file__).resolve().parent.parent
    candidate = here / "lib" / _LIBRARY_NAME
    if not candidate.exists():
        raise ImportError(
            f"equiforce's operator library is missing ({candidate}). Build and install the package with "
            "`pip install --no-build-isolation .` from the source tree (torch must be installed first)."
        )
    return candidate


def _load() -> None:
    if hasattr(torch.ops.equiforce, "spherical_harmonics"):
        return
    torch.ops.load_library(str(library_path()))


_load()
from . import _fake  # noqa: E402,F401  (registers fake kernels)


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def _check_same_device(**tensors) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        raise ValueError(f"inputs are on different devices ({devices}); move them to one device with .to(device)")


def spherical_harmonics(vectors: torch.Tensor, lmax: int, normalize: bool = True,
                        normalization: str = "integral") -> torch.Tensor:
    """``vectors[..., 3] -> Y[..., (lmax+1)**2]``: every degree 0..lmax, e3nn's basis and normalisation.

    Differentiable twice (forces need the first derivative, training on forces the second).
    """
    _check_tensor(vectors, "vectors")
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"spherical_harmonics: vectors must have shape [..., 3], got {tuple(vectors.shape)}")
    if not isinstance(lmax, int) or not 0 <= lmax <= LMAX_SUPPORTED:
        raise ValueError(f"spherical_harmonics: lmax must be an int in 0..{LMAX_SUPPORTED}, got {lmax!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"spherical_harmonics: normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    batch = vectors.shape[:-1]
    out = torch.ops.equiforce.spherical_harmonics(vectors.reshape(-1, 3), lmax, bool(normalize), normalization)
    return out.reshape(*batch, (lmax + 1) ** 2)


def tensor_product(x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None, descriptor: torch.Tensor,
                   coefficients: torch.Tensor, dim_out: int) -> torch.Tensor:
    """``x1[B, d1], x2[B, d2], weight[numel] | [B, numel] | None -> out[B, d_out]``.

    ``descriptor``/``coefficients`` are ``TensorProductDescriptor.to_arrays()`` as CPU tensors.
    """
    for t, name in ((x1, "x1"), (x2, "x2")):
        _check_tensor(t, name)
    _check_same_device(x1=x1, x2=x2, weight=weight)
    if weight is None:
        weight = x1.new_empty(0)
    return torch.ops.equiforce.tensor_product(x1, x2, weight, descriptor, coefficients, dim_out)


def conv(x: torch.Tensor, edge_attr: torch.Tensor, edge_weight: torch.Tensor | None, edge_src: torch.Tensor,
         edge_dst: torch.Tensor, num_nodes: int, descriptor: torch.Tensor, coefficients: torch.Tensor,
         dim_out: int) -> torch.Tensor:
    """Fused convolution ``out[i] = sum_{e: dst[e]=i} TP(x[src[e]], edge_attr[e]; edge_weight[e])``.

    ``x[num_senders, d1], edge_attr[E, d2], edge_weight[E, numel] | [numel] | None,
    edge_src[E], edge_dst[E] -> out[num_nodes, d_out]``; edges in any order. Receivers without
    edges get zeros. No ``[E, d_out]`` tensor is formed, in the forward or the backward pass.
    """
    for t, name in ((x, "x"), (edge_attr, "edge_attr"), (edge_src, "edge_src"), (edge_dst, "edge_dst")):
        _check_tensor(t, name)
    _check_same_device(x=x, edge_attr=edge_attr, edge_weight=edge_weight, edge_src=edge_src, edge_dst=edge_dst)
    if edge_weight is None:
        edge_weight = x.new_empty(0)
    return torch.ops.equiforce.conv(x, edge_attr, edge_weight, edge_src, edge_dst, num_nodes, descriptor,
                                    coefficients, dim_out)


def neighbor_list(positions, cell=None, pbc=False, cutoff: float = 5.0,
                  self_interaction: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair within ``cutoff``: ``(i[P], j[P], S[P, 3])`` with
    ``D = positions[j] - positions[i] + S @ cell`` and ``|D| < cutoff``.

    The pair set and convention of ``ase.neighborlist.primitive_neighbor_list('ijS', ...)``:
    triclinic cells, any mix of periodic and open directions (``pbc`` a bool or three), cells
    smaller than the cutoff (several images of an atom, its own included), atoms outside the cell.
    ``cell`` rows are lattice vectors (None: no cell, all open). O(N) cell list; pairs sorted by i.
    """
    positions = torch.as_tensor(positions)
    if not positions.is_floating_point():
        positions = positions.double()
    cell = torch.zeros(3, 3, dtype=torch.float64) if cell is None else torch.as_tensor(cell, dtype=torch.float64)
    pbc = torch.as_tensor(pbc, dtype=torch.bool).cpu()
    if pbc.dim() == 0:
        pbc = pbc.repeat(3)
    return torch.ops.equiforce.neighbor_list(positions, cell.cpu(), pbc, float(cutoff), bool(self_interaction))
