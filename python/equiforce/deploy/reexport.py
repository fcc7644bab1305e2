"""``equiforce deploy OLD.pt --config TRAINING.yaml -o NEW.pt``: export a deployed TorchScript file
again with this equiforce, without its training checkpoint.

A deployed file carries the trained weights but not every hyperparameter, so the model section of its
training config says what was built; the rest comes from the file: the dtype (metadata), the weights
(its state dict, every name and shape required to match) and the neighbour normalisation each layer
was given at training time (``avg_num_neighbors``, measured on the training set). The new file is
then checked against the old one on random structures — energies, per-atom energies, forces, virials
and every extra head, open and periodic — and refused when they differ: a config that does not describe
the file never yields a different model. What it gains: whatever the current export adds (the stages
for LAMMPS's per-layer exchange and the split Ewald sum, newer metadata).
"""
from pathlib import Path
from typing import Dict, List, Union

import numpy as np
import torch

from ..model import EquiForceModel


def _members(module, meta: Dict[str, str]) -> List:
    size = int(meta.get("committee_size", "1"))
    if size == 1:
        return [module.model]
    return [getattr(module.members, str(k)).model for k in range(size)]


def _rebuilt(scripted, config: Dict, dtype: str, path: Path) -> EquiForceModel:
    model = EquiForceModel.from_config({**config, "dtype": dtype})
    state = scripted.state_dict()  # parameters and every buffer, persistent or not
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    mine = {**params, **buffers}
    # buffers newer than the file (e.g. a model's modality) keep their defaults; the check below decides
    missing = sorted(k for k in params if k not in state)
    extra = sorted(set(state) - set(mine))
    wrong = [k for k in mine if k in state and tuple(state[k].shape) != tuple(mine[k].shape)]
    problems = ([f"weights the config builds but the file lacks {missing[:4]}"] if missing else []) + \
        ([f"weights in the file the config does not build {extra[:4]}"] if extra else []) + \
        ([f"weights of other shapes {wrong[:4]}"] if wrong else [])
    if problems:
        raise ValueError(f"the model config does not describe {path}: " + "; ".join(problems)
                         + " — give the model section the file was trained with")
    with torch.no_grad():
        for key, value in mine.items():
            if key in state:
                value.copy_(state[key])
    for k, layer in enumerate(model.layers):  # the training set's neighbour normalisation, as it was
        layer.inv_sqrt_neighbors = float(getattr(scripted.layers, str(k)).inv_sqrt_neighbors)
    return model.eval()


def _probe_structures(species: List[str], r_max: float, seed: int = 0):
    """An open cluster and a periodic box (a cell shorter than 2 r_max along one axis) of the model's
    elements, atoms at least 0.9 A apart."""
    rng = np.random.default_rng(seed)
    out = []
    for periodic, count in ((False, 9), (True, 14)):
        box = np.array([max(4.0, 0.9 * r_max), 7.0, 6.5])
        positions: List[np.ndarray] = []
        while len(positions) < count:
            p = rng.uniform(0, 1, 3) * box
            if all(np.linalg.norm(p - q) > 0.9 for q in positions):
                positions.append(p)
        cell = np.diag(box) + (np.array([[0, 0, 0], [0.4, 0, 0], [0.3, -0.2, 0]]) if periodic else 0.0)
        out.append((torch.tensor(np.array(positions)), torch.tensor(rng.integers(0, len(species), count)),
                    torch.tensor(cell if periodic else np.zeros((3, 3))), torch.tensor([periodic] * 3)))
    return out


def _assert_same(old, new, meta: Dict[str, str], path: Path) -> None:
    dtype = torch.float64 if meta["dtype"] == "float64" else torch.float32
    # relative to each output's largest entry: float32 a few ulps (the kernels' summation order may have
    # changed since the old export), float64 1e-12
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    heads = [h for h in meta.get("outputs", "").split() if h in ("dipole", "polarizability", "charges")]
    names = ["energy", "per-atom energies", "forces", "virial", "per-atom virials"]
    for positions, species, cell, pbc in _probe_structures(meta["species"].split(), float(meta["r_max"])):
        positions = positions.to(dtype)
        pairs = list(zip(names, old.compute(positions, species, cell, pbc), new.compute(positions, species, cell, pbc)))
        if heads:
            a, b = old.properties(positions, species, cell, pbc), new.properties(positions, species, cell, pbc)
            pairs += [(h, a[h], b[h]) for h in heads]
        for name, a, b in pairs:
            a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
            scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
            difference = float((a - b).abs().max()) if a.numel() else 0.0
            if a.shape != b.shape or not difference <= tol * scale:
                raise ValueError(f"the model built from the config does not compute what {path} computes ({name} "
                                 f"differ by {difference:.3g}, more than {tol:g} x {scale:.3g}); give the model "
                                 "section the file was trained with")


def reexport(path: Union[str, Path], config: Dict, output: Union[str, Path]) -> Path:
    """Export the deployed TorchScript file ``path`` again as ``output`` (TorchScript), from the model
    section ``config`` of its training config (a dict, or a whole training config with a ``model`` key);
    single models and committees. Refused, writing nothing, unless the new file computes what the old
    one does."""
    from .export import _is_aoti_package, export, load

    path, output = Path(path), Path(output)
    if output.resolve() == path.resolve():
        raise ValueError(f"write the re-exported model to another file than {path} (-o NEW.pt): the old one is "
                         "the reference it is checked against")
    if path.exists() and _is_aoti_package(path):
        raise ValueError(f"{path} is an AOTInductor package: its weights are compiled in; re-export from the "
                         "training checkpoint instead")
    config = dict(config.get("model", config))
    old, meta = load(path)
    config.pop("dtype", None)
    models = [_rebuilt(m, config, meta["dtype"], path) for m in _members(old, meta)]
    for model in models:  # a converted model's origin travels on
        model.source = {k: v for k, v in meta.items() if k.startswith("source")}
    tmp = output.with_name(output.stem + ".checking" + output.suffix)
    names = meta.get("committee_members", "").split() if len(models) > 1 else []
    try:
        export(models if len(models) > 1 else models[0], tmp, member_names=names or None)
        new, _ = load(tmp)
        _assert_same(old, new, meta, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(output)
    return output
