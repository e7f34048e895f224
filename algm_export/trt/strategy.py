"""How to get an FP16 engine out of the exported graphs on the installed TensorRT.

TensorRT 11 removed the FP16 builder flag: networks are strongly typed and compute in the precision
written in the graph, so the FP16 graph (model.fp16.onnx) is parsed with STRONGLY_TYPED. TensorRT 10
supports both; a TensorRT without strong typing gets the FP32 plugin graph plus the FP16 flag.
Decided by feature checks, never by version strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..artifacts import FP16_GRAPH, FP16_INT8_GRAPH, PLUGIN_GRAPH
from .availability import Unavailable


@dataclass(frozen=True)
class BuildStrategy:
    """Which graph to parse and how."""

    graph: str
    strongly_typed: bool
    fp16_flag: bool

    def describe(self) -> str:
        """One line for logs and the sidecar."""
        return f"{self.graph} " + ("strongly typed" if self.strongly_typed else "with the FP16 builder flag")


def choose_strategy(has_strongly_typed: bool, has_fp16_flag: bool) -> BuildStrategy:
    """The FP16 route for a TensorRT with these features."""
    if has_strongly_typed:
        return BuildStrategy(FP16_GRAPH, strongly_typed=True, fp16_flag=False)
    if has_fp16_flag:
        return BuildStrategy(PLUGIN_GRAPH, strongly_typed=False, fp16_flag=True)
    raise Unavailable("this TensorRT has neither strongly typed networks nor the FP16 builder flag")


def int8_strategy_for(tensorrt: ModuleType) -> BuildStrategy:
    """The INT8 route: the FP16 Q/DQ graph (model.fp16.int8.onnx), strongly typed; TensorRT 11 has no
    other INT8 (no INT8 flag, no implicit calibration)."""
    if not hasattr(tensorrt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        raise Unavailable("this TensorRT has no strongly typed networks, which the INT8 Q/DQ graph needs")
    return BuildStrategy(FP16_INT8_GRAPH, strongly_typed=True, fp16_flag=False)


def strategy_for(tensorrt: ModuleType, precision: str = "fp16") -> BuildStrategy:
    """The route to the engine of ``precision`` (``fp16`` or ``int8``, a TensorRT row of
    :mod:`algm_export.backends`) for the imported ``tensorrt`` module."""
    if precision == "int8":
        return int8_strategy_for(tensorrt)
    return choose_strategy(hasattr(tensorrt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"),
                           hasattr(tensorrt.BuilderFlag, "FP16"))
