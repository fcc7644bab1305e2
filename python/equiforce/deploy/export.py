"""``equiforce deploy``: a checkpoint (or a model) -> one exported file with its metadata."""
from pathlib import Path
from typing import Union

import torch

from .. import __version__
from ..model import EquiForceModel
from .potential import FORMAT_VERSION, DeployedPotential


def model_from_checkpoint(path: Union[str, Path], use_ema: bool = True) -> EquiForceModel:
    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle/zip errors of foreign or truncated files
        raise ValueError(f"{path} is not an equiforce training checkpoint ({exc.__class__.__name__}); "
                         "train one with `equiforce train`") from exc
    if not isinstance(state, dict) or state.get("format") != "equiforce-checkpoint":
        raise ValueError(f"{path} is not an equiforce training checkpoint (train one with `equiforce train`)")
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
        "dtype": str(model.energy_shift.dtype).replace("torch.", ""),
        "equiforce_version": __version__,
        "torch_version": torch.__version__,
        "units": "eV Angstrom",
    }


def export(model_or_checkpoint, output: Union[str, Path], format: str = "torchscript") -> Path:
    """Write ``output`` (TorchScript ``.pt``); returns its path."""
    model = model_or_checkpoint if isinstance(model_or_checkpoint, EquiForceModel) else \
        model_from_checkpoint(model_or_checkpoint)
    if format != "torchscript":
        raise ValueError(f"export format {format!r} is not available yet; use 'torchscript'")
    model = model.eval()
    deployed = DeployedPotential(model, metadata_of(model))
    scripted = torch.jit.script(deployed)
    output = Path(output)
    extra = {"equiforce_metadata.txt": "\n".join(f"{k}={v}" for k, v in metadata_of(model).items())}
    scripted.save(str(output), _extra_files=extra)
    return output


def load(path: Union[str, Path]):
    """Load an exported model (the op library is loaded first), checking its format and version."""
    from .. import ops  # noqa: F401  (registers the operators the model calls)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    extra = {"equiforce_metadata.txt": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ValueError(f"{path} is not a TorchScript file that equiforce can load ({exc.__class__.__name__})") from exc
    text = extra["equiforce_metadata.txt"]
    text = text.decode() if isinstance(text, bytes) else text
    meta = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if meta.get("format") != "equiforce-deployed":
        raise ValueError(f"{path} is a TorchScript file but not an equiforce model (no equiforce metadata)")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ValueError(f"{path} has format version {meta['format_version']}; this equiforce reads up to "
                         f"{FORMAT_VERSION}: upgrade equiforce")
    return module, meta
