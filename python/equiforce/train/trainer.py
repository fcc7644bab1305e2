"""Training: config, loop with EMA, plateau schedule, early stopping, exact resume, logs.

Config (YAML or dict) has three sections; unknown keys are an error:

    model:    species, r_max, l_max, num_features, num_layers, num_basis, cutoff_p, parity, ... (EquiForceModel),
              or init_from: <checkpoint> (fine-tuning, :mod:`.finetune`) with optional species to add
    data:     train_file, validation_file | validation_fraction, energy_key, forces_key, stress_key,
              dipole_key, polarizability_key, charges_key, isolated_atoms_file
    training: output_dir, seed, dtype, batch_size, max_epochs, max_minutes, optimizer (adam|adamw), lr,
              weight_decay, energy_weight, forces_weight, stress_weight, dipole_weight, polarizability_weight,
              charges_weight,
              ema_decay, scheduler (plateau|cosine),
              scheduler_patience, scheduler_factor, min_lr, early_stopping_patience, stage_two,
              snapshot_minutes, progress, plots, freeze, energy_reference (refit|keep, fine-tuning)

``stage_two: {epoch: K, energy_weight: a, forces_weight: b, lr: c}`` switches the loss weights (and
optionally the learning rate) from epoch K on, as MACE's second stage does: a forces-heavy first stage,
then an energy-heavy finish. ``snapshot_minutes: T`` keeps a checkpoint every T minutes of training
(``snapshot_<minutes>min.pt``), for time-to-accuracy curves.

Models with ``dipole: true`` / ``polarizability: true`` train on those labels too (per-structure,
from ``data.dipole_key`` / ``data.polarizability_key``, default 'dipole' / 'polarizability'), with
squared-error weights ``dipole_weight`` ((e A)^-2) and ``polarizability_weight``. Long-range models
can also fit their charges to reference atomic charges (``data.charges_key``, per atom, e.g. the
``xtb_charges`` that examples/data/label_xtb.py writes; weight ``charges_weight``).
"""
import copy
import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..data import build_graph, collate, read_structures, split
from ..model import EquiForceModel, predict
from .checkpoint import FORMAT as CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from .finetune import ENERGY_REFERENCES, freeze, initial_model, refit_energy_reference
from .fitting import average_num_neighbors, fit_energy_shift_and_scale
from .report import ProgressBar

DATA_DEFAULTS = dict(train_file=None, validation_file=None, validation_fraction=0.05, energy_key="energy",
                     forces_key="forces", stress_key=None, dipole_key=None, polarizability_key=None,
                     charges_key=None, isolated_atoms_file=None)
TRAIN_DEFAULTS = dict(output_dir="run", seed=0, dtype="float32", batch_size=5, max_epochs=100, max_minutes=None,
                      optimizer="adam", lr=None, weight_decay=0.0, energy_weight=1.0, forces_weight=100.0,
                      stress_weight=0.0, dipole_weight=1.0, polarizability_weight=1.0, charges_weight=1.0,
                      ema_decay=0.99, scheduler="plateau", scheduler_patience=5,
                      scheduler_factor=0.5, min_lr=0.0, early_stopping_patience=20, stage_two=None,
                      snapshot_minutes=None, progress=True, plots=True, freeze=None,
                      energy_reference=None)
STAGE_TWO_KEYS = {"epoch", "energy_weight", "forces_weight", "stress_weight", "dipole_weight",
                  "polarizability_weight", "charges_weight", "lr"}


def _section(config: Dict, name: str, defaults: Dict) -> Dict:
    given = dict(config.get(name) or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown keys in '{name}': {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **given}


def load_config(path_or_dict) -> Dict:
    if isinstance(path_or_dict, dict):
        config = path_or_dict
    else:
        import yaml

        config = yaml.safe_load(Path(path_or_dict).read_text()) or {}
    unknown = set(config) - {"model", "data", "training"}
    if unknown:
        raise ValueError(f"unknown config sections {sorted(unknown)}; expected model, data, training")
    model = dict(config.get("model") or {})
    if "init_from" in model:
        other = set(model) - {"init_from", "species"}
        if other:
            raise ValueError(f"with model.init_from the architecture comes from the checkpoint; remove "
                             f"{sorted(other)} (model.species may list elements to add)")
    elif "species" not in model:
        raise ValueError("the config needs model.species, e.g. [C, H, O] (or model.init_from: a checkpoint)")
    data = _section(config, "data", DATA_DEFAULTS)
    if not data["train_file"]:
        raise ValueError("the config needs data.train_file")
    training = _section(config, "training", TRAIN_DEFAULTS)
    fine_tuning = "init_from" in model
    if training["lr"] is None:
        training["lr"] = 0.001 if fine_tuning else 0.01
    if training["energy_reference"] is None and fine_tuning:
        training["energy_reference"] = "refit"
    elif training["energy_reference"] is not None and (not fine_tuning or
                                                      training["energy_reference"] not in ENERGY_REFERENCES):
        raise ValueError(f"training.energy_reference is for fine-tuning (model.init_from) and is one of "
                         f"{ENERGY_REFERENCES}, got {training['energy_reference']!r}")
    if training["freeze"] is not None and not isinstance(training["freeze"], (list, tuple)):
        raise ValueError(f"training.freeze is a list of parameter-name prefixes, e.g. [embedding, layers.0], "
                         f"got {training['freeze']!r}")
    return {"model": model, "data": data, "training": training}


class Trainer:
    """``Trainer(config).fit()`` trains and writes, under training.output_dir: ``last.pt`` and
    ``best.pt`` checkpoints, ``log.csv``, ``metrics.json`` and parity plots."""

    def __init__(self, config) -> None:
        self.config = load_config(config)
        t = self.config["training"]
        self.out = Path(t["output_dir"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[t["dtype"]]
        torch.manual_seed(t["seed"])
        init_from = self.config["model"].get("init_from")
        resuming = (self.out / "last.pt").exists()
        if resuming:
            self._check_same_run(load_checkpoint(self.out / "last.pt"))
        if init_from is not None and resuming:  # the run's own checkpoint has the grown model's config
            model_config = load_checkpoint(self.out / "last.pt")["model_config"]
            self.model = EquiForceModel.from_config(model_config)
        elif init_from is not None:  # fine-tuning: the checkpoint's architecture, weights, normaliser and scale
            self.model, model_config = initial_model(init_from, self.config["model"].get("species") or (), t["dtype"])
        if init_from is not None:
            self.species, self._model_options = list(self.model.species), model_config
            self._load_data()
        else:
            self.species, self._model_options = list(self.config["model"]["species"]), self.config["model"]
            self._load_data()
            model_config = {**self.config["model"], "dtype": t["dtype"], "avg_num_neighbors": self.avg_num_neighbors}
            self.model = EquiForceModel.from_config(model_config)
        if init_from is None:
            shift, scale = fit_energy_shift_and_scale(self.train, len(self.species), self.isolated)
            with torch.no_grad():
                self.model.energy_shift.copy_(shift)
                self.model.energy_scale.copy_(scale)
        elif t["energy_reference"] == "refit" and not resuming:
            correction = refit_energy_reference(self.model, self.train, self._batches(self.train, shuffle=False),
                                                self.isolated)
            shown = {s: round(float(c), 4) for s, c in zip(self.species, correction) if c != 0}
            print(f"[train] fine-tuning from {init_from}: energy reference refitted (eV/atom added: {shown})",
                  file=sys.stderr)
        self.frozen = freeze(self.model, t["freeze"]) if t["freeze"] else []
        self.model_config = model_config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("training.freeze leaves nothing to train")
        opt = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(t["optimizer"])
        if opt is None:
            raise ValueError(f"training.optimizer must be 'adam' or 'adamw', got {t['optimizer']!r}")
        self.optimizer = opt(params, lr=t["lr"], weight_decay=t["weight_decay"])
        if t["scheduler"] == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, factor=t["scheduler_factor"], patience=t["scheduler_patience"], min_lr=t["min_lr"])
        elif t["scheduler"] == "cosine":  # over max_epochs (or stage two's start), stepped every epoch
            span = t["stage_two"]["epoch"] if t["stage_two"] else t["max_epochs"]
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(int(span), 1),
                                                                        eta_min=t["min_lr"])
        else:
            raise ValueError(f"training.scheduler must be 'plateau' or 'cosine', got {t['scheduler']!r}")
        stage = t["stage_two"]
        if stage is not None and (not isinstance(stage, dict) or "epoch" not in stage or set(stage) - STAGE_TWO_KEYS):
            raise ValueError(f"training.stage_two must be a mapping with 'epoch' and any of "
                             f"{sorted(STAGE_TWO_KEYS - {'epoch'})}, got {stage!r}")
        self.ema = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.epoch, self.best, self.stale = 0, math.inf, 0
        self.minutes = self.minutes_before = 0.0  # minutes_before: earlier runs (resume)
        if resuming:
            self._resume(self.out / "last.pt")

    # ---- data -----------------------------------------------------------------------------
    def _load_data(self) -> None:
        d, t = self.config["data"], self.config["training"]
        model = self._model_options
        keys = dict(energy_key=d["energy_key"], forces_key=d["forces_key"], stress_key=d["stress_key"],
                    dipole_key=d["dipole_key"] or ("dipole" if model.get("dipole") else None),
                    polarizability_key=d["polarizability_key"] or ("polarizability" if model.get("polarizability")
                                                                   else None),
                    charges_key=d["charges_key"])
        if d["charges_key"] and model.get("long_range", "none") == "none":
            raise ValueError("data.charges_key needs a model with charges (model.long_range: ewald)")
        structures = read_structures(d["train_file"], **keys)
        if d["validation_file"]:
            train, val = structures, read_structures(d["validation_file"], **keys)
        else:
            train, val = split(structures, d["validation_fraction"], t["seed"])
        lookup = {s: n for n, s in enumerate(self.species)}

        def index(symbols):
            missing = sorted(set(symbols) - set(lookup))
            if missing:
                raise ValueError(f"the data has elements {missing} that model.species {self.species} lacks")
            return torch.tensor([lookup[s] for s in symbols])

        r_max = float(model.get("r_max", 5.0))
        self.train = [build_graph(s, index, r_max, self.dtype) for s in train]
        self.val = [build_graph(s, index, r_max, self.dtype) for s in val]
        self.avg_num_neighbors = average_num_neighbors(self.train)
        self.isolated = None
        if d["isolated_atoms_file"]:
            isolated = {s.symbols[0]: s.energy for s in read_structures(d["isolated_atoms_file"], forces_key=None)}
            self.isolated = [isolated.get(s) for s in self.species]

    def _batches(self, graphs, shuffle: bool):
        order = np.arange(len(graphs))
        if shuffle:  # a permutation that depends only on (seed, epoch): resume-exact
            order = np.random.default_rng([self.config["training"]["seed"], self.epoch]).permutation(len(graphs))
        bs = self.config["training"]["batch_size"]
        for k in range(0, len(order), bs):
            yield collate([graphs[n] for n in order[k : k + bs]])

    # ---- loss and metrics -----------------------------------------------------------------
    def _weights(self) -> Dict:
        """The loss weights of the current stage."""
        t, stage = self.config["training"], self.config["training"]["stage_two"]
        if stage is not None and self.epoch >= stage["epoch"]:
            return {**t, **{k: v for k, v in stage.items() if k.endswith("_weight")}}
        return t

    def _loss(self, batch, create_graph: bool):
        t = self._weights()
        want_stress = t["stress_weight"] > 0 and batch.stress is not None and bool(batch.stress_mask.any())
        pred = predict(self.model, batch, forces=batch.forces is not None, stress=want_stress,
                       create_graph=create_graph)
        loss = torch.zeros((), dtype=self.dtype)
        terms = {}
        if batch.energy is not None and t["energy_weight"] > 0:
            per_atom = (pred["energy"] - batch.energy) / batch.num_atoms
            terms["energy"] = per_atom.pow(2).mean()
            loss = loss + t["energy_weight"] * terms["energy"]
        if batch.forces is not None and t["forces_weight"] > 0:
            terms["forces"] = (pred["forces"] - batch.forces).pow(2).mean()
            loss = loss + t["forces_weight"] * terms["forces"]
        if want_stress:
            mask = batch.stress_mask
            terms["stress"] = (pred["stress"][mask] - batch.stress[mask]).pow(2).mean()
            loss = loss + t["stress_weight"] * terms["stress"]
        for name in ("dipole", "polarizability", "charges"):
            label = getattr(batch, name)
            if label is not None and name in pred and t[f"{name}_weight"] > 0:
                terms[name] = (pred[name] - label).pow(2).mean()
                loss = loss + t[f"{name}_weight"] * terms[name]
        return loss, pred

    def predictions(self, graphs) -> Dict[str, np.ndarray]:
        """Reference and predicted energies (per structure, with atom counts) and force components."""
        out = {"energy_ref": [], "energy_pred": [], "num_atoms": [], "forces_ref": [], "forces_pred": [],
               "dipole_ref": [], "dipole_pred": [], "polarizability_ref": [], "polarizability_pred": [],
               "charges_ref": [], "charges_pred": []}
        for batch in self._batches(graphs, shuffle=False):
            pred = predict(self.model, batch, forces=batch.forces is not None)
            for name in ("dipole", "polarizability", "charges"):
                if getattr(batch, name) is not None and name in pred:
                    out[f"{name}_ref"].append(getattr(batch, name).double().reshape(-1))
                    out[f"{name}_pred"].append(pred[name].detach().double().reshape(-1))
            if batch.energy is not None:
                out["energy_ref"].append(batch.energy.double())
                out["energy_pred"].append(pred["energy"].detach().double())
                out["num_atoms"].append(batch.num_atoms.double())
            if batch.forces is not None:
                out["forces_ref"].append(batch.forces.double().reshape(-1))
                out["forces_pred"].append(pred["forces"].detach().double().reshape(-1))
        return {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in out.items()}

    def evaluate(self, graphs) -> Dict[str, float]:
        """MAE/RMSE of energy (eV per structure and per atom) and forces (eV/A) over graphs."""
        p = self.predictions(graphs)
        errors = {}
        if len(p["energy_ref"]):
            errors["energy"] = p["energy_pred"] - p["energy_ref"]
            errors["energy_per_atom"] = errors["energy"] / p["num_atoms"]
        if len(p["forces_ref"]):
            errors["forces"] = p["forces_pred"] - p["forces_ref"]
        for name in ("dipole", "polarizability", "charges"):  # per component
            if len(p[f"{name}_ref"]):
                errors[name] = p[f"{name}_pred"] - p[f"{name}_ref"]
        out = {}
        for name, e in errors.items():
            out[f"{name}_mae"] = float(np.abs(e).mean())
            out[f"{name}_rmse"] = float(np.sqrt((e ** 2).mean()))
        return out

    def plot(self, path: Optional[Path] = None) -> Optional[Path]:
        """Parity plots (train and validation, current weights) as a PNG."""
        from .report import parity_plots

        sets = {}
        for name, graphs in (("train", self.train), ("validation", self.val)):
            if not graphs:
                continue
            p = self.predictions(graphs)
            data = {}
            if len(p["energy_ref"]):
                data["energy_per_atom"] = (p["energy_ref"] / p["num_atoms"], p["energy_pred"] / p["num_atoms"])
            if len(p["forces_ref"]):
                data["forces"] = (p["forces_ref"], p["forces_pred"])
            sets[name] = data
        return parity_plots(sets, path or self.out / "parity.png")

    # ---- EMA -------------------------------------------------------------------------------
    def _update_ema(self) -> None:
        decay = self.config["training"]["ema_decay"]
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.is_floating_point():
                    self.ema[k].mul_(decay).add_(v, alpha=1 - decay)
                else:
                    self.ema[k].copy_(v)

    def _with_ema(self):
        trainer = self

        class Swap:
            def __enter__(self):
                self.saved = copy.deepcopy(trainer.model.state_dict())
                trainer.model.load_state_dict(trainer.ema)

            def __exit__(self, *exc):
                trainer.model.load_state_dict(self.saved)

        return Swap()

    # ---- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> Dict:
        return {"format": CHECKPOINT_FORMAT, "version": 1, "config": self.config,
                "model_config": self.model_config, "model": self.model.state_dict(), "ema": self.ema,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "best": self.best, "stale": self.stale, "minutes": self.minutes,
                "torch_rng": torch.get_rng_state()}

    def _save(self, path: Path) -> None:
        save_checkpoint(self.checkpoint(), path)

    def _check_same_run(self, state: Dict) -> None:
        """Resuming needs the run's model and what trains to be what ``last.pt`` was written with."""
        saved = state.get("config") or {}
        for section, key in (("model", None), ("training", "freeze"), ("training", "dtype")):
            mine = self.config[section] if key is None else self.config[section].get(key)
            theirs = (saved.get(section) or {}) if key is None else (saved.get(section) or {}).get(key)
            if saved and mine != theirs:
                where = section if key is None else f"{section}.{key}"
                raise ValueError(f"{self.out / 'last.pt'} is a run with another {where} ({theirs!r}, not {mine!r}); "
                                 "resuming would mix them: use a new training.output_dir, or move last.pt away "
                                 "to start again")

    def _resume(self, path: Path) -> None:
        state = load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.ema = state["ema"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.stale = state["epoch"], state["best"], state["stale"]
        self.minutes_before = self.minutes = float(state.get("minutes", 0.0))
        torch.set_rng_state(state["torch_rng"])
        print(f"[train] resumed from {path} at epoch {self.epoch}", file=sys.stderr)

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self) -> Dict[str, float]:
        t = self.config["training"]
        start = time.monotonic()
        log_path = self.out / "log.csv"
        new_log = not log_path.exists() or self.epoch == 0
        with open(log_path, "w" if new_log else "a", newline="") as log:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["epoch", "seconds", "lr", "train_loss", "val_loss", "val_energy_mae",
                                 "val_energy_per_atom_mae", "val_forces_mae"])
            stage = t["stage_two"]
            while self.epoch < t["max_epochs"]:
                if t["max_minutes"] is not None and self.minutes_before + (time.monotonic() - start) / 60 > t["max_minutes"]:
                    break
                if stage is not None and self.epoch == stage["epoch"]:
                    self.best, self.stale = math.inf, 0  # the validation loss changes meaning
                    if "lr" in stage:
                        for group in self.optimizer.param_groups:
                            group["lr"] = stage["lr"]
                self.model.train()
                losses = []
                bar = ProgressBar(math.ceil(len(self.train) / t["batch_size"]), f"[train] epoch {self.epoch + 1:4d}",
                                  stream=sys.stderr if t["progress"] else io.StringIO())
                for batch in self._batches(self.train, shuffle=True):
                    self.optimizer.zero_grad(set_to_none=True)
                    loss, _ = self._loss(batch, create_graph=True)
                    loss.backward()
                    self.optimizer.step()
                    self._update_ema()
                    losses.append(float(loss.detach()))
                    bar.update(losses[-1])
                self.epoch += 1
                previous_minutes = self.minutes
                self.minutes = self.minutes_before + (time.monotonic() - start) / 60
                with self._with_ema():
                    metrics = self.evaluate(self.val) if self.val else {}
                    val_loss = float(np.mean([float(self._loss(b, create_graph=False)[0].detach())
                                              for b in self._batches(self.val, False)])) if self.val else float(np.mean(losses))
                in_stage_two = stage is not None and self.epoch > stage["epoch"]
                if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    self.scheduler.step(val_loss)
                elif not in_stage_two:
                    self.scheduler.step()
                improved = val_loss < self.best
                self.best, self.stale = (val_loss, 0) if improved else (self.best, self.stale + 1)
                writer.writerow([self.epoch, round(60 * self.minutes, 2), self.optimizer.param_groups[0]["lr"],
                                 float(np.mean(losses)), val_loss, metrics.get("energy_mae"),
                                 metrics.get("energy_per_atom_mae"), metrics.get("forces_mae")])
                log.flush()
                self._save(self.out / "last.pt")
                if improved:
                    self._save(self.out / "best.pt")
                every = t["snapshot_minutes"]
                elapsed = self.minutes
                if every and int(elapsed // every) > int(previous_minutes // every):
                    self._save(self.out / f"snapshot_{round(int(elapsed // every) * every):03d}min.pt")
                bar.close(f"loss {np.mean(losses):.4g}  val {val_loss:.4g}  "
                          f"E_mae {metrics.get('energy_mae', float('nan')) * 1e3:.2f} meV  "
                          f"F_mae {metrics.get('forces_mae', float('nan')) * 1e3:.2f} meV/A  "
                          + (f"mu_mae {metrics['dipole_mae'] * 1e3:.1f} me*A  " if "dipole_mae" in metrics else "")
                          + (f"alpha_mae {metrics['polarizability_mae']:.3g}  " if "polarizability_mae" in metrics else "")
                          + f"lr {self.optimizer.param_groups[0]['lr']:.2e}  {60 * self.minutes:.0f} s")
                if self.stale >= t["early_stopping_patience"]:
                    break
        with self._with_ema():
            final = {"epochs": self.epoch, "seconds": round(time.monotonic() - start, 1),
                     "train": self.evaluate(self.train), "validation": self.evaluate(self.val) if self.val else {}}
            final["parity_plot"] = str(self.plot()) if t["plots"] else None
        (self.out / "metrics.json").write_text(json.dumps(final, indent=2))
        return final
