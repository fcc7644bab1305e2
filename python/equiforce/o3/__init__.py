"""Torch modules with e3nn's names, signatures and conventions, on equiforce's compiled ops."""
from ..algebra import Irrep, Irreps
from ._conv import TensorProductConv
from ._convert import from_e3nn
from ._linear import Linear
from ._spherical_harmonics import SphericalHarmonics, spherical_harmonics
from ._tensor_product import FullyConnectedTensorProduct, TensorProduct

__all__ = [
    "Irrep", "Irreps", "SphericalHarmonics", "spherical_harmonics", "TensorProduct", "FullyConnectedTensorProduct",
    "Linear", "TensorProductConv", "from_e3nn",
]
