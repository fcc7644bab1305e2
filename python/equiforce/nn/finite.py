"""Layers equivariant under finite groups: a linear map on a basis from
:func:`equiforce.algebra.equivariant_basis`, and group convolutions over the 90-degree rotations of
square images (C4): ``C4LiftingConv2d`` maps images ``[B, C, H, W]`` to feature maps on the group
``[B, C', 4, H, W]``, ``C4GroupConv2d`` maps those to ``[B, C', 4, H, W]``. Rotating the input by 90
degrees (``torch.rot90(x, 1, dims=(-2, -1))``) rotates every output map the same way and shifts the
group axis cyclically by one; pooling over the group and the image makes invariant features.
"""
import math

import numpy as np
import torch


class EquivariantLinear(torch.nn.Module):
    """``y = W x`` with ``W = sum_k c_k basis[k]`` (learned c): equivariant whenever every basis
    element is. ``basis``: [k, d_out, d_in] (NumPy or torch), e.g. from ``equivariant_basis``."""

    def __init__(self, basis) -> None:
        super().__init__()
        basis = torch.as_tensor(np.asarray(basis), dtype=torch.get_default_dtype())
        if basis.dim() != 3 or basis.shape[0] == 0:
            raise ValueError(f"basis must have shape [k >= 1, d_out, d_in], got {tuple(basis.shape)}: with k = 0 "
                             "the only equivariant map is zero")
        self.register_buffer("basis", basis)
        self.weight = torch.nn.Parameter(torch.randn(basis.shape[0]) / math.sqrt(basis.shape[0]))

    def matrix(self) -> torch.Tensor:
        return torch.einsum("k,kij->ij", self.weight, self.basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.basis.shape[2]:
            raise ValueError(f"input has {x.shape[-1]} features on its last axis; this layer takes "
                             f"{self.basis.shape[2]}")
        return x @ self.matrix().to(x.dtype).T


def _check_square(x: torch.Tensor, dims: int, layer: str) -> None:
    if x.dim() != dims:
        raise ValueError(f"{layer} takes a {dims}-D input, got shape {tuple(x.shape)}")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{layer} needs square images (90-degree rotations map the image onto itself), got "
                         f"{x.shape[-2]} x {x.shape[-1]}: crop or pad to a square")


class _C4Conv(torch.nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int, group_in: int,
                 bias: bool) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size) < 1 or padding < 0:
            raise ValueError("in_channels, out_channels, kernel_size must be >= 1 and padding >= 0")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        fan_in = in_channels * group_in * kernel_size ** 2
        shape = (out_channels, in_channels, group_in, kernel_size, kernel_size)
        self.weight = torch.nn.Parameter(torch.randn(shape) / math.sqrt(fan_in))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _conv(self, x: torch.Tensor, rotated: torch.Tensor) -> torch.Tensor:
        """x [B, C_in', H, W]; rotated [4, C_out, C_in', k, k] -> [B, C_out, 4, H', W']."""
        weight = rotated.transpose(0, 1).reshape(self.out_channels * 4, *rotated.shape[2:])
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        y = torch.nn.functional.conv2d(x, weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
                                       padding=self.padding)
        return y.reshape(y.shape[0], self.out_channels, 4, *y.shape[2:])


class C4LiftingConv2d(_C4Conv):
    """``[B, C, H, W] -> [B, C', 4, H', W']``: channel r is the convolution with the learned filter
    rotated r times by 90 degrees."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding, 1, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_square(x, 4, "C4LiftingConv2d")
        w = self.weight[:, :, 0]
        return self._conv(x, torch.stack([torch.rot90(w, r, dims=(-2, -1)) for r in range(4)]))


class C4GroupConv2d(_C4Conv):
    """``[B, C, 4, H, W] -> [B, C', 4, H', W']``: ``out_r = sum_s conv(x_s, rot^r W_{s - r})``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding, 4, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != 4:
            raise ValueError(f"C4GroupConv2d takes [B, C, 4, H, W] (a C4 feature map), got shape {tuple(x.shape)}")
        _check_square(x, 5, "C4GroupConv2d")
        # W.roll(r, dims=2)[:, :, s] = W[:, :, s - r]; input channels flatten as (c, s)
        rotated = torch.stack([torch.rot90(self.weight.roll(r, dims=2), r, dims=(-2, -1)) for r in range(4)])
        rotated = rotated.reshape(4, self.out_channels, self.in_channels * 4, self.kernel_size, self.kernel_size)
        return self._conv(x.reshape(x.shape[0], self.in_channels * 4, *x.shape[3:]), rotated)
