"""Open the right backend for a deployment file."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import AlgmExportError
from .base import Backend

ENGINE_SUFFIXES = (".plan", ".engine")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".bin", ".tar", "")


def open_backend(path: str | os.PathLike, trust_checkpoint: bool = False,
                 custom_ops: str | os.PathLike | None = None, threads: int | None = None) -> Backend:
    """A ``.plan``/``.engine`` file (any case) runs in TensorRT; a checkpoint (``.pth``, ``.pt``, ``.ckpt``, ...:
    research format or bundle) in PyTorch at its sliding-window size; anything else (``.onnx``) in ONNX Runtime,
    with ``custom_ops`` (libalgm_ort_ops.so) running the graph's algm nodes on our C++ kernels and ``threads``
    intra-op threads (default: ONNX Runtime's own choice, one per physical core)."""
    path = Path(path)
    if path.is_dir():
        raise AlgmExportError(f"{path}: is a folder; MODEL is a file (e.g. {path}/model.onnx or a checkpoint)")
    if not path.is_file():
        raise AlgmExportError(f"{path}: no such file")
    suffix = path.suffix.lower()
    is_graph = suffix not in ENGINE_SUFFIXES and suffix not in CHECKPOINT_SUFFIXES
    if custom_ops is not None and not is_graph:
        raise AlgmExportError(f"--ort-ops runs an ONNX graph's algm nodes in ONNX Runtime; {path} is not an ONNX "
                              "graph (use model.trt.onnx)")
    if suffix in ENGINE_SUFFIXES:
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path)
    if is_graph:
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, custom_ops=custom_ops, threads=threads)
    from ..checkpoints import load_segmenter
    from .torch_backend import TorchBackend

    model = load_segmenter(path, trust_checkpoint=trust_checkpoint)
    window = model.config.windows().window_size
    return TorchBackend(model, (window, window))
