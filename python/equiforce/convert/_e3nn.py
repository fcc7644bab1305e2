"""Weight layouts of e3nn-built models (SevenNet, nequip) re-laid for equiforce's modules.

e3nn's ``Linear`` and ``FullyConnectedTensorProduct`` store one ``[mul_in, (mul_2,) mul_out]`` block per
(input segment, output segment) pair of equal irreps, in input-then-output order. equiforce's modules use
the same convention, so two layouts that list the same channels of each irrep in the same order — but
split into segments differently, or with different irreps interleaved (e3nn's ``Gate`` takes its inputs
sorted by irrep and merged: ``8x0o+24x0e+8x1o+8x1e`` where equiforce's gate reads
``8x0e+8x0o+16x0e+8x1e+8x1o``) — hold the same weights, re-cut. The 'element' normalisation is the same
for both: each output channel sums the same inputs.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import torch

from ..algebra import Irrep, Irreps

# e3nn's normalize2mom constants (its Monte-Carlo estimate with a fixed seed, as e3nn 0.5/0.6 compute
# them; ``tests/convert`` checks them against the installed e3nn), by activation name
NORMALIZE2MOM = {"silu": 1.6791767923989418, "sigmoid": 1.8467055342154763, "tanh": 1.5937334472592695}


def _channels(irreps: Irreps) -> Dict[Irrep, int]:
    out: Dict[Irrep, int] = {}
    for mul, ir in irreps:
        out[ir] = out.get(ir, 0) + mul
    return out


def _dense(weight: torch.Tensor, irreps_in: Irreps, irreps_out: Irreps, middle: int) -> List[torch.Tensor]:
    """Per input segment, the blocks of all output segments of its irrep side by side:
    ``[mul_in, middle, channels of that irrep]`` (``middle`` = 1 for a Linear)."""
    out, offset = [], 0
    for mul_in, ir_in in irreps_in:
        blocks = []
        for mul_out, ir_out in irreps_out:
            if ir_out == ir_in:
                size = mul_in * middle * mul_out
                blocks.append(weight[offset:offset + size].reshape(mul_in, middle, mul_out))
                offset += size
        out.append(torch.cat(blocks, dim=2) if blocks else weight.new_zeros(mul_in, middle, 0))
    if offset != weight.numel():
        raise ValueError(f"a weight of {weight.numel()} numbers does not fit {irreps_in} -> {irreps_out} "
                         f"({offset} expected)")
    return out


def _flat(dense: List[torch.Tensor], irreps_in: Irreps, irreps_out: Irreps) -> torch.Tensor:
    pieces = []
    for block, (mul_in, ir_in) in zip(dense, irreps_in):
        start = 0
        for mul_out, ir_out in irreps_out:
            if ir_out == ir_in:
                pieces.append(block[:, :, start:start + mul_out].reshape(-1))
                start += mul_out
    return torch.cat(pieces) if pieces else dense[0].new_zeros(0)


def _split_inputs(dense: List[torch.Tensor], theirs: Irreps, ours: Irreps) -> List[torch.Tensor]:
    """Input blocks of ``theirs`` segments re-cut into ``ours`` segments (same channels per irrep, same order)."""
    rows: Dict[Irrep, List[torch.Tensor]] = {}
    for block, (_, ir) in zip(dense, theirs):
        rows.setdefault(ir, []).append(block)
    merged = {ir: torch.cat(blocks, dim=0) for ir, blocks in rows.items()}
    taken: Dict[Irrep, int] = {}
    out = []
    for mul, ir in ours:
        start = taken.get(ir, 0)
        out.append(merged[ir][start:start + mul])
        taken[ir] = start + mul
    return out


def relayout(weight: torch.Tensor, theirs_in, theirs_out, ours_in, ours_out, middle: int = 1) -> torch.Tensor:
    """A flat e3nn weight for ``theirs_in -> theirs_out`` as the flat weight for ``ours_in -> ours_out``:
    the same channels of every irrep, in the same order, cut into segments differently."""
    theirs_in, theirs_out, ours_in, ours_out = (Irreps(x) for x in (theirs_in, theirs_out, ours_in, ours_out))
    if _channels(theirs_in) != _channels(ours_in) or _channels(theirs_out) != _channels(ours_out):
        raise ValueError(f"cannot re-lay weights for {theirs_in} -> {theirs_out} as {ours_in} -> {ours_out}: "
                         "they are not the same channels")
    dense = _split_inputs(_dense(weight, theirs_in, theirs_out, middle), theirs_in, ours_in)
    return _flat(dense, ours_in, ours_out)


def contract_middle(weight: torch.Tensor, irreps_in, irreps_out, table: torch.Tensor) -> torch.Tensor:
    """A tensor product's flat weight over ``irreps_in x (F x 0e) -> irreps_out`` with the second input
    given as rows of ``table [S, F]`` (a learned type embedding), as the weight over ``irreps_in x
    (S x 0e)`` with a one-hot second input: ``W'[u, s, w] = sum_f W[u, f, w] table[s, f]`` (the 'element'
    normalisations, 1/sqrt(mul F) and 1/sqrt(mul S), are accounted for: multiply by sqrt(S / F))."""
    irreps_in, irreps_out = Irreps(irreps_in), Irreps(irreps_out)
    num, features = table.shape
    dense = _dense(weight, irreps_in, irreps_out, features)
    scale = (num / features) ** 0.5
    contracted = [torch.einsum("ufw,sf->usw", block, table) * scale for block in dense]
    return _flat(contracted, irreps_in, irreps_out)


def e3nn_gate_input(irreps_scalars, irreps_gated) -> Irreps:
    """What e3nn's ``Gate`` takes for these scalars and gated features: scalars, one 0e gate per gated
    irrep, then the gated ones, sorted by irrep (stable) and merged."""
    gates = Irreps([(mul, "0e") for mul, _ in Irreps(irreps_gated)])
    return (Irreps(irreps_scalars) + gates + Irreps(irreps_gated)).sort()[0].simplify()


def sorted_paths(irreps_mid) -> Tuple[Irreps, List[int]]:
    """(``irreps_mid`` sorted and merged, as e3nn's ``Irreps.sort().irreps.simplify()``; the permutation)."""
    ordered, p, _ = Irreps(irreps_mid).sort()
    return ordered.simplify(), list(p)


def read_weights_only(path: Union[str, Path], what: str, allowed: Sequence = ()) -> object:
    """``torch.load(path, weights_only=True)`` with only ``allowed`` globals beyond torch's own: a file that
    needs any other object unpickled is refused with a ValueError naming ``what`` it should have been."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{path} cannot be read as a {what} without unpickling code or objects "
                         f"({exc.__class__.__name__}: {first[:300]}); equiforce refuses files that need it") from None


class PeerWeights:
    """A peer's state dict handed out by key: ``take`` returns an entry and counts it placed, ``used`` is
    the set of placed keys (add buffers known to change nothing), and ``check_all_placed`` refuses the
    conversion when anything is left, rather than dropping it."""

    def __init__(self, weights: Dict[str, torch.Tensor], peer: str) -> None:
        self.weights, self.peer, self.used = weights, peer, set()

    def take(self, key: str) -> torch.Tensor:
        if key not in self.weights:
            raise ValueError(f"the {self.peer} checkpoint has no {key!r}; it is not the architecture its config says")
        self.used.add(key)
        return self.weights[key]

    def check_all_placed(self) -> None:
        left = sorted(set(self.weights) - self.used)
        if left:
            raise ValueError(f"the {self.peer} checkpoint has weights the converter did not place: {left[:6]}"
                             f"{' ...' if len(left) > 6 else ''}; refusing rather than dropping them")
