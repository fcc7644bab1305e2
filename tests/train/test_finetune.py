"""Fine-tuning (``model.init_from``): the checkpoint's model carries over exactly, new elements leave
the old ones' outputs unchanged, the energy reference is refitted, frozen layers stay fixed, resume
works, and a converted SevenNet-0 fine-tunes on ethanol."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

from equiforce.data import build_graph, collate
from equiforce.deploy import load
from equiforce.model import EquiForceModel, predict
from equiforce.train import Trainer
from equiforce.train.checkpoint import load_checkpoint
from equiforce.train.finetune import grow_species

REPO = Path(__file__).resolve().parents[2]


def _frames(symbols_of, n, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.symbols = symbols_of(atoms)
        atoms.rattle(0.08, seed=seed * 100 + k)
        atoms.set_cell(atoms.cell * (1 + rng.normal(0, 0.01)), scale_atoms=True)
        atoms.calc = EMT()
        atoms.info["energy"] = atoms.get_potential_energy() + shift * len(atoms)
        atoms.arrays["forces"] = atoms.get_forces()
        atoms.calc = None
        frames.append(atoms)
    return frames


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    write(root / "cu.xyz", _frames(lambda a: ["Cu"] * len(a), 10), format="extxyz")
    # the same kind of data on another energy reference (+1.5 eV per atom), and with a new element
    write(root / "cu_shifted.xyz", _frames(lambda a: ["Cu"] * len(a), 10, shift=1.5, seed=1), format="extxyz")
    write(root / "cuag.xyz", _frames(lambda a: ["Cu", "Ag"] * (len(a) // 2), 10, seed=2), format="extxyz")
    return root


def _config(train_file, out, model, **training):
    return {"model": model, "data": {"train_file": str(train_file), "validation_fraction": 0.2},
            "training": {"output_dir": str(out), "batch_size": 4, "max_epochs": 1, "progress": False,
                         "plots": False, "dtype": "float64", **training}}


BASE = {"species": ["Cu"], "r_max": 3.5, "l_max": 1, "num_features": 4, "num_layers": 2, "num_basis": 4,
        "radial_hidden": 8}


@pytest.fixture(scope="module")
def base_checkpoint(datasets):
    Trainer(_config(datasets / "cu.xyz", datasets / "base", BASE, max_epochs=2)).fit()
    return datasets / "base" / "best.pt"


def _outputs(model, frames):
    batch = collate([build_graph_of(model, atoms) for atoms in frames])
    out = predict(model, batch, forces=True)
    return out["energy"].detach(), out["forces"].detach()


def build_graph_of(model, atoms):
    from equiforce.data import Structure

    structure = Structure(symbols=list(atoms.get_chemical_symbols()), positions=atoms.positions, cell=atoms.cell.array,
                          pbc=atoms.pbc, energy=None, forces=None)
    return build_graph(structure, model.species_index, model.r_max, model.energy_shift.dtype)


@pytest.mark.parametrize("options", [
    {},                                                                       # NequIP-style: species self-connection
    {"self_connection": "linear", "residual": False, "gate_activation": "silu", "layer_irreps":
     ["6x0e", "4x0e+2x1e+2x2e", "4x0e"], "modalities": ["A", "B"], "modality": "B",
     "modality_inputs": ["embedding", "interaction_in"]},                    # SevenNet-style, multi-fidelity
], ids=["tensor_product", "sevennet_like"])
def test_new_elements_leave_the_old_outputs_unchanged(options):
    torch.manual_seed(0)
    old = EquiForceModel.from_config({"species": ["Cu", "Ag"], "r_max": 3.5, "l_max": 2, "num_features": 4,
                                      "num_layers": 2, "num_basis": 4, "radial_hidden": 8, "dtype": "float64",
                                      **options})
    with torch.no_grad():
        old.energy_shift.normal_()
        old.energy_scale.uniform_(0.5, 2.0)
    new = EquiForceModel.from_config({"species": ["Cu", "Ag", "Au", "Pt"], "r_max": 3.5, "l_max": 2, "num_features": 4,
                                      "num_layers": 2, "num_basis": 4, "radial_hidden": 8, "dtype": "float64",
                                      **options})
    grow_species(old, new)
    frames = _frames(lambda a: ["Cu", "Ag"] * (len(a) // 2), 2, seed=3)
    e_old, f_old = _outputs(old, frames)
    e_new, f_new = _outputs(new, frames)
    torch.testing.assert_close(e_new, e_old, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(f_new, f_old, rtol=1e-12, atol=1e-12)
    # the new elements have their own (zero-initialised) rows: a structure with them is finite
    e_mixed, f_mixed = _outputs(new, _frames(lambda a: ["Au", "Cu"] * (len(a) // 2), 1))
    assert torch.isfinite(e_mixed).all() and torch.isfinite(f_mixed).all()
    # the new elements' rows start at zero: the embedding's one-hot rows and the self-connections' species rows
    embedding = next(new.embedding.weight_views(yield_instruction=True))[1]  # [species, 1, features]
    assert torch.count_nonzero(embedding[2:]) == 0 and torch.count_nonzero(embedding[:2]) > 0
    for layer in new.layers:
        if layer.self_connection is not None:
            for _, view in layer.self_connection.weight_views(yield_instruction=True):  # [mul, species, out]
                assert torch.count_nonzero(view[:, 2:]) == 0 and torch.count_nonzero(view[:, :2]) > 0
    assert float(new.energy_shift[2]) == 0.0 and math.isclose(float(new.energy_scale[2]),
                                                                float(old.energy_scale.mean()), rel_tol=1e-12)


def test_fine_tuning_refits_the_reference_freezes_and_resumes(datasets, base_checkpoint, tmp_path):
    base = load_checkpoint(base_checkpoint)
    model = {"init_from": str(base_checkpoint)}
    frozen = ["embedding", "layers.0"]
    trainer = Trainer(_config(datasets / "cu_shifted.xyz", tmp_path, model, freeze=frozen, max_epochs=2))
    assert trainer.optimizer.param_groups[0]["lr"] == 0.001  # the fine-tuning default
    assert trainer.model_config["avg_num_neighbors"] == base["model_config"]["avg_num_neighbors"]
    # the refit moved the shift so that the data's energies are met on average, and left forces alone
    shift = float(trainer.model.energy_shift[0] - base["ema"]["energy_shift"][0])
    assert shift > 1.0  # the data's reference is 1.5 eV/atom higher than the base model's
    residual = [float(g.energy) - float(predict(trainer.model, collate([g]))["energy"].detach()) for g in trainer.train]
    assert abs(np.mean(residual)) < 1e-6
    reference = EquiForceModel.from_config(base["model_config"])
    reference.load_state_dict(base["ema"])
    frames = read(datasets / "cu_shifted.xyz", ":")
    e_ref, f_ref = _outputs(reference, frames)
    e_new, f_new = _outputs(trainer.model, frames)
    torch.testing.assert_close(f_new, f_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(e_new - e_ref, torch.full_like(e_ref, shift * len(frames[0])), rtol=1e-10, atol=1e-9)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.fit()
    for name, value in trainer.model.named_parameters():
        if any(name == p or name.startswith(p + ".") for p in frozen):
            assert torch.equal(value, before[name]), name
            assert not value.requires_grad
    changed = [n for n, v in trainer.model.named_parameters() if not torch.equal(v, before[n])]
    assert any(n.startswith("layers.1.") for n in changed) and any(n.startswith("readout") for n in changed)
    # resume: the run's own checkpoint (not init_from again) and one more epoch
    resumed = Trainer(_config(datasets / "cu_shifted.xyz", tmp_path, model, freeze=frozen, max_epochs=3))
    assert resumed.epoch == 2
    resumed.fit()
    # deploy: the metadata says what it was fine-tuned from
    from equiforce.deploy import export

    _, metadata = load(export(tmp_path / "last.pt", tmp_path / "tuned.pt"))
    assert "best.pt" in metadata["fine_tuned_from"]


def test_fine_tuning_adds_an_element(datasets, base_checkpoint, tmp_path):
    trainer = Trainer(_config(datasets / "cuag.xyz", tmp_path, {"init_from": str(base_checkpoint),
                                                                "species": ["Ag"]}, max_epochs=1))
    assert trainer.model.species == ["Cu", "Ag"]
    trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["model_config"]["species"] == ["Cu", "Ag"]


def _deployed(checkpoint):
    from equiforce.deploy import export

    return export(checkpoint, checkpoint.with_name("deployed.pt"))


@pytest.mark.parametrize("change, match", [
    (lambda c, ckpt: c["model"].update(num_layers=3), "the architecture comes from the checkpoint"),
    (lambda c, ckpt: c["training"].update(freeze=["layers.7"]), "matches no parameter"),
    (lambda c, ckpt: c["training"].update(freeze="embedding"), "list of parameter-name prefixes"),
    (lambda c, ckpt: c["training"].update(freeze=["embedding", "layers", "readout_hidden", "readout", "basis"]),
     "leaves nothing to train"),
    (lambda c, ckpt: c["training"].update(energy_reference="guess"), "energy_reference"),
    (lambda c, ckpt: c["model"].update(init_from=str(ckpt.with_name("missing.pt"))), "does not exist"),
    (lambda c, ckpt: c["model"].update(init_from=str(_deployed(ckpt))), "not a deployed model"),
    (lambda c, ckpt: c["data"].update(train_file=str(ckpt.parent.parent / "cuag.xyz")), r"lacks"),
])
def test_bad_fine_tuning_configs_are_explained(datasets, base_checkpoint, tmp_path, change, match):
    config = _config(datasets / "cu.xyz", tmp_path, {"init_from": str(base_checkpoint)})
    change(config, base_checkpoint)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        Trainer(config)


def test_energy_reference_is_only_for_fine_tuning(datasets, tmp_path):
    with pytest.raises(ValueError, match="energy_reference is for fine-tuning"):
        Trainer(_config(datasets / "cu.xyz", tmp_path, BASE, energy_reference="keep"))


def test_converted_sevennet_fine_tunes_on_ethanol(tmp_path):
    """The converted 7net-0 (89 elements) fine-tunes on 8 ethanol frames, the first three layers
    frozen: its training force error falls, and the energy reference moves to the data's."""
    pytest.importorskip("sevenn")
    from equiforce.convert import convert

    ckpt = convert("sevenn:7net-0", tmp_path / "7net-0.ckpt")
    frames = read(REPO / "examples/data/ethanol/train.xyz", ":10")
    write(tmp_path / "ethanol.xyz", frames, format="extxyz")
    config = {"model": {"init_from": str(ckpt)},
              "data": {"train_file": str(tmp_path / "ethanol.xyz"), "validation_fraction": 0.2},
              "training": {"output_dir": str(tmp_path / "run"), "batch_size": 4, "max_epochs": 3, "progress": False,
                           "plots": False, "freeze": ["embedding", "layers.0", "layers.1", "layers.2"],
                           "ema_decay": 0.0}}
    trainer = Trainer(config)
    assert len(trainer.model.species) == 89
    start = trainer.evaluate(trainer.train)
    assert start["energy_mae"] < 0.5  # refitted: 7net-0's PBE-PAW reference is ~hundreds of eV away
    end = trainer.fit()["train"]
    assert end["forces_mae"] < start["forces_mae"]


def test_isolated_atoms_fix_each_elements_reference(datasets, base_checkpoint, tmp_path):
    """With data.isolated_atoms_file the refit puts the model's lone atom on the data's isolated-atom
    energy (every frame of cu_shifted.xyz has one composition, so the residual alone could not)."""
    from ase import Atoms

    isolated = tmp_path / "isolated.xyz"
    atom = Atoms("Cu")
    atom.info["energy"] = 1.234
    write(isolated, [atom], format="extxyz")
    config = _config(datasets / "cu_shifted.xyz", tmp_path / "run", {"init_from": str(base_checkpoint)})
    config["data"]["isolated_atoms_file"] = str(isolated)
    trainer = Trainer(config)
    from equiforce.train.finetune import isolated_atom_energies

    assert float(isolated_atom_energies(trainer.model)[0]) == pytest.approx(1.234, abs=1e-10)


def test_resume_refuses_another_run(datasets, base_checkpoint, tmp_path):
    Trainer(_config(datasets / "cu.xyz", tmp_path, {"init_from": str(base_checkpoint)}, freeze=["embedding"])).fit()
    with pytest.raises(ValueError, match="another training.freeze"):
        Trainer(_config(datasets / "cu.xyz", tmp_path, {"init_from": str(base_checkpoint)}, freeze=["layers.0"]))
    with pytest.raises(ValueError, match="another model"):
        Trainer(_config(datasets / "cu.xyz", tmp_path, BASE))


def test_a_peer_checkpoint_is_sent_to_convert(tmp_path):
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "best.ckpt")
    config = _config(tmp_path / "none.xyz", tmp_path / "run", {"init_from": str(tmp_path / "best.ckpt")})
    with pytest.raises(ValueError, match="equiforce convert"):
        Trainer(config)
