"""Names shared by the exporter, the engine builder and the runtimes: graph files, tensor names, the
engine sidecar. A leaf module (standard library only), so that loading a ``.plan`` imports neither the
exporter nor onnx/onnxscript/graphsurgeon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .errors import AlgmExportError

PORTABLE_GRAPH = "model.onnx"  # merges lowered to standard ops
PLUGIN_GRAPH = "model.trt.onnx"  # one algm-domain node per merge/unmerge
FP16_GRAPH = "model.fp16.onnx"  # the plugin graph in FP16 (what TensorRT 11 builds from)
INT8_GRAPH = "model.int8.onnx"  # --int8: Q/DQ on model.onnx (ONNX Runtime)
FP16_INT8_GRAPH = "model.fp16.int8.onnx"  # --int8 --fp16: Q/DQ on model.fp16.onnx (TensorRT)

INPUT_NAME = "images"
LABELS, SCORES, LOGITS = "labels", "scores", "logits"  # the deployment outputs (docs/outputs.md)
OUTPUT_NAMES = (LABELS, SCORES, LOGITS)  # also the order of the graph outputs
DEFAULT_OUTPUTS = (LABELS, SCORES)
TOKEN_COUNTS = "token_counts"
TOKEN_MAPS = "token_maps"

SIDECAR_SUFFIX = ".json"


def parse_outputs(choice: str | Iterable[str]) -> tuple[str, ...]:
    """``"labels,scores"`` or a list of names -> the chosen names in contract order; AlgmExportError otherwise."""
    names = [n.strip() for n in (choice.split(",") if isinstance(choice, str) else choice) if n.strip()]
    unknown = [n for n in names if n not in OUTPUT_NAMES]
    if unknown or not names:
        raise AlgmExportError(f"--outputs: expected one or more of {', '.join(OUTPUT_NAMES)} (comma-separated), "
                              f"got {','.join(names) or 'nothing'}")
    return tuple(n for n in OUTPUT_NAMES if n in names)


def sidecar_path(engine: Path) -> Path:
    """``model.fp16.plan`` -> ``model.fp16.plan.json``."""
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def read_sidecar(engine: Path) -> dict[str, Any]:
    """The engine's sidecar as a dict; AlgmExportError when it is missing or not JSON."""
    path = sidecar_path(engine)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as error:
        raise AlgmExportError(f"{engine}: its sidecar {path.name} is missing") from error
    except ValueError as error:
        raise AlgmExportError(f"{path}: not valid JSON ({error})") from error
