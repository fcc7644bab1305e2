"""Comparison helpers with tolerances keyed by dtype; failures print the largest error."""
import torch


def tolerance(dtype):
    """Relative tolerance for a float32/float64 result against a float64 reference."""
    return 2e-5 if dtype == torch.float32 else 1e-11


def assert_close(actual, expected, dtype, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if actual.numel() == 0:
        return
    scale = max(1.0, expected.double().abs().max().item())
    err = (actual.double() - expected.double()).abs().max().item()
    assert err <= tolerance(dtype) * scale, f"{what}: largest error {err:.3e} (scale {scale:.3e}, {dtype})"
