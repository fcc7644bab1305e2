"""Active learning of ethanol with GFN2-xTB labels: committee uncertainty against random selection.

    python examples/active_learning.py                    # ~25 min on one core; writes
                                                          # benchmarks/results/active_learning.{json,png}
    python examples/active_learning.py --seed 1 --out benchmarks/results/active_learning_seed1
    python examples/active_learning.py --plot benchmarks/results/active_learning{,_seed1}.json \
        --out benchmarks/results/active_learning_seeds        # both seeds in one plot

Both strategies start from the same 20 ethanol geometries (examples/data/ethanol/train.xyz, relabelled
with GFN2-xTB through tblite) and run 5 rounds of

    train a committee (3 small models, seeds 0-2) -> Langevin MD at 500 K with its mean forces
    -> pick 20 frames -> label them with xTB -> add them to the training set,

then train once more. ``uncertainty`` picks with ``equiforce.select`` (largest per-atom force_std,
no symmetry copies of one another or of the frames already labelled); ``random`` picks 20 frames of
its own trajectories at random. After every training the committee's mean is scored on the 1000
geometries of ../shared/data/ethanol/test_MD.xyz relabelled with xTB (evaluation only: nothing is
trained, tuned or selected on them). MD trajectories end early where the committee's largest
force_std passes 1 eV/A or two atoms come closer than 0.6 A — the frames an early model is unsure
about are what the loop is for, and LAMMPS users get the same with ``pair_style equiforce
uncertainty 1.0 stop``.
"""
import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT.parent / "shared" / "data" / "ethanol" / "test_MD.xyz"
START = ROOT / "examples" / "data" / "ethanol" / "train.xyz"
MODEL = dict(species=["C", "H", "O"], r_max=4.0, l_max=1, num_features=16, num_layers=2, radial_hidden=32)


def _label_module():
    spec = importlib.util.spec_from_file_location("label_xtb", ROOT / "examples" / "data" / "label_xtb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def label(frames):
    return [atoms for _, atoms in _label_module().label(frames)]


def train_committee(frames, folder: Path, members: int, steps: int) -> Path:
    """``members`` models on ``frames`` (seeds 0..members-1: different weights, data order and 10%
    held out), deployed as one committee."""
    from ase.io import write

    from equiforce.deploy import export
    from equiforce.train import Trainer

    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "train.xyz", frames, format="extxyz")
    batches = math.ceil(0.9 * len(frames) / 5)
    checkpoints = []
    for seed in range(members):
        out = folder / f"member{seed}"
        config = {"model": MODEL, "data": {"train_file": str(folder / "train.xyz"), "validation_fraction": 0.1},
                  "training": {"output_dir": str(out), "seed": seed, "batch_size": 5, "lr": 0.01,
                               "max_epochs": max(10, steps // batches), "scheduler": "cosine", "min_lr": 5e-4,
                               "early_stopping_patience": 10 ** 6, "progress": False, "plots": False}}
        Trainer(config).fit()
        checkpoints.append(out / "last.pt")
    return export(checkpoints, folder / "committee.pt")


def run_md(committee: Path, starts, steps: int, temperature: float, every: int, rng) -> list:
    """Langevin trajectories from each start with the committee's mean forces; every ``every``-th frame."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    from equiforce.hosts.ase import EquiForceCalculator

    frames = []
    calc = EquiForceCalculator(committee)
    for start in starts:
        atoms = start.copy()
        atoms.calc = calc
        thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
        dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs, fixcm=False,
                       rng=rng)
        for step in range(steps):
            dyn.run(1)
            distances = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
            if calc.results["force_std"].max() > 1.0 or distances.min() < 0.6:
                frames.append(atoms.copy())  # the frame that ended it is the most informative
                break
            if step % every == every - 1:
                frames.append(atoms.copy())
    for frame in frames:
        frame.calc = None
    return frames


def score(committee: Path, test_file: Path) -> dict:
    from equiforce.deploy import load
    from equiforce.deploy.evaluate import evaluate_file

    module, meta = load(committee)
    metrics = evaluate_file(module, meta, test_file)
    return {"forces_mae_meV_per_A": 1e3 * metrics["forces_mae"], "energy_mae_meV": 1e3 * metrics["energy_mae"]}


def plot(runs: list, path: Path) -> None:
    """Force MAE against labelled frames, each strategy averaged over the runs (one per seed; each
    seed also drawn thin)."""
    from equiforce.train.report import line_plot

    names = {"uncertainty": "committee force_std (equiforce select)", "random": "random frames"}
    series = []
    for strategy, color in (("uncertainty", "C0"), ("random", "C1")):
        labelled = [r["labelled"] for r in runs[0]["strategies"][strategy]]
        errors = np.array([[r["forces_mae_meV_per_A"] for r in run["strategies"][strategy]] for run in runs])
        label = names[strategy] + (f", mean of {len(runs)} seeds" if len(runs) > 1 else "")
        series.append((label, labelled, errors.mean(0), f"{color}o-" if strategy == "uncertainty" else f"{color}s--"))
        if len(runs) > 1:
            series += [(f"_seed {run['settings']['seed']}", labelled, e, f"{color}:") for run, e in zip(runs, errors)]
    settings = runs[0]["settings"]
    line_plot(path, series, "labelled frames (GFN2-xTB)", "force MAE on ethanol test_MD, xTB labels (meV/A)",
              f"Active learning: {settings['start']} start frames + {settings['rounds']} rounds of "
              f"{settings['per_round']}" + (" (dotted: each seed)" if len(runs) > 1 else ""))


def main() -> int:
    from ase.io import read, write

    from equiforce.select import select

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--start", type=int, default=20, help="labelled frames to start from")
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per member")
    parser.add_argument("--trajectories", type=int, default=5)
    parser.add_argument("--md-steps", type=int, default=400)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-file", default=str(START), help="geometries to draw the start frames from")
    parser.add_argument("--test-file", default=str(TEST), help="geometries to score on (labelled with xTB here)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "active_learning"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "active_learning"))
    parser.add_argument("--plot", nargs="+", metavar="JSON", help="only draw OUT.png from these results (the "
                        "runs of several seeds: their mean and each one)")
    args = parser.parse_args()
    if args.plot:
        plot([json.loads(Path(p).read_text()) for p in args.plot], Path(args.out).with_suffix(".png"))
        return 0

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    test_file = work / "test_MD_xtb.xyz"
    if not test_file.exists():
        write(test_file, label(read(args.test_file, index=":")), format="extxyz")
    rng = np.random.default_rng(args.seed)
    pool = read(args.start_file, index=":")
    start = label([pool[k] for k in rng.choice(len(pool), args.start, replace=False)])
    results = {"command": "python examples/active_learning.py " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"),
               "settings": {k: v for k, v in vars(args).items() if k not in ("work", "out", "start_file", "test_file")},
               "model": MODEL,
               "strategies": {}}
    for strategy in ("uncertainty", "random"):
        labelled, rounds = list(start), []
        strategy_rng = np.random.default_rng(args.seed + 1)  # the same MD noise for both strategies
        for r in range(args.rounds + 1):
            committee = train_committee(labelled, work / strategy / f"round{r}", args.members, args.steps)
            entry = {"round": r, "labelled": len(labelled), **score(committee, test_file)}
            if r < args.rounds:
                starts = [labelled[k] for k in strategy_rng.choice(len(labelled), args.trajectories, replace=False)]
                frames = run_md(committee, starts, args.md_steps, args.temperature, 10, strategy_rng)
                if strategy == "uncertainty":
                    from equiforce.deploy import load

                    module, meta = load(committee)
                    picked, scores, skipped = select(frames, module, meta, args.per_round, exclude=labelled)
                    entry["picked_force_std_max"] = float(max(scores[k]["score"] for k in picked))
                    entry["skipped_copies"] = skipped
                else:
                    picked = list(strategy_rng.choice(len(frames), min(args.per_round, len(frames)), replace=False))
                entry["md_frames"] = len(frames)
                new = label([frames[k] for k in picked])
                labelled += new
            rounds.append(entry)
            print(f"[{strategy}] round {r}: {entry['labelled']} labelled, test F MAE "
                  f"{entry['forces_mae_meV_per_A']:.1f} meV/A, E MAE {entry['energy_mae_meV']:.1f} meV "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        results["strategies"][strategy] = rounds
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    plot([results], out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
