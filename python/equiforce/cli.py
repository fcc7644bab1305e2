"""The ``equiforce`` command line: ``train CONFIG``, ``deploy CHECKPOINT -o model.pt``, ``check MODEL``,
``eval MODEL DATA``."""
import argparse
import json
import sys


def _train(args) -> int:
    from .train import Trainer, load_config

    config = load_config(args.config)
    if args.output_dir:
        config["training"]["output_dir"] = args.output_dir
    metrics = Trainer(config).fit()
    print(json.dumps(metrics, indent=2))
    return 0


def _deploy(args) -> int:
    from .deploy import export, load

    path = export(args.checkpoint, args.output, format=args.format)
    _, meta = load(path)
    print(f"wrote {path}: " + ", ".join(f"{k}={v}" for k, v in meta.items()))
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


def _eval(args) -> int:
    from .deploy import load
    from .deploy.evaluate import evaluate_file

    module, meta = load(args.model)
    metrics = evaluate_file(module, meta, args.data, energy_key=args.energy_key, forces_key=args.forces_key,
                            dipole_key=args.dipole_key, polarizability_key=args.polarizability_key)
    print(json.dumps(metrics, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="equiforce", description="E(3)-equivariant interatomic potentials")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model from a YAML config (resumes from output_dir/last.pt)")
    train.add_argument("config", help="YAML file with model, data and training sections")
    train.add_argument("--output-dir", help="override training.output_dir")
    train.set_defaults(run=_train)
    deploy = commands.add_parser("deploy", help="export a checkpoint (EMA weights) for LAMMPS, OpenMM and ASE")
    deploy.add_argument("checkpoint")
    deploy.add_argument("-o", "--output", required=True)
    deploy.add_argument("--format", default="torchscript", choices=["torchscript", "aoti"],
                        help="torchscript (.pt, default) or aoti (AOTInductor .pt2, compiled for this CPU)")
    deploy.set_defaults(run=_deploy)
    check = commands.add_parser("check", help="physics self-checks of an exported model (exit 1 on failure)")
    check.add_argument("model")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(run=_check)
    evaluate = commands.add_parser("eval", help="energy and force errors of an exported model on labelled data")
    evaluate.add_argument("model")
    evaluate.add_argument("data", help="extxyz (or any ASE-readable) file with energies and forces")
    evaluate.add_argument("--energy-key", default="energy")
    evaluate.add_argument("--forces-key", default="forces")
    evaluate.add_argument("--dipole-key", help="also score the dipole against this per-structure label")
    evaluate.add_argument("--polarizability-key", help="also score the polarizability against this label")
    evaluate.set_defaults(run=_eval)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"equiforce {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
