"""Building blocks of equivariant potentials: radial basis and cutoff, gate, interaction layer; layers
equivariant under finite groups (a linear map on an equivariant basis, C4 group convolutions)."""
from .finite import C4GroupConv2d, C4LiftingConv2d, EquivariantLinear
from .gate import Gate
from .interaction import Interaction, conv_instructions, hidden_irreps
from .radial import BesselBasis, PolynomialCutoff, RadialMLP, XPLORCutoff

__all__ = ["C4GroupConv2d", "C4LiftingConv2d", "EquivariantLinear", "Gate", "Interaction", "conv_instructions",
           "hidden_irreps", "BesselBasis", "PolynomialCutoff", "RadialMLP",
           "XPLORCutoff"]
