"""The equiforce potential."""
from .potential import EquiForceModel, evaluate

__all__ = ["EquiForceModel", "evaluate"]
