"""``equiforce eval MODEL DATA``: errors of an exported model on a labelled data set."""
from typing import Dict

import numpy as np
import torch

from ..data import read_structures


def evaluate_file(module, meta, path, energy_key="energy", forces_key="forces", dipole_key=None,
                  polarizability_key=None) -> Dict[str, float]:
    """MAE and RMSE of energy (eV, per structure and per atom), forces (eV/A) and, for models with
    those outputs and data with those labels, dipole (e A) and polarizability components; plus counts.
    Whatever labels the file has are scored (a key of None skips a label; frames without it are
    counted out): energy-only files such as scans work. When every frame has an energy and the same
    composition (a scan: dihedral, bond stretch, normal mode), also the error of the energy curve
    relative to its own minimum, ``relative_energy_mae``/``_rmse`` (each curve minus its own lowest value).
    For a committee also the mean per-atom ``force_std`` and how well it ranks the atoms' actual force
    errors (|F_pred - F_ref| per atom): Pearson and Spearman correlation."""
    lookup = {s: n for n, s in enumerate(meta["species"].split())}
    outputs = meta.get("outputs", "").split()
    for key, name in ((dipole_key, "dipole"), (polarizability_key, "polarizability")):
        if key and name not in outputs:
            raise ValueError(f"the model has no {name} output (its outputs: {outputs or ['energy', 'forces']})")
    e_err, e_atom, f_err, f_std, e_pred, e_ref, compositions = [], [], [], [], [], [], set()
    committee = "committee_size" in meta
    extra_err = {"dipole": [], "polarizability": []}
    structures = read_structures(path, energy_key=energy_key, forces_key=forces_key, dipole_key=dipole_key,
                                 polarizability_key=polarizability_key, required=False)
    for s in structures:
        missing = sorted(set(s.symbols) - set(lookup))
        if missing:
            raise ValueError(f"{path}: elements {missing} are unknown to the model ({meta['species']})")
        species = torch.tensor([lookup[x] for x in s.symbols])
        inputs = (torch.tensor(s.positions), species, torch.tensor(s.cell), torch.tensor(s.pbc))
        if committee:
            from .committee import committee_spread

            out = module.compute_committee(*inputs)
            e, f = out[0], out[2]
            if s.forces is not None:  # paired with the force errors below
                f_std.append(committee_spread(out[5], out[6])[1].double().numpy())
        else:
            e, _, f = module.compute(*inputs)[:3]
        if s.energy is not None:
            e_pred.append(float(e))
            e_ref.append(s.energy)
            compositions.add(tuple(sorted(s.symbols)))
            e_err.append(float(e) - s.energy)
            e_atom.append((float(e) - s.energy) / len(s))
        if s.forces is not None:
            f_err.append((f.double().numpy() - s.forces).ravel())
        if dipole_key or polarizability_key:
            props = module.properties(torch.tensor(s.positions), species, torch.tensor(s.cell), torch.tensor(s.pbc))
            for name, label in (("dipole", s.dipole), ("polarizability", s.polarizability)):
                if label is not None:
                    extra_err[name].append((props[name].double().numpy() - label).ravel())
    labelled = {"energy": len(e_err), "forces": len(f_err), **{k: len(v) for k, v in extra_err.items()}}
    if not any(labelled.values()):
        keys = [k for k in (energy_key, forces_key, dipole_key, polarizability_key) if k]
        raise ValueError(f"{path}: none of its {len(structures)} frames has any of the labels {keys}; name the "
                         "keys the file uses (--energy-key, --forces-key, ...; 'none' skips a label)")
    out = {"structures": len(structures), **{f"{k}_labelled": n for k, n in labelled.items() if n}}
    relative = np.array([])
    if len(e_err) == len(structures) > 1 and len(compositions) == 1:
        e_pred_arr, e_ref_arr = np.array(e_pred), np.array(e_ref)
        relative = (e_pred_arr - e_pred_arr.min()) - (e_ref_arr - e_ref_arr.min())
    for name, errs in (("energy", np.array(e_err)), ("energy_per_atom", np.array(e_atom)),
                       ("relative_energy", relative),
                       ("forces", np.concatenate(f_err) if f_err else np.array([])),
                       *((k, np.concatenate(v)) for k, v in extra_err.items() if v)):
        if errs.size:
            out[f"{name}_mae"] = float(np.abs(errs).mean())
            out[f"{name}_rmse"] = float(np.sqrt((errs ** 2).mean()))
    if f_std and f_err:
        from scipy.stats import spearmanr

        std = np.concatenate(f_std)
        per_atom_error = np.linalg.norm(np.concatenate(f_err).reshape(-1, 3), axis=1)
        out["force_std_mean"] = float(std.mean())
        out["force_std_error_pearson"] = float(np.corrcoef(std, per_atom_error)[0, 1])
        out["force_std_error_spearman"] = float(spearmanr(std, per_atom_error)[0])
    return out
