"""Coulomb energy of point charges: a direct sum for open boundaries, Ewald summation for periodic cells.

Everything returns the electrostatic potential at each atom, ``phi_i`` (eV per elementary charge);
the energy is ``0.5 * sum_i q_i phi_i`` and ``0.5 q_i phi_i`` is atom i's share. Positions and the
cell enter differentiably, so forces (-dE/dr) and the virial (-dE/dstrain) follow by autograd, the
charges included when they depend on the geometry.

Ewald (tin-foil boundary conditions; a uniform neutralising background when the cell carries a net
charge) splits 1/r with ``erfc(alpha r)/r``: real-space pairs within ``cutoff`` and reciprocal
vectors with ``|k| <= 2 alpha sqrt(-ln accuracy)``, ``alpha = sqrt(-ln accuracy) / cutoff``, so both
truncation errors are about ``accuracy`` relative. Any triclinic cell, atoms anywhere.
"""
import math
from typing import List, Tuple

import torch


def _coulomb_constant() -> float:  # a function: TorchScript cannot read module-level floats
    return 14.399645478425668


#: e^2 / (4 pi epsilon_0) in eV Angstrom (CODATA 2018)
COULOMB_CONSTANT = _coulomb_constant()


def direct_potential(positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
    """phi_i = k sum_(j != i) q_j / r_ij over all pairs (open boundaries)."""
    n = positions.shape[0]
    diff = positions.unsqueeze(0) - positions.unsqueeze(1)
    eye = torch.eye(n, dtype=positions.dtype, device=positions.device)
    r = torch.sqrt((diff * diff).sum(-1) + eye)  # +1 on the diagonal: no 0/0 in the gradient
    inv = (1.0 - eye) / r
    return _coulomb_constant() * (inv @ charges)


def ewald_parameters(cell: torch.Tensor, cutoff: float, accuracy: float) -> Tuple[float, float, List[int]]:
    """(alpha, k_max, [n_a, n_b, n_c]): splitting parameter, reciprocal cutoff and the integer range
    per lattice direction that contains every k with |k| <= k_max (|m_a| <= k_max |a| / 2 pi)."""
    if not 0.0 < accuracy < 1.0 or cutoff <= 0.0:
        raise ValueError(f"Ewald needs 0 < accuracy < 1 and cutoff > 0, got {accuracy} and {cutoff}")
    s = math.sqrt(-math.log(accuracy))
    alpha = s / cutoff
    k_max = 2.0 * alpha * s
    lengths: List[float] = torch.linalg.vector_norm(cell.detach().double(), dim=1).tolist()
    counts: List[int] = [int(math.ceil(k_max * length / (2.0 * math.pi))) for length in lengths]
    return alpha, k_max, counts


def ewald_potential(positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, cutoff: float,
                    accuracy: float) -> torch.Tensor:
    """phi_i of a fully periodic cell (rows are lattice vectors) by Ewald summation."""
    dtype, device = positions.dtype, positions.device
    volume = torch.abs(torch.det(cell))
    if float(volume) <= 0.0:
        raise ValueError("Ewald summation needs a cell with non-zero volume")
    alpha, k_max, counts = ewald_parameters(cell, cutoff, accuracy)

    # real space: pairs (i, j, image) within the cutoff, each direction once per i
    pbc = torch.ones(3, dtype=torch.bool)
    i, j, shift = torch.ops.equiforce.neighbor_list(positions.detach().double().cpu(), cell.detach().double().cpu(),
                                                    pbc, cutoff, False)
    i, j, shift = i.to(device), j.to(device), shift.to(device=device, dtype=dtype)
    d = positions[j] - positions[i] + shift @ cell
    r = torch.linalg.vector_norm(d, dim=-1)
    phi_real = torch.zeros_like(charges).index_add(0, i, charges[j] * torch.erfc(alpha * r) / r)

    # reciprocal space: k = 2 pi m inv(cell)^T, 0 < |k| <= k_max
    axes = [torch.arange(-c, c + 1, dtype=dtype, device=device) for c in counts]
    m = torch.stack(torch.meshgrid([axes[0], axes[1], axes[2]], indexing="ij"), dim=-1).reshape(-1, 3)
    reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)
    k = m @ reciprocal
    k2 = (k * k).sum(-1)
    keep = (k2.detach() > 0) & (k2.detach() <= k_max * k_max)
    k, k2 = k[keep], k2[keep]
    weight = torch.exp(-k2 / (4.0 * alpha * alpha)) / k2
    phase = positions @ k.transpose(0, 1)  # [N, K]
    cos, sin = torch.cos(phase), torch.sin(phase)
    s_cos, s_sin = charges @ cos, charges @ sin  # structure factor, real and imaginary parts
    phi_recip = (4.0 * math.pi / volume) * ((cos * s_cos + sin * s_sin) @ weight)

    # self interaction, and the neutralising background of a charged cell
    phi_self = -2.0 * alpha / math.sqrt(math.pi) * charges
    phi_background = -math.pi / (volume * alpha * alpha) * charges.sum()
    return _coulomb_constant() * (phi_real + phi_recip + phi_self + phi_background)


def coulomb_potential(positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                      cutoff: float = 8.0, accuracy: float = 1e-6) -> torch.Tensor:
    """phi_i for open (no pbc) or fully periodic structures; mixed boundaries (slabs, wires) are
    refused, since neither sum is right for them."""
    periodic = int(pbc.to(torch.long).sum())
    if periodic == 0:
        return direct_potential(positions, charges)
    if periodic == 3:
        return ewald_potential(positions, charges, cell, cutoff, accuracy)
    raise ValueError("long-range electrostatics handles open or fully periodic structures, not a mix (slab or "
                     "wire); make the cell periodic in all three directions (with vacuum) or open in all")
