"""Loading and saving Segmenter checkpoints (research format and algm-export bundles)."""

from .bundle import save_bundle
from .loader import load_segmenter

__all__ = ["load_segmenter", "save_bundle"]
