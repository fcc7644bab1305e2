"""Comparison helpers with tolerances keyed by dtype; failures print the largest error."""
import torch


def tolerance(dtype):
    """Relative tolerance for a float32/float64 result against a float64 reference."""
    return 2e-5 if dtype == torch.float32 else 1e-11


def assert_close(actual, expected, dtype, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if actual.numel() == 0:
        return
    scale = max(1.0, expected.double().abs().max().item())
    err = (actual.double() - expected.double()).abs().max().item()
    assert err <= tolerance(dtype) * scale, f"{what}: largest error {err:.3e} (scale {scale:.3e}, {dtype})"


def export_long_range_model(path, seed: int):
    """An untrained float64 model of H, C, O and Cu with learned charges (scaled to ~0.3 e, so the
    Coulomb part shows) and Ewald summation, exported to ``path``: the hosts' long-range tests."""
    from equiforce.deploy import export
    from equiforce.model import EquiForceModel

    torch.manual_seed(seed)
    model = EquiForceModel.from_config(dict(species=["H", "C", "O", "Cu"], r_max=3.0, l_max=1, num_features=4,
                                            num_layers=2, avg_num_neighbors=12.0, long_range="ewald",
                                            ewald_cutoff=5.0, ewald_accuracy=1e-8))
    with torch.no_grad():
        model.charge_readout.weight.mul_(10.0)
    return export(model, path)


def export_committee(path, seeds=(100, 101, 102), species=("H", "C", "O", "Cu")):
    """Untrained float64 models of H, C, O and Cu (one per seed) exported as one committee to ``path``:
    the hosts' committee tests."""
    from equiforce.deploy import export
    from equiforce.model import EquiForceModel

    members = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = EquiForceModel.from_config(dict(species=list(species), r_max=3.0, l_max=1, num_features=4,
                                                num_layers=2, avg_num_neighbors=12.0))
        with torch.no_grad():
            model.energy_shift.copy_(-torch.arange(1.0, len(species) + 1.0))
        members.append(model)
    return export(members, path)


def ase_committee_spread(model_file, atoms):
    """(energy_std, force_std [N]) of a committee through the ASE calculator: the hosts' reference."""
    from equiforce.hosts.ase import EquiForceCalculator

    atoms = atoms.copy()
    atoms.calc = EquiForceCalculator(model_file)
    atoms.get_potential_energy()
    return atoms.calc.results["energy_std"], atoms.calc.results["force_std"]
