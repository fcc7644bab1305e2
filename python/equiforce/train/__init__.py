"""Training: trainer, losses and metrics, checkpoints."""
from .fitting import average_num_neighbors, fit_energy_shift_and_scale
from .trainer import Trainer, load_config

__all__ = ["Trainer", "load_config", "average_num_neighbors", "fit_energy_shift_and_scale"]
