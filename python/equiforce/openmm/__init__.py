"""equiforce for OpenMM: ``EquiForce``, a C++ Force (plugin in ``csrc/openmm``) that runs an exported
model (``.pt`` or ``.pt2``) through ``csrc/runtime`` inside OpenMM — no Python callback per step.

    from equiforce.openmm import EquiForce
    system.addForce(EquiForce("model.pt", topology))                   # every atom, elements from the topology
    system.addForce(EquiForce("model.pt", topology, particles=ligand))  # ML/MM: the model covers a subset
    topology = make_topology(["C", "C", "O", "H", ...], box=None)         # a Topology from element symbols

Units are OpenMM's (kJ/mol, nm); the model's eV and Angstrom are converted inside. With periodic
boundary conditions (default: when the topology has a box) the box comes from the context every
step, triclinic included. Works on OpenMM's Reference and CPU platforms. Serialization
(``XmlSerializer``, ``copy.deepcopy(system)``) keeps the model path (stored absolute).
"""
import os
from typing import Iterable, Optional, Sequence

import openmm  # OpenMM and its platforms load before our kernels register

from .openmm_swig import EquiForce as _EquiForce


def make_topology(symbols: Sequence[str], box=None, residue: str = "MOL"):
    """An ``openmm.app.Topology`` of one residue with these elements (for systems that have no PDB
    file); ``box``: 3 box vectors in Angstrom (rows), or None for no periodic box."""
    from openmm import app

    topology = app.Topology()
    res = topology.addResidue(residue, topology.addChain())
    for symbol in symbols:
        topology.addAtom(symbol, app.Element.getBySymbol(symbol), res)
    if box is not None:
        topology.setPeriodicBoxVectors([openmm.Vec3(*(float(v) * 0.1 for v in row)) for row in box])
    return topology


class EquiForce(_EquiForce):
    """``EquiForce(model, topology=None, *, elements=None, particles=None, periodic=None, forceGroup=0)``.

    ``model``: path of an exported model. The elements of the covered particles come from
    ``topology`` (an ``openmm.app.Topology``) or ``elements`` (symbols, one per covered particle);
    ``particles``: indices the model covers (default: all). ``periodic``: default — the topology has a
    box. Bad input (missing model, an element the model lacks, a particle the System does not have)
    raises ``openmm.OpenMMException`` when a Context is created.
    """

    def __init__(self, model: str, topology=None, *, elements: Optional[Sequence[str]] = None,
                 particles: Optional[Iterable[int]] = None, periodic: Optional[bool] = None,
                 forceGroup: int = 0) -> None:
        super().__init__(os.path.abspath(os.fspath(model)))
        if topology is not None:
            symbols = [atom.element.symbol if atom.element is not None else "" for atom in topology.atoms()]
            if any(not s for s in symbols):
                raise openmm.OpenMMException("EquiForce: every atom of the topology needs an element "
                                             "(virtual sites cannot be covered)")
        elif elements is not None:
            symbols = list(elements)
        else:
            raise openmm.OpenMMException("EquiForce needs the elements of its particles: pass topology=... "
                                         "or elements=[...]")
        if particles is None:
            particles = range(len(symbols))
            chosen = symbols
        else:
            particles = list(particles)
            if topology is not None:
                if any(p < 0 or p >= len(symbols) for p in particles):
                    raise openmm.OpenMMException(f"EquiForce: particles must be atom indices of the topology "
                                                 f"(0..{len(symbols) - 1})")
                chosen = [symbols[p] for p in particles]
            else:
                if len(symbols) != len(particles):
                    raise openmm.OpenMMException(f"EquiForce: {len(symbols)} elements for {len(particles)} particles: "
                                             "give one element per particle")
                chosen = symbols
        for p, symbol in zip(particles, chosen):
            self.addParticle(int(p), symbol)
        if periodic is None:
            periodic = topology is not None and topology.getPeriodicBoxVectors() is not None
        self.setUsesPeriodicBoundaryConditions(bool(periodic))
        self.setForceGroup(int(forceGroup))
        self.setName("EquiForce")


__all__ = ["EquiForce", "make_topology"]
