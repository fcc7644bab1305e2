"""``equiforce convert``: models trained with other codes -> equiforce models that compute the same.

``convert(source, output)`` writes a deployed ``.pt`` (TorchScript), ``.pt2`` (AOTInductor) or an
equiforce training checkpoint ``.ckpt`` (to fine-tune with ``equiforce train``, ``init_from``).
Sources: ``sevenn:7net-0`` and the other checkpoints inside the installed sevenn package (see
:data:`sevenn.PRETRAINED`), the path of a SevenNet ``checkpoint_*.pth``, or the path of a nequip 0.19
training checkpoint (``best.ckpt`` / ``last.ckpt`` from ``nequip-train``; ``nequip:PATH`` says so
explicitly).
"""
from pathlib import Path
from typing import Optional, Union

from .nequip import from_nequip, load_nequip_checkpoint, nequip_provenance
from .sevenn import PRETRAINED as SEVENN_PRETRAINED
from .sevenn import from_sevenn, load_sevenn_checkpoint, pretrained_path, sevenn_package


def _is_nequip(path: Path) -> bool:
    return path.suffix == ".ckpt" or path.name.endswith((".nequip.zip", ".nequip.pt2", ".nequip.pth"))


def load_source(source: Union[str, Path], dtype: str = "float32", modality: Optional[str] = None):
    """The EquiForceModel a source names (``sevenn:NAME``, a SevenNet checkpoint path, or a nequip
    checkpoint path, optionally written ``nequip:PATH``), with its provenance."""
    text = str(source)
    if text.startswith("nequip:") or (not text.startswith("sevenn:") and _is_nequip(Path(text))):
        path = Path(text[len("nequip:"):] if text.startswith("nequip:") else text)
        if modality is not None:
            raise ValueError("--modality is for multi-fidelity SevenNet models; nequip models have one fidelity")
        state = load_nequip_checkpoint(path)
        model = from_nequip(state, dtype=dtype)
        model.source = nequip_provenance(state, path)
        model.converted_config["source"] = dict(model.source)
        return model
    if text.startswith("sevenn:"):
        path, name = pretrained_path(text[len("sevenn:"):]), text
    else:
        path, name = Path(text), None
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; give a SevenNet checkpoint_*.pth, a nequip "
                                    f"best.ckpt, or one of {['sevenn:' + n for n in SEVENN_PRETRAINED]}")
    state = load_sevenn_checkpoint(path)
    model = from_sevenn(state, dtype=dtype, modality=modality)
    try:
        _, package_version, licence = sevenn_package()
    except ModuleNotFoundError:
        package_version, licence = "not installed", "see the checkpoint's origin"
    model.source = {"source": name or f"sevenn checkpoint {path.name}",
                    "source_version": f"sevenn checkpoint {state['config'].get('version')}; sevenn package "
                                      f"{package_version}",
                    "source_license": licence if name else "as the checkpoint's owner licensed it"}
    model.converted_config["source"] = dict(model.source)
    return model


def convert(source: Union[str, Path], output: Union[str, Path], dtype: str = "float32",
            modality: Optional[str] = None) -> Path:
    """Convert ``source`` into ``output`` (.pt, .pt2 or .ckpt, by its suffix); returns its path."""
    output = Path(output)
    if output.suffix not in (".pt", ".pt2", ".ckpt"):
        raise ValueError(f"convert writes a deployed .pt (TorchScript) or .pt2 (AOTInductor), or a training "
                         f"checkpoint .ckpt; got {output}")
    model = load_source(source, dtype=dtype, modality=modality)
    if output.suffix == ".ckpt":
        from ..train.checkpoint import converted_checkpoint, save_checkpoint

        return save_checkpoint(converted_checkpoint(model), output)
    from ..deploy.export import export

    return export(model, output, format="aoti" if output.suffix == ".pt2" else "torchscript")


__all__ = ["convert", "load_source", "from_sevenn", "load_sevenn_checkpoint", "from_nequip", "load_nequip_checkpoint",
           "SEVENN_PRETRAINED"]
