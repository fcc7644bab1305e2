"""EquivariantLinear and the C4 group convolutions: exact equivariance (float64) under 90-degree
rotations, an invariant classifier, bad input."""
import numpy as np
import pytest
import torch

from equiforce.algebra import equivariant_basis
from equiforce.nn import C4GroupConv2d, C4LiftingConv2d, EquivariantLinear

C4Z = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])


def rot(x, k=1):
    return torch.rot90(x, k, dims=(-2, -1))


def test_equivariant_linear_commutes_with_the_group():
    torch.manual_seed(0)
    layer = EquivariantLinear(equivariant_basis([C4Z], [C4Z])).double()
    g = torch.tensor(C4Z)
    x = torch.randn(10, 3, dtype=torch.float64)
    assert torch.allclose(layer(x @ g.T), layer(x) @ g.T, atol=1e-12)
    w = layer.matrix().detach()
    assert abs(float(w[0, 2])) < 1e-12 and abs(float(w[0, 0] - w[1, 1])) < 1e-12  # [[a, b, 0], [-b, a, 0], ...]
    with pytest.raises(ValueError, match="last axis"):
        layer(torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="k = 0"):
        EquivariantLinear(np.zeros((0, 3, 3)))


@pytest.mark.parametrize("size, kernel, padding", [(9, 3, 1), (8, 3, 1), (11, 5, 0), (7, 4, 0)])
def test_lifting_and_group_conv_are_equivariant(size, kernel, padding):
    torch.manual_seed(1)
    lift = C4LiftingConv2d(2, 3, kernel, padding).double()
    group = C4GroupConv2d(3, 4, kernel, padding).double()
    x = torch.randn(2, 2, size, size, dtype=torch.float64)
    y, y_rot = lift(x), lift(rot(x))
    assert y.shape[:3] == (2, 3, 4)
    # rotating the input rotates every map and shifts the group axis by one
    assert torch.allclose(y_rot, rot(y).roll(1, dims=2), atol=1e-12)
    z, z_rot = group(y), group(y_rot)
    assert torch.allclose(z_rot, rot(z).roll(1, dims=2), atol=1e-12)
    for k in (2, 3):  # and the other rotations
        assert torch.allclose(group(lift(rot(x, k))), rot(group(lift(x)), k).roll(k, dims=2), atol=1e-12)


def test_invariant_classifier():
    """Lifting conv -> ReLU -> group conv -> ReLU -> max over the group, mean over the image -> linear:
    the logits of an image and of its rotations agree exactly."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(C4LiftingConv2d(1, 4, 3, 1), torch.nn.ReLU(), C4GroupConv2d(4, 4, 3, 1),
                                torch.nn.ReLU()).double()
    head = torch.nn.Linear(4, 10).double()

    def logits(x):
        return head(model(x).amax(dim=2).mean(dim=(-2, -1)))

    x = torch.randn(5, 1, 12, 12, dtype=torch.float64)
    for k in (1, 2, 3):
        assert torch.allclose(logits(rot(x, k)), logits(x), atol=1e-12)


def test_bad_input():
    lift, group = C4LiftingConv2d(1, 2, 3, 1), C4GroupConv2d(2, 2, 3, 1)
    with pytest.raises(ValueError, match="square"):
        lift(torch.randn(1, 1, 8, 9))
    with pytest.raises(ValueError, match="square"):
        group(torch.randn(1, 2, 4, 8, 9))
    with pytest.raises(ValueError, match=r"\[B, C, 4, H, W\]"):
        group(torch.randn(1, 2, 3, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        lift(torch.randn(1, 8, 8))
    with pytest.raises(ValueError, match=">= 1"):
        C4LiftingConv2d(0, 2, 3)


def test_rotated_glyphs_example():
    """examples/c4_rotated_glyphs.py: trained on upright glyphs only, the C4-invariant classifier keeps
    its accuracy on rotated ones."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "c4_rotated_glyphs.py"
    spec = importlib.util.spec_from_file_location("c4_rotated_glyphs", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = example.make(1000, rng, rotate=False)
    x_rot, y_rot = example.make(300, rng, rotate=True)
    model = example.train(example.InvariantNet(), x, y, steps=150)
    upright = example.accuracy(model, x[:300], y[:300])
    assert upright > 0.9 and example.accuracy(model, x_rot, y_rot) > upright - 0.05
