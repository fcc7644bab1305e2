"""The equiforce potential."""
from .electrostatics import COULOMB_CONSTANT, coulomb_potential
from .potential import EquiForceModel, evaluate

__all__ = ["EquiForceModel", "evaluate", "coulomb_potential", "COULOMB_CONSTANT"]
