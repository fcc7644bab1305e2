"""tests/gpu: the CUDA kernels on a GPU, against the CPU ops and e3nn. Skipped where torch sees no
GPU or equiforce was built without its CUDA kernels (tests/gpu/run_all.sh builds them)."""
import pytest
import torch


def _cuda_ops_built() -> bool:
    from equiforce import _C

    return bool(_C.build_info()["cuda"])


def pytest_collection_modifyitems(config, items):
    reason = None
    if not torch.cuda.is_available():
        reason = "no CUDA device"
    elif not _cuda_ops_built():
        reason = "equiforce built without CUDA kernels (EQUIFORCE_CUDA=ON; tests/gpu/run_all.sh)"
    if reason:
        for item in items:
            if "tests/gpu" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))
