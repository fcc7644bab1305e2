"""Fine-tuning study: SevenNet-0 (converted from the installed sevenn package) fine-tuned on 25, 50, 100
and 250 ethanol frames, against the same architecture trained from scratch and against equiforce's
own ethanol architecture from scratch, all with the same optimizer-step budget.

    python benchmarks/finetune.py                                   # the full study (~65 min on 2 cores)
    python benchmarks/finetune.py --sizes 25 --steps 100 --test-frames 100   # a quick look

Every run goes through ``equiforce train`` (:class:`equiforce.train.Trainer`): the first N frames of a
fixed random order of ../shared/data/ethanol/train.xyz (nested sets), a validation set of 50 other
frames of that file (only for the log), batch size 5, Adam, cosine decay to lr/20 over ``--steps``
optimizer steps (the same budget for every run at a size), EMA 0.99, loss 1 x per-atom energy MSE +
100 x force MSE. Variants:

- ``finetune``: ``model.init_from: 7net-0.ckpt`` (``equiforce convert sevenn:7net-0 -o 7net-0.ckpt``),
  lr 1e-3, the energy reference refitted (MPtrj's PBE-PAW energies and this set's PBE/def2-SVP ones
  differ by hundreds of eV per atom), nothing frozen;
- ``finetune_frozen``: the same with the embedding and the first two interaction layers frozen;
- ``scratch_7net``: the 7net-0 architecture (C, H, O only) from random weights, lr 1e-2;
- ``scratch_equiforce``: examples/configs/ethanol.yaml's architecture (32 features, l_max 2, 4 layers,
  parity), lr 1e-2.

test_MD.xyz is only evaluated, once per run, at the end (EMA weights): force MAE (meV/A) and energy MAE
(meV). Writes benchmarks/results/finetune.{json,png}; the JSON is rewritten after every run and
``--resume`` skips the runs already in it.
"""
import argparse
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.io import read, write  # noqa: E402

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data" / "ethanol"
VARIANTS = ("finetune", "finetune_frozen", "scratch_7net", "scratch_equiforce")
EQUIFORCE_ETHANOL = {"species": ["C", "H", "O"], "r_max": 5.0, "l_max": 2, "parity": True, "num_features": 32,
                     "num_layers": 4, "num_basis": 8, "cutoff_p": 6, "radial_hidden": 64, "radial_depth": 2}


def model_section(variant: str, checkpoint: Path) -> dict:
    if variant.startswith("finetune"):
        return {"init_from": str(checkpoint)}
    if variant == "scratch_7net":  # the converted model's own options, for the three elements
        from equiforce.train.checkpoint import load_checkpoint

        config = dict(load_checkpoint(checkpoint)["model_config"])
        for key in ("dtype", "avg_num_neighbors", "source"):
            config.pop(key, None)
        config["species"] = ["C", "H", "O"]
        return config
    return dict(EQUIFORCE_ETHANOL)


def run(variant: str, size: int, args, frames, validation, checkpoint: Path, work: Path) -> dict:
    from equiforce.data import build_graph, read_structures
    from equiforce.train import Trainer

    out = work / f"{variant}_{size}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write(out / "train.xyz", frames[:size], format="extxyz")
    steps_per_epoch = math.ceil(size / args.batch_size)
    epochs = max(1, round(args.steps / steps_per_epoch))
    lr = 1e-3 if variant.startswith("finetune") else 1e-2
    training = {"output_dir": str(out), "seed": args.seed, "batch_size": args.batch_size, "max_epochs": epochs,
                "lr": lr, "scheduler": "cosine", "min_lr": lr / 20, "ema_decay": 0.99,
                "early_stopping_patience": 10 ** 6, "progress": False, "plots": False}
    if variant == "finetune_frozen":
        training["freeze"] = ["embedding", "layers.0", "layers.1"]
    config = {"model": model_section(variant, checkpoint),
              "data": {"train_file": str(out / "train.xyz"), "validation_file": str(validation)},
              "training": training}
    start = time.monotonic()
    trainer = Trainer(config)
    trainer.fit()
    seconds = time.monotonic() - start
    test = read_structures(DATA / "test_MD.xyz", index=f":{args.test_frames}")
    lookup = {s: n for n, s in enumerate(trainer.species)}
    graphs = [build_graph(s, lambda symbols: torch.tensor([lookup[x] for x in symbols]), trainer.model.r_max,
                          trainer.dtype) for s in test]
    with trainer._with_ema():
        metrics = trainer.evaluate(graphs)
    record = {"variant": variant, "size": size, "epochs": epochs, "steps": epochs * steps_per_epoch, "lr": lr,
              "train_seconds": round(seconds, 1), "test_frames": len(test),
              "test_forces_mae_meV_A": 1e3 * metrics["forces_mae"], "test_energy_mae_meV": 1e3 * metrics["energy_mae"],
              "parameters": sum(p.numel() for p in trainer.model.parameters()),
              "trainable": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}
    print(f"[finetune] {variant:18s} N={size:4d}  {record['steps']} steps  {seconds:6.0f} s  "
          f"F MAE {record['test_forces_mae_meV_A']:7.1f} meV/A  E MAE {record['test_energy_mae_meV']:8.1f} meV",
          flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return record


def plot(records, path: Path):
    from equiforce.train.report import line_plot

    series = []
    styles = {"finetune": "o-", "finetune_frozen": "s--", "scratch_7net": "^-", "scratch_equiforce": "v-"}
    labels = {"finetune": "7net-0 fine-tuned", "finetune_frozen": "7net-0 fine-tuned, embedding + 2 layers frozen",
              "scratch_7net": "7net-0 architecture, from scratch", "scratch_equiforce": "equiforce ethanol model, from scratch"}
    for variant in VARIANTS:
        rows = sorted((r for r in records if r["variant"] == variant), key=lambda r: r["size"])
        if rows:
            series.append((labels[variant], [r["size"] for r in rows], [r["test_forces_mae_meV_A"] for r in rows],
                           styles[variant]))
    return line_plot(path, series, "training frames", "force MAE on test_MD (meV/A)",
                     "Fine-tuning SevenNet-0 on ethanol (equal step budget)", log=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 250])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per run (default 500)")
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--test-frames", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--json-out", type=Path, default=ROOT / "results" / "finetune.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "results" / "finetune.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from equiforce.convert import convert

    work = Path(tempfile.mkdtemp(prefix="equiforce-finetune-"))
    checkpoint = convert("sevenn:7net-0", work / "7net-0.ckpt")
    everything = read(DATA / "train.xyz", ":")
    order = np.random.default_rng(args.seed).permutation(len(everything))
    frames = [everything[n] for n in order[:max(args.sizes)]]
    validation = work / "validation.xyz"
    write(validation, [everything[n] for n in order[-50:]], format="extxyz")
    records = json.loads(args.json_out.read_text())["runs"] if args.resume and args.json_out.exists() else []
    done = {(r["variant"], r["size"]) for r in records}
    for size in args.sizes:
        for variant in args.variants:
            if (variant, size) in done:
                continue
            records.append(run(variant, size, args, frames, validation, checkpoint, work))
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "threads": args.threads,
                                                 "steps": args.steps, "batch_size": args.batch_size,
                                                 "torch": torch.__version__, "runs": records}, indent=2))
    print("[finetune] plot:", plot(records, args.plot))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
