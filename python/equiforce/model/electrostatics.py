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


def reciprocal_vectors(cell: torch.Tensor, alpha: float, k_max: float,
                       counts: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Ewald's reciprocal vectors k = 2 pi m inv(cell)^T with 0 < |k| <= k_max, [K, 3], and their weights
    exp(-k^2 / 4 alpha^2) / k^2, [K] (differentiable in the cell; the set is the unstrained cell's)."""
    dtype, device = cell.dtype, cell.device
    axes = [torch.arange(-c, c + 1, dtype=dtype, device=device) for c in counts]
    m = torch.stack(torch.meshgrid([axes[0], axes[1], axes[2]], indexing="ij"), dim=-1).reshape(-1, 3)
    k = m @ (2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1))
    k2 = (k * k).sum(-1)
    keep = (k2.detach() > 0) & (k2.detach() <= k_max * k_max)
    k, k2 = k[keep], k2[keep]
    return k, torch.exp(-k2 / (4.0 * alpha * alpha)) / k2


def phases(positions: torch.Tensor, k: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos(k.r_i) and sin(k.r_i), [N, K] each."""
    phase = positions @ k.transpose(0, 1)
    return torch.cos(phase), torch.sin(phase)


def structure_factor(cos: torch.Tensor, sin: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
    """[2, K]: sum_i q_i cos(k.r_i) and sum_i q_i sin(k.r_i) over the atoms given (partial sums add up)."""
    return torch.stack([charges @ cos, charges @ sin])


def reciprocal_potential(cos: torch.Tensor, sin: torch.Tensor, weight: torch.Tensor, structure: torch.Tensor,
                         volume: torch.Tensor) -> torch.Tensor:
    """The reciprocal-space phi_i / k_e of the atoms whose phases are given, from the whole structure's factor."""
    return (4.0 * math.pi / volume) * ((cos * structure[0] + sin * structure[1]) @ weight)


def real_space_potential(vec: torch.Tensor, charges_of_src: torch.Tensor, edge_dst: torch.Tensor, num_out: int,
                         alpha: float) -> torch.Tensor:
    """The real-space phi_i / k_e of the receivers [num_out]: sum over pairs j -> i of q_j erfc(alpha r) / r."""
    r = torch.linalg.vector_norm(vec, dim=-1)
    return torch.zeros(num_out, dtype=vec.dtype, device=vec.device).index_add(
        0, edge_dst, charges_of_src * torch.erfc(alpha * r) / r)


def local_terms(charges: torch.Tensor, charge_sum: torch.Tensor, alpha: float, volume: torch.Tensor) -> torch.Tensor:
    """phi_i / k_e of the self interaction and of the neutralising background of a cell carrying charge_sum."""
    return -2.0 * alpha / math.sqrt(math.pi) * charges - math.pi / (volume * alpha * alpha) * charge_sum


def reciprocal_virial(k: torch.Tensor, weight: torch.Tensor, structure: torch.Tensor, volume: torch.Tensor,
                      alpha: float, charge_sum: torch.Tensor) -> torch.Tensor:
    """-dE/dstrain [3, 3] of the reciprocal and background energies (eV), from the whole structure's factor:
    k.r is invariant under strain, so only the volume and |k| change."""
    e_k = _coulomb_constant() * (2.0 * math.pi / volume) * weight * (structure * structure).sum(0)  # [K]
    k2 = (k * k).sum(-1)
    scale = 2.0 * (1.0 / (4.0 * alpha * alpha) + 1.0 / k2)
    eye = torch.eye(3, dtype=k.dtype, device=k.device)
    e_background = -_coulomb_constant() * math.pi * charge_sum * charge_sum / (2.0 * volume * alpha * alpha)
    return (e_k.sum() + e_background) * eye - (k * (e_k * scale).unsqueeze(-1)).transpose(0, 1) @ k


def ewald_potential(positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, cutoff: float,
                    accuracy: float) -> torch.Tensor:
    """phi_i of a fully periodic cell (rows are lattice vectors) by Ewald summation."""
    device = positions.device
    volume = torch.abs(torch.det(cell))
    if float(volume) <= 0.0:
        raise ValueError("Ewald summation needs a cell with non-zero volume")
    alpha, k_max, counts = ewald_parameters(cell, cutoff, accuracy)

    # real space: pairs (i, j, image) within the cutoff, each direction once per i
    pbc = torch.ones(3, dtype=torch.bool)
    i, j, shift = torch.ops.equiforce.neighbor_list(positions.detach().double().cpu(), cell.detach().double().cpu(),
                                                    pbc, cutoff, False)
    i, j, shift = i.to(device), j.to(device), shift.to(device=device, dtype=positions.dtype)
    phi_real = real_space_potential(positions[j] - positions[i] + shift @ cell, charges[j], i, positions.shape[0],
                                    alpha)
    k, weight = reciprocal_vectors(cell, alpha, k_max, counts)
    cos, sin = phases(positions, k)
    phi_recip = reciprocal_potential(cos, sin, weight, structure_factor(cos, sin, charges), volume)
    return _coulomb_constant() * (phi_real + phi_recip + local_terms(charges, charges.sum(), alpha, volume))


# Ewald summation of a structure spread over processes (LAMMPS on several MPI ranks): each process holds its
# own atoms and ghost copies of the others' out to the real-space cutoff. The structure factor is a sum over
# atoms, so the processes add up their partial sums (ewald_partial_structure) and each then evaluates its own
# atoms' potential and its share of the forces (ewald_share): the same numbers as ewald_potential.
def ewald_partial_structure(positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, cutoff: float,
                            accuracy: float) -> torch.Tensor:
    """[2 K + 1]: these atoms' structure factor (cos parts, sin parts) and their charges' sum."""
    alpha, k_max, counts = ewald_parameters(cell, cutoff, accuracy)
    k, _ = reciprocal_vectors(cell, alpha, k_max, counts)
    cos, sin = phases(positions, k)
    return torch.cat([structure_factor(cos, sin, charges).reshape(-1), charges.sum().reshape(1)])


def ewald_share(positions: torch.Tensor, num_local: int, charges: torch.Tensor, pair_src: torch.Tensor,
                pair_dst: torch.Tensor, pair_shift: torch.Tensor, structure: torch.Tensor, cell: torch.Tensor,
                cutoff: float, accuracy: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One process's part of the Ewald sum. ``positions [N, 3]`` and ``charges [N]``: its atoms
    ``[0, num_local)`` then its ghosts; pairs: every pair within ``cutoff`` into its atoms, vec =
    pos[src] - pos[dst] + shift (a sender may be a ghost, or one of its atoms with an image's shift);
    ``structure``: the whole structure's [2 K + 1] (every process's partial sums added).

    Returns phi [num_local] (eV/e; dE/dq_i = phi_i), forces [N, 3] at fixed charges — the reciprocal
    forces on its atoms and half of each pair's (the other half is counted where the pair's other atom
    is local) — the virial of those half pairs [3, 3], and the whole structure's reciprocal and
    background virial [3, 3] (count it once)."""
    alpha, k_max, counts = ewald_parameters(cell, cutoff, accuracy)
    volume = torch.abs(torch.det(cell))
    k, weight = reciprocal_vectors(cell, alpha, k_max, counts)
    num_k = k.shape[0]
    factor, charge_sum = structure[:2 * num_k].reshape(2, num_k), structure[2 * num_k]
    q = charges.detach()
    own = q[:num_local]
    pos = positions[:num_local].detach().requires_grad_(True)
    vec = (positions[pair_src] - positions[pair_dst] + pair_shift).detach().requires_grad_(True)
    phi_real = real_space_potential(vec, q[pair_src], pair_dst, num_local, alpha)
    cos, sin = phases(pos, k)
    phi_recip = reciprocal_potential(cos, sin, weight, factor, volume)
    surrogate = _coulomb_constant() * ((0.5 * own * phi_real).sum() + (own * phi_recip).sum())
    grads = torch.autograd.grad([surrogate], [vec, pos], allow_unused=True)
    grad_vec, grad_pos = grads[0], grads[1]
    g_vec = torch.zeros_like(vec) if grad_vec is None else grad_vec
    g_pos = torch.zeros_like(pos) if grad_pos is None else grad_pos
    forces = torch.zeros_like(positions).index_add(0, pair_src, -g_vec).index_add(0, pair_dst, g_vec)
    forces = forces.index_add(0, torch.arange(num_local, device=positions.device), -g_pos)
    phi = _coulomb_constant() * (phi_real + phi_recip + local_terms(own, charge_sum, alpha, volume))
    return (phi.detach(), forces, -(vec.detach().transpose(0, 1) @ g_vec),
            reciprocal_virial(k, weight, factor, volume, alpha, charge_sum).detach())


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
