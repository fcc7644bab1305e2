"""SevenNet checkpoints -> :class:`EquiForceModel`, computing the same function.

Read from sevenn 0.9–0.13 checkpoints (``torch.save`` of a dict with ``config`` and ``model_state_dict``)
without executing a pickle: ``torch.load(weights_only=True)`` with an allow-list of numpy's array
reconstructors only (SevenNet stores shifts and scales as numpy arrays). Every config key is either
understood, or known not to change the model (training and data settings), or the checkpoint is refused
with the key named.

What SevenNet computes (sevenn ``model_build.py``, ``nn/*.py``; e3nn 0.5 conventions) and how it maps:

* species: one-hot in the order of ``_type_map`` (atomic number -> index; alphabetical symbols);
  embedding ``Linear(one-hot -> irreps_manual[0])``, no bias.
* each layer: ``sc = Linear(x -> gate input)`` (self_connection_type 'linear'; 'nequip' is the tensor
  product with the one-hot), ``h = Linear(x)``, uvu convolution with per-edge weights from an e3nn
  ``FullyConnectedNet`` on the radial basis, divided by the stored ``denominator``, then
  ``Linear(h -> gate input) + sc`` and an e3nn Gate; no residual.
* e3nn's ``FullyConnectedNet`` divides each weight matrix by sqrt(fan-in) and multiplies the
  activation by its normalize2mom constant: both are folded into the radial MLP's weights here.
* before sevenn 0.11 the convolution's paths were not sorted by output irrep, and some of the stored
  Wigner-3j buffers are the negatives of e3nn 0.6's (which equiforce's tables equal): the radial MLP's
  output columns are reordered and, where the stored buffer has the other sign, negated.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from ..algebra import Irrep, Irreps
from ..algebra.wigner import wigner_3j
from ..model import EquiForceModel
from ._e3nn import NORMALIZE2MOM, PeerWeights, read_weights_only, relayout


# name -> (folder under sevenn/pretrained_potentials, file): the checkpoints inside the sevenn wheel
PRETRAINED = {
    "7net-0": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "7net-0_11Jul2024": ("SevenNet_0__11Jul2024", "checkpoint_sevennet_0.pth"),
    "7net-0_22May2024": ("SevenNet_0__22May2024", "checkpoint_sevennet_0.pth"),
    "7net-l3i5": ("SevenNet_l3i5", "checkpoint_l3i5.pth"),
    "7net-mf-0": ("SevenNet_MF_0", "checkpoint_sevennet_mf_0.pth"),
}

# sevenn's defaults for model keys a checkpoint may lack (sevenn _const.DEFAULT_E3_EQUIVARIANT_MODEL_CONFIG)
_MODEL_DEFAULTS = {
    "irreps_manual": False, "lmax_edge": -1, "lmax_node": -1, "is_parity": True,
    "act_radial": "silu", "act_scalar": {"e": "silu", "o": "tanh"}, "act_gate": {"e": "silu", "o": "tanh"},
    "use_bias_in_linear": False, "readout_as_fcn": False, "self_connection_type": "nequip",
    "interaction_type": "nequip", "_normalize_sph": True, "use_modality": False,
}
# keys that shape the model: each is read below
_MODEL_KEYS = set(_MODEL_DEFAULTS) | {
    "cutoff", "channel", "lmax", "num_convolution_layer", "radial_basis", "cutoff_function",
    "weight_nn_hidden_neurons", "_type_map", "version", "_model_type", "readout_fcn_activation",
    "readout_fcn_hidden_neurons",
}
# keys that do not change what the model computes (training, data, statistics stored in the state dict,
# accelerators), by sevenn version
_INERT_KEYS = {
    "_chemical_species_by_atomic_number", "chemical_species", "_number_of_species", "_is_trace_stress",
    "_num_workers", "avg_num_neigh", "avg_num_neigh_cp", "conv_denominator", "conv_denominator_cp",
    "train_avg_num_neigh", "train_denominator", "shift", "scale", "shift_cp", "scale_cp", "train_shift_scale",
    "use_species_wise_shift_scale", "optimize_by_reduce", "batch_size", "best_metric", "continue", "csv_log",
    "data_divide_ratio", "data_format", "data_format_args", "data_shuffle", "device", "dtype", "epoch",
    "error_record", "force_loss_weight", "format_outputs_for_ase", "is_ddp", "load_dataset_path",
    "load_validset_path", "load_testset_path", "local_rank", "loss", "loss_param", "optim_param", "optimizer",
    "per_epoch", "preprocess_num_cores", "random_seed", "rank", "save_by_label", "save_by_train_valid",
    "save_dataset_path", "scheduler", "scheduler_param", "stress_loss_weight", "train_shuffle", "use_testset",
    "use_weight", "world_size", "is_train_stress", "ddp_backend", "when", "use_statistic_values_of_checkpoint",
    "cuequivariance_config", "use_flash_tp", "use_oeq", "_flash_lammps", "energy_loss_weight",
    "use_modality_cp", "_modal_map_cp", "_number_of_modalities_cp", "dataset_type", "compute_statistics",
    "checkpoint_interval", "save_interval",
}
_MODALITY_KEYS = {"_modal_map", "_number_of_modalities", "modal_list", "default_modal", "use_modal_node_embedding",
                  "use_modal_self_inter_intro", "use_modal_self_inter_outro", "use_modal_output_block",
                  "use_modal_wise_shift", "use_modal_wise_scale"}


def _numpy_globals() -> list:
    """numpy's array reconstructors under the names sevenn's pickles use (numpy 1 and 2): data, not code."""
    core = getattr(np, "_core", None) or np.core
    allowed = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed += [(core.multiarray._reconstruct, f"{module}._reconstruct"),
                    (core.multiarray.scalar, f"{module}.scalar")]
    allowed += [getattr(np.dtypes, name) for name in ("Float32DType", "Float64DType", "Int64DType", "Int32DType",
                                                     "BoolDType") if hasattr(np.dtypes, name)]
    return allowed


def load_sevenn_checkpoint(path: Union[str, Path]) -> dict:
    """A SevenNet checkpoint's dict, read without executing code (numpy arrays allowed, nothing else)."""
    state = read_weights_only(path, "SevenNet checkpoint", _numpy_globals())
    if not isinstance(state, dict) or "config" not in state or "model_state_dict" not in state:
        raise ValueError(f"{path} is not a SevenNet checkpoint (no 'config' and 'model_state_dict'); "
                         "give a checkpoint_*.pth written by sevenn")
    return state


def sevenn_package() -> Tuple[Path, str, str]:
    """(folder, version, licence) of the installed sevenn package, found without importing it."""
    spec = importlib.util.find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the sevenn package is not installed: `pip install sevenn` (its wheel holds the "
                                  "pretrained SevenNet checkpoints), or give the path of a checkpoint_*.pth")
    meta = importlib.metadata.metadata("sevenn")
    licence = meta.get("License-Expression") or meta.get("License") or "see the sevenn package"
    return Path(list(spec.submodule_search_locations)[0]), importlib.metadata.version("sevenn"), licence


def pretrained_path(name: str) -> Path:
    """The checkpoint of a pretrained SevenNet model (``7net-0``, ...) in the installed sevenn."""
    lookup = {key.lower(): key for key in PRETRAINED}
    if name.lower() not in lookup:
        raise ValueError(f"unknown pretrained SevenNet model {name!r}; known: {sorted(PRETRAINED)}")
    folder, file = PRETRAINED[lookup[name.lower()]]
    root, version, _ = sevenn_package()
    path = root / "pretrained_potentials" / folder / file
    if not path.is_file():
        raise FileNotFoundError(f"sevenn {version} has no {folder}/{file}; install a sevenn that ships it "
                                "(sevenn 0.13 has 7net-0, 7net-0_22May2024, 7net-l3i5 and 7net-mf-0)")
    return path


def _version(text: str) -> Tuple[int, ...]:
    parts = str(text).split(".")
    try:
        return tuple(int(p) for p in parts[:3])
    except ValueError:
        raise ValueError(f"SevenNet checkpoint version {text!r} is not a version number") from None


def _resolved_config(raw: dict) -> dict:
    """The config sevenn would build from: old versions' defaults patched, missing keys defaulted."""
    config = dict(raw)
    if "version" not in config:
        raise ValueError("the SevenNet checkpoint has no 'version' in its config; it is not one sevenn wrote")
    version = _version(config["version"])
    if version < (0, 9, 0):
        raise ValueError(f"SevenNet checkpoint version {config['version']} predates sevenn 0.9, which equiforce "
                         "does not convert; load it in sevenn and save it again with a current sevenn")
    if version >= (0, 14, 0):
        raise ValueError(f"SevenNet checkpoint version {config['version']} is newer than the sevenn versions this "
                         "converter knows (0.9 to 0.13); its conventions are not checked here, so it is refused")
    if version[:2] <= (0, 9):  # sevenn's patch_old_config: old checkpoints used unnormalised harmonics
        config.setdefault("_normalize_sph", False)
    unknown = sorted(set(config) - _MODEL_KEYS - _INERT_KEYS - _MODALITY_KEYS)
    if unknown:
        raise ValueError(f"SevenNet config key(s) {unknown} are unknown to this converter (sevenn "
                         f"{config['version']}); refusing rather than building a possibly different model")
    for key, value in _MODEL_DEFAULTS.items():
        config.setdefault(key, value)
    return config


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"this SevenNet model has {what}, which equiforce does not convert (yet)")


def _modality_options(config: dict, modality: Optional[str]) -> dict:
    """A multi-fidelity model (SevenNet-MF) runs one fidelity: its one-hot is a constant input."""
    if not config["use_modality"]:
        if modality is not None:
            raise ValueError(f"this SevenNet model has one fidelity; --modality {modality} applies to multi-fidelity "
                             "models (7net-mf-0) only")
        return {}
    modal_map = {str(k): int(v) for k, v in config["_modal_map"].items()}
    names = [name for name, _ in sorted(modal_map.items(), key=lambda item: item[1])]
    if modality not in modal_map:
        raise ValueError(f"this multi-fidelity SevenNet model has the modalities {names}; choose the one to run "
                         f"with --modality (Python: modality=...), e.g. --modality {config.get('default_modal', names[0])}")
    _require(not config.get("use_modal_wise_scale", False), "a scale per modality")
    inputs = [name for key, name in (("use_modal_node_embedding", "embedding"),
                                     ("use_modal_self_inter_intro", "interaction_in"),
                                     ("use_modal_self_inter_outro", "interaction_out"),
                                     ("use_modal_output_block", "readout")) if config.get(key, False)]
    return {"modalities": names, "modality": modality, "modality_inputs": inputs}


def _layer_irreps(config: dict) -> List[str]:
    channel, lmax, n = int(config["channel"]), int(config["lmax"]), int(config["num_convolution_layer"])
    if config["irreps_manual"] is not False:
        irreps = [str(Irreps(ir)) for ir in config["irreps_manual"]]
        if len(irreps) != n + 1:
            raise ValueError(f"irreps_manual has {len(irreps)} entries; num_convolution_layer {n} needs {n + 1}")
        return irreps
    lmax_node = int(config["lmax_node"]) if int(config["lmax_node"]) > 0 else lmax
    hidden = "+".join(f"{channel}x{l}e" for l in range(lmax_node + 1))
    return [f"{channel}x0e"] + [hidden] * (n - 1) + [f"{channel}x0e"]


def model_config(config: dict, state_dict: Dict[str, torch.Tensor], modality: Optional[str] = None) -> dict:
    """The EquiForceModel config equal to a (resolved) SevenNet config."""
    from ase.data import chemical_symbols

    _require(config["_model_type"] == "E3_equivariant_model", f"_model_type {config['_model_type']!r}")
    _require(config["interaction_type"] == "nequip", f"interaction_type {config['interaction_type']!r}")
    _require(config["is_parity"] is False, "is_parity: true (O(3) SevenNet models)")
    _require(config["use_bias_in_linear"] is False, "use_bias_in_linear: true")
    _require(config["readout_as_fcn"] is False, "readout_as_fcn: true (an MLP readout)")
    _require(int(config["lmax_edge"]) in (-1, int(config["lmax"])), f"lmax_edge {config['lmax_edge']}")
    _require(config["act_radial"] == "silu", f"act_radial {config['act_radial']!r}")
    _require(config["act_scalar"].get("e") == "silu", f"act_scalar {config['act_scalar']}")
    gate = config["act_gate"].get("e")
    _require(gate in ("silu", "sigmoid"), f"act_gate {config['act_gate']}")
    basis = dict(config["radial_basis"])
    _require(basis.pop("radial_basis_name", None) == "bessel", f"radial_basis {config['radial_basis']}")
    num_basis = int(basis.pop("bessel_basis_num", 8))
    trainable = bool(basis.pop("trainable_coeff", True))
    _require(not basis, f"radial_basis options {sorted(basis)}")
    envelope = dict(config["cutoff_function"])
    name = envelope.pop("cutoff_function_name", None)
    cutoff = {}
    if name == "XPLOR":
        envelope.pop("poly_cut_p_value", None)  # ignored by XPLOR (sevenn drops it too)
        cutoff = {"cutoff": "xplor", "cutoff_on": float(envelope.pop("cutoff_on"))}
    elif name == "poly_cut":
        cutoff = {"cutoff": "polynomial", "cutoff_p": int(envelope.pop("poly_cut_p_value", 6))}
    else:
        _require(False, f"cutoff_function {config['cutoff_function']}")
    _require(not envelope, f"cutoff_function options {sorted(envelope)}")
    hidden = list(config["weight_nn_hidden_neurons"])
    _require(len(hidden) >= 1 and len(set(hidden)) == 1, f"weight_nn_hidden_neurons {hidden} (unequal widths)")
    kinds = config["self_connection_type"]
    kinds = [kinds] * int(config["num_convolution_layer"]) if isinstance(kinds, str) else list(kinds)
    _require(len(set(kinds)) == 1 and kinds[0] in ("linear", "nequip"), f"self_connection_type {kinds}")
    type_map = {int(z): int(i) for z, i in config["_type_map"].items()}
    species = [chemical_symbols[z] for z, _ in sorted(type_map.items(), key=lambda item: item[1])]
    _require(sorted(type_map.values()) == list(range(len(type_map))), "a _type_map that is not 0..n-1")
    n = int(config["num_convolution_layer"])
    denominators = [float(state_dict[f"{t}_convolution.denominator"].reshape(-1)[0]) for t in range(n)]
    irreps = _layer_irreps(config)
    multi_fidelity = _modality_options(config, modality)
    return {**multi_fidelity,
        "species": species, "r_max": float(config["cutoff"]), "l_max": int(config["lmax"]),
        "num_features": int(config["channel"]), "num_layers": n, "num_basis": num_basis,
        "radial_hidden": hidden[0], "radial_depth": len(hidden), "symmetry": "SO3", "layer_irreps": irreps,
        "self_connection": "linear" if kinds[0] == "linear" else "tensor_product", "residual": False,
        "gate_activation": gate, "scalar_activation_scale": NORMALIZE2MOM["silu"],
        "gate_activation_scale": NORMALIZE2MOM[gate], "bessel_prefactor": "2/r_max", "trainable_bessel": trainable,
        "normalize_sh": bool(config["_normalize_sph"]), "conv_denominator": denominators,
        "readout_hidden": Irreps(irreps[-1]).dim // 2, "sort_paths": True, **cutoff,
    }


def _radial_columns(conv, weight: torch.Tensor, stored_w3j: Dict[Tuple[int, int, int], torch.Tensor],
                    unsorted: bool, where: str) -> torch.Tensor:
    """The radial MLP's last weight matrix [h, sum of path multiplicities] in the order of ``conv``'s
    (sorted) paths, each path's columns negated where the checkpoint's Wigner-3j buffer is the negative of
    equiforce's. ``unsorted``: the checkpoint's columns follow the paths' generation order (sevenn < 0.11:
    input irrep, then harmonic, then output degree)."""
    instructions = conv.instructions
    muls = [conv.irreps_in1[ins.i_in1].mul for ins in instructions]
    if sum(muls) != weight.shape[1]:
        raise ValueError(f"{where}: the radial MLP has {weight.shape[1]} outputs, the converted convolution needs "
                         f"{sum(muls)}; the checkpoint's layer is not the architecture equiforce rebuilt")
    degrees = [(conv.irreps_in1[i.i_in1].ir.l, conv.irreps_in2[i.i_in2].ir.l, conv.irreps_out[i.i_out].ir.l)
               for i in instructions]
    stored_order = sorted(range(len(instructions)), key=lambda k: (instructions[k].i_in1, instructions[k].i_in2,
                                                                   degrees[k][2])) if unsorted \
        else list(range(len(instructions)))
    blocks: List[torch.Tensor] = [weight.new_empty(0)] * len(instructions)
    start = 0
    for k in stored_order:
        blocks[k] = weight[:, start:start + muls[k]]
        start += muls[k]
    for k, (l1, l2, l3) in enumerate(degrees):
        stored = stored_w3j.get((l1, l2, l3))
        if stored is None or min(l1, l2, l3) == 0:
            continue
        ours = torch.tensor(wigner_3j(l1, l2, l3), dtype=stored.dtype)
        if torch.allclose(stored, -ours, atol=1e-6):
            blocks[k] = -blocks[k]
        elif not torch.allclose(stored, ours, atol=1e-6):
            raise ValueError(f"{where}: the stored Wigner-3j ({l1}, {l2}, {l3}) is neither e3nn 0.6's nor its "
                             "negative; refusing rather than guessing its convention")
    return torch.cat(blocks, dim=1)


def relayout_linear(weight: torch.Tensor, irreps_in: Irreps, theirs: Irreps, ours: Irreps) -> torch.Tensor:
    """An e3nn Linear's flat weight for ``irreps_in -> theirs`` as the weight of ``irreps_in -> ours``: the
    same channels, cut into segments differently (e3nn's Gate takes ``224x0e``, equiforce's ``128x0e +
    96x0e``); see :func:`._e3nn.relayout`."""
    return relayout(weight, irreps_in, theirs, irreps_in, ours)


def _e3nn_gate_irreps(gate_irreps_in: Irreps) -> Irreps:
    """e3nn's Gate input irreps for the same features: sorted, then consecutive equal irreps merged."""
    irreps = Irreps(gate_irreps_in)
    ordered, _, _ = irreps.sort()
    if ordered != irreps:
        raise ValueError(f"the gate's inputs {irreps} are not in e3nn's sorted order; this layout does not convert")
    return irreps.simplify()


_OLD_MODULE_NAMES = {"EdgeEmbedding": "edge_embedding", "reducing nn input to hidden": "reduce_input_to_hidden",
                     "reducing nn hidden to energy": "reduce_hidden_to_energy",
                     "rescale atomic energy": "rescale_atomic_energy"}


def _current_names(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Module names of checkpoints from before sevenn's spring-2024 renaming ('0 convolution.denumerator')
    in today's form ('0_convolution.denominator'); current names pass unchanged."""
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head in _OLD_MODULE_NAMES:
            head = _OLD_MODULE_NAMES[head]
        elif " " in head and head.split(" ", 1)[0].isdigit():
            head = head.replace(" ", "_")
        out[f"{head}.{rest.replace('denumerator', 'denominator')}"] = value
    return out


def from_sevenn(checkpoint: Union[str, Path, dict], dtype: str = "float32",
                modality: Optional[str] = None) -> EquiForceModel:
    """An EquiForceModel computing what the SevenNet checkpoint computes (energies, forces, stress)."""
    state = checkpoint if isinstance(checkpoint, dict) else load_sevenn_checkpoint(checkpoint)
    config = _resolved_config(state["config"])
    sd = {k: v.detach().to(torch.float64) if v.is_floating_point() else v
          for k, v in _current_names(state["model_state_dict"]).items()}
    options = model_config(config, sd, modality)
    model = EquiForceModel.from_config({**options, "dtype": "float64"})
    # sevenn's rule: paths sorted from 0.11.0 on, except its pre-release 0.11.0.dev0
    unsorted = _version(config["version"]) < (0, 11, 0) or str(config["version"]) == "0.11.0.dev0"
    weights = PeerWeights(sd, "SevenNet")
    take, used = weights.take, weights.used

    def linear(ours, key: str, gate_input: bool = False) -> None:
        weight = take(f"{key}.linear.weight")
        if gate_input:  # sevenn's Linear writes e3nn's Gate input (merged scalars and gates)
            weight = relayout_linear(weight, ours.irreps_in, _e3nn_gate_irreps(ours.irreps_out), ours.irreps_out)
        if weight.numel() != ours.weight.numel():
            raise ValueError(f"{key}: {weight.numel()} weights, equiforce's Linear {ours.irreps_in} -> "
                             f"{ours.irreps_out} has {ours.weight.numel()}")
        ours.weight.copy_(weight)
        for extra in ("bias", "output_mask"):
            if f"{key}.linear.{extra}" in sd:
                used.add(f"{key}.linear.{extra}")

    with torch.no_grad():
        if "edge_embedding.basis_function.coeffs" in sd:
            model.basis.frequencies.copy_(take("edge_embedding.basis_function.coeffs"))
        else:  # trainable_coeff false: sevenn's fixed frequencies n pi / r_c, computed in float32
            model.basis.frequencies.copy_(torch.tensor(
                [n * math.pi / float(config["cutoff"]) for n in range(1, options["num_basis"] + 1)],
                dtype=torch.float32).double())
        linear(model.embedding, "onehot_to_feature_x")
        for t, layer in enumerate(model.layers):
            if layer.self_connection_linear is not None:
                linear(layer.self_connection_linear, f"{t}_self_connection_intro", gate_input=True)
            else:  # e3nn's FullyConnectedTensorProduct into the gate's merged inputs
                _require(_e3nn_gate_irreps(layer.gate.irreps_in) == layer.gate.irreps_in,
                         "self_connection_type 'nequip' into a gate whose inputs e3nn merges")
                weight = take(f"{t}_self_connection_intro.fc_tensor_product.weight")
                layer.self_connection.weight.copy_(weight)
            linear(layer.linear_in, f"{t}_self_interaction_1")
            linear(layer.linear_out, f"{t}_self_interaction_2", gate_input=True)
            used.add(f"{t}_convolution.denominator")
            stored_w3j = {}
            prefix = f"{t}_convolution.convolution."
            for key in list(sd):
                if key.startswith(prefix):
                    used.add(key)
                    if "._w3j_" in key:
                        stored_w3j[tuple(int(x) for x in key.rsplit("_w3j_", 1)[1].split("_"))] = sd[key]
            mlp = layer.radial.layers
            act = NORMALIZE2MOM["silu"]
            for k, ours in enumerate(mlp):
                weight = take(f"{t}_convolution.weight_nn.layer{k}.weight")  # [fan_in, fan_out], x @ w
                weight = weight / math.sqrt(weight.shape[0]) * (act if k > 0 else 1.0)
                if k == len(mlp) - 1:
                    weight = _radial_columns(layer.conv, weight, stored_w3j, unsorted, f"layer {t}")
                if tuple(weight.T.shape) != tuple(ours.weight.shape):
                    raise ValueError(f"layer {t} radial MLP layer {k}: shape {tuple(weight.shape)} does not fit "
                                     f"{tuple(ours.weight.T.shape)}")
                ours.weight.copy_(weight.T)
            for key in list(sd):
                if key.startswith(f"{t}_equivariant_gate."):
                    used.add(key)
        linear(model.readout_hidden, "reduce_input_to_hidden")
        linear(model.readout, "reduce_hidden_to_energy")
        shift = take("rescale_atomic_energy.shift")
        if options.get("modalities") and config.get("use_modal_wise_shift", False):
            shift = shift.reshape(len(options["modalities"]), -1)[options["modalities"].index(modality)]
        model.energy_shift.copy_(shift.reshape(-1).expand(len(model.species)))
        model.energy_scale.copy_(take("rescale_atomic_energy.scale").reshape(-1).expand(len(model.species)))
    weights.check_all_placed()
    model.converted_config = {**options, "dtype": dtype}
    return model.to({"float32": torch.float32, "float64": torch.float64}[dtype])
