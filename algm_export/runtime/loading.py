"""Open the right backend for a deployment file."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AlgmExportError
from .base import Backend

ENGINE_SUFFIXES = (".plan", ".engine")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".bin", ".tar", "")


def open_backend(path: str | os.PathLike, trust_checkpoint: bool = False, threads: int | None = None) -> Backend:
    """A ``.plan``/``.engine`` file runs in TensorRT; a checkpoint (``.pth``, ``.pt``, ``.ckpt``, ...: research
    format or bundle) in PyTorch at its sliding-window size; anything else (``.onnx``) in ONNX Runtime.
    ``threads``: ONNX Runtime's intra-op threads (default: its own choice, one per physical core)."""
    path = Path(path)
    if path.is_dir():
        raise AlgmExportError(f"{path}: is a folder; MODEL is a file (e.g. {path}/model.onnx or a checkpoint)")
    if not path.is_file():
        raise AlgmExportError(f"{path}: no such file")
    if path.suffix in ENGINE_SUFFIXES:
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path)
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, threads=threads)
    from ..checkpoints import load_segmenter
    from .torch_backend import TorchBackend

    model = load_segmenter(path, trust_checkpoint=trust_checkpoint)
    window = model.config.windows().window_size
    return TorchBackend(model, (window, window))
