"""Export of trained models following the deployed-model contract, and loading them back."""
from .export import export, load, metadata_of, model_from_checkpoint
from .potential import FORMAT_VERSION, DeployedPotential

__all__ = ["export", "load", "metadata_of", "model_from_checkpoint", "FORMAT_VERSION", "DeployedPotential"]
