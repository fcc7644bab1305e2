"""Building blocks of equivariant potentials: radial basis and cutoff, gate, interaction layer."""
from .gate import Gate
from .interaction import Interaction, conv_instructions, hidden_irreps
from .radial import BesselBasis, PolynomialCutoff, RadialMLP

__all__ = ["Gate", "Interaction", "conv_instructions", "hidden_irreps", "BesselBasis", "PolynomialCutoff", "RadialMLP"]
