"""Structures no model can evaluate, refused with one line that says what is wrong.

The same checks, with the same wording, run in the C++ runtime for LAMMPS and OpenMM
(``equiforce::runtime::check_structure`` / ``check_edges`` in csrc/runtime/model.h).
"""
import torch

MIN_DISTANCE = 0.1
"""Atoms closer than this (Angstrom) are refused: at zero distance the edge direction is undefined (NaN
energies and forces), and well before it a model is far outside anything it was trained on."""


def _first_bad_row(x: torch.Tensor) -> int:
    bad = ~torch.isfinite(x).reshape(x.shape[0], -1).all(1)
    return int(bad.nonzero()[0, 0]) if bool(bad.any()) else -1


def check_structure(positions: torch.Tensor, cell: torch.Tensor, pbc) -> None:
    """ValueError for non-finite positions or cell, a periodic cell without independent vectors, or two
    atoms (or an atom and its own periodic image) closer than :data:`MIN_DISTANCE`, naming the atoms
    (indices into ``positions``) and their distance."""
    positions = torch.as_tensor(positions).detach()
    row = _first_bad_row(positions)
    if row >= 0:
        raise ValueError(f"positions[{row}] is not finite (NaN or inf); check the structure (in MD: the "
                         "trajectory blew up earlier)")
    cell = torch.as_tensor(cell, dtype=torch.float64).detach().cpu().reshape(3, 3)
    if _first_bad_row(cell) >= 0:
        raise ValueError("the cell is not finite (NaN or inf)")
    pbc = torch.as_tensor(pbc, dtype=torch.bool).cpu().expand(3)
    pos = positions.to(torch.float64)
    try:
        i, j, s = torch.ops.equiforce.neighbor_list(pos, cell, pbc, MIN_DISTANCE, False)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(str(exc).split("\n")[0].replace("equiforce::neighbor_list: ", "")) from None
    if i.numel() == 0:
        return
    r = torch.linalg.vector_norm(pos[j] - pos[i] + s.to(pos.device, torch.float64) @ cell.to(pos.device), dim=1)
    k = int(torch.argmin(r))
    a, b, d = int(i[k]), int(j[k]), float(r[k])
    what = f"atom {a} is {d:.4g} A from its own periodic image (the cell is far too small)" if a == b else \
        f"atoms {a} and {b} are {d:.4g} A apart"
    raise ValueError(f"{what}, closer than {MIN_DISTANCE:g} A: overlapping atoms; check the structure")
