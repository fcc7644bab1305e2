"""Where long-range electrostatics matters: the water dimer's interaction energy against the O-O
distance, GFN2-xTB (tblite) labels, a local-only model and the same model with learned charges and
their Coulomb energy (``long_range: ewald``; open boundaries -> direct sum), the charges trained on
energies and forces alone, also on xTB's atomic charges (``data.charges_key``), or also on xTB's
dipole as the dipole of the charges alone (``dipole: charges``).

    python benchmarks/long_range_dimer.py            # ~20 min on 2 cores: data, three trainings, the curve

Training data: 700 dimers, both monomers distorted (bonds +-0.06 A, angle +-8 deg), random relative
orientations, O-O distance 2.6 - 9 A. The curve: the water dimer's hydrogen-bonded orientation
(O-H...O collinear, acceptor plane at 120 deg), rigid monomers, O-O from 2.6 to 14 A; each method's
interaction energy is E(d) - E(monomer A) - E(monomer B) with its own monomer energies. Writes
benchmarks/results/long_range_dimer.{json,png} and runs/long_range_dimer/.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"
RUNS = ROOT / "runs" / "long_range_dimer"
R_MAX = 4.0


def water(rng=None, bond=0.958, angle=104.4):
    """O at the origin, the H-O-H angle bisected by +x, in the xy plane."""
    if rng is not None:
        bond_a, bond_b = bond + rng.uniform(-0.06, 0.06, 2)
        angle = angle + rng.uniform(-8, 8)
    else:
        bond_a = bond_b = bond
    half = np.radians(angle) / 2
    return np.array([[0, 0, 0], [bond_a * np.cos(half), bond_a * np.sin(half), 0],
                     [bond_b * np.cos(half), -bond_b * np.sin(half), 0]])


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def dimers(count, seed):
    from ase import Atoms

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        a = water(rng) @ random_rotation(rng).T
        b = water(rng) @ random_rotation(rng).T
        d = rng.uniform(2.6, 9.0)
        direction = rng.normal(size=3)
        b = b + d * direction / np.linalg.norm(direction)
        gaps = np.linalg.norm(a[:, None] - b[None], axis=-1)
        if gaps.min() < 1.55:  # no overlapping atoms
            continue
        out.append(Atoms("OH2OH2", positions=np.concatenate([a, b])))
    return out


def hydrogen_bonded(distance):
    """Donor H on the O-O axis; the acceptor's bisector at 120 degrees to it (its lone pairs face H)."""
    from ase import Atoms

    donor = water()
    h = donor[1]  # rotate the donor so that its H1 points along +x from O
    angle = -np.arctan2(h[1], h[0])
    rz = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    donor = donor @ rz.T
    acceptor = water()  # bisector along +x; tilt it so that it points away from the donor by 120 deg
    tilt = np.radians(180 - 120)
    ry = np.array([[np.cos(tilt), 0, np.sin(tilt)], [0, 1, 0], [-np.sin(tilt), 0, np.cos(tilt)]])
    acceptor = acceptor @ ry.T + np.array([distance, 0, 0])
    return Atoms("OH2OH2", positions=np.concatenate([donor, acceptor]))


def labelled(frames):
    sys.path.insert(0, str(ROOT / "examples" / "data"))
    from label_xtb import label

    return [atoms for _, atoms in label(frames)]


MODELS = {  # name: (long_range, extra labels for the charges: none, xTB's dipole, xTB's atomic charges)
    "local": ("none", None),
    "long_range": ("ewald", "dipole"),
    "long_range_nocharges": ("ewald", None),
    "long_range_mulliken": ("ewald", "charges"),
}


def config(name, long_range, minutes, epochs, labels=None):
    return {
        "model": {"species": ["H", "O"], "r_max": R_MAX, "l_max": 2, "num_features": 16, "num_layers": 2,
                  "num_basis": 8, "long_range": long_range, "ewald_cutoff": 8.0,
                  "dipole": "charges" if labels == "dipole" else False},
        "data": {"train_file": str(RUNS / "train.xyz"), "validation_fraction": 0.1,
                 "charges_key": "xtb_charges" if labels == "charges" else None,
                 "dipole_key": "dipole" if labels == "dipole" else None},
        "training": {"output_dir": str(RUNS / name), "dtype": "float64", "batch_size": 10, "max_epochs": epochs,
                     "max_minutes": minutes, "lr": 0.01, "scheduler": "cosine", "min_lr": 0.0002,
                     "energy_weight": 100.0, "forces_weight": 10.0, "charges_weight": 100.0, "dipole_weight": 100.0,
                     "ema_decay": 0.99,
                     "early_stopping_patience": 1000, "progress": False, "plots": False, "seed": 0},
    }


def curve_of(calc_factory, distances):
    from ase import Atoms

    energies = []
    for d in distances:
        dimer = hydrogen_bonded(d)
        parts = [Atoms("OH2", positions=dimer.positions[:3]), Atoms("OH2", positions=dimer.positions[3:])]
        values = []
        for atoms in [dimer] + parts:
            atoms.calc = calc_factory()
            values.append(atoms.get_potential_energy())
        energies.append(values[0] - values[1] - values[2])
    return np.array(energies)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=700)
    parser.add_argument("--minutes", type=float, default=9.0, help="training budget per model")
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args(argv)

    import ase.io
    from tblite.ase import TBLite

    from equiforce.hosts.ase import EquiForceCalculator
    from equiforce.train import Trainer

    RUNS.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    if not (RUNS / "train.xyz").exists():
        ase.io.write(RUNS / "train.xyz", labelled(dimers(args.frames, seed=0)), format="extxyz")
    models = {}
    for name, (long_range, labels) in MODELS.items():
        best = RUNS / name / "best.pt"
        if not (RUNS / name / "metrics.json").exists():
            Trainer(config(name, long_range, args.minutes, args.epochs, labels)).fit()
        from equiforce.deploy import export

        models[name] = export(best, RUNS / f"{name}.pt")

    distances = np.concatenate([np.arange(2.6, 6.0, 0.2), np.arange(6.0, 14.01, 0.5)])
    xtb = curve_of(lambda: TBLite(method="GFN2-xTB", verbosity=0), distances)
    results = {"distances_A": distances.tolist(), "xtb_eV": xtb.tolist()}
    for name, path in models.items():
        results[f"{name}_eV"] = curve_of(lambda: EquiForceCalculator(str(path)), distances).tolist()
        metrics = json.loads((RUNS / name / "metrics.json").read_text())
        results[f"{name}_validation"] = metrics["validation"]
    for name in models:
        errors = np.abs(np.array(results[f"{name}_eV"]) - xtb)
        for lo, hi in ((2.6, 4.0), (4.0, 6.0), (6.0, 9.0), (9.0, 14.01)):
            mask = (distances >= lo) & (distances < hi)
            results.setdefault("mae_meV", {}).setdefault(name, {})[f"{lo:g}-{hi:g} A"] = 1e3 * float(errors[mask].mean())
    (OUT / "long_range_dimer.json").write_text(json.dumps(results, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.8))
    ax.plot(distances, 1e3 * xtb, "k-", lw=2, label="GFN2-xTB (reference)")
    ax.plot(distances, 1e3 * np.array(results["local_eV"]), "C3--", label=f"local only (r_max {R_MAX:g} A, 2 layers)")
    ax.plot(distances, 1e3 * np.array(results["long_range_eV"]), "C0-.",
            label="+ learned charges (Coulomb), their dipole fit to xTB's")
    ax.plot(distances, 1e3 * np.array(results["long_range_mulliken_eV"]), "C1--", lw=0.9,
            label="+ learned charges fit to xTB's atomic charges")
    ax.plot(distances, 1e3 * np.array(results["long_range_nocharges_eV"]), "C2:",
            label="+ learned charges, energies and forces only")
    ax.axvline(R_MAX, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("O-O distance (A)")
    ax.set_ylabel("interaction energy (meV)")
    ax.set_ylim(1e3 * xtb.min() * 1.3, 60)
    ax.set_title("Water dimer, hydrogen-bonded orientation")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    inset = ax.inset_axes([0.52, 0.12, 0.44, 0.36])
    far = distances >= 5.0
    inset.plot(distances[far], 1e3 * xtb[far], "k-", lw=2)
    inset.plot(distances[far], 1e3 * np.array(results["local_eV"])[far], "C3--")
    inset.plot(distances[far], 1e3 * np.array(results["long_range_eV"])[far], "C0-.")
    inset.plot(distances[far], 1e3 * np.array(results["long_range_mulliken_eV"])[far], "C1--", lw=0.9)
    inset.plot(distances[far], 1e3 * np.array(results["long_range_nocharges_eV"])[far], "C2:")
    inset.set_title("5-14 A", fontsize=8)
    inset.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "long_range_dimer.png", dpi=120)
    print(json.dumps(results["mae_meV"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
