"""Fine-tuning: start training from a trained or converted model (``model.init_from``).

The checkpoint fixes the architecture, its weights (the EMA weights), its message normaliser and its
per-species scale. Three things may change:

- **new elements**: ``model.species`` may name elements the checkpoint lacks. They are appended (the
  checkpoint's species keep their indices); their rows of the species embedding and of the
  species self-connection start at zero, and the existing rows are rescaled so that every output
  for the old elements stays exactly what it was (both layers divide by sqrt(fan-in), which grows).
- **the energy reference**: the training data's energies may be on another reference (another DFT
  code, basis, pseudopotentials). ``training.energy_reference: refit`` (the default when
  fine-tuning) moves each species' shift: to the data's isolated-atom energy where
  ``data.isolated_atoms_file`` gives one, else by the least-squares fit of the data's residual
  ``E_ref - E_model`` on the composition (with a warning when the compositions cannot separate the
  elements); ``keep`` leaves the shifts as they are.
- **what trains**: ``training.freeze`` lists parameter-name prefixes (``embedding``, ``layers.0``,
  ``layers.1.radial``, ``readout`` ...) that stay fixed; ``training.lr`` defaults to 1e-3 when
  fine-tuning (1e-2 from scratch).
"""
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..model import EquiForceModel, predict
from .checkpoint import is_deployed_file, load_checkpoint

ENERGY_REFERENCES = ("refit", "keep")


def initial_model(path, species: Sequence[str] = (), dtype: str = "float32") -> Tuple[EquiForceModel, Dict]:
    """The model of checkpoint ``path`` (EMA weights), grown to also know ``species``; returns it and
    its config (what the new checkpoints record). ``path`` is an equiforce training checkpoint: one
    written by ``equiforce train`` or by ``equiforce convert SOURCE -o model.ckpt``."""
    path = Path(path)
    if is_deployed_file(path):
        raise ValueError(f"model.init_from must be a training checkpoint, not a deployed model ({path}); make "
                         "one with `equiforce convert SOURCE -o model.ckpt`, or use the checkpoint the deployed "
                         "file was made from (a run's best.pt or last.pt)")
    state = load_checkpoint(path)
    config = dict(state["model_config"])
    old = EquiForceModel.from_config(config)
    old.load_state_dict(state["ema"])
    added = [s for s in dict.fromkeys(species) if s not in old.species]
    config["species"] = list(old.species) + added
    config["dtype"] = dtype
    source = dict(config.get("source") or {})
    source["fine_tuned_from"] = f"{path.name} ({' '.join(old.species) if len(old.species) <= 12 else f'{len(old.species)} elements'})"
    config["source"] = source
    model = EquiForceModel.from_config(config)
    grow_species(old, model)
    model.source = dict(source)
    return model, config


def grow_species(old: EquiForceModel, new: EquiForceModel) -> None:
    """Copy ``old``'s weights into ``new``, whose species are ``old.species`` plus some appended.
    Species-indexed weights get zero rows for the new elements; the old rows are multiplied by the
    ratio of the two layers' path normalisations, so old elements' outputs are unchanged."""
    n_old = len(old.species)
    if list(new.species[:n_old]) != list(old.species):
        raise ValueError("the new model's species must start with the checkpoint's, in its order")
    species_layers = {"embedding": (old.embedding, new.embedding, "i_in1", 0)}
    for k, (a, b) in enumerate(zip(old.layers, new.layers)):
        if a.self_connection is not None:
            species_layers[f"layers.{k}.self_connection"] = (a.self_connection, b.self_connection, "i_in2", 1)
    state = old.state_dict()
    target = new.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            prefix = key.rsplit(".", 1)[0]
            if prefix in species_layers and key.endswith(".weight"):
                continue
            if key in ("energy_shift", "energy_scale"):
                grown = target[key].clone()
                grown[:n_old] = value
                grown[n_old:] = 0.0 if key == "energy_shift" else value.mean()
                target[key] = grown
            elif target[key].shape != value.shape:
                raise ValueError(f"cannot grow {key}: {tuple(value.shape)} -> {tuple(target[key].shape)}")
            else:
                target[key] = value.clone()
        for prefix, (a, b, field, axis) in species_layers.items():
            weight = torch.zeros_like(target[f"{prefix}.weight"])
            views = list(b.weight_views(weight, yield_instruction=True))
            for (ins_a, view_a), (ins_b, view_b) in zip(a.weight_views(yield_instruction=True), views):
                if getattr(ins_b, field) == 0:  # a path that reads the species one-hot
                    ratio = ins_a.path_weight / ins_b.path_weight
                    view_b.narrow(axis, 0, n_old).copy_(view_a * ratio)
                else:
                    view_b.copy_(view_a * (ins_a.path_weight / ins_b.path_weight))
            target[f"{prefix}.weight"] = weight
    new.load_state_dict(target)


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> List[str]:
    """Stop training the parameters whose names start with one of ``prefixes`` (a name or a dotted
    prefix: ``layers.0`` freezes layer 0, not layer 10). Returns the frozen names; a prefix that
    matches nothing is an error that lists the model's modules."""
    names = [name for name, _ in model.named_parameters()]
    frozen = []
    for prefix in prefixes:
        prefix = str(prefix).rstrip(".")
        hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({".".join(n.split(".")[:2]) if n.startswith("layers.") else n.split(".")[0] for n in names})
            raise ValueError(f"training.freeze: {prefix!r} matches no parameter; the model's are {tops}")
        frozen += hits
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    return frozen


def isolated_atom_energies(model: EquiForceModel) -> torch.Tensor:
    """The model's energy of each of its species alone (no neighbours) [S]."""
    dtype = model.energy_shift.dtype
    species = torch.arange(len(model.species))
    none = torch.zeros(0, dtype=torch.long)
    with torch.no_grad():
        return torch.stack([model(torch.zeros(0, 3, dtype=dtype), species[s:s + 1], none, none)[0]
                            for s in range(len(species))]).double()


def refit_energy_reference(model: EquiForceModel, graphs, batches, isolated=None) -> torch.Tensor:
    """Move ``model.energy_shift`` onto the data's energy reference; returns the correction [S] (eV per
    atom of each species). Species with a reference isolated-atom energy (``isolated[s]``, e.g. from
    ``data.isolated_atoms_file``) get the difference between it and the model's lone atom; the others
    present in ``graphs`` get the least-squares fit, on the composition, of the remaining residual
    ``E_ref - E_model`` (``batches`` yields ``graphs`` collated). Species absent keep their shift."""
    num_species = len(model.species)
    correction = np.zeros(num_species)
    isolated = list(isolated or [None] * num_species)
    given = np.array([e is not None for e in isolated])
    if given.any():
        lone = isolated_atom_energies(model).numpy()
        correction[given] = np.array([e for e in isolated if e is not None]) - lone[given]
    counts, residual = [], []
    with torch.no_grad():
        for batch in batches:
            if batch.energy is None:
                continue
            pred = predict(model, batch, forces=False)
            residual.append((batch.energy.double() - pred["energy"].detach().double()).numpy())
    for g in graphs:
        if g.energy is not None:
            counts.append(np.bincount(g.species.numpy(), minlength=num_species))
    if residual:
        a, rest = np.asarray(counts, dtype=np.float64), np.concatenate(residual)
        rest = rest - a @ correction
        fit = (a.sum(0) > 0) & ~given
        if fit.any():
            a = a[:, fit]
            if np.linalg.matrix_rank(a) < a.shape[1]:
                print(f"[train] warning: the training energies cannot tell the reference energies of "
                      f"{[model.species[s] for s in np.flatnonzero(fit)]} apart (too few distinct compositions); "
                      "the split between them is arbitrary and energies of other compositions will be offset. "
                      "Give data.isolated_atoms_file to fix each element's reference.", file=sys.stderr)
            # ridge-regularised (unique when every frame has one composition, as MD of one molecule)
            ridge = 1e-8 * max(float(np.trace(a.T @ a)), 1.0)
            correction[fit] = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ rest)
    correction = torch.tensor(correction)
    with torch.no_grad():
        model.energy_shift.add_(correction.to(model.energy_shift.dtype))
    return correction
