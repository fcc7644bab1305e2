"""openmm-ml integration: the ``openmmml.potentials`` entry point ``equiforce`` makes

    from openmmml import MLPotential
    potential = MLPotential("equiforce", modelPath="model.pt")
    system = potential.createSystem(topology)                              # all atoms
    mixed = potential.createMixedSystem(topology, mm_system, ml_atoms)    # ML/MM

add an :class:`equiforce.openmm.EquiForce` (C++, no Python callback) to the System.
"""
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory


class EquiForcePotentialImplFactory(MLPotentialImplFactory):
    def createImpl(self, name: str, modelPath: str = None, **args) -> MLPotentialImpl:
        if modelPath is None:
            raise ValueError("MLPotential('equiforce') needs modelPath='model.pt' (a file from `equiforce deploy`)")
        return EquiForcePotentialImpl(modelPath)


class EquiForcePotentialImpl(MLPotentialImpl):
    def __init__(self, model_path: str) -> None:
        self.model_path = model_path

    def addForces(self, topology, system, atoms, forceGroup: int, **args) -> None:
        from ..openmm import EquiForce

        particles = None if atoms is None else [int(a) for a in atoms]
        system.addForce(EquiForce(self.model_path, topology, particles=particles, forceGroup=forceGroup))
