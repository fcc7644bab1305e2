"""pair_style equiforce on several MPI ranks with the halo exchange (the default): ghosts out to r_max
only, node features sent to them before each layer, their gradients sent back in the backward. The
same energy, forces, per-atom energies and virials as the ASE calculator (1e-10 in float64) on 1, 2, 4
and 8 ranks (oversubscribed) for 4- and 5-layer models and a committee; cells smaller than 2 r_max;
`halo recompute` beside it in one run; the counters in the log; NVE on 4 ranks; a model without
stages falls back to the recomputed halo and says so."""
import re

import numpy as np
import pytest
import torch
from ase.build import bulk

from equiforce.deploy import export
from equiforce.model import EquiForceModel

from .helpers import cu_block_script, input_script, needs_plugin, run_driver, run_lmp, thermo_table, write_data
from .test_pair_equiforce import _to_lammps_form, assert_matches, orthogonal_crystal, reference

pytestmark = needs_plugin
ELEMENTS = ["Cu", "H", "C", "O"]
SMALL = dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=2, num_features=4, num_basis=4, radial_hidden=8,
             avg_num_neighbors=12.0)
SEVENNET_LIKE = dict(symmetry="SO3", self_connection="linear", gate_activation="silu", sort_paths=True,
                     cutoff="xplor", cutoff_on=2.5, readout_hidden=0,
                     layer_irreps=["6x0e", "4x0e+2x1e+2x2e", "4x0e+2x1e+2x2e", "4x0e+2x1e+2x2e", "4x0e+2x1e", "4x0e"])


def _model(seed, **changes):
    torch.manual_seed(seed)
    model = EquiForceModel.from_config({**SMALL, **changes})
    with torch.no_grad():
        for p in model.parameters():  # larger than at initialisation: every layer moves the energy
            p.mul_(1.5)
        model.energy_shift.copy_(torch.tensor([-1.0, -2.0, -3.0, -4.0]))
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exchange_models")
    return {
        "4 layers": export(_model(1, num_layers=4), folder / "four.pt"),
        "5 layers": export(_model(2, num_layers=5, **SEVENNET_LIKE), folder / "five.pt"),
        "committee": export([_model(seed, num_layers=3, num_features=3 + seed) for seed in (3, 4, 5)],
                            folder / "committee.pt"),
        "float32": export(_model(6, num_layers=4, dtype="float32"), folder / "float32.pt"),
    }


def small_triclinic():
    """fcc Cu's primitive cell twice along c (2.5 x 2.5 x 5.1 A, 60 degree angles), every width below
    2 r_max (6 A): many ghosts are images of images."""
    atoms = _to_lammps_form(bulk("Cu", "fcc", a=3.6).repeat((1, 1, 2)))
    atoms.symbols[1] = "O"
    atoms.rattle(0.05, seed=7)
    return atoms


def _log_counters(output: str) -> dict:
    line = [x for x in output.splitlines() if x.startswith("equiforce: halo ")][-1]
    numbers = dict(mode=line.split()[2], ghost_cutoff=float(re.search(r"ghost cutoff ([\d.e+-]+) A", line).group(1)),
                   work=float(re.search(r"work factor ([\d.]+)", line).group(1)),
                   bytes=float(re.search(r"communicated ([\d.e+-]+) bytes", line).group(1)))
    return numbers


@pytest.mark.parametrize("ranks", [2, 4, 8])
@pytest.mark.parametrize("which", ["4 layers", "5 layers", "committee"])
def test_exchange_equals_ase(which, ranks, models, tmp_path):
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", models[which], ELEMENTS)
    assert_matches(run_driver(tmp_path, script, ranks, f"np{ranks}"), reference(models[which], atoms))


def test_committee_spread_across_ranks(models, tmp_path):
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    extra = "fix unc all pair 1 equiforce force_std 0\ncompute unc all pair equiforce"
    script = input_script(tmp_path / "data", models["committee"], ELEMENTS, extra=extra)
    one, four = run_driver(tmp_path, script, 1, "one"), run_driver(tmp_path, script, 4, "four")
    np.testing.assert_allclose(four["force_std"], one["force_std"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(four["spread"], one["spread"], rtol=0, atol=1e-10)
    assert one["force_std"].max() > 1e-3


@pytest.mark.parametrize("ranks", [1, 4, 8])
def test_cells_smaller_than_twice_the_cutoff(ranks, models, tmp_path):
    atoms = small_triclinic()
    assert atoms.cell.cellpar()[:3].max() < 6.0
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", models["4 layers"], ELEMENTS)
    assert_matches(run_driver(tmp_path, script, ranks, f"np{ranks}"), reference(models["4 layers"], atoms))


def test_float32_on_several_ranks(models, tmp_path):
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", models["float32"], ELEMENTS)
    one, four = run_driver(tmp_path, script, 1, "one"), run_driver(tmp_path, script, 4, "four")
    ref = reference(models["float32"], atoms)
    assert abs(four["pe"] - ref["energy"]) < 1e-6 * abs(ref["energy"])
    np.testing.assert_allclose(four["f"], ref["forces"], rtol=0, atol=2e-5 * np.abs(ref["forces"]).max())
    np.testing.assert_allclose(four["f"], one["f"], rtol=0, atol=2e-5 * np.abs(ref["forces"]).max())


def test_recompute_and_exchange_in_one_run_with_counters(models, tmp_path):
    """`halo recompute`, then `halo exchange`, in one LAMMPS input on 4 ranks: the same energies; the log
    says each one's ghost cutoff, work factor (1 for the exchange) and communication."""
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    model = models["4 layers"]
    pair = f"pair_style equiforce halo recompute\npair_coeff * * {model} {' '.join(ELEMENTS)}"
    run = (f"run 0\npair_style equiforce halo exchange\npair_coeff * * {model} {' '.join(ELEMENTS)}\nrun 0\n")
    for ranks in (4, 8):
        out = run_lmp(tmp_path, input_script(tmp_path / "data", model, ELEMENTS, pair=pair, run=run), ranks,
                      f"both{ranks}").stdout
        rows = thermo_table(out)
        assert len(rows) == 2 and rows[0][1] == pytest.approx(rows[1][1], rel=1e-12, abs=1e-10), rows
        lines = [x for x in out.splitlines() if x.startswith("equiforce: halo ")]
        assert len(lines) == 2, out
        recompute, exchange = _log_counters(lines[0]), _log_counters(lines[1])
        assert recompute["mode"] == "recompute" and exchange["mode"] == "exchange"
        assert recompute["ghost_cutoff"] == pytest.approx(4 * 3.0 + 2.0)
        assert exchange["ghost_cutoff"] == pytest.approx(3.0 + 2.0)
        assert exchange["work"] <= 1.05 and recompute["work"] > 1.05, lines
        assert exchange["bytes"] > 0 and recompute["bytes"] == 0


def test_one_rank_folds_images(models, tmp_path):
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    out = run_lmp(tmp_path, input_script(tmp_path / "data", models["4 layers"], ELEMENTS), 1).stdout
    counters = _log_counters(out)
    assert counters["mode"] == "folded" and counters["work"] == 1.0 and counters["bytes"] == 0


def test_nve_on_four_ranks(models, tmp_path):
    """NVE of a hot Cu crystal with the 4-layer model: 4 ranks follow 1 rank's trajectory and conserve
    the energy."""
    setup = cu_block_script(models["4 layers"], 300, 0.0005, 25, " loop geom") + (
        "thermo_style custom step pe ke etotal\nthermo_modify format float %24.16g\nfix nve all nve\nrun 100\n")
    one = np.array(thermo_table(run_lmp(tmp_path, setup, 1, "one").stdout))
    four = np.array(thermo_table(run_lmp(tmp_path, setup, 4, "four").stdout))
    assert len(four) == 5 and np.ptp(four[:, 2]) > 0.01  # it moves
    np.testing.assert_allclose(four[:, 1:], one[:, 1:], rtol=1e-8, atol=1e-8)
    assert np.abs(four[:, 3] - four[0, 3]).max() / 108 < 1e-4  # eV/atom


def test_model_without_stages_recomputes_the_halo(models, tmp_path):
    """An export from before the stages (no node_widths in its metadata): the halo is recomputed, with a
    log line saying how to get the exchange."""
    old = tmp_path / "old.pt"
    extra = {"equiforce_metadata.txt": ""}
    module = torch.jit.load(str(models["4 layers"]), _extra_files=extra)
    text = extra["equiforce_metadata.txt"]
    text = text.decode() if isinstance(text, bytes) else text
    module.save(str(old), _extra_files={"equiforce_metadata.txt": "\n".join(
        line for line in text.splitlines() if not line.startswith("node_widths="))})
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", old, ELEMENTS)
    assert_matches(run_driver(tmp_path, script, 2, "np2"), reference(models["4 layers"], atoms))
    out = run_lmp(tmp_path, script, 2).stdout
    assert "has no stages" in out and "the halo is recomputed instead of exchanged" in out, out
    assert _log_counters(out)["mode"] == "recompute"


def test_comm_style_tiled(models, tmp_path):
    """`comm_style tiled` with recursive-bisection balancing: the exchange goes through LAMMPS's tiled
    communication just the same."""
    atoms = orthogonal_crystal(3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", models["4 layers"], ELEMENTS, pre="comm_style tiled",
                          extra="balance 1.0 rcb")
    assert_matches(run_driver(tmp_path, script, 4, "tiled"), reference(models["4 layers"], atoms))
