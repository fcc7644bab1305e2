"""`equiforce deploy OLD.pt --config TRAINING.yaml -o NEW.pt`: a deployed file exported again without its
checkpoint — the weights and each layer's neighbour normalisation from the file, the rest from the
config — checked to compute what the old file does, refused otherwise (nothing written)."""
import numpy as np
import pytest
import torch
import yaml

from equiforce.cli import main
from equiforce.deploy import load
from equiforce.deploy.export import export
from equiforce.deploy.reexport import reexport
from equiforce.model import EquiForceModel

from .helpers import export_committee

CONFIG = dict(species=["H", "O"], r_max=3.5, l_max=2, num_features=6, num_layers=2, num_basis=6,
              long_range="ewald", ewald_cutoff=6.0, dipole="charges")


def _older_export(path, dtype="float64"):
    """A trained model's file as it ships: avg_num_neighbors measured on data (not in the YAML), no
    node_widths (an export from before the stages)."""
    torch.manual_seed(3)
    model = EquiForceModel.from_config({**CONFIG, "dtype": dtype, "avg_num_neighbors": 7.3})
    with torch.no_grad():
        model.charge_readout.weight.mul_(10.0)
    fresh = export(model, path.with_name("fresh.pt"))
    extra = {"equiforce_metadata.txt": ""}
    module = torch.jit.load(str(fresh), _extra_files=extra)
    text = extra["equiforce_metadata.txt"]
    text = text.decode() if isinstance(text, bytes) else text
    module.save(str(path), _extra_files={"equiforce_metadata.txt": "\n".join(
        line for line in text.splitlines() if not line.startswith(("node_widths=", "ewald_")))})
    return path


def _water_box(dtype):
    rng = np.random.default_rng(5)
    water = np.array([[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    positions = np.concatenate([water + offset for offset in ([0, 0, 0], [3.1, 0.4, 0.2], [0.3, 3.2, 2.9])])
    positions += rng.normal(scale=0.05, size=positions.shape)
    return (torch.tensor(positions, dtype=dtype), torch.tensor([1, 0, 0] * 3), torch.eye(3, dtype=dtype) * 6.4,
            torch.tensor([True] * 3))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reexport_gains_the_stages_and_computes_the_same(tmp_path, dtype):
    old_file = _older_export(tmp_path / "old.pt", dtype)
    old, old_meta = load(old_file)
    assert "node_widths" not in old_meta
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"model": CONFIG, "training": {"dtype": dtype}}))
    assert main(["deploy", str(old_file), "--config", str(tmp_path / "train.yaml"), "-o", str(tmp_path / "new.pt")]) == 0
    new, meta = load(tmp_path / "new.pt")
    assert meta["node_widths"] and meta["ewald_cutoff"] == "6.0" and meta["dtype"] == dtype
    assert {k: v for k, v in meta.items() if k in old_meta} == {**old_meta, "equiforce_version": meta["equiforce_version"]}
    positions, species, cell, pbc = _water_box(getattr(torch, dtype))
    for a, b in zip(old.compute(positions, species, cell, pbc), new.compute(positions, species, cell, pbc)):
        torch.testing.assert_close(b, a, rtol=1e-12 if dtype == "float64" else 2e-6, atol=1e-12)
    charges = new.properties(positions, species, cell, pbc)["charges"]
    assert charges.abs().max() > 0.05
    torch.testing.assert_close(charges, old.properties(positions, species, cell, pbc)["charges"])


def test_a_config_that_does_not_describe_the_file_is_refused(tmp_path):
    old_file = _older_export(tmp_path / "old.pt")
    out = tmp_path / "new.pt"
    with pytest.raises(ValueError, match="weights of other shapes.*give the model section the file was trained with"):
        reexport(old_file, {**CONFIG, "num_features": 8}, out)
    with pytest.raises(ValueError, match="weights in the file the config does not build"):
        reexport(old_file, {k: v for k, v in CONFIG.items() if k != "dipole"} | {"long_range": "none"}, out)
    # the same weights, another function (the cutoff envelope has no weights): caught by the outputs
    with pytest.raises(ValueError, match="does not compute what .* computes \\(energy differ"):
        reexport(old_file, {**CONFIG, "cutoff_p": 3}, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fresh.pt", "old.pt"]
    with pytest.raises(ValueError, match="to another file than"):
        reexport(old_file, CONFIG, old_file)


def test_committee_reexport_keeps_its_members(tmp_path):
    old_file = export_committee(tmp_path / "committee.pt")
    config = dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=1, num_features=4, num_layers=2)
    new, meta = load(reexport(old_file, config, tmp_path / "again.pt"))
    old, old_meta = load(old_file)
    assert meta["committee_size"] == "3" and meta["committee_members"] == old_meta["committee_members"]
    positions, _, cell, pbc = _water_box(torch.float64)
    species = torch.arange(9) % 4
    for a, b in zip(old.compute(positions, species, cell, pbc), new.compute(positions, species, cell, pbc)):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
