"""Export round trip in both formats (TorchScript .pt, AOTInductor .pt2): the file carries the
contract's metadata and gives the same energies, forces and virial as the Python model, from Python
(edge-list and cell entry points, ASE) and from C++ through csrc/runtime."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.build import bulk

from equiforce.deploy import export, load
from equiforce.hosts.ase import EquiForceCalculator
from equiforce.model import EquiForceModel, evaluate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = EquiForceModel.from_config(dict(species=["Cu", "H"], r_max=3.2, l_max=2, num_features=4, num_layers=2,
                                        avg_num_neighbors=10.0))
    with torch.no_grad():
        m.energy_shift.copy_(torch.tensor([-3.0, -1.0]))
    return m


@pytest.fixture(scope="module", params=["torchscript", "aoti"])
def exported(model, tmp_path_factory, request):
    name = "model.pt2" if request.param == "aoti" else "model.pt"
    return export(model, tmp_path_factory.mktemp("m") / name, format=request.param)


def _crystal():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 1, 2))
    atoms.rattle(0.05, seed=1)
    atoms.symbols[3] = "H"
    atoms.cell[1, 0] = 0.4
    return atoms


def test_metadata(exported):
    _, meta = load(exported)
    assert meta["species"] == "Cu H" and meta["num_layers"] == "2" and float(meta["r_max"]) == 3.2
    assert float(meta["ghost_cutoff"]) == pytest.approx(6.4) and meta["dtype"] == "float64"
    assert meta["format_version"] == "2" and meta["torch_version"] == torch.__version__
    assert meta["export_format"] == ("aoti" if exported.suffix == ".pt2" else "torchscript")


def test_edge_list_entry_point_with_ghosts(model, exported):
    """Host neighbour lists: only the first num_local atoms' energies count; a single atom or no edge
    at all (the AOTInductor graph pads those) still works."""
    module, _ = load(exported)
    torch.manual_seed(0)
    pos = torch.rand(6, 3, dtype=torch.float64) * 3
    species = torch.tensor([0, 1, 0, 0, 1, 0])
    src, dst = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    keep = (src != dst) & ((pos[src] - pos[dst]).norm(dim=-1) < model.r_max)
    src, dst = src[keep], dst[keep]
    shift = torch.zeros(len(src), 3, dtype=torch.float64)
    energy, atomic, forces, virial, atom_virial = module.forward(pos, species, src, dst, shift, 4)
    ref_atomic = model(pos[src] - pos[dst], species, src, dst)
    assert torch.allclose(atomic, ref_atomic.detach(), atol=1e-12)
    assert abs(float(energy) - float(ref_atomic[:4].sum())) < 1e-10
    # per-atom virials: each edge's -vec (x) dE/dvec split between its two atoms; they sum to the virial
    assert atom_virial.shape == (6, 3, 3) and torch.allclose(atom_virial.sum(0), virial, atol=1e-12)
    vec = (pos[src] - pos[dst]).requires_grad_(True)
    grad = torch.autograd.grad(model(vec, species, src, dst)[:4].sum(), vec)[0]
    edge = -0.5 * vec.detach().unsqueeze(2) * grad.unsqueeze(1)
    ref_atom_virial = torch.zeros(6, 3, 3, dtype=torch.float64).index_add(0, src, edge).index_add(0, dst, edge)
    assert torch.allclose(atom_virial, ref_atom_virial, atol=1e-12)
    one = module.forward(pos[:1], species[:1], src[:0], dst[:0], shift[:0], 1)
    lone = model(pos[:0], species[:1], src[:0], dst[:0])
    assert abs(float(one[0]) - float(lone.sum())) < 1e-12 and one[2].shape == (1, 3) and one[1].shape == (1,)


def test_same_results_as_python(model, exported):
    module, _ = load(exported)
    atoms = _crystal()
    species = model.species_index(atoms.get_chemical_symbols())
    pos, cell = torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)
    ref = evaluate(model, pos, species, cell, True, stress=True)
    energy, atomic, forces, virial, atom_virial = module.compute(pos, species, cell, torch.tensor([True] * 3))
    assert abs(energy - ref["energy"]) < 1e-10
    assert torch.allclose(forces, ref["forces"], atol=1e-10)
    assert torch.allclose(virial, ref["virial"], atol=1e-10)
    assert torch.allclose(atomic, ref["energies"], atol=1e-12)
    assert torch.allclose(atom_virial.sum(0), virial, atol=1e-12)


def test_ase_calculator_on_the_exported_file(model, exported):
    atoms = _crystal()
    atoms.calc = EquiForceCalculator(exported)
    e_file, f_file, s_file = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = EquiForceCalculator(model)
    assert np.isclose(e_file, atoms.get_potential_energy(), atol=1e-10)
    assert np.allclose(f_file, atoms.get_forces(), atol=1e-10)
    assert np.allclose(s_file, atoms.get_stress(), atol=1e-10)


def test_cpp_runtime_matches_python(model, exported, cpp_program, tmp_path):
    """csrc/runtime loads the file (either format) and gives the Python model's numbers."""
    atoms = _crystal()
    species = model.species_index(atoms.get_chemical_symbols())
    ref = evaluate(model, torch.tensor(atoms.positions), species, torch.tensor(atoms.cell.array), True, stress=True)
    (tmp_path / "in.bin").write_bytes(atoms.positions.tobytes() + species.numpy().tobytes() + atoms.cell.array.tobytes())
    result = subprocess.run([str(cpp_program / "run_deployed_model"), str(exported), str(tmp_path / "in.bin"),
                             str(len(atoms)), str(tmp_path / "out.bin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    fmt = "aoti" if exported.suffix == ".pt2" else "torchscript"
    assert f"species: Cu H ghost_cutoff 6.4 format {fmt}" in result.stdout
    out = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.float64)
    expected = np.concatenate([[ref["energy"].item()], ref["forces"].numpy().ravel(), ref["virial"].numpy().ravel()])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_cpp_runtime_errors(cpp_program, tmp_path):
    (tmp_path / "in.bin").write_bytes(b"\0" * 8 * 20)
    missing = subprocess.run([str(cpp_program / "run_deployed_model"), str(tmp_path / "nope.pt"),
                              str(tmp_path / "in.bin"), "1", str(tmp_path / "o.bin")], capture_output=True, text=True)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    for name in ("junk.pt", "junk.pt2"):
        (tmp_path / name).write_bytes(b"not a model")
        junk = subprocess.run([str(cpp_program / "run_deployed_model"), str(tmp_path / name),
                               str(tmp_path / "in.bin"), "1", str(tmp_path / "o.bin")], capture_output=True, text=True)
        assert junk.returncode == 1 and "cannot load" in junk.stderr and "equiforce deploy" in junk.stderr


def test_aoti_needs_pt2_name(model, tmp_path):
    with pytest.raises(ValueError, match=r"\*\.pt2"):
        export(model, tmp_path / "model.pt", format="aoti")
    with pytest.raises(ValueError, match="format must be one of"):
        export(model, tmp_path / "model.pt", format="onnx")


def test_loads_in_a_fresh_process(exported):
    code = f"""
import torch
from equiforce.deploy import load
m, meta = load({str(exported)!r})
e, a, f, v, w = m.compute(torch.zeros(2, 3, dtype=torch.float64) + torch.tensor([[0.0, 0, 0], [1.5, 0, 0]]),
                       torch.tensor([0, 1]), torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.bool))
assert torch.allclose(f.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corrupt_and_foreign_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model file"):
        load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(foreign))
    with pytest.raises(ValueError, match="not an equiforce model"):
        load(foreign)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.pt")


def test_layer_sizes_prune_ghosts_exactly(model, tmp_path):
    """A host with ghost atoms passes nodes ordered by hops from the local atoms, edges by their
    receiver's hops, and how many of each every layer needs: the numbers are those of the full graph."""
    module, _ = load(export(model, tmp_path / "m.pt"))
    torch.manual_seed(5)
    pos = torch.rand(40, 3, dtype=torch.float64) * torch.tensor([12.0, 4.0, 4.0])
    species = torch.randint(0, 2, (40,))
    src, dst = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    keep = (src != dst) & ((pos[src] - pos[dst]).norm(dim=-1) < model.r_max)
    src, dst = src[keep], dst[keep]
    # hops from the atoms with x < 4 (local), through edges
    hops = torch.full((40,), 99)
    hops[pos[:, 0] < 4.0] = 0
    for hop in range(1, model.num_layers + 1):
        reached = (hops[dst] == hop - 1) & (hops[src] == 99)
        hops[src[reached]] = hop
    order = torch.argsort(hops, stable=True)
    order = order[hops[order] <= model.num_layers]
    new = torch.full((40,), -1)
    new[order] = torch.arange(len(order))
    pos, species, hop_of = pos[order], species[order], hops[order]
    edges = (new[src] >= 0) & (new[dst] >= 0)
    src, dst = new[src[edges]], new[dst[edges]]
    edges = hop_of[dst] < model.num_layers
    src, dst = src[edges], dst[edges]
    by_receiver = torch.argsort(hop_of[dst], stable=True)
    src, dst = src[by_receiver], dst[by_receiver]
    num_local = int((hop_of == 0).sum())
    L = model.num_layers
    sizes = torch.tensor([[int((hop_of <= L - 1 - k).sum()) for k in range(L)],
                          [int((hop_of[dst] <= L - 1 - k).sum()) for k in range(L)]])
    assert 0 < num_local < sizes[0, 0] < len(pos) and sizes[1, -1] < sizes[1, 0]  # something is pruned
    shift = torch.zeros(len(src), 3, dtype=torch.float64)
    full = module.forward(pos, species, src, dst, shift, num_local)
    pruned = module.forward(pos, species, src, dst, shift, num_local, sizes)
    assert abs(float(full[0] - pruned[0])) < 1e-12
    assert torch.allclose(full[1][:num_local], pruned[1][:num_local], atol=1e-12)
    for a, b in zip(full[2:], pruned[2:]):
        assert torch.allclose(a, b, atol=1e-12)
    with pytest.raises(Exception, match="layer_sizes"):
        module.forward(pos, species, src, dst, shift, num_local, sizes[:, :1])
