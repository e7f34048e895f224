"""Running exported models: one interface (:class:`Backend`) for PyTorch, ONNX Runtime and TensorRT."""

from ..deployment import DeploymentInfo
from .base import Backend, Prediction
from .sliding import segment, segment_stream

__all__ = ["Backend", "DeploymentInfo", "Prediction", "segment", "segment_stream"]
