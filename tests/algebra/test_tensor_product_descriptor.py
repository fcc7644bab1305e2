import math

import numpy as np
import pytest
from e3nn import o3 as e3nn_o3

from equiforce.algebra import TensorProductDescriptor

IRREPS = ("3x0e+2x1o+2x2e", "2x0e+2x1o+1x2o", "3x0e+2x1o+2x1e+2x2e+2x0e")
INSTRUCTIONS = [(0, 0, 0, "uvw", True), (1, 1, 4, "uvu", True, 0.5), (1, 1, 3, "uvv", True), (2, 0, 3, "uuw", True),
                (1, 1, 2, "uuu", False), (2, 2, 1, "uvu", True)]


def _e3nn(irrep_normalization, path_normalization, **kw):
    return e3nn_o3.TensorProduct(*IRREPS, INSTRUCTIONS, irrep_normalization=irrep_normalization,
                                 path_normalization=path_normalization, shared_weights=False, **kw)


@pytest.mark.parametrize("irrep_normalization", ["component", "norm", "none"])
@pytest.mark.parametrize("path_normalization", ["element", "path", "none"])
def test_path_weights_and_weight_numel_equal_e3nn(irrep_normalization, path_normalization):
    var = dict(in1_var=[1.0, 2.0, 0.5], in2_var=[1.0, 3.0, 1.0], out_var=[1.0, 1.0, 2.0, 0.25, 3.0])
    ref = _e3nn(irrep_normalization, path_normalization, **var)
    ours = TensorProductDescriptor(*IRREPS, INSTRUCTIONS, irrep_normalization=irrep_normalization,
                                   path_normalization=path_normalization, **var)
    assert ours.weight_numel == ref.weight_numel
    for a, b in zip(ours.instructions, ref.instructions):
        assert a.path_shape == b.path_shape and a.connection_mode == b.connection_mode
        assert math.isclose(a.path_weight, b.path_weight, rel_tol=1e-14)


def test_repr_reads_like_a_table():
    text = repr(TensorProductDescriptor(*IRREPS, INSTRUCTIONS))
    lines = text.splitlines()
    assert "6 paths" in lines[0] and "weights" in lines[0]
    assert lines[1].split() == ["#", "in1", "in2", "out", "mode", "weights", "path_weight", "nnz"]
    assert len(lines) == 2 + len(INSTRUCTIONS)
    assert "uuu" in lines[6] and " - " in lines[6]  # unweighted path


def test_arrays_encode_every_nonzero():
    d = TensorProductDescriptor(*IRREPS, INSTRUCTIONS)
    ints, floats = d.to_arrays()
    assert ints.dtype == np.int64 and floats.dtype == np.float64
    nnz = d.nonzeros()
    assert ints[5] == len(nnz) and len(floats) == len(INSTRUCTIONS) + len(nnz)
    assert ints[9] == d.weight_numel


@pytest.mark.parametrize("instruction, message", [
    ((0, 0, 5, "uvw", True), "out of range"),
    ((0, 0, 1, "uvw", True), "parity or triangle"),
    ((0, 0, 0, "uvx", True), "connection mode"),
    ((1, 1, 4, "uvu", True), None),
    ((1, 1, 0, "uvu", True), "mul_out == mul_in1"),
    ((0, 1, 1, "uvu", True), "mul_out == mul_in1"),
    ((0, 0, 0, "uvw", False), "needs weights"),
    ((0, 0), "expected"),
])
def test_bad_instructions_are_explained(instruction, message):
    if message is None:
        TensorProductDescriptor(*IRREPS, [instruction])
        return
    with pytest.raises(ValueError, match=message):
        TensorProductDescriptor(*IRREPS, [instruction])


def test_bad_normalization_names():
    with pytest.raises(ValueError, match="irrep_normalization"):
        TensorProductDescriptor(*IRREPS, [], irrep_normalization="unit")
    with pytest.raises(ValueError, match="in1_var"):
        TensorProductDescriptor(*IRREPS, [], in1_var=[1.0])
