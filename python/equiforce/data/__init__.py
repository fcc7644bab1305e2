"""Data: labelled structures from extxyz/ASE, neighbour graphs and batching."""
from .graph import Batch, Graph, build_graph, collate
from .structures import Structure, from_atoms, read_structures, split

__all__ = ["Batch", "Graph", "build_graph", "collate", "Structure", "from_atoms", "read_structures", "split"]
