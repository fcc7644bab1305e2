"""The deployed model's stages (what LAMMPS on several ranks runs, exchanging node features between
layers) against the whole-model contract: a periodic structure held as one rank would hold it without
folding images — local atoms plus ghost copies, each layer updating the local atoms only, ghosts'
features copied from their owners before each layer and their gradients added back — gives the
contract's energy, per-atom energies, forces, virial and per-atom virials, for 1- to 5-layer models,
the architecture options, a committee, float32 and float64."""
import pytest
import torch
from ase.build import bulk

from equiforce.deploy import export, load
from equiforce.deploy.staged import images_as_ghosts, staged_outputs
from equiforce.model import EquiForceModel

BASE = dict(species=["Cu", "O"], r_max=3.2, l_max=2, num_features=4, num_basis=4, radial_hidden=8,
            avg_num_neighbors=10.0)


def _structure(dtype):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.symbols[[1, 5]] = "O"
    atoms.rattle(0.1, seed=1)
    return (torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.cell.array, dtype=dtype),
            torch.ones(3, dtype=torch.bool), torch.tensor([0 if s == "Cu" else 1 for s in atoms.symbols]))


def _exchanges(owner, num_local):
    def forward(x, member, layer):
        assert x.dtype == torch.float64 or x.dtype == torch.float32
        x = x.clone()
        x[num_local:] = x[owner[num_local:]]
        return x

    def reverse(g, member, layer):
        return g[:num_local].index_add(0, owner[num_local:], g[num_local:])
    return forward, reverse


def _model(seed, dtype, **options):
    torch.manual_seed(seed)
    model = EquiForceModel.from_config({**BASE, "dtype": dtype, **options})
    with torch.no_grad():  # nothing is zero: every path carries signal
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
        model.energy_shift.copy_(torch.tensor([-3.0, -1.5]))
    return model


def _compare(path, dtype, members=1):
    module, meta = load(path)
    positions, cell, pbc, species = _structure(getattr(torch, dtype))
    expected = module.compute(positions, species, cell, pbc)
    n = positions.shape[0]
    pos, owner, src, dst = images_as_ghosts(positions, cell, pbc, float(meta["r_max"]))
    spec = species[owner]
    forward, reverse = _exchanges(owner, n)
    got = staged_outputs(module, pos, spec, src, dst, torch.zeros(src.shape[0], 3, dtype=pos.dtype), n, forward,
                         reverse, members)
    fold = lambda t: t[:n].index_add(0, owner[n:], t[n:])  # noqa: E731 (ghost rows onto their owners)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    assert abs(float(got[0]) - float(expected[0])) <= tol["atol"] * max(1.0, abs(float(expected[0]))) * 10
    torch.testing.assert_close(got[1][:n].to(torch.float64), expected[1].to(torch.float64), **tol)
    torch.testing.assert_close(got[1][n:], torch.zeros_like(got[1][n:]))
    torch.testing.assert_close(fold(got[2]).to(torch.float64), expected[2].to(torch.float64), **tol)
    torch.testing.assert_close(got[3].to(torch.float64), expected[3].to(torch.float64), **tol)
    torch.testing.assert_close(fold(got[4]).to(torch.float64), expected[4].to(torch.float64), **tol)
    assert src.max() >= n, "the structure must have ghost senders for the test to mean anything"
    return got


@pytest.mark.parametrize("layers", [1, 2, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stages_equal_the_contract(tmp_path, layers, dtype):
    path = export(_model(layers, dtype, num_layers=layers), tmp_path / "model.pt")
    _compare(path, dtype)


@pytest.mark.parametrize("options", [
    dict(symmetry="SO3", self_connection="linear", gate_activation="silu", sort_paths=True, num_layers=3,
         layer_irreps=["6x0e", "4x0e+2x1e+2x2e", "4x0e+2x1e", "3x0e"], readout_hidden=0),
    dict(parity=False, residual=False, cutoff="xplor", cutoff_on=2.5, num_layers=3,
         self_connection=["none", "tensor_product", "linear"]),
    dict(modalities=["PBE", "R2SCAN"], modality="R2SCAN", modality_inputs=["embedding", "interaction_out"],
         num_layers=2),
], ids=["sevenn-like", "options", "multi-fidelity"])
def test_stages_with_architecture_options(tmp_path, options):
    path = export(_model(7, "float64", **options), tmp_path / "model.pt")
    _compare(path, "float64")


def test_committee_stages(tmp_path):
    members = [_model(seed, "float64", num_layers=3, num_features=4 + seed) for seed in (1, 2, 3)]
    path = export(members, tmp_path / "committee.pt")
    module, meta = load(path)
    assert [int(w) for w in meta["node_widths"].split()] == sum((m.node_widths() for m in members), [])
    got = _compare(path, "float64", members=3)
    assert got[5].shape == (3,) and got[6].shape[0] == 3
    positions, cell, pbc, species = _structure(torch.float64)
    expected = module.compute_committee(positions, species, cell, pbc)
    torch.testing.assert_close(got[5], expected[5], rtol=1e-10, atol=1e-10)


def test_metadata_node_widths(tmp_path):
    model = _model(3, "float64", num_layers=2, layer_irreps=["5x0e", "3x0e+2x1o", "4x0e"])
    _, meta = load(export(model, tmp_path / "model.pt"))
    assert meta["node_widths"] == "9 4"


@pytest.mark.parametrize("periodic", [True, False], ids=["ewald", "open"])
def test_long_range_stages(tmp_path, periodic):
    """Learned charges + Coulomb: the staged path with the whole structure gathered gives the contract's
    numbers (charges, their coupling to the geometry through the model's backward, the Ewald virial)."""
    model = _model(5, "float64", num_layers=3, long_range="ewald", ewald_cutoff=5.0, ewald_accuracy=1e-8)
    with torch.no_grad():
        model.charge_readout.weight.mul_(30.0)  # charges of a few tenths of e
    module, meta = load(export(model, tmp_path / "lr.pt"))
    positions, cell, pbc, species = _structure(torch.float64)
    pbc = pbc if periodic else torch.zeros(3, dtype=torch.bool)
    expected = module.compute(positions, species, cell, pbc)
    n = positions.shape[0]
    if periodic:
        pos, owner, src, dst = images_as_ghosts(positions, cell, pbc, float(meta["r_max"]))
    else:
        from equiforce.model.predict import radius_graph

        src, dst, _ = radius_graph(positions, cell, pbc, float(meta["r_max"]))
        pos, owner = positions, torch.arange(n)
    forward, reverse = _exchanges(owner, n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))  # another process's order

    def all_gather(rows):
        gathered = torch.empty_like(rows)
        gathered[order] = rows
        return gathered, order

    got = staged_outputs(module, pos, species[owner], src, dst, torch.zeros(src.shape[0], 3, dtype=pos.dtype), n,
                         forward, reverse, all_gather=all_gather, cell=cell, pbc=pbc)
    fold = lambda t: t[:n].index_add(0, owner[n:], t[n:])  # noqa: E731
    tol = dict(rtol=1e-10, atol=1e-10)
    assert abs(float(got[0]) - float(expected[0])) <= 1e-10 * max(1.0, abs(float(expected[0])))
    torch.testing.assert_close(got[1][:n], expected[1], **tol)
    torch.testing.assert_close(fold(got[2]), expected[2], **tol)
    torch.testing.assert_close(got[3], expected[3], **tol)
    torch.testing.assert_close(fold(got[4]), expected[4], **tol)
    charges = module.properties(positions, species, cell, pbc)["charges"]
    assert charges.abs().max() > 0.1  # the Coulomb part matters


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ewald_split_over_processes(tmp_path, dtype):
    """Periodic learned charges without gathering: the structure factor from partial sums, the real-space
    pairs over ghost copies out to ewald_cutoff (beyond r_max: ghosts that only carry charge), dE/dq = phi
    fed into the model's backward, the reciprocal virial from the summed structure factor: the contract's
    numbers. The cell (7.2 x 3.6 x 3.6 A) is smaller than 2 ewald_cutoff, so pairs reach several images."""
    model = _model(5, dtype, num_layers=3, long_range="ewald", ewald_cutoff=5.0, ewald_accuracy=1e-8)
    with torch.no_grad():
        model.charge_readout.weight.mul_(30.0)
    module, meta = load(export(model, tmp_path / "lr.pt"))
    assert meta["ewald_cutoff"] == "5.0" and meta["ewald_accuracy"] == "1e-08"
    positions, cell, pbc, species = _structure(getattr(torch, dtype))
    expected = module.compute(positions, species, cell, pbc)
    n = positions.shape[0]
    pos, owner, src, dst = images_as_ghosts(positions, cell, pbc, 5.0)  # every pair within ewald_cutoff
    zero = torch.zeros(src.shape[0], 3, dtype=pos.dtype)
    bond = torch.linalg.vector_norm(pos[src] - pos[dst], dim=-1) < float(meta["r_max"])
    forward, reverse = _exchanges(owner, n)
    reduced = []

    def all_reduce(values):
        reduced.append(values.shape[0])
        return values.clone()

    got = staged_outputs(module, pos, species[owner], src[bond], dst[bond], zero[bond], n, forward, reverse,
                         cell=cell, pbc=pbc, all_reduce=all_reduce, pairs=(src, dst, zero))
    assert reduced[0] == 2 and reduced[2] == 12 and reduced[1] % 2 == 1  # totals, structure factor, sums
    assert pos.shape[0] > n + 100  # ghosts out to 5 A
    fold = lambda t: t[:n].index_add(0, owner[n:], t[n:])  # noqa: E731
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    assert abs(float(got[0]) - float(expected[0])) <= tol["rtol"] * max(1.0, abs(float(expected[0])))
    torch.testing.assert_close(got[1][:n].to(expected[1].dtype), expected[1], **tol)
    torch.testing.assert_close(fold(got[2]), expected[2], **tol)
    torch.testing.assert_close(got[3].to(expected[3].dtype), expected[3], **tol)
    torch.testing.assert_close(fold(got[4]), expected[4], **tol)

    def miscounting(values):  # a process that thinks the structure has one atom more than it has
        return values + torch.tensor([0.0, 1.0], dtype=values.dtype) if values.shape[0] == 2 else values.clone()

    with pytest.raises(RuntimeError, match="disagree about the atoms they own"):
        staged_outputs(module, pos, species[owner], src[bond], dst[bond], zero[bond], n, forward, reverse,
                       cell=cell, pbc=pbc, all_reduce=miscounting, pairs=(src, dst, zero))
