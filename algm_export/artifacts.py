"""The file and tensor names of the deployment contract, shared by every layer: graph and engine files, the
files beside them in an output folder, tensor names, the engine sidecar, the plugin libraries. A leaf module
(standard library only), so that loading a ``.plan`` imports neither the exporter nor onnx/onnxscript/graphsurgeon.
What the backends are (which file, precision, runtime) is in :mod:`algm_export.backends`."""

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
FP16_PLAN = "model.fp16.plan"  # the TensorRT engine built from model.fp16.onnx
FP16_INT8_PLAN = "model.fp16.int8.plan"  # the TensorRT engine built from model.fp16.int8.onnx

# The other files of an output folder (docs/output-folder.md).
REPORT = "report.json"
TORCH_OUTPUTS = "torch_outputs.json"  # PyTorch's outputs for polygraphy --load-outputs
MARKER = "algm-export.json"  # written last into every output set: the tool's identity and the files of the set
TIMING_CACHE = "timing.cache"  # TensorRT's, kept across exports into the same folder
CALIBRATION_CACHE = "calibration.cache.json"  # INT8 activation ranges, kept while the graph and images match
BENCH_GRAPHS = "bench"  # the folder of the graphs `bench` timed (dense/, algm/)

# The TensorRT plugin library, in its two flavours (plugins/trt).
PLUGIN_LIBRARY = "libalgm_plugins.so"  # getCreators(): IPluginRegistry.load_library, trtexec --dynamicPlugins
AUTOREGISTER_LIBRARY = "libalgm_plugins_autoreg.so"  # registers its creators on dlopen: polygraphy, Triton

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
