"""Why the dipole needs equivariant features: ethanol dipoles (GFN2-xTB, tblite) learned by the
equivariant head (per-atom 1o vectors from l_max = 2 features) and by an invariant-only model (l_max = 0
features, read out to three numbers by a plain linear layer), trained the same way on the same frames.

    python examples/data/label_xtb.py ../shared/data/ethanol/train.xyz -o data/xtb/ethanol_train.xyz
    python examples/data/label_xtb.py ../shared/data/ethanol/test_MD.xyz -o data/xtb/ethanol_test.xyz
    python benchmarks/dipole.py                      # ~10 min on 2 cores

An invariant model's output cannot turn with the molecule: on test frames in random orientations it
can do no better than a constant, and it learns the training mean. Reports component MAE (e A) on the
test frames as given and randomly rotated (with reflections), and the MAE of predicting the training
mean. Writes benchmarks/results/dipole.json.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


class InvariantDipole(torch.nn.Module):
    """l_max = 0 message passing; each atom's scalar features -> 3 numbers by a plain linear layer."""

    def __init__(self, base) -> None:
        super().__init__()
        self.base = base
        self.head = torch.nn.Linear(base.readout_hidden.irreps_in.dim, 3, dtype=base.energy_shift.dtype)

    def dipole(self, batch):
        vec = batch.positions[batch.edge_src] - batch.positions[batch.edge_dst] + batch.edge_shift
        x = self.base.node_features(vec, batch.species, batch.edge_src, batch.edge_dst)
        return torch.zeros(batch.num_graphs, 3, dtype=x.dtype).index_add(0, batch.atom_graph, self.head(x))


class EquivariantDipole(torch.nn.Module):
    def __init__(self, base) -> None:
        super().__init__()
        self.base = base

    def dipole(self, batch):
        return self.base.outputs(batch.positions, batch.species, batch.edge_src, batch.edge_dst, batch.edge_shift,
                                 batch.atom_graph, batch.num_graphs, batch.cells, batch.pbcs, forces=False)["dipole"]


def graphs_of(structures, species, r_max, rotate_seed=None):
    from equiforce.data import build_graph
    from equiforce.testing import random_o3

    lookup = {s: n for n, s in enumerate(species)}
    generator = torch.Generator().manual_seed(rotate_seed) if rotate_seed is not None else None
    graphs = []
    for s in structures:
        if generator is not None:  # rotate geometry and label together, reflections included
            g = random_o3(generator=generator).numpy()
            s = type(s)(s.symbols, s.positions @ g.T, s.cell, s.pbc, dipole=g @ s.dipole)
        graphs.append(build_graph(s, lambda sym: torch.tensor([lookup[x] for x in sym]), r_max, torch.float64))
    return graphs


def batches(graphs, size, rng=None):
    from equiforce.data import collate

    order = rng.permutation(len(graphs)) if rng is not None else np.arange(len(graphs))
    for k in range(0, len(order), size):
        yield collate([graphs[n] for n in order[k:k + size]])


def mae(model, graphs):
    with torch.no_grad():
        errors = [(model.dipole(b) - b.dipole).abs() for b in batches(graphs, 50)]
    return float(torch.cat(errors).mean())


def train(model, graphs, epochs, lr, seed):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs, eta_min=lr / 20)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for batch in batches(graphs, 10, rng):
            optimizer.zero_grad()
            loss = (model.dipole(batch) - batch.dipole).pow(2).mean()
            loss.backward()
            optimizer.step()
        schedule.step()


def main(argv=None) -> int:
    from equiforce.data import read_structures
    from equiforce.model import EquiForceModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", default=str(ROOT / "data/xtb/ethanol_train.xyz"))
    parser.add_argument("--test", default=str(ROOT / "data/xtb/ethanol_test.xyz"))
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--invariant-features", type=int, default=29,
                        help="features of the invariant model (29: about the equivariant one's parameter count)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    species, r_max = ["C", "H", "O"], 4.5
    train_s = read_structures(args.train, energy_key=None, forces_key=None, dipole_key="dipole")[: args.frames]
    test_s = read_structures(args.test, energy_key=None, forces_key=None, dipole_key="dipole")
    train_g = graphs_of(train_s, species, r_max)
    test_g, rotated_g = graphs_of(test_s, species, r_max), graphs_of(test_s, species, r_max, rotate_seed=1)
    mean = np.mean([s.dipole for s in train_s], axis=0)
    results = {"train_frames": len(train_g), "test_frames": len(test_g), "epochs": args.epochs,
               "mean_predictor": {"test_mae": float(np.abs(np.array([s.dipole for s in test_s]) - mean).mean()),
                                  "rotated_test_mae": float(np.mean([np.abs(g.dipole.numpy() - mean).mean()
                                                                     for g in rotated_g]))},
               "training_mean_dipole": mean.tolist()}
    for name, l_max, features, wrap, extra in (
            ("equivariant (l_max 2, 1o head)", 2, 16, EquivariantDipole, {"dipole": True}),
            ("invariant (l_max 0, linear head)", 0, args.invariant_features, InvariantDipole, {})):
        torch.manual_seed(0)
        base = EquiForceModel.from_config(dict(species=species, r_max=r_max, l_max=l_max, num_features=features,
                                               num_layers=2, avg_num_neighbors=8.0, **extra))
        model = wrap(base)
        start = time.time()
        train(model, train_g, args.epochs, 5e-3, seed=0)
        rotated = mae(model, rotated_g)
        results[name] = {"parameters": sum(p.numel() for p in model.parameters()), "train_mae": mae(model, train_g),
                         "test_mae": mae(model, test_g), "rotated_test_mae": rotated,
                         "train_seconds": round(time.time() - start, 1)}
        with torch.no_grad():
            pred = torch.cat([model.dipole(b) for b in batches(rotated_g, 50)])
        results[name]["rotated_test_mean_prediction"] = pred.mean(0).tolist()
        results[name]["rotated_test_prediction_std"] = pred.std(0).tolist()
        print(name, json.dumps(results[name]), flush=True)
    out = ROOT / "benchmarks" / "results" / "dipole.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
