"""equiforce demo: NVE molecular dynamics of ethanol and of a periodic copper crystal with the
shipped models, through the ASE calculator; then a pretrained universal model, SevenNet-0 converted
from the installed sevenn package, running TiO2 in LAMMPS on 2 MPI ranks and in OpenMM
(examples/pretrained_md.py). Prints the energy drift and the speed per run, and writes
runs/demo/pretrained_md.png.

    python examples/demo.py                    # shipped models: examples/models/{ethanol,cu}.pt
    python examples/demo.py --train            # first retrain small models from the shipped data (minutes)
    python examples/demo.py --no-pretrained    # the ASE runs only
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from ase import units
from ase.build import bulk
from ase.io import read
from ase.md.velocitydistribution import Stationary, ZeroRotation

try:  # ase >= 3.27
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.md.verlet import VelocityVerlet

from equiforce.hosts.ase import EquiForceCalculator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def nve(atoms, model, steps, timestep_fs, temperature_k, seed):
    atoms.calc = EquiForceCalculator(str(model))
    thermalize_momenta(atoms, temperature_K=temperature_k, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    start = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - start
    energies = np.array(energies)
    ps = steps * timestep_fs / 1000
    slope = np.polyfit(np.arange(len(energies)) * timestep_fs / 1000, energies, 1)[0]
    return {
        "atoms": len(atoms),
        "steps": steps,
        "ps": ps,
        "drift_mev_per_atom_per_ps": 1000 * slope / len(atoms),
        "fluctuation_mev_per_atom": 1000 * energies.std() / len(atoms),
        "ms_per_step": 1000 * seconds / steps,
        "temperature_end_k": atoms.get_temperature(),
    }


def retrain() -> None:
    python = [sys.executable, "-m", "equiforce.cli"]
    data = ROOT / "examples" / "data" / "cu_emt.xyz"
    if not data.exists():
        subprocess.run([sys.executable, str(ROOT / "examples" / "data" / "generate_cu_emt.py"), "-o", str(data)],
                       check=True)
    for name, minutes in (("ethanol", 4), ("cu", 3)):
        out = ROOT / "runs" / f"demo-{name}"
        config = yaml.safe_load((ROOT / "examples" / "configs" / f"{name}.yaml").read_text())
        # a smaller model on a time budget: plateau schedule, no timed second stage
        config["model"].update(num_layers=2, num_features=16)
        config["training"].update(max_minutes=minutes, max_epochs=10000, scheduler="plateau", stage_two=None,
                                  snapshot_minutes=None)
        path = out.with_suffix(".yaml")
        out.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        subprocess.run(python + ["train", str(path), "--output-dir", str(out)], check=True, cwd=ROOT)
        subprocess.run(python + ["deploy", str(out / "best.pt"), "-o", str(out / f"{name}.pt")], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="retrain small models from the shipped data first")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--pretrained-steps", type=int, default=100,
                        help="MD steps of the converted SevenNet-0 in LAMMPS and in OpenMM")
    parser.add_argument("--no-pretrained", action="store_true", help="skip the SevenNet-0 runs")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo",
                        help="where the converted model and the plot go (default runs/demo)")
    args = parser.parse_args()
    models = {"ethanol": HERE / "models" / "ethanol.pt", "cu": HERE / "models" / "cu.pt"}
    if args.train:
        retrain()
        models = {name: ROOT / "runs" / f"demo-{name}" / f"{name}.pt" for name in models}
    for path in models.values():
        if not path.exists():
            print(f"missing {path}: run with --train to make it", file=sys.stderr)
            return 1
    ethanol = read(ROOT / "examples" / "data" / "ethanol" / "train.xyz", index=0)
    copper = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    runs = [("ethanol (9 atoms, vacuum)", ethanol, models["ethanol"], args.steps, 0.5, 300.0),
            ("Cu fcc (108 atoms, periodic)", copper, models["cu"], args.steps // 2, 2.0, 600.0)]
    print(f"{'system':32} {'steps':>6} {'ps':>6} {'drift meV/atom/ps':>18} {'fluct. meV/atom':>16} "
          f"{'ms/step':>8} {'T_end K':>8}")
    for label, atoms, model, steps, dt, temperature in runs:
        r = nve(atoms, model, steps, dt, temperature, seed=0)
        print(f"{label:32} {r['steps']:6d} {r['ps']:6.2f} {r['drift_mev_per_atom_per_ps']:18.4f} "
              f"{r['fluctuation_mev_per_atom']:16.4f} {r['ms_per_step']:8.2f} {r['temperature_end_k']:8.1f}")
    if args.no_pretrained:
        return 0
    print()
    sys.path.insert(0, str(HERE))
    from pretrained_md import main as pretrained_md

    return pretrained_md(["--steps", str(args.pretrained_steps), "--out", str(args.out)])


if __name__ == "__main__":
    sys.exit(main())
