"""Models trained by nequip 0.19 in the test (``nequip-train``, really run) converted with ``equiforce
convert best.ckpt`` and compared with nequip's own ASE calculator (in its own process: see
nequip_reference.py): energy, per-atom energies, forces and stress on a rattled fcc metal, a rattled
rocksalt oxide, a triclinic cell smaller than 2 r_max and a cluster in vacuum.

The model exercises what nequip's defaults leave out: 3 layers, l_max 2 with both parities (odd scalars
through tanh), a radial MLP of depth 2, three elements with per-type energy scales and shifts, EMA
weights. float32 (as trained): a few float32 ulps of the energy, 1e-5 eV/A; float64 (a model trained in
float64): 1e-10 relative. nequip models are O(3)-equivariant (with reflections).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.io import write

pytest.importorskip("nequip", reason="the test environment installs nequip (scripts/install.sh)")

from equiforce.convert import convert, load_source  # noqa: E402
from equiforce.hosts.ase import EquiForceCalculator  # noqa: E402
from tests.lammps.helpers import input_script, needs_plugin, run_driver, write_data  # noqa: E402

from .helpers import assert_equals_reference  # noqa: E402

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
CONFIG = """run: [train]
seed: 123
cutoff_radius: 4.0
model_type_names: [Cu, Ag, O]
data:
  _target_: nequip.data.datamodule.ASEDataModule
  seed: ${seed}
  split_dataset:
    file_path: frames.extxyz
    train: 10
    val: 2
  transforms:
    - _target_: nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper
      model_type_names: ${model_type_names}
      chemical_species_to_atom_type_map: ${list_to_identity_dict:${model_type_names}}
    - _target_: nequip.data.transforms.NeighborListTransform
      r_max: ${cutoff_radius}
  train_dataloader:
    _target_: torch.utils.data.DataLoader
    batch_size: 2
    shuffle: true
  val_dataloader:
    _target_: torch.utils.data.DataLoader
    batch_size: 2
  stats_manager:
    _target_: nequip.data.CommonDataStatisticsManager
    type_names: ${model_type_names}
trainer:
  _target_: lightning.Trainer
  accelerator: cpu
  devices: 1
  max_epochs: 2
  num_sanity_val_steps: 0
  enable_progress_bar: false
  logger: false
  callbacks:
    - _target_: lightning.pytorch.callbacks.ModelCheckpoint
      dirpath: ${hydra:runtime.output_dir}
      filename: best
      monitor: val0_epoch/weighted_sum
      mode: min
      save_top_k: 1
      save_last: true
training_module:
  _target_: nequip.train.EMALightningModule
  ema_decay: 0.9
  loss:
    _target_: nequip.train.EnergyForceLoss
    per_atom_energy: true
    coeffs:
      total_energy: 1.0
      forces: 1.0
  val_metrics:
    _target_: nequip.train.EnergyForceMetrics
    coeffs:
      total_energy_mae: 1.0
      forces_mae: 1.0
  optimizer:
    _target_: torch.optim.Adam
    lr: 0.01
  model:
    _target_: nequip.model.NequIPGNNModel
    seed: ${seed}
    model_dtype: DTYPE
    type_names: ${model_type_names}
    r_max: ${cutoff_radius}
    l_max: 2
    parity: true
    num_layers: 3
    num_features: 4
    radial_mlp_depth: 2
    radial_mlp_width: 8
    avg_num_neighbors: ${training_data_stats:num_neighbors_mean}
    per_type_energy_shifts: {Cu: -3.1, Ag: -2.2, O: 0.7}
    per_type_energy_scales: ${training_data_stats:per_type_forces_rms}
hydra:
  run:
    dir: ./run
"""


def training_frames():
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for n in range(12):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
        atoms.symbols = list(rng.choice(["Cu", "Ag", "O"], size=len(atoms), p=[0.5, 0.4, 0.1]))
        atoms.rattle(0.08, seed=n)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        frames.append(atoms)
    return frames


def structures():
    metal = bulk("Cu", "fcc", a=3.65, cubic=True).repeat(2)
    metal.rattle(0.1, seed=1)
    oxide = Atoms("Cu4O4", scaled_positions=[[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0],
                                             [0, .5, 0], [0, 0, .5], [.5, .5, .5]], cell=[4.3] * 3, pbc=True)
    oxide = oxide.repeat((2, 1, 1))
    oxide.rattle(0.07, seed=3)
    small = Atoms("AgCu", scaled_positions=[[0, 0, 0], [0.45, 0.55, 0.5]], pbc=True,
                  cell=[[3.0, 0.3, 0.1], [0.5, 2.9, 0.2], [0.3, 0.6, 3.2]])  # every side < 2 r_max = 8 A
    small.rattle(0.05, seed=2)
    cluster = Atoms("Cu3AgO", positions=[[0, 0, 0], [2.4, 0.1, 0], [1.2, 2.0, 0.1], [1.1, 0.7, 2.1], [1.2, 0.9, -1.6]])
    return {"fcc_Cu": metal, "rocksalt_CuO": oxide, "triclinic_small": small, "cluster_vacuum": cluster}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """nequip-train's best.ckpt for a float32 and a float64 model (about 15 s each)."""
    root = tmp_path_factory.mktemp("nequip")
    write(root / "frames.extxyz", training_frames(), format="extxyz")
    out = {}
    for name, config in (("float32", CONFIG.replace("DTYPE", "float32")),
                         ("float64", CONFIG.replace("DTYPE", "float64")),
                         ("options", options_config())):
        work = root / name
        work.mkdir()
        shutil.copy(root / "frames.extxyz", work / "frames.extxyz")
        (work / "tiny.yaml").write_text(config)
        result = subprocess.run([str(BIN / "nequip-train"), "-cn", "tiny"], cwd=work, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out[name] = work / "run" / "best.ckpt"
    return out


def options_config() -> str:
    """float64, and the options the main model leaves at their defaults: parity false, features per l,
    a wider type embedding, no self-connections, trained Bessel frequencies and trainable per-type
    scales and shifts (EMA parameters that are buffers otherwise), one radial layer, p = 5."""
    model = CONFIG.replace("DTYPE", "float64")
    for old, new in (("    parity: true\n", "    parity: false\n"), ("    num_layers: 3\n", "    num_layers: 2\n"),
                     ("    num_features: 4\n", "    num_features: [4, 3, 2]\n    type_embed_num_features: 6\n"
                      "    convnet_sc: false\n    bessel_trainable: true\n    num_bessels: 6\n"
                      "    polynomial_cutoff_p: 5\n    per_type_energy_scales_trainable: true\n"
                      "    per_type_energy_shifts_trainable: true\n"),
                     ("    radial_mlp_depth: 2\n", "    radial_mlp_depth: 1\n"),
                     ("    per_type_energy_scales: ${training_data_stats:per_type_forces_rms}",
                      "    per_type_energy_scales: ${training_data_stats:forces_rms}")):
        assert old in model, old
        model = model.replace(old, new)
    return model


@pytest.fixture(scope="module")
def reference(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("nequip_reference")
    write(root / "structures.traj", list(structures().values()))
    out = {}
    for name, checkpoint in trained.items():
        npz = root / f"{name}.npz"
        result = subprocess.run([sys.executable, str(HERE / "nequip_reference.py"), str(checkpoint),
                                 str(root / "structures.traj"), str(npz)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        out[name] = dict(np.load(npz))
    return out


@pytest.mark.parametrize("name", ["float32", "float64", "options"])
def test_converted_model_equals_nequip(name, trained, reference, tmp_path):
    dtype = "float32" if name == "float32" else "float64"
    deployed = convert(trained[name], tmp_path / "nequip.pt", dtype=dtype)
    assert_equals_reference(EquiForceCalculator(deployed), structures(), reference[name], dtype, energy_ulps=4)
    if name == "options":  # the trained frequencies, scales and shifts moved off their starting values
        state = torch.load(trained[name], map_location="cpu", weights_only=True)["state_dict"]
        model = load_source(trained[name], dtype="float64")
        assert not torch.allclose(model.basis.frequencies.detach() * 4.0 / np.pi,
                                  torch.arange(1, 7, dtype=torch.float64), atol=1e-6)
        assert any(k.startswith("ema.ema_weight_") for k in state)


def test_ema_weights_are_the_ones_converted(trained):
    """nequip predicts with its EMA weights; the raw weights differ (so the comparison above tells)."""
    state = torch.load(trained["float32"], map_location="cpu", weights_only=True)["state_dict"]
    raw = state["model.sole_model.model.func.layer0_convnet.conv.linear_1.weight"]
    model = load_source(trained["float32"])
    assert any(k.startswith("ema.ema_weight_") for k in state)
    assert not torch.allclose(raw * 1.0, model.layers[0].linear_in.weight.detach().double().float(), atol=1e-7)


@needs_plugin
def test_metadata_check_and_lammps(trained, tmp_path):
    """The converted model deploys with its provenance, passes `equiforce check` (O(3), with reflections),
    and `pair_style equiforce` on 2 ranks (periodic oxide, `pair_coeff * * nequip.pt Cu O`) equals ASE."""
    from equiforce.deploy import load
    from equiforce.deploy.check import run_checks

    deployed = convert(trained["float64"], tmp_path / "nequip.pt", dtype="float64")
    module, meta = load(deployed)
    assert meta["source"] == "nequip checkpoint best.ckpt" and "nequip 0.19" in meta["source_version"]
    assert meta["symmetry"] == "O3" and meta["species"] == "Cu Ag O"
    results = run_checks(module, meta)
    assert all(r.passed for r in results), [r for r in results if not r.passed]
    assert any("O(3)" in r.name for r in results)
    atoms = structures()["rocksalt_CuO"]
    atoms.calc = EquiForceCalculator(deployed)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    write_data(tmp_path / "data", atoms, ["Cu", "O"])  # two of the model's three elements
    result = run_driver(tmp_path, input_script(tmp_path / "data", deployed, ["Cu", "O"]), ranks=2)
    assert abs(float(result["pe"]) - energy) <= 1e-10 * abs(energy)
    np.testing.assert_allclose(result["f"], forces, rtol=0, atol=1e-10 * max(1.0, np.abs(forces).max()))


def test_cli_and_refusals(trained, tmp_path):
    from equiforce.convert.nequip import from_nequip, load_nequip_checkpoint

    out = tmp_path / "cli.pt"
    result = subprocess.run([sys.executable, "-m", "equiforce.cli", "convert", str(trained["float32"]), "-o", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and out.exists(), result.stderr
    state = load_nequip_checkpoint(trained["float32"])
    hyper = state["hyper_parameters"]

    def with_model(**change):
        return {**state, "hyper_parameters": {**hyper, "model": {**hyper["model"], **change}}}

    with pytest.raises(ValueError, match="'some_new_option'"):
        from_nequip(with_model(some_new_option=1))
    with pytest.raises(ValueError, match="pair_potential"):
        from_nequip(with_model(pair_potential={"_target_": "nequip.nn.pair_potential.ZBL"}))
    with pytest.raises(ValueError, match="per-type values do not"):
        from_nequip(with_model(avg_num_neighbors={"Cu": 10.0, "Ag": 11.0, "O": 9.0}))
    with pytest.raises(ValueError, match="not all element symbols"):
        from_nequip(with_model(type_names=["Cu", "Ag", "Ox"]))
    with pytest.raises(ValueError, match="convnet_resnet"):
        from_nequip(with_model(convnet_resnet=True))
    info = hyper["info_dict"]
    newer = {**state, "hyper_parameters": {**hyper, "info_dict": {**info, "versions": {**info["versions"],
                                                                                         "nequip": "0.20.0"}}}}
    with pytest.raises(ValueError, match="nequip 0.20.0"):
        from_nequip(newer)
    other = {**state, "hyper_parameters": {**hyper, "info_dict": {**info, "training_module": {
        **info["training_module"], "_target_": "nequip.train.ScheduleFreeLightningModule"}}}}
    with pytest.raises(ValueError, match="ScheduleFree"):
        from_nequip(other)
    weights = dict(state["state_dict"])
    weights["model.sole_model.model.func.extra.constant"] = torch.zeros(3)
    with pytest.raises(ValueError, match="did not place"):
        from_nequip({**state, "state_dict": weights})
    package = tmp_path / "model.nequip.zip"
    package.write_bytes(b"PK")
    with pytest.raises(ValueError, match="runs the code it carries"):
        load_source(package)
    pickled = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Path("x")}, pickled)
    with pytest.raises(ValueError, match="without unpickling"):
        load_source(pickled)
    with pytest.raises(ValueError, match="one fidelity"):
        load_source(trained["float32"], modality="PBE")


def test_normalize2mom_constants_are_e3nns():
    from e3nn.math import normalize2mom

    from equiforce.convert._e3nn import NORMALIZE2MOM

    for name, fn in (("silu", torch.nn.functional.silu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        assert NORMALIZE2MOM[name] == pytest.approx(float(normalize2mom(fn).cst), rel=1e-15), name
