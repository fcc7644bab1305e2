"""Committee models in pair_style equiforce: mean energy and forces, per-atom force_std through
`fix pair`, energy_std and the largest force_std through `compute pair`, on 1, 2 and 4 MPI ranks
against the ASE calculator; the uncertainty threshold's `stop` and `write FILE`; bad input."""
import numpy as np
import pytest
from ase.io import read

from ..helpers import ase_committee_spread, export_committee
from .helpers import input_script, needs_plugin, run_driver, run_lmp, thermo_table, write_data
from .test_pair_equiforce import CASES, assert_matches, reference

pytestmark = needs_plugin
ELEMENTS = ["Cu", "H", "C", "O"]
PROBES = """fix unc all pair 1 equiforce force_std 0
compute unc all pair equiforce
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz vol c_unc[1] c_unc[2]
thermo_modify format float %24.16g"""


@pytest.fixture(scope="module")
def committee_file(tmp_path_factory):
    return export_committee(tmp_path_factory.mktemp("committee") / "committee.pt")


@pytest.mark.parametrize("case", ["ethanol", "orthogonal", "triclinic"])
def test_committee_against_ase(case, committee_file, tmp_path):
    """Mean energy, forces, per-atom energies and virials as for any model; force_std per atom,
    energy_std and the largest force_std equal the ASE calculator's, on 1, 2 and 4 ranks."""
    atoms = CASES[case]()
    write_data(tmp_path / "data", atoms, ELEMENTS)
    script = input_script(tmp_path / "data", committee_file, ELEMENTS, periodic=atoms.pbc.all(), extra=PROBES)
    ref = reference(committee_file, atoms)
    energy_std, force_std = ase_committee_spread(committee_file, atoms)
    assert force_std.min() > 0
    for ranks in ((1, 2, 4) if case == "orthogonal" else (1, 2)):
        result = run_driver(tmp_path, script, ranks, f"np{ranks}")
        assert_matches(result, ref)
        np.testing.assert_allclose(result["force_std"], force_std, rtol=0, atol=1e-10 * force_std.max())
        np.testing.assert_allclose(result["spread"], [energy_std, force_std.max()], rtol=1e-10)


def test_threshold_stops_the_run(committee_file, tmp_path):
    """Above the threshold the run ends before the next step (the input goes on: the next run starts
    afresh and stops again); below it, the run completes."""
    atoms = CASES["orthogonal"](3)
    write_data(tmp_path / "data", atoms, ELEMENTS)
    _, force_std = ase_committee_spread(committee_file, atoms)
    run = "velocity all create 300 1 loop geom\nfix nve all nve\nthermo 1\nrun 5\nrun 5"
    for threshold, last_step in ((0.5 * force_std.max(), 0), (1e3, 10)):
        pair = (f"pair_style equiforce uncertainty {threshold} stop\n"
                f"pair_coeff * * {committee_file} {' '.join(ELEMENTS)}")
        out = run_lmp(tmp_path, input_script(tmp_path / "data", committee_file, ELEMENTS, pair=pair, run=run)).stdout
        steps = [int(row[0]) for row in thermo_table(out)]
        assert steps[-1] == last_step, out[-3000:]
        stopping = "committee force uncertainty" in out and "stopping the run" in out
        assert stopping == (last_step == 0), out[-3000:]


def test_threshold_writes_frames(committee_file, tmp_path):
    """`write FILE` appends every step above its threshold as extxyz (tag order, elements, positions in
    the box, force_std), on 2 ranks, while a higher `stop` threshold lets the run go on; ASE reads the
    frames back and their positions give the same spread."""
    atoms = CASES["ethanol"]()
    write_data(tmp_path / "data", atoms, ELEMENTS)
    frames = tmp_path / "uncertain.xyz"
    pair = (f"pair_style equiforce uncertainty 1e-6 write {frames} uncertainty 1e3 stop\n"
            f"pair_coeff * * {committee_file} {' '.join(ELEMENTS)}")
    run = "velocity all create 300 1 loop geom\nfix nve all nve\ntimestep 0.0005\nrun 3"
    run_lmp(tmp_path, input_script(tmp_path / "data", committee_file, ELEMENTS, periodic=False, pair=pair, run=run),
            ranks=2)
    written = read(frames, index=":")
    assert [f.info["step"] for f in written] == [0, 1, 2, 3]
    for frame in written:
        assert frame.get_chemical_symbols() == atoms.get_chemical_symbols()
        energy_std, force_std = ase_committee_spread(committee_file, frame)
        np.testing.assert_allclose(frame.arrays["force_std"], force_std, rtol=1e-6)
        assert frame.info["energy_std"] == pytest.approx(energy_std, rel=1e-6)
    assert np.allclose(written[0].positions - written[0].positions[0], atoms.positions - atoms.positions[0], atol=1e-8)


BAD = {  # pair_style arguments, model ("committee" or "single"), extra commands -> the error's words
    "single_model_threshold": ("uncertainty 0.1 stop", "single", "", "the uncertainty is the spread of a committee"),
    "no_action": ("uncertainty 0.1", "committee", "", "say what to do above it"),
    "single_model_fix_pair": ("", "single", "fix unc all pair 1 equiforce force_std 0",
                              "force_std is the spread of a committee"),
    "bad_threshold": ("uncertainty -1 stop", "committee", "", "must be > 0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_uncertainty_input(case, committee_file, model_file, tmp_path):
    atoms = CASES["ethanol"]()
    write_data(tmp_path / "data", atoms, ELEMENTS)
    arguments, which, extra, expected = BAD[case]
    model = committee_file if which == "committee" else model_file
    pair = f"pair_style equiforce {arguments}\npair_coeff * * {model} {' '.join(ELEMENTS)}"
    result = run_lmp(tmp_path, input_script(tmp_path / "data", model, ELEMENTS, periodic=False, pair=pair,
                                            extra=extra), check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr, (result.stdout + result.stderr)[-2000:]
