"""Open the right backend for a deployment file."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AlgmExportError
from .base import Backend

ENGINE_SUFFIXES = (".plan", ".engine")


def open_backend(path: str | os.PathLike, trust_checkpoint: bool = False) -> Backend:
    """An ONNX file runs in ONNX Runtime; a ``.plan``/``.engine`` file in TensorRT; anything else is loaded as a
    checkpoint (research format or bundle) and runs in PyTorch at its sliding-window size."""
    path = Path(path)
    if not path.is_file():
        raise AlgmExportError(f"{path}: no such file")
    if path.suffix in ENGINE_SUFFIXES:
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path)
    if path.suffix == ".onnx":
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path)
    from ..checkpoints import load_segmenter
    from .torch_backend import TorchBackend

    model = load_segmenter(path, trust_checkpoint=trust_checkpoint)
    window = model.config.windows().window_size
    return TorchBackend(model, (window, window))
