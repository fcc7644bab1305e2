"""The deployed model run stage by stage, with node features exchanged between layers.

This is the algorithm of the C++ runtime's ``Model::compute_exchanged`` (what ``pair_style equiforce``
runs on several MPI ranks), in Python, so that it can be tested against the whole-model contract on
one process: :func:`images_as_ghosts` turns a periodic structure into local atoms plus ghost copies
(as a rank holds them), and the exchange callbacks copy owners' rows into ghosts (forward) and add
ghosts' gradients into their owners (reverse) — what LAMMPS's forward and reverse communication do
across ranks.

Each layer updates the local nodes only, from edges into them (ghosts within r_max suffice); its
inputs are leaves, so the backward runs layer by layer: the gradient of a layer's input features
arrives on local and ghost rows, the ghost rows go back to their owners, and the owners' total is
the gradient of the previous layer's output. Per-edge harmonics and radial bases are computed once
and their gradients summed over the layers before one backward to the edge vectors.
"""
from typing import Callable, List, Optional, Tuple

import torch

Exchange = Callable[[torch.Tensor, int, int], torch.Tensor]


def staged_outputs(module, positions: torch.Tensor, species: torch.Tensor, edge_src: torch.Tensor,
                   edge_dst: torch.Tensor, edge_shift: torch.Tensor, num_local: int, forward: Exchange,
                   reverse: Exchange, members: int = 1, all_gather=None, cell: Optional[torch.Tensor] = None,
                   pbc: Optional[torch.Tensor] = None, all_reduce=None,
                   pairs: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None) -> Tuple[torch.Tensor, ...]:
    """``(energy, per-atom energies [N], forces [N, 3], virial [3, 3], per-atom virials [N, 3, 3])``
    (committees: the members' means, then their energies [M] and forces [M, N, 3]), with every edge's
    receiver local. ``forward(x [N, F], member, layer)`` returns x with its ghost rows ``[num_local, N)``
    filled from their owners; ``reverse(g [N, F], member, layer)`` returns the local rows ``[num_local]``
    with the ghost rows' gradients added to their owners'.

    Long-range models also need ``all_gather(rows [num_local, 4]) -> (rows of every process [N_total, 4]
    in one order, the positions of this process's rows in it)`` — each local atom's position and raw
    charge — and the structure's ``cell`` and ``pbc``: every process evaluates the whole structure's
    Coulomb term and keeps its atoms' shares, forces and dE/d(raw charge), which joins the gradient of
    the last layer's features; the long-range virial is counted by the process holding the first row,
    and per atom it is spread over all atoms.

    Periodic long-range models need no gathering when given ``pairs = (src, dst, shift)`` — every pair
    within the model's ``ewald_cutoff`` into the local atoms, ghosts that far included among the nodes —
    and ``all_reduce(values [V]) -> their sums over processes`` (float64): :func:`ewald_exchanged`."""
    dtype = torch.float64 if module.metadata()["dtype"] == "float64" else torch.float32
    positions = positions.to(dtype)
    n = positions.shape[0]
    vec = (positions[edge_src] - positions[edge_dst] + edge_shift.to(dtype)).detach().requires_grad_(True)
    num_layers = int(module.metadata()["num_layers"])
    long_range = module.metadata().get("long_range", "none") != "none"
    energies: List[torch.Tensor] = []
    results = []
    for m in range(members):
        sh, radial = module.stage_edges(m, vec)
        sh_in, radial_in = sh.detach().requires_grad_(True), radial.detach().requires_grad_(True)
        x = module.stage_embedding(m, species)
        inputs, outputs = [], []
        for k in range(num_layers):
            x_in = x.detach().requires_grad_(k > 0)  # the embedding has no gradient to take
            y = module.stage_layer(m, k, x_in, species, sh_in, radial_in, edge_src, edge_dst, num_local)
            inputs.append(x_in)
            outputs.append(y)
            if k + 1 < num_layers:
                full = torch.cat([y.detach(), y.new_zeros(n - num_local, y.shape[1])])
                x = forward(full, m, k)
        last = outputs[-1].detach().requires_grad_(True)
        atomic = module.stage_readout(m, last, species)
        coulomb = None
        if long_range:
            raw = module.stage_charges(m, last)
            if pairs is not None:
                coulomb = ewald_exchanged(module, positions, raw.detach(), num_local, pairs, cell, forward, all_reduce)
            else:
                coulomb = _coulomb_gathered(module, positions, raw.detach(), num_local, cell, pbc, all_gather)
            (g,) = torch.autograd.grad([atomic, raw], [last], [torch.ones_like(atomic), coulomb[4].to(raw.dtype)])
        else:
            (g,) = torch.autograd.grad([atomic.sum()], [last])
        energy = atomic.to(torch.float64).sum()
        g_sh, g_radial = torch.zeros_like(sh), torch.zeros_like(radial)
        for k in range(num_layers - 1, -1, -1):
            wrt = [sh_in, radial_in] + ([inputs[k]] if k > 0 else [])
            grads = torch.autograd.grad([outputs[k]], wrt, [g], allow_unused=True)
            if grads[0] is not None:
                g_sh = g_sh + grads[0]
            if grads[1] is not None:
                g_radial = g_radial + grads[1]
            if k > 0:
                g_x = grads[2] if grads[2] is not None else torch.zeros_like(inputs[k])
                g = reverse(g_x, m, k - 1)
        (g_vec,) = torch.autograd.grad([sh, radial], [vec], [g_sh, g_radial], allow_unused=True)
        if g_vec is None:
            g_vec = torch.zeros_like(vec)
        forces, virial, atom_virials = module.stage_forces(vec.detach(), g_vec, edge_src, edge_dst, n)
        atomic_all = torch.cat([atomic.detach().to(torch.float64),
                                atomic.new_zeros(n - num_local, dtype=torch.float64)])
        if coulomb is not None:
            atomic_all[:num_local] += coulomb[0]
            energy = energy + coulomb[0].sum()
            forces = forces + coulomb[1].to(forces.dtype)
            virial = virial + coulomb[2].to(virial.dtype)
            atom_virials = atom_virials.clone()
            atom_virials[:num_local] += coulomb[3].to(atom_virials.dtype)
        energies.append(energy.detach())
        results.append((atomic_all, forces, virial, atom_virials))
    mean = [torch.stack([r[i] for r in results]).mean(0) for i in range(4)]
    energy = torch.stack(energies)
    out = (energy.mean(0), mean[0], mean[1], mean[2], mean[3])
    if members > 1:
        out = out + (energy, torch.stack([r[1] for r in results]))
    return out


def _coulomb_gathered(module, positions, raw, num_local, cell, pbc, all_gather):
    """(energies [n], forces [N, 3], virial, per-atom virial, dE/draw [n]) with every atom gathered."""
    rows = torch.cat([positions[:num_local].detach().to(torch.float64), raw.to(torch.float64).unsqueeze(1)], 1)
    everything, mine = all_gather(rows)
    e_c, f_c, w_c, g_raw = module.stage_coulomb(everything[:, :3], everything[:, 3], cell, pbc)
    first = bool((mine == 0).any())  # the process holding the first atom counts the Coulomb virial
    forces = f_c.new_zeros(positions.shape[0], 3)
    forces[:num_local] = f_c[mine]
    return (e_c[mine].to(torch.float64), forces, w_c if first else torch.zeros_like(w_c), w_c / everything.shape[0],
            g_raw[mine])


def ewald_exchanged(module, positions: torch.Tensor, raw: torch.Tensor, num_local: int,
                    pairs: Tuple[torch.Tensor, torch.Tensor, torch.Tensor], cell: torch.Tensor, forward: Exchange,
                    all_reduce) -> Tuple[torch.Tensor, ...]:
    """A periodic structure's Ewald term with its structure factor summed over processes and the real-space
    pairs over ghosts (DeployedPotential.stage_ewald_*): (energies [n], forces [N, 3], this process's share
    of the virial, the per-atom virial (the whole Coulomb virial over all atoms), dE/draw [n]). Four
    collective calls, in this order: all_reduce, all_reduce, forward (the charges, width 1), all_reduce."""
    dtype = positions.dtype
    totals = all_reduce(torch.tensor([float(raw.to(torch.float64).sum()), float(num_local)], dtype=torch.float64))
    q, partial = module.stage_ewald_structure(positions[:num_local], raw, totals, cell)
    structure = all_reduce(partial.detach().to(torch.float64))
    q_nodes = torch.zeros(positions.shape[0], 1, dtype=torch.float64)
    q_nodes[:num_local, 0] = q.to(torch.float64)
    q_nodes = forward(q_nodes, 0, -1)[:, 0]
    src, dst, shift = pairs
    phi, forces, virial_pairs, virial_structure = module.stage_ewald(
        positions, num_local, q_nodes.to(dtype), src, dst, shift.to(dtype), structure.to(dtype), cell.to(dtype))
    q64 = q.detach().to(torch.float64)
    sums = all_reduce(torch.cat([phi.detach().to(torch.float64).sum().reshape(1),
                                 virial_pairs.detach().to(torch.float64).reshape(9),
                                 torch.stack([q64.sum(), q64.abs().sum()])]))
    _check_total_charge(float(sums[10]), float(sums[11]), float(module.metadata()["total_charge"]), dtype)
    atoms = float(totals[1])
    virial_all = sums[1:10].reshape(3, 3) + virial_structure.to(torch.float64)
    return (0.5 * q.to(torch.float64) * phi.to(torch.float64), forces,
            virial_pairs + virial_structure * (num_local / atoms), virial_all.to(dtype) / atoms,
            phi - float(sums[0]) / atoms)


def _check_total_charge(total: float, magnitude: float, expected: float, dtype: torch.dtype) -> None:
    """The charges summed over processes equal the model's total charge (each process shifted its raw
    charges by the same amount): otherwise the processes disagree about the structure."""
    tol = (1e-4 if dtype == torch.float32 else 1e-9) * max(1.0, magnitude)
    if not abs(total - expected) <= tol:
        raise RuntimeError(f"equiforce: the charges sum to {total:.12g} e over all processes, not the model's total "
                           f"charge {expected:.12g} e: the processes disagree about the atoms they own (every atom "
                           f"must be owned by exactly one process)")


def images_as_ghosts(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                     r_max: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A periodic structure as one rank would hold it if it owned every atom but did not fold periodic
    images onto them: ``(positions [N + G, 3], owner [N + G], edge_src, edge_dst)`` with the N atoms
    first, one ghost node per periodic image that is a neighbour, and edges into the N atoms only
    (edge shifts zero: the ghosts sit at the images' positions)."""
    from ..model.predict import radius_graph

    src, dst, shift = radius_graph(positions, cell, pbc, r_max)
    n = positions.shape[0]
    imaged = shift.abs().sum(-1) > 0
    keys = {}
    owner = list(range(n))
    ghost_pos = []
    new_src = src.clone()
    for e in torch.nonzero(imaged).flatten().tolist():
        key = (int(src[e]), tuple(round(float(v), 9) for v in shift[e]))
        if key not in keys:
            keys[key] = n + len(ghost_pos)
            ghost_pos.append(positions[src[e]] + shift[e])
            owner.append(int(src[e]))
        new_src[e] = keys[key]
    all_pos = torch.cat([positions] + [p.unsqueeze(0) for p in ghost_pos]) if ghost_pos else positions
    return all_pos, torch.tensor(owner), new_src, dst
