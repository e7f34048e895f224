"""Open the right backend for a deployment file."""

from __future__ import annotations

import os
from pathlib import Path

from .base import Backend


def open_backend(path: str | os.PathLike) -> Backend:
    """An ONNX file runs in ONNX Runtime; a ``.plan``/``.engine`` file in TensorRT."""
    path = Path(path)
    if path.suffix in (".plan", ".engine"):
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path)
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path)
