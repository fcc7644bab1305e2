"""equiforce: an E(3)-equivariant machine-learning interatomic potential.

Subpackages load lazily: ``equiforce.algebra`` is NumPy only; ``equiforce.ops`` and
``equiforce.o3`` load torch and the compiled operator library.
"""
__version__ = "0.1.0"
__all__ = ["__version__"]
