"""The architecture options (NequIP / SevenNet names): symmetry (O3, or SO3: rotations only), per-layer
irreps, self-connection kind, residual, gate kind and normalize2mom constants, Bessel prefactor and
frequencies, XPLOR and polynomial cutoffs, (un)normalised harmonics, message denominators, readout
width, sorted paths, a fixed modality. Each combination: rotation (and, for O3, reflection) symmetry,
forces and their derivative against finite differences / gradcheck in float64, float32 against
float64, TorchScript and AOTInductor exports equal to the module, and bad options refused."""
import math

import numpy as np
import pytest
import torch

from equiforce.deploy import export, load
from equiforce.model import EquiForceModel
from equiforce.testing import random_o3

SILU = 1.6791767923989418

SEVENNET_LIKE = dict(species=["O", "Ti", "Cu"], r_max=4.0, l_max=2, num_features=8, num_layers=3, num_basis=6,
                     symmetry="SO3", layer_irreps=["8x0e", "8x0e+4x1e+2x2e", "8x0e+4x1e+2x2e", "8x0e"],
                     self_connection="linear", residual=False, gate_activation="silu",
                     scalar_activation_scale=SILU, gate_activation_scale=SILU, bessel_prefactor="2/r_max",
                     cutoff="xplor", cutoff_on=3.5, conv_denominator=[7.0, 8.0, 9.0], readout_hidden=4,
                     sort_paths=True, normalize_sh=False)
NEQUIP_VARIANT = dict(species=["O", "Ti", "Cu"], r_max=4.0, l_max=2, num_features=6, num_layers=2,
                      gate_activation="silu", residual=False, trainable_bessel=False, cutoff_p=4,
                      self_connection="tensor_product", avg_num_neighbors=9.0)
MULTI_FIDELITY = {**SEVENNET_LIKE, "modalities": ["R2SCAN", "PBE"], "modality": "PBE",
                  "modality_inputs": ["embedding", "interaction_in", "interaction_out", "readout"]}
HIDDEN = "4x0e+4x0o+3x1e+3x1o+2x2e+2x2o"
NEQUIP_019 = dict(species=["O", "Ti", "Cu"], r_max=4.0, l_max=2, num_features=4, num_layers=3, num_basis=6,
                  layer_irreps=["5x0e", HIDDEN, HIDDEN, "4x0e"], self_connection=["none", "tensor_product",
                                                                               "tensor_product"],
                  residual=False, gate_activation="silu", scalar_activation_scale=SILU, gate_activation_scale=SILU,
                  odd_scalar_activation_scale=1.5937334472592695, bessel_prefactor="2/r_max", trainable_bessel=False,
                  readout_hidden=0, sort_paths=True, avg_num_neighbors=9.0)
CONFIGS = {"sevennet_like": SEVENNET_LIKE, "nequip_variant": NEQUIP_VARIANT, "multi_fidelity": MULTI_FIDELITY,
           "nequip_019": NEQUIP_019}


def build(config, dtype="float64", seed=0):
    torch.manual_seed(seed)
    model = EquiForceModel.from_config({**config, "dtype": "float64"})
    with torch.no_grad():  # non-trivial shifts, scales and weights
        model.energy_shift.copy_(torch.tensor([-1.5, -3.0, -2.0]))
        model.energy_scale.copy_(torch.tensor([0.7, 1.3, 0.9]))
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.to(torch.float32 if dtype == "float32" else torch.float64).eval()


def graph(model, pos):
    n = len(pos)
    src, dst = [i for i in range(n) for j in range(n) if i != j], [j for i in range(n) for j in range(n) if i != j]
    src, dst = torch.tensor(src), torch.tensor(dst)
    keep = (pos[src] - pos[dst]).norm(dim=-1) < model.r_max
    return src[keep], dst[keep]


def cluster(seed=1, n=7):
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(n, 3)) * 1.4
    return torch.tensor(pos), torch.tensor(rng.integers(0, 3, n))


def energy_forces(model, pos, species):
    n = len(pos)
    src, dst = graph(model, pos)
    out = model.outputs(pos, species, src, dst, torch.zeros(len(src), 3, dtype=pos.dtype),
                        torch.zeros(n, dtype=torch.long), 1, torch.zeros(1, 3, 3, dtype=pos.dtype),
                        torch.zeros(1, 3, dtype=torch.bool))
    return out["energy"][0], out["forces"]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_symmetry(name):
    model = build(CONFIGS[name])
    pos, species = cluster()
    e, f = energy_forces(model, pos, species)
    so3 = CONFIGS[name].get("symmetry") == "SO3"
    for trial in range(4):
        g = random_o3(improper=(not so3) and trial % 2 == 1, generator=torch.Generator().manual_seed(trial))
        e2, f2 = energy_forces(model, pos @ g.T, species)
        assert float(e2) == pytest.approx(float(e), rel=1e-12, abs=1e-12)
        torch.testing.assert_close(f2, f @ g.T, rtol=0, atol=1e-11)
    if so3:  # rotations only: a mirror changes the energy (the label is not a formality)
        e2, _ = energy_forces(model, pos * torch.tensor([-1.0, 1.0, 1.0], dtype=pos.dtype), species)
        assert abs(float(e2) - float(e)) > 1e-10  # (reflection-invariant models: ~1e-15)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_first_and_second_derivatives(name):
    model = build(CONFIGS[name])
    pos, species = cluster(n=5)
    pos = pos * 0.8
    src, dst = graph(model, pos)
    energy = lambda p: model(p[src] - p[dst], species, src, dst).sum()  # differentiable in the positions
    assert torch.autograd.gradcheck(energy, (pos.clone().requires_grad_(),), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(energy, (pos.clone().requires_grad_(),), eps=1e-6, atol=1e-5)
    _, f = energy_forces(model, pos, species)
    h = 1e-5
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        p, m = pos.clone(), pos.clone()
        p[atom, axis] += h
        m[atom, axis] -= h
        fd = -(float(energy(p)) - float(energy(m))) / (2 * h)
        assert fd == pytest.approx(float(f[atom, axis]), abs=1e-7)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_agrees_with_float64(name):
    pos, species = cluster()
    e64, f64 = energy_forces(build(CONFIGS[name]), pos, species)
    e32, f32 = energy_forces(build(CONFIGS[name], "float32"), pos.float(), species)
    assert float(e32) == pytest.approx(float(e64), rel=1e-5)
    torch.testing.assert_close(f32.double(), f64, rtol=0, atol=1e-4 * max(1.0, float(f64.abs().max())))


@pytest.mark.parametrize("name", ["multi_fidelity", "nequip_019"])
@pytest.mark.parametrize("fmt", ["torchscript", "aoti"])
def test_exports_equal_the_module(fmt, name, tmp_path):
    model = build(CONFIGS[name])
    path = export(model, tmp_path / ("model.pt2" if fmt == "aoti" else "model.pt"), format=fmt)
    module, meta = load(path)
    if name == "multi_fidelity":
        assert meta["symmetry"] == "SO3" and meta["modality"] == "PBE"
    else:
        assert meta["symmetry"] == "O3" and model.readout_hidden is None and model.layers[0].self_connection is None
    pos, species = cluster(n=9)
    e_ref, f_ref = energy_forces(model, pos, species)
    out = module.compute(pos, species, torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
    assert float(out[0]) == pytest.approx(float(e_ref), rel=1e-12)
    torch.testing.assert_close(out[2].double(), f_ref, rtol=0, atol=1e-11)


def test_xplor_cutoff_is_smooth_and_reaches_zero():
    from equiforce.nn import XPLORCutoff

    cut = XPLORCutoff(5.0, 4.5)
    r = torch.tensor([1.0, 4.5, 4.75, 5.0, 5.5], dtype=torch.float64, requires_grad=True)
    f = cut(r)
    (grad,) = torch.autograd.grad(f.sum(), r)
    f = f.detach()
    assert f[0] == 1 and float(f[1]) == pytest.approx(1.0) and 0 < f[2] < 1 and f[3] == 0 and f[4] == 0
    assert abs(float(grad[1])) < 1e-12 and abs(float(grad[3])) < 1e-12  # C1 at both ends


def test_bessel_prefactor():
    from equiforce.nn import BesselBasis

    r = torch.tensor([1.3], dtype=torch.float64)
    nequip, sevennet = BesselBasis(5.0, 4).double(), BesselBasis(5.0, 4, prefactor="2/r_max").double()
    torch.testing.assert_close(sevennet(r) / nequip(r), torch.full((1, 4), (2 / 5) / math.sqrt(2 / 5),
                                                                   dtype=torch.float64))


@pytest.mark.parametrize("change, message", [
    (dict(symmetry="SU2"), "symmetry must be one of"),
    (dict(cutoff="xplor", cutoff_on=None), "cutoff_on"),
    (dict(layer_irreps=["8x0e", "8x0e"]), "num_layers \\+ 1"),
    (dict(layer_irreps=["8x0e+2x1e", "8x0e", "8x0e", "8x0e"]), "species embedding"),
    (dict(layer_irreps=["8x0e", "8x1e", "8x1e", "4x1e"]), "no scalars"),
    (dict(self_connection="dense"), "self_connection must be one of"),
    (dict(gate_activation="relu"), "gate_activation must be one of"),
    (dict(bessel_prefactor="1/r"), "bessel_prefactor must be one of"),
    (dict(conv_denominator=[1.0, 2.0]), "one value per layer"),
    (dict(conv_denominator=0.0), "must be positive"),
    (dict(self_connection=["none", "linear"]), "one kind per layer"),
    (dict(modalities=["A", "B"], modality="C", modality_inputs=["readout"]), "choose one of them"),
    (dict(modalities=["A", "B"], modality="A", modality_inputs=["everywhere"]), "modality_inputs"),
    (dict(modality="A"), "need modalities"),
])
def test_bad_options_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        EquiForceModel.from_config({**SEVENNET_LIKE, **change})
