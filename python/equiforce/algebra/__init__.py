"""equiforce.algebra: O(3) irreps, Clebsch-Gordan coefficients, spherical-harmonic conventions and
tensor-product descriptors, equivariant maps of finite groups. NumPy only: importing it never imports
torch."""
from .finite import equivariant_basis
from .irreps import Irrep, Irreps, MulIr
from .spherical_harmonics import LMAX_SUPPORTED, spherical_harmonics
from .tensor_product import MODES, Instruction, TensorProductDescriptor
from .wigner import angles_to_matrix, matrix_to_angles, so3_generators, wigner_3j, wigner_D, wigner_D_from_matrix

__all__ = [
    "Irrep", "Irreps", "MulIr", "LMAX_SUPPORTED", "spherical_harmonics", "MODES", "Instruction",
    "TensorProductDescriptor", "angles_to_matrix", "matrix_to_angles", "so3_generators", "wigner_3j", "wigner_D",
    "wigner_D_from_matrix", "equivariant_basis",
]
