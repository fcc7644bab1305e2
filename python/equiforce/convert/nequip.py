"""nequip 0.19 training checkpoints -> :class:`EquiForceModel`, computing the same function.

The file nequip users keep is the Lightning checkpoint ``nequip-train`` writes (``best.ckpt``,
``last.ckpt``): a ``torch.save`` of plain data (the state dict, and the resolved config under
``hyper_parameters``), read here with ``torch.load(weights_only=True)`` and nothing allow-listed. nequip's
packaged ``.nequip.zip`` is a ``torch.package`` archive whose loading imports and runs the Python it
carries, and its compiled ``.nequip.pt2`` holds no readable weights: neither is read.

What ``nequip.model.NequIPGNNModel`` computes (nequip 0.19 ``model/nequip_models.py``, ``nn/*.py``;
e3nn 0.6 conventions) and how it maps:

* species: a learned ``Embedding [types, F]`` (not a one-hot); it is both layer 0's input and the
  second input of every self-connection tensor product. As equiforce's one-hot Linear: the table
  times sqrt(types); in the self-connections, contracted into the tensor product's weights.
* each layer: ``sc = FCTP(x, embedding)`` (layers >= 1 with ``convnet_sc``), ``h = Linear(x) /
  sqrt(avg_num_neighbors)``, uvu tensor product with the harmonics summed over neighbours (paths made
  in input-harmonic-output order, their outputs sorted; the radial MLP's columns follow the making
  order), ``Linear(h) + sc``, an e3nn Gate (SiLU on even scalars and on the gates, tanh on odd scalars,
  each times its normalize2mom constant); no residual; the last layer outputs ``F x 0e`` only.
* radial MLP: ``x @ (W gain / sqrt(fan_in))`` with gain 1 for the first layer and sqrt(2) after, plain
  SiLU between, no biases (folded into the weights here); Bessel basis ``2/r_max sin(w_n pi r/r_max)/r``
  times the polynomial cutoff (p = 6).
* readout: one Linear ``F x 0e -> 1`` (``readout_mlp_hidden_layers_depth: 0``); per-type scale then
  shift (float64 buffers); EMA weights when the training module kept them.
"""
from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch

from ..algebra import Irrep, Irreps
from ..algebra.wigner import wigner_3j
from ..model import EquiForceModel
from ..nn.interaction import conv_instructions
from ._e3nn import (NORMALIZE2MOM, PeerWeights, contract_middle, e3nn_gate_input, read_weights_only, relayout,
                    sorted_paths)

SUPPORTED_VERSIONS = ("0.19.",)
TARGETS = ("nequip.model.NequIPGNNModel", "nequip.model.nequip_models.NequIPGNNModel")
TRAINING_MODULES = ("nequip.train.EMALightningModule", "nequip.train.NequIPLightningModule",
                    "nequip.train.ema.EMALightningModule", "nequip.train.lightning.NequIPLightningModule")
PREFIX = "model.sole_model.model.func."
_DEFAULT_ACTIVATIONS = {"e": "silu", "o": "tanh"}
# keys of NequIPGNNModel's config: (default, what must hold for the conversion) — None: any value
_MODEL_KEYS = {
    "_target_": None, "seed": None, "model_dtype": None, "compile_mode": None, "type_names": None, "r_max": None,
    "num_layers": None, "l_max": None, "parity": None, "num_features": None, "type_embed_num_features": None,
    "radial_mlp_depth": None, "radial_mlp_width": None, "num_bessels": None, "bessel_trainable": None,
    "polynomial_cutoff_p": None, "avg_num_neighbors": None, "per_type_energy_scales": None,
    "per_type_energy_shifts": None, "per_type_energy_scales_trainable": None,
    "per_type_energy_shifts_trainable": None, "do_derivatives": None, "convnet_sc": None,
    "readout_mlp_hidden_layers_width": None, "readout_mlp_nonlinearity": None,
    # options equiforce does not convert: they must keep their defaults
    "readout_mlp_hidden_layers_depth": 0, "per_edge_type_cutoff": None, "pair_potential": None,
    "categorical_graph_field_embed": None, "learnable_shift": False, "convnet_resnet": False,
    "convnet_nonlinearity_type": "gate", "convnet_nonlinearity_scalars": _DEFAULT_ACTIVATIONS,
    "convnet_nonlinearity_gates": _DEFAULT_ACTIVATIONS,
}
_MUST_BE_DEFAULT = {"readout_mlp_hidden_layers_depth", "per_edge_type_cutoff", "pair_potential",
                    "categorical_graph_field_embed", "learnable_shift", "convnet_resnet", "convnet_nonlinearity_type",
                    "convnet_nonlinearity_scalars", "convnet_nonlinearity_gates"}


def load_nequip_checkpoint(path: Union[str, Path]) -> dict:
    """A nequip Lightning checkpoint's dict, read without unpickling any object."""
    path = Path(path)
    if path.name.endswith((".nequip.zip", ".nequip.pt2", ".nequip.pth")):
        raise ValueError(f"{path} is a nequip package or compiled model: loading a package runs the code it "
                         "carries and a compiled model has no readable weights; convert the training "
                         "checkpoint it came from (best.ckpt or last.ckpt from nequip-train)")
    state = read_weights_only(path, "nequip checkpoint")
    if not isinstance(state, dict) or "state_dict" not in state or "hyper_parameters" not in state:
        raise ValueError(f"{path} is not a nequip training checkpoint (no 'state_dict' and 'hyper_parameters'); "
                         "give the .ckpt that nequip-train wrote (an equiforce checkpoint deploys with "
                         "`equiforce deploy`, and fine-tunes with model.init_from)")
    return state


def _refuse(what: str) -> None:
    raise ValueError(f"this nequip model {what}; equiforce does not convert it (it would not compute the same)")


def nequip_versions(state: dict) -> Dict[str, str]:
    info = state["hyper_parameters"].get("info_dict") or {}
    return {str(k): str(v) for k, v in (info.get("versions") or {}).items()}


def model_config(state: dict) -> dict:
    """EquiForceModel options for the checkpoint's model (refusing what does not convert)."""
    hyper = state["hyper_parameters"]
    versions = nequip_versions(state)
    version = versions.get("nequip", "unknown")
    if not version.startswith(SUPPORTED_VERSIONS):
        raise ValueError(f"this checkpoint was written by nequip {version}; equiforce converts nequip 0.19 "
                         "checkpoints (their model and file layout) and refuses others rather than guess")
    if not versions.get("e3nn", "0.6").startswith("0.6"):
        _refuse(f"was built with e3nn {versions['e3nn']} (0.6 expected)")
    module = ((hyper.get("info_dict") or {}).get("training_module") or {}).get("_target_")
    if module not in TRAINING_MODULES:
        _refuse(f"was trained with the training module {module!r} (supported: {', '.join(TRAINING_MODULES[:2])})")
    config = dict(hyper.get("model") or {})
    if config.get("_target_") not in TARGETS:
        _refuse(f"is a {config.get('_target_')!r}, not nequip.model.NequIPGNNModel")
    unknown = sorted(set(config) - set(_MODEL_KEYS))
    if unknown:
        raise ValueError(f"the nequip model config has the key {unknown[0]!r} that the converter does not know "
                         f"({unknown}); refusing rather than building a different model")
    for key in _MUST_BE_DEFAULT:
        if key in config and config[key] != _MODEL_KEYS[key]:
            _refuse(f"sets {key}: {config[key]!r} (only {_MODEL_KEYS[key]!r} converts)")
    from ase.data import chemical_symbols

    types = [str(t) for t in config["type_names"]]
    if any(t not in chemical_symbols[1:] for t in types):
        _refuse(f"has type names {types} that are not all element symbols (a type map to elements is needed)")
    avg = config.get("avg_num_neighbors")
    if not isinstance(avg, (int, float)):
        _refuse(f"has avg_num_neighbors {avg!r} (a number converts; per-type values do not)")
    l_max = int(config.get("l_max", 1))
    parity = bool(config.get("parity", True))
    num_layers = int(config.get("num_layers", 4))
    features = config.get("num_features", 32)
    features = [int(features)] * (l_max + 1) if isinstance(features, (int, float)) else [int(f) for f in features]
    if len(features) != l_max + 1:
        _refuse(f"has num_features {features} for l_max {l_max}")
    embed = int(config.get("type_embed_num_features") or features[0])
    hidden = Irreps([(features[l], Irrep(l, p)) for l in range(l_max + 1)
                     for p in ((1, -1) if parity else ((-1) ** l,))])
    layer_irreps = [f"{embed}x0e"] + [str(hidden)] * (num_layers - 1) + [f"{features[0]}x0e"]
    sc = bool(config.get("convnet_sc", True))
    return dict(species=types, r_max=float(config["r_max"]), l_max=l_max, num_layers=num_layers,
                num_basis=int(config.get("num_bessels", 8)), cutoff_p=int(config.get("polynomial_cutoff_p", 6)),
                parity=parity, radial_hidden=int(config.get("radial_mlp_width", 128)),
                radial_depth=int(config.get("radial_mlp_depth", 1)), avg_num_neighbors=float(avg),
                layer_irreps=layer_irreps, num_features=features[0],
                self_connection=["none"] + ["tensor_product" if sc else "none"] * (num_layers - 1),
                residual=False, gate_activation="silu", scalar_activation_scale=NORMALIZE2MOM["silu"],
                gate_activation_scale=NORMALIZE2MOM["silu"], odd_scalar_activation_scale=NORMALIZE2MOM["tanh"],
                bessel_prefactor="2/r_max", trainable_bessel=bool(config.get("bessel_trainable", False)),
                readout_hidden=0, sort_paths=True)


def _inference_weights(state: dict) -> Dict[str, torch.Tensor]:
    """The model's state dict (our prefix stripped) with the parameters nequip predicts with: the EMA
    copies when the training module kept them (``ema.ema_weight_i``, in parameter order)."""
    sd = state["state_dict"]
    model = {key[len(PREFIX):]: value for key, value in sd.items() if key.startswith(PREFIX)}
    ema = sorted((key for key in sd if key.startswith("ema.ema_weight_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    if not ema:
        return model
    extra = sd.get("ema._extra_state") or {}
    if isinstance(extra, dict) and extra.get("is_holding_ema_weights") is False:
        _refuse("checkpoint was saved while its EMA weights were swapped in (is_holding_ema_weights false)")
    config = state["hyper_parameters"]["model"]
    trainable = {"bessel_encode.bessel_weights": bool(config.get("bessel_trainable", False)),
                 "per_type_energy_scale_shift.scales": bool(config.get("per_type_energy_scales_trainable", False)),
                 "per_type_energy_scale_shift.shifts": bool(config.get("per_type_energy_shifts_trainable", False))}
    parameters = [key for key, value in model.items()
                  if trainable.get(key, key.endswith(".weight") and value.numel() > 0
                                   and ".equivariant_nonlin." not in key and ".tp_scatter." not in key)]
    if len(parameters) != len(ema):
        raise ValueError(f"the checkpoint has {len(ema)} EMA weights for {len(parameters)} parameters; it is not "
                         "the architecture its config says")
    for key, name in zip(parameters, ema):
        if sd[name].shape != model[key].shape:
            raise ValueError(f"EMA weight {name} {tuple(sd[name].shape)} does not match {key} "
                             f"{tuple(model[key].shape)}")
        model[key] = sd[name]
    return model


def from_nequip(checkpoint: Union[str, Path, dict], dtype: str = "float32") -> EquiForceModel:
    """An EquiForceModel computing what the nequip 0.19 checkpoint's model computes."""
    state = checkpoint if isinstance(checkpoint, dict) else load_nequip_checkpoint(checkpoint)
    options = model_config(state)
    sd = {k: v.detach().to(torch.float64) if v.is_floating_point() else v
          for k, v in _inference_weights(state).items()}
    model = EquiForceModel.from_config({**options, "dtype": "float64"})
    weights = PeerWeights(sd, "nequip")
    take, used = weights.take, weights.used

    def put(module, weight: torch.Tensor, where: str) -> None:
        if weight.numel() != module.weight.numel():
            raise ValueError(f"{where}: {weight.numel()} weights where equiforce's layer has {module.weight.numel()}")
        module.weight.copy_(weight.reshape(module.weight.shape))

    types = len(options["species"])
    with torch.no_grad():
        table = take("type_embed.embed_module.weight")  # [types, F]
        put(model.embedding, table * math.sqrt(types), "type embedding")
        rmax_recip = take("edge_norm._rmax_recip")
        if rmax_recip.numel() != 1 or abs(float(rmax_recip) * options["r_max"] - 1) > 1e-12:
            _refuse("has per-edge-type cutoffs")
        frequencies = take("bessel_encode.bessel_weights").reshape(-1)
        if frequencies.numel() != options["num_basis"]:
            raise ValueError(f"the checkpoint has {frequencies.numel()} Bessel functions, its config "
                             f"{options['num_basis']}")
        model.basis.frequencies.copy_(frequencies * math.pi / options["r_max"])
        irreps_sh = model.sh.irreps_out
        for t, layer in enumerate(model.layers):
            p = f"layer{t}_convnet."
            target = Irreps(options["layer_irreps"][t + 1])
            irreps_in = layer.irreps_in
            put(layer.linear_in, relayout(take(p + "conv.linear_1.weight"), irreps_in, irreps_in, irreps_in,
                                          irreps_in), f"layer {t} linear_1")
            # the convolution: equiforce's paths are sorted; nequip's radial columns follow the making order
            mid, made = conv_instructions(irreps_in, irreps_sh, target, sort=False)
            _, permutation, inverse = mid.sort()
            muls = [irreps_in[ins[0]].mul for ins in made]
            starts = [sum(muls[:k]) for k in range(len(made))]
            gate = layer.gate
            theirs_gate = e3nn_gate_input(gate.irreps_scalars, gate.irreps_gated)
            mlp = layer.radial.layers
            for k, ours in enumerate(mlp):
                weight = take(p + f"conv.edge_mlp.mlp.{2 * k}.weight")  # [fan_in, fan_out], x @ w
                weight = weight * ((1.0 if k == 0 else math.sqrt(2.0)) / math.sqrt(weight.shape[0]))
                if k == len(mlp) - 1:
                    if weight.shape[1] != sum(muls):
                        raise ValueError(f"layer {t}: the radial MLP has {weight.shape[1]} outputs, the "
                                         f"convolution {sum(muls)}")
                    weight = torch.cat([weight[:, starts[c]:starts[c] + muls[c]] for c in inverse], dim=1)
                if tuple(weight.T.shape) != tuple(ours.weight.shape):
                    raise ValueError(f"layer {t} radial MLP layer {k}: shape {tuple(weight.shape)} does not fit "
                                     f"{tuple(ours.weight.T.shape)}")
                ours.weight.copy_(weight.T)
            theirs_mid, _ = sorted_paths(mid)
            put(layer.linear_out, relayout(take(p + "conv.linear_2.weight"), theirs_mid, theirs_gate,
                                           layer.linear_out.irreps_in, gate.irreps_in), f"layer {t} linear_2")
            if layer.self_connection is not None:
                weight = contract_middle(take(p + "conv.sc.weight"), irreps_in, theirs_gate, table)
                put(layer.self_connection, relayout(weight, irreps_in, theirs_gate, irreps_in, gate.irreps_in,
                                                    middle=types), f"layer {t} self-connection")
            elif p + "conv.sc.weight" in sd:
                raise ValueError(f"layer {t} has a self-connection its config does not say")
            for key in [k for k in sd if k.startswith(p) and k not in used]:
                if "._w3j_" in key:  # e3nn's Clebsch-Gordan buffers: must equal equiforce's tables
                    l1, l2, l3 = (int(x) for x in key.rsplit("_w3j_", 1)[1].split("_"))
                    if not torch.allclose(sd[key], torch.tensor(wigner_3j(l1, l2, l3)), atol=1e-6):
                        raise ValueError(f"{key}: a Wigner-3j table that is not e3nn 0.6's; refusing")
                    used.add(key)
                elif key.endswith(".output_mask") or (key.endswith((".bias", ".weight")) and sd[key].numel() == 0):
                    used.add(key)  # e3nn's masks and empty placeholders
        put(model.readout, take("per_atom_energy_readout.mlp_module.mlp.0.weight"), "readout")
        scales = take("per_type_energy_scale_shift.scales").reshape(-1)
        shifts = take("per_type_energy_scale_shift.shifts").reshape(-1)
        model.energy_scale.copy_(scales.expand(types) if scales.numel() else torch.ones(types))
        model.energy_shift.copy_(shifts.expand(types) if shifts.numel() else torch.zeros(types))
    weights.check_all_placed()
    model.converted_config = {**options, "dtype": dtype}
    return model.to({"float32": torch.float32, "float64": torch.float64}[dtype])


def nequip_provenance(state: dict, path: Path) -> Dict[str, str]:
    versions = nequip_versions(state)
    try:
        installed = importlib.metadata.version("nequip")
    except importlib.metadata.PackageNotFoundError:
        installed = "not installed"
    return {"source": f"nequip checkpoint {path.name}",
            "source_version": f"nequip {versions.get('nequip', 'unknown')} (e3nn {versions.get('e3nn', '?')}, "
                              f"torch {versions.get('torch', '?')}); nequip package here {installed}",
            "source_license": "as the checkpoint's owner licensed it (nequip itself: MIT)"}
