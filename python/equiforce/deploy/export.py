"""``equiforce deploy``: a checkpoint (or a model) -> one exported file with its metadata."""
import copy
from pathlib import Path
from typing import List, Optional, Union

import torch

from .. import __version__
from ..model import EquiForceModel
from .potential import FORMAT_VERSION, DeployedPotential


def model_from_checkpoint(path: Union[str, Path], use_ema: bool = True) -> EquiForceModel:
    """The trained model (EMA weights by default) of a checkpoint, read without unpickling objects."""
    from ..train.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    model = EquiForceModel.from_config(state["model_config"])
    model.load_state_dict(state["ema"] if use_ema else state["model"])
    return model


def metadata_of(model: EquiForceModel) -> dict:
    return {
        "format": "equiforce-deployed",
        "format_version": str(FORMAT_VERSION),
        "species": " ".join(model.species),
        "r_max": repr(float(model.r_max)),
        "num_layers": str(model.num_layers),
        "ghost_cutoff": repr(float(model.r_max) * model.num_layers),
        "node_widths": " ".join(str(w) for w in model.node_widths()),  # per layer (committees: per member)
        "dtype": str(model.energy_shift.dtype).replace("torch.", ""),
        "equiforce_version": __version__,
        "torch_version": torch.__version__,
        "units": "eV Angstrom",
        "long_range": model.long_range,
        "total_charge": repr(float(model.total_charge)),
        **({"ewald_cutoff": repr(float(model.ewald_cutoff)), "ewald_accuracy": repr(float(model.ewald_accuracy))}
           if model.long_range != "none" else {}),
        "symmetry": getattr(model, "symmetry", "O3"),
        **({"modality": model.modality, "modalities": " ".join(model.modalities)} if getattr(model, "modalities", None)
           else {}),
        "outputs": " ".join(["energy", "forces", "virial"] + (["charges"] if model.long_range != "none" else [])
                            + (["dipole"] if model.dipole else []) + (["polarizability"] if model.polarizability else [])),
        # a converted model's origin (equiforce convert): source, source_version, source_license, ...
        **{key: value for key, value in getattr(model, "source", {}).items()},
    }


FORMATS = ("torchscript", "aoti")


def _as_model(model_or_checkpoint) -> EquiForceModel:
    model = model_or_checkpoint if isinstance(model_or_checkpoint, EquiForceModel) else \
        model_from_checkpoint(model_or_checkpoint)
    return model.eval()


def export(model_or_checkpoint, output: Union[str, Path], format: str = "torchscript",
           member_names: Optional[List[str]] = None) -> Path:
    """Write ``output``: TorchScript (``.pt``) or an AOTInductor package (``format='aoti'``, ``.pt2``,
    compiled for this machine's CPU); returns its path. A list of two or more models or checkpoints
    is exported as one committee (:mod:`.committee`: mean predictions plus their spread, TorchScript).
    Nothing is written over an existing file until the new one is complete."""
    if format not in FORMATS:
        raise ValueError(f"export format must be one of {FORMATS}, got {format!r}")
    output = Path(output)
    if isinstance(model_or_checkpoint, (list, tuple)):
        if len(model_or_checkpoint) == 1:
            model_or_checkpoint = model_or_checkpoint[0]
        else:
            return _export_committee(list(model_or_checkpoint), output, format, member_names)
    model = _as_model(model_or_checkpoint)
    meta = metadata_of(model)
    meta["export_format"] = format
    if format == "aoti" and output.suffix != ".pt2":
        raise ValueError(f"AOTInductor packages are named *.pt2, got {output}")
    tmp = output.with_name(output.stem + ".partial" + output.suffix)
    if format == "aoti":
        from .aoti import export_aoti

        if model.long_range != "none" or model.dipole or model.polarizability:
            raise ValueError("the AOTInductor export carries the local energy contract only; export models with "
                             "long_range, dipole or polarizability heads as TorchScript (the default format)")
        export_aoti(model, tmp, meta)
    else:
        _save_scripted(DeployedPotential(model, meta), meta, tmp)
    tmp.replace(output)
    return output


def _save_scripted(module: torch.nn.Module, meta: dict, path: Path) -> None:
    # A deployed model is not trained: without requires_grad on its weights, autograd computes forces
    # and virials without also forming every weight's gradient (a copy: the caller's model is left as is).
    module = copy.deepcopy(module)
    for p in module.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(module)
    scripted.save(str(path), _extra_files={"equiforce_metadata.txt": "\n".join(f"{k}={v}" for k, v in meta.items())})


def _export_committee(members: list, output: Path, format: str, names: Optional[List[str]] = None) -> Path:
    from .committee import CommitteePotential, check_members

    if format != "torchscript":
        raise ValueError("committees export as TorchScript only (leave out --format aoti)")
    names = names or [m if not isinstance(m, EquiForceModel) else f"model {n + 1}" for n, m in enumerate(members)]
    models = [_as_model(m) for m in members]
    check_members(models, [str(n) for n in names])
    meta = metadata_of(models[0])
    meta.update(export_format=format, committee_size=str(len(models)),
                outputs="energy forces virial energy_std force_std",
                node_widths=" ".join(metadata_of(m)["node_widths"] for m in models),
                committee_members=" ".join(Path(str(n)).as_posix().replace(" ", "_") for n in names))
    tmp = output.with_name(output.stem + ".partial" + output.suffix)
    _save_scripted(CommitteePotential(models, meta), meta, tmp)
    tmp.replace(output)
    return output


def _is_aoti_package(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any("/aotinductor/" in name or name.startswith("aotinductor/") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _check_metadata(path: Path, meta: dict, kind: str) -> dict:
    if meta.get("format") != "equiforce-deployed":
        raise ValueError(f"{path} is {kind} but not an equiforce model (no equiforce metadata)")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {meta['format_version']}; this equiforce reads up to "
                         f"{FORMAT_VERSION}: upgrade equiforce")
    return meta


def load(path: Union[str, Path]):
    """Load an exported model of either format (the op library is loaded first), checking its format
    and version. Returns (module, metadata); the module has ``forward(positions, species, edge_src,
    edge_dst, edge_shift, num_local)`` and ``compute(positions, species, cell, pbc)``."""
    from .. import ops  # noqa: F401  (registers the operators the model calls)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if _is_aoti_package(path):
        from .aoti import AOTIPotential

        try:
            module = AOTIPotential(path)
        except Exception as exc:
            raise ValueError(f"{path} is an AOTInductor package that this machine cannot load "
                             f"({exc.__class__.__name__}: {exc}); export it again here") from exc
        return module, _check_metadata(path, module.metadata(), "an AOTInductor package")
    extra = {"equiforce_metadata.txt": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ValueError(f"{path} is not a model file that equiforce can load ({exc.__class__.__name__}); "
                         "export one with `equiforce deploy`") from exc
    text = extra["equiforce_metadata.txt"]
    text = text.decode() if isinstance(text, bytes) else text
    meta = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return TorchScriptPotential(module), _check_metadata(path, meta, "a TorchScript file")


class TorchScriptPotential(torch.nn.Module):
    """A loaded ``.pt``: the scripted module, run without TorchScript's graph-executor optimisations
    (profiling, autodiff subgraphs and fusion make our models about 1.8x slower on the CPU; the C++
    runtime does the same). Other attributes are the scripted module's."""

    def __init__(self, module) -> None:
        super().__init__()
        self.module = module

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("module")
            if inner is None:
                raise
            return getattr(inner, name)

    def _plain(self, method: str, *args):
        with torch.jit.optimized_execution(False):
            return getattr(self.module, method)(*args)

    def forward(self, *args):
        return self._plain("forward", *args)

    def compute(self, *args):
        return self._plain("compute", *args)

    def properties(self, *args):
        return self._plain("properties", *args)

    # committees only (equiforce.deploy.committee)
    def committee(self, *args):
        return self._plain("committee", *args)

    def compute_committee(self, *args):
        return self._plain("compute_committee", *args)

    def uncertainty(self, *args):
        return self._plain("uncertainty", *args)
