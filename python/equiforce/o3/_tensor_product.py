"""e3nn-compatible tensor-product modules on equiforce's compiled op."""

import math
from typing import List, Optional, Tuple

import torch

from .. import ops  # noqa: F401  (loads the operator library)
from ..algebra import Irreps, TensorProductDescriptor


def _broadcast(a: List[int], b: List[int]) -> List[int]:
    """Broadcast two batch shapes (TorchScript-friendly torch.broadcast_shapes)."""
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + a
    b = [1] * (n - len(b)) + b
    out: List[int] = []
    for x, y in zip(a, b):
        if x != y and x != 1 and y != 1:
            raise ValueError("tensor product inputs have batch shapes that do not broadcast")
        out.append(y if x == 1 else x)
    return out


class TensorProduct(torch.nn.Module):
    """Drop-in for ``e3nn.o3.TensorProduct``: same arguments, ``weight_numel``, weight layout and outputs.

    ``forward(x1[..., d1], x2[..., d2], weight=None) -> out[..., d_out]``; weights are shared
    ``[weight_numel]`` or per sample ``[..., weight_numel]`` (``shared_weights=False``). The math is
    ``equiforce::tensor_product``; the descriptor lives on the module as plain CPU tensors.
    """

    weight_numel: int
    shared_weights: bool
    internal_weights: bool
    _dim_in1: int
    _dim_in2: int
    _dim_out: int
    use_dense: bool
    _dense_paths: List[List[int]]
    _dense_coeffs: List[float]
    _dense_outs: List[Tuple[int, int]]
    _dense_sizes1: List[int]
    _dense_sizes2: List[int]
    _dense_groups: List[List[int]]
    _dense_merge: List[bool]
    _dense_y_is_one: bool

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions, in1_var=None, in2_var=None, out_var=None,
                 irrep_normalization: Optional[str] = None, path_normalization: Optional[str] = None,
                 internal_weights: Optional[bool] = None, shared_weights: Optional[bool] = None,
                 _descriptor: Optional[TensorProductDescriptor] = None) -> None:
        super().__init__()
        self.descriptor = _descriptor or TensorProductDescriptor(
            irreps_in1, irreps_in2, irreps_out, instructions, in1_var=in1_var, in2_var=in2_var, out_var=out_var,
            irrep_normalization=irrep_normalization, path_normalization=path_normalization)
        d = self.descriptor
        self.irreps_in1, self.irreps_in2, self.irreps_out = d.irreps_in1, d.irreps_in2, d.irreps_out
        self.instructions = d.instructions
        self.weight_numel = d.weight_numel
        # e3nn's defaults
        if shared_weights is False and internal_weights is None:
            internal_weights = False
        if shared_weights is None:
            shared_weights = True
        if internal_weights is None:
            internal_weights = shared_weights and any(i.has_weight for i in d.instructions)
        if internal_weights and not shared_weights:
            raise ValueError("internal_weights=True requires shared_weights=True (as in e3nn)")
        self.shared_weights = bool(shared_weights)
        self.internal_weights = bool(internal_weights)
        if self.internal_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_buffer("weight", torch.Tensor(), persistent=False)
        ints, floats = d.to_arrays()
        # Plain attributes, not buffers: module.to(dtype/device) must leave them as int64/float64 CPU tables.
        self.descriptor_ints = torch.from_numpy(ints)
        self.descriptor_floats = torch.from_numpy(floats)
        self._dim_in1, self._dim_in2, self._dim_out = d.irreps_in1.dim, d.irreps_in2.dim, d.irreps_out.dim
        self._dense_paths, self._dense_coeffs, self._dense_outs = _scalar_paths(d)
        self._dense_sizes1 = [mul * ir.dim for mul, ir in d.irreps_in1]
        self._dense_sizes2 = [mul * ir.dim for mul, ir in d.irreps_in2]
        self._dense_groups = [[k for k, p in enumerate(self._dense_paths) if p[5] == o] for o in range(len(self._dense_outs))]
        self._dense_merge = [all(self._dense_paths[k][4] == 1 and self._dense_paths[k][3] == self._dense_paths[g[0]][3]
                                 for k in g) for g in self._dense_groups]
        self._dense_y_is_one = False  # Linear: the second input is the constant 1
        self.use_dense = len(self._dense_paths) > 0  # False forces the kernel (the reference the tests use)

    def __repr__(self) -> str:
        npath = sum(math.prod(i.path_shape) for i in self.instructions)
        return (f"{self.__class__.__name__}({self.irreps_in1.simplify()} x {self.irreps_in2.simplify()} -> "
                f"{self.irreps_out.simplify()} | {npath} paths | {self.weight_numel} weights)")

    def _get_weights(self, weight: Optional[torch.Tensor]) -> torch.Tensor:
        if weight is None:
            if self.weight_numel > 0 and not self.internal_weights:
                raise RuntimeError("Weights must be provided when the TensorProduct does not have `internal_weights`")
            return self.weight
        if self.shared_weights:
            if weight.shape != (self.weight_numel,):
                raise ValueError(f"shared weights must have shape [{self.weight_numel}], got {list(weight.shape)}")
        elif weight.dim() < 2 or weight.shape[-1] != self.weight_numel:
            raise ValueError(f"per-sample weights must have shape [..., {self.weight_numel}], got {list(weight.shape)}")
        return weight

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._tensor_product(x, y, weight)

    def _tensor_product(self, x: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor]) -> torch.Tensor:
        if x.shape[-1] != self._dim_in1 or y.shape[-1] != self._dim_in2:
            raise ValueError(f"inputs must end in {self._dim_in1} and {self._dim_in2}, got {list(x.shape)} and {list(y.shape)}")
        w = self._get_weights(weight)
        if self.use_dense and self.shared_weights:
            return self._dense(x, y, w)
        if x.device != y.device or (self.weight_numel > 0 and w.device != x.device):
            raise ValueError("tensor product inputs and weights must be on one device; move them with .to(device)")
        batch = _broadcast(list(x.shape[:-1]), list(y.shape[:-1]))
        if self.weight_numel > 0 and not self.shared_weights:
            batch = _broadcast(batch, list(w.shape[:-1]))
            w = w.expand(batch + [self.weight_numel]).reshape(-1, self.weight_numel)
        x = x.expand(batch + [self._dim_in1]).reshape(-1, self._dim_in1)
        y = y.expand(batch + [self._dim_in2]).reshape(-1, self._dim_in2)
        if self.weight_numel == 0:
            w = x.new_empty(0)
        out = torch.ops.equiforce.tensor_product(x, y, w, self.descriptor_ints, self.descriptor_floats, self._dim_out)
        return out.reshape(batch + [self._dim_out])

    def _dense(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Second input all scalars (Linear, species self-connection): each path is a matrix
        product ``out[n, w, m] = c sum_uv W[u, v, w] x[n, u, m] y[n, v]``, done by BLAS; autograd
        gives every derivative. Same numbers as the kernel (tests compare the two)."""
        batch = _broadcast(list(x.shape[:-1]), list(y.shape[:-1]))
        x = x.expand(batch + [self._dim_in1]).reshape(-1, self._dim_in1)
        y = y.expand(batch + [self._dim_in2]).reshape(-1, self._dim_in2)
        n = x.shape[0]
        # split (not slices): its backward is one concatenation, where every slice's would be a zeros
        # tensor of the full input
        xs = torch.split(x, self._dense_sizes1, dim=-1)
        ys = torch.split(y, self._dense_sizes2, dim=-1)
        pieces: List[torch.Tensor] = []
        for o, (mulo, d) in enumerate(self._dense_outs):
            group = self._dense_groups[o]
            if len(group) == 0:
                r = x.new_zeros(n, d, mulo)
            elif self._dense_merge[o]:
                # every path into this output reads one scalar column: one matrix product for all
                # of them, inputs stacked along the multiplicity and weights along their rows
                xcat = torch.cat([xs[self._dense_paths[k][0]].reshape(n, self._dense_paths[k][1], d) for k in group], 1)
                wcat = torch.cat([w[self._dense_paths[k][6] : self._dense_paths[k][6] + self._dense_paths[k][1] * mulo]
                                  .reshape(self._dense_paths[k][1], mulo) * self._dense_coeffs[k] for k in group], 0)
                r = torch.matmul(xcat.transpose(1, 2), wcat)  # [n, d, mul_out]
                if not self._dense_y_is_one:
                    r = r * ys[self._dense_paths[group[0]][3]].unsqueeze(-1)
            else:
                terms: List[torch.Tensor] = []
                for k in group:
                    p = self._dense_paths[k]
                    i1, u, i2, v, woff = p[0], p[1], p[3], p[4], p[6]
                    xb = xs[i1].reshape(n, u, d).transpose(1, 2)  # [n, d, u]
                    wb = w[woff : woff + u * v * mulo].reshape(u, v * mulo) * self._dense_coeffs[k]
                    t = torch.matmul(xb, wb)  # [n, d, v * mul_out]
                    terms.append((t.reshape(n, d, v, mulo) * ys[i2].reshape(n, 1, v, 1)).sum(2))
                r = terms[0]
                for t in terms[1:]:
                    r = r + t
            pieces.append(r.transpose(1, 2).reshape(n, mulo * d))
        out = torch.cat(pieces, dim=-1) if len(pieces) > 0 else x.new_zeros(n, 0)
        return out.reshape(batch + [self._dim_out])

    def weight_views(self, weight: Optional[torch.Tensor] = None, yield_instruction: bool = False):
        """Each weighted instruction's weights, shaped ``[..., *path_shape]`` (as e3nn)."""
        w = self._get_weights(weight)
        batch = w.shape[:-1]
        for ins, sl in zip(self.instructions, self.descriptor.weight_slices()):
            if sl is not None:
                view = w[..., sl].reshape(batch + ins.path_shape)
                yield (ins, view) if yield_instruction else view


def _scalar_paths(d: TensorProductDescriptor):
    """When every path is ``uvw``, weighted, and reads a scalar (0e) second input, the plan of
    :meth:`TensorProduct._dense`: per path ``[in1 segment, mul1, dim, in2 segment, mul2, out, weight offset,
    mul_out]`` and its coefficient; per output irrep ``(mul, dim)``. Otherwise empty lists."""
    if not d.instructions or any(i.connection_mode != "uvw" or not i.has_weight or d.irreps_in2[i.i_in2].ir.l != 0
                                 or d.irreps_in2[i.i_in2].ir.p != 1 for i in d.instructions):
        return [], [], []
    nnz = d.nonzeros()
    paths, coeffs = [], []
    for n, (ins, sl) in enumerate(zip(d.instructions, d.weight_slices())):
        entries = [e for e in nnz if e[0] == n]
        dim = d.irreps_in1[ins.i_in1].ir.dim
        values = {e[4] for e in entries}
        if len(entries) != dim or any(e[1] != e[3] for e in entries) or max(values) - min(values) > 1e-12:
            return [], [], []  # not a multiple of the identity: leave it to the kernel
        mul1, mul2, mulo = ins.path_shape
        paths.append([ins.i_in1, mul1, dim, ins.i_in2, mul2, ins.i_out, sl.start, mulo])
        coeffs.append(float(ins.path_weight * entries[0][4]))
    return paths, coeffs, [(mul, ir.dim) for mul, ir in d.irreps_out]


class FullyConnectedTensorProduct(TensorProduct):
    """Drop-in for ``e3nn.o3.FullyConnectedTensorProduct``: every allowed path, mode ``uvw``."""

    def __init__(self, irreps_in1, irreps_in2, irreps_out, irrep_normalization=None, path_normalization=None,
                 **kwargs) -> None:
        irreps_in1, irreps_in2, irreps_out = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        instructions = [
            (i1, i2, io, "uvw", True, 1.0)
            for i1, (_, ir1) in enumerate(irreps_in1)
            for i2, (_, ir2) in enumerate(irreps_in2)
            for io, (_, iro) in enumerate(irreps_out)
            if iro in ir1 * ir2
        ]
        super().__init__(irreps_in1, irreps_in2, irreps_out, instructions, irrep_normalization=irrep_normalization,
                         path_normalization=path_normalization, **kwargs)
