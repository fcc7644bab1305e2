"""Sample efficiency: force error on ethanol's test_MD.xyz against the number of training frames, for
equivariant models with l_max = 0 (invariant messages), 1, 2, 3 at similar parameter counts, and for a
non-equivariant message-passing network of similar size trained with random O(3) augmentation.

    python benchmarks/sample_efficiency.py                       # the full study (~70 min, one thread)
    python benchmarks/sample_efficiency.py --sizes 25 100 --models l0 baseline --steps 300   # a quick look

Every model trains in the same loop: the first N frames of a fixed random order of ../shared/data/
ethanol/train.xyz (so the sets are nested), Adam with a cosine-decayed learning rate for a step budget
that grows with the set (``--steps`` plus ``--steps-per-frame`` per training frame, at most
``--max-steps``: from 4,250 steps at 25 frames to 14,000 at 1,000), energy + forces loss, no
validation-based selection. The budget is the same for every model at a given size; it is not
training to convergence (at 250 frames, l_max = 0 reaches 111 meV/A after 3,000 steps and 67 after
10,000), so the curves compare models at equal optimizer work. test_MD.xyz is only evaluated, once per run, at the
end. Writes benchmarks/results/sample_efficiency.{json,png}; the JSON is rewritten after every run so
an interrupted study keeps what it measured, and ``--resume`` skips the runs already in it.
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from equiforce.data import build_graph, collate, read_structures
from equiforce.model import EquiForceModel
from equiforce.nn import BesselBasis, PolynomialCutoff
from equiforce.train.fitting import average_num_neighbors, fit_energy_shift_and_scale
from equiforce.train.report import line_plot

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "ethanol"
SPECIES = ["C", "H", "O"]
R_MAX, LAYERS = 4.0, 2


class CartesianMessagePassing(torch.nn.Module):
    """The non-equivariant baseline: SchNet-like continuous-filter messages whose filter network also
    reads the raw Cartesian edge vector, so the energy is translation- and permutation-invariant but not
    rotation-invariant (it has to learn that from augmented data). Same interface as EquiForceModel:
    ``forward(edge_vectors, species, edge_src, edge_dst) -> per-atom energies``; smooth at the cutoff."""

    def __init__(self, num_species: int, width: int, r_max: float, num_layers: int, num_basis: int = 8,
                 avg_num_neighbors: float = 1.0) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(num_species, width)
        self.basis = BesselBasis(r_max, num_basis)
        self.cutoff = PolynomialCutoff(r_max, 6)
        self.r_max = r_max
        self.norm = 1.0 / math.sqrt(avg_num_neighbors)
        mlp = lambda a, b: torch.nn.Sequential(torch.nn.Linear(a, width), torch.nn.SiLU(),  # noqa: E731
                                               torch.nn.Linear(width, b))
        self.filters = torch.nn.ModuleList(mlp(num_basis + 3, width) for _ in range(num_layers))
        self.mix = torch.nn.ModuleList(torch.nn.Linear(width, width, bias=False) for _ in range(num_layers))
        self.update = torch.nn.ModuleList(mlp(2 * width, width) for _ in range(num_layers))
        self.readout = mlp(width, 1)
        self.register_buffer("energy_shift", torch.zeros(num_species))
        self.register_buffer("energy_scale", torch.ones(num_species))

    def forward(self, vec, species, edge_src, edge_dst):
        r = vec.norm(dim=1)
        edge = torch.cat([self.basis(r), vec / self.r_max], dim=1)
        smooth = self.cutoff(r).unsqueeze(1)
        h = self.embedding(species)
        for filt, mix, update in zip(self.filters, self.mix, self.update):
            messages = filt(edge) * smooth * mix(h)[edge_src]
            pooled = torch.zeros_like(h).index_add(0, edge_dst, messages) * self.norm
            h = h + update(torch.cat([h, pooled], dim=1))
        return self.readout(h).squeeze(1) * self.energy_scale[species] + self.energy_shift[species]


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build(kind: str, target: int, avg_neighbors: float, dtype):
    """The model of this kind whose parameter count is closest to ``target``."""
    if kind == "baseline":
        make = lambda w: CartesianMessagePassing(len(SPECIES), w, R_MAX, LAYERS,  # noqa: E731
                                                 avg_num_neighbors=avg_neighbors)
    else:
        l_max = int(kind[1:])
        make = lambda w: EquiForceModel(SPECIES, r_max=R_MAX, l_max=l_max, num_features=w,  # noqa: E731
                                        num_layers=LAYERS, radial_hidden=32, avg_num_neighbors=avg_neighbors)
    width = min(range(4, 129, 2), key=lambda w: abs(parameters(make(w)) - target))
    return make(width).to(dtype), width


def random_o3(n: int, generator) -> torch.Tensor:
    """n random orthogonal matrices (Haar), half of them with determinant -1."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=1, dim2=2)).unsqueeze(1)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(torch.float64)
    return q * flip[:, None, None]


def energy_and_forces(model, batch, create_graph: bool):
    positions = batch.positions.detach().requires_grad_(True)
    vec = positions[batch.edge_src] - positions[batch.edge_dst] + batch.edge_shift
    atomic = model(vec, batch.species, batch.edge_src, batch.edge_dst)
    energy = torch.zeros(batch.num_graphs, dtype=atomic.dtype).index_add(0, batch.atom_graph, atomic)
    grad, = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
    return energy, -grad


def rotate(batch, rotations):
    """Each structure of the batch turned by its own O(3) element (positions and force labels)."""
    per_atom = rotations.to(batch.positions.dtype)[batch.atom_graph]
    batch.positions = torch.einsum("nij,nj->ni", per_atom, batch.positions)
    batch.forces = torch.einsum("nij,nj->ni", per_atom, batch.forces)
    return batch


def train(model, graphs, steps: int, batch_size: int, lr: float, augment: bool, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * 0.01)
    order, cursor = rng.permutation(len(graphs)), 0
    for _ in range(steps):
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(len(graphs)), 0
        batch = collate([graphs[n] for n in order[cursor:cursor + batch_size]])
        cursor += batch_size
        if augment:
            batch = rotate(batch, random_o3(batch.num_graphs, generator))
        energy, forces = energy_and_forces(model, batch, create_graph=True)
        loss = ((energy - batch.energy) / batch.num_atoms).pow(2).mean() + 100.0 * (forces - batch.forces).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


def test_errors(model, graphs, batch_size: int = 50) -> dict:
    energy_err, force_err = [], []
    for k in range(0, len(graphs), batch_size):
        batch = collate(graphs[k:k + batch_size])
        energy, forces = energy_and_forces(model, batch, create_graph=False)
        energy_err.append((energy.detach() - batch.energy).double())
        force_err.append((forces.detach() - batch.forces).double().reshape(-1))
    e, f = torch.cat(energy_err), torch.cat(force_err)
    return {"energy_mae_meV": 1e3 * float(e.abs().mean()), "forces_mae_meV_per_A": 1e3 * float(f.abs().mean()),
            "forces_rmse_meV_per_A": 1e3 * float(f.pow(2).mean().sqrt())}


def plot(results: dict, path: Path) -> None:
    series = []
    for kind, runs in results["runs"].items():
        sizes = sorted(int(n) for n in runs)
        label = "non-equivariant + O(3) augmentation" if kind == "baseline" else f"l_max = {kind[1:]}"
        series.append((label, sizes, [runs[str(n)]["forces_mae_meV_per_A"] for n in sizes],
                       "o--" if kind == "baseline" else "o-"))
    line_plot(path, series, "training frames", "force MAE on ethanol test_MD (meV/A)",
              f"Sample efficiency (~{results['target_parameters'] // 1000}k parameters each)", log=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 250, 500, 1000])
    parser.add_argument("--models", nargs="+", default=["l0", "l1", "l2", "l3", "baseline"])
    parser.add_argument("--parameters", type=int, default=30000, help="target parameter count of every model")
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps per run, plus --steps-per-frame")
    parser.add_argument("--steps-per-frame", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=15000)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "sample_efficiency"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in OUT.json")
    parser.add_argument("--train-file", default=str(DATA / "train.xyz"), help="pool of training frames")
    parser.add_argument("--test-file", default=str(DATA / "test_MD.xyz"), help="evaluation frames (never trained on)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.float32
    bad = [m for m in args.models if m not in ("l0", "l1", "l2", "l3", "baseline")]
    if bad:
        parser.error(f"unknown models {bad}: choose from l0 l1 l2 l3 baseline")

    lookup = {s: n for n, s in enumerate(SPECIES)}
    index = lambda symbols: torch.tensor([lookup[s] for s in symbols])  # noqa: E731
    pool = read_structures(args.train_file)
    if max(args.sizes) > len(pool):
        parser.error(f"{args.train_file} has {len(pool)} frames; sizes must not exceed that")
    order = np.random.default_rng(args.seed).permutation(len(pool))
    pool = [build_graph(pool[n], index, R_MAX, dtype) for n in order[:max(args.sizes)]]
    test = [build_graph(s, index, R_MAX, dtype) for s in read_structures(args.test_file)]
    avg_neighbors = average_num_neighbors(pool)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"command": "python benchmarks/sample_efficiency.py " + " ".join(
                   f"{k}" for k in __import__("sys").argv[1:]),
               "machine": f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
               "date": time.strftime("%Y-%m-%d"), "target_parameters": args.parameters,
               "test_frames": len(test), "runs": {}, "models": {}}
    if args.resume and out.with_suffix(".json").exists():
        results = json.loads(out.with_suffix(".json").read_text())
    for kind in args.models:
        for size in args.sizes:
            if str(size) in results["runs"].get(kind, {}):
                continue
            graphs = pool[:size]
            torch.manual_seed(args.seed)
            model, width = build(kind, args.parameters, avg_neighbors, dtype)
            shift, scale = fit_energy_shift_and_scale(graphs, len(SPECIES))
            with torch.no_grad():
                model.energy_shift.copy_(shift)
                model.energy_scale.copy_(scale)
            steps = min(args.steps + args.steps_per_frame * size, args.max_steps)
            start = time.perf_counter()
            train(model, graphs, steps, args.batch_size, args.lr, augment=kind == "baseline", seed=args.seed)
            seconds = time.perf_counter() - start
            run = {**test_errors(model, test), "steps": steps, "train_seconds": round(seconds, 1)}
            results["models"][kind] = {"width": width, "parameters": parameters(model)}
            results["runs"].setdefault(kind, {})[str(size)] = run
            print(f"{kind:8s} width {width:3d} ({parameters(model)} params)  N={size:5d}  {steps} steps "
                  f"{seconds:6.0f} s  F MAE {run['forces_mae_meV_per_A']:7.1f} meV/A  "
                  f"E MAE {run['energy_mae_meV']:7.1f} meV", flush=True)
            out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
