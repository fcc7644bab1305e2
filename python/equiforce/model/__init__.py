"""The equiforce potential."""
from .potential import EquiForceModel, edge_forces_and_virial, evaluate

__all__ = ["EquiForceModel", "edge_forces_and_virial", "evaluate"]
