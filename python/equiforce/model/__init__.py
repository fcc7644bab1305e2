"""The equiforce potential."""
from .electrostatics import COULOMB_CONSTANT, coulomb_potential
from .inputs import MIN_DISTANCE, check_structure
from .potential import EquiForceModel
from .predict import evaluate, predict, radius_graph, stress_from_virial

__all__ = ["EquiForceModel", "evaluate", "predict", "radius_graph", "stress_from_virial", "check_structure",
           "MIN_DISTANCE", "coulomb_potential", "COULOMB_CONSTANT"]
