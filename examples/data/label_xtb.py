"""Label geometries with GFN2-xTB (the PyPI package ``tblite``): energy (eV), forces (eV/A), dipole
(e A, about the origin) and the xTB (Mulliken) charges, written as extxyz that ``equiforce train``
reads (keys ``energy``, ``forces``, ``dipole``; per-atom ``xtb_charges``).

    python examples/data/label_xtb.py ../shared/data/ethanol/train.xyz -o data/xtb/ethanol_train.xyz
    python examples/data/label_xtb.py ../shared/data/acac/train_300K.xyz -o data/xtb/acac_train.xyz

Frames that xTB cannot converge are reported and left out. Any ASE-readable input works, with any
total charge (``--charge``); labels already in the input are replaced.
"""
import argparse
import sys
from pathlib import Path

import numpy as np


def label(frames, charge: float = 0.0, accuracy: float = 1.0):
    """Yield (index, Atoms with GFN2-xTB labels) for every frame xTB converges on."""
    from ase import Atoms
    from tblite.ase import TBLite

    for n, atoms in enumerate(frames):
        fresh = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        fresh.calc = TBLite(method="GFN2-xTB", charge=charge, accuracy=accuracy, verbosity=0)
        try:
            energy = fresh.get_potential_energy()
            forces, dipole, charges = fresh.get_forces(), fresh.get_dipole_moment(), fresh.get_charges()
        except Exception as exc:  # tblite raises on SCF failures
            print(f"[label_xtb] frame {n}: xTB failed ({exc}); skipped", file=sys.stderr)
            continue
        fresh.calc = None
        fresh.info.update(energy=float(energy), dipole=np.asarray(dipole, dtype=float), xtb_method="GFN2-xTB")
        fresh.arrays["forces"] = np.asarray(forces, dtype=float)
        fresh.arrays["xtb_charges"] = np.asarray(charges, dtype=float)
        yield n, fresh


def main(argv=None) -> int:
    import ase.io

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="geometries (extxyz or any format ASE reads)")
    parser.add_argument("-o", "--output", required=True, help="labelled extxyz to write")
    parser.add_argument("--charge", type=float, default=0.0, help="total charge (e)")
    parser.add_argument("--every", type=int, default=1, help="take every k-th frame")
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args(argv)
    frames = ase.io.read(args.input, index=f"::{args.every}")
    frames = frames if isinstance(frames, list) else [frames]
    if args.max_frames is not None:
        frames = frames[: args.max_frames]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    labelled = [atoms for _, atoms in label(frames, args.charge)]
    if not labelled:
        print("[label_xtb] no frame could be labelled", file=sys.stderr)
        return 1
    ase.io.write(tmp, labelled, format="extxyz")
    tmp.replace(out)
    print(f"[label_xtb] wrote {len(labelled)} of {len(frames)} frames to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
