"""What a converted model must equal: a peer's own calculator, per structure (see *_reference.py, which
write ``energy_n``, ``energies_n``, ``forces_n`` and, for periodic cells, ``stress_n`` in Voigt order)."""
import numpy as np
import pytest


def assert_equals_reference(calc, structures: dict, ref: dict, dtype: str, energy_ulps: int = 16,
                            force_rtol: float = 0.0) -> None:
    """float32: ``energy_ulps`` float32 ulps of the total energy, 1e-5 eV/A on per-atom energies and forces
    (plus ``force_rtol`` relative), 1e-6 eV/A^3 on stress; float64: 1e-10 relative on all of them.

    16 ulps, not fewer: sevenn's own float32 total energy of one structure (32 Cu atoms) came out 12 ulps
    apart between two of its runs (a fresh environment's first run, 2026-12-03), while ours stayed put."""
    for n, (name, atoms) in enumerate(structures.items()):
        atoms.calc = calc
        energy, energies, forces = atoms.get_potential_energy(), atoms.get_potential_energies(), atoms.get_forces()
        e_ref = float(ref[f"energy_{n}"])
        if dtype == "float32":
            ulp = float(np.spacing(np.float32(abs(e_ref))))
            assert abs(energy - e_ref) <= energy_ulps * ulp, (name, energy, e_ref, ulp)
            np.testing.assert_allclose(energies, ref[f"energies_{n}"], rtol=0, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(forces, ref[f"forces_{n}"], atol=1e-5, rtol=force_rtol, err_msg=name)
        else:
            assert energy == pytest.approx(e_ref, rel=1e-10), name
            np.testing.assert_allclose(energies, ref[f"energies_{n}"], rtol=0, atol=1e-10 * abs(e_ref), err_msg=name)
            np.testing.assert_allclose(forces, ref[f"forces_{n}"], rtol=0,
                                       atol=1e-10 * max(1.0, np.abs(ref[f"forces_{n}"]).max()), err_msg=name)
        if atoms.pbc.all():
            scale = max(1e-3, np.abs(ref[f"stress_{n}"]).max())
            np.testing.assert_allclose(atoms.get_stress(), ref[f"stress_{n}"], rtol=0,
                                       atol=(1e-6 if dtype == "float32" else 1e-10 * scale), err_msg=name)
