"""The ``equiforce`` command line: ``train CONFIG``, ``deploy CHECKPOINT [CHECKPOINT ...] -o model.pt``,
``convert SOURCE -o model.pt``, ``check MODEL``, ``eval MODEL DATA``, ``select TRAJ --model committee.pt -n N -o picked.xyz``."""
import argparse
import json
import sys


def _train(args) -> int:
    from .train import Trainer, load_config

    config = load_config(args.config)
    if args.output_dir:
        config["training"]["output_dir"] = args.output_dir
    if args.seed is not None:  # committee members: one config, several seeds
        config["training"]["seed"] = args.seed
    metrics = Trainer(config).fit()
    print(json.dumps(metrics, indent=2))
    return 0


def _deploy(args) -> int:
    from .deploy import export, load

    if args.config:  # a deployed file exported again (e.g. one that predates the stages)
        from pathlib import Path

        import yaml

        from .deploy.reexport import reexport

        if len(args.checkpoint) != 1 or args.format != "torchscript":
            raise SystemExit("equiforce deploy --config re-exports one deployed file (a committee file is one) "
                             "as TorchScript: `equiforce deploy OLD.pt --config TRAINING.yaml -o NEW.pt`")
        config = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(config.get("model"), dict):
            raise SystemExit(f"{args.config} has no model section: give the training config the model was made with")
        path = reexport(args.checkpoint[0], config["model"], args.output)
    else:
        path = export(args.checkpoint, args.output, format=args.format)  # several: one committee
    _, meta = load(path)
    print(f"wrote {path}: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
    return 0


def _convert(args) -> int:
    from .convert import convert

    path = convert(args.source, args.output, dtype=args.dtype, modality=args.modality)
    if path.suffix == ".ckpt":
        print(f"wrote {path}: an equiforce training checkpoint (deploy it, or fine-tune with init_from: {path})")
        return 0
    from .deploy import load

    _, meta = load(path)
    print(f"wrote {path}: " + ", ".join(f"{k}={v}" for k, v in meta.items() if k != "species")
          + f", {len(meta['species'].split())} elements")
    return 0


def _check(args) -> int:
    from .deploy import load
    from .deploy.check import format_table, run_checks

    module, meta = load(args.model)
    results = run_checks(module, meta, seed=args.seed)
    print(format_table(results))
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"{len(failed)} check(s) failed: {failed}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


def _label_key(value: str):
    """A label name on the command line; 'none' (or 'null', as in YAML configs) skips the label."""
    return None if value.strip().lower() in ("none", "null", "") else value


def _eval(args) -> int:
    from .deploy import load
    from .deploy.evaluate import evaluate_file

    module, meta = load(args.model)
    metrics = evaluate_file(module, meta, args.data, energy_key=args.energy_key, forces_key=args.forces_key,
                            dipole_key=args.dipole_key, polarizability_key=args.polarizability_key)
    print(json.dumps(metrics, indent=2))
    return 0


def _select(args) -> int:
    from pathlib import Path

    from ase import Atoms
    from ase.io import read, write

    from .deploy import load
    from .select import select

    output = Path(args.output)
    inputs = [Path(args.trajectory)] + [Path(p) for p in args.exclude]
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        if output.resolve() == path.resolve():
            raise ValueError(f"-o {output} would overwrite an input: write the picked frames to a new file")
    module, meta = load(args.model)
    frames = read(args.trajectory, index=args.index)
    frames = frames if isinstance(frames, list) else [frames]
    exclude = [atoms for path in args.exclude for atoms in read(path, index=":")]
    picked, scores, skipped = select(frames, module, meta, args.n, exclude, args.tolerance, args.score)
    out = []
    for k in picked:  # geometry only: the trajectory's energies and forces are no labels
        atoms = Atoms(frames[k].get_chemical_symbols(), frames[k].positions, cell=frames[k].cell, pbc=frames[k].pbc)
        atoms.info.update(source_index=k, committee_energy_std=scores[k]["energy_std"],
                          committee_score=scores[k]["score"])
        atoms.arrays["committee_force_std"] = scores[k]["force_std"]
        out.append(atoms)
    tmp = output.with_name(output.name + ".partial")
    write(tmp, out, format="extxyz")
    tmp.replace(output)
    chosen = [scores[k]["score"] for k in picked]
    print(f"picked {len(picked)} of {len(frames)} frames into {output} (score {args.score}: "
          + (f"{max(chosen):.4g} .. {min(chosen):.4g}" if chosen else "none")
          + f"); skipped {skipped['copies_of_excluded']} symmetry copies of excluded frames and "
          f"{skipped['copies_of_picked']} of picked ones")
    if len(picked) < args.n:
        print(f"only {len(picked)} distinct frames were available (asked for {args.n})", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="equiforce", description="E(3)-equivariant interatomic potentials")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model from a YAML config (resumes from output_dir/last.pt)")
    train.add_argument("config", help="YAML file with model, data and training sections")
    train.add_argument("--output-dir", help="override training.output_dir")
    train.add_argument("--seed", type=int, help="override training.seed (initial weights, validation split, "
                       "data order): train committee members from one config")
    train.set_defaults(run=_train)
    deploy = commands.add_parser("deploy", help="export a checkpoint (EMA weights) for LAMMPS, OpenMM and ASE; "
                                 "several checkpoints: one committee model with energy_std and force_std")
    deploy.add_argument("checkpoint", nargs="+")
    deploy.add_argument("-o", "--output", required=True)
    deploy.add_argument("--format", default="torchscript", choices=["torchscript", "aoti"],
                        help="torchscript (.pt, default) or aoti (AOTInductor .pt2, compiled for this CPU)")
    deploy.add_argument("--config", help="re-export a deployed TorchScript file instead of a checkpoint (one that "
                        "predates the stages, say), from the training config it was made with; checked to compute "
                        "what the old file computes, refused otherwise")
    deploy.set_defaults(run=_deploy)
    convert = commands.add_parser("convert", help="a model trained with another code -> an equiforce model that "
                                  "computes the same (deployed .pt/.pt2, or a .ckpt to fine-tune)")
    convert.add_argument("source", help="sevenn:7net-0, sevenn:7net-0_22May2024, sevenn:7net-l3i5, sevenn:7net-mf-0 (from the installed "
                         "sevenn package), the path of a SevenNet checkpoint_*.pth, or of a nequip 0.19 "
                         "training checkpoint (best.ckpt / last.ckpt from nequip-train)")
    convert.add_argument("-o", "--output", required=True, help="model.pt (TorchScript), model.pt2 (AOTInductor) or "
                         "model.ckpt (training checkpoint)")
    convert.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                         help="float32 (as SevenNet runs, default) or float64")
    convert.add_argument("--modality", help="the fidelity of a multi-fidelity model (7net-mf-0: PBE or R2SCAN)")
    convert.set_defaults(run=_convert)
    check = commands.add_parser("check", help="physics self-checks of an exported model (exit 1 on failure)")
    check.add_argument("model")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_check)
    evaluate = commands.add_parser("eval", help="energy and force errors of an exported model on labelled data")
    evaluate.add_argument("model")
    evaluate.add_argument("data", help="extxyz (or any ASE-readable) file with energies and forces")
    evaluate.add_argument("--energy-key", default="energy", type=_label_key, help="'none' skips energies")
    evaluate.add_argument("--forces-key", default="forces", type=_label_key,
                          help="'none' skips forces (frames without them are scored on what they have anyway)")
    evaluate.add_argument("--dipole-key", type=_label_key, help="also score the dipole against this per-structure "
                          "label")
    evaluate.add_argument("--polarizability-key", type=_label_key, help="also score the polarizability against this "
                          "label")
    evaluate.set_defaults(run=_eval)
    pick = commands.add_parser("select", help="the N frames of a trajectory a committee is least sure about, "
                               "without symmetry copies (active learning)")
    pick.add_argument("trajectory", help="frames to choose from (extxyz or any ASE-readable file)")
    pick.add_argument("--model", required=True, help="a committee model (equiforce deploy A B C -o committee.pt)")
    pick.add_argument("-n", type=int, required=True, help="how many frames to pick")
    pick.add_argument("-o", "--output", required=True, help="extxyz file for the picked frames (geometry only)")
    pick.add_argument("--exclude", nargs="*", default=[], help="frames already labelled (e.g. the training set): "
                      "their symmetry copies are skipped")
    pick.add_argument("--tolerance", type=float, default=1e-3, help="A, for deciding that two frames are copies")
    pick.add_argument("--score", default="max", choices=["max", "mean", "energy"],
                      help="rank by the largest per-atom force_std (default), its mean, or energy_std per atom")
    pick.add_argument("--index", default=":", help="ASE index of the frames to read (default all)")
    pick.set_defaults(run=_select)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"equiforce {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
