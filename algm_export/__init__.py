"""algm-export: deploy ALGM token-merging Segmenter models (ONNX, ONNX Runtime, TensorRT)."""

from .checkpoints import load_segmenter, save_bundle
from .config import ALGMConfig, Normalization, SegmenterConfig
from .errors import AlgmExportError

__all__ = ["ALGMConfig", "AlgmExportError", "Normalization", "SegmenterConfig", "load_segmenter", "save_bundle"]
__version__ = "0.1.0"
