"""algm-export: deploy ALGM token-merging Segmenter models (ONNX, ONNX Runtime, TensorRT).

``load_segmenter`` and ``save_bundle`` load on first use, so importing the package (and the command
line's start-up) does not import torch.
"""

from .config import ALGMConfig, Normalization, SegmenterConfig
from .console import VERSION as __version__  # noqa: F401 (the package's version attribute)
from .errors import AlgmExportError

__all__ = ["ALGMConfig", "AlgmExportError", "Normalization", "SegmenterConfig", "load_segmenter", "save_bundle"]

_LAZY = {"load_segmenter", "save_bundle"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import checkpoints

        return getattr(checkpoints, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
