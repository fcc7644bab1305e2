"""Plain-torch reference implementations of the custom ops (slow, obviously correct, autograd
through ordinary torch functions). Tests compare the compiled ops against these."""
from __future__ import annotations

import math

import torch

from ..algebra.spherical_harmonics import normalization_factors, recurrence_terms
from ..algebra.tensor_product import TensorProductDescriptor
from ..algebra.wigner import wigner_3j

__all__ = ["spherical_harmonics", "tensor_product", "conv"]


def spherical_harmonics(vectors: torch.Tensor, lmax: int, normalize: bool = True,
                        normalization: str = "integral") -> torch.Tensor:
    """Same contract as ``equiforce.ops.spherical_harmonics``, by the degree recurrence in torch."""
    r = vectors
    if normalize:
        r = torch.nn.functional.normalize(r, dim=-1)
    x = [r[..., 0], r[..., 1], r[..., 2]]
    levels = [[torch.ones_like(x[0])]]
    for l in range(1, lmax + 1):
        comps = [torch.zeros_like(x[0]) for _ in range(2 * l + 1)]
        for i, j, k, c in recurrence_terms(l):
            comps[i] = comps[i] + c * levels[-1][j] * x[k]
        levels.append(comps)
    factors = normalization_factors(lmax, normalization)
    return torch.stack([y * float(factors[l]) for l, comps in enumerate(levels) for y in comps], dim=-1)


def tensor_product(x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None,
                   descriptor: TensorProductDescriptor) -> torch.Tensor:
    """Same contract as ``equiforce.ops.tensor_product``, one einsum per instruction."""
    d = descriptor
    batch = x1.shape[0]
    shared = weight is not None and weight.dim() == 1
    outs = [x1.new_zeros(batch, mul, ir.dim) for mul, ir in d.irreps_out]
    s1, s2 = d.irreps_in1.slices(), d.irreps_in2.slices()
    for ins, wslice in zip(d.instructions, d.weight_slices()):
        m1, m2, mo = d.irreps_in1[ins.i_in1], d.irreps_in2[ins.i_in2], d.irreps_out[ins.i_out]
        a = x1[:, s1[ins.i_in1]].reshape(batch, m1.mul, m1.ir.dim)
        b = x2[:, s2[ins.i_in2]].reshape(batch, m2.mul, m2.ir.dim)
        c = torch.as_tensor(wigner_3j(m1.ir.l, m2.ir.l, mo.ir.l), dtype=x1.dtype, device=x1.device)
        if ins.has_weight:
            w = weight[..., wslice].reshape((batch,) * (not shared) + ins.path_shape)
            if shared:
                w = w.expand((batch,) + ins.path_shape)
        else:
            w = x1.new_ones((batch,) + ins.path_shape)
        mode = ins.connection_mode
        if mode == "uvw":
            r = torch.einsum("zuvw,ijk,zui,zvj->zwk", w, c, a, b)
        elif mode == "uvu":
            r = torch.einsum("zuv,ijk,zui,zvj->zuk", w, c, a, b)
        elif mode == "uvv":
            r = torch.einsum("zuv,ijk,zui,zvj->zvk", w, c, a, b)
        elif mode == "uuw":
            r = torch.einsum("zuw,ijk,zui,zuj->zwk", w, c, a, b)
        else:
            r = torch.einsum("zu,ijk,zui,zuj->zuk", w, c, a, b)
        outs[ins.i_out] = outs[ins.i_out] + ins.path_weight * r
    if not outs:
        return x1.new_zeros(batch, 0)
    return torch.cat([o.reshape(batch, o.shape[1] * o.shape[2]) for o in outs], dim=1)


def conv(x: torch.Tensor, edge_attr: torch.Tensor, edge_weight: torch.Tensor | None, edge_src: torch.Tensor,
         edge_dst: torch.Tensor, num_nodes: int, descriptor: TensorProductDescriptor) -> torch.Tensor:
    """Same contract as ``equiforce.ops.conv``, unfused: per-edge messages, then ``index_add``."""
    messages = tensor_product(x[edge_src], edge_attr, edge_weight, descriptor)
    out = x.new_zeros(num_nodes, descriptor.irreps_out.dim)
    return out.index_add(0, edge_dst, messages)
