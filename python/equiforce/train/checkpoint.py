"""Training checkpoints as plain data, read without executing a pickle.

A checkpoint is a dict of tensors, strings, numbers, booleans, None and lists/tuples/dicts of those
(the model and EMA state dicts, the optimizer's and scheduler's, the config, the RNG state). It is
written with ``torch.save`` and read with ``torch.load(..., weights_only=True)``: torch's restricted
unpickler, whose allow-list is exactly these types (``ALLOWED_GLOBALS`` adds none), so a file that
holds any other Python object — code to run included — is refused before anything in it runs.
"""
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

FORMAT = "equiforce-checkpoint"
ALLOWED_GLOBALS: list = []  # beyond torch's weights_only set (tensors, containers, primitives)
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}[{key!r}] is a {type(key).__name__}; use str or int keys")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            _check_plain(item, f"{where}[{n}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"checkpoint entry {where} is a {type(value).__name__}; checkpoints hold tensors, numbers, "
                        "strings and containers only (they are read without unpickling objects)")


def save_checkpoint(state: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Write ``state`` (plain data only, checked) to ``path`` atomically: nothing is left half-written."""
    _check_plain(state, "state")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def is_deployed_file(path: Union[str, Path]) -> bool:
    """A TorchScript file or an AOTInductor package: zip archives that hold code, not checkpoints."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/")[1:2] == ["code"] or "aotinductor" in name.split("/")[1:]
                       for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read an equiforce training checkpoint without executing any pickled code. Raises
    FileNotFoundError, or ValueError saying what the file is not."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if is_deployed_file(path):  # torch.load would hand a TorchScript archive to torch.jit.load
        raise ValueError(f"{path} is a deployed model, not an equiforce training checkpoint; the checkpoint it "
                         "was made from (a run's best.pt or last.pt) is what training reads")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)  # the restricted unpickler met an object
        if found:
            raise ValueError(f"{path} holds Python objects other than tensors and plain containers (e.g. "
                             f"{found.group(1)}); equiforce reads checkpoints without unpickling "
                             "objects, so it refuses this file. A SevenNet or nequip checkpoint converts with "
                             f"`equiforce convert {path} -o model.ckpt`; an equiforce checkpoint from an older "
                             "version: train again with `equiforce train` (or convert its state dicts to plain "
                             "tensors yourself)") from None
        raise ValueError(f"{path} is not an equiforce training checkpoint ({exc.__class__.__name__}: "
                         f"{text.splitlines()[0] if text else ''}); train one with `equiforce train`") from None
    if isinstance(state, dict) and ("hyper_parameters" in state or "model_state_dict" in state):
        raise ValueError(f"{path} is a nequip or SevenNet checkpoint, not an equiforce one: convert it first, "
                         f"`equiforce convert {path} -o model.ckpt`, then train from model.ckpt")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not an equiforce training checkpoint (train one with `equiforce train`)")
    return state


def converted_checkpoint(model) -> Dict[str, Any]:
    """A training checkpoint holding a converted model (``equiforce convert ... -o model.ckpt``): its config
    and weights as both the model and the EMA, ready to deploy or to fine-tune from (``init_from``)."""
    weights = {key: value.detach().clone() for key, value in model.state_dict().items()}
    return {"format": FORMAT, "version": 1, "converted": True, "model_config": dict(model.converted_config),
            "model": weights, "ema": {key: value.clone() for key, value in weights.items()}}
