"""The CUDA kernels: built with nvcc and checked against the CPU kernels by ``algm_cuda_check``.

``test_cuda_kernels_match_cpu`` needs nvcc and a CUDA GPU (skipped otherwise); it prints the check's
timing table. ``test_cuda_sources_compile`` (slow, ``-m slow``) only needs nvcc.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cpu_kernels as kernels
import pytest

BUILD_DIR = Path(__file__).resolve().parents[1] / "build" / "plugins-cuda"
SKIPPED_EXIT_CODE = 77  # algm_cuda_check: no usable GPU


def nvcc_missing_reason() -> str | None:
    """Why the CUDA sources cannot be compiled here, or None."""
    if shutil.which("nvcc") is None and not Path("/usr/local/cuda/bin/nvcc").exists():
        return "nvcc not found (CUDA toolkit missing): CUDA kernels not built"
    return None


def gpu_missing_reason() -> str | None:
    """Why the CUDA kernels cannot run here, or None."""
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
        if listing.returncode == 0 and "GPU" in listing.stdout:
            return None
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return None
    except ImportError:
        pass
    return "no CUDA GPU (nvidia-smi -L lists none and torch.cuda.is_available() is False)"


def test_cuda_kernels_match_cpu(capsys):
    reason = nvcc_missing_reason() or gpu_missing_reason()
    if reason:
        pytest.skip(reason)
    kernels.build_plugins(BUILD_DIR, ["algm_cuda_check"], cuda=True)
    result = subprocess.run([str(BUILD_DIR / "core" / "algm_cuda_check")], capture_output=True, text=True,
                            timeout=600)
    with capsys.disabled():
        print("\n" + result.stdout + result.stderr)
    if result.returncode == SKIPPED_EXIT_CODE:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, f"algm_cuda_check failed (exit {result.returncode}); output above"


@pytest.mark.slow
def test_cuda_sources_compile(tmp_path):
    reason = nvcc_missing_reason()
    if reason:
        pytest.skip(reason)
    kernels.build_plugins(tmp_path, ["algm_kernels_cuda", "algm_cuda_check"], cuda=True)
    assert (tmp_path / "core" / "libalgm_kernels_cuda.a").is_file()
