"""Running exported models: one interface (:class:`Backend`) for PyTorch, ONNX Runtime and TensorRT."""

from .base import Backend, Prediction, segment, segment_stream
from .metadata import DeploymentInfo

__all__ = ["Backend", "DeploymentInfo", "Prediction", "segment", "segment_stream"]
